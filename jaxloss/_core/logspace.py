"""Log-space pieces of the softmax and sigmoid losses, shared by the classification families.

:class:`LabelSoftmax` is the softmax over counted classes seen from an integer label: the label's
log-odds against the other classes, from which -log p_y, log(1 - p_y) and 1 - p_y follow without
forming lse(z) (which float32 rounds at the logits' magnitude). :func:`safe_log`,
:func:`logaddexp`, :func:`clamp_finite` and :func:`sigmoid_pow` are the elementwise helpers the
sigmoid and focal losses share; each keeps -inf operands and NaN as documented, with finite
(never NaN) derivatives elsewhere.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .labels import bcast
from .numerics import softplus

__all__ = ["LabelSoftmax", "clamp_finite", "logaddexp", "safe_log", "sigmoid_pow"]


def safe_log(x: jax.Array) -> jax.Array:
    """log(x) for x > 0 and -inf for x <= 0, with a zero (not NaN) gradient at x <= 0."""
    pos = x > 0
    return jnp.where(pos, jnp.log(jnp.where(pos, x, 1)), -jnp.inf)


def logaddexp(u: jax.Array, v: jax.Array) -> jax.Array:
    """log(e^u + e^v) for u, v not both -inf; a -inf operand drops out with a zero gradient.

    Written out (``jnp.logaddexp`` breaks XLA:CPU fusion, see _core.numerics).
    """
    m = jnp.maximum(u, v)
    d = jnp.where(jnp.isfinite(u) & jnp.isfinite(v), u - v, -jnp.inf)
    return m + jnp.log1p(jnp.exp(-jnp.abs(d)))


def clamp_finite(x: jax.Array) -> jax.Array:
    """``x`` clipped to the finite range of its dtype (±inf to ±max); NaN stays NaN."""
    big = jnp.finfo(x.dtype).max
    return jnp.clip(x, -big, big)  # NaN stays NaN


@jax.custom_jvp
def sigmoid_pow(x: jax.Array, power: jax.Array) -> jax.Array:
    """σ(x)^power = exp(-power · softplus(-x)) for power >= 0 and x in [-inf, inf].

    x is clamped to the finite range (the value is unchanged: σ(x)^power is already 0 or 1
    there), so that power = 0 at x = -inf gives 1, not 0 · inf. The tangents are formed as
    single bounded factors: d/dx = (power σ(-x)) v, d/dpower = -(softplus(-x) v), v the value
    (the -log terms such a weight multiplies reach 3e38, and γ · weight · 3e38 formed first
    would be inf). (1 - p_y)^power of a softmax is ``sigmoid_pow(-r, power)``, r the label's
    log-odds.
    """
    return jnp.exp(-power * softplus(-clamp_finite(x)))


@sigmoid_pow.defjvp
def _sigmoid_pow_jvp(primals, tangents):
    (x, power), (dx, dpower) = primals, tangents
    xc = clamp_finite(x)
    sp = softplus(-xc)
    v = jnp.exp(-power * sp)
    return v, (power * jax.nn.sigmoid(-xc) * v) * dx - (sp * v) * dpower


class LabelSoftmax:
    """Per-example pieces of a softmax over counted classes with an integer label.

    Everything follows from r, the log-odds of the label against the other counted classes:

        r = log p_y - log(1 - p_y) = s (z_y - m_o) - log sum_{c != y} exp(s (z_c - m_o)),
        -log p_y = softplus(-r),   log(1 - p_y) = -softplus(r),   1 - p_y = σ(-r),

    with m_o the largest other counted logit (a constant for the gradient) and s = ``scale``
    (1 unless given). With ``log_odds=False`` only the cross-entropy ``ce`` is formed (the
    max over all counted classes, no separation of the label). One max and one sum of exponentials
    over the other classes; lse = m + log S is never formed: rounded at the magnitude of the logits
    (|z| = 1e4 leaves it an error of 1e-3
    in float32), lse - z_y would lose the cross-entropy's low digits. Derivatives are products,
    never differences of O(1) terms: d(-log p_y)/dr = -σ(-r), d log(1 - p_y)/dr = -σ(r) = -p_y,
    dr/dz = s (e_y - q) with q the softmax over the other classes, so p - e_y = (1 - p_y)(q - e_y)
    and the focal term's q - p = p_y (q - e_y) keep their relative accuracy where p_y ≈ 0 (the
    difference q - p, multiplied by a cross-entropy of 2e4, would not). The scale multiplies
    z - m_o (exactly 0 at the maximum), not z: XLA:CPU contracts s z - m into a fused
    multiply-add whose result at the maximum is the rounding error of s z (9e23 at s z = 3e31,
    and exp of it is inf).

    Attributes: ``ce`` (-log p_y), ``any_label`` (the label is a counted class), and with
    ``log_odds``: ``r``, ``no_other`` (only the label counts) and ``nan_or_zero`` (the value of
    such a row: 0, or NaN for a NaN label logit).

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
            z = z - self.is_label.astype(z.dtype) * bcast(label_margins, z.ndim, axis)
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

    def pick(self, w: jax.Array, axis: int) -> jax.Array:
        """w[y] for a [C] vector (as the cross-entropy picks its class weight; labels out of
        range give 0 with a class mask, the clipped label's weight without one: the loss is NaN
        there either way)."""
        if self.y_safe is not None:
            return jnp.take(w, self.y_safe)
        return jnp.sum(jnp.where(self.is_label, bcast(w, self.is_label.ndim, axis), 0), axis=axis)
