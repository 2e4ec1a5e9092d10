"""Fused per-token log-probabilities (and entropy) of a language-model head.

``linear_log_probs(hidden, weight, labels)`` equals ``jaxloss.token_log_probs(hidden @ weight
(+ bias), labels)`` without the [tokens, vocabulary] logits: the blocked kernel of ``_kernel.py``
gives lse − z_y (its ``nll``) and, with ``return_entropy``, the entropy accumulated online in the
same pass. Temperature T enters as the logits of the scaled inputs: z/T = (x/T) W + b/T, and a
soft cap c on the raw logits is the cap c/T on the tempered ones (c·tanh(z/c)/T =
(c/T)·tanh((z/T)/(c/T))), so the kernel is unchanged.
"""

from __future__ import annotations

from typing import Any, Literal, overload

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from .. import _lm, _reduce
from .._core.registry import register
from ._kernel import linear_lse_entropy_stats, linear_lse_stats
from ._prepare import DEFAULT_BLOCK_SIZE, prepare

__all__ = ["linear_log_probs"]


def tempered(x: jax.Array, b: Any, cfg: Any, t: float) -> tuple[jax.Array, Any, Any]:
    """(x/T, b/T, cfg with cap/T): the kernel's inputs for the logits z/T."""
    if t == 1.0:
        return x, b, cfg
    xs = _lm.scale_by_temperature(x, t)
    bs = None if b is None else _lm.scale_by_temperature(b, t)
    cap = None if cfg.cap is None else cfg.cap / t
    return xs, bs, cfg._replace(cap=cap)


@overload
def linear_log_probs(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    *,
    temperature: ArrayLike = ...,
    bias: ArrayLike | None = ...,
    weight_layout: str = ...,
    block_size: int = ...,
    logit_soft_cap: float | None = ...,
    ignore_index: int | None = ...,
    return_entropy: Literal[False] = ...,
    weights: ArrayLike | None = ...,
    reduction: str = ...,
) -> jax.Array: ...


@overload
def linear_log_probs(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    *,
    temperature: ArrayLike = ...,
    bias: ArrayLike | None = ...,
    weight_layout: str = ...,
    block_size: int = ...,
    logit_soft_cap: float | None = ...,
    ignore_index: int | None = ...,
    return_entropy: Literal[True],
    weights: ArrayLike | None = ...,
    reduction: str = ...,
) -> tuple[jax.Array, jax.Array]: ...


@overload
def linear_log_probs(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    *,
    temperature: ArrayLike = ...,
    bias: ArrayLike | None = ...,
    weight_layout: str = ...,
    block_size: int = ...,
    logit_soft_cap: float | None = ...,
    ignore_index: int | None = ...,
    return_entropy: bool,
    weights: ArrayLike | None = ...,
    reduction: str = ...,
) -> jax.Array | tuple[jax.Array, jax.Array]: ...


