"""Asymmetric regression losses: quantile (pinball), quantile-Huber, expectile and LinEx.

Each charges over- and under-prediction differently, which moves the statistic the loss
estimates away from the mean or median: the τ-quantile (pinball), the τ-expectile (expectile), an
exponentially tilted mean (LinEx). Residual conventions: u = t - p (target minus prediction, as in
Koenker's quantile regression) for the τ-losses, Δ = p - t for LinEx; both are stated in each
docstring.

Several levels at once. ``tau`` is a scalar, or a 1-D array of Q levels for a multi-quantile
(or multi-expectile) head. With a scalar, predictions and targets have the same shape and so does
the output. With ``tau`` of shape [Q], predictions carry a trailing level axis: predictions
[..., Q], targets [...] (one target per example, *not* repeated Q times) and the output is
[..., Q], ``out[..., q]`` being the loss of ``predictions[..., q]`` at level ``tau[q]``. This is the
one documented exception to the same-shape rule and it is checked exactly: predictions.shape must
equal targets.shape + (Q,), so a [N, 1] vs [N] mix-up is still an error.

float16/bfloat16 inputs are computed in float32 and the result is float32; float64 stays float64.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ._core import checks as _checks
from ._core.ad import all_zero, is_zero
from ._core.checks import POSITIVE, UNIT
from ._core.numerics import abs0
from ._core.registry import register
from ._core.residual import half

__all__ = ["expectile_loss", "linex_loss", "pinball_loss", "quantile_huber_loss"]


def _prepare_levels(
    fn: str, predictions: ArrayLike, targets: ArrayLike, tau: ArrayLike
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Validates (predictions, targets, tau) and returns them broadcast-ready in the compute dtype.

    Scalar ``tau``: same shapes. ``tau`` of shape [Q]: predictions [..., Q], targets [...]; the
    targets come back with a trailing axis of size 1.
    """
    p = _checks.check_floating(fn, "predictions", predictions)
    t = _checks.check_real(fn, "targets", targets)
    level = _checks.check_real(fn, "tau", tau)
    if level.ndim == 0:
        _checks.require(fn, "tau", tau, UNIT)  # the raw value: concrete even under jit
        _checks.check_same_shape(fn, "predictions", p, "targets", t)
    elif level.ndim == 1:
        _checks.require_elements(fn, "tau", tau, UNIT)
        q = level.shape[0]
        if tuple(p.shape) != (*t.shape, q):
            raise ValueError(
                f"jaxloss.{fn}: with `tau` of shape ({q},), `predictions` must have the shape of "
                f"`targets` plus a trailing axis of the {q} levels, targets.shape + ({q},); got "
                f"predictions.shape={tuple(p.shape)} and targets.shape={tuple(t.shape)}."
            )
    else:
        raise ValueError(
            f"jaxloss.{fn}: `tau` must be a scalar or a 1-D array of levels; got shape "
            f"{tuple(level.shape)}."
        )
    dtype = _checks.compute_dtype(p, t)
    p, t, level = p.astype(dtype), t.astype(dtype), level.astype(dtype)
    if level.ndim == 1:
        t = t[..., None]
    return p, t, level


@register(plot="residual")
def pinball_loss(predictions: ArrayLike, targets: ArrayLike, *, tau: ArrayLike = 0.5) -> jax.Array:
    """Pinball (quantile) loss, elementwise; one level τ or several at once.

    Math (u = t - p):  l = max(τu, (τ - 1)u) = τ·max(u, 0) + (1 - τ)·max(-u, 0),
    computed as ½|u| + (τ - ½)u. Under-prediction (p < t) costs τ per unit, over-prediction
    1 - τ: τ > ½ penalises under-prediction more. τ = ½ gives exactly ½|p - t|.

    Gradient: dl/dp = 1[p > t] - τ, and at the kink p = t the midpoint ½ - τ of the
    subdifferential [-τ, 1 - τ] (0 for τ = ½, like ``absolute_error``); dl/dt = -dl/dp;
    dl/dτ = u = t - p.

    Minimiser: over a constant c, the τ-quantile of the sample (for n samples and nτ not an
    integer, the ⌈nτ⌉-th smallest; otherwise any point between two order statistics).

    Args:
      predictions: floating array; any shape for a scalar τ, [..., Q] for τ of shape [Q].
      targets: real array; the shape of ``predictions`` for a scalar τ, [...] for τ of shape [Q].
      tau: level τ in [0, 1], a scalar (may be traced/learned) or a 1-D array of Q levels.

    Returns:
      Array of the shape of ``predictions``. Same as the summand of
      ``sklearn.metrics.mean_pinball_loss(alpha=τ)``; optax, torch.nn and keras have none.
      No anti-crossing is imposed across levels: sort or parametrise increments upstream.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> l = jaxloss.pinball_loss(jnp.array([[0.0, 2.0]]), jnp.array([1.0]),
      ...                          tau=jnp.array([0.1, 0.9]))  # predictions [1, 2], targets [1]
      >>> l.shape, [round(v, 6) for v in l[0].tolist()]
      ((1, 2), [0.1, 0.1])

    Reference: R. Koenker and G. Bassett, "Regression Quantiles", Econometrica 46(1), 1978.
    """
    p, t, tau_ = _prepare_levels("pinball_loss", predictions, targets, tau)
    h = half(t, p)  # u/2
    return abs0(h) + (2 * tau_ - 1) * h


