"""jaxloss.multitask with Flax NNX: a shared trunk and two task heads, trained with a gradient
aggregator (UPGrad) or a weighting method (GradNorm), without `optax.partition`.

`nnx.split(model, nnx.PathContains("trunk"), nnx.PathContains("heads"))` gives the trunk's and
the heads' parameters; `jaxloss.multitask.task_value_and_trunk_jacobian` runs the model once and
returns the per-task Jacobian of the trunk (one row per task) and the heads' summed gradient (a
head only sees its own task, so its plain gradient needs no aggregation). The trunk's rows go to:

- `upgrad`: `mt.upgrad().update(jacobian, state) -> (direction, state)`, a direction that
  conflicts with no task;
- `gradnorm`: `mt.grad_norm().update(losses, state, jacobian=jacobian) -> (weights, state)`, task
  weights that equalise the weighted gradient norms on the trunk, applied as
  `mt.combine(jacobian, weights)` (the heads keep their plain gradient: under Adam a constant
  factor on a head's own gradient hardly changes its step);
- `equal`: the summed loss, `mt.combine(jacobian, {task: 1})`, the baseline.

`(trunk direction, head gradient)` has the structure of `(trunk, heads)`: one Adam updates both.
Tasks: a regression of a target in the tens and a 3-class classification.

Run:  python examples/flax_nnx_multitask.py [--steps N] [--method upgrad|gradnorm|equal]
"""

from __future__ import annotations

import argparse

import jax
import numpy as np
import optax
from flax import nnx

import jaxloss
import jaxloss.multitask as mt

TASKS = ["label", "value"]
OBJECTIVE = mt.multitask_loss(
    {
        "value": jaxloss.squared_error,
        "label": jaxloss.softmax_cross_entropy_with_integer_labels,
    }
)


class TrunkAndHeads(nnx.Module):
    def __init__(self, d_in: int, hidden: int, classes: int, *, rngs: nnx.Rngs):
        self.trunk = nnx.Linear(d_in, hidden, rngs=rngs)
        # a dict holding Modules must be marked as data
        self.heads = nnx.data(
            {
                "value": nnx.Linear(hidden, 1, rngs=rngs),
                "label": nnx.Linear(hidden, classes, rngs=rngs),
            }
        )

    def __call__(self, x):
        h = nnx.relu(self.trunk(x))
        return {"value": self.heads["value"](h)[:, 0], "label": self.heads["label"](h)}


def make_data(seed: int, n: int = 512, d: int = 8, classes: int = 3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    value = 10.0 * np.tanh(x @ rng.normal(size=d)) + 2.0 * rng.normal(size=n)
    label = np.argmax(x @ rng.normal(size=(d, classes)), axis=1)
    return x, {"value": value.astype(np.float32), "label": label}


def main(steps: int = 200, method: str = "upgrad", seed: int = 0, lr: float = 0.01) -> dict:
    """Trains and returns the per-task loss histories (and GradNorm's last weights)."""
    x, targets = make_data(seed)
    model = TrunkAndHeads(x.shape[1], 32, 3, rngs=nnx.Rngs(seed))
    graphdef, trunk, heads = nnx.split(model, nnx.PathContains("trunk"), nnx.PathContains("heads"))

    def task_losses(trunk, heads, x, targets):
        _, aux = OBJECTIVE(nnx.merge(graphdef, trunk, heads)(x), targets)
        return aux["losses"]  # {task: mean loss}

    grads_of = mt.task_value_and_trunk_jacobian(task_losses)
    agg = mt.upgrad()
    gn = mt.grad_norm(alpha=1.5, learning_rate=0.025)
    state = {"upgrad": agg.init(TASKS), "gradnorm": gn.init(TASKS), "equal": None}[method]
    params = (trunk, heads)
    opt = optax.adam(lr)
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state, state):
        losses, jac, head_grads = grads_of(*params, x, targets)
        if method == "upgrad":
            direction, state = agg.update(jac, state)
        elif method == "gradnorm":
            weights, state = gn.update(losses, state, jacobian=jac)
            direction = mt.combine(jac, weights)
        else:
            direction = mt.combine(jac, dict.fromkeys(TASKS, 1.0))
        updates, opt_state = opt.update((direction, head_grads), opt_state, params)
        return optax.apply_updates(params, updates), opt_state, state, losses

    history: dict[str, list[float]] = {t: [] for t in TASKS}
    for i in range(steps):
        params, opt_state, state, losses = step(params, opt_state, state)
        for t in TASKS:
            history[t].append(float(losses[t]))
        if __name__ == "__main__" and i % 50 == 0:
            print(f"step {i:4d}  " + "  ".join(f"{t} {losses[t]:8.4f}" for t in TASKS))
    nnx.update(model, *params)  # the trained parameters back into the model
    out: dict = {"history": history, "model": model}
    if method == "gradnorm":
        out["weights"] = {t: float(w) for t, w in state.weights.items()}
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--method", default="upgrad", choices=["upgrad", "gradnorm", "equal"])
    args = ap.parse_args()
    out = main(args.steps, args.method)
    print({t: (round(h[0], 4), round(h[-1], 4)) for t, h in out["history"].items()})
    if "weights" in out:
        print("GradNorm weights:", {t: round(w, 3) for t, w in out["weights"].items()})
