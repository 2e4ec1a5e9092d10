"""The proper scoring rules beyond the conformance suite: the Gaussian CRPS against numerical
integration of its definition, the identities between the estimators, the target gradients, the
argument errors, and properness (the expected score over outcomes from a known distribution is
smallest for that distribution among perturbed forecasts)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

import jaxloss
from tests.cases.scoring import energy_dx, energy_value, ensemble_value, gaussian_value


def _crps_by_integration(cdf, y, lo, hi):
    """∫ (F(x) - 1{x ≥ y})² dx, split at y (float64 quadrature)."""
    left, _ = integrate.quad(lambda x: cdf(x) ** 2, lo, y, limit=200)
    right, _ = integrate.quad(lambda x: (1 - cdf(x)) ** 2, y, hi, limit=200)
    return left + right


@pytest.mark.parametrize(
    ("mu", "sigma", "y"), [(0.0, 1.0, 0.0), (0.3, 2.0, -1.7), (-1.0, 0.5, 2.0)]
)
def test_gaussian_equals_the_integral_definition(mu, sigma, y):
    want = _crps_by_integration(
        lambda x: stats.norm.cdf(x, mu, sigma), y, mu - 40 * sigma, mu + 40 * sigma
    )
    got = jaxloss.crps_gaussian(jnp.array([mu]), jnp.array([y]), scale=sigma)[0]
    np.testing.assert_allclose(got, want, rtol=1e-9)
    np.testing.assert_allclose(gaussian_value(mu, y, sigma), want, rtol=1e-9)


def test_gaussian_at_zero_scale_is_the_absolute_error_with_its_limits_as_gradient():
    mu, y = jnp.array([0.0, 1.0, 2.0]), jnp.array([1.5, 1.0, -1.0])

    def f(mu, y, s):
        return jaxloss.crps_gaussian(mu, y, scale=s).sum()

    s = jnp.zeros(3)
    np.testing.assert_array_equal(jaxloss.crps_gaussian(mu, y, scale=s), [1.5, 0.0, 3.0])
    g_mu, g_y, g_s = jax.grad(f, argnums=(0, 1, 2))(mu, y, s)
    np.testing.assert_array_equal(g_mu, [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(g_y, [1.0, 0.0, -1.0])
    c = 1 / np.sqrt(np.pi)
    np.testing.assert_allclose(g_s, [-c, 2 * stats.norm.pdf(0) - c, -c], rtol=1e-14)


def test_ensemble_identities():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 7)), rng.normal(size=4)
    std = jaxloss.crps_ensemble(x, y)
    fair = jaxloss.crps_ensemble(x, y, estimator="fair")
    np.testing.assert_allclose(std, ensemble_value(x, y), rtol=1e-13)
    np.testing.assert_allclose(fair, ensemble_value(x, y, fair=True), rtol=1e-13)
    # the probability-weighted-moment form (Taillardat et al. 2016; scoringrules' "pwm"):
    # S1 + β0 - 2β1 with β1 = Σ (i - 1) x_(i) / (M(M - 1)) is the fair score
    xs, m = np.sort(x, -1), x.shape[-1]
    pwm = (
        np.abs(x - y[:, None]).mean(-1)
        + xs.mean(-1)
        - 2 * (np.arange(m) * xs).sum(-1) / (m * (m - 1))
    )
    np.testing.assert_allclose(fair, pwm, rtol=1e-12)
    # quantile decomposition: sorted members at levels (k - 1/2)/M give the standard CRPS
    levels = (np.arange(1, 8) - 0.5) / 7
    np.testing.assert_allclose(
        jaxloss.crps_quantile(np.sort(x, -1), y, quantile_levels=levels), std, rtol=1e-13
    )
    # the energy score in one dimension is the ensemble CRPS
    np.testing.assert_allclose(jaxloss.energy_score(x[..., None], y[:, None]), std, rtol=1e-13)
    np.testing.assert_allclose(
        jaxloss.energy_score(x[..., None], y[:, None], estimator="fair"), fair, rtol=1e-13
    )
    # one member: |x - y|
    np.testing.assert_allclose(jaxloss.crps_ensemble(x[:, :1], y), np.abs(x[:, 0] - y))
    # a large sample from N(0.2, 1.3²) approaches the Gaussian closed form
    big = 0.2 + 1.3 * np.random.default_rng(1).normal(size=(1, 20000))
    np.testing.assert_allclose(
        jaxloss.crps_ensemble(big, np.array([0.5]), estimator="fair"),
        gaussian_value(0.2, 0.5, 1.3),
        atol=0.01,
    )


def test_target_gradients():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(4, 6)), rng.normal(size=4)
    g = jax.grad(lambda y: jaxloss.crps_ensemble(x, y).sum())(y)
    np.testing.assert_allclose(g, -np.sign(x - y[:, None]).mean(-1), rtol=1e-13)
    levels = np.array([0.2, 0.5, 0.7, 0.9, 0.95, 0.99])
    q = np.sort(x, -1)
    g = jax.grad(lambda y: jaxloss.crps_quantile(q, y, quantile_levels=levels).sum())(y)
    np.testing.assert_allclose(g, 2 * np.mean(levels - (y[:, None] < q), -1), rtol=1e-13)
    xe, ye = rng.normal(size=(4, 5, 3)), rng.normal(size=(4, 3))
    g = jax.grad(lambda y: jaxloss.energy_score(xe, y).sum())(ye)
    d = xe - ye[:, None]
    np.testing.assert_allclose(
        g, -np.mean(d / np.linalg.norm(d, axis=-1, keepdims=True), 1), rtol=1e-12
    )
    # coincident members: finite gradients (u(0) = 0), the closed form
    xe[:, 1] = xe[:, 0]
    g = jax.grad(lambda x: jaxloss.energy_score(x, ye).sum())(xe)
    np.testing.assert_allclose(g, energy_dx(xe, ye), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(jaxloss.energy_score(xe, ye), energy_value(xe, ye), rtol=1e-13)


def test_errors():
    x, y = np.zeros((2, 3)), np.zeros(2)
    with pytest.raises(ValueError, match=r"jaxloss\.crps_ensemble: `estimator`"):
        jaxloss.crps_ensemble(x, y, estimator="pwm")
    with pytest.raises(ValueError, match=r"jaxloss\.crps_ensemble: .*at least 2 members"):
        jaxloss.crps_ensemble(x[:, :1], y, estimator="fair")
    with pytest.raises(ValueError, match=r"jaxloss\.crps_ensemble: `targets` must have"):
        jaxloss.crps_ensemble(x, np.zeros(3))
    with pytest.raises(ValueError, match=r"jaxloss\.crps_quantile: `quantile_levels` must be"):
        jaxloss.crps_quantile(x, y, quantile_levels=np.array([0.0, 0.5, 0.9]))
    with pytest.raises(ValueError, match=r"jaxloss\.crps_quantile: `quantile_levels` must have"):
        jaxloss.crps_quantile(x, y, quantile_levels=np.array([0.5, 0.9]))
    with pytest.raises(ValueError, match=r"jaxloss\.energy_score: `predictions` must be"):
        jaxloss.energy_score(np.zeros((2, 3, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"jaxloss\.crps_gaussian: `scale` must be"):
        jaxloss.crps_gaussian(y, y, scale=np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match=r"jaxloss\.crps_gaussian: `scale` must broadcast"):
        jaxloss.crps_gaussian(y, y, scale=np.ones(3))
    v = jax.jit(lambda s: jaxloss.crps_gaussian(y, y, scale=s))(jnp.array([1.0, -1.0]))
    assert np.isfinite(v[0]) and np.isnan(v[1])  # a traced negative scale: NaN, not a number


# Properness -------------------------------------------------------------------------------------

TRUE_MU, TRUE_SIGMA = 0.3, 1.5
# (mean, scale) of the forecasts compared with the truth (first)
CANDIDATES = [
    (TRUE_MU, TRUE_SIGMA),
    (TRUE_MU + 0.3, TRUE_SIGMA),
    (TRUE_MU - 0.3, TRUE_SIGMA),
    (TRUE_MU, TRUE_SIGMA * 1.3),
    (TRUE_MU, TRUE_SIGMA / 1.3),
]


def _outcomes(n=20000, seed=10):
    return TRUE_MU + TRUE_SIGMA * np.random.default_rng(seed).normal(size=n)


def _assert_truth_wins(scores):
    scores = np.asarray(scores)
    assert np.argmin(scores) == 0, f"expected scores (truth first): {scores}"


def test_gaussian_crps_is_proper():
    y = _outcomes()
    f = jax.jit(
        jax.vmap(lambda m, s: jnp.mean(jaxloss.crps_gaussian(jnp.full_like(y, m), y, scale=s)))
    )
    mus, sigmas = np.array(CANDIDATES).T
    _assert_truth_wins(f(mus, sigmas))


def test_fair_ensemble_crps_is_proper_and_the_standard_one_favours_narrow_ensembles():
    m = 4
    y = _outcomes()
    noise = np.random.default_rng(11).normal(size=(y.size, m))  # common random numbers

    def expected(mu, sigma, estimator):
        return jnp.mean(jaxloss.crps_ensemble(mu + sigma * noise, y, estimator=estimator))

    mus, sigmas = np.array(CANDIDATES).T
    fair = jax.jit(jax.vmap(lambda a, b: expected(a, b, "fair")))(mus, sigmas)
    _assert_truth_wins(fair)
    # E[standard] = CRPS + E|X - X'|/(2M): at M = 4, a 15% narrower ensemble scores better
    narrow = jax.jit(jax.vmap(lambda a, b: expected(a, b, "standard")))(
        np.array([TRUE_MU, TRUE_MU]), np.array([TRUE_SIGMA, TRUE_SIGMA * 0.85])
    )
    assert narrow[1] < narrow[0]


def test_quantile_crps_is_proper():
    levels = np.linspace(0.05, 0.95, 10)
    y = _outcomes()

    def expected(q):
        return jnp.mean(
            jaxloss.crps_quantile(jnp.broadcast_to(q, (y.size, q.size)), y, quantile_levels=levels)
        )

    qs = np.array([stats.norm.ppf(levels, m, s) for m, s in CANDIDATES])
    _assert_truth_wins(jax.jit(jax.vmap(expected))(qs))


def test_fair_energy_score_is_proper():
    """Bivariate normal outcomes (correlation 0.6); ensembles of 5 from shifted, scaled and
    decorrelated alternatives."""
    rng = np.random.default_rng(12)
    n, m = 8000, 5
    cov = np.array([[1.0, 0.6], [0.6, 1.0]])
    chol = np.linalg.cholesky(cov)
    mean = np.array([0.3, -0.2])
    y = mean + rng.normal(size=(n, 2)) @ chol.T
    noise = rng.normal(size=(n, m, 2))

    def expected(shift, scale, factor):
        x = mean + shift + scale * noise @ factor.T
        return jnp.mean(jaxloss.energy_score(x, y, estimator="fair"))

    alternatives = [
        (np.zeros(2), 1.0, chol),
        (np.array([0.3, 0.0]), 1.0, chol),
        (np.array([0.0, -0.3]), 1.0, chol),
        (np.zeros(2), 1.3, chol),
        (np.zeros(2), 1 / 1.3, chol),
        (np.zeros(2), 1.0, np.linalg.cholesky(np.array([[1.0, -0.3], [-0.3, 1.0]]))),
    ]
    shifts = np.array([a[0] for a in alternatives])
    scales = np.array([a[1] for a in alternatives])
    factors = np.array([a[2] for a in alternatives])
    _assert_truth_wins(jax.jit(jax.vmap(expected))(shifts, scales, factors))
