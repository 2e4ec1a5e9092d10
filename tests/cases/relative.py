"""Conformance cases for the relative, asymmetric and likelihood losses
(jaxloss/_relative.py, _asymmetric.py, _likelihood.py).

References and derivatives are NumPy float64, written from the formulas (never by calling
jaxloss). Data sit at smooth points: away from the kinks (r = 0 for the absolute-value and
asymmetric losses, |u| = δ for quantile-Huber, |t| = ε for the percentage error, the Stirling
switch at t = 1, the clamps). Straight-through clamps are not checked here (finite differences
see the clamp's true derivative, 0); tests/test_likelihood.py asserts them directly.
"""

from __future__ import annotations

import math

import numpy as np

from tests.case import Case

SHAPE = (3, 4)


# --------------------------------------------------------------------------------------------
# Helpers (NumPy only)

def _away(x, points, gap=0.05):
    """Moves entries of x within ``gap`` of any of ``points`` to 2·gap beyond it."""
    for a in points:
        close = np.abs(x - a) < gap
        x = np.where(close, a + np.where(x >= a, 2 * gap, -2 * gap), x)
    return x


def _residuals(rng, avoid=(), scale=2.0, shape=SHAPE):
    """(predictions, targets) with r = p - t away from 0 and from ±each value in ``avoid``."""
    r = rng.uniform(-scale, scale, size=shape)
    r = _away(r, [0.0, *avoid, *(-a for a in avoid)])
    t = rng.normal(size=shape)
    return {"predictions": t + r, "targets": t}


def _r(d):
    return d["predictions"] - d["targets"]


#: Extreme magnitudes: 1e20 (its square overflows float32), ±3e38 (near float32's max: p - t
#: overflows against -p, while the loss may be representable), tiny ±1e-30.
BIG = np.array([1e4, -1e4, 0.0, 1e-30, -3e3, 1e20, -1e20, 3e38, -3e38, -1e-30])
N_BIG = BIG.size


def _big_pairs(first="predictions", second="targets"):
    return [
        {first: BIG, second: np.zeros(N_BIG)},
        {first: np.zeros(N_BIG), second: BIG},
        {first: BIG, second: BIG},
        {first: BIG, second: BIG[::-1].copy()},
        {first: BIG, second: -BIG},
    ]


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


def _with(extremes, **extra):
    return lambda: [{**e, **extra} for e in extremes()]


def _signed_magnitudes(rng, lo, hi, shape=SHAPE):
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(lo, hi, size=shape)


# --------------------------------------------------------------------------------------------
# Relative errors

EPS = 1e-7


def _ape_make(rng):
    t = _signed_magnitudes(rng, 0.5, 3.0)
    r = _away(rng.uniform(-2, 2, SHAPE), [0.0])
    return {"predictions": t + r, "targets": t}


def _ape_small_make(rng):
    """eps = 0.5: about half the targets below it (the clamped branch), a few exactly 0."""
    t = _away(_signed_magnitudes(rng, 0.0, 1.5), [0.5, -0.5])
    t.flat[::5] = 0.0
    r = _away(rng.uniform(-2, 2, SHAPE), [0.0])
    return {"predictions": t + r, "targets": t}


def _ape_value(d, h):
    eps = h.get("eps", EPS)
    return np.abs(_r(d)) / np.maximum(np.abs(d["targets"]), eps)


def _ape_dp(d, h):
    eps = h.get("eps", EPS)
    return np.sign(_r(d)) / np.maximum(np.abs(d["targets"]), eps)


def _ape_dt(d, h):
    eps = h.get("eps", EPS)
    t, r = d["targets"], _r(d)
    big = np.abs(t) > eps
    ts = np.where(big, t, 1.0)
    return np.where(big, -np.sign(r) / np.abs(ts) - np.abs(r) * np.sign(ts) / ts**2,
                    -np.sign(r) / eps)


