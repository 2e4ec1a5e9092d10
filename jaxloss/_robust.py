"""Robust (M-estimator) regression losses on the residual r = predictions - targets.

Every loss is elementwise and returns the shape of ``predictions``; reduce with
:func:`jaxloss.mean`. float16/bfloat16 inputs are computed in float32 and the result is float32;
float64 stays float64. Hyperparameters are cast to that compute dtype, so a learnable (traced)
hyperparameter gets its gradient back in its own dtype. The ``scale`` c of
:func:`cauchy_loss`, :func:`geman_mcclure_loss`, :func:`welsch_loss` and :func:`tukey_biweight_loss`
may be a scalar or an array broadcasting to the predictions' shape (one scale per output dimension).

:func:`charbonnier_loss` (pseudo-Huber), :func:`cauchy_loss`, :func:`geman_mcclure_loss`,
:func:`welsch_loss` and :func:`tukey_biweight_loss` grow more slowly than r² for large residuals, so
outliers pull less; the last three are redescending (gross outliers get almost no gradient). The
first four are members of Barron's general loss :func:`jaxloss.barron_loss`: the shapes α = 1
(Charbonnier with δ = c, divided by c²), 0, -2 and -∞.

Each loss is finite wherever its value is in range, also where p - t itself overflows (it is
evaluated in r/2), and has closed-form derivatives in r and in its hyperparameter.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._core import checks as _checks
from ._core.checks import POSITIVE
from ._core.registry import register
from ._core.residual import half, log1p_z2_over, tangent

__all__ = [
    "cauchy_loss",
    "charbonnier_loss",
    "geman_mcclure_loss",
    "tukey_biweight_loss",
    "welsch_loss",
]


@register(plot="residual")
def charbonnier_loss(
    predictions: ArrayLike, targets: ArrayLike, *, delta: ArrayLike = 1.0
) -> jax.Array:
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
      δ = 1; no optax, torch.nn or Keras equivalent (Keras/optax ``huber_loss`` is the non-smooth
      one).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> [round(v, 6) for v in jaxloss.charbonnier_loss(jnp.array([0.0, 1.0, 3.0]), jnp.zeros(3))
      ...  .tolist()]
      [0.0, 0.414214, 2.162278]

    Reference: Charbonnier et al., "Two deterministic half-quadratic regularization algorithms
    for computed imaging", ICIP 1994; Hartley and Zisserman, "Multiple View Geometry", 2nd ed.,
    appendix 6.8 (pseudo-Huber).
    """
    fn = "charbonnier_loss"
    p, t = _checks.prepare_pair(fn, predictions, targets)
    d = _checks.hyperparameter(fn, "delta", delta, POSITIVE, p.dtype)
    return _charbonnier(p, t, d)


def _charbonnier_parts(p: jax.Array, t: jax.Array, d: jax.Array):
    """(h, |h|, z, R = z/(H + 1), H = √(1 + z²)) with h = r/2, z = min(|r|/δ, 1e18): beyond
    1e18, z/(√(1 + z²) + 1) and z/H are 1 to working precision."""
    h = half(p, t)
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
    return value, tangent(
        value,
        lambda: -jnp.sign(u) * d * (z / big_h),
        lambda: a * ratio * (ratio * (z / big_h)),
        dp,
        dt,
        dd,
    )


_charbonnier.defjvp(_charbonnier_jvp, symbolic_zeros=True)


