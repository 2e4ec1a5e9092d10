"""The multi-class, integer-label reference shared by tests/cases/focal.py and
tests/cases/imbalance.py (not a cases file: the leading underscore keeps it out of
``tests.cases.collect``).

One NumPy float64 formula for the softmax focal, class-balanced, Poly-1, GCE, LDAM and
logit-adjusted losses, written in linear (probability) space from the papers (Lin et al. 2017;
Cui et al. 2019; Cao et al. 2019; Menon et al. 2021; Leng et al. 2022; Zhang & Sabuncu 2018),
never by calling jaxloss; :func:`multiclass_case` builds a loss's conformance case from it.
"""

from __future__ import annotations

import numpy as np

from tests.case import Case
from tests.reference import B, C
from tests.reference import lse as _reference_lse

W5 = np.array([1.0, 2.0, 0.5, 3.0, 0.25])
COUNTS = np.array([500.0, 120.0, 40.0, 9.0, 3.0])
PRIORS = COUNTS / COUNTS.sum()


def _lse(z, mask=None):
    return _reference_lse(z, -1, mask)


# --------------------------------------------------------------------------------------------
# Multi-class, integer labels: one reference for focal / CB / Poly-1 / GCE / LDAM / LA
#
# With p = softmax over counted classes, c = -log p_y, u = 1 - p_y = sum of the other counted p:
#   focal-type:  l = a_y u^γ c + ε u^(γ+1)     (CE: γ = 0, ε = 0, a = 1)
#   GCE:         l = (1 - p_y^q) / q
#   LDAM / LA:   the CE of transformed logits z' (s (z - Δ_y e_y), z + τ log π).


def _counted(z, mask):
    return np.ones(z.shape, bool) if mask is None else np.broadcast_to(mask, z.shape)


def _softmax(z, mask):
    lse = _lse(z, mask)[..., None]
    return np.where(_counted(z, mask), np.exp(np.minimum(z - lse, 0.0)), 0.0), lse[..., 0]


def _label_info(d, h):
    y, ign = d["labels"], h.get("ignore_index")
    ok = y != ign if ign is not None else np.ones(y.shape, bool)
    ys = np.where(ok, y, 0)
    return ok, ys, np.eye(C)[ys]


def _transformed_logits(d, h, kind):
    z = d["logits_c"]
    if kind == "ldam":
        inv = COUNTS**-0.25
        margins = h.get("max_margin", 0.5) * inv / inv.max()
        _, ys, onehot = _label_info(d, h)
        return h.get("scale", 30.0) * (z - onehot * margins[ys][:, None])
    if kind == "la":
        return z + d.get("tau", h.get("tau", 1.0)) * np.log(PRIORS)
    return z


def _focal_params(d, h, kind):
    """(a [C] or None, γ, ε) of the focal-type form for each kind."""
    if kind == "focal":
        a = h.get("alpha")
        return (None if a is None else np.asarray(a)), d.get("gamma", h.get("gamma", 2.0)), \
            h.get("poly_epsilon", 0.0)
    if kind == "poly":
        return None, 0.0, h.get("epsilon", 2.0)
    if kind in ("cb", "cbfocal"):
        beta = h.get("beta", 0.999)
        raw = (1 - beta) / (1 - beta**COUNTS)
        w = raw * C / raw.sum()
        return w, (h.get("gamma", 2.0) if kind == "cbfocal" else 0.0), 0.0
    return None, 0.0, 0.0  # ldam, la: plain CE of transformed logits


def _mc_value(d, h, kind):
    ok, ys, onehot = _label_info(d, h)
    mask = d.get("where")
    z = _transformed_logits(d, h, kind)
    p, lse = _softmax(z, mask)
    c = lse - np.sum(onehot * z, -1)
    if kind == "gce":
        q = h.get("q", 0.7)
        v = (1 - np.exp(-q * c)) / q
    else:
        a, g, eps = _focal_params(d, h, kind)
        u = np.sum(p * (1 - onehot), -1)
        ay = 1.0 if a is None else a[ys]
        v = ay * u**g * c + eps * u ** (g + 1)
    return np.where(ok, v, 0.0)


def _mc_dz(d, h, kind):
    ok, ys, onehot = _label_info(d, h)
    mask = d.get("where")
    z = _transformed_logits(d, h, kind)
    p, lse = _softmax(z, mask)
    c = (lse - np.sum(onehot * z, -1))[:, None]
    if kind == "gce":
        q = h.get("q", 0.7)
        g = np.exp(-q * c) * (p - onehot)
    else:
        a, gam, eps = _focal_params(d, h, kind)
        u = np.sum(p * (1 - onehot), -1, keepdims=True)
        qv = p * (1 - onehot) / u  # softmax over the other counted classes
        ay = 1.0 if a is None else a[ys][:, None]
        g = ay * u**gam * (gam * c * (qv - p) + (p - onehot)) + eps * (gam + 1) * u ** (gam + 1) * (
            qv - p)
    if kind == "ldam":
        g = h.get("scale", 30.0) * g
    return np.where(ok[:, None], g, 0.0)


