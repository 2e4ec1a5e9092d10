"""Policy-gradient losses on token log-probabilities: PPO-clip, the GRPO family, GSPO, CISPO.

Conventions, once for the module:

- Inputs are per-token: ``log_probs`` (the policy being trained, log π_θ of each sampled token),
  ``old_log_probs`` (the policy that sampled them), a ``mask`` of completion tokens, all of shape
  [..., T]; ``advantages`` per sequence [...] or per token [..., T]. Masked tokens reach neither
  the value nor the gradient (NaN there included).
- The per-token loss is PPO's clipped surrogate, ``ℓ_t = −min(r_t·Â, clip(r_t, 1 − ε_low,
  1 + ε_high)·Â)`` with ``r_t = π_θ/π_old``, plus ``kl_coef`` times a KL estimate against a
  reference policy. Clipping is decided in log space (``log r > log1p(ε_high)``), so a ratio of
  e^{1e4} never overflows into the gradient; a clipped token has exactly zero gradient, a token at
  the clip boundary does not, and a token with Â = 0 gives 0 whatever its ratio.
- Output: one value per sequence, never a batch reduction, chosen so that TRL's aggregations are
  plain reductions of it. With ``N_i = Σ_t m·ℓ_t`` and ``L_i = Σ_t m``:

  | ``aggregation`` | per-sequence value | ``reduction="mean"`` gives | TRL ``loss_type`` |
  |---|---|---|---|
  | ``"sequence_mean"`` | ``N_i / max(L_i, 1)`` | ``(1/B) Σ_i N_i / L_i`` | ``grpo`` |
  | ``"token_mean"`` | ``N_i / max(L_i, 1)`` | ``Σ_i N_i / Σ_i L_i`` | ``bnpo``, ``dapo`` |
  | ``"fixed_length"`` | ``N_i / max_length`` | ``Σ_i N_i / (B·max_length)`` | ``dr_grpo`` |

  (``dapo`` as on one process.) So ``"token_mean"`` is the mean of the per-sequence values
  weighted by their token counts (``jaxloss.mean(values, weights=lengths)``, which is also how
  several devices combine it with ``mean_parts``). A sequence without tokens gives 0 with a zero
  gradient.
- ``return_aux=True`` returns ``(values, aux)`` with detached statistics over the kept tokens:
  ``clip_fraction``, ``ratio_mean``, ``ratio_min``, ``ratio_max``, ``approx_kl`` (k3 of the
  sampling policy against the current one) and, with a reference, ``kl`` (the chosen estimator).
"""

from __future__ import annotations

from typing import Any, Literal, overload

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from . import _reduce
from ._core import checks as _checks
from ._core.numerics import nan_gradient
from ._core.registry import register

__all__ = [
    "cispo_loss",
    "group_relative_advantages",
    "policy_gradient_loss",
    "sequence_log_probs",
]

_AGGREGATIONS = ("sequence_mean", "token_mean", "fixed_length")
_KL_ESTIMATORS = ("k1", "k2", "k3")


def sequence_log_probs(
    token_log_probs: ArrayLike, mask: ArrayLike, *, average: bool = False
) -> jax.Array:
    """Sequence log-probabilities from token log-probabilities: the masked sum (or mean) over T.

    ``log π(y|x) = Σ_t m_t·log π(y_t|x, y_<t)`` (``average=True``: divided by the token count, the
    length-normalised ``ℓ̄`` of ORPO and SimPO). Masked tokens reach neither the value nor the
    gradient, NaN included; a sequence with no tokens gives 0 with a zero gradient.

    Args:
      token_log_probs: per-token log-probabilities, float [..., T].
      mask: which tokens belong to the completion, bool or 0/1, same shape.
      average: divide by the number of kept tokens.

    Returns:
      One value per sequence, shape [...].

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> lp = jnp.array([[-1.0, -2.0, -3.0]])
      >>> jaxloss.sequence_log_probs(lp, jnp.array([[True, True, False]])).tolist()
      [-3.0]
    """
    fn = "sequence_log_probs"
    lp = _checks.check_floating(fn, "token_log_probs", token_log_probs)
    m = _mask(fn, mask, lp)
    lp = lp.astype(_checks.compute_dtype(lp))
    total = jnp.sum(jnp.where(m, lp, 0), axis=-1)
    if not average:
        return total
    return total / jnp.maximum(jnp.sum(m, axis=-1), 1).astype(lp.dtype)


