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
