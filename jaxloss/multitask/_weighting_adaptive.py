"""Adaptive task weighting: GradNorm (from gradient norms and loss ratios) and FAMO (from loss
changes). Both learn their weights with a small optimizer of their own, kept in the state.

They follow the protocol of every stateful method of :mod:`jaxloss.multitask` (see
``_weighting``)::

    state = method.init(task_names)
    weights, state = method.update(task_losses, state)        # GradNorm: + jacobian= or gramian=
    total, aux = mt.weighted_total(task_losses, weights)

``weights`` is a dict task -> scalar (sorted keys), a constant for the gradient. GradNorm reads
the per-task gradient norms too, so its update takes the Jacobian (or its Gramian); with the
Jacobian, ``mt.combine(jacobian, weights)`` is the update direction.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike, DTypeLike

from .._core import checks as _checks
from ._aggregator import _check_gramian, _rows_from_jacobian
from ._common import (
    PyTree,
    _as_dict,
    _check_same_tasks,
    _default_float,
    _safe_div,
    _scalar,
    _stack_losses,
    _task_names,
)
from ._gradients import combine

__all__ = ["FAMO", "FAMOState", "GradNorm", "GradNormState", "famo", "grad_norm"]


# ---------------------------------------------------------------------------------------------
# GradNorm (Chen et al. 2018)


class GradNormState(NamedTuple):
    """State of :func:`grad_norm`."""

    weights: dict[str, jax.Array]  #: task -> the weight the next update returns (Σ = T).
    initial_losses: jax.Array  #: [T] L_i(0), recorded at the first update (sorted task order).
    num_updates: jax.Array  #: int32 number of updates (saturating).
    inner_state: optax.OptState  #: the optax state of the weights' optimizer.


@dataclasses.dataclass(frozen=True)
class GradNorm:
    """A GradNorm weighting (from :func:`grad_norm`): ``init``, ``update`` and ``transform``.

    Attributes:
      alpha: the restoring-force strength α ≥ 0.
      optimizer: the optax transform that steps the weights.
    """

    alpha: float
    optimizer: optax.GradientTransformation

    def init(self, task_names: Iterable[str], *, dtype: DTypeLike | None = None) -> GradNormState:
        """The state for the tasks (names, or a mapping whose keys are the names): weights 1."""
        tasks = _task_names("grad_norm", "task_names", task_names)
        dt = _default_float("grad_norm", dtype)
        w = jnp.ones((len(tasks),), dt)
        return GradNormState(
            _as_dict(tasks, w), jnp.ones_like(w), jnp.zeros((), jnp.int32), self.optimizer.init(w)
        )

    def update(
        self,
        task_losses: Any,
        state: Any,
        *deprecated: Any,
        jacobian: PyTree = None,
        gramian: ArrayLike | None = None,
    ) -> tuple[Any, GradNormState]:
        """``(weights {task: w_i} for this step, new state)`` from the scalar task losses and the
        per-task gradients: ``jacobian=`` (a pytree with a leading task axis, sorted task order;
        its norms are computed without squaring) or ``gramian=`` (only its diagonal, the squared
        gradient norms, is used). Exactly one of the two.

        The order ``update(gramian, task_losses, state)`` of earlier releases, which returned a
        [T] array, still works, with a DeprecationWarning.
        """
        fn = "grad_norm"
        if deprecated:
            warnings.warn(
                "jaxloss.grad_norm: `update(gramian, task_losses, state)` is deprecated; use "
                "`update(task_losses, state, gramian=gramian)`, which returns a dict task -> "
                "weight like every other method.",
                DeprecationWarning,
                stacklevel=2,
            )
            (old_state,) = deprecated
            names = sorted(old_state.weights)
            w, new = self.update(state, old_state, gramian=task_losses)
            return jnp.stack([w[t] for t in names]), new
        if (jacobian is None) == (gramian is None):
            raise ValueError(
                f"jaxloss.{fn}: pass exactly one of `jacobian=` (per-task gradients, leading task "
                "axis) and `gramian=` (their [T, T] Gramian)."
            )
        tasks = sorted(state.weights)
        t = len(tasks)
        if gramian is not None:
            g = _check_gramian(fn, gramian)
            if g.shape[0] != t:
                raise ValueError(
                    f"jaxloss.{fn}: `gramian` must be [{t}, {t}] (the tasks given to init); "
                    f"got {tuple(g.shape)}."
                )
            norms = jnp.sqrt(jnp.maximum(jnp.diagonal(g), 0.0))
        else:
            rows = _rows_from_jacobian(jax.lax.stop_gradient(jacobian), False)
            if rows.norms.shape[0] != t:
                raise ValueError(
                    f"jaxloss.{fn}: `jacobian` must have {t} rows (the tasks given to init); "
                    f"got {rows.norms.shape[0]}."
                )
            norms = rows.norms  # from the normalised rows: no overflow of a squared norm
        return self._update(norms, task_losses, state)

    def _update(
        self, norms: jax.Array, task_losses: Any, state: GradNormState
    ) -> tuple[dict[str, jax.Array], GradNormState]:
        tasks = sorted(state.weights)
        t = len(tasks)
        current = jnp.stack([state.weights[n] for n in tasks])
        dt = current.dtype
        losses = _stack_losses("grad_norm", "task_losses", task_losses, tasks, "init", dt)
        norms = jax.lax.stop_gradient(norms).astype(dt)
        first = state.num_updates == 0
        l0 = jnp.where(first, losses, state.initial_losses)
        ratio = _safe_div(losses, l0)
        r = _safe_div(ratio, ratio.mean())

        def balancing_loss(w: jax.Array) -> jax.Array:
            gw = w * norms
            target = jax.lax.stop_gradient(gw.mean() * r**self.alpha)
            return jnp.abs(gw - target).sum()

        grad = jax.grad(balancing_loss)(current)
        upd, inner = self.optimizer.update(grad, state.inner_state, current)
        w = jnp.maximum(optax.apply_updates(current, upd), jnp.finfo(dt).tiny)
        w = t * w / w.sum()
        new = GradNormState(_as_dict(tasks, w), l0, optax.safe_increment(state.num_updates), inner)
        return dict(state.weights), new

    def transform(
        self, task_names: Iterable[str], *, select: Callable[[Any], Any] | None = None
    ) -> optax.GradientTransformationExtraArgs:
        """The same as an optax transform: ``update(jacobian, state, params=None, *, task_losses)``.

        ``task_losses`` (the mapping of scalar losses) is an extra argument, which
        ``optax.chain`` passes on: ``opt.update(jac, opt_state, params, task_losses=losses)``.
        ``select(jacobian) -> sub-pytree`` picks the leaves whose gradient norms GradNorm balances
        (the paper: the last shared layer); default all of them. Returns ``Σ w_i ∇L_i``.
        """
        names = list(task_names)
        gn = self

        def init(params: optax.Params) -> GradNormState:
            del params
            return gn.init(names)

        def update(
            updates: optax.Updates,
            state: GradNormState,
            params: optax.Params | None = None,
            *,
            task_losses: Mapping[str, ArrayLike] | None = None,
            **extra: Any,
        ) -> tuple[optax.Updates, GradNormState]:
            del params, extra
            if task_losses is None:
                raise ValueError(
                    "jaxloss.grad_norm: the transform's update needs `task_losses=` (a mapping "
                    "task -> scalar loss)."
                )
            sub = updates if select is None else select(updates)
            w, state = gn.update(task_losses, state, jacobian=sub)
            return combine(updates, w), state

        return optax.GradientTransformationExtraArgs(init, update)


def grad_norm(
    alpha: float = 1.5,
    *,
    learning_rate: float = 0.025,
    optimizer: optax.GradientTransformation | None = None,
) -> GradNorm:
    """GradNorm: learn task weights that equalise the tasks' weighted gradient norms.

    Math (n_i = ‖∇_W L_i‖ on the differentiated parameters W, w the weights, L_i(0) the losses at
    the first update)::

        G_i = w_i n_i,   Ḡ = mean_i G_i,   r_i = (L_i/L_i(0)) / mean_j (L_j/L_j(0))
        L_grad(w) = Σ_i | G_i − stopgrad(Ḡ · r_i^α) |
        w ← optimizer step on ∇_w L_grad,   then  w ← T · w / Σ_j w_j   (kept > 0)

    The model's update for this step uses the current weights, ``d = Σ_i w_i ∇L_i`` (the **sum**
    scale: Σ w = T, so equal weights are the summed loss). The target is detached (the paper);
    the weights are constants for the model. ``∂L_grad/∂w_i = sign(G_i − target_i) · n_i``.

    ``update(task_losses, state, jacobian=J) -> (weights, new_state)`` needs only the norms of the
    Jacobian's rows (or ``gramian=G``, only its diagonal); pass the last shared layer's Jacobian
    for the paper's cheap variant (or ``transform(names, select=...)``). Then
    ``mt.combine(J, weights)`` is the update direction.

    Args:
      alpha: the restoring-force strength α ≥ 0 (default 1.5, the paper's NYUv2 value).
      learning_rate: of the default optimizer ``optax.adam`` (the paper uses the network's).
      optimizer: an optax transform for the weights instead (overrides ``learning_rate``).

    Returns:
      :class:`GradNorm` with ``init(task_names, *, dtype=None) -> GradNormState``,
      ``update(task_losses, state, *, jacobian=None, gramian=None) -> (weights, new_state)``
      (``weights`` a dict task -> scalar) and ``transform(task_names)``, its optax form.

    Examples:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> gn = mt.grad_norm(alpha=1.5, learning_rate=0.1)
      >>> state = gn.init(["a", "b"])
      >>> J = jnp.array([[2.0, 0.0], [0.0, 1.0]])       # ‖∇L_a‖ = 2, ‖∇L_b‖ = 1
      >>> w, state = gn.update({"a": 1.0, "b": 1.0}, state, jacobian=J)
      >>> {k: float(v) for k, v in w.items()}             # this step: the current weights
      {'a': 1.0, 'b': 1.0}
      >>> {k: round(float(v), 3) for k, v in state.weights.items()}   # a's weight falls
      {'a': 0.9, 'b': 1.1}

    Reference:
      Z. Chen, V. Badrinarayanan, C.-Y. Lee, A. Rabinovich. "GradNorm: Gradient Normalization for
      Adaptive Loss Balancing in Deep Multitask Networks." ICML 2018, arXiv:1711.02257.
    """
    fn = "grad_norm"
    _checks.require(fn, "alpha", alpha, _checks.NONNEGATIVE)
    if optimizer is None:
        _checks.require(fn, "learning_rate", learning_rate, _checks.POSITIVE)
        optimizer = optax.adam(learning_rate)
    return GradNorm(alpha, optimizer)


# ---------------------------------------------------------------------------------------------
# FAMO (Liu et al. 2023)


class FAMOState(NamedTuple):
    """State of :func:`famo`."""

    logits: jax.Array  #: [T] the weight logits ξ (z = softmax(ξ)), sorted task order.
    inner_state: optax.OptState  #: the optax state of the logits' optimizer.
    prev_losses: jax.Array  #: [T] the losses recorded by the last ``update``.
    min_losses: jax.Array  #: [T] the lower bounds b_i of the losses (0 by default).
    pending: jax.Array  #: bool: the recorded losses still await their logit step.
    weights: dict[str, jax.Array]  #: task -> the weight the last update returned (1/T before).


@dataclasses.dataclass(frozen=True)
class FAMO:
    """A FAMO weighting (from :func:`famo`): ``init``, ``update`` and ``observe``.

    Attributes:
      optimizer: the optax transform that steps the logits.
      eps: added to the loss gaps, > 0.
    """

    optimizer: optax.GradientTransformation
    eps: float

    def init(
        self,
        task_names: Iterable[str],
        *,
        min_losses: Mapping[str, ArrayLike] | None = None,
        dtype: DTypeLike | None = None,
    ) -> FAMOState:
        """The state: logits 0 (equal weights); ``min_losses`` b_i (default 0)."""
        fn = "famo"
        tasks = _task_names(fn, "task_names", task_names)
        dt = _default_float(fn, dtype)
        if min_losses is None:
            b = jnp.zeros((len(tasks),), dt)
        else:
            _check_same_tasks(fn, "min_losses", min_losses, tasks, "those of `task_names`")
            b = jnp.stack([_scalar(fn, "min_losses", t, min_losses[t]) for t in tasks]).astype(dt)
        xi = jnp.zeros((len(tasks),), dt)
        w = _as_dict(tasks, jnp.full((len(tasks),), 1.0 / len(tasks), dt))
        return FAMOState(xi, self.optimizer.init(xi), jnp.ones_like(xi), b, jnp.array(False), w)

    def _losses(self, arg: str, task_losses: Any, state: FAMOState) -> jax.Array:
        tasks = sorted(state.weights)
        return _stack_losses("famo", arg, task_losses, tasks, "init", state.logits.dtype)

    def _step(self, new: jax.Array, state: FAMOState) -> FAMOState:
        """The logits step from the recorded losses to ``new``, if a record is pending."""
        b = state.min_losses
        delta = jnp.log(state.prev_losses - b + self.eps) - jnp.log(new - b + self.eps)
        _, vjp = jax.vjp(jax.nn.softmax, state.logits)
        (grad,) = vjp(delta)
        upd, inner = self.optimizer.update(grad, state.inner_state, state.logits)
        logits = optax.apply_updates(state.logits, upd)
        keep = state.pending
        return state._replace(
            logits=jnp.where(keep, logits, state.logits),
            inner_state=jax.tree.map(lambda a, o: jnp.where(keep, a, o), inner, state.inner_state),
            pending=jnp.array(False),
        )

    def update(
        self, task_losses: Mapping[str, ArrayLike], state: FAMOState
    ) -> tuple[dict[str, jax.Array], FAMOState]:
        """``(weights {task: w_i}, new state)`` for the current losses.

        If the losses of the previous update are still pending (no :meth:`observe` since), the
        logits first take their step from those to ``task_losses`` (the next batch's losses stand
        for the losses after the model step). Then the weights are computed and ``task_losses``
        is recorded for the next step.
        """
        loss = self._losses("task_losses", task_losses, state)
        state = self._step(loss, state)
        z = jax.nn.softmax(state.logits)
        dd = loss - state.min_losses + self.eps
        c = jnp.sum(z / dd)
        w = _as_dict(sorted(state.weights), z / (c * dd))
        return w, state._replace(prev_losses=loss, pending=jnp.array(True), weights=w)

    def observe(self, new_task_losses: Mapping[str, ArrayLike], state: FAMOState) -> FAMOState:
        """The logits step from the losses of the last update to ``new_task_losses``, the same
        batch's losses *after* the model step (the paper's variant: one more forward pass); the
        next update then does not step again."""
        return self._step(self._losses("new_task_losses", new_task_losses, state), state)


def famo(*, learning_rate: float = 0.025, weight_decay: float = 1e-3, eps: float = 1e-8) -> FAMO:
    """FAMO: fast adaptive multitask optimisation from loss values only (O(1) in T).

    Math (z = softmax(ξ), b_i the loss lower bounds, D_i = L_i − b_i + eps)::

        objective = c⁻¹ Σ_i z_i log D_i,    c = Σ_i z_i / D_i   (a constant for the gradient)
        ⇒ ∇ = Σ_i w_i ∇L_i,   w_i = z_i / (c D_i)   (Σ w_i = 1: the **mean** scale)
        after the model step, with the new losses L'_i:
            δ_i = log D_i − log D'_i,     ∇_ξ = J_softmax(ξ)ᵀ δ,
            ξ ← Adam(lr=learning_rate) with L2 weight decay ``weight_decay`` (torch's Adam
                 ``weight_decay``: ``optax.chain(optax.add_decayed_weights(wd), optax.adam(lr))``)

    as the reference code. Usage, one backward pass per step::

        w, famo_state = fm.update(losses, famo_state)         # records L
        total, _ = mt.weighted_total(losses, w)               # ∇total = Σ w_i ∇L_i
        ... model step ...

    The logits step needs the losses L' after the model step: by default the next ``update``
    takes its own losses (the next batch's) as L'; for the paper's variant, the same batch's
    losses after the step, call ``famo_state = fm.observe(new_losses, famo_state)`` after the
    model step (one more forward pass).

    FAMO is a loss weighting, not a Jacobian aggregator, so it has no optax Jacobian transform.

    Args:
      learning_rate: of the logits' Adam, > 0 (default 0.025, the paper's).
      weight_decay: γ ≥ 0, the L2 decay of the logits (default 1e-3).
      eps: added to D, > 0 (default 1e-8, as the reference code): a loss at its lower bound
        would otherwise give log 0 and a division by 0.

    Returns:
      :class:`FAMO` with ``init(task_names, *, min_losses=None, dtype=None) -> FAMOState``
      (logits 0: equal weights; ``min_losses`` a mapping task -> b_i, default 0),
      ``update(task_losses, state) -> ({task: w_i}, state)`` and
      ``observe(new_task_losses, state) -> state``; losses are mappings task -> scalar.

    Raises:
      ValueError: ``learning_rate`` or ``eps`` is not > 0, or ``weight_decay`` is negative.

    Examples:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> fm = mt.famo()
      >>> state = fm.init(["a", "b"])
      >>> w, state = fm.update({"a": jnp.array(1.0), "b": jnp.array(3.0)}, state)
      >>> {k: round(float(v), 4) for k, v in w.items()}     # ∝ 1/L: the log-loss gradient
      {'a': 0.75, 'b': 0.25}
      >>> state = fm.observe({"a": jnp.array(0.5), "b": jnp.array(3.0)}, state)
      >>> bool(state.logits[0] < state.logits[1])           # a improved: its weight falls
      True

    Reference:
      B. Liu, Y. Feng, P. Stone, Q. Liu. "FAMO: Fast Adaptive Multitask Optimization."
      NeurIPS 2023, arXiv:2306.03792.
    """
    fn = "famo"
    _checks.require(fn, "learning_rate", learning_rate, _checks.POSITIVE)
    _checks.require(fn, "weight_decay", weight_decay, _checks.NONNEGATIVE)
    _checks.require(fn, "eps", eps, _checks.POSITIVE)
    opt = optax.chain(optax.add_decayed_weights(weight_decay), optax.adam(learning_rate))
    return FAMO(opt, eps)
