"""Conformance cases for the policy-gradient losses (jaxloss/_policy_gradient.py).

References are NumPy float64, written from PPO's clipped surrogate (Schulman et al. 2017, Eq. 7),
GRPO's objective with the k3 KL estimate (Shao et al. 2024, Eq. 3–4), GSPO's sequence ratio
(Zheng et al. 2025) and CISPO's detached clipped weight (MiniMax-M1, §3.1). Every token is kept
here (a masked token feeds nothing, so the harness's NaN check would not see it there);
tests/test_post_training.py covers masks. Log-ratios stay away from the clip boundaries.
"""

from __future__ import annotations

import numpy as np

from tests.case import Case

B, T = 4, 5
NOT_LOSSES = {"group_relative_advantages", "sequence_log_probs"}


def _away(x, points, gap=0.03):
    for a in points:
        close = np.abs(x - a) < gap
        x = np.where(close, a + np.where(x >= a, 2 * gap, -2 * gap), x)
    return x


def _make(rng, scale=0.4, reference=True):
    lp = rng.uniform(-4, -0.1, size=(B, T))
    log_ratio = _away(rng.uniform(-scale, scale, size=(B, T)), [np.log(0.8), np.log(1.2)])
    d = {"log_probs": lp, "old_log_probs": lp - log_ratio,
         "advantages": _away(rng.normal(size=(B, T)), [0.0]),
         "mask": np.ones((B, T), bool)}
    if reference:
        d["reference_log_probs"] = lp + rng.uniform(-0.5, 0.5, size=(B, T))
    return d


def _ppo_parts(d, h):
    lo, hi, c = h["clip_low"], h.get("clip_high", h["clip_low"]), h.get("kl_coef", 0.0)
    a = d["advantages"]
    r = np.exp(d["log_probs"] - d["old_log_probs"])
    clipped = ((a > 0) & (r > 1 + hi)) | ((a < 0) & (r < 1 - lo))
    surrogate = np.minimum(r * a, np.clip(r, 1 - lo, 1 + hi) * a)  # PPO's min form, verbatim
    dd = d["reference_log_probs"] - d["log_probs"]
    k3 = np.expm1(dd) - dd
    return r, clipped, -surrogate + c * k3, dd, c


def _ppo_value(d, h):
    return np.mean(_ppo_parts(d, h)[2], axis=-1)


def _ppo_dlp(d, h):
    r, clipped, _, dd, c = _ppo_parts(d, h)
    return (np.where(clipped, 0.0, -r * d["advantages"]) + c * (1 - np.exp(dd))) / T


def _ppo_dold(d, h):
    r, clipped, *_ = _ppo_parts(d, h)
    return np.where(clipped, 0.0, r * d["advantages"]) / T


def _ppo_dadv(d, h):
    r, clipped, *_ = _ppo_parts(d, h)
    lo, hi = h["clip_low"], h.get("clip_high", h["clip_low"])
    bound = np.where(d["advantages"] > 0, 1 + hi, 1 - lo)
    return -np.where(clipped, bound, r) / T


def _ppo_dref(d, h):
    *_, dd, c = _ppo_parts(d, h)
    return c * np.expm1(dd) / T


def _gspo_parts(d, h):
    s = np.exp(np.mean(d["log_probs"] - d["old_log_probs"], axis=-1, keepdims=True))
    return np.broadcast_to(s, (B, T)), h["clip_low"], h["clip_high"]


def _gspo_value(d, h):
    s, lo, hi = _gspo_parts(d, h)
    a = d["advantages"]
    return np.mean(-np.minimum(s * a, np.clip(s, 1 - lo, 1 + hi) * a), axis=-1)


def _gspo_dlp(d, h):
    # unclipped everywhere in this data: value_i = -(s_i/T) Σ_u A_u, ds_i/dlp_t = s_i/T
    s, _, _ = _gspo_parts(d, h)
    return np.broadcast_to(-s[:, :1] * d["advantages"].sum(-1, keepdims=True) / T**2, (B, T))


def _gspo_make(rng):
    d = _make(rng, scale=0.05, reference=False)
    d["advantages"] = _away(rng.normal(size=(B, T)), [0.0])
    return d


def _cispo_weight(d, h):
    r = np.exp(d["log_probs"] - d["old_log_probs"])
    return np.minimum(r, h["clip_high"])


def _cispo_make(rng):
    d = _make(rng, scale=2.0, reference=False)  # ratios up to e²: some capped at 5
    d["old_log_probs"] = d["log_probs"] - _away(d["log_probs"] - d["old_log_probs"], [np.log(5)])
    return d


def _extremes(reference=True):
    """Huge log-probabilities and advantages; huge ratios only where PPO clips them."""
    lp = np.array([[-1e4, -1e-30, -1e20, -3e3, -1.0]] * B)
    log_ratio = np.array([[0.0, 1e4, -1e4, 0.0, 1e-30],
                          [1e4, 0.0, 0.0, -1e4, 0.0],
                          [0.0, 0.0, 0.0, 0.0, 0.0],
                          [-1e4, 1e4, 0.0, 1e-30, -1e-30]])
    adv = np.where(log_ratio > 0, 1e20, np.where(log_ratio < 0, -1e20, 1e-30))
    adv[2] = [1e20, -1e20, 3e30, -1e-30, 0.0]
    d = {"log_probs": lp, "old_log_probs": lp - log_ratio, "advantages": adv,
         "mask": np.ones((B, T), bool)}
    if reference:
        d["reference_log_probs"] = lp
    return [d]


def _gspo_extremes():
    lp = np.array([[-1e4, -1e-30, -1e20, -3e3, -1.0]] * B)
    row = np.array([1e4, -1e4, 0.0, 1e-30])[:, None] * np.ones((B, T))
    adv = np.array([1e20, -1e20, -3e30, 1.0])[:, None] * np.ones((B, T))
    return [{"log_probs": lp, "old_log_probs": lp - row, "advantages": adv,
             "mask": np.ones((B, T), bool)}]


CASES = [
    Case(
        loss="policy_gradient_loss", id="grpo-k3",
        positional=("log_probs", "old_log_probs", "advantages", "mask"),
        make=_make, reference=_ppo_value,
        grads={"log_probs": _ppo_dlp, "old_log_probs": _ppo_dold, "advantages": _ppo_dadv,
               "reference_log_probs": _ppo_dref},
        hyper={"clip_low": 0.2, "kl_coef": 0.04}, class_axis=-1, extremes=_extremes,
    ),
    Case(
        loss="policy_gradient_loss", id="gspo",
        positional=("log_probs", "old_log_probs", "advantages", "mask"),
        make=_gspo_make, reference=_gspo_value,
        grads={"log_probs": _gspo_dlp},
        hyper={"clip_low": 0.2, "clip_high": 0.3, "importance": "sequence"}, class_axis=-1,
        nan_scope="example", extremes=_gspo_extremes,
    ),
    Case(
        loss="cispo_loss", id="cap=5",
        positional=("log_probs", "old_log_probs", "advantages", "mask"),
        make=_cispo_make,
        reference=lambda d, h: np.mean(-_cispo_weight(d, h) * d["advantages"] * d["log_probs"],
                                       axis=-1),
        # The value is a surrogate (its gradient in log_probs is, by design, not its derivative):
        # the advantages are where value and gradient agree.
        grads={"advantages": lambda d, h: -_cispo_weight(d, h) * d["log_probs"] / T},
        hyper={"clip_high": 5.0}, class_axis=-1, extremes=lambda: _extremes(reference=False),
    ),
]
