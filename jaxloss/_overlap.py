"""Overlap (segmentation) losses: soft Dice, Jaccard, Tversky, focal Tversky, generalized Dice.

Conventions shared by every loss here.

Inputs. ``probabilities`` and ``targets`` have the same shape ``[..., *spatial, C]``: any leading
batch axes, then ``num_spatial_dims`` spatial axes, then the class axis, always last (move a
channel-first class axis with ``jnp.moveaxis(x, 1, -1)``). ``targets`` are one-hot or soft (values
in [0, 1]; bool and int are accepted). The losses take probabilities, not logits: apply
``jax.nn.softmax(logits)`` (mutually exclusive classes) or ``jax.nn.sigmoid(logits)`` (binary or
multi-label, one channel per label) yourself. There is no ``apply_softmax``/``from_logits`` switch
and no activation chosen from the shape (optax picks sigmoid when C = 1). Concrete (eager) inputs
are range-checked: a value outside [0, 1] raises a ValueError that names the activation to apply
(logits passed by mistake would give a loss outside [0, 1]); under ``jit`` the inputs are traced
and used as given (optax's ``jnp.allclose`` check fails there instead). NaN is not refused: it
gives NaN for the example (every value and gradient it feeds), never a finite number.

vmap transparency. The reduced axes are counted from the end (``num_spatial_dims`` spatial axes
before the class axis), never "all axes but the first", so ``jax.vmap`` over a leading batch axis
gives exactly the batched call (optax's default ``axis`` assumes a batch axis: ``jax.vmap`` of its
``dice_loss`` on ``[2, 4, 5, 3]`` returns ``[2, 4]``). ``num_spatial_dims`` is required: a default
of 2 would silently give one Dice per slice of a 3-D volume. Per-image Dice is what you get; for a
batch ("global") Dice, fold the batch into the spatial axes first, e.g. ``x.reshape(-1, C)`` with
``num_spatial_dims=1``.

Counts. Per class c, summing over the spatial axes (p = probabilities, t = targets):
  TP_c = sum p t,  FP_c = sum p (1 - t),  FN_c = sum (1 - p) t,  P_c = TP + FP,  T_c = TP + FN.
FP and FN are summed directly, never formed as P - TP (which cancels where p ≈ t).

Scores. One smoothing convention for the whole family, the Tversky index's:
  S = (TP + s) / (TP + α FP + β FN + s)
with α weighting false positives and β false negatives (optax and keras order). Dice is α = β = ½:
  D = (2 TP + 2 s) / (P + T + 2 s)   (exactly ``optax.losses.dice_loss(apply_softmax=False)``;
smp/MONAI write (2 TP + s') / (P + T + s'), which is ours with s = s'/2), and Jaccard (IoU) is
α = β = 1: J = (TP + s) / (P + T - TP + s). So ``tversky_loss(alpha=0.5, beta=0.5) == dice_loss``
and ``tversky_loss(alpha=1, beta=1) == jaccard_loss`` for every ``smooth``; at s = 0,
D = 2J / (1 + J). With p, t in [0, 1] and s >= 0 every score lies in [0, 1], so every loss does.
The loss is formed as 1 - S = (α FP + β FN) / (TP + α FP + β FN + s), a ratio of non-negative
sums: 1 - S near a perfect prediction keeps its relative accuracy (1 - S computed from S rounds
to a multiple of float32's 6e-8), which the focal Tversky power (1 - S)^γ needs.

Smoothing. ``smooth`` s >= 0 (default 1.0, as optax): an empty class (no target mass) then scores
S = s / (α P + s), 1 when nothing is predicted, and its gradient dS/dp = -α s / (α P + s)² is
bounded by α/s (1/(2s) for Dice). A tiny s (MONAI's 1e-5) makes the gradient of a false positive
on an empty class as large as α/s ~ 1e5; s = 1 is negligible against the pixel counts of a real
image. With s = 0 an empty class is
0/0; it is defined as a perfect score (loss 0) with a zero gradient (the denominator is guarded by
a double ``where`` keyed on den == 0, which NaN fails: a NaN count stays NaN), never NaN.

Averaging over classes (``average=``):
  "macro" (default): one score per class, loss = mean_c (1 - S_c); returns ``[...]``. A NaN in
           one class makes the example's value and its whole gradient NaN.
  "micro": pool TP, FP, FN over classes (and space) into one score; returns ``[...]``. Large
           classes dominate; with one-hot targets and softmax probabilities P = T = the number of
           pixels, so micro Dice equals the soft pixel accuracy.
  "none":  per-class losses 1 - S_c; returns ``[..., C]``. Weight or drop classes yourself, e.g.
           ``jnp.sum(w * v, -1) / jnp.sum(w)`` (optax's ``class_weights``) or ``v[..., 1:]``
           (optax's ``ignore_background``).

float16/bfloat16 inputs are computed in float32 and the loss comes back in float32; float64 stays
float64. Gradients come back in each input's dtype.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._core import checks as _checks
from ._core.registry import register

__all__ = [
    "dice_loss",
    "focal_tversky_loss",
    "generalized_dice_loss",
    "jaccard_loss",
    "tversky_loss",
]

_AVERAGES = ("macro", "micro", "none")


def _check_unit_interval(fn: str, arg: str, value: Any) -> None:
    """ValueError when a concrete input has a (non-NaN) value outside [0, 1]; traced: as given."""
    _checks.check_values(
        fn,
        arg,
        value,
        "in [0, 1]",
        allow_nan=True,
        hint="The loss takes probabilities, not logits: apply jax.nn.softmax to logits of "
        "exclusive classes or jax.nn.sigmoid to multi-label logits first.",
    )


def _inputs(
    fn: str, probabilities: ArrayLike, targets: ArrayLike, num_spatial_dims: Any
) -> tuple[jax.Array, jax.Array, tuple[int, ...]]:
    """Validated (p, t) in the compute dtype and the spatial axes to sum over."""
    p = _checks.check_floating(fn, "probabilities", probabilities)
    t = _checks.check_real(fn, "targets", targets)
    _checks.check_same_shape(fn, "probabilities", p, "targets", t)
    if isinstance(num_spatial_dims, bool) or not isinstance(num_spatial_dims, int):
        raise TypeError(
            f"jaxloss.{fn}: `num_spatial_dims` must be an int (the number of spatial axes before "
            f"the last, class, axis); got {num_spatial_dims!r}."
        )
    if num_spatial_dims < 0 or p.ndim < num_spatial_dims + 1:
        raise ValueError(
            f"jaxloss.{fn}: `num_spatial_dims` must be in [0, probabilities.ndim - 1] = "
            f"[0, {p.ndim - 1}] (inputs are [..., *spatial, C]); got {num_spatial_dims} for "
            f"probabilities.shape={tuple(p.shape)}."
        )
    _check_unit_interval(fn, "probabilities", probabilities)
    _check_unit_interval(fn, "targets", targets)
    dtype = _checks.compute_dtype(p, t)
    return p.astype(dtype), t.astype(dtype), tuple(range(-1 - num_spatial_dims, -1))


def _confusion(
    fn: str, probabilities: ArrayLike, targets: ArrayLike, num_spatial_dims: Any
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Validates the inputs; returns (TP, FP, FN) per class, each ``[..., C]``, summed directly."""
    p, t, axes = _inputs(fn, probabilities, targets, num_spatial_dims)
    return _tp_fp_fn(p, t, axes)


