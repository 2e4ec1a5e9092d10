"""The conformance registry: every public loss, with inputs, a NumPy float64 reference of its value
and the closed-form derivative of each differentiable input.

References are written from the math (the formulas in each docstring and the PyTorch/optax
documentation), never by calling jaxloss. A case is one configuration of one loss; a loss may have
several cases (options on and off). ``tests/test_conformance.py`` runs every case through the same
checks and fails if a public loss has no case here.

Closed forms: ``grads[name](data, hyper)`` returns d l_n / d input with the input's shape (the
per-example derivative); the suite contracts it with a random cotangent, expanded along
``class_axis`` for losses that reduce a class axis.
"""

from __future__ import annotations

import numpy as np

import jaxloss
from tests.case import Case

# --------------------------------------------------------------------------------------------
# NumPy float64 helpers (independent of jaxloss)
from tests.reference import SHAPE, B, C, softmax
from tests.reference import log_sigmoid as _log_sigmoid
from tests.reference import lse as _lse
from tests.reference import sigmoid as _sigmoid

# --------------------------------------------------------------------------------------------
# Binary classification

def _binary_data(rng, soft=False):
    x = rng.normal(scale=3.0, size=SHAPE)
    t = rng.uniform(size=SHAPE) if soft else rng.integers(0, 2, size=SHAPE).astype(np.float64)
    return {"logits": x, "labels": t}


def _sbce_value(d, h):
    x, eps = d["logits"], h.get("label_smoothing", 0.0)
    t = d["labels"] * (1 - eps) + eps / 2
    pw = h.get("pos_weight", 1.0)
    return -(pw * t * _log_sigmoid(x) + (1 - t) * _log_sigmoid(-x))


def _sbce_dx(d, h):
    x, eps = d["logits"], h.get("label_smoothing", 0.0)
    t = d["labels"] * (1 - eps) + eps / 2
    pw = h.get("pos_weight", 1.0)
    return -pw * t * _sigmoid(-x) + (1 - t) * _sigmoid(x)


def _sbce_dt(d, h):
    x, eps = d["logits"], h.get("label_smoothing", 0.0)
    pw = h.get("pos_weight", 1.0)
    return (1 - eps) * (-pw * _log_sigmoid(x) + _log_sigmoid(-x))


def _binary_extremes():
    x = np.array([[1e4, -1e4, 0.0, 1e4], [-1e4, 50.0, -50.0, 0.0]])
    # Logits up to float32's range: softplus(±3e38) and t·x stay finite (their sum too, except
    # where the float64 value itself is beyond float32's range).
    huge = np.array([[1e20, -1e20, 3e38, -3e38], [-3e38, 3e38, 1e-30, -1e-30]])
    return [
        {"logits": x, "labels": np.array([[1.0, 0.0, 0.5, 0.0], [1.0, 1.0, 0.0, 1.0]])},
        {"logits": x, "labels": np.array([[0.0, 1.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.0]])},
        {"logits": huge, "labels": np.array([[1.0, 0.0, 0.5, 1.0], [0.0, 1.0, 0.5, 0.0]])},
        {"logits": huge, "labels": np.array([[0.0, 1.0, 1.0, 0.5], [1.0, 0.0, 1.0, 1.0]])},
    ]


def _sbce(id, hyper, soft=False):
    return Case(
        loss="sigmoid_binary_cross_entropy",
        id=id,
        positional=("logits", "labels"),
        make=lambda g: _binary_data(g, soft),
        reference=_sbce_value,
        grads={"logits": _sbce_dx, "labels": _sbce_dt},
        hyper=hyper,
        extremes=_binary_extremes,
    )


def _bce_value(d, h):
    p, t = d["probabilities"], d["labels"]
    return -(t * np.maximum(np.log(p), -100) + (1 - t) * np.maximum(np.log1p(-p), -100))


