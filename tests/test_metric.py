"""Margin, ranking and metric-learning losses: kinks, validation, properties, special cases and the
known bugs of other libraries (optax's triplet p-norm without abs, NaN cosine gradients at 0).

References here are NumPy, written from the papers' formulas; the session runs in float64.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

import jaxloss
from jaxloss import (
    contrastive_loss,
    cosine_embedding_loss,
    hinge_loss,
    info_nce_loss,
    margin_ranking_loss,
    multiclass_hinge_loss,
    siglip_loss,
    squared_hinge_loss,
    supervised_contrastive_loss,
    triplet_margin_loss,
)
from tests.cases import contrastive as creg
from tests.cases import margin as reg

SETTINGS = settings(max_examples=25, deadline=None)
# No subnormals: XLA:CPU flushes them to zero, which is the platform's arithmetic, not the loss's.
def _f(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_subnormal=False, width=64)


floats = _f(-5.0, 5.0)
signs = st.sampled_from([-1.0, 1.0])


def _a(x, dtype=jnp.float64):
    return jnp.asarray(x, dtype)


def _vg(f, argnums=0):
    """jit of (values, gradient of their sum): one compile instead of op-by-op eager compiles."""
    return jax.jit(lambda *a: (f(*a), jax.grad(lambda *a: jnp.sum(f(*a)), argnums)(*a)))


def _finite_tree(tree):
    return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree_util.tree_leaves(tree))


# --------------------------------------------------------------------------------------------
# Kinks: the term counts as active at the kink (torch's clamp_min convention)


def test_hinge_kink_value_zero_gradient_active():
    for y in (1.0, -1.0):
        x = _a(y * 1.0)  # y·x = margin = 1
        assert float(hinge_loss(x, _a(y))) == 0.0
        assert float(jax.grad(lambda x, y=y: hinge_loss(x, _a(y)))(x)) == -y
    # Just past the kink the gradient is 0.
    assert float(jax.grad(lambda x: hinge_loss(x, _a(1.0)))(_a(1.0 + 1e-9))) == 0.0


def test_squared_hinge_kink_gradient_is_zero_and_continuous():
    g = jax.grad(lambda x: squared_hinge_loss(x, _a(1.0), margin=2.0))
    assert float(g(_a(2.0))) == 0.0
    assert float(g(_a(2.0 - 1e-6))) == pytest.approx(-2e-6, rel=1e-6)


def test_margin_ranking_tie_with_zero_margin_still_trains():
    x1, x2, y = _a([0.0, 2.0]), _a([0.0, 2.0]), _a([1.0, -1.0])
    assert margin_ranking_loss(x1, x2, y).tolist() == [0.0, 0.0]
    g1, g2 = jax.grad(lambda a, b: jnp.sum(margin_ranking_loss(a, b, y)), argnums=(0, 1))(x1, x2)
    assert g1.tolist() == [-1.0, 1.0] and g2.tolist() == [1.0, -1.0]


def test_multiclass_hinge_kinks():
    # Crammer–Singer at the kink: z_y - max_{c≠y} z_c = margin exactly -> 0, gradient e_c* - e_y.
    y = jnp.array([0])
    cs = _vg(lambda z: multiclass_hinge_loss(z, y))
    ww = _vg(lambda z: multiclass_hinge_loss(z, y, kind="weston_watkins"))
    v, g = cs(_a([[3.0, 2.0, 0.0]]))
    assert v.tolist() == [0.0] and g.tolist() == [[-1.0, 1.0, 0.0]]
    # Weston–Watkins: two classes exactly at the kink, both active.
    v, g = ww(_a([[3.0, 2.0, 2.0]]))
    assert v.tolist() == [0.0] and g.tolist() == [[-2.0, 1.0, 1.0]]
    # Crammer–Singer: two classes tied for the largest violation share the gradient.
    v, g = cs(_a([[0.0, 2.0, 2.0]]))
    assert v.tolist() == [3.0] and g.tolist() == [[-1.0, 0.5, 0.5]]


def test_crammer_singer_single_class_has_no_violation():
    # One class: max over c ≠ y is over no class, -inf, so the loss is 0 with a zero gradient
    # whatever z_y and m, -inf and a traced m = inf included (not -inf - (-inf) = NaN); a NaN
    # score is still NaN, value and gradient, and leaves the other example unchanged.
    z, y = _a([[-np.inf], [np.inf], [2.0], [np.nan]]), jnp.array([0, 0, 0, 0])
    for m in (1.0, np.inf):
        v, (gz, gm) = _vg(lambda z, m: multiclass_hinge_loss(z, y, margin=m), (0, 1))(z, _a(m))
        np.testing.assert_array_equal(v, [0.0, 0.0, 0.0, np.nan])
        np.testing.assert_array_equal(gz, [[0.0], [0.0], [0.0], [np.nan]])
        assert np.isnan(float(gm))  # the NaN example's dm
        gm = jax.grad(lambda m: jnp.sum(multiclass_hinge_loss(z[:3], y[:3], margin=m)))(_a(m))
        assert float(gm) == 0.0
    t = jax.jvp(lambda z: multiclass_hinge_loss(z, y), (z,), (jnp.ones_like(z),))[1]
    np.testing.assert_array_equal(t, [0.0, 0.0, 0.0, np.nan])
    np.testing.assert_array_equal(jax.vmap(multiclass_hinge_loss)(z, y), [0.0, 0.0, 0.0, np.nan])


def test_crammer_singer_nan_margin_and_ties_of_scores():
    # A traced NaN margin is NaN, value and gradient, at 3 and at 8192 classes (a fused max over
    # the violations dropped it there: the value was 0).
    for c in (3, 8192):
        z = jnp.asarray(np.random.default_rng(c).standard_normal((2, c)), jnp.float32)
        y = jnp.array([0, 1])
        v, (gz, gm) = _vg(lambda z, m, y=y: multiclass_hinge_loss(z, y, margin=m), (0, 1))(
            z, jnp.float32(np.nan))
        assert np.isnan(np.asarray(v)).all() and np.isnan(np.asarray(gz)).all()
        assert np.isnan(float(gm))
    # Ties are those of the scores: with z_y = -inf every violation is +inf, but only the
    # largest other score gets the gradient (d/dz of max_{c≠y} z_c + m - z_y); equal scores
    # still share it. Another -inf score is not the max and does not make it NaN
    # (-inf - (-inf) in its own violation made the value NaN).
    v, g = _vg(lambda z: multiclass_hinge_loss(z, jnp.array([0, 0, 0])))(
        _a([[-np.inf, 0.0, 1.0], [-np.inf, 1.0, 1.0], [-np.inf, -np.inf, 1.0]]))
    assert v.tolist() == [np.inf] * 3
    assert g.tolist() == [[-1.0, 0.0, 1.0], [-1.0, 0.5, 0.5], [-1.0, 0.0, 1.0]]



@pytest.mark.parametrize("dtype", [jnp.uint8, jnp.int8, jnp.int16])
def test_narrow_integer_labels_with_more_classes_than_they_hold(dtype):
    # 300 classes: C and ignore_index = -100 do not fit in 8 bits (-100 is 156 as uint8), and a
    # class iota in the labels' dtype wraps (class 256 is class 0). The labels' values fit.
    z = np.zeros((2, 300))
    z[0, 256] = 5.0
    labels = np.array([0, 44])
    for kind, expected in (("crammer_singer", [6.0, 1.0]), ("weston_watkins", [304.0, 299.0])):
        for fn in (multiclass_hinge_loss, jax.jit(multiclass_hinge_loss, static_argnames="kind")):
            got = fn(_a(z), jnp.asarray(labels, dtype), kind=kind)
            assert got.tolist() == expected, (kind, fn)
    if dtype == jnp.uint8:  # 156 is a class, not the ignored -100
        f = jax.jit(lambda z, y: multiclass_hinge_loss(z, y, ignore_index=-100))
        assert f(_a(z), jnp.asarray([156, 44], dtype)).tolist() == [6.0, 1.0]
        ce = jaxloss.softmax_cross_entropy_with_integer_labels
        want = ce(_a(z), jnp.asarray([156, 44]))
        y = jnp.asarray([156, 44], dtype)
        got = jax.jit(lambda z, y: ce(z, y, ignore_index=-100))(_a(z), y)
        np.testing.assert_allclose(got, want, rtol=1e-15)


def test_triplet_and_cosine_kinks_active():
    a, p, n = _a([[0.0, 0.0]]), _a([[3.0, 0.0]]), _a([[4.0, 0.0]])  # d_ap - d_an + 1 = 0
    v, (ga, gp) = _vg(triplet_margin_loss, argnums=(0, 1))(a, p, n)
    assert v.tolist() == [0.0]
    np.testing.assert_allclose(ga, [[0.0, 0.0]], atol=0)  # g(a-p) - g(a-n) = (-1,0) - (-1,0)
    np.testing.assert_allclose(gp, [[1.0, 0.0]])  # active: -g(a - p) = (1, 0)
    x1, x2 = _a([[1.0, 0.0]]), _a([[0.6, 0.8]])  # cos = 0.6 = margin
    v, g = _vg(lambda x: cosine_embedding_loss(x, x2, _a([-1.0]), margin=0.6))(x1)
    assert v.tolist() == [0.0]
    np.testing.assert_allclose(g, [[0.0, 0.8]], atol=1e-15)  # dc/dx1 = u2 - c·u1


# --------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize("fn", [hinge_loss, squared_hinge_loss])
def test_sign_targets_validated(fn):
    x = _a([0.5, -0.5])
    with pytest.raises(ValueError, match=rf"jaxloss\.{fn.__name__}: `targets` must hold only -1 "
                                         r"and 1; got \[0\.0\]\. For \{0, 1\} labels pass"):
        fn(x, _a([1.0, 0.0]))
    out = jax.jit(fn)(x, _a([1.0, 0.0]))  # traced: NaN marks the bad target, not a silent 1.0
    assert float(out[0]) == 0.5 if fn is hinge_loss else float(out[0]) == 0.25
    assert bool(jnp.isnan(out[1]))


def test_pair_targets_validated():
    x = _a([[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError,
                       match=r"jaxloss\.contrastive_loss: `targets` must hold only 0 and 1"):
        contrastive_loss(x, x, _a([1.0, -1.0]))
    assert bool(jnp.isnan(jax.jit(contrastive_loss)(x, x, _a([1.0, -1.0]))[1]))
    assert contrastive_loss(x, x, jnp.array([True, False]), margin=1.0).tolist() == [0.0, 0.5]
    with pytest.raises(ValueError,
                       match=r"jaxloss\.cosine_embedding_loss: `targets` must hold only"):
        cosine_embedding_loss(x, x, _a([1.0, 0.0]))
    with pytest.raises(ValueError, match=r"jaxloss\.margin_ranking_loss: `targets` must hold only"):
        margin_ranking_loss(x[0], x[1], _a([1.0, 0.0]))
    with pytest.raises(ValueError, match=r"`targets` must have the shape of `embeddings_1` "
                                         r"without its last \(feature\) axis, \(2,\)"):
        cosine_embedding_loss(x, x, _a([1.0, 1.0, 1.0]))


def test_info_nce_requires_exactly_one_positive():
    e = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)))
    with pytest.raises(ValueError, match=r"jaxloss\.info_nce_loss: `labels` must give every anchor "
                                         r"exactly one positive .* \[0, 2\] positives"):
        info_nce_loss(e, jnp.array([0, 0, 0, 1]))
    out = jax.jit(info_nce_loss)(e, jnp.array([0, 0, 0, 1]))
    assert bool(jnp.all(jnp.isnan(out)))
    out = jax.jit(info_nce_loss)(e, jnp.array([5, 5, 7, 7]))  # arbitrary identity values are fine
    assert _finite_tree(out)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: hinge_loss(_a(1.0), _a(1.0), margin=-1.0),
         r"hinge_loss: `margin` must be finite and >= 0"),
        (lambda: multiclass_hinge_loss(_a([[1.0, 2.0]]), jnp.array([0]), kind="ww"),
         r"multiclass_hinge_loss: `kind` must be one of"),
        (lambda: multiclass_hinge_loss(_a([[1.0, 2.0]]), jnp.array([2])),
         r"multiclass_hinge_loss: `labels` must be class indices in \[0, 2\)"),
        (lambda: cosine_embedding_loss(_a([[1.0]]), _a([[1.0]]), _a([1.0]), margin=1.5),
         r"cosine_embedding_loss: `margin` must be finite and in \[-1, 1\]"),
        (lambda: triplet_margin_loss(_a([[1.0]]), _a([[1.0]]), _a([[1.0]]), p=0.5),
         r"triplet_margin_loss: `p` must be finite and >= 1"),
        (lambda: triplet_margin_loss(_a([[1.0]]), _a([[1.0]]), _a([[1.0, 2.0]])),
         r"triplet_margin_loss: `anchors` and `negatives` must have the same shape"),
        (lambda: contrastive_loss(_a([[1.0]]), _a([[1.0]]), _a([1.0]), margin=0.0),
         r"contrastive_loss: `margin` must be finite and > 0"),
        (lambda: info_nce_loss(_a([[1.0], [2.0]]), jnp.array([0, 0]), temperature=0.0),
         r"info_nce_loss: `temperature` must be finite and > 0"),
        (lambda: info_nce_loss(_a([1.0, 2.0]), jnp.array([0, 0])),
         r"info_nce_loss: `embeddings` must have at least 2 dimension"),
        (lambda: supervised_contrastive_loss(_a([[1.0], [2.0]]), _a([0.0, 0.0])),
         r"supervised_contrastive_loss: `labels` must hold integer"),
        (lambda: siglip_loss(_a([[1.0]]), _a([[1.0]]), logit_bias=float("inf")),
         r"siglip_loss: `logit_bias` must be finite"),
        (lambda: siglip_loss(_a([[1.0]]), _a([[1.0]]), logit_scale=-1.0),
         r"siglip_loss: `logit_scale` must be finite and > 0"),
    ],
)
def test_bad_arguments_name_function_and_argument(call, message):
    with pytest.raises((ValueError, TypeError), match=rf"jaxloss\.{message}"):
        call()


def test_traced_hyperparameters_are_learnable():
    rng = np.random.default_rng(1)
    e = jnp.asarray(rng.normal(size=(6, 3)))
    y = jnp.array([0, 0, 1, 1, 2, 2])
    g = jax.jit(jax.grad(lambda t: jnp.mean(info_nce_loss(e, y, temperature=t))))(0.3)
    assert np.isfinite(float(g)) and float(g) != 0.0
    g = jax.jit(jax.grad(
        lambda s, b: jnp.mean(siglip_loss(e, e[::-1], logit_scale=s, logit_bias=b)),
                         argnums=(0, 1)))(10.0, -10.0)
    assert _finite_tree(g) and all(float(x) != 0 for x in g)
    gm = jax.jit(jax.grad(
        lambda m: jnp.sum(hinge_loss(_a([0.5, 2.0]), _a([1.0, 1.0]), margin=m))))(1.0)
    assert float(gm) == 1.0  # only the first element is active


# --------------------------------------------------------------------------------------------
# Properties (hypothesis)


@SETTINGS
@given(x=floats, y=signs, m=_f(0.0, 3.0))
def test_hinge_properties(x, y, m):
    v = float(hinge_loss(_a(x), _a(y), margin=m))
    assert v >= 0
    assert (v == 0) == (y * x >= m)
    assert v == pytest.approx(max(0.0, m - y * x), abs=1e-15)
    assert float(squared_hinge_loss(_a(x), _a(y), margin=m)) == pytest.approx(v * v, abs=1e-14)
    # Non-increasing in the signed score y·x.
    assert float(hinge_loss(_a(x + 0.1 * y), _a(y), margin=m)) <= v


@SETTINGS
@given(x1=floats, x2=floats, y=signs, m=_f(0.0, 2.0))
def test_margin_ranking_is_hinge_on_the_difference(x1, x2, y, m):
    v = margin_ranking_loss(_a(x1), _a(x2), _a(y), margin=m)
    assert float(v) == float(hinge_loss(_a(x1) - _a(x2), _a(y), margin=m))
    assert float(v) == float(margin_ranking_loss(_a(x2), _a(x1), _a(-y), margin=m))


@SETTINGS
@given(z=st.lists(floats, min_size=4, max_size=4), label=st.integers(0, 3),
       shift=floats, m=_f(0.0, 2.0))
def test_multiclass_hinge_properties(z, label, shift, m):
    z, y = _a([z]), jnp.array([label])
    cs = float(multiclass_hinge_loss(z, y, margin=m)[0])
    ww = float(multiclass_hinge_loss(z, y, margin=m, kind="weston_watkins")[0])
    assert 0 <= cs <= ww + 1e-12 <= 3 * cs + 1e-12  # C - 1 = 3 violations at most
    assert float(multiclass_hinge_loss(z + shift, y, margin=m)[0]) == pytest.approx(cs, abs=1e-12)
    other = [c for c in range(4) if c != label]
    want = max(0.0, max(m + float(z[0, c]) - float(z[0, label]) for c in other))
    assert cs == pytest.approx(want, abs=1e-12)


@SETTINGS
@given(z0=floats, z1=floats, label=st.integers(0, 1), m=_f(0.0, 2.0))
def test_two_class_hinges_equal_the_binary_hinge(z0, z1, label, m):
    z, y = _a([[z0, z1]]), jnp.array([label])
    binary = hinge_loss(_a(z1 - z0), _a(2.0 * label - 1), margin=m)
    for kind in ("crammer_singer", "weston_watkins"):
        assert float(multiclass_hinge_loss(z, y, margin=m, kind=kind)[0]) == pytest.approx(
            float(binary), abs=1e-12)


vec3 = st.lists(floats, min_size=3, max_size=3)


@SETTINGS
@given(a=vec3, p=vec3, n=vec3, t=vec3, deg=st.sampled_from([1.0, 1.5, 2.0, 3.0, 7.0]),
       m=_f(0.0, 2.0))
def test_triplet_matches_true_pnorm_and_is_translation_invariant(a, p, n, t, deg, m):
    a, p, n, t = (np.array([v]) for v in (a, p, n, t))
    want = max(0.0, reg._pnorm(a - p, deg)[0] - reg._pnorm(a - n, deg)[0] + m)
    got = float(triplet_margin_loss(_a(a), _a(p), _a(n), p=deg, margin=m)[0])
    assert got == pytest.approx(want, rel=1e-12, abs=1e-12)
    moved = float(triplet_margin_loss(_a(a + t), _a(p + t), _a(n + t), p=deg, margin=m)[0])
    assert moved == pytest.approx(got, rel=1e-9, abs=1e-9)


@SETTINGS
@given(x1=vec3, x2=vec3, s=_f(0.01, 100.0), m=_f(-1.0, 1.0), y=signs)
def test_cosine_embedding_scale_invariant_and_bounded(x1, x2, s, m, y):
    x1, x2 = _a([x1]), _a([x2])
    if float(jnp.linalg.norm(x1)) < 1e-3:
        return
    v = float(cosine_embedding_loss(x1, x2, _a([y]), margin=m)[0])
    scaled = float(cosine_embedding_loss(s * x1, x2, _a([y]), margin=m)[0])
    assert scaled == pytest.approx(v, abs=1e-12)
    assert -1e-12 <= v <= (2 if y > 0 else 1 - m) + 1e-12


@SETTINGS
@given(x1=vec3, x2=vec3, m=_f(0.1, 3.0))
def test_contrastive_terms(x1, x2, m):
    x1, x2 = _a([x1]), _a([x2])
    d = float(np.linalg.norm(np.asarray(x1) - np.asarray(x2)))
    assert float(contrastive_loss(x1, x2, _a([1.0]), margin=m)[0]) == pytest.approx(0.5 * d * d)
    dis = float(contrastive_loss(x1, x2, _a([0.0]), margin=m)[0])
    assert dis == pytest.approx(0.5 * max(0.0, m - d) ** 2, abs=1e-12)
    if abs(d - m) > 1e-12:  # (at the boundary the norm may differ from NumPy's by an ulp)
        assert (dis == 0) == (d > m)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_info_nce_equivariance_and_scale_invariance(seed):
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(6, 3))
    y = rng.permutation([0, 0, 1, 1, 2, 2])
    v = np.asarray(_info_nce_jit(_a(e), jnp.asarray(y)))
    perm = rng.permutation(6)
    np.testing.assert_allclose(_info_nce_jit(_a(e[perm]), jnp.asarray(y[perm])), v[perm],
                               rtol=1e-12)
    scale = rng.uniform(0.1, 10.0, size=(6, 1))
    np.testing.assert_allclose(_info_nce_jit(_a(e * scale), jnp.asarray(y)), v, rtol=1e-12)
    assert np.all(v >= 0)


_info_nce_jit = jax.jit(lambda e, y: info_nce_loss(e, y, temperature=0.2))


def test_siglip_image_and_text_totals_agree():
    rng = np.random.default_rng(2)
    x, t = _a(rng.normal(size=(5, 3))), _a(rng.normal(size=(5, 3)))
    f = jax.jit(siglip_loss)
    a = float(jnp.sum(f(x, t, logit_scale=3.0, logit_bias=-1.0)))
    b = float(jnp.sum(f(t, x, logit_scale=3.0, logit_bias=-1.0)))
    assert a == pytest.approx(b, rel=1e-13)


# --------------------------------------------------------------------------------------------
# Known bugs of other libraries


def _true_triplet(a, p, n, deg, margin):
    dist = lambda u: np.sum(np.abs(u) ** deg) ** (1 / deg)  # noqa: E731
    return max(0.0, dist(a - p) - dist(a - n) + margin)


@pytest.mark.parametrize("deg", [1.0, 3.0])
@pytest.mark.parametrize("margin", [1.0, 3.0])
def test_triplet_uses_absolute_values_in_the_pnorm(deg, margin):
    """optax.triplet_margin_loss drops |.|: 5.0 for p = 1 (true: 0) and NaN for p = 3."""
    a, p, n = np.array([0.0, 0.0]), np.array([1.0, -1.0]), np.array([2.0, 2.0])
    want = _true_triplet(a, p, n, deg, margin)
    if margin == 1.0:
        assert want == 0.0
    got = triplet_margin_loss(_a([a]), _a([p]), _a([n]), p=deg, margin=margin)
    assert float(got[0]) == pytest.approx(want, rel=1e-14, abs=0)
    g = jax.grad(lambda x: jnp.sum(triplet_margin_loss(x, _a([p]), _a([n]), p=deg, margin=margin)))(
        _a([a]))
    assert _finite_tree(g)


def test_triplet_large_p_and_large_values_do_not_overflow():
    a = jnp.array([[1e4, -2e4, 3e3]], jnp.float32)
    p, n = jnp.zeros_like(a), 2 * a
    v = triplet_margin_loss(a, p, n, p=40.0, margin=0.5)
    want = _true_triplet(np.asarray(a[0], np.float64), np.zeros(3), 2 * np.asarray(a[0],
                         np.float64), 40.0, 0.5)
    assert v.dtype == jnp.float32 and float(v[0]) == pytest.approx(want, rel=1e-6)


def test_cosine_gradient_finite_at_zero_vectors():
    """optax.cosine_similarity gives NaN gradients at a zero vector; jaxloss does not."""
    vg = _vg(lambda a, b, t: cosine_embedding_loss(a, b, t, margin=0.1), argnums=(0, 1))
    z, o = jnp.zeros(3, jnp.float32), jnp.ones(3, jnp.float32)
    a, b = jnp.stack([z, o, z]), jnp.stack([o, z, z])  # zero vs nonzero, and zero vs zero
    for y in (1.0, -1.0):
        v, g = vg(a, b, jnp.full((3,), y, jnp.float32))
        np.testing.assert_array_equal(v, [1.0 if y > 0 else 0.0] * 3)
        assert _finite_tree(g)
    # At x1 = 0 the gradient of 1 - cos is -x̂2 / eps (the documented floor of the norm).
    _, g = _vg(lambda a: cosine_embedding_loss(a, _a([[3.0, 4.0]]), _a([1.0])))(jnp.zeros((1, 2)))
    np.testing.assert_allclose(g, [[-0.6e8, -0.8e8]], rtol=1e-12)


# --------------------------------------------------------------------------------------------
# Finite gradients at zero vectors and coincident points, every embedding loss


_ZERO_CASES = {
    "triplet": lambda x, z: triplet_margin_loss(x, x, x),
    "triplet-p1": lambda x, z: triplet_margin_loss(x, x, z, p=1.0),
    "triplet-swap": lambda x, z: triplet_margin_loss(x, z, x, swap=True),
    "contrastive_loss": lambda x, z: contrastive_loss(x, x, jnp.array([0, 1, 0, 1])),
    "contrastive-zero": lambda x, z: contrastive_loss(x, z, jnp.array([0, 1, 0, 1])),
    "cosine": lambda x, z: cosine_embedding_loss(x, z, jnp.array([1, -1, 1, -1])),
    "info_nce_loss": lambda x, z: info_nce_loss(x, jnp.array([0, 0, 1, 1])),
    "supcon": lambda x, z: supervised_contrastive_loss(x, jnp.array([0, 0, 0, 1])),
    "supcon-no-positive": lambda x, z: supervised_contrastive_loss(x, jnp.arange(4)),
    "siglip_loss": lambda x, z: siglip_loss(x, x[::-1]),
}


@jax.jit
def _zero_values_and_grads(x):
    z = jnp.zeros_like(x)
    return {k: jax.value_and_grad(lambda x, f=f: jnp.sum(f(x, z)))(x)
            for k, f in _ZERO_CASES.items()}


def test_zero_vectors_and_coincident_points_give_finite_values_and_gradients():
    dtype = jnp.float32  # the hard case; float64 has the same code path with more headroom
    z = jnp.zeros((4, 3), dtype)
    e = z.at[1:].set(jnp.asarray([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [-1.0, 0.0, 0.0]], dtype))
    for x in (z, e):
        for name, (value, grad) in _zero_values_and_grads(x).items():
            assert _finite_tree((value, grad)), name
            assert value.dtype == jnp.float32


# --------------------------------------------------------------------------------------------
# Contrastive losses on sets: the papers' formulas


def _simclr_numpy(z1, z2, tau):
    """SimCLR's NT-Xent for views z1, z2 [N, D], written as in the paper (Algorithm 1)."""
    z = np.concatenate([z1, z2])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    n2 = len(z)
    sim = z @ z.T
    out = np.zeros(n2)
    for i in range(n2):
        j = (i + n2 // 2) % n2
        denom = sum(np.exp(sim[i, k] / tau) for k in range(n2) if k != i)
        out[i] = -np.log(np.exp(sim[i, j] / tau) / denom)
    return out


def test_ntxent_equals_simclr_formula_with_the_i_plus_n_pairing():
    rng = np.random.default_rng(3)
    z1, z2 = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    labels = jnp.tile(jnp.arange(4), 2)
    got = jax.jit(info_nce_loss)(_a(np.concatenate([z1, z2])), labels, temperature=0.3)
    want = _simclr_numpy(z1, z2, 0.3)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # The mean is SimCLR's loss, and optax's scalar ntxent (one positive per anchor).
    import optax
    o = jax.jit(optax.ntxent)(_a(np.concatenate([z1, z2])), labels, temperature=0.3)
    assert float(jaxloss.mean(got)) == pytest.approx(float(o), rel=1e-6)


def _fd_grad(f, x, h=1e-6):
    """Central finite differences of a NumPy scalar function."""
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        g[idx] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def test_info_nce_two_views_is_simclr_nt_xent():
    """info_nce_loss(view_1, positives=view_2): SimCLR's 2N values in the order [view_1; view_2],
    value and gradient against the paper's formula (NumPy, finite differences for the
    gradient); leading axes are independent pairs of views."""
    rng = np.random.default_rng(31)
    z1, z2 = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    ct = rng.uniform(0.5, 2.0, size=8)
    got = jax.jit(lambda a, b: info_nce_loss(a, positives=b, temperature=0.4))(_a(z1), _a(z2))
    np.testing.assert_allclose(got, _simclr_numpy(z1, z2, 0.4), rtol=1e-12)
    g1, g2 = jax.jit(jax.grad(lambda a, b: jnp.sum(_a(ct) * info_nce_loss(a, positives=b,
                                                                      temperature=0.4)),
                              argnums=(0, 1)))(_a(z1), _a(z2))
    want1 = _fd_grad(lambda a: ct @ _simclr_numpy(a, z2, 0.4), z1)
    want2 = _fd_grad(lambda b: ct @ _simclr_numpy(z1, b, 0.4), z2)
    np.testing.assert_allclose(g1, want1, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(g2, want2, rtol=1e-6, atol=1e-8)
    # Leading axes: two independent pairs of views.
    w1, w2 = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 4, 3))
    batched = info_nce_loss(_a(w1), positives=_a(w2), temperature=0.4)
    assert batched.shape == (2, 8)
    for k in range(2):
        np.testing.assert_allclose(batched[k], _simclr_numpy(w1[k], w2[k], 0.4), rtol=1e-12)


