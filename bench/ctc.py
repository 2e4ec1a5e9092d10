"""Benchmark: jaxloss.ctc_loss against optax.ctc_loss, value-and-gradient w.r.t. the logits.

    python bench/ctc.py                    # the default shapes, float32
    python bench/ctc.py --quick            # smaller shapes
    python bench/ctc.py --json /tmp/ctc.json

Both functions get the same logits [B, T, K], labels [B, N] and paddings (jaxloss in optax's
form), the scalar objective is the mean over sequences, and both are jitted. Values and gradients
are compared first (a pair that disagrees is not timed). Then the two compiled programs run
interleaved, the order alternating every round. Reported per contender: the median over warm runs
of the process CPU time (``time.process_time``: what the program costs, barely affected by other
jobs on a shared machine) and of the wall time, the ratio jaxloss / optax of each (below 1:
jaxloss is faster), the compile times and XLA's temporary bytes
(``compile().memory_analysis()``, deterministic). Compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jaxloss

SHAPES = [  # B, T, K, N
    (16, 200, 32, 40),  # characters
    (8, 500, 64, 100),
    (8, 1000, 32, 150),
    (4, 400, 1024, 60),  # subword vocabulary
]
QUICK = [(4, 100, 32, 20), (4, 300, 256, 40)]


def inputs(b, t, k, n, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(b, t, k)).astype(np.float32)
    labels = rng.integers(1, k, size=(b, n)).astype(np.int32)
    t_len = rng.integers(t // 2, t + 1, size=b)
    n_len = np.minimum(rng.integers(n // 2, n + 1, size=b), t_len // 2)
    logit_paddings = (np.arange(t) >= t_len[:, None]).astype(np.float32)
    label_paddings = (np.arange(n) >= n_len[:, None]).astype(np.float32)
    return [jnp.asarray(a) for a in (logits, logit_paddings, labels, label_paddings)]


def contenders():
    def ours(z, lp, y, yp):
        return jnp.mean(jaxloss.ctc_loss(z, y, logit_paddings=lp, label_paddings=yp))

    def theirs(z, lp, y, yp):
        return jnp.mean(optax.ctc_loss(z, lp, y, yp))

    return {"jaxloss": ours, "optax": theirs}


def run_shape(shape, reps):
    args = inputs(*shape)
    out = {"shape": dict(zip("BTKN", shape, strict=True))}
    compiled, results = {}, {}
    for name, f in contenders().items():
        vg = jax.jit(jax.value_and_grad(f))
        t0 = time.perf_counter()
        lowered = vg.lower(*args)
        c = lowered.compile()
        out[f"{name}_compile_s"] = time.perf_counter() - t0
        out[f"{name}_temp_bytes"] = int(c.memory_analysis().temp_size_in_bytes)
        compiled[name] = c
        results[name] = jax.block_until_ready(c(*args))
    (v1, g1), (v2, g2) = results["jaxloss"], results["optax"]
    dv = abs(float(v1) - float(v2)) / max(abs(float(v2)), 1.0)
    dg = float(jnp.max(jnp.abs(g1 - g2)) / jnp.maximum(jnp.max(jnp.abs(g2)), 1e-30))
    out["value_rel_diff"], out["grad_rel_diff"] = dv, dg
    if dv > 2e-4 or dg > 2e-3:
        out["not_timed"] = "values or gradients disagree"
        return out
    wall = {name: [] for name in compiled}
    cpu = {name: [] for name in compiled}
    names = list(compiled)
    for r in range(reps):
        for name in names if r % 2 == 0 else names[::-1]:
            w0, c0 = time.perf_counter(), time.process_time()
            jax.block_until_ready(compiled[name](*args))
            cpu[name].append(time.process_time() - c0)
            wall[name].append(time.perf_counter() - w0)
    for name in names:
        out[f"{name}_vg_cpu_ms"] = 1e3 * float(np.median(cpu[name]))
        out[f"{name}_vg_wall_ms"] = 1e3 * float(np.median(wall[name]))
    out["ratio_cpu"] = out["jaxloss_vg_cpu_ms"] / out["optax_vg_cpu_ms"]
    out["ratio_wall"] = out["jaxloss_vg_wall_ms"] / out["optax_vg_wall_ms"]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--json", type=Path, default=None)
    a = parser.parse_args(argv)
    rows = [run_shape(s, a.reps) for s in (QUICK if a.quick else SHAPES)]
    meta = {
        "jax": jax.__version__,
        "optax": optax.__version__,
        "device": str(jax.devices()[0]),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print(
        "value-and-grad, float32; CPU ms (process time) and wall ms, medians; ratio = "
        "jaxloss / optax"
    )
    print(
        f"{'B':>3} {'T':>5} {'K':>5} {'N':>4}  {'cpu j':>7} {'cpu o':>7} {'ratio':>6}  "
        f"{'wall j':>7} {'wall o':>7} {'ratio':>6}  {'temp MiB (j/o)':>15}"
    )
    for r in rows:
        s = r["shape"]
        head = f"{s['B']:>3} {s['T']:>5} {s['K']:>5} {s['N']:>4}"
        if "not_timed" in r:
            print(
                f"{head}  not timed: {r['not_timed']} ({r['value_rel_diff']:.2g}, "
                f"{r['grad_rel_diff']:.2g})"
            )
            continue
        mem = f"{r['jaxloss_temp_bytes'] / 2**20:.1f}/{r['optax_temp_bytes'] / 2**20:.1f}"
        print(
            f"{head}  {r['jaxloss_vg_cpu_ms']:>7.2f} {r['optax_vg_cpu_ms']:>7.2f} "
            f"{r['ratio_cpu']:>6.2f}  {r['jaxloss_vg_wall_ms']:>7.2f} "
            f"{r['optax_vg_wall_ms']:>7.2f} {r['ratio_wall']:>6.2f}  {mem:>15}"
        )
    if a.json:
        a.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    return {"meta": meta, "rows": rows}


if __name__ == "__main__":
    main()
