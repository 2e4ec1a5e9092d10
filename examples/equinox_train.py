"""jaxloss with Equinox: an MLP that predicts three quantiles of a noisy target (pinball loss).

The noise grows with |x|, so a good 10%-90% band widens away from 0. The model is an `eqx.nn.MLP`
(a pytree holding its own parameters) with three outputs, one per level τ; the loss is
`jaxloss.pinball_loss` with `tau` of shape [3], which scores the three outputs against one target.
`eqx.filter_jit` / `eqx.filter_value_and_grad` trace only the array leaves of the model, and the
optax state is built from those leaves (`eqx.filter(model, eqx.is_array)`).

Run:  python examples/equinox_train.py [--steps N]
"""

from __future__ import annotations

import argparse

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxloss

LEVELS = [0.1, 0.5, 0.9]
TAU = jnp.array(LEVELS)


def make_data(seed: int, n: int = 1024):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3.0, 3.0, size=(n, 1)).astype(np.float32)
    y = np.sin(x[:, 0]) + (0.1 + 0.3 * np.abs(x[:, 0])) * rng.normal(size=n)
    return x, y.astype(np.float32)


@eqx.filter_jit
def predict(model: eqx.nn.MLP, x):
    return jax.vmap(model)(x)  # [N, 3], one output per level; eqx.nn.MLP takes one example


def loss_fn(model: eqx.nn.MLP, x, y):
    q = predict(model, x)
    return jaxloss.mean(jaxloss.pinball_loss(q, y, tau=TAU))


def main(steps: int = 400, seed: int = 0, lr: float = 0.01) -> dict:
    """Trains and returns the loss history, the coverage of each quantile and the band widths."""
    x, y = make_data(seed)
    model = eqx.nn.MLP(1, len(TAU), width_size=32, depth=2, key=jax.random.key(seed + 1))
    opt = optax.adam(lr)
    opt_state = opt.init(eqx.filter(model, eqx.is_array))

    @eqx.filter_jit
    def train_step(model, opt_state, x, y):
        loss, grads = eqx.filter_value_and_grad(loss_fn)(model, x, y)
        updates, opt_state = opt.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    history = []
    for step in range(steps):
        model, opt_state, loss = train_step(model, opt_state, x, y)
        history.append(float(loss))
        if __name__ == "__main__" and step % 100 == 0:
            print(f"step {step:4d}  pinball {loss:.4f}")
    q = np.asarray(predict(model, x))
    coverage = [float(np.mean(y <= q[:, i])) for i in range(len(TAU))]
    near = np.abs(x[:, 0]) < 1.0
    width = q[:, 2] - q[:, 0]                      # 10%-90% band
    return {"history": history, "coverage": coverage,
            "width_near_0": float(width[near].mean()), "width_far": float(width[~near].mean())}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400)
    out = main(ap.parse_args().steps)
    print("fraction of targets below each quantile:", [round(c, 3) for c in out["coverage"]],
          "for", LEVELS)
    print(f"band width |x| < 1: {out['width_near_0']:.3f}, |x| >= 1: {out['width_far']:.3f}")
