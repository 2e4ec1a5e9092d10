"""A user's script with a misspelled keyword: a type checker must reject it (CI checks that mypy
reports "Unexpected keyword argument" here)."""

import jax.numpy as jnp

import jaxloss

p = jnp.zeros(3)
value = jaxloss.huber_loss(p, p, dleta=1.0)
