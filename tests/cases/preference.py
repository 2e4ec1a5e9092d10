"""Conformance cases for the preference losses (jaxloss/_preference.py).

References are NumPy float64, written from the papers' equations as TRL documents them (DPO and its
``loss_type`` variants, ORPO, CPO, SimPO, KTO); derivatives are their closed forms.
"""

from __future__ import annotations

import numpy as np

from tests.case import Case
from tests.reference import sigmoid

B = 6
NOT_LOSSES = {"DPO_LOSS_TYPES"}


def _sp(x):
    """softplus(x) = log(1 + e^x)."""
    return np.logaddexp(0.0, x)


def _pairs(rng, spread=3.0):
    pol = rng.uniform(-30, -5, size=(2, B))
    ref = pol + rng.uniform(-spread, spread, size=(2, B))
    return {"policy_chosen": pol[0], "policy_rejected": pol[1],
            "reference_chosen": ref[0], "reference_rejected": ref[1]}


def _rho(d):
    return (d["policy_chosen"] - d["reference_chosen"],
            d["policy_rejected"] - d["reference_rejected"])


# value(ρ_w, ρ_l, β, h) and its partials d/dρ_w, d/dρ_l for each loss_type (from the formulas).
def _dpo_formulas(kind, beta, eps=0.0):
    b = beta
    if kind == "sigmoid":
        def f(w, l, h):
            z = b * (w - l)
            return (1 - eps) * _sp(-z) + eps * _sp(z)

        def dw(w, l, h):
            z = b * (w - l)
            return b * (-(1 - eps) * sigmoid(-z) + eps * sigmoid(z))

        return f, dw, lambda w, l, h: -dw(w, l, h)
    if kind == "robust":
        def f(w, l, h):
            z = b * (w - l)
            return ((1 - eps) * _sp(-z) - eps * _sp(z)) / (1 - 2 * eps)

        def dw(w, l, h):
            z = b * (w - l)
            return -b * ((1 - eps) * sigmoid(-z) + eps * sigmoid(z)) / (1 - 2 * eps)

        return f, dw, lambda w, l, h: -dw(w, l, h)
    if kind == "hinge":
        return (lambda w, l, h: np.maximum(0, 1 - b * (w - l)),
                lambda w, l, h: np.where(1 - b * (w - l) > 0, -b, 0.0),
                lambda w, l, h: np.where(1 - b * (w - l) > 0, b, 0.0))
    if kind == "ipo":
        def hbar(w, l, h):
            return w / np.maximum(h["chosen_lengths"], 1) - l / np.maximum(h["rejected_lengths"], 1)

        return (lambda w, l, h: (hbar(w, l, h) - 1 / (2 * b)) ** 2,
                lambda w, l, h: 2 * (hbar(w, l, h) - 1 / (2 * b))
                / np.maximum(h["chosen_lengths"], 1),
                lambda w, l, h: -2 * (hbar(w, l, h) - 1 / (2 * b))
                / np.maximum(h["rejected_lengths"], 1))
    if kind == "bco_pair":
        return (lambda w, l, h: _sp(-b * w) + _sp(b * l),
                lambda w, l, h: -b * sigmoid(-b * w),
                lambda w, l, h: b * sigmoid(b * l))
    if kind == "sppo_hard":
        return (lambda w, l, h: (w - 1 / (2 * b)) ** 2 + (l + 1 / (2 * b)) ** 2,
                lambda w, l, h: 2 * (w - 1 / (2 * b)),
                lambda w, l, h: 2 * (l + 1 / (2 * b)))
    if kind == "nca_pair":
        return (lambda w, l, h: _sp(-b * w) + 0.5 * _sp(b * w) + 0.5 * _sp(b * l),
                lambda w, l, h: -b * sigmoid(-b * w) + 0.5 * b * sigmoid(b * w),
                lambda w, l, h: 0.5 * b * sigmoid(b * l))
    if kind == "apo_zero":
        return (lambda w, l, h: sigmoid(-b * w) + sigmoid(b * l),
                lambda w, l, h: -b * sigmoid(b * w) * sigmoid(-b * w),
                lambda w, l, h: b * sigmoid(b * l) * sigmoid(-b * l))
    assert kind == "apo_down"
    return (lambda w, l, h: sigmoid(b * w) + sigmoid(-b * (w - l)),
            lambda w, l, h: b * sigmoid(b * w) * sigmoid(-b * w)
            - b * sigmoid(b * (w - l)) * sigmoid(-b * (w - l)),
            lambda w, l, h: b * sigmoid(b * (w - l)) * sigmoid(-b * (w - l)))


