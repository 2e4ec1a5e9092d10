"""Imbalance-aware classification losses: focal, class-balanced, LDAM, logit adjustment, ASL,
Poly-1 and generalized cross-entropy.

Binary/multi-label losses (``sigmoid_focal_loss``, ``asymmetric_multilabel_loss``) are elementwise
on logits. The multi-class losses take integer labels with the conventions of
:func:`jaxloss.softmax_cross_entropy_with_integer_labels`: labels have the logits' shape without
``axis``; ``ignore_index`` examples give 0 (pass ``labels != ignore_index`` to the reduction);
``where`` masks classes; labels out of range raise eagerly and give NaN under ``jit``.
float16/bfloat16 inputs are computed in float32 and the result is float32; float64 stays float64.

Everything is computed in log space. For the true class, with p_t its probability,

    log p_t       = -softplus(-r)                            (softmax; r the label's log-odds)
    log(1 - p_t)  = -softplus(r),   r = z_y - lse_{c != y}(z)
                  = log((1 - t) σ(x) + t σ(-x))               (sigmoid; -softplus(±x) for hard t)

(the softmax losses' r is formed from the largest other logit and never from lse(z), which
float32 rounds at the logits' magnitude; see ``_Parts``)

so the focal factor (1 - p_t)^γ = exp(γ log(1 - p_t)) is exact where 1 - p_t underflows, and its
gradient is finite for every γ >= 0. The derivative of (1 - p)^γ with respect to the
*probability* is infinite at p = 1 when γ < 1; jaxloss never forms it. The gradient with respect to
the logits is γ (1 - p_t)^γ (…) + (1 - p_t)^γ (…), which tends to 0 at saturation and is computed
as that limit there: finite values, gradients and Hessians at logits of ±1e4 for any γ >= 0.

Class-balanced weights (Cui et al., CVPR 2019) are :func:`jaxloss.class_weights_from_counts`
with ``method="effective_number"``. ``class_balanced_cross_entropy`` and
``class_balanced_focal_loss`` are thin conveniences over it; for any other loss (sigmoid focal,
LDAM, Poly-1, ...) the same weighting is

    w = jaxloss.class_weights_from_counts(samples_per_class, method="effective_number", beta=b)
    jaxloss.class_weighted(loss, w)                      # per-example value w[y] · l
    jaxloss.mean(loss(logits, labels), weights=w[labels], where=labels != ignore)  # torch's mean

and for multi-label sigmoid losses (one column per class, class axis last) ``w * values``.
LDAM's deferred re-weighting (DRW) is the same weights switched on late in training.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from ._classification import (
    _bcast,
    _finish_integer_loss,
    _prepare_integer,
)
from ._combinators import class_weights_from_counts
from ._core import checks as _checks
from ._core.numerics import softplus
from ._core.registry import register

__all__ = [
    "asymmetric_multilabel_loss",
    "class_balanced_cross_entropy",
    "class_balanced_focal_loss",
    "generalized_cross_entropy",
    "ldam_loss",
    "logit_adjusted_cross_entropy",
    "poly1_cross_entropy",
    "sigmoid_focal_loss",
    "softmax_focal_loss",
]


# ----------------------------------------------------------------------------------------------
# Validation helpers


def _per_class(
    fn: str, arg: str, value: Any, num_classes: int, dtype: Any, condition: str
) -> jax.Array:
    """A [C] real vector, checked against ``condition`` (">= 0" or "> 0") when concrete.

    (``_classification._class_weights`` does the same for the argument named ``class_weights``;
    the argument names differ here, so the messages must too.)
    """
    v = _checks.check_real(fn, arg, value)
    if v.shape != (num_classes,):
        raise ValueError(
            f"jaxloss.{fn}: `{arg}` must have shape (num_classes,) = ({num_classes},); "
            f"got {tuple(v.shape)}."
        )
    raw = _checks.concrete_array(value)
    if raw is not None:
        lo = float(np.min(raw))
        bad = lo < 0 if condition == ">= 0" else lo <= 0
        if bad or not np.all(np.isfinite(raw)):
            raise ValueError(
                f"jaxloss.{fn}: `{arg}` must be finite and {condition}; got a minimum of {lo}."
            )
    return v.astype(dtype)


def _require_poly_epsilon(fn: str, arg: str, value: Any) -> None:
    """ε of a Poly-1 term, checked when concrete: finite and >= -1.

    -log p >= 1 - p, so CE + ε (1 - p) >= (1 + ε)(1 - p) >= 0 for ε >= -1, and near p = 1 (where
    CE ≈ 1 - p) the loss is ≈ (1 + ε)(1 - p): negative for any ε < -1. ε >= -1 is also where the
    loss decreases in p (d/dp = -1/p - ε <= 0), the paper's range [-1, inf). (With focal factors
    the same bound holds for α_t = 1; with α_t < 1 the loss is >= 0 for ε >= -α_t.)
    """
    _checks.require_finite(fn, arg, value)
    v = _checks.concrete_float(value)
    if v is not None and v < -1:
        raise ValueError(
            f"jaxloss.{fn}: `{arg}` must be >= -1 (below, the loss is negative where the true "
            f"class is nearly certain: -log p + ε(1 - p) ≈ (1 + ε)(1 - p)); got {v!r}."
        )


def _check_unit_interval(fn: str, arg: str, value: Any) -> None:
    """ValueError when a concrete input has a (non-NaN) value outside [0, 1]; traced: as given."""
    _checks.check_values(
        fn,
        arg,
        value,
        "in [0, 1]",
        allow_nan=True,
        hint="(Hard or soft labels; ±1 targets map with (y + 1) / 2.)",
    )


# ----------------------------------------------------------------------------------------------
# Stable elementwise pieces


def _safe_log(x: jax.Array) -> jax.Array:
    """log(x) for x > 0 and -inf for x <= 0, with a zero (not NaN) gradient at x <= 0."""
    pos = x > 0
    return jnp.where(pos, jnp.log(jnp.where(pos, x, 1)), -jnp.inf)


def _logaddexp(u: jax.Array, v: jax.Array) -> jax.Array:
    """log(e^u + e^v) for u, v not both -inf; a -inf operand drops out with a zero gradient.

    Written out (``jnp.logaddexp`` breaks XLA:CPU fusion, see _numerics).
    """
    m = jnp.maximum(u, v)
    d = jnp.where(jnp.isfinite(u) & jnp.isfinite(v), u - v, -jnp.inf)
    return m + jnp.log1p(jnp.exp(-jnp.abs(d)))


@jax.custom_jvp
def _softplus_over_exp(x: jax.Array) -> jax.Array:
    """h(x) = softplus(x) e^{-x}, in (0, 1], finite for every finite x; h'(x) = σ(-x) - h(x)."""
    pos = x >= 0
    xp = jnp.where(pos, x, 0)
    right = softplus(xp) * jnp.exp(-xp)
    u = jnp.exp(jnp.where(pos, -1, x))  # e^x for x < 0
    big = u > 1e-6
    u_safe = jnp.where(big, u, 1)
    left = jnp.where(big, jnp.log1p(u_safe) / u_safe, 1 - u / 2 + u * u / 3)
    return jnp.where(pos, right, left)


