"""Relative-error losses (jaxloss/_relative.py): the statistic each one's minimiser favours, checked
against an independent NumPy computation; zero targets and zero denominators finite; kink and clamp
gradients; properties (hypothesis); the stated equivalences with keras and the combinators."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxloss
from jaxloss._relative import (
    absolute_percentage_error,
    log_ratio_error,
    squared_logarithmic_error,
    symmetric_absolute_percentage_error,
)

SETTINGS = settings(max_examples=30, deadline=None)
RNG = np.random.default_rng(20240)
SAMPLE = RNG.lognormal(0.0, 0.8, size=25)  # positive, skewed: the statistics differ visibly


def _grid_minimiser(loss, y, grid, **hyper):
    """argmin over constant predictions c of mean_i loss(c, y_i), evaluated on ``grid``."""

    @jax.jit
    def mean_loss(c):
        return jnp.mean(loss(jnp.full(y.shape, c), jnp.asarray(y), **hyper))

    values = np.asarray(jax.vmap(mean_loss)(jnp.asarray(grid)))
    return grid[np.argmin(values)]


def _weighted_median(y, w):
    """A minimiser of sum_i w_i |c - y_i| (NumPy): the first sorted y at half the total weight."""
    order = np.argsort(y)
    cw = np.cumsum(w[order])
    return y[order][np.searchsorted(cw, 0.5 * cw[-1])]


def _grid_with_samples(y, lo, hi, n=20001):
    return np.unique(np.concatenate([np.linspace(lo, hi, n), y]))


# --------------------------------------------------------------------------------------------
# Minimisers: the statistic each docstring names


def test_mape_minimiser_is_the_inverse_weighted_median_below_the_median():
    grid = _grid_with_samples(SAMPLE, 0.01, 5.0)
    c = _grid_minimiser(absolute_percentage_error, SAMPLE, grid)
    want = _weighted_median(SAMPLE, 1.0 / SAMPLE)
    assert c == want  # piecewise linear: the minimum sits at a sample, which is on the grid
    assert c < np.median(SAMPLE)


def test_smape_minimiser_is_its_fixed_point_weighted_median():
    grid = _grid_with_samples(SAMPLE, 0.01, 5.0)
    c = _grid_minimiser(symmetric_absolute_percentage_error, SAMPLE, grid, eps=0.0)
    fixed_point = _weighted_median(SAMPLE, SAMPLE / (c + SAMPLE) ** 2)
    assert abs(fixed_point - c) < 1e-3
    mape_c = _grid_minimiser(absolute_percentage_error, SAMPLE, grid)
    assert c > mape_c
    assert abs(c - np.median(SAMPLE)) < 0.25 * np.median(SAMPLE)


def test_msle_minimiser_is_the_geometric_mean_of_one_plus_y_minus_one():
    grid = np.linspace(0.01, 5.0, 20001)
    c = _grid_minimiser(squared_logarithmic_error, SAMPLE, grid)
    want = np.exp(np.mean(np.log(1.0 + SAMPLE))) - 1.0
    assert abs(c - want) <= grid[1] - grid[0]
    assert c < np.mean(SAMPLE)


def test_log_ratio_minimisers_are_geometric_mean_and_median():
    grid = _grid_with_samples(SAMPLE, 0.01, 5.0)
    c_sq = _grid_minimiser(log_ratio_error, SAMPLE, grid)
    assert abs(c_sq - np.exp(np.mean(np.log(SAMPLE)))) <= 5.0 / 20000
    c_abs = _grid_minimiser(log_ratio_error, SAMPLE, grid, squared=False)
    assert c_abs == np.median(SAMPLE)  # 25 samples: the middle one


# --------------------------------------------------------------------------------------------
# Zero targets and zero denominators (known-bug class: NaN/inf at 0)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_mape_zero_targets_finite_with_eps_scale(dtype):
    p = jnp.asarray([0.0, 2.0, -3.0, 1e4], dtype)
    t = jnp.zeros(4, dtype)
    values = absolute_percentage_error(p, t)
    np.testing.assert_allclose(np.asarray(values, np.float64),
                               np.abs(np.asarray(p, np.float64)) / 1e-7, rtol=1e-6)
    gp, gt = jax.jit(jax.grad(lambda a, b: jnp.sum(absolute_percentage_error(a, b)), (0, 1)))(
        p, t)
    assert np.all(np.isfinite(gp)) and np.all(np.isfinite(gt))
    np.testing.assert_allclose(np.asarray(gp, np.float64), np.sign(np.asarray(p)) / 1e-7,
                               rtol=1e-6)
    np.testing.assert_allclose(np.asarray(gt, np.float64), -np.sign(np.asarray(p)) / 1e-7,
                               rtol=1e-6)


@pytest.mark.parametrize("eps", [1e-7, 0.0])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_smape_at_zero_zero_is_zero_with_zero_gradient(eps, dtype):
    z = jnp.zeros(3, dtype)
    assert np.all(np.asarray(jax.jit(symmetric_absolute_percentage_error)(z, z, eps=eps)) == 0)
    gp, gt = jax.jit(jax.grad(
        lambda a, b: jnp.sum(symmetric_absolute_percentage_error(a, b, eps=eps)), (0, 1)))(z, z)
    assert np.all(np.asarray(gp) == 0) and np.all(np.asarray(gt) == 0)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_smape_eps0_tiny_inputs_have_exact_finite_gradients(dtype):
    p, t = 1e-30, 3e-30
    got = jax.jit(jax.grad(functools.partial(symmetric_absolute_percentage_error, eps=0.0),
                           (0, 1)))(jnp.asarray(p, dtype), jnp.asarray(t, dtype))
    want = (-4 * t / (p + t) ** 2, 4 * p / (p + t) ** 2)  # 0 < p < t
    np.testing.assert_allclose([float(g) for g in got], want, rtol=1e-5)
    v = symmetric_absolute_percentage_error(jnp.asarray(1e-30, dtype), jnp.asarray(0.0, dtype),
                                            eps=0.0)
    assert float(v) == 2.0


def test_smape_textbook_gradient_under_forecasts_weigh_more():
    t = 2.0
    g_under = float(jax.grad(symmetric_absolute_percentage_error)(1.0, t, eps=0.0))
    g_over = float(jax.grad(symmetric_absolute_percentage_error)(3.0, t, eps=0.0))
    np.testing.assert_allclose([g_under, g_over], [-4 * t / 9.0, 4 * t / 25.0], rtol=1e-12)
    assert abs(g_under) > abs(g_over)


# --------------------------------------------------------------------------------------------
# Kinks and clamps


@pytest.mark.parametrize("fn", [absolute_percentage_error, symmetric_absolute_percentage_error,
                                functools.partial(log_ratio_error, squared=False)],
                         ids=["ape", "smape", "abs-log-ratio"])
def test_kink_gradients_are_zero_at_the_target(fn):
    x = jnp.array([0.5, 2.0, 3.0])
    gp, gt = jax.grad(lambda a, b: jnp.sum(fn(a, b)), (0, 1))(x, x)
    np.testing.assert_array_equal(np.asarray(gp), 0.0)
    np.testing.assert_array_equal(np.asarray(gt), 0.0)


def test_mape_target_clamp_branch():
    # |t| < eps: the scale is eps and d/dt = -sign(p - t)/eps.
    p, t = 1.0, 0.2
    assert float(absolute_percentage_error(p, t, eps=0.5)) == pytest.approx(0.8 / 0.5, rel=1e-15)
    assert float(jax.grad(absolute_percentage_error, 1)(p, t, eps=0.5)) == pytest.approx(-2.0)


def test_msle_clamps_below_minus_one_with_zero_gradient():
    p = jnp.array([-1.0, -5.0, -1e4], jnp.float32)
    t = jnp.array([1.0, 2.0, 0.0], jnp.float32)
    values = squared_logarithmic_error(p, t)
    # Clamped at -1 + ε exactly: log1p(-1 + ε) = log ε, although -1 + 1e-7 is not a float32
    # (it rounds to -1 + 1.19e-7, whose log1p is 19 % off in 1 + x).
    want = (np.log(1e-7) - np.log1p(np.asarray(t, np.float64))) ** 2
    np.testing.assert_allclose(np.asarray(values), want, rtol=1e-5)
    g = jax.grad(lambda a: jnp.sum(squared_logarithmic_error(a, t)))(p)
    np.testing.assert_array_equal(np.asarray(g), 0.0)
    # Inside (-1, 0) the loss is exact (keras would treat these as 0).
    v = float(squared_logarithmic_error(jnp.float64(-0.5), jnp.float64(0.0)))
    assert v == pytest.approx(np.log(0.5) ** 2, rel=1e-14)


def test_log_ratio_clamps_non_positive_inputs_with_zero_gradient():
    p = jnp.array([0.0, -3.0, 1e-30])
    t = jnp.array([1.0, 1.0, 1.0])
    np.testing.assert_allclose(np.asarray(log_ratio_error(p, t)), np.log(1e-7) ** 2, rtol=1e-14)
    g = jax.grad(lambda a: jnp.sum(log_ratio_error(a, t)))(p)
    np.testing.assert_array_equal(np.asarray(g), 0.0)


# --------------------------------------------------------------------------------------------
# Properties

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
positive = st.floats(1e-3, 1e3, allow_nan=False, allow_infinity=False)
scales = st.floats(1e-2, 1e2)


@SETTINGS
@given(finite, finite)
def test_nonnegative_and_zero_at_target(p, t):
    for fn in (absolute_percentage_error, symmetric_absolute_percentage_error):
        assert float(fn(p, t)) >= 0
        assert float(fn(t, t)) == 0.0
    assert float(symmetric_absolute_percentage_error(p, t)) <= 2.0
    q, s = abs(p) + 1.0, abs(t) + 1.0
    for fn in (squared_logarithmic_error, log_ratio_error):
        assert float(fn(q, s)) >= 0 and float(fn(s, s)) == 0.0


@SETTINGS
@given(finite, finite)
def test_smape_is_symmetric_in_its_arguments(p, t):
    assert float(symmetric_absolute_percentage_error(p, t)) == pytest.approx(
        float(symmetric_absolute_percentage_error(t, p)), rel=1e-14, abs=0)


@SETTINGS
@given(finite, positive, scales)
def test_percentage_errors_are_scale_invariant(p, t, k):
    # MAPE (for |t| above eps) and sMAPE with eps = 0 do not change when both sides are scaled.
    a = float(absolute_percentage_error(p, t))
    assert float(absolute_percentage_error(k * p, k * t)) == pytest.approx(a, rel=1e-12)
    b = float(symmetric_absolute_percentage_error(p, t, eps=0.0))
    assert float(symmetric_absolute_percentage_error(k * p, k * t, eps=0.0)) == pytest.approx(
        b, rel=1e-12)


@SETTINGS
@given(positive, st.floats(1.01, 100.0), scales)
def test_log_ratio_costs_a_factor_the_same_both_ways_and_is_scale_invariant(t, k, s):
    for squared in (True, False):
        up = float(log_ratio_error(k * t, t, squared=squared))
        down = float(log_ratio_error(t / k, t, squared=squared))
        assert up == pytest.approx(down, rel=1e-10)
        assert up == pytest.approx(np.log(k) ** (2 if squared else 1), rel=1e-10)
        assert float(log_ratio_error(s * k * t, s * t, squared=squared)) == pytest.approx(
            up, rel=1e-10)


@SETTINGS
@given(positive, st.floats(0.01, 10.0), st.floats(1.01, 3.0))
def test_monotone_in_the_error_on_each_side(t, e, k):
    for fn in (absolute_percentage_error, squared_logarithmic_error, log_ratio_error,
               symmetric_absolute_percentage_error):
        assert float(fn(t + k * e, t)) > float(fn(t + e, t))
        low, lower = t - e * t / (e + 1), t - k * e * t / (k * e + 1)  # stay positive
        assert float(fn(lower, t)) > float(fn(low, t))


def test_msle_under_prediction_costs_more_than_over_prediction():
    t = 3.0
    assert float(squared_logarithmic_error(t - 2.0, t)) > float(squared_logarithmic_error(t + 2.0,
                                                                                         t))


# --------------------------------------------------------------------------------------------
# Equivalences stated in the docstrings


def test_mape_times_100_is_keras_and_msle_matches_keras_on_non_negative_inputs():
    p = RNG.uniform(0.0, 5.0, 50)
    t = np.concatenate([[0.0, 1e-9], RNG.uniform(-5.0, 5.0, 48)])
    keras_mape = 100 * np.mean(np.abs((t - p) / np.maximum(np.abs(t), 1e-7)))
    got = 100 * float(jaxloss.mean(absolute_percentage_error(jnp.asarray(p), jnp.asarray(t))))
    assert got == pytest.approx(keras_mape, rel=1e-12)
    t = np.abs(t)
    keras_msle = np.mean((np.log(np.maximum(p, 1e-7) + 1) - np.log(np.maximum(t, 1e-7) + 1)) ** 2)
    got = float(jaxloss.mean(squared_logarithmic_error(jnp.asarray(p), jnp.asarray(t))))
    assert got == pytest.approx(keras_msle, rel=1e-5)


def test_same_as_the_log_space_combinator_on_valid_inputs():
    p, t = jnp.asarray(RNG.uniform(-0.9, 5.0, 20)), jnp.asarray(RNG.uniform(-0.9, 5.0, 20))
    np.testing.assert_allclose(squared_logarithmic_error(p, t),
                               jaxloss.log_space(jaxloss.squared_error)(p, t), rtol=1e-10,
                               atol=1e-14)
    p, t = p + 1.0, t + 1.0
    np.testing.assert_allclose(log_ratio_error(p, t),
                               jaxloss.log_space(jaxloss.squared_error, offset=0.0)(p, t),
                               rtol=1e-10, atol=1e-14)


# --------------------------------------------------------------------------------------------
# Validation and traced hyperparameters


@pytest.mark.parametrize("fn,bad", [
    (absolute_percentage_error, 0.0), (absolute_percentage_error, -1.0),
    (symmetric_absolute_percentage_error, -1e-9), (squared_logarithmic_error, 0.0),
    (log_ratio_error, float("nan")),
])
def test_bad_eps_is_a_value_error_naming_the_function(fn, bad):
    with pytest.raises(ValueError, match=rf"jaxloss\.{fn.__name__}: `eps` must be"):
        fn(jnp.ones(2), jnp.ones(2), eps=bad)


def test_squared_must_be_a_bool():
    with pytest.raises(TypeError, match=r"jaxloss\.log_ratio_error: `squared` must be a bool"):
        log_ratio_error(jnp.ones(2), jnp.ones(2), squared=1)


def test_traced_eps_is_used_as_given():
    f = jax.jit(lambda e: absolute_percentage_error(jnp.array([1.0]), jnp.array([0.0]), eps=e))
    assert float(f(0.25)[0]) == pytest.approx(4.0)
