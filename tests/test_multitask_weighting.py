"""Loss-value multi-task weighting: ``jaxloss.multitask`` (uncertainty, DWA, RLW, weighted_total).

References are written from the math in NumPy float64, never by calling jaxloss:

- uncertainty weighting: total = Σ c_i e^(−s_i) L_i + ½ s_i (c = ½ regression, 1 classification),
  ∂/∂L_i = c_i e^(−s_i), ∂/∂s_i = ½ − c_i e^(−s_i) L_i; the optimum σ² = L (regression), 2L
  (classification), checked by training with optax against the least-squares residual variance;
- DWA: w(t) = T softmax((L(t−1)/L(t−2))/τ), 1 for the first two updates;
- RLW: softmax of a standard normal draw, checked by its distribution (mean 1/T, log-ratios with
  variance 2), positivity, the simplex, and key reproducibility.

float64 is on for the session (tests/conftest.py).
"""

from __future__ import annotations

import doctest

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxloss
import jaxloss.multitask as mt
from jaxloss.multitask import _weighting

TASKS = ["depth", "normal", "seg"]  # sorted
KINDS = {"depth": "regression", "normal": "regression", "seg": "classification"}
C = np.array([0.5, 0.5, 1.0])  # c_i in TASKS order for KINDS


def close(actual, expected, rtol=1e-12, atol=1e-12):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


def as_vec(mapping, tasks=TASKS):
    return np.array([float(mapping[t]) for t in tasks])


def as_dict(vec, tasks=TASKS):
    return {t: jnp.asarray(v) for t, v in zip(tasks, vec, strict=True)}


def random_point(seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 5.0, size=3), rng.normal(scale=1.5, size=3)


# ---------------------------------------------------------------------------------------------
# Uncertainty weighting: value and gradients against closed forms


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_uncertainty_value_aux_and_gradients_match_closed_form(seed):
    L, s = random_point(seed)

    def total(losses, logvars):
        return mt.uncertainty_weighting(losses, logvars, kinds={"seg": "classification"})

    (value, aux), (g_loss, g_s) = jax.value_and_grad(total, argnums=(0, 1), has_aux=True)(
        as_dict(L), as_dict(s)
    )
    close(value, np.sum(C * np.exp(-s) * L + 0.5 * s))
    close(as_vec(g_loss), C * np.exp(-s))
    close(as_vec(g_s), 0.5 - C * np.exp(-s) * L)
    close(as_vec(aux["losses"]), L)
    close(as_vec(aux["weights"]), C * np.exp(-s))
    close(as_vec(aux["variances"]), np.exp(s))
    assert sorted(aux) == ["losses", "variances", "weights"]


def test_uncertainty_default_kind_is_regression_for_all_tasks():
    L, s = random_point(3)
    value, aux = mt.uncertainty_weighting(as_dict(L), as_dict(s))
    close(value, np.sum(0.5 * np.exp(-s) * L + 0.5 * s))
    close(as_vec(aux["weights"]), 0.5 * np.exp(-s))
    # An explicit mapping naming every task gives the same as listing only the non-defaults.
    v_all, _ = mt.uncertainty_weighting(as_dict(L), as_dict(s), kinds=KINDS)
    v_one, _ = mt.uncertainty_weighting(as_dict(L), as_dict(s), kinds={"seg": "classification"})
    close(v_all, v_one)


@pytest.mark.parametrize(("kind", "optimum"), [("regression", 1.0), ("classification", 2.0)])
def test_uncertainty_gradient_vanishes_at_the_analytic_optimum(kind, optimum):
    L = 0.37
    g = jax.grad(
        lambda s: mt.uncertainty_weighting({"t": L}, {"t": s}, kinds={"t": kind})[0]
    )
    close(g(jnp.log(optimum * L)), 0.0, atol=1e-14)
    assert float(g(jnp.log(optimum * L) - 0.1)) < 0 < float(g(jnp.log(optimum * L) + 0.1))


def test_simplified_form_is_twice_the_regression_form():
    """The popular exp(−s)L + s (e.g. MultiMAE) is exactly 2 × the regression form."""
    L, s = random_point(4)
    value, _ = mt.uncertainty_weighting(as_dict(L), as_dict(s))
    close(2 * value, np.sum(np.exp(-s) * L + s))


