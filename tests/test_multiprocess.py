"""Two processes joined by ``jax.distributed.initialize`` (CPU collectives), 4 devices each:
vocab-parallel fused log-probabilities and entropy with a data-parallel ``mean_parts`` reduction
(tests/multiprocess_worker.py) equal the single-process computation, values and gradients.

This is JAX's multi-controller runtime, as on several hosts; docs/lm-heads.md gives the launch
recipe. The workers run in their own processes (the device count must be set before jax is
imported, and each process is one controller).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss
from jaxloss.fused import linear_log_probs
from tests.multiprocess_data import IGNORE, data

ROOT = Path(__file__).resolve().parent.parent


def _gloo_available() -> bool:
    try:
        jax.config.jax_cpu_collectives_implementation  # noqa: B018
    except AttributeError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(not _gloo_available(),
                    reason="this jax has no CPU collectives option (jax_cpu_collectives_"
                    "implementation): multi-process CPU runs are not supported by it")
def test_two_processes_equal_single_process(tmp_path):
    out = tmp_path / "result.npz"
    port = _free_port()
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT),
           "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "")
                         + " --xla_force_host_platform_device_count=4").strip()}
    procs = [subprocess.Popen([sys.executable, str(ROOT / "tests" / "multiprocess_worker.py"),
                               str(i), "2", str(port), str(out)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(2)]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=240)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, log[-4000:]
    r = np.load(out)
    assert int(r["devices"]) == 8 and int(r["processes"]) == 2

    x, w, b, y, c = data()
    kept = y != IGNORE

    def objective(x, w, b):
        lp, h = linear_log_probs(x, w, y, bias=b, temperature=1.5, ignore_index=IGNORE,
                                 block_size=4, return_entropy=True)
        nll = jaxloss.mean(-lp, weights=c, where=kept)
        ent = jaxloss.mean(h, where=kept)
        return nll + 0.1 * ent, (nll, ent, lp, h)

    (total, (nll, ent, lp, h)), g = jax.jit(jax.value_and_grad(objective, (0, 1, 2),
                                                               has_aux=True))(
        jnp.asarray(x), jnp.asarray(w), jnp.asarray(b))
    for name, want in [("total", total), ("nll", nll), ("ent", ent), ("lp", lp), ("h", h),
                       ("dx", g[0]), ("dw", g[1]), ("db", g[2])]:
        np.testing.assert_allclose(r[name], np.asarray(want), rtol=1e-12, atol=1e-13,
                                   err_msg=name)
