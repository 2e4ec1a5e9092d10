"""Regression tests for issue 12 ("No silent wrong numbers") in the imbalance and overlap losses.

Each reproducer from the issue, with the answer computed independently (NumPy float64 formulas
or closed-form limits), never by the code under test. Inputs are float32 under ``jax.jit`` (as a
training step runs them) unless the test is about eager behaviour; several losses share one
jitted program to keep the compile count low.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss

F32 = np.float32
NAN = np.nan
COUNTS3 = np.array([10.0, 5.0, 2.0])


def np_softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# 1. NaN in one example's inputs gives NaN for that example, value and gradient; the others are
#    unchanged.

# Multi-class losses with the row [2, nan, 0.5] (generalized CE gave -4.36, focal 0).
MULTICLASS = {
    "generalized_cross_entropy": lambda z, y: jaxloss.generalized_cross_entropy(z, y, q=0.7),
    "logit_adjusted_cross_entropy": lambda z, y: jaxloss.logit_adjusted_cross_entropy(
        z, y, class_priors=COUNTS3),
    "class_balanced_cross_entropy": lambda z, y: jaxloss.class_balanced_cross_entropy(
        z, y, samples_per_class=COUNTS3, beta=0.9),
    "class_balanced_focal_loss": lambda z, y: jaxloss.class_balanced_focal_loss(
        z, y, samples_per_class=COUNTS3, beta=0.9),
    "ldam_loss": lambda z, y: jaxloss.ldam_loss(z, y, samples_per_class=COUNTS3, scale=4.0),
    "softmax_focal_loss": lambda z, y: jaxloss.softmax_focal_loss(z, y, gamma=2.0),
    "poly1_cross_entropy": lambda z, y: jaxloss.poly1_cross_entropy(z, y, epsilon=2.0),
}


def _multiclass_reference(name, z, y):
    """float64 per-example values from the papers' formulas (linear space)."""
    z = np.asarray(z, np.float64)
    rows = np.arange(len(y))
    cb = (1 - 0.9) / (1 - 0.9**COUNTS3)
    cb = cb * 3 / cb.sum()
    if name == "logit_adjusted_cross_entropy":
        z = z + np.log(COUNTS3)
    if name == "ldam_loss":
        m = COUNTS3**-0.25
        m = 0.5 * m / m.max()
        z = 4.0 * (z - np.eye(3)[y] * m[y][:, None])
    p = np_softmax(z)[rows, y]
    ce = -np.log(p)
    return {
        "generalized_cross_entropy": (1 - p**0.7) / 0.7,
        "logit_adjusted_cross_entropy": ce,
        "class_balanced_cross_entropy": cb[y] * ce,
        "class_balanced_focal_loss": cb[y] * (1 - p) ** 2 * ce,
        "ldam_loss": ce,
        "softmax_focal_loss": (1 - p) ** 2 * ce,
        "poly1_cross_entropy": ce + 2.0 * (1 - p),
    }[name]


@jax.jit
def _multiclass_values_and_grads(z, y):
    return {name: (f(z, y), jax.grad(lambda a, f=f: jnp.sum(f(a, y)))(z))
            for name, f in MULTICLASS.items()}


@pytest.mark.parametrize("nan_at", [(0, 1), (0, 0)], ids=["other-class", "label-class"])
def test_multiclass_nan_logit_gives_nan_for_its_example(nan_at):
    clean = np.array([[2.0, 1.0, 0.5], [1.0, 2.0, 3.0], [0.3, -1.0, 0.2]], F32)
    y = np.array([0, 1, 2])
    z = clean.copy()
    z[nan_at] = NAN
    got = _multiclass_values_and_grads(z, y)
    for name, (values, grads) in got.items():
        values, grads = np.asarray(values), np.asarray(grads)
        assert np.isnan(values[0]), f"{name}: {values[0]} for the NaN example"
        assert np.isnan(grads[0]).all(), f"{name}: gradient {grads[0]} for the NaN example"
        np.testing.assert_allclose(values[1:], _multiclass_reference(name, clean, y)[1:],
                                   rtol=2e-6, err_msg=name)
        assert np.isfinite(grads[1:]).all(), name


