"""Benchmark: fused linear cross-entropy (jaxloss.fused) against the unfused LM head.

    python bench/linear_cross_entropy.py                 # N=4096, D=512, V=32768 float32
    python bench/linear_cross_entropy.py --reps 9 --blocks 1024 2048 4096 --vd-block 2048

Contenders (value-and-grad of the mean loss w.r.t. hidden and weight, float32):

  naive        logits = x @ W, then jaxloss.softmax_cross_entropy_with_integer_labels (6NDV FLOPs,
               [N, V] logits and [N, V] gradient in memory)
  fused[B]     jaxloss.fused.linear_cross_entropy with vocabulary block B, weight [D, V]
               (per-token custom_vjp: 2NDV forward, recompute + 2 GEMMs backward = 8NDV)
  fused-vd[B]  the same with the weight as [V, D]
  liger[C]     a prototype of the "gradients in the forward" design (Liger's FLCE) for a *mean*
               loss: C token chunks with full-vocabulary logits, loss and both gradients computed in
               one pass (6NDV), the backward only scales them. Not shipped (see docs/fused.md).

Reported: XLA temporary bytes from ``compile().memory_analysis()`` (deterministic, no allocation),
compile time, interleaved wall-time median and min of warm runs, the ratio to naive, and each time
as a fraction of the machine's GEMM roof measured in the same run (FLOPs from formulas, never
``cost_analysis``, which counts a loop body once). Also the compile-only memory of the large case
N=8192, D=2048, V=131072. Writes bench/results_linear_ce.json.
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
from jax import lax

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jaxloss
from jaxloss.fused import linear_cross_entropy

MiB = 2**20
S = jax.ShapeDtypeStruct


# ---------------------------------------------------------------------------------------------
# Contenders


def naive_loss(x, w, y):
    return jnp.mean(jaxloss.softmax_cross_entropy_with_integer_labels(x @ w, y))


def fused_loss(block, layout="dv"):
    def f(x, w, y):
        return jnp.mean(linear_cross_entropy(x, w, y, block_size=block, weight_layout=layout))

    return f


def liger_loss(chunks):
    """Mean CE with loss and gradients computed together per token chunk (prototype)."""

    def f(x, w, y):
        @jax.custom_vjp
        def mean_ce(x, w):
            return naive_loss(x, w, y)  # value only (not on the differentiated path)

        def fwd(x, w):
            n, d = x.shape
            xs, ys = x.reshape(chunks, n // chunks, d), y.reshape(chunks, n // chunks)

            def body(dw, inp):
                xc, yc = inp
                z = xc @ w
                m = jnp.max(z, axis=1, keepdims=True)
                lse = m[:, 0] + jnp.log(jnp.sum(jnp.exp(z - m), axis=1))
                hit = lax.broadcasted_iota(jnp.int32, z.shape, 1) == yc[:, None]
                zy = jnp.sum(jnp.where(hit, z, 0), axis=1)
                dz = (jnp.exp(z - lse[:, None]) - hit) / n
                return dw + xc.T @ dz, (dz @ w.T, jnp.sum(lse - zy))

            dw, (dx, parts) = lax.scan(body, jnp.zeros_like(w), (xs, ys))
            return jnp.sum(parts) / n, (dx.reshape(n, d), dw)

        def bwd(res, g):
            dx, dw = res
            return g * dx, g * dw

        mean_ce.defvjp(fwd, bwd)
        return mean_ce(x, w)

    return f


# ---------------------------------------------------------------------------------------------
# Measurement helpers


def temp_mib(f, *args):
    return f.lower(*args).compile().memory_analysis().temp_size_in_bytes / MiB


def gemm_rate(n=2048, reps=5):
    """(wall, CPU) FLOP/s of a float32 n³ GEMM, best of ``reps``."""
    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda a, b: a @ b)
    f(a, a).block_until_ready()
    wall, cpu = [], []
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        f(a, a).block_until_ready()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return 2 * n**3 / min(wall), 2 * n**3 / min(cpu)


def loadavg():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--v", type=int, default=32768)
    ap.add_argument("--blocks", type=int, nargs="+", default=[1024, 2048, 4096])
    ap.add_argument("--vd-block", type=int, default=2048, help="block of the [V, D] contender")
    ap.add_argument("--liger-chunks", type=int, nargs="*", default=[8])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--no-big", action="store_true", help="skip the compile-only large case")
    ap.add_argument("--json", default=str(Path(__file__).with_name("results_linear_ce.json")))
    args = ap.parse_args(argv)
    n, d, v = args.n, args.d, args.v

    key = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(key[0], (n, d), jnp.float32)
    w = jax.random.normal(key[1], (d, v), jnp.float32) / np.sqrt(d)
    y = jax.random.randint(key[2], (n,), 0, v)
    wt = w.T.copy()

    contenders = {"naive": (naive_loss, w)}
    for b in args.blocks:
        contenders[f"fused[{b}]"] = (fused_loss(b), w)
    contenders[f"fused-vd[{args.vd_block}]"] = (fused_loss(args.vd_block, "vd"), wt)
    for c in args.liger_chunks:
        contenders[f"liger[{c}]"] = (liger_loss(c), w)

    env = {
        "jax": jax.__version__, "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "device": str(jax.devices()[0]), "loadavg_start": loadavg(),
    }
    print(f"jax {env['jax']} on {env['device']}, {env['cpus']} CPUs, "
          f"load average {env['loadavg_start']:.2f}")
    roof, roof_cpu = gemm_rate()
    print(f"GEMM roof (2048^3 float32): {roof / 1e9:.0f} GFLOP/s wall, "
          f"{roof_cpu / 1e9:.0f} GFLOP per CPU-second")

    results: dict = {"env": env, "shape": {"N": n, "D": d, "V": v}, "gemm_flops": roof,
                     "gemm_flops_per_cpu_second": roof_cpu, "contenders": {}}
    vg, fw, compiled = {}, {}, {}
    for name, (loss, wm) in contenders.items():
        f_vg = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
        f_fw = jax.jit(loss)
        t = time.perf_counter()
        compiled[name] = f_vg.lower(x, wm, y).compile()
        ct = time.perf_counter() - t
        fw[name] = f_fw.lower(x, wm, y).compile()
        vg[name] = (compiled[name], wm)
        results["contenders"][name] = {
            "temp_mib_value_and_grad": compiled[name].memory_analysis().temp_size_in_bytes / MiB,
            "temp_mib_forward": fw[name].memory_analysis().temp_size_in_bytes / MiB,
            "compile_s_value_and_grad": ct,
        }

    # Correctness in the same harness: every contender against naive (float32).
    ref_v, ref_g = vg["naive"][0](x, w, y)
    for name, (c, wm) in vg.items():
        val, (gx, gw) = c(x, wm, y)
        gw = gw if wm is w else gw.T
        results["contenders"][name].update(
            value_abs_diff=float(jnp.abs(val - ref_v)),
            grad_hidden_max_abs_diff=float(jnp.max(jnp.abs(gx - ref_g[0]))),
            grad_weight_max_abs_diff=float(jnp.max(jnp.abs(gw - ref_g[1]))),
        )

    # Interleaved timing: one run of each contender per round, median and min over rounds.
    # CPU seconds (all threads of this process) are reported beside wall time: on a shared
    # machine they are much less sensitive to other processes' load.
    times = {k: [] for k in vg}
    ftimes = {k: [] for k in vg}
    cpus = {k: [] for k in vg}
    for _ in range(args.reps + 1):  # the first round is a warm-up
        for name, (c, wm) in vg.items():
            t, cp = time.perf_counter(), time.process_time()
            jax.block_until_ready(c(x, wm, y))
            times[name].append(time.perf_counter() - t)
            cpus[name].append(time.process_time() - cp)
            t = time.perf_counter()
            jax.block_until_ready(fw[name](x, wm, y))
            ftimes[name].append(time.perf_counter() - t)
    naive_med = float(np.median(times["naive"][1:]))
    naive_cpu = float(np.median(cpus["naive"][1:]))
    for name in vg:
        tv, tf = np.array(times[name][1:]), np.array(ftimes[name][1:])
        tc = np.array(cpus[name][1:])
        flops = (6 if name == "naive" or name.startswith("liger") else 8) * n * d * v
        r = results["contenders"][name]
        r.update(
            vg_median_ms=1e3 * float(np.median(tv)), vg_min_ms=1e3 * float(tv.min()),
            fwd_median_ms=1e3 * float(np.median(tf)), fwd_min_ms=1e3 * float(tf.min()),
            vg_ratio_to_naive=float(np.median(tv)) / naive_med,
            vg_cpu_median_s=float(np.median(tc)),
            vg_cpu_ratio_to_naive=float(np.median(tc)) / naive_cpu,
            vg_wall_ms_rounds=[1e3 * t for t in times[name][1:]],
            vg_flops_formula=flops,
            vg_fraction_of_gemm_roof=flops / roof / float(np.median(tv)),
            fwd_fraction_of_gemm_roof=2 * n * d * v / roof / float(np.median(tf)),
        )
    naive_temp = results["contenders"]["naive"]["temp_mib_value_and_grad"]
    for r in results["contenders"].values():
        r["temp_fraction_of_naive"] = r["temp_mib_value_and_grad"] / naive_temp

    if not args.no_big:
        bn, bd, bv = 8192, 2048, 131072
        big_args = (S((bn, bd), jnp.float32), S((bd, bv), jnp.float32), S((bn,), jnp.int32))
        big = {"N": bn, "D": bd, "V": bv}
        for name, loss in [("naive", naive_loss)] + [
                (f"fused[{b}]", fused_loss(b)) for b in (1024, 2048, 4096)]:
            t = time.perf_counter()
            big[name] = temp_mib(jax.jit(jax.value_and_grad(loss, argnums=(0, 1))), *big_args)
            big[name + "_compile_s"] = time.perf_counter() - t
        for b in (1024, 2048, 4096):
            big[f"fused[{b}]_fraction_of_naive"] = big[f"fused[{b}]"] / big["naive"]
        results["large_compile_only_temp_mib"] = big

    env["loadavg_end"] = loadavg()
    print(f"\nN={n} D={d} V={v} float32, value-and-grad of the mean loss w.r.t. (hidden, weight); "
          f"{args.reps} interleaved rounds")
    hdr = (f"{'contender':<16}{'temp MiB':>10}{'of naive':>10}{'fwd temp':>10}{'v&g med ms':>12}"
           f"{'min ms':>9}{'x naive':>9}{'cpu x naive':>12}{'GEMM roof':>11}{'fwd ms':>9}"
           f"{'compile s':>11}{'|dW| err':>10}")
    print(hdr)
    print("-" * len(hdr))
    for name, r in results["contenders"].items():
        print(f"{name:<16}{r['temp_mib_value_and_grad']:>10.1f}"
              f"{100 * r['temp_fraction_of_naive']:>9.1f}%{r['temp_mib_forward']:>10.1f}"
              f"{r['vg_median_ms']:>12.0f}{r['vg_min_ms']:>9.0f}{r['vg_ratio_to_naive']:>9.3f}"
              f"{r['vg_cpu_ratio_to_naive']:>12.3f}"
              f"{100 * r['vg_fraction_of_gemm_roof']:>10.0f}%{r['fwd_median_ms']:>9.0f}"
              f"{r['compile_s_value_and_grad']:>11.2f}{r['grad_weight_max_abs_diff']:>10.1e}")
    if "large_compile_only_temp_mib" in results:
        big = results["large_compile_only_temp_mib"]
        print(f"\nN=8192 D=2048 V=131072 (compile only): naive temp {big['naive']:.1f} MiB; " +
              "; ".join(f"fused[{b}] {big[f'fused[{b}]']:.1f} MiB "
                        f"({100 * big[f'fused[{b}]_fraction_of_naive']:.2f}%)"
                        for b in (1024, 2048, 4096)))
    print(f"load average: {env['loadavg_start']:.2f} at start, {env['loadavg_end']:.2f} at end")
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
