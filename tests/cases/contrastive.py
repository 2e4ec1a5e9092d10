"""Conformance cases for the contrastive losses over sets of embeddings (jaxloss/_contrastive.py).

References and closed-form derivatives are NumPy float64, written from the formulas in the
docstrings (never by calling jaxloss).

Set losses (``info_nce_loss``, ``supervised_contrastive_loss``, ``siglip_loss``) couple every
anchor of a set to every embedding of the set, so d l_i / d embeddings is not a per-example
("local") quantity that the suite could contract with its cotangent. Their closed forms are written
as vector-Jacobian products ``vjp(data, cotangent)`` (``_contrastive_vjp``, ``_siglip_vjp``); the
``grads`` entry that the suite calls returns ``vjp(data, ct) / ct`` for the suite's own seeded
cotangent ``ct``
(``suite_cotangent`` in tests/reference.py mirrors tests/test_conformance.py), so that the suite's
``expand(ct) * local`` is exactly the VJP. If the suite's cotangent ever changes, those cases fail
loudly rather than pass silently; tests/test_metric.py checks the same VJPs against ``jax.grad``
with its own random cotangents.
"""

from __future__ import annotations

import numpy as np

from tests.case import Case
from tests.reference import suite_cotangent as _suite_cotangent
from tests.reference import unit

D = 4  # feature dimension
S, M = 2, 6  # number of sets, members per set
EPS = 1e-8


def _unit(x):
    return unit(x, EPS)


def _normalize_vjp(e, g):
    """d/d e of <g, e / max(‖e‖, eps)>."""
    n = np.linalg.norm(e, axis=-1, keepdims=True)
    u = e / np.maximum(n, EPS)
    return (g - (n > EPS) * np.sum(u * g, -1, keepdims=True) * u) / np.maximum(n, EPS)


def _sim_logits(d, h):
    u = _unit(d["embeddings"])
    tau = d.get("temperature", h.get("temperature", 0.07))
    return u, np.einsum("sid,sjd->sij", u, u) / tau, tau


def _off_diagonal(m):
    return ~np.eye(m, dtype=bool)


def _simclr_value(d, h):
    """SimCLR's NT-Xent per anchor, written out: -log(exp(s_ij) / sum_{k≠i} exp(s_ik))."""
    _, a, _ = _sim_logits(d, h)
    y = d["labels"]
    out = np.zeros(y.shape)
    for s in range(y.shape[0]):
        for i in range(y.shape[1]):
            (j,) = [k for k in range(y.shape[1]) if k != i and y[s, k] == y[s, i]]
            denom = sum(np.exp(a[s, i, k]) for k in range(y.shape[1]) if k != i)
            out[s, i] = -np.log(np.exp(a[s, i, j]) / denom)
    return out


def _supcon_value(d, h):
    """Khosla et al. eq. 2 per anchor, written out; 0 for anchors without a positive."""
    _, a, _ = _sim_logits(d, h)
    y = d["labels"]
    out = np.zeros(y.shape)
    for s in range(y.shape[0]):
        for i in range(y.shape[1]):
            positives = [k for k in range(y.shape[1]) if k != i and y[s, k] == y[s, i]]
            if not positives:
                continue
            denom = sum(np.exp(a[s, i, k]) for k in range(y.shape[1]) if k != i)
            out[s, i] = -np.mean([np.log(np.exp(a[s, i, p]) / denom) for p in positives])
    return out


def _contrastive_g(d, h):
    """G_ik = softmax_{k≠i}(s_i)_k - [k ∈ P(i)]/|P(i)| (0 rows without a positive)."""
    _, a, tau = _sim_logits(d, h)
    y = d["labels"]
    off = _off_diagonal(y.shape[-1])
    z = np.where(off, a, -np.inf)
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    pos = (y[..., :, None] == y[..., None, :]) & off
    npos = pos.sum(-1, keepdims=True)
    q = pos / np.maximum(npos, 1)
    return (npos > 0) * (p - q), a, tau


def _contrastive_vjp(d, h, ct):
    g, _, tau = _contrastive_g(d, h)
    u = _unit(d["embeddings"])
    dc = ct[..., None] * g / tau  # dL/dC, C = U Uᵀ
    du = np.einsum("sij,sjd->sid", dc + np.swapaxes(dc, -1, -2), u)
    return _normalize_vjp(d["embeddings"], du)