@jax.jit
def _binary_values_and_grads(x, t):
    fs = {
        "sigmoid_focal_loss": lambda a: jaxloss.sigmoid_focal_loss(a, t, gamma=2.0),
        "sigmoid_focal_loss[alpha+poly]": lambda a: jaxloss.sigmoid_focal_loss(
            a, t, alpha=0.25, gamma=2.0, poly_epsilon=1.0),
        "asymmetric_multilabel_loss": lambda a: jaxloss.asymmetric_multilabel_loss(a, t),
        "asymmetric_multilabel_loss[margin=0]": lambda a: jaxloss.asymmetric_multilabel_loss(
            a, t, margin=0.0),
    }
    return {name: (f(x), jax.grad(lambda a, f=f: jnp.sum(f(a)))(x)) for name, f in fs.items()}


def test_sigmoid_losses_nan_logit_or_label_gives_nan_for_that_element():
    x = np.array([NAN, 1.0, 2.0, -3.0], F32)
    t = np.array([1.0, 0.0, NAN, 1.0], F32)
    for name, (values, grads) in _binary_values_and_grads(x, t).items():
        values, grads = np.asarray(values), np.asarray(grads)
        assert np.isnan(values[[0, 2]]).all(), f"{name}: {values}"
        assert np.isnan(grads[[0, 2]]).all(), f"{name}: {grads}"
        assert np.isfinite(values[[1, 3]]).all() and np.isfinite(grads[[1, 3]]).all(), name


OVERLAP = {
    "dice_loss": lambda p, t: jaxloss.dice_loss(p, t, num_spatial_dims=1),
    "jaccard_loss": lambda p, t: jaxloss.jaccard_loss(p, t, num_spatial_dims=1),
    "tversky_loss": lambda p, t: jaxloss.tversky_loss(p, t, num_spatial_dims=1),
    "focal_tversky_loss": lambda p, t: jaxloss.focal_tversky_loss(p, t, num_spatial_dims=1),
    "dice_loss[smooth=0]": lambda p, t: jaxloss.dice_loss(p, t, num_spatial_dims=1, smooth=0.0),
}


@jax.jit
def _overlap_values_and_grads(p, t):
    return {name: (f(p, t), jax.grad(lambda a, f=f: jnp.sum(f(a, t)))(p))
            for name, f in OVERLAP.items()}


@pytest.mark.parametrize("where", ["probabilities", "targets"])
def test_overlap_nan_gives_nan_for_the_whole_example(where):
    """focal Tversky gave a finite loss (x > 0 sent NaN to 0); macro Dice a finite gradient for
    the example's other classes."""
    rng = np.random.default_rng(0)
    p = np_softmax(rng.normal(size=(3, 4, 3))).astype(F32)
    t = np.eye(3, dtype=F32)[rng.integers(0, 3, size=(3, 4))]
    clean = _overlap_values_and_grads(p, t)
    if where == "probabilities":
        p = p.copy()
        p[1, 2, 0] = NAN
    else:
        t = t.copy()
        t[1, 2, 0] = NAN
    for name, (values, grads) in _overlap_values_and_grads(p, t).items():
        values, grads = np.asarray(values), np.asarray(grads)
        assert np.isnan(values[1]), f"{name}: {values}"
        assert np.isnan(grads[1]).all(), f"{name}: {grads[1]}"
        np.testing.assert_array_equal(values[[0, 2]], np.asarray(clean[name][0])[[0, 2]])
        np.testing.assert_array_equal(grads[[0, 2]], np.asarray(clean[name][1])[[0, 2]])


# ---------------------------------------------------------------------------------------------
# 3. Concrete hyperparameters and probabilities are checked.


