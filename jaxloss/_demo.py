"""``python -m jaxloss``: a short, seeded demo that trains two small models with optax.

1. A 2-64-64-3 MLP (plain ``jax.numpy``) on a noisy three-armed spiral, trained with
   :func:`jaxloss.softmax_cross_entropy_with_integer_labels` and :func:`jaxloss.mean`. One array
   holds every point; the train / held-out split is a boolean mask given to the mean as ``where=``.
2. A line ``y = 2x + 0.5`` fitted to data where 15% of the targets come from a corrupting process,
   once with :func:`jaxloss.squared_error` and once with :func:`jaxloss.huber`: the Huber fit
   recovers the true slope, the squared-error fit is dragged towards the outliers.

The process exits with status 0 only if every training loss fell. A few seconds on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxloss

__all__ = ["DemoResult", "main", "run"]

Params = dict[str, jax.Array]

NUM_CLASSES = 3
POINTS_PER_CLASS = 200
SPIRAL_NOISE = 0.4  # radians of angular noise: the arms overlap a little, so 100% is out of reach
HIDDEN = 64
MLP_LEARNING_RATE = 1e-2

TRUE_SLOPE = 2.0
TRUE_INTERCEPT = 0.5
CLEAN_NOISE = 0.3
OUTLIER_FRACTION = 0.15
OUTLIER_SLOPE = -3.0
HUBER_DELTA = 0.5  # about 1.5 standard deviations of the clean noise
LINE_LEARNING_RATE = 5e-2


@dataclasses.dataclass(frozen=True)
class DemoResult:
    """What :func:`run` measured. ``*_losses[s]`` is the training loss before step s (s = 0 is
    the initial loss, s = steps the final one)."""

    steps: int
    classification_losses: list[float]
    heldout_losses: dict[int, float]
    train_accuracy: float
    heldout_accuracy: float
    mse_losses: list[float]
    huber_losses: list[float]
    mse_slope: float
    huber_slope: float
    least_squares_slope: float

    @property
    def mse_slope_error(self) -> float:
        return abs(self.mse_slope - TRUE_SLOPE)

    @property
    def huber_slope_error(self) -> float:
        return abs(self.huber_slope - TRUE_SLOPE)

    def failures(self) -> list[str]:
        """Why the run does not count as a success; empty when every training loss fell."""
        problems = []
        for name, hist in (
            ("spiral classification (cross-entropy)", self.classification_losses),
            ("line fit (squared_error)", self.mse_losses),
            ("line fit (huber)", self.huber_losses),
        ):
            first, last = hist[0], hist[-1]
            if not (math.isfinite(last) and last < first):
                problems.append(
                    f"{name}: training loss did not decrease ({first:.6g} -> {last:.6g})"
                )
        return problems


# ------------------------------------------------------------------------------------------------
# A generic jitted training loop


def _train(
    loss_fn: Callable[..., jax.Array],
    optimizer: optax.GradientTransformation,
    params: Any,
    data: Sequence[jax.Array],
    steps: int,
    snapshot_at: Sequence[int],
) -> tuple[Any, list[float], dict[int, Any]]:
    """``steps`` optimiser updates of ``loss_fn(params, *data)``.

    Returns the final params, the loss before each step followed by the final loss (steps + 1
    values), and the params before step s for each s in ``snapshot_at`` (s = steps: the final).
    """

    @jax.jit
    def step(params: Any, opt_state: Any, *data: jax.Array) -> tuple[Any, Any, jax.Array]:
        loss, grads = jax.value_and_grad(loss_fn)(params, *data)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    wanted = set(snapshot_at)
    snapshots = {}
    opt_state = jax.jit(optimizer.init)(params)
    losses = []
    for s in range(steps + 1):
        if s in wanted:
            snapshots[s] = params
        new_params, new_state, loss = step(params, opt_state, *data)
        losses.append(loss)
        if s < steps:  # The last call only measures the final loss (same compiled step).
            params, opt_state = new_params, new_state
    return params, [float(v) for v in jax.device_get(losses)], snapshots


def _log_rows(steps: int) -> list[int]:
    """About ten evenly spaced steps to print, always with 0 and the final one."""
    rows = list(range(0, steps, max(1, steps // 10)))
    return [*rows, steps]


# ------------------------------------------------------------------------------------------------
# 1. A three-class spiral and an MLP


def _spiral(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Three interleaved spiral arms in 2-D, not linearly separable: points [N, 2], labels [N]."""
    r = np.tile(np.linspace(0.05, 1.0, POINTS_PER_CLASS), NUM_CLASSES)
    labels = np.repeat(np.arange(NUM_CLASSES, dtype=np.int32), POINTS_PER_CLASS)
    theta = labels * (2 * np.pi / NUM_CLASSES) + 4.0 * r + SPIRAL_NOISE * rng.normal(size=r.shape)
    points = np.stack([r * np.sin(theta), r * np.cos(theta)], axis=-1)
    return points.astype(np.float32), labels


