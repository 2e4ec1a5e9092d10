"""Conformance cases for the post-training objectives fused with the head
(jaxloss/fused/_post_training.py).

References build the logits in NumPy float64 (z = hidden @ W), take log-softmax token
log-probabilities (tests/lm_reference.py), sum or average them per sequence and apply the paper's
formula (as in tests/cases/preference.py and policy_gradient.py). Gradients w.r.t. the hidden
states are closed forms through the head: ∂ℓ/∂h_t = (∂ℓ/∂log p_t)·(onehot − p)_t @ Wᵀ. Every
token is kept (masks are covered in tests/test_fused_post_training.py). Reverse mode only (the
head is a ``custom_vjp``).
"""

from __future__ import annotations

import numpy as np

from tests import lm_reference as R
from tests.case import Case
from tests.reference import sigmoid

B, T, D, V = 3, 4, 3, 6


def _sp(x):
    return np.logaddexp(0.0, x)


def _with_top_label(y):
    """A label at the top of the vocabulary: a truncated `weight` is then a shape error."""
    y[0, 0] = V - 1
    return y


def _pair_make(rng):
    return {
        "chosen_hidden": rng.normal(size=(B, T, D)),
        "rejected_hidden": rng.normal(size=(B, T, D)),
        "weight": rng.normal(scale=0.7, size=(D, V)),
        "chosen_labels": rng.integers(0, V, size=(B, T)),
        "rejected_labels": rng.integers(0, V, size=(B, T)),
    }


def _tok(d, side):
    z = d[f"{side}_hidden"] @ d["weight"]
    return R.log_probs(z, d[f"{side}_labels"]), z


def _through_head(d, side, dlp):
    """∂ℓ/∂hidden from ∂ℓ/∂log p per token, [B, T] -> [B, T, D]."""
    _, z = _tok(d, side)
    dz = R.dlog_probs(z, d[f"{side}_labels"]) * dlp[..., None]
    return dz @ d["weight"].T


def _pair_extremes():
    x = np.zeros((B, T, D))
    x[0, 0] = [1e4, -1e4, 0.0]
    x[1, 2] = [-1e3, 1e3, 1e-30]
    w = (np.arange(D * V).reshape(D, V) % 5 - 2) * 0.5  # dyadic: exact float32 logits
    y = np.arange(B * T).reshape(B, T) % V
    return [
        {
            "chosen_hidden": x,
            "rejected_hidden": -x,
            "weight": w,
            "chosen_labels": y,
            "rejected_labels": y[:, ::-1].copy(),
        }
    ]


# DPO (sigmoid), reference as sequence log-probabilities --------------------------------------


def _dpo_make(rng):
    d = _pair_make(rng)
    d["reference_chosen"] = rng.uniform(-12, -4, size=B)
    d["reference_rejected"] = rng.uniform(-12, -4, size=B)
    return d


def _dpo_z(d, h):
    pc, pr = _tok(d, "chosen")[0].sum(-1), _tok(d, "rejected")[0].sum(-1)
    return h["beta"] * ((pc - d["reference_chosen"]) - (pr - d["reference_rejected"]))


def _dpo_dchosen(d, h):
    g = -h["beta"] * sigmoid(-_dpo_z(d, h))  # ∂ℓ/∂(chosen sequence log-prob)
    return _through_head(d, "chosen", np.broadcast_to(g[:, None], (B, T)))


def _dpo_extremes():
    return [
        {
            **e,
            "reference_chosen": np.array([-1e4, 0.0, -5.0]),
            "reference_rejected": np.array([0.0, -1e4, -5.0]),
        }
        for e in _pair_extremes()
    ]


# SimPO and ORPO (length-normalised) ------------------------------------------------------------


def _means(d):
    return _tok(d, "chosen")[0].mean(-1), _tok(d, "rejected")[0].mean(-1)


def _simpo_u(d, h):
    lw, ll = _means(d)
    return h["beta"] * (lw - ll) - h["gamma"]


def _orpo_parts(d, h):
    lw, ll = _means(d)
    lo = (lw - ll) - (np.log(-np.expm1(lw)) - np.log(-np.expm1(ll)))
    return lw, ll, lo, h["beta"]


def _orpo_value(d, h):
    lw, _, lo, lam = _orpo_parts(d, h)
    return -lw + lam * _sp(-lo)


def _orpo_dchosen(d, h):
    lw, _, lo, lam = _orpo_parts(d, h)
    g = (-1 - lam * sigmoid(-lo) / (1 - np.exp(lw))) / T
    return _through_head(d, "chosen", np.broadcast_to(g[:, None], (B, T)))


# KTO ------------------------------------------------------------------------------------------


def _kto_make(rng):
    return {
        "hidden": rng.normal(size=(B, T, D)),
        "weight": rng.normal(scale=0.7, size=(D, V)),
        "labels": _with_top_label(rng.integers(0, V, size=(B, T))),
        "desirable": np.array([True, False, True]),
        "reference_log_probs": rng.uniform(-12, -4, size=B),
    }


def _kto_parts(d, h):
    z = d["hidden"] @ d["weight"]
    rho = R.log_probs(z, d["labels"]).sum(-1) - d["reference_log_probs"]
    return rho, h["beta"], h["reference_point"], z


def _kto_value(d, h):
    rho, b, z0, _ = _kto_parts(d, h)
    return np.where(d["desirable"], 1 - sigmoid(b * (rho - z0)), 1 - sigmoid(b * (z0 - rho)))


