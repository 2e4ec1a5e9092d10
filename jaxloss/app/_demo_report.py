"""The demo's output: one plain-text table per experiment and one figure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._demo_training import ExperimentResult
from ._extras import require

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["figure", "render_table", "write_figure"]


def _is_fraction(metric: str) -> bool:
    """Metrics that are fractions of examples (printed as percentages)."""
    return any(word in metric for word in ("accuracy", "recall", "within", "under-predictions"))


def _direction(metric: str) -> int:
    """+1 if higher is better, -1 if lower is better, 0 if neither (no paired count)."""
    if metric == "under-predictions":  # the right fraction depends on the cost
        return 0
    return -1 if any(word in metric for word in ("MAE", "RMSE", "cost")) else 1


def _fmt(values: Sequence[float], percent: bool) -> str:
    v = np.asarray(values, np.float64)
    scale = 100.0 if percent else 1.0
    digits = 1 if percent or np.abs(v).max() >= 10 else 3
    unit = "%" if percent else ""
    if len(v) == 1:
        return f"{scale * v[0]:.{digits}f}{unit}"
    return f"{scale * v.mean():.{digits}f} ± {scale * v.std(ddof=1):.{digits}f}{unit}"


def _spread(seeds: int) -> str:
    return f"mean ± std over {seeds} seeds" if seeds > 1 else "1 seed"


def render_table(exp: ExperimentResult) -> str:
    """The experiment as a plain-text table (metric means ± sample std over seeds); regression
    losses also name the statistic their minimiser targets."""
    seeds = exp.methods[0].train_loss.shape[0]
    stats = any(m.statistic for m in exp.methods)
    fixed = ["method", "jaxloss", *(["statistic"] if stats else [])]
    header = [*fixed, *exp.metric_names]
    rows = [
        [
            m.name,
            m.loss,
            *([m.statistic or "-"] if stats else []),
            *(_fmt(m.metrics[k], _is_fraction(k)) for k in exp.metric_names),
        ]
        for m in exp.methods
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w) if i < len(fixed) else c.rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )
    out = [f"== {exp.title} ==", *(f"   {s}" for s in exp.setup)]
    out += [f"   held-out metrics, {_spread(seeds)}:", "   " + line(header)]
    out += ["   " + "  ".join("-" * w for w in widths)]
    out += ["   " + line(r) for r in rows]
    paired = [k for k in exp.metric_names if _direction(k)]
    if seeds > 1 and paired:
        base = exp.methods[0]
        out.append(
            f"   paired with {base.name} (same split and initial weights), seeds better/tied/worse:"
        )
        for m in exp.methods[1:]:
            counts = []
            for k in paired:
                diff = np.asarray(m.metrics[k]) - np.asarray(base.metrics[k])
                sign = _direction(k)
                better, worse = int(np.sum(sign * diff > 0)), int(np.sum(sign * diff < 0))
                counts.append(f"{k} {better}/{seeds - better - worse}/{worse}")
            out.append(f"     {m.name}: {', '.join(counts)}")
    out += [f"   {m.name}: {m.note}" for m in exp.methods if m.note]
    return "\n".join(out)


def write_figure(results: Sequence[ExperimentResult], path: str | Path) -> Path:
    """Writes :func:`figure` of the results as a PNG; returns its path."""
    path = Path(path)
    figure(results).savefig(path, dpi=80)
    return path


def figure(results: Sequence[ExperimentResult]) -> Figure:
    """One row per experiment: the held-out metric during training (mean over seeds, band =
    min..max), then one panel per final metric (mean ± std over seeds; with one seed, the value,
    and titles say "1 seed")."""
    require("matplotlib", extra="demo", purpose="jaxloss demo")
    from matplotlib.figure import Figure

    cols = 1 + max(len(r.metric_names) for r in results)
    fig = Figure(figsize=(3.6 * cols, 3.5 * len(results)), layout="constrained")
    # One sub-figure per experiment, with exactly as many panels as it has: no empty panels.
    subfigs = fig.subfigures(len(results), 1, squeeze=False)[:, 0]
    colors = [f"C{i}" for i in range(10)]
    for sub, exp in zip(subfigs, results, strict=True):
        seeds = exp.methods[0].curve.shape[0]
        sub.suptitle(
            f"{exp.title} ({seeds} seed{'s' if seeds > 1 else ''})",
            fontsize=11,
            x=0.01,
            ha="left",
        )
        row = sub.subplots(1, 1 + len(exp.metric_names), squeeze=False)[0]
        ax = row[0]
        curve_scale = 100.0 if _is_fraction(exp.curve_metric) else 1.0
        for i, m in enumerate(exp.methods):
            steps = np.arange(m.curve.shape[1])
            curve = curve_scale * m.curve
            ax.plot(steps, curve.mean(0), color=colors[i], label=m.name, lw=1.5)
            if seeds > 1:
                ax.fill_between(
                    steps, curve.min(0), curve.max(0), color=colors[i], alpha=0.12, lw=0
                )
        during = "mean over seeds, band min..max" if seeds > 1 else "1 seed"
        ax.set_title(f"during training ({during})", fontsize=9)
        ax.set_xlabel("training step")
        unit = " (%)" if curve_scale == 100.0 else ""
        ax.set_ylabel(f"{exp.curve_metric}{unit}", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
        for ax, key in zip(row[1:], exp.metric_names, strict=True):
            values = [np.asarray(m.metrics[key]) for m in exp.methods]
            scale = 100.0 if _is_fraction(key) else 1.0
            # Points with error bars, not bars: the axis need not start at 0 to be read right.
            for i, v in enumerate(values):
                err = scale * v.std(ddof=1) if len(v) > 1 else 0.0
                ax.errorbar(i, scale * v.mean(), yerr=err, fmt="o", color=colors[i], capsize=4)
            ax.set_xticks(
                np.arange(len(values)),
                [m.name for m in exp.methods],
                rotation=30,
                ha="right",
                fontsize=6,
            )
            ax.set_xlim(-0.6, len(values) - 0.4)
            unit = " (%)" if scale == 100.0 else ""
            ax.set_title(f"held-out {key}{unit}, {_spread(seeds)}", fontsize=8)
            ax.grid(axis="y", alpha=0.3)
    return fig
