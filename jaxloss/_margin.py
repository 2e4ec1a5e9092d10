"""Margin and ranking losses: hinge, squared hinge, multi-class hinge, margin ranking, and the
pair and triplet losses on embeddings (cosine embedding, triplet margin, contrastive).

Conventions shared by every loss here.

Two kinds of input, one convention each:

* **Scores** (``hinge_loss``, ``squared_hinge_loss``, ``margin_ranking_loss``): elementwise, one
  value per score. Sign targets are in {-1, +1}. ``multiclass_hinge_loss`` takes integer labels
  with the conventions of :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
* **Pairs and triplets of embeddings** (``cosine_embedding_loss``, ``triplet_margin_loss``,
  ``contrastive_loss``): the feature axis is the last axis and is reduced; one value per
  pair/triplet, of the shape ``embeddings.shape[:-1]``.

Targets of the binary kinds are validated: concrete (eager) targets outside the documented set
raise a ValueError; under ``jit``/``vmap`` such targets give a NaN value and gradient (loud
rather than silently wrong, as for out-of-range integer labels).

NaN. A NaN in an example's inputs gives NaN for that example, value and gradient, and leaves the
other examples bit-for-bit unchanged.

Kinks. Every piecewise-linear margin term ``max(0, z)`` is treated as *active* at ``z = 0``: the
subgradient there is the slope of the linear piece (torch's ``clamp_min`` convention), so that a
tie at margin 0 (equal scores at initialisation, say) still gives a training signal.

Norms. Distances are exact p-norms of the difference and cosine similarities divide by
``max(‖x‖₂, eps)`` like ``torch.nn.functional.normalize`` (``_core.embeddings`` states both
conventions: exact for every finite input, gradient 0 at coincident points, a zero vector
normalises to 0 with the finite Jacobian ``I / eps``).

float16/bfloat16 inputs are computed in float32 and the result is float32; float64 stays float64.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ._core import checks as _checks
from ._core.ad import all_zero, is_zero
from ._core.checks import Interval
from ._core.embeddings import (
    check_embeddings,
    check_per_row,
    distance,
    l2_parts,
    nan_grad,
    normalize,
    on_common_scale,
    unit_direction,
)
from ._core.labels import binary_targets, finish_integer_loss, prepare_integer
from ._core.numerics import nan_gradient, nan_of
from ._core.registry import register

__all__ = [
    "contrastive_loss",
    "cosine_embedding_loss",
    "hinge_loss",
    "margin_ranking_loss",
    "multiclass_hinge_loss",
    "squared_hinge_loss",
    "triplet_margin_loss",
]

#: The cosine embedding loss's margin: a cosine.
_COSINE_MARGIN = Interval(-1.0, 1.0)
#: The order of a p-norm.
_NORM_ORDER = Interval(1.0)


# ----------------------------------------------------------------------------------------------
# Helpers


def _nan_step(z: jax.Array) -> jax.Array:
    """The derivative of max(0, z) with the kink active: 1 where z >= 0, 0 where z < 0, and NaN
    where z is NaN (so that a NaN example's gradient is NaN, not 0)."""
    return jnp.where(z < 0, 0, jnp.where(z >= 0, 1, jnp.nan)).astype(z.dtype)


@jax.custom_jvp
def _active(z: jax.Array) -> jax.Array:
    """max(0, z) with derivative 1 at z = 0 (the active side of the kink); a NaN z gives a NaN
    value and a NaN derivative. (The select keys on z < 0, which NaN fails. On XLA:CPU this
    form fuses as well as the plain where(z >= 0, z, 0): same temporaries and speed in
    value-and-grad, where ``jnp.maximum`` ran 2-3x slower inside the reduction.)"""
    return jnp.where(z < 0, 0, z)


@_active.defjvp
def _active_jvp(primals, tangents):
    (z,), (dz,) = primals, tangents
    return _active(z), dz * _nan_step(z)


#: From this many elements on, :func:`hinge_loss` uses select-free forms (see
#: :func:`_active_large`).
_SELECT_FREE_MIN = 2**22


@jax.custom_jvp
def _active_large(z: jax.Array) -> jax.Array:
    """:func:`_active` (same value and derivative) without a select when ``z`` is large.

    XLA:CPU fuses a select into a following reduction only through a full-size temporary; at
    2^24 float32 elements its 64 MiB allocation costs more per call (page faults of a fresh
    buffer) than the few extra operations of max(z, 0) + nan_of(z), which fuse into the
    reduction (measured in bench/: ``jaxloss.mean(hinge_loss(x, y))``). Below 2^22 elements the
    temporary is cheap and the select is faster. nan_of keeps a NaN z (a fused max drops it).
    """
    if z.size < _SELECT_FREE_MIN:
        return _active(z)
    return jnp.maximum(z, 0) + nan_of(z)


@_active_large.defjvp
def _active_large_jvp(primals, tangents):
    (z,), (dz,) = primals, tangents
    # The select form here: value-and-grad writes a full-size gradient anyway, and the value
    # then shares the gradient's select instead of adding operations (measured in bench/).
    return _active(z), dz * _nan_step(z)


def _nan_unless(valid: jax.Array) -> jax.Array:
    """0 where ``valid``, NaN elsewhere: added (not selected) to a loss or its argument, so that
    an invalid target's NaN also reaches the gradient (a select routes it a zero)."""
    return jnp.where(valid, 0, jnp.nan)


def _finish(loss: jax.Array, valid: jax.Array | None) -> jax.Array:
    """The loss with NaN where a traced target is invalid, and a NaN gradient wherever the
    value is NaN (the NaN is added, not selected, so that the gradient reaches the loss)."""
    return nan_grad(loss if valid is None else loss + _nan_unless(valid))


# ----------------------------------------------------------------------------------------------
# Scores


def _sign_inputs(
    fn: str, predictions: ArrayLike, targets: ArrayLike, margin: ArrayLike
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array | None]:
    """Checked scores, ±1 targets and margin in the compute dtype, and the mask of valid
    targets when they are traced (None when they were checked)."""
    _checks.require(fn, "margin", margin, _checks.NONNEGATIVE)
    x = _checks.check_floating(fn, "predictions", predictions)
    t = _checks.check_real(fn, "targets", targets)
    _checks.check_same_shape(fn, "predictions", x, "targets", t)
    dtype = _checks.compute_dtype(x, t)
    y, valid = binary_targets(fn, "targets", t, (-1, 1), dtype)
    return x.astype(dtype), y, jnp.asarray(margin, dtype), valid


def _sign_scores(fn: str, predictions: ArrayLike, targets: ArrayLike, margin: ArrayLike):
    """m - y·x, NaN where a traced target is not ±1."""
    x, y, m, valid = _sign_inputs(fn, predictions, targets, margin)
    z = m - y * x
    return z if valid is None else z + _nan_unless(valid)


@register(plot="signed")
def hinge_loss(predictions: ArrayLike, targets: ArrayLike, *, margin: ArrayLike = 1.0) -> jax.Array:
    """Hinge loss for binary classification with {-1, +1} targets, elementwise.

    Math (x = score, y = target in {-1, +1}, m = margin):  l = max(0, m - y·x).

    Gradient: dl/dx = -y where y·x <= m (the kink y·x = m counts as active), else 0.
    dl/dm = 1 where y·x <= m, else 0.

    Args:
      predictions: floating array of scores, any shape.
      targets: real array of the same shape, values -1 or +1 (not {0, 1}: a 0 target would give
        the constant loss m with no gradient; such targets raise a ValueError, or give NaN under
        ``jit``). Convert {0, 1} labels with ``2 * labels - 1``.
      margin: m >= 0 (may be traced).

    Returns:
      Array of the shape of ``predictions``. Same as ``optax.hinge_loss`` (m = 1) and
      ``keras.losses.Hinge`` per element (Keras averages the last axis and converts {0, 1}
      labels silently; jaxloss rejects them).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.hinge_loss(jnp.array([2.0, 0.5, -1.0]), jnp.array([1.0, 1.0, 1.0])).tolist()
      [0.0, 0.5, 2.0]

    Reference: Cortes & Vapnik, "Support-Vector Networks", Machine Learning 1995.
    """
    x, y, m, valid = _sign_inputs("hinge_loss", predictions, targets, margin)
    if valid is None:
        return _active_large(m - y * x)
    return _hinge_traced(x, y, m)


@jax.custom_jvp
def _hinge_traced(x: jax.Array, y: jax.Array, m: jax.Array) -> jax.Array:
    """max(0, m - y·x) for traced targets: NaN where y is not ±1 or the value is NaN.

    Its own JVP so that the gradient recomputes what it needs from (x, y, m) instead of sharing
    the value's intermediates, which XLA:CPU would materialise as full-size temporaries for the
    value's reduction and the gradient to read (measured in bench/: the target check and the
    selected value each written to memory in value-and-grad).
    """
    z = m - y * x
    if z.size < _SELECT_FREE_MIN:
        return _active(z + _nan_unless((y == 1) | (y == -1)))
    # Select-free (see _active_large), the NaN carriers of z and of the target check in one
    # product: 0·sign(z) is ±0, or NaN for a NaN z; h = ((|y| - 1)·2^(maxexp - 1))² is 0 where
    # y = ±1 and inf for any other y (|y| - 1 is exact, 0 or at least eps/2 in magnitude, so the
    # square overflows), NaN for a NaN y; their product is ±0 or NaN (0·inf). One operation
    # fewer per element, and a multiply for a square root, than adding sqrt(-|(|y| - 1)|) to z
    # and then 0·sign of the sum (1.8× optax's forward at 2^24 elements instead of 2.1×).
    big = 2.0 ** (jnp.finfo(z.dtype).maxexp - 1)
    h = (jnp.abs(y) - 1) * big
    return jnp.maximum(z, 0) + (0 * jnp.sign(z)) * (h * h)


def _hinge_traced_jvp(primals, tangents):
    """d max(0, m - y·x) = s·(dm - y·dx - x·dy), s = 1 where y·x <= m (the kink active), 0 where
    y·x > m, NaN where y·x - m is NaN or y is not ±1; built as x·y - m, not the value's m - y·x,
    so that XLA shares nothing between the two."""
    x, y, m = primals
    dx, dy, dm = tangents
    value = _hinge_traced(x, y, m)
    if all_zero(dx, dy, dm):
        return value, jnp.zeros_like(value)
    dt = value.dtype
    # Behind a barrier, the inputs and constants are not merged with the value's (XLA:CPU
    # materialises a broadcast constant that two fusions share, full size).
    xb, yb, mb, zero, one, nan = jax.lax.optimization_barrier(
        (x, y, m, jnp.zeros((), dt), jnp.ones((), dt), jnp.full((), jnp.nan, dt))
    )
    w = xb * yb - mb
    s = jnp.where(w > zero, zero, jnp.where(w <= zero, one, nan))
    s = jnp.where((yb == one) | (yb == -one), s, nan)
    out = jnp.zeros_like(value)
    if not is_zero(dx):
        out = out - (s * yb) * dx
    if not is_zero(dy):
        out = out - (s * xb) * dy
    if not is_zero(dm):
        out = out + s * dm
    return value, out


_hinge_traced.defjvp(_hinge_traced_jvp, symbolic_zeros=True)


@register(plot="signed")
def squared_hinge_loss(
    predictions: ArrayLike, targets: ArrayLike, *, margin: ArrayLike = 1.0
) -> jax.Array:
    """Squared hinge loss with {-1, +1} targets, elementwise (differentiable everywhere).

    Math (x = score, y in {-1, +1}, m = margin):  l = max(0, m - y·x)².

    Gradient: dl/dx = -2y·max(0, m - y·x) (continuous; 0 at the kink y·x = m).
    dl/dm = 2·max(0, m - y·x).

    Args:
      predictions: floating array of scores, any shape.
      targets: real array of the same shape, values -1 or +1 (validated as in :func:`hinge_loss`).
      margin: m >= 0 (may be traced).

    Returns:
      Array of the shape of ``predictions``. Same as ``keras.losses.SquaredHinge`` per element
      (Keras averages the last axis and converts {0, 1} labels silently).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.squared_hinge_loss(jnp.array([2.0, 0.5, -1.0]), jnp.ones(3)).tolist()
      [0.0, 0.25, 4.0]

    Reference: Rennie & Srebro, "Loss Functions for Preference Levels", IJCAI 2005 workshop;
    Lee & Lin, "A Study on L2-Loss (Squared Hinge-Loss) Multiclass SVM", Neural Comput. 2013.
    """
    z = _sign_scores("squared_hinge_loss", predictions, targets, margin)
    h = _active(z)  # the derivative 2·max(0, z) is 0 at the kink whichever side
    return h * h


_KINDS = ("crammer_singer", "weston_watkins")


@register(plot="softmax")
def multiclass_hinge_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    margin: ArrayLike = 1.0,
    kind: str = "crammer_singer",
    axis: int = -1,
    ignore_index: int | None = None,
) -> jax.Array:
    """Multi-class hinge loss with integer labels, one value per example.

    Math (z = scores, y = label, m = margin, v_c = m + z_c - z_y for c ≠ y):
      kind="crammer_singer" (default; the largest violation):
        l = max(0, max_{c≠y} v_c) = max_c (z_c + m·[c ≠ y]) - z_y;
      kind="weston_watkins" (every violation):
        l = sum_{c≠y} max(0, v_c).

    Gradient: Crammer–Singer: dl/dz = e_{c*} - e_y where c* = argmax_{c≠y} v_c and v_{c*} >= 0
    (active at the kink), else 0; classes tied for the largest score z_c, c ≠ y, share the
    gradient equally (a valid subgradient; ties of the scores, not of the rounded or infinite
    violations). Weston–Watkins: dl/dz_c = [v_c >= 0] for c ≠ y and
    dl/dz_y = -#{c ≠ y : v_c >= 0}. dl/dm = [v_{c*} >= 0] (CS), #{c ≠ y : v_c >= 0} (WW).
    Ignored examples: value 0, gradient 0
    (a NaN in an ignored example's logits still makes its gradient row NaN). Out-of-range
    labels raise a ValueError when concrete and give NaN under ``jit``, value and gradient.

    Args:
      logits: floating array [..., C, ...] of scores with the class axis ``axis``.
      labels: integer array, the logits' shape without ``axis``.
      margin: m >= 0 (may be traced).
      kind: ``"crammer_singer"`` or ``"weston_watkins"``.
      axis: the class axis.
      ignore_index: optional label value whose examples give 0.

    Returns:
      Array of the shape of ``labels``. ``kind="crammer_singer"`` with m = 1 equals
      ``optax.multiclass_hinge_loss``, and Keras's ``CategoricalHinge`` (one-hot targets) where
      max_{c≠y} z_c >= 0 (Keras's max runs over (1 - onehot)·z, which includes a 0 for the true
      class); ``kind="weston_watkins"`` divided by C equals
      ``torch.nn.MultiMarginLoss(p=1, margin=m, reduction='none')``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> z = jnp.array([[2.0, 1.5, 0.0]])
      >>> jaxloss.multiclass_hinge_loss(z, jnp.array([0])).tolist()
      [0.5]
      >>> jaxloss.multiclass_hinge_loss(z, jnp.array([2]), kind="weston_watkins").tolist()
      [5.5]

    References: Crammer & Singer, "On the Algorithmic Implementation of Multiclass Kernel-based
    Vector Machines", JMLR 2001; Weston & Watkins, "Support Vector Machines for Multi-Class
    Pattern Recognition", ESANN 1999.
    """
    fn = "multiclass_hinge_loss"
    _checks.require(fn, "margin", margin, _checks.NONNEGATIVE)
    if kind not in _KINDS:
        raise ValueError(f"jaxloss.{fn}: `kind` must be one of {_KINDS}; got {kind!r}.")
    z, y, axis, num_classes, _, dtype = prepare_integer(
        fn, logits, labels, axis, ignore_index, None
    )
    # The label score by a gather (labels clipped; finish_integer_loss makes out-of-range NaN):
    # a select summed over the class axis costs XLA:CPU a full-size temporary (bench/).
    y_safe = jnp.clip(y, 0, num_classes - 1)
    m = jnp.asarray(margin, dtype)
    if kind == "crammer_singer":
        # Closed-form JVP; a NaN score makes its example's whole gradient row NaN there.
        loss = _crammer_singer(z, y_safe, m, axis)
    else:
        is_label = _is_label(z, y_safe, axis)
        v = m + z - jnp.take_along_axis(z, jnp.expand_dims(y_safe, axis), axis)
        # A NaN score makes its example's value NaN (the sum keeps it); nan_gradient makes the
        # whole example's gradient NaN too (the inactive classes would route a zero to some).
        loss = nan_gradient(jnp.sum(jnp.where(is_label, 0, _active(v)), axis=axis), z, axis)
    return finish_integer_loss(loss, y, num_classes, ignore_index, True)


