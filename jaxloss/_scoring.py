"""Proper scoring rules for probabilistic forecasts, as losses (lower is better).

The continuous ranked probability score of a forecast distribution F for an outcome y,
  CRPS(F, y) = ∫ (F(x) - 1{x ≥ y})² dx = E|X - y| - ½ E|X - X'|   (X, X' ~ F independent),
and its multivariate generalisation, the energy score ES(F, y) = E‖X - y‖ - ½ E‖X - X'‖
(Gneiting & Raftery, JASA 2007, §4.2–4.3; they report the negated score). Both are strictly
proper: the expected score under the outcome's distribution G is minimised by F = G. Each loss
returns one value per forecast (the forecast's own axes reduced): a Gaussian given by its mean
and standard deviation, an ensemble of M members (``axis`` = the member axis), a set of Q
quantiles at given levels, a multivariate ensemble [..., M, D].

Estimators for an ensemble x_1..x_M (sorted: x_(1) ≤ ... ≤ x_(M)): ``"standard"`` is the CRPS of
the empirical distribution, E|X - X'| estimated by (1/M²) Σ_ij |x_i - x_j|; ``"fair"`` divides
by M(M - 1) instead, which makes the score unbiased for the CRPS of the distribution the
members are drawn from (Ferro, QJRMS 2014): minimised in expectation by an ensemble drawn from
the outcome's distribution, where the standard score favours too narrow ensembles at small M.
The pair sum is Σ_ij |x_i - x_j| = 2 Σ_i (2i - M - 1) x_(i), O(M log M) by a sort.

float16/bfloat16 inputs are computed in float32 and the result is float32; float64 stays float64.
A NaN anywhere in a forecast or its outcome makes that forecast's value and gradient NaN.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import erf
from jax.typing import ArrayLike

from ._core import ad as _ad
from ._core import checks as _checks
from ._core.numerics import abs0, nan_gradient
from ._core.registry import register

__all__ = ["crps_ensemble", "crps_gaussian", "crps_quantile", "energy_score"]

_INV_SQRT_PI = 1 / math.sqrt(math.pi)
_INV_SQRT_2 = 1 / math.sqrt(2.0)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_ESTIMATORS = ("standard", "fair")


def _check_estimator(fn: str, estimator: Any, members: int) -> None:
    if estimator not in _ESTIMATORS:
        raise ValueError(
            f"jaxloss.{fn}: `estimator` must be 'standard' or 'fair'; got {estimator!r}."
        )
    if estimator == "fair" and members < 2:
        raise ValueError(
            f"jaxloss.{fn}: `estimator='fair'` needs at least 2 members (it divides by "
            f"M(M - 1)); got M = {members}. Use estimator='standard' (|x - y| for one member)."
        )


def _member_axis(fn: str, x: jax.Array, t: jax.Array, axis: int, what: str) -> jax.Array:
    """``x`` with the member axis moved last, after checking the targets' shape against it."""
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(
            f"jaxloss.{fn}: `axis` {axis} is out of range for predictions of shape "
            f"{tuple(x.shape)}."
        )
    x = jnp.moveaxis(x, axis, -1)
    if tuple(t.shape) != tuple(x.shape[:-1]):
        raise ValueError(
            f"jaxloss.{fn}: `targets` must have the shape of `predictions` without the {what} "
            f"axis {axis}: {tuple(x.shape[:-1])}; got targets.shape={tuple(t.shape)}."
        )
    return x


# ----------------------------------------------------------------------------------------------
# Gaussian


@jax.custom_jvp
def _crps_normal(mu: jax.Array, y: jax.Array, sigma: jax.Array) -> jax.Array:
    h = 0.5 * y - 0.5 * mu  # half the residual: finite wherever the value is
    z = _standardised(h, sigma)
    value = (2 * h) * erf(z * _INV_SQRT_2) + sigma * (
        2 * _INV_SQRT_2PI * jnp.exp(-0.5 * z * z) - _INV_SQRT_PI
    )
    return jnp.where(sigma < 0, jnp.nan, value)


def _standardised(h: jax.Array, sigma: jax.Array) -> jax.Array:
    """z = (y - μ)/σ; at σ = 0 its limit ±inf (0 where y = μ), so the formula gives |y - μ|."""
    zero = sigma == 0
    limit = jnp.where(h == 0, 0, jnp.sign(h) * jnp.inf)
    return jnp.where(zero, limit, (2 * h) / jnp.where(zero, 1, sigma))


