"""Integer labels, class weights, class masks and the class axis: the preparation every family
with a class axis shares (classification, focal, imbalance, margin, divergences, fused).

Conventions (one place for all of them):

* The class axis ``axis`` is an int in [-ndim, ndim) of the scores (``logits``,
  ``log_probabilities``, ...); integer labels have the scores' shape without it.
* Labels are class indices in [0, C). Concrete (eager) labels out of range, other than
  ``ignore_index``, raise a ValueError naming them; traced ones give a NaN value instead
  (:func:`finish_integer_loss`), never a silently wrong number.
* ``ignore_index`` (an int or None) marks examples that give 0 and are not counted by a
  reduction.
* ``where`` is a boolean *class* mask with the scores' ndim, broadcastable to them; a label must
  point at a class it counts.
* A per-class vector (class weights, priors, counts, α) has shape (C,) and is checked, when
  concrete, against an :class:`~jaxloss._core.checks.Interval` (finite and >= 0 for weights).
* Binary targets of the margin losses ({-1, +1} or {0, 1}): concrete ones outside the set raise;
  traced ones come with a validity mask that the loss turns into NaN (:func:`binary_targets`).
* ``reduction="mean"`` of integer-label losses is PyTorch's weighted mean over kept examples
  (:func:`reduce_integer`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from . import checks as _checks
from . import reduce as _reduce
from .checks import Interval
from .dispatch import input_leaf, replayable

__all__ = [
    "bcast",
    "binary_targets",
    "check_ignore_index",
    "check_label_counted",
    "check_label_range",
    "check_labels",
    "check_unit_labels",
    "class_mask",
    "class_vector",
    "class_weights_vector",
    "effective_number_weights",
    "finish_integer_loss",
    "mark_invalid_labels",
    "normalise_axis",
    "prepare_integer",
    "reduce_integer",
]


def bcast(w: jax.Array, ndim: int, axis: int) -> jax.Array:
    """A [C] vector reshaped to broadcast along ``axis`` of an ``ndim``-d array."""
    shape = [1] * ndim
    shape[axis] = w.shape[0]
    return w.reshape(shape)


def normalise_axis(fn: str, axis: int, ndim: int, arg: str = "logits") -> int:
    """``axis`` in [0, ndim); ``arg`` names the input whose class axis it is."""
    if ndim == 0:
        raise ValueError(
            f"jaxloss.{fn}: `{arg}` must have a class axis (at least 1 dimension); got a 0-d "
            "array (a scalar)."
        )
    if not isinstance(axis, int) or not -ndim <= axis < ndim:
        raise ValueError(
            f"jaxloss.{fn}: `axis` must be an int in [-{ndim}, {ndim}) for {ndim}-d {arg}; "
            f"got {axis!r}."
        )
    return axis % ndim


def class_mask(fn: str, where: ArrayLike | None, logits: jax.Array) -> jax.Array | None:
    """The boolean class mask ``where`` broadcast to the scores' shape (None stays None)."""
    if where is None:
        return None
    where = _checks.as_array(fn, "where", where)
    if where.dtype != jnp.bool_:
        raise TypeError(f"jaxloss.{fn}: `where` must be a boolean mask; got {where.dtype}.")
    if where.ndim != logits.ndim:
        raise ValueError(
            f"jaxloss.{fn}: `where` masks logits entries and must have logits.ndim="
            f"{logits.ndim} dims (broadcastable to {tuple(logits.shape)}); got where.shape="
            f"{tuple(where.shape)}. To mask whole examples, pass `where[..., None]` here or "
            "mask in the reduction: jaxloss.mean(values, where=...)."
        )
    _checks.check_broadcastable(fn, "where", where, logits.shape, "the logits'")
    return jnp.broadcast_to(where, logits.shape)


def class_vector(
    fn: str,
    arg: str,
    value: Any,
    num_classes: int,
    dtype: Any,
    condition: Interval = _checks.NONNEGATIVE,
) -> jax.Array:
    """A [C] real vector (class weights, priors, counts, α) in ``dtype``; concrete entries are
    checked against ``condition`` (finite and >= 0 by default). ``arg`` names it in messages."""
    v = _checks.check_real(fn, arg, value)
    if v.shape != (num_classes,):
        raise ValueError(
            f"jaxloss.{fn}: `{arg}` must have shape (num_classes,) = ({num_classes},); "
            f"got {tuple(v.shape)}."
        )
    _checks.require_elements(fn, arg, value, condition)
    return v.astype(dtype)


