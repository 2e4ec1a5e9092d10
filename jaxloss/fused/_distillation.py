"""Fused distillation: the divergence between a teacher's and a student's tempered softmax over a
large vocabulary, from both models' hidden states and unembeddings, without either model's
[tokens, vocabulary] logits.

The kernel (``jaxloss/fused/_distill_kernel.py``) walks the tokens in chunks whose logits span
the vocabulary, so every normaliser is exact in one pass; the gradient of a 'sum' or 'mean' is
formed in that same pass (its per-token cotangents are known there), the gradient of per-token
values by a backward pass that recomputes each chunk. The top-k form runs on the blocked
log-sum-exp kernel of ``_kernel.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from .. import _lm, _reduce
from .._core import checks as _checks
from .._core.registry import register
from ._distill_kernel import check_pair, distill_impl, finish_distillation, prepare_distillation
from ._kernel import KernelConfig, linear_lse_stats
from ._prepare import DEFAULT_BLOCK_SIZE, _static_positive_int

__all__ = ["linear_distillation", "linear_distillation_topk"]


@register(plot=None)
def linear_distillation(
    student_hidden: ArrayLike,
    student_weight: ArrayLike,
    teacher_hidden: ArrayLike,
    teacher_weight: ArrayLike,
    *,
    divergence: str = "forward_kl",
    beta: ArrayLike = 0.5,
    temperature: ArrayLike = 1.0,
    labels: ArrayLike | None = None,
    hard_label_weight: ArrayLike = 0.0,
    ignore_index: int | None = None,
    teacher_gradient: bool = False,
    weight_layout: str = "dv",
    block_size: int = DEFAULT_BLOCK_SIZE,
    weights: ArrayLike | None = None,
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
    the vocabulary. Both are computed in chunks of tokens (rows) over the whole vocabulary, so
    each token's normalisers are exact in one pass: neither [N, V] array exists; XLA
    temporaries of value-and-grad are a few float32 [rows, V] chunks, the [Ds, V] gradient
    accumulator and O(N·D), with rows = max(⌈N·block_size/V⌉, 256) (at most N). Time: with
    ``reduction="sum"`` or ``"mean"`` the gradient is formed in the forward pass (each token's
    cotangent is known there), so value-and-grad costs the unfused program's four GEMMs; with
    per-token values (``"none"``) the backward recomputes both models' logits (two more).

    Gradient (any cotangent g per token; ls, lt the log-probabilities, ψ = ∂D/∂ls per class):
      ∂D/∂student_logits_c = (ψ_c − p_s,c Σ_j ψ_j)/T — (p_s − p_t)/T for the forward KL —
    then ∂/∂student_hidden = Σ_c ∂/∂z_c W_c and ∂/∂student_weight_c = hidden ∂/∂z_c. The teacher
    is held constant (zero gradient) unless ``teacher_gradient=True``. The hard-label term adds
    α(softmax(z_s) − onehot(y)) on the untempered logits. Reverse mode only.

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
      block_size: sets the chunk: about N·block_size logits, at least 256 token rows (static;
        clamped to V).
      weights: optional per-token weights ≥ 0 broadcastable to the token shape.
      reduction: ``"none"`` (default), ``"mean"`` (weighted mean over kept tokens; 0 with a
        zero gradient when none is kept) or ``"sum"``. Prefer them to summing per-token values
        yourself: they are the faster path (see above).

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
    )
    return finish_distillation(prep, reduction, _distill_jit)


# One compiled program per configuration, also for eager calls.
_distill_jit = jax.jit(distill_impl, static_argnums=8)


@register(plot=None)
def linear_distillation_topk(
    student_hidden: ArrayLike,
    student_weight: ArrayLike,
    teacher_topk_ids: ArrayLike,
    teacher_topk_log_probs: ArrayLike,
    *,
    temperature: ArrayLike = 1.0,
    weight_layout: str = "dv",
    block_size: int = DEFAULT_BLOCK_SIZE,
    ignore_index: int | None = None,
    labels: ArrayLike | None = None,
    weights: ArrayLike | None = None,
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
    v = check_pair(fn, weight_layout, xs, ws, "student")
    batch_shape = tuple(xs.shape[:-1])
    ids, lt = _lm.check_topk_teacher(
        fn,
        teacher_topk_ids,
        teacher_topk_log_probs,
        batch_shape,
        v,
        "`student_hidden`",
        f"`student_weight`, shape {tuple(ws.shape)}",
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
    return _lm.topk_kl_terms(zk - lse[:, None], lt)


_topk_jit = jax.jit(_topk_impl, static_argnums=4)
