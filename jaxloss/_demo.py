"""``python -m jaxloss demo``: three seeded loss comparisons on datasets bundled with scikit-learn.

Each experiment trains the same small model with optax (full batch, Adam, fixed step count) once
per loss or weighting method, on the same train / held-out split, for several seeds (a seed draws
the split, the corruption and the initial weights), and reports held-out metrics as the mean and
standard deviation over seeds. No numbers are tuned towards a winner: the table is what the run
measures.

1. Imbalanced classification, ``load_digits``: the training set is made long-tailed (class counts
   fall geometrically from 90 to 3, which classes are rare is drawn per seed); the held-out set is
   balanced. Cross-entropy vs class-weighted CE vs focal vs logit-adjusted CE, by balanced accuracy
   and the recall of the three rarest classes.
2. Regression with outliers, ``load_diabetes``: 20% of the *training* targets get a gross error of
   ±(2 to 5) target standard deviations; the held-out targets are clean. MSE vs Huber vs Barron's
   adaptive loss (shape and scale learned), by held-out MAE and RMSE.
3. Multi-task, ``load_wine``: one shared layer, two heads: the cultivar (3 classes, cross-entropy)
   and the proline content (regression, MSE on the standardised target) from the other 12
   measurements. Equal weights vs uncertainty weighting vs UPGrad vs Nash-MTL, by held-out accuracy
   and proline MAE / RMSE.

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
    ]

    predict = jax.jit(lambda params, x: jnp.argmax(mlp(params, x), axis=-1))

    def monitor(params: Params, batch: Batch) -> jax.Array:
        x, y, _ = batch
        correct = (jnp.argmax(mlp(params, x), axis=-1) == y).astype(F32)
        # The held-out set is balanced, so accuracy is balanced accuracy.
        return jnp.mean(correct)

    def evaluate(params: Params, data: Any) -> dict[str, float]:
        x_te, y_te, counts = data
        recall = _per_class_recall(np.asarray(predict(params, x_te)), y_te, num_classes)
        rare = np.argsort(counts, kind="stable")[:DIGITS_RARE]
        return {
            "balanced accuracy": float(recall.mean()),
            "minority recall": float(recall[rare].mean()),
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
        ],
        metric_names=["balanced accuracy", "minority recall"],
        curve_metric="held-out balanced accuracy",
        methods=results,
    )


# ------------------------------------------------------------------------------------------------
# 2. Diabetes with gross errors in the training targets


OUTLIER_FRACTION = 0.2
OUTLIER_LOW, OUTLIER_HIGH = 2.0, 5.0  # gross error size, in target standard deviations
DIABETES_TEST_FRACTION = 0.3
HUBER_DELTA = 1.0  # in units of the robust (MAD) scale of the training targets


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

    def per_element(loss: Callable[..., jax.Array]) -> Callable[[Params, Batch], jax.Array]:
        def objective(params: Params, batch: Batch) -> jax.Array:
            x, y = batch
            return jaxloss.mean(loss(linear(params, x), y, params["robust"]))

        return objective

    losses: list[tuple[str, str, Callable[..., jax.Array]]] = [
        ("MSE", "squared_error", lambda p, t, _: jaxloss.squared_error(p, t)),
        (
            f"Huber (delta={HUBER_DELTA:g})",
            f"huber(delta={HUBER_DELTA:g})",
            lambda p, t, _: jaxloss.huber(p, t, delta=HUBER_DELTA),
        ),
        (
            "adaptive Barron",
            "adaptive_robust_nll (alpha, scale learned)",
            lambda p, t, robust: jaxloss.adaptive_robust_nll(p, t, robust),
        ),
    ]

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
        _Method(name, code, _value_and_grad(per_element(loss))) for name, code, loss in losses
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


EXPERIMENTS = (imbalanced_digits, outlier_regression, multitask_wine)


# ------------------------------------------------------------------------------------------------
# Output


def _fmt(values: Sequence[float]) -> str:
    v = np.asarray(values, np.float64)
    scale = 100.0 if np.all((v >= 0) & (v <= 1)) else 1.0
    digits = 1 if scale == 100.0 or np.abs(v).max() >= 10 else 3
    unit = "%" if scale == 100.0 else ""
    if len(v) == 1:
        return f"{scale * v[0]:.{digits}f}{unit}"
    return f"{scale * v.mean():.{digits}f} ± {scale * v.std(ddof=1):.{digits}f}{unit}"


def render_table(exp: ExperimentResult) -> str:
    """The experiment as a plain-text table (metric means ± sample std over seeds)."""
    seeds = exp.methods[0].train_loss.shape[0]
    header = ["method", "jaxloss", *exp.metric_names]
    rows = [[m.name, m.loss, *(_fmt(m.metrics[k]) for k in exp.metric_names)] for m in exp.methods]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w) if i < 2 else c.rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )
    spread = f"mean ± std over {seeds} seeds" if seeds > 1 else "1 seed"
    out = [f"== {exp.title} ==", *(f"   {s}" for s in exp.setup)]
    out += [f"   held-out metrics, {spread}:", "   " + line(header)]
    out += ["   " + "  ".join("-" * w for w in widths)]
    out += ["   " + line(r) for r in rows]
    if seeds > 1:
        base = exp.methods[0]
        out.append(
            f"   paired with {base.name} (same split and initial weights), seeds better/tied/worse:"
        )
        for m in exp.methods[1:]:
            counts = []
            for k in exp.metric_names:
                diff = np.asarray(m.metrics[k]) - np.asarray(base.metrics[k])
                sign = 1 if _higher_is_better(k) else -1
                better, worse = int(np.sum(sign * diff > 0)), int(np.sum(sign * diff < 0))
                counts.append(f"{k} {better}/{seeds - better - worse}/{worse}")
            out.append(f"     {m.name}: {', '.join(counts)}")
    out += [f"   {m.name}: {m.note}" for m in exp.methods if m.note]
    return "\n".join(out)


def _higher_is_better(metric: str) -> bool:
    return not ("MAE" in metric or "RMSE" in metric)


def write_figure(results: Sequence[ExperimentResult], path: str | Path) -> Path:
    """One row per experiment: the held-out metric during training (mean over seeds, band =
    min..max), then one panel per final metric (mean ± std over seeds). PNG via matplotlib."""
    require("matplotlib", extra="demo", purpose="jaxloss demo")
    from matplotlib.figure import Figure

    cols = 1 + max(len(r.metric_names) for r in results)
    fig = Figure(figsize=(4.2 * cols, 3.4 * len(results)), layout="constrained")
    axes = fig.subplots(len(results), cols, squeeze=False)
    colors = [f"C{i}" for i in range(10)]
    for row, exp in zip(axes, results, strict=True):
        ax = row[0]
        for i, m in enumerate(exp.methods):
            steps = np.arange(m.curve.shape[1])
            mean = m.curve.mean(0)
            ax.plot(steps, mean, color=colors[i], label=m.name, lw=1.5)
            if m.curve.shape[0] > 1:
                lo, hi = m.curve.min(0), m.curve.max(0)
                ax.fill_between(steps, lo, hi, color=colors[i], alpha=0.12, lw=0)
        ax.set_title(exp.title, fontsize=10, loc="left")
        ax.set_xlabel("training step")
        ax.set_ylabel(exp.curve_metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        for j in range(1, cols):
            ax = row[j]
            if j > len(exp.metric_names):
                ax.set_visible(False)
                continue
            key = exp.metric_names[j - 1]
            values = [np.asarray(m.metrics[key]) for m in exp.methods]
            means = [v.mean() for v in values]
            errs = [v.std(ddof=1) if len(v) > 1 else 0.0 for v in values]
            x = np.arange(len(values))
            # Points with error bars, not bars: the axis need not start at 0 to be read right.
            for i, (mu, err) in enumerate(zip(means, errs, strict=True)):
                ax.errorbar(i, mu, yerr=err, fmt="o", color=colors[i], capsize=4, ms=6)
            ax.set_xticks(x, [m.name for m in exp.methods], rotation=25, ha="right", fontsize=7)
            ax.set_xlim(-0.6, len(values) - 0.4)
            ax.set_title(f"held-out {key} (mean ± std over seeds)", fontsize=9)
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
    """Runs the three experiments, prints their tables when ``verbose``, writes the PNG to
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
