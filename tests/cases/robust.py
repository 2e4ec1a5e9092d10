"""Conformance cases for the robust M-estimators (jaxloss/_robust.py).

References are NumPy float64 formulas written from their definitions (never calls into
jaxloss): the M-estimator forms of Charbonnier (pseudo-Huber), Cauchy, Geman–McClure, Welsch
and Tukey's biweight. Derivatives are the closed forms, with each scale learnable.
"""

from __future__ import annotations

import numpy as np

from tests.case import Case
from tests.reference import hyper_value as _get
from tests.reference import r as _r
from tests.reference import residuals as _residuals
from tests.reference import robust_extremes as _extremes


def _elementwise(loss, id, make, value, dr, *, hyper=None, learn=None, extremes=None,
                 vmap_axes=None):
    """An elementwise loss of r with dl/dp = dr, dl/dt = -dr, plus learnable data entries.

    ``value(d, h)`` and ``dr(d, h)`` get the whole data dict (hyperparameters may be data);
    ``learn`` maps a data entry to its closed-form derivative.
    """
    grads = {"predictions": dr, "targets": lambda d, h: -dr(d, h), **(learn or {})}
    return Case(
        loss=loss,
        id=id,
        positional=("predictions", "targets"),
        make=make,
        reference=value,
        grads=grads,
        hyper=hyper or {},
        vmap_axes=vmap_axes or {k: None for k in (learn or {})},
        extremes=extremes or _extremes(),
    )


# --------------------------------------------------------------------------------------------
# Charbonnier / pseudo-Huber: δ²(√(1 + (r/δ)²) - 1) = r²/(√(1 + (r/δ)²) + 1)


def _ch_h(d, h):
    return np.sqrt(1 + (_r(d) / _get(d, h, "delta", 1.0)) ** 2)


CHARBONNIER = [
    _elementwise(
        "charbonnier_loss", "delta=0.7-learnable",
        lambda g: {**_residuals(g, scale=4.0), "delta": np.float64(0.7)},
        lambda d, h: _r(d) ** 2 / (_ch_h(d, h) + 1),
        lambda d, h: _r(d) / _ch_h(d, h),
        learn={"delta": lambda d, h: d["delta"] * (_ch_h(d, h) - 1) ** 2 / _ch_h(d, h)},
        extremes=_extremes({"delta": np.float64(0.7)}),
    ),
]


# --------------------------------------------------------------------------------------------
# Cauchy, Geman–McClure, Welsch, Tukey (functions of z = r/c)

def _c(d, h, default=1.0):
    return _get(d, h, "scale", default)


def _cauchy_value(d, h):
    z = _r(d) / _c(d, h)
    return np.log1p(z**2 / 2)


def _cauchy_dr(d, h):
    r, c = _r(d), _c(d, h)
    return 2 * r / (r**2 + 2 * c**2)


def _gm_value(d, h):
    u = (_r(d) / _c(d, h)) ** 2
    return 2 * u / (u + 4)


def _gm_dr(d, h):
    r, c = _r(d), _c(d, h)
    u = (r / c) ** 2
    return 16 * r / (c**2 * (u + 4) ** 2)


def _welsch_value(d, h):
    z = _r(d) / _c(d, h)
    return -np.expm1(-(z**2) / 2)


def _welsch_dr(d, h):
    r, c = _r(d), _c(d, h)
    return r / c**2 * np.exp(-((r / c) ** 2) / 2)


TUKEY_C = 4.685


def _tukey_value(d, h):
    c = _c(d, h, TUKEY_C)
    u = np.minimum((_r(d) / c) ** 2, 1.0)
    return c**2 / 6 * (3 * u - 3 * u**2 + u**3)  # = c²/6 [1 - (1 - u)³]


def _tukey_dr(d, h):
    r, c = _r(d), _c(d, h, TUKEY_C)
    return np.where(np.abs(r) < c, r * (1 - (r / c) ** 2) ** 2, 0.0)


def _tukey_dc(d, h):
    r, c = _r(d), _c(d, h, TUKEY_C)
    u = np.minimum((r / c) ** 2, 1.0)
    return c / 3 * (1 - (1 - u) ** 3) - r**2 / c * (1 - u) ** 2


def _dc_of(dr, default=1.0):
    """dl/dc = -(r/c) dl/dr for a loss that is a function of r/c only."""
    return lambda d, h: -_r(d) / _c(d, h, default) * dr(d, h)


def _learnable_scale(loss, value, dr, c, scale=4.0):
    return _elementwise(
        loss, f"scale={c}-learnable",
        lambda g: {**_residuals(g, scale=scale), "scale": np.float64(c)},
        value, dr, learn={"scale": _dc_of(dr)},
        extremes=_extremes({"scale": np.float64(c)}),
    )


ROBUST = [
    _learnable_scale("cauchy_loss", _cauchy_value, _cauchy_dr, 0.6),
    _learnable_scale("geman_mcclure_loss", _gm_value, _gm_dr, 1.5),
    _learnable_scale("welsch_loss", _welsch_value, _welsch_dr, 0.8),
    _elementwise(
        "tukey_biweight_loss", "scale=1.5-learnable",
        lambda g: {**_residuals(g, avoid=(1.5,), scale=3.0), "scale": np.float64(1.5)},
        _tukey_value, _tukey_dr, learn={"scale": _tukey_dc},
        extremes=_extremes({"scale": np.float64(1.5)}),
    ),
]


CASES: list[Case] = [*CHARBONNIER, *ROBUST]
