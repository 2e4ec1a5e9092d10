"""Language-model head objectives on given logits: per-token log-probabilities, entropy, and
distillation divergences between a teacher and a student distribution.

The per-class terms of the divergences (:func:`column_terms`) are shared with the fused forms in
``jaxloss.fused`` (``linear_log_probs``, ``linear_distillation``), which evaluate the same
formulas block by block over the vocabulary; switching between fused and unfused changes the
rounding only. Temperature T divides the logits: every distribution here is softmax(z / T).

Divergences between the tempered teacher p_t and student p_s (per token, classes c):

  forward_kl   KL(p_t ‖ p_s) = Σ_c p_t,c (log p_t,c − log p_s,c)
  reverse_kl   KL(p_s ‖ p_t) = Σ_c p_s,c (log p_s,c − log p_t,c)
  jsd (β)      β KL(p_t ‖ m) + (1 − β) KL(p_s ‖ m),   m = β p_t + (1 − β) p_s

The generalized JSD's endpoints follow TRL's ``generalized_jsd_loss`` (GKD, Agarwal et al.):
β = 0 is forward_kl and β = 1 is reverse_kl. They are limits of the *normalised* JSD — as β → 0,
JSD_β / β → KL(p_t ‖ p_s), and as β → 1, JSD_β / (1 − β) → KL(p_s ‖ p_t) — not of JSD_β itself,
which tends to 0 at both ends; so the value jumps at β = 0 and β = 1 by design.
"""

from __future__ import annotations

from typing import Any, Literal, overload

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from . import _reduce
from ._core import checks as _checks
from ._core import labels as _labels
from ._core.numerics import logsumexp_parts
from ._core.registry import register

__all__ = ["distillation_loss", "token_log_probs", "topk_distillation_loss"]

DIVERGENCES = ("forward_kl", "reverse_kl", "jsd")


# ---------------------------------------------------------------------------------------------
# Shared with jaxloss.fused


def static_temperature(fn: str, temperature: ArrayLike) -> float:
    """The temperature as a concrete float > 0 (it is compiled into the fused kernels)."""
    return _checks.static_hyperparameter(
        fn, "temperature", temperature, _checks.POSITIVE,
        " (a hyperparameter compiled into the computation)",
    )


def static_divergence(fn: str, divergence: Any, beta: ArrayLike) -> tuple[str, float]:
    """(kind, beta) with the JSD endpoints mapped to the two KLs (see the module notes)."""
    if divergence not in DIVERGENCES:
        raise ValueError(
            f"jaxloss.{fn}: `divergence` must be one of {DIVERGENCES}; got {divergence!r}."
        )
    # Interval(..., finite=False): the bounds already exclude ±inf; the message says "in [0, 1]".
    b = _checks.static_hyperparameter(fn, "beta", beta, _checks.Interval(0.0, 1.0, finite=False))
    if divergence == "jsd" and b == 0.0:
        return "forward_kl", b
    if divergence == "jsd" and b == 1.0:
        return "reverse_kl", b
    return divergence, b


