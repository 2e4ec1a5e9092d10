"""Fused distillation: the divergence between a teacher's and a student's tempered softmax over a
large vocabulary, from both models' hidden states and unembeddings, without either model's
[tokens, vocabulary] logits.

Kernel (``_distill_stats``), per token n, with zs = xs Ws / T and zt = xt Wt / T in blocks of
``block`` vocabulary columns:

  pass 1   online log-sum-exp of both: lse_s, lse_t                         (2 GEMMs per block)
           (the forward KL is finished here: it only needs the teacher-weighted sums of zt and
           zs, accumulated online like the log-sum-exps, so it skips pass 2)
  pass 2   ls = zs − lse_s, lt = zt − lse_t;  D = Σ_c φ(ls_c, lt_c),
           S_s = Σ_c ψ_s,c,  S_t = Σ_c ψ_t,c                                 (2 GEMMs per block)
  backward ∂D/∂zs_c = (ψ_s,c − p_s,c S_s) (and the teacher's alike when asked), times g_n / T;
           dxs += dzs Wsᵀ, dWs_block = xsᵀ dzs                          (1 + 2 GEMMs per block)

with φ, ψ_s = ∂φ/∂ls, ψ_t = ∂φ/∂lt the per-class terms of ``jaxloss._lm.column_terms`` (shared
with :func:`jaxloss.distillation_loss`). Residuals: the inputs and four [N] vectors. The JSD's
log-mixture needs both normalisers before any class term, hence the two forward passes; the
forward KL needs one.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from .. import _lm, _reduce
from .._core import checks as _checks
from .._core.registry import register
from ._kernel import KernelConfig, _run_blocks, _slice_w, linear_lse_stats
from ._prepare import DEFAULT_BLOCK_SIZE, _static_positive_int

__all__ = ["linear_distillation", "linear_distillation_topk"]


class DistillConfig(NamedTuple):
    """Static configuration of the distillation kernel."""

    layout: str  # "dv" or "vd" (both weights)
    block: int
    t: float  # temperature
    kind: str  # "forward_kl" | "reverse_kl" | "jsd"
    beta: float
    teacher_grad: bool


def _logits(x, w, v0, cfg: DistillConfig, acc):
    wb = _slice_w(w, v0, cfg.block, cfg.layout).astype(x.dtype)
    contract = ((1,), (0,)) if cfg.layout == "dv" else ((1,), (1,))
    z = lax.dot_general(x, wb, (contract, ((), ())), preferred_element_type=acc)
    return _lm.scale_by_temperature(z, cfg.t), wb


def _fresh(v0, nominal, size):
    if nominal is None:
        return None
    return v0 + lax.broadcasted_iota(jnp.int32, (1, size), 1) >= nominal


def _log_probs(z, lse):
    m, log_s = lse
    return (z - m[:, None]) - log_s[:, None]


def _acc_dtype(*arrays):
    return jnp.promote_types(jnp.result_type(*arrays), jnp.float32)


def _forward(xs, ws, xt, wt, cfg: DistillConfig):
    acc = _acc_dtype(xs, ws, xt, wt)
    n = xs.shape[0]
    v = int(ws.shape[1] if cfg.layout == "dv" else ws.shape[0])
    neg_inf = jnp.asarray(-jnp.inf, acc)

    def online(m, s, z):
        m_new = jnp.maximum(m, jnp.max(z, axis=1))
        ref = jnp.where(m_new != neg_inf, m_new, 0)
        return m_new, s * jnp.exp(m - ref) + jnp.sum(jnp.exp(z - ref[:, None]), axis=1)

    one_pass = cfg.kind == "forward_kl"

    def pass1(carry, v0, nominal):
        ms, ss, mt, st, a, b = carry
        zs, _ = _logits(xs, ws, v0, cfg, acc)
        zt, _ = _logits(xt, wt, v0, cfg, acc)
        fresh = _fresh(v0, nominal, cfg.block)
        if fresh is not None:
            zs, zt = jnp.where(fresh, zs, neg_inf), jnp.where(fresh, zt, neg_inf)
        ms_new, ss_new = online(ms, ss, zs)
        mt_new, st_new = online(mt, st, zt)
        if one_pass:
            # The forward KL in the same pass: a = Σ e^{zt − rt}(zt − rt) and
            # b = Σ e^{zt − rt}(zs − rs), rebased when the references rt, rs move.
            rt_old, rt = (jnp.where(m != neg_inf, m, 0) for m in (mt, mt_new))
            rs_old, rs = (jnp.where(m != neg_inf, m, 0) for m in (ms, ms_new))
            f = jnp.exp(mt - rt)
            e = jnp.exp(zt - rt[:, None])
            dt, ds = zt - rt[:, None], zs - rs[:, None]
            if fresh is not None:
                dt, ds = jnp.where(fresh, dt, 0), jnp.where(fresh, ds, 0)
            a = f * (a - (rt - rt_old) * st) + jnp.sum(e * dt, axis=1)
            b = f * (b - (rs - rs_old) * st) + jnp.sum(e * ds, axis=1)
        return ms_new, ss_new, mt_new, st_new, a, b

    init = jnp.full((n,), -jnp.inf, acc)
    zeros = jnp.zeros((n,), acc)
    carry = (init, zeros, init, zeros, zeros, zeros)
    ms, ss, mt, st, a, b = _run_blocks(pass1, carry, v, cfg.block)
    # Each log-sum-exp is kept as (max, log Σ exp(z − max)): log-probabilities are formed as
    # (z − max) − log-sum, exact near the maximum (max + log-sum would round the log-sum to the
    # ulp of the max: 1e-3 at logits of 1e4).
    lse_s = (ms, jnp.log(ss))
    lse_t = (mt, jnp.log(st))
    if one_pass:
        # KL(p_t ‖ p_s) = (E_t[zt] − lse_t) − (E_t[zs] − lse_s) = (a − b)/st − log st + log ss;
        # ψ_s = −p_t sums to −1 and ψ_t = p_t(lt − ls + 1) to KL + 1.
        d = (a - b) / st - lse_t[1] + lse_s[1]
        return d, (lse_s, lse_t, -jnp.ones_like(d), d + 1)

    def pass2(carry, v0, nominal):
        d, s_s, s_t = carry
        zs, _ = _logits(xs, ws, v0, cfg, acc)
        zt, _ = _logits(xt, wt, v0, cfg, acc)
        phi, psi_s, psi_t = _lm.column_terms(
            _log_probs(zs, lse_s), _log_probs(zt, lse_t), cfg.kind, cfg.beta
        )
        fresh = _fresh(v0, nominal, cfg.block)
        if fresh is not None:
            phi, psi_s, psi_t = (jnp.where(fresh, a, 0) for a in (phi, psi_s, psi_t))
        return d + jnp.sum(phi, 1), s_s + jnp.sum(psi_s, 1), s_t + jnp.sum(psi_t, 1)

    d, s_s, s_t = _run_blocks(pass2, (zeros, zeros, zeros), v, cfg.block)
    return d, (lse_s, lse_t, s_s, s_t)


def _grad_block(x, w, dz, dx, dw, v0, nominal, wb, cfg: DistillConfig, acc):
    size = cfg.block
    dzg = dz.astype(x.dtype)
    if cfg.layout == "dv":
        dx = dx + lax.dot_general(dzg, wb, (((1,), (1,)), ((), ())), preferred_element_type=acc)
        dwb = lax.dot_general(x, dzg, (((0,), (0,)), ((), ())), preferred_element_type=acc)
        axis = 1
    else:
        dx = dx + lax.dot_general(dzg, wb, (((1,), (0,)), ((), ())), preferred_element_type=acc)
        dwb = lax.dot_general(dzg, x, (((0,), (0,)), ((), ())), preferred_element_type=acc)
        axis = 0
    dwb = dwb.astype(dw.dtype)
    if nominal is not None:  # the shifted last block keeps the columns written before
        fresh = v0 + jnp.arange(size) >= nominal
        old = lax.dynamic_slice_in_dim(dw, v0, size, axis=axis)
        dwb = jnp.where(fresh[None, :] if axis == 1 else fresh[:, None], dwb, old)
    return dx, lax.dynamic_update_slice_in_dim(dw, dwb, v0, axis=axis)


def _backward(xs, ws, xt, wt, res, g, cfg: DistillConfig):
    lse_s, lse_t, s_s, s_t = res
    acc = s_s.dtype
    v = int(ws.shape[1] if cfg.layout == "dv" else ws.shape[0])
    scale = _lm.scale_by_temperature(g, cfg.t)

    def step(carry, v0, nominal):
        dxs, dws, dxt, dwt = carry
        zs, wsb = _logits(xs, ws, v0, cfg, acc)
        zt, wtb = _logits(xt, wt, v0, cfg, acc)
        ls, lt = _log_probs(zs, lse_s), _log_probs(zt, lse_t)
        _, psi_s, psi_t = _lm.column_terms(ls, lt, cfg.kind, cfg.beta)
        fresh = _fresh(v0, nominal, cfg.block)
        dzs = scale[:, None] * (psi_s - jnp.exp(ls) * s_s[:, None])
        if fresh is not None:
            dzs = jnp.where(fresh, dzs, 0)
        dxs, dws = _grad_block(xs, ws, dzs, dxs, dws, v0, nominal, wsb, cfg, acc)
        if cfg.teacher_grad:
            dzt = scale[:, None] * (psi_t - jnp.exp(lt) * s_t[:, None])
            if fresh is not None:
                dzt = jnp.where(fresh, dzt, 0)
            dxt, dwt = _grad_block(xt, wt, dzt, dxt, dwt, v0, nominal, wtb, cfg, acc)
        return dxs, dws, dxt, dwt

    carry = (
        jnp.zeros(xs.shape, acc),
        jnp.zeros(ws.shape, ws.dtype),
        jnp.zeros(xt.shape, acc) if cfg.teacher_grad else None,
        jnp.zeros(wt.shape, wt.dtype) if cfg.teacher_grad else None,
    )
    dxs, dws, dxt, dwt = _run_blocks(step, carry, v, cfg.block)
    if not cfg.teacher_grad:
        return dxs.astype(xs.dtype), dws, jnp.zeros_like(xt), jnp.zeros_like(wt)
    return dxs.astype(xs.dtype), dws, dxt.astype(xt.dtype), dwt


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _distill_stats(xs, ws, xt, wt, cfg):
    return _forward(xs, ws, xt, wt, cfg)[0]


def _distill_fwd(xs, ws, xt, wt, cfg):
    d, res = _forward(xs, ws, xt, wt, cfg)
    return d, (xs, ws, xt, wt, res)


def _distill_bwd(cfg, saved, g):
    xs, ws, xt, wt, res = saved
    return _backward(xs, ws, xt, wt, res, g, cfg)


_distill_stats.defvjp(_distill_fwd, _distill_bwd)


def _check_pair(fn: str, layout: Any, hidden: jax.Array, weight: jax.Array, who: str) -> int:
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


@register(plot=None)
def linear_distillation(
    student_hidden: Any,
    student_weight: Any,
    teacher_hidden: Any,
    teacher_weight: Any,
    *,
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
    """Per-token distillation divergence of two language-model heads, without their logits.

    Math: :func:`jaxloss.distillation_loss` of ``student_logits = student_hidden @
    student_weight`` and ``teacher_logits = teacher_hidden @ teacher_weight`` (same options):
      l = (1 − α) D(p_t, p_s) + α CE(student_logits, labels),  p = softmax(logits / T),
    D the forward KL(p_t ‖ p_s), the reverse KL(p_s ‖ p_t) or the generalized JSD
    β KL(p_t ‖ m) + (1 − β) KL(p_s ‖ m), m = β p_t + (1 − β) p_s, whose ends follow TRL's
    convention: β = 0 is the forward KL and β = 1 the reverse KL (limits of JSD_β/β and
    JSD_β/(1 − β)). No T² factor. The two models may have different hidden sizes; they share
    the vocabulary. Both are streamed in blocks of ``block_size`` vocabulary columns: neither
    [N, V] array exists; XLA temporaries of value-and-grad are a few float32 [N, block] tiles
    plus O(N·D).

    Gradient (any cotangent g per token; ls, lt the log-probabilities, ψ = ∂D/∂ls per class):
      ∂D/∂student_logits_c = (ψ_c − p_s,c Σ_j ψ_j)/T — (p_s − p_t)/T for the forward KL —
    then ∂/∂student_hidden = Σ_c ∂/∂z_c W_c and ∂/∂student_weight_c = hidden ∂/∂z_c. The teacher
    is held constant (zero gradient) unless ``teacher_gradient=True``. The hard-label term adds
    α(softmax(z_s) − onehot(y)) (the fused cross-entropy kernel). Reverse mode only.

    Args:
      student_hidden: floating [..., Ds].
      student_weight: [Ds, V] (``weight_layout="dv"``) or [V, Ds] (``"vd"``).
      teacher_hidden: floating [..., Dt], the student's token shape.
      teacher_weight: [Dt, V] or [V, Dt], the same layout and vocabulary as the student's.
      divergence: ``"forward_kl"`` (default), ``"reverse_kl"`` or ``"jsd"``.
      beta: concrete β in [0, 1] for ``"jsd"`` (default 0.5).
      temperature: concrete T > 0 (default 1).
      labels: optional integer hard labels of the token shape.
      hard_label_weight: α in [0, 1] (default 0; > 0 needs ``labels``).
      ignore_index: optional label value whose tokens give 0 and are not counted.
      teacher_gradient: let gradients reach the teacher's inputs (default False).
      weight_layout: ``"dv"`` (default) or ``"vd"`` for both weights.
      block_size: vocabulary columns per block (static; clamped to V).
      weights: optional per-token weights ≥ 0 broadcastable to the token shape.
      reduction: ``"none"`` (default), ``"mean"`` (weighted mean over kept tokens; 0 with a
        zero gradient when none is kept) or ``"sum"``.

    Returns:
      Per-token values of the token shape (or a scalar), float32 (float64 for float64 inputs).

    Examples:
      >>> import jax.numpy as jnp, jaxloss.fused as F
      >>> xs = jnp.ones((3, 4)); ws = jnp.zeros((4, 6)); xt = jnp.ones((3, 2))
      >>> wt = jnp.zeros((2, 6)).at[:, 0].set(1.0)
      >>> [round(v, 4) for v in F.linear_distillation(xs, ws, xt, wt, block_size=4).tolist()]
      [0.4678, 0.4678, 0.4678]
    """
    fn = "linear_distillation"
    _reduce.check_reduction(fn, reduction)
    xs = _checks.check_floating(fn, "student_hidden", student_hidden)
    ws = _checks.check_floating(fn, "student_weight", student_weight)
    xt = _checks.check_floating(fn, "teacher_hidden", teacher_hidden)
    wt = _checks.check_floating(fn, "teacher_weight", teacher_weight)
    v = _check_pair(fn, weight_layout, xs, ws, "student")
    vt = _check_pair(fn, weight_layout, xt, wt, "teacher")
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
    y = _lm._distill_labels(fn, labels, batch_shape, v, ignore_index, alpha, "`student_hidden`")
    acc = _checks.compute_dtype(xs, ws, xt, wt)
    w = _lm.token_weights(fn, weights, batch_shape, acc)
    cfg = DistillConfig(weight_layout, block, t, kind, b, bool(teacher_gradient))
    xs2 = xs.astype(jnp.result_type(xs.dtype, ws.dtype)).reshape(-1, xs.shape[-1])
    xt2 = xt.astype(jnp.result_type(xt.dtype, wt.dtype)).reshape(-1, xt.shape[-1])
    with_hard = alpha is None or alpha != 0
    yy = None if y is None else y.reshape(-1).astype(jnp.int32)
    loss = _distill_jit(
        xs2, ws, xt2, wt, yy, jnp.asarray(hard_label_weight, acc), (cfg, with_hard, ignore_index)
    ).reshape(batch_shape)
    kept = None if ignore_index is None else y != ignore_index
    return _lm.reduce_tokens(loss, reduction, w, kept)


def _distill_impl(xs, ws, xt, wt, y, alpha, statics):
    cfg, with_hard, ignore_index = statics
    if not cfg.teacher_grad:
        xt, wt = lax.stop_gradient(xt), lax.stop_gradient(wt)
    loss = _distill_stats(xs, ws, xt, wt, cfg)
    acc = loss.dtype
    if with_hard:
        v = int(ws.shape[1] if cfg.layout == "dv" else ws.shape[0])
        _, nll, _ = linear_lse_stats(
            xs, ws, None, y, None, KernelConfig(cfg.layout, cfg.block, None, False)
        )
        ce = jnp.where((y >= 0) & (y < v), nll, jnp.nan)
        loss = (1 - alpha.astype(acc)) * loss + alpha.astype(acc) * ce
    if ignore_index is not None:
        loss = jnp.where(y == ignore_index, 0, loss)
    return loss


_distill_jit = jax.jit(_distill_impl, static_argnums=6)


@register(plot=None)
def linear_distillation_topk(
    student_hidden: Any,
    student_weight: Any,
    teacher_topk_ids: Any,
    teacher_topk_log_probs: Any,
    *,
    temperature: Any = 1.0,
    weight_layout: str = "dv",
    block_size: int = DEFAULT_BLOCK_SIZE,
    ignore_index: int | None = None,
    labels: Any = None,
    weights: Any = None,
    reduction: str = "none",
) -> jax.Array:
    """Forward KL from a teacher known only on its top-k tokens (offline distillation), fused.

    Math (per token; K the teacher's k token ids, lt_k its log-probabilities on them as given,
    p_s = softmax(student_hidden @ W / T), ls = log p_s). The tail — every token outside K — is
    one outcome: the teacher's tail mass is r = 1 − Σ_k exp(lt_k) (clamped at 0), the student's
    q = 1 − Σ_k p_s,k. The loss is the KL between the two distributions on these k + 1 outcomes:
      l = Σ_k exp(lt_k)(lt_k − ls_k) + r (log r − log q)        (0·log 0 = 0).
    It equals the full KL(p_t ‖ p_s) when the teacher's mass is all on K (r = 0, then the tail
    term vanishes) and is a lower bound of it otherwise (coarsening never increases a KL): the
    unknown tail is neither dropped (which would reward a student that puts its mass outside K
    without limit) nor renormalised away (which would change the teacher's probabilities on K).
    The teacher's log-probabilities are used as given (no temperature is applied to them; store
    them at the temperature you distill at); k ids must be distinct. Precision: q is formed as
    1 − Σ_k p_s,k, so its relative error is about the accumulation dtype's epsilon over q (1e-7/q
    in float32): a student that already puts nearly all its mass on K while the teacher keeps a
    tail gets a tail term accurate to that; float64 inputs compute it in float64.

    Gradient (w.r.t. the student's logits z, any cotangent per token):
      ∂l/∂z_c = (p_s,c − w_c)/T,   w_c = exp(lt_c) for c ∈ K,   w_c = r p_s,c / q off K
    (the teacher's tail mass spread over the tail in the student's proportions). Autodiff of the
    kernel's log-sum-exp (no [N, V] array) and of the k gathered logits. Reverse mode only.

    Args:
      student_hidden: floating [..., D].
      student_weight: [D, V] (``weight_layout="dv"``) or [V, D] (``"vd"``).
      teacher_topk_ids: integer [..., k] token ids in [0, V), distinct per token.
      teacher_topk_log_probs: floating [..., k] teacher log-probabilities (≤ 0, Σ exp ≤ 1).
      temperature: concrete T > 0 for the student (default 1).
      weight_layout: ``"dv"`` (default) or ``"vd"``.
      block_size: vocabulary columns per kernel block (static).
      ignore_index: with ``labels``, the label value whose tokens give 0 and are not counted.
      labels: optional integer token-shaped labels, used only for ``ignore_index``.
      weights: optional per-token weights ≥ 0.
      reduction: ``"none"`` (default), ``"mean"`` or ``"sum"`` over kept tokens.

    Returns:
      Per-token values of the token shape (or a scalar), float32 (float64 for float64 inputs).

    Examples:
      >>> import jax.numpy as jnp, jaxloss.fused as F
      >>> x = jnp.ones((1, 2)); w = jnp.zeros((2, 4))                 # student uniform on 4
      >>> ids = jnp.array([[0, 1]]); lt = jnp.log(jnp.array([[0.5, 0.5]]))
      >>> round(float(F.linear_distillation_topk(x, w, ids, lt, block_size=2)[0]), 4)  # log 2
      0.6931
    """
    fn = "linear_distillation_topk"
    _reduce.check_reduction(fn, reduction)
    xs = _checks.check_floating(fn, "student_hidden", student_hidden)
    ws = _checks.check_floating(fn, "student_weight", student_weight)
    v = _check_pair(fn, weight_layout, xs, ws, "student")
    batch_shape = tuple(xs.shape[:-1])
    ids = _checks.check_integer(fn, "teacher_topk_ids", teacher_topk_ids)
    lt = _checks.check_floating(fn, "teacher_topk_log_probs", teacher_topk_log_probs)
    if ids.ndim != len(batch_shape) + 1 or tuple(ids.shape[:-1]) != batch_shape:
        raise ValueError(
            f"jaxloss.{fn}: `teacher_topk_ids` must have shape (*{batch_shape}, k) (the token "
            f"shape of `student_hidden` plus k); got teacher_topk_ids.shape={tuple(ids.shape)}."
        )
    _checks.check_same_shape(fn, "teacher_topk_ids", ids, "teacher_topk_log_probs", lt)
    concrete = _checks.concrete_array(teacher_topk_ids)
    if concrete is not None and ((concrete < 0) | (concrete >= v)).any():
        bad = concrete[(concrete < 0) | (concrete >= v)]
        raise ValueError(
            f"jaxloss.{fn}: `teacher_topk_ids` must be token ids in [0, {v}) (the vocabulary of "
            f"`student_weight`, shape {tuple(ws.shape)}); got {bad.ravel()[:5].tolist()}."
        )
    _checks.check_values(
        fn, "teacher_topk_log_probs", teacher_topk_log_probs, "<= 0", allow_nan=True
    )
    t = _lm.static_temperature(fn, temperature)
    block = min(_static_positive_int(fn, "block_size", block_size), v)
    y = _lm._distill_labels(fn, labels, batch_shape, v, ignore_index, 0.0, "`student_hidden`")
    acc = _checks.compute_dtype(xs, ws, lt)
    w = _lm.token_weights(fn, weights, batch_shape, acc)
    k = ids.shape[-1]
    x2 = xs.astype(jnp.result_type(xs.dtype, ws.dtype)).reshape(-1, xs.shape[-1])
    loss = _topk_jit(
        x2,
        ws,
        ids.reshape(-1, k).astype(jnp.int32),
        lt.reshape(-1, k).astype(acc),
        (KernelConfig(weight_layout, block, None, False), t),
    ).reshape(batch_shape)
    kept = None
    if ignore_index is not None and y is not None:
        kept = y != ignore_index
        loss = jnp.where(kept, loss, 0)
    return _lm.reduce_tokens(loss, reduction, w, kept)


def _topk_impl(x, w, ids, lt, statics):
    cfg, t = statics
    acc = lt.dtype
    xt = _lm.scale_by_temperature(x, t)
    # The student's log-sum-exp over the whole vocabulary (the kernel; no [N, V] array).
    lse, _, _ = linear_lse_stats(xt, w, None, jnp.zeros(x.shape[0], jnp.int32), None, cfg)
    wk = jnp.take(w, ids, axis=1 if cfg.layout == "dv" else 0)  # [D, N, k] or [N, k, D]
    if cfg.layout == "dv":
        wk = jnp.moveaxis(wk, 0, -1)
    zk = jnp.einsum("nd,nkd->nk", xt.astype(acc), wk.astype(acc))
    ls = zk - lse[:, None]
    pt = jnp.exp(lt)
    r = jnp.maximum(1 - jnp.sum(pt, axis=1), 0)
    q = 1 - jnp.sum(jnp.exp(ls), axis=1)
    q = jnp.maximum(q, jnp.finfo(acc).tiny)
    head = jnp.sum(pt * (lt - ls), axis=1)
    pos = r > 0
    tail = jnp.where(pos, r * (jnp.log(jnp.where(pos, r, 1)) - jnp.log(q)), 0)
    return head + tail


_topk_jit = jax.jit(_topk_impl, static_argnums=4)
