"""Demo experiment 3: one shared layer, two tasks (wine cultivar and proline)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxloss
import jaxloss.multitask as mt

from ._demo_training import (
    F32,
    Batch,
    ExperimentResult,
    GradFn,
    Method,
    Params,
    apply,
    dense,
    run_methods,
    value_and_grad,
)
from ._extras import require

__all__ = ["multitask_wine"]


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
        return jnp.tanh(apply(shared, x))

    def heads_out(heads: Params, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        return apply(heads["cultivar"], h), apply(heads["proline"], h)[..., 0]

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
            "shared": dense(rng, x_tr.shape[1], WINE_HIDDEN),
            "heads": {
                "cultivar": dense(rng, WINE_HIDDEN, 3),
                "proline": dense(rng, WINE_HIDDEN, 1),
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
        Method("equal weights", "CE + MSE", value_and_grad(equal_objective)),
        Method(
            "uncertainty weighting",
            "multitask.uncertainty_weighting",
            value_and_grad(uncertainty_objective),
        ),
        Method("UPGrad", "multitask.upgrad()", aggregated(mt.upgrad())),
        Method("Nash-MTL", "multitask.nash_mtl()", aggregated(mt.nash_mtl())),
    ]
    results = run_methods(
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