def _smape_make(rng):
    p = _signed_magnitudes(rng, 0.3, 3.0)
    t = _signed_magnitudes(rng, 0.3, 3.0)
    p = np.where(np.abs(p - t) < 0.1, p + 0.2 * np.sign(p), p)
    return {"predictions": p, "targets": t}


def _smape_den(d, h):
    return np.abs(d["predictions"]) + np.abs(d["targets"]) + h.get("eps", EPS)


def _smape_value(d, h):
    return 2 * np.abs(_r(d)) / _smape_den(d, h)


def _smape_dp(d, h):
    den, r = _smape_den(d, h), _r(d)
    return 2 * np.sign(r) / den - 2 * np.abs(r) * np.sign(d["predictions"]) / den**2


def _smape_dt(d, h):
    den, r = _smape_den(d, h), _r(d)
    return -2 * np.sign(r) / den - 2 * np.abs(r) * np.sign(d["targets"]) / den**2


def _smape_extremes():
    return [*_big_pairs(),
            {"predictions": np.array([0.0, 0.0, 1e-30, -2e-30, 3e38, 3e38, 1e-30, 1e20, -3e38,
                                      2.0]),
             "targets": np.array([0.0, 1e-30, 0.0, 3e-30, 1e-30, 3e38, -3e38, 1e-20, 1e-30,
                                  -3e38])}]


def _msle_make(rng):
    return {"predictions": rng.uniform(-0.6, 4.0, SHAPE), "targets": rng.uniform(-0.6, 4.0, SHAPE)}


def _msle_d(d):
    return np.log1p(d["predictions"]) - np.log1p(d["targets"])


def _msle_extremes():
    return [*_big_pairs(),
            {"predictions": np.array([-1.0, -1.0 + 1e-9, -5.0, 0.0, 3e38, -1.0, 1e-30, 1e20,
                                      -0.5, 3e38]),
             "targets": np.array([-1.0, 3.0, -1.0, -2.0, -1.0, 3e38, 3e38, -1e20, 1e-30,
                                  3e38])}]


def _positive_extremes():
    return [*_big_pairs(),
            {"predictions": np.array([0.0, -1.0, 1e-30, 5.0, 3e38, 1e-30, 3e38, 1e20, 1e-20,
                                      -3e38]),
             "targets": np.array([0.0, 2.0, 1e-30, -3.0, 1e-30, 3e38, 3e38, 1e-20, 1e20,
                                  3e38])}]


def _lr_make(rng, away_from_one=False):
    t = rng.uniform(0.2, 5.0, SHAPE)
    z = rng.uniform(-1.5, 1.5, SHAPE)
    if away_from_one:
        z = _away(z, [0.0])
    return {"predictions": t * np.exp(z), "targets": t}


def _lr_d(d):
    return np.log(d["predictions"]) - np.log(d["targets"])


RELATIVE = [
    Case(
        loss="absolute_percentage_error", id="plain",
        positional=("predictions", "targets"), make=_ape_make, reference=_ape_value,
        grads={"predictions": _ape_dp, "targets": _ape_dt}, extremes=_big_pairs,
    ),
    Case(
        loss="absolute_percentage_error", id="eps=0.5-small-and-zero-targets",
        positional=("predictions", "targets"), make=_ape_small_make, reference=_ape_value,
        grads={"predictions": _ape_dp, "targets": _ape_dt}, hyper={"eps": 0.5},
        extremes=_big_pairs,
    ),
    Case(
        loss="symmetric_absolute_percentage_error", id="plain",
        positional=("predictions", "targets"), make=_smape_make, reference=_smape_value,
        grads={"predictions": _smape_dp, "targets": _smape_dt}, extremes=_smape_extremes,
    ),
    Case(
        loss="squared_logarithmic_error", id="plain",
        positional=("predictions", "targets"), make=_msle_make,
        reference=lambda d, h: _msle_d(d) ** 2,
        grads={"predictions": lambda d, h: 2 * _msle_d(d) / (1 + d["predictions"]),
               "targets": lambda d, h: -2 * _msle_d(d) / (1 + d["targets"])},
        extremes=_msle_extremes,
    ),
    Case(
        loss="log_ratio_error", id="squared",
        positional=("predictions", "targets"), make=_lr_make,
        reference=lambda d, h: _lr_d(d) ** 2,
        grads={"predictions": lambda d, h: 2 * _lr_d(d) / d["predictions"],
               "targets": lambda d, h: -2 * _lr_d(d) / d["targets"]},
        extremes=_positive_extremes,
    ),
    Case(
        loss="log_ratio_error", id="absolute",
        positional=("predictions", "targets"), make=lambda g: _lr_make(g, away_from_one=True),
        reference=lambda d, h: np.abs(_lr_d(d)),
        grads={"predictions": lambda d, h: np.sign(_lr_d(d)) / d["predictions"],
               "targets": lambda d, h: -np.sign(_lr_d(d)) / d["targets"]},
        hyper={"squared": False}, extremes=_positive_extremes,
    ),
]


