"""Robust and small-error-sensitive regression losses on the residual r = predictions - targets.

Every loss is elementwise and returns the shape of ``predictions``; reduce with
:func:`jaxloss.mean`. float16/bfloat16 inputs are computed in float32 and the result is float32;
float64 stays float64. Hyperparameters are cast to that compute dtype, so a learnable (traced)
hyperparameter gets its gradient back in its own dtype.

Two groups:

* **Small-error focus**: :func:`wing` and :func:`adaptive_wing` (landmark and heatmap regression)
  have *larger* gradients than L1/L2 for small and medium errors.
* **Robust (M-estimator) losses**: :func:`charbonnier` (pseudo-Huber), :func:`cauchy`,
  :func:`geman_mcclure`, :func:`welsch`, :func:`tukey_biweight`, and Barron's general loss
  :func:`barron`, which contains the first four as the shapes α = 1 (Charbonnier with δ = c,
  divided by c²), 0, -2, -∞, and r²/(2c²) at α = 2.
  Its adaptive form :func:`barron_nll` is a negative log-likelihood with the log-partition
  log Z(α), so that the shape α and the scale c can be *learned*; :func:`adaptive_robust_init`,
  :func:`adaptive_robust_parameters` and :func:`adaptive_robust_nll` wrap it with an explicit
  pytree of unconstrained parameters that an optax optimizer updates.

The log-partition log Z(α) = log ∫ exp(-ρ(x, α, 1)) dx has no closed form. It is computed in the
loss, in pure JAX, by a fixed double-exponential (exp-sinh) quadrature: x = exp(π/2 · sinh t),
step h = 1/32, nodes kept where 1e-18 <= x <= 1e18 (253 nodes). The rule converges geometrically
for this analytic integrand. Error bound in float64, against independent dense quadratures:
|error in log Z| <= 2e-15 for α in [0, 8] and <= 5e-13 for α in (8, 32] (both asserted by
tests/test_robust.py on a grid that includes 0, 1e-6, 1.999, 2, 2.001), and < 1e-12 up to α = 1000
(measured); in float32 it is float32 rounding (<= 3e-6, asserted). The derivative d log Z/dα comes
from differentiating the sum (the same rule applied to -∂ρ/∂α · e^-ρ) and agrees with finite
differences of the reference to 1e-8 (asserted, including one-sided at α = 0). Known values, to
2e-15: log Z(2) = log √(2π) (Gaussian), Z(0) = π√2 (Cauchy), Z(1) = 2e·K₁(1).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from ._core import checks as _checks
from ._core.numerics import abs0, softplus
from ._core.registry import register

_LOG2 = math.log(2.0)

__all__ = [
    "adaptive_robust_init",
    "adaptive_robust_nll",
    "adaptive_robust_parameters",
    "adaptive_wing",
    "barron",
    "barron_nll",
    "cauchy",
    "charbonnier",
    "geman_mcclure",
    "tukey_biweight",
    "welsch",
    "wing",
]


# ----------------------------------------------------------------------------------------------
# Validation of hyperparameters that may be arrays (per-dimension α and c) or traced.


_CONDITIONS = {
    "> 0": ("finite and > 0", lambda v: np.isfinite(v) & (v > 0)),
    ">= 0": ("finite and >= 0", lambda v: np.isfinite(v) & (v >= 0)),
    "not nan": ("a number in [-inf, inf] (not NaN)", lambda v: ~np.isnan(v)),
}


def _hyper(
    fn: str, arg: str, value: Any, condition: str, shape: tuple[int, ...], dtype: Any
) -> jax.Array:
    """A hyperparameter that may be a scalar or an array broadcasting to the loss's ``shape``.

    Checked against ``condition`` when concrete (every element), used as given when traced; cast
    to the compute ``dtype``.
    """
    arr = _checks.as_array(fn, arg, value)
    if not (jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.integer)):
        raise TypeError(f"jaxloss.{fn}: `{arg}` must be a real number; got {arr.dtype}.")
    _checks.check_broadcastable(fn, arg, arr, shape, "the predictions'")
    concrete = _checks.concrete_array(value)
    if concrete is not None:
        expected, ok = _CONDITIONS[condition]
        good = ok(concrete)
        if not np.all(good):
            bad = concrete[~good] if concrete.ndim else concrete
            got = bad.ravel()[:5].tolist() if concrete.ndim else float(concrete)
            raise ValueError(f"jaxloss.{fn}: `{arg}` must be {expected}; got {got!r}.")
    return arr.astype(dtype)


def _scalar(fn: str, arg: str, value: Any, dtype: Any) -> jax.Array:
    """A scalar hyperparameter > 0 (checked when concrete), cast to the compute dtype."""
    _checks.require(fn, arg, value, "> 0")
    return jnp.asarray(value, dtype)


# ----------------------------------------------------------------------------------------------
# Shared numerics


def _half(p: jax.Array, t: jax.Array) -> jax.Array:
    """h = (p - t)/2, finite for any finite p and t: p - t itself overflows once |p - t| exceeds
    the dtype's max (p = 3e38, t = -3e38 in float32). Halving is exact, so the losses below,
    written in h, give the same numbers as in r where r is finite."""
    return 0.5 * p - 0.5 * t


def _zero_tangent(*tangents: Any) -> bool:
    return all(isinstance(d, SymbolicZero) for d in tangents)


def _tangent(value: jax.Array, g_r: Any, g_c: Any, dp: Any, dt: Any, dc: Any) -> jax.Array:
    """g_r·(dp - dt) + g_c·dc, skipping symbolic zero tangents; ``g_r`` and ``g_c`` are
    callables so that a coefficient whose tangent is a symbolic zero is never computed."""
    out = jnp.zeros_like(value)
    if not _zero_tangent(dp, dt):
        gr = g_r()
        if not isinstance(dp, SymbolicZero):
            out = out + gr * dp
        if not isinstance(dt, SymbolicZero):
            out = out - gr * dt
    if not isinstance(dc, SymbolicZero):
        out = out + g_c() * dc
    return out


def _log_abs_z(h: jax.Array, c: jax.Array) -> jax.Array:
    """log|z| for z = r/c = 2h/c: finite for finite h != 0 even where z overflows."""
    return jnp.log(jnp.abs(h)) - jnp.log(c) + _LOG2


def _log1p_z2_over(h: jax.Array, c: jax.Array, b: jax.Array) -> jax.Array:
    """L = log(1 + z²/b) for z = 2h/c and b > 0, for any finite h and c > 0 (z may overflow).

    |z| < √b: log1p((z/√b)²); beyond: softplus(2 log|z| - log b) with log|z| from
    :func:`_log_abs_z`. Double where (each branch sees safe inputs); a NaN takes the second
    branch and gives NaN.
    """
    root = jnp.sqrt(b)
    small = jnp.abs(h) < (0.5 * c) * root
    w = 2 * jnp.where(small, h, 0) / (c * root)
    h_big = jnp.where(small, c, h)
    return jnp.where(small, jnp.log1p(w * w), softplus(2 * _log_abs_z(h_big, c) - jnp.log(b)))


def _exprel_series(y: jax.Array) -> jax.Array:
    """(e^y - 1)/y by its Taylor series, for |y| < 1e-2 (truncation < 3e-19)."""
    return 1 + y / 2 * (1 + y / 3 * (1 + y / 4 * (1 + y / 5 * (1 + y / 6 * (1 + y / 7)))))


_EXPREL_SMALL = 1e-2


def _general_rho(
    L: jax.Array, a: jax.Array, b: jax.Array, ymax: float, saturate: bool = True
) -> jax.Array:
    """ρ = (b/a) expm1(aL/2) = (b/2) L (e^y - 1)/y, y = aL/2, for finite a (0 allowed).

    Where |y| < 1e-2 the factor (e^y - 1)/y is its Taylor series (so a = 0 is exact and smooth).
    Elsewhere, with ``saturate`` (the quadrature of log Z, where e^-ρ must stay differentiable),
    y is clamped at ``ymax`` so that expm1 cannot overflow; without it (the loss), y > ymax
    gives exp(y + log(b/a)) (the -b/a is below rounding there), which is inf exactly where ρ is
    beyond the dtype's range.
    """
    y = a * L / 2
    small = jnp.abs(y) < _EXPREL_SMALL
    near = (b / 2) * L * _exprel_series(jnp.where(small, y, 0))
    a_far = jnp.where(small, 1, a)
    y_far = jnp.where(small, 1, y)
    far = (b / a_far) * jnp.expm1(jnp.minimum(y_far, ymax))
    if not saturate:
        over = y_far > ymax  # only for a > 0
        y_over = jnp.where(over, y_far, ymax)
        far = jnp.where(over, jnp.exp(y_over + jnp.log(b / jnp.abs(a_far))), far)
    return jnp.where(small, near, far)


def _ymax(dtype: Any) -> float:
    return float(np.log(jnp.finfo(dtype).max)) - 1.0


def _barron_value(h: jax.Array, c: jax.Array, alpha: jax.Array) -> jax.Array:
    """ρ(z, α) = |α-2|/α [(z²/|α-2| + 1)^(α/2) - 1] with z = 2h/c, and its limits.

    Evaluation, written so that no branch sees an input that is unsafe for it:

    * α = 2, -∞, +∞: the limits z²/2, 1 - exp(-z²/2), exp(z²/2) - 1.
    * otherwise, with b = max(|α - 2|, eps), L = log(1 + z²/b) (overflow-free, from log|z| where
      z itself overflows) and y = αL/2: ρ = (b/α) expm1(y) = (b/2) L · (e^y - 1)/y. Where
      |y| < 1e-2 the last factor is its Taylor series, so α = 0 needs no special case: it gives
      log(1 + z²/2) exactly, and the derivative in α at and around 0 is the true one (ρ is
      analytic in α there). The clamp of |α - 2| at the dtype's eps only acts within eps of
      α = 2, where it changes ρ by a relative O(eps log eps).
    * ρ beyond the dtype's range is inf (exp(y + log(b/α)) for large y), never a saturated value.

    A NaN in h, c or α gives NaN (every test below lets NaN through to a computing branch).
    """
    dtype = h.dtype
    is_two, is_ninf, is_pinf, a, b = _alpha_branches(alpha, dtype)
    rho = _general_rho(_log1p_z2_over(h, c, b), a, b, _ymax(dtype), saturate=False)

    zh = h / c  # z/2; may overflow where c < 1, and z² beyond the range is inf in each limit
    z_two = jnp.where(is_two, zh, 0)
    z_ninf = jnp.where(is_ninf, zh, 0)
    z_pinf = jnp.where(is_pinf, zh, 0)
    rho = jnp.where(is_two, 2 * z_two * z_two, rho)
    rho = jnp.where(is_ninf, -jnp.expm1(-2 * z_ninf * z_ninf), rho)
    return jnp.where(is_pinf, jnp.expm1(2 * z_pinf * z_pinf), rho)


def _alpha_branches(alpha: jax.Array, dtype: Any) -> tuple[jax.Array, ...]:
    """Barron's α cases: (α = 2, α = -inf, α = +inf, α for the general formula (1 in the three
    limits), b = max(|α - 2|, eps)). NaN α takes the general formula, so NaN reaches ρ."""
    is_two = alpha == 2
    is_ninf = alpha == -jnp.inf
    is_pinf = alpha == jnp.inf
    a = jnp.where(~(is_two | is_ninf | is_pinf), alpha, 1)
    b = jnp.maximum(jnp.abs(a - 2), jnp.asarray(jnp.finfo(dtype).eps, dtype))
    return is_two, is_ninf, is_pinf, a, b


@jax.custom_jvp
def _barron_rho(p: jax.Array, t: jax.Array, c: jax.Array, alpha: jax.Array) -> jax.Array:
    """ρ(r, α, c) of :func:`barron`, r = p - t, finite for every finite input whose value is in
    range (p - t may overflow); closed-form tangents in r and c (see the JVP)."""
    return _barron_value(_half(p, t), c, alpha)


def _barron_rho_jvp(primals, tangents):
    """dρ/dr = (z/c) P^(α/2 - 1) and dρ/dc = -z dρ/dr (P = 1 + z²/b = e^L), evaluated as
    ±exp(log|z| - log c + q) and -exp(2 log|z| - log c + q) with q = (α/2 - 1) L (∓z²/2 at
    α = ±∞, 0 at α = 2): no z² or P^(α/2) is formed, so they are right where ρ overflows or z
    does. The α tangent differentiates the value (only α varies: no overflow issue)."""
    p, t, c, alpha = primals
    dp, dt, dc, dalpha = tangents
    h = _half(p, t)
    value = _barron_value(h, c, alpha)

    def log_psi():  # log|dρ/dr| - log|z| + log c, i.e. q
        is_two, is_ninf, is_pinf, a, b = _alpha_branches(alpha, h.dtype)
        q = (a / 2 - 1) * _log1p_z2_over(h, c, b)
        z2 = 4 * (h / c) ** 2
        q = jnp.where(is_two, 0, q)
        q = jnp.where(is_ninf, -0.5 * jnp.where(is_ninf, z2, 0), q)
        return jnp.where(is_pinf, 0.5 * jnp.where(is_pinf, z2, 0), q)

    if _zero_tangent(dp, dt, dc):
        out = jnp.zeros_like(value)
    else:
        lz = _log_abs_z(h, c)
        base = log_psi() - jnp.log(c)
        out = _tangent(
            value,
            lambda: jnp.sign(h) * jnp.exp(lz + base),
            lambda: -jnp.exp(2 * lz + base),
            dp,
            dt,
            dc,
        )
    if not isinstance(dalpha, SymbolicZero):
        # dρ/dα as a coefficient, by forward mode with a unit tangent (each value depends on
        # one α): the derivative's terms are summed before they meet a large ρ, so it is inf,
        # not inf - inf, where it is beyond the range.
        g_a = jax.jvp(lambda a: _barron_value(h, c, a), (alpha,), (jnp.ones_like(alpha),))[1]
        out = out + g_a * dalpha
    return value, out


_barron_rho.defjvp(_barron_rho_jvp, symbolic_zeros=True)


def _de_rule() -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the exp-sinh rule for ∫_0^∞ f(x) dx (float64, computed at import)."""
    h = 1.0 / 32
    t = np.arange(-160, 161) * h  # t in [-5, 5]; the x-range cut below decides what is kept
    x = np.exp(np.pi / 2 * np.sinh(t))
    w = h * x * (np.pi / 2) * np.cosh(t)
    keep = (x >= 1e-18) & (x <= 1e18)
    return x[keep], w[keep]


