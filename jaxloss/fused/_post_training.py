"""The post-training objectives fused with the language-model head.

Each function takes hidden states and the unembedding instead of log-probabilities: the token
log-probabilities come from :func:`jaxloss.fused.linear_log_probs` (blocked over the vocabulary,
no [tokens, vocabulary] logits in the forward or the backward), the sequence log-probabilities
from :func:`jaxloss.sequence_log_probs`, and the objective is the unfused one
(:func:`jaxloss.dpo_loss`, ...), so fused and unfused give the same numbers.

Conventions, once for the module:

- Sequences are ``hidden`` [..., T, D] with integer ``labels`` [..., T] (the next tokens) and a
  bool ``mask`` [..., T] of the tokens that count (default: all). Masked tokens may hold any
  label (``-100`` included): they are read as label 0 and never counted.
- Chosen and rejected sequences of the same shape go through the head in one pass (stacked on
  the leading axis).
- A reference model is given either as sequence log-probabilities (``reference_chosen`` ...)
  or as its hidden states and unembedding (``reference_*_hidden``, ``reference_weight``), which
  are run through the same fused head under ``stop_gradient``: no logits for it either.
- ``temperature``, ``bias``, ``weight_layout`` and ``block_size`` are those of
  :func:`linear_log_probs`; the objective's own options pass through by name.
"""

from __future__ import annotations

from typing import Literal, overload

import jax
from jax.typing import ArrayLike

from .._core import checks as _checks
from .._core.registry import register
from .._policy_gradient import sequence_log_probs
from .._preference import dpo_loss, kto_loss, orpo_loss, simpo_loss
from ._heads import (
    _check_head,
    _check_labels_in,
    _head,
    _labels,
    _mask,
    _pair_log_probs,
    _reference_pair,
    _token_log_probs,
)
from ._prepare import DEFAULT_BLOCK_SIZE

__all__ = [
    "linear_dpo_loss",
    "linear_kto_loss",
    "linear_orpo_loss",
    "linear_simpo_loss",
]


@overload
def linear_dpo_loss(
    chosen_hidden: ArrayLike,
    rejected_hidden: ArrayLike,
    weight: ArrayLike,
    chosen_labels: ArrayLike,
    rejected_labels: ArrayLike,
    *,
    chosen_mask: ArrayLike | None = ...,
    rejected_mask: ArrayLike | None = ...,
    reference_chosen: ArrayLike | None = ...,
    reference_rejected: ArrayLike | None = ...,
    reference_chosen_hidden: ArrayLike | None = ...,
    reference_rejected_hidden: ArrayLike | None = ...,
    reference_weight: ArrayLike | None = ...,
    beta: ArrayLike = ...,
    loss_type: str = ...,
    label_smoothing: ArrayLike = ...,
    temperature: ArrayLike = ...,
    bias: ArrayLike | None = ...,
    weight_layout: str = ...,
    block_size: int = ...,
    reduction: str = ...,
    return_aux: Literal[False] = ...,
) -> jax.Array: ...


@overload
def linear_dpo_loss(
    chosen_hidden: ArrayLike,
    rejected_hidden: ArrayLike,
    weight: ArrayLike,
    chosen_labels: ArrayLike,
    rejected_labels: ArrayLike,
    *,
    chosen_mask: ArrayLike | None = ...,
    rejected_mask: ArrayLike | None = ...,
    reference_chosen: ArrayLike | None = ...,
    reference_rejected: ArrayLike | None = ...,
    reference_chosen_hidden: ArrayLike | None = ...,
    reference_rejected_hidden: ArrayLike | None = ...,
    reference_weight: ArrayLike | None = ...,
    beta: ArrayLike = ...,
    loss_type: str = ...,
    label_smoothing: ArrayLike = ...,
    temperature: ArrayLike = ...,
    bias: ArrayLike | None = ...,
    weight_layout: str = ...,
    block_size: int = ...,
    reduction: str = ...,
    return_aux: Literal[True],
) -> tuple[jax.Array, dict[str, jax.Array]]: ...