def _weighted_huber_over_delta(h: jax.Array, w: jax.Array, delta: jax.Array) -> jax.Array:
    """w·H_δ(u)/δ for u = 2h: w q (q/(2δ)) + w(|u| - q), q = min(|u|, δ), branch-free.

    Written so that no intermediate overflows where the result is in range (w|u| as 2(w|h|))
    and so that d/dδ has no cancellation of terms of size |u|/δ: it is -w/2 beyond δ and
    -w u²/(2δ²) within, exactly. Gradient in u: w·clip(u, -δ, δ)/δ.
    """
    a2 = abs0(h)
    q = jnp.minimum(2 * a2, delta)
    return (w * q) * (q / (2 * delta)) + (2 * (w * a2) - w * q)


@register(plot="residual")
def quantile_huber_loss(
    predictions: ArrayLike, targets: ArrayLike, *, tau: ArrayLike = 0.5, delta: ArrayLike = 1.0
) -> jax.Array:
    """Quantile-Huber loss (Huber-smoothed pinball, as in QR-DQN/IQN), elementwise.

    Math (u = t - p, w = τ for u >= 0 and 1 - τ for u < 0):
      l = w · H_δ(u) / δ,  H_δ(u) = u²/2 if |u| <= δ else δ(|u| - δ/2).
    Quadratic within δ of the target, pinball-like (slopes τ and 1 - τ) beyond; δ → 0 gives the
    pinball loss. Smooth at u = 0 (value and gradient 0 there, whatever the weight).

    Gradient: dl/dp = -w·clip(u, -δ, δ)/δ (continuous); dl/dt = -dl/dp;
    dl/dτ = ±H_δ(u)/δ (+ for u >= 0); dl/dδ = -w·min(|u|, δ)²/(2δ²).

    Minimiser: between the τ-quantile (δ → 0) and the τ-expectile (δ larger than every |u|, where
    the loss is w·u²/(2δ), the expectile loss over 2δ).

    Args:
      predictions: floating array; any shape for a scalar τ, [..., Q] for τ of shape [Q].
      targets: real array; the shape of ``predictions`` for a scalar τ, [...] for τ of shape [Q].
      tau: level τ in [0, 1], a scalar (may be traced/learned) or a 1-D array of Q levels.
      delta: Huber threshold δ > 0 (κ in the papers; may be traced/learned).

    Returns:
      Array of the shape of ``predictions``. The IQN/dopamine convention (divided by δ); QR-DQN's
      eq. 10 omits the 1/δ (the same for δ = 1). optax, torch.nn and keras have none.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> l = jaxloss.quantile_huber_loss(jnp.zeros(2), jnp.array([0.5, -3.0]), tau=0.25)
      >>> [round(v, 6) for v in l.tolist()]
      [0.03125, 1.875]

    Reference: W. Dabney et al., "Distributional Reinforcement Learning with Quantile
    Regression", AAAI 2018; "Implicit Quantile Networks", ICML 2018.
    """
    fn = "quantile_huber_loss"
    _checks.require(fn, "delta", delta, POSITIVE)
    p, t, tau_ = _prepare_levels(fn, predictions, targets, tau)
    return _quantile_huber(p, t, tau_, jnp.asarray(delta, p.dtype))


@jax.custom_jvp
def _quantile_huber(p: jax.Array, t: jax.Array, tau: jax.Array, d: jax.Array) -> jax.Array:
    h = half(t, p)  # u/2
    w = jnp.where(h < 0, 1 - tau, tau)
    return _weighted_huber_over_delta(h, w, d)


