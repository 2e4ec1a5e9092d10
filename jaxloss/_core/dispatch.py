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
  traced for the cache; they are recorded, with the input each one looks at. A check with a
  *predicate* (its test written in JAX: True where the input passes) has the predicate compiled
  into the cached program, which returns the flags with the loss: one read back per call, and only
  when a flag is False are the checks run on the concrete inputs, in order, so that the first
  failing one raises. A check without one (or whose predicate cannot decide exactly for the
  dtypes at hand) is replayed on the concrete inputs (NumPy, on the host) on every cached call.
  Either way the errors are the eager ones, word for word.
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
import jax.numpy as jnp
import numpy as np

__all__ = ["eager_jit", "input_leaf", "note_value_read", "replayable"]

F = TypeVar("F", bound=Callable[..., Any])

_CONFIG: Any = jax.config
_MAX_ENTRIES = 64  # compiled signatures kept per function (least recently used dropped)
_FLAGS_READ = 1 << 14  # up to this many check flags are read back as they are, not reduced


#: A recorded check: the check, its arguments with the input leaves replaced by ``_Leaf``
#: markers, and whether its predicate runs inside the compiled program (else it is replayed on
#: the host before every cached call).
_Replay = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], bool]


@dataclasses.dataclass
class _Recording:
    leaf_of: dict[int, int]  # id(input tracer) -> index of the input leaf
    replays: list[_Replay]
    flags: list[Any] = dataclasses.field(default_factory=list)  # traced predicates (bool arrays)
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


def replayable(check: F | None = None, *, predicate: Callable[..., Any] | None = None) -> Any:
    """Marks a value check (returns None, raises on bad input) as replayable on concrete inputs.

    ``predicate`` (optional) takes the check's arguments, the recorded inputs as tracers, and
    returns a boolean scalar array that is True only where the check would pass (or None when it
    cannot say exactly for these arguments: the check is then replayed on the host every call).
    A predicate is evaluated inside the cached program; only when it is False is the check itself
    run, to raise its error. It must never be True where the check raises; False where the check
    passes only costs the host check.
    """
    if check is None:
        return functools.partial(replayable, predicate=predicate)

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
        flag = None if predicate is None else predicate(*args, **kwargs)
        if flag is not None:
            rec.flags.append(flag)
        a, k = jax.tree.unflatten(treedef, swapped)
        rec.replays.append((check, a, k, flag is not None))
        return None

    wrapper.predicate = predicate  # type: ignore[attr-defined]
    return wrapper


def _fill(tree: Any, leaves: list[Any]) -> Any:
    return jax.tree.map(
        lambda v: leaves[v.index] if isinstance(v, _Leaf) else v,
        tree,
        is_leaf=lambda v: isinstance(v, _Leaf),
    )


def _replay(replays: list[_Replay], leaves: list[Any]) -> None:
    for check, a, k, _ in replays:
        check(*_fill(a, leaves), **_fill(k, leaves))


# How a leaf enters the cache key, by its exact type (looked up once per type).
_ARRAY, _NUMPY, _NUMPY_SCALAR, _TRACER, _OTHER = range(5)
_KIND: dict[type, int] = {}


def _kind(t: type) -> int:
    kind = _KIND.get(t)
    if kind is None:
        if issubclass(t, jax.core.Tracer):
            kind = _TRACER
        elif issubclass(t, jax.Array):
            kind = _ARRAY
        elif issubclass(t, np.ndarray):
            kind = _NUMPY
        elif issubclass(t, np.generic):
            kind = _NUMPY_SCALAR
        else:
            kind = _OTHER
        _KIND[t] = kind
    return kind


def _signature(leaf: Any, kind: int) -> tuple[Any, ...] | None:
    """Part of the cache key for one input leaf; None when it cannot be keyed (call eagerly)."""
    if kind == _ARRAY:
        return (leaf.aval,)
    if kind == _NUMPY:
        return (leaf.shape, leaf.dtype, False)
    if kind == _NUMPY_SCALAR:
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
    replays: list[_Replay]  # every recorded check, in the order the loss makes them
    host: list[_Replay]  # those without a predicate: replayed on the host before each call
    flagged: bool  # the program returns (loss, all predicates True)


#: A signature seen once: compiling costs tens of milliseconds, so a one-off call (a new shape, a
#: notebook cell) runs op by op and only a repeated signature is compiled.
_SEEN_ONCE = _Entry(None, (), [], [], False)


