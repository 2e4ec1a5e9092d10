"""One parametrised suite over every registered case (tests/registry.py).

For each case: value vs the float64 reference, ``jax.grad`` vs the closed form, vmap == the
batched call, one example in = one value out (float64); finite values and gradients at extreme
float32 inputs; float32 in gives float32 out close to the reference, gradients in the input's
dtype; the error messages for mismatched shapes and wrong dtypes. Where the code path does not
depend on a case's options, one case per loss: eager == jit, bfloat16 in (float16 on a few);
``check_grads`` by finite differences (forward mode, reverse where a case has none) on one case
per loss and set of differentiable inputs; second order on one case of each core loss. The
registry must cover every public loss.

The suite is compile-bound, so checks share one jitted program where they can (one float64
program and one float32 value-and-gradients program per case), and only one check evaluates
eagerly. With ``-n auto`` the whole suite stays within a few minutes on 2 cores.
"""

from __future__ import annotations

import zlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxloss
from tests.registry import CASES, NOT_LOSSES, Case

IDS = [f"{c.loss}[{c.id}]" for c in CASES]
# The first case of each loss: checks whose code path does not depend on the options run there.
_FIRST_OF_EACH = {id(c) for c in {c.loss: c for c in reversed(CASES)}.values()}
# One case per (loss, differentiable inputs): the forward-mode check (reverse mode is pinned
# exactly by the closed form on every case).
_FWD_CHECKED = [
    *{(c.loss, tuple(c.grads), c.grad_modes): c for c in reversed(CASES)}.values()
][::-1]


def _rng(case: Case, salt: str = "") -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(f"{case.loss}/{case.id}/{salt}".encode()))


def _is_float(x) -> bool:
    return jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)


def _cast(data, dtype):
    return {k: (jnp.asarray(v, dtype) if _is_float(v) else jnp.asarray(v)) for k, v in data.items()}


def _expand(ct: np.ndarray, case: Case) -> np.ndarray:
    return ct if case.class_axis is None else np.expand_dims(ct, case.class_axis)


def test_registry_covers_every_public_loss():
    public = set(jaxloss.__all__) - NOT_LOSSES
    registered = {c.loss for c in CASES}
    assert public == registered, (
        f"public losses without a registry case: {sorted(public - registered)}; "
        f"registry names that are not public: {sorted(registered - public)}"
    )
    assert set(jaxloss.LOSSES) == public
    assert set(jaxloss.COMBINATORS) <= set(jaxloss.__all__)
    assert all(hasattr(jaxloss, name) for name in jaxloss.__all__)
    for name in public:
        assert callable(getattr(jaxloss, name))


def _float64_program(case: Case):
    """One jitted program per case for the float64 checks: the values, the gradient of
    sum(ct * values) w.r.t. each differentiable input, the values under vmap, and one example's
    value (compiling is most of the suite's time; one program instead of four)."""
    names = list(case.grads)

    @jax.jit
    def program(data, ct, one):
        grads = {n: jax.grad(lambda x, n=n: jnp.sum(case.call({**data, n: x}) * ct))(data[n])
                 for n in names}
        axes = {k: case.vmap_axes.get(k, 0) for k in data}
        vmapped = jax.vmap(case.call, in_axes=(axes,))(data)
        return case.call(data), grads, vmapped, case.call(one)

    return program


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float64_value_gradients_and_batching(case: Case):
    """Value vs the NumPy reference; jax.grad vs the closed form; eager == jit; vmap == the
    batched call; one example in gives that example's value out."""
    assert case.grads, "every case states at least one closed-form gradient"
    data = case.make(_rng(case))
    jdata = _cast(data, jnp.float64)
    out_shape = np.shape(case.reference(data, case.hyper))
    ct = _rng(case, "ct").uniform(0.5, 2.0, size=out_shape)
    axes = {k: case.vmap_axes.get(k, 0) for k in jdata}
    one = {k: (v if axes[k] is None else jnp.take(v, 0, axis=axes[k])) for k, v in jdata.items()}
    values, grads, vmapped, single = _float64_program(case)(jdata, ct, one)

    assert values.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(values), case.reference(data, case.hyper),
                               rtol=1e-12, atol=1e-12, err_msg="value vs the reference")
    for name, closed_form in case.grads.items():
        local = closed_form(data, case.hyper)
        if np.ndim(data[name]) == 0:  # a scalar hyperparameter: sum over all elements
            want = np.sum(_expand(ct, case) * local)
        else:
            want = _expand(ct, case) * local
        np.testing.assert_allclose(np.asarray(grads[name]), want, rtol=1e-10, atol=1e-12,
                                   err_msg=f"d/d{name} vs the closed form")
    chex.assert_trees_all_close(vmapped, values, rtol=1e-13, atol=1e-13,
                                custom_message="vmap vs the batched call")
    chex.assert_trees_all_close(single, values[0], rtol=1e-13, atol=1e-13,
                                custom_message="one example vs its row of the batched call")
    # Eager, op by op: the same values. On the first case of each loss (the suite's only eager
    # evaluation: eager dispatch compiles every primitive and jitted helper on its own).
    if id(case) in _FIRST_OF_EACH:
        chex.assert_trees_all_close(case.call(jdata), values, rtol=1e-13, atol=1e-13,
                                    custom_message="eager vs jit")


