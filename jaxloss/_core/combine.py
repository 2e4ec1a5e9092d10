"""What every combinator shares: the type of a loss (:class:`Loss`, public as ``jaxloss.Loss``),
the check that an argument is one, and the name of the loss a combinator returns
(``asymmetric(huber_loss)``, shown by ``repr`` and in traces).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol

import jax
from jax.typing import ArrayLike

__all__ = ["Loss", "check_loss", "loss_name", "named"]


class Loss(Protocol):
    """The type of a loss: ``loss(predictions, targets, **hyperparameters) -> jax.Array``.

    What every combinator takes and returns (``jaxloss.asymmetric(loss) -> Loss``), for type
    checkers. Every jaxloss loss is one, and so is a ``functools.partial`` of one, a lambda and
    your own function ``def my_loss(predictions: ArrayLike, targets: ArrayLike, *, k=1.0) ->
    jax.Array``: the two data arguments come first (classification: ``logits, labels``) and take
    any array-like (a ``jax.Array``, a NumPy array, a Python number); then any other positional
    arguments and keyword-only hyperparameters, which the protocol leaves open. The result is a
    ``jax.Array`` of per-element or per-example values. A function whose data arguments are
    annotated ``jax.Array`` only is rejected by a type checker (a combinator's loss passes on
    whatever it is called with): annotate them ``jax.typing.ArrayLike``. Nothing is checked at
    run time beyond being callable.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxloss
      >>> from jax.typing import ArrayLike
      >>> def cubed_error(predictions: ArrayLike, targets: ArrayLike) -> jax.Array:
      ...     return jnp.abs(jnp.asarray(predictions) - jnp.asarray(targets)) ** 3
      >>> def tilted(loss: jaxloss.Loss) -> jaxloss.Loss:
      ...     return jaxloss.asymmetric(loss, over=2.0)
      >>> values: jax.Array = tilted(cubed_error)(jnp.array([1.0, -1.0]), jnp.zeros(2))
      >>> values.tolist()
      [2.0, 1.0]
    """

    def __call__(
        self, predictions: ArrayLike, targets: ArrayLike, /, *args: Any, **hyperparameters: Any
    ) -> jax.Array:
        """Per-element or per-example loss values of ``predictions`` against ``targets``."""
        ...


def loss_name(loss: Any) -> str:
    """The name of a loss: its ``__name__``; for a ``functools.partial`` (hyperparameters bound
    in advance), the name of the function it wraps, so ``asymmetric(partial(huber, delta=2.0))``
    is named ``asymmetric(huber_loss)``; else the name of its type."""
    while isinstance(loss, functools.partial):
        loss = loss.func
    return getattr(loss, "__name__", type(loss).__name__)


def named(fn: Callable[..., jax.Array], name: str, doc: str) -> Loss:
    """``fn`` with its ``__name__`` and ``__qualname__`` set to ``name`` and its docstring to
    ``doc`` (the combinator's)."""
    fn.__name__ = name
    fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


def check_loss(fn: str, arg: str, loss: Any) -> None:
    """TypeError unless ``loss`` is callable, naming the combinator ``fn`` and its argument."""
    if not callable(loss):
        raise TypeError(
            f"jaxloss.{fn}: `{arg}` must be a loss function (a callable "
            f"loss(predictions, targets, **hyperparameters)); got {type(loss).__name__}."
        )