def _crps_normal_jvp(primals, tangents):
    mu, y, sigma = primals
    dmu, dy, dsigma = tangents
    value = _crps_normal(mu, y, sigma)
    if _ad.all_zero(dmu, dy, dsigma):
        return value, jnp.zeros_like(value)
    z = _standardised(0.5 * y - 0.5 * mu, sigma)
    e = erf(z * _INV_SQRT_2)  # 2Φ(z) - 1
    out = jnp.zeros_like(value)
    if not _ad.is_zero(dmu):
        out = out - e * dmu
    if not _ad.is_zero(dy):
        out = out + e * dy
    if not _ad.is_zero(dsigma):
        out = out + (2 * _INV_SQRT_2PI * jnp.exp(-0.5 * z * z) - _INV_SQRT_PI) * dsigma
    return value, out


_crps_normal.defjvp(_crps_normal_jvp, symbolic_zeros=True)


@register(plot="residual", plot_defaults={"scale": 1.0})
def crps_gaussian(predictions: ArrayLike, targets: ArrayLike, *, scale: ArrayLike) -> jax.Array:
    """CRPS of a Gaussian forecast N(μ, σ²) for an outcome y, elementwise, in closed form.

    Math (Gneiting, Raftery, Westveld & Goldman, MWR 2005, eq. 5), z = (y - μ)/σ:
      CRPS = σ [z (2Φ(z) - 1) + 2φ(z) - 1/√π]  = ∫ (Φ((x - μ)/σ) - 1{x ≥ y})² dx,
    with Φ, φ the standard normal CDF and density. At σ = 0 it is |y - μ| (the formula's limit;
    σ = 0 is allowed, σ < 0 is a ValueError when concrete and NaN under jit). Written in the
    half residual (y - μ)/2, so values in range stay finite at the extremes of float32.

    Gradient: dl/dμ = 1 - 2Φ(z) = -erf(z/√2), dl/dy = 2Φ(z) - 1, dl/dσ = 2φ(z) - 1/√π (a
    closed-form JVP). At σ = 0: dl/dμ = -sign(y - μ) (0 at y = μ) and dl/dσ = -1/√π
    (2φ(0) - 1/√π at y = μ).

    Args:
      predictions: floating [...] forecast means μ.
      targets: real [...] outcomes y, the shape of ``predictions``.
      scale: the forecast standard deviations σ ≥ 0 (keyword-only), broadcastable to
        ``predictions``; may be traced (learned).

    Returns:
      Array of the shape of ``predictions``: ``properscoring.crps_gaussian(y, μ, σ)`` and
      ``scoringrules.crps_normal(y, μ, σ)``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> v = jaxloss.crps_gaussian(jnp.array([0.0, 0.0]), jnp.array([0.0, 1.0]), scale=1.0)
      >>> [round(x, 5) for x in v.tolist()]
      [0.23369, 0.60244]
    """
    fn = "crps_gaussian"
    mu, y = _checks.prepare_pair(fn, predictions, targets)
    _checks.require_elements(fn, "scale", scale, _checks.NONNEGATIVE)
    if isinstance(scale, (int, float)) and not isinstance(scale, bool):
        # A Python number takes the predictions' dtype (it does not raise the precision).
        dtype = _checks.compute_dtype(mu, y)
        s = jnp.full(mu.shape, scale, dtype)
    else:
        s = _checks.check_floating(fn, "scale", scale)
        _checks.check_broadcastable(fn, "scale", s, tuple(mu.shape), "the predictions'")
        dtype = _checks.compute_dtype(mu, y, s)
        s = jnp.broadcast_to(s.astype(dtype), mu.shape)
    return _crps_normal(mu.astype(dtype), y.astype(dtype), s)


# ----------------------------------------------------------------------------------------------
# Ensemble