def _tp_fp_fn(
    p: jax.Array, t: jax.Array, axes: tuple[int, ...]
) -> tuple[jax.Array, jax.Array, jax.Array]:
    # Each 1 passes an optimization barrier of its own: XLA would otherwise merge the two
    # broadcasts of the constant and materialise the result as a full-size array for the two
    # YNNPACK reductions (a 4 MB temporary at 1M elements; measured with memory_analysis).
    one_a, one_b = jax.lax.optimization_barrier((jnp.ones((), p.dtype), jnp.ones((), p.dtype)))
    return (
        jnp.sum(p * t, axis=axes),
        jnp.sum(p * (one_a - t), axis=axes),
        jnp.sum((one_b - p) * t, axis=axes),
    )


def _check_average(fn: str, average: Any) -> None:
    if average not in _AVERAGES:
        raise ValueError(
            f"jaxloss.{fn}: `average` must be one of 'macro', 'micro', 'none'; got {average!r}."
        )


def _pool(average: str, *counts: jax.Array) -> tuple[jax.Array, ...]:
    """Micro averaging sums the counts over the class axis before the score is formed."""
    if average == "micro":
        return tuple(jnp.sum(c, axis=-1) for c in counts)
    return counts


@jax.custom_jvp
def _share(miss: jax.Array, hit: jax.Array) -> jax.Array:
    """miss / (miss + hit) for miss, hit >= 0 (not both 0).

    Tangent (d miss · hit/den - d hit · miss/den) / den, den = miss + hit: each share is formed
    directly. The quotient rule's (d miss · den - miss · d den) / den² cancels (1e29 - 1e29 for
    counts of 1e-29) and den² underflows in float32 (NaN).
    """
    return miss / (miss + hit)