def _mc_dgamma(d, h):
    ok, ys, onehot = _label_info(d, h)
    p, lse = _softmax(d["logits_c"], d.get("where"))
    c = lse - np.sum(onehot * d["logits_c"], -1)
    a, g, eps = _focal_params(d, h, "focal")
    u = np.sum(p * (1 - onehot), -1)
    ay = 1.0 if a is None else a[ys]
    return np.where(ok, np.log(u) * (ay * u**g * c + eps * u ** (g + 1)), 0.0)


def _mc_dtau(d, h):
    ok, _, onehot = _label_info(d, h)
    p, _ = _softmax(_transformed_logits(d, h, "la"), d.get("where"))
    counted = _counted(p, d.get("where"))
    return np.where(ok, np.sum(np.where(counted, (p - onehot) * np.log(PRIORS), 0.0), -1), 0.0)


def _row_mask(rng):
    mask = rng.uniform(size=(B, C)) > 0.3
    mask[:, 0] = True
    mask[:, 4] = True  # at least two counted classes per row
    return mask


def multiclass_case(loss, kind, id, hyper, masked=False, axis=-1, learnable=None, scale=2.0):
    ign = hyper.get("ignore_index")
    extra = {}
    if learnable == "gamma":
        extra = {"gamma": np.float64(1.5)}
    elif learnable == "tau":
        extra = {"tau": np.float64(0.8)}

    def make(g):
        z = g.normal(scale=scale, size=(B, C))
        d = {"labels": g.integers(0, C, size=B)}
        if masked:
            d["where"] = _row_mask(g)
            d["labels"] = np.array([int(g.choice(np.flatnonzero(m))) for m in d["where"]])
        if ign is not None:
            d["labels"][1::3] = ign
        d["logits"] = np.moveaxis(z, -1, axis)
        return {**d, **extra}

    def extremes():
        z = np.array([[1e4, -1e4, 0, 0, 0], [-1e4] * 5, [0.0] * 5, [1e4, 1e4, -1e4, 0, 1]])
        # The issue's large logits (1e20, float32's 3e38) and tiny ones. The label's logit is at
        # most 3e38 below the largest: a cross-entropy beyond float32's range is inf, and times
        # a class weight < 1 it would stay inf where float64's product is in range (an
        # intermediate overflow, left as is; test_trust_imbalance.py checks the unweighted inf).
        big = np.array([[1e20, -1e20, 0, 0, 0], [3e38, -1e38, 0, 1, 2], [-3e38] * 5,
                        [1.5e38, 1.5e38, -1.5e38, 1e-30, 0]])
        y = np.array([1, 0, 4, 2])
        out = [{"logits": np.moveaxis(z, -1, axis), "labels": y},
               {"logits": np.moveaxis(-z, -1, axis), "labels": y},
               {"logits": np.moveaxis(z * 1e-3, -1, axis), "labels": np.array([0, 1, 0, 2])},
               {"logits": np.moveaxis(big, -1, axis), "labels": y},
               {"logits": np.moveaxis(-big, -1, axis), "labels": np.array([0, 1, 2, 3])}]
        if ign is not None:
            out.append({"logits": np.moveaxis(z, -1, axis), "labels": np.full(4, ign)})
        if masked:
            mask = np.array([[True] * 5, [True, False, False, False, False],
                             [True, False, True, False, True], [True] * 5])
            out = [{**o, "where": mask, "labels": np.array([1, 0, 4, 2])} for o in out[:5]]
        return [{**o, **extra} for o in out]

    def with_c(f):  # the references work on the class axis last
        def g(d, h):
            return f({**d, "logits_c": np.moveaxis(d["logits"], axis, -1)}, h)
        return g

    grads = {"logits": with_c(lambda d, h: np.moveaxis(_mc_dz(d, h, kind), -1, axis))}
    # A scalar hyperparameter's per-example derivative, expanded along the class axis as the
    # suite expands its cotangent.
    if learnable == "gamma":
        grads["gamma"] = with_c(lambda d, h: np.expand_dims(_mc_dgamma(d, h), axis))
    elif learnable == "tau":
        grads["tau"] = with_c(lambda d, h: np.expand_dims(_mc_dtau(d, h), axis))
    hyper = {**hyper, **({"axis": axis} if axis != -1 else {})}
    vmap_axes = {"logits": 1 if axis == 0 else 0, **{k: None for k in extra}}
    return Case(
        loss=loss,
        id=id,
        positional=("logits", "labels"),
        make=make,
        reference=with_c(lambda d, h: _mc_value(d, h, kind)),
        grads=grads,
        hyper=hyper,
        class_axis=axis,
        vmap_axes=vmap_axes,
        extremes=extremes,
    )
