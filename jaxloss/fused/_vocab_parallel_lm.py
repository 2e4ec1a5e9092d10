"""Vocab-parallel per-token log-probabilities, entropy and distillation (inside ``shard_map``).

Device i of ``axis_name`` holds vocabulary columns [i·V_local, (i+1)·V_local) and runs the
blocked kernel on its shard, giving lse_i, nll_i = lse_i − z_y (on the label's owner) and the
local entropy H_i = lse_i − E_i[z]. The Megatron combination of ``_vocab_parallel.py`` makes
lse and nll global; the entropy follows from the local expectations, with weights
w_i = exp(lse_i − lse) (Σ_i w_i = 1):

  E[z] = Σ_i w_i E_i[z]   ⇒   H = lse − E[z] = Σ_i w_i (H_i + lse − lse_i),

one more [N]-vector ``psum``. Gradients are autodiff of this composition over the kernel's own
backward: no communication beyond those [N] all-reduces.

Distillation runs the row-chunked kernel of ``_distill_kernel.py`` with the vocabulary axis
named: per chunk of tokens, the row maxima of both models' logits are ``pmax``-combined and the
sums (Σ exp, the divergence, Σ ψ, the label's log-probability) ``psum``-combined — a few
[rows]-vector all-reduces per chunk, O(N) in all.
"""

from __future__ import annotations

from typing import Any, Literal, overload

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from .. import _lm, _reduce
from ._distill_kernel import distill_impl, finish_distillation, prepare_distillation
from ._kernel import linear_lse_entropy_stats, linear_lse_stats
from ._log_probs import log_probs_from_stats, tempered
from ._prepare import DEFAULT_BLOCK_SIZE, prepare
from ._vocab_parallel import _axis, _global_stats, _local_label_ok

__all__ = ["vocab_parallel_linear_distillation", "vocab_parallel_linear_log_probs"]


@overload
def vocab_parallel_linear_log_probs(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    *,
    axis_name: Any,
    temperature: ArrayLike = ...,
    bias: ArrayLike | None = ...,
    weight_layout: str = ...,
    block_size: int = ...,
    logit_soft_cap: float | None = ...,
    ignore_index: int | None = ...,
    return_entropy: Literal[False] = ...,
) -> jax.Array: ...


@overload
def vocab_parallel_linear_log_probs(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    *,
    axis_name: Any,
    temperature: ArrayLike = ...,
    bias: ArrayLike | None = ...,
    weight_layout: str = ...,
    block_size: int = ...,
    logit_soft_cap: float | None = ...,
    ignore_index: int | None = ...,
    return_entropy: Literal[True],
) -> tuple[jax.Array, jax.Array]: ...


@overload
def vocab_parallel_linear_log_probs(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    *,
    axis_name: Any,
    temperature: ArrayLike = ...,
    bias: ArrayLike | None = ...,
    weight_layout: str = ...,
    block_size: int = ...,
    logit_soft_cap: float | None = ...,
    ignore_index: int | None = ...,
    return_entropy: bool,
) -> jax.Array | tuple[jax.Array, jax.Array]: ...


