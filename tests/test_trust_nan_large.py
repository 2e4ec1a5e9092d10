"""NaN propagation at sizes where XLA:CPU fuses a reduction into its library kernels.

tests/test_conformance.py checks NaN propagation on small inputs. Above a few thousand elements
XLA:CPU (jax 0.10.2) hands a reduction and its elementwise producers to its YNNPACK fusion, whose
``maximum``/``minimum`` (and max-reduction) return the other operand where one is NaN: a loss
written with ``jnp.maximum`` could then turn a NaN input into a finite value only on large
inputs. Here: one NaN element in each floating input of a loss, [64, 1024] class inputs or 2^16
elementwise ones, jitted; the value it feeds must be NaN, and so must ``jaxloss.mean`` of the
values. The expected answer needs no reference: a NaN input makes what it feeds NaN.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss

N, C = 64, 1024
SIZE = N * C
ROW, COL = 5, 777  # the NaN's position in [N, C] inputs; SIZE inputs use ROW * C + COL
rng = np.random.default_rng(0)


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _log_probs():
    return np.log(_softmax(rng.standard_normal((N, C)))).astype(np.float32)


def _probs():
    return _softmax(rng.standard_normal((N, C))).astype(np.float32)


def _flat():
    return rng.standard_normal(SIZE).astype(np.float32)


def _pm1():
    return np.where(rng.random(SIZE) < 0.5, -1.0, 1.0).astype(np.float32)


def _labels():
    return rng.integers(0, C, N).astype(np.int32)


# (loss, keyword arguments, input makers, which positional inputs get the NaN, per-row value)
CASES = [
    ("kl_divergence", {}, (_log_probs, _probs), (0, 1), True),
    ("kl_divergence_with_log_targets", {}, (_log_probs, _log_probs), (0, 1), True),
    (
        "multiclass_hinge_loss",
        {},
        (lambda: rng.standard_normal((N, C)).astype(np.float32), _labels),
        (0,),
        True,
    ),
    (
        "multiclass_hinge_loss",
        {"kind": "weston_watkins"},
        (lambda: rng.standard_normal((N, C)).astype(np.float32), _labels),
        (0,),
        True,
    ),
    (
        "softmax_cross_entropy",
        {},
        (lambda: rng.standard_normal((N, C)).astype(np.float32), _probs),
        (0, 1),
        True,
    ),
    (
        "softmax_cross_entropy_with_integer_labels",
        {},
        (lambda: rng.standard_normal((N, C)).astype(np.float32), _labels),
        (0,),
        True,
    ),
    *(
        (name, kw, (lambda: rng.standard_normal((N, C)).astype(np.float32), _labels), (0,), True)
        for name, kw in (
            ("multiclass_sparsemax_loss", {}),
            ("entmax15_loss", {}),
            ("entmax_loss", {"alpha": 1.25}),
            ("entmax_loss", {"alpha": 3.0}),
            ("multiclass_perceptron_loss", {}),
        )
    ),
    ("dpo_loss", {"loss_type": "hinge"}, (_flat,) * 4, (0, 1, 2, 3), False),
    ("hinge_loss", {}, (_flat, _pm1), (0, 1), False),
    ("squared_hinge_loss", {}, (_flat, _pm1), (0, 1), False),
    ("squared_error", {}, (_flat, _flat), (0, 1), False),
    ("huber_loss", {}, (_flat, _flat), (0, 1), False),
    (
        "sigmoid_binary_cross_entropy",
        {},
        (_flat, lambda: (rng.random(SIZE) < 0.3).astype(np.float32)),
        (0, 1),
        False,
    ),
    (
        "sigmoid_focal_loss",
        {"gamma": 2.0},
        (_flat, lambda: (rng.random(SIZE) < 0.3).astype(np.float32)),
        (0, 1),
        False,
    ),
]


@pytest.mark.parametrize(
    "loss,kw,makers,nan_args,per_row",
    CASES,
    ids=[f"{c[0]}{'-' + '-'.join(map(str, c[1].values())) if c[1] else ''}" for c in CASES],
)
def test_one_nan_reaches_value_and_mean(loss, kw, makers, nan_args, per_row):
    fn = getattr(jaxloss, loss)
    base = [m() for m in makers]
    values = jax.jit(lambda *a: fn(*a, **kw))
    mean = jax.jit(lambda *a: jaxloss.mean(fn(*a, **kw)))
    assert np.isfinite(float(mean(*base)))
    for i in nan_args:
        args = [a.copy() for a in base]
        if args[i].ndim == 2:
            args[i][ROW, COL] = np.nan
        else:
            args[i][ROW * C + COL] = np.nan
        v = np.asarray(values(*args))
        where = ROW if per_row else ROW * C + COL
        assert np.isnan(v[where]), (loss, i)
        assert np.isnan(v).sum() == 1, (loss, i)  # and nothing else
        assert np.isnan(float(mean(*args))), (loss, i)


def test_nan_of_is_zero_on_numbers_and_nan_on_nan():
    from jaxloss._core.numerics import nan_of

    x = jnp.array([0.0, -0.0, 1.0, -3e38, jnp.inf, -jnp.inf, jnp.nan], jnp.float32)
    got = np.asarray(nan_of(x))
    np.testing.assert_array_equal(got[:-1], 0.0)
    assert np.isnan(got[-1])
    both = np.asarray(nan_of(x, x[::-1]))
    assert np.isnan(both[0]) and np.isnan(both[-1]) and (both[1:-1] == 0).all()
    assert float(jax.grad(lambda x: jnp.sum(nan_of(x)[:-1]))(x)[0]) == 0.0


def test_hinge_select_free_form_matches_the_select_form():
    """hinge switches to a select-free form from 2^22 elements (a speed choice, bench/): the
    same values and gradients as the select form, chunk by chunk, on specials and bad targets."""
    from jaxloss._margin import _SELECT_FREE_MIN

    n = _SELECT_FREE_MIN
    chunk = n // 4
    g = np.random.default_rng(3)
    x = (g.standard_normal(n) * 2).astype(np.float32)
    y = np.where(g.random(n) < 0.5, -1.0, 1.0).astype(np.float32)
    special_x = [np.nan, np.inf, -np.inf, 3e38, -3e38, 0.0, -0.0, 1.0, -1.0, 1e-30]
    special_y = [np.nan, np.inf, -np.inf, 0.0, 0.5, -1.0000001, 2.0, 1.0, -1.0, -0.0]
    for i, (a, b) in enumerate(zip(special_x, special_y, strict=True)):
        x[7 * i], y[7 * i + 3], x[n - 1 - 5 * i], y[n - 1 - 5 * i] = a, b, a, b
    values = jax.jit(jaxloss.hinge_loss)
    grad = jax.jit(jax.grad(lambda x, y: jnp.sum(jaxloss.hinge_loss(x, y))))
    big, big_g = np.asarray(values(x, y)), np.asarray(grad(x, y))
    for s in range(0, n, chunk):
        xs, ys = x[s : s + chunk], y[s : s + chunk]
        np.testing.assert_array_equal(big[s : s + chunk], np.asarray(values(xs, ys)))
        np.testing.assert_array_equal(big_g[s : s + chunk], np.asarray(grad(xs, ys)))
    bad = ~np.isin(y, [-1.0, 1.0])
    assert np.isnan(big[bad]).all() and np.isnan(big_g[bad]).all()
    assert np.isnan(big[np.isnan(x)]).all()
    ok = ~bad & ~np.isnan(x)
    want = np.maximum(0.0, 1.0 - y[ok].astype(np.float64) * x[ok])
    np.testing.assert_allclose(big[ok], want, rtol=1e-6)
    assert np.isnan(float(jax.jit(lambda x, y: jaxloss.mean(jaxloss.hinge_loss(x, y)))(x, y)))


@pytest.mark.parametrize(
    "loss,kw",
    [
        ("multiclass_sparsemax_loss", {}),
        ("entmax15_loss", {}),
        ("entmax_loss", {"alpha": 1.25}),
        ("entmax_loss", {"alpha": 3.0}),
        ("multiclass_perceptron_loss", {}),
    ],
    ids=["sparsemax", "entmax15", "entmax-1.25", "entmax-3", "perceptron"],
)
def test_one_nan_logit_among_many_short_rows(loss, kw):
    """Many rows of few classes (the shape where the support's max/threshold met a fused
    reduction): the NaN logit's row is NaN, value and gradient, every other row untouched."""
    fn = getattr(jaxloss, loss)
    z = rng.standard_normal((1 << 14, 4)).astype(np.float32)
    y = rng.integers(0, 4, 1 << 14).astype(np.int32)
    z[5, 2] = np.nan
    v = np.asarray(jax.jit(lambda z: fn(z, y, **kw))(z))
    assert np.isnan(v[5]) and np.isnan(v).sum() == 1
    g = np.asarray(jax.jit(jax.grad(lambda z: jaxloss.mean(fn(z, y, **kw))))(z))
    assert np.isnan(g[5]).all() and np.isfinite(np.delete(g, 5, axis=0)).all()
    assert np.isnan(float(jax.jit(lambda z: jaxloss.mean(fn(z, y, **kw)))(z)))
