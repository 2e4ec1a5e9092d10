"""Test-session setup: float64 on, so that references and closed-form gradients compare tightly.

Tests that check float32/bfloat16 behaviour build their arrays with explicit dtypes.
"""

import jax

jax.config.update("jax_enable_x64", True)
