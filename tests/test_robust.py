"""The robust and small-error families (jaxloss/_robust.py, _wing.py, _barron.py, _adaptive.py
and their numerics in jaxloss/_core/residual.py and _core/barron.py): kinks, properties,
special cases and limits, Barron's singular shapes, the log-partition quadrature and the
adaptive (learned α, c) wrapper.

References are independent of the code under test: closed forms written here, and a dense NumPy
quadrature in float64 on a different substitution (x = e^u) from the library's exp-sinh rule.
The conformance suite (tests/cases/robust.py, wing.py, barron.py) covers values, gradients,
jit/vmap, extremes and dtypes at smooth points; this file covers what it cannot sample.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxloss
from jaxloss._core.barron import log_partition, rho
from jaxloss._core.residual import log1p_z2_over
from tests.cases.barron import _drho, log_partition_reference

F64 = jnp.float64


def a64(x):
    return jnp.asarray(x, F64)


@functools.cache
def _vg(loss, kw_items):
    kw = dict(kw_items)

    def f(p, t):
        v = loss(p, t, **kw)
        gp, gt = jax.grad(lambda p, t: jnp.sum(loss(p, t, **kw)), (0, 1))(p, t)
        return v, gp, gt

    return jax.jit(f)


def vg(loss, p, t, **kw):
    """(value, dl/dp, dl/dt) in float64, through one compiled function per (loss, kw)."""
    v, gp, gt = _vg(loss, tuple(sorted(kw.items())))(a64(p), a64(t))
    return np.asarray(v), np.asarray(gp), np.asarray(gt)


def grad_p(loss, p, t, **kw):
    return vg(loss, p, t, **kw)[1]


def grad_t(loss, p, t, **kw):
    return vg(loss, p, t, **kw)[2]


@jax.jit
def barron_vg(x, a, c):
    """Barron's ρ and its gradients w.r.t. x (elementwise), α and c (of the sum)."""

    def total(x, a, c):
        return jnp.sum(jaxloss.barron_loss(x, jnp.zeros_like(x), alpha=a, scale=c))

    gx, ga, gc = jax.grad(total, (0, 1, 2))(x, a, c)
    return jaxloss.barron_loss(x, jnp.zeros_like(x), alpha=a, scale=c), gx, ga, gc


# ----------------------------------------------------------------------------------------------
# Kinks and branch boundaries, asserted directly


def test_wing_kinks():
    w, e = 10.0, 2.0
    c = w - w * math.log1p(w / e)
    p = np.array([0.0, w, -w, w * (1 - 1e-12), 12.0])
    val = np.asarray(jaxloss.wing_loss(a64(p), a64(np.zeros(5))))
    np.testing.assert_allclose(val, [0.0, w - c, w - c, w * math.log1p(w / e), 12.0 - c],
                               rtol=1e-10)
    # Continuous at |r| = ω: ω log(1 + ω/ε) = ω - C.
    assert math.isclose(w * math.log1p(w / e), w - c, rel_tol=1e-14)
    g = grad_p(jaxloss.wing_loss, p, np.zeros(5))
    # 0 at r = 0 (subgradient), the linear side at |r| = ω, ω/(ε + |r|) just inside.
    np.testing.assert_allclose(g, [0.0, 1.0, -1.0, w / (e + w), 1.0], rtol=1e-9)
    # Small errors get larger gradients than L1 (slope ω/ε = 5 near 0).
    assert grad_p(jaxloss.wing_loss, [1e-6], [0.0])[0] == pytest.approx(w / e, rel=1e-6)


def test_adaptive_wing_at_zero_and_tiny_residuals():
    """δ = 0: value 0, both gradients 0 (the exponent's log(δ) must not leak a NaN into the
    target gradient); tiny δ: finite, and flat like δ^(e-1) for e > 1."""
    t = np.array([0.0, 0.3, 1.0, 0.5])
    for d in (0.0, 1e-300, 1e-30):
        p = t + d
        v = np.asarray(jaxloss.adaptive_wing_loss(a64(p), a64(t)))
        gp, gt = grad_p(jaxloss.adaptive_wing_loss, p, t), grad_t(jaxloss.adaptive_wing_loss, p, t)
        assert np.all(np.isfinite(v)) and np.all(np.isfinite(gp)) and np.all(np.isfinite(gt))
        assert np.all(np.abs(gp) < 1e-20) and np.all(np.abs(gt) < 1e-20)
        if d == 0.0:
            assert np.all(v == 0) and np.all(gp == 0) and np.all(gt == 0)


