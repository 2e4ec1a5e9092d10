"""Conformance cases for the Lovász hinge and Lovász-softmax losses.

References are NumPy float64 from Berman, Rannen Triki & Blaschko (CVPR 2018): the Jaccard set
loss Δ(M) = |M| / |F ∪ M| is evaluated on explicit pixel sets (not the cumulative-sum form the
library uses), its Lovász extension Σ_k m_(k) (Δ(top k) - Δ(top k-1)) on the errors sorted in
decreasing order, and the gradient is that piecewise-linear function's slope, g_k at the pixel
of rank k (chained through the softmax for Lovász-softmax). Inputs keep the errors apart (no
ties), where the gradient is unique.
"""

from __future__ import annotations

import numpy as np

from tests.case import Case

IGNORE = 255


def jaccard_slopes(errors, truth):
    """(order, g): pixels by decreasing error and the increments of Δ(M) = |M| / |F ∪ M|."""
    order = np.argsort(-errors, kind="stable")
    fg = set(np.flatnonzero(truth).tolist())
    g, prev, taken = [], 0.0, set()
    for i in order.tolist():
        taken.add(i)
        cur = len(taken) / len(fg | taken)
        g.append(cur - prev)
        prev = cur
    return order, np.array(g)


def lovasz_extension(errors, truth):
    """(value, d value / d errors) of the Lovász extension for one set of pixels."""
    if errors.size == 0:
        return 0.0, errors * 0
    order, g = jaccard_slopes(errors, truth)
    grad = np.zeros_like(errors)
    grad[order] = g
    return float(np.sum(errors[order] * g)), grad


# ---------------------------------------------------------------------------------------------
# Hinge


def _hinge_image(s, y, ignore):
    keep = np.ones(s.shape, bool) if ignore is None else y != ignore
    sig = 2.0 * y[keep] - 1
    e = 1 - sig * s[keep]
    value, dv = lovasz_extension(np.maximum(e, 0), y[keep] == 1)
    # The extension sorts max(0, e); zero errors sit at the bottom, with slope times 0.
    ds = np.zeros(s.shape)
    ds[keep] = -sig * dv * (e > 0)
    return value, ds


def _per_image(d, h, fn, tail=0):
    """Applies ``fn`` to each image (the last num_spatial_dims [+ tail] axes)."""
    nsd = h["num_spatial_dims"]
    x = d["logits"]
    lead = x.shape[: x.ndim - nsd - tail]
    values, grads = np.zeros(lead), np.zeros(x.shape)
    for idx in np.ndindex(*lead):
        values[idx], grads[idx] = fn(x[idx], d["labels"][idx], h.get("ignore_index"))
    return values, grads


def _hinge_make(g, shape, ignore):
    s = g.normal(scale=1.5, size=shape)
    y = g.integers(0, 2, size=shape)
    if ignore:
        y = np.where(g.uniform(size=shape) < 0.25, IGNORE, y)
    return {"logits": s, "labels": y}


def _hinge_extremes(shape):
    n = int(np.prod(shape))
    base = np.array([1e4, -1e4, 0.0, 1e20, -1e20, 3e38, -3e38, 2.0, -0.5, 1e-30])
    s = np.resize(base, n).reshape(shape)
    y = np.resize([1, 0, 1, 1, 0, 0, 1], n).reshape(shape)
    return [
        {"logits": s, "labels": y},
        {"logits": s, "labels": 1 - y},
        {"logits": s, "labels": np.zeros(shape, int)},
        {"logits": np.full(shape, 1e4), "labels": y},
    ]


def _hinge_case(id, shape, nsd, ignore=False):
    hyper = {"num_spatial_dims": nsd, **({"ignore_index": IGNORE} if ignore else {})}
    return Case(
        loss="lovasz_hinge_loss",
        id=id,
        positional=("logits", "labels"),
        make=lambda g: _hinge_make(g, shape, ignore),
        reference=lambda d, h: _per_image(d, h, _hinge_image)[0],
        grads={"logits": lambda d, h: _per_image(d, h, _hinge_image)[1]},
        hyper=hyper,
        class_axis=tuple(range(-nsd, 0)),
        extremes=lambda: _hinge_extremes(shape),
        nan_scope="example",
    )


