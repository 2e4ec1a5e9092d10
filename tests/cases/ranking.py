"""Conformance cases for the learning-to-rank losses (jaxloss/_ranking.py).

References are NumPy float64, written item by item and pair by pair from the definitions in the
module's docstring (rax's conventions): masked items dropped, ranks by descending score with ties
in order of appearance, gain 2^y − 1, discount 1/log2(1 + r). Closed-form gradients for the
softmax, ListMLE, pairwise and pointwise losses; for the approximate NDCG/MRR losses the
gradient is the complex-step derivative of the NumPy reference (exact to rounding: the
reference is analytic in the scores away from ties).
"""

from __future__ import annotations

import numpy as np

from tests.case import Case
from tests.reference import sigmoid

B, N = 3, 5  # lists, items per list

NOT_LOSSES = {"ndcg_metric", "mrr_metric"}


# ----------------------------------------------------------------------------------------------
# NumPy building blocks


def _valid(d):
    w = d.get("where")
    return np.ones(np.shape(d["scores"]), bool) if w is None else np.asarray(w, bool)


def _weights(d):
    w = d.get("weights")
    return np.ones(np.shape(d["scores"])) if w is None else np.asarray(w, np.float64)


def ranks(keys, valid):
    """1-based ranks by descending key (real part), ties by position, invalid items last."""
    keys = np.real(keys)
    out = np.zeros(keys.shape, int)
    for b in np.ndindex(keys.shape[:-1]):
        n = keys.shape[-1]
        order = sorted(range(n), key=lambda i: (not valid[b][i], -keys[b][i], i))
        for r, i in enumerate(order):
            out[(*b, i)] = r + 1
    return out


def gains(d):
    v = _valid(d)
    return np.where(v, (2.0 ** np.asarray(d["labels"], np.float64) - 1) * _weights(d), 0.0)


def ideal_dcg(g, valid, topn=None):
    out = np.zeros(g.shape[:-1])
    for b in np.ndindex(g.shape[:-1]):
        vals = sorted(g[b][valid[b]], reverse=True)
        if topn is not None:
            vals = vals[:topn]
        out[b] = sum(v / np.log2(k + 2) for k, v in enumerate(vals))
    return out


def pairwise(x, op=np.subtract):
    """[..., n, n] with entry (i, j) = op(x_i, x_j): the one generator of pairs here."""
    return op(x[..., :, None], x[..., None, :])


def _lse(x):
    m = np.max(np.real(x))
    return m + np.log(np.sum(np.exp(x - m)))


# ----------------------------------------------------------------------------------------------
# References


def softmax_ref(d, h):
    s, y, v = d["scores"], d["labels"], _valid(d)
    yh = np.where(v, y * _weights(d), 0.0)
    out = np.zeros(s.shape[:-1])
    for b in np.ndindex(s.shape[:-1]):
        if v[b].any():
            out[b] = np.sum(yh[b][v[b]] * (_lse(s[b][v[b]]) - s[b][v[b]]))
    return out


def softmax_grad(d, h):
    s, y, v = d["scores"], d["labels"], _valid(d)
    yh = np.where(v, y * _weights(d), 0.0)
    g = np.zeros(s.shape)
    for b in np.ndindex(s.shape[:-1]):
        if v[b].any():
            p = np.where(v[b], np.exp(s[b] - _lse(s[b][v[b]])), 0.0)
            g[b] = yh[b].sum() * p - yh[b]
    return g


def _listmle_rows(d):
    """For each list: the label order π (valid items) as a list of item indices."""
    y, v = d["labels"], _valid(d)
    pos = ranks(y, v)
    return {
        b: [i for i in np.argsort(pos[b], kind="stable") if v[b][i]]
        for b in np.ndindex(y.shape[:-1])
    }


def listmle_ref(d, h):
    s = d["scores"]
    out = np.zeros(s.shape[:-1], dtype=s.dtype)
    for b, order in _listmle_rows(d).items():
        out[b] = sum(_lse(s[b][order[k:]]) - s[b][order[k]] for k in range(len(order)))
    return out