def _dpo_extremes():
    big = np.array([1e4, -1e4, 0.0, 1e4, -1e4, 0.0])
    return [{"policy_chosen": big, "policy_rejected": -big,
             "reference_chosen": np.zeros(B), "reference_rejected": np.zeros(B)},
            {"policy_chosen": np.full(B, -5.0), "policy_rejected": np.full(B, -5.0),
             "reference_chosen": np.full(B, -5.0), "reference_rejected": np.full(B, -5.0)}]


def _ipo_extremes():
    return [{**e, "chosen_lengths": np.array([1, 0, 7, 3, 1, 100]),
             "rejected_lengths": np.array([2, 1, 1, 1, 4, 1])} for e in _dpo_extremes()]


def _dpo(kind, beta=0.5, eps=0.0, lengths=False):
    f, dw, dl = _dpo_formulas(kind, beta, eps)

    def make(rng):
        d = _pairs(rng)
        if kind == "hinge":  # keep z away from the kink at 1
            w, l = _rho(d)
            z = beta * (w - l)
            d["reference_chosen"] = d["reference_chosen"] - np.where(np.abs(z - 1) < 0.1, 0.5, 0.0)
        if lengths:
            d["chosen_lengths"] = rng.integers(0, 9, size=B)
            d["rejected_lengths"] = rng.integers(1, 9, size=B)
        return d

    def args(d):
        w, l = _rho(d)
        return w, l, d

    hyper = {"beta": beta, "loss_type": kind}
    if eps:
        hyper["label_smoothing"] = eps
    return Case(
        loss="dpo_loss", id=f"{kind}" + (f"-eps={eps}" if eps else ""),
        positional=("policy_chosen", "policy_rejected", "reference_chosen", "reference_rejected"),
        make=make,
        reference=lambda d, h: f(*args(d)),
        grads={"policy_chosen": lambda d, h: dw(*args(d)),
               "reference_chosen": lambda d, h: -dw(*args(d)),
               "policy_rejected": lambda d, h: dl(*args(d)),
               "reference_rejected": lambda d, h: -dl(*args(d))},
        hyper=hyper,
        extremes=_ipo_extremes if lengths else _dpo_extremes,
    )


# ORPO ---------------------------------------------------------------------------------------

def _log1mexp(x):
    return np.log(-np.expm1(x))


def _orpo_parts(d, h):
    lw, ll = d["policy_chosen"], d["policy_rejected"]
    log_odds = (lw - ll) - (_log1mexp(lw) - _log1mexp(ll))
    return lw, ll, log_odds, h.get("beta", 0.1)


def _orpo_value(d, h):
    lw, _, lo, lam = _orpo_parts(d, h)
    return -lw + lam * _sp(-lo)


def _mean_logps(rng):
    return {"policy_chosen": rng.uniform(-3.0, -0.05, size=B),
            "policy_rejected": rng.uniform(-3.0, -0.05, size=B)}


def _orpo_extremes():
    return [{"policy_chosen": np.array([-1e-30, -1e4, -0.69, -0.7, -1e20, -1.0]),
             "policy_rejected": np.array([-1e4, -1e-30, -0.7, -0.69, -1.0, -1e20])}]


# SimPO / CPO / KTO --------------------------------------------------------------------------

def _kto_make(rng):
    pol = rng.uniform(-30, -5, size=B)
    return {"policy_log_probs": pol, "reference_log_probs": pol + rng.uniform(-3, 3, size=B),
            "desirable": np.array([True, False, True, True, False, False])}


def _kto_grad(d, h):
    b, z0 = h["beta"], h["reference_point"]
    rho = d["policy_log_probs"] - d["reference_log_probs"]
    u_good, u_bad = b * (rho - z0), b * (z0 - rho)
    good = -h["desirable_weight"] * b * sigmoid(u_good) * sigmoid(-u_good)
    bad = h["undesirable_weight"] * b * sigmoid(u_bad) * sigmoid(-u_bad)
    return np.where(d["desirable"], good, bad)


def _kto_value(d, h):
    b, z0 = h["beta"], h["reference_point"]
    rho = d["policy_log_probs"] - d["reference_log_probs"]
    good = h["desirable_weight"] * (1 - sigmoid(b * (rho - z0)))
    bad = h["undesirable_weight"] * (1 - sigmoid(b * (z0 - rho)))
    return np.where(d["desirable"], good, bad)


