"""Test-session setup.

- float64 on, so that references and closed-form gradients compare tightly. Tests that check
  float32/bfloat16 behaviour build their arrays with explicit dtypes.
- XLA:CPU compiles at backend (LLVM) optimisation level 0. The suite is compile-bound (thousands
  of small jitted functions, each run a few times on tiny arrays): level 0 cuts its CPU time by
  about 40%. The level changes how LLVM optimises the generated code, not XLA's graph (fusion,
  buffer assignment, memory analysis) nor IEEE results (no fast-math at any level). Set
  ``JAXLOSS_TEST_XLA_OPT=default`` to run the suite at the default level, as users compile.
"""

import os

_OPT_FLAG = "--xla_backend_optimization_level"
if (os.environ.get("JAXLOSS_TEST_XLA_OPT") != "default"
        and _OPT_FLAG not in os.environ.get("XLA_FLAGS", "")):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_OPT_FLAG}=0".strip()

import jax  # noqa: E402  (after XLA_FLAGS: the backend reads them when it starts)

jax.config.update("jax_enable_x64", True)
