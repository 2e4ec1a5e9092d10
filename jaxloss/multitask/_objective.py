"""The multi-task objective with given weights: the weighted sum of each task's mean loss.

:func:`multitask_loss` is the one place in jaxloss that reduces over the batch, because it has to
weigh whole tasks. The weights are fixed, a function of the step, or passed per call, e.g. those
returned by a weighting method's ``update`` (:mod:`jaxloss.multitask`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from .._core.combine import Loss, check_loss
from .._reduce import mean

__all__ = ["multitask_loss"]

#: What the objective returns: the total and ``{"losses": {task: mean}, "weights": {task: w}}``.
Objective = Callable[..., tuple[jax.Array, dict[str, dict[str, jax.Array]]]]


def multitask_loss(
    losses: Mapping[str, Loss],
    weights: Mapping[str, ArrayLike] | Callable[[Any], Mapping[str, ArrayLike]] | None = None,
) -> Objective:
    """An objective over named tasks: the weighted sum of each task's mean loss.

    Returns ``objective(predictions, targets, *, step=None, weights=None, where=None,
    sample_weights=None) -> (total, aux)`` where ``predictions`` and ``targets`` map task names to
    that task's arrays,

        total = sum_i w_i · mean_i,
        mean_i = jaxloss.mean(l_i(p_i, t_i), weights=sample_weights[i], where=where[i]),

    and ``aux = {"losses": {task: mean_i}, "weights": {task: w_i}}`` for logging: use it with
    ``jax.value_and_grad(objective, has_aux=True)``. Weights are fixed (a mapping), a function of
    the training step (``weights(step) -> mapping``, e.g. a warm-up), or given per call
    (``weights=`` at call time overrides, for the stateful weighting methods of
    :mod:`jaxloss.multitask`, whose ``update`` returns such a mapping). Default: 1 for every task.

    Gradient: sum_i w_i · d mean_i (the weights are constants for the gradient).

    Args:
      losses: non-empty mapping task name -> loss ``loss(predictions, targets)`` (hyperparameters
        already bound).
      weights: the task weights: a mapping task -> weight with every task as a key, a function
        ``weights(step) -> mapping`` (then ``step=`` is required at call time), or None (default:
        1 for every task).

    Returns:
      The objective ``objective(predictions, targets, *, step=None, weights=None, where=None,
      sample_weights=None) -> (total, aux)``: ``predictions`` and ``targets`` map every task to
      its arrays, ``where`` and ``sample_weights`` optionally map some tasks to a mask / sample
      weights for that task's mean; ``total`` is a scalar array and ``aux`` the dict above.

    Examples:
      >>> import jax.numpy as jnp, jaxloss, jaxloss.multitask as mt
      >>> obj = mt.multitask_loss({"depth": jaxloss.absolute_error,
      ...                          "seg": jaxloss.softmax_cross_entropy_with_integer_labels},
      ...                         weights={"depth": 1.0, "seg": 0.5})
      >>> total, aux = obj({"depth": jnp.ones(3), "seg": jnp.zeros((3, 4))},
      ...                  {"depth": jnp.zeros(3), "seg": jnp.array([0, 1, 2])})
      >>> round(float(total), 4), sorted(aux["losses"])
      (1.6931, ['depth', 'seg'])
    """
    if not isinstance(losses, Mapping) or not losses:
        raise ValueError(
            "jaxloss.multitask_loss: `losses` must be a non-empty mapping task -> loss."
        )
    for name, loss in losses.items():
        check_loss("multitask_loss", f"losses[{name!r}]", loss)
    tasks = tuple(losses)

    def _check_keys(arg: str, mapping: Any, required: bool) -> None:
        if mapping is None:
            if required:
                raise ValueError(f"jaxloss.multitask_loss: `{arg}` is required.")
            return
        if not isinstance(mapping, Mapping):
            raise TypeError(
                f"jaxloss.multitask_loss: `{arg}` must be a mapping task -> value; "
                f"got {type(mapping).__name__}."
            )
        keys = set(mapping)
        missing = sorted(set(tasks) - keys) if required else []
        extra = sorted(keys - set(tasks))
        if missing or extra:
            raise ValueError(
                f"jaxloss.multitask_loss: `{arg}` must have the tasks {sorted(tasks)} as keys; "
                f"missing {missing}, unknown {extra}."
            )

    fixed_weights = weights
    if isinstance(weights, Mapping):
        _check_keys("weights", weights, True)
    elif weights is not None and not callable(weights):
        raise TypeError(
            "jaxloss.multitask_loss: `weights` must be a mapping task -> weight, a function of the "
            f"step, or None; got {type(weights).__name__}."
        )

    def objective(
        predictions: Mapping[str, ArrayLike],
        targets: Mapping[str, ArrayLike],
        *,
        step: Any = None,
        weights: Mapping[str, ArrayLike] | None = None,
        where: Mapping[str, ArrayLike] | None = None,
        sample_weights: Mapping[str, ArrayLike] | None = None,
    ) -> tuple[jax.Array, dict[str, dict[str, jax.Array]]]:
        _check_keys("predictions", predictions, True)
        _check_keys("targets", targets, True)
        _check_keys("where", where, False)
        _check_keys("sample_weights", sample_weights, False)
        if weights is None:
            if callable(fixed_weights):
                if step is None:
                    raise ValueError(
                        "jaxloss.multitask_loss: the weights are a function of the step; "
                        "pass `step=`."
                    )
                weights = fixed_weights(step)
            else:
                weights = fixed_weights
        if weights is None:
            weights = dict.fromkeys(tasks, 1.0)
        _check_keys("weights", weights, True)
        means = {}
        for name in tasks:
            values = losses[name](predictions[name], targets[name])
            means[name] = mean(
                values,
                weights=None if sample_weights is None else sample_weights.get(name),
                where=None if where is None else where.get(name),
            )
        ws = {
            name: jax.lax.stop_gradient(jnp.asarray(weights[name], means[name].dtype))
            for name in tasks
        }
        total = jnp.zeros((), jnp.result_type(*means.values()))
        for name in tasks:
            total = total + ws[name] * means[name]
        return total, {"losses": means, "weights": ws}

    objective.__name__ = objective.__qualname__ = f"multitask_loss({', '.join(tasks)})"
    return objective
