"""jaxloss with optax alone: a linear fit whose robust loss learns its own shape and scale.

The targets carry Gaussian noise plus 15% gross outliers. The loss is Barron's adaptive robust
loss (negative log-likelihood), whose shape α and scale c are learnable: they are a pytree next to
the model's parameters, and one optax optimizer trains both. The outliers drive α down (towards
the Cauchy end), so the fit ignores them; least squares on the same data does not.

Run:  python examples/optax_train.py [--steps N]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxloss


def make_data(seed: int, n: int = 512, d: int = 4):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    w_true = rng.normal(size=d).astype(np.float32)
    outliers = (rng.random(n) < 0.15) * 20.0 * rng.normal(size=n)
    y = (x @ w_true + 0.1 * rng.normal(size=n) + outliers).astype(np.float32)
    return x, y, w_true


def main(steps: int = 500, seed: int = 0, lr: float = 0.05) -> dict:
    """Trains and returns the loss history, the learned (α, c) and the weights."""
    x, y, w_true = make_data(seed)
    params = {
        "model": {"w": jnp.zeros(x.shape[1]), "b": jnp.zeros(())},
        "robust": jaxloss.adaptive_robust_init(alpha_init=1.0, scale_init=1.0),
    }
    opt = optax.adam(lr)
    opt_state = opt.init(params)

    def loss_fn(params, x, y):
        pred = x @ params["model"]["w"] + params["model"]["b"]
        return jaxloss.mean(jaxloss.adaptive_robust_nll(pred, y, params["robust"]))

    @jax.jit
    def train_step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    history = []
    for step in range(steps):
        params, opt_state, loss = train_step(params, opt_state, x, y)
        history.append(float(loss))
        if __name__ == "__main__" and step % 100 == 0:
            alpha, scale = jaxloss.adaptive_robust_parameters(params["robust"])
            print(f"step {step:4d}  nll {loss:8.4f}  alpha {alpha:.3f}  scale {scale:.3f}")
    alpha, scale = jaxloss.adaptive_robust_parameters(params["robust"])
    return {"history": history, "alpha": float(alpha), "scale": float(scale),
            "w": params["model"]["w"], "w_true": w_true, "x": x, "y": y}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=500)
    out = main(ap.parse_args().steps)
    err = float(jnp.linalg.norm(out["w"] - out["w_true"]))
    print(f"learned alpha {out['alpha']:.3f}, scale {out['scale']:.3f}; |w - w_true| = {err:.4f}")