def test_uncertainty_jit_equals_eager():
    L, s = random_point(5)
    eager = mt.uncertainty_weighting(as_dict(L), as_dict(s), kinds=KINDS)
    jitted = jax.jit(lambda a, b: mt.uncertainty_weighting(a, b, kinds=KINDS))(
        as_dict(L), as_dict(s)
    )
    chex.assert_trees_all_close(jitted, eager, rtol=1e-14, atol=0)
    assert jax.tree.structure(jitted) == jax.tree.structure(eager)


def test_uncertainty_low_precision_is_computed_and_returned_in_float32():
    losses = {"a": jnp.array(2.0, jnp.bfloat16), "b": jnp.array(0.5, jnp.float16)}
    logvars = {"a": jnp.array(0.25, jnp.bfloat16), "b": jnp.array(-1.0, jnp.bfloat16)}
    value, aux = mt.uncertainty_weighting(losses, logvars)
    assert value.dtype == jnp.float32
    assert aux["weights"]["a"].dtype == jnp.float32
    close(value, 0.5 * np.exp(-0.25) * 2.0 + 0.125 + 0.5 * np.exp(1.0) * 0.5 - 0.5, rtol=1e-6)


def test_uncertainty_weighting_init():
    params = mt.uncertainty_weighting_init(["seg", "depth"], init=-0.5)
    assert list(params) == ["depth", "seg"]
    assert all(float(v) == -0.5 and v.shape == () for v in params.values())
    assert params["seg"].dtype == jnp.float64  # the default float (x64 is on in the tests)
    assert mt.uncertainty_weighting_init({"a": 1.0}, dtype=jnp.float32)["a"].dtype == jnp.float32
    with pytest.raises(ValueError, match=r"uncertainty_weighting_init: `init` must be a finite"):
        mt.uncertainty_weighting_init(["a"], init=float("nan"))
    with pytest.raises(ValueError, match=r"repeated"):
        mt.uncertainty_weighting_init(["a", "a"])
    with pytest.raises(ValueError, match=r"`dtype` must be a floating dtype; got int32"):
        mt.uncertainty_weighting_init(["a"], dtype=jnp.int32)
    with pytest.raises(TypeError, match=r"`task_names` must be a mapping .* or an iterable"):
        mt.uncertainty_weighting_init("ab")


# ---------------------------------------------------------------------------------------------
# Uncertainty weighting trained with optax: the log-variances reach the analytic optimum


def _two_regression_tasks(seed=0, n=4096, d=4):
    rng = np.random.default_rng(seed)
    sigma = {"a": 0.5, "b": 2.0}
    data, ols_mse = {}, {}
    for t, sg in sigma.items():
        x = rng.normal(size=(n, d))
        y = x @ rng.normal(size=d) + sg * rng.normal(size=n)
        coef = np.linalg.lstsq(x, y, rcond=None)[0]
        data[t] = (jnp.asarray(x), jnp.asarray(y))
        ols_mse[t] = np.mean((x @ coef - y) ** 2)  # the best achievable training MSE
    return sigma, data, ols_mse