def listmle_grad(d, h):
    s = d["scores"]
    g = np.zeros(s.shape)
    for b, order in _listmle_rows(d).items():
        for k in range(len(order)):
            tail = order[k:]
            p = np.exp(s[b][tail] - _lse(s[b][tail]))
            g[b][tail] += p
            g[b][order[k]] -= 1
    return g


def lambdaweights(d, kind, topn=None):
    """λ_ij [..., n, n]; ``topn``: discounts beyond rank k are 0, the ideal DCG is DCG@k."""
    s, y, v = d["scores"], d["labels"], _valid(d)
    n = s.shape[-1]
    if kind is None:
        return np.ones((*s.shape, n))
    if kind == "labeldiff":
        return np.abs(pairwise(y))
    g = gains(d)
    if kind == "ndcg":
        ideal = ideal_dcg(g, v, topn)
        g = g / np.where(ideal == 0, 1, ideal)[..., None]
    r = ranks(s, v)
    disc = np.where(r <= (topn or n), 1 / np.log2(r + 1), 0.0)
    return n * np.abs(pairwise(g)) * np.abs(pairwise(disc))


PAIR = {  # ℓ(d, Δy) and dℓ/dd
    "hinge": (lambda x, dy: np.maximum(1 - x, 0), lambda x, dy: -(1 - x >= 0).astype(float)),
    "logistic": (lambda x, dy: np.logaddexp(0, -x), lambda x, dy: -sigmoid(-x)),
    "soft01": (lambda x, dy: sigmoid(-x), lambda x, dy: -sigmoid(x) * sigmoid(-x)),
    "squared": (lambda x, dy: (dy - x) ** 2, lambda x, dy: 2 * (x - dy)),
}


def _pair_coefficients(d, h, kind):
    """c_ij = [counted pair] · w_i · λ_ij, d_ij and Δy_ij, each [..., n, n]."""
    s, y, v = d["scores"], d["labels"], _valid(d)
    pairs = pairwise(v, np.logical_and)
    if kind != "squared":
        pairs &= pairwise(y, np.greater)
    c = pairs * _weights(d)[..., :, None] * lambdaweights(d, h.get("lambdaweight"), h.get("topn"))
    return c, pairwise(s), pairwise(y)


def pairwise_ref(kind):
    def ref(d, h):
        c, x, dy = _pair_coefficients(d, h, kind)
        return np.sum(np.where(c != 0, c * PAIR[kind][0](x, dy), 0.0), axis=(-2, -1))

    return ref


def pairwise_grad(kind):
    def grad(d, h):
        c, x, dy = _pair_coefficients(d, h, kind)
        gl = c * PAIR[kind][1](x, dy)
        return gl.sum(-1) - gl.sum(-2)

    return grad


POINT = {
    "sigmoid": (
        lambda s, y: (
            np.clip(y, 0, 1) * np.logaddexp(0, -s) + (1 - np.clip(y, 0, 1)) * np.logaddexp(0, s)
        ),
        lambda s, y: sigmoid(s) - np.clip(y, 0, 1),
    ),
    "squared": (lambda s, y: (s - y) ** 2, lambda s, y: 2 * (s - y)),
}


def pointwise_ref(kind):
    def ref(d, h):
        v = _valid(d)
        terms = _weights(d) * POINT[kind][0](d["scores"], d["labels"])
        return np.sum(np.where(v, terms, 0.0), axis=-1)

    return ref


def pointwise_grad(kind):
    def grad(d, h):
        return np.where(_valid(d), _weights(d) * POINT[kind][1](d["scores"], d["labels"]), 0.0)

    return grad


def approx_ranks(s, v, temperature):
    """r̂_i = 1 + Σ_{j ≠ i, valid} σ((s_j − s_i)/T); complex-safe."""
    n = s.shape[-1]
    pairs = pairwise(v, np.logical_and) & ~np.eye(n, dtype=bool)
    sig = 1 / (1 + np.exp(pairwise(s) / temperature))  # σ((s_j − s_i)/T)
    return 1 + np.sum(np.where(pairs, sig, 0), axis=-1)


