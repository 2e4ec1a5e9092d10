"""The ψ-function of a regression loss and the summary numbers of robust statistics.

ψ(r) = ∂l/∂p at prediction p = r, target 0 (residual r = p - t), by ``jax.grad``: the force an
error of size r exerts on the model, and (up to a constant) the influence function of the
M-estimator the loss defines.

- Gross-error sensitivity sup|ψ|: the maximum of |ψ| on a grid (geometric from ±1e-9 to ±0.005,
  spacing 0.005 to ±20, then geometric to ±1e6); reported as inf when |ψ| still grows at ±1e6
  (by more than 1e-6 relative over the last grid step).
- Rejection point: the smallest r₀ with ψ(r) = 0 for all |r| > r₀ (refined by bisection between
  grid points); inf when ψ never returns to exactly 0, and also when it reaches 0 only through
  rounding or underflow: |ψ(0.99 r₀)| must be at least sqrt(eps)·sup|ψ| (Welsch's r·e^{-r²/2}
  decays, it does not reject, although its computed ψ is exactly 0 from r ≈ 8.7 in float64).
- Asymptotic efficiency at the standard normal, relative to the mean: 1/V with
  V = E[ψ(θ* - Y)²] / (E[Y·ψ(θ* - Y)])², Y ~ N(0, 1), θ* the Bayes act under N(0, 1). The
  denominator is E[ψ']² written by Stein's identity E[ψ'(θ - Y)] = E[Y ψ(θ - Y)], which needs no
  second derivative and is right for ψ with jumps (absolute error: 2/π). Quadrature: the
  trapezoid rule on [-12, 12] with 9600 nodes (spacing 0.0025, none at 0); at the kinks of
  Huber's ψ its error is below 1e-6 (checked against the closed forms in
  tests/test_diagnostics.py, also for the jump of the absolute error's ψ).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .._core.combine import Loss
from . import _jit
from ._bayes import bayes_act

__all__ = ["Influence", "influence"]


class Influence(NamedTuple):
    """The result of :func:`influence`."""

    #: ψ at the given residuals, their shape.
    psi: jax.Array
    #: sup|ψ| over the residuals (inf if unbounded).
    gross_error_sensitivity: jax.Array
    #: the smallest r₀ with ψ = 0 beyond ±r₀ (inf if none).
    rejection_point: jax.Array
    #: asymptotic efficiency at N(0, 1) relative to the mean.
    efficiency: jax.Array


def _psi(loss: Any, hp: dict[str, Any]) -> Any:
    def psi(p: jax.Array, t: jax.Array) -> jax.Array:
        def total(q: jax.Array) -> jax.Array:
            values = loss(q, t, **hp)
            _jit.require_elementwise("diagnostics.influence", values, q.shape)
            return jnp.sum(values)

        return jax.grad(total)(p)

    return psi


def _nodes(dtype: Any) -> tuple[jax.Array, jax.Array]:
    # An even count: no node at 0, where a symmetric ψ with a jump (sign) is 0.
    y = np.linspace(-12.0, 12.0, 9600)
    w = np.exp(-0.5 * y * y)
    w[0] *= 0.5
    w[-1] *= 0.5
    return jnp.asarray(y, dtype), jnp.asarray(w / w.sum(), dtype)


def _grid(dtype: Any) -> jax.Array:
    r = np.concatenate(
        [
            [0.0],
            np.geomspace(1e-9, 0.005, 41)[:-1],  # ψ may peak next to 0 (Wing, absolute error)
            np.linspace(0.005, 20.0, 4000),
            np.geomspace(20.0, 1e6, 241)[1:],
        ]
    )
    return jnp.asarray(r, dtype)


def influence(loss: Loss, residuals: ArrayLike, **hyperparameters: Any) -> Influence:
    """The ψ-function of a regression loss and its robust-statistics summary numbers.

    The summary numbers are the gross-error sensitivity, the rejection point and the asymptotic
    efficiency at the normal.

    Math (r = p - t, ψ(r) = ∂l/∂p at p = r, t = 0):
      gross-error sensitivity γ* = sup_r |ψ(r)|;  rejection point r₀ = inf{r : ψ = 0 beyond ±r};
      efficiency at N(0, 1) relative to the mean = (E[Y ψ(θ* - Y)])² / E[ψ(θ* - Y)²],
      Y ~ N(0, 1), θ* the Bayes act under N(0, 1) (0 for a symmetric loss); E[Y ψ(θ - Y)] is
      E[ψ'] by Stein's identity (valid where ψ jumps). Huber δ = 1.345 and Tukey c = 4.685 give
      0.95, the absolute error 2/π. The summaries do not depend on ``residuals``: they are
      computed on fixed grids (see the module notes for their resolution and limits).

    Args:
      loss: an elementwise regression loss ``loss(predictions, targets, **hyperparameters)``.
      residuals: real array, any shape: where to evaluate ψ.
      **hyperparameters: passed to ``loss``.

    Returns:
      :class:`Influence` (psi of the residuals' shape; three scalars) in the residuals' dtype
      (float32 for integer, float16 or bfloat16 residuals). Jit-able.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> from jaxloss.diagnostics import influence
      >>> out = influence(jaxloss.huber_loss, jnp.array([-3.0, 0.5, 3.0]), delta=1.345)
      >>> [round(v, 3) for v in out.psi.tolist()], round(float(out.gross_error_sensitivity), 3)
      ([-1.345, 0.5, 1.345], 1.345)
      >>> float(out.rejection_point), round(float(out.efficiency), 3)
      (inf, 0.95)
      >>> round(float(influence(jaxloss.tukey_biweight_loss, jnp.zeros(1)).rejection_point), 3)
      4.685

    Reference: F. Hampel, E. Ronchetti, P. Rousseeuw, W. Stahel, "Robust Statistics: The
    Approach Based on Influence Functions", Wiley 1986, ch. 2.
    """
    r = jnp.asarray(residuals)
    if not jnp.issubdtype(r.dtype, jnp.floating) or jnp.finfo(r.dtype).bits < 32:
        r = r.astype(jnp.float32)  # integer, float16, bfloat16: float32 (the grid reaches 1e6)
    # The loss's checks, with every hyperparameter concrete.
    jax.eval_shape(lambda a: loss(a, a, **hyperparameters), r.reshape(-1)[:1])
    return _jit.call(_influence_jit, _influence, loss, hyperparameters, r)


def _influence(
    r: jax.Array,
    dynamic: dict[str, Any],
    *,
    loss: Any,
    static: tuple[tuple[str, Any], ...],
) -> Influence:
    hyperparameters = {**dict(static), **dynamic}
    dtype = r.dtype
    psi = _psi(loss, hyperparameters)
    at_residuals = psi(r, jnp.zeros_like(r))

    # sup |ψ| and the rejection point on a symmetric grid.
    g = _grid(dtype)
    both = jnp.stack([g, -g])
    values = psi(both, jnp.zeros_like(both))
    mag = jnp.max(jnp.abs(values), axis=0)  # [G], over both signs
    sup = jnp.max(mag)
    growing = mag[-1] > mag[-2] * (1 + 1e-6)
    gross = jnp.where(growing, jnp.inf, sup)

    nonzero = mag != 0
    # first index from which ψ is 0 at every later grid point
    later_nonzero = jnp.cumsum(nonzero[::-1])[::-1]  # nonzero points at or after i
    zero_tail = later_nonzero == 0
    has_tail = zero_tail[-1]
    i0 = jnp.argmax(zero_tail)
    a0 = g[jnp.maximum(i0 - 1, 0)]
    b0 = g[i0]

    def mag_at(x: jax.Array) -> jax.Array:
        xs = jnp.stack([x, -x])
        return jnp.max(jnp.abs(psi(xs, jnp.zeros_like(xs))))

    def step(_: int, ab: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        a, b = ab
        mid = 0.5 * (a + b)
        zero = mag_at(mid) == 0
        return jnp.where(zero, a, mid), jnp.where(zero, mid, b)

    _, r0 = jax.lax.fori_loop(0, 60 if dtype == jnp.float64 else 32, step, (a0, b0))
    # A rejection point, not an underflow: ψ is still non-negligible just inside it.
    rejects = has_tail & (mag_at(0.99 * r0) > jnp.sqrt(jnp.finfo(dtype).eps) * sup)
    rejection = jnp.where(rejects, r0, jnp.inf)

    # Efficiency at N(0, 1) relative to the mean.
    # (a barrier, so that XLA does not constant-fold the solver's sort of the fixed nodes)
    y, w = jax.lax.optimization_barrier(_nodes(dtype))
    theta = bayes_act(loss, y, weights=w, **hyperparameters)
    p = jnp.zeros_like(y) + theta
    v = psi(p, y)
    slope = jnp.sum(w * y * v)
    efficiency = slope * slope / jnp.sum(w * v * v)
    return Influence(
        at_residuals, gross.astype(dtype), rejection.astype(dtype), efficiency.astype(dtype)
    )


_influence_jit = jax.jit(_influence, static_argnames=("loss", "static"))