@register(plot=None)
def crps_ensemble(
    predictions: ArrayLike, targets: ArrayLike, *, axis: int = -1, estimator: str = "standard"
) -> jax.Array:
    """CRPS of an ensemble forecast (M members) for an outcome, O(M log M) through a sort.

    Math (x_(i) the sorted members, i = 1..M; see the module notes for the estimators):
      standard: (1/M) Σ_i |x_i - y| - (1/M²) Σ_i (2i - M - 1) x_(i)
                = (1/M) Σ_i |x_i - y| - (1/(2M²)) Σ_ij |x_i - x_j|   (the CRPS of the empirical
                distribution; Grimit et al., QJRMS 2006);
      fair:     the same with 1/(M(M - 1)) for 1/M² (Ferro et al. 2008; needs M ≥ 2).
    One member (standard) gives |x - y|.

    Gradient: dl/dx_j = (1/M) sign(x_j - y) - (2 rank_j - M - 1)/M² (fair: /(M(M - 1))), with
    rank_j the position of x_j in the sorted ensemble (ties: the sort's order; the pair sum's
    derivative there is a subgradient); dl/dy = -(1/M) Σ_i sign(x_i - y); sign(0) = 0 at a
    member equal to the outcome. Automatic differentiation through the sort.

    Args:
      predictions: floating [..., M, ...] ensemble members along ``axis``.
      targets: real outcomes, the shape of ``predictions`` without ``axis``.
      axis: the member axis.
      estimator: ``"standard"`` (default) or ``"fair"``.

    Returns:
      Array of the shape of ``targets``: ``properscoring.crps_ensemble(y, x)`` (standard) and
      ``scoringrules.crps_ensemble(y, x, estimator="nrg")`` / ``estimator="fair"``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> x = jnp.array([[0.0, 1.0, 3.0]])
      >>> round(float(jaxloss.crps_ensemble(x, jnp.array([1.0]))[0]), 4)  # 1 - 12/18
      0.3333
      >>> round(float(jaxloss.crps_ensemble(x, jnp.array([1.0]), estimator="fair")[0]), 4)
      0.0
    """
    fn = "crps_ensemble"
    x = _checks.check_floating(fn, "predictions", predictions)
    t = _checks.check_real(fn, "targets", targets)
    x = _member_axis(fn, x, t, axis, "member")
    m = x.shape[-1]
    _check_estimator(fn, estimator, m)
    dtype = _checks.compute_dtype(x, t)
    x, t = x.astype(dtype), t.astype(dtype)
    # (1/M) Σ |x_i - y| as Σ (2/M)|x_i/2 - y/2|: no overflow where the value is in range.
    spread = jnp.sum(abs0(0.5 * x - 0.5 * t[..., None]), axis=-1) * (2.0 / m)
    denom = m * m if estimator == "standard" else m * (m - 1)
    coef = (2 * jnp.arange(1, m + 1) - m - 1).astype(dtype) / denom  # |coef| < 1/(M - 1)
    pairs = jnp.sum(coef * jnp.sort(x, axis=-1), axis=-1)
    return nan_gradient(spread - pairs, x, -1)


# ----------------------------------------------------------------------------------------------
# Quantiles


@register(plot=None)
def crps_quantile(
    predictions: ArrayLike, targets: ArrayLike, *, quantile_levels: ArrayLike, axis: int = -1
) -> jax.Array:
    """CRPS approximated from Q forecast quantiles: twice the mean pinball loss over the levels.

    Math: with q_k the forecast τ_k-quantile and ρ_τ(u) = u (τ - 1{u < 0}) (u = y - q),
      l = (2/Q) Σ_k ρ_{τ_k}(y - q_k)
    (the quantile decomposition CRPS = 2 ∫_0^1 ρ_τ(y - F⁻¹(τ)) dτ, Laio & Tamea 2007, with the
    levels as quadrature nodes; scoringrules' ``crps_quantile`` convention: the factor 2 is
    included). With the sorted members of an ensemble as q and τ_k = (k - ½)/Q it equals the
    standard ensemble CRPS exactly. Proper for each quantile separately.

    Gradient: dl/dq_k = (2/Q)(1{y < q_k} - τ_k), dl/dy = (2/Q) Σ_k (τ_k - 1{y < q_k}); at
    y = q_k the midpoint (2/Q)(½ - τ_k), as ``pinball_loss``.

    Args:
      predictions: floating [..., Q, ...] forecast quantiles along ``axis``.
      targets: real outcomes, the shape of ``predictions`` without ``axis``.
      quantile_levels: [Q] levels τ_k in (0, 1) (checked when concrete).
      axis: the quantile axis.

    Returns:
      Array of the shape of ``targets``: ``scoringrules.crps_quantile(y, q, alpha=τ)``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> q = jnp.array([[-1.0, 0.0, 1.0]])
      >>> levels = jnp.array([0.25, 0.5, 0.75])
      >>> v = jaxloss.crps_quantile(q, jnp.array([0.5]), quantile_levels=levels)
      >>> round(float(v[0]), 4)  # (2/3)(1.5·0.25 + 0.5·0.5 + 0.5·0.25)
      0.5
    """
    fn = "crps_quantile"
    x = _checks.check_floating(fn, "predictions", predictions)
    t = _checks.check_real(fn, "targets", targets)
    x = _member_axis(fn, x, t, axis, "quantile")
    tau = _checks.check_real(fn, "quantile_levels", quantile_levels)
    if tau.shape != (x.shape[-1],):
        raise ValueError(
            f"jaxloss.{fn}: `quantile_levels` must have shape ({x.shape[-1]},) (one level per "
            f"quantile along `axis`); got {tuple(tau.shape)}."
        )
    _checks.require_elements(
        fn,
        "quantile_levels",
        quantile_levels,
        _checks.Interval(0.0, 1.0, lo_open=True, hi_open=True),
    )
    dtype = _checks.compute_dtype(x, t)  # the levels do not raise the precision
    x, t, tau = x.astype(dtype), t.astype(dtype), tau.astype(dtype)
    # (2/Q) ρ_τ(y - q) = |h| + (2τ - 1) h with h = (y/2 - q/2)(2/Q), each term at most |h|:
    # no overflow where the value is in range.
    h = (0.5 * t[..., None] - 0.5 * x) * (2.0 / x.shape[-1])
    value = jnp.sum(abs0(h) + (2 * tau - 1) * h, axis=-1)
    return nan_gradient(value, x, -1)


