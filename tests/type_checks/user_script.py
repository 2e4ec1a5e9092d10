"""A user's script that a type checker must accept (CI runs mypy on it from outside the tree, so
``jaxloss`` resolves through the README's editable install).

The annotations are checks too: each result is assigned to a ``jax.Array`` variable and then used
through a method only ``jax.Array`` has, so a return type that decayed to ``Any`` or to a wider
union would be caught by ``loss_result_as_str.py`` (which must fail) or here."""

import functools
from typing import assert_type

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

import jaxloss
import jaxloss.fused

predictions = jnp.zeros((4, 3))
targets = jnp.ones((4, 3))
per_element: jax.Array = jaxloss.huber_loss(predictions, targets, delta=1.0)
total: jax.Array = jaxloss.mean(per_element)
logits = jnp.zeros((4, 5))
labels = jnp.array([0, 1, 2, -100])
ce: jax.Array = jaxloss.softmax_cross_entropy_with_integer_labels(
    logits, labels, ignore_index=-100, reduction="mean"
)
tilted = jaxloss.asymmetric(functools.partial(jaxloss.huber_loss, delta=2.0), over=3.0)
grad: jax.Array = jax.grad(lambda p: jaxloss.mean(tilted(p, targets)))(predictions)

# Array-likes in: NumPy arrays and Python numbers are accepted where arrays are.
from_numpy: jax.Array = jaxloss.huber_loss(np.zeros(3), np.ones(3), delta=np.float32(0.5))
from_scalars: jax.Array = jaxloss.squared_error(1.0, 2.0)
huber_shape: tuple[int, ...] = jaxloss.huber_loss(predictions, targets).block_until_ready().shape


# A combinator takes and returns a jaxloss.Loss: losses of jaxloss, partials and your own.
def cubed_error(predictions: ArrayLike, targets: ArrayLike) -> jax.Array:
    return jnp.abs(jnp.asarray(predictions) - jnp.asarray(targets)) ** 3


def heavier_under(loss: jaxloss.Loss) -> jaxloss.Loss:
    return jaxloss.asymmetric(loss, under=2.0)


combined: jaxloss.Loss = jaxloss.sum_losses(
    heavier_under(cubed_error), jaxloss.scaled(jaxloss.absolute_error, 0.5)
)
bounded: jaxloss.Loss = jaxloss.bounded(jaxloss.weighted(jaxloss.squared_error, 2.0), 10.0)
combined_values: jax.Array = combined(predictions, targets)
bounded_values: jax.Array = bounded(predictions, targets).astype(jnp.float32)
stopped = jaxloss.stop_gradient(jaxloss.kl_divergence)
objective = jaxloss.multitask_loss({"a": jaxloss.squared_error, "b": heavier_under(cubed_error)})
task_total, task_aux = objective({"a": predictions, "b": predictions}, {"a": targets, "b": targets})
task_total_array: jax.Array = task_total.block_until_ready()
task_means: dict[str, jax.Array] = task_aux["losses"]

# A flag that switches the return type: without it the result is one jax.Array, with it the
# pair (overloads on Literal[False] / Literal[True]); a flag known only at run time: the union.
Aux = dict[str, jax.Array]
chosen, rejected = jnp.array([-10.0, -9.0]), jnp.array([-12.0, -11.0])
reference = jnp.array([-11.0, -10.0])
assert_type(jaxloss.dpo_loss(chosen, rejected, reference, reference, beta=0.1), jax.Array)
dpo_values, dpo_aux = assert_type(
    jaxloss.dpo_loss(chosen, rejected, reference, reference, return_aux=True), tuple[jax.Array, Aux]
)
dpo_margins: jax.Array = dpo_aux["margins"].block_until_ready()
logged: dict[str, float] = {name: float(value.mean()) for name, value in dpo_aux.items()}
assert_type(jaxloss.kto_loss(chosen, reference, chosen > rejected, reference_point=0.0), jax.Array)
assert_type(
    jaxloss.simpo_loss(chosen, rejected, return_aux=bool(dpo_values.size)),
    jax.Array | tuple[jax.Array, Aux],
)

token_lp = jnp.log(jnp.full((2, 3), 0.5))
token_mask = jnp.ones((2, 3), bool)
advantages = jnp.array([1.0, -1.0])
assert_type(jaxloss.policy_gradient_loss(token_lp, token_lp, advantages, token_mask), jax.Array)
pg_values, pg_stats = assert_type(
    jaxloss.policy_gradient_loss(token_lp, token_lp, advantages, token_mask, return_aux=True),
    tuple[jax.Array, Aux],
)
clip_fraction: float = float(pg_stats["clip_fraction"])

token_labels = jnp.array([0, 1, 2, 3])
assert_type(jaxloss.token_log_probs(logits, token_labels), jax.Array)
log_probs, entropy = assert_type(
    jaxloss.token_log_probs(logits, token_labels, return_entropy=True), tuple[jax.Array, jax.Array]
)

hidden, unembedding = jnp.ones((2, 3, 4)), jnp.zeros((4, 8))
sampled = jnp.zeros((2, 3), int)
assert_type(
    jaxloss.fused.linear_policy_gradient_loss(
        hidden, unembedding, sampled, token_mask, token_lp, advantages, clip_low=0.1
    ),
    jax.Array,
)
fused_values, fused_stats = assert_type(
    jaxloss.fused.linear_policy_gradient_loss(
        hidden, unembedding, sampled, token_mask, token_lp, advantages, return_aux=True
    ),
    tuple[jax.Array, Aux],
)
assert_type(jaxloss.fused.linear_log_probs(hidden, unembedding, sampled), jax.Array)
assert_type(
    jaxloss.fused.linear_log_probs(hidden, unembedding, sampled, return_entropy=True),
    tuple[jax.Array, jax.Array],
)
