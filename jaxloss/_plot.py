"""``python -m jaxloss plot``: each loss and its derivative against one scalar (residual, ...).

A loss's shape says how it weighs small against large errors; its derivative is the force that
an error of each size exerts on the model. Every registered loss (``jaxloss.LOSSES``) is reduced to
a function of one scalar, chosen per family and written on the figure:

- ``residual``: r = prediction - target (target 0); regression and robust losses.
- ``relative``: the prediction p with target 1 (percentage, log and Poisson losses, which are not
  functions of p - t).
- ``margin``: the margin of the true class: the logit z with label 1 for sigmoid losses,
  z_true - z_other with two classes (other logit 0) for softmax losses, y·score with y = +1 for
  hinge and ranking losses; divergences compare softmax([m, 0]) with the target (0.7, 0.3).
- ``probability``: the probability given to the true class (binary cross-entropy on
  probabilities; overlap losses on 4 pixels, 2 classes, every pixel predicted with p).
- ``distance``: the distance between a pair (contrastive), or anchor to negative with the
  positive at distance 1 (triplet).
- ``angle``: the angle between an embedding and its positive partner (cosine, InfoNCE, SupCon,
  SigLIP; the negatives point the opposite way).

Derivatives are ``jax.grad`` of these scalar functions, so kinks show the library's convention.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxloss

from . import _spec
from ._extras import require

__all__ = ["AXES", "Curve", "PlotError", "curves", "draw", "main", "parse_spec", "plot"]

Scalar = Callable[[jax.Array], jax.Array]


#: A bad loss name or hyperparameter on the plot command line (the commands share one error).
PlotError = _spec.SpecError


@dataclasses.dataclass(frozen=True)
class Axis:
    label: str
    lo: float
    hi: float


AXES = {
    "residual": Axis("residual r = prediction − target (target 0)", -5.0, 5.0),
    "relative": Axis("prediction p (target 1; rates: count 1)", 0.05, 4.0),
    "margin": Axis("margin of the true class (logit z; z_true − z_other; y·score)", -6.0, 6.0),
    "probability": Axis("probability given to the true class", 0.01, 0.99),
    "distance": Axis("distance (pair; anchor–negative with d(a, p) = 1)", 0.0, 3.0),
    "angle": Axis("angle between an embedding and its positive (radians)", 0.0, math.pi),
}


@dataclasses.dataclass(frozen=True)
class _Family:
    axis: str
    # (loss, hyperparameters) -> [(suffix, scalar function of x)]
    build: Callable[[Callable[..., Any], dict[str, Any]], list[tuple[str, Scalar]]]
    defaults: dict[str, Any] = dataclasses.field(default_factory=dict)


def _one(value: jax.Array) -> jax.Array:
    return jnp.reshape(value, ())


def _residual(loss: Callable[..., Any], hp: dict[str, Any]) -> list[tuple[str, Scalar]]:
    return [("", lambda x: _one(loss(x, jnp.zeros_like(x), **hp)))]


def _adaptive_wing(loss: Callable[..., Any], hp: dict[str, Any]) -> list[tuple[str, Scalar]]:
    def at(t: float) -> Scalar:
        return lambda x: _one(loss(t + x, jnp.full_like(x, t), **hp))

    return [("target 1", at(1.0)), ("target 0", at(0.0))]


def _relative(loss: Callable[..., Any], hp: dict[str, Any]) -> list[tuple[str, Scalar]]:
    return [("", lambda x: _one(loss(x, jnp.ones_like(x), **hp)))]


def _log_rate(loss: Callable[..., Any], hp: dict[str, Any]) -> list[tuple[str, Scalar]]:
    return [("log_rates = log p", lambda x: _one(loss(jnp.log(x), jnp.ones_like(x), **hp)))]


def _binary(loss: Callable[..., Any], hp: dict[str, Any]) -> list[tuple[str, Scalar]]:
    return [("label 1", lambda x: _one(loss(x, jnp.ones_like(x), **hp)))]


def _binary_both(loss: Callable[..., Any], hp: dict[str, Any]) -> list[tuple[str, Scalar]]:
    return [
        ("label 1, margin z", lambda x: _one(loss(x, jnp.ones_like(x), **hp))),
        ("label 0, margin −z", lambda x: _one(loss(-x, jnp.zeros_like(x), **hp))),
    ]


def _signed(loss: Callable[..., Any], hp: dict[str, Any]) -> list[tuple[str, Scalar]]:
    return [("y = +1", lambda x: _one(loss(x, jnp.ones_like(x), **hp)))]


def _ranking(loss: Callable[..., Any], hp: dict[str, Any]) -> list[tuple[str, Scalar]]:
    return [
        (
            "y = +1, x = s₁ − s₂",
            lambda x: _one(loss(x, jnp.zeros_like(x), jnp.ones_like(x), **hp)),
        )
    ]


def _two_logits(m: jax.Array, label: int) -> jax.Array:
    """Logits [2] whose true class (``label``) leads the other (logit 0) by m."""
    return jnp.stack([m, jnp.zeros_like(m)] if label == 0 else [jnp.zeros_like(m), m])


def _softmax(loss: Callable[..., Any], hp: dict[str, Any]) -> list[tuple[str, Scalar]]:
    return [("2 classes", lambda x: _one(loss(_two_logits(x, 0), jnp.array(0), **hp)))]


def _softmax_probs(loss: Callable[..., Any], hp: dict[str, Any]) -> list[tuple[str, Scalar]]:
    target = jnp.array([1.0, 0.0])
    return [("one-hot target", lambda x: _one(loss(_two_logits(x, 0), target, **hp)))]


def _nll(loss: Callable[..., Any], hp: dict[str, Any]) -> list[tuple[str, Scalar]]:
    return [
        (
            "log_softmax([m, 0])",
            lambda x: _one(loss(jax.nn.log_softmax(_two_logits(x, 0)), jnp.array(0), **hp)),
        )
    ]


def _imbalanced(loss: Callable[..., Any], hp: dict[str, Any]) -> list[tuple[str, Scalar]]:
    """Class-count-aware losses: one curve with the frequent class true, one with the rare."""

    def true_class(c: int) -> Scalar:
        return lambda x: _one(loss(_two_logits(x, c), jnp.array(c), **hp))

    return [("true class frequent", true_class(0)), ("true class rare", true_class(1))]


def _linear_ce(loss: Callable[..., Any], hp: dict[str, Any]) -> list[tuple[str, Scalar]]:
    weight = jnp.array([[1.0, 0.0]])  # [D = 1, V = 2]: logits = [m, 0]
    return [
        (
            "hidden [m], W = [[1, 0]]",
            lambda x: _one(
                loss(jnp.reshape(x, (1, 1)), weight.astype(x.dtype), jnp.array([0]), **hp)
            ),
        )
    ]


_TARGET = (0.7, 0.3)


def _divergence(loss: Callable[..., Any], hp: dict[str, Any]) -> list[tuple[str, Scalar]]:
    t = jnp.array(_TARGET)
    return [
        (
            "log_softmax([m, 0]) ‖ (0.7, 0.3)",
            lambda x: _one(loss(jax.nn.log_softmax(_two_logits(x, 0)), t, **hp)),
        )
    ]


def _divergence_log(loss: Callable[..., Any], hp: dict[str, Any]) -> list[tuple[str, Scalar]]:
    t = jnp.log(jnp.array(_TARGET))
    return [
        (
            "log_softmax([m, 0]) ‖ (0.7, 0.3)",
            lambda x: _one(loss(jax.nn.log_softmax(_two_logits(x, 0)), t, **hp)),
        )
    ]


def _js(loss: Callable[..., Any], hp: dict[str, Any]) -> list[tuple[str, Scalar]]:
    t = jnp.array(_TARGET)
    return [
        (
            "softmax([m, 0]) vs (0.7, 0.3)",
            lambda x: _one(loss(jax.nn.softmax(_two_logits(x, 0)), t, **hp)),
        )
    ]


def _probability(loss: Callable[..., Any], hp: dict[str, Any]) -> list[tuple[str, Scalar]]:
    return [("label 1", lambda x: _one(loss(x, jnp.ones_like(x), **hp)))]


_PIXEL_CLASSES = jnp.array([0, 0, 0, 1])  # 4 pixels, class 1 is the small foreground


def _overlap(loss: Callable[..., Any], hp: dict[str, Any]) -> list[tuple[str, Scalar]]:
    targets = jax.nn.one_hot(_PIXEL_CLASSES, 2)

    def f(x: jax.Array) -> jax.Array:
        probs = targets * x + (1 - targets) * (1 - x)  # every pixel gives p to its true class
        return _one(loss(probs, targets.astype(x.dtype), num_spatial_dims=1, **hp))

    return [("4 pixels, 2 classes", f)]


def _contrastive(loss: Callable[..., Any], hp: dict[str, Any]) -> list[tuple[str, Scalar]]:
    def pair(x: jax.Array, y: float) -> jax.Array:
        a = jnp.zeros(2, x.dtype)
        b = jnp.stack([x, jnp.zeros_like(x)])
        return _one(loss(a, b, jnp.asarray(y, x.dtype), **hp))

    return [("similar pair", lambda x: pair(x, 1.0)), ("dissimilar pair", lambda x: pair(x, 0.0))]


def _triplet(loss: Callable[..., Any], hp: dict[str, Any]) -> list[tuple[str, Scalar]]:
    def f(x: jax.Array) -> jax.Array:
        zero = jnp.zeros_like(x)
        anchor = jnp.stack([zero, zero])
        positive = jnp.stack([zero, jnp.ones_like(x)])
        negative = jnp.stack([x, zero])
        return _one(loss(anchor, positive, negative, **hp))

    return [("x = d(a, n)", f)]


def _rot(x: jax.Array, v: tuple[float, float]) -> jax.Array:
    c, s = jnp.cos(x), jnp.sin(x)
    return jnp.stack([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def _cosine(loss: Callable[..., Any], hp: dict[str, Any]) -> list[tuple[str, Scalar]]:
    def f(x: jax.Array, y: float) -> jax.Array:
        a = jnp.array([1.0, 0.0], x.dtype)
        return _one(loss(a, _rot(x, (1.0, 0.0)), jnp.asarray(y, x.dtype), **hp))

    return [("y = +1", lambda x: f(x, 1.0)), ("y = −1", lambda x: f(x, -1.0))]


def _set_of_four(x: jax.Array) -> jax.Array:
    """Two pairs: e0 = (1, 0) with e1 rotated by x; e2 = −e0 with e3 = −e1 (the negatives)."""
    e0 = jnp.array([1.0, 0.0], x.dtype)
    e1 = _rot(x, (1.0, 0.0))
    return jnp.stack([e0, e1, -e0, -e1])


def _nce(loss: Callable[..., Any], hp: dict[str, Any]) -> list[tuple[str, Scalar]]:
    labels = jnp.array([0, 0, 1, 1])
    return [("anchor 0 of 4", lambda x: loss(_set_of_four(x), labels, **hp)[0])]


def _siglip(loss: Callable[..., Any], hp: dict[str, Any]) -> list[tuple[str, Scalar]]:
    def f(x: jax.Array) -> jax.Array:
        e = _set_of_four(x)
        return loss(e[0::2], e[1::2], **hp)[0]

    return [("image 0 of 2", f)]


#: How each ``plot`` key of ``jaxloss.loss_info`` reduces a loss to one scalar: its axis and the
#: builder of its curves. Which key a loss uses is declared with the loss (``@register(plot=...)``).
BUILDERS: dict[
    str, tuple[str, Callable[[Callable[..., Any], dict[str, Any]], list[tuple[str, Scalar]]]]
] = {
    "residual": ("residual", _residual),
    "adaptive_wing": ("residual", _adaptive_wing),
    "relative": ("relative", _relative),
    "log_rate": ("relative", _log_rate),
    "binary": ("margin", _binary),
    "binary_both": ("margin", _binary_both),
    "signed": ("margin", _signed),
    "ranking": ("margin", _ranking),
    "softmax": ("margin", _softmax),
    "softmax_probs": ("margin", _softmax_probs),
    "nll": ("margin", _nll),
    "imbalanced": ("margin", _imbalanced),
    "linear_ce": ("margin", _linear_ce),
    "divergence": ("margin", _divergence),
    "divergence_log": ("margin", _divergence_log),
    "js": ("margin", _js),
    "probability": ("probability", _probability),
    "overlap": ("probability", _overlap),
    "contrastive": ("distance", _contrastive),
    "triplet": ("distance", _triplet),
    "cosine": ("angle", _cosine),
    "nce": ("angle", _nce),
    "siglip": ("angle", _siglip),
}


def family_of(name: str) -> _Family:
    """How the loss ``name`` is drawn: from its ``plot`` key (a loss of one's own: the residual)."""
    try:
        info = jaxloss.loss_info(name)
    except KeyError:
        return _Family("residual", _residual)
    if info.plot is None:
        raise PlotError(f"{name!r} cannot be drawn against one scalar.")
    axis, build = BUILDERS[info.plot]
    return _Family(axis, build, dict(info.plot_defaults))


# ------------------------------------------------------------------------------------------------
# Command-line specs: NAME or NAME:key=value,key=value


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"huber:delta=0.5"`` -> ``("huber", {"delta": 0.5})``, checked against the loss (also
    ``module:function[:key=value]``; see ``jaxloss._spec``)."""
    parsed = _spec.parse(spec)
    return parsed.name, parsed.hyperparameters


def _hyperparameters(name: str) -> list[str]:
    return _spec.hyperparameter_names(getattr(jaxloss, name)) or []


@dataclasses.dataclass
class Curve:
    """One plotted line: ``value`` and ``derivative`` (d value / dx) on the grid ``x``."""

    label: str
    axis: str
    x: np.ndarray
    value: np.ndarray
    derivative: np.ndarray


# The grids are tiny: compile time is the cost, so compile lightly, all curves in one program.
_FAST_COMPILE: dict[str, Any] = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
}


def _pending(
    spec: str, grid: np.ndarray | None, points: int
) -> list[tuple[str, str, np.ndarray, Scalar]]:
    """(label, axis kind, grid, scalar function) of each curve of a spec, validated by tracing."""
    parsed = _spec.parse(spec)
    name, hp = parsed.name, parsed.hyperparameters
    # A loss of one's own (module:function) is plotted against the residual.
    family = family_of(name)
    kwargs = {**family.defaults, **hp}
    kwargs = {
        k: jnp.asarray(v) if isinstance(v, (np.ndarray, tuple)) else v for k, v in kwargs.items()
    }
    axis = AXES[family.axis]
    x = np.linspace(axis.lo, axis.hi, points) if grid is None else np.asarray(grid)
    shown = ",".join(f"{k}={_show(v)}" for k, v in hp.items())
    base = f"{name}({shown})" if shown else name
    out = []
    for suffix, f in family.build(parsed.function, kwargs):
        try:
            # Run the loss's checks: some hyperparameters are checked only when concrete (eagerly),
            # so a spec with hyperparameters is probed eagerly, one point; defaults are traced.
            mid = jnp.asarray(x[len(x) // 2], jnp.float32)
            probe = f(mid) if hp else jax.eval_shape(f, mid)
        except (ValueError, TypeError) as err:
            raise PlotError(f"{spec!r}: {err}") from err
        if probe.shape != ():
            raise PlotError(
                f"{spec!r}: the loss gives shape {probe.shape}, not one value per point"
            )
        out.append((f"{base} [{suffix}]" if suffix else base, family.axis, x, f))
    return out


def _evaluate(pending: Sequence[tuple[str, str, np.ndarray, Scalar]]) -> list[Curve]:
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


def curves(spec: str, x: np.ndarray | None = None, *, points: int = 401) -> list[Curve]:
    """The curves of one command-line spec: value and ``jax.grad`` on the family's grid (or
    on ``x``)."""
    return _evaluate(_pending(spec, x, points))


def _show(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return "(" + ",".join(f"{v:g}" for v in value.ravel()) + ")"
    return f"{value:g}" if isinstance(value, float) else str(value)


def plot(
    specs: Sequence[str], out: str | Path, *, points: int = 401, xlim: Sequence[float] | None = None
) -> Path:
    """Draws every spec (rows: one per x-axis kind; columns: loss, derivative) to a PNG."""
    require("matplotlib", extra="plot", purpose="jaxloss plot")
    if not specs:
        raise PlotError("name at least one loss, e.g. `python -m jaxloss plot huber wing`.")
    grid = np.linspace(xlim[0], xlim[1], points) if xlim is not None else None
    pending = [p for spec in specs for p in _pending(spec, grid, points)]
    return draw(_evaluate(pending), out)


def draw(evaluated: Sequence[Curve], out: str | Path) -> Path:
    """The figure of already evaluated curves: one row per x-axis kind, loss and derivative."""
    require("matplotlib", extra="plot", purpose="jaxloss plot")
    from matplotlib.figure import Figure

    all_curves: dict[str, list[Curve]] = {}
    for c in evaluated:
        all_curves.setdefault(c.axis, []).append(c)
    rows = [a for a in AXES if a in all_curves]
    tallest = max(len(v) for v in all_curves.values())
    fig = Figure(figsize=(13, max(3.6, 0.16 * tallest) * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), 2, squeeze=False)
    for (ax_v, ax_d), kind in zip(axes, rows, strict=True):
        for i, c in enumerate(all_curves[kind]):
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
    path = Path(out)
    fig.savefig(path, dpi=90)
    return path


# ------------------------------------------------------------------------------------------------
# Command line


DESCRIPTION = """\
Plot losses and their derivatives against one scalar each (residual, margin, probability,
distance or angle, chosen per loss family and written on the axes), one row per kind of x-axis.
Needs the 'plot' extra: pip install -e '.[plot]'."""
EPILOG = """\
losses:
  NAME or NAME:key=value,key=value with any hyperparameter of the loss, e.g.
    huber:delta=0.5   barron:alpha=0   pinball_loss:tau=0.9   multiclass_hinge:kind=weston_watkins
    ldam_loss:samples_per_class=(50,5)
  Values are Python literals (numbers, tuples, True/False) or bare words. Name a loss several
  times to compare settings. Required hyperparameters have plot defaults: barron/barron_nll
  alpha=1, gaussian_nll variance=1, gaussian_nll_with_log_variance log_variance=0, expected_cost
  cost_matrix=((0,1),(1,0)), class-count losses (100,10) with one curve for the true class
  frequent and one for it rare. --list shows every loss and its x-axis.

example:
  python -m jaxloss plot huber wing barron:alpha=0 barron:alpha=2 --out shapes.png
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("losses", nargs="*", metavar="LOSS", help="NAME[:key=value,...]")
    parser.add_argument("--out", default="loss_shapes.png", help="PNG to write")
    parser.add_argument("--points", type=int, default=401, help="grid points (default 401)")
    parser.add_argument(
        "--xlim",
        nargs=2,
        type=float,
        metavar=("LO", "HI"),
        help="x range for every row (default: per kind, e.g. residual -5..5)",
    )
    parser.add_argument(
        "--list", action="store_true", help="list every registered loss and its x-axis"
    )


def main(args: argparse.Namespace) -> int:
    if args.list:
        for name in jaxloss.LOSSES:
            family = family_of(name)
            hp = ", ".join(_hyperparameters(name)) or "-"
            print(f"{name:<42} x = {family.axis:<12} hyperparameters: {hp}")
        return 0
    try:
        if args.points < 2:
            raise PlotError(f"--points must be >= 2; got {args.points}")
        path = plot(args.losses, args.out, points=args.points, xlim=args.xlim)
    except PlotError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0
