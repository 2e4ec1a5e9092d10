"""jaxloss: loss functions for JAX, for people who design their own losses.

Every loss has the signature ``loss(predictions, targets, *, hyperparameters)`` (classification:
``(logits, labels, ...)``) and returns per-example (or per-element) values; reduce them with
:func:`mean` / :func:`sum` / :func:`mean_parts`, which follow one rule:
``sum(w·v over counted) / sum(w over counted)``, 0 when nothing is counted.
"""

# One import block per family module, grouped by family (``# isort: split`` keeps the order).
from . import fused, multitask

# isort: split
# Regression
from ._adaptive import adaptive_robust_init, adaptive_robust_nll, adaptive_robust_parameters
from ._asymmetric import expectile_loss, linex_loss, pinball_loss, quantile_huber_loss
from ._barron import barron, barron_nll
from ._likelihood import (
    gaussian_nll,
    gaussian_nll_with_log_variance,
    poisson_nll,
    poisson_nll_with_rates,
)
from ._regression import absolute_error, huber, log_cosh, smooth_l1, squared_error
from ._relative import (
    absolute_percentage_error,
    log_ratio_error,
    squared_logarithmic_error,
    symmetric_absolute_percentage_error,
)
from ._robust import cauchy, charbonnier, geman_mcclure, tukey_biweight, welsch
from ._scoring import crps_ensemble, crps_gaussian, crps_quantile, energy_score
from ._wing import adaptive_wing, wing

# isort: split
# Classification
from ._classification import (
    binary_cross_entropy,
    nll_loss,
    sigmoid_binary_cross_entropy,
    softmax_cross_entropy,
    softmax_cross_entropy_with_integer_labels,
)
from ._ctc import ctc_loss
from ._divergence import jensen_shannon_divergence, kl_divergence, kl_divergence_with_log_targets
from ._fenchel_young import (
    entmax,
    entmax15,
    entmax15_loss,
    entmax_loss,
    fenchel_young_loss,
    multiclass_perceptron_loss,
    multiclass_sparsemax_loss,
    perceptron_loss,
    sparsemax,
    sparsemax_loss,
)
from ._focal import (
    class_balanced_focal_loss,
    poly1_cross_entropy,
    sigmoid_focal_loss,
    softmax_focal_loss,
)
from ._imbalance import (
    asymmetric_multilabel_loss,
    class_balanced_cross_entropy,
    expected_cost,
    generalized_cross_entropy,
    ldam_loss,
    logit_adjusted_cross_entropy,
)
from ._lovasz import lovasz_hinge_loss, lovasz_softmax_loss
from ._overlap import (
    dice_loss,
    focal_tversky_loss,
    generalized_dice_loss,
    jaccard_loss,
    tversky_loss,
)

# isort: split
# Margin, metric learning and ranking
from ._contrastive import info_nce, siglip, supervised_contrastive
from ._margin import (
    contrastive,
    cosine_embedding,
    hinge,
    margin_ranking,
    multiclass_hinge,
    squared_hinge,
    triplet_margin,
)
from ._ranking import (
    approx_mrr_loss,
    approx_ndcg_loss,
    listmle_loss,
    mrr_metric,
    ndcg_metric,
    pairwise_hinge_loss,
    pairwise_logistic_loss,
    pairwise_soft_zero_one_loss,
    pairwise_squared_loss,
    pointwise_sigmoid_loss,
    pointwise_squared_loss,
    ranking_softmax_loss,
)

# isort: split
# Post-training
from ._policy_gradient import (
    cispo_loss,
    group_relative_advantages,
    policy_gradient_loss,
    sequence_log_probs,
)
from ._preference import DPO_LOSS_TYPES, cpo_loss, dpo_loss, kto_loss, orpo_loss, simpo_loss

# isort: split
# Combinators and reductions
from ._combinators import detached, linear_combination, stop_gradient, sum_losses
from ._reduce import WeightedMean, mean, mean_parts, sum
from ._transforms import asymmetric, bounded, log_space, relative, rescaled
from ._weighting import (
    asymmetric_binary,
    class_weighted,
    class_weights_from_counts,
    masked,
    scaled,
    weighted,
)

