"""Conformance cases for the overlap (segmentation) losses (jaxloss/_overlap.py).

References are NumPy float64 from the formulas in jaxloss/_overlap.py (never by calling
jaxloss). The overlap losses reduce the spatial axes and (unless ``average="none"``)
the class axis, so ``class_axis`` is a tuple of the reduced axes: the suite's
``np.expand_dims(ct, class_axis)`` accepts a tuple and expands the cotangent over all of them.
"""

from __future__ import annotations

import numpy as np

from tests.case import Case

B, N, C = 3, 4, 3  # batch, pixels (one spatial axis), classes
HW = (3, 2)  # two spatial axes


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _data(rng, spatial=(N,), soft=False, absent=False):
    shape = (B, *spatial, C)
    p = _softmax(rng.normal(scale=1.5, size=shape))
    if soft:
        t = _softmax(rng.normal(scale=2.0, size=shape))
    else:
        t = np.eye(C)[rng.integers(0, C, size=shape[:-1])]
        if absent:  # class C-1 absent from the first example's targets
            t[0, ..., 0] += t[0, ..., C - 1]
            t[0, ..., C - 1] = 0.0
    return {"probabilities": p, "targets": t}


def _sums(d, nsd, micro):
    axes = tuple(range(-1 - nsd, -1))
    p, t = d["probabilities"], d["targets"]
    tp, ps, ts = (p * t).sum(axes), p.sum(axes), t.sum(axes)
    if micro:
        tp, ps, ts = tp.sum(-1), ps.sum(-1), ts.sum(-1)
    return tp, ps, ts


def _bcast(x, nsd, micro):
    """Per-class [B, C] (or pooled [B]) quantities broadcast against [B, *spatial, C]."""
    if micro:
        x = x[..., None]
    return x.reshape(x.shape[:-1] + (1,) * nsd + x.shape[-1:])


# Each score: (num, den, dnum/dp, dden/dp, dnum/dt, dden/dt) with the elementwise derivatives of
# the per-class numerator and denominator (functions of p_i, t_i).

def _dice_parts(tp, ps, ts, h):
    s = h.get("smooth", 1.0)
    return (2 * tp + 2 * s, ps + ts + 2 * s,
            lambda p, t: 2 * t, lambda p, t: np.ones_like(t),
            lambda p, t: 2 * p, lambda p, t: np.ones_like(p))


def _jaccard_parts(tp, ps, ts, h):
    s = h.get("smooth", 1.0)
    return (tp + s, ps + ts - tp + s,
            lambda p, t: t, lambda p, t: 1 - t,
            lambda p, t: p, lambda p, t: 1 - p)


def _tversky_parts(tp, ps, ts, h):
    s, a, b = h.get("smooth", 1.0), h.get("alpha", 0.3), h.get("beta", 0.7)
    return (tp + s, tp + a * (ps - tp) + b * (ts - tp) + s,
            lambda p, t: t, lambda p, t: a + (1 - a - b) * t,
            lambda p, t: p, lambda p, t: b + (1 - a - b) * p)


def _score_and_grads(d, h, parts, nsd):
    micro = h.get("average", "macro") == "micro"
    num, den, dnp, ddp, dnt, ddt = parts(*_sums(d, nsd, micro), h)
    score = num / den
    nb, db = _bcast(num, nsd, micro), _bcast(den, nsd, micro)
    p, t = d["probabilities"], d["targets"]
    ds_dp = (dnp(p, t) * db - nb * ddp(p, t)) / db**2
    ds_dt = (dnt(p, t) * db - nb * ddt(p, t)) / db**2
    return score, ds_dp, ds_dt


def _focal_gamma(d, h):
    return d.get("gamma", h.get("gamma", 1.0))


def _value(d, h, parts, nsd, focal=False):
    score, _, _ = _score_and_grads(d, h, parts, nsd)
    loss = (1 - score) ** _focal_gamma(d, h) if focal else 1 - score
    return loss.mean(-1) if h.get("average", "macro") == "macro" else loss


