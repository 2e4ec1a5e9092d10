"""The one reduction rule: ``jaxloss.mean`` / ``jaxloss.sum`` / ``jaxloss.mean_parts``.

    mean(v, weights=w, where=m) = Σ_{counted} w v / Σ_{counted} w,  0 when nothing is counted

Expected values come from a NumPy float64 implementation of that formula. The gradients are
checked against their closed forms (d mean/d v_i = w_i / W and d mean/d w_i = (v_i - mean) / W
for counted i, 0 elsewhere; W = Σ_counted w), the mergeable ``WeightedMean`` parts against the
single-batch mean (random micro-batch splits, hypothesis) and under ``jax.lax.psum``.
"""

from __future__ import annotations

import itertools
import operator

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxloss

SHAPE = (4, 6)
RTOL = ATOL = 1e-12


@pytest.fixture(autouse=True, scope="module")
def x64():
    """float64 for this module's tests only (module scope: hypothesis rejects function-scoped
    fixtures); the global flag is restored afterwards."""
    with jax.enable_x64(True):
        yield


def close(actual, expected, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------------------------
# NumPy float64 reference


def ref_parts(values, weights=None, where=None, axis=None):
    v = np.asarray(values, np.float64)
    w = np.ones_like(v) if weights is None else np.broadcast_to(
        np.asarray(weights, np.float64), v.shape)
    m = np.ones(v.shape, bool) if where is None else np.broadcast_to(np.asarray(where), v.shape)
    vm, wm = np.where(m, v, 0.0), np.where(m, w, 0.0)  # uncounted entries may hold NaN
    return (wm * vm).sum(axis=axis), wm.sum(axis=axis)


def ref_mean(values, weights=None, where=None, axis=None):
    s, t = ref_parts(values, weights, where, axis)
    return np.where(t != 0, s / np.where(t != 0, t, 1.0), 0.0)


def ref_mean_grads(values, weights=None, where=None):
    """(d mean/d values, d mean/d weights) over all axes: w/W and (v - mean)/W where counted."""
    v = np.asarray(values, np.float64)
    w = np.ones_like(v) if weights is None else np.broadcast_to(
        np.asarray(weights, np.float64), v.shape)
    m = np.ones(v.shape, bool) if where is None else np.broadcast_to(np.asarray(where), v.shape)
    total = np.where(m, w, 0.0).sum()
    if total == 0:
        return np.zeros_like(v), np.zeros_like(v)
    mean = ref_mean(v, w, m)
    return np.where(m, w / total, 0.0), np.where(m, (np.where(m, v, 0.0) - mean) / total, 0.0)


# ---------------------------------------------------------------------------------------------
# Inputs


def make_values(seed=0, shape=SHAPE):
    return np.random.default_rng(seed).normal(size=shape) * 3.0


def make_weights(kind, seed=1):
    rng = np.random.default_rng(seed)
    return {
        "none": None,
        "full": rng.uniform(0.1, 2.0, SHAPE),
        "rows": rng.uniform(0.1, 2.0, (SHAPE[0], 1)),
        "cols": rng.uniform(0.1, 2.0, (1, SHAPE[1])),
        "scalar": np.float64(2.5),
        "int": rng.integers(0, 4, SHAPE),  # some zeros: counted elements with no weight
        "bool": rng.random(SHAPE) < 0.7,
    }[kind]


def make_where(kind, seed=2):
    rng = np.random.default_rng(seed)
    return {
        "none": None,
        "full": rng.random(SHAPE) < 0.6,
        "cols": rng.random((1, SHAPE[1])) < 0.6,
    }[kind]


def as_jnp(x):
    return None if x is None else jnp.asarray(x)


def _mean(v, w, m):
    return jaxloss.mean(v, w, m)


def _mean_via_parts(v, w, m):
    return jaxloss.mean_parts(v, w, m).value()


# Jitted once at module level, so the compile cache is shared across tests.
jit_mean_value_and_grads = jax.jit(jax.value_and_grad(_mean, argnums=(0, 1)))
jit_mean_parts = jax.jit(jaxloss.mean_parts)


WEIGHT_KINDS = ["none", "full", "rows", "cols", "scalar", "int", "bool"]
WHERE_KINDS = ["none", "full", "cols"]
AXES = pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 1)],
                               ids=["axis=None", "axis=0", "axis=1", "axis=-1", "axis=(0,1)"])


# ---------------------------------------------------------------------------------------------
# The formula


