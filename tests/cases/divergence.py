"""Conformance cases for the divergences (jaxloss/_divergence.py): Kullback–Leibler from
probability and log-probability targets, and Jensen–Shannon.

References are NumPy float64 formulas written from the math (never by calling jaxloss); ``grads``
are the per-example closed-form derivatives (tests/case.py).
"""

from __future__ import annotations

import numpy as np

from tests.case import Case
from tests.reference import B, C, soft_targets
from tests.reference import lse as _lse

_soft_targets = soft_targets


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# --------------------------------------------------------------------------------------------
# Kullback–Leibler

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


# --------------------------------------------------------------------------------------------
# Jensen–Shannon

def _xlogx(x):
    return np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0)), 0.0)


def _js_value(d, h):
    p, q = d["probabilities"], d["targets"]
    terms = 0.5 * _xlogx(p) + 0.5 * _xlogx(q) - _xlogx(0.5 * (p + q))
    if "where" in d:
        terms = np.where(d["where"], terms, 0.0)
    return terms.sum(-1)


def _js_grad(a, b, d):
    g = 0.5 * np.log(2 * a / (a + b))
    return np.where(d["where"], g, 0.0) if "where" in d else g


def _js_make(g, masked):
    d = {"probabilities": _softmax(g.normal(scale=0.6, size=(6, 5))),
         "targets": _softmax(g.normal(scale=0.6, size=(6, 5)))}
    if masked:
        mask = g.uniform(size=(6, 5)) > 0.3
        mask[:, 0] = True
        d["where"] = mask
    return d


def _js_extremes(masked):
    p = np.array([[1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5, 0.0],
                  [0.2, 0.2, 0.2, 0.2, 0.2], [1e-30, 1 - 1e-30, 0.0, 0.0, 0.0]])
    q = np.array([[0.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5, 0.0],
                  [1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0]])
    out = [{"probabilities": p, "targets": q}, {"probabilities": q, "targets": p},
           {"probabilities": np.zeros((4, 5)), "targets": q}]
    if masked:
        mask = np.array([[True] * 5, [False] * 5, [True, False, True, False, True], [True] * 5])
        out = [{**o, "where": mask} for o in out]
    return out


def _js_case(id, masked=False):
    return Case(
        loss="jensen_shannon_divergence",
        id=id,
        positional=("probabilities", "targets"),
        make=lambda g: _js_make(g, masked),
        reference=_js_value,
        grads={"probabilities": lambda d, h: _js_grad(d["probabilities"], d["targets"], d),
               "targets": lambda d, h: _js_grad(d["targets"], d["probabilities"], d)},
        class_axis=-1,
        extremes=lambda: _js_extremes(masked),
    )


CASES: list[Case] = [*DIVERGENCE, _js_case("plain"), _js_case("class-mask", masked=True)]
