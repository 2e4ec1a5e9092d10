"""linear_cross_entropy: gradients of hidden, weight and bias against the closed form and against
the unfused computation, every option, masking, low precision, errors, and the memory budgets.

The conformance checks (value, hidden-gradient, finite differences, jit/vmap, extremes, dtype
policy, error names) run over tests/registry_fused.py; this module covers what they cannot:
the shared parameters' gradients, options in combination, block edge cases and memory.
"""

from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss
from jaxloss.fused import linear_cross_entropy
from tests.cases.fused_linear_ce import lce_dbias, lce_dhidden, lce_dweight, lce_value

N, D, V = 9, 5, 11
IGNORE = -100
FULL = {"label_smoothing": 0.15, "z_loss": 3e-2, "logit_soft_cap": 4.0, "ignore_index": IGNORE}


def _data(seed=0, layout="dv", bias=True, masked=True, ignore=True, shape=(N,)):
    g = np.random.default_rng(seed)
    x = g.normal(size=(*shape, D))
    w = g.normal(scale=0.8, size=(D, V))
    y = g.integers(0, V, size=shape)
    d = {"hidden": x, "weight": w if layout == "dv" else w.T.copy(), "labels": y}
    if bias:
        d["bias"] = g.normal(scale=0.5, size=V)
    if masked:
        mask = np.ones((*([1] * len(shape)), V), bool)
        mask[..., [2, 7]] = False  # e.g. padded vocabulary entries
        d["where"] = mask
        d["labels"] = np.where(np.isin(y, [2, 7]), 0, y)
    if ignore:
        flat = d["labels"].reshape(-1)
        flat[1::4] = IGNORE
    return d


def _naive(d, hyper):
    """The unfused computation: logits = x @ W + b, (cap), jaxloss CE, + z-loss."""
    layout = hyper.get("weight_layout", "dv")
    z = d["hidden"] @ (d["weight"] if layout == "dv" else d["weight"].T)
    if d.get("bias") is not None:
        z = z + d["bias"]
    cap = hyper.get("logit_soft_cap")
    if cap is not None:
        z = cap * jnp.tanh(z / cap)
    where = d.get("where")
    ce = jaxloss.softmax_cross_entropy_with_integer_labels(
        z, d["labels"], label_smoothing=hyper.get("label_smoothing", 0.0),
        ignore_index=hyper.get("ignore_index"), where=where)
    lse, _ = jaxloss._core.numerics.logsumexp(z.astype(ce.dtype), where=where)
    out = ce + hyper.get("z_loss", 0.0) * lse**2
    ign = hyper.get("ignore_index")
    return out if ign is None else jnp.where(d["labels"] == ign, 0, out)


def _fused(d, hyper, block_size):
    args = {k: v for k, v in d.items() if k not in ("hidden", "weight", "labels")}
    return linear_cross_entropy(d["hidden"], d["weight"], d["labels"], block_size=block_size,
                                **args, **hyper)


def _vg(loss, d, ct, names=("hidden", "weight", "bias")):
    names = tuple(n for n in names if n in d)

    def f(*xs):
        return jnp.sum(ct * loss({**d, **dict(zip(names, xs, strict=True))}))

    return jax.jit(jax.value_and_grad(f, argnums=tuple(range(len(names)))))(
        *(d[n] for n in names)), names


def _cast(d, dtype):
    return {k: jnp.asarray(v, dtype) if np.issubdtype(np.asarray(v).dtype, np.floating)
            else jnp.asarray(v) for k, v in d.items()}


