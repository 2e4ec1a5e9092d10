"""Preference losses on sequence log-probabilities: DPO and its TRL variants, ORPO, CPO, SimPO, KTO.

Conventions, once for the module (those of TRL, which most post-training code follows):

- Inputs are *sequence* log-probabilities, one per example: ``log π(y|x)`` summed over the
  completion's tokens (:func:`jaxloss.sequence_log_probs`), or their per-token mean where a loss
  says "length-normalised" (ORPO, SimPO). Chosen and rejected completions come as two arrays of
  the same shape; each output value is one pair's loss (KTO: one example's).
- ``ρ = log π_θ(y|x) − log π_ref(y|x)`` is the policy-to-reference log-ratio, ``h = ρ_w − ρ_l``
  (chosen minus rejected) and ``z = β·h``. The implicit reward of DPO is ``β·ρ``.
- ``softplus(−z) = −log σ(z)`` is evaluated in its stable form; every value here is finite for
  finite inputs (log-ratios of ±1e4 included) except ORPO's at a length-normalised log-probability
  of exactly 0, where the odds are infinite.
- ``return_aux=True`` returns ``(values, aux)``: the detached quantities TRL logs (implicit rewards
  per example, their margin, whether the chosen one wins), for logging only.
- ``reduction="mean"`` / ``"sum"`` average / sum over every leading axis (TRL averages the
  per-pair losses over the batch); the default ``"none"`` keeps one value per pair.
"""

from __future__ import annotations

import math
from typing import Any, Literal, overload

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from . import _reduce
from ._core import checks as _checks
from ._core.numerics import nan_gradient, nan_of, softplus
from ._core.registry import register

__all__ = ["DPO_LOSS_TYPES", "cpo_loss", "dpo_loss", "kto_loss", "orpo_loss", "simpo_loss"]

#: The ``loss_type`` values of :func:`dpo_loss`.
DPO_LOSS_TYPES = (
    "sigmoid",
    "robust",
    "hinge",
    "ipo",
    "bco_pair",
    "sppo_hard",
    "nca_pair",
    "apo_zero",
    "apo_down",
)

_LN2 = math.log(2.0)


def _inputs(fn: str, **named: Any) -> list[jax.Array]:
    """The named float arrays, checked to share the first one's shape, in the compute dtype."""
    arrays = [_checks.check_floating(fn, name, x) for name, x in named.items()]
    names = list(named)
    for name, x in zip(names[1:], arrays[1:], strict=True):
        _checks.check_same_shape(fn, names[0], arrays[0], name, x)
    dtype = _checks.compute_dtype(*arrays)
    return [x.astype(dtype) for x in arrays]


def _smoothing(fn: str, label_smoothing: ArrayLike, upper: float) -> None:
    _checks.require(
        fn, "label_smoothing", label_smoothing, _checks.Interval(0.0, upper, hi_open=True)
    )


def _finish(
    fn: str,
    values: jax.Array,
    reduction: str,
    return_aux: bool,
    aux: dict[str, jax.Array],
    model: tuple[jax.Array, ...],
) -> Any:
    # A NaN in any input makes its pair's value NaN; make the gradient w.r.t. the model's outputs
    # NaN there too (losses separable in ρ_w and ρ_l would otherwise give a finite one).
    for x in model:
        values = nan_gradient(values, x, ())
    out = _reduce.reduce_loss(values, _reduce.check_reduction(fn, reduction))
    if return_aux:
        return out, {k: jax.lax.stop_gradient(v) for k, v in aux.items()}
    return out


def _cdpo(z: jax.Array, eps: ArrayLike) -> jax.Array:
    """Conservative (label-smoothed) logistic loss: (1 − ε)·softplus(−z) + ε·softplus(z)."""
    if isinstance(eps, (int, float)) and eps == 0:
        return softplus(-z)
    return jnp.asarray((1 - eps) * softplus(-z) + eps * softplus(z))


@overload
def dpo_loss(
    policy_chosen: ArrayLike,
    policy_rejected: ArrayLike,
    reference_chosen: ArrayLike,
    reference_rejected: ArrayLike,
    *,
    beta: ArrayLike = ...,
    loss_type: str = ...,
    label_smoothing: ArrayLike = ...,
    chosen_lengths: ArrayLike | None = ...,
    rejected_lengths: ArrayLike | None = ...,
    reduction: str = ...,
    return_aux: Literal[False] = ...,
) -> jax.Array: ...