@AXES
@pytest.mark.parametrize("where_kind", WHERE_KINDS, ids=[f"where={k}" for k in WHERE_KINDS])
@pytest.mark.parametrize("weight_kind", WEIGHT_KINDS, ids=[f"weights={k}" for k in WEIGHT_KINDS])
def test_matches_reference(weight_kind, where_kind, axis):
    v, w, m = make_values(), make_weights(weight_kind), make_where(where_kind)
    args = (jnp.asarray(v), as_jnp(w), as_jnp(m))
    s, t = ref_parts(v, w, m, axis)
    close(jaxloss.mean(*args, axis=axis), ref_mean(v, w, m, axis))
    close(jaxloss.sum(*args, axis=axis), s)
    parts = jaxloss.mean_parts(*args, axis=axis)
    assert isinstance(parts, jaxloss.WeightedMean)
    close(parts.weighted_sum, s)
    close(parts.total_weight, t)
    close(parts.value(), ref_mean(v, w, m, axis))
    # Keyword spelling is the same call.
    close(jaxloss.mean(args[0], weights=args[1], where=args[2], axis=axis),
          ref_mean(v, w, m, axis))


def test_mean_of_plain_values_is_the_arithmetic_mean():
    v = make_values()
    close(jaxloss.mean(jnp.asarray(v)), v.mean())
    close(jaxloss.sum(jnp.asarray(v)), v.sum())


@pytest.mark.parametrize("where_kind", WHERE_KINDS, ids=[f"where={k}" for k in WHERE_KINDS])
@pytest.mark.parametrize("weight_kind", ["none", "full", "rows", "int"])
def test_gradients_match_closed_form(weight_kind, where_kind):
    v, w, m = make_values(), make_weights(weight_kind), make_where(where_kind)
    wf = np.ones(SHAPE) if w is None else np.broadcast_to(np.asarray(w, np.float64), SHAPE)
    mf = np.ones(SHAPE, bool) if m is None else np.broadcast_to(m, SHAPE)
    dv, dw = ref_mean_grads(v, wf, mf)
    wj, mj = jnp.asarray(wf), as_jnp(m)

    gv, gw = jax.grad(lambda v, w: jaxloss.mean(v, w, mj), argnums=(0, 1))(jnp.asarray(v), wj)
    close(gv, dv)
    close(gw, dw)
    # sum: d/dv = w, d/dw = v, on counted elements.
    gv, gw = jax.grad(lambda v, w: jaxloss.sum(v, w, mj), argnums=(0, 1))(jnp.asarray(v), wj)
    close(gv, np.where(mf, wf, 0.0))
    close(gw, np.where(mf, v, 0.0))
    # Through the parts, and under jit.
    gv = jax.grad(_mean_via_parts)(jnp.asarray(v), wj, mj)
    close(gv, dv)
    _, (gv, gw) = jit_mean_value_and_grads(jnp.asarray(v), wj, mj)
    close(gv, dv)
    close(gw, dw)


def test_per_axis_gradient():
    """axis=1: each row's mean depends only on its row, with weight w_ij / W_i."""
    v, w, m = make_values(), make_weights("full"), make_where("full")
    g = jax.grad(lambda v: jnp.sum(jaxloss.mean(v, jnp.asarray(w), jnp.asarray(m), axis=1)))(
        jnp.asarray(v))
    row_w = np.where(m, w, 0.0).sum(axis=1, keepdims=True)
    close(g, np.where(m, w, 0.0) / row_w)


def test_jit_matches_eager():
    v, w, m = make_values(), make_weights("full"), make_where("full")
    args = (jnp.asarray(v), jnp.asarray(w), jnp.asarray(m))
    for fn in (jaxloss.mean, jaxloss.sum):
        close(jax.jit(fn)(*args), fn(*args))
    j = jit_mean_parts(*args)
    e = jaxloss.mean_parts(*args)
    assert isinstance(j, jaxloss.WeightedMean)
    close(j.weighted_sum, e.weighted_sum)
    close(j.total_weight, e.total_weight)


# ---------------------------------------------------------------------------------------------
# Nothing counted: 0, with a finite zero gradient


NOTHING_COUNTED = pytest.mark.parametrize(
    ("values", "weights", "where"),
    [
        pytest.param(make_values(), None, np.zeros(SHAPE, bool), id="all-masked"),
        pytest.param(make_values(), make_weights("full"), np.zeros((1, SHAPE[1]), bool),
                     id="all-masked-broadcast-where-with-weights"),
        pytest.param(np.where(np.eye(*SHAPE) > 0, np.nan, make_values()), make_weights("full"),
                     np.zeros(SHAPE, bool), id="all-masked-with-nan-values"),
        pytest.param(make_values(), np.zeros(SHAPE), None, id="zero-weights"),
        pytest.param(make_values(), np.zeros(SHAPE), make_where("full"), id="zero-weights-masked"),
        pytest.param(np.zeros((0,)), None, None, id="empty"),
    ],
)


