"""The multi-task conflict example runs and CAGrad beats equal weighting on both tasks (seeded)."""

import importlib.util
import pathlib

import jax

PATH = pathlib.Path(__file__).resolve().parents[1] / "examples" / "multitask_conflict.py"


def test_example_cagrad_beats_equal_on_both_tasks():
    spec = importlib.util.spec_from_file_location("multitask_conflict", PATH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with jax.enable_x64(False):  # the example's own (default float32) setting
        init = mod.train("equal", 0)
        equal = mod.train("equal", 300)
        cagrad = mod.train("cagrad", 300)
    rel_eq = {t: equal[t] / init[t] for t in init}
    rel_ca = {t: cagrad[t] / init[t] for t in init}
    assert all(rel_ca[t] < 0.9 * rel_eq[t] for t in init), (rel_eq, rel_ca)
