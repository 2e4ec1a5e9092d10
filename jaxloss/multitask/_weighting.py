"""Loss-value task weighting: fixed, learned (uncertainty) and stateful (DWA, random) weights.

Every function here takes per-task *scalar* losses as a mapping ``{task_name: loss}`` (reduce the
per-example values first, e.g. with :func:`jaxloss.mean`, or take ``aux["losses"]`` from
:func:`jaxloss.multitask.multitask_loss`) and needs loss values only, never per-task gradients:
one backward pass.

**The protocol of the stateful methods** (here DWA and RLW; GradNorm and FAMO in
``_weighting_adaptive``; the gradient aggregators follow the same shape), optax's style, jittable,
with no Python branching on traced values::

    method = mt.dynamic_weight_averaging()          # hyperparameters only
    state = method.init(task_names)                 # + key= for RLW
    weights, state = method.update(task_losses, state)
    total, aux = mt.weighted_total(task_losses, weights)

``weights`` is always a dict task -> scalar weight (sorted keys), a constant for the gradient.

- :func:`uncertainty_weighting` (Kendall, Gal & Cipolla 2018) is the one *learned* weighting:
  its parameters, one log-variance per task from :func:`uncertainty_weighting_init`, are an
  ordinary pytree that the same optax optimizer updates together with the model's parameters, so
  it has no update rule of its own: it is the objective ``(total, aux)`` itself, with the
  weights ``aux["weights"]`` in the same task-dict form.
- :func:`dynamic_weight_averaging` (Liu, Johns & Davison 2019) and :func:`random_loss_weighting`
  (Lin et al. 2021) follow the protocol above.
- :func:`weighted_total` applies a mapping of weights: ``(total, aux)`` in the ``has_aux``
  convention of ``jax.value_and_grad``.

Tasks are identified by name; where an order is needed (stacking, the random draw, the summation
order) the names are taken sorted, so a mapping's insertion order never changes a result.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike, DTypeLike

from .._core import checks as _checks
from ._common import (
    _as_dict,
    _check_mapping,
    _check_same_tasks,
    _default_float,
    _scalar,
    _stack_losses,
    _task_names,
)

__all__ = [
    "DWAState",
    "DynamicWeightAveraging",
    "RLWState",
    "RandomLossWeighting",
    "dynamic_weight_averaging",
    "random_loss_weighting",
    "uncertainty_weighting",
    "uncertainty_weighting_init",
    "weighted_total",
]

TASK_KINDS = ("regression", "classification")


# ---------------------------------------------------------------------------------------------
# Homoscedastic uncertainty weighting (Kendall, Gal & Cipolla 2018)


def uncertainty_weighting_init(
    task_names: Iterable[str], init: float = 0.0, *, dtype: DTypeLike | None = None
) -> dict[str, jax.Array]:
    """Log-variance parameters ``{task: s}``, ``s = log σ²``, for :func:`uncertainty_weighting`.

    They are unconstrained learnable parameters: put them next to the model's parameters (e.g.
    ``params = {"model": model_params, "log_variances": uncertainty_weighting_init(tasks)}``) so
    that one optax optimizer updates both.

    Args:
      task_names: the task names (strings), or a mapping whose keys are the task names.
      init: the initial ``s`` of every task. 0 (σ² = 1: regression weight ½, classification
        weight 1) by default, as TorchJD; LibMTL starts at −0.5.
      dtype: float dtype of the parameters; default JAX's default float (float32, or float64 with
        ``jax_enable_x64``).

    Returns:
      A dict task -> scalar array, keys sorted.

    Examples:
      >>> import jaxloss.multitask as mt
      >>> {k: float(v) for k, v in mt.uncertainty_weighting_init(["seg", "depth"]).items()}
      {'depth': 0.0, 'seg': 0.0}
    """
    fn = "uncertainty_weighting_init"
    tasks = _task_names(fn, "task_names", task_names)
    v = _checks.concrete_float(init)
    if v is None or not np.isfinite(v):
        raise ValueError(f"jaxloss.{fn}: `init` must be a finite number; got {init!r}.")
    dt = _default_float(fn, dtype)
    return {t: jnp.full((), v, dtype=dt) for t in tasks}


def uncertainty_weighting(
    task_losses: Mapping[str, ArrayLike],
    log_variances: Mapping[str, ArrayLike],
    *,
    kinds: Mapping[str, str] | None = None,
) -> tuple[jax.Array, dict[str, dict[str, jax.Array]]]:
    """Homoscedastic uncertainty weighting: each task's loss weighted by a learned 1/σ².

    Math (s_i = log σ_i², learned; L_i the task's scalar loss)::

        total = Σ_i  c_i · exp(−s_i) · L_i + ½ s_i,
        c_i = ½  for kind "regression"      (= L/(2σ²) + log σ)
        c_i = 1  for kind "classification"  (= L/σ²    + log σ)

    These are the two forms of the paper (its Eq. 10 combines one of each): the regression form is
    exactly the mean negative log-likelihood of a Gaussian N(f, σ²) up to a constant, for L the
    mean squared error; the classification form comes from a softmax with temperature σ², whose
    likelihood is approximated as (1/σ²)·CE + log σ (exact as σ → 1). We implement both, selected
    per task by ``kinds`` (default: every task is "regression"), because the kind changes the
    optimum by a factor of 2 and the paper states them separately; with the default this is exactly
    TorchJD's ``UW`` and LibMTL's ``UW`` (which applies the regression form to all tasks). The
    popular simplified ``exp(−s)·L + s`` is 2 × the regression form: the same optimum in s, every
    gradient doubled (invisible to Adam, a doubled learning rate for SGD).

    Gradient (closed form)::

        ∂total/∂L_i = c_i · exp(−s_i)                    (the task's weight)
        ∂total/∂s_i = ½ − c_i · exp(−s_i) · L_i

    Analytic optimum in s for fixed L_i > 0 (∂/∂s = 0, and ∂²/∂s² = c_i e^(−s_i) L_i > 0):
    regression σ_i² = L_i, classification σ_i² = 2 L_i. At that optimum a regression task
    contributes ½ + ½ log L_i, so the model is in effect trained on Σ ½ log L_i (gradient
    ∇L_i / (2 L_i)): every task is weighted by the inverse of its current loss. If a loss can reach
    0 (hinge_loss) or go negative (a likelihood of a continuous variable), there is no optimum and
    s → −∞: use positive losses.

    Args:
      task_losses: mapping task -> scalar floating loss (already reduced over the batch).
      log_variances: mapping task -> scalar floating s_i, the same tasks (the learnable parameters
        from :func:`uncertainty_weighting_init`).
      kinds: optional mapping task -> "regression" | "classification"; tasks not listed are
        "regression". Keys must be tasks of ``task_losses``.

    Returns:
      ``(total, aux)``: the scalar objective and, for logging, ``aux = {"losses": {task: L_i},
      "weights": {task: c_i e^(−s_i)}, "variances": {task: σ_i² = e^(s_i)}}``; use it with
      ``jax.value_and_grad(objective, has_aux=True)``. Computed (and returned) in the promoted
      dtype of the inputs, at least float32.

    Raises:
      ValueError: task names differ between ``task_losses`` and ``log_variances`` (the message
        names the missing and unknown tasks), unknown task or invalid value in ``kinds``, or a
        non-scalar loss or log-variance.
      TypeError: a non-floating loss or log-variance.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxloss.multitask as mt
      >>> s = mt.uncertainty_weighting_init(["depth", "seg"])
      >>> losses = {"depth": jnp.array(2.0), "seg": jnp.array(0.5)}
      >>> total, aux = mt.uncertainty_weighting(losses, s, kinds={"seg": "classification"})
      >>> round(float(total), 4), {k: float(w) for k, w in aux["weights"].items()}
      (1.5, {'depth': 0.5, 'seg': 1.0})
      >>> g = jax.grad(lambda s: mt.uncertainty_weighting(losses, s, kinds={"seg":
      ...     "classification"})[0])(s)
      >>> {k: float(v) for k, v in g.items()}   # ½ − c·e^(−s)·L: depth ½ − 1, seg ½ − ½
      {'depth': -0.5, 'seg': 0.0}

    Reference:
      A. Kendall, Y. Gal, R. Cipolla. "Multi-Task Learning Using Uncertainty to Weigh Losses for
      Scene Geometry and Semantics." CVPR 2018, arXiv:1705.07115 (Eqs. 7-10).
    """
    fn = "uncertainty_weighting"
    _check_mapping(fn, "task_losses", task_losses)
    tasks = _task_names(fn, "task_losses", task_losses)
    _check_same_tasks(fn, "log_variances", log_variances, tasks, "those of `task_losses`")
    kind_of = dict.fromkeys(tasks, "regression")
    if kinds is not None:
        _check_mapping(fn, "kinds", kinds)
        unknown = sorted(set(kinds) - set(tasks), key=str)
        if unknown:
            raise ValueError(
                f"jaxloss.{fn}: `kinds` must only name tasks of `task_losses` {tasks}; "
                f"got unknown {unknown}."
            )
        for t, k in kinds.items():
            if k not in TASK_KINDS:
                raise ValueError(
                    f"jaxloss.{fn}: `kinds[{t!r}]` must be one of {list(TASK_KINDS)}; got {k!r}."
                )
            kind_of[t] = k
    losses = {t: _scalar(fn, "task_losses", t, task_losses[t]) for t in tasks}
    logvars = {t: _scalar(fn, "log_variances", t, log_variances[t]) for t in tasks}
    dtype = _checks.compute_dtype(*losses.values(), *logvars.values())

    total = jnp.zeros((), dtype)
    out_losses, weights, variances = {}, {}, {}
    for t in tasks:
        loss = losses[t].astype(dtype)
        s = logvars[t].astype(dtype)
        c = 0.5 if kind_of[t] == "regression" else 1.0
        w = c * jnp.exp(-s)
        total = total + (w * loss + 0.5 * s)
        out_losses[t], weights[t], variances[t] = loss, w, jnp.exp(s)
    return total, {"losses": out_losses, "weights": weights, "variances": variances}


# ---------------------------------------------------------------------------------------------
# Applying weights


def weighted_total(
    task_losses: Mapping[str, ArrayLike], weights: Mapping[str, ArrayLike]
) -> tuple[jax.Array, dict[str, dict[str, jax.Array]]]:
    """Weighted sum of per-task scalar losses, with a per-task breakdown for logging.

    Math: total = Σ_i w_i · L_i (summed in sorted task order).

    Gradient: ∂total/∂L_i = w_i, ∂total/∂w_i = L_i. The weights are used as given: those from
    :func:`dynamic_weight_averaging` and :func:`random_loss_weighting` are already constants;
    wrap others in ``jax.lax.stop_gradient`` if they must not be trained.

    Args:
      task_losses: mapping task -> scalar floating loss.
      weights: mapping task -> scalar real weight, the same tasks.

    Returns:
      ``(total, {"losses": {task: L_i}, "weights": {task: w_i}})`` in the ``has_aux`` convention,
      in the promoted dtype of the inputs (at least float32).

    Raises:
      ValueError: task names differ (the message names the missing and unknown tasks) or a value
        is not a scalar.
      TypeError: a non-floating loss or a non-numeric weight.

    Examples:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> total, aux = mt.weighted_total({"a": jnp.array(2.0), "b": jnp.array(3.0)},
      ...                                {"a": 0.5, "b": 2.0})
      >>> float(total)
      7.0
    """
    fn = "weighted_total"
    _check_mapping(fn, "task_losses", task_losses)
    tasks = _task_names(fn, "task_losses", task_losses)
    _check_same_tasks(fn, "weights", weights, tasks, "those of `task_losses`")
    losses = {t: _scalar(fn, "task_losses", t, task_losses[t]) for t in tasks}
    ws = {t: _scalar(fn, "weights", t, weights[t], floating=False) for t in tasks}
    dtype = _checks.compute_dtype(*losses.values(), *ws.values())
    losses = {t: v.astype(dtype) for t, v in losses.items()}
    ws = {t: v.astype(dtype) for t, v in ws.items()}
    total = jnp.zeros((), dtype)
    for t in tasks:
        total = total + ws[t] * losses[t]
    return total, {"losses": losses, "weights": ws}


# ---------------------------------------------------------------------------------------------
# Dynamic Weight Averaging (Liu, Johns & Davison 2019)


class DWAState(NamedTuple):
    """State of :func:`dynamic_weight_averaging`: the last two loss records and a count."""

    num_updates: jax.Array  #: int32, the number of updates so far (saturating at int32 max).
    last_losses: dict[str, jax.Array]  #: L(t−1), the losses fed to the last update.
    second_last_losses: dict[str, jax.Array]  #: L(t−2), those fed to the update before.


@dataclasses.dataclass(frozen=True)
class DynamicWeightAveraging:
    """A DWA weighting (from :func:`dynamic_weight_averaging`): ``init``, ``update``, ``weights``.

    Attributes:
      temperature: τ > 0.
    """

    temperature: float

    def init(self, task_names: Iterable[str], *, dtype: DTypeLike | None = None) -> DWAState:
        """The state for the tasks (names, or a mapping whose keys are the names); ``dtype`` is
        that of the recorded losses and the weights (default JAX's default float)."""
        fn = "dynamic_weight_averaging"
        tasks = _task_names(fn, "task_names", task_names)
        dt = _default_float(fn, dtype)
        zeros = {t: jnp.zeros((), dt) for t in tasks}
        return DWAState(jnp.zeros((), jnp.int32), zeros, dict(zeros))

    def weights(self, state: DWAState) -> dict[str, jax.Array]:
        """The weights the next :meth:`update` returns (a dict task -> scalar)."""
        tasks = sorted(state.last_losses)
        last = jnp.stack([state.last_losses[t] for t in tasks])
        before = jnp.stack([state.second_last_losses[t] for t in tasks])
        ok = before != 0
        ratio = jnp.where(ok, last / jnp.where(ok, before, 1), 1)  # double where: no 0/0
        w = len(tasks) * jax.nn.softmax(ratio / self.temperature)
        w = jnp.where(state.num_updates >= 2, w, jnp.ones_like(w))
        return _as_dict(tasks, w)

    def update(
        self, task_losses: Mapping[str, ArrayLike], state: DWAState
    ) -> tuple[dict[str, jax.Array], DWAState]:
        """``(weights for this step, new state)``; records ``task_losses`` as L(t)."""
        fn = "dynamic_weight_averaging"
        tasks = sorted(state.last_losses)
        dt = state.last_losses[tasks[0]].dtype
        new = _stack_losses(fn, "task_losses", task_losses, tasks, "those given to init", dt)
        w = self.weights(state)
        return w, DWAState(
            optax.safe_increment(state.num_updates), _as_dict(tasks, new), dict(state.last_losses)
        )


def dynamic_weight_averaging(temperature: float = 2.0) -> DynamicWeightAveraging:
    """Dynamic Weight Averaging: weight each task by how slowly its loss has been falling.

    Math (T tasks, τ = ``temperature``; t counts updates)::

        r_i(t−1) = L_i(t−1) / L_i(t−2)
        w_i(t)   = T · exp(r_i(t−1)/τ) / Σ_j exp(r_j(t−1)/τ)      (so Σ_i w_i = T)
        w_i(1) = w_i(2) = 1                                       (no ratio yet)

    A task whose loss fell less (larger r) gets more weight; τ → ∞ gives equal weights.
    ``update(task_losses, state)`` returns the weights for the current step, computed from the two
    loss records *before* it (never from ``task_losses`` itself), and records ``task_losses`` as
    L(t). A ratio with L_i(t−2) = 0 is taken as 1. Losses are assumed positive.

    What is a loss record: the paper averages each task's loss over an epoch and updates once per
    epoch; ``update`` takes whatever average you feed it. Per step (inside the jitted step, in
    one pass)::

        def objective(params, dwa_state, batch):
            losses = task_losses(params, batch)           # {task: scalar}
            w, dwa_state = dwa.update(losses, dwa_state)
            total, aux = mt.weighted_total(losses, w)
            return total, (aux, dwa_state)

    or per epoch, as in the paper: use ``dwa.weights(state)`` (the weights the next ``update``
    returns) for the whole epoch, then ``_, state = dwa.update(epoch_mean_losses, state)``.

    Gradient: none through the weights. ``update`` records ``stop_gradient(task_losses)``, and the
    weights depend only on recorded losses, so with :func:`weighted_total` ∂total/∂L_i = w_i.

    Args:
      temperature: τ > 0 (default 2, the paper's value).

    Returns:
      :class:`DynamicWeightAveraging` with ``init(task_names, *, dtype=None) -> DWAState``
      (``dtype``: of the recorded losses and the weights, default JAX's default float; fed losses
      are cast to it, so the state's type is fixed across a ``lax.scan``),
      ``update(task_losses, state) -> (weights, new_state)`` and ``weights(state) -> weights``;
      ``weights`` are a dict task -> scalar. ``update`` raises ValueError naming the missing and
      unknown tasks when ``task_losses`` does not have the tasks given to ``init``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> dwa = mt.dynamic_weight_averaging(temperature=2.0)
      >>> state = dwa.init(["a", "b"])
      >>> for la, lb in [(1.0, 1.0), (0.5, 1.0), (0.25, 1.0)]:
      ...     w, state = dwa.update({"a": jnp.array(la), "b": jnp.array(lb)}, state)
      ...     print({k: round(float(v), 4) for k, v in w.items()})
      {'a': 1.0, 'b': 1.0}
      {'a': 1.0, 'b': 1.0}
      {'a': 0.8756, 'b': 1.1244}

    (The third update uses r = (0.5/1, 1/1): a's loss halved, so a gets less weight.)

    Reference:
      S. Liu, E. Johns, A. J. Davison. "End-to-End Multi-Task Learning with Attention."
      CVPR 2019, arXiv:1803.10704 (Eq. 7).
    """
    _checks.require("dynamic_weight_averaging", "temperature", temperature, _checks.POSITIVE)
    return DynamicWeightAveraging(temperature)


# ---------------------------------------------------------------------------------------------
# Random loss weighting (Lin et al. 2021)


class RLWState(NamedTuple):
    """State of :func:`random_loss_weighting`: the PRNG key and the last weights drawn."""

    key: jax.Array  #: the PRNG key the next update splits.
    weights: dict[str, jax.Array]  #: the last weights drawn (1/T each before the first update).


@dataclasses.dataclass(frozen=True)
class RandomLossWeighting:
    """An RLW weighting (from :func:`random_loss_weighting`): ``init`` and ``update``."""

    def init(
        self,
        task_names: Iterable[str],
        key: jax.Array | None = None,
        *,
        dtype: DTypeLike | None = None,
    ) -> RLWState:
        """The state for the tasks (names, or a mapping whose keys are the names) and a PRNG key
        (``jax.random.key`` or ``PRNGKey``, required); weights 1/T before the first update.

        The order ``init(key, task_names)`` of earlier releases still works, with a
        DeprecationWarning.
        """
        fn = "random_loss_weighting"
        if isinstance(task_names, jax.Array) and key is not None:
            warnings.warn(
                "jaxloss.random_loss_weighting: `init(key, task_names)` is deprecated; use "
                "`init(task_names, key=key)`, the order of every other method.",
                DeprecationWarning,
                stacklevel=2,
            )
            task_names, key = key, task_names
        tasks = _task_names(fn, "task_names", task_names)
        if not isinstance(key, jax.Array):
            raise TypeError(
                f"jaxloss.{fn}: `key` must be a PRNG key (jax.random.key(seed) or "
                f"jax.random.PRNGKey(seed)); got {type(key).__name__}."
            )
        dt = _default_float(fn, dtype)
        return RLWState(key, {t: jnp.full((), 1.0 / len(tasks), dt) for t in tasks})

    def update(
        self, task_losses: Mapping[str, ArrayLike], state: RLWState
    ) -> tuple[dict[str, jax.Array], RLWState]:
        """``(fresh weights, new state)``; ``task_losses`` only names the tasks."""
        tasks = sorted(state.weights)
        _check_same_tasks(
            "random_loss_weighting", "task_losses", task_losses, tasks, "those given to init"
        )
        dt = state.weights[tasks[0]].dtype
        key, sub = jax.random.split(state.key)
        ws = _as_dict(tasks, jax.nn.softmax(jax.random.normal(sub, (len(tasks),), dt)))
        return ws, RLWState(key, ws)


def random_loss_weighting() -> RandomLossWeighting:
    """Random loss weighting: fresh random weights on the simplex at every update.

    Math (T tasks)::

        z ~ N(0, I_T)  (a new draw each update),   w = softmax(z),   Σ_i w_i = 1

    The weights sum to 1, as in the paper (its default normal-softmax sampler), LibMTL's ``RLW``
    and TorchJD's ``Random``, so results compare with theirs. This is *not* scaled by T, unlike
    :func:`dynamic_weight_averaging`, whose weights sum to T: the expected weight is 1/T, so the
    total is on the scale of the *mean* task loss; multiply the weights by T to match an
    equal-weight sum (e.g. when switching from DWA under SGD; Adam is insensitive to the scale).

    The randomness is explicit: the state carries a PRNG key, ``update`` splits it, so the same
    key gives the same sequence of weights, eagerly or under ``jit``. Tasks are drawn for in
    sorted name order. ``task_losses`` only names the tasks (checked against ``init``); the
    weights do not depend on the loss values.

    Gradient: none through the weights (they do not depend on the losses); with
    :func:`weighted_total`, ∂total/∂L_i = w_i.

    Returns:
      :class:`RandomLossWeighting` with ``init(task_names, key, *, dtype=None) -> RLWState``
      (``key``: a ``jax.random.key`` or ``PRNGKey``; ``dtype``: of the weights, default JAX's
      default float) and ``update(task_losses, state) -> (weights, new_state)``, ``weights`` a dict
      task -> scalar. ``update`` raises ValueError naming the missing and unknown tasks when
      ``task_losses`` does not have the tasks given to ``init``.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxloss.multitask as mt
      >>> rlw = mt.random_loss_weighting()
      >>> state = rlw.init(["a", "b", "c"], key=jax.random.key(0))
      >>> w, state = rlw.update({"a": 1.0, "b": 2.0, "c": 3.0}, state)
      >>> round(float(sum(w.values())), 6), all(float(v) > 0 for v in w.values())
      (1.0, True)

    Reference:
      B. Lin, F. Ye, Y. Zhang, I. W. Tsang. "Reasonable Effectiveness of Random Weighting: A
      Litmus Test for Multi-Task Learning." TMLR 2022, arXiv:2111.10603.
    """
    return RandomLossWeighting()