def vocab_parallel_linear_log_probs(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    *,
    axis_name: Any,
    temperature: ArrayLike = 1.0,
    bias: ArrayLike | None = None,
    weight_layout: str = "dv",
    block_size: int = DEFAULT_BLOCK_SIZE,
    logit_soft_cap: float | None = None,
    ignore_index: int | None = None,
    return_entropy: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """:func:`linear_log_probs` with the unembedding sharded over the vocabulary (in shard_map).

    Math: exactly :func:`linear_log_probs` of the full (concatenated) weight: log p_y =
    z_y/T − lse(z/T) and, when asked, H = lse − E_p[z/T], combined across the shards of
    ``axis_name`` from per-shard statistics by [N]-sized ``pmax``/``psum`` (see the module
    notes). Neither [N, V] nor [N, V_local] logits are held.

    Gradient: that of :func:`linear_log_probs` for any per-token cotangents; each device gets
    the gradient of its own weight (and bias) shard, and ``hidden``'s is summed over
    ``axis_name`` (by shard_map's transpose when ``hidden`` is replicated over that axis).

    Args:
      hidden: [..., D], the same on every device of ``axis_name`` (it may be sharded over other
        mesh axes, e.g. data parallel).
      weight: this device's shard, [D, V_local] (``"dv"``) or [V_local, D] (``"vd"``), as
        ``P(None, axis_name)`` / ``P(axis_name, None)`` gives.
      labels: integer [...] global class ids in [0, V_local · axis_size) or ``ignore_index``.
      axis_name: the mesh axis the vocabulary is sharded over.
      temperature: concrete T > 0 (default 1).
      bias: optional [V_local] shard of the bias.
      weight_layout: ``"dv"`` (default) or ``"vd"``.
      block_size: vocabulary columns per kernel block on this shard (static).
      logit_soft_cap: optional static cap > 0 on the raw logits (before the temperature).
      ignore_index: optional label value whose tokens give 0.
      return_entropy: also return the entropy per token (default False).

    Returns:
      Per-token log p_y (the shape of ``labels``), replicated over ``axis_name``; with
      ``return_entropy=True`` the pair ``(log_probs, entropy)``. Labels are not range-checked
      (each device sees only its slice): one outside the vocabulary gives NaN. Reduce with
      :func:`jaxloss.mean` / :func:`jaxloss.mean_parts` (per-token ``weights=`` there).

    Examples:
      >>> import functools, jax, jax.numpy as jnp, jaxloss.fused as F
      >>> from jax.sharding import Mesh, PartitionSpec as P
      >>> mesh = Mesh(jax.devices()[:1], ("v",))
      >>> x = jnp.ones((2, 4)); w = jnp.zeros((4, 8)); y = jnp.array([1, 7])
      >>> f = jax.shard_map(
      ...     functools.partial(F.vocab_parallel_linear_log_probs, axis_name="v"),
      ...     mesh=mesh, in_specs=(P(), P(None, "v"), P()), out_specs=P())
      >>> [round(v, 4) for v in f(x, w, y).tolist()]                 # −log 8
      [-2.0794, -2.0794]
    """
    fn = "vocab_parallel_linear_log_probs"
    _, index = _axis(fn, axis_name)
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
        check_label_range=False,
    )
    offset = index * p.v
    x, b, cfg = tempered(p.x, p.b, p.cfg, t)
    local = p.y - offset
    if return_entropy:
        lse_i, nll_i, _, h_i = linear_lse_entropy_stats(x, p.w, b, local, None, cfg)
    else:
        lse_i, nll_i, _ = linear_lse_stats(x, p.w, b, local, None, cfg)
    n = p.y.shape[0]
    ok_i = _local_label_ok(p, offset, p.v)
    k_i = jnp.full((n,), p.v, p.acc)
    lse, nll, _, _ = _global_stats(axis_name, lse_i, nll_i, ok_i, None, k_i)
    label_ok = lax.psum(ok_i.astype(jnp.int32), axis_name) > 0
    ent = None
    if return_entropy:
        w_i = jnp.exp(lse_i - lse)
        ent = lax.psum(w_i * (h_i + (lse - lse_i)), axis_name)
    logp, ent = log_probs_from_stats(nll, ent, label_ok, p.y, ignore_index, p.batch_shape)
    return (logp, ent) if return_entropy else logp


