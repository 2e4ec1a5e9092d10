"""Classification losses from logits (binary and multi-class) and from probabilities.

Binary losses are elementwise (one value per logit). Multi-class losses reduce the class axis and
return one value per example. float16/bfloat16 inputs are computed in float32 and the result is
float32; float64 stays float64. Gradients come back in the dtype of the input they belong to.

Class weights and the mean. ``class_weights=w`` inside a multi-class loss gives PyTorch's
per-example (``reduction='none'``) value: the class-weighted expected negative log-likelihood
``sum_c w_c q_c (-log p_c)`` of the (smoothed) target distribution q. PyTorch's ``'mean'`` divides
the sum of those by ``sum_n w[y_n]`` over non-ignored examples, which is

    jaxloss.sum(ce(logits, labels, class_weights=w, ...)) / jaxloss.sum(w[labels], where=valid)

and, for hard labels without smoothing, also exactly the one reduction rule applied to the
*unweighted* loss: ``jaxloss.mean(ce(logits, labels), weights=w[labels], where=valid)``. Put class
weights in one place only.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from . import _checks
from ._numerics import logsumexp, softplus

__all__ = [
    "binary_cross_entropy",
    "expected_cost",
    "nll_loss",
    "sigmoid_binary_cross_entropy",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
]


# ----------------------------------------------------------------------------------------------
# Binary


def sigmoid_binary_cross_entropy(
    logits: Any, labels: Any, *, pos_weight: Any = None, label_smoothing: Any = 0.0
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
        to ``logits`` (e.g. one per class, as ``torch.nn.BCEWithLogitsLoss(pos_weight=)``).
      label_smoothing: ε in [0, 1); moves labels towards 1/2.

    Returns:
      Array of the shape of ``logits``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> round(float(jaxloss.sigmoid_binary_cross_entropy(jnp.array(0.0), jnp.array(1.0))), 6)
      0.693147
    """
    fn = "sigmoid_binary_cross_entropy"
    _checks.require(fn, "label_smoothing", label_smoothing, "in [0, 1)")
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
        if (v := _checks.concrete_min(pos_weight)) is not None and v < 0:
            raise ValueError(f"jaxloss.{fn}: `pos_weight` must be >= 0; got a minimum of {v}.")
        loss = loss + (pw.astype(dtype) - 1) * t * softplus(-x)
    return loss


def _clamped_log(x: jax.Array, floor: float = -100.0) -> jax.Array:
    """max(log(x), floor) with a finite (zero) gradient where the floor applies, including x = 0."""
    above = x > np.exp(floor)
    safe = jnp.where(above, x, 1)
    return jnp.where(above, jnp.log(safe), floor)


def binary_cross_entropy(probabilities: Any, labels: Any) -> jax.Array:
    """Binary cross-entropy on probabilities, elementwise; safe at exactly 0 and 1.

    Math:  l = -[t log p + (1 - t) log(1 - p)], each log clamped below at -100 (as
    ``torch.nn.BCELoss``), so p = 0 or 1 gives a finite value (at most 100 per term).

    Gradient: dl/dp = -t/p + (1 - t)/(1 - p) where neither log is clamped; a clamped log
    contributes 0 (so at p = 0, t = 0 the gradient is exactly 1, never NaN).
    dl/dt = log(1 - p) - log(p) with the clamped logs.

    Prefer :func:`sigmoid_binary_cross_entropy` on logits: it is exact where this one clamps.

    Args:
      probabilities: floating array, values in [0, 1].
      labels: real array of the same shape, values in [0, 1].

    Returns:
      Array of the shape of ``probabilities``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.binary_cross_entropy(jnp.array([0.0, 1.0]), jnp.array([1.0, 1.0])).tolist()
      [100.0, 0.0]
    """
    fn = "binary_cross_entropy"
    p = _checks.check_floating(fn, "probabilities", probabilities)
    t = _checks.check_real(fn, "labels", labels)
    _checks.check_same_shape(fn, "probabilities", p, "labels", t)
    dtype = _checks.compute_dtype(p, t)
    p, t = p.astype(dtype), t.astype(dtype)
    return -t * _clamped_log(p) - (1 - t) * _clamped_log(1 - p)


