"""Losses on a mesh of 8 devices: vocab-parallel cross-entropy and data-parallel reductions.

Needs 8 devices, so it runs in its own process: tests/test_mesh.py launches
``python -m pytest tests/test_mesh_devices.py`` with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (the flag must be set before jax is
imported). In a normal single-device session every test here is skipped.

Every multi-device result is compared with the single-device computation on the same float64
inputs: vocab-parallel values and gradients (hidden, weight shards, bias shards) against
``linear_cross_entropy`` / the integer-label cross-entropy; data-parallel means, weighted and
masked means and the mergeable ``(sum, weight)`` parts against the single-device global mean.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import jaxloss
from jaxloss.fused import (
    linear_cross_entropy,
    vocab_parallel_cross_entropy,
    vocab_parallel_linear_cross_entropy,
)

DEVICES = 8
pytestmark = pytest.mark.skipif(
    jax.device_count() < DEVICES,
    reason="needs 8 devices: run by tests/test_mesh.py in a subprocess with "
    "XLA_FLAGS=--xla_force_host_platform_device_count=8",
)

N, D, V = 12, 6, 40  # V = 8 shards of 5 classes
IGNORE = -1
OPTIONS = {"label_smoothing": 0.1, "z_loss": 1e-2, "ignore_index": IGNORE}
RTOL, ATOL = 1e-12, 1e-13


@pytest.fixture(scope="module")
def mesh():
    return Mesh(np.array(jax.devices()[:DEVICES]), ("x",))


def _data(seed=0):
    g = np.random.default_rng(seed)
    x = jnp.asarray(g.normal(size=(N, D)))
    w = jnp.asarray(g.normal(scale=0.8, size=(D, V)))
    b = jnp.asarray(g.normal(scale=0.5, size=V))
    mask = np.ones((1, V), bool)
    mask[0, [3, 17, 18, 38]] = False  # classes left out (e.g. vocabulary padding)
    y = g.integers(0, V, size=N)
    y = np.where(mask[0, y], y, 1)
    y[[2, 7]] = IGNORE
    y[0], y[1] = 0, V - 1  # labels on the first and the last shard
    return x, w, b, jnp.asarray(mask), jnp.asarray(y)


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=RTOL, atol=ATOL)


# ---------------------------------------------------------------------------------------------
# Vocab parallel


@pytest.mark.parametrize(("layout", "cap"), [("dv", None), ("vd", 4.0)])
def test_vocab_parallel_linear_ce_matches_single_device(mesh, layout, cap):
    x, w, b, mask, y = _data()
    w = w if layout == "dv" else w.T
    ct = jnp.linspace(0.5, 2.0, N)
    # dv: blocks of 2 of the 5 local classes (the last shifted back); vd: one block per shard.
    opts = {**OPTIONS, "logit_soft_cap": cap, "weight_layout": layout,
            "block_size": 2 if layout == "dv" else 8}
    w_spec = P(None, "x") if layout == "dv" else P("x", None)

    def single(x, w, b):
        return jnp.sum(ct * linear_cross_entropy(x, w, y, bias=b, where=mask, **opts))

    sharded_loss = jax.shard_map(
        lambda x, w, y, b, m: vocab_parallel_linear_cross_entropy(
            x, w, y, axis_name="x", bias=b, where=m, **opts),
        mesh=mesh, in_specs=(P(), w_spec, P(), P("x"), P(None, "x")), out_specs=P())

    def parallel(x, w, b):
        return jnp.sum(ct * sharded_loss(x, w, y, b, mask))

    v1, g1 = jax.jit(jax.value_and_grad(single, (0, 1, 2)))(x, w, b)
    v2, g2 = jax.jit(jax.value_and_grad(parallel, (0, 1, 2)))(x, w, b)
    _close(v2, v1)
    for a, c in zip(g2, g1, strict=True):
        _close(a, c)
    per_token = jax.jit(sharded_loss)(x, w, y, b, mask)
    assert per_token[2] == 0 and per_token[7] == 0  # ignored tokens


def test_vocab_parallel_on_local_logits_matches_single_device(mesh):
    x, w, b, mask, y = _data(1)
    logits = x @ w + b
    ct = jnp.linspace(0.5, 2.0, N)

    def single(z):
        ce = jaxloss.softmax_cross_entropy_with_integer_labels(
            z, y, label_smoothing=0.1, ignore_index=IGNORE, where=mask)
        lse, _ = jaxloss._core.numerics.logsumexp(z, where=mask)
        return jnp.sum(ct * jnp.where(y == IGNORE, 0, ce + 1e-2 * lse**2))

    def parallel(z):
        f = jax.shard_map(
            lambda z, y, m: vocab_parallel_cross_entropy(z, y, axis_name="x", where=m,
                                                         **OPTIONS),
            mesh=mesh, in_specs=(P(None, "x"), P(), P(None, "x")), out_specs=P())
        return jnp.sum(ct * f(z, y, mask))

    v1, g1 = jax.jit(jax.value_and_grad(single))(logits)
    v2, g2 = jax.jit(jax.value_and_grad(parallel))(logits)
    _close(v2, v1)
    _close(g2, g1)


def test_vocab_parallel_communication_is_per_token(mesh):
    """The collectives move [N]-sized vectors only (no [N, V] or [N, V/P] all-gather)."""
    x, w, _, _, y = _data()
    f = jax.shard_map(
        functools.partial(vocab_parallel_linear_cross_entropy, axis_name="x", **OPTIONS),
        mesh=mesh, in_specs=(P(), P(None, "x"), P()), out_specs=P())
    hlo = jax.jit(jax.grad(lambda x, w: jnp.sum(f(x, w, y)), (0, 1))).lower(x, w).as_text()
    collectives = [line for line in hlo.splitlines()
                   if any(op in line for op in ("all_reduce", "all_gather", "all_to_all"))
                   and "=" in line]
    assert collectives
    for line in collectives:
        shapes = line.split("=", 1)[1]
        assert f"{N}x{V}" not in shapes and f"{N}x{V // DEVICES}" not in shapes, line


# ---------------------------------------------------------------------------------------------
# Data parallel: the batch sharded over the 8 devices under jit


def _batch(seed=2, n=64):
    g = np.random.default_rng(seed)
    return {
        "p": g.normal(size=(n, 3)),
        "t": g.normal(size=(n, 3)),
        "w": g.uniform(0.1, 2.0, size=(n, 3)),
        "m": g.uniform(size=(n, 3)) > 0.3,
        "logits": g.normal(scale=2.0, size=(n, 5)),
        "labels": np.where(g.uniform(size=n) > 0.2, g.integers(0, 5, size=n), IGNORE),
        "x01": g.uniform(size=(n, 3)),
    }


def _shard(mesh, tree):
    return jax.tree.map(lambda a: jax.device_put(a, NamedSharding(mesh, P("x"))), tree)


def _losses(b):
    """Representative losses reduced with the one rule: weighted, masked, ignore-index means."""
    valid = b["labels"] != IGNORE
    ce = jaxloss.softmax_cross_entropy_with_integer_labels(b["logits"], b["labels"],
                                                           ignore_index=IGNORE)
    return {
        "mean": jaxloss.mean(b["p"]),
        "weighted": jaxloss.mean(jaxloss.squared_error(b["p"], b["t"]), weights=b["w"]),
        "masked": jaxloss.mean(jaxloss.huber_loss(b["p"], b["t"]), where=b["m"]),
        "weighted_masked": jaxloss.mean(jaxloss.absolute_error(b["p"], b["t"]),
                                        weights=b["w"], where=b["m"]),
        "bce": jaxloss.mean(jaxloss.sigmoid_binary_cross_entropy(b["p"], b["x01"])),
        "ce_ignore": jaxloss.mean(ce, where=valid),
        "ce_class_weighted": jaxloss.mean(
            ce, weights=jnp.asarray([1.0, 2.0, 0.5, 3.0, 1.0])[jnp.where(valid, b["labels"], 0)],
            where=valid),
        "sum": jaxloss.sum(jaxloss.log_cosh(b["p"], b["t"]), where=b["m"]),
    }


def test_data_parallel_means_equal_single_device(mesh):
    batch = _batch()
    single = jax.jit(_losses)(jax.tree.map(jnp.asarray, batch))
    sharded = _shard(mesh, batch)
    assert sharded["p"].sharding.spec == P("x")
    parallel = jax.jit(_losses)(sharded)
    for k in single:
        _close(parallel[k], single[k])


def test_data_parallel_gradients_equal_single_device(mesh):
    batch = _batch(3)

    def loss(p, logits, b):
        out = _losses({**b, "p": p, "logits": logits})
        return sum(out[k] for k in ("weighted", "masked", "weighted_masked", "bce", "ce_ignore",
                                    "ce_class_weighted"))

    grad = jax.jit(jax.grad(loss, (0, 1)))
    b1 = jax.tree.map(jnp.asarray, batch)
    g1 = grad(b1["p"], b1["logits"], b1)
    b8 = _shard(mesh, batch)
    g8 = grad(b8["p"], b8["logits"], b8)
    for a, c in zip(g8, g1, strict=True):
        _close(a, c)


def test_mean_parts_psum_in_shard_map_equals_global_mean(mesh):
    """The mergeable form: per-device (sum, weight) parts, psum'd, give the global mean."""
    batch = _batch(4)

    def local(p, t, w, m):
        parts = jaxloss.mean_parts(jaxloss.squared_error(p, t), weights=w, where=m)
        return jax.lax.psum(parts, "x")

    f = jax.shard_map(local, mesh=mesh, in_specs=P("x"), out_specs=P())
    parts = jax.jit(f)(batch["p"], batch["t"], batch["w"], batch["m"])
    want = jaxloss.mean(jaxloss.squared_error(batch["p"], batch["t"]), weights=batch["w"],
                        where=batch["m"])
    _close(jaxloss.WeightedMean(*parts).value(), want)
    # A shard with nothing counted contributes (0, 0): still exact, still finite.
    m = batch["m"].copy()
    m[:8] = False
    parts = jax.jit(f)(batch["p"], batch["t"], batch["w"], m)
    _close(jaxloss.WeightedMean(*parts).value(),
           jaxloss.mean(jaxloss.squared_error(batch["p"], batch["t"]), weights=batch["w"],
                        where=m))


