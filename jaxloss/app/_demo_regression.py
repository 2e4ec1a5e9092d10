"""Demo experiments 2, 4 and 5: regression with outliers, small errors, asymmetric costs.

Each loss's row names the statistic its minimiser targets (mean, median, τ-quantile, τ-expectile,
an M-estimate), stated by hand in ``ExperimentLoss.statistic`` and checked numerically in
tests/test_demo_statistics.py.
"""

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
    ExperimentLoss,
    ExperimentResult,
    Method,
    Params,
    apply,
    dense,
    run_methods,
    value_and_grad,
)
from ._extras import require

__all__ = [
    "ASYMMETRIC_LOSSES",
    "OUTLIER_LOSSES",
    "SMALL_ERROR_LOSSES",
    "asymmetric_costs",
    "outlier_regression",
    "small_errors",
]

# ------------------------------------------------------------------------------------------------
# 2. Diabetes with gross errors in the training targets


OUTLIER_FRACTION = 0.2
OUTLIER_LOW, OUTLIER_HIGH = 2.0, 5.0  # gross error size, in target standard deviations
DIABETES_TEST_FRACTION = 0.3
HUBER_DELTA = 1.0  # in units of the robust (MAD) scale of the training targets

OUTLIER_LOSSES = (
    ExperimentLoss("MSE", "squared_error", "mean", lambda p, t, _: jaxloss.squared_error(p, t)),
    ExperimentLoss(
        f"Huber (delta={HUBER_DELTA:g})",
        f"huber_loss(delta={HUBER_DELTA:g})",
        f"Huber M-estimate (δ = {HUBER_DELTA:g})",
        lambda p, t, _: jaxloss.huber_loss(p, t, delta=HUBER_DELTA),
    ),
    ExperimentLoss(
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
        return apply(params["model"], x)[..., 0]

    def make(seed: int) -> tuple[Any, Batch, Batch, Any]:
        x_tr, y_tr, x_te, y_te = _diabetes_split(x_all, y_all, seed)
        # Targets centred and scaled robustly (median, MAD): the outliers do not set the units.
        center = float(np.median(y_tr))
        scale = float(1.4826 * np.median(np.abs(y_tr - center)))
        rng = np.random.default_rng([4, seed])
        params = {
            "model": dense(rng, x_tr.shape[1], 1),
            "robust": jaxloss.adaptive_robust_init(),
        }
        f = lambda a: jnp.asarray(a, F32)  # noqa: E731
        train = (f(x_tr), f((y_tr - center) / scale))
        test = (f(x_te), f(y_te), f(center), f(scale))
        return params, train, test, (x_te, y_te, center, scale)

    def per_element(loss: ExperimentLoss) -> Callable[[Params, Batch], jax.Array]:
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
        Method(loss.name, loss.code, value_and_grad(per_element(loss)), loss.statistic)
        for loss in OUTLIER_LOSSES
    ]
    results = run_methods(
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
    ExperimentLoss("MSE", "squared_error", "mean", lambda p, t, _: jaxloss.squared_error(p, t)),
    ExperimentLoss(
        f"Wing (omega={WING_OMEGA:g}, epsilon={WING_EPSILON:g})",
        f"wing_loss(omega={WING_OMEGA:g}, epsilon={WING_EPSILON:g})",
        f"Wing M-estimate (ω = {WING_OMEGA:g}, ε = {WING_EPSILON:g})",
        lambda p, t, _: jaxloss.wing_loss(p, t, omega=WING_OMEGA, epsilon=WING_EPSILON),
    ),
    ExperimentLoss(
        f"log-cosh (scale {LOG_COSH_SCALE:g})",
        f"rescaled(log_cosh, {LOG_COSH_SCALE:g})",
        f"log-cosh M-estimate (scale {LOG_COSH_SCALE:g})",
        lambda p, t, _: jaxloss.rescaled(jaxloss.log_cosh, LOG_COSH_SCALE)(p, t),
    ),
    ExperimentLoss(
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
        return apply(params["model"], x)[..., 0]

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

    def per_element(loss: ExperimentLoss) -> Callable[[Params, Batch], jax.Array]:
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
        Method(loss.name, loss.code, value_and_grad(per_element(loss)), loss.statistic)
        for loss in SMALL_ERROR_LOSSES
    ]
    results = run_methods(
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


def _pinball(k: int) -> ExperimentLoss:
    tau = _level(k)
    return ExperimentLoss(
        f"pinball (tau={tau:g})",
        f"pinball_loss(tau={tau:g})",
        "median" if k == 1 else f"{tau:g}-quantile",
        lambda p, t, _: jaxloss.pinball_loss(p, t, tau=tau),
    )


def _asymmetric_squared(k: int) -> ExperimentLoss:
    return ExperimentLoss(
        f"asymmetric MSE (under x{k})",
        f"asymmetric(squared_error, under={k})",
        f"{_level(k):g}-expectile",
        lambda p, t, _: jaxloss.asymmetric(jaxloss.squared_error, under=float(k))(p, t),
    )


ASYMMETRIC_LOSSES = (
    ExperimentLoss("MSE", "squared_error", "mean", lambda p, t, _: jaxloss.squared_error(p, t)),
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
        return apply(params["model"], x)[..., 0]

    def make(seed: int) -> tuple[Any, Batch, Batch, Any]:
        rng = np.random.default_rng([9, seed])
        x_tr, y_tr, x_te, y_te = _holdout_split(x_all, y_all, rng, ASYMMETRIC_TEST_FRACTION)
        center, scale = float(y_tr.mean()), float(y_tr.std())
        params = {"model": dense(rng, x_tr.shape[1], 1)}
        f = lambda a: jnp.asarray(a, F32)  # noqa: E731
        train = (f(x_tr), f((y_tr - center) / scale))
        test = (f(x_te), f((y_te - center) / scale))
        return params, train, test, (x_te, y_te, center, scale)

    def per_element(loss: ExperimentLoss) -> Callable[[Params, Batch], jax.Array]:
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
        Method(loss.name, loss.code, value_and_grad(per_element(loss)), loss.statistic)
        for loss in ASYMMETRIC_LOSSES
    ]
    results = run_methods(
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
