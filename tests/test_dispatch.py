"""The eager fast path (``jaxloss/_core/dispatch.py``): one compilation per call signature, the
same values as the direct call, and every value check kept (replayed on concrete inputs, or the
signature left uncached)."""

from __future__ import annotations

import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss
from jaxloss._core import checks
from jaxloss._core.dispatch import eager_jit


def _counted(body):
    """``body`` wrapped by eager_jit, with a count of the times its Python runs (traces)."""
    runs = []

    def fn(*args, **kwargs):
        runs.append(1)
        return body(*args, **kwargs)

    return eager_jit(fn), runs


def test_one_trace_per_signature():
    f, runs = _counted(lambda x, *, scale=1.0: scale * jnp.sin(x))
    x = jnp.arange(4.0)
    for _ in range(4):
        np.testing.assert_allclose(f(x), jnp.sin(x), rtol=1e-6)
    assert len(runs) == 2  # the first call eagerly, the second traces; then the compiled program
    f(jnp.arange(5.0))  # new shape: eager
    f(x, scale=2.0)  # new static hyperparameter: eager
    f(x.astype(jnp.int32).astype(jnp.float16))  # new dtype: eager
    assert len(runs) == 5
    f(x, scale=2.0)  # seen before: traced once
    f(x, scale=2.0)
    assert len(runs) == 6


def test_inside_transformations_and_disable_jit_the_function_is_called_directly():
    f, runs = _counted(lambda x: jnp.sum(x**2))
    x = jnp.arange(3.0)
    g = jax.grad(f)(x)
    np.testing.assert_allclose(g, 2 * np.arange(3.0))
    jax.jit(f)(x)
    jax.vmap(f)(x[:, None])
    n = len(runs)
    with jax.disable_jit():
        f(x)
        f(x)
    assert len(runs) == n + 2


def test_registered_losses_take_the_fast_path_with_the_same_values():
    rng = np.random.default_rng(0)
    p, t = (jnp.asarray(rng.normal(size=(32,)), jnp.float32) for _ in range(2))
    for loss, kwargs in [(jaxloss.huber_loss, {"delta": 0.7}), (jaxloss.log_cosh, {})]:
        eager = loss(p, t, **kwargs)
        np.testing.assert_array_equal(
            eager, jax.jit(lambda a, b, f=loss, k=kwargs: f(a, b, **k))(p, t)
        )
    logits = jnp.asarray(rng.normal(size=(8, 5)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 5, size=8))
    np.testing.assert_array_equal(
        jaxloss.softmax_cross_entropy_with_integer_labels(logits, labels),
        jax.jit(jaxloss.softmax_cross_entropy_with_integer_labels)(logits, labels),
    )


def test_value_checks_on_inputs_are_replayed_on_every_call():
    f = eager_jit(lambda p: (checks.check_values("demo", "probabilities", p, "in [0, 1]"), p)[1])
    good = jnp.array([0.2, 0.9])
    for _ in range(2):  # the second call compiles
        np.testing.assert_array_equal(f(good), good)
    with pytest.raises(ValueError, match=r"jaxloss.demo: `probabilities`"):
        f(jnp.array([0.2, 1.5]))  # same signature: the cached program, the check replayed
    # A registered loss: probabilities out of [0, 1] after a good call with the same shapes.
    t = jnp.array([1.0, 0.0])
    jaxloss.binary_cross_entropy(good, t)
    jaxloss.binary_cross_entropy(good, t)
    with pytest.raises(ValueError, match="probabilities"):
        jaxloss.binary_cross_entropy(jnp.array([0.2, 1.5]), t)


def test_a_value_read_that_cannot_be_replayed_leaves_the_signature_uncached():
    def body(x):
        v = checks.concrete_array(x)
        if v is not None and np.any(v < 0):
            raise ValueError("negative")
        return x * 2

    f, runs = _counted(body)
    np.testing.assert_array_equal(f(jnp.ones(2)), 2 * jnp.ones(2))  # eager
    np.testing.assert_array_equal(f(jnp.ones(2)), 2 * jnp.ones(2))  # traced: uncacheable, eager
    with pytest.raises(ValueError, match="negative"):
        f(-jnp.ones(2))  # same signature, run eagerly: the check sees the values
    assert len(runs) == 4  # eager; trace (uncacheable) + eager; eager


def test_static_hyperparameters_are_checked_on_every_bad_call():
    p = jnp.zeros(3)
    for _ in range(2):
        with pytest.raises(ValueError, match="`delta` must be finite and > 0"):
            jaxloss.huber_loss(p, p, delta=-1.0)
    # and a traced hyperparameter still works (no check, as under jit)
    np.testing.assert_allclose(jaxloss.huber_loss(p + 1.0, p, delta=jnp.asarray(2.0)), 0.5)


