"""The row-chunked kernel behind fused distillation (``jaxloss.fused.linear_distillation`` and its
vocab-parallel form).

Per token n, with zr = xs Ws (the student's raw logits), zs = zr / T and zt = xt Wt / T, the
kernel walks the tokens in chunks of ``rows`` rows; a chunk's logits span the whole vocabulary
(or, inside ``shard_map``, this device's slice of it), so each row's normalisers are exact in the
same pass — no online rescaling, no second pass for the divergence:

  ls = zs − lse(zs),  lt = zt − lse(zt)   (each as (z − max) − log Σ exp(z − max))
  D  = Σ_c φ(ls_c, lt_c),   S_s = Σ_c ψ_s,c,   S_t = Σ_c ψ_t,c
  CE = lse(zr) − zr_y                      (the hard-label term, when α may be ≠ 0)
  l  = (1 − α) D + α CE                    (0 for ignored tokens)

with φ, ψ_s = ∂φ/∂ls, ψ_t = ∂φ/∂lt from ``jaxloss._lm.column_terms`` (shared with
:func:`jaxloss.distillation_loss`). Given a cotangent g_n per token, the same chunk gives

  ∂l/∂zr_c = g ((1 − α)(ψ_s,c − p_s,c S_s)/T + α(softmax(zr)_c − [c = y]))
  ∂l/∂zt_c = g (1 − α)(ψ_t,c − p_t,c S_t)/T            (only with teacher_grad)

then dxs rows = dzr Wsᵀ and dWs += xs_chunkᵀ dzr. Costs in GEMMs of the student's size
(2·N·Ds·V FLOPs each; the teacher's count Dt/Ds each):

  per-token values, no gradient   1 student + 1 teacher                  (one pass)
  value and gradient, 'none'      forward pass, then a backward pass that recomputes both
                                  chunks: 2 student + 2 teacher + 2 (dxs, dWs)
  value and gradient, reduced     one pass: 1 student + 1 teacher + 2 — the per-token
                                  cotangent of a sum or mean is known in the forward (the
                                  coefficients c_n of Σ c_n l_n), so the gradient is formed
                                  there and the backward only scales it by the scalar cotangent

— the unfused program's count is 1 + 1 + 2. Memory: a chunk's few [rows, V] arrays in the
accumulation dtype, the [D, V] gradient accumulator and O(N·D).

Inside ``shard_map`` over the vocabulary (``axis`` set, each device holding V/P columns starting
at ``v0``): the row maximum is combined with ``pmax``, the sums (Σ exp, D, S_s, S_t, the label
logit) with ``psum`` — the Megatron combination — and each device forms the gradient of its own
columns; the gradient of the replicated hidden states is summed over devices by the transpose of
the varying cast made before the kernel.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from .. import _lm
from .._core import checks as _checks
from ._kernel import _cast_varying, _run_blocks, _varying_like
from ._prepare import _static_positive_int

__all__ = [
    "DistillConfig",
    "check_pair",
    "distill_impl",
    "distill_per_token",
    "distill_reduced",
    "finish_distillation",
    "prepare_distillation",
    "rows_for",
]


class DistillConfig(NamedTuple):
    """Static configuration of the distillation kernel."""

    layout: str  # "dv" or "vd" (both weights)
    rows: int  # token rows per chunk
    t: float  # temperature
    kind: str  # "forward_kl" | "reverse_kl" | "jsd"
    beta: float
    teacher_grad: bool
    with_hard: bool  # the hard-label term may be nonzero (α not statically 0)
    ignore_index: int | None
    axis: str | tuple | None = None  # shard_map axis the vocabulary is split over, or None


MIN_ROWS = 256  # fewer rows per GEMM leave the matrix units waiting on the weights


def rows_for(n: int, v: int, block: int) -> int:
    """Rows per chunk: enough for a chunk to hold about ``n · block`` logits (``block`` ≤ v),
    and at least ``MIN_ROWS`` (or all ``n``)."""
    return max(1, min(n, max(-(-n * block // v), MIN_ROWS)))


def _vocab(w, layout: str) -> int:
    return int(w.shape[1] if layout == "dv" else w.shape[0])


def _mm(x, w, layout: str, acc):
    contract = ((1,), (0,)) if layout == "dv" else ((1,), (1,))
    return lax.dot_general(x, w.astype(x.dtype), (contract, ((), ())), preferred_element_type=acc)


def _log_softmax(z, axis):
    """(log-softmax, softmax) over the last axis (the vocabulary, sharded over ``axis`` when
    given); the log formed as (z − max) − log Σ exp(z − max): exact near the maximum."""
    m = jnp.max(z, axis=1, keepdims=True)
    if axis is not None:
        m = lax.pmax(m, axis)
    m = jnp.where(jnp.isfinite(m), m, 0)  # an all −inf row keeps −inf; NaN stays NaN via z
    r = z - m
    e = jnp.exp(r)
    s = jnp.sum(e, axis=1, keepdims=True)
    if axis is not None:
        s = lax.psum(s, axis)
    return r - jnp.log(s), e * (1 / s)


def _psum(a, axis):
    return a if axis is None else lax.psum(a, axis)


def _chunk(xs, ws, xt, wt, y, alpha, g, v0, cfg: DistillConfig, acc):
    """Per-token (loss, D, CE) of one chunk and, when ``g`` is given, the logits gradients."""
    zr = _mm(xs, ws, cfg.layout, acc)
    zs = _lm.scale_by_temperature(zr, cfg.t)
    zt = _lm.scale_by_temperature(_mm(xt, wt, cfg.layout, acc), cfg.t)
    (ls, ps), (lt, pt) = _log_softmax(zs, cfg.axis), _log_softmax(zt, cfg.axis)
    phi, psi_s, psi_t = _lm.column_terms(ls, lt, cfg.kind, cfg.beta, ps, pt)
    d = _psum(jnp.sum(phi, axis=1), cfg.axis)
    v_all = _vocab(ws, cfg.layout) * (1 if cfg.axis is None else lax.axis_size(cfg.axis))
    kept = None if cfg.ignore_index is None else y != cfg.ignore_index
    ce = None
    if cfg.with_hard:
        l1, p1 = (ls, ps) if cfg.t == 1.0 else _log_softmax(zr, cfg.axis)
        cols = v0 + lax.broadcasted_iota(jnp.int32, l1.shape, 1)
        hit = cols == y[:, None]
        ly = _psum(jnp.sum(jnp.where(hit, l1, 0), axis=1), cfg.axis)
        ce = jnp.where((y >= 0) & (y < v_all), -ly, jnp.nan)
        loss = (1 - alpha) * d + alpha * ce
    else:
        loss = d
    if kept is not None:
        loss = jnp.where(kept, loss, 0)
    if g is None:
        return loss, d, ce, None, None
    if kept is not None:
        g = jnp.where(kept, g, 0)
    soft = g if not cfg.with_hard else (1 - alpha) * g
    soft = _lm.scale_by_temperature(soft, cfg.t)
    s_s = _psum(jnp.sum(psi_s, axis=1, keepdims=True), cfg.axis)
    dzr = soft[:, None] * (psi_s - ps * s_s)
    if cfg.with_hard:
        dzr = dzr + (alpha * g)[:, None] * (p1 - hit.astype(acc))
    dzt = None
    if cfg.teacher_grad:
        s_t = _psum(jnp.sum(psi_t, axis=1, keepdims=True), cfg.axis)
        dzt = soft[:, None] * (psi_t - pt * s_t)
    return loss, d, ce, dzr, dzt


def _grads_of_chunk(x, w, dz, acc, layout):
    """(dx rows, dW contribution) of a chunk's logits gradient ``dz``."""
    dzg = dz.astype(x.dtype)
    if layout == "dv":
        dx = lax.dot_general(
            dzg, w.astype(x.dtype), (((1,), (1,)), ((), ())), preferred_element_type=acc
        )
        dw = lax.dot_general(x, dzg, (((0,), (0,)), ((), ())), preferred_element_type=acc)
    else:
        dx = lax.dot_general(
            dzg, w.astype(x.dtype), (((1,), (0,)), ((), ())), preferred_element_type=acc
        )
        dw = lax.dot_general(dzg, x, (((0,), (0,)), ((), ())), preferred_element_type=acc)
    return dx, dw


