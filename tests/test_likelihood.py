"""Likelihood losses (jaxloss/_likelihood.py): minimisers are the sample mean / variance / mean
count; tiny and zero variances, zero counts and zero rates finite, with the straight-through clamp
gradient asserted; the Stirling term; broadcast variances; properties (hypothesis)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxloss._likelihood import (
    gaussian_nll,
    gaussian_nll_with_log_variance,
    poisson_nll,
    poisson_nll_with_rates,
)

SETTINGS = settings(max_examples=30, deadline=None)
RNG = np.random.default_rng(777)
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _argmin_mean(f, grid):
    """argmin over ``grid`` of f(c) (a jitted, vmapped scalar function)."""
    return grid[np.argmin(np.asarray(jax.jit(jax.vmap(f))(jnp.asarray(grid))))]


# --------------------------------------------------------------------------------------------
# Minimisers


def test_gaussian_minimiser_is_sample_mean_and_biased_variance():
    y = jnp.asarray(RNG.normal(1.5, 0.7, size=31))
    mean, var = float(np.mean(y)), float(np.var(y))  # np.var is the 1/n variance
    grid = np.linspace(0.0, 3.0, 30001)
    mu = _argmin_mean(lambda c: jnp.mean(gaussian_nll(jnp.full_like(y, c), y, variance=0.3)), grid)
    assert abs(mu - mean) <= grid[1] - grid[0]
    vgrid = np.linspace(0.05, 2.0, 39001)
    v = _argmin_mean(lambda c: jnp.mean(gaussian_nll(jnp.full_like(y, mean), y,
                                                     variance=jnp.full_like(y, c))), vgrid)
    assert abs(v - var) <= vgrid[1] - vgrid[0]
    s = _argmin_mean(lambda c: jnp.mean(gaussian_nll_with_log_variance(
        jnp.full_like(y, mean), y, log_variance=c)), np.log(vgrid))
    assert abs(np.exp(s) - var) <= 2 * (vgrid[1] - vgrid[0])


def test_poisson_minimisers_are_the_mean_count():
    y = jnp.asarray(RNG.poisson(3.2, size=40).astype(np.float64))
    grid = np.linspace(0.5, 8.0, 75001)
    rate = _argmin_mean(lambda c: jnp.mean(poisson_nll_with_rates(jnp.full_like(y, c), y)), grid)
    assert abs(rate - float(np.mean(y))) <= grid[1] - grid[0]
    log_rate = _argmin_mean(lambda c: jnp.mean(poisson_nll(jnp.full_like(y, c), y, full=True)),
                            np.log(grid))
    assert abs(np.exp(log_rate) - float(np.mean(y))) <= 2 * (grid[1] - grid[0])


# --------------------------------------------------------------------------------------------
# Known edge cases: tiny variances, zero counts, zero rates


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_gaussian_tiny_zero_and_negative_variances_are_finite_with_straight_through_gradient(dtype):
    eps = 1e-6
    v = jnp.asarray([0.0, 1e-30, -2.0, 1e-12, 1e-6 / 2], dtype)
    r = np.array([1.0, 0.0, 3.0, 1e4, -0.5])
    p, t = jnp.asarray(r, dtype), jnp.zeros(5, dtype)
    values = gaussian_nll(p, t, variance=v)
    e = float(jnp.asarray(eps, dtype))  # eps as the dtype holds it
    np.testing.assert_allclose(np.asarray(values, np.float64),
                               0.5 * (np.log(e) + r**2 / e), rtol=1e-6)
    gp, gt, gv = jax.jit(jax.grad(lambda a, b, c: jnp.sum(gaussian_nll(a, b, variance=c)),
                                  (0, 1, 2)))(p, t, v)
    for g in (gp, gt, gv):
        assert np.all(np.isfinite(np.asarray(g)))
    np.testing.assert_allclose(np.asarray(gp, np.float64), r / e, rtol=1e-6)
    # Straight-through: the derivative at the clamped value, passed to the variance (torch).
    np.testing.assert_allclose(np.asarray(gv, np.float64), 0.5 * (1 / e - r**2 / e**2), rtol=1e-6)


def test_gaussian_log_variance_clamp_is_straight_through_and_finite():
    s = jnp.array([-1e4, -100.0, -20.0, 0.0, 1e4], jnp.float32)
    r = np.array([2.0, 0.0, 1e4, 1.0, 1e4])
    p = jnp.asarray(r, jnp.float32)
    values = gaussian_nll_with_log_variance(p, jnp.zeros(5, jnp.float32), log_variance=s)
    sc = np.maximum(np.asarray(s, np.float64), np.log(np.float32(1e-6)))
    np.testing.assert_allclose(np.asarray(values, np.float64),
                               0.5 * (sc + r**2 * np.exp(-sc)), rtol=1e-5)
    g = jax.grad(lambda x: jnp.sum(gaussian_nll_with_log_variance(
        p, jnp.zeros(5, jnp.float32), log_variance=x)))(s)
    np.testing.assert_allclose(np.asarray(g, np.float64), 0.5 * (1 - r**2 * np.exp(-sc)),
                               rtol=1e-5)


def test_log_variance_form_equals_the_variance_form():
    p, t = RNG.normal(size=20), RNG.normal(size=20)
    v = RNG.uniform(0.01, 5.0, 20)
    for full in (False, True):
        a = gaussian_nll(jnp.asarray(p), jnp.asarray(t), variance=jnp.asarray(v), full=full)
        b = gaussian_nll_with_log_variance(jnp.asarray(p), jnp.asarray(t),
                                           log_variance=jnp.asarray(np.log(v)), full=full)
        want = 0.5 * (np.log(v) + (p - t) ** 2 / v) + (HALF_LOG_2PI if full else 0.0)
        np.testing.assert_allclose(np.asarray(a), want, rtol=1e-13)
        np.testing.assert_allclose(np.asarray(b), want, rtol=1e-13)


def test_full_adds_exactly_half_log_two_pi():
    p, t, v = jnp.array([0.3, -1.0]), jnp.array([0.0, 2.0]), jnp.array([0.5, 2.0])
    diff = gaussian_nll(p, t, variance=v, full=True) - gaussian_nll(p, t, variance=v)
    np.testing.assert_allclose(np.asarray(diff), HALF_LOG_2PI, rtol=1e-15)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_poisson_zero_counts_and_zero_rates_are_finite(dtype):
    t = jnp.zeros(4, dtype)
    log_rates = jnp.asarray([-1e4, 0.0, 20.0, -3.0], dtype)
    for full in (False, True):
        v = poisson_nll(log_rates, t, full=full)
        np.testing.assert_allclose(np.asarray(v, np.float64),
                                   np.exp(np.asarray(log_rates, np.float64)), rtol=1e-6)
        gl, gt = jax.grad(lambda a, b, full=full: jnp.sum(poisson_nll(a, b, full=full)),
                          (0, 1))(log_rates, t)
        np.testing.assert_allclose(np.asarray(gl, np.float64),
                                   np.exp(np.asarray(log_rates, np.float64)), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(gt), -np.asarray(log_rates))  # no Stirling at 0
    rates = jnp.asarray([0.0, 0.0, 1e-30, 2.0], dtype)
    counts = jnp.asarray([0.0, 3.0, 0.0, 0.0], dtype)
    v = poisson_nll_with_rates(rates, counts)
    want = np.asarray(rates, np.float64) - np.asarray(counts) * np.log(
        np.asarray(rates, np.float64) + 1e-8)
    np.testing.assert_allclose(np.asarray(v, np.float64), want, rtol=1e-5)
    assert float(v[0]) == 0.0
    gr, gc = jax.grad(lambda a, b: jnp.sum(poisson_nll_with_rates(a, b)), (0, 1))(rates, counts)
    assert np.all(np.isfinite(np.asarray(gr))) and np.all(np.isfinite(np.asarray(gc)))


def test_poisson_negative_rates_are_finite_and_pushed_back_up():
    rates = jnp.array([-5.0, -1e4])
    counts = jnp.array([2.0, 0.0])
    v = poisson_nll_with_rates(rates, counts)
    np.testing.assert_allclose(np.asarray(v), [-5.0 - 2.0 * np.log(1e-8), -1e4], rtol=1e-14)
    g = jax.grad(lambda a: jnp.sum(poisson_nll_with_rates(a, counts)))(rates)
    np.testing.assert_allclose(np.asarray(g), [1 - 2.0 / 1e-8, 1.0], rtol=1e-14)


def test_poisson_log_rate_overflow_is_inf_never_nan():
    v = poisson_nll(jnp.array([100.0], jnp.float32), jnp.array([3.0], jnp.float32))
    g = jax.grad(lambda x: jnp.sum(poisson_nll(x, jnp.array([3.0], jnp.float32))))(
        jnp.array([100.0], jnp.float32))
    assert np.isposinf(np.asarray(v)).all() and np.isposinf(np.asarray(g)).all()


# --------------------------------------------------------------------------------------------
# Stirling term (full=True), torch's convention


def test_stirling_term_values_and_target_gradient():
    t = jnp.array([0.0, 0.5, 1.0, 1.5, 5.0, 100.0])
    x = jnp.zeros(6)  # log-rate 0: the base loss is exp(0) - t·0 = 1
    term = np.asarray(poisson_nll(x, t, full=True)) - 1.0
    tn = np.asarray(t)
    want = np.where(tn > 1, tn * np.log(np.maximum(tn, 1)) - tn
                    + 0.5 * np.log(2 * np.pi * np.maximum(tn, 1)), 0.0)
    np.testing.assert_allclose(term, want, rtol=1e-14, atol=1e-15)
    assert term[:3].tolist() == [0.0, 0.0, 0.0]
    # Stirling approximates log t! with error ~ 1/(12t).
    lgamma = np.array([math.lgamma(v + 1) for v in (5.0, 100.0)])
    np.testing.assert_allclose(term[4:], lgamma, atol=1 / (12 * 5.0) + 1e-3)
    gt = jax.grad(lambda b: jnp.sum(poisson_nll(x, b, full=True)))(t)
    np.testing.assert_allclose(np.asarray(gt), np.where(tn > 1, np.log(np.maximum(tn, 1))
                                                        + 0.5 / np.maximum(tn, 1), 0.0),
                               rtol=1e-14)


def test_rate_and_log_rate_forms_agree():
    t = jnp.asarray(RNG.poisson(2.0, 30).astype(np.float64))
    rate = jnp.asarray(RNG.uniform(0.1, 6.0, 30))
    for full in (False, True):
        a = poisson_nll(jnp.log(rate), t, full=full)
        b = poisson_nll_with_rates(rate, t, full=full, eps=1e-300)
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------------------------
# Shapes, broadcast variances, validation


def test_shared_variance_broadcasts_and_gets_the_summed_gradient():
    p, t = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3))
    v = RNG.uniform(0.5, 2.0, (4, 1))
    values = gaussian_nll(jnp.asarray(p), jnp.asarray(t), variance=jnp.asarray(v))
    assert values.shape == (4, 3)
    np.testing.assert_allclose(np.asarray(values), 0.5 * (np.log(v) + (p - t) ** 2 / v),
                               rtol=1e-13)
    gv = jax.grad(lambda c: jnp.sum(gaussian_nll(jnp.asarray(p), jnp.asarray(t), variance=c)))(
        jnp.asarray(v))
    np.testing.assert_allclose(np.asarray(gv),
                               np.sum(0.5 * (1 / v - (p - t) ** 2 / v**2), -1, keepdims=True),
                               rtol=1e-12)
    scalar = gaussian_nll(jnp.asarray(p), jnp.asarray(t), variance=2.0)
    np.testing.assert_allclose(np.asarray(scalar), 0.5 * (np.log(2.0) + (p - t) ** 2 / 2.0),
                               rtol=1e-13)


@pytest.mark.parametrize("fn,name", [(gaussian_nll, "variance"),
                                     (gaussian_nll_with_log_variance, "log_variance")])
def test_variance_that_would_grow_the_output_is_a_value_error(fn, name):
    with pytest.raises(ValueError, match=rf"jaxloss\.{fn.__name__}: `{name}` must broadcast"):
        fn(jnp.zeros((4, 1)), jnp.zeros((4, 1)), **{name: jnp.ones(4)})


def test_variance_is_keyword_only_and_required():
    with pytest.raises(TypeError):
        gaussian_nll(jnp.zeros(2), jnp.zeros(2), jnp.ones(2))
    with pytest.raises(TypeError):
        gaussian_nll(jnp.zeros(2), jnp.zeros(2))


@pytest.mark.parametrize("call,msg", [
    (lambda: gaussian_nll(jnp.zeros(2), jnp.zeros(2), variance=jnp.ones(2), eps=0.0),
     r"jaxloss\.gaussian_nll: `eps` must be"),
    (lambda: poisson_nll_with_rates(jnp.zeros(2), jnp.zeros(2), eps=-1.0),
     r"jaxloss\.poisson_nll_with_rates: `eps` must be"),
])
def test_bad_eps_is_a_value_error(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()


@pytest.mark.parametrize("call", [
    lambda: gaussian_nll(jnp.zeros(2), jnp.zeros(2), variance=jnp.ones(2), full=1),
    lambda: poisson_nll(jnp.zeros(2), jnp.zeros(2), full="yes"),
])
def test_full_must_be_a_bool(call):
    with pytest.raises(TypeError, match=r"`full` must be a bool"):
        call()


def test_integer_variance_and_counts_are_accepted():
    v = gaussian_nll(jnp.zeros(2), jnp.zeros(2), variance=jnp.array([1, 2]))
    np.testing.assert_allclose(np.asarray(v), 0.5 * np.log([1.0, 2.0]), rtol=1e-14)
    c = poisson_nll(jnp.zeros(2), jnp.array([0, 3]))
    np.testing.assert_allclose(np.asarray(c), [1.0, 1.0])


# --------------------------------------------------------------------------------------------
# Properties

reals = st.floats(-30, 30, allow_nan=False)
variances = st.floats(1e-3, 1e3)
counts = st.floats(0.0, 1e3)


@SETTINGS
@given(reals, reals, variances)
def test_gaussian_best_variance_is_the_squared_residual(p, t, v):
    r2 = (p - t) ** 2
    best = max(r2, 1e-6)
    assert float(gaussian_nll(p, t, variance=best)) <= float(gaussian_nll(p, t, variance=v)) + 1e-12
    # ... and the loss grows with |p - t| at fixed variance.
    if abs(p - t) > 1e-6:
        assert float(gaussian_nll(t + 2 * (p - t), t, variance=v)) > float(
            gaussian_nll(p, t, variance=v))


@SETTINGS
@given(reals, counts)
def test_poisson_best_log_rate_is_log_count(x, t):
    # e^x - t·x >= t - t·log t (with 0·log 0 = 0), equality at x = log t.
    floor = t - (t * math.log(t) if t > 0 else 0.0)
    v = float(poisson_nll(x, t))
    assert v >= floor - 1e-9 * max(1.0, abs(floor))
    if t > 0:
        assert float(poisson_nll(math.log(t), t)) == pytest.approx(floor, rel=1e-12, abs=1e-12)
        assert float(poisson_nll_with_rates(t, t, eps=1e-300)) == pytest.approx(floor, rel=1e-12,
                                                                               abs=1e-12)