BINARY = [
    _sbce("plain", {}),
    _sbce("soft-labels", {}, soft=True),
    _sbce("pos_weight-per-class+smoothing", {"pos_weight": np.array([2.0, 0.5, 1.0, 3.0]),
                                             "label_smoothing": 0.1}),
    Case(
        loss="binary_cross_entropy",
        id="plain",
        positional=("probabilities", "labels"),
        make=lambda g: {"probabilities": g.uniform(0.2, 0.8, SHAPE),
                        "labels": g.uniform(size=SHAPE)},
        reference=_bce_value,
        grads={
            "probabilities": lambda d, h: (-d["labels"] / d["probabilities"]
                                           + (1 - d["labels"]) / (1 - d["probabilities"])),
            "labels": lambda d, h: np.log1p(-d["probabilities"]) - np.log(d["probabilities"]),
        },
        extremes=lambda: [{"probabilities": np.array([0.0, 1.0, 0.0, 1.0, 1e-30, 1 - 1e-7]),
                           "labels": np.array([0.0, 1.0, 1.0, 0.0, 0.5, 1.0])},
                          # tiny but normal in float32 (XLA:CPU flushes subnormals to zero)
                          {"probabilities": np.array([1e-20, 2e-38, 1 - 1e-30, 1e-20, 2e-38, 0.5]),
                           "labels": np.array([1.0, 1.0, 1.0, 0.5, 0.0, 1e-30])}],
    ),
]


# --------------------------------------------------------------------------------------------
# Multi-class

_softmax = softmax


def _soft_targets(rng, shape=(B, C)):
    t = rng.uniform(0.1, 1.0, size=shape)
    return t / t.sum(-1, keepdims=True)


def _q(d, h):
    """Smoothed (and class-masked) targets of the probability-target CE."""
    eps = h.get("label_smoothing", 0.0)
    mask = d.get("where")
    t = d["targets"]
    if mask is None:
        return (1 - eps) * t + eps / t.shape[-1]
    k = np.broadcast_to(mask, t.shape).sum(-1, keepdims=True)
    return np.where(mask, (1 - eps) * t + eps / k, 0.0)


def _wvec(h):
    w = h.get("class_weights")
    return np.ones(C) if w is None else np.asarray(w, np.float64)


def _sce_value(d, h):
    z, mask = d["logits"], d.get("where")
    wq = _wvec(h) * _q(d, h)
    lse = _lse(z, -1, mask)[..., None]
    return np.sum(np.where(wq != 0, wq * (lse - z), 0.0), -1)


def _sce_dz(d, h):
    wq = _wvec(h) * _q(d, h)
    return wq.sum(-1, keepdims=True) * _softmax(d["logits"], d.get("where")) - wq


def _sce_dt(d, h):
    eps = h.get("label_smoothing", 0.0)
    z, mask = d["logits"], d.get("where")
    lse = _lse(z, -1, mask)[..., None]
    g = (1 - eps) * _wvec(h) * (lse - z)
    return g if mask is None else np.where(mask, g, 0.0)


def _row_mask(rng):
    mask = rng.uniform(size=(B, C)) > 0.3
    mask[:, 0] = True  # at least one counted class per row
    return mask


def _sce(id, hyper, masked=False):
    def make(g):
        d = {"logits": g.normal(scale=2.0, size=(B, C)), "targets": _soft_targets(g)}
        if masked:
            d["where"] = _row_mask(g)
            d["targets"] = np.where(d["where"], d["targets"], 0.0)
        return d

    def extremes():
        z = np.array([[1e4, -1e4, 0, 0, 0], [-1e4] * 5, [0.0] * 5])
        t = np.array([[1.0, 0, 0, 0, 0], [0, 1.0, 0, 0, 0], [0.2] * 5])
        # Logits up to ±3e38: m - z_c = 6e38 overflows float32 where the term q_c (m - z_c)
        # is 0 (row 0, the issue's [3e38, -3e38, 0]) or in range (smoothing and class weights);
        # a tie at 1e4 needs lse - z_c formed as (m - z_c) + log-sum (lse rounds to 1e-3).
        huge = np.array([[3e38, -3e38, 0, 0, 0], [1e4, 1e4, -1e20, 1e-30, 0],
                         [0.0, 1e-30, -1e20, 3e38, 1.0]])
        t_huge = np.array([[0, 0, 1.0, 0, 0], [0.5, 0.5, 0, 0, 0], [0.2] * 5])
        out = [{"logits": z, "targets": t}, {"logits": -z, "targets": t},
               {"logits": huge, "targets": t_huge}]
        if masked:
            mask = np.array([[True] * 5, [False] * 5, [True, False, True, False, True]])
            out = [{**o, "where": mask} for o in out]
        return out

    return Case(
        loss="softmax_cross_entropy",
        id=id,
        positional=("logits", "targets"),
        make=make,
        reference=_sce_value,
        grads={"logits": _sce_dz, "targets": _sce_dt},
        hyper=hyper,
        class_axis=-1,
        extremes=extremes,
    )