def _set_extremes(labels, learn=None):
    z = np.zeros((M, D))
    big = np.tile(np.array([[1e4, -1e4, 1e4, -1e4], [-3e3, 2.0, 1e-30, 5e3]]), (M // 2, 1))
    e = np.stack([z, big])
    e2 = e.copy()
    e2[0, 1:] = 1.0  # one zero vector among identical ones
    # Norms beyond float32's range, coordinates near 2e38, 1e20 and tiny embeddings.
    huge = np.array([[3e38, -3e38, 2e38, 1e-30], [2e38, 0, 0, 0], [1e20, -1e20, 0, 1],
                     [1e-30, 2e-30, 0, 0], [-3e38, 0, 3e38, 3e38], [0, 2e38, -1e-30, 0]])
    e3 = np.stack([huge, huge[::-1]])
    out = [{"embeddings": e, "labels": labels}, {"embeddings": e2, "labels": labels},
           {"embeddings": e3, "labels": labels}]
    return [{**o, **(learn or {})} for o in out]


def _set_make(rng, labels, learn):
    y = np.stack([rng.permutation(labels) for _ in range(S)])
    return {"embeddings": rng.normal(size=(S, M, D)), "labels": y, **learn}


def _set_case(loss, id, labels, reference, hyper, learn_temperature=None, extreme_labels=None):
    learn = {} if learn_temperature is None else {"temperature": np.float64(learn_temperature)}

    def grad_e(d, h):
        ct = _suite_cotangent(loss, id, d["labels"].shape)
        return _contrastive_vjp(d, h, ct) / ct[..., None]

    grads = {"embeddings": grad_e}
    if learn:
        def grad_tau(d, h):
            g, a, tau = _contrastive_g(d, h)
            return (-np.sum(g * a, -1) / tau)[..., None]

        grads["temperature"] = grad_tau
    return Case(
        loss=loss, id=id, positional=("embeddings", "labels"),
        make=lambda g: _set_make(g, labels, learn), reference=reference, grads=grads,
        hyper=hyper, class_axis=-1, vmap_axes={"temperature": None} if learn else {},
        nan_scope="example",  # every member of a set is a candidate of every anchor
        extremes=lambda: _set_extremes(
            np.stack([labels, np.roll(labels, 1)]) if extreme_labels is None else extreme_labels,
            learn),
    )


PAIRED = np.array([0, 0, 1, 1, 2, 2])
GROUPED = np.array([0, 0, 0, 1, 1, 2])  # one anchor without a positive
UNIQUE = np.arange(M)


def _siglip_parts(d, h):
    u, v = _unit(d["image_embeddings"]), _unit(d["text_embeddings"])
    t = d.get("logit_scale", h.get("logit_scale", 10.0))
    b = d.get("logit_bias", h.get("logit_bias", -10.0))
    c = np.einsum("sid,sjd->sij", u, v)
    zsign = 2 * np.eye(u.shape[-2]) - 1
    s = t * c + b
    g = -zsign / (1 + np.exp(zsign * s))  # d softplus(-z s) / d s = -z σ(-z s)
    return u, v, c, s, zsign, t, g


def _siglip_value(d, h):
    _, _, _, s, zsign, _, _ = _siglip_parts(d, h)
    return np.sum(np.logaddexp(0.0, -zsign * s), -1)


def _siglip_vjp(d, h, ct):
    u, v, _, _, _, t, g = _siglip_parts(d, h)
    dc = ct[..., None] * t * g
    du = np.einsum("sij,sjd->sid", dc, v)
    dv = np.einsum("sij,sid->sjd", dc, u)
    return (_normalize_vjp(d["image_embeddings"], du), _normalize_vjp(d["text_embeddings"], dv))


def _siglip_case(id, hyper, learn=None):
    learn = learn or {}
    n = 4

    def make(g):
        return {"image_embeddings": g.normal(size=(S, n, 3)),
                "text_embeddings": g.normal(size=(S, n, 3)), **learn}

    def grad(which):
        def f(d, h):
            ct = _suite_cotangent("siglip_loss", id, (S, n))
            return _siglip_vjp(d, h, ct)[which] / ct[..., None]
        return f

    grads = {"image_embeddings": grad(0), "text_embeddings": grad(1)}
    if learn:
        grads["logit_scale"] = lambda d, h: np.sum(_siglip_parts(d, h)[6] * _siglip_parts(d, h)[2],
                                                   -1)[..., None]
        grads["logit_bias"] = lambda d, h: np.sum(_siglip_parts(d, h)[6], -1)[..., None]

    def extremes():
        z = np.zeros((n, 3))
        big = np.array([[1e4, -1e4, 1e4], [-3e3, 2.0, 1e-30], [0.0, 0.0, 0.0], [1e4, 1e4, 1e4]])
        # Norms beyond float32's range, coordinates near 2e38, 1e20 and tiny embeddings.
        huge = np.array([[3e38, -3e38, 2e38], [2e38, 0, 0], [1e20, -1e20, 1], [1e-30, 2e-30, 0]])
        out = [{"image_embeddings": np.stack([z, big]), "text_embeddings": np.stack([big, big])},
               {"image_embeddings": np.stack([big, -big]), "text_embeddings": np.stack([z, big])},
               {"image_embeddings": np.stack([huge, -huge]),
                "text_embeddings": np.stack([huge[::-1], big])}]
        return [{**o, **learn} for o in out]

    return Case(
        loss="siglip_loss", id=id, positional=("image_embeddings", "text_embeddings"),
        make=make, reference=_siglip_value, grads=grads, hyper=hyper, class_axis=-1,
        vmap_axes={k: None for k in learn}, extremes=extremes,
        nan_scope="example",  # every text of a set is a candidate of every image
    )


SETS = [
    _set_case("info_nce_loss", "tau=0.5", PAIRED, _simclr_value, {"temperature": 0.5}),
    _set_case("info_nce_loss", "learnable-tau", PAIRED, _simclr_value, {}, learn_temperature=0.2),
    _set_case("supervised_contrastive_loss", "tau=0.5", GROUPED, _supcon_value,
              {"temperature": 0.5},
              extreme_labels=np.stack([GROUPED, UNIQUE])),
    _set_case("supervised_contrastive_loss", "learnable-tau", GROUPED, _supcon_value, {},
              learn_temperature=0.3),
    _siglip_case("defaults", {}),
    _siglip_case("learnable", {}, learn={"logit_scale": np.float64(5.0),
                                         "logit_bias": np.float64(-2.0)}),
]


CASES: list[Case] = [*SETS]
