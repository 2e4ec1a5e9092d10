"""NumPy float64 helpers shared by the cases files and tests: written from the math, independent
of jaxloss (nothing here imports it)."""

from __future__ import annotations

import numpy as np

B, C = 6, 5  # batch and classes for class-axis losses
SHAPE = (3, 4)  # elementwise losses


def sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


def log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def lse(z, axis=-1, mask=None):
    """log Σ exp(z) along ``axis`` over the entries where ``mask`` is True."""
    if mask is not None:
        z = np.where(mask, z, -np.inf)
    m = np.max(z, axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(z - m), axis=axis))


def softmax(z, mask=None):
    """Softmax along the last axis over the entries where ``mask`` is True (0 elsewhere)."""
    return np.exp(z - np.expand_dims(lse(z, -1, mask), -1)) * (1 if mask is None else mask)


def residuals(rng, avoid=(), gap=0.05, shape=SHAPE, scale=2.0):
    """Residuals r = p - t bounded away from 0 and from +-each value in ``avoid`` (kinks)."""
    r = rng.uniform(-scale, scale, size=shape)
    for a in (0.0, *avoid):
        too_close = np.abs(np.abs(r) - a) < gap
        r = np.where(too_close, np.sign(r + 1e-12) * (a + 2 * gap), r)
    t = rng.normal(size=shape)
    return {"predictions": t + r, "targets": t}


def r(d):
    """The residual p - t of a regression case's data."""
    return d["predictions"] - d["targets"]
