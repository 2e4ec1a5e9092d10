"""Runs tests/test_mesh_devices.py in its own process on 8 simulated CPU devices.

``--xla_force_host_platform_device_count`` must be set before jax is first imported, which this
test session has already done with one device; so the 8-device tests run in a child pytest with
the flag in its environment, and this test asserts that they ran and passed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mesh_suite_on_8_simulated_devices():
    env = {**os.environ, "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") +
                                       " --xla_force_host_platform_device_count=8").strip(),
           "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         "tests/test_mesh_devices.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert re.search(r"\b\d+ passed\b", out), out[-3000:]
    assert "skipped" not in out, out[-3000:]
