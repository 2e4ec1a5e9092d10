"""Asymmetric regression losses (jaxloss/_asymmetric.py): minimisers equal the sample quantile /
expectile / LinEx certainty equivalent computed independently in NumPy; kinks; the multi-level shape
contract; LinEx overflow guard and small-argument accuracy; properties (hypothesis)."""

from __future__ import annotations

import decimal
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxloss._asymmetric import expectile_loss, linex_loss, pinball_loss, quantile_huber_loss

SETTINGS = settings(max_examples=30, deadline=None)
RNG = np.random.default_rng(4321)
SAMPLE = RNG.gamma(2.0, 1.5, size=23)  # skewed, so quantiles, expectiles and the mean differ
LEVELS = np.array([0.1, 0.3, 0.5, 0.77, 0.9])  # 23·τ is never an integer: unique quantiles


def _mean_losses(loss, y, grid, **hyper):
    """mean_i loss(c, y_i) for every c in ``grid`` (float64, one jitted vmap)."""

    @jax.jit
    def mean_loss(c):
        return jnp.mean(loss(jnp.full(y.shape, c), jnp.asarray(y), **hyper))

    return np.asarray(jax.vmap(mean_loss)(jnp.asarray(grid)))


def _grid(y, n=40001):
    return np.unique(np.concatenate([np.linspace(y.min() - 1, y.max() + 1, n), y]))


def _np_expectile(y, tau):
    """Root of tau·sum((y - e)+) = (1 - tau)·sum((e - y)+), by bisection (NumPy)."""
    lo, hi = y.min(), y.max()
    for _ in range(200):
        e = 0.5 * (lo + hi)
        g = tau * np.sum(np.maximum(y - e, 0)) - (1 - tau) * np.sum(np.maximum(e - y, 0))
        lo, hi = (e, hi) if g > 0 else (lo, e)
    return 0.5 * (lo + hi)


# --------------------------------------------------------------------------------------------
# Minimisers


@pytest.mark.parametrize("tau", LEVELS)
def test_pinball_minimiser_is_the_sample_quantile(tau):
    grid = _grid(SAMPLE)
    c = grid[np.argmin(_mean_losses(pinball_loss, SAMPLE, grid, tau=tau))]
    assert c == np.quantile(SAMPLE, tau, method="inverted_cdf")
    assert c == np.sort(SAMPLE)[int(np.ceil(len(SAMPLE) * tau)) - 1]


def test_multi_quantile_minimisers_are_the_sample_quantiles_in_one_call():
    grid = _grid(SAMPLE, n=4001)
    p = jnp.broadcast_to(jnp.asarray(grid)[:, None, None], (grid.size, SAMPLE.size, LEVELS.size))
    t = jnp.broadcast_to(jnp.asarray(SAMPLE), (grid.size, SAMPLE.size))
    values = jax.jit(lambda p, t: pinball_loss(p, t, tau=jnp.asarray(LEVELS)))(p, t)
    assert values.shape == (grid.size, SAMPLE.size, LEVELS.size)
    best = grid[np.argmin(np.asarray(values).mean(1), axis=0)]
    np.testing.assert_array_equal(best, np.quantile(SAMPLE, LEVELS, method="inverted_cdf"))


@pytest.mark.parametrize("tau", [0.1, 0.5, 0.85])
def test_expectile_minimiser_is_the_sample_expectile(tau):
    grid = _grid(SAMPLE)
    c = grid[np.argmin(_mean_losses(expectile_loss, SAMPLE, grid, tau=tau))]
    want = _np_expectile(SAMPLE, tau)
    assert abs(c - want) <= grid[1] - grid[0]
    if tau == 0.5:
        assert abs(c - SAMPLE.mean()) <= grid[1] - grid[0]


@pytest.mark.parametrize("tau", [0.2, 0.9])
def test_quantile_huber_minimiser_between_quantile_and_expectile_limits(tau):
    grid = _grid(SAMPLE)
    # delta larger than every residual: the loss is w·u²/(2δ), so the minimiser is the expectile.
    c_big = grid[np.argmin(_mean_losses(quantile_huber_loss, SAMPLE, grid, tau=tau, delta=100.0))]
    assert abs(c_big - _np_expectile(SAMPLE, tau)) <= grid[1] - grid[0]
    # delta -> 0: the pinball loss, so the quantile (within about delta).
    c_small = grid[np.argmin(_mean_losses(quantile_huber_loss, SAMPLE, grid, tau=tau,
                                          delta=1e-3))]
    assert abs(c_small - np.quantile(SAMPLE, tau, method="inverted_cdf")) <= 2e-3