def approx_ndcg_ref(d, h):
    s, v = d["scores"], _valid(d)
    g = gains(d)
    r = approx_ranks(s, v, d.get("temperature", h.get("temperature", 1.0)))
    dcg = np.sum(np.where(v, g / np.log2(1 + r), 0), axis=-1)
    ideal = ideal_dcg(g, v)
    return -dcg / np.where(ideal == 0, 1, ideal)


def approx_mrr_ref(d, h):
    s, v, y = d["scores"], _valid(d), d["labels"]
    r = approx_ranks(s, v, d.get("temperature", h.get("temperature", 1.0)))
    rr = np.where(v & (y >= 1), 1 / r, 0)
    best = np.argmax(np.real(rr), axis=-1)
    return -np.take_along_axis(rr, best[..., None], -1)[..., 0]


def complex_step(ref):
    """d ref_b / d scores[b, i] by the complex step (exact to rounding at smooth points)."""

    def grad(d, h):
        s = np.asarray(d["scores"], np.float64)
        g = np.zeros(s.shape)
        step = 1e-30
        for idx in np.ndindex(s.shape):
            sc = s.astype(complex)
            sc[idx] += 1j * step
            g[idx] = np.imag(ref({**d, "scores": sc}, h)[idx[:-1]]) / step
        return g

    return grad


# ----------------------------------------------------------------------------------------------
# Data


WHERE = np.array([[True] * N, [True, False, True, True, False], [False, True, True, True, True]])


def _make(where=False, weights=False, avoid_hinge=False, unique_mrr=False):
    def make(rng):
        for _ in range(1000):
            s = rng.normal(scale=1.5, size=(B, N))
            gaps = np.abs(pairwise(s))[..., ~np.eye(N, dtype=bool)]
            if gaps.min() < 0.02:  # no near-ties: ranks (lambda weights) are locally constant
                continue
            if avoid_hinge and np.abs(gaps - 1).min() < 0.02:
                continue
            break
        y = rng.integers(0, 4, size=(B, N)).astype(np.float64)
        y[:, 0] = 2.0  # every list has a relevant item
        d = {"scores": s, "labels": y}
        if where:
            d["where"] = WHERE.copy()
        if weights:
            d["weights"] = rng.uniform(0.5, 2.0, size=(B, N))
        return d

    return make


def _extremes(where=False, weights=False, one_sided=False):
    def extremes():
        y = np.array([[2.0, 0.0, 1.0, 3.0, 0.0]] * B)
        if one_sided:  # pair terms of opposite huge signs would cancel only in float64
            rows = [
                [3e38, 3e38, 1e20, 0.0, 1.0],
                [1e20, -1e20 / 3, 0.0, 1e-30, 2.0],
                [-3e38, -3e38, -1e20, 0.0, 1.0],
            ]
        else:
            rows = [
                [3e38, -3e38, 0.0, 1e20, -1e20],
                [1e-30, -1e-30, 0.0, 3e38, 1.0],
                [-3e38, -1e20, 1e20, 2.0, 0.5],
            ]
        out = []
        for s in (np.array(rows), np.zeros((B, N)), np.full((B, N), 1e20)):
            d = {"scores": s, "labels": y.copy()}
            if where:
                d["where"] = WHERE.copy()
            if weights:
                d["weights"] = np.full((B, N), 1.5)
            out.append(d)
        return out

    return extremes


def _case(loss, id, ref, grad, hyper=None, where=False, weights=False, one_sided=False, **kw):
    return Case(
        loss,
        id,
        ("scores", "labels"),
        _make(where, weights, **kw),
        ref,
        {"scores": grad},
        hyper=hyper or {},
        class_axis=-1,
        extremes=_extremes(where, weights, one_sided),
    )


