"""Learning-to-rank losses and metrics on lists of scores and relevance labels.

Conventions shared by every function here (those of rax, Google's JAX ranking library, so that
its users find the numbers they expect; where jaxloss differs it says so).

Inputs. ``scores`` (floating) and ``labels`` (graded relevance, real, >= 0) have the same shape
``[..., list_size]``; the last axis is the list, leading axes are independent lists. Optional,
of the same shape: ``where`` (bool; False marks a padding or invalid item) and ``weights``
(per-item weights, finite and >= 0). Concrete labels and weights are range-checked; traced ones
are used as given.

One value per list. Every loss returns ``[...]`` (the list axis reduced, nothing else): the
*sum* over the list's items or pairs, the definition rax's docstrings write. rax's default
``reduce_fn=jnp.mean`` is something else for the pairwise losses: one mean over all valid pairs
of all lists of the batch. Reduce with ``jaxloss.mean`` / ``jaxloss.sum``; for optax's and rax's
mean over lists, leave out the lists without a valid item:
``jaxloss.mean(values, where=where.any(-1))``.

How ``where`` removes an item: it takes no part at all. It is not in any pair, not in the
softmax's normaliser, not in the ranks (masked items are ranked after every valid item), not in
the ideal DCG. A NaN or inf in a masked item's score, label or weight changes nothing. A list
whose items are all masked gives 0 with a zero gradient.

Weights. ``weights`` multiply what each item contributes: the label of the softmax loss (as
optax and rax), the pair (i, j) by the weight of its first item ``w_i`` (the more relevant one
of a pair with y_i > y_j), each item's pointwise loss, and the gain of the NDCG losses and
metric ((2^y − 1)·w).

Pairs. With d_ij = s_i − s_j, the pairwise losses sum over the ordered pairs of valid items
with y_i > y_j (the squared loss: all ordered pairs, diagonal included, whose terms are 0):
  L = Σ_{i,j} [y_i > y_j] · w_i · λ_ij · ℓ(d_ij).
Lambda weights λ_ij (``lambdaweight=``, computed from the current ranks, no gradient through
them; λ = 1 by default):
  "labeldiff": |y_i − y_j|.
  "dcg":       n · |G_i − G_j| · |D(r_i) − D(r_j)|, with G = (2^y − 1)·w, D(r) = 1 / log2(1 + r)
               and r the 1-based rank by score (rax's ``dcg_lambdaweight``).
  "ndcg":      the same with G divided by the list's ideal DCG (1 where that is 0): n · |ΔNDCG_ij|,
               the |ΔNDCG| of swapping i and j in LambdaRank (Burges 2010), times n.
  n is the list axis' length (padding included): rax scales its DCG lambda weights by it "to
  avoid too small values"; divide by n to remove the factor.
  ``topn=k`` (with "dcg" or "ndcg"): D(r) = 0 for r > k and the ideal DCG is DCG@k, as rax's
  ``topn``: pairs of two items both ranked beyond k get λ = 0.

Ranks, gains, discounts. Ranks are 1-based, by descending score; ties keep the order of
appearance (the earlier item ranks first) and masked items come last. The gain of a label is
2^y − 1 and the discount of rank r is 1 / log2(1 + r). DCG@k = Σ_i G_i · D(r_i) · [r_i <= k];
the ideal DCG orders the items by gain; NDCG = DCG / ideal DCG, 0 for a list without a relevant
item (ideal DCG 0). MRR@k = max_i [y_i >= 1] · [r_i <= k] / r_i: graded labels are binarised at
y >= 1 (rax), 0 when no relevant item is ranked within k. Items with score −inf are treated as
not retrieved by the metrics (rax); mask them with ``where`` to remove them from the ideal DCG.

Approximate metrics (Qin, Liu & Li 2010; rax's ``approx_t12n``): the rank of item i is
replaced by the smooth rank r̂_i = 1 + Σ_{j ≠ i, valid} σ((s_j − s_i) / T), with T the
``temperature``; the loss is minus the metric computed with r̂ (approximate NDCG keeps the exact
ideal DCG), so it lies in [−1, 0].

Lists without a relevant item (all labels 0): the softmax and approximate NDCG/MRR losses give
0 there with a zero gradient (nothing to rank; approximate MRR also for labels all below 1), as
do the pairwise hinge, logistic and soft 0-1 losses (no pair with y_i > y_j). The pairwise
squared and pointwise losses still fit the labels, and ListMLE still ranks such a list (a
likelihood of the label order, ties in order of appearance). These lists count in a mean over
lists; drop them with ``where=(labels > 0).any(-1)`` in the reduction if they should not.

Not here (rax has them): ``segments=``, random tie-breaking with a PRNG ``key``, a ``topn``
cutoff in the approximate losses, and ``gain_fn``/``discount_fn`` arguments.

NaN. A NaN in a valid item's score, label or weight makes its list's value NaN and that
list's gradient w.r.t. the scores NaN on every valid item; other lists are bit-for-bit
unchanged.

float16/bfloat16 inputs are computed in float32 and the value comes back in float32; float64
stays float64. The pairwise, ListMLE and approximate losses build [..., n, n] arrays: they are
meant for lists of up to a few hundred items.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._core import checks as _checks
from ._core.ad import is_zero
from ._core.numerics import logsumexp_parts, softplus
from ._core.ranking import (
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
    "approx_mrr_loss",
    "approx_ndcg_loss",
    "listmle_loss",
    "mrr_metric",
    "ndcg_metric",
    "pointwise_sigmoid_loss",
    "pointwise_squared_loss",
    "ranking_softmax_loss",
]


# ----------------------------------------------------------------------------------------------
# Listwise


@register(plot="softmax_probs")
def ranking_softmax_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
) -> jax.Array:
    """Ranking softmax loss (ListNet top-1): cross-entropy of the labels against softmax(scores).

    Math (valid items only; ŷ_i = y_i·w_i):
      L = −Σ_i ŷ_i · log softmax(s)_i = Σ_i ŷ_i · (logsumexp(s) − s_i).
    The labels are not normalised (rax's and optax's convention): a list with labels (2, 0, 1)
    weighs its log-likelihoods by 2 and 1. Normalise them yourself (y / Σy) for ListNet's
    cross-entropy between distributions. A list without a relevant item gives 0. An item scored
    −inf with ŷ = 0 adds 0 (0·log 0; optax's product gives NaN there); one with ŷ > 0 makes the
    value +inf. An unmasked list whose scores are all −inf is NaN (nothing ranks; mask it).

    Gradient: dL/ds_i = (Σ_j ŷ_j) · softmax(s)_i − ŷ_i on valid items, 0 on masked ones
    (computed in closed form; dL/dŷ_i = logsumexp(s) − s_i).

    Args:
      scores: floating array [..., list_size].
      labels: relevance labels [..., list_size], >= 0.
      where: optional bool [..., list_size]; False removes an item.
      weights: optional per-item weights [..., list_size], >= 0; they multiply the labels.

    Returns:
      Array [...], one value per list. Equals ``optax.losses.ranking_softmax_loss(scores,
      labels, where=where, weights=weights, reduce_fn=None)``; optax's default
      (``reduce_fn=jnp.mean``) is ``jaxloss.mean(values, where=where.any(-1))`` (every list when
      ``where`` is None).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> s = jnp.array([[2.0, 1.0, 3.0]])
      >>> y = jnp.array([[1.0, 0.0, 0.0]])
      >>> round(float(jaxloss.ranking_softmax_loss(s, y)[0]), 4)  # log(e² + e + e³) − 2
      1.4076

    Reference: Cao, Qin, Liu, Tsai & Li, "Learning to Rank: From Pairwise Approach to Listwise
    Approach" (ListNet), ICML 2007.
    """
    s, y, mask, w = _prepare("ranking_softmax_loss", scores, labels, where, weights)
    yh = y if w is None else y * w
    if mask is None:
        return _softmax_ce(s, yh, None)
    value = _softmax_ce(s, jnp.where(mask, yh, 0), mask)
    # A list with every item masked is NaN inside (its maximum is −inf), with a zero gradient.
    return jnp.where(jnp.any(mask, axis=-1), value, 0)


def _softmax_ce_parts(s: jax.Array, yh: jax.Array, mask: jax.Array | None):
    """Σ_i ŷ_i (lse(s) − s_i) per list over the valid items (ŷ already 0 on masked ones), and
    (m, e = exp(s − m) (0 on masked items), Σe, log Σe, Σŷ)."""
    if mask is not None:
        s = jnp.where(mask, s, -jnp.inf)
    m = jnp.max(s, axis=-1, keepdims=True)
    half_gap = s * 0.5 - m * 0.5  # (s − m)/2: exact, and finite for scores of ±3e38
    e = jnp.exp(half_gap + half_gap)
    label_sum = jnp.sum(yh, axis=-1, keepdims=True)
    if mask is not None:
        # Masked items get exactly 0, NaN or not; a NaN (or inf) label sum of the list rides
        # on its valid items (0·Σŷ), so that the gradient's row factor can stay finite.
        e = jnp.where(mask, e + 0 * label_sum, 0)
    total = jnp.sum(e, axis=-1, keepdims=True)
    log_sum = jnp.log(total)
    terms = jnp.where(yh == 0, 0, yh * (0.5 * log_sum - half_gap))
    # 0·log Σ: NaN where a score is NaN (or +inf) even if every label of the list is 0.
    value = 2 * jnp.sum(terms, axis=-1) + 0 * jnp.squeeze(log_sum, -1)
    return value, m, s, e, total, log_sum, label_sum


@jax.custom_jvp
def _softmax_ce(s: jax.Array, yh: jax.Array, mask: jax.Array | None) -> jax.Array:
    """The ranking softmax loss, written for XLA:CPU's fusions (bench/ranking.py): the row
    maximum and the shift in one reduction, the exponential elementwise, the gradient from the
    stored exponentials in closed form (no autodiff of the halves and selects, no separate
    NaN-poisoning or masking pass).

    Values: see ``ranking_softmax_loss``; an item with ŷ = 0 adds 0 (also at a score of −inf), a
    NaN or +inf valid score makes its list NaN, as does a list whose valid scores are all −inf
    (nothing ranks) or that has no valid item (the caller gives 0 there). The gradient is NaN
    on every valid item of a list with a NaN score or label (through m and Σe, or Σŷ in e),
    and exactly 0 on masked items.
    """
    return _softmax_ce_parts(s, yh, mask)[0]


def _softmax_ce_jvp(primals, tangents):
    """dL/ds_i = (Σ_j ŷ_j) · e_i / Σe − ŷ_i;  dL/dŷ_i = (m − s_i) + log Σe."""
    s, yh, mask = primals
    ds, dyh, _ = tangents
    value, m, s, e, total, log_sum, label_sum = _softmax_ce_parts(s, yh, mask)
    out = jnp.zeros_like(value)
    if not is_zero(ds):
        if mask is None:
            scale = label_sum / total
        else:  # finite: a NaN of the list is in e, and masked items must get 0·scale = 0
            finite = jnp.isfinite(label_sum) & (total > 0)
            scale = jnp.where(finite, label_sum, 0) / jnp.where(finite, total, 1)
            # A NaN valid score is in Σe; a fused max can drop it from m (XLA:CPU above a few
            # thousand elements), leaving the list's other e finite: 0·Σe takes it to them.
            e = jnp.where(mask, e + 0 * total, 0)
        out = out + jnp.sum((scale * e - yh) * ds, axis=-1)
    if not is_zero(dyh):  # +inf at a score of −inf: 0 where the label does not move
        out = out + jnp.sum(jnp.where(dyh == 0, 0, ((m - s) + log_sum) * dyh), axis=-1)
    return value, out


_softmax_ce.defjvp(_softmax_ce_jvp, symbolic_zeros=True)


@register(plot="softmax_probs")
def listmle_loss(
    scores: ArrayLike, labels: ArrayLike, *, where: ArrayLike | None = None
) -> jax.Array:
    """ListMLE: minus the Plackett–Luce log-likelihood of the order given by the labels.

    Math: with π the items sorted by label, descending (ties in order of appearance, masked
    items dropped),
      L = Σ_k [ logsumexp_{m >= k} s_{π(m)} − s_{π(k)} ].

    Gradient: dL/ds_j = Σ_k P_k(j) − 1 for a valid item j, with P_k the softmax of the scores
    over {π(m) : m >= k} (0 outside it); 0 for masked items.

    Every valid list is ranked, also one whose labels are all equal (the order of appearance
    then is the target order, as rax does without a random key).

    Args:
      scores: floating array [..., list_size].
      labels: relevance labels [..., list_size], >= 0 (only their order matters).
      where: optional bool [..., list_size]; False removes an item.

    Returns:
      Array [...], one value per list (rax's ``listmle_loss`` with ``reduce_fn=None``).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> s = jnp.array([0.0, 0.0])
      >>> round(float(jaxloss.listmle_loss(s, jnp.array([1.0, 0.0]))), 4)  # log 2 + 0
      0.6931

    Reference: Xia, Liu, Wang, Zhang & Li, "Listwise Approach to Learning to Rank: Theory and
    Algorithm", ICML 2008.
    """
    s, y, mask, _ = _prepare("listmle_loss", scores, labels, where, None)
    valid = _valid(s, mask)
    pos = _ranks(y, valid)
    # Row k: the items at or after position pos_k in the label order (valid ones only).
    rows = valid[..., None, :] & (pos[..., None, :] >= pos[..., :, None])
    m, log_sum, _ = logsumexp_parts(
        jnp.broadcast_to(s[..., None, :], rows.shape), axis=-1, where=rows
    )
    terms = (jnp.squeeze(m, -1) - s) + jnp.squeeze(log_sum, -1)
    value = jnp.sum(jnp.where(valid, terms, 0), axis=-1)
    return _finish(value, s, valid, _any_nan(valid, s, y))


# ----------------------------------------------------------------------------------------------
# Pointwise


def _pointwise(
    fn: str,
    point_loss: Any,
    scores: ArrayLike,
    labels: ArrayLike,
    where: ArrayLike | None,
    weights: ArrayLike | None,
):
    s, y, mask, w = _prepare(fn, scores, labels, where, weights)
    valid = _valid(s, mask)
    loss = point_loss(jnp.where(valid, s, 0), jnp.where(valid, y, 0))
    if w is not None:
        loss = w * loss
    value = jnp.sum(jnp.where(valid, loss, 0), axis=-1)
    return _finish(value, s, valid, _any_nan(valid, s, y, w))


@register(plot="softmax_probs")
def pointwise_sigmoid_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
) -> jax.Array:
    """Pointwise sigmoid cross-entropy of each item's score against its label, summed per list.

    Math (labels clipped to [0, 1], as rax 0.4: graded labels >= 1 are relevant, fractional
    labels are soft targets):
      L = Σ_i w_i · [ ỹ_i·softplus(−s_i) + (1 − ỹ_i)·softplus(s_i) ],  ỹ = clip(y, 0, 1).

    Gradient: dL/ds_i = w_i·(σ(s_i) − ỹ_i).

    Args:
      scores: floating array [..., list_size] (logits).
      labels: relevance labels [..., list_size], >= 0.
      where: optional bool [..., list_size]; False removes an item.
      weights: optional per-item weights [..., list_size], >= 0.

    Returns:
      Array [...], one value per list (rax's ``pointwise_sigmoid_loss`` summed per list).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> v = jaxloss.pointwise_sigmoid_loss(jnp.array([0.0, 0.0]), jnp.array([2.0, 0.0]))
      >>> round(float(v), 4)  # 2 log 2
      1.3863
    """

    def point(s, y):
        t = jnp.clip(y, 0, 1)
        return t * softplus(-s) + (1 - t) * softplus(s)

    return _pointwise("pointwise_sigmoid_loss", point, scores, labels, where, weights)


@register(plot="softmax_probs")
def pointwise_squared_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
) -> jax.Array:
    """Pointwise squared error of each item's score against its label, summed per list.

    Math: L = Σ_i w_i · (s_i − y_i)².

    Gradient: dL/ds_i = 2 w_i (s_i − y_i).

    Args:
      scores: floating array [..., list_size].
      labels: relevance labels [..., list_size], >= 0.
      where: optional bool [..., list_size]; False removes an item.
      weights: optional per-item weights [..., list_size], >= 0.

    Returns:
      Array [...], one value per list (rax's ``pointwise_mse_loss`` summed per list).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> s = jnp.array([2.0, 1.0, 3.0])
      >>> float(jaxloss.pointwise_squared_loss(s, jnp.array([1.0, 0.0, 0.0])))
      11.0
    """
    return _pointwise(
        "pointwise_squared_loss", lambda s, y: jnp.square(s - y), scores, labels, where, weights
    )


# ----------------------------------------------------------------------------------------------
# Approximate metrics (losses) and exact metrics


def _approx_ranks(s: jax.Array, valid: jax.Array, temperature: ArrayLike) -> jax.Array:
    """r̂_i = 1 + Σ_{j ≠ i, valid} σ((s_j − s_i) / T)."""
    n = s.shape[-1]
    off_diagonal = ~jnp.eye(n, dtype=bool)
    pairs = valid[..., :, None] & valid[..., None, :] & off_diagonal
    diff = jnp.where(pairs, s[..., None, :] - s[..., :, None], 0)
    sig = jax.nn.sigmoid(diff / temperature)
    return 1 + jnp.sum(jnp.where(pairs, sig, 0), axis=-1)


def _check_temperature(fn: str, temperature: ArrayLike) -> None:
    _checks.require(fn, "temperature", temperature, _checks.POSITIVE)


@register(plot="softmax_probs")
def approx_ndcg_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    temperature: ArrayLike = 1.0,
) -> jax.Array:
    """Approximate NDCG loss: minus NDCG computed with smooth (sigmoid) ranks.

    Math: r̂_i = 1 + Σ_{j ≠ i} σ((s_j − s_i)/T) over valid items, G = (2^y − 1)·w,
      L = −Σ_i G_i / log2(1 + r̂_i) / IDCG,
    with IDCG the exact ideal DCG (1 where it is 0). L lies in [−1, 0]; rax's
    ``approx_t12n(ndcg_metric, temperature)`` (no ``topn``).

    Gradient: with a_i = G_i / (IDCG · ln 2 · (1 + r̂_i) · log2²(1 + r̂_i)) and
    q_ij = σ'((s_j − s_i)/T)/T over valid pairs j ≠ i: dL/ds_k = a_k Σ_j q_kj − Σ_i a_i q_ik.
    The lambda weights of LambdaRank are its exact-rank counterpart.

    A list without a relevant item (all gains 0) gives 0 with a zero gradient.

    Args:
      scores: floating array [..., list_size].
      labels: relevance labels [..., list_size], >= 0.
      where: optional bool [..., list_size]; False removes an item.
      weights: optional per-item weights [..., list_size], >= 0; they multiply the gains.
      temperature: T > 0 of the smooth ranks (may be traced); smaller is closer to the exact
        ranks and less smooth.

    Returns:
      Array [...], one value per list.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> s = jnp.array([0.0, 1.0, 3.0, 2.0])
      >>> y = jnp.array([0.0, 0.0, 1.0, 2.0])
      >>> round(float(jaxloss.approx_ndcg_loss(s, y)), 4)
      -0.7179

    Reference: Qin, Liu & Li, "A general approximation framework for direct optimization of
    information retrieval measures", Information Retrieval 13, 2010.
    """
    fn = "approx_ndcg_loss"
    _check_temperature(fn, temperature)
    s, y, mask, w = _prepare(fn, scores, labels, where, weights)
    valid = _valid(s, mask)
    gains = _gains(y, w, valid)
    ideal = jax.lax.stop_gradient(_ideal_dcg(gains, valid, None))
    r = _approx_ranks(s, valid, temperature)
    dcg = jnp.sum(jnp.where(valid, gains / jnp.log2(1 + r), 0), axis=-1)
    value = -dcg / jnp.where(ideal == 0, 1, ideal)
    return _finish(value, s, valid, _any_nan(valid, s, y, w))


@register(plot="softmax_probs")
def approx_mrr_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    temperature: ArrayLike = 1.0,
) -> jax.Array:
    """Approximate MRR loss: minus the reciprocal rank of the best relevant item, smooth ranks.

    Math: r̂_i = 1 + Σ_{j ≠ i} σ((s_j − s_i)/T) over valid items,
      L = −max_i [y_i >= 1] / r̂_i   (0 when no item has y >= 1),
    rax's ``approx_t12n(mrr_metric, temperature)``. L lies in [−1, 0].

    Gradient: through the maximising item i* only: dL/ds_k = (1/r̂²_{i*})·dr̂_{i*}/ds_k with
    dr̂_i/ds_k = q_ik for k ≠ i and −Σ_j q_ij for k = i, q_ij = σ'((s_j − s_i)/T)/T (JAX splits
    it evenly between tied maxima).

    Args:
      scores: floating array [..., list_size].
      labels: relevance labels [..., list_size], >= 0 (relevant: >= 1).
      where: optional bool [..., list_size]; False removes an item.
      temperature: T > 0 of the smooth ranks (may be traced).

    Returns:
      Array [...], one value per list.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> s = jnp.array([0.0, 1.0, 3.0, 2.0])
      >>> y = jnp.array([0.0, 0.0, 1.0, 2.0])
      >>> round(float(jaxloss.approx_mrr_loss(s, y)), 4)
      -0.6966

    Reference: Qin, Liu & Li, Information Retrieval 13, 2010.
    """
    fn = "approx_mrr_loss"
    _check_temperature(fn, temperature)
    s, y, mask, _ = _prepare(fn, scores, labels, where, None)
    valid = _valid(s, mask)
    r = _approx_ranks(s, valid, temperature)
    relevant = valid & (y >= 1)
    value = -jnp.max(jnp.where(relevant, 1 / r, 0), axis=-1)
    return _finish(value, s, valid, _any_nan(valid, s, y))


def ndcg_metric(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    topn: int | None = None,
) -> jax.Array:
    """NDCG@k of the ranking by scores, one value per list (a metric: higher is better).

    Math: r_i the 1-based rank by descending score (ties in order of appearance, masked items
    last), G = (2^y − 1)·w, D(r) = 1/log2(1 + r):
      DCG@k = Σ_i G_i · D(r_i) · [r_i <= k] · [s_i > −inf],  NDCG@k = DCG@k / IDCG@k,
    IDCG@k the DCG@k of the items ordered by gain; NDCG = 0 where IDCG = 0 (no relevant item).
    rax's ``ndcg_metric(..., reduce_fn=None)``. scikit-learn's ``ndcg_score`` uses the linear
    gain y (the same for 0/1 labels) and averages over tied scores.

    Args:
      scores: floating array [..., list_size]; items scored −inf are not retrieved.
      labels: relevance labels [..., list_size], >= 0.
      where: optional bool [..., list_size]; False removes an item.
      weights: optional per-item weights [..., list_size], >= 0; they multiply the gains.
      topn: the cutoff k (None: the whole list).

    Returns:
      Array [...] in [0, 1]; no gradient (it is piecewise constant in the scores).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> s = jnp.array([2.0, 1.0, 3.0])
      >>> y = jnp.array([2.0, 0.0, 1.0])
      >>> round(float(jaxloss.ndcg_metric(s, y)), 5)
      0.79671
    """
    fn = "ndcg_metric"
    k = _check_topn(fn, topn)
    s, y, mask, w = _prepare(fn, scores, labels, where, weights)
    s = jax.lax.stop_gradient(s)
    valid = _valid(s, mask)
    gains = jax.lax.stop_gradient(_gains(y, w, valid))
    r = _ranks(s, valid)
    kept = valid & (s != -jnp.inf)
    if k is not None:
        kept = kept & (r <= k)
    dcg = jnp.sum(jnp.where(kept, gains * _discount(r, s.dtype), 0), axis=-1)
    ideal = _ideal_dcg(gains, valid, k)
    value = dcg / jnp.where(ideal == 0, 1, ideal)
    return jnp.where(_any_nan(valid, s, y, w), jnp.nan, value)


def mrr_metric(
    scores: ArrayLike, labels: ArrayLike, *, where: ArrayLike | None = None, topn: int | None = None
) -> jax.Array:
    """MRR@k: the reciprocal rank of the first relevant item (y >= 1), one value per list.

    Math: r_i the 1-based rank by descending score (ties in order of appearance, masked items
    last): MRR@k = max_i [y_i >= 1] · [r_i <= k] · [s_i > −inf] / r_i, 0 when there is none.
    rax's ``mrr_metric(..., reduce_fn=None)``.

    Args:
      scores: floating array [..., list_size]; items scored −inf are not retrieved.
      labels: relevance labels [..., list_size], >= 0; relevant means >= 1.
      where: optional bool [..., list_size]; False removes an item.
      topn: the cutoff k (None: the whole list).

    Returns:
      Array [...] in [0, 1]; no gradient.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> s = jnp.array([3.0, 2.0, 1.0])
      >>> float(jaxloss.mrr_metric(s, jnp.array([0.0, 1.0, 1.0])))
      0.5
    """
    fn = "mrr_metric"
    k = _check_topn(fn, topn)
    s, y, mask, _ = _prepare(fn, scores, labels, where, None)
    s = jax.lax.stop_gradient(s)
    valid = _valid(s, mask)
    r = _ranks(s, valid)
    kept = valid & (s != -jnp.inf) & (y >= 1)
    if k is not None:
        kept = kept & (r <= k)
    value = jnp.max(jnp.where(kept, 1 / r.astype(s.dtype), 0), axis=-1)
    return jnp.where(_any_nan(valid, s, y), jnp.nan, value)