_DE_NODES, _DE_WEIGHTS = _de_rule()
_DE_LOG_SQUARES = 2 * np.log(_DE_NODES)


@jax.jit
def _log_partition(alpha: jax.Array) -> jax.Array:
    """log Z(α) = log ∫ exp(-ρ(x, α, 1)) dx, elementwise in α >= 0 (see the module docstring).

    The integrand is ρ(x, α, 1) at the nodes x > 0, specialised from :func:`_barron_value`:
    L = log(1 + x²/b) = softplus(2 log x - log b) from the precomputed 2 log x (no overflow, no
    zero to guard), the same series/expm1 evaluation, and the exact α = 2 (Gaussian) branch.
    """
    dtype = alpha.dtype
    alpha = alpha[..., None]
    is_two = alpha == 2
    a = jnp.where(is_two, 1, alpha)
    b = jnp.maximum(jnp.abs(a - 2), jnp.asarray(jnp.finfo(dtype).eps, dtype))
    L = softplus(jnp.asarray(_DE_LOG_SQUARES, dtype) - jnp.log(b))
    rho = _general_rho(L, a, b, _ymax(dtype))
    x = jnp.asarray(_DE_NODES, dtype)
    rho = jnp.where(is_two, 0.5 * x * x, rho)
    w = jnp.asarray(_DE_WEIGHTS, dtype)
    return jnp.log(2 * jnp.sum(w * jnp.exp(-rho), axis=-1))