@pytest.mark.parametrize("b_kind", ["regression", "classification"])
def test_optax_training_reaches_the_analytic_optimum(b_kind):
    """Model weights and log-variances trained together by one optax.adam.

    Whatever the task weights, each linear model's optimum is least squares, so the final MSE is
    the least-squares residual variance; the log-variances must end at σ² = MSE (regression) or
    σ² = 2·MSE (task b declared "classification"), and the MSE is ≈ the noise variance σ_i².
    """
    sigma, data, ols_mse = _two_regression_tasks()
    kinds = {"b": b_kind}
    factor = {"a": 1.0, "b": 1.0 if b_kind == "regression" else 2.0}
    steps = 400
    opt = optax.adam(optax.cosine_decay_schedule(0.1, steps, alpha=0.01))
    params = {
        "model": {t: jnp.zeros(4) for t in data},
        "log_variances": mt.uncertainty_weighting_init(data),
    }

    def objective(p):
        losses = {
            t: jaxloss.mean(jaxloss.squared_error(x @ p["model"][t], y))
            for t, (x, y) in data.items()
        }
        return mt.uncertainty_weighting(losses, p["log_variances"], kinds=kinds)

    @jax.jit
    def step(p, opt_state):
        (_, _aux), grads = jax.value_and_grad(objective, has_aux=True)(p)
        updates, opt_state = opt.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), opt_state

    opt_state = opt.init(params)
    for _ in range(steps):
        params, opt_state = step(params, opt_state)
    _, aux = objective(params)
    for t in data:
        mse = float(aux["losses"][t])
        var = float(aux["variances"][t])
        close(mse, ols_mse[t], rtol=1e-4)  # the models converged
        close(var, factor[t] * mse, rtol=1e-3)  # the analytic optimum of s
        close(var / factor[t], sigma[t] ** 2, rtol=0.05)  # ≈ the noise variance
        close(np.exp(float(params["log_variances"][t])), var, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# weighted_total


def test_weighted_total_value_gradients_and_aux():
    L, _ = random_point(6)
    w = np.array([0.2, 1.5, 3.0])
    (value, aux), (g_l, g_w) = jax.value_and_grad(mt.weighted_total, argnums=(0, 1),
                                                  has_aux=True)(as_dict(L), as_dict(w))
    close(value, np.sum(w * L))
    close(as_vec(g_l), w)
    close(as_vec(g_w), L)
    close(as_vec(aux["losses"]), L)
    close(as_vec(aux["weights"]), w)
    # Python-number weights, insertion order irrelevant.
    value2, _ = mt.weighted_total(as_dict(L), {"seg": 3.0, "depth": 0.2, "normal": 1.5})
    close(value2, value)


# ---------------------------------------------------------------------------------------------
# Errors: messages name the function, the argument and the tasks


@pytest.mark.parametrize(
    "call",
    [
        lambda L, o: mt.uncertainty_weighting(L, o),
        lambda L, o: mt.weighted_total(L, o),
    ],
    ids=["uncertainty_weighting", "weighted_total"],
)
def test_mismatched_task_names_are_named(call):
    losses = {"depth": 1.0, "seg": 2.0}
    other = {"depth": 0.0, "sgm": 0.0, "extra": 0.0}
    with pytest.raises(ValueError) as err:
        call(losses, other)
    msg = str(err.value)
    assert "jaxloss." in msg
    assert "missing ['seg']" in msg
    assert "unknown ['extra', 'sgm']" in msg


def test_uncertainty_kinds_are_validated():
    losses, logvars = {"a": 1.0, "b": 1.0}, {"a": 0.0, "b": 0.0}
    with pytest.raises(ValueError, match=r"`kinds\['b'\]` must be one of .*; got 'segmentation'"):
        mt.uncertainty_weighting(losses, logvars, kinds={"b": "segmentation"})
    with pytest.raises(ValueError, match=r"`kinds` must only name tasks .* unknown \['c'\]"):
        mt.uncertainty_weighting(losses, logvars, kinds={"c": "regression"})


def test_non_scalar_and_non_float_losses_are_rejected():
    with pytest.raises(ValueError, match=r"`task_losses\['a'\]` must be a scalar .*jaxloss.mean"):
        mt.uncertainty_weighting({"a": jnp.ones(3)}, {"a": 0.0})
    with pytest.raises(ValueError, match=r"`log_variances\['a'\]` must be a scalar"):
        mt.uncertainty_weighting({"a": 1.0}, {"a": jnp.zeros(2)})
    with pytest.raises(TypeError, match=r"`task_losses\['a'\]` must have a floating dtype"):
        mt.weighted_total({"a": jnp.array(1)}, {"a": 1.0})
    with pytest.raises(TypeError, match=r"`task_losses` must be a mapping"):
        mt.weighted_total([1.0], {"a": 1.0})
    with pytest.raises(ValueError, match=r"at least one task"):
        mt.uncertainty_weighting({}, {})


# ---------------------------------------------------------------------------------------------
# Dynamic Weight Averaging against a NumPy reference


def ref_dwa(sequence, tau):
    """Weights returned by each update for the loss records ``sequence`` [steps, T]."""
    n_tasks = sequence.shape[1]
    out = []
    for t in range(len(sequence)):
        if t < 2:
            out.append(np.ones(n_tasks))
        else:
            e = np.exp(sequence[t - 1] / sequence[t - 2] / tau)
            out.append(n_tasks * e / e.sum())
    return np.array(out)


def loss_sequence(seed=0, steps=7):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.2, 3.0, size=(steps, 3))


