"""Lovász hinge and Lovász-softmax beyond the conformance cases: the semantics of
segmentation_models_pytorch / Berman's reference code (per image vs over the batch, ignored
pixels, present vs all classes, probabilities in), special cases with closed forms, the
piecewise-linear gradient, and errors.

References: tests/cases/lovasz.py (NumPy float64 from the paper, the Jaccard set function on
explicit pixel sets); smp and torch are not installed, so their documented algorithm
(``_lovasz_grad`` / ``_lovasz_hinge_flat`` / ``_lovasz_softmax_flat``) is what the references
implement.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxloss
from tests.cases.lovasz import _hinge_image, _softmax_image, lovasz_extension

RNG = np.random.default_rng(2018)
S = RNG.normal(scale=1.5, size=(3, 4, 5))  # 3 images of 4 x 5 pixels
YB = RNG.integers(0, 2, size=S.shape)
Z = RNG.normal(scale=1.5, size=(3, 4, 5, 3))  # 3 classes, last
YM = RNG.integers(0, 3, size=Z.shape[:-1])


def _close(a, b, tol=1e-12):
    np.testing.assert_allclose(
        np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=tol, atol=tol
    )


def test_hinge_per_image_and_over_the_batch():
    per = jax.jit(lambda s, y: jaxloss.lovasz_hinge_loss(s, y, num_spatial_dims=2))(S, YB)
    want = [_hinge_image(S[i].ravel(), YB[i].ravel(), None)[0] for i in range(3)]
    _close(per, want)
    # Berman's per_image=True: the mean of the per-image losses.
    _close(jaxloss.mean(per), np.mean(want))
    # smp's per_image=False: every pixel of the batch in one set.
    pooled = jaxloss.lovasz_hinge_loss(S, YB, num_spatial_dims=3)
    assert pooled.shape == ()
    _close(pooled, _hinge_image(S.ravel(), YB.ravel(), None)[0])


def test_softmax_per_image_over_the_batch_and_classes():
    for classes in ("present", "all"):
        per = jaxloss.lovasz_softmax_loss(Z, YM, num_spatial_dims=2, classes=classes)
        _close(per, [_softmax_image(Z[i], YM[i], None, classes)[0] for i in range(3)])
        pooled = jaxloss.lovasz_softmax_loss(Z, YM, num_spatial_dims=3, classes=classes)
        _close(pooled, _softmax_image(Z, YM, None, classes)[0])


def test_softmax_channel_first_and_probabilities_in():
    """smp's [B, C, H, W] logits: move the class axis last. Berman's function takes
    probabilities: their log is a logits input with the same softmax."""
    nchw = np.moveaxis(Z, -1, 1)
    _close(
        jaxloss.lovasz_softmax_loss(jnp.moveaxis(nchw, 1, -1), YM, num_spatial_dims=2),
        jaxloss.lovasz_softmax_loss(Z, YM, num_spatial_dims=2),
    )
    probs = np.asarray(jax.nn.softmax(Z, -1))
    _close(
        jaxloss.lovasz_softmax_loss(np.log(probs), YM, num_spatial_dims=2),
        jaxloss.lovasz_softmax_loss(Z, YM, num_spatial_dims=2),
        1e-12,
    )


def test_single_pixel_is_the_hinge_and_no_foreground_is_the_largest_error():
    s = np.array([-2.0, -0.3, 0.4, 1.5])
    for y in (np.zeros(4, int), np.ones(4, int)):
        one = jaxloss.lovasz_hinge_loss(s, y, num_spatial_dims=0)
        _close(one, np.maximum(0, 1 - (2 * y - 1) * s))
        _close(jaxloss.hinge_loss(s, 2.0 * y - 1), one)
    _close(
        jaxloss.lovasz_hinge_loss(s, np.zeros(4, int), num_spatial_dims=1), max(0.0, 1 + s.max())
    )


def test_absent_class_under_all_adds_its_largest_probability():
    z = RNG.normal(size=(6, 3))
    y = np.array([0, 1, 0, 1, 1, 0])  # class 2 absent
    p = np.asarray(jax.nn.softmax(z, -1))
    present = jaxloss.lovasz_softmax_loss(z, y, num_spatial_dims=1)
    every = jaxloss.lovasz_softmax_loss(z, y, num_spatial_dims=1, classes="all")
    _close(3 * every - 2 * present, p[:, 2].max())


@jax.jit
def _ignored(s, y, s2, z, ym):
    hinge_loss = jaxloss.lovasz_hinge_loss

    def total_hinge(s):
        return hinge_loss(s, jnp.full(s.shape, 255), num_spatial_dims=2, ignore_index=255).sum()

    def total_softmax(z):
        return jaxloss.lovasz_softmax_loss(z, ym, num_spatial_dims=2, ignore_index=-1).sum()

    return (
        hinge_loss(s, y, num_spatial_dims=2, ignore_index=255),
        hinge_loss(s2, y, num_spatial_dims=2, ignore_index=255),
        jax.value_and_grad(total_hinge)(s),
        jax.value_and_grad(total_softmax)(z),
    )


def test_ignored_pixels_are_dropped():
    y = np.where(RNG.uniform(size=YB.shape) < 0.3, 255, YB)
    keep = y != 255
    s2 = np.where(keep, S, -S * 7)  # ignored pixels' logits changed
    got, got2, (vh, gh), (vs, gs) = _ignored(S, y, s2, Z, np.full(YM.shape, -1))
    _close(got, [_hinge_image(S[i][keep[i]], YB[i][keep[i]], None)[0] for i in range(3)])
    _close(got2, got)  # an ignored pixel's logit changes nothing
    # every pixel ignored: 0 with no gradient
    assert vh == 0 and not np.any(gh) and vs == 0 and not np.any(gs)


def test_gradient_is_the_sorted_error_weights():
    """The extension is linear for a fixed order: d loss / d m_(k) = g_k, the Jaccard
    increments, and finite differences agree away from ties."""
    m = RNG.uniform(size=12)
    truth = RNG.uniform(size=12) < 0.4
    value, grad = lovasz_extension(m, truth)
    # the hinge with errors e = m, written through logits s = (1 - e)·σ
    sig = 2.0 * truth - 1
    s = (1 - m) * sig
    v, g = jax.value_and_grad(
        lambda s: jaxloss.lovasz_hinge_loss(s, truth.astype(int), num_spatial_dims=1)
    )(s)
    _close(v, value)
    _close(g, -sig * grad)
    assert np.all(grad >= 0)  # Δ is increasing: every increment is >= 0
    _close(np.sum(grad), 1.0)  # Σ g = J_N = 1 when every pixel is counted


@pytest.mark.parametrize("which", ["hinge", "softmax"])
def test_finite_differences(which):
    if which == "hinge":

        def f(s):
            return jaxloss.lovasz_hinge_loss(s, YB, num_spatial_dims=2)

        x = S
    else:

        def f(z):
            return jaxloss.lovasz_softmax_loss(z, YM, num_spatial_dims=2)

        x = Z
    check_grads(jax.jit(f), (x,), order=1, modes=("fwd", "rev"), atol=1e-5, rtol=1e-5)


def test_value_does_not_depend_on_the_order_of_tied_errors():
    s = np.array([[0.5, 0.5, 0.5, -1.0, 2.0, 0.5]])
    y = np.array([[1, 0, 1, 0, 1, 0]])
    perm = np.array([3, 0, 5, 2, 4, 1])
    _close(
        jaxloss.lovasz_hinge_loss(s, y, num_spatial_dims=1),
        jaxloss.lovasz_hinge_loss(s[:, perm], y[:, perm], num_spatial_dims=1),
    )


def test_float32_matches_float64():
    for fn, x, y in ((jaxloss.lovasz_hinge_loss, S, YB), (jaxloss.lovasz_softmax_loss, Z, YM)):
        f = jax.jit(lambda x, y, fn=fn: fn(x, y, num_spatial_dims=2))
        v32 = f(jnp.asarray(x, jnp.float32), y)
        assert v32.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(v32), np.asarray(f(x, y)), rtol=1e-5, atol=1e-6)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"lovasz_hinge_loss: `labels` must be 0 or 1"):
        jaxloss.lovasz_hinge_loss(S, YB + 1, num_spatial_dims=2)
    with pytest.raises(ValueError, match=r"lovasz_softmax_loss: `labels` must be class indices"):
        jaxloss.lovasz_softmax_loss(Z, YM + 3, num_spatial_dims=2)
    with pytest.raises(ValueError, match=r"`classes` must be 'present' or 'all'"):
        jaxloss.lovasz_softmax_loss(Z, YM, num_spatial_dims=2, classes=[0, 1])
    with pytest.raises(ValueError, match=r"`num_spatial_dims` must be in \[0, 3\]"):
        jaxloss.lovasz_hinge_loss(S, YB, num_spatial_dims=4)
    with pytest.raises(TypeError, match=r"`num_spatial_dims` must be an int"):
        jaxloss.lovasz_softmax_loss(Z, YM, num_spatial_dims=None)
    with pytest.raises(TypeError, match=r"lovasz_softmax_loss: `labels` must hold integer"):
        jaxloss.lovasz_softmax_loss(Z, YM.astype(float), num_spatial_dims=2)


def test_traced_invalid_labels_give_nan_for_their_image():
    y = YM.copy()
    y[1, 0, 0] = 7
    v = jax.jit(lambda z, y: jaxloss.lovasz_softmax_loss(z, y, num_spatial_dims=2))(Z, y)
    assert np.isnan(v[1]) and not np.isnan(np.asarray(v)[[0, 2]]).any()
    yb = YB.copy()
    yb[2, 1, 1] = 3
    v = jax.jit(lambda s, y: jaxloss.lovasz_hinge_loss(s, y, num_spatial_dims=2))(S, yb)
    assert np.isnan(v[2]) and not np.isnan(np.asarray(v)[:2]).any()