# ----------------------------------------------------------------------------------------------
# Small-error focus


@register(plot="residual")
def wing(predictions: Any, targets: Any, *, omega: Any = 10.0, epsilon: Any = 2.0) -> jax.Array:
    """Wing loss, elementwise: logarithmic for small residuals, linear for large ones.

    Math (a = |r|, ω = omega, ε = epsilon):
      l = ω log(1 + a/ε)   if a < ω,
      l = a - C            otherwise,   C = ω - ω log(1 + ω/ε)  (continuous at a = ω).

    Gradient: dl/dpredictions = sign(r) ω/(ε + a) for a < ω (its largest value, ω/ε, near 0:
    small errors get *large* gradients), sign(r) for a >= ω; -that for targets. Conventions at the
    kinks: 0 at r = 0 (the subgradient, as for |r|), and the linear side, sign(r), at a = ω.
    dl/dω = log(1 + a/ε) inside, log(1 + ω/ε) + ω/(ε + ω) - 1 outside;
    dl/dε = -ωa/(ε(ε + a)) inside, -ω²/(ε(ε + ω)) outside.

    Args:
      predictions: floating array, any shape (e.g. landmark coordinates).
      targets: real array of the same shape.
      omega: ω > 0, the width of the logarithmic part (mmpose default 10).
      epsilon: ε > 0, the curvature of the logarithmic part (mmpose default 2).

    Returns:
      Array of the shape of ``predictions``. mmpose ``WingLoss(omega, epsilon)`` on [N, K, D]
      landmarks sums over keypoints and coordinates and averages over the batch:
      ``jaxloss.mean(wing(p, t).sum((1, 2)))``. No optax, torch.nn or Keras equivalent.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> [round(v, 5) for v in jaxloss.wing(jnp.array([1.0, 12.0]), jnp.zeros(2)).tolist()]
      [4.05465, 19.91759]

    Reference: Feng et al., "Wing Loss for Robust Facial Landmark Localisation with Convolutional
    Neural Networks", CVPR 2018 (arXiv:1711.06753).
    """
    fn = "wing"
    p, t = _checks.prepare_pair(fn, predictions, targets)
    w = _scalar(fn, "omega", omega, p.dtype)
    e = _scalar(fn, "epsilon", epsilon, p.dtype)
    a = abs0(p - t)  # inf where |p - t| overflows: the value a - C is then beyond range too
    c = w - w * jnp.log1p(w / e)
    inside = a < w
    a_in = jnp.where(inside, a, 0)  # the untaken branch never sees a large a (its ω, ε terms)
    # A NaN ω or ε also reaches the outer slope sign(r) (a factor 1 with no derivative).
    nan_hyper = jnp.where(jnp.isnan(c), jnp.nan, 1)
    return jnp.where(inside, w * jnp.log1p(a_in / e), a * nan_hyper - c)


@register(plot="adaptive_wing")
def adaptive_wing(
    predictions: Any,
    targets: Any,
    *,
    omega: Any = 14.0,
    theta: Any = 0.5,
    epsilon: Any = 1.0,
    alpha: Any = 2.1,
) -> jax.Array:
    """Adaptive Wing loss, elementwise, for heatmap regression: its shape adapts to the target.

    Math (δ = |r|, y = target, exponent e = α - y, S = (θ/ε)^e):
      l = ω log(1 + (δ/ε)^e)             if δ < θ,
      l = A(δ - θ) + ω log(1 + S)        otherwise,   A = ω e S / (θ(1 + S)),
    which is the paper's Aδ - C with C = θA - ω log(1 + S); value and first derivative in δ are
    continuous at δ = θ. Evaluated as ω softplus(e log(δ/ε)) and with sigmoid(e log(θ/ε)) for
    S/(1 + S), so no power overflows. Background pixels (y ≈ 0, e ≈ 2.1) get an L2-like loss,
    foreground pixels (y ≈ 1, e ≈ 1.1) a Wing-like one with large gradients for small errors.

    Gradient. Both inputs are differentiated, and the target enters twice: through r and through
    the exponent e = α - y. With s = (δ/ε)^e:
      ∂l/∂δ = ω e s / (δ(1 + s)) inside, A outside;  dl/dpredictions = sign(r) ∂l/∂δ;
      ∂l/∂e = ω s log(δ/ε)/(1 + s) inside,
              (δ - θ) (ω/θ)[S/(1+S) + e log(θ/ε) S/(1+S)²] + ω log(θ/ε) S/(1+S) outside;
      dl/dtargets = -sign(r) ∂l/∂δ - ∂l/∂e;  dl/dα = ∂l/∂e;  dl/dω = l/ω.
    At r = 0 both gradients are 0 (exact when e > 1, i.e. targets < α - 1, as with y in [0, 1]
    and α = 2.1; a subgradient convention otherwise).

    Args:
      predictions: floating array, any shape (e.g. [N, K, H, W] heatmaps).
      targets: real array of the same shape; heatmap values in [0, 1]. The loss is meant for
        targets below α (the exponent must be positive) and is smooth at r = 0 for targets
        below α - 1.
      omega: ω > 0 (default 14).
      theta: θ > 0, where the loss turns linear (default 0.5).
      epsilon: ε > 0 (default 1).
      alpha: α > 0 (default 2.1); may be traced/learned.

    Returns:
      Array of the shape of ``predictions``. mmpose ``AdaptiveWingLoss`` (torch) is
      ``jaxloss.mean`` of it; its optional target weight is ``jaxloss.mean(..., weights=w)``. The
      paper's weighted loss map (foreground up-weighted) is also a ``weights=`` of the mean.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> l = jaxloss.adaptive_wing(jnp.array([0.2, 0.2, 1.0]), jnp.array([0.0, 1.0, 0.0]))
      >>> [round(v, 4) for v in l.tolist()]
      [0.4688, 8.2998, 8.4959]

    Reference: Wang, Bo and Fuxin, "Adaptive Wing Loss for Robust Face Alignment via Heatmap
    Regression", ICCV 2019 (arXiv:1904.07399).
    """
    fn = "adaptive_wing"
    p, t = _checks.prepare_pair(fn, predictions, targets)
    w = _scalar(fn, "omega", omega, p.dtype)
    th = _scalar(fn, "theta", theta, p.dtype)
    ep = _scalar(fn, "epsilon", epsilon, p.dtype)
    al = _scalar(fn, "alpha", alpha, p.dtype)
    return _adaptive_wing(p, t, w, th, ep, al)


