"""Every "same as torch" sentence of the README, docs/migration.md and the docstrings that no
other test checks, against PyTorch's documented formula written in NumPy float64 (torch is not
a test dependency). Each reference names the torch function and the arguments it transcribes.

Checked elsewhere, not repeated here: CrossEntropyLoss / NLLLoss / BCELoss / BCEWithLogitsLoss
with every reduction, class weights, ignore_index and label smoothing, the README snippet,
linear_cross_entropy and the imbalance losses' reductions (tests/test_reduction_torch.py);
CTCLoss (tests/test_ctc.py); kl_div(log_target=True) in the distillation losses
(tests/test_fused_lm.py).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jaxloss
from tests.reference import close as _close
from tests.reference import rng_for_test

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _seed_per_test(request):
    """Each test draws its data from its own seed, whatever order the tests run in."""
    global RNG
    RNG = rng_for_test(request)


def _log_softmax(z, axis=-1):
    m = z.max(axis, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis, keepdims=True))


def _residual_pair(shape=(4, 6), scale=2.0):
    return scale * RNG.normal(size=shape), RNG.normal(size=shape)


# Regression: torch.nn.MSELoss / L1Loss / HuberLoss / SmoothL1Loss, reduction='none'


def test_squared_error_equals_torch_mse_loss():
    x, y = _residual_pair()
    _close(jaxloss.squared_error(x, y), (x - y) ** 2)  # MSELoss: (x_n - y_n)^2


def test_absolute_error_equals_torch_l1_loss():
    x, y = _residual_pair()
    _close(jaxloss.absolute_error(x, y), np.abs(x - y))  # L1Loss: |x_n - y_n|


def _torch_huber(x, y, delta):
    # HuberLoss(delta): 0.5 (x - y)^2 if |x - y| < delta, else delta (|x - y| - 0.5 delta)
    d = np.abs(x - y)
    return np.where(d < delta, 0.5 * d**2, delta * (d - 0.5 * delta))


def _torch_smooth_l1(x, y, beta):
    # SmoothL1Loss(beta): 0.5 (x - y)^2 / beta if |x - y| < beta, else |x - y| - 0.5 beta
    # (beta = 0: torch uses the L1 branch everywhere)
    d = np.abs(x - y)
    if beta == 0:
        return d
    return np.where(d < beta, 0.5 * d**2 / beta, d - 0.5 * beta)


@pytest.mark.parametrize("delta", [1.0, 0.4])
def test_huber_loss_equals_torch_huber_loss(delta):
    x, y = _residual_pair()
    _close(jaxloss.huber_loss(x, y, delta=delta), _torch_huber(x, y, delta))


@pytest.mark.parametrize("beta", [0.4, 0.0])
def test_smooth_l1_loss_equals_torch_smooth_l1_loss(beta):
    x, y = _residual_pair()
    _close(jaxloss.smooth_l1_loss(x, y, beta=beta), _torch_smooth_l1(x, y, beta))


# Divergences: torch.nn.functional.kl_div / KLDivLoss


def _torch_kl_div(inp, target, log_target=False):
    # kl_div(input, target, reduction='none'): target (log target - input), 0 where target = 0
    # (xlogy); log_target=True: exp(target) (target - input)
    if log_target:
        return np.exp(target) * (target - inp)
    safe = np.where(target > 0, target, 1.0)
    return np.where(target > 0, target * (np.log(safe) - inp), 0.0)


def test_kl_divergence_equals_torch_kl_div_summed_and_batchmean_is_jaxloss_mean():
    log_p = _log_softmax(RNG.normal(size=(5, 4)))
    t = RNG.dirichlet(np.ones(4), size=5)
    t[0, 1] = 0.0  # a zero target: torch's xlogy convention gives 0 for that term
    t[0] = t[0] / t[0].sum()
    elementwise = _torch_kl_div(log_p, t)
    values = jaxloss.kl_divergence(log_p, t)
    _close(values, elementwise.sum(-1))
    # KLDivLoss(reduction='batchmean'): the sum over all elements / batch size
    _close(jaxloss.mean(values), elementwise.sum() / log_p.shape[0])


def test_kl_divergence_with_log_targets_equals_torch_kl_div_log_target():
    log_p = _log_softmax(RNG.normal(size=(5, 4)))
    log_t = _log_softmax(RNG.normal(size=(5, 4)))
    _close(jaxloss.kl_divergence_with_log_targets(log_p, log_t),
           _torch_kl_div(log_p, log_t, log_target=True).sum(-1))


# Likelihoods: torch.nn.GaussianNLLLoss / PoissonNLLLoss, reduction='none'


def _torch_gaussian_nll(x, y, var, full, eps):
    # GaussianNLLLoss(full, eps): var clamped at eps under no_grad (straight-through),
    # 0.5 (log var + (x - y)^2 / var) [+ 0.5 log(2 pi) if full]
    v = np.maximum(var, eps)
    out = 0.5 * (np.log(v) + (x - y) ** 2 / v)
    return out + 0.5 * np.log(2 * np.pi) if full else out


@pytest.mark.parametrize(("full", "eps"), [(False, 1e-6), (True, 0.05)])
def test_gaussian_nll_equals_torch_gaussian_nll_loss_values_and_gradients(full, eps):
    x, y = _residual_pair()
    var = RNG.uniform(0.01, 2.0, size=x.shape)
    var[0, :3] = [1e-9, 0.0, 0.02]  # below the clamp (for eps = 0.05 also the last)
    _close(jaxloss.gaussian_nll(x, y, variance=var, full=full, eps=eps),
           _torch_gaussian_nll(x, y, var, full, eps))
    # torch's gradients: the clamp is made under no_grad, so d/dvar is taken at the clamped
    # value as if unclamped: 0.5 (1/v - r^2/v^2); d/dx = r / v
    g_x, g_v = jax.grad(lambda a, v: jaxloss.gaussian_nll(a, y, variance=v, full=full,
                                                          eps=eps).sum(), argnums=(0, 1))(x, var)
    v, r = np.maximum(var, eps), x - y
    _close(g_x, r / v, rtol=1e-11)
    _close(g_v, 0.5 * (1 / v - r**2 / v**2), rtol=1e-11)


def test_gaussian_nll_with_log_variance_equals_torch_gaussian_nll_loss_at_exp():
    x, y = _residual_pair()
    s = RNG.normal(size=x.shape)
    _close(jaxloss.gaussian_nll_with_log_variance(x, y, log_variance=s),
           _torch_gaussian_nll(x, y, np.exp(s), False, 1e-6))


def _torch_stirling(t):
    # PoissonNLLLoss(full=True): target log target - target + 0.5 log(2 pi target), masked to 0
    # where target <= 1
    safe = np.where(t > 1, t, 2.0)
    return np.where(t > 1, safe * np.log(safe) - safe + 0.5 * np.log(2 * np.pi * safe), 0.0)


@pytest.mark.parametrize("full", [False, True])
def test_poisson_nll_equals_torch_poisson_nll_loss_log_input(full):
    log_rate = RNG.normal(size=(4, 6))
    t = RNG.poisson(2.0, size=(4, 6)).astype(float)
    t[0, :3] = [0.0, 1.0, 7.0]
    want = np.exp(log_rate) - t * log_rate  # log_input=True: exp(input) - target * input
    if full:
        want = want + _torch_stirling(t)
    _close(jaxloss.poisson_nll(log_rate, t, full=full), want)


@pytest.mark.parametrize(("full", "eps"), [(False, 1e-8), (True, 0.1)])
def test_poisson_nll_with_rates_equals_torch_poisson_nll_loss_rates(full, eps):
    rate = RNG.uniform(0.0, 4.0, size=(4, 6))
    rate[0, 0] = 0.0
    t = RNG.poisson(2.0, size=(4, 6)).astype(float)
    want = rate - t * np.log(rate + eps)  # log_input=False: input - target * log(input + eps)
    if full:
        want = want + _torch_stirling(t)
    _close(jaxloss.poisson_nll_with_rates(rate, t, full=full, eps=eps), want)


# Margin losses: MultiMarginLoss, MarginRankingLoss, CosineEmbeddingLoss, TripletMarginLoss


@pytest.mark.parametrize("margin", [1.0, 0.3])
def test_multiclass_hinge_loss_weston_watkins_over_c_equals_torch_multi_margin_loss(margin):
    z = RNG.normal(size=(6, 5))
    y = RNG.integers(0, 5, size=6)
    # MultiMarginLoss(p=1, margin): sum_{i != y} max(0, margin - x[y] + x[i]) / C
    terms = np.maximum(0.0, margin - z[np.arange(6), y][:, None] + z)
    terms[np.arange(6), y] = 0.0
    want = terms.sum(-1) / 5
    got = jaxloss.multiclass_hinge_loss(z, y, margin=margin, kind="weston_watkins") / 5
    _close(got, want)


@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_margin_ranking_loss_equals_torch_margin_ranking_loss(margin):
    x1, x2 = RNG.normal(size=(3, 5)), RNG.normal(size=(3, 5))
    y = RNG.choice([-1.0, 1.0], size=(3, 5))
    # MarginRankingLoss(margin): max(0, -y (x1 - x2) + margin)
    _close(jaxloss.margin_ranking_loss(x1, x2, y, margin=margin),
           np.maximum(0.0, -y * (x1 - x2) + margin))


@pytest.mark.parametrize("margin", [0.0, 0.3])
def test_cosine_embedding_loss_equals_torch_cosine_embedding_loss(margin):
    e1, e2 = RNG.normal(size=(6, 4)), RNG.normal(size=(6, 4))
    y = np.array([1.0, -1.0, 1.0, -1.0, -1.0, 1.0])
    # CosineEmbeddingLoss: cos = <x1, x2> / sqrt((|x1|^2 + 1e-12)(|x2|^2 + 1e-12));
    # 1 - cos for y = 1, max(0, cos - margin) for y = -1
    cos = (e1 * e2).sum(-1) / np.sqrt(((e1**2).sum(-1) + 1e-12) * ((e2**2).sum(-1) + 1e-12))
    want = np.where(y > 0, 1 - cos, np.maximum(0.0, cos - margin))
    _close(jaxloss.cosine_embedding_loss(e1, e2, y, margin=margin), want, rtol=1e-10,
           atol=1e-12)


def _torch_pairwise_distance(u, v, p, eps=1e-6):
    # F.pairwise_distance(u, v, p, eps): || u - v + eps ||_p
    return (np.abs(u - v + eps) ** p).sum(-1) ** (1 / p)


@pytest.mark.parametrize(("p", "swap"), [(2.0, False), (1.0, False), (3.0, True), (2.0, True)])
def test_triplet_margin_loss_equals_torch_triplet_margin_loss_up_to_its_eps(p, swap):
    a, pos, neg = (RNG.normal(size=(8, 3)) for _ in range(3))
    margin = 0.7
    # TripletMarginLoss(margin, p, eps=1e-6, swap): max(d(a, p) - d(a, n) + margin, 0),
    # d(a, n) replaced by min(d(a, n), d(p, n)) with swap
    d_ap = _torch_pairwise_distance(a, pos, p)
    d_an = _torch_pairwise_distance(a, neg, p)
    if swap:
        d_an = np.minimum(d_an, _torch_pairwise_distance(pos, neg, p))
    want = np.maximum(d_ap - d_an + margin, 0.0)
    got = jaxloss.triplet_margin_loss(a, pos, neg, margin=margin, p=p, swap=swap)
    # torch's eps = 1e-6 inside the norm is the only difference (here at most a few 1e-6)
    _close(got, want, rtol=0, atol=1e-5)
    # with that eps removed from torch's formula, the values agree to rounding
    d_ap0 = _torch_pairwise_distance(a, pos, p, 0.0)
    d_an0 = _torch_pairwise_distance(a, neg, p, 0.0)
    if swap:
        d_an0 = np.minimum(d_an0, _torch_pairwise_distance(pos, neg, p, 0.0))
    _close(got, np.maximum(d_ap0 - d_an0 + margin, 0.0), rtol=1e-11, atol=1e-12)


# Classification relatives


@pytest.mark.parametrize(("alpha", "gamma"), [(None, 2.0), (0.25, 0.0), (0.8, 1.3)])
def test_sigmoid_focal_loss_equals_torchvision_sigmoid_focal_loss(alpha, gamma):
    x = 3 * RNG.normal(size=(4, 5))
    t = RNG.integers(0, 2, size=(4, 5)).astype(float)
    t[0] = RNG.uniform(size=5)  # soft labels: torchvision's mixture p_t
    # torchvision.ops.sigmoid_focal_loss(inputs, targets, alpha, gamma, reduction='none'):
    # p = sigmoid(x); ce = BCE-with-logits; p_t = p t + (1 - p)(1 - t);
    # loss = ce (1 - p_t)^gamma; alpha >= 0: loss *= alpha t + (1 - alpha)(1 - t)
    # (alpha = -1 for no weighting, jaxloss's None)
    p = 1 / (1 + np.exp(-x))
    ce = np.logaddexp(0.0, x) - t * x
    p_t = p * t + (1 - p) * (1 - t)
    want = ce * (1 - p_t) ** gamma
    if alpha is not None:
        want = want * (alpha * t + (1 - alpha) * (1 - t))
    _close(jaxloss.sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma), want, rtol=1e-10)


@pytest.mark.parametrize("tau", [1.0, 0.6])
def test_logit_adjusted_cross_entropy_equals_torch_cross_entropy_of_adjusted_logits(tau):
    z = RNG.normal(size=(6, 4))
    y = RNG.integers(0, 4, size=6)
    priors = np.array([0.5, 0.3, 0.15, 0.05])
    # CrossEntropyLoss(reduction='none')(logits + tau * log(priors), y)
    want = -_log_softmax(z + tau * np.log(priors))[np.arange(6), y]
    _close(jaxloss.logit_adjusted_cross_entropy(z, y, class_priors=priors, tau=tau), want)
    # raw counts in place of priors: the same (a constant shift of every logit)
    _close(jaxloss.logit_adjusted_cross_entropy(z, y, class_priors=priors * 40, tau=tau), want)


def test_class_balanced_cross_entropy_none_equals_torch_weighted_cross_entropy():
    z = RNG.normal(size=(6, 4))
    y = RNG.integers(0, 4, size=6)
    counts = np.array([50.0, 20.0, 5.0, 1.0])
    beta = 0.99
    w = (1 - beta) / (1 - beta**counts)
    w = w * 4 / w.sum()  # effective-number weights summing to C
    # CrossEntropyLoss(weight=w, reduction='none'): -w[y] log_softmax(z)[y]
    want = -w[y] * _log_softmax(z)[np.arange(6), y]
    _close(jaxloss.class_balanced_cross_entropy(z, y, samples_per_class=counts, beta=beta),
           want)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_token_log_probs_equal_torch_log_softmax_gather_and_entropy(temperature):
    z = RNG.normal(size=(3, 4, 7))
    y = RNG.integers(0, 7, size=(3, 4))
    # log_softmax(z / T, -1).gather(-1, y[..., None]); entropy -(p * log p).sum(-1)
    lp = _log_softmax(z / temperature)
    lp_y = np.take_along_axis(lp, y[..., None], -1)[..., 0]
    entropy = -(np.exp(lp) * lp).sum(-1)
    got, got_entropy = jaxloss.token_log_probs(z, y, temperature=temperature,
                                               return_entropy=True)
    _close(got, lp_y)
    _close(got_entropy, entropy)



def _torch_weighted_ce_mean(z, y, w, eps):
    # CrossEntropyLoss(weight=w, label_smoothing=eps, reduction='mean'), class-index targets:
    # [(1 - eps) sum_n -w[y_n] logp[n, y_n] + (eps / C) sum_n sum_c -w[c] logp[n, c]]
    #   / sum_n w[y_n]
    lp = _log_softmax(z)
    n, c = z.shape
    nll = -(w[y] * lp[np.arange(n), y]).sum()
    smooth = -(w * lp).sum()
    return ((1 - eps) * nll + eps / c * smooth) / w[y].sum()


def test_class_weighted_mean_is_torch_weighted_cross_entropy_only_without_smoothing():
    """docs/integrations/flax-linen.md: jaxloss.mean(ce, weights=w[labels]) is torch's
    CrossEntropyLoss(weight=w) for unsmoothed values; with label smoothing torch's number is
    class_weights=w with reduction="mean" instead."""
    z = RNG.normal(size=(8, 3))
    y = RNG.integers(0, 3, size=8)
    w = np.array([0.4, 2.0, 5.0])
    ce = jaxloss.softmax_cross_entropy_with_integer_labels
    _close(jaxloss.mean(ce(z, y), weights=w[y]), _torch_weighted_ce_mean(z, y, w, 0.0))
    smoothed = jaxloss.mean(ce(z, y, label_smoothing=0.05), weights=w[y])
    torch_smoothed = _torch_weighted_ce_mean(z, y, w, 0.05)
    assert abs(float(smoothed) - torch_smoothed) > 1e-4
    _close(ce(z, y, class_weights=w, label_smoothing=0.05, reduction="mean"), torch_smoothed)


def test_embedding_normalisation_equals_torch_normalize_and_is_finite_at_zero():
    """jaxloss/_core/embeddings.py (used by the cosine and contrastive losses): x / max(‖x‖₂,
    eps), as torch.nn.functional.normalize(x, p=2, dim=-1, eps=eps)."""
    from jaxloss._core.embeddings import normalize

    x = RNG.normal(size=(4, 3))
    x[1] = 0.0
    x[2] = 1e-9 * np.array([3.0, 4.0, 0.0])  # below eps: divided by eps, not by its norm
    eps = 1e-8
    want = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)
    _close(normalize(x, eps), want)
    jac = jax.jacfwd(lambda v: normalize(v, eps))(np.zeros(3))
    _close(jac, np.eye(3) / eps)
