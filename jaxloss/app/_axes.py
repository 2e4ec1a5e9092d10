"""How a loss becomes a function of one scalar: the x-axes and the curve builders of the plot.

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
- ``distance``: the distance between a pair (contrastive_loss), or anchor to negative with the
  positive at distance 1 (triplet).
- ``angle``: the angle between an embedding and its positive partner (cosine, InfoNCE, SupCon,
  SigLIP; the negatives point the opposite way).

Derivatives are ``jax.grad`` of these scalar functions, so kinks show the library's convention.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["AXES", "BUILDERS", "Axis", "Builder", "Scalar"]

Scalar = Callable[[jax.Array], jax.Array]
#: (loss, hyperparameters) -> [(label suffix, scalar function of x)]
Builder = Callable[[Callable[..., Any], dict[str, Any]], list[tuple[str, Scalar]]]


@dataclasses.dataclass(frozen=True)
class Axis:
    """One kind of x-axis: what x is (written on the figure) and its default range."""

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


def _one(value: jax.Array) -> jax.Array:
    if jnp.size(value) != 1:
        raise ValueError(
            f"the loss gives shape {jnp.shape(value)}, not one value per point (a loss of your "
            "own is called as kind=... says: residual, loss(r, 0), by default)"
        )
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
BUILDERS: dict[str, tuple[str, Builder]] = {
    "residual": ("residual", _residual),
    "adaptive_wing_loss": ("residual", _adaptive_wing),
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
    "contrastive_loss": ("distance", _contrastive),
    "triplet": ("distance", _triplet),
    "cosine": ("angle", _cosine),
    "nce": ("angle", _nce),
    "siglip_loss": ("angle", _siglip),
}
