"""Benchmark: fused log-probabilities (+ entropy) and fused distillation against the unfused heads.

    python bench/lm_heads.py                          # timed at N=2048, D=512, V=32768 float32
    python bench/lm_heads.py --n 4096 --reps 7 --block 2048

Contenders (value-and-grad w.r.t. the student's hidden and weight, float32):

  logprobs naive   logits = x @ W, then jaxloss.token_log_probs(..., return_entropy=True);
                   objective Σ log p + Σ H ([N, V] logits and gradient in memory)
  logprobs fused   jaxloss.fused.linear_log_probs(..., return_entropy=True)
  distill naive    both heads' logits, then jaxloss.distillation_loss (JSD, β = 0.5)
  distill fused    jaxloss.fused.linear_distillation (JSD, β = 0.5); the teacher (hidden size 2D)
                   is held constant in both
  distill_fkl      the same pair with the forward KL (one forward pass in the fused kernel)

Reported, side by side in one run: XLA temporary bytes from ``compile().memory_analysis()``
(deterministic) at the timed size and, compile only, at N=8192, D=1024, V=65536; interleaved
wall-time medians of warm runs; fused / naive ratios. Each pair is checked for agreement first.
Writes bench/results_lm_heads.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jaxloss
from jaxloss.fused import linear_distillation, linear_log_probs

MiB = 2**20
S = jax.ShapeDtypeStruct


def logprobs(fused, block):
    def f(x, w, y):
        if fused:
            lp, h = linear_log_probs(x, w, y, block_size=block, return_entropy=True)
        else:
            lp, h = jaxloss.token_log_probs(x @ w, y, return_entropy=True)
        return jnp.sum(lp) + jnp.sum(h)

    return jax.jit(jax.value_and_grad(f, (0, 1)))


def distill(fused, block, divergence="jsd"):
    def f(xs, ws, xt, wt):
        if fused:
            d = linear_distillation(xs, ws, xt, wt, divergence=divergence, block_size=block)
        else:
            d = jaxloss.distillation_loss(xs @ ws, xt @ wt, divergence=divergence)
        return jnp.sum(d)

    return jax.jit(jax.value_and_grad(f, (0, 1)))


def distill_fkl(fused, block):
    return distill(fused, block, "forward_kl")


def temp_mib(f, *shapes):
    return f.lower(*shapes).compile().memory_analysis().temp_size_in_bytes / MiB


def shapes(kind, n, d, v):
    if kind == "logprobs":
        return (S((n, d), jnp.float32), S((d, v), jnp.float32), S((n,), jnp.int32))
    # both distillation contenders: student hidden d, teacher hidden 2d
    return (
        S((n, d), jnp.float32),
        S((d, v), jnp.float32),
        S((n, 2 * d), jnp.float32),
        S((2 * d, v), jnp.float32),
    )


def inputs(kind, n, d, v, seed=0):
    g = np.random.default_rng(seed)
    x = jnp.asarray(g.normal(size=(n, d)), jnp.float32)
    w = jnp.asarray(g.normal(scale=d**-0.5, size=(d, v)), jnp.float32)
    if kind == "logprobs":
        return x, w, jnp.asarray(g.integers(0, v, size=n), jnp.int32)
    xt = jnp.asarray(g.normal(size=(n, 2 * d)), jnp.float32)
    wt = jnp.asarray(g.normal(scale=(2 * d) ** -0.5, size=(2 * d, v)), jnp.float32)
    return x, w, xt, wt


def timed(fns, args, reps):
    """Interleaved warm runs; median seconds per contender."""
    for f in fns:
        jax.block_until_ready(f(*args))
    times = [[] for _ in fns]
    for _ in range(reps):
        for i, f in enumerate(fns):
            t0 = time.perf_counter()
            jax.block_until_ready(f(*args))
            times[i].append(time.perf_counter() - t0)
    return [float(np.median(t)) for t in times]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--v", type=int, default=32768)
    ap.add_argument("--block", type=int, default=2048)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--no-big", action="store_true", help="skip the compile-only large case")
    ap.add_argument("--json", default=str(Path(__file__).with_name("results_lm_heads.json")))
    a = ap.parse_args(argv)
    out = {
        "meta": {
            "jax": jax.__version__,
            "backend": jax.default_backend(),
            "device": str(jax.devices()[0]),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "n": a.n,
            "d": a.d,
            "v": a.v,
            "block": a.block,
            "reps": a.reps,
        }
    }
    for kind, make in (("logprobs", logprobs), ("distill", distill), ("distill_fkl", distill_fkl)):
        naive, fused = make(False, a.block), make(True, a.block)
        args = inputs(kind, a.n, a.d, a.v)
        (vn, gn), (vf, gf) = naive(*args), fused(*args)
        np.testing.assert_allclose(float(vf), float(vn), rtol=1e-4)
        for p, q in zip(gf, gn, strict=True):
            np.testing.assert_allclose(
                np.asarray(p), np.asarray(q), rtol=2e-3, atol=2e-3 * float(jnp.max(jnp.abs(q)))
            )
        mem = [temp_mib(f, *shapes(kind, a.n, a.d, a.v)) for f in (naive, fused)]
        tn, tf = timed([naive, fused], args, a.reps)
        row = {
            "naive_temp_mib": mem[0],
            "fused_temp_mib": mem[1],
            "memory_ratio": mem[1] / mem[0],
            "naive_s": tn,
            "fused_s": tf,
            "time_ratio": tf / tn,
        }
        if not a.no_big:
            big = [
                temp_mib(make(f, a.block), *shapes(kind, 8192, 1024, 65536)) for f in (False, True)
            ]
            row.update(
                {
                    "big_naive_temp_mib": big[0],
                    "big_fused_temp_mib": big[1],
                    "big_memory_ratio": big[1] / big[0],
                }
            )
        out[kind] = row
        print(
            f"{kind:11s} temp MiB naive {mem[0]:9.1f} fused {mem[1]:8.1f} "
            f"(x{mem[1] / mem[0]:.3f}); time naive {tn * 1e3:8.1f} ms fused "
            f"{tf * 1e3:8.1f} ms (x{tf / tn:.2f})"
            + (
                ""
                if a.no_big
                else f"; N=8192 D=1024 V=65536 temp MiB naive {big[0]:.0f} "
                f"fused {big[1]:.0f} (x{big[1] / big[0]:.3f})"
            )
        )
    Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
