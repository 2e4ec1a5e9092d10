"""A user's script that a type checker must accept (CI runs mypy on it from outside the tree, so
``jaxloss`` resolves through the README's editable install)."""

import functools

import jax
import jax.numpy as jnp

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