def test_adaptive_wing_is_c1_at_theta():
    theta = 0.5
    t = np.array([0.0, 0.4, 1.0])
    for sgn in (1.0, -1.0):
        lo = t + sgn * theta * (1 - 1e-9)
        hi = t + sgn * theta * (1 + 1e-9)
        at = t + sgn * theta
        v = [np.asarray(jaxloss.adaptive_wing_loss(a64(x), a64(t))) for x in (lo, at, hi)]
        np.testing.assert_allclose(v[0], v[1], rtol=1e-7)
        np.testing.assert_allclose(v[2], v[1], rtol=1e-7)
        for g in (grad_p, grad_t):
            gl, gh = g(jaxloss.adaptive_wing_loss, lo, t), g(jaxloss.adaptive_wing_loss, hi, t)
            np.testing.assert_allclose(gl, gh, rtol=1e-6)


def test_adaptive_wing_shape_follows_the_target():
    """Background (y = 0, exponent 2.1): flat at 0 like L2. Foreground (y = 1, exponent 1.1):
    steep for small errors, like Wing. Slope inside: ω e δ^(e-1)/ε^e / (1 + (δ/ε)^e), ε = 1."""
    d = 1e-3
    g = grad_p(jaxloss.adaptive_wing_loss, [d, 1 + d], [0.0, 1.0])
    for gi, e in zip(g, (2.1, 1.1), strict=True):
        assert gi == pytest.approx(14 * e * d ** (e - 1) / (1 + d**e), rel=1e-9)
    assert g[1] > 100 * g[0]


def test_charbonnier_at_zero_and_far_out():
    p = np.array([0.0, 1e-8, 1e8])
    v = np.asarray(jaxloss.charbonnier_loss(a64(p), a64(np.zeros(3)), delta=0.5))
    assert v[0] == 0.0
    assert v[1] == pytest.approx(0.5e-16, rel=1e-12)  # r²/2, no cancellation
    assert v[2] == pytest.approx(0.5 * 1e8 - 0.25, rel=1e-12)  # δ|r| - δ²
    g = grad_p(jaxloss.charbonnier_loss, p, np.zeros(3), delta=0.5)
    np.testing.assert_allclose(g, [0.0, 1e-8, 0.5], rtol=1e-12)


def test_tukey_is_constant_beyond_c_and_c1_at_c():
    c = 2.0
    p = np.array([c, -c, c * (1 - 1e-3), 3 * c, 1e30])
    v = np.asarray(jaxloss.tukey_biweight_loss(a64(p), a64(np.zeros(5)), scale=c))
    np.testing.assert_allclose(v[[0, 1, 3, 4]], c**2 / 6, rtol=1e-15)
    assert v[2] < c**2 / 6
    g = grad_p(jaxloss.tukey_biweight_loss, p, np.zeros(5), scale=c)
    r = p[2]
    np.testing.assert_allclose(g, [0.0, 0.0, r * (1 - (r / c) ** 2) ** 2, 0.0, 0.0],
                               rtol=1e-9, atol=1e-15)


def test_geman_mcclure_branches_meet():
    """The value switches from 2u/(u+4) to 2 - 8/(u+4) at u = 4 (|r| = 2c)."""
    c = 1.3
    p = 2 * c * np.array([1 - 1e-12, 1.0, 1 + 1e-12])
    v = np.asarray(jaxloss.geman_mcclure_loss(a64(p), a64(np.zeros(3)), scale=c))
    np.testing.assert_allclose(v, 1.0, rtol=1e-11)
    g = grad_p(jaxloss.geman_mcclure_loss, p, np.zeros(3), scale=c)
    np.testing.assert_allclose(g, 16 * 2 * c / (c**2 * 64), rtol=1e-10)


def test_log1p_square_over_branches_meet():
    """L = log(1 + z²/b), z = 2h/c, switches from log1p to softplus(2 log|z| - log b) at
    |z| = √b; value and dL/dh agree across the switch."""
    b, c = a64(0.37), a64(1.7)
    z = np.sqrt(0.37) * np.array([1 - 1e-13, 1.0, 1 + 1e-13])
    h = a64(z * 1.7 / 2)
    f = log1p_z2_over
    v, g = jax.jit(lambda h, c, b: (f(h, c, b),
                                    jax.vmap(jax.grad(f), (0, None, None))(h, c, b)))(h, c, b)
    np.testing.assert_allclose(np.asarray(v), math.log(2.0), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(g), 2 * z / (0.37 + z**2) * (2 / 1.7), rtol=1e-11)


@jax.jit
def _core_vg(z, a):
    """ρ(z, α) of the private core, with its elementwise z- and α-derivatives."""
    def f(z, a):
        return rho(z, jnp.zeros_like(z), jnp.ones_like(z), a)

    dz = jax.vmap(jax.grad(f, 0), (0, None))(z, a)
    da = jax.vmap(jax.grad(f, 1), (0, None))(z, a)
    return f(z, a), dz, da