def test_poly1_epsilon_below_minus_one_is_refused():
    z, y = np.array([[5.0, 0.0]]), np.array([0])
    # -log p + ε(1 - p) ≈ (1 + ε)(1 - p) < 0 near p = 1: epsilon=-5 gave negative losses.
    p = np_softmax(z)[0, 0]
    assert -np.log(p) - 5 * (1 - p) < 0
    with pytest.raises(ValueError,
                       match=r"jaxloss\.poly1_cross_entropy: `epsilon` must be finite and >= -1"):
        jaxloss.poly1_cross_entropy(z, y, epsilon=-5.0)
    for fn in (jaxloss.softmax_focal_loss, jaxloss.sigmoid_focal_loss):
        zz, yy = (z, y) if fn is jaxloss.softmax_focal_loss else (z[0], np.array([1.0, 0.0]))
        with pytest.raises(ValueError, match=rf"jaxloss\.{fn.__name__}: `poly_epsilon` must be"):
            fn(zz, yy, poly_epsilon=-2.0)
    # ε = -1 is allowed and non-negative everywhere (-log p >= 1 - p)
    zz = np.array([[20.0, 0.0], [0.0, 0.0], [-5.0, 3.0], [1e-3, 0.0]])
    v = np.asarray(jaxloss.poly1_cross_entropy(zz, np.zeros(4, int), epsilon=-1.0))
    pz = np_softmax(zz)[:, 0]
    np.testing.assert_allclose(v, -np.log(pz) - (1 - pz), rtol=1e-6, atol=1e-15)
    assert (v >= 0).all()


@pytest.mark.parametrize(("alpha", "match"), [
    (np.ones(2), r"`alpha` must have shape \(num_classes,\) = \(3,\); got \(2,\)"),
    (np.array([1.0, -0.5, 1.0]), r"`alpha` must be finite and >= 0"),
    (np.array([1.0, NAN, 1.0]), r"`alpha` must be finite and >= 0"),
])
def test_softmax_focal_alpha_vector_is_checked(alpha, match):
    with pytest.raises(ValueError, match=rf"jaxloss\.softmax_focal_loss: {match}"):
        jaxloss.softmax_focal_loss(np.zeros((1, 3)), np.array([2]), alpha=alpha)


@pytest.mark.parametrize("alpha", [NAN, 1.5, -0.25])
def test_sigmoid_focal_alpha_is_checked(alpha):
    with pytest.raises(ValueError, match=r"jaxloss\.sigmoid_focal_loss: `alpha` must be"):
        jaxloss.sigmoid_focal_loss(np.zeros(2), np.ones(2), alpha=alpha)


def test_sigmoid_losses_refuse_labels_outside_the_unit_interval():
    for fn in (jaxloss.sigmoid_focal_loss, jaxloss.asymmetric_multilabel_loss):
        with pytest.raises(ValueError, match=rf"jaxloss\.{fn.__name__}: `labels` must be in "
                                             r"\[0, 1\]; got \[-1\].*\(y \+ 1\) / 2"):
            fn(np.zeros(3), np.array([-1.0, 1.0, 1.0]))


@pytest.mark.parametrize("name", ["dice_loss", "jaccard_loss", "tversky_loss",
                                  "focal_tversky_loss", "generalized_dice_loss"])
def test_overlap_losses_refuse_logits_and_name_the_activation(name):
    """Dice on logits returned -0.37; now a ValueError naming jax.nn.softmax / sigmoid."""
    logits = np.array([[[3.0, -1.0], [0.5, 2.0]]])
    t = np.array([[[1.0, 0.0], [0.0, 1.0]]])
    fn = getattr(jaxloss, name)
    with pytest.raises(ValueError, match=rf"jaxloss\.{name}: `probabilities` must be "
                                         r"in \[0, 1\]; got \[3, -1, 2\].*probabilities, not "
                                         r"logits.*jax\.nn\.softmax.*jax\.nn\.sigmoid"):
        fn(logits, t, num_spatial_dims=1)
    with pytest.raises(ValueError, match=rf"jaxloss\.{name}: `targets` must be"):
        fn(t, 2 * t, num_spatial_dims=1)
    # NaN is not refused (it gives NaN), and traced inputs are used as given (no error; focal
    # Tversky's power of a negative 1 - TI is NaN there)
    assert np.isnan(np.asarray(fn(np.full_like(t, NAN), t, num_spatial_dims=1))).all()
    jax.jit(lambda a: fn(a, t, num_spatial_dims=1))(logits)