@NOTHING_COUNTED
def test_nothing_counted_mean_is_zero_with_zero_gradient(values, weights, where):
    w = jnp.ones(np.shape(values)) if weights is None else jnp.asarray(weights)
    m = as_jnp(where)
    args = (jnp.asarray(values), w, m)
    for value, (gv, gw) in (
        jax.value_and_grad(_mean, argnums=(0, 1))(*args),
        jax.value_and_grad(_mean_via_parts, argnums=(0, 1))(*args),
        jit_mean_value_and_grads(*args),
    ):
        assert float(value) == 0.0
        for g in (gv, gw):
            assert np.all(np.isfinite(np.asarray(g)))
            assert np.all(np.asarray(g) == 0)


@NOTHING_COUNTED
def test_nothing_counted_sum_is_zero(values, weights, where):
    w = jnp.ones(np.shape(values)) if weights is None else jnp.asarray(weights)
    m = as_jnp(where)
    value, (gv, gw) = jax.value_and_grad(
        lambda v, w: jaxloss.sum(v, w, m), argnums=(0, 1))(jnp.asarray(values), w)
    assert float(value) == 0.0
    mf = np.ones(np.shape(values), bool) if where is None else np.broadcast_to(
        where, np.shape(values))
    close(gv, np.where(mf, w, 0.0))  # zero: masked, or weight 0
    close(gw, np.where(mf, values, 0.0))  # d sum / d w = v on counted entries
    assert np.all(np.isfinite(np.asarray(gw)))


def test_nothing_counted_in_one_row_only():
    v, w = make_values(), make_weights("full")
    m = make_where("full").copy()
    m[2] = False
    out = jaxloss.mean(jnp.asarray(v), jnp.asarray(w), jnp.asarray(m), axis=1)
    close(out, ref_mean(v, w, m, axis=1))
    assert float(out[2]) == 0.0
    g = jax.grad(lambda v: jnp.sum(jaxloss.mean(v, jnp.asarray(w), jnp.asarray(m), axis=1)))(
        jnp.asarray(v))
    assert np.all(np.asarray(g)[2] == 0)
    assert np.all(np.isfinite(np.asarray(g)))


# ---------------------------------------------------------------------------------------------
# Masked-out NaN / inf do not leak


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("where_kind", ["full", "cols"])
def test_masked_out_non_finite_values_do_not_leak(where_kind, bad):
    v, w, m = make_values(), make_weights("full"), make_where(where_kind)
    mf = np.broadcast_to(m, SHAPE)
    v_bad = np.where(mf, v, bad)
    w_bad = np.where(mf, w, bad)  # weights of uncounted elements are not used either
    dv, dw = ref_mean_grads(v, w, mf)
    args = (jnp.asarray(v_bad), jnp.asarray(w_bad), jnp.asarray(m))
    for value, (gv, gw) in (
        jax.value_and_grad(_mean, argnums=(0, 1))(*args),
        jax.value_and_grad(_mean_via_parts, argnums=(0, 1))(*args),
        jit_mean_value_and_grads(*args),
    ):
        close(value, ref_mean(v, w, m))
        close(gv, dv)
        close(gw, dw)
    value, (gv, gw) = jax.value_and_grad(jaxloss.sum, argnums=(0, 1))(*args)
    close(value, ref_parts(v, w, m)[0])
    close(gv, np.where(mf, w, 0.0))
    close(gw, np.where(mf, v, 0.0))


# ---------------------------------------------------------------------------------------------
# Mergeable parts


MAX_BATCH = 16