# isort: split
# Fused losses, multi-task objective, the registry
from ._core.registry import LossInfo, loss_info, registered
from .fused import linear_cross_entropy
from .multitask import multitask_loss

__version__ = "0.1.0"

#: Every public loss function, by name: each one is declared once, by ``@register`` where it is
#: defined (``jaxloss/_core/registry.py``). The conformance suite fails if one has no test case.
LOSSES = registered()

#: Higher-order functions that build losses from losses (and the class-weight helper).
COMBINATORS = (
    "asymmetric",
    "asymmetric_binary",
    "bounded",
    "class_weighted",
    "class_weights_from_counts",
    "detached",
    "linear_combination",
    "log_space",
    "masked",
    "multitask_loss",
    "relative",
    "rescaled",
    "scaled",
    "stop_gradient",
    "sum_losses",
    "weighted",
)

__all__ = [  # literal, so that static tools see the exports
    "COMBINATORS",
    "DPO_LOSS_TYPES",
    "LOSSES",
    "LossInfo",
    "WeightedMean",
    "absolute_error",
    "absolute_percentage_error",
    "adaptive_robust_init",
    "adaptive_robust_nll",
    "adaptive_robust_parameters",
    "adaptive_wing",
    "approx_mrr_loss",
    "approx_ndcg_loss",
    "asymmetric",
    "asymmetric_binary",
    "asymmetric_multilabel_loss",
    "barron",
    "barron_nll",
    "binary_cross_entropy",
    "bounded",
    "cauchy",
    "charbonnier",
    "cispo_loss",
    "class_balanced_cross_entropy",
    "class_balanced_focal_loss",
    "class_weighted",
    "class_weights_from_counts",
    "contrastive",
    "cosine_embedding",
    "cpo_loss",
    "crps_ensemble",
    "crps_gaussian",
    "crps_quantile",
    "ctc_loss",
    "detached",
    "dice_loss",
    "dpo_loss",
    "energy_score",
    "entmax",
    "entmax15",
    "entmax15_loss",
    "entmax_loss",
    "expected_cost",
    "expectile_loss",
    "fenchel_young_loss",
    "focal_tversky_loss",
    "fused",
    "gaussian_nll",
    "gaussian_nll_with_log_variance",
    "geman_mcclure",
    "generalized_cross_entropy",
    "generalized_dice_loss",
    "group_relative_advantages",
    "hinge",
    "huber",
    "info_nce",
    "jaccard_loss",
    "jensen_shannon_divergence",
    "kl_divergence",
    "kl_divergence_with_log_targets",
    "kto_loss",
    "ldam_loss",
    "linear_combination",
    "linear_cross_entropy",
    "linex_loss",
    "listmle_loss",
    "log_cosh",
    "log_ratio_error",
    "log_space",
    "logit_adjusted_cross_entropy",
    "loss_info",
    "lovasz_hinge_loss",
    "lovasz_softmax_loss",
    "margin_ranking",
    "masked",
    "mean",
    "mean_parts",
    "mrr_metric",
    "multiclass_hinge",
    "multiclass_perceptron_loss",
    "multiclass_sparsemax_loss",
    "multitask",
    "multitask_loss",
    "ndcg_metric",
    "nll_loss",
    "orpo_loss",
    "pairwise_hinge_loss",
    "pairwise_logistic_loss",
    "pairwise_soft_zero_one_loss",
    "pairwise_squared_loss",
    "perceptron_loss",
    "pinball_loss",
    "pointwise_sigmoid_loss",
    "pointwise_squared_loss",
    "poisson_nll",
    "poisson_nll_with_rates",
    "policy_gradient_loss",
    "poly1_cross_entropy",
    "quantile_huber_loss",
    "ranking_softmax_loss",
    "relative",
    "rescaled",
    "scaled",
    "sequence_log_probs",
    "siglip",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "simpo_loss",
    "smooth_l1",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "softmax_focal_loss",
    "sparsemax",
    "sparsemax_loss",
    "squared_error",
    "squared_hinge",
    "squared_logarithmic_error",
    "stop_gradient",
    "sum",
    "sum_losses",
    "supervised_contrastive",
    "symmetric_absolute_percentage_error",
    "triplet_margin",
    "tukey_biweight",
    "tversky_loss",
    "weighted",
    "welsch",
    "wing",
]
