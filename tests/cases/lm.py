"""Conformance cases for ``jaxloss._lm``: token_log_probs and distillation_loss on given logits.

References and closed-form derivatives: tests/lm_reference.py (NumPy float64, from the math).
"""

from __future__ import annotations

import numpy as np

from tests import lm_reference as R
from tests.case import Case

N, V = 6, 7


def _make_lp(ignore=None):
    def make(g):
        z = g.normal(scale=1.5, size=(N, V))
        y = g.integers(0, V, size=N)
        if ignore is not None:
            y[1::3] = ignore
        return {"logits": z, "labels": y}

    return make


def _extremes_lp(ignore=None):
    def extremes():
        z = np.array(
            [
                [1e4, -1e4, 0.0, 1.0, 2.0, 3.0, 4.0],
                [-1e4, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                [0.0] * V,
                [3e4, 3e4, -3e4, 0.0, 1.0, 2.0, 3.0],
            ]
        )
        y = np.array([0, 1, 3, 2])
        out = [{"logits": z, "labels": y}, {"logits": -z, "labels": y}]
        if ignore is not None:
            out.append({"logits": z, "labels": np.full(4, ignore)})
        return out

    return extremes


def _lp_case(id, hyper):
    ign = hyper.get("ignore_index")
    t = hyper.get("temperature", 1.0)
    return Case(
        loss="token_log_probs",
        id=id,
        positional=("logits", "labels"),
        make=_make_lp(ign),
        reference=lambda d, h: R.log_probs(d["logits"], d["labels"], t, ign),
        grads={"logits": lambda d, h: R.dlog_probs(d["logits"], d["labels"], t, ign)},
        hyper=hyper,
        class_axis=-1,
        extremes=_extremes_lp(ign),
    )


def _make_dist(labels=False, ignore=None):
    def make(g):
        d = {
            "student_logits": g.normal(scale=1.5, size=(N, V)),
            "teacher_logits": g.normal(scale=2.0, size=(N, V)),
        }
        if labels:
            y = g.integers(0, V, size=N)
            if ignore is not None:
                y[2::3] = ignore
            d["labels"] = y
        return d

    return make


def _extremes_dist(labels=False, ignore=None):
    def extremes():
        zs = np.array(
            [
                [1e4, -1e4, 0.0, 1.0, 2.0, 3.0, 4.0],
                [-1e4, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                [0.0] * V,
                [3e3, 3e3, -3e3, 0.0, 1.0, 2.0, 3.0],
            ]
        )
        zt = np.array(
            [
                [0.0, 1e4, 0.0, 1.0, 2.0, 3.0, 4.0],
                [0.0] * V,
                [-1e4, 0.0, 1e4, 0.0, 5.0, 0.0, 0.0],
                [3e3, -3e3, 3e3, 0.0, 1.0, 2.0, 3.0],
            ]
        )
        d = {"student_logits": zs, "teacher_logits": zt}
        if labels:
            d["labels"] = np.array([0, 1, 3, 2])
        out = [d, {**d, "student_logits": -zs}]
        if ignore is not None:
            out.append({**d, "labels": np.full(4, ignore)})
        return out

    return extremes


def _dist_case(id, hyper, labels=False):
    ign = hyper.get("ignore_index")
    return Case(
        loss="distillation_loss",
        id=id,
        positional=("student_logits", "teacher_logits"),
        make=_make_dist(labels, ign),
        reference=lambda d, h: R.distillation(
            d["student_logits"], d["teacher_logits"], h, d.get("labels")
        ),
        grads={
            "student_logits": lambda d, h: R.ddistillation(
                d["student_logits"], d["teacher_logits"], h, d.get("labels")
            )
        },
        hyper=hyper,
        class_axis=-1,
        extremes=_extremes_dist(labels, ign),
    )


CASES: list[Case] = [
    _lp_case("plain", {}),
    _lp_case("temperature-ignore", {"temperature": 2.0, "ignore_index": -100}),
    _dist_case("forward-kl", {}),
    _dist_case("reverse-kl-T2", {"divergence": "reverse_kl", "temperature": 2.0}),
    _dist_case(
        "jsd-0.3-hard-labels",
        {
            "divergence": "jsd",
            "beta": 0.3,
            "temperature": 0.5,
            "hard_label_weight": 0.25,
            "ignore_index": -1,
        },
        labels=True,
    ),
    _dist_case("jsd-beta-1", {"divergence": "jsd", "beta": 1.0}),
]


K = 3


def _make_topk(g):
    ids = np.stack([g.permutation(V)[:K] for _ in range(N)])
    ids[0, 0] = V - 1  # an id at the top of the vocabulary
    p = np.exp(g.normal(scale=1.5, size=(N, V)))
    p /= p.sum(-1, keepdims=True)
    return {
        "student_logits": g.normal(scale=1.5, size=(N, V)),
        "teacher_topk_ids": ids,
        "teacher_topk_log_probs": np.log(np.take_along_axis(p, ids, -1)),
    }


def _extremes_topk():
    zs = np.array(
        [
            [1e4, -1e4, 0.0, 1.0, 2.0, 3.0, 4.0],
            [-1e4, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0] * V,
            [3e3, 3e3, -3e3, 0.0, 1.0, 2.0, 3.0],
        ]
    )
    ids = np.array([[0, 1, 2], [6, 5, 4], [1, 3, 5], [2, 0, 6]])
    lt = np.log(np.array([[0.5, 0.3, 0.1], [0.9, 0.05, 0.04], [1 / 3] * 3, [0.2, 0.2, 0.2]]))
    return [{"student_logits": zs, "teacher_topk_ids": ids, "teacher_topk_log_probs": lt}]


CASES.append(
    Case(
        loss="topk_distillation_loss",
        id="top3-T2",
        positional=("student_logits", "teacher_topk_ids", "teacher_topk_log_probs"),
        make=_make_topk,
        reference=lambda d, h: R.topk_kl(
            d["student_logits"], d["teacher_topk_ids"], d["teacher_topk_log_probs"],
            h.get("temperature", 1.0),
        ),
        grads={
            "student_logits": lambda d, h: R.dtopk_kl(
                d["student_logits"], d["teacher_topk_ids"], d["teacher_topk_log_probs"],
                h.get("temperature", 1.0),
            )
        },
        hyper={"temperature": 2.0},
        class_axis=-1,
        extremes=_extremes_topk,
    )
)
