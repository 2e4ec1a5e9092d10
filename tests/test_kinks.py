"""Values and gradients exactly at the kinks of the core losses, asserted directly.

The conformance suite samples smooth points; the conventions at kinks are promised in the
docstrings and checked here, in float64.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss


def _grad_p(loss, p, t, **kw):
    return np.asarray(jax.grad(lambda p_: jnp.sum(loss(p_, jnp.asarray(t), **kw)))(jnp.asarray(p)))


@pytest.mark.parametrize(
    "loss, kw",
    [
        (jaxloss.absolute_error, {}),
        (jaxloss.huber_loss, {"delta": 0.7}),
        (jaxloss.smooth_l1_loss, {"beta": 0.5}),
        (jaxloss.smooth_l1_loss, {"beta": 0.0}),
        (jaxloss.squared_error, {}),
        (jaxloss.log_cosh, {}),
    ],
    ids=["absolute_error", "huber_loss", "smooth_l1_loss", "smooth_l1_loss-beta0", "squared_error",
         "log_cosh"],
)
def test_zero_residual_has_zero_value_and_zero_gradient(loss, kw):
    t = np.array([-3.0, 0.0, 2.5])
    np.testing.assert_array_equal(np.asarray(loss(jnp.asarray(t), jnp.asarray(t), **kw)), 0.0)
    np.testing.assert_array_equal(_grad_p(loss, t, t, **kw), 0.0)
    # Gradient w.r.t. the targets too.
    g_t = jax.grad(lambda t_: jnp.sum(loss(jnp.asarray(t), t_, **kw)))(jnp.asarray(t))
    np.testing.assert_array_equal(np.asarray(g_t), 0.0)


def test_huber_at_the_threshold():
    delta = 0.7
    r = np.array([-delta, delta])
    np.testing.assert_allclose(jaxloss.huber_loss(r, np.zeros(2), delta=delta), 0.5 * delta**2,
                               rtol=1e-15)
    np.testing.assert_allclose(_grad_p(jaxloss.huber_loss, r, np.zeros(2), delta=delta),
                               [-delta, delta], rtol=1e-15)
    g_delta = jax.grad(
        lambda d: jnp.sum(jaxloss.huber_loss(jnp.asarray(r), jnp.zeros(2), delta=d)))(delta)
    assert float(g_delta) == 0.0  # d/dδ of δ(|r| - δ/2) at |r| = δ is |r| - δ = 0


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
def test_huber_delta_beyond_the_float32_range_is_quadratic():
    # δ = 1e300 passes the check and is inf in float32, as is a traced δ = inf: every residual
    # is then on the quadratic side, r²/2 with gradient r and dl/dδ = 0 (not inf·0 = NaN).
    r = np.array([0.5, -3.0, 1e19], np.float32)
    r64 = r.astype(np.float64)

    def value_and_grads(p, d):
        v = jaxloss.huber_loss(p, jnp.zeros_like(p), delta=d)
        g_p, g_d = jax.grad(lambda p, d: jnp.sum(jaxloss.huber_loss(p, jnp.zeros_like(p),
                                                                      delta=d)), (0, 1))(p, d)
        return v, g_p, g_d

    v, g_p, _ = value_and_grads(jnp.asarray(r), 1e300)
    np.testing.assert_allclose(v, 0.5 * r64**2, rtol=1e-6)
    np.testing.assert_array_equal(g_p, r)
    v, g_p, g_d = jax.jit(value_and_grads)(jnp.asarray(r), jnp.float32(np.inf))
    np.testing.assert_allclose(v, 0.5 * r64**2, rtol=1e-6)
    np.testing.assert_array_equal(g_p, r)
    assert float(g_d) == 0.0


def test_smooth_l1_at_the_threshold():
    beta = 0.5
    r = np.array([-beta, beta])
    np.testing.assert_allclose(jaxloss.smooth_l1_loss(r, np.zeros(2), beta=beta), beta / 2,
                               rtol=1e-15)
    np.testing.assert_allclose(_grad_p(jaxloss.smooth_l1_loss, r, np.zeros(2), beta=beta), [-1, 1],
                               rtol=1e-15)


def test_binary_cross_entropy_at_the_clamp():
    p = np.array([0.0, 0.0, 1.0, 1.0])
    t = np.array([0.0, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(np.asarray(jaxloss.binary_cross_entropy(p, t)),
                                  [0.0, 100.0, 100.0, 0.0])
    # Unclamped logs keep their true derivative; a clamped log contributes 0.
    # p=0,t=0: d/dp -log(1-p) = 1.  p=0,t=1: clamped -> 0.  p=1,t=0: clamped -> 0.
    # p=1,t=1: d/dp -log(p) = -1.
    np.testing.assert_array_equal(_grad_p(jaxloss.binary_cross_entropy, p, t), [1, 0, 0, -1])


def test_sigmoid_bce_is_log2_and_half_gradient_at_zero_logit():
    v = jaxloss.sigmoid_binary_cross_entropy(jnp.zeros(2), jnp.array([0.0, 1.0]))
    np.testing.assert_allclose(v, np.log(2.0), rtol=1e-15)
    np.testing.assert_allclose(
        _grad_p(jaxloss.sigmoid_binary_cross_entropy, np.zeros(2), np.array([0.0, 1.0])),
        [0.5, -0.5], rtol=1e-15)


def test_kl_gradient_conventions_at_zero_targets():
    lp = np.log(np.array([0.25, 0.75]))
    t = np.array([0.0, 1.0])
    g_t = jax.grad(lambda t_: jaxloss.kl_divergence(jnp.asarray(lp), t_))(jnp.asarray(t))
    # t log t contributes 0 at t = 0 (convention); -t·lp contributes -lp.
    np.testing.assert_allclose(g_t, [-lp[0], np.log(1.0) + 1 - lp[1]], rtol=1e-15)
    g_lp = jax.grad(lambda l: jaxloss.kl_divergence(l, jnp.asarray(t)))(jnp.asarray(lp))
    np.testing.assert_allclose(g_lp, -t, rtol=1e-15)
