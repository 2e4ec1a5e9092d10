"""``python -m jaxloss demo``: five seeded loss comparisons on datasets bundled with scikit-learn.

Each experiment trains the same small model with optax (full batch, Adam, fixed step count) once
per loss or weighting method, on the same train / held-out split, for several seeds (a seed draws
the split, the corruption and the initial weights), and reports held-out metrics as the mean and
standard deviation over seeds. No numbers are tuned towards a winner: the table is what the run
measures.

1. Imbalanced classification, ``load_digits``: the training set is made long-tailed (class counts
   fall geometrically from 90 to 3, which classes are rare is drawn per seed); the held-out set is
   balanced. Cross-entropy vs class-weighted CE vs focal vs logit-adjusted CE, by balanced accuracy
   and the recall of the three rarest classes; and one expensive confusion (a 1 read as an 8 costs
   10, any other mistake 1): ``expected_cost`` with that cost matrix, alone and added to CE, by the
   held-out misclassification cost.
2. Regression with outliers, ``load_diabetes``: 20% of the *training* targets get a gross error of
   ±(2 to 5) target standard deviations; the held-out targets are clean. MSE vs Huber vs Barron's
   adaptive loss (shape and scale learned), by held-out MAE and RMSE.
3. Multi-task, ``load_wine``: one shared layer, two heads: the cultivar (3 classes, cross-entropy)
   and the proline content (regression, MSE on the standardised target) from the other 12
   measurements. Equal weights vs uncertainty weighting vs UPGrad vs Nash-MTL, by held-out accuracy
   and proline MAE / RMSE.
4. Small errors, ``load_breast_cancer``: the area of the largest cells from the ten mean
   measurements, a target whose errors grow with its size. MSE vs Wing vs rescaled log-cosh vs
   log-space MSE, by the fraction of held-out predictions within 5% of the target, the MAE on the
   small targets, and the RMSE.
5. Asymmetric costs, ``load_diabetes`` (clean): under-prediction costs k times over-prediction,
   k in {1, 3, 9}. MSE vs pinball at τ = k/(k + 1) vs ``asymmetric(squared_error, under=k)``, by
   the held-out cost for each k and the fraction of under-predictions.

In experiments 2, 4 and 5 each loss's row also names the statistic its minimiser targets (mean,
median, τ-quantile, τ-expectile, an M-estimate), stated by hand here and checked numerically in
tests/test_demo_statistics.py. (In 3 the proline head is trained with MSE, the mean, in every row.)

It writes one PNG: the held-out metric during training and the final comparison. Needs the
``demo`` extra (scikit-learn, matplotlib).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxloss
import jaxloss.multitask as mt

from ._extras import require

__all__ = ["ExperimentResult", "MethodResult", "render_table", "run", "write_figure"]

Params = Any
Batch = tuple[jax.Array, ...]
F32 = jnp.float32

DEFAULT_STEPS = 400
DEFAULT_SEEDS = 5
# XLA options for a smoke run: about 40% less compile time, about 4x slower steps.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


@dataclasses.dataclass
class MethodResult:
    """One loss or weighting method of an experiment, over all seeds.

    ``metrics[name]`` holds one held-out value per seed; ``train_loss`` is [seeds, steps + 1] (the
    training objective before each step and after the last); ``curve`` is [seeds, steps + 1], the
    experiment's ``curve_metric`` on the held-out set at the same points.
    """

    name: str
    loss: str
    metrics: dict[str, list[float]]
    train_loss: np.ndarray
    curve: np.ndarray
    note: str = ""
    statistic: str = ""  # regression losses: what the loss's minimiser over a constant targets


@dataclasses.dataclass
class ExperimentResult:
    title: str
    setup: list[str]
    metric_names: list[str]
    curve_metric: str
    methods: list[MethodResult]


# ------------------------------------------------------------------------------------------------
# Training. A method is a rule (params, batch) -> (training objective, update direction); one Adam
# applies the direction. All methods of an experiment share one compiled program (the method is a
# traced index into lax.switch), which is run once per (method, seed): compiling, not training,
# is what costs time at this size.


GradFn = Callable[[Params, Batch], tuple[jax.Array, Params]]


@dataclasses.dataclass
class _Method:
    name: str
    loss: str  # the jaxloss call, for the table
    grad_fn: GradFn
    statistic: str = ""


@dataclasses.dataclass(frozen=True)
class _Loss:
    """A regression loss as an experiment trains it.

    ``fn(predictions, targets, params)`` gives per-element values in the units the model is
    trained in (``params`` is the model's pytree, for a loss with learned parameters);
    ``statistic`` states by hand what the minimiser of its mean over a constant is: the statistic
    of the target distribution that the model learns to predict. tests/test_demo_statistics.py
    checks each statement numerically.
    """

    name: str
    code: str
    statistic: str
    fn: Callable[[jax.Array, jax.Array, Params], jax.Array]


def _value_and_grad(objective: Callable[[Params, Batch], jax.Array]) -> GradFn:
    return jax.value_and_grad(objective)


def _make_trainer(
    methods: Sequence[_Method],
    optimizer: optax.GradientTransformation,
    monitor: Callable[[Params, Batch], jax.Array],
    steps: int,
) -> Any:
    """``trainer(method, params, train, test) -> (params, losses [steps], monitor [steps + 1])``:
    ``losses[s]`` is the training objective before step s, ``monitor[s]`` the held-out metric."""
    branches = [m.grad_fn for m in methods]

    def train_all(method: jax.Array, params: Params, train: Batch, test: Batch) -> Any:
        def body(carry: Any, _: None) -> Any:
            params, state = carry
            mon = monitor(params, test)
            loss, grads = jax.lax.switch(method, branches, params, train)
            updates, state = optimizer.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), (loss, mon)

        carry = (params, optimizer.init(params))
        (params, _), (losses, mons) = jax.lax.scan(body, carry, None, steps)
        return params, losses, jnp.append(mons, monitor(params, test))

    return jax.jit(train_all)


def _dense(rng: np.random.Generator, n_in: int, n_out: int) -> dict[str, jax.Array]:
    """Glorot-normal weights, zero bias."""
    w = rng.normal(size=(n_in, n_out)) * math.sqrt(2.0 / (n_in + n_out))
    return {"w": jnp.asarray(w, F32), "b": jnp.zeros(n_out, F32)}


def _apply(layer: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    return x @ layer["w"] + layer["b"]


def _run_methods(
    methods: Sequence[_Method],
    optimizer: optax.GradientTransformation,
    steps: int,
    seeds: int,
    make: Callable[[int], tuple[Any, Batch, Batch, Any]],
    monitor: Callable[[Params, Batch], jax.Array],
    evaluate: Callable[[Params, Any], dict[str, float]],
    say: Callable[[str], None],
    notes: dict[str, Callable[[list[Params]], str]] | None = None,
    compiler_options: dict[str, Any] | None = None,
) -> list[MethodResult]:
    """Trains every method for every seed; ``make(seed) -> (params0, train, test, eval_data)``
    gives each method of a seed the same split and the same initial weights."""
    trainer = _make_trainer(methods, optimizer, monitor, steps)
    data = [make(seed) for seed in range(seeds)]
    start = time.perf_counter()
    params0, train, test, _ = data[0]
    compiled = trainer.lower(jnp.int32(0), params0, train, test).compile(compiler_options)
    say(f"   compiled the training program in {time.perf_counter() - start:.1f} s")
    results = []
    for index, method in enumerate(methods):
        start = time.perf_counter()
        metrics: dict[str, list[float]] = {}
        losses, curves, finals = [], [], []
        for params0, train, test, eval_data in data:
            params, hist, curve = compiled(jnp.int32(index), params0, train, test)
            losses.append(np.asarray(hist, np.float64))
            curves.append(np.asarray(curve, np.float64))
            finals.append(params)
            for key, value in evaluate(params, eval_data).items():
                metrics.setdefault(key, []).append(value)
        note = (notes or {}).get(method.name)
        results.append(
            MethodResult(
                name=method.name,
                loss=method.loss,
                metrics=metrics,
                train_loss=np.stack(losses),
                curve=np.stack(curves),
                note=note(finals) if note else "",
                statistic=method.statistic,
            )
        )
        say(f"   {method.name:<26} {seeds} seed(s) trained in {time.perf_counter() - start:4.1f} s")
    return results


# ------------------------------------------------------------------------------------------------
# 1. Long-tailed digits


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
        return _apply(params["out"], jnp.tanh(_apply(params["hidden"], x)))

    def make(seed: int) -> tuple[Any, Batch, Batch, Any]:
        x_tr, y_tr, x_te, y_te, counts = _digits_split(x_all, y_all, seed)
        rng = np.random.default_rng([2, seed])
        params = {
            "hidden": _dense(rng, x_tr.shape[1], DIGITS_HIDDEN),
            "out": _dense(rng, DIGITS_HIDDEN, num_classes),
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
        _Method(name, code, _value_and_grad(with_counts(per_example)))
        for name, code, per_example in losses
    ]
    results = _run_methods(
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


# ------------------------------------------------------------------------------------------------
# 2. Diabetes with gross errors in the training targets


OUTLIER_FRACTION = 0.2
OUTLIER_LOW, OUTLIER_HIGH = 2.0, 5.0  # gross error size, in target standard deviations
DIABETES_TEST_FRACTION = 0.3
HUBER_DELTA = 1.0  # in units of the robust (MAD) scale of the training targets

OUTLIER_LOSSES = (
    _Loss("MSE", "squared_error", "mean", lambda p, t, _: jaxloss.squared_error(p, t)),
    _Loss(
        f"Huber (delta={HUBER_DELTA:g})",
        f"huber(delta={HUBER_DELTA:g})",
        f"Huber M-estimate (δ = {HUBER_DELTA:g})",
        lambda p, t, _: jaxloss.huber(p, t, delta=HUBER_DELTA),
    ),
    _Loss(
        "adaptive Barron",
        "adaptive_robust_nll (alpha, scale learned)",
        "Barron M-estimate (α, scale learned)",
        lambda p, t, params: jaxloss.adaptive_robust_nll(p, t, params["robust"]),
    ),
)


def _diabetes_split(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    """Standardised features, a held-out split, and gross errors added to training targets."""
    rng = np.random.default_rng([3, seed])
    idx = rng.permutation(len(y))
    n_test = round(DIABETES_TEST_FRACTION * len(y))
    te, tr = idx[:n_test], idx[n_test:]
    mu, sd = x[tr].mean(0), x[tr].std(0)
    x_tr, x_te = (x[tr] - mu) / sd, (x[te] - mu) / sd
    y_tr = y[tr].copy()
    hit = rng.uniform(size=len(tr)) < OUTLIER_FRACTION
    size = rng.uniform(OUTLIER_LOW, OUTLIER_HIGH, size=len(tr)) * y.std()
    sign = rng.choice([-1.0, 1.0], size=len(tr))
    y_tr = np.where(hit, y_tr + sign * size, y_tr)
    return x_tr, y_tr, x_te, y[te]


def outlier_regression(
    steps: int, seeds: int, say: Callable[[str], None], options: dict[str, Any] | None
) -> ExperimentResult:
    datasets = require("sklearn.datasets", extra="demo", purpose="jaxloss demo")
    diabetes = datasets.load_diabetes()
    x_all = diabetes.data.astype(np.float64)
    y_all = diabetes.target.astype(np.float64)

    def linear(params: Params, x: jax.Array) -> jax.Array:
        return _apply(params["model"], x)[..., 0]

    def make(seed: int) -> tuple[Any, Batch, Batch, Any]:
        x_tr, y_tr, x_te, y_te = _diabetes_split(x_all, y_all, seed)
        # Targets centred and scaled robustly (median, MAD): the outliers do not set the units.
        center = float(np.median(y_tr))
        scale = float(1.4826 * np.median(np.abs(y_tr - center)))
        rng = np.random.default_rng([4, seed])
        params = {
            "model": _dense(rng, x_tr.shape[1], 1),
            "robust": jaxloss.adaptive_robust_init(),
        }
        f = lambda a: jnp.asarray(a, F32)  # noqa: E731
        train = (f(x_tr), f((y_tr - center) / scale))
        test = (f(x_te), f(y_te), f(center), f(scale))
        return params, train, test, (x_te, y_te, center, scale)

    def per_element(loss: _Loss) -> Callable[[Params, Batch], jax.Array]:
        def objective(params: Params, batch: Batch) -> jax.Array:
            x, y = batch
            return jaxloss.mean(loss.fn(linear(params, x), y, params))

        return objective

    def monitor(params: Params, batch: Batch) -> jax.Array:
        x, y, center, scale = batch
        return jnp.mean(jnp.abs(center + scale * linear(params, x) - y))

    predict = jax.jit(linear)

    def evaluate(params: Params, data: Any) -> dict[str, float]:
        x_te, y_te, center, scale = data
        err = center + scale * np.asarray(predict(params, jnp.asarray(x_te, F32))) - y_te
        return {"MAE": float(np.mean(np.abs(err))), "RMSE": float(np.sqrt(np.mean(err**2)))}

    def barron_note(finals: list[Params]) -> str:
        alphas, scales = zip(
            *(jaxloss.adaptive_robust_parameters(p["robust"]) for p in finals), strict=True
        )
        return (
            f"learned alpha {np.mean(alphas):.2f}, scale {np.mean(scales):.2f} "
            "(mean over seeds; alpha 2 = MSE, 1 ~ pseudo-Huber, 0 = Cauchy)"
        )

    say(
        "2) regression with outliers: load_diabetes; "
        f"{100 * OUTLIER_FRACTION:.0f}% of the training targets corrupted"
    )
    methods = [
        _Method(loss.name, loss.code, _value_and_grad(per_element(loss)), loss.statistic)
        for loss in OUTLIER_LOSSES
    ]
    results = _run_methods(
        methods,
        optax.adam(5e-2),
        steps,
        seeds,
        make,
        monitor,
        evaluate,
        say,
        notes={"adaptive Barron": barron_note},
        compiler_options=options,
    )
    n_test = round(DIABETES_TEST_FRACTION * len(y_all))
    return ExperimentResult(
        title="Diabetes with gross errors in the training targets",
        setup=[
            f"load_diabetes: {len(y_all) - n_test} training / {n_test} held-out patients, "
            "10 standardised features",
            f"{100 * OUTLIER_FRACTION:.0f}% of the training targets get an error of "
            f"±U({OUTLIER_LOW:g}, {OUTLIER_HIGH:g}) target std; held-out targets are clean",
            "linear model on targets scaled by the training median and MAD; "
            f"optax.adam(5e-2), full batch, {steps} steps",
        ],
        metric_names=["MAE", "RMSE"],
        curve_metric="held-out MAE",
        methods=results,
    )


# ------------------------------------------------------------------------------------------------
# 3. Wine: cultivar (classification) + proline (regression) from one shared layer


WINE_TEST_FRACTION = 0.4
WINE_HIDDEN = 16
PROLINE = 12  # column of load_wine's data
TASKS = ("cultivar", "proline")


def _wine_split(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    """Stratified split; inputs = the 12 other measurements, standardised on the training set."""
    rng = np.random.default_rng([5, seed])
    tr, te = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = round(WINE_TEST_FRACTION * len(idx))
        te.append(idx[:n_test])
        tr.append(idx[n_test:])
    tr_i, te_i = np.concatenate(tr), np.concatenate(te)
    features = np.delete(x, PROLINE, axis=1)
    mu, sd = features[tr_i].mean(0), features[tr_i].std(0)
    return (
        (features[tr_i] - mu) / sd,
        y[tr_i],
        x[tr_i, PROLINE],
        (features[te_i] - mu) / sd,
        y[te_i],
        x[te_i, PROLINE],
    )


def multitask_wine(
    steps: int, seeds: int, say: Callable[[str], None], options: dict[str, Any] | None
) -> ExperimentResult:
    datasets = require("sklearn.datasets", extra="demo", purpose="jaxloss demo")
    wine = datasets.load_wine()
    x_all = wine.data.astype(np.float64)
    y_all = wine.target.astype(np.int32)

    def trunk(shared: Params, x: jax.Array) -> jax.Array:
        return jnp.tanh(_apply(shared, x))

    def heads_out(heads: Params, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        return _apply(heads["cultivar"], h), _apply(heads["proline"], h)[..., 0]

    def task_losses(shared: Params, heads: Params, batch: Batch) -> dict[str, jax.Array]:
        x, label, target = batch[:3]
        logits, value = heads_out(heads, trunk(shared, x))
        return {
            "cultivar": jaxloss.mean(
                jaxloss.softmax_cross_entropy_with_integer_labels(logits, label)
            ),
            "proline": jaxloss.mean(jaxloss.squared_error(value, target)),
        }

    def make(seed: int) -> tuple[Any, Batch, Batch, Any]:
        x_tr, c_tr, p_tr, x_te, c_te, p_te = _wine_split(x_all, y_all, seed)
        mu, sd = float(p_tr.mean()), float(p_tr.std())
        rng = np.random.default_rng([6, seed])
        params = {
            "shared": _dense(rng, x_tr.shape[1], WINE_HIDDEN),
            "heads": {
                "cultivar": _dense(rng, WINE_HIDDEN, 3),
                "proline": _dense(rng, WINE_HIDDEN, 1),
            },
            "log_variances": mt.uncertainty_weighting_init(TASKS, dtype=F32),
        }
        f = lambda a: jnp.asarray(a, F32)  # noqa: E731
        train = (f(x_tr), jnp.asarray(c_tr), f((p_tr - mu) / sd))
        test = (f(x_te), jnp.asarray(c_te), f((p_te - mu) / sd))
        return params, train, test, (x_te, c_te, p_te, mu, sd)

    def equal_objective(params: Params, batch: Batch) -> jax.Array:
        losses = task_losses(params["shared"], params["heads"], batch)
        return losses["cultivar"] + losses["proline"]

    def uncertainty_objective(params: Params, batch: Batch) -> jax.Array:
        losses = task_losses(params["shared"], params["heads"], batch)
        total, _ = mt.uncertainty_weighting(
            losses, params["log_variances"], kinds={"cultivar": "classification"}
        )
        return total

    def aggregated(aggregator: mt.Aggregator) -> GradFn:
        """Shared layer: the per-task Jacobian (one forward pass) reduced by ``aggregator``;
        heads: the gradient of the summed loss (each head only sees its own task)."""

        def grad_fn(params: Params, batch: Batch) -> tuple[jax.Array, Params]:
            losses, jac = mt.task_value_and_jacobian(
                lambda shared: task_losses(shared, params["heads"], batch)
            )(params["shared"])
            g_heads = jax.grad(
                lambda heads: sum(task_losses(params["shared"], heads, batch).values())
            )(params["heads"])
            grads = {
                "shared": aggregator(jac),
                "heads": g_heads,
                "log_variances": jax.tree.map(jnp.zeros_like, params["log_variances"]),
            }
            return losses["cultivar"] + losses["proline"], grads

        return grad_fn

    def monitor(params: Params, batch: Batch) -> jax.Array:
        x, label, _ = batch
        logits, _ = heads_out(params["heads"], trunk(params["shared"], x))
        return jnp.mean((jnp.argmax(logits, axis=-1) == label).astype(F32))

    predict = jax.jit(lambda params, x: heads_out(params["heads"], trunk(params["shared"], x)))

    def evaluate(params: Params, data: Any) -> dict[str, float]:
        x_te, c_te, p_te, mu, sd = data
        logits, value = predict(params, jnp.asarray(x_te, F32))
        err = mu + sd * np.asarray(value, np.float64) - p_te
        return {
            "cultivar accuracy": float(np.mean(np.asarray(jnp.argmax(logits, -1)) == c_te)),
            "proline MAE": float(np.mean(np.abs(err))),
            "proline RMSE": float(np.sqrt(np.mean(err**2))),
        }

    def uw_note(finals: list[Params]) -> str:
        weights = {
            t: np.mean(
                [
                    (0.5 if t == "proline" else 1.0) * math.exp(-float(p["log_variances"][t]))
                    for p in finals
                ]
            )
            for t in TASKS
        }
        return "learned task weights " + ", ".join(f"{t} {w:.2f}" for t, w in weights.items())

    say(
        "3) multi-task: load_wine, cultivar (classification) + proline (regression) "
        "from one shared layer"
    )
    methods = [
        _Method("equal weights", "CE + MSE", _value_and_grad(equal_objective)),
        _Method(
            "uncertainty weighting",
            "multitask.uncertainty_weighting",
            _value_and_grad(uncertainty_objective),
        ),
        _Method("UPGrad", "multitask.upgrad()", aggregated(mt.upgrad())),
        _Method("Nash-MTL", "multitask.nash_mtl()", aggregated(mt.nash_mtl())),
    ]
    results = _run_methods(
        methods,
        optax.adam(1e-2),
        steps,
        seeds,
        make,
        monitor,
        evaluate,
        say,
        notes={"uncertainty weighting": uw_note},
        compiler_options=options,
    )
    n_test = sum(round(WINE_TEST_FRACTION * n) for n in np.bincount(y_all))
    return ExperimentResult(
        title="Wine: cultivar + proline from one shared layer",
        setup=[
            f"load_wine: {len(y_all) - n_test} training / {n_test} held-out wines; inputs = the "
            "12 measurements other than proline, standardised",
            f"shared tanh layer 12-{WINE_HIDDEN}, heads -> 3 cultivar logits (CE) and proline "
            "(MSE on the standardised target; metrics in mg/L)",
            f"optax.adam(1e-2), full batch, {steps} steps; aggregators act on the shared layer",
        ],
        metric_names=["cultivar accuracy", "proline MAE", "proline RMSE"],
        curve_metric="held-out cultivar accuracy",
        methods=results,
    )


# ------------------------------------------------------------------------------------------------
# 4. Breast-cancer cell areas: small errors, measured relative to the size


CANCER_TEST_FRACTION = 0.3
WORST_AREA = 23  # column of load_breast_cancer's data: "worst area" (mean of the 3 largest cells)
MEAN_FEATURES = 10  # its first ten columns are the "mean ..." measurements
TOLERANCE = 0.05  # a held-out prediction is "within" when |error| <= 5% of its target
SMALL_QUANTILE = 0.25  # small targets: at or below the lower quartile of the training targets
# Targets are trained as y / median - 1 (median of the training targets), so a scale of 0.05 is
# 5% of the median target: the shaped losses' scales are set to the tolerance, not searched.
WING_OMEGA, WING_EPSILON = 0.1, 0.02  # log region up to twice the tolerance
LOG_COSH_SCALE = TOLERANCE

SMALL_ERROR_LOSSES = (
    _Loss("MSE", "squared_error", "mean", lambda p, t, _: jaxloss.squared_error(p, t)),
    _Loss(
        f"Wing (omega={WING_OMEGA:g}, epsilon={WING_EPSILON:g})",
        f"wing(omega={WING_OMEGA:g}, epsilon={WING_EPSILON:g})",
        f"Wing M-estimate (ω = {WING_OMEGA:g}, ε = {WING_EPSILON:g})",
        lambda p, t, _: jaxloss.wing(p, t, omega=WING_OMEGA, epsilon=WING_EPSILON),
    ),
    _Loss(
        f"log-cosh (scale {LOG_COSH_SCALE:g})",
        f"rescaled(log_cosh, {LOG_COSH_SCALE:g})",
        f"log-cosh M-estimate (scale {LOG_COSH_SCALE:g})",
        lambda p, t, _: jaxloss.rescaled(jaxloss.log_cosh, LOG_COSH_SCALE)(p, t),
    ),
    _Loss(
        "log-space MSE",
        "log_space(squared_error)",
        "geometric mean",
        # offset 1 on y / median - 1: the squared log ratio of prediction and target.
        lambda p, t, _: jaxloss.log_space(jaxloss.squared_error)(p, t),
    ),
)


def _holdout_split(
    x: np.ndarray, y: np.ndarray, rng: np.random.Generator, test_fraction: float
) -> tuple[np.ndarray, ...]:
    """A random held-out split; features standardised on the training set; targets as given.
    Returns x/y train, x/y test."""
    idx = rng.permutation(len(y))
    n_test = round(test_fraction * len(y))
    te, tr = idx[:n_test], idx[n_test:]
    mu, sd = x[tr].mean(0), x[tr].std(0)
    return (x[tr] - mu) / sd, y[tr], (x[te] - mu) / sd, y[te]


def small_errors(
    steps: int, seeds: int, say: Callable[[str], None], options: dict[str, Any] | None
) -> ExperimentResult:
    datasets = require("sklearn.datasets", extra="demo", purpose="jaxloss demo")
    cancer = datasets.load_breast_cancer()
    x_all = cancer.data[:, :MEAN_FEATURES].astype(np.float64)
    y_all = cancer.data[:, WORST_AREA].astype(np.float64)
    within = f"within ±{100 * TOLERANCE:g}%"

    def linear(params: Params, x: jax.Array) -> jax.Array:
        return _apply(params["model"], x)[..., 0]

    def make(seed: int) -> tuple[Any, Batch, Batch, Any]:
        rng = np.random.default_rng([7, seed])
        x_tr, y_tr, x_te, y_te = _holdout_split(x_all, y_all, rng, CANCER_TEST_FRACTION)
        median = float(np.median(y_tr))
        small = float(np.quantile(y_tr, SMALL_QUANTILE))
        # Zero weights: every prediction starts at the training median, inside the domain of the
        # log-space loss (predictions at or below 0 would get no gradient there).
        params = {"model": {"w": jnp.zeros((x_tr.shape[1], 1), F32), "b": jnp.zeros(1, F32)}}
        f = lambda a: jnp.asarray(a, F32)  # noqa: E731
        train = (f(x_tr), f(y_tr / median - 1.0))
        test = (f(x_te), f(y_te), f(median))
        return params, train, test, (x_te, y_te, median, small)

    def per_element(loss: _Loss) -> Callable[[Params, Batch], jax.Array]:
        def objective(params: Params, batch: Batch) -> jax.Array:
            x, t = batch
            return jaxloss.mean(loss.fn(linear(params, x), t, params))

        return objective

    def monitor(params: Params, batch: Batch) -> jax.Array:
        x, y, median = batch
        err = median * (1.0 + linear(params, x)) - y
        return jnp.mean((jnp.abs(err) <= TOLERANCE * y).astype(F32))

    predict = jax.jit(linear)

    def evaluate(params: Params, data: Any) -> dict[str, float]:
        x_te, y_te, median, small = data
        out = np.asarray(predict(params, jnp.asarray(x_te, F32)), np.float64)
        err = median * (1.0 + out) - y_te
        return {
            within: float(np.mean(np.abs(err) <= TOLERANCE * y_te)),
            "small-target MAE": float(np.mean(np.abs(err[y_te <= small]))),
            "RMSE": float(np.sqrt(np.mean(err**2))),
        }

    say(
        "4) small errors: load_breast_cancer, the largest cells' area from the ten mean "
        "measurements; errors grow with the size"
    )
    methods = [
        _Method(loss.name, loss.code, _value_and_grad(per_element(loss)), loss.statistic)
        for loss in SMALL_ERROR_LOSSES
    ]
    results = _run_methods(
        methods, optax.adam(5e-2), steps, seeds, make, monitor, evaluate, say, None, options
    )
    n_test = round(CANCER_TEST_FRACTION * len(y_all))
    return ExperimentResult(
        title="Breast-cancer cell area: small errors, relative to the size",
        setup=[
            f"load_breast_cancer: {len(y_all) - n_test} training / {n_test} held-out tumours; "
            f"target 'worst area' ({y_all.min():.0f} to {y_all.max():.0f}), from the 10 "
            "standardised 'mean' measurements",
            "linear model, zero initial weights, on y / median - 1 (training median); scales "
            f"of the shaped losses = {100 * TOLERANCE:g}% of the median; optax.adam(5e-2), full "
            f"batch, {steps} steps",
            f"{within}: |error| <= {100 * TOLERANCE:g}% of the target; small-target MAE: on the "
            f"held-out tumours at or below the training targets' lower quartile",
        ],
        metric_names=[within, "small-target MAE", "RMSE"],
        curve_metric=f"held-out {within}",
        methods=results,
    )


# ------------------------------------------------------------------------------------------------
# 5. Diabetes with asymmetric costs: under-prediction costs k times over-prediction


ASYMMETRIC_TEST_FRACTION = 0.3
COST_RATIOS = (1, 3, 9)  # k: cost per unit of under-prediction / cost per unit of over-prediction


def _level(k: int) -> float:
    """τ = k/(k + 1): (k + 1)·pinball_loss(τ) is the cost itself, so its minimiser, the
    τ-quantile, is the prediction with the least expected cost."""
    return k / (k + 1)


def _pinball(k: int) -> _Loss:
    tau = _level(k)
    return _Loss(
        f"pinball (tau={tau:g})",
        f"pinball_loss(tau={tau:g})",
        "median" if k == 1 else f"{tau:g}-quantile",
        lambda p, t, _: jaxloss.pinball_loss(p, t, tau=tau),
    )


def _asymmetric_squared(k: int) -> _Loss:
    return _Loss(
        f"asymmetric MSE (under x{k})",
        f"asymmetric(squared_error, under={k})",
        f"{_level(k):g}-expectile",
        lambda p, t, _: jaxloss.asymmetric(jaxloss.squared_error, under=float(k))(p, t),
    )


ASYMMETRIC_LOSSES = (
    _Loss("MSE", "squared_error", "mean", lambda p, t, _: jaxloss.squared_error(p, t)),
    *(_pinball(k) for k in COST_RATIOS),
    # k = 1 would be MSE itself.
    *(_asymmetric_squared(k) for k in COST_RATIOS if k > 1),
)


def _asymmetric_cost(predictions: np.ndarray, targets: np.ndarray, k: float) -> float:
    """Mean cost: k per unit of under-prediction, 1 per unit of over-prediction."""
    u = targets - predictions
    return float(np.mean(np.where(u > 0, k * u, -u)))


def asymmetric_costs(
    steps: int, seeds: int, say: Callable[[str], None], options: dict[str, Any] | None
) -> ExperimentResult:
    datasets = require("sklearn.datasets", extra="demo", purpose="jaxloss demo")
    diabetes = datasets.load_diabetes()
    x_all = diabetes.data.astype(np.float64)
    y_all = diabetes.target.astype(np.float64)

    def linear(params: Params, x: jax.Array) -> jax.Array:
        return _apply(params["model"], x)[..., 0]

    def make(seed: int) -> tuple[Any, Batch, Batch, Any]:
        rng = np.random.default_rng([9, seed])
        x_tr, y_tr, x_te, y_te = _holdout_split(x_all, y_all, rng, ASYMMETRIC_TEST_FRACTION)
        center, scale = float(y_tr.mean()), float(y_tr.std())
        params = {"model": _dense(rng, x_tr.shape[1], 1)}
        f = lambda a: jnp.asarray(a, F32)  # noqa: E731
        train = (f(x_tr), f((y_tr - center) / scale))
        test = (f(x_te), f((y_te - center) / scale))
        return params, train, test, (x_te, y_te, center, scale)

    def per_element(loss: _Loss) -> Callable[[Params, Batch], jax.Array]:
        def objective(params: Params, batch: Batch) -> jax.Array:
            x, t = batch
            return jaxloss.mean(loss.fn(linear(params, x), t, params))

        return objective

    def monitor(params: Params, batch: Batch) -> jax.Array:
        x, t = batch
        return jnp.mean((linear(params, x) < t).astype(F32))

    predict = jax.jit(linear)

    def evaluate(params: Params, data: Any) -> dict[str, float]:
        x_te, y_te, center, scale = data
        out = np.asarray(predict(params, jnp.asarray(x_te, F32)), np.float64)
        pred = center + scale * out
        metrics = {f"cost k={k}": _asymmetric_cost(pred, y_te, k) for k in COST_RATIOS}
        metrics["under-predictions"] = float(np.mean(pred < y_te))
        return metrics

    say(
        "5) asymmetric costs: load_diabetes; under-prediction costs k times over-prediction, "
        f"k in {{{', '.join(str(k) for k in COST_RATIOS)}}}"
    )
    methods = [
        _Method(loss.name, loss.code, _value_and_grad(per_element(loss)), loss.statistic)
        for loss in ASYMMETRIC_LOSSES
    ]
    results = _run_methods(
        methods, optax.adam(5e-2), steps, seeds, make, monitor, evaluate, say, None, options
    )
    n_test = round(ASYMMETRIC_TEST_FRACTION * len(y_all))
    return ExperimentResult(
        title="Diabetes with asymmetric costs (under-prediction costs k times more)",
        setup=[
            f"load_diabetes: {len(y_all) - n_test} training / {n_test} held-out patients, "
            "10 standardised features, clean targets",
            "cost k = mean held-out of k·(y - prediction) if under, (prediction - y) if over "
            "(k = 1: the MAE); pinball at τ = k/(k + 1) is that cost / (k + 1)",
            f"linear model on standardised targets; optax.adam(5e-2), full batch, {steps} steps",
        ],
        metric_names=[*(f"cost k={k}" for k in COST_RATIOS), "under-predictions"],
        curve_metric="held-out under-predictions",
        methods=results,
    )


EXPERIMENTS = (
    imbalanced_digits,
    outlier_regression,
    multitask_wine,
    small_errors,
    asymmetric_costs,
)


# ------------------------------------------------------------------------------------------------
# Output


def _is_fraction(metric: str) -> bool:
    """Metrics that are fractions of examples (printed as percentages)."""
    return any(word in metric for word in ("accuracy", "recall", "within", "under-predictions"))


def _direction(metric: str) -> int:
    """+1 if higher is better, -1 if lower is better, 0 if neither (no paired count)."""
    if metric == "under-predictions":  # the right fraction depends on the cost
        return 0
    return -1 if any(word in metric for word in ("MAE", "RMSE", "cost")) else 1


def _fmt(values: Sequence[float], percent: bool) -> str:
    v = np.asarray(values, np.float64)
    scale = 100.0 if percent else 1.0
    digits = 1 if percent or np.abs(v).max() >= 10 else 3
    unit = "%" if percent else ""
    if len(v) == 1:
        return f"{scale * v[0]:.{digits}f}{unit}"
    return f"{scale * v.mean():.{digits}f} ± {scale * v.std(ddof=1):.{digits}f}{unit}"


def _spread(seeds: int) -> str:
    return f"mean ± std over {seeds} seeds" if seeds > 1 else "1 seed"


def render_table(exp: ExperimentResult) -> str:
    """The experiment as a plain-text table (metric means ± sample std over seeds); regression
    losses also name the statistic their minimiser targets."""
    seeds = exp.methods[0].train_loss.shape[0]
    stats = any(m.statistic for m in exp.methods)
    fixed = ["method", "jaxloss", *(["statistic"] if stats else [])]
    header = [*fixed, *exp.metric_names]
    rows = [
        [
            m.name,
            m.loss,
            *([m.statistic or "-"] if stats else []),
            *(_fmt(m.metrics[k], _is_fraction(k)) for k in exp.metric_names),
        ]
        for m in exp.methods
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w) if i < len(fixed) else c.rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )
    out = [f"== {exp.title} ==", *(f"   {s}" for s in exp.setup)]
    out += [f"   held-out metrics, {_spread(seeds)}:", "   " + line(header)]
    out += ["   " + "  ".join("-" * w for w in widths)]
    out += ["   " + line(r) for r in rows]
    paired = [k for k in exp.metric_names if _direction(k)]
    if seeds > 1 and paired:
        base = exp.methods[0]
        out.append(
            f"   paired with {base.name} (same split and initial weights), seeds better/tied/worse:"
        )
        for m in exp.methods[1:]:
            counts = []
            for k in paired:
                diff = np.asarray(m.metrics[k]) - np.asarray(base.metrics[k])
                sign = _direction(k)
                better, worse = int(np.sum(sign * diff > 0)), int(np.sum(sign * diff < 0))
                counts.append(f"{k} {better}/{seeds - better - worse}/{worse}")
            out.append(f"     {m.name}: {', '.join(counts)}")
    out += [f"   {m.name}: {m.note}" for m in exp.methods if m.note]
    return "\n".join(out)


def write_figure(results: Sequence[ExperimentResult], path: str | Path) -> Path:
    """One row per experiment: the held-out metric during training (mean over seeds, band =
    min..max), then one panel per final metric (mean ± std over seeds). PNG via matplotlib."""
    require("matplotlib", extra="demo", purpose="jaxloss demo")
    from matplotlib.figure import Figure

    cols = 1 + max(len(r.metric_names) for r in results)
    fig = Figure(figsize=(3.6 * cols, 3.5 * len(results)), layout="constrained")
    # One sub-figure per experiment, with exactly as many panels as it has: no empty panels.
    subfigs = fig.subfigures(len(results), 1, squeeze=False)[:, 0]
    colors = [f"C{i}" for i in range(10)]
    for sub, exp in zip(subfigs, results, strict=True):
        seeds = exp.methods[0].curve.shape[0]
        sub.suptitle(
            f"{exp.title} ({seeds} seed{'s' if seeds > 1 else ''})",
            fontsize=11,
            x=0.01,
            ha="left",
        )
        row = sub.subplots(1, 1 + len(exp.metric_names), squeeze=False)[0]
        ax = row[0]
        curve_scale = 100.0 if _is_fraction(exp.curve_metric) else 1.0
        for i, m in enumerate(exp.methods):
            steps = np.arange(m.curve.shape[1])
            curve = curve_scale * m.curve
            ax.plot(steps, curve.mean(0), color=colors[i], label=m.name, lw=1.5)
            if seeds > 1:
                ax.fill_between(
                    steps, curve.min(0), curve.max(0), color=colors[i], alpha=0.12, lw=0
                )
        during = "mean over seeds, band min..max" if seeds > 1 else "1 seed"
        ax.set_title(f"during training ({during})", fontsize=9)
        ax.set_xlabel("training step")
        unit = " (%)" if curve_scale == 100.0 else ""
        ax.set_ylabel(f"{exp.curve_metric}{unit}", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
        for ax, key in zip(row[1:], exp.metric_names, strict=True):
            values = [np.asarray(m.metrics[key]) for m in exp.methods]
            scale = 100.0 if _is_fraction(key) else 1.0
            # Points with error bars, not bars: the axis need not start at 0 to be read right.
            for i, v in enumerate(values):
                err = scale * v.std(ddof=1) if len(v) > 1 else 0.0
                ax.errorbar(i, scale * v.mean(), yerr=err, fmt="o", color=colors[i], capsize=4)
            ax.set_xticks(
                np.arange(len(values)),
                [m.name for m in exp.methods],
                rotation=30,
                ha="right",
                fontsize=6,
            )
            ax.set_xlim(-0.6, len(values) - 0.4)
            unit = " (%)" if scale == 100.0 else ""
            ax.set_title(f"held-out {key}{unit}, {_spread(seeds)}", fontsize=8)
            ax.grid(axis="y", alpha=0.3)
    path = Path(path)
    fig.savefig(path, dpi=80)
    return path


def run(
    steps: int = DEFAULT_STEPS,
    seeds: int = DEFAULT_SEEDS,
    *,
    out: str | Path | None = "jaxloss_demo.png",
    verbose: bool = True,
    fast_compile: bool = False,
) -> list[ExperimentResult]:
    """Runs the five experiments, prints their tables when ``verbose``, writes the PNG to
    ``out`` (unless None) and returns the results. ``fast_compile`` (for smoke runs) compiles
    with fewer XLA optimisations."""
    if steps < 1:
        raise ValueError(f"jaxloss demo: `steps` must be >= 1; got {steps}.")
    if seeds < 1:
        raise ValueError(f"jaxloss demo: `seeds` must be >= 1; got {seeds}.")
    require("sklearn", extra="demo", purpose="jaxloss demo")
    if out is not None:
        require("matplotlib", extra="demo", purpose="jaxloss demo")

    def say(msg: str) -> None:
        if verbose:
            print(msg, flush=True)

    say(
        f"jaxloss demo: {steps} steps, {seeds} seed(s), jax {jax.__version__} on "
        f"{jax.default_backend()}"
    )
    results = []
    for experiment in EXPERIMENTS:
        say("")
        results.append(experiment(steps, seeds, say, FAST_COMPILE if fast_compile else None))
    for exp in results:
        say("")
        say(render_table(exp))
    if out is not None:
        path = write_figure(results, out)
        say("")
        say(f"wrote {path}")
    return results
