"""Likelihood losses: negative log-likelihoods of a Gaussian (predicted variance) and of a Poisson.

Elementwise: each returns one value per element with the shape of the predictions. float16/bfloat16
inputs are computed in float32 and the result is float32; float64 stays float64.

Clamps and their gradients. The variance (Gaussian) and the rate inside the log (Poisson rate
form) are clamped below at ε, as in torch. As in torch, whose ``GaussianNLLLoss`` clamps under
``no_grad``, the clamp is *straight-through*: the derivative is evaluated at the clamped value and
passed to the input unchanged. A collapsed variance therefore still gets the gradient
1/(2ε) - r²/(2ε²) that pushes it back up, instead of a dead zero gradient.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._core import checks as _checks
from ._core.checks import POSITIVE
from ._core.numerics import nan_of
from ._core.registry import register
from ._core.residual import half

__all__ = [
    "gaussian_nll",
    "gaussian_nll_with_log_variance",
    "poisson_nll",
    "poisson_nll_with_rates",
]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@jax.custom_jvp
def _clamp_straight_through(x: jax.Array, floor: jax.Array) -> jax.Array:
    """max(x, floor) whose derivative w.r.t. x is 1 everywhere (torch's clamp under no_grad);
    NaN where x is NaN (a fused max can drop it: see ``nan_of``)."""
    return jnp.maximum(x, floor) + nan_of(x)


@_clamp_straight_through.defjvp
def _clamp_straight_through_jvp(primals, tangents):
    (x, floor), (dx, _) = primals, tangents
    return jnp.maximum(x, floor) + nan_of(x), dx


def _check_bool(fn: str, arg: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"jaxloss.{fn}: `{arg}` must be a bool; got {value!r}.")


def _prepare_gaussian(
    fn: str,
    predictions: ArrayLike,
    targets: ArrayLike,
    name: str,
    scale: ArrayLike,
    full: Any,
    eps: ArrayLike,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    _checks.require(fn, "eps", eps, POSITIVE)
    _check_bool(fn, "full", full)
    p = _checks.check_floating(fn, "predictions", predictions)
    t = _checks.check_real(fn, "targets", targets)
    _checks.check_same_shape(fn, "predictions", p, "targets", t)
    s = _checks.check_real(fn, name, scale)
    _checks.check_broadcastable(fn, name, s, p.shape, "the predictions'")
    dtype = _checks.compute_dtype(p, t, s)
    return p.astype(dtype), t.astype(dtype), s.astype(dtype)


@register(plot="residual", plot_defaults={"variance": 1.0})
def gaussian_nll(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    variance: ArrayLike,
    full: bool = False,
    eps: ArrayLike = 1e-6,
) -> jax.Array:
    """Gaussian negative log-likelihood with a predicted variance, elementwise.

    Math (r = p - t, v' = max(v, ε)):  l = ½(log v' + r²/v') [+ ½ log 2π if ``full``].
    The mean is ``predictions``, the variance ``variance`` (keyword-only, so it cannot be swapped
    with the targets). Any finite input gives a finite loss; negative or zero variances are
    clamped to ε.

    Gradient: dl/dp = r/v', dl/dt = -r/v', dl/dv = ½(1/v' - r²/v'²), the last also where v < ε
    (straight-through clamp, torch's convention; see the module docstring).

    Minimiser: over a constant (μ, v), μ = the sample mean and v = the mean squared deviation
    from it (the biased, 1/n sample variance), when that exceeds ε.

    Args:
      predictions: floating array, any shape: the predicted means.
      targets: real array of the same shape.
      variance: real array broadcastable to the predictions' shape without changing it: one
        variance per element (heteroscedastic), or e.g. [..., 1] or a scalar (shared). A
        broadcast variance gets the summed gradient.
      full: add the constant ½ log 2π (the exact Gaussian NLL).
      eps: ε > 0, the variance clamp (torch's default 1e-6).

    Returns:
      Array of the shape of ``predictions``. Same value and gradient as
      ``torch.nn.GaussianNLLLoss(full=full, eps=eps, reduction='none')(predictions, targets,
      variance)``, except that torch raises on negative variances where this clamps (a check
      that cannot run under ``jit``). optax and keras have none.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> l = jaxloss.gaussian_nll(jnp.array([1.0, 0.0]), jnp.zeros(2),
      ...                          variance=jnp.array([1.0, 0.0]))  # 0 is clamped to eps
      >>> [round(v, 6) for v in l.tolist()]
      [0.5, -6.907755]

    Reference: D. Nix and A. Weigend, "Estimating the mean and variance of the target probability
    distribution", ICNN 1994.
    """
    fn = "gaussian_nll"
    p, t, v = _prepare_gaussian(fn, predictions, targets, "variance", variance, full, eps)
    vc = _clamp_straight_through(v, jnp.asarray(eps, p.dtype))
    out = 0.5 * jnp.log(vc) + _half_square_over(p, t, vc)
    return out + _HALF_LOG_2PI if full else out


@jax.custom_jvp
def _half_square_over(p: jax.Array, t: jax.Array, v: jax.Array) -> jax.Array:
    """r²/(2v), r = p - t, evaluated as 2h(h/v): finite where the value is in range even where
    r² (or r) overflows (|r| = 1e20, v = 1e4 gives 5e35 in float32)."""
    h = half(p, t)
    return 2 * h * (h / v)


@_half_square_over.defjvp
def _half_square_over_jvp(primals, tangents):
    """(r/v)(dp - dt) - (r²/(2v²)) dv with q = h/v: 2q and 2q², never r² or 1/v²."""
    (p, t, v), (dp, dt, dv) = primals, tangents
    h = half(p, t)
    q = h / v
    return 2 * h * q, 2 * q * (dp - dt) - 2 * q * q * dv


@jax.custom_jvp
def _half_square_times_exp(p: jax.Array, t: jax.Array, s: jax.Array) -> jax.Array:
    """r² e^-s / 2, r = p - t, evaluated as 2g², g = h e^(-s/2): no r², no 0·inf (e^-s = 0
    with r² = inf) and no overflow where the value is in range."""
    g = half(p, t) * jnp.exp(-0.5 * s)
    return 2 * g * g


@_half_square_times_exp.defjvp
def _half_square_times_exp_jvp(primals, tangents):
    """(r e^-s)(dp - dt) - (r² e^-s/2) ds = 2g e^(-s/2)(dp - dt) - 2g² ds."""
    (p, t, s), (dp, dt, ds) = primals, tangents
    e = jnp.exp(-0.5 * s)
    g = half(p, t) * e
    return 2 * g * g, 2 * g * e * (dp - dt) - 2 * g * g * ds


@register(plot="residual", plot_defaults={"log_variance": 0.0})
def gaussian_nll_with_log_variance(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    log_variance: ArrayLike,
    full: bool = False,
    eps: ArrayLike = 1e-6,
) -> jax.Array:
    """Gaussian negative log-likelihood with a predicted log-variance (stable head), elementwise.

    Math (r = p - t, s' = max(s, log ε)):  l = ½(s' + r² e^{-s'}) [+ ½ log 2π if ``full``].
    The same loss as :func:`gaussian_nll` at v = e^s, without the need for a positive head;
    the clamp at log ε only keeps e^{-s} from overflowing (s ≈ -88 in float32).

    Gradient: dl/dp = r e^{-s'}, dl/dt = -r e^{-s'}, dl/ds = ½(1 - r² e^{-s'}), the last also
    where s < log ε (straight-through clamp, as in :func:`gaussian_nll`).

    Minimiser: as :func:`gaussian_nll`, with s = log of the 1/n sample variance.

    Args:
      predictions: floating array, any shape: the predicted means.
      targets: real array of the same shape.
      log_variance: real array broadcastable to the predictions' shape without changing it:
        the natural log of the variance.
      full: add the constant ½ log 2π.
      eps: ε > 0; the log-variance is clamped at log ε.

    Returns:
      Array of the shape of ``predictions``. Equals
      ``torch.nn.GaussianNLLLoss(reduction='none')(predictions, targets, exp(log_variance))``.
      optax and keras have none.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> l = jaxloss.gaussian_nll_with_log_variance(jnp.array([2.0]), jnp.array([0.0]),
      ...                                            log_variance=jnp.array([0.0]))
      >>> [round(v, 6) for v in l.tolist()]
      [2.0]

    Reference: A. Kendall and Y. Gal, "What Uncertainties Do We Need in Bayesian Deep Learning
    for Computer Vision?", NeurIPS 2017 (the log-variance parametrisation).
    """
    fn = "gaussian_nll_with_log_variance"
    p, t, s = _prepare_gaussian(fn, predictions, targets, "log_variance", log_variance, full, eps)
    floor = jnp.log(jnp.asarray(eps, p.dtype))
    sc = _clamp_straight_through(s, floor)
    out = 0.5 * sc + _half_square_times_exp(p, t, sc)
    return out + _HALF_LOG_2PI if full else out


def _poisson_value(
    rate_term: jax.Array, log_rate: jax.Array, t: jax.Array, full: bool, cap: float | None
) -> jax.Array:
    """rate - t·log rate [+ S(t)], with torch's Stirling S(t) = t log t - t + ½ log(2π t) for
    t > 1 (else 0) merged into t·(log t - 1 - log rate), so that the two terms, each of which
    may overflow (t log t at t = 3e38), do not meet as inf - inf where their sum is finite or
    beyond the range with a sign. Where ``cap`` is given, ``rate_term`` is the log-rate x and the
    rate e^x: above x = cap, e^cap (e^(x - cap) + (t e^-cap)·(...)) (double where), so e^x and
    t·x do not meet as inf - inf either.
    """
    extra: jax.Array | float = 0.0
    factor = -log_rate
    if full:
        big = t > 1
        ts = jnp.where(big, t, 2)
        factor = jnp.where(big, jnp.log(ts) - 1 - log_rate, factor)
        extra = jnp.where(big, 0.5 * jnp.log(2 * math.pi * ts), 0)
    if cap is None:
        return rate_term + t * factor + extra
    over = rate_term > cap
    x_lo = jnp.where(over, cap, rate_term)
    x_hi = jnp.where(over, rate_term, cap)
    f_lo = jnp.where(over, 0, factor)
    f_hi = jnp.where(over, factor, 0)
    lo = jnp.exp(x_lo) + t * f_lo
    hi = math.exp(cap) * (jnp.exp(x_hi - cap) + (t * math.exp(-cap)) * f_hi)
    return jnp.where(over, hi, lo) + extra


def _prepare_poisson(
    fn: str, first_name: str, first: Any, targets: ArrayLike, full: Any
) -> tuple[jax.Array, jax.Array]:
    _check_bool(fn, "full", full)
    x = _checks.check_floating(fn, first_name, first)
    t = _checks.check_real(fn, "targets", targets)
    _checks.check_same_shape(fn, first_name, x, "targets", t)
    dtype = _checks.compute_dtype(x, t)
    return x.astype(dtype), t.astype(dtype)


@register(plot="log_rate")
def poisson_nll(log_rates: ArrayLike, targets: ArrayLike, *, full: bool = False) -> jax.Array:
    """Poisson negative log-likelihood from log-rates, elementwise.

    Math (l = log-rate, t = count >= 0):  loss = e^l - t·l [+ S(t) if ``full``], with torch's
    Stirling approximation of log t!:  S(t) = t log t - t + ½ log(2π t) for t > 1, 0 for t <= 1.
    Zero counts are fine (loss e^l). e^l overflows to inf (never NaN) above l ≈ 88 in float32,
    as in torch: a rate of 1e38 means the model has diverged.

    Gradient: dloss/dl = e^l - t; dloss/dt = -l [+ log t + 1/(2t) for t > 1 if ``full``].

    Minimiser: over a constant l, e^l = the sample mean of the counts.

    Args:
      log_rates: floating array, any shape: the predicted log of the Poisson rate.
      targets: real array of the same shape: counts (non-negative; need not be integers).
      full: add the Stirling term (it does not depend on the prediction).

    Returns:
      Array of the shape of ``log_rates``. Same as
      ``torch.nn.PoissonNLLLoss(log_input=True, full=full, reduction='none')``. optax has none;
      keras's ``Poisson`` takes rates (see :func:`poisson_nll_with_rates`).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> l = jaxloss.poisson_nll(jnp.array([0.0, 0.0]), jnp.array([0.0, 2.0]))
      >>> [round(v, 6) for v in l.tolist()]
      [1.0, 1.0]

    Reference: P. McCullagh and J. Nelder, "Generalized Linear Models", 2nd ed., 1989 (log link).
    """
    fn = "poisson_nll"
    x, t = _prepare_poisson(fn, "log_rates", log_rates, targets, full)
    cap = math.log(float(jnp.finfo(x.dtype).max)) - 2  # e^x within 1/e² of overflowing
    return _poisson_value(x, x, t, full, cap)


@register(plot="relative")
def poisson_nll_with_rates(
    rates: ArrayLike, targets: ArrayLike, *, full: bool = False, eps: ArrayLike = 1e-8
) -> jax.Array:
    """Poisson negative log-likelihood from rates, elementwise.

    Math (λ = rate >= 0, t = count >= 0):  loss = λ - t·log(max(λ + ε, ε)) [+ S(t) if ``full``],
    S as in :func:`poisson_nll`. For λ >= 0 the max is inactive (torch's exact formula); it only
    keeps an invalid negative rate finite. Zero counts and zero rates are fine.

    Gradient: dloss/dλ = 1 - t/max(λ + ε, ε), passed through the clamp (straight-through, as in
    :func:`gaussian_nll`, so a negative rate with t > 0 is pushed back up);
    dloss/dt = -log(max(λ + ε, ε)) [+ log t + 1/(2t) for t > 1 if ``full``].

    Minimiser: over a constant λ, the sample mean of the counts minus ε.

    Args:
      rates: floating array, any shape: the predicted Poisson rate (use a softplus/exp head).
      targets: real array of the same shape: counts (non-negative; need not be integers).
      full: add the Stirling term.
      eps: ε > 0 added inside the log (torch's default 1e-8; keras uses 1e-7).

    Returns:
      Array of the shape of ``rates``. Same as
      ``torch.nn.PoissonNLLLoss(log_input=False, full=full, eps=eps, reduction='none')`` for
      λ >= 0; the summand of ``keras.losses.poisson`` (with ε = 1e-7). optax has none.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> l = jaxloss.poisson_nll_with_rates(jnp.array([1.0, 0.0]), jnp.array([1.0, 0.0]))
      >>> [round(v, 6) for v in l.tolist()]
      [1.0, 0.0]

    Reference: McCullagh and Nelder, "Generalized Linear Models", 1989.
    """
    fn = "poisson_nll_with_rates"
    _checks.require(fn, "eps", eps, POSITIVE)
    x, t = _prepare_poisson(fn, "rates", rates, targets, full)
    e = jnp.asarray(eps, x.dtype)
    return _poisson_value(x, jnp.log(_clamp_straight_through(x + e, e)), t, full, None)
