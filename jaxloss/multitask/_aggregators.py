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
fixed maximum number of iterations and a tolerance (so a jitted step has a bounded cost).

Interface of an :class:`Aggregator` ``agg`` (e.g. ``agg = mt.upgrad()``):

- ``agg.weights(G, key=None) -> w`` ([T]) — the weighting;
- ``agg(jacobian, key=None) -> grads`` — ``combine(jacobian, agg.weights(gramian(jacobian)))``;
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
**mean** (g), CAGrad (1+c)/(1+c²)·g (its rescale=1), Nash-MTL the sum clipped to ``max_norm``.
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

from .. import _checks
from ._gradients import combine, gramian
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


def _scale(g: jax.Array) -> jax.Array:
    """Mean squared gradient norm trace(G)/T, or 1 where it is 0 (all gradients zero)."""
    s = jnp.trace(g) / g.shape[0]
    return jnp.where(s > 0, s, 1.0)


def _safe_div(a: jax.Array, b: jax.Array) -> jax.Array:
    """a / b where b != 0, else 0 (double where: no NaN in the untaken branch's gradient)."""
    ok = b != 0
    return jnp.where(ok, a / jnp.where(ok, b, 1), 0)


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
      weighting: ``weighting(gramian, key) -> weights`` on a validated [T, T] float Gramian.
      randomised: whether ``weighting`` needs a PRNG key.
    """

    name: str
    weighting: Callable[[jax.Array, Any], jax.Array]
    randomised: bool = False

    def __post_init__(self) -> None:
        # One compiled solver per Gramian shape/dtype: eager calls do not re-trace the
        # while_loops (inside an outer jit, the inner jit is inlined).
        object.__setattr__(self, "_compiled", jax.jit(self.weighting))

    def _key(self, key: Any) -> Any:
        if self.randomised and key is None:
            raise ValueError(
                f"jaxloss.{self.name}: `key` is required (a jax.random.key): the method is "
                "randomised."
            )
        return key

    def weights(self, gramian: Any, *, key: Any = None) -> jax.Array:
        """Task weights ``w`` ([T], sorted task order) from the [T, T] Gramian."""
        g = _check_gramian(self.name, gramian)
        compiled: Callable[[jax.Array, Any], jax.Array] = self.__dict__["_compiled"]
        return compiled(jax.lax.stop_gradient(g), self._key(key))

    def __call__(self, jacobian: Any, *, key: Any = None) -> Any:
        """The aggregated gradient ``Σ_i w_i ∇L_i`` of a Jacobian pytree (leading task axis)."""
        w = self.weights(gramian(jacobian), key=key)
        return combine(jacobian, w)

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

    Example:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> mt.sum_aggregator()(jnp.array([[1.0, 0.0], [0.0, 2.0]])).tolist()
      [1.0, 2.0]
    """
    return Aggregator("sum_aggregator", lambda g, key: jnp.ones(g.shape[0], g.dtype))


