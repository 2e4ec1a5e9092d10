"""Multi-task gradient methods: Jacobian helpers, aggregators (closed forms and properties), optax.

float64 (tests/conftest.py). References are NumPy float64 implementations written from the papers'
algorithms on the full gradient vectors (never by calling jaxloss), or closed forms.
"""

from __future__ import annotations

import functools

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxloss.multitask as mt

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)

# Shared instances: each keeps its compiled solver, so the session compiles each shape once.
PC = mt.pcgrad()
MGDA = mt.mgda()
CA0 = mt.cagrad(0.5, rescale=0)


def rand_jac(seed, t, d=6, scale=True):
    rng = np.random.default_rng(seed)
    j = rng.normal(size=(t, d))
    if scale:
        j *= rng.uniform(0.1, 5.0, size=(t, 1))
    return j


# Deterministic aggregators (name -> factory) and their "agreeing gradients" result per unit g:
# identical task gradients g -> factor * g.
DETERMINISTIC = {
    "sum": (mt.sum_aggregator, lambda t, n: t),
    "mean": (mt.mean_aggregator, lambda t, n: 1.0),
    "mgda": (mt.mgda, lambda t, n: 1.0),
    "upgrad": (mt.upgrad, lambda t, n: 1.0),
    "imtl_g": (mt.imtl_g, lambda t, n: 1.0),
    "aligned_mtl": (mt.aligned_mtl, lambda t, n: 1.0),
    "cagrad": (mt.cagrad, lambda t, n: 1.5 / 1.25),  # (1 + c)/(1 + c²), c = 0.5
    # ⟨g, d⟩ = 1/α and G α = 1/α: d = sqrt(T) g / ‖g‖ (the paper's scale)
    "nash_mtl": (functools.partial(mt.nash_mtl, max_norm=None), lambda t, n: np.sqrt(t) / n),
}


@functools.cache
def jitted(name, t):
    """One compiled weights function per (method, T): keeps the test session fast."""
    agg = DETERMINISTIC[name][0]()
    return jax.jit(lambda g: agg.weights(g))


def direction(name, j):
    w = jitted(name, j.shape[0])(jnp.asarray(j @ j.T))
    return np.asarray(w) @ j, np.asarray(w)


# ---------------------------------------------------------------------------------------------
# Jacobian helpers


def _model(params, x):
    h = jnp.tanh(x @ params["w1"])
    return {
        "reg": jnp.mean((h @ params["w2"] - 1.0) ** 2),
        "cls": jnp.mean(jnp.sin(h @ params["w3"])),
        "aux": jnp.sum(params["w1"] ** 2),
    }


def _params(seed=0):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    return {
        "w1": jax.random.normal(k1, (3, 4)),
        "w2": jax.random.normal(k2, (4,)),
        "w3": jax.random.normal(k3, (4,)),
    }


def test_task_value_and_jacobian_matches_jacrev():
    params, x = _params(), jnp.linspace(-1, 1, 15).reshape(5, 3)
    losses, jac = mt.task_value_and_jacobian(_model)(params, x)
    assert list(losses) == ["aux", "cls", "reg"]  # sorted
    ref = jax.jacrev(lambda p: jnp.stack([_model(p, x)[t] for t in sorted(losses)]))(params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14), jac, ref)
    for t, v in _model(params, x).items():
        np.testing.assert_allclose(losses[t], v)


def test_task_value_and_jacobian_has_aux_argnums_and_jit():
    def f(x, params):
        out = _model(params, x)
        return out, {"n": 3}

    params, x = _params(1), jnp.ones((2, 3))
    (_losses, aux), jac = jax.jit(mt.task_value_and_jacobian(f, 1, has_aux=True))(x, params)
    assert aux == {"n": 3} or int(aux["n"]) == 3
    _, jac_eager = mt.task_value_and_jacobian(f, 1, has_aux=True)(x, params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12), jac, jac_eager)
    assert jac["w1"].shape == (3, 3, 4)


