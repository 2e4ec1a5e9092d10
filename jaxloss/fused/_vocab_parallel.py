"""Vocab-parallel cross-entropy for a vocabulary-sharded unembedding (call inside ``shard_map``).

Each device along ``axis_name`` holds a contiguous slice of the vocabulary: columns
``[i·V_local, (i+1)·V_local)`` of W on the device with ``axis_index(axis_name) == i``. Each device
computes three per-token statistics of its own slice (the blocked kernel of ``_kernel.py`` on its W
shard, or a plain reduction of local logits) and the Megatron combination makes them global:

  M      = pmax(stop_gradient(lse_i))                  (any M works; this one keeps exp ≤ 1)
  lse    = M + log psum(exp(lse_i − M))
  lse − z_y = psum([i owns y] (nll_i + (M − lse_i))) + log psum(exp(lse_i − M))
                                                       (nll_i = lse_i − z_y on the owner,
                                                        exact near the maximum)
  Σ_c (lse − z_c) = psum(smooth_i + K_i (lse − lse_i))

so communication is a handful of [N]-vector all-reduces (O(N), never O(N·V)). The gradient is plain
autodiff of this composition (``psum`` transposes to a broadcast; the max is a stopped constant);
each device's kernel backward then needs no communication. The cotangent of a replicated
``hidden`` is summed over ``axis_name`` by ``shard_map``'s own transpose.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from .. import _reduce
from .._core import checks as _checks
from .._core.numerics import logsumexp_parts
from ._kernel import KernelConfig, linear_lse_stats
from ._prepare import (
    DEFAULT_BLOCK_SIZE,
    _class_mask,
    _Prepared,
    check_ignore_index,
    combine,
    prepare,
)

__all__ = ["vocab_parallel_cross_entropy", "vocab_parallel_linear_cross_entropy"]


def _axis(fn: str, axis_name: Any) -> tuple[int, jax.Array]:
    try:
        size = lax.axis_size(axis_name)
        index = lax.axis_index(axis_name)
    except NameError as err:
        raise ValueError(
            f"jaxloss.{fn}: `axis_name` {axis_name!r} is not a mesh axis in scope; call this "
            "inside jax.shard_map over a mesh with that axis (the vocabulary-sharded one)."
        ) from err
    return int(size), index


def _global_stats(
    axis_name: Any,
    lse_i: jax.Array,
    nll_i: jax.Array,
    owns_i: jax.Array,
    smooth_i: jax.Array | None,
    k_i: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array | None, jax.Array]:
    """Combines per-shard (lse, nll on the label's owner, smooth, K) into global (lse, nll,
    smooth, K); rows a shard masks entirely (K_i = 0) take no part. A NaN statistic on any
    shard makes the token's values NaN ("nothing counted" is se == 0, which NaN fails)."""
    has = k_i > 0
    m = lax.pmax(lax.stop_gradient(jnp.where(has, lse_i, -jnp.inf)), axis_name)
    m = jnp.where(jnp.isfinite(m), m, 0)
    se = lax.psum(jnp.where(has, jnp.exp(jnp.where(has, lse_i, m) - m), 0), axis_name)
    counted = se != 0
    log_se = jnp.where(counted, jnp.log(jnp.where(counted, se, 1)), 0)
    lse = jnp.where(counted, m + log_se, 0)
    nll = lax.psum(jnp.where(owns_i, nll_i + (m - lse_i), 0), axis_name) + log_se
    k = lax.psum(k_i, axis_name)
    smooth = None
    if smooth_i is not None:
        smooth = lax.psum(smooth_i + jnp.where(has, k_i * (lse - lse_i), 0), axis_name)
    return lse, nll, smooth, k


def _local_label_ok(p: _Prepared, offset: jax.Array, v_local: int) -> jax.Array:
    local = p.y - offset
    ok = (local >= 0) & (local < v_local)
    if p.mask is not None:
        rows = (
            p.mask
            if p.mask.shape[0] == p.y.shape[0]
            else jnp.broadcast_to(p.mask, (p.y.shape[0], v_local))
        )
        ok = ok & jnp.take_along_axis(rows, jnp.clip(local, 0, v_local - 1)[:, None], axis=1)[:, 0]
    return ok


