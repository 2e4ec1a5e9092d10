"""A user's script that takes a preference loss's result for the ``(values, aux)`` pair without
asking for it (no ``return_aux=True``): a type checker must reject it (CI checks that mypy reports
the "Array" assigned to the pair), which it could not if the loss returned ``Any``.

The pair is annotated because bare unpacking, ``values, aux = jaxloss.dpo_loss(...)``, is accepted
by every type checker: a ``jax.Array`` is iterable (over its first axis, its items typed ``Any``),
and with two pairs in the batch it even unpacks at run time, into two per-pair losses."""

import jax
import jax.numpy as jnp

import jaxloss

chosen, rejected = jnp.array([-10.0, -9.0]), jnp.array([-12.0, -11.0])
reference = jnp.array([-11.0, -10.0])
pair: tuple[jax.Array, dict[str, jax.Array]] = jaxloss.dpo_loss(
    chosen, rejected, reference, reference
)
values, aux = pair