def test_task_value_and_jacobian_errors():
    with pytest.raises(TypeError, match="task_value_and_jacobian: `task_losses"):
        mt.task_value_and_jacobian(lambda p: p)(jnp.ones(2))
    with pytest.raises(ValueError, match="must be a scalar"):
        mt.task_value_and_jacobian(lambda p: {"a": p})(jnp.ones(2))
    with pytest.raises(ValueError, match="`argnums`"):
        mt.task_value_and_jacobian(lambda p: {"a": p}, argnums=-1)


def test_rep_jacobian_and_weighted_backward():
    def encode(p, x):
        return jnp.tanh(x @ p["w1"])

    def heads(p, z, x):
        return {"reg": jnp.mean((z @ p["w2"] - 1.0) ** 2), "cls": jnp.mean(jnp.sin(z @ p["w3"]))}

    params, x = _params(2), jnp.linspace(-1, 1, 15).reshape(5, 3)
    f = mt.task_value_and_rep_jacobian(encode, heads)
    _, jz, backward = f(params, x)
    jz_jit, g_jit = jax.jit(lambda p, xx, w: (f(p, xx)[1], f(p, xx)[2](w)))(
        params, x, jnp.array([0.3, 1.7]))
    z = encode(params, x)
    ref_jz = jax.jacrev(lambda zz: jnp.stack([heads(params, zz, x)[t] for t in ["cls", "reg"]]))(z)
    np.testing.assert_allclose(jz, ref_jz, rtol=1e-12)
    w = jnp.array([0.3, 1.7])
    g = backward(w)
    ref = jax.grad(lambda p: 0.3 * heads(p, encode(p, x), x)["cls"]
                   + 1.7 * heads(p, encode(p, x), x)["reg"])(params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12), g, ref)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12), g_jit, ref)
    np.testing.assert_allclose(jz_jit, ref_jz, rtol=1e-12)
    # MGDA-UB: weights from the representation Gramian
    wu = MGDA.weights(mt.gramian(jz))
    np.testing.assert_allclose(float(wu.sum()), 1.0)
    with pytest.raises(ValueError, match="`w` must have shape"):
        backward(jnp.ones(3))


def test_gramian_and_combine():
    jac = {"a": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones((2, 2, 2))}
    flat = np.concatenate([np.arange(6.0).reshape(2, 3), np.ones((2, 4))], axis=1)
    np.testing.assert_allclose(mt.gramian(jac), flat @ flat.T)
    out = mt.combine(jac, jnp.array([2.0, -1.0]))
    np.testing.assert_allclose(out["a"], 2 * flat[0, :3] - flat[1, :3])
    assert out["b"].shape == (2, 2)
    with pytest.raises(ValueError, match="same leading task axis"):
        mt.gramian({"a": jnp.ones((2, 3)), "b": jnp.ones((3,))})
    with pytest.raises(ValueError, match="`weights` must have shape"):
        mt.combine(jac, jnp.ones(3))


# ---------------------------------------------------------------------------------------------
# PCGrad


def pcgrad_reference(j, perms):
    """Algorithm 1 of Yu et al. on the full vectors, with the given per-task orders."""
    t = j.shape[0]
    out = np.zeros(j.shape[1])
    for i in range(t):
        gi = j[i].copy()
        for k in perms[i]:
            if k == i:
                continue
            dot = gi @ j[k]
            if dot < 0:
                gi = gi - dot / (j[k] @ j[k]) * j[k]
        out += gi
    return out


@pytest.mark.parametrize("seed", range(2))
def test_pcgrad_two_conflicting_exact(seed):
    rng = np.random.default_rng(seed)
    g1 = rng.normal(size=5)
    g2 = -g1 + 0.5 * rng.normal(size=5)
    assert g1 @ g2 < 0
    expected = (g1 - (g1 @ g2) / (g2 @ g2) * g2) + (g2 - (g2 @ g1) / (g1 @ g1) * g1)
    d = PC(jnp.asarray(np.stack([g1, g2])), key=jax.random.key(seed))
    np.testing.assert_allclose(d, expected, rtol=1e-12, atol=1e-12)
    # and the projected gradients no longer conflict with the other task
    assert float(d @ g1) >= -1e-12 or float(d @ g2) >= -1e-12


