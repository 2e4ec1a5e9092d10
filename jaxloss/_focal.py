"""Focal losses: sigmoid and softmax focal, class-balanced focal and Poly-1 cross-entropy.

Conventions shared by every loss here.

Inputs. ``sigmoid_focal_loss`` is elementwise on logits with labels in [0, 1] (soft labels
allowed; concrete ones are checked). The softmax losses take integer labels with the conventions
of :func:`jaxloss.softmax_cross_entropy_with_integer_labels` (``jaxloss._core.labels``): labels
have the logits' shape without ``axis``; ``ignore_index`` examples give 0; ``where`` masks
classes; labels out of range raise eagerly and give NaN under ``jit`` (value and gradient).
float16/bfloat16 inputs are computed in float32 and the result is float32; float64 stays
float64.

Reduction. The softmax losses take ``reduction="none" | "mean" | "sum"`` (default ``"none"``:
one value per example), PyTorch's for integer labels: with V the examples whose label is not
``ignore_index``, 'sum' = sum_{n in V} l_n and 'mean' = sum_{n in V} l_n / sum_{n in V} w_{y_n},
w the per-class weights (``alpha``, the class-balanced weights; 1 without: the count of kept
examples). A zero denominator (every example ignored) gives 0 with a zero gradient.

Log space. For the true class, with p_t its probability,

    log p_t       = -softplus(-r)                            (softmax; r the label's log-odds)
    log(1 - p_t)  = -softplus(r),   r = z_y - lse_{c != y}(z)
                  = log((1 - t) σ(x) + t σ(-x))               (sigmoid; -softplus(±x) for hard t)

(the softmax losses' r is formed from the largest other logit and never from lse(z), which
float32 rounds at the logits' magnitude; see ``_core.logspace.LabelSoftmax``)

so the focal factor (1 - p_t)^γ = exp(γ log(1 - p_t)) is exact where 1 - p_t underflows, and its
gradient is finite for every γ >= 0. The derivative of (1 - p)^γ with respect to the
*probability* is infinite at p = 1 when γ < 1; jaxloss never forms it. The gradient with respect to
the logits is γ (1 - p_t)^γ (…) + (1 - p_t)^γ (…), which tends to 0 at saturation and is computed
as that limit there: finite values, gradients and Hessians at logits of ±1e4 for any γ >= 0.

Poly-1. ``poly_epsilon`` / ``epsilon`` ε adds ε (1 - p_t)^(γ+1) (Leng et al., ICLR 2022); ε >= -1
is required (below, the loss is negative where the true class is nearly certain).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from . import _reduce
from ._core import checks as _checks
from ._core.checks import Interval
from ._core.focal import _one_minus_pt_pow, _sigmoid_focal_term
from ._core.labels import (
    check_unit_labels,
    class_vector,
    effective_number_weights,
    finish_integer_loss,
    prepare_integer,
    reduce_integer,
)
from ._core.logspace import LabelSoftmax, clamp_finite, sigmoid_pow
from ._core.numerics import softplus
from ._core.registry import register

__all__ = [
    "class_balanced_focal_loss",
    "poly1_cross_entropy",
    "sigmoid_focal_loss",
    "softmax_focal_loss",
]


# ----------------------------------------------------------------------------------------------
# Validation

#: ε of a Poly-1 term: finite and >= -1.
_POLY_EPSILON = Interval(-1.0)


def _require_poly_epsilon(fn: str, arg: str, value: Any) -> None:
    """ε of a Poly-1 term, checked when concrete: finite and >= -1.

    -log p >= 1 - p, so CE + ε (1 - p) >= (1 + ε)(1 - p) >= 0 for ε >= -1, and near p = 1 (where
    CE ≈ 1 - p) the loss is ≈ (1 + ε)(1 - p): negative for any ε < -1. ε >= -1 is also where the
    loss decreases in p (d/dp = -1/p - ε <= 0), the paper's range [-1, inf). (With focal factors
    the same bound holds for α_t = 1; with α_t < 1 the loss is >= 0 for ε >= -α_t.)
    """
    v = _checks.concrete_float(value)
    if v is not None and not _POLY_EPSILON.contains(v):
        raise ValueError(
            f"jaxloss.{fn}: `{arg}` must be {_POLY_EPSILON} (below -1, the loss is negative "
            "where the true class is nearly certain: -log p + ε(1 - p) ≈ (1 + ε)(1 - p)); got "
            f"{v!r}."
        )
    _checks.require(fn, arg, value, _POLY_EPSILON)


# ----------------------------------------------------------------------------------------------
# Sigmoid focal


@register(plot="binary")
def sigmoid_focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: ArrayLike | None = None,
    gamma: ArrayLike = 2.0,
    poly_epsilon: ArrayLike = 0.0,
) -> jax.Array:
    """Sigmoid focal loss, elementwise, computed in log space (optionally Poly-1).

    Math (x = logit, t = label in [0, 1], p = σ(x)):
      p_t = t p + (1 - t)(1 - p),   α_t = α t + (1 - α)(1 - t)  (1 when ``alpha`` is None),
      l = α_t (1 - p_t)^γ · BCE(x, t) + ε (1 - p_t)^(γ+1),   BCE = softplus(x) - t x,
      (1 - p_t)^γ = exp(γ log(1 - p_t)),  log(1 - p_t) = log((1 - t) σ(x) + t σ(-x))
      (= -softplus(x) for t = 1 and -softplus(-x) for t = 0). γ = 0, ε = 0 and no ``alpha`` is
      :func:`jaxloss.sigmoid_binary_cross_entropy` exactly (the same BCE expression times
      exp(0) = 1). For soft labels this is optax's/torchvision's p_t (a mixture), not the
      expected focal loss under Bernoulli(t).

    Gradient (L = log(1 - p_t), c = BCE, ε = ``poly_epsilon``):
      dl/dx = α_t e^{γL} [γ c L_x + σ(x) - t] + ε (γ+1) e^{(γ+1)L} L_x,
        L_x = (1 - 2t) σ(x) σ(-x) / (1 - p_t);
      dl/dt = (2α - 1) e^{γL} c [with alpha] + α_t e^{γL} [γ c L_t - x]
              + ε (γ+1) e^{γL} (σ(-x) - σ(x)),   L_t = (σ(-x) - σ(x)) / (1 - p_t);
      dl/dγ = L (α_t e^{γL} c + ε e^{(γ+1)L}).
      Convention: the derivative of (1 - p)^γ in p is infinite at p = 1 for γ < 1, but it is
      never formed: the gradient in x is computed from the expressions above (a custom JVP with
      every exponential bounded), which tend to 0 at saturated logits and are finite for all
      finite x and γ >= 0; so is the label gradient, also at labels exactly 0 or 1.

    Args:
      logits: floating array, any shape.
      labels: real array of the same shape, values in [0, 1] (soft labels allowed; checked when
        concrete).
      alpha: optional weight α in [0, 1] of the positive class (0.25 in Lin et al.; optax's
        default is None = no weighting, torchvision's 0.25).
      gamma: focusing parameter γ >= 0 (learnable values work).
      poly_epsilon: ε >= -1, the Poly-1 coefficient (Leng et al., ICLR 2022); 0 is plain focal.
        The loss is >= 0 for ε >= -α_t (-1 without ``alpha``).

    Returns:
      Array of the shape of ``logits``; the same as ``optax.sigmoid_focal_loss`` and
      ``torchvision.ops.sigmoid_focal_loss(reduction='none')`` (torchvision: ``alpha=-1`` for no
      weighting) when ε = 0.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> v = jaxloss.sigmoid_focal_loss(jnp.array([0.0, 3.0]), jnp.array([1.0, 1.0]), gamma=2.0)
      >>> [round(x, 6) for x in v.tolist()]
      [0.173287, 0.000109]

    Reference: Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017 (arXiv:1708.02002).
    """
    fn = "sigmoid_focal_loss"
    _checks.require(fn, "gamma", gamma, _checks.NONNEGATIVE)
    _require_poly_epsilon(fn, "poly_epsilon", poly_epsilon)
    if alpha is not None:
        _checks.require(fn, "alpha", alpha, _checks.UNIT)
    x = _checks.check_floating(fn, "logits", logits)
    t = _checks.check_real(fn, "labels", labels)
    check_unit_labels(fn, "labels", labels)
    _checks.check_same_shape(fn, "logits", x, "labels", t)
    dtype = _checks.compute_dtype(x, t)
    x, t = x.astype(dtype), t.astype(dtype)
    g = jnp.asarray(gamma, dtype).reshape(())
    loss = _sigmoid_focal_term(x, t, g)
    if alpha is not None:
        al = jnp.asarray(alpha, dtype).reshape(())
        loss = (al * t + (1 - al) * (1 - t)) * loss
    if _checks.concrete_float(poly_epsilon) != 0:
        e = jnp.asarray(poly_epsilon, dtype).reshape(())
        loss = loss + e * _one_minus_pt_pow(x, t, g + 1)
    return loss


# ----------------------------------------------------------------------------------------------
# Softmax focal with integer labels: pieces


def _one_minus_py_pow(parts: LabelSoftmax, power: ArrayLike) -> jax.Array:
    """(1 - p_y)^power = σ(-r)^power (power >= 0); 0 where only the label counts."""
    return jnp.where(parts.no_other, parts.nan_or_zero, sigmoid_pow(-parts.r, power))


def _focal(parts: LabelSoftmax, gamma: ArrayLike) -> jax.Array:
    """(1 - p_y)^γ · (-log p_y); 0 where only the label counts."""
    return jnp.where(parts.no_other, parts.nan_or_zero, _focal_of_log_odds(parts.r, gamma))


def _needs_log_odds(gamma: ArrayLike, poly_epsilon: ArrayLike) -> bool:
    """Whether the focal factor or the Poly-1 term is used (else the cross-entropy alone)."""
    return _checks.concrete_float(gamma) != 0 or _checks.concrete_float(poly_epsilon) != 0


def _focal_from_parts(
    parts: LabelSoftmax,
    gamma: ArrayLike,
    alpha_y: jax.Array | None,
    poly_epsilon: ArrayLike,
    dtype: Any,
) -> jax.Array:
    g = jnp.asarray(gamma, dtype)
    loss = parts.ce if _checks.concrete_float(gamma) == 0 else _focal(parts, g)
    if alpha_y is not None:
        loss = alpha_y * loss
    if _checks.concrete_float(poly_epsilon) != 0:
        loss = loss + jnp.asarray(poly_epsilon, dtype) * _one_minus_py_pow(parts, g + 1)
    return loss


@jax.custom_jvp
def _focal_of_log_odds(r: jax.Array, gamma: jax.Array) -> jax.Array:
    """σ(-r)^γ softplus(-r) = (1 - p)^γ (-log p) with p = σ(r) (the softmax focal term, r the
    label's log-odds against the other classes).

    The tangents are bounded products, each formed before it meets a large factor:
      d/dr = -σ(-r)^γ [γ (softplus(-r) σ(r)) + σ(-r)],   d/dγ = -(softplus(r) softplus(-r)) σ(-r)^γ,
    evaluated at r clamped to the finite range: r = -inf (the label's logit far below the
    others, a cross-entropy beyond float32's range) gives the value inf with the finite
    derivative -1, not inf · 0.
    """
    return jnp.exp(-gamma * softplus(clamp_finite(r))) * softplus(-r)


@_focal_of_log_odds.defjvp
def _focal_of_log_odds_jvp(primals, tangents):
    (r, gamma), (dr, dgamma) = primals, tangents
    rc = clamp_finite(r)
    sp_pos, sp_neg = softplus(rc), softplus(-rc)
    v = jnp.exp(-gamma * sp_pos)
    d_r = -v * (gamma * (sp_neg * jax.nn.sigmoid(rc)) + jax.nn.sigmoid(-rc))
    d_gamma = -(sp_pos * sp_neg) * v
    return _focal_of_log_odds(r, gamma), d_r * dr + d_gamma * dgamma


# ----------------------------------------------------------------------------------------------
# Softmax focal, class-balanced focal, Poly-1


@register(plot="softmax")
def softmax_focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: ArrayLike | None = None,
    gamma: ArrayLike = 2.0,
    poly_epsilon: ArrayLike = 0.0,
    axis: int = -1,
    ignore_index: int | None = None,
    where: ArrayLike | None = None,
    reduction: str = "none",
) -> jax.Array:
    """Softmax (multi-class) focal loss with integer labels, one value per example, in log space.

    Math (z = logits, y = label, p = softmax(z) over counted classes, c = -log p_y = lse(z) - z_y):
      l = α_y (1 - p_y)^γ c + ε (1 - p_y)^(γ+1),
      with r = z_y - lse_{c != y}(z) (the label's log-odds): c = softplus(-r),
      (1 - p_y)^γ = exp(γ L),  L = log(1 - p_y) = -softplus(r)  (exact near p_y = 0 and 1).
      p_y comes from the softmax, never from exp(-weighted CE) (which is wrong with class
      weights). With γ = 0, ε = 0 and no ``alpha`` this is
      :func:`jaxloss.softmax_cross_entropy_with_integer_labels` (to rounding: c is formed
      without lse(z), more accurately at large logits; no factor is applied), and with
      ``alpha=w`` it is that loss with ``class_weights=w``.

    Gradient (q = softmax over the counted classes other than y, 0 at y; e_y the one-hot):
      dl/dz = α_y e^{γL} [γ c (q - p) + (p - e_y)] + ε (γ+1) e^{(γ+1)L} (q - p);
      dl/dγ = L (α_y e^{γL} c + ε e^{(γ+1)L}). Finite for every finite z and γ >= 0 (γ < 1
      included: the derivative in p, infinite at p_y = 1, is never formed); masked classes and
      ignored examples get 0. A row whose only counted class is y gives 0.

    Args:
      logits: floating array [..., C, ...] with the class axis ``axis``.
      labels: integer array, the logits' shape without ``axis``.
      alpha: optional [C] per-class weights α (e.g. ``class_weights_from_counts``). A scalar is
        refused: on a softmax it only rescales the loss (Keras' ``CategoricalFocalCrossentropy``
        default ``alpha=0.25`` makes γ = 0 give 0.25 × cross-entropy).
      gamma: focusing parameter γ >= 0.
      poly_epsilon: ε >= -1, the Poly-1 coefficient (Leng et al., ICLR 2022); 0 is plain focal.
        The loss is >= 0 for ε >= -α_t (-1 without ``alpha``).
      axis: the class axis.
      ignore_index: optional label value whose examples give 0.
      where: optional boolean class mask, broadcastable to ``logits`` with the same ndim.
      reduction: ``"none"`` (default: one value per example), ``"mean"`` or ``"sum"``:
        with V the examples whose label is not ``ignore_index``, 'sum' = sum_{n in V} l_n
        and 'mean' = sum_{n in V} l_n / sum_{n in V} w_{y_n}, w = ``alpha`` (1 without it:
        the count of kept examples), so that γ = 0 with ``alpha=w`` is
        :func:`jaxloss.softmax_cross_entropy_with_integer_labels` with ``class_weights=w``
        also reduced; 0 with a zero gradient when that denominator is 0 (torch gives NaN).

    Returns:
      Array of the shape of ``labels`` (``reduction="none"``; a scalar otherwise). Keras
      ``CategoricalFocalCrossentropy(alpha=α, gamma=γ, from_logits=True)`` on one-hot targets with
      per-class α; optax has no softmax focal loss.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> logits = jnp.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
      >>> v = jaxloss.softmax_focal_loss(logits, jnp.array([0, 1]), gamma=2.0)
      >>> [round(x, 4) for x in v.tolist()]
      [0.0109, 0.4883]

    Reference: Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017 (arXiv:1708.02002).
    """
    fn = "softmax_focal_loss"
    _reduce.check_reduction(fn, reduction)
    _checks.require(fn, "gamma", gamma, _checks.NONNEGATIVE)
    _require_poly_epsilon(fn, "poly_epsilon", poly_epsilon)
    z, y, axis, num_classes, mask, dtype = prepare_integer(
        fn, logits, labels, axis, ignore_index, where
    )
    parts = LabelSoftmax(z, y, axis, mask, log_odds=_needs_log_odds(gamma, poly_epsilon))
    alpha_y, w = None, None
    if alpha is not None:
        if np.ndim(alpha) == 0:
            raise ValueError(
                f"jaxloss.{fn}: `alpha` must be None or a ({num_classes},) vector of per-class "
                f"weights; got the scalar {alpha!r}, which would only rescale the loss."
            )
        w = class_vector(fn, "alpha", alpha, num_classes, dtype)
        alpha_y = parts.pick(w, axis)
    loss = _focal_from_parts(parts, gamma, alpha_y, poly_epsilon, dtype)
    loss = finish_integer_loss(loss, y, num_classes, ignore_index, parts.any_label)
    return reduce_integer(loss, reduction, y, w, num_classes, ignore_index)


@register(plot="imbalanced", plot_defaults={"samples_per_class": (100, 10)})
def class_balanced_focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    samples_per_class: ArrayLike,
    beta: ArrayLike = 0.999,
    gamma: ArrayLike = 2.0,
    axis: int = -1,
    ignore_index: int | None = None,
    where: ArrayLike | None = None,
    reduction: str = "none",
) -> jax.Array:
    """Class-balanced softmax focal loss (effective number of samples), one value per example.

    Math:  l = w_y (1 - p_y)^γ (-log p_y), i.e. :func:`softmax_focal_loss` with ``alpha=w``,
    w = ``class_weights_from_counts(samples_per_class, method="effective_number", beta=β)``
    (sum_c w_c = C). Cui et al.'s own focal variant is the *sigmoid* focal loss on one-hot
    labels, weighted by w_y: that is ``w[labels][..., None] * sigmoid_focal_loss(logits,
    one_hot)`` summed over classes.

    Gradient: dl/dz = w_y e^{γL} [γ c (q - p) + (p - e_y)] with L = log(1 - p_y), c = -log p_y,
    q the softmax over the other classes (see :func:`softmax_focal_loss`).

    Args:
      logits: floating array [..., C, ...] with the class axis ``axis``.
      labels: integer array, the logits' shape without ``axis``.
      samples_per_class: [C] training-set counts n_c >= 0 (a constant).
      beta: β in [0, 1).
      gamma: focusing parameter γ >= 0 (0 gives :func:`class_balanced_cross_entropy`).
      axis: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      ignore_index: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      where: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      reduction: ``"none"`` (default: one value per example), ``"mean"`` or ``"sum"``:
        with V the examples whose label is not ``ignore_index``, 'sum' = sum_{n in V} l_n
        and 'mean' = sum_{n in V} l_n / sum_{n in V} w_{y_n}, w the class-balanced weights (torch's
        weighted mean); 0 with a zero gradient when that denominator is 0 (torch gives NaN).

    Returns:
      Array of the shape of ``labels`` (``reduction="none"``; a scalar otherwise).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> v = jaxloss.class_balanced_focal_loss(jnp.zeros((2, 2)), jnp.array([0, 1]),
      ...                                       samples_per_class=jnp.array([90, 10]), beta=0.9)
      >>> [round(x, 4) for x in v.tolist()]
      [0.1367, 0.2099]

    Reference: Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019.
    """
    fn = "class_balanced_focal_loss"
    _reduce.check_reduction(fn, reduction)
    _checks.require(fn, "gamma", gamma, _checks.NONNEGATIVE)
    z, y, axis, num_classes, mask, dtype = prepare_integer(
        fn, logits, labels, axis, ignore_index, where
    )
    w = effective_number_weights(fn, samples_per_class, beta, num_classes, dtype)
    parts = LabelSoftmax(z, y, axis, mask, log_odds=_needs_log_odds(gamma, 0.0))
    loss = _focal_from_parts(parts, gamma, parts.pick(w, axis), 0.0, dtype)
    loss = finish_integer_loss(loss, y, num_classes, ignore_index, parts.any_label)
    return reduce_integer(loss, reduction, y, w, num_classes, ignore_index)


@register(plot="softmax")
def poly1_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    epsilon: ArrayLike = 2.0,
    axis: int = -1,
    ignore_index: int | None = None,
    where: ArrayLike | None = None,
    reduction: str = "none",
) -> jax.Array:
    """Poly-1 cross-entropy with integer labels, one value per example.

    Math:  l = -log p_y + ε (1 - p_y),  p = softmax(z),  1 - p_y = σ(-r) with r = z_y -
    lse_{c != y}(z) (exact near p_y = 1). ε = 0 is cross-entropy. ε >= -1 is required: since
    -log p >= 1 - p, l >= (1 + ε)(1 - p_y) >= 0 there, while near p_y = 1 (-log p_y ≈ 1 - p_y)
    any ε < -1 makes l ≈ (1 + ε)(1 - p_y) negative; ε >= -1 is also where l decreases in p_y.
    For the Poly-1 *focal* loss use ``poly_epsilon=`` of :func:`softmax_focal_loss` /
    :func:`sigmoid_focal_loss`.

    Gradient: dl/dz = (1 + ε p_y)(softmax(z) - e_y) (0 for masked classes and ignored examples).

    Args:
      logits: floating array [..., C, ...] with the class axis ``axis``.
      labels: integer array, the logits' shape without ``axis``.
      epsilon: ε >= -1 (2 for ImageNet, -1 for detection in the paper; optax's default is 2,
        and optax accepts ε < -1, giving negative losses). Checked when concrete.
      axis: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      ignore_index: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      where: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      reduction: ``"none"`` (default: one value per example), ``"mean"`` or ``"sum"``:
        with V the examples whose label is not ``ignore_index``, 'sum' = sum_{n in V} l_n
        and 'mean' = sum_{n in V} l_n / sum_{n in V} w_{y_n}, w = 1 (the count of kept examples); 0
        with a zero gradient when that denominator is 0 (torch gives NaN).

    Returns:
      Array of the shape of ``labels`` (``reduction="none"``; a scalar otherwise):
      ``optax.poly_loss_cross_entropy(logits, one_hot(labels), epsilon=ε)``, which takes probability
      labels instead.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> v = jaxloss.poly1_cross_entropy(jnp.zeros((1, 4)), jnp.array([2]), epsilon=2.0)
      >>> [round(x, 6) for x in v.tolist()]
      [2.886294]

    Reference: Leng et al., "PolyLoss: A Polynomial Expansion Perspective of Classification Loss
    Functions", ICLR 2022 (arXiv:2204.12511).
    """
    fn = "poly1_cross_entropy"
    _reduce.check_reduction(fn, reduction)
    _require_poly_epsilon(fn, "epsilon", epsilon)
    z, y, axis, num_classes, mask, dtype = prepare_integer(
        fn, logits, labels, axis, ignore_index, where
    )
    parts = LabelSoftmax(z, y, axis, mask, log_odds=_needs_log_odds(0.0, epsilon))
    loss = _focal_from_parts(parts, 0.0, None, epsilon, dtype)
    loss = finish_integer_loss(loss, y, num_classes, ignore_index, parts.any_label)
    return reduce_integer(loss, reduction, y, None, num_classes, ignore_index)
