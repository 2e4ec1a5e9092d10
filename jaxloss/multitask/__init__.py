"""Multi-task loss weighting from loss values: learned (uncertainty) and stateful (DWA, random).

The objective over named tasks with fixed or step-dependent weights is
:func:`jaxloss.multitask_loss`; the functions here produce the weights (or, for uncertainty
weighting, the whole weighted objective) from per-task scalar losses, e.g. its ``aux["losses"]``,
and the stateful ones' weights can be passed to it per call (``weights=``).

Multi-task *gradient* methods (PCGrad, MGDA, CAGrad, IMTL-G, Aligned-MTL, UPGrad, Nash-MTL,
GradNorm) take per-task gradients: :func:`task_value_and_jacobian` gives them from one forward
pass as a Jacobian pytree (leading task axis), and each aggregator maps it to one update direction,
directly or as an optax transform (``optax.chain(mt.upgrad().transform(), optax.adam(1e-3))``).
FAMO is a stateful loss-value weighting.
"""

from ._aggregators import (
    FAMO,
    Aggregator,
    AggregatorState,
    FAMOState,
    GradNorm,
    GradNormState,
    aligned_mtl,
    cagrad,
    famo,
    grad_norm,
    imtl_g,
    mean_aggregator,
    mgda,
    nash_mtl,
    pcgrad,
    sum_aggregator,
    upgrad,
)
from ._gradients import combine, gramian, task_value_and_jacobian, task_value_and_rep_jacobian
from ._weighting import (
    DWAState,
    DynamicWeightAveraging,
    RandomLossWeighting,
    RLWState,
    dynamic_weight_averaging,
    random_loss_weighting,
    uncertainty_weighting,
    uncertainty_weighting_init,
    weighted_total,
)

__all__ = [
    "FAMO",
    "Aggregator",
    "AggregatorState",
    "DWAState",
    "DynamicWeightAveraging",
    "FAMOState",
    "GradNorm",
    "GradNormState",
    "RLWState",
    "RandomLossWeighting",
    "aligned_mtl",
    "cagrad",
    "combine",
    "dynamic_weight_averaging",
    "famo",
    "grad_norm",
    "gramian",
    "imtl_g",
    "mean_aggregator",
    "mgda",
    "nash_mtl",
    "pcgrad",
    "random_loss_weighting",
    "sum_aggregator",
    "task_value_and_jacobian",
    "task_value_and_rep_jacobian",
    "uncertainty_weighting",
    "uncertainty_weighting_init",
    "upgrad",
    "weighted_total",
]
