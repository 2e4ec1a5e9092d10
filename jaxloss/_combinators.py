"""Combinators: higher-order functions that build a loss from losses (loss in, loss out).

A *loss* here is any callable ``loss(predictions, targets, **hyperparameters)`` returning
per-element or per-example values, as every jaxloss loss does (its type, for type checkers, is
:class:`Loss`: array-likes in, a ``jax.Array`` out). Each combinator returns a new loss
with the same signature (extra keyword arguments are passed through to the wrapped loss), so they
nest: ``bounded(asymmetric(huber, over=2.0), 10.0)`` is a loss, named
``bounded(asymmetric(huber_loss))`` (a ``functools.partial`` is named by its function). Combinators
never reduce over the batch (``jaxloss.multitask.multitask_loss``, which weighs whole tasks, is
the one place that does).

Everything is pure JAX: jittable, vmappable, differentiable, with gradients that are the same
combination of the parts' gradients (tests/test_combinators.py checks each against the closed
forms of the conformance cases). Here: sums of losses (:func:`linear_combination`,
:func:`sum_losses`) and gradient control (:func:`stop_gradient`,
:func:`detached`); below, the combinators that weigh a loss and those that change which errors
dominate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._core.combine import Loss, check_loss, loss_name, named

# Re-exported for modules that imported it from here before it moved to _weighting.
from ._weighting import class_weights_from_counts as class_weights_from_counts

__all__ = [
    "Loss",
    "detached",
    "linear_combination",
    "stop_gradient",
    "sum_losses",
]


def stop_gradient(loss: Loss, *, argnames: Sequence[str] = ("targets",)) -> Loss:
    """Stops the gradient through the named inputs (``"predictions"``, ``"targets"``).

    E.g. in distillation with a learned teacher, ``stop_gradient(kl_divergence)`` keeps the
    student's loss from moving the teacher.

    Gradient: dl for the other input, 0 for these.

    Args:
      loss: the loss, any callable ``loss(predictions, targets, **hyperparameters)``.
      argnames: keyword-only sequence of ``"predictions"`` and/or ``"targets"`` (not a bare
        string): the inputs to stop (default ``("targets",)``).

    Returns:
      A loss ``stopped_loss(predictions, targets, **hyperparameters)`` with the values of
      ``loss`` (same shape and dtype) and no gradient through the named inputs.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxloss
      >>> se = jaxloss.stop_gradient(jaxloss.squared_error)
      >>> gp, gt = jax.grad(lambda p, t: se(p, t).sum(), argnums=(0, 1))(jnp.array([3.0]),
      ...                                                                 jnp.array([1.0]))
      >>> gp.tolist(), gt.tolist()
      ([4.0], [0.0])
    """
    check_loss("stop_gradient", "loss", loss)
    names = tuple(argnames)
    bad = [n for n in names if n not in ("predictions", "targets")]
    if bad or isinstance(argnames, str):
        raise ValueError(
            "jaxloss.stop_gradient: `argnames` must be a sequence of 'predictions' and/or "
            f"'targets'; got {argnames!r}."
        )

    def stopped_loss(predictions: ArrayLike, targets: ArrayLike, **kwargs: Any) -> jax.Array:
        if "predictions" in names:
            predictions = jax.lax.stop_gradient(predictions)
        if "targets" in names:
            targets = jax.lax.stop_gradient(targets)
        return loss(predictions, targets, **kwargs)

    return named(stopped_loss, f"stop_gradient({loss_name(loss)})", stop_gradient.__doc__ or "")


def detached(loss: Loss) -> Loss:
    """The loss's value with no gradient at all: a term to log or monitor inside a sum.

    l'(p, t) = stop_gradient(l(p, t)).

    Gradient: 0 with respect to every input.

    Args:
      loss: the loss, any callable ``loss(predictions, targets, **hyperparameters)``.

    Returns:
      A loss ``detached_loss(predictions, targets, **hyperparameters)`` with the values of
      ``loss`` (same shape and dtype) and a zero gradient.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxloss
      >>> se = jaxloss.detached(jaxloss.squared_error)
      >>> se(jnp.array([3.0]), jnp.array([1.0])).tolist()
      [4.0]
      >>> jax.grad(lambda p: se(p, jnp.array([1.0])).sum())(jnp.array([3.0])).tolist()
      [0.0]
    """
    check_loss("detached", "loss", loss)

    def detached_loss(predictions: ArrayLike, targets: ArrayLike, **kwargs: Any) -> jax.Array:
        return jax.lax.stop_gradient(loss(predictions, targets, **kwargs))

    return named(detached_loss, f"detached({loss_name(loss)})", detached.__doc__ or "")


def linear_combination(losses: Sequence[Loss], coefficients: Sequence[ArrayLike]) -> Loss:
    """A linear combination of losses on the same inputs: l' = sum_k c_k l_k(p, t).

    Bind each loss's hyperparameters first
    (``functools.partial(jaxloss.huber_loss, delta=0.5)``); the combined loss takes no
    hyperparameters of its own. All losses must give outputs of the same shape.

    Gradient: sum_k c_k dl_k.

    Args:
      losses: non-empty sequence of losses ``loss(predictions, targets)`` (hyperparameters
        already bound), all giving outputs of one shape.
      coefficients: one real coefficient per loss (same length as ``losses``).

    Returns:
      A loss ``combined_loss(predictions, targets)`` (no hyperparameters) returning
      sum_k c_k l_k(predictions, targets): the losses' common output shape.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> l = jaxloss.linear_combination([jaxloss.squared_error, jaxloss.absolute_error],
      ...                                [1.0, 0.5])
      >>> l(jnp.array([2.0]), jnp.array([0.0])).tolist()
      [5.0]
    """
    losses = list(losses)
    coefficients = list(coefficients)
    if not losses:
        raise ValueError("jaxloss.linear_combination: `losses` must not be empty.")
    if len(losses) != len(coefficients):
        raise ValueError(
            "jaxloss.linear_combination: `losses` and `coefficients` must have the same length; "
            f"got {len(losses)} and {len(coefficients)}."
        )
    for i, loss in enumerate(losses):
        check_loss("linear_combination", f"losses[{i}]", loss)

    def combined_loss(predictions: ArrayLike, targets: ArrayLike) -> jax.Array:
        values = [
            jnp.multiply(c, loss(predictions, targets))
            for c, loss in zip(coefficients, losses, strict=True)
        ]
        shapes = {v.shape for v in values}
        if len(shapes) != 1:
            raise ValueError(
                "jaxloss.linear_combination: the losses' outputs must have one shape; got "
                f"{[tuple(v.shape) for v in values]}."
            )
        total = values[0]
        for v in values[1:]:
            total = total + v
        return total

    name = " + ".join(f"{c}*{loss_name(l)}" for c, l in zip(coefficients, losses, strict=True))
    return named(combined_loss, f"linear_combination({name})", linear_combination.__doc__ or "")


def sum_losses(*losses: Loss) -> Loss:
    """The sum of losses on the same inputs: ``linear_combination(losses, [1, ..., 1])``.

    l' = sum_k l_k(p, t).

    Gradient: sum_k dl_k.

    Args:
      *losses: one or more losses ``loss(predictions, targets)`` (hyperparameters already
        bound, e.g. with ``functools.partial``), all giving outputs of one shape.

    Returns:
      A loss ``combined_loss(predictions, targets)`` (no hyperparameters) returning
      sum_k l_k(predictions, targets): the losses' common output shape.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> l = jaxloss.sum_losses(jaxloss.squared_error, jaxloss.absolute_error)
      >>> l(jnp.array([2.0]), jnp.array([0.0])).tolist()
      [6.0]
    """
    return linear_combination(losses, [1.0] * len(losses))