# ----------------------------------------------------------------------------------------------
# Multi-class helpers


def _normalise_axis(fn: str, axis: int, ndim: int) -> int:
    if not isinstance(axis, int) or not -ndim <= axis < ndim:
        raise ValueError(
            f"jaxloss.{fn}: `axis` must be an int in [-{ndim}, {ndim}) for {ndim}-d logits; "
            f"got {axis!r}."
        )
    return axis % ndim


def _class_mask(fn: str, where: Any, logits: jax.Array) -> jax.Array | None:
    if where is None:
        return None
    where = _checks.as_array(fn, "where", where)
    if where.dtype != jnp.bool_:
        raise TypeError(f"jaxloss.{fn}: `where` must be a boolean mask; got {where.dtype}.")
    if where.ndim != logits.ndim:
        raise ValueError(
            f"jaxloss.{fn}: `where` masks logits entries and must have logits.ndim="
            f"{logits.ndim} dims (broadcastable to {tuple(logits.shape)}); got where.shape="
            f"{tuple(where.shape)}. To mask whole examples, pass `where[..., None]` here or "
            "mask in the reduction: jaxloss.mean(values, where=...)."
        )
    _checks.check_broadcastable(fn, "where", where, logits.shape, "the logits'")
    return jnp.broadcast_to(where, logits.shape)


def _class_weights(fn: str, class_weights: Any, num_classes: int, dtype: Any) -> jax.Array | None:
    if class_weights is None:
        return None
    w = _checks.check_real(fn, "class_weights", class_weights)
    if w.shape != (num_classes,):
        raise ValueError(
            f"jaxloss.{fn}: `class_weights` must have shape (num_classes,) = ({num_classes},); "
            f"got {tuple(w.shape)}."
        )
    return w.astype(dtype)


def _check_labels(
    fn: str, labels: Any, logits: jax.Array, axis: int, num_classes: int, ignore_index: Any
) -> jax.Array:
    labels = _checks.check_integer(fn, "labels", labels)
    expected = tuple(s for i, s in enumerate(logits.shape) if i != axis)
    if tuple(labels.shape) != expected:
        raise ValueError(
            f"jaxloss.{fn}: `labels` must have the logits' shape without the class axis, "
            f"{expected}; got labels.shape={tuple(labels.shape)} for logits.shape="
            f"{tuple(logits.shape)} and axis={axis}."
        )
    if ignore_index is not None and not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(
            f"jaxloss.{fn}: `ignore_index` must be an int or None; got {ignore_index!r}."
        )
    try:  # Concrete labels (eager calls) are range-checked; traced ones give NaN values instead.
        concrete = np.asarray(labels)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return labels
    bad = (concrete < 0) | (concrete >= num_classes)
    if ignore_index is not None:
        bad &= concrete != ignore_index
    if bad.any():
        raise ValueError(
            f"jaxloss.{fn}: `labels` must be class indices in [0, {num_classes})"
            + (f" or ignore_index={ignore_index}" if ignore_index is not None else "")
            + f"; got {concrete[bad].ravel()[:5].tolist()}."
        )
    return labels


def _prepare_integer(
    fn: str, logits: Any, labels: Any, axis: int, ignore_index: Any, where: Any,
    arg: str = "logits",
) -> tuple[jax.Array, jax.Array, int, int, jax.Array | None, Any]:
    """Validated integer-label inputs: logits in the compute dtype, labels, axis, C, class mask.

    ``arg`` names the scores argument in messages (``log_probabilities`` for nll_loss)."""
    z = _checks.check_floating(fn, arg, logits)
    axis = _normalise_axis(fn, axis, z.ndim)
    num_classes = z.shape[axis]
    y = _check_labels(fn, labels, z, axis, num_classes, ignore_index)
    dtype = _checks.compute_dtype(z)
    z = z.astype(dtype)
    mask = _class_mask(fn, where, z)
    return z, y, axis, num_classes, mask, dtype