def _adaptive_wing_parts(p, t, w, th, ep, al):
    """The value and ∂l/∂δ, ∂l/∂e, ∂l/∂ω, ∂l/∂θ, ∂l/∂ε (δ = |r|, e = α - y) as callables.

    Inner part: ω log(1 + (δ/ε)^e) = ω softplus(e log(δ/ε)); 0 at δ = 0 (e > 0). δ at or below
    the smallest normal number is treated as 0 so that 1/δ stays finite. The tests send NaN to
    a computing branch (δ > tiny fails for NaN, so "zero" is written δ <= tiny).
    """
    d = abs0(p - t)
    e = al - t
    zero = d <= jnp.finfo(p.dtype).tiny
    d_safe = jnp.where(zero, ep, d)
    inside = d < th
    d_in = jnp.where(inside, d_safe, ep)  # the inner branch never sees a large δ
    ld = jnp.log(d_in / ep)
    inner = jnp.where(zero, 0, w * softplus(e * ld))
    lt = jnp.log(th / ep)
    sig = jax.nn.sigmoid(e * lt)  # S/(1 + S)
    big_a = w * e * sig / th
    d_out = jnp.where(inside, th, d)  # δ - θ = 0 in the outer terms when inside
    outer = big_a * (d_out - th) + w * softplus(e * lt)
    value = jnp.where(inside, inner, outer)

    sig_in = jax.nn.sigmoid(e * ld)  # s/(1 + s)

    def d_delta():  # inner: ω e s/(δ(1 + s)) = ω e exp(log σ(e log(δ/ε)) - log δ)
        g_in = jnp.where(zero, 0, w * e * jnp.exp(-softplus(-e * ld) - jnp.log(d_in)))
        return jnp.where(inside, g_in, big_a)

    def d_e():  # outer: (δ - θ)(ω/θ)[σ + e log(θ/ε) σ(1 - σ)] + ω log(θ/ε) σ
        k = (w / th) * (sig + e * lt * sig * (1 - sig))
        return jnp.where(
            inside, jnp.where(zero, 0, w * sig_in * ld), (d_out - th) * k + w * lt * sig
        )

    def d_omega():
        return jnp.where(
            inside,
            jnp.where(zero, 0, softplus(e * ld)),
            (e * sig / th) * (d_out - th) + softplus(e * lt),
        )

    def d_theta():  # outer: (δ - θ) dA/dθ, dA/dθ = (ω e/θ²)(e σ(1 - σ) - σ)
        return jnp.where(
            inside, 0, (d_out - th) * ((w * e / (th * th)) * (e * sig * (1 - sig) - sig))
        )

    def d_epsilon():  # inner: -ω e s/(ε(1 + s)); outer: -(δ - θ)(ω e²/(θε)) σ(1 - σ) - ω e σ/ε
        outer_eps = -(d_out - th) * ((w * e * e / (th * ep)) * sig * (1 - sig)) - w * e * sig / ep
        return jnp.where(inside, jnp.where(zero, 0, -w * e * sig_in / ep), outer_eps)

    return value, d_delta, d_e, d_omega, d_theta, d_epsilon


@jax.custom_jvp
def _adaptive_wing(p, t, w, th, ep, al):
    return _adaptive_wing_parts(p, t, w, th, ep, al)[0]


def _adaptive_wing_jvp(primals, tangents):
    """Closed-form tangents (the docstring's gradient). Each coefficient is formed before it
    meets a tangent, so a large δ - θ multiplies a finite bracket (autodiff summed two
    overflowing cotangents to NaN where the true derivative is beyond the range)."""
    p, t = primals[:2]
    dp, dt, dw, dth, dep, dal = tangents
    value, d_delta, d_e, d_omega, d_theta, d_epsilon = _adaptive_wing_parts(*primals)
    out = jnp.zeros_like(value)
    if not _zero_tangent(dp, dt):
        g = jnp.sign(p - t) * d_delta()
        if not isinstance(dp, SymbolicZero):
            out = out + g * dp
        if not isinstance(dt, SymbolicZero):
            out = out - g * dt
    if not _zero_tangent(dt, dal):
        ge = d_e()  # e = α - y
        if not isinstance(dal, SymbolicZero):
            out = out + ge * dal
        if not isinstance(dt, SymbolicZero):
            out = out - ge * dt
    for tangent, coefficient in ((dw, d_omega), (dth, d_theta), (dep, d_epsilon)):
        if not isinstance(tangent, SymbolicZero):
            out = out + coefficient() * tangent
    return value, out


_adaptive_wing.defjvp(_adaptive_wing_jvp, symbolic_zeros=True)


# ----------------------------------------------------------------------------------------------
# Robust M-estimator losses


@register(plot="residual")
def charbonnier(predictions: Any, targets: Any, *, delta: Any = 1.0) -> jax.Array:
    """Charbonnier (pseudo-Huber) loss, elementwise: a smooth Huber, r²/2 near 0, δ|r| far out.

    Math:  l = δ² (√(1 + (r/δ)²) - 1), evaluated as δ|r| · (|r|/δ)/(√(1 + (r/δ)²) + 1), which has
    no cancellation near r = 0 and no overflow for large r. Finite value and gradient at r = 0.

    Gradient: dl/dpredictions = r/√(1 + (r/δ)²) (= 0 at r = 0, → ±δ far out);
    dl/dδ = δ(h - 1)²/h with h = √(1 + (r/δ)²).

    This is the *pseudo-Huber* scaling (δ is the Huber threshold: slope δ far out, curvature 1 at
    0). Other conventions, all in terms of this function:
      * Barron's α = 1 member / kornia ``charbonnier_loss``: √((r/c)² + 1) - 1 = l(δ=c)/c²
        (kornia: c = 1, the same as δ = 1);
      * the image-restoration form √(r² + ε²) = l(δ=ε)/ε + ε (a constant apart from l/ε).

    Args:
      predictions: floating array, any shape.
      targets: real array of the same shape.
      delta: δ > 0 (may be traced/learned).

    Returns:
      Array of the shape of ``predictions``. kornia ``charbonnier_loss(reduction='none')`` for
      δ = 1; no optax, torch.nn or Keras equivalent (Keras/optax ``huber`` is the non-smooth one).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> [round(v, 6) for v in jaxloss.charbonnier(jnp.array([0.0, 1.0, 3.0]), jnp.zeros(3))
      ...  .tolist()]
      [0.0, 0.414214, 2.162278]

    Reference: Charbonnier et al., "Two deterministic half-quadratic regularization algorithms
    for computed imaging", ICIP 1994; Hartley and Zisserman, "Multiple View Geometry", 2nd ed.,
    appendix 6.8 (pseudo-Huber).
    """
    fn = "charbonnier"
    p, t = _checks.prepare_pair(fn, predictions, targets)
    d = _scalar(fn, "delta", delta, p.dtype)
    return _charbonnier(p, t, d)


def _charbonnier_parts(p: jax.Array, t: jax.Array, d: jax.Array):
    """(h, |h|, z, R = z/(H + 1), H = √(1 + z²)) with h = r/2, z = min(|r|/δ, 1e18): beyond
    1e18, z/(√(1 + z²) + 1) and z/H are 1 to working precision."""
    h = _half(p, t)
    a2 = jnp.abs(h)
    z = jnp.minimum(2 * (a2 / d), 1e18)
    big_h = jnp.sqrt(1 + z * z)
    return h, a2, z, z / (big_h + 1), big_h


@jax.custom_jvp
def _charbonnier(p: jax.Array, t: jax.Array, d: jax.Array) -> jax.Array:
    _, a2, _, ratio, _ = _charbonnier_parts(p, t, d)
    return 2 * ((d * a2) * ratio)  # δ|r| R, in h: right where |r| overflows and δ|r| R does not


def _charbonnier_jvp(primals, tangents):
    """dl/dr = δ sign(r) z/H; dl/dδ = δ(H - 1)²/H = |r| R (R z/H) (H - 1 = zR): no
    cancellation near 0 and no overflow of an intermediate where the result is in range."""
    p, t, d = primals
    dp, dt, dd = tangents
    value = _charbonnier(p, t, d)
    # From t - p, which shares no subexpression with the value (so XLA materialises none for
    # both). Where it overflows, z = 1e18 gives the right slope ±δ, and dl/dδ ≈ |r| is beyond
    # the range anyway.
    u = t - p
    a = jnp.abs(u)
    z = jnp.minimum(a / d, 1e18)
    big_h = jnp.sqrt(1 + z * z)
    ratio = z / (big_h + 1)
    return value, _tangent(
        value,
        lambda: -jnp.sign(u) * d * (z / big_h),
        lambda: a * ratio * (ratio * (z / big_h)),
        dp,
        dt,
        dd,
    )


_charbonnier.defjvp(_charbonnier_jvp, symbolic_zeros=True)