def eager_jit(fn: F) -> F:
    """``fn`` compiled once per call signature when called eagerly; see the module docstring."""
    cache: OrderedDict[Any, _Entry] = OrderedDict()

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # The common call, arrays only and no keywords, is keyed by the arrays' abstract values
        # alone (no tree flattening); any other call by its tree structure and leaves.
        key: Any = None
        if not kwargs:
            avals = []
            for x in args:
                kind = _KIND.get(type(x))
                if (_kind(type(x)) if kind is None else kind) != _ARRAY:
                    break
                avals.append(x.aval)
            else:
                key = (len(args), tuple(avals))
        if key is None:
            leaves, treedef = jax.tree.flatten((args, kwargs))
            sig = []
            for x in leaves:
                kind = _KIND.get(type(x))
                if kind is None:
                    kind = _kind(type(x))
                if kind == _TRACER:
                    return fn(*args, **kwargs)
                s = _signature(x, kind)
                if s is None:
                    return fn(*args, **kwargs)
                sig.append(s)
            key = (treedef, tuple(sig))
        else:
            leaves = list(args)
        if _CONFIG.jax_disable_jit:
            return fn(*args, **kwargs)
        key = (key, _CONFIG.jax_enable_x64)
        entry = cache.get(key)
        if entry is None:  # first call with this signature: run eagerly, compile on the second
            cache[key] = _SEEN_ONCE
            if len(cache) > _MAX_ENTRIES:
                cache.popitem(last=False)
            return fn(*args, **kwargs)
        if entry is _SEEN_ONCE:
            leaves, treedef = jax.tree.flatten((args, kwargs))
            entry = cache[key] = _trace(fn, leaves, treedef)
        cache.move_to_end(key)
        if entry.compiled is None:
            return fn(*args, **kwargs)
        dynamic = [leaves[i] for i in entry.dynamic]
        if not entry.flagged:
            if entry.host:
                _replay(entry.host, leaves)
            return entry.compiled(*dynamic)
        out, ok = entry.compiled(*dynamic)
        # The flags read back (waiting first: reading a pending array is much slower). A False
        # flag runs every check in order: the first failing one raises the error the uncached
        # call raises (a flag is never True where its check fails). Concrete inputs inside an
        # outer trace (constants under someone's jit) give traced flags: the checks run.
        passed = not isinstance(ok, jax.core.Tracer) and np.asarray(ok.block_until_ready()).all()
        _replay(entry.host if passed else entry.replays, leaves)
        return out

    return wrapper  # type: ignore[return-value]


def _trace(fn: Callable[..., Any], leaves: list[Any], treedef: Any) -> _Entry:
    """Traces ``fn`` once with the array leaves as inputs, recording the value checks."""
    dynamic = tuple(i for i, x in enumerate(leaves) if isinstance(x, (jax.Array, np.ndarray)))
    first: _Recording | None = None

    def program(*arrays: Any) -> Any:
        nonlocal first
        full = list(leaves)
        for i, a in zip(dynamic, arrays, strict=True):
            full[i] = a
        args, kwargs = jax.tree.unflatten(treedef, full)
        # Every trace records (jit may trace again for its own cache); the first one is kept.
        leaf_of = {id(a): i for i, a in zip(dynamic, arrays, strict=True)}
        rec = _Recording(leaf_of=leaf_of, replays=[])
        if first is None:
            first = rec
        token = _RECORDING.set(rec)
        try:
            out = fn(*args, **kwargs)
        finally:
            _RECORDING.reset(token)
        if not rec.flags:
            return out
        flags = [jnp.ravel(f) for f in rec.flags]
        flag = flags[0] if len(flags) == 1 else jnp.concatenate(flags)
        # Elementwise flags fuse with the loss (a reduction is one more step of the program);
        # large inputs are reduced on the device, so that one scalar comes back.
        return out, flag if flag.size <= _FLAGS_READ else jnp.all(flag)

    compiled = jax.jit(program)
    # Trace now: errors of static hyperparameters surface here, as they would eagerly, and an
    # uncacheable signature is known before anything is compiled.
    compiled.trace(*[leaves[i] for i in dynamic])
    assert first is not None
    if not first.cacheable:
        return _Entry(None, dynamic, [], [], False)
    host = [r for r in first.replays if not r[3]]
    return _Entry(compiled, dynamic, first.replays, host, bool(first.flags))