def test_pcgrad_matches_reference_with_same_orders():
    j = rand_jac(3, 4, 5)
    key = jax.random.key(7)
    perms = np.asarray(jax.vmap(lambda k: jax.random.permutation(k, 4))(jax.random.split(key, 4)))
    np.testing.assert_allclose(PC(jnp.asarray(j), key=key), pcgrad_reference(j, perms),
                               rtol=1e-10, atol=1e-12)


def test_pcgrad_non_conflicting_is_sum_and_key_required():
    j = np.abs(rand_jac(4, 3, 5))  # all inner products > 0
    np.testing.assert_allclose(PC(jnp.asarray(j), key=jax.random.key(0)), j.sum(0))
    with pytest.raises(ValueError, match="pcgrad: `key` is required"):
        PC(jnp.asarray(j))
    with pytest.raises(ValueError, match="`key` is required"):
        mt.pcgrad().transform()


# ---------------------------------------------------------------------------------------------
# MGDA


@pytest.mark.parametrize("seed", range(3))
def test_mgda_two_task_closed_form(seed):
    j = rand_jac(seed, 2, 4)
    g1, g2 = j
    w1 = np.clip((g2 - g1) @ g2 / ((g1 - g2) @ (g1 - g2)), 0, 1)
    expected = w1 * g1 + (1 - w1) * g2
    d, _ = direction("mgda", j)
    np.testing.assert_allclose(d, expected, rtol=1e-10, atol=1e-12)


def test_mgda_two_task_clipped_case():
    j = np.array([[1.0, 0.0], [3.0, 0.0]])  # min norm in the hull is g1
    d, w = direction("mgda", j)
    np.testing.assert_allclose(w, [1.0, 0.0])
    np.testing.assert_allclose(d, [1.0, 0.0])


@pytest.mark.parametrize("seed", range(4))
def test_mgda_min_norm_optimality(seed):
    """KKT on the simplex: g_i · d ≥ ‖d‖² for every i (equality on the support)."""
    j = rand_jac(seed, 5, 8) if seed % 2 else rand_jac(seed, 4, 3)
    d, w = direction("mgda", j)
    scale = np.trace(j @ j.T) / j.shape[0]
    assert np.all(j @ d - d @ d >= -1e-6 * scale)
    np.testing.assert_allclose(w.sum(), 1.0, rtol=1e-12)
    assert np.all(w >= 0)
    # d is no longer than any gradient nor any pairwise min-norm point
    assert d @ d <= np.min(np.sum(j**2, 1)) + 1e-12


# ---------------------------------------------------------------------------------------------
# UPGrad


def test_upgrad_two_conflicting_closed_form():
    g1, g2 = np.array([1.0, 0.0]), np.array([-1.0, 1.0])
    p1 = g1 - (g1 @ g2) / (g2 @ g2) * g2  # each projected onto the other's half-space boundary
    p2 = g2 - (g2 @ g1) / (g1 @ g1) * g1
    d, _ = direction("upgrad", np.stack([g1, g2]))
    np.testing.assert_allclose(d, (p1 + p2) / 2, rtol=1e-3)  # regularised QP (reg_eps=1e-4)


@SETTINGS
@given(
    t=st.integers(2, 5),
    data=st.data(),
)
def test_upgrad_never_conflicts(t, data):
    j = data.draw(hnp.arrays(np.float64, (t, 4), elements=st.floats(-10, 10, width=32)))
    d, w = direction("upgrad", j)
    tr = np.trace(j @ j.T)
    # ⟨g_k, d⟩ ≥ −reg_eps·trace(G)·w_k (the documented regularisation slack, up to rounding)
    assert np.all(j @ d >= -1e-4 * tr * np.maximum(w, 0) - 1e-12 * (1 + tr))
    assert np.all(np.isfinite(d))