def _is_label(z: jax.Array, y: jax.Array, axis: int) -> jax.Array:
    """The one-hot mask of the labels ``y`` along the class axis of ``z``."""
    return jax.lax.broadcasted_iota(y.dtype, z.shape, axis) == jnp.expand_dims(y, axis)


def _largest_other(z: jax.Array, y: jax.Array, axis: int) -> tuple[jax.Array, jax.Array]:
    """(max_{c≠y} z_c, the label mask), the max kept along ``axis``; -inf for a single class."""
    is_label = _is_label(z, y, axis)
    return jnp.max(jnp.where(is_label, -jnp.inf, z), axis=axis, keepdims=True), is_label


def _largest_violation(
    z: jax.Array, y: jax.Array, m: jax.Array, axis: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(max_{c≠y}(m + z_c) - z_y per example, max_{c≠y} z_c kept along ``axis``, the label
    mask). A single class has no violation: -inf whatever z_y and m (the difference would be
    -inf - (-inf) = NaN at z_y = -inf, and -inf + inf at m = inf)."""
    other, is_label = _largest_other(z, y, axis)
    if z.shape[axis] == 1:
        return jnp.squeeze(other, axis), other, is_label
    z_y = jnp.take_along_axis(z, jnp.expand_dims(y, axis), axis)
    return jnp.squeeze((m + other) - z_y, axis), other, is_label


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def _crammer_singer(z: jax.Array, y: jax.Array, m: jax.Array, axis: int) -> jax.Array:
    """max(0, max_{c≠y}(m + z_c) - z_y) per example (labels ``y`` in range).

    (m + max z_c) - z_y is max_c((m + z_c) - z_y) bit for bit (rounding is monotone), with one
    [C]-wide max instead of a [C]-wide difference. A fused max-reduction may drop a NaN
    (``_core.numerics.nan_of``): the row's NaN is added back through 0·sum(sign(z)), a sum of at
    most C signs, finite unless a NaN is in it. A single class gives -inf, hence 0 (a NaN score
    still gives NaN).
    """
    worst, _, _ = _largest_violation(z, y, m, axis)
    return _active(worst + nan_of(jnp.sum(jnp.sign(z), axis=axis)))


def _crammer_singer_jvp(axis, primals, tangents):
    """dl = s·(Σ_{c tied} dz_c / k - dz_y + dm): s = 1 where the largest violation is >= 0
    (active at the kink), 0 below, NaN where the value is NaN; the k classes c ≠ y tied at the
    largest score share its derivative. Recomputed from the inputs behind a barrier (not shared
    with the value: XLA:CPU would materialise the shared [N, C] intermediates)."""
    z, y, m = primals
    dz, _, dm = tangents
    value = _crammer_singer(z, y, m, axis)
    if all_zero(dz, dm):
        return value, jnp.zeros_like(value)
    dt = value.dtype
    zb, yb, mb, zero, one = jax.lax.optimization_barrier(
        (z, y, m, jnp.zeros((), dt), jnp.ones((), dt))
    )
    worst, other, is_label = _largest_violation(zb, yb, mb, axis)
    s = jnp.where(jnp.isnan(value), jnp.nan, jnp.where(worst < zero, zero, one))
    out = jnp.zeros_like(value)
    if not is_zero(dz):
        tie = (zb == other) & ~is_label
        # Counted in int32 whatever the x64 setting (an int64 count, or one in the float
        # dtype, is materialised [N, C]-wide on XLA:CPU at some shapes).
        k = jnp.sum(tie, axis=axis, keepdims=True, dtype=jnp.int32)
        k = jnp.maximum(k.astype(dt), one)
        share = jnp.where(tie, one / k, jnp.where(is_label, -one, zero))
        out = out + s * jnp.sum(share * dz, axis=axis)
    if not is_zero(dm):
        out = out + s * dm
    return value, out


_crammer_singer.defjvp(_crammer_singer_jvp, symbolic_zeros=True)


@register(plot="ranking")
def margin_ranking_loss(
    scores_1: ArrayLike, scores_2: ArrayLike, targets: ArrayLike, *, margin: ArrayLike = 0.0
) -> jax.Array:
    """Pairwise margin ranking loss, elementwise: which of two scores should be larger.

    Math (x1, x2 = scores, y = +1 if x1 should rank higher, -1 if x2 should, m = margin):
      l = max(0, m - y·(x1 - x2)).
    Equal to :func:`hinge_loss` on the score difference: ``hinge_loss(x1 - x2, y, margin=m)``.

    Gradient: dl/dx1 = -y, dl/dx2 = +y where y·(x1 - x2) <= m (active at the kink, so tied
    scores with the default m = 0 still get a gradient, as in torch), else 0.
    dl/dm = 1 where active, else 0.

    Args:
      scores_1: floating array, any shape (data first: the two score arrays, then the targets,
        torch's ``(input1, input2, target)`` order).
      scores_2: floating array of the same shape.
      targets: real array of the same shape, values -1 or +1 (validated as in :func:`hinge_loss`).
      margin: m >= 0 (may be traced).

    Returns:
      Array of the shape of ``scores_1``. Same as
      ``torch.nn.MarginRankingLoss(margin=m, reduction='none')``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.margin_ranking_loss(jnp.array([3.0, 1.0]), jnp.array([1.0, 1.5]),
      ...                        jnp.array([1.0, 1.0]), margin=0.5).tolist()
      [0.0, 1.0]

    Reference: Herbrich, Graepel & Obermayer, "Large Margin Rank Boundaries for Ordinal
    Regression", Advances in Large Margin Classifiers, MIT Press 2000.
    """
    fn = "margin_ranking_loss"
    _checks.require(fn, "margin", margin, _checks.NONNEGATIVE)
    x1 = _checks.check_floating(fn, "scores_1", scores_1)
    x2 = _checks.check_floating(fn, "scores_2", scores_2)
    t = _checks.check_real(fn, "targets", targets)
    _checks.check_same_shape(fn, "scores_1", x1, "scores_2", x2)
    _checks.check_same_shape(fn, "scores_1", x1, "targets", t)
    dtype = _checks.compute_dtype(x1, x2, t)
    y, valid = binary_targets(fn, "targets", t, (-1, 1), dtype)
    z = jnp.asarray(margin, dtype) - y * (x1.astype(dtype) - x2.astype(dtype))
    return _active(z if valid is None else z + _nan_unless(valid))


# ----------------------------------------------------------------------------------------------
# Pairs and triplets of embeddings


def _pair(fn: str, e1: Any, e2: Any, names: tuple[str, str] = ("embeddings_1", "embeddings_2")):
    a = check_embeddings(fn, names[0], e1, 1)
    b = _checks.check_floating(fn, names[1], e2)
    _checks.check_same_shape(fn, names[0], a, names[1], b)
    return a, b


@register(plot="cosine")
def cosine_embedding_loss(
    embeddings_1: ArrayLike,
    embeddings_2: ArrayLike,
    targets: ArrayLike,
    *,
    margin: ArrayLike = 0.0,
    eps: ArrayLike = 1e-8,
) -> jax.Array:
    """Cosine embedding loss for pairs marked similar (+1) or dissimilar (-1), one value per pair.

    Math (c = cos(x1, x2) = u1·u2 with u = x / max(‖x‖₂, eps), m = margin):
      l = 1 - c            if y = +1,
      l = max(0, c - m)    if y = -1.
    A zero vector has u = 0, so c = 0: l = 1 (similar) or max(0, -m) (dissimilar).

    Gradient: dc/dx1 = (u2 - [‖x1‖ > eps]·c·u1) / max(‖x1‖, eps) (symmetric for x2); finite at
    zero vectors (magnitude up to 1/eps: the cosine varies at rate 1/‖x‖ near 0 in any case).
    dl/dx = -dc/dx (y = +1); [c >= m]·dc/dx (y = -1; active at the kink). dl/dm = -[c >= m]
    (y = -1).

    Args:
      embeddings_1: floating array [..., D], feature axis last.
      embeddings_2: floating array of the same shape.
      targets: real array [...] (the embeddings' shape without D), values -1 or +1 (validated as
        in :func:`hinge_loss`).
      margin: m in [-1, 1] (torch suggests [0, 0.5]; may be traced).
      eps: floor of the norms, > 0 (``torch.nn.functional.cosine_similarity``'s default).

    Returns:
      Array of the embeddings' shape without the last axis. Same as
      ``torch.nn.CosineEmbeddingLoss(margin=m, reduction='none')`` away from zero vectors (torch
      adds 1e-12 to the squared norms instead of flooring them). ``1 - optax.cosine_similarity``
      for similar pairs, which has NaN gradients at zero vectors; jaxloss's are finite.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> a = jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
      >>> b = jnp.array([[0.0, 2.0], [1.0, 1.0], [1.0, 0.0]])
      >>> v = jaxloss.cosine_embedding_loss(a, b, jnp.array([1.0, -1.0, 1.0]), margin=0.5)
      >>> [round(x, 4) for x in v.tolist()]
      [1.0, 0.2071, 1.0]
    """
    fn = "cosine_embedding_loss"
    _checks.require(fn, "margin", margin, _COSINE_MARGIN)
    _checks.require(fn, "eps", eps, _checks.POSITIVE)
    x1, x2 = _pair(fn, embeddings_1, embeddings_2)
    t = _checks.check_real(fn, "targets", targets)
    check_per_row(fn, "targets", t, "embeddings_1", x1)
    dtype = _checks.compute_dtype(x1, x2, t)
    y, valid = binary_targets(fn, "targets", t, (-1, 1), dtype)
    e = jnp.asarray(eps, dtype)
    c = jnp.sum(normalize(x1.astype(dtype), e) * normalize(x2.astype(dtype), e), axis=-1)
    loss = jnp.where(y > 0, 1 - c, _active(c - jnp.asarray(margin, dtype)))
    return _finish(loss, valid)


@register(plot="triplet")
def triplet_margin_loss(
    anchors: ArrayLike,
    positives: ArrayLike,
    negatives: ArrayLike,
    *,
    margin: ArrayLike = 1.0,
    p: Any = 2.0,
    swap: bool = False,
) -> jax.Array:
    """Triplet margin loss with true p-norm distances, one value per triplet.

    Math (a, p, n = anchor, positive, negative; d(u, v) = ‖u - v‖_p = (sum_i |u_i - v_i|^p)^(1/p)):
      l = max(0, d(a, p) - d(a, n) + margin);
    with ``swap=True`` d(a, n) is replaced by min(d(a, n), d(p, n)) (the harder negative; the
    anchor's distance is taken at a tie).

    Gradient: with g(x) = ∇‖x‖_p = sign(x)·|x|^(p-1) / ‖x‖_p^(p-1) (g = sign(x) for p = 1, with
    sign(0) = 0; g(0) = 0 at coincident points, a valid subgradient) and s = [l's argument >= 0]
    (active at the kink): dl/da = s·(g(a - p) - g(a - n)), dl/dp = -s·g(a - p),
    dl/dn = s·g(a - n) (without swap; with swap the chosen negative distance is differentiated).
    dl/dmargin = s. The distances are exact (no eps is added; see the module's notes on norms):
    large inputs or large p do not overflow, and the difference of two distances beyond float's
    range is still computed (on their common power-of-two scale).

    Args:
      anchors: floating array [..., D], feature axis last.
      positives: floating array of the same shape.
      negatives: floating array of the same shape.
      margin: >= 0 (may be traced).
      p: norm degree >= 1 (2: Euclidean, 1: Manhattan).
      swap: use the harder of the two negative distances (Balntas et al.).

    Returns:
      Array of the shape ``anchors.shape[:-1]``. Same as
      ``torch.nn.TripletMarginLoss(margin, p, swap, reduction='none')`` except that torch
      computes ‖u - v + 1e-6‖_p. ``optax.triplet_margin_loss`` drops the absolute value inside
      the norm: for p = 1 it gives 5.0 on anchor (0, 0), positive (1, -1), negative (2, 2) where
      the loss is 0, and NaN for p = 3.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> a, pos, neg = jnp.array([[0.0, 0.0]]), jnp.array([[1.0, -1.0]]), jnp.array([[2.0, 2.0]])
      >>> (jaxloss.triplet_margin_loss(a, pos, neg, p=1).tolist(),
      ...  jaxloss.triplet_margin_loss(a, pos, neg, p=1, margin=3.0).tolist())
      ([0.0], [1.0])

    References: Schroff, Kalenichenko & Philbin, "FaceNet", CVPR 2015; Balntas, Riba, Ponsa &
    Mikolajczyk, "Learning local feature descriptors with triplets and shallow convolutional
    neural networks", BMVC 2016 (swap).
    """
    fn = "triplet_margin_loss"
    _checks.require(fn, "margin", margin, _checks.NONNEGATIVE)
    if not isinstance(swap, (bool, np.bool_)):
        raise ValueError(f"jaxloss.{fn}: `swap` must be a Python bool; got {swap!r}.")
    _checks.require(fn, "p", p, _NORM_ORDER)
    pv = _checks.concrete_float(p)
    a, pos = _pair(fn, anchors, positives, ("anchors", "positives"))
    neg = _checks.check_floating(fn, "negatives", negatives)
    _checks.check_same_shape(fn, "anchors", a, "negatives", neg)
    dtype = _checks.compute_dtype(a, pos, neg)
    a, pos, neg = a.astype(dtype), pos.astype(dtype), neg.astype(dtype)
    euclidean, p_arr = pv == 2.0, jnp.asarray(p, dtype)
    # Distances as (‖x·s‖, s) with s a power of two per row, compared and subtracted on their
    # common scale: exact, and finite where both distances are beyond range (s = 1, and the
    # plain d_ap - d_an, on the one-pass path).
    n_ap, s_ap, t_ap = distance(a, pos, p_arr, euclidean)
    n_an, s_an, t_an = distance(a, neg, p_arr, euclidean)
    if swap:
        n_pn, s_pn, t_pn = distance(pos, neg, p_arr, euclidean)
        v_an, v_pn, _ = on_common_scale(n_an, s_an, n_pn, s_pn)
        use_an = v_an <= v_pn
        n_an, s_an = jnp.where(use_an, n_an, n_pn), jnp.where(use_an, s_an, s_pn)
        t_an = jnp.where(use_an, t_an, t_pn)
    v_ap, v_an, s_min = on_common_scale(n_ap, s_ap, n_an, s_an)
    # The value from the scaled norms; the gradient from the distances' own tangents (t = 0).
    diff = jax.lax.stop_gradient((v_ap - v_an) / s_min) + (t_ap - t_an)
    return _active(diff + jnp.asarray(margin, dtype))


@jax.custom_jvp
def _contrastive_terms(x1, x2, y, margin):
    return _contrastive_parts(x1, x2, y, margin)[0]


def _contrastive_parts(x1, x2, y, margin):
    """½·y·d² + ½·(1 - y)·max(0, m - d)² with d = ‖x1 - x2‖₂ exact (:func:`l2_parts`) and the
    similar term 0 for a dissimilar pair even where d² overflows (0·inf)."""
    d, s, n_s = l2_parts(x1, x2)
    gap = margin - d
    h = jnp.maximum(gap, 0) + nan_of(gap)  # a fused max can drop a NaN (see nan_of)
    half_square = 0.5 * d * d
    loss = jnp.where(y == 0, 0, y * half_square) + (1 - y) * (0.5 * h * h)
    return loss, s, n_s, h, half_square


def _contrastive_terms_jvp(primals, tangents):
    """dl/dx1 = y·(x1 - x2) - (1 - y)·h·u = -dl/dx2 (u = (x1 - x2)/d, 0 at d = 0; the first
    term 0 for y = 0 even where x1 - x2 overflows); dl/dy = ½d² - ½h²; dl/dm = (1 - y)·h."""
    x1, x2, y, margin = primals
    dx1, dx2, dy, dm = tangents
    loss, s, n_s, h, half_square = _contrastive_parts(x1, x2, y, margin)
    out = jnp.zeros_like(loss)
    if not is_zero(dx1) or not is_zero(dx2):
        dx = (jnp.zeros_like(x1) if is_zero(dx1) else dx1) - (0 if is_zero(dx2) else dx2)
        u = unit_direction(x1, x2, s, n_s)
        g = jnp.where((y == 0)[..., None], 0, y[..., None] * (x1 - x2)) - (
            ((1 - y) * h)[..., None] * u
        )
        out = out + jnp.sum(g * dx, axis=-1)
    if not is_zero(dy):
        out = out + (half_square - 0.5 * h * h) * dy
    if not is_zero(dm):
        out = out + (1 - y) * h * dm
    return loss, out


_contrastive_terms.defjvp(_contrastive_terms_jvp, symbolic_zeros=True)


@register(plot="contrastive_loss")
def contrastive_loss(
    embeddings_1: ArrayLike, embeddings_2: ArrayLike, targets: ArrayLike, *, margin: ArrayLike = 1.0
) -> jax.Array:
    """Contrastive loss of Hadsell et al. for similar (1) / dissimilar (0) pairs, one per pair.

    Math (d = ‖x1 - x2‖₂, y = 1 for a similar pair, 0 for a dissimilar one, m = margin):
      l = ½·y·d² + ½·(1 - y)·max(0, m - d)².
    (The paper writes Y = 0 for similar pairs; here 1 means similar, as in TF Addons.)

    Gradient: dl/dx1 = y·(x1 - x2) - (1 - y)·max(0, m - d)·(x1 - x2)/d, dl/dx2 = -dl/dx1; at
    coincident dissimilar points (d = 0) the direction (x1 - x2)/d is undefined and taken as 0.
    dl/dm = (1 - y)·max(0, m - d). Continuous everywhere (the hinge is squared).

    Args:
      embeddings_1: floating array [..., D], feature axis last.
      embeddings_2: floating array of the same shape.
      targets: real array [...] (the embeddings' shape without D), values 0 or 1 (bool works);
        other values raise a ValueError, or give NaN under ``jit``.
      margin: m > 0 (may be traced).

    Returns:
      Array of the embeddings' shape without the last axis. TF Addons'
      ``tfa.losses.contrastive_loss`` takes distances and has no ½: it is 2·l.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> a, b = jnp.array([[0.0, 0.0], [0.0, 0.0]]), jnp.array([[3.0, 4.0], [0.3, 0.4]])
      >>> [round(x, 4) for x in jaxloss.contrastive_loss(a, b, jnp.array([1, 0])).tolist()]
      [12.5, 0.125]

    Reference: Hadsell, Chopra & LeCun, "Dimensionality Reduction by Learning an Invariant
    Mapping", CVPR 2006.
    """
    fn = "contrastive_loss"
    _checks.require(fn, "margin", margin, _checks.POSITIVE)
    x1, x2 = _pair(fn, embeddings_1, embeddings_2)
    t = _checks.check_real(fn, "targets", targets)
    check_per_row(fn, "targets", t, "embeddings_1", x1)
    dtype = _checks.compute_dtype(x1, x2, t)
    y, valid = binary_targets(fn, "targets", t, (0, 1), dtype)
    loss = _contrastive_terms(x1.astype(dtype), x2.astype(dtype), y, jnp.asarray(margin, dtype))
    return _finish(loss, valid)