def _quantile_huber_jvp(primals, tangents):
    """dl = w clip(u, -δ, δ)/δ (dt - dp) ± (H_δ(u)/δ) dτ - w min(|u|, δ)²/(2δ²) dδ, skipping
    symbolic zeros, from u = t - p formed apart from the value's u/2 (no shared subexpression
    to materialise). Where u overflows, clip gives ±δ and H_δ(u)/δ is beyond the range too."""
    p, t, tau, d = primals
    dp, dt, dtau, dd = tangents
    value = _quantile_huber(p, t, tau, d)
    u = t - p
    negative = u < 0
    w = jnp.where(negative, 1 - tau, tau)
    out = jnp.zeros_like(value)
    if not all_zero(dp, dt):
        g = w * (jnp.clip(u, -d, d) / d)
        if not is_zero(dp):
            out = out - g * dp
        if not is_zero(dt):
            out = out + g * dt
    q = jnp.minimum(jnp.abs(u), d)
    if not is_zero(dtau):
        huber_loss = q * (q / (2 * d)) + (jnp.abs(u) - q)
        out = out + jnp.where(negative, -huber_loss, huber_loss) * dtau
    if not is_zero(dd):
        out = out - (w * (q / d) * (q / d) / 2) * dd
    return value, out


_quantile_huber.defjvp(_quantile_huber_jvp, symbolic_zeros=True)


@register(plot="residual")
def expectile_loss(
    predictions: ArrayLike, targets: ArrayLike, *, tau: ArrayLike = 0.5
) -> jax.Array:
    """Expectile loss (asymmetric squared error), elementwise; one level τ or several at once.

    Math (u = t - p):  l = |τ - 1[u < 0]|·u² = τu² for u >= 0, (1 - τ)u² for u < 0.
    τ = ½ gives exactly ½(p - t)².

    Gradient: dl/dp = -2|τ - 1[u < 0]|·u (continuous, 0 at p = t); dl/dt = -dl/dp;
    dl/dτ = u² for u >= 0, -u² for u < 0.

    Minimiser: over a constant c, the τ-expectile of the sample: the c with
    τ·Σ_{y > c}(y - c) = (1 - τ)·Σ_{y < c}(c - y) (the mean for τ = ½).

    Args:
      predictions: floating array; any shape for a scalar τ, [..., Q] for τ of shape [Q].
      targets: real array; the shape of ``predictions`` for a scalar τ, [...] for τ of shape [Q].
      tau: level τ in [0, 1], a scalar (may be traced/learned) or a 1-D array of Q levels.

    Returns:
      Array of the shape of ``predictions``. The IQL value loss
      (``where(diff > 0, τ, 1 - τ) * diff**2``, diff = target - prediction) with the same
      convention; optax, torch.nn and keras have none.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> l = jaxloss.expectile_loss(jnp.zeros(2), jnp.array([2.0, -2.0]), tau=0.9)
      >>> [round(v, 6) for v in l.tolist()]
      [3.6, 0.4]

    Reference: W. Newey and J. Powell, "Asymmetric Least Squares Estimation and Testing",
    Econometrica 55(4), 1987.
    """
    p, t, tau_ = _prepare_levels("expectile_loss", predictions, targets, tau)
    return _expectile(p, t, tau_)


@jax.custom_jvp
def _expectile(p: jax.Array, t: jax.Array, tau: jax.Array) -> jax.Array:
    h = half(t, p)  # u/2
    w = jnp.where(h < 0, 1 - tau, tau)
    return 4 * (w * h) * h


@_expectile.defjvp
def _expectile_jvp(primals, tangents):
    """dl = 2wu (dt - dp) ± u² dτ (+ for u >= 0), with 2wu formed as 4(wh), h = u/2: right
    where u overflows and 2wu (w < 1/2) does not; autodiff of the product overflowed in an
    intermediate cotangent there."""
    (p, t, tau), (dp, dt, dtau) = primals, tangents
    h = half(t, p)
    negative = h < 0
    w = jnp.where(negative, 1 - tau, tau)
    value = 4 * (w * h) * h
    g = 4 * (w * h)
    g_tau = jnp.where(negative, -4, 4) * h * h
    return value, g * (dt - dp) + g_tau * dtau


_SERIES_RADIUS = 0.25
# 1/k! for k = 2..12: e^z - z - 1 = z²·(1/2! + z/3! + ... + z^10/12!) + O(z^13).
_SERIES = [1 / math.factorial(k) for k in range(2, 13)]


