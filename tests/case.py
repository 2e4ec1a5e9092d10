"""The record every registry entry fills in (see tests/registry.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

import jaxloss

Data = dict[str, np.ndarray]
Hyper = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Case:
    loss: str  # public name in jaxloss
    id: str
    positional: tuple[str, ...]  # names of the positional data arguments, in order
    make: Callable[[np.random.Generator], Data]  # data at smooth points (float64 / int)
    reference: Callable[[Data, Hyper], np.ndarray]
    grads: dict[str, Callable[[Data, Hyper], np.ndarray]]
    hyper: Hyper = dataclasses.field(default_factory=dict)
    class_axis: int | tuple[int, ...] | None = None  # axes the loss reduces (None: elementwise)
    vmap_axes: dict[str, int] = dataclasses.field(default_factory=dict)  # default 0
    extremes: Callable[[], list[Data]] = lambda: []
    grad_modes: tuple[str, ...] = ("fwd", "rev")  # check_grads modes; ("rev",) for a custom_vjp
    # NaN propagation (tests/test_conformance.py): a NaN in one input element makes NaN the
    # values that element feeds. "element": the value at the same index (class axes dropped);
    # "example": every value of its example (the index along the vmap axis), for losses that
    # couple the members of an example (set losses); "all": every value.
    nan_scope: str = "element"

    def __post_init__(self) -> None:
        if self.nan_scope not in ("element", "example", "all"):
            raise ValueError(f"{self.loss}[{self.id}]: nan_scope must be 'element', 'example' or "
                             f"'all'; got {self.nan_scope!r}")

    @property
    def fn(self) -> Callable[..., Any]:
        return getattr(jaxloss, self.loss)

    def call(self, data: dict[str, Any]) -> Any:
        args = [data[n] for n in self.positional]
        kwargs = {k: v for k, v in data.items() if k not in self.positional}
        return self.fn(*args, **kwargs, **self.hyper)