@overload
def dpo_loss(
    policy_chosen: ArrayLike,
    policy_rejected: ArrayLike,
    reference_chosen: ArrayLike,
    reference_rejected: ArrayLike,
    *,
    beta: ArrayLike = ...,
    loss_type: str = ...,
    label_smoothing: ArrayLike = ...,
    chosen_lengths: ArrayLike | None = ...,
    rejected_lengths: ArrayLike | None = ...,
    reduction: str = ...,
    return_aux: Literal[True],
) -> tuple[jax.Array, dict[str, jax.Array]]: ...


@overload
def dpo_loss(
    policy_chosen: ArrayLike,
    policy_rejected: ArrayLike,
    reference_chosen: ArrayLike,
    reference_rejected: ArrayLike,
    *,
    beta: ArrayLike = ...,
    loss_type: str = ...,
    label_smoothing: ArrayLike = ...,
    chosen_lengths: ArrayLike | None = ...,
    rejected_lengths: ArrayLike | None = ...,
    reduction: str = ...,
    return_aux: bool,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]: ...


@register(plot=None)
def dpo_loss(
    policy_chosen: ArrayLike,
    policy_rejected: ArrayLike,
    reference_chosen: ArrayLike,
    reference_rejected: ArrayLike,
    *,
    beta: ArrayLike = 0.1,
    loss_type: str = "sigmoid",
    label_smoothing: ArrayLike = 0.0,
    chosen_lengths: ArrayLike | None = None,
    rejected_lengths: ArrayLike | None = None,
    reduction: str = "none",
    return_aux: bool = False,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
    r"""Direct preference optimisation and the pairwise variants TRL's ``loss_type`` selects.

    With ``ρ_w = policy_chosen − reference_chosen``, ``ρ_l = policy_rejected −
    reference_rejected``, ``h = ρ_w − ρ_l`` and ``z = β·h`` (summed sequence log-probabilities):

    | ``loss_type`` | per-pair loss |
    |---|---|
    | ``"sigmoid"`` | ``(1 − ε)·softplus(−z) + ε·softplus(z)``, ε = ``label_smoothing`` (cDPO) |
    | ``"robust"`` | ``[(1 − ε)·softplus(−z) − ε·softplus(z)] / (1 − 2ε)`` (unbounded below) |
    | ``"hinge"`` | ``max(0, 1 − z)`` |
    | ``"ipo"`` | ``(ρ_w/n_w − ρ_l/n_l − 1/(2β))²``, n = token counts clamped ≥ 1 |
    | ``"bco_pair"`` | ``softplus(−βρ_w) + softplus(βρ_l)`` |
    | ``"sppo_hard"`` | ``(ρ_w − 1/(2β))² + (ρ_l + 1/(2β))²`` |
    | ``"nca_pair"`` | ``softplus(−βρ_w) + ½·softplus(βρ_w) + ½·softplus(βρ_l)`` |
    | ``"apo_zero"`` | ``σ(−βρ_w) + σ(βρ_l)`` |
    | ``"apo_down"`` | ``σ(βρ_w) + σ(−z)`` |

    Sources, in order: Rafailov et al. 2023 (Eq. 7) and Mitchell 2023 (cDPO); Chowdhury et al.
    2024; SLiC-HF (Zhao et al. 2023); Azar et al. 2023 (Eq. 17; the token averaging is TRL's);
    Jung et al. 2024; Wu et al. 2024; Chen et al. 2024; D'Oosterlinck et al. 2024 (Eqs. 7, 8).

    Gradient:
      ``"sigmoid"`` (ε = 0): ``∂ℓ/∂policy_chosen = −β·σ(−z) = −∂ℓ/∂policy_rejected`` (the DPO
      paper's weight σ(r̂_l − r̂_w)); the reference inputs get the opposite signs. The other types
      differentiate their formula above; ``"hinge"`` takes the subgradient 0 at ``z = 1``.

    Args:
      policy_chosen: ``log π_θ(y_w|x)``, summed over the chosen completion's tokens, shape [...].
      policy_rejected: ``log π_θ(y_l|x)`` for the rejected completion, same shape.
      reference_chosen: ``log π_ref(y_w|x)``, same shape (pass ``jax.lax.stop_gradient`` values
        or constants: the reference is differentiated if you differentiate it).
      reference_rejected: ``log π_ref(y_l|x)``, same shape.
      beta: β > 0, the strength of the implicit KL constraint (TRL's default 0.1).
      loss_type: one of :data:`DPO_LOSS_TYPES`.
      label_smoothing: ε in [0, 0.5), the assumed rate of flipped preference labels; used by
        ``"sigmoid"`` (cDPO) and ``"robust"`` only.
      chosen_lengths: token counts ``n_w`` of the chosen completions, needed by ``"ipo"`` (TRL
        averages the log-ratios over the completion's tokens there).
      rejected_lengths: token counts ``n_l`` of the rejected completions, for ``"ipo"``.
      reduction: ``"none"`` (one value per pair), ``"mean"`` or ``"sum"`` over all pairs.
      return_aux: also return a dict of detached per-pair ``chosen_rewards`` (β·ρ_w),
        ``rejected_rewards`` (β·ρ_l), ``margins`` and ``accuracies`` (1.0 where the chosen
        reward is larger).

    Returns:
      The per-pair losses (reduced as asked), and the aux dict when ``return_aux``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> pc, pr = jnp.array([-10.0]), jnp.array([-12.0])
      >>> rc, rr = jnp.array([-11.0]), jnp.array([-11.0])
      >>> round(float(jaxloss.dpo_loss(pc, pr, rc, rr, beta=0.5)[0]), 5)  # softplus(-0.5 * 2)
      0.31326
    """
    fn = "dpo_loss"
    pc, pr, rc, rr = _inputs(
        fn,
        policy_chosen=policy_chosen,
        policy_rejected=policy_rejected,
        reference_chosen=reference_chosen,
        reference_rejected=reference_rejected,
    )
    _checks.require(fn, "beta", beta, _checks.POSITIVE)
    if loss_type not in DPO_LOSS_TYPES:
        raise ValueError(
            f"jaxloss.{fn}: `loss_type` must be one of {', '.join(DPO_LOSS_TYPES)}; "
            f"got {loss_type!r}."
        )
    _smoothing(fn, label_smoothing, 0.5)
    if loss_type not in ("sigmoid", "robust") and _checks.concrete_float(label_smoothing) != 0:
        raise ValueError(
            f"jaxloss.{fn}: `label_smoothing` applies to loss_type 'sigmoid' and 'robust' only; "
            f"got label_smoothing={label_smoothing!r} with loss_type={loss_type!r}."
        )
    if loss_type != "ipo" and (chosen_lengths is not None or rejected_lengths is not None):
        raise ValueError(
            f"jaxloss.{fn}: `chosen_lengths` / `rejected_lengths` are used by loss_type 'ipo' "
            f"only; got loss_type={loss_type!r}."
        )
    rho_w, rho_l = pc - rc, pr - rr
    b = jnp.asarray(beta, pc.dtype)
    z = b * (rho_w - rho_l)
    eps = label_smoothing
    if loss_type == "sigmoid":
        values = _cdpo(z, eps)
    elif loss_type == "robust":
        values = jnp.asarray(((1 - eps) * softplus(-z) - eps * softplus(z)) / (1 - 2 * eps))
    elif loss_type == "hinge":
        # nan_of: a max fused into a large reduction may drop a NaN z (_core/numerics.py).
        values = jax.nn.relu(1 - z) + nan_of(z)
    elif loss_type == "ipo":
        if chosen_lengths is None or rejected_lengths is None:
            raise ValueError(
                f"jaxloss.{fn}: loss_type 'ipo' needs `chosen_lengths` and `rejected_lengths` "
                "(the completions' token counts: IPO averages the log-ratios over tokens)."
            )
        n_w, n_l = (
            jnp.maximum(_checks.check_real(fn, name, n).astype(pc.dtype), 1)
            for name, n in (
                ("chosen_lengths", chosen_lengths),
                ("rejected_lengths", rejected_lengths),
            )
        )
        values = (rho_w / n_w - rho_l / n_l - 1 / (2 * b)) ** 2
    elif loss_type == "bco_pair":
        values = softplus(-b * rho_w) + softplus(b * rho_l)
    elif loss_type == "sppo_hard":
        values = (rho_w - 1 / (2 * b)) ** 2 + (rho_l + 1 / (2 * b)) ** 2
    elif loss_type == "nca_pair":
        values = softplus(-b * rho_w) + 0.5 * softplus(b * rho_w) + 0.5 * softplus(b * rho_l)
    elif loss_type == "apo_zero":
        values = jax.nn.sigmoid(-b * rho_w) + jax.nn.sigmoid(b * rho_l)
    else:  # apo_down
        values = jax.nn.sigmoid(b * rho_w) + jax.nn.sigmoid(-z)
    chosen, rejected = b * rho_w, b * rho_l
    aux = {
        "chosen_rewards": chosen,
        "rejected_rewards": rejected,
        "margins": chosen - rejected,
        "accuracies": (chosen > rejected).astype(pc.dtype),
    }
    return _finish(fn, values, reduction, return_aux, aux, (pc, pr))


def _log1mexp(x: jax.Array) -> jax.Array:
    """log(1 − eˣ) for x ≤ 0, accurate on both sides of −ln 2 (Mächler 2012)."""
    small = x < -_LN2
    far = jnp.where(small, x, -1.0)  # each branch sees only inputs where it is finite
    near = jnp.where(small, -0.5, x)
    return jnp.where(small, jnp.log1p(-jnp.exp(far)), jnp.log(-jnp.expm1(near)))


@overload
def orpo_loss(
    policy_chosen: ArrayLike,
    policy_rejected: ArrayLike,
    *,
    beta: ArrayLike = ...,
    nll: ArrayLike | None = ...,
    reduction: str = ...,
    return_aux: Literal[False] = ...,
) -> jax.Array: ...


@overload
def orpo_loss(
    policy_chosen: ArrayLike,
    policy_rejected: ArrayLike,
    *,
    beta: ArrayLike = ...,
    nll: ArrayLike | None = ...,
    reduction: str = ...,
    return_aux: Literal[True],
) -> tuple[jax.Array, dict[str, jax.Array]]: ...


@overload
def orpo_loss(
    policy_chosen: ArrayLike,
    policy_rejected: ArrayLike,
    *,
    beta: ArrayLike = ...,
    nll: ArrayLike | None = ...,
    reduction: str = ...,
    return_aux: bool,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]: ...


@register(plot=None)
def orpo_loss(
    policy_chosen: ArrayLike,
    policy_rejected: ArrayLike,
    *,
    beta: ArrayLike = 0.1,
    nll: ArrayLike | None = None,
    reduction: str = "none",
    return_aux: bool = False,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
    r"""Odds-ratio preference optimisation: NLL of the chosen plus λ·(odds-ratio loss).

    On length-normalised log-probabilities ``ℓ̄ = log π_θ(y|x) / |y|`` (so ``P = e^ℓ̄`` is the
    geometric-mean token probability and ``odds = P / (1 − P)``), Hong, Lee & Thorne (2024),
    Eqs. 4, 6, 7:

        L_OR = log odds(y_w) − log odds(y_l)
             = (ℓ̄_w − ℓ̄_l) − [log(1 − e^{ℓ̄_w}) − log(1 − e^{ℓ̄_l})],
        ℓ = NLL + λ·softplus(−L_OR),

    with λ = ``beta`` (TRL's name) and ``NLL = −ℓ̄_w`` unless ``nll`` is given (TRL's ORPO takes
    the token-mean NLL of the chosen sequence over prompt *and* response: pass it as ``nll``).
    ``log(1 − eˣ)`` is evaluated in Mächler's two-branch form. No reference model.

    Gradient:
      ``∂ℓ/∂ℓ̄_w = −1 − λ·σ(−L_OR)/(1 − P_w)`` (the −1 from the default NLL) and
      ``∂ℓ/∂ℓ̄_l = λ·σ(−L_OR)/(1 − P_l)``; both grow without bound as ``P → 1``.

    Args:
      policy_chosen: ``ℓ̄_w``, the chosen completion's mean token log-probability (< 0), [...].
      policy_rejected: ``ℓ̄_l`` for the rejected completion, same shape.
      beta: λ ≥ 0, the weight of the odds-ratio term (TRL's default 0.1).
      nll: the NLL term per pair (same shape); default ``−policy_chosen``.
      reduction: ``"none"``, ``"mean"`` or ``"sum"``.
      return_aux: also return detached ``chosen_rewards`` (λ·ℓ̄_w), ``rejected_rewards``,
        ``margins``, ``accuracies`` and ``log_odds_ratio`` (L_OR).

    Returns:
      The per-pair losses (reduced as asked), and the aux dict when ``return_aux``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> v = jaxloss.orpo_loss(jnp.array([-0.5]), jnp.array([-1.5]), beta=0.1)
      >>> v.shape
      (1,)
    """
    fn = "orpo_loss"
    lw, ll = _inputs(fn, policy_chosen=policy_chosen, policy_rejected=policy_rejected)
    _checks.require(fn, "beta", beta, _checks.NONNEGATIVE)
    _checks.check_values(fn, "policy_chosen", policy_chosen, "<= 0")
    _checks.check_values(fn, "policy_rejected", policy_rejected, "<= 0")
    log_odds = (lw - ll) - (_log1mexp(lw) - _log1mexp(ll))
    if nll is None:
        nll_term = -lw
    else:
        nll_term = _checks.check_floating(fn, "nll", nll).astype(lw.dtype)
        _checks.check_same_shape(fn, "policy_chosen", lw, "nll", nll_term)
    lam = jnp.asarray(beta, lw.dtype)
    values = nll_term + lam * softplus(-log_odds)
    aux = {
        "chosen_rewards": lam * lw,
        "rejected_rewards": lam * ll,
        "margins": lam * (lw - ll),
        "accuracies": (lw > ll).astype(lw.dtype),
        "log_odds_ratio": log_odds,
    }
    return _finish(fn, values, reduction, return_aux, aux, (lw, ll))


@overload
def cpo_loss(
    policy_chosen: ArrayLike,
    policy_rejected: ArrayLike,
    *,
    beta: ArrayLike = ...,
    alpha: ArrayLike = ...,
    label_smoothing: ArrayLike = ...,
    chosen_nll: ArrayLike | None = ...,
    reduction: str = ...,
    return_aux: Literal[False] = ...,
) -> jax.Array: ...


@overload
def cpo_loss(
    policy_chosen: ArrayLike,
    policy_rejected: ArrayLike,
    *,
    beta: ArrayLike = ...,
    alpha: ArrayLike = ...,
    label_smoothing: ArrayLike = ...,
    chosen_nll: ArrayLike | None = ...,
    reduction: str = ...,
    return_aux: Literal[True],
) -> tuple[jax.Array, dict[str, jax.Array]]: ...


@overload
def cpo_loss(
    policy_chosen: ArrayLike,
    policy_rejected: ArrayLike,
    *,
    beta: ArrayLike = ...,
    alpha: ArrayLike = ...,
    label_smoothing: ArrayLike = ...,
    chosen_nll: ArrayLike | None = ...,
    reduction: str = ...,
    return_aux: bool,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]: ...


@register(plot=None)
def cpo_loss(
    policy_chosen: ArrayLike,
    policy_rejected: ArrayLike,
    *,
    beta: ArrayLike = 0.1,
    alpha: ArrayLike = 1.0,
    label_smoothing: ArrayLike = 0.0,
    chosen_nll: ArrayLike | None = None,
    reduction: str = "none",
    return_aux: bool = False,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
    r"""Contrastive preference optimisation: a reference-free DPO term plus α·NLL.

    Xu et al. (2024), Eq. 3 with its NLL term, as TRL's CPO trainer computes it on summed
    sequence log-probabilities: with ``u = β·(log π(y_w) − log π(y_l))``,

        ℓ = (1 − ε)·softplus(−u) + ε·softplus(u) + α·NLL(y_w),

    ε = ``label_smoothing`` (TRL applies cDPO smoothing here). ``NLL(y_w)`` is the token-mean
    negative log-likelihood of the chosen *response* tokens, which only the caller can compute from
    token log-probabilities: pass it as ``chosen_nll`` (required unless ``alpha=0``).

    Gradient:
      ``∂ℓ/∂policy_chosen = −β·[(1 − ε)·σ(−u) − ε·σ(u)] = −∂ℓ/∂policy_rejected``;
      ``∂ℓ/∂chosen_nll = α``.

    Args:
      policy_chosen: ``log π_θ(y_w|x)`` summed over the chosen completion, shape [...].
      policy_rejected: the same for the rejected completion.
      beta: β > 0 (TRL's default 0.1).
      alpha: α ≥ 0, the weight of the NLL term (TRL's ``cpo_alpha``, default 1.0).
      label_smoothing: ε in [0, 0.5).
      chosen_nll: the chosen response's token-mean NLL per pair (same shape); needed when α ≠ 0.
      reduction: ``"none"``, ``"mean"`` or ``"sum"``.
      return_aux: also return detached ``chosen_rewards`` (β·log π(y_w)), ``rejected_rewards``,
        ``margins`` and ``accuracies``.

    Returns:
      The per-pair losses (reduced as asked), and the aux dict when ``return_aux``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.cpo_loss(jnp.array([-10.0]), jnp.array([-12.0]), alpha=0.0).shape
      (1,)
    """
    fn = "cpo_loss"
    pc, pr = _inputs(fn, policy_chosen=policy_chosen, policy_rejected=policy_rejected)
    _checks.require(fn, "beta", beta, _checks.POSITIVE)
    _checks.require(fn, "alpha", alpha, _checks.NONNEGATIVE)
    _smoothing(fn, label_smoothing, 0.5)
    b = jnp.asarray(beta, pc.dtype)
    values = _cdpo(b * (pc - pr), label_smoothing)
    if chosen_nll is None:
        if _checks.concrete_float(alpha) != 0:
            raise ValueError(
                f"jaxloss.{fn}: pass `chosen_nll` (the token-mean NLL of the chosen response) or "
                "alpha=0 (pure reference-free DPO term)."
            )
    else:
        nll = _checks.check_floating(fn, "chosen_nll", chosen_nll).astype(pc.dtype)
        _checks.check_same_shape(fn, "policy_chosen", pc, "chosen_nll", nll)
        values = values + jnp.asarray(alpha, pc.dtype) * nll
    aux = {
        "chosen_rewards": b * pc,
        "rejected_rewards": b * pr,
        "margins": b * (pc - pr),
        "accuracies": (pc > pr).astype(pc.dtype),
    }
    return _finish(fn, values, reduction, return_aux, aux, (pc, pr))


@overload
def simpo_loss(
    policy_chosen: ArrayLike,
    policy_rejected: ArrayLike,
    *,
    beta: ArrayLike = ...,
    gamma: ArrayLike = ...,
    label_smoothing: ArrayLike = ...,
    reduction: str = ...,
    return_aux: Literal[False] = ...,
) -> jax.Array: ...


@overload
def simpo_loss(
    policy_chosen: ArrayLike,
    policy_rejected: ArrayLike,
    *,
    beta: ArrayLike = ...,
    gamma: ArrayLike = ...,
    label_smoothing: ArrayLike = ...,
    reduction: str = ...,
    return_aux: Literal[True],
) -> tuple[jax.Array, dict[str, jax.Array]]: ...


@overload
def simpo_loss(
    policy_chosen: ArrayLike,
    policy_rejected: ArrayLike,
    *,
    beta: ArrayLike = ...,
    gamma: ArrayLike = ...,
    label_smoothing: ArrayLike = ...,
    reduction: str = ...,
    return_aux: bool,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]: ...


@register(plot=None)
def simpo_loss(
    policy_chosen: ArrayLike,
    policy_rejected: ArrayLike,
    *,
    beta: ArrayLike = 0.1,
    gamma: ArrayLike = 0.5,
    label_smoothing: ArrayLike = 0.0,
    reduction: str = "none",
    return_aux: bool = False,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
    r"""SimPO: a length-normalised, reference-free preference loss with a target margin γ.

    Meng, Xia & Chen (2024), Eq. 6, on mean token log-probabilities ``ℓ̄``: with
    ``u = β·(ℓ̄_w − ℓ̄_l) − γ``,

        ℓ = (1 − ε)·softplus(−u) + ε·softplus(u).

    Defaults are TRL's (β = 0.1, γ = 0.5); the paper's own settings are larger (β = 2.0–2.5, γ/β
    = 0.25–0.55). TRL's "CPO-SimPO" adds an NLL term: add it yourself
    (``jaxloss.simpo_loss(...) + alpha * nll``).

    Gradient:
      ``∂ℓ/∂ℓ̄_w = −β·[(1 − ε)·σ(−u) − ε·σ(u)] = −∂ℓ/∂ℓ̄_l``.

    Args:
      policy_chosen: ``ℓ̄_w``, the chosen completion's mean token log-probability, shape [...].
      policy_rejected: ``ℓ̄_l`` for the rejected completion, same shape.
      beta: β > 0.
      gamma: the target reward margin γ (finite; TRL's ``simpo_gamma``).
      label_smoothing: ε in [0, 0.5).
      reduction: ``"none"``, ``"mean"`` or ``"sum"``.
      return_aux: also return detached ``chosen_rewards`` (β·ℓ̄_w), ``rejected_rewards``,
        ``margins`` and ``accuracies``.

    Returns:
      The per-pair losses (reduced as asked), and the aux dict when ``return_aux``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> jaxloss.simpo_loss(jnp.array([-0.5]), jnp.array([-1.5]), beta=2.0, gamma=1.0).shape
      (1,)
    """
    fn = "simpo_loss"
    lw, ll = _inputs(fn, policy_chosen=policy_chosen, policy_rejected=policy_rejected)
    _checks.require(fn, "beta", beta, _checks.POSITIVE)
    _checks.require(fn, "gamma", gamma, _checks.FINITE)
    _smoothing(fn, label_smoothing, 0.5)
    b = jnp.asarray(beta, lw.dtype)
    values = _cdpo(b * (lw - ll) - jnp.asarray(gamma, lw.dtype), label_smoothing)
    aux = {
        "chosen_rewards": b * lw,
        "rejected_rewards": b * ll,
        "margins": b * (lw - ll),
        "accuracies": (lw > ll).astype(lw.dtype),
    }
    return _finish(fn, values, reduction, return_aux, aux, (lw, ll))


@overload
def kto_loss(
    policy_log_probs: ArrayLike,
    reference_log_probs: ArrayLike,
    desirable: ArrayLike,
    *,
    beta: ArrayLike = ...,
    desirable_weight: ArrayLike = ...,
    undesirable_weight: ArrayLike = ...,
    reference_point: ArrayLike | None = ...,
    kl_policy_log_probs: ArrayLike | None = ...,
    kl_reference_log_probs: ArrayLike | None = ...,
    reduction: str = ...,
    return_aux: Literal[False] = ...,
) -> jax.Array: ...


@overload
def kto_loss(
    policy_log_probs: ArrayLike,
    reference_log_probs: ArrayLike,
    desirable: ArrayLike,
    *,
    beta: ArrayLike = ...,
    desirable_weight: ArrayLike = ...,
    undesirable_weight: ArrayLike = ...,
    reference_point: ArrayLike | None = ...,
    kl_policy_log_probs: ArrayLike | None = ...,
    kl_reference_log_probs: ArrayLike | None = ...,
    reduction: str = ...,
    return_aux: Literal[True],
) -> tuple[jax.Array, dict[str, jax.Array]]: ...


@overload
def kto_loss(
    policy_log_probs: ArrayLike,
    reference_log_probs: ArrayLike,
    desirable: ArrayLike,
    *,
    beta: ArrayLike = ...,
    desirable_weight: ArrayLike = ...,
    undesirable_weight: ArrayLike = ...,
    reference_point: ArrayLike | None = ...,
    kl_policy_log_probs: ArrayLike | None = ...,
    kl_reference_log_probs: ArrayLike | None = ...,
    reduction: str = ...,
    return_aux: bool,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]: ...


@register(plot=None)
def kto_loss(
    policy_log_probs: ArrayLike,
    reference_log_probs: ArrayLike,
    desirable: ArrayLike,
    *,
    beta: ArrayLike = 0.1,
    desirable_weight: ArrayLike = 1.0,
    undesirable_weight: ArrayLike = 1.0,
    reference_point: ArrayLike | None = None,
    kl_policy_log_probs: ArrayLike | None = None,
    kl_reference_log_probs: ArrayLike | None = None,
    reduction: str = "none",
    return_aux: bool = False,
) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
    r"""Kahneman–Tversky optimisation: unpaired examples, each desirable or undesirable.

    Ethayarajh et al. (2024), Eq. 7 as TRL computes it, with ``ρ = log π_θ(y|x) − log π_ref(y|x)``
    (summed) and the reference point ``z₀`` (detached):

        desirable:   ℓ = λ_D·(1 − σ(β(ρ − z₀)))
        undesirable: ℓ = λ_U·(1 − σ(β(z₀ − ρ)))

    ``z₀`` is either given (``reference_point``) or estimated as TRL does from completions paired
    with the wrong prompts: ``z₀ = max(0, mean(kl_policy_log_probs − kl_reference_log_probs))``
    over the whole batch, under ``stop_gradient``. One of the two must be given.

    Gradient:
      desirable ``∂ℓ/∂ρ = −λ_D·β·σ(u)·σ(−u)`` with ``u = β(ρ − z₀)``; undesirable
      ``∂ℓ/∂ρ = +λ_U·β·σ(u)·σ(−u)`` with ``u = β(z₀ − ρ)``; nothing flows into ``z₀``.

    Args:
      policy_log_probs: ``log π_θ(y|x)`` summed over each completion, shape [...].
      reference_log_probs: ``log π_ref(y|x)``, same shape.
      desirable: bool, same shape: True for desirable examples, False for undesirable.
      beta: β > 0 (TRL's default 0.1).
      desirable_weight: λ_D ≥ 0.
      undesirable_weight: λ_U ≥ 0 (TRL advises λ_D·n_D / (λ_U·n_U) in [1, 4/3]).
      reference_point: ``z₀`` as a scalar or broadcastable array (used as given, detached).
      kl_policy_log_probs: policy log-probabilities of mismatched (prompt, completion) pairs.
      kl_reference_log_probs: reference log-probabilities of the same mismatched pairs.
      reduction: ``"none"``, ``"mean"`` or ``"sum"``.
      return_aux: also return detached ``rewards`` (β·ρ), ``reference_point`` (z₀) and
        ``desirable``.

    Returns:
      The per-example losses (reduced as asked), and the aux dict when ``return_aux``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> pol, ref = jnp.array([-10.0, -9.0]), jnp.array([-10.5, -8.0])
      >>> jaxloss.kto_loss(pol, ref, jnp.array([True, False]), reference_point=0.0).shape
      (2,)
    """
    fn = "kto_loss"
    pol, ref = _inputs(
        fn, policy_log_probs=policy_log_probs, reference_log_probs=reference_log_probs
    )
    want = _checks.as_array(fn, "desirable", desirable)
    if want.dtype != jnp.bool_:
        raise TypeError(
            f"jaxloss.{fn}: `desirable` must be a bool array (True: desirable example); "
            f"got {want.dtype}."
        )
    _checks.check_same_shape(fn, "policy_log_probs", pol, "desirable", want)
    _checks.require(fn, "beta", beta, _checks.POSITIVE)
    _checks.require(fn, "desirable_weight", desirable_weight, _checks.NONNEGATIVE)
    _checks.require(fn, "undesirable_weight", undesirable_weight, _checks.NONNEGATIVE)
    if reference_point is not None:
        if kl_policy_log_probs is not None or kl_reference_log_probs is not None:
            raise ValueError(
                f"jaxloss.{fn}: give `reference_point` or the `kl_*_log_probs` pair, not both."
            )
        z0 = _checks.check_floating(fn, "reference_point", reference_point).astype(pol.dtype)
    elif kl_policy_log_probs is not None and kl_reference_log_probs is not None:
        kp, kr = _inputs(
            fn,
            kl_policy_log_probs=kl_policy_log_probs,
            kl_reference_log_probs=kl_reference_log_probs,
        )
        z0 = jnp.maximum(jnp.mean(kp - kr), 0).astype(pol.dtype)
    else:
        raise ValueError(
            f"jaxloss.{fn}: give `reference_point` (the KL estimate z0) or both "
            "`kl_policy_log_probs` and `kl_reference_log_probs` (log-probabilities of completions "
            "paired with other prompts, from which z0 = max(0, mean(policy - reference)))."
        )
    z0 = jax.lax.stop_gradient(z0)
    rho = pol - ref
    b = jnp.asarray(beta, pol.dtype)
    good = jnp.asarray(desirable_weight, pol.dtype) * (1 - jax.nn.sigmoid(b * (rho - z0)))
    bad = jnp.asarray(undesirable_weight, pol.dtype) * (1 - jax.nn.sigmoid(b * (z0 - rho)))
    values = jnp.where(want, good, bad)
    aux = {
        "rewards": b * rho,
        "reference_point": jnp.broadcast_to(z0, rho.shape),
        "desirable": want.astype(pol.dtype),
    }
    return _finish(fn, values, reduction, return_aux, aux, (pol,))