@_share.defjvp
def _share_jvp(primals, tangents):
    (miss, hit), (dmiss, dhit) = primals, tangents
    den = miss + hit
    r = miss / den
    return r, (dmiss * (hit / den) - dhit * r) / den


def _guarded_share(miss: jax.Array, hit: jax.Array) -> jax.Array:
    """:func:`_share`, with 0/0 (an empty class at s = 0) defined as 0 with a zero gradient
    (keyed on den == 0, which NaN fails: a NaN count stays NaN)."""
    ok = miss + hit != 0
    return jnp.where(ok, _share(miss, jnp.where(ok, hit, 1)), 0)


def _one_minus_tversky(
    tp: jax.Array,
    fp: jax.Array,
    fn: jax.Array,
    alpha: ArrayLike,
    beta: ArrayLike,
    smooth: ArrayLike,
) -> jax.Array:
    """1 - TI = (α FP + β FN) / (TP + α FP + β FN + s); 0 for an empty class at s = 0."""
    dt = tp.dtype
    a, b, s = (jnp.asarray(v, dt) for v in (alpha, beta, smooth))
    return _guarded_share(a * fp + b * fn, tp + s)


def _finish(loss: jax.Array, average: str) -> jax.Array:
    if average != "macro":
        return loss
    # The classes' scores are separate, so a NaN in one class would leave the gradient w.r.t.
    # the example's other classes finite: the factor below is exactly 1, or NaN for an example
    # whose value is NaN (a per-example select, no pass over the inputs).
    total = jax.lax.stop_gradient(jnp.sum(loss, axis=-1, keepdims=True))
    return jnp.mean(loss * jnp.where(jnp.isnan(total), total, 1), axis=-1)


