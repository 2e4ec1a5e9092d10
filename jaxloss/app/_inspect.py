"""``python -m jaxloss inspect``: what a loss estimates, how outliers pull it, whether it is proper.

Prints the table of :func:`jaxloss.diagnostics.describe` for each spec and draws a PNG: ψ against
the residual and the Bayes act as the contaminated fraction grows (regression losses), the
calibration map (binary classification losses).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

import jaxloss
import jaxloss.diagnostics

from . import _spec
from ._axes import BUILDERS
from ._extras import require

__all__ = ["add_arguments", "describe_spec", "draw", "inputs_of", "main"]

INPUT_KINDS = ("predictions", "logits", "binary_logits", "probabilities")

DESCRIPTION = """\
What a loss does, in numbers and a picture: the statistic it makes a model predict (its Bayes act
under a normal, a log-normal, a Student t(2) and a normal with 10% gross errors, next to their
mean and median), its robustness (sup|psi|, rejection point, efficiency at the normal) or, for a
classification loss, its calibration map and whether it is proper. Prints one table per loss and
writes a PNG. Needs the 'plot' extra: pip install -e '.[plot]'."""
EPILOG = """\
losses:
  NAME[:key=value,...] as for `python -m jaxloss plot` (e.g. huber_loss:delta=1.345,
  pinball_loss:tau=0.9, sigmoid_focal_loss:gamma=2), or MODULE:FUNCTION[:key=value,...] for a
  loss of your own, e.g. one built with the combinators (give --inputs for a classification loss
  of your own).

examples:
  python -m jaxloss inspect huber_loss:delta=1.345 tukey_biweight squared_error --out robust.png
  python -m jaxloss inspect sigmoid_focal_loss:gamma=2 sigmoid_binary_cross_entropy
  python -m jaxloss inspect mylosses:demand_loss
"""


def inputs_of(name: str) -> str | None:
    """How ``describe`` calls a registered loss (None: neither regression nor classification)."""
    key = jaxloss.loss_info(name).plot
    if key is not None and BUILDERS[key][0] in ("residual", "relative"):
        return "predictions"
    return {
        "binary": "binary_logits",
        "binary_both": "binary_logits",
        "softmax": "logits",
        "imbalanced": "logits",
        "probability": "probabilities",
    }.get(key or "")


def describe_spec(spec: str, *, inputs: str | None = None, num_classes: int = 2) -> Any:
    """The :class:`jaxloss.diagnostics.Description` of one command-line spec."""
    parsed = _spec.parse(spec)
    kwargs: dict[str, Any] = dict(parsed.hyperparameters)
    if parsed.registered:
        kind = inputs_of(parsed.name)
        if kind is None and inputs is None:
            raise _spec.SpecError(
                f"{spec!r}: inspect covers regression and classification losses; "
                f"{parsed.name} is neither (`python -m jaxloss plot {parsed.name}` draws it)."
            )
        kwargs = {**jaxloss.loss_info(parsed.name).plot_defaults, **kwargs}
    else:
        kind = "predictions"
    kind = inputs or kind
    assert kind is not None
    kwargs = {
        k: jnp.asarray(v) if isinstance(v, (np.ndarray, tuple)) else v for k, v in kwargs.items()
    }
    shown = ",".join(f"{k}={_spec.show(v)}" for k, v in parsed.hyperparameters.items())
    title = f"{parsed.name}({shown})" if shown else parsed.name
    try:
        return jaxloss.diagnostics.describe(
            parsed.function, inputs=kind, num_classes=num_classes, name=title, **kwargs
        )
    except (ValueError, TypeError) as err:
        raise _spec.SpecError(f"{spec!r}: {err}") from err


def draw(descriptions: Sequence[Any], out: str | Path) -> Path:
    """ψ, the Bayes act under growing contamination, and the calibration map, as panels."""
    require("matplotlib", extra="plot", purpose="jaxloss inspect")
    from matplotlib.figure import Figure

    regression = [d for d in descriptions if d.influence is not None]
    binary = [
        d for d in descriptions if d.properness is not None and d.properness.true.shape[1] == 2
    ]
    panels = (["psi", "contamination"] if regression else []) + (["calibration"] if binary else [])
    if not panels:
        panels = ["calibration"]
    fig = Figure(figsize=(5.2 * len(panels), 4.2), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    by_name = dict(zip(panels, axes, strict=True))
    if regression:
        ax = by_name["psi"]
        for i, d in enumerate(regression):
            ax.plot(d.residuals, np.asarray(d.influence.psi), color=f"C{i % 10}", label=d.name)
        ax.set_xlabel("residual r = prediction − target")
        ax.set_ylabel("ψ(r) = d loss / d prediction")
        ax.set_title("influence: how hard an error of size r pulls", fontsize=9)
        ax = by_name["contamination"]
        first = regression[0]
        ax.plot(first.fractions, first.contaminated_means, "k--", lw=1, label="mean")
        ax.plot(first.fractions, first.contaminated_medians, "k:", lw=1, label="median")
        for i, d in enumerate(regression):
            ax.plot(d.fractions, d.contaminated_acts, color=f"C{i % 10}", label=d.name)
        ax.set_xlabel("fraction ε of gross errors at +10 (N(0,1) otherwise)")
        ax.set_ylabel("Bayes act")
        ax.set_title("the statistic targeted as contamination grows", fontsize=9)
    if binary:
        ax = by_name["calibration"]
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="proper (p̂ = p)")
        offset = len(regression)
        for i, d in enumerate(binary):
            q = np.asarray(d.properness.true)[:, 1]
            p = np.asarray(d.properness.predicted)[:, 1]
            ax.plot(q, p, color=f"C{(offset + i) % 10}", label=d.name)
        ax.set_xlabel("true probability p of class 1")
        ax.set_ylabel("p̂ minimising the expected loss")
        ax.set_title("calibration map", fontsize=9)
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    path = Path(out)
    fig.savefig(path, dpi=90)
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "losses",
        nargs="*",
        metavar="LOSS",
        help="NAME[:key=value,...] or MODULE:FUNCTION[:key=value,...]",
    )
    parser.add_argument("--out", default="jaxloss_inspect.png", help="PNG to write")
    parser.add_argument(
        "--inputs",
        choices=INPUT_KINDS,
        help="how to call the loss (default: from its family; 'predictions' for MODULE:FUNCTION)",
    )
    parser.add_argument(
        "--classes", type=int, default=2, help="classes for a classification loss (default 2)"
    )


def main(args: argparse.Namespace) -> int:
    require("matplotlib", extra="plot", purpose="jaxloss inspect")
    try:
        if not args.losses:
            raise _spec.SpecError(
                "name at least one loss, e.g. `python -m jaxloss inspect huber_loss:delta=1.345`."
            )
        if args.classes < 2:
            raise _spec.SpecError(f"--classes must be >= 2; got {args.classes}")
        descriptions = []
        for spec in args.losses:
            d = describe_spec(spec, inputs=args.inputs, num_classes=args.classes)
            print(d.table(), end="\n\n")
            descriptions.append(d)
    except _spec.SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    path = draw(descriptions, args.out)
    print(f"wrote {path}")
    return 0