@pytest.mark.parametrize("layout", ["dv", "vd"])
@pytest.mark.parametrize(("block", "hyper"), [
    (4, {}),  # two full blocks and a tail of 3
    (11, FULL),  # one block exactly
    (3, FULL),  # three full blocks and a tail of 2
    (64, FULL),  # block larger than V (clamped)
], ids=["plain-b4", "all-b11", "all-b3", "all-b64"])
def test_value_and_gradients_match_closed_form_float64(layout, block, hyper):
    d = _data(layout=layout, masked=bool(hyper), ignore=bool(hyper), bias=bool(hyper))
    hyper = {**hyper, "weight_layout": layout}
    ct = np.random.default_rng(1).uniform(0.5, 2.0, size=N)
    (val, grads), names = _vg(lambda dd: _fused(dd, hyper, block), _cast(d, jnp.float64), ct)
    np.testing.assert_allclose(val, np.sum(ct * lce_value(d, hyper)), rtol=1e-12)
    want = {"hidden": ct[:, None] * lce_dhidden(d, hyper),
            "weight": lce_dweight(d, hyper, ct), "bias": lce_dbias(d, hyper, ct)}
    for name, g in zip(names, grads, strict=True):
        np.testing.assert_allclose(g, want[name], rtol=1e-11, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("layout", ["dv", "vd"])
def test_float32_matches_unfused_computation(layout):
    """The same float32 inputs through x @ W → jaxloss CE and through the fused kernel."""
    d = _cast(_data(seed=3, layout=layout), jnp.float32)
    hyper = {**FULL, "weight_layout": layout}
    ct = jnp.asarray(np.random.default_rng(2).uniform(0.5, 2.0, size=N), jnp.float32)
    (v1, g1), _ = _vg(lambda dd: _fused(dd, hyper, 4 if layout == "dv" else 64), d, ct)
    (v2, g2), _ = _vg(lambda dd: _naive(dd, hyper), d, ct)
    assert v1.dtype == jnp.float32
    np.testing.assert_allclose(v1, v2, rtol=2e-6)
    for a, b in zip(g1, g2, strict=True):
        assert a.dtype == jnp.float32
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_leading_batch_shape_and_mean_reduction():
    d = _data(seed=4, shape=(2, 3))
    d64 = _cast(d, jnp.float64)
    got = _fused(d64, FULL, 4)
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got, lce_value(d, FULL), rtol=1e-12, atol=1e-13)
    # The documented reduction: ignored tokens are left out of the mean.
    m = jaxloss.mean(got, where=d64["labels"] != IGNORE)
    ok = d["labels"] != IGNORE
    np.testing.assert_allclose(m, lce_value(d, FULL)[ok].mean(), rtol=1e-12)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_all_tokens_masked_gives_zero_and_zero_finite_gradients(dtype):
    d = _data(seed=5)
    d["labels"] = np.full(N, IGNORE)
    d["where"] = np.zeros((1, V), bool)  # and every class masked too
    d = _cast(d, dtype)

    def loss(dd):
        values = _fused(dd, FULL, 4)
        return jaxloss.mean(values, where=dd["labels"] != IGNORE) + jnp.sum(values)

    (val, grads), _ = _vg(loss, d, 1.0)
    assert float(val) == 0.0
    for g in grads:
        assert g.dtype == dtype
        assert np.all(np.isfinite(np.asarray(g, np.float32)))
        assert not np.any(np.asarray(g, np.float32))


def test_fully_masked_rows_with_ignore_index_are_zero():
    d = _data(seed=6)
    mask = np.ones((N, V), bool)
    mask[0] = False
    d["where"] = mask
    d["labels"][0] = IGNORE
    d64 = _cast(d, jnp.float64)
    (val, grads), names = _vg(lambda dd: _fused(dd, FULL, 4), d64, 1.0)
    assert np.isfinite(val)
    gx = grads[names.index("hidden")]
    assert not np.any(np.asarray(gx[0]))
    np.testing.assert_allclose(val, np.sum(lce_value(d, FULL)), rtol=1e-12)


