"""Conformance cases for ``jaxloss.fused.linear_log_probs``: log p(label) of softmax(z / T) with
z = hidden @ W (+ b), optionally soft-capped before the temperature. The references build the
logits in NumPy float64 (small shapes) and use tests/lm_reference.py:

  ∂ log p_y/∂hidden = [(onehot − p)/T · (1 − (zc/cap)²)] @ Wᵀ ('dv').

Only ``hidden`` (one row per token) is in ``grads``; ``weight`` and ``bias`` and the entropy's
gradients, for arbitrary cotangents, are checked in tests/test_fused_lm.py. Reverse mode only.
"""

from __future__ import annotations

import numpy as np

from tests import lm_reference as R
from tests.case import Case

N, D, V = 6, 4, 7


def _make(layout="dv", bias=False, ignore=None):
    def make(g):
        x = g.normal(size=(N, D))
        w = g.normal(scale=0.7, size=(D, V))
        y = g.integers(0, V, size=N)
        y[0] = V - 1  # a label at the top of the vocabulary (shape errors name `weight`)
        d = {"hidden": x, "weight": w if layout == "dv" else w.T.copy(), "labels": y}
        if bias:
            d["bias"] = g.normal(scale=0.5, size=V)
        if ignore is not None:
            d["labels"][2::3] = ignore
        return d

    return make


def _extremes(layout="dv", bias=False, ignore=None):
    def extremes():
        x = np.array([[1e4, -1e4, 0.0, 1.0], [-1e4, 0.0, 0.0, 0.0], [0.0] * 4, [1e3] * 4])
        w = (np.arange(D * V).reshape(D, V) % 5 - 2) * 0.5  # dyadic: exact float32 logits
        d = {
            "hidden": x,
            "weight": w if layout == "dv" else w.T.copy(),
            "labels": np.array([V - 1, 0, 3, 2]),
        }
        if bias:
            d["bias"] = np.arange(-48.0, 49.0, 16.0)
        out = [d, {**d, "hidden": -x}]
        if ignore is not None:
            out.append({**d, "labels": np.full(4, ignore)})
        return out

    return extremes


def _value(d, h):
    layout, cap = h.get("weight_layout", "dv"), h.get("logit_soft_cap")
    z = R.logits(d["hidden"], d["weight"], layout, d.get("bias"), cap)
    return R.log_probs(z, d["labels"], h.get("temperature", 1.0), h.get("ignore_index"))


def _dhidden(d, h):
    layout, cap = h.get("weight_layout", "dv"), h.get("logit_soft_cap")
    z = R.logits(d["hidden"], d["weight"], layout, d.get("bias"), cap)
    dz = R.dlog_probs(z, d["labels"], h.get("temperature", 1.0), h.get("ignore_index"))
    return R.chain_hidden(dz, d["hidden"], d["weight"], layout, cap, d.get("bias"))


def _case(id, hyper, bias=False):
    layout = hyper.get("weight_layout", "dv")
    ignore = hyper.get("ignore_index")
    return Case(
        loss="linear_log_probs",
        id=id,
        positional=("hidden", "weight", "labels"),
        make=_make(layout, bias, ignore),
        reference=_value,
        grads={"hidden": _dhidden},
        hyper={"block_size": 3, **hyper},
        class_axis=-1,
        vmap_axes={"weight": None, "bias": None},
        extremes=_extremes(layout, bias, ignore),
        grad_modes=("rev",),
    )


CASES: list[Case] = [
    # Blocks of 3 columns: [0, 3), [3, 6), then [4, 7) shifted back.
    _case("plain", {}),
    _case(
        "all-options-vd",
        {
            "weight_layout": "vd",
            "block_size": 4,
            "temperature": 2.0,
            "logit_soft_cap": 5.0,
            "ignore_index": -100,
        },
        bias=True,
    ),
]