def _check_label_counted(
    fn: str, labels: jax.Array, mask: jax.Array, axis: int, ignore_index: Any
) -> None:
    """ValueError when concrete labels point at a class that ``where`` masks out."""
    try:
        y, m = np.asarray(labels), np.asarray(mask)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return  # traced: the loss is NaN there instead
    m = np.moveaxis(m, axis, -1)
    ok = (y >= 0) & (y < m.shape[-1])
    picked = np.take_along_axis(m, np.where(ok, y, 0)[..., None], -1)[..., 0]
    bad = ok & ~picked
    if ignore_index is not None:
        bad &= y != ignore_index
    if bad.any():
        raise ValueError(
            f"jaxloss.{fn}: `labels` must point at classes that `where` counts; labels "
            f"{y[bad].ravel()[:5].tolist()} are masked out for their examples."
        )


def _finish_integer_loss(
    loss: jax.Array,
    labels: jax.Array,
    num_classes: int,
    ignore_index: Any,
    label_counted: jax.Array | bool,
) -> jax.Array:
    """Zeros ignored examples; NaN marks labels out of range or masked out (traced inputs)."""
    in_range = (labels >= 0) & (labels < num_classes) & label_counted
    if ignore_index is None:
        return jnp.where(in_range, loss, jnp.nan)
    ignored = labels == ignore_index
    return jnp.where(ignored, 0, jnp.where(in_range, loss, jnp.nan))


# ----------------------------------------------------------------------------------------------
# Multi-class on logits


def softmax_cross_entropy(
    logits: Any,
    targets: Any,
    *,
    axis: int = -1,
    class_weights: Any = None,
    label_smoothing: Any = 0.0,
    where: Any = None,
) -> jax.Array:
    """Softmax cross-entropy with probability targets, one value per example.

    Math (z = logits, K counted classes, q = (1 - ε) t + ε/K, w = class weights or 1):
      l = sum_c w_c q_c (lse(z) - z_c),  lse(z) = log sum_c exp(z_c) over counted classes.
    Terms with w_c q_c = 0 are 0 even where z_c = -inf. A row with no counted class gives 0.

    Gradient: dl/dz_c = W softmax(z)_c - w_c q_c with W = sum_c w_c q_c (0 for masked c);
    dl/dt_c = (1 - ε) w_c (lse(z) - z_c).

    Args:
      logits: floating array [..., C, ...] with the class axis ``axis``.
      targets: real array of the same shape (each row a distribution; not renormalised).
      axis: the class axis.
      class_weights: optional [C] weights (PyTorch's ``weight=``); see the module notes for the
        matching mean.
      label_smoothing: ε in [0, 1].
      where: optional boolean class mask, broadcastable to ``logits`` with the same ndim;
        masked classes are left out of the softmax and of the target.

    Returns:
      Array of the shape of ``logits`` without ``axis``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> round(float(jaxloss.softmax_cross_entropy(jnp.zeros(4), jnp.array([0., 1, 0, 0]))), 6)
      1.386294
    """
    fn = "softmax_cross_entropy"
    _checks.require(fn, "label_smoothing", label_smoothing, "in [0, 1]")
    z = _checks.check_floating(fn, "logits", logits)
    t = _checks.check_real(fn, "targets", targets)
    _checks.check_same_shape(fn, "logits", z, "targets", t)
    axis = _normalise_axis(fn, axis, z.ndim)
    dtype = _checks.compute_dtype(z, t)
    z, t = z.astype(dtype), t.astype(dtype)
    num_classes = z.shape[axis]
    mask = _class_mask(fn, where, z)
    w = _class_weights(fn, class_weights, num_classes, dtype)

    eps = jnp.asarray(label_smoothing, dtype)
    if mask is None and w is None:
        q = (1 - eps) * t + eps / num_classes
        zm, qm = jnp.moveaxis(z, axis, -1), jnp.moveaxis(q, axis, -1)
        return _soft_ce(zm, qm)
    lse, counted = logsumexp(z, axis=axis, where=mask)
    if mask is None:
        q = (1 - eps) * t + eps / num_classes
    else:
        k = jnp.sum(mask, axis=axis, keepdims=True).astype(dtype)
        q = jnp.where(mask, (1 - eps) * t + eps / jnp.maximum(k, 1), 0)
    if w is not None:
        shape = [1] * z.ndim
        shape[axis] = num_classes
        q = q * w.reshape(shape)
    # q_c (lse - z_c) with 0·(+inf) = 0 where a logit is -inf and its target mass is 0 (and +inf
    # where the mass is not 0). Elsewhere the term is plain, so dl/dq_c = lse - z_c even at q_c = 0.
    finite = z > -jnp.inf
    z_safe = jnp.where(finite, z, 0)
    per_class = q * (jnp.expand_dims(lse, axis) - z_safe)
    per_class = jnp.where(finite, per_class, jnp.where(q != 0, jnp.inf, 0))
    if mask is not None:
        per_class = jnp.where(mask, per_class, 0)
    return jnp.where(counted, jnp.sum(per_class, axis=axis), 0)


