"""Distilling a language-model head with jaxloss.fused and optax.

A "teacher" maps token features through a two-layer network (hidden size 128) and its own
unembedding to a 1024-entry vocabulary; it is random and fixed. A one-layer "student" (hidden size
32, its own unembedding) is trained with optax to match the teacher's next-token distributions,
with the fused generalized Jensen–Shannon divergence: neither model's [tokens, vocabulary] logits
are built, in the forward or the backward. The divergence falls; at the end the fused value is
checked against the same objective on explicit logits (jaxloss.distillation_loss).

Run:  python examples/distillation.py [--steps N]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxloss
from jaxloss.fused import linear_distillation

N, F, DT, DS, V = 256, 16, 128, 32, 1024  # tokens, features, teacher/student hidden, vocabulary
OPTS = {"divergence": "jsd", "beta": 0.5, "temperature": 2.0}


def make_teacher(seed: int):
    g = np.random.default_rng(seed)
    a = jnp.asarray(g.normal(scale=F**-0.5, size=(F, DT)), jnp.float32)
    b = jnp.asarray(g.normal(scale=DT**-0.5, size=(DT, DT)), jnp.float32)
    wt = jnp.asarray(g.normal(scale=3 * DT**-0.5, size=(DT, V)), jnp.float32)
    x = jnp.asarray(g.normal(size=(N, F)), jnp.float32)
    hidden = jnp.tanh(jnp.tanh(x @ a) @ b)
    return x, hidden, wt


def init_student(seed: int):
    g = np.random.default_rng(seed)
    return {"a": jnp.asarray(g.normal(scale=F**-0.5, size=(F, DS)), jnp.float32),
            "w": jnp.asarray(g.normal(scale=0.01, size=(DS, V)), jnp.float32)}


def main(steps: int = 150, seed: int = 0) -> dict:
    x, t_hidden, t_w = make_teacher(seed)
    params = init_student(seed + 1)
    opt = optax.adam(3e-2)
    state = opt.init(params)

    def loss(p):
        s_hidden = jnp.tanh(x @ p["a"])
        return linear_distillation(s_hidden, p["w"], t_hidden, t_w, block_size=256,
                                   reduction="mean", **OPTS)

    @jax.jit
    def step(p, s):
        value, grads = jax.value_and_grad(loss)(p)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s, value

    history = []
    for _ in range(steps):
        params, state, value = step(params, state)
        history.append(float(value))
    final = float(loss(params))
    s_hidden = jnp.tanh(x @ params["a"])
    unfused = float(jaxloss.distillation_loss(s_hidden @ params["w"], t_hidden @ t_w,
                                              reduction="mean", **OPTS))
    return {"history": history, "final": final, "unfused": unfused}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=150)
    out = main(ap.parse_args().steps)
    h = out["history"]
    print(f"JSD: step 0 {h[0]:.4f} -> step {len(h) - 1} {h[-1]:.4f}; "
          f"fused {out['final']:.6f} vs on logits {out['unfused']:.6f}")