def _ice_value(d, h, axis=-1):
    z, y = np.moveaxis(d["logits"], axis, -1), d["labels"]
    eps, ign = h.get("label_smoothing", 0.0), h.get("ignore_index")
    mask = d.get("where")
    w = _wvec(h)
    lse = _lse(z, -1, mask)
    ok = y != ign if ign is not None else np.ones(y.shape, bool)
    ys = np.where(ok, y, 0)
    nll = lse - np.take_along_axis(z, ys[..., None], -1)[..., 0]
    counted = np.ones(z.shape, bool) if mask is None else np.broadcast_to(mask, z.shape)
    k = counted.sum(-1)
    smooth = np.sum(np.where(counted, w * (lse[..., None] - z), 0.0), -1) / k
    out = (1 - eps) * w[ys] * nll + eps * smooth
    return np.where(ok, out, 0.0)


def _ice_dz(d, h, axis=-1):
    z, y = np.moveaxis(d["logits"], axis, -1), d["labels"]
    eps, ign = h.get("label_smoothing", 0.0), h.get("ignore_index")
    mask = d.get("where")
    counted = np.ones(z.shape, bool) if mask is None else np.broadcast_to(mask, z.shape)
    w = _wvec(h)
    ok = y != ign if ign is not None else np.ones(y.shape, bool)
    ys = np.where(ok, y, 0)
    k = counted.sum(-1, keepdims=True)
    wc = np.where(counted, w, 0.0)
    onehot = np.eye(z.shape[-1])[ys]
    coef = (1 - eps) * w[ys][..., None] + eps / k * wc.sum(-1, keepdims=True)
    g = coef * _softmax(z, mask) - (1 - eps) * w[ys][..., None] * onehot - eps / k * wc
    g = np.where(ok[..., None], g, 0.0)
    return np.moveaxis(g, -1, axis)


def _ice(id, hyper, masked=False, axis=-1):
    ign = hyper.get("ignore_index")

    def make(g):
        z = g.normal(scale=2.0, size=(B, C))
        d = {"labels": g.integers(0, C, size=B)}
        if masked:
            d["where"] = _row_mask(g)
            d["labels"] = np.zeros(B, int)  # class 0 is always counted
            d["labels"][::2] = [int(g.choice(np.flatnonzero(m))) for m in d["where"][::2]]
        if ign is not None:
            d["labels"][1::3] = ign
        d["logits"] = np.moveaxis(z, -1, axis)
        return d

    def extremes():
        z = np.array([[1e4, -1e4, 0, 0, 0], [-1e4] * 5, [0.0] * 5, [1e4, 1e4, -1e4, 0, 1]])
        y = np.array([1, 0, 4, 2])
        # Logits up to ±3e38, labels tied at the maximum (lse - z_y formed as (m - z_y) +
        # log-sum: lse rounds to 1e-3 at 1e4), and smoothing terms ε w_c (m - z_c)/K whose
        # m - z_c = 6e38 overflows float32 while the loss is in range.
        huge = np.array([[1e4, 1e4, -3e38, 1e-30, 0], [3e38, -1e20, 3e38, 0, 1e20],
                         [0, -3e38, 1e-30, 1e20, -1e20], [3e38, -3e38, 0, 0, 1]])
        out = [{"logits": np.moveaxis(z, -1, axis), "labels": y},
               {"logits": np.moveaxis(-z, -1, axis), "labels": y},
               {"logits": np.moveaxis(huge, -1, axis), "labels": y}]
        if ign is not None:
            out.append({"logits": np.moveaxis(z, -1, axis), "labels": np.full(4, ign)})
        if masked:
            mask = np.array([[True] * 5, [True, False, False, False, False],
                             [True, False, True, False, True], [True] * 5])
            out = [{**o, "where": mask, "labels": np.array([1, 0, 4, 2])} for o in out[:3]]
        return out

    vmap_axes = {"logits": 1 if axis == 0 else 0}
    return Case(
        loss="softmax_cross_entropy_with_integer_labels",
        id=id,
        positional=("logits", "labels"),
        make=make,
        reference=lambda d, h: _ice_value(d, h, axis),
        grads={"logits": lambda d, h: _ice_dz(d, h, axis)},
        hyper={**hyper, **({"axis": axis} if axis != -1 else {})},
        class_axis=axis,
        vmap_axes=vmap_axes,
        extremes=extremes,
    )


