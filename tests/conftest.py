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
- Each of those flags is set only if the installed XLA accepts it. XLA aborts the process on an
  unknown flag in ``XLA_FLAGS`` (newer XLA removed ``--xla_cpu_use_fusion_emitters``, which
  older XLA needs for the speed-up), and which XLA knows which flag is not something to guess
  from version numbers: a child Python process imports jax with the flags and compiles a small
  fused program; the flags it accepts are used, the others left out. The verdicts are kept in
  the environment (``_JAXLOSS_TEST_XLA_PROBE``, keyed by the jaxlib version and the
  interpreter), so pytest-xdist workers and the test processes that tests start inherit them
  instead of probing again. A probe that fails for any reason counts as "not accepted": the
  run goes on with XLA's defaults for that flag, never aborts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata

_FAST_COMPILE_FLAGS = {
    "--xla_backend_optimization_level": "0",
    "--xla_cpu_use_fusion_emitters": "false",
}
_PROBE_ENV = "_JAXLOSS_TEST_XLA_PROBE"
_PROBE_PROGRAM = (
    "import jax, jax.numpy as jnp\n"
    "x = jnp.linspace(-1.0, 1.0, 16)\n"
    "jax.jit(lambda x: jnp.sum(jnp.exp(x) * jnp.where(x > 0, x, -x)))(x).block_until_ready()\n"
)
_PROBE_TIMEOUT_S = 120


def _probe_key() -> str:
    try:
        jaxlib = metadata.version("jaxlib")
    except metadata.PackageNotFoundError:
        jaxlib = "none"
    return f"jaxlib {jaxlib} at {sys.executable}"


def _start_probe(xla_flags: str) -> subprocess.Popen[bytes] | None:
    env = {**os.environ, "XLA_FLAGS": xla_flags}
    env.pop(_PROBE_ENV, None)
    try:
        return subprocess.Popen([sys.executable, "-c", _PROBE_PROGRAM], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return None


def _accepted(procs: list[subprocess.Popen[bytes] | None]) -> list[bool]:
    verdicts = []
    for proc in procs:
        if proc is None:
            verdicts.append(False)
            continue
        try:
            verdicts.append(proc.wait(timeout=_PROBE_TIMEOUT_S) == 0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            verdicts.append(False)
    return verdicts


def accepted_flags(base: str, flags: list[str]) -> dict[str, bool]:
    """Which of ``flags`` (each ``--name=value``) the installed XLA accepts on top of ``base``.

    One probe with all of them; if that fails, one probe per flag (in parallel), and a last probe
    of the accepted ones together."""
    if not flags:
        return {}
    joined = lambda fs: " ".join([base, *fs]).strip()  # noqa: E731
    if _accepted([_start_probe(joined(flags))])[0]:
        return dict.fromkeys(flags, True)
    verdicts = dict(zip(flags, _accepted([_start_probe(joined([f])) for f in flags]), strict=True))
    ok = [f for f, v in verdicts.items() if v]
    if len(ok) > 1 and not _accepted([_start_probe(joined(ok))])[0]:
        return dict.fromkeys(flags, False)
    return verdicts


def _set_fast_compile_flags() -> tuple[list[str], list[str]]:
    """Adds the accepted fast-compile flags to XLA_FLAGS; returns (added, not accepted)."""
    base = os.environ.get("XLA_FLAGS", "")
    wanted = [f"{name}={value}" for name, value in _FAST_COMPILE_FLAGS.items()
              if name not in base]  # a flag the caller set wins
    key = _probe_key()
    try:
        cache = json.loads(os.environ.get(_PROBE_ENV, "{}"))
    except ValueError:
        cache = {}
    verdicts: dict[str, bool] = cache.get("verdicts", {}) if cache.get("key") == key else {}
    todo = [f for f in wanted if f not in verdicts]
    verdicts.update(accepted_flags(base, todo))
    os.environ[_PROBE_ENV] = json.dumps({"key": key, "verdicts": verdicts})
    added = [f for f in wanted if verdicts[f]]
    if added:
        os.environ["XLA_FLAGS"] = " ".join([base, *added]).strip()
    return added, [f for f in wanted if not verdicts[f]]


if os.environ.get("JAXLOSS_TEST_XLA_OPT") == "default":
    _ADDED: list[str] = []
    _REJECTED: list[str] = []
else:
    _ADDED, _REJECTED = _set_fast_compile_flags()

import jax  # noqa: E402  (after XLA_FLAGS: the backend reads them when it starts)

jax.config.update("jax_enable_x64", True)

# Property tests draw the same examples on every run (a failure found once is found again, and CI
# cannot fail on an example no one else drew); JAXLOSS_HYPOTHESIS=random draws fresh ones.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("derandomized", derandomize=True, database=None)
_hypothesis_settings.register_profile("random")
_hypothesis_settings.load_profile(
    "random" if os.environ.get("JAXLOSS_HYPOTHESIS") == "random" else "derandomized"
)


def pytest_report_header(config):
    if os.environ.get("JAXLOSS_TEST_XLA_OPT") == "default":
        return "XLA: defaults (JAXLOSS_TEST_XLA_OPT=default)"
    line = f"XLA test flags: {' '.join(_ADDED) or 'none added'}"
    if _REJECTED:
        line += f"; not accepted by this XLA, left out: {' '.join(_REJECTED)}"
    return [line, f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')}"]