def _kto_dhidden(d, h):
    rho, b, z0, z = _kto_parts(d, h)
    ug, ub = b * (rho - z0), b * (z0 - rho)
    g = np.where(d["desirable"], -b * sigmoid(ug) * sigmoid(-ug), b * sigmoid(ub) * sigmoid(-ub))
    dz = R.dlog_probs(z, d["labels"]) * g[:, None, None]
    return dz @ d["weight"].T


# Policy gradient (GRPO, token ratios, sequence mean) ----------------------------------------


def _pg_make(rng):
    d = {
        "hidden": rng.normal(size=(B, T, D)),
        "weight": rng.normal(scale=0.7, size=(D, V)),
        "labels": _with_top_label(rng.integers(0, V, size=(B, T))),
        "mask": np.ones((B, T), bool),
        "advantages": np.array([1.3, -0.7, 0.4]),
    }
    lp = R.log_probs(d["hidden"] @ d["weight"], d["labels"])
    log_r = rng.uniform(-0.1, 0.1, size=(B, T))  # inside the clip range
    d["old_log_probs"] = lp - log_r
    return d


def _pg_parts(d):
    z = d["hidden"] @ d["weight"]
    r = np.exp(R.log_probs(z, d["labels"]) - d["old_log_probs"])
    return r, z


def _pg_value(d, h):
    r, _ = _pg_parts(d)
    a = d["advantages"][:, None]
    return np.mean(-np.minimum(r * a, np.clip(r, 0.8, 1.2) * a), -1)


def _pg_dhidden(d, h):
    r, z = _pg_parts(d)
    g = -r * d["advantages"][:, None] / T  # unclipped in this data
    return (R.dlog_probs(z, d["labels"]) * g[..., None]) @ d["weight"].T


def _pg_extremes():
    x = np.zeros((B, T, D))
    x[0, 0] = [1e4, -1e4, 0.0]
    w = (np.arange(D * V).reshape(D, V) % 5 - 2) * 0.5
    y = np.arange(B * T).reshape(B, T) % V
    lp = R.log_probs(x @ w, y)
    return [
        {
            "hidden": x,
            "weight": w,
            "labels": y,
            "mask": np.ones((B, T), bool),
            "old_log_probs": lp,
            "advantages": np.array([1e20, -1e20, 0.0]),
        }
    ]


_PAIR = ("chosen_hidden", "rejected_hidden", "weight", "chosen_labels", "rejected_labels")

_ALL = [
    Case(
        loss="linear_dpo_loss",
        id="sigmoid-reference-log-probs",
        positional=_PAIR,
        make=_dpo_make,
        reference=lambda d, h: _sp(-_dpo_z(d, h)),
        grads={"chosen_hidden": _dpo_dchosen},
        hyper={"beta": 0.5, "block_size": 4},
        vmap_axes={"weight": None},
        class_axis=(-2, -1),
        extremes=_dpo_extremes,
        grad_modes=("rev",),
    ),
    Case(
        loss="linear_simpo_loss",
        id="beta=2-gamma=1",
        positional=_PAIR,
        make=_pair_make,
        reference=lambda d, h: _sp(-_simpo_u(d, h)),
        grads={
            "chosen_hidden": lambda d, h: _through_head(
                d,
                "chosen",
                np.broadcast_to((-h["beta"] * sigmoid(-_simpo_u(d, h)) / T)[:, None], (B, T)),
            )
        },
        hyper={"beta": 2.0, "gamma": 1.0, "block_size": 4},
        vmap_axes={"weight": None},
        class_axis=(-2, -1),
        extremes=_pair_extremes,
        grad_modes=("rev",),
    ),
    Case(
        loss="linear_orpo_loss",
        id="lambda=0.25",
        positional=_PAIR,
        make=_pair_make,
        reference=_orpo_value,
        grads={"chosen_hidden": _orpo_dchosen},
        hyper={"beta": 0.25, "block_size": 4},
        vmap_axes={"weight": None},
        class_axis=(-2, -1),
        extremes=_pair_extremes,
        grad_modes=("rev",),
    ),
    Case(
        loss="linear_kto_loss",
        id="reference-point",
        positional=("hidden", "weight", "labels", "desirable"),
        make=_kto_make,
        reference=_kto_value,
        grads={"hidden": _kto_dhidden},
        hyper={"beta": 0.3, "reference_point": 0.4, "block_size": 4},
        vmap_axes={"weight": None},
        class_axis=(-2, -1),
        extremes=lambda: [
            {**_kto_make(np.random.default_rng(0)), "hidden": np.full((B, T, D), 1e4)}
        ],
        grad_modes=("rev",),
    ),
    Case(
        loss="linear_policy_gradient_loss",
        id="grpo",
        positional=("hidden", "weight", "labels", "mask", "old_log_probs", "advantages"),
        make=_pg_make,
        reference=_pg_value,
        grads={"hidden": _pg_dhidden},
        hyper={"clip_low": 0.2, "block_size": 4},
        vmap_axes={"weight": None},
        class_axis=(-2, -1),
        extremes=_pg_extremes,
        grad_modes=("rev",),
    ),
]

#: DPO, SimPO, ORPO, KTO (jaxloss/fused/_post_training.py); the policy gradient's case is
#: collected by tests/cases/fused_policy_gradient_head.py.
CASES: list[Case] = [c for c in _ALL if c.loss != "linear_policy_gradient_loss"]
