"""Conformance cases for the margin and ranking losses (jaxloss/_margin.py).

References and closed-form derivatives are NumPy float64, written from the formulas in the
docstrings (never by calling jaxloss).
"""

from __future__ import annotations

import numpy as np

from tests.case import Case
from tests.reference import unit

B, D = 6, 4  # pairs / triplets: batch and feature dimension
C = 5  # classes for the multi-class hinge
SHAPE = (3, 4)  # elementwise losses
EPS = 1e-8
GAP = 0.05  # distance from kinks at the generated smooth points


def _pm1(rng, shape):
    return rng.choice([-1.0, 1.0], size=shape)


def _away(q, values, gap=GAP):
    """Pushes entries of q at least ``gap`` away from each of ``values``."""
    for a in values:
        close = np.abs(q - a) < gap
        q = np.where(close, a + np.where(q >= a, 2 * gap, -2 * gap), q)
    return q


# --------------------------------------------------------------------------------------------
# Scores: hinge, squared hinge, margin ranking


def _score_data(rng, margin):
    """Scores x and targets y with y·x away from the kink at the margin."""
    y = _pm1(rng, SHAPE)
    q = _away(rng.uniform(-3, 3, SHAPE), [margin])
    return {"predictions": y * q, "targets": y}


def _score_extremes():
    x = np.array([[1e4, -1e4, 0.0, 1.0], [-1.0, 1e-30, 3e3, -5e3],
                  [1e20, -1e20, 3e38, -3e38], [2e38, -2e38, -1e-30, 1e-30]])
    y = np.array([[1.0, 1.0, -1.0, 1.0], [1.0, -1.0, -1.0, 1.0],
                  [1.0, 1.0, -1.0, 1.0], [-1.0, 1.0, 1.0, -1.0]])
    return [{"predictions": x, "targets": y}, {"predictions": x, "targets": -np.ones_like(x)}]


def _hinge_case(loss, id, margin, square):
    def value(d, h):
        z = margin - d["targets"] * d["predictions"]
        return np.maximum(z, 0) ** 2 if square else np.maximum(z, 0)

    def grad(d, h):
        z = margin - d["targets"] * d["predictions"]
        return -d["targets"] * (2 * np.maximum(z, 0) if square else (z >= 0))

    return Case(
        loss=loss, id=id, positional=("predictions", "targets"),
        make=lambda g: _score_data(g, margin), reference=value,
        grads={"predictions": grad}, hyper={} if margin == 1.0 else {"margin": margin},
        extremes=_score_extremes,
    )


def _ranking_data(rng, margin):
    y = _pm1(rng, SHAPE)
    diff = _away(rng.uniform(-3, 3, SHAPE), [margin])  # y·(x1 - x2)
    x2 = rng.normal(size=SHAPE)
    return {"scores_1": x2 + y * diff, "scores_2": x2, "targets": y}


def _ranking_case(id, margin):
    def z(d):
        return margin - d["targets"] * (d["scores_1"] - d["scores_2"])

    return Case(
        loss="margin_ranking_loss", id=id, positional=("scores_1", "scores_2", "targets"),
        make=lambda g: _ranking_data(g, margin),
        reference=lambda d, h: np.maximum(z(d), 0),
        grads={"scores_1": lambda d, h: -d["targets"] * (z(d) >= 0),
               "scores_2": lambda d, h: d["targets"] * (z(d) >= 0)},
        hyper={} if margin == 0.0 else {"margin": margin},
        extremes=lambda: [
            {"scores_1": np.array([1e4, -1e4, 0.0, 3.0, 1.0, -2.0]),
             "scores_2": np.array([-1e4, 1e4, 0.0, 3.0, 1.0, 2.0]),
             "targets": np.array([1.0, 1.0, -1.0, 1.0, 1.0, -1.0])},
            {"scores_1": np.zeros(6), "scores_2": np.zeros(6), "targets": -np.ones(6)},
            # Differences beyond float32's range (inf or 0), at 1e20, and of tiny scores.
            {"scores_1": np.array([3e38, -3e38, 1e20, 1e-30, 2e38, -3e38]),
             "scores_2": np.array([-3e38, 3e38, -1e20, -1e-30, -2e38, -3e38]),
             "targets": np.array([1.0, 1.0, -1.0, -1.0, -1.0, 1.0])}],
    )


