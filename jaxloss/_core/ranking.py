"""Pieces the learning-to-rank families share: validation of (scores, labels, where, weights),
valid-item masks, NaN rows, ranks, gains and discounts (conventions: ``jaxloss/_ranking.py``)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from . import checks as _checks

_LAMBDAWEIGHTS = (None, "labeldiff", "dcg", "ndcg")


# ----------------------------------------------------------------------------------------------
# Validation and shared pieces


def _prepare(
    fn: str,
    scores: ArrayLike,
    labels: ArrayLike,
    where: ArrayLike | None,
    weights: ArrayLike | None,
) -> tuple[jax.Array, jax.Array, jax.Array | None, jax.Array | None]:
    """Checked (scores, labels, where, weights), floats cast to the compute dtype."""
    s = _checks.check_floating(fn, "scores", scores)
    if s.ndim == 0:
        raise ValueError(
            f"jaxloss.{fn}: `scores` must have a list axis (shape [..., list_size]); got a scalar."
        )
    y = _checks.check_real(fn, "labels", labels)
    _checks.check_same_shape(fn, "scores", s, "labels", y)
    mask = None
    if where is not None:
        mask = _checks.as_array(fn, "where", where)
        if mask.dtype != jnp.bool_:
            raise TypeError(
                f"jaxloss.{fn}: `where` must be a bool array (True for valid items); got "
                f"{mask.dtype}. Pass e.g. `where=mask.astype(bool)`."
            )
        _checks.check_same_shape(fn, "scores", s, "where", mask)
    w = None
    if weights is not None:
        w = _checks.check_real(fn, "weights", weights)
        _checks.check_same_shape(fn, "scores", s, "weights", w)
        _checks.check_values(fn, "weights", weights, ">= 0", where=where)
    _checks.check_values(
        fn,
        "labels",
        labels,
        ">= 0",
        where=where,
        allow_nan=True,
        hint="Relevance labels are graded (0 = not relevant).",
    )
    dtype = _checks.compute_dtype(s, y, *(() if w is None else (w,)))
    return s.astype(dtype), y.astype(dtype), mask, None if w is None else w.astype(dtype)


def _valid(s: jax.Array, mask: jax.Array | None) -> jax.Array:
    return jnp.ones(s.shape, bool) if mask is None else mask


def _any_nan(valid: jax.Array, *xs: jax.Array | None) -> jax.Array:
    """Per list: whether a valid item has a NaN in any of ``xs``."""
    bad = jnp.zeros(valid.shape, bool)
    for x in xs:
        if x is not None:
            bad = bad | jnp.isnan(x)
    return jnp.any(bad & valid, axis=-1)


@jax.custom_jvp
def _nan_rows(value: jax.Array, scores: jax.Array, valid: jax.Array) -> jax.Array:
    """``value`` unchanged; where it is NaN, its derivative w.r.t. every valid score of its list
    is NaN (masked scores keep a zero gradient)."""
    return value


@_nan_rows.defjvp
def _nan_rows_jvp(primals, tangents):
    value, _, valid = primals
    dvalue, dscores, _ = tangents
    poison = jnp.where(jnp.isnan(value), jnp.nan, 0).astype(value.dtype)
    return value, dvalue + poison * jnp.sum(jnp.where(valid, dscores, 0), axis=-1)


def _finish(value: jax.Array, s: jax.Array, valid: jax.Array, bad: jax.Array | None) -> jax.Array:
    if bad is not None:
        value = jnp.where(bad, jnp.nan, value)
    return _nan_rows(value, s, valid)


def _ranks(keys: jax.Array, valid: jax.Array) -> jax.Array:
    """1-based ranks by descending ``keys``: ties in order of appearance, invalid items last."""
    keys = jax.lax.stop_gradient(keys)
    axis = keys.ndim - 1
    iota = jax.lax.broadcasted_iota(jnp.int32, keys.shape, axis)
    invalid = (~valid).astype(jnp.int32)
    _, _, order = jax.lax.sort((invalid, -keys, iota), dimension=axis, is_stable=True, num_keys=2)
    return jnp.argsort(order, axis=-1) + 1


def _gains(y: jax.Array, w: jax.Array | None, valid: jax.Array) -> jax.Array:
    """(2^y − 1)·w on valid items, 0 on masked ones."""
    g = jnp.exp2(jnp.where(valid, y, 0)) - 1
    return g if w is None else g * jnp.where(valid, w, 0)


def _discount(ranks: jax.Array, dtype: Any) -> jax.Array:
    return 1 / jnp.log2(ranks.astype(dtype) + 1)


def _ideal_dcg(gains: jax.Array, valid: jax.Array, topn: int | None) -> jax.Array:
    r = _ranks(gains, valid)
    keep = valid if topn is None else valid & (r <= topn)
    return jnp.sum(jnp.where(keep, gains * _discount(r, gains.dtype), 0), axis=-1)


def _check_topn(fn: str, topn: Any) -> int | None:
    if topn is None:
        return None
    if isinstance(topn, bool) or not isinstance(topn, int) or topn < 1:
        raise ValueError(f"jaxloss.{fn}: `topn` must be None or an int >= 1; got {topn!r}.")
    return topn