@_softplus_over_exp.defjvp
def _softplus_over_exp_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    h = _softplus_over_exp(x)
    return h, (jax.nn.sigmoid(-x) - h) * dx


def _log_one_minus_pt(x, t):
    """(log σ(x), log σ(-x), log t, log(1 - t), log(1 - p_t)) with p_t = t σ(x) + (1 - t) σ(-x)."""
    a = -softplus(-x)
    b = -softplus(x)
    log_t, log_1mt = _safe_log(t), _safe_log(1 - t)
    return a, b, log_t, log_1mt, _logaddexp(log_1mt + a, log_t + b)


@jax.custom_jvp
def _sigmoid_focal_term(x, t, gamma):
    """(1 - p_t)^γ · BCE(x, t), with exact tangents that stay finite everywhere.

    The label tangent needs the custom rule: d log(1 - p_t)/dt = (σ(-x) - σ(x))/(1 - p_t)
    overflows where the label is 0 or 1 and the logit is saturated, although its product with
    (1 - p_t)^γ · BCE is finite; the rule expands that product into bounded exponentials.
    """
    return _focal_value(x, t, gamma)


def _focal_value(x, t, gamma):
    """The value, select-free so that XLA:CPU fuses it into the reduction that follows.

    1 - p_t = t σ(-x) + (1 - t) σ(x) is a sum of non-negative terms (no cancellation); where it
    underflows, its log is
    clamped at log(tiny), and the factor q^γ is then below tiny^γ against a BCE that is itself
    tiny there. γ = 0 gives exactly 1·BCE.
    """
    q = t * jax.nn.sigmoid(-x) + (1 - t) * jax.nn.sigmoid(x)
    log_q = jnp.log(jnp.maximum(q, jnp.finfo(q.dtype).tiny))
    ce = softplus(x) - t * x  # exactly jaxloss.sigmoid_binary_cross_entropy
    return jnp.exp(gamma * log_q) * ce


def _sigmoid_focal_term_jvp(primals, tangents):
    x, t, gamma = primals
    dx, dt, dgamma = tangents
    value = _focal_value(x, t, gamma)
    # Symbolic zeros: the label and γ tangents (several exps per element) are only built when
    # something is differentiated through them; under jax.grad w.r.t. the logits they are skipped.
    out = jnp.zeros_like(value)
    if not _is_zero(dx):
        d_x = _focal_dx(*jax.lax.optimization_barrier((x, t, gamma)))
        out = out + d_x * dx
    if _is_zero(dt) and _is_zero(dgamma):
        return value, out
    a, b, log_t, log_1mt, log_q = _log_one_minus_pt(x, t)
    sp_neg, sp_pos = -a, -b
    m = jnp.exp(gamma * log_q)
    # In the tangents, BCE = t softplus(-x) + (1 - t) softplus(x) and σ(x) - t = (1 - t) σ(x) -
    # t σ(-x): no cancellation where the factor q^γ makes small values matter (x = 17, t = 1).
    ce = t * sp_neg + (1 - t) * sp_pos
    if not _is_zero(dt):
        # γ · BCE · (d log q / dt) · q^γ as bounded terms: a1, a0 <= 1 as q >= t σ(-x),
        # (1 - t) σ(x); BCE = t softplus(-x) + (1 - t) softplus(x) splits each into a bounded
        # product.
        a1 = jnp.exp(log_t + b - log_q + gamma * log_q)
        a0 = jnp.exp(log_1mt + a - log_q + gamma * log_q)
        d_t = gamma * (
            a1 * (sp_neg - _softplus_over_exp(-x)) + a0 * (_softplus_over_exp(x) - sp_pos)
        )
        d_t = d_t - x * m
        out = out + d_t * dt
    if not _is_zero(dgamma):
        out = out + log_q * m * ce * dgamma
    return value, out


def _focal_dx(x, t, gamma):
    """d/dx of (1 - p_t)^γ · BCE, recomputed from its own inputs.

    The caller passes x, t through an optimization barrier so that nothing here is merged with
    the value's subexpressions: shared, they would be materialised as full-size temporaries
    (recomputing the few transcendentals is cheaper on XLA:CPU; measured in bench/).
    """
    # The scalar constants pass the barrier too: XLA would otherwise merge their broadcasts with
    # the value's identical ones and materialise each as a full-size array.
    zero, one, two, tiny = jax.lax.optimization_barrier(
        tuple(jnp.asarray(c, x.dtype) for c in (0, 1, 2, jnp.finfo(x.dtype).tiny))
    )
    # Linear space, select-free (as _focal_value): q = 1 - p_t >= each of t σ(-x), (1 - t) σ(x),
    # so σ(x) σ(-x) / q <= 2 and stays finite where q underflows.
    sig_pos = jax.nn.sigmoid(x)
    sig_neg = jax.nn.sigmoid(-x)
    log_q = jnp.log(jnp.maximum(t * sig_neg + (one - t) * sig_pos, tiny))
    m = jnp.exp(gamma * log_q)
    # BCE = t softplus(-x) + (1 - t) softplus(x) and σ(x) - t = (1 - t) σ(x) - t σ(-x): no
    # cancellation where the factor q^γ makes small values matter (x = 17, t = 1).
    a = jnp.abs(x)
    l1 = jnp.log1p(jnp.exp(-a))
    ce = t * (jnp.maximum(-x, zero) + l1) + (one - t) * (jnp.maximum(x, zero) + l1)
    # d log q / dx = (1 - 2t) σ(x) σ(-x) / q, as an exp of log σ(x) + log σ(-x) - log q =
    # -|x| - 2 log1p(e^{-|x|}) - log q (<= log 2): its own derivative has no 1/q² (which
    # underflows for saturated logits and would make second derivatives NaN).
    lx = (one - two * t) * jnp.exp(-a - two * l1 - log_q)
    # ce · lx first: it is bounded (ce ~ |x| where lx ~ e^{-|x|}), γ · ce overflows at |x| = 3e38
    # and would give inf · 0.
    return m * (gamma * (ce * lx) + ((one - t) * sig_pos - t * sig_neg))


def _is_zero(tangent: Any) -> bool:
    return isinstance(tangent, SymbolicZero)


_sigmoid_focal_term.defjvp(_sigmoid_focal_term_jvp, symbolic_zeros=True)


@jax.custom_jvp
def _one_minus_pt_pow(x, t, power):
    """(1 - p_t)^power in log space (the Poly-1 term), with finite label tangents."""
    *_, log_q = _log_one_minus_pt(x, t)
    return jnp.exp(power * log_q)