@register(plot="overlap")
def dice_loss(
    probabilities: ArrayLike,
    targets: ArrayLike,
    *,
    num_spatial_dims: int,
    smooth: ArrayLike = 1.0,
    average: str = "macro",
) -> jax.Array:
    """Soft Dice loss 1 - D per example, reducing the spatial axes (and classes per ``average``).

    Math (per class c, sums over the spatial axes, s = smooth; see the module notes):
      D_c = (2 TP_c + 2 s) / (P_c + T_c + 2 s),   l = 1 - D  (macro: mean_c (1 - D_c)).
    With p, t in [0, 1] and s >= 0, l is in [0, 1]; a perfect prediction (p = t) gives 0 for
    any s > 0.

    Gradient (per class; micro uses the pooled num/den, macro divides by C):
      dl/dp_c = -(2 t_c den - num) / den²,   dl/dt_c = -(2 p_c den - num) / den²,
      num = 2 TP + 2 s, den = P + T + 2 s. An empty class at s = 0 (den = 0): l = 0, gradient 0.

    Args:
      probabilities: floating array ``[..., *spatial, C]``, values in [0, 1] (apply
        ``jax.nn.softmax`` or ``jax.nn.sigmoid`` to logits first).
      targets: real array of the same shape, one-hot or soft, in [0, 1].
      num_spatial_dims: how many axes before the last (class) axis are spatial and summed over
        (2 for ``[B, H, W, C]``); counted from the end, so ``vmap`` over leading axes is exact.
      smooth: s >= 0, added to TP in the numerator and to the denominator (default 1.0).
      average: "macro" (mean of per-class losses), "micro" (pooled counts) or "none".

    Returns:
      ``[...]`` (macro, micro) or ``[..., C]`` (none). Equals
      ``optax.losses.dice_loss(p, t, apply_softmax=False, axis=<spatial axes>)`` (its default
      ``axis`` assumes a batch axis; its ``jnp.allclose`` check fails under ``jit``).
      smp/MONAI use (2 TP + s) / (P + T + s), i.e. our ``smooth`` = their s / 2; keras
      ``Dice`` has no smoothing, 2 TP / (P + T + 1e-7), i.e. ``smooth=0`` up to that 1e-7.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> p = jnp.array([[[0.9, 0.1], [0.2, 0.8]]])       # [B=1, N=2 pixels, C=2]
      >>> t = jnp.array([[[1.0, 0.0], [0.0, 1.0]]])
      >>> round(float(jaxloss.dice_loss(p, t, num_spatial_dims=1, smooth=0.0)[0]), 4)
      0.1504

    Reference: Milletari, Navab & Ahmadi, "V-Net", 3DV 2016 (arXiv:1606.04797).
    """
    fn = "dice_loss"
    _checks.require(fn, "smooth", smooth, _checks.NONNEGATIVE)
    _check_average(fn, average)
    tp, fp, fn_ = _pool(average, *_confusion(fn, probabilities, targets, num_spatial_dims))
    return _finish(_one_minus_tversky(2 * tp, fp, fn_, 1, 1, 2 * smooth), average)


@register(plot="overlap")
def jaccard_loss(
    probabilities: ArrayLike,
    targets: ArrayLike,
    *,
    num_spatial_dims: int,
    smooth: ArrayLike = 1.0,
    average: str = "macro",
) -> jax.Array:
    """Soft Jaccard (IoU) loss 1 - J per example, reducing the spatial axes (and classes).

    Math (per class, sums over the spatial axes, s = smooth; union = P + T - TP):
      J_c = (TP_c + s) / (P_c + T_c - TP_c + s),   l = 1 - J  (macro: mean_c (1 - J_c)).
    At s = 0 it is tied to Dice by D = 2J / (1 + J); l is in [0, 1] for p, t in [0, 1].

    Gradient (per class; micro pooled, macro divided by C), num = TP + s, den = P + T - TP + s:
      dl/dp_c = -(t_c den - num (1 - t_c)) / den²,   dl/dt_c = -(p_c den - num (1 - p_c)) / den².
    An empty class at s = 0 (den = 0): l = 0, gradient 0.

    Args:
      probabilities: floating array ``[..., *spatial, C]``, values in [0, 1].
      targets: real array of the same shape, one-hot or soft, in [0, 1].
      num_spatial_dims: number of spatial axes before the last (class) axis.
      smooth: s >= 0 (default 1.0).
      average: "macro", "micro" or "none" (see the module notes).

    Returns:
      ``[...]`` (macro, micro) or ``[..., C]`` (none). optax: none (``dice_loss(alpha=1,
      beta=1, apply_softmax=False)`` is the same value); smp ``JaccardLoss(smooth=s)`` (channel
      first, pooled over the batch, absent classes masked); MONAI ``DiceLoss(jaccard=True)``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> p = jnp.array([[[0.9, 0.1], [0.2, 0.8]]])
      >>> t = jnp.array([[[1.0, 0.0], [0.0, 1.0]]])
      >>> round(float(jaxloss.jaccard_loss(p, t, num_spatial_dims=1, smooth=0.0)[0]), 4)
      0.2614

    Reference: Rahman & Wang, "Optimizing intersection-over-union in deep neural networks for
    image segmentation", ISVC 2016.
    """
    fn = "jaccard_loss"
    _checks.require(fn, "smooth", smooth, _checks.NONNEGATIVE)
    _check_average(fn, average)
    tp, fp, fn_ = _pool(average, *_confusion(fn, probabilities, targets, num_spatial_dims))
    return _finish(_one_minus_tversky(tp, fp, fn_, 1, 1, smooth), average)


