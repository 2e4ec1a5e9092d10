"""Per-step time of each multi-task gradient method vs the summed-loss step, T = 2, 4, 8.

One process, interleaved (each round times every method once, in turn), median of warm steps,
compile time reported apart. The step: an MLP trunk (shared) + T linear heads on a batch;
"sum" = jax.value_and_grad of the summed loss + Adam; a method = the trunk's per-task Jacobian
and the heads' summed gradient from one forward (mt.task_value_and_trunk_jacobian, vmapped VJP) +
the aggregator's update + Adam. "upgrad, 2 passes" is the same UPGrad step written as before the
helper existed (task_value_and_jacobian of the trunk, and a second jax.grad for the heads).
The goal: at most (T + 0.5)x the summed step. Results: a table and JSON (--json PATH).

Run:  python bench/multitask_gradients.py [--rounds 30] [--tasks 2 4 8] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import optax

import jaxloss.multitask as mt

METHODS = {
    "pcgrad": lambda: (mt.pcgrad(), jax.random.key(0)),
    "mgda": lambda: (mt.mgda(), None),
    "upgrad": lambda: (mt.upgrad(), None),
    "cagrad": lambda: (mt.cagrad(0.5), None),
    "imtl_g": lambda: (mt.imtl_g(), None),
    "aligned_mtl": lambda: (mt.aligned_mtl(), None),
    "nash_mtl": lambda: (mt.nash_mtl(), None),
}


def make(t: int, batch: int, d_in: int, hidden: int):
    k = jax.random.split(jax.random.key(0), 5)
    params = {
        "trunk": {
            "w1": jax.random.normal(k[0], (d_in, hidden)) / d_in**0.5,
            "w2": jax.random.normal(k[1], (hidden, hidden)) / hidden**0.5,
        },
        "heads": jax.random.normal(k[2], (t, hidden)) / hidden**0.5,
    }
    x = jax.random.normal(k[3], (batch, d_in))
    y = jax.random.normal(k[4], (t, batch))
    names = [f"task{i}" for i in range(t)]

    def losses(trunk, heads):
        h = jnp.tanh(jnp.tanh(x @ trunk["w1"]) @ trunk["w2"])
        pred = heads @ h.T  # [T, B]
        per_task = jnp.mean((pred - y) ** 2, axis=1)
        return {n: per_task[i] for i, n in enumerate(names)}

    return params, losses, names


def steps(t: int, batch: int, d_in: int, hidden: int):
    params, losses, names = make(t, batch, d_in, hidden)
    out = {}
    adam = optax.adam(1e-3)

    def summed_step(p, s):
        g = jax.grad(lambda q: sum(losses(q["trunk"], q["heads"]).values()))(p)
        u, s = adam.update(g, s, p)
        return optax.apply_updates(p, u), s

    out["sum"] = (jax.jit(summed_step), adam.init(params))
    grads_of = mt.task_value_and_trunk_jacobian(losses)
    for name, factory in METHODS.items():
        agg, key = factory()

        def step(p, s, agg=agg):
            s_opt, s_agg = s
            _, jac, g_heads = grads_of(p["trunk"], p["heads"])
            g_trunk, s_agg = agg.update(jac, s_agg)
            u, s_opt = adam.update({"trunk": g_trunk, "heads": g_heads}, s_opt, p)
            return optax.apply_updates(p, u), (s_opt, s_agg)

        out[name] = (jax.jit(step), (adam.init(params), agg.init(names, key=key)))

    upgrad = mt.upgrad()

    def two_passes(p, s):
        s_opt, s_agg = s
        _, jac = mt.task_value_and_jacobian(lambda tr: losses(tr, p["heads"]))(p["trunk"])
        g_heads = jax.grad(lambda h: sum(losses(p["trunk"], h).values()))(p["heads"])
        g_trunk, s_agg = upgrad.update(jac, s_agg)
        u, s_opt = adam.update({"trunk": g_trunk, "heads": g_heads}, s_opt, p)
        return optax.apply_updates(p, u), (s_opt, s_agg)

    out["upgrad, 2 passes"] = (jax.jit(two_passes), (adam.init(params), upgrad.init(names)))
    return params, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--tasks", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--d-in", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    results = []
    for t in args.tasks:
        params, fns = steps(t, args.batch, args.d_in, args.hidden)
        compile_s, state = {}, {}
        for name, (fn, s) in fns.items():
            t0 = time.perf_counter()
            p2, s2 = fn(params, s)
            jax.block_until_ready(p2)
            compile_s[name] = time.perf_counter() - t0
            state[name] = s2
            for _ in range(3):  # warm
                p2, s2 = fn(params, s2)
            jax.block_until_ready(p2)
        times: dict[str, list[float]] = {n: [] for n in fns}
        for _ in range(args.rounds):
            for name, (fn, _) in fns.items():
                t0 = time.perf_counter()
                jax.block_until_ready(fn(params, state[name]))
                times[name].append(time.perf_counter() - t0)
        base = statistics.median(times["sum"])
        for name in fns:
            med = statistics.median(times[name])
            results.append(
                {
                    "T": t,
                    "method": name,
                    "median_ms": med * 1e3,
                    "ratio_to_sum": med / base,
                    "goal_ratio": t + 0.5,
                    "compile_s": compile_s[name],
                }
            )
    print(
        f"jax {jax.__version__}, {jax.devices()[0].platform}, {platform.processor() or ''}; "
        f"batch {args.batch}, MLP {args.d_in}-{args.hidden}-{args.hidden}, "
        f"{args.rounds} interleaved rounds, medians"
    )
    print(f"{'T':>2} {'method':>16} {'ms/step':>9} {'x sum':>7} {'goal':>5} {'compile s':>9}")
    for r in results:
        print(
            f"{r['T']:>2} {r['method']:>16} {r['median_ms']:9.3f} {r['ratio_to_sum']:7.2f} "
            f"{r['goal_ratio']:5.1f} {r['compile_s']:9.2f}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
