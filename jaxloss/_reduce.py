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
*all* below ~4e-31 (at 2^24 elements) comes out 0. :func:`sum` and the parts of
:func:`mean_parts` are plain sums (they add across batches and devices); they overflow only where
the sum itself is beyond range, and a ``WeightedMean`` whose ``weighted_sum`` overflowed gives inf.

The mergeable form :class:`WeightedMean` keeps ``(weighted_sum, total_weight)``; the parts add
across micro-batches (gradient accumulation) and across devices (``jax.lax.psum``), and the merged
parts give exactly the mean of the concatenated batch.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

# check_reduction / reduce_loss (a loss's own ``reduction=``) are re-exported for the modules
# that still import them from here.
from ._core.dispatch import eager_jit
from ._core.reduce import REDUCTIONS as REDUCTIONS
from ._core.reduce import (
    Axis,
    overflow_scale,
    prepare,
    safe_ratio,
    scaled_mean,
    weighted_terms,
)
from ._core.reduce import check_reduction as check_reduction
from ._core.reduce import reduce_loss as reduce_loss

__all__ = ["WeightedMean", "mean", "mean_parts", "sum"]


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
        return safe_ratio(self.weighted_sum, self.total_weight)


@eager_jit
def mean_parts(
    values: ArrayLike,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    *,
    axis: Axis = None,
) -> WeightedMean:
    """The ``(weighted_sum, total_weight)`` parts of :func:`mean`, to merge before dividing.

    weighted_sum = sum(w·v over counted elements), total_weight = sum(w over counted elements);
    parts add across micro-batches and devices, and ``.value()`` divides (0 when nothing was
    counted).

    Gradient: d weighted_sum / d v_i = w_i for counted i, 0 elsewhere.

    Args:
      values: loss values, as for :func:`mean`.
      weights: optional weights, as for :func:`mean` (default None: 1 for every element).
      where: optional boolean mask, as for :func:`mean` (default None: every element counts).
      axis: keyword-only axes to reduce, as for :func:`mean` (default None: all).

    Returns:
      A :class:`WeightedMean` ``(weighted_sum, total_weight)``: two arrays of ``values``'s shape
      without the reduced axes (scalars by default), in the compute dtype of :func:`mean`.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> a = jaxloss.mean_parts(jnp.array([1.0, 2.0]))
      >>> b = jaxloss.mean_parts(jnp.array([6.0]))
      >>> float((a + b).value())
      3.0
    """
    values, weights, where = prepare("mean_parts", values, weights, where)
    wv, w = weighted_terms(values, weights, where)
    return WeightedMean(jnp.sum(wv, axis=axis), jnp.sum(w, axis=axis))


@eager_jit
def mean(
    values: ArrayLike,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    *,
    axis: Axis = None,
) -> jax.Array:
    """Weighted, masked mean: sum(w·v over counted) / sum(w over counted); 0 if nothing counted.

    With ``weights=class_weights[labels]`` on unweighted cross-entropy values with hard
    (integer) labels and no label smoothing, this is PyTorch's
    ``CrossEntropyLoss(weight=class_weights, reduction='mean')``; with an ``ignore_index`` also
    pass ``where=labels != ignore_index`` (an index such as -100 would otherwise pick a weight).
    With label smoothing it is not: PyTorch weights the smoothing term by each class's weight
    but still divides by sum(w[labels]).

    Gradient: d mean / d v_i = w_i / sum(w) for counted i, 0 elsewhere (0 everywhere when nothing
    is counted). Never overflows where the mean and every product w·v are in range (each term is
    scaled by an exact power of two inside the reduction); with weights, a w·v beyond range
    gives inf. The price is at the other end of the range: the power of two is 2^-k with 2^k in
    [2n, 4n) for n reduced elements, so in float32 a term |w·v| below 2^k·2^-126 (2.5e-32 at
    n = 2^20) becomes subnormal once scaled and counts as 0 where subnormals are flushed, as on
    XLA:CPU; a mean made only of such terms is 0. The sum of the weights is scaled too: a total
    weight below 2^k·2^-126 counts as 0, and the mean is then 0 as if nothing were counted
    (weights of 1e-38 each, say). The gradient is not scaled and is exact there.

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
    values, weights, where = prepare("mean", values, weights, where)
    wv, w = weighted_terms(values, weights, where)
    return scaled_mean(wv, w, axis, overflow_scale(values.shape, axis))


@eager_jit
def sum(
    values: ArrayLike,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    *,
    axis: Axis = None,
) -> jax.Array:
    """Weighted, masked sum: sum(w·v over counted elements); 0 if nothing counted.

    A plain sum (no overflow scaling: it is inf where the sum itself is beyond range); uncounted
    elements, NaN or inf included, reach neither the value nor the gradient.

    Gradient: d sum / d v_i = w_i for counted i, 0 elsewhere.

    Args:
      values: loss values, as for :func:`mean`.
      weights: optional weights, as for :func:`mean` (default None: 1 for every element).
      where: optional boolean mask, as for :func:`mean` (default None: every element counts).
      axis: keyword-only axes to reduce, as for :func:`mean` (default None: all).

    Returns:
      The sum: an array of ``values``'s shape without the reduced axes (a scalar by default),
      in the compute dtype of :func:`mean`.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> float(jaxloss.sum(jnp.array([1.0, 2.0]), weights=jnp.array([3.0, 0.5])))
      4.0
    """
    values, weights, where = prepare("sum", values, weights, where)
    wv, _ = weighted_terms(values, weights, where)
    return jnp.sum(wv, axis=axis)
