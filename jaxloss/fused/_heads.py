"""The fused head for the post-training objectives: sequence (and token) log-probabilities of
hidden states through :func:`jaxloss.fused.linear_log_probs`, with the checks they share
(conventions: ``jaxloss/fused/_post_training.py``)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from .._core import checks as _checks
from .._core.labels import require_labels_in_range
from .._policy_gradient import sequence_log_probs
from ._log_probs import linear_log_probs


def _mask(fn: str, name: str, mask: ArrayLike | None, labels: jax.Array) -> jax.Array:
    if mask is None:
        return jnp.ones(labels.shape, bool)
    m = _checks.check_real(fn, name, mask)
    if tuple(m.shape) != tuple(labels.shape):
        raise ValueError(
            f"jaxloss.{fn}: `{name}` must have the labels' shape {tuple(labels.shape)}; got "
            f"{tuple(m.shape)}."
        )
    return m.astype(bool)


def _labels(fn: str, name: str, labels: ArrayLike, hidden: jax.Array) -> jax.Array:
    y = _checks.check_integer(fn, name, labels)
    if hidden.ndim < 2 or tuple(y.shape) != tuple(hidden.shape[:-1]):
        raise ValueError(
            f"jaxloss.{fn}: `{name}` must have the hidden states' shape without their last axis, "
            f"[..., T] for hidden [..., T, D]; got labels {tuple(y.shape)} for hidden "
            f"{tuple(hidden.shape)}."
        )
    return y


def _check_head(fn: str, name: str, hidden: jax.Array, weight: ArrayLike, layout: str) -> int:
    """V; a ValueError naming the argument unless ``weight`` is a 2-D head matching ``hidden``'s
    D."""
    w = _checks.check_floating(fn, "weight", weight)
    d_axis = 0 if layout == "dv" else 1
    if w.ndim != 2 or w.shape[d_axis] != hidden.shape[-1]:
        raise ValueError(
            f"jaxloss.{fn}: `weight` must be [D, V] ('dv') or [V, D] ('vd') with D = "
            f"`{name}`.shape[-1] = {hidden.shape[-1]}; got weight {tuple(w.shape)} "
            f"(weight_layout={layout!r})."
        )
    return int(w.shape[1 - d_axis])


def _check_labels_in(fn: str, name: str, labels: jax.Array, mask: jax.Array, v: int) -> None:
    """Concrete labels of counted tokens must be in [0, V) of ``weight``."""
    what = f" (the vocabulary of `weight`, V = {v})"
    require_labels_in_range(fn, jnp.where(mask, labels, 0), v, None, what=what)


def _token_log_probs(
    hidden: jax.Array, weight: Any, labels: jax.Array, mask: jax.Array, head: dict[str, Any]
) -> jax.Array:
    return linear_log_probs(hidden, weight, jnp.where(mask, labels, 0), **head)


def _pair_log_probs(
    fn: str,
    chosen_hidden: Any,
    rejected_hidden: Any,
    weight: Any,
    chosen_labels: ArrayLike,
    rejected_labels: ArrayLike,
    chosen_mask: ArrayLike | None,
    rejected_mask: ArrayLike | None,
    head: dict[str, Any],
    average: bool,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Sequence log-probabilities of the chosen and rejected sequences (one head pass when
    their shapes agree) and their token counts."""
    hc = _checks.check_floating(fn, "chosen_hidden", chosen_hidden)
    hr = _checks.check_floating(fn, "rejected_hidden", rejected_hidden)
    if hr.shape[-1:] != hc.shape[-1:]:
        raise ValueError(
            f"jaxloss.{fn}: `rejected_hidden` must have the chosen hidden states' last axis "
            f"(D = {hc.shape[-1:]}); got {tuple(hr.shape)} for {tuple(hc.shape)}."
        )
    v = _check_head(fn, "chosen_hidden", hc, weight, head["weight_layout"])
    yc = _labels(fn, "chosen_labels", chosen_labels, hc)
    yr = _labels(fn, "rejected_labels", rejected_labels, hr)
    mc = _mask(fn, "chosen_mask", chosen_mask, yc)
    mr = _mask(fn, "rejected_mask", rejected_mask, yr)
    _check_labels_in(fn, "chosen_labels", yc, mc, v)
    _check_labels_in(fn, "rejected_labels", yr, mr, v)
    if hc.shape == hr.shape:
        n = hc.shape[0] if hc.ndim > 2 else None
        if n is None:  # one pair: [T, D] each
            tok = _token_log_probs(
                jnp.stack([hc, hr]), weight, jnp.stack([yc, yr]), jnp.stack([mc, mr]), head
            )
            tc, tr = tok[0], tok[1]
        else:
            tok = _token_log_probs(
                jnp.concatenate([hc, hr]),
                weight,
                jnp.concatenate([yc, yr]),
                jnp.concatenate([mc, mr]),
                head,
            )
            tc, tr = tok[:n], tok[n:]
    else:
        tc = _token_log_probs(hc, weight, yc, mc, head)
        tr = _token_log_probs(hr, weight, yr, mr, head)
    return (
        sequence_log_probs(tc, mc, average=average),
        sequence_log_probs(tr, mr, average=average),
        jnp.sum(mc, axis=-1),
        jnp.sum(mr, axis=-1),
    )


def _head(
    temperature: ArrayLike, bias: ArrayLike | None, weight_layout: str, block_size: int
) -> dict[str, Any]:
    return {
        "temperature": temperature,
        "bias": bias,
        "weight_layout": weight_layout,
        "block_size": block_size,
    }


def _reference_pair(
    fn: str,
    reference_chosen: ArrayLike | None,
    reference_rejected: ArrayLike | None,
    reference_chosen_hidden: ArrayLike | None,
    reference_rejected_hidden: ArrayLike | None,
    reference_weight: ArrayLike | None,
    chosen_labels: ArrayLike,
    rejected_labels: ArrayLike,
    chosen_mask: ArrayLike | None,
    rejected_mask: ArrayLike | None,
    head: dict[str, Any],
) -> tuple[Any, Any]:
    given = reference_chosen is not None or reference_rejected is not None
    hidden = (reference_chosen_hidden, reference_rejected_hidden, reference_weight)
    if given == any(h is not None for h in hidden):
        raise ValueError(
            f"jaxloss.{fn}: give the reference as sequence log-probabilities "
            "(`reference_chosen`, `reference_rejected`) or as hidden states and head "
            "(`reference_chosen_hidden`, `reference_rejected_hidden`, `reference_weight`): "
            "exactly one of the two."
        )
    if given:
        return reference_chosen, reference_rejected
    if any(h is None for h in hidden):
        raise ValueError(
            f"jaxloss.{fn}: the reference's hidden states need all of `reference_chosen_hidden`, "
            "`reference_rejected_hidden` and `reference_weight`."
        )
    rc, rr, _, _ = _pair_log_probs(
        fn,
        jax.lax.stop_gradient(reference_chosen_hidden),
        jax.lax.stop_gradient(reference_rejected_hidden),
        jax.lax.stop_gradient(reference_weight),
        chosen_labels,
        rejected_labels,
        chosen_mask,
        rejected_mask,
        head,
        False,
    )
    return rc, rr
