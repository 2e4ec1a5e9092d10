"""The conformance registry: every public loss, with inputs, a NumPy float64 reference of its value
and the closed-form derivative of each differentiable input.

References are written from the math (the formulas in each docstring and the PyTorch/optax
documentation), never by calling jaxloss. A case is one configuration of one loss; a loss may have
several cases (options on and off). ``tests/test_conformance.py`` runs every case through the same
checks and fails if a public loss has no case here.

Closed forms: ``grads[name](data, hyper)`` returns d l_n / d input with the input's shape (the
per-example derivative); the suite contracts it with a random cotangent, expanded along
``class_axis`` for losses that reduce a class axis.
"""

from __future__ import annotations

import numpy as np

import jaxloss
from tests.case import Case

# --------------------------------------------------------------------------------------------
# NumPy float64 helpers (independent of jaxloss)
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
    big = np.array([1e4, -1e4, 0.0, 1e-30, -3e3, 1e20, -1e20, 3e38, -3e38, -1e-30])
    zeros = np.zeros(big.size)
    return [
        {"predictions": big, "targets": zeros},
        {"predictions": zeros, "targets": big},
        {"predictions": big, "targets": big},
        {"predictions": big, "targets": -big},  # |p - t| beyond float32's range at ±3e38
        {"predictions": big, "targets": big[::-1].copy()},
    ]


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
        "huber", "delta=1", lambda g: _residuals(g, avoid=(1.0,)),
        lambda r, h: _huber_value(r, 1.0), lambda r, h: np.clip(r, -1.0, 1.0),
    ),
    Case(
        loss="huber",
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
        "smooth_l1", "beta=0.5", lambda g: _residuals(g, avoid=(0.5,)),
        lambda r, h: np.where(np.abs(r) < 0.5, r**2 / (2 * 0.5), np.abs(r) - 0.25),
        lambda r, h: np.clip(r / 0.5, -1, 1), hyper={"beta": 0.5},
    ),
    _regression(
        "smooth_l1", "beta=0", lambda g: _residuals(g),
        lambda r, h: np.abs(r), lambda r, h: np.sign(r), hyper={"beta": 0.0},
    ),
    _regression(
        "log_cosh", "plain", lambda g: _residuals(g, scale=5.0),
        lambda r, h: np.logaddexp(r, -r) - np.log(2.0), lambda r, h: np.tanh(r),
    ),
]


# --------------------------------------------------------------------------------------------
# The core families' cases live in their family's cases file (tests/cases/classification.py,
# divergence.py, imbalance.py); these names keep the selection that test_conformance.py runs its
# second-order and float16 checks on.
from tests.cases.classification import (  # noqa: E402, F401  (BINARY; the rest: test_combinators)
    BINARY,
    _ice_dz,
    _ice_value,
    _sbce_dx,
    _sbce_value,
)
from tests.cases.classification import MULTICLASS as _MULTICLASS  # noqa: E402
from tests.cases.divergence import DIVERGENCE  # noqa: E402, F401
from tests.cases.imbalance import EXPECTED_COST  # noqa: E402

MULTICLASS = [EXPECTED_COST, *_MULTICLASS]


from tests.cases import collect  # noqa: E402

_COLLECTED, _NOT_LOSSES_COLLECTED = collect()
CASES: list[Case] = [*REGRESSION, *_COLLECTED]

#: Public names in jaxloss that are not losses.
NOT_LOSSES = {"COMBINATORS", "LOSSES", "LossInfo", "WeightedMean", "loss_info", "fused", "mean",
              "mean_parts", "multitask", "sum", *jaxloss.COMBINATORS}
NOT_LOSSES |= _NOT_LOSSES_COLLECTED