def group_relative_advantages(
    rewards: ArrayLike, group_size: int, *, normalize_std: bool = True, eps: float = 1e-4
) -> jax.Array:
    """GRPO's advantages: each reward minus its group's mean, divided by the group's std.

    Shao et al. (2024), §4.1.2, as TRL computes it: the last axis holds consecutive groups of
    ``group_size`` completions of one prompt; ``Â = (r − mean_g) / (std_g + eps)`` with the
    Bessel-corrected std (``ddof=1``) and ``eps = 1e-4``. A group whose rewards are all equal
    gives 0. ``normalize_std=False`` is Dr. GRPO's ``Â = r − mean_g``.

    Args:
      rewards: float [..., G·n], groups of ``group_size`` consecutive entries.
      group_size: G ≥ 2 with ``normalize_std`` (a std needs two samples), ≥ 1 without.
      normalize_std: divide by the group's standard deviation.
      eps: added to the std.

    Returns:
      The advantages, the shape of ``rewards``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> a = jaxloss.group_relative_advantages(jnp.array([1.0, 0.0, 5.0, 5.0]), 2)
      >>> [round(float(x), 3) for x in a]
      [0.707, -0.707, 0.0, 0.0]
    """
    fn = "group_relative_advantages"
    r = _checks.check_floating(fn, "rewards", rewards)
    r = r.astype(_checks.compute_dtype(r))
    lowest = 2 if normalize_std else 1
    if not isinstance(group_size, int) or group_size < lowest:
        raise ValueError(
            f"jaxloss.{fn}: `group_size` must be an int >= {lowest}"
            + (" (a std needs two samples; normalize_std=False takes 1)" if normalize_std else "")
            + f"; got {group_size!r}."
        )
    if r.ndim == 0 or r.shape[-1] % group_size:
        raise ValueError(
            f"jaxloss.{fn}: the last axis of `rewards` must hold whole groups of "
            f"group_size={group_size}; got shape {tuple(r.shape)}."
        )
    _checks.require(fn, "eps", eps, _checks.NONNEGATIVE)
    g = r.reshape(*r.shape[:-1], -1, group_size)
    centred = g - jnp.mean(g, axis=-1, keepdims=True)
    if normalize_std:
        std = jnp.sqrt(jnp.sum(centred**2, axis=-1, keepdims=True) / (group_size - 1))
        centred = centred / (std + eps)
    return centred.reshape(r.shape)


def _mask(fn: str, mask: ArrayLike, like: jax.Array) -> jax.Array:
    m = _checks.check_real(fn, "mask", mask)
    _checks.check_same_shape(
        fn, "token_log_probs" if fn == "sequence_log_probs" else "log_probs", like, "mask", m
    )
    return m.astype(bool)


