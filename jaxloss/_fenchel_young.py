"""Fenchel–Young losses: sparsemax, entmax and perceptron losses, and the sparse mappings.

Conventions shared by everything here.

The family. A regulariser Ω on the probability simplex Δ defines the regularised prediction
ŷ_Ω(θ) = argmax_{p ∈ Δ} ⟨θ, p⟩ - Ω(p) and the Fenchel–Young loss
  L_Ω(θ; y) = Ω*(θ) + Ω(y) - ⟨θ, y⟩,   Ω*(θ) = ⟨θ, ŷ⟩ - Ω(ŷ),
which is >= 0, convex in θ, 0 iff ŷ_Ω(θ) = y, and has the gradient ∇_θ L = ŷ_Ω(θ) - y
(Blondel, Martins & Niculae, JMLR 2020). The regularisers used here, each with Ω(e_k) = 0:
  "shannon"  Ω(p) = Σ p log p                    ŷ = softmax     L = KL(y ‖ softmax θ)
  "squared"  Ω(p) = ½(‖p‖² - 1)                  ŷ = sparsemax   the sparsemax loss
  "tsallis"  Ω(p) = (Σ p^α - 1) / (α(α - 1))     ŷ = α-entmax    the entmax loss (α > 1)
  "zero"     Ω(p) = 0                            ŷ = argmax      the perceptron loss
("squared" is "tsallis" at α = 2.) With integer labels y = e_k the loss is
⟨ŷ, θ - θ_k⟩ - Ω(ŷ). Losses of one-hot labels take integer ``labels``; :func:`fenchel_young_loss`
builds the loss of probability targets for any of the four regularisers.

Mappings. :func:`sparsemax` (α = 2) and :func:`entmax15` (α = 1.5) are exact: the threshold τ
with Σ_j [(α - 1)z_j - τ]_+^{1/(α-1)} = 1 comes from the exact support, found by Michelot's
finite algorithm (sparsemax: a few passes over the row, no sort) or from one sort of the row
(entmax15). :func:`entmax` takes any α > 1 by bisection on τ (to the dtype's precision: 30
halvings in float32, 60 in float64). Their outputs have exact zeros outside the support; their
Jacobian is diag(s) - s sᵀ / Σ s with s_j = p_j^{2-α} on the support and 0 off it (a
closed-form JVP; the support search, the sort and the bisection are never differentiated).
Every row is shifted by its maximum first, so logits of ±1e4 (or ±3e38) lose nothing.

Classes are on ``axis`` (last by default); labels have the logits' shape without it. Concrete
(eager) labels are range-checked; under ``jit`` an out-of-range label gives NaN. A NaN logit
makes its row's probabilities, value and gradient NaN and leaves the other rows unchanged.
Ties: the perceptron losses take JAX's subgradient of ``max`` (tied maxima share it equally),
as optax does. float16/bfloat16 inputs are computed in float32 and the result is float32;
float64 stays float64.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ._core import ad as _ad
from ._core import checks as _checks
from ._core import labels as _core_labels
from ._core.numerics import logsumexp_parts, nan_gradient, nan_of, xlogx
from ._core.registry import register
from ._entmax import (
    _check_alpha,
    _entmax_last,
    _in_range,
    _label_logit,
    _labels,
    _logits,
    _shifted,
)

__all__ = [
    "entmax15_loss",
    "entmax_loss",
    "fenchel_young_loss",
    "multiclass_perceptron_loss",
    "multiclass_sparsemax_loss",
    "perceptron_loss",
    "sparsemax_loss",
]


# ----------------------------------------------------------------------------------------------
# Losses of integer labels: ⟨ŷ, z - z_y⟩ - Ω(ŷ), gradient ŷ - e_y


def _tsallis(p: jax.Array, alpha: float) -> jax.Array:
    """Ω(p) = (Σ p^α - 1)/(α(α - 1)) over the last axis (Ω = 0 at a vertex)."""
    if alpha == 2.0:
        return 0.5 * (jnp.sum(p * p, axis=-1) - 1)
    powered = jnp.sum(jnp.power(jnp.maximum(p, 0), alpha), axis=-1)
    return (powered - 1) / (alpha * (alpha - 1))


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _entmax_integer(z: jax.Array, y: jax.Array, alpha: float) -> jax.Array:
    p = _entmax_last(z, alpha)
    # Entries off the support contribute 0 (their z - z_y may be -inf at logits of -3e38).
    gap = jnp.where(p > 0, z - _label_logit(z, y)[..., None], 0)
    # nan_of(z): the support's max/threshold may drop a NaN logit once XLA fuses the row's
    # reductions into its library kernel (large inputs; _core/numerics.py); 0·sign fuses into
    # this sum, so a NaN logit makes its row NaN at no extra pass.
    return jnp.sum(p * gap + nan_of(z), axis=-1) - _tsallis(p, alpha)


@_entmax_integer.defjvp
def _entmax_integer_jvp(alpha, primals, tangents):
    (z, y), (dz, _) = primals, tangents
    value = _entmax_integer(z, y, alpha)
    p = _entmax_last(z, alpha)
    return value, jnp.sum(p * dz, axis=-1) - _label_logit(dz, y)


def _integer_loss(
    fn: str, logits: ArrayLike, labels: ArrayLike, axis: Any, alpha: float
) -> jax.Array:
    z, axis = _logits(fn, logits, axis)
    y = _labels(fn, labels, logits, z, axis)
    value = _entmax_integer(z, y, alpha)
    return _in_range(nan_gradient(value, z, -1), y, z.shape[-1])


@register(plot="softmax")
def multiclass_sparsemax_loss(logits: ArrayLike, labels: ArrayLike, *, axis: int = -1) -> jax.Array:
    """Sparsemax loss with integer labels, one value per example.

    Math (z = logits, y = label, p = :func:`sparsemax` (z)):
      l = ⟨p, z - z_y⟩ + ½(1 - ‖p‖²) = -z_y + ½ Σ_{j∈S} (z_j² - τ²) + ½,
    the Fenchel–Young loss of Ω(p) = ½‖p‖² on the simplex: l >= 0, convex, 0 iff p = e_y.

    Gradient: dl/dz = sparsemax(z) - e_y (exact zeros off the support and the label).

    Args:
      logits: floating array ``[..., K, ...]`` with the classes on ``axis``.
      labels: integer array, the logits' shape without ``axis``, values in [0, K).
      axis: the class axis.

    Returns:
      Array of the shape of ``labels``. Equals ``optax.losses.multiclass_sparsemax_loss``
      (which takes 2-D ``[B, K]`` scores only) and ``entmax.SparsemaxLoss(reduction="none")``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.multiclass_sparsemax_loss(jnp.array([[1.0, 0.5, -1.0]]), jnp.array([1])).tolist()
      [0.5625]

    Reference: Martins & Astudillo, "From Softmax to Sparsemax", ICML 2016 (arXiv:1602.02068).
    """
    return _integer_loss("multiclass_sparsemax_loss", logits, labels, axis, 2.0)


@register(plot="softmax")
def entmax15_loss(logits: ArrayLike, labels: ArrayLike, *, axis: int = -1) -> jax.Array:
    """1.5-entmax loss with integer labels, one value per example.

    Math (z = logits, y = label, p = :func:`entmax15` (z)):
      l = ⟨p, z - z_y⟩ + (1 - Σ_j p_j^{3/2}) / 0.75,
    the Fenchel–Young loss of the Tsallis 1.5 negentropy: l >= 0, convex, 0 iff p = e_y.

    Gradient: dl/dz = entmax15(z) - e_y.

    Args:
      logits: floating array ``[..., K, ...]`` with the classes on ``axis``.
      labels: integer array, the logits' shape without ``axis``, values in [0, K).
      axis: the class axis.

    Returns:
      Array of the shape of ``labels``; ``entmax.Entmax15Loss(reduction="none")`` with its
      ``k=None`` (a full sort; its default ``k=100`` sorts partially, the same value).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> round(float(jaxloss.entmax15_loss(jnp.array([2.0, 1.0, -2.0]), jnp.array(0))), 4)
      0.0617

    Reference: Peters, Niculae & Martins, "Sparse Sequence-to-Sequence Models", ACL 2019.
    """
    return _integer_loss("entmax15_loss", logits, labels, axis, 1.5)


@register(plot="softmax")
def entmax_loss(
    logits: ArrayLike, labels: ArrayLike, *, alpha: float = 1.5, axis: int = -1
) -> jax.Array:
    """α-entmax loss with integer labels for any α > 1, one value per example.

    Math (z = logits, y = label, p = :func:`entmax` (z, alpha=α)):
      l = ⟨p, z - z_y⟩ + (1 - Σ_j p_j^α) / (α(α - 1)),
    the Fenchel–Young loss of the Tsallis α negentropy. α = 2 is :func:`multiclass_sparsemax_loss`,
    α = 1.5 :func:`entmax15_loss`, α → 1 the softmax cross-entropy.

    Gradient: dl/dz = entmax(z, α) - e_y (the bisection is not differentiated).

    Args:
      logits: floating array ``[..., K, ...]`` with the classes on ``axis``.
      labels: integer array, the logits' shape without ``axis``, values in [0, K).
      alpha: α > 1, a Python float (default 1.5, as ``entmax.EntmaxBisectLoss``).
      axis: the class axis.

    Returns:
      Array of the shape of ``labels``; ``entmax.EntmaxBisectLoss(alpha, reduction="none")`` at
      convergence.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> z, y = jnp.array([1.0, 0.5, -1.0]), jnp.array(0)
      >>> round(float(jaxloss.entmax_loss(z, y, alpha=2.0)), 4)
      0.0625

    Reference: Peters, Niculae & Martins, ACL 2019; Blondel, Martins & Niculae, JMLR 2020.
    """
    return _integer_loss("entmax_loss", logits, labels, axis, _check_alpha("entmax_loss", alpha))


@register(plot="softmax")
def multiclass_perceptron_loss(
    logits: ArrayLike, labels: ArrayLike, *, axis: int = -1
) -> jax.Array:
    """Multi-class perceptron loss with integer labels, one value per example.

    Math (z = logits, y = label):  l = max_j z_j - z_y >= 0,
    the Fenchel–Young loss of Ω = 0 (ŷ = argmax).

    Gradient: dl/dz = e_{argmax} - e_y; classes tied for the maximum share the first term
    equally (JAX's subgradient of ``max``, as optax), so the gradient is 0 when the label is the
    unique maximum.

    Args:
      logits: floating array ``[..., K, ...]`` with the classes on ``axis``.
      labels: integer array, the logits' shape without ``axis``, values in [0, K).
      axis: the class axis.

    Returns:
      Array of the shape of ``labels``. Equals ``optax.losses.multiclass_perceptron_loss``
      (ties included).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.multiclass_perceptron_loss(jnp.array([[2.0, 0.5, -1.0]]), jnp.array([1])).tolist()
      [1.5]

    Reference: Collins, "Discriminative Training Methods for Hidden Markov Models", EMNLP 2002.
    """
    fn = "multiclass_perceptron_loss"
    z, axis = _logits(fn, logits, axis)
    y = _labels(fn, labels, logits, z, axis)
    # A fused max-reduction may drop a NaN logit (_core/numerics.nan_of): added back per row.
    loss = jnp.max(z, axis=-1) + jnp.sum(nan_of(z), axis=-1) - _label_logit(z, y)
    return _in_range(nan_gradient(loss, z, -1), y, z.shape[-1])


# ----------------------------------------------------------------------------------------------
# Binary losses


@jax.custom_jvp
def _binary_sparsemax(s: jax.Array, t: jax.Array) -> jax.Array:
    """((s + 1)/2 - t)² for |s| < 1, (1 - t)(s - t) for s >= 1, t(t - 1 - s) for s <= -1: each
    piece a product of non-negative factors (no cancellation near 0). Selects keyed on s >= 1
    and s <= -1, which NaN fails: a NaN s takes the middle piece and stays NaN. (This form ran
    about as fast as optax's value-and-grad; a min/max form ran ~2x slower: bench/.)"""
    middle = jnp.square(0.5 * s + 0.5 - t)
    return jnp.where(s >= 1, (1 - t) * (s - t), jnp.where(s <= -1, t * (t - 1 - s), middle))


def _binary_sparsemax_jvp(primals, tangents):
    (s, t), (ds, dt) = primals, tangents
    value = _binary_sparsemax(s, t)
    out = jnp.zeros_like(value)
    if not _ad.is_zero(ds):
        out = out + ds * (jnp.minimum(jnp.maximum(0.5 * s + 0.5, 0), 1) - t)
    if not _ad.is_zero(dt):
        out = out + dt * (2 * t - 1 - s)
    return value, out


_binary_sparsemax.defjvp(_binary_sparsemax_jvp, symbolic_zeros=True)


@register(plot="binary")
def sparsemax_loss(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    """Binary sparsemax loss, elementwise (labels 0/1 or soft labels in [0, 1]).

    Math (s = logit, t = label, sparse_plus(x) = 0 for x <= -1, (x + 1)²/4 for |x| < 1, x for
    x >= 1):
      l = t·sparse_plus(-s) + (1 - t)·sparse_plus(s) - t(1 - t)
        = ((s + 1)/2 - t)² (|s| < 1),  (1 - t)(s - t) (s >= 1),  t(t - 1 - s) (s <= -1)
    (the second form, products of non-negative factors, is how it is computed), the
    Fenchel–Young loss of the sparsemax regulariser on the logits [s/2, -s/2] and the
    target [t, 1 - t]: l >= 0 and l = 0 iff sparse_sigmoid(s) = clip((s + 1)/2, 0, 1) = t.

    Gradient: dl/ds = sparse_sigmoid(s) - t;  dl/dt = 2t - 1 - s.

    Args:
      logits: floating array, any shape.
      labels: real array of the same shape, values in [0, 1] (concrete values are checked).

    Returns:
      Array of the shape of ``logits``. For labels in {0, 1} equals
      ``optax.losses.sparsemax_loss`` (the binary loss) and the multi-class sparsemax loss of
      the logits [s/2, -s/2].

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.sparsemax_loss(jnp.array([2.0, 0.0, -3.0]), jnp.array([1.0, 1.0, 1.0])).tolist()
      [0.0, 0.25, 3.0]

    Reference: Blondel, Martins & Niculae, "Learning with Fenchel-Young Losses", JMLR 2020,
    §4.4.
    """
    fn = "sparsemax_loss"
    s = _checks.check_floating(fn, "logits", logits)
    t = _checks.check_real(fn, "labels", labels)
    _checks.check_same_shape(fn, "logits", s, "labels", t)
    _checks.check_values(fn, "labels", labels, "in [0, 1]", allow_nan=True)
    dtype = _checks.compute_dtype(s, t)
    return _binary_sparsemax(s.astype(dtype), t.astype(dtype))


@jax.custom_jvp
def _active(z: jax.Array) -> jax.Array:
    """max(0, z) with derivative 1 at z = 0 (the kink counts as active); NaN stays NaN."""
    return jnp.where(z < 0, 0, z)


@_active.defjvp
def _active_jvp(primals, tangents):
    (z,), (dz,) = primals, tangents
    step = jnp.where(z < 0, 0, jnp.where(z >= 0, 1, jnp.nan)).astype(z.dtype)
    return _active(z), dz * step


@register(plot="signed")
def perceptron_loss(predictions: ArrayLike, targets: ArrayLike) -> jax.Array:
    """Binary perceptron loss with {-1, +1} targets, elementwise.

    Math (x = score, y = target):  l = max(0, -y·x), the hinge loss with margin 0.

    Gradient: dl/dx = -y where y·x <= 0 (the kink x = 0 counts as active, as in
    :func:`hinge_loss`; optax's ``jnp.maximum`` gives -y/2 there), else 0.

    Args:
      predictions: floating array of scores, any shape.
      targets: real array of the same shape, values -1 or +1 (others raise a ValueError when
        concrete and give NaN under ``jit``).

    Returns:
      Array of the shape of ``predictions``. Equals ``optax.losses.perceptron_loss``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.perceptron_loss(jnp.array([2.0, -0.5]), jnp.array([1.0, 1.0])).tolist()
      [0.0, 0.5]

    Reference: Rosenblatt, "The Perceptron", Psychological Review 1958.
    """
    fn = "perceptron_loss"
    x = _checks.check_floating(fn, "predictions", predictions)
    t = _checks.check_real(fn, "targets", targets)
    _checks.check_same_shape(fn, "predictions", x, "targets", t)
    _core_labels.require_label_values(
        fn,
        "targets",
        targets,
        (-1, 1),
        spelled="-1 or +1",
        hint=" Convert {0, 1} labels with `2 * labels - 1`.",
    )
    dtype = _checks.compute_dtype(x, t)
    x, t = x.astype(dtype), t.astype(dtype)
    # A target other than ±1 (traced) becomes NaN, so the value and the derivative are NaN
    # there. (Folded into the target: adding a NaN-or-0 term instead ran 3.6x slower in
    # value-and-grad on XLA:CPU; bench/fenchel_young.py.)
    t = jnp.where(jnp.abs(t) == 1, t, jnp.nan)
    return _active(-t * x)


# ----------------------------------------------------------------------------------------------
# Losses of probability targets: the constructor


@dataclasses.dataclass(frozen=True)
class _Regulariser:
    name: str
    alpha: float  # the Tsallis α (2 for "squared"); 1 for Shannon, 0 for "zero"


def _omega(reg: _Regulariser, p: jax.Array) -> jax.Array:
    if reg.name == "shannon":
        return jnp.sum(xlogx(p), axis=-1)
    return _tsallis(p, reg.alpha)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _fy_probabilities(reg: _Regulariser, z: jax.Array, t: jax.Array) -> jax.Array:
    """Ω*(x) - ⟨x, t⟩ + Ω(t) with x = z - max z (= L_Ω(z; t) when Σ t = 1)."""
    x = _shifted(z)
    if reg.name == "shannon":
        _, log_sum, _ = logsumexp_parts(x)
        conjugate = log_sum[..., 0]
    else:
        p = _entmax_last(z, reg.alpha)
        conjugate = jnp.sum(p * jnp.where(p > 0, x, 0), axis=-1) - _tsallis(p, reg.alpha)
    cross = jnp.sum(t * jnp.where(t != 0, x, 0), axis=-1)
    return conjugate - cross + _omega(reg, t)


@_fy_probabilities.defjvp
def _fy_probabilities_jvp(reg, primals, tangents):
    # The derivative of the value as computed, with m = max z: ŷ - t + (Σ t - 1) ∂m w.r.t. z
    # (the last term 0 on the simplex) and ∇Ω(t) - (z - m) w.r.t. t. Written in JAX, so that
    # second derivatives (off the simplex too) are those of the same function.
    (z, t), (dz, dt) = primals, tangents
    value = _fy_probabilities(reg, z, t)
    p = jax.nn.softmax(z, axis=-1) if reg.name == "shannon" else _entmax_last(z, reg.alpha)
    m, dm = jax.jvp(lambda u: jnp.max(u, axis=-1, keepdims=True), (z,), (dz,))
    _, domega = jax.jvp(functools.partial(_omega, reg), (t,), (dt,))
    excess = jnp.sum(t, axis=-1) - 1
    return value, (
        jnp.sum((p - t) * dz, axis=-1)
        + excess * dm[..., 0]
        + domega
        - jnp.sum((z - m) * dt, axis=-1)
    )


_REGULARISERS = ("shannon", "squared", "tsallis", "zero")


def fenchel_young_loss(regularizer: str, *, alpha: float = 1.5) -> Callable[..., jax.Array]:
    """Builds the Fenchel–Young loss L_Ω(θ; y) = Ω*(θ) + Ω(y) - ⟨θ, y⟩ of a simplex regulariser.

    Math (θ = logits, y = probability targets on the simplex, ŷ_Ω(θ) = argmax_{p∈Δ} ⟨θ, p⟩ -
    Ω(p); see the module notes):
      "shannon"  Ω(p) = Σ p log p            ŷ = softmax     L = KL(y ‖ softmax θ)
      "squared"  Ω(p) = ½(‖p‖² - 1)          ŷ = sparsemax
      "tsallis"  Ω(p) = (Σ p^α - 1)/(α(α-1)) ŷ = α-entmax (``alpha`` > 1)
      "zero"     Ω(p) = 0                    ŷ = argmax      L = Σ_j y_j (max θ - θ_j)
    L >= 0, convex in θ, 0 iff ŷ_Ω(θ) = y. It is computed as Ω*(x) - ⟨x, y⟩ + Ω(y) with
    x = θ - max θ (equal to L because Σ y = 1), so logits of ±1e4 lose nothing; the
    derivatives are those of this form.

    Gradient: dL/dθ = ŷ_Ω(θ) - y ("zero": the subgradient of max, ties shared equally, minus
    y); dL/dy = ∇Ω(y) - (θ - max θ) (for "shannon" ∇Ω = log y + 1, taken as 0 where y = 0).
    Off the simplex (Σ y ≠ 1, e.g. finite differences) dL/dθ adds (Σ y - 1)·∂max θ.

    Args:
      regularizer: "shannon", "squared", "tsallis" or "zero".
      alpha: the Tsallis α > 1 (a Python float), used by "tsallis" only (α = 1.5 and α = 2 are
        exact; others use bisection).

    Returns:
      A loss ``loss(logits, targets, *, axis=-1)``: floating logits ``[..., K, ...]`` and
      targets of the same shape (probabilities summing to 1 along ``axis``; concrete targets
      are checked), returning one value per example, ``logits.shape`` without ``axis``. For
      one-hot targets it equals ``optax.losses.make_fenchel_young_loss`` with the matching
      ``max_fun`` (optax omits Ω(y), which is 0 at one-hot targets but not at soft ones):
      "shannon" is ``optax.softmax_cross_entropy``, "zero"
      ``optax.losses.multiclass_perceptron_loss``, "squared"
      ``optax.losses.multiclass_sparsemax_loss``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> loss = jaxloss.fenchel_young_loss("squared")
      >>> loss(jnp.array([1.0, 0.5, -1.0]), jnp.array([0.0, 1.0, 0.0])).tolist()
      0.5625
      >>> loss(jnp.array([1.0, 0.5, -1.0]), jnp.array([0.75, 0.25, 0.0])).tolist()
      0.0

    Reference: Blondel, Martins & Niculae, "Learning with Fenchel-Young Losses", JMLR 2020
    (arXiv:1901.02324).
    """
    if regularizer not in _REGULARISERS:
        raise ValueError(
            f"jaxloss.fenchel_young_loss: `regularizer` must be one of {_REGULARISERS}; got "
            f"{regularizer!r}."
        )
    a = {"shannon": 1.0, "squared": 2.0, "zero": 0.0}.get(regularizer)
    if a is None:
        a = _check_alpha("fenchel_young_loss", alpha)
    reg = _Regulariser(regularizer, a)
    fn = f"fenchel_young_loss({regularizer!r})"

    def loss(logits: ArrayLike, targets: ArrayLike, *, axis: int = -1) -> jax.Array:
        z, axis = _logits(fn, logits, axis)
        t = _checks.check_real(fn, "targets", targets)
        _checks.check_same_shape(fn, "logits", jnp.moveaxis(z, -1, axis), "targets", t)
        _checks.check_values(fn, "targets", targets, "in [0, 1]", allow_nan=True)
        concrete = _checks.concrete_array(targets)
        if concrete is not None and concrete.size:
            sums = np.sum(np.moveaxis(concrete.astype(np.float64), axis, -1), axis=-1)
            bad = np.abs(sums - 1) > 1e-3
            if bad.any():
                raise ValueError(
                    f"jaxloss.{fn}: `targets` must sum to 1 along axis {axis}; got sums "
                    f"{sums[bad].ravel()[:5].tolist()}."
                )
        t = jnp.moveaxis(t.astype(_checks.compute_dtype(z, t)), axis, -1)
        z = z.astype(t.dtype)
        if reg.name == "zero":
            gap = jnp.max(z, axis=-1, keepdims=True) - z
            # 0·inf (a zero target where max z - z overflows) is 0; a finite gap is kept so
            # that d/dt = max z - z holds at t = 0 too.
            gap = jnp.where((t != 0) | (jnp.abs(gap) < jnp.inf), gap, 0)
            cross = jnp.sum(t * gap, axis=-1)
            return nan_gradient(cross, z, -1)
        return _fy_probabilities(reg, z, t)

    loss.__name__ = loss.__qualname__ = f"fenchel_young_loss_{regularizer}"
    loss.__doc__ = (
        f"The Fenchel–Young loss of the {regularizer!r} regulariser (see "
        "jaxloss.fenchel_young_loss): loss(logits, targets, *, axis=-1), one value per example."
    )
    return loss
