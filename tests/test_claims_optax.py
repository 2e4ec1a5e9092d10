"""Every "same as optax" sentence of the README, docs/migration.md and the docstrings, checked
by calling optax on the same inputs (optax is a test dependency).

The equivalences already checked next to their losses are not repeated here:
multiclass_sparsemax_loss, sparsemax_loss, perceptron losses, fenchel_young_loss, sparsemax
(tests/test_fenchel_young.py); sigmoid_focal_loss, poly1_cross_entropy (tests/test_imbalance.py);
ranking_softmax_loss (tests/test_ranking.py); ctc_loss (tests/test_ctc.py); dice_loss
(tests/test_overlap.py); info_nce_loss and ``ntxent``, optax's triplet_margin_loss without
the absolute value (tests/test_metric.py).
"""

from __future__ import annotations

import jax
import numpy as np
import optax
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


# Regression


def test_squared_error_equals_optax_squared_error_and_twice_l2_loss():
    p, t = RNG.normal(size=(3, 5)), RNG.normal(size=(3, 5))
    _close(jaxloss.squared_error(p, t), optax.losses.squared_error(p, t))
    # "optax's l2_loss is half of this"
    _close(jaxloss.squared_error(p, t), 2 * optax.losses.l2_loss(p, t))


@pytest.mark.parametrize("delta", [1.0, 0.3, 2.5])
def test_huber_loss_equals_optax_huber_loss(delta):
    p, t = 2 * RNG.normal(size=(4, 6)), RNG.normal(size=(4, 6))
    _close(jaxloss.huber_loss(p, t, delta=delta), optax.losses.huber_loss(p, t, delta=delta))


def test_log_cosh_equals_optax_log_cosh():
    p, t = 3 * RNG.normal(size=(4, 6)), RNG.normal(size=(4, 6))
    _close(jaxloss.log_cosh(p, t), optax.losses.log_cosh(p, t))


# Classification and divergences


def test_sigmoid_binary_cross_entropy_equals_optax():
    x = 3 * RNG.normal(size=(4, 5))
    for t in (RNG.integers(0, 2, size=(4, 5)).astype(float), RNG.uniform(size=(4, 5))):
        _close(jaxloss.sigmoid_binary_cross_entropy(x, t),
               optax.losses.sigmoid_binary_cross_entropy(x, t))


def test_softmax_cross_entropy_equals_optax_with_and_without_where():
    z = 2 * RNG.normal(size=(4, 6))
    where = np.ones((4, 6), bool)
    where[:, 4:] = False
    q = RNG.dirichlet(np.ones(6), size=4)
    q_masked = np.zeros((4, 6))
    q_masked[:, :4] = RNG.dirichlet(np.ones(4), size=4)
    _close(jaxloss.softmax_cross_entropy(z, q), optax.losses.softmax_cross_entropy(z, q))
    _close(jaxloss.softmax_cross_entropy(z, q_masked, where=where),
           optax.losses.softmax_cross_entropy(z, q_masked, where=where))


def test_softmax_cross_entropy_with_integer_labels_equals_optax_with_and_without_where():
    z = 2 * RNG.normal(size=(5, 6))
    y = RNG.integers(0, 4, size=5)
    where = np.ones((5, 6), bool)
    where[:, 4:] = False
    ours = jaxloss.softmax_cross_entropy_with_integer_labels
    theirs = optax.losses.softmax_cross_entropy_with_integer_labels
    _close(ours(z, y), theirs(z, y))
    _close(ours(z, y, where=where), theirs(z, y, where=where))


def test_kl_divergence_equals_optax_kl_divergence():
    log_p = jax.nn.log_softmax(RNG.normal(size=(4, 5)))
    t = RNG.dirichlet(np.ones(5), size=4)
    _close(jaxloss.kl_divergence(log_p, t), optax.losses.kl_divergence(log_p, t))


def test_kl_divergence_with_log_targets_equals_optax():
    log_p = jax.nn.log_softmax(RNG.normal(size=(4, 5)))
    log_t = jax.nn.log_softmax(RNG.normal(size=(4, 5)))
    _close(jaxloss.kl_divergence_with_log_targets(log_p, log_t),
           optax.losses.kl_divergence_with_log_targets(log_p, log_t))


