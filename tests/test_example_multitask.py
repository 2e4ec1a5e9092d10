"""The multi-task conflict example runs and a gradient method beats equal weighting (seeded)."""

import importlib.util
import pathlib

import jax

PATH = pathlib.Path(__file__).resolve().parents[1] / "examples" / "multitask_conflict.py"


def test_example_nash_beats_equal_on_worse_task():
    spec = importlib.util.spec_from_file_location("multitask_conflict", PATH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with jax.enable_x64(False):  # the example's own (default float32) setting
        init = mod.train("equal", 0)
        equal = mod.train("equal", 300)
        nash = mod.train("nash_mtl", 300)
    rel_eq = {t: equal[t] / init[t] for t in init}
    rel_nash = {t: nash[t] / init[t] for t in init}
    worse = max(rel_eq, key=rel_eq.get)
    assert rel_nash[worse] < 0.7 * rel_eq[worse], (rel_eq, rel_nash)
