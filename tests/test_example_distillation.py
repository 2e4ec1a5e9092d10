"""examples/distillation.py trains (float32, in-process) and does what its docstring says: the
fused JSD between the student's and the fixed teacher's distributions falls, and the fused value
equals the same objective on explicit logits."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import jax
import numpy as np

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "distillation.py"


def test_distillation_example_divergence_falls():
    spec = importlib.util.spec_from_file_location("jaxloss_example_distillation", EXAMPLE)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    with jax.enable_x64(False):
        out = mod.main(steps=80)
    h = np.asarray(out["history"])
    assert np.all(np.isfinite(h))
    assert h[-1] < 0.25 * h[0], (h[0], h[-1])
    np.testing.assert_allclose(out["final"], out["unfused"], rtol=1e-4)
