"""Linear cross-entropy: the language-model head and its softmax cross-entropy, fused.

``linear_cross_entropy(hidden, weight, labels)`` equals
``softmax_cross_entropy_with_integer_labels(hidden @ weight (+ bias), labels)`` (with the same
options) but never builds the ``[tokens, vocabulary]`` logits: the forward streams vocabulary blocks
with an online log-sum-exp and the backward recomputes each block (see ``_kernel.py``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import _reduce
from .._core import checks as _checks
from .._core.labels import check_label_range
from .._core.registry import register
from ._kernel import KernelConfig, linear_lse_stats

__all__ = ["linear_cross_entropy"]

DEFAULT_BLOCK_SIZE = 2048


@dataclasses.dataclass(frozen=True)
class _Prepared:
    """Validated, flattened inputs of a fused cross-entropy call."""

    y: jax.Array  # [N] int32 labels (global class ids)
    mask: jax.Array | None  # [1, V] or [N, V] class mask
    v: int  # vocabulary size (of this shard)
    batch_shape: tuple[int, ...]
    acc: Any  # accumulation dtype
    cfg: KernelConfig
    eps: jax.Array
    z_loss: jax.Array
    with_z: bool
    ignore_index: int | None
    x: Any = None  # [N, D] in the GEMM dtype
    w: Any = None
    b: Any = None


def _static_positive_int(fn: str, arg: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"jaxloss.{fn}: `{arg}` must be a positive int; got {value!r}.")
    return int(value)


def _static_cap(fn: str, cap: Any) -> float | None:
    if cap is None:
        return None
    v = _checks.concrete_float(cap)
    if v is None:
        raise ValueError(
            f"jaxloss.{fn}: `logit_soft_cap` must be a concrete number (it is compiled into the "
            "kernel); got a traced value."
        )
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"jaxloss.{fn}: `logit_soft_cap` must be finite and > 0; got {v!r}.")
    return v


def _vocab_of(fn: str, weight: jax.Array, layout: Any, hidden: jax.Array) -> tuple[str, int]:
    if layout not in ("dv", "vd"):
        raise ValueError(
            f"jaxloss.{fn}: `weight_layout` must be 'dv' (weight [D, V], logits = hidden @ weight) "
            f"or 'vd' (weight [V, D], logits = hidden @ weight.T); got {layout!r}."
        )
    if weight.ndim != 2:
        raise ValueError(
            f"jaxloss.{fn}: `weight` must be 2-d ([D, V] for weight_layout='dv', [V, D] for "
            f"'vd'); got weight.shape={tuple(weight.shape)}."
        )
    d_axis = 0 if layout == "dv" else 1
    d = hidden.shape[-1] if hidden.ndim else None
    if weight.shape[d_axis] != d:
        raise ValueError(
            f"jaxloss.{fn}: `weight` must have the hidden size D={d} (the last axis of `hidden`, "
            f"shape {tuple(hidden.shape)}) on axis {d_axis} for weight_layout={layout!r}; got "
            f"weight.shape={tuple(weight.shape)}."
        )
    return layout, int(weight.shape[1 - d_axis])


def _class_mask(
    fn: str, where: Any, batch_shape: tuple[int, ...], v: int, source: str = "`weight`"
) -> jax.Array | None:
    """The class mask as [1, V] or [N, V] (N = prod(batch_shape))."""
    if where is None:
        return None
    where = _checks.as_array(fn, "where", where)
    if where.dtype != jnp.bool_:
        raise TypeError(f"jaxloss.{fn}: `where` must be a boolean mask; got {where.dtype}.")
    logits_shape = (*batch_shape, v)
    if where.ndim != len(logits_shape):
        raise ValueError(
            f"jaxloss.{fn}: `where` masks vocabulary entries (classes) and must have the logits' "
            f"ndim={len(logits_shape)} (broadcastable to {logits_shape}, e.g. shape "
            f"{(1,) * len(batch_shape) + (v,)} for one mask over the vocabulary); got "
            f"where.shape={tuple(where.shape)}. To drop whole tokens use `ignore_index` or the "
            "reduction's mask: jaxloss.mean(values, where=...)."
        )
    if where.shape[-1] not in (1, v):
        raise ValueError(
            f"jaxloss.{fn}: `where` must have the vocabulary size V={v} of {source} on its last "
            f"axis; got where.shape={tuple(where.shape)}."
        )
    _checks.check_broadcastable(fn, "where", where, logits_shape, "the logits'")
    if where.shape[-1] != v:  # a [..., 1] class mask is all-or-nothing per token: broadcast it
        where = jnp.broadcast_to(where, (*where.shape[:-1], v))
    if all(s == 1 for s in where.shape[:-1]):
        return where.reshape(1, v)
    return jnp.broadcast_to(where, logits_shape).reshape(-1, v)


def check_ignore_index(fn: str, ignore_index: Any) -> None:
    if ignore_index is not None and (
        isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer))
    ):
        raise TypeError(
            f"jaxloss.{fn}: `ignore_index` must be an int or None; got {ignore_index!r}."
        )


def _check_labels(
    fn: str,
    labels: Any,
    batch_shape: tuple[int, ...],
    v: int,
    weight: jax.Array,
    ignore_index: Any,
    mask: jax.Array | None,
) -> jax.Array:
    labels = _checks.check_integer(fn, "labels", labels)
    if tuple(labels.shape) != batch_shape:
        raise ValueError(
            f"jaxloss.{fn}: `labels` must have the shape of `hidden` without its last axis, "
            f"{batch_shape}; got labels.shape={tuple(labels.shape)}."
        )
    check_ignore_index(fn, ignore_index)
    what = f" (the vocabulary of `weight`, shape {tuple(weight.shape)})"
    concrete = check_label_range(fn, labels, v, ignore_index, what=what)
    if concrete is None:  # traced: the values are NaN there instead
        return labels
    if mask is not None:
        m = _checks.concrete_array(mask)
        if m is None:
            return labels
        flat = concrete.reshape(-1)
        ok = (flat >= 0) & (flat < v)
        rows = np.arange(flat.size) if m.shape[0] > 1 else np.zeros(flat.size, int)
        masked = ok & ~m[rows, np.where(ok, flat, 0)]
        if masked.any():
            raise ValueError(
                f"jaxloss.{fn}: `labels` must be classes left in by `where`; labels "
                f"{flat[masked][:5].tolist()} are masked out."
            )
    return labels


def prepare(
    fn: str,
    hidden: Any,
    weight: Any,
    labels: Any,
    *,
    bias: Any,
    weight_layout: Any,
    block_size: Any,
    label_smoothing: Any,
    z_loss: Any,
    logit_soft_cap: Any,
    ignore_index: Any,
    where: Any,
    check_label_range: bool = True,
) -> _Prepared:
    """Validates and flattens the arguments shared by the fused cross-entropies."""
    _checks.require(fn, "label_smoothing", label_smoothing, "in [0, 1]")
    _checks.require(fn, "z_loss", z_loss, ">= 0")
    x = _checks.check_floating(fn, "hidden", hidden)
    w = _checks.check_floating(fn, "weight", weight)
    if x.ndim < 1:
        raise ValueError(f"jaxloss.{fn}: `hidden` must have a last (feature) axis; got a scalar.")
    layout, v = _vocab_of(fn, w, weight_layout, x)
    if v == 0:
        raise ValueError(
            f"jaxloss.{fn}: `weight` must have a vocabulary of at least one class (V >= 1); got "
            f"weight.shape={tuple(w.shape)} (V = 0) for weight_layout={layout!r}."
        )
    batch_shape = tuple(x.shape[:-1])
    b = None
    if bias is not None:
        b = _checks.check_floating(fn, "bias", bias)
        if tuple(b.shape) != (v,):
            raise ValueError(
                f"jaxloss.{fn}: `bias` must have shape (V,) = ({v},) to match `weight` "
                f"(shape {tuple(w.shape)}); got bias.shape={tuple(b.shape)}."
            )
    block = _static_positive_int(fn, "block_size", block_size)
    cap = _static_cap(fn, logit_soft_cap)
    mask = _class_mask(fn, where, batch_shape, v)
    if check_label_range:
        y = _check_labels(fn, labels, batch_shape, v, w, ignore_index, mask)
    else:
        y = _checks.check_integer(fn, "labels", labels)
        check_ignore_index(fn, ignore_index)
        if tuple(y.shape) != batch_shape:
            raise ValueError(
                f"jaxloss.{fn}: `labels` must have the shape of `hidden` without its last axis, "
                f"{batch_shape}; got labels.shape={tuple(y.shape)}."
            )
    acc = _checks.compute_dtype(x, w, *([] if b is None else [b]))
    gemm = jnp.result_type(x.dtype, w.dtype)
    smooth = _checks.concrete_float(label_smoothing)
    cfg = KernelConfig(
        layout=layout,
        block=min(block, v),
        cap=cap,
        with_smooth=smooth is None or smooth != 0,
    )
    return _Prepared(
        x=x.astype(gemm).reshape(-1, x.shape[-1]),
        w=w,
        b=b,
        y=y.reshape(-1).astype(jnp.int32),
        mask=mask,
        v=v,
        batch_shape=batch_shape,
        acc=acc,
        cfg=cfg,
        eps=jnp.asarray(label_smoothing, acc),
        z_loss=jnp.asarray(z_loss, acc),
        with_z=_checks.concrete_float(z_loss) != 0,
        ignore_index=ignore_index,
    )


def count_classes(p: _Prepared, n: int) -> jax.Array:
    """K_n: the number of counted classes of each token (at least 1)."""
    if p.mask is None:
        return jnp.full((n,), p.v, p.acc)
    k = jnp.sum(p.mask, axis=1, dtype=p.acc)
    return jnp.maximum(jnp.broadcast_to(k, (n,)), 1)


def combine(
    p: _Prepared,
    lse: jax.Array,
    nll: jax.Array,
    smooth: jax.Array,
    k: jax.Array,
    label_ok: jax.Array,
) -> jax.Array:
    """Per-token loss from the statistics (nll = lse - z_y, formed exactly by the caller);
    0 for ignored tokens, NaN for bad labels."""
    loss = nll
    if p.cfg.with_smooth:
        loss = (1 - p.eps) * loss + p.eps * smooth / k
    if p.with_z:
        loss = loss + p.z_loss * jnp.square(lse)
    if p.ignore_index is None:
        loss = jnp.where(label_ok, loss, jnp.nan)
    else:
        ignored = p.y == p.ignore_index
        loss = jnp.where(ignored, 0, jnp.where(label_ok, loss, jnp.nan))
    return loss.reshape(p.batch_shape)


def label_counted(p: _Prepared, v: int, offset: Any = 0) -> jax.Array:
    """Whether each label is a valid, unmasked class (global ids; mask columns start at offset)."""
    ok = (p.y >= 0) & (p.y < v)
    if p.mask is None:
        return ok
    local = jnp.clip(p.y - offset, 0, p.mask.shape[1] - 1)
    rows = (
        p.mask
        if p.mask.shape[0] == p.y.shape[0]
        else jnp.broadcast_to(p.mask, (p.y.shape[0], p.mask.shape[1]))
    )
    return ok & jnp.take_along_axis(rows, local[:, None], axis=1)[:, 0]


@register(plot="linear_ce")
def linear_cross_entropy(
    hidden: Any,
    weight: Any,
    labels: Any,
    *,
    bias: Any = None,
    weight_layout: str = "dv",
    block_size: int = DEFAULT_BLOCK_SIZE,
    label_smoothing: Any = 0.0,
    z_loss: Any = 0.0,
    logit_soft_cap: float | None = None,
    ignore_index: int | None = None,
    where: Any = None,
    reduction: str = "none",
) -> jax.Array:
    """Softmax cross-entropy of ``hidden @ weight (+ bias)`` without materialising the logits.

    Math (z = logits = hidden @ W + b, optionally soft-capped z ← cap·tanh(z/cap); y = label;
    K counted classes; lse = log Σ_c exp z_c over counted classes):
      l = (1 − ε)(lse − z_y) + (ε/K) Σ_c (lse − z_c) + z_loss · lse²
    i.e. :func:`jaxloss.softmax_cross_entropy_with_integer_labels` of the logits (same ε and
    ``ignore_index`` meaning) plus PaLM's z-loss. The vocabulary is processed in blocks of
    ``block_size`` columns: the forward keeps a running max and sum of exponentials per token, so
    memory is O(N·block) instead of O(N·V); the backward (a ``jax.custom_vjp``) recomputes each
    block from the saved inputs and the per-token lse.

    Gradient (closed form; G = 1 + 2 z_loss lse, δ = [c = y], counted c, 0 for masked c):
      ∂l/∂z_c = G softmax(z)_c − (1 − ε) δ − ε/K,   times (1 − (z_c/cap)²) with a soft cap;
      ∂l/∂hidden = Σ_c ∂l/∂z_c W_c,  ∂l/∂W_c = hidden ∂l/∂z_c,  ∂l/∂b_c = ∂l/∂z_c.
    Ignored tokens: value 0, gradient 0. Only reverse mode (``jax.grad``/``vjp``) is supported
    (forward mode ``jax.jvp`` is not, as for every ``jax.custom_vjp``).

    Precision: logits, softmax and every reduction run in float32 (float64 for float64 inputs).
    The GEMMs take the inputs' dtype (bfloat16 stays bfloat16) with float32 accumulation; the
    gradient of ``hidden`` is accumulated across blocks in float32. The loss comes back in
    float32 for float16/bfloat16 inputs; gradients in each input's dtype.

    Cost: forward 2NDV FLOPs; value-and-grad 8NDV (one GEMM is recomputed), against 6NDV for the
    unfused ``hidden @ W`` → cross-entropy, which holds [N, V] logits and [N, V] gradients.
    XLA temporaries of value-and-grad (measured): about N·block·4 B (one float32 tile) plus
    N·D·4 B — 44 MiB at N=4096, D=512, V=32768 (naive: 1152 MiB); 144 MiB at N=8192, D=2048,
    V=131072 (naive: 8 GiB). See docs/fused.md and bench/linear_cross_entropy.py.

    Args:
      hidden: floating array [..., D] (any leading token shape).
      weight: floating array [D, V] (``weight_layout="dv"``, ``logits = hidden @ weight``, as a
        Flax ``Dense`` kernel) or [V, D] (``"vd"``, ``logits = hidden @ weight.T``, as a tied
        embedding table or a PyTorch ``Linear.weight``).
      labels: integer array, the shape of ``hidden`` without its last axis.
      bias: optional floating [V].
      weight_layout: ``"dv"`` or ``"vd"``.
      block_size: vocabulary columns per block (static; clamped to V; need not divide V).
        Memory grows linearly with it; 2048–4096 are equally fast on CPU.
      label_smoothing: ε in [0, 1], as ``torch.nn.CrossEntropyLoss(label_smoothing=)``.
      z_loss: coefficient ≥ 0 of the ``lse²`` term (PaLM uses 1e-4).
      logit_soft_cap: optional static cap > 0 (Gemma 2 uses 30.0): logits ← cap·tanh(logits/cap).
      ignore_index: optional label value whose tokens give 0 and, with ``reduction=``, are not
        counted (with ``jaxloss.mean`` pass ``labels != ignore_index`` yourself).
      where: optional boolean class mask with the logits' ndim, broadcastable to
        ``[..., V]`` — e.g. ``vocab_ok[None, :]`` to keep padded vocabulary rows out of the
        softmax. Masked classes get zero probability and zero gradient.
      reduction: ``"none"`` (default: per-token values), ``"mean"`` or ``"sum"``, with T the
        tokens whose label is not ``ignore_index``: 'mean' = Σ_{n∈T} l_n / |T| (PyTorch's
        ``CrossEntropyLoss(ignore_index=, label_smoothing=, reduction='mean')`` of the logits
        when ``z_loss`` is 0; the z-loss term is averaged the same way), 'sum' = Σ_{n∈T} l_n.
        Every token ignored: 'mean' is 0 with a zero, finite gradient (torch: NaN). A NaN in a
        counted token makes both NaN. Computed on the per-token vector (no pass over logits).

    Returns:
      Array of the shape of ``labels``: per-token losses (``reduction="none"``) or a scalar,
      float32 (float64 for float64 inputs).
      Labels outside [0, V) (other than ``ignore_index``) or on a masked class raise a ValueError
      when concrete and give NaN under ``jit``.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxloss.fused as F
      >>> x = jnp.ones((2, 3, 4)); w = jnp.zeros((4, 10)); y = jnp.array([[1, 2, 3], [4, 5, 6]])
      >>> [round(v, 4) for v in F.linear_cross_entropy(x, w, y, block_size=4)[0].tolist()]
      [2.3026, 2.3026, 2.3026]

    References: Wijmans et al., "Cut Your Losses in Large-Vocabulary Language Models"
    (arXiv:2411.09009); Hsu et al., "Liger Kernel" (arXiv:2410.10989); Chowdhery et al., PaLM
    (z-loss, arXiv:2204.02311); Gemma 2 (logit soft-capping, arXiv:2408.00118).
    """
    fn = "linear_cross_entropy"
    _reduce.check_reduction(fn, reduction)
    p = prepare(
        fn,
        hidden,
        weight,
        labels,
        bias=bias,
        weight_layout=weight_layout,
        block_size=block_size,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        logit_soft_cap=logit_soft_cap,
        ignore_index=ignore_index,
        where=where,
    )
    arrays = (p.x, p.w, p.b, p.y, p.mask, p.eps, p.z_loss)
    statics = (p.v, p.batch_shape, p.acc, p.cfg, p.ignore_index, p.with_z)
    values = _linear_cross_entropy_jit(arrays, statics)
    if reduction == "none":
        return values
    kept = None if ignore_index is None else p.y.reshape(values.shape) != ignore_index
    return _reduce.reduce_loss(values, reduction, where=kept)


_ARRAYS = ("x", "w", "b", "y", "mask", "eps", "z_loss")
_STATICS = ("v", "batch_shape", "acc", "cfg", "ignore_index", "with_z")


def _linear_cross_entropy_impl(arrays: tuple, statics: tuple) -> jax.Array:
    p = _Prepared(
        **dict(zip(_ARRAYS, arrays, strict=True)), **dict(zip(_STATICS, statics, strict=True))
    )
    lse, nll, smooth = linear_lse_stats(p.x, p.w, p.b, p.y, p.mask, p.cfg)
    n = p.x.shape[0]
    return combine(p, lse, nll, smooth, count_classes(p, n), label_counted(p, p.v))


# One compiled program per configuration, also for eager calls (the kernel is dozens of ops).
_linear_cross_entropy_jit = jax.jit(_linear_cross_entropy_impl, static_argnums=1)
