"""Conformance cases for ``ctc_loss``, with a NumPy float64 reference written from Graves et al.,
ICML 2006, §4.1–4.2 (never by calling jaxloss or optax).

The reference runs the forward and backward recursions in log space (float64 ``logaddexp``), on
the counted frames of each sequence only:

  α_1(0) = y_1(b), α_1(1) = y_1(l_1);
  α_t(s) = [α_{t-1}(s) + α_{t-1}(s-1) + [l'_s ≠ b, l'_s ≠ l'_{s-2}] α_{t-1}(s-2)] y_t(l'_s);
  β_T(S-1) = y_T(b), β_T(S-2) = y_T(l_L);
  β_t(s) = [β_{t+1}(s) + β_{t+1}(s+1) + [l'_{s+2} ≠ b, l'_{s+2} ≠ l'_s] β_{t+1}(s+2)] y_t(l'_s);
  p = α_T(S-1) + α_T(S-2);  dl/dz_t(k) = y_t(k) - Σ_{s: l'_s = k} α_t(s) β_t(s) / (y_t(k) p)

(eq. 16).
An impossible alignment gives +inf and a zero gradient (jaxloss's documented convention).
``tests/test_ctc.py`` checks this reference against brute-force path enumeration.
"""

from __future__ import annotations

import numpy as np

from tests.case import Case

B, T, K, N = 4, 7, 5, 3


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def ctc_one(z, frames, labels, blank=0):
    """(-log p, dl/dz) for one sequence: z [T, K], frames a bool [T] mask, labels a list."""
    z = np.asarray(z, np.float64)
    grad = np.zeros_like(z)
    idx = np.flatnonzero(frames)
    y = _softmax(z[idx])  # [T', K]
    tn, big_l = len(idx), len(labels)
    ext = [blank]
    for c in labels:
        ext += [int(c), blank]
    s_n = len(ext)
    skip = np.array([s >= 2 and ext[s] != blank and ext[s] != ext[s - 2] for s in range(s_n)])
    if tn == 0:
        return (0.0 if big_l == 0 else np.inf), grad
    # Log space (float64 logaddexp): the recursions above with α and β replaced by their logs.
    zi = z[idx]
    log_y = zi - zi.max(-1, keepdims=True)
    log_y = log_y - np.log(np.exp(log_y).sum(-1, keepdims=True))
    ly = log_y[:, np.array(ext)]  # log y_t(l'_s), [T', S]
    with np.errstate(divide="ignore"):
        skip_log = np.where(skip, 0.0, -np.inf)
        la = np.full((tn, s_n), -np.inf)
        la[0, : min(2, s_n)] = ly[0, : min(2, s_n)]
        for t in range(1, tn):
            a = la[t - 1]
            acc = a.copy()
            acc[1:] = np.logaddexp(acc[1:], a[:-1])
            acc[2:] = np.logaddexp(acc[2:], a[:-2] + skip_log[2:])
            la[t] = acc + ly[t]
        log_p = np.logaddexp(la[-1, -1], la[-1, -2] if s_n > 1 else -np.inf)
        if log_p == -np.inf:
            return np.inf, grad
        lb = np.full((tn, s_n), -np.inf)
        lb[-1, -1] = ly[-1, -1]
        if s_n > 1:
            lb[-1, -2] = ly[-1, -2]
        for t in range(tn - 2, -1, -1):
            b = lb[t + 1]
            acc = b.copy()
            acc[:-1] = np.logaddexp(acc[:-1], b[1:])
            acc[:-2] = np.logaddexp(acc[:-2], b[2:] + skip_log[2:])
            lb[t] = acc + ly[t]
    occ = np.exp(la + lb - ly - log_p)  # α_t(s) β_t(s) / (y_t(l'_s) p)
    loss = -log_p
    g = y.copy()
    for s in range(s_n):
        g[:, ext[s]] -= occ[:, s]
    grad[idx] = g
    return loss, grad


def ctc_reference(d, h, want_grad=False):
    """Per-sequence values (and dl/dlogits) of a case's data dict, batch [B] only."""
    z = np.asarray(d["logits"], np.float64)
    bsz, tm, _ = z.shape
    y = np.asarray(d["labels"])
    n = y.shape[-1]
    if d.get("input_lengths") is not None:
        frames = np.arange(tm) < np.asarray(d["input_lengths"])[:, None]
    elif d.get("logit_paddings") is not None:
        frames = np.asarray(d["logit_paddings"]) == 0
    else:
        frames = np.ones((bsz, tm), bool)
    if d.get("target_lengths") is not None:
        lengths = np.asarray(d["target_lengths"])
    elif d.get("label_paddings") is not None:
        lengths = np.sum(np.asarray(d["label_paddings"]) == 0, -1)
    else:
        lengths = np.full(bsz, n)
    blank = h.get("blank_id", 0)
    values, grads = np.zeros(bsz), np.zeros_like(z)
    for b in range(bsz):
        values[b], grads[b] = ctc_one(z[b], frames[b], list(y[b, : lengths[b]]), blank)
    if h.get("zero_infinity"):
        values = np.where(np.isinf(values), 0.0, values)
    return (values, grads) if want_grad else values