@_one_minus_pt_pow.defjvp
def _one_minus_pt_pow_jvp(primals, tangents):
    x, t, power = primals
    dx, dt, dpower = tangents
    a, b, _, _, log_q = _log_one_minus_pt(x, t)
    value = jnp.exp(power * log_q)
    d_x = power * value * (1 - 2 * t) * jnp.exp(a + b - log_q)
    d_t = power * jnp.exp((power - 1) * log_q) * (jnp.exp(b) - jnp.exp(a))  # power >= 1 here
    return value, d_x * dx + d_t * dt + log_q * value * dpower


# ----------------------------------------------------------------------------------------------
# Binary / multi-label


@register(plot="binary")
def sigmoid_focal_loss(
    logits: Any,
    labels: Any,
    *,
    alpha: Any = None,
    gamma: Any = 2.0,
    poly_epsilon: Any = 0.0,
) -> jax.Array:
    """Sigmoid focal loss, elementwise, computed in log space (optionally Poly-1).

    Math (x = logit, t = label in [0, 1], p = σ(x)):
      p_t = t p + (1 - t)(1 - p),   α_t = α t + (1 - α)(1 - t)  (1 when ``alpha`` is None),
      l = α_t (1 - p_t)^γ · BCE(x, t) + ε (1 - p_t)^(γ+1),   BCE = softplus(x) - t x,
      (1 - p_t)^γ = exp(γ log(1 - p_t)),  log(1 - p_t) = log((1 - t) σ(x) + t σ(-x))
      (= -softplus(x) for t = 1 and -softplus(-x) for t = 0). γ = 0, ε = 0 and no ``alpha`` is
      :func:`jaxloss.sigmoid_binary_cross_entropy` exactly (the same BCE expression times
      exp(0) = 1). For soft labels this is optax's/torchvision's p_t (a mixture), not the
      expected focal loss under Bernoulli(t).

    Gradient (L = log(1 - p_t), c = BCE, ε = ``poly_epsilon``):
      dl/dx = α_t e^{γL} [γ c L_x + σ(x) - t] + ε (γ+1) e^{(γ+1)L} L_x,
        L_x = (1 - 2t) σ(x) σ(-x) / (1 - p_t);
      dl/dt = (2α - 1) e^{γL} c [with alpha] + α_t e^{γL} [γ c L_t - x]
              + ε (γ+1) e^{γL} (σ(-x) - σ(x)),   L_t = (σ(-x) - σ(x)) / (1 - p_t);
      dl/dγ = L (α_t e^{γL} c + ε e^{(γ+1)L}).
      Convention: the derivative of (1 - p)^γ in p is infinite at p = 1 for γ < 1, but it is
      never formed: the gradient in x is computed from the expressions above (a custom JVP with
      every exponential bounded), which tend to 0 at saturated logits and are finite for all
      finite x and γ >= 0; so is the label gradient, also at labels exactly 0 or 1.

    Args:
      logits: floating array, any shape.
      labels: real array of the same shape, values in [0, 1] (soft labels allowed; checked when
        concrete).
      alpha: optional weight α in [0, 1] of the positive class (0.25 in Lin et al.; optax's
        default is None = no weighting, torchvision's 0.25).
      gamma: focusing parameter γ >= 0 (learnable values work).
      poly_epsilon: ε >= -1, the Poly-1 coefficient (Leng et al., ICLR 2022); 0 is plain focal.
        The loss is >= 0 for ε >= -α_t (-1 without ``alpha``).

    Returns:
      Array of the shape of ``logits``; the same as ``optax.sigmoid_focal_loss`` and
      ``torchvision.ops.sigmoid_focal_loss(reduction='none')`` (torchvision: ``alpha=-1`` for no
      weighting) when ε = 0.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> v = jaxloss.sigmoid_focal_loss(jnp.array([0.0, 3.0]), jnp.array([1.0, 1.0]), gamma=2.0)
      >>> [round(x, 6) for x in v.tolist()]
      [0.173287, 0.000109]

    Reference: Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017 (arXiv:1708.02002).
    """
    fn = "sigmoid_focal_loss"
    _checks.require(fn, "gamma", gamma, ">= 0")
    _require_poly_epsilon(fn, "poly_epsilon", poly_epsilon)
    if alpha is not None:
        _checks.require(fn, "alpha", alpha, "in [0, 1]")
    x = _checks.check_floating(fn, "logits", logits)
    t = _checks.check_real(fn, "labels", labels)
    _check_unit_interval(fn, "labels", labels)
    _checks.check_same_shape(fn, "logits", x, "labels", t)
    dtype = _checks.compute_dtype(x, t)
    x, t = x.astype(dtype), t.astype(dtype)
    g = jnp.asarray(gamma, dtype).reshape(())
    loss = _sigmoid_focal_term(x, t, g)
    if alpha is not None:
        al = jnp.asarray(alpha, dtype).reshape(())
        loss = (al * t + (1 - al) * (1 - t)) * loss
    if _checks.concrete_float(poly_epsilon) != 0:
        e = jnp.asarray(poly_epsilon, dtype).reshape(())
        loss = loss + e * _one_minus_pt_pow(x, t, g + 1)
    return loss


