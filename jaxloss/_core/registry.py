"""What exists: every public loss declares itself once, where it is defined.

``@register(plot=...)`` above a loss's ``def`` records it (and gives its eager calls the compiled
fast path of ``dispatch.eager_jit``); ``jaxloss.LOSSES`` and
``jaxloss.loss_info`` read this record, so a new loss is written into its family module and nowhere
else in the package. ``plot`` names how the plotting app reduces the loss to a function of one
scalar (``"residual"``, ``"softmax"``, ...; the app's table says what each key means) and
``plot_defaults`` the hyperparameters it needs to be drawn (required ones without a default).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from .dispatch import eager_jit

__all__ = ["LossInfo", "loss_info", "register", "registered"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class LossInfo:
    """What the library records about one public loss.

    Attributes:
      name: the public name (``jaxloss.<name>`` or ``jaxloss.fused.<name>``).
      module: the module that defines it.
      plot: how ``python -m jaxloss plot`` reduces it to one scalar, or ``None`` when it cannot be
        drawn on one axis.
      plot_defaults: hyperparameters used to draw it when the user gives none.
    """

    name: str
    module: str
    plot: str | None
    plot_defaults: Mapping[str, Any]


_REGISTRY: dict[str, LossInfo] = {}


def register(
    *, plot: str | None, plot_defaults: Mapping[str, Any] | None = None
) -> Callable[[F], F]:
    """Records the decorated function as a public loss; returns it with the eager fast path of
    :func:`jaxloss._core.dispatch.eager_jit` (same values, same checks)."""

    def decorate(fn: F) -> F:
        name = fn.__name__
        if name in _REGISTRY:
            raise RuntimeError(f"jaxloss: two losses are registered as {name!r}.")
        _REGISTRY[name] = LossInfo(
            name=name,
            module=fn.__module__,
            plot=plot,
            plot_defaults=MappingProxyType(dict(plot_defaults or {})),
        )
        return eager_jit(fn)

    return decorate


def registered() -> tuple[str, ...]:
    """The names of every registered loss, sorted."""
    return tuple(sorted(_REGISTRY))


def loss_info(name: str | Callable[..., Any]) -> LossInfo:
    """The record of a public loss, by name or by the function itself.

    Args:
      name: a name in ``jaxloss.LOSSES`` or the loss function.

    Returns:
      Its :class:`LossInfo`.

    Raises:
      KeyError: if it is not a registered loss (a loss of one's own, say).

    Examples:
      >>> import jaxloss
      >>> jaxloss.loss_info("huber_loss").plot
      'residual'
    """
    key = name if isinstance(name, str) else getattr(name, "__name__", repr(name))
    info = _REGISTRY.get(key)
    if info is None or not (
        isinstance(name, str) or getattr(name, "__module__", None) == info.module
    ):
        raise KeyError(f"jaxloss.loss_info: {key!r} is not a registered loss; see jaxloss.LOSSES.")
    return info