SCORES = [
    _hinge_case("hinge_loss", "margin=1", 1.0, square=False),
    _hinge_case("hinge_loss", "margin=0.5", 0.5, square=False),
    _hinge_case("squared_hinge_loss", "margin=1", 1.0, square=True),
    _hinge_case("squared_hinge_loss", "margin=2", 2.0, square=True),
    _ranking_case("margin=0", 0.0),
    _ranking_case("margin=0.5", 0.5),
]


# --------------------------------------------------------------------------------------------
# Multi-class hinge


def _violations(z, y, margin):
    v = margin + z - np.take_along_axis(z, y[:, None], -1)
    v[np.arange(len(y)), y] = -np.inf
    return v


def _mc_smooth(z, y, margin, kind):
    v = _violations(z, y, margin)
    if kind == "weston_watkins":
        finite = v[np.isfinite(v)]
        return np.all(np.abs(finite) > GAP)
    top2 = np.sort(v, -1)[:, -2:]
    return np.all(np.abs(top2[:, 1]) > GAP) and np.all(top2[:, 1] - top2[:, 0] > GAP)


def _mc_make(rng, margin, kind, ignore):
    while True:
        z = rng.normal(scale=1.5, size=(B, C))
        y = rng.integers(0, C, size=B)
        if _mc_smooth(z, y, margin, kind):
            break
    if ignore is not None:
        y = y.copy()
        y[::3] = ignore
    return {"logits": z, "labels": y}


def _mc_value(d, h, margin, kind, ignore):
    z, y = d["logits"], d["labels"]
    ok = y != ignore if ignore is not None else np.ones(y.shape, bool)
    v = _violations(z, np.where(ok, y, 0), margin)
    if kind == "crammer_singer":
        out = np.maximum(np.max(v, -1), 0)
    else:
        out = np.sum(np.where(np.isfinite(v), np.maximum(v, 0), 0), -1)
    return np.where(ok, out, 0.0)


def _mc_grad(d, h, margin, kind, ignore):
    z, y = d["logits"], d["labels"]
    ok = y != ignore if ignore is not None else np.ones(y.shape, bool)
    ys = np.where(ok, y, 0)
    v = _violations(z, ys, margin)
    onehot = np.eye(C)[ys]
    if kind == "crammer_singer":
        active = np.max(v, -1, keepdims=True) >= 0
        g = active * (np.eye(C)[np.argmax(v, -1)] - onehot)
    else:
        ind = (v >= 0).astype(float)
        g = ind - onehot * ind.sum(-1, keepdims=True)
    return np.where(ok[:, None], g, 0.0)


def _mc_case(id, margin=1.0, kind="crammer_singer", ignore=None):
    hyper = {}
    if margin != 1.0:
        hyper["margin"] = margin
    if kind != "crammer_singer":
        hyper["kind"] = kind
    if ignore is not None:
        hyper["ignore_index"] = ignore
    z = np.array([[1e4, -1e4, 0, 0, 0], [-1e4] * 5, [0.0] * 5, [1e4, 1e4, -1e4, 0, 1],
                  [3e38, -3e38, 1e20, -1e20, 1e-30], [2e38, 2e38, -2e38, 1e-30, 0.0]])
    return Case(
        loss="multiclass_hinge_loss", id=id, positional=("logits", "labels"),
        make=lambda g: _mc_make(g, margin, kind, ignore),
        reference=lambda d, h: _mc_value(d, h, margin, kind, ignore),
        grads={"logits": lambda d, h: _mc_grad(d, h, margin, kind, ignore)},
        hyper=hyper, class_axis=-1,
        extremes=lambda: [{"logits": z, "labels": np.array([1, 0, 4, 2, 1, 0])},
                          {"logits": -z, "labels": np.array([0, 3, 0, 1, 0, 4])}],
    )