def test_values_are_read_only_through_checks():
    """The fast path keeps a check only if it reads values through ``_core/checks.py`` (where the
    reads are seen): no module catches JAX's concretisation errors itself."""
    root = pathlib.Path(jaxloss.__file__).parent
    offenders = [
        f"{path.relative_to(root)}:{i}"
        for path in sorted(root.rglob("*.py"))
        if path.relative_to(root).as_posix() != "_core/checks.py"
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"TracerArrayConversionError|ConcretizationTypeError", line)
    ]
    assert offenders == [], offenders


def _message(call):
    """The message of the ValueError ``call()`` raises."""
    with pytest.raises(ValueError) as err:
        call()
    return str(err.value)


@pytest.mark.parametrize(
    ("loss", "good", "bad"),
    [
        # require_binary_values: targets in {-1, +1}; NaN is not one of them.
        (
            lambda t: jaxloss.hinge_loss(jnp.zeros(3), t),
            jnp.array([1.0, -1.0, 1.0]),
            [jnp.array([1.0, 0.0, 1.0]), jnp.array([1.0, jnp.nan, -1.0])],
        ),
        # check_values "in [0, 1]" on the targets (NaN allowed: it propagates).
        (
            lambda t: jaxloss.kl_divergence(jnp.full(3, -1.0), t),
            jnp.array([0.2, 0.3, 0.5]),
            [jnp.array([0.2, -0.3, 0.5]), jnp.array([0.2, jnp.inf, 0.5])],
        ),
        # require_labels_in_range with an ignore_index.
        (
            lambda y: jaxloss.softmax_cross_entropy_with_integer_labels(
                jnp.zeros((3, 4)), y, ignore_index=-100
            ),
            jnp.array([0, 3, -100]),
            [jnp.array([0, 4, -100]), jnp.array([-1, 0, 0])],
        ),
        # require_label_values: -1 or +1.
        (
            lambda t: jaxloss.perceptron_loss(jnp.zeros(3), t),
            jnp.array([1.0, -1.0, 1.0]),
            [jnp.array([1.0, 0.5, 1.0])],
        ),
    ],
)
def test_a_failing_check_in_the_compiled_program_raises_the_eager_error(loss, good, bad):
    """The checks evaluated inside the cached program: a bad input raises, on a cached
    signature, the message the uncached call raises; a good one after it still passes."""
    for b in bad:
        with jax.disable_jit():  # the function itself, op by op
            expected = _message(lambda b=b: loss(b))
        loss(good)
        loss(good)  # compiled
        assert _message(lambda b=b: loss(b)) == expected
        np.testing.assert_array_equal(loss(good), jax.jit(loss)(good))


def test_with_several_failing_checks_the_first_one_raises_as_eagerly():
    lp, t = jnp.array([-1.0, 0.5]), jnp.array([0.5, 1.5])  # both checks fail
    with jax.disable_jit():
        expected = _message(lambda: jaxloss.kl_divergence(lp, t))
    assert "log_predictions" in expected
    ok_lp, ok_t = jnp.array([-1.0, -2.0]), jnp.array([0.5, 0.5])
    jaxloss.kl_divergence(ok_lp, ok_t)
    jaxloss.kl_divergence(ok_lp, ok_t)
    assert _message(lambda: jaxloss.kl_divergence(lp, t)) == expected


def test_nan_inputs_still_propagate_on_the_cached_path():
    lp = jnp.log(jnp.array([[0.2, 0.8], [0.5, 0.5]]))
    t = jnp.array([[0.5, 0.5], [0.1, 0.9]])
    for _ in range(2):
        jaxloss.kl_divergence(lp, t)
    out = jaxloss.kl_divergence(lp, t.at[1, 0].set(jnp.nan))  # allowed: NaN in, NaN out
    assert np.isfinite(out[0]) and np.isnan(out[1])


def test_a_false_flag_runs_the_host_check_which_decides():
    """A predicate may be stricter than its check (False where the check passes): the host
    check then decides, and the call returns its value."""
    from jaxloss._core.dispatch import replayable

    calls = []

    @replayable(predicate=lambda x: jnp.zeros((), bool))
    def never_fails(x):
        calls.append(1)

    f = eager_jit(lambda x: (never_fails(x), x + 1)[1])
    x = jnp.arange(3.0)
    for _ in range(3):
        np.testing.assert_array_equal(f(x), x + 1)
    assert len(calls) == 3  # eagerly, then on each cached call (the flag says False)