def test_bfloat16_inputs_float32_accumulation():
    """bf16 hidden and weight: f32 loss close to the f32 computation at the rounded inputs,
    gradients in bf16 within bf16 resolution of the f32 gradients."""
    d = _data(seed=7)
    d16 = _cast(d, jnp.bfloat16)
    d32 = {k: (v.astype(jnp.float32) if jnp.issubdtype(v.dtype, jnp.floating) else v)
           for k, v in d16.items()}
    (v16, g16), _ = _vg(lambda dd: _fused(dd, FULL, 64), d16, 1.0)
    (v32, g32), _ = _vg(lambda dd: _fused(dd, FULL, 64), d32, 1.0)
    assert v16.dtype == jnp.float32
    np.testing.assert_allclose(v16, v32, rtol=1e-5)
    for a, b in zip(g16, g32, strict=True):
        assert a.dtype == jnp.bfloat16
        scale = float(jnp.max(jnp.abs(b)))
        np.testing.assert_allclose(np.asarray(a, np.float32), b, atol=2e-2 * scale)


def test_out_of_range_label_under_jit_is_nan():
    d = _cast(_data(seed=8, masked=False, ignore=False, bias=False), jnp.float32)
    y = d["labels"].at[0].set(V)
    out = jax.jit(lambda x, w, y: linear_cross_entropy(x, w, y, block_size=4))(
        d["hidden"], d["weight"], y)
    assert np.isnan(out[0]) and np.all(np.isfinite(out[1:]))
    # Its hidden state's gradient row is NaN too, the others finite (a select gave it 0).
    g = jax.jit(jax.grad(lambda x, y: jnp.sum(linear_cross_entropy(x, d["weight"], y,
                                                                   block_size=4))))(d["hidden"], y)
    assert np.isnan(np.asarray(g[0])).all() and np.isfinite(np.asarray(g[1:])).all()


def test_per_example_gradients_under_vmap():
    d = _cast(_data(seed=9), jnp.float64)
    hyper = dict(FULL)

    def one(x, y):
        return linear_cross_entropy(x, d["weight"], y, bias=d["bias"], where=d["where"][0],
                                    block_size=64, **hyper)

    per_ex = jax.vmap(jax.grad(one, argnums=0))(d["hidden"], d["labels"])
    full = jax.grad(lambda x: jnp.sum(_fused({**d, "hidden": x}, hyper, 64)))(d["hidden"])
    np.testing.assert_allclose(per_ex, full, rtol=1e-12, atol=1e-13)


