"""Regression losses for small errors: larger gradients than L1/L2 for small and medium
residuals r = predictions - targets (landmark and heatmap regression).

Every loss is elementwise and returns the shape of ``predictions``; reduce with
:func:`jaxloss.mean`. float16/bfloat16 inputs are computed in float32 and the result is float32;
float64 stays float64. Hyperparameters are scalars, cast to that compute dtype, so a learnable
(traced) hyperparameter gets its gradient back in its own dtype.

:func:`wing_loss` is logarithmic for small |r| and linear beyond ω (landmarks);
:func:`adaptive_wing_loss` also lets the target shape the loss (heatmaps: L2-like on the background,
Wing-like on the foreground). At r = 0 the gradient is 0 (the subgradient, as for |r|).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._core import checks as _checks
from ._core.ad import all_zero, is_zero
from ._core.checks import POSITIVE
from ._core.numerics import abs0, softplus
from ._core.registry import register

__all__ = ["adaptive_wing_loss", "wing_loss"]


@register(plot="residual")
def wing_loss(
    predictions: ArrayLike, targets: ArrayLike, *, omega: ArrayLike = 10.0, epsilon: ArrayLike = 2.0
) -> jax.Array:
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
      ``jaxloss.mean(wing_loss(p, t).sum((1, 2)))``. No optax, torch.nn or Keras equivalent.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> [round(v, 5) for v in jaxloss.wing_loss(jnp.array([1.0, 12.0]), jnp.zeros(2)).tolist()]
      [4.05465, 19.91759]

    Reference: Feng et al., "Wing Loss for Robust Facial Landmark Localisation with Convolutional
    Neural Networks", CVPR 2018 (arXiv:1711.06753).
    """
    fn = "wing_loss"
    p, t = _checks.prepare_pair(fn, predictions, targets)
    w = _checks.hyperparameter(fn, "omega", omega, POSITIVE, p.dtype)
    e = _checks.hyperparameter(fn, "epsilon", epsilon, POSITIVE, p.dtype)
    a = abs0(p - t)  # inf where |p - t| overflows: the value a - C is then beyond range too
    c = w - w * jnp.log1p(w / e)
    inside = a < w
    a_in = jnp.where(inside, a, 0)  # the untaken branch never sees a large a (its ω, ε terms)
    # A NaN ω or ε also reaches the outer slope sign(r) (a factor 1 with no derivative).
    nan_hyper = jnp.where(jnp.isnan(c), jnp.nan, 1)
    return jnp.where(inside, w * jnp.log1p(a_in / e), a * nan_hyper - c)


@register(plot="adaptive_wing_loss")
def adaptive_wing_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    omega: ArrayLike = 14.0,
    theta: ArrayLike = 0.5,
    epsilon: ArrayLike = 1.0,
    alpha: ArrayLike = 2.1,
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
      >>> l = jaxloss.adaptive_wing_loss(jnp.array([0.2, 0.2, 1.0]), jnp.array([0.0, 1.0, 0.0]))
      >>> [round(v, 4) for v in l.tolist()]
      [0.4688, 8.2998, 8.4959]

    Reference: Wang, Bo and Fuxin, "Adaptive Wing Loss for Robust Face Alignment via Heatmap
    Regression", ICCV 2019 (arXiv:1904.07399).
    """
    fn = "adaptive_wing_loss"
    p, t = _checks.prepare_pair(fn, predictions, targets)
    w = _checks.hyperparameter(fn, "omega", omega, POSITIVE, p.dtype)
    th = _checks.hyperparameter(fn, "theta", theta, POSITIVE, p.dtype)
    ep = _checks.hyperparameter(fn, "epsilon", epsilon, POSITIVE, p.dtype)
    al = _checks.hyperparameter(fn, "alpha", alpha, POSITIVE, p.dtype)
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
    if not all_zero(dp, dt):
        g = jnp.sign(p - t) * d_delta()
        if not is_zero(dp):
            out = out + g * dp
        if not is_zero(dt):
            out = out - g * dt
    if not all_zero(dt, dal):
        ge = d_e()  # e = α - y
        if not is_zero(dal):
            out = out + ge * dal
        if not is_zero(dt):
            out = out - ge * dt
    for tangent, coefficient in ((dw, d_omega), (dth, d_theta), (dep, d_epsilon)):
        if not is_zero(tangent):
            out = out + coefficient() * tangent
    return value, out


_adaptive_wing.defjvp(_adaptive_wing_jvp, symbolic_zeros=True)