def test_upgrad_non_conflicting_is_mean():
    j = np.abs(rand_jac(5, 4, 6))
    d, _ = direction("upgrad", j)
    np.testing.assert_allclose(d, j.mean(0), rtol=1e-9)


# ---------------------------------------------------------------------------------------------
# CAGrad, IMTL-G, Aligned-MTL, Nash-MTL


def test_cagrad_c0_is_mean_and_improves_worst_task():
    j = rand_jac(6, 3, 5)
    d0 = mt.cagrad(0.0, rescale=0)(jnp.asarray(j))
    np.testing.assert_allclose(d0, j.mean(0), rtol=1e-12)  # no additive guards: exact
    d = np.asarray(CA0(jnp.asarray(j)))
    g0 = j.mean(0)
    # primal feasibility and optimality (g_0 is feasible, so the worst inner product improves)
    assert np.linalg.norm(d - g0) <= 0.5 * np.linalg.norm(g0) * (1 + 1e-6)
    assert np.min(j @ d) >= np.min(j @ g0) - 1e-8


def test_cagrad_matches_scipy_dual():
    import scipy.optimize as so
    j = rand_jac(8, 4, 6)
    g = j @ j.T
    b, rad = g.mean(1), 0.5 * np.sqrt(g.mean())

    def f(x):
        return x @ b + rad * np.sqrt(x @ g @ x)

    cons = {"type": "eq", "fun": lambda x: x.sum() - 1}
    ref = so.minimize(f, np.ones(4) / 4, bounds=[(0, 1)] * 4, constraints=cons, tol=1e-12).x
    gw = ref @ j
    expected = (g0 := j.mean(0)) + rad / np.linalg.norm(gw) * gw
    d = CA0(jnp.asarray(j))
    np.testing.assert_allclose(d, expected, rtol=1e-4, atol=1e-6 * np.linalg.norm(g0))


@pytest.mark.parametrize("seed", range(3))
def test_imtl_g_equal_projections(seed):
    j = rand_jac(seed, 3, 5)
    d, w = direction("imtl_g", j)
    proj = j @ d / np.linalg.norm(j, axis=1)
    np.testing.assert_allclose(proj, proj[0], rtol=1e-9)
    np.testing.assert_allclose(w.sum(), 1.0, rtol=1e-12)


def test_aligned_mtl_aligns_the_system():
    j = rand_jac(9, 3, 5)
    g = j @ j.T
    lam_min = np.linalg.eigvalsh(g).min()
    b = np.stack([np.asarray(mt.aligned_mtl(pref=np.eye(3)[i]).weights(g)) for i in range(3)], 1)
    aligned = b.T @ j  # rows: the aligned gradients
    np.testing.assert_allclose(aligned @ aligned.T, lam_min * np.eye(3), atol=1e-9 * np.trace(g))
    for mode in ("median", "rmse"):
        assert np.all(np.isfinite(mt.aligned_mtl(scale_mode=mode).weights(g)))


def test_nash_mtl_bargaining_condition_and_clipping():
    j = rand_jac(10, 4, 6)
    g = j @ j.T
    alpha = np.asarray(mt.nash_mtl(max_norm=None, reg_eps=1e-12).weights(g))
    np.testing.assert_allclose(alpha * (g @ alpha), 1.0, rtol=1e-8)  # on G itself (the paper)
    clipped = np.asarray(mt.nash_mtl(max_norm=0.1).weights(g))
    np.testing.assert_allclose(np.sqrt(clipped @ g @ clipped), 0.1, rtol=1e-9)
    np.testing.assert_allclose(clipped / np.linalg.norm(clipped), alpha / np.linalg.norm(alpha),
                               rtol=1e-4)


# ---------------------------------------------------------------------------------------------
# Properties shared by the deterministic aggregators