def _finish(
    fn: str, p: _Prepared, axis_name: Any, size: int, offset: jax.Array, lse_i, nll_i, smooth_i
) -> jax.Array:
    n = p.y.shape[0]
    v_local = p.v
    if p.mask is None:
        k_i = jnp.full((n,), v_local, p.acc)
    else:
        k_i = jnp.broadcast_to(jnp.sum(p.mask, axis=1, dtype=p.acc), (n,))
    ok_i = _local_label_ok(p, offset, v_local)
    lse, nll, smooth, k = _global_stats(
        axis_name, lse_i, nll_i, ok_i, smooth_i if p.cfg.with_smooth else None, k_i
    )
    label_ok = lax.psum(ok_i.astype(jnp.int32), axis_name) > 0
    zeros = jnp.zeros_like(lse)
    return combine(p, lse, nll, zeros if smooth is None else smooth, jnp.maximum(k, 1), label_ok)


def _reduced(p: _Prepared, values: jax.Array, reduction: str) -> jax.Array:
    """``reduction`` of the per-token values over the tokens whose label is not ignored."""
    if reduction == "none":
        return values
    kept = None if p.ignore_index is None else p.y.reshape(values.shape) != p.ignore_index
    return _reduce.reduce_loss(values, reduction, where=kept)


def vocab_parallel_linear_cross_entropy(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    *,
    axis_name: Any,
    bias: ArrayLike | None = None,
    weight_layout: str = "dv",
    block_size: int = DEFAULT_BLOCK_SIZE,
    label_smoothing: ArrayLike = 0.0,
    z_loss: ArrayLike = 0.0,
    logit_soft_cap: float | None = None,
    ignore_index: int | None = None,
    where: ArrayLike | None = None,
    reduction: str = "none",
) -> jax.Array:
    """:func:`linear_cross_entropy` with the unembedding sharded over vocabulary (inside shard_map).

    Math: exactly :func:`linear_cross_entropy` of the full (concatenated) weight; see the module
    notes for the combination. Each device runs the blocked kernel on its own W shard (no [N, V]
    or [N, V/P] logits are held either), then [N]-sized ``pmax``/``psum`` make the statistics
    global. Gradient: that of :func:`linear_cross_entropy`; each device gets the gradient of its
    own W (and bias) shard, and ``hidden``'s is summed over ``axis_name`` (by shard_map's
    transpose when ``hidden`` is replicated over that axis).

    Args:
      hidden: [..., D], the same on every device of ``axis_name`` (it may be sharded over other
        mesh axes, e.g. data parallel).
      weight: this device's shard, [D, V_local] (``"dv"``) or [V_local, D] (``"vd"``); device
        ``i`` of ``axis_name`` holds global classes ``[i·V_local, (i+1)·V_local)``, which is what
        ``P(None, axis_name)`` (``"dv"``) or ``P(axis_name, None)`` (``"vd"``) gives.
      labels: integer [...] global class ids in [0, V_local · axis_size).
      axis_name: the mesh axis the vocabulary is sharded over.
      bias: optional [V_local] shard of the bias.
      where: optional boolean class mask shard with the logits' ndim, broadcastable to
        [..., V_local] (this device's columns of the global mask).
      weight_layout: ``"dv"`` (default) or ``"vd"``, as in :func:`linear_cross_entropy`.
      block_size: vocabulary columns per kernel block on this device's shard (static; clamped
        to V_local; default as :func:`linear_cross_entropy`).
      label_smoothing: ε in [0, 1] (default 0), spread over the K counted classes of the
        *global* vocabulary, as in :func:`linear_cross_entropy`.
      z_loss: coefficient ≥ 0 of the ``lse²`` term, lse over the global vocabulary (default 0).
      logit_soft_cap: optional static cap > 0: logits ← cap·tanh(logits/cap) (default None).
      ignore_index: optional label value whose tokens give 0 (default None).
      reduction: ``"none"`` (default: per-token values), ``"mean"`` or ``"sum"`` over the
        tokens of this call whose label is not ``ignore_index``, as in
        :func:`linear_cross_entropy` (PyTorch's ``CrossEntropyLoss`` meaning; every token
        ignored: 'mean' is 0 with a zero gradient). The tokens are those this device sees: with
        tokens also sharded over a data-parallel axis, combine the shards' means with
        :func:`jaxloss.mean_parts` (or reduce 'sum' with ``psum``).

    Returns:
      Array of the shape of ``labels``: per-token losses (or a scalar when reduced), float32
      (float64 for float64 inputs), replicated over ``axis_name``. Labels are not
      range-checked here (each device sees only its slice): a label outside
      [0, V_local · axis_size) (other than ``ignore_index``) or on a masked class gives NaN.

    Examples:
      On a one-device mesh the result is that of :func:`linear_cross_entropy`; with P devices
      along ``"v"``, ``weight`` is split into P column blocks by the same ``in_specs``.

      >>> import functools, jax, jax.numpy as jnp, jaxloss.fused as F
      >>> from jax.sharding import Mesh, PartitionSpec as P
      >>> mesh = Mesh(jax.devices()[:1], ("v",))
      >>> x = jnp.ones((2, 4)); w = jnp.zeros((4, 10)); y = jnp.array([1, 7])
      >>> loss = jax.shard_map(
      ...     functools.partial(F.vocab_parallel_linear_cross_entropy, axis_name="v"),
      ...     mesh=mesh, in_specs=(P(), P(None, "v"), P()), out_specs=P())
      >>> [round(v, 4) for v in loss(x, w, y).tolist()]          # log 10
      [2.3026, 2.3026]
    """
    fn = "vocab_parallel_linear_cross_entropy"
    _reduce.check_reduction(fn, reduction)
    size, index = _axis(fn, axis_name)
    p = prepare(
        fn,
        hidden,
        weight,
        labels,
        bias=bias,
        weight_layout=weight_layout,
        block_size=block_size,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        logit_soft_cap=logit_soft_cap,
        ignore_index=ignore_index,
        where=where,
        check_label_range=False,
    )
    offset = index * p.v
    lse_i, nll_i, smooth_i = linear_lse_stats(p.x, p.w, p.b, p.y - offset, p.mask, p.cfg)
    return _reduced(p, _finish(fn, p, axis_name, size, offset, lse_i, nll_i, smooth_i), reduction)


