"""Conformance cases for ``jaxloss.fused.linear_distillation``: the distillation loss of
jaxloss.distillation_loss on zs = student_hidden @ Ws and zt = teacher_hidden @ Wt (NumPy float64
logits, tests/lm_reference.py for the divergences and their closed-form derivatives):

  ∂l/∂student_hidden = ∂l/∂zs @ Wsᵀ ('dv') or ∂l/∂zs @ Ws ('vd').

Only ``student_hidden`` is in ``grads``; the weight's gradient, the teacher's (with
``teacher_gradient=True``) and arbitrary cotangents are in tests/test_fused_lm.py.
"""

from __future__ import annotations

import numpy as np

from tests import lm_reference as R
from tests.case import Case

N, DS, DT, V = 6, 4, 5, 7


def _make(layout="dv", labels=False, ignore=None):
    def make(g):
        ws = g.normal(scale=0.7, size=(DS, V))
        wt = g.normal(scale=0.9, size=(DT, V))
        d = {
            "student_hidden": g.normal(size=(N, DS)),
            "student_weight": ws if layout == "dv" else ws.T.copy(),
            "teacher_hidden": g.normal(size=(N, DT)),
            "teacher_weight": wt if layout == "dv" else wt.T.copy(),
        }
        if labels:
            y = g.integers(0, V, size=N)
            if ignore is not None:
                y[2::3] = ignore
            d["labels"] = y
        return d

    return make


def _extremes(layout="dv", labels=False, ignore=None):
    def extremes():
        xs = np.array([[1e4, -1e4, 0.0, 1.0], [-1e4, 0.0, 0.0, 0.0], [0.0] * 4, [1e3] * 4])
        xt = np.array(
            [
                [0.0, 1e4, 0.0, 1.0, 2.0],
                [0.0] * 5,
                [-1e3, 0.0, 1e3, 0.0, 5.0],
                [1e3, -1e3, 1e3, 0.0, 1.0],
            ]
        )
        ws = (np.arange(DS * V).reshape(DS, V) % 5 - 2) * 0.5  # dyadic: exact float32 logits
        wt = (np.arange(DT * V).reshape(DT, V) % 3 - 1) * 0.25
        d = {
            "student_hidden": xs,
            "student_weight": ws if layout == "dv" else ws.T.copy(),
            "teacher_hidden": xt,
            "teacher_weight": wt if layout == "dv" else wt.T.copy(),
        }
        if labels:
            d["labels"] = np.array([V - 1, 0, 3, 2])
        out = [d, {**d, "student_hidden": -xs}]
        if ignore is not None:
            out.append({**d, "labels": np.full(4, ignore)})
        return out

    return extremes


def _logits(d, h):
    layout = h.get("weight_layout", "dv")
    return (
        R.logits(d["student_hidden"], d["student_weight"], layout),
        R.logits(d["teacher_hidden"], d["teacher_weight"], layout),
    )


def _value(d, h):
    zs, zt = _logits(d, h)
    return R.distillation(zs, zt, h, d.get("labels"))


def _dhidden(d, h):
    zs, zt = _logits(d, h)
    dz = R.ddistillation(zs, zt, h, d.get("labels"))
    return R.chain_hidden(
        dz, d["student_hidden"], d["student_weight"], h.get("weight_layout", "dv")
    )


def _case(id, hyper, labels=False):
    layout = hyper.get("weight_layout", "dv")
    ignore = hyper.get("ignore_index")
    return Case(
        loss="linear_distillation",
        id=id,
        positional=("student_hidden", "student_weight", "teacher_hidden", "teacher_weight"),
        make=_make(layout, labels, ignore),
        reference=_value,
        grads={"student_hidden": _dhidden},
        hyper={"block_size": 3, **hyper},
        class_axis=-1,
        vmap_axes={"student_weight": None, "teacher_weight": None},
        extremes=_extremes(layout, labels, ignore),
        grad_modes=("rev",),
    )


CASES: list[Case] = [
    _case("forward-kl", {}),
    _case(
        "reverse-kl-vd-T2",
        {"divergence": "reverse_kl", "temperature": 2.0, "weight_layout": "vd", "block_size": 4},
    ),
    _case(
        "jsd-hard-labels",
        {
            "divergence": "jsd",
            "beta": 0.3,
            "temperature": 0.5,
            "hard_label_weight": 0.25,
            "ignore_index": -1,
        },
        labels=True,
    ),
]


K = 3


def _make_topk(g):
    x = g.normal(size=(N, DS))
    w = g.normal(scale=0.7, size=(DS, V))
    ids = np.stack([g.permutation(V)[:K] for _ in range(N)])
    ids[0, 0] = V - 1  # an id at the top of the vocabulary (shape errors name `student_weight`)
    p = np.exp(g.normal(scale=1.5, size=(N, V)))
    p /= p.sum(-1, keepdims=True)
    return {"student_hidden": x, "student_weight": w, "teacher_topk_ids": ids,
            "teacher_topk_log_probs": np.log(np.take_along_axis(p, ids, -1))}


def _extremes_topk():
    xs = np.array([[1e3, -1e3, 0.0, 1.0], [-1e3, 0.0, 0.0, 0.0], [0.0] * 4, [3.0] * 4])
    ws = (np.arange(DS * V).reshape(DS, V) % 5 - 2) * 0.5
    ids = np.array([[0, 1, 2], [6, 5, 4], [1, 3, 5], [2, 0, 6]])
    lt = np.log(np.array([[0.5, 0.3, 0.1], [0.9, 0.05, 0.04], [1 / 3, 1 / 3, 1 / 3],
                          [0.2, 0.2, 0.2]]))
    return [{"student_hidden": xs, "student_weight": ws, "teacher_topk_ids": ids,
             "teacher_topk_log_probs": lt}]


def _topk_value(d, h):
    zs = R.logits(d["student_hidden"], d["student_weight"])
    return R.topk_kl(zs, d["teacher_topk_ids"], d["teacher_topk_log_probs"],
                     h.get("temperature", 1.0))


def _topk_dhidden(d, h):
    zs = R.logits(d["student_hidden"], d["student_weight"])
    dz = R.dtopk_kl(zs, d["teacher_topk_ids"], d["teacher_topk_log_probs"],
                    h.get("temperature", 1.0))
    return R.chain_hidden(dz, d["student_hidden"], d["student_weight"])


CASES.append(Case(
    loss="linear_distillation_topk",
    id="top3-T2",
    positional=("student_hidden", "student_weight", "teacher_topk_ids",
                "teacher_topk_log_probs"),
    make=_make_topk,
    reference=_topk_value,
    grads={"student_hidden": _topk_dhidden},
    hyper={"block_size": 3, "temperature": 2.0},
    class_axis=-1,
    vmap_axes={"student_weight": None},
    extremes=_extremes_topk,
    grad_modes=("rev",),
))