def _sweep(xs, ws, xt, wt, y, alpha, g, v0, cfg: DistillConfig):
    """All chunks: per-token (loss, D, CE) and, with ``g``, the gradients of Σ g·loss w.r.t.
    (xs, ws, xt, wt) (teacher ones None unless ``cfg.teacher_grad``)."""
    acc = alpha.dtype
    n = xs.shape[0]
    rows = cfg.rows
    want = g is not None
    zeros = jnp.zeros((n,), acc)
    carry = {"loss": zeros, "d": zeros, "ce": zeros}
    if want:
        carry["dxs"] = jnp.zeros(xs.shape, acc)
        carry["dws"] = jnp.zeros(ws.shape, acc)
        if cfg.teacher_grad:
            carry["dxt"] = jnp.zeros(xt.shape, acc)
            carry["dwt"] = jnp.zeros(wt.shape, acc)
    if n == 0:
        return carry

    def step(c, r0, nominal):
        sl = functools.partial(lax.dynamic_slice_in_dim, start_index=r0, slice_size=rows, axis=0)
        gc = None
        if want:
            gc = sl(g)
            if nominal is not None:  # the shifted last chunk: rows before `nominal` are done
                fresh = r0 + jnp.arange(rows) >= nominal
                gc = jnp.where(fresh, gc, 0)
        loss, d, ce, dzr, dzt = _chunk(sl(xs), ws, sl(xt), wt, sl(y), alpha, gc, v0, cfg, acc)
        c = dict(c)
        c["loss"] = lax.dynamic_update_slice_in_dim(c["loss"], loss, r0, 0)
        c["d"] = lax.dynamic_update_slice_in_dim(c["d"], d, r0, 0)
        if ce is not None:
            c["ce"] = lax.dynamic_update_slice_in_dim(c["ce"], ce, r0, 0)
        if want:
            for xk, wk, dz, x, w in (("dxs", "dws", dzr, xs, ws), ("dxt", "dwt", dzt, xt, wt)):
                if dz is None:
                    continue
                dx, dw = _grads_of_chunk(sl(x), w, dz, acc, cfg.layout)
                if nominal is not None:
                    old = lax.dynamic_slice_in_dim(c[xk], r0, rows, 0)
                    dx = jnp.where(fresh[:, None], dx, old)
                c[xk] = lax.dynamic_update_slice_in_dim(c[xk], dx, r0, 0)
                c[wk] = c[wk] + dw
        return c

    # Inside shard_map the gradient accumulators vary over the vocabulary axis (each device
    # holds its columns' part); the per-token values are psum-combined, hence replicated.
    grads = {k: a for k, a in carry.items() if k.startswith("d") and k != "d"}
    carry.update(_varying_like(grads, xs, ws, xt, wt))
    return _run_blocks(step, carry, n, rows)