_KTO_HYPER = {"beta": 0.3, "reference_point": 0.4, "desirable_weight": 1.0,
              "undesirable_weight": 1.33}


def _cpo_make(rng):
    d = _mean_logps(rng)
    d["policy_chosen"] = d["policy_chosen"] * 10
    d["policy_rejected"] = d["policy_rejected"] * 10
    d["chosen_nll"] = rng.uniform(0.1, 3.0, size=B)
    return d


def _cpo_u(d, h):
    return h["beta"] * (d["policy_chosen"] - d["policy_rejected"])


def _simpo_u(d, h):
    return h["beta"] * (d["policy_chosen"] - d["policy_rejected"]) - h["gamma"]


CASES = [
    _dpo("sigmoid"),
    _dpo("sigmoid", eps=0.1),
    _dpo("robust", eps=0.2),
    _dpo("hinge"),
    _dpo("ipo", beta=0.3, lengths=True),
    _dpo("bco_pair"),
    _dpo("sppo_hard"),
    _dpo("nca_pair"),
    _dpo("apo_zero"),
    _dpo("apo_down"),
    Case(
        loss="orpo_loss", id="lambda=0.25",
        positional=("policy_chosen", "policy_rejected"), make=_mean_logps,
        reference=_orpo_value,
        grads={
            "policy_chosen": lambda d, h: -1 - _orpo_parts(d, h)[3]
            * sigmoid(-_orpo_parts(d, h)[2]) / (1 - np.exp(d["policy_chosen"])),
            "policy_rejected": lambda d, h: _orpo_parts(d, h)[3]
            * sigmoid(-_orpo_parts(d, h)[2]) / (1 - np.exp(d["policy_rejected"])),
        },
        hyper={"beta": 0.25}, extremes=_orpo_extremes,
    ),
    Case(
        loss="cpo_loss", id="alpha=0.5-eps=0.1",
        positional=("policy_chosen", "policy_rejected"), make=_cpo_make,
        reference=lambda d, h: 0.9 * _sp(-_cpo_u(d, h)) + 0.1 * _sp(_cpo_u(d, h))
        + 0.5 * d["chosen_nll"],
        grads={
            "policy_chosen": lambda d, h: -h["beta"] * (0.9 * sigmoid(-_cpo_u(d, h))
                                                       - 0.1 * sigmoid(_cpo_u(d, h))),
            "policy_rejected": lambda d, h: h["beta"] * (0.9 * sigmoid(-_cpo_u(d, h))
                                                        - 0.1 * sigmoid(_cpo_u(d, h))),
            "chosen_nll": lambda d, h: np.full(B, 0.5),
        },
        hyper={"beta": 0.2, "alpha": 0.5, "label_smoothing": 0.1},
        extremes=lambda: [{"policy_chosen": np.array([1e4, -1e4, 0.0, -1e20, -1e-30, -5.0]),
                           "policy_rejected": np.array([-1e4, 1e4, 0.0, -1e-30, -1e20, -5.0]),
                           "chosen_nll": np.array([0.0, 1e4, 1e-30, 3e37, 1.0, 0.5])}],
    ),
    Case(
        loss="simpo_loss", id="beta=2-gamma=1",
        positional=("policy_chosen", "policy_rejected"), make=_mean_logps,
        reference=lambda d, h: _sp(-_simpo_u(d, h)),
        grads={"policy_chosen": lambda d, h: -h["beta"] * sigmoid(-_simpo_u(d, h)),
               "policy_rejected": lambda d, h: h["beta"] * sigmoid(-_simpo_u(d, h))},
        hyper={"beta": 2.0, "gamma": 1.0},
        extremes=lambda: [{"policy_chosen": np.array([-1e4, -1e-30, -1.0, -1e20, -5.0, -1.0]),
                           "policy_rejected": np.array([-1e-30, -1e4, -1.0, -1.0, -1e20, -5.0])}],
    ),
    Case(
        loss="kto_loss", id="reference_point",
        positional=("policy_log_probs", "reference_log_probs", "desirable"), make=_kto_make,
        reference=_kto_value,
        grads={"policy_log_probs": _kto_grad,
               "reference_log_probs": lambda d, h: -_kto_grad(d, h)},
        hyper=_KTO_HYPER,
        extremes=lambda: [{"policy_log_probs": np.array([-1e4, -1e-30, -1e20, -5.0, 0.0, -1e4]),
                           "reference_log_probs": np.array([-1e-30, -1e4, -1.0, -5.0, -1e20, -1e4]),
                           "desirable": np.array([True, False, True, False, True, False])}],
    ),
]
