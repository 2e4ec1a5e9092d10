"""Conformance cases for the asymmetric and quantile losses (jaxloss/_asymmetric.py).

References and derivatives are NumPy float64, written from the formulas (never by calling
jaxloss). Data sit at smooth points: away from r = 0 and from |u| = δ for quantile-Huber.
"""

from __future__ import annotations

import numpy as np

from tests.case import Case
from tests.reference import BIG, SHAPE
from tests.reference import away as _away
from tests.reference import big_pairs as _big_pairs
from tests.reference import r as _r
from tests.reference import residuals_away as _residuals
from tests.reference import with_entries as _with

N_BIG = BIG.size


def _one_sided_pairs():
    """Extremes with u = t - p of one sign per set, for a learnable scalar level whose
    per-element derivative grows with |u| (±u² for the expectile): its gradient is a sum over
    elements, and beyond-range terms of both signs give inf - inf in float32 where float64 sums
    them to a number."""
    mag = np.abs(BIG)
    return [
        {"predictions": mag, "targets": np.zeros(N_BIG)},
        {"predictions": np.zeros(N_BIG), "targets": mag},
        {"predictions": mag, "targets": -mag},
        {"predictions": -mag, "targets": mag},
        {"predictions": BIG, "targets": BIG},
    ]



def _tau(d, h):
    return d["tau"] if "tau" in d else np.asarray(h["tau"])


def _u(d, h):
    """u = t - p, with the targets given a trailing level axis for a vector tau."""
    t = d["targets"]
    if np.ndim(_tau(d, h)) == 1:
        t = t[..., None]
    return t - d["predictions"]


def _w(d, h):
    tau = _tau(d, h)
    return np.where(_u(d, h) < 0, 1 - tau, tau)


def _pinball_value(d, h):
    u, tau = _u(d, h), _tau(d, h)
    return np.maximum(tau * u, (tau - 1) * u)


def _pinball_dp(d, h):
    return np.where(_u(d, h) < 0, 1 - _tau(d, h), -_tau(d, h))


def _delta(d, h):
    return d["delta"] if "delta" in d else h.get("delta", 1.0)


def _qh_value(d, h):
    u, dl = _u(d, h), _delta(d, h)
    a = np.abs(u)
    huber_loss = np.where(a <= dl, 0.5 * u**2, dl * (a - 0.5 * dl))
    return _w(d, h) * huber_loss / dl


def _qh_dp(d, h):
    dl = _delta(d, h)
    return -_w(d, h) * np.clip(_u(d, h), -dl, dl) / dl


def _qh_dtau(d, h):
    u = _u(d, h)
    return np.where(u >= 0, 1.0, -1.0) * _qh_value(d, h) / _w(d, h)


def _qh_ddelta(d, h):
    dl = _delta(d, h)
    return -0.5 * _w(d, h) * np.minimum(np.abs(_u(d, h)), dl) ** 2 / dl**2


Q3 = np.array([0.1, 0.5, 0.9])


def _multi_make(rng, q=3):
    t = rng.normal(size=SHAPE)
    r = _away(rng.uniform(-2, 2, (*SHAPE, q)), [0.0, 0.5, -0.5])
    return {"predictions": t[..., None] + r, "targets": t}


def _multi_extremes(q=3):
    p = np.stack([BIG, BIG[::-1], np.zeros(N_BIG)], -1)[..., :q]
    return lambda: [{"predictions": p, "targets": np.zeros(N_BIG)},
                    {"predictions": np.zeros((N_BIG, q)), "targets": BIG},
                    {"predictions": p, "targets": BIG},
                    {"predictions": p, "targets": -BIG}]


def _asym(loss, id, make, value, dp, hyper, extremes=_big_pairs, **grads):
    """An asymmetric-loss case: dl/dt = -dl/dp for a scalar level (same shapes)."""
    all_grads = {"predictions": dp}
    if np.ndim(hyper.get("tau", 0.5)) == 0:
        all_grads["targets"] = lambda d, h: -dp(d, h)
    all_grads.update(grads)
    data_keys = set(grads) - {"predictions", "targets"}
    return Case(loss=loss, id=id, positional=("predictions", "targets"), make=make,
                reference=value, grads=all_grads, hyper=hyper,
                vmap_axes=dict.fromkeys(data_keys),
                extremes=extremes)