def class_weights_vector(
    fn: str, class_weights: ArrayLike | None, num_classes: int, dtype: Any
) -> jax.Array | None:
    """The optional [C] ``class_weights`` (finite, >= 0 when concrete); None stays None."""
    if class_weights is None:
        return None
    return class_vector(fn, "class_weights", class_weights, num_classes, dtype)


def check_ignore_index(fn: str, ignore_index: Any, *, allow_bool: bool = True) -> None:
    """TypeError unless ``ignore_index`` is an int or None (``allow_bool=False``: not a bool)."""
    if ignore_index is not None and (
        not isinstance(ignore_index, (int, np.integer))
        or (not allow_bool and isinstance(ignore_index, bool))
    ):
        raise TypeError(
            f"jaxloss.{fn}: `ignore_index` must be an int or None; got {ignore_index!r}."
        )


def _labels_in_range_ok(
    fn: str, labels: Any, num_classes: int, ignore_index: Any, *, what: str = ""
) -> jax.Array | None:
    """:func:`require_labels_in_range`'s test in JAX, run inside the cached program (True only
    when the check passes; None: the check runs on the host)."""
    if not _checks.traced_real(labels) or not _checks.representable(num_classes, labels.dtype):
        return None
    ok = (labels >= 0) & (labels < jnp.asarray(num_classes, labels.dtype))
    if ignore_index is not None:
        if not _checks.representable(ignore_index, labels.dtype):
            return None
        ok = ok | (labels == jnp.asarray(ignore_index, labels.dtype))
    return ok


@replayable(predicate=_labels_in_range_ok)
def require_labels_in_range(
    fn: str, labels: ArrayLike, num_classes: int, ignore_index: Any, *, what: str = ""
) -> None:
    """ValueError when concrete labels fall outside [0, C) (``ignore_index`` excepted); traced
    labels pass (the loss is NaN there instead). Replayed on the concrete labels of an eager call
    (``_core/dispatch.py``)."""
    check_label_range(fn, labels, num_classes, ignore_index, what=what)


def check_label_range(
    fn: str, labels: ArrayLike, num_classes: int, ignore_index: Any, *, what: str = ""
) -> np.ndarray | None:
    """ValueError when concrete labels fall outside [0, C) (``ignore_index`` excepted).

    Returns the concrete labels, or None when they are traced (the loss is NaN there instead).
    ``what`` follows the interval in the message (e.g. where C comes from).
    """
    concrete = _checks.concrete_array(labels)
    if concrete is None:  # traced: the values are NaN there instead
        return None
    bad = (concrete < 0) | (concrete >= num_classes)
    if ignore_index is not None:
        bad &= concrete != ignore_index
    if bad.any():
        raise ValueError(
            f"jaxloss.{fn}: `labels` must be class indices in [0, {num_classes}){what}"
            + (f" or ignore_index={ignore_index}" if ignore_index is not None else "")
            + f"; got {concrete[bad].ravel()[:5].tolist()}."
        )
    return concrete


def check_labels(
    fn: str,
    labels: ArrayLike,
    logits: jax.Array | jax.ShapeDtypeStruct,
    axis: int,
    num_classes: int,
    ignore_index: Any,
    *,
    hint: str = "",
) -> jax.Array:
    """Integer labels of the scores' shape without ``axis``, range-checked when concrete
    (``logits``: the scores, or only their shape as a ``jax.ShapeDtypeStruct``)."""
    labels = _checks.check_integer(fn, "labels", labels, hint=hint)
    expected = tuple(s for i, s in enumerate(logits.shape) if i != axis)
    if tuple(labels.shape) != expected:
        raise ValueError(
            f"jaxloss.{fn}: `labels` must have the logits' shape without the class axis, "
            f"{expected}; got labels.shape={tuple(labels.shape)} for logits.shape="
            f"{tuple(logits.shape)} and axis={axis}."
        )
    check_ignore_index(fn, ignore_index)
    require_labels_in_range(fn, labels, num_classes, ignore_index)
    # Narrow integer labels are widened: uint8/int8/int16 can hold neither C nor ignore_index
    # (-100 is 156 in uint8), so comparisons with them and class iotas would wrap.
    if jnp.iinfo(labels.dtype).bits < 32:
        labels = labels.astype(jnp.int32)
    return labels


