"""`python -m jaxloss demo`: a reduced run trains every method, the metrics are sane, the table
has its rows, the PNG is written; a missing extra gives a one-line pip hint."""

from __future__ import annotations

import ast
import contextlib
import io
import math
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import jaxloss
from jaxloss.app import _cli, _demo, _demo_digits, _demo_regression, _demo_report

STEPS = 30
SEEDS = 2
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parents[1]

EXPECTED = {
    "Imbalanced digits (long-tailed training set)": [
        "cross-entropy",
        "class-weighted CE (1/n)",
        "focal (gamma=2)",
        "logit-adjusted (tau=1)",
        "expected cost",
        "CE + expected cost",
    ],
    "Diabetes with gross errors in the training targets": [
        "MSE",
        "Huber (delta=1)",
        "adaptive Barron",
    ],
    "Wine: cultivar + proline from one shared layer": [
        "equal weights",
        "uncertainty weighting",
        "UPGrad",
        "Nash-MTL",
    ],
    "Breast-cancer cell area: small errors, relative to the size": [
        "MSE",
        "Wing (omega=0.1, epsilon=0.02)",
        "log-cosh (scale 0.05)",
        "log-space MSE",
    ],
    "Diabetes with asymmetric costs (under-prediction costs k times more)": [
        "MSE",
        "pinball (tau=0.5)",
        "pinball (tau=0.75)",
        "pinball (tau=0.9)",
        "asymmetric MSE (under x3)",
        "asymmetric MSE (under x9)",
    ],
}


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[list[_demo.ExperimentResult], str, Path]:
    out = tmp_path_factory.mktemp("demo") / "demo.png"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        results = _demo.run(STEPS, SEEDS, out=out, fast_compile=True)
    return results, buf.getvalue(), out


def test_every_method_trains_and_its_loss_falls(demo: tuple) -> None:
    results, _, _ = demo
    assert {r.title: [m.name for m in r.methods] for r in results} == EXPECTED
    for exp in results:
        for m in exp.methods:
            assert m.train_loss.shape == (SEEDS, STEPS)
            assert m.curve.shape == (SEEDS, STEPS + 1)
            assert np.all(np.isfinite(m.train_loss)), (exp.title, m.name)
            assert np.all(np.isfinite(m.curve)), (exp.title, m.name)
            # Each seed's training objective fell over the run.
            assert np.all(m.train_loss[:, -1] < m.train_loss[:, 0]), (exp.title, m.name)


def test_metrics_are_finite_in_range_and_better_than_untrained(demo: tuple) -> None:
    results, _, _ = demo
    digits, diabetes, wine, cancer, asymmetric = results
    for m in digits.methods:
        for key in ("balanced accuracy", "minority recall"):
            assert len(m.metrics[key]) == SEEDS
            assert all(0.0 <= v <= 1.0 for v in m.metrics[key])
        assert np.allclose(m.curve[:, -1], m.metrics["balanced accuracy"], atol=1e-6)
        # Every mistake costs at least 1, at most the expensive one's factor.
        cost, error = np.array(m.metrics["misclassification cost"]), 1 - m.curve[:, -1]
        assert np.all(cost >= error - 1e-6) and np.all(
            cost <= _demo_digits.COSTLY_FACTOR * error + 1e-6
        )
        if m.name == "expected cost":  # a bounded loss, slow from a random start: not asserted
            continue
        # 10 classes: chance is 0.1; the curve starts near it and ends well above it.
        assert min(m.metrics["balanced accuracy"]) > 0.5, m.name
    for m in diabetes.methods:
        mae, rmse = np.array(m.metrics["MAE"]), np.array(m.metrics["RMSE"])
        assert np.all(np.isfinite(mae)) and np.all(mae > 0)
        assert np.all(rmse >= mae)  # RMSE >= MAE for any errors
        # Predicting the training median gives an MAE near 65 on this data; training beats it,
        # and the held-out MAE fell during training.
        assert np.all(mae < 65.0), m.name
        assert np.all(m.curve[:, -1] < m.curve[:, 0])
    for m in wine.methods:
        acc = np.array(m.metrics["cultivar accuracy"])
        assert np.all((acc >= 0) & (acc <= 1)) and np.all(acc > 0.6), m.name
        assert np.all(np.array(m.metrics["proline RMSE"]) >= np.array(m.metrics["proline MAE"]))
        assert np.all(np.array(m.metrics["proline MAE"]) < 300.0)
    for m in cancer.methods:
        within = np.array(m.metrics["within ±5%"])
        assert np.all((within >= 0) & (within <= 1)), m.name
        # The training-median prediction it starts from is within 5% for a few percent of them.
        assert np.all(m.curve[:, -1] > m.curve[:, 0]), m.name
        assert np.allclose(m.curve[:, -1], within, atol=0.02)  # float32 vs float64 at the edge
        assert np.all(np.array(m.metrics["small-target MAE"]) > 0)
        assert np.all(np.array(m.metrics["RMSE"]) < 600.0), m.name  # target std is about 570
    for m in asymmetric.methods:
        c1, c3, c9 = (np.array(m.metrics[f"cost k={k}"]) for k in (1, 3, 9))
        under = np.array(m.metrics["under-predictions"])
        assert np.all((under >= 0) & (under <= 1))
        # The cost grows with k by (k - k')·mean under-prediction: c9 - c3 = 3·(c3 - c1).
        np.testing.assert_allclose(c9 - c3, 3 * (c3 - c1), rtol=1e-9)
    by_name = {m.name: m for m in asymmetric.methods}
    for name in ("MSE", "pinball (tau=0.5)"):
        # The training mean predicted for everyone has a held-out MAE (cost k=1) near 65.
        assert np.all(np.array(by_name[name].metrics["cost k=1"]) < 65.0), name
    # Each pinball level under-predicts less often than the one below it, on every seed.
    u50, u75, u90 = (
        np.array(by_name[f"pinball (tau={t})"].metrics["under-predictions"])
        for t in ("0.5", "0.75", "0.9")
    )
    assert np.all(u50 > u75) and np.all(u75 > u90)


