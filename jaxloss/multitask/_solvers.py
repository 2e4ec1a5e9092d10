"""Solvers of the aggregators, in pure JAX with bounded loops: exact active-set QPs and a
one-sided Jacobi SVD.

- :func:`_simplex_qp`: ``argmin ½ vᵀ A v + bᵀ v`` on a scaled simplex (MGDA, CAGrad's inner
  problem); :func:`_bounded_qp`: ``argmin_{x ≥ lo} ½ xᵀ A x`` (UPGrad's projections). Primal
  active-set methods with the active set as a mask, ending at the exact optimum (up to rounding)
  in about 2T steps, inside a ``lax.while_loop`` with a fixed maximum.
- :func:`_jacobi_right` (Aligned-MTL) and :func:`_factor_svd` (IMTL-G, Aligned-MTL): singular
  values of the unit-row factor, accurate at any spread of the task-gradient norms.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._aggregator import _Rows
from ._common import _eps, _safe_div

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


def _factor_svd(r: _Rows) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(S, Wᵀ, keep)`` of the factor R = U S Wᵀ of the unit rows (Ĝ = W S² Wᵀ), with the
    numerical rank as a mask: singular values above ``max(S) · max(k, T) · eps``."""
    f = r.factor
    _, sv, wt = jnp.linalg.svd(f, full_matrices=False)
    keep = sv > jnp.max(sv) * max(f.shape) * _eps(f.dtype)
    return sv, wt, keep


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