# ---------------------------------------------------------------------------------------------
# 4. Large finite inputs give the float64 answer rounded to float32, never NaN.


@jax.jit
def _sigmoid_focal_vg(x, t):
    return jax.vmap(jax.value_and_grad(lambda a, b: jaxloss.sigmoid_focal_loss(a, b, gamma=2.0)))(
        x, t)


def test_sigmoid_focal_gamma2_gradient_at_logit_3e38():
    """It was NaN: γ · BCE (6e38 = inf) times a derivative factor that is 0."""
    x = np.array([3e38, -3e38, 3e38, -3e38, 1e20], F32)
    t = np.array([0.0, 1.0, 1.0, 0.0, 0.0], F32)
    v, g = _sigmoid_focal_vg(x, t)
    # Wrong label, saturated: (1 - p_t)^γ = 1, BCE = |x|, d/dx = σ(x) - t = ±1 (the γ-term is
    # γ BCE e^{-|x|} → 0). Right label: 0 and 0.
    np.testing.assert_array_equal(np.asarray(v), np.array([3e38, 3e38, 0, 0, 1e20], F32))
    np.testing.assert_array_equal(np.asarray(g), np.array([1, -1, 0, 0, 1], F32))


def test_ldam_at_logits_1e30_is_the_float64_answer_eager_and_under_jit():
    """0 eagerly and inf under jit before: XLA:CPU contracted s·z - max(s·z) into an FMA."""
    z = np.array([[1e30, 0.0, -1e30]] * 3, F32)
    y = np.array([0, 1, 2])

    def f(a):
        return jaxloss.ldam_loss(a, y, samples_per_class=COUNTS3)

    m = COUNTS3**-0.25
    m = 0.5 * m / m.max()
    zz = 30.0 * (np.asarray(z, np.float64) - np.eye(3)[y] * m[y][:, None])
    want = np.log(np.exp(zz - zz.max(-1, keepdims=True)).sum(-1)) + zz.max(-1) - zz[[0, 1, 2], y]
    np.testing.assert_allclose(want, [0.0, 3e31, 6e31], rtol=1e-6)
    for got in (f(z), jax.jit(f)(z)):
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=1e-6)
    g = jax.jit(jax.grad(lambda a: jnp.sum(f(a))))(z)
    np.testing.assert_array_equal(np.asarray(g), 30.0 * (np.eye(3)[[0, 0, 0]] - np.eye(3)[y]))


@jax.jit
def _softmax_focal_vg(z, y):
    return jax.vmap(jax.value_and_grad(
        lambda a, b: jaxloss.softmax_focal_loss(a, b, gamma=2.0, poly_epsilon=1.0)))(z, y)


def test_softmax_focal_with_huge_logits():
    z = np.array([[3e38, -3e38, 0.0], [3e38, -3e38, 0.0], [1e20, -1e20, 0.0],
                  [-1e4, -1e4, -1e4]], F32)
    y = np.array([1, 2, 1, 0])
    v, g = _softmax_focal_vg(z, y)
    # p_y = 0 (or 1/3): l = (1 - p_y)^2 CE + (1 - p_y)^3 with CE = z_max - z_y (+ log 3 for
    # equal logits); 6e38 is beyond float32's range: inf, with the finite gradient p - e_y.
    want = np.array([np.inf, 3e38 + 1, 2e20 + 1, (2 / 3) ** 2 * np.log(3) + (2 / 3) ** 3])
    np.testing.assert_allclose(np.asarray(v, np.float64), want, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(g)[:3],
                                  np.array([[1, -1, 0], [1, 0, -1], [1, -1, 0]], F32))
    # equal logits: d/dz_y = -(2/3)^2 [2 log 3 / 3 ... ] in closed form from the registry formula
    p, u, c = 1 / 3, 2 / 3, np.log(3)
    q = np.array([0, 0.5, 0.5])
    pv, e = np.full(3, p), np.eye(3)[0]
    want_g = u**2 * (2 * c * (q - pv) + (pv - e)) + 3 * u**3 * (q - pv)
    np.testing.assert_allclose(np.asarray(g)[3], want_g, rtol=1e-5)