W5 = np.array([1.0, 2.0, 0.5, 3.0, 0.25])


def _nll_value(d, h):
    lp, y, ign = d["log_probabilities"], d["labels"], h.get("ignore_index")
    ok = y != ign if ign is not None else np.ones(y.shape, bool)
    ys = np.where(ok, y, 0)
    return np.where(ok, -_wvec(h)[ys] * np.take_along_axis(lp, ys[:, None], -1)[:, 0], 0.0)


def _nll_dlp(d, h):
    y, ign = d["labels"], h.get("ignore_index")
    ok = y != ign if ign is not None else np.ones(y.shape, bool)
    ys = np.where(ok, y, 0)
    return np.where(ok[:, None], -_wvec(h)[ys][:, None] * np.eye(C)[ys], 0.0)


def _nll(id, hyper):
    ign = hyper.get("ignore_index")

    def make(g):
        z = g.normal(size=(B, C))
        y = g.integers(0, C, size=B)
        if ign is not None:
            y[::3] = ign
        return {"log_probabilities": z - _lse(z)[:, None], "labels": y}

    return Case(
        loss="nll_loss",
        id=id,
        positional=("log_probabilities", "labels"),
        make=make,
        reference=_nll_value,
        grads={"log_probabilities": _nll_dlp},
        hyper=hyper,
        class_axis=-1,
        extremes=lambda: [{"log_probabilities": np.array([[-1e4, 0.0, -1e4, -1e4, -1e4]]),
                           "labels": np.array([0])},
                          {"log_probabilities": np.array([[-3e38, 0.0, -1e20, -1e-30, -1.0],
                                                          [-1e-30, -1e20, -3e38, 0.0, -np.inf]]),
                           "labels": np.array([0, 2])}],
    )


COST = np.array([[0.0, 1.0, 2.0, 4.0, 1.0],
                 [1.0, 0.0, 1.0, 2.0, 3.0],
                 [5.0, 1.0, 0.0, 1.0, 2.0],
                 [2.0, 2.0, 1.0, 0.0, 1.0],
                 [0.5, 3.0, 2.0, 1.0, 0.0]])


def _cost_value(d, h):
    y, ign = d["labels"], h.get("ignore_index")
    ok = y != ign if ign is not None else np.ones(y.shape, bool)
    rows = COST[np.where(ok, y, 0)]
    return np.where(ok, np.sum(_softmax(d["logits"]) * rows, -1), 0.0)


def _cost_dz(d, h):
    y, ign = d["labels"], h.get("ignore_index")
    ok = y != ign if ign is not None else np.ones(y.shape, bool)
    rows = COST[np.where(ok, y, 0)]
    p = _softmax(d["logits"])
    g = p * (rows - np.sum(p * rows, -1, keepdims=True))
    return np.where(ok[:, None], g, 0.0)


def _cost_make(g):
    y = g.integers(0, C, size=B)
    y[::4] = -1
    return {"logits": g.normal(scale=2.0, size=(B, C)), "labels": y}


EXPECTED_COST = Case(
    loss="expected_cost",
    id="ignore",
    positional=("logits", "labels"),
    make=_cost_make,
    reference=_cost_value,
    grads={"logits": _cost_dz},
    hyper={"cost_matrix": COST, "ignore_index": -1},
    class_axis=-1,
    extremes=lambda: [{"logits": np.array([[1e4, -1e4, 0, 0, 0], [-1e4] * 5]),
                       "labels": np.array([2, 0])},
                      {"logits": np.array([[3e38, -3e38, 0, 3e38, 1e-30],
                                           [1e20, 1e20, -1e20, 0, -3e38]]),
                       "labels": np.array([2, 4])}],
)