@jax.custom_jvp
def _soft_ce(z: jax.Array, q: jax.Array) -> jax.Array:
    """sum_c q_c (lse(z) - z_c) over the last axis, without class mask or weights.

    Select-free, so that XLA:CPU fuses it into the row reduction (no [..., C] temporary): with
    `lowest` the most negative finite float, max(z, lowest·(1 + sign|q|)) keeps z_c = -inf only
    where q_c != 0 (giving the true +inf) and turns 0·(-inf) into 0. A row of -inf gives 0.
    """
    lse, counted = logsumexp(z, axis=-1)
    bound = jnp.finfo(z.dtype).min * (1 + jnp.sign(jnp.abs(q)))
    per_class = q * (lse[..., None] - jnp.maximum(z, bound))
    return jnp.where(counted, jnp.sum(per_class, axis=-1), 0)


def _soft_ce_jvp(primals, tangents):
    """dl/dz_c = W softmax(z)_c - q_c (W = sum_c q_c), dl/dq_c = lse - z_c; 0 where z_c = -inf
    and for rows of -inf (as the select form's derivative)."""
    z, q = primals
    dz, dq = tangents
    value = _soft_ce(z, q)
    lse, counted = logsumexp(z, axis=-1)
    finite = z > -jnp.inf
    out = jnp.zeros_like(value)
    if not isinstance(dz, SymbolicZero):
        p = jnp.exp(z - lse[..., None])
        total = jnp.sum(q, axis=-1, keepdims=True)
        gz = total * p - jnp.where(finite, q, 0)
        out = out + jnp.sum(gz * dz, axis=-1)
    if not isinstance(dq, SymbolicZero):
        gq = jnp.where(finite, lse[..., None] - jnp.where(finite, z, 0), 0)
        out = out + jnp.sum(gq * dq, axis=-1)
    return value, jnp.where(counted, out, 0)


_soft_ce.defjvp(_soft_ce_jvp, symbolic_zeros=True)


