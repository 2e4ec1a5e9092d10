"""Properness of a classification loss: the prediction that minimises the expected loss.

For a true class distribution q, the expected loss of a prediction is E(z) = Σ_y q_y l(z, y). A
loss is proper when the minimiser predicts p̂ = q for every q (strictly proper: only q), so a
model trained with it is calibrated in the limit. The minimiser is found by damped Newton steps
(Levenberg–Marquardt, a fixed 40 iterations, ``jax.hessian``) in the K - 1 free logits (the last
logit fixed at 0; one logit for ``"binary_logits"``), started from the proper answer log q; for
a non-convex expected loss this is the local minimiser nearest to calibration.

How the loss is called (``inputs``), for each label y of K classes:

- ``"logits"``: ``loss(logits [K, K], labels [K])`` with integer labels 0..K-1, one value per row
  (softmax losses: ``softmax_cross_entropy_with_integer_labels``, ``softmax_focal_loss``, ...).
- ``"binary_logits"``: ``loss(logits [2], labels [2])``, the same logit x with labels 0.0 and 1.0
  (sigmoid losses: ``sigmoid_binary_cross_entropy``, ``sigmoid_focal_loss``); p̂ = σ(x).
- ``"probabilities"``: ``loss(probabilities [K, K], one_hot [K, K])``, summed over the class axis
  when the loss is elementwise (``squared_error`` gives the Brier score).
"""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._core.combine import Loss
from . import _jit

__all__ = ["INPUTS", "Properness", "properness"]

#: The ways :func:`properness` calls a classification loss.
INPUTS = ("logits", "binary_logits", "probabilities")


class Properness(NamedTuple):
    """The result of :func:`properness`."""

    #: [G, K] true class distributions q (an interior grid of the simplex).
    true: jax.Array
    #: [G, K] the predicted distributions p̂ that minimise the expected loss under each q.
    predicted: jax.Array
    #: max |p̂ - q| over the grid.
    max_deviation: jax.Array
    #: max_deviation within tolerance (1e-7 in float64, 1e-4 in float32).
    proper: jax.Array
    #: proper, and the expected loss is strictly convex at each minimiser (in the free logits).
    strictly_proper: jax.Array


def _grid(num_classes: int, dtype: Any) -> np.ndarray:
    if num_classes == 2:
        q1 = np.linspace(0.01, 0.99, 99)
        return np.stack([1 - q1, q1], axis=1).astype(dtype)
    m = {3: 10, 4: 6}.get(num_classes, 3)
    rows = [c for c in itertools.product(range(m + 1), repeat=num_classes) if sum(c) == m]
    counts = np.asarray(rows, np.float64) + 0.5  # interior points of the simplex
    return (counts / counts.sum(axis=1, keepdims=True)).astype(dtype)


def _expected_loss(loss: Any, inputs: str, k: int, hp: dict[str, Any]) -> Any:
    def values(u: jax.Array) -> jax.Array:
        if inputs == "binary_logits":
            x = jnp.stack([u[0], u[0]])
            v = loss(x, jnp.array([0.0, 1.0], u.dtype), **hp)
        else:
            z = jnp.concatenate([u, jnp.zeros((1,), u.dtype)])
            rows = jnp.broadcast_to(z, (k, k))
            if inputs == "logits":
                v = loss(rows, jnp.arange(k), **hp)
            else:
                v = loss(jax.nn.softmax(rows, axis=-1), jnp.eye(k, dtype=u.dtype), **hp)
                if v.shape == (k, k):
                    v = jnp.sum(v, axis=-1)
        if v.shape != (k,):
            raise ValueError(
                f"jaxloss.diagnostics.properness: with inputs={inputs!r} the loss must give one "
                f"value per example ({k} examples); got shape {tuple(v.shape)}."
            )
        return v

    def expected(u: jax.Array, q: jax.Array) -> jax.Array:
        return jnp.sum(q * values(u))

    return expected


def _predicted(u: jax.Array, inputs: str) -> jax.Array:
    if inputs == "binary_logits":
        p1 = jax.nn.sigmoid(u[0])
        return jnp.stack([1 - p1, p1])
    return jax.nn.softmax(jnp.concatenate([u, jnp.zeros((1,), u.dtype)]))