def _scale_arg(fn: str, scale: Any, p: jax.Array) -> jax.Array:
    return _hyper(fn, "scale", scale, "> 0", p.shape, p.dtype)


@register(plot="residual")
def cauchy(predictions: Any, targets: Any, *, scale: Any = 1.0) -> jax.Array:
    """Cauchy (Lorentzian) loss, elementwise: logarithmic growth, the α = 0 member of Barron's.

    Math (z = r/c, c = scale):  l = log(1 + z²/2), evaluated without forming z² for large z.

    Gradient: dl/dpredictions = 2r/(r² + 2c²);  dl/dc = -2r²/(c(r² + 2c²)).

    Args:
      predictions: floating array, any shape.
      targets: real array of the same shape.
      scale: c > 0, a scalar or an array broadcasting to the predictions' shape (per-dimension
        scales); may be traced/learned.

    Returns:
      Array of the shape of ``predictions``. kornia ``cauchy_loss(reduction='none')`` is c = 1.
      The M-estimator form (c²/2) log(1 + (r/c)²) (scipy's ``loss='cauchy'``, ψ(r) ≈ r near 0)
      is (c²/2) · cauchy(p, t, scale=c/√2). No optax, torch.nn or Keras equivalent.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> [round(v, 6) for v in jaxloss.cauchy(jnp.array([0.0, 2.0]), jnp.zeros(2)).tolist()]
      [0.0, 1.098612]

    Reference: Black and Anandan, "The robust estimation of multiple motions", CVIU 1996; the
    normalisation of Barron, "A General and Adaptive Robust Loss Function", CVPR 2019.
    """
    fn = "cauchy"
    p, t = _checks.prepare_pair(fn, predictions, targets)
    c = _scale_arg(fn, scale, p)
    return _cauchy(p, t, c)


@jax.custom_jvp
def _cauchy(p: jax.Array, t: jax.Array, c: jax.Array) -> jax.Array:
    return _log1p_z2_over(_half(p, t), c, jnp.asarray(2, p.dtype))


def _cauchy_jvp(primals, tangents):
    """dl/dr = (2/c) z/(z² + 2), dl/dc = -(2/c) z²/(z² + 2), written in z for |z| <= √2 and in
    w = 1/z beyond (w/(1 + 2w²) and 1/(1 + 2w²)): bounded terms, right where z overflows."""
    p, t, c = primals
    dp, dt, dc = tangents
    h = _half(p, t)
    value = _log1p_z2_over(h, c, jnp.asarray(2, p.dtype))
    big = ~(jnp.abs(h) <= c * (0.5 * math.sqrt(2.0)))  # |z| > √2; NaN takes this branch
    z = 2 * (jnp.where(big, 0, h) / c)
    w = (0.5 * c) / jnp.where(big, h, 1)

    def g_r():
        return (2 / c) * jnp.where(big, w / (1 + 2 * w * w), z / (z * z + 2))

    def g_c():
        return (-2 / c) * jnp.where(big, 1 / (1 + 2 * w * w), z * z / (z * z + 2))

    return value, _tangent(value, g_r, g_c, dp, dt, dc)


_cauchy.defjvp(_cauchy_jvp, symbolic_zeros=True)


@register(plot="residual")
def geman_mcclure(predictions: Any, targets: Any, *, scale: Any = 1.0) -> jax.Array:
    """Geman–McClure loss, elementwise: redescending, bounded by 2; Barron's α = -2 member.

    Math (u = (r/c)², c = scale):  l = 2u/(u + 4), evaluated as 2 - 8/(u + 4) for u > 4 (no
    cancellation in the value or its derivative, no NaN when u overflows).

    Gradient: dl/dpredictions = 16r/(c²(u + 4)²) (→ 0 for gross outliers);
    dl/dc = -16u/(c(u + 4)²).

    Args:
      predictions: floating array, any shape.
      targets: real array of the same shape.
      scale: c > 0, scalar or broadcasting to the predictions' shape; may be traced/learned.

    Returns:
      Array of the shape of ``predictions``. kornia ``geman_mcclure_loss(reduction='none')`` is
      c = 1. Non-convex: gross outliers get (almost) no gradient, so start from a good fit.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.geman_mcclure(jnp.array([0.0, 2.0]), jnp.zeros(2)).tolist()
      [0.0, 1.0]

    Reference: Geman and McClure, "Statistical methods for tomographic image reconstruction",
    Bull. Int. Statist. Inst. 1987; Barron, CVPR 2019.
    """
    fn = "geman_mcclure"
    p, t = _checks.prepare_pair(fn, predictions, targets)
    c = _scale_arg(fn, scale, p)
    return _geman_mcclure(p, t, c)


def _gm_parts(p: jax.Array, t: jax.Array, c: jax.Array):
    """(high, z, w): |z| <= 2 uses z = r/c, beyond w = 1/z (NaN goes to ``high``)."""
    h = _half(p, t)
    high = ~(jnp.abs(h) <= c)  # |z| > 2
    z = 2 * (jnp.where(high, 0, h) / c)
    w = (0.5 * c) / jnp.where(high, h, 1)
    return high, z, w


@jax.custom_jvp
def _geman_mcclure(p: jax.Array, t: jax.Array, c: jax.Array) -> jax.Array:
    high, z, w = _gm_parts(p, t, c)
    u = z * z
    w2 = w * w
    return jnp.where(high, 2 - 8 * w2 / (1 + 4 * w2), 2 * u / (u + 4))


def _geman_mcclure_jvp(primals, tangents):
    """dl/dr = (16/c) z/(z² + 4)², dl/dc = -(16/c) z²/(z² + 4)²; beyond |z| = 2 in w = 1/z:
    (16/c) w³/(1 + 4w²)² and -(16/c) w²/(1 + 4w²)² (no overflow, no inf·0)."""
    p, t, c = primals
    dp, dt, dc = tangents
    value = _geman_mcclure(p, t, c)
    high, z, w = _gm_parts(p, t, c)
    u = z * z
    w2 = w * w

    def g_r():
        return (16 / c) * jnp.where(high, w * w2 / (1 + 4 * w2) ** 2, z / (u + 4) ** 2)

    def g_c():
        return (-16 / c) * jnp.where(high, w2 / (1 + 4 * w2) ** 2, u / (u + 4) ** 2)

    return value, _tangent(value, g_r, g_c, dp, dt, dc)


_geman_mcclure.defjvp(_geman_mcclure_jvp, symbolic_zeros=True)


@register(plot="residual")
def welsch(predictions: Any, targets: Any, *, scale: Any = 1.0) -> jax.Array:
    """Welsch (Leclerc) loss, elementwise: redescending, bounded by 1; Barron's α = -∞ member.

    Math (z = r/c, c = scale):  l = 1 - exp(-z²/2)  (= -expm1(-z²/2)).

    Gradient: dl/dpredictions = (r/c²) exp(-z²/2);  dl/dc = -(z²/c) exp(-z²/2).

    Args:
      predictions: floating array, any shape.
      targets: real array of the same shape.
      scale: c > 0, scalar or broadcasting to the predictions' shape; may be traced/learned.

    Returns:
      Array of the shape of ``predictions``. kornia ``welsch_loss(reduction='none')`` is c = 1.
      Non-convex: gross outliers get no gradient.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> [round(v, 6) for v in jaxloss.welsch(jnp.array([0.0, 2.0]), jnp.zeros(2)).tolist()]
      [0.0, 0.864665]

    Reference: Dennis and Welsch, "Techniques for nonlinear least squares and robust regression",
    Commun. Statist. Simul. Comput. 1978; Leclerc, IJCV 1989; Barron, CVPR 2019.
    """
    fn = "welsch"
    p, t = _checks.prepare_pair(fn, predictions, targets)
    c = _scale_arg(fn, scale, p)
    return _welsch(p, t, c)


