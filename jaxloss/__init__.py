"""jaxloss: loss functions for JAX, for people who design their own losses.

Every loss has the signature ``loss(predictions, targets, *, hyperparameters)`` (classification:
``(logits, labels, ...)``) and returns per-example (or per-element) values; reduce them with
:func:`mean` / :func:`sum` / :func:`mean_parts`, which follow one rule:
``sum(w·v over counted) / sum(w over counted)``, 0 when nothing is counted.
"""

from . import fused, multitask
from ._asymmetric import expectile_loss, linex_loss, pinball_loss, quantile_huber_loss
from ._classification import (
    binary_cross_entropy,
    expected_cost,
    nll_loss,
    sigmoid_binary_cross_entropy,
    softmax_cross_entropy,
    softmax_cross_entropy_with_integer_labels,
)
from ._combinators import (
    asymmetric,
    asymmetric_binary,
    bounded,
    class_weighted,
    class_weights_from_counts,
    detached,
    linear_combination,
    log_space,
    masked,
    multitask_loss,
    relative,
    rescaled,
    scaled,
    stop_gradient,
    sum_losses,
    weighted,
)
from ._core.registry import LossInfo, loss_info, registered
from ._divergence import kl_divergence, kl_divergence_with_log_targets
from ._imbalance import (
    asymmetric_multilabel_loss,
    class_balanced_cross_entropy,
    class_balanced_focal_loss,
    generalized_cross_entropy,
    ldam_loss,
    logit_adjusted_cross_entropy,
    poly1_cross_entropy,
    sigmoid_focal_loss,
    softmax_focal_loss,
)
from ._js import jensen_shannon_divergence
from ._likelihood import (
    gaussian_nll,
    gaussian_nll_with_log_variance,
    poisson_nll,
    poisson_nll_with_rates,
)
from ._lm import distillation_loss, token_log_probs
from ._metric import (
    contrastive,
    cosine_embedding,
    hinge,
    info_nce,
    margin_ranking,
    multiclass_hinge,
    siglip,
    squared_hinge,
    supervised_contrastive,
    triplet_margin,
)
from ._overlap import (
    dice_loss,
    focal_tversky_loss,
    generalized_dice_loss,
    jaccard_loss,
    tversky_loss,
)
from ._reduce import WeightedMean, mean, mean_parts, sum
from ._regression import absolute_error, huber, log_cosh, smooth_l1, squared_error
from ._relative import (
    absolute_percentage_error,
    log_ratio_error,
    squared_logarithmic_error,
    symmetric_absolute_percentage_error,
)
from ._robust import (
    adaptive_robust_init,
    adaptive_robust_nll,
    adaptive_robust_parameters,
    adaptive_wing,
    barron,
    barron_nll,
    cauchy,
    charbonnier,
    geman_mcclure,
    tukey_biweight,
    welsch,
    wing,
)
from .fused import (
    linear_cross_entropy,
    linear_distillation,
    linear_distillation_topk,
    linear_log_probs,
)

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
    "loss_info",
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
    "LOSSES",
    "LossInfo",
    "WeightedMean",
    "absolute_error",
    "absolute_percentage_error",
    "adaptive_robust_init",
    "adaptive_robust_nll",
    "adaptive_robust_parameters",
    "adaptive_wing",
    "asymmetric",
    "asymmetric_binary",
    "asymmetric_multilabel_loss",
    "barron",
    "barron_nll",
    "binary_cross_entropy",
    "bounded",
    "cauchy",
    "charbonnier",
    "class_balanced_cross_entropy",
    "class_balanced_focal_loss",
    "class_weighted",
    "class_weights_from_counts",
    "contrastive",
    "cosine_embedding",
    "detached",
    "dice_loss",
    "distillation_loss",
    "expected_cost",
    "expectile_loss",
    "focal_tversky_loss",
    "fused",
    "gaussian_nll",
    "gaussian_nll_with_log_variance",
    "geman_mcclure",
    "generalized_cross_entropy",
    "generalized_dice_loss",
    "hinge",
    "huber",
    "info_nce",
    "jaccard_loss",
    "jensen_shannon_divergence",
    "kl_divergence",
    "kl_divergence_with_log_targets",
    "ldam_loss",
    "linear_combination",
    "linear_cross_entropy",
    "linear_distillation",
    "linear_distillation_topk",
    "linear_log_probs",
    "linex_loss",
    "log_cosh",
    "log_ratio_error",
    "log_space",
    "logit_adjusted_cross_entropy",
    "loss_info",
    "margin_ranking",
    "masked",
    "mean",
    "mean_parts",
    "multiclass_hinge",
    "multitask",
    "multitask_loss",
    "nll_loss",
    "pinball_loss",
    "poisson_nll",
    "poisson_nll_with_rates",
    "poly1_cross_entropy",
    "quantile_huber_loss",
    "relative",
    "rescaled",
    "scaled",
    "siglip",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "smooth_l1",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "softmax_focal_loss",
    "squared_error",
    "squared_hinge",
    "squared_logarithmic_error",
    "stop_gradient",
    "sum",
    "sum_losses",
    "supervised_contrastive",
    "symmetric_absolute_percentage_error",
    "token_log_probs",
    "triplet_margin",
    "tukey_biweight",
    "tversky_loss",
    "weighted",
    "welsch",
    "wing",
]