def vocab_parallel_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    axis_name: Any,
    label_smoothing: ArrayLike = 0.0,
    z_loss: ArrayLike = 0.0,
    ignore_index: int | None = None,
    where: ArrayLike | None = None,
    reduction: str = "none",
) -> jax.Array:
    """Integer-label softmax cross-entropy of vocabulary-sharded logits (inside shard_map).

    Math: :func:`jaxloss.softmax_cross_entropy_with_integer_labels` of the full logits (classes
    on the last axis) plus ``z_loss · lse²``, from this device's slice ``logits[..., V_local]``
    (device ``i`` holds classes ``[i·V_local, (i+1)·V_local)``). Megatron's algorithm: local
    log-sum-exp, ``pmax`` of its stopped value, ``psum`` of the rescaled sums and of the target
    logit (O(N) communication). Plain autodiff; the gradient of the local logits is
    ``G softmax − (1 − ε)[c = y] − ε/K`` restricted to this device's classes, no communication.

    Prefer :func:`vocab_parallel_linear_cross_entropy`, which never holds the local logits; this
    form is for logits that exist anyway.

    Args:
      logits: floating [..., V_local], this device's vocabulary slice.
      labels: integer [...] global class ids.
      axis_name: the mesh axis the vocabulary is sharded over.
      label_smoothing: ε in [0, 1] (default 0), spread over the K counted classes of the
        *global* vocabulary, as in :func:`linear_cross_entropy`.
      z_loss: coefficient ≥ 0 of the ``lse²`` term, lse over the global vocabulary (default 0).
      ignore_index: optional label value whose tokens give 0 (default None).
      where: optional boolean class mask shard with the logits' ndim, broadcastable to them
        (this device's columns of the global mask).
      reduction: ``"none"`` (default: per-token values), ``"mean"`` or ``"sum"`` over the
        tokens of this call whose label is not ``ignore_index``, as in
        :func:`linear_cross_entropy` (PyTorch's ``CrossEntropyLoss`` meaning; every token
        ignored: 'mean' is 0 with a zero gradient). The tokens are those this device sees: with
        tokens also sharded over a data-parallel axis, combine the shards' means with
        :func:`jaxloss.mean_parts` (or reduce 'sum' with ``psum``).

    Returns:
      Array of the shape of ``labels``: per-token losses (or a scalar when reduced), float32
      (float64 for float64 logits), replicated over ``axis_name``. Labels are not
      range-checked (each device sees only its slice): a label outside
      [0, V_local · axis_size) (other than ``ignore_index``) or on a masked class gives NaN.

    Examples:
      On a one-device mesh the result is the plain cross-entropy of the logits; with P devices
      along ``"v"``, the class axis is split into P blocks by the same ``in_specs``.

      >>> import functools, jax, jax.numpy as jnp, jaxloss.fused as F
      >>> from jax.sharding import Mesh, PartitionSpec as P
      >>> mesh = Mesh(jax.devices()[:1], ("v",))
      >>> z = jnp.array([[2.0, 1.0, 0.0, -1.0], [0.0, 0.0, 0.0, 0.0]]); y = jnp.array([0, 3])
      >>> loss = jax.shard_map(
      ...     functools.partial(F.vocab_parallel_cross_entropy, axis_name="v"),
      ...     mesh=mesh, in_specs=(P(None, "v"), P()), out_specs=P())
      >>> [round(v, 4) for v in loss(z, y).tolist()]             # second row: log 4
      [0.4402, 1.3863]
    """
    fn = "vocab_parallel_cross_entropy"
    _reduce.check_reduction(fn, reduction)
    size, index = _axis(fn, axis_name)
    z = _checks.check_floating(fn, "logits", logits)
    if z.ndim < 1:
        raise ValueError(f"jaxloss.{fn}: `logits` must have a class axis; got a scalar.")
    _checks.require(fn, "label_smoothing", label_smoothing, "in [0, 1]")
    _checks.require(fn, "z_loss", z_loss, ">= 0")
    v_local = z.shape[-1]
    batch_shape = tuple(z.shape[:-1])
    y = _checks.check_integer(fn, "labels", labels)
    if tuple(y.shape) != batch_shape:
        raise ValueError(
            f"jaxloss.{fn}: `labels` must have the logits' shape without the class axis, "
            f"{batch_shape}; got labels.shape={tuple(y.shape)}."
        )
    check_ignore_index(fn, ignore_index)
    acc = _checks.compute_dtype(z)
    smooth = _checks.concrete_float(label_smoothing)
    p = _Prepared(
        y=y.reshape(-1).astype(jnp.int32),
        mask=_class_mask(fn, where, batch_shape, v_local, "`logits`"),
        v=v_local,
        batch_shape=batch_shape,
        acc=acc,
        cfg=KernelConfig("dv", v_local, None, smooth is None or smooth != 0),
        eps=jnp.asarray(label_smoothing, acc),
        z_loss=jnp.asarray(z_loss, acc),
        with_z=_checks.concrete_float(z_loss) != 0,
        ignore_index=ignore_index,
    )
    offset = index * v_local
    zz = z.astype(p.acc).reshape(-1, v_local)
    shift, log_s, counted = logsumexp_parts(zz, axis=-1, where=p.mask)
    lse_i = jnp.where(counted, shift + log_s, 0)[:, 0]
    local = p.y - offset
    cols = lax.broadcasted_iota(local.dtype, zz.shape, 1)
    hit = cols == local[:, None]
    if p.mask is not None:
        hit = hit & p.mask
    zlab_i = jnp.sum(jnp.where(hit, zz, 0), axis=1)
    nll_i = (shift[:, 0] - zlab_i) + log_s[:, 0]  # lse_i - z_y, exact near the maximum
    smooth_i = None
    if p.cfg.with_smooth:
        diff = lse_i[:, None] - zz
        smooth_i = jnp.sum(diff if p.mask is None else jnp.where(p.mask, diff, 0), axis=1)
    return _reduced(p, _finish(fn, p, axis_name, size, offset, lse_i, nll_i, smooth_i), reduction)