def vocab_parallel_linear_distillation(
    student_hidden: Any,
    student_weight: Any,
    teacher_hidden: Any,
    teacher_weight: Any,
    *,
    axis_name: Any,
    divergence: str = "forward_kl",
    beta: Any = 0.5,
    temperature: Any = 1.0,
    labels: Any = None,
    hard_label_weight: Any = 0.0,
    ignore_index: int | None = None,
    teacher_gradient: bool = False,
    weight_layout: str = "dv",
    block_size: int = DEFAULT_BLOCK_SIZE,
    weights: Any = None,
    reduction: str = "none",
) -> jax.Array:
    """:func:`linear_distillation` with both unembeddings sharded over the vocabulary (shard_map).

    Math: exactly :func:`linear_distillation` of the full (concatenated) weights: the forward
    KL, reverse KL or generalized JSD between the tempered teacher and student softmaxes, mixed
    with the hard-label cross-entropy when ``hard_label_weight`` > 0. Per chunk of tokens, each
    device forms its columns' logits of both models; the row maxima are combined with ``pmax``
    and the per-token sums (Σ exp, the divergence's terms, the label's log-probability) with
    ``psum`` (Megatron's combination, O(N) communication). Neither [N, V] nor [N, V_local]
    logits are held: a chunk is about N·block_size local logits (at least 256 token rows).

    Gradient: that of :func:`linear_distillation` for any cotangent; each device gets the
    gradient of its own weight shard(s), and the hidden states' are summed over ``axis_name``
    (by shard_map's transpose when they are replicated over that axis). The teacher is a
    constant unless ``teacher_gradient=True``. Reverse mode only.

    Args:
      student_hidden: floating [..., Ds], the same on every device of ``axis_name``.
      student_weight: this device's shard, [Ds, V_local] (``"dv"``) or [V_local, Ds] (``"vd"``),
        as ``P(None, axis_name)`` / ``P(axis_name, None)`` gives.
      teacher_hidden: floating [..., Dt], the student's token shape.
      teacher_weight: this device's shard of the teacher's unembedding, sharded like the
        student's (the same V_local columns).
      axis_name: the mesh axis the vocabulary is sharded over.
      divergence: ``"forward_kl"`` (default), ``"reverse_kl"`` or ``"jsd"``.
      beta: concrete β in [0, 1] for ``"jsd"`` (default 0.5).
      temperature: concrete T > 0 (default 1).
      labels: optional integer hard labels of the token shape, global ids in
        [0, V_local · axis_size).
      hard_label_weight: α in [0, 1] (default 0; > 0 needs ``labels``).
      ignore_index: optional label value whose tokens give 0 and are not counted.
      teacher_gradient: let gradients reach the teacher's inputs (default False).
      weight_layout: ``"dv"`` (default) or ``"vd"`` for both weights.
      block_size: sets the chunk: about N·block_size local logits, at least 256 token rows
        (static; clamped to V_local).
      weights: optional per-token weights ≥ 0 broadcastable to the token shape.
      reduction: ``"none"`` (default), ``"mean"`` (weighted mean over the kept tokens of this
        call; 0 with a zero gradient when none is kept) or ``"sum"``.

    Returns:
      Per-token values of the token shape (or a scalar), replicated over ``axis_name``, float32
      (float64 for float64 inputs). Traced labels out of range give NaN.

    Examples:
      >>> import functools, jax, jax.numpy as jnp, jaxloss.fused as F
      >>> from jax.sharding import Mesh, PartitionSpec as P
      >>> mesh = Mesh(jax.devices()[:1], ("v",))
      >>> xs = jnp.ones((3, 4)); ws = jnp.zeros((4, 6)); xt = jnp.ones((3, 2))
      >>> wt = jnp.zeros((2, 6)).at[:, 0].set(1.0)
      >>> f = jax.shard_map(
      ...     functools.partial(F.vocab_parallel_linear_distillation, axis_name="v"),
      ...     mesh=mesh, in_specs=(P(), P(None, "v"), P(), P(None, "v")), out_specs=P())
      >>> [round(v, 4) for v in f(xs, ws, xt, wt).tolist()]  # as linear_distillation
      [0.4678, 0.4678, 0.4678]
    """
    fn = "vocab_parallel_linear_distillation"
    _reduce.check_reduction(fn, reduction)
    size, index = _axis(fn, axis_name)
    prep = prepare_distillation(
        fn,
        student_hidden,
        student_weight,
        teacher_hidden,
        teacher_weight,
        divergence=divergence,
        beta=beta,
        temperature=temperature,
        labels=labels,
        hard_label_weight=hard_label_weight,
        ignore_index=ignore_index,
        teacher_gradient=teacher_gradient,
        weight_layout=weight_layout,
        block_size=block_size,
        weights=weights,
        axis=axis_name,
        shards=size,
    )
    v_local = int(prep.ws.shape[1] if weight_layout == "dv" else prep.ws.shape[0])
    return finish_distillation(prep, reduction, distill_impl, index * v_local)