@register(plot=None)
def linear_log_probs(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    *,
    temperature: ArrayLike = 1.0,
    bias: ArrayLike | None = None,
    weight_layout: str = "dv",
    block_size: int = DEFAULT_BLOCK_SIZE,
    logit_soft_cap: float | None = None,
    ignore_index: int | None = None,
    return_entropy: bool = False,
    weights: ArrayLike | None = None,
    reduction: str = "none",
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Per-token log p(label) of softmax((hidden @ weight + bias) / T), without the logits.

    Math (z = hidden @ W + b, optionally soft-capped z ← cap·tanh(z/cap), then divided by T):
      log p_y = z_y/T − lse(z/T),    H = lse(z/T) − Σ_c softmax(z/T)_c z_c/T.
    Exactly :func:`jaxloss.token_log_probs` of the logits (same options). The vocabulary is
    streamed in blocks of ``block_size`` columns (an online log-sum-exp, the entropy accumulated
    in the same pass); the backward recomputes each block. No [N, V] array exists in the forward
    or the backward: XLA temporaries of value-and-grad are about one float32 [N, block] tile
    plus O(N·D) (asserted in tests/test_fused_lm.py from XLA's memory analysis).

    Gradient (any cotangent g per token, not only a mean; p = softmax(z/T), δ = [c = y]):
      ∂(g·log p_y)/∂z_c = g (δ − p_c)/T,    ∂(h·H)/∂z_c = −h p_c (log p_c + H)/T,
    times (1 − (z_c/cap)²) with a soft cap; ∂/∂hidden = Σ_c ∂/∂z_c W_c, ∂/∂W_c = hidden ∂/∂z_c,
    ∂/∂b_c = Σ_n ∂/∂z_nc. Ignored tokens: 0. Reverse mode only (a ``jax.custom_vjp``).

    Args:
      hidden: floating [..., D].
      weight: [D, V] (``weight_layout="dv"``) or [V, D] (``"vd"``).
      labels: integer [...] (``hidden``'s shape without its last axis) in [0, V) or
        ``ignore_index``.
      temperature: concrete T > 0 (default 1).
      bias: optional floating [V].
      weight_layout: ``"dv"`` (default) or ``"vd"``, as in :func:`linear_cross_entropy`.
      block_size: vocabulary columns per block (static; clamped to V).
      logit_soft_cap: optional static cap > 0 on the raw logits (before the temperature).
      ignore_index: optional label value whose tokens give 0 and are not counted by
        ``reduction``.
      return_entropy: also return the entropy of softmax(z/T) per token (default False).
      weights: optional per-token weights ≥ 0 broadcastable to ``labels``' shape.
      reduction: ``"none"`` (default: w·log p per token), ``"mean"`` (Σ w·log p / Σ w over kept
        tokens; 0 with a zero gradient when none is kept) or ``"sum"``.

    Returns:
      log p_y of ``labels``' shape (or a scalar), float32 (float64 for float64 inputs); with
      ``return_entropy=True`` the pair ``(log_probs, entropy)``, weighted and reduced alike.
      Concrete labels out of range raise a ValueError; traced ones give NaN.

    Examples:
      >>> import jax.numpy as jnp, jaxloss.fused as F
      >>> x = jnp.ones((2, 4)); w = jnp.zeros((4, 8)); y = jnp.array([1, 7])
      >>> lp, h = F.linear_log_probs(x, w, y, block_size=4, return_entropy=True)
      >>> [round(v, 4) for v in lp.tolist()], [round(v, 4) for v in h.tolist()]
      ([-2.0794, -2.0794], [2.0794, 2.0794])
    """
    fn = "linear_log_probs"
    _reduce.check_reduction(fn, reduction)
    t = _lm.static_temperature(fn, temperature)
    p = prepare(
        fn,
        hidden,
        weight,
        labels,
        bias=bias,
        weight_layout=weight_layout,
        block_size=block_size,
        label_smoothing=0.0,
        z_loss=0.0,
        logit_soft_cap=logit_soft_cap,
        ignore_index=ignore_index,
        where=None,
    )
    w = _lm.token_weights(fn, weights, p.batch_shape, p.acc)
    logp, ent = _log_probs_jit(
        p.x, p.w, p.b, p.y, (p.cfg, t, p.v, p.batch_shape, ignore_index, bool(return_entropy))
    )
    kept = None if ignore_index is None else p.y.reshape(p.batch_shape) != ignore_index
    out = _lm.reduce_tokens(logp, reduction, w, kept)
    if not return_entropy:
        return out
    return out, _lm.reduce_tokens(ent, reduction, w, kept)


def log_probs_from_stats(nll, ent, label_ok, y, ignore_index, batch_shape):
    """Per-token (log p_y, entropy) from the kernel statistics: NaN for bad labels, 0 ignored."""
    logp = jnp.where(label_ok, -nll, jnp.nan)
    if ignore_index is not None:
        ignored = y == ignore_index
        logp = jnp.where(ignored, 0, logp)
        ent = None if ent is None else jnp.where(ignored, 0, ent)
    return logp.reshape(batch_shape), None if ent is None else ent.reshape(batch_shape)


def _log_probs_impl(x, w, b, y, statics):
    cfg, t, v, batch_shape, ignore_index, with_entropy = statics
    xs, bs, cfg = tempered(x, b, cfg, t)
    if with_entropy:
        _, nll, _, ent = linear_lse_entropy_stats(xs, w, bs, y, None, cfg)
    else:
        _, nll, _ = linear_lse_stats(xs, w, bs, y, None, cfg)
        ent = None
    ok = (y >= 0) & (y < v)
    return log_probs_from_stats(nll, ent, ok, y, ignore_index, batch_shape)


_log_probs_jit = jax.jit(_log_probs_impl, static_argnums=4)