@jax.custom_jvp
def _welsch(p: jax.Array, t: jax.Array, c: jax.Array) -> jax.Array:
    zh = _half(p, t) / c  # z/2; z² beyond the range gives exactly 1
    return -jnp.expm1(-2 * zh * zh)


# z e^(-z²/2) is 0 in float64 beyond |z| = 40 (e^-800): the gradient clips z there.
_WELSCH_CLIP = 40.0


def _welsch_jvp(primals, tangents):
    """dl/dr = (z/c) e^(-z²/2), dl/dc = -(z²/c) e^(-z²/2), with z clipped at ±40 (where both
    are 0 to float64 precision), so no inf·0 for large or overflowing z."""
    p, t, c = primals
    dp, dt, dc = tangents
    value = _welsch(p, t, c)
    z = jnp.clip(2 * (_half(p, t) / c), -_WELSCH_CLIP, _WELSCH_CLIP)
    e = jnp.exp(-0.5 * z * z)
    return value, _tangent(value, lambda: (z / c) * e, lambda: -(z * z / c) * e, dp, dt, dc)


_welsch.defjvp(_welsch_jvp, symbolic_zeros=True)


@register(plot="residual")
def tukey_biweight(predictions: Any, targets: Any, *, scale: Any = 4.685) -> jax.Array:
    """Tukey's biweight (bisquare) loss, elementwise: redescending, constant beyond |r| = c.

    Math (u = min((r/c)², 1), c = scale):  l = (c²/6) [1 - (1 - u)³], evaluated as
    (c²/6) u (1 + w + w²) with w = 1 - u (no cancellation near 0). Equal to c²/6 for |r| >= c.

    Gradient: dl/dpredictions = r (1 - (r/c)²)² for |r| < c, 0 beyond (continuous, also its
    derivative, at |r| = c); dl/dc = (c/3)[1 - (1 - u)³] - (r²/c)(1 - u)².

    Args:
      predictions: floating array, any shape.
      targets: real array of the same shape.
      scale: c > 0 (default 4.685: 95 % Gaussian efficiency for unit-variance residuals);
        scalar or broadcasting to the predictions' shape; may be traced/learned.

    Returns:
      Array of the shape of ``predictions``. statsmodels ``TukeyBiweight(c).rho(r)`` (same
      c²/6 normalisation, ψ(r) ≈ r near 0). No optax, torch.nn or Keras equivalent.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> l = jaxloss.tukey_biweight(jnp.array([0.0, 1.0, 3.0]), jnp.zeros(3), scale=2.0)
      >>> [round(v, 6) for v in l.tolist()]
      [0.0, 0.385417, 0.666667]

    Reference: Beaton and Tukey, "The fitting of power series, meaning polynomials, illustrated
    on band-spectroscopic data", Technometrics 1974.
    """
    fn = "tukey_biweight"
    p, t = _checks.prepare_pair(fn, predictions, targets)
    c = _scale_arg(fn, scale, p)
    return _tukey(p, t, c)


def _tukey_parts(p: jax.Array, t: jax.Array, c: jax.Array):
    """(h, outside, u, w): u = min(z², 1); w = 1 - u, inside as ((c - |r|)/c)((c + |r|)/c)
    (c - |r| is exact near the cut-off, where 1 - z² cancels), 0 outside. NaN is inside."""
    h = _half(p, t)
    zh = h / c
    u = jnp.minimum(4 * zh * zh, 1)
    outside = jnp.abs(h) >= 0.5 * c
    a = 2 * jnp.abs(jnp.where(outside, 0, h))
    w = jnp.where(outside, 0, ((c - a) / c) * ((c + a) / c))
    return h, outside, u, w


@jax.custom_jvp
def _tukey(p: jax.Array, t: jax.Array, c: jax.Array) -> jax.Array:
    _, _, u, w = _tukey_parts(p, t, c)
    return (c * c / 6) * u * (1 + w + w * w)


def _tukey_jvp(primals, tangents):
    """ψ = dl/dr = r w² (0 for |r| >= c); dl/dc = (c/3) u² (1 + 2w) (c/3 beyond), both from the
    factored w, so the gradient has no cancellation near the cut-off (autodiff of the value's
    u(1 + w + w²) form had a relative error of 2.5e-5 at |r| = c(1 - 1e-6) in float64)."""
    p, t, c = primals
    dp, dt, dc = tangents
    value = _tukey(p, t, c)
    # From t - p, which shares nothing with the value (no materialised common subexpression);
    # where it overflows it is outside the cut-off, as r is.
    neg_r = t - p
    zn = neg_r / c
    u = jnp.minimum(zn * zn, 1)
    outside = jnp.abs(neg_r) >= c  # NaN is inside
    a = jnp.abs(jnp.where(outside, 0, neg_r))
    w = jnp.where(outside, 0, ((c - a) / c) * ((c + a) / c))
    neg_r = jnp.where(outside, 0, neg_r)
    return value, _tangent(
        value, lambda: -neg_r * (w * w), lambda: (c / 3) * (u * u) * (1 + 2 * w), dp, dt, dc
    )


_tukey.defjvp(_tukey_jvp, symbolic_zeros=True)


# ----------------------------------------------------------------------------------------------
# Barron's general and adaptive robust loss


@register(plot="residual", plot_defaults={"alpha": 1.0})
def barron(predictions: Any, targets: Any, *, alpha: Any, scale: Any = 1.0) -> jax.Array:
    """Barron's general robust loss ρ(r, α, c), elementwise: one family of shapes indexed by α.

    Math (z = r/c, c = scale):
      ρ = |α - 2|/α · [(z²/|α - 2| + 1)^(α/2) - 1],
    with the limits, exact at these α:
      α = 2: z²/2 (L2);  α = 1: √(z² + 1) - 1 (Charbonnier);  α = 0: log(z²/2 + 1) (Cauchy);
      α = -2: 2z²/(z² + 4) (Geman–McClure);  α = -∞: 1 - exp(-z²/2) (Welsch);
      α = +∞: exp(z²/2) - 1.
    Smaller α is more robust: ρ is non-decreasing in α and in |r|, ρ ≈ z²/2 near 0 for every α,
    and ρ is bounded (by |α - 2|/|α|) for α < 0.

    Gradient (P = z²/|α - 2| + 1, s = sign(α - 2)):
      dρ/dpredictions = (r/c²) P^(α/2 - 1);  dρ/dc = -(z²/c) P^(α/2 - 1);
      dρ/dα = (s/α - |α-2|/α²)(P^(α/2) - 1) + |α-2|/(2α) P^(α/2) log P - s z²/(2|α-2|) P^(α/2-1).
    At α = 0 every derivative is the true (finite) one: ρ is analytic in α there, and the loss
    evaluates (b/2) L (e^y - 1)/y with L = log(1 + z²/b), b = |α - 2|, y = αL/2, using the Taylor
    series of (e^y - 1)/y for |y| < 1e-2, so α = 0 is not a special case and values, gradients
    and second derivatives are continuous through it (robust_loss_jax returns dρ/dα = 0 there).
    α = 2 is a true singularity in α: dρ/dα → +∞ like (z²/4) log(z²/|α - 2|) from both sides
    (ρ has a vertical tangent in α). There the value is exactly z²/2 and dρ/dα is returned as 0
    (robust_loss_jax's convention); within the dtype's eps of 2, |α - 2| is clamped at eps, so
    dρ/dα stays finite (about (z²/4) log(z²/eps)), and the value and the other derivatives are
    continuous (tests/test_robust.py checks this on both sides). At α = ±∞, dρ/dα = 0.
    ``alpha`` can be traced: the branches are ``jnp.where`` selections with safe inputs in the
    untaken ones, never Python conditions on its value.

    Args:
      predictions: floating array, any shape.
      targets: real array of the same shape.
      alpha: the shape α, any value in [-∞, +∞]; a scalar or an array broadcasting to the
        predictions' shape (one shape per output dimension); may be traced/learned.
      scale: c > 0, a scalar or broadcasting array; may be traced/learned.

    Returns:
      Array of the shape of ``predictions``, equal to robust_loss_jax / robust_loss_pytorch
      ``general.lossfun(r, alpha, scale)``. Any finite input gives the value rounded to the
      dtype, inf only where it is beyond the range (ρ grows like |r/c|^α for α > 0), also where
      r = p - t itself overflows; gradients likewise (never NaN).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> r = jnp.array([0.5, 3.0])
      >>> [round(v, 5) for v in jaxloss.barron(r, jnp.zeros(2), alpha=1.0).tolist()]
      [0.11803, 2.16228]
      >>> [round(v, 5) for v in jaxloss.barron(r, jnp.zeros(2), alpha=-jnp.inf).tolist()]
      [0.1175, 0.98889]

    Reference: Barron, "A General and Adaptive Robust Loss Function", CVPR 2019 (arXiv:1701.03077).
    """
    fn = "barron"
    p, t = _checks.prepare_pair(fn, predictions, targets)
    a = _hyper(fn, "alpha", alpha, "not nan", p.shape, p.dtype)
    c = _scale_arg(fn, scale, p)
    return _barron_rho(p, t, c, a)


