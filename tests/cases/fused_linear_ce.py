"""Conformance cases for the fused losses (``jaxloss.fused``), in the format of tests/registry.py.

``linear_cross_entropy(hidden, weight, labels, ...)`` is softmax cross-entropy of the logits
``z = hidden @ W (+ b)``; the references below build those logits in NumPy float64 (small shapes)
and write the value and the closed-form derivative from the math:

  zc = cap·tanh(z/cap) (no cap: zc = z),  lse = log Σ_c exp zc_c over counted classes c,
  l  = (1 − ε)(lse − zc_y) + (ε/K) Σ_c (lse − zc_c) + z_loss·lse²          (0 if ignored)
  ∂l/∂z_c = [G softmax_c − (1 − ε)[c = y] − ε/K]·(1 − (zc_c/cap)²),  G = 1 + 2 z_loss lse
  ∂l/∂hidden = ∂l/∂z @ Wᵀ ('dv'),   ∂l/∂W = hiddenᵀ ∂l/∂z,   ∂l/∂b = Σ_n ∂l/∂z.

The conformance suite contracts per-example derivatives with a cotangent, so only ``hidden`` (one
row per token) is listed in ``grads``; ``weight`` and ``bias`` (shared by all tokens) are checked
against the same closed forms in tests/test_fused_linear_ce.py. ``grad_modes`` is reverse only:
the kernel is a ``jax.custom_vjp`` (no forward mode), see docs/fused.md.
"""

from __future__ import annotations

import numpy as np

from tests.case import Case

N, D, V = 6, 4, 7  # tokens, hidden size, vocabulary


def lce_parts(d: dict, h: dict):
    """Capped logits, class mask, lse, K, safe labels and the 'counted token' flags (float64)."""
    x, w = np.asarray(d["hidden"], np.float64), np.asarray(d["weight"], np.float64)
    layout = h.get("weight_layout", "dv")
    z = x @ (w if layout == "dv" else w.T)
    if d.get("bias") is not None:
        z = z + np.asarray(d["bias"], np.float64)
    cap = h.get("logit_soft_cap")
    zc = z if cap is None else cap * np.tanh(z / cap)
    mask = d.get("where")
    counted = np.ones(zc.shape, bool) if mask is None else np.broadcast_to(mask, zc.shape)
    zm = np.where(counted, zc, -np.inf)
    m = zm.max(-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)  # a row with no counted class: lse = -inf, loss unused
    with np.errstate(divide="ignore"):
        lse = (m + np.log(np.sum(np.exp(zm - m), -1, keepdims=True)))[..., 0]
    k = np.maximum(counted.sum(-1), 1)
    y, ign = np.asarray(d["labels"]), h.get("ignore_index")
    ok = y != ign if ign is not None else np.ones(y.shape, bool)
    ys = np.where(ok, y, 0)
    return zc, counted, lse, k, ys, ok