def _outs(r, xs, ws, xt, wt, scale=None):
    def f(k, like):
        if k not in r:
            return jnp.zeros_like(like)
        a = r[k] if scale is None else r[k] * scale
        return a.astype(like.dtype)

    return f("dxs", xs), f("dws", ws), f("dxt", xt), f("dwt", wt)


# Per-token values: a forward pass, and a backward pass that recomputes each chunk.


@functools.partial(jax.custom_vjp, nondiff_argnums=(7,))
def _per_token(xs, ws, xt, wt, y, alpha, v0, cfg):
    return _sweep(xs, ws, xt, wt, y, alpha, None, v0, cfg)["loss"]


def _per_token_fwd(xs, ws, xt, wt, y, alpha, v0, cfg):
    r = _sweep(xs, ws, xt, wt, y, alpha, None, v0, cfg)
    return r["loss"], (xs, ws, xt, wt, y, alpha, v0, r["ce"] - r["d"])


def _per_token_bwd(cfg, res, g):
    xs, ws, xt, wt, y, alpha, v0, ce_d = res
    r = _sweep(xs, ws, xt, wt, y, alpha, g, v0, cfg)
    da = _alpha_grad(g, ce_d, y, cfg)
    return (*_outs(r, xs, ws, xt, wt), None, da, None)


def _alpha_grad(g, ce_d, y, cfg):
    if not cfg.with_hard:
        return jnp.zeros((), ce_d.dtype)
    kept = True if cfg.ignore_index is None else y != cfg.ignore_index
    return jnp.sum(jnp.where(kept, g * ce_d, 0))


_per_token.defvjp(_per_token_fwd, _per_token_bwd)


