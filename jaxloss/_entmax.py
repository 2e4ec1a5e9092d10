"""The sparse probability mappings of the Fenchel–Young family: sparsemax, 1.5-entmax and
α-entmax, and the validation the family's losses share (conventions: ``jaxloss/_fenchel_young.py``
and the same documentation page)."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ._core import checks as _checks
from ._core import labels as _core_labels

__all__ = ["entmax", "entmax15", "sparsemax"]


# ----------------------------------------------------------------------------------------------
# Validation


def _logits(fn: str, logits: ArrayLike, axis: Any) -> tuple[jax.Array, int]:
    """Floating logits in the compute dtype with the class axis moved last; the axis."""
    z = _checks.check_floating(fn, "logits", logits)
    if z.ndim == 0:
        raise ValueError(f"jaxloss.{fn}: `logits` must have a class axis; got a 0-d array.")
    if isinstance(axis, bool) or not isinstance(axis, int) or not -z.ndim <= axis < z.ndim:
        raise ValueError(
            f"jaxloss.{fn}: `axis` must be an int in [-{z.ndim}, {z.ndim}) for {z.ndim}-d "
            f"logits; got {axis!r}."
        )
    axis %= z.ndim
    return jnp.moveaxis(z.astype(_checks.compute_dtype(z)), axis, -1), axis


def _labels(fn: str, labels: ArrayLike, logits: ArrayLike, z: jax.Array, axis: int) -> jax.Array:
    """Integer labels of the logits' shape without the class axis, range-checked if concrete."""
    shaped = jax.ShapeDtypeStruct(np.shape(logits), z.dtype)  # the logits as passed
    return _core_labels.check_labels(fn, labels, shaped, axis, z.shape[-1], None)


def _label_logit(z: jax.Array, y: jax.Array) -> jax.Array:
    """z[..., y] by a gather (labels clipped; :func:`_in_range` marks the clipped ones)."""
    safe = jnp.clip(y, 0, z.shape[-1] - 1)[..., None]
    return jnp.take_along_axis(z, safe, -1)[..., 0]


def _in_range(loss: jax.Array, y: jax.Array, num_classes: int) -> jax.Array:
    """NaN where a (traced) label is outside [0, C)."""
    return jnp.where((y >= 0) & (y < num_classes), loss, jnp.nan)


def _check_alpha(fn: str, alpha: ArrayLike) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating, np.integer)):
        raise TypeError(
            f"jaxloss.{fn}: `alpha` must be a Python float > 1 (it selects the algorithm, so it "
            f"cannot be traced); got {type(alpha).__name__}."
        )
    _checks.require(fn, "alpha", float(alpha), _checks.Interval(1.0, lo_open=True))
    return float(alpha)


# ----------------------------------------------------------------------------------------------
# The mappings, on the last axis


def _shifted(z: jax.Array) -> jax.Array:
    """z - max z per row (the maximum is constant for the derivatives; NaN spreads to the row)."""
    return z - jax.lax.stop_gradient(jnp.max(z, axis=-1, keepdims=True))


def _descending(x: jax.Array) -> jax.Array:
    return jnp.flip(jnp.sort(x, axis=-1), axis=-1)


def _take(x: jax.Array, k: jax.Array) -> jax.Array:
    """x[..., k - 1] for a per-row count k >= 1 (keepdims)."""
    return jnp.take_along_axis(x, k - 1, -1)


def _sparsemax_forward(z: jax.Array) -> jax.Array:
    """[z - τ]_+ with τ = (Σ_{j∈S} z_j - 1)/|S| on the support S = {j : z_j > τ}, found without
    a sort by Michelot's projection ("A finite algorithm for finding the projection of a point
    onto the canonical simplex of R^n", JOTA 1986): from a superset of the support (with the
    row shifted to max 0, τ >= -1, so every z_j > -1), τ of the current set is a lower bound
    of the true one and S = {z_j > τ} shrinks until it stops changing, the exact support, in at
    most K passes (typically 2-10: bench/fenchel_young.py). A sort costs far more on XLA:CPU."""
    x = _shifted(z)

    def threshold(on: jax.Array) -> tuple[jax.Array, jax.Array]:
        k = jnp.sum(on, axis=-1, keepdims=True)
        total = jnp.sum(jnp.where(on, x, 0), axis=-1, keepdims=True)
        return (total - 1) / k.astype(x.dtype), k

    def changing(carry: tuple[jax.Array, jax.Array, jax.Array, jax.Array]) -> jax.Array:
        _, k, previous, passes = carry
        return jnp.any(k != previous) & (passes < x.shape[-1])

    def shrink(carry: tuple[jax.Array, jax.Array, jax.Array, jax.Array]):
        tau, k, _, passes = carry
        new_tau, new_k = threshold(x > tau)
        return new_tau, new_k, k, passes + 1

    # A NaN row: nothing is > -1 or > τ, k = 0 and τ = -inf, and the NaN x reaches p.
    tau, k = threshold(x > -1)
    start = (tau, k, jnp.full_like(k, -1), jnp.zeros((), jnp.int32))
    tau, *_ = jax.lax.while_loop(changing, shrink, start)
    return jnp.maximum(x - tau, 0)


