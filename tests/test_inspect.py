"""`python -m jaxloss inspect`: the table and the PNG, `module:function` specs (shared with
`plot`), and errors that name the problem."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from jaxloss.app import _cli, _plot, _spec

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

MODULE = """\
import jaxloss

# Under-prediction costs four times as much: the 0.8-expectile.
demand = jaxloss.asymmetric(jaxloss.squared_error, over=1.0, under=4.0)


def scaled_huber(predictions, targets, *, delta=1.0, factor=2.0):
    return factor * jaxloss.huber_loss(predictions, targets, delta=delta)
"""


@pytest.fixture
def my_losses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "my_losses_for_inspect.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_losses_for_inspect"


def test_inspect_prints_the_table_and_writes_the_png(
    my_losses: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "inspect.png"
    argv = ["inspect", f"{my_losses}:demand", "sigmoid_focal_loss:gamma=2", "--out", str(out)]
    assert _cli.main(argv) == 0
    text = capsys.readouterr().out
    demand, focal = text.split("\n\n")[:2]
    assert demand.startswith(f"{my_losses}:demand  (inputs: predictions)")
    row = next(line for line in demand.splitlines() if "normal N(0,1)" in line).split()
    # The 0.8-expectile of N(0, 1): 0.8·E(Y - e)+ = 0.2·E(e - Y)+ with E(Y - e)+ = φ(e) -
    # e(1 - Φ(e)), E(e - Y)+ = eΦ(e) + φ(e): e = 0.549156 (bisection on the closed form).
    assert float(row[2]) == pytest.approx(0.549156, abs=2e-4)
    assert "sup|psi|  inf" in demand and "rejection point                   inf" in demand
    # The gross errors at +10 pull the mean to 1 and this loss's act beyond it.
    row = next(line for line in demand.splitlines() if "10% at +10" in line).split()
    assert float(row[-2]) == pytest.approx(1.0, abs=1e-12) and float(row[-3]) > 1.0
    assert "proper: no" in focal and "0.90 -> 0.694" in focal
    assert f"wrote {out}" in text
    assert out.read_bytes().startswith(PNG_MAGIC)
    import matplotlib.image

    img = matplotlib.image.imread(out)
    assert img.shape[1] > 3 * 400 and img.std() > 0.05  # three panels, not blank


def test_rejection_point_in_the_table() -> None:
    from jaxloss.app import _inspect

    table = _inspect.describe_spec("tukey_biweight_loss:scale=3").table()
    assert "rejection point                   3\n" in table
    # Tukey ignores the gross errors at +10 entirely; the mean moves to 1.
    row = next(line for line in table.splitlines() if "10% at +10" in line).split()
    assert abs(float(row[-3])) < 1e-3 and float(row[-2]) == 1.0


def test_module_function_specs_are_shared_with_plot(my_losses: str) -> None:
    spec = _spec.parse(f"{my_losses}:scaled_huber:delta=0.5,factor=3")
    assert spec.name == f"{my_losses}:scaled_huber" and not spec.registered
    assert spec.hyperparameters == {"delta": 0.5, "factor": 3}
    # Plotted against the residual, like a regression loss.
    (c,) = _plot.curves(f"{my_losses}:demand", np.array([-1.0, 2.0]))
    np.testing.assert_allclose(c.value, [4.0, 4.0])  # 4·(-1)², 1·2²
    np.testing.assert_allclose(c.derivative, [-8.0, 4.0])
    assert c.label == f"{my_losses}:demand"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("hubr", ["unknown loss 'hubr'", "huber_loss", "MODULE:FUNCTION"]),
        ("no_such_module_xyz:f", ["cannot import module 'no_such_module_xyz'"]),
        ("jaxloss:no_such_loss", ["has no attribute 'no_such_loss'"]),
        ("jaxloss:__version__", ["not callable"]),
        ("{m}:scaled_huber:gamma=1", ["has no hyperparameter 'gamma'", "delta, factor"]),
        ("{m}:demand:tau", ["key=value"]),
    ],
)
def test_bad_specs_are_named(my_losses: str, spec: str, expected: list[str]) -> None:
    with pytest.raises(_spec.SpecError) as exc:
        _spec.parse(spec.format(m=my_losses))
    for text in expected:
        assert text in str(exc.value)


def test_command_line_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = str(tmp_path / "x.png")
    assert _cli.main(["inspect", "contrastive_loss", "--out", out]) == 2
    assert "covers regression and classification losses" in capsys.readouterr().err
    assert _cli.main(["inspect", "huber_loss:delta=-1", "--out", out]) == 2
    assert "delta" in capsys.readouterr().err
    assert _cli.main(["inspect", "--out", out]) == 2
    assert "name at least one loss" in capsys.readouterr().err
    assert not Path(out).exists()


def test_missing_matplotlib_gives_the_pip_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert _cli.main(["inspect", "huber_loss", "--out", "unused.png"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "matplotlib" in err and "pip install 'jaxloss[plot]'" in err