@register(plot="residual")
def cauchy_loss(predictions: ArrayLike, targets: ArrayLike, *, scale: ArrayLike = 1.0) -> jax.Array:
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
      The M-estimator form (c²/2) log(1 + (r/c)²) (scipy's ``loss='cauchy_loss'``, ψ(r) ≈ r near 0)
      is (c²/2) · cauchy_loss(p, t, scale=c/√2). No optax, torch.nn or Keras equivalent.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> [round(v, 6) for v in jaxloss.cauchy_loss(jnp.array([0.0, 2.0]), jnp.zeros(2)).tolist()]
      [0.0, 1.098612]

    Reference: Black and Anandan, "The robust estimation of multiple motions", CVIU 1996; the
    normalisation of Barron, "A General and Adaptive Robust Loss Function", CVPR 2019.
    """
    fn = "cauchy_loss"
    p, t = _checks.prepare_pair(fn, predictions, targets)
    c = _checks.hyperparameter_array(fn, "scale", scale, POSITIVE, p.shape, p.dtype)
    return _cauchy(p, t, c)


@jax.custom_jvp
def _cauchy(p: jax.Array, t: jax.Array, c: jax.Array) -> jax.Array:
    return log1p_z2_over(half(p, t), c, jnp.asarray(2, p.dtype))


def _cauchy_jvp(primals, tangents):
    """dl/dr = (2/c) z/(z² + 2), dl/dc = -(2/c) z²/(z² + 2), written in z for |z| <= √2 and in
    w = 1/z beyond (w/(1 + 2w²) and 1/(1 + 2w²)): bounded terms, right where z overflows."""
    p, t, c = primals
    dp, dt, dc = tangents
    h = half(p, t)
    value = log1p_z2_over(h, c, jnp.asarray(2, p.dtype))
    big = ~(jnp.abs(h) <= c * (0.5 * math.sqrt(2.0)))  # |z| > √2; NaN takes this branch
    z = 2 * (jnp.where(big, 0, h) / c)
    w = (0.5 * c) / jnp.where(big, h, 1)

    def g_r():
        return (2 / c) * jnp.where(big, w / (1 + 2 * w * w), z / (z * z + 2))

    def g_c():
        return (-2 / c) * jnp.where(big, 1 / (1 + 2 * w * w), z * z / (z * z + 2))

    return value, tangent(value, g_r, g_c, dp, dt, dc)


_cauchy.defjvp(_cauchy_jvp, symbolic_zeros=True)


@register(plot="residual")
def geman_mcclure_loss(
    predictions: ArrayLike, targets: ArrayLike, *, scale: ArrayLike = 1.0
) -> jax.Array:
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
      >>> jaxloss.geman_mcclure_loss(jnp.array([0.0, 2.0]), jnp.zeros(2)).tolist()
      [0.0, 1.0]

    Reference: Geman and McClure, "Statistical methods for tomographic image reconstruction",
    Bull. Int. Statist. Inst. 1987; Barron, CVPR 2019.
    """
    fn = "geman_mcclure_loss"
    p, t = _checks.prepare_pair(fn, predictions, targets)
    c = _checks.hyperparameter_array(fn, "scale", scale, POSITIVE, p.shape, p.dtype)
    return _geman_mcclure(p, t, c)


def _gm_parts(p: jax.Array, t: jax.Array, c: jax.Array):
    """(high, z, w): |z| <= 2 uses z = r/c, beyond w = 1/z (NaN goes to ``high``)."""
    h = half(p, t)
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

    return value, tangent(value, g_r, g_c, dp, dt, dc)


_geman_mcclure.defjvp(_geman_mcclure_jvp, symbolic_zeros=True)


@register(plot="residual")
def welsch_loss(predictions: ArrayLike, targets: ArrayLike, *, scale: ArrayLike = 1.0) -> jax.Array:
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
      >>> [round(v, 6) for v in jaxloss.welsch_loss(jnp.array([0.0, 2.0]), jnp.zeros(2)).tolist()]
      [0.0, 0.864665]

    Reference: Dennis and Welsch, "Techniques for nonlinear least squares and robust regression",
    Commun. Statist. Simul. Comput. 1978; Leclerc, IJCV 1989; Barron, CVPR 2019.
    """
    fn = "welsch_loss"
    p, t = _checks.prepare_pair(fn, predictions, targets)
    c = _checks.hyperparameter_array(fn, "scale", scale, POSITIVE, p.shape, p.dtype)
    return _welsch(p, t, c)


@jax.custom_jvp
def _welsch(p: jax.Array, t: jax.Array, c: jax.Array) -> jax.Array:
    zh = half(p, t) / c  # z/2; z² beyond the range gives exactly 1
    return -jnp.expm1(-2 * zh * zh)


# z e^(-z²/2) is 0 in float64 beyond |z| = 40 (e^-800): the gradient clips z there.
_WELSCH_CLIP = 40.0


def _welsch_jvp(primals, tangents):
    """dl/dr = (z/c) e^(-z²/2), dl/dc = -(z²/c) e^(-z²/2), with z clipped at ±40 (where both
    are 0 to float64 precision), so no inf·0 for large or overflowing z."""
    p, t, c = primals
    dp, dt, dc = tangents
    value = _welsch(p, t, c)
    z = jnp.clip(2 * (half(p, t) / c), -_WELSCH_CLIP, _WELSCH_CLIP)
    e = jnp.exp(-0.5 * z * z)
    return value, tangent(value, lambda: (z / c) * e, lambda: -(z * z / c) * e, dp, dt, dc)


_welsch.defjvp(_welsch_jvp, symbolic_zeros=True)


@register(plot="residual")
def tukey_biweight_loss(
    predictions: ArrayLike, targets: ArrayLike, *, scale: ArrayLike = 4.685
) -> jax.Array:
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
      >>> l = jaxloss.tukey_biweight_loss(jnp.array([0.0, 1.0, 3.0]), jnp.zeros(3), scale=2.0)
      >>> [round(v, 6) for v in l.tolist()]
      [0.0, 0.385417, 0.666667]

    Reference: Beaton and Tukey, "The fitting of power series, meaning polynomials, illustrated
    on band-spectroscopic data", Technometrics 1974.
    """
    fn = "tukey_biweight_loss"
    p, t = _checks.prepare_pair(fn, predictions, targets)
    c = _checks.hyperparameter_array(fn, "scale", scale, POSITIVE, p.shape, p.dtype)
    return _tukey(p, t, c)


def _tukey_parts(p: jax.Array, t: jax.Array, c: jax.Array):
    """(h, outside, u, w): u = min(z², 1); w = 1 - u, inside as ((c - |r|)/c)((c + |r|)/c)
    (c - |r| is exact near the cut-off, where 1 - z² cancels), 0 outside. NaN is inside."""
    h = half(p, t)
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
    return value, tangent(
        value, lambda: -neg_r * (w * w), lambda: (c / 3) * (u * u) * (1 + 2 * w), dp, dt, dc
    )


_tukey.defjvp(_tukey_jvp, symbolic_zeros=True)