MULTICLASS = [
    _mc_case("crammer_singer"),
    _mc_case("crammer_singer+margin=0.5+ignore", margin=0.5, ignore=-1),
    _mc_case("weston_watkins", kind="weston_watkins"),
    _mc_case("weston_watkins+margin=2", margin=2.0, kind="weston_watkins"),
]


# --------------------------------------------------------------------------------------------
# Pairs and triplets of embeddings


def _unit(x):
    return unit(x, EPS)


def _cos(a, b):
    return np.sum(_unit(a) * _unit(b), -1)


def _dcos(a, b):
    """d cos(a, b) / d a (norms far above eps at the smooth points)."""
    na = np.linalg.norm(a, axis=-1, keepdims=True)
    return (_unit(b) - _cos(a, b)[:, None] * _unit(a)) / na


def _pair_extremes(targets_pos, targets_neg):
    z = np.zeros(D)
    big = np.array([1e4, -1e4, 1e4, 3.0])
    tiny = np.array([1e-30, 0.0, -1e-30, 0.0])
    # Norms and differences beyond float32's range, coordinates near 2e38 (where x / max|x|
    # flushed to 0 under jit), at 1e20, and tiny ones.
    huge = np.array([3e38, -3e38, 2e38, 1e-30])
    top = np.array([2e38, 0.0, 0.0, 0.0])
    e20 = np.array([1e20, -1e20, 0.0, 1.0])
    x1 = np.stack([z, z, big, big, tiny, big, huge, top, e20, huge, z, tiny])
    x2 = np.stack([z, big, big, -big, big, z, -huge, tiny, -e20, huge, e20, top])
    n = len(x1)
    return [{"embeddings_1": x1, "embeddings_2": x2, "targets": np.full(n, targets_pos)},
            {"embeddings_1": x1, "embeddings_2": x2, "targets": np.full(n, targets_neg)},
            {"embeddings_1": x2, "embeddings_2": x1, "targets": np.full(n, targets_neg)}]


def _cosine_make(rng, margin):
    while True:
        x1, x2 = rng.normal(size=(B, D)), rng.normal(size=(B, D))
        y = _pm1(rng, B)
        y[:2] = [1.0, -1.0]
        if np.all((y > 0) | (np.abs(_cos(x1, x2) - margin) > GAP)):
            return {"embeddings_1": x1, "embeddings_2": x2, "targets": y}


def _cosine_case(id, margin):
    def value(d, h):
        c = _cos(d["embeddings_1"], d["embeddings_2"])
        return np.where(d["targets"] > 0, 1 - c, np.maximum(c - margin, 0))

    def factor(d):
        c = _cos(d["embeddings_1"], d["embeddings_2"])
        return np.where(d["targets"] > 0, -1.0, (c >= margin).astype(float))[:, None]

    return Case(
        loss="cosine_embedding_loss", id=id, positional=("embeddings_1", "embeddings_2", "targets"),
        make=lambda g: _cosine_make(g, margin), reference=value,
        grads={
            "embeddings_1": lambda d, h: factor(d) * _dcos(d["embeddings_1"], d["embeddings_2"]),
            "embeddings_2": lambda d, h: factor(d) * _dcos(d["embeddings_2"], d["embeddings_1"]),
        },
        hyper={} if margin == 0.0 else {"margin": margin}, class_axis=-1,
        extremes=lambda: _pair_extremes(1.0, -1.0),
    )


def _pnorm(x, p):
    return np.sum(np.abs(x) ** p, -1) ** (1 / p)


def _dpnorm(x, p):
    n = _pnorm(x, p)[..., None]
    return np.sign(x) * np.abs(x) ** (p - 1) / n ** (p - 1)


