"""Conformance cases for the likelihoods (jaxloss/_likelihood.py).

References and derivatives are NumPy float64, written from the formulas (never by calling
jaxloss). Data sit at smooth points: away from the Stirling switch at t = 1 and the clamps.
Straight-through clamps are not checked here (finite differences see the clamp's true
derivative, 0); tests/test_likelihood.py asserts them directly.
"""

from __future__ import annotations

import math

import numpy as np

from tests.case import Case
from tests.reference import SHAPE
from tests.reference import big_pairs as _big_pairs
from tests.reference import r as _r
from tests.reference import residuals_away as _residuals

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


CASES: list[Case] = [*LIKELIHOOD]