@pytest.mark.parametrize("tau", [2.0, 0.5])
def test_dwa_matches_reference_eager_and_jit(tau):
    seq = loss_sequence()
    expected = ref_dwa(seq, tau)
    assert not np.allclose(expected[2:], 1.0)  # the sequence exercises the softmax
    dwa = mt.dynamic_weight_averaging(temperature=tau)
    update = jax.jit(dwa.update)
    s_eager = s_jit = dwa.init(TASKS)
    for t in range(len(seq)):
        peek = dwa.weights(s_eager)
        w_eager, s_eager = dwa.update(as_dict(seq[t]), s_eager)
        w_jit, s_jit = update(as_dict(seq[t]), s_jit)
        close(as_vec(w_eager), expected[t])
        close(as_vec(w_jit), expected[t])
        close(as_vec(peek), expected[t])  # weights(state) == what the next update returns
        close(sum(as_vec(w_jit)), 3.0)
        assert int(s_jit.num_updates) == t + 1
        close(as_vec(s_jit.last_losses), seq[t])


def test_dwa_under_lax_scan_keeps_the_state_type():
    seq = loss_sequence(seed=1, steps=9)
    dwa = mt.dynamic_weight_averaging()
    state = dwa.init(TASKS, dtype=jnp.float32)

    def body(state, row):
        w, state = dwa.update({t: row[i] for i, t in enumerate(TASKS)}, state)
        return state, jnp.stack([w[t] for t in TASKS])

    # float64 records are cast to the state's float32: the carry type is fixed.
    state, ws = jax.jit(lambda s, x: jax.lax.scan(body, s, x))(state, jnp.asarray(seq))
    assert ws.dtype == jnp.float32 and state.last_losses["seg"].dtype == jnp.float32
    close(ws, ref_dwa(seq, 2.0), rtol=1e-5, atol=1e-6)


def test_dwa_weights_carry_no_gradient():
    dwa = mt.dynamic_weight_averaging()
    state = dwa.init(TASKS)
    for row in loss_sequence(steps=3):
        _, state = dwa.update(as_dict(row), state)
    L = as_dict(np.array([0.7, 1.1, 2.3]))

    def objective(losses):
        w, new_state = dwa.update(losses, state)
        return mt.weighted_total(losses, w)[0], (w, new_state)

    grads, (w, _) = jax.grad(objective, has_aux=True)(L)
    close(as_vec(grads), as_vec(w))
    # The recorded losses are stop-gradiented: the new state does not depend on them.
    jac = jax.jacobian(lambda losses: dwa.update(losses, state)[1].last_losses)(L)
    assert all(float(jnp.abs(v)) == 0 for v in jax.tree.leaves(jac))


def test_dwa_zero_record_gives_ratio_one_and_no_nan():
    dwa = mt.dynamic_weight_averaging()
    state = dwa.init(["a", "b"])
    for la, lb in [(0.0, 1.0), (0.0, 2.0)]:
        _, state = dwa.update({"a": la, "b": lb}, state)
    w = dwa.weights(state)
    e = np.exp(np.array([1.0, 2.0]) / 2.0)
    close(as_vec(w, ["a", "b"]), 2 * e / e.sum())


def test_dwa_errors():
    with pytest.raises(ValueError, match=r"dynamic_weight_averaging: `temperature` must be"):
        mt.dynamic_weight_averaging(temperature=0.0)
    dwa = mt.dynamic_weight_averaging()
    state = dwa.init(["a", "b"])
    with pytest.raises(ValueError, match=r"missing \['b'\], unknown \['c'\]"):
        dwa.update({"a": 1.0, "c": 1.0}, state)


# ---------------------------------------------------------------------------------------------
# Random loss weighting


