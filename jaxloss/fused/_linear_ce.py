"""Linear cross-entropy: the language-model head and its softmax cross-entropy, fused.

``linear_cross_entropy(hidden, weight, labels)`` equals
``softmax_cross_entropy_with_integer_labels(hidden @ weight (+ bias), labels)`` (with the same
options) but never builds the ``[tokens, vocabulary]`` logits: the forward streams vocabulary blocks
with an online log-sum-exp and the backward recomputes each block (see ``_kernel.py``).
"""

from __future__ import annotations

import jax
from jax.typing import ArrayLike

from .. import _reduce
from .._core.registry import register
from ._kernel import linear_lse_stats

__all__ = ["linear_cross_entropy"]
from ._prepare import DEFAULT_BLOCK_SIZE, _Prepared, combine, count_classes, label_counted, prepare


@register(plot="linear_ce")
def linear_cross_entropy(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    *,
    bias: ArrayLike | None = None,
    weight_layout: str = "dv",
    block_size: int = DEFAULT_BLOCK_SIZE,
    label_smoothing: ArrayLike = 0.0,
    z_loss: ArrayLike = 0.0,
    logit_soft_cap: float | None = None,
    ignore_index: int | None = None,
    where: ArrayLike | None = None,
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