@register(plot="binary_both")
def asymmetric_multilabel_loss(
    logits: Any,
    labels: Any,
    *,
    gamma_positive: Any = 0.0,
    gamma_negative: Any = 4.0,
    margin: Any = 0.05,
) -> jax.Array:
    """Asymmetric loss (ASL) for multi-label classification, elementwise on sigmoid logits.

    Math (x = logit, t = label in [0, 1], p = σ(x), shifted probability p_m = max(p - m, 0)):
      l = t L+ + (1 - t) L-,
      L+ = (1 - p)^γ+ (-log p)             = exp(-γ+ softplus(x)) softplus(-x),
      L- = p_m^γ- (-log(1 - p_m)),          -log(1 - p_m) = -log(min(σ(-x) + m, 1)).
      Negatives with p <= m cost nothing (the margin discards easy negatives, including
      possibly mislabelled ones); with m = 0, L- = exp(-γ- softplus(-x)) softplus(x) in log space.
      γ+ = γ- = 0, m = 0 is binary cross-entropy; γ+ = γ- = γ, m = 0 is the sigmoid focal loss
      for hard labels (soft labels mix L+ and L- linearly, focal mixes p_t).

    Gradient (s = σ(x) σ(-x)):
      dL+/dx = -(1 - p)^γ+ [γ+ p (-log p) + (1 - p)],
      dL-/dx = γ- p_m^(γ- - 1) s (-log(1 - p_m)) + p_m^γ- s / (1 - p_m)  for p > m, 0 for p <= m
      (at the kink p = m the left value 0 is used; for γ- > 0 the derivative is continuous there);
      dl/dt = L+ - L-.

    Args:
      logits: floating array, any shape (e.g. [batch, num_labels]).
      labels: real array of the same shape, values in [0, 1] (multi-hot).
      gamma_positive: γ+ >= 0; the paper recommends 0 (the official class defaults to 1).
      gamma_negative: γ- >= 0 (4 in the paper and the official code).
      margin: probability margin m in [0, 1) (the official ``clip``, 0.05).

    Returns:
      Array of the shape of ``logits``. The official ``AsymmetricLoss`` returns ``-loss.sum()``
      and clamps log arguments at 1e-8 (so each term is at most 18.4); here the logs are exact and
      the reduction is yours: ``jaxloss.sum(values)`` matches it.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> v = jaxloss.asymmetric_multilabel_loss(jnp.array([2.0, -3.0, 0.0]),
      ...                                        jnp.array([1.0, 0.0, 0.0]))
      >>> [round(x, 6) for x in v.tolist()]
      [0.126928, 0.0, 0.024515]

    Reference: Ridnik et al., "Asymmetric Loss For Multi-Label Classification", ICCV 2021
    (arXiv:2009.14119).
    """
    fn = "asymmetric_multilabel_loss"
    _checks.require(fn, "gamma_positive", gamma_positive, ">= 0")
    _checks.require(fn, "gamma_negative", gamma_negative, ">= 0")
    _checks.require(fn, "margin", margin, "in [0, 1)")
    x = _checks.check_floating(fn, "logits", logits)
    t = _checks.check_real(fn, "labels", labels)
    _check_unit_interval(fn, "labels", labels)
    _checks.check_same_shape(fn, "logits", x, "labels", t)
    dtype = _checks.compute_dtype(x, t)
    x, t = x.astype(dtype), t.astype(dtype)
    gp = jnp.asarray(gamma_positive, dtype).reshape(())
    gn = jnp.asarray(gamma_negative, dtype).reshape(())
    m = jnp.asarray(margin, dtype).reshape(())

    sp_pos, sp_neg = softplus(x), softplus(-x)  # -log(1 - p), -log p
    # The weights (1 - p)^γ+ and p^γ- go through _sigmoid_pow, whose derivative is one bounded
    # factor: the -log terms they multiply reach 3e38 at |x| = 3e38, and γ · weight · 3e38
    # formed first would be inf (times σ = 0: NaN).
    positive = _sigmoid_pow(-x, gp) * sp_neg
    # Negatives. m = 0 exactly: p_m = p, all in log space. m > 0: p_m = p - m directly (no
    # cancellation issue beyond the one inherent at p ≈ m), -log(1 - p_m) = -log(σ(-x) + m).
    zero_m = m == 0
    p_m = jax.nn.sigmoid(x) - m
    inactive = ~zero_m & (p_m <= 0)  # NaN stays active
    # (the log's argument is 1 where unused, so its derivatives stay finite there, e.g. p ≈ 1e-27)
    log_pm = jnp.log(jnp.where(zero_m | inactive, 1, p_m))
    weight = jnp.where(zero_m, _sigmoid_pow(x, gn), jnp.exp(gn * log_pm))
    nll = -_logaddexp(-sp_pos, _safe_log(m))  # -log(σ(-x) + m) in log space
    negative = jnp.where(inactive, 0, weight * nll)
    return t * positive + (1 - t) * negative


@jax.custom_jvp
def _sigmoid_pow(x: jax.Array, power: jax.Array) -> jax.Array:
    """σ(x)^power = exp(-power softplus(-x)) for power >= 0, with tangents formed as single
    bounded factors: d/dx = (power σ(-x)) v, d/dpower = -(softplus(-x) v), v the value."""
    return jnp.exp(-power * softplus(-_clamp_finite(x)))


@_sigmoid_pow.defjvp
def _sigmoid_pow_jvp(primals, tangents):
    (x, power), (dx, dpower) = primals, tangents
    xc = _clamp_finite(x)
    sp = softplus(-xc)
    v = jnp.exp(-power * sp)
    return v, (power * jax.nn.sigmoid(-xc) * v) * dx - (sp * v) * dpower


# ----------------------------------------------------------------------------------------------
# Multi-class with integer labels: shared parts


