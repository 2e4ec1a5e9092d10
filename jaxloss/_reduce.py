"""Reductions: one rule for every weighted or masked mean.

    mean(values, weights, where) = sum(w * v over counted elements) / sum(w over counted elements)

An element is *counted* where ``where`` is True (everywhere when ``where`` is None); ``weights``
default to 1. When nothing is counted (or the counted weights sum to 0) the mean is 0 with a zero,
finite gradient: never NaN. Concrete weights must be finite and >= 0 (a ValueError otherwise);
traced ones are used as given.

Overflow. :func:`mean` scales every term by 2^-k, k = ceil(log2(reduced elements)) + 1, inside
the same fused reduction (one multiply per element, no extra pass): the scaled sum is then
at most max|w·v| and cannot overflow, so the mean of float32 [3e38, 3e38] is 3e38, not inf.
Scaling by a power of two is exact, so the result is bit-for-bit the unscaled
``sum(w·v) / sum(w)`` wherever that does not overflow, except for terms below 2^k times the
smallest normal float (~1.2e-38·2^k), which XLA:CPU flushes to zero: a mean of values that are
*all* below ~4e-31 (at 2^24 elements) comes out 0. (The alternatives measured worse: a max-rescale
costs a second pass over the values; an overflow-triggered second pass under ``lax.cond``
materialises the values as a full-size temporary.) :func:`sum` and the parts of
:func:`mean_parts` are plain sums (they add across batches and devices); they overflow only where
the sum itself is beyond range, and a ``WeightedMean`` whose ``weighted_sum`` overflowed gives inf.

The mergeable form :class:`WeightedMean` keeps ``(weighted_sum, total_weight)``; the parts add
across micro-batches (gradient accumulation) and across devices (``jax.lax.psum``), and the merged
parts give exactly the mean of the concatenated batch.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ._core import checks as _checks

__all__ = ["WeightedMean", "mean", "mean_parts", "sum"]

Axis = int | tuple[int, ...] | None


def _prepare(
    fn: str, values: Any, weights: Any, where: Any
) -> tuple[jax.Array, jax.Array | None, jax.Array | None]:
    values = _checks.check_floating(fn, "values", values)
    dtype = _checks.compute_dtype(values)
    values = values.astype(dtype)
    if weights is not None:
        raw = weights
        weights = _checks.check_real(fn, "weights", weights)
        _checks.check_broadcastable(fn, "weights", weights, values.shape, "the values'")
        _checks.check_values(fn, "weights", raw, ">= 0")
        weights = weights.astype(dtype)
    if where is not None:
        where = _checks.as_array(fn, "where", where)
        if where.dtype != jnp.bool_:
            raise TypeError(
                f"jaxloss.{fn}: `where` must be a boolean mask; got {where.dtype}. "
                "Use e.g. `where=labels != ignore_index`."
            )
        _checks.check_broadcastable(fn, "where", where, values.shape, "the values'")
    return values, weights, where


def _weighted_terms(
    values: jax.Array, weights: jax.Array | None, where: jax.Array | None
) -> tuple[jax.Array, jax.Array]:
    """Per-element ``w * v`` and ``w`` with uncounted elements set to 0 (NaN-safe)."""
    w = jnp.ones_like(values) if weights is None else jnp.broadcast_to(weights, values.shape)
    if where is None:
        return w * values, w
    where = jnp.broadcast_to(where, values.shape)
    # Double where: an uncounted NaN/inf value must not leak into the sum or its gradient.
    safe_values = jnp.where(where, values, 0)
    w = jnp.where(where, w, 0)
    return w * safe_values, w


class WeightedMean(NamedTuple):
    """The mergeable form of a mean: ``(weighted_sum, total_weight)``.

    ``a + b`` adds the parts (it is *not* tuple concatenation), so partial results from
    micro-batches or devices combine exactly; ``jax.lax.psum(parts, axis_name)`` works on it as a
    pytree. :meth:`value` gives the mean, 0 when nothing was counted.
    """

    weighted_sum: jax.Array
    total_weight: jax.Array

    def __add__(self, other: object) -> WeightedMean:
        if not isinstance(other, WeightedMean):
            return NotImplemented
        return WeightedMean(
            self.weighted_sum + other.weighted_sum, self.total_weight + other.total_weight
        )

    def __radd__(self, other: object) -> WeightedMean:
        if isinstance(other, int) and other == 0:  # the start value of builtin ``sum``
            return self
        return NotImplemented

    def value(self) -> jax.Array:
        """weighted_sum / total_weight, or 0 (with a zero gradient) when total_weight is 0."""
        counted = self.total_weight != 0
        denom = jnp.where(counted, self.total_weight, 1)
        return jnp.where(counted, self.weighted_sum / denom, 0)


def mean_parts(
    values: Any, weights: Any = None, where: Any = None, *, axis: Axis = None
) -> WeightedMean:
    """The ``(weighted_sum, total_weight)`` parts of :func:`mean`, to merge before dividing.

    weighted_sum = sum(w·v over counted elements), total_weight = sum(w over counted elements);
    parts add across micro-batches and devices, and ``.value()`` divides (0 when nothing was
    counted).

    Gradient: d weighted_sum / d v_i = w_i for counted i, 0 elsewhere.

    Args:
      values: per-example (or per-element) loss values, any shape, floating.
      weights: optional real weights broadcastable to ``values``; concrete ones must be finite
        and >= 0 (default None: 1 for every element).
      where: optional boolean mask broadcastable to ``values``; False elements are not counted
        (default None: every element counts).
      axis: keyword-only axis or tuple of axes to reduce (default None: all).

    Returns:
      A :class:`WeightedMean` ``(weighted_sum, total_weight)``: two arrays of ``values``'s shape
      without the reduced axes (scalars by default), in the compute dtype (float32 for float16,
      bfloat16 and float32 values; float64 stays float64).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> a = jaxloss.mean_parts(jnp.array([1.0, 2.0]))
      >>> b = jaxloss.mean_parts(jnp.array([6.0]))
      >>> float((a + b).value())
      3.0
    """
    values, weights, where = _prepare("mean_parts", values, weights, where)
    wv, w = _weighted_terms(values, weights, where)
    return WeightedMean(jnp.sum(wv, axis=axis), jnp.sum(w, axis=axis))


def mean(values: Any, weights: Any = None, where: Any = None, *, axis: Axis = None) -> jax.Array:
    """Weighted, masked mean: sum(w·v over counted) / sum(w over counted); 0 if nothing counted.

    With ``weights=class_weights[labels]`` on unweighted cross-entropy values with hard
    (integer) labels and no label smoothing, this is PyTorch's
    ``CrossEntropyLoss(weight=class_weights, reduction='mean')``; with an ``ignore_index`` also
    pass ``where=labels != ignore_index`` (an index such as -100 would otherwise pick a weight).
    With label smoothing it is not: PyTorch weights the smoothing term by each class's weight
    but still divides by sum(w[labels]).

    Gradient: d mean / d v_i = w_i / sum(w) for counted i, 0 elsewhere (0 everywhere when nothing
    is counted). Never overflows where the mean and every product w·v are in range (see the
    module notes); with weights, a w·v beyond range gives inf.

    Args:
      values: per-example (or per-element) loss values, any shape, floating.
      weights: optional real weights broadcastable to ``values``; concrete ones must be finite
        and >= 0 (default None: 1 for every element).
      where: optional boolean mask broadcastable to ``values``; False elements are not counted
        (default None: every element counts).
      axis: keyword-only axis or tuple of axes to reduce (default None: all).

    Returns:
      The mean: an array of ``values``'s shape without the reduced axes (a scalar by default),
      in the compute dtype (float32 for float16, bfloat16 and float32 values; float64 stays
      float64).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> float(jaxloss.mean(jnp.array([1.0, 3.0, 100.0]), where=jnp.array([True, True, False])))
      2.0
      >>> float(jaxloss.mean(jnp.array([1.0, 3.0]), weights=jnp.array([1.0, 3.0])))
      2.5
      >>> jaxloss.mean(jnp.array([[1.0, 3.0], [5.0, 7.0]]), axis=1).tolist()
      [2.0, 6.0]
    """
    values, weights, where = _prepare("mean", values, weights, where)
    wv, w = _weighted_terms(values, weights, where)
    return _scaled_mean(wv, w, axis, _overflow_scale(values.shape, axis))


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def _scaled_mean(wv: jax.Array, w: jax.Array, axis: Axis, scale: float) -> jax.Array:
    """sum(wv)/sum(w) (0 where sum(w) = 0) with every term scaled by ``scale`` = 2^-k before
    the sums (see the module notes): exact, and the scaled sum cannot overflow."""
    return WeightedMean(jnp.sum(wv * scale, axis=axis), jnp.sum(w, axis=axis) * scale).value()


@_scaled_mean.defjvp
def _scaled_mean_jvp(axis, scale, primals, tangents):
    """d(S/W) = (dS - mean dW)/W, unscaled: the backward must not share the forward's broadcast
    of the scale (XLA:CPU materialises a broadcast that two fusions consume; measured: a
    full-size temporary in sigmoid BCE's value-and-grad)."""
    wv, w = primals
    dwv, dw = tangents
    value = _scaled_mean(wv, w, axis, scale)
    total = jnp.sum(w, axis=axis)
    counted = total != 0
    denom = jnp.where(counted, total, 1)
    tangent = (jnp.sum(dwv, axis=axis) - value * jnp.sum(dw, axis=axis)) / denom
    return value, jnp.where(counted, tangent, 0)


def _overflow_scale(shape: tuple[int, ...], axis: Axis) -> float:
    """2^-k with 2^k >= the number of elements each output sums (see the module notes)."""
    if axis is None:
        count = math.prod(shape)
    else:
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        count = math.prod(shape[a] for a in axes)
    # One more halving than needed: at a power-of-two count, 2^-k would be the constant 1/n of
    # the gradient, which XLA would share between the forward reduction and the backward and
    # materialise as a full-size broadcast (measured: 4 MiB for sigmoid BCE at 2^20 elements).
    return 2.0 ** -(max(count - 1, 0).bit_length() + 1)


REDUCTIONS = ("none", "mean", "sum")


def check_reduction(fn: str, reduction: Any) -> str:
    """``reduction`` when it is one of ``"none"``, ``"mean"``, ``"sum"``; a ValueError otherwise."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(
            f"jaxloss.{fn}: `reduction` must be one of 'none', 'mean', 'sum'; got {reduction!r}."
        )
    return reduction


def reduce_loss(
    values: jax.Array, reduction: str, *, denominators: Any = None, where: Any = None
) -> jax.Array:
    """A loss's own ``reduction=``: PyTorch's ``'mean'`` / ``'sum'`` of per-example values.

    ``values`` are the per-example losses, already weighted (they are the numerator terms);
    ``denominators`` the per-example terms of the mean's denominator (None: 1 each, the count);
    ``where`` the counted examples (None: all). Then

        'sum'  = sum(v over counted),
        'mean' = sum(v over counted) / sum(d over counted),   0 when that sum is 0,

    with the value, gradient and overflow behaviour of :func:`mean` (the terms are scaled by 2^-k
    inside the same reduction). Everything here runs on per-example vectors: no pass over the
    logits. Uncounted values, NaN included, reach neither the value nor the gradient; a NaN in a
    counted value makes the result NaN. ``values`` are in the compute dtype already.
    """
    if reduction == "none":
        return values
    if where is not None:
        where = jnp.broadcast_to(where, values.shape)
        values = jnp.where(where, values, 0)  # double where: NaN of uncounted examples stays out
    if reduction == "sum":
        return jnp.sum(values)
    if denominators is None:
        d = jnp.ones_like(values)
    else:
        d = jnp.broadcast_to(jnp.asarray(denominators, values.dtype), values.shape)
    if where is not None:
        d = jnp.where(where, d, 0)
    return _scaled_mean(values, d, None, _overflow_scale(values.shape, None))


def sum(values: Any, weights: Any = None, where: Any = None, *, axis: Axis = None) -> jax.Array:
    """Weighted, masked sum: sum(w·v over counted elements); 0 if nothing counted.

    A plain sum (no overflow scaling: it is inf where the sum itself is beyond range); uncounted
    elements, NaN or inf included, reach neither the value nor the gradient.

    Gradient: d sum / d v_i = w_i for counted i, 0 elsewhere.

    Args:
      values: per-example (or per-element) loss values, any shape, floating.
      weights: optional real weights broadcastable to ``values``; concrete ones must be finite
        and >= 0 (default None: 1 for every element).
      where: optional boolean mask broadcastable to ``values``; False elements are not counted
        (default None: every element counts).
      axis: keyword-only axis or tuple of axes to reduce (default None: all).

    Returns:
      The sum: an array of ``values``'s shape without the reduced axes (a scalar by default),
      in the compute dtype (float32 for float16, bfloat16 and float32 values; float64 stays
      float64).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> float(jaxloss.sum(jnp.array([1.0, 2.0]), weights=jnp.array([3.0, 0.5])))
      4.0
    """
    values, weights, where = _prepare("sum", values, weights, where)
    wv, _ = _weighted_terms(values, weights, where)
    return jnp.sum(wv, axis=axis)
