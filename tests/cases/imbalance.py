"""Conformance cases for the imbalance-aware and cost-sensitive losses (jaxloss/_imbalance.py):
class-balanced cross-entropy, LDAM, logit adjustment, generalized cross-entropy (Cui et al. 2019;
Cao et al. 2019; Menon et al. 2021; Zhang & Sabuncu 2018), the asymmetric multi-label loss
(Ridnik et al. 2021) and the expected cost (Elkan 2001).

References are NumPy float64 implementations of the formulas in the papers, written in linear
(probability) space, never by calling jaxloss. Closed-form derivatives are the per-example
derivatives (tests/case.py). The multi-class integer-label reference
(tests/cases/_softmax_labels.py) is shared with tests/cases/focal.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from tests.case import Case
from tests.cases._softmax_labels import COUNTS, PRIORS, multiclass_case
from tests.reference import SHAPE, B, C, binary_extremes
from tests.reference import sigmoid as _sigmoid
from tests.reference import softmax as _softmax

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
        extremes=binary_extremes(),
    )


# --------------------------------------------------------------------------------------------
# Expected cost


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


CASES: list[Case] = [
    _asl("paper-defaults", {}),
    _asl("margin=0+gamma-=0.5+soft", {"gamma_positive": 1.0, "gamma_negative": 0.5,
                                      "margin": 0.0}, soft=True),
    multiclass_case("class_balanced_cross_entropy", "cb", "beta=0.99+ignore",
                    {"samples_per_class": COUNTS, "beta": 0.99, "ignore_index": -1}),
    multiclass_case("ldam_loss", "ldam", "s=30+mask+ignore",
                    {"samples_per_class": COUNTS, "ignore_index": -100}, masked=True, scale=0.4),
    multiclass_case("logit_adjusted_cross_entropy", "la", "learnable-tau+mask+ignore",
                    {"class_priors": PRIORS, "ignore_index": -1}, masked=True, learnable="tau"),
    multiclass_case("generalized_cross_entropy", "gce", "q=0.3+mask+ignore",
                    {"q": 0.3, "ignore_index": -1}, masked=True),
    EXPECTED_COST,
]
