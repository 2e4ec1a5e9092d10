"""Loss specs of the command line (``plot``, ``inspect``): which loss, with which hyperparameters.

- ``NAME`` or ``NAME:key=value,key=value``: a loss of ``jaxloss.LOSSES``; keys are checked
  against its keyword-only hyperparameters.
- ``MODULE:FUNCTION`` or ``MODULE:FUNCTION:key=value,...``: any loss importable from Python, e.g.
  one built with the combinators (``mylosses:demand_loss``, with ``demand_loss =
  jaxloss.asymmetric(jaxloss.squared_error, under=4.0)`` in ``mylosses.py``). ``FUNCTION`` may be
  a dotted attribute path. Keys are checked against its keyword-only parameters unless it takes
  ``**kwargs`` (combinator-built losses pass them on).

Values are Python literals (numbers, tuples, True/False) or bare words; tuples and lists become
float64 NumPy arrays.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import importlib
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

import jaxloss

__all__ = ["RESERVED", "Spec", "SpecError", "hyperparameter_names", "parse", "show"]

# Keyword arguments the commands set themselves (structure, not hyperparameters).
RESERVED = {"axis", "where", "ignore_index", "num_spatial_dims", "weight_layout", "block_size"}


class SpecError(ValueError):
    """A loss, hyperparameter, kind or x-range that cannot be used, named in the message.

    Raised by :func:`jaxloss.app.plot_loss` and :func:`jaxloss.app.curves`; the command line
    prints it as one line and exits with status 2.
    """


@dataclasses.dataclass(frozen=True)
class Spec:
    """A parsed spec: ``name`` is the registered name or ``MODULE:FUNCTION``."""

    name: str
    function: Callable[..., Any]
    hyperparameters: dict[str, Any]
    registered: bool


def _value(text: str) -> Any:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word, e.g. kind=weston_watkins
    if isinstance(value, (list, tuple)):
        return np.asarray(value, np.float64)
    return value


def show(value: Any) -> str:
    """A hyperparameter value as a label shows it (``0.5``, ``(50,5)``, ``weston_watkins``)."""
    if isinstance(value, np.ndarray):
        return "(" + ",".join(f"{v:g}" for v in value.ravel()) + ")"
    return f"{value:g}" if isinstance(value, float) else str(value)


def hyperparameter_names(function: Callable[..., Any]) -> list[str] | None:
    """The keyword-only parameters of a loss (less ``RESERVED``); None if it takes ``**kwargs``."""
    try:
        params = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [
        p.name
        for p in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in RESERVED
    ]


def _is_path(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def _import(spec: str, module: str, path: str) -> Callable[..., Any]:
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as err:
        raise SpecError(f"{spec!r}: cannot import module {module!r} ({err}).") from err
    for part in path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SpecError(f"{spec!r}: module {module!r} has no attribute {path!r}.") from None
    if not callable(obj):
        raise SpecError(f"{spec!r}: {module}:{path} is not a loss function (not callable).")
    return obj


def parse(spec: str) -> Spec:
    """``"huber_loss:delta=0.5"`` -> Spec("huber_loss", jaxloss.huber_loss, {"delta": 0.5}, True);
    also ``"module:function[:key=value,...]"``. Raises :class:`SpecError` naming what is wrong."""
    name, _, rest = spec.partition(":")
    name = name.strip()
    if name in jaxloss.LOSSES:
        function = getattr(jaxloss, name)
        registered = True
    else:
        path, _, after = rest.partition(":")
        if not (_is_path(name) and _is_path(path.strip())):
            close = difflib.get_close_matches(name, jaxloss.LOSSES, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise SpecError(
                f"unknown loss {name!r} in {spec!r}.{hint} `python -m jaxloss plot --list` lists "
                "every registered loss; a loss of your own is named MODULE:FUNCTION."
            )
        function = _import(spec, name, path.strip())
        name, rest, registered = f"{name}:{path.strip()}", after, False
    allowed = hyperparameter_names(function)
    hp: dict[str, Any] = {}
    # Split on commas outside brackets, so that samples_per_class=(50,5) stays one item.
    items, depth, cur = [], 0, ""
    for ch in rest:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    for item in (i.strip() for i in items):
        if not item:
            continue
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key or not text.strip():
            raise SpecError(
                f"{spec!r}: hyperparameters are written key=value (e.g. huber_loss:delta=0.5); "
                f"got {item!r}."
            )
        if allowed is not None and key not in allowed:
            raise SpecError(
                f"{spec!r}: {name} has no hyperparameter {key!r}; it takes "
                f"{', '.join(allowed) or 'none'}."
            )
        hp[key] = _value(text.strip())
    return Spec(name, function, hp, registered)
