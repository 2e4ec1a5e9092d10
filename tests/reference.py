"""NumPy float64 helpers shared by the cases files and tests: written from the math, independent
of jaxloss (nothing here imports it)."""

from __future__ import annotations

import zlib

import numpy as np

B, C = 6, 5  # batch and classes for class-axis losses
SHAPE = (3, 4)  # elementwise losses


def rng_for_test(request) -> np.random.Generator:
    """A generator seeded from the test's own name (pytest's ``request``): the data a test draws
    does not depend on which tests ran before it."""
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


def close(got, want, rtol=1e-12, atol=1e-12):
    """``got`` (any array) equals the float64 reference ``want`` to the tolerances."""
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=rtol, atol=atol)


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


def residuals(rng, avoid=(), gap=0.05, shape=SHAPE, scale=2.0, targets=None):
    """Residuals r = p - t bounded away from 0 and from +-each value in ``avoid`` (kinks);
    targets standard normal, or ``targets(rng, shape)``."""
    r = rng.uniform(-scale, scale, size=shape)
    for a in (0.0, *avoid):
        too_close = np.abs(np.abs(r) - a) < gap
        r = np.where(too_close, np.sign(r + 1e-12) * (a + 2 * gap), r)
    t = rng.normal(size=shape) if targets is None else targets(rng, shape)
    return {"predictions": t + r, "targets": t}


def r(d):
    """The residual p - t of a regression case's data."""
    return d["predictions"] - d["targets"]


def hyper_value(d, h, name, default):
    """A hyperparameter of a case: from the data when it is learnable there, else from ``hyper``."""
    return d[name] if name in d else h.get(name, default)


# --------------------------------------------------------------------------------------------
# Extreme inputs of elementwise regression losses

#: Extreme magnitudes: 1e20 (its square overflows float32), ±3e38 (near float32's max: p - t
#: overflows against -p, while the loss may be representable), tiny ±1e-30.
BIG = np.array([1e4, -1e4, 0.0, 1e-30, -3e3, 1e20, -1e20, 3e38, -3e38, -1e-30])


def big_pairs(first="predictions", second="targets"):
    """(first, second) pairs of extreme magnitudes, including p - t beyond float32's range."""
    n = BIG.size
    return [
        {first: BIG, second: np.zeros(n)},
        {first: np.zeros(n), second: BIG},
        {first: BIG, second: BIG},
        {first: BIG, second: BIG[::-1].copy()},
        {first: BIG, second: -BIG},
    ]


def with_entries(extremes, **extra):
    """``extremes`` (a callable returning input sets) with ``extra`` entries added to each."""
    return lambda: [{**e, **extra} for e in extremes()]


#: The robust losses' extreme magnitudes: BIG plus 1e30 and an ordinary 2.0.
ROBUST_BIG = np.array([1e4, -1e4, 0.0, 1e-30, -3e3, 1e30, 1e20, -1e20, 3e38, -3e38, -1e-30, 2.0])


def robust_extremes(extra=None, big=ROBUST_BIG):
    """Extreme input sets for a loss of r (``extra``: hyperparameter entries added to each)."""
    extra = extra or {}
    n = big.size
    return lambda: [
        {"predictions": big, "targets": np.zeros(n), **extra},
        {"predictions": np.zeros(n), "targets": big, **extra},
        {"predictions": big, "targets": big, **extra},
        {"predictions": big + 0.5, "targets": big, **extra},
        {"predictions": big, "targets": -big, **extra},
    ]


# --------------------------------------------------------------------------------------------
# Data away from kinks, for the relative, asymmetric and likelihood families


def away(x, points, gap=0.05):
    """Moves entries of x within ``gap`` of any of ``points`` to 2·gap beyond it."""
    for a in points:
        close = np.abs(x - a) < gap
        x = np.where(close, a + np.where(x >= a, 2 * gap, -2 * gap), x)
    return x


def residuals_away(rng, avoid=(), scale=2.0, shape=SHAPE):
    """(predictions, targets) with r = p - t away from 0 and from ±each value in ``avoid``
    (each entry kept on its side of the point, unlike :func:`residuals`)."""
    r = rng.uniform(-scale, scale, size=shape)
    r = away(r, [0.0, *avoid, *(-a for a in avoid)])
    t = rng.normal(size=shape)
    return {"predictions": t + r, "targets": t}


def signed_magnitudes(rng, lo, hi, shape=SHAPE):
    """Values of random sign with magnitudes uniform in [lo, hi]."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(lo, hi, size=shape)
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
