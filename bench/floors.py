"""Benchmark: what the misses of bench/run.py cost, and what each program gives up.

    python bench/floors.py            # 2^20 and 2^24 elements, [4096, 8192] logits, 15 rounds
    python bench/floors.py --quick    # 2^20 elements and [512, 8192] logits, 5 rounds
    python bench/floors.py --json /tmp/f.json

The pairs of bench/run.py that stay above optax's time are forwards: ``hinge_loss``,
``squared_error`` and ``huber_loss`` (``multiclass_hinge_loss`` value-and-gradient was one,
kept here to show what its NaN guard costs). Each differs from optax's program in what it
computes, not in how: optax's hinge and multiclass hinge are a ``maximum`` (a max-reduction)
that XLA:CPU's fused reduction evaluates as "the other operand where one is NaN", and
``jnp.mean`` sums without scaling, so its float32 sum overflows where the mean is in range.
Here each jaxloss loss runs beside optax's and beside the same computation written in plain
``jnp`` with one protection at a time, all jitted, interleaved in one process (the order
rotates every round); the median wall and process-CPU times, as ratios to optax's. Next to
each program its behaviour on the inputs that decide it, computed on the spot at the timed
size (a NaN score in one example; a target 0 where ±1 is expected; values whose float32 sum
overflows although their mean does not).
Writes bench/results_floors.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import _block, interleaved

import jaxloss
from jaxloss._core.reduce import overflow_scale

HERE = Path(__file__).resolve().parent


def _scale(n: int) -> float:
    """jaxloss.mean's overflow scaling for n elements, from the library itself."""
    return overflow_scale((n,), None)


def _relu_nan_checked(z, y):
    """max(z, 0), NaN where z is NaN or y is not ±1: the cheapest fused form measured, one
    product of the two carriers 0·sign(z) and ((|y| - 1)·2^127)² (0 or inf)."""
    h = (jnp.abs(y) - 1) * np.float32(2.0**127)
    return jnp.maximum(z, 0) + (0 * jnp.sign(z)) * (h * h)


def hinge_programs():
    """Forward of the mean hinge loss, max(0, 1 - y·x), six ways."""

    def relu_nan(z):
        return jnp.maximum(z, 0) + 0 * jnp.sign(z)

    return {
        "optax": lambda x, y: jnp.mean(optax.losses.hinge_loss(x, y)),
        "jaxloss": lambda x, y: jaxloss.mean(jaxloss.hinge_loss(x, y)),
        "max only (= optax)": lambda x, y: jnp.mean(jnp.maximum(1 - y * x, 0)),
        "+ overflow scaling": lambda x, y: (
            jnp.sum(jnp.maximum(1 - y * x, 0) * _scale(x.size)) / (x.size * _scale(x.size))
        ),
        "+ NaN kept": lambda x, y: jnp.mean(relu_nan(1 - y * x)),
        "+ NaN kept + target check": lambda x, y: jnp.mean(_relu_nan_checked(1 - y * x, y)),
    }


