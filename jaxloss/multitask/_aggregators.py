"""Multi-task gradient aggregators in pure JAX: PCGrad, MGDA, CAGrad, IMTL-G, Aligned-MTL, UPGrad,
Nash-MTL, plus GradNorm (weight state) and FAMO (loss values, state).

Every Jacobian-based method here is a **weighting of the Gramian**: it computes task weights
``w = W(G)`` from the T × T Gramian ``G = J Jᵀ`` of the per-task gradients and returns the update
direction ``d = Jᵀ w = Σ_i w_i ∇L_i`` (TorchJD's ``Weighting`` / ``Aggregator`` split). Working on
``G`` keeps every solver on a T × T problem (T is small) whatever the model size, lets the same
method run on the Jacobian of the parameters or of a shared representation (MGDA-UB, see
:func:`jaxloss.multitask.task_value_and_rep_jacobian`), and makes every solver a few small dense
ops inside ``jax.jit``: no host callbacks (LibMTL and TorchJD call scipy, cvxpy or quadprog on
the CPU), no data-dependent Python control flow, iterative solvers as ``lax.while_loop`` with a
fixed maximum number of iterations (so a jitted step has a bounded cost); the QP solvers are
active-set methods that end at the exact optimum.

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

Interface of an :class:`Aggregator` ``agg`` (e.g. ``agg = mt.upgrad()``):

- ``agg.weights(G, key=None) -> w`` ([T]) — the weighting;
- ``agg(jacobian, key=None) -> grads`` — ``combine(jacobian, agg.jacobian_weights(jacobian))``,
  equal to ``combine(jacobian, agg.weights(gramian(jacobian)))`` up to rounding;
  ``jacobian`` is a pytree with a leading task axis (sorted task order), e.g. from
  :func:`jaxloss.multitask.task_value_and_jacobian`; ``grads`` has the parameters' structure;
- ``agg.transform(key=None) -> optax.GradientTransformation``: its ``update(updates, state,
  params=None)`` takes the **Jacobian pytree as** ``updates`` (every leaf with the leading task
  axis) and returns the aggregated gradient (no task axis), so it composes as the first element of
  ``optax.chain(agg.transform(), optax.adam(1e-3))``; ``init(params)`` takes the parameters
  (without the task axis) like every optax transform. Randomised methods (PCGrad) keep a PRNG key
  in the transform's state and split it at each update.

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._core import checks as _checks
from ._gradients import _num_tasks, combine
from ._weighting import _check_same_tasks, _default_float, _scalar, _task_names

__all__ = [
    "FAMO",
    "Aggregator",
    "AggregatorState",
    "FAMOState",
    "GradNorm",
    "GradNormState",
    "aligned_mtl",
    "cagrad",
    "famo",
    "grad_norm",
    "imtl_g",
    "mean_aggregator",
    "mgda",
    "nash_mtl",
    "pcgrad",
    "sum_aggregator",
    "upgrad",
]


# ---------------------------------------------------------------------------------------------
# Validation and small helpers


def _check_gramian(fn: str, g: Any) -> jax.Array:
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


def _check_iters(fn: str, arg: str, n: Any) -> int:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"jaxloss.{fn}: `{arg}` must be an int ≥ 1; got {n!r}.")
    return int(n)


def _check_pref(fn: str, pref: Any, t: int, dtype: Any) -> jax.Array:
    if pref is None:
        return jnp.full((t,), 1.0 / t, dtype)
    p = jnp.asarray(pref, dtype)
    if p.shape != (t,):
        raise ValueError(
            f"jaxloss.{fn}: `pref` must have shape ({t},) (one weight per task); got {p.shape}."
        )
    return p


def _safe_div(a: jax.Array, b: jax.Array) -> jax.Array:
    """a / b where b != 0, else 0 (double where: no NaN in the untaken branch's gradient)."""
    ok = b != 0
    return jnp.where(ok, a / jnp.where(ok, b, 1), 0)


def _eps(dtype: Any) -> float:
    return float(jnp.finfo(dtype).eps)


# ---------------------------------------------------------------------------------------------
# Unit rows: the scale-free form every method works on


class _Rows(NamedTuple):
    """The task gradients as unit rows and norms: ``g_i = norms_i · ĝ_i``."""

    gram: jax.Array  #: [T, T] Ĝ = Ĵ Ĵᵀ (unit diagonal; zero row and column for a zero gradient)
    norms: jax.Array  #: [T] ‖g_i‖ (computed without overflow or underflow)
    factor: Any  #: [k, T] R with Rᵀ R = Ĝ (a QR factor of Ĵᵀ), or None when not needed


def _rows_from_jacobian(jacobian: Any, need_factor: bool) -> _Rows:
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


def _tree_norm(tree: Any) -> jax.Array:
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
    """State of :meth:`Aggregator.transform`: the PRNG key of a randomised method (else None)."""

    key: Any  #: the key the next update splits (None for deterministic methods).


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

    def _key(self, key: Any) -> Any:
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

    def _weights_from_gramian(self, g: jax.Array, key: Any) -> jax.Array:
        rows = _rows_from_gramian(g, self.needs_factor)
        w = self._nan_if_not_finite(rows, self.weighting(rows, key))
        if self.max_norm is not None:
            v = rows.norms * w
            w = w * _cap(jnp.sqrt(jnp.maximum(v @ rows.gram @ v, 0.0)), self.max_norm)
        return w

    def _weights_from_jacobian(self, jacobian: Any, key: Any) -> jax.Array:
        rows = _rows_from_jacobian(jacobian, self.needs_factor)
        w = self._nan_if_not_finite(rows, self.weighting(rows, key))
        if self.max_norm is not None:
            w = w * _cap(_tree_norm(combine(jacobian, w)), self.max_norm)
        return w

    def weights(self, gramian: Any, *, key: Any = None) -> jax.Array:
        """Task weights ``w`` ([T], sorted task order) from the [T, T] Gramian."""
        g = _check_gramian(self.name, gramian)
        compiled: Callable[[jax.Array, Any], jax.Array] = self.__dict__["_from_gramian"]
        return compiled(jax.lax.stop_gradient(g), self._key(key))

    def jacobian_weights(self, jacobian: Any, *, key: Any = None) -> jax.Array:
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

    def __call__(self, jacobian: Any, *, key: Any = None) -> Any:
        """The aggregated gradient ``Σ_i w_i ∇L_i`` of a Jacobian pytree (leading task axis)."""
        return combine(jacobian, self.jacobian_weights(jacobian, key=key))

    def transform(self, key: Any = None) -> optax.GradientTransformation:
        """An optax transform whose ``update`` takes the Jacobian pytree as ``updates``.

        ``init(params)`` ignores ``params`` (only the key is kept);
        ``update(jacobian, state, params=None) -> (grads, state)``, ``grads`` without the task
        axis: chain it *first*, e.g. ``optax.chain(mt.upgrad().transform(), optax.adam(1e-3))``.
        ``key`` is required for randomised methods (PCGrad) and split at every update.
        """
        key = self._key(key)
        agg = self

        def init(params: Any) -> AggregatorState:
            del params
            return AggregatorState(key)

        def update(
            updates: Any, state: AggregatorState, params: Any = None
        ) -> tuple[Any, AggregatorState]:
            del params
            if agg.randomised:
                new_key, sub = jax.random.split(state.key)
            else:
                new_key, sub = state.key, None
            return agg(updates, key=sub), AggregatorState(new_key)

        return optax.GradientTransformation(init, update)


# ---------------------------------------------------------------------------------------------
# Baselines


def sum_aggregator() -> Aggregator:
    """The plain sum ``Σ_i ∇L_i`` (weights 1): the gradient of the summed loss, as an aggregator.

    The baseline for the **sum** scale (PCGrad and GradNorm reduce to it when no gradients
    conflict or all weights are equal). The weights do not read the gradients: ``weights(G)`` is
    1 for every task whatever ``G`` holds.

    Returns:
      :class:`Aggregator` (deterministic, no key): ``agg.weights(G)`` is ``[1, …, 1]`` ([T]),
      ``agg(J)`` the sum of the rows of the Jacobian pytree, ``agg.transform()`` the optax form.

    Examples:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> mt.sum_aggregator()(jnp.array([[1.0, 0.0], [0.0, 2.0]])).tolist()
      [1.0, 2.0]
    """
    return Aggregator(
        "sum_aggregator", lambda r, key: jnp.ones_like(r.norms), reads_gradients=False
    )


def mean_aggregator() -> Aggregator:
    """The mean ``(1/T) Σ_i ∇L_i`` (weights 1/T) as an aggregator.

    The baseline for the **mean** scale of MGDA, UPGrad, IMTL-G, Aligned-MTL and FAMO: the
    gradient of the mean task loss. The weights do not read the gradients: ``weights(G)`` is
    1/T for every task whatever ``G`` holds.

    Returns:
      :class:`Aggregator` (deterministic, no key): ``agg.weights(G)`` is ``[1/T, …, 1/T]``
      ([T]), ``agg(J)`` the mean of the rows of the Jacobian pytree, ``agg.transform()`` the
      optax form.

    Examples:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> mt.mean_aggregator()(jnp.array([[1.0, 0.0], [0.0, 2.0]])).tolist()
      [0.5, 1.0]
    """
    return Aggregator(
        "mean_aggregator",
        lambda r, key: jnp.full_like(r.norms, 1.0 / r.norms.shape[0]),
        reads_gradients=False,
    )


# ---------------------------------------------------------------------------------------------
# PCGrad (Yu et al. 2020)


def pcgrad() -> Aggregator:
    """PCGrad: project each task gradient off the normal planes of those it conflicts with.

    Math (Algorithm 1 of the paper; g_i the task gradients)::

        for each task i:  g_i^pc = g_i
            for each j ≠ i in a random order:
                if g_i^pc · g_j < 0:   g_i^pc ← g_i^pc − (g_i^pc · g_j / ‖g_j‖²) g_j
        d = Σ_i g_i^pc

    Computed on the unit rows: ``g_i^pc = Σ_k c_ik ĝ_k`` with coefficients starting at
    ``c_i = ‖g_i‖ e_i``; the projection on g_j is ``c_ij ← c_ij − (c_i Ĝ)_j`` when
    ``(c_i Ĝ)_j < 0``, and ``w_k = Σ_i c_ik / ‖g_k‖``. The order is a fresh random permutation
    for each i, drawn from the explicit ``key`` (required). Two tasks: no randomness, and
    ``d = g_1 + g_2 − (g_1·g_2)(g_1/‖g_1‖² + g_2/‖g_2‖²)`` when g_1·g_2 < 0. Non-conflicting
    gradients: the plain **sum**. A zero gradient g_j is never projected on (its weight is 1).
    The projection result depends on the order for T ≥ 3 (the paper's randomisation), so PCGrad
    is permutation-invariant only in distribution.

    Returns:
      :class:`Aggregator` (randomised: ``weights(G, key=...)``, ``agg(J, key=...)``,
      ``agg.transform(key)``).

    Examples:
      >>> import jax, jax.numpy as jnp, jaxloss.multitask as mt
      >>> J = jnp.array([[1.0, 0.0], [-1.0, 1.0]])      # g_1·g_2 = −1 < 0
      >>> mt.pcgrad()(J, key=jax.random.key(0)).tolist()  # (½, ½) + (0, 1)
      [0.5, 1.5]

    Reference:
      T. Yu, S. Kumar, A. Gupta, S. Levine, K. Hausman, C. Finn. "Gradient Surgery for Multi-Task
      Learning." NeurIPS 2020, arXiv:2001.06782.
    """

    def weighting(r: _Rows, key: Any) -> jax.Array:
        g, n = r.gram, r.norms
        t = g.shape[0]
        perms = jax.vmap(lambda k: jax.random.permutation(k, t))(jax.random.split(key, t))
        rows = jnp.arange(t)

        def project(pos: jax.Array, c: jax.Array) -> jax.Array:
            j = perms[:, pos]
            dot = (c @ g)[rows, j]  # (g_i^pc · g_j) / ‖g_j‖
            on = (dot < 0) & (j != rows) & (n[j] > 0)
            return c - jnp.where(on, dot, 0)[:, None] * jax.nn.one_hot(j, t, dtype=g.dtype)

        c = jax.lax.fori_loop(0, t, project, jnp.diag(n))
        return jnp.where(n > 0, _safe_div(c.sum(0), n), 1.0)

    return Aggregator("pcgrad", weighting, randomised=True)


# ---------------------------------------------------------------------------------------------
# Quadratic programs (MGDA, CAGrad, UPGrad): primal active-set methods, exact termination


def _simplex_qp(
    a: jax.Array,
    b: jax.Array,
    s: jax.Array,
    max_iters: int,
    tol: float,
    init: tuple[jax.Array, jax.Array] | None = None,
) -> jax.Array:
    """``argmin ½ vᵀ A v + bᵀ v`` over ``{v ≥ 0, sᵀ v = 1}`` (A symmetric PSD, s > 0), exactly.

    Wolfe's min-norm-point algorithm generalised to a linear term and a scaled simplex, with the
    active set as a mask (no dynamic shapes): start at the best vertex ``e_k / s_k`` (or at
    ``init = (v, free)``, a feasible point and its support); solve the equality-constrained
    problem on the free set F (KKT: ``A_FF v_F + b_F = μ s_F``, ``s_Fᵀ v_F = 1``); if that point
    is feasible move there and free the vertex with the most negative multiplier
    ``(A v + b)_j − μ s_j`` (stop when none is below −tol times its rounding scale), else step
    towards it until a weight hits 0 and drop that vertex. Exact (up to rounding) after finitely
    many steps — typically about 2T, at most ``max_iters`` in a ``lax.while_loop``. A ridge of a
    few ulps (relative to A's unit-scale diagonal) keeps the KKT system solvable when the free
    vertices are affinely dependent.
    """
    t = a.shape[0]
    dtype = a.dtype
    eye = jnp.eye(t, dtype=dtype)
    ar = a + 16 * _eps(dtype) * jnp.max(jnp.abs(jnp.diagonal(a))) * eye
    tol = max(tol, 16 * _eps(dtype))
    abs_a = jnp.abs(a)

    def solve_on(free: jax.Array) -> jax.Array:
        # [[A_FF, −s_F], [s_Fᵀ, 0]] [v; μ] = [−b_F; 1], rows/cols outside F the identity (v=0).
        m2 = free[:, None] & free[None, :]
        top = jnp.where(m2, ar, eye)
        col = jnp.where(free, -s, 0.0)
        last = jnp.concatenate([jnp.where(free, s, 0.0), jnp.zeros((1,), dtype)])[None, :]
        kkt = jnp.concatenate([jnp.concatenate([top, col[:, None]], axis=1), last], axis=0)
        rhs = jnp.concatenate([jnp.where(free, -b, 0.0), jnp.ones((1,), dtype)])
        return jnp.where(free, jnp.linalg.solve(kkt, rhs)[:t], 0.0)

    def cond(state: tuple[jax.Array, jax.Array, jax.Array, jax.Array]) -> jax.Array:
        i, _, _, done = state
        return (i < max_iters) & ~done

    def body(state: tuple[Any, Any, Any, Any]) -> tuple[Any, Any, Any, Any]:
        i, v, free, _ = state
        target = solve_on(free)
        feasible = jnp.all(target >= 0)
        # infeasible: step from v towards target until the first free weight reaches 0
        dec = free & (target < 0)
        ratios = jnp.where(dec, v / jnp.where(dec, v - target, 1.0), jnp.inf)
        step = jnp.clip(jnp.min(ratios), 0.0, 1.0)
        blocking = jnp.argmin(ratios)
        v_new = jnp.where(feasible, target, jnp.maximum(v + step * (target - v), 0.0))
        v_new = jnp.where(feasible, v_new, v_new.at[blocking].set(0.0))
        v_new = v_new / jnp.sum(s * v_new)
        free_new = jnp.where(feasible, free, free.at[blocking].set(False))
        # optimality at a feasible point: multipliers of the vertices outside F
        grad = a @ v_new + b
        mu = grad @ v_new
        mult = grad - mu * s
        scale = abs_a @ jnp.abs(v_new) + jnp.abs(b) + jnp.abs(mu) * s
        mult = jnp.where(free_new, jnp.inf, mult / jnp.where(scale > 0, scale, 1.0))
        j = jnp.argmin(mult)
        optimal = mult[j] >= -tol
        done = feasible & optimal
        free_new = jnp.where(feasible & ~optimal, free_new.at[j].set(True), free_new)
        return i + 1, v_new, free_new, done

    if init is None:
        k = jnp.argmin((0.5 * jnp.diagonal(a) / s + b) / s)
        v0 = jax.nn.one_hot(k, t, dtype=dtype) / s[k]
        free0 = v0 > 0
    else:
        v0, free0 = init
    start = (jnp.zeros((), jnp.int32), v0, free0, jnp.zeros((), bool))
    return jax.lax.while_loop(cond, body, start)[1]


def _scaled_simplex(n: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(ñ, s)``: norms over the largest norm, and the simplex scaling of the unit-row weights
    ``v_i = ñ_i w_i`` (``Σ w = sᵀ v``; s_i = 1/ñ_i, and 1 for a zero gradient, whose weight is
    its own coordinate)."""
    nmax = jnp.max(n)
    nt = _safe_div(n, nmax)
    return nt, jnp.where(nt > 0, _safe_div(jnp.ones_like(nt), nt), 1.0)


def _bounded_qp(a: jax.Array, lo: jax.Array, max_iters: int, tol: float) -> jax.Array:
    """``argmin_{x ≥ lo} ½ xᵀ A x`` (A symmetric positive definite), exactly, by a primal
    active-set method: start at ``x = lo`` with the bounds whose multipliers ``(A lo)_j`` are
    negative already free (the tasks that conflict; usually most of the final free set, so a
    few steps suffice); solve on the free set F
    (``A_FF x_F = −A_FB lo_B``); if that point is feasible move there and free the bound with the
    most negative multiplier ``(A x)_j`` (stop when none is below −tol times its rounding scale),
    else step towards it until a free variable reaches its bound and fix it there."""
    t = a.shape[0]
    dtype = a.dtype
    eye = jnp.eye(t, dtype=dtype)
    tol = max(tol, 16 * _eps(dtype))
    abs_a = jnp.abs(a)

    def solve_on(free: jax.Array) -> jax.Array:
        m2 = free[:, None] & free[None, :]
        top = jnp.where(m2, a, eye)
        fixed = jnp.where(free, 0.0, lo)
        rhs = jnp.where(free, -(a @ fixed), lo)
        return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(top), rhs)

    def cond(state: tuple[jax.Array, jax.Array, jax.Array, jax.Array]) -> jax.Array:
        i, _, _, done = state
        return (i < max_iters) & ~done

    def body(state: tuple[Any, Any, Any, Any]) -> tuple[Any, Any, Any, Any]:
        i, x, free, _ = state
        target = solve_on(free)
        feasible = jnp.all(~free | (target >= lo))
        dec = free & (target < lo)
        ratios = jnp.where(dec, (x - lo) / jnp.where(dec, x - target, 1.0), jnp.inf)
        step = jnp.clip(jnp.min(ratios), 0.0, 1.0)
        blocking = jnp.argmin(ratios)
        x_new = jnp.where(feasible, target, jnp.maximum(x + step * (target - x), lo))
        x_new = jnp.where(feasible, x_new, x_new.at[blocking].set(lo[blocking]))
        free_new = jnp.where(feasible, free, free.at[blocking].set(False))
        grad = a @ x_new
        scale = abs_a @ jnp.abs(x_new)
        mult = jnp.where(free_new, jnp.inf, grad / jnp.where(scale > 0, scale, 1.0))
        j = jnp.argmin(mult)
        optimal = mult[j] >= -tol
        done = feasible & optimal
        free_new = jnp.where(feasible & ~optimal, free_new.at[j].set(True), free_new)
        return i + 1, x_new, free_new, done

    start = (jnp.zeros((), jnp.int32), lo, a @ lo < 0, jnp.zeros((), bool))
    return jax.lax.while_loop(cond, body, start)[1]


# ---------------------------------------------------------------------------------------------
# MGDA (Désidéri 2012; Sener & Koltun 2018)


def mgda(*, max_iters: int | None = None, tol: float = 1e-12) -> Aggregator:
    """MGDA: the minimum-norm element of the convex hull of the task gradients.

    Math::

        w* = argmin_{w ∈ Δ_T} ‖Σ_i w_i g_i‖² = argmin_{w ∈ Δ_T} wᵀ G w,    d = Σ_i w*_i g_i

    ``d`` is a common descent direction (``g_i · d ≥ ‖d‖²`` for every i), or 0 at a Pareto-
    stationary point (e.g. when a task gradient is 0). Two tasks: the closed form
    ``w_1 = clip((g_2 − g_1)·g_2 / ‖g_1 − g_2‖², 0, 1)``, ``w_2 = 1 − w_1``. T ≥ 3: an exact
    active-set solver (Wolfe's min-norm-point algorithm, in a ``lax.while_loop`` of at most
    ``max_iters`` steps; optimal when no multiplier is below ``−tol`` relative to its rounding
    scale), on the unit rows: ``v_i = (‖g_i‖ / max_k ‖g_k‖) w_i`` minimises ``vᵀ Ĝ v`` over
    ``{v ≥ 0, Σ_i v_i max_k‖g_k‖ / ‖g_i‖ = 1}``, so task norms 1e-8 and 1e8 are solved as
    accurately as equal ones. Sener & Koltun's Frank–Wolfe converges at O(1/k) and stalls on
    ill-conditioned Gramians; the active-set method ends at the exact minimiser in about 2T
    steps. Identical gradients give g (weights sum to 1: the **mean** scale).

    With the Jacobian of a shared representation
    (:func:`jaxloss.multitask.task_value_and_rep_jacobian`) this is MGDA-UB.

    Args:
      max_iters: maximum active-set steps of the solver for T ≥ 3 (an int ≥ 1; default None:
        max(100, 4T); static: it bounds the ``lax.while_loop``). T = 1 and T = 2 are closed
        forms.
      tol: optimality tolerance ≥ 0 on the multipliers (default 1e-12; relative to their
        rounding scale, and never below a few ulps of the dtype).

    Returns:
      :class:`Aggregator` (deterministic, no key): ``agg.weights(G)`` the weights w* ([T], on the
      simplex: ≥ 0, summing to 1), ``agg(J)`` the direction d, ``agg.transform()`` the optax form.

    Raises:
      ValueError: ``max_iters`` is not an int ≥ 1 or ``tol`` is negative.

    Examples:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> J = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> mt.mgda()(J).tolist()
      [0.5, 0.5]
      >>> J = jnp.array([[1.0, 0.0], [-0.5, 1.0], [0.5, 0.5]])
      >>> d = mt.mgda()(J)
      >>> [round(x, 4) for x in d.tolist()], [round(x, 4) for x in (J @ d).tolist()]  # ≥ ‖d‖²
      ([0.3077, 0.4615], [0.3077, 0.3077, 0.3846])

    Reference:
      J.-A. Désidéri. "Multiple-gradient descent algorithm (MGDA) for multiobjective
      optimization." C. R. Math. 2012. O. Sener, V. Koltun. "Multi-Task Learning as
      Multi-Objective Optimization." NeurIPS 2018, arXiv:1810.04650.
    """
    fn = "mgda"
    iters = _iters_or_default(fn, max_iters)
    _checks.require(fn, "tol", tol, ">= 0")

    def weighting(r: _Rows, key: Any) -> jax.Array:
        del key
        g, n = r.gram, r.norms
        t = g.shape[0]
        if t == 1:
            return jnp.ones((1,), g.dtype)
        nt, s = _scaled_simplex(n)
        if t == 2:
            # G / max‖g‖²: entries ñ_i ñ_j Ĝ_ij (no square of a norm is formed)
            a = (g * nt[:, None]) * nt[None, :]
            # both weights from their own numerators: 1 − w_1 would cancel when w_2 is tiny
            denom = a[0, 0] + a[1, 1] - 2 * a[0, 1]
            num = jnp.stack([a[1, 1] - a[0, 1], a[0, 0] - a[0, 1]])
            w = jnp.where(denom > 0, _safe_div(num, denom), 0.5)
            return jnp.where(
                w[0] < 0,
                jnp.array([0.0, 1.0], g.dtype),
                jnp.where(w[1] < 0, jnp.array([1.0, 0.0], g.dtype), w),
            )
        v = _simplex_qp(g, jnp.zeros((t,), g.dtype), s, _iters(iters, t), tol)
        return v * s

    return Aggregator(fn, weighting)


# ---------------------------------------------------------------------------------------------
# CAGrad (Liu et al. 2021)


def cagrad(
    c: float = 0.5,
    *,
    rescale: int = 1,
    max_iters: int | None = None,
    outer_iters: int = 200,
    tol: float = 1e-12,
) -> Aggregator:
    """CAGrad: the update closest to the mean gradient that maximises the worst task's improvement.

    Math (g_0 = mean gradient, ``c`` the radius)::

        max_d min_i ⟨g_i, d⟩   s.t.  ‖d − g_0‖ ≤ c ‖g_0‖
        dual:   w* = argmin_{w ∈ Δ_T}  g_wᵀ g_0 + c ‖g_0‖ ‖g_w‖,     g_w = Σ_i w_i g_i
        d = g_0 + (c ‖g_0‖ / ‖g_w*‖) g_w*,   then  d / (1 + c²)  (rescale=1, the default),
                                                  d / (1 + c)   (rescale=2),  d  (rescale=0)

    Defaults as the paper's official code and LibMTL (``alpha=0.5``, ``rescale=1``). TorchJD's
    ``CAGrad(c)`` has no default ``c`` and no rescale: it is ``cagrad(c, rescale=0)``, apart from
    its ``norm_eps`` guards (a Jacobian with ``‖J‖_F² < norm_eps`` is treated as zero, and it
    returns zero weights when ``‖g_w*‖`` is below ``norm_eps`` relative to ``‖J‖_F``). The
    reference code's additive 1e-8 guards (``‖g_0‖ = sqrt(mean(G) + 1e-8)``) are not copied: they
    change the answer when a task's squared norm is below about 1e-6 of the mean; here only an
    exact zero is guarded (``g_0 = 0`` or ``g_w* = 0`` give ``d = g_0``).

    Everything is on the unit rows (``g_wᵀ g_0 = vᵀ Ĝ ñ / T``, ``‖g_w‖² = vᵀ Ĝ v`` with
    ``v = ñ w``, ñ the norms over the largest), so the worst task is found at any norm ratio.
    The dual (scipy SLSQP in the reference code, cvxpy in TorchJD) is solved in JAX through
    ``‖x‖ = min_{τ>0} ‖x‖²/(2τ) + τ/2``: the objective is the minimum over τ of
    ``wᵀb + c‖g_0‖(wᵀGw / (2τ) + τ/2)``, jointly convex in (w, τ), which we minimise alternately —
    τ = ‖g_w‖ in closed form, then w by the exact active-set simplex QP of :func:`mgda`, warm-
    started from the previous support — at most ``outer_iters`` rounds in a ``lax.while_loop``,
    stopped when w stops changing (the objective never increases). ``c = 0`` gives the mean
    gradient g_0.

    Args:
      c: the radius c ≥ 0 (default 0.5, the official code's ``alpha`` and LibMTL's ``calpha``;
        the paper uses 0.4 to 0.5).
      rescale: 0, 1 or 2 as above (default 1, as the official code and LibMTL).
      max_iters: maximum active-set steps of each inner simplex QP (an int ≥ 1; default None:
        max(100, 4T)).
      outer_iters: maximum rounds of the (τ, w) alternation (an int ≥ 1, default 200).
      tol: optimality tolerance ≥ 0 on the inner QP's multipliers (default 1e-12; relative to
        their rounding scale, at least a few ulps of the dtype).

    Returns:
      :class:`Aggregator` (deterministic, no key): ``agg.weights(G)`` the weights
      ``(1/T + (c ‖g_0‖ / ‖g_w*‖) w*) · s`` ([T], each ≥ s/T), with ``s = 1/(1 + c²)``,
      ``1/(1 + c)`` or 1 for ``rescale`` 1, 2 or 0; ``agg(J)`` the direction d,
      ``agg.transform()`` the optax form.

    Raises:
      ValueError: ``c`` or ``tol`` is negative, ``rescale`` is not 0, 1 or 2, or ``max_iters``
        or ``outer_iters`` is not an int ≥ 1.

    Examples:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> J = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> [round(x, 4) for x in mt.cagrad(0.5)(J).tolist()]   # (1 + c)/(1 + c²) · g_0 here
      [0.6, 0.6]
      >>> J = jnp.array([[1.0, 0.0], [-0.5, 1.0], [0.5, 0.5]])
      >>> d = mt.cagrad(0.5, rescale=0)(J)                   # on the ball ‖d − g_0‖ = c‖g_0‖
      >>> [round(x, 4) for x in d.tolist()], [round(x, 4) for x in (J @ d).tolist()]
      ([0.5, 0.75], [0.5, 0.5, 0.625])

    Reference:
      B. Liu, X. Liu, X. Jin, P. Stone, Q. Liu. "Conflict-Averse Gradient Descent for Multi-task
      Learning." NeurIPS 2021, arXiv:2110.14048.
    """
    fn = "cagrad"
    _checks.require(fn, "c", c, ">= 0")
    if rescale not in (0, 1, 2):
        raise ValueError(f"jaxloss.{fn}: `rescale` must be 0, 1 or 2; got {rescale!r}.")
    iters = _iters_or_default(fn, max_iters)
    outer_iters = _check_iters(fn, "outer_iters", outer_iters)
    _checks.require(fn, "tol", tol, ">= 0")
    factor = {0: 1.0, 1: 1.0 / (1.0 + c**2), 2: 1.0 / (1.0 + c)}[rescale]

    def weighting(r: _Rows, key: Any) -> jax.Array:
        del key
        g, n = r.gram, r.norms
        t = g.shape[0]
        dtype = g.dtype
        nt, s = _scaled_simplex(n)
        b = g @ nt / t  # ĝ_i · g_0 / max‖g‖
        g0 = jnp.sqrt(jnp.maximum(nt @ b, 0.0) / t)  # ‖g_0‖ / max‖g‖
        radius = c * g0
        change_tol = 4 * _eps(dtype)

        def cond(state: tuple[Any, Any, Any]) -> jax.Array:
            i, _, change = state
            return (i < outer_iters) & (change > change_tol)

        def body(state: tuple[Any, Any, Any]) -> tuple[Any, Any, Any]:
            i, v, _ = state
            tau = jnp.sqrt(jnp.maximum(v @ g @ v, 0.0))
            tau = jnp.where(tau > 0, tau, g0)
            new = _simplex_qp((radius / tau) * g, b, s, _iters(iters, t), tol, init=(v, v > 0))
            change = jnp.max(jnp.abs(new - v) * s)
            return i + 1, new, change

        v0 = jnp.where(nt > 0, nt, 1.0) / t  # w = 1/T
        init = (jnp.zeros((), jnp.int32), v0, jnp.asarray(jnp.inf, dtype))
        active = radius > 0
        v = jax.lax.cond(active, lambda: jax.lax.while_loop(cond, body, init)[1], lambda: v0)
        gw = jnp.sqrt(jnp.maximum(v @ g @ v, 0.0))
        lam = jnp.where(active, _safe_div(radius, gw), 0.0)
        return (jnp.full((t,), 1.0 / t, dtype) + lam * v * s) * factor

    return Aggregator(fn, weighting)


# ---------------------------------------------------------------------------------------------
# IMTL-G (Liu et al. 2021)


def _factor_svd(r: _Rows) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(S, Wᵀ, keep)`` of the factor R = U S Wᵀ of the unit rows (Ĝ = W S² Wᵀ), with the
    numerical rank as a mask: singular values above ``max(S) · max(k, T) · eps``."""
    f = r.factor
    _, sv, wt = jnp.linalg.svd(f, full_matrices=False)
    keep = sv > jnp.max(sv) * max(f.shape) * _eps(f.dtype)
    return sv, wt, keep


def imtl_g() -> Aggregator:
    """IMTL-G: the update whose projections onto every unit task gradient are equal.

    Math: find ``d = Σ_i w_i g_i`` with ``Σ_i w_i = 1`` and ``⟨d, g_i/‖g_i‖⟩`` the same for every
    i. With ``n_i = ‖g_i‖`` and the unit rows ``Ĵ`` (Gramian ``Ĝ``): ``Ĝ (n ⊙ w) = λ 1``, so::

        w_i = v_i / n_i / Σ_k (v_k / n_k),     v = Ĝ⁺ 1       (0 where Σ_k v_k / n_k ≈ 0)

    i.e. ``d ∝ Ĵ⁺ 1``, the minimum-norm least-squares solution of ``⟨ĝ_i, d⟩ = 1`` for all i.
    When the gradients are linearly independent this is the paper's closed form, and equals
    TorchJD's ``IMTLGWeighting`` ``G⁺ n / (1ᵀ G⁺ n)`` (the same linear system, scaled by the
    norms). When they are dependent (T > dimension, or a zero gradient), TorchJD's ``G⁺ n``
    weights each task's residual by its norm, so the largest gradients get the equal
    projections; ``Ĝ⁺ 1`` treats every task alike, and does not depend on the norms' scale.
    ``Ĝ⁺`` comes from the SVD of the QR factor of ``Ĵᵀ`` (no eigen-decomposition of a Gramian),
    with the rank cut at ``max(S) · max(k, T) · eps``; a zero gradient gets weight 0. Identical
    gradients give g (the **mean** scale). The weights can be negative when the gradients are
    far from orthogonal.

    IMTL-G has no parameters.

    Returns:
      :class:`Aggregator` (deterministic, no key): ``agg.weights(G)`` the weights w ([T],
      summing to 1, or all 0 when ``Σ_k v_k / n_k ≈ 0``), ``agg(J)`` the direction d,
      ``agg.transform()`` the optax form.

    Examples:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> J = jnp.array([[2.0, 0.0], [0.0, 1.0]])
      >>> [round(x, 4) for x in mt.imtl_g()(J).tolist()]   # equal projections: d = (2/3, 2/3)
      [0.6667, 0.6667]

    Reference:
      L. Liu, Y. Li, Z. Kuang, J.-H. Xue, Y. Chen, W. Yang, Q. Liao, W. Zhang. "Towards Impartial
      Multi-task Learning." ICLR 2021.
    """

    def weighting(r: _Rows, key: Any) -> jax.Array:
        del key
        n = r.norms
        t = n.shape[0]
        sv, wt, keep = _factor_svd(r)
        inv2 = jnp.where(keep, 1.0 / jnp.where(keep, sv, 1.0) ** 2, 0.0)
        v = wt.T @ (inv2 * (wt @ jnp.ones((t,), n.dtype)))
        v = jnp.where(n > 0, v, 0.0)
        nmax = jnp.max(n)
        w = _safe_div(v, _safe_div(n, nmax))  # v_i · max‖g‖ / ‖g_i‖
        total = w.sum()
        ok = jnp.abs(total) > 4 * t * _eps(n.dtype) * jnp.sum(jnp.abs(w))
        return jnp.where(ok, w / jnp.where(ok, total, 1.0), 0.0)

    return Aggregator("imtl_g", weighting, needs_factor=True)


# ---------------------------------------------------------------------------------------------
# Aligned-MTL (Senushkin et al. 2023)


def _round_robin(t: int) -> np.ndarray:
    """[t − 1, t/2, 2] index pairs (t even): each round pairs every column once (circle method)."""
    idx = list(range(t))
    rounds = []
    for _ in range(t - 1):
        rounds.append([(idx[k], idx[t - 1 - k]) for k in range(t // 2)])
        idx = [idx[0], idx[-1], *idx[1:-1]]
    return np.asarray(rounds, np.int32)


def _jacobi_right(x: jax.Array, max_sweeps: int = 30) -> tuple[jax.Array, jax.Array]:
    """One-sided (Hestenes) Jacobi: an orthogonal V with ``x V`` of orthogonal columns.

    Returns ``(V [T, T], column norms of x V [T])``: the right singular vectors and singular
    values of ``x`` ([m, T]). Rotations of column pairs, all disjoint pairs of a round at once
    (round-robin order), sweeps until every pair is orthogonal to ``T · eps``. Each rotation is
    computed from the pair's own inner products, so a column is treated at its own scale: the
    singular values of ``B · diag(d)`` come out with the relative accuracy of ``B``'s conditioning,
    whatever the spread of ``d`` (Demmel & Veselić 1992).
    """
    m, t = x.shape
    tp = t + (t % 2)
    dtype = x.dtype
    x = jnp.pad(x, ((0, 0), (0, tp - t)))
    pairs = jnp.asarray(_round_robin(tp))
    tol = tp * _eps(dtype)

    def rotate(carry: tuple[Any, Any, Any], pq: jax.Array) -> tuple[Any, None]:
        xx, vv, off = carry
        p, q = pq[:, 0], pq[:, 1]
        xp, xq = xx[:, p], xx[:, q]
        a = jnp.sum(xp * xp, axis=0)
        b = jnp.sum(xq * xq, axis=0)
        c = jnp.sum(xp * xq, axis=0)
        ab = jnp.sqrt(a) * jnp.sqrt(b)
        rel = _safe_div(jnp.abs(c), ab)
        rot = rel > tol
        cs_ = jnp.where(rot, c, 1.0)
        zeta = (b - a) / (2 * cs_)
        tt = jnp.sign(zeta) / (jnp.abs(zeta) + jnp.sqrt(1 + zeta * zeta))
        tt = jnp.where(rot & (zeta != 0), tt, jnp.where(rot, 1.0, 0.0))
        co = 1 / jnp.sqrt(1 + tt * tt)
        si = co * tt
        xx = xx.at[:, p].set(co * xp - si * xq).at[:, q].set(si * xp + co * xq)
        vp, vq = vv[:, p], vv[:, q]
        vv = vv.at[:, p].set(co * vp - si * vq).at[:, q].set(si * vp + co * vq)
        return (xx, vv, jnp.maximum(off, jnp.max(rel))), None

    def cond(state: tuple[Any, Any, Any, Any]) -> jax.Array:
        i, _, _, off = state
        return (i < max_sweeps) & (off > tol)

    def body(state: tuple[Any, Any, Any, Any]) -> tuple[Any, Any, Any, Any]:
        i, xx, vv, _ = state
        (xx, vv, off), _ = jax.lax.scan(rotate, (xx, vv, jnp.zeros((), dtype)), pairs)
        return i + 1, xx, vv, off

    init = (jnp.zeros((), jnp.int32), x, jnp.eye(tp, dtype=dtype), jnp.asarray(jnp.inf, dtype))
    _, xx, vv, _ = jax.lax.while_loop(cond, body, init)
    del m
    return vv[:t, :t], jnp.sqrt(jnp.sum(xx[:, :t] ** 2, axis=0))


def aligned_mtl(*, scale_mode: str = "min", pref: Sequence[float] | None = None) -> Aggregator:
    """Aligned-MTL: align the task gradients into an orthogonal, equal-norm system, then combine.

    Math (Algorithm 1 of the paper, TorchJD's ``AlignedMTLWeighting``; ``G = V Λ Vᵀ`` on its
    numerical rank r)::

        B = sqrt(λ_scale) · V Λ^(−1/2) Vᵀ,        w = B p

    with ``λ_scale`` the smallest kept eigenvalue (``scale_mode="min"``, the paper's), their
    median (``"median"``: the lower median when r is even, as the official code's
    ``torch.median`` and TorchJD) or mean (``"rmse"``), and ``p`` the preference vector (default
    1/T each, as TorchJD; LibMTL uses 1 each, i.e. T × these weights). The aligned gradients
    ``Jᵀ B`` have orthogonal directions and equal norms ``sqrt(λ_scale)``; ``d = Jᵀ B p``.
    Identical gradients give g (the **mean** scale); an all-zero Jacobian gives the weights ``p``
    (TorchJD's identity B; d = 0 either way).

    Computed without forming ``G``: ``V`` and ``Λ = S²`` are the left singular vectors and
    squared singular values of ``J = diag(n) Ĵ``, from the one-sided Jacobi SVD of the
    column-scaled factor ``S_F W_Fᵀ diag(n)`` (``Ĵᵀ = Q R``, ``R = U_F S_F W_Fᵀ``), which is
    accurate at any spread of the task norms (an eigen-decomposition of G loses every eigenvalue
    below ``eps · λ_max``, i.e. tasks whose norms differ by more than ~1e4 in float32). The rank
    r is that of the unit rows (singular values of R above ``max · max(k, T) · eps``), so it does
    not depend on the norms.

    Args:
      scale_mode: ``"min"`` (default, the paper's), ``"median"`` or ``"rmse"``: which kept
        eigenvalue (or their mean) sets ``λ_scale``, as above.
      pref: optional preference vector ``p`` of T weights (sorted task order; any real values,
        shape [T], checked when the weights are computed); default None: 1/T each.

    Returns:
      :class:`Aggregator` (deterministic, no key): ``agg.weights(G)`` the weights ``w = B p``
      ([T]), ``agg(J)`` the direction ``d = Jᵀ B p``, ``agg.transform()`` the optax form.

    Raises:
      ValueError: ``scale_mode`` is not one of the three; ``pref`` does not have shape [T] (at
        the first call with T tasks).

    Examples:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> J = jnp.array([[3.0, 0.0], [0.0, 1.0]])   # aligned: equal norms 1 (= sqrt(λ_min))
      >>> [round(x, 4) for x in mt.aligned_mtl()(J).tolist()]
      [0.5, 0.5]
      >>> [round(x, 4) for x in mt.aligned_mtl(pref=[1.0, 0.0])(J).tolist()]  # d = Jᵀ B p
      [1.0, 0.0]

    Reference:
      D. Senushkin, N. Patakin, A. Kuznetsov, A. Konushin. "Independent Component Alignment for
      Multi-Task Learning." CVPR 2023, arXiv:2305.19000.
    """
    fn = "aligned_mtl"
    if scale_mode not in ("min", "median", "rmse"):
        raise ValueError(
            f"jaxloss.{fn}: `scale_mode` must be 'min', 'median' or 'rmse'; got {scale_mode!r}."
        )

    def weighting(r: _Rows, key: Any) -> jax.Array:
        del key
        n = r.norms
        t = n.shape[0]
        dtype = n.dtype
        p = _check_pref(fn, pref, t, dtype)
        sv, wt, keep = _factor_svd(r)
        rank = jnp.sum(keep)
        nt = _safe_div(n, jnp.max(n))
        x = (jnp.where(keep, sv, 0.0)[:, None] * wt) * nt[None, :]
        v, sig = _jacobi_right(x)
        order = jnp.argsort(-sig)
        kept = jnp.zeros((t,), bool).at[order].set(jnp.arange(t) < rank)
        lam = sig * sig  # Λ / max‖g‖²
        asc = jnp.sort(jnp.where(kept, lam, jnp.inf))
        if scale_mode == "min":
            scale = asc[0]
        elif scale_mode == "median":
            scale = asc[jnp.maximum(rank - 1, 0) // 2]
        else:
            scale = jnp.sum(jnp.where(kept, lam, 0.0)) / jnp.maximum(rank, 1)
        ratio = jnp.where(kept, jnp.sqrt(scale) / jnp.where(kept, sig, 1.0), 0.0)
        w = v @ (ratio * (v.T @ p))
        return jnp.where(rank > 0, w, p)

    return Aggregator(fn, weighting, needs_factor=True)


# ---------------------------------------------------------------------------------------------
# UPGrad (Quinton & Rey 2024)


def upgrad(
    *,
    pref: Sequence[float] | None = None,
    norm_eps: float = 0.0,
    reg_eps: float = 1e-4,
    max_iters: int = 1000,
    tol: float = 1e-10,
) -> Aggregator:
    """UPGrad: average of each task gradient projected onto the dual cone of all task gradients.

    Math (TorchJD's ``UPGrad``; ``p`` the preference vector, 1/T each by default)::

        d = Σ_i p_i · π(g_i),    π(x) = argmin_{y : ⟨g_j, y⟩ ≥ 0 ∀ j} ‖y − x‖²

    The dual of the projection of ``x = Jᵀ u`` is the box-constrained QP on the Gramian
    ``π(Jᵀ u) = Jᵀ v``, ``v = argmin_{v ≥ u} vᵀ G v``, so ``w = Σ_i v^(i)`` with ``u = p_i e_i``.
    As TorchJD, ``G`` is divided by its trace (``‖J‖_F²``) and ``reg_eps · I`` is added:
    ``v^(i) = argmin_{v ≥ p_i e_i} vᵀ (G / trace G + reg_eps · I) v``. TorchJD solves each QP with
    ``quadprog`` on the host; here it is an exact primal active-set method (all T problems at
    once, at most ``max_iters`` steps each; starting with the conflicting tasks free, it needs
    about T steps or fewer: for 64 random Gaussian task gradients, at most 25, 40 and 74 steps in
    128, 64 and 16 dimensions), in the unit-row variables
    ``x_i = v_i ‖g_i‖ / ‖J‖_F`` (``xᵀ Ĝ x + reg_eps Σ_i x_i² ‖J‖_F² / ‖g_i‖²``), so no square of a
    norm is formed.

    Properties: the KKT conditions give ``⟨g_j, d⟩ ≥ −reg_eps · trace(G) · w_j`` for every j
    (the regulariser's slack, exact up to rounding); so ``d`` never conflicts with a task whose
    squared norm is well above ``reg_eps · trace(G)``, while a task whose gradient is smaller
    than about ``sqrt(reg_eps)`` times the total is not protected (TorchJD's convention; lower
    ``reg_eps`` to protect it). When no two gradients conflict, every ``g_i`` is its own
    projection and ``d`` is the **mean** (Σ p_i g_i); it is permutation-equivariant in the tasks
    (with ``pref``) and depends only on the directions and norm ratios of the gradients, not their
    overall scale.

    Args:
      pref: optional preference vector ``p`` of T weights (sorted task order, shape [T], checked
        when the weights are computed), default None: 1/T each.
      norm_eps: ≥ 0 (default 0). TorchJD treats a Jacobian with ``‖J‖_F² < norm_eps`` as zero
        (its UPGrad then returns the weights ``max(p, 0)``: the mean by default, whatever the
        directions); the default 0 never does, so the result does not depend on the gradients'
        scale. Pass 1e-4 for TorchJD's behaviour.
      reg_eps: the ridge > 0 on ``G / trace G`` (default 1e-4, as TorchJD).
      max_iters: maximum active-set steps of each of the T QPs (an int ≥ 1, default 1000).
      tol: optimality tolerance ≥ 0 on the multipliers (default 1e-10; relative to their
        rounding scale, at least a few ulps of the dtype).

    Returns:
      :class:`Aggregator` (deterministic, no key): ``agg.weights(G)`` the weights
      ``w = Σ_i v^(i)`` ([T]; ``w ≥ p`` element-wise), ``agg(J)`` the direction ``d = Jᵀ w``,
      ``agg.transform()`` the optax form.

    Raises:
      ValueError: ``norm_eps`` or ``tol`` is negative, ``reg_eps`` is not > 0, ``max_iters`` is
        not an int ≥ 1; ``pref`` does not have shape [T] (at the first call with T tasks).

    Examples:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> J = jnp.array([[1.0, 0.0], [-1.0, 1.0]])
      >>> d = mt.upgrad()(J)
      >>> [round(x, 3) for x in d.tolist()], bool((J @ d >= -1e-3).all())
      ([0.25, 0.75], True)

    Reference:
      P. Quinton, V. Rey. "Jacobian Descent for Multi-Objective Optimization."
      arXiv:2406.16232 (2024).
    """
    fn = "upgrad"
    _checks.require(fn, "norm_eps", norm_eps, ">= 0")
    _checks.require(fn, "reg_eps", reg_eps, "> 0")
    max_iters = _check_iters(fn, "max_iters", max_iters)
    _checks.require(fn, "tol", tol, ">= 0")

    def weighting(r: _Rows, key: Any) -> jax.Array:
        del key
        g, n = r.gram, r.norms
        t = g.shape[0]
        dtype = g.dtype
        p = _check_pref(fn, pref, t, dtype)
        nmax = jnp.max(n)
        nt = _safe_div(n, nmax)
        fro = jnp.sqrt(jnp.sum(nt * nt))  # ‖J‖_F / max‖g‖
        nu = _safe_div(nt, fro)  # ‖g_i‖ / ‖J‖_F
        # unit-row coordinates; a zero gradient keeps its own weight as coordinate (κ = 1)
        kappa = jnp.where(nu > 0, nu, 1.0)
        a = g + jnp.diag(reg_eps / (kappa * kappa))
        lo = jnp.diag(p) * kappa[None, :]  # row i: the bound of problem i
        x = jax.vmap(lambda b: _bounded_qp(a, b, max_iters, tol))(lo)
        w = (x / kappa[None, :]).sum(0)
        if norm_eps > 0:  # TorchJD: ‖J‖_F² < norm_eps is a zero Jacobian (G' = 0: w = p)
            w = jnp.where(nmax * fro < np.sqrt(norm_eps), jnp.maximum(p, 0.0), w)
        return w

    return Aggregator(fn, weighting)


# ---------------------------------------------------------------------------------------------
# Nash-MTL (Navon et al. 2022)


def nash_mtl(
    *, max_norm: float | None = 1.0, reg_eps: float = 1e-6, max_iters: int = 100, tol: float = 1e-20
) -> Aggregator:
    """Nash-MTL: the Nash bargaining solution between the tasks, ``G α = 1/α`` (element-wise).

    Math: the update ``d = Σ_i α_i g_i`` maximises ``Σ_i log⟨g_i, d⟩`` in a ball; its optimality
    condition is ``(G α)_i = 1/α_i``, α > 0, i.e. ``⟨g_i, d⟩ = 1/α_i``, on the Gramian itself (the
    paper and its official code, whose solver works on ``G/‖G‖_F`` and puts the scale back in its
    constraint ``α_i (G α)_i ≥ 1``): for ``J = 0.01 I₂``, α = (100, 100) and d = (1, 1). Then, as
    the official code and TorchJD (``max_norm=1.0``), ``d`` is clipped to norm ``max_norm``
    (``None`` to skip; ``agg(J)`` clips the returned d itself).

    The condition is invariant to each task's scale: with ``x_i = ‖g_i‖ α_i`` it reads
    ``(Ĝ x)_i = 1/x_i`` on the unit-row Gramian, and d depends only on the directions. Solver:
    ``x`` is the stationary point of the strictly convex, self-concordant
    ``f(x) = ½ xᵀ (Ĝ + reg_eps·I) x − Σ_i log x_i``, minimised by damped Newton (step ``1/(1+λ)``
    while the Newton decrement λ ≥ ¼, full steps after; this stays in x > 0 and converges
    quadratically) from the best point on the ray ``1/sqrt(diag)``, at most ``max_iters``
    iterations in a ``lax.while_loop``. The ridge is relative to each task's own squared norm, so
    it does not bias small tasks; it keeps x bounded when the gradients are linearly dependent
    with a positive null combination (e.g. two opposite gradients, where no solution exists and
    the reference solver stops at its iteration limit): there x ≈ 1/sqrt(reg_eps) and ``d ≈ 0``.
    A zero gradient gets α = 0.

    No state across steps: the solution is unique, so the reference code's warm start from the
    previous α (it stops after ``optim_niter=20`` convex surrogates) changes only how close it
    gets, not the answer; here every step is solved to convergence. The official code's
    ``update_weights_every`` (reuse α for k steps) is not offered: call ``weights`` every k steps
    and :func:`jaxloss.multitask.combine` in between.

    Identical task gradients g: ``⟨g, d⟩ = 1/α``, d = sqrt(T)·g/‖g‖ before clipping.

    Args:
      max_norm: clip the update to this norm, > 0 (default 1.0, as the official code and
        TorchJD), or None not to clip.
      reg_eps: ridge > 0 on the unit-row Gramian (default 1e-6).
      max_iters: maximum Newton iterations (an int ≥ 1, default 100).
      tol: ≥ 0; stop when the squared Newton decrement λ² ≤ tol (default 1e-20), or at the
        dtype's rounding floor ``(T · eps)²``, whichever is larger.

    Returns:
      :class:`Aggregator` (deterministic, no key): ``agg.weights(G)`` the weights α ([T], > 0;
      0 for a zero gradient), scaled down so that ``‖Jᵀ α‖ ≤ max_norm``; ``agg(J)`` the
      direction d; ``agg.transform()`` the optax form.

    Raises:
      ValueError: ``max_norm`` or ``reg_eps`` is not > 0, ``tol`` is negative, or ``max_iters``
        is not an int ≥ 1.

    Examples:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> J = jnp.array([[0.01, 0.0], [0.0, 0.01]])    # α_i = 100: ⟨g_i, d⟩ = 1/α_i
      >>> [round(x, 4) for x in mt.nash_mtl(max_norm=None)(J).tolist()]
      [1.0, 1.0]
      >>> J = jnp.array([[1.0, 0.0], [-1.0, 1.0]])
      >>> a = mt.nash_mtl(max_norm=None).weights(J @ J.T)
      >>> [round(x, 4) for x in (a * (J @ (a @ J))).tolist()]       # α_i ⟨g_i, d⟩ = 1
      [1.0, 1.0]
      >>> round(float(jnp.linalg.norm(mt.nash_mtl()(J))), 4)        # clipped to max_norm=1
      1.0

    Reference:
      A. Navon, A. Shamsian, I. Achituve, H. Maron, K. Kawaguchi, G. Chechik, E. Fetaya.
      "Multi-Task Learning as a Bargaining Game." ICML 2022, arXiv:2202.01017.
    """
    fn = "nash_mtl"
    if max_norm is not None:
        _checks.require(fn, "max_norm", max_norm, "> 0")
    _checks.require(fn, "reg_eps", reg_eps, "> 0")
    max_iters = _check_iters(fn, "max_iters", max_iters)
    _checks.require(fn, "tol", tol, ">= 0")

    def weighting(r: _Rows, key: Any) -> jax.Array:
        del key
        g, n = r.gram, r.norms
        t = g.shape[0]
        a = g + reg_eps * jnp.eye(t, dtype=g.dtype)
        floor = max(tol, (t * _eps(g.dtype)) ** 2)
        ahat = 1.0 / jnp.sqrt(jnp.diagonal(a))
        x0 = ahat * jnp.sqrt(t / (ahat @ a @ ahat))

        def cond(state: tuple[jax.Array, jax.Array, jax.Array]) -> jax.Array:
            i, _, dec = state
            return (i < max_iters) & (dec > floor)

        def body(state: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[Any, Any, Any]:
            i, x, _ = state
            grad = a @ x - 1.0 / x
            hess = a + jnp.diag(1.0 / x**2)
            step = -jnp.linalg.solve(hess, grad)
            dec = jnp.maximum(-(grad @ step), 0.0)  # λ²
            lam = jnp.sqrt(dec)
            size = jnp.where(lam < 0.25, 1.0, 1.0 / (1.0 + lam))
            x = jnp.maximum(x + size * step, jnp.finfo(g.dtype).tiny)
            return i + 1, x, dec

        init = (jnp.zeros((), jnp.int32), x0, jnp.asarray(jnp.inf, g.dtype))
        x = jax.lax.while_loop(cond, body, init)[1]
        return jnp.where(n > 0, _safe_div(x, n), 0.0)

    return Aggregator(fn, weighting, max_norm=max_norm)


# ---------------------------------------------------------------------------------------------
# GradNorm (Chen et al. 2018)


class GradNormState(NamedTuple):
    """State of :func:`grad_norm`."""

    weights: jax.Array  #: [T] the current task weights (Σ = T).
    initial_losses: jax.Array  #: [T] L_i(0), recorded at the first update.
    num_updates: jax.Array  #: int32 number of updates (saturating).
    inner_state: Any  #: the optax state of the weights' optimizer.


@dataclasses.dataclass(frozen=True)
class GradNorm:
    """A GradNorm weighting (from :func:`grad_norm`): ``init``, ``update`` and ``transform``."""

    alpha: float
    optimizer: optax.GradientTransformation

    def init(self, task_names: Iterable[str], *, dtype: Any = None) -> GradNormState:
        """The state for the tasks (names, or a mapping whose keys are the names): weights 1."""
        tasks = _task_names("grad_norm", "task_names", task_names)
        dt = _default_float("grad_norm", dtype)
        w = jnp.ones((len(tasks),), dt)
        return GradNormState(w, jnp.ones_like(w), jnp.zeros((), jnp.int32), self.optimizer.init(w))

    def update(
        self, gramian: Any, task_losses: Mapping[str, Any], state: GradNormState
    ) -> tuple[jax.Array, GradNormState]:
        """``(weights for this step [T], new state)`` from the Gramian (only its diagonal, the
        squared gradient norms, is used) and the scalar task losses (sorted task order)."""
        fn = "grad_norm"
        t = state.weights.shape[0]
        g = _check_gramian(fn, gramian)
        if g.shape[0] != t:
            raise ValueError(
                f"jaxloss.{fn}: `gramian` must be [{t}, {t}] (the tasks given to init); "
                f"got {tuple(g.shape)}."
            )
        norms = jnp.sqrt(jnp.maximum(jnp.diagonal(jax.lax.stop_gradient(g)), 0.0))
        return self._update(norms, task_losses, state)

    def _update(
        self, norms: jax.Array, task_losses: Mapping[str, Any], state: GradNormState
    ) -> tuple[jax.Array, GradNormState]:
        fn = "grad_norm"
        t = state.weights.shape[0]
        tasks = _task_names(fn, "task_losses", task_losses)
        if len(tasks) != t:
            raise ValueError(
                f"jaxloss.{fn}: `task_losses` must have {t} tasks (as given to init); "
                f"got {len(tasks)}."
            )
        dt = state.weights.dtype
        losses = jnp.stack([_scalar(fn, "task_losses", n, task_losses[n]) for n in tasks]).astype(
            dt
        )
        losses = jax.lax.stop_gradient(losses)
        norms = jax.lax.stop_gradient(norms).astype(dt)
        first = state.num_updates == 0
        l0 = jnp.where(first, losses, state.initial_losses)
        ratio = _safe_div(losses, l0)
        r = _safe_div(ratio, ratio.mean())

        def balancing_loss(w: jax.Array) -> jax.Array:
            gw = w * norms
            target = jax.lax.stop_gradient(gw.mean() * r**self.alpha)
            return jnp.abs(gw - target).sum()

        grad = jax.grad(balancing_loss)(state.weights)
        upd, inner = self.optimizer.update(grad, state.inner_state, state.weights)
        w = jnp.maximum(optax.apply_updates(state.weights, upd), jnp.finfo(dt).tiny)
        w = t * w / w.sum()
        new = GradNormState(w, l0, optax.safe_increment(state.num_updates), inner)
        return state.weights, new

    def transform(
        self, task_names: Iterable[str], *, select: Callable[[Any], Any] | None = None
    ) -> optax.GradientTransformationExtraArgs:
        """An optax transform: ``update(jacobian, state, params=None, *, task_losses)``.

        ``task_losses`` (the mapping of scalar losses) is an extra argument, which
        ``optax.chain`` passes on: ``opt.update(jac, opt_state, params, task_losses=losses)``.
        ``select(jacobian) -> sub-pytree`` picks the leaves whose gradient norms GradNorm balances
        (the paper: the last shared layer); default all of them. Returns ``Σ w_i ∇L_i``.
        """
        names = list(task_names)
        gn = self

        def init(params: Any) -> GradNormState:
            del params
            return gn.init(names)

        def update(
            updates: Any,
            state: GradNormState,
            params: Any = None,
            *,
            task_losses: Any = None,
            **extra: Any,
        ) -> tuple[Any, GradNormState]:
            del params, extra
            if task_losses is None:
                raise ValueError(
                    "jaxloss.grad_norm: the transform's update needs `task_losses=` (a mapping "
                    "task -> scalar loss)."
                )
            _check_same_tasks("grad_norm", "task_losses", task_losses, sorted(names), "init")
            sub = updates if select is None else select(updates)
            # the norms from the normalised rows: no overflow of a squared norm
            norms = _rows_from_jacobian(jax.lax.stop_gradient(sub), False).norms
            w, state = gn._update(norms, task_losses, state)
            return combine(updates, w), state

        return optax.GradientTransformationExtraArgs(init, update)


def grad_norm(
    alpha: float = 1.5, *, learning_rate: float = 0.025, optimizer: Any = None
) -> GradNorm:
    """GradNorm: learn task weights that equalise the tasks' weighted gradient norms.

    Math (n_i = ‖∇_W L_i‖ on the differentiated parameters W, w the weights, L_i(0) the losses at
    the first update)::

        G_i = w_i n_i,   Ḡ = mean_i G_i,   r_i = (L_i/L_i(0)) / mean_j (L_j/L_j(0))
        L_grad(w) = Σ_i | G_i − stopgrad(Ḡ · r_i^α) |
        w ← optimizer step on ∇_w L_grad,   then  w ← T · w / Σ_j w_j   (kept > 0)

    The model's update for this step uses the current weights, ``d = Σ_i w_i ∇L_i`` (the **sum**
    scale: Σ w = T, so equal weights are the summed loss). The target is detached (the paper);
    the weights are constants for the model. ``∂L_grad/∂w_i = sign(G_i − target_i) · n_i``.

    ``update(gramian, task_losses, state) -> (weights, new_state)`` needs only the Gramian's
    diagonal; pass the Gramian of the last shared layer's Jacobian for the paper's cheap variant
    (or ``transform(names, select=...)``).

    Args:
      alpha: the restoring-force strength α ≥ 0 (default 1.5, the paper's NYUv2 value).
      learning_rate: of the default optimizer ``optax.adam`` (the paper uses the network's).
      optimizer: an optax transform for the weights instead (overrides ``learning_rate``).

    Returns:
      :class:`GradNorm` with ``init(task_names, *, dtype=None)``, ``update`` and ``transform``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> gn = mt.grad_norm(alpha=1.5, learning_rate=0.1)
      >>> state = gn.init(["a", "b"])
      >>> G = jnp.diag(jnp.array([4.0, 1.0]))          # ‖∇L_a‖ = 2, ‖∇L_b‖ = 1
      >>> w, state = gn.update(G, {"a": 1.0, "b": 1.0}, state)
      >>> w.tolist(), [round(x, 3) for x in state.weights.tolist()]   # a's weight falls
      ([1.0, 1.0], [0.9, 1.1])

    Reference:
      Z. Chen, V. Badrinarayanan, C.-Y. Lee, A. Rabinovich. "GradNorm: Gradient Normalization for
      Adaptive Loss Balancing in Deep Multitask Networks." ICML 2018, arXiv:1711.02257.
    """
    fn = "grad_norm"
    _checks.require(fn, "alpha", alpha, ">= 0")
    if optimizer is None:
        _checks.require(fn, "learning_rate", learning_rate, "> 0")
        optimizer = optax.adam(learning_rate)
    return GradNorm(alpha, optimizer)


# ---------------------------------------------------------------------------------------------
# FAMO (Liu et al. 2023)


class FAMOState(NamedTuple):
    """State of :func:`famo`."""

    logits: jax.Array  #: [T] the weight logits ξ (z = softmax(ξ)).
    inner_state: Any  #: the optax state of the logits' optimizer.
    prev_losses: jax.Array  #: [T] the losses recorded by the last ``weights`` call.
    min_losses: jax.Array  #: [T] the lower bounds b_i of the losses (0 by default).


@dataclasses.dataclass(frozen=True)
class FAMO:
    """A FAMO weighting (from :func:`famo`): ``init``, ``weights`` and ``update``."""

    optimizer: optax.GradientTransformation
    eps: float

    def init(
        self,
        task_names: Iterable[str],
        *,
        min_losses: Mapping[str, Any] | None = None,
        dtype: Any = None,
    ) -> FAMOState:
        """The state: logits 0 (equal weights); ``min_losses`` b_i (default 0)."""
        fn = "famo"
        tasks = _task_names(fn, "task_names", task_names)
        dt = _default_float(fn, dtype)
        if min_losses is None:
            b = jnp.zeros((len(tasks),), dt)
        else:
            _check_same_tasks(fn, "min_losses", min_losses, tasks, "those of `task_names`")
            b = jnp.stack([_scalar(fn, "min_losses", t, min_losses[t]) for t in tasks]).astype(dt)
        xi = jnp.zeros((len(tasks),), dt)
        return FAMOState(xi, self.optimizer.init(xi), jnp.ones_like(xi), b)

    def _losses(self, arg: str, task_losses: Mapping[str, Any], state: FAMOState) -> jax.Array:
        fn = "famo"
        t = state.logits.shape[0]
        tasks = _task_names(fn, arg, task_losses)
        if len(tasks) != t:
            raise ValueError(
                f"jaxloss.{fn}: `{arg}` must have {t} tasks (as given to init); got {len(tasks)}."
            )
        vals = [_scalar(fn, arg, n, task_losses[n]) for n in tasks]
        return jax.lax.stop_gradient(jnp.stack(vals)).astype(state.logits.dtype)

    def weights(
        self, task_losses: Mapping[str, Any], state: FAMOState
    ) -> tuple[dict[str, jax.Array], FAMOState]:
        """``(weights {task: w_i}, state)``: use with :func:`jaxloss.multitask.weighted_total`;
        records ``task_losses`` for the next :meth:`update`."""
        tasks = _task_names("famo", "task_losses", task_losses)
        loss = self._losses("task_losses", task_losses, state)
        z = jax.nn.softmax(state.logits)
        dd = loss - state.min_losses + self.eps
        c = jnp.sum(z / dd)
        w = z / (c * dd)
        return {n: w[i] for i, n in enumerate(tasks)}, state._replace(prev_losses=loss)

    def update(self, new_task_losses: Mapping[str, Any], state: FAMOState) -> FAMOState:
        """The logits step from the losses *after* the model step (same batch, or the next one)."""
        new = self._losses("new_task_losses", new_task_losses, state)
        b = state.min_losses
        delta = jnp.log(state.prev_losses - b + self.eps) - jnp.log(new - b + self.eps)
        _, vjp = jax.vjp(jax.nn.softmax, state.logits)
        (grad,) = vjp(delta)
        upd, inner = self.optimizer.update(grad, state.inner_state, state.logits)
        return state._replace(logits=optax.apply_updates(state.logits, upd), inner_state=inner)


def famo(*, learning_rate: float = 0.025, weight_decay: float = 1e-3, eps: float = 1e-8) -> FAMO:
    """FAMO: fast adaptive multitask optimisation from loss values only (O(1) in T).

    Math (z = softmax(ξ), b_i the loss lower bounds, D_i = L_i − b_i + eps)::

        objective = c⁻¹ Σ_i z_i log D_i,    c = Σ_i z_i / D_i   (a constant for the gradient)
        ⇒ ∇ = Σ_i w_i ∇L_i,   w_i = z_i / (c D_i)   (Σ w_i = 1: the **mean** scale)
        after the model step, with the new losses L'_i:
            δ_i = log D_i − log D'_i,     ∇_ξ = J_softmax(ξ)ᵀ δ,
            ξ ← Adam(lr=learning_rate) with L2 weight decay ``weight_decay`` (torch's Adam
                 ``weight_decay``: ``optax.chain(optax.add_decayed_weights(wd), optax.adam(lr))``)

    as the reference code. Usage, one backward pass per step::

        w, famo_state = fm.weights(losses, famo_state)        # records L
        total, _ = mt.weighted_total(losses, w)               # ∇total = Σ w_i ∇L_i
        ... model step ...
        famo_state = fm.update(new_losses, famo_state)        # L' on the same batch (the
                                                              # paper) or the next batch's losses

    FAMO is a loss weighting, not a Jacobian aggregator, so it has no optax Jacobian transform.

    Args:
      learning_rate: of the logits' Adam, > 0 (default 0.025, the paper's).
      weight_decay: γ ≥ 0, the L2 decay of the logits (default 1e-3).
      eps: added to D, > 0 (default 1e-8, as the reference code): a loss at its lower bound
        would otherwise give log 0 and a division by 0.

    Returns:
      :class:`FAMO` with ``init(task_names, *, min_losses=None, dtype=None) -> FAMOState``
      (logits 0: equal weights; ``min_losses`` a mapping task -> b_i, default 0),
      ``weights(task_losses, state) -> ({task: w_i}, state)`` and
      ``update(new_task_losses, state) -> state``; losses are mappings task -> scalar.

    Raises:
      ValueError: ``learning_rate`` or ``eps`` is not > 0, or ``weight_decay`` is negative.

    Examples:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> fm = mt.famo()
      >>> state = fm.init(["a", "b"])
      >>> w, state = fm.weights({"a": jnp.array(1.0), "b": jnp.array(3.0)}, state)
      >>> {k: round(float(v), 4) for k, v in w.items()}     # ∝ 1/L: the log-loss gradient
      {'a': 0.75, 'b': 0.25}
      >>> state = fm.update({"a": jnp.array(0.5), "b": jnp.array(3.0)}, state)
      >>> bool(state.logits[0] < state.logits[1])           # a improved: its weight falls
      True

    Reference:
      B. Liu, Y. Feng, P. Stone, Q. Liu. "FAMO: Fast Adaptive Multitask Optimization."
      NeurIPS 2023, arXiv:2306.03792.
    """
    fn = "famo"
    _checks.require(fn, "learning_rate", learning_rate, "> 0")
    _checks.require(fn, "weight_decay", weight_decay, ">= 0")
    _checks.require(fn, "eps", eps, "> 0")
    opt = optax.chain(optax.add_decayed_weights(weight_decay), optax.adam(learning_rate))
    return FAMO(opt, eps)
