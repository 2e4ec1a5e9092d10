"""Barron's general robust loss and its negative log-likelihood, on the residual
r = predictions - targets.

Every loss is elementwise and returns the shape of ``predictions``; reduce with
:func:`jaxloss.mean`. float16/bfloat16 inputs are computed in float32 and the result is float32;
float64 stays float64. The shape α and the scale c may be scalars or arrays broadcasting to the
predictions' shape (one per output dimension), and may be traced (learned): they are cast to the
compute dtype and get their gradients back in their own dtype.

:func:`barron_loss` is one family of shapes indexed by α that contains the robust losses of
:mod:`jaxloss` as exact special cases: α = 2 is r²/(2c²), α = 1 :func:`jaxloss.charbonnier_loss`
(with δ = c, divided by c²), α = 0 :func:`jaxloss.cauchy_loss`, α = -2
:func:`jaxloss.geman_mcclure_loss`, α = -∞ :func:`jaxloss.welsch_loss`. Its adaptive form
:func:`barron_nll` is a negative log-likelihood with the log-partition log Z(α), so that α and c can
be *learned* (:func:`jaxloss.adaptive_robust_nll` wraps it with a pytree of unconstrained
parameters).

log Z(α) = log ∫ exp(-ρ(x, α, 1)) dx has no closed form; it is computed in the loss, in pure
JAX, by a fixed 253-node exp-sinh quadrature (no data file): error <= 2e-15 for α in [0, 8],
<= 5e-13 up to α = 32 and < 1e-12 up to α = 1000 in float64, float32 rounding (<= 3e-6) in
float32; its derivative in α differentiates the same sum. The bounds are asserted in
tests/test_robust.py against independent dense quadratures.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._core import checks as _checks
from ._core.barron import log_partition, rho
from ._core.checks import NONNEGATIVE, NOT_NAN, POSITIVE
from ._core.registry import register

__all__ = ["barron_loss", "barron_nll"]


@register(plot="residual", plot_defaults={"alpha": 1.0})
def barron_loss(
    predictions: ArrayLike, targets: ArrayLike, *, alpha: ArrayLike, scale: ArrayLike = 1.0
) -> jax.Array:
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
      >>> [round(v, 5) for v in jaxloss.barron_loss(r, jnp.zeros(2), alpha=1.0).tolist()]
      [0.11803, 2.16228]
      >>> [round(v, 5) for v in jaxloss.barron_loss(r, jnp.zeros(2), alpha=-jnp.inf).tolist()]
      [0.1175, 0.98889]

    Reference: Barron, "A General and Adaptive Robust Loss Function", CVPR 2019 (arXiv:1701.03077).
    """
    fn = "barron_loss"
    p, t = _checks.prepare_pair(fn, predictions, targets)
    a = _checks.hyperparameter_array(fn, "alpha", alpha, NOT_NAN, p.shape, p.dtype)
    c = _checks.hyperparameter_array(fn, "scale", scale, POSITIVE, p.shape, p.dtype)
    return rho(p, t, c, a)


@register(plot="residual", plot_defaults={"alpha": 1.0})
def barron_nll(
    predictions: ArrayLike, targets: ArrayLike, *, alpha: ArrayLike, scale: ArrayLike = 1.0
) -> jax.Array:
    """Barron's adaptive loss: the negative log-likelihood of his general distribution.

    Math (ρ = :func:`barron_loss`, c = scale, α >= 0):
      l = ρ(r, α, c) + log c + log Z(α),   Z(α) = ∫ exp(-ρ(x, α, 1)) dx,
    the negative log-density of p(r | α, c) = exp(-ρ(r, α, c)) / (c Z(α)). The log c and log Z(α)
    terms are what let α and c be *learned* by minimising this loss: without them the optimizer
    would pick the most robust shape and an infinite scale. Known values: α = 2 is the Gaussian
    (log Z = log √(2π), l = r²/(2c²) + log c + log √(2π)); α = 0 the Cauchy (Z = π√2).

    log Z(α) has no closed form. It is computed here by a fixed 253-node exp-sinh quadrature in
    the compute dtype, with error <= 2e-15 for α in [0, 8], <= 5e-13 up to α = 32 and < 1e-12
    up to α = 1000 in float64 (float32: <= 3e-6), so the loss is pure JAX, needs no data file,
    and is differentiable in α.

    Gradient:
      dl/dpredictions = dρ/dr = (r/c²) P^(α/2 - 1) (see :func:`barron_loss`);  dl/dtargets = -that;
      dl/dc = dρ/dc + 1/c;
      dl/dα = dρ/dα + d log Z/dα,  d log Z/dα = -E_{x ~ p(·|α,1)}[∂ρ(x, α, 1)/∂α],
    the last computed by differentiating the quadrature (the quadrature of ∂ρ/∂α). Both terms are
    finite for α in [0, 2), including exactly at 0; at α = 2 they diverge logarithmically with
    opposite signs (the convention at exactly 2 is that of :func:`barron_loss`: dρ/dα = 0, and the
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
    a = _checks.hyperparameter_array(fn, "alpha", alpha, NONNEGATIVE, p.shape, p.dtype)
    c = _checks.hyperparameter_array(fn, "scale", scale, POSITIVE, p.shape, p.dtype)
    # Keyed on α < 0 so that a NaN α reaches the value (and the gradients) as NaN.
    negative = a < 0
    a_safe = jnp.where(negative, 1, a)
    value = rho(p, t, c, a_safe) + jnp.log(c) + log_partition(a_safe)
    return jnp.where(negative, jnp.nan, value)
