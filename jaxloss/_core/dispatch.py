"""Eager calls at the cost of a compiled one, with every check kept.

Called outside any JAX transformation, a loss would run op by op: each of its dozens of small
operations dispatched on its own (hundreds of µs for a loss on 128 numbers; the same loss under
``jax.jit`` costs a few µs). :func:`eager_jit` compiles the loss for a call signature (array
shapes and dtypes, Python hyperparameter values) the second time it sees it, and reuses it; the
first call runs op by op, so a one-off call pays no compilation.

A compiled loss sees its array inputs as tracers, so a check that looks at their *values*
(probabilities in [0, 1], non-negative class weights, labels in range) would be skipped. Two rules
keep every check:

- The value checks of ``_core/checks.py`` marked :func:`replayable` do not run while the loss is
  traced for the cache; they are recorded, with the input each one looks at, and replayed on the
  concrete inputs before every cached call (a NumPy comparison: microseconds). Their errors are the
  eager ones, word for word.
- Any other look at an input's value while tracing (``concrete_array`` / ``concrete_float`` /
  ``concrete_min`` on an input, or a check on a value computed from inputs) marks that signature
  *uncacheable*: such calls run eagerly, op by op, as before. Slower, never less checked.

Inside ``jit``, ``grad``, ``vmap`` or ``shard_map`` (any input is a tracer) and under
``jax.disable_jit()``, the loss is called directly.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import jax
import numpy as np

__all__ = ["eager_jit", "input_leaf", "note_value_read", "replayable"]

F = TypeVar("F", bound=Callable[..., Any])

_CONFIG: Any = jax.config
_MAX_ENTRIES = 64  # compiled signatures kept per function (least recently used dropped)


@dataclasses.dataclass
class _Recording:
    leaf_of: dict[int, int]  # id(input tracer) -> index of the input leaf
    replays: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]]
    cacheable: bool = True


_RECORDING: contextvars.ContextVar[_Recording | None] = contextvars.ContextVar(
    "jaxloss_recording", default=None
)


@dataclasses.dataclass(frozen=True)
class _Leaf:
    index: int


def input_leaf(x: Any) -> int | None:
    """While a loss is traced for the eager cache: the index of the input ``x`` is, else None."""
    rec = _RECORDING.get()
    if rec is None:
        return None
    return rec.leaf_of.get(id(x))


def note_value_read(x: Any) -> None:
    """Called where a value is read at trace time; a tracer read while recording makes the
    signature uncacheable (it will run eagerly)."""
    rec = _RECORDING.get()
    if rec is not None and isinstance(x, jax.core.Tracer):
        rec.cacheable = False


def replayable(check: F) -> F:
    """Marks a value check (returns None, raises on bad input) as replayable on concrete inputs."""

    @functools.wraps(check)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        rec = _RECORDING.get()
        if rec is None:
            return check(*args, **kwargs)
        leaves, treedef = jax.tree.flatten((args, kwargs))
        if not any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
            return check(*args, **kwargs)  # static values: checked once, while tracing
        swapped = []
        for leaf in leaves:
            if isinstance(leaf, jax.core.Tracer):
                index = rec.leaf_of.get(id(leaf))
                if index is None:  # a value computed from the inputs: cannot be replayed
                    rec.cacheable = False
                    return None
                swapped.append(_Leaf(index))
            else:
                swapped.append(leaf)
        a, k = jax.tree.unflatten(treedef, swapped)
        rec.replays.append((check, a, k))
        return None

    return wrapper  # type: ignore[return-value]


def _fill(tree: Any, leaves: list[Any]) -> Any:
    return jax.tree.map(
        lambda v: leaves[v.index] if isinstance(v, _Leaf) else v,
        tree,
        is_leaf=lambda v: isinstance(v, _Leaf),
    )


def _signature(leaf: Any) -> tuple[Any, ...] | None:
    """Part of the cache key for one input leaf; None when it cannot be keyed (call eagerly)."""
    if isinstance(leaf, jax.Array):
        return (leaf.shape, leaf.dtype, leaf.weak_type)
    if isinstance(leaf, np.ndarray):
        return (leaf.shape, leaf.dtype, False)
    if isinstance(leaf, np.generic):
        return ("numpy scalar", leaf.dtype, leaf.item())
    try:
        hash(leaf)
    except TypeError:
        return None
    return ("static", type(leaf), leaf)


@dataclasses.dataclass
class _Entry:
    compiled: Callable[..., Any] | None  # None: uncacheable, call eagerly
    dynamic: tuple[int, ...]
    replays: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]]


#: A signature seen once: compiling costs tens of milliseconds, so a one-off call (a new shape, a
#: notebook cell) runs op by op and only a repeated signature is compiled.
_SEEN_ONCE = _Entry(None, (), [])


def eager_jit(fn: F) -> F:
    """``fn`` compiled once per call signature when called eagerly; see the module docstring."""
    cache: OrderedDict[Any, _Entry] = OrderedDict()

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        leaves, treedef = jax.tree.flatten((args, kwargs))
        if any(isinstance(x, jax.core.Tracer) for x in leaves) or _CONFIG.jax_disable_jit:
            return fn(*args, **kwargs)
        sig = tuple(_signature(x) for x in leaves)
        if any(s is None for s in sig):
            return fn(*args, **kwargs)
        key = (treedef, sig, bool(_CONFIG.jax_enable_x64))
        entry = cache.get(key)
        if entry is None:  # first call with this signature: run eagerly, compile on the second
            cache[key] = _SEEN_ONCE
            if len(cache) > _MAX_ENTRIES:
                cache.popitem(last=False)
            return fn(*args, **kwargs)
        cache.move_to_end(key)
        if entry is _SEEN_ONCE:
            entry = cache[key] = _trace(fn, leaves, treedef)
        if entry.compiled is None:
            return fn(*args, **kwargs)
        for check, a, k in entry.replays:
            check(*_fill(a, leaves), **_fill(k, leaves))
        return entry.compiled(*[leaves[i] for i in entry.dynamic])

    return wrapper  # type: ignore[return-value]


def _trace(fn: Callable[..., Any], leaves: list[Any], treedef: Any) -> _Entry:
    """Traces ``fn`` once with the array leaves as inputs, recording the value checks."""
    dynamic = tuple(i for i, x in enumerate(leaves) if isinstance(x, (jax.Array, np.ndarray)))
    rec = _Recording(leaf_of={}, replays=[])
    traced = False

    def program(*arrays: Any) -> Any:
        nonlocal traced
        full = list(leaves)
        for i, a in zip(dynamic, arrays, strict=True):
            full[i] = a
        args, kwargs = jax.tree.unflatten(treedef, full)
        if traced:  # jit may trace again for its own cache: record the first trace only
            return fn(*args, **kwargs)
        traced = True
        rec.leaf_of.update({id(a): i for i, a in zip(dynamic, arrays, strict=True)})
        token = _RECORDING.set(rec)
        try:
            return fn(*args, **kwargs)
        finally:
            _RECORDING.reset(token)

    compiled = jax.jit(program)
    # Trace now: errors of static hyperparameters surface here, as they would eagerly, and an
    # uncacheable signature is known before anything is compiled.
    compiled.trace(*[leaves[i] for i in dynamic])
    if not rec.cacheable:
        return _Entry(None, dynamic, [])
    return _Entry(compiled, dynamic, rec.replays)