def column_terms(
    ls: jax.Array,
    lt: jax.Array,
    kind: str,
    beta: float,
    ps: jax.Array | None = None,
    pt: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per-class terms of a divergence D = Σ_c φ(ls_c, lt_c) of log-probabilities ls (student)
    and lt (teacher): (φ, ψ_s = ∂φ/∂ls, ψ_t = ∂φ/∂lt). With ls = z_s − lse(z_s), the gradient
    w.r.t. the student's logits is ∂D/∂z_s,c = ψ_s,c − p_s,c Σ_j ψ_s,j (and likewise for the
    teacher); the fused backward uses exactly that. ``ps``, ``pt``: exp(ls), exp(lt) when the
    caller has them (fewer exponentials)."""
    if kind == "forward_kl":
        pt = jnp.exp(lt) if pt is None else pt
        return pt * (lt - ls), -pt, pt * (lt - ls + 1)
    if kind == "reverse_kl":
        ps = jnp.exp(ls) if ps is None else ps
        return ps * (ls - lt), ps * (ls - lt + 1), -ps
    ps = jnp.exp(ls) if ps is None else ps
    pt = jnp.exp(lt) if pt is None else pt
    # log m = log(β p_t + (1 − β) p_s), relative to the larger of the two log-probabilities
    # (the argument of the log is then in [min(β, 1 − β), 1]).
    top = jnp.maximum(ls, lt)
    lm = top + jnp.log(beta * jnp.exp(lt - top) + (1 - beta) * jnp.exp(ls - top))
    a_s = (1 - beta) * ps * (ls - lm)
    a_t = beta * pt * (lt - lm)
    return a_s + a_t, a_s, a_t


def token_weights(
    fn: str, weights: ArrayLike | None, batch_shape: tuple[int, ...], acc: Any
) -> Any:
    """Per-token weights broadcast to ``batch_shape`` (None stays None); concrete ones must be
    finite and >= 0."""
    if weights is None:
        return None
    w = _checks.check_real(fn, "weights", weights)
    _checks.check_broadcastable(fn, "weights", w, batch_shape, "the per-token values'")
    _checks.check_values(fn, "weights", weights, ">= 0")
    return jnp.broadcast_to(w.astype(acc), batch_shape)


def reduce_tokens(values: jax.Array, reduction: str, weights: ArrayLike, kept: Any) -> jax.Array:
    """``reduction`` of per-token values: 'none' → w·v (0 for ignored tokens); 'sum' → Σ_kept w·v;
    'mean' → Σ_kept w·v / Σ_kept w (PyTorch's weighted mean; 0 with a zero gradient when nothing
    is kept or the weights sum to 0)."""
    if weights is not None:
        values = values * weights
    if reduction == "none":
        return values
    return _reduce.reduce_loss(values, reduction, denominators=weights, where=kept)


def reduction_coefficients(
    reduction: str, weights: Any, kept: Any, batch_shape: tuple[int, ...], acc: Any
) -> jax.Array:
    """Per-token c with Σ c·v equal to :func:`reduce_tokens`'s 'sum' or 'mean' of values v
    (0 for uncounted tokens; all 0 when the mean's denominator is 0)."""
    c = jnp.ones(batch_shape, acc) if weights is None else jnp.asarray(weights, acc)
    if kept is not None:
        c = jnp.where(kept, c, 0)
    if reduction == "sum":
        return c
    den = jnp.sum(c)
    return jnp.where(den != 0, c / jnp.where(den != 0, den, 1), 0)


def check_token_labels(
    fn: str, labels: ArrayLike, batch_shape: tuple[int, ...], v: int, ignore_index: Any, what: str
) -> jax.Array:
    """Integer labels of shape ``batch_shape``; concrete ones must be in [0, v) or ignore_index."""
    y = _checks.check_integer(fn, "labels", labels)
    if tuple(y.shape) != batch_shape:
        raise ValueError(
            f"jaxloss.{fn}: `labels` must have the shape of {what} without the class axis, "
            f"{batch_shape}; got labels.shape={tuple(y.shape)}."
        )
    if isinstance(ignore_index, bool):
        raise TypeError(
            f"jaxloss.{fn}: `ignore_index` must be an int or None; got {ignore_index!r}."
        )
    _labels.check_ignore_index(fn, ignore_index)
    _labels.require_labels_in_range(fn, labels, v, ignore_index)
    return y


def scale_by_temperature(z: jax.Array, t: float) -> jax.Array:
    """z / T written as z · (1/T): one spelling, so that every copy XLA makes of it rounds the
    same way (a division by a constant may be rewritten as a multiplication in one fusion and
    not in another, and the stopped maximum would then differ from the logit by an ulp)."""
    return z if t == 1.0 else z * jnp.asarray(1.0 / t, z.dtype)


def _log_softmax_parts(z: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(z − shift, log Σ exp(z − shift), shift) over the last axis (shift the stopped max)."""
    shift, log_s, _ = logsumexp_parts(z, axis=-1)
    return z - shift, log_s, shift


# ---------------------------------------------------------------------------------------------
# Public losses


@overload
def token_log_probs(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    temperature: ArrayLike = ...,
    ignore_index: int | None = ...,
    return_entropy: Literal[False] = ...,
    weights: ArrayLike | None = ...,
    reduction: str = ...,
) -> jax.Array: ...


@overload
def token_log_probs(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    temperature: ArrayLike = ...,
    ignore_index: int | None = ...,
    return_entropy: Literal[True],
    weights: ArrayLike | None = ...,
    reduction: str = ...,
) -> tuple[jax.Array, jax.Array]: ...


@overload
def token_log_probs(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    temperature: ArrayLike = ...,
    ignore_index: int | None = ...,
    return_entropy: bool,
    weights: ArrayLike | None = ...,
    reduction: str = ...,
) -> jax.Array | tuple[jax.Array, jax.Array]: ...


@register(plot=None)
def token_log_probs(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    temperature: ArrayLike = 1.0,
    ignore_index: int | None = None,
    return_entropy: bool = False,
    weights: ArrayLike | None = None,
    reduction: str = "none",
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Per-token log-probability of the label under softmax(logits / T), and optionally entropy.

    Math (z = logits / T over the last axis, lse = log Σ_c exp z_c):
      log p_y = z_y − lse,      H = lse − Σ_c softmax(z)_c z_c = −Σ_c p_c log p_c.
    Ignored tokens (label == ``ignore_index``) give 0 for both. The same numbers as
    :func:`jaxloss.fused.linear_log_probs` on ``logits = hidden @ weight``.

    Gradient: ∂ log p_y / ∂logits_c = ([c = y] − p_c) / T;
    ∂H/∂logits_c = −p_c (log p_c + H) / T. Ignored tokens: 0.

    Args:
      logits: floating [..., V].
      labels: integer [...] (the logits' shape without the class axis), in [0, V) or
        ``ignore_index``.
      temperature: concrete T > 0 (default 1).
      ignore_index: optional label value whose tokens give 0 and are not counted by
        ``reduction`` (default None).
      return_entropy: also return the entropy H of softmax(logits / T) (default False).
      weights: optional per-token weights ≥ 0, broadcastable to ``labels``' shape: 'none' returns
        w·log p, 'mean' is Σ w·log p / Σ w over kept tokens (default None: 1).
      reduction: ``"none"`` (default), ``"mean"`` or ``"sum"`` over the tokens whose label is not
        ``ignore_index``; all ignored: 'mean' is 0 with a zero gradient.

    Returns:
      log p_y with the shape of ``labels`` (or a scalar when reduced), float32 (float64 for
      float64 logits); with ``return_entropy=True`` a pair ``(log_probs, entropy)``, both weighted
      and reduced the same way. Concrete labels out of range raise a ValueError; traced ones
      give NaN.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> lp, h = jaxloss.token_log_probs(jnp.zeros((2, 4)), jnp.array([0, 3]),
      ...                                 return_entropy=True)
      >>> [round(v, 4) for v in lp.tolist()], [round(v, 4) for v in h.tolist()]
      ([-1.3863, -1.3863], [1.3863, 1.3863])
    """
    fn = "token_log_probs"
    _reduce.check_reduction(fn, reduction)
    z = _checks.check_floating(fn, "logits", logits)
    if z.ndim < 1:
        raise ValueError(f"jaxloss.{fn}: `logits` must have a class axis; got a scalar.")
    t = static_temperature(fn, temperature)
    batch_shape, v = tuple(z.shape[:-1]), int(z.shape[-1])
    y = check_token_labels(fn, labels, batch_shape, v, ignore_index, "`logits`")
    acc = _checks.compute_dtype(z)
    w = token_weights(fn, weights, batch_shape, acc)
    zt = scale_by_temperature(z.astype(acc), t)
    zr, log_s, _ = _log_softmax_parts(zt)
    ok = (y >= 0) & (y < v)
    ys = jnp.where(ok, y, 0)
    zy = jnp.take_along_axis(zr, ys[..., None], axis=-1)[..., 0]
    logp = jnp.where(ok, zy - log_s[..., 0], jnp.nan)
    kept = None if ignore_index is None else y != ignore_index
    if kept is not None:
        logp = jnp.where(kept, logp, 0)
    out = reduce_tokens(logp, reduction, w, kept)
    if not return_entropy:
        return out
    p = jnp.exp(zr - log_s)
    ent = log_s[..., 0] - jnp.sum(p * zr, axis=-1)
    if kept is not None:
        ent = jnp.where(kept, ent, 0)
    return out, reduce_tokens(ent, reduction, w, kept)


@register(plot=None)
def distillation_loss(
    student_logits: ArrayLike,
    teacher_logits: ArrayLike,
    *,
    divergence: str = "forward_kl",
    beta: ArrayLike = 0.5,
    temperature: ArrayLike = 1.0,
    labels: ArrayLike | None = None,
    hard_label_weight: ArrayLike = 0.0,
    ignore_index: int | None = None,
    teacher_gradient: bool = False,
    weights: ArrayLike | None = None,
    reduction: str = "none",
) -> jax.Array:
    """Per-token distillation divergence between tempered teacher and student distributions.

    Math (p_s = softmax(student_logits / T), p_t = softmax(teacher_logits / T), α the hard-label
    weight, CE the student's cross-entropy at temperature 1):
      l = (1 − α) D(p_t, p_s) + α CE(student_logits, labels),
      D = KL(p_t ‖ p_s) ('forward_kl'), KL(p_s ‖ p_t) ('reverse_kl'), or
          β KL(p_t ‖ m) + (1 − β) KL(p_s ‖ m), m = β p_t + (1 − β) p_s ('jsd'),
    with TRL's convention at the ends: 'jsd' with β = 0 is 'forward_kl' and β = 1 is
    'reverse_kl' — the limits of JSD_β/β and JSD_β/(1 − β) (JSD_β itself tends to 0 there).
    No T² factor (Hinton et al. scale the soft term by T²: multiply it yourself). The same
    numbers as :func:`jaxloss.fused.linear_distillation` on the two models' logits.

    Gradient (w.r.t. the student's logits; the teacher is a constant unless
    ``teacher_gradient=True``): with ls = log p_s, lt = log p_t, ∂D/∂z_s,c =
    (ψ_c − p_s,c Σ_j ψ_j) / T where ψ = ∂D/∂ls: forward KL gives (p_s − p_t)/T; reverse KL
    p_s,c (ls_c − lt_c − D)/T; JSD (1 − β) p_s,c (log(p_s,c/m_c) − KL(p_s ‖ m))/T. The
    hard-label term adds α (softmax(z_s) − onehot(y)). Ignored tokens: 0.

    Args:
      student_logits: floating [..., V].
      teacher_logits: floating [..., V], the student's shape.
      divergence: ``"forward_kl"`` (default), ``"reverse_kl"`` or ``"jsd"``.
      beta: concrete mixture weight β in [0, 1] of the JSD (default 0.5; unused by the KLs).
      temperature: concrete T > 0 for both distributions (default 1).
      labels: optional integer [...] hard labels (needed by ``hard_label_weight`` > 0 and by
        ``ignore_index``).
      hard_label_weight: α in [0, 1] (default 0).
      ignore_index: optional label value whose tokens give 0 and are not counted by
        ``reduction`` (default None).
      teacher_gradient: let the gradient reach ``teacher_logits`` (default False: the teacher
        is held constant by a stop-gradient).
      weights: optional per-token weights ≥ 0 broadcastable to the token shape (default None).
      reduction: ``"none"`` (default), ``"mean"`` (weighted mean over kept tokens; 0 with a
        zero gradient when none is kept) or ``"sum"``.

    Returns:
      Per-token values of the token shape (or a scalar when reduced), float32 (float64 for
      float64 inputs).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> s = jnp.array([[0.0, 0.0]]); t = jnp.array([[0.0, jnp.log(3.0)]])
      >>> round(float(jaxloss.distillation_loss(s, t)[0]), 4)      # KL([.25,.75] ‖ [.5,.5])
      0.1308
    """
    fn = "distillation_loss"
    _reduce.check_reduction(fn, reduction)
    zs = _checks.check_floating(fn, "student_logits", student_logits)
    zt = _checks.check_floating(fn, "teacher_logits", teacher_logits)
    if zs.ndim < 1:
        raise ValueError(f"jaxloss.{fn}: `student_logits` must have a class axis; got a scalar.")
    _checks.check_same_shape(fn, "student_logits", zs, "teacher_logits", zt)
    kind, b = static_divergence(fn, divergence, beta)
    t = static_temperature(fn, temperature)
    _checks.require(fn, "hard_label_weight", hard_label_weight, "in [0, 1]")
    alpha = _checks.concrete_float(hard_label_weight)
    batch_shape, v = tuple(zs.shape[:-1]), int(zs.shape[-1])
    y = _distill_labels(fn, labels, batch_shape, v, ignore_index, alpha, "`student_logits`")
    acc = _checks.compute_dtype(zs, zt)
    w = token_weights(fn, weights, batch_shape, acc)
    zs = zs.astype(acc)
    zt = zt.astype(acc)
    if not teacher_gradient:
        zt = jax.lax.stop_gradient(zt)
    rs, log_ss, _ = _log_softmax_parts(scale_by_temperature(zs, t))
    rt, log_st, _ = _log_softmax_parts(scale_by_temperature(zt, t))
    phi, _, _ = column_terms(rs - log_ss, rt - log_st, kind, b)
    loss = jnp.sum(phi, axis=-1)
    if alpha is None or alpha != 0:
        a = jnp.asarray(hard_label_weight, acc)
        r1, log_s1, _ = _log_softmax_parts(zs)
        ok = (y >= 0) & (y < v)
        zy = jnp.take_along_axis(r1, jnp.where(ok, y, 0)[..., None], axis=-1)[..., 0]
        kept = None if ignore_index is None else y != ignore_index
        # Ignored tokens: CE 0, not NaN, so that ∂/∂α (0 cotangent there) stays finite.
        bad = jnp.nan if kept is None else jnp.where(kept, jnp.nan, 0)
        ce = jnp.where(ok, log_s1[..., 0] - zy, bad)
        loss = (1 - a) * loss + a * ce
    kept = None if ignore_index is None else y != ignore_index
    if kept is not None:
        loss = jnp.where(kept, loss, 0)
    return reduce_tokens(loss, reduction, w, kept)


def check_topk_teacher(
    fn: str,
    ids: Any,
    log_probs: Any,
    batch_shape: tuple[int, ...],
    v: int,
    tokens_of: str,
    vocab_of: str,
) -> tuple[jax.Array, jax.Array]:
    """Top-k teacher ids [..., k] (concrete ones in [0, v)) and log-probabilities (≤ 0)."""
    ids_a = _checks.check_integer(fn, "teacher_topk_ids", ids)
    lt = _checks.check_floating(fn, "teacher_topk_log_probs", log_probs)
    if ids_a.ndim != len(batch_shape) + 1 or tuple(ids_a.shape[:-1]) != batch_shape:
        raise ValueError(
            f"jaxloss.{fn}: `teacher_topk_ids` must have shape (*{batch_shape}, k) (the token "
            f"shape of {tokens_of} plus k); got teacher_topk_ids.shape={tuple(ids_a.shape)}."
        )
    _checks.check_same_shape(fn, "teacher_topk_ids", ids_a, "teacher_topk_log_probs", lt)
    concrete = _checks.concrete_array(ids)
    if concrete is not None and ((concrete < 0) | (concrete >= v)).any():
        bad = concrete[(concrete < 0) | (concrete >= v)]
        raise ValueError(
            f"jaxloss.{fn}: `teacher_topk_ids` must be token ids in [0, {v}) (the vocabulary of "
            f"{vocab_of}); got {bad.ravel()[:5].tolist()}."
        )
    _checks.check_values(fn, "teacher_topk_log_probs", log_probs, "<= 0", allow_nan=True)
    return ids_a, lt


def topk_kl_terms(ls_k: jax.Array, lt: jax.Array, log_q: jax.Array | None = None) -> jax.Array:
    """KL on the k + 1 outcomes (the k ids, then the tail as one outcome) from the student's
    log-probabilities ``ls_k`` and the teacher's ``lt`` on the ids [..., k]; the tail masses
    r = max(1 − Σ exp lt, 0) and q, from ``log_q`` (the student's log tail mass) when given
    (−inf, an empty tail, taken as the smallest normal number), else as 1 − Σ exp ls_k floored
    at the smallest normal number."""
    pt = jnp.exp(lt)
    r = jnp.maximum(1 - jnp.sum(pt, axis=-1), 0)
    floor = jnp.finfo(ls_k.dtype).tiny
    if log_q is None:
        log_q = jnp.log(jnp.maximum(1 - jnp.sum(jnp.exp(ls_k), axis=-1), floor))
    else:
        log_q = jnp.where(log_q == -jnp.inf, jnp.log(jnp.asarray(floor, ls_k.dtype)), log_q)
    head = jnp.sum(pt * (lt - ls_k), axis=-1)
    pos = r > 0
    return head + jnp.where(pos, r * (jnp.log(jnp.where(pos, r, 1)) - log_q), 0)


@register(plot=None)
def topk_distillation_loss(
    student_logits: Any,
    teacher_topk_ids: Any,
    teacher_topk_log_probs: Any,
    *,
    temperature: Any = 1.0,
    ignore_index: int | None = None,
    labels: Any = None,
    weights: Any = None,
    reduction: str = "none",
) -> jax.Array:
    """Forward KL from a teacher known only on its top-k tokens (offline distillation), on logits.

    Math (per token; K the teacher's k ids, lt_k its log-probabilities there as given,
    p_s = softmax(student_logits / T), ls = log p_s): the tail — every token outside K — is one
    outcome, with the teacher's mass r = max(1 − Σ_k exp(lt_k), 0) and the student's
    q = 1 − Σ_k p_s,k; the loss is the KL between the two distributions on these k + 1
    outcomes:
      l = Σ_k exp(lt_k)(lt_k − ls_k) + r (log r − log q)        (0·log 0 = 0).
    The full KL(p_t ‖ p_s) when the teacher's mass is all on K (r = 0), a lower bound of it
    otherwise; the tail is neither dropped nor renormalised away. The teacher's log-probabilities
    are used as given (no temperature); ids must be distinct per token. The same numbers as
    :func:`jaxloss.fused.linear_distillation_topk` on ``student_logits = hidden @ weight``,
    except where the student puts nearly all its mass on K: here q is the student's mass on
    the tokens outside K, summed directly (log q exact to rounding), while the fused form,
    which never holds the logits, forms q as 1 − Σ_k p_s,k (relative error ≈ eps/q) floored at the
    smallest normal number. An empty tail (q = 0: every token in K) counts as that number.

    Gradient (w.r.t. the student's logits): ∂l/∂z_c = (p_s,c − w_c)/T with w_c = exp(lt_c) on K
    and w_c = r p_s,c / q off K (the teacher's tail mass spread in the student's proportions).
    Ignored tokens: 0.

    Args:
      student_logits: floating [..., V].
      teacher_topk_ids: integer [..., k] token ids in [0, V), distinct per token.
      teacher_topk_log_probs: floating [..., k] teacher log-probabilities (≤ 0, Σ exp ≤ 1).
      temperature: concrete T > 0 for the student (default 1).
      ignore_index: with ``labels``, the label value whose tokens give 0 and are not counted.
      labels: optional integer token-shaped labels, used only for ``ignore_index``.
      weights: optional per-token weights ≥ 0 broadcastable to the token shape.
      reduction: ``"none"`` (default), ``"mean"`` (weighted mean over kept tokens; 0 with a
        zero gradient when none is kept) or ``"sum"``.

    Returns:
      Per-token values of the token shape (or a scalar), float32 (float64 for float64 inputs).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> z = jnp.zeros((1, 4))                                      # student uniform on 4
      >>> ids = jnp.array([[0, 1]]); lt = jnp.log(jnp.array([[0.5, 0.5]]))
      >>> round(float(jaxloss.topk_distillation_loss(z, ids, lt)[0]), 4)  # log 2
      0.6931
    """
    fn = "topk_distillation_loss"
    _reduce.check_reduction(fn, reduction)
    zs = _checks.check_floating(fn, "student_logits", student_logits)
    if zs.ndim < 1:
        raise ValueError(f"jaxloss.{fn}: `student_logits` must have a class axis; got a scalar.")
    batch_shape, v = tuple(zs.shape[:-1]), int(zs.shape[-1])
    ids, lt = check_topk_teacher(
        fn,
        teacher_topk_ids,
        teacher_topk_log_probs,
        batch_shape,
        v,
        "`student_logits`",
        "`student_logits`",
    )
    t = static_temperature(fn, temperature)
    y = _distill_labels(fn, labels, batch_shape, v, ignore_index, 0.0, "`student_logits`")
    acc = _checks.compute_dtype(zs, lt)
    w = token_weights(fn, weights, batch_shape, acc)
    r, log_s, _ = _log_softmax_parts(scale_by_temperature(zs.astype(acc), t))
    ids32 = ids.astype(jnp.int32)
    ls_k = jnp.take_along_axis(r, ids32, axis=-1) - log_s
    # The tail's log-mass over the tokens outside K directly (no 1 − Σ cancellation).
    n, k = int(np.prod(batch_shape, dtype=np.int64)), ids.shape[-1]
    rows = jnp.arange(n, dtype=jnp.int32)[:, None]
    in_k = jnp.zeros((n, v), bool).at[rows, ids32.reshape(n, k)].set(True).reshape(zs.shape)
    shift, log_tail, any_tail = logsumexp_parts(r, axis=-1, where=~in_k)
    log_q = jnp.where(any_tail, shift + log_tail - log_s, -jnp.inf)[..., 0]
    loss = topk_kl_terms(ls_k, lt.astype(acc), log_q)
    kept = None
    if ignore_index is not None and y is not None:
        kept = y != ignore_index
        loss = jnp.where(kept, loss, 0)
    return reduce_tokens(loss, reduction, w, kept)


def _distill_labels(
    fn: str,
    labels: ArrayLike | None,
    batch_shape: tuple[int, ...],
    v: int,
    ignore_index: Any,
    alpha: float | None,
    what: str,
) -> Any:
    if labels is None:
        if alpha is None or alpha != 0:
            raise ValueError(
                f"jaxloss.{fn}: `hard_label_weight` > 0 needs `labels` (the hard targets); "
                "pass labels=... or hard_label_weight=0."
            )
        if ignore_index is not None:
            raise ValueError(
                f"jaxloss.{fn}: `ignore_index` applies to `labels`, which were not given; pass "
                "labels=... or mask tokens with weights=."
            )
        return None
    return check_token_labels(fn, labels, batch_shape, v, ignore_index, what)
