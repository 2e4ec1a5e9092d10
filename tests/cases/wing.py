"""Conformance cases for the small-error losses (jaxloss/_wing.py).

References are NumPy float64 formulas written from the papers (never calls into jaxloss): Wing
(Feng et al. 2018) and Adaptive Wing in mmpose's power form (Wang et al. 2019), with the closed
forms of the derivatives in every input and hyperparameter.
"""

from __future__ import annotations

import numpy as np

from tests.case import Case
from tests.reference import hyper_value as _get
from tests.reference import r as _r
from tests.reference import residuals as _residuals
from tests.reference import robust_extremes as _extremes

# --------------------------------------------------------------------------------------------
# Wing


def _wing_parts(d, h):
    w, e = _get(d, h, "omega", 10.0), _get(d, h, "epsilon", 2.0)
    return _r(d), w, e


def _wing_value(d, h):
    r, w, e = _wing_parts(d, h)
    a = np.abs(r)
    c = w - w * np.log(1 + w / e)
    return np.where(a < w, w * np.log(1 + a / e), a - c)


def _wing_dr(d, h):
    r, w, e = _wing_parts(d, h)
    a = np.abs(r)
    return np.sign(r) * np.where(a < w, w / (e + a), 1.0)


def _wing_domega(d, h):
    r, w, e = _wing_parts(d, h)
    a = np.abs(r)
    return np.where(a < w, np.log(1 + a / e), np.log(1 + w / e) + w / (e + w) - 1)


def _wing_depsilon(d, h):
    r, w, e = _wing_parts(d, h)
    a = np.abs(r)
    return np.where(a < w, -w * a / (e * (e + a)), -(w**2) / (e * (e + w)))


WING = [
    Case(
        loss="wing_loss",
        id="omega=3,epsilon=0.5-learnable",
        positional=("predictions", "targets"),
        make=lambda g: {**_residuals(g, avoid=(3.0,), scale=6.0), "omega": np.float64(3.0),
                        "epsilon": np.float64(0.5)},
        reference=_wing_value,
        grads={"predictions": _wing_dr, "targets": lambda d, h: -_wing_dr(d, h),
               "omega": _wing_domega, "epsilon": _wing_depsilon},
        vmap_axes={"omega": None, "epsilon": None},
        extremes=_extremes({"omega": np.float64(3.0), "epsilon": np.float64(0.5)}),
    ),
]


# --------------------------------------------------------------------------------------------
# Adaptive Wing (mmpose's power form for the value)

AW_DEFAULT = {"omega": 14.0, "theta": 0.5, "epsilon": 1.0, "alpha": 2.1}


def _aw_parts(d, h):
    k = {n: _get(d, h, n, v) for n, v in AW_DEFAULT.items()}
    return _r(d), d["targets"], k["omega"], k["theta"], k["epsilon"], k["alpha"]


def _aw_value(d, h):
    r, y, w, th, ep, al = _aw_parts(d, h)
    delta = np.abs(r)
    A = w * (1 / (1 + (th / ep) ** (al - y))) * (al - y) * (th / ep) ** (al - y - 1) / ep
    C = th * A - w * np.log(1 + (th / ep) ** (al - y))
    return np.where(delta < th, w * np.log(1 + (delta / ep) ** (al - y)), A * delta - C)


def _aw_terms(d, h):
    """(∂l/∂δ, ∂l/∂e, ∂l/∂ω, ∂l/∂θ, ∂l/∂ε) in closed form, e = α - y."""
    r, y, w, th, ep, al = _aw_parts(d, h)
    delta = np.abs(r)
    e = al - y
    inside = delta < th
    s = (delta / ep) ** e
    S = (th / ep) ** e
    Lt = np.log(th / ep)
    A = w * e * S / (th * (1 + S))
    d_delta = np.where(inside, w * e * s / (delta * (1 + s)), A)
    d_e = np.where(inside, w * s * np.log(delta / ep) / (1 + s),
                   (delta - th) * (w / th) * (S / (1 + S) + e * Lt * S / (1 + S) ** 2)
                   + w * Lt * S / (1 + S))
    d_w = np.where(inside, np.log1p(s), A * (delta - th) / w + np.log1p(S))
    dA_dth = (w * e / th) * (e * S / th) / (1 + S) ** 2 - A / th
    d_th = np.where(inside, 0.0, (delta - th) * dA_dth)
    dA_dep = (w * e / th) * (-e * S / ep) / (1 + S) ** 2
    d_ep = np.where(inside, -w * e * s / (ep * (1 + s)), (delta - th) * dA_dep - A * th / ep)
    return np.sign(r), d_delta, d_e, d_w, d_th, d_ep


def _aw_dp(d, h):
    sg, dd, *_ = _aw_terms(d, h)
    return sg * dd


def _aw_dt(d, h):
    sg, dd, de, *_ = _aw_terms(d, h)
    return -sg * dd - de


def _aw_targets(rng, shape):
    return rng.uniform(0.0, 1.0, size=shape)


def _aw_extremes(extra=None):
    extra = extra or {}
    # One |r| near float32's max: the derivatives w.r.t. the (scalar) hyperparameters are sums
    # over elements, and two beyond-range terms of opposite signs give inf - inf in float32
    # where float64 still sums them.
    p = np.array([[1e4, -1e4, 0.0, 1e-30], [0.5, 1.0, 1e30, -3e3], [3e38, 1e20, -1e20, 2.0]])
    t = np.array([[0.0, 1.0, 1.0, 0.0], [0.5, 1.0, 0.3, 0.7], [1.0, 0.0, 0.5, 1e-30]])
    return lambda: [{"predictions": p, "targets": t, **extra},
                    {"predictions": t, "targets": t, **extra},
                    {"predictions": t + 1e-30, "targets": t, **extra}]


AW_LEARN = {"omega": np.float64(10.0), "theta": np.float64(0.6), "epsilon": np.float64(0.8),
            "alpha": np.float64(2.3)}

ADAPTIVE_WING = [
    Case(
        loss="adaptive_wing_loss",
        id="all-hyperparameters-learnable",
        positional=("predictions", "targets"),
        make=lambda g: {**_residuals(g, avoid=(0.6,), scale=1.5, targets=_aw_targets),
                        **AW_LEARN},
        reference=_aw_value,
        grads={"predictions": _aw_dp, "targets": _aw_dt,
               "alpha": lambda d, h: _aw_terms(d, h)[2],
               "omega": lambda d, h: _aw_terms(d, h)[3],
               "theta": lambda d, h: _aw_terms(d, h)[4],
               "epsilon": lambda d, h: _aw_terms(d, h)[5]},
        vmap_axes={k: None for k in AW_LEARN},
        extremes=_aw_extremes(AW_LEARN),
    ),
]


CASES: list[Case] = [*WING, *ADAPTIVE_WING]