# Σ_n c_n l_n: the gradient formed in the forward pass (the cotangent of each token is c_n times
# the scalar cotangent), the backward scales it.


@functools.partial(jax.custom_vjp, nondiff_argnums=(8,))
def _reduced(xs, ws, xt, wt, y, alpha, c, v0, cfg):
    return jnp.sum(c * _sweep(xs, ws, xt, wt, y, alpha, None, v0, cfg)["loss"])


def _reduced_fwd(xs, ws, xt, wt, y, alpha, c, v0, cfg):
    r = _sweep(xs, ws, xt, wt, y, alpha, c, v0, cfg)
    grads = _outs(r, xs, ws, xt, wt)
    return jnp.sum(c * r["loss"]), (grads, _alpha_grad(c, r["ce"] - r["d"], y, cfg), r["loss"])


def _reduced_bwd(cfg, res, g):
    grads, da, loss = res
    scaled = tuple((a * g.astype(a.dtype)).astype(a.dtype) for a in grads)
    return (*scaled, None, da * g, loss * g, None)


_reduced.defvjp(_reduced_fwd, _reduced_bwd)


def distill_per_token(xs, ws, xt, wt, y, alpha, cfg: DistillConfig, v0: Any = 0):
    """Per-token losses [N] (see the module docstring); inputs validated, 2-d, ``y`` int32 [N]
    (any values when ``cfg.with_hard`` is False and ``cfg.ignore_index`` is None), ``alpha`` a
    scalar in the accumulation dtype. The teacher's gradient is zero unless teacher_grad."""
    return _per_token(*_cast_varying(xs, ws, xt, wt), y, alpha, jnp.asarray(v0, jnp.int32), cfg)


def distill_reduced(xs, ws, xt, wt, y, alpha, c, cfg: DistillConfig, v0: Any = 0):
    """Σ_n c_n l_n, its gradient formed in the forward pass; arguments as
    :func:`distill_per_token`, ``c`` [N] per-token coefficients (0 for uncounted tokens)."""
    v0 = jnp.asarray(v0, jnp.int32)
    return _reduced(*_cast_varying(xs, ws, xt, wt), y, alpha, c, v0, cfg)


def distill_impl(xs, ws, xt, wt, y, alpha, coef, v0, cfg: DistillConfig):
    """Per-token losses (``coef`` None) or Σ coef·loss, the teacher held constant unless
    ``cfg.teacher_grad``."""
    if not cfg.teacher_grad:
        xt, wt = lax.stop_gradient(xt), lax.stop_gradient(wt)
    if coef is None:
        return distill_per_token(xs, ws, xt, wt, y, alpha, cfg, v0)
    return distill_reduced(xs, ws, xt, wt, y, alpha, coef, cfg, v0)


# ---------------------------------------------------------------------------------------------
# Validation shared by linear_distillation and vocab_parallel_linear_distillation


def check_pair(fn: str, layout: Any, hidden: jax.Array, weight: jax.Array, who: str) -> int:
    """The vocabulary size of ``{who}_weight`` (checked against ``{who}_hidden``)."""
    if layout not in ("dv", "vd"):
        raise ValueError(
            f"jaxloss.{fn}: `weight_layout` must be 'dv' (weights [D, V]) or 'vd' ([V, D]); got "
            f"{layout!r}."
        )
    if hidden.ndim < 1:
        raise ValueError(f"jaxloss.{fn}: `{who}_hidden` must have a last (feature) axis.")
    d_axis = 0 if layout == "dv" else 1
    if weight.ndim != 2 or weight.shape[d_axis] != hidden.shape[-1]:
        raise ValueError(
            f"jaxloss.{fn}: `{who}_weight` must be 2-d with the hidden size "
            f"D={hidden.shape[-1]} of `{who}_hidden` on axis {d_axis} for "
            f"weight_layout={layout!r}; got {who}_weight.shape={tuple(weight.shape)}."
        )
    return int(weight.shape[1 - d_axis])


class Prepared(NamedTuple):
    """Validated, flattened inputs of a distillation call."""

    xs: jax.Array
    ws: jax.Array
    xt: jax.Array
    wt: jax.Array
    y: jax.Array  # int32 [N] (zeros without labels)
    alpha: jax.Array
    weights: ArrayLike  # [*batch] or None
    kept: Any  # [*batch] bool or None
    batch_shape: tuple
    acc: Any
    cfg: DistillConfig


