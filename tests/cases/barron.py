"""Conformance cases for Barron's general loss and its NLL (jaxloss/_barron.py).

References are NumPy float64 formulas (never calls into jaxloss): Barron's general loss in its
defining formula with its limits, and Barron's NLL with log Z(α) from an independent dense
trapezoid rule on x = sinh(v) (not the exp-sinh rule the library uses). Derivatives are the
closed forms; d log Z/dα = -E[∂ρ/∂α] is the same dense quadrature applied to the closed-form
∂ρ/∂α. tests/test_robust.py uses ``_drho`` and ``log_partition_reference`` too.
"""

from __future__ import annotations

import functools

import numpy as np

from tests.case import Case
from tests.reference import hyper_value as _get
from tests.reference import r as _r
from tests.reference import residuals as _residuals
from tests.reference import robust_extremes as _extremes


def _c(d, h, default=1.0):
    return _get(d, h, "scale", default)


# --------------------------------------------------------------------------------------------
# Barron's general loss


def _rho(x, alpha, c):
    """ρ(x, α, c), elementwise over broadcast x and α (the defining formula and its limits)."""
    x, alpha = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(alpha, np.float64))
    z2 = (x / c) ** 2
    out = np.empty(x.shape)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for a in np.unique(alpha):
            m = alpha == a
            q = z2[m]
            if a == 2:
                v = q / 2
            elif a == 0:
                v = np.log1p(q / 2)
            elif a == -np.inf:
                v = -np.expm1(-q / 2)
            elif a == np.inf:
                v = np.expm1(q / 2)
            else:
                b = abs(a - 2)
                v = b / a * np.expm1(a / 2 * np.log1p(q / b))  # = b/a [(q/b + 1)^(a/2) - 1]
            out[m] = v
    return out


def _drho(x, alpha, c):
    """(∂ρ/∂x, ∂ρ/∂c, ∂ρ/∂α) for finite α (α = 0 by its analytic limit)."""
    z2 = (x / c) ** 2
    if alpha == 2:
        return x / c**2, -z2 / c, np.zeros_like(x)
    if np.isinf(alpha):  # Welsch (-inf) and exp(z²/2) - 1 (+inf): ρ is constant in α there
        dx = x / c**2 * np.exp(np.sign(alpha) * z2 / 2)
        return dx, -x / c * dx, np.zeros_like(x)
    b, s = abs(alpha - 2), np.sign(alpha - 2)
    P = z2 / b + 1
    with np.errstate(over="ignore", invalid="ignore"):
        dx = x / c**2 * P ** (alpha / 2 - 1)
        if alpha == 0:
            L = np.log1p(z2 / 2)
            da = -L / 2 + z2 / (2 * (2 + z2)) + L**2 / 4
        else:
            Pa = P ** (alpha / 2)
            da = ((s / alpha - b / alpha**2) * (Pa - 1) + b / (2 * alpha) * Pa * np.log(P)
                  - s * z2 / (2 * b) * P ** (alpha / 2 - 1))
    return dx, -x / c * dx, da


def _alpha(d, h):
    return _get(d, h, "alpha", None)


def _barron_value(d, h):
    return _rho(_r(d), _alpha(d, h), _c(d, h))


def _barron_grad(i, sign=1.0):
    return lambda d, h: sign * _drho(_r(d), float(_alpha(d, h)), _c(d, h))[i]


def _barron_learnable(alpha, scale, rscale=3.0, extremes=None):
    data = {"alpha": np.float64(alpha), "scale": np.float64(scale)}
    return Case(
        loss="barron_loss",
        id=f"alpha={alpha},scale={scale}-learnable",
        positional=("predictions", "targets"),
        make=lambda g: {**_residuals(g, scale=rscale), **data},
        reference=_barron_value,
        grads={"predictions": _barron_grad(0), "targets": _barron_grad(0, -1.0),
               "scale": _barron_grad(1), "alpha": _barron_grad(2)},
        vmap_axes={"alpha": None, "scale": None},
        extremes=extremes or _extremes(data),
    )


def _per_dim_dx(d, h):
    """∂ρ/∂x for a per-column α."""
    x, c = _r(d), _c(d, h)
    out = np.empty(x.shape)
    for j, a in enumerate(np.asarray(h["alpha"], np.float64)):
        out[..., j] = _drho(x[..., j], a, c)[0]
    return out


#: Every exact special shape at once, one per column: Welsch, Geman–McClure, Cauchy,
#: Charbonnier, L2, exp(z²/2) - 1.
SPECIAL_ALPHAS = np.array([-np.inf, -2.0, 0.0, 1.0, 2.0, np.inf])