def test_rlw_weights_on_the_simplex_fresh_and_reproducible():
    rlw = mt.random_loss_weighting()
    losses = as_dict(np.ones(3))
    update = jax.jit(rlw.update)
    s_a = s_b = rlw.init(TASKS, key=jax.random.key(7))
    s_legacy = rlw.init(TASKS, key=jax.random.PRNGKey(7))
    close(as_vec(s_a.weights), np.full(3, 1 / 3))
    previous = None
    for _ in range(4):
        w_a, s_a = rlw.update(losses, s_a)
        w_b, s_b = update(losses, s_b)
        w_legacy, s_legacy = rlw.update(losses, s_legacy)
        v = as_vec(w_a)
        assert np.all(v > 0)
        close(v.sum(), 1.0)
        close(as_vec(w_b), v, rtol=1e-14)  # jit == eager from the same key
        close(as_vec(w_legacy), v, rtol=1e-14)  # raw uint32 keys give the same stream
        close(as_vec(s_a.weights), v)
        if previous is not None:
            assert np.max(np.abs(v - previous)) > 1e-3  # a fresh draw each update
        previous = v
    other, _ = rlw.update(losses, rlw.init(TASKS, key=jax.random.key(8)))
    first, _ = rlw.update(losses, rlw.init(TASKS, key=jax.random.key(7)))
    assert np.max(np.abs(as_vec(other) - as_vec(first))) > 1e-3


def test_rlw_distribution_is_softmax_of_standard_normal():
    """Under w = softmax(z), z ~ N(0, I): E w_i = 1/T and log(w_i/w_j) = z_i − z_j ~ N(0, 2)."""
    rlw = mt.random_loss_weighting()
    losses = as_dict(np.ones(3))

    def body(state, _):
        w, state = rlw.update(losses, state)
        return state, jnp.stack([w[t] for t in TASKS])

    n = 4000
    _, ws = jax.jit(lambda s: jax.lax.scan(body, s, None, length=n))(
        rlw.init(TASKS, key=jax.random.key(0))
    )
    ws = np.asarray(ws)
    close(ws.mean(axis=0), np.full(3, 1 / 3), atol=0.015)
    log_ratio = np.log(ws[:, 0] / ws[:, 1])
    close(log_ratio.mean(), 0.0, atol=0.1)
    close(log_ratio.var(), 2.0, rtol=0.1)


def test_rlw_insertion_order_does_not_matter_and_names_are_checked():
    rlw = mt.random_loss_weighting()
    s1 = rlw.init(["b", "a"], key=jax.random.key(3))
    s2 = rlw.init(["a", "b"], key=jax.random.key(3))
    w1, _ = rlw.update({"b": 1.0, "a": 1.0}, s1)
    w2, _ = rlw.update({"a": 1.0, "b": 1.0}, s2)
    close(as_vec(w1, ["a", "b"]), as_vec(w2, ["a", "b"]))
    with pytest.raises(ValueError, match=r"random_loss_weighting: .*missing \['b'\], unknown \[\]"):
        rlw.update({"a": 1.0}, s1)
    with pytest.raises(TypeError, match=r"`key` must be a PRNG key"):
        rlw.init(["a"], key=7)
    with pytest.raises(TypeError, match=r"`key` must be a PRNG key"):
        rlw.init(["a"])


def test_rlw_old_init_order_warns_and_gives_the_same_state():
    rlw = mt.random_loss_weighting()
    with pytest.warns(DeprecationWarning, match=r"init\(task_names, key=key\)"):
        old = rlw.init(jax.random.key(3), ["a", "b"])
    new = rlw.init(["a", "b"], key=jax.random.key(3))
    w_old, _ = rlw.update({"a": 1.0, "b": 1.0}, old)
    w_new, _ = rlw.update({"a": 1.0, "b": 1.0}, new)
    close(as_vec(w_old, ["a", "b"]), as_vec(w_new, ["a", "b"]), rtol=0)


# ---------------------------------------------------------------------------------------------
# The docstring examples run as written


def test_docstring_examples():
    result = doctest.testmod(_weighting, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 15
    assert result.failed == 0
