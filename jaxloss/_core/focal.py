"""The sigmoid focal loss's numerics: (1 − p_t)^γ·BCE built from the label's log-odds in log
space, with closed-form JVPs that stay finite where the plain formula gives 0·inf or overflows
(conventions: ``jaxloss/_focal.py``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .ad import all_zero, is_zero
from .logspace import logaddexp, safe_log
from .numerics import softplus

# ----------------------------------------------------------------------------------------------
# Sigmoid focal: stable elementwise pieces


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
    log_t, log_1mt = safe_log(t), safe_log(1 - t)
    return a, b, log_t, log_1mt, logaddexp(log_1mt + a, log_t + b)


@jax.custom_jvp
def _sigmoid_focal_term(x, t, gamma):
    """(1 - p_t)^γ · BCE(x, t), with exact tangents that stay finite everywhere.

    The label tangent needs the custom rule: d log(1 - p_t)/dt = (σ(-x) - σ(x))/(1 - p_t)
    overflows where the label is 0 or 1 and the logit is saturated, although its product with
    (1 - p_t)^γ · BCE is finite; the rule expands that product into bounded exponentials.
    """
    return _focal_value(x, t, gamma)


@jax.custom_jvp
def _sigmoid_one(x, one):
    """σ(x) = one/(one + e^-x) with ``one`` = 1 (see :func:`_focal_value`); the derivative is
    jax.nn.sigmoid's, σ(x)σ(-x) (finite where e^-x overflows)."""
    return one / (one + jnp.exp(-x))


@_sigmoid_one.defjvp
def _sigmoid_one_jvp(primals, tangents):
    (x, one), (dx, _) = primals, tangents
    return _sigmoid_one(x, one), jax.nn.sigmoid(x) * jax.nn.sigmoid(-x) * dx


def _focal_value(x, t, gamma, one=None):
    """The value, select-free so that XLA:CPU fuses it into the reduction that follows.

    1 - p_t = t σ(-x) + (1 - t) σ(x) is a sum of non-negative terms (no cancellation); where it
    underflows, its log is
    clamped at log(tiny), and the factor q^γ is then below tiny^γ against a BCE that is itself
    tiny there. γ = 0 gives exactly 1·BCE.

    ``one``: the constant 1 as a scalar array, for the JVP's copy of the value: there XLA:CPU
    merges the literal 1 of σ = 1/(1 + e^-x) and of 1 - t with the gradient's and materialises
    it as a full-size array (measured: a 64 MiB temporary in value-and-grad at 2^24 elements);
    an opaque scalar stays a broadcast inside the fused reduction. σ is then written as XLA:CPU
    expands it, 1/(1 + e^-x): the same number.
    """
    if one is None:
        q = t * jax.nn.sigmoid(-x) + (1 - t) * jax.nn.sigmoid(x)
    else:
        q = t * _sigmoid_one(-x, one) + (one - t) * _sigmoid_one(x, one)
    log_q = jnp.log(jnp.maximum(q, jnp.finfo(q.dtype).tiny))
    ce = softplus(x) - t * x  # exactly jaxloss.sigmoid_binary_cross_entropy
    return jnp.exp(gamma * log_q) * ce


def _sigmoid_focal_term_jvp(primals, tangents):
    x, t, gamma = primals
    dx, dt, dgamma = tangents
    value = _focal_value(x, t, gamma, jax.lax.optimization_barrier(jnp.asarray(1, x.dtype)))
    # Symbolic zeros: the label and γ tangents (several exps per element) are only built when
    # something is differentiated through them; under jax.grad w.r.t. the logits they are skipped.
    out = jnp.zeros_like(value)
    if not is_zero(dx):
        d_x = _focal_dx(*jax.lax.optimization_barrier((x, t, gamma)))
        out = out + d_x * dx
    if all_zero(dt, dgamma):
        return value, out
    a, b, log_t, log_1mt, log_q = _log_one_minus_pt(x, t)
    sp_neg, sp_pos = -a, -b
    m = jnp.exp(gamma * log_q)
    # In the tangents, BCE = t softplus(-x) + (1 - t) softplus(x) and σ(x) - t = (1 - t) σ(x) -
    # t σ(-x): no cancellation where the factor q^γ makes small values matter (x = 17, t = 1).
    ce = t * sp_neg + (1 - t) * sp_pos
    if not is_zero(dt):
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
    if not is_zero(dgamma):
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
