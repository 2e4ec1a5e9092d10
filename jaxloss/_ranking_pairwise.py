"""Pairwise learning-to-rank losses, with LambdaRank's lambda weights.

The conventions (inputs, one value per list, ``where``, weights, ranks and gains, lambda weights,
lists without a relevant item, NaN) are those of the ranking family, stated once in
``jaxloss/_ranking.py`` and on the same documentation page.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._core.numerics import softplus
from ._core.ranking import (
    _LAMBDAWEIGHTS,
    _any_nan,
    _check_topn,
    _discount,
    _finish,
    _gains,
    _ideal_dcg,
    _prepare,
    _ranks,
    _valid,
)
from ._core.registry import register

__all__ = [
    "pairwise_hinge_loss",
    "pairwise_logistic_loss",
    "pairwise_soft_zero_one_loss",
    "pairwise_squared_loss",
]


# ----------------------------------------------------------------------------------------------
# Pairwise


def _lambdaweights(
    fn: str,
    kind: str | None,
    s: jax.Array,
    y: jax.Array,
    valid: jax.Array,
    w: jax.Array | None,
    topn: int | None,
) -> jax.Array | None:
    if kind not in _LAMBDAWEIGHTS:
        raise ValueError(
            f"jaxloss.{fn}: `lambdaweight` must be None, 'labeldiff', 'dcg' or 'ndcg'; got "
            f"{kind!r}."
        )
    k = _check_topn(fn, topn)
    if k is not None and kind not in ("dcg", "ndcg"):
        raise ValueError(
            f"jaxloss.{fn}: `topn` is the cutoff of the 'dcg' and 'ndcg' lambda weights; got "
            f"topn={topn!r} with lambdaweight={kind!r}. Pass lambdaweight='dcg' or 'ndcg', or "
            "leave topn out."
        )
    if kind is None:
        return None
    y = jax.lax.stop_gradient(y)
    if kind == "labeldiff":
        return jnp.abs(y[..., :, None] - y[..., None, :])
    gains = jax.lax.stop_gradient(_gains(y, w, valid))
    if kind == "ndcg":
        ideal = _ideal_dcg(gains, valid, k)
        gains = gains / jnp.where(ideal == 0, 1, ideal)[..., None]
    r = _ranks(s, valid)
    d = _discount(r, s.dtype)
    if k is not None:  # rax: ranks beyond the cutoff have no discount
        d = jnp.where(r <= k, d, 0)
    n = s.shape[-1]
    return (
        n
        * jnp.abs(gains[..., :, None] - gains[..., None, :])
        * jnp.abs(d[..., :, None] - d[..., None, :])
    )


def _pairwise(
    fn: str,
    pair_loss: Any,
    scores: ArrayLike,
    labels: ArrayLike,
    where: ArrayLike | None,
    weights: ArrayLike | None,
    lambdaweight: str | None,
    topn: int | None,
    all_pairs: bool = False,
) -> jax.Array:
    s, y, mask, w = _prepare(fn, scores, labels, where, weights)
    valid = _valid(s, mask)
    lam = _lambdaweights(fn, lambdaweight, s, y, valid, w, topn)
    pairs = valid[..., :, None] & valid[..., None, :]
    if not all_pairs:
        pairs = pairs & (y[..., :, None] > y[..., None, :])
    coef = None
    if w is not None:
        coef = jnp.broadcast_to(w[..., :, None], pairs.shape)
    if lam is not None:
        coef = lam if coef is None else coef * lam
    if coef is not None:  # a pair of weight 0 does not count (0·inf would be NaN)
        pairs = pairs & (coef != 0)
    # Pairs that do not count get d = Δy = 0 (the double where: an inf or NaN in a masked item
    # or an uncounted pair must not reach the gradient as 0·inf).
    d = jnp.where(pairs, s[..., :, None] - s[..., None, :], 0)
    loss = pair_loss(d, jnp.where(pairs, y[..., :, None] - y[..., None, :], 0))
    if coef is not None:
        loss = coef * loss
    value = jnp.sum(jnp.where(pairs, loss, 0), axis=(-2, -1))
    return _finish(value, s, valid, _any_nan(valid, s, y, w))


def _hinge(d: jax.Array, _: jax.Array) -> jax.Array:
    z = 1 - d
    return jnp.where(z >= 0, z, jnp.where(z < 0, 0, z))


@register(plot="softmax_probs")
def pairwise_hinge_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    lambdaweight: str | None = None,
    topn: int | None = None,
) -> jax.Array:
    """Pairwise hinge loss (RankSVM): Σ over pairs with y_i > y_j of max(0, 1 − (s_i − s_j)).

    Math: L = Σ_{i,j} [y_i > y_j] · w_i · λ_ij · max(0, 1 − d_ij), d_ij = s_i − s_j.

    Gradient: dℓ/dd_ij = −1 where d_ij <= 1 (the kink at d = 1 is taken as active, the
    convention of jaxloss' margin losses), 0 where d_ij > 1; dL/ds_k = Σ_j c_kj ℓ'(d_kj) −
    Σ_i c_ik ℓ'(d_ik) with c_ij = [y_i > y_j] w_i λ_ij.

    Args:
      scores: floating array [..., list_size].
      labels: relevance labels [..., list_size], >= 0.
      where: optional bool [..., list_size]; False removes an item (and its pairs).
      weights: optional per-item weights [..., list_size], >= 0; pair (i, j) is weighted by
        ``weights[i]``.
      lambdaweight: None, "labeldiff", "dcg" or "ndcg" (see the module's conventions); no
        gradient flows through the lambda weights.
      topn: the cutoff k of the "dcg" and "ndcg" lambda weights (None: the whole list): the
        discount of a rank beyond k is 0 and the ideal DCG is DCG@k (rax's ``topn``).

    Returns:
      Array [...], one value per list: rax's ``pairwise_hinge_loss`` summed over the list's
      pairs (``jax.vmap(..., reduce_fn=jnp.sum)``).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> s = jnp.array([2.0, 1.0, 3.0])
      >>> float(jaxloss.pairwise_hinge_loss(s, jnp.array([1.0, 0.0, 0.0])))  # 0 + 2
      2.0

    Reference: Herbrich, Graepel & Obermayer, "Large Margin Rank Boundaries for Ordinal
    Regression", 2000; Joachims, "Optimizing Search Engines using Clickthrough Data", KDD 2002.
    """
    return _pairwise(
        "pairwise_hinge_loss", _hinge, scores, labels, where, weights, lambdaweight, topn
    )


@register(plot="softmax_probs")
def pairwise_logistic_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    lambdaweight: str | None = None,
    topn: int | None = None,
) -> jax.Array:
    """Pairwise logistic loss (RankNet): Σ over pairs with y_i > y_j of log(1 + e^{−(s_i − s_j)}).

    Math: L = Σ_{i,j} [y_i > y_j] · w_i · λ_ij · softplus(−d_ij), d_ij = s_i − s_j. With
    ``lambdaweight="ndcg"`` this is the LambdaRank objective (rax's ``dcg_lambdaweight`` with
    ``normalize=True``).

    Gradient: dℓ/dd_ij = −σ(−d_ij); dL/ds_k = Σ_j c_kj ℓ'(d_kj) − Σ_i c_ik ℓ'(d_ik) with
    c_ij = [y_i > y_j] w_i λ_ij.

    Args:
      scores: floating array [..., list_size].
      labels: relevance labels [..., list_size], >= 0.
      where: optional bool [..., list_size]; False removes an item (and its pairs).
      weights: optional per-item weights [..., list_size], >= 0; pair (i, j) is weighted by
        ``weights[i]``.
      lambdaweight: None, "labeldiff", "dcg" or "ndcg" (see the module's conventions); no
        gradient flows through the lambda weights.
      topn: the cutoff k of the "dcg" and "ndcg" lambda weights (None: the whole list): the
        discount of a rank beyond k is 0 and the ideal DCG is DCG@k (rax's ``topn``).

    Returns:
      Array [...], one value per list: rax's ``pairwise_logistic_loss`` summed over the list's
      pairs.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> s = jnp.array([2.0, 1.0, 3.0])
      >>> v = jaxloss.pairwise_logistic_loss(s, jnp.array([1.0, 0.0, 0.0]))
      >>> round(float(v), 4)  # softplus(-1) + softplus(1)
      1.6265

    Reference: Burges et al., "Learning to Rank using Gradient Descent" (RankNet), ICML 2005;
    Burges, "From RankNet to LambdaRank to LambdaMART: An Overview", MSR-TR-2010-82.
    """
    return _pairwise(
        "pairwise_logistic_loss",
        lambda d, _: softplus(-d),
        scores,
        labels,
        where,
        weights,
        lambdaweight,
        topn,
    )


@register(plot="softmax_probs")
def pairwise_soft_zero_one_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    lambdaweight: str | None = None,
    topn: int | None = None,
) -> jax.Array:
    """Pairwise soft 0-1 loss: Σ over pairs with y_i > y_j of σ(−(s_i − s_j)).

    A smooth count of the misordered pairs (each in (0, 1)).

    Math: L = Σ_{i,j} [y_i > y_j] · w_i · λ_ij · σ(−d_ij), d_ij = s_i − s_j.

    Gradient: dℓ/dd_ij = −σ(d_ij)·σ(−d_ij); dL/ds_k = Σ_j c_kj ℓ'(d_kj) − Σ_i c_ik ℓ'(d_ik)
    with c_ij = [y_i > y_j] w_i λ_ij.

    Args:
      scores: floating array [..., list_size].
      labels: relevance labels [..., list_size], >= 0.
      where: optional bool [..., list_size]; False removes an item (and its pairs).
      weights: optional per-item weights [..., list_size], >= 0; pair (i, j) is weighted by
        ``weights[i]``.
      lambdaweight: None, "labeldiff", "dcg" or "ndcg" (see the module's conventions); no
        gradient flows through the lambda weights.
      topn: the cutoff k of the "dcg" and "ndcg" lambda weights (None: the whole list): the
        discount of a rank beyond k is 0 and the ideal DCG is DCG@k (rax's ``topn``).

    Returns:
      Array [...], one value per list: rax's ``pairwise_soft_zero_one_loss`` summed over the
      list's pairs.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> s = jnp.array([0.0, 0.0])
      >>> float(jaxloss.pairwise_soft_zero_one_loss(s, jnp.array([1.0, 0.0])))
      0.5
    """
    return _pairwise(
        "pairwise_soft_zero_one_loss",
        lambda d, _: jax.nn.sigmoid(-d),
        scores,
        labels,
        where,
        weights,
        lambdaweight,
        topn,
    )


@register(plot="softmax_probs")
def pairwise_squared_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    lambdaweight: str | None = None,
    topn: int | None = None,
) -> jax.Array:
    """Pairwise squared loss: Σ over all ordered pairs of ((y_i − y_j) − (s_i − s_j))².

    Every ordered pair of valid items counts (both (i, j) and (j, i); the diagonal terms are 0),
    as rax's ``pairwise_mse_loss``: only the score differences are fitted to the label
    differences, so the loss is invariant to a shift of the scores.

    Math: L = Σ_{i,j} w_i · λ_ij · (Δy_ij − d_ij)², d_ij = s_i − s_j, Δy_ij = y_i − y_j.

    Gradient: dℓ/dd_ij = 2(d_ij − Δy_ij); dL/ds_k = Σ_j c_kj ℓ'(d_kj) − Σ_i c_ik ℓ'(d_ik) with
    c_ij = w_i λ_ij.

    Args:
      scores: floating array [..., list_size].
      labels: relevance labels [..., list_size], >= 0.
      where: optional bool [..., list_size]; False removes an item (and its pairs).
      weights: optional per-item weights [..., list_size], >= 0; pair (i, j) is weighted by
        ``weights[i]``.
      lambdaweight: None, "labeldiff", "dcg" or "ndcg" (see the module's conventions); no
        gradient flows through the lambda weights.
      topn: the cutoff k of the "dcg" and "ndcg" lambda weights (None: the whole list): the
        discount of a rank beyond k is 0 and the ideal DCG is DCG@k (rax's ``topn``).

    Returns:
      Array [...], one value per list: rax's ``pairwise_mse_loss`` summed over the list's pairs
      (rax's default mean divides by the n² pairs, diagonal included).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> s = jnp.array([2.0, 1.0, 3.0])
      >>> float(jaxloss.pairwise_squared_loss(s, jnp.array([1.0, 0.0, 0.0])))
      16.0
    """
    return _pairwise(
        "pairwise_squared_loss",
        lambda d, dy: jnp.square(dy - d),
        scores,
        labels,
        where,
        weights,
        lambdaweight,
        topn,
        all_pairs=True,
    )
