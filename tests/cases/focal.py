"""Conformance cases for the focal losses (jaxloss/_focal.py): sigmoid and softmax focal,
class-balanced focal and Poly-1 cross-entropy (Lin et al. 2017; Cui et al. 2019; Leng et al. 2022).

References are NumPy float64 implementations of the formulas in the papers, written in linear
(probability) space, never by calling jaxloss. Closed-form derivatives are the per-example
derivatives (tests/case.py). The multi-class integer-label reference
(tests/cases/_softmax_labels.py) is shared with tests/cases/imbalance.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from tests.case import Case
from tests.cases._softmax_labels import COUNTS, W5, multiclass_case
from tests.reference import SHAPE, binary_extremes
from tests.reference import sigmoid as _sigmoid

# --------------------------------------------------------------------------------------------
# Sigmoid focal (optionally alpha, Poly-1, learnable gamma)


def _sf_terms(d, h):
    x, t = d["logits"], d["labels"]
    alpha = h.get("alpha")
    p = _sigmoid(x)
    return SimpleNamespace(
        x=x, t=t, p=p, alpha=alpha,
        g=d.get("gamma", h.get("gamma", 2.0)),
        eps=h.get("poly_epsilon", 0.0),
        q=(1 - t) * p + t * (1 - p),  # 1 - p_t
        ce=-(t * np.log(p) + (1 - t) * np.log1p(-p)),
        at=1.0 if alpha is None else alpha * t + (1 - alpha) * (1 - t),
    )


def _sf_value(d, h):
    s = _sf_terms(d, h)
    return s.at * s.q**s.g * s.ce + s.eps * s.q ** (s.g + 1)


def _sf_dx(d, h):
    s = _sf_terms(d, h)
    lx = (1 - 2 * s.t) * s.p * (1 - s.p) / s.q
    return (s.at * s.q**s.g * (s.g * s.ce * lx + s.p - s.t)
            + s.eps * (s.g + 1) * s.q ** (s.g + 1) * lx)


def _sf_dt(d, h):
    s = _sf_terms(d, h)
    lt = (1 - 2 * s.p) / s.q
    dat = 0.0 if s.alpha is None else 2 * s.alpha - 1
    return (dat * s.q**s.g * s.ce + s.at * s.q**s.g * (s.g * s.ce * lt - s.x)
            + s.eps * (s.g + 1) * s.q**s.g * (1 - 2 * s.p))


def _sf_dgamma(d, h):
    s = _sf_terms(d, h)
    return np.log(s.q) * (s.at * s.q**s.g * s.ce + s.eps * s.q ** (s.g + 1))


def _binary_make(soft, extra=None):
    def make(rng):
        x = rng.normal(scale=3.0, size=SHAPE)
        if soft:
            t = rng.uniform(0.05, 0.95, size=SHAPE)
        else:
            t = rng.integers(0, 2, size=SHAPE).astype(np.float64)
        return {"logits": x, "labels": t, **(extra or {})}

    return make


def _sigmoid_focal(id, hyper, soft=False, learnable=False):
    extra = {"gamma": np.float64(1.5)} if learnable else None
    grads = {"logits": _sf_dx}
    if soft:  # the label derivative is checked by finite differences in (0, 1)
        grads["labels"] = _sf_dt
    if learnable:
        grads["gamma"] = _sf_dgamma
    return Case(
        loss="sigmoid_focal_loss",
        id=id,
        positional=("logits", "labels"),
        make=_binary_make(soft, extra),
        reference=_sf_value,
        grads=grads,
        hyper=hyper,
        vmap_axes={"gamma": None} if learnable else {},
        extremes=binary_extremes(extra, big=1e38 if soft else 3e38),
    )


CASES: list[Case] = [
    _sigmoid_focal("gamma=2", {}),
    _sigmoid_focal("soft+alpha+gamma=0.5+poly", {"alpha": 0.25, "gamma": 0.5,
                                                 "poly_epsilon": 1.0}, soft=True),
    _sigmoid_focal("learnable-gamma+poly", {"poly_epsilon": -0.5}, learnable=True),
    multiclass_case("softmax_focal_loss", "focal", "gamma=2", {}),
    multiclass_case("softmax_focal_loss", "focal", "alpha+poly+ignore",
                    {"alpha": W5, "gamma": 0.5, "poly_epsilon": 1.5, "ignore_index": -100}),
    multiclass_case("softmax_focal_loss", "focal", "class-mask+learnable-gamma", {"alpha": W5},
                    masked=True, learnable="gamma"),
    multiclass_case("softmax_focal_loss", "focal", "axis=0", {"gamma": 2.0}, axis=0),
    multiclass_case("class_balanced_focal_loss", "cbfocal", "beta=0.999",
                    {"samples_per_class": COUNTS, "gamma": 1.0}),
    multiclass_case("poly1_cross_entropy", "poly", "eps=2+ignore", {"ignore_index": -100}),
]
