"""`python -m jaxloss plot` and `jaxloss.app.plot_loss`: every registered loss plots, the curves
match closed forms (registered losses, partials, combinator-built and user losses), each curve's
x-range (its own, one for all, adapted to a length hyperparameter, the axis default), and bad
names, hyperparameters, kinds or ranges are named in the error."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss
import jaxloss.app
from jaxloss.app import _axes, _cli, _plot, _spec

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
POINTS = 7


# Losses declared with plot=None (several inputs, no one scalar to vary) are not drawn.
DRAWABLE = [n for n in jaxloss.LOSSES if jaxloss.loss_info(n).plot is not None]


@pytest.fixture(scope="module")
def every_loss() -> dict[str, list[_plot.Curve]]:
    """Every registered loss evaluated in one compiled program, as the command does."""
    by_loss: dict[str, list[_plot.Curve]] = {}
    for c in _plot._curves_of(DRAWABLE, None, None, POINTS):
        by_loss.setdefault(c.label.split(" [")[0], []).append(c)
    return by_loss


def test_every_registered_loss_has_finite_curves(every_loss: dict, tmp_path: Path) -> None:
    assert sorted(every_loss) == sorted(DRAWABLE)
    for name, cs in every_loss.items():
        for c in cs:
            assert c.axis in _axes.AXES
            assert c.axis == _axes.BUILDERS[jaxloss.loss_info(name).plot][0]  # declared axis
            assert c.value.shape == c.derivative.shape == (POINTS,)
            assert np.all(np.isfinite(c.value)), name
            assert np.all(np.isfinite(c.derivative)), name
            assert np.ptp(c.value) > 0, f"{name}: flat curve"
    # One row of the figure per x-axis kind (drawing is checked on a few curves: a figure of
    # all 68 is slow to lay out and adds nothing).
    names = ("huber_loss", "hinge_loss", "dice_loss", "contrastive_loss", "siglip_loss")
    few = [every_loss[n][0] for n in names]
    few.append(every_loss["poisson_nll"][0])
    fig = _plot.figure(few)
    assert len(fig.axes) == 6 * 2  # six rows: loss and derivative
    xlabels = [ax.get_xlabel() for ax in fig.axes[::2]]
    assert [x.split(" ")[2] for x in xlabels] == [
        "residual",
        "prediction",
        "margin",
        "probability",
        "distance",
        "angle",
    ]


def _curve(every_loss: dict, name: str, suffix: str = "") -> _plot.Curve:
    return next(c for c in every_loss[name] if suffix in c.label)


def test_curves_match_closed_forms(every_loss: dict) -> None:
    # Residual family: target 0, x = r.
    c = _curve(every_loss, "huber_loss")
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
    c = _curve(every_loss, "hinge_loss")
    assert not np.any(c.x == 1.0)
    np.testing.assert_allclose(c.value, np.maximum(0, 1 - c.x), atol=1e-6)
    np.testing.assert_allclose(c.derivative, np.where(c.x < 1, -1.0, 0.0), atol=1e-6)
    # Distance family: contrastive, similar pair: d²/2 and d.
    c = _curve(every_loss, "contrastive_loss", "similar pair")
    np.testing.assert_allclose(c.value, 0.5 * c.x**2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c.derivative[1:], c.x[1:], rtol=1e-5, atol=1e-6)
    # Probability family: BCE on probabilities, label 1: -log p, derivative -1/p.
    c = _curve(every_loss, "binary_cross_entropy")
    np.testing.assert_allclose(c.value, -np.log(c.x), rtol=1e-5)
    np.testing.assert_allclose(c.derivative, -1 / c.x, rtol=1e-4)


def test_hyperparameters_from_the_command_line(tmp_path: Path) -> None:
    (c,) = jaxloss.app.curves("huber_loss:delta=0.5", np.array([-2.0, 0.25, 3.0]))
    np.testing.assert_allclose(c.value, [0.5 * (2 - 0.25), 0.5 * 0.25**2, 0.5 * (3 - 0.25)])
    np.testing.assert_allclose(c.derivative, [-0.5, 0.25, 0.5])
    assert c.label == "huber_loss(delta=0.5)"
    spec = _spec.parse("ldam_loss:samples_per_class=(50, 5),max_margin=0.3")
    assert spec.name == "ldam_loss" and spec.hyperparameters["max_margin"] == 0.3
    np.testing.assert_array_equal(spec.hyperparameters["samples_per_class"], [50.0, 5.0])
    kind = _spec.parse("multiclass_hinge_loss:kind=weston_watkins").hyperparameters
    assert kind == {"kind": "weston_watkins"}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("hubr", ["unknown loss 'hubr'", "huber_loss", "--list"]),
        ("huber_loss:gamma=1", ["huber_loss has no hyperparameter 'gamma'", "delta"]),
        ("huber_loss:delta", ["key=value", "'delta'"]),
        ("huber_loss:delta=-1", ["huber_loss:delta=-1", "delta"]),
        ("pinball_loss:tau=2", ["pinball_loss:tau=2", "tau"]),
    ],
)
def test_bad_specs_are_named(spec: str, expected: list[str]) -> None:
    with pytest.raises(_plot.PlotError) as exc:
        jaxloss.app.curves(spec, points=5)
    for text in expected:
        assert text in str(exc.value)


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "shapes.png"
    assert _cli.main(["plot", "huber_loss", "wing_loss", "--points", "5", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(PNG_MAGIC)
    assert f"wrote {out}" in capsys.readouterr().out
    assert _cli.main(["plot", "huber_loss:nope=1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "delta" in err
    assert _cli.main(["plot", "--out", str(out)]) == 2
    assert "name at least one loss" in capsys.readouterr().err


def test_missing_matplotlib_gives_the_pip_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert _cli.main(["plot", "huber_loss", "--out", "unused.png"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "matplotlib" in err and "pip install 'jaxloss[plot]'" in err


# ------------------------------------------------------------------------------------------------
# Any loss callable, from Python


def _huber(r: np.ndarray, delta: float) -> np.ndarray:
    return np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))


def test_combinator_built_and_own_losses_are_drawn_against_the_residual() -> None:
    r = np.array([-3.0, -0.5, 0.25, 2.0])
    # Under-prediction (r < 0) costs 4 times as much: 4·huber_loss(r) there, huber_loss(r)
    # elsewhere.
    demand = jaxloss.asymmetric(jaxloss.huber_loss, under=4.0)
    (c,) = jaxloss.app.curves(demand, r)
    w = np.where(r < 0, 4.0, 1.0)
    np.testing.assert_allclose(c.value, w * _huber(r, 1.0), rtol=1e-6)
    np.testing.assert_allclose(c.derivative, w * np.clip(r, -1, 1), rtol=1e-6)
    assert (c.label, c.axis) == ("asymmetric(huber_loss)", "residual")

    def quartic(predictions, targets):  # a loss of one's own, not registered
        return (predictions - targets) ** 4

    (c,) = jaxloss.app.curves(quartic, r)
    np.testing.assert_allclose(c.value, r**4, rtol=1e-6)
    np.testing.assert_allclose(c.derivative, 4 * r**3, rtol=1e-6)
    assert c.label == "quartic"


def test_a_registered_loss_keeps_its_declared_axis_and_a_partial_its_hyperparameters() -> None:
    z = np.array([-2.0, 0.5, 3.0])
    # The function itself: its declared margin axis.
    (c,) = jaxloss.app.curves(jaxloss.hinge_loss, z)
    assert c.axis == "margin"
    np.testing.assert_allclose(c.value, np.maximum(0.0, 1.0 - z))
    (c,) = jaxloss.app.curves(functools.partial(jaxloss.huber_loss, delta=0.01))
    assert c.label == "huber_loss(delta=0.01)"
    assert (c.x[0], c.x[-1]) == pytest.approx((-0.05, 0.05))  # the range follows delta
    np.testing.assert_allclose(c.value, _huber(c.x, 0.01), rtol=1e-5, atol=1e-9)
    # A registered loss named as MODULE:FUNCTION is the registered loss.
    (c,) = jaxloss.app.curves("jaxloss:sigmoid_binary_cross_entropy", z)
    assert c.axis == "margin"
    np.testing.assert_allclose(c.value, np.log1p(np.exp(-z)), rtol=1e-6)


def test_kind_calls_a_loss_of_ones_own_like_another_family() -> None:
    def my_bce(logits, labels):  # binary cross-entropy written by hand
        return jnp.logaddexp(0.0, logits) - labels * logits

    z = np.array([-2.0, 0.0, 1.5])
    (c,) = jaxloss.app.curves(my_bce, z, kind="binary")  # called as my_bce(z, 1)
    assert c.axis == "margin" and c.label == "my_bce [label 1]"
    np.testing.assert_allclose(c.value, np.log1p(np.exp(-z)), rtol=1e-6)
    np.testing.assert_allclose(c.derivative, 1 / (1 + np.exp(-z)) - 1, rtol=1e-6)
    with pytest.raises(_spec.SpecError, match=r"unknown kind 'margins'.*residual, adaptive_wing"):
        jaxloss.app.curves(my_bce, z, kind="margins")


@pytest.mark.parametrize(
    ("spec", "xlim", "expected"),
    [
        ("huber_loss", None, (-5.0, 5.0)),  # the axis default
        ("huber_loss:delta=0.01", None, (-0.05, 0.05)),  # ±5 δ
        ("huber_loss:delta=100", None, (-500.0, 500.0)),
        ("wing_loss:omega=0.1,epsilon=0.02", None, (-0.5, 0.5)),  # the largest length given
        ("cauchy_loss:scale=0.2", None, (-1.0, 1.0)),
        ("pinball_loss:tau=0.9", None, (-5.0, 5.0)),  # tau is not a length
        ("barron_loss:alpha=0", None, (-5.0, 5.0)),
        ("hinge_loss", None, (-6.0, 6.0)),  # the margin axis does not adapt
        ("huber_loss:delta=0.01@-1,2", None, (-1.0, 2.0)),  # its own range
        ("huber_loss:delta=0.01", (-3.0, 3.0), (-3.0, 3.0)),  # one range for all beats the adaptive
        ("huber_loss:delta=0.01@-1,2", (-3.0, 3.0), (-1.0, 2.0)),  # its own beats one for all
    ],
)
def test_x_range_of_each_curve(spec: str, xlim, expected: tuple[float, float]) -> None:
    (c, *_) = jaxloss.app.curves(spec, xlim=xlim, points=5)
    assert (c.x[0], c.x[-1]) == pytest.approx(expected)


def test_plot_loss_returns_the_figure_one_row_per_axis_and_range(tmp_path: Path) -> None:
    demand = jaxloss.asymmetric(jaxloss.huber_loss, under=4.0)
    out = tmp_path / "huber.png"
    fig = jaxloss.app.plot_loss(
        jaxloss.huber_loss, "huber_loss:delta=0.01", demand, jaxloss.hinge_loss, points=9, out=out
    )
    assert out.read_bytes().startswith(PNG_MAGIC)
    assert len(fig.axes) == 3 * 2  # residual ±5, residual ±0.05, margin
    labels = [ax.get_legend_handles_labels()[1] for ax in fig.axes[::2]]
    assert labels == [["huber_loss", "asymmetric(huber_loss)"], ["huber_loss(delta=0.01)"],
                      ["hinge_loss [y = +1]"]]
    # The curves drawn are the curves computed (the small-δ row is visible: its own x-range).
    line = fig.axes[2].lines[0]
    np.testing.assert_allclose(line.get_xdata(), np.linspace(-0.05, 0.05, 9))
    np.testing.assert_allclose(
        line.get_ydata(), _huber(np.linspace(-0.05, 0.05, 9), 0.01), atol=1e-9
    )
    # Per-loss ranges from Python: one (LO, HI) or None per loss.
    fig = jaxloss.app.plot_loss(jaxloss.huber_loss, demand, xlim=[(-1, 1), None], points=5)
    assert [ax.lines[0].get_xdata()[0] for ax in fig.axes[::2]] == [-1.0, -5.0]


@pytest.mark.parametrize(
    ("losses", "kwargs", "expected"),
    [
        (["huber_loss@1"], {}, "SPEC@LO,HI with two numbers"),
        (["huber_loss@a,b"], {}, "SPEC@LO,HI with two numbers"),
        (["huber_loss@2,1"], {}, "finite LO < HI; got 2, 1"),
        (["huber_loss", "wing_loss"], {"xlim": [(0, 1)]},
         "one range (or None) per loss; got 1 entries"),
        (["huber_loss"], {"xlim": [(0, "x")]}, "two numbers"),
        ([3.0], {}, "a callable or a spec string; got 3.0"),
        ([], {}, "name at least one loss"),
        (["huber_loss"], {"points": 1}, "points must be >= 2"),
    ],
)
def test_bad_plot_loss_arguments_are_named(losses: list, kwargs: dict, expected: str) -> None:
    with pytest.raises(_spec.SpecError) as exc:
        jaxloss.app.plot_loss(*losses, **kwargs)
    assert expected in str(exc.value)


def test_a_loss_without_one_value_per_point_is_named() -> None:
    def per_class(logits, labels):  # returns two values per example
        return jnp.stack([logits, labels])

    with pytest.raises(_spec.SpecError, match=r"shape \(2,\), not one value per point"):
        jaxloss.app.curves(per_class, np.array([0.0, 1.0]))


def test_command_line_module_function_kind_and_ranges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "my_plot_losses.py").write_text(
        "import jax.numpy as jnp\n\n\n"
        "def my_bce(logits, labels):\n"
        "    return jnp.logaddexp(0.0, logits) - labels * logits\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "cli.png"
    argv = ["plot", "my_plot_losses:my_bce", "huber_loss:delta=0.01@-0.1,0.1", "--kind", "binary"]
    assert _cli.main([*argv, "--points", "5", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(PNG_MAGIC)
    assert f"wrote {out}" in capsys.readouterr().out
    assert _cli.main(["plot", "huber_loss@5,-5", "--out", str(out)]) == 2
    assert "LO < HI" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _cli.main(["plot", "huber_loss", "--kind", "nonsense"])
    assert "invalid choice" in capsys.readouterr().err


def test_a_loss_declared_without_an_axis_says_it_cannot_be_drawn() -> None:
    undrawable = [n for n in jaxloss.LOSSES if jaxloss.loss_info(n).plot is None]
    assert undrawable, "the post-training losses declare plot=None"
    with pytest.raises(_plot.PlotError, match="cannot be drawn against one scalar"):
        _plot._curves_of(undrawable[:1], None, None, POINTS)
