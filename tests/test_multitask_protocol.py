"""The multi-task protocol: ``init -> state``, ``update -> (weights or direction, state)`` for every
stateful method; the shared-trunk helper against per-task ``jax.grad``; ``multitask_loss``.

float64 (tests/conftest.py) except the Flax NNX example (its own float32). References: explicit
per-task ``jax.grad`` of the same function (an independent computation from the VJP-of-a-stack
the helper uses), NumPy closed forms.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss
import jaxloss.multitask as mt

TASKS = ["a", "b", "c"]


def vec(weights, tasks=None):
    tasks = sorted(weights) if tasks is None else tasks
    return np.asarray([weights[t] for t in tasks])


# ---------------------------------------------------------------------------------------------
# task_value_and_trunk_jacobian


def _model(seed=0, n=16, d=5, h=4):
    rng = np.random.default_rng(seed)
    trunk = {"w": jnp.asarray(rng.normal(size=(d, h))), "b": jnp.asarray(rng.normal(size=h))}
    heads = {t: {"w": jnp.asarray(rng.normal(size=(h, 1 + i)))} for i, t in enumerate(TASKS)}
    x = jnp.asarray(rng.normal(size=(n, d)))
    y = {t: jnp.asarray(rng.normal(size=(n, 1 + i))) for i, t in enumerate(TASKS)}
    return trunk, heads, x, y


def _losses(trunk, heads, x, y):
    z = jnp.tanh(x @ trunk["w"] + trunk["b"])
    # insertion order differs from the sorted order on purpose
    return {t: jnp.mean((z @ heads[t]["w"] - y[t]) ** 2) for t in reversed(TASKS)}


@jax.jit
def _reference_grads(trunk, heads, x, y):
    """Per-task jax.grad of the trunk, each task's own head gradient and the summed heads'."""
    trunk_g = {t: jax.grad(lambda tr, t=t: _losses(tr, heads, x, y)[t])(trunk) for t in TASKS}
    own = {t: jax.grad(lambda hd, t=t: _losses(trunk, hd, x, y)[t])(heads)[t] for t in TASKS}
    summed = jax.grad(lambda hd: sum(_losses(trunk, hd, x, y).values()))(heads)
    return trunk_g, own, summed


def test_trunk_jacobian_and_head_gradients_equal_per_task_grads():
    trunk, heads, x, y = _model()
    f = jax.jit(mt.task_value_and_trunk_jacobian(_losses))
    vals, jac, head_grads = f(trunk, heads, x, y)
    assert list(vals) == TASKS
    trunk_g, own, summed = _reference_grads(trunk, heads, x, y)
    direct = _losses(trunk, heads, x, y)
    for i, t in enumerate(TASKS):
        for k in trunk:
            np.testing.assert_allclose(jac[k][i], trunk_g[t][k], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(vals[t], direct[t], rtol=1e-14)
        np.testing.assert_allclose(head_grads[t]["w"], summed[t]["w"], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(head_grads[t]["w"], own[t]["w"], rtol=1e-12, atol=1e-14)


def test_trunk_jacobian_with_aux_feeds_an_aggregator():
    trunk, heads, x, y = _model(1)

    def with_aux(tr, hd, x, y):
        losses = _losses(tr, hd, x, y)
        return losses, {"sum": sum(losses.values())}

    f = jax.jit(mt.task_value_and_trunk_jacobian(with_aux, has_aux=True))
    (vals, aux), jac, head_grads = f(trunk, heads, x, y)
    np.testing.assert_allclose(aux["sum"], sum(vals.values()), rtol=1e-14)
    agg = mt.upgrad()
    direction, state = jax.jit(agg.update)(jac, agg.init(TASKS))
    assert jax.tree.structure(direction) == jax.tree.structure(trunk)
    assert jax.tree.structure((direction, head_grads)) == jax.tree.structure((trunk, heads))
    # UPGrad's direction conflicts with no task's trunk gradient
    trunk_g = _reference_grads(trunk, heads, x, y)[0]
    for t in TASKS:
        g = trunk_g[t]
        dot = sum(jnp.vdot(g[k], direction[k]) for k in trunk)
        assert float(dot) >= -1e-4 * float(state.weights[t]) * sum(
            float(jnp.vdot(jac[k], jac[k])) for k in trunk
        ), t


def test_trunk_jacobian_errors_name_the_function():
    f = mt.task_value_and_trunk_jacobian(lambda tr, hd: [tr, hd])
    with pytest.raises(TypeError, match=r"task_value_and_trunk_jacobian: `task_losses"):
        f(jnp.ones(()), jnp.ones(()))
    g = mt.task_value_and_trunk_jacobian(lambda tr, hd: {"a": tr * hd})
    with pytest.raises(ValueError, match=r"task_value_and_trunk_jacobian: `task_losses\['a'\]`"):
        g(jnp.ones(2), jnp.ones(2))


# ---------------------------------------------------------------------------------------------
# Aggregators: init / update


def _jac(seed, t=3, d=5):
    return {"w": jnp.asarray(np.random.default_rng(seed).normal(size=(t, d)))}


@pytest.mark.parametrize("make", [mt.upgrad, mt.mgda, mt.mean_aggregator, mt.imtl_g])
def test_aggregator_update_is_the_call_with_the_weights_recorded(make):
    agg = make()
    jac = _jac(0)
    state = agg.init(["c", "a", "b"])
    assert sorted(state.weights) == TASKS and state.key is None
    direction, state = jax.jit(agg.update)(jac, state)
    np.testing.assert_allclose(direction["w"], agg(jac)["w"], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(vec(state.weights), agg.jacobian_weights(jac), rtol=1e-10)


def test_pcgrad_update_splits_the_key_in_the_state():
    agg = mt.pcgrad()
    with pytest.raises(ValueError, match=r"pcgrad: `key` is required"):
        agg.init(TASKS)
    key = jax.random.key(3)
    state = agg.init(TASKS, key=key)
    expected_key = key
    for seed in range(3):
        jac = _jac(seed)
        expected_key, sub = jax.random.split(expected_key)
        direction, state = agg.update(jac, state)
        np.testing.assert_allclose(direction["w"], agg(jac, key=sub)["w"], rtol=1e-12)
    np.testing.assert_array_equal(jax.random.key_data(state.key), jax.random.key_data(expected_key))


def test_aggregator_update_checks_the_tasks():
    agg = mt.mgda()
    with pytest.raises(ValueError, match=r"mgda: `jacobian` must have 3 rows"):
        agg.update(_jac(0, t=2), agg.init(TASKS))
    state = agg.transform().init({"w": jnp.zeros(5)})
    with pytest.raises(ValueError, match=r"mgda: `state` must come from `init\(task_names\)`"):
        agg.update(_jac(0), state)


def test_combine_takes_a_task_dict():
    jac = _jac(4)
    w = {"c": 3.0, "a": 1.0, "b": -2.0}
    np.testing.assert_allclose(
        mt.combine(jac, w)["w"], np.asarray(jac["w"]).T @ np.array([1.0, -2.0, 3.0]), rtol=1e-14
    )
    with pytest.raises(ValueError, match=r"combine: `weights` must have shape \(3,\)"):
        mt.combine(jac, {"a": 1.0, "b": 1.0})


# ---------------------------------------------------------------------------------------------
# Every stateful method: the same shape, under jit and lax.scan


def _weighting_methods():
    key = jax.random.key(0)
    return {
        "dwa": (mt.dynamic_weight_averaging(), lambda m: m.init(TASKS), {}),
        "rlw": (mt.random_loss_weighting(), lambda m: m.init(TASKS, key=key), {}),
        "famo": (mt.famo(), lambda m: m.init(TASKS), {}),
        "grad_norm": (mt.grad_norm(), lambda m: m.init(TASKS), {"jacobian": True}),
    }


@pytest.mark.parametrize("name", ["dwa", "rlw", "famo", "grad_norm"])
def test_weighting_protocol_returns_task_dicts_under_scan(name):
    method, init, extra = _weighting_methods()[name]
    rng = np.random.default_rng(0)
    seq = jnp.asarray(rng.uniform(0.5, 2.0, size=(5, 3)))
    jacs = jnp.asarray(rng.normal(size=(5, 3, 4)))

    def body(state, inputs):
        row, jac = inputs
        losses = {t: row[i] for i, t in enumerate(TASKS)}
        kw = {"jacobian": jac} if extra else {}
        w, state = method.update(losses, state, **kw)
        assert sorted(w) == TASKS  # trace time: a dict task -> scalar
        return state, jnp.stack([w[t] for t in TASKS])

    state0 = init(method)
    final, ws = jax.jit(lambda s: jax.lax.scan(body, s, (seq, jacs)))(state0)
    assert ws.shape == (5, 3) and np.all(np.isfinite(ws))
    assert jax.tree.structure(final) == jax.tree.structure(state0)
    # eager, step by step: the same weights
    state = state0
    for k in range(5):
        state, w = body(state, (seq[k], jacs[k]))
        np.testing.assert_allclose(w, ws[k], rtol=1e-12)


def test_aggregator_protocol_under_scan():
    agg = mt.pcgrad()
    jacs = jnp.asarray(np.random.default_rng(1).normal(size=(4, 3, 6)))

    def body(state, jac):
        d, state = agg.update(jac, state)
        return state, (d, jnp.stack([state.weights[t] for t in TASKS]))

    _, (ds, ws) = jax.jit(lambda s: jax.lax.scan(body, s, jacs))(
        agg.init(TASKS, key=jax.random.key(0))
    )
    np.testing.assert_allclose(ds, np.einsum("st,std->sd", ws, jacs), rtol=1e-10, atol=1e-13)


# ---------------------------------------------------------------------------------------------
# multitask_loss (the objective over named tasks)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    preds = {"reg": rng.normal(size=8), "cls": rng.normal(size=(8, 5))}
    targets = {"reg": rng.normal(size=8), "cls": rng.integers(0, 5, size=8)}
    return preds, targets


LOSSES = {"reg": jaxloss.squared_error, "cls": jaxloss.softmax_cross_entropy_with_integer_labels}


def _ce(logits, labels):
    m = logits.max(1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(logits - m).sum(1))
    return lse - logits[np.arange(len(labels)), labels]


def test_multitask_loss_total_aux_and_gradients():
    preds, targets = _data()
    obj = mt.multitask_loss(LOSSES, weights={"reg": 2.0, "cls": 0.5})
    sw = np.random.default_rng(1).uniform(0.5, 2, size=8)
    where = np.arange(8) % 3 != 0
    (total, aux), grads = jax.jit(jax.value_and_grad(obj, has_aux=True))(
        preds, targets, sample_weights={"reg": sw}, where={"cls": where}
    )
    r = preds["reg"] - targets["reg"]
    reg_mean = np.sum(sw * r**2) / np.sum(sw)
    cls_mean = np.sum(np.where(where, _ce(preds["cls"], targets["cls"]), 0)) / where.sum()
    np.testing.assert_allclose(aux["losses"]["reg"], reg_mean, rtol=1e-12)
    np.testing.assert_allclose(aux["losses"]["cls"], cls_mean, rtol=1e-12)
    np.testing.assert_allclose(total, 2.0 * reg_mean + 0.5 * cls_mean, rtol=1e-12)
    np.testing.assert_allclose(grads["reg"], 2.0 * sw * 2 * r / np.sum(sw), rtol=1e-10)
    p = np.exp(preds["cls"] - preds["cls"].max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = p - np.eye(5)[targets["cls"]]
    want = 0.5 * np.where(where[:, None], dz, 0) / where.sum()
    np.testing.assert_allclose(grads["cls"], want, rtol=1e-10, atol=1e-14)


def test_multitask_loss_step_and_call_time_weights_from_a_weighting_method():
    preds, targets = _data(2)
    warmup = mt.multitask_loss(
        LOSSES, weights=lambda step: {"reg": 1.0, "cls": jnp.minimum(step / 100.0, 1.0)}
    )
    _, aux0 = warmup(preds, targets, step=0)
    total50, aux50 = jax.jit(warmup)(preds, targets, step=50)
    assert float(aux0["weights"]["cls"]) == 0.0
    np.testing.assert_allclose(
        total50, aux50["losses"]["reg"] + 0.5 * aux50["losses"]["cls"], rtol=1e-12
    )
    with pytest.raises(ValueError, match="pass `step=`"):
        warmup(preds, targets)
    dwa = mt.dynamic_weight_averaging()
    w, _ = dwa.update({"reg": 1.0, "cls": 2.0}, dwa.init(LOSSES))
    total, aux = mt.multitask_loss(LOSSES)(preds, targets, weights=w)
    np.testing.assert_allclose(total, sum(aux["losses"].values()), rtol=1e-12)


def test_multitask_loss_errors_name_the_tasks():
    preds, targets = _data()
    obj = mt.multitask_loss(LOSSES)
    with pytest.raises(ValueError, match=r"`targets` .*missing \['reg'\]"):
        obj(preds, {"cls": targets["cls"]})
    with pytest.raises(ValueError, match=r"unknown \['depth'\]"):
        mt.multitask_loss({"reg": jaxloss.squared_error}, weights={"reg": 1.0, "depth": 2.0})
    with pytest.raises(TypeError, match=r"`losses\['a'\]` must be a loss function"):
        mt.multitask_loss({"a": 3.0})


# ---------------------------------------------------------------------------------------------
# The Flax NNX example


def test_flax_nnx_example_trains_both_tasks_with_an_aggregator_and_a_weighting():
    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "flax_nnx_multitask.py"
    spec = importlib.util.spec_from_file_location("jaxloss_example_flax_nnx_multitask", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    with jax.enable_x64(False):
        for method in ("upgrad", "gradnorm"):
            out = mod.main(steps=80, method=method)
            h = out["history"]
            for t in mod.TASKS:
                assert np.all(np.isfinite(h[t])), (method, t)
                assert h[t][-1] < 0.5 * h[t][0], (method, t, h[t][0], h[t][-1])
        w = out["weights"]  # GradNorm's: positive, summing to T, moved away from 1
        assert all(v > 0 for v in w.values()) and abs(sum(w.values()) - 2.0) < 1e-4
        assert max(abs(v - 1.0) for v in w.values()) > 0.05, w