# ---------------------------------------------------------------------------------------------
# Softmax


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _softmax_image(z, y, ignore, classes="present"):
    shape, c = z.shape, z.shape[-1]
    z, y = z.reshape(-1, c), y.reshape(-1)
    keep = np.ones(y.shape, bool) if ignore is None else y != ignore
    p = _softmax(z)
    dp = np.zeros_like(p)
    losses, weights = [], []
    for k in range(c):
        truth = y[keep] == k
        m = np.abs(truth - p[keep, k])
        value, dm = lovasz_extension(m, truth)
        w = 1.0 if classes == "all" else float(truth.any())
        losses.append(value)
        weights.append(w)
        col = np.zeros(y.shape)
        col[keep] = dm * np.sign(p[keep, k] - truth)
        dp[:, k] = w * col
    weights = np.array(weights)
    denom = max(weights.sum(), 1.0)
    value = float(np.dot(weights, losses) / denom)
    dp /= denom
    dz = p * (dp - np.sum(p * dp, -1, keepdims=True))
    return value, dz.reshape(shape)


def _softmax_ref(d, h):
    classes = h.get("classes", "present")
    fn = lambda z, y, ig: _softmax_image(z, y, ig, classes)  # noqa: E731
    values, grads = _per_image(d, h, fn, tail=1)
    return values, grads.reshape(d["logits"].shape)


def _softmax_make(g, shape, ignore, absent):
    z = g.normal(scale=1.5, size=shape)
    c = shape[-1]
    y = g.integers(0, c - 1 if absent else c, size=shape[:-1])
    if ignore:
        y = np.where(g.uniform(size=y.shape) < 0.25, IGNORE, y)
    return {"logits": z, "labels": y}


def _softmax_extremes(shape):
    n = int(np.prod(shape[:-1]))
    c = shape[-1]
    base = np.array([1e4, -1e4, 0.0, 1e20, -1e20, 3e38, -3e38, 2.0, -0.5, 1e-30, 7.0])
    z = np.resize(base, n * c).reshape(shape)
    y = np.resize(np.arange(c), n).reshape(shape[:-1])
    return [
        {"logits": z, "labels": y},
        {"logits": -z, "labels": (y + 1) % c},
        {"logits": np.zeros(shape), "labels": y},
        {"logits": np.full(shape, -1e4), "labels": np.zeros(shape[:-1], int)},
    ]


def _softmax_case(id, shape, nsd, classes=None, ignore=False, absent=False):
    hyper = {"num_spatial_dims": nsd}
    if classes:
        hyper["classes"] = classes
    if ignore:
        hyper["ignore_index"] = IGNORE
    return Case(
        loss="lovasz_softmax_loss",
        id=id,
        positional=("logits", "labels"),
        make=lambda g: _softmax_make(g, shape, ignore, absent),
        reference=lambda d, h: _softmax_ref(d, h)[0],
        grads={"logits": lambda d, h: _softmax_ref(d, h)[1]},
        hyper=hyper,
        class_axis=tuple(range(-nsd - 1, 0)),
        extremes=lambda: _softmax_extremes(shape),
        nan_scope="example",
    )


CASES: list[Case] = [
    _hinge_case("per-image", (3, 7), 1),
    _hinge_case("2d+ignore", (3, 3, 4), 2, ignore=True),
    # The leading axis of 2 images pooled into one set (smp's per_image=False) under a batch axis.
    _hinge_case("pooled-batch", (3, 2, 5), 2),
    _softmax_case("present", (3, 6, 4), 1, absent=True),
    _softmax_case("all+2d", (2, 3, 3, 4), 2, classes="all", absent=True),
    _softmax_case("present+ignore", (3, 8, 3), 1, ignore=True),
    _softmax_case("pooled-batch+ignore", (2, 2, 5, 3), 2, ignore=True),
]
