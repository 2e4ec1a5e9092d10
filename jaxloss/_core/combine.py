"""What every combinator shares: the type of a loss, the check that an argument is one, and the
name of the loss a combinator returns (``asymmetric(huber_loss)``, shown by ``repr`` and in traces).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax

__all__ = ["Loss", "check_loss", "loss_name", "named"]

Loss = Callable[..., jax.Array]


def loss_name(loss: Any) -> str:
    """The name of a loss: its ``__name__``; for a ``functools.partial`` (hyperparameters bound
    in advance), the name of the function it wraps, so ``asymmetric(partial(huber, delta=2.0))``
    is named ``asymmetric(huber_loss)``; else the name of its type."""
    while isinstance(loss, functools.partial):
        loss = loss.func
    return getattr(loss, "__name__", type(loss).__name__)


def named(fn: Loss, name: str, doc: str) -> Loss:
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
