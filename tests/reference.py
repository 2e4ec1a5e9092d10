"""NumPy float64 helpers shared by the cases files and tests: written from the math, independent
of jaxloss (nothing here imports it)."""

from __future__ import annotations

import zlib

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


def unit(x, eps):
    """x / max(‖x‖₂, eps) along the last axis."""
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, eps)


def suite_cotangent(loss: str, id: str, shape: tuple[int, ...]) -> np.ndarray:
    """The cotangent that tests/test_conformance.py's gradient test draws for this case."""
    rng = np.random.default_rng(zlib.crc32(f"{loss}/{id}/ct".encode()))
    return rng.uniform(0.5, 2.0, size=shape)


def soft_targets(rng, shape=(B, C)):
    """Random probability rows (each sums to 1, entries bounded away from 0)."""
    t = rng.uniform(0.1, 1.0, size=shape)
    return t / t.sum(-1, keepdims=True)


def binary_extremes(extra=None, big=3e38):
    """Extreme inputs of an elementwise binary loss on logits: saturated logits, the issue's
    large ones (1e20, float32's 3e38) and tiny ones, each with right and wrong hard labels, soft
    labels and a tiny label. ``big`` 1e38 where the label derivative is checked: at 3e38 its
    terms (each about |x|) overflow before they cancel, an intermediate overflow. ``extra`` is
    added to every input dict."""
    def extremes():
        xs = (np.array([[1e4, -1e4, 0.0, 1e4], [-1e4, 50.0, -50.0, 3e3]]),
              np.array([[1e20, -1e20, big, -big], [-big, big, 1e-30, -1e-30]]))
        out = []
        for x in xs:
            for t in (np.array([[1.0, 0.0, 0.5, 0.0], [1.0, 1.0, 0.0, 0.5]]),
                      np.array([[0.0, 1.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]),
                      np.full((2, 4), 0.5), np.full((2, 4), 1e-3), np.full((2, 4), 1e-30)):
                out.append({"logits": x, "labels": t, **(extra or {})})
        return out

    return extremes