def test_barron_series_and_expm1_branches_meet():
    """(b/2) L · exprel(y) switches to (b/α) expm1(y) at |y| = 1e-2; value and all gradients
    agree across the switch."""
    alpha = 0.5
    b = 1.5
    # y = αL/2 = 0.01  ⇔  L = 0.04  ⇔  z² = b (e^0.04 - 1)
    z0 = math.sqrt(b * math.expm1(2 * 0.01 / alpha))
    zs = a64(z0 * np.array([1 - 1e-9, 1 + 1e-9]))

    v, gz, ga = (np.asarray(o) for o in _core_vg(zs, a64(alpha)))
    np.testing.assert_allclose(v[0], v[1], rtol=1e-8)
    np.testing.assert_allclose(gz[0], gz[1], rtol=1e-8)
    np.testing.assert_allclose(ga[0], ga[1], rtol=1e-7)
    _, _, da = _drho(np.asarray(zs), alpha, 1.0)  # (this NumPy form cancels at small z)
    np.testing.assert_allclose(ga, da, rtol=1e-8)


# ----------------------------------------------------------------------------------------------
# Properties (hypothesis): non-negative, 0 at the target, symmetric, monotone in |r|

GRID = np.concatenate([[0.0], np.geomspace(1e-4, 1e3, 60)])

LOSSES = {
    "wing_loss": (jaxloss.wing_loss, {"omega": st.floats(0.5, 20), "epsilon": st.floats(0.1, 5)}),
    "adaptive_wing_loss": (jaxloss.adaptive_wing_loss, {"omega": st.floats(1, 20),
                                        "theta": st.floats(0.1, 2),
                                        "epsilon": st.floats(0.2, 3),
                                        "alpha": st.floats(1.5, 3)}),
    "charbonnier_loss": (jaxloss.charbonnier_loss, {"delta": st.floats(0.05, 20)}),
    "cauchy_loss": (jaxloss.cauchy_loss, {"scale": st.floats(0.05, 20)}),
    "geman_mcclure_loss": (jaxloss.geman_mcclure_loss, {"scale": st.floats(0.05, 20)}),
    "welsch_loss": (jaxloss.welsch_loss, {"scale": st.floats(0.05, 20)}),
    "tukey_biweight_loss": (jaxloss.tukey_biweight_loss, {"scale": st.floats(0.05, 20)}),
    "barron_loss": (jaxloss.barron_loss,
                    {"alpha": st.floats(-10, 6) | st.sampled_from([0.0, 2.0, -np.inf]),
                          "scale": st.floats(0.05, 20)}),
}


@pytest.fixture(scope="module")
def jitted():
    """One compiled function per loss: hyperparameters are traced arguments (learnable)."""
    out = {}
    for name, (fn, _) in LOSSES.items():
        out[name] = jax.jit(lambda p, t, kw, fn=fn: fn(p, t, **kw))
    return out


@pytest.mark.parametrize("name", sorted(LOSSES))
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_properties(jitted, name, data):
    _, strategies = LOSSES[name]
    kw = {k: a64(data.draw(s, label=k)) for k, s in strategies.items()}
    y = data.draw(st.floats(0.0, 1.0) if name == "adaptive_wing_loss" else st.floats(-100, 100),
                  label="target")
    t = a64(np.full(GRID.shape, y))
    up = np.asarray(jitted[name](t + a64(GRID), t, kw))
    down = np.asarray(jitted[name](t - a64(GRID), t, kw))
    assert np.all(np.isfinite(up))
    assert up[0] == 0.0  # zero at the target
    assert np.all(up >= 0)  # non-negative
    np.testing.assert_allclose(down, up, rtol=1e-9, atol=1e-300)  # symmetric in r (fixed y)
    # Non-decreasing in |r| (up to rounding of t ± r).
    assert np.all(np.diff(up) >= -1e-9 * np.abs(up[1:]))


@settings(max_examples=25, deadline=None)
@given(x=st.floats(-50, 50), c=st.floats(0.1, 10),
       a1=st.floats(-20, 8), a2=st.floats(-20, 8))
def test_barron_is_monotone_in_alpha(x, c, a1, a2):
    lo, hi = sorted((a1, a2))
    f = _barron_jit()
    v_lo, v_hi = (float(f(a64([x]), a64(a), a64(c))[0]) for a in (lo, hi))
    assert v_lo <= v_hi * (1 + 1e-12) + 1e-300


_BJ = {}


def _barron_jit():
    if "f" not in _BJ:
        _BJ["f"] = jax.jit(
            lambda x, a, c: jaxloss.barron_loss(x, jnp.zeros_like(x), alpha=a, scale=c))
    return _BJ["f"]


# ----------------------------------------------------------------------------------------------
# Special cases and limits

X = np.linspace(-7.0, 7.0, 29)


