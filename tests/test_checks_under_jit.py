"""Hyperparameters that are constants inside a jitted function are still validated.

Under a trace, ``jnp.asarray`` of a Python or NumPy constant is already a tracer, so a check made
on the converted value would be skipped silently; the checks read the caller's raw argument.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss

X = jnp.linspace(-1.0, 1.0, 6).reshape(2, 3)
Y3 = jnp.array([0.0, 1.0, 2.0])
LABELS = jnp.array([0, 2])
CASES = {
    "pinball scalar tau": (
        "pinball_loss", "tau", lambda: jaxloss.pinball_loss(X, X, tau=2.0)),
    "pinball tau levels": (
        "pinball_loss", "tau",
        lambda: jaxloss.pinball_loss(jnp.zeros((3, 2)), Y3, tau=np.array([0.1, 1.5]))),
    "expectile tau": ("expectile_loss", "tau", lambda: jaxloss.expectile_loss(X, X, tau=-0.1)),
    "bce pos_weight": (
        "sigmoid_binary_cross_entropy", "pos_weight",
        lambda: jaxloss.sigmoid_binary_cross_entropy(X, X > 0, pos_weight=np.array([1.0, -2, 1]))),
    "counts": (
        "class_weights_from_counts", "counts",
        lambda: jaxloss.class_weights_from_counts(np.array([3.0, -1.0]))),
    "samples_per_class all zero": (
        "class_balanced_cross_entropy", "samples_per_class",
        lambda: jaxloss.class_balanced_cross_entropy(X, LABELS, samples_per_class=np.zeros(3))),
    "focal alpha vector": (
        "softmax_focal_loss", "alpha",
        lambda: jaxloss.softmax_focal_loss(X, LABELS, alpha=np.array([0.5, -0.5, 1.0]))),
}


@pytest.mark.parametrize("key", list(CASES))
def test_constant_hyperparameters_are_checked_eagerly_and_under_jit(key):
    fn, arg, call = CASES[key]
    pattern = rf"jaxloss\.{fn}: `{arg}`"
    with pytest.raises(ValueError, match=pattern):
        call()
    with pytest.raises(ValueError, match=pattern):
        jax.jit(call)()


def test_traced_hyperparameters_are_not_checked():
    """A learnable (traced) level is the caller's to keep in range: no error, a finite value."""
    out = jax.jit(lambda tau: jaxloss.pinball_loss(X, X + 1.0, tau=tau))(2.0)
    assert np.all(np.isfinite(np.asarray(out)))