@pytest.mark.parametrize("a", [1.0, -0.5, 0.3])
def test_linex_minimiser_is_the_exponential_certainty_equivalent(a):
    grid = _grid(SAMPLE)
    c = grid[np.argmin(_mean_losses(linex_loss, SAMPLE, grid, a=a))]
    want = -np.log(np.mean(np.exp(-a * SAMPLE))) / a
    assert abs(c - want) <= grid[1] - grid[0]
    assert (c < SAMPLE.mean()) == (a > 0)


# --------------------------------------------------------------------------------------------
# Special cases and kinks


def test_pinball_at_half_is_exactly_half_the_absolute_error():
    p, t = jnp.asarray(RNG.normal(size=50)), jnp.asarray(RNG.normal(size=50))
    np.testing.assert_array_equal(np.asarray(pinball_loss(p, t, tau=0.5)),
                                  0.5 * np.abs(np.asarray(p) - np.asarray(t)))


def test_expectile_at_half_is_half_the_squared_error():
    p, t = RNG.normal(size=50), RNG.normal(size=50)
    np.testing.assert_allclose(np.asarray(expectile_loss(jnp.asarray(p), jnp.asarray(t), tau=0.5)),
                               0.5 * (p - t) ** 2, rtol=1e-15, atol=0)


@pytest.mark.parametrize("tau", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_pinball_kink_gradient_is_the_subdifferential_midpoint(tau):
    x = jnp.array([-1.0, 0.0, 2.5])
    gp, gt, gtau = jax.grad(lambda p, t, s: jnp.sum(pinball_loss(p, t, tau=s)), (0, 1, 2))(
        x, x, jnp.float64(tau))
    np.testing.assert_array_equal(np.asarray(gp), 0.5 - tau)
    np.testing.assert_array_equal(np.asarray(gt), tau - 0.5)
    assert float(gtau) == 0.0


def test_pinball_values_and_slopes_on_each_side():
    t = jnp.zeros(2)
    p = jnp.array([-2.0, 2.0])  # under- then over-prediction
    np.testing.assert_allclose(np.asarray(pinball_loss(p, t, tau=0.9)), [1.8, 0.2], rtol=1e-15)
    g = jax.grad(lambda p: jnp.sum(pinball_loss(p, t, tau=0.9)))(p)
    np.testing.assert_allclose(np.asarray(g), [-0.9, 0.1], rtol=1e-15)


def test_quantile_huber_is_smooth_at_zero_and_continuous_at_delta():
    tau, delta = 0.3, 0.5
    g = jax.grad(lambda p: quantile_huber_loss(p, 0.0, tau=tau, delta=delta))
    assert float(g(0.0)) == 0.0
    # u = t - p = ±delta: both pieces give w·delta/2 and slope ∓w.
    for p, w in [(-delta, tau), (delta, 1 - tau)]:
        v = float(quantile_huber_loss(p, 0.0, tau=tau, delta=delta))
        assert v == pytest.approx(w * delta / 2, rel=1e-15)
        for side in (-1e-9, 1e-9):
            assert float(g(p + side)) == pytest.approx(np.sign(p) * w, rel=1e-6)


def test_quantile_huber_tends_to_pinball_as_delta_vanishes():
    p, t = jnp.asarray(RNG.normal(size=20)), jnp.asarray(RNG.normal(size=20))
    u = np.asarray(t - p)
    delta = 1e-6
    got = np.asarray(quantile_huber_loss(p, t, tau=0.7, delta=delta))
    np.testing.assert_allclose(got, np.maximum(0.7 * u, -0.3 * u), atol=delta)


def test_expectile_gradient_continuous_and_zero_at_the_target():
    g = jax.grad(lambda p: expectile_loss(p, 1.0, tau=0.9))
    assert float(g(1.0)) == 0.0
    assert float(g(1.0 - 1e-8)) == pytest.approx(-2 * 0.9 * 1e-8, rel=1e-6)
    assert float(g(1.0 + 1e-8)) == pytest.approx(2 * 0.1 * 1e-8, rel=1e-6)


# --------------------------------------------------------------------------------------------
# Several levels at once: the shape contract


@pytest.mark.parametrize("loss,extra", [(pinball_loss, {}), (expectile_loss, {}),
                                        (quantile_huber_loss, {"delta": 0.5})])
def test_multi_level_output_shape_values_and_target_gradient(loss, extra):
    tau = np.array([0.2, 0.5, 0.95])
    t = RNG.normal(size=(2, 3))
    p = t[..., None] + RNG.uniform(0.1, 1.0, (2, 3, 3)) * RNG.choice([-1, 1], (2, 3, 3))
    values = loss(jnp.asarray(p), jnp.asarray(t), tau=jnp.asarray(tau), **extra)
    assert values.shape == (2, 3, 3)
    u = t[..., None] - p
    w = np.where(u < 0, 1 - tau, tau)
    if loss is pinball_loss:
        want, dp = w * np.abs(u), np.where(u < 0, 1 - tau, -tau)
    elif loss is expectile_loss:
        want, dp = w * u**2, -2 * w * u
    else:
        d = extra["delta"]
        want = w * np.where(np.abs(u) <= d, 0.5 * u**2, d * (np.abs(u) - d / 2)) / d
        dp = -w * np.clip(u, -d, d) / d
    np.testing.assert_allclose(np.asarray(values), want, rtol=1e-13)
    ct = RNG.uniform(0.5, 2.0, (2, 3, 3))
    gp, gt = jax.grad(lambda a, b: jnp.sum(ct * loss(a, b, tau=jnp.asarray(tau), **extra)),
                      (0, 1))(jnp.asarray(p), jnp.asarray(t))
    np.testing.assert_allclose(np.asarray(gp), ct * dp, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(gt), -np.sum(ct * dp, -1), rtol=1e-12)


def test_multi_level_with_one_level_keeps_its_axis():
    out = pinball_loss(jnp.zeros((4, 1)), jnp.ones(4), tau=jnp.array([0.25]))
    assert out.shape == (4, 1)
    np.testing.assert_allclose(np.asarray(out), 0.25)


@pytest.mark.parametrize("p_shape,t_shape", [((4,), (4,)), ((4, 3), (4, 3)), ((4, 1), (4,)),
                                             ((3, 4), (4,))])
def test_multi_level_shape_mismatch_is_a_value_error(p_shape, t_shape):
    with pytest.raises(ValueError, match=r"jaxloss\.pinball_loss: with `tau` of shape \(3,\)"):
        pinball_loss(jnp.zeros(p_shape), jnp.zeros(t_shape), tau=jnp.array([0.1, 0.5, 0.9]))


def test_scalar_level_keeps_the_same_shape_rule():
    with pytest.raises(ValueError, match=r"must have the same shape"):
        expectile_loss(jnp.zeros((4, 1)), jnp.zeros(4), tau=0.3)


@pytest.mark.parametrize("loss", [pinball_loss, expectile_loss, quantile_huber_loss])
@pytest.mark.parametrize("tau", [-0.1, 1.5, float("nan"), [0.2, 1.2], [[0.5]]])
def test_bad_levels_are_value_errors(loss, tau):
    with pytest.raises(ValueError, match=rf"jaxloss\.{loss.__name__}: `tau` must be"):
        loss(jnp.zeros((2, 2) if np.ndim(tau) == 1 else 2), jnp.zeros(2), tau=jnp.asarray(tau))


def test_traced_levels_are_used_and_differentiable():
    p, t = jnp.array([[0.0, 1.0]]), jnp.array([0.5])

    @jax.jit
    def f(tau):
        return jnp.sum(pinball_loss(p, t, tau=tau))

    tau = jnp.array([0.2, 0.8])
    assert float(f(tau)) == pytest.approx(0.2 * 0.5 + 0.2 * 0.5)
    np.testing.assert_allclose(np.asarray(jax.grad(f)(tau)), [0.5, -0.5])


# --------------------------------------------------------------------------------------------
# LinEx: overflow guard and accuracy


def test_linex_is_finite_at_huge_arguments_in_float32():
    p = jnp.array([1e4, -1e4, 3e3, 0.0], jnp.float32)
    t = jnp.array([-1e4, 1e4, 0.0, 0.0], jnp.float32)
    for a in (1.0, -1.0, 5.0):
        v = linex_loss(p, t, a=a)
        g = jax.grad(lambda x, a=a: jnp.sum(linex_loss(x, t, a=a)))(p)
        assert np.all(np.isfinite(np.asarray(v))) and np.all(np.isfinite(np.asarray(g)))
        assert v.dtype == jnp.float32


def test_linex_linear_continuation_above_max_exponent():
    m, a = 3.0, 2.0
    r = np.array([1.0, 2.0, 10.0])  # z = 2, 4, 20
    v = np.asarray(linex_loss(jnp.asarray(r), jnp.zeros(3), a=a, max_exponent=m))
    np.testing.assert_allclose(v[0], np.exp(2.0) - 3.0, rtol=1e-14)
    for z, got in zip((4.0, 20.0), v[1:], strict=True):
        np.testing.assert_allclose(got, np.exp(m) - m - 1 + np.expm1(m) * (z - m), rtol=1e-14)
    g = jax.grad(lambda x: jnp.sum(linex_loss(x, jnp.zeros(3), a=a, max_exponent=m)))(
        jnp.asarray(r))
    np.testing.assert_allclose(np.asarray(g), a * np.expm1(np.minimum(a * r, m)), rtol=1e-14)
    # Continuous at the switch.
    lo, hi = (float(linex_loss(jnp.float64(x), 0.0, a=1.0, max_exponent=m)) for x in
              (m - 1e-9, m + 1e-9))
    assert abs(hi - lo) < 1e-7


def test_linex_huge_max_exponent_is_capped_so_gradients_never_nan_in_float32():
    p = jnp.array([0.5, 100.0, -3.0], jnp.float32)
    t = jnp.zeros(3, jnp.float32)
    v = linex_loss(p, t, max_exponent=1e4)
    g = jax.grad(lambda x: jnp.sum(linex_loss(x, t, max_exponent=1e4)))(p)
    assert not np.any(np.isnan(np.asarray(v))) and np.all(np.isfinite(np.asarray(g)))
    np.testing.assert_allclose(np.asarray(v)[[0, 2]], [np.exp(0.5) - 1.5, np.exp(-3.0) + 2.0],
                               rtol=1e-6)


def _exact_linex(z):
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        zd = decimal.Decimal(z)
        return float(zd.exp() - zd - 1)


@pytest.mark.parametrize("z", [1e-12, -3e-8, 1e-4, 0.0999, 0.1, -0.1001, 0.5, -2.0, 7.0])
def test_linex_small_argument_accuracy(z):
    got = float(linex_loss(jnp.float64(z), 0.0, a=1.0))
    assert got == pytest.approx(_exact_linex(z), rel=2e-15)


def test_linex_float32_small_argument_has_no_cancellation():
    z = np.array([1e-3, -2e-4, 5e-2], np.float32)
    got = np.asarray(linex_loss(jnp.asarray(z), jnp.zeros(3, jnp.float32), a=1.0))
    want = np.array([_exact_linex(float(x)) for x in z])
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_linex_tends_to_squared_error_as_a_vanishes():
    r = RNG.normal(size=10)
    a = 1e-5
    got = 2 / a**2 * np.asarray(linex_loss(jnp.asarray(r), jnp.zeros(10), a=a))
    np.testing.assert_allclose(got, r**2, rtol=1e-4)


@pytest.mark.parametrize("kw,msg", [({"a": 0.0}, "`a` must be finite and != 0"),
                                    ({"a": float("inf")}, "`a` must be finite and != 0"),
                                    ({"a": jnp.ones(2)}, "`a` must be a scalar"),
                                    ({"max_exponent": 0.0}, "`max_exponent` must be")])
def test_linex_bad_hyperparameters(kw, msg):
    with pytest.raises(ValueError, match=rf"jaxloss\.linex_loss: {msg}"):
        linex_loss(jnp.zeros(2), jnp.zeros(2), **kw)


def test_quantile_huber_bad_delta():
    with pytest.raises(ValueError, match=r"jaxloss\.quantile_huber_loss: `delta` must be"):
        quantile_huber_loss(jnp.zeros(2), jnp.zeros(2), delta=0.0)


# --------------------------------------------------------------------------------------------
# Properties

reals = st.floats(-50, 50, allow_nan=False)
levels = st.floats(0.0, 1.0)
LOSSES = [pinball_loss, expectile_loss, functools.partial(quantile_huber_loss, delta=0.7)]


@SETTINGS
@given(reals, reals, levels)
def test_nonnegative_zero_at_target_and_mirror_symmetric(p, t, tau):
    for loss in LOSSES:
        v = float(loss(p, t, tau=tau))
        assert v >= 0 and float(loss(t, t, tau=tau)) == 0.0
        # Mirroring the data swaps the roles of τ and 1 - τ.
        assert float(loss(-p, -t, tau=1 - tau)) == pytest.approx(v, rel=1e-12, abs=1e-12)


@SETTINGS
@given(reals, st.floats(0.01, 20), st.floats(1.01, 3.0), st.floats(0.01, 0.99))
def test_monotone_in_the_error_on_each_side(t, e, k, tau):
    for loss in LOSSES:
        for s in (-1.0, 1.0):
            assert float(loss(t + s * k * e, t, tau=tau)) > float(loss(t + s * e, t, tau=tau))
    for a in (0.7, -1.3):
        for s in (-1.0, 1.0):
            assert float(linex_loss(t + s * k * e, t, a=a)) > float(linex_loss(t + s * e, t, a=a))


@SETTINGS
@given(reals, reals, st.floats(0.05, 3.0))
def test_linex_nonnegative_and_mirror_symmetric_in_a(p, t, a):
    v = float(linex_loss(p, t, a=a))
    assert v >= 0 and float(linex_loss(t, t, a=a)) == 0.0
    assert float(linex_loss(-p, -t, a=-a)) == v
    # a > 0: over-prediction by e costs at least as much as under-prediction by e (residuals
    # given exactly: t ± e would round them to different magnitudes at tiny e).
    e = abs(p - t)
    assert float(linex_loss(e, 0.0, a=a)) >= float(linex_loss(-e, 0.0, a=a))