@pytest.mark.parametrize("case", _FWD_CHECKED, ids=[f"{c.loss}[{c.id}]" for c in _FWD_CHECKED])
def test_check_grads_finite_differences(case: Case):
    data = _cast(case.make(_rng(case)), jnp.float64)
    names = list(case.grads)

    def f(*xs):
        return case.call({**data, **dict(zip(names, xs, strict=True))})

    # First order. The closed-form test above pins reverse mode exactly (jax.grad); this checks
    # forward mode (the JVP rules, custom ones included) against finite differences, and reverse
    # mode only where a case has no forward mode. Second order costs ~4x the compile time, so it
    # runs on the core cases only (test_second_order_core_losses).
    modes = ("fwd",) if "fwd" in case.grad_modes else case.grad_modes
    check_grads(jax.jit(f), tuple(data[n] for n in names), order=1, modes=modes,
                atol=1e-5, rtol=1e-5)


#: The core families (regression, classification, divergences): second order and float16 run
#: on their cases only. Second order on the first case of every loss was measured at about 4x
#: this file's first-order finite differences (107 s on 2 workers for 60 losses, the Barron
#: losses 26 s of it), too much for the suite's budget.
CORE_MODULES = ("jaxloss._regression", "jaxloss._classification", "jaxloss._divergence")
CORE = sorted(
    (c for c in CASES if jaxloss.loss_info(c.loss).module in CORE_MODULES),
    key=lambda c: CORE_MODULES.index(jaxloss.loss_info(c.loss).module),
)


# Second order for the first case of each core loss (the other cases of a loss share its code).
SECOND_ORDER = list({c.loss: c for c in reversed(CORE)}.values())


@pytest.mark.parametrize("case", SECOND_ORDER, ids=[f"{c.loss}[{c.id}]" for c in SECOND_ORDER])
def test_second_order_core_losses(case: Case):
    """Hessian-vector products of the core losses against finite differences of the gradient."""
    data = _cast(case.make(_rng(case)), jnp.float64)
    names = list(case.grads)

    def f(*xs):
        return case.call({**data, **dict(zip(names, xs, strict=True))})

    check_grads(jax.jit(f), tuple(data[n] for n in names), order=2, modes=("rev",),
                atol=1e-5, rtol=1e-5)


def _value_and_grads(case: Case):
    """Jitted (values, gradients of their sum w.r.t. the differentiable inputs)."""
    names = list(case.grads)

    @jax.jit
    def value_and_grads(data):
        def total(xs):
            return jnp.sum(case.call({**data, **xs}))

        return case.call(data), jax.grad(total)({n: data[n] for n in names})

    return value_and_grads


def _check_dtype_policy(case: Case, value_and_grads, dtype) -> None:
    """Low precision in, float32 computation and float32 out; gradients in the input's dtype."""
    data = _cast(case.make(_rng(case)), dtype)
    values, grads = value_and_grads(data)
    assert values.dtype == jnp.float32, f"{dtype.__name__} in should give float32 out"
    # The reference evaluated at the rounded inputs: a float32 computation matches it closely,
    # a bfloat16 computation would not (its grid is 2^-8 relative).
    rounded = {k: np.asarray(jnp.asarray(v, jnp.float64)) if _is_float(v) else np.asarray(v)
               for k, v in data.items()}
    want = case.reference(rounded, case.hyper)
    np.testing.assert_allclose(np.asarray(values, np.float64), want, rtol=2e-5, atol=2e-5,
                               err_msg=f"{dtype.__name__} in")
    for name in case.grads:
        assert grads[name].dtype == data[name].dtype, f"d/d{name} for {dtype.__name__} in"


_F32_MAX = float(np.finfo(np.float32).max)