def _init_mlp(rng: np.random.Generator, sizes: Sequence[int]) -> Params:
    """He-normal weights, zero biases."""
    params = {}
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        params[f"w{i}"] = jnp.asarray(
            rng.normal(size=(n_in, n_out)) * np.sqrt(2.0 / n_in), jnp.float32
        )
        params[f"b{i}"] = jnp.zeros(n_out, jnp.float32)
    return params


def _mlp(params: Params, x: jax.Array) -> jax.Array:
    num_layers = len(params) // 2
    for i in range(num_layers):
        x = x @ params[f"w{i}"] + params[f"b{i}"]
        if i < num_layers - 1:
            x = jax.nn.relu(x)
    return x


def _classification_loss(
    params: Params, points: jax.Array, labels: jax.Array, counted: jax.Array
) -> jax.Array:
    per_example = jaxloss.softmax_cross_entropy_with_integer_labels(_mlp(params, points), labels)
    return jaxloss.mean(per_example, where=counted)


@jax.jit
def _evaluate(
    params: Params, points: jax.Array, labels: jax.Array, train: jax.Array
) -> dict[str, jax.Array]:
    logits = _mlp(params, points)
    correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
    per_example = jaxloss.softmax_cross_entropy_with_integer_labels(logits, labels)
    return {
        "heldout_loss": jaxloss.mean(per_example, where=~train),
        "train_accuracy": jaxloss.mean(correct, where=train),
        "heldout_accuracy": jaxloss.mean(correct, where=~train),
    }


# ------------------------------------------------------------------------------------------------
# 2. A line fit with outliers