@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
def test_agreeing_gradients(name):
    g = np.array([0.5, -2.0, 1.0])
    t = 3
    j = np.tile(g, (t, 1))
    d, _ = direction(name, j)
    factor = DETERMINISTIC[name][1](t, np.linalg.norm(g))
    np.testing.assert_allclose(d, factor * g, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
def test_permutation_equivariance(name):
    j = rand_jac(11, 3, 5)
    perm = np.array([2, 0, 1])
    d, w = direction(name, j)
    dp, wp = direction(name, j[perm])
    np.testing.assert_allclose(dp, d, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(wp, w[perm], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
def test_jit_equals_eager_and_zero_gradients_finite(name):
    agg = DETERMINISTIC[name][0]()
    j = {"a": jnp.asarray(rand_jac(12, 3, 4)), "b": jnp.asarray(rand_jac(13, 3, 2))}
    eager = agg(j)
    jit = jax.jit(lambda x: agg(x))(j)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12), eager, jit)
    zero = jitted(name, 3)(jnp.zeros((3, 3)))
    assert np.all(np.isfinite(zero))


@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
def test_nan_gradient_gives_nan_direction(name):
    """A NaN in one task's gradient: the Gramian methods' weights are all NaN (the direction is
    undefined; no guard may treat the task as a zero gradient); sum and mean stay the plain sum,
    NaN only where the NaN is."""
    j = rand_jac(17, 3, 4)
    j[1, 2] = np.nan
    d = np.asarray(jax.jit(DETERMINISTIC[name][0]())(jnp.asarray(j)))
    if name in ("sum", "mean"):
        assert np.isnan(d[2]) and np.all(np.isfinite(np.delete(d, 2)))
    else:
        assert np.all(np.isnan(d))
    g = j @ j.T
    w = np.asarray(jitted(name, 3)(jnp.asarray(g)))
    assert np.all(np.isnan(w)) or name in ("sum", "mean")


def test_pcgrad_jit_equals_eager():
    j, key = jnp.asarray(rand_jac(14, 3, 4)), jax.random.key(3)
    jitted_pc = jax.jit(lambda x, k: PC(x, key=k))
    np.testing.assert_allclose(PC(j, key=key), jitted_pc(j, key), rtol=1e-12)
    j = j.at[0, 1].set(jnp.nan)
    assert np.all(np.isnan(np.asarray(PC(j, key=key))))


def test_gramian_validation():
    with pytest.raises(ValueError, match="upgrad: `gramian` must be a square"):
        mt.upgrad().weights(jnp.ones((2, 3)))
    with pytest.raises(TypeError, match="upgrad"):
        mt.upgrad().weights(jnp.ones((2, 2), jnp.int32))
    with pytest.raises(ValueError, match="cagrad: `c`"):
        mt.cagrad(-1.0)
    with pytest.raises(ValueError, match="`scale_mode`"):
        mt.aligned_mtl(scale_mode="max")
    with pytest.raises(ValueError, match="`max_iters`"):
        mt.mgda(max_iters=0)


# ---------------------------------------------------------------------------------------------
# optax integration


def test_transform_in_optax_chain_trains_under_jit():
    params, x = _params(3), jnp.linspace(-1, 1, 15).reshape(5, 3)
    vj = mt.task_value_and_jacobian(_model)
    for agg, key in [(mt.upgrad(), None), (mt.pcgrad(), jax.random.key(0))]:
        opt = optax.chain(agg.transform(key), optax.sgd(0.05))
        state = opt.init(params)

        @functools.partial(jax.jit, static_argnums=2)
        def step(p, s, opt):
            losses, jac = vj(p, x)
            upd, s = opt.update(jac, s, p)
            return optax.apply_updates(p, upd), s, losses

        p, s = params, state
        first = None
        for _ in range(5):
            p, s, losses = step(p, s, opt)
            first = first or float(sum(losses.values()))
        assert float(sum(vj(p, x)[0].values())) < first
        if key is not None:  # the key advances
            assert not np.array_equal(jax.random.key_data(s[0].key), jax.random.key_data(key))


def test_transform_equals_direct_call():
    j = {"w": jnp.asarray(rand_jac(15, 3, 4))}
    opt = optax.chain(mt.mgda().transform(), optax.scale(-1.0))
    upd, _ = opt.update(j, opt.init({"w": jnp.zeros(4)}))
    np.testing.assert_allclose(upd["w"], -mt.mgda()(j)["w"], rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# GradNorm


def test_grad_norm_one_step_closed_form():
    gn = mt.grad_norm(alpha=1.0, optimizer=optax.sgd(0.1))
    state = gn.init(["a", "b"])
    g = np.diag([4.0, 1.0])  # norms 2, 1
    w, state = gn.update({"a": 2.0, "b": 1.0}, state, gramian=jnp.asarray(g))
    np.testing.assert_allclose(vec(w), [1.0, 1.0])  # weights used for this step: the initial ones
    # first step: r = 1; G = (2, 1), Ḡ = 1.5; sign(G − 1.5) = (+, −); ∇_w = (2, −1)
    raw = np.array([1.0 - 0.2, 1.0 + 0.1])
    np.testing.assert_allclose(vec(state.weights), 2 * raw / raw.sum(), rtol=1e-12)
    np.testing.assert_allclose(state.initial_losses, [2.0, 1.0])
    # second step: task a's loss ratio fell to 1/2: r = (2/3, 4/3); from the Jacobian this time
    jac = jnp.asarray([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # the same norms
    w2, state2 = gn.update({"a": 1.0, "b": 1.0}, state, jacobian=jac)
    np.testing.assert_allclose(vec(w2), vec(state.weights))
    ww = vec(state.weights)
    gg = ww * np.array([2.0, 1.0])
    target = gg.mean() * np.array([2 / 3, 4 / 3])
    raw = ww - 0.1 * np.sign(gg - target) * np.array([2.0, 1.0])
    np.testing.assert_allclose(vec(state2.weights), 2 * raw / raw.sum(), rtol=1e-12)


def vec(weights):
    """A dict task -> weight as an array in sorted task order."""
    return np.asarray([weights[t] for t in sorted(weights)])


def test_grad_norm_old_update_order_warns_and_returns_an_array():
    gn = mt.grad_norm(alpha=1.0, optimizer=optax.sgd(0.1))
    g = jnp.diag(jnp.array([4.0, 1.0]))
    with pytest.warns(DeprecationWarning, match=r"update\(task_losses, state, gramian=gramian\)"):
        w_old, s_old = gn.update(g, {"a": 2.0, "b": 1.0}, gn.init(["a", "b"]))
    w_new, s_new = gn.update({"a": 2.0, "b": 1.0}, gn.init(["a", "b"]), gramian=g)
    np.testing.assert_allclose(w_old, vec(w_new), rtol=0)
    np.testing.assert_allclose(vec(s_old.weights), vec(s_new.weights), rtol=0)


def test_grad_norm_needs_exactly_one_of_jacobian_and_gramian():
    gn = mt.grad_norm()
    state = gn.init(["a", "b"])
    with pytest.raises(ValueError, match=r"grad_norm: pass exactly one of `jacobian=`"):
        gn.update({"a": 1.0, "b": 1.0}, state)
    with pytest.raises(ValueError, match=r"grad_norm: pass exactly one of `jacobian=`"):
        gn.update({"a": 1.0, "b": 1.0}, state, jacobian=jnp.eye(2), gramian=jnp.eye(2))
    with pytest.raises(ValueError, match=r"grad_norm: `jacobian` must have 2 rows"):
        gn.update({"a": 1.0, "b": 1.0}, state, jacobian=jnp.eye(3))
    with pytest.raises(ValueError, match=r"grad_norm: `task_losses` .*missing \['b'\]"):
        gn.update({"a": 1.0}, state, jacobian=jnp.eye(2))


def test_grad_norm_transform_with_extra_args():
    gn = mt.grad_norm()
    opt = optax.chain(gn.transform(["a", "b"]), optax.adam(1e-2))
    params = {"w": jnp.zeros(3)}
    state = opt.init(params)
    jac = {"w": jnp.asarray(rand_jac(16, 2, 3))}
    upd, state = jax.jit(lambda j, s: opt.update(j, s, params, task_losses={"a": 1.0, "b": 2.0}))(
        jac, state)
    assert upd["w"].shape == (3,)
    with pytest.raises(ValueError, match="needs `task_losses=`"):
        opt.update(jac, state, params)


# ---------------------------------------------------------------------------------------------
# FAMO


def test_famo_weights_and_update_match_reference():
    fm = mt.famo(learning_rate=0.025, weight_decay=1e-3)
    state = fm.init(["a", "b", "c"])
    losses = {"a": 1.0, "b": 2.0, "c": 4.0}
    w, state = fm.update(losses, state)
    l0 = np.array([1.0, 2.0, 4.0]) + 1e-8
    z = np.ones(3) / 3
    c = np.sum(z / l0)
    np.testing.assert_allclose([w[k] for k in "abc"], z / (c * l0), rtol=1e-12)
    np.testing.assert_allclose(sum(float(v) for v in w.values()), 1.0)
    np.testing.assert_allclose(state.logits, np.zeros(3))  # no step at the first update
    # gradient of the FAMO objective c⁻¹ Σ z log D equals Σ w ∇L
    new = {"a": 0.5, "b": 2.0, "c": 5.0}
    delta = np.log(l0) - np.log(np.array([0.5, 2.0, 5.0]) + 1e-8)
    jac_sm = np.diag(z) - np.outer(z, z)
    grad = jac_sm.T @ delta  # + weight decay · 0
    # Adam's first step: −lr · g / (|g| + eps)
    expected = -0.025 * grad / (np.abs(grad) + 1e-8)
    # the paper's variant: the same batch's losses after the model step
    state2 = fm.observe(new, state)
    np.testing.assert_allclose(state2.logits, expected, rtol=1e-6)
    # the next update does not step again; its weights use the stepped logits
    w3, state3 = fm.update(new, state2)
    np.testing.assert_allclose(state3.logits, expected, rtol=1e-6)
    z3 = np.exp(expected) / np.exp(expected).sum()
    d3 = np.array([0.5, 2.0, 5.0]) + 1e-8
    np.testing.assert_allclose([w3[k] for k in "abc"], z3 / d3 / np.sum(z3 / d3), rtol=1e-6)
    # the default variant: the next update's losses stand for the losses after the step
    w4, state4 = fm.update(new, state)
    np.testing.assert_allclose(state4.logits, expected, rtol=1e-6)
    np.testing.assert_allclose([w4[k] for k in "abc"], [w3[k] for k in "abc"], rtol=1e-12)


def test_famo_jit():
    fm = mt.famo()
    state = fm.init(["a", "b"], min_losses={"a": 0.0, "b": 0.1})

    @jax.jit
    def step(state, la, lb):
        w, state = fm.update({"a": la, "b": lb}, state)
        return w, fm.observe({"a": la * 0.9, "b": lb}, state)

    w, state = step(state, jnp.array(1.0), jnp.array(2.0))
    assert np.all(np.isfinite(state.logits)) and set(w) == {"a", "b"}
    w, state = step(state, jnp.array(0.9), jnp.array(2.0))
    assert np.all(np.isfinite(state.logits)) and set(w) == set(state.weights)


def test_famo_eps_must_be_positive():
    # eps = 0 gave NaN weights once a loss reached its lower bound (log 0, 0 / 0)
    with pytest.raises(ValueError, match=r"jaxloss\.famo: `eps` must be finite and > 0; got 0"):
        mt.famo(eps=0.0)
