"""What the fused heads share: validation and preparation of (hidden, weight, labels, bias,
where), the static options, the class mask and the label counts (one ``prepare`` for the fused
cross-entropy, the log-probabilities, the distillation and the vocab-parallel forms)."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .._core import checks as _checks
from .._core.labels import check_label_range, mark_invalid_labels
from ._kernel import KernelConfig

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
    return _checks.static_hyperparameter(
        fn, "logit_soft_cap", cap, _checks.POSITIVE, " (it is compiled into the kernel)"
    )


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
    fn: str, where: ArrayLike | None, batch_shape: tuple[int, ...], v: int, source: str = "`weight`"
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
    labels: ArrayLike,
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
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    *,
    bias: ArrayLike | None,
    weight_layout: Any,
    block_size: Any,
    label_smoothing: ArrayLike,
    z_loss: ArrayLike,
    logit_soft_cap: Any,
    ignore_index: Any,
    where: ArrayLike | None,
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
    ignored = None if p.ignore_index is None else p.y == p.ignore_index
    return mark_invalid_labels(loss, label_ok, ignored).reshape(p.batch_shape)


def label_counted(p: _Prepared, v: int, offset: ArrayLike = 0) -> jax.Array:
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
