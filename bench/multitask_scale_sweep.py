"""Float32 against float64 directions of every multi-task aggregator, over task scales.

For T ∈ {1, 2, 3, 8, 64} tasks in 96 dimensions, per-task norm ratios 1, 1e3 and 1e6 (norms
log-spaced, random task order), a random and a conflicting Jacobian (the last task opposes the
others' mean), and absolute scales 1e-20, 1 and 1e20: the float32 direction ``agg(J)`` against the
float64 one of the same method at scale 1 (every method's direction is invariant to a common
scale). Prints, per method, the worst ``‖d32/‖d32‖ − d64/‖d64‖‖``, how many of the 90 cases are
beyond 1%, and how many are not finite. An accuracy sweep, not a timing (tests/
test_multitask_float32.py asserts a cheaper subset).

Run:  python bench/multitask_scale_sweep.py [T,T,...]
"""

from __future__ import annotations

import sys

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import jaxloss.multitask as mt  # noqa: E402

METHODS = {
    "mean": mt.mean_aggregator, "sum": mt.sum_aggregator, "mgda": mt.mgda, "upgrad": mt.upgrad,
    "imtl_g": mt.imtl_g, "aligned_mtl": mt.aligned_mtl, "cagrad": mt.cagrad,
    "nash_mtl": lambda: mt.nash_mtl(max_norm=None), "pcgrad": mt.pcgrad,
}
RATIOS = [1.0, 1e3, 1e6]
SCALES = [1e-20, 1.0, 1e20]
N = 96


def jacobian(seed: int, t: int, ratio: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    j = rng.normal(size=(t, N))
    j /= np.linalg.norm(j, axis=1, keepdims=True)
    if t > 1:
        j *= np.logspace(0, -np.log10(ratio), t)[rng.permutation(t)][:, None]
    if seed % 2 and t > 1:  # conflicting: the last task opposes the mean of the others
        m = j[:-1].mean(0)
        j[-1] = -m * np.linalg.norm(j[-1]) / np.linalg.norm(m) + 0.3 * j[-1]
    return j


def main(ts: list[int]) -> None:
    for name, make in METHODS.items():
        agg = make()
        kw = {"key": jax.random.key(0)} if agg.randomised else {}
        worst, fails, total, nonfinite = 0.0, 0, 0, 0
        for t in ts:
            for ratio in RATIOS:
                for seed in range(2):
                    j = jacobian(seed, t, ratio)
                    d64 = np.asarray(agg(jnp.asarray(j, jnp.float64), **kw), np.float64)
                    for s in SCALES:
                        d32 = np.asarray(agg(jnp.asarray(j * s, jnp.float32), **kw), np.float64)
                        total += 1
                        if not np.all(np.isfinite(d32)):
                            nonfinite += 1
                            fails += 1
                            worst = np.inf
                            continue
                        n64, n32 = np.linalg.norm(d64), np.linalg.norm(d32)
                        if n64 == 0 and n32 == 0:
                            continue
                        err = 2.0 if n32 == 0 or n64 == 0 else np.linalg.norm(d32 / n32 - d64 / n64)
                        worst = max(worst, err)
                        fails += err > 0.01
        print(f"{name:>12}: worst direction error {worst:.3g}, >1%: {fails}/{total} "
              f"(non-finite {nonfinite})", flush=True)


if __name__ == "__main__":
    main([int(x) for x in (sys.argv[1] if len(sys.argv) > 1 else "1,2,3,8,64").split(",")])