def prepare_integer(
    fn: str,
    logits: ArrayLike,
    labels: ArrayLike,
    axis: int,
    ignore_index: Any,
    where: ArrayLike | None,
    arg: str = "logits",
    *,
    label_hint: str = "",
) -> tuple[jax.Array, jax.Array, int, int, jax.Array | None, Any]:
    """Validated integer-label inputs: (scores in the compute dtype, labels, axis, C, class
    mask, dtype).

    ``arg`` names the scores argument in messages (``log_probabilities`` for nll_loss);
    ``label_hint`` is appended to the message for non-integer labels (e.g. the function that
    takes probability targets; empty where there is none)."""
    z = _checks.check_floating(fn, arg, logits)
    axis = normalise_axis(fn, axis, z.ndim, arg)
    num_classes = z.shape[axis]
    y = check_labels(fn, labels, z, axis, num_classes, ignore_index, hint=label_hint)
    dtype = _checks.compute_dtype(z)
    z = z.astype(dtype)
    mask = class_mask(fn, where, z)
    return z, y, axis, num_classes, mask, dtype


def check_label_counted(
    fn: str, labels: jax.Array, mask: jax.Array, axis: int, ignore_index: Any
) -> None:
    """ValueError when concrete labels point at a class that ``where`` masks out."""
    y, m = _checks.concrete_array(labels), _checks.concrete_array(mask)
    if y is None or m is None:
        return  # traced: the loss is NaN there instead
    m = np.moveaxis(m, axis, -1)
    ok = (y >= 0) & (y < m.shape[-1])
    picked = np.take_along_axis(m, np.where(ok, y, 0)[..., None], -1)[..., 0]
    bad = ok & ~picked
    if ignore_index is not None:
        bad &= y != ignore_index
    if bad.any():
        raise ValueError(
            f"jaxloss.{fn}: `labels` must point at classes that `where` counts; labels "
            f"{y[bad].ravel()[:5].tolist()} are masked out for their examples."
        )


def finish_integer_loss(
    loss: jax.Array,
    labels: jax.Array,
    num_classes: int,
    ignore_index: Any,
    label_counted: jax.Array | bool,
) -> jax.Array:
    """Zeros ignored examples; NaN marks labels out of range or masked out (traced inputs), in
    the value and in that example's gradient (:func:`mark_invalid_labels`)."""
    valid = (labels >= 0) & (labels < num_classes) & label_counted
    ignored = None if ignore_index is None else labels == ignore_index
    return mark_invalid_labels(loss, valid, ignored)


def mark_invalid_labels(
    loss: jax.Array, valid: jax.Array, ignored: jax.Array | None
) -> jax.Array:
    """``loss`` with 0 where ``ignored`` and NaN where a label is neither ``valid`` nor ignored.

    The NaN multiplies the loss instead of replacing it: a select would route the example a
    zero gradient, and a step would then silently train on the other examples of a batch whose
    loss is NaN. An ignored example keeps the factor 1, so that the select that zeros it does
    not meet NaN·0 in its backward pass. Shared by the integer-label losses and the fused heads.
    """
    if ignored is None:
        return loss * jnp.where(valid, 1, jnp.nan).astype(loss.dtype)
    loss = loss * jnp.where(valid | ignored, 1, jnp.nan).astype(loss.dtype)
    return jnp.where(ignored, 0, loss)


def reduce_integer(
    loss: jax.Array,
    reduction: str,
    labels: jax.Array,
    w: jax.Array | None,
    num_classes: int,
    ignore_index: Any,
) -> jax.Array:
    """PyTorch's reduction of integer-label values: the sum over kept examples (label not
    ``ignore_index``), divided ('mean') by the sum of w[label] over them (their count without
    class weights); 0 with a zero gradient when that is 0. ``loss`` is per example, already
    weighted."""
    if reduction == "none":
        return loss
    kept = None if ignore_index is None else labels != ignore_index
    w_y = None if w is None else jnp.take(w, jnp.clip(labels, 0, num_classes - 1))
    return _reduce.reduce_loss(loss, reduction, denominators=w_y, where=kept)


def check_unit_labels(fn: str, arg: str, value: Any) -> None:
    """ValueError when concrete binary labels have a (non-NaN) value outside [0, 1]; traced
    labels are used as given."""
    _checks.check_values(
        fn,
        arg,
        value,
        "in [0, 1]",
        allow_nan=True,
        hint="(Hard or soft labels; ±1 targets map with (y + 1) / 2.)",
    )


def effective_number_weights(
    fn: str, samples_per_class: ArrayLike, beta: Any, num_classes: int, dtype: Any
) -> jax.Array:
    """Class-balanced weights (Cui et al., CVPR 2019) from training-set counts: the public
    ``jaxloss.class_weights_from_counts(n, method="effective_number", beta=β)`` after checking
    β in [0, 1) and the counts ([C], finite, >= 0, one of them > 0) under ``fn``'s name."""
    from .._weighting import class_weights_from_counts  # public; imported late (no cycle)

    _checks.require(fn, "beta", beta, _checks.UNIT_HALF_OPEN)
    n = class_vector(fn, "samples_per_class", samples_per_class, num_classes, dtype)
    raw = _checks.concrete_array(samples_per_class)
    if raw is not None and float(np.max(raw)) <= 0:
        raise ValueError(
            f"jaxloss.{fn}: `samples_per_class` must have a positive count; got all 0."
        )
    return class_weights_from_counts(n, method="effective_number", beta=beta)


