"""NumPy float64 references for the language-model head objectives (token log-probabilities,
entropy, distillation divergences), written from the math and independent of jaxloss.

With p = softmax(z / T) over the last axis:
  log p_y,   H = −Σ_c p_c log p_c,
  forward KL(p_t ‖ p_s) = Σ p_t (log p_t − log p_s),  reverse KL(p_s ‖ p_t),
  JSD_β = β KL(p_t ‖ m) + (1 − β) KL(p_s ‖ m),  m = β p_t + (1 − β) p_s  (β = 0 / 1: TRL's
  generalized_jsd_loss returns the forward / reverse KL),
  l = (1 − α) D + α CE(z_s at T = 1, y).
Derivatives w.r.t. the student's logits (written by hand, not by differentiating the above):
  ∂ log p_y/∂z = (onehot − p)/T,   ∂H/∂z = −p (log p + H)/T,
  forward KL: (p_s − p_t)/T;  reverse KL: p_s (log p_s − log p_t − KL)/T;
  JSD: (1 − β) p_s (log(p_s/m) − KL(p_s ‖ m))/T;  CE: softmax(z_s) − onehot(y).
"""

from __future__ import annotations

import numpy as np


def log_softmax(z):
    z = np.asarray(z, np.float64)
    m = z.max(-1, keepdims=True)
    return z - m - np.log(np.sum(np.exp(z - m), -1, keepdims=True))


def _labels(y, ignore):
    y = np.asarray(y)
    ok = np.ones(y.shape, bool) if ignore is None else y != ignore
    return np.where(ok, y, 0), ok


def log_probs(z, y, temperature=1.0, ignore=None):
    ls = log_softmax(np.asarray(z, np.float64) / temperature)
    ys, ok = _labels(y, ignore)
    return np.where(ok, np.take_along_axis(ls, ys[..., None], -1)[..., 0], 0.0)


def entropy(z, temperature=1.0, y=None, ignore=None):
    ls = log_softmax(np.asarray(z, np.float64) / temperature)
    h = -np.sum(np.exp(ls) * ls, -1)
    if y is None:
        return h
    return np.where(_labels(y, ignore)[1], h, 0.0)


def dlog_probs(z, y, temperature=1.0, ignore=None):
    """∂ log p_y / ∂z, [..., V]."""
    p = np.exp(log_softmax(np.asarray(z, np.float64) / temperature))
    ys, ok = _labels(y, ignore)
    g = (np.eye(p.shape[-1])[ys] - p) / temperature
    return np.where(ok[..., None], g, 0.0)


def dentropy(z, temperature=1.0, y=None, ignore=None):
    ls = log_softmax(np.asarray(z, np.float64) / temperature)
    p = np.exp(ls)
    h = -np.sum(p * ls, -1, keepdims=True)
    g = -p * (ls + h) / temperature
    if y is None:
        return g
    return np.where(_labels(y, ignore)[1][..., None], g, 0.0)


def _kind(kind, beta):
    if kind == "jsd" and beta == 0:
        return "forward_kl"
    if kind == "jsd" and beta == 1:
        return "reverse_kl"
    return kind


def divergence(zs, zt, kind="forward_kl", beta=0.5, temperature=1.0):
    ls = log_softmax(np.asarray(zs, np.float64) / temperature)
    lt = log_softmax(np.asarray(zt, np.float64) / temperature)
    ps, pt = np.exp(ls), np.exp(lt)
    kind = _kind(kind, beta)
    if kind == "forward_kl":
        return np.sum(pt * (lt - ls), -1)
    if kind == "reverse_kl":
        return np.sum(ps * (ls - lt), -1)
    m = beta * pt + (1 - beta) * ps
    return beta * np.sum(pt * (lt - np.log(m)), -1) + (1 - beta) * np.sum(ps * (ls - np.log(m)), -1)