def test_forward_over_reverse_hessian_vector_product():
    """jax.jvp of jax.grad (a Hessian-vector product) works through the custom_vjp and equals
    the central difference of the gradient (float64)."""
    d = _cast(_data(seed=10, masked=False), jnp.float64)
    hyper = {"label_smoothing": 0.1, "z_loss": 1e-2, "ignore_index": IGNORE}
    t = jnp.asarray(np.random.default_rng(0).normal(size=(N, D)))
    grad = jax.jit(jax.grad(lambda x: jnp.sum(_fused({**d, "hidden": x}, hyper, 64))))
    hvp = jax.jvp(grad, (d["hidden"],), (t,))[1]
    h = 1e-5
    fd = (grad(d["hidden"] + h * t) - grad(d["hidden"] - h * t)) / (2 * h)
    np.testing.assert_allclose(hvp, fd, rtol=1e-7, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# Errors (messages name the function and the argument)


def _call(**over):
    d = _cast(_data(seed=11, masked=False, ignore=False, bias=False), jnp.float32)
    kw = {"block_size": 4, **over.pop("kw", {})}
    args = {**d, **over}
    return linear_cross_entropy(args["hidden"], args["weight"], args["labels"], **kw)


@pytest.mark.parametrize(("over", "exc", "pattern"), [
    ({"kw": {"weight_layout": "DV"}}, ValueError, "`weight_layout` must be 'dv'"),
    ({"weight": jnp.ones((D, V, 1))}, ValueError, "`weight` must be 2-d"),
    ({"weight": jnp.ones((D + 1, V))}, ValueError, "`weight` must have the hidden size D=5"),
    ({"kw": {"weight_layout": "vd"}}, ValueError, "`weight` must have the hidden size"),
    ({"kw": {"bias": jnp.ones(V + 1)}}, ValueError, "`bias` must have shape"),
    ({"labels": jnp.zeros((N, 1), jnp.int32)}, ValueError, "`labels` must have the shape"),
    ({"labels": jnp.full(N, V)}, ValueError, r"`labels` must be class indices in \[0, 11\)"),
    ({"labels": jnp.zeros(N)}, TypeError, "`labels` must hold integer"),
    ({"hidden": jnp.ones((N, D), jnp.int32)}, TypeError, "`hidden` must have a floating"),
    ({"weight": jnp.ones((D, V), jnp.int32)}, TypeError, "`weight` must have a floating"),
    ({"kw": {"block_size": 0}}, ValueError, "`block_size` must be a positive int"),
    ({"kw": {"label_smoothing": 1.5}}, ValueError, "`label_smoothing` must be finite"),
    ({"kw": {"z_loss": -1.0}}, ValueError, "`z_loss` must be finite and >= 0"),
    ({"kw": {"logit_soft_cap": 0.0}}, ValueError, "`logit_soft_cap` must be finite and > 0"),
    ({"kw": {"ignore_index": 1.5}}, TypeError, "`ignore_index` must be an int"),
    ({"kw": {"where": jnp.ones((1, V))}}, TypeError, "`where` must be a boolean"),
    ({"kw": {"where": jnp.ones(V, bool)}}, ValueError, "`where` masks vocabulary entries"),
    ({"kw": {"where": jnp.ones((1, V - 1), bool)}}, ValueError, "`where` must have the "
                                                                "vocabulary size V=11"),
])
def test_errors_name_function_and_argument(over, exc, pattern):
    with pytest.raises(exc, match=r"jaxloss\.linear_cross_entropy: " + pattern):
        _call(**over)


def test_label_on_masked_class_is_an_error():
    mask = np.ones((1, V), bool)
    mask[0, 3] = False
    labels = jnp.full(N, 3)
    with pytest.raises(ValueError, match=re.escape("are masked out")):
        _call(labels=labels, kw={"where": mask})


def test_traced_soft_cap_is_an_error():
    with pytest.raises(ValueError, match="`logit_soft_cap` must be a concrete number"):
        jax.jit(lambda c: _call(kw={"logit_soft_cap": c}))(30.0)


# ---------------------------------------------------------------------------------------------
# Memory budgets: XLA temporaries of value-and-grad, deterministic (no allocation).

S = jax.ShapeDtypeStruct


def _temp_bytes(loss, n, d, v, layout="dv"):
    wshape = (d, v) if layout == "dv" else (v, d)
    args = (S((n, d), jnp.float32), S(wshape, jnp.float32), S((n,), jnp.int32))
    f = jax.value_and_grad(lambda x, w, y: jnp.mean(loss(x, w, y)), argnums=(0, 1))
    return jax.jit(f).lower(*args).compile().memory_analysis().temp_size_in_bytes


def _naive_ce(x, w, y):
    return jaxloss.softmax_cross_entropy_with_integer_labels(x @ w, y)


@functools.cache
def _naive_small():
    return _temp_bytes(_naive_ce, 4096, 512, 32768)


@pytest.mark.parametrize("layout", ["dv", "vd"])
def test_memory_budget_n4096_d512_v32768(layout):
    naive = _naive_small()
    fused = _temp_bytes(functools.partial(linear_cross_entropy, weight_layout=layout),
                        4096, 512, 32768, layout)
    assert naive >= 2 * 4096 * 32768 * 4  # logits and their gradient
    assert fused <= 0.10 * naive, (fused / 2**20, naive / 2**20)


def test_memory_budget_n8192_d2048_v131072():
    """Compile only. The unfused program holds the [8192, 131072] float32 logits and their
    gradient (8 GiB of temporaries: measured 8192.1 MiB in bench/); the budget is 3% of that."""
    fused = _temp_bytes(linear_cross_entropy, 8192, 2048, 131072)
    assert fused <= 0.03 * (2 * 8192 * 131072 * 4), fused / 2**20
