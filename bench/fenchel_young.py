"""jaxloss's sparsemax and perceptron losses against optax's, value-and-gradient time as ratios.

    python bench/fenchel_young.py            # [B, K] = [4096, 1000] and 4M elements
    python bench/fenchel_young.py --quick    # small sizes (seconds)
    python bench/fenchel_young.py --json /tmp/fy.json

Each pair is first checked for agreement (values within 2e-4, gradients within 2e-3 of the
largest entry), then timed interleaved in one process (the order alternates each round): the
jitted ``jax.value_and_grad`` of the mean loss w.r.t. the logits, float32, compile time apart;
XLA's temporaries (``memory_analysis``, deterministic) beside. Reported: the median wall time
and the median CPU time of the process (all threads; less sensitive than wall time to other
jobs on a shared machine) of warm runs, and their ratios jaxloss / optax (below 1: jaxloss
faster). Compare the ratios of one run, not milliseconds across runs. Writes
bench/results_fenchel_young.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import jaxloss


def _pairs(quick: bool) -> list[tuple[str, Callable[..., Any], Callable[..., Any], tuple]]:
    rng = np.random.default_rng(0)
    b, k = (256, 100) if quick else (4096, 1000)
    n = 1 << (16 if quick else 22)
    z = jnp.asarray(rng.normal(scale=2.0, size=(b, k)), jnp.float32)
    y = jnp.asarray(rng.integers(0, k, size=b))
    s = jnp.asarray(rng.normal(scale=2.0, size=n), jnp.float32)
    t01 = jnp.asarray(rng.integers(0, 2, size=n))
    tpm = 2.0 * t01.astype(jnp.float32) - 1
    return [
        (
            f"multiclass_sparsemax_loss [{b}, {k}]",
            jaxloss.multiclass_sparsemax_loss,
            optax.losses.multiclass_sparsemax_loss,
            (z, y),
        ),
        (
            f"multiclass_perceptron_loss [{b}, {k}]",
            jaxloss.multiclass_perceptron_loss,
            optax.losses.multiclass_perceptron_loss,
            (z, y),
        ),
        (
            f"sparsemax_loss (binary) [{n}]",
            lambda s, t: jaxloss.sparsemax_loss(s, t),
            optax.losses.sparsemax_loss,
            (s, t01),
        ),
        (f"perceptron_loss [{n}]", jaxloss.perceptron_loss, optax.losses.perceptron_loss, (s, tpm)),
    ]


def _vg(loss: Callable[..., Any]) -> Callable[..., Any]:
    return jax.jit(jax.value_and_grad(lambda x, t: jnp.mean(loss(x, t))))


def _time(f: Callable[..., Any], args: tuple) -> tuple[float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    jax.block_until_ready(f(*args))
    return time.perf_counter() - start, time.process_time() - cpu


def run(quick: bool, reps: int) -> list[dict[str, Any]]:
    rows = []
    for name, ours, theirs, args in _pairs(quick):
        fa, fb = _vg(ours), _vg(theirs)
        t0 = time.perf_counter()
        va, ga = jax.block_until_ready(fa(*args))
        compile_a = time.perf_counter() - t0
        t0 = time.perf_counter()
        vb, gb = jax.block_until_ready(fb(*args))
        compile_b = time.perf_counter() - t0
        scale = float(jnp.max(jnp.abs(gb))) or 1.0
        dv, dg = abs(float(va) - float(vb)), float(jnp.max(jnp.abs(ga - gb))) / scale
        row: dict[str, Any] = {
            "case": name,
            "value_diff": dv,
            "grad_diff": dg,
            "first_call_s": {"jaxloss": compile_a, "optax": compile_b},
            "temp_bytes": {
                w: f.lower(*args).compile().memory_analysis().temp_size_in_bytes
                for w, f in (("jaxloss", fa), ("optax", fb))
            },
        }
        if dv > 2e-4 or dg > 2e-3:
            row["note"] = "disagree: not timed"
            rows.append(row)
            continue
        times: dict[str, list[float]] = {"jaxloss": [], "optax": []}
        cpu: dict[str, list[float]] = {"jaxloss": [], "optax": []}
        for r in range(reps):
            order = [("jaxloss", fa), ("optax", fb)][:: 1 if r % 2 == 0 else -1]
            for who, f in order:
                wall, proc = _time(f, args)
                times[who].append(wall)
                cpu[who].append(proc)
        med = {w: statistics.median(v) for w, v in times.items()}
        med_cpu = {w: statistics.median(v) for w, v in cpu.items()}
        row.update(
            ms={w: 1e3 * v for w, v in med.items()},
            cpu_ms={w: 1e3 * v for w, v in med_cpu.items()},
            ratio=med["jaxloss"] / med["optax"],
            cpu_ratio=med_cpu["jaxloss"] / med_cpu["optax"],
        )
        rows.append(row)
        print(
            f"{name}: vg jaxloss {row['ms']['jaxloss']:.2f} ms, optax {row['ms']['optax']:.2f}"
            f" ms, ratio {row['ratio']:.2f} (CPU time {row['cpu_ratio']:.2f})",
            file=sys.stderr,
        )
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=21)
    parser.add_argument(
        "--json", default=os.path.join(os.path.dirname(__file__), "results_fenchel_young.json")
    )
    args = parser.parse_args(argv)
    rows = run(args.quick, args.reps)
    meta = {
        "jax": jax.__version__,
        "optax": optax.__version__,
        "device": str(jax.devices()[0].device_kind),
        "quick": args.quick,
        "reps": args.reps,
        "cpus": os.cpu_count(),
        "loadavg_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    print(
        "| case | jaxloss vg ms | optax vg ms | ratio (wall / CPU) "
        "| XLA temp MiB (jaxloss / optax) |\n"
        "|---|---|---|---|---|"
    )
    for r in rows:
        if "ratio" in r:
            mib = {w: b / 2**20 for w, b in r["temp_bytes"].items()}
            print(
                f"| {r['case']} | {r['ms']['jaxloss']:.2f} | {r['ms']['optax']:.2f} | "
                f"{r['ratio']:.2f} / {r['cpu_ratio']:.2f} | {mib['jaxloss']:.1f} / "
                f"{mib['optax']:.1f} |"
            )
        else:
            print(f"| {r['case']} | — | — | {r['note']} | |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "rows": rows}, fh, indent=1)
    return rows


if __name__ == "__main__":
    main()
