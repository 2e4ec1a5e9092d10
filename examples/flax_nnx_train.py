"""jaxloss with Flax NNX: a two-task model whose task weights are learned (uncertainty weighting).

One shared trunk, two heads: a regression of a target in the tens and a 3-class classification.
`jaxloss.multitask_loss` gives each task's mean loss; `jaxloss.multitask.uncertainty_weighting`
weights them by learned log-variances s = log σ², which are `nnx.Param`s of the model, so the one
`nnx.Optimizer` trains them with the network. At the optimum σ² tracks each task's loss
(σ² = L for regression, 2L for classification), so neither task's scale dominates the other.

Run:  python examples/flax_nnx_train.py [--steps N]
"""

from __future__ import annotations

import argparse

import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import jaxloss
import jaxloss.multitask as mt

KINDS = {"value": "regression", "label": "classification"}
OBJECTIVE = jaxloss.multitask_loss({
    "value": jaxloss.squared_error,
    "label": jaxloss.softmax_cross_entropy_with_integer_labels,
})


class TwoHeads(nnx.Module):
    def __init__(self, d_in: int, hidden: int, classes: int, *, rngs: nnx.Rngs):
        self.trunk = nnx.Linear(d_in, hidden, rngs=rngs)
        self.value = nnx.Linear(hidden, 1, rngs=rngs)
        self.label = nnx.Linear(hidden, classes, rngs=rngs)
        # learned s per task; a dict holding Variables must be marked as data
        self.log_var = nnx.data({t: nnx.Param(jnp.zeros(())) for t in sorted(KINDS)})

    def __call__(self, x):
        h = nnx.relu(self.trunk(x))
        return {"value": self.value(h)[:, 0], "label": self.label(h)}


def make_data(seed: int, n: int = 512, d: int = 8, classes: int = 3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    value = 10.0 * np.tanh(x @ rng.normal(size=d)) + 2.0 * rng.normal(size=n)
    p = np.exp(x @ rng.normal(size=(d, classes)))
    u = rng.random((n, 1))
    label = (u > np.cumsum(p / p.sum(1, keepdims=True), axis=1)).sum(1)  # noisy labels ~ softmax
    return x, {"value": value.astype(np.float32), "label": label}


def loss_fn(model: TwoHeads, x, targets):
    _, aux = OBJECTIVE(model(x), targets)                      # per-task means
    log_var = {t: p[...] for t, p in model.log_var.items()}
    total, uw = mt.uncertainty_weighting(aux["losses"], log_var, kinds=KINDS)
    return total, uw


@nnx.jit
def train_step(model: TwoHeads, optimizer: nnx.Optimizer, x, targets):
    (total, uw), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model, x, targets)
    optimizer.update(model, grads)  # updates the model's nnx.Params in place
    return total, uw


def main(steps: int = 300, seed: int = 0, lr: float = 0.03) -> dict:
    """Trains and returns per-task loss histories and the final learned variances."""
    x, targets = make_data(seed)
    model = TwoHeads(x.shape[1], 32, 3, rngs=nnx.Rngs(seed))
    optimizer = nnx.Optimizer(model, optax.adam(lr), wrt=nnx.Param)
    history: dict[str, list[float]] = {t: [] for t in KINDS}
    for step in range(steps):
        total, uw = train_step(model, optimizer, x, targets)
        for t in KINDS:
            history[t].append(float(uw["losses"][t]))
        if __name__ == "__main__" and step % 100 == 0:
            print(f"step {step:4d}  total {total:8.4f}  " + "  ".join(
                f"{t} {uw['losses'][t]:8.4f} (σ² {uw['variances'][t]:7.3f})" for t in KINDS))
    return {"history": history, "variances": {t: float(v) for t, v in uw["variances"].items()}}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    out = main(ap.parse_args().steps)
    print({t: (round(h[-1], 4), round(out["variances"][t], 4)) for t, h in out["history"].items()})
