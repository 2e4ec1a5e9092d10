"""Demo experiment 1: long-tailed digits (imbalanced classification, one expensive confusion)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxloss

from ._demo_training import (
    F32,
    Batch,
    ExperimentResult,
    Method,
    Params,
    apply,
    dense,
    run_methods,
    value_and_grad,
)
from ._extras import require

__all__ = ["imbalanced_digits"]


DIGITS_HEAD_COUNT = 90  # training examples of the most frequent class
DIGITS_TAIL_COUNT = 3  # ... and of the rarest; counts fall geometrically in between
DIGITS_TEST_PER_CLASS = 80
DIGITS_HIDDEN = 64
DIGITS_RARE = 3  # minority recall = mean recall of this many rarest classes
FOCAL_GAMMA = 2.0
LOGIT_ADJUST_TAU = 1.0
# One expensive confusion: reading a true 1 as an 8 (the confusion cross-entropy makes most often
# on these splits) costs COSTLY_FACTOR; every other mistake costs 1.
COSTLY_TRUE, COSTLY_PREDICTED = 1, 8
COSTLY_FACTOR = 10.0


def _cost_matrix(num_classes: int) -> np.ndarray:
    """M[true, predicted]: 0 on the diagonal, 1 off it, COSTLY_FACTOR for the expensive one."""
    m = 1.0 - np.eye(num_classes)
    m[COSTLY_TRUE, COSTLY_PREDICTED] = COSTLY_FACTOR
    return m


def _long_tail_counts(num_classes: int) -> np.ndarray:
    ratio = DIGITS_TAIL_COUNT / DIGITS_HEAD_COUNT
    exponents = np.arange(num_classes) / (num_classes - 1)
    return np.round(DIGITS_HEAD_COUNT * ratio**exponents).astype(np.int64)


def _digits_split(
    x: np.ndarray, y: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Balanced held-out set; long-tailed training set. Returns x/y train, x/y test, counts[c]."""
    rng = np.random.default_rng([1, seed])
    num_classes = int(y.max()) + 1
    tail_order = rng.permutation(num_classes)  # tail_order[k] = the class with the k-th count
    counts = np.zeros(num_classes, np.int64)
    counts[tail_order] = _long_tail_counts(num_classes)
    train_idx, test_idx = [], []
    for c in range(num_classes):
        idx = rng.permutation(np.flatnonzero(y == c))
        test_idx.append(idx[:DIGITS_TEST_PER_CLASS])
        train_idx.append(idx[DIGITS_TEST_PER_CLASS : DIGITS_TEST_PER_CLASS + counts[c]])
    tr, te = np.concatenate(train_idx), np.concatenate(test_idx)
    return x[tr], y[tr], x[te], y[te], counts


def _per_class_recall(pred: np.ndarray, y: np.ndarray, num_classes: int) -> np.ndarray:
    return np.array([np.mean(pred[y == c] == c) for c in range(num_classes)])


