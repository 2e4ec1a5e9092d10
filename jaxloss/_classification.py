"""Classification losses from logits (binary and multi-class) and from probabilities.

Binary losses are elementwise (one value per logit). Multi-class losses reduce the class axis and
return one value per example. float16/bfloat16 inputs are computed in float32 and the result is
float32; float64 stays float64. Gradients come back in the dtype of the input they belong to.

Class weights and the mean. ``class_weights=w`` inside a multi-class loss gives PyTorch's
per-example (``reduction='none'``) value: the class-weighted expected negative log-likelihood
``sum_c w_c q_c (-log p_c)`` of the (smoothed) target distribution q. ``reduction="mean"`` gives
PyTorch's ``'mean'``: for integer labels the sum of those over non-ignored examples divided by
``sum_n w[y_n]`` over non-ignored examples (the count when there are no class weights); for
probability targets the sum divided by the number of examples. ``reduction="sum"`` is the sum.
For hard labels without smoothing the integer-label mean is also exactly the one reduction rule
applied to the *unweighted* loss: ``jaxloss.mean(ce(logits, labels), weights=w[labels],
where=valid)``; with smoothing or probability targets it is not. Put class weights in one place
only.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from . import _reduce
from ._core import checks as _checks
from ._core.ad import is_zero
from ._core.labels import (
    bcast,
    check_label_counted,
    class_mask,
    class_weights_vector,
    finish_integer_loss,
    normalise_axis,
    prepare_integer,
    reduce_integer,
)
from ._core.numerics import logsumexp_parts, nan_gradient, softplus
from ._core.registry import register

__all__ = [
    "binary_cross_entropy",
    "nll_loss",
    "sigmoid_binary_cross_entropy",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
]


# ----------------------------------------------------------------------------------------------
# Binary


@register(plot="binary")
def sigmoid_binary_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    pos_weight: ArrayLike | None = None,
    label_smoothing: ArrayLike = 0.0,
    reduction: str = "none",
) -> jax.Array:
    """Binary cross-entropy on logits, elementwise, in the stable fused form.

    Math (x = logit, t = label in [0, 1], smoothed t' = t(1 - ε) + ε/2, pos_weight p):
      l = -[p t' log σ(x) + (1 - t') log(1 - σ(x))]
        = softplus(x) - t'x + (p - 1) t' softplus(-x),
      softplus(x) = max(x, 0) + log1p(exp(-|x|)) (written out: ``jax.nn.softplus`` breaks XLA:CPU
      fusion); finite for any finite x, including ±1e4.

    Gradient: dl/dx = σ(x) - t' + (p - 1) t' (σ(x) - 1) (= σ(x) - t' without pos_weight);
    dl/dt = (1 - ε)(-x + (p - 1) softplus(-x)).

    Args:
      logits: floating array, any shape.
      labels: real array of the same shape, values in [0, 1] (soft labels allowed).
      pos_weight: optional weight p >= 0 of the positive term, a scalar or an array broadcastable
        to ``logits`` (e.g. one per class, as ``torch.nn.BCEWithLogitsLoss(pos_weight=)``);
        checked (finite, >= 0) when concrete.
      label_smoothing: ε in [0, 1); moves labels towards 1/2.
      reduction: ``"none"`` (default: the elementwise values), ``"mean"`` (sum of the values
        over all N elements / N: PyTorch's ``reduction='mean'``; ``pos_weight`` does not enter
        the denominator) or ``"sum"``. PyTorch's per-element ``weight=v`` is not an argument
        here: with ``'mean'`` it is ``jaxloss.sum(values, weights=v) / values.size`` (torch
        divides by N, not by the sum of the weights as ``jaxloss.mean(weights=)`` does).

    Returns:
      Array of the shape of ``logits`` (``reduction="none"``), or a scalar:
      ``torch.nn.BCEWithLogitsLoss(pos_weight=, reduction=)`` with the same reduction.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> round(float(jaxloss.sigmoid_binary_cross_entropy(jnp.array(0.0), jnp.array(1.0))), 6)
      0.693147
    """
    fn = "sigmoid_binary_cross_entropy"
    _reduce.check_reduction(fn, reduction)
    _checks.require(fn, "label_smoothing", label_smoothing, _checks.UNIT_HALF_OPEN)
    x = _checks.check_floating(fn, "logits", logits)
    t = _checks.check_real(fn, "labels", labels)
    _checks.check_same_shape(fn, "logits", x, "labels", t)
    dtype = _checks.compute_dtype(x, t)
    x, t = x.astype(dtype), t.astype(dtype)
    eps = jnp.asarray(label_smoothing, dtype)
    t = t * (1 - eps) + 0.5 * eps
    loss = softplus(x) - t * x
    if pos_weight is not None:
        pw = _checks.check_real(fn, "pos_weight", pos_weight)
        _checks.check_broadcastable(fn, "pos_weight", pw, x.shape, "the logits'")
        _checks.check_values(fn, "pos_weight", pos_weight, ">= 0")
        loss = loss + (pw.astype(dtype) - 1) * t * softplus(-x)
    return _reduce.reduce_loss(loss, reduction)


def _clamped_log(x: jax.Array, floor: float = -100.0) -> jax.Array:
    """max(log(x), floor) with a finite (zero) gradient where the floor applies, including x = 0.

    The floor is selected by ``x <= e^floor``, which NaN fails: NaN takes the log and stays NaN
    (value and gradient)."""
    clamped = x <= np.exp(floor)
    safe = jnp.where(clamped, 1, x)
    return jnp.where(clamped, floor, jnp.log(safe))


@register(plot="probability")
def binary_cross_entropy(
    probabilities: ArrayLike, labels: ArrayLike, *, reduction: str = "none"
) -> jax.Array:
    """Binary cross-entropy on probabilities, elementwise; safe at exactly 0 and 1.

    Math:  l = -[t log p + (1 - t) log(1 - p)], each log clamped below at -100 (as
    ``torch.nn.BCELoss``), so p = 0 or 1 gives a finite value (at most 100 per term).

    Gradient: dl/dp = -t/p + (1 - t)/(1 - p) where neither log is clamped; a clamped log
    contributes 0 (so at p = 0, t = 0 the gradient is exactly 1, never NaN).
    dl/dt = log(1 - p) - log(p) with the clamped logs.

    Prefer :func:`sigmoid_binary_cross_entropy` on logits: it is exact where this one clamps.
    Concrete probabilities outside [0, 1] raise a ValueError (as ``torch.nn.BCELoss``; logits
    belong to :func:`sigmoid_binary_cross_entropy`); traced ones are used as given. NaN gives NaN.

    Args:
      probabilities: floating array, values in [0, 1].
      labels: real array of the same shape, values in [0, 1].
      reduction: ``"none"`` (default: the elementwise values), ``"mean"`` (sum of the values
        over all N elements / N: PyTorch's ``reduction='mean'``) or ``"sum"``. PyTorch's
        per-element ``weight=v`` is not an argument here: with ``'mean'`` it is
        ``jaxloss.sum(values, weights=v) / values.size`` (torch divides by N, not by the sum of
        the weights as ``jaxloss.mean(weights=)`` does).

    Returns:
      Array of the shape of ``probabilities`` (``reduction="none"``), or a scalar:
      ``torch.nn.BCELoss(reduction=)`` with the same reduction.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.binary_cross_entropy(jnp.array([0.0, 1.0]), jnp.array([1.0, 1.0])).tolist()
      [100.0, 0.0]
    """
    fn = "binary_cross_entropy"
    _reduce.check_reduction(fn, reduction)
    p = _checks.check_floating(fn, "probabilities", probabilities)
    t = _checks.check_real(fn, "labels", labels)
    _checks.check_same_shape(fn, "probabilities", p, "labels", t)
    _checks.check_values(
        fn,
        "probabilities",
        probabilities,
        "in [0, 1]",
        allow_nan=True,
        hint="For logits use jaxloss.sigmoid_binary_cross_entropy.",
    )
    dtype = _checks.compute_dtype(p, t)
    p, t = p.astype(dtype), t.astype(dtype)
    loss = -t * _clamped_log(p) - (1 - t) * _clamped_log(1 - p)
    return _reduce.reduce_loss(loss, reduction)


# ----------------------------------------------------------------------------------------------
# Multi-class on logits


@register(plot="softmax_probs")
def softmax_cross_entropy(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    class_weights: ArrayLike | None = None,
    label_smoothing: ArrayLike = 0.0,
    where: ArrayLike | None = None,
    reduction: str = "none",
) -> jax.Array:
    """Softmax cross-entropy with probability targets, one value per example.

    Math (z = logits, K counted classes, q = (1 - ε) t + ε/K, w = class weights or 1):
      l = sum_c w_c q_c (lse(z) - z_c),  lse(z) = log sum_c exp(z_c) over counted classes.
    Terms with w_c q_c = 0 are 0 even where z_c = -inf or where lse - z_c overflows (logits
    3e38 and -3e38); lse - z_c is formed as (m - z_c) + log sum exp(z - m), exact near the
    maximum. A row with no counted class gives 0. A NaN in an example's logits or targets
    makes it NaN (value and gradient row).

    Gradient: dl/dz_c = W softmax(z)_c - w_c q_c with W = sum_c w_c q_c (0 for masked c);
    dl/dt_c = (1 - ε) w_c (lse(z) - z_c).

    Args:
      logits: floating array [..., C, ...] with the class axis ``axis``.
      targets: real array of the same shape (each row a distribution; not renormalised).
      axis: the class axis.
      class_weights: optional [C] weights (PyTorch's ``weight=``).
      label_smoothing: ε in [0, 1].
      where: optional boolean class mask, broadcastable to ``logits`` with the same ndim;
        masked classes are left out of the softmax and of the target.
      reduction: ``"none"`` (default: one value per example), ``"mean"`` or ``"sum"``:
        'mean' = sum_n l_n / N with N the number of examples (every position of the output,
        batch and spatial), whatever the class weights: PyTorch's ``reduction='mean'`` for
        probability targets, which divides by the count, not by weights; 'sum' = sum_n l_n.
        A NaN in any example makes both NaN.

    Returns:
      Array of the shape of ``logits`` without ``axis`` (``reduction="none"``), or a scalar:
      ``torch.nn.CrossEntropyLoss(weight=w, label_smoothing=ε, reduction=)`` with probability
      targets, classes moved to axis 1.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> round(float(jaxloss.softmax_cross_entropy(jnp.zeros(4), jnp.array([0., 1, 0, 0]))), 6)
      1.386294
    """
    fn = "softmax_cross_entropy"
    _reduce.check_reduction(fn, reduction)
    _checks.require(fn, "label_smoothing", label_smoothing, _checks.UNIT)
    z = _checks.check_floating(fn, "logits", logits)
    t = _checks.check_real(fn, "targets", targets)
    _checks.check_same_shape(fn, "logits", z, "targets", t)
    axis = normalise_axis(fn, axis, z.ndim)
    dtype = _checks.compute_dtype(z, t)
    z, t = z.astype(dtype), t.astype(dtype)
    num_classes = z.shape[axis]
    mask = class_mask(fn, where, z)
    w = class_weights_vector(fn, class_weights, num_classes, dtype)

    eps = jnp.asarray(label_smoothing, dtype)
    if mask is None:
        q = (1 - eps) * t + eps / num_classes
    else:
        k = jnp.sum(mask, axis=axis, keepdims=True).astype(dtype)
        q = jnp.where(mask, (1 - eps) * t + eps / jnp.maximum(k, 1), 0)
        # A masked class is a logit of -inf with no target mass: out of the softmax, 0 in the
        # sum, zero gradient (the select transposes to 0), and a NaN there does not leak.
        z = jnp.where(mask, z, -jnp.inf)
    if w is not None:
        q = q * bcast(w, z.ndim, axis)
    # Without a mask every logit is usually finite: the unguarded form first (see _soft_ce_fast).
    soft_ce = _soft_ce if mask is not None else _soft_ce_fast
    loss = soft_ce(jnp.moveaxis(z, axis, -1), jnp.moveaxis(q, axis, -1))
    return _reduce.reduce_loss(loss, reduction)


@jax.custom_jvp
def _soft_ce(z: jax.Array, q: jax.Array) -> jax.Array:
    """sum_c q_c (lse(z) - z_c) over the last axis (q already smoothed, weighted and masked).

    Each difference is formed as (m - z_c) + log_sum (``_core.numerics.logsumexp_parts``): exact for
    logits near the maximum, and overflowing only where the true term is beyond range.
    Select-free, so that XLA:CPU fuses it into the row reduction (no [..., C] temporary): with
    ``big`` the largest finite float, min(m - z_c, big·(1 + sign|q_c|)) caps the difference at
    ``big`` only where q_c = 0, so 0·(+inf) = 0 for a -inf logit or a difference that
    overflows (logits 3e38 and -3e38), while a term with mass keeps its true +inf. A row of -inf
    gives 0. NaN in z or q reaches the sum.
    """
    m, log_s, counted = logsumexp_parts(z, axis=-1)
    big = jnp.finfo(z.dtype).max * (1 + jnp.sign(jnp.abs(q)))
    # (m - z_c)/2 written as -(z_c/2 + (-m/2)) (exactly the same number): a broadcast of m
    # shared with the exp-sum of the lse is materialised by XLA:CPU as a full [..., C]
    # temporary. Halving is exact and keeps m - z_c = 6e38 (logits ±3e38) from overflowing
    # where q_c (m - z_c) is in range (see _scaled_gap).
    half_gap = jnp.minimum(-(0.5 * z + -(0.5 * m)), big)
    per_class = 2 * (q * half_gap) + q * log_s
    return jnp.where(counted[..., 0], jnp.sum(per_class, axis=-1), 0)


def _soft_ce_jvp(primals, tangents):
    """dl/dz_c = W softmax(z)_c - q_c (W = sum_c q_c), dl/dq_c = lse - z_c; 0 where z_c = -inf
    and for rows of -inf (as the select form's derivative)."""
    z, q = primals
    dz, dq = tangents
    value = _soft_ce(z, q)
    m, log_s, counted = logsumexp_parts(z, axis=-1)
    # The gradient's own copies of (m, log_sum): a [..., 1] vector broadcast into two fusions
    # (the value's row sum and the gradient) is materialised by XLA:CPU at full [..., C] size;
    # the barrier keeps them apart (measured: value-and-grad temporaries 8 MiB -> 0.16 MiB at
    # [8192, 128]). softmax = exp((z - m) - log_sum), exact where exp(z - lse) would carry the
    # rounding of lse (1e-3 relative at logits of 1e4).
    m, log_s = jax.lax.optimization_barrier((m, log_s))
    finite = z != -jnp.inf  # NaN counts as finite here: it must reach the gradient
    out = jnp.zeros_like(value)
    if not is_zero(dz):
        p = jnp.exp((z - m) - log_s)
        total = jnp.sum(q, axis=-1, keepdims=True)
        gz = total * p - jnp.where(finite, q, 0)
        out = out + jnp.sum(gz * dz, axis=-1)
    if not is_zero(dq):
        gq = jnp.where(finite, (m - jnp.where(finite, z, 0)) + log_s, 0)
        out = out + jnp.sum(gq * dq, axis=-1)
    return value, jnp.where(counted[..., 0], out, 0)


_soft_ce.defjvp(_soft_ce_jvp, symbolic_zeros=True)


@jax.custom_jvp
def _soft_ce_fast(z: jax.Array, q: jax.Array) -> jax.Array:
    """``_soft_ce(z, q)``, computed first without its guards; rows that are not finite are
    recomputed with them.

    sum_c q_c ((m - z_c) + log_s) is optax's row (one YNNPACK fusion on XLA:CPU: the max, the
    exp-sum and the weighted sum, the data read once per row from cache); the guards of
    ``_soft_ce`` (a min per element and halving) cost 2x its time at [4096, 32768]. Where every
    logit is finite and no m - z_c overflows, the two agree to rounding (same exact differences
    near the maximum). Every case the guards exist for gives a non-finite row here: a -inf logit
    (0·inf or +inf), a row of -inf (s = 0: -inf + inf), m - z_c beyond range (+inf), a NaN (NaN,
    carried by the exp-sum even where a fused max drops it). Only then is ``_soft_ce`` run (a
    ``lax.cond`` on the row values), and only those rows take its value: the finite rows keep
    theirs, bit for bit. The shift is the row max clamped to >= lowest, select-free, so that a
    -inf row max does not make the shifted logits NaN.
    """
    fi = jnp.finfo(z.dtype)
    m = jax.lax.stop_gradient(jnp.maximum(jnp.max(z, axis=-1, keepdims=True), fi.min))
    log_s = jnp.log(jnp.sum(jnp.exp(z - m), axis=-1, keepdims=True))
    fast = jnp.sum(q * ((m - z) + log_s), axis=-1)
    ok = jnp.isfinite(fast)
    return jax.lax.cond(jnp.all(ok), lambda: fast, lambda: jnp.where(ok, fast, _soft_ce(z, q)))


def _soft_ce_fast_jvp(primals, tangents):
    out = _soft_ce_jvp(primals, tangents)[1]
    return _soft_ce_fast(*primals), out


_soft_ce_fast.defjvp(_soft_ce_fast_jvp, symbolic_zeros=True)


@register(plot="softmax")
def softmax_cross_entropy_with_integer_labels(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    axis: int = -1,
    class_weights: ArrayLike | None = None,
    label_smoothing: ArrayLike = 0.0,
    ignore_index: int | None = None,
    where: ArrayLike | None = None,
    reduction: str = "none",
) -> jax.Array:
    """Softmax cross-entropy with integer labels, one value per example, no one-hot built.

    Math (z = logits, y = label, K counted classes, w = class weights or 1):
      l = (1 - ε) w_y (lse(z) - z_y) + (ε/K) sum_c w_c (lse(z) - z_c)   (counted classes c).
    Each lse(z) - z_c is formed as (m - z_c) + log sum_c exp(z_c - m) (m the row maximum):
    exact when z_c is near the maximum, where lse - z_c would round the log-sum to the ulp of
    lse (1e-3 at logits of 1e4); coefficients below 1 multiply half-differences, so logits of
    ±3e38 give the float64 value rounded (inf only beyond float32's range). z_y is a gather (no
    ``log_softmax * one_hot`` temporary); the smoothing term is summed term by term. A NaN
    logit makes its example NaN (value and gradient row).

    Gradient: dl/dz_c = [(1 - ε) w_y + (ε/K) sum_c' w_c'] softmax(z)_c - (1 - ε) w_y [c = y]
    - (ε/K) w_c, for counted c; 0 for masked c. Ignored examples: value 0, gradient 0
    (a NaN in an ignored example's logits still makes its gradient row NaN).

    Labels outside [0, C) (other than ``ignore_index``), or whose class is masked by ``where``,
    raise a ValueError when the labels are concrete; under ``jit`` they give a NaN value and
    a NaN gradient row.

    Args:
      logits: floating array [..., C, ...] with the class axis ``axis``.
      labels: integer array, the logits' shape without ``axis``.
      axis: the class axis.
      class_weights: optional [C] weights (PyTorch's ``weight=``); see the module notes.
      label_smoothing: ε in [0, 1], as ``torch.nn.CrossEntropyLoss(label_smoothing=)``.
      ignore_index: optional label value whose examples give 0 and, with ``reduction=``, are
        not counted (with ``jaxloss.mean`` pass the mask ``labels != ignore_index`` yourself).
      where: optional boolean class mask, broadcastable to ``logits`` with the same ndim.
      reduction: ``"none"`` (default: one value per example), ``"mean"`` or ``"sum"``,
        PyTorch's, with V the examples whose label is not ``ignore_index``:
        'mean' = sum_{n in V} l_n / sum_{n in V} w_{y_n} (w = 1 without class weights: the
        number of kept examples), so label smoothing and class weights give torch's number in
        one call; 'sum' = sum_{n in V} l_n. When the denominator is 0 (every example ignored,
        or only zero-weight labels kept) 'mean' is 0 with a zero, finite gradient, where torch
        gives NaN. A NaN in a kept example makes both NaN.

    Returns:
      Array of the shape of ``labels`` (``reduction="none"``), or a scalar:
      ``torch.nn.CrossEntropyLoss(weight=w, ignore_index=, label_smoothing=ε, reduction=)``
      with classes moved to axis 1 (for ``where=`` there is no torch counterpart; its K
      replaces C).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> logits = jnp.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
      >>> v = jaxloss.softmax_cross_entropy_with_integer_labels(logits, jnp.array([0, -100]),
      ...                                                       ignore_index=-100)
      >>> [round(x, 4) for x in v.tolist()]
      [0.2395, 0.0]
      >>> m = jaxloss.softmax_cross_entropy_with_integer_labels(
      ...     logits, jnp.array([0, -100]), ignore_index=-100, reduction="mean")
      >>> round(float(m), 4)
      0.2395
    """
    fn = "softmax_cross_entropy_with_integer_labels"
    _reduce.check_reduction(fn, reduction)
    _checks.require(fn, "label_smoothing", label_smoothing, _checks.UNIT)
    z, y, axis, num_classes, mask, dtype = prepare_integer(
        fn,
        logits,
        labels,
        axis,
        ignore_index,
        where,
        label_hint="For probability targets use jaxloss.softmax_cross_entropy.",
    )
    w = class_weights_vector(fn, class_weights, num_classes, dtype)

    if mask is not None:
        check_label_counted(fn, y, mask, axis, ignore_index)
    # lse - z_c as (m - z_c) + log_sum: exact for the label logit near the maximum (lse - z_y
    # would round log_sum to the ulp of lse), finite wherever the true value is.
    m, log_s, _ = logsumexp_parts(z, axis=axis, where=mask)
    z_counted = z if mask is None else jnp.where(mask, z, 0)
    if mask is None:
        # A gather of the label logit: no [..., C] temporary (XLA:CPU does not fuse the select of
        # an iota == label compare into the row sum; measured in bench/). Out-of-range labels
        # are clipped here and turned into NaN by finish_integer_loss.
        y_safe = jnp.clip(y, 0, num_classes - 1)
        z_y = jnp.squeeze(jnp.take_along_axis(z, jnp.expand_dims(y_safe, axis), axis), axis)
        w_y = 1 if w is None else jnp.take(w, y_safe)
        any_label: Any = True
    else:
        is_label = jax.lax.broadcasted_iota(y.dtype, z.shape, axis) == jnp.expand_dims(y, axis)
        label_counted = is_label & mask
        z_y = jnp.sum(jnp.where(label_counted, z_counted, 0), axis=axis)
        w_y = 1 if w is None else jnp.sum(jnp.where(is_label, bcast(w, z.ndim, axis), 0), axis=axis)
        any_label = jnp.any(label_counted, axis=axis)
    m_row, log_s_row = jnp.squeeze(m, axis), jnp.squeeze(log_s, axis)

    eps = jnp.asarray(label_smoothing, dtype)
    smooth = _checks.concrete_float(label_smoothing)
    if smooth == 0:
        loss = (m_row - z_y) + log_s_row if w is None else _scaled_gap(w_y, m_row, z_y, log_s_row)
    else:
        loss = _scaled_gap((1 - eps) * w_y, m_row, z_y, log_s_row)
        wc = jnp.ones_like(z) if w is None else jnp.broadcast_to(bcast(w, z.ndim, axis), z.shape)
        if mask is not None:
            wc = jnp.where(mask, wc, 0)
        k = (
            z.shape[axis]
            if mask is None
            else jnp.maximum(jnp.sum(mask, axis=axis, keepdims=True), 1).astype(dtype)
        )
        # (ε/K) sum_c w_c (lse - z_c) term by term (the difference of two sums would cancel
        # catastrophically for large logits in float32).
        loss = loss + jnp.sum(_scaled_gap(eps * wc / k, m, z_counted, log_s), axis=axis)
    loss = finish_integer_loss(loss, y, num_classes, ignore_index, any_label)
    return reduce_integer(loss, reduction, y, w, num_classes, ignore_index)


def _scaled_gap(c: Any, m: jax.Array, z: jax.Array, log_s: jax.Array) -> jax.Array:
    """c·((m - z) + log_s) for a coefficient c >= 0, overflowing only where the result does.

    m - z overflows float32 at logits of ±3e38 (6e38) while c·(m - z) may be in range (c < 1:
    a class weight, 1 - ε, ε/K): halving is exact, so 2·(c·(m/2 - z/2)) is c·(m - z) rounded
    once, without the intermediate overflow.
    """
    return 2 * (c * (0.5 * m - 0.5 * z)) + c * log_s


@register(plot="nll")
def nll_loss(
    log_probabilities: ArrayLike,
    labels: ArrayLike,
    *,
    axis: int = -1,
    class_weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: str = "none",
) -> jax.Array:
    """Negative log-likelihood from log-probabilities and integer labels, one value per example.

    Math:  l = -w_y log_probabilities[y]  (w = class weights or 1). No normalisation is applied:
    pass ``jax.nn.log_softmax`` output (or use the logits version directly).

    Gradient: dl/dlog_probabilities_c = -w_y [c = y]. Ignored examples: value 0, gradient 0.
    A NaN anywhere in an example's log-probabilities makes its value and its whole gradient row
    NaN (not only a NaN at the label).

    Args:
      log_probabilities: floating array [..., C, ...] with the class axis ``axis``.
      labels: integer array, the input's shape without ``axis``.
      axis: the class axis.
      class_weights: optional [C] weights (PyTorch's ``torch.nn.NLLLoss(weight=)``).
      ignore_index: optional label value whose examples give 0 and, with ``reduction=``, are
        not counted.
      reduction: ``"none"`` (default: one value per example), ``"mean"`` or ``"sum"``,
        PyTorch's, with V the examples whose label is not ``ignore_index``:
        'mean' = sum_{n in V} l_n / sum_{n in V} w_{y_n} (w = 1 without class weights: the
        number of kept examples); 'sum' = sum_{n in V} l_n. When the denominator is 0 (every
        example ignored, or only zero-weight labels kept) 'mean' is 0 with a zero, finite
        gradient, where torch gives NaN. A NaN in a kept example makes both NaN.

    Returns:
      Array of the shape of ``labels`` (``reduction="none"``), or a scalar:
      ``torch.nn.NLLLoss(weight=w, ignore_index=, reduction=)`` with classes moved to axis 1.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.nll_loss(jnp.log(jnp.array([[0.5, 0.25, 0.25]])), jnp.array([1])).tolist()
      [1.3862943649291992]
    """
    fn = "nll_loss"
    _reduce.check_reduction(fn, reduction)
    lp, y, axis, num_classes, _, dtype = prepare_integer(
        fn, log_probabilities, labels, axis, ignore_index, None, arg="log_probabilities"
    )
    w = class_weights_vector(fn, class_weights, num_classes, dtype)
    is_label = jax.lax.broadcasted_iota(y.dtype, lp.shape, axis) == jnp.expand_dims(y, axis)
    # The label entry, plus any NaN of the row: a NaN anywhere in an example makes it NaN.
    picked = jnp.sum(jnp.where(is_label | jnp.isnan(lp), lp, 0), axis=axis)
    loss = -picked if w is None else -jnp.take(w, jnp.clip(y, 0, num_classes - 1)) * picked
    loss = finish_integer_loss(loss, y, num_classes, ignore_index, jnp.any(is_label, axis=axis))
    # The loss is linear in the input: its NaN examples get a NaN gradient row explicitly.
    loss = nan_gradient(loss, lp, axis)
    return reduce_integer(loss, reduction, y, w, num_classes, ignore_index)