class _Parts:
    """Per-example pieces of a softmax over counted classes with an integer label.

    Everything follows from r, the log-odds of the label against the other counted classes:

        r = log p_y - log(1 - p_y) = s (z_y - m_o) - log sum_{c != y} exp(s (z_c - m_o)),
        -log p_y = softplus(-r),   log(1 - p_y) = -softplus(r),   1 - p_y = σ(-r),

    with m_o the largest other counted logit (a constant for the gradient) and s = ``scale``
    (1 unless given). One max and one sum of exponentials over the other classes; lse = m + log S
    is never formed: rounded at the magnitude of the logits (|z| = 1e4 leaves it an error of 1e-3
    in float32), lse - z_y would lose the cross-entropy's low digits. Derivatives are products,
    never differences of O(1) terms: d(-log p_y)/dr = -σ(-r), d log(1 - p_y)/dr = -σ(r) = -p_y,
    dr/dz = s (e_y - q) with q the softmax over the other classes, so p - e_y = (1 - p_y)(q - e_y)
    and the focal term's q - p = p_y (q - e_y) keep their relative accuracy where p_y ≈ 0 (the
    difference q - p, multiplied by a cross-entropy of 2e4, would not). The scale multiplies
    z - m_o (exactly 0 at the maximum), not z: XLA:CPU contracts s z - m into a fused
    multiply-add whose result at the maximum is the rounding error of s z (9e23 at s z = 3e31,
    and exp of it is inf).

    NaN: a NaN in a counted logit makes r NaN (through m_o, the sum or z_y). Guards are keyed on
    structure (m_o == -inf: no other class counts), never on a comparison that NaN fails.
    """

    def __init__(
        self,
        z: jax.Array,
        y: jax.Array,
        axis: int,
        mask: jax.Array | None,
        scale: jax.Array | None = None,
        log_odds: bool = True,
        label_margins: jax.Array | None = None,
    ):
        """``label_margins``: a [C] vector Δ subtracted from the label's logit (LDAM)."""
        self.is_label = jax.lax.broadcasted_iota(y.dtype, z.shape, axis) == jnp.expand_dims(y, axis)
        if mask is not None:
            mask = jnp.broadcast_to(mask, z.shape)
        self.label_counted = self.is_label if mask is None else self.is_label & mask
        self.any_label = jnp.any(self.label_counted, axis=axis)
        # The label logit, as softmax_cross_entropy_with_integer_labels picks it (a gather
        # without a class mask; labels clipped, NaN later if out of range).
        self.y_safe = None
        if mask is None:
            self.y_safe = jnp.clip(y, 0, z.shape[axis] - 1)
            z_y = jnp.squeeze(
                jnp.take_along_axis(z, jnp.expand_dims(self.y_safe, axis), axis), axis
            )
        else:
            z_y = jnp.sum(jnp.where(self.label_counted, z, 0), axis=axis)
        if label_margins is not None:
            # The label logit is shifted after the gather (gathering from the shifted array
            # would materialise it).
            z_y = z_y - self.pick(label_margins, axis)
            z = z - self.is_label.astype(z.dtype) * _bcast(label_margins, z.ndim, axis)
        if not log_odds:
            # Cross-entropy only: s (m - z_y) + log sum_c exp(s (z_c - m)), m the row's max,
            # with no class mask beyond ``where`` (the label need not be told apart).
            m = jnp.max(
                z if mask is None else jnp.where(mask, z, -jnp.inf), axis=axis, keepdims=True
            )
            any_counted = jnp.squeeze(m != -jnp.inf, axis)  # NaN counts
            m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0))
            d = z - m if mask is None else jnp.where(mask, z - m, -jnp.inf)
            s_all = jnp.sum(jnp.exp(d if scale is None else scale * d), axis=axis)
            gap = jnp.squeeze(m, axis) - z_y
            self.ce = (gap if scale is None else scale * gap) + jnp.log(
                jnp.where(any_counted, s_all, 1)
            )
            return
        others = ~self.is_label if mask is None else mask & ~self.is_label
        m_o = jnp.max(jnp.where(others, z, -jnp.inf), axis=axis, keepdims=True)
        self.no_other = jnp.squeeze(m_o == -jnp.inf, axis)  # NaN counts as another class
        m_o = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m_o), m_o, 0))
        d = jnp.where(others, z - m_o, -jnp.inf)
        s_o = jnp.sum(jnp.exp(d if scale is None else scale * d), axis=axis)
        gap = z_y - jnp.squeeze(m_o, axis)
        r = (gap if scale is None else scale * gap) - jnp.log(jnp.where(self.no_other, 1, s_o))
        # A row whose only counted class is the label: p_y = 1, loss 0 unless its logit is NaN.
        self.r = jnp.where(self.no_other, 0, r)
        self.nan_or_zero = jnp.where(jnp.isnan(z_y), z_y, 0)
        self.ce = jnp.where(self.no_other, self.nan_or_zero, softplus(-self.r))

    def one_minus_py_pow(self, power: Any) -> jax.Array:
        """(1 - p_y)^power = σ(-r)^power (power >= 0); 0 where only the label counts."""
        return jnp.where(self.no_other, self.nan_or_zero, _sigmoid_neg_pow(self.r, power))

    def focal(self, gamma: Any) -> jax.Array:
        """(1 - p_y)^γ · (-log p_y); 0 where only the label counts."""
        return jnp.where(self.no_other, self.nan_or_zero, _focal_of_log_odds(self.r, gamma))

    def pick(self, w: jax.Array, axis: int) -> jax.Array:
        """w[y] for a [C] vector (as the cross-entropy picks its class weight; labels out of
        range give 0 with a class mask, the clipped label's weight without one: the loss is NaN
        there either way)."""
        if self.y_safe is not None:
            return jnp.take(w, self.y_safe)
        return jnp.sum(jnp.where(self.is_label, _bcast(w, self.is_label.ndim, axis), 0), axis=axis)


def _needs_log_odds(gamma: Any, poly_epsilon: Any) -> bool:
    """Whether the focal factor or the Poly-1 term is used (else the cross-entropy alone)."""
    return _checks.concrete_float(gamma) != 0 or _checks.concrete_float(poly_epsilon) != 0


def _focal_from_parts(
    parts: _Parts, gamma: Any, alpha_y: Any, poly_epsilon: Any, dtype: Any
) -> jax.Array:
    g = jnp.asarray(gamma, dtype)
    loss = parts.ce if _checks.concrete_float(gamma) == 0 else parts.focal(g)
    if alpha_y is not None:
        loss = alpha_y * loss
    if _checks.concrete_float(poly_epsilon) != 0:
        loss = loss + jnp.asarray(poly_epsilon, dtype) * parts.one_minus_py_pow(g + 1)
    return loss


@jax.custom_jvp
def _sigmoid_neg_pow(r: jax.Array, power: jax.Array) -> jax.Array:
    """σ(-r)^power = exp(-power · softplus(r)) for power >= 0 and r in [-inf, inf].

    r is clamped to the finite range (the value is unchanged: σ(-r)^power is already 0 or 1
    there), so that power = 0 at r = inf gives 1, not 0 · inf. The tangents are bounded
    products: d/dr = -power σ(r) v, d/dpower = -softplus(r) v, with v the value.
    """
    return jnp.exp(-power * softplus(_clamp_finite(r)))


@_sigmoid_neg_pow.defjvp
def _sigmoid_neg_pow_jvp(primals, tangents):
    (r, power), (dr, dpower) = primals, tangents
    rc = _clamp_finite(r)
    v = jnp.exp(-power * softplus(rc))
    return v, -(power * jax.nn.sigmoid(rc)) * v * dr - (softplus(rc) * v) * dpower


@jax.custom_jvp
def _focal_of_log_odds(r: jax.Array, gamma: jax.Array) -> jax.Array:
    """σ(-r)^γ softplus(-r) = (1 - p)^γ (-log p) with p = σ(r) (the softmax focal term, r the
    label's log-odds against the other classes).

    The tangents are bounded products, each formed before it meets a large factor:
      d/dr = -σ(-r)^γ [γ (softplus(-r) σ(r)) + σ(-r)],   d/dγ = -(softplus(r) softplus(-r)) σ(-r)^γ,
    evaluated at r clamped to the finite range: r = -inf (the label's logit far below the
    others, a cross-entropy beyond float32's range) gives the value inf with the finite
    derivative -1, not inf · 0.
    """
    return jnp.exp(-gamma * softplus(_clamp_finite(r))) * softplus(-r)


@_focal_of_log_odds.defjvp
def _focal_of_log_odds_jvp(primals, tangents):
    (r, gamma), (dr, dgamma) = primals, tangents
    rc = _clamp_finite(r)
    sp_pos, sp_neg = softplus(rc), softplus(-rc)
    v = jnp.exp(-gamma * sp_pos)
    d_r = -v * (gamma * (sp_neg * jax.nn.sigmoid(rc)) + jax.nn.sigmoid(-rc))
    d_gamma = -(sp_pos * sp_neg) * v
    return _focal_of_log_odds(r, gamma), d_r * dr + d_gamma * dgamma


def _clamp_finite(x: jax.Array) -> jax.Array:
    big = jnp.finfo(x.dtype).max
    return jnp.clip(x, -big, big)  # NaN stays NaN


# ----------------------------------------------------------------------------------------------
# Focal (softmax) and class-balanced


