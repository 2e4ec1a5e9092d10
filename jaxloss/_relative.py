"""Relative-error losses: percentage errors and errors of logarithms, elementwise.

These measure an error relative to the size of the target, so a 1-unit miss on a target of 1000
counts like a 0.001-unit miss on a target of 1. Each returns one value per element with the shape
of ``predictions``; reduce with :func:`jaxloss.mean` (MAPE is
``jaxloss.mean(absolute_percentage_error(p, t))``). float16/bfloat16 inputs are computed in float32
and the result is float32; float64 stays float64.

Which statistic each loss estimates matters more here than for the symmetric losses: the constant
prediction that minimises the mean loss over a sample (the Bayes rule, Gneiting 2011) is *not* the
mean or the median for any of them. Each docstring states it; tests/test_relative.py checks each
claim numerically.

Kinks: |x| is differentiated as sign(x), with the subgradient 0 at x = 0.

Reference: T. Gneiting, "Making and Evaluating Point Forecasts", JASA 106(494), 2011.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._core import checks as _checks
from ._core.checks import NONNEGATIVE, POSITIVE
from ._core.numerics import abs0
from ._core.registry import register

__all__ = [
    "absolute_percentage_error",
    "log_ratio_error",
    "squared_logarithmic_error",
    "symmetric_absolute_percentage_error",
]


def _log_floor(x: jax.Array, floor: jax.Array) -> jax.Array:
    """log(max(x, floor)) with derivative 1/x above the floor and exactly 0 at or below it; a NaN
    x gives NaN (the clamp is keyed on x <= floor, which NaN fails)."""
    clamped = x <= floor
    return jnp.where(clamped, jnp.log(floor), jnp.log(jnp.where(clamped, 1, x)))


def _log1p_floor(x: jax.Array, eps: jax.Array) -> jax.Array:
    """log1p(max(x, -1 + ε)) with derivative 1/(1 + x) above the clamp and 0 at or below it.

    The clamp is tested as 1 + x <= ε (1 + x is exact near -1, where -1 + ε is not
    representable: in float32, -1 + 1e-7 rounds 19 % away) and gives log(ε) exactly. A NaN x
    gives NaN.
    """
    clamped = 1 + x <= eps
    return jnp.where(clamped, jnp.log(eps), jnp.log1p(jnp.where(clamped, 0, x)))


@register(plot="relative")
def absolute_percentage_error(
    predictions: ArrayLike, targets: ArrayLike, *, eps: ArrayLike = 1e-7
) -> jax.Array:
    """Absolute percentage error (the summand of MAPE) as a fraction, elementwise.

    Math:  l = |p - t| / max(|t|, ε).  A fraction: 0.25 means 25 %; multiply by 100 for keras's
    percent. The ε guard keeps zero targets finite: there the loss is |p|/ε (large, by design:
    MAPE is meant for targets bounded away from 0).

    Gradient: dl/dp = sign(p - t) / max(|t|, ε), 0 at p = t.
    dl/dt = -sign(p - t)/|t| - |p - t| sign(t)/t² where |t| > ε; -sign(p - t)/ε where |t| <= ε.

    Minimiser: over a constant prediction c, the mean loss over a sample y_i is minimised by the
    median of the y_i weighted by 1/|y_i| (Gneiting's "median of order -1"). For positive data
    it lies below the median: MAPE systematically under-forecasts.

    Args:
      predictions: floating array, any shape.
      targets: real array of the same shape.
      eps: ε > 0, the smallest target magnitude used as the scale (keras's epsilon, 1e-7).

    Returns:
      Array of the shape of ``predictions``. ``100 * jaxloss.mean(...)`` equals
      ``keras.losses.mean_absolute_percentage_error`` (which is in percent, with the same ε) and
      ``jaxloss.mean(...)`` equals ``sklearn.metrics.mean_absolute_percentage_error`` (a fraction,
      with ε = float64 machine epsilon). optax and torch.nn have none.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> l = jaxloss.absolute_percentage_error(jnp.array([110.0, 1.5]), jnp.array([100.0, 2.0]))
      >>> [round(v, 6) for v in l.tolist()]
      [0.1, 0.25]

    Reference: Gneiting, "Making and Evaluating Point Forecasts", JASA 2011 (Bayes rule).
    """
    fn = "absolute_percentage_error"
    _checks.require(fn, "eps", eps, POSITIVE)
    p, t = _checks.prepare_pair(fn, predictions, targets)
    return _percentage(p, t, jnp.asarray(eps, p.dtype))


def _percentage_parts(p: jax.Array, t: jax.Array, e: jax.Array):
    """(h, s, clamped, q): h = (p - t)/2 (finite where p - t overflows), s = max(|t|, ε) (NaN
    kept), q = |h|/s = l/2."""
    h = 0.5 * p - 0.5 * t
    a = abs0(t)
    clamped = a <= e
    s = jnp.where(clamped, e, a)
    return h, s, clamped, abs0(h) / s


@jax.custom_jvp
def _percentage(p: jax.Array, t: jax.Array, e: jax.Array) -> jax.Array:
    return 2 * _percentage_parts(p, t, e)[3]


@_percentage.defjvp
def _percentage_jvp(primals, tangents):
    """dl = sign(r)(dp - dt)/s - (l/s) ds, ds = sign(t) dt (|t| > ε) or dε; l/s formed as
    2(q/s), so nothing overflows or flushes to 0 where the result is in range."""
    (p, t, e), (dp, dt, de) = primals, tangents
    h, s, clamped, q = _percentage_parts(p, t, e)
    g = jnp.sign(h) / s
    ratio = 2 * (q / s)
    ds = jnp.where(clamped, de, jnp.sign(t) * dt)
    return 2 * q, g * (dp - dt) - ratio * ds


@register(plot="relative")
def symmetric_absolute_percentage_error(
    predictions: ArrayLike, targets: ArrayLike, *, eps: ArrayLike = 1e-7
) -> jax.Array:
    """Symmetric absolute percentage error (the summand of sMAPE), elementwise, in [0, 2].

    Math:  l = 2|p - t| / (|p| + |t| + ε), with l = 0 at p = t = 0 (also when ε = 0).

    Gradient, with D = |p| + |t| + ε:
      dl/dp = 2 sign(p - t)/D - 2|p - t| sign(p)/D²,
      dl/dt = -2 sign(p - t)/D - 2|p - t| sign(t)/D²,
    with sign(0) = 0, so the gradient at p = t is 0 (finite, also at p = t = 0). For
    0 < p, t it is ±4t/(p + t)² (ε = 0): under-forecasts get the larger gradient.

    Minimiser: no standard statistic (Gneiting 2011: sMAPE elicits no common functional). Over a
    constant c > 0 and positive data y_i, a minimiser is a fixed point: the median of the y_i
    weighted by y_i / (c + y_i)², which down-weights both tails. On skewed positive data it lands
    near the median, far above MAPE's minimiser. The mean loss is not convex in c.

    Args:
      predictions: floating array, any shape.
      targets: real array of the same shape.
      eps: ε >= 0 added to the denominator. The default 1e-7 keeps gradients bounded by 4/ε near
        p = t = 0; ε = 0 gives the textbook value (bounded by exactly 2), still 0 with a zero
        gradient at p = t = 0 (the gradient, of size up to 4/(|p| + |t|), is finite for any
        normal float input).

    Returns:
      Array of the shape of ``predictions``. sMAPE in percent (M3/M4 competitions) is
      ``100 * jaxloss.mean(...)``; optax, torch.nn and keras have none.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> p, t = jnp.array([3.0, 0.0]), jnp.array([1.0, 0.0])
      >>> [round(v, 6) for v in jaxloss.symmetric_absolute_percentage_error(p, t).tolist()]
      [1.0, 0.0]

    Reference: Makridakis, "Accuracy measures: theoretical and practical concerns", IJF 1993;
    Hyndman & Koehler, "Another look at measures of forecast accuracy", IJF 2006.
    """
    fn = "symmetric_absolute_percentage_error"
    _checks.require(fn, "eps", eps, NONNEGATIVE)
    p, t = _checks.prepare_pair(fn, predictions, targets)
    return 2 * _relative_gap(p, t, jnp.asarray(eps, p.dtype))


def _half_gap(p: jax.Array, t: jax.Array, eps: jax.Array):
    """(D/2, zero): halves, so that |p| + |t| and p - t stay finite for any finite p and t
    (halving is exact: q below is the same number). ``zero`` is keyed on D == 0 so that a NaN
    gives NaN."""
    den = abs0(0.5 * p) + abs0(0.5 * t) + 0.5 * eps
    return den, den == 0


@jax.custom_jvp
def _relative_gap(p: jax.Array, t: jax.Array, eps: jax.Array) -> jax.Array:
    """q = |p - t| / (|p| + |t| + eps) in [0, 1], with q = 0 where the denominator is 0."""
    den, zero = _half_gap(p, t, eps)
    return jnp.where(zero, 0, abs0(0.5 * p - 0.5 * t) / jnp.where(zero, 1, den))


@_relative_gap.defjvp
def _relative_gap_jvp(primals, tangents):
    # dq = (sign(r) dr - q (sign(p) dp + sign(t) dt + deps)) / D, written with the bounded q
    # rather than |r|/D², which underflows to 0 (and gives inf) in float32 once D < ~1e-19.
    (p, t, eps), (dp, dt, deps) = primals, tangents
    q = _relative_gap(p, t, eps)
    den, zero = _half_gap(p, t, eps)
    num = jnp.sign(p - t) * (dp - dt) - q * (jnp.sign(p) * dp + jnp.sign(t) * dt + deps)
    return q, jnp.where(zero, 0, (0.5 * num) / jnp.where(zero, 1, den))


@register(plot="relative")
def squared_logarithmic_error(
    predictions: ArrayLike, targets: ArrayLike, *, eps: ArrayLike = 1e-7
) -> jax.Array:
    """Squared logarithmic error (the summand of MSLE), elementwise.

    Math:  l = (log1p(p') - log1p(t'))², x' = max(x, -1 + ε): inputs must be > -1 (use an exp or
    softplus head for predictions). Values at or below -1 + ε are clamped there, so any finite
    input gives a finite loss.

    Gradient: dl/dp = 2(log1p(p') - log1p(t'))/(1 + p) where p > -1 + ε, and 0 where p is
    clamped (the derivative of the clamp); the same with the sign flipped for t.

    Minimiser: over a constant c, exp(mean(log(1 + y_i))) - 1: the geometric mean of 1 + y minus
    1. By Jensen's inequality it is at most the arithmetic mean: MSLE under-predicts the mean,
    and a miss by a *factor* of 1 + y costs the same upwards and downwards.

    Args:
      predictions: floating array, any shape, values > -1.
      targets: real array of the same shape, values > -1.
      eps: ε > 0, the clamp margin above -1.

    Returns:
      Array of the shape of ``predictions``. Same as the summand of
      ``keras.losses.mean_squared_logarithmic_error`` for non-negative inputs (up to keras's
      ε = 1e-7 shift); keras clamps at ε instead of -1 + ε, so it treats values in (-1, 0) as 0
      and gives them a zero gradient, where jaxloss keeps their exact loss. optax and torch.nn
      have none; ``jaxloss.log_space(jaxloss.squared_error)`` is the same loss as a combinator.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> round(float(jaxloss.squared_logarithmic_error(jnp.array([3.0]), jnp.array([1.0]))[0]), 6)
      0.480453

    Reference: keras ``MeanSquaredLogarithmicError``; Gneiting 2011 for the Bayes rule.
    """
    fn = "squared_logarithmic_error"
    _checks.require(fn, "eps", eps, POSITIVE)
    p, t = _checks.prepare_pair(fn, predictions, targets)
    e = jnp.asarray(eps, p.dtype)
    d = _log1p_floor(p, e) - _log1p_floor(t, e)
    return d * d


@register(plot="relative")
def log_ratio_error(
    predictions: ArrayLike, targets: ArrayLike, *, squared: bool = True, eps: ArrayLike = 1e-7
) -> jax.Array:
    """Error of the log accuracy ratio log(p/t), squared or absolute, elementwise; positive inputs.

    Math:  l = log(p'/t')² (``squared=True``) or |log(p'/t')| (``squared=False``),
    x' = max(x, ε). Over- and under-prediction by the same *factor* cost the same
    (p = 2t and p = t/2 give the same loss). Inputs must be positive; values at or below ε are
    clamped to ε, so any finite input gives a finite loss.

    Gradient, with d = log p' - log t':  squared: dl/dp = 2d/p, dl/dt = -2d/t;  absolute:
    dl/dp = sign(d)/p, dl/dt = -sign(d)/t (0 at p = t). Where an input is clamped its gradient is
    0. With p = exp(z) the squared form is plain squared error in z.

    Minimiser: over a constant c, squared: the geometric mean exp(mean(log y_i)), at most the
    arithmetic mean; absolute: the median of the y_i (log is monotone).

    Args:
      predictions: floating array, any shape, values > 0.
      targets: real array of the same shape, values > 0.
      squared: square the log ratio (default) or take its absolute value.
      eps: ε > 0, the clamp for non-positive inputs (keras's epsilon, 1e-7). The loss is
        scale-invariant only above it: rescale data whose legitimate values are that small.

    Returns:
      Array of the shape of ``predictions``. optax, torch.nn and keras have none;
      ``jaxloss.log_space(jaxloss.squared_error, offset=0)`` is the squared form as a combinator.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> l = jaxloss.log_ratio_error(jnp.array([2.0, 0.5]), jnp.ones(2), squared=False)
      >>> [round(v, 6) for v in l.tolist()]
      [0.693147, 0.693147]

    Reference: C. Tofallis, "A better measure of relative prediction accuracy for model selection
    and model estimation", J. Oper. Res. Soc. 66, 2015.
    """
    fn = "log_ratio_error"
    _checks.require(fn, "eps", eps, POSITIVE)
    if not isinstance(squared, bool):
        raise TypeError(f"jaxloss.{fn}: `squared` must be a bool; got {squared!r}.")
    p, t = _checks.prepare_pair(fn, predictions, targets)
    e = jnp.asarray(eps, p.dtype)
    d = _log_floor(p, e) - _log_floor(t, e)
    return d * d if squared else abs0(d)