def _with_scalars(make, **scalars):
    return lambda g: {**make(g), **{k: np.float64(v) for k, v in scalars.items()}}


def _expectile_value(d, h):
    return _w(d, h) * _u(d, h) ** 2


def _expectile_dp(d, h):
    return -2 * _w(d, h) * _u(d, h)


def _linex_a(d, h):
    return d["a"] if "a" in d else h.get("a", 1.0)


def _linex_z(d, h):
    return _linex_a(d, h) * _r(d)


def _linex_value(d, h):
    z, m = _linex_z(d, h), h.get("max_exponent", 50.0)
    zc = np.minimum(z, m)
    return np.exp(zc) - zc - 1 + np.where(z > m, np.expm1(m) * (z - m), 0.0)


def _linex_dz(d, h):
    return np.expm1(np.minimum(_linex_z(d, h), h.get("max_exponent", 50.0)))


def _linex_make(rng):
    d = _residuals(rng, scale=3.0)
    d["predictions"].flat[::4] = d["targets"].flat[::4] + rng.uniform(-0.09, 0.09, 3)  # series
    return d


ASYMMETRIC = [
    _asym("pinball_loss", "tau=0.9", _residuals, _pinball_value, _pinball_dp, {"tau": 0.9}),
    _asym("pinball_loss", "tau=0.5", _residuals, lambda d, h: 0.5 * np.abs(_r(d)),
          lambda d, h: 0.5 * np.sign(_r(d)), {"tau": 0.5}),
    _asym("pinball_loss", "tau=0.3-learnable", _with_scalars(_residuals, tau=0.3),
          _pinball_value, _pinball_dp, {}, extremes=_with(_big_pairs, tau=np.float64(0.3)),
          tau=lambda d, h: _u(d, h)),
    _asym("pinball_loss", "tau=[0.1,0.5,0.9]", _multi_make, _pinball_value, _pinball_dp,
          {"tau": Q3}, extremes=_multi_extremes()),
    _asym("quantile_huber_loss", "tau=0.25,delta=1",
          lambda g: _residuals(g, avoid=(1.0,)), _qh_value, _qh_dp, {"tau": 0.25}),
    _asym("quantile_huber_loss", "tau,delta-learnable",
          _with_scalars(lambda g: _residuals(g, avoid=(0.7,)), tau=0.8, delta=0.7),
          _qh_value, _qh_dp, {},
          extremes=_with(_one_sided_pairs, tau=np.float64(0.8), delta=np.float64(0.7)),
          tau=_qh_dtau, delta=_qh_ddelta),
    _asym("quantile_huber_loss", "tau=[0.1,0.5,0.9],delta=0.5", _multi_make, _qh_value, _qh_dp,
          {"tau": Q3, "delta": 0.5}, extremes=_multi_extremes()),
    _asym("expectile_loss", "tau=0.8", _residuals, _expectile_value, _expectile_dp,
          {"tau": 0.8}),
    _asym("expectile_loss", "tau=0.2-learnable", _with_scalars(_residuals, tau=0.2),
          _expectile_value, _expectile_dp, {},
          extremes=_with(_one_sided_pairs, tau=np.float64(0.2)),
          tau=lambda d, h: np.where(_u(d, h) >= 0, 1.0, -1.0) * _u(d, h) ** 2),
    _asym("expectile_loss", "tau=[0.1,0.5,0.9]", _multi_make, _expectile_value, _expectile_dp,
          {"tau": Q3}, extremes=_multi_extremes()),
    _asym("linex_loss", "a=1", _linex_make, _linex_value,
          lambda d, h: _linex_a(d, h) * _linex_dz(d, h), {}),
    # z = -0.7 r reaches 2.1 > max_exponent = 1: the linear continuation is covered too.
    _asym("linex_loss", "a=-0.7-learnable,max_exponent=1",
          _with_scalars(lambda g: _residuals(g, avoid=(1 / 0.7,), scale=3.0), a=-0.7),
          _linex_value, lambda d, h: _linex_a(d, h) * _linex_dz(d, h), {"max_exponent": 1.0},
          extremes=_with(_big_pairs, a=np.float64(-0.7)),
          a=lambda d, h: _r(d) * _linex_dz(d, h)),
]


CASES: list[Case] = [*ASYMMETRIC]