def _binary_values_ok(fn: str, arg: str, t: Any, allowed: tuple[int, int]) -> jax.Array | None:
    """:func:`require_binary_values`'s test in JAX, run inside the cached program."""
    if not _checks.traced_real(t) or not all(_checks.representable(v, t.dtype) for v in allowed):
        return None
    lo, hi = (jnp.asarray(v, t.dtype) for v in allowed)
    return (t == lo) | (t == hi)


@replayable(predicate=_binary_values_ok)
def require_binary_values(fn: str, arg: str, t: Any, allowed: tuple[int, int]) -> None:
    """ValueError naming the argument when concrete targets hold values outside ``allowed``;
    traced targets pass (the loss marks them NaN). Replayed on the concrete targets of an eager
    call (``_core/dispatch.py``)."""
    concrete = _checks.concrete_array(t)
    if concrete is None:
        return
    lo, hi = allowed
    bad = (concrete != lo) & (concrete != hi)
    if bad.any():
        hint = (
            " For {0, 1} labels pass `2 * labels - 1`."
            if allowed == (-1, 1)
            else " For {-1, +1} labels pass `(labels + 1) // 2`."
        )
        raise ValueError(
            f"jaxloss.{fn}: `{arg}` must hold only {lo} and {hi}; got "
            f"{np.unique(concrete[bad]).ravel()[:5].tolist()}.{hint}"
        )


def binary_targets(
    fn: str, arg: str, t: jax.Array, allowed: tuple[int, int], dtype: Any
) -> tuple[jax.Array, jax.Array | None]:
    """Targets cast to ``dtype`` and, when they are traced, a mask of valid entries (False
    for NaN).

    Concrete targets outside ``allowed`` raise a ValueError naming the argument.
    """
    require_binary_values(fn, arg, t, allowed)
    if not isinstance(t, jax.core.Tracer) or input_leaf(t) is not None:
        # Concrete, or an input of an eager call traced for the cache (``_core/dispatch.py``),
        # where the check above runs on every call's values: no mask needed.
        return t.astype(dtype), None
    lo, hi = allowed
    cast = t.astype(dtype)
    return cast, (cast == lo) | (cast == hi)


def _label_values_ok(
    fn: str,
    arg: str,
    labels: Any,
    allowed: tuple[float, float],
    ignore_index: Any = None,
    *,
    spelled: str = "",
    hint: str = "",
) -> jax.Array | None:
    """:func:`require_label_values`'s test in JAX, run inside the cached program."""
    exact = [*allowed, *([] if ignore_index is None else [ignore_index])]
    if not _checks.traced_real(labels) or not all(
        _checks.representable(v, labels.dtype) for v in exact
    ):
        return None
    floating = jnp.issubdtype(labels.dtype, jnp.floating)
    ok = jnp.isnan(labels) if floating else jnp.zeros(labels.shape, bool)
    for v in exact:
        ok = ok | (labels == jnp.asarray(v, labels.dtype))
    return ok


@replayable(predicate=_label_values_ok)
def require_label_values(
    fn: str,
    arg: str,
    labels: Any,
    allowed: tuple[float, float],
    ignore_index: Any = None,
    *,
    spelled: str = "",
    hint: str = "",
) -> None:
    """ValueError naming the argument when concrete labels hold a value other than the two in
    ``allowed`` (NaN and ``ignore_index`` excepted: a NaN label gives a NaN loss); traced labels
    pass (the loss marks them NaN). ``spelled`` writes the allowed values in the message
    (default "a or b"), ``hint`` follows it. Replayed on the concrete labels of an eager call
    (``_core/dispatch.py``)."""
    concrete = _checks.concrete_array(labels)
    if concrete is None or not concrete.size:
        return
    with np.errstate(invalid="ignore"):
        bad = ~np.isin(concrete, allowed) & ~np.isnan(concrete.astype(np.float64))
    if ignore_index is not None:
        bad &= concrete != ignore_index
    if bad.any():
        lo, hi = allowed
        raise ValueError(
            f"jaxloss.{fn}: `{arg}` must be {spelled or f'{lo} or {hi}'}"
            + (f" or ignore_index={ignore_index}" if ignore_index is not None else "")
            + f"; got {concrete[bad].ravel()[:5].tolist()}.{hint}"
        )
