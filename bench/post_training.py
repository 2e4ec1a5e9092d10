"""Benchmark: the post-training objectives fused with the head against the unfused path.

    python bench/post_training.py                 # B=8 pairs, T=128, D=512, V=32768, float32
    python bench/post_training.py --t 256 --reps 7

Contenders (value-and-grad w.r.t. the policy's hidden states and unembedding, float32):

  dpo naive   logits = hidden @ W for chosen and rejected, log_softmax, gather, masked sums,
              then jaxloss.dpo_loss ([2·B·T, V] logits and their gradient in memory)
  dpo fused   jaxloss.fused.linear_dpo_loss (both sequences through the blocked head in one pass)
  grpo naive  logits, log_softmax, gather, then jaxloss.policy_gradient_loss (token_mean)
  grpo fused  jaxloss.fused.linear_policy_gradient_loss

Reported, side by side in one run: XLA temporaries from ``compile().memory_analysis()``
(deterministic) at the timed size and, compile only, at 8,192 tokens per side, D = 1024,
V = 65,536; interleaved wall-time medians of warm runs and the process CPU time; fused / naive
ratios. Each pair is checked for agreement first. Writes bench/results_post_training.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jaxloss
import jaxloss.fused as F

MiB = 2**20


def _tok(h, w, y):
    logp = jax.nn.log_softmax(h @ w, axis=-1)
    return jnp.take_along_axis(logp, y[..., None], -1)[..., 0]


def dpo(fused, block):
    def f(hc, w, hr, yc, yr, rc, rr):
        if fused:
            v = F.linear_dpo_loss(
                hc, hr, w, yc, yr, reference_chosen=rc, reference_rejected=rr, block_size=block
            )
        else:
            m = jnp.ones(yc.shape, bool)
            pc = jaxloss.sequence_log_probs(_tok(hc, w, yc), m)
            pr = jaxloss.sequence_log_probs(_tok(hr, w, yr), m)
            v = jaxloss.dpo_loss(pc, pr, rc, rr)
        return jnp.sum(v)

    return jax.jit(jax.value_and_grad(f, (0, 1)))


def grpo(fused, block):
    def f(h, w, y, old, adv):
        m = jnp.ones(y.shape, bool)
        kw = dict(aggregation="token_mean", reduction="mean")
        if fused:
            return F.linear_policy_gradient_loss(h, w, y, m, old, adv, block_size=block, **kw)
        return jaxloss.policy_gradient_loss(_tok(h, w, y), old, adv, m, **kw)

    return jax.jit(jax.value_and_grad(f, (0, 1)))


def inputs(kind, b, t, d, v, seed=0):
    rng = np.random.default_rng(seed)
    h = jnp.asarray(rng.normal(size=(b, t, d)), jnp.float32)
    w = jnp.asarray(rng.normal(scale=d**-0.5, size=(d, v)), jnp.float32)
    y = jnp.asarray(rng.integers(0, v, size=(b, t)), jnp.int32)
    if kind == "dpo":
        h2 = jnp.asarray(rng.normal(size=(b, t, d)), jnp.float32)
        y2 = jnp.asarray(rng.integers(0, v, size=(b, t)), jnp.int32)
        ref = jnp.asarray(rng.normal(size=(b,)) - 5 * t, jnp.float32)
        return (h, w, h2, y, y2, ref, ref - 1.0)
    old = _tok(h, w, y) - jnp.asarray(rng.uniform(-0.1, 0.1, size=(b, t)), jnp.float32)
    return (h, w, y, old, jnp.asarray(rng.normal(size=(b,)), jnp.float32))


def shapes(kind, b, t, d, v):
    return jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype),
        jax.eval_shape(lambda: inputs(kind, b, t, d, v)),
    )


def temp_mib(fn, args):
    return fn.lower(*args).compile().memory_analysis().temp_size_in_bytes / MiB


def timed(fns, args, reps):
    wall = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            jax.block_until_ready(f(*args))
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    return (
        {k: statistics.median(v) for k, v in wall.items()},
        {k: statistics.median(v) for k, v in cpu.items()},
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--b", type=int, default=8)
    ap.add_argument("--t", type=int, default=128)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--v", type=int, default=32768)
    ap.add_argument("--block", type=int, default=2048)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--no-big", action="store_true", help="skip the compile-only large case")
    ap.add_argument("--json", default=str(Path(__file__).with_name("results_post_training.json")))
    a = ap.parse_args(argv)
    out = {"size": dict(b=a.b, t=a.t, d=a.d, v=a.v, block=a.block), "pairs": {}}
    for kind, make in (("dpo", dpo), ("grpo", grpo)):
        fns = {"naive": make(False, a.block), "fused": make(True, a.block)}
        args = inputs(kind, a.b, a.t, a.d, a.v)
        (vn, gn), (vf, gf) = fns["naive"](*args), fns["fused"](*args)
        np.testing.assert_allclose(vf, vn, rtol=2e-4, atol=1e-4)
        for x, y in zip(gf, gn, strict=True):
            np.testing.assert_allclose(x, y, rtol=2e-3, atol=2e-5)
        mem = {k: temp_mib(f, args) for k, f in fns.items()}
        wall, cpu = timed(fns, args, a.reps)
        row = {
            "temp_mib": mem,
            "temp_ratio": mem["fused"] / mem["naive"],
            "wall_s": wall,
            "wall_ratio": wall["fused"] / wall["naive"],
            "cpu_s": cpu,
            "cpu_ratio": cpu["fused"] / cpu["naive"],
        }
        if not a.no_big:
            # 8,192 tokens per side: dpo 8 pairs of 1,024 tokens; grpo 8 sequences of 1,024.
            big = shapes(kind, 8, 1024, 1024, 65536)
            bm = {k: temp_mib(make(k == "fused", a.block), big) for k in ("naive", "fused")}
            row["big_temp_mib"] = bm
            row["big_temp_ratio"] = bm["fused"] / bm["naive"]
        out["pairs"][kind] = row
        print(
            f"{kind}: temporaries {mem['fused']:.1f} / {mem['naive']:.1f} MiB "
            f"({row['temp_ratio']:.1%}); wall {row['wall_ratio']:.2f}x, cpu "
            f"{row['cpu_ratio']:.2f}x"
            + (
                f"; at 8192 tokens/side, D=1024, V=65536: {row['big_temp_ratio']:.1%}"
                if "big_temp_ratio" in row
                else ""
            ),
            flush=True,
        )
    Path(a.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
