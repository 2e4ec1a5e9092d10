"""Overlap (segmentation) losses and the Jensen–Shannon divergence: special cases, limits,
properties and the known optax bugs (jit with probabilities, vmap transparency).

References are NumPy float64 (or scipy) written from the formulas, never jaxloss itself.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from jaxloss._divergence import jensen_shannon_divergence as js
from jaxloss._overlap import (
    dice_loss,
    focal_tversky_loss,
    generalized_dice_loss,
    jaccard_loss,
    tversky_loss,
)

OVERLAP = [dice_loss, jaccard_loss, tversky_loss, focal_tversky_loss, generalized_dice_loss]
AVERAGED = [dice_loss, jaccard_loss, tversky_loss, focal_tversky_loss]
AVERAGES = ["macro", "micro", "none"]
SETTINGS = settings(max_examples=25, deadline=None)


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _seg(seed=0, shape=(2, 4, 5, 3)):
    """Softmax probabilities and one-hot targets, [B, H, W, C]."""
    rng = np.random.default_rng(seed)
    p = _softmax(rng.normal(scale=1.5, size=shape))
    t = np.eye(shape[-1])[rng.integers(0, shape[-1], size=shape[:-1])]
    return p, t


def _soft(seed=0, shape=(2, 6, 3)):
    rng = np.random.default_rng(seed)
    return rng.uniform(size=shape), rng.uniform(size=shape)


# ----------------------------------------------------------------------------------------------
# optax's known bugs, as regressions for jaxloss


def test_jit_with_probabilities_works_and_matches_optax_eager_value():
    optax = pytest.importorskip("optax")
    p, t = _seg()
    f = jax.jit(functools.partial(dice_loss, num_spatial_dims=2, smooth=1.0))
    got = f(p, t)
    assert got.shape == (2,)
    np.testing.assert_allclose(got, dice_loss(p, t, num_spatial_dims=2), rtol=1e-14)
    # optax computes the same quantity eagerly (its smoothing convention is ours); optax 0.2.5,
    # the oldest jaxloss allows, has no dice_loss to compare with.
    if hasattr(optax.losses, "dice_loss"):
        want = optax.losses.dice_loss(jnp.asarray(p), jnp.asarray(t), apply_softmax=False,
                                      axis=(1, 2))
        np.testing.assert_allclose(got, want, rtol=1e-12)
    # Probabilities that do not sum to one (sigmoid, multi-label) are also fine under jit.
    np.testing.assert_allclose(f(0.5 * p, t), dice_loss(0.5 * p, t, num_spatial_dims=2),
                               rtol=1e-14)


def test_optax_dice_is_not_vmap_transparent_but_jaxloss_is():
    optax = pytest.importorskip("optax")
    p, t = _seg()  # (2, 4, 5, 3)
    # optax's default axis assumes a leading batch axis, so vmap changes the result's shape
    # (optax 0.2.5 has no dice_loss).
    if hasattr(optax.losses, "dice_loss"):
        assert jax.vmap(optax.losses.dice_loss)(p, t).shape == (2, 4)
    for loss in OVERLAP:
        batched = loss(p, t, num_spatial_dims=2)
        vmapped = jax.vmap(functools.partial(loss, num_spatial_dims=2))(p, t)
        assert batched.shape == vmapped.shape == (2,)
        np.testing.assert_allclose(vmapped, batched, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(loss(p[1], t[1], num_spatial_dims=2), batched[1],
                                   rtol=1e-14)


@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize("loss", AVERAGED, ids=lambda f: f.__name__)
def test_nested_vmap_over_two_leading_axes_equals_batched_call(loss, average):
    p, t = _seg(1, shape=(2, 3, 4, 5, 3))  # [B1, B2, H, W, C]
    f = functools.partial(loss, num_spatial_dims=2, average=average)
    batched = f(p, t)
    assert batched.shape == ((2, 3, 3) if average == "none" else (2, 3))
    np.testing.assert_allclose(jax.vmap(jax.vmap(f))(p, t), batched, rtol=1e-14, atol=1e-15)


# ----------------------------------------------------------------------------------------------
# Exact special cases


@pytest.mark.parametrize("smooth", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("average", AVERAGES)
def test_tversky_half_half_is_dice_and_one_one_is_jaccard(average, smooth):
    p, t = _soft(2)
    kw = {"num_spatial_dims": 1, "average": average, "smooth": smooth}
    np.testing.assert_allclose(tversky_loss(p, t, alpha=0.5, beta=0.5, **kw),
                               dice_loss(p, t, **kw), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(tversky_loss(p, t, alpha=1.0, beta=1.0, **kw),
                               jaccard_loss(p, t, **kw), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("average", ["micro", "none"])
def test_dice_and_jaccard_satisfy_d_equals_2j_over_1_plus_j_at_smooth_0(average):
    p, t = _seg(3)
    kw = {"num_spatial_dims": 2, "average": average, "smooth": 0.0}
    d = 1 - np.asarray(dice_loss(p, t, **kw))
    j = 1 - np.asarray(jaccard_loss(p, t, **kw))
    np.testing.assert_allclose(d, 2 * j / (1 + j), rtol=1e-13)
    assert np.all(j < d)  # (strict for 0 < J < 1)


@pytest.mark.parametrize("average", AVERAGES)
def test_focal_tversky_with_gamma_1_is_tversky(average):
    p, t = _soft(4)
    kw = {"num_spatial_dims": 1, "average": average, "alpha": 0.4, "beta": 0.8}
    np.testing.assert_allclose(focal_tversky_loss(p, t, gamma=1.0, **kw),
                               tversky_loss(p, t, **kw), rtol=1e-14)


def test_focal_tversky_is_a_power_of_the_per_class_tversky_loss():
    p, t = _soft(5)
    per_class = np.asarray(tversky_loss(p, t, num_spatial_dims=1, average="none"))
    got = focal_tversky_loss(p, t, num_spatial_dims=1, gamma=0.75)
    np.testing.assert_allclose(got, np.mean(per_class**0.75, -1), rtol=1e-13)


def test_dice_numbers_from_the_formula():
    # One example, two pixels, two classes: D_0 = 1.8/2.1, D_1 = 1.6/1.9 at s = 0;
    # D_0 = 3.8/4.1, D_1 = 3.6/3.9 at s = 1 (2 TP + 2 s over P + T + 2 s).
    p = np.array([[[0.9, 0.1], [0.2, 0.8]]])
    t = np.array([[[1.0, 0.0], [0.0, 1.0]]])
    np.testing.assert_allclose(dice_loss(p, t, num_spatial_dims=1, smooth=0.0, average="none"),
                               [[1 - 1.8 / 2.1, 1 - 1.6 / 1.9]], rtol=1e-14)
    np.testing.assert_allclose(dice_loss(p, t, num_spatial_dims=1),
                               [1 - (3.8 / 4.1 + 3.6 / 3.9) / 2], rtol=1e-14)
    np.testing.assert_allclose(dice_loss(p, t, num_spatial_dims=1, average="micro"),
                               [1 - (2 * 1.7 + 2) / (4.0 + 2)], rtol=1e-14)  # pooled


def test_micro_dice_of_softmax_and_one_hot_is_soft_pixel_accuracy():
    p, t = _seg(6)
    got = dice_loss(p, t, num_spatial_dims=2, average="micro", smooth=0.0)
    accuracy = np.sum(p * t, axis=(1, 2, 3)) / (4 * 5)
    np.testing.assert_allclose(got, 1 - accuracy, rtol=1e-13)


def test_generalized_dice_with_one_class_is_dice():
    p, t = _soft(7, shape=(3, 8, 1))
    for s in (0.0, 0.5, 1.0):
        np.testing.assert_allclose(generalized_dice_loss(p, t, num_spatial_dims=1, smooth=s),
                                   dice_loss(p, t, num_spatial_dims=1, smooth=s), rtol=1e-13)


def test_generalized_dice_at_smooth_0_is_sudres_unnormalised_formula():
    p, t = _seg(8)
    tp, ps, ts = ((p * t).sum((1, 2)), p.sum((1, 2)), t.sum((1, 2)))
    assert np.all(ts > 0)
    w = 1 / ts**2
    want = 1 - 2 * np.sum(w * tp, -1) / np.sum(w * (ps + ts), -1)
    np.testing.assert_allclose(generalized_dice_loss(p, t, num_spatial_dims=2, smooth=0.0),
                               want, rtol=1e-13)


def test_generalized_dice_with_equal_class_sizes_is_micro_dice_at_smooth_0():
    t = np.tile(np.eye(3), (2, 2, 1))  # [B=2, N=6, C=3], two pixels per class
    p = _softmax(np.random.default_rng(9).normal(size=t.shape))
    np.testing.assert_allclose(
        generalized_dice_loss(p, t, num_spatial_dims=1, smooth=0.0),
        dice_loss(p, t, num_spatial_dims=1, smooth=0.0, average="micro"), rtol=1e-13)


def test_generalized_dice_absent_class_gets_the_rarest_present_class_weight():
    # Class 2 absent from the targets; classes 0 and 1 have 3 and 1 pixels: weights 1/9, 1, and
    # the absent class gets the largest, 1 (before normalisation; at s = 0 it does not matter).
    t = np.array([[[1.0, 0, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0]]])
    p = np.array([[[0.7, 0.1, 0.2], [0.5, 0.2, 0.3], [0.6, 0.3, 0.1], [0.1, 0.6, 0.3]]])
    tp, ps, ts = (p * t).sum(1), p.sum(1), t.sum(1)
    w = np.array([1 / 9, 1.0, 1.0])
    want = 1 - 2 * np.sum(w * tp, -1) / np.sum(w * (ps + ts), -1)
    got = generalized_dice_loss(p, t, num_spatial_dims=1, smooth=0.0)
    np.testing.assert_allclose(got, want, rtol=1e-13)
    # More predicted mass on the absent class is a worse prediction.
    q = p.copy()
    q[..., 0] -= 0.05
    q[..., 2] += 0.05
    assert generalized_dice_loss(q, t, num_spatial_dims=1, smooth=0.0)[0] > got[0]


def test_generalized_dice_with_no_target_mass_is_finite_equal_weight_dice():
    p = _softmax(np.random.default_rng(10).normal(size=(1, 5, 3)))
    t = np.zeros_like(p)
    got = generalized_dice_loss(p, t, num_spatial_dims=1)
    np.testing.assert_allclose(got, 1 - 2 / (p.sum() / 3 + 2), rtol=1e-13)
    g = jax.grad(lambda a, b: generalized_dice_loss(a, b, num_spatial_dims=1).sum(),
                 argnums=(0, 1))(p, t)
    assert all(np.all(np.isfinite(x)) for x in g)


# ----------------------------------------------------------------------------------------------
# Limits: perfect prediction, empty classes


@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize("loss", OVERLAP, ids=lambda f: f.__name__)
def test_perfect_prediction_gives_zero_loss(loss, average):
    _, t = _seg(11)
    t[0, ..., 2] = 0.0  # class 2 absent from example 0 (and from its prediction)
    t[0, ..., 0] = 1 - t[0, ..., 1]
    kw = {} if loss is generalized_dice_loss else {"average": average}
    for smooth in (1.0, 1e-3):
        got = loss(t, t, num_spatial_dims=2, smooth=smooth, **kw)
        np.testing.assert_allclose(got, np.zeros_like(got), atol=1e-15)


@pytest.mark.parametrize("loss", OVERLAP, ids=lambda f: f.__name__)
@pytest.mark.parametrize("smooth", [0.0, 1.0])
def test_gradients_finite_when_a_class_is_absent_from_prediction_and_target(loss, smooth):
    p, t = _seg(12)
    p[..., 2] = 0.0
    p[..., 0] += 1e-3  # keep the other classes' counts away from zero
    t[..., 0] += t[..., 2]
    t[..., 2] = 0.0
    f = jax.jit(lambda a, b: jnp.sum(loss(a, b, num_spatial_dims=2, smooth=smooth)))
    v = f(p, t)
    gp, gt = jax.grad(f, argnums=(0, 1))(p, t)
    assert np.isfinite(v) and np.all(np.isfinite(gp)) and np.all(np.isfinite(gt))


def test_empty_class_gradient_closed_form():
    # T_c = P_c = 0: D_c = 2s / (P_c + 2s) = 1 and dl_c/dp = 2s / (2s)² = 1/(2s) at every pixel.
    # At s = 0 the 0/0 score is 1 with a zero gradient.
    p, t = _seg(13)
    p[..., 2], t[..., 2] = 0.0, 0.0

    def per_class(a, s):
        return dice_loss(a, t, num_spatial_dims=2, smooth=s, average="none")[..., 2].sum()

    for s, want in ((1.0, 0.5), (0.25, 2.0), (0.0, 0.0)):
        assert float(per_class(p, s)) == 0.0
        np.testing.assert_allclose(jax.grad(per_class)(p, s)[..., 2], want, rtol=1e-14)


def test_focal_tversky_gradient_is_zero_at_a_perfect_prediction_and_finite_near_it():
    _, t = _seg(14)
    f = jax.grad(lambda a: jnp.sum(focal_tversky_loss(a, t, num_spatial_dims=2)))
    np.testing.assert_array_equal(f(t), np.zeros_like(t))
    near = np.clip(t, 1e-6, 1 - 1e-6).astype(np.float32)
    assert np.all(np.isfinite(f(near)))
    g = jax.grad(lambda gm: jnp.sum(focal_tversky_loss(t, t, num_spatial_dims=2, gamma=gm)))(0.5)
    assert float(g) == 0.0


def test_empty_target_and_prediction_at_smooth_0_is_a_perfect_score_without_nan():
    z = np.zeros((2, 4, 3))
    for loss in OVERLAP:
        v, g = jax.value_and_grad(
            lambda a, loss=loss: jnp.sum(loss(a, z, num_spatial_dims=1, smooth=0.0)))(z)
        assert float(v) == 0.0
        np.testing.assert_array_equal(g, np.zeros_like(z))


# ----------------------------------------------------------------------------------------------
# Properties


_unit = st.floats(0.0, 1.0, allow_nan=False)
_arrays = st.lists(st.tuples(_unit, _unit), min_size=8, max_size=8)


@functools.cache
def _jitted(loss, average):
    """The loss with all hyperparameters traced (one compilation per loss and average)."""
    kw = {} if loss is generalized_dice_loss else {"average": average}
    if loss is tversky_loss:
        kw_fn = lambda a, b, g: {"alpha": a, "beta": b}  # noqa: E731
    elif loss is focal_tversky_loss:
        kw_fn = lambda a, b, g: {"alpha": a, "beta": b, "gamma": g}  # noqa: E731
    else:
        kw_fn = lambda a, b, g: {}  # noqa: E731
    return jax.jit(lambda p, t, s, a, b, g: loss(p, t, num_spatial_dims=1, smooth=s, **kw,
                                                 **kw_fn(a, b, g)))


@SETTINGS
@given(pairs=_arrays, s=st.floats(0.0, 2.0), a=st.floats(0.0, 2.0), b=st.floats(0.0, 2.0),
       g=st.floats(0.2, 3.0), average=st.sampled_from(AVERAGES))
def test_values_lie_in_0_1_for_probabilities_and_targets_in_0_1(pairs, s, a, b, g, average):
    x = np.array(pairs).reshape(2, 2, 2, 2)  # [B, N, C, (p, t)]
    p, t = x[..., 0], x[..., 1]
    for loss in OVERLAP:
        v = np.asarray(_jitted(loss, average)(p, t, s, a, b, g))
        assert np.all(np.isfinite(v))
        assert np.all(v >= -1e-12) and np.all(v <= 1 + 1e-12), (loss.__name__, v)


@functools.cache
def _dice_macro_jit():
    return jax.jit(functools.partial(dice_loss, num_spatial_dims=1))


@SETTINGS
@given(pairs=_arrays, pixel=st.integers(0, 7), shift=st.floats(0.01, 1.0))
def test_moving_mass_onto_the_target_class_lowers_the_dice_loss(pairs, pixel, shift):
    x = np.array(pairs)  # [8 pixels, (p_0, label draw)]
    p = np.stack([x[:, 0], 1 - x[:, 0]], -1)[None]  # [1, 8, 2]
    labels = (x[:, 1] > 0.5).astype(int)
    labels[pixel] = 0  # the moved pixel belongs to class 0
    t = np.eye(2)[labels][None]
    d = min(shift, p[0, pixel, 1])
    assume(d > 1e-6)
    q = p.copy()
    q[0, pixel] += [d, -d]
    f = _dice_macro_jit()
    assert float(f(q, t)[0]) < float(f(p, t)[0])


# ----------------------------------------------------------------------------------------------
# Validation


def test_validation_messages():
    p, t = _soft(15)
    with pytest.raises(TypeError, match="num_spatial_dims"):
        dice_loss(p, t)  # type: ignore[call-arg]  # required: no default that could mislead
    with pytest.raises(TypeError, match=r"jaxloss\.dice_loss: `num_spatial_dims` must be an int"):
        dice_loss(p, t, num_spatial_dims=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"jaxloss\.jaccard_loss: `num_spatial_dims` must be in"):
        jaccard_loss(p, t, num_spatial_dims=3)
    with pytest.raises(ValueError, match=r"`num_spatial_dims` must be in"):
        tversky_loss(p, t, num_spatial_dims=-1)
    with pytest.raises(ValueError, match=r"jaxloss\.dice_loss: `average` must be one of"):
        dice_loss(p, t, num_spatial_dims=1, average="mean")
    with pytest.raises(ValueError, match=r"jaxloss\.dice_loss: `smooth` must be finite and >= 0"):
        dice_loss(p, t, num_spatial_dims=1, smooth=-1.0)
    with pytest.raises(ValueError, match=r"jaxloss\.tversky_loss: `alpha`"):
        tversky_loss(p, t, num_spatial_dims=1, alpha=-0.1)
    with pytest.raises(ValueError, match=r"jaxloss\.focal_tversky_loss: `gamma`.*> 0"):
        focal_tversky_loss(p, t, num_spatial_dims=1, gamma=0.0)
    with pytest.raises(ValueError, match=r"`probabilities` and `targets` must have the same"):
        generalized_dice_loss(p, t[..., None], num_spatial_dims=1)


def test_traced_hyperparameters_are_used_and_differentiable():
    p, t = _soft(16)

    def f(alpha, beta, smooth):
        return jnp.sum(tversky_loss(p, t, num_spatial_dims=1, alpha=alpha, beta=beta,
                                    smooth=smooth))

    args = (0.3, 0.7, 0.5)
    g = jax.jit(jax.grad(f, argnums=(0, 1, 2)))(*args)
    eps = 1e-6
    for i in range(3):
        up = list(args)
        dn = list(args)
        up[i] += eps
        dn[i] -= eps
        np.testing.assert_allclose(g[i], (f(*up) - f(*dn)) / (2 * eps), rtol=1e-6)


def test_bool_and_int_targets_are_accepted():
    p, t = _seg(17)
    want = dice_loss(p, t, num_spatial_dims=2)
    np.testing.assert_allclose(dice_loss(p, t.astype(bool), num_spatial_dims=2), want)
    np.testing.assert_allclose(dice_loss(p, t.astype(np.int32), num_spatial_dims=2), want)


# ----------------------------------------------------------------------------------------------
# Jensen–Shannon

_dist = st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4).filter(lambda v: sum(v) > 1e-3)


@functools.cache
def _js_jit():
    return jax.jit(lambda p, q: (js(p, q), js(q, p)))


@SETTINGS
@given(a=_dist, b=_dist, zero=st.integers(-1, 3))
def test_js_is_symmetric_nonnegative_and_bounded_by_log2(a, b, zero):
    p = np.array(a)
    q = np.array(b)
    if zero >= 0:  # an exact zero in p (and, for even indices, also in q)
        p[zero] = 0.0
        q[zero] = 0.0 if zero % 2 == 0 else q[zero]
    assume(p.sum() > 1e-3 and q.sum() > 1e-3)
    p, q = p / p.sum(), q / q.sum()
    pq, qp = (float(v) for v in _js_jit()(p, q))
    assert pq == pytest.approx(qp, abs=1e-15)
    assert -1e-15 <= pq <= np.log(2) + 1e-15
    scipy_distance = pytest.importorskip("scipy.spatial.distance")
    assert pq == pytest.approx(scipy_distance.jensenshannon(p, q) ** 2, abs=1e-12)


def test_js_is_log2_for_disjoint_supports_and_zero_for_equal_inputs():
    p = np.array([[0.5, 0.5, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    q = np.array([[0.0, 0.0, 0.3, 0.7], [0.25, 0.25, 0.25, 0.25]])
    np.testing.assert_allclose(js(p, q), [np.log(2), 0.0], rtol=1e-15, atol=1e-16)


def test_js_gradient_at_zero_probabilities_follows_the_documented_convention():
    # p_c > 0: ½ log(p_c/m_c).  p_c = 0 < q_c: ½(log 2 - 1 - log q_c).  p_c = q_c = 0: 0.
    p = np.array([0.6, 0.0, 0.4, 0.0])
    q = np.array([0.2, 0.8, 0.0, 0.0])
    gp, gq = jax.grad(lambda a, b: js(a, b), argnums=(0, 1))(p, q)
    m = (p + q) / 2
    np.testing.assert_allclose(
        gp, [0.5 * np.log(0.6 / m[0]), 0.5 * (np.log(2) - 1 - np.log(0.8)),
             0.5 * np.log(0.4 / m[2]), 0.0], rtol=1e-14)
    np.testing.assert_allclose(
        gq, [0.5 * np.log(0.2 / m[0]), 0.5 * np.log(0.8 / m[1]),
             0.5 * (np.log(2) - 1 - np.log(0.4)), 0.0], rtol=1e-14)


def test_js_through_softmax_has_finite_exact_gradients_at_saturation():
    # Saturated softmax gives exact zeros; the conventions are multiplied by p_c = 0.
    z = jnp.array([[800.0, 0.0, -800.0], [0.0, 0.0, 0.0]], jnp.float32)
    q = jnp.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], jnp.float32)
    v, g = jax.value_and_grad(lambda a: jnp.sum(js(jax.nn.softmax(a), q)))(z)
    assert np.isfinite(float(v)) and np.all(np.isfinite(g))
    assert float(js(jax.nn.softmax(z), q)[0]) == pytest.approx(np.log(2), rel=1e-6)


def test_js_float32_and_bfloat16_in_give_float32_out():
    p = jnp.array([0.5, 0.5, 0.0], jnp.bfloat16)
    q = jnp.array([0.0, 0.5, 0.5], jnp.bfloat16)
    assert js(p, q).dtype == jnp.float32
    assert js(p.astype(jnp.float32), q.astype(jnp.float32)).dtype == jnp.float32
    np.testing.assert_allclose(float(js(p, q)), 0.5 * np.log(2), rtol=1e-6)