@register(plot="softmax")
def softmax_focal_loss(
    logits: Any,
    labels: Any,
    *,
    alpha: Any = None,
    gamma: Any = 2.0,
    poly_epsilon: Any = 0.0,
    axis: int = -1,
    ignore_index: int | None = None,
    where: Any = None,
) -> jax.Array:
    """Softmax (multi-class) focal loss with integer labels, one value per example, in log space.

    Math (z = logits, y = label, p = softmax(z) over counted classes, c = -log p_y = lse(z) - z_y):
      l = α_y (1 - p_y)^γ c + ε (1 - p_y)^(γ+1),
      with r = z_y - lse_{c != y}(z) (the label's log-odds): c = softplus(-r),
      (1 - p_y)^γ = exp(γ L),  L = log(1 - p_y) = -softplus(r)  (exact near p_y = 0 and 1).
      p_y comes from the softmax, never from exp(-weighted CE) (which is wrong with class
      weights). With γ = 0, ε = 0 and no ``alpha`` this is
      :func:`jaxloss.softmax_cross_entropy_with_integer_labels` (to rounding: c is formed
      without lse(z), more accurately at large logits; no factor is applied), and with
      ``alpha=w`` it is that loss with ``class_weights=w``.

    Gradient (q = softmax over the counted classes other than y, 0 at y; e_y the one-hot):
      dl/dz = α_y e^{γL} [γ c (q - p) + (p - e_y)] + ε (γ+1) e^{(γ+1)L} (q - p);
      dl/dγ = L (α_y e^{γL} c + ε e^{(γ+1)L}). Finite for every finite z and γ >= 0 (γ < 1
      included: the derivative in p, infinite at p_y = 1, is never formed); masked classes and
      ignored examples get 0. A row whose only counted class is y gives 0.

    Args:
      logits: floating array [..., C, ...] with the class axis ``axis``.
      labels: integer array, the logits' shape without ``axis``.
      alpha: optional [C] per-class weights α (e.g. ``class_weights_from_counts``). A scalar is
        refused: on a softmax it only rescales the loss (Keras' ``CategoricalFocalCrossentropy``
        default ``alpha=0.25`` makes γ = 0 give 0.25 × cross-entropy).
      gamma: focusing parameter γ >= 0.
      poly_epsilon: ε >= -1, the Poly-1 coefficient (Leng et al., ICLR 2022); 0 is plain focal.
        The loss is >= 0 for ε >= -α_t (-1 without ``alpha``).
      axis: the class axis.
      ignore_index: optional label value whose examples give 0.
      where: optional boolean class mask, broadcastable to ``logits`` with the same ndim.

    Returns:
      Array of the shape of ``labels``. Keras ``CategoricalFocalCrossentropy(alpha=α, gamma=γ,
      from_logits=True)`` on one-hot targets with per-class α; optax has no softmax focal loss.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> logits = jnp.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
      >>> v = jaxloss.softmax_focal_loss(logits, jnp.array([0, 1]), gamma=2.0)
      >>> [round(x, 4) for x in v.tolist()]
      [0.0109, 0.4883]

    Reference: Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017 (arXiv:1708.02002).
    """
    fn = "softmax_focal_loss"
    _checks.require(fn, "gamma", gamma, ">= 0")
    _require_poly_epsilon(fn, "poly_epsilon", poly_epsilon)
    z, y, axis, num_classes, mask, dtype = _prepare_integer(
        fn, logits, labels, axis, ignore_index, where
    )
    parts = _Parts(z, y, axis, mask, log_odds=_needs_log_odds(gamma, poly_epsilon))
    alpha_y = None
    if alpha is not None:
        if np.ndim(alpha) == 0:
            raise ValueError(
                f"jaxloss.{fn}: `alpha` must be None or a ({num_classes},) vector of per-class "
                f"weights; got the scalar {alpha!r}, which would only rescale the loss."
            )
        w = _per_class(fn, "alpha", alpha, num_classes, dtype, ">= 0")
        alpha_y = parts.pick(w, axis)
    loss = _focal_from_parts(parts, gamma, alpha_y, poly_epsilon, dtype)
    return _finish_integer_loss(loss, y, num_classes, ignore_index, parts.any_label)


def _effective_number_weights(
    fn: str, samples_per_class: Any, beta: Any, num_classes: int, dtype: Any
) -> jax.Array:
    _checks.require(fn, "beta", beta, "in [0, 1)")
    n = _per_class(fn, "samples_per_class", samples_per_class, num_classes, dtype, ">= 0")
    raw = _checks.concrete_array(samples_per_class)
    if raw is not None and float(np.max(raw)) <= 0:
        raise ValueError(
            f"jaxloss.{fn}: `samples_per_class` must have a positive count; got all 0."
        )
    return class_weights_from_counts(n, method="effective_number", beta=beta)


@register(plot="imbalanced", plot_defaults={"samples_per_class": (100, 10)})
def class_balanced_cross_entropy(
    logits: Any,
    labels: Any,
    *,
    samples_per_class: Any,
    beta: Any = 0.999,
    axis: int = -1,
    ignore_index: int | None = None,
    where: Any = None,
) -> jax.Array:
    """Class-balanced softmax cross-entropy (effective number of samples), one value per example.

    Math:  l = w_y (lse(z) - z_y),  w = ``class_weights_from_counts(samples_per_class,
    method="effective_number", beta=β)``: w_c ∝ (1 - β)/(1 - β^{n_c}), scaled so that
    sum_c w_c = C; classes with n_c = 0 get weight 0. β = 0 is plain cross-entropy; β → 1 tends
    to inverse-frequency weights. Equal to
    ``class_weighted(softmax_cross_entropy_with_integer_labels, w)`` and to that loss with
    ``class_weights=w``.

    Gradient: dl/dz = w_y (softmax(z) - e_y) (0 for masked classes and ignored examples).

    Args:
      logits: floating array [..., C, ...] with the class axis ``axis``.
      labels: integer array, the logits' shape without ``axis``.
      samples_per_class: [C] training-set counts n_c >= 0 (a constant).
      beta: β in [0, 1); Cui et al. use 0.9 ... 0.9999.
      axis: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      ignore_index: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      where: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.

    Returns:
      Array of the shape of ``labels``: ``torch.nn.CrossEntropyLoss(weight=w, reduction='none')``.
      torch's weighted ``'mean'`` is ``jaxloss.sum(values) / jaxloss.sum(w[labels], where=valid)``
      with ``valid = labels != ignore_index`` (``w[labels]`` alone would pick a real class's
      weight at an ignored position), which is
      ``jaxloss.mean(unweighted_ce, weights=w[labels], where=valid)``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> v = jaxloss.class_balanced_cross_entropy(jnp.zeros((2, 2)), jnp.array([0, 1]),
      ...                                          samples_per_class=jnp.array([90, 10]), beta=0.9)
      >>> [round(x, 4) for x in v.tolist()]
      [0.5468, 0.8395]

    Reference: Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019
    (arXiv:1901.05555).
    """
    fn = "class_balanced_cross_entropy"
    z, y, axis, num_classes, mask, dtype = _prepare_integer(
        fn, logits, labels, axis, ignore_index, where
    )
    w = _effective_number_weights(fn, samples_per_class, beta, num_classes, dtype)
    parts = _Parts(z, y, axis, mask, log_odds=False)
    loss = parts.pick(w, axis) * parts.ce
    return _finish_integer_loss(loss, y, num_classes, ignore_index, parts.any_label)