def _assert_rounded_float64(got, want, what: str) -> None:
    """float32 results against the float64 ones at the same (rounded) inputs: never NaN; where
    the float64 answer is within float32's range, that answer rounded (to a float32
    algorithm's accuracy); beyond the range, inf of the same sign."""
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    assert not np.isnan(want).any(), f"{what}: the float64 computation itself is NaN: {want}"
    assert not np.isnan(got).any(), (
        f"{what}: NaN in float32 where float64 gives {want[np.isnan(got)]}")
    beyond = np.abs(want) > _F32_MAX * (1 + 2.0**-24)  # rounds to inf in float32
    np.testing.assert_array_equal(got[beyond], np.sign(want[beyond]) * np.inf,
                                  err_msg=f"{what}: beyond float32's range")
    np.testing.assert_allclose(got[~beyond], want[~beyond], rtol=1e-4, atol=1e-6,
                               err_msg=f"{what}: float32 vs float64 at the same inputs")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_extremes_and_dtype_policy(case: Case):
    """One jitted value-and-gradients per case (compiles are most of the suite's time):
    at extreme float32 inputs, values and gradients are the float64 ones at the same rounded
    inputs rounded to float32 (inf only beyond float32's range, never NaN), and the dtype
    policy for float32 inputs (every case) and bfloat16 inputs (one case per loss). float16
    takes bfloat16's path (upcast on entry); a few cases check it below.

    The float64 side is the loss's own code in float64, not an independent reference: it checks
    that the float32 computation loses nothing float64 keeps (overflow, flush to zero, 0·inf),
    while the formula itself is pinned by the NumPy references at ordinary points (above) and
    by independently computed values at extreme points in tests/test_trust_*.py.
    """
    value_and_grads = _value_and_grads(case)
    extremes = case.extremes()
    assert extremes, "every case lists extreme inputs"
    for i, raw in enumerate(extremes):
        data32 = _cast(raw, jnp.float32)
        values, grads = value_and_grads(data32)
        values64, grads64 = value_and_grads(_cast(data32, jnp.float64))
        _assert_rounded_float64(values, values64, f"extreme input set {i}: values")
        for name in grads:
            _assert_rounded_float64(grads[name], grads64[name], f"extreme input set {i}: d/d{name}")
    # bfloat16 on the first case of each loss: the upcast on entry is per loss, not per option.
    for dtype in (jnp.float32, jnp.bfloat16) if id(case) in _FIRST_OF_EACH else (jnp.float32,):
        _check_dtype_policy(case, value_and_grads, dtype)


def _class_axes(case: Case, ndim: int) -> tuple[int, ...]:
    axes = case.class_axis if isinstance(case.class_axis, tuple) else (case.class_axis,)
    return tuple(sorted(a % ndim for a in axes if a is not None))


def _nan_targets(case: Case, data, name: str, out_shape, rng):
    """Where to put the NaN in input ``name`` and which values must then be NaN.

    Returns (element index, boolean mask over the values) or None when every element is
    masked out or belongs to an ignored example."""
    x = np.asarray(data[name])
    ignore = case.hyper.get("ignore_index")
    labels = data.get("labels")
    counted_out = np.ones(out_shape, bool)
    if ignore is not None and labels is not None and np.shape(labels) == tuple(out_shape):
        counted_out = np.asarray(labels) != ignore
    axis = case.vmap_axes.get(name, 0)
    if axis is None:  # a shared input: every counted value depends on it
        return (...), counted_out
    where = data.get("where")
    class_axes = _class_axes(case, x.ndim)
    out_idx_of = None
    if x.shape == tuple(out_shape)[:x.ndim]:  # elementwise (the values may add trailing axes)
        out_idx_of = lambda idx: idx  # noqa: E731
    elif class_axes and tuple(s for a, s in enumerate(x.shape) if a not in class_axes) == tuple(
            out_shape):
        out_idx_of = lambda idx: tuple(i for a, i in enumerate(idx) if a not in class_axes)  # noqa: E731
    for flat in rng.permutation(x.size):
        idx = np.unravel_index(flat, x.shape)
        if where is not None and np.shape(where) == x.shape and not where[idx]:
            continue
        mask = np.zeros(out_shape, bool)
        if case.nan_scope == "all":
            mask[...] = True
        elif case.nan_scope == "element" and out_idx_of is not None:
            mask[out_idx_of(idx)] = True
        else:  # the whole example along the input's vmap axis (the values' leading axis)
            mask[idx[axis]] = True
        mask &= counted_out
        if mask.any():
            return idx, mask
    return None