def _minimise(expected: Any, q: jax.Array, u0: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Levenberg–Marquardt from u0; returns (u*, smallest Hessian eigenvalue at u*)."""
    d = u0.shape[0]
    eye = jnp.eye(d, dtype=u0.dtype)
    eps = jnp.finfo(u0.dtype).eps
    grad = jax.grad(expected)
    hess = jax.hessian(expected)

    def step(_: int, state: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        u, lam = state
        e, g, h = expected(u, q), grad(u, q), hess(u, q)
        scale = jnp.maximum(jnp.max(jnp.abs(jnp.diag(h))), eps)
        trial = u - jnp.linalg.solve(h + lam * scale * eye, g)
        e_new = expected(trial, q)
        ok = jnp.isfinite(e_new) & (e_new <= e + 4 * eps * jnp.abs(e))
        return (
            jnp.where(ok, trial, u),
            jnp.where(ok, jnp.maximum(lam * 0.1, 1e-12), lam * 10.0),
        )

    u, _ = jax.lax.fori_loop(0, 40, step, (u0, jnp.asarray(1e-3, u0.dtype)))
    return u, jnp.min(jnp.linalg.eigvalsh(hess(u, q)))


def properness(
    loss: Loss, *, num_classes: int = 2, inputs: str = "logits", **hyperparameters: Any
) -> Properness:
    """The calibration map of a classification loss and whether it is (strictly) proper.

    Math: for each true class distribution q on an interior grid of the simplex (binary: 99
    values of q₁ in [0.01, 0.99]), p̂(q) = argmin_p Σ_y q_y l(p, y) over the predicted
    distribution p (through logits). The loss is proper when p̂(q) = q. Cross-entropy and the
    Brier score are strictly proper. Class-weighted cross-entropy (weights w) gives
    p̂_c ∝ w_c q_c (binary: p̂ = w₁q / (w₁q + w₀(1 - q))). Binary focal loss with γ > 0 is not
    proper: p̂ solves the first-order condition q = B(p̂) / (A(p̂) + B(p̂)) with
    A(p) = (1 - p)^γ / p - γ(1 - p)^(γ-1) log p and B(p) = A(1 - p), which pulls p̂ towards ½
    (under-confident).

    Args:
      loss: a classification loss, called as ``inputs`` says (see the module notes).
      num_classes: K >= 2 (``"binary_logits"``: 2). The grid has 99 points for K = 2, 66 for
        K = 3, 84 for K = 4, and the lattice of step 1/3 beyond.
      inputs: ``"logits"`` (softmax, integer labels), ``"binary_logits"`` (sigmoid, labels 0/1)
        or ``"probabilities"`` (loss of probabilities against one-hot targets).
      **hyperparameters: passed to ``loss``.

    Returns:
      :class:`Properness`: true [G, K], predicted [G, K], max_deviation, proper and
      strictly_proper (scalars), in float64 when x64 is enabled, else float32. Jit-able.

    Examples:
      >>> import jaxloss
      >>> from jaxloss.diagnostics import properness
      >>> ce = properness(jaxloss.softmax_cross_entropy_with_integer_labels)
      >>> bool(ce.proper), bool(ce.strictly_proper)
      (True, True)
      >>> focal = properness(jaxloss.sigmoid_focal_loss, inputs="binary_logits", gamma=2.0)
      >>> bool(focal.proper), round(float(focal.predicted[89, 1]), 3)  # true q = 0.9
      (False, 0.694)

    Reference: T. Gneiting and A. Raftery, "Strictly Proper Scoring Rules, Prediction, and
    Estimation", JASA 102(477), 2007; N. Charoenphakdee, J. Vongkulbhisal, N. Chairatanakul,
    M. Sugiyama, "On Focal Loss for Class-Posterior Probability Estimation: A Theoretical
    Perspective", CVPR 2021.
    """
    if inputs not in INPUTS:
        raise ValueError(
            f"jaxloss.diagnostics.properness: `inputs` must be one of {INPUTS}; got {inputs!r}."
        )
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            "jaxloss.diagnostics.properness: `num_classes` must be an integer >= 2; got "
            f"{num_classes!r}."
        )
    if inputs == "binary_logits" and num_classes != 2:
        raise ValueError(
            "jaxloss.diagnostics.properness: inputs='binary_logits' has 2 classes; got "
            f"num_classes={num_classes}."
        )
    dtype = jnp.result_type(float)
    q = jnp.asarray(_grid(num_classes, np.dtype(dtype)))
    # The loss's checks, with every hyperparameter concrete.
    jax.eval_shape(_expected_loss(loss, inputs, num_classes, hyperparameters), q[0, 1:], q[0])
    return _jit.call(_properness_jit, _properness, loss, hyperparameters, q, inputs=inputs)


def _properness(
    q: jax.Array,
    dynamic: dict[str, Any],
    *,
    loss: Any,
    static: tuple[tuple[str, Any], ...],
    inputs: str,
) -> Properness:
    hyperparameters = {**dict(static), **dynamic}
    dtype = q.dtype
    num_classes = q.shape[1]
    expected = _expected_loss(loss, inputs, num_classes, hyperparameters)
    if inputs == "binary_logits":
        u0 = jnp.log(q[:, 1:]) - jnp.log(q[:, :1])
    else:
        u0 = jnp.log(q[:, :-1]) - jnp.log(q[:, -1:])
    u, min_eig = jax.vmap(lambda qq, uu: _minimise(expected, qq, uu))(q, u0)
    predicted = jax.vmap(lambda uu: _predicted(uu, inputs))(u)
    deviation = jnp.max(jnp.abs(predicted - q))
    tol = 1e-7 if dtype == jnp.float64 else 1e-4
    proper = deviation <= tol
    strict = proper & jnp.all(min_eig > 1e3 * jnp.finfo(dtype).eps)
    return Properness(q, predicted, deviation, proper, strict)


_properness_jit = jax.jit(_properness, static_argnames=("loss", "static", "inputs"))