def test_info_nce_two_views_and_labels_are_not_mixed():
    z = _a(np.eye(3))
    with pytest.raises(ValueError, match=r"jaxloss\.info_nce_loss: pass either `labels`"):
        info_nce_loss(z, jnp.arange(3), positives=z)
    with pytest.raises(TypeError, match=r"jaxloss\.info_nce_loss: pass `labels`"):
        info_nce_loss(z)
    with pytest.raises(ValueError, match=r"`embeddings` and `positives` must have the same shape"):
        info_nce_loss(z, positives=_a(np.eye(4, 3)))
    with pytest.raises(TypeError, match=r"`positives` must have a floating dtype"):
        info_nce_loss(z, positives=jnp.ones((3, 3), jnp.int32))


def test_supcon_with_one_positive_per_anchor_is_info_nce():
    """|P(i)| = 1 for every anchor: SupCon's L_out and NT-Xent are the same function of the
    embeddings (same τ): equal values and equal gradients."""
    rng = np.random.default_rng(4)
    e = _a(rng.normal(size=(3, 8, 4)))
    y = jnp.asarray(np.stack([rng.permutation(np.repeat(np.arange(4), 2)) for _ in range(3)]))
    w = _a(rng.uniform(size=(3, 8)))

    @jax.jit
    def both(e):
        return [(fn(e, y, temperature=0.15),
                 jax.grad(lambda e, fn=fn: jnp.sum(w * fn(e, y, temperature=0.15)))(e))
                for fn in (supervised_contrastive_loss, info_nce_loss)]

    (va, ga), (vb, gb) = both(e)
    np.testing.assert_allclose(va, vb, rtol=1e-13)
    np.testing.assert_allclose(ga, gb, rtol=1e-11, atol=1e-13)