def hinge_inputs(n: int):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n, dtype=np.float32)
    y = np.where(rng.random(n) < 0.5, -1.0, 1.0).astype(np.float32)
    probes = {}
    xn = x.copy()
    xn[n // 3] = np.nan
    probes["NaN score -> NaN"] = (xn, y), "nan"
    yb = y.copy()
    yb[n // 3] = 0.0
    probes["target 0 -> NaN"] = (x, yb), "nan"
    return (x, y), probes


def squared_programs():
    def scaled(p, t):
        s = _scale(p.size)
        return jnp.sum(jnp.square(p - t) * s) / (p.size * s)

    return {
        "optax": lambda p, t: jnp.mean(optax.losses.squared_error(p, t)),
        "jaxloss": lambda p, t: jaxloss.mean(jaxloss.squared_error(p, t)),
        "jnp.mean (= optax)": lambda p, t: jnp.mean(jnp.square(p - t)),
        "+ overflow scaling": scaled,
    }


def residual_inputs(n: int, seed: int, big: float, label: str):
    """(predictions, targets) ~ N(0, 1), and the probes: one NaN prediction; every residual
    ``big``, whose loss values are in range but whose float32 sum is not."""
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(n, dtype=np.float32)
    t = rng.standard_normal(n, dtype=np.float32)
    pn = p.copy()
    pn[n // 3] = np.nan
    probes = {
        "NaN -> NaN": ((pn, t), "nan"),
        label: ((np.full(n, big, np.float32), np.zeros(n, np.float32)), "finite"),
    }
    return (p, t), probes


def squared_inputs(n: int):
    return residual_inputs(n, 1, 1.8e19, "mean 3.24e38 finite")  # squares 3.24e38


def huber_programs():
    return {
        "optax": lambda p, t: jnp.mean(optax.losses.huber_loss(p, t)),
        "jaxloss": lambda p, t: jaxloss.mean(jaxloss.huber_loss(p, t)),
        "jaxloss values, jnp.mean": lambda p, t: jnp.mean(jaxloss.huber_loss(p, t)),
    }


def huber_inputs(n: int):
    return residual_inputs(n, 3, 3e38, "mean 3e38 finite")  # values 3e38 - 0.5


def multiclass_programs():
    """Value-and-gradient of the mean Crammer–Singer hinge loss (m = 1)."""

    def cs(z, y, keep_nan):
        c = z.shape[-1]
        is_label = jnp.arange(c) == y[:, None]
        z_y = jnp.take_along_axis(z, y[:, None], -1)
        worst = jnp.max(jnp.where(is_label, -jnp.inf, 1 + z - z_y), axis=-1)
        if keep_nan:
            worst = worst + 0 * jnp.sign(jnp.sum(jnp.sign(z), axis=-1))
        return jnp.mean(jnp.maximum(worst, 0) + (0 * jnp.sign(worst) if keep_nan else 0))

    def vg(f):
        return jax.value_and_grad(f)

    return {
        "optax": vg(lambda z, y: jnp.mean(optax.losses.multiclass_hinge_loss(z, y))),
        "jaxloss": vg(lambda z, y: jaxloss.mean(jaxloss.multiclass_hinge_loss(z, y))),
        "max only (= optax)": vg(lambda z, y: cs(z, y, False)),
        "+ NaN kept": vg(lambda z, y: cs(z, y, True)),
    }


def multiclass_inputs(shape):
    rng = np.random.default_rng(2)
    z = rng.standard_normal(shape, dtype=np.float32)
    y = rng.integers(0, shape[-1], shape[0]).astype(np.int32)
    zn = z.copy()
    zn[shape[0] // 3, 7 if y[shape[0] // 3] != 7 else 8] = np.nan
    return (z, y), {"NaN logit -> NaN": ((zn, y), "nan")}


def _outcome(fn, args, want: str) -> bool:
    out = jax.tree_util.tree_leaves(fn(*args))[0]
    v = float(out)
    return bool(np.isnan(v)) if want == "nan" else bool(np.isfinite(v))


def measure(name, programs, args, probes, reps):
    args = tuple(jnp.asarray(a) for a in args)
    jitted = {k: jax.jit(f) for k, f in programs.items()}
    for f in jitted.values():
        _block(f(*args))
    behaviour = {
        k: {p: _outcome(f, tuple(jnp.asarray(a) for a in pa), want)
            for p, (pa, want) in probes.items()}
        for k, f in jitted.items()
    }
    cpu: dict[str, list[float]] = {}
    times = interleaved({k: (lambda f=f: _block(f(*args))) for k, f in jitted.items()}, reps,
                        warm=1, cpu=cpu)
    base_w = statistics.median(times["optax"])
    base_c = statistics.median(cpu["optax"])
    rows = []
    for k in jitted:
        w, c = statistics.median(times[k]), statistics.median(cpu[k])
        rows.append({"case": name, "program": k, "wall_ms": w * 1e3, "cpu_ms": c * 1e3,
                     "wall_ratio": w / base_w, "cpu_ratio": c / base_c,
                     "behaviour": behaviour[k]})
        ok = ", ".join(f"{p}: {'yes' if b else 'NO'}" for p, b in behaviour[k].items())
        print(f"{name:34s} {k:28s} {w * 1e3:8.2f} ms  {w / base_w:5.2f}x  cpu {c / base_c:5.2f}x"
              f"  [{ok}]", flush=True)
    return rows


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=str(HERE / "results_floors.json"))
    a = ap.parse_args(argv)
    sizes = [2**20] if a.quick else [2**20, 2**24]
    shape = (512, 8192) if a.quick else (4096, 8192)
    reps = 5 if a.quick else 15
    load0 = os.getloadavg()[0]
    rows = []
    for n in sizes:
        args, probes = hinge_inputs(n)
        rows += measure(f"hinge_loss fwd {n}", hinge_programs(), args, probes, reps)
    for n in sizes:
        args, probes = squared_inputs(n)
        rows += measure(f"squared_error fwd {n}", squared_programs(), args, probes, reps)
    for n in sizes:
        args, probes = huber_inputs(n)
        rows += measure(f"huber_loss fwd {n}", huber_programs(), args, probes, reps)
    args, probes = multiclass_inputs(shape)
    rows += measure(f"multiclass_hinge_loss vg {shape[0]}x{shape[1]}", multiclass_programs(),
                    args, probes, reps)
    res = {"meta": {"date": datetime.datetime.now(datetime.UTC).isoformat(),
                    "jax": jax.__version__, "optax": optax.__version__,
                    "machine": platform.machine(), "cpus": os.cpu_count(), "reps": reps,
                    "loadavg_start": load0, "loadavg_end": os.getloadavg()[0]},
           "rows": rows}
    Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {a.json}")
    return res


if __name__ == "__main__":
    main()