def _fed_entries(case: Case, data, name: str, mask: np.ndarray) -> np.ndarray:
    """The entries of input ``name`` that feed the values selected by ``mask`` (class-masked
    entries excluded: a masked class takes no part in the loss)."""
    x = np.asarray(data[name])
    if x.shape == mask.shape:
        fed = mask.copy()
    elif x.shape == mask.shape[:x.ndim]:  # the values add trailing axes (several quantiles)
        fed = mask.reshape(*x.shape, -1).any(axis=-1)
    else:
        class_axes = _class_axes(case, x.ndim)
        kept = tuple(s for a, s in enumerate(x.shape) if a not in class_axes)
        if class_axes and kept == mask.shape:
            fed = np.broadcast_to(np.expand_dims(mask, class_axes), x.shape).copy()
        else:  # by example along the input's vmap axis
            axis = case.vmap_axes.get(name, 0)
            rows = mask.reshape(mask.shape[0], -1).any(axis=1)
            fed = np.broadcast_to(np.expand_dims(rows, tuple(a for a in range(x.ndim)
                                                              if a != axis)), x.shape).copy()
    where = data.get("where")
    if where is not None and np.shape(where) == x.shape:
        fed &= np.asarray(where)
    return fed


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_nan_in_one_element_gives_nan_for_what_it_feeds(case: Case):
    """A NaN in one element of a float input (float32, jitted) makes the values it feeds NaN, and
    the gradient of those values w.r.t. the first input (the model's output: predictions,
    logits); every other value and every other example's gradients are bit-for-bit the clean
    ones. A NaN is never turned into a finite number. (Gradients w.r.t. targets may stay finite
    where the loss is linear in them.)"""
    value_and_grads = _value_and_grads(case)
    data = _cast(case.make(_rng(case)), jnp.float32)
    clean, clean_grads = value_and_grads(data)
    out_shape = np.shape(clean)
    rng = _rng(case, "nan")
    float_inputs = [n for n, v in data.items() if _is_float(v)]
    checked = 0
    for name in float_inputs:
        host = {k: np.asarray(v) for k, v in data.items()}
        target = _nan_targets(case, host, name, out_shape, rng)
        if target is None:
            continue
        idx, mask = target
        poisoned = np.array(data[name])
        poisoned[idx] = np.nan
        values, grads = value_and_grads({**data, name: jnp.asarray(poisoned)})
        values, want = np.asarray(values), np.asarray(clean)
        assert np.isnan(values[mask]).all(), (
            f"NaN in `{name}` at {idx}: values it feeds came back {values[mask]}")
        np.testing.assert_array_equal(values[~mask], want[~mask],
                                      err_msg=f"NaN in `{name}` at {idx}: other values changed")
        first = case.positional[0]
        if first in grads:  # the model's output: its gradient on what the NaN feeds is NaN
            g = np.asarray(grads[first])
            fed = _fed_entries(case, data, first, mask)
            assert np.isnan(g[fed]).all(), (
                f"NaN in `{name}` at {idx}: d/d{first} of the values it feeds came back "
                f"{g[fed]}")
        for g in grads:
            axis = case.vmap_axes.get(g, 0)
            if axis is None or case.nan_scope == "all" or case.vmap_axes.get(name, 0) is None:
                continue
            examples = np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1))
            keep = np.setdiff1d(np.arange(np.shape(grads[g])[axis]), examples)
            np.testing.assert_array_equal(
                np.take(np.asarray(grads[g]), keep, axis=axis),
                np.take(np.asarray(clean_grads[g]), keep, axis=axis),
                err_msg=f"NaN in `{name}` at {idx}: d/d{g} of other examples changed")
        checked += 1
    assert checked, "no float input to poison"


FLOAT16_CASES = [c for c in CORE if c.id == "plain"][::3]


@pytest.mark.parametrize("case", FLOAT16_CASES, ids=[f"{c.loss}[{c.id}]" for c in FLOAT16_CASES])
def test_float16_is_computed_in_float32(case: Case):
    _check_dtype_policy(case, _value_and_grads(case), jnp.float16)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_shape_mismatch_names_function_and_argument(case: Case):
    data = _cast(case.make(_rng(case)), jnp.float32)
    second = case.positional[1]
    data[second] = data[second][..., :-1]
    with pytest.raises(ValueError, match=rf"jaxloss\.{case.loss}: .*`{second}`"):
        case.call(data)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_wrong_dtype_names_function_and_argument(case: Case):
    data = _cast(case.make(_rng(case)), jnp.float32)
    first = case.positional[0]
    data[first] = data[first].astype(jnp.int32)
    with pytest.raises(TypeError, match=rf"jaxloss\.{case.loss}: `{first}`"):
        case.call(data)