@register(plot="imbalanced", plot_defaults={"samples_per_class": (100, 10)})
def class_balanced_focal_loss(
    logits: Any,
    labels: Any,
    *,
    samples_per_class: Any,
    beta: Any = 0.999,
    gamma: Any = 2.0,
    axis: int = -1,
    ignore_index: int | None = None,
    where: Any = None,
) -> jax.Array:
    """Class-balanced softmax focal loss (effective number of samples), one value per example.

    Math:  l = w_y (1 - p_y)^γ (-log p_y), i.e. :func:`softmax_focal_loss` with ``alpha=w``,
    w = ``class_weights_from_counts(samples_per_class, method="effective_number", beta=β)``
    (sum_c w_c = C). Cui et al.'s own focal variant is the *sigmoid* focal loss on one-hot
    labels, weighted by w_y: that is ``w[labels][..., None] * sigmoid_focal_loss(logits,
    one_hot)`` summed over classes.

    Gradient: dl/dz = w_y e^{γL} [γ c (q - p) + (p - e_y)] with L = log(1 - p_y), c = -log p_y,
    q the softmax over the other classes (see :func:`softmax_focal_loss`).

    Args:
      logits: floating array [..., C, ...] with the class axis ``axis``.
      labels: integer array, the logits' shape without ``axis``.
      samples_per_class: [C] training-set counts n_c >= 0 (a constant).
      beta: β in [0, 1).
      gamma: focusing parameter γ >= 0 (0 gives :func:`class_balanced_cross_entropy`).
      axis: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      ignore_index: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      where: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.

    Returns:
      Array of the shape of ``labels``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> v = jaxloss.class_balanced_focal_loss(jnp.zeros((2, 2)), jnp.array([0, 1]),
      ...                                       samples_per_class=jnp.array([90, 10]), beta=0.9)
      >>> [round(x, 4) for x in v.tolist()]
      [0.1367, 0.2099]

    Reference: Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019.
    """
    fn = "class_balanced_focal_loss"
    _checks.require(fn, "gamma", gamma, ">= 0")
    z, y, axis, num_classes, mask, dtype = _prepare_integer(
        fn, logits, labels, axis, ignore_index, where
    )
    w = _effective_number_weights(fn, samples_per_class, beta, num_classes, dtype)
    parts = _Parts(z, y, axis, mask, log_odds=_needs_log_odds(gamma, 0.0))
    loss = _focal_from_parts(parts, gamma, parts.pick(w, axis), 0.0, dtype)
    return _finish_integer_loss(loss, y, num_classes, ignore_index, parts.any_label)


# ----------------------------------------------------------------------------------------------
# Margins and priors


@register(plot="imbalanced", plot_defaults={"samples_per_class": (100, 10)})
def ldam_loss(
    logits: Any,
    labels: Any,
    *,
    samples_per_class: Any,
    max_margin: Any = 0.5,
    scale: Any = 30.0,
    axis: int = -1,
    ignore_index: int | None = None,
    where: Any = None,
) -> jax.Array:
    """Label-distribution-aware margin (LDAM) loss, one value per example.

    Math:  Δ_j = C / n_j^{1/4} with C chosen so that max_j Δ_j = ``max_margin`` (the official
    code's normalisation), i.e. Δ_j = max_margin · (min_k n_k / n_j)^{1/4};
      l = -log softmax(s (z - Δ_y e_y))_y = lse(s z') - s z'_y,  z' = z - Δ_y e_y
    (the margin is subtracted from the true-class logit only, then everything is scaled by s).
    Rare classes get larger margins. ``max_margin=0, scale=1`` is plain cross-entropy.

    Gradient: dl/dz = s (softmax(s z') - e_y) (0 for masked classes and ignored examples).

    Args:
      logits: floating array [..., C, ...] with the class axis ``axis``. The paper feeds
        cosine logits in [-1, 1] (normalised features and weights), hence the large s.
      labels: integer array, the logits' shape without ``axis``.
      samples_per_class: [C] training-set counts n_j > 0 (a constant).
      max_margin: the largest margin (0.5 in the official code), >= 0.
      scale: s > 0 (30 in the official code).
      axis: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      ignore_index: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      where: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.

    Returns:
      Array of the shape of ``labels``: the official ``LDAMLoss(cls_num_list, max_m, s=s)``
      with ``reduction='none'`` (its ``weight=`` is the DRW schedule: use
      ``class_weights_from_counts`` and weight in the reduction when the schedule says so).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> v = jaxloss.ldam_loss(jnp.array([[0.5, 0.0], [0.0, 0.5]]), jnp.array([0, 1]),
      ...                       samples_per_class=jnp.array([160, 10]), scale=4.0)
      >>> [round(x, 4) for x in v.tolist()]
      [0.3133, 0.6931]

    Reference: Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware Margin
    Loss", NeurIPS 2019 (arXiv:1906.07413).
    """
    fn = "ldam_loss"
    _checks.require(fn, "max_margin", max_margin, ">= 0")
    _checks.require(fn, "scale", scale, "> 0")
    z, y, axis, num_classes, mask, dtype = _prepare_integer(
        fn, logits, labels, axis, ignore_index, where
    )
    n = _per_class(fn, "samples_per_class", samples_per_class, num_classes, dtype, "> 0")
    inv = n**-0.25
    margins = jnp.asarray(max_margin, dtype) * inv / jnp.max(inv)
    parts = _Parts(
        z, y, axis, mask, scale=jnp.asarray(scale, dtype), log_odds=False, label_margins=margins
    )
    return _finish_integer_loss(parts.ce, y, num_classes, ignore_index, parts.any_label)


