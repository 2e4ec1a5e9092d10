"""Divergences between distributions over a class axis, one value per example: Kullback–Leibler
(from probability or log-probability targets) and Jensen–Shannon.

Conventions shared by every loss here. The class axis ``axis`` is reduced; ``where`` (a boolean
class mask with the inputs' ndim) leaves classes out. 0·log 0 = 0 (``_core.numerics.xlogx``).

float16/bfloat16 inputs are computed in float32 and the result is float32; float64 stays float64.
Concrete inputs are range-checked (log-probabilities <= 0, probabilities in [0, 1]; NaN passes and
gives NaN); traced ones are used as given. A NaN anywhere in an example (either input) makes its
value NaN and its whole gradient row w.r.t. the predictions NaN (``_core.numerics.nan_gradient``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._core import checks as _checks
from ._core.ad import is_zero
from ._core.labels import class_mask, normalise_axis
from ._core.numerics import nan_gradient, nan_of, xlogx
from ._core.registry import register

__all__ = ["jensen_shannon_divergence", "kl_divergence", "kl_divergence_with_log_targets"]

_LOGITS_HINT = (
    "For logits pass jax.nn.log_softmax(logits), or use jaxloss.softmax_cross_entropy, which "
    "takes logits and probability targets (the same gradient w.r.t. the logits)."
)
_LOG_HINT = "Pass log-probabilities, e.g. jax.nn.log_softmax(logits) or jnp.log(probabilities)."


def _prepare(
    fn: str, a_name: str, a: ArrayLike, b_name: str, b: Any, axis: int, where: ArrayLike | None
):
    a = _checks.check_floating(fn, a_name, a)
    b = _checks.check_floating(fn, b_name, b)
    _checks.check_same_shape(fn, a_name, a, b_name, b)
    axis = normalise_axis(fn, axis, a.ndim, a_name)
    dtype = _checks.compute_dtype(a, b)
    a, b = a.astype(dtype), b.astype(dtype)
    mask = class_mask(fn, where, a)
    return a, b, axis, mask


@register(plot="divergence")
def kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    """KL(targets ‖ predictions) from log-predictions and probability targets, per example.

    Math:  l = sum_c t_c (log t_c - log_predictions_c), with 0·log 0 = 0 and 0·(-inf) = 0
    (a zero target ignores its prediction, even a -inf log-prediction).

    Gradient: dl/dlog_predictions_c = -t_c (exact, including t_c = 0).
    dl/dt_c = log t_c + 1 - log_predictions_c for t_c > 0; at t_c = 0, where the true derivative
    is -inf, the finite convention d(t log t)/dt = 0 gives -log_predictions_c (0 where that is
    -inf). Never NaN (optax's ``kl_divergence`` gives NaN here).

    A NaN anywhere in an example gives NaN, value and the whole gradient row. Concrete inputs
    outside their range (log_predictions > 0, targets outside [0, 1]) raise a ValueError: logits
    are not log-probabilities (pass ``jax.nn.log_softmax(logits)``, or use
    :func:`jaxloss.softmax_cross_entropy` on logits).

    Args:
      log_predictions: floating array [..., C, ...] of log-probabilities.
      targets: floating array of the same shape, probabilities (each row sums to 1).
      axis: the class axis.
      where: optional boolean class mask with the inputs' ndim; masked classes are left out.

    Returns:
      Array of the shape of the inputs without ``axis``. Same as
      ``torch.nn.functional.kl_div(log_predictions, targets, reduction='none').sum(axis)``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> float(jaxloss.kl_divergence(jnp.log(jnp.array([0.5, 0.5])), jnp.array([1.0, 0.0])))
      0.6931471824645996
    """
    fn = "kl_divergence"
    lp, t, axis, mask = _prepare(
        fn, "log_predictions", log_predictions, "targets", targets, axis, where
    )
    _checks.check_values(
        fn,
        "log_predictions",
        log_predictions,
        "<= 0",
        where=where,
        allow_nan=True,
        hint=_LOGITS_HINT,
    )
    _checks.check_values(
        fn,
        "targets",
        targets,
        "in [0, 1]",
        where=where,
        allow_nan=True,
        hint="Targets are probabilities; for log-probabilities use "
        "jaxloss.kl_divergence_with_log_targets.",
    )
    terms = _kl_terms(lp, t)
    if mask is not None:
        terms = jnp.where(mask, terms, 0)
    return nan_gradient(jnp.sum(terms, axis=axis), lp, axis)


@register(plot="divergence_log")
def kl_divergence_with_log_targets(
    log_predictions: ArrayLike,
    log_targets: ArrayLike,
    *,
    axis: int = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    """KL(targets ‖ predictions) with both arguments as log-probabilities, per example.

    Math:  l = sum_c exp(lt_c) (lt_c - lp_c), terms with lt_c = -inf (zero probability) are 0.

    Gradient: dl/dlp_c = -exp(lt_c); dl/dlt_c = exp(lt_c)(lt_c - lp_c + 1); both exactly 0 where
    lt_c = -inf. Never NaN.

    A NaN anywhere in an example gives NaN, value and the whole gradient row. Concrete inputs
    above 0 (not log-probabilities) raise a ValueError.

    Args:
      log_predictions: floating array [..., C, ...] of log-probabilities.
      log_targets: floating array of the same shape, log-probabilities.
      axis: the class axis.
      where: optional boolean class mask with the inputs' ndim; masked classes are left out.

    Returns:
      Array of the shape of the inputs without ``axis``. Same as
      ``torch.nn.functional.kl_div(lp, lt, reduction='none', log_target=True).sum(axis)``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> lp = jnp.log(jnp.array([0.5, 0.5])); lt = jnp.array([0.0, -jnp.inf])
      >>> float(jaxloss.kl_divergence_with_log_targets(lp, lt))
      0.6931471824645996
    """
    fn = "kl_divergence_with_log_targets"
    lp, lt, axis, mask = _prepare(
        fn, "log_predictions", log_predictions, "log_targets", log_targets, axis, where
    )
    _checks.check_values(
        fn,
        "log_predictions",
        log_predictions,
        "<= 0",
        where=where,
        allow_nan=True,
        hint=_LOGITS_HINT,
    )
    _checks.check_values(
        fn, "log_targets", log_targets, "<= 0", where=where, allow_nan=True, hint=_LOG_HINT
    )
    if mask is not None:
        terms = jnp.where(mask, _kl_log_terms(lp, lt), 0)
        return nan_gradient(jnp.sum(terms, axis=axis), lp, axis)
    rows = _kl_log_rows(jnp.moveaxis(lp, axis, -1), jnp.moveaxis(lt, axis, -1))
    return nan_gradient(rows, lp, axis)


# The elementwise terms are written without selects and carry closed-form JVPs: XLA:CPU feeds a
# select into the row reduction only through a full-size temporary (measured in bench/), while
# max/mul/log/exp fuse. -inf and 0 are handled by overflow instead of by a select: with
# `lowest` the most negative finite float, `lowest * 2` is -inf, so
#     bound = lowest * (1 + sign(t))   is  lowest where t = 0  and  -inf where t > 0,
# and max(lp, bound) keeps a -inf log-prediction only where the target mass is positive (the
# true KL, +inf) and makes 0·lp = 0 where it is zero.


@jax.custom_jvp
def _kl_terms(lp: jax.Array, t: jax.Array) -> jax.Array:
    """t (log t - lp) with 0 log 0 = 0 and 0·(-inf) = 0; +inf where lp = -inf and t > 0."""
    fi = jnp.finfo(t.dtype)
    bound = fi.min * (1 + jnp.sign(t))
    # nan_of: a NaN lp must not be dropped by a fused max (see _core.numerics.nan_of); a NaN t
    # reaches the value through the products.
    return t * jnp.log(jnp.maximum(t, fi.tiny)) - t * (jnp.maximum(lp, bound) + nan_of(lp))


def _kl_terms_jvp(primals, tangents):
    lp, t = primals
    dlp, dt = tangents
    value = _kl_terms(lp, t)
    out = jnp.zeros_like(value)
    finite = lp != -jnp.inf  # NaN stays in the gradient
    if not is_zero(dlp):
        out = out - jnp.where(finite, t, 0) * dlp
    if not is_zero(dt):
        # d(t log t)/dt = log t + 1, taken as 0 at t = 0 (the xlogx convention).
        pos = t > 0
        dxlogx = jnp.where(pos, jnp.log(jnp.where(pos, t, 1)) + 1, 0)
        out = out + (dxlogx - jnp.where(finite, lp, 0)) * dt
    return value, out


_kl_terms.defjvp(_kl_terms_jvp, symbolic_zeros=True)


@jax.custom_jvp
def _kl_log_terms(lp: jax.Array, lt: jax.Array) -> jax.Array:
    """e^lt (lt - lp), 0 where lt = -inf (whatever lp), +inf where lp = -inf < lt."""
    fi = jnp.finfo(lt.dtype)
    lt_c = jnp.maximum(lt, fi.min)
    # e from lt itself (exp(-inf) = 0 = exp(lowest)), so that a NaN lt reaches the value through
    # it; nan_of for lp: the fused maxima may drop a NaN (see _core.numerics.nan_of).
    e = jnp.exp(lt)
    return e * (lt_c - (jnp.maximum(lp, fi.min * (1 + jnp.sign(e))) + nan_of(lp)))


def _kl_log_terms_jvp(primals, tangents):
    lp, lt = primals
    dlp, dlt = tangents
    value = _kl_log_terms(lp, lt)
    out = jnp.zeros_like(value)
    active = lt != -jnp.inf  # NaN stays in the gradient
    if not is_zero(dlp):
        # -e^lt, exactly 0 at lt = -inf (the value's e; value-and-grad keeps no full-size
        # temporary: 16 KiB at [4096, 8192], compile().memory_analysis()).
        out = out - jnp.exp(lt) * dlp
    if not is_zero(dlt):
        e = jnp.exp(jnp.where(active, lt, 0))
        lt_safe = jnp.where(active, lt, 0)
        lp_safe = jnp.where(active, lp, 0)
        out = out + jnp.where(active, e * (lt_safe - lp_safe + 1), 0) * dlt
    return value, out


_kl_log_terms.defjvp(_kl_log_terms_jvp, symbolic_zeros=True)


@jax.custom_jvp
def _kl_log_rows(lp: jax.Array, lt: jax.Array) -> jax.Array:
    """sum over the last axis of ``_kl_log_terms(lp, lt)``, computed first without its guards;
    rows that are not finite are recomputed with them.

    sum_c e^lt_c (lt_c - lp_c) is optax's row: three operations per element against the
    guarded form's ten (1.5x its time at [4096, 8192] on XLA:CPU). With lt, lp <= 0 the
    difference cannot overflow, so where every entry is finite the two agree to rounding. Every
    case the guards exist for gives a non-finite row here: lt = -inf (0·(-inf) = NaN), lp = -inf
    under positive mass (+inf), a NaN (no max or min to drop it). Only then is the guarded sum
    run (a ``lax.cond`` on the row values), and only those rows take its value: the finite rows
    keep theirs, bit for bit.
    """
    fast = jnp.sum(jnp.exp(lt) * (lt - lp), axis=-1)
    ok = jnp.isfinite(fast)
    return jax.lax.cond(
        jnp.all(ok),
        lambda: fast,
        lambda: jnp.where(ok, fast, jnp.sum(_kl_log_terms(lp, lt), axis=-1)),
    )


def _kl_log_rows_jvp(primals, tangents):
    out = _kl_log_terms_jvp(primals, tangents)[1]
    return _kl_log_rows(*primals), jnp.sum(out, axis=-1)


_kl_log_rows.defjvp(_kl_log_rows_jvp, symbolic_zeros=True)


# ----------------------------------------------------------------------------------------------
# Jensen–Shannon


@register(plot="js")
def jensen_shannon_divergence(
    probabilities: ArrayLike, targets: ArrayLike, *, axis: int = -1, where: ArrayLike | None = None
) -> jax.Array:
    """Jensen–Shannon divergence JS(P ‖ Q) of two probability vectors, per example, in nats.

    Math (p = probabilities, q = targets, m = (p + q)/2, sums over the class axis):
      JS = ½ KL(p ‖ m) + ½ KL(q ‖ m) = sum_c [½ p_c log p_c + ½ q_c log q_c - m_c log m_c],
    with 0·log 0 = 0 (``_core.numerics.xlogx``), so zero probabilities give finite values. Symmetric
    in (p, q), 0 iff p = q, and at most log 2 (reached by disjoint supports) for distributions.
    Natural log: divide by log 2 for bits (then JS is in [0, 1]).

    Gradient: dJS/dp_c = ½ log(p_c / m_c) = ½ log(2 p_c / (p_c + q_c)) for p_c > 0 (likewise
    for q by symmetry). At p_c = 0 the xlogx convention d(x log x)/dx = 0 at 0 (shared with
    :func:`kl_divergence`) gives finite values:
      p_c = 0 < q_c:  dJS/dp_c = -½ (log m_c + 1) = ½ (log 2 - 1 - log q_c)  (the true one-sided
                      derivative is -inf; the subdifferential is empty there);
      p_c = q_c = 0:  dJS/dp_c = dJS/dq_c = 0. The term is not differentiable there (convex,
                      1-homogeneous in (p_c, q_c): slope ½ log 2 along p_c alone, 0 along
                      p_c = q_c); 0 is a subgradient (the term is >= 0 and 0 there).
    Through a softmax (dJS/dz = p ⊙ (g - <p, g>)) these conventions are multiplied by p_c = 0
    and do not matter. Never NaN for finite inputs; a NaN anywhere in an example gives NaN (value
    and the whole gradient row). Concrete inputs outside [0, 1] raise a ValueError.

    Args:
      probabilities: floating array [..., C, ...] of probabilities (each row sums to 1).
      targets: floating array of the same shape, probabilities.
      axis: the class axis.
      where: optional boolean class mask with the inputs' ndim; masked classes are left out.

    Returns:
      Array of the shape of the inputs without ``axis``. optax, torch.nn and keras have no
      Jensen–Shannon loss; ``scipy.spatial.distance.jensenshannon(p, q) ** 2`` is the same value
      (scipy returns the square root, the JS *distance*).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> p, q = jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0])
      >>> round(float(jaxloss.jensen_shannon_divergence(p, q)), 6)  # log 2
      0.693147

    Reference: Lin, "Divergence measures based on the Shannon entropy", IEEE Trans. Inf. Theory
    37(1), 1991.
    """
    fn = "jensen_shannon_divergence"
    p, q, axis, mask = _prepare(fn, "probabilities", probabilities, "targets", targets, axis, where)
    for name, raw in (("probabilities", probabilities), ("targets", targets)):
        _checks.check_values(
            fn,
            name,
            raw,
            "in [0, 1]",
            where=where,
            allow_nan=True,
            hint="For logits pass jax.nn.softmax(logits).",
        )
    m = 0.5 * (p + q)
    terms = 0.5 * xlogx(p) + 0.5 * xlogx(q) - xlogx(m)
    if mask is not None:
        terms = jnp.where(mask, terms, 0)
    return nan_gradient(jnp.sum(terms, axis=axis), p, axis)