def _entmax15_forward(z: jax.Array) -> jax.Array:
    """[z/2 - τ]_+² with Σ = 1 (Peters, Niculae & Martins 2019, the exact sort-based τ)."""
    x = _shifted(z / 2)
    xs = _descending(x)
    rank = jnp.arange(1, x.shape[-1] + 1, dtype=x.dtype)
    mean = jnp.cumsum(xs, axis=-1) / rank
    spread = rank * (jnp.cumsum(xs * xs, axis=-1) / rank - mean * mean)
    tau = mean - jnp.sqrt(jnp.maximum((1 - spread) / rank, 0))
    k = jnp.sum(tau <= xs, axis=-1, keepdims=True)
    # τ again on the support found, from its centred spread: the cumulative form above cancels
    # (mean of squares - square of the mean), enough to choose the support, not for τ itself.
    on = x >= _take(xs, k)
    count = jnp.sum(on, axis=-1, keepdims=True).astype(x.dtype)
    centre = jnp.sum(jnp.where(on, x, 0), axis=-1, keepdims=True) / count
    dev = jnp.where(on, x - centre, 0)
    spread = jnp.sum(dev * dev, axis=-1, keepdims=True)
    tau = centre - jnp.sqrt(jnp.maximum((1 - spread) / count, 0))
    return jnp.square(jnp.maximum(x - tau, 0))


