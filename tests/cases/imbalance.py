"""Conformance cases for the imbalance-aware classification losses (jaxloss/_imbalance.py).

References are NumPy float64 implementations of the formulas in the papers (Lin et al. 2017;
Cui et al. 2019; Cao et al. 2019; Menon et al. 2021; Ridnik et al. 2021; Leng et al. 2022;
Zhang & Sabuncu 2018), written in linear (probability) space, never by calling jaxloss. Closed-form
derivatives are the per-example derivatives, as tests/registry.py describes.

This module deliberately does not import tests/registry.py (which imports this one).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from tests.case import Case

B, C = 6, 5
SHAPE = (3, 4)
W5 = np.array([1.0, 2.0, 0.5, 3.0, 0.25])
COUNTS = np.array([500.0, 120.0, 40.0, 9.0, 3.0])
PRIORS = COUNTS / COUNTS.sum()


def _sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


def _softplus(x):
    return np.logaddexp(0.0, x)


def _lse(z, mask=None):
    if mask is not None:
        z = np.where(mask, z, -np.inf)
    m = np.max(z, axis=-1, keepdims=True)
    return np.squeeze(m, -1) + np.log(np.sum(np.exp(z - m), axis=-1))


# --------------------------------------------------------------------------------------------
# Sigmoid focal (optionally alpha, Poly-1, learnable gamma)


def _sf_terms(d, h):
    x, t = d["logits"], d["labels"]
    alpha = h.get("alpha")
    p = _sigmoid(x)
    return SimpleNamespace(
        x=x, t=t, p=p, alpha=alpha,
        g=d.get("gamma", h.get("gamma", 2.0)),
        eps=h.get("poly_epsilon", 0.0),
        q=(1 - t) * p + t * (1 - p),  # 1 - p_t
        ce=-(t * np.log(p) + (1 - t) * np.log1p(-p)),
        at=1.0 if alpha is None else alpha * t + (1 - alpha) * (1 - t),
    )


def _sf_value(d, h):
    s = _sf_terms(d, h)
    return s.at * s.q**s.g * s.ce + s.eps * s.q ** (s.g + 1)


def _sf_dx(d, h):
    s = _sf_terms(d, h)
    lx = (1 - 2 * s.t) * s.p * (1 - s.p) / s.q
    return (s.at * s.q**s.g * (s.g * s.ce * lx + s.p - s.t)
            + s.eps * (s.g + 1) * s.q ** (s.g + 1) * lx)


def _sf_dt(d, h):
    s = _sf_terms(d, h)
    lt = (1 - 2 * s.p) / s.q
    dat = 0.0 if s.alpha is None else 2 * s.alpha - 1
    return (dat * s.q**s.g * s.ce + s.at * s.q**s.g * (s.g * s.ce * lt - s.x)
            + s.eps * (s.g + 1) * s.q**s.g * (1 - 2 * s.p))


def _sf_dgamma(d, h):
    s = _sf_terms(d, h)
    return np.log(s.q) * (s.at * s.q**s.g * s.ce + s.eps * s.q ** (s.g + 1))


def _binary_make(soft, extra=None):
    def make(rng):
        x = rng.normal(scale=3.0, size=SHAPE)
        if soft:
            t = rng.uniform(0.05, 0.95, size=SHAPE)
        else:
            t = rng.integers(0, 2, size=SHAPE).astype(np.float64)
        return {"logits": x, "labels": t, **(extra or {})}

    return make


def _binary_extremes(extra=None, big=3e38):
    """Saturated logits, the issue's large ones (1e20, float32's 3e38) and tiny ones, each with
    right and wrong hard labels, soft labels and a tiny label. ``big`` 1e38 where the label
    derivative is checked: at 3e38 its terms (each about |x|) overflow before they cancel, an
    intermediate overflow (inf where the float64 total, -3.75e37 with alpha, is in range)."""
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


def _sigmoid_focal(id, hyper, soft=False, learnable=False):
    extra = {"gamma": np.float64(1.5)} if learnable else None
    grads = {"logits": _sf_dx}
    if soft:  # the label derivative is checked by finite differences in (0, 1)
        grads["labels"] = _sf_dt
    if learnable:
        grads["gamma"] = _sf_dgamma
    return Case(
        loss="sigmoid_focal_loss",
        id=id,
        positional=("logits", "labels"),
        make=_binary_make(soft, extra),
        reference=_sf_value,
        grads=grads,
        hyper=hyper,
        vmap_axes={"gamma": None} if learnable else {},
        extremes=_binary_extremes(extra, big=1e38 if soft else 3e38),
    )


# --------------------------------------------------------------------------------------------
# Asymmetric loss (ASL)


def _asl_parts(d, h):
    p = _sigmoid(d["logits"])
    pm = p - h.get("margin", 0.05)
    active = pm > 0
    return SimpleNamespace(
        t=d["labels"], p=p, active=active, pm=np.where(active, pm, 0.5),
        gp=h.get("gamma_positive", 0.0), gn=h.get("gamma_negative", 4.0),
    )


def _asl_pos_neg(d, h):
    s = _asl_parts(d, h)
    pos = (1 - s.p) ** s.gp * -np.log(s.p)
    neg = np.where(s.active, s.pm**s.gn * -np.log(1 - s.pm), 0.0)
    return pos, neg


def _asl_value(d, h):
    pos, neg = _asl_pos_neg(d, h)
    t = d["labels"]
    return t * pos + (1 - t) * neg


def _asl_dx(d, h):
    s = _asl_parts(d, h)
    sig2 = s.p * (1 - s.p)
    dpos = -((1 - s.p) ** s.gp) * (s.gp * s.p * -np.log(s.p) + (1 - s.p))
    dneg = np.where(s.active, s.gn * s.pm ** (s.gn - 1) * sig2 * -np.log(1 - s.pm)
                    + s.pm**s.gn * sig2 / (1 - s.pm), 0.0)
    return s.t * dpos + (1 - s.t) * dneg


def _asl_dt(d, h):
    pos, neg = _asl_pos_neg(d, h)
    return pos - neg


def _asl_make(margin, soft):
    def make(rng):
        x = rng.normal(scale=3.0, size=SHAPE)
        if margin > 0:  # keep away from the kink p = m, i.e. x = logit(m)
            kink = np.log(margin / (1 - margin))
            x = np.where(np.abs(x - kink) < 0.2, kink + 0.4 * np.sign(x - kink + 1e-12), x)
        t = (rng.uniform(0.05, 0.95, size=SHAPE) if soft
             else rng.integers(0, 2, size=SHAPE).astype(np.float64))
        return {"logits": x, "labels": t}

    return make


def _asl(id, hyper, soft=False):
    return Case(
        loss="asymmetric_multilabel_loss",
        id=id,
        positional=("logits", "labels"),
        make=_asl_make(hyper.get("margin", 0.05), soft),
        reference=_asl_value,
        grads={"logits": _asl_dx, "labels": _asl_dt},
        hyper=hyper,
        extremes=_binary_extremes(),
    )


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


def _multiclass(loss, kind, id, hyper, masked=False, axis=-1, learnable=None, scale=2.0):
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


CASES: list[Case] = [
    _sigmoid_focal("gamma=2", {}),
    _sigmoid_focal("soft+alpha+gamma=0.5+poly", {"alpha": 0.25, "gamma": 0.5,
                                                 "poly_epsilon": 1.0}, soft=True),
    _sigmoid_focal("learnable-gamma+poly", {"poly_epsilon": -0.5}, learnable=True),
    _asl("paper-defaults", {}),
    _asl("margin=0+gamma-=0.5+soft", {"gamma_positive": 1.0, "gamma_negative": 0.5,
                                      "margin": 0.0}, soft=True),
    _multiclass("softmax_focal_loss", "focal", "gamma=2", {}),
    _multiclass("softmax_focal_loss", "focal", "alpha+poly+ignore",
                {"alpha": W5, "gamma": 0.5, "poly_epsilon": 1.5, "ignore_index": -100}),
    _multiclass("softmax_focal_loss", "focal", "class-mask+learnable-gamma", {"alpha": W5},
                masked=True, learnable="gamma"),
    _multiclass("softmax_focal_loss", "focal", "axis=0", {"gamma": 2.0}, axis=0),
    _multiclass("class_balanced_cross_entropy", "cb", "beta=0.99+ignore",
                {"samples_per_class": COUNTS, "beta": 0.99, "ignore_index": -1}),
    _multiclass("class_balanced_focal_loss", "cbfocal", "beta=0.999",
                {"samples_per_class": COUNTS, "gamma": 1.0}),
    _multiclass("ldam_loss", "ldam", "s=30+mask+ignore",
                {"samples_per_class": COUNTS, "ignore_index": -100}, masked=True, scale=0.4),
    _multiclass("logit_adjusted_cross_entropy", "la", "learnable-tau+mask+ignore",
                {"class_priors": PRIORS, "ignore_index": -1}, masked=True, learnable="tau"),
    _multiclass("poly1_cross_entropy", "poly", "eps=2+ignore", {"ignore_index": -100}),
    _multiclass("generalized_cross_entropy", "gce", "q=0.3+mask+ignore",
                {"q": 0.3, "ignore_index": -1}, masked=True),
]