def test_tables_printed_with_every_row(demo: tuple) -> None:
    results, text, _ = demo
    for exp in results:
        table = _demo.render_table(exp)
        assert table in text
        assert f"mean ± std over {SEEDS} seeds" in table
        for name in exp.metric_names:
            assert name in table
        regression = "Diabetes" in exp.title or "Breast" in exp.title
        assert ("statistic" in table.splitlines()[len(exp.setup) + 2]) == regression
        for m in exp.methods:
            row = next(line for line in table.splitlines() if line.strip().startswith(m.name))
            assert m.loss in row
            assert row.count("±") == len(exp.metric_names)
            assert bool(m.statistic) == regression and m.statistic in row
        for m in exp.methods[1:]:
            paired = next(
                line for line in table.splitlines() if line.startswith(f"     {m.name}: ")
            )
            for k in exp.metric_names:
                if k == "under-predictions":  # neither direction is better
                    assert k not in paired
                    continue
                diff = np.array(m.metrics[k]) - np.array(exp.methods[0].metrics[k])
                sign = -1 if "MAE" in k or "RMSE" in k or "cost" in k else 1
                b, w = int(np.sum(sign * diff > 0)), int(np.sum(sign * diff < 0))
                assert f"{k} {b}/{SEEDS - b - w}/{w}" in paired
    assert "trained in" in text  # progress lines


def test_png_written(demo: tuple) -> None:
    _, text, out = demo
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC)
    import matplotlib.image

    img = matplotlib.image.imread(out)
    assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 600
    assert img.std() > 0.05  # not blank
    assert f"wrote {out}" in text


def test_balanced_accuracy_matches_sklearn() -> None:
    from sklearn.metrics import balanced_accuracy_score, recall_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    pred = np.where(rng.uniform(size=200) < 0.6, y, rng.integers(0, 4, 200))
    recall = _demo_digits._per_class_recall(pred, y, 4)
    assert math.isclose(recall.mean(), balanced_accuracy_score(y, pred), rel_tol=1e-12)
    np.testing.assert_allclose(recall, recall_score(y, pred, average=None), rtol=1e-12)


def test_digits_split_is_long_tailed_and_disjoint() -> None:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.arange(len(d.target))[:, None].astype(np.float32)  # row ids as the "features"
    x_tr, y_tr, x_te, y_te, counts = _demo_digits._digits_split(x, d.target, seed=3)
    assert sorted(np.bincount(y_tr).tolist(), reverse=True) == [90, 62, 42, 29, 20, 14, 9, 6, 4, 3]
    np.testing.assert_array_equal(np.bincount(y_tr), counts)
    assert np.bincount(y_te).tolist() == [_demo_digits.DIGITS_TEST_PER_CLASS] * 10
    assert not set(x_tr[:, 0].tolist()) & set(x_te[:, 0].tolist())


def test_diabetes_corruption_only_touches_training_targets() -> None:
    from sklearn.datasets import load_diabetes

    d = load_diabetes()
    _, y_tr, _, y_te = _demo_regression._diabetes_split(d.data, d.target, seed=1)
    assert len(y_tr) + len(y_te) == len(d.target)
    # The targets are whole numbers; a gross error of ±U(2, 5)·std makes them fractional.
    assert np.all(y_te == np.round(y_te)) and np.isin(y_te, d.target).all()
    corrupted = y_tr != np.round(y_tr)
    assert 0.12 < corrupted.mean() < 0.28


def test_asymmetric_cost_is_the_matching_pinball_loss() -> None:
    # (k + 1)·pinball_loss(τ = k/(k + 1)) is the cost, so the pinball row of level τ minimises it.
    rng = np.random.default_rng(0)
    p, y = rng.normal(size=50), rng.normal(size=50)
    for k in _demo_regression.COST_RATIOS:
        pinball = np.asarray(jaxloss.pinball_loss(p, y, tau=_demo_regression._level(k)))
        assert math.isclose(
            _demo_regression._asymmetric_cost(p, y, k), (k + 1) * pinball.mean(), rel_tol=1e-9
        )