@register(plot="overlap")
def tversky_loss(
    probabilities: ArrayLike,
    targets: ArrayLike,
    *,
    num_spatial_dims: int,
    alpha: ArrayLike = 0.3,
    beta: ArrayLike = 0.7,
    smooth: ArrayLike = 1.0,
    average: str = "macro",
) -> jax.Array:
    """Tversky loss 1 - TI per example: Dice with false positives and negatives weighted apart.

    Math (per class, sums over the spatial axes, s = smooth):
      TI_c = (TP_c + s) / (TP_c + α FP_c + β FN_c + s),   l = 1 - TI  (macro: mean_c).
    α weights false positives, β false negatives (β > α favours recall). α = β = ½ is
    :func:`dice_loss`, α = β = 1 is :func:`jaccard_loss` (same ``smooth``).

    Gradient (per class; micro pooled, macro divided by C), num = TP + s,
    den = TP + α FP + β FN + s = (1 - α - β) TP + α P + β T + s:
      dl/dp_c = -(t_c den - num (α + (1 - α - β) t_c)) / den²,
      dl/dt_c = -(p_c den - num (β + (1 - α - β) p_c)) / den².
    den = 0 (only with s = 0) gives l = 0 with a zero gradient.

    Args:
      probabilities: floating array ``[..., *spatial, C]``, values in [0, 1].
      targets: real array of the same shape, one-hot or soft, in [0, 1].
      num_spatial_dims: number of spatial axes before the last (class) axis.
      alpha: α >= 0, weight of false positives (default 0.3, Salehi et al.'s best setting).
      beta: β >= 0, weight of false negatives (default 0.7).
      smooth: s >= 0 (default 1.0).
      average: "macro", "micro" or "none" (see the module notes).

    Returns:
      ``[...]`` (macro, micro) or ``[..., C]`` (none). Same as
      ``optax.losses.dice_loss(alpha=α, beta=β, apply_softmax=False)`` and smp
      ``TverskyLoss`` (both α on FP), but their defaults are α = β = 0.5. keras
      ``Tversky(alpha, beta)`` (default 0.5 / 0.5) has no smoothing, TP / (TP + α FP + β FN +
      1e-7), i.e. ``smooth=0`` up to that 1e-7, and its code put α on FN until
      keras-team/keras#23333 (its docs always said FP). The widely copied focal-Tversky
      reference code puts α on FN: swap the two when migrating from it.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> p = jnp.array([[[0.9, 0.1], [0.2, 0.8]]])
      >>> t = jnp.array([[[1.0, 0.0], [0.0, 1.0]]])
      >>> round(float(jaxloss.tversky_loss(p, t, num_spatial_dims=1, smooth=0.0)[0]), 4)
      0.1507

    Reference: Salehi, Erdogmus & Gholipour, "Tversky loss function for image segmentation using
    3D fully convolutional deep networks", MLMI 2017 (arXiv:1706.05721).
    """
    fn = "tversky_loss"
    _checks.require(fn, "alpha", alpha, _checks.NONNEGATIVE)
    _checks.require(fn, "beta", beta, _checks.NONNEGATIVE)
    _checks.require(fn, "smooth", smooth, _checks.NONNEGATIVE)
    _check_average(fn, average)
    tp, fp, fn_ = _pool(average, *_confusion(fn, probabilities, targets, num_spatial_dims))
    return _finish(_one_minus_tversky(tp, fp, fn_, alpha, beta, smooth), average)


