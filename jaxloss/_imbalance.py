"""Imbalance-aware and cost-sensitive classification losses: class-balanced cross-entropy, LDAM,
logit adjustment, generalized cross-entropy, expected cost and the asymmetric multi-label loss.

Conventions shared by every loss here.

Inputs. ``asymmetric_multilabel_loss`` is elementwise on sigmoid logits with labels in [0, 1]
(multi-hot; concrete ones are checked). The multi-class losses take integer labels with the
conventions of :func:`jaxloss.softmax_cross_entropy_with_integer_labels`: labels have the logits'
shape without ``axis``; ``ignore_index`` examples give 0; ``where`` masks classes; labels out of
range raise eagerly and give NaN under ``jit`` (value and gradient). float16/bfloat16 inputs
are computed in float32 and the result is float32; float64 stays float64. The focal losses
(sigmoid, softmax, class-balanced focal, Poly-1) are in ``_focal``.

Reduction. The multi-class losses take ``reduction="none" | "mean" | "sum"`` (default
``"none"``: one value per example), PyTorch's for integer labels: with V the examples whose label
is not ``ignore_index``, 'sum' = sum_{n in V} l_n and 'mean' = sum_{n in V} l_n / sum_{n in V}
w_{y_n}, w the class weights of ``class_balanced_cross_entropy`` (1 elsewhere: the count of kept
examples). A zero denominator (every example ignored) gives 0 with a zero gradient.

Cross-entropies are formed as s (m - z_y) + log sum_c exp(s (z_c - m)) with m the row's maximum
(``_core.logspace.LabelSoftmax``), never as lse(z) - z_y, which float32 rounds at the logits'
magnitude.

Class-balanced weights (Cui et al., CVPR 2019) are :func:`jaxloss.class_weights_from_counts`
with ``method="effective_number"``. ``class_balanced_cross_entropy`` and
``class_balanced_focal_loss`` are thin conveniences over it; for any other loss (sigmoid focal,
LDAM, Poly-1, ...) the same weighting is

    w = jaxloss.class_weights_from_counts(samples_per_class, method="effective_number", beta=b)
    jaxloss.class_weighted(loss, w)                      # per-example value w[y] · l
    jaxloss.mean(loss(logits, labels), weights=w[labels], where=labels != ignore)  # torch's mean

and for multi-label sigmoid losses (one column per class, class axis last) ``w * values``.
LDAM's deferred re-weighting (DRW) is the same weights switched on late in training.

ASL sits here rather than with the focal losses: its asymmetric focusing uses none of the focal
term's numerics (no p_t mixture and none of its custom JVPs: separate positive and negative terms
and a probability margin); the one piece it shares with them, σ(x)^γ with bounded tangents, is
``_core.logspace.sigmoid_pow``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from . import _reduce
from ._core import checks as _checks
from ._core.checks import Interval
from ._core.labels import (
    bcast,
    check_labels,
    check_unit_labels,
    class_vector,
    effective_number_weights,
    finish_integer_loss,
    normalise_axis,
    prepare_integer,
    reduce_integer,
)
from ._core.logspace import LabelSoftmax, logaddexp, safe_log, sigmoid_pow
from ._core.numerics import logsumexp_parts, softplus
from ._core.registry import register

__all__ = [
    "asymmetric_multilabel_loss",
    "class_balanced_cross_entropy",
    "expected_cost",
    "generalized_cross_entropy",
    "ldam_loss",
    "logit_adjusted_cross_entropy",
]

#: q of the generalized cross-entropy.
_GCE_Q = Interval(0.0, 1.0, lo_open=True)


# ----------------------------------------------------------------------------------------------
# Class-balanced cross-entropy


@register(plot="imbalanced", plot_defaults={"samples_per_class": (100, 10)})
def class_balanced_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    samples_per_class: ArrayLike,
    beta: ArrayLike = 0.999,
    axis: int = -1,
    ignore_index: int | None = None,
    where: ArrayLike | None = None,
    reduction: str = "none",
) -> jax.Array:
    """Class-balanced softmax cross-entropy (effective number of samples), one value per example.

    Math:  l = w_y (lse(z) - z_y),  w = ``class_weights_from_counts(samples_per_class,
    method="effective_number", beta=β)``: w_c ∝ (1 - β)/(1 - β^{n_c}), scaled so that
    sum_c w_c = C; classes with n_c = 0 get weight 0. β = 0 is plain cross-entropy; β → 1 tends
    to inverse-frequency weights. Equal to
    ``class_weighted(softmax_cross_entropy_with_integer_labels, w)`` and to that loss with
    ``class_weights=w``.

    Gradient: dl/dz = w_y (softmax(z) - e_y) (0 for masked classes and ignored examples).

    Args:
      logits: floating array [..., C, ...] with the class axis ``axis``.
      labels: integer array, the logits' shape without ``axis``.
      samples_per_class: [C] training-set counts n_c >= 0 (a constant).
      beta: β in [0, 1); Cui et al. use 0.9 ... 0.9999.
      axis: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      ignore_index: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      where: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      reduction: ``"none"`` (default: one value per example), ``"mean"`` or ``"sum"``:
        with V the examples whose label is not ``ignore_index``, 'sum' = sum_{n in V} l_n
        and 'mean' = sum_{n in V} l_n / sum_{n in V} w_{y_n}, w the class-balanced weights:
        ``torch.nn.CrossEntropyLoss(weight=w, reduction=)``; 0 with a zero gradient when that
        denominator is 0 (torch gives NaN).

    Returns:
      Array of the shape of ``labels`` (``reduction="none"``; a scalar otherwise):
      ``torch.nn.CrossEntropyLoss(weight=w, reduction='none')``. torch's weighted ``'mean'`` is
      ``jaxloss.sum(values) / jaxloss.sum(w[labels], where=valid)``
      with ``valid = labels != ignore_index`` (``w[labels]`` alone would pick a real class's
      weight at an ignored position), which is
      ``jaxloss.mean(unweighted_ce, weights=w[labels], where=valid)``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> v = jaxloss.class_balanced_cross_entropy(jnp.zeros((2, 2)), jnp.array([0, 1]),
      ...                                          samples_per_class=jnp.array([90, 10]), beta=0.9)
      >>> [round(x, 4) for x in v.tolist()]
      [0.5468, 0.8395]

    Reference: Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019
    (arXiv:1901.05555).
    """
    fn = "class_balanced_cross_entropy"
    _reduce.check_reduction(fn, reduction)
    z, y, axis, num_classes, mask, dtype = prepare_integer(
        fn, logits, labels, axis, ignore_index, where
    )
    w = effective_number_weights(fn, samples_per_class, beta, num_classes, dtype)
    parts = LabelSoftmax(z, y, axis, mask, log_odds=False)
    loss = parts.pick(w, axis) * parts.ce
    loss = finish_integer_loss(loss, y, num_classes, ignore_index, parts.any_label)
    return reduce_integer(loss, reduction, y, w, num_classes, ignore_index)


# ----------------------------------------------------------------------------------------------
# Margins and priors


@register(plot="imbalanced", plot_defaults={"samples_per_class": (100, 10)})
def ldam_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    samples_per_class: ArrayLike,
    max_margin: Any = 0.5,
    scale: ArrayLike = 30.0,
    axis: int = -1,
    ignore_index: int | None = None,
    where: ArrayLike | None = None,
    reduction: str = "none",
) -> jax.Array:
    """Label-distribution-aware margin (LDAM) loss, one value per example.

    Math:  Δ_j = C / n_j^{1/4} with C chosen so that max_j Δ_j = ``max_margin`` (the official
    code's normalisation), i.e. Δ_j = max_margin · (min_k n_k / n_j)^{1/4};
      l = -log softmax(s (z - Δ_y e_y))_y = lse(s z') - s z'_y,  z' = z - Δ_y e_y
    (the margin is subtracted from the true-class logit only, then everything is scaled by s).
    Rare classes get larger margins. ``max_margin=0, scale=1`` is plain cross-entropy.

    Gradient: dl/dz = s (softmax(s z') - e_y) (0 for masked classes and ignored examples).

    Args:
      logits: floating array [..., C, ...] with the class axis ``axis``. The paper feeds
        cosine logits in [-1, 1] (normalised features and weights), hence the large s.
      labels: integer array, the logits' shape without ``axis``.
      samples_per_class: [C] training-set counts n_j > 0 (a constant).
      max_margin: the largest margin (0.5 in the official code), >= 0.
      scale: s > 0 (30 in the official code).
      axis: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      ignore_index: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      where: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      reduction: ``"none"`` (default: one value per example), ``"mean"`` or ``"sum"``:
        with V the examples whose label is not ``ignore_index``, 'sum' = sum_{n in V} l_n
        and 'mean' = sum_{n in V} l_n / sum_{n in V} w_{y_n}, w = 1 (the count of kept examples); 0
        with a zero gradient when that denominator is 0 (torch gives NaN).

    Returns:
      Array of the shape of ``labels`` (``reduction="none"``; a scalar otherwise): the official
      ``LDAMLoss(cls_num_list, max_m, s=s)`` with ``reduction='none'`` (its ``weight=`` is the DRW
      schedule: use
      ``class_weights_from_counts`` and weight in the reduction when the schedule says so).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> v = jaxloss.ldam_loss(jnp.array([[0.5, 0.0], [0.0, 0.5]]), jnp.array([0, 1]),
      ...                       samples_per_class=jnp.array([160, 10]), scale=4.0)
      >>> [round(x, 4) for x in v.tolist()]
      [0.3133, 0.6931]

    Reference: Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware Margin
    Loss", NeurIPS 2019 (arXiv:1906.07413).
    """
    fn = "ldam_loss"
    _reduce.check_reduction(fn, reduction)
    _checks.require(fn, "max_margin", max_margin, _checks.NONNEGATIVE)
    _checks.require(fn, "scale", scale, _checks.POSITIVE)
    z, y, axis, num_classes, mask, dtype = prepare_integer(
        fn, logits, labels, axis, ignore_index, where
    )
    n = class_vector(
        fn, "samples_per_class", samples_per_class, num_classes, dtype, _checks.POSITIVE
    )
    inv = n**-0.25
    margins = jnp.asarray(max_margin, dtype) * inv / jnp.max(inv)
    parts = LabelSoftmax(
        z, y, axis, mask, scale=jnp.asarray(scale, dtype), log_odds=False, label_margins=margins
    )
    loss = finish_integer_loss(parts.ce, y, num_classes, ignore_index, parts.any_label)
    return reduce_integer(loss, reduction, y, None, num_classes, ignore_index)


@register(plot="imbalanced", plot_defaults={"class_priors": (100, 10)})
def logit_adjusted_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    class_priors: ArrayLike,
    tau: ArrayLike = 1.0,
    axis: int = -1,
    ignore_index: int | None = None,
    where: ArrayLike | None = None,
    reduction: str = "none",
) -> jax.Array:
    """Logit-adjusted softmax cross-entropy (the loss form of logit adjustment), per example.

    Math:  z'_c = z_c + τ log π_c,   l = lse(z') - z'_y = -log[π_y^τ e^{z_y} / sum_j π_j^τ e^{z_j}].
    The adjustment shifts the decision rule towards the balanced error; at τ = 1 it is the
    Balanced Softmax (Ren et al. 2020). Priors need not be normalised: scaling π adds a constant
    to every logit, which the softmax ignores, so raw class counts work. τ = 0 is plain
    cross-entropy. Predict with the raw ``logits`` (argmax z), not with z'. The post-hoc
    alternative (no change to training) predicts argmax (z - τ log π) instead.

    Gradient: dl/dz = softmax(z') - e_y;  dl/dτ = sum_c (softmax(z')_c - e_{y,c}) log π_c.

    Args:
      logits: floating array [..., C, ...] with the class axis ``axis``.
      labels: integer array, the logits' shape without ``axis``.
      class_priors: [C] positive class priors π (or counts) from the training set.
      tau: temperature τ >= 0 (1 in Menon et al.; learnable values work).
      axis: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      ignore_index: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      where: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      reduction: ``"none"`` (default: one value per example), ``"mean"`` or ``"sum"``:
        with V the examples whose label is not ``ignore_index``, 'sum' = sum_{n in V} l_n
        and 'mean' = sum_{n in V} l_n / sum_{n in V} w_{y_n}, w = 1 (the count of kept examples); 0
        with a zero gradient when that denominator is 0 (torch gives NaN).

    Returns:
      Array of the shape of ``labels`` (``reduction="none"``; a scalar otherwise): the official
      code's ``--mode=loss`` (``tau=1.0``), i.e.
      ``torch.nn.CrossEntropyLoss(reduction='none')(logits + tau * log(priors), y)``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> v = jaxloss.logit_adjusted_cross_entropy(jnp.zeros((2, 2)), jnp.array([0, 1]),
      ...                                          class_priors=jnp.array([0.9, 0.1]))
      >>> [round(x, 4) for x in v.tolist()]
      [0.1054, 2.3026]

    Reference: Menon et al., "Long-tail learning via logit adjustment", ICLR 2021
    (arXiv:2007.07314).
    """
    fn = "logit_adjusted_cross_entropy"
    _reduce.check_reduction(fn, reduction)
    _checks.require(fn, "tau", tau, _checks.NONNEGATIVE)
    z, y, axis, num_classes, mask, dtype = prepare_integer(
        fn, logits, labels, axis, ignore_index, where
    )
    pi = class_vector(fn, "class_priors", class_priors, num_classes, dtype, _checks.POSITIVE)
    adjusted = z + jnp.asarray(tau, dtype) * bcast(jnp.log(pi), z.ndim, axis)
    parts = LabelSoftmax(adjusted, y, axis, mask, log_odds=False)
    loss = finish_integer_loss(parts.ce, y, num_classes, ignore_index, parts.any_label)
    return reduce_integer(loss, reduction, y, None, num_classes, ignore_index)


# ----------------------------------------------------------------------------------------------
# Noise-robust


@register(plot="softmax")
def generalized_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    q: Any = 0.7,
    axis: int = -1,
    ignore_index: int | None = None,
    where: ArrayLike | None = None,
    reduction: str = "none",
) -> jax.Array:
    """Generalized cross-entropy (noise-robust L_q loss), one value per example.

    Math:  l = (1 - p_y^q) / q = -expm1(-q c) / q,  c = -log p_y = lse(z) - z_y,  q in (0, 1].
    The expm1 form is exact for small q: q → 0 tends to cross-entropy c (error about q c²/2),
    q = 1 is 1 - p_y (MAE on the probability, up to a factor 2). Bounded by 1/q, so
    confidently wrong (possibly mislabelled) examples cannot dominate.

    Gradient: dl/dz = p_y^q (softmax(z) - e_y) (0 for masked classes and ignored examples);
    dl/dq = [q c e^{-qc} - (1 - e^{-qc})] / q².

    Args:
      logits: floating array [..., C, ...] with the class axis ``axis``.
      labels: integer array, the logits' shape without ``axis``.
      q: exponent in (0, 1] (0.7 in the paper; Keras' default is 0.5).
      axis: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      ignore_index: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      where: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      reduction: ``"none"`` (default: one value per example), ``"mean"`` or ``"sum"``:
        with V the examples whose label is not ``ignore_index``, 'sum' = sum_{n in V} l_n
        and 'mean' = sum_{n in V} l_n / sum_{n in V} w_{y_n}, w = 1 (the count of kept examples); 0
        with a zero gradient when that denominator is 0 (torch gives NaN).

    Returns:
      Array of the shape of ``labels`` (``reduction="none"``; a scalar otherwise): Keras
      ``CategoricalGeneralizedCrossEntropy(q=q)`` of ``softmax(logits)`` (Keras takes the
      probabilities, and integer labels as here).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> v = jaxloss.generalized_cross_entropy(jnp.zeros((1, 4)), jnp.array([2]), q=1.0)
      >>> [round(x, 6) for x in v.tolist()]
      [0.75]

    Reference: Zhang & Sabuncu, "Generalized Cross Entropy Loss for Training Deep Neural Networks
    with Noisy Labels", NeurIPS 2018 (arXiv:1805.07836).
    """
    fn = "generalized_cross_entropy"
    _reduce.check_reduction(fn, reduction)
    _checks.require(fn, "q", q, _GCE_Q)
    z, y, axis, num_classes, mask, dtype = prepare_integer(
        fn, logits, labels, axis, ignore_index, where
    )
    parts = LabelSoftmax(z, y, axis, mask, log_odds=False)
    qq = jnp.asarray(q, dtype)
    loss = -jnp.expm1(-qq * parts.ce) / qq
    loss = finish_integer_loss(loss, y, num_classes, ignore_index, parts.any_label)
    return reduce_integer(loss, reduction, y, None, num_classes, ignore_index)


# ----------------------------------------------------------------------------------------------
# Cost-sensitive


@register(plot="softmax", plot_defaults={"cost_matrix": ((0.0, 1.0), (1.0, 0.0))})
def expected_cost(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    cost_matrix: ArrayLike,
    axis: int = -1,
    ignore_index: int | None = None,
) -> jax.Array:
    """Expected misclassification cost under the softmax, one value per example.

    Math:  l = sum_c softmax(z)_c · M[y, c], where M[i, j] is the cost of predicting class j when
    the truth is i (usually 0 on the diagonal). Unlike cross-entropy it knows which mistakes are
    cheap: confusing two similar classes can cost less than confusing dissimilar ones.

    Gradient: dl/dz_c = softmax(z)_c (M[y, c] - l). Ignored examples: value 0, gradient 0
    (a NaN in an ignored example's logits still makes its gradient row NaN).

    Args:
      logits: floating array [..., C, ...] with the class axis ``axis``.
      labels: integer array, the logits' shape without ``axis``.
      cost_matrix: [C, C] real array, rows = true class, columns = predicted class.
      axis: the class axis.
      ignore_index: optional label value whose examples give 0.

    Returns:
      Array of the shape of ``labels``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> m = jnp.array([[0.0, 1.0], [5.0, 0.0]])
      >>> jaxloss.expected_cost(jnp.zeros((1, 2)), jnp.array([1]), cost_matrix=m).tolist()
      [2.5]

    Reference: Elkan, "The Foundations of Cost-Sensitive Learning", IJCAI 2001.
    """
    fn = "expected_cost"
    z = _checks.check_floating(fn, "logits", logits)
    axis = normalise_axis(fn, axis, z.ndim)
    num_classes = z.shape[axis]
    y = check_labels(fn, labels, z, axis, num_classes, ignore_index)
    m = _checks.check_real(fn, "cost_matrix", cost_matrix)
    if m.shape != (num_classes, num_classes):
        raise ValueError(
            f"jaxloss.{fn}: `cost_matrix` must have shape (C, C) = ({num_classes}, {num_classes});"
            f" got {tuple(m.shape)}."
        )
    dtype = _checks.compute_dtype(z)
    z = jnp.moveaxis(z.astype(dtype), axis, -1)
    shift, log_s, _ = logsumexp_parts(z, axis=-1)
    # exp((z - m) - log-sum): exact where exp(z - lse) carries the rounding of lse. z - m is
    # written z + (-m) (the same number) so that XLA does not share it with the lse's own, which
    # it would materialise (measured: forward temporaries 8 MiB vs 4 MiB at [8192, 128]).
    probs = jnp.exp((z + -shift) - log_s)
    in_range = (y >= 0) & (y < num_classes)
    rows = m.astype(dtype)[jnp.where(in_range, y, 0)]  # [..., C]: the cost row of each label
    loss = jnp.sum(probs * rows, axis=-1)
    return finish_integer_loss(loss, y, num_classes, ignore_index, in_range)


# ----------------------------------------------------------------------------------------------
# Multi-label


@register(plot="binary_both")
def asymmetric_multilabel_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    gamma_positive: Any = 0.0,
    gamma_negative: Any = 4.0,
    margin: ArrayLike = 0.05,
) -> jax.Array:
    """Asymmetric loss (ASL) for multi-label classification, elementwise on sigmoid logits.

    Math (x = logit, t = label in [0, 1], p = σ(x), shifted probability p_m = max(p - m, 0)):
      l = t L+ + (1 - t) L-,
      L+ = (1 - p)^γ+ (-log p)             = exp(-γ+ softplus(x)) softplus(-x),
      L- = p_m^γ- (-log(1 - p_m)),          -log(1 - p_m) = -log(min(σ(-x) + m, 1)).
      Negatives with p <= m cost nothing (the margin discards easy negatives, including
      possibly mislabelled ones); with m = 0, L- = exp(-γ- softplus(-x)) softplus(x) in log space.
      γ+ = γ- = 0, m = 0 is binary cross-entropy; γ+ = γ- = γ, m = 0 is the sigmoid focal loss
      for hard labels (soft labels mix L+ and L- linearly, focal mixes p_t).

    Gradient (s = σ(x) σ(-x)):
      dL+/dx = -(1 - p)^γ+ [γ+ p (-log p) + (1 - p)],
      dL-/dx = γ- p_m^(γ- - 1) s (-log(1 - p_m)) + p_m^γ- s / (1 - p_m)  for p > m, 0 for p <= m
      (at the kink p = m the left value 0 is used; for γ- > 0 the derivative is continuous there);
      dl/dt = L+ - L-.

    Args:
      logits: floating array, any shape (e.g. [batch, num_labels]).
      labels: real array of the same shape, values in [0, 1] (multi-hot).
      gamma_positive: γ+ >= 0; the paper recommends 0 (the official class defaults to 1).
      gamma_negative: γ- >= 0 (4 in the paper and the official code).
      margin: probability margin m in [0, 1) (the official ``clip``, 0.05).

    Returns:
      Array of the shape of ``logits``. The official ``AsymmetricLoss`` returns ``-loss.sum()``
      and clamps log arguments at 1e-8 (so each term is at most 18.4); here the logs are exact and
      the reduction is yours: ``jaxloss.sum(values)`` matches it.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> v = jaxloss.asymmetric_multilabel_loss(jnp.array([2.0, -3.0, 0.0]),
      ...                                        jnp.array([1.0, 0.0, 0.0]))
      >>> [round(x, 6) for x in v.tolist()]
      [0.126928, 0.0, 0.024515]

    Reference: Ridnik et al., "Asymmetric Loss For Multi-Label Classification", ICCV 2021
    (arXiv:2009.14119).
    """
    fn = "asymmetric_multilabel_loss"
    _checks.require(fn, "gamma_positive", gamma_positive, _checks.NONNEGATIVE)
    _checks.require(fn, "gamma_negative", gamma_negative, _checks.NONNEGATIVE)
    _checks.require(fn, "margin", margin, _checks.UNIT_HALF_OPEN)
    x = _checks.check_floating(fn, "logits", logits)
    t = _checks.check_real(fn, "labels", labels)
    check_unit_labels(fn, "labels", labels)
    _checks.check_same_shape(fn, "logits", x, "labels", t)
    dtype = _checks.compute_dtype(x, t)
    x, t = x.astype(dtype), t.astype(dtype)
    gp = jnp.asarray(gamma_positive, dtype).reshape(())
    gn = jnp.asarray(gamma_negative, dtype).reshape(())
    m = jnp.asarray(margin, dtype).reshape(())

    sp_pos, sp_neg = softplus(x), softplus(-x)  # -log(1 - p), -log p
    # The weights (1 - p)^γ+ and p^γ- go through sigmoid_pow, whose derivative is one bounded
    # factor: the -log terms they multiply reach 3e38 at |x| = 3e38, and γ · weight · 3e38
    # formed first would be inf (times σ = 0: NaN).
    positive = sigmoid_pow(-x, gp) * sp_neg
    # Negatives. m = 0 exactly: p_m = p, all in log space. m > 0: p_m = p - m directly (no
    # cancellation issue beyond the one inherent at p ≈ m), -log(1 - p_m) = -log(σ(-x) + m).
    zero_m = m == 0
    p_m = jax.nn.sigmoid(x) - m
    inactive = ~zero_m & (p_m <= 0)  # NaN stays active
    # (the log's argument is 1 where unused, so its derivatives stay finite there, e.g. p ≈ 1e-27)
    log_pm = jnp.log(jnp.where(zero_m | inactive, 1, p_m))
    weight = jnp.where(zero_m, sigmoid_pow(x, gn), jnp.exp(gn * log_pm))
    nll = -logaddexp(-sp_pos, safe_log(m))  # -log(σ(-x) + m) in log space
    negative = jnp.where(inactive, 0, weight * nll)
    return t * positive + (1 - t) * negative