def _entmax_bisect_forward(z: jax.Array, alpha: float) -> jax.Array:
    """[(α - 1)z - τ]_+^{1/(α-1)} with τ by bisection (Blondel et al. 2019; Peters et al. 2019):
    τ in [max - 1, max - K^{1-α}], where the sum is >= 1 and <= 1."""
    x = (alpha - 1) * _shifted(z)
    power = 1 / (alpha - 1)
    iters = 60 if x.dtype == jnp.float64 else 30

    def mass(tau: jax.Array) -> jax.Array:
        return jnp.power(jnp.maximum(x - tau, 0), power)

    def halve(_: int, bounds: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        lo, hi = bounds
        mid = (lo + hi) / 2
        big = jnp.sum(mass(mid), axis=-1, keepdims=True) >= 1
        return jnp.where(big, mid, lo), jnp.where(big, hi, mid)

    shape = (*x.shape[:-1], 1)
    lo = jnp.full(shape, -1, x.dtype)
    hi = jnp.full(shape, -(float(x.shape[-1]) ** (1 - alpha)), x.dtype)
    lo, _ = jax.lax.fori_loop(0, iters, halve, (lo, hi))
    p = mass(lo)
    return p / jnp.sum(p, axis=-1, keepdims=True)


def _forward(z: jax.Array, alpha: float) -> jax.Array:
    if alpha == 2.0:
        return _sparsemax_forward(z)
    if alpha == 1.5:
        return _entmax15_forward(z)
    return _entmax_bisect_forward(z, alpha)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _entmax_last(z: jax.Array, alpha: float) -> jax.Array:
    """α-entmax over the last axis (α = 2: sparsemax, α = 1.5: exact), closed-form JVP."""
    return _forward(jax.lax.stop_gradient(z), alpha)


@_entmax_last.defjvp
def _entmax_last_jvp(alpha, primals, tangents):
    (z,), (dz,) = primals, tangents
    p = _entmax_last(z, alpha)
    on = p > 0
    if alpha == 2.0:
        s = on.astype(p.dtype)
    elif alpha == 1.5:  # double where: sqrt's derivative at 0 would make second order NaN
        s = jnp.where(on, jnp.sqrt(jnp.where(on, p, 1)), 0)
    else:
        s = jnp.where(on, jnp.power(jnp.where(on, p, 1), 2 - alpha), 0)
    sd = s * dz
    dp = sd - s * (jnp.sum(sd, axis=-1, keepdims=True) / jnp.sum(s, axis=-1, keepdims=True))
    # A NaN row (its p is NaN, so s = 0 there) has a NaN Jacobian.
    return p, jnp.where(jnp.isnan(p), jnp.nan, dp)


def _map(fn: str, logits: ArrayLike, axis: Any, alpha: float) -> jax.Array:
    z, axis = _logits(fn, logits, axis)
    return jnp.moveaxis(_entmax_last(z, alpha), -1, axis)


def sparsemax(logits: ArrayLike, *, axis: int = -1) -> jax.Array:
    """Sparsemax: the Euclidean projection of the logits onto the probability simplex.

    Math (z = logits along ``axis``; sort z_(1) >= ... >= z_(K)):
      sparsemax(z) = argmin_{p ∈ Δ} ‖p - z‖² = [z - τ]_+,
      k = max{k : 1 + k z_(k) > Σ_{j<=k} z_(j)},   τ = (Σ_{j<=k} z_(j) - 1) / k.
    Probabilities sum to 1 and are exactly 0 outside the support S = {j : z_j > τ}. Computed
    without the sort: the support by Michelot's finite algorithm (S ← {z_j > τ(S)} from a
    superset until it stops changing; a few passes over the row), then τ from it.
    Jacobian: diag(s) - s sᵀ/|S| with s the support's indicator.

    Args:
      logits: floating array ``[..., K, ...]`` with the classes on ``axis``.
      axis: the class axis.

    Returns:
      Probabilities of the logits' shape, in the compute dtype (float32 for 16-bit inputs).
      Equals ``optax.projections.projection_simplex`` on each row. A NaN logit makes its row
      NaN.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.sparsemax(jnp.array([1.0, 0.5, -1.0])).tolist()
      [0.75, 0.25, 0.0]

    Reference: Martins & Astudillo, "From Softmax to Sparsemax", ICML 2016 (arXiv:1602.02068).
    """
    return _map("sparsemax", logits, axis, 2.0)


def entmax15(logits: ArrayLike, *, axis: int = -1) -> jax.Array:
    """1.5-entmax: sparse probabilities between softmax and sparsemax, exact by one sort.

    Math (z = logits along ``axis``):
      entmax15(z) = argmax_{p ∈ Δ} ⟨p, z⟩ + Σ_j (p_j - p_j^{3/2}) / 0.75 = [z/2 - τ]_+²,
    τ the unique threshold with Σ_j [z_j/2 - τ]_+² = 1, found from the sorted z/2 in closed form
    (for a support of k, τ = mean - sqrt((1 - k·var)/k) of its top k values).
    Jacobian: diag(s) - s sᵀ/Σ s with s = sqrt(p).

    Args:
      logits: floating array ``[..., K, ...]`` with the classes on ``axis``.
      axis: the class axis.

    Returns:
      Probabilities of the logits' shape (exact zeros outside the support), in the compute
      dtype; the same as ``entmax(logits, alpha=1.5)`` and as ``entmax.entmax15`` (PyTorch).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> [round(v, 4) for v in jaxloss.entmax15(jnp.array([2.0, 1.0, -2.0])).tolist()]
      [0.8307, 0.1693, 0.0]

    Reference: Peters, Niculae & Martins, "Sparse Sequence-to-Sequence Models", ACL 2019
    (arXiv:1905.05702).
    """
    return _map("entmax15", logits, axis, 1.5)


def entmax(logits: ArrayLike, *, alpha: float = 1.5, axis: int = -1) -> jax.Array:
    """α-entmax for any α > 1 (α = 2: sparsemax; α → 1: softmax), by bisection.

    Math (z = logits along ``axis``):
      entmax_α(z) = argmax_{p ∈ Δ} ⟨p, z⟩ + Σ_j (p_j - p_j^α)/(α(α - 1))
                  = [(α - 1) z - τ]_+^{1/(α-1)},
    τ found by bisection on [max - 1, max - K^{1-α}] (30 halvings in float32, 60 in float64, to
    the dtype's precision), then the probabilities renormalised. α = 1.5 and α = 2 use the exact
    thresholds of :func:`entmax15` (sort-based) and :func:`sparsemax` (Michelot's algorithm).
    Jacobian: diag(s) - s sᵀ/Σ s with s_j = p_j^{2-α} on the support, 0 off it.

    Args:
      logits: floating array ``[..., K, ...]`` with the classes on ``axis``.
      alpha: α > 1, a Python float (it selects the algorithm; no gradient w.r.t. α).
      axis: the class axis.

    Returns:
      Probabilities of the logits' shape (exact zeros outside the support), in the compute
      dtype. The same as ``entmax.entmax_bisect`` (PyTorch) at convergence.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.entmax(jnp.array([0.5, 0.25, -1.0]), alpha=3.0).tolist()
      [0.75, 0.25, 0.0]

    Reference: Peters, Niculae & Martins, "Sparse Sequence-to-Sequence Models", ACL 2019;
    Blondel, Martins & Niculae, "Learning with Fenchel-Young Losses", JMLR 2020.
    """
    return _map("entmax", logits, axis, _check_alpha("entmax", alpha))