def _tokens(
    fn: str, log_probs: ArrayLike, old_log_probs: ArrayLike, advantages: ArrayLike, mask: ArrayLike
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    lp = _checks.check_floating(fn, "log_probs", log_probs)
    old = _checks.check_floating(fn, "old_log_probs", old_log_probs)
    _checks.check_same_shape(fn, "log_probs", lp, "old_log_probs", old)
    if lp.ndim == 0:
        raise ValueError(f"jaxloss.{fn}: `log_probs` must have a token axis (shape [..., T]).")
    adv = _checks.check_floating(fn, "advantages", advantages)
    if adv.shape not in (lp.shape, lp.shape[:-1]):
        raise ValueError(
            f"jaxloss.{fn}: `advantages` must have shape {tuple(lp.shape[:-1])} (per sequence) or "
            f"{tuple(lp.shape)} (per token); got {tuple(adv.shape)}."
        )
    m = _mask(fn, mask, lp)
    dtype = _checks.compute_dtype(lp, old, adv)
    adv = adv.astype(dtype)
    if adv.shape != lp.shape:
        adv = adv[..., None]
    return lp.astype(dtype), old.astype(dtype), jnp.broadcast_to(adv, lp.shape), m


def _aggregate(
    fn: str,
    token_loss: jax.Array,
    lp: jax.Array,
    m: jax.Array,
    aggregation: str,
    max_length: Any,
    reduction: str,
) -> jax.Array:
    if aggregation not in _AGGREGATIONS:
        raise ValueError(
            f"jaxloss.{fn}: `aggregation` must be one of {', '.join(_AGGREGATIONS)}; "
            f"got {aggregation!r}."
        )
    reduction = _reduce.check_reduction(fn, reduction)
    # A NaN at a kept token makes its sequence's value NaN, and (as for every loss) the gradient
    # of that value w.r.t. the sequence's log-probabilities NaN too.
    numer = nan_gradient(jnp.sum(jnp.where(m, token_loss, 0), axis=-1), lp, -1)
    count = jnp.sum(m, axis=-1).astype(token_loss.dtype)
    if aggregation == "fixed_length":
        if not isinstance(max_length, int) or max_length < 1:
            raise ValueError(
                f"jaxloss.{fn}: aggregation 'fixed_length' needs `max_length`, a positive int "
                f"(the generation budget; Dr. GRPO's constant); got {max_length!r}."
            )
        values = numer / max_length
    else:
        if max_length is not None:
            raise ValueError(
                f"jaxloss.{fn}: `max_length` is used by aggregation 'fixed_length' only; got "
                f"aggregation={aggregation!r}."
            )
        values = numer / jnp.maximum(count, 1)
    if reduction == "none":
        return values
    if aggregation == "token_mean":
        return _reduce.reduce_loss(numer, reduction, denominators=count)
    return _reduce.reduce_loss(values, reduction)


def _kl(estimator: str, d: jax.Array) -> jax.Array:
    """KL(π_θ ‖ π_ref) estimates from d = log π_ref − log π_θ at tokens sampled from π_θ."""
    if estimator == "k1":
        return -d
    if estimator == "k2":
        return 0.5 * d**2
    return jnp.expm1(d) - d


def _stats(
    log_ratio: jax.Array, clipped: jax.Array, m: jax.Array, kl: jax.Array | None
) -> dict[str, jax.Array]:
    log_ratio = jax.lax.stop_gradient(log_ratio)
    n = jnp.maximum(jnp.sum(m), 1).astype(log_ratio.dtype)
    ratio = jnp.exp(log_ratio)

    def avg(x: jax.Array) -> jax.Array:
        return jnp.sum(jnp.where(m, x, 0)) / n

    out = {
        "clip_fraction": avg(clipped.astype(log_ratio.dtype)),
        "ratio_mean": avg(ratio),
        "ratio_min": jnp.min(jnp.where(m, ratio, jnp.inf)),
        "ratio_max": jnp.max(jnp.where(m, ratio, -jnp.inf)),
        "approx_kl": avg(jnp.expm1(log_ratio) - log_ratio),
    }
    if kl is not None:
        out["kl"] = avg(jax.lax.stop_gradient(kl))
    return out


@overload
def policy_gradient_loss(
    log_probs: ArrayLike,
    old_log_probs: ArrayLike,
    advantages: ArrayLike,
    mask: ArrayLike,
    *,
    clip_low: Any = ...,
    clip_high: ArrayLike | None = ...,
    reference_log_probs: ArrayLike | None = ...,
    kl_coef: Any = ...,
    kl_estimator: str = ...,
    importance: str = ...,
    aggregation: str = ...,
    max_length: int | None = ...,
    reduction: str = ...,
    return_aux: Literal[False] = ...,
) -> jax.Array: ...


@overload
def policy_gradient_loss(
    log_probs: ArrayLike,
    old_log_probs: ArrayLike,
    advantages: ArrayLike,
    mask: ArrayLike,
    *,
    clip_low: Any = ...,
    clip_high: ArrayLike | None = ...,
    reference_log_probs: ArrayLike | None = ...,
    kl_coef: Any = ...,
    kl_estimator: str = ...,
    importance: str = ...,
    aggregation: str = ...,
    max_length: int | None = ...,
    reduction: str = ...,
    return_aux: Literal[True],
) -> tuple[jax.Array, dict[str, jax.Array]]: ...


@overload
def policy_gradient_loss(
    log_probs: ArrayLike,
    old_log_probs: ArrayLike,
    advantages: ArrayLike,
    mask: ArrayLike,
    *,
    clip_low: Any = ...,
    clip_high: ArrayLike | None = ...,
    reference_log_probs: ArrayLike | None = ...,
    kl_coef: Any = ...,
    kl_estimator: str = ...,
    importance: str = ...,
    aggregation: str = ...,
    max_length: int | None = ...,
    reduction: str = ...,
    return_aux: bool,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]: ...


@register(plot=None)
def policy_gradient_loss(
    log_probs: ArrayLike,
    old_log_probs: ArrayLike,
    advantages: ArrayLike,
    mask: ArrayLike,
    *,
    clip_low: Any = 0.2,
    clip_high: ArrayLike | None = None,
    reference_log_probs: ArrayLike | None = None,
    kl_coef: Any = 0.0,
    kl_estimator: str = "k3",
    importance: str = "token",
    aggregation: str = "sequence_mean",
    max_length: int | None = None,
    reduction: str = "none",
    return_aux: bool = False,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
    r"""PPO's clipped surrogate per token, aggregated as GRPO, DAPO, Dr. GRPO or GSPO do.

    Per token (Schulman et al. 2017, Eq. 7; the GRPO objective of Shao et al. 2024, Eq. 3):

        ℓ_t = −min(r_t·Â, clip(r_t, 1 − ε_low, 1 + ε_high)·Â) + kl_coef·KL̂_t,

    ``r_t = exp(log_probs − old_log_probs)`` (``importance="token"``) or GSPO's sequence ratio
    ``s_i = exp(Σ_t m·(log_probs − old_log_probs) / L_i)`` shared by the sequence's tokens
    (``importance="sequence"``, Zheng et al. 2025). The KL estimate against
    ``reference_log_probs`` uses ``d = log π_ref − log π_θ``: ``"k1"`` = −d, ``"k2"`` = d²/2,
    ``"k3"`` = e^d − 1 − d (Schulman 2020; GRPO's choice). The recipes:

    - PPO / GRPO: ``clip_low=0.2``, ``aggregation="sequence_mean"``, ``kl_coef`` as wanted.
    - DAPO / BNPO: ``clip_high=0.28`` (decoupled), ``aggregation="token_mean"``, ``kl_coef=0``.
    - Dr. GRPO: ``aggregation="fixed_length", max_length=...`` and advantages from
      ``group_relative_advantages(..., normalize_std=False)``.
    - GSPO: ``importance="sequence"``, ``clip_low=3e-4, clip_high=4e-4``.

    How the per-token losses become one value per sequence, and what ``reduction="mean"`` then
    computes, is the table at the top of this module.

    Gradient:
      ``∂ℓ_t/∂log_probs_t = −r_t·Â`` where the token is not clipped and 0 where it is (Â > 0 and
      r > 1 + ε_high, or Â < 0 and r < 1 − ε_low), plus ``kl_coef·∂KL̂/∂log π_θ`` (k3:
      ``1 − π_ref/π_θ``; note this is not the gradient of the reverse KL, Tang & Munos 2025);
      with ``importance="sequence"`` the unclipped gradient is ``−Â·s_i/L_i`` on each token.
      ``old_log_probs`` and ``advantages`` are differentiated as written (pass detached values).

    Args:
      log_probs: log π_θ of each sampled token, float [..., T].
      old_log_probs: log π_old of the same tokens, same shape.
      advantages: Â per sequence [...] or per token [..., T].
      mask: completion tokens, bool or 0/1 [..., T].
      clip_low: ε_low in [0, 1): the ratio's lower clip is 1 − ε_low.
      clip_high: ε_high ≥ 0 (default: ``clip_low``): the upper clip is 1 + ε_high.
      reference_log_probs: log π_ref of the tokens, same shape; needed when ``kl_coef`` ≠ 0.
      kl_coef: β ≥ 0, the weight of the KL penalty.
      kl_estimator: ``"k1"``, ``"k2"`` or ``"k3"``.
      importance: ``"token"`` (PPO/GRPO) or ``"sequence"`` (GSPO).
      aggregation: ``"sequence_mean"``, ``"token_mean"`` or ``"fixed_length"``.
      max_length: the constant divisor of ``"fixed_length"``.
      reduction: ``"none"`` (one value per sequence), ``"mean"`` or ``"sum"`` (as the table).
      return_aux: also return the detached statistics listed at the top of this module.

    Returns:
      One value per sequence, shape [...] (reduced as asked), and the aux dict when asked.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> lp = jnp.log(jnp.array([[0.5, 0.25]]))
      >>> mask = jnp.array([[True, True]])
      >>> float(jaxloss.policy_gradient_loss(lp, lp, jnp.array([1.0]), mask)[0])
      -1.0
    """
    fn = "policy_gradient_loss"
    lp, old, adv, m = _tokens(fn, log_probs, old_log_probs, advantages, mask)
    _checks.require(fn, "clip_low", clip_low, _checks.UNIT_HALF_OPEN)
    if clip_high is None:
        clip_high = clip_low
    _checks.require(fn, "clip_high", clip_high, _checks.NONNEGATIVE)
    _checks.require(fn, "kl_coef", kl_coef, _checks.NONNEGATIVE)
    if kl_estimator not in _KL_ESTIMATORS:
        raise ValueError(
            f"jaxloss.{fn}: `kl_estimator` must be one of 'k1', 'k2', 'k3'; got {kl_estimator!r}."
        )
    if importance not in ("token", "sequence"):
        raise ValueError(
            f"jaxloss.{fn}: `importance` must be 'token' or 'sequence'; got {importance!r}."
        )
    log_ratio = jnp.where(m, lp - old, 0)
    if importance == "sequence":
        count = jnp.maximum(jnp.sum(m, axis=-1, keepdims=True), 1).astype(lp.dtype)
        log_ratio = jnp.broadcast_to(jnp.sum(log_ratio, axis=-1, keepdims=True) / count, lp.shape)
        log_ratio = jnp.where(m, log_ratio, 0)
    hi = jnp.asarray(clip_high, lp.dtype)
    lo = jnp.asarray(clip_low, lp.dtype)
    clipped = ((adv > 0) & (log_ratio > jnp.log1p(hi))) | ((adv < 0) & (log_ratio < jnp.log1p(-lo)))
    # A clipped token's ratio, or one without advantage, is not computed (r·Â would be 0·inf).
    ratio = jnp.exp(jnp.where(clipped | (adv == 0), 0, log_ratio))
    bound = jnp.where(adv > 0, 1 + hi, 1 - lo)
    token_loss = -jnp.where(clipped, jax.lax.stop_gradient(bound) * adv, ratio * adv)
    kl = None
    if reference_log_probs is not None:
        ref = _checks.check_floating(fn, "reference_log_probs", reference_log_probs)
        _checks.check_same_shape(fn, "log_probs", lp, "reference_log_probs", ref)
        kl = _kl(kl_estimator, jnp.where(m, ref.astype(lp.dtype) - lp, 0))
        token_loss = token_loss + jnp.asarray(kl_coef, lp.dtype) * kl
    elif _checks.concrete_float(kl_coef) != 0:
        raise ValueError(
            f"jaxloss.{fn}: kl_coef={kl_coef!r} needs `reference_log_probs` (the reference "
            "policy's token log-probabilities)."
        )
    out = _aggregate(fn, token_loss, lp, m, aggregation, max_length, reduction)
    if return_aux:
        return out, _stats(log_ratio, clipped, m, kl)
    return out


@overload
def cispo_loss(
    log_probs: ArrayLike,
    old_log_probs: ArrayLike,
    advantages: ArrayLike,
    mask: ArrayLike,
    *,
    clip_high: ArrayLike = ...,
    aggregation: str = ...,
    max_length: int | None = ...,
    reduction: str = ...,
    return_aux: Literal[False] = ...,
) -> jax.Array: ...


@overload
def cispo_loss(
    log_probs: ArrayLike,
    old_log_probs: ArrayLike,
    advantages: ArrayLike,
    mask: ArrayLike,
    *,
    clip_high: ArrayLike = ...,
    aggregation: str = ...,
    max_length: int | None = ...,
    reduction: str = ...,
    return_aux: Literal[True],
) -> tuple[jax.Array, dict[str, jax.Array]]: ...


@overload
def cispo_loss(
    log_probs: ArrayLike,
    old_log_probs: ArrayLike,
    advantages: ArrayLike,
    mask: ArrayLike,
    *,
    clip_high: ArrayLike = ...,
    aggregation: str = ...,
    max_length: int | None = ...,
    reduction: str = ...,
    return_aux: bool,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]: ...


@register(plot=None)
def cispo_loss(
    log_probs: ArrayLike,
    old_log_probs: ArrayLike,
    advantages: ArrayLike,
    mask: ArrayLike,
    *,
    clip_high: ArrayLike = 5.0,
    aggregation: str = "token_mean",
    max_length: int | None = None,
    reduction: str = "none",
    return_aux: bool = False,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
    r"""CISPO: REINFORCE weighted by a clipped, detached importance ratio; no token is dropped.

    MiniMax-M1 (2025), §3.1, with the cap as TRL and Liger-Kernel take it (an absolute cap
    ε_max on the ratio, ``clip_high``; TRL recommends 5.0):

        ℓ_t = −sg(min(r_t, ε_max))·Â·log π_θ(y_t),   r_t = exp(log_probs − old_log_probs),

    aggregated like DAPO (``"token_mean"``: ``reduction="mean"`` gives ``Σ_i N_i / Σ_i L_i``;
    see :func:`policy_gradient_loss` for the other aggregations). The value is a surrogate: only
    its gradient is meaningful.

    Gradient:
      ``∂ℓ_t/∂log_probs_t = −min(r_t, ε_max)·Â`` for every kept token, clipped or not; nothing
      flows through the ratio (``old_log_probs`` gets no gradient).

    Args:
      log_probs: log π_θ of each sampled token, float [..., T].
      old_log_probs: log π_old of the same tokens, same shape.
      advantages: Â per sequence [...] or per token [..., T].
      mask: completion tokens, bool or 0/1 [..., T].
      clip_high: ε_max > 0, the cap on the importance ratio.
      aggregation: ``"token_mean"`` (default), ``"sequence_mean"`` or ``"fixed_length"``.
      max_length: the constant divisor of ``"fixed_length"``.
      reduction: ``"none"``, ``"mean"`` or ``"sum"``.
      return_aux: also return the detached ratio statistics (``clip_fraction``: tokens whose
        ratio was capped).

    Returns:
      One value per sequence, shape [...] (reduced as asked), and the aux dict when asked.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> lp = jnp.log(jnp.array([[0.5, 0.25]]))
      >>> jaxloss.cispo_loss(lp, lp, jnp.array([1.0]), jnp.array([[True, True]])).shape
      (1,)
    """
    fn = "cispo_loss"
    lp, old, adv, m = _tokens(fn, log_probs, old_log_probs, advantages, mask)
    _checks.require(fn, "clip_high", clip_high, _checks.POSITIVE)
    log_ratio = jax.lax.stop_gradient(jnp.where(m, lp - old, 0))
    cap = jnp.asarray(clip_high, lp.dtype)
    capped = log_ratio > jnp.log(cap)
    weight = jnp.where(capped, cap, jnp.exp(jnp.where(capped, 0, log_ratio)))
    token_loss = -weight * adv * jnp.where(m, lp, 0)
    out = _aggregate(fn, token_loss, lp, m, aggregation, max_length, reduction)
    if return_aux:
        return out, _stats(log_ratio, capped, m, None)
    return out