@register(plot="residual", plot_defaults={"alpha": 1.0})
def barron_nll(predictions: Any, targets: Any, *, alpha: Any, scale: Any = 1.0) -> jax.Array:
    """Barron's adaptive loss: the negative log-likelihood of his general distribution.

    Math (ρ = :func:`barron`, c = scale, α >= 0):
      l = ρ(r, α, c) + log c + log Z(α),   Z(α) = ∫ exp(-ρ(x, α, 1)) dx,
    the negative log-density of p(r | α, c) = exp(-ρ(r, α, c)) / (c Z(α)). The log c and log Z(α)
    terms are what let α and c be *learned* by minimising this loss: without them the optimizer
    would pick the most robust shape and an infinite scale. Known values: α = 2 is the Gaussian
    (log Z = log √(2π), l = r²/(2c²) + log c + log √(2π)); α = 0 the Cauchy (Z = π√2).

    log Z(α) has no closed form. It is computed here by a fixed 253-node exp-sinh quadrature in
    the compute dtype (details in the module docstring), with error <= 2e-15 for α in [0, 8],
    <= 5e-13 up to α = 32 and < 1e-12 up to α = 1000 in float64 (float32: <= 3e-6), so the loss
    is pure JAX, needs no data file, and is differentiable in α.

    Gradient:
      dl/dpredictions = dρ/dr = (r/c²) P^(α/2 - 1) (see :func:`barron`);  dl/dtargets = -that;
      dl/dc = dρ/dc + 1/c;
      dl/dα = dρ/dα + d log Z/dα,  d log Z/dα = -E_{x ~ p(·|α,1)}[∂ρ(x, α, 1)/∂α],
    the last computed by differentiating the quadrature (the quadrature of ∂ρ/∂α). Both terms are
    finite for α in [0, 2), including exactly at 0; at α = 2 they diverge logarithmically with
    opposite signs (the convention at exactly 2 is that of :func:`barron`: dρ/dα = 0, and the
    quadrature then gives d log Z/dα = 0). Keep a learned α inside (0, 2), e.g. [0.001, 1.999]
    as :func:`adaptive_robust_init` does.

    Args:
      predictions: floating array, any shape.
      targets: real array of the same shape.
      alpha: α >= 0 and finite (α < 0 has no normalisable density; a traced α < 0 gives a NaN
        value, to be loud); a scalar or an array broadcasting to the predictions' shape (log Z is
        computed once per element of ``alpha``, not per element of the data); may be traced.
      scale: c > 0, a scalar or broadcasting array; may be traced/learned.

    Returns:
      Array of the shape of ``predictions``. robust_loss_jax ``Distribution().nllfun(r, alpha,
      scale)`` (which interpolates log Z from a spline table shipped as a data file); with α
      and c learned through a sigmoid/softplus reparametrisation, robust_loss_pytorch's
      ``AdaptiveLossFunction`` (see :func:`adaptive_robust_nll`).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> l = jaxloss.barron_nll(jnp.array([0.0, 1.0]), jnp.zeros(2), alpha=2.0)
      >>> [round(v, 5) for v in l.tolist()]  # the standard normal's -log density
      [0.91894, 1.41894]

    Reference: Barron, "A General and Adaptive Robust Loss Function", CVPR 2019 (arXiv:1701.03077).
    """
    fn = "barron_nll"
    p, t = _checks.prepare_pair(fn, predictions, targets)
    a = _hyper(fn, "alpha", alpha, ">= 0", p.shape, p.dtype)
    c = _scale_arg(fn, scale, p)
    # Keyed on α < 0 so that a NaN α reaches the value (and the gradients) as NaN.
    negative = a < 0
    a_safe = jnp.where(negative, 1, a)
    value = _barron_rho(p, t, c, a_safe) + jnp.log(c) + _log_partition(a_safe)
    return jnp.where(negative, jnp.nan, value)


# ----------------------------------------------------------------------------------------------
# The adaptive wrapper: an explicit pytree of unconstrained parameters


def _bounds(fn: str, alpha_lo: Any, alpha_hi: Any, scale_lo: Any) -> tuple[float, float, float]:
    lo, hi, slo = (_checks.concrete_float(v) for v in (alpha_lo, alpha_hi, scale_lo))
    if lo is None or hi is None or slo is None:
        raise ValueError(
            f"jaxloss.{fn}: `alpha_lo`, `alpha_hi` and `scale_lo` must be concrete numbers "
            "(they define the parametrisation; train the latent parameters instead)."
        )
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo <= hi):
        raise ValueError(
            f"jaxloss.{fn}: `alpha_lo`, `alpha_hi` must be finite with 0 <= alpha_lo <= alpha_hi; "
            f"got alpha_lo={lo!r}, alpha_hi={hi!r}."
        )
    if not (math.isfinite(slo) and slo >= 0):
        raise ValueError(f"jaxloss.{fn}: `scale_lo` must be finite and >= 0; got {slo!r}.")
    return lo, hi, slo


