"""jaxloss with Haiku: two tasks on a shared trunk, whose update is UPGrad (an optax transform).

`hk.transform` turns the model into pure `init` / `apply` functions over a parameter dict keyed by
module name. The trunk's parameters get the per-task Jacobian (one forward pass,
`jaxloss.multitask.task_value_and_jacobian`), which `mt.upgrad().transform()` turns into one
update that conflicts with neither task; the heads get their plain gradient. `optax.partition`
routes the two groups of parameters by module name, so one optimizer state covers the model.

Run:  python examples/haiku_train.py [--steps N]
"""

from __future__ import annotations

import argparse

import haiku as hk
import jax
import numpy as np
import optax

import jaxloss
import jaxloss.multitask as mt


def forward(x):
    h = jax.nn.relu(hk.Linear(16, name="trunk")(x))
    return {"big": hk.Linear(1, name="head_big")(h)[:, 0],      # targets ~20x larger
            "small": hk.Linear(1, name="head_small")(h)[:, 0]}


model = hk.without_apply_rng(hk.transform(forward))  # no randomness in apply


def make_data(seed: int, n: int = 256, d: int = 8):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    u = rng.normal(size=d)
    v = -u + 0.5 * rng.normal(size=d)  # nearly opposite directions: the tasks conflict
    return x, {"big": 20.0 * np.tanh(x @ u).astype(np.float32),
               "small": np.tanh(x @ v).astype(np.float32)}


def task_losses(params, x, targets):
    pred = model.apply(params, x)
    return {t: jaxloss.mean(jaxloss.huber_loss(pred[t], targets[t])) for t in sorted(targets)}


def group(params):  # "trunk" gets the Jacobian and UPGrad; every head its own gradient
    return {m: jax.tree.map(lambda _, m=m: "trunk" if m == "trunk" else "head", v)
            for m, v in params.items()}


def main(steps: int = 300, seed: int = 0, lr: float = 0.01) -> dict:
    """Trains and returns the per-task loss histories."""
    x, targets = make_data(seed)
    params = model.init(jax.random.key(seed + 1), x)
    opt = optax.partition(
        {"trunk": optax.chain(mt.upgrad().transform(), optax.adam(lr)), "head": optax.adam(lr)},
        group)
    opt_state = opt.init(params)

    @jax.jit
    def train_step(params, opt_state, x, targets):
        losses, jac = mt.task_value_and_jacobian(task_losses)(params, x, targets)
        # heads: sum the task rows (each head has a gradient from its own task only)
        grads = {m: v if m == "trunk" else jax.tree.map(lambda j: j.sum(0), v)
                 for m, v in jac.items()}
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, losses

    history: dict[str, list[float]] = {t: [] for t in targets}
    for step in range(steps):
        params, opt_state, losses = train_step(params, opt_state, x, targets)
        for t in targets:
            history[t].append(float(losses[t]))
        if __name__ == "__main__" and step % 100 == 0:
            print(f"step {step:4d}  " + "  ".join(f"{t} {v:8.4f}" for t, v in losses.items()))
    return {"history": history}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    h = main(ap.parse_args().steps)["history"]
    print("relative loss (final / initial):", {t: round(v[-1] / v[0], 4) for t, v in h.items()})