def prepare_distillation(
    fn: str,
    student_hidden: ArrayLike,
    student_weight: ArrayLike,
    teacher_hidden: ArrayLike,
    teacher_weight: ArrayLike,
    *,
    divergence: str,
    beta: ArrayLike,
    temperature: ArrayLike,
    labels: ArrayLike | None,
    hard_label_weight: ArrayLike,
    ignore_index: int | None,
    teacher_gradient: bool,
    weight_layout: str,
    block_size: int,
    weights: ArrayLike | None,
    axis: Any = None,
    shards: int = 1,
) -> Prepared:
    """Checks and flattens the arguments; ``shards`` devices each hold V_local columns (the
    labels are global ids in [0, V_local · shards))."""
    xs = _checks.check_floating(fn, "student_hidden", student_hidden)
    ws = _checks.check_floating(fn, "student_weight", student_weight)
    xt = _checks.check_floating(fn, "teacher_hidden", teacher_hidden)
    wt = _checks.check_floating(fn, "teacher_weight", teacher_weight)
    v = check_pair(fn, weight_layout, xs, ws, "student")
    vt = check_pair(fn, weight_layout, xt, wt, "teacher")
    if v != vt:
        raise ValueError(
            f"jaxloss.{fn}: `student_weight` and `teacher_weight` must share the vocabulary; got "
            f"V={v} (student_weight.shape={tuple(ws.shape)}) and V={vt} "
            f"(teacher_weight.shape={tuple(wt.shape)})."
        )
    if v == 0:
        raise ValueError(f"jaxloss.{fn}: `student_weight` must have a vocabulary of V >= 1.")
    batch_shape = tuple(xs.shape[:-1])
    if tuple(xt.shape[:-1]) != batch_shape:
        raise ValueError(
            f"jaxloss.{fn}: `teacher_hidden` must have the token shape {batch_shape} of "
            f"`student_hidden`; got teacher_hidden.shape={tuple(xt.shape)}."
        )
    kind, b = _lm.static_divergence(fn, divergence, beta)
    t = _lm.static_temperature(fn, temperature)
    block = min(_static_positive_int(fn, "block_size", block_size), v)
    _checks.require(fn, "hard_label_weight", hard_label_weight, "in [0, 1]")
    alpha = _checks.concrete_float(hard_label_weight)
    y = _lm._distill_labels(
        fn, labels, batch_shape, v * shards, ignore_index, alpha, "`student_hidden`"
    )
    acc = _checks.compute_dtype(xs, ws, xt, wt)
    w = _lm.token_weights(fn, weights, batch_shape, acc)
    n = int(np.prod(batch_shape, dtype=np.int64))
    cfg = DistillConfig(
        weight_layout,
        rows_for(n, v, block),
        t,
        kind,
        b,
        bool(teacher_gradient),
        alpha is None or alpha != 0,
        ignore_index if y is not None else None,
        axis,
    )
    return Prepared(
        xs.astype(jnp.result_type(xs.dtype, ws.dtype)).reshape(-1, xs.shape[-1]),
        ws,
        xt.astype(jnp.result_type(xt.dtype, wt.dtype)).reshape(-1, xt.shape[-1]),
        wt,
        jnp.zeros((n,), jnp.int32) if y is None else y.reshape(-1).astype(jnp.int32),
        jnp.asarray(hard_label_weight, acc),
        w,
        None if cfg.ignore_index is None else y != ignore_index,
        batch_shape,
        acc,
        cfg,
    )


def finish_distillation(p: Prepared, reduction: str, impl, v0: Any = 0) -> jax.Array:
    """Runs ``impl`` (:func:`distill_impl`, jitted or not) and applies ``reduction``."""
    v0 = jnp.asarray(v0, jnp.int32)
    if reduction == "none":
        loss = impl(p.xs, p.ws, p.xt, p.wt, p.y, p.alpha, None, v0, p.cfg)
        return _lm.reduce_tokens(loss.reshape(p.batch_shape), "none", p.weights, p.kept)
    coef = _lm.reduction_coefficients(reduction, p.weights, p.kept, p.batch_shape, p.acc)
    return impl(p.xs, p.ws, p.xt, p.wt, p.y, p.alpha, coef.reshape(-1), v0, p.cfg)
