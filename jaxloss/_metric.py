"""Margin, ranking and metric-learning losses.

Three kinds of input, one convention each:

* **Scores** (``hinge``, ``squared_hinge``, ``margin_ranking``): elementwise, one value per score.
  Sign targets are in {-1, +1}.
* **Pairs and triplets of embeddings** (``cosine_embedding``, ``triplet_margin``,
  ``contrastive``): the feature axis is the last axis and is reduced; one value per pair/triplet,
  of the shape ``embeddings.shape[:-1]``.
* **Sets of embeddings** (``info_nce``, ``supervised_contrastive``, ``siglip``): an array
  ``[..., M, D]`` is a set of M embeddings of dimension D; every member of a set is compared with
  every other member of *the same set*, and the loss returns one value per anchor, shape
  ``[..., M]``. Leading axes are independent sets (``jax.vmap`` over them gives per-set results).

Targets of the binary kinds are validated: concrete (eager) targets outside the documented set
raise a ValueError; under ``jit``/``vmap`` such targets give a NaN value and gradient (loud
rather than silently wrong, as for out-of-range integer labels).

NaN. A NaN in an example's inputs gives NaN for that example, value and gradient, and leaves the
other examples bit-for-bit unchanged. For the set losses a set is one example: a NaN in one
member's embedding makes every value of its set NaN.

Kinks. Every piecewise-linear margin term ``max(0, z)`` is treated as *active* at ``z = 0``: the
subgradient there is the slope of the linear piece (torch's ``clamp_min`` convention), so that a
tie at margin 0 (equal scores at initialisation, say) still gives a training signal.

Norms. Distances are exact p-norms of the difference: the float64 value rounded, for every
finite input, inf only where the distance itself is beyond range (the L2 norm takes one pass,
sqrt(Σx²), when no row's sum over- or underflows; otherwise the rows are scaled by a power of two,
which is exact and never flushes to zero as ``x * (1/max|x|)`` does), with gradient 0 at
coincident points (a valid subgradient; the gradient of a p-norm is bounded by 1 in the dual norm,
so no ``eps`` is needed). Normalisation (cosine
similarities) divides by ``max(‖x‖₂, eps)`` like ``torch.nn.functional.normalize``: a zero vector
normalises to 0 with the finite Jacobian ``I / eps``.

float16/bfloat16 inputs are computed in float32 and the result is float32; float64 stays float64.
Similarity matrices are matmuls at JAX's default precision (on TPU/GPU, wrap the call in
``jax.default_matmul_precision("highest")`` for full float32).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from ._classification import _finish_integer_loss, _prepare_integer
from ._core import checks as _checks
from ._core.checks import require_finite as _require_finite
from ._core.numerics import logsumexp, nan_gradient, softplus
from ._core.registry import register

__all__ = [
    "contrastive",
    "cosine_embedding",
    "hinge",
    "info_nce",
    "margin_ranking",
    "multiclass_hinge",
    "siglip",
    "squared_hinge",
    "supervised_contrastive",
    "triplet_margin",
]


# ----------------------------------------------------------------------------------------------
# Helpers


def _nan_step(z: jax.Array) -> jax.Array:
    """The derivative of max(0, z) with the kink active: 1 where z >= 0, 0 where z < 0, and NaN
    where z is NaN (so that a NaN example's gradient is NaN, not 0)."""
    return jnp.where(z < 0, 0, jnp.where(z >= 0, 1, jnp.nan)).astype(z.dtype)


@jax.custom_jvp
def _active(z: jax.Array) -> jax.Array:
    """max(0, z) with derivative 1 at z = 0 (the active side of the kink); a NaN z gives a NaN
    value and a NaN derivative. (The select keys on z < 0, which NaN fails. On XLA:CPU this
    form fuses as well as the plain where(z >= 0, z, 0): same temporaries and speed in
    value-and-grad, where ``jnp.maximum`` ran 2-3x slower inside the reduction.)"""
    return jnp.where(z < 0, 0, z)


@_active.defjvp
def _active_jvp(primals, tangents):
    (z,), (dz,) = primals, tangents
    return _active(z), dz * _nan_step(z)


@jax.custom_jvp
def _nan_grad(x: jax.Array) -> jax.Array:
    """``x`` itself; its tangent is NaN wherever ``x`` is NaN. Applied to per-example values, a
    NaN value takes its whole example's gradient with it, also through the selects and
    compares that would route a zero cotangent to some of its inputs."""
    return x


@_nan_grad.defjvp
def _nan_grad_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return x, dx * jnp.where(x == x, 1, jnp.nan).astype(x.dtype)


def _require_between(fn: str, arg: str, value: Any, lo: float, hi: float) -> None:
    _require_finite(fn, arg, value)
    v = _checks.concrete_float(value)
    if v is not None and not lo <= v <= hi:
        raise ValueError(f"jaxloss.{fn}: `{arg}` must be finite and in [{lo}, {hi}]; got {v!r}.")


def _binary_targets(
    fn: str, arg: str, t: jax.Array, allowed: tuple[int, int], dtype: Any
) -> tuple[jax.Array, jax.Array | None]:
    """Targets cast to ``dtype`` and, when they are traced, a mask of valid entries (False
    for NaN).

    Concrete targets outside ``allowed`` raise a ValueError naming the argument.
    """
    lo, hi = allowed
    try:
        concrete = np.asarray(t)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        cast = t.astype(dtype)
        return cast, (cast == lo) | (cast == hi)
    bad = (concrete != lo) & (concrete != hi)
    if bad.any():
        hint = (
            " For {0, 1} labels pass `2 * labels - 1`."
            if allowed == (-1, 1)
            else " For {-1, +1} labels pass `(labels + 1) // 2`."
        )
        raise ValueError(
            f"jaxloss.{fn}: `{arg}` must hold only {lo} and {hi}; got "
            f"{np.unique(concrete[bad]).ravel()[:5].tolist()}.{hint}"
        )
    return t.astype(dtype), None


def _nan_unless(valid: jax.Array) -> jax.Array:
    """0 where ``valid``, NaN elsewhere: added (not selected) to a loss or its argument, so that
    an invalid target's NaN also reaches the gradient (a select routes it a zero)."""
    return jnp.where(valid, 0, jnp.nan)


def _finish(loss: jax.Array, valid: jax.Array | None) -> jax.Array:
    """The loss with NaN where a traced target is invalid, and a NaN gradient wherever the
    value is NaN (the NaN is added, not selected, so that the gradient reaches the loss)."""
    return _nan_grad(loss if valid is None else loss + _nan_unless(valid))


def _pow2_scale(m: jax.Array) -> jax.Array:
    """A power of two s, itself a normal number, with m·s in [1, 2) for finite m > 0 (in [2, 4)
    in the top binade, where 1/m's power of two is subnormal); 2^(1 - bias) for m = inf or NaN
    and 2^(bias - 1) for m = 0 or subnormal (bias = 127 in float32).

    Multiplying by s is exact and never flushes a normal number to zero, unlike ``x / m``,
    which XLA:CPU rewrites to ``x * (1/m)``: 1/m is subnormal, so 0, for m above ~8.5e37 in
    float32. s is read off m's exponent bits (m >= 0). No gradient.
    """
    fi = jnp.finfo(m.dtype)
    itype = jnp.int32 if fi.bits == 32 else jnp.int64
    bias = fi.maxexp - 1  # 127 (float32), 1023 (float64)
    e = (jax.lax.bitcast_convert_type(m, itype) >> fi.nmant) & (2 * bias + 1)  # biased exponent
    b = jnp.clip(2 * bias - e, 1, 2 * bias - 1)  # biased exponent of 2^-(e - bias), kept normal
    return jax.lax.stop_gradient(jax.lax.bitcast_convert_type(b << fi.nmant, m.dtype))


def _row_scale(a: jax.Array, b: jax.Array | None) -> jax.Array:
    """s = :func:`_pow2_scale` of max|x| over the last axis, x = a - b (or a): s = 2^(1 - bias)
    for a row where a - b overflowed."""
    x = a if b is None else a - b
    return _pow2_scale(jnp.max(jnp.abs(x), axis=-1))


def _scale_rows(a: jax.Array, b: jax.Array | None, s: jax.Array) -> jax.Array:
    """x·s for x = a - b (or a), elementwise given the row scale s: exact, computed as
    (a/2 - b/2)·2s so that it is finite (at most 4 in magnitude with s from
    :func:`_row_scale`) also where a - b overflows. (Select-free: a select feeding the row
    sum costs XLA:CPU a full-size temporary. Halving flushes only entries below 2^(2 - bias),
    ~2e-38 in float32, to zero.)"""
    s = s[..., None]
    if b is None:
        return a * s
    return (a * 0.5 - b * 0.5) * (2 * s)


def _l2_parts(a: jax.Array, b: jax.Array | None = None):
    """(‖x‖₂, s, ‖x·s‖₂) over the last axis for x = a - b (or a), with s a power of two per row
    (no gradient); x·s is :func:`_scale_rows`.

    One pass when it can: s = 1 and the plain sqrt(Σx²) when no row's sum overflowed or is
    below D·tiny/eps (so no term that matters underflowed; a zero row also takes the other
    branch). A NaN row counts as safe: its norm is NaN either way. Otherwise the scaled form:
    s from :func:`_row_scale`, ‖x·s‖ is in [1, 8√D], and ‖x‖ = ‖x·s‖/s is exact, inf only
    where the norm is beyond range (also where a - b itself overflows).
    """
    x = a if b is None else a - b
    fi = jnp.finfo(x.dtype)
    ss = jnp.sum(x * x, axis=-1)
    risky = (ss == jnp.inf) | (ss < fi.tiny / fi.eps * x.shape[-1])  # False for NaN

    def plain():
        n = jnp.sqrt(ss)
        return n, jnp.ones_like(n), n

    def scaled():
        s = _row_scale(a, b)
        xs = _scale_rows(a, b, s)
        n_s = jnp.sqrt(jnp.sum(xs * xs, axis=-1))
        return n_s / s, s, n_s

    return jax.lax.cond(jnp.any(risky), scaled, plain)


def _unit_direction(a: jax.Array, b: jax.Array | None, s: jax.Array, n_s: jax.Array):
    """x/‖x‖ as (x·s)/‖x·s‖: finite even where ‖x‖ overflows; 0 at x = 0; NaN rows stay NaN."""
    inv = 1 / jnp.where(n_s == 0, 1, n_s)
    return _scale_rows(a, b, s) * inv[..., None]


def _pnorm_parts(a: jax.Array, b: jax.Array, p: jax.Array):
    """(‖x·s‖_p, s, m, S) per row for x = a - b: with x·s from :func:`_row_scale` and
    :func:`_scale_rows`, m = max|x·s| in [1, 8], r = |x·s|/m in [0, 1] (the divisor's
    reciprocal is normal), S = Σr^p in [1, D] (1 for a zero row), ‖x·s‖_p = m·S^(1/p)."""
    s = _row_scale(a, b)
    xs = _scale_rows(a, b, s)
    m = jnp.max(jnp.abs(xs), axis=-1)
    zero = m == 0  # a NaN row is not a zero row: it stays NaN
    m_safe = jnp.where(zero, 1, m)
    big_s = jnp.where(zero, 1, jnp.sum((jnp.abs(xs) / m_safe[..., None]) ** p, axis=-1))
    n_s = jnp.where(zero, 0, m * big_s ** (1 / p))
    return n_s, s, m_safe, big_s


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def _distance(
    a: jax.Array, b: jax.Array, p: jax.Array, euclidean: bool
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(‖x·s‖_p, s, 0) for x = a - b over the last axis, with s a power of two per row (no
    gradient), so that the distance d = ‖x‖_p = ‖x·s‖_p / s is exact for every finite input
    (inf only beyond range, also where a - b itself overflows) and NaN for a row with a NaN.
    The third output is 0 with the tangent of d (add it to a value computed from the first
    two under stop_gradient: the gradient then never goes through 1/s).
    ``euclidean`` (p = 2, static) takes one pass when it can (:func:`_l2_parts`; then s = 1).
    """
    if euclidean:
        _, s, n_s = _l2_parts(a, b)
    else:
        n_s, s = _pnorm_parts(a, b, p)[:2]
    return n_s, s, jnp.zeros_like(n_s)


def _distance_jvp(euclidean, primals, tangents):
    """dd = Σ g·(da - db) with g = sign(x)·r^(p-1)/S^((p-1)/p) the gradient of ‖x‖_p
    (bounded by 1 in the dual norm; 0 at x = 0; x/‖x‖ for p = 2) + d·(Σ r^p ln r/(p·S)
    - ln S/p²)·dp; d‖x·s‖_p = s·dd; s has no tangent. g is recomputed from the inputs and
    per-row values, so that no [..., D] array is kept from the forward pass."""
    a, b, p = primals
    da, db, dp = tangents
    if euclidean:
        _, s, n_s = _l2_parts(a, b)
    else:
        n_s, s, m_safe, big_s = _pnorm_parts(a, b, p)
    out = jnp.zeros_like(n_s)  # the tangent of d; that of ‖x·s‖_p is s times it
    if not isinstance(da, SymbolicZero) or not isinstance(db, SymbolicZero):
        dx = (jnp.zeros_like(a) if isinstance(da, SymbolicZero) else da) - (
            0 if isinstance(db, SymbolicZero) else db
        )
        if euclidean:
            g = _unit_direction(a, b, s, n_s)
        else:
            xs = _scale_rows(a, b, s)
            r = jnp.abs(xs) / m_safe[..., None]
            # The sign from the unscaled difference: x·s flushes entries that are negligible
            # in the norm, but for p = 1 their gradient is still ±1.
            g = jnp.sign(a * 0.5 - b * 0.5) * r ** (p - 1) / (big_s ** ((p - 1) / p))[..., None]
        out = out + jnp.sum(g * dx, axis=-1)
    if not isinstance(dp, SymbolicZero) and not euclidean:
        r = jnp.abs(_scale_rows(a, b, s)) / m_safe[..., None]
        rlogr = jnp.sum(jnp.where(r == 0, 0, r**p * jnp.log(jnp.where(r == 0, 1, r))), axis=-1)
        out = out + n_s * (rlogr / (p * big_s) - jnp.log(big_s) / (p * p)) / s * dp
    return (n_s, s, jnp.zeros_like(n_s)), (s * out, jnp.zeros_like(s), out)


_distance.defjvp(_distance_jvp, symbolic_zeros=True)


@jax.custom_jvp
def _normalize(x: jax.Array, eps: jax.Array) -> jax.Array:
    """u = x / max(‖x‖₂, eps) over the last axis, computed as (x·s)/max(‖x·s‖, eps·s) (finite
    for every finite x); 0 at x = 0 with the finite Jacobian I/eps; NaN rows stay NaN."""
    return _normalize_parts(x, eps)[0]


def _normalize_parts(x, eps):
    n, s, n_s = _l2_parts(x)
    floor = n <= eps  # False for NaN
    den_s = jnp.where(floor, eps * s, n_s)
    return _scale_rows(x, None, s) / den_s[..., None], floor, s, den_s


def _normalize_jvp(primals, tangents):
    """du = (dx - [‖x‖ > eps]·u(u·dx))/max(‖x‖, eps) - [‖x‖ <= eps]·u·deps/eps."""
    x, eps = primals
    dx, deps = tangents
    u, floor, s, den_s = _normalize_parts(x, eps)
    out = jnp.zeros_like(u)
    if not isinstance(dx, SymbolicZero):
        proj = jnp.where(floor, 0, jnp.sum(u * dx, axis=-1))
        out = out + (dx - proj[..., None] * u) * (s / den_s)[..., None]
    if not isinstance(deps, SymbolicZero):
        out = out - jnp.where(floor, deps / eps, 0)[..., None] * u
    return u, out


_normalize.defjvp(_normalize_jvp, symbolic_zeros=True)


def _embeddings(fn: str, arg: str, x: Any, min_ndim: int) -> jax.Array:
    x = _checks.check_floating(fn, arg, x)
    if x.ndim < min_ndim:
        what = "[..., D] (feature axis last)" if min_ndim == 1 else "[..., M, D] (a set of M)"
        raise ValueError(
            f"jaxloss.{fn}: `{arg}` must have at least {min_ndim} dimension(s), {what}; got "
            f"{arg}.shape={tuple(x.shape)}."
        )
    return x


def _per_row(fn: str, arg: str, t: jax.Array, emb_name: str, emb: jax.Array) -> None:
    if tuple(t.shape) != tuple(emb.shape[:-1]):
        raise ValueError(
            f"jaxloss.{fn}: `{arg}` must have the shape of `{emb_name}` without its last "
            f"(feature) axis, {tuple(emb.shape[:-1])}; got {arg}.shape={tuple(t.shape)}."
        )


# ----------------------------------------------------------------------------------------------
# Scores


def _sign_scores(fn: str, predictions: Any, targets: Any, margin: Any):
    _checks.require(fn, "margin", margin, ">= 0")
    x = _checks.check_floating(fn, "predictions", predictions)
    t = _checks.check_real(fn, "targets", targets)
    _checks.check_same_shape(fn, "predictions", x, "targets", t)
    dtype = _checks.compute_dtype(x, t)
    y, valid = _binary_targets(fn, "targets", t, (-1, 1), dtype)
    z = jnp.asarray(margin, dtype) - y * x.astype(dtype)
    return z if valid is None else z + _nan_unless(valid)


@register(plot="signed")
def hinge(predictions: Any, targets: Any, *, margin: Any = 1.0) -> jax.Array:
    """Hinge loss for binary classification with {-1, +1} targets, elementwise.

    Math (x = score, y = target in {-1, +1}, m = margin):  l = max(0, m - y·x).

    Gradient: dl/dx = -y where y·x <= m (the kink y·x = m counts as active), else 0.
    dl/dm = 1 where y·x <= m, else 0.

    Args:
      predictions: floating array of scores, any shape.
      targets: real array of the same shape, values -1 or +1 (not {0, 1}: a 0 target would give
        the constant loss m with no gradient; such targets raise a ValueError, or give NaN under
        ``jit``). Convert {0, 1} labels with ``2 * labels - 1``.
      margin: m >= 0 (may be traced).

    Returns:
      Array of the shape of ``predictions``. Same as ``optax.hinge_loss`` (m = 1) and
      ``keras.losses.Hinge`` per element (Keras averages the last axis and converts {0, 1}
      labels silently; jaxloss rejects them).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.hinge(jnp.array([2.0, 0.5, -1.0]), jnp.array([1.0, 1.0, 1.0])).tolist()
      [0.0, 0.5, 2.0]

    Reference: Cortes & Vapnik, "Support-Vector Networks", Machine Learning 1995.
    """
    return _active(_sign_scores("hinge", predictions, targets, margin))


@register(plot="signed")
def squared_hinge(predictions: Any, targets: Any, *, margin: Any = 1.0) -> jax.Array:
    """Squared hinge loss with {-1, +1} targets, elementwise (differentiable everywhere).

    Math (x = score, y in {-1, +1}, m = margin):  l = max(0, m - y·x)².

    Gradient: dl/dx = -2y·max(0, m - y·x) (continuous; 0 at the kink y·x = m).
    dl/dm = 2·max(0, m - y·x).

    Args:
      predictions: floating array of scores, any shape.
      targets: real array of the same shape, values -1 or +1 (validated as in :func:`hinge`).
      margin: m >= 0 (may be traced).

    Returns:
      Array of the shape of ``predictions``. Same as ``keras.losses.SquaredHinge`` per element
      (Keras averages the last axis and converts {0, 1} labels silently).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.squared_hinge(jnp.array([2.0, 0.5, -1.0]), jnp.ones(3)).tolist()
      [0.0, 0.25, 4.0]

    Reference: Rennie & Srebro, "Loss Functions for Preference Levels", IJCAI 2005 workshop;
    Lee & Lin, "A Study on L2-Loss (Squared Hinge-Loss) Multiclass SVM", Neural Comput. 2013.
    """
    z = _sign_scores("squared_hinge", predictions, targets, margin)
    h = _active(z)  # the derivative 2·max(0, z) is 0 at the kink whichever side
    return h * h


_KINDS = ("crammer_singer", "weston_watkins")


@register(plot="softmax")
def multiclass_hinge(
    logits: Any,
    labels: Any,
    *,
    margin: Any = 1.0,
    kind: str = "crammer_singer",
    axis: int = -1,
    ignore_index: int | None = None,
) -> jax.Array:
    """Multi-class hinge loss with integer labels, one value per example.

    Math (z = scores, y = label, m = margin, v_c = m + z_c - z_y for c ≠ y):
      kind="crammer_singer" (default; the largest violation):
        l = max(0, max_{c≠y} v_c) = max_c (z_c + m·[c ≠ y]) - z_y;
      kind="weston_watkins" (every violation):
        l = sum_{c≠y} max(0, v_c).

    Gradient: Crammer–Singer: dl/dz = e_{c*} - e_y where c* = argmax_{c≠y} v_c and v_{c*} >= 0
    (active at the kink), else 0; classes tied for the largest violation share the gradient
    equally (a valid subgradient). Weston–Watkins: dl/dz_c = [v_c >= 0] for c ≠ y and
    dl/dz_y = -#{c ≠ y : v_c >= 0}. dl/dm = [v_{c*} >= 0] (CS), #{c ≠ y : v_c >= 0} (WW).
    Ignored examples: value 0, gradient 0
    (a NaN in an ignored example's logits still makes its gradient row NaN). Out-of-range
    labels raise a ValueError when concrete and give NaN under ``jit``.

    Args:
      logits: floating array [..., C, ...] of scores with the class axis ``axis``.
      labels: integer array, the logits' shape without ``axis``.
      margin: m >= 0 (may be traced).
      kind: ``"crammer_singer"`` or ``"weston_watkins"``.
      axis: the class axis.
      ignore_index: optional label value whose examples give 0.

    Returns:
      Array of the shape of ``labels``. ``kind="crammer_singer"`` with m = 1 equals
      ``optax.multiclass_hinge_loss``, and Keras's ``CategoricalHinge`` (one-hot targets) where
      max_{c≠y} z_c >= 0 (Keras's max runs over (1 - onehot)·z, which includes a 0 for the true
      class); ``kind="weston_watkins"`` divided by C equals
      ``torch.nn.MultiMarginLoss(p=1, margin=m, reduction='none')``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> z = jnp.array([[2.0, 1.5, 0.0]])
      >>> jaxloss.multiclass_hinge(z, jnp.array([0])).tolist()
      [0.5]
      >>> jaxloss.multiclass_hinge(z, jnp.array([2]), kind="weston_watkins").tolist()
      [5.5]

    References: Crammer & Singer, "On the Algorithmic Implementation of Multiclass Kernel-based
    Vector Machines", JMLR 2001; Weston & Watkins, "Support Vector Machines for Multi-Class
    Pattern Recognition", ESANN 1999.
    """
    fn = "multiclass_hinge"
    _checks.require(fn, "margin", margin, ">= 0")
    if kind not in _KINDS:
        raise ValueError(f"jaxloss.{fn}: `kind` must be one of {_KINDS}; got {kind!r}.")
    z, y, axis, num_classes, _, dtype = _prepare_integer(
        fn, logits, labels, axis, ignore_index, None
    )
    is_label = jax.lax.broadcasted_iota(y.dtype, z.shape, axis) == jnp.expand_dims(y, axis)
    # The label score by a gather (labels clipped; _finish_integer_loss makes out-of-range NaN):
    # a select summed over the class axis costs XLA:CPU a full-size temporary (bench/).
    y_safe = jnp.expand_dims(jnp.clip(y, 0, num_classes - 1), axis)
    z_y = jnp.take_along_axis(z, y_safe, axis)
    v = jnp.asarray(margin, dtype) + z - z_y
    if kind == "crammer_singer":
        worst = jnp.max(jnp.where(is_label, -jnp.inf, v), axis=axis)
        loss = _active(worst)  # -inf (a single class) gives 0 with a zero gradient
    else:
        loss = jnp.sum(jnp.where(is_label, 0, _active(v)), axis=axis)
    # A NaN score makes its example's value NaN (max and sum keep it); nan_gradient makes the
    # whole example's gradient NaN too (the max's backward and Weston–Watkins' inactive
    # classes route a zero to some entries).
    return _finish_integer_loss(nan_gradient(loss, z, axis), y, num_classes, ignore_index, True)


@register(plot="ranking")
def margin_ranking(scores_1: Any, scores_2: Any, targets: Any, *, margin: Any = 0.0) -> jax.Array:
    """Pairwise margin ranking loss, elementwise: which of two scores should be larger.

    Math (x1, x2 = scores, y = +1 if x1 should rank higher, -1 if x2 should, m = margin):
      l = max(0, m - y·(x1 - x2)).
    Equal to :func:`hinge` on the score difference: ``hinge(x1 - x2, y, margin=m)``.

    Gradient: dl/dx1 = -y, dl/dx2 = +y where y·(x1 - x2) <= m (active at the kink, so tied
    scores with the default m = 0 still get a gradient, as in torch), else 0.
    dl/dm = 1 where active, else 0.

    Args:
      scores_1: floating array, any shape (data first: the two score arrays, then the targets,
        torch's ``(input1, input2, target)`` order).
      scores_2: floating array of the same shape.
      targets: real array of the same shape, values -1 or +1 (validated as in :func:`hinge`).
      margin: m >= 0 (may be traced).

    Returns:
      Array of the shape of ``scores_1``. Same as
      ``torch.nn.MarginRankingLoss(margin=m, reduction='none')``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.margin_ranking(jnp.array([3.0, 1.0]), jnp.array([1.0, 1.5]),
      ...                        jnp.array([1.0, 1.0]), margin=0.5).tolist()
      [0.0, 1.0]

    Reference: Herbrich, Graepel & Obermayer, "Large Margin Rank Boundaries for Ordinal
    Regression", Advances in Large Margin Classifiers, MIT Press 2000.
    """
    fn = "margin_ranking"
    _checks.require(fn, "margin", margin, ">= 0")
    x1 = _checks.check_floating(fn, "scores_1", scores_1)
    x2 = _checks.check_floating(fn, "scores_2", scores_2)
    t = _checks.check_real(fn, "targets", targets)
    _checks.check_same_shape(fn, "scores_1", x1, "scores_2", x2)
    _checks.check_same_shape(fn, "scores_1", x1, "targets", t)
    dtype = _checks.compute_dtype(x1, x2, t)
    y, valid = _binary_targets(fn, "targets", t, (-1, 1), dtype)
    z = jnp.asarray(margin, dtype) - y * (x1.astype(dtype) - x2.astype(dtype))
    return _active(z if valid is None else z + _nan_unless(valid))


# ----------------------------------------------------------------------------------------------
# Pairs and triplets of embeddings


def _pair(fn: str, e1: Any, e2: Any, names: tuple[str, str] = ("embeddings_1", "embeddings_2")):
    a = _embeddings(fn, names[0], e1, 1)
    b = _checks.check_floating(fn, names[1], e2)
    _checks.check_same_shape(fn, names[0], a, names[1], b)
    return a, b


@register(plot="cosine")
def cosine_embedding(
    embeddings_1: Any, embeddings_2: Any, targets: Any, *, margin: Any = 0.0, eps: Any = 1e-8
) -> jax.Array:
    """Cosine embedding loss for pairs marked similar (+1) or dissimilar (-1), one value per pair.

    Math (c = cos(x1, x2) = u1·u2 with u = x / max(‖x‖₂, eps), m = margin):
      l = 1 - c            if y = +1,
      l = max(0, c - m)    if y = -1.
    A zero vector has u = 0, so c = 0: l = 1 (similar) or max(0, -m) (dissimilar).

    Gradient: dc/dx1 = (u2 - [‖x1‖ > eps]·c·u1) / max(‖x1‖, eps) (symmetric for x2); finite at
    zero vectors (magnitude up to 1/eps: the cosine varies at rate 1/‖x‖ near 0 in any case).
    dl/dx = -dc/dx (y = +1); [c >= m]·dc/dx (y = -1; active at the kink). dl/dm = -[c >= m]
    (y = -1).

    Args:
      embeddings_1: floating array [..., D], feature axis last.
      embeddings_2: floating array of the same shape.
      targets: real array [...] (the embeddings' shape without D), values -1 or +1 (validated as
        in :func:`hinge`).
      margin: m in [-1, 1] (torch suggests [0, 0.5]; may be traced).
      eps: floor of the norms, > 0 (``torch.nn.functional.cosine_similarity``'s default).

    Returns:
      Array of the embeddings' shape without the last axis. Same as
      ``torch.nn.CosineEmbeddingLoss(margin=m, reduction='none')`` away from zero vectors (torch
      adds 1e-12 to the squared norms instead of flooring them). ``1 - optax.cosine_similarity``
      for similar pairs, which has NaN gradients at zero vectors; jaxloss's are finite.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> a = jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
      >>> b = jnp.array([[0.0, 2.0], [1.0, 1.0], [1.0, 0.0]])
      >>> v = jaxloss.cosine_embedding(a, b, jnp.array([1.0, -1.0, 1.0]), margin=0.5)
      >>> [round(x, 4) for x in v.tolist()]
      [1.0, 0.2071, 1.0]
    """
    fn = "cosine_embedding"
    _require_between(fn, "margin", margin, -1.0, 1.0)
    _checks.require(fn, "eps", eps, "> 0")
    x1, x2 = _pair(fn, embeddings_1, embeddings_2)
    t = _checks.check_real(fn, "targets", targets)
    _per_row(fn, "targets", t, "embeddings_1", x1)
    dtype = _checks.compute_dtype(x1, x2, t)
    y, valid = _binary_targets(fn, "targets", t, (-1, 1), dtype)
    e = jnp.asarray(eps, dtype)
    c = jnp.sum(_normalize(x1.astype(dtype), e) * _normalize(x2.astype(dtype), e), axis=-1)
    loss = jnp.where(y > 0, 1 - c, _active(c - jnp.asarray(margin, dtype)))
    return _finish(loss, valid)


@register(plot="triplet")
def triplet_margin(
    anchors: Any,
    positives: Any,
    negatives: Any,
    *,
    margin: Any = 1.0,
    p: Any = 2.0,
    swap: bool = False,
) -> jax.Array:
    """Triplet margin loss with true p-norm distances, one value per triplet.

    Math (a, p, n = anchor, positive, negative; d(u, v) = ‖u - v‖_p = (sum_i |u_i - v_i|^p)^(1/p)):
      l = max(0, d(a, p) - d(a, n) + margin);
    with ``swap=True`` d(a, n) is replaced by min(d(a, n), d(p, n)) (the harder negative; the
    anchor's distance is taken at a tie).

    Gradient: with g(x) = ∇‖x‖_p = sign(x)·|x|^(p-1) / ‖x‖_p^(p-1) (g = sign(x) for p = 1, with
    sign(0) = 0; g(0) = 0 at coincident points, a valid subgradient) and s = [l's argument >= 0]
    (active at the kink): dl/da = s·(g(a - p) - g(a - n)), dl/dp = -s·g(a - p),
    dl/dn = s·g(a - n) (without swap; with swap the chosen negative distance is differentiated).
    dl/dmargin = s. The distances are exact (no eps is added; see the module's notes on norms):
    large inputs or large p do not overflow, and the difference of two distances beyond float's
    range is still computed (on their common power-of-two scale).

    Args:
      anchors: floating array [..., D], feature axis last.
      positives: floating array of the same shape.
      negatives: floating array of the same shape.
      margin: >= 0 (may be traced).
      p: norm degree >= 1 (2: Euclidean, 1: Manhattan).
      swap: use the harder of the two negative distances (Balntas et al.).

    Returns:
      Array of the shape ``anchors.shape[:-1]``. Same as
      ``torch.nn.TripletMarginLoss(margin, p, swap, reduction='none')`` except that torch
      computes ‖u - v + 1e-6‖_p. ``optax.triplet_margin_loss`` drops the absolute value inside
      the norm: for p = 1 it gives 5.0 on anchor (0, 0), positive (1, -1), negative (2, 2) where
      the loss is 0, and NaN for p = 3.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> a, pos, neg = jnp.array([[0.0, 0.0]]), jnp.array([[1.0, -1.0]]), jnp.array([[2.0, 2.0]])
      >>> jaxloss.triplet_margin(a, pos, neg, p=1).tolist(), jaxloss.triplet_margin(a, pos, neg,
      ...                                                        p=1, margin=3.0).tolist()
      ([0.0], [1.0])

    References: Schroff, Kalenichenko & Philbin, "FaceNet", CVPR 2015; Balntas, Riba, Ponsa &
    Mikolajczyk, "Learning local feature descriptors with triplets and shallow convolutional
    neural networks", BMVC 2016 (swap).
    """
    fn = "triplet_margin"
    _checks.require(fn, "margin", margin, ">= 0")
    if not isinstance(swap, (bool, np.bool_)):
        raise ValueError(f"jaxloss.{fn}: `swap` must be a Python bool; got {swap!r}.")
    _require_finite(fn, "p", p)
    pv = _checks.concrete_float(p)
    if pv is not None and pv < 1:
        raise ValueError(f"jaxloss.{fn}: `p` must be finite and >= 1; got {pv!r}.")
    a, pos = _pair(fn, anchors, positives, ("anchors", "positives"))
    neg = _checks.check_floating(fn, "negatives", negatives)
    _checks.check_same_shape(fn, "anchors", a, "negatives", neg)
    dtype = _checks.compute_dtype(a, pos, neg)
    a, pos, neg = a.astype(dtype), pos.astype(dtype), neg.astype(dtype)
    euclidean, p_arr = pv == 2.0, jnp.asarray(p, dtype)
    # Distances as (‖x·s‖, s) with s a power of two per row, compared and subtracted on their
    # common scale: exact, and finite where both distances are beyond range (s = 1, and the
    # plain d_ap - d_an, on the one-pass path).
    n_ap, s_ap, t_ap = _distance(a, pos, p_arr, euclidean)
    n_an, s_an, t_an = _distance(a, neg, p_arr, euclidean)
    if swap:
        n_pn, s_pn, t_pn = _distance(pos, neg, p_arr, euclidean)
        v_an, v_pn, _ = _on_common_scale(n_an, s_an, n_pn, s_pn)
        use_an = v_an <= v_pn
        n_an, s_an = jnp.where(use_an, n_an, n_pn), jnp.where(use_an, s_an, s_pn)
        t_an = jnp.where(use_an, t_an, t_pn)
    v_ap, v_an, s_min = _on_common_scale(n_ap, s_ap, n_an, s_an)
    # The value from the scaled norms; the gradient from the distances' own tangents (t = 0).
    diff = jax.lax.stop_gradient((v_ap - v_an) / s_min) + (t_ap - t_an)
    return _active(diff + jnp.asarray(margin, dtype))


def _on_common_scale(n1, s1, n2, s2):
    """(n1·s/s1, n2·s/s2, s) with s = min(s1, s2): two scaled norms on one scale (exact; the
    smaller one may flush to 0 where the two differ by more than float's range)."""
    s = jnp.minimum(s1, s2)
    return n1 * (s / s1), n2 * (s / s2), s


@jax.custom_jvp
def _contrastive_terms(x1, x2, y, margin):
    return _contrastive_parts(x1, x2, y, margin)[0]


def _contrastive_parts(x1, x2, y, margin):
    """½·y·d² + ½·(1 - y)·max(0, m - d)² with d = ‖x1 - x2‖₂ exact (:func:`_l2_parts`) and the
    similar term 0 for a dissimilar pair even where d² overflows (0·inf)."""
    d, s, n_s = _l2_parts(x1, x2)
    h = jnp.maximum(margin - d, 0)
    half_square = 0.5 * d * d
    loss = jnp.where(y == 0, 0, y * half_square) + (1 - y) * (0.5 * h * h)
    return loss, s, n_s, h, half_square


def _contrastive_terms_jvp(primals, tangents):
    """dl/dx1 = y·(x1 - x2) - (1 - y)·h·u = -dl/dx2 (u = (x1 - x2)/d, 0 at d = 0; the first
    term 0 for y = 0 even where x1 - x2 overflows); dl/dy = ½d² - ½h²; dl/dm = (1 - y)·h."""
    x1, x2, y, margin = primals
    dx1, dx2, dy, dm = tangents
    loss, s, n_s, h, half_square = _contrastive_parts(x1, x2, y, margin)
    out = jnp.zeros_like(loss)
    if not isinstance(dx1, SymbolicZero) or not isinstance(dx2, SymbolicZero):
        dx = (jnp.zeros_like(x1) if isinstance(dx1, SymbolicZero) else dx1) - (
            0 if isinstance(dx2, SymbolicZero) else dx2
        )
        u = _unit_direction(x1, x2, s, n_s)
        g = jnp.where((y == 0)[..., None], 0, y[..., None] * (x1 - x2)) - (
            ((1 - y) * h)[..., None] * u
        )
        out = out + jnp.sum(g * dx, axis=-1)
    if not isinstance(dy, SymbolicZero):
        out = out + (half_square - 0.5 * h * h) * dy
    if not isinstance(dm, SymbolicZero):
        out = out + (1 - y) * h * dm
    return loss, out


_contrastive_terms.defjvp(_contrastive_terms_jvp, symbolic_zeros=True)


@register(plot="contrastive")
def contrastive(
    embeddings_1: Any, embeddings_2: Any, targets: Any, *, margin: Any = 1.0
) -> jax.Array:
    """Contrastive loss of Hadsell et al. for similar (1) / dissimilar (0) pairs, one per pair.

    Math (d = ‖x1 - x2‖₂, y = 1 for a similar pair, 0 for a dissimilar one, m = margin):
      l = ½·y·d² + ½·(1 - y)·max(0, m - d)².
    (The paper writes Y = 0 for similar pairs; here 1 means similar, as in TF Addons.)

    Gradient: dl/dx1 = y·(x1 - x2) - (1 - y)·max(0, m - d)·(x1 - x2)/d, dl/dx2 = -dl/dx1; at
    coincident dissimilar points (d = 0) the direction (x1 - x2)/d is undefined and taken as 0.
    dl/dm = (1 - y)·max(0, m - d). Continuous everywhere (the hinge is squared).

    Args:
      embeddings_1: floating array [..., D], feature axis last.
      embeddings_2: floating array of the same shape.
      targets: real array [...] (the embeddings' shape without D), values 0 or 1 (bool works);
        other values raise a ValueError, or give NaN under ``jit``.
      margin: m > 0 (may be traced).

    Returns:
      Array of the embeddings' shape without the last axis. TF Addons'
      ``tfa.losses.contrastive_loss`` takes distances and has no ½: it is 2·l.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> a, b = jnp.array([[0.0, 0.0], [0.0, 0.0]]), jnp.array([[3.0, 4.0], [0.3, 0.4]])
      >>> [round(x, 4) for x in jaxloss.contrastive(a, b, jnp.array([1, 0])).tolist()]
      [12.5, 0.125]

    Reference: Hadsell, Chopra & LeCun, "Dimensionality Reduction by Learning an Invariant
    Mapping", CVPR 2006.
    """
    fn = "contrastive"
    _checks.require(fn, "margin", margin, "> 0")
    x1, x2 = _pair(fn, embeddings_1, embeddings_2)
    t = _checks.check_real(fn, "targets", targets)
    _per_row(fn, "targets", t, "embeddings_1", x1)
    dtype = _checks.compute_dtype(x1, x2, t)
    y, valid = _binary_targets(fn, "targets", t, (0, 1), dtype)
    loss = _contrastive_terms(x1.astype(dtype), x2.astype(dtype), y, jnp.asarray(margin, dtype))
    return _finish(loss, valid)


# ----------------------------------------------------------------------------------------------
# Sets of embeddings


def _set_similarities(
    fn: str, embeddings: Any, labels: Any, temperature: Any, eps: Any, one_positive: bool = False
):
    _checks.require(fn, "temperature", temperature, "> 0")
    _checks.require(fn, "eps", eps, "> 0")
    e = _embeddings(fn, "embeddings", embeddings, 2)
    y = _checks.check_integer(fn, "labels", labels)
    _per_row(fn, "labels", y, "embeddings", e)
    checked = one_positive and _check_one_positive(fn, y)  # before any computation
    dtype = _checks.compute_dtype(e)
    u = _normalize(e.astype(dtype), jnp.asarray(eps, dtype))
    logits = jnp.einsum("...id,...jd->...ij", u, u) / jnp.asarray(temperature, dtype)
    m = e.shape[-2]
    eye = jax.lax.broadcasted_iota(jnp.int32, (m, m), 0) == jax.lax.broadcasted_iota(
        jnp.int32, (m, m), 1
    )
    positive = (y[..., :, None] == y[..., None, :]) & ~eye
    lse, _ = logsumexp(logits, axis=-1, where=~eye)
    num_positive = jnp.sum(positive, axis=-1)
    positive_logits = jnp.sum(jnp.where(positive, logits, 0), axis=-1)
    return checked, lse, positive_logits, num_positive


def _check_one_positive(fn: str, y: jax.Array) -> bool:
    """True when concrete labels give every anchor exactly one positive (ValueError if not);
    False when the labels are traced (the caller marks bad anchors with NaN)."""
    try:
        concrete = np.asarray(y)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return False
    counts = (concrete[..., :, None] == concrete[..., None, :]).sum(-1) - 1
    if (counts != 1).any():
        raise ValueError(
            f"jaxloss.{fn}: `labels` must give every anchor exactly one positive (each label "
            f"exactly twice per set); got anchors with {sorted(set(counts.ravel().tolist()))} "
            "positives. For several positives per anchor use "
            "jaxloss.supervised_contrastive."
        )
    return True


@register(plot="nce")
def info_nce(
    embeddings: Any, labels: Any, *, temperature: Any = 0.07, eps: Any = 1e-8
) -> jax.Array:
    """InfoNCE / NT-Xent (SimCLR) over a set of embeddings, one value per anchor.

    Each embedding is an anchor; its positive is the one other member of the set with the same
    label; every other member is a negative. SimCLR's 2N views stacked as ``[z1; z2]`` are the
    labels ``jnp.tile(jnp.arange(N), 2)`` (the (i, i + N) pairing).

    Math (u_i = e_i / max(‖e_i‖₂, eps), s_ik = u_i·u_k / τ, j(i) = the positive of i):
      l_i = -log[ exp(s_{i,j(i)}) / sum_{k≠i} exp(s_ik) ] = logsumexp_{k≠i} s_ik - s_{i,j(i)}.

    Gradient: with P_ik = softmax_{k≠i}(s_i·)_k (P_ii = 0) and G_ik = P_ik - [k = j(i)],
    for a cotangent w on l: dL/ds_ik = w_i·G_ik, dL/du = (A + Aᵀ)·U/τ with A_ik = w_i·G_ik, then
    dL/de = (g - [‖e‖ > eps]·(u·g)·u) / max(‖e‖, eps) for each row g of dL/du.
    dl_i/dτ = -(1/τ)·sum_k G_ik·s_ik.

    Every anchor must have exactly one positive (each label exactly twice per set): concrete
    labels are checked (ValueError); under ``jit``/``vmap`` an anchor with zero or several
    positives gives NaN. For several positives use :func:`supervised_contrastive`.

    Args:
      embeddings: floating array [..., M, D]: sets of M embeddings (e.g. M = 2N views) of
        dimension D; leading axes are independent sets.
      labels: integer array [..., M], identities that define the positive pairs.
      temperature: τ > 0 (may be traced/learned).
      eps: floor of the norms in the normalisation, > 0.

    Returns:
      Array [..., M], one value per anchor; ``jaxloss.mean`` of it is SimCLR's loss. optax's
      ``ntxent(embeddings, labels, temperature)`` returns that mean as a scalar (its
      denominator leaves out the other positives, which is the same thing with one positive).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> z1 = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> z = jnp.concatenate([z1, 3.0 * z1])  # [z1; z2], N = 2: the (i, i + N) pairing
      >>> v = jaxloss.info_nce(z, jnp.tile(jnp.arange(2), 2), temperature=0.5)
      >>> [round(x, 4) for x in v.tolist()]  # log(e² + 2) - 2
      [0.2395, 0.2395, 0.2395, 0.2395]

    References: van den Oord, Li & Vinyals, "Representation Learning with Contrastive
    Predictive Coding", 2018; Chen, Kornblith, Norouzi & Hinton, "A Simple Framework for
    Contrastive Learning of Visual Representations" (SimCLR), ICML 2020.
    """
    checked, lse, positive_logits, num_positive = _set_similarities(
        "info_nce", embeddings, labels, temperature, eps, one_positive=True
    )
    loss = lse - positive_logits
    # A NaN in one member makes every logsumexp of its set NaN: every value of the set, and
    # (_nan_grad) the set's whole gradient.
    return _nan_grad(loss if checked else jnp.where(num_positive == 1, loss, jnp.nan))


@register(plot="nce")
def supervised_contrastive(
    embeddings: Any, labels: Any, *, temperature: Any = 0.07, eps: Any = 1e-8
) -> jax.Array:
    """Supervised contrastive loss (SupCon, L_out), one value per anchor.

    Every member of a set with the same label as the anchor is a positive; all other members
    (other positives included) form the denominator.

    Math (u_i = e_i / max(‖e_i‖₂, eps), s_ik = u_i·u_k / τ, P(i) = {p ≠ i : y_p = y_i}):
      l_i = -(1/|P(i)|) sum_{p∈P(i)} log[ exp(s_ip) / sum_{k≠i} exp(s_ik) ]
          = logsumexp_{k≠i} s_ik - mean_{p∈P(i)} s_ip;
      l_i = 0 (with a zero gradient) for an anchor with no positive.

    Gradient: as :func:`info_nce` with G_ik = P_ik - [k ∈ P(i)]/|P(i)| (0 for anchors without a
    positive). dl_i/dτ = -(1/τ)·sum_k G_ik·s_ik.

    With exactly one positive per anchor this *is* :func:`info_nce` (identical values and
    gradients).

    Anchors without a positive give 0 and should usually not count in the mean:
    ``counted = (labels[..., :, None] == labels[..., None, :]).sum(-1) > 1`` and
    ``jaxloss.mean(values, where=counted)``.

    Args:
      embeddings: floating array [..., M, D]: sets of M embeddings of dimension D.
      labels: integer array [..., M], class labels.
      temperature: τ > 0 (may be traced/learned).
      eps: floor of the norms in the normalisation, > 0.

    Returns:
      Array [..., M], one value per anchor. The reference implementation (SupContrast) also
      multiplies by τ / base_temperature (1 with its defaults); multiply the values for that.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> z = jnp.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
      >>> v = jaxloss.supervised_contrastive(z, jnp.array([0, 0, 0, 1]), temperature=1.0)
      >>> [round(x, 4) for x in v.tolist()]
      [0.862, 0.862, 0.862, 0.0]

    Reference: Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020 (eq. 2, L_out).
    """
    _, lse, positive_logits, num_positive = _set_similarities(
        "supervised_contrastive", embeddings, labels, temperature, eps
    )
    has_positive = num_positive > 0
    dtype = lse.dtype
    mean_positive = positive_logits / jnp.maximum(num_positive, 1).astype(dtype)
    # An anchor without a positive gives 0, or NaN where its set holds a NaN (every logsumexp
    # of the set is then NaN): a NaN member makes every value of its set NaN.
    no_positive = jnp.where(lse == lse, 0, lse)
    return _nan_grad(jnp.where(has_positive, lse - mean_positive, no_positive))


@register(plot="siglip")
def siglip(
    image_embeddings: Any,
    text_embeddings: Any,
    *,
    logit_scale: Any = 10.0,
    logit_bias: Any = -10.0,
    eps: Any = 1e-8,
) -> jax.Array:
    """SigLIP sigmoid pairwise loss, one value per image (the sum over its N pairs).

    Image i and text i form a positive pair; image i with every text j ≠ i is a negative pair.

    Math (x̂_i, ŷ_j = embeddings / max(‖·‖₂, eps), t = logit_scale, b = logit_bias,
    z_ij = +1 if i = j else -1, s_ij = t·x̂_i·ŷ_j + b):
      l_i = sum_j -log σ(z_ij·s_ij) = sum_j softplus(-z_ij·s_ij),
    so that ``jaxloss.mean(l)`` over the N images is the paper's loss
    -(1/N) sum_i sum_j log σ(z_ij (t x̂_i·ŷ_j + b)).

    Gradient: with g_ij = -z_ij·σ(-z_ij·s_ij) (= σ(s_ij) - [i = j]) and a cotangent w on l:
    dL/dx̂_i = t·w_i sum_j g_ij ŷ_j, dL/dŷ_j = t·sum_i w_i g_ij x̂_i, then through the
    normalisation as in :func:`info_nce`. dl_i/dt = sum_j g_ij x̂_i·ŷ_j, dl_i/db = sum_j g_ij.

    Args:
      image_embeddings: floating array [..., N, D]; leading axes are independent sets
        (negatives are taken within a set only, so they are not chunks of one batch).
      text_embeddings: floating array of the same shape; row i pairs with image row i.
      logit_scale: t > 0, may be traced. The paper learns t = exp(t') with t' = log 10 at
        initialisation: pass ``jnp.exp(log_scale)``.
      logit_bias: b, may be traced (paper initialisation -10).
      eps: floor of the norms in the normalisation, > 0.

    Returns:
      Array [..., N], per image. The per-text values are ``siglip(text, image, ...)``; both
      sum to the same total. open_clip's ``SigLipLoss`` returns the paper's scalar.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> x = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> [round(v, 4) for v in jaxloss.siglip(x, x, logit_scale=10.0, logit_bias=-5.0).tolist()]
      [0.0134, 0.0134]

    Reference: Zhai, Mustafa, Kolesnikov & Beyer, "Sigmoid Loss for Language Image
    Pre-Training", ICCV 2023.
    """
    fn = "siglip"
    _checks.require(fn, "logit_scale", logit_scale, "> 0")
    _require_finite(fn, "logit_bias", logit_bias)
    _checks.require(fn, "eps", eps, "> 0")
    x = _embeddings(fn, "image_embeddings", image_embeddings, 2)
    t = _checks.check_floating(fn, "text_embeddings", text_embeddings)
    _checks.check_same_shape(fn, "image_embeddings", x, "text_embeddings", t)
    dtype = _checks.compute_dtype(x, t)
    e = jnp.asarray(eps, dtype)
    u, v = _normalize(x.astype(dtype), e), _normalize(t.astype(dtype), e)
    s = jnp.asarray(logit_scale, dtype) * jnp.einsum("...id,...jd->...ij", u, v)
    s = s + jnp.asarray(logit_bias, dtype)
    n = x.shape[-2]
    eye = jax.lax.broadcasted_iota(jnp.int32, (n, n), 0) == jax.lax.broadcasted_iota(
        jnp.int32, (n, n), 1
    )
    loss = jnp.sum(softplus(jnp.where(eye, -s, s)), axis=-1)
    # A NaN text embedding reaches every image's value; a NaN image embedding only its own row:
    # carry it to the whole set (a set is one example), leaving clean sets bit-for-bit alone.
    total = jnp.sum(loss, axis=-1, keepdims=True)
    return _nan_grad(loss + jnp.where(total == total, 0, total))
