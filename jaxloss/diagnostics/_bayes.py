"""The Bayes act: the constant prediction with the least (weighted) mean loss over target samples.

Solver (one sample set; batches are vmapped): F(c) = mean_w l(c, y_i) is evaluated with its
derivative F'(c) = mean_w ψ(c - y_i) on a grid of candidates (65 evenly spaced points between the
smallest and largest sample of positive weight, plus 65 sample quantiles). The grid minimum picks
the basin (for non-convex losses the best of the grid's basins); two bisections on the sign of F'
then find both ends of the set where F' changes sign around it, and the result is their midpoint.
For a convex loss that set is the set of minimisers, so flat minima (absolute error, pinball with
nτ an integer) give the midpoint of the minimising interval. |F'| below 16·eps·mean_w|ψ| counts as
0 (the rounding of the mean of ψ). The iteration count is fixed (64 bisection steps in float64, 40
in float32), so the solver jits and vmaps.

A minimiser lies between the smallest and largest sample whenever every l(·, y) decreases towards
y and increases beyond it (every loss of a residual, asymmetric or not, and the relative losses).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

import jaxloss

from .._core.checks import concrete_array
from .._core.combine import Loss
from . import _jit

__all__ = ["bayes_act"]

_GRID = 65


def _objective(loss: Any, targets: jax.Array, weights: jax.Array, hp: dict[str, Any]) -> Any:
    """c -> (F(c), F'(c), mean_w |ψ|) for one sample set."""

    def mean_loss(p: jax.Array) -> jax.Array:
        values = loss(p, targets, **hp)
        _jit.require_elementwise("diagnostics.bayes_act", values, targets.shape)
        return jaxloss.mean(values, weights=weights)

    def at(c: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        value, g = jax.value_and_grad(mean_loss)(jnp.zeros_like(targets) + c)
        return value, jnp.sum(g), jnp.sum(jnp.abs(g))

    return at


def _solve_one(
    loss: Any, y: jax.Array, w: jax.Array, hp: dict[str, Any], iterations: int
) -> jax.Array:
    at = _objective(loss, y, w, hp)
    eps = jnp.finfo(y.dtype).eps
    counted = w > 0
    lo = jnp.min(jnp.where(counted, y, jnp.inf))
    hi = jnp.max(jnp.where(counted, y, -jnp.inf))
    bad = jnp.any(~jnp.isfinite(y) & counted) | jnp.any(jnp.isnan(w)) | ~jnp.any(counted)
    lo_s = jnp.where(bad, 0.0, lo).astype(y.dtype)
    hi_s = jnp.where(bad, 1.0, hi).astype(y.dtype)
    levels = jnp.linspace(0.0, 1.0, _GRID, dtype=y.dtype)
    quantiles = jnp.nanquantile(jnp.where(counted & ~bad, y, jnp.nan), levels)
    quantiles = jnp.where(bad, lo_s, quantiles)
    cand = jnp.sort(jnp.concatenate([jnp.linspace(lo_s, hi_s, _GRID, dtype=y.dtype), quantiles]))
    f, g, s = jax.lax.map(at, cand, batch_size=16)
    tol = 16 * eps * s
    m = cand.shape[0]
    k = jnp.argmin(jnp.where(jnp.isnan(f), jnp.inf, f))
    idx = jnp.arange(m)
    # Lower end: the last grid point at or left of k where F' < 0, and its right neighbour.
    j_lo = jnp.max(jnp.where((g < -tol) & (idx <= k), idx, 0))
    # Upper end: the first grid point at or right of k where F' > 0, and its left neighbour.
    j_hi = jnp.min(jnp.where((g > tol) & (idx >= k), idx, m - 1))
    # Neighbours by value, not index: the two grids can share points.
    right_of_lo = jnp.min(jnp.where(cand > cand[j_lo], cand, cand[-1]))
    left_of_hi = jnp.max(jnp.where(cand < cand[j_hi], cand, cand[0]))
    brackets_lo = jnp.stack([cand[j_lo], left_of_hi])
    brackets_hi = jnp.stack([right_of_lo, cand[j_hi]])

    def step(_: int, state: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        a, b = state
        mid = 0.5 * (a + b)
        _, gm, sm = jax.vmap(at)(mid)
        t = 16 * eps * sm
        # Lower end: inf{c : F'(c) >= 0}; upper end: sup{c : F'(c) <= 0} (|F'| <= t counts as 0).
        right = jnp.stack([gm[0] >= -t[0], gm[1] > t[1]])
        return jnp.where(right, a, mid), jnp.where(right, mid, b)

    a, b = jax.lax.fori_loop(0, iterations, step, (brackets_lo, brackets_hi))
    ends = 0.5 * (a + b)
    return jnp.where(bad, jnp.nan, 0.5 * (ends[0] + ends[1]))


def _concrete(x: Any) -> np.ndarray | None:
    return concrete_array(x)


def bayes_act(
    loss: Loss, samples: ArrayLike, *, weights: ArrayLike | None = None, **hyperparameters: Any
) -> jax.Array:
    """The constant prediction that minimises the (weighted) mean loss over samples of the target.

    Math:  c* = argmin_c Σ_i w_i l(c, y_i) / Σ_i w_i, the statistic a loss makes a model predict:
    squared error → the mean; absolute error → the median (the midpoint of the median interval
    for an even count, as ``numpy.median``); pinball τ → the τ-quantile (the midpoint between two
    order statistics where nτ is an integer); expectile τ → the τ-expectile; LinEx a (Δ = p - t)
    → -(1/a)·log mean(e^{-a y}); squared log ratio → the geometric mean exp(mean log y); squared
    logarithmic error → exp(mean log(1 + y)) - 1; Huber → Huber's M-estimate of location.

    Solver: a grid over [min y, max y] (evenly spaced points and sample quantiles) picks the basin,
    then bisection on the sign of the mean derivative F'(c) = mean_w ψ(c - y_i) (ψ by ``jax.grad``)
    finds both ends of the set where it changes sign; the result is their midpoint, i.e. the
    midpoint of the minimising interval for a convex loss, and the minimiser in the best grid basin
    for a non-convex one (Tukey, Welsch, ...). Fixed iteration count: jit- and vmap-able.

    Args:
      loss: an elementwise regression loss ``loss(predictions, targets, **hyperparameters)``,
        e.g. ``jaxloss.huber_loss`` or one built with the combinators; each l(·, y) must decrease
        towards y and increase beyond it (then a minimiser lies in [min y, max y]).
      samples: real array [..., N]: one set of N target samples per leading index.
      weights: optional non-negative weights of the samples' shape [..., N]; samples of weight 0
        are left out.
      **hyperparameters: passed to ``loss``.

    Returns:
      Array [...] in the samples' dtype (float32 for integer, float16 or bfloat16 samples): one
      Bayes act per sample set; NaN where a counted sample or a weight is NaN or infinite, or
      nothing is counted.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> from jaxloss.diagnostics import bayes_act
      >>> y = jnp.array([0.0, 1.0, 2.0, 10.0])
      >>> [round(float(bayes_act(f, y)), 4) for f in (jaxloss.squared_error,
      ...                                             jaxloss.absolute_error)]
      [3.25, 1.5]
      >>> round(float(bayes_act(jaxloss.pinball_loss, y, tau=0.9)), 4)
      10.0

    Reference: T. Gneiting, "Making and Evaluating Point Forecasts", JASA 106(494), 2011.
    """
    y = jnp.asarray(samples)
    if not jnp.issubdtype(y.dtype, jnp.floating):
        y = y.astype(jnp.result_type(float))
    if jnp.finfo(y.dtype).bits < 32:  # float16/bfloat16: solve in float32
        y = y.astype(jnp.float32)
    if y.ndim == 0:
        raise ValueError(
            "jaxloss.diagnostics.bayes_act: `samples` must have a sample axis [..., N]; got a "
            "scalar."
        )
    if weights is None:
        w = jnp.ones_like(y)
    else:
        w = jnp.asarray(weights).astype(y.dtype)
        if w.shape != y.shape:
            raise ValueError(
                "jaxloss.diagnostics.bayes_act: `weights` must have the shape of `samples` "
                f"{tuple(y.shape)}; got {tuple(w.shape)}."
            )
        values = _concrete(weights)
        if values is not None and np.any(values < 0):
            raise ValueError(
                "jaxloss.diagnostics.bayes_act: `weights` must be >= 0; got a minimum of "
                f"{values.min()}."
            )
    # The loss's checks, with every hyperparameter concrete.
    jax.eval_shape(lambda a: loss(a, a, **hyperparameters), y[..., :1])
    iterations = 64 if y.dtype == jnp.float64 else 40
    return _jit.call(_bayes_jit, _bayes, loss, hyperparameters, y, w, iterations=iterations)


def _bayes(
    y: jax.Array,
    w: jax.Array,
    dynamic: dict[str, Any],
    *,
    loss: Any,
    static: tuple[tuple[str, Any], ...],
    iterations: int,
) -> jax.Array:
    hp = {**dict(static), **dynamic}
    flat_y = y.reshape(-1, y.shape[-1])
    flat_w = w.reshape(-1, y.shape[-1])
    acts = jax.vmap(lambda a, b: _solve_one(loss, a, b, hp, iterations))(flat_y, flat_w)
    return acts.reshape(y.shape[:-1])


_bayes_jit = jax.jit(_bayes, static_argnames=("loss", "static", "iterations"))