def _grad(d, h, parts, nsd, wrt, focal=False):
    avg = h.get("average", "macro")
    score, ds_dp, ds_dt = _score_and_grads(d, h, parts, nsd)
    coef = -np.ones_like(score)
    if focal:
        g = _focal_gamma(d, h)
        coef = -g * (1 - score) ** (g - 1)
    if avg == "macro":
        coef = coef / score.shape[-1]
    return _bcast(coef, nsd, avg == "micro") * (ds_dp if wrt == "p" else ds_dt)


def _dgamma(d, h, parts, nsd):
    score, _, _ = _score_and_grads(d, h, parts, nsd)
    x, g = 1 - score, d["gamma"]
    local = x**g * np.log(x)
    avg = h.get("average", "macro")
    if avg == "none":  # [B, C] -> [B, 1.., C], the expanded cotangent's shape
        return _bcast(local, nsd, False)
    local = local.mean(-1) if avg == "macro" else local
    return local.reshape(local.shape + (1,) * (nsd + 1))


def _extremes(spatial=(N,), hyper_data=None):
    shape = (B, *spatial, C)
    onehot = np.eye(C)[np.arange(int(np.prod(shape[:-1]))).reshape(shape[:-1]) % C]
    zeros, uniform = np.zeros(shape), np.full(shape, 1.0 / C)
    absent = onehot.copy()
    absent[..., 0] += absent[..., 2]
    absent[..., 2] = 0.0
    near = np.clip(onehot, 1e-7, 1 - 1e-7)
    # Tiny probabilities or targets (1e-30: counts of 1e-29, whose squares are below float32's
    # range at smooth = 0) next to one-hot ones. Not both tiny: p t = 1e-60 underflows in
    # float32, and at smooth = 0 the gradient depends on it (-0.083 instead of float64's -0.042).
    tiny = np.full(shape, 1e-30)
    nearly = np.clip(onehot, 1e-30, 1.0)
    pairs = [(onehot, onehot), (zeros, onehot), (onehot, zeros), (zeros, zeros),
             (uniform, absent), (absent, absent), (near, onehot), (1 - onehot, onehot),
             (tiny, onehot), (onehot, tiny), (nearly, onehot), (tiny, absent)]
    extra = hyper_data or {}
    return [{"probabilities": p, "targets": t, **extra} for p, t in pairs]


def _overlap_case(loss, id, parts, hyper, spatial=(N,), soft=False, focal=False,
                  learn_gamma=None):
    nsd = len(spatial)
    hyper = {"num_spatial_dims": nsd, **hyper}
    avg = hyper.get("average", "macro")
    class_axis = tuple(range(-1 - nsd, -1)) if avg == "none" else tuple(range(-1 - nsd, 0))
    grads = {
        "probabilities": lambda d, h: _grad(d, h, parts, nsd, "p", focal),
        "targets": lambda d, h: _grad(d, h, parts, nsd, "t", focal),
    }
    extra = {}
    if learn_gamma is not None:
        extra = {"gamma": np.float64(learn_gamma)}
        grads["gamma"] = lambda d, h: _dgamma(d, h, parts, nsd)
    return Case(
        loss=loss,
        id=id,
        positional=("probabilities", "targets"),
        make=lambda g: {**_data(g, spatial, soft, absent=not soft), **extra},
        reference=lambda d, h: _value(d, h, parts, nsd, focal),
        grads=grads,
        hyper=hyper,
        class_axis=class_axis,  # a tuple of reduced axes
        vmap_axes={"gamma": None} if extra else {},
        extremes=lambda: _extremes(spatial, extra),
    )


# --------------------------------------------------------------------------------------------
# Generalized Dice

