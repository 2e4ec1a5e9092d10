"""The inputs of the multi-process test (tests/test_multiprocess.py), shared by the worker
processes and the single-process reference."""

from __future__ import annotations

import numpy as np

N, D, V = 16, 6, 32  # 2 data shards of 8 tokens; 4 vocabulary shards of 8 classes
IGNORE = -1


def data():
    g = np.random.default_rng(0)
    x = g.normal(size=(N, D))
    w = g.normal(scale=0.8, size=(D, V))
    b = g.normal(scale=0.5, size=V)
    y = g.integers(0, V, size=N)
    y[[3, 12]] = IGNORE
    y[0], y[9] = 0, V - 1  # labels on the first and the last vocabulary shard
    c = g.uniform(0.5, 2.0, size=N)  # per-token weights
    return x, w, b, y, c
