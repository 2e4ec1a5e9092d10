"""The demo's tables name, for each regression loss, the statistic its minimiser targets (stated by
hand in jaxloss/app/_demo_regression.py). Each statement is checked here: the mean loss over a
sample is minimised over a constant c by a 1-D grid search (float64, refined around the best
point), and the result is compared with the named statistic of that sample, computed
independently in NumPy: the mean, median, quantile and geometric mean directly, the expectile and
the M-estimates as the root of their estimating equation (the stated ψ, written from the math,
changes sign at the minimiser)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss
from jaxloss.app import _demo_regression

LOSSES = {
    f"{group}: {loss.name}": loss
    for group, losses in (
        ("outliers", _demo_regression.OUTLIER_LOSSES),
        ("small errors", _demo_regression.SMALL_ERROR_LOSSES),
        ("asymmetric costs", _demo_regression.ASYMMETRIC_LOSSES),
    )
    for loss in losses
}

# Samples in the units the experiments train in: right-skewed (mean, median, quantiles and
# expectiles all differ), > -1 (the small-error targets are y / median - 1), an odd size with
# n·τ not an integer for τ in {0.5, 0.75, 0.9} (a unique quantile). "narrow": spread ~0.3, about
# the Wing/log-cosh scales; "wide": spread ~1.5, beyond the Huber δ.
N = 101
SAMPLES = {
    "narrow": np.expm1(np.random.default_rng(0).normal(0.0, 0.3, N)),
    "wide": np.expm1(np.random.default_rng(1).normal(0.0, 1.0, N)),
}
# (alpha, scale) at which the learned-shape Barron statement is checked: convex and not.
BARRON_SHAPES = ((1.5, 0.5), (0.5, 0.3))


def _bisect(f: Callable[[float], float], lo: float, hi: float) -> float:
    """The root of a function that is > 0 at lo and < 0 at hi (decreasing through a sign change)."""
    assert f(lo) > 0 > f(hi), (lo, f(lo), hi, f(hi))
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) > 0 else (lo, mid)
    return 0.5 * (lo + hi)


def _minimiser(loss: _demo_regression.ExperimentLoss, y: np.ndarray, params: Any) -> float:
    """argmin over c of mean_i loss(c, y_i): a 2001-point grid over [min y, max y], refined
    three times around the best point (resolution ~1e-9 of the range)."""
    targets = jnp.asarray(y)

    @jax.jit
    def mean_loss(c: jax.Array) -> jax.Array:
        p = jnp.broadcast_to(c[:, None], (c.shape[0], y.size))
        return jnp.mean(loss.fn(p, jnp.broadcast_to(targets, p.shape), params), axis=1)

    lo, hi = float(y.min()), float(y.max())
    for _ in range(4):
        grid = np.linspace(lo, hi, 2001)
        i = int(np.argmin(np.asarray(mean_loss(jnp.asarray(grid)))))
        lo, hi = grid[max(i - 2, 0)], grid[min(i + 2, grid.size - 1)]
    return float(grid[i])


def _m_estimate(psi: Callable[[np.ndarray], np.ndarray], y: np.ndarray, near: float) -> float:
    """The root of sum_i psi(y_i - c) = 0 through which the sum falls from + to - near ``near``
    (for a monotone psi, the only one)."""
    width = 1e-4 * float(np.ptp(y))
    return _bisect(lambda c: float(np.sum(psi(y - c))), near - width, near + width)


def _expectile(y: np.ndarray, tau: float) -> float:
    """The c with τ·Σ(y - c)₊ = (1 - τ)·Σ(c - y)₊."""
    gap = lambda c: tau * np.sum(np.maximum(y - c, 0)) - (1 - tau) * np.sum(np.maximum(c - y, 0))  # noqa: E731
    return _bisect(gap, float(y.min()) - 1.0, float(y.max()) + 1.0)


def _wing_psi(omega: float, epsilon: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda r: np.sign(r) * np.where(np.abs(r) < omega, omega / (epsilon + np.abs(r)), 1.0)


def _barron_psi(alpha: float, scale: float) -> Callable[[np.ndarray], np.ndarray]:
    # dρ/dr of Barron's ρ(r, α, c) = |α-2|/α·(((r/c)²/|α-2| + 1)^(α/2) - 1).
    return lambda r: r / scale**2 * ((r / scale) ** 2 / abs(alpha - 2) + 1) ** (alpha / 2 - 1)


def _expected(statistic: str, y: np.ndarray, found: float) -> float:
    """The named statistic of the sample y (``found``, the grid minimiser, only locates which root
    of an estimating equation is meant)."""
    if statistic == "mean":
        return float(np.mean(y))
    if statistic == "median":
        return float(np.median(y))
    if statistic == "geometric mean":  # of the targets y_raw = median·(1 + y)
        return float(np.expm1(np.mean(np.log1p(y))))
    if m := re.fullmatch(r"([\d.]+)-quantile", statistic):
        return float(np.quantile(y, float(m[1]), method="inverted_cdf"))
    if m := re.fullmatch(r"([\d.]+)-expectile", statistic):
        return _expectile(y, float(m[1]))
    if m := re.fullmatch(r"Huber M-estimate \(δ = ([\d.]+)\)", statistic):
        delta = float(m[1])
        return _m_estimate(lambda r: np.clip(r, -delta, delta), y, found)
    if m := re.fullmatch(r"log-cosh M-estimate \(scale ([\d.]+)\)", statistic):
        scale = float(m[1])
        return _m_estimate(lambda r: np.tanh(r / scale), y, found)
    if m := re.fullmatch(r"Wing M-estimate \(ω = ([\d.]+), ε = ([\d.]+)\)", statistic):
        return _m_estimate(_wing_psi(float(m[1]), float(m[2])), y, found)
    raise AssertionError(f"no independent check for the statistic {statistic!r}")


def _cases() -> list[Any]:
    cases = []
    for key, loss in LOSSES.items():
        for sample in SAMPLES:
            if loss.statistic.startswith("Barron"):
                for alpha, scale in BARRON_SHAPES:
                    cases.append(
                        pytest.param(
                            loss, sample, (alpha, scale), id=f"{key}-{sample}-alpha={alpha}"
                        )
                    )
            else:
                cases.append(pytest.param(loss, sample, None, id=f"{key}-{sample}"))
    return cases


@pytest.mark.parametrize(("loss", "sample", "shape"), _cases())
def test_stated_statistic_is_the_minimiser(
    loss: _demo_regression.ExperimentLoss, sample: str, shape: tuple[float, float] | None
) -> None:
    y = SAMPLES[sample]
    params: dict[str, Any] = {}
    if shape is not None:
        alpha, scale = shape
        params["robust"] = jaxloss.adaptive_robust_init(
            alpha_init=alpha, scale_init=scale, dtype=jnp.float64
        )
    found = _minimiser(loss, y, params)
    if shape is None:
        expected = _expected(loss.statistic, y, found)
    else:
        assert loss.statistic == "Barron M-estimate (α, scale learned)"
        expected = _m_estimate(_barron_psi(*shape), y, found)
    assert abs(found - expected) <= 1e-6 * np.ptp(y), (loss.statistic, found, expected)


def test_the_check_has_teeth() -> None:
    """On the wide sample every stated statistic other than the mean is far from the mean, so a
    statement of the wrong statistic would fail the check above."""
    y = SAMPLES["wide"]
    tolerance = 1e-6 * np.ptp(y)
    for loss in LOSSES.values():
        if loss.statistic == "mean":
            continue
        params = {
            "robust": jaxloss.adaptive_robust_init(
                alpha_init=1.5, scale_init=0.5, dtype=jnp.float64
            )
        }
        found = _minimiser(loss, y, params)
        assert abs(found - np.mean(y)) > 1e4 * tolerance, loss.name
    assert abs(np.median(y) - np.mean(y)) > 1e4 * tolerance


def test_every_regression_row_states_a_statistic() -> None:
    for loss in LOSSES.values():
        assert loss.statistic and "±" not in loss.statistic, loss.name
