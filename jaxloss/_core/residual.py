"""Numerics of losses of a residual r = p - t (scaled by c): shared by the robust M-estimators
(``jaxloss/_robust.py``), Barron's loss (``jaxloss/_core/barron.py``), the asymmetric losses and
the likelihoods.

They are written in h = r/2 = p/2 - t/2, which is finite for any finite p and t (p - t itself
overflows once |p - t| exceeds the dtype's max: p = 3e38, t = -3e38 in float32). Halving is
exact, so a loss written in h gives the same numbers as in r wherever r is finite. z = r/c = 2h/c
may still overflow; :func:`log_abs_z` and :func:`log1p_z2_over` never form it where it would.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from .ad import all_zero, is_zero
from .numerics import softplus

__all__ = ["half", "log1p_z2_over", "log_abs_z", "tangent"]

_LOG2 = math.log(2.0)


def half(p: jax.Array, t: jax.Array) -> jax.Array:
    """h = (p - t)/2, finite for any finite p and t (see the module docstring)."""
    return 0.5 * p - 0.5 * t


def tangent(value: jax.Array, g_r: Any, g_c: Any, dp: Any, dt: Any, dc: Any) -> jax.Array:
    """g_r·(dp - dt) + g_c·dc, skipping symbolic zero tangents; ``g_r`` and ``g_c`` are
    callables so that a coefficient whose tangent is a symbolic zero is never computed."""
    out = jnp.zeros_like(value)
    if not all_zero(dp, dt):
        gr = g_r()
        if not is_zero(dp):
            out = out + gr * dp
        if not is_zero(dt):
            out = out - gr * dt
    if not is_zero(dc):
        out = out + g_c() * dc
    return out


def log_abs_z(h: jax.Array, c: jax.Array) -> jax.Array:
    """log|z| for z = r/c = 2h/c: finite for finite h != 0 even where z overflows."""
    return jnp.log(jnp.abs(h)) - jnp.log(c) + _LOG2


def log1p_z2_over(h: jax.Array, c: jax.Array, b: jax.Array) -> jax.Array:
    """L = log(1 + z²/b) for z = 2h/c and b > 0, for any finite h and c > 0 (z may overflow).

    |z| < √b: log1p((z/√b)²); beyond: softplus(2 log|z| - log b) with log|z| from
    :func:`log_abs_z`. Double where (each branch sees safe inputs); a NaN takes the second
    branch and gives NaN.
    """
    root = jnp.sqrt(b)
    small = jnp.abs(h) < (0.5 * c) * root
    w = 2 * jnp.where(small, h, 0) / (c * root)
    h_big = jnp.where(small, c, h)
    return jnp.where(small, jnp.log1p(w * w), softplus(2 * log_abs_z(h_big, c) - jnp.log(b)))
