"""`python -m jaxloss`: the demo runs, its losses fall, and Huber beats MSE on the slope."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import pytest

from jaxloss import _demo

REPO = Path(__file__).resolve().parents[1]
STEPS = 50


@pytest.fixture(scope="module")
def result() -> _demo.DemoResult:
    return _demo.run(STEPS, verbose=False)


def test_losses_decrease(result: _demo.DemoResult) -> None:
    assert result.failures() == []
    for hist in (result.classification_losses, result.mse_losses, result.huber_losses):
        assert len(hist) == STEPS + 1
        assert all(math.isfinite(v) for v in hist)
        assert hist[-1] < hist[0]
    # Cross-entropy starts near log(3) and must fall well below it.
    assert result.classification_losses[-1] < 0.5 * math.log(3)
    assert result.heldout_losses[STEPS] < result.heldout_losses[0]
    assert result.heldout_accuracy > 0.8


def test_huber_recovers_the_slope_better_than_squared_error(result: _demo.DemoResult) -> None:
    assert result.huber_slope_error < result.mse_slope_error
    assert result.huber_slope_error < 0.25
    # The squared-error fit is heading to the closed-form least-squares slope, outliers and all.
    assert abs(result.mse_slope - result.least_squares_slope) < 0.1


def test_main_fails_when_a_loss_does_not_fall(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], result: _demo.DemoResult
) -> None:
    flat = [1.0] * (STEPS + 1)
    stalled = dataclasses.replace(result, huber_losses=flat)
    monkeypatch.setattr(_demo, "run", lambda steps: stalled)
    assert _demo.main(["--steps", str(STEPS)]) == 1
    assert "FAILED: line fit (huber): training loss did not decrease" in capsys.readouterr().out


def test_help_and_bad_steps(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _demo.main(["--help"])
    assert exc.value.code == 0
    assert "--steps" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        _demo.main(["--steps", "0"])
    assert exc.value.code == 2


def test_python_m_jaxloss() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "jaxloss", "--steps", str(STEPS)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK: every training loss decreased" in proc.stdout
    assert "huber recovers the true slope better" in proc.stdout