def test_focal_tversky_near_a_perfect_prediction_is_the_float64_answer():
    """1 - TI formed from TI rounds to multiples of 6e-8 in float32: (1 - TI)^0.75 was 25% off."""
    onehot = np.eye(3)[np.arange(12).reshape(3, 4) % 3]
    p = np.clip(onehot, 1e-7, 1 - 1e-7).astype(F32)
    t = onehot.astype(F32)
    f = jax.jit(lambda a: jaxloss.focal_tversky_loss(a, t, num_spatial_dims=1, gamma=0.75,
                                                     smooth=0.0))
    pd, td = np.asarray(p, np.float64), t.astype(np.float64)
    fp = (pd * (1 - td)).sum(1)
    fn = ((1 - pd) * td).sum(1)
    tp = (pd * td).sum(1)
    want = (((0.3 * fp + 0.7 * fn) / (tp + 0.3 * fp + 0.7 * fn)) ** 0.75).mean(-1)
    np.testing.assert_allclose(np.asarray(f(p), np.float64), want, rtol=1e-5)


def test_overlap_gradients_at_tiny_counts_are_finite_and_right():
    """Counts of 1e-29 square to 0 in float32: the quotient rule gave NaN."""
    onehot = np.eye(3)[np.arange(12).reshape(3, 4) % 3]
    p = np.full((3, 4, 3), 1e-30, F32)
    t = onehot.astype(F32)
    g = jax.jit(jax.grad(lambda a: jnp.sum(jaxloss.dice_loss(a, t, num_spatial_dims=1,
                                                             smooth=0.0))))(p)
    # l_c = (FP + FN) / (2 TP + FP + FN) with TP = FP ≈ 1e-30 n_c... in float64:
    pd, td = p.astype(np.float64), t.astype(np.float64)
    tp, fp, fn = (pd * td).sum(1), (pd * (1 - td)).sum(1), ((1 - pd) * td).sum(1)
    a, b = fp + fn, 2 * tp
    # dl/dp = ((1 - 2t) b - 2 t a) / (a + b)^2, per class, averaged over the 3 classes
    den = (a + b)[:, None, :]
    want = ((1 - 2 * td) * b[:, None, :] - 2 * td * a[:, None, :]) / den**2 / 3
    np.testing.assert_allclose(np.asarray(g, np.float64), want, rtol=1e-5)


def test_class_balanced_weighted_mean_is_torchs_with_ignore_index():
    """The docstring's recipe for torch's weighted 'mean' (ignored positions masked in the
    denominator) against torch's formula written in NumPy float64: sum over kept rows of
    w[y]·(−log softmax(z)[y]) / sum over kept rows of w[y]."""
    rng = np.random.default_rng(7)
    counts = np.array([50.0, 10.0, 3.0, 1.0])
    beta = 0.99
    z = rng.normal(size=(9, 4))
    y = np.array([0, 1, 2, 3, -100, 1, 0, -100, 2])
    eff = (1 - beta) / (1 - beta**counts)
    w = eff / eff.sum() * counts.size
    valid = y != -100
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    yy = np.where(valid, y, 0)
    want = np.sum(np.where(valid, -w[yy] * log_p[np.arange(9), yy], 0)) / np.sum(w[yy][valid])

    values = jaxloss.class_balanced_cross_entropy(
        jnp.asarray(z), jnp.asarray(y), samples_per_class=jnp.asarray(counts), beta=beta,
        ignore_index=-100)
    wj = jnp.asarray(w)[jnp.asarray(y)]
    got = jaxloss.sum(values) / jaxloss.sum(wj, where=jnp.asarray(valid))
    np.testing.assert_allclose(float(got), want, rtol=1e-12)
