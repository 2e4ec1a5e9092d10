"""Barron's adaptive robust loss as a pure function of an explicit pytree of parameters.

:func:`adaptive_robust_init` makes ``{"latent_alpha", "latent_scale"}``, unconstrained arrays
that an optax optimizer updates alongside the model; :func:`adaptive_robust_parameters` maps
them to the shape α in [α_lo, α_hi] and the scale c > c_lo (Barron's sigmoid/softplus
parametrisation, robust_loss_pytorch's ``AdaptiveLossFunction``); :func:`adaptive_robust_nll` is
:func:`jaxloss.barron_nll` at those α and c. The state is the caller's: nothing is stored here.
The bounds ``alpha_lo``, ``alpha_hi``, ``scale_lo`` define the parametrisation, so they are
concrete numbers, the same in all three calls. The loss returns the shape of ``predictions``
(per-element values), in the compute dtype (float32 for float16/bfloat16 inputs).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._core import checks as _checks
from ._core.barron import log_partition, rho
from ._core.checks import NONNEGATIVE
from ._core.numerics import softplus

__all__ = ["adaptive_robust_init", "adaptive_robust_nll", "adaptive_robust_parameters"]


def _bounds(
    fn: str, alpha_lo: ArrayLike, alpha_hi: ArrayLike, scale_lo: ArrayLike
) -> tuple[float, float, float]:
    lo, hi, slo = (_checks.concrete_float(v) for v in (alpha_lo, alpha_hi, scale_lo))
    if lo is None or hi is None or slo is None:
        raise ValueError(
            f"jaxloss.{fn}: `alpha_lo`, `alpha_hi` and `scale_lo` must be concrete numbers "
            "(they define the parametrisation; train the latent parameters instead)."
        )
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo <= hi):
        raise ValueError(
            f"jaxloss.{fn}: `alpha_lo`, `alpha_hi` must be finite with 0 <= alpha_lo <= alpha_hi; "
            f"got alpha_lo={lo!r}, alpha_hi={hi!r}."
        )
    _checks.require(fn, "scale_lo", slo, NONNEGATIVE)
    return lo, hi, slo


def adaptive_robust_init(
    shape: tuple[int, ...] = (),
    *,
    alpha_init: float | None = None,
    scale_init: float = 1.0,
    alpha_lo: float = 0.001,
    alpha_hi: float = 1.999,
    scale_lo: float = 1e-5,
    dtype: Any = jnp.float32,
) -> dict[str, jax.Array]:
    """Unconstrained parameters of :func:`adaptive_robust_nll`, a pytree for optax.

    The parametrisation (Barron's, robust_loss_pytorch ``AdaptiveLossFunction``):
      α = α_lo + (α_hi - α_lo) · sigmoid(latent_alpha),   c = softplus(latent_scale) + c_lo,
    so any real latent values give α in [α_lo, α_hi] and c > c_lo. The latents are set so that
    α = ``alpha_init`` (default: the midpoint) and c = ``scale_init`` exactly.

    Args:
      shape: shape of α and c; () for one shape and scale, or e.g. (D,) for one per output
        dimension (must broadcast to the predictions' shape).
      alpha_init: initial α in [alpha_lo, alpha_hi], strictly inside unless they are equal
        (default (alpha_lo + alpha_hi)/2).
      scale_init: initial c > scale_lo.
      alpha_lo: lower bound of α, 0 <= alpha_lo <= alpha_hi (default 0.001, which keeps α away
        from the singular point 0); alpha_lo == alpha_hi fixes α.
      alpha_hi: upper bound of α, alpha_lo <= alpha_hi (default 1.999, which keeps α away from
        the singular point 2); alpha_lo == alpha_hi fixes α.
      scale_lo: c_lo >= 0, the smallest scale.
      dtype: floating dtype of the latents.

    Returns:
      ``{"latent_alpha": array, "latent_scale": array}`` of ``shape``. Pass the same bounds to
      :func:`adaptive_robust_nll` and :func:`adaptive_robust_parameters`.

    Examples:
      >>> import jaxloss
      >>> params = jaxloss.adaptive_robust_init(alpha_init=1.5, scale_init=0.3)
      >>> [round(float(v), 6) for v in jaxloss.adaptive_robust_parameters(params)]
      [1.5, 0.3]
    """
    fn = "adaptive_robust_init"
    lo, hi, slo = _bounds(fn, alpha_lo, alpha_hi, scale_lo)
    a0 = (lo + hi) / 2 if alpha_init is None else float(alpha_init)
    if hi > lo:
        if not lo < a0 < hi:
            raise ValueError(
                f"jaxloss.{fn}: `alpha_init` must be strictly inside (alpha_lo, alpha_hi) = "
                f"({lo!r}, {hi!r}); got {a0!r}."
            )
        frac = (a0 - lo) / (hi - lo)
        latent_alpha = math.log(frac) - math.log1p(-frac)
    else:
        if a0 != lo:
            raise ValueError(
                f"jaxloss.{fn}: `alpha_init` must equal alpha_lo == alpha_hi = {lo!r}; got {a0!r}."
            )
        latent_alpha = 0.0
    s0 = float(scale_init)
    if not (math.isfinite(s0) and s0 > slo):
        raise ValueError(
            f"jaxloss.{fn}: `scale_init` must be finite and > scale_lo = {slo!r}; got {s0!r}."
        )
    v = s0 - slo
    latent_scale = v + math.log(-math.expm1(-v))  # softplus⁻¹(v), stable for small and large v
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"jaxloss.{fn}: `dtype` must be a floating dtype; got {dtype}.")
    return {
        "latent_alpha": jnp.full(shape, latent_alpha, dtype),
        "latent_scale": jnp.full(shape, latent_scale, dtype),
    }


def _check_params(fn: str, params: Any) -> tuple[jax.Array, jax.Array]:
    if not isinstance(params, dict) or set(params) != {"latent_alpha", "latent_scale"}:
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(
            f"jaxloss.{fn}: `params` must be the dict made by jaxloss.adaptive_robust_init, with "
            f"keys ['latent_alpha', 'latent_scale']; got {got}."
        )
    la = _checks.check_floating(fn, "params['latent_alpha']", params["latent_alpha"])
    ls = _checks.check_floating(fn, "params['latent_scale']", params["latent_scale"])
    return la, ls


def adaptive_robust_parameters(
    params: Any,
    *,
    alpha_lo: float = 0.001,
    alpha_hi: float = 1.999,
    scale_lo: float = 1e-5,
) -> tuple[jax.Array, jax.Array]:
    """The shape α and scale c encoded by ``params`` (see :func:`adaptive_robust_init`).

    Math:  α = α_lo + (α_hi - α_lo) sigmoid(latent_alpha),  c = softplus(latent_scale) + c_lo.

    Gradient: dα/dlatent_alpha = (α_hi - α_lo) σ(1 - σ);  dc/dlatent_scale = sigmoid(latent_scale).

    Args:
      params: the dict made by :func:`adaptive_robust_init` (possibly updated by optax).
      alpha_lo: the lower bound of α, as used at initialisation.
      alpha_hi: the upper bound of α, as used at initialisation.
      scale_lo: the smallest scale c_lo, as used at initialisation.

    Returns:
      ``(alpha, scale)``, arrays of the latents' shape and dtype.

    Examples:
      >>> import jaxloss
      >>> alpha, scale = jaxloss.adaptive_robust_parameters(jaxloss.adaptive_robust_init())
      >>> round(float(alpha), 6), round(float(scale), 6)
      (1.0, 1.0)
    """
    return _parameters("adaptive_robust_parameters", params, alpha_lo, alpha_hi, scale_lo)


def _parameters(
    fn: str, params: Any, alpha_lo: ArrayLike, alpha_hi: ArrayLike, scale_lo: ArrayLike
) -> tuple[jax.Array, jax.Array]:
    lo, hi, slo = _bounds(fn, alpha_lo, alpha_hi, scale_lo)
    la, ls = _check_params(fn, params)
    alpha = lo + (hi - lo) * jax.nn.sigmoid(la)
    scale = softplus(ls) + slo
    return alpha, scale


def adaptive_robust_nll(
    predictions: ArrayLike,
    targets: ArrayLike,
    params: Any,
    *,
    alpha_lo: float = 0.001,
    alpha_hi: float = 1.999,
    scale_lo: float = 1e-5,
) -> jax.Array:
    """Barron's adaptive robust loss with α and c learned from unconstrained ``params``.

    Math:  l = barron_nll(r, α, c) = ρ(r, α, c) + log c + log Z(α), with
      α = α_lo + (α_hi - α_lo) sigmoid(latent_alpha),  c = softplus(latent_scale) + c_lo.
    Train ``params`` jointly with the model by minimising ``jaxloss.mean`` of this loss; heavy-
    tailed residuals drive α down (towards Cauchy), Gaussian ones up (towards L2).

    Gradient (chain rule through :func:`barron_nll`, whose gradient is documented there):
      dl/dlatent_alpha = (dρ/dα + d log Z/dα) · (α_hi - α_lo) σ(latent_alpha)(1 - σ(latent_alpha)),
      dl/dlatent_scale = (dρ/dc + 1/c) · sigmoid(latent_scale);
    dl/dpredictions = (r/c²) P^(α/2 - 1), dl/dtargets = -that. With a per-dimension α and c of
    shape (D,), their gradients sum over the other axes of the mean, as usual.

    Args:
      predictions: floating array, any shape.
      targets: real array of the same shape.
      params: ``{"latent_alpha", "latent_scale"}`` from :func:`adaptive_robust_init`, arrays
        broadcasting to the predictions' shape.
      alpha_lo: the lower bound of α, as used at initialisation (a concrete number).
      alpha_hi: the upper bound of α, as used at initialisation (a concrete number).
      scale_lo: the smallest scale c_lo, as used at initialisation (a concrete number).

    Returns:
      Array of the shape of ``predictions`` (the per-element NLL). robust_loss_pytorch
      ``AdaptiveLossFunction(num_dims, float_dtype, device).lossfun(r)`` (which also returns
      per-element values), as a pure function of an explicit pytree.

    Examples:
      >>> import jax, jax.numpy as jnp, optax, jaxloss
      >>> params = jaxloss.adaptive_robust_init()
      >>> opt = optax.adam(0.05)
      >>> state = opt.init(params)
      >>> r = jnp.array([0.1, -0.3, 0.2, 8.0])  # residuals with one outlier
      >>> loss = lambda q: jaxloss.mean(jaxloss.adaptive_robust_nll(r, jnp.zeros(4), q))
      >>> updates, state = opt.update(jax.jit(jax.grad(loss))(params), state)
      >>> params = optax.apply_updates(params, updates)
      >>> alpha, scale = jaxloss.adaptive_robust_parameters(params)
      >>> bool(alpha < 1.0)  # the outlier pushed α towards the robust end
      True

    Reference: Barron, "A General and Adaptive Robust Loss Function", CVPR 2019 (arXiv:1701.03077).
    """
    fn = "adaptive_robust_nll"
    p, t = _checks.prepare_pair(fn, predictions, targets)
    alpha, scale = _parameters(fn, params, alpha_lo, alpha_hi, scale_lo)
    _checks.check_broadcastable(fn, "params['latent_alpha']", alpha, p.shape, "the predictions'")
    _checks.check_broadcastable(fn, "params['latent_scale']", scale, p.shape, "the predictions'")
    dtype = p.dtype
    alpha = alpha.astype(dtype)
    scale = scale.astype(dtype)
    return rho(p, t, scale, alpha) + jnp.log(scale) + log_partition(alpha)
