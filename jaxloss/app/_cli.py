"""``python -m jaxloss {demo,plot,inspect}``: the command line (argument parsing and exit codes
only)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._extras import MissingExtraError

__all__ = ["main"]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    from . import _demo, _inspect, _plot

    parser = argparse.ArgumentParser(
        prog="python -m jaxloss",
        description="jaxloss command line: a loss-comparison demo on bundled scikit-learn data, "
        "plots of loss shapes, and the diagnostics of a loss.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{demo,plot,inspect}")
    demo = sub.add_parser(
        "demo",
        help="compare losses on five small problems (needs the 'demo' extra)",
        description="Five seeded experiments on datasets bundled with scikit-learn (no "
        "download): imbalanced classification with one expensive confusion (cross-entropy, "
        "class-weighted, focal, logit-adjusted, expected cost), regression with outliers (MSE, "
        "Huber, adaptive Barron), multi-task weighting (equal, uncertainty, UPGrad, Nash-MTL), "
        "small errors (MSE, Wing, log-cosh, log-space MSE) and asymmetric costs (MSE, pinball, "
        "asymmetric MSE). Prints one table per experiment and writes a PNG. Needs the 'demo' "
        "extra: pip install -e '.[demo]'.",
    )
    demo.add_argument(
        "--steps",
        type=_positive,
        default=_demo.DEFAULT_STEPS,
        help=f"optimiser steps per run (default {_demo.DEFAULT_STEPS})",
    )
    demo.add_argument(
        "--seeds",
        type=_positive,
        default=_demo.DEFAULT_SEEDS,
        help=f"seeds (splits, corruptions, initialisations) per method "
        f"(default {_demo.DEFAULT_SEEDS})",
    )
    demo.add_argument(
        "--out", default="jaxloss_demo.png", help="PNG to write (default jaxloss_demo.png)"
    )
    demo.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 40 steps, 1 seed, less compiler optimisation "
        "(overrides --steps and --seeds)",
    )
    _plot.add_arguments(
        sub.add_parser(
            "plot",
            help="plot losses and their derivatives (needs the 'plot' extra)",
            description=_plot.DESCRIPTION,
            epilog=_plot.EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    _inspect.add_arguments(
        sub.add_parser(
            "inspect",
            help="what a loss estimates, how outliers pull it, whether it is proper (needs the "
            "'plot' extra)",
            description=_inspect.DESCRIPTION,
            epilog=_inspect.EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``python -m jaxloss`` with the given arguments; returns the exit status.

    The commands are ``demo`` (five seeded loss comparisons on scikit-learn's bundled data),
    ``plot`` (losses and their derivatives, see :func:`plot_loss`) and ``inspect`` (the table of
    ``jaxloss.diagnostics.describe`` and its figure); ``--help`` on each says more. Errors are
    printed as one line on stderr.

    Args:
      argv: the arguments after ``python -m jaxloss``; default ``sys.argv[1:]``.

    Returns:
      0 on success; 2 for a bad loss, hyperparameter or range, or a missing extra (the message
      names the pip command). argparse exits with 2 on an unknown option.

    Examples:
      >>> import os, tempfile, jaxloss.app
      >>> out = os.path.join(tempfile.mkdtemp(), "huber.png")
      >>> jaxloss.app.main(["plot", "huber_loss:delta=0.01", "--out", out])  # doctest: +ELLIPSIS
      wrote .../huber.png
      0
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            from . import _demo

            steps, seeds = (40, 1) if args.quick else (args.steps, args.seeds)
            _demo.run(steps, seeds, out=args.out, fast_compile=args.quick)
            return 0
        if args.command == "plot":
            from . import _plot

            return _plot.main(args)
        if args.command == "inspect":
            from . import _inspect

            return _inspect.main(args)
    except MissingExtraError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    parser.print_help()
    print(
        "\nStart with:  python -m jaxloss demo      (or: python -m jaxloss plot huber wing "
        "barron_loss:alpha=0 --out shapes.png;\n             python -m jaxloss inspect "
        "huber_loss:delta=1.345 tukey_biweight)"
    )
    return 0
