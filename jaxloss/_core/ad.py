"""Tangents in the closed-form JVPs (``custom_jvp`` with ``symbolic_zeros=True``).

An input that is not differentiated arrives as a ``SymbolicZero``; a JVP skips its term instead
of multiplying a zero array. These three helpers are the one spelling of that test.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

__all__ = ["all_zero", "is_zero", "materialise"]


def is_zero(tangent: Any) -> bool:
    """Whether ``tangent`` is a symbolic zero (its input is not being differentiated)."""
    return isinstance(tangent, SymbolicZero)


def all_zero(*tangents: Any) -> bool:
    """Whether every tangent is a symbolic zero."""
    return all(isinstance(t, SymbolicZero) for t in tangents)


def materialise(tangent: Any, like: jax.Array) -> jax.Array:
    """``tangent`` as an array: zeros shaped and typed like ``like`` for a symbolic zero."""
    return jnp.zeros_like(like) if isinstance(tangent, SymbolicZero) else tangent
