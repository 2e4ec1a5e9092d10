"""Conformance cases for the robust / small-error family (jaxloss/_robust.py).

References are NumPy float64 formulas written from the papers (never calls into jaxloss):
Wing (Feng et al. 2018), Adaptive Wing in mmpose's power form (Wang et al. 2019), the M-estimator
forms of Charbonnier, Cauchy, Geman–McClure, Welsch and Tukey, Barron's general loss in its
defining formula with its limits, and Barron's NLL with log Z(α) from an independent dense
trapezoid rule on x = sinh(v) (not the exp-sinh rule the library uses). Derivatives are the closed
forms; d log Z/dα = -E[∂ρ/∂α] is the same dense quadrature applied to the closed-form ∂ρ/∂α.

The adaptive wrapper (``adaptive_robust_init`` / ``_parameters`` / ``_nll``) takes a dict of
latent parameters, which the suite's array-valued data cannot carry; it is ``barron_nll`` after a
closed-form reparametrisation and is checked in tests/test_robust.py (chain rule against these
closed forms, and an optax training run). Those names belong in ``NOT_LOSSES``.
"""

from __future__ import annotations

import functools

import numpy as np

from tests.case import Case

SHAPE = (3, 4)

#: Public names of this family that are helpers, not losses (for ``NOT_LOSSES``).
NOT_LOSSES = {"adaptive_robust_init", "adaptive_robust_nll", "adaptive_robust_parameters"}


# --------------------------------------------------------------------------------------------
# Data


def _residuals(rng, avoid=(), gap=0.05, shape=SHAPE, scale=2.0, targets=None):
    """r = p - t bounded away from 0 and from ±each value in ``avoid`` (the kinks)."""
    r = rng.uniform(-scale, scale, size=shape)
    for a in (0.0, *avoid):
        close = np.abs(np.abs(r) - a) < gap
        r = np.where(close, np.sign(r + 1e-12) * (a + 2 * gap), r)
    t = rng.normal(size=shape) if targets is None else targets(rng, shape)
    return {"predictions": t + r, "targets": t}


def _r(d):
    return d["predictions"] - d["targets"]


#: Extreme magnitudes: 1e20 (its square overflows float32), ±3e38 (near float32's max: against
#: -BIG, p - t itself overflows while most of these losses stay representable), tiny ±1e-30.
BIG = np.array([1e4, -1e4, 0.0, 1e-30, -3e3, 1e30, 1e20, -1e20, 3e38, -3e38, -1e-30, 2.0])


def _extremes(extra=None, big=BIG):
    extra = extra or {}
    n = big.size
    return lambda: [
        {"predictions": big, "targets": np.zeros(n), **extra},
        {"predictions": np.zeros(n), "targets": big, **extra},
        {"predictions": big, "targets": big, **extra},
        {"predictions": big + 0.5, "targets": big, **extra},
        {"predictions": big, "targets": -big, **extra},
    ]


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


def _get(d, h, name, default):
    return d[name] if name in d else h.get(name, default)


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
    _elementwise(
        "wing", "omega=3,epsilon=0.5-learnable",
        lambda g: {**_residuals(g, avoid=(3.0,), scale=6.0), "omega": np.float64(3.0),
                   "epsilon": np.float64(0.5)},
        _wing_value, _wing_dr, learn={"omega": _wing_domega, "epsilon": _wing_depsilon},
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
        loss="adaptive_wing",
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


# --------------------------------------------------------------------------------------------
# Charbonnier / pseudo-Huber: δ²(√(1 + (r/δ)²) - 1) = r²/(√(1 + (r/δ)²) + 1)


def _ch_h(d, h):
    return np.sqrt(1 + (_r(d) / _get(d, h, "delta", 1.0)) ** 2)


CHARBONNIER = [
    _elementwise(
        "charbonnier", "delta=0.7-learnable",
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
    _learnable_scale("cauchy", _cauchy_value, _cauchy_dr, 0.6),
    _learnable_scale("geman_mcclure", _gm_value, _gm_dr, 1.5),
    _learnable_scale("welsch", _welsch_value, _welsch_dr, 0.8),
    _elementwise(
        "tukey_biweight", "scale=1.5-learnable",
        lambda g: {**_residuals(g, avoid=(1.5,), scale=3.0), "scale": np.float64(1.5)},
        _tukey_value, _tukey_dr, learn={"scale": _tukey_dc},
        extremes=_extremes({"scale": np.float64(1.5)}),
    ),
]


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
        loss="barron",
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
        loss="barron",
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


CASES: list[Case] = [*WING, *ADAPTIVE_WING, *CHARBONNIER, *ROBUST, *BARRON, *BARRON_NLL]
