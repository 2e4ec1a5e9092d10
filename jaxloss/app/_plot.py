"""Losses and their derivatives against one scalar: ``plot_loss`` and ``python -m jaxloss plot``.

What is drawn for each loss:

- a registered loss (``jaxloss.huber_loss``, its name ``"huber_loss"``, a spec
  ``"huber_loss:delta=0.5"``, or
  ``functools.partial(jaxloss.huber_loss, delta=0.5)``): against the axis declared with it
  (``@register(plot=KEY)``, read through ``jaxloss.loss_info``), with its ``plot_defaults`` for
  required hyperparameters; ``_axes.BUILDERS`` says how each KEY reduces the loss to one scalar;
- any other callable (a combinator-built loss such as ``jaxloss.asymmetric(jaxloss.huber_loss,
  under=4.0)``, a loss of one's own, ``MODULE:FUNCTION`` on the command line): against the
  residual, called as ``loss(r, 0)``, unless ``kind=KEY`` says to call it like another family
  (``kind="binary"``: ``loss(z, 1)`` against the logit).

The x-range of each curve, first that applies:

1. its own range: ``SPEC@LO,HI`` (``"huber_loss:delta=0.01@-0.1,0.1"``) or a per-loss entry of
   ``xlim``;
2. one range for every curve: ``xlim=(LO, HI)`` (``--xlim LO HI``);
3. on the residual axis, when the loss is given a length on the residual's scale (a
   hyperparameter named in :data:`SCALE_HYPERPARAMETERS`: ``delta``, ``scale``, ``beta``,
   ``omega``, ``epsilon``), ±5 times the largest one given, so that ``huber_loss:delta=0.01``
   shows its quadratic core (±0.05) and ``huber_loss:delta=100`` its linear arms (±500);
4. the axis's default (residual: -5..5).

Curves with different x-ranges go on different rows of the figure: one row per x-axis kind and
range, loss on the left, derivative on the right.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

import jaxloss

from . import _spec
from ._axes import AXES, BUILDERS, Scalar
from ._extras import require

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "SCALE_HYPERPARAMETERS",
    "Curve",
    "PlotError",
    "add_arguments",
    "curves",
    "figure",
    "main",
    "plot_loss",
]

#: A bad loss, hyperparameter or range (the commands share one error).
PlotError = _spec.SpecError

#: Hyperparameters that are a length on the residual's scale; giving one sets the default range
#: of the residual axis to ±``ADAPTIVE_WIDTH`` times the largest one given.
SCALE_HYPERPARAMETERS = ("delta", "scale", "beta", "omega", "epsilon")
ADAPTIVE_WIDTH = 5.0

Range = tuple[float, float]


@dataclasses.dataclass
class Curve:
    """One plotted line: a loss's ``value`` and ``derivative`` (d value / dx) on the grid ``x``.

    ``axis`` is the kind of x-axis (a key of the axes table: ``"residual"``, ``"margin"``, ...).
    """

    label: str
    axis: str
    x: np.ndarray
    value: np.ndarray
    derivative: np.ndarray


@dataclasses.dataclass(frozen=True)
class _Target:
    """A loss resolved for drawing: how to call it and how to name it."""

    name: str
    function: Callable[..., Any]
    key: str  # a key of BUILDERS
    given: dict[str, Any]  # the hyperparameters given (shown in the label; they set the range)
    defaults: Mapping[str, Any]
    xlim: Range | None
    source: str  # what the user wrote, for error messages


def _check_range(lo: Any, hi: Any, source: str) -> Range:
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        raise PlotError(
            f"{source}: an x-range is two numbers LO, HI; got {lo!r}, {hi!r}."
        ) from None
    return _finite_range(lo, hi, source)


def _as_range(value: Any, source: str) -> Range:
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise PlotError(f"{source}: an x-range is a pair (LO, HI); got {value!r}.") from None
    return _check_range(lo, hi, source)


def _finite_range(lo: float, hi: float, source: str) -> Range:
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise PlotError(f"{source}: an x-range needs finite LO < HI; got {lo:g}, {hi:g}.")
    return lo, hi


def _key_for(function: Callable[..., Any], kind: str | None, source: str) -> tuple[str, Any]:
    """The BUILDERS key and plot defaults of a function: declared if it is a registered loss,
    else ``kind`` (default ``"residual"``)."""
    try:
        info = jaxloss.loss_info(function)
    except KeyError:
        info = None
    if info is not None:
        if info.plot is None:
            raise PlotError(f"{source}: {info.name} cannot be drawn against one scalar.")
        return info.plot, info.plot_defaults
    key = kind or "residual"
    if key not in BUILDERS:
        raise PlotError(
            f"{source}: unknown kind {key!r}; a kind is one of {', '.join(BUILDERS)} (how a "
            "registered loss of that family is called: `python -m jaxloss plot --list`)."
        )
    return key, {}


def _name_of(function: Callable[..., Any]) -> str:
    return getattr(function, "__name__", None) or type(function).__name__


def _from_callable(fn: Callable[..., Any], kind: str | None, xlim: Range | None) -> _Target:
    if not callable(fn):
        raise PlotError(f"plot_loss: a loss is a callable or a spec string; got {fn!r}.")
    # functools.partial(jaxloss.huber_loss, delta=0.5) is huber with delta=0.5 (keywords only).
    function: Callable[..., Any] = fn
    given: dict[str, Any] = {}
    while isinstance(function, functools.partial) and not function.args:
        given = {**function.keywords, **given}
        function = function.func
    if isinstance(function, functools.partial):
        function, given = fn, {}
    source = f"plot_loss({_name_of(function)})"
    key, defaults = _key_for(function, kind, source)
    return _Target(_name_of(function), function, key, given, defaults, xlim, source)


def _from_spec(spec: str, kind: str | None, xlim: Range | None) -> _Target:
    text, at, after = spec.partition("@")
    if at:
        try:
            lo, hi = (float(v) for v in after.split(","))
        except ValueError:
            raise PlotError(
                f"{spec!r}: a range is written SPEC@LO,HI with two numbers (e.g. huber_loss@-2,2)."
            ) from None
        xlim = _check_range(lo, hi, repr(spec))
    parsed = _spec.parse(text)
    key, defaults = _key_for(parsed.function, kind, repr(spec))
    return _Target(
        parsed.name, parsed.function, key, parsed.hyperparameters, defaults, xlim, repr(spec)
    )


def _targets(
    losses: Sequence[Callable[..., Any] | str], kind: str | None, xlim: Any
) -> tuple[list[_Target], Range | None]:
    """Resolves every loss; returns them and the range for every curve (if one was given)."""
    if not losses:
        raise PlotError("name at least one loss, e.g. `python -m jaxloss plot huber wing`.")
    every: Range | None = None
    each: list[Range | None] = [None] * len(losses)
    if xlim is not None:
        items = list(xlim)
        if len(items) == 2 and all(isinstance(v, (int, float, np.number)) for v in items):
            every = _check_range(items[0], items[1], "xlim")
        elif len(items) == len(losses):
            each = [None if r is None else _as_range(r, "xlim") for r in items]
        else:
            raise PlotError(
                "xlim: give one range (LO, HI) for every curve, or one range (or None) per loss; "
                f"got {len(items)} entries for {len(losses)} losses."
            )
    out = [
        _from_spec(loss, kind, r) if isinstance(loss, str) else _from_callable(loss, kind, r)
        for loss, r in zip(losses, each, strict=True)
    ]
    return out, every


def _range(target: _Target, axis: str, every: Range | None) -> Range:
    if target.xlim is not None:
        return target.xlim
    if every is not None:
        return every
    if axis == "residual":
        scales = []
        for k, v in target.given.items():
            if k in SCALE_HYPERPARAMETERS and np.ndim(v) == 0 and not isinstance(v, (bool, str)):
                if math.isfinite(float(v)) and float(v) > 0:
                    scales.append(float(v))
        if scales:
            return -ADAPTIVE_WIDTH * max(scales), ADAPTIVE_WIDTH * max(scales)
    return AXES[axis].lo, AXES[axis].hi


Pending = tuple[str, str, np.ndarray, Scalar]


def _pending(
    target: _Target, grid: np.ndarray | None, points: int, every: Range | None
) -> list[Pending]:
    """(label, axis kind, grid, scalar function) of each curve of a loss, validated by tracing."""
    axis, build = BUILDERS[target.key]
    kwargs = {**target.defaults, **target.given}
    kwargs = {
        k: jnp.asarray(v) if isinstance(v, (np.ndarray, tuple)) else v for k, v in kwargs.items()
    }
    if grid is None:
        lo, hi = _range(target, axis, every)
        x = np.linspace(lo, hi, points)
    else:
        x = np.asarray(grid, np.float64)
    shown = ",".join(f"{k}={_spec.show(v)}" for k, v in target.given.items())
    base = f"{target.name}({shown})" if shown else target.name
    out = []
    for suffix, f in build(target.function, kwargs):
        try:
            # Run the loss's checks: some hyperparameters are checked only when concrete (eagerly),
            # so a loss given hyperparameters is probed eagerly, one point; otherwise traced.
            mid = jnp.asarray(x[len(x) // 2], jnp.float32)
            probe = f(mid) if target.given else jax.eval_shape(f, mid)
        except (ValueError, TypeError) as err:
            raise PlotError(f"{target.source}: {err}") from err
        if probe.shape != ():
            raise PlotError(
                f"{target.source}: the loss gives shape {probe.shape}, not one value per point"
            )
        out.append((f"{base} [{suffix}]" if suffix else base, axis, x, f))
    return out


# The grids are tiny: compile time is the cost, so compile lightly, all curves in one program.
_FAST_COMPILE: dict[str, Any] = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
}


def _evaluate(pending: Sequence[Pending]) -> list[Curve]:
    fns = [f for *_, f in pending]
    grids = [jnp.asarray(x, jnp.float32) for _, _, x, _ in pending]

    def all_curves(grids: list[jax.Array]) -> list[tuple[jax.Array, jax.Array]]:
        return [jax.vmap(jax.value_and_grad(f))(x) for f, x in zip(fns, grids, strict=True)]

    compiled = jax.jit(all_curves).lower(grids).compile(_FAST_COMPILE)
    results = jax.device_get(compiled(grids))
    return [
        Curve(label, axis, x, np.asarray(value), np.asarray(deriv))
        for (label, axis, x, _), (value, deriv) in zip(pending, results, strict=True)
    ]


def curves(
    loss: Callable[..., Any] | str,
    x: ArrayLike | None = None,
    *,
    kind: str | None = None,
    xlim: Sequence[float] | None = None,
    points: int = 401,
) -> list[Curve]:
    """The value and derivative of one loss against one scalar, as numbers.

    What :func:`plot_loss` draws for ``loss`` (see there for what is drawn against what), without
    matplotlib. A loss with several curves (class-count losses: the true class frequent and rare;
    contrastive_loss: similar and dissimilar pairs) gives one :class:`Curve` each.

    Args:
      loss: a loss function (registered, a ``functools.partial`` of one, combinator-built or your
        own) or a command-line spec (``"huber_loss:delta=0.5"``, ``"MODULE:FUNCTION"``, with an
        optional ``@LO,HI`` range).
      x: the grid to evaluate on; default ``points`` points over the loss's x-range.
      kind: how to call a loss that is not registered, as a registered loss of that plot key is
        called (``"residual"``: ``loss(r, 0)``, the default; ``"binary"``: ``loss(z, 1)``, ...);
        registered losses are called as declared with them.
      xlim: the x-range (LO, HI) when ``x`` is not given; default as :func:`plot_loss` says.
      points: grid points when ``x`` is not given.

    Returns:
      A list of :class:`Curve`: label, x-axis kind, grid, value and ``jax.grad`` of the value.

    Examples:
      >>> import functools, numpy as np, jaxloss, jaxloss.app
      >>> loss = functools.partial(jaxloss.huber_loss, delta=0.5)
      >>> (c,) = jaxloss.app.curves(loss, np.array([0.2, 2.0]))
      >>> c.label, c.axis
      ('huber_loss(delta=0.5)', 'residual')
      >>> [round(float(v), 6) for v in c.value], [round(float(d), 6) for d in c.derivative]
      ([0.02, 0.875], [0.2, 0.5])
    """
    if points < 2:
        raise PlotError(f"points must be >= 2; got {points}")
    (target,), every = _targets([loss], kind, None if xlim is None else [tuple(xlim)])
    grid = None if x is None else np.atleast_1d(np.asarray(x, np.float64))
    return _evaluate(_pending(target, grid, points, every))


def _curves_of(
    losses: Sequence[Callable[..., Any] | str], kind: str | None, xlim: Any, points: int
) -> list[Curve]:
    if points < 2:
        raise PlotError(f"points must be >= 2; got {points}")
    targets, every = _targets(losses, kind, xlim)
    return _evaluate([p for t in targets for p in _pending(t, None, points, every)])


def plot_loss(
    *losses: Callable[..., Any] | str,
    kind: str | None = None,
    xlim: Any = None,
    points: int = 401,
    out: str | Path | None = None,
) -> Figure:
    """Draws losses and their derivatives against one scalar each; returns the matplotlib figure.

    A registered loss (``jaxloss.huber_loss``, ``"huber_loss:delta=0.5"``,
    ``functools.partial(jaxloss.huber_loss, delta=0.5)``) is drawn against the axis declared with it
    (residual, margin, probability, distance, angle; ``python -m jaxloss plot --list``). Any other
    callable (a combinator-built loss, your own function) is drawn against the residual, called
    as ``loss(r, 0)``, unless ``kind`` names another family's call. The derivative is
    ``jax.grad`` of the drawn value, so kinks show the library's convention.

    x-range of each curve, first that applies: its own (``"SPEC@LO,HI"`` or its entry in
    ``xlim``); one ``xlim=(LO, HI)`` for all; on the residual axis, ±5 times the largest length
    hyperparameter given (``delta``, ``scale``, ``beta``, ``omega``, ``epsilon``:
    ``huber_loss`` with ``delta=0.01`` is drawn on ±0.05); the axis's default (residual ±5). One row
    per x-axis kind and range.

    Args:
      *losses: loss functions or command-line specs (``"NAME[:key=value,...][@LO,HI]"``,
        ``"MODULE:FUNCTION[:key=value,...]"``).
      kind: how to call a loss that is not registered: a plot key (``"residual"``, the default;
        ``"binary"``: ``loss(z, 1)`` against the logit; ``"softmax"``, ``"probability"``, ...,
        as a registered loss of that key is called).
      xlim: ``(LO, HI)`` for every curve, or a sequence with one ``(LO, HI)`` or ``None`` per loss.
      points: grid points per curve.
      out: if given, the PNG file to write the figure to.

    Returns:
      The ``matplotlib.figure.Figure`` (not attached to pyplot; ``fig.savefig(...)`` writes it).

    Raises:
      SpecError: a loss, hyperparameter, kind or range that cannot be drawn, named in the message.

    Examples:
      >>> import jaxloss, jaxloss.app
      >>> demand = jaxloss.asymmetric(jaxloss.huber_loss, under=4.0)
      >>> spec = "huber_loss:delta=0.01"
      >>> fig = jaxloss.app.plot_loss(jaxloss.huber_loss, demand, spec, points=41)
      >>> [ax.get_xlim() == (-5.5, 5.5) for ax in fig.axes]  # two rows: ±5 and ±0.05
      [True, True, False, False]
      >>> fig.axes[0].get_legend_handles_labels()[1]
      ['huber_loss', 'asymmetric(huber_loss)']
    """
    require("matplotlib", extra="plot", purpose="jaxloss plot")
    fig = figure(_curves_of(losses, kind, xlim, points))
    if out is not None:
        fig.savefig(Path(out), dpi=90)
    return fig


def figure(evaluated: Sequence[Curve]) -> Figure:
    """The figure of evaluated curves: one row per x-axis kind and range, loss and derivative."""
    require("matplotlib", extra="plot", purpose="jaxloss plot")
    from matplotlib.figure import Figure

    rows: dict[tuple[str, float, float], list[Curve]] = {}
    for c in evaluated:
        rows.setdefault((c.axis, float(c.x[0]), float(c.x[-1])), []).append(c)
    order = list(AXES)
    keys = sorted(rows, key=lambda k: order.index(k[0]))  # stable: ranges in order of appearance
    tallest = max(len(v) for v in rows.values())
    fig = Figure(figsize=(13, max(3.6, 0.16 * tallest) * len(keys)), layout="constrained")
    axes = fig.subplots(len(keys), 2, squeeze=False)
    for (ax_v, ax_d), key in zip(axes, keys, strict=True):
        kind = key[0]
        for i, c in enumerate(rows[key]):
            style = {"color": f"C{i % 10}", "ls": ["-", "--", ":", "-."][(i // 10) % 4], "lw": 1.6}
            ax_v.plot(c.x, c.value, label=c.label, **style)
            ax_d.plot(c.x, c.derivative, **style)
        for ax, what in ((ax_v, "loss"), (ax_d, "derivative d loss / dx")):
            ax.set_xlabel(f"x = {AXES[kind].label}", fontsize=8)
            ax.set_ylabel(what)
            ax.axhline(0, color="k", lw=0.5)
            ax.grid(alpha=0.3)
        ax_d.legend(
            *ax_v.get_legend_handles_labels(),
            fontsize=7,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            borderaxespad=0.0,
        )
    return fig


# ------------------------------------------------------------------------------------------------
# Command line


DESCRIPTION = """\
Plot losses and their derivatives against one scalar each (residual, margin, probability,
distance or angle, chosen per loss family and written on the axes), one row per kind of x-axis
and range. Needs the 'plot' extra: pip install -e '.[plot]'. From Python:
jaxloss.app.plot_loss(loss, ...) draws any loss callable (combinator-built ones too)."""
EPILOG = """\
losses:
  NAME or NAME:key=value,key=value with any hyperparameter of the loss, e.g.
    huber_loss:delta=0.5   barron_loss:alpha=0   pinball_loss:tau=0.9
    multiclass_hinge_loss:kind=weston_watkins   ldam_loss:samples_per_class=(50,5)
  Values are Python literals (numbers, tuples, True/False) or bare words. Name a loss several
  times to compare settings. Required hyperparameters have plot defaults: barron/barron_nll
  alpha=1, gaussian_nll variance=1, gaussian_nll_with_log_variance log_variance=0, expected_cost
  cost_matrix=((0,1),(1,0)), class-count losses (100,10) with one curve for the true class
  frequent and one for it rare. --list shows every loss and its x-axis.
  MODULE:FUNCTION[:key=value,...] draws a loss of your own (e.g. one built with the combinators)
  against the residual, or as --kind says.

