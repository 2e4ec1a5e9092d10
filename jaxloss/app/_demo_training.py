"""The demo's training harness: one compiled program per experiment, every method and seed.

A method is a rule (params, batch) -> (training objective, update direction); one Adam applies the
direction. All methods of an experiment share one compiled program (the method is a traced index
into ``lax.switch``), which is run once per (method, seed): compiling, not training, is what costs
time at this size.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = [
    "F32",
    "FAST_COMPILE",
    "Batch",
    "ExperimentLoss",
    "ExperimentResult",
    "GradFn",
    "Method",
    "MethodResult",
    "Params",
    "apply",
    "dense",
    "run_methods",
    "value_and_grad",
]

Params = Any
Batch = tuple[jax.Array, ...]
F32 = jnp.float32
GradFn = Callable[[Params, Batch], tuple[jax.Array, Params]]

# XLA options for a smoke run: about 40% less compile time, about 4x slower steps.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


@dataclasses.dataclass
class MethodResult:
    """One loss or weighting method of an experiment, over all seeds.

    ``metrics[name]`` holds one held-out value per seed; ``train_loss`` is [seeds, steps] (the
    training objective before each step); ``curve`` is [seeds, steps + 1], the experiment's
    ``curve_metric`` on the held-out set before each step and after the last.
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


@dataclasses.dataclass
class Method:
    name: str
    loss: str  # the jaxloss call, for the table
    grad_fn: GradFn
    statistic: str = ""


@dataclasses.dataclass(frozen=True)
class ExperimentLoss:
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


def value_and_grad(objective: Callable[[Params, Batch], jax.Array]) -> GradFn:
    return jax.value_and_grad(objective)


def make_trainer(
    methods: Sequence[Method],
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


def dense(rng: np.random.Generator, n_in: int, n_out: int) -> dict[str, jax.Array]:
    """Glorot-normal weights, zero bias."""
    w = rng.normal(size=(n_in, n_out)) * math.sqrt(2.0 / (n_in + n_out))
    return {"w": jnp.asarray(w, F32), "b": jnp.zeros(n_out, F32)}


def apply(layer: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    return x @ layer["w"] + layer["b"]


def run_methods(
    methods: Sequence[Method],
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
    trainer = make_trainer(methods, optimizer, monitor, steps)
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
        say(
            f"   {method.name:<26} {seeds} seed{'s' if seeds > 1 else ''} trained in "
            f"{time.perf_counter() - start:4.1f} s"
        )
    return results
