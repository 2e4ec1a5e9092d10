"""Gradient aggregators that equalise the tasks: IMTL-G (equal projections), Aligned-MTL (an
orthogonal, equal-norm system) and Nash-MTL (the Nash bargaining solution).

Each returns an :class:`~jaxloss.multitask.Aggregator` (interface in ``_aggregator``). IMTL-G and
Aligned-MTL need small singular values: they use the QR factor of the unit rows and the SVDs of
``_solvers`` instead of an eigen-decomposition of the Gramian, so they stay accurate at any spread
of the task-gradient norms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from .._core import checks as _checks
from ._aggregator import Aggregator, _check_pref, _Rows
from ._common import _check_iters, _eps, _safe_div
from ._solvers import _factor_svd, _jacobi_right

__all__ = ["aligned_mtl", "imtl_g", "nash_mtl"]


# ---------------------------------------------------------------------------------------------
# IMTL-G (Liu et al. 2021)


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
        _checks.require(fn, "max_norm", max_norm, _checks.POSITIVE)
    _checks.require(fn, "reg_eps", reg_eps, _checks.POSITIVE)
    max_iters = _check_iters(fn, "max_iters", max_iters)
    _checks.require(fn, "tol", tol, _checks.NONNEGATIVE)

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
