"""The Jensen–Shannon divergence between two distributions over a class axis, per example.

float16/bfloat16 inputs are computed in float32 and the result is float32; float64 stays float64.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ._core import checks as _checks
from ._core.numerics import nan_gradient, xlogx
from ._core.registry import register
from ._divergence import _prepare

__all__ = ["jensen_shannon_divergence"]


@register(plot="js")
def jensen_shannon_divergence(
    probabilities: Any, targets: Any, *, axis: int = -1, where: Any = None
) -> jax.Array:
    """Jensen–Shannon divergence JS(P ‖ Q) of two probability vectors, per example, in nats.

    Math (p = probabilities, q = targets, m = (p + q)/2, sums over the class axis):
      JS = ½ KL(p ‖ m) + ½ KL(q ‖ m) = sum_c [½ p_c log p_c + ½ q_c log q_c - m_c log m_c],
    with 0·log 0 = 0 (``_numerics.xlogx``), so zero probabilities give finite values. Symmetric
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
