"""Combinators that change which errors of a regression loss dominate.

Each takes an elementwise regression loss ``loss(predictions, targets, **hyperparameters)`` and
returns one with the same signature (extra keyword arguments are passed through), so they nest
with every other combinator; none reduces over the batch. :func:`asymmetric` treats over- and
under-prediction differently, :func:`relative` measures errors relative to the target,
:func:`log_space` as ratios, :func:`rescaled` in units of a scale, and :func:`bounded` caps each
element's loss. Predictions and targets have one shape (a loss over a class axis only for
:func:`bounded`), and the result has that shape. Where a part of the input is not used (the
other side of :func:`asymmetric`, a capped element of :func:`bounded`) the loss sees inputs
held constant, so an infinite derivative there never becomes 0·inf = NaN.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ._core import checks as _checks
from ._core.checks import NONNEGATIVE, POSITIVE
from ._core.combine import Loss, check_loss, loss_name, named

__all__ = ["asymmetric", "bounded", "log_space", "relative", "rescaled"]


def asymmetric(
    loss: Loss,
    under_loss: Loss | None = None,
    *,
    over: ArrayLike = 1.0,
    under: ArrayLike = 1.0,
) -> Loss:
    """Treats over- and under-prediction differently (regression, residual r = p - t).

    l'(p, t) = over · l(p, t) where r > 0 (over-prediction), under · l_under(p, t) where r <= 0,
    with ``l_under = under_loss or loss``. E.g. ``asymmetric(squared_error, over=1, under=4)``
    makes under-prediction four times as costly, which moves the minimiser of the expected loss
    towards higher quantiles of the target distribution.

    Gradient: over · dl where r > 0, under · dl_under where r <= 0 (at r = 0 the under side is
    used; both sides are 0 there for losses that vanish at the target). Each side's loss sees
    the target itself (r = 0) where it is not used, or where its factor is 0, so an infinite
    gradient on the unused side (e.g. a squared error at |r| = 3e38 in float32) does not turn
    into 0·inf = NaN.

    Args:
      loss: the loss for over-prediction (and for under-prediction when ``under_loss`` is None),
        an elementwise regression loss ``loss(predictions, targets, **hyperparameters)``.
      under_loss: optional loss for under-prediction (r <= 0), taking the same hyperparameters;
        default None uses ``loss`` on both sides.
      over: keyword-only factor >= 0 for over-prediction (default 1.0).
      under: keyword-only factor >= 0 for under-prediction (default 1.0).

    Returns:
      A loss ``asymmetric_loss(predictions, targets, **hyperparameters)`` (predictions and
      targets of one shape) returning per-element values of that shape.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> se = jaxloss.asymmetric(jaxloss.squared_error, over=1.0, under=4.0)
      >>> se(jnp.array([1.0, -1.0]), jnp.zeros(2)).tolist()
      [1.0, 4.0]
    """
    check_loss("asymmetric", "loss", loss)
    if under_loss is not None:
        check_loss("asymmetric", "under_loss", under_loss)
    _checks.require("asymmetric", "over", over, NONNEGATIVE)
    _checks.require("asymmetric", "under", under, NONNEGATIVE)
    lower = loss if under_loss is None else under_loss

    def asymmetric_loss(predictions: ArrayLike, targets: ArrayLike, **kwargs: Any) -> jax.Array:
        p, t = _checks.prepare_pair("asymmetric", predictions, targets)
        is_over = p > t
        if under_loss is None:  # one evaluation: the factor of the side each element is on
            factor = jnp.where(is_over, over, under)
            p_in = p if _nonzero(over, under) else jnp.where(factor != 0, p, t)
            return factor * loss(p_in, t, **kwargs)
        # Each side's loss sees the target (r = 0) where its value is not used.
        use_over = is_over if _nonzero(over) else is_over & (jnp.asarray(over) != 0)
        use_under = ~is_over if _nonzero(under) else ~is_over & (jnp.asarray(under) != 0)
        return jnp.where(
            is_over,
            over * loss(jnp.where(use_over, p, t), t, **kwargs),
            under * lower(jnp.where(use_under, p, t), t, **kwargs),
        )

    return named(asymmetric_loss, f"asymmetric({loss_name(loss)})", asymmetric.__doc__ or "")


def _nonzero(*factors: Any) -> bool:
    """Whether every factor is concrete and non-zero (then no element needs holding back)."""
    values = [_checks.concrete_float(f) for f in factors]
    return all(v is not None and v != 0 for v in values)


def relative(loss: Loss, *, eps: ArrayLike = 1e-8) -> Loss:
    """Applies a loss to relative errors: l'(p, t) = l(p/s, t/s), s = |t| + eps.

    The residual becomes (p - t)/(|t| + eps): a 1-unit error on a target of 1000 counts as much as
    a 0.001-unit error on a target of 1, so small targets' errors are no longer drowned out.
    ``relative(absolute_error)`` is the absolute percentage error (as a fraction).
    The scale s is a constant for the gradient.

    Gradient: dl'/dp = dl(r/s)/dr · 1/s.

    Args:
      loss: an elementwise regression loss ``loss(predictions, targets, **hyperparameters)``.
      eps: keyword-only eps > 0 added to |t| so that zero targets divide safely (default 1e-8).

    Returns:
      A loss ``relative_loss(predictions, targets, **hyperparameters)`` (predictions and
      targets of one shape) returning per-element values of that shape.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> ape = jaxloss.relative(jaxloss.absolute_error)
      >>> [round(v, 4) for v in ape(jnp.array([110.0, 2.0]), jnp.array([100.0, 1.0])).tolist()]
      [0.1, 1.0]
    """
    check_loss("relative", "loss", loss)
    _checks.require("relative", "eps", eps, POSITIVE)

    def relative_loss(predictions: ArrayLike, targets: ArrayLike, **kwargs: Any) -> jax.Array:
        p, t = _checks.prepare_pair("relative", predictions, targets)
        s = jax.lax.stop_gradient(jnp.abs(t) + eps)
        return loss(p / s, t / s, **kwargs)

    return named(relative_loss, f"relative({loss_name(loss)})", relative.__doc__ or "")


def log_space(loss: Loss, *, offset: ArrayLike = 1.0, eps: ArrayLike = 1e-7) -> Loss:
    """Applies a loss in log space: l'(p, t) = l(log(p + offset), log(t + offset)).

    Errors become ratios: over- and under-prediction by the same *factor* cost the same, and large
    targets no longer dominate. ``log_space(squared_error)`` is the squared logarithmic error
    (MSLE's summand, with offset 1). Inputs need p + offset > 0; values at or below 0 are
    clamped to ``eps`` (where the gradient w.r.t. p is then 0).

    Gradient: dl'/dp = dl/du(u) · 1/(p + offset), u = log(p + offset).

    Args:
      loss: an elementwise regression loss ``loss(predictions, targets, **hyperparameters)``.
      offset: keyword-only offset >= 0 added before the log (default 1.0).
      eps: keyword-only floor > 0 for p + offset and t + offset (default 1e-7).

    Returns:
      A loss ``log_space_loss(predictions, targets, **hyperparameters)`` (predictions and
      targets of one shape) returning per-element values of that shape.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> sle = jaxloss.log_space(jaxloss.squared_error)
      >>> [round(v, 4) for v in sle(jnp.array([3.0, 0.0]), jnp.array([0.0, 3.0])).tolist()]
      [1.9218, 1.9218]
    """
    check_loss("log_space", "loss", loss)
    _checks.require("log_space", "offset", offset, NONNEGATIVE)
    _checks.require("log_space", "eps", eps, POSITIVE)

    def log_space_loss(predictions: ArrayLike, targets: ArrayLike, **kwargs: Any) -> jax.Array:
        p, t = _checks.prepare_pair("log_space", predictions, targets)
        return loss(
            jnp.log(jnp.maximum(p + offset, eps)), jnp.log(jnp.maximum(t + offset, eps)), **kwargs
        )

    return named(log_space_loss, f"log_space({loss_name(loss)})", log_space.__doc__ or "")


def rescaled(loss: Loss, scale: ArrayLike) -> Loss:
    """Measures errors in units of ``scale``: l'(p, t) = l(p/scale, t/scale).

    For losses that are not homogeneous (Huber, log-cosh, smooth L1, any robust loss) this moves
    the point where small errors stop dominating: ``rescaled(huber, 0.1)`` is quadratic only for
    |r| < 0.1. (Squared and absolute error just get multiplied by a constant: see :func:`scaled`.)

    Gradient: dl'/dp = dl/dr(r/scale) / scale.

    Args:
      loss: an elementwise regression loss ``loss(predictions, targets, **hyperparameters)``.
      scale: the unit of error, a real number > 0 (may be traced).

    Returns:
      A loss ``rescaled_loss(predictions, targets, **hyperparameters)`` (predictions and
      targets of one shape) returning per-element values of that shape.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> h = jaxloss.rescaled(jaxloss.huber_loss, 0.1)
      >>> h(jnp.array([0.05, 1.0]), jnp.zeros(2)).tolist()
      [0.125, 9.5]
    """
    check_loss("rescaled", "loss", loss)
    _checks.require("rescaled", "scale", scale, POSITIVE)

    def rescaled_loss(predictions: ArrayLike, targets: ArrayLike, **kwargs: Any) -> jax.Array:
        p, t = _checks.prepare_pair("rescaled", predictions, targets)
        return loss(p / scale, t / scale, **kwargs)

    return named(rescaled_loss, f"rescaled({loss_name(loss)})", rescaled.__doc__ or "")


def bounded(loss: Loss, bound: ArrayLike, *, smooth: bool = False) -> Loss:
    """Caps a loss at ``bound`` so that no single element can dominate.

    Hard (default): l' = min(l, bound); elements above the cap get zero gradient (they are
    treated as outliers and ignored). Smooth: l' = bound · tanh(l / bound), which follows l for
    l << bound and saturates at bound with a gradient that decays as sech²(l / bound).

    Gradient: dl where l < bound (hard), or sech²(l / bound) · dl (smooth). Where the cap
    holds (hard: l >= bound; smooth: tanh(l / bound) rounds to ±1) the gradient is exactly 0,
    even where dl is infinite (a squared error at |r| = 3e38 in float32): the inner loss is
    evaluated a second time with those elements' inputs held constant (``stop_gradient``), so
    no 0·inf = NaN reaches the gradient. (XLA merges the two forward evaluations.) This needs
    the loss's output to have the predictions' shape, or that shape without the class axis
    (``axis=`` or the last); otherwise the plain form is used.

    Args:
      loss: the loss to cap, any callable ``loss(predictions, targets, **hyperparameters)``
        with values >= 0.
      bound: the cap, a real number > 0.
      smooth: keyword-only, default False (hard cap min(l, bound)); True for
        bound · tanh(l / bound).

    Returns:
      A loss ``bounded_loss(predictions, targets, **hyperparameters)`` returning the capped
      values: the shape and dtype of ``loss``'s output.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.bounded(jaxloss.squared_error, 4.0)(jnp.array([1.0, 3.0]), jnp.zeros(2)).tolist()
      [1.0, 4.0]
      >>> soft = jaxloss.bounded(jaxloss.squared_error, 4.0, smooth=True)
      >>> [round(v, 4) for v in soft(jnp.array([1.0, 3.0]), jnp.zeros(2)).tolist()]
      [0.9797, 3.9121]
    """
    check_loss("bounded", "loss", loss)
    _checks.require("bounded", "bound", bound, POSITIVE)

    def cap(values: jax.Array) -> jax.Array:
        if smooth:
            return jnp.multiply(bound, jnp.tanh(values / bound))
        return jnp.minimum(values, bound)

    def bounded_loss(predictions: ArrayLike, targets: ArrayLike, **kwargs: Any) -> jax.Array:
        values = loss(predictions, targets, **kwargs)
        capped = cap(values)
        held = jax.lax.stop_gradient(jnp.abs(capped) == bound if smooth else values >= bound)
        p_in = _hold(held, predictions, values.shape, kwargs.get("axis", -1))
        t_in = _hold(held, targets, values.shape, kwargs.get("axis", -1))
        if p_in is None:
            return capped
        return cap(loss(p_in, targets if t_in is None else t_in, **kwargs))

    return named(bounded_loss, f"bounded({loss_name(loss)})", bounded.__doc__ or "")


def _hold(held: jax.Array, x: Any, out_shape: tuple[int, ...], axis: Any) -> jax.Array | None:
    """``x`` with the entries feeding held outputs replaced by their stopped value; None when
    ``x`` is not a floating array of the output's shape (or that shape plus a class axis)."""
    if not isinstance(x, (jax.Array, np.ndarray)) or not jnp.issubdtype(x.dtype, jnp.floating):
        return None
    if tuple(x.shape) == tuple(out_shape):
        mask = held
    elif x.ndim == len(out_shape) + 1 and isinstance(axis, int) and -x.ndim <= axis < x.ndim:
        mask = jnp.expand_dims(held, axis % x.ndim)
        if tuple(np.delete(np.array(x.shape), axis % x.ndim)) != tuple(out_shape):
            return None
    else:
        return None
    return jnp.where(mask, jax.lax.stop_gradient(x), x)