@register(plot="imbalanced", plot_defaults={"class_priors": (100, 10)})
def logit_adjusted_cross_entropy(
    logits: Any,
    labels: Any,
    *,
    class_priors: Any,
    tau: Any = 1.0,
    axis: int = -1,
    ignore_index: int | None = None,
    where: Any = None,
) -> jax.Array:
    """Logit-adjusted softmax cross-entropy (the loss form of logit adjustment), per example.

    Math:  z'_c = z_c + τ log π_c,   l = lse(z') - z'_y = -log[π_y^τ e^{z_y} / sum_j π_j^τ e^{z_j}].
    The adjustment shifts the decision rule towards the balanced error; at τ = 1 it is the
    Balanced Softmax (Ren et al. 2020). Priors need not be normalised: scaling π adds a constant
    to every logit, which the softmax ignores, so raw class counts work. τ = 0 is plain
    cross-entropy. Predict with the raw ``logits`` (argmax z), not with z'. The post-hoc
    alternative (no change to training) predicts argmax (z - τ log π) instead.

    Gradient: dl/dz = softmax(z') - e_y;  dl/dτ = sum_c (softmax(z')_c - e_{y,c}) log π_c.

    Args:
      logits: floating array [..., C, ...] with the class axis ``axis``.
      labels: integer array, the logits' shape without ``axis``.
      class_priors: [C] positive class priors π (or counts) from the training set.
      tau: temperature τ >= 0 (1 in Menon et al.; learnable values work).
      axis: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      ignore_index: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      where: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.

    Returns:
      Array of the shape of ``labels``: the official code's ``--mode=loss`` (``tau=1.0``),
      i.e. ``torch.nn.CrossEntropyLoss(reduction='none')(logits + tau * log(priors), y)``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> v = jaxloss.logit_adjusted_cross_entropy(jnp.zeros((2, 2)), jnp.array([0, 1]),
      ...                                          class_priors=jnp.array([0.9, 0.1]))
      >>> [round(x, 4) for x in v.tolist()]
      [0.1054, 2.3026]

    Reference: Menon et al., "Long-tail learning via logit adjustment", ICLR 2021
    (arXiv:2007.07314).
    """
    fn = "logit_adjusted_cross_entropy"
    _checks.require(fn, "tau", tau, ">= 0")
    z, y, axis, num_classes, mask, dtype = _prepare_integer(
        fn, logits, labels, axis, ignore_index, where
    )
    pi = _per_class(fn, "class_priors", class_priors, num_classes, dtype, "> 0")
    adjusted = z + jnp.asarray(tau, dtype) * _bcast(jnp.log(pi), z.ndim, axis)
    parts = _Parts(adjusted, y, axis, mask, log_odds=False)
    return _finish_integer_loss(parts.ce, y, num_classes, ignore_index, parts.any_label)


# ----------------------------------------------------------------------------------------------
# Poly-1 and generalized cross-entropy


@register(plot="softmax")
def poly1_cross_entropy(
    logits: Any,
    labels: Any,
    *,
    epsilon: Any = 2.0,
    axis: int = -1,
    ignore_index: int | None = None,
    where: Any = None,
) -> jax.Array:
    """Poly-1 cross-entropy with integer labels, one value per example.

    Math:  l = -log p_y + ε (1 - p_y),  p = softmax(z),  1 - p_y = σ(-r) with r = z_y -
    lse_{c != y}(z) (exact near p_y = 1). ε = 0 is cross-entropy. ε >= -1 is required: since
    -log p >= 1 - p, l >= (1 + ε)(1 - p_y) >= 0 there, while near p_y = 1 (-log p_y ≈ 1 - p_y)
    any ε < -1 makes l ≈ (1 + ε)(1 - p_y) negative; ε >= -1 is also where l decreases in p_y.
    For the Poly-1 *focal* loss use ``poly_epsilon=`` of :func:`softmax_focal_loss` /
    :func:`sigmoid_focal_loss`.

    Gradient: dl/dz = (1 + ε p_y)(softmax(z) - e_y) (0 for masked classes and ignored examples).

    Args:
      logits: floating array [..., C, ...] with the class axis ``axis``.
      labels: integer array, the logits' shape without ``axis``.
      epsilon: ε >= -1 (2 for ImageNet, -1 for detection in the paper; optax's default is 2,
        and optax accepts ε < -1, giving negative losses). Checked when concrete.
      axis: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      ignore_index: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      where: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.

    Returns:
      Array of the shape of ``labels``: ``optax.poly_loss_cross_entropy(logits,
      one_hot(labels), epsilon=ε)``, which takes probability labels instead.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> v = jaxloss.poly1_cross_entropy(jnp.zeros((1, 4)), jnp.array([2]), epsilon=2.0)
      >>> [round(x, 6) for x in v.tolist()]
      [2.886294]

    Reference: Leng et al., "PolyLoss: A Polynomial Expansion Perspective of Classification Loss
    Functions", ICLR 2022 (arXiv:2204.12511).
    """
    fn = "poly1_cross_entropy"
    _require_poly_epsilon(fn, "epsilon", epsilon)
    z, y, axis, num_classes, mask, dtype = _prepare_integer(
        fn, logits, labels, axis, ignore_index, where
    )
    parts = _Parts(z, y, axis, mask, log_odds=_needs_log_odds(0.0, epsilon))
    loss = _focal_from_parts(parts, 0.0, None, epsilon, dtype)
    return _finish_integer_loss(loss, y, num_classes, ignore_index, parts.any_label)


@register(plot="softmax")
def generalized_cross_entropy(
    logits: Any,
    labels: Any,
    *,
    q: Any = 0.7,
    axis: int = -1,
    ignore_index: int | None = None,
    where: Any = None,
) -> jax.Array:
    """Generalized cross-entropy (noise-robust L_q loss), one value per example.

    Math:  l = (1 - p_y^q) / q = -expm1(-q c) / q,  c = -log p_y = lse(z) - z_y,  q in (0, 1].
    The expm1 form is exact for small q: q → 0 tends to cross-entropy c (error about q c²/2),
    q = 1 is 1 - p_y (MAE on the probability, up to a factor 2). Bounded by 1/q, so
    confidently wrong (possibly mislabelled) examples cannot dominate.

    Gradient: dl/dz = p_y^q (softmax(z) - e_y) (0 for masked classes and ignored examples);
    dl/dq = [q c e^{-qc} - (1 - e^{-qc})] / q².

    Args:
      logits: floating array [..., C, ...] with the class axis ``axis``.
      labels: integer array, the logits' shape without ``axis``.
      q: exponent in (0, 1] (0.7 in the paper; Keras' default is 0.5).
      axis: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      ignore_index: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      where: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.

    Returns:
      Array of the shape of ``labels``: Keras ``CategoricalGeneralizedCrossEntropy(q=q)`` on
      one-hot targets, applied to logits rather than probabilities.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> v = jaxloss.generalized_cross_entropy(jnp.zeros((1, 4)), jnp.array([2]), q=1.0)
      >>> [round(x, 6) for x in v.tolist()]
      [0.75]

    Reference: Zhang & Sabuncu, "Generalized Cross Entropy Loss for Training Deep Neural Networks
    with Noisy Labels", NeurIPS 2018 (arXiv:1805.07836).
    """
    fn = "generalized_cross_entropy"
    _checks.require(fn, "q", q, "> 0")
    if (qv := _checks.concrete_float(q)) is not None and qv > 1:
        raise ValueError(f"jaxloss.{fn}: `q` must be in (0, 1]; got {qv!r}.")
    z, y, axis, num_classes, mask, dtype = _prepare_integer(
        fn, logits, labels, axis, ignore_index, where
    )
    parts = _Parts(z, y, axis, mask, log_odds=False)
    qq = jnp.asarray(q, dtype)
    loss = -jnp.expm1(-qq * parts.ce) / qq
    return _finish_integer_loss(loss, y, num_classes, ignore_index, parts.any_label)