def test_supcon_multiple_positives_and_anchors_without_positive():
    rng = np.random.default_rng(5)
    e = rng.normal(size=(1, 6, 3))
    y = np.array([[0, 0, 0, 1, 1, 2]])
    supcon = jax.jit(supervised_contrastive_loss)  # one compile per shape for the calls below
    v = supcon(_a(e), jnp.asarray(y), temperature=0.5)
    np.testing.assert_allclose(v, creg._supcon_value({"embeddings": e, "labels": y},
                                                    {"temperature": 0.5}), rtol=1e-12)
    assert float(v[0, 5]) == 0.0  # label 2 has no positive
    counted = (y[..., :, None] == y[..., None, :]).sum(-1) > 1  # the documented mask
    assert float(jaxloss.mean(v, where=jnp.asarray(counted))) == pytest.approx(
        float(np.mean(np.asarray(v)[0, :5])), rel=1e-13)
    # Every anchor alone: all zeros, and a zero gradient.
    alone = supcon(_a(e), jnp.arange(6)[None])
    assert alone.tolist() == [[0.0] * 6]
    g = jax.jit(jax.grad(lambda e: jnp.sum(supervised_contrastive_loss(e, jnp.arange(6)[None]))))(
        _a(e))
    assert bool(jnp.all(g == 0))
    # All embeddings equal: every term is log(M - 1) for anchors with a positive.
    same = supcon(jnp.ones((6, 3)), jnp.asarray(y[0]))
    np.testing.assert_allclose(same[:5], np.log(5.0), rtol=1e-13)


