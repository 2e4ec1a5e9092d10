"""Multi-task aggregators in float32 at any task scale: the direction of the float64 answer.

For every aggregator, T ∈ {1, 3, 64} tasks (in 80 dimensions), per-task norm ratios 1, 1e3 and
1e6 (norms spread log-uniformly, in a random task order), random and conflicting gradients, and
absolute scales 1e-20, 1 and 1e20 (all combinations for T ≤ 3; at T = 64 each Jacobian at one
scale, in rotation): the float32 direction ``agg(J)`` is within 1% of the float64
one (the same method on the same Jacobian at scale 1: every method's direction is invariant to a
common scale), and the documented properties hold in float32 too (common descent for MGDA and
UPGrad up to UPGrad's documented slack, equal projections for IMTL-G, the norm cap of Nash-MTL).
One jitted, vmapped program per (method, T, dtype) runs all the Jacobians of that shape.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss.multitask as mt

N = 80
RATIOS = (1.0, 1e3, 1e6)
SCALES = (1e-20, 1.0, 1e20)
KEY = jax.random.key(0)

AGG = {
    "sum": mt.sum_aggregator(),
    "mean": mt.mean_aggregator(),
    "pcgrad": mt.pcgrad(),
    "mgda": mt.mgda(),
    "upgrad": mt.upgrad(),
    "imtl_g": mt.imtl_g(),
    "aligned_mtl": mt.aligned_mtl(),
    "cagrad": mt.cagrad(),
    "nash_mtl": mt.nash_mtl(),  # max_norm=1: the cap only scales d
}


def _base(t: int) -> np.ndarray:
    """[2 · len(RATIOS), t, N] float64 Jacobians: random and conflicting, at each norm ratio."""
    rng = np.random.default_rng(1200 + t)
    out = []
    for ratio in RATIOS:
        for conflicting in (False, True):
            j = rng.normal(size=(t, N))
            j /= np.linalg.norm(j, axis=1, keepdims=True)
            if conflicting and t > 1:  # the last task opposes the mean of the others
                m = j[:-1].mean(0)
                j[-1] = -m / np.linalg.norm(m) + 0.3 * j[-1]
                j[-1] /= np.linalg.norm(j[-1])
            norms = np.logspace(0, -np.log10(ratio), t) if t > 1 else np.ones(1)
            out.append(j * rng.permutation(norms)[:, None])
    return np.stack(out)


def _scales(t: int) -> list[np.ndarray]:
    """Each scale for every base Jacobian; at T = 64 (the costly solves) each base Jacobian at
    one scale, in rotation, so that every ratio, kind and scale still occurs."""
    n = 2 * len(RATIOS)
    if t < 64:
        return [np.full((n, 1, 1), s) for s in SCALES]
    return [np.asarray([SCALES[k % len(SCALES)] for k in range(n)])[:, None, None]]


@functools.cache
def _directions(name: str, t: int, dtype: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Jacobians as given, weights, the aggregated directions ``agg(J)``) as float64 arrays."""
    agg = AGG[name]
    base = _base(t)
    if dtype == "float32":
        jac = np.concatenate([base * s for s in _scales(t)]).astype(np.float32)
    else:
        jac = base
    kw = {"key": KEY} if agg.randomised else {}
    def run(j):  # agg(j) is combine(j, jacobian_weights(j)): solve once, return both
        w = agg.jacobian_weights(j, **kw)
        return w, mt.combine(j, w)

    fn = jax.jit(jax.vmap(run))
    w, d = fn(jnp.asarray(jac))
    return np.asarray(jac, np.float64), np.asarray(w, np.float64), np.asarray(d, np.float64)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.mark.parametrize("t", [1, 3, 64])
@pytest.mark.parametrize("name", sorted(AGG))
def test_float32_direction_at_any_scale(name, t):
    jac, w32, d32 = _directions(name, t, "float32")
    assert np.all(np.isfinite(d32))
    assert np.all(np.linalg.norm(d32, axis=1) > 0)
    if t == 1:  # every method returns a positive multiple of the single gradient
        np.testing.assert_allclose(_unit(d32), _unit(jac[:, 0]), atol=1e-6)
        return
    _, _, d64 = _directions(name, t, "float64")
    ref = np.concatenate([d64] * len(_scales(t)))
    err = np.linalg.norm(_unit(d32) - _unit(ref), axis=1)
    assert np.max(err) < 1e-2, err
    unit_rows = jac / np.linalg.norm(jac, axis=2, keepdims=True)
    cos = np.einsum("btn,bn->bt", unit_rows, _unit(d32))
    if name == "mgda":  # common descent: ⟨g_i, d⟩ ≥ ‖d‖² ≥ 0 (cosines, up to float32 rounding)
        assert np.all(cos >= -1e-3)
    if name == "upgrad":  # ⟨g_j, d⟩ ≥ −reg_eps · trace(G) · w_j, on J / max‖g_i‖
        jj = jac / np.max(np.linalg.norm(jac, axis=2), axis=1)[:, None, None]
        dd = np.einsum("bt,btn->bn", w32, jj)
        lhs = np.einsum("btn,bn->bt", jj, dd)
        slack = 1e-4 * np.sum(jj**2, axis=(1, 2))[:, None] * w32
        rounding = 1e-3 * np.linalg.norm(jj, axis=2) * np.linalg.norm(dd, axis=1)[:, None]
        assert np.all(lhs >= -slack - rounding)
    if name == "imtl_g":  # equal projections onto the unit gradients
        np.testing.assert_allclose(cos, cos[:, :1] * np.ones_like(cos), rtol=1e-3)
    if name == "nash_mtl":  # the norm cap holds on the returned float32 direction
        assert np.all(np.linalg.norm(d32, axis=1) <= 1.0 + 1e-6)


def test_grad_norm_at_extreme_norms():
    # GradNorm's transform reads the norms from the normalised rows: no overflow at 1e20
    opt = mt.grad_norm().transform(["a", "b"])
    state = opt.init({"w": jnp.zeros(3, jnp.float32)})
    jac = {"w": jnp.asarray([[1e20, 0.0, 0.0], [0.0, 3e19, 0.0]], jnp.float32)}
    losses = {"a": jnp.float32(1.0), "b": jnp.float32(2.0)}
    upd, state = jax.jit(lambda j, s, l: opt.update(j, s, task_losses=l))(jac, state, losses)
    assert np.all(np.isfinite(upd["w"])) and np.all(np.isfinite(list(state.weights.values())))
