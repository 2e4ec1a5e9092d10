"""Private helpers shared by the multi-task modules: task names, scalar losses, dtypes.

Tasks are identified by name; wherever an order is needed (stacking, a random draw, a Jacobian's
rows, a summation) the names are taken **sorted**, so a mapping's insertion order never changes
a result. Every check here runs at trace time on names, shapes and dtypes only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from .._core import checks as _checks

#: A pytree of arrays (a Jacobian with a leading task axis on every leaf, parameters, updates):
#: any structure ``jax.tree`` handles, so type checkers see it as ``Any``.
PyTree = Any


def _task_names(fn: str, arg: str, names: Any) -> list[str]:
    """Sorted task names of a mapping or an iterable of names; non-empty, strings, unique."""
    if isinstance(names, str) or not isinstance(names, (Mapping, Iterable)):
        raise TypeError(
            f"jaxloss.{fn}: `{arg}` must be a mapping task -> value or an iterable of task names; "
            f"got {type(names).__name__}."
        )
    out = list(names)
    bad = [n for n in out if not isinstance(n, str)]
    if bad:
        raise TypeError(f"jaxloss.{fn}: task names in `{arg}` must be strings; got {bad!r}.")
    if not out:
        raise ValueError(f"jaxloss.{fn}: `{arg}` must name at least one task; got none.")
    dupes = sorted({n for n in out if out.count(n) > 1})
    if dupes:
        raise ValueError(f"jaxloss.{fn}: `{arg}` must name each task once; got {dupes} repeated.")
    return sorted(out)


def _check_mapping(fn: str, arg: str, mapping: Any) -> None:
    if not isinstance(mapping, Mapping):
        raise TypeError(
            f"jaxloss.{fn}: `{arg}` must be a mapping task -> value; got {type(mapping).__name__}."
        )


def _check_same_tasks(fn: str, arg: str, mapping: Any, tasks: list[str], source: str) -> None:
    """ValueError naming the missing and unknown tasks unless ``mapping`` has exactly ``tasks``."""
    _check_mapping(fn, arg, mapping)
    keys = set(mapping)
    missing = sorted(set(tasks) - keys)
    extra = sorted(keys - set(tasks), key=str)
    if missing or extra:
        raise ValueError(
            f"jaxloss.{fn}: `{arg}` must have the tasks {tasks} ({source}) as keys; "
            f"got missing {missing}, unknown {extra}."
        )


def _scalar(fn: str, arg: str, task: str, x: Any, *, floating: bool = True) -> jax.Array:
    name = f"{arg}[{task!r}]"
    x = _checks.check_floating(fn, name, x) if floating else _checks.check_real(fn, name, x)
    if x.shape != ():
        raise ValueError(
            f"jaxloss.{fn}: `{name}` must be a scalar (reduce per-example values first, e.g. "
            f"with jaxloss.mean); got shape {tuple(x.shape)}."
        )
    return x


def _stack_losses(
    fn: str, arg: str, task_losses: Any, tasks: list[str], source: str, dtype: Any
) -> jax.Array:
    """[T] array of the scalar losses in sorted task order, checked against ``tasks``, cast to
    ``dtype`` and detached (weights never differentiate through the losses they read)."""
    _check_same_tasks(fn, arg, task_losses, tasks, source)
    vals = [_scalar(fn, arg, t, task_losses[t]) for t in tasks]
    return jax.lax.stop_gradient(jnp.stack(vals)).astype(dtype)


def _as_dict(tasks: list[str], w: jax.Array) -> dict[str, jax.Array]:
    """The [T] array ``w`` (sorted task order) as a dict task -> scalar."""
    return {t: w[i] for i, t in enumerate(tasks)}


def _default_float(fn: str, dtype: DTypeLike | None) -> jnp.dtype:
    """``dtype`` (a float dtype), or JAX's default float (float32; float64 with jax_enable_x64)."""
    if dtype is None:
        return jnp.zeros(()).dtype
    dt = jnp.dtype(dtype)
    if not jnp.issubdtype(dt, jnp.floating):
        raise ValueError(f"jaxloss.{fn}: `dtype` must be a floating dtype; got {dt}.")
    return dt


def _check_iters(fn: str, arg: str, n: Any) -> int:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"jaxloss.{fn}: `{arg}` must be an int ≥ 1; got {n!r}.")
    return int(n)


def _safe_div(a: jax.Array, b: jax.Array) -> jax.Array:
    """a / b where b != 0, else 0 (double where: no NaN in the untaken branch's gradient)."""
    ok = b != 0
    return jnp.where(ok, a / jnp.where(ok, b, 1), 0)


def _eps(dtype: DTypeLike) -> float:
    return float(jnp.finfo(dtype).eps)


def _num_tasks(fn: str, jacobian: PyTree) -> int:
    leaves = jax.tree.leaves(jacobian)
    if not leaves:
        raise ValueError(f"jaxloss.{fn}: `jacobian` must have at least one array leaf; got none.")
    sizes = {jnp.shape(x)[0] if jnp.ndim(x) else None for x in leaves}
    if None in sizes or len(sizes) != 1:
        raise ValueError(
            f"jaxloss.{fn}: every leaf of `jacobian` must have the same leading task axis; "
            f"got leading sizes {sorted(str(s) for s in sizes)}."
        )
    (t,) = sizes
    assert t is not None
    return int(t)