@pytest.mark.parametrize("c", [0.3, 1.0, 2.5])
def test_barron_special_cases(c):
    x, zero = a64(X), a64(np.zeros_like(X))
    z = X / c

    def b(a):
        return np.asarray(jaxloss.barron_loss(x, zero, alpha=a, scale=c))

    np.testing.assert_allclose(b(2.0), z**2 / 2, rtol=4e-15, atol=0)
    np.testing.assert_allclose(b(1.0), np.sqrt(z**2 + 1) - 1, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(b(0.0), np.log1p(z**2 / 2), rtol=1e-14, atol=0)
    np.testing.assert_allclose(b(-2.0), 2 * z**2 / (z**2 + 4), rtol=1e-14, atol=0)
    np.testing.assert_allclose(b(-np.inf), -np.expm1(-(z**2) / 2), rtol=4e-15, atol=0)
    np.testing.assert_allclose(b(np.inf), np.expm1(z**2 / 2), rtol=1e-13, atol=0)
    # The named members of the family are the same functions.
    np.testing.assert_allclose(b(0.0), jaxloss.cauchy_loss(x, zero, scale=c), rtol=1e-14)
    np.testing.assert_allclose(b(-2.0), jaxloss.geman_mcclure_loss(x, zero, scale=c), rtol=1e-14)
    np.testing.assert_allclose(b(-np.inf), jaxloss.welsch_loss(x, zero, scale=c), rtol=1e-15)
    np.testing.assert_allclose(b(1.0),
                               np.asarray(jaxloss.charbonnier_loss(x, zero, delta=c)) / c**2,
                               rtol=1e-13)
    # Limits: α → -∞ is Welsch, large α approaches exp(z²/2) - 1 from below.
    np.testing.assert_allclose(b(-1e9), b(-np.inf), rtol=1e-7, atol=1e-16)
    assert np.all(b(60.0) <= b(np.inf) * (1 + 1e-12))


def test_charbonnier_and_cauchy_conventions():
    x, zero = a64(X), a64(np.zeros_like(X))
    eps = 0.3
    # The image-restoration Charbonnier √(r² + ε²) = l(δ=ε)/ε + ε.
    np.testing.assert_allclose(np.asarray(jaxloss.charbonnier_loss(x, zero, delta=eps)) / eps + eps,
                               np.sqrt(X**2 + eps**2), rtol=1e-14)
    # The M-estimator Cauchy (c²/2) log(1 + (r/c)²) = (c²/2) cauchy_loss(scale=c/√2).
    c = 1.7
    m_cauchy = np.asarray(jaxloss.cauchy_loss(x, zero, scale=c / math.sqrt(2)))
    np.testing.assert_allclose(c**2 / 2 * m_cauchy, c**2 / 2 * np.log1p((X / c) ** 2), rtol=1e-13)
    # Pseudo-Huber tends to r²/2 for large δ and to δ|r| - δ² far out.
    np.testing.assert_allclose(jaxloss.charbonnier_loss(x, zero, delta=1e6), X**2 / 2, rtol=1e-10)


def test_small_residual_limit_is_half_square():
    """Every robust member behaves as r²/2 (in units of its scale) near 0."""
    r = a64([1e-5])
    zero = a64([0.0])
    for v in (jaxloss.charbonnier_loss(r, zero), jaxloss.cauchy_loss(r, zero),
              jaxloss.geman_mcclure_loss(r, zero),
              jaxloss.welsch_loss(r, zero), jaxloss.tukey_biweight_loss(r, zero),
              *(jaxloss.barron_loss(r, zero, alpha=a) for a in (-7.0, -2.0, 0.0, 0.5, 1.0, 3.0))):
        assert float(v[0]) == pytest.approx(0.5e-10, rel=1e-9)


def test_outliers_are_bounded_or_linear():
    big = a64([1e12])
    zero = a64([0.0])
    assert float(jaxloss.geman_mcclure_loss(big, zero)[0]) == 2.0
    assert float(jaxloss.welsch_loss(big, zero)[0]) == 1.0
    assert float(jaxloss.barron_loss(big, zero, alpha=-4.0)[0]) == pytest.approx(6 / 4, rel=1e-12)
    assert float(grad_p(jaxloss.wing_loss, [1e12], [0.0])[0]) == 1.0
    g = grad_p(jaxloss.charbonnier_loss, [1e12], [0.0], delta=3.0)
    assert float(g[0]) == pytest.approx(3.0)


# ----------------------------------------------------------------------------------------------
# Barron near the singular shapes α = 0 and α = 2


def _value_and_grads(x, alpha, c):
    v, gx, ga, gc = barron_vg(x, alpha, c)
    return np.asarray(v), [np.asarray(gx), np.asarray(ga), np.asarray(gc)]


OFFSETS = [1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-13]


def test_barron_is_smooth_through_alpha_zero():
    """ρ is analytic in α at 0: values and all gradients (x, α, c) converge to those at α = 0,
    and dρ/dα at 0 is the true derivative (robust_loss_jax returns 0 there)."""
    x = a64([-3.0, -0.2, 0.7, 5.0])
    c = a64(1.3)
    v0, (gx0, ga0, gc0) = _value_and_grads(x, a64(0.0), c)
    _, _, da = _drho(np.asarray(x), 0.0, 1.3)
    np.testing.assert_allclose(ga0, np.sum(da), rtol=1e-12)
    assert abs(float(ga0)) > 0.1
    for sgn in (1, -1):
        for d in OFFSETS:
            v, (gx, ga, gc) = _value_and_grads(x, a64(sgn * d), c)
            tol = 5 * d + 1e-13
            np.testing.assert_allclose(v, v0, rtol=tol)
            np.testing.assert_allclose(gx, gx0, rtol=tol)
            np.testing.assert_allclose(gc, gc0, rtol=tol)
            np.testing.assert_allclose(ga, ga0, rtol=50 * d + 1e-12)


def test_barron_near_alpha_two_is_continuous_with_finite_gradients():
    """The value and the x/c gradients converge to the L2 ones; dρ/dα is finite at every α near
    2 and grows like (z²/4) log(z²/|α - 2|); at exactly 2 it is 0 by convention."""
    x = a64([-3.0, -0.2, 0.7, 5.0])
    c = a64(0.9)
    z2 = (np.asarray(x) / 0.9) ** 2
    v2, (gx2, ga2, gc2) = _value_and_grads(x, a64(2.0), c)
    np.testing.assert_allclose(v2, z2 / 2, rtol=1e-15)
    assert float(ga2) == 0.0
    prev = None
    for sgn in (1, -1):
        for d in [*OFFSETS, 1e-15]:  # 2 + 1e-15 is the float64 next to 2, roughly
            v, (gx, ga, gc) = _value_and_grads(x, a64(2 + sgn * d), c)
            tol = 10 * max(d, 2.3e-16) * (1 + np.log(1 / max(d, 2.3e-16)) + np.log1p(z2.max()))
            np.testing.assert_allclose(v, v2, rtol=tol)
            np.testing.assert_allclose(gx, gx2, rtol=tol)
            np.testing.assert_allclose(gc, gc2, rtol=tol)
            assert np.isfinite(ga) and ga > 0
            if d >= 1e-8:  # the closed form, away from the eps clamp
                want = np.sum(_drho(np.asarray(x), 2 + sgn * d, 0.9)[2])
                np.testing.assert_allclose(ga, want, rtol=1e-6)
            if sgn == 1 and prev is not None:
                assert ga >= prev * 0.99  # grows as α → 2
            prev = float(ga) if sgn == 1 else prev


def test_barron_float32_finite_near_singular_alphas():
    """Values and gradients (x, α, c) finite in float32 at and around α = 0, 2, ±∞. Inputs up to
    1e30 where the value is representable (α <= 1; ρ ~ |x|^α), 1e24 at α = 1.5 (dρ/dα ~ ρ log x),
    up to 1e18 near α = 2 (x²/2 < 3e38). Beyond the range the value is inf, not a saturated
    number."""
    x = jnp.asarray([0.0, 1e-30, 0.3, -2.0, 40.0, 1e18], jnp.float32)
    big = x.at[-1].set(1e30)
    for alpha, xs in [(0.0, big), (1e-30, big), (-1e-30, big), (1e-7, big), (1e-3, big),
                      (1.5, big.at[-1].set(1e24)), (-np.inf, big), (-1e30, big),
                      (2.0, x), (2 - 1e-7, x), (2 + 1e-7, x), (1.9999999, x)]:
        v, gx, ga, gc = barron_vg(xs, jnp.float32(alpha), jnp.float32(1.0))
        assert v.dtype == jnp.float32
        for arr in (v, gx, ga, gc):
            assert np.all(np.isfinite(np.asarray(arr))), alpha
    # α = 1.5 at 1e30: ρ = (1/3)(2·1e60)^0.75 - 1/3 = 2e45 is beyond float32's range (inf);
    # dρ/dx = x (2x² + 1)^(-1/4) = 8.4e14 is not.
    v, gx, _, _ = barron_vg(big, jnp.float32(1.5), jnp.float32(1.0))
    assert float(v[-1]) == np.inf
    assert float(gx[-1]) == pytest.approx(1e30 * (2e60 + 1) ** -0.25, rel=1e-5)
    # α = +∞ (exp(z²/2) - 1) only where it is representable.
    v, gx, ga, gc = barron_vg(x.at[-2:].set(8.0), jnp.float32(np.inf), jnp.float32(1.0))
    assert all(np.all(np.isfinite(np.asarray(a))) for a in (v, gx, ga, gc))


def test_barron_alpha_is_traceable_and_per_dimension():
    x = a64(np.linspace(-3, 3, 12).reshape(3, 4))
    zero = jnp.zeros_like(x)
    alphas = a64([-np.inf, 0.0, 1.0, 2.0])
    per_dim = np.asarray(jaxloss.barron_loss(x, zero, alpha=alphas, scale=0.7))
    for j, a in enumerate(np.asarray(alphas)):
        col = np.asarray(jaxloss.barron_loss(x[:, j], zero[:, j], alpha=float(a), scale=0.7))
        np.testing.assert_allclose(per_dim[:, j], col, rtol=1e-15)
    # Learnable α under jit and vmap: no Python branching on its value.
    g = jax.jit(jax.grad(lambda a: jnp.sum(jaxloss.barron_loss(x, zero, alpha=a))))
    for a in (0.0, 0.5, 2.0, -np.inf, 7.0):
        assert np.isfinite(float(g(a64(a))))
    v = jax.vmap(lambda a: jaxloss.barron_loss(x, zero, alpha=a))(alphas)
    assert v.shape == (4, 3, 4)


# ----------------------------------------------------------------------------------------------
# Validation


def test_hyperparameter_errors():
    p, t = jnp.zeros(4), jnp.zeros(4)
    with pytest.raises(ValueError, match=r"jaxloss\.wing_loss: `omega` must be finite and > 0"):
        jaxloss.wing_loss(p, t, omega=0.0)
    with pytest.raises(ValueError, match=r"jaxloss\.adaptive_wing_loss: `theta`"):
        jaxloss.adaptive_wing_loss(p, t, theta=-1.0)
    with pytest.raises(ValueError, match=r"jaxloss\.cauchy_loss: `scale` must be finite and > 0"):
        jaxloss.cauchy_loss(p, t, scale=jnp.array([1.0, 0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"jaxloss\.barron_loss: `alpha` must be a number"):
        jaxloss.barron_loss(p, t, alpha=float("nan"))
    with pytest.raises(ValueError, match=r"jaxloss\.barron_loss: `alpha` must broadcast"):
        jaxloss.barron_loss(p, t, alpha=jnp.ones(3))
    with pytest.raises(ValueError, match=r"jaxloss\.barron_nll: `alpha` must be finite and >= 0"):
        jaxloss.barron_nll(p, t, alpha=-0.5)
    with pytest.raises(ValueError, match=r"jaxloss\.barron_nll: `alpha` must be finite"):
        jaxloss.barron_nll(p, t, alpha=np.inf)
    with pytest.raises(ValueError, match=r"jaxloss\.barron_nll: `scale`"):
        jaxloss.barron_nll(p, t, alpha=1.0, scale=-1.0)


def test_traced_negative_alpha_gives_nan_nll():
    """α < 0 has no normalisable density; under jit it cannot raise, so the value is NaN."""
    f = jax.jit(lambda a: jaxloss.barron_nll(jnp.zeros(2), jnp.zeros(2), alpha=a))
    assert np.all(np.isnan(np.asarray(f(-0.5))))
    assert np.all(np.isfinite(np.asarray(f(0.5))))


# ----------------------------------------------------------------------------------------------
# log Z(α): known values, an independent quadrature, its derivative, float32


def _log_z_reference(alpha, h=2e-3, umax=42.0):
    """Trapezoid on u = log x (u spaced by exactly h), Z = 2∫ exp(-ρ(e^u)) e^u du, float64."""
    n = round(umax / h)
    u = np.arange(-n, n + 1) * h
    x = np.exp(u)
    rho = np.asarray(_rho_np(x, alpha))
    return float(np.log(2 * h * np.sum(np.exp(-rho) * x)))


def _rho_np(x, a):
    with np.errstate(over="ignore"):
        if a == 2:
            return x * x / 2
        b = abs(a - 2)
        lg = np.log1p(x * x / b)
        if a == 0:
            return b * lg / 2
        return b / a * np.expm1(np.minimum(a / 2 * lg, 700))


def _log_z(alpha, dtype=F64):
    return np.asarray(log_partition(jnp.asarray(alpha, dtype)))


def test_log_partition_known_values():
    k1_at_1 = 0.60190723019723457474  # modified Bessel K_1(1): Z(1) = 2e K_1(1)
    np.testing.assert_allclose(_log_z(2.0), math.log(math.sqrt(2 * math.pi)), rtol=0, atol=2e-15)
    np.testing.assert_allclose(_log_z(0.0), math.log(math.pi * math.sqrt(2)), rtol=0, atol=2e-15)
    np.testing.assert_allclose(_log_z(1.0), math.log(2 * math.e * k1_at_1), rtol=0, atol=2e-15)


ALPHA_GRID = [0.0, 1e-6, 1e-3, 0.01, 0.1, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 1.9, 1.99,
              1.999, 2.0, 2.001, 2.5, 3.0, 4.0, 6.0, 8.0, 16.0, 32.0]


def test_log_partition_matches_independent_quadrature():
    got = _log_z(np.array(ALPHA_GRID))
    want = np.array([_log_z_reference(a) for a in ALPHA_GRID])
    err = np.abs(got - want)
    grid = np.array(ALPHA_GRID)
    assert np.all(err[grid <= 8] < 2e-15), err
    assert np.all(err < 5e-13), err  # the documented bound is 1e-12 beyond α = 8
    # And the registry's reference (a third rule, x = sinh v).
    want2 = np.array([log_partition_reference(a)[0] for a in ALPHA_GRID[::3]])
    np.testing.assert_allclose(got[::3], want2, rtol=0, atol=2e-15)
    # log Z decreases in α (ρ increases in α).
    assert np.all(np.diff(got) < 0)


def test_log_partition_derivative():
    dlogz = jax.jit(jax.vmap(jax.grad(log_partition)))
    alphas = np.array([0.0, 0.02, 0.3, 0.8, 1.2, 1.6, 1.9, 2.5, 4.0])
    got = np.asarray(dlogz(a64(alphas)))
    for a, g in zip(alphas, got, strict=True):
        if a == 0.0:  # one-sided (Z is infinite for α < 0): 4-point forward difference, O(h³)
            h = 1e-4
            f = [_log_z_reference(a + k * h) for k in range(4)]
            fd = (-11 * f[0] + 18 * f[1] - 9 * f[2] + 2 * f[3]) / (6 * h)
            tol = 1e-8
        else:  # 5-point central difference, O(h⁴)
            h = 1e-3
            fm2, fm1, fp1, fp2 = (_log_z_reference(a + k * h) for k in (-2, -1, 1, 2))
            fd = (fm2 - 8 * fm1 + 8 * fp1 - fp2) / (12 * h)
            tol = 1e-8
        assert g == pytest.approx(fd, abs=tol), a
    # The registry's closed-form-under-the-integral reference, to quadrature accuracy.
    for a, g in zip(alphas, got, strict=True):
        assert g == pytest.approx(log_partition_reference(float(a))[1], abs=1e-12), a
    # d log Z/dα → -∞ as α → 2 (a logarithmic singularity): the slope keeps steepening.
    slopes = np.asarray(dlogz(a64([1.9, 1.99, 1.999, 1.9999])))
    assert np.all(np.diff(slopes) < 0) and np.all(np.isfinite(slopes))


def test_log_partition_float32():
    alphas = np.array([0.0, 0.001, 0.5, 1.0, 1.999, 2.0, 4.0], np.float32)
    got = _log_z(alphas, jnp.float32)
    assert got.dtype == np.float32
    want = np.array([_log_z_reference(float(a)) for a in alphas])
    np.testing.assert_allclose(got, want, rtol=0, atol=3e-6)
    g = jax.jit(jax.vmap(jax.grad(log_partition)))(jnp.asarray(alphas))
    assert np.all(np.isfinite(np.asarray(g)))


@pytest.mark.parametrize("alpha,scale", [(0.3, 0.5), (1.0, 2.0), (1.7, 1.0), (2.0, 0.8),
                                         (0.0, 1.0)])
def test_nll_is_a_normalised_density(alpha, scale):
    """∫ exp(-barron_nll(x; α, c)) dx = 1, integrated numerically on x = c sinh(v)."""
    v = np.arange(-30000, 30001) * 1e-3
    x = scale * np.sinh(v)
    nll = np.asarray(jaxloss.barron_nll(a64(x), a64(np.zeros_like(x)), alpha=alpha, scale=scale))
    total = np.sum(np.exp(-nll) * scale * np.cosh(v)) * 1e-3
    assert total == pytest.approx(1.0, abs=1e-10)


# ----------------------------------------------------------------------------------------------
# The adaptive wrapper


@jax.jit
def _adaptive_grad(r, params):
    return jax.grad(lambda q: jnp.sum(jaxloss.adaptive_robust_nll(r, jnp.zeros_like(r), q)))(params)


def test_init_and_parameters():
    p = jaxloss.adaptive_robust_init((3,), alpha_init=0.2, scale_init=0.05, dtype=jnp.float64)
    assert set(p) == {"latent_alpha", "latent_scale"} and p["latent_alpha"].shape == (3,)
    a, c = jaxloss.adaptive_robust_parameters(p)
    np.testing.assert_allclose(a, 0.2, rtol=1e-14)
    np.testing.assert_allclose(c, 0.05, rtol=1e-14)
    # Any latent values stay within the bounds, with finite gradients.
    wild = {"latent_alpha": a64([-1e4, 0.0, 1e4]), "latent_scale": a64([-1e4, 0.0, 1e4])}
    a, c = (np.asarray(v) for v in jaxloss.adaptive_robust_parameters(wild))
    assert np.all((a >= 0.001) & (a <= 1.999)) and np.all(c >= 1e-5)
    g = _adaptive_grad(a64(np.ones((5, 3))), wild)
    assert all(np.all(np.isfinite(np.asarray(v))) for v in g.values())
    # alpha_lo == alpha_hi fixes α.
    fixed = jaxloss.adaptive_robust_init(alpha_init=1.0, alpha_lo=1.0, alpha_hi=1.0)
    fixed["latent_alpha"] = fixed["latent_alpha"] + 3.0
    assert float(jaxloss.adaptive_robust_parameters(fixed, alpha_lo=1.0, alpha_hi=1.0)[0]) == 1.0


def test_init_errors():
    with pytest.raises(ValueError, match=r"adaptive_robust_init: `alpha_init`"):
        jaxloss.adaptive_robust_init(alpha_init=2.5)
    with pytest.raises(ValueError, match=r"adaptive_robust_init: `scale_init`"):
        jaxloss.adaptive_robust_init(scale_init=0.0)
    with pytest.raises(ValueError, match=r"`alpha_lo`, `alpha_hi`"):
        jaxloss.adaptive_robust_init(alpha_lo=1.5, alpha_hi=1.0)
    with pytest.raises(ValueError, match=r"adaptive_robust_nll: `params` must be the dict"):
        jaxloss.adaptive_robust_nll(jnp.zeros(2), jnp.zeros(2), {"alpha": 1.0})
    with pytest.raises(ValueError, match=r"params\['latent_alpha'\]"):
        jaxloss.adaptive_robust_nll(jnp.zeros(2), jnp.zeros(2), jaxloss.adaptive_robust_init((3,)))


def test_adaptive_nll_equals_barron_nll_and_chain_rule():
    rng = np.random.default_rng(0)
    r = rng.standard_t(2.0, size=(5, 3))
    params = {"latent_alpha": a64([-1.0, 0.3, 2.0]), "latent_scale": a64([-0.5, 0.0, 1.5])}
    la, ls = np.asarray(params["latent_alpha"]), np.asarray(params["latent_scale"])
    sig = 1 / (1 + np.exp(-la))
    alpha = 0.001 + 1.998 * sig
    scale = np.log1p(np.exp(ls)) + 1e-5
    got = np.asarray(jaxloss.adaptive_robust_nll(a64(r), a64(np.zeros_like(r)), params))
    want = np.asarray(jaxloss.barron_nll(a64(r), a64(np.zeros_like(r)), alpha=a64(alpha),
                                   scale=a64(scale)))
    np.testing.assert_allclose(got, want, rtol=1e-14)
    # Gradients w.r.t. the latents: chain rule through the closed forms (independent log Z).
    g = _adaptive_grad(a64(r), params)
    for j in range(3):
        _, dc, da = _drho(r[:, j], float(alpha[j]), float(scale[j]))
        dlogz = log_partition_reference(float(alpha[j]))[1]
        want_a = np.sum(da + dlogz) * 1.998 * sig[j] * (1 - sig[j])
        want_s = np.sum(dc + 1 / scale[j]) * (1 / (1 + np.exp(-ls[j])))
        assert float(g["latent_alpha"][j]) == pytest.approx(want_a, rel=1e-9)
        assert float(g["latent_scale"][j]) == pytest.approx(want_s, rel=1e-9)


@jax.jit
def _fit(y):
    """Fits a location μ and (α, c) jointly with Adam on residuals y - μ; one compilation."""
    params = {"mu": jnp.float32(0.5), "robust": jaxloss.adaptive_robust_init()}
    opt = optax.adam(0.1)

    def loss(q):
        return jaxloss.mean(jaxloss.adaptive_robust_nll(jnp.full_like(y, q["mu"]), y, q["robust"]))

    def step(carry, _):
        params, state = carry
        updates, state = opt.update(jax.grad(loss)(params), state)
        return (optax.apply_updates(params, updates), state), None

    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=150)
    alpha, scale = jaxloss.adaptive_robust_parameters(params["robust"])
    return alpha, scale, params["mu"]


def test_optax_learns_lower_alpha_for_heavy_tails():
    rng = np.random.default_rng(2)
    gauss = jnp.asarray(rng.normal(size=512), jnp.float32)
    heavy = jnp.asarray(rng.standard_cauchy(size=512) * 0.5, jnp.float32)
    a_gauss, c_gauss, mu_gauss = (float(v) for v in _fit(gauss))
    a_heavy, c_heavy, mu_heavy = (float(v) for v in _fit(heavy))
    assert a_gauss > 1.4  # Gaussian residuals: α towards L2 (the bound is 1.999)
    assert a_heavy < 0.5  # Cauchy residuals: α towards the Cauchy shape (α = 0)
    assert a_gauss - a_heavy > 1.0
    assert abs(mu_heavy) < 0.2 and abs(mu_gauss) < 0.2  # robust location estimates
    assert 0.6 < c_gauss < 1.3  # σ = 1 is c = 1 at α = 2
    assert 0.2 < c_heavy < 0.6  # Cauchy(γ = 0.5) is c = γ/√2 ≈ 0.35 at α = 0
