"""A user's script that a type checker must accept (CI runs mypy on it from outside the tree, so
``jaxloss`` resolves through the README's editable install).

The annotations are checks too: each result is assigned to a ``jax.Array`` variable and then used
through a method only ``jax.Array`` has, so a return type that decayed to ``Any`` or to a wider
union would be caught by ``loss_result_as_str.py`` (which must fail) or here."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

import jaxloss

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
