"""Multi-task loss weighting from loss values: learned (uncertainty) and stateful (DWA, random).

The objective over named tasks with fixed or step-dependent weights is
:func:`jaxloss.multitask_loss`; the functions here produce the weights (or, for uncertainty
weighting, the whole weighted objective) from per-task scalar losses, e.g. its ``aux["losses"]``,
and the stateful ones' weights can be passed to it per call (``weights=``).
"""

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
    "DWAState",
    "DynamicWeightAveraging",
    "RLWState",
    "RandomLossWeighting",
    "dynamic_weight_averaging",
    "random_loss_weighting",
    "uncertainty_weighting",
    "uncertainty_weighting_init",
    "weighted_total",
]
