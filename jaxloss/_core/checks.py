"""Trace-time validation.

Every check runs on shapes, dtypes and *concrete* hyperparameters while JAX traces, so it costs
nothing inside a compiled step. Messages follow one pattern::

    jaxloss.huber_loss: `delta` must be > 0; got -1.0.

naming the function, the argument, what was expected and what was received. Hyperparameters that
are traced (a learnable ``delta``, say) cannot be checked at trace time and are used as given.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .dispatch import note_value_read, replayable

__all__ = [
    "FINITE",
    "NONNEGATIVE",
    "NOT_NAN",
    "POSITIVE",
    "UNIT",
    "UNIT_HALF_OPEN",
    "Interval",
    "as_array",
    "check_broadcastable",
    "check_floating",
    "check_integer",
    "check_real",
    "check_same_shape",
    "check_values",
    "compute_dtype",
    "concrete_float",
    "hyperparameter",
    "hyperparameter_array",
    "interval",
    "prepare_pair",
    "representable",
    "require",
    "require_elements",
    "require_finite",
    "traced_real",
]


def _name(fn: str) -> str:
    return f"jaxloss.{fn}"


def as_array(fn: str, arg: str, x: Any) -> jax.Array:
    """Converts ``x`` to a JAX array, or raises a TypeError naming the argument."""
    if isinstance(x, jax.Array):
        return x
    try:
        return jnp.asarray(x)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{_name(fn)}: `{arg}` must be an array (or something jnp.asarray accepts); "
            f"got {type(x).__name__}."
        ) from err


def _dtype_name(x: jax.Array) -> str:
    return str(jnp.dtype(x.dtype))


def check_floating(fn: str, arg: str, x: Any) -> jax.Array:
    """``x`` as an array of a floating dtype; TypeError otherwise."""
    x = as_array(fn, arg, x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{_name(fn)}: `{arg}` must have a floating dtype (float16, bfloat16, float32, "
            f"float64); got {_dtype_name(x)}. Cast it, e.g. `{arg}.astype(jnp.float32)`."
        )
    return x


def check_real(fn: str, arg: str, x: Any) -> jax.Array:
    """``x`` as an array of a real dtype (bool, integer or floating); TypeError otherwise."""
    x = as_array(fn, arg, x)
    dt = x.dtype
    if not (
        jnp.issubdtype(dt, jnp.floating)
        or jnp.issubdtype(dt, jnp.integer)
        or jnp.issubdtype(dt, jnp.bool_)
    ):
        raise TypeError(
            f"{_name(fn)}: `{arg}` must have a real numeric dtype (floating, integer or bool); "
            f"got {_dtype_name(x)}."
        )
    return x


def check_integer(fn: str, arg: str, x: Any, *, hint: str = "") -> jax.Array:
    """``x`` as an array of an integer dtype; TypeError otherwise.

    ``hint`` is appended to the message (e.g. the name of the function that takes probability
    targets, where there is one)."""
    x = as_array(fn, arg, x)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(
            f"{_name(fn)}: `{arg}` must hold integer class indices (an integer dtype); got "
            f"{_dtype_name(x)}." + (f" {hint}" if hint else "")
        )
    return x


def check_same_shape(fn: str, a_name: str, a: jax.Array, b_name: str, b: jax.Array) -> None:
    """ValueError unless ``a`` and ``b`` have the same shape (no silent broadcasting)."""
    if a.shape != b.shape:
        raise ValueError(
            f"{_name(fn)}: `{a_name}` and `{b_name}` must have the same shape; got "
            f"{a_name}.shape={tuple(a.shape)} and {b_name}.shape={tuple(b.shape)}. "
            "jaxloss does not broadcast predictions against targets, because a [N, 1] vs [N] "
            "mix-up would silently give an [N, N] loss; reshape one of them."
        )


def check_broadcastable(
    fn: str, arg: str, x: jax.Array, target_shape: tuple[int, ...], target_desc: str
) -> None:
    """ValueError unless ``x`` broadcasts to ``target_shape`` without changing it."""
    try:
        out = np.broadcast_shapes(tuple(x.shape), tuple(target_shape))
    except ValueError:
        out = None
    if out != tuple(target_shape):
        raise ValueError(
            f"{_name(fn)}: `{arg}` must broadcast to {target_desc} shape {tuple(target_shape)}; "
            f"got {arg}.shape={tuple(x.shape)}."
        )


def compute_dtype(*arrays: jax.Array) -> jnp.dtype:
    """The dtype a loss computes and returns in.

    The result type of the floating inputs, raised to at least float32: float16 and bfloat16 are
    computed in float32 (and the loss comes back in float32); float64 stays float64.
    """
    floats = [a.dtype for a in arrays if jnp.issubdtype(a.dtype, jnp.floating)]
    dt = jnp.result_type(*floats) if floats else jnp.dtype(jnp.float32)
    return jnp.promote_types(dt, jnp.float32)


def concrete_float(x: Any) -> float | None:
    """``x`` as a Python float when it is known at trace time, else None (a tracer)."""
    note_value_read(x)
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return float(x)
    try:
        arr = np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None
    except TypeError:
        return None
    if arr.size != 1:
        return None
    return float(arr.reshape(()))


def concrete_array(x: Any) -> np.ndarray | None:
    """``x`` as a NumPy array when it is known at trace time, else None (a tracer).

    Pass the caller's raw argument, not ``jnp.asarray(x)``: under a trace, ``jnp.asarray`` of a
    Python or NumPy constant is already a tracer, and a check on it would be skipped.
    """
    note_value_read(x)
    try:
        return np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError, TypeError):
        return None


def concrete_min(x: Any) -> float | None:
    """The smallest element of the raw argument ``x`` when it is concrete and non-empty."""
    note_value_read(x)
    arr = concrete_array(x)
    return None if arr is None or arr.size == 0 else float(np.min(arr))


def _examples(values: np.ndarray) -> str:
    """Up to five offending entries, printed to 6 significant digits."""
    vals = ", ".join(f"{v:.6g}" for v in values.ravel()[:5].tolist())
    more = f" (and {values.size - 5} more)" if values.size > 5 else ""
    return f"[{vals}]{more}"


def representable(v: Any, dtype: Any) -> bool:
    """True when the number ``v`` is exactly a value of ``dtype`` (so that comparing an array of
    that dtype with it in JAX gives the answer NumPy gives in float64)."""
    try:
        with np.errstate(all="ignore"):
            cast = np.asarray(v).astype(dtype)
            return bool(cast.astype(np.float64) == np.float64(v))
    except (TypeError, ValueError, OverflowError):
        return False


def traced_real(x: Any) -> bool:
    """``x`` is a traced input of a floating or signed integer dtype (what predicates take)."""
    if not isinstance(x, jax.core.Tracer):
        return False
    dt = np.dtype(x.dtype)
    return bool(jnp.issubdtype(dt, jnp.floating) or jnp.issubdtype(dt, jnp.signedinteger))


def _values_ok(
    fn: str,
    arg: str,
    raw: Any,
    condition: str,
    *,
    where: Any = None,
    allow_nan: bool = False,
    hint: str = "",
) -> jax.Array | None:
    """:func:`check_values`'s test in JAX (evaluated inside the cached program): True only when
    the check passes; None where it cannot say exactly (the check then runs on the host)."""
    if not traced_real(raw):
        return None
    x = raw
    if not (jnp.issubdtype(x.dtype, jnp.floating) or jnp.issubdtype(x.dtype, jnp.integer)):
        return None
    if where is not None:
        if not isinstance(where, jax.core.Tracer) or np.dtype(where.dtype) != np.bool_:
            return None
        try:
            fits = np.broadcast_shapes(tuple(where.shape), tuple(x.shape)) == tuple(x.shape)
        except ValueError:
            fits = False
        if not fits:  # the check skips a mask it cannot apply
            return jnp.asarray(True)
    zero, one = jnp.zeros((), x.dtype), jnp.ones((), x.dtype)
    if condition == ">= 0":
        ok = jnp.isfinite(x) & (x >= zero)
    elif condition == "in [0, 1]":
        ok = (x >= zero) & (x <= one)
    elif condition == "<= 0":
        ok = x <= zero
    else:
        return None
    if allow_nan:
        ok = ok | jnp.isnan(x)
    if where is not None:
        ok = ok | ~where
    return ok


@replayable(predicate=_values_ok)
def check_values(
    fn: str,
    arg: str,
    raw: Any,
    condition: str,
    *,
    where: Any = None,
    allow_nan: bool = False,
    hint: str = "",
) -> None:
    """Checks the entries of an array argument against ``condition`` when it is concrete.

    ``condition`` is ``">= 0"`` (finite and non-negative: weights), ``"in [0, 1]"``
    (probabilities) or ``"<= 0"`` (log-probabilities, -inf allowed). Pass the caller's raw
    argument (see :func:`concrete_array`); traced values are used as given. ``where`` (concrete
    boolean, broadcastable) limits the check to the entries it marks. ``allow_nan`` lets NaN
    through (data, where NaN in gives NaN out); weights and hyperparameters reject it. ``hint``
    is appended to the message.
    """
    arr = concrete_array(raw)
    if arr is None or arr.size == 0 or arr.dtype == np.bool_:
        return
    # jnp's test: NumPy does not count bfloat16 (an ml_dtypes type) as floating.
    if not (jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.integer)):
        return
    arr = arr.astype(np.float64)
    if where is not None:
        mask = concrete_array(where)
        if mask is None:
            return
        try:
            arr = arr[np.broadcast_to(mask, arr.shape)]
        except ValueError:
            return
    nan = np.isnan(arr)
    with np.errstate(invalid="ignore"):
        ok = {
            ">= 0": np.isfinite(arr) & (arr >= 0),
            "in [0, 1]": (arr >= 0) & (arr <= 1),
            "<= 0": arr <= 0,
        }[condition]
    bad = ~ok & ~nan if allow_nan else ~ok
    if bad.any():
        desc = "finite and >= 0" if condition == ">= 0" else condition
        raise ValueError(
            f"{_name(fn)}: `{arg}` must be {desc}; got {_examples(arr[bad])}."
            + (f" {hint}" if hint else "")
        )


@dataclasses.dataclass(frozen=True)
class Interval:
    """The one way a hyperparameter's allowed values are written: ``lo < v < hi`` with each end
    open or closed, and whether ±inf are allowed (NaN never is).

    ``str(interval)`` is the phrase of the error message ("finite and > 0", "in [0, 1)").
    """

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False
    finite: bool = True

    def __str__(self) -> str:
        lo, hi = self.lo, self.hi
        if lo == -math.inf and hi == math.inf:
            return "finite" if self.finite else "a number in [-inf, inf] (not NaN)"
        if hi == math.inf:
            text = f"{'>' if self.lo_open else '>='} {_num(lo)}"
        elif lo == -math.inf:
            text = f"{'<' if self.hi_open else '<='} {_num(hi)}"
        else:
            left, right = "(" if self.lo_open else "[", ")" if self.hi_open else "]"
            text = f"in {left}{_num(lo)}, {_num(hi)}{right}"
        return f"finite and {text}" if self.finite else text

    def contains(self, v: Any) -> np.ndarray:
        """Elementwise: which values of ``v`` (a NumPy scalar or array) are allowed."""
        v = np.asarray(v, dtype=np.float64)
        ok = ~np.isnan(v)
        if self.finite:
            ok &= np.isfinite(v)
        ok &= (v > self.lo) if self.lo_open else (v >= self.lo)
        ok &= (v < self.hi) if self.hi_open else (v <= self.hi)
        return ok


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


#: The intervals in use, by the phrase the older checks took (``require(..., "> 0")``).
POSITIVE = Interval(0.0, lo_open=True)
NONNEGATIVE = Interval(0.0)
UNIT = Interval(0.0, 1.0)
UNIT_HALF_OPEN = Interval(0.0, 1.0, hi_open=True)
FINITE = Interval()
NOT_NAN = Interval(finite=False)
_BY_PHRASE = {
    "> 0": POSITIVE,
    ">= 0": NONNEGATIVE,
    "in [0, 1)": UNIT_HALF_OPEN,
    "in [0, 1]": UNIT,
    "finite": FINITE,
    "not nan": NOT_NAN,
}


def interval(condition: Interval | str) -> Interval:
    """``condition`` as an :class:`Interval` (a phrase of ``_BY_PHRASE`` is looked up)."""
    if isinstance(condition, Interval):
        return condition
    return _BY_PHRASE[condition]


@replayable
def require(fn: str, arg: str, value: Any, condition: Interval | str) -> None:
    """Checks a scalar hyperparameter against ``condition`` when it is concrete.

    ``condition`` is an :class:`Interval` (or one of the phrases ``"> 0"``, ``">= 0"``,
    ``"in [0, 1)"``, ``"in [0, 1]"``, ``"finite"``, ``"not nan"``). Traced values (learnable
    hyperparameters) are not checked. A non-scalar value is a ValueError.
    """
    arr_shape = getattr(value, "shape", ())
    if arr_shape not in ((), (1,)) and not isinstance(value, (int, float)):
        raise ValueError(f"{_name(fn)}: `{arg}` must be a scalar; got shape {tuple(arr_shape)}.")
    v = concrete_float(value)
    if v is None:
        return
    cond = interval(condition)
    if not cond.contains(v):
        raise ValueError(f"{_name(fn)}: `{arg}` must be {cond}; got {v!r}.")


def static_hyperparameter(
    fn: str, arg: str, value: Any, condition: Interval | str, why: str = ""
) -> float:
    """A scalar hyperparameter compiled into the computation (a fused kernel's temperature, cap
    or mixture weight): a concrete float in ``condition``. A traced value is a ValueError (``why``,
    e.g. " (it is compiled into the kernel)", says why it must be concrete)."""
    v = concrete_float(value)
    if v is None:
        raise ValueError(
            f"{_name(fn)}: `{arg}` must be a concrete number{why}; got a traced value."
        )
    cond = interval(condition)
    if not cond.contains(v):
        raise ValueError(f"{_name(fn)}: `{arg}` must be {cond}; got {v!r}.")
    return v


@replayable
def require_elements(fn: str, arg: str, value: Any, condition: Interval | str) -> None:
    """Checks every element of a concrete array hyperparameter against ``condition`` (traced
    values pass); the message shows up to five offending values."""
    concrete = concrete_array(value)
    if concrete is None:
        return
    cond = interval(condition)
    good = cond.contains(concrete)
    if not np.all(good):
        bad = concrete[~good] if concrete.ndim else concrete
        got = bad.ravel()[:5].tolist() if concrete.ndim else float(concrete)
        raise ValueError(f"{_name(fn)}: `{arg}` must be {cond}; got {got!r}.")


def hyperparameter(
    fn: str, arg: str, value: Any, condition: Interval | str, dtype: Any
) -> jax.Array:
    """A scalar hyperparameter checked by :func:`require` (when concrete) and cast to the
    compute ``dtype``."""
    require(fn, arg, value, condition)
    return jnp.asarray(value, dtype)


def hyperparameter_array(
    fn: str,
    arg: str,
    value: Any,
    condition: Interval | str,
    shape: tuple[int, ...],
    dtype: Any,
    target_desc: str = "the predictions'",
) -> jax.Array:
    """A hyperparameter that may be a scalar or an array broadcasting to the loss's ``shape``
    (one value per output dimension, say), cast to the compute ``dtype``.

    A real (floating or integer) dtype, else a TypeError; broadcastable to ``shape`` without
    changing it, else a ValueError (:func:`check_broadcastable`); every element checked against
    ``condition`` when concrete (:func:`require_elements`), used as given when traced.
    """
    arr = as_array(fn, arg, value)
    if not (jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.integer)):
        raise TypeError(f"{_name(fn)}: `{arg}` must be a real number; got {arr.dtype}.")
    check_broadcastable(fn, arg, arr, shape, target_desc)
    require_elements(fn, arg, value, condition)
    return arr.astype(dtype)


@replayable
def require_finite(fn: str, arg: str, value: Any) -> None:
    """A finite real scalar when concrete (any sign); traced values pass."""
    require(fn, arg, value, FINITE)


def prepare_pair(fn: str, predictions: Any, targets: Any) -> tuple[jax.Array, jax.Array]:
    """Validates a (predictions, targets) pair and casts both to the compute dtype.

    ``predictions`` must be floating; ``targets`` any real dtype; shapes must match exactly.
    """
    predictions = check_floating(fn, "predictions", predictions)
    targets = check_real(fn, "targets", targets)
    check_same_shape(fn, "predictions", predictions, "targets", targets)
    dtype = compute_dtype(predictions, targets)
    return predictions.astype(dtype), targets.astype(dtype)
