"""Combinators that weigh a loss: how much each element or example counts.

Each takes a loss (any callable ``loss(predictions, targets, **hyperparameters)`` returning
per-element or per-example values) and returns a loss with the same signature, whose extra
keyword arguments are passed through; they nest with every other combinator and never reduce
over the batch. The result has the shape of the wrapped loss's output, in its dtype.
:func:`scaled` multiplies by a constant, :func:`weighted` by per-element weights,
:func:`class_weighted` by the weight of each example's class (:func:`class_weights_from_counts`
makes such weights), :func:`asymmetric_binary` by the side of a binary label, and
:func:`masked` zeros elements (missing targets) with finite gradients there. Weights are
constants for the gradient unless stated; concrete weights are checked (finite, >= 0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ._core import checks as _checks
from ._core.checks import NONNEGATIVE, UNIT_HALF_OPEN
from ._core.combine import Loss, check_loss, loss_name, named

__all__ = [
    "asymmetric_binary",
    "class_weighted",
    "class_weights_from_counts",
    "masked",
    "scaled",
    "weighted",
]


def scaled(loss: Loss, factor: ArrayLike) -> Loss:
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
    check_loss("scaled", "loss", loss)
    _checks.require("scaled", "factor", factor, NONNEGATIVE)

    def scaled_loss(predictions: ArrayLike, targets: ArrayLike, **kwargs: Any) -> jax.Array:
        return jnp.multiply(factor, loss(predictions, targets, **kwargs))

    return named(scaled_loss, f"scaled({loss_name(loss)})", scaled.__doc__ or "")


#: An array broadcastable to the loss's output, or a function ``(predictions, targets) -> array``.
WeightSpec = ArrayLike | Callable[[ArrayLike, ArrayLike], ArrayLike]


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
    check_loss("weighted", "loss", loss)

    def weighted_loss(predictions: ArrayLike, targets: ArrayLike, **kwargs: Any) -> jax.Array:
        values = loss(predictions, targets, **kwargs)
        w = weights(predictions, targets) if callable(weights) else weights
        w = _checks.check_real("weighted", "weights", w)
        _checks.check_broadcastable("weighted", "weights", w, values.shape, "the loss output's")
        if not differentiate_weights:
            w = jax.lax.stop_gradient(w)
        return w.astype(values.dtype) * values

    return named(weighted_loss, f"weighted({loss_name(loss)})", weighted.__doc__ or "")


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


def class_weighted(loss: Loss, class_weights: ArrayLike) -> Loss:
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
    check_loss("class_weighted", "loss", loss)
    cw = _checks.check_real("class_weighted", "class_weights", class_weights)
    if cw.ndim != 1:
        raise ValueError(
            f"jaxloss.class_weighted: `class_weights` must be 1-d (one weight per class); got "
            f"shape {tuple(cw.shape)}."
        )
    _checks.check_values("class_weighted", "class_weights", class_weights, ">= 0")

    def class_weighted_loss(predictions: ArrayLike, targets: ArrayLike, **kwargs: Any) -> jax.Array:
        labels = _checks.check_real("class_weighted", "labels", targets)
        if jnp.issubdtype(labels.dtype, jnp.integer):
            _check_num_classes(cw.shape[0], predictions, labels, kwargs.get("axis", -1))
        values = loss(predictions, targets, **kwargs)
        w = _label_weights("class_weighted", labels, cw.astype(values.dtype))
        _checks.check_broadcastable(
            "class_weighted", "labels", w, values.shape, "the loss output's"
        )
        return w * values

    return named(
        class_weighted_loss, f"class_weighted({loss_name(loss)})", class_weighted.__doc__ or ""
    )


def _check_num_classes(
    num_weights: int, predictions: ArrayLike, labels: jax.Array, axis: Any
) -> None:
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
    counts: ArrayLike, *, method: str = "inverse", beta: float = 0.999
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
    _checks.require(fn, "beta", beta, UNIT_HALF_OPEN)
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


def asymmetric_binary(loss: Loss, *, positive: ArrayLike = 1.0, negative: ArrayLike = 1.0) -> Loss:
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
    check_loss("asymmetric_binary", "loss", loss)
    _checks.require("asymmetric_binary", "positive", positive, NONNEGATIVE)
    _checks.require("asymmetric_binary", "negative", negative, NONNEGATIVE)

    def asymmetric_binary_loss(logits: ArrayLike, labels: ArrayLike, **kwargs: Any) -> jax.Array:
        values = loss(logits, labels, **kwargs)
        t = _checks.check_real("asymmetric_binary", "labels", labels).astype(values.dtype)
        return jnp.asarray((negative * (1 - t) + positive * t) * values)

    return named(
        asymmetric_binary_loss,
        f"asymmetric_binary({loss_name(loss)})",
        asymmetric_binary.__doc__ or "",
    )


def masked(loss: Loss, mask_fn: Callable[[ArrayLike, jax.Array], ArrayLike] | None = None) -> Loss:
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
    check_loss("masked", "loss", loss)

    def masked_loss(predictions: ArrayLike, targets: ArrayLike, **kwargs: Any) -> jax.Array:
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

    return named(masked_loss, f"masked({loss_name(loss)})", masked.__doc__ or "")