def _triplet_parts(d, h):
    a, pos, neg = d["anchors"], d["positives"], d["negatives"]
    p, margin = h.get("p", 2.0), d.get("margin", h.get("margin", 1.0))
    d_ap, d_an = _pnorm(a - pos, p), _pnorm(a - neg, p)
    use_pn = np.zeros(d_an.shape, bool)
    if h.get("swap", False):
        d_pn = _pnorm(pos - neg, p)
        use_pn = d_pn < d_an
        d_an = np.where(use_pn, d_pn, d_an)
    z = d_ap - d_an + margin
    return z, use_pn, p


def _triplet_grads(d, h):
    a, pos, neg = d["anchors"], d["positives"], d["negatives"]
    z, use_pn, p = _triplet_parts(d, h)
    s = (z >= 0)[:, None].astype(float)
    g_ap = _dpnorm(a - pos, p)
    g_an = np.where(use_pn[:, None], 0.0, _dpnorm(a - neg, p))
    g_pn = np.where(use_pn[:, None], _dpnorm(pos - neg, p), 0.0)
    return {"anchors": s * (g_ap - g_an), "positives": s * (-g_ap - g_pn),
            "negatives": s * (g_an + g_pn)}


def _triplet_make(rng, h, learn_margin):
    """Triplets drawn row by row (rejection per row, so it stays fast), away from every kink;
    row 0 is active and row 1 inactive, so both sides of the hinge are covered."""
    p = h.get("p", 2.0)
    # Coordinates of the differences away from 0: the kinks of the L1 norm, and the |x|^(p-2)
    # blow-up of the second derivative for 1 < p < 2.
    coord_gap = GAP if p == 1 else 0.3 if p < 2 else 0.0
    rows = []
    while len(rows) < B:
        a, pos, neg = (rng.normal(size=(1, D)) for _ in range(3))
        pos = a + 0.8 * (pos - a)  # positives a little closer on average
        d = {"anchors": a, "positives": pos, "negatives": neg}
        if learn_margin:
            d["margin"] = np.float64(0.8)
        z = _triplet_parts(d, h)[0][0]
        ok = abs(z) > GAP and (len(rows) != 0 or z > 0) and (len(rows) != 1 or z < 0)
        ok &= all(np.all(np.abs(u) > coord_gap) for u in (a - pos, a - neg, pos - neg))
        if h.get("swap", False):
            ok &= bool(np.all(np.abs(_pnorm(a - neg, p) - _pnorm(pos - neg, p)) > GAP))
        if ok:
            rows.append((a, pos, neg))
    d = {k: np.concatenate([r[i] for r in rows]) for i, k in
         enumerate(("anchors", "positives", "negatives"))}
    if learn_margin:
        d["margin"] = np.float64(0.8)
    return d


def _triplet_case(id, hyper, learn_margin=False):
    grads = {n: (lambda d, h, n=n: _triplet_grads(d, h)[n])
             for n in ("anchors", "positives", "negatives")}
    if learn_margin:
        grads["margin"] = lambda d, h: (_triplet_parts(d, h)[0] >= 0).astype(float)[:, None]

    def extremes():
        # Four rows each, so that every set shares one compiled program.
        z = np.zeros((4, D))
        big = np.array([[1e4, -1e4, 1e4, -1e4], [3e3, 0.0, -3e3, 1e-30],
                        [-1e4, 1e4, 0.0, 2.0], [1.0, 2.0, -3e3, 3e3]])
        # The triplet (true value 0; the norm of [2e38, 0, 0] came out 0), distances
        # beyond float32's range on one or both sides, 1e20 and tiny ones.
        e1 = np.array([[0.0, 0, 0, 0], [3e38, -3e38, 0, 1e-30], [1e20, -1e20, 1e20, 0],
                       [1e-30, 0, 0, 0]])
        e2 = np.array([[1e-30, 1e-30, 1e-30, 0], [-3e38, 3e38, 2e38, 0], [-1e20, 0, 0, 1e20],
                       [0, 1e-30, -1e-30, 0]])
        e3 = np.array([[2e38, 0, 0, 0], [-3e38, 3e38, 0, 3e38], [0, 1e20, 1e20, 0],
                       [2e-30, 0, 0, 0]])
        out = [{"anchors": z, "positives": z, "negatives": z},  # all coincident
               {"anchors": big, "positives": big, "negatives": -big},
               {"anchors": z, "positives": big, "negatives": z},
               {"anchors": big, "positives": -big, "negatives": big},
               {"anchors": e1, "positives": e2, "negatives": e3},
               {"anchors": e1, "positives": e3, "negatives": e2},
               {"anchors": z, "positives": e1, "negatives": e3}]
        if learn_margin:
            out = [{**o, "margin": np.float64(0.8)} for o in out]
        return out

    return Case(
        loss="triplet_margin_loss", id=id, positional=("anchors", "positives", "negatives"),
        make=lambda g: _triplet_make(g, hyper, learn_margin),
        reference=lambda d, h: np.maximum(_triplet_parts(d, h)[0], 0),
        grads=grads, hyper=hyper, class_axis=-1,
        vmap_axes={"margin": None} if learn_margin else {}, extremes=extremes,
    )


