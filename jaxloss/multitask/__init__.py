"""Multi-task learning: the objective over named tasks, loss-value weighting and gradient
aggregation.

- :func:`multitask_loss`: the weighted sum of each task's mean loss, with fixed, step-dependent
  or per-call weights.
- **Loss-value weighting** (``_weighting``, ``_weighting_adaptive``): uncertainty weighting (its
  weights are learned with the model), DWA, random loss weighting, GradNorm and FAMO; the weights
  go to :func:`weighted_total` (or ``multitask_loss(..., weights=)``).
- **Gradient aggregation** (``_aggregator``, ``_aggregators``, ``_balancing``; solvers in
  ``_solvers``): sum, mean, PCGrad, MGDA, CAGrad, UPGrad, IMTL-G, Aligned-MTL, Nash-MTL map the
  per-task Jacobian to one update direction.
- **Per-task gradients** (``_gradients``): :func:`task_value_and_jacobian` (one forward pass),
  :func:`task_value_and_trunk_jacobian` (a shared trunk and task heads: the trunk's Jacobian and
  the heads' summed gradient), :func:`task_value_and_rep_jacobian` (MGDA-UB), :func:`gramian`,
  :func:`combine`.

**One protocol for every stateful method**, weighting or aggregator, optax's style::

    state = method.init(task_names)                  # + key= for the randomised ones
    weights, state = method.update(task_losses, state)   # weighting: a dict task -> weight
    direction, state = agg.update(jacobian, state)       # aggregator: Σ_i w_i ∇L_i

Tasks are named; wherever an order is needed (a Jacobian's rows, a stack) it is the sorted order
of the names. Weights returned by ``update`` are dicts task -> scalar, and states record them
under ``state.weights``.
"""

from ._aggregator import Aggregator, AggregatorState
from ._aggregators import cagrad, mean_aggregator, mgda, pcgrad, sum_aggregator, upgrad
from ._balancing import aligned_mtl, imtl_g, nash_mtl
from ._gradients import (
    combine,
    gramian,
    task_value_and_jacobian,
    task_value_and_rep_jacobian,
    task_value_and_trunk_jacobian,
)
from ._objective import multitask_loss
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
from ._weighting_adaptive import FAMO, FAMOState, GradNorm, GradNormState, famo, grad_norm

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
    "multitask_loss",
    "nash_mtl",
    "pcgrad",
    "random_loss_weighting",
    "sum_aggregator",
    "task_value_and_jacobian",
    "task_value_and_rep_jacobian",
    "task_value_and_trunk_jacobian",
    "uncertainty_weighting",
    "uncertainty_weighting_init",
    "upgrad",
    "weighted_total",
]