# Margin losses


def test_hinge_loss_equals_optax_hinge_loss_at_margin_1():
    s = 2 * RNG.normal(size=(4, 5))
    y = RNG.choice([-1.0, 1.0], size=(4, 5))
    _close(jaxloss.hinge_loss(s, y), optax.losses.hinge_loss(s, y))


def test_multiclass_hinge_loss_crammer_singer_equals_optax_at_margin_1():
    z = RNG.normal(size=(7, 5))
    y = RNG.integers(0, 5, size=7)
    _close(jaxloss.multiclass_hinge_loss(z, y, kind="crammer_singer"),
           optax.losses.multiclass_hinge_loss(z, y))


def test_cosine_embedding_loss_of_similar_pairs_equals_one_minus_optax_cosine_similarity():
    e1, e2 = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3))
    _close(jaxloss.cosine_embedding_loss(e1, e2, np.ones(4)),
           1 - optax.losses.cosine_similarity(e1, e2), rtol=1e-10)


# Overlap losses (optax's dice_loss: (TP + s) / (TP + α FP + β FN + s), classes last; its
# `axis` given explicitly as the spatial axes, apply_softmax=False, reduction="none")


def _overlap_data():
    p = jax.nn.softmax(RNG.normal(size=(2, 3, 4, 3)), axis=-1)  # [B, H, W, C]
    t = jax.nn.one_hot(RNG.integers(0, 3, size=(2, 3, 4)), 3)
    return np.asarray(p), np.asarray(t)


@pytest.mark.parametrize(("alpha", "beta"), [(0.3, 0.7), (0.5, 0.5), (0.8, 0.1)])
def test_tversky_loss_equals_optax_dice_loss_with_alpha_beta(alpha, beta):
    p, t = _overlap_data()
    for average, reduction in (("none", "none"), ("macro", "mean")):
        got = jaxloss.tversky_loss(p, t, num_spatial_dims=2, alpha=alpha, beta=beta,
                                   smooth=0.7, average=average)
        want = optax.losses.dice_loss(p, t, alpha=alpha, beta=beta, smooth=0.7,
                                      apply_softmax=False, reduction=reduction, axis=(1, 2))
        _close(got, want)


def test_jaccard_loss_equals_optax_dice_loss_with_alpha_beta_1():
    p, t = _overlap_data()
    for average, reduction in (("none", "none"), ("macro", "mean")):
        got = jaxloss.jaccard_loss(p, t, num_spatial_dims=2, smooth=0.7, average=average)
        want = optax.losses.dice_loss(p, t, alpha=1.0, beta=1.0, smooth=0.7,
                                      apply_softmax=False, reduction=reduction, axis=(1, 2))
        _close(got, want)


def test_dice_loss_macro_equals_optax_dice_loss_mean_over_classes():
    p, t = _overlap_data()
    got = jaxloss.dice_loss(p, t, num_spatial_dims=2, smooth=0.7)
    want = optax.losses.dice_loss(p, t, smooth=0.7, apply_softmax=False, axis=(1, 2))
    _close(got, want)



def test_kl_divergence_target_gradient_is_finite_where_optax_gives_nan():
    """docs/migration.md: "finite gradient at zero targets (optax gives NaN)"."""
    log_p = jax.nn.log_softmax(np.array([0.3, -1.0, 2.0]))
    t = np.array([0.5, 0.0, 0.5])
    _close(jaxloss.kl_divergence(log_p, t), optax.losses.kl_divergence(log_p, t))
    theirs = jax.grad(lambda q: optax.losses.kl_divergence(log_p, q))(t)
    ours = jax.grad(lambda q: jaxloss.kl_divergence(log_p, q))(t)
    assert np.isnan(theirs[1]) and np.all(np.isfinite(ours))
    # where the target is positive the two gradients agree: log t + 1 - log p
    _close(np.asarray(ours)[[0, 2]], np.asarray(theirs)[[0, 2]])
    _close(ours[1], -log_p[1])  # at t = 0: d(t log t)/dt taken as 0