x-range of each curve (first that applies):
  SPEC@LO,HI            its own range, e.g. huber_loss:delta=0.01@-0.2,0.2
  --xlim LO HI          one range for every curve
  a length given        on the residual axis, ±5 x the largest of delta, scale, beta, omega,
                        epsilon given (huber_loss:delta=0.01 is drawn on ±0.05)
  the axis's default    e.g. residual -5..5
  Curves with different ranges go on different rows.

examples:
  python -m jaxloss plot huber wing barron_loss:alpha=0 barron_loss:alpha=2 --out shapes.png
  python -m jaxloss plot huber huber_loss:delta=0.01 mylosses:demand_loss --out huber.png
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``plot`` command's arguments."""
    parser.add_argument(
        "losses",
        nargs="*",
        metavar="LOSS",
        help="NAME[:key=value,...][@LO,HI] or MODULE:FUNCTION[:key=value,...][@LO,HI]",
    )
    parser.add_argument("--out", default="loss_shapes.png", help="PNG to write")
    parser.add_argument("--points", type=int, default=401, help="grid points (default 401)")
    parser.add_argument(
        "--xlim",
        nargs=2,
        type=float,
        metavar=("LO", "HI"),
        help="x range for every curve without its own @LO,HI (default: per kind and scale)",
    )
    parser.add_argument(
        "--kind",
        choices=list(BUILDERS),
        metavar="KIND",
        help="how to call a MODULE:FUNCTION loss (default residual: loss(r, 0)); one of the "
        "x-axis keys --list shows",
    )
    parser.add_argument(
        "--list", action="store_true", help="list every registered loss and its x-axis"
    )


def _hyperparameters(name: str) -> list[str]:
    return _spec.hyperparameter_names(getattr(jaxloss, name)) or []


def main(args: argparse.Namespace) -> int:
    """Runs the ``plot`` command; returns the exit status."""
    if args.list:
        for name in jaxloss.LOSSES:
            key = jaxloss.loss_info(name).plot
            axis = "-" if key is None else BUILDERS[key][0]
            hp = ", ".join(_hyperparameters(name)) or "-"
            print(f"{name:<42} x = {axis:<12} key = {key or '-':<15} hyperparameters: {hp}")
        return 0
    try:
        plot_loss(*args.losses, kind=args.kind, xlim=args.xlim, points=args.points, out=args.out)
    except PlotError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0