def test_cost_matrix_has_one_expensive_confusion() -> None:
    m = _demo_digits._cost_matrix(10)
    assert np.all(np.diag(m) == 0)
    expensive = np.argwhere(m > 1)
    assert expensive.tolist() == [[_demo_digits.COSTLY_TRUE, _demo_digits.COSTLY_PREDICTED]]
    assert np.sum(m == 1) == 10 * 9 - 1


def test_missing_extra_gives_the_pip_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn -> ImportError
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    assert _cli.main(["demo", "--quick", "--out", "unused.png"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "scikit-learn" in err and "pip install 'jaxloss[demo]'" in err
    assert "pip install -e '.[demo]'" in err


def test_no_subcommand_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli.main([]) == 0
    out = capsys.readouterr().out
    assert "{demo,plot,inspect}" in out and "python -m jaxloss demo" in out


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["demo", "--steps", "0"], ["demo", "--seeds", "x"], ["nonsense"]):
        with pytest.raises(SystemExit) as exc:
            _cli.main(argv)
        assert exc.value.code == 2
    assert "expected a positive integer; got 0" in capsys.readouterr().err


def test_python_m_jaxloss_entry_point(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # What `python -m jaxloss plot --list` runs, in this process (no second jax start-up).
    monkeypatch.setattr(sys, "argv", ["jaxloss", "plot", "--list"])
    with pytest.raises(SystemExit) as exc:
        runpy.run_module("jaxloss", run_name="__main__")
    assert exc.value.code == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == list(jaxloss.LOSSES)


def _synthetic(seeds: int) -> list[_demo.ExperimentResult]:
    """Two experiments with different numbers of metrics, as the demo reports them."""
    rng = np.random.default_rng(seeds)

    def method(name: str, metrics: list[str]) -> _demo.MethodResult:
        return _demo.MethodResult(
            name=name,
            loss=name,
            metrics={k: rng.uniform(0.1, 0.9, seeds).tolist() for k in metrics},
            train_loss=rng.uniform(size=(seeds, 5)),
            curve=rng.uniform(size=(seeds, 6)),
        )

    one, three = ["MAE"], ["balanced accuracy", "minority recall", "misclassification cost"]
    return [
        _demo.ExperimentResult("first", ["setup"], one, "held-out MAE", [method("a", one)]),
        _demo.ExperimentResult(
            "second",
            ["setup"],
            three,
            "held-out accuracy",
            [method("b", three), method("c", three)],
        ),
    ]


@pytest.mark.parametrize("seeds", [1, 3])
def test_demo_figure_counts_seeds_and_has_no_empty_panel(seeds: int) -> None:
    fig = _demo_report.figure(_synthetic(seeds))
    titles = []
    for sub, n_metrics in zip(fig.subfigs, (1, 3), strict=True):
        axes = sub.axes
        assert len(axes) == 1 + n_metrics  # the curve and one panel per metric, nothing empty
        for ax in axes:
            assert ax.lines or ax.collections, ax.get_title()
        titles += [sub._suptitle.get_text(), *(ax.get_title() for ax in axes)]
    text = "\n".join(titles)
    if seeds == 1:
        assert "seeds" not in text and "±" not in text and "band" not in text
        assert text.count("1 seed") == len(titles)  # every title says so
    else:
        assert (
            "(3 seeds)" in titles[0] and "mean ± std over 3 seeds" in text and "1 seed" not in text
        )
    assert "first (" in titles[0]


def test_one_seed_table_has_no_spread() -> None:
    table = _demo_report.render_table(_synthetic(1)[1])
    assert "held-out metrics, 1 seed:" in table and "±" not in table and "seeds" not in table
    assert "paired with" not in table  # nothing to pair with one seed


def test_importing_jaxloss_and_the_app_needs_no_extra() -> None:
    # `import jaxloss` does not load the app; the app loads its extras only to draw or train.
    code = (
        "import sys, jaxloss; assert 'jaxloss.app' not in sys.modules; "
        "import jaxloss.app, jaxloss.app._demo, jaxloss.app._inspect; "
        "print(sorted(m for m in ('matplotlib', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.strip() == "[]"


def test_the_app_uses_only_the_public_api() -> None:
    # No `jaxloss._x` import or attribute anywhere in the app.
    for path in sorted((ROOT / "jaxloss" / "app").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                parts = node.module.split(".")
                assert not (parts[0] == "jaxloss" and any(p.startswith("_") for p in parts)), (
                    path.name,
                    node.module,
                )
                if node.module == "jaxloss":
                    assert not any(a.name.startswith("_") for a in node.names), path.name
            if isinstance(node, ast.Import):
                for a in node.names:
                    parts = a.name.split(".")
                    assert not (parts[0] == "jaxloss" and any(p.startswith("_") for p in parts))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id in ("jaxloss", "mt"):
                    assert not node.attr.startswith("_"), (path.name, node.attr)
