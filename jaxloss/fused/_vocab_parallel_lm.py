"""Vocab-parallel per-token log-probabilities and entropy (call inside ``shard_map``).

Device i of ``axis_name`` holds vocabulary columns [i·V_local, (i+1)·V_local) and runs the
blocked kernel on its shard, giving lse_i, nll_i = lse_i − z_y (on the label's owner) and the
local entropy H_i = lse_i − E_i[z]. The Megatron combination of ``_vocab_parallel.py`` makes
lse and nll global; the entropy follows from the local expectations, with weights
w_i = exp(lse_i − lse) (Σ_i w_i = 1):

  E[z] = Σ_i w_i E_i[z]   ⇒   H = lse − E[z] = Σ_i w_i (H_i + lse − lse_i),

one more [N]-vector ``psum``. Gradients are autodiff of this composition over the kernel's own
backward: no communication beyond those [N] all-reduces.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from jax import lax

from .. import _lm
from ._kernel import linear_lse_entropy_stats, linear_lse_stats
from ._log_probs import log_probs_from_stats, tempered
from ._prepare import DEFAULT_BLOCK_SIZE, prepare
from ._vocab_parallel import _axis, _global_stats, _local_label_ok

__all__ = ["vocab_parallel_linear_log_probs"]


def vocab_parallel_linear_log_probs(
    hidden: Any,
    weight: Any,
    labels: Any,
    *,
    axis_name: Any,
    temperature: Any = 1.0,
    bias: Any = None,
    weight_layout: str = "dv",
    block_size: int = DEFAULT_BLOCK_SIZE,
    logit_soft_cap: float | None = None,
    ignore_index: int | None = None,
    return_entropy: bool = False,
) -> Any:
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