def mean_aggregator() -> Aggregator:
    """The mean ``(1/T) Σ_i ∇L_i`` (weights 1/T) as an aggregator.

    Example:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> mt.mean_aggregator()(jnp.array([[1.0, 0.0], [0.0, 2.0]])).tolist()
      [0.5, 1.0]
    """
    return Aggregator(
        "mean_aggregator", lambda g, key: jnp.full(g.shape[0], 1.0 / g.shape[0], g.dtype)
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

    Computed on the Gramian: ``g_i^pc = Jᵀ c_i`` with coefficients ``c_i`` (start ``e_i``), so
    ``g_i^pc · g_j = (G c_i)_j`` and ``d = Jᵀ Σ_i c_i``. The order is a fresh random permutation
    for each i, drawn from the explicit ``key`` (required). Two tasks: no randomness, and
    ``d = g_1 + g_2 − (g_1·g_2)(g_1/‖g_1‖² + g_2/‖g_2‖²)`` when g_1·g_2 < 0. Non-conflicting
    gradients: the plain **sum**. A zero gradient g_j is never projected on. The projection result
    depends on the order for T ≥ 3 (the paper's randomisation), so PCGrad is permutation-invariant
    only in distribution.

    Returns:
      :class:`Aggregator` (randomised: ``weights(G, key=...)``, ``agg(J, key=...)``,
      ``agg.transform(key)``).

    Example:
      >>> import jax, jax.numpy as jnp, jaxloss.multitask as mt
      >>> J = jnp.array([[1.0, 0.0], [-1.0, 1.0]])      # g_1·g_2 = −1 < 0
      >>> mt.pcgrad()(J, key=jax.random.key(0)).tolist()  # (½, ½) + (0, 1)
      [0.5, 1.5]

    Reference:
      T. Yu, S. Kumar, A. Gupta, S. Levine, K. Hausman, C. Finn. "Gradient Surgery for Multi-Task
      Learning." NeurIPS 2020, arXiv:2001.06782.
    """

    def weighting(g: jax.Array, key: Any) -> jax.Array:
        t = g.shape[0]
        perms = jax.vmap(lambda k: jax.random.permutation(k, t))(jax.random.split(key, t))
        diag = jnp.diagonal(g)
        rows = jnp.arange(t)
        c = jnp.eye(t, dtype=g.dtype)
        for pos in range(t):  # static T: unrolled
            j = perms[:, pos]
            dot = (c @ g)[rows, j]  # g_i^pc · g_j
            gjj = diag[j]
            project = (dot < 0) & (j != rows) & (gjj > 0)
            coef = jnp.where(project, _safe_div(dot, gjj), 0)
            c = c - coef[:, None] * jax.nn.one_hot(j, t, dtype=g.dtype)
        return c.sum(0)

    return Aggregator("pcgrad", weighting, randomised=True)


# ---------------------------------------------------------------------------------------------
# Quadratic programs on the simplex (MGDA, CAGrad)


def _simplex_qp(a: jax.Array, b: jax.Array, max_iters: int, tol: float) -> jax.Array:
    """``argmin_{w ∈ Δ} ½ wᵀ A w + bᵀ w`` (A symmetric PSD) by a primal active-set method.

    Wolfe's min-norm-point algorithm generalised to a linear term, with the active set as a mask
    (no dynamic shapes): start at the best vertex; solve the equality-constrained problem on the
    free set F (KKT: ``A_FF w_F + b_F = μ 1``, ``1ᵀ w_F = 1``); if that point is feasible move
    there and add the vertex with the most negative multiplier ``(A w + b)_j − μ`` (stop when
    none is below −tol), else step towards it until a weight hits 0 and drop that vertex. Exact
    (up to rounding) after finitely many steps — typically about 2T, at most ``max_iters`` in a
    ``lax.while_loop``. A ridge of 1e-12 (on a normalised A) keeps the KKT system solvable when
    the free vertices are affinely dependent.
    """
    t = a.shape[0]
    dtype = a.dtype
    eye = jnp.eye(t, dtype=dtype)
    ar = a + 1e-12 * eye

    def solve_on(free: jax.Array) -> tuple[jax.Array, jax.Array]:
        # [[A_FF, −1], [1ᵀ, 0]] [w; μ] = [−b_F; 1], rows/cols outside F set to the identity (w=0).
        m2 = free[:, None] & free[None, :]
        top = jnp.where(m2, ar, eye)
        col = jnp.where(free, -1.0, 0.0).astype(dtype)
        last = jnp.concatenate([free.astype(dtype), jnp.zeros((1,), dtype)])[None, :]
        kkt = jnp.concatenate([jnp.concatenate([top, col[:, None]], axis=1), last], axis=0)
        rhs = jnp.concatenate([jnp.where(free, -b, 0.0), jnp.ones((1,), dtype)])
        sol = jnp.linalg.solve(kkt, rhs)
        return jnp.where(free, sol[:t], 0.0), sol[t]

    def cond(state: tuple[jax.Array, jax.Array, jax.Array, jax.Array]) -> jax.Array:
        i, _, _, done = state
        return (i < max_iters) & ~done

    def body(state: tuple[Any, Any, Any, Any]) -> tuple[Any, Any, Any, Any]:
        i, w, free, _ = state
        target, _ = solve_on(free)
        feasible = jnp.all(target >= 0)
        # infeasible: step from w towards target until the first free weight reaches 0
        dec = free & (target < 0)
        ratios = jnp.where(dec, w / jnp.where(dec, w - target, 1.0), jnp.inf)
        step = jnp.clip(jnp.min(ratios), 0.0, 1.0)
        blocking = jnp.argmin(ratios)
        w_new = jnp.where(feasible, target, jnp.maximum(w + step * (target - w), 0.0))
        w_new = jnp.where(feasible, w_new, w_new.at[blocking].set(0.0))
        w_new = w_new / jnp.sum(w_new)
        free_new = jnp.where(feasible, free, free.at[blocking].set(False))
        # optimality at a feasible point: multipliers of the vertices outside F
        grad = a @ w_new + b
        mu = grad @ w_new
        mult = jnp.where(free_new, jnp.inf, grad - mu)
        j = jnp.argmin(mult)
        scale = jnp.maximum(jnp.max(jnp.abs(jnp.diagonal(a))), jnp.max(jnp.abs(b)))
        optimal = mult[j] >= -tol * jnp.where(scale > 0, scale, 1.0)
        done = feasible & optimal
        free_new = jnp.where(feasible & ~optimal, free_new.at[j].set(True), free_new)
        return i + 1, w_new, free_new, done

    k = jnp.argmin(0.5 * jnp.diagonal(a) + b)
    w0 = jax.nn.one_hot(k, t, dtype=dtype)
    init = (jnp.zeros((), jnp.int32), w0, w0 > 0, jnp.zeros((), bool))
    return jax.lax.while_loop(cond, body, init)[1]


def mgda(*, max_iters: int = 100, tol: float = 1e-12) -> Aggregator:
    """MGDA: the minimum-norm element of the convex hull of the task gradients.

    Math::

        w* = argmin_{w ∈ Δ_T} ‖Σ_i w_i g_i‖² = argmin_{w ∈ Δ_T} wᵀ G w,    d = Σ_i w*_i g_i

    ``d`` is a common descent direction (``g_i · d ≥ ‖d‖²`` for every i), or 0 at a Pareto-
    stationary point. Two tasks: the closed form
    ``w_1 = clip((g_2 − g_1)·g_2 / ‖g_1 − g_2‖², 0, 1)``, ``w_2 = 1 − w_1``. T ≥ 3: an exact
    active-set solver on ``G / (trace G / T)`` (Wolfe's min-norm-point algorithm, in a
    ``lax.while_loop`` of at most ``max_iters`` steps; optimal when no multiplier is below
    ``−tol``). Sener & Koltun's Frank–Wolfe converges at O(1/k) and stalls on ill-conditioned
    Gramians (tasks whose gradient norms differ by orders of magnitude); the active-set method
    ends at the exact minimiser in about 2T steps. Identical gradients give g (weights sum to 1:
    the **mean** scale).

    With the Jacobian of a shared representation
    (:func:`jaxloss.multitask.task_value_and_rep_jacobian`) this is MGDA-UB.

    Args:
      max_iters: maximum active-set steps (T ≥ 3).
      tol: optimality tolerance on the multipliers (relative to the normalised Gramian).

    Example:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> J = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> mt.mgda()(J).tolist()
      [0.5, 0.5]

    Reference:
      J.-A. Désidéri. "Multiple-gradient descent algorithm (MGDA) for multiobjective
      optimization." C. R. Math. 2012. O. Sener, V. Koltun. "Multi-Task Learning as
      Multi-Objective Optimization." NeurIPS 2018, arXiv:1810.04650.
    """
    fn = "mgda"
    max_iters = _check_iters(fn, "max_iters", max_iters)
    _checks.require(fn, "tol", tol, ">= 0")

    def weighting(g: jax.Array, key: Any) -> jax.Array:
        del key
        t = g.shape[0]
        if t == 1:
            return jnp.ones((1,), g.dtype)
        gn = g / _scale(g)
        if t == 2:
            denom = gn[0, 0] + gn[1, 1] - 2 * gn[0, 1]
            w1 = jnp.where(denom > 0, _safe_div(gn[1, 1] - gn[0, 1], denom), 0.5)
            w1 = jnp.clip(w1, 0.0, 1.0)
            return jnp.stack([w1, 1 - w1])

        return _simplex_qp(gn, jnp.zeros((t,), g.dtype), max_iters, tol)

    return Aggregator(fn, weighting)


# ---------------------------------------------------------------------------------------------
# CAGrad (Liu et al. 2021)


def cagrad(
    c: float = 0.5,
    *,
    rescale: int = 1,
    max_iters: int = 100,
    outer_iters: int = 50,
    tol: float = 1e-12,
) -> Aggregator:
    """CAGrad: the update closest to the mean gradient that maximises the worst task's improvement.

    Math (g_0 = mean gradient, ``c`` the radius)::

        max_d min_i ⟨g_i, d⟩   s.t.  ‖d − g_0‖ ≤ c ‖g_0‖
        dual:   w* = argmin_{w ∈ Δ_T}  g_wᵀ g_0 + c ‖g_0‖ ‖g_w‖,     g_w = Σ_i w_i g_i
        d = g_0 + (c ‖g_0‖ / ‖g_w*‖) g_w*,   then  d / (1 + c²)  (rescale=1, the default),
                                                  d / (1 + c)   (rescale=2),  d  (rescale=0)

    with the reference code's 1e-8 guards (``‖g_0‖ = sqrt(mean(G) + 1e-8)``). Everything is on the
    Gramian: ``g_wᵀ g_0 = wᵀ G 1/T``, ``‖g_w‖² = wᵀ G w``. The inner problem (scipy SLSQP in the
    reference code) is solved in JAX through ``‖x‖ = min_{τ>0} ‖x‖²/(2τ) + τ/2``: the objective
    is the minimum over τ of ``wᵀb + c‖g_0‖(wᵀGw / (2τ) + τ/2)``, jointly convex in (w, τ), which
    we minimise alternately — τ = ‖g_w‖ in closed form, then w by the exact active-set simplex QP
    of :func:`mgda` — on ``G / (trace G / T)``, at most ``outer_iters`` rounds in a
    ``lax.while_loop``, stopped when w stops changing (the objective never increases; on random
    problems the worst-task value ``min_i ⟨g_i, d⟩`` agrees with scipy's SLSQP to ~1e-5 relative).
    ``c = 0`` gives the mean gradient g_0 (up to the 1e-8 guards).

    Args:
      c: the radius c ≥ 0 (default 0.5, LibMTL's ``calpha``; the paper uses 0.4 to 0.5).
      rescale: 0, 1 or 2 as above (default 1, as LibMTL).
      max_iters, tol: of the inner simplex QP; outer_iters: of the alternation.

    Example:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> J = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> [round(x, 4) for x in mt.cagrad(0.5)(J).tolist()]   # (1 + c)/(1 + c²) · g_0 here
      [0.6, 0.6]

    Reference:
      B. Liu, X. Liu, X. Jin, P. Stone, Q. Liu. "Conflict-Averse Gradient Descent for Multi-task
      Learning." NeurIPS 2021, arXiv:2110.14048.
    """
    fn = "cagrad"
    _checks.require(fn, "c", c, ">= 0")
    if rescale not in (0, 1, 2):
        raise ValueError(f"jaxloss.{fn}: `rescale` must be 0, 1 or 2; got {rescale!r}.")
    max_iters = _check_iters(fn, "max_iters", max_iters)
    outer_iters = _check_iters(fn, "outer_iters", outer_iters)
    _checks.require(fn, "tol", tol, ">= 0")

    def weighting(g: jax.Array, key: Any) -> jax.Array:
        del key
        t = g.shape[0]
        gn = g / _scale(g)
        b = gn.mean(1)  # G 1/T
        radius = c * jnp.sqrt(gn.mean() + 1e-8) + 1e-8  # c ‖g_0‖ on the normalised Gramian

        def cond(state: tuple[jax.Array, jax.Array, jax.Array]) -> jax.Array:
            i, _, change = state
            return (i < outer_iters) & (change > 1e-12)

        def body(state: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[Any, Any, Any]:
            i, w, _ = state
            tau = jnp.sqrt(jnp.maximum(w @ gn @ w, 0.0) + 1e-8)
            new = _simplex_qp((radius / tau) * gn, b, max_iters, tol)
            return i + 1, new, jnp.max(jnp.abs(new - w))

        w0 = jnp.full((t,), 1.0 / t, g.dtype)
        init = (jnp.zeros((), jnp.int32), w0, jnp.asarray(jnp.inf, g.dtype))
        w = jax.lax.while_loop(cond, body, init)[1]
        lam = radius / (jnp.sqrt(jnp.maximum(w @ gn @ w, 0.0)) + 1e-8)
        out = jnp.full((t,), 1.0 / t, g.dtype) + lam * w
        factor = {0: 1.0, 1: 1.0 / (1.0 + c**2), 2: 1.0 / (1.0 + c)}[rescale]
        return out * factor

    return Aggregator(fn, weighting)


# ---------------------------------------------------------------------------------------------
# IMTL-G (Liu et al. 2021)


def imtl_g() -> Aggregator:
    """IMTL-G: the update whose projections onto every unit task gradient are equal.

    Math: find ``d = Σ_i w_i g_i`` with ``Σ_i w_i = 1`` and ``⟨d, g_i/‖g_i‖⟩`` the same for every
    i. With ``n_i = ‖g_i‖ = sqrt(G_ii)``: ``G w = λ n``, so::

        w = G⁺ n / (1ᵀ G⁺ n)        (0 where 1ᵀ G⁺ n ≈ 0)

    (the paper's closed form, written on the Gramian as TorchJD's ``IMTLGWeighting``; ``G⁺`` the
    pseudo-inverse, ``jnp.linalg.pinv``). Identical gradients give g (the **mean** scale). The
    weights can be negative when the gradients are far from orthogonal.

    Example:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> J = jnp.array([[2.0, 0.0], [0.0, 1.0]])
      >>> [round(x, 4) for x in mt.imtl_g()(J).tolist()]   # equal projections: d = (2/3, 2/3)
      [0.6667, 0.6667]

    Reference:
      L. Liu, Y. Li, Z. Kuang, J.-H. Xue, Y. Chen, W. Yang, Q. Liao, W. Zhang. "Towards Impartial
      Multi-task Learning." ICLR 2021.
    """

    def weighting(g: jax.Array, key: Any) -> jax.Array:
        del key
        gn = g / _scale(g)
        n = jnp.sqrt(jnp.maximum(jnp.diagonal(gn), 0.0))
        v = jnp.linalg.pinv(gn, hermitian=True) @ n
        s = v.sum()
        ok = jnp.abs(s) > 1e-12
        return jnp.where(ok, v / jnp.where(ok, s, 1.0), 0.0)

    return Aggregator("imtl_g", weighting)


# ---------------------------------------------------------------------------------------------
# Aligned-MTL (Senushkin et al. 2023)


def aligned_mtl(*, scale_mode: str = "min", pref: Sequence[float] | None = None) -> Aggregator:
    """Aligned-MTL: align the task gradients into an orthogonal, equal-norm system, then combine.

    Math (TorchJD's ``AlignedMTLWeighting``; eigen-decomposition ``G = V Λ Vᵀ``, keeping the
    eigenvalues above ``λ_max · T · eps``, i.e. the numerical rank)::

        B = sqrt(λ_scale) · V Λ^(−1/2) Vᵀ,        w = B p

    with ``λ_scale`` the smallest kept eigenvalue (``scale_mode="min"``, the paper's), their median
    (``"median"``) or mean (``"rmse"``), and ``p`` the preference vector (default 1/T each, as
    TorchJD; LibMTL uses 1 each, i.e. T × these weights). The aligned gradients ``Jᵀ B`` have
    orthogonal directions and equal norms ``sqrt(λ_scale)``. Identical gradients give g (the
    **mean** scale). Uses ``jnp.linalg.eigh``; the rank cut is a mask, not a dynamic shape.

    Args:
      scale_mode: "min", "median" or "rmse".
      pref: optional preference vector of T weights (sorted task order).

    Example:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> J = jnp.array([[3.0, 0.0], [0.0, 1.0]])   # aligned: equal norms 1 (= sqrt(λ_min))
      >>> [round(x, 4) for x in mt.aligned_mtl()(J).tolist()]
      [0.5, 0.5]

    Reference:
      D. Senushkin, N. Patakin, A. Kuznetsov, A. Konushin. "Independent Component Alignment for
      Multi-Task Learning." CVPR 2023, arXiv:2305.19000.
    """
    fn = "aligned_mtl"
    if scale_mode not in ("min", "median", "rmse"):
        raise ValueError(
            f"jaxloss.{fn}: `scale_mode` must be 'min', 'median' or 'rmse'; got {scale_mode!r}."
        )

    def weighting(g: jax.Array, key: Any) -> jax.Array:
        del key
        t = g.shape[0]
        p = _check_pref(fn, pref, t, g.dtype)
        gn = g / _scale(g)
        lam, v = jnp.linalg.eigh(gn)
        tol = jnp.max(lam) * t * jnp.finfo(g.dtype).eps
        keep = lam > tol
        lam_safe = jnp.where(keep, lam, 1.0)
        inv_sqrt = jnp.where(keep, 1.0 / jnp.sqrt(lam_safe), 0.0)
        if scale_mode == "min":
            scale = jnp.min(jnp.where(keep, lam, jnp.inf))
        elif scale_mode == "median":
            scale = jnp.nanmedian(jnp.where(keep, lam, jnp.nan))
        else:
            scale = jnp.sum(jnp.where(keep, lam, 0.0)) / jnp.maximum(keep.sum(), 1)
        scale = jnp.where(keep.any(), scale, 0.0)
        b = jnp.sqrt(scale) * (v * inv_sqrt) @ v.T
        return b @ p

    return Aggregator(fn, weighting)


# ---------------------------------------------------------------------------------------------
# UPGrad (Quinton & Rey 2024)


def _box_qp(a: jax.Array, u: jax.Array, max_iters: int, tol: float) -> jax.Array:
    """Rows ``v_r = argmin_{v ≥ u_r} vᵀ A v`` (A symmetric positive definite) by cyclic coordinate
    descent: ``v_k ← max(u_k, v_k − (A v)_k / A_kk)`` (exact minimisation in coordinate k), all rows
    at once, sweeps in a ``lax.while_loop`` until the largest change is ≤ tol · max|v|."""
    t = a.shape[0]
    diag = jnp.diagonal(a)

    def sweep(v: jax.Array) -> jax.Array:
        for k in range(t):  # static T: unrolled
            col = v @ a[:, k]
            v = v.at[:, k].set(jnp.maximum(u[:, k], v[:, k] - col / diag[k]))
        return v

    def cond(state: tuple[jax.Array, jax.Array, jax.Array]) -> jax.Array:
        i, _, change = state
        return (i < max_iters) & (change > 0)

    def body(state: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[Any, Any, Any]:
        i, v, _ = state
        new = sweep(v)
        change = jnp.max(jnp.abs(new - v)) - tol * jnp.max(jnp.abs(new))
        return i + 1, new, jnp.maximum(change, 0.0)

    init = (jnp.zeros((), jnp.int32), u, jnp.asarray(jnp.inf, a.dtype))
    return jax.lax.while_loop(cond, body, init)[1]


def upgrad(
    *,
    pref: Sequence[float] | None = None,
    norm_eps: float = 1e-4,
    reg_eps: float = 1e-4,
    max_iters: int = 1000,
    tol: float = 1e-10,
) -> Aggregator:
    """UPGrad: average of each task gradient projected onto the dual cone of all task gradients.

    Math (TorchJD's ``UPGrad``; ``p`` the preference vector, 1/T each by default)::

        d = Σ_i p_i · π(g_i),    π(x) = argmin_{y : ⟨g_j, y⟩ ≥ 0 ∀ j} ‖y − x‖²

    The dual of the projection of ``x = Jᵀ u`` is the box-constrained QP on the Gramian
    ``π(Jᵀ u) = Jᵀ v``, ``v = argmin_{v ≥ u} vᵀ G v``, so ``w = Σ_i v^(i)`` with ``u = p_i e_i``.
    As TorchJD, ``G`` is divided by its Frobenius norm (at least ``norm_eps``) and ``reg_eps · I``
    is added; TorchJD solves the QP with ``quadprog`` on the host, here it is exact cyclic
    coordinate descent in a ``lax.while_loop`` (all T problems at once, at most ``max_iters``
    sweeps; stopped when the largest change of a weight is ≤ ``tol`` times the largest weight).

    Properties: ``d`` never conflicts with a task gradient, ``⟨g_j, d⟩ ≥ 0`` for every j (up to
    the regularisation: ``⟨g_j, d⟩ ≥ −reg_eps · ‖G‖_F · Σ_i v^(i)_j``, and the solver's
    tolerance); when no two gradients conflict, every ``g_i`` is its own projection and ``d`` is
    the **mean** (Σ p_i g_i); it is permutation-equivariant in the tasks (with ``pref``).

    Args:
      pref: optional preference vector of T weights (sorted task order), default 1/T each.
      norm_eps, reg_eps: as TorchJD (defaults 1e-4).
      max_iters, tol: of the coordinate-descent solver.

    Example:
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
    _checks.require(fn, "norm_eps", norm_eps, "> 0")
    _checks.require(fn, "reg_eps", reg_eps, "> 0")
    max_iters = _check_iters(fn, "max_iters", max_iters)
    _checks.require(fn, "tol", tol, ">= 0")

    def weighting(g: jax.Array, key: Any) -> jax.Array:
        del key
        t = g.shape[0]
        p = _check_pref(fn, pref, t, g.dtype)
        gn = g / jnp.maximum(jnp.linalg.norm(g), norm_eps) + reg_eps * jnp.eye(t, dtype=g.dtype)
        v = _box_qp(gn, jnp.diag(p), max_iters, tol)
        return v.sum(0)

    return Aggregator(fn, weighting)


# ---------------------------------------------------------------------------------------------
# Nash-MTL (Navon et al. 2022)


def nash_mtl(
    *, max_norm: float | None = 1.0, reg_eps: float = 1e-6, max_iters: int = 100, tol: float = 1e-20
) -> Aggregator:
    """Nash-MTL: the Nash bargaining solution between the tasks, ``G α = 1/α`` (element-wise).

    Math: the update ``d = Σ_i α_i g_i`` maximises ``Σ_i log⟨g_i, d⟩`` in a ball; its optimality
    condition is ``(G α)_i = 1/α_i``, α > 0, on ``G / ‖G‖_F`` (the normalisation of the reference
    code). Then, as the reference code (``max_norm=1.0``), ``d`` is clipped to norm ``max_norm``
    (``‖d‖ = sqrt(αᵀ G α)``, folded into the weights; ``None`` to skip).

    Solver (the approximation): the condition is exactly the stationarity of the strictly convex,
    self-concordant ``f(α) = ½ αᵀ (Ĝ + reg_eps·I) α − Σ_i log α_i``, which we minimise by damped
    Newton (step ``1/(1+λ)`` while the Newton decrement λ ≥ ¼, full steps after; this stays in
    α > 0 and converges quadratically) from the best point on the ray ``a / sqrt(diag Ĝ)``, at most
    ``max_iters`` iterations in a ``lax.while_loop``. The reference code instead solves a sequence
    of ``optim_niter=20`` convex surrogates with cvxpy/ECOS on the host, warm-started from the
    previous step's α, and stops early; at convergence both satisfy ``G α = 1/α``. ``reg_eps``
    keeps α bounded when the gradients are linearly dependent with a positive null combination
    (e.g. two opposite gradients, where no solution exists and the reference solver stops at its
    iteration limit): there our α is ≈ 1/sqrt(reg_eps) and ``d ≈ 0``. Not warm-started across
    steps (no state), not updated only every k steps (``update_weights_every``).

    The weights are those of the normalised Gramian, so ``d`` scales with the gradients: for T
    identical gradients g, ``Ĝ = 11ᵀ/T``, α_i = 1 and d = T·g (the **sum**), before clipping.

    Args:
      max_norm: clip the update to this norm (default 1.0, as the reference code), or None.
      reg_eps: ridge on the normalised Gramian (default 1e-6).
      max_iters: maximum Newton iterations; tol: stop when λ² ≤ tol.

    Example:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> J = jnp.array([[1.0, 0.0], [0.0, 1.0]])    # ‖G‖_F = √2: α_i = 2^(1/4)
      >>> [round(x, 4) for x in mt.nash_mtl(max_norm=None)(J).tolist()]
      [1.1892, 1.1892]

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

    def weighting(g: jax.Array, key: Any) -> jax.Array:
        del key
        t = g.shape[0]
        fro = jnp.linalg.norm(g)
        gn = g / jnp.where(fro > 0, fro, 1.0)
        a = gn + reg_eps * jnp.eye(t, dtype=g.dtype)
        ahat = 1.0 / jnp.sqrt(jnp.diagonal(a))
        alpha0 = ahat * jnp.sqrt(t / (ahat @ a @ ahat))

        def cond(state: tuple[jax.Array, jax.Array, jax.Array]) -> jax.Array:
            i, _, dec = state
            return (i < max_iters) & (dec > tol)

        def body(state: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[Any, Any, Any]:
            i, alpha, _ = state
            grad = a @ alpha - 1.0 / alpha
            hess = a + jnp.diag(1.0 / alpha**2)
            step = -jnp.linalg.solve(hess, grad)
            dec = jnp.maximum(-(grad @ step), 0.0)  # λ²
            lam = jnp.sqrt(dec)
            size = jnp.where(lam < 0.25, 1.0, 1.0 / (1.0 + lam))
            alpha = jnp.maximum(alpha + size * step, jnp.finfo(g.dtype).tiny)
            return i + 1, alpha, dec

        init = (jnp.zeros((), jnp.int32), alpha0, jnp.asarray(jnp.inf, g.dtype))
        alpha = jax.lax.while_loop(cond, body, init)[1]
        if max_norm is not None:
            norm = jnp.sqrt(jnp.maximum(alpha @ g @ alpha, 0.0))
            over = norm > max_norm
            alpha = alpha * jnp.where(over, max_norm / jnp.where(over, norm, 1.0), 1.0)
        return alpha

    return Aggregator(fn, weighting)


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
        tasks = _task_names(fn, "task_losses", task_losses)
        if len(tasks) != t:
            raise ValueError(
                f"jaxloss.{fn}: `task_losses` must have {t} tasks (as given to init); "
                f"got {len(tasks)}."
            )
        dt = state.weights.dtype
        losses = jnp.stack(
            [_scalar(fn, "task_losses", n, task_losses[n]) for n in tasks]
        ).astype(dt)
        losses = jax.lax.stop_gradient(losses)
        norms = jnp.sqrt(jnp.maximum(jnp.diagonal(jax.lax.stop_gradient(g)), 0.0)).astype(dt)
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
            updates: Any, state: GradNormState, params: Any = None, *, task_losses: Any = None,
            **extra: Any
        ) -> tuple[Any, GradNormState]:
            del params, extra
            if task_losses is None:
                raise ValueError(
                    "jaxloss.grad_norm: the transform's update needs `task_losses=` (a mapping "
                    "task -> scalar loss)."
                )
            _check_same_tasks("grad_norm", "task_losses", task_losses, sorted(names), "init")
            sub = updates if select is None else select(updates)
            w, state = gn.update(gramian(sub), task_losses, state)
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

    Example:
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
        self, task_names: Iterable[str], *, min_losses: Mapping[str, Any] | None = None,
        dtype: Any = None
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


def famo(
    *, learning_rate: float = 0.025, weight_decay: float = 1e-3, eps: float = 1e-8
) -> FAMO:
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
      learning_rate: of the logits' Adam (default 0.025, the paper's).
      weight_decay: γ (default 1e-3).
      eps: added to D, > 0 (default 1e-8, as the reference code): a loss at its lower bound
        would otherwise give log 0 and a division by 0.

    Example:
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