def imbalanced_digits(
    steps: int, seeds: int, say: Callable[[str], None], options: dict[str, Any] | None
) -> ExperimentResult:
    datasets = require("sklearn.datasets", extra="demo", purpose="jaxloss demo")
    digits = datasets.load_digits()
    x_all = (digits.data / 16.0).astype(np.float32)
    y_all = digits.target.astype(np.int32)
    num_classes = 10
    counts_shape = _long_tail_counts(num_classes)
    costs = _cost_matrix(num_classes)
    cost_matrix = jnp.asarray(costs, F32)

    def mlp(params: Params, x: jax.Array) -> jax.Array:
        return apply(params["out"], jnp.tanh(apply(params["hidden"], x)))

    def make(seed: int) -> tuple[Any, Batch, Batch, Any]:
        x_tr, y_tr, x_te, y_te, counts = _digits_split(x_all, y_all, seed)
        rng = np.random.default_rng([2, seed])
        params = {
            "hidden": dense(rng, x_tr.shape[1], DIGITS_HIDDEN),
            "out": dense(rng, DIGITS_HIDDEN, num_classes),
        }
        c = jnp.asarray(counts, F32)
        train = (jnp.asarray(x_tr), jnp.asarray(y_tr), c)
        test = (jnp.asarray(x_te), jnp.asarray(y_te), c)
        return params, train, test, (x_te, y_te, counts)

    def with_counts(
        per_example: Callable[[jax.Array, jax.Array, jax.Array], jax.Array],
    ) -> Callable[[Params, Batch], jax.Array]:
        def objective(params: Params, batch: Batch) -> jax.Array:
            x, y, counts = batch
            return jaxloss.mean(per_example(mlp(params, x), y, counts))

        return objective

    losses: list[tuple[str, str, Callable[[jax.Array, jax.Array, jax.Array], jax.Array]]] = [
        (
            "cross-entropy",
            "softmax_cross_entropy_with_integer_labels",
            lambda z, y, n: jaxloss.softmax_cross_entropy_with_integer_labels(z, y),
        ),
        (
            "class-weighted CE (1/n)",
            "class_weighted(CE, class_weights_from_counts(n))",
            lambda z, y, n: jaxloss.class_weighted(
                jaxloss.softmax_cross_entropy_with_integer_labels,
                jaxloss.class_weights_from_counts(n),
            )(z, y),
        ),
        (
            f"focal (gamma={FOCAL_GAMMA:g})",
            f"softmax_focal_loss(gamma={FOCAL_GAMMA:g})",
            lambda z, y, n: jaxloss.softmax_focal_loss(z, y, gamma=FOCAL_GAMMA),
        ),
        (
            f"logit-adjusted (tau={LOGIT_ADJUST_TAU:g})",
            f"logit_adjusted_cross_entropy(class_priors=n, tau={LOGIT_ADJUST_TAU:g})",
            lambda z, y, n: jaxloss.logit_adjusted_cross_entropy(
                z, y, class_priors=n, tau=LOGIT_ADJUST_TAU
            ),
        ),
        (
            "expected cost",
            "expected_cost(cost_matrix=M)",
            lambda z, y, n: jaxloss.expected_cost(z, y, cost_matrix=cost_matrix),
        ),
        (
            "CE + expected cost",
            "CE + expected_cost(cost_matrix=M)",
            lambda z, y, n: (
                jaxloss.softmax_cross_entropy_with_integer_labels(z, y)
                + jaxloss.expected_cost(z, y, cost_matrix=cost_matrix)
            ),
        ),
    ]

    predict = jax.jit(lambda params, x: jnp.argmax(mlp(params, x), axis=-1))

    def monitor(params: Params, batch: Batch) -> jax.Array:
        x, y, _ = batch
        correct = (jnp.argmax(mlp(params, x), axis=-1) == y).astype(F32)
        # The held-out set is balanced, so accuracy is balanced accuracy.
        return jnp.mean(correct)

    def evaluate(params: Params, data: Any) -> dict[str, float]:
        x_te, y_te, counts = data
        pred = np.asarray(predict(params, x_te))
        recall = _per_class_recall(pred, y_te, num_classes)
        rare = np.argsort(counts, kind="stable")[:DIGITS_RARE]
        return {
            "balanced accuracy": float(recall.mean()),
            "minority recall": float(recall[rare].mean()),
            "misclassification cost": float(np.mean(costs[y_te, pred])),
        }

    say(
        "1) imbalanced classification: load_digits, 10 classes; training set made long-tailed "
        f"({counts_shape[0]} down to {counts_shape[-1]} examples per class)"
    )
    methods = [
        Method(name, code, value_and_grad(with_counts(per_example)))
        for name, code, per_example in losses
    ]
    results = run_methods(
        methods, optax.adam(1e-2), steps, seeds, make, monitor, evaluate, say, None, options
    )
    n_train = int(counts_shape.sum())
    return ExperimentResult(
        title="Imbalanced digits (long-tailed training set)",
        setup=[
            f"load_digits: {n_train} training images, class counts "
            f"{', '.join(str(int(c)) for c in counts_shape)} (rare classes drawn per seed); "
            f"balanced held-out set of {DIGITS_TEST_PER_CLASS * num_classes}",
            f"MLP 64-{DIGITS_HIDDEN}-10 (tanh), optax.adam(1e-2), full batch, {steps} steps",
            f"minority recall = mean held-out recall of the {DIGITS_RARE} rarest training classes",
            f"misclassification cost = mean held-out M[true, predicted]: a {COSTLY_TRUE} read as "
            f"an {COSTLY_PREDICTED} costs {COSTLY_FACTOR:g}, any other mistake 1 (argmax "
            "prediction for every method)",
        ],
        metric_names=["balanced accuracy", "minority recall", "misclassification cost"],
        curve_metric="held-out balanced accuracy",
        methods=results,
    )
