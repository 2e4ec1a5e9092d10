"""jaxloss: loss functions for JAX, for people who design their own losses.

Every loss has the signature ``loss(predictions, targets, *, hyperparameters)`` (classification:
``(logits, labels, ...)``) and returns per-example (or per-element) values; reduce them with
:func:`mean` / :func:`sum` / :func:`mean_parts`, which follow one rule:
``sum(w·v over counted) / sum(w over counted)``, 0 when nothing is counted.
"""

from . import multitask
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
from ._divergence import kl_divergence, kl_divergence_with_log_targets
from ._reduce import WeightedMean, mean, mean_parts, sum
from ._regression import absolute_error, huber, log_cosh, smooth_l1, squared_error

__version__ = "0.1.0"

#: Every public loss function, by name. The conformance suite fails if one is missing from its
#: registry.
LOSSES = (
    "absolute_error",
    "binary_cross_entropy",
    "expected_cost",
    "huber",
    "kl_divergence",
    "kl_divergence_with_log_targets",
    "log_cosh",
    "nll_loss",
    "sigmoid_binary_cross_entropy",
    "smooth_l1",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "squared_error",
)

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
    "LOSSES",
    "WeightedMean",
    "absolute_error",
    "asymmetric",
    "asymmetric_binary",
    "binary_cross_entropy",
    "bounded",
    "class_weighted",
    "class_weights_from_counts",
    "detached",
    "expected_cost",
    "huber",
    "kl_divergence",
    "kl_divergence_with_log_targets",
    "linear_combination",
    "log_cosh",
    "log_space",
    "masked",
    "mean",
    "mean_parts",
    "multitask",
    "multitask_loss",
    "nll_loss",
    "relative",
    "rescaled",
    "scaled",
    "sigmoid_binary_cross_entropy",
    "smooth_l1",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "squared_error",
    "stop_gradient",
    "sum",
    "sum_losses",
    "weighted",
]
