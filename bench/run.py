"""jaxloss against optax (and torch.nn.functional when installed), with the machine's own roofline.

    python bench/run.py            # full run (< 10 min on 2 cores): writes bench/results.json and
                                   # the results table in bench/README.md
    python bench/run.py --quick    # smaller sizes, fewer repetitions (< 2 min)
    python bench/run.py --only huber sigmoid_focal_loss --no-torch --json /tmp/r.json --no-table

For every loss that jaxloss shares with ``optax.losses`` (0.2.8), on the same inputs in one process:
the forward value and the value-and-gradient (w.r.t. the first argument) of the scalar objective
``mean(loss)``, each contender written the way its users call it (jaxloss: ``jaxloss.mean(...)``;
optax: ``jnp.mean(...)``; torch: ``reduction='mean'``), jitted (torch eager), timed interleaved
(the order rotates every round), median of warm runs after compilation; compile time apart; XLA
temporaries from ``compile().memory_analysis()``. Before a pair is timed its values and gradients
are compared on the bench inputs (a mismatch aborts: we never time two different functions).

Roofline, measured in the same run: read bandwidth (jitted sum of a large array), exp throughput
(jitted sum of exp over a cache-resident array), float32 GEMM rate. A case's floor is
max(bytes moved / bandwidth, transcendentals / exp rate); efficiency = floor / measured time.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jaxloss

HERE = Path(__file__).resolve().parent
M = 2**20

try:  # optional peer
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - depends on the environment
    torch = None
    F = None


# ---------------------------------------------------------------------------------------------
# Inputs


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _normal(rng, shape, scale=1.0):
    return (rng.standard_normal(shape, dtype=np.float32) * np.float32(scale)).astype(np.float32)


def pair_normal(scale):
    def make(rng, shape):
        return _normal(rng, shape, scale), _normal(rng, shape, scale)

    return make


def logits_binary(rng, shape):
    return _normal(rng, shape, 3.0), (rng.random(shape, dtype=np.float32) < 0.3).astype(np.float32)


def scores_pm1(rng, shape):
    y = np.where(rng.random(shape, dtype=np.float32) < 0.5, -1.0, 1.0).astype(np.float32)
    return _normal(rng, shape, 1.5), y


def logits_int(rng, shape):
    return _normal(rng, shape, 2.0), rng.integers(0, shape[-1], shape[:-1]).astype(np.int32)


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def logits_probs(rng, shape):
    return _normal(rng, shape, 2.0), _softmax(_normal(rng, shape, 2.0))


def logp_probs(rng, shape):
    lp = _softmax(_normal(rng, shape, 2.0))
    np.log(lp, out=lp)
    return lp, _softmax(_normal(rng, shape, 2.0))


def logp_logq(rng, shape):
    lp, q = logp_probs(rng, shape)
    np.log(q, out=q)
    return lp, q


def logits_onehot(rng, shape):
    z, y = logits_int(rng, shape)
    oh = np.zeros(shape, np.float32)
    np.put_along_axis(oh, y[..., None], 1.0, axis=-1)
    return z, oh, y  # the last entry is for jaxloss (integer labels); see Spec.split


def triplets(rng, shape):
    return _normal(rng, shape), _normal(rng, shape), _normal(rng, shape)


def ntxent_inputs(rng, shape):
    n = shape[0]
    return _normal(rng, shape), np.tile(np.arange(n // 2, dtype=np.int32), 2)


# ---------------------------------------------------------------------------------------------
# The shared losses


@dataclass
class Spec:
    loss: str  # jaxloss name
    peer: str  # optax.losses name
    family: str  # "elementwise" | "class" | "metric"
    make: Callable[..., tuple]
    ours: Callable[..., jax.Array]
    theirs: Callable[..., jax.Array]
    torch_fn: Callable[..., Any] | None = None
    note: str = ""
    transc: tuple[float, float] = (0.0, 0.0)  # transcendentals per element: forward, value+grad
    ours_args: Callable[[tuple], tuple] = lambda a: a
    theirs_args: Callable[[tuple], tuple] = lambda a: a
    sizes: dict[str, list] = field(default_factory=dict)


def _m(x):
    return jaxloss.mean(x)


SPECS = [
    Spec("squared_error", "squared_error", "elementwise", pair_normal(1.0),
         lambda p, t: _m(jaxloss.squared_error(p, t)),
         lambda p, t: jnp.mean(optax.losses.squared_error(p, t)),
         (lambda p, t: F.mse_loss(p, t)) if F else None,
         "optax l2_loss is r²/2; squared_error is r² in both"),
    Spec("huber_loss", "huber_loss", "elementwise", pair_normal(1.0),
         lambda p, t: _m(jaxloss.huber_loss(p, t, delta=1.0)),
         lambda p, t: jnp.mean(optax.losses.huber_loss(p, t, delta=1.0)),
         (lambda p, t: F.huber_loss(p, t, delta=1.0)) if F else None,
         "same convention (r²/2 inside δ); residuals ~N(0, 2), both pieces hit"),
    Spec("log_cosh", "log_cosh", "elementwise", pair_normal(1.0),
         lambda p, t: _m(jaxloss.log_cosh(p, t)),
         lambda p, t: jnp.mean(optax.losses.log_cosh(p, t)),
         None, "", (2, 3)),
    Spec("sigmoid_binary_cross_entropy", "sigmoid_binary_cross_entropy", "elementwise",
         logits_binary,
         lambda x, t: _m(jaxloss.sigmoid_binary_cross_entropy(x, t)),
         lambda x, t: jnp.mean(optax.losses.sigmoid_binary_cross_entropy(x, t)),
         (lambda x, t: F.binary_cross_entropy_with_logits(x, t)) if F else None,
         "logits ~N(0, 9), labels {0, 1}", (2, 2)),
    Spec("sigmoid_focal_loss", "sigmoid_focal_loss", "elementwise", logits_binary,
         lambda x, t: _m(jaxloss.sigmoid_focal_loss(x, t, gamma=2.0)),
         lambda x, t: jnp.mean(optax.losses.sigmoid_focal_loss(x, t, gamma=2.0)),
         None, "γ = 2, alpha None (optax's default; torchvision's is 0.25)", (2, 2)),
    Spec("hinge_loss", "hinge_loss", "elementwise", scores_pm1,
         lambda x, y: _m(jaxloss.hinge_loss(x, y)),
         lambda x, y: jnp.mean(optax.losses.hinge_loss(x, y)),
         None, "targets ±1 in both"),
    Spec("softmax_cross_entropy_with_integer_labels",
         "softmax_cross_entropy_with_integer_labels", "class", logits_int,
         lambda z, y: _m(jaxloss.softmax_cross_entropy_with_integer_labels(z, y)),
         lambda z, y: jnp.mean(optax.losses.softmax_cross_entropy_with_integer_labels(z, y)),
         (lambda z, y: F.cross_entropy(z, y.long())) if F else None,
         "", (1, 1)),
    Spec("softmax_cross_entropy", "softmax_cross_entropy", "class", logits_probs,
         lambda z, q: _m(jaxloss.softmax_cross_entropy(z, q)),
         lambda z, q: jnp.mean(optax.losses.softmax_cross_entropy(z, q)),
         (lambda z, q: F.cross_entropy(z, q)) if F else None,
         "probability targets", (1, 1)),
    Spec("kl_divergence", "kl_divergence", "class", logp_probs,
         lambda lp, q: _m(jaxloss.kl_divergence(lp, q)),
         lambda lp, q: jnp.mean(optax.losses.kl_divergence(lp, q)),
         (lambda lp, q: F.kl_div(lp, q, reduction="batchmean")) if F else None,
         "(log_predictions, targets) in both; torch kl_div(input=log p, target=q)", (1, 1)),
    Spec("kl_divergence_with_log_targets", "kl_divergence_with_log_targets", "class", logp_logq,
         lambda lp, lq: _m(jaxloss.kl_divergence_with_log_targets(lp, lq)),
         lambda lp, lq: jnp.mean(optax.losses.kl_divergence_with_log_targets(lp, lq)),
         (lambda lp, lq: F.kl_div(lp, lq, reduction="batchmean", log_target=True)) if F else None,
         "", (1, 1)),
    Spec("poly1_cross_entropy", "poly_loss_cross_entropy", "class", logits_onehot,
         lambda z, y: _m(jaxloss.poly1_cross_entropy(z, y, epsilon=2.0)),
         lambda z, oh: jnp.mean(optax.losses.poly_loss_cross_entropy(z, oh, epsilon=2.0)),
         None, "optax takes one-hot labels (an extra [N, C] input); jaxloss integer labels",
         (1, 1), ours_args=lambda a: (a[0], a[2]), theirs_args=lambda a: (a[0], a[1])),
    Spec("multiclass_hinge_loss", "multiclass_hinge_loss", "class", logits_int,
         lambda z, y: _m(jaxloss.multiclass_hinge_loss(z, y)),
         lambda z, y: jnp.mean(optax.losses.multiclass_hinge_loss(z, y)),
         None, "Crammer–Singer in both"),
    Spec("triplet_margin_loss", "triplet_margin_loss", "metric", triplets,
         lambda a, p, n: _m(jaxloss.triplet_margin_loss(a, p, n)),
         lambda a, p, n: jnp.mean(optax.losses.triplet_margin_loss(a, p, n)),
         (lambda a, p, n: F.triplet_margin_loss(a, p, n)) if F else None,
         "p = 2, margin 1; optax/torch add eps=1e-6 inside the norm", (2, 2)),
    Spec("info_nce_loss", "ntxent", "metric", ntxent_inputs,
         lambda e, y: _m(jaxloss.info_nce_loss(e, y)),
         lambda e, y: optax.losses.ntxent(e, y),
         None, "optax returns the scalar mean; jaxloss per anchor, then jaxloss.mean", (1, 1)),
]
SPEC_BY_NAME = {s.loss: s for s in SPECS}

# Sizes per mode: elementwise N elements; class [N, C]; metric rows x features. The full run
# keeps under 10 minutes on 2 cores: 64M elements only for the headline elementwise losses (optax's
# focal value-and-grad alone takes seconds per call there), [4096, 32768] logits for the two
# cross-entropies and [4096, 8192] for the other class-axis losses; optax's ntxent builds
# N x N x D temporaries, so its N stays small.
BIG = ("squared_error", "huber_loss", "sigmoid_binary_cross_entropy")
SIZES = {
    "full": {"elementwise": [(1 * M,), (16 * M,)], "elementwise_big": [(64 * M,)],
             "class": [(4096, 8192)], "ce": [(4096, 32768)],
             "triplet": [(262144, 64)], "ntxent": [(512, 128)]},
    "quick": {"elementwise": [(1 * M,)], "elementwise_big": [], "class": [(512, 8192)],
              "ce": [(512, 8192)], "triplet": [(32768, 64)], "ntxent": [(256, 64)]},
    "tiny": {"elementwise": [(4096,)], "elementwise_big": [], "class": [(64, 128)],
             "ce": [(64, 128)], "triplet": [(256, 16)], "ntxent": [(64, 16)]},
}


# torch (eager) is timed up to 16M elements: beyond, its calls take seconds and the full run would
# not fit in 10 minutes.
TORCH_MAX_ELEMENTS = 16 * M


def _sizes_for(spec: Spec, mode: str) -> list[tuple[int, ...]]:
    s = SIZES[mode]
    if spec.family == "elementwise":
        return s["elementwise"] + (s["elementwise_big"] if spec.loss in BIG else [])
    if spec.family == "class":
        return s["ce"] if spec.loss.startswith("softmax_cross_entropy") else s["class"]
    return s["ntxent"] if spec.loss == "info_nce_loss" else s["triplet"]


def _floor_work(spec: Spec, arrays: tuple, mode: str) -> tuple[int, int]:
    """(bytes that must move, transcendentals) for one call of the jaxloss form."""
    args = spec.ours_args(arrays)
    nbytes = sum(int(a.nbytes) for a in args)
    elems = int(args[0].size)
    if spec.loss == "info_nce_loss":
        elems = int(args[0].shape[0]) ** 2  # one exp per similarity
    if mode == "vg":
        nbytes += int(args[0].nbytes)  # the gradient is written
    return nbytes, int(spec.transc[1 if mode == "vg" else 0] * elems)


# ---------------------------------------------------------------------------------------------
# Measurement


def _block(x):
    return jax.block_until_ready(x)


def _compile(fn, args):
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    dt = time.perf_counter() - t0
    temp = compiled.memory_analysis().temp_size_in_bytes
    return compiled, dt, int(temp)


def _timed(call) -> float:
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def interleaved(calls: dict[str, Callable[[], Any]], reps: int, warm: int = 0) -> dict:
    names = list(calls)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warm + reps):
        order = names[r % len(names):] + names[: r % len(names)]
        for n in order:
            t = _timed(calls[n])
            if r >= warm:
                times[n].append(t)
    return times


def roofline(mode: str, reps: int) -> dict:
    """The machine's roofs, each the best of its repetitions (what the machine can do when no
    other job interrupts; the contenders are reported by their medians)."""
    n_bw = {"full": 64 * M, "quick": 16 * M, "tiny": M}[mode]
    x = jnp.asarray(_normal(_rng(0), (n_bw,)))
    f_sum = jax.jit(jnp.sum)
    _block(f_sum(x))
    t_bw = min(_timed(lambda: _block(f_sum(x))) for _ in range(reps))
    bw = x.nbytes / t_bw

    # exp: one exp per element of a 4 MiB array that stays in cache, summed (the sum is free).
    y = jnp.asarray(_normal(_rng(1), (M if mode != "tiny" else 65536,), 0.5))
    f_exp = jax.jit(lambda y: jnp.sum(jnp.exp(y)))
    _block(f_exp(y))
    t_exp = min(_timed(lambda: _block(f_exp(y))) for _ in range(5 * reps))
    exp_rate = y.size / t_exp

    n = {"full": 2048, "quick": 1024, "tiny": 256}[mode]
    a = jnp.asarray(_normal(_rng(2), (n, n)))
    f_mm = jax.jit(jnp.matmul)
    _block(f_mm(a, a))
    t_mm = min(_timed(lambda: _block(f_mm(a, a))) for _ in range(reps))
    return {
        "read_bandwidth_GBps": bw / 1e9,
        "read_bandwidth_array_MiB": x.nbytes / M,
        "exp_rate_Gps": exp_rate / 1e9,
        "exp_array_elements": int(y.size),
        "gemm_GFLOPs": 2 * n**3 / t_mm / 1e9,
        "gemm_n": n,
    }


def _agree(name: str, a, b, what: str, rtol: float) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(float(np.max(np.abs(a))), 1e-30)
    err = float(np.max(np.abs(a - b))) / scale
    if not err <= rtol:
        raise AssertionError(f"{name}: {what} differ by {err:.3g} (relative to max |.|) > {rtol}")
    return err


def _to_torch(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def run_case(spec: Spec, shape: tuple, mode: str, reps: int, use_torch: bool) -> list[dict]:
    arrays = spec.make(_rng(zlib.crc32(spec.loss.encode())), shape)
    ours_in = tuple(jnp.asarray(a) for a in spec.ours_args(arrays))
    theirs_in = tuple(jnp.asarray(a) for a in spec.theirs_args(arrays))
    fns = {
        "jaxloss": (spec.ours, ours_in),
        "optax": (spec.theirs, theirs_in),
    }
    rows = []
    grads = {}
    for kind in ("fwd", "vg"):
        compiled, compile_s, temp = {}, {}, {}
        for who, (f, args) in fns.items():
            g = f if kind == "fwd" else jax.value_and_grad(f)
            compiled[who], compile_s[who], temp[who] = _compile(g, args)
        outs = {who: _block(compiled[who](*fns[who][1])) for who in fns}
        value = {w: (o if kind == "fwd" else o[0]) for w, o in outs.items()}
        agree = {"optax_value": _agree(spec.loss, value["optax"], value["jaxloss"], "values",
                                       2e-4)}
        if kind == "vg":
            agree["optax_grad"] = _agree(spec.loss, outs["optax"][1], outs["jaxloss"][1],
                                         "gradients", 2e-3)
            grads = {w: o[1] for w, o in outs.items()}
        calls = {w: (lambda c=compiled[w], a=fns[w][1]: _block(c(*a))) for w in fns}

        if use_torch and spec.torch_fn is not None and np.prod(shape) <= TORCH_MAX_ELEMENTS:
            t_in = tuple(_to_torch(a) for a in spec.theirs_args(arrays))
            tf = spec.torch_fn
            if kind == "fwd":
                def tcall(t_in=t_in, tf=tf):
                    with torch.no_grad():
                        return tf(*t_in)
            else:
                def tcall(t_in=t_in, tf=tf):
                    x = t_in[0].detach().requires_grad_(True)
                    v = tf(x, *t_in[1:])
                    v.backward()
                    return v, x.grad
            t0 = time.perf_counter()
            out = tcall()
            compile_s["torch"] = time.perf_counter() - t0  # first (eager) call
            tv = out if kind == "fwd" else out[0]
            agree["torch_value"] = _agree(spec.loss, tv.detach().item(), value["jaxloss"],
                                          "torch values", 2e-4)
            if kind == "vg":
                agree["torch_grad"] = _agree(spec.loss, out[1].numpy(), grads["jaxloss"],
                                             "torch gradients", 2e-3)
            calls["torch"] = tcall
        times = interleaved(calls, reps)  # every contender was called once above (warm)
        med = {w: statistics.median(ts) for w, ts in times.items()}
        nbytes, transc = _floor_work(spec, arrays, kind)
        rf = ROOF
        floor_bw = nbytes / (rf["read_bandwidth_GBps"] * 1e9)
        floor_exp = transc / (rf["exp_rate_Gps"] * 1e9)
        floor = max(floor_bw, floor_exp)
        rows.append({
            "loss": spec.loss, "peer": f"optax.losses.{spec.peer}", "family": spec.family,
            "size": int(np.prod(shape)), "shape": list(shape), "dtype": "float32",
            "mode": kind, "note": spec.note,
            "times_s": times, "median_s": med,
            "ratio": med["jaxloss"] / med["optax"],
            "ratio_torch": (med["jaxloss"] / med["torch"]) if "torch" in med else None,
            "compile_s": compile_s, "temp_bytes": temp,
            "floor_s": floor, "floor_bound": "bandwidth" if floor_bw >= floor_exp else "exp",
            "bytes": nbytes, "transcendentals": transc,
            "efficiency": {w: floor / m for w, m in med.items()},
            "agreement_max_rel_err": agree,
        })
    del arrays, ours_in, theirs_in, grads
    return rows


ROOF: dict = {}


# ---------------------------------------------------------------------------------------------
# Small inputs: dispatch overhead, and compile time of a composite loss


DISPATCH_SHAPES = {"elementwise": (128,), "class": (128, 16), "metric": (128, 16)}


def dispatch(reps: int) -> dict:
    """Eager calls (no jit) at batch 128: every shared loss with its mean, jaxloss / optax, and
    jaxloss.mean / jnp.mean; plus, for one loss, jit and eager value-and-grad."""
    calls: dict[str, Callable[[], Any]] = {}
    for spec in SPECS:
        arrays = spec.make(_rng(zlib.crc32(spec.loss.encode())), DISPATCH_SHAPES[spec.family])
        ours = tuple(jnp.asarray(a) for a in spec.ours_args(arrays))
        theirs = tuple(jnp.asarray(a) for a in spec.theirs_args(arrays))
        calls[f"{spec.loss} jaxloss"] = lambda f=spec.ours, a=ours: _block(f(*a))
        calls[f"{spec.loss} optax"] = lambda f=spec.theirs, a=theirs: _block(f(*a))
    x = jnp.asarray(_rng(7).normal(size=128), jnp.float32)
    calls["mean jaxloss"] = lambda: _block(jaxloss.mean(x))
    calls["mean jnp"] = lambda: _block(jnp.mean(x))
    bce_x, bce_t = (jnp.asarray(a) for a in logits_binary(_rng(7), (128,)))
    for name, f in (("jaxloss", SPEC_BY_NAME["sigmoid_binary_cross_entropy"].ours),
                    ("optax", SPEC_BY_NAME["sigmoid_binary_cross_entropy"].theirs)):
        eager_vg = jax.value_and_grad(f)
        vg = jax.jit(eager_vg)
        calls[f"bce {name} jit value_and_grad"] = lambda vg=vg: _block(vg(bce_x, bce_t))
        calls[f"bce {name} eager value_and_grad"] = lambda g=eager_vg: _block(g(bce_x, bce_t))
    for c in calls.values():  # first calls: compile, fill caches
        c()
    times = interleaved(calls, reps, warm=2)
    med = {k: 1e6 * statistics.median(v) for k, v in times.items()}
    ratios = {s.loss: med[f"{s.loss} jaxloss"] / med[f"{s.loss} optax"] for s in SPECS}
    ratios["mean"] = med["mean jaxloss"] / med["mean jnp"]
    return {"batch": 128, "median_us": med, "ratios": ratios}


def composite() -> dict:
    rng = _rng(8)
    n = 256
    z, y = logits_int(rng, (n, 10))
    xb, tb = logits_binary(rng, (n, 5))
    p, t = pair_normal(1.0)(rng, (n,))
    xf, tf = logits_binary(rng, (n, 3))
    preds = {"cls": z, "attr": xb, "depth": p, "det": xf}
    targs = {"cls": y, "attr": tb, "depth": t, "det": tf}
    preds = {k: jnp.asarray(v) for k, v in preds.items()}
    targs = {k: jnp.asarray(v) for k, v in targs.items()}
    losses = {
        "cls": jaxloss.softmax_cross_entropy_with_integer_labels,
        "attr": jaxloss.sigmoid_binary_cross_entropy,
        "depth": jaxloss.huber_loss,
        "det": lambda x, t: jaxloss.sigmoid_focal_loss(x, t, gamma=2.0),
    }
    obj = jaxloss.multitask_loss(losses, weights={"cls": 1.0, "attr": 0.5, "depth": 2.0,
                                                   "det": 1.0})

    def ours(preds):
        return obj(preds, targs)

    def theirs(preds):
        total = (
            jnp.mean(optax.losses.softmax_cross_entropy_with_integer_labels(preds["cls"],
                                                                            targs["cls"]))
            + 0.5 * jnp.mean(optax.losses.sigmoid_binary_cross_entropy(preds["attr"],
                                                                       targs["attr"]))
            + 2.0 * jnp.mean(optax.losses.huber_loss(preds["depth"], targs["depth"]))
            + jnp.mean(optax.losses.sigmoid_focal_loss(preds["det"], targs["det"], gamma=2.0))
        )
        return total, {}

    out = {"tasks": sorted(losses), "batch": n}
    for name, f in (("jaxloss.multitask_loss", ours), ("optax hand-written sum", theirs)):
        g = jax.value_and_grad(f, has_aux=True)
        t0 = time.perf_counter()
        lowered = jax.jit(g).lower(preds)
        t1 = time.perf_counter()
        lowered.compile()
        t2 = time.perf_counter()
        out[name] = {"trace_lower_s": t1 - t0, "compile_s": t2 - t1}
    return out


# ---------------------------------------------------------------------------------------------
# Targets, table


def targets(rows: list[dict]) -> list[dict]:
    out = []

    def row(loss, mode, size=None):
        cands = [r for r in rows if r["loss"] == loss and r["mode"] == mode]
        if size is not None:
            cands = [r for r in cands if r["size"] == size] or cands
        return max(cands, key=lambda r: r["size"]) if cands else None

    for r in rows:
        if r["mode"] == "vg":
            out.append({"target": f"{r['loss']} value_and_grad <= 1.0x optax",
                        "size": r["size"], "value": r["ratio"], "met": r["ratio"] <= 1.0})
    for loss, k in (("sigmoid_binary_cross_entropy", 3.0), ("sigmoid_focal_loss", 3.0),
                    ("huber_loss", 2.0)):
        r = row(loss, "vg")
        if r:
            out.append({"target": f"{loss} value_and_grad >= {k}x faster than optax",
                        "size": r["size"], "value": 1 / r["ratio"], "met": 1 / r["ratio"] >= k})
    for r in rows:
        big = row(r["loss"], r["mode"])
        if r is not big:
            continue
        if r["family"] == "elementwise":
            need = 0.85 if r["mode"] == "fwd" else 0.70
            eff = r["efficiency"]["jaxloss"]
            out.append({"target": f"{r['loss']} {r['mode']} >= {need:.0%} of roof "
                                  f"({r['floor_bound']})",
                        "size": r["size"], "value": eff, "met": eff >= need})
        if r["loss"] == "softmax_cross_entropy_with_integer_labels" and r["mode"] == "fwd":
            # The exp roof alone: transcendentals / exp rate.
            eff = r["transcendentals"] / (ROOF["exp_rate_Gps"] * 1e9) / r["median_s"]["jaxloss"]
            out.append({"target": "softmax CE forward >= 85% of the exp roof",
                        "size": r["size"], "value": eff, "met": eff >= 0.85})
    return out


def _fmt_size(r):
    s = r["shape"]
    if len(s) == 1:
        return f"{s[0] // M}M" if s[0] >= M else str(s[0])
    return "×".join(str(v) for v in s)


def _ms(x):
    return f"{1e3 * x:.2f}" if x < 1 else f"{1e3 * x:.0f}"


def table(res: dict) -> str:
    rf = res["roofline"]
    meta = res["meta"]
    lines = [
        f"Machine: {meta['cpu']}, {meta['cores']} cores; jax {meta['jax']}, optax "
        f"{meta['optax']}, torch {meta['torch']}; mode `{meta['mode']}`, median of "
        f"{meta['reps']} warm runs; load average {meta['loadavg_start'][0]:.2f} at start, "
        f"{meta['loadavg_end'][0]:.2f} at end (shared machine).",
        "",
        f"Roofline (same run): read bandwidth **{rf['read_bandwidth_GBps']:.1f} GB/s**, "
        f"exp **{rf['exp_rate_Gps']:.2f} G/s**, float32 GEMM **{rf['gemm_GFLOPs']:.0f} GFLOP/s**.",
        "",
        "Times in ms (median). `ratio` = jaxloss / optax (< 1: jaxloss faster). `eff` = floor ÷ "
        "time, floor = max(bytes ÷ bandwidth, transcendentals ÷ exp rate). `temp` = XLA "
        "temporaries (MiB) jaxloss / optax. torch: eager CPU, `reduction='mean'`, timed up to "
        "16M elements.",
        "",
        "| loss | size | pass | jaxloss | optax | ratio | torch | eff jaxloss | eff optax "
        "| temp MiB | compile s (jaxloss/optax) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["results"]:
        med = r["median_s"]
        torch_s = _ms(med["torch"]) if "torch" in med else "—"
        lines.append(
            f"| `{r['loss']}` | {_fmt_size(r)} | {r['mode']} | {_ms(med['jaxloss'])} | "
            f"{_ms(med['optax'])} | **{r['ratio']:.2f}** | {torch_s} | "
            f"{r['efficiency']['jaxloss']:.0%} | {r['efficiency']['optax']:.0%} | "
            f"{r['temp_bytes']['jaxloss'] / M:.0f} / {r['temp_bytes']['optax'] / M:.0f} | "
            f"{r['compile_s']['jaxloss']:.2f} / {r['compile_s']['optax']:.2f} |"
        )
    notes = sorted({(r["loss"], r["peer"], r["note"]) for r in res["results"]})
    lines += ["", "Pairs and conventions (values and gradients asserted equal before timing):", ""]
    for loss, peer, note in notes:
        lines.append(f"- `jaxloss.{loss}` vs `{peer}`" + (f": {note}" if note else ""))
    lines += ["", "Targets:", "", "| target | size | value | met |", "|---|---|---|---|"]
    for t in res["targets"]:
        val = f"{t['value']:.0%}" if "roof" in t["target"] else f"{t['value']:.2f}x"
        lines.append(f"| {t['target']} | {t['size']} | {val} | {'yes' if t['met'] else '**no**'} |")
    for s in res.get("not_timed", []):
        lines += ["", f"Not timed: `jaxloss.{s['loss']}` vs `{s['peer']}` at "
                      f"{'×'.join(map(str, s['shape']))}: {s['reason']}."]
    d = res.get("dispatch")
    if d:
        lines += ["", f"Eager calls (no jit) on a batch of {d['batch']}, each with its mean "
                      "(µs, median; ratio jaxloss / optax, `mean`: jaxloss.mean / jnp.mean):", "",
                  "| loss | jaxloss µs | optax µs | ratio |", "|---|---|---|---|"]
        for loss, ratio in d["ratios"].items():
            peer = "jnp" if loss == "mean" else "optax"
            lines.append(f"| {loss} | {d['median_us'][f'{loss} jaxloss']:.0f} | "
                         f"{d['median_us'][f'{loss} {peer}']:.0f} | {ratio:.2f}x |")
        lines += ["", "| value_and_grad of the BCE mean | µs |", "|---|---|"]
        lines += [f"| {k[4:]} | {v:.0f} |" for k, v in d["median_us"].items()
                  if k.startswith("bce ")]
    c = res.get("composite")
    if c:
        lines += ["", f"Compile time of a {len(c['tasks'])}-task objective "
                      f"({', '.join(c['tasks'])}; batch {c['batch']}), value_and_grad:", "",
                  "| objective | trace+lower s | compile s |", "|---|---|---|"]
        for k in ("jaxloss.multitask_loss", "optax hand-written sum"):
            lines.append(f"| {k} | {c[k]['trace_lower_s']:.2f} | {c[k]['compile_s']:.2f} |")
    return "\n".join(lines)


def write_table(text: str, readme: Path) -> None:
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    src = readme.read_text()
    if begin not in src or end not in src:
        src = src.rstrip() + f"\n\n{begin}\n{end}\n"
    head, rest = src.split(begin, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{begin}\n{text}\n{end}{tail}")


# ---------------------------------------------------------------------------------------------


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _loadavg():
    try:
        return list(os.getloadavg())
    except OSError:
        return [float("nan")] * 3


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, 7 repetitions (< 2 min)")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes (the smoke test)")
    ap.add_argument("--reps", type=int, default=None, help="warm repetitions (default 7 / 9)")
    ap.add_argument("--only", nargs="*", default=None, help="jaxloss names to run")
    ap.add_argument("--no-torch", action="store_true", help="skip the torch peer")
    ap.add_argument("--no-extras", action="store_true", help="skip dispatch and composite")
    ap.add_argument("--json", default=str(HERE / "results.json"))
    ap.add_argument("--no-table", action="store_true", help="do not rewrite bench/README.md")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    reps = args.reps or {"full": 7, "quick": 7, "tiny": 3}[mode]
    use_torch = torch is not None and not args.no_torch
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    if torch is None and not args.no_torch:
        say("torch is not installed: skipping the torch peer (pip install -e '.[bench]').")
    if use_torch:
        torch.set_num_threads(os.cpu_count() or 1)

    t_start = time.perf_counter()
    load0 = _loadavg()
    specs = [s for s in SPECS if args.only is None or s.loss in args.only]
    unknown = set(args.only or ()) - set(SPEC_BY_NAME)
    if unknown:
        ap.error(f"--only: unknown losses {sorted(unknown)}; choose from {sorted(SPEC_BY_NAME)}")
    say(f"[roofline] measuring ({mode})")
    ROOF.clear()
    ROOF.update(roofline(mode, reps))
    say(f"[roofline] read {ROOF['read_bandwidth_GBps']:.1f} GB/s, exp "
        f"{ROOF['exp_rate_Gps']:.2f} G/s, GEMM {ROOF['gemm_GFLOPs']:.0f} GFLOP/s")
    cases = [(s, shape) for s in specs for shape in _sizes_for(s, mode)]
    rows: list[dict] = []
    skipped: list[dict] = []
    for i, (spec, shape) in enumerate(cases, 1):
        t0 = time.perf_counter()
        try:
            new = run_case(spec, shape, mode, reps, use_torch)
        except AssertionError as e:  # never time two different functions: record and go on
            skipped.append({"loss": spec.loss, "peer": f"optax.losses.{spec.peer}",
                            "shape": list(shape), "reason": str(e)})
            say(f"[{i}/{len(cases)}] {spec.loss} {'x'.join(map(str, shape))}: NOT TIMED: {e}")
            continue
        rows += new
        msg = "  ".join(
            f"{r['mode']} {1e3 * r['median_s']['jaxloss']:.1f}/{1e3 * r['median_s']['optax']:.1f}"
            f" ms ({r['ratio']:.2f}x, eff {r['efficiency']['jaxloss']:.0%})" for r in new)
        say(f"[{i}/{len(cases)} {time.perf_counter() - t_start:5.0f}s] {spec.loss} "
            f"{'x'.join(map(str, shape))}: {msg}  ({time.perf_counter() - t0:.1f}s)")
    res: dict = {
        "meta": {
            "mode": mode, "reps": reps, "jax": jax.__version__,
            "jaxlib": jax.lib.__version__ if hasattr(jax.lib, "__version__") else None,
            "optax": optax.__version__, "torch": torch.__version__ if use_torch else None,
            "python": platform.python_version(), "cpu": _cpu_name(), "cores": os.cpu_count(),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "loadavg_start": load0,
        },
        "roofline": dict(ROOF),
        "results": rows,
        "not_timed": skipped,
    }
    if not args.no_extras:
        say("[extras] dispatch overhead at batch 128, composite compile time")
        res["dispatch"] = dispatch(50 if mode != "tiny" else 5)
        res["composite"] = composite()
    res["targets"] = targets(rows)
    res["meta"]["loadavg_end"] = _loadavg()
    res["meta"]["wall_s"] = time.perf_counter() - t_start
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
        say(f"wrote {args.json}")
    if not args.no_table:
        write_table(table(res), HERE / "README.md")
        say(f"wrote the table in {HERE / 'README.md'}")
    say(f"done in {res['meta']['wall_s']:.0f}s")
    return res


if __name__ == "__main__":
    main()
