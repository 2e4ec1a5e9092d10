"""Conformance cases for the relative and log-space errors (jaxloss/_relative.py).

References and derivatives are NumPy float64, written from the formulas (never by calling
jaxloss). Data sit at smooth points: away from r = 0 for the absolute-value losses and from
|t| = ε for the percentage error.
"""

from __future__ import annotations

import numpy as np

from tests.case import Case
from tests.reference import SHAPE
from tests.reference import away as _away
from tests.reference import big_pairs as _big_pairs
from tests.reference import r as _r
from tests.reference import signed_magnitudes as _signed_magnitudes

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


CASES: list[Case] = [*RELATIVE]