def _pad(x, fill):
    out = np.full(MAX_BATCH, fill, dtype=np.asarray(x).dtype)
    out[: len(x)] = x
    return jnp.asarray(out)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, MAX_BATCH),
    seed=st.integers(0, 2**32 - 1),
    use_weights=st.booleans(),
    use_where=st.booleans(),
    data=st.data(),
)
def test_micro_batch_merge_equals_single_batch(n, seed, use_weights, use_where, data):
    """Random splits of a batch into micro-batches; the merged parts give the batch's mean.

    Each micro-batch is padded to one fixed shape, as in a jitted accumulation loop (and one
    compile); the padding holds NaN values and weights and is masked out with ``where``.
    """
    cuts = sorted(data.draw(st.sets(st.integers(1, n - 1)), label="cuts")) if n > 1 else []
    rng = np.random.default_rng(seed)
    v = rng.normal(size=n) * 3.0
    w = rng.uniform(0.0, 2.0, n) if use_weights else None
    m = rng.random(n) < 0.5 if use_where else np.ones(n, bool)  # some parts count nothing

    def part(a, b):
        return jit_mean_parts(_pad(v[a:b], np.nan),
                              None if w is None else _pad(w[a:b], np.nan),
                              _pad(m[a:b], False))

    bounds = [0, *cuts, n]
    parts = [part(a, b) for a, b in itertools.pairwise(bounds)]
    merged = parts[0]
    for p in parts[1:]:
        merged = merged + p
    assert isinstance(merged, jaxloss.WeightedMean)

    s, t = ref_parts(v, w, m)
    close(merged.weighted_sum, s)
    close(merged.total_weight, t)
    close(merged.value(), ref_mean(v, w, m))
    close(merged.value(), part(0, n).value())  # the single batch, through the same path


def test_add_merges_parts_not_tuples():
    a = jaxloss.mean_parts(jnp.array([1.0, 2.0]))
    b = jaxloss.mean_parts(jnp.array([6.0]), weights=jnp.array([2.0]))
    c = a + b
    assert isinstance(c, jaxloss.WeightedMean) and len(c) == 2
    close(c.weighted_sum, 1.0 + 2.0 + 12.0)
    close(c.total_weight, 4.0)
    close(c.value(), 15.0 / 4.0)
    with pytest.raises(TypeError):
        operator.add(a, (1.0, 2.0))  # a plain tuple is not a part: no concatenation
    # Builtin sum (start value 0) merges a list of parts.
    total = sum([a, b, jaxloss.mean_parts(jnp.array([3.0]))])
    assert isinstance(total, jaxloss.WeightedMean)
    close(total.weighted_sum, 18.0)
    close(total.total_weight, 5.0)


def test_psum_of_parts_under_vmap_equals_global_mean():
    d, n = 4, 5
    rng = np.random.default_rng(3)
    v = rng.normal(size=(d, n))
    w = rng.uniform(0.1, 2.0, (d, n))
    m = rng.random((d, n)) < 0.6
    m[2] = False  # one device counts nothing
    v[2, 0] = np.nan  # ... and holds a masked NaN

    def per_device(v, w, m):
        return jax.lax.psum(jaxloss.mean_parts(v, w, m), "devices").value()

    def global_from_device0(v):
        return jax.vmap(per_device, axis_name="devices")(v, jnp.asarray(w), jnp.asarray(m))[0]

    # jitted (as in a training step): one compile each instead of one per op
    out = jax.jit(jax.vmap(per_device, axis_name="devices"))(
        jnp.asarray(v), jnp.asarray(w), jnp.asarray(m))
    expected = ref_mean(v, w, m)
    close(out, np.full(d, expected))
    close(jaxloss.mean(jnp.asarray(v), jnp.asarray(w), jnp.asarray(m)), expected)

    dv, _ = ref_mean_grads(v, w, m)
    close(jax.jit(jax.grad(global_from_device0))(jnp.asarray(v)), dv)


# ---------------------------------------------------------------------------------------------
# Bad inputs: clear errors naming the function and the argument

V3 = np.array([1.0, 2.0, 3.0])

BAD_INPUTS = [
    pytest.param(dict(values=np.arange(3)), TypeError, "values", id="int-values"),
    pytest.param(dict(values=np.array([True, False])), TypeError, "values", id="bool-values"),
    pytest.param(dict(values=V3 + 1j), TypeError, "values", id="complex-values"),
    pytest.param(dict(values=V3, where=np.array([1, 0, 1])), TypeError, "where", id="int-where"),
    pytest.param(dict(values=V3, where=np.array([1.0, 0.0, 1.0])), TypeError, "where",
                 id="float-where"),
    pytest.param(dict(values=V3, weights=V3 + 1j), TypeError, "weights", id="complex-weights"),
    pytest.param(dict(values=V3, weights=np.ones(4)), ValueError, "weights",
                 id="weights-wrong-length"),
    pytest.param(dict(values=V3, weights=np.ones((2, 3))), ValueError, "weights",
                 id="weights-would-broadcast-values-up"),
    pytest.param(dict(values=V3, where=np.ones(2, bool)), ValueError, "where",
                 id="where-wrong-length"),
    pytest.param(dict(values=V3, where=np.ones((2, 3), bool)), ValueError, "where",
                 id="where-would-broadcast-values-up"),
]