def _contaminated_line(rng: np.random.Generator, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """y = 2x + 0.5 + noise, except that 15% of the targets follow y = -3x + noise."""
    x = rng.uniform(-2.0, 2.0, size=n)
    clean = TRUE_SLOPE * x + TRUE_INTERCEPT + CLEAN_NOISE * rng.normal(size=n)
    corrupt = OUTLIER_SLOPE * x + 0.5 * rng.normal(size=n)
    is_outlier = rng.uniform(size=n) < OUTLIER_FRACTION
    return x.astype(np.float32), np.where(is_outlier, corrupt, clean).astype(np.float32)


def _line_loss(
    loss: Callable[[jax.Array, jax.Array], jax.Array],
) -> Callable[[Params, jax.Array, jax.Array], jax.Array]:
    def fn(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
        return jaxloss.mean(loss(params["slope"] * x + params["intercept"], y))

    return fn


def _huber(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    return jaxloss.huber(predictions, targets, delta=HUBER_DELTA)


def _least_squares_slope(x: np.ndarray, y: np.ndarray) -> float:
    xc = x - x.mean()
    return float(np.sum(xc * (y - y.mean())) / np.sum(xc * xc))


# ------------------------------------------------------------------------------------------------
# Driver


def run(steps: int = 300, *, seed: int = 0, verbose: bool = True) -> DemoResult:
    """Trains both models for ``steps`` steps; prints step / loss tables when ``verbose``."""
    if steps < 1:
        raise ValueError(f"jaxloss demo: `steps` must be >= 1; got {steps}.")
    say: Callable[..., None] = print if verbose else (lambda *args: None)
    rows = _log_rows(steps)

    # Seeded NumPy data: tiny, and no compile time spent on random-number kernels.
    rng = np.random.default_rng(seed)
    np_points, np_labels = _spiral(rng)
    np_train = rng.uniform(size=np_labels.shape) < 0.8
    mlp0 = _init_mlp(rng, [2, HIDDEN, HIDDEN, NUM_CLASSES])
    np_x, np_y = _contaminated_line(rng)
    points, labels, train = jnp.asarray(np_points), jnp.asarray(np_labels), jnp.asarray(np_train)
    x, y = jnp.asarray(np_x), jnp.asarray(np_y)

    say(
        f"jaxloss demo: seed {seed}, {steps} steps, jax {jax.__version__} on "
        f"{jax.default_backend()}"
    )

    # 1. Classification: one dataset, the split is the `where=` mask of jaxloss.mean.
    mlp, cls_losses, snaps = _train(
        _classification_loss,
        optax.adam(MLP_LEARNING_RATE),
        mlp0,
        (points, labels, train),
        steps,
        rows,
    )
    heldout = {
        s: float(_evaluate(p, points, labels, train)["heldout_loss"]) for s, p in snaps.items()
    }
    final = {k: float(v) for k, v in _evaluate(mlp, points, labels, train).items()}

    say()
    say(
        f"1) {NUM_CLASSES}-class spiral, {int(np_train.sum())} train / {int((~np_train).sum())} "
        f"held-out points; MLP 2-{HIDDEN}-{HIDDEN}-{NUM_CLASSES}, "
        f"optax.adam({MLP_LEARNING_RATE:g})"
    )
    say(
        "   loss = jaxloss.mean(softmax_cross_entropy_with_integer_labels(logits, labels), "
        "where=train)"
    )
    say(f"   {'step':>6}  {'train loss':>10}  {'held-out loss':>13}")
    for s in rows:
        say(f"   {s:>6}  {cls_losses[s]:>10.4f}  {heldout[s]:>13.4f}")
    say(
        f"   accuracy: train {100 * final['train_accuracy']:.1f}%, held-out "
        f"{100 * final['heldout_accuracy']:.1f}% (chance {100 / NUM_CLASSES:.1f}%)"
    )

    # 2. Regression with outliers: the same model and optimiser, two losses.
    line0 = {"slope": jnp.zeros(()), "intercept": jnp.zeros(())}
    fit_mse, mse_losses, mse_snaps = _train(
        _line_loss(jaxloss.squared_error),
        optax.adam(LINE_LEARNING_RATE),
        line0,
        (x, y),
        steps,
        rows,
    )
    fit_huber, huber_losses, huber_snaps = _train(
        _line_loss(_huber), optax.adam(LINE_LEARNING_RATE), line0, (x, y), steps, rows
    )
    result = DemoResult(
        steps=steps,
        classification_losses=cls_losses,
        heldout_losses=heldout,
        train_accuracy=final["train_accuracy"],
        heldout_accuracy=final["heldout_accuracy"],
        mse_losses=mse_losses,
        huber_losses=huber_losses,
        mse_slope=float(fit_mse["slope"]),
        huber_slope=float(fit_huber["slope"]),
        least_squares_slope=_least_squares_slope(np_x, np_y),
    )

    say()
    say(
        f"2) line y = {TRUE_SLOPE:g}x + {TRUE_INTERCEPT:g} + noise, {np_x.size} points, "
        f"{100 * OUTLIER_FRACTION:.0f}% of the targets replaced by y = {OUTLIER_SLOPE:g}x + noise;"
        f" optax.adam({LINE_LEARNING_RATE:g})"
    )
    say(
        "   loss = jaxloss.mean(squared_error(a*x + b, y))  vs  "
        f"jaxloss.mean(huber(a*x + b, y, delta={HUBER_DELTA:g}))"
    )
    say(f"   {'step':>6}  {'squared_error':>13}  {'slope':>6}  {'huber':>8}  {'slope':>6}")
    for s in rows:
        say(
            f"   {s:>6}  {mse_losses[s]:>13.4f}  {float(mse_snaps[s]['slope']):>6.3f}  "
            f"{huber_losses[s]:>8.4f}  {float(huber_snaps[s]['slope']):>6.3f}"
        )
    say(
        f"   slope error |a - {TRUE_SLOPE:g}|: squared_error {result.mse_slope_error:.3f} "
        f"(closed-form least squares gives a = {result.least_squares_slope:.3f}), "
        f"huber {result.huber_slope_error:.3f}"
    )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m jaxloss [--steps N]``; returns the exit status (0 only if the losses fell)."""
    parser = argparse.ArgumentParser(
        prog="python -m jaxloss",
        description="Train a small MLP classifier and a line fit with outliers using jaxloss "
        "losses and optax.adam; print the loss falling; exit 1 if it did not.",
    )
    parser.add_argument("--steps", type=int, default=300, help="optimiser steps (default: 300)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be >= 1; got {args.steps}")

    result = run(args.steps)
    print()
    problems = result.failures()
    if problems:
        for problem in problems:
            print(f"FAILED: {problem}")
        return 1
    if result.huber_slope_error < result.mse_slope_error:
        robust = "huber recovers the true slope better than squared_error"
    else:
        robust = "huber did NOT recover the slope better than squared_error at this step count"
    print(
        f"OK: every training loss decreased; {robust} (slope error "
        f"{result.huber_slope_error:.3f} vs {result.mse_slope_error:.3f})."
    )
    return 0