def adaptive_robust_init(
    shape: tuple[int, ...] = (),
    *,
    alpha_init: float | None = None,
    scale_init: float = 1.0,
    alpha_lo: float = 0.001,
    alpha_hi: float = 1.999,
    scale_lo: float = 1e-5,
    dtype: Any = jnp.float32,
) -> dict[str, jax.Array]:
    """Unconstrained parameters of :func:`adaptive_robust_nll`, a pytree for optax.

    The parametrisation (Barron's, robust_loss_pytorch ``AdaptiveLossFunction``):
      α = α_lo + (α_hi - α_lo) · sigmoid(latent_alpha),   c = softplus(latent_scale) + c_lo,
    so any real latent values give α in [α_lo, α_hi] and c > c_lo. The latents are set so that
    α = ``alpha_init`` (default: the midpoint) and c = ``scale_init`` exactly.

    Args:
      shape: shape of α and c; () for one shape and scale, or e.g. (D,) for one per output
        dimension (must broadcast to the predictions' shape).
      alpha_init: initial α in [alpha_lo, alpha_hi], strictly inside unless they are equal
        (default (alpha_lo + alpha_hi)/2).
      scale_init: initial c > scale_lo.
      alpha_lo: lower bound of α, 0 <= alpha_lo <= alpha_hi (default 0.001, which keeps α away
        from the singular point 0); alpha_lo == alpha_hi fixes α.
      alpha_hi: upper bound of α, alpha_lo <= alpha_hi (default 1.999, which keeps α away from
        the singular point 2); alpha_lo == alpha_hi fixes α.
      scale_lo: c_lo >= 0, the smallest scale.
      dtype: floating dtype of the latents.

    Returns:
      ``{"latent_alpha": array, "latent_scale": array}`` of ``shape``. Pass the same bounds to
      :func:`adaptive_robust_nll` and :func:`adaptive_robust_parameters`.

    Examples:
      >>> import jaxloss
      >>> params = jaxloss.adaptive_robust_init(alpha_init=1.5, scale_init=0.3)
      >>> [round(float(v), 6) for v in jaxloss.adaptive_robust_parameters(params)]
      [1.5, 0.3]
    """
    fn = "adaptive_robust_init"
    lo, hi, slo = _bounds(fn, alpha_lo, alpha_hi, scale_lo)
    a0 = (lo + hi) / 2 if alpha_init is None else float(alpha_init)
    if hi > lo:
        if not lo < a0 < hi:
            raise ValueError(
                f"jaxloss.{fn}: `alpha_init` must be strictly inside (alpha_lo, alpha_hi) = "
                f"({lo!r}, {hi!r}); got {a0!r}."
            )
        frac = (a0 - lo) / (hi - lo)
        latent_alpha = math.log(frac) - math.log1p(-frac)
    else:
        if a0 != lo:
            raise ValueError(
                f"jaxloss.{fn}: `alpha_init` must equal alpha_lo == alpha_hi = {lo!r}; got {a0!r}."
            )
        latent_alpha = 0.0
    s0 = float(scale_init)
    if not (math.isfinite(s0) and s0 > slo):
        raise ValueError(
            f"jaxloss.{fn}: `scale_init` must be finite and > scale_lo = {slo!r}; got {s0!r}."
        )
    v = s0 - slo
    latent_scale = v + math.log(-math.expm1(-v))  # softplus⁻¹(v), stable for small and large v
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"jaxloss.{fn}: `dtype` must be a floating dtype; got {dtype}.")
    return {
        "latent_alpha": jnp.full(shape, latent_alpha, dtype),
        "latent_scale": jnp.full(shape, latent_scale, dtype),
    }


def _check_params(fn: str, params: Any) -> tuple[jax.Array, jax.Array]:
    if not isinstance(params, dict) or set(params) != {"latent_alpha", "latent_scale"}:
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(
            f"jaxloss.{fn}: `params` must be the dict made by jaxloss.adaptive_robust_init, with "
            f"keys ['latent_alpha', 'latent_scale']; got {got}."
        )
    la = _checks.check_floating(fn, "params['latent_alpha']", params["latent_alpha"])
    ls = _checks.check_floating(fn, "params['latent_scale']", params["latent_scale"])
    return la, ls


def adaptive_robust_parameters(
    params: Any,
    *,
    alpha_lo: float = 0.001,
    alpha_hi: float = 1.999,
    scale_lo: float = 1e-5,
) -> tuple[jax.Array, jax.Array]:
    """The shape α and scale c encoded by ``params`` (see :func:`adaptive_robust_init`).

    Math:  α = α_lo + (α_hi - α_lo) sigmoid(latent_alpha),  c = softplus(latent_scale) + c_lo.

    Gradient: dα/dlatent_alpha = (α_hi - α_lo) σ(1 - σ);  dc/dlatent_scale = sigmoid(latent_scale).

    Args:
      params: the dict made by :func:`adaptive_robust_init` (possibly updated by optax).
      alpha_lo: the lower bound of α, as used at initialisation.
      alpha_hi: the upper bound of α, as used at initialisation.
      scale_lo: the smallest scale c_lo, as used at initialisation.

    Returns:
      ``(alpha, scale)``, arrays of the latents' shape and dtype.

    Examples:
      >>> import jaxloss
      >>> alpha, scale = jaxloss.adaptive_robust_parameters(jaxloss.adaptive_robust_init())
      >>> round(float(alpha), 6), round(float(scale), 6)
      (1.0, 1.0)
    """
    return _parameters("adaptive_robust_parameters", params, alpha_lo, alpha_hi, scale_lo)


def _parameters(
    fn: str, params: Any, alpha_lo: Any, alpha_hi: Any, scale_lo: Any
) -> tuple[jax.Array, jax.Array]:
    lo, hi, slo = _bounds(fn, alpha_lo, alpha_hi, scale_lo)
    la, ls = _check_params(fn, params)
    alpha = lo + (hi - lo) * jax.nn.sigmoid(la)
    scale = softplus(ls) + slo
    return alpha, scale


def adaptive_robust_nll(
    predictions: Any,
    targets: Any,
    params: Any,
    *,
    alpha_lo: float = 0.001,
    alpha_hi: float = 1.999,
    scale_lo: float = 1e-5,
) -> jax.Array:
    """Barron's adaptive robust loss with α and c learned from unconstrained ``params``.

    Math:  l = barron_nll(r, α, c) = ρ(r, α, c) + log c + log Z(α), with
      α = α_lo + (α_hi - α_lo) sigmoid(latent_alpha),  c = softplus(latent_scale) + c_lo.
    Train ``params`` jointly with the model by minimising ``jaxloss.mean`` of this loss; heavy-
    tailed residuals drive α down (towards Cauchy), Gaussian ones up (towards L2).

    Gradient (chain rule through :func:`barron_nll`, whose gradient is documented there):
      dl/dlatent_alpha = (dρ/dα + d log Z/dα) · (α_hi - α_lo) σ(latent_alpha)(1 - σ(latent_alpha)),
      dl/dlatent_scale = (dρ/dc + 1/c) · sigmoid(latent_scale);
    dl/dpredictions = (r/c²) P^(α/2 - 1), dl/dtargets = -that. With a per-dimension α and c of
    shape (D,), their gradients sum over the other axes of the mean, as usual.

    Args:
      predictions: floating array, any shape.
      targets: real array of the same shape.
      params: ``{"latent_alpha", "latent_scale"}`` from :func:`adaptive_robust_init`, arrays
        broadcasting to the predictions' shape.
      alpha_lo: the lower bound of α, as used at initialisation (a concrete number).
      alpha_hi: the upper bound of α, as used at initialisation (a concrete number).
      scale_lo: the smallest scale c_lo, as used at initialisation (a concrete number).

    Returns:
      Array of the shape of ``predictions`` (the per-element NLL). robust_loss_pytorch
      ``AdaptiveLossFunction(num_dims, float_dtype, device).lossfun(r)`` (which also returns
      per-element values), as a pure function of an explicit pytree.

    Examples:
      >>> import jax, jax.numpy as jnp, optax, jaxloss
      >>> params = jaxloss.adaptive_robust_init()
      >>> opt = optax.adam(0.05)
      >>> state = opt.init(params)
      >>> r = jnp.array([0.1, -0.3, 0.2, 8.0])  # residuals with one outlier
      >>> loss = lambda q: jaxloss.mean(jaxloss.adaptive_robust_nll(r, jnp.zeros(4), q))
      >>> updates, state = opt.update(jax.jit(jax.grad(loss))(params), state)
      >>> params = optax.apply_updates(params, updates)
      >>> alpha, scale = jaxloss.adaptive_robust_parameters(params)
      >>> bool(alpha < 1.0)  # the outlier pushed α towards the robust end
      True

    Reference: Barron, "A General and Adaptive Robust Loss Function", CVPR 2019 (arXiv:1701.03077).
    """
    fn = "adaptive_robust_nll"
    p, t = _checks.prepare_pair(fn, predictions, targets)
    alpha, scale = _parameters(fn, params, alpha_lo, alpha_hi, scale_lo)
    _checks.check_broadcastable(fn, "params['latent_alpha']", alpha, p.shape, "the predictions'")
    _checks.check_broadcastable(fn, "params['latent_scale']", scale, p.shape, "the predictions'")
    dtype = p.dtype
    alpha = alpha.astype(dtype)
    scale = scale.astype(dtype)
    return _barron_rho(p, t, scale, alpha) + jnp.log(scale) + _log_partition(alpha)