MULTICLASS = [
    EXPECTED_COST,
    _sce("plain", {}),
    _sce("weights+smoothing", {"class_weights": W5, "label_smoothing": 0.2}),
    _sce("class-mask+smoothing", {"label_smoothing": 0.1}, masked=True),
    _ice("plain", {}),
    _ice("weights+smoothing+ignore", {"class_weights": W5, "label_smoothing": 0.15,
                                      "ignore_index": -100}),
    _ice("class-mask+smoothing", {"label_smoothing": 0.3}, masked=True),
    _ice("axis=0", {"label_smoothing": 0.1}, axis=0),
    _nll("plain", {}),
    _nll("weights+ignore", {"class_weights": W5, "ignore_index": -1}),
]


# --------------------------------------------------------------------------------------------
# Divergences

def _kl_make(g):
    z = g.normal(size=(B, C))
    return {"log_predictions": z - _lse(z)[:, None], "targets": _soft_targets(g)}


def _kll_make(g):
    d = _kl_make(g)
    return {"log_predictions": d["log_predictions"], "log_targets": np.log(d["targets"])}


def _kl_extremes():
    lp = np.array([[0.0, -np.inf, -1e4, -50.0, -1.0]])
    huge = np.array([[-3e38, -1e20, -1e-30, 0.0, -1.0], [-1e-30, -3e38, -3e38, -1e20, 0.0]])
    return [{"log_predictions": lp, "targets": np.array([[1.0, 0.0, 0.0, 0.0, 0.0]])},
            {"log_predictions": np.full((1, C), -np.log(C)), "targets": np.zeros((1, C))},
            {"log_predictions": huge, "targets": np.array([[0.5, 0.25, 0.0, 0.25, 1e-30],
                                                           [0.0, 1e-30, 0.5, 0.5, 0.0]])}]


DIVERGENCE = [
    Case(
        loss="kl_divergence",
        id="plain",
        positional=("log_predictions", "targets"),
        make=_kl_make,
        reference=lambda d, h: np.sum(d["targets"] * (np.log(d["targets"])
                                                      - d["log_predictions"]), -1),
        grads={
            "log_predictions": lambda d, h: -d["targets"],
            "targets": lambda d, h: np.log(d["targets"]) + 1 - d["log_predictions"],
        },
        class_axis=-1,
        extremes=_kl_extremes,
    ),
    Case(
        loss="kl_divergence_with_log_targets",
        id="plain",
        positional=("log_predictions", "log_targets"),
        make=_kll_make,
        reference=lambda d, h: np.sum(np.exp(d["log_targets"])
                                      * (d["log_targets"] - d["log_predictions"]), -1),
        grads={
            "log_predictions": lambda d, h: -np.exp(d["log_targets"]),
            "log_targets": lambda d, h: np.exp(d["log_targets"])
            * (d["log_targets"] - d["log_predictions"] + 1),
        },
        class_axis=-1,
        extremes=lambda: [
            {"log_predictions": np.array([[0.0, -np.inf, -1e4, -50.0, -1.0]]),
             "log_targets": np.array([[0.0, -np.inf, -np.inf, -1e4, -np.inf]])},
            {"log_predictions": np.array([[-3e38, -1e20, -1e-30, 0.0, -1.0],
                                          [-1e-30, -3e38, -3e38, -1e20, 0.0]]),
             "log_targets": np.array([[-np.log(2), -3e38, -1e20, -np.log(2), -1e-30],
                                      [-3e38, -1e-30, -np.log(2), -1e20, -np.log(2)]])}],
    ),
]


from tests.cases import collect  # noqa: E402

_COLLECTED, _NOT_LOSSES_COLLECTED = collect()
CASES: list[Case] = [*BINARY, *MULTICLASS, *DIVERGENCE, *_COLLECTED]

#: Public names in jaxloss that are not losses.
NOT_LOSSES = {"COMBINATORS", "LOSSES", "LossInfo", "WeightedMean", "loss_info", "fused", "mean",
              "mean_parts", "multitask", "sum", *jaxloss.COMBINATORS}
NOT_LOSSES |= _NOT_LOSSES_COLLECTED
