"""Combinators: higher-order functions that build a loss from losses (loss in, loss out).

A *loss* here is any callable ``loss(predictions, targets, **hyperparameters)`` returning
per-element or per-example values, as every jaxloss loss does. Each combinator returns a new loss
with the same signature (extra keyword arguments are passed through to the wrapped loss), so they
nest: ``bounded(asymmetric(huber, over=2.0), 10.0)`` is a loss. Combinators never reduce over the
batch; :func:`multitask_loss` is the one place that reduces, because it has to weigh whole tasks.

Everything is pure JAX: jittable, vmappable, differentiable, with gradients that are the same
combination of the parts' gradients (tests/test_combinators.py checks each against the closed
forms of the registry).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._core import checks as _checks
from ._reduce import mean

__all__ = [
    "asymmetric",
    "asymmetric_binary",
    "bounded",
    "class_weighted",
    "class_weights_from_counts",
    "detached",
    "linear_combination",
    "log_space",
    "masked",
    "multitask_loss",
    "relative",
    "rescaled",
    "scaled",
    "stop_gradient",
    "sum_losses",
    "weighted",
]

Loss = Callable[..., jax.Array]


def _name(loss: Any) -> str:
    return getattr(loss, "__name__", type(loss).__name__)


def _named(fn: Loss, name: str, doc: str) -> Loss:
    fn.__name__ = name
    fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


def _check_loss(fn: str, arg: str, loss: Any) -> None:
    if not callable(loss):
        raise TypeError(
            f"jaxloss.{fn}: `{arg}` must be a loss function (a callable "
            f"loss(predictions, targets, **hyperparameters)); got {type(loss).__name__}."
        )


def _check_scalar(fn: str, arg: str, value: Any, condition: str) -> None:
    _checks.require(fn, arg, value, condition)


# ----------------------------------------------------------------------------------------------
# Scaling and weighting


def scaled(loss: Loss, factor: Any) -> Loss:
    """Multiplies a loss by a constant: l'(p, t) = factor · l(p, t).

    A positive constant changes the gradient's size but not what the loss prefers: the minimiser
    of ``mean(factor · l)`` is the minimiser of ``mean(l)`` (tests/test_combinators.py trains
    both). With adaptive optimizers (Adam) it barely changes training at all. To change *which*
    errors dominate, change the loss's shape instead (:func:`rescaled`, :func:`relative`).

    Gradient: factor · dl.

    Args:
      loss: the loss to scale, any callable ``loss(predictions, targets, **hyperparameters)``.
      factor: the constant factor, a real number >= 0 (may be traced).

    Returns:
      A loss ``scaled_loss(predictions, targets, **hyperparameters)`` (hyperparameters are passed
      to ``loss``) returning ``factor * loss(predictions, targets, **hyperparameters)``: the
      shape of ``loss``'s output.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> half_se = jaxloss.scaled(jaxloss.squared_error, 0.5)
      >>> half_se(jnp.array([1.0, 2.0]), jnp.zeros(2)).tolist()
      [0.5, 2.0]
    """
    _check_loss("scaled", "loss", loss)
    _check_scalar("scaled", "factor", factor, ">= 0")

    def scaled_loss(predictions: Any, targets: Any, **kwargs: Any) -> jax.Array:
        return factor * loss(predictions, targets, **kwargs)

    return _named(scaled_loss, f"scaled({_name(loss)})", scaled.__doc__ or "")


WeightSpec = Any  # an array broadcastable to the loss's output, or a callable(p, t) -> array


def weighted(loss: Loss, weights: WeightSpec, *, differentiate_weights: bool = False) -> Loss:
    """Weights a loss per element or per example: l'(p, t) = w · l(p, t).

    ``weights`` is an array broadcastable to the loss's output, or a function
    ``weights(predictions, targets) -> array`` (e.g. weight by the target's magnitude). Weights are
    constants for the gradient unless ``differentiate_weights=True``.

    This scales the values; the mean of the result divides by the *count*. For the normalised
    weighted mean sum(w·l)/sum(w), pass the weights to the reduction instead:
    ``jaxloss.mean(loss(p, t), weights=w)``.

    Gradient: w · dl (plus l · dw when ``differentiate_weights``).

    Args:
      loss: the loss to weight, any callable ``loss(predictions, targets, **hyperparameters)``.
      weights: a real array broadcastable to the shape of ``loss``'s output, or a callable
        ``weights(predictions, targets) -> array`` of such an array, evaluated at each call.
      differentiate_weights: keyword-only, default False: the weights are constants for the
        gradient (``stop_gradient``); True lets the gradient flow through them (for learned or
        prediction-dependent weights).

    Returns:
      A loss ``weighted_loss(predictions, targets, **hyperparameters)`` returning
      ``w * loss(predictions, targets, **hyperparameters)``: the shape of ``loss``'s output,
      in its dtype.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> se = jaxloss.weighted(jaxloss.squared_error, jnp.array([1.0, 0.0, 2.0]))
      >>> se(jnp.array([1.0, 2.0, 3.0]), jnp.zeros(3)).tolist()
      [1.0, 0.0, 18.0]
    """
    _check_loss("weighted", "loss", loss)

    def weighted_loss(predictions: Any, targets: Any, **kwargs: Any) -> jax.Array:
        values = loss(predictions, targets, **kwargs)
        w = weights(predictions, targets) if callable(weights) else weights
        w = _checks.check_real("weighted", "weights", w)
        _checks.check_broadcastable("weighted", "weights", w, values.shape, "the loss output's")
        if not differentiate_weights:
            w = jax.lax.stop_gradient(w)
        return w.astype(values.dtype) * values

    return _named(weighted_loss, f"weighted({_name(loss)})", weighted.__doc__ or "")


def _label_weights(fn: str, labels: jax.Array, class_weights: jax.Array) -> jax.Array:
    """w[labels] for integer labels (0 outside [0, C)); w0 (1 - t) + w1 t for binary labels."""
    num_classes = class_weights.shape[0]
    if jnp.issubdtype(labels.dtype, jnp.integer):
        in_range = (labels >= 0) & (labels < num_classes)
        return jnp.where(in_range, class_weights[jnp.where(in_range, labels, 0)], 0)
    if num_classes != 2:
        raise ValueError(
            f"jaxloss.{fn}: floating (binary) labels need 2 class weights (negative, positive); "
            f"got {num_classes}."
        )
    t = labels.astype(class_weights.dtype)
    return class_weights[0] * (1 - t) + class_weights[1] * t


def class_weighted(loss: Loss, class_weights: Any) -> Loss:
    """Weights each example by the weight of its class: l'(z, y) = w[y] · l(z, y).

    Integer labels index ``class_weights`` (examples with labels outside [0, C), such as an
    ignore index, get weight 0). Floating binary labels t in [0, 1] with two weights
    (negative, positive) get w0 (1 - t) + w1 t. For PyTorch's weighted *mean* of cross-entropy
    (hard integer labels, no label smoothing), pass ``weights=class_weights[labels]`` to
    :func:`jaxloss.mean` on the unweighted loss instead (and ``where=labels != ignore_index``
    when there is an ignore index).

    Checks: concrete weights must be finite and >= 0; for a loss over a class axis (predictions
    with one more dimension than the labels, the class axis ``axis=`` or the last) the number of
    weights must be the number of classes, and for elementwise integer labels it must be 2: a
    ValueError naming both sizes otherwise (a short vector would silently weigh the missing
    classes 0).

    Gradient: w[y] · dl.

    Args:
      loss: the loss to weight, a callable ``loss(predictions, labels, **hyperparameters)``
        returning one value per example (a loss over a class axis) or per element.
      class_weights: 1-d real array [C] of weights >= 0, one per class (C = the size of the
        predictions' class axis; 2, negative then positive, for binary labels).

    Returns:
      A loss ``class_weighted_loss(predictions, labels, **hyperparameters)`` returning
      ``w[labels] * loss(predictions, labels, **hyperparameters)``: the shape of ``loss``'s
      output, in its dtype.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> ce = jaxloss.class_weighted(jaxloss.softmax_cross_entropy_with_integer_labels,
      ...                             jnp.array([1.0, 4.0]))
      >>> [round(v, 4) for v in ce(jnp.zeros((2, 2)), jnp.array([0, 1])).tolist()]
      [0.6931, 2.7726]
    """
    _check_loss("class_weighted", "loss", loss)
    cw = _checks.check_real("class_weighted", "class_weights", class_weights)
    if cw.ndim != 1:
        raise ValueError(
            f"jaxloss.class_weighted: `class_weights` must be 1-d (one weight per class); got "
            f"shape {tuple(cw.shape)}."
        )
    _checks.check_values("class_weighted", "class_weights", class_weights, ">= 0")

    def class_weighted_loss(predictions: Any, targets: Any, **kwargs: Any) -> jax.Array:
        labels = _checks.check_real("class_weighted", "labels", targets)
        if jnp.issubdtype(labels.dtype, jnp.integer):
            _check_num_classes(cw.shape[0], predictions, labels, kwargs.get("axis", -1))
        values = loss(predictions, targets, **kwargs)
        w = _label_weights("class_weighted", labels, cw.astype(values.dtype))
        _checks.check_broadcastable(
            "class_weighted", "labels", w, values.shape, "the loss output's"
        )
        return w * values

    return _named(
        class_weighted_loss, f"class_weighted({_name(loss)})", class_weighted.__doc__ or ""
    )


def _check_num_classes(num_weights: int, predictions: Any, labels: jax.Array, axis: Any) -> None:
    """ValueError unless there is one class weight per class of the predictions."""
    shape = tuple(getattr(predictions, "shape", np.shape(predictions)))
    if len(shape) == labels.ndim + 1 and isinstance(axis, int) and -len(shape) <= axis < len(shape):
        expected, where = shape[axis], f"the size of the predictions' class axis {axis}"
    elif shape == tuple(labels.shape):
        expected, where = 2, "negative and positive, for elementwise integer labels"
    else:
        return
    if num_weights != expected:
        raise ValueError(
            f"jaxloss.class_weighted: `class_weights` must have one weight per class, {expected} "
            f"({where}, predictions.shape={shape}); got {num_weights}."
        )


def class_weights_from_counts(
    counts: Any, *, method: str = "inverse", beta: float = 0.999
) -> jax.Array:
    """Class weights from per-class example counts, normalised to sum to the number of classes.

    Methods (n_c = count of class c):
      - ``"inverse"``: w_c ∝ 1 / n_c;
      - ``"inverse_sqrt"``: w_c ∝ 1 / sqrt(n_c);
      - ``"effective_number"``: w_c ∝ (1 - β) / (1 - β^n_c), the inverse effective number of
        samples (Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR
        2019); β = 0 gives equal weights and β → 1 approaches ``"inverse"``.
    Classes with zero count get weight 0 (there is nothing to weigh); the weights are scaled so
    that sum_c w_c = C, the number of classes (Cui et al.'s normalisation). Concrete counts must be
    finite and >= 0 with at least one above 0 (a ValueError otherwise); traced all-zero counts
    give NaN weights.

    Args:
      counts: non-empty 1-d real array [C] of per-class example counts (>= 0).
      method: keyword-only, one of ``"inverse"`` (default), ``"inverse_sqrt"``,
        ``"effective_number"``.
      beta: keyword-only, β in [0, 1) for ``"effective_number"`` (default 0.999; ignored by the
        other methods).

    Returns:
      Array [C] of weights >= 0 summing to C, floating (float32, or float64 for float64
      counts); pass it to :func:`class_weighted` or a loss's ``class_weights=``.

    Examples:
      >>> import jaxloss
      >>> [round(w, 4) for w in jaxloss.class_weights_from_counts([90, 10]).tolist()]
      [0.2, 1.8]
      >>> [round(w, 4) for w in jaxloss.class_weights_from_counts(
      ...     [90, 10, 0], method="effective_number", beta=0.9).tolist()]
      [1.1833, 1.8167, 0.0]
    """
    fn = "class_weights_from_counts"
    n = _checks.check_real(fn, "counts", counts)
    if n.ndim != 1 or n.shape[0] == 0:
        raise ValueError(f"jaxloss.{fn}: `counts` must be a non-empty 1-d array; got {n.shape}.")
    methods = ("inverse", "inverse_sqrt", "effective_number")
    if method not in methods:
        raise ValueError(f"jaxloss.{fn}: `method` must be one of {methods}; got {method!r}.")
    _check_scalar(fn, "beta", beta, "in [0, 1)")
    _checks.check_values(fn, "counts", counts, ">= 0")
    if (c := _checks.concrete_array(counts)) is not None and not np.any(c > 0):
        raise ValueError(
            f"jaxloss.{fn}: `counts` must have at least one class with a count > 0 (weights are "
            f"normalised by the total); got {c.tolist()}. Pass the number of training examples "
            "of each class."
        )
    n = n.astype(_checks.compute_dtype(n))
    present = n > 0
    n_safe = jnp.where(present, n, 1)
    if method == "inverse":
        raw = 1 / n_safe
    elif method == "inverse_sqrt":
        raw = 1 / jnp.sqrt(n_safe)
    else:
        b = jnp.asarray(beta, n.dtype)
        # 1 - beta^n = -expm1(n log beta); exact for beta near 1, and 1 at beta = 0 (log 0 = -inf).
        raw = (1 - b) / -jnp.expm1(n_safe * jnp.log(b))
    raw = jnp.where(present, raw, 0)
    return raw * n.shape[0] / jnp.sum(raw)


# ----------------------------------------------------------------------------------------------
# Error types


def asymmetric(
    loss: Loss,
    under_loss: Loss | None = None,
    *,
    over: Any = 1.0,
    under: Any = 1.0,
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
    _check_loss("asymmetric", "loss", loss)
    if under_loss is not None:
        _check_loss("asymmetric", "under_loss", under_loss)
    _check_scalar("asymmetric", "over", over, ">= 0")
    _check_scalar("asymmetric", "under", under, ">= 0")
    lower = loss if under_loss is None else under_loss

    def asymmetric_loss(predictions: Any, targets: Any, **kwargs: Any) -> jax.Array:
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

    return _named(asymmetric_loss, f"asymmetric({_name(loss)})", asymmetric.__doc__ or "")


def _nonzero(*factors: Any) -> bool:
    """Whether every factor is concrete and non-zero (then no element needs holding back)."""
    values = [_checks.concrete_float(f) for f in factors]
    return all(v is not None and v != 0 for v in values)


def asymmetric_binary(loss: Loss, *, positive: Any = 1.0, negative: Any = 1.0) -> Loss:
    """Weights the positive and negative side of a binary loss differently.

    l'(x, t) = (negative · (1 - t) + positive · t) · l(x, t) for labels t in [0, 1] (hard labels
    pick one weight; soft labels interpolate). For sigmoid cross-entropy, weighting the positive
    *term* alone is ``sigmoid_binary_cross_entropy(pos_weight=)``.

    Gradient: (negative (1 - t) + positive t) · dl/dx.

    Args:
      loss: a binary loss ``loss(logits, labels, **hyperparameters)`` with labels in [0, 1],
        e.g. :func:`jaxloss.sigmoid_binary_cross_entropy`.
      positive: keyword-only weight >= 0 of the positive side, t = 1 (default 1.0).
      negative: keyword-only weight >= 0 of the negative side, t = 0 (default 1.0).

    Returns:
      A loss ``asymmetric_binary_loss(logits, labels, **hyperparameters)`` returning the
      weighted values of ``loss``: its output's shape and dtype.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> bce = jaxloss.asymmetric_binary(jaxloss.sigmoid_binary_cross_entropy, positive=3.0)
      >>> [round(v, 4) for v in bce(jnp.zeros(2), jnp.array([0.0, 1.0])).tolist()]
      [0.6931, 2.0794]
    """
    _check_loss("asymmetric_binary", "loss", loss)
    _check_scalar("asymmetric_binary", "positive", positive, ">= 0")
    _check_scalar("asymmetric_binary", "negative", negative, ">= 0")

    def asymmetric_binary_loss(logits: Any, labels: Any, **kwargs: Any) -> jax.Array:
        values = loss(logits, labels, **kwargs)
        t = _checks.check_real("asymmetric_binary", "labels", labels).astype(values.dtype)
        return (negative * (1 - t) + positive * t) * values

    return _named(
        asymmetric_binary_loss, f"asymmetric_binary({_name(loss)})", asymmetric_binary.__doc__ or ""
    )


# ----------------------------------------------------------------------------------------------
# Residual transforms: which errors dominate


def relative(loss: Loss, *, eps: Any = 1e-8) -> Loss:
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
    _check_loss("relative", "loss", loss)
    _check_scalar("relative", "eps", eps, "> 0")

    def relative_loss(predictions: Any, targets: Any, **kwargs: Any) -> jax.Array:
        p, t = _checks.prepare_pair("relative", predictions, targets)
        s = jax.lax.stop_gradient(jnp.abs(t) + eps)
        return loss(p / s, t / s, **kwargs)

    return _named(relative_loss, f"relative({_name(loss)})", relative.__doc__ or "")


def log_space(loss: Loss, *, offset: Any = 1.0, eps: Any = 1e-7) -> Loss:
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
    _check_loss("log_space", "loss", loss)
    _check_scalar("log_space", "offset", offset, ">= 0")
    _check_scalar("log_space", "eps", eps, "> 0")

    def log_space_loss(predictions: Any, targets: Any, **kwargs: Any) -> jax.Array:
        p, t = _checks.prepare_pair("log_space", predictions, targets)
        return loss(
            jnp.log(jnp.maximum(p + offset, eps)), jnp.log(jnp.maximum(t + offset, eps)), **kwargs
        )

    return _named(log_space_loss, f"log_space({_name(loss)})", log_space.__doc__ or "")


def rescaled(loss: Loss, scale: Any) -> Loss:
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
      >>> h = jaxloss.rescaled(jaxloss.huber, 0.1)
      >>> h(jnp.array([0.05, 1.0]), jnp.zeros(2)).tolist()
      [0.125, 9.5]
    """
    _check_loss("rescaled", "loss", loss)
    _check_scalar("rescaled", "scale", scale, "> 0")

    def rescaled_loss(predictions: Any, targets: Any, **kwargs: Any) -> jax.Array:
        p, t = _checks.prepare_pair("rescaled", predictions, targets)
        return loss(p / scale, t / scale, **kwargs)

    return _named(rescaled_loss, f"rescaled({_name(loss)})", rescaled.__doc__ or "")


# ----------------------------------------------------------------------------------------------
# Structure


def masked(loss: Loss, mask_fn: Callable[[Any, Any], Any] | None = None) -> Loss:
    """Zeros the loss where a mask is False, with finite gradients there.

    The mask is ``mask_fn(predictions, targets)`` (broadcastable to the loss's output), by default
    "the target is finite" (so NaN marks a missing target). Masked targets are replaced by 0
    before the loss sees them, so NaN or inf there reaches neither the value nor the gradient.
    Masked elements still count in a plain mean; to leave them out, reduce with the same mask:
    ``jaxloss.mean(values, where=mask)`` (:func:`multitask_loss` takes ``where`` per task).

    Gradient: dl where the mask is True, 0 elsewhere.

    Args:
      loss: the loss to mask, any callable ``loss(predictions, targets, **hyperparameters)``.
      mask_fn: optional ``mask_fn(predictions, targets) -> bool array`` broadcastable to the
        loss's output (or the targets' shape, for a per-class target with a per-example loss:
        an example is kept where all its entries are); default None: ``isfinite(targets)``.

    Returns:
      A loss ``masked_loss(predictions, targets, **hyperparameters)`` returning ``loss``'s
      values where the mask is True and 0 elsewhere: the shape of ``loss``'s output.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> se = jaxloss.masked(jaxloss.squared_error)
      >>> se(jnp.array([1.0, 2.0]), jnp.array([0.0, jnp.nan])).tolist()
      [1.0, 0.0]
    """
    _check_loss("masked", "loss", loss)

    def masked_loss(predictions: Any, targets: Any, **kwargs: Any) -> jax.Array:
        t = _checks.check_real("masked", "targets", targets)
        if mask_fn is None:
            finite = (
                jnp.isfinite(t)
                if jnp.issubdtype(t.dtype, jnp.floating)
                else jnp.ones(t.shape, bool)
            )
            in_mask = finite
        else:
            in_mask = _checks.as_array("masked", "mask_fn(...)", mask_fn(predictions, t))
        t_safe = (
            jnp.where(jnp.broadcast_to(in_mask, t.shape), t, 0)
            if (np.broadcast_shapes(in_mask.shape, t.shape) == t.shape)
            else t
        )
        values = loss(predictions, t_safe, **kwargs)
        out_mask = in_mask
        if out_mask.shape != values.shape and out_mask.ndim == values.ndim + 1:
            out_mask = jnp.all(out_mask, axis=-1)  # a per-example mask from per-class targets
        _checks.check_broadcastable("masked", "mask", out_mask, values.shape, "the loss output's")
        return jnp.where(out_mask, values, 0)

    return _named(masked_loss, f"masked({_name(loss)})", masked.__doc__ or "")


def bounded(loss: Loss, bound: Any, *, smooth: bool = False) -> Loss:
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
    _check_loss("bounded", "loss", loss)
    _check_scalar("bounded", "bound", bound, "> 0")

    def cap(values: jax.Array) -> jax.Array:
        if smooth:
            return bound * jnp.tanh(values / bound)
        return jnp.minimum(values, bound)

    def bounded_loss(predictions: Any, targets: Any, **kwargs: Any) -> jax.Array:
        values = loss(predictions, targets, **kwargs)
        capped = cap(values)
        held = jax.lax.stop_gradient(jnp.abs(capped) == bound if smooth else values >= bound)
        p_in = _hold(held, predictions, values.shape, kwargs.get("axis", -1))
        t_in = _hold(held, targets, values.shape, kwargs.get("axis", -1))
        if p_in is None:
            return capped
        return cap(loss(p_in, targets if t_in is None else t_in, **kwargs))

    return _named(bounded_loss, f"bounded({_name(loss)})", bounded.__doc__ or "")


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


def stop_gradient(loss: Loss, *, argnames: Sequence[str] = ("targets",)) -> Loss:
    """Stops the gradient through the named inputs (``"predictions"``, ``"targets"``).

    E.g. in distillation with a learned teacher, ``stop_gradient(kl_divergence)`` keeps the
    student's loss from moving the teacher.

    Gradient: dl for the other input, 0 for these.

    Args:
      loss: the loss, any callable ``loss(predictions, targets, **hyperparameters)``.
      argnames: keyword-only sequence of ``"predictions"`` and/or ``"targets"`` (not a bare
        string): the inputs to stop (default ``("targets",)``).

    Returns:
      A loss ``stopped_loss(predictions, targets, **hyperparameters)`` with the values of
      ``loss`` (same shape and dtype) and no gradient through the named inputs.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxloss
      >>> se = jaxloss.stop_gradient(jaxloss.squared_error)
      >>> gp, gt = jax.grad(lambda p, t: se(p, t).sum(), argnums=(0, 1))(jnp.array([3.0]),
      ...                                                                 jnp.array([1.0]))
      >>> gp.tolist(), gt.tolist()
      ([4.0], [0.0])
    """
    _check_loss("stop_gradient", "loss", loss)
    names = tuple(argnames)
    bad = [n for n in names if n not in ("predictions", "targets")]
    if bad or isinstance(argnames, str):
        raise ValueError(
            "jaxloss.stop_gradient: `argnames` must be a sequence of 'predictions' and/or "
            f"'targets'; got {argnames!r}."
        )

    def stopped_loss(predictions: Any, targets: Any, **kwargs: Any) -> jax.Array:
        if "predictions" in names:
            predictions = jax.lax.stop_gradient(predictions)
        if "targets" in names:
            targets = jax.lax.stop_gradient(targets)
        return loss(predictions, targets, **kwargs)

    return _named(stopped_loss, f"stop_gradient({_name(loss)})", stop_gradient.__doc__ or "")


def detached(loss: Loss) -> Loss:
    """The loss's value with no gradient at all: a term to log or monitor inside a sum.

    l'(p, t) = stop_gradient(l(p, t)).

    Gradient: 0 with respect to every input.

    Args:
      loss: the loss, any callable ``loss(predictions, targets, **hyperparameters)``.

    Returns:
      A loss ``detached_loss(predictions, targets, **hyperparameters)`` with the values of
      ``loss`` (same shape and dtype) and a zero gradient.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxloss
      >>> se = jaxloss.detached(jaxloss.squared_error)
      >>> se(jnp.array([3.0]), jnp.array([1.0])).tolist()
      [4.0]
      >>> jax.grad(lambda p: se(p, jnp.array([1.0])).sum())(jnp.array([3.0])).tolist()
      [0.0]
    """
    _check_loss("detached", "loss", loss)

    def detached_loss(predictions: Any, targets: Any, **kwargs: Any) -> jax.Array:
        return jax.lax.stop_gradient(loss(predictions, targets, **kwargs))

    return _named(detached_loss, f"detached({_name(loss)})", detached.__doc__ or "")


def linear_combination(losses: Sequence[Loss], coefficients: Sequence[Any]) -> Loss:
    """A linear combination of losses on the same inputs: l' = sum_k c_k l_k(p, t).

    Bind each loss's hyperparameters first (``functools.partial(jaxloss.huber, delta=0.5)``); the
    combined loss takes no hyperparameters of its own. All losses must give outputs of the same
    shape.

    Gradient: sum_k c_k dl_k.

    Args:
      losses: non-empty sequence of losses ``loss(predictions, targets)`` (hyperparameters
        already bound), all giving outputs of one shape.
      coefficients: one real coefficient per loss (same length as ``losses``).

    Returns:
      A loss ``combined_loss(predictions, targets)`` (no hyperparameters) returning
      sum_k c_k l_k(predictions, targets): the losses' common output shape.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> l = jaxloss.linear_combination([jaxloss.squared_error, jaxloss.absolute_error],
      ...                                [1.0, 0.5])
      >>> l(jnp.array([2.0]), jnp.array([0.0])).tolist()
      [5.0]
    """
    losses = list(losses)
    coefficients = list(coefficients)
    if not losses:
        raise ValueError("jaxloss.linear_combination: `losses` must not be empty.")
    if len(losses) != len(coefficients):
        raise ValueError(
            "jaxloss.linear_combination: `losses` and `coefficients` must have the same length; "
            f"got {len(losses)} and {len(coefficients)}."
        )
    for i, loss in enumerate(losses):
        _check_loss("linear_combination", f"losses[{i}]", loss)

    def combined_loss(predictions: Any, targets: Any) -> jax.Array:
        values = [
            c * loss(predictions, targets) for c, loss in zip(coefficients, losses, strict=True)
        ]
        shapes = {v.shape for v in values}
        if len(shapes) != 1:
            raise ValueError(
                "jaxloss.linear_combination: the losses' outputs must have one shape; got "
                f"{[tuple(v.shape) for v in values]}."
            )
        total = values[0]
        for v in values[1:]:
            total = total + v
        return total

    name = " + ".join(f"{c}*{_name(l)}" for c, l in zip(coefficients, losses, strict=True))
    return _named(combined_loss, f"linear_combination({name})", linear_combination.__doc__ or "")


def sum_losses(*losses: Loss) -> Loss:
    """The sum of losses on the same inputs: ``linear_combination(losses, [1, ..., 1])``.

    l' = sum_k l_k(p, t).

    Gradient: sum_k dl_k.

    Args:
      *losses: one or more losses ``loss(predictions, targets)`` (hyperparameters already
        bound, e.g. with ``functools.partial``), all giving outputs of one shape.

    Returns:
      A loss ``combined_loss(predictions, targets)`` (no hyperparameters) returning
      sum_k l_k(predictions, targets): the losses' common output shape.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> l = jaxloss.sum_losses(jaxloss.squared_error, jaxloss.absolute_error)
      >>> l(jnp.array([2.0]), jnp.array([0.0])).tolist()
      [6.0]
    """
    return linear_combination(losses, [1.0] * len(losses))


# ----------------------------------------------------------------------------------------------
# Multi-task


def multitask_loss(
    losses: Mapping[str, Loss],
    weights: Mapping[str, Any] | Callable[[Any], Mapping[str, Any]] | None = None,
) -> Callable[..., tuple[jax.Array, dict[str, Any]]]:
    """An objective over named tasks: the weighted sum of each task's mean loss.

    Returns ``objective(predictions, targets, *, step=None, weights=None, where=None,
    sample_weights=None) -> (total, aux)`` where ``predictions`` and ``targets`` map task names to
    that task's arrays,

        total = sum_i w_i · mean_i,
        mean_i = jaxloss.mean(l_i(p_i, t_i), weights=sample_weights[i], where=where[i]),

    and ``aux = {"losses": {task: mean_i}, "weights": {task: w_i}}`` for logging: use it with
    ``jax.value_and_grad(objective, has_aux=True)``. Weights are fixed (a mapping), a function of
    the training step (``weights(step) -> mapping``, e.g. a warm-up), or given per call
    (``weights=`` at call time overrides, for learned or stateful schemes from
    :mod:`jaxloss.multitask`). Default: 1 for every task.

    Gradient: sum_i w_i · d mean_i (the weights are constants for the gradient).

    Args:
      losses: non-empty mapping task name -> loss ``loss(predictions, targets)`` (hyperparameters
        already bound).
      weights: the task weights: a mapping task -> weight with every task as a key, a function
        ``weights(step) -> mapping`` (then ``step=`` is required at call time), or None (default:
        1 for every task).

    Returns:
      The objective ``objective(predictions, targets, *, step=None, weights=None, where=None,
      sample_weights=None) -> (total, aux)``: ``predictions`` and ``targets`` map every task to
      its arrays, ``where`` and ``sample_weights`` optionally map some tasks to a mask / sample
      weights for that task's mean; ``total`` is a scalar array and ``aux`` the dict above.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> obj = jaxloss.multitask_loss({"depth": jaxloss.absolute_error,
      ...                          "seg": jaxloss.softmax_cross_entropy_with_integer_labels},
      ...                         weights={"depth": 1.0, "seg": 0.5})
      >>> total, aux = obj({"depth": jnp.ones(3), "seg": jnp.zeros((3, 4))},
      ...                  {"depth": jnp.zeros(3), "seg": jnp.array([0, 1, 2])})
      >>> round(float(total), 4), sorted(aux["losses"])
      (1.6931, ['depth', 'seg'])
    """
    if not isinstance(losses, Mapping) or not losses:
        raise ValueError(
            "jaxloss.multitask_loss: `losses` must be a non-empty mapping task -> loss."
        )
    for name, loss in losses.items():
        _check_loss("multitask_loss", f"losses[{name!r}]", loss)
    tasks = tuple(losses)

    def _check_keys(arg: str, mapping: Any, required: bool) -> None:
        if mapping is None:
            if required:
                raise ValueError(f"jaxloss.multitask_loss: `{arg}` is required.")
            return
        if not isinstance(mapping, Mapping):
            raise TypeError(
                f"jaxloss.multitask_loss: `{arg}` must be a mapping task -> value; "
                f"got {type(mapping).__name__}."
            )
        keys = set(mapping)
        missing = sorted(set(tasks) - keys) if required else []
        extra = sorted(keys - set(tasks))
        if missing or extra:
            raise ValueError(
                f"jaxloss.multitask_loss: `{arg}` must have the tasks {sorted(tasks)} as keys; "
                f"missing {missing}, unknown {extra}."
            )

    fixed_weights = weights
    if isinstance(weights, Mapping):
        _check_keys("weights", weights, True)
    elif weights is not None and not callable(weights):
        raise TypeError(
            "jaxloss.multitask_loss: `weights` must be a mapping task -> weight, a function of the "
            f"step, or None; got {type(weights).__name__}."
        )

    def objective(
        predictions: Mapping[str, Any],
        targets: Mapping[str, Any],
        *,
        step: Any = None,
        weights: Mapping[str, Any] | None = None,
        where: Mapping[str, Any] | None = None,
        sample_weights: Mapping[str, Any] | None = None,
    ) -> tuple[jax.Array, dict[str, Any]]:
        _check_keys("predictions", predictions, True)
        _check_keys("targets", targets, True)
        _check_keys("where", where, False)
        _check_keys("sample_weights", sample_weights, False)
        if weights is None:
            if callable(fixed_weights):
                if step is None:
                    raise ValueError(
                        "jaxloss.multitask_loss: the weights are a function of the step; "
                        "pass `step=`."
                    )
                weights = fixed_weights(step)
            else:
                weights = fixed_weights
        if weights is None:
            weights = dict.fromkeys(tasks, 1.0)
        _check_keys("weights", weights, True)
        means = {}
        for name in tasks:
            values = losses[name](predictions[name], targets[name])
            means[name] = mean(
                values,
                weights=None if sample_weights is None else sample_weights.get(name),
                where=None if where is None else where.get(name),
            )
        ws = {
            name: jax.lax.stop_gradient(jnp.asarray(weights[name], means[name].dtype))
            for name in tasks
        }
        total = jnp.zeros((), jnp.result_type(*means.values()))
        for name in tasks:
            total = total + ws[name] * means[name]
        return total, {"losses": means, "weights": ws}

    objective.__name__ = objective.__qualname__ = f"multitask_loss({', '.join(tasks)})"
    return objective
