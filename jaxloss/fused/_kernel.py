"""The blocked linear log-sum-exp kernel behind every fused cross-entropy in this package.

``linear_lse_stats(x, w, b, labels, mask)`` returns three per-token statistics of the logits
``z = cap·tanh((x @ W + b) / cap)`` (or ``x @ W + b`` without a cap) over the *counted* classes
(``mask``; all classes when it is None), without ever holding more than one ``[N, block]`` tile:

  lse_n    = log Σ_c exp z_nc  = m_n + log Σ_c exp(z_nc − m_n)   (m_n the row maximum)
  nll_n    = lse_n − z_{n, y_n}, formed as (m_n − z_{n, y_n}) + log Σ_c exp(z_nc − m_n): exact
             when the label logit is near the maximum (lse − z_y would round the log-sum to the
             ulp of lse: 1e-3 at logits of 1e4); z_{n, y_n} is taken as 0 when y_n is not a
             counted class of this W (then nll_n = lse_n)
  smooth_n = Σ_c (lse_n − z_nc)             (≥ 0; accumulated per block relative to the
                                             running maximum, not as K·lse − Σ z)

A NaN logit (a NaN in a hidden row or a weight column) makes the statistics of every token it
feeds NaN: "nothing counted" is decided by ``m == -inf``, which NaN fails.

Every cross-entropy variant (label smoothing, z-loss, ignore_index, vocab-parallel) is a plain-JAX
function of these three [N] vectors, so autodiff of that composition hands this kernel three
cotangents (g_lse, g_nll, g_sm). Its backward recomputes each tile and forms, with
softmax_nc = exp((z_nc − m_n) − log-sum_n) from the saved m and log-sum,

  ∂/∂z_nc = (g_lse_n + g_nll_n + K_n g_sm_n) softmax_nc − g_nll_n [c = y_n] − g_sm_n  (counted c)

(0 for masked c; K_n the number of counted classes), times ``1 − (z/cap)²`` with a soft cap, then
accumulates ``dx += dz @ W_blockᵀ`` and writes ``dW_block = xᵀ @ dz``, ``db_block = Σ_n dz``.

Forward: one GEMM per block (2NDV FLOPs), an online max/sum-exp; the label logit by an indexed
dot ⟨x_n, W[:, y_n]⟩ (O(N·D)). Residuals: the inputs, m and the log-sum [N]. Backward: three
GEMMs per block (6NDV). The tile math runs in the accumulation
dtype (float32, or float64 for float64 inputs); the GEMMs take the inputs' own dtype (bfloat16
stays bfloat16 on the MXU/tensor cores) with ``preferred_element_type`` = the accumulation dtype.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["KernelConfig", "linear_lse_entropy_stats", "linear_lse_stats"]


class KernelConfig(NamedTuple):
    """Static (hashable) configuration of the kernel."""

    layout: str  # "dv": w is [D, V]; "vd": w is [V, D]
    block: int  # vocabulary block size (clamped to V by the caller)
    cap: float | None  # logit soft cap, or None
    with_smooth: bool  # compute smooth_n (label smoothing on)
    with_entropy: bool = False  # also compute ent_n (linear_lse_entropy_stats only)


def _vocab_size(w: jax.Array, layout: str) -> int:
    return int(w.shape[1] if layout == "dv" else w.shape[0])


def _run_blocks(step, carry, v: int, block: int):
    """Runs ``step(carry, start, nominal)`` over the vocabulary in blocks of ``block`` columns.

    One step body for every block (compile time matters): when ``block`` does not divide ``v``
    the last block is shifted back to end at ``v`` (``start = min(i·block, v − block)``) and
    ``nominal = i·block`` tells the step which of its columns are new (those ≥ nominal); when it
    divides, ``nominal`` is None and every column is new.
    """
    nb = -(-v // block)
    ragged = v % block != 0

    def body(i, c):
        nominal = i * block
        if not ragged:
            return step(c, nominal, None)
        return step(c, jnp.minimum(nominal, v - block), nominal)

    if nb == 1:
        return body(0, carry)
    return lax.fori_loop(0, nb, body, carry)


def _slice_w(w: jax.Array, v0, size: int, layout: str) -> jax.Array:
    axis = 1 if layout == "dv" else 0
    return lax.dynamic_slice_in_dim(w, v0, size, axis=axis)


def _tile(x, w, b, mask, v0, nominal, cfg: KernelConfig, acc):
    """Logits tile [N, block] (after the soft cap), the W block, and the tile's column mask
    (counted classes that are new in this block; None when every column counts)."""
    size = cfg.block
    wb = _slice_w(w, v0, size, cfg.layout).astype(x.dtype)
    contract = ((1,), (0,)) if cfg.layout == "dv" else ((1,), (1,))
    z = lax.dot_general(x, wb, (contract, ((), ())), preferred_element_type=acc)
    if b is not None:
        z = z + lax.dynamic_slice_in_dim(b, v0, size).astype(acc)[None, :]
    if cfg.cap is not None:
        z = cfg.cap * jnp.tanh(z / cfg.cap)
    valid = None if mask is None else lax.dynamic_slice_in_dim(mask, v0, size, axis=1)
    if nominal is not None:  # the shifted last block: columns before `nominal` are done
        fresh = v0 + lax.broadcasted_iota(jnp.int32, (1, size), 1) >= nominal
        valid = fresh if valid is None else valid & fresh
    return z, wb, valid


def _label_logit(x, w, b, labels, mask, cfg: KernelConfig, acc) -> jax.Array:
    """z_{n, y_n} by an indexed dot (O(N·D), no tile); 0 where y_n is not a counted column."""
    v = _vocab_size(w, cfg.layout)
    ok = (labels >= 0) & (labels < v)
    y = jnp.where(ok, labels, 0)
    if mask is not None:
        rows = jnp.arange(labels.shape[0]) if mask.shape[0] > 1 else jnp.zeros_like(labels)
        ok = ok & mask[rows, y]
    wy = jnp.take(w, y, axis=1 if cfg.layout == "dv" else 0)  # [D, N] or [N, D]
    if cfg.layout == "dv":
        wy = wy.T
    z = jnp.sum(x.astype(acc) * wy.astype(x.dtype).astype(acc), axis=1)
    if b is not None:
        z = z + jnp.take(b, y).astype(acc)
    if cfg.cap is not None:
        z = cfg.cap * jnp.tanh(z / cfg.cap)
    return jnp.where(ok, z, 0)


def _varying_axes(a) -> set:
    typeof = getattr(jax, "typeof", None)
    if typeof is None:  # jax without shard_map's varying-axis types
        return set()
    t = typeof(a)
    mat = getattr(t, "manual_axis_type", None)  # jax >= 0.9
    if mat is not None:
        return set(mat.varying)
    return set(getattr(t, "vma", ()))  # older jax


def _varying_like(arrays, *inputs):
    """Initial loop carries typed as varying over the mesh axes any input varies over (inside
    ``shard_map``, a loop's carry must keep its type; outside it this is the identity)."""
    vma: set = set()
    for a in inputs:
        if a is not None:
            vma |= _varying_axes(a)
    if not vma:
        return arrays
    axes = tuple(sorted(vma, key=str))
    return jax.tree.map(lambda a: lax.pcast(a, axes, to="varying"), arrays)


def _count(mask: jax.Array | None, n: int, v: int, acc) -> jax.Array:
    if mask is None:
        return jnp.full((n,), v, acc)
    return jnp.broadcast_to(jnp.sum(mask, axis=1, dtype=acc), (n,))


def _forward(x, w, b, labels, mask, cfg: KernelConfig):
    acc = jnp.promote_types(jnp.result_type(x, w, *([] if b is None else [b])), jnp.float32)
    n, v = x.shape[0], _vocab_size(w, cfg.layout)
    neg_inf = jnp.asarray(-jnp.inf, acc)

    def step(carry, v0, nominal):
        m, s, d, k, t = carry
        z, _, valid = _tile(x, w, b, mask, v0, nominal, cfg, acc)
        zm = z if valid is None else jnp.where(valid, z, neg_inf)
        m_new = jnp.maximum(m, jnp.max(zm, axis=1))
        # The reference: the running max, 0 while nothing is counted. Keyed on == -inf so that
        # a NaN max (a NaN logit) stays NaN and reaches the sums.
        ref_new = jnp.where(m_new != neg_inf, m_new, 0)
        ref_old = jnp.where(m != neg_inf, m, 0)
        if cfg.with_entropy:
            # t = Σ_{counted so far} exp(z_c − ref)(z_c − ref), rebased to the new reference:
            # exp(z − ref_new)(z − ref_new) = exp(ref_old − ref_new)·exp(z − ref_old)·
            # ((z − ref_old) − (ref_new − ref_old)).
            e = jnp.exp(zm - ref_new[:, None])
            zr = z - ref_new[:, None]
            part = jnp.sum(e * (zr if valid is None else jnp.where(valid, zr, 0)), axis=1)
            t = jnp.exp(m - ref_new) * (t - (ref_new - ref_old) * s) + part
        s = s * jnp.exp(m - ref_new) + jnp.sum(jnp.exp(zm - ref_new[:, None]), axis=1)
        if cfg.with_smooth:
            # d = Σ_{counted so far} (ref − z_c), rebased to the new reference; the block's part
            # is kb·ref − Σ z_c, a difference relative to the block's own maximum (the sum alone
            # is a plain reduction of the GEMM output, which XLA:CPU fuses).
            kb = cfg.block if valid is None else jnp.sum(valid, axis=1, dtype=acc)
            zs = jnp.sum(z if valid is None else jnp.where(valid, z, 0), axis=1)
            d = d + k * (ref_new - ref_old) + (kb * ref_new - zs)
            k = k + kb
        return m_new, s, d, k, t

    zeros = jnp.zeros((n,), acc)
    carry = _varying_like(
        (jnp.full((n,), -jnp.inf, acc), zeros, zeros, zeros, zeros), x, w, b, labels, mask
    )
    m, s, d, k, t = _run_blocks(step, carry, v, cfg.block)
    counted = m != neg_inf  # NaN counts (and stays NaN)
    ref = jnp.where(counted, m, 0)
    log_s = jnp.where(counted, jnp.log(jnp.where(counted, s, 1)), 0)
    lse = jnp.where(counted, ref + log_s, 0)
    zlab = _label_logit(x, w, b, labels, mask, cfg, acc)
    nll = (ref - zlab) + log_s
    smooth = d + k * log_s if cfg.with_smooth else zeros
    if cfg.with_entropy:
        # E_p[z] − ref = t/s and entropy = lse − E_p[z] = log s − t/s (≥ 0, no cancellation
        # against the size of the logits); 0 when nothing is counted.
        ez = jnp.where(counted, t / jnp.where(counted, s, 1), 0)
        return (lse, nll, smooth, log_s - ez), (ref, log_s, ez)
    return (lse, nll, smooth), (ref, log_s)


def _backward(
    x, w, b, labels, mask, ref, log_s, g_lse, g_lab, g_sm, cfg: KernelConfig, ez=None, g_ent=None
):
    acc = log_s.dtype
    n, v = x.shape[0], _vocab_size(w, cfg.layout)
    coef = g_lse
    if cfg.with_smooth:
        coef = coef + _count(mask, n, v, acc) * g_sm

    def step(carry, v0, nominal):
        dx, dw, db = carry
        size = cfg.block
        z, wb, valid = _tile(x, w, b, mask, v0, nominal, cfg, acc)
        arg = (z - ref[:, None]) - log_s[:, None]
        if valid is not None:
            arg = jnp.where(valid, arg, -jnp.inf)
        cols = v0 + lax.broadcasted_iota(labels.dtype, (1, size), 1)
        hit = cols == labels[:, None]
        if valid is not None:
            hit = hit & valid
        dz = coef[:, None] * jnp.exp(arg) + jnp.where(hit, g_lab[:, None], 0)
        if g_ent is not None:
            # ∂entropy/∂z_c = −softmax_c (z_c − E_p[z]); 0 for masked c (exp(arg) = 0 there).
            zr = (z - ref[:, None]) - ez[:, None]
            if valid is not None:
                zr = jnp.where(valid, zr, 0)
            dz = dz - g_ent[:, None] * jnp.exp(arg) * zr
        if cfg.with_smooth:
            dz = dz - (g_sm[:, None] if valid is None else jnp.where(valid, g_sm[:, None], 0))
        if cfg.cap is not None:
            dz = dz * (1 - jnp.square(z / cfg.cap))
        dzg = dz.astype(x.dtype)
        axis = 1 if cfg.layout == "dv" else 0
        if cfg.layout == "dv":
            dx = dx + lax.dot_general(dzg, wb, (((1,), (1,)), ((), ())), preferred_element_type=acc)
            dwb = lax.dot_general(x, dzg, (((0,), (0,)), ((), ())), preferred_element_type=acc)
        else:
            dx = dx + lax.dot_general(dzg, wb, (((1,), (0,)), ((), ())), preferred_element_type=acc)
            dwb = lax.dot_general(dzg, x, (((0,), (0,)), ((), ())), preferred_element_type=acc)
        # The shifted last block keeps the columns an earlier block wrote (those < nominal).
        fresh = None if nominal is None else v0 + jnp.arange(size) >= nominal
        dwb = dwb.astype(dw.dtype)
        if fresh is not None:
            old = lax.dynamic_slice_in_dim(dw, v0, size, axis=axis)
            dwb = jnp.where(fresh[None, :] if axis == 1 else fresh[:, None], dwb, old)
        dw = lax.dynamic_update_slice_in_dim(dw, dwb, v0, axis=axis)
        if db is not None:
            dbb = jnp.sum(dz, axis=0).astype(db.dtype)
            if fresh is not None:
                dbb = jnp.where(fresh, dbb, lax.dynamic_slice_in_dim(db, v0, size))
            db = lax.dynamic_update_slice_in_dim(db, dbb, v0, 0)
        return dx, dw, db

    carry = _varying_like(
        (
            jnp.zeros(x.shape, acc),
            jnp.zeros(w.shape, w.dtype),
            None if b is None else jnp.zeros(b.shape, b.dtype),
        ),
        x,
        w,
        b,
        labels,
        mask,
        ref,
        log_s,
        g_lse,
        g_lab,
        g_sm,
        ez,
        g_ent,
    )
    dx, dw, db = _run_blocks(step, carry, v, cfg.block)
    return dx.astype(x.dtype), dw, db


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _stats(x, w, b, labels, mask, cfg):
    return _forward(x, w, b, labels, mask, cfg)[0]


def _stats_fwd(x, w, b, labels, mask, cfg):
    stats, (ref, log_s) = _forward(x, w, b, labels, mask, cfg)
    return stats, (x, w, b, labels, mask, ref, log_s)


def _stats_bwd(cfg, res, cts):
    x, w, b, labels, mask, ref, log_s = res
    g_lse, g_nll, g_sm = cts
    # nll = lse - z_y: its cotangent adds to the softmax's and subtracts at the label.
    dx, dw, db = _backward(x, w, b, labels, mask, ref, log_s, g_lse + g_nll, -g_nll, g_sm, cfg)
    return dx, dw, db, None, None


_stats.defvjp(_stats_fwd, _stats_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _stats_ent(x, w, b, labels, mask, cfg):
    return _forward(x, w, b, labels, mask, cfg)[0]


def _stats_ent_fwd(x, w, b, labels, mask, cfg):
    stats, (ref, log_s, ez) = _forward(x, w, b, labels, mask, cfg)
    return stats, (x, w, b, labels, mask, ref, log_s, ez)


def _stats_ent_bwd(cfg, res, cts):
    x, w, b, labels, mask, ref, log_s, ez = res
    g_lse, g_nll, g_sm, g_ent = cts
    dx, dw, db = _backward(
        x, w, b, labels, mask, ref, log_s, g_lse + g_nll, -g_nll, g_sm, cfg, ez, g_ent
    )
    return dx, dw, db, None, None


_stats_ent.defvjp(_stats_ent_fwd, _stats_ent_bwd)


def linear_lse_stats(
    x: jax.Array,
    w: jax.Array,
    b: jax.Array | None,
    labels: jax.Array,
    mask: jax.Array | None,
    cfg: KernelConfig,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(lse, nll, smooth) per token; see the module docstring. Inputs are already validated.

    Args:
      x: [N, D] hidden states.
      w: [D, V] (``cfg.layout == "dv"``) or [V, D] (``"vd"``).
      b: [V] bias or None.
      labels: [N] integer labels in this W's column numbering (others match no column).
      mask: [1, V] or [N, V] boolean class mask, or None.
      cfg: static configuration.
    """
    return _stats(*_cast_varying(x, w, b, labels, mask), cfg)


def _cast_varying(*arrays):
    """Inside ``shard_map``: every array (None passes) made to vary over the axes any of them
    varies over, so that the backward's cotangents have the inputs' types. The transpose of that
    cast is a psum: the gradient of a replicated ``x`` is summed over the vocabulary shards, as it
    must be. Outside ``shard_map`` nothing varies and the arrays come back as they are."""
    vma: set = set()
    for a in arrays:
        if a is not None:
            vma |= _varying_axes(a)

    def cast(a):
        if a is None:
            return None
        missing = tuple(sorted(vma - _varying_axes(a), key=str))
        return lax.pcast(a, missing, to="varying") if missing else a

    return tuple(cast(a) for a in arrays)


def linear_lse_entropy_stats(
    x: jax.Array,
    w: jax.Array,
    b: jax.Array | None,
    labels: jax.Array,
    mask: jax.Array | None,
    cfg: KernelConfig,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """(lse, nll, smooth, entropy) per token: :func:`linear_lse_stats` plus the entropy
    ``H_n = lse_n − Σ_c softmax_nc z_nc`` of the counted classes (0 when nothing is counted),
    accumulated online in the same pass (no extra GEMM). Its cotangent adds
    ``−g_H softmax_nc (z_nc − E_p[z]_n)`` to ∂/∂z_nc in the backward. Arguments as
    :func:`linear_lse_stats`; ``cfg.with_entropy`` is set here."""
    return _stats_ent(*_cast_varying(x, w, b, labels, mask), cfg._replace(with_entropy=True))
