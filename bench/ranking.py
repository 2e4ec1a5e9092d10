"""Benchmark: jaxloss.ranking_softmax_loss against optax.losses.ranking_softmax_loss.

    python bench/ranking.py                  # default shapes, 21 interleaved rounds
    python bench/ranking.py --quick          # small shapes, 5 rounds
    python bench/ranking.py --json /tmp/r.json

The objective is the mean over lists the way each library's user writes it:
``jaxloss.mean(ranking_softmax_loss(s, y, ...), where=where.any(-1))`` and optax's default
``ranking_softmax_loss(s, y, ...)`` (``reduce_fn=jnp.mean``), float32, with and without a
``where`` mask and ``weights``. Before timing, the values and gradients of the two jitted
functions are compared (value within 1e-5, gradient within 1e-4 relative to the largest entry);
a pair that disagrees is not timed. Timed: ``jax.value_and_grad`` w.r.t. the scores (``vg``) and
the value alone (``fwd``), jitted, interleaved in one process (the order alternates every round),
median and minimum of warm runs, and the median CPU time of
the process (all threads; less sensitive than wall time to other jobs on a shared machine);
compile time and XLA temporaries (``memory_analysis``) reported apart.
Writes bench/results_ranking.json and prints a table with the ratio jaxloss / optax (below 1:
jaxloss is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jaxloss

MiB = 2**20


def contenders(masked: bool):
    """(jaxloss objective, optax objective) of (scores, labels, where, weights)."""

    def ours(s, y, where, w):
        if masked:
            v = jaxloss.ranking_softmax_loss(s, y, where=where, weights=w)
            return jaxloss.mean(v, where=jnp.any(where, axis=-1))
        return jaxloss.mean(jaxloss.ranking_softmax_loss(s, y))

    def theirs(s, y, where, w):
        if masked:
            return optax.losses.ranking_softmax_loss(s, y, where=where, weights=w)
        return optax.losses.ranking_softmax_loss(s, y)

    return ours, theirs


def inputs(shape, seed=0):
    rng = np.random.default_rng(seed)
    s = jnp.asarray(rng.normal(size=shape), jnp.float32)
    y = jnp.asarray(rng.integers(0, 4, size=shape), jnp.float32)
    where = jnp.asarray(rng.uniform(size=shape) > 0.2)
    w = jnp.asarray(rng.uniform(0.5, 2.0, size=shape), jnp.float32)
    return s, y, where, w


def _block(x):
    return jax.tree_util.tree_map(lambda a: a.block_until_ready(), x)


def run_case(shape, masked, reps):
    args = inputs(shape)
    row = {"shape": list(shape), "masked": masked}
    fns = {}
    for name, f in zip(("jaxloss", "optax"), contenders(masked), strict=True):
        for kind, g in (("vg", jax.value_and_grad(f)), ("fwd", f)):
            t = time.perf_counter()
            compiled = jax.jit(g).lower(*args).compile()
            row[f"compile_s_{kind}_{name}"] = time.perf_counter() - t
            row[f"temp_mib_{kind}_{name}"] = compiled.memory_analysis().temp_size_in_bytes / MiB
            fns[name, kind] = compiled
    (v1, g1), (v2, g2) = fns["jaxloss", "vg"](*args), fns["optax", "vg"](*args)
    row["value_rel_diff"] = float(abs(v1 - v2) / max(abs(float(v2)), 1e-30))
    row["grad_rel_diff"] = float(jnp.max(jnp.abs(g1 - g2)) / jnp.max(jnp.abs(g2)))
    row["agree"] = row["value_rel_diff"] < 1e-5 and row["grad_rel_diff"] < 1e-4
    if not row["agree"]:
        return row
    times = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    for k in fns:  # warm
        _block(fns[k](*args))
    for r in range(reps):
        order = list(fns) if r % 2 == 0 else list(fns)[::-1]
        for k in order:
            t, c = time.perf_counter(), time.process_time()
            _block(fns[k](*args))
            times[k].append(time.perf_counter() - t)
            cpu[k].append(time.process_time() - c)
    for name, kind in fns:
        row[f"ms_{kind}_{name}"] = 1e3 * statistics.median(times[name, kind])
        row[f"min_ms_{kind}_{name}"] = 1e3 * min(times[name, kind])
        row[f"cpu_ms_{kind}_{name}"] = 1e3 * statistics.median(cpu[name, kind])
    for kind in ("vg", "fwd"):
        for pre in ("", "min_", "cpu_"):
            row[f"{pre}ratio_{kind}"] = (
                row[f"{pre}ms_{kind}_jaxloss"] / row[f"{pre}ms_{kind}_optax"]
            )
    return row


def table(rows):
    lines = [
        "| shape [lists, items] | where + weights | vg jaxloss ms | vg optax ms | vg ratio "
        "(median / min / CPU) | fwd ratio (median / min / CPU) | temp MiB vg (jaxloss / optax) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if not r["agree"]:
            lines.append(
                f"| {r['shape']} | {r['masked']} | not timed: values differ "
                f"({r['value_rel_diff']:.1e}, {r['grad_rel_diff']:.1e}) | | | | |"
            )
            continue
        lines.append(
            f"| {r['shape']} | {r['masked']} | {r['ms_vg_jaxloss']:.3f} | {r['ms_vg_optax']:.3f} "
            f"| {r['ratio_vg']:.2f} / {r['min_ratio_vg']:.2f} / {r['cpu_ratio_vg']:.2f} "
            f"| {r['ratio_fwd']:.2f} / {r['min_ratio_fwd']:.2f} / {r['cpu_ratio_fwd']:.2f} | "
            f"{r['temp_mib_vg_jaxloss']:.1f} / {r['temp_mib_vg_optax']:.1f} |"
        )
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--json", default=str(Path(__file__).with_name("results_ranking.json")))
    args = ap.parse_args(argv)
    shapes = [(256, 32), (64, 256)] if args.quick else [(8192, 32), (2048, 256), (256, 4096)]
    reps = args.reps or (5 if args.quick else 21)
    meta = {
        "jax": jax.__version__,
        "optax": optax.__version__,
        "python": platform.python_version(),
        "device": str(jax.devices()[0]),
        "cpus": os.cpu_count(),
        "reps": reps,
        "loadavg_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    rows = []
    for shape in shapes:
        for masked in (False, True):
            row = run_case(shape, masked, reps)
            rows.append(row)
            print(
                f"{shape} masked={masked}: vg ratio {row.get('ratio_vg', float('nan')):.2f}x",
                file=sys.stderr,
            )
    meta["loadavg_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    text = table(rows)
    print(text)
    Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    return {"meta": meta, "rows": rows}


if __name__ == "__main__":
    main()