def _pow0(x: jax.Array, gamma: jax.Array) -> jax.Array:
    """x^γ for x >= 0 with value and gradients (in x and γ) 0 at x == 0 (double where).

    Keyed on x == 0, which NaN fails: NaN gives NaN (a test x > 0 would send it to 0)."""
    zero = x == 0
    safe = jnp.where(zero, 1, x)
    return jnp.where(zero, 0, safe**gamma)


@register(plot="overlap")
def focal_tversky_loss(
    probabilities: ArrayLike,
    targets: ArrayLike,
    *,
    num_spatial_dims: int,
    alpha: ArrayLike = 0.3,
    beta: ArrayLike = 0.7,
    gamma: ArrayLike = 0.75,
    smooth: ArrayLike = 1.0,
    average: str = "macro",
) -> jax.Array:
    """Focal Tversky loss (1 - TI)^γ per example.

    Math (TI_c as in :func:`tversky_loss`):
      l_c = (1 - TI_c)^γ;  macro: mean_c l_c;  micro: (1 - TI_pooled)^γ;  none: l_c.
    γ = 1 is :func:`tversky_loss`. γ < 1 (default 0.75 = 1/(4/3), the paper's setting) keeps
    the gradient large as TI -> 1, focusing on nearly-right (small, hard) structures.

    Gradient: dl_c/dx = -γ (1 - TI_c)^(γ-1) dTI_c/dx with dTI/dx from :func:`tversky_loss`;
    dl_c/dγ = (1 - TI_c)^γ log(1 - TI_c). At TI_c = 1 (perfect prediction; the minimum), where
    the derivative of (1 - TI)^γ is infinite for γ < 1, the gradient is taken as 0 in both.

    Args:
      probabilities: floating array ``[..., *spatial, C]``, values in [0, 1].
      targets: real array of the same shape, one-hot or soft, in [0, 1].
      num_spatial_dims: number of spatial axes before the last (class) axis.
      alpha: α >= 0, weight of false positives (default 0.3).
      beta: β >= 0, weight of false negatives (default 0.7).
      gamma: exponent γ > 0 (default 0.75); may be traced (learnable).
      smooth: s >= 0 (default 1.0).
      average: "macro", "micro" or "none" (see the module notes).

    Returns:
      ``[...]`` (macro, micro) or ``[..., C]`` (none). optax and keras: none. smp
      ``TverskyLoss(alpha, beta, gamma)`` raises the class-*mean* loss to γ,
      (mean_c (1 - TI_c))^γ, pooled over the batch; ours is the mean of per-class powers
      (Abraham & Khan's sum over classes, divided by C), the same for one class or micro. The
      paper writes the exponent as 1/γ with γ = 4/3: pass ``gamma=0.75``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> p = jnp.array([[[0.9, 0.1], [0.2, 0.8]]])
      >>> t = jnp.array([[[1.0, 0.0], [0.0, 1.0]]])
      >>> round(float(jaxloss.focal_tversky_loss(p, t, num_spatial_dims=1, gamma=2.0,
      ...                                        smooth=0.0)[0]), 4)
      0.0233

    Reference: Abraham & Khan, "A novel focal Tversky loss function with improved attention
    U-Net for lesion segmentation", ISBI 2019 (arXiv:1810.07842).
    """
    fn = "focal_tversky_loss"
    _checks.require(fn, "alpha", alpha, _checks.NONNEGATIVE)
    _checks.require(fn, "beta", beta, _checks.NONNEGATIVE)
    _checks.require(fn, "gamma", gamma, _checks.POSITIVE)
    _checks.require(fn, "smooth", smooth, _checks.NONNEGATIVE)
    _check_average(fn, average)
    tp, fp, fn_ = _pool(average, *_confusion(fn, probabilities, targets, num_spatial_dims))
    miss = _one_minus_tversky(tp, fp, fn_, alpha, beta, smooth)
    return _finish(_pow0(miss, jnp.asarray(gamma, miss.dtype)), average)


