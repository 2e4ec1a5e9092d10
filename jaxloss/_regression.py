"""Regression losses on the residual r = predictions - targets, elementwise.

Every function returns one value per element, with the shape of ``predictions``; reduce with
:func:`jaxloss.mean` (so MSE is ``jaxloss.mean(jaxloss.squared_error(p, t))``). float16/bfloat16
inputs are computed in float32 and the result is float32; float64 stays float64.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._core import checks as _checks
from ._core.ad import all_zero, is_zero
from ._core.checks import NONNEGATIVE, POSITIVE
from ._core.numerics import abs0
from ._core.registry import register

__all__ = ["absolute_error", "huber_loss", "log_cosh", "smooth_l1_loss", "squared_error"]


@register(plot="residual")
def squared_error(predictions: ArrayLike, targets: ArrayLike) -> jax.Array:
    """Squared error, elementwise.

    Math:  l = r², r = predictions - targets.  (optax's ``l2_loss`` is r²/2; this is not.)

    Gradient: dl/dpredictions = 2r, dl/dtargets = -2r.

    Args:
      predictions: floating array, any shape.
      targets: real array of the same shape.

    Returns:
      Array of the shape of ``predictions``. MSE is ``jaxloss.mean(squared_error(p, t))``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.squared_error(jnp.array([1.0, 3.0]), jnp.array([0.0, 1.0])).tolist()
      [1.0, 4.0]
    """
    p, t = _checks.prepare_pair("squared_error", predictions, targets)
    return _squared_error(p, t)


@jax.custom_jvp
def _squared_error(p: jax.Array, t: jax.Array) -> jax.Array:
    r = p - t
    return r * r


def _residual_tangent(
    value: jax.Array, g: jax.Array, dp: Any, dt: Any
) -> tuple[jax.Array, jax.Array]:
    """(value, g·(dt - dp)) for a loss of r = p - t whose derivative is -g, skipping symbolic
    zero tangents (g is computed from t - p so that it shares nothing with the value)."""
    out = jnp.zeros_like(value)
    if not is_zero(dp):
        out = out - g * dp
    if not is_zero(dt):
        out = out + g * dt
    return value, out


def _squared_error_jvp(primals, tangents):
    """2r·(dp - dt), from t - p: the value's reduction and the gradient then read p and t
    directly instead of sharing a materialised residual (one pass less, measured in bench/)."""
    p, t = primals
    dp, dt = tangents
    return _residual_tangent(_squared_error(p, t), 2 * (t - p), dp, dt)  # g = -2r


_squared_error.defjvp(_squared_error_jvp, symbolic_zeros=True)


@register(plot="residual")
def absolute_error(predictions: ArrayLike, targets: ArrayLike) -> jax.Array:
    """Absolute error, elementwise.

    Math:  l = |r|.

    Gradient: dl/dpredictions = sign(r), with the subgradient 0 chosen at the kink r = 0.

    Args:
      predictions: floating array, any shape.
      targets: real array of the same shape.

    Returns:
      Array of the shape of ``predictions``. MAE is ``jaxloss.mean(absolute_error(p, t))``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.absolute_error(jnp.array([1.0, -3.0]), jnp.array([0.0, 1.0])).tolist()
      [1.0, 4.0]
    """
    p, t = _checks.prepare_pair("absolute_error", predictions, targets)
    return abs0(p - t)


def _huber_core(r: jax.Array, delta: ArrayLike) -> jax.Array:
    """q·(|r| - q/2) with q = min(|r|, δ); branch-free so that XLA fuses it.

    Equal to 0.5·q² + δ·(|r| - q), the textbook split (|r| <= δ: q = |r| and the value is
    |r|²/2; |r| > δ: q = δ and the value is δ(|r| - δ/2)), in three operations fewer per element
    (measured in bench/: XLA:CPU's fused reduction pays per operation). Halving is exact, so
    |r| <= δ gives |r|·(|r|/2) with one rounding, and |r| > δ one rounding each in the
    difference and the product. A NaN residual stays NaN (|r| - q is NaN even where a fused
    ``min`` drops it) and |r| = inf gives inf. The value uses the cheaper ``jnp.abs`` (the same
    number as ``abs0``); its derivative is never used: :func:`_huber` carries the closed-form
    JVP clip(r, -δ, δ), 0 at r = 0.
    """
    a = jnp.abs(r)
    q = jnp.minimum(a, delta)
    return q * (a - 0.5 * q)


@register(plot="residual")
def huber_loss(predictions: ArrayLike, targets: ArrayLike, *, delta: ArrayLike = 1.0) -> jax.Array:
    """Huber loss, elementwise: quadratic for small residuals, linear for large ones.

    Math:  l = r²/2 if |r| <= δ, else δ(|r| - δ/2).

    Gradient: dl/dpredictions = clip(r, -δ, δ) (continuous; 0 at r = 0).
    dl/dδ = 0 if |r| <= δ, else |r| - δ.

    Args:
      predictions: floating array, any shape.
      targets: real array of the same shape.
      delta: threshold δ > 0 between the quadratic and linear parts (may be traced/learned).

    Returns:
      Array of the shape of ``predictions``. Same as ``torch.nn.HuberLoss(reduction='none')``
      and ``optax.huber_loss``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.huber_loss(jnp.array([0.5, 3.0]), jnp.zeros(2)).tolist()
      [0.125, 2.5]

    Reference: Huber, "Robust Estimation of a Location Parameter", Ann. Math. Statist. 1964.
    """
    _checks.require("huber_loss", "delta", delta, POSITIVE)
    p, t = _checks.prepare_pair("huber_loss", predictions, targets)
    return _huber(p, t, jnp.asarray(delta, p.dtype))


@jax.custom_jvp
def _huber(p: jax.Array, t: jax.Array, delta: jax.Array) -> jax.Array:
    return _huber_core(p - t, delta)


def _huber_jvp(primals, tangents):
    """Closed-form tangents clip(r, -δ, δ)·(dp - dt) + (|r| - min(|r|, δ))·dδ.

    Written for XLA:CPU fusion (measured in bench/): only the tangents that are not symbolic
    zeros are built (no full-size dδ term under ``jax.grad`` w.r.t. the predictions), and the
    gradient shares nothing with the value, so neither is materialised: the residual is formed
    as t - p, and δ passes an optimization barrier (a scalar) so that its broadcast is not
    merged with the value's.
    """
    p, t, delta = primals
    dp, dt, dd = tangents
    value = _huber_core(p - t, delta)
    out = jnp.zeros_like(value)
    if not all_zero(dp, dt):
        d = jax.lax.optimization_barrier(delta)
        c = jnp.clip(t - p, -d, d)  # = -clip(r, -δ, δ)
        if not is_zero(dp):
            out = out - c * dp
        if not is_zero(dt):
            out = out + c * dt
    if not is_zero(dd):
        a = abs0(p - t)
        out = out + (a - jnp.minimum(a, delta)) * dd
    return value, out


_huber.defjvp(_huber_jvp, symbolic_zeros=True)


@register(plot="residual")
def smooth_l1_loss(
    predictions: ArrayLike, targets: ArrayLike, *, beta: ArrayLike = 1.0
) -> jax.Array:
    """Smooth L1 loss, elementwise: Huber divided by its threshold, so the linear part has slope 1.

    Math:  l = r²/(2β) if |r| < β, else |r| - β/2;  β = 0 gives |r| exactly.

    Gradient: dl/dpredictions = clip(r/β, -1, 1) (β > 0); sign(r) with 0 at r = 0 when β = 0.

    Args:
      predictions: floating array, any shape.
      targets: real array of the same shape.
      beta: threshold β >= 0.

    Returns:
      Array of the shape of ``predictions``. Same as ``torch.nn.SmoothL1Loss(reduction='none')``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.smooth_l1_loss(jnp.array([0.5, 3.0]), jnp.zeros(2), beta=1.0).tolist()
      [0.125, 2.5]

    Reference: Girshick, "Fast R-CNN", ICCV 2015.
    """
    _checks.require("smooth_l1_loss", "beta", beta, NONNEGATIVE)
    p, t = _checks.prepare_pair("smooth_l1_loss", predictions, targets)
    b = jnp.asarray(beta, p.dtype)
    a = abs0(p - t)
    q = jnp.minimum(a, b)
    positive = b > 0
    b_safe = jnp.where(positive, b, 1)
    quadratic = jnp.where(positive, 0.5 * q * q / b_safe, 0)
    return quadratic + (a - q)


_LOG2 = math.log(2.0)


@register(plot="residual")
def log_cosh(predictions: ArrayLike, targets: ArrayLike) -> jax.Array:
    """Log-cosh loss, elementwise: ~r²/2 near 0, ~|r| - log 2 far away, smooth everywhere.

    Math:  l = log(cosh(r)), evaluated as |r| + log1p(exp(-2|r|)) - log 2 (no overflow).

    Gradient: dl/dpredictions = tanh(r).

    Args:
      predictions: floating array, any shape.
      targets: real array of the same shape.

    Returns:
      Array of the shape of ``predictions``. Same as ``optax.log_cosh``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> round(float(jaxloss.log_cosh(jnp.array([1.0]), jnp.array([0.0]))[0]), 6)
      0.433781
    """
    p, t = _checks.prepare_pair("log_cosh", predictions, targets)
    return _log_cosh(p, t)


def _log_cosh_core(r: jax.Array) -> jax.Array:
    a = abs0(r)
    return a + jnp.log1p(jnp.exp(-2 * a)) - _LOG2


@jax.custom_jvp
def _log_cosh(p: jax.Array, t: jax.Array) -> jax.Array:
    return _log_cosh_core(p - t)


def _log_cosh_jvp(primals, tangents):
    """tanh(r)·(dp - dt), from t - p so that the gradient shares nothing with the value."""
    p, t = primals
    dp, dt = tangents
    return _residual_tangent(_log_cosh_core(p - t), jnp.tanh(t - p), dp, dt)  # g = -tanh(r)


_log_cosh.defjvp(_log_cosh_jvp, symbolic_zeros=True)
