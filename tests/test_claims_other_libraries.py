"""The equivalences with libraries other than optax, PyTorch and Keras that the docstrings and
docs/migration.md state and no other test checks: scikit-learn (called directly), scipy's and
statsmodels' robust-regression conventions, kornia's robust losses, mmpose's Wing losses and
MONAI's generalized Dice, each against that library's formula in NumPy float64, citing the
function and arguments it transcribes.

Checked elsewhere: scipy's jensenshannon (tests/test_overlap.py), scikit-learn's ndcg_score
(tests/test_ranking.py), scoringrules / properscoring (tests/test_scoring.py and
tests/cases/scoring.py), Berman's and smp's Lovász losses (tests/test_lovasz.py), the official
LDAM and ASL code (tests/test_imbalance.py), entmax (tests/test_fenchel_young.py), TRL
(tests/cases/preference.py, tests/cases/policy_gradient.py, tests/test_post_training.py,
tests/test_fused_lm.py), rax (tests/cases/ranking.py, tests/test_ranking.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_percentage_error, mean_pinball_loss

import jaxloss
from tests.reference import close as _close
from tests.reference import rng_for_test

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _seed_per_test(request):
    """Each test draws its data from its own seed, whatever order the tests run in."""
    global RNG
    RNG = rng_for_test(request)


def _pair(n=12, scale=6.0):
    return scale * RNG.normal(size=n), RNG.normal(size=n)


# scikit-learn (called directly)


@pytest.mark.parametrize("tau", [0.1, 0.5, 0.9])
def test_pinball_loss_mean_equals_sklearn_mean_pinball_loss(tau):
    p, t = _pair()
    _close(jaxloss.mean(jaxloss.pinball_loss(p, t, tau=tau)),
           mean_pinball_loss(t, p, alpha=tau))


def test_absolute_percentage_error_mean_equals_sklearn_mape_with_its_epsilon():
    p, t = _pair()
    t[0] = 0.0  # sklearn divides by max(|y|, float64 machine epsilon)
    eps = np.finfo(np.float64).eps
    _close(jaxloss.mean(jaxloss.absolute_percentage_error(p, t, eps=eps)),
           mean_absolute_percentage_error(t, p))


# kornia.losses (reduction='none'), scipy.optimize.least_squares, statsmodels


def test_robust_losses_at_unit_scale_equal_kornia():
    x, y = _pair()
    r2 = (x - y) ** 2
    # charbonnier_loss: sqrt((x - y)^2 + 1) - 1;  cauchy_loss: log(0.5 (x - y)^2 + 1);
    # geman_mcclure_loss: 2 (x - y)^2 / ((x - y)^2 + 4);  welsch_loss: 1 - exp(-0.5 (x - y)^2)
    _close(jaxloss.charbonnier_loss(x, y, delta=1.0), np.sqrt(r2 + 1) - 1)
    _close(jaxloss.cauchy_loss(x, y, scale=1.0), np.log(0.5 * r2 + 1))
    _close(jaxloss.geman_mcclure_loss(x, y, scale=1.0), 2 * r2 / (r2 + 4))
    _close(jaxloss.welsch_loss(x, y, scale=1.0), 1 - np.exp(-0.5 * r2))


@pytest.mark.parametrize("c", [0.5, 2.0])
def test_charbonnier_conventions_in_terms_of_delta(c):
    x, y = _pair()
    r = x - y
    # Barron's alpha = 1 member: sqrt((r/c)^2 + 1) - 1 = l(delta=c) / c^2
    _close(jaxloss.charbonnier_loss(x, y, delta=c) / c**2, np.sqrt((r / c) ** 2 + 1) - 1)
    # the image-restoration form sqrt(r^2 + eps^2) = l(delta=eps) / eps + eps
    _close(jaxloss.charbonnier_loss(x, y, delta=c) / c + c, np.sqrt(r**2 + c**2))


@pytest.mark.parametrize("c", [0.7, 3.0])
def test_cauchy_loss_rescaled_equals_scipy_least_squares_cauchy(c):
    x, y = _pair()
    # scipy.optimize.least_squares(loss='cauchy', f_scale=c): each residual contributes
    # 0.5 c^2 rho((r/c)^2) with rho(z) = log(1 + z)
    want = 0.5 * c**2 * np.log1p(((x - y) / c) ** 2)
    _close(0.5 * c**2 * jaxloss.cauchy_loss(x, y, scale=c / np.sqrt(2)), want)


@pytest.mark.parametrize("c", [4.685, 1.5])
def test_tukey_biweight_loss_equals_statsmodels_tukey_biweight_rho(c):
    x, y = _pair()
    z = x - y
    # statsmodels.robust.norms.TukeyBiweight(c).rho(z):
    # c^2/6 (1 - (1 - (z/c)^2)^3) for |z| <= c, c^2/6 beyond
    inside = np.abs(z) <= c
    want = np.where(inside, c**2 / 6 * (1 - (1 - (z / c) ** 2) ** 3), c**2 / 6)
    assert inside.any() and (~inside).any()
    _close(jaxloss.tukey_biweight_loss(x, y, scale=c), want)


# mmpose (torch): WingLoss and AdaptiveWingLoss


def test_wing_loss_summed_per_sample_and_averaged_equals_mmpose_wing_loss():
    pred, target = RNG.normal(size=(3, 5, 2)) * 8, RNG.normal(size=(3, 5, 2))
    omega, epsilon = 10.0, 2.0
    # mmpose WingLoss(omega, epsilon).criterion: delta = |target - pred|,
    # where(delta < omega, omega log(1 + delta/epsilon), delta - C),
    # C = omega - omega log(1 + omega/epsilon); mean over N of the sum over (K, D)
    delta = np.abs(target - pred)
    big_c = omega - omega * np.log(1 + omega / epsilon)
    losses = np.where(delta < omega, omega * np.log1p(delta / epsilon), delta - big_c)
    want = np.mean(np.sum(losses, axis=(1, 2)), axis=0)
    got = jaxloss.mean(jaxloss.wing_loss(pred, target, omega=omega, epsilon=epsilon).sum((1, 2)))
    _close(got, want)


def test_adaptive_wing_loss_mean_equals_mmpose_adaptive_wing_loss():
    target = RNG.uniform(size=(2, 3, 4, 4))  # heatmaps in [0, 1]
    pred = target + 0.8 * RNG.normal(size=target.shape)
    omega, theta, epsilon, alpha = 14.0, 0.5, 1.0, 2.1
    # mmpose AdaptiveWingLoss(alpha, omega, epsilon, theta).criterion: delta = |target - pred|,
    # A = omega / (1 + (theta/epsilon)^(alpha - y)) (alpha - y) (theta/epsilon)^(alpha - y - 1)
    #     / epsilon,  C = theta A - omega log(1 + (theta/epsilon)^(alpha - y)),
    # where(delta < theta, omega log(1 + (delta/epsilon)^(alpha - y)), A delta - C), mean
    y = target
    delta = np.abs(target - pred)
    a = (omega / (1 + (theta / epsilon) ** (alpha - y)) * (alpha - y)
         * (theta / epsilon) ** (alpha - y - 1) / epsilon)
    c = theta * a - omega * np.log1p((theta / epsilon) ** (alpha - y))
    losses = np.where(delta < theta, omega * np.log1p((delta / epsilon) ** (alpha - y)),
                      a * delta - c)
    got = jaxloss.mean(jaxloss.adaptive_wing_loss(pred, target, omega=omega, theta=theta,
                                                  epsilon=epsilon, alpha=alpha))
    _close(got, np.mean(losses), rtol=1e-11)


# MONAI GeneralizedDiceLoss (batch=False, w_type="square")


def test_generalized_dice_loss_smooth_0_equals_monai_generalized_dice_loss():
    p = RNG.dirichlet(np.ones(3), size=(2, 4, 4))  # [B, H, W, C]
    t = np.eye(3)[RNG.integers(0, 2, size=(2, 4, 4))]  # class 2 absent from every image
    # MONAI (classes first; here last): per example, over the spatial axes,
    # TP_c = sum t p, T_c = sum t, P_c = sum p, w_c = 1 / T_c^2, an infinite w_c (absent
    # class) replaced by the example's largest finite w; with smooth_nr = smooth_dr = 0:
    # 1 - 2 sum_c w_c TP_c / sum_c w_c (T_c + P_c)
    tp, tt, pp = (t * p).sum((1, 2)), t.sum((1, 2)), p.sum((1, 2))
    with np.errstate(divide="ignore"):
        w = 1 / tt**2
    inf = np.isinf(w)
    w[inf] = 0.0
    w = w + inf * w.max(1, keepdims=True)
    want = 1 - 2 * (w * tp).sum(1) / (w * (tt + pp)).sum(1)
    _close(jaxloss.generalized_dice_loss(p, t, num_spatial_dims=2, smooth=0.0), want)


# dopamine's IQN loss and the IQL value loss


@pytest.mark.parametrize("kappa", [1.0, 0.5])
def test_quantile_huber_loss_equals_dopamine_iqn_quantile_huber_loss(kappa):
    pred, target = 2 * RNG.normal(size=(6, 4)), RNG.normal(size=6)  # 4 quantile levels
    tau = RNG.uniform(size=4)
    # dopamine ImplicitQuantileAgent: u = target - prediction (its bellman_errors) for each
    # predicted quantile tau, huber = 0.5 u^2 if |u| <= kappa else kappa (|u| - 0.5 kappa),
    # loss = |tau - 1{u < 0}| huber / kappa
    u = target[:, None] - pred
    huber = np.where(np.abs(u) <= kappa, 0.5 * u**2, kappa * (np.abs(u) - 0.5 * kappa))
    want = np.abs(tau - (u < 0)) * huber / kappa
    _close(jaxloss.quantile_huber_loss(pred, target, tau=tau, delta=kappa), want)


@pytest.mark.parametrize("tau", [0.7, 0.9])
def test_expectile_loss_equals_the_iql_value_loss(tau):
    pred, target = _pair()
    # IQL (Kostrikov et al.'s code): diff = target - prediction,
    # where(diff > 0, expectile, 1 - expectile) * diff**2
    diff = target - pred
    want = np.where(diff > 0, tau, 1 - tau) * diff**2
    _close(jaxloss.expectile_loss(pred, target, tau=tau), want)