def ddivergence(zs, zt, kind="forward_kl", beta=0.5, temperature=1.0):
    """∂D/∂zs, [..., V]."""
    ls = log_softmax(np.asarray(zs, np.float64) / temperature)
    lt = log_softmax(np.asarray(zt, np.float64) / temperature)
    ps, pt = np.exp(ls), np.exp(lt)
    kind = _kind(kind, beta)
    if kind == "forward_kl":
        return (ps - pt) / temperature
    if kind == "reverse_kl":
        kl = np.sum(ps * (ls - lt), -1, keepdims=True)
        return ps * (ls - lt - kl) / temperature
    lm = np.log(beta * pt + (1 - beta) * ps)
    kl = np.sum(ps * (ls - lm), -1, keepdims=True)
    return (1 - beta) * ps * (ls - lm - kl) / temperature


def distillation(zs, zt, h, y=None):
    """Per-token distillation loss with the hyperparameters ``h`` (the loss's keywords)."""
    t = h.get("temperature", 1.0)
    d = divergence(zs, zt, h.get("divergence", "forward_kl"), h.get("beta", 0.5), t)
    a = h.get("hard_label_weight", 0.0)
    ign = h.get("ignore_index")
    if a:
        d = (1 - a) * d - a * log_probs(zs, y, 1.0, ign)
    if y is not None and ign is not None:
        d = np.where(np.asarray(y) != ign, d, 0.0)
    return d


def ddistillation(zs, zt, h, y=None):
    t = h.get("temperature", 1.0)
    g = ddivergence(zs, zt, h.get("divergence", "forward_kl"), h.get("beta", 0.5), t)
    a = h.get("hard_label_weight", 0.0)
    ign = h.get("ignore_index")
    if a:
        g = (1 - a) * g - a * dlog_probs(zs, y, 1.0, ign)
    if y is not None and ign is not None:
        g = np.where((np.asarray(y) != ign)[..., None], g, 0.0)
    return g


def logits(x, w, layout="dv", bias=None, cap=None):
    z = np.asarray(x, np.float64) @ (
        np.asarray(w, np.float64) if layout == "dv" else np.asarray(w, np.float64).T
    )
    if bias is not None:
        z = z + np.asarray(bias, np.float64)
    return z if cap is None else cap * np.tanh(z / cap)


def chain_hidden(dz, x, w, layout="dv", cap=None, bias=None):
    """∂/∂hidden from ∂/∂(capped logits): through the cap's derivative and W."""
    if cap is not None:
        zc = logits(x, w, layout, bias, cap)
        dz = dz * (1 - (zc / cap) ** 2)
    w = np.asarray(w, np.float64)
    return dz @ (w.T if layout == "dv" else w)


def topk_kl(zs, ids, lt, temperature=1.0):
    """KL on the k + 1 outcomes (the teacher's top-k ids, then the tail as one outcome):
    Σ_k p_t,k (lt_k − ls_k) + r (log r − log q), r = 1 − Σ p_t,k, q = 1 − Σ p_s,k."""
    ls = np.take_along_axis(log_softmax(np.asarray(zs, np.float64) / temperature),
                            np.asarray(ids), -1)
    lt = np.asarray(lt, np.float64)
    r = np.maximum(1 - np.exp(lt).sum(-1), 0)
    q = 1 - np.exp(ls).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        tail = np.where(r > 0, r * (np.log(np.where(r > 0, r, 1)) - np.log(q)), 0.0)
    return np.sum(np.exp(lt) * (lt - ls), -1) + tail


def dtopk_kl(zs, ids, lt, temperature=1.0):
    """∂/∂zs = (p_s − w)/T with w = p_t on the top-k ids and r·p_s/q elsewhere."""
    p = np.exp(log_softmax(np.asarray(zs, np.float64) / temperature))
    ids = np.asarray(ids)
    lt = np.asarray(lt, np.float64)
    pk = np.take_along_axis(p, ids, -1)
    r = np.maximum(1 - np.exp(lt).sum(-1, keepdims=True), 0)
    q = 1 - pk.sum(-1, keepdims=True)
    w = r * p / q
    np.put_along_axis(w, ids, np.exp(lt), -1)
    return (p - w) / temperature