_SPECIAL = np.array(
    [0.0, -0.0, 1.0, -1.0, 0.5, 1.5, -0.5, 2.0, np.nan, np.inf, -np.inf, 1e-30, -1e-30]
)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16, jnp.int32, jnp.int8])
def test_predicates_agree_with_their_checks(dtype):
    """Each check's in-program predicate is True exactly where its host check passes (never
    True where the check raises), element by element, on special values and every dtype."""
    from jaxloss._core import labels

    if jnp.issubdtype(dtype, jnp.integer):
        values = np.array([0, 1, -1, 2, 3, -100, 4, 127, -128]).astype(dtype)
    else:
        values = jnp.asarray(_SPECIAL, dtype)
    cases = [
        *[
            (checks.check_values, ("f", "x", None, cond), {"allow_nan": nan})
            for cond in (">= 0", "in [0, 1]", "<= 0")
            for nan in (False, True)
        ],
        (labels.require_binary_values, ("f", "x", None, (-1, 1)), {}),
        (labels.require_binary_values, ("f", "x", None, (0, 1)), {}),
        (labels.require_label_values, ("f", "x", None, (0, 1)), {}),
        (labels.require_label_values, ("f", "x", None, (-1, 1), -100), {}),
        (labels.require_labels_in_range, ("f", None, 4, None), {}),
        (labels.require_labels_in_range, ("f", None, 4, -100), {}),
    ]
    for check, args, kwargs in cases:
        if check is labels.require_labels_in_range and not jnp.issubdtype(dtype, jnp.integer):
            continue
        position = args.index(None)
        exact = []

        def flags(x, check=check, args=args, kwargs=kwargs, position=position, exact=exact):
            out = check.predicate(*args[:position], x, *args[position + 1 :], **kwargs)
            exact.append(out is not None)  # None: no predicate here, the host check runs
            return jnp.zeros(x.shape, bool) if out is None else jnp.broadcast_to(out, x.shape)

        flag = np.asarray(jax.jit(flags)(jnp.asarray(values)))
        for v, f in zip(np.asarray(values), flag, strict=True):
            one = jnp.asarray([v], dtype)
            try:
                check(*args[:position], one, *args[position + 1 :], **kwargs)
                passed = True
            except ValueError:
                passed = False
            assert not (f and not passed), (check.__name__, args, kwargs, v, dtype)
            if exact[0]:
                assert bool(f) == passed, (check.__name__, args, kwargs, v, dtype)


def test_concrete_inputs_inside_an_outer_jit_are_still_checked():
    """Constants closed over by someone's jit reach the cached program with a traced flag: the
    checks then run on the concrete values."""
    good, bad = jnp.array([1.0, -1.0]), jnp.array([1.0, 0.0])
    x = jnp.zeros(2)
    for _ in range(2):
        jaxloss.hinge_loss(x, good)
    np.testing.assert_array_equal(jax.jit(lambda: jaxloss.hinge_loss(x, good))(), [1.0, 1.0])
    with pytest.raises(ValueError, match="`targets` must hold only -1 and 1"):
        jax.jit(lambda: jaxloss.hinge_loss(x, bad))()


def test_large_inputs_reduce_their_flags_on_the_device(monkeypatch):
    from jaxloss._core import dispatch

    monkeypatch.setattr(dispatch, "_FLAGS_READ", 0)  # every flag array counts as large
    f = eager_jit(lambda p: (checks.check_values("demo", "p", p, "in [0, 1]"), 2 * p)[1])
    good = jnp.array([0.25, 0.5, 1.0])
    for _ in range(3):
        np.testing.assert_array_equal(f(good), 2 * good)
    with pytest.raises(ValueError, match=r"jaxloss.demo: `p` must be in \[0, 1\]; got \[1.5\]"):
        f(jnp.array([0.25, 1.5, 1.0]))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
def test_low_precision_values_are_checked_on_every_call(dtype):
    """A bad probability or weight is rejected in every floating dtype, bfloat16 included (NumPy
    does not count it as floating), on the one-off and on the cached calls alike."""
    t = jnp.asarray([0.0, 1.0], dtype)
    bad, good = jnp.asarray([0.2, 1.5], dtype), jnp.asarray([0.2, 0.5], dtype)
    for _ in range(3):  # eager, then traced for the cache, then the cached program
        with pytest.raises(ValueError, match=r"`probabilities` must be in \[0, 1\]; got \[1\.5\]"):
            jaxloss.binary_cross_entropy(bad, t)
        assert np.isfinite(np.asarray(jaxloss.binary_cross_entropy(good, t), np.float32)).all()
        with pytest.raises(ValueError, match=r"`weights` must be finite and >= 0"):
            jaxloss.mean(good, weights=jnp.asarray([1.0, -2.0], dtype))
