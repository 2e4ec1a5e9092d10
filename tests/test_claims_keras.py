"""Every "same as Keras" sentence of the README, docs/migration.md and the docstrings, against
Keras 3's formula (keras/src/losses/losses.py) written in NumPy float64 (Keras is not a test
dependency). Keras takes ``(y_true, y_pred)`` and its functional losses average the last axis;
each reference below does the same and names the Keras function and arguments it transcribes.
keras.backend.epsilon() is 1e-7.

Checked elsewhere: mean_absolute_percentage_error and mean_squared_logarithmic_error
(tests/test_relative.py).
"""

from __future__ import annotations

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
EPS = 1e-7  # keras.backend.epsilon()


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# Regression: keras.losses.mean_squared_error / mean_absolute_error / huber / log_cosh, each
# mean(..., axis=-1) of the elementwise loss


def test_regression_losses_averaged_over_the_last_axis_equal_keras():
    y_pred, y_true = 2 * RNG.normal(size=(3, 5)), RNG.normal(size=(3, 5))
    err = y_pred - y_true
    delta = 0.8
    keras = {
        "squared_error": np.mean(np.square(y_true - y_pred), -1),
        "absolute_error": np.mean(np.abs(y_true - y_pred), -1),
        "log_cosh": np.mean(err + np.logaddexp(0.0, -2 * err) - np.log(2.0), -1),
        "huber_loss": np.mean(np.where(np.abs(err) <= delta, 0.5 * err**2,
                                       delta * np.abs(err) - 0.5 * delta**2), -1),
    }
    for name, want in keras.items():
        kw = {"delta": delta} if name == "huber_loss" else {}
        _close(getattr(jaxloss, name)(y_pred, y_true, **kw).mean(-1), want)


def test_poisson_nll_with_rates_eps_1e7_is_the_summand_of_keras_poisson():
    y_pred = RNG.uniform(0.0, 3.0, size=(3, 5))
    y_true = RNG.poisson(1.5, size=(3, 5)).astype(float)
    # keras.losses.poisson: mean(y_pred - y_true * log(y_pred + epsilon), axis=-1)
    want = np.mean(y_pred - y_true * np.log(y_pred + EPS), -1)
    _close(jaxloss.poisson_nll_with_rates(y_pred, y_true, eps=EPS).mean(-1), want)


# Margin losses: keras.losses.hinge / squared_hinge / categorical_hinge


def test_hinge_and_squared_hinge_equal_keras_per_element():
    y_pred = 2 * RNG.normal(size=(3, 5))
    y_true = RNG.choice([-1.0, 1.0], size=(3, 5))
    # hinge: mean(maximum(1 - y_true * y_pred, 0), -1); squared_hinge: the same squared
    h = np.maximum(1.0 - y_true * y_pred, 0.0)
    _close(jaxloss.hinge_loss(y_pred, y_true).mean(-1), h.mean(-1))
    _close(jaxloss.squared_hinge_loss(y_pred, y_true).mean(-1), (h**2).mean(-1))


def test_multiclass_hinge_crammer_singer_equals_keras_categorical_hinge_where_stated():
    z = RNG.normal(size=(40, 4))
    y = RNG.integers(0, 4, size=40)
    onehot = np.eye(4)[y]
    # categorical_hinge: pos = sum(y_true * y_pred), neg = max((1 - y_true) * y_pred),
    # maximum(neg - pos + 1, 0)
    keras = np.maximum(((1 - onehot) * z).max(-1) - (onehot * z).sum(-1) + 1.0, 0.0)
    ours = np.asarray(jaxloss.multiclass_hinge_loss(z, y))
    stated = np.where(onehot > 0, -np.inf, z).max(-1) >= 0  # max_{c != y} z_c >= 0
    assert stated.any() and (~stated).any()
    _close(ours[stated], keras[stated])
    # elsewhere Keras's max picks up the 0 of the true class: it can only be larger
    assert np.all(keras[~stated] >= ours[~stated] - 1e-12)


# Classification


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_sigmoid_binary_cross_entropy_equals_keras_binary_crossentropy_from_logits(
        label_smoothing):
    x = 3 * RNG.normal(size=(3, 5))
    t = RNG.integers(0, 2, size=(3, 5)).astype(float)
    # binary_crossentropy(from_logits=True, label_smoothing=ε): labels t(1 - ε) + ε/2, then the
    # logits form max(x, 0) - x t + log(1 + exp(-|x|)), mean over the last axis
    ts = t * (1 - label_smoothing) + 0.5 * label_smoothing
    want = np.mean(np.maximum(x, 0) - x * ts + np.log1p(np.exp(-np.abs(x))), -1)
    got = jaxloss.sigmoid_binary_cross_entropy(x, t, label_smoothing=label_smoothing)
    _close(got.mean(-1), want)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.15])
def test_softmax_cross_entropy_equals_keras_categorical_crossentropy_from_logits(
        label_smoothing):
    z = 2 * RNG.normal(size=(5, 4))
    q = np.eye(4)[RNG.integers(0, 4, size=5)]
    # categorical_crossentropy(from_logits=True, label_smoothing=ε): y (1 - ε) + ε / C, then
    # -sum(y * log_softmax(z))
    qs = q * (1 - label_smoothing) + label_smoothing / 4
    want = -(qs * np.log(_softmax(z))).sum(-1)
    _close(jaxloss.softmax_cross_entropy(z, q, label_smoothing=label_smoothing), want)