def test_data_parallel_linear_cross_entropy(mesh):
    """Tokens sharded over the devices, the unembedding replicated: value and gradients of the
    masked mean equal the single-device ones."""
    x, w, b, mask, y = _data(5)
    x = jnp.concatenate([x] * 4)  # 48 tokens: 6 per device
    y = jnp.concatenate([y] * 4)

    def loss(x, w, b, y):
        v = linear_cross_entropy(x, w, y, bias=b, where=mask, **OPTIONS)
        return jaxloss.mean(v, where=y != IGNORE)

    vg = jax.jit(jax.value_and_grad(loss, (0, 1, 2)))
    v1, g1 = vg(x, w, b, y)
    xs, ys = _shard(mesh, (x, y))
    v8, g8 = vg(xs, w, b, ys)
    _close(v8, v1)
    for a, c in zip(g8, g1, strict=True):
        _close(a, c)


# ---------------------------------------------------------------------------------------------
# Vocab-parallel log-probabilities and entropy; data-parallel distillation


@pytest.mark.parametrize(("layout", "cap", "t"), [("dv", None, 1.0), ("vd", 4.0, 1.5)])
def test_vocab_parallel_log_probs_match_single_device(mesh, layout, cap, t):
    from jaxloss.fused import linear_log_probs, vocab_parallel_linear_log_probs

    x, w, b, _, y = _data(6)
    w = w if layout == "dv" else w.T
    g = np.random.default_rng(7)
    c_lp, c_h = jnp.asarray(g.normal(size=N)), jnp.asarray(g.normal(size=N))
    opts = {"logit_soft_cap": cap, "weight_layout": layout, "temperature": t,
            "ignore_index": IGNORE, "return_entropy": True,
            "block_size": 2 if layout == "dv" else 8}
    w_spec = P(None, "x") if layout == "dv" else P("x", None)

    def single(x, w, b):
        lp, h = linear_log_probs(x, w, y, bias=b, **opts)
        return jnp.sum(c_lp * lp) + jnp.sum(c_h * h), (lp, h)

    sharded = jax.shard_map(
        lambda x, w, y, b: vocab_parallel_linear_log_probs(x, w, y, axis_name="x", bias=b,
                                                           **opts),
        mesh=mesh, in_specs=(P(), w_spec, P(), P("x")), out_specs=(P(), P()))

    def parallel(x, w, b):
        lp, h = sharded(x, w, y, b)
        return jnp.sum(c_lp * lp) + jnp.sum(c_h * h), (lp, h)

    (v1, a1), g1 = jax.jit(jax.value_and_grad(single, (0, 1, 2), has_aux=True))(x, w, b)
    (v2, a2), g2 = jax.jit(jax.value_and_grad(parallel, (0, 1, 2), has_aux=True))(x, w, b)
    _close(v2, v1)
    for a, c in zip((*a2, *g2), (*a1, *g1), strict=True):
        _close(a, c)
    assert a2[0][2] == 0 and a2[1][7] == 0  # ignored tokens


def test_data_parallel_linear_distillation(mesh):
    """Tokens sharded over the devices, both heads replicated: the weighted mean of the fused
    JSD and its student gradients equal the single-device ones."""
    from jaxloss.fused import linear_distillation

    g = np.random.default_rng(8)
    xs, xt = jnp.asarray(g.normal(size=(32, D))), jnp.asarray(g.normal(size=(32, D + 2)))
    ws, wt = jnp.asarray(g.normal(size=(D, V))), jnp.asarray(g.normal(size=(D + 2, V)))
    tw = jnp.asarray(g.uniform(0.5, 2.0, size=32))

    def loss(xs, ws, xt, tw):
        return linear_distillation(xs, ws, xt, wt, divergence="jsd", beta=0.3, block_size=16,
                                   weights=tw, reduction="mean")

    vg = jax.jit(jax.value_and_grad(loss, (0, 1)))
    v1, g1 = vg(xs, ws, xt, tw)
    v8, g8 = vg(*_shard(mesh, (xs,)), ws, *_shard(mesh, (xt, tw)))
    _close(v8, v1)
    for a, c in zip(g8, g1, strict=True):
        _close(a, c)
