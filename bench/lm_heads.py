"""Benchmark: fused log-probabilities (+ entropy) and fused distillation against the unfused heads.

    python bench/lm_heads.py                          # timed at N=2048, D=512, V=32768 float32
    python bench/lm_heads.py --n 4096 --reps 7 --block 2048

Contenders (value-and-grad w.r.t. the student's hidden and weight, float32):

  logprobs naive   logits = x @ W, then jaxloss.token_log_probs(..., return_entropy=True);
                   objective Σ log p + Σ H ([N, V] logits and gradient in memory)
  logprobs fused   jaxloss.fused.linear_log_probs(..., return_entropy=True)
  distill naive    both heads' logits, then jaxloss.distillation_loss (JSD, β = 0.5), summed
  distill fused    jaxloss.fused.linear_distillation(..., reduction="sum") (JSD, β = 0.5): the
                   gradient formed in the forward pass; the teacher (hidden size 2D) is held
                   constant in both
  distill fused_pt the same with per-token values summed by the caller (reduction="none": the
                   backward recomputes both models' logits)
  distill_fkl      the same three with the forward KL

Reported, side by side in one run: XLA temporary bytes from ``compile().memory_analysis()``
(deterministic) at the timed size and, compile only, at N=8192, D=1024, V=65536; medians over
interleaved warm runs (the order alternating every round) of the process CPU time
(``time.process_time``: what the program costs, barely affected by other processes on a shared
machine) and of the wall time; fused / naive ratios. Each pair is checked for agreement first.
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
    """fused: False (the logits), True (reduction="sum") or "per_token" (reduction="none")."""

    def f(xs, ws, xt, wt):
        if fused is True:
            return linear_distillation(
                xs, ws, xt, wt, divergence=divergence, block_size=block, reduction="sum"
            )
        if fused == "per_token":
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
    """Interleaved warm runs, the order alternating every round; per contender the medians of
    (process CPU seconds, wall seconds)."""
    for f in fns:
        jax.block_until_ready(f(*args))
    cpu = [[] for _ in fns]
    wall = [[] for _ in fns]
    for r in range(reps):
        order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            w0, c0 = time.perf_counter(), time.process_time()
            jax.block_until_ready(fns[i](*args))
            cpu[i].append(time.process_time() - c0)
            wall[i].append(time.perf_counter() - w0)
    return [(float(np.median(c)), float(np.median(w))) for c, w in zip(cpu, wall, strict=True)]


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
        variants = {"naive": False, "fused": True}
        if kind != "logprobs":
            variants["fused_pt"] = "per_token"
        fns = {name: make(v, a.block) for name, v in variants.items()}
        args = inputs(kind, a.n, a.d, a.v)
        vn, gn = fns["naive"](*args)
        for name in list(variants)[1:]:
            vf, gf = fns[name](*args)
            np.testing.assert_allclose(float(vf), float(vn), rtol=1e-4)
            for p, q in zip(gf, gn, strict=True):
                np.testing.assert_allclose(
                    np.asarray(p), np.asarray(q), rtol=2e-3, atol=2e-3 * float(jnp.max(jnp.abs(q)))
                )
        times = dict(zip(fns, timed(list(fns.values()), args, a.reps), strict=True))
        row: dict = {}
        line = [f"{kind:11s}"]
        for name, f in fns.items():
            mem = temp_mib(f, *shapes(kind, a.n, a.d, a.v))
            cpu, wall = times[name]
            row[f"{name}_temp_mib"] = mem
            row[f"{name}_cpu_s"] = cpu
            row[f"{name}_wall_s"] = wall
            if name != "naive":
                row[f"{name}_memory_ratio"] = mem / row["naive_temp_mib"]
                row[f"{name}_cpu_ratio"] = cpu / row["naive_cpu_s"]
                row[f"{name}_wall_ratio"] = wall / row["naive_wall_s"]
                line.append(
                    f"{name}: temp x{mem / row['naive_temp_mib']:.3f}, CPU time "
                    f"x{cpu / row['naive_cpu_s']:.2f}, wall x{wall / row['naive_wall_s']:.2f}"
                )
            else:
                line.append(f"naive: temp {mem:.0f} MiB, CPU {cpu * 1e3:.0f} ms")
            if not a.no_big:
                big = temp_mib(make(variants[name], a.block), *shapes(kind, 8192, 1024, 65536))
                row[f"big_{name}_temp_mib"] = big
                if name != "naive":
                    row[f"big_{name}_memory_ratio"] = big / row["big_naive_temp_mib"]
                    line.append(f"(N=8192 D=1024 V=65536: x{big / row['big_naive_temp_mib']:.3f})")
        out[kind] = row
        print("; ".join(line))
    Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
