"""Conformance cases for the regression losses (jaxloss/_regression.py).

References are NumPy float64 formulas written from the math (never calls into jaxloss); the
derivatives are the closed forms, dl/dt = -dl/dp. Data sit away from the kinks (r = 0, |r| = δ).
tests/test_combinators.py composes these cases (``REGRESSION``) with the combinators.
"""

from __future__ import annotations

import numpy as np

from tests.case import Case
from tests.reference import big_pairs
from tests.reference import r as _r
from tests.reference import residuals as _residuals


def _regression(loss, id, make, value, deriv, hyper=None, extremes=None):
    """Case for an elementwise regression loss with dl/dp = deriv(r), dl/dt = -deriv(r)."""
    return Case(
        loss=loss,
        id=id,
        positional=("predictions", "targets"),
        make=make,
        reference=lambda d, h: value(_r(d), h),
        grads={
            "predictions": lambda d, h: deriv(_r(d), h),
            "targets": lambda d, h: -deriv(_r(d), h),
        },
        hyper=hyper or {},
        extremes=extremes or _regression_extremes,
    )


def _regression_extremes():
    # 1e20 (its square overflows float32), ±3e38 (near float32's max: against -big, p - t
    # itself overflows), tiny ±1e-30.
    return big_pairs()


def _huber_value(r, delta):
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r**2, delta * (a - 0.5 * delta))


REGRESSION = [
    _regression(
        "squared_error", "plain", lambda g: _residuals(g),
        lambda r, h: r**2, lambda r, h: 2 * r,
    ),
    _regression(
        "absolute_error", "plain", lambda g: _residuals(g),
        lambda r, h: np.abs(r), lambda r, h: np.sign(r),
    ),
    _regression(
        "huber_loss", "delta=1", lambda g: _residuals(g, avoid=(1.0,)),
        lambda r, h: _huber_value(r, 1.0), lambda r, h: np.clip(r, -1.0, 1.0),
    ),
    Case(
        loss="huber_loss",
        id="delta=0.7-learnable",
        positional=("predictions", "targets"),
        make=lambda g: {**_residuals(g, avoid=(0.7,)), "delta": np.float64(0.7)},
        reference=lambda d, h: _huber_value(_r(d), d["delta"]),
        grads={
            "predictions": lambda d, h: np.clip(_r(d), -d["delta"], d["delta"]),
            "targets": lambda d, h: -np.clip(_r(d), -d["delta"], d["delta"]),
            "delta": lambda d, h: np.where(np.abs(_r(d)) > d["delta"],
                                           np.abs(_r(d)) - d["delta"], 0.0),
        },
        vmap_axes={"delta": None},
        extremes=lambda: [{**e, "delta": np.float64(0.7)} for e in _regression_extremes()],
    ),
    _regression(
        "smooth_l1_loss", "beta=0.5", lambda g: _residuals(g, avoid=(0.5,)),
        lambda r, h: np.where(np.abs(r) < 0.5, r**2 / (2 * 0.5), np.abs(r) - 0.25),
        lambda r, h: np.clip(r / 0.5, -1, 1), hyper={"beta": 0.5},
    ),
    _regression(
        "smooth_l1_loss", "beta=0", lambda g: _residuals(g),
        lambda r, h: np.abs(r), lambda r, h: np.sign(r), hyper={"beta": 0.0},
    ),
    _regression(
        "log_cosh", "plain", lambda g: _residuals(g, scale=5.0),
        lambda r, h: np.logaddexp(r, -r) - np.log(2.0), lambda r, h: np.tanh(r),
    ),
]


CASES: list[Case] = [*REGRESSION]