@pytest.mark.parametrize(("kwargs", "error", "arg"), BAD_INPUTS)
@pytest.mark.parametrize("fn", ["mean", "sum", "mean_parts"])
def test_bad_inputs_raise_clear_errors(fn, kwargs, error, arg):
    kwargs = {k: jnp.asarray(x) for k, x in kwargs.items()}
    with pytest.raises(error) as info:
        getattr(jaxloss, fn)(**kwargs)
    message = str(info.value)
    assert f"`{arg}`" in message, message
    assert f"jaxloss.{fn}" in message, message


# ---------------------------------------------------------------------------------------------
# Low precision: bf16 values are reduced in float32


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "bf16-weights-and-where"])
@pytest.mark.parametrize("fn", ["mean", "sum", "mean_parts"])
def test_bfloat16_values_are_reduced_in_float32(fn, weighted):
    rng = np.random.default_rng(4)
    # Many values near 1: a bf16 (8-bit mantissa) accumulator or result is off by ~1e-3.
    v = jnp.asarray(1.0 + 0.1 * rng.random(4096), jnp.bfloat16)
    w = jnp.asarray(rng.uniform(0.5, 1.5, 4096), jnp.bfloat16) if weighted else None
    m = jnp.asarray(rng.random(4096) < 0.8) if weighted else None
    v64 = np.asarray(v.astype(jnp.float64))
    w64 = None if w is None else np.asarray(w.astype(jnp.float64))

    out = getattr(jaxloss, fn)(v, w, m)
    s, t = ref_parts(v64, w64, None if m is None else np.asarray(m))
    if fn == "mean_parts":
        assert out.weighted_sum.dtype == jnp.float32
        assert out.total_weight.dtype == jnp.float32
        close(out.weighted_sum, s, rtol=1e-6, atol=0)
        close(out.total_weight, t, rtol=1e-6, atol=0)
        out = out.value()
    expected = s if fn == "sum" else s / t
    assert out.dtype == jnp.float32
    close(out, expected, rtol=1e-6, atol=0)

    # The gradient comes back in the input's dtype, with the closed-form value.
    def reduced(v):
        r = getattr(jaxloss, fn)(v, w, m)
        return r.value() if fn == "mean_parts" else r

    g = jax.grad(reduced)(v)
    assert g.dtype == jnp.bfloat16
    counted_w = np.where(np.ones(4096, bool) if m is None else np.asarray(m),
                         1.0 if w64 is None else w64, 0.0)
    close(g.astype(jnp.float64), counted_w if fn == "sum" else counted_w / t, rtol=1e-2, atol=0)


def test_mean_range_ends_of_the_overflow_scaling():
    # n = 2^20: the terms are scaled by 2^-21 (2^k = 2n at a power-of-two count), so the
    # documented float32 range of exact terms is [2^21 · 2^-126, max]: 2^-104 is counted
    # exactly, its 2^-21 multiple is normal; the gradient is 1/n whatever the magnitude.
    n = 2**20
    for magnitude in (2.0**-104, 2.0**-60, 2.0**100):
        values = jnp.full((n,), magnitude, jnp.float32)
        assert float(jax.jit(jaxloss.mean)(values)) == magnitude
    tiny = jnp.full((n,), 2.0**-110, jnp.float32)
    grad = jax.jit(jax.grad(jaxloss.mean))(tiny)
    np.testing.assert_array_equal(np.asarray(grad), np.full(n, 2.0**-20, np.float32))


def test_mean_total_weight_at_the_low_end_of_the_scaling():
    # n = 4: 2^k = 8, so a total weight from 8 · 2^-126 = 2^-123 up is exact (the mean of
    # 2^100 is 2^100); below it the scaled total flushes on XLA:CPU and the mean is 0, as
    # documented, while the gradient w / sum(w) stays exact.
    values = jnp.full((4,), 2.0**100, jnp.float32)
    mean = jax.jit(jaxloss.mean)
    assert float(mean(values, jnp.full((4,), 2.0**-125, jnp.float32))) == 2.0**100
    tiny = jnp.full((4,), 2.0**-126, jnp.float32)
    if jax.default_backend() == "cpu":
        assert float(mean(values, tiny)) == 0.0
    grad = jax.jit(jax.grad(jaxloss.mean))(values, tiny)
    np.testing.assert_array_equal(np.asarray(grad), np.full(4, 0.25, np.float32))