@overload
def linear_dpo_loss(
    chosen_hidden: ArrayLike,
    rejected_hidden: ArrayLike,
    weight: ArrayLike,
    chosen_labels: ArrayLike,
    rejected_labels: ArrayLike,
    *,
    chosen_mask: ArrayLike | None = ...,
    rejected_mask: ArrayLike | None = ...,
    reference_chosen: ArrayLike | None = ...,
    reference_rejected: ArrayLike | None = ...,
    reference_chosen_hidden: ArrayLike | None = ...,
    reference_rejected_hidden: ArrayLike | None = ...,
    reference_weight: ArrayLike | None = ...,
    beta: ArrayLike = ...,
    loss_type: str = ...,
    label_smoothing: ArrayLike = ...,
    temperature: ArrayLike = ...,
    bias: ArrayLike | None = ...,
    weight_layout: str = ...,
    block_size: int = ...,
    reduction: str = ...,
    return_aux: bool,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]: ...


@register(plot=None)
def linear_dpo_loss(
    chosen_hidden: ArrayLike,
    rejected_hidden: ArrayLike,
    weight: ArrayLike,
    chosen_labels: ArrayLike,
    rejected_labels: ArrayLike,
    *,
    chosen_mask: ArrayLike | None = None,
    rejected_mask: ArrayLike | None = None,
    reference_chosen: ArrayLike | None = None,
    reference_rejected: ArrayLike | None = None,
    reference_chosen_hidden: ArrayLike | None = None,
    reference_rejected_hidden: ArrayLike | None = None,
    reference_weight: ArrayLike | None = None,
    beta: ArrayLike = 0.1,
    loss_type: str = "sigmoid",
    label_smoothing: ArrayLike = 0.0,
    temperature: ArrayLike = 1.0,
    bias: ArrayLike | None = None,
    weight_layout: str = "dv",
    block_size: int = DEFAULT_BLOCK_SIZE,
    reduction: str = "none",
    return_aux: bool = False,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
    """:func:`jaxloss.dpo_loss` on hidden states, through the fused head (no logits).

    The policy's (and the reference's) sequence log-probabilities come from the blocked head; no
    [tokens, vocabulary] array exists.

    Math: ``dpo_loss(Σ_t m·log π(y_t), ..., beta, loss_type, label_smoothing)`` with
    ``log π(y_t)`` = :func:`linear_log_probs` of each sequence (summed over its mask); for
    ``loss_type="ipo"`` the token counts are the masks' sums.

    Gradient:
      through the head: ``∂ℓ/∂hidden_t = ∂ℓ/∂log π(y_t)·(W_{y_t} − Σ_c p_c W_c)/T`` and
      ``∂ℓ/∂W = Σ_t ∂ℓ/∂log π(y_t)·hidden_t ⊗ (onehot − p)/T``, with ``∂ℓ/∂log π(y_t)`` that of
      :func:`jaxloss.dpo_loss` w.r.t. the sequence (e.g. −β·σ(−z) for a chosen token, sigmoid
      type). The reference gets no gradient when given by hidden states.

    Args:
      chosen_hidden: policy hidden states of the chosen sequences, [..., T, D].
      rejected_hidden: the same for the rejected sequences, [..., T', D].
      weight: the unembedding, [D, V] (``"dv"``) or [V, D] (``"vd"``).
      chosen_labels: integer [..., T] next tokens of the chosen sequences.
      rejected_labels: integer [..., T'] for the rejected ones.
      chosen_mask: bool [..., T], the completion tokens that count (default all).
      rejected_mask: bool [..., T'].
      reference_chosen: the reference's sequence log-probabilities of the chosen, [...].
      reference_rejected: the same for the rejected.
      reference_chosen_hidden: or the reference's hidden states of the chosen, [..., T, D].
      reference_rejected_hidden: and of the rejected.
      reference_weight: and its unembedding.
      beta: as :func:`jaxloss.dpo_loss`.
      loss_type: as :func:`jaxloss.dpo_loss`.
      label_smoothing: as :func:`jaxloss.dpo_loss`.
      temperature: the head's temperature (:func:`linear_log_probs`).
      bias: optional [V] bias of the policy's head (the reference's, if by hidden, is none).
      weight_layout: ``"dv"`` or ``"vd"``.
      block_size: vocabulary columns per block.
      reduction: ``"none"``, ``"mean"`` or ``"sum"`` over pairs.
      return_aux: also return :func:`jaxloss.dpo_loss`'s aux dict.

    Returns:
      One value per pair, [...] (reduced as asked), and the aux dict when asked.

    Examples:
      >>> import jax.numpy as jnp, jaxloss.fused as F
      >>> h = jnp.ones((2, 3, 4)); w = jnp.zeros((4, 8)); y = jnp.zeros((2, 3), int)
      >>> F.linear_dpo_loss(h, h, w, y, y, reference_chosen=jnp.zeros(2),
      ...                   reference_rejected=jnp.zeros(2)).shape
      (2,)
    """
    fn = "linear_dpo_loss"
    head = _head(temperature, bias, weight_layout, block_size)
    pc, pr, nc, nr = _pair_log_probs(
        fn,
        chosen_hidden,
        rejected_hidden,
        weight,
        chosen_labels,
        rejected_labels,
        chosen_mask,
        rejected_mask,
        head,
        False,
    )
    rc, rr = _reference_pair(
        fn,
        reference_chosen,
        reference_rejected,
        reference_chosen_hidden,
        reference_rejected_hidden,
        reference_weight,
        chosen_labels,
        rejected_labels,
        chosen_mask,
        rejected_mask,
        {**head, "bias": None},
    )
    lengths = {"chosen_lengths": nc, "rejected_lengths": nr} if loss_type == "ipo" else {}
    return dpo_loss(
        pc,
        pr,
        rc,
        rr,
        beta=beta,
        loss_type=loss_type,
        label_smoothing=label_smoothing,
        reduction=reduction,
        return_aux=return_aux,
        **lengths,
    )


@overload
def linear_simpo_loss(
    chosen_hidden: ArrayLike,
    rejected_hidden: ArrayLike,
    weight: ArrayLike,
    chosen_labels: ArrayLike,
    rejected_labels: ArrayLike,
    *,
    chosen_mask: ArrayLike | None = ...,
    rejected_mask: ArrayLike | None = ...,
    beta: ArrayLike = ...,
    gamma: ArrayLike = ...,
    label_smoothing: ArrayLike = ...,
    temperature: ArrayLike = ...,
    bias: ArrayLike | None = ...,
    weight_layout: str = ...,
    block_size: int = ...,
    reduction: str = ...,
    return_aux: Literal[False] = ...,
) -> jax.Array: ...


@overload
def linear_simpo_loss(
    chosen_hidden: ArrayLike,
    rejected_hidden: ArrayLike,
    weight: ArrayLike,
    chosen_labels: ArrayLike,
    rejected_labels: ArrayLike,
    *,
    chosen_mask: ArrayLike | None = ...,
    rejected_mask: ArrayLike | None = ...,
    beta: ArrayLike = ...,
    gamma: ArrayLike = ...,
    label_smoothing: ArrayLike = ...,
    temperature: ArrayLike = ...,
    bias: ArrayLike | None = ...,
    weight_layout: str = ...,
    block_size: int = ...,
    reduction: str = ...,
    return_aux: Literal[True],
) -> tuple[jax.Array, dict[str, jax.Array]]: ...


@overload
def linear_simpo_loss(
    chosen_hidden: ArrayLike,
    rejected_hidden: ArrayLike,
    weight: ArrayLike,
    chosen_labels: ArrayLike,
    rejected_labels: ArrayLike,
    *,
    chosen_mask: ArrayLike | None = ...,
    rejected_mask: ArrayLike | None = ...,
    beta: ArrayLike = ...,
    gamma: ArrayLike = ...,
    label_smoothing: ArrayLike = ...,
    temperature: ArrayLike = ...,
    bias: ArrayLike | None = ...,
    weight_layout: str = ...,
    block_size: int = ...,
    reduction: str = ...,
    return_aux: bool,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]: ...


@register(plot=None)
def linear_simpo_loss(
    chosen_hidden: ArrayLike,
    rejected_hidden: ArrayLike,
    weight: ArrayLike,
    chosen_labels: ArrayLike,
    rejected_labels: ArrayLike,
    *,
    chosen_mask: ArrayLike | None = None,
    rejected_mask: ArrayLike | None = None,
    beta: ArrayLike = 0.1,
    gamma: ArrayLike = 0.5,
    label_smoothing: ArrayLike = 0.0,
    temperature: ArrayLike = 1.0,
    bias: ArrayLike | None = None,
    weight_layout: str = "dv",
    block_size: int = DEFAULT_BLOCK_SIZE,
    reduction: str = "none",
    return_aux: bool = False,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
    """:func:`jaxloss.simpo_loss` on hidden states, through the fused head (no logits).

    Length-normalised log-probabilities through the blocked head; no reference model.

    Math: ``simpo_loss(ℓ̄_w, ℓ̄_l, beta, gamma, label_smoothing)`` with ``ℓ̄`` the masked mean of
    :func:`linear_log_probs` over each sequence.

    Gradient:
      ``∂ℓ/∂log π(y_t) = −β·σ(−u)/n_w`` on a chosen token (+ on a rejected one, / n_l), then
      through the head as in :func:`linear_dpo_loss`.

    Args:
      chosen_hidden: hidden states of the chosen sequences, [..., T, D].
      rejected_hidden: of the rejected, [..., T', D].
      weight: the unembedding, [D, V] or [V, D].
      chosen_labels: integer [..., T].
      rejected_labels: integer [..., T'].
      chosen_mask: bool [..., T] (default all).
      rejected_mask: bool [..., T'].
      beta: as :func:`jaxloss.simpo_loss`.
      gamma: as :func:`jaxloss.simpo_loss`.
      label_smoothing: as :func:`jaxloss.simpo_loss`.
      temperature: the head's temperature.
      bias: optional [V] head bias.
      weight_layout: ``"dv"`` or ``"vd"``.
      block_size: vocabulary columns per block.
      reduction: ``"none"``, ``"mean"`` or ``"sum"``.
      return_aux: also return :func:`jaxloss.simpo_loss`'s aux dict.

    Returns:
      One value per pair (reduced as asked), and the aux dict when asked.

    Examples:
      >>> import jax.numpy as jnp, jaxloss.fused as F
      >>> h = jnp.ones((2, 3, 4)); w = jnp.zeros((4, 8)); y = jnp.zeros((2, 3), int)
      >>> F.linear_simpo_loss(h, h, w, y, y).shape
      (2,)
    """
    fn = "linear_simpo_loss"
    head = _head(temperature, bias, weight_layout, block_size)
    lw, ll, _, _ = _pair_log_probs(
        fn,
        chosen_hidden,
        rejected_hidden,
        weight,
        chosen_labels,
        rejected_labels,
        chosen_mask,
        rejected_mask,
        head,
        True,
    )
    return simpo_loss(
        lw,
        ll,
        beta=beta,
        gamma=gamma,
        label_smoothing=label_smoothing,
        reduction=reduction,
        return_aux=return_aux,
    )


@overload
def linear_orpo_loss(
    chosen_hidden: ArrayLike,
    rejected_hidden: ArrayLike,
    weight: ArrayLike,
    chosen_labels: ArrayLike,
    rejected_labels: ArrayLike,
    *,
    chosen_mask: ArrayLike | None = ...,
    rejected_mask: ArrayLike | None = ...,
    beta: ArrayLike = ...,
    temperature: ArrayLike = ...,
    bias: ArrayLike | None = ...,
    weight_layout: str = ...,
    block_size: int = ...,
    reduction: str = ...,
    return_aux: Literal[False] = ...,
) -> jax.Array: ...


@overload
def linear_orpo_loss(
    chosen_hidden: ArrayLike,
    rejected_hidden: ArrayLike,
    weight: ArrayLike,
    chosen_labels: ArrayLike,
    rejected_labels: ArrayLike,
    *,
    chosen_mask: ArrayLike | None = ...,
    rejected_mask: ArrayLike | None = ...,
    beta: ArrayLike = ...,
    temperature: ArrayLike = ...,
    bias: ArrayLike | None = ...,
    weight_layout: str = ...,
    block_size: int = ...,
    reduction: str = ...,
    return_aux: Literal[True],
) -> tuple[jax.Array, dict[str, jax.Array]]: ...


@overload
def linear_orpo_loss(
    chosen_hidden: ArrayLike,
    rejected_hidden: ArrayLike,
    weight: ArrayLike,
    chosen_labels: ArrayLike,
    rejected_labels: ArrayLike,
    *,
    chosen_mask: ArrayLike | None = ...,
    rejected_mask: ArrayLike | None = ...,
    beta: ArrayLike = ...,
    temperature: ArrayLike = ...,
    bias: ArrayLike | None = ...,
    weight_layout: str = ...,
    block_size: int = ...,
    reduction: str = ...,
    return_aux: bool,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]: ...


@register(plot=None)
def linear_orpo_loss(
    chosen_hidden: ArrayLike,
    rejected_hidden: ArrayLike,
    weight: ArrayLike,
    chosen_labels: ArrayLike,
    rejected_labels: ArrayLike,
    *,
    chosen_mask: ArrayLike | None = None,
    rejected_mask: ArrayLike | None = None,
    beta: ArrayLike = 0.1,
    temperature: ArrayLike = 1.0,
    bias: ArrayLike | None = None,
    weight_layout: str = "dv",
    block_size: int = DEFAULT_BLOCK_SIZE,
    reduction: str = "none",
    return_aux: bool = False,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
    """:func:`jaxloss.orpo_loss` on hidden states, through the fused head (no logits).

    NLL of the chosen plus λ·(odds-ratio loss), with length-normalised log-probabilities through
    the blocked head.

    Math: ``orpo_loss(ℓ̄_w, ℓ̄_l, beta)`` with ``ℓ̄`` the masked mean of :func:`linear_log_probs`
    (so the NLL term is the chosen mask's token-mean NLL: pass a mask covering prompt and
    response for TRL's convention).

    Gradient:
      ``∂ℓ/∂ℓ̄_w = −1 − λσ(−L)/(1 − e^{ℓ̄_w})``, ``∂ℓ/∂ℓ̄_l = λσ(−L)/(1 − e^{ℓ̄_l})``, each divided
      by its sequence's token count per token, then through the head.

    Args:
      chosen_hidden: hidden states of the chosen sequences, [..., T, D].
      rejected_hidden: of the rejected, [..., T', D].
      weight: the unembedding, [D, V] or [V, D].
      chosen_labels: integer [..., T].
      rejected_labels: integer [..., T'].
      chosen_mask: bool [..., T] (default all).
      rejected_mask: bool [..., T'].
      beta: λ, as :func:`jaxloss.orpo_loss`.
      temperature: the head's temperature.
      bias: optional [V] head bias.
      weight_layout: ``"dv"`` or ``"vd"``.
      block_size: vocabulary columns per block.
      reduction: ``"none"``, ``"mean"`` or ``"sum"``.
      return_aux: also return :func:`jaxloss.orpo_loss`'s aux dict.

    Returns:
      One value per pair (reduced as asked), and the aux dict when asked.

    Examples:
      >>> import jax.numpy as jnp, jaxloss.fused as F
      >>> h = jnp.ones((2, 3, 4)); w = jnp.zeros((4, 8)); y = jnp.zeros((2, 3), int)
      >>> F.linear_orpo_loss(h, h, w, y, y).shape
      (2,)
    """
    fn = "linear_orpo_loss"
    head = _head(temperature, bias, weight_layout, block_size)
    lw, ll, _, _ = _pair_log_probs(
        fn,
        chosen_hidden,
        rejected_hidden,
        weight,
        chosen_labels,
        rejected_labels,
        chosen_mask,
        rejected_mask,
        head,
        True,
    )
    return orpo_loss(lw, ll, beta=beta, reduction=reduction, return_aux=return_aux)


@overload
def linear_kto_loss(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    desirable: ArrayLike,
    *,
    mask: ArrayLike | None = ...,
    reference_log_probs: ArrayLike | None = ...,
    reference_hidden: ArrayLike | None = ...,
    reference_weight: ArrayLike | None = ...,
    reference_point: ArrayLike | None = ...,
    kl_policy_log_probs: ArrayLike | None = ...,
    kl_reference_log_probs: ArrayLike | None = ...,
    beta: ArrayLike = ...,
    desirable_weight: ArrayLike = ...,
    undesirable_weight: ArrayLike = ...,
    temperature: ArrayLike = ...,
    bias: ArrayLike | None = ...,
    weight_layout: str = ...,
    block_size: int = ...,
    reduction: str = ...,
    return_aux: Literal[False] = ...,
) -> jax.Array: ...


@overload
def linear_kto_loss(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    desirable: ArrayLike,
    *,
    mask: ArrayLike | None = ...,
    reference_log_probs: ArrayLike | None = ...,
    reference_hidden: ArrayLike | None = ...,
    reference_weight: ArrayLike | None = ...,
    reference_point: ArrayLike | None = ...,
    kl_policy_log_probs: ArrayLike | None = ...,
    kl_reference_log_probs: ArrayLike | None = ...,
    beta: ArrayLike = ...,
    desirable_weight: ArrayLike = ...,
    undesirable_weight: ArrayLike = ...,
    temperature: ArrayLike = ...,
    bias: ArrayLike | None = ...,
    weight_layout: str = ...,
    block_size: int = ...,
    reduction: str = ...,
    return_aux: Literal[True],
) -> tuple[jax.Array, dict[str, jax.Array]]: ...


@overload
def linear_kto_loss(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    desirable: ArrayLike,
    *,
    mask: ArrayLike | None = ...,
    reference_log_probs: ArrayLike | None = ...,
    reference_hidden: ArrayLike | None = ...,
    reference_weight: ArrayLike | None = ...,
    reference_point: ArrayLike | None = ...,
    kl_policy_log_probs: ArrayLike | None = ...,
    kl_reference_log_probs: ArrayLike | None = ...,
    beta: ArrayLike = ...,
    desirable_weight: ArrayLike = ...,
    undesirable_weight: ArrayLike = ...,
    temperature: ArrayLike = ...,
    bias: ArrayLike | None = ...,
    weight_layout: str = ...,
    block_size: int = ...,
    reduction: str = ...,
    return_aux: bool,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]: ...


@register(plot=None)
def linear_kto_loss(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    desirable: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    reference_log_probs: ArrayLike | None = None,
    reference_hidden: ArrayLike | None = None,
    reference_weight: ArrayLike | None = None,
    reference_point: ArrayLike | None = None,
    kl_policy_log_probs: ArrayLike | None = None,
    kl_reference_log_probs: ArrayLike | None = None,
    beta: ArrayLike = 0.1,
    desirable_weight: ArrayLike = 1.0,
    undesirable_weight: ArrayLike = 1.0,
    temperature: ArrayLike = 1.0,
    bias: ArrayLike | None = None,
    weight_layout: str = "dv",
    block_size: int = DEFAULT_BLOCK_SIZE,
    reduction: str = "none",
    return_aux: bool = False,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
    """:func:`jaxloss.kto_loss` on hidden states, through the fused head (no logits).

    Summed log-probabilities through the blocked head; the reference by log-probabilities or by
    its hidden states.

    Math: ``kto_loss(Σ_t m·log π(y_t), Σ_t m·log π_ref(y_t), desirable, ...)``.

    Gradient:
      ``∂ℓ/∂log π(y_t)`` is :func:`jaxloss.kto_loss`'s ``∂ℓ/∂ρ`` on every kept token of the
      example, then through the head; none into the reference or ``z₀``.

    Args:
      hidden: policy hidden states, [..., T, D].
      weight: the unembedding, [D, V] or [V, D].
      labels: integer [..., T].
      desirable: bool [...], True for a desirable example.
      mask: bool [..., T] (default all).
      reference_log_probs: the reference's sequence log-probabilities, [...].
      reference_hidden: or the reference's hidden states, [..., T, D].
      reference_weight: and its unembedding.
      reference_point: as :func:`jaxloss.kto_loss`.
      kl_policy_log_probs: as :func:`jaxloss.kto_loss`.
      kl_reference_log_probs: as :func:`jaxloss.kto_loss`.
      beta: as :func:`jaxloss.kto_loss`.
      desirable_weight: λ_D.
      undesirable_weight: λ_U.
      temperature: the head's temperature.
      bias: optional [V] head bias.
      weight_layout: ``"dv"`` or ``"vd"``.
      block_size: vocabulary columns per block.
      reduction: ``"none"``, ``"mean"`` or ``"sum"``.
      return_aux: also return :func:`jaxloss.kto_loss`'s aux dict.

    Returns:
      One value per example (reduced as asked), and the aux dict when asked.

    Examples:
      >>> import jax.numpy as jnp, jaxloss.fused as F
      >>> h = jnp.ones((2, 3, 4)); w = jnp.zeros((4, 8)); y = jnp.zeros((2, 3), int)
      >>> F.linear_kto_loss(h, w, y, jnp.array([True, False]), reference_log_probs=jnp.zeros(2),
      ...                   reference_point=0.0).shape
      (2,)
    """
    fn = "linear_kto_loss"
    head = _head(temperature, bias, weight_layout, block_size)
    h = _checks.check_floating(fn, "hidden", hidden)
    v = _check_head(fn, "hidden", h, weight, weight_layout)
    y = _labels(fn, "labels", labels, h)
    m = _mask(fn, "mask", mask, y)
    _check_labels_in(fn, "labels", y, m, v)
    pol = sequence_log_probs(_token_log_probs(h, weight, y, m, head), m)
    if (reference_log_probs is None) == (reference_hidden is None or reference_weight is None):
        raise ValueError(
            f"jaxloss.{fn}: give the reference as `reference_log_probs` or as `reference_hidden` "
            "and `reference_weight`: exactly one of the two."
        )
    if reference_log_probs is None:
        rh = jax.lax.stop_gradient(_checks.check_floating(fn, "reference_hidden", reference_hidden))
        rw = jax.lax.stop_gradient(reference_weight)
        ref: ArrayLike = sequence_log_probs(
            _token_log_probs(rh, rw, y, m, {**head, "bias": None}), m
        )
    else:
        ref = reference_log_probs
    return kto_loss(
        pol,
        ref,
        desirable,
        beta=beta,
        desirable_weight=desirable_weight,
        undesirable_weight=undesirable_weight,
        reference_point=reference_point,
        kl_policy_log_probs=kl_policy_log_probs,
        kl_reference_log_probs=kl_reference_log_probs,
        reduction=reduction,
        return_aux=return_aux,
    )
