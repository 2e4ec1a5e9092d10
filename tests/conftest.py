"""Test-session setup.

- float64 on, so that references and closed-form gradients compare tightly. Tests that check
  float32/bfloat16 behaviour build their arrays with explicit dtypes.
- XLA:CPU compiles with cheaper code generation: backend (LLVM) optimisation level 0, and the
  classic LLVM IR emitters for fusions instead of the MLIR fusion emitters. The suite is
  compile-bound (thousands of small jitted functions, each run a few times on tiny arrays):
  level 0 cut the CPU time of `tests/test_conformance.py -k "huber or barron"` from 82 s to
  50 s, and the classic emitters that of `-k "barron or focal or dice"` from 47 s to 32 s.
  They change how XLA generates machine code for the same optimised graph, not the graph
  (fusion, buffer assignment and memory analysis happen before code generation), and neither
  enables fast-math. ``JAXLOSS_TEST_XLA_OPT=default`` runs the suite with XLA's defaults.
"""

import os

_FAST_COMPILE_FLAGS = {
    "--xla_backend_optimization_level": "0",
    "--xla_cpu_use_fusion_emitters": "false",
}
if os.environ.get("JAXLOSS_TEST_XLA_OPT") != "default":
    _flags = os.environ.get("XLA_FLAGS", "")
    for _flag, _value in _FAST_COMPILE_FLAGS.items():
        if _flag not in _flags:  # a flag the caller set wins
            _flags = f"{_flags} {_flag}={_value}"
    os.environ["XLA_FLAGS"] = _flags.strip()

import jax  # noqa: E402  (after XLA_FLAGS: the backend reads them when it starts)

jax.config.update("jax_enable_x64", True)
