"""`python -m jaxloss plot`: every registered loss plots, the curves match closed forms, and bad
names or hyperparameters are named in the error."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import jaxloss
from jaxloss import _cli, _plot

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
POINTS = 7


@pytest.fixture(scope="module")
def every_loss() -> dict[str, list[_plot.Curve]]:
    """Every registered loss evaluated in one compiled program, as the command does."""
    pending = [p for name in jaxloss.LOSSES for p in _plot._pending(name, None, POINTS)]
    by_loss: dict[str, list[_plot.Curve]] = {}
    for c in _plot._evaluate(pending):
        by_loss.setdefault(c.label.split(" [")[0], []).append(c)
    return by_loss


def test_every_registered_loss_has_finite_curves(every_loss: dict, tmp_path: Path) -> None:
    assert sorted(every_loss) == sorted(jaxloss.LOSSES)
    for name, cs in every_loss.items():
        for c in cs:
            assert c.axis in _plot.AXES
            assert c.value.shape == c.derivative.shape == (POINTS,)
            assert np.all(np.isfinite(c.value)), name
            assert np.all(np.isfinite(c.derivative)), name
            assert np.ptp(c.value) > 0, f"{name}: flat curve"
    # One row of the figure per x-axis kind (drawing is checked on a few curves: a figure of
    # all 68 is slow to lay out and adds nothing).
    few = [every_loss[n][0] for n in ("huber", "hinge", "dice_loss", "contrastive", "siglip")]
    few.append(every_loss["poisson_nll"][0])
    out = _plot.draw(few, tmp_path / "rows.png")
    assert out.read_bytes().startswith(PNG_MAGIC)
    import matplotlib.image

    assert matplotlib.image.imread(out).shape[0] > 6 * 250  # six rows


def _curve(every_loss: dict, name: str, suffix: str = "") -> _plot.Curve:
    return next(c for c in every_loss[name] if suffix in c.label)


def test_curves_match_closed_forms(every_loss: dict) -> None:
    # Residual family: target 0, x = r.
    c = _curve(every_loss, "huber")
    r = c.x
    np.testing.assert_allclose(
        c.value, np.where(np.abs(r) <= 1, 0.5 * r**2, np.abs(r) - 0.5), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(c.derivative, np.clip(r, -1, 1), rtol=1e-5, atol=1e-6)
    c = _curve(every_loss, "squared_error")
    np.testing.assert_allclose(c.value, c.x**2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c.derivative, 2 * c.x, rtol=1e-5, atol=1e-6)
    # Margin family: sigmoid BCE with label 1 at logit z: log(1 + e^-z), derivative σ(z) - 1.
    # Two-class softmax cross-entropy with margin m = z_true - z_other is the same function.
    for name in ("sigmoid_binary_cross_entropy", "softmax_cross_entropy_with_integer_labels"):
        c = _curve(every_loss, name)
        z = c.x
        np.testing.assert_allclose(c.value, np.log1p(np.exp(-z)), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(c.derivative, 1 / (1 + np.exp(-z)) - 1, rtol=1e-5, atol=1e-6)
    # hinge, y = +1: max(0, 1 - x), derivative -1 where x < 1 (grid avoids the kink).
    c = _curve(every_loss, "hinge")
    assert not np.any(c.x == 1.0)
    np.testing.assert_allclose(c.value, np.maximum(0, 1 - c.x), atol=1e-6)
    np.testing.assert_allclose(c.derivative, np.where(c.x < 1, -1.0, 0.0), atol=1e-6)
    # Distance family: contrastive, similar pair: d²/2 and d.
    c = _curve(every_loss, "contrastive", "similar pair")
    np.testing.assert_allclose(c.value, 0.5 * c.x**2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c.derivative[1:], c.x[1:], rtol=1e-5, atol=1e-6)
    # Probability family: BCE on probabilities, label 1: -log p, derivative -1/p.
    c = _curve(every_loss, "binary_cross_entropy")
    np.testing.assert_allclose(c.value, -np.log(c.x), rtol=1e-5)
    np.testing.assert_allclose(c.derivative, -1 / c.x, rtol=1e-4)


def test_hyperparameters_from_the_command_line(tmp_path: Path) -> None:
    (c,) = _plot.curves("huber:delta=0.5", np.array([-2.0, 0.25, 3.0]))
    np.testing.assert_allclose(c.value, [0.5 * (2 - 0.25), 0.5 * 0.25**2, 0.5 * (3 - 0.25)])
    np.testing.assert_allclose(c.derivative, [-0.5, 0.25, 0.5])
    assert c.label == "huber(delta=0.5)"
    name, hp = _plot.parse_spec("ldam_loss:samples_per_class=(50, 5),max_margin=0.3")
    assert name == "ldam_loss" and hp["max_margin"] == 0.3
    np.testing.assert_array_equal(hp["samples_per_class"], [50.0, 5.0])
    assert _plot.parse_spec("multiclass_hinge:kind=weston_watkins")[1] == {"kind": "weston_watkins"}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("hubr", ["unknown loss 'hubr'", "huber", "--list"]),
        ("huber:gamma=1", ["huber has no hyperparameter 'gamma'", "delta"]),
        ("huber:delta", ["key=value", "'delta'"]),
        ("huber:delta=-1", ["huber:delta=-1", "delta"]),
        ("pinball_loss:tau=2", ["pinball_loss:tau=2", "tau"]),
    ],
)
def test_bad_specs_are_named(spec: str, expected: list[str]) -> None:
    with pytest.raises(_plot.PlotError) as exc:
        _plot._pending(spec, None, 5)
    for text in expected:
        assert text in str(exc.value)


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "shapes.png"
    assert _cli.main(["plot", "huber", "wing", "--points", "5", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(PNG_MAGIC)
    assert f"wrote {out}" in capsys.readouterr().out
    assert _cli.main(["plot", "huber:nope=1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "delta" in err
    assert _cli.main(["plot", "--out", str(out)]) == 2
    assert "name at least one loss" in capsys.readouterr().err


def test_missing_matplotlib_gives_the_pip_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert _cli.main(["plot", "huber", "--out", "unused.png"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "matplotlib" in err and "pip install 'jaxloss[plot]'" in err
