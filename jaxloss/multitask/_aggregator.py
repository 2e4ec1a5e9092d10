"""The gradient-aggregator type: a Gramian weighting ``G -> w`` and ``J -> Jᵀ w`` on unit rows.

Every Jacobian-based method of :mod:`jaxloss.multitask` (PCGrad, MGDA, CAGrad, UPGrad in
``_aggregators``; IMTL-G, Aligned-MTL, Nash-MTL in ``_balancing``) is a **weighting of the
Gramian**: it computes task weights ``w = W(G)`` from the T × T Gramian ``G = J Jᵀ`` of the
per-task gradients and returns the update direction ``d = Jᵀ w = Σ_i w_i ∇L_i`` (TorchJD's
``Weighting`` / ``Aggregator`` split). Working on ``G`` keeps every solver on a T × T problem (T is
small) whatever the model size, lets the same method run on the Jacobian of the parameters or of
a shared representation (MGDA-UB, see :func:`jaxloss.multitask.task_value_and_rep_jacobian`), and
makes every solver a few small dense ops inside ``jax.jit``: no host callbacks (LibMTL and
TorchJD call scipy, cvxpy or quadprog on the CPU), no data-dependent Python control flow,
iterative solvers as ``lax.while_loop`` with a fixed maximum number of iterations (so a jitted
step has a bounded cost); the QP solvers (``_solvers``) are active-set methods that end at the
exact optimum.

**Any task scale, float32 included.** Task-gradient norms differ by orders of magnitude in
practice, and ``G`` squares them: in float32 a Gramian of gradients of norm 1e20 overflows, one of
norm 1e-20 underflows, and a norm ratio of 1e4 already puts the small task below the rounding of
the big one. So every method works on the **unit rows** ``ĝ_i = g_i / ‖g_i‖`` and the norms
``n_i = ‖g_i‖`` separately: the norms are computed with a max-abs scaling (no overflow or
underflow), the Gramian ``Ĝ = Ĵ Ĵᵀ`` of the unit rows (unit diagonal) is formed from the
normalised Jacobian, and each method's problem is rewritten in terms of ``Ĝ`` and ``n`` (the
weights of the unit rows are ``n_i w_i``). IMTL-G and Aligned-MTL, which need small singular
values, use a QR factor ``R`` of ``Ĵᵀ`` (``Rᵀ R = Ĝ``) instead of an eigen-decomposition of a
Gramian, and Aligned-MTL the one-sided Jacobi SVD of the row-scaled factor, which is accurate to
the rounding of each row whatever the norm ratio. ``agg(J)`` works from the Jacobian;
``agg.weights(G)`` from a Gramian you computed (it must be representable: use ``agg(J)`` or
``agg.jacobian_weights(J)`` when the norms are extreme).

Interface of an :class:`Aggregator` ``agg`` (e.g. ``agg = mt.upgrad()``), the protocol of every
stateful method of the package (``init -> state``, ``update -> (result, state)``):

- ``agg.init(task_names, *, key=None) -> AggregatorState`` and
  ``agg.update(jacobian, state) -> (direction, new_state)``: ``jacobian`` is a pytree with a
  leading task axis (sorted task order), e.g. from
  :func:`jaxloss.multitask.task_value_and_jacobian`; ``direction`` has the parameters'
  structure; ``new_state.weights`` is the dict task -> weight of this update (for logging), and a
  randomised method (PCGrad) splits the key kept in the state;
- ``agg(jacobian, key=None) -> direction`` — the same without state,
  ``combine(jacobian, agg.jacobian_weights(jacobian))``;
- ``agg.weights(G, key=None) -> w`` and ``agg.jacobian_weights(J, key=None) -> w`` — the weighting
  alone, as a [T] array in sorted task order (a Gramian carries no task names);
- ``agg.transform(key=None) -> optax.GradientTransformation``: the same as an optax transform
  whose ``update(updates, state, params=None)`` takes the **Jacobian pytree as** ``updates``, for
  ``optax.chain(agg.transform(), optax.adam(1e-3))``.

Scale conventions (as in each paper / reference code; "agree" = identical task gradients g):
PCGrad and GradNorm give the **sum** (T·g), MGDA, UPGrad, IMTL-G, Aligned-MTL and FAMO the
**mean** (g), CAGrad (1+c)/(1+c²)·g (its rescale=1), Nash-MTL ``d`` with ``⟨g_i, d⟩ = 1/α_i``
(T identical gradients: d = sqrt(T)·g/‖g‖, whatever ‖g‖), clipped to ``max_norm``.
Under Adam the overall scale hardly matters; under SGD it is the learning rate's scale.

Head parameters: pass only the *shared* parameters' Jacobian to an aggregator; a task-specific
head gets a gradient from its own task only, and its plain gradient (the sum over tasks) is right.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike, DTypeLike

from .._core import checks as _checks
from ._common import (
    PyTree,
    _as_dict,
    _check_iters,
    _default_float,
    _num_tasks,
    _safe_div,
    _task_names,
)
from ._gradients import combine

__all__ = ["Aggregator", "AggregatorState"]


# ---------------------------------------------------------------------------------------------
# Validation and small helpers


def _check_gramian(fn: str, g: ArrayLike) -> jax.Array:
    g = _checks.check_floating(fn, "gramian", g)
    if g.ndim != 2 or g.shape[0] != g.shape[1] or g.shape[0] < 1:
        raise ValueError(
            f"jaxloss.{fn}: `gramian` must be a square [T, T] matrix (T ≥ 1 tasks); "
            f"got shape {tuple(g.shape)}."
        )
    return g.astype(jnp.promote_types(g.dtype, jnp.float32))


def _iters_or_default(fn: str, n: Any) -> int | None:
    """A user's ``max_iters`` checked, or None for the default ``max(100, 4T)``, chosen when T
    is known: the active-set solvers need about 2T steps, so a fixed cap would stop short of the
    optimum for large T."""
    return None if n is None else _check_iters(fn, "max_iters", n)


def _iters(max_iters: int | None, t: int) -> int:
    return max(100, 4 * t) if max_iters is None else max_iters


def _check_pref(
    fn: str, pref: ArrayLike | Sequence[float] | None, t: int, dtype: DTypeLike
) -> jax.Array:
    if pref is None:
        return jnp.full((t,), 1.0 / t, dtype)
    p = jnp.asarray(pref, dtype)
    if p.shape != (t,):
        raise ValueError(
            f"jaxloss.{fn}: `pref` must have shape ({t},) (one weight per task); got {p.shape}."
        )
    return p


# ---------------------------------------------------------------------------------------------
# Unit rows: the scale-free form every method works on


class _Rows(NamedTuple):
    """The task gradients as unit rows and norms: ``g_i = norms_i · ĝ_i``."""

    gram: jax.Array  #: [T, T] Ĝ = Ĵ Ĵᵀ (unit diagonal; zero row and column for a zero gradient)
    norms: jax.Array  #: [T] ‖g_i‖ (computed without overflow or underflow)
    factor: Any  #: [k, T] R with Rᵀ R = Ĝ (a QR factor of Ĵᵀ), or None when not needed


def _rows_from_jacobian(jacobian: PyTree, need_factor: bool) -> _Rows:
    t = _num_tasks("gramian", jacobian)
    leaves = jax.tree.leaves(jacobian)
    dt = jnp.promote_types(jnp.result_type(*leaves), jnp.float32)
    flat = [jnp.reshape(a, (t, -1)).astype(dt) for a in leaves]
    # max-abs scaling per row, then the norm of the scaled row: no square over- or underflows
    m = jnp.max(jnp.stack([jnp.max(jnp.abs(a), axis=1, initial=0.0) for a in flat]), axis=0)
    ms = jnp.where(m > 0, m, 1.0)
    scaled = [a / ms[:, None] for a in flat]
    s = sum(jnp.sum(a * a, axis=1) for a in scaled)
    root = jnp.sqrt(s)
    norms = m * root
    inv = _safe_div(jnp.ones_like(root), root)
    # Gramian of the max-scaled rows (entries ≤ 1 in magnitude), then of the unit rows: no
    # further copy of the Jacobian
    g = sum(a @ a.T for a in scaled)
    g = (g * inv[:, None]) * inv[None, :]
    g = jnp.where(jnp.eye(t, dtype=bool) & (norms > 0)[:, None], 1.0, g)  # exact unit diagonal
    factor = None
    if need_factor:  # QR of the max-scaled rows; scaling R's columns gives that of the unit rows
        whole = jnp.concatenate(scaled, axis=1) if len(scaled) > 1 else scaled[0]
        factor = jnp.linalg.qr(whole.T, mode="r") * inv[None, :]
    return _Rows(g, norms, factor)


def _rows_from_gramian(g: jax.Array, need_factor: bool) -> _Rows:
    t = g.shape[0]
    norms = jnp.sqrt(jnp.maximum(jnp.diagonal(g), 0.0))
    inv = _safe_div(jnp.ones_like(norms), norms)
    gn = (g * inv[:, None]) * inv[None, :]
    gn = jnp.where(jnp.eye(t, dtype=bool) & (norms > 0)[:, None], 1.0, gn)
    factor = None
    if need_factor:  # no Jacobian: a symmetric factor of Ĝ
        lam, v = jnp.linalg.eigh(gn)
        factor = jnp.sqrt(jnp.maximum(lam, 0.0))[:, None] * v.T
    return _Rows(gn, norms, factor)


def _tree_norm(tree: PyTree) -> jax.Array:
    """‖tree‖ over all leaves, with a max-abs scaling (no over- or underflow)."""
    leaves = [jnp.ravel(a) for a in jax.tree.leaves(tree)]
    m = jnp.max(jnp.stack([jnp.max(jnp.abs(a), initial=0.0) for a in leaves]))
    ms = jnp.where(m > 0, m, 1.0)
    return m * jnp.sqrt(sum(jnp.sum((a / ms) ** 2) for a in leaves))


def _cap(norm: jax.Array, max_norm: float) -> jax.Array:
    """The factor min(1, max_norm / norm)."""
    over = norm > max_norm
    return jnp.where(over, max_norm / jnp.where(over, norm, 1.0), 1.0)


# ---------------------------------------------------------------------------------------------
# The aggregator type and its optax transform


class AggregatorState(NamedTuple):
    """State of an :class:`Aggregator` (from ``agg.init``, or ``agg.transform().init``)."""

    key: Any  #: the PRNG key the next update splits (None for deterministic methods).
    #: task -> weight of the last update (0 before the first); None in ``transform()``'s state.
    weights: dict[str, jax.Array] | None = None


@dataclasses.dataclass(frozen=True)
class Aggregator:
    """A Gramian weighting ``G -> w`` and the aggregation ``J -> Jᵀ W(J Jᵀ)`` built on it.

    Attributes:
      name: the method's name (for messages and repr).
      weighting: ``weighting(rows, key) -> weights`` on the unit-row form of the gradients
        (``rows.gram`` Ĝ, ``rows.norms``, ``rows.factor``), see the module docstring.
      randomised: whether ``weighting`` needs a PRNG key.
      needs_factor: whether ``weighting`` uses ``rows.factor``.
      max_norm: clip the aggregated direction to this norm (None: no clipping).
      reads_gradients: whether the weights depend on the gradients (False for sum and mean).
        Those that do are NaN, all of them, when a task gradient has a NaN or an infinity: the
        direction is then undefined, and a guard must not turn it into a plausible number.
    """

    name: str
    weighting: Callable[[_Rows, Any], jax.Array]
    randomised: bool = False
    needs_factor: bool = False
    max_norm: float | None = None
    reads_gradients: bool = True

    def __post_init__(self) -> None:
        # One compiled solver per shape/dtype: eager calls do not re-trace the while_loops
        # (inside an outer jit, the inner jit is inlined).
        object.__setattr__(self, "_from_gramian", jax.jit(self._weights_from_gramian))
        object.__setattr__(self, "_from_jacobian", jax.jit(self._weights_from_jacobian))

    def _key(self, key: jax.Array | None) -> jax.Array | None:
        if self.randomised and key is None:
            raise ValueError(
                f"jaxloss.{self.name}: `key` is required (a jax.random.key): the method is "
                "randomised."
            )
        return key

    def _nan_if_not_finite(self, rows: _Rows, w: jax.Array) -> jax.Array:
        if not self.reads_gradients:
            return w
        finite = jnp.all(jnp.isfinite(rows.norms)) & jnp.all(jnp.isfinite(rows.gram))
        return jnp.where(finite, w, jnp.nan)

    def _weights_from_gramian(self, g: jax.Array, key: jax.Array | None) -> jax.Array:
        rows = _rows_from_gramian(g, self.needs_factor)
        w = self._nan_if_not_finite(rows, self.weighting(rows, key))
        if self.max_norm is not None:
            v = rows.norms * w
            w = w * _cap(jnp.sqrt(jnp.maximum(v @ rows.gram @ v, 0.0)), self.max_norm)
        return w

    def _weights_from_jacobian(self, jacobian: PyTree, key: jax.Array | None) -> jax.Array:
        rows = _rows_from_jacobian(jacobian, self.needs_factor)
        w = self._nan_if_not_finite(rows, self.weighting(rows, key))
        if self.max_norm is not None:
            w = w * _cap(_tree_norm(combine(jacobian, w)), self.max_norm)
        return w

    def weights(self, gramian: ArrayLike, *, key: jax.Array | None = None) -> jax.Array:
        """Task weights ``w`` ([T], sorted task order) from the [T, T] Gramian."""
        g = _check_gramian(self.name, gramian)
        compiled: Callable[[jax.Array, Any], jax.Array] = self.__dict__["_from_gramian"]
        return compiled(jax.lax.stop_gradient(g), self._key(key))

    def jacobian_weights(self, jacobian: PyTree, *, key: jax.Array | None = None) -> jax.Array:
        """Task weights ``w`` ([T]) from a Jacobian pytree (leading task axis), at any scale.

        The same weights as ``weights(gramian(jacobian))``, computed from the normalised rows,
        so gradient norms whose squares over- or underflow (float32: beyond about 1e19 or below
        1e-19) are fine. Use it with the representation Jacobian of
        :func:`jaxloss.multitask.task_value_and_rep_jacobian`.
        """
        _num_tasks(self.name, jacobian)
        for leaf in jax.tree.leaves(jacobian):
            _checks.check_floating(self.name, "jacobian", leaf)
        compiled: Callable[[Any, Any], jax.Array] = self.__dict__["_from_jacobian"]
        return compiled(jax.lax.stop_gradient(jacobian), self._key(key))

    def init(
        self,
        task_names: Iterable[str],
        *,
        key: jax.Array | None = None,
        dtype: DTypeLike | None = None,
    ) -> AggregatorState:
        """The state for the tasks (names, or a mapping whose keys are the names).

        ``key`` (a ``jax.random.key``) is required for randomised methods (PCGrad) and split at
        every update; ``dtype`` is that of the recorded weights (default JAX's default float).
        """
        tasks = _task_names(self.name, "task_names", task_names)
        dt = _default_float(self.name, dtype)
        return AggregatorState(self._key(key), {t: jnp.zeros((), dt) for t in tasks})

    def update(self, jacobian: PyTree, state: AggregatorState) -> tuple[PyTree, AggregatorState]:
        """``(direction, new_state)``: ``Σ_i w_i ∇L_i`` of a Jacobian pytree (leading task axis,
        sorted task order) and the state with this update's weights ``{task: w_i}``."""
        if state.weights is None:
            raise ValueError(
                f"jaxloss.{self.name}: `state` must come from `init(task_names)`; this one has no "
                "task names (it is a transform's state)."
            )
        tasks = sorted(state.weights)
        t = _num_tasks(self.name, jacobian)
        if t != len(tasks):
            raise ValueError(
                f"jaxloss.{self.name}: `jacobian` must have {len(tasks)} rows (the tasks "
                f"{tasks} given to init); got {t}."
            )
        if self.randomised:
            new_key, sub = jax.random.split(state.key)
        else:
            new_key, sub = state.key, None
        w = self.jacobian_weights(jacobian, key=sub)
        dt = state.weights[tasks[0]].dtype
        return combine(jacobian, w), AggregatorState(new_key, _as_dict(tasks, w.astype(dt)))

    def __call__(self, jacobian: PyTree, *, key: jax.Array | None = None) -> PyTree:
        """The aggregated gradient ``Σ_i w_i ∇L_i`` of a Jacobian pytree (leading task axis)."""
        return combine(jacobian, self.jacobian_weights(jacobian, key=key))

    def transform(self, key: jax.Array | None = None) -> optax.GradientTransformation:
        """An optax transform whose ``update`` takes the Jacobian pytree as ``updates``.

        ``init(params)`` ignores ``params`` (only the key is kept);
        ``update(jacobian, state, params=None) -> (grads, state)``, ``grads`` without the task
        axis: chain it *first*, e.g. ``optax.chain(mt.upgrad().transform(), optax.adam(1e-3))``.
        ``key`` is required for randomised methods (PCGrad) and split at every update.
        """
        key = self._key(key)
        agg = self

        def init(params: optax.Params) -> AggregatorState:
            del params
            return AggregatorState(key)

        def update(
            updates: optax.Updates, state: AggregatorState, params: optax.Params | None = None
        ) -> tuple[optax.Updates, AggregatorState]:
            del params
            if agg.randomised:
                new_key, sub = jax.random.split(state.key)
            else:
                new_key, sub = state.key, None
            return agg(updates, key=sub), AggregatorState(new_key)

        return optax.GradientTransformation(init, update)