def _contrastive_make(rng, learn_margin):
    margin = 2.0
    while True:
        x1, x2 = rng.normal(size=(B, D)), rng.normal(size=(B, D))
        y = rng.integers(0, 2, size=B).astype(float)
        y[:2] = [1.0, 0.0]
        dist = np.linalg.norm(x1 - x2, axis=-1)
        if np.all((y > 0) | (np.abs(dist - margin) > GAP)) and np.any((y == 0) & (dist < margin)):
            d = {"embeddings_1": x1, "embeddings_2": x2, "targets": y}
            if learn_margin:
                d["margin"] = np.float64(margin)
            return d


def _contrastive_parts(d, h):
    diff = d["embeddings_1"] - d["embeddings_2"]
    dist = np.linalg.norm(diff, axis=-1)
    m = d.get("margin", h.get("margin", 1.0))
    return diff, dist, np.maximum(m - dist, 0), d["targets"]


def _contrastive_value(d, h):
    _, dist, hinge_loss, y = _contrastive_parts(d, h)
    return 0.5 * y * dist**2 + 0.5 * (1 - y) * hinge_loss**2


def _contrastive_dx1(d, h):
    diff, dist, hinge_loss, y = _contrastive_parts(d, h)
    return y[:, None] * diff - ((1 - y) * hinge_loss / dist)[:, None] * diff


def _contrastive_case(id, learn_margin):
    grads = {"embeddings_1": _contrastive_dx1,
             "embeddings_2": lambda d, h: -_contrastive_dx1(d, h)}
    if learn_margin:
        grads["margin"] = lambda d, h: ((1 - d["targets"]) * _contrastive_parts(d, h)[2])[:, None]

    def extremes():
        out = _pair_extremes(1.0, 0.0)
        return [{**o, "margin": np.float64(2.0)} for o in out] if learn_margin else out

    return Case(
        loss="contrastive_loss", id=id, positional=("embeddings_1", "embeddings_2", "targets"),
        make=lambda g: _contrastive_make(g, learn_margin), reference=_contrastive_value,
        grads=grads, hyper={} if learn_margin else {"margin": 2.0}, class_axis=-1,
        vmap_axes={"margin": None} if learn_margin else {}, extremes=extremes,
    )


PAIRS = [
    _cosine_case("margin=0", 0.0),
    _cosine_case("margin=0.3", 0.3),
    _triplet_case("p=2", {}),
    _triplet_case("p=1+margin=0.5", {"p": 1.0, "margin": 0.5}),
    _triplet_case("p=3", {"p": 3.0}),
    _triplet_case("p=2+swap", {"swap": True}),
    _triplet_case("p=1.5+learnable-margin", {"p": 1.5}, learn_margin=True),
    _contrastive_case("margin=2", learn_margin=False),
    _contrastive_case("learnable-margin", learn_margin=True),
]


CASES: list[Case] = [*SCORES, *MULTICLASS, *PAIRS]