def test_siglip_mean_is_the_paper_loss():
    rng = np.random.default_rng(6)
    x, t = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    scale, bias = np.exp(np.log(10.0)), -10.0
    # Zhai et al. 2023, Algorithm 1: normalise, logits = x @ t.T * t' + b, labels 2I - 1.
    zx = x / np.linalg.norm(x, axis=1, keepdims=True)
    zt = t / np.linalg.norm(t, axis=1, keepdims=True)
    logits = zx @ zt.T * scale + bias
    labels = 2 * np.eye(5) - 1
    paper = -np.sum(-np.logaddexp(0.0, -labels * logits)) / 5
    per_image = siglip_loss(_a(x), _a(t), logit_scale=scale, logit_bias=bias)
    assert per_image.shape == (5,)
    assert float(jaxloss.mean(per_image)) == pytest.approx(paper, rel=1e-13)
    assert float(jnp.sum(per_image)) == pytest.approx(5 * paper, rel=1e-13)


# --------------------------------------------------------------------------------------------
# Closed-form VJPs (the registry's) against jax.grad, with cotangents independent of the suite


def test_set_loss_vjps_match_jax_grad():
    rng = np.random.default_rng(100)
    e = rng.normal(size=(2, 6, 4))
    ct = rng.uniform(-1.0, 1.0, size=(2, 6))
    for fn, labels in ((info_nce_loss, creg.PAIRED), (supervised_contrastive_loss, creg.GROUPED)):
        y = np.stack([rng.permutation(labels) for _ in range(2)])
        d, h = {"embeddings": e, "labels": y}, {"temperature": 0.4}
        got = jax.jit(jax.grad(lambda e, fn=fn, y=y: jnp.sum(
            _a(ct) * fn(e, jnp.asarray(y), temperature=0.4))))(_a(e))
        np.testing.assert_allclose(got, creg._contrastive_vjp(d, h, ct), rtol=1e-10, atol=1e-12)
    x, t = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 4, 3))
    d, h = {"image_embeddings": x, "text_embeddings": t}, {"logit_scale": 4.0, "logit_bias": -1.0}
    got = jax.jit(jax.grad(lambda x, t: jnp.sum(_a(ct[:, :4]) * siglip_loss(x, t, **h)),
                           argnums=(0, 1)))(_a(x), _a(t))
    for g, w in zip(got, creg._siglip_vjp(d, h, ct[:, :4]), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------------------------
# Sets: vmap over an extra leading batch of sets gives per-set results


@pytest.mark.parametrize("name", ["info_nce_loss", "supervised_contrastive_loss", "siglip_loss"])
def test_leading_batches_of_sets_are_independent(name):
    rng = np.random.default_rng(7)
    e = _a(rng.normal(size=(2, 3, 6, 4)))
    if name == "siglip_loss":
        other = _a(rng.normal(size=(2, 3, 6, 4)))

        def f(a, b):
            return siglip_loss(a, b, logit_scale=5.0, logit_bias=-2.0)
    else:
        other = jnp.asarray(np.stack([[rng.permutation(creg.PAIRED) for _ in range(3)]
                                      for _ in range(2)]))
        fn = info_nce_loss if name == "info_nce_loss" else supervised_contrastive_loss

        def f(a, b):
            return fn(a, b, temperature=0.3)
    f = jax.jit(f)
    batched = f(e, other)
    assert batched.shape == (2, 3, 6)
    vmapped = jax.jit(jax.vmap(jax.vmap(f)))(e, other)
    looped = np.stack([[np.asarray(f(e[i, j], other[i, j])) for j in range(3)]
                       for i in range(2)])
    np.testing.assert_allclose(batched, looped, rtol=1e-13)
    np.testing.assert_allclose(vmapped, looped, rtol=1e-13)
    # Changing one set leaves the other sets' values unchanged.
    moved = f(e.at[0, 0].multiply(-1.0), other)
    np.testing.assert_allclose(moved[1:], batched[1:], rtol=0)
    np.testing.assert_allclose(moved[0, 1:], batched[0, 1:], rtol=0)


def test_low_precision_in_float32_out():
    rng = np.random.default_rng(8)
    e = jnp.asarray(rng.normal(size=(6, 4)), jnp.bfloat16)
    y = jnp.array([0, 0, 1, 1, 2, 2])

    @jax.jit
    def all_losses(e):
        return (info_nce_loss(e, y), supervised_contrastive_loss(e, y), siglip_loss(e, e),
                triplet_margin_loss(e, e[::-1], e[::2].repeat(2, 0)),
                hinge_loss(e, jnp.ones_like(e)), multiclass_hinge_loss(e, y[:6] % 4))

    for v in all_losses(e):
        assert v.dtype == jnp.float32
    g = jax.jit(jax.grad(lambda e: jnp.sum(info_nce_loss(e, y))))(e)
    assert g.dtype == jnp.bfloat16 and _finite_tree(g.astype(jnp.float32))


@pytest.mark.parametrize("p", [2.0, 3.0])
def test_triplet_second_derivative_against_finite_differences(p):
    """The distances' closed-form JVP is itself differentiable: Hessian-vector products of the
    triplet loss agree with finite differences of its gradient (p = 2 takes the one-pass norm)."""
    rng = np.random.default_rng(11)
    a, pos, neg = (jnp.asarray(rng.normal(size=(3, 4)), jnp.float64) for _ in range(3))

    def f(x):
        return jnp.sum(jaxloss.triplet_margin_loss(x, pos, neg, margin=5.0, p=p))

    check_grads(jax.jit(f), (a,), order=2, modes=("fwd", "rev"), atol=1e-5, rtol=1e-5)
