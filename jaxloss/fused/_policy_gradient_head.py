"""The policy-gradient objective fused with the language-model head (conventions:
``jaxloss/fused/_post_training.py``)."""

from __future__ import annotations

from typing import Any, Literal, overload

import jax
from jax.typing import ArrayLike

from .._core import checks as _checks
from .._core.registry import register
from .._policy_gradient import policy_gradient_loss
from ._heads import _check_head, _check_labels_in, _head, _labels, _mask, _token_log_probs
from ._prepare import DEFAULT_BLOCK_SIZE

__all__ = ["linear_policy_gradient_loss"]


@overload
def linear_policy_gradient_loss(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    mask: ArrayLike,
    old_log_probs: ArrayLike,
    advantages: ArrayLike,
    *,
    temperature: ArrayLike = ...,
    bias: ArrayLike | None = ...,
    weight_layout: str = ...,
    block_size: int = ...,
    return_aux: Literal[False] = ...,
    **objective: Any,
) -> jax.Array: ...


@overload
def linear_policy_gradient_loss(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    mask: ArrayLike,
    old_log_probs: ArrayLike,
    advantages: ArrayLike,
    *,
    temperature: ArrayLike = ...,
    bias: ArrayLike | None = ...,
    weight_layout: str = ...,
    block_size: int = ...,
    return_aux: Literal[True],
    **objective: Any,
) -> tuple[jax.Array, dict[str, jax.Array]]: ...


@overload
def linear_policy_gradient_loss(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    mask: ArrayLike,
    old_log_probs: ArrayLike,
    advantages: ArrayLike,
    *,
    temperature: ArrayLike = ...,
    bias: ArrayLike | None = ...,
    weight_layout: str = ...,
    block_size: int = ...,
    return_aux: bool,
    **objective: Any,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]: ...


@register(plot=None)
def linear_policy_gradient_loss(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    mask: ArrayLike,
    old_log_probs: ArrayLike,
    advantages: ArrayLike,
    *,
    temperature: ArrayLike = 1.0,
    bias: ArrayLike | None = None,
    weight_layout: str = "dv",
    block_size: int = DEFAULT_BLOCK_SIZE,
    **objective: Any,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
    """:func:`jaxloss.policy_gradient_loss` on hidden states, through the fused head (no logits).

    The policy's token log-probabilities come from the blocked head (PPO-clip, GRPO, DAPO,
    Dr. GRPO, GSPO); no [tokens, vocabulary] array exists.

    Math: ``policy_gradient_loss(linear_log_probs(hidden, weight, labels), old_log_probs,
    advantages, mask, **objective)``; the sampling temperature belongs in ``temperature`` (TRL
    divides the logits by it).

    Gradient:
      ``∂ℓ/∂log π(y_t)`` of :func:`jaxloss.policy_gradient_loss` (−r·Â/L unclipped, 0 clipped,
      for ``"sequence_mean"``), then through the head as in :func:`linear_dpo_loss`.

    Args:
      hidden: hidden states, [..., T, D].
      weight: the unembedding, [D, V] or [V, D].
      labels: integer [..., T], the sampled tokens.
      mask: bool [..., T], the completion tokens.
      old_log_probs: log π_old of the sampled tokens, [..., T].
      advantages: Â per sequence [...] or per token [..., T].
      temperature: the sampling temperature the logits are divided by.
      bias: optional [V] head bias.
      weight_layout: ``"dv"`` or ``"vd"``.
      block_size: vocabulary columns per block.
      **objective: the keyword arguments of :func:`jaxloss.policy_gradient_loss` (``clip_low``,
        ``clip_high``, ``reference_log_probs``, ``kl_coef``, ``kl_estimator``, ``importance``,
        ``aggregation``, ``max_length``, ``reduction``, ``return_aux``).

    Returns:
      What :func:`jaxloss.policy_gradient_loss` returns: one value per sequence (reduced as
      asked), and the aux dict when asked.

    Examples:
      >>> import jax.numpy as jnp, jaxloss.fused as F
      >>> h = jnp.ones((2, 3, 4)); w = jnp.zeros((4, 8)); y = jnp.zeros((2, 3), int)
      >>> m = jnp.ones((2, 3), bool); old = jnp.full((2, 3), -jnp.log(8.0))
      >>> F.linear_policy_gradient_loss(h, w, y, m, old, jnp.array([1.0, -1.0])).round(4).tolist()
      [-1.0, 1.0]
    """
    fn = "linear_policy_gradient_loss"
    head = _head(temperature, bias, weight_layout, block_size)
    h = _checks.check_floating(fn, "hidden", hidden)
    v = _check_head(fn, "hidden", h, weight, weight_layout)
    y = _labels(fn, "labels", labels, h)
    m = _mask(fn, "mask", mask, y)
    _check_labels_in(fn, "labels", y, m, v)
    lp = _token_log_probs(h, weight, y, m, head)
    return policy_gradient_loss(lp, old_log_probs, advantages, m, **objective)
