"""Per-task gradients in one forward pass: Jacobian pytrees, their Gramian, and weighted sums.

Multi-task gradient methods (:mod:`jaxloss.multitask` aggregators: PCGrad, MGDA, UPGrad, ...)
need each task's gradient, not only the gradient of the summed loss. Here they come from **one
forward pass** and a VJP vmapped over the task axis (the rows of the identity), exactly what
``jax.jacrev`` does, so the model runs once and only the backward pass is repeated T times
(batched, not a Python loop of T backward passes as in LibMTL)::

    losses, vjp = jax.vjp(stacked_task_losses, params)       # one forward, losses: [T]
    jacobian = jax.vmap(vjp)(jnp.eye(T))                      # each leaf [T, *leaf.shape]

A *Jacobian pytree* has the structure of the differentiated argument with a leading task axis on
every leaf; row ``i`` is ∇L_i. Tasks are identified by name and always ordered **sorted by name**
as everywhere in :mod:`jaxloss.multitask`, so row ``i`` is the i-th task name in sorted order.

- :func:`task_value_and_jacobian`: ``jax.value_and_grad`` for a dict of task losses.
- :func:`task_value_and_trunk_jacobian`: the shared-trunk-plus-heads case: the Jacobian of the
  trunk's parameters for an aggregator and the plain (summed) gradient of the heads.
- :func:`task_value_and_rep_jacobian`: the cheap "MGDA-UB" mode: the Jacobian with respect to a
  shared *representation* (T × |z| instead of T × |θ|), plus a function that backpropagates any
  task weighting ``w`` through the whole model in one more backward pass.
- :func:`gramian`: ``G = J Jᵀ`` (T × T), summed over leaves; the input of the Gramian methods.
- :func:`combine`: ``Jᵀ w`` — the update direction for task weights ``w``.

Memory: the Jacobian costs T × |θ| (T copies of the gradient). Differentiate only the shared
parameters (task heads receive only their own task's gradient, the plain sum is right for them)
or use the representation mode.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._common import PyTree, _check_mapping, _num_tasks, _scalar, _task_names

__all__ = [
    "combine",
    "gramian",
    "task_value_and_jacobian",
    "task_value_and_rep_jacobian",
    "task_value_and_trunk_jacobian",
]


def _stack_losses(fn: str, out: Any, has_aux: bool) -> tuple[jax.Array, tuple[Any, Any]]:
    """Unpacks ``losses`` or ``(losses, aux)``, checks and stacks the losses in sorted order."""
    if has_aux:
        if not (isinstance(out, Sequence) and len(out) == 2):
            raise TypeError(
                f"jaxloss.{fn}: with has_aux=True the function must return (task_losses, aux); "
                f"got {type(out).__name__}."
            )
        losses, aux = out
    else:
        losses, aux = out, None
    _check_mapping(fn, "task_losses (the function's output)", losses)
    tasks = _task_names(fn, "task_losses (the function's output)", losses)
    vals = [_scalar(fn, "task_losses", t, losses[t]) for t in tasks]
    return jnp.stack(vals), ({t: losses[t] for t in tasks}, aux)


def _check_argnums(fn: str, argnums: Any) -> int:
    if not isinstance(argnums, int) or isinstance(argnums, bool) or argnums < 0:
        raise ValueError(f"jaxloss.{fn}: `argnums` must be a non-negative int; got {argnums!r}.")
    return argnums


def task_value_and_jacobian(
    fun: Callable[..., Any], argnums: int = 0, *, has_aux: bool = False
) -> Callable[..., tuple[Any, PyTree]]:
    """``jax.value_and_grad`` for a dict of task losses: the losses and the per-task Jacobian.

    ``fun(*args)`` returns a mapping ``{task: scalar loss}`` (or ``(mapping, aux)`` with
    ``has_aux=True``). The returned function runs ``fun`` **once** (one forward pass) and the
    VJP vmapped over the T task rows (the same computation as ``jax.jacrev``)::

        J[i] = ∇_{args[argnums]} L_i,    i over the task names in sorted order.

    Args:
      fun: the function of the task losses.
      argnums: which positional argument to differentiate (an int; its pytree is the Jacobian's
        structure).
      has_aux: whether ``fun`` returns ``(task_losses, aux)``.

    Returns:
      ``f(*args) -> (task_losses, jacobian)``, or ``((task_losses, aux), jacobian)`` with
      ``has_aux``; ``task_losses`` is a dict with sorted keys, ``jacobian`` has the structure of
      ``args[argnums]`` with a leading task axis (size T) on every leaf. Feed ``jacobian`` to an
      aggregator (:func:`jaxloss.multitask.upgrad`, ...) or its optax transform.

    Raises:
      ValueError: ``argnums`` is not a non-negative int (here), or, when the returned function
        is called (at trace time under ``jit``): ``argnums`` is not below the number of
        positional arguments, ``fun`` names no task or a task twice, or a loss is not a scalar.
      TypeError: (when the returned function is called) ``fun`` does not return a mapping (with
        ``has_aux``, a pair whose first element is one), a task name is not a string, or a loss
        is not floating.

    Examples:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> def losses(w, x):
      ...     return {"b": jnp.sum(w * x) ** 2, "a": jnp.sum(w)}
      >>> vals, jac = mt.task_value_and_jacobian(losses)(jnp.array([1.0, 2.0]), jnp.ones(2))
      >>> sorted(vals), jac.tolist()        # rows: "a", then "b" (2·(w·x)·x)
      (['a', 'b'], [[1.0, 1.0], [6.0, 6.0]])
    """
    fn = "task_value_and_jacobian"
    argnums = _check_argnums(fn, argnums)

    def value_and_jacobian(*args: Any) -> tuple[Any, PyTree]:
        if argnums >= len(args):
            raise ValueError(
                f"jaxloss.{fn}: `argnums` is {argnums} but only {len(args)} positional "
                "argument(s) were given."
            )

        def stacked(p: Any) -> tuple[jax.Array, tuple[Any, Any]]:
            a = list(args)
            a[argnums] = p
            return _stack_losses(fn, fun(*a), has_aux)

        vec, vjp_fn, (losses, aux) = jax.vjp(stacked, args[argnums], has_aux=True)
        (jac,) = jax.vmap(vjp_fn)(jnp.eye(vec.shape[0], dtype=vec.dtype))
        return ((losses, aux) if has_aux else losses), jac

    return value_and_jacobian


def task_value_and_trunk_jacobian(
    fun: Callable[..., Any], *, has_aux: bool = False
) -> Callable[..., tuple[Any, PyTree, PyTree]]:
    """Per-task gradients of a shared trunk and the summed gradient of the task heads.

    For a model whose parameters split into a shared ``trunk`` and task-specific ``heads``,
    ``fun(trunk, heads, *args)`` returns the task losses ``{task: scalar}`` (or ``(mapping, aux)``
    with ``has_aux``). The returned function runs ``fun`` **once** and gives::

        trunk_jacobian[i] = ∇_trunk L_i        (i over the task names in sorted order)
        head_grads        = ∇_heads Σ_i L_i

    A head receives a gradient from its own task only, so its plain gradient (the sum over
    tasks) is the right one and needs no aggregation; the trunk's rows go to an aggregator.
    ``(agg.update(trunk_jacobian, state)[0], head_grads)`` (or ``agg(trunk_jacobian)``) then has
    the structure of ``(trunk, heads)``: one optimizer updates both, with no ``optax.partition``
    labels. The trunk rows come from the VJP vmapped over the T task rows (as
    :func:`task_value_and_jacobian`), the heads' gradient from one more VJP with cotangent 1.

    Args:
      fun: ``fun(trunk, heads, *args) -> {task: scalar loss}``; ``trunk`` and ``heads`` are any
        pytrees (e.g. the two parts of a Flax NNX ``nnx.split``).
      has_aux: whether ``fun`` returns ``(task_losses, aux)``.

    Returns:
      ``f(trunk, heads, *args) -> (value, trunk_jacobian, head_grads)``: ``value`` the dict of
      task losses (sorted keys), or ``(task_losses, aux)`` with ``has_aux``; ``trunk_jacobian``
      with the structure of ``trunk`` and a leading task axis (size T) on every leaf;
      ``head_grads`` with the structure of ``heads``.

    Raises:
      ValueError: (when the returned function is called) ``fun`` names no task or a task twice,
        or a loss is not a scalar.
      TypeError: (when called) ``fun`` does not return a mapping (with ``has_aux``, a pair whose
        first element is one), a task name is not a string, or a loss is not floating.

    Examples:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> def losses(trunk, heads, x):
      ...     z = trunk * x
      ...     return {"a": heads["a"] * z, "b": (heads["b"] * z) ** 2}
      >>> f = mt.task_value_and_trunk_jacobian(losses)
      >>> vals, jac, head_grads = f(jnp.array(2.0), {"a": 1.0, "b": 3.0}, 1.0)
      >>> jac.tolist()                     # ∂L_a/∂trunk = a·x, ∂L_b/∂trunk = 2(b·t·x)·b·x
      [1.0, 36.0]
      >>> {k: float(v) for k, v in head_grads.items()}    # a: t·x, b: 2(b·t·x)·t·x
      {'a': 2.0, 'b': 24.0}
    """
    fn = "task_value_and_trunk_jacobian"

    def value_and_trunk_jacobian(
        trunk: PyTree, heads: PyTree, *args: Any
    ) -> tuple[Any, PyTree, PyTree]:
        def stacked(tr: Any, hd: Any) -> tuple[jax.Array, tuple[Any, Any]]:
            return _stack_losses(fn, fun(tr, hd, *args), has_aux)

        vec, vjp_fn, (losses, aux) = jax.vjp(stacked, trunk, heads, has_aux=True)
        jac = jax.vmap(lambda e: vjp_fn(e)[0])(jnp.eye(vec.shape[0], dtype=vec.dtype))
        head_grads = vjp_fn(jnp.ones_like(vec))[1]
        return ((losses, aux) if has_aux else losses), jac, head_grads

    return value_and_trunk_jacobian


def task_value_and_rep_jacobian(
    encode: Callable[..., Any], heads: Callable[..., Any], *, has_aux: bool = False
) -> Callable[..., tuple[Any, jax.Array, Callable[[ArrayLike], PyTree]]]:
    """Per-task gradients with respect to a shared representation (MGDA-UB) and a weighted backward.

    The model is split as ``z = encode(params, *args)`` (the shared encoder) and
    ``task_losses = heads(params, z, *args)``. Instead of the T × |θ| Jacobian over the parameters,
    this returns the T × |z| Jacobian ``J_z[i] = ∂L_i/∂z`` (one forward pass, T backward passes
    through the heads only), whose Gramian the aggregators turn into task weights ``w`` (Sener &
    Koltun's MGDA-UB bound: ‖Σ w_i ∇_θ L_i‖ ≤ ‖∂z/∂θ‖ · ‖Σ w_i ∂L_i/∂z‖); then
    ``backward(w)`` returns ∇_params Σ_i w_i L_i with **one** backward pass through the encoder
    (the VJP with cotangent ``w``; ``w`` is a constant). Any Gramian-based aggregator works this
    way: ``w = agg.jacobian_weights(J_z)`` (or ``agg.weights(gramian(J_z))``, when the squared
    gradient norms are representable in the dtype).

    Args:
      encode: ``encode(params, *args) -> z`` (any pytree).
      heads: ``heads(params, z, *args) -> {task: scalar loss}`` (or ``(mapping, aux)`` with
        ``has_aux``). Both get the full ``params``; each uses its own part.
      has_aux: whether ``heads`` returns an aux value.

    Returns:
      ``f(params, *args) -> (value, rep_jacobian, backward)``: ``value`` as in
      :func:`task_value_and_jacobian`, ``rep_jacobian`` with z's structure and a leading task axis,
      ``backward(w) -> grads`` (``w``: [T] in sorted task order; grads with params' structure).

    Examples:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> enc = lambda p, x: p["enc"] * x
      >>> hd = lambda p, z, x: {"a": jnp.sum(z), "b": -jnp.sum(p["head"] * z)}
      >>> f = mt.task_value_and_rep_jacobian(enc, hd)
      >>> p = {"enc": jnp.array(2.0), "head": jnp.array(3.0)}
      >>> vals, jz, backward = f(p, jnp.ones(2))
      >>> jz.tolist(), {k: float(v) for k, v in backward(jnp.array([1.0, 1.0])).items()}
      ([[1.0, 1.0], [-3.0, -3.0]], {'enc': -4.0, 'head': -4.0})

    Reference:
      O. Sener, V. Koltun. "Multi-Task Learning as Multi-Objective Optimization." NeurIPS 2018,
      arXiv:1810.04650 (Section 3.3, MGDA-UB).
    """
    fn = "task_value_and_rep_jacobian"

    def value_and_rep_jacobian(
        params: PyTree, *args: Any
    ) -> tuple[Any, jax.Array, Callable[[ArrayLike], PyTree]]:
        z, enc_vjp = jax.vjp(lambda p: encode(p, *args), params)

        def stacked(p: Any, zz: Any) -> tuple[jax.Array, tuple[Any, Any]]:
            return _stack_losses(fn, heads(p, zz, *args), has_aux)

        vec, heads_vjp, (losses, aux) = jax.vjp(stacked, params, z, has_aux=True)
        t = vec.shape[0]
        jz = jax.vmap(lambda e: heads_vjp(e)[1])(jnp.eye(t, dtype=vec.dtype))

        def backward(w: ArrayLike) -> PyTree:
            w = jnp.asarray(w, vec.dtype)
            if w.shape != (t,):
                raise ValueError(
                    f"jaxloss.{fn}: `w` must have shape ({t},) (one weight per task); "
                    f"got {tuple(w.shape)}."
                )
            w = jax.lax.stop_gradient(w)
            g_heads, g_z = heads_vjp(w)
            (g_enc,) = enc_vjp(g_z)
            return jax.tree.map(jnp.add, g_heads, g_enc)

        return ((losses, aux) if has_aux else losses), jz, backward

    return value_and_rep_jacobian


def gramian(jacobian: PyTree) -> jax.Array:
    """The T × T Gramian ``G = J Jᵀ`` of a Jacobian pytree: ``G[i, j] = ⟨∇L_i, ∇L_j⟩``.

    Summed over all leaves (the inner product of the flattened per-task gradients), accumulated in
    at least float32. Its entries are squared gradient norms: in float32 they overflow beyond
    norms of about 1e19 and lose small tasks below the rounding of large ones; the aggregators
    (``agg(J)``, ``agg.jacobian_weights(J)``) therefore work from the normalised rows instead.

    Args:
      jacobian: pytree whose leaves have a common leading task axis T.

    Returns:
      [T, T] symmetric positive semi-definite array.

    Examples:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> mt.gramian({"w": jnp.array([[1.0, 0.0], [1.0, 1.0]])}).tolist()
      [[1.0, 1.0], [1.0, 2.0]]
    """
    t = _num_tasks("gramian", jacobian)
    leaves = jax.tree.leaves(jacobian)
    dt = jnp.promote_types(jnp.result_type(*leaves), jnp.float32)
    g = jnp.zeros((t, t), dt)
    for a in leaves:
        a2 = jnp.reshape(a, (t, -1)).astype(dt)
        g = g + a2 @ a2.T
    return g


def combine(jacobian: PyTree, weights: ArrayLike | Mapping[str, ArrayLike]) -> PyTree:
    """``Jᵀ w``: the weighted sum of the per-task gradients, ``Σ_i w_i ∇L_i``, leaf by leaf.

    Args:
      jacobian: pytree with a leading task axis T on every leaf.
      weights: [T] array (sorted task order), or a mapping task -> scalar weight (T tasks; the
        values are taken in sorted task order), as the weighting methods return.

    Returns:
      A pytree like ``jacobian`` without the task axis, each leaf in its own dtype.

    Examples:
      >>> import jax.numpy as jnp, jaxloss.multitask as mt
      >>> mt.combine(jnp.array([[1.0, 0.0], [0.0, 1.0]]), jnp.array([2.0, 3.0])).tolist()
      [2.0, 3.0]
      >>> mt.combine(jnp.array([[1.0, 0.0], [0.0, 1.0]]), {"b": 3.0, "a": 2.0}).tolist()
      [2.0, 3.0]
    """
    t = _num_tasks("combine", jacobian)
    if isinstance(weights, Mapping):
        tasks = _task_names("combine", "weights", weights)
        weights = jnp.stack([jnp.asarray(weights[n]) for n in tasks])
    w = jnp.asarray(weights)
    if w.shape != (t,):
        raise ValueError(
            f"jaxloss.combine: `weights` must have shape ({t},) (one per task); got {w.shape}."
        )
    return jax.tree.map(lambda a: jnp.tensordot(w.astype(a.dtype), a, axes=1), jacobian)