def _gd_weights(ts):
    w = np.zeros_like(ts)
    for i in np.ndindex(ts.shape[:-1]):
        row = ts[i]
        present = row > 0
        if present.any():
            raw = np.where(present, 1.0 / np.where(present, row, 1.0) ** 2, 0.0)
            raw = np.where(present, raw, raw.max())
        else:
            raw = np.ones_like(row)
        w[i] = raw / raw.sum()
    return w


def _gd_parts(d, h, nsd):
    tp, ps, ts = _sums(d, nsd, micro=False)
    w = _gd_weights(ts)
    s = h.get("smooth", 1.0)
    return w, 2 * (w * tp).sum(-1) + 2 * s, (w * (ps + ts)).sum(-1) + 2 * s


def _gd_value(d, h, nsd):
    _, num, den = _gd_parts(d, h, nsd)
    return 1 - num / den


def _gd_dp(d, h, nsd):
    w, num, den = _gd_parts(d, h, nsd)
    wb = _bcast(w, nsd, False)
    nb, db = (x.reshape(x.shape + (1,) * (nsd + 1)) for x in (num, den))
    return -wb * (2 * d["targets"] * db - nb) / db**2


def _gd_case(id, hyper, spatial=(N,), soft=False):
    nsd = len(spatial)
    return Case(
        loss="generalized_dice_loss",
        id=id,
        positional=("probabilities", "targets"),
        make=lambda g: _data(g, spatial, soft, absent=not soft),
        reference=lambda d, h: _gd_value(d, h, nsd),
        grads={"probabilities": lambda d, h: _gd_dp(d, h, nsd)},
        hyper={"num_spatial_dims": nsd, **hyper},
        class_axis=tuple(range(-1 - nsd, 0)),
        extremes=lambda: _extremes(spatial),
    )


CASES: list[Case] = [
    _overlap_case("dice_loss", "macro", _dice_parts, {}),
    _overlap_case("dice_loss", "micro+smooth=0.5", _dice_parts,
                  {"average": "micro", "smooth": 0.5}),
    _overlap_case("dice_loss", "none+2d+soft", _dice_parts, {"average": "none"},
                  spatial=HW, soft=True),
    _overlap_case("dice_loss", "smooth=0", _dice_parts, {"smooth": 0.0}, soft=True),
    _overlap_case("jaccard_loss", "macro", _jaccard_parts, {}),
    _overlap_case("jaccard_loss", "micro+2d", _jaccard_parts, {"average": "micro"}, spatial=HW),
    _overlap_case("jaccard_loss", "none+soft+smooth=0.1", _jaccard_parts,
                  {"average": "none", "smooth": 0.1}, soft=True),
    _overlap_case("tversky_loss", "macro", _tversky_parts, {}),
    _overlap_case("tversky_loss", "micro+alpha=0.8,beta=0.1", _tversky_parts,
                  {"average": "micro", "alpha": 0.8, "beta": 0.1}),
    _overlap_case("tversky_loss", "none+2d+soft", _tversky_parts,
                  {"average": "none", "alpha": 0.6, "beta": 0.9, "smooth": 0.3},
                  spatial=HW, soft=True),
    _overlap_case("focal_tversky_loss", "macro", _tversky_parts, {"gamma": 0.75}, focal=True),
    _overlap_case("focal_tversky_loss", "micro+gamma=2", _tversky_parts,
                  {"average": "micro", "gamma": 2.0, "alpha": 0.5, "beta": 0.5}, focal=True),
    _overlap_case("focal_tversky_loss", "none+learnable-gamma", _tversky_parts,
                  {"average": "none"}, soft=True, focal=True, learn_gamma=1.3),
    _overlap_case("focal_tversky_loss", "macro+2d+learnable-gamma", _tversky_parts, {},
                  spatial=HW, focal=True, learn_gamma=0.6),
    _gd_case("absent-class", {}),
    _gd_case("2d+soft+smooth=0.2", {"smooth": 0.2}, spatial=HW, soft=True),
    _gd_case("smooth=0", {"smooth": 0.0}),
]