def lce_value(d: dict, h: dict) -> np.ndarray:
    zc, counted, lse, k, ys, ok = lce_parts(d, h)
    eps, zl = h.get("label_smoothing", 0.0), h.get("z_loss", 0.0)
    zy = np.take_along_axis(zc, ys[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore"):  # rows with no counted class are ignored tokens
        smooth = np.sum(np.where(counted, lse[..., None] - zc, 0.0), -1)
        out = (1 - eps) * (lse - zy) + eps * smooth / k + zl * lse**2
    return np.where(ok, out, 0.0)


def lce_dlogits(d: dict, h: dict) -> np.ndarray:
    """∂l_n/∂z_nc (pre-cap logits), [..., V]."""
    zc, counted, lse, k, ys, ok = lce_parts(d, h)
    eps, zl = h.get("label_smoothing", 0.0), h.get("z_loss", 0.0)
    p = np.where(counted, np.exp(np.where(counted, zc, 0) - lse[..., None]), 0.0)
    onehot = np.eye(zc.shape[-1])[ys]
    g = (1 + 2 * zl * lse)[..., None] * p - (1 - eps) * onehot - np.where(
        counted, eps / k[..., None], 0.0)
    cap = h.get("logit_soft_cap")
    if cap is not None:
        g = g * (1 - (zc / cap) ** 2)
    return np.where(ok[..., None], g, 0.0)


def lce_dhidden(d: dict, h: dict) -> np.ndarray:
    w = np.asarray(d["weight"], np.float64)
    g = lce_dlogits(d, h)
    return g @ (w.T if h.get("weight_layout", "dv") == "dv" else w)


def lce_dweight(d: dict, h: dict, ct: np.ndarray) -> np.ndarray:
    """∂(Σ_n ct_n l_n)/∂W in W's layout."""
    x = np.asarray(d["hidden"], np.float64).reshape(-1, np.shape(d["hidden"])[-1])
    g = (np.asarray(ct)[..., None] * lce_dlogits(d, h)).reshape(x.shape[0], -1)
    dw = x.T @ g
    return dw if h.get("weight_layout", "dv") == "dv" else dw.T


def lce_dbias(d: dict, h: dict, ct: np.ndarray) -> np.ndarray:
    g = np.asarray(ct)[..., None] * lce_dlogits(d, h)
    return g.reshape(-1, g.shape[-1]).sum(0)


def _make(layout="dv", bias=False, masked=False, ignore=None):
    def make(g: np.random.Generator) -> dict:
        x = g.normal(size=(N, D))
        w = g.normal(scale=0.7, size=(D, V))
        y = g.integers(0, V, size=N)
        y[0] = V - 1  # a label at the top of the vocabulary (shape errors name `weight`)
        d = {"hidden": x, "weight": w if layout == "dv" else w.T.copy(), "labels": y}
        if bias:
            d["bias"] = g.normal(scale=0.5, size=V)
        if masked:
            mask = g.uniform(size=(N, V)) > 0.3
            mask[np.arange(N), y] = True  # every label is a counted class
            d["where"] = mask
        if ignore is not None:
            d["labels"][2::3] = ignore
        return d

    return make


def _extremes(layout="dv", bias=False, masked=False, ignore=None):
    def extremes() -> list[dict]:
        x = np.array([[1e4, -1e4, 0.0, 1.0], [-1e4, 0.0, 0.0, 0.0], [0.0] * 4, [1e3] * 4])
        # Dyadic weights and integer bias: the float32 logits (up to ~3e4) are exact in any
        # summation order, so jit and eager agree to rounding of the softmax alone.
        w = (np.arange(D * V).reshape(D, V) % 5 - 2) * 0.5
        y = np.array([V - 1, 0, 3, 2])
        d = {"hidden": x, "weight": w if layout == "dv" else w.T.copy(), "labels": y}
        if bias:
            d["bias"] = np.arange(-48.0, 49.0, 16.0)
        if masked:
            mask = np.ones((4, V), bool)
            mask[1, 1:] = False
            mask[2, ::2] = False
            mask[2, 3] = True
            d["where"] = mask
        out = [d, {**d, "hidden": -x}]
        if ignore is not None:
            out.append({**d, "labels": np.full(4, ignore)})  # every token ignored
        return out

    return extremes


# Reverse mode only (a jax.custom_vjp); the field exists once tests/case.py has it.
_REV_ONLY = {"grad_modes": ("rev",)} if "grad_modes" in Case.__dataclass_fields__ else {}


def _case(id: str, hyper: dict, *, bias=False, masked=False) -> Case:
    layout = hyper.get("weight_layout", "dv")
    ignore = hyper.get("ignore_index")
    return Case(
        loss="linear_cross_entropy",
        id=id,
        positional=("hidden", "weight", "labels"),
        make=_make(layout, bias, masked, ignore),
        reference=lce_value,
        grads={"hidden": lce_dhidden},
        hyper={"block_size": 3, **hyper},
        class_axis=-1,
        vmap_axes={"weight": None, "bias": None},
        extremes=_extremes(layout, bias, masked, ignore),
        **_REV_ONLY,
    )


ALL_OPTIONS = {
    "label_smoothing": 0.1,
    "z_loss": 1e-2,
    "logit_soft_cap": 5.0,
    "ignore_index": -100,
}

CASES: list[Case] = [
    # Blocks of 3 columns: [0, 3), [3, 6), then [4, 7) shifted back (only column 6 new).
    _case("plain", {}),
    # Every option, the [V, D] layout, blocks of 4: [0, 4), then [3, 7) shifted back. (The
    # [D, V] layout with every option is checked against the closed form and the unfused
    # computation in tests/test_fused_linear_ce.py.)
    _case("all-options-vd", {**ALL_OPTIONS, "weight_layout": "vd", "block_size": 4},
          bias=True, masked=True),
]