# --------------------------------------------------------------------------------------------
# Asymmetric

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
    huber = np.where(a <= dl, 0.5 * u**2, dl * (a - 0.5 * dl))
    return _w(d, h) * huber / dl


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


# --------------------------------------------------------------------------------------------
# Likelihood

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _gauss_make(rng):
    d = _residuals(rng)
    d["variance"] = rng.uniform(0.5, 3.0, SHAPE)
    return d


def _gauss_value(d, h):
    v, r = d["variance"], _r(d)
    return 0.5 * (np.log(v) + r**2 / v) + (HALF_LOG_2PI if h.get("full") else 0.0)


def _gauss_extremes(name="variance",
                    values=(0.0, 1e-30, -1.0, 1e4, 1e-6, 1e4, 3e38, 1e-30, 3e38, -3e38)):
    v = np.array(values)
    return lambda: [{**e, name: v} for e in _big_pairs()]


def _gauss_dv(d, h):
    v = d["variance"]
    return 0.5 * (1 / v - _r(d) ** 2 / v**2)


#: Log-variances for the extremes (one per element of BIG): 60 against |r| = 1e20 gives
#: r² e^-s = 8.8e13 (r² alone overflows float32); 3e38 against |r| = 6e38 needs r² e^-s = 0.
LOG_VARIANCES = (-1e4, 1e4, 0.0, -88.0, 100.0, 60.0, 3e38, 3e38, -3e38, 1e4)


def _lv_make(rng):
    d = _residuals(rng)
    d["log_variance"] = rng.uniform(-2.0, 2.0, SHAPE)
    return d


def _lv_value(d, h):
    s, r = d["log_variance"], _r(d)
    return 0.5 * (s + r**2 * np.exp(-s)) + (HALF_LOG_2PI if h.get("full") else 0.0)


def _counts(rng, avoid_one=False):
    if avoid_one:
        t = np.where(rng.uniform(size=SHAPE) < 0.3, rng.uniform(0.0, 0.9, SHAPE),
                     rng.uniform(1.2, 9.0, SHAPE))
        t.flat[::5] = 0.0
        return t
    return rng.integers(0, 7, SHAPE).astype(np.float64)


def _stirling(t):
    ts = np.where(t > 1, t, 2.0)
    return np.where(t > 1, ts * np.log(ts) - ts + 0.5 * np.log(2 * np.pi * ts), 0.0)


def _stirling_dt(t):
    ts = np.where(t > 1, t, 2.0)
    return np.where(t > 1, np.log(ts) + 0.5 / ts, 0.0)


def _poisson_log_value(d, h):
    x, t = d["log_rates"], d["targets"]
    return np.exp(x) - t * x + (_stirling(t) if h.get("full") else 0.0)


def _poisson_log_dt(d, h):
    return -d["log_rates"] + (_stirling_dt(d["targets"]) if h.get("full") else 0.0)


PEPS = 1e-8