_ALL: list[Case] = [
    _case("ranking_softmax_loss", "plain", softmax_ref, softmax_grad),
    _case(
        "ranking_softmax_loss", "where_weights", softmax_ref, softmax_grad, where=True, weights=True
    ),
    _case("listmle_loss", "plain", listmle_ref, listmle_grad),
    _case("listmle_loss", "where", listmle_ref, listmle_grad, where=True),
    _case(
        "pairwise_hinge_loss",
        "plain",
        pairwise_ref("hinge"),
        pairwise_grad("hinge"),
        avoid_hinge=True,
    ),
    _case(
        "pairwise_hinge_loss",
        "where_weights_ndcg",
        pairwise_ref("hinge"),
        pairwise_grad("hinge"),
        hyper={"lambdaweight": "ndcg"},
        where=True,
        weights=True,
        avoid_hinge=True,
    ),
    _case("pairwise_logistic_loss", "plain", pairwise_ref("logistic"), pairwise_grad("logistic")),
    _case(
        "pairwise_logistic_loss",
        "where_weights",
        pairwise_ref("logistic"),
        pairwise_grad("logistic"),
        where=True,
        weights=True,
    ),
    _case(
        "pairwise_logistic_loss",
        "labeldiff",
        pairwise_ref("logistic"),
        pairwise_grad("logistic"),
        hyper={"lambdaweight": "labeldiff"},
        where=True,
    ),
    _case(
        "pairwise_logistic_loss",
        "dcg",
        pairwise_ref("logistic"),
        pairwise_grad("logistic"),
        hyper={"lambdaweight": "dcg"},
        where=True,
        weights=True,
    ),
    _case(
        "pairwise_logistic_loss",
        "ndcg_top2",
        pairwise_ref("logistic"),
        pairwise_grad("logistic"),
        hyper={"lambdaweight": "ndcg", "topn": 2},
        where=True,
        weights=True,
    ),
    _case(
        "pairwise_hinge_loss",
        "dcg_top3",
        pairwise_ref("hinge"),
        pairwise_grad("hinge"),
        hyper={"lambdaweight": "dcg", "topn": 3},
        avoid_hinge=True,
    ),
    _case(
        "pairwise_logistic_loss",
        "ndcg",
        pairwise_ref("logistic"),
        pairwise_grad("logistic"),
        hyper={"lambdaweight": "ndcg"},
    ),
    _case("pairwise_soft_zero_one_loss", "plain", pairwise_ref("soft01"), pairwise_grad("soft01")),
    _case(
        "pairwise_soft_zero_one_loss",
        "where_weights_labeldiff",
        pairwise_ref("soft01"),
        pairwise_grad("soft01"),
        hyper={"lambdaweight": "labeldiff"},
        where=True,
        weights=True,
    ),
    _case(
        "pairwise_squared_loss",
        "plain",
        pairwise_ref("squared"),
        pairwise_grad("squared"),
        one_sided=True,
    ),
    _case(
        "pairwise_squared_loss",
        "where_weights_dcg",
        pairwise_ref("squared"),
        pairwise_grad("squared"),
        hyper={"lambdaweight": "dcg"},
        where=True,
        weights=True,
        one_sided=True,
    ),
    _case("pointwise_sigmoid_loss", "plain", pointwise_ref("sigmoid"), pointwise_grad("sigmoid")),
    _case(
        "pointwise_sigmoid_loss",
        "where_weights",
        pointwise_ref("sigmoid"),
        pointwise_grad("sigmoid"),
        where=True,
        weights=True,
    ),
    _case("pointwise_squared_loss", "plain", pointwise_ref("squared"), pointwise_grad("squared")),
    _case(
        "pointwise_squared_loss",
        "where_weights",
        pointwise_ref("squared"),
        pointwise_grad("squared"),
        where=True,
        weights=True,
    ),
    _case("approx_ndcg_loss", "plain", approx_ndcg_ref, complex_step(approx_ndcg_ref)),
    _case(
        "approx_ndcg_loss",
        "where_weights_t05",
        approx_ndcg_ref,
        complex_step(approx_ndcg_ref),
        hyper={"temperature": 0.5},
        where=True,
        weights=True,
    ),
    _case("approx_mrr_loss", "plain", approx_mrr_ref, complex_step(approx_mrr_ref)),
    _case(
        "approx_mrr_loss",
        "where_t2",
        approx_mrr_ref,
        complex_step(approx_mrr_ref),
        hyper={"temperature": 2.0},
        where=True,
    ),
]

#: The listwise, pointwise and approximate losses (jaxloss/_ranking.py); the pairwise ones are
#: collected by tests/cases/ranking_pairwise.py (jaxloss/_ranking_pairwise.py).
CASES: list[Case] = [c for c in _ALL if not c.loss.startswith("pairwise_")]