def softmax_cross_entropy_with_integer_labels(
    logits: Any,
    labels: Any,
    *,
    axis: int = -1,
    class_weights: Any = None,
    label_smoothing: Any = 0.0,
    ignore_index: int | None = None,
    where: Any = None,
) -> jax.Array:
    """Softmax cross-entropy with integer labels, one value per example, no one-hot built.

    Math (z = logits, y = label, K counted classes, w = class weights or 1):
      l = (1 - ε) w_y (lse(z) - z_y) + (ε/K) sum_c w_c (lse(z) - z_c)   (counted classes c).
    Computed as ``lse - z_y`` with z_y picked by an iota == label compare (fuses; no
    ``log_softmax * one_hot`` temporary) and the smoothing term from sum_c w_c and sum_c w_c z_c.

    Gradient: dl/dz_c = [(1 - ε) w_y + (ε/K) sum_c' w_c'] softmax(z)_c - (1 - ε) w_y [c = y]
    - (ε/K) w_c, for counted c; 0 for masked c. Ignored examples: value 0, gradient 0.

    Labels outside [0, C) (other than ``ignore_index``), or whose class is masked by ``where``,
    raise a ValueError when the labels are concrete; under ``jit`` they give a NaN value.

    Args:
      logits: floating array [..., C, ...] with the class axis ``axis``.
      labels: integer array, the logits' shape without ``axis``.
      axis: the class axis.
      class_weights: optional [C] weights (PyTorch's ``weight=``); see the module notes.
      label_smoothing: ε in [0, 1], as ``torch.nn.CrossEntropyLoss(label_smoothing=)``.
      ignore_index: optional label value whose examples give 0 (pass the same mask,
        ``labels != ignore_index``, to the reduction so they are not counted).
      where: optional boolean class mask, broadcastable to ``logits`` with the same ndim.

    Returns:
      Array of the shape of ``labels``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> logits = jnp.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
      >>> v = jaxloss.softmax_cross_entropy_with_integer_labels(logits, jnp.array([0, -100]),
      ...                                                       ignore_index=-100)
      >>> [round(x, 4) for x in v.tolist()]
      [0.2395, 0.0]
    """
    fn = "softmax_cross_entropy_with_integer_labels"
    _checks.require(fn, "label_smoothing", label_smoothing, "in [0, 1]")
    z, y, axis, num_classes, mask, dtype = _prepare_integer(fn, logits, labels, axis,
                                                            ignore_index, where)
    w = _class_weights(fn, class_weights, num_classes, dtype)

    if mask is not None:
        _check_label_counted(fn, y, mask, axis, ignore_index)
    lse, _ = logsumexp(z, axis=axis, where=mask)
    z_counted = z if mask is None else jnp.where(mask, z, 0)
    if mask is None:
        # A gather of the label logit: no [..., C] temporary (XLA:CPU does not fuse the select of
        # an iota == label compare into the row sum; measured in bench/). Out-of-range labels
        # are clipped here and turned into NaN by _finish_integer_loss.
        y_safe = jnp.clip(y, 0, num_classes - 1)
        z_y = jnp.squeeze(jnp.take_along_axis(z, jnp.expand_dims(y_safe, axis), axis), axis)
        w_y = 1 if w is None else jnp.take(w, y_safe)
        any_label: Any = True
    else:
        is_label = jax.lax.broadcasted_iota(y.dtype, z.shape, axis) == jnp.expand_dims(y, axis)
        label_counted = is_label & mask
        z_y = jnp.sum(jnp.where(label_counted, z_counted, 0), axis=axis)
        w_y = 1 if w is None else jnp.sum(jnp.where(is_label, _bcast(w, z.ndim, axis), 0),
                                          axis=axis)
        any_label = jnp.any(label_counted, axis=axis)
    loss = w_y * (lse - z_y)

    eps = jnp.asarray(label_smoothing, dtype)
    smooth = _checks.concrete_float(label_smoothing)
    if smooth is None or smooth != 0:
        wc = jnp.ones_like(z) if w is None else jnp.broadcast_to(_bcast(w, z.ndim, axis), z.shape)
        if mask is not None:
            wc = jnp.where(mask, wc, 0)
        k = z.shape[axis] if mask is None else jnp.maximum(jnp.sum(mask, axis=axis), 1)
        # sum_c w_c (lse - z_c) term by term: the difference of the two sums would cancel
        # catastrophically for large logits in float32.
        per_class = wc * (jnp.expand_dims(lse, axis) - z_counted)
        smooth_term = jnp.sum(per_class, axis=axis) / k
        loss = (1 - eps) * loss + eps * smooth_term
    return _finish_integer_loss(loss, y, num_classes, ignore_index, any_label)


def _bcast(w: jax.Array, ndim: int, axis: int) -> jax.Array:
    shape = [1] * ndim
    shape[axis] = w.shape[0]
    return w.reshape(shape)


