"""The benchmark harness (bench/run.py) runs end to end on tiny sizes; no timings are asserted.

Checks the results schema, that every timed pair was checked for agreement (and that the check
rejects two different functions), and deterministic XLA temporaries of the sigmoid BCE forms.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import optax
import pytest

import jaxloss

_RUN = Path(__file__).resolve().parent.parent / "bench" / "run.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("jaxloss_bench_run", _RUN)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_harness_tiny_run_schema(bench, tmp_path):
    out = tmp_path / "results.json"
    names = ["squared_error", "sigmoid_binary_cross_entropy",
             "softmax_cross_entropy_with_integer_labels"]
    res = bench.main(["--tiny", "--reps", "1", "--no-torch", "--no-extras", "--no-table",
                      "--quiet", "--json", str(out), "--only", *names])
    assert json.loads(out.read_text()) == json.loads(json.dumps(res))
    meta = res["meta"]
    for key in ("jax", "optax", "cpu", "cores", "loadavg_start", "loadavg_end", "mode", "reps"):
        assert key in meta
    assert meta["jax"] == jax.__version__ and meta["optax"] == optax.__version__
    roof = res["roofline"]
    for key in ("read_bandwidth_GBps", "exp_rate_Gps", "gemm_GFLOPs"):
        assert roof[key] > 0
    rows = res["results"]
    assert sorted({r["loss"] for r in rows}) == sorted(names)
    assert {r["mode"] for r in rows} == {"fwd", "vg"}
    for r in rows:
        assert set(r["median_s"]) == {"jaxloss", "optax"}
        assert all(len(t) == 1 for t in r["times_s"].values())
        assert r["ratio"] == pytest.approx(r["median_s"]["jaxloss"] / r["median_s"]["optax"])
        assert r["floor_s"] > 0 and r["bytes"] > 0
        assert set(r["temp_bytes"]) == {"jaxloss", "optax"}
        assert set(r["efficiency"]) == {"jaxloss", "optax"}
        errs = r["agreement_max_rel_err"]
        assert "optax_value" in errs and errs["optax_value"] <= 2e-4
        if r["mode"] == "vg":
            assert errs["optax_grad"] <= 2e-3
    assert any(t["target"].startswith("sigmoid_binary_cross_entropy value_and_grad >=")
               for t in res["targets"])
    table = bench.table(res)
    assert "| `squared_error` |" in table and "Targets:" in table


def test_harness_rejects_different_functions(bench):
    spec = bench.Spec("huber_loss", "squared_error", "elementwise", bench.pair_normal(1.0),
                      lambda p, t: jaxloss.mean(jaxloss.huber_loss(p, t)),
                      lambda p, t: jnp.mean(optax.losses.squared_error(p, t)))
    bench.ROOF.update({"read_bandwidth_GBps": 1.0, "exp_rate_Gps": 1.0})
    with pytest.raises(AssertionError, match="huber_loss: values differ"):
        bench.run_case(spec, (256,), "tiny", 1, use_torch=False)


_N = 1 << 20


def _temp(f, grad=True):
    s = jax.ShapeDtypeStruct((_N,), jnp.float32)
    g = jax.value_and_grad(f) if grad else f
    return jax.jit(g).lower(s, s).compile().memory_analysis().temp_size_in_bytes


def test_sigmoid_bce_value_and_grad_has_no_temporaries():
    # Deterministic memory (no timing): jaxloss's BCE fuses; optax's logaddexp form does not.
    ours = _temp(lambda x, t: jaxloss.mean(jaxloss.sigmoid_binary_cross_entropy(x, t)))
    theirs = _temp(lambda x, t: jnp.mean(optax.losses.sigmoid_binary_cross_entropy(x, t)))
    assert ours == 0
    assert theirs >= 4 * _N  # at least one full-size float32 temporary


@pytest.mark.parametrize("name", ["squared_error", "huber_loss", "log_cosh"])
def test_regression_value_and_grad_has_no_temporaries(name):
    loss = getattr(jaxloss, name)
    assert _temp(lambda p, t: jaxloss.mean(loss(p, t))) == 0


def test_sigmoid_focal_forward_and_value_and_grad_have_no_temporaries():
    def f(x, t):
        return jaxloss.mean(jaxloss.sigmoid_focal_loss(x, t, gamma=2.0))

    assert _temp(f, grad=False) == 0
    assert _temp(f) == 0  # the value's literal 1 is not materialised full-size


def test_hinge_forward_has_no_temporary_at_large_sizes():
    # From 2^22 elements hinge's forward is select-free: no full-size temporary (the select
    # form keeps one; its allocation dominated the forward at 2^24 elements).
    s = jax.ShapeDtypeStruct((1 << 22,), jnp.float32)
    f = jax.jit(lambda x, y: jaxloss.mean(jaxloss.hinge_loss(x, y)))
    assert f.lower(s, s).compile().memory_analysis().temp_size_in_bytes == 0


def test_hinge_value_and_grad_has_no_temporary_at_large_sizes():
    # Traced targets: the gradient recomputes its step from the inputs, so neither the target
    # check nor the value is shared with it (was a 16 MiB temporary here, 64 MiB at 2^24).
    s = jax.ShapeDtypeStruct((1 << 22,), jnp.float32)
    f = jax.jit(jax.value_and_grad(lambda x, y: jaxloss.mean(jaxloss.hinge_loss(x, y))))
    assert f.lower(s, s).compile().memory_analysis().temp_size_in_bytes == 0


def test_multiclass_hinge_value_and_grad_temporaries():
    # Crammer–Singer's closed-form JVP: about one boolean [N, C] mask (a quarter of a float32
    # array); autodiff of the max through the [N, C] violations kept two float32 arrays, and a
    # tie count summed as int64 (x64, as here) or as float32 materialised one more.
    for n, c in ((1024, 4096), (4096, 8192)):
        z = jax.ShapeDtypeStruct((n, c), jnp.float32)
        y = jax.ShapeDtypeStruct((n,), jnp.int32)
        f = jax.jit(jax.value_and_grad(
            lambda z, y: jaxloss.mean(jaxloss.multiclass_hinge_loss(z, y))))
        assert f.lower(z, y).compile().memory_analysis().temp_size_in_bytes <= n * c * 4 // 2


def test_floors_harness_and_the_protections_of_jaxloss():
    # bench/floors.py on tiny inputs: every program runs, and jaxloss's keep what they claim
    # (a NaN score stays NaN, a 0 target gives NaN, an overflowing float32 sum stays finite).
    path = _RUN.parent / "floors.py"
    spec = importlib.util.spec_from_file_location("jaxloss_bench_floors", path)
    floors = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(floors)
    rows = []
    for programs, (args, probes) in (
        (floors.hinge_programs(), floors.hinge_inputs(4096)),
        (floors.squared_programs(), floors.squared_inputs(4096)),
        (floors.huber_programs(), floors.huber_inputs(4096)),
        (floors.multiclass_programs(), floors.multiclass_inputs((64, 128))),
    ):
        rows += floors.measure("tiny", programs, args, probes, reps=1)
    ours = [r for r in rows if r["program"] == "jaxloss"]
    assert len(ours) == 4
    for r in ours:
        assert r["behaviour"] and all(r["behaviour"].values()), r
    squared_optax = next(r for r in rows if r["program"] == "optax" and "mean 3.24e38 finite"
                         in r["behaviour"])
    assert squared_optax["behaviour"]["mean 3.24e38 finite"] is False  # jnp.mean's sum overflows