def _linex_core(z: jax.Array, z_max: jax.Array) -> jax.Array:
    """e^z - z - 1 without cancellation near 0, continued by its tangent line above ``z_max``.

    |z| < 0.25: the Taylor series to z^12 (relative truncation error < 1e-16); elsewhere
    expm1(z) - z, whose relative rounding error is then at most ~9 ulp.
    """
    small = jnp.abs(z) < _SERIES_RADIUS
    zs = jnp.where(small, z, 0)
    acc = jnp.full_like(zs, _SERIES[-1])
    for c in reversed(_SERIES[:-1]):
        acc = c + zs * acc
    above = z > z_max
    zc = jnp.where(above, z_max, z)
    direct = jnp.expm1(zc) - zc + jnp.where(above, jnp.expm1(z_max) * (z - z_max), 0)
    return jnp.where(small, zs * zs * acc, direct)


@register(plot="residual")
def linex_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    a: ArrayLike = 1.0,
    max_exponent: ArrayLike = 50.0,
) -> jax.Array:
    """LinEx (linear-exponential) loss, elementwise: exponential on one side, linear on the other.

    Math (Δ = p - t, z = aΔ):  l = e^z - z - 1, >= 0 and 0 only at Δ = 0. For a > 0
    over-prediction costs grow exponentially and under-prediction costs about linearly (a < 0:
    the reverse). Near 0, l ≈ a²Δ²/2, so ``2/a² · linex_loss`` tends to the squared error as
    a → 0. Computed without cancellation for small z (a Taylor series for |z| < 0.25).

    Overflow: above z = ``max_exponent`` (default 50, where e^z ≈ 5e21) the exponential is
    continued by its tangent line, l = e^m - m - 1 + (e^m - 1)(z - m) with m = max_exponent, so
    values and gradients stay finite for any finite input in float32 (|z| up to ~6e16). Below
    -max_exponent nothing is needed (e^z underflows to 0 and l = -z - 1 is exact). Raising
    ``max_exponent`` gives the exact loss further out (it is capped at log(dtype max) - 1, 87.7 in
    float32 and 708.8 in float64, so e^m and the gradient stay finite); in float32 keep
    e^m·max|z| below 3e38 (m < ~75 for |z| ~ 1e4) or the value overflows to inf (never NaN).

    Gradient: dl/dp = a(e^z - 1) (a·(e^m - 1) where z > m); dl/dt = -dl/dp;
    dl/da = Δ(e^z - 1) (Δ(e^m - 1) where z > m).

    Minimiser: over a constant c, -(1/a)·log(mean(e^{-a y_i})): below the mean for a > 0 (it is
    μ - aσ²/2 for Gaussian data).

    Args:
      predictions: floating array, any shape.
      targets: real array of the same shape.
      a: asymmetry a != 0 (may be traced/learned); its sign says which side is exponential.
      max_exponent: m > 0, where the exponential is continued linearly (a safety cap).

    Returns:
      Array of the shape of ``predictions``. Varian's form with b = 1 (multiply by b for his
      scale); optax, torch.nn and keras have none.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> l = jaxloss.linex_loss(jnp.array([1.0, -1.0]), jnp.zeros(2), a=1.0)
      >>> [round(v, 6) for v in l.tolist()]
      [0.718282, 0.367879]

    Reference: H. Varian, "A Bayesian approach to real estate assessment", 1975; A. Zellner,
    "Bayesian estimation and prediction using asymmetric loss functions", JASA 81(394), 1986.
    """
    fn = "linex_loss"
    _checks.require(fn, "max_exponent", max_exponent, POSITIVE)
    if getattr(a, "shape", ()) not in ((), (1,)):
        raise ValueError(f"jaxloss.{fn}: `a` must be a scalar; got shape {np.shape(a)}.")
    a_value = _checks.concrete_float(a)
    if a_value is not None and (a_value == 0 or not np.isfinite(a_value)):
        raise ValueError(f"jaxloss.{fn}: `a` must be finite and != 0; got {a_value!r}.")
    p, t = _checks.prepare_pair(fn, predictions, targets)
    a_ = jnp.asarray(a, p.dtype).reshape(())
    # Capped where e^m itself would overflow the compute dtype (88.7 in float32).
    m = jnp.minimum(jnp.asarray(max_exponent, p.dtype), math.log(jnp.finfo(p.dtype).max) - 1)
    return _linex_core(2 * (a_ * half(p, t)), m)  # z = aΔ without forming an overflowing Δ
