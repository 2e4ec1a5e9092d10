"""A user's script that treats a loss's result as a string: a type checker must reject it (CI
checks that mypy reports an incompatible assignment of "Array" here), which it could not if a
loss or a combinator's loss returned ``Any``."""

import functools

import jax.numpy as jnp

import jaxloss

p = jnp.zeros(3)
value: str = jaxloss.huber_loss(p, p)
tilted = jaxloss.asymmetric(functools.partial(jaxloss.huber_loss, delta=2.0), over=3.0)
tilted_value: str = tilted(p, p)
