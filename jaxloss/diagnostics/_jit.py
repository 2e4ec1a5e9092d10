"""One compiled program per (loss, Python-scalar hyperparameters), reused across calls.

Python scalars (and strings, None) are passed as static arguments, so inside the program they are
as concrete as in an eager call and the losses' hyperparameter checks run; arrays are traced. A
loss is first traced once with every hyperparameter concrete (``jax.eval_shape``), so that the
checks of array hyperparameters (class weights, ...) run too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax


def split(hyperparameters: dict[str, Any]) -> tuple[tuple[tuple[str, Any], ...], dict[str, Any]]:
    """(static items, dynamic dict): Python scalars and strings are static, the rest dynamic."""
    static, dynamic = [], {}
    for key, value in sorted(hyperparameters.items()):
        if value is None or isinstance(value, (bool, int, float, complex, str)):
            static.append((key, value))
        else:
            dynamic[key] = value
    return tuple(static), dynamic


def hashable(obj: Any) -> bool:
    try:
        hash(obj)
    except TypeError:
        return False
    return True


def call(
    jitted: Callable[..., Any],
    impl: Callable[..., Any],
    loss: Any,
    hyperparameters: dict[str, Any],
    *args: Any,
    **static: Any,
) -> Any:
    """``jitted(*args, dynamic, loss=, static=, **static)`` if the loss is hashable, else
    ``impl`` under a fresh ``jax.jit``."""
    items, dynamic = split(hyperparameters)
    if hashable(loss):
        return jitted(*args, dynamic, loss=loss, static=items, **static)
    return jax.jit(lambda *a: impl(*a[:-1], a[-1], loss=loss, static=items, **static))(
        *args, dynamic
    )


def require_elementwise(fn: str, values: Any, shape: tuple[int, ...]) -> None:
    """ValueError unless a loss returned one value per input element (a regression loss)."""
    if tuple(values.shape) != tuple(shape):
        raise ValueError(
            f"jaxloss.{fn}: the loss must be elementwise (one value per sample: a regression "
            f"loss); got shape {tuple(values.shape)} for inputs of shape {tuple(shape)}."
        )