# ----------------------------------------------------------------------------------------------
# Energy score


def _norm(v: jax.Array) -> jax.Array:
    """‖v‖ over the last axis with gradient v/‖v‖ (0 at v = 0, never NaN), scaled by an exact
    power of two so that squares of large entries do not overflow (nor tiny ones underflow)."""
    amax = jax.lax.stop_gradient(jnp.max(jnp.abs(v), axis=-1, keepdims=True))
    _, e = jnp.frexp(jnp.where(jnp.isfinite(amax), amax, 1))
    scale = jnp.ldexp(jnp.ones_like(amax), e)
    u = v / scale
    ss = jnp.sum(u * u, axis=-1, keepdims=True)
    zero = ss == 0
    return jnp.squeeze(scale * jnp.where(zero, 0, jnp.sqrt(jnp.where(zero, 1, ss))), -1)


@register(plot=None)
def energy_score(
    predictions: ArrayLike, targets: ArrayLike, *, estimator: str = "standard"
) -> jax.Array:
    """Energy score of a multivariate ensemble forecast (M members in D dimensions).

    Math (Gneiting & Raftery 2007, §4.3; Gneiting et al., TEST 2008), β = 1:
      ES = (1/M) Σ_i ‖x_i - y‖ - (1/(2M²)) Σ_ij ‖x_i - x_j‖     (standard)
    with 1/(2M(M - 1)) for ``"fair"`` (M ≥ 2). D = 1 gives ``crps_ensemble``. O(M² D).

    Gradient: dl/dx_j = (1/M) u(x_j - y) - (1/M²) Σ_i u(x_j - x_i) (fair: 1/(M(M - 1))),
    dl/dy = -(1/M) Σ_i u(x_i - y), with u(v) = v/‖v‖ and u(0) = 0 (coincident points; a plain
    norm would give NaN there, for every member through the i = j pairs).

    Args:
      predictions: floating [..., M, D] ensemble members.
      targets: real [..., D] outcomes.
      estimator: ``"standard"`` (default) or ``"fair"``.

    Returns:
      Array of the batch shape [...]: ``scoringrules.energy_score(y, x, m_axis=-2, v_axis=-1,
      estimator="nrg" | "fair")``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> x = jnp.array([[[0.0, 0.0], [3.0, 4.0]]])
      >>> round(float(jaxloss.energy_score(x, jnp.array([[0.0, 0.0]]))[0]), 4)  # 5/2 - 10/8
      1.25
    """
    fn = "energy_score"
    x = _checks.check_floating(fn, "predictions", predictions)
    t = _checks.check_real(fn, "targets", targets)
    if x.ndim < 2 or tuple(t.shape) != (*x.shape[:-2], x.shape[-1]):
        raise ValueError(
            f"jaxloss.{fn}: `predictions` must be [..., M, D] and `targets` [..., D] with the "
            f"same batch shape and D; got predictions.shape={tuple(x.shape)}, "
            f"targets.shape={tuple(t.shape)}."
        )
    m = x.shape[-2]
    _check_estimator(fn, estimator, m)
    dtype = _checks.compute_dtype(x, t)
    x, t = x.astype(dtype), t.astype(dtype)
    # Half differences: no overflow where the value is in range.
    to_outcome = jnp.sum(_norm(0.5 * x - 0.5 * t[..., None, :]), axis=-1) * (2.0 / m)
    pairs = _norm(0.5 * x[..., :, None, :] - 0.5 * x[..., None, :, :])  # [..., M, M]
    denom = 2 * m * m if estimator == "standard" else 2 * m * (m - 1)
    value = to_outcome - jnp.sum(pairs * (2.0 / denom), axis=(-2, -1))
    return nan_gradient(value, x, (-2, -1))