def test_integer_label_cross_entropy_equals_keras_sparse_categorical_crossentropy():
    z = 2 * RNG.normal(size=(6, 4))
    y = RNG.integers(0, 4, size=6)
    y[2] = -1
    # sparse_categorical_crossentropy(from_logits=True, ignore_class=-1): -log_softmax(z)[y],
    # 0 where y == ignore_class
    lp = np.log(_softmax(z))
    want = np.where(y == -1, 0.0, -lp[np.arange(6), np.where(y == -1, 0, y)])
    got = jaxloss.softmax_cross_entropy_with_integer_labels(z, y, ignore_index=-1)
    _close(got, want)


@pytest.mark.parametrize("gamma", [0.0, 2.0, 0.7])
def test_softmax_focal_loss_equals_keras_categorical_focal_crossentropy(gamma):
    z = 1.5 * RNG.normal(size=(6, 4))
    y = RNG.integers(0, 4, size=6)
    alpha = np.array([0.1, 0.4, 0.25, 0.9])
    # categorical_focal_crossentropy(one-hot y, z, alpha=[C], gamma, from_logits=True):
    # p = clip(softmax(z), eps, 1 - eps); sum(alpha (1 - p)^gamma (-y log p), -1)
    p = np.clip(_softmax(z), EPS, 1 - EPS)
    onehot = np.eye(4)[y]
    want = (alpha * (1 - p) ** gamma * (-onehot * np.log(p))).sum(-1)
    _close(jaxloss.softmax_focal_loss(z, y, alpha=alpha, gamma=gamma), want)


@pytest.mark.parametrize("q", [0.5, 0.7, 0.2])
def test_generalized_cross_entropy_equals_keras_on_the_softmax_of_the_logits(q):
    z = RNG.normal(size=(6, 4))
    y = RNG.integers(0, 4, size=6)
    # categorical_generalized_cross_entropy(y_true=integer labels, y_pred=probabilities, q):
    # (1 - p_y^q) / q, here with y_pred = softmax(logits)
    p_y = _softmax(z)[np.arange(6), y]
    _close(jaxloss.generalized_cross_entropy(z, y, q=q), (1 - p_y**q) / q)


@pytest.mark.parametrize(("alpha", "gamma"), [(0.25, 2.0), (0.7, 0.0), (0.5, 1.3)])
def test_sigmoid_focal_loss_equals_keras_binary_focal_crossentropy_with_class_balancing(
        alpha, gamma):
    x = 2 * RNG.normal(size=(3, 5))
    t = RNG.integers(0, 2, size=(3, 5)).astype(float)
    # binary_focal_crossentropy(apply_class_balancing=True, alpha, gamma, from_logits=True):
    # p = sigmoid(x), bce on clip(p, eps, 1 - eps), p_t = t p + (1 - t)(1 - p),
    # (alpha t + (1 - alpha)(1 - t)) (1 - p_t)^gamma bce, mean over the last axis
    p = _sigmoid(x)
    pc = np.clip(p, EPS, 1 - EPS)
    bce = -(t * np.log(pc) + (1 - t) * np.log(1 - pc))
    p_t = t * p + (1 - t) * (1 - p)
    want = np.mean((alpha * t + (1 - alpha) * (1 - t)) * (1 - p_t) ** gamma * bce, -1)
    got = jaxloss.sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma).mean(-1)
    _close(got, want, rtol=1e-10)


# Overlap: keras.losses.dice / tversky (no smoothing; epsilon in the denominator only;
# axis=None pools every axis)


def _overlap_data():
    p = _softmax(RNG.normal(size=(1, 4, 5, 2)))
    t = np.eye(2)[RNG.integers(0, 2, size=(1, 4, 5))]
    return p, t


def test_dice_loss_smooth_0_equals_keras_dice_up_to_its_epsilon():
    p, t = _overlap_data()
    # dice(y_true, y_pred, axis=None): 1 - 2 sum(y_true y_pred) / (sum(y_true) + sum(y_pred) + eps)
    want = 1 - 2 * (t * p).sum() / (t.sum() + p.sum() + EPS)
    got = jaxloss.dice_loss(p, t, num_spatial_dims=3, smooth=0.0, average="micro")
    _close(got, want, rtol=1e-7)


@pytest.mark.parametrize(("alpha", "beta"), [(0.3, 0.7), (0.5, 0.5), (0.9, 0.2)])
def test_tversky_loss_smooth_0_equals_keras_tversky_up_to_its_epsilon(alpha, beta):
    p, t = _overlap_data()
    # tversky(y_true, y_pred, alpha, beta, axis=None) with alpha on the false positives (as
    # documented; keras-team/keras#23333 made the code agree):
    # 1 - TP / (TP + alpha FP + beta FN + eps)
    tp, fp, fn = (t * p).sum(), ((1 - t) * p).sum(), (t * (1 - p)).sum()
    want = 1 - tp / (tp + alpha * fp + beta * fn + EPS)
    got = jaxloss.tversky_loss(p, t, num_spatial_dims=3, alpha=alpha, beta=beta, smooth=0.0,
                               average="micro")
    _close(got, want, rtol=1e-7)
