"""Divergences between distributions over a class axis, one value per example.

float16/bfloat16 inputs are computed in float32 and the result is float32; float64 stays float64.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from . import _checks
from ._classification import _class_mask, _normalise_axis
from ._numerics import xlogx

__all__ = ["kl_divergence", "kl_divergence_with_log_targets"]


def _prepare(fn: str, a_name: str, a: Any, b_name: str, b: Any, axis: int, where: Any):
    a = _checks.check_floating(fn, a_name, a)
    b = _checks.check_floating(fn, b_name, b)
    _checks.check_same_shape(fn, a_name, a, b_name, b)
    axis = _normalise_axis(fn, axis, a.ndim)
    dtype = _checks.compute_dtype(a, b)
    a, b = a.astype(dtype), b.astype(dtype)
    mask = _class_mask(fn, where, a)
    return a, b, axis, mask


def kl_divergence(
    log_predictions: Any, targets: Any, *, axis: int = -1, where: Any = None
) -> jax.Array:
    """KL(targets ‖ predictions) from log-predictions and probability targets, per example.

    Math:  l = sum_c t_c (log t_c - log_predictions_c), with 0·log 0 = 0 and 0·(-inf) = 0
    (a zero target ignores its prediction, even a -inf log-prediction).

    Gradient: dl/dlog_predictions_c = -t_c (exact, including t_c = 0).
    dl/dt_c = log t_c + 1 - log_predictions_c for t_c > 0; at t_c = 0, where the true derivative
    is -inf, the finite convention d(t log t)/dt = 0 gives -log_predictions_c (0 where that is
    -inf). Never NaN (optax's ``kl_divergence`` gives NaN here).

    Args:
      log_predictions: floating array [..., C, ...] of log-probabilities.
      targets: floating array of the same shape, probabilities (each row sums to 1).
      axis: the class axis.
      where: optional boolean class mask with the inputs' ndim; masked classes are left out.

    Returns:
      Array of the shape of the inputs without ``axis``. Same as
      ``torch.nn.functional.kl_div(log_predictions, targets, reduction='none').sum(axis)``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> float(jaxloss.kl_divergence(jnp.log(jnp.array([0.5, 0.5])), jnp.array([1.0, 0.0])))
      0.6931471824645996
    """
    fn = "kl_divergence"
    lp, t, axis, mask = _prepare(fn, "log_predictions", log_predictions, "targets", targets,
                                 axis, where)
    # -inf log-predictions: 0 where the target is 0, +inf (the true KL) where it is not.
    finite = lp > -jnp.inf
    lp_safe = jnp.where(finite, lp, 0)
    terms = xlogx(t) - t * lp_safe + jnp.where(finite | (t == 0), 0, jnp.inf)
    if mask is not None:
        terms = jnp.where(mask, terms, 0)
    return jnp.sum(terms, axis=axis)


def kl_divergence_with_log_targets(
    log_predictions: Any, log_targets: Any, *, axis: int = -1, where: Any = None
) -> jax.Array:
    """KL(targets ‖ predictions) with both arguments as log-probabilities, per example.

    Math:  l = sum_c exp(lt_c) (lt_c - lp_c), terms with lt_c = -inf (zero probability) are 0.

    Gradient: dl/dlp_c = -exp(lt_c); dl/dlt_c = exp(lt_c)(lt_c - lp_c + 1); both exactly 0 where
    lt_c = -inf. Never NaN.

    Args:
      log_predictions: floating array [..., C, ...] of log-probabilities.
      log_targets: floating array of the same shape, log-probabilities.
      axis: the class axis.
      where: optional boolean class mask with the inputs' ndim; masked classes are left out.

    Returns:
      Array of the shape of the inputs without ``axis``. Same as
      ``torch.nn.functional.kl_div(lp, lt, reduction='none', log_target=True).sum(axis)``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> lp = jnp.log(jnp.array([0.5, 0.5])); lt = jnp.array([0.0, -jnp.inf])
      >>> float(jaxloss.kl_divergence_with_log_targets(lp, lt))
      0.6931471824645996
    """
    fn = "kl_divergence_with_log_targets"
    lp, lt, axis, mask = _prepare(fn, "log_predictions", log_predictions, "log_targets",
                                  log_targets, axis, where)
    active = lt > -jnp.inf
    if mask is not None:
        active = active & mask
    lt_safe = jnp.where(active, lt, 0)
    lp_safe = jnp.where(active, lp, 0)
    terms = jnp.where(active, jnp.exp(lt_safe) * (lt_safe - lp_safe), 0)
    return jnp.sum(terms, axis=axis)
