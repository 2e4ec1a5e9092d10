"""jaxloss.diagnostics against closed forms (float64): the Bayes act of each loss is its known
statistic, ψ summaries and efficiencies match the robust-statistics formulas, the calibration maps
of cross-entropy, Brier, class-weighted CE and focal loss match their first-order conditions.

Each check jits one program per loss and vmaps over its cases (sample sets, hyperparameters).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxloss
from jaxloss.diagnostics import bayes_act, influence, properness

RNG = np.random.default_rng(19)
# Three skewed sample sets of 100; the last sample of the third has weight 0 (99 counted).
SAMPLES = RNG.lognormal(size=(3, 100)) - 1.0
WEIGHTS = np.ones((3, 100))
WEIGHTS[2, -1] = 0.0


def _acts(loss, samples=SAMPLES, weights=WEIGHTS, **hp_batched):
    """bayes_act of every sample set, vmapped over the hyperparameters in ``hp_batched``
    ([H] arrays): returns [H, S]."""
    names = sorted(hp_batched)
    values = [jnp.asarray(hp_batched[k], jnp.float64) for k in names]

    def one(*hp):
        return bayes_act(loss, samples, weights=weights, **dict(zip(names, hp, strict=True)))

    return np.asarray(jax.jit(jax.vmap(one))(*values))


def _counted(i):
    return SAMPLES[i][WEIGHTS[i] > 0]


def test_squared_error_gives_the_weighted_mean():
    w = RNG.uniform(0.1, 2.0, size=SAMPLES.shape)
    w[2, -1] = 0.0
    acts = np.asarray(jax.jit(lambda y, w: bayes_act(jaxloss.squared_error, y, weights=w))(
        SAMPLES, w))
    np.testing.assert_allclose(acts, np.sum(w * SAMPLES, 1) / np.sum(w, 1), rtol=1e-12)


def test_absolute_error_gives_the_midpoint_of_the_median_interval():
    acts = np.asarray(jax.jit(lambda y, w: bayes_act(jaxloss.absolute_error, y, weights=w))(
        SAMPLES, WEIGHTS))
    # 100 samples: the median interval is [y(50), y(51)]; its midpoint (numpy.median) is chosen.
    for i in range(2):
        s = np.sort(SAMPLES[i])
        assert s[49] < s[50]
        np.testing.assert_allclose(acts[i], 0.5 * (s[49] + s[50]), rtol=0, atol=1e-13)
        np.testing.assert_allclose(acts[i], np.median(SAMPLES[i]), rtol=0, atol=1e-13)
    # 99 counted: the middle one.
    np.testing.assert_allclose(acts[2], np.sort(_counted(2))[49], rtol=0, atol=1e-13)


def test_pinball_gives_the_quantile():
    acts = _acts(jaxloss.pinball_loss, tau=[0.1, 0.9, 0.37])
    for h, tau in enumerate([0.1, 0.9, 0.37]):
        for i in range(3):
            s = np.sort(_counted(i))
            n = len(s)
            k = n * tau
            if abs(k - round(k)) < 1e-9:  # n·τ an integer: the midpoint of y(nτ), y(nτ + 1)
                expected = 0.5 * (s[round(k) - 1] + s[round(k)])
            else:  # the ⌈nτ⌉-th smallest
                expected = s[math.ceil(k) - 1]
            np.testing.assert_allclose(acts[h, i], expected, rtol=0, atol=1e-12, err_msg=f"{tau}")


def _expectile(y, tau):
    c = y.mean()
    for _ in range(200):  # asymmetric least squares: a weighted mean, to a fixed point
        w = np.where(y > c, tau, 1 - tau)
        c_new = np.sum(w * y) / np.sum(w)
        if c_new == c:
            break
        c = c_new
    return c


def test_expectile_gives_the_expectile():
    acts = _acts(jaxloss.expectile_loss, tau=[0.2, 0.5, 0.8])
    for h, tau in enumerate([0.2, 0.5, 0.8]):
        for i in range(3):
            np.testing.assert_allclose(acts[h, i], _expectile(_counted(i), tau), rtol=1e-11)


def test_linex_gives_its_closed_form():
    # jaxloss.linex_loss: Δ = p - t, l = e^{aΔ} - aΔ - 1; the first-order condition
    # mean(e^{a(c - y)}) = 1 gives c = -(1/a)·log mean(e^{-a y}).
    acts = _acts(jaxloss.linex_loss, a=[0.7, -0.5])
    for h, a in enumerate([0.7, -0.5]):
        for i in range(3):
            y = _counted(i)
            expected = -np.log(np.mean(np.exp(-a * y))) / a
            np.testing.assert_allclose(acts[h, i], expected, rtol=1e-11)
    # a > 0 makes over-prediction exponential: the act lies below the mean (above for a < 0).
    assert np.all(acts[0] < SAMPLES.mean(1)) and np.all(acts[1] > SAMPLES.mean(1) - 0.01)


def test_log_losses_give_geometric_type_means():
    positive = SAMPLES + 1.5  # > 0
    ratio = np.asarray(jax.jit(lambda y, w: bayes_act(jaxloss.log_ratio_error, y, weights=w))(
        positive, WEIGHTS))
    msle = np.asarray(jax.jit(
        lambda y, w: bayes_act(jaxloss.squared_logarithmic_error, y, weights=w))(positive, WEIGHTS))
    for i in range(3):
        y = positive[i][WEIGHTS[i] > 0]
        np.testing.assert_allclose(ratio[i], np.exp(np.mean(np.log(y))), rtol=1e-11)
        np.testing.assert_allclose(msle[i], np.expm1(np.mean(np.log1p(y))), rtol=1e-11)


def _huber_m_estimate(y, delta):
    c = np.median(y)
    for _ in range(2000):  # IRLS: weights min(1, δ/|y - c|)
        w = np.minimum(1.0, delta / np.maximum(np.abs(y - c), 1e-300))
        c_new = np.sum(w * y) / np.sum(w)
        if abs(c_new - c) < 1e-15:
            break
        c = c_new
    return c


def test_huber_gives_the_huber_m_estimate():
    acts = _acts(jaxloss.huber_loss, delta=[0.3, 1.345])
    for h, delta in enumerate([0.3, 1.345]):
        for i in range(3):
            np.testing.assert_allclose(
                acts[h, i], _huber_m_estimate(_counted(i), delta), rtol=1e-10
            )


def test_non_convex_loss_finds_the_global_minimum_and_shapes_batch():
    # Tukey's biweight on 90 normal samples and 10 gross errors at +8: the mean loss has a
    # local minimum near the outliers; the global one (near 0) is found.
    y = np.concatenate([RNG.normal(size=90), 8.0 + 0.1 * RNG.normal(size=10)])
    batch = np.stack([y, y[::-1], np.where(np.arange(100) == 3, np.nan, y)]).reshape(3, 1, 100)
    tukey = jaxloss.tukey_biweight_loss
    acts = np.asarray(jax.jit(lambda s: bayes_act(tukey, s, scale=2.0))(batch))
    assert acts.shape == (3, 1)
    def best_on(grid):
        u = np.minimum(((grid[:, None] - y[None, :]) / 2.0) ** 2, 1.0)
        return grid[np.argmin(np.mean(u * (3 - 3 * u + u * u), axis=1))]

    coarse = best_on(np.linspace(y.min(), y.max(), 4001))
    best = best_on(np.linspace(coarse - 0.01, coarse + 0.01, 4001))
    np.testing.assert_allclose(acts[0, 0], best, atol=1e-5)
    np.testing.assert_allclose(acts[1, 0], acts[0, 0], rtol=1e-14)  # order does not matter
    assert np.isnan(acts[2, 0])  # a NaN sample gives NaN for its set only


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="weights"):
        bayes_act(jaxloss.squared_error, jnp.ones(3), weights=jnp.ones(2))
    with pytest.raises(ValueError, match=">= 0"):
        bayes_act(jaxloss.squared_error, jnp.ones(3), weights=jnp.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="one value per sample"):
        bayes_act(jaxloss.softmax_cross_entropy, jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="binary_logits"):
        properness(jaxloss.sigmoid_binary_cross_entropy, inputs="binary_logits", num_classes=3)


# ------------------------------------------------------------------------------------------------
# Property: asymmetric costs move the Bayes act towards the cheaper error.

_ASYMMETRIC = {}


def _asymmetric_act(base):
    if base not in _ASYMMETRIC:
        _ASYMMETRIC[base] = jax.jit(
            lambda y, over, under: bayes_act(
                jaxloss.asymmetric(getattr(jaxloss, base), over=over, under=under), y
            )
        )
    return _ASYMMETRIC[base]


@settings(max_examples=30, deadline=None)
@given(
    base=st.sampled_from(["squared_error", "huber_loss", "absolute_error"]),
    y=st.lists(st.floats(-50, 50), min_size=12, max_size=12),
    over=st.floats(0.05, 20.0),
    under=st.floats(0.05, 20.0),
)
def test_asymmetric_weights_move_the_act_towards_the_cheaper_error(base, y, over, under):
    f = _asymmetric_act(base)
    y = np.asarray(y)
    act = float(f(y, over, under))
    symmetric = float(f(y, 1.0, 1.0))
    tol = 1e-9 * (1 + np.max(np.abs(y)))
    if under > over:  # under-prediction costs more: predict higher
        assert act >= symmetric - tol
    elif over > under:
        assert act <= symmetric + tol
    # Strict for a strictly convex base on samples that are not all equal.
    if base == "squared_error" and np.ptp(y) > 1e-3 and abs(under / over - 1) > 1e-3:
        assert (act - symmetric) * (under - over) > 0
    # Only the ratio of the weights matters.
    np.testing.assert_allclose(float(f(y, 3 * over, 3 * under)), act, atol=tol * 100)


# ------------------------------------------------------------------------------------------------
# influence


def _phi(x):
    return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _huber_efficiency(d):
    a = math.erf(d / math.sqrt(2))  # E[ψ'] = P(|Z| < δ)
    b = a - 2 * d * _phi(d) + d * d * math.erfc(d / math.sqrt(2))  # E[ψ²]
    return a * a / b


def _tukey_efficiency(c):
    m = {0: math.erf(c / math.sqrt(2))}  # truncated moments ∫_{-c}^{c} r^k φ(r) dr
    for k in range(2, 11, 2):
        m[k] = (k - 1) * m[k - 2] - 2 * c ** (k - 1) * _phi(c)
    slope = m[0] - 6 * m[2] / c**2 + 5 * m[4] / c**4
    var = m[2] - 4 * m[4] / c**2 + 6 * m[6] / c**4 - 4 * m[8] / c**6 + m[10] / c**8
    return slope * slope / var


@pytest.fixture(scope="module")
def robust():
    r = jnp.linspace(-6.0, 6.0, 25)
    return r, {
        "huber_loss": jax.jit(lambda r: influence(jaxloss.huber_loss, r, delta=1.345))(r),
        "tukey": jax.jit(lambda r: influence(jaxloss.tukey_biweight_loss, r, scale=4.685))(r),
        "absolute": jax.jit(lambda r: influence(jaxloss.absolute_error, r))(r),
        "squared": jax.jit(lambda r: influence(jaxloss.squared_error, r))(r),
    }


def test_efficiency_at_the_normal(robust):
    _, out = robust
    assert round(_huber_efficiency(1.345), 3) == 0.95
    assert round(_tukey_efficiency(4.685), 3) == 0.95
    # Quadrature error (kinks of Huber's ψ, the jump of sign) below 1e-6.
    assert abs(float(out["huber_loss"].efficiency) - _huber_efficiency(1.345)) < 1e-6
    assert abs(float(out["tukey"].efficiency) - _tukey_efficiency(4.685)) < 1e-6
    assert abs(float(out["absolute"].efficiency) - 2 / math.pi) < 1e-6
    assert abs(float(out["squared"].efficiency) - 1.0) < 1e-9
    assert round(float(out["huber_loss"].efficiency), 3) == round(float(out["tukey"].efficiency), 3)
    assert round(float(out["tukey"].efficiency), 3) == 0.95


def test_psi_sensitivity_and_rejection_point(robust):
    r, out = robust
    r = np.asarray(r)
    np.testing.assert_allclose(out["huber_loss"].psi, np.clip(r, -1.345, 1.345), atol=1e-15)
    np.testing.assert_allclose(
        out["tukey"].psi, np.where(np.abs(r) < 4.685, r * (1 - (r / 4.685) ** 2) ** 2, 0),
        atol=1e-13)
    np.testing.assert_allclose(out["squared"].psi, 2 * r, atol=1e-15)
    assert float(out["huber_loss"].gross_error_sensitivity) == pytest.approx(1.345, abs=1e-12)
    assert float(out["absolute"].gross_error_sensitivity) == 1.0
    # Tukey: max of r(1 - r²/c²)² at r = c/√5.
    assert float(out["tukey"].gross_error_sensitivity) == pytest.approx(
        4.685 / math.sqrt(5) * 0.64, rel=1e-5)
    assert math.isinf(float(out["squared"].gross_error_sensitivity))
    assert float(out["tukey"].rejection_point) == pytest.approx(4.685, rel=1e-7)
    for name in ("huber_loss", "absolute", "squared"):
        assert math.isinf(float(out[name].rejection_point))


# ------------------------------------------------------------------------------------------------
# properness


def _focal_true_probability(p, gamma):
    """The q whose focal-risk minimiser is p: q = B(p) / (A(p) + B(p)) (first-order condition)."""
    a = (1 - p) ** gamma / p - gamma * (1 - p) ** (gamma - 1) * np.log(p)
    b = p**gamma / (1 - p) - gamma * p ** (gamma - 1) * np.log1p(-p)
    return b / (a + b)


def test_cross_entropy_and_class_weights():
    ce = jaxloss.softmax_cross_entropy_with_integer_labels
    w = jnp.array([[1.0, 1.0], [1.0, 3.0], [2.0, 0.5]])
    out = jax.jit(jax.vmap(lambda cw: properness(jaxloss.class_weighted(ce, cw))))(w)
    q = np.asarray(out.true[0, :, 1])
    p = np.asarray(out.predicted[:, :, 1])
    assert bool(out.proper[0]) and bool(out.strictly_proper[0])  # plain cross-entropy
    np.testing.assert_allclose(p[0], q, atol=1e-12)
    for i in (1, 2):
        w0, w1 = np.asarray(w[i])
        # p̂ = w1 q / (w1 q + w0 (1 - q)), from the first-order condition w1 q/p = w0 (1-q)/(1-p).
        np.testing.assert_allclose(p[i], w1 * q / (w1 * q + w0 * (1 - q)), atol=1e-10)
        assert not bool(out.proper[i])
    # Three classes: p̂_c ∝ w_c q_c.
    w3 = jnp.array([[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]])
    out3 = jax.jit(jax.vmap(
        lambda cw: properness(jaxloss.class_weighted(ce, cw), num_classes=3)))(w3)
    assert bool(out3.strictly_proper[0]) and not bool(out3.proper[1])
    wq = np.asarray(w3[1]) * np.asarray(out3.true[1])
    np.testing.assert_allclose(out3.predicted[1], wq / wq.sum(1, keepdims=True), atol=1e-10)


def test_brier_score_is_strictly_proper():
    out = jax.jit(lambda: properness(jaxloss.squared_error, inputs="probabilities"))()
    assert bool(out.proper) and bool(out.strictly_proper)
    assert float(out.max_deviation) < 1e-12


def test_focal_loss_is_not_proper_and_matches_its_calibration_map():
    gammas = jnp.array([0.0, 1.0, 2.0])
    out = jax.jit(jax.vmap(lambda g: properness(
        jaxloss.sigmoid_focal_loss, inputs="binary_logits", gamma=g)))(gammas)
    q = np.asarray(out.true[0, :, 1])
    p = np.asarray(out.predicted[:, :, 1])
    assert bool(out.strictly_proper[0])  # γ = 0 is the sigmoid cross-entropy
    for i, g in ((1, 1.0), (2, 2.0)):
        assert not bool(out.proper[i])
        np.testing.assert_allclose(_focal_true_probability(p[i], g), q, atol=1e-10)
        # under-confident: p̂ lies between ½ and q
        assert np.all(np.abs(p[i] - 0.5) <= np.abs(q - 0.5) + 1e-12)
    assert float(out.max_deviation[2]) > float(out.max_deviation[1]) > 0.05


def test_a_loss_that_reduces_is_refused_by_name():
    """bayes_act and influence need one value per sample; a loss that reduces an axis says so."""
    samples = jnp.linspace(-1.0, 1.0, 5)
    reducing = jaxloss.softmax_cross_entropy
    with pytest.raises(ValueError, match=r"jaxloss\.diagnostics\.bayes_act: the loss must be "
                                         r"elementwise.*got shape \(\) for inputs of shape \(5,\)"):
        bayes_act(reducing, samples)
    with pytest.raises(ValueError, match=r"jaxloss\.diagnostics\.influence: the loss must be "
                                         r"elementwise"):
        influence(reducing, jnp.linspace(-1.0, 1.0, 5))