def _labels(rng, blank, repeat=True):
    """[B, N] labels avoiding the blank; row 1 with a repeated neighbour, row 3 left empty."""
    choices = [c for c in range(K) if c != blank]
    y = rng.choice(choices, size=(B, N))
    if repeat:
        y[1, 1] = y[1, 0]
    return y


def _make_lengths(rng, blank=0):
    y = _labels(rng, blank)
    return {
        "logits": rng.normal(scale=1.5, size=(B, T, K)),
        "labels": y,
        "input_lengths": np.array([T, T - 2, 5, 4]),
        "target_lengths": np.array([N, N, 2, 0]),  # one at N (the shape-error test needs it)
    }


def _make_paddings(rng):
    y = _labels(rng, 0)
    logit_pad = np.zeros((B, T))
    logit_pad[1, 2] = 1.0  # a frame deleted mid-sequence (optax's form allows it)
    logit_pad[2, 5:] = 1.0
    label_pad = np.zeros((B, N))
    label_pad[2, 2:] = 1.0
    label_pad[3, :] = 1.0
    return {
        "logits": rng.normal(scale=1.5, size=(B, T, K)),
        "labels": y,
        "logit_paddings": logit_pad,
        "label_paddings": label_pad,
    }


def _make_full(rng):
    # No frame information (every frame counts); full-length targets stated as lengths, so that
    # shortening `labels` is an error.
    return {
        "logits": rng.normal(scale=1.5, size=(B, T, K)),
        "labels": _labels(rng, 2, False),
        "target_lengths": np.full(B, N),
    }


def _path_logits(scale, blank=0):
    """Logits that put ``scale`` on one feasible alignment of each sequence's labels."""
    y = np.array([[1, 2, 3], [1, 1, 2], [4, 2, 1], [3, 3, 3]])
    z = np.zeros((B, T, K))
    paths = [
        [1, 0, 2, 2, 3, 0, 0],
        [1, 0, 1, 2, 0, 0, 0],
        [4, 4, 2, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0],
    ]
    for b, path in enumerate(paths):
        z[b, np.arange(T), path] = scale
    return z, y


def _extremes_lengths():
    out = []
    lengths = {
        "input_lengths": np.array([T, T - 2, 5, 4]),
        "target_lengths": np.array([3, 3, 2, 0]),
    }
    for scale in (1e4, -1e4, 30.0):
        z, y = _path_logits(scale)
        out.append({"logits": z, "labels": y, **lengths})
    z, y = _path_logits(0.0)
    out.append({"logits": np.full_like(z, 3e38), "labels": y, **lengths})
    out.append({"logits": np.full_like(z, -3e38), "labels": y, **lengths})
    out.append({"logits": np.full_like(z, 1e-30), "labels": y, **lengths})
    # Impossible alignments (T < L + R): +inf, zero gradient, in float32 as in float64.
    out.append(
        {
            "logits": z,
            "labels": y,
            "input_lengths": np.array([2, 3, 1, 0]),
            "target_lengths": np.array([3, 3, 2, 0]),
        }
    )
    return out


def _extremes_paddings():
    out = []
    for d in _extremes_lengths():
        tl, il = d["target_lengths"], d["input_lengths"]
        out.append(
            {
                "logits": d["logits"],
                "labels": d["labels"],
                "logit_paddings": (np.arange(T) >= il[:, None]).astype(float),
                "label_paddings": (np.arange(N) >= tl[:, None]).astype(float),
            }
        )
    return out


def _extremes_full():
    # Every label and frame counted, blank 2: one feasible alignment per row, classes 0 and 2
    # swapped so that the alignment's blanks are class 2.
    y = np.array([[1, 0, 3], [1, 1, 0], [4, 0, 1], [3, 3, 3]])
    paths = np.array(
        [[1, 2, 0, 0, 3, 2, 2], [1, 2, 1, 0, 2, 2, 2], [4, 4, 0, 2, 1, 1, 2], [3, 2, 3, 2, 3, 2, 2]]
    )
    out = []
    for scale in (1e4, -1e4, 30.0):
        z = np.zeros((B, T, K))
        for b in range(B):
            z[b, np.arange(T), paths[b]] = scale
        out.append({"logits": z, "labels": y, "target_lengths": np.full(B, N)})
    for fill in (3e38, -3e38, 1e-30):
        out.append(
            {"logits": np.full((B, T, K), fill), "labels": y, "target_lengths": np.full(B, N)}
        )
    return out


def _case(id, make, hyper, extremes):
    return Case(
        loss="ctc_loss",
        id=id,
        positional=("logits", "labels"),
        make=make,
        reference=lambda d, h: ctc_reference(d, h),
        grads={"logits": lambda d, h: ctc_reference(d, h, want_grad=True)[1]},
        hyper=hyper,
        class_axis=(1, 2),
        extremes=extremes,
        nan_scope="example",
    )


CASES = [
    _case("lengths", _make_lengths, {}, _extremes_lengths),
    _case("paddings", _make_paddings, {}, _extremes_paddings),
    _case("blank=2,all frames", _make_full, {"blank_id": 2}, _extremes_full),
    _case(
        "zero_infinity",
        lambda g: {**_make_lengths(g), "input_lengths": np.array([T, 2, 5, 4])},
        {"zero_infinity": True},
        _extremes_lengths,
    ),
]
