"""The machinery of every reduction: validation of ``(values, weights, where)``, the counted
terms, and the overflow-safe weighted mean, shared by the public reductions
(``jaxloss/_reduce.py``: ``mean``, ``sum``, ``mean_parts``) and the ``reduction=`` option of
the losses that have one (:func:`check_reduction`, :func:`reduce_loss`).

One rule: mean = sum(w·v over counted) / sum(w over counted), 0 with a zero, finite gradient
when nothing is counted. The mean scales every term by 2^-k, k = ceil(log2(reduced elements)) +
1, inside the same fused reduction (one multiply per element, no extra pass), so the scaled sum
is at most max|w·v| and cannot overflow; scaling by a power of two is exact except for terms
(or a weight sum) it makes subnormal, which flush to 0 on XLA:CPU (``jaxloss.mean``
states both consequences). Guarding that end as well costs a second reduction, which XLA:CPU
does not fuse with the first: the values are then materialised (measured: 3.3× the time of
the squared-error mean at 2^24 elements). The alternatives to the scaling measured worse: a
max-rescale costs a second pass over the values; an overflow-triggered second pass under
``lax.cond`` materialises the values as a full-size temporary.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from . import checks as _checks

__all__ = [
    "REDUCTIONS",
    "Axis",
    "check_reduction",
    "overflow_scale",
    "prepare",
    "reduce_loss",
    "safe_ratio",
    "scaled_mean",
    "weighted_terms",
]

Axis = int | tuple[int, ...] | None

REDUCTIONS = ("none", "mean", "sum")


def prepare(
    fn: str, values: ArrayLike, weights: ArrayLike | None, where: ArrayLike | None
) -> tuple[jax.Array, jax.Array | None, jax.Array | None]:
    """Checks and casts the arguments of a reduction: floating ``values`` (cast to the compute
    dtype), real ``weights`` broadcastable to them (concrete ones finite and >= 0), a boolean
    ``where`` broadcastable to them."""
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


def weighted_terms(
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


def safe_ratio(weighted_sum: jax.Array, total_weight: jax.Array) -> jax.Array:
    """weighted_sum / total_weight, or 0 (with a zero gradient) where total_weight is 0."""
    counted = total_weight != 0
    denom = jnp.where(counted, total_weight, 1)
    return jnp.where(counted, weighted_sum / denom, 0)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def scaled_mean(wv: jax.Array, w: jax.Array, axis: Axis, scale: float) -> jax.Array:
    """sum(wv)/sum(w) (0 where sum(w) = 0) with every term scaled by ``scale`` = 2^-k before
    the sums (see the module notes): exact, and the scaled sum cannot overflow."""
    return safe_ratio(jnp.sum(wv * scale, axis=axis), jnp.sum(w, axis=axis) * scale)


@scaled_mean.defjvp
def _scaled_mean_jvp(axis, scale, primals, tangents):
    """d(S/W) = (dS - mean dW)/W, unscaled: the backward must not share the forward's broadcast
    of the scale (XLA:CPU materialises a broadcast that two fusions consume; measured: a
    full-size temporary in sigmoid BCE's value-and-grad)."""
    wv, w = primals
    dwv, dw = tangents
    value = scaled_mean(wv, w, axis, scale)
    total = jnp.sum(w, axis=axis)
    counted = total != 0
    denom = jnp.where(counted, total, 1)
    tangent = (jnp.sum(dwv, axis=axis) - value * jnp.sum(dw, axis=axis)) / denom
    return value, jnp.where(counted, tangent, 0)


def overflow_scale(shape: tuple[int, ...], axis: Axis) -> float:
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


def check_reduction(fn: str, reduction: Any) -> str:
    """``reduction`` when it is one of ``"none"``, ``"mean"``, ``"sum"``; a ValueError otherwise."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(
            f"jaxloss.{fn}: `reduction` must be one of 'none', 'mean', 'sum'; got {reduction!r}."
        )
    return reduction


def reduce_loss(
    values: jax.Array, reduction: str, *, denominators: Any = None, where: ArrayLike | None = None
) -> jax.Array:
    """A loss's own ``reduction=``: PyTorch's ``'mean'`` / ``'sum'`` of per-example values.

    ``values`` are the per-example losses, already weighted (they are the numerator terms);
    ``denominators`` the per-example terms of the mean's denominator (None: 1 each, the count);
    ``where`` the counted examples (None: all). Then

        'sum'  = sum(v over counted),
        'mean' = sum(v over counted) / sum(d over counted),   0 when that sum is 0,

    with the value, gradient and overflow behaviour of ``jaxloss.mean`` (the terms are scaled by
    2^-k inside the same reduction). Everything here runs on per-example vectors: no pass over
    the logits. Uncounted values, NaN included, reach neither the value nor the gradient; a NaN
    in a counted value makes the result NaN. ``values`` are in the compute dtype already.
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
    return scaled_mean(values, d, None, overflow_scale(values.shape, None))