def nll_loss(
    log_probabilities: Any,
    labels: Any,
    *,
    axis: int = -1,
    class_weights: Any = None,
    ignore_index: int | None = None,
) -> jax.Array:
    """Negative log-likelihood from log-probabilities and integer labels, one value per example.

    Math:  l = -w_y log_probabilities[y]  (w = class weights or 1). No normalisation is applied:
    pass ``jax.nn.log_softmax`` output (or use the logits version directly).

    Gradient: dl/dlog_probabilities_c = -w_y [c = y]. Ignored examples: value 0, gradient 0.

    Args:
      log_probabilities: floating array [..., C, ...] with the class axis ``axis``.
      labels: integer array, the input's shape without ``axis``.
      axis: the class axis.
      class_weights: optional [C] weights (PyTorch's ``torch.nn.NLLLoss(weight=)``).
      ignore_index: optional label value whose examples give 0.

    Returns:
      Array of the shape of ``labels``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.nll_loss(jnp.log(jnp.array([[0.5, 0.25, 0.25]])), jnp.array([1])).tolist()
      [1.3862943649291992]
    """
    fn = "nll_loss"
    lp, y, axis, num_classes, _, dtype = _prepare_integer(
        fn, log_probabilities, labels, axis, ignore_index, None, arg="log_probabilities")
    w = _class_weights(fn, class_weights, num_classes, dtype)
    is_label = jax.lax.broadcasted_iota(y.dtype, lp.shape, axis) == jnp.expand_dims(y, axis)
    picked = jnp.where(is_label, lp, 0) if w is None else jnp.where(
        is_label, lp * _bcast(w, lp.ndim, axis), 0
    )
    loss = -jnp.sum(picked, axis=axis)
    return _finish_integer_loss(loss, y, num_classes, ignore_index, jnp.any(is_label, axis=axis))


def expected_cost(
    logits: Any,
    labels: Any,
    *,
    cost_matrix: Any,
    axis: int = -1,
    ignore_index: int | None = None,
) -> jax.Array:
    """Expected misclassification cost under the softmax, one value per example.

    Math:  l = sum_c softmax(z)_c · M[y, c], where M[i, j] is the cost of predicting class j when
    the truth is i (usually 0 on the diagonal). Unlike cross-entropy it knows which mistakes are
    cheap: confusing two similar classes can cost less than confusing dissimilar ones.

    Gradient: dl/dz_c = softmax(z)_c (M[y, c] - l). Ignored examples: value 0, gradient 0.

    Args:
      logits: floating array [..., C, ...] with the class axis ``axis``.
      labels: integer array, the logits' shape without ``axis``.
      cost_matrix: [C, C] real array, rows = true class, columns = predicted class.
      axis: the class axis.
      ignore_index: optional label value whose examples give 0.

    Returns:
      Array of the shape of ``labels``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> m = jnp.array([[0.0, 1.0], [5.0, 0.0]])
      >>> jaxloss.expected_cost(jnp.zeros((1, 2)), jnp.array([1]), cost_matrix=m).tolist()
      [2.5]

    Reference: Elkan, "The Foundations of Cost-Sensitive Learning", IJCAI 2001.
    """
    fn = "expected_cost"
    z = _checks.check_floating(fn, "logits", logits)
    axis = _normalise_axis(fn, axis, z.ndim)
    num_classes = z.shape[axis]
    y = _check_labels(fn, labels, z, axis, num_classes, ignore_index)
    m = _checks.check_real(fn, "cost_matrix", cost_matrix)
    if m.shape != (num_classes, num_classes):
        raise ValueError(
            f"jaxloss.{fn}: `cost_matrix` must have shape (C, C) = ({num_classes}, {num_classes});"
            f" got {tuple(m.shape)}."
        )
    dtype = _checks.compute_dtype(z)
    z = jnp.moveaxis(z.astype(dtype), axis, -1)
    lse, _ = logsumexp(z, axis=-1)
    probs = jnp.exp(z - lse[..., None])
    in_range = (y >= 0) & (y < num_classes)
    rows = m.astype(dtype)[jnp.where(in_range, y, 0)]  # [..., C]: the cost row of each label
    loss = jnp.sum(probs * rows, axis=-1)
    return _finish_integer_loss(loss, y, num_classes, ignore_index, in_range)