def _special_extremes():
    # The last column (α = +∞, exp(z²/2) - 1) stays where float64 is finite.
    big = np.array([[1e4, -1e4, 1e30, -3e3, 1e4, 8.0],
                    [0.0, 1e-30, -1e30, 1e-30, 1e-30, -8.0],
                    [3e38, -3e38, 3e38, 1e20, 3e38, 1e-30],
                    [-1e20, 1e20, -3e38, -3e38, -1e20, 2.0]])
    return [{"predictions": big, "targets": np.zeros_like(big)},
            {"predictions": np.zeros_like(big), "targets": big},
            {"predictions": big, "targets": big},
            {"predictions": big, "targets": -big}]


BARRON = [
    _barron_learnable(1.5, 0.8),
    Case(
        loss="barron_loss",
        id="special-alphas-per-dim[-inf,-2,0,1,2,inf]",
        positional=("predictions", "targets"),
        make=lambda g: _residuals(g, shape=(2, 6), scale=3.0),
        reference=_barron_value,
        grads={"predictions": _per_dim_dx, "targets": lambda d, h: -_per_dim_dx(d, h)},
        hyper={"alpha": SPECIAL_ALPHAS, "scale": 0.7},
        extremes=_special_extremes,
    ),
]


# --------------------------------------------------------------------------------------------
# Barron's NLL: ρ + log c + log Z(α), log Z by an independent dense quadrature


def _sinh_grid(h=1e-3, vmax=42.0):
    v = np.arange(0.0, vmax, h)  # arange from 0: the spacing is exactly h
    w = np.full(v.shape, h)
    w[0] = h / 2
    return np.sinh(v), np.cosh(v) * w


@functools.cache
def log_partition_reference(alpha: float) -> tuple[float, float]:
    """(log Z(α), d log Z/dα) by the trapezoid rule on x = sinh(v), v in [0, 42], h = 1e-3.

    Z = 2∫_0^∞ exp(-ρ(x, α, 1)) dx; d log Z/dα = -∫ exp(-ρ) ∂ρ/∂α dx / ∫ exp(-ρ) dx.
    (42 000 nodes; agrees with log √(2π) and log(π√2) at α = 2, 0 to 1e-15.)
    """
    x, w = _sinh_grid()
    rho = _rho(x, alpha, 1.0)
    f = np.exp(-rho)
    z = np.sum(f * w)
    with np.errstate(invalid="ignore", over="ignore"):
        da = _drho(x, alpha, 1.0)[2]
    g = np.where(f > 0, f * np.where(f > 0, da, 0.0), 0.0)
    return float(np.log(2 * z)), float(-np.sum(g * w) / z)


def _nll_value(d, h):
    a = np.asarray(_alpha(d, h), np.float64)
    c = _c(d, h)
    logz = np.vectorize(lambda v: log_partition_reference(float(v))[0])(a)
    return _rho(_r(d), a, c) + np.log(c) + logz


def _nll_dalpha(d, h):
    a = float(_alpha(d, h))
    return _drho(_r(d), a, _c(d, h))[2] + log_partition_reference(a)[1]


def _nll_dx(d, h):
    """∂ρ/∂x, with α a scalar or one per column."""
    a = np.asarray(_alpha(d, h), np.float64)
    if a.ndim == 0:
        return _drho(_r(d), float(a), _c(d, h))[0]
    return _per_dim_dx(d, h)


def _nll_dscale(d, h):
    return -_r(d) / _c(d, h) * _nll_dx(d, h) + 1 / _c(d, h)


NLL_ALPHAS = np.array([0.0, 0.5, 1.9, 2.0])  # Cauchy, two in between, Gaussian

BARRON_NLL = [
    Case(
        loss="barron_nll",
        id="alpha=0.7,scale=1.3-learnable",
        positional=("predictions", "targets"),
        make=lambda g: {**_residuals(g, scale=3.0), "alpha": np.float64(0.7),
                        "scale": np.float64(1.3)},
        reference=_nll_value,
        grads={"predictions": _nll_dx, "targets": lambda d, h: -_nll_dx(d, h),
               "scale": _nll_dscale, "alpha": _nll_dalpha},
        vmap_axes={"alpha": None, "scale": None},
        extremes=_extremes({"alpha": np.float64(0.7), "scale": np.float64(1.3)}),
    ),
    Case(
        loss="barron_nll",
        id="per-dim-alpha[0,0.5,1.9,2],scale=0.6-learnable",
        positional=("predictions", "targets"),
        make=lambda g: {**_residuals(g, scale=3.0), "scale": np.float64(0.6)},
        reference=_nll_value,
        grads={"predictions": _nll_dx, "targets": lambda d, h: -_nll_dx(d, h),
               "scale": _nll_dscale},
        hyper={"alpha": NLL_ALPHAS},
        vmap_axes={"scale": None},
        extremes=lambda: [{**e, "predictions": np.reshape(e["predictions"], (3, 4)),
                           "targets": np.reshape(e["targets"], (3, 4))}
                          for e in _extremes({"scale": np.float64(0.6)})()],
    ),
]


CASES: list[Case] = [*BARRON, *BARRON_NLL]