@register(plot="overlap")
def generalized_dice_loss(
    probabilities: ArrayLike, targets: ArrayLike, *, num_spatial_dims: int, smooth: ArrayLike = 1.0
) -> jax.Array:
    """Generalized Dice loss (Sudre et al. 2017) per example: class-weighted pooled Dice.

    Math (per example, sums over the spatial axes, s = smooth):
      GD = (2 sum_c w_c TP_c + 2 s) / (sum_c w_c (P_c + T_c) + 2 s),   l = 1 - GD,
      w_c ∝ 1 / T_c²  (Sudre's weights), normalised to sum_c w_c = 1.
    The ratio is a weighted *micro* average (one ratio of weighted sums, not a weighted mean of
    per-class Dice as optax's ``multiclass_generalized_dice_loss``). Normalising the weights
    changes nothing at s = 0; it keeps ``smooth`` on the scale of pixel counts (raw 1/T² weights
    make the sums ~1/T and s = 1 would swamp them). The weights are computed as
    (min_k T_k / T_c)² / sum (...)², without overflow for tiny soft T_c.

    Absent classes (T_c = 0, weight 1/0): they get the largest weight of the example's present
    classes (MONAI's rule), so false positives on a class that is not there are penalised like
    those of its rarest present class. An example with no target mass at all gets equal weights
    (plain micro Dice). Never inf or NaN.

    Gradient (w.r.t. probabilities; the weights depend on the targets only):
      dl/dp_c = -w_c (2 t_c den - num) / den²,  num = 2 sum w TP + 2 s,  den = sum w (P + T) + 2 s.
    The gradient w.r.t. targets includes the weights' dependence (plain autodiff).

    Args:
      probabilities: floating array ``[..., *spatial, C]``, values in [0, 1].
      targets: real array of the same shape, one-hot or soft, in [0, 1].
      num_spatial_dims: number of spatial axes before the last (class) axis. Weights are per
        example; for batch-level weights fold the batch into the spatial axes.
      smooth: s >= 0 (default 1.0).

    Returns:
      ``[...]``. With one class it equals :func:`dice_loss`. optax
      ``multiclass_generalized_dice_loss`` returns a scalar, takes batch-wide weights and averages
      per-class Dice; MONAI ``GeneralizedDiceLoss`` uses unnormalised weights with
      smooth_nr = smooth_dr = 1e-5 (same value at s = 0).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> p = jnp.array([[[0.9, 0.1], [0.2, 0.8]]])
      >>> t = jnp.array([[[1.0, 0.0], [0.0, 1.0]]])
      >>> v = jaxloss.generalized_dice_loss(p, t, num_spatial_dims=1, smooth=0.0)
      >>> round(float(v[0]), 4)
      0.15

    Reference: Sudre, Li, Vercauteren, Ourselin & Cardoso, "Generalised Dice overlap as a deep
    learning loss function for highly unbalanced segmentations", DLMIA 2017 (arXiv:1707.03237).
    """
    fn = "generalized_dice_loss"
    _checks.require(fn, "smooth", smooth, _checks.NONNEGATIVE)
    p, t, axes = _inputs(fn, probabilities, targets, num_spatial_dims)
    tp, fp, fn_ = _tp_fp_fn(p, t, axes)
    ts = jnp.sum(t, axis=axes)  # not TP + FN: the weights must not depend on p
    present = ts > 0
    t_min = jnp.min(jnp.where(present, ts, jnp.inf), axis=-1, keepdims=True)
    t_min = jnp.where(jnp.isfinite(t_min), t_min, 1)
    r = jnp.where(present, t_min / jnp.where(present, ts, 1), 1)
    w = r**2 / jnp.sum(r**2, axis=-1, keepdims=True)
    s = jnp.asarray(smooth, tp.dtype)
    # 1 - GD = sum w (FP + FN) / (sum w (P + T) + 2 s), a ratio of non-negative sums.
    return _guarded_share(jnp.sum(w * (fp + fn_), axis=-1), 2 * jnp.sum(w * tp, axis=-1) + 2 * s)
