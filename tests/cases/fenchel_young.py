"""Conformance cases for the Fenchel–Young family: sparsemax, entmax and perceptron losses.

References are NumPy float64 written from the papers, never from jaxloss: the α-entmax
threshold τ (Σ_j [(α - 1) z_j - τ]_+^{1/(α-1)} = 1) is found by scipy's ``brentq`` on the
unsorted row, then, on the support it gives, τ is recomputed in closed form for α = 2
(τ = (Σ_S z - 1)/|S|) and α = 1.5 (the root of Σ_S (z/2 - τ)² = 1). The losses are
⟨p, z - z_y⟩ - Ω(p) with Ω the Tsallis negentropy, and their gradients p - e_y (Blondel,
Martins & Niculae 2020).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

from tests.case import Case

B, C = 6, 5

#: Public names of this family that are not losses (the mappings and the loss constructor).
NOT_LOSSES = {"sparsemax", "entmax15", "entmax", "fenchel_young_loss"}


def entmax_row(z, alpha):
    """α-entmax of one row (float64)."""
    z = np.asarray(z, np.float64)
    x = (alpha - 1) * (z - z.max())
    power = 1 / (alpha - 1)

    def excess(tau):
        return np.sum(np.maximum(x - tau, 0) ** power) - 1

    tau = brentq(excess, -1.0, 0.0, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
    on = x - tau > 0
    if alpha == 2.0:
        tau = (x[on].sum() - 1) / on.sum()
    elif alpha == 1.5:
        k, m = on.sum(), x[on].mean()
        tau = m - np.sqrt(max((1 - np.sum((x[on] - m) ** 2)) / k, 0.0))
    return np.maximum(x - tau, 0) ** power


def entmax_ref(z, alpha, axis=-1):
    z = np.moveaxis(np.asarray(z, np.float64), axis, -1)
    out = np.array([entmax_row(r, alpha) for r in z.reshape(-1, z.shape[-1])])
    return np.moveaxis(out.reshape(z.shape), -1, axis)


def tsallis(p, alpha):
    return (np.sum(p**alpha, -1) - 1) / (alpha * (alpha - 1))


def _onehot(y, k):
    return np.eye(k)[y]


def _fy_value(d, h, alpha):
    axis = h.get("axis", -1)
    z = np.moveaxis(d["logits"], axis, -1)
    p = entmax_ref(z, alpha)
    zy = np.take_along_axis(z, d["labels"][..., None], -1)
    return np.sum(p * (z - zy), -1) - tsallis(p, alpha)


def _fy_grad(d, h, alpha):
    axis = h.get("axis", -1)
    z = np.moveaxis(d["logits"], axis, -1)
    g = entmax_ref(z, alpha) - _onehot(d["labels"], z.shape[-1])
    return np.moveaxis(g, -1, axis)


def _make(g, shape=(B, C), axis=-1, scale=1.5):
    z = g.normal(scale=scale, size=shape)
    k = shape[axis]
    labels_shape = tuple(s for i, s in enumerate(shape) if i != axis % len(shape))
    return {"logits": z, "labels": g.integers(0, k, size=labels_shape)}


def _extremes(axis=-1):
    rows = np.array(
        [
            [1e4, -1e4, 0.0, 1e4, 3.0],  # a tie at 1e4
            [-1e4, -1e4, -1e4, -1e4, -1e4],  # all equal
            [1e20, -1e20, 0.0, 1.0, 2.0],
            [3e38, -3e38, 0.0, 1.0, -1.0],  # z - z_y beyond float32's range for label 1
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [1e-30, -1e-30, 0.5, 0.5, -3e38],
        ]
    )
    labels = np.array([1, 2, 1, 1, 4, 4])
    z = rows if axis == -1 else rows.T  # axis=-2: classes first
    return [{"logits": z, "labels": labels}, {"logits": z, "labels": (labels + 2) % 5}]


def _fy_case(loss, id, alpha, hyper=None, shape=(B, C)):
    hyper = hyper or {}
    axis = hyper.get("axis", -1)
    return Case(
        loss=loss,
        id=id,
        positional=("logits", "labels"),
        make=lambda g: _make(g, shape, axis),
        reference=lambda d, h: _fy_value(d, h, alpha),
        grads={"logits": lambda d, h: _fy_grad(d, h, alpha)},
        hyper=hyper,
        class_axis=axis,
        extremes=lambda: _extremes(axis),
    )


def _perceptron_value(d, h):
    z = d["logits"]
    return z.max(-1) - np.take_along_axis(z, d["labels"][..., None], -1)[..., 0]


def _perceptron_grad(d, h):
    z = d["logits"]
    return _onehot(z.argmax(-1), z.shape[-1]) - _onehot(d["labels"], z.shape[-1])


# ---------------------------------------------------------------------------------------------
# Binary


def sparse_plus(x):
    return np.where(x <= -1, 0.0, np.where(x >= 1, x, (x + 1) ** 2 / 4))


def sparse_sigmoid(x):
    return np.clip((x + 1) / 2, 0, 1)


def _binary_make(g, soft):
    s = g.uniform(-3, 3, size=(4, 5))
    s = np.where(np.abs(np.abs(s) - 1) < 0.05, s + 0.2, s)  # away from the joins at |s| = 1
    t = g.uniform(size=s.shape) if soft else g.integers(0, 2, size=s.shape).astype(float)
    return {"logits": s, "labels": t}


def _binary_value(d, h):
    s, t = d["logits"], d["labels"]
    # The sparsemax FY loss on θ = [s/2, -s/2], y = [t, 1 - t]: Ω*(θ) + Ω(y) - ⟨θ, y⟩.
    theta = np.stack([s / 2, -s / 2], -1)
    p = entmax_ref(theta, 2.0)
    y = np.stack([t, 1 - t], -1)
    conj = np.sum(p * theta, -1) - tsallis(p, 2.0)
    return conj + tsallis(y, 2.0) - np.sum(theta * y, -1)


def _binary_extremes():
    s = np.array([1e4, -1e4, 0.0, 1e20, -1e20, 3e38, -3e38, 1.0, -1.0, 1e-30])
    return [
        {"logits": s, "labels": np.ones_like(s)},
        {"logits": s, "labels": np.zeros_like(s)},
        {"logits": s, "labels": np.full_like(s, 0.25)},
    ]


def _perceptron_make(g):
    x = g.uniform(-3, 3, size=(4, 5))
    x = np.where(np.abs(x) < 0.05, 0.2, x)
    return {"predictions": x, "targets": np.where(g.uniform(size=x.shape) < 0.5, -1.0, 1.0)}


def _perceptron_extremes():
    x = np.array([1e4, -1e4, 0.0, 1e20, -1e20, 3e38, -3e38, 1e-30])
    return [
        {"predictions": x, "targets": np.ones_like(x)},
        {"predictions": x, "targets": -np.ones_like(x)},
    ]


CASES: list[Case] = [
    _fy_case("multiclass_sparsemax_loss", "plain", 2.0),
    _fy_case("multiclass_sparsemax_loss", "axis=-2", 2.0, {"axis": -2}, shape=(3, C, 2)),
    _fy_case("entmax15_loss", "plain", 1.5),
    _fy_case("entmax15_loss", "axis=-2", 1.5, {"axis": -2}, shape=(3, C, 2)),
    _fy_case("entmax_loss", "alpha=1.5", 1.5, {"alpha": 1.5}),
    _fy_case("entmax_loss", "alpha=1.25", 1.25, {"alpha": 1.25}),
    _fy_case("entmax_loss", "alpha=2", 2.0, {"alpha": 2.0}),
    _fy_case("entmax_loss", "alpha=3", 3.0, {"alpha": 3.0}),
    Case(
        loss="multiclass_perceptron_loss",
        id="plain",
        positional=("logits", "labels"),
        make=lambda g: _make(g),
        reference=_perceptron_value,
        grads={"logits": _perceptron_grad},
        class_axis=-1,
        extremes=_extremes,
    ),
    Case(
        loss="sparsemax_loss",
        id="hard-labels",
        positional=("logits", "labels"),
        make=lambda g: _binary_make(g, soft=False),
        reference=_binary_value,
        grads={
            "logits": lambda d, h: sparse_sigmoid(d["logits"]) - d["labels"],
            "labels": lambda d, h: 2 * d["labels"] - 1 - d["logits"],
        },
        extremes=_binary_extremes,
    ),
    Case(
        loss="sparsemax_loss",
        id="soft-labels",
        positional=("logits", "labels"),
        make=lambda g: _binary_make(g, soft=True),
        reference=_binary_value,
        grads={
            "logits": lambda d, h: sparse_sigmoid(d["logits"]) - d["labels"],
            "labels": lambda d, h: 2 * d["labels"] - 1 - d["logits"],
        },
        extremes=_binary_extremes,
    ),
    Case(
        loss="perceptron_loss",
        id="plain",
        positional=("predictions", "targets"),
        make=_perceptron_make,
        reference=lambda d, h: np.maximum(0, -d["predictions"] * d["targets"]),
        grads={
            "predictions": lambda d, h: np.where(
                -d["predictions"] * d["targets"] >= 0, -d["targets"], 0.0
            )
        },
        extremes=_perceptron_extremes,
    ),
]