def _poisson_rate_value(d, h):
    x, t = d["rates"], d["targets"]
    return x - t * np.log(x + PEPS) + (_stirling(t) if h.get("full") else 0.0)


def _poisson_rate_dt(d, h):
    return -np.log(d["rates"] + PEPS) + (_stirling_dt(d["targets"]) if h.get("full") else 0.0)


def _poisson(id, first, make_first, value, dx, dt, full, extremes):
    return Case(
        loss="poisson_nll" if first == "log_rates" else "poisson_nll_with_rates",
        id=id, positional=(first, "targets"),
        make=lambda g: {first: make_first(g), "targets": _counts(g, avoid_one=full)},
        reference=value, grads={first: dx, "targets": dt},
        hyper={"full": True} if full else {}, extremes=extremes,
    )


def _poisson_log_extremes():
    return [{"log_rates": np.array([-1e4, 0.0, 50.0, 80.0, -80.0, 1e-30, 3e38, -3e38, 1e20,
                                    80.0]),
             "targets": np.array([0.0, 0.0, 1e4, 3.0, 0.0, 1.0, 0.0, 3e38, 1e20, 3e38])},
            {"log_rates": np.zeros(3), "targets": np.array([0.0, 1.0, 1e4])}]


def _poisson_rate_extremes():
    return [{"rates": np.array([0.0, 1e4, 1e-30, -5.0, 0.0, -1e4, 3e38, 1e-30, 1e20, -3e38]),
             "targets": np.array([0.0, 3.0, 1e4, 2.0, 5.0, 0.0, 3e38, 3e38, 1e20, 3e38])},
            {"rates": np.array([1e4, 0.0, 1.0]), "targets": np.array([0.0, 1e4, 1.0])}]


LIKELIHOOD = [
    Case(
        loss="gaussian_nll", id="eps=0.1", positional=("predictions", "targets"),
        make=_gauss_make, reference=_gauss_value,
        grads={"predictions": lambda d, h: _r(d) / d["variance"],
               "targets": lambda d, h: -_r(d) / d["variance"],
               "variance": _gauss_dv},
        hyper={"eps": 0.1}, extremes=_gauss_extremes(),
    ),
    Case(
        loss="gaussian_nll_with_log_variance", id="plain", positional=("predictions", "targets"),
        make=_lv_make, reference=_lv_value,
        grads={"predictions": lambda d, h: _r(d) * np.exp(-d["log_variance"]),
               "targets": lambda d, h: -_r(d) * np.exp(-d["log_variance"]),
               "log_variance": lambda d, h: 0.5 * (1 - _r(d) ** 2 * np.exp(-d["log_variance"]))},
        extremes=_gauss_extremes("log_variance", LOG_VARIANCES),
    ),
    Case(
        loss="gaussian_nll_with_log_variance", id="full", positional=("predictions", "targets"),
        make=_lv_make, reference=_lv_value,
        grads={"log_variance": lambda d, h: 0.5 * (1 - _r(d) ** 2 * np.exp(-d["log_variance"]))},
        hyper={"full": True},
        extremes=_gauss_extremes("log_variance", LOG_VARIANCES),
    ),
    _poisson("plain", "log_rates", lambda g: g.normal(size=SHAPE), _poisson_log_value,
             lambda d, h: np.exp(d["log_rates"]) - d["targets"], _poisson_log_dt, False,
             _poisson_log_extremes),
    _poisson("full", "log_rates", lambda g: g.normal(size=SHAPE), _poisson_log_value,
             lambda d, h: np.exp(d["log_rates"]) - d["targets"], _poisson_log_dt, True,
             _poisson_log_extremes),
    _poisson("plain", "rates", lambda g: g.uniform(0.2, 5.0, SHAPE), _poisson_rate_value,
             lambda d, h: 1 - d["targets"] / (d["rates"] + PEPS), _poisson_rate_dt, False,
             _poisson_rate_extremes),
]


CASES: list[Case] = [*RELATIVE, *ASYMMETRIC, *LIKELIHOOD]
