"""Issue #12 regression tests for the margin, ranking and metric-learning losses: NaN in gives NaN
out (value and gradient) for exactly what it feeds; float32 norms of large vectors are exact;
every concrete hyperparameter is checked.

Expected values are written from the formulas in NumPy float64 (or stated), never taken from
jaxloss. Inputs are float32 and the losses run under ``jax.jit``, as in a training step; each test
compiles one program for several checks.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss

F32 = jnp.float32


def _vg(f, argnums=0):
    """jit of (values, gradient of their sum w.r.t. ``argnums``)."""
    return jax.jit(lambda *a: (f(*a), jax.grad(lambda *a: jnp.sum(f(*a)), argnums)(*a)))


def _f32(x):
    return jnp.asarray(x, F32)


# --------------------------------------------------------------------------------------------
# Item 1: a NaN input gives NaN for its example (value and gradient), the others unchanged


def test_hinge_nan_score_gives_nan_value_and_gradient():
    # The reproducer gave [0.] with gradient 0.
    x, y = _f32([jnp.nan, 0.5, 2.0]), _f32([1.0, 1.0, -1.0])
    for loss in (jaxloss.hinge_loss, jaxloss.squared_hinge_loss):
        v, g = _vg(loss)(x, y)
        assert np.isnan(v[0]) and np.isnan(g[0])
        m = 1 - np.array([1.0, -1.0]) * np.array([0.5, 2.0])  # max(0, 1 - y·x)
        want = np.maximum(m, 0) ** (2 if loss is jaxloss.squared_hinge_loss else 1)
        np.testing.assert_allclose(np.asarray(v[1:]), want, rtol=1e-6)


def test_invalid_traced_targets_give_nan_value_and_gradient():
    # A 0 target under jit (concrete ones raise): NaN, not the constant margin with gradient 0.
    v, g = _vg(jaxloss.hinge_loss)(_f32([0.3, 0.3]), _f32([0.0, 1.0]))
    assert np.isnan(v[0]) and np.isnan(g[0])
    assert float(v[1]) == pytest.approx(0.7) and float(g[1]) == -1.0
    rank = jaxloss.margin_ranking_loss
    v, g = _vg(rank)(_f32([0.3, 0.3]), _f32([0.0, 0.0]), _f32([jnp.nan, 1.0]))
    assert np.isnan(v[0]) and np.isnan(g[0]) and float(v[1]) == 0.0


def test_margin_ranking_nan_score():
    v, g = _vg(jaxloss.margin_ranking_loss, (0, 1))(
        _f32([jnp.nan, 1.0]), _f32([0.0, 3.0]), _f32([1.0, 1.0]))
    assert np.isnan(v[0]) and np.isnan(g[0][0]) and np.isnan(g[1][0])
    assert float(v[1]) == 2.0 and float(g[0][1]) == -1.0 and float(g[1][1]) == 1.0


@pytest.mark.parametrize("kind", ["crammer_singer", "weston_watkins"])
def test_multiclass_hinge_nan_logit_makes_its_row_nan(kind):
    # The NaN in a non-label class, then in the label's own logit.
    z = _f32([[1.0, 2.0, jnp.nan, 0.5], [2.0, jnp.nan, 0.0, 0.5], [1.0, 2.0, 3.0, 0.5]])
    y = jnp.array([0, 1, 1])
    v, g = _vg(lambda z, y: jaxloss.multiclass_hinge_loss(z, y, kind=kind))(z, y)
    assert np.isnan(v[:2]).all() and np.isnan(g[:2]).all()  # every entry of the two rows
    # Row 2 (label 1, m = 1): violations 1 + z_c - z_1 = [0, -, 2, -0.5].
    want = 2.0 if kind == "crammer_singer" else 2.0 + 0.0
    grad = [0.0, -1.0, 1.0, 0.0] if kind == "crammer_singer" else [1.0, -2.0, 1.0, 0.0]
    assert float(v[2]) == want
    np.testing.assert_array_equal(np.asarray(g[2]), grad)


def test_pair_losses_nan_row_gives_nan_not_a_zero_norm():
    # A NaN row's norm came out 0 (so triplet and contrastive gave finite numbers).
    a = _f32([[jnp.nan, 0.0, 0.0], [0.0, 0.0, 0.0]])
    p = _f32([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    n = _f32([[0.0, 0.0, 3.0], [0.0, 0.0, 3.0]])
    for deg in (1.0, 2.0, 3.0):
        v, g = _vg(lambda a, p, n, deg=deg: jaxloss.triplet_margin_loss(a, p, n, p=deg), (0, 1, 2))(
            a, p, n)
        assert np.isnan(v[0]) and all(np.isnan(x[0]).all() for x in g)
        assert float(v[1]) == 0.0  # max(0, 1 - 3 + 1)
    t = _f32([1.0, 0.0])
    for loss in (jaxloss.contrastive_loss, jaxloss.cosine_embedding_loss):
        targets = t if loss is jaxloss.contrastive_loss else 2 * t - 1
        v, g = _vg(loss, (0, 1))(a, p, targets)
        assert np.isnan(v[0]) and all(np.isnan(x[0]).all() for x in g)
        assert np.isfinite(v[1]) and all(np.isfinite(x[1]).all() for x in g)


@pytest.mark.parametrize("name", ["info_nce_loss", "supervised_contrastive_loss", "siglip_loss"])
def test_set_losses_nan_member_makes_its_set_nan(name):
    rng = np.random.default_rng(0)
    e = rng.normal(size=(2, 6, 3)).astype(np.float32)
    labels = jnp.array([[0, 0, 1, 1, 2, 3]] * 2)  # SupCon: anchors 4 and 5 have no positive
    if name == "siglip_loss":
        def f(e):
            return jaxloss.siglip_loss(e, jnp.asarray(e[:, ::-1]))
    elif name == "info_nce_loss":
        labels = jnp.array([[0, 0, 1, 1, 2, 2]] * 2)

        def f(e):
            return jaxloss.info_nce_loss(e, labels)
    else:
        def f(e):
            return jaxloss.supervised_contrastive_loss(e, labels)
    prog = _vg(f)
    clean_v, clean_g = prog(_f32(e))
    bad = e.copy()
    bad[0, 4, 1] = np.nan  # one image / one member of set 0
    v, g = prog(_f32(bad))
    assert np.isnan(v[0]).all() and np.isnan(g[0]).all()
    np.testing.assert_array_equal(np.asarray(v[1]), np.asarray(clean_v[1]))
    np.testing.assert_array_equal(np.asarray(g[1]), np.asarray(clean_g[1]))


# --------------------------------------------------------------------------------------------
# Item 4: large finite inputs give the float64 answer rounded to float32, never NaN


def _np_norm(x):
    return np.sqrt(np.sum(np.asarray(x, np.float64) ** 2, -1))


def test_triplet_norm_of_a_coordinate_above_8_5e37():
    # The reproducer returned 1 (the norm of [2e38, 0, 0] came out 0); true value 0.
    a, p, n = jnp.zeros((1, 3), F32), jnp.full((1, 3), 1e-30, F32), _f32([[2e38, 0.0, 0.0]])
    want = max(0.0, np.sqrt(3) * 1e-30 - 2e38 + 1.0)
    for deg in (1.0, 2.0, 3.0):
        v, g = _vg(lambda a, p, n, deg=deg: jaxloss.triplet_margin_loss(a, p, n, p=deg), (0, 1, 2))(
            a, p, n)
        assert float(v[0]) == want == 0.0 and all(np.all(np.asarray(x) == 0) for x in g)
    # Active: d(a, n) = 2e38 - tiny, d(a, p) = 3e38: the loss is 1e38 + 1 (float32: 1e38).
    v, g = _vg(jaxloss.triplet_margin_loss)(jnp.zeros((1, 3), F32), _f32([[3e38, 0, 0]]), n)
    np.testing.assert_allclose(float(v[0]), 3e38 - 2e38 + 1, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(g), [[-1.0 + 1.0, 0.0, 0.0]])  # g(a-p) - g(a-n)


def test_triplet_distances_beyond_range_on_both_sides():
    # d(a, p) = 6e38 and d(a, n) = sqrt(36 + 1)·1e38 are both beyond float32's range (and so is
    # a - p itself); the difference is not: max(0, 6e38 - 6.08e38 + 1) = 0, gradient 0.
    a, p, n = _f32([[3e38, 0.0]]), _f32([[-3e38, 0.0]]), _f32([[-3e38, 1e38]])
    v, g = _vg(jaxloss.triplet_margin_loss, (0, 1, 2))(a, p, n)
    assert float(v[0]) == 0.0 and all(np.all(np.asarray(x) == 0) for x in g)
    # Equal distances beyond range: the loss is the margin.
    v = jax.jit(jaxloss.triplet_margin_loss)(a, p, _f32([[-3e38, 0.0]]))
    assert float(v[0]) == 1.0


def test_cosine_embedding_of_vectors_near_float32_max():
    # Gave ±inf/NaN.
    x1, x2 = _f32([[2e38, 1e38, 0.0], [3e38, -3e38, 3e38]]), _f32([[1e38, 2e38, 0.0], [1.0, 0, 0]])
    c = np.sum(np.asarray(x1, np.float64) * np.asarray(x2, np.float64), -1) / (
        _np_norm(x1) * _np_norm(x2))
    for y, want in ((1.0, 1 - c), (-1.0, np.maximum(c, 0))):
        v, g = _vg(jaxloss.cosine_embedding_loss, (0, 1))(x1, x2, _f32([y, y]))
        np.testing.assert_allclose(np.asarray(v), want, rtol=1e-5, atol=1e-6)
        assert all(np.isfinite(np.asarray(x)).all() for x in g)


def test_contrastive_at_distance_1e20_and_beyond_range():
    # A dissimilar pair at distance 1e20 was NaN (0·inf); its loss is max(0, m - d)²/2 = 0.
    x1, x2 = jnp.zeros((2, 2), F32), _f32([[1e20, 0.0], [3e38, 3e38]])
    v, g = _vg(jaxloss.contrastive_loss)(x1, x2, _f32([0.0, 0.0]))
    assert np.asarray(v).tolist() == [0.0, 0.0] and np.all(np.asarray(g) == 0)
    # Similar: d²/2 = 5e39 and 9e76 are beyond float32's range (inf); the gradient x1 - x2 is
    # -1e20 and -3e38, within range.
    v, g = _vg(jaxloss.contrastive_loss)(x1, x2, _f32([1.0, 1.0]))
    assert np.asarray(v).tolist() == [np.inf, np.inf]
    np.testing.assert_allclose(np.asarray(g), [[-1e20, 0.0], [-3e38, -3e38]], rtol=1e-6)


def test_set_losses_at_large_embeddings_match_float64():
    # InfoNCE, SupCon and SigLIP gave NaN where a coordinate was near 2e38.
    e = np.array([[2e38, 0, 0], [1e38, 1e38, 0], [0, 2e38, 0], [3e38, 3e38, 3e38]])
    e32 = _f32(e)
    u = np.asarray(e32, np.float64)
    u = u / _np_norm(u)[:, None]
    tau = 0.5
    s = u @ u.T / tau
    off = ~np.eye(4, dtype=bool)
    lse = np.log(np.sum(np.where(off, np.exp(s), 0), -1))
    positive = np.array([1, 0, 3, 2])
    want_nce = lse - s[np.arange(4), positive]
    v = jax.jit(lambda e: jaxloss.info_nce_loss(e, jnp.array([0, 0, 1, 1]), temperature=tau))(e32)
    np.testing.assert_allclose(np.asarray(v), want_nce, rtol=1e-5)
    v = jax.jit(lambda e: jaxloss.supervised_contrastive_loss(e, jnp.array([0, 0, 1, 2]),
                                                          temperature=tau))(e32)
    np.testing.assert_allclose(np.asarray(v), [*want_nce[:2], 0.0, 0.0], rtol=1e-5)
    t_scale, bias = 10.0, -10.0
    z = 2 * np.eye(4) - 1
    logits = t_scale * (u @ u[::-1].T) + bias
    want_sig = np.sum(np.logaddexp(0, -z * logits), -1)
    v, g = _vg(jaxloss.siglip_loss)(e32, e32[::-1])
    np.testing.assert_allclose(np.asarray(v), want_sig, rtol=1e-5)
    assert np.isfinite(np.asarray(g)).all()


def test_triplet_gradient_with_respect_to_a_traced_p():
    # With negatives = anchors and margin 0 the loss is d(a, p) = ‖x‖_p (active); its derivative
    # in p by central differences of the float64 formula, at ordinary and at 1e30-scale rows.
    x = np.array([[3.0, -1.0, 0.5], [1e30, 2e30, 0.0]])

    def norm(p):
        m = np.abs(x).max(-1)
        return m * np.sum((np.abs(x) / m[:, None]) ** p, -1) ** (1 / p)

    a = jnp.asarray(x, jnp.float64)
    grad = jax.jit(jax.vmap(jax.grad(lambda q, a: jnp.sum(jaxloss.triplet_margin_loss(
        a[None], jnp.zeros_like(a)[None], a[None], p=q, margin=0.0))), in_axes=(None, 0)))
    for deg in (1.0, 1.5, 3.0):
        h = 1e-6
        want = (norm(deg + h) - norm(deg - h)) / (2 * h)
        np.testing.assert_allclose(np.asarray(grad(deg, a)), want, rtol=1e-6)


# --------------------------------------------------------------------------------------------
# Item 3: concrete hyperparameters are checked (NaN included)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: jaxloss.hinge_loss(_f32([1.0]), _f32([1.0]), margin=float("nan")),
         r"hinge_loss: `margin` must be finite and >= 0; got nan"),
        (lambda: jaxloss.margin_ranking_loss(_f32([1.0]), _f32([1.0]), _f32([1.0]),
                                        margin=float("nan")),
         r"margin_ranking_loss: `margin` must be finite and >= 0"),
        (lambda: jaxloss.multiclass_hinge_loss(_f32([[1.0, 2.0]]), jnp.array([0]),
                                          margin=float("nan")),
         r"multiclass_hinge_loss: `margin` must be finite and >= 0"),
        (lambda: jaxloss.cosine_embedding_loss(_f32([[1.0]]), _f32([[1.0]]), _f32([1.0]),
                                          margin=float("nan")),
         r"cosine_embedding_loss: `margin` must be finite"),
        (lambda: jaxloss.cosine_embedding_loss(_f32([[1.0]]), _f32([[1.0]]), _f32([1.0]),
                                          eps=float("nan")),
         r"cosine_embedding_loss: `eps` must be finite and > 0"),
        (lambda: jaxloss.triplet_margin_loss(_f32([[1.0]]), _f32([[1.0]]), _f32([[1.0]]),
                                        p=float("nan")),
         r"triplet_margin_loss: `p` must be finite"),
        (lambda: jaxloss.triplet_margin_loss(_f32([[1.0]]), _f32([[1.0]]), _f32([[1.0]]),
                                        margin=-1.0),
         r"triplet_margin_loss: `margin` must be finite and >= 0"),
        (lambda: jaxloss.contrastive_loss(_f32([[1.0]]), _f32([[1.0]]), _f32([1.0]),
                                     margin=float("nan")),
         r"contrastive_loss: `margin` must be finite and > 0"),
        (lambda: jaxloss.info_nce_loss(_f32([[1.0], [2.0]]), jnp.array([0, 0]),
                                  temperature=float("nan")),
         r"info_nce_loss: `temperature` must be finite and > 0"),
        (lambda: jaxloss.supervised_contrastive_loss(_f32([[1.0], [2.0]]), jnp.array([0, 0]),
                                                eps=-1.0),
         r"supervised_contrastive_loss: `eps` must be finite and > 0"),
        (lambda: jaxloss.siglip_loss(_f32([[1.0]]), _f32([[1.0]]), logit_bias=float("nan")),
         r"siglip_loss: `logit_bias` must be finite"),
        (lambda: jaxloss.siglip_loss(_f32([[1.0]]), _f32([[1.0]]), logit_scale=float("nan")),
         r"siglip_loss: `logit_scale` must be finite and > 0"),
        (lambda: jaxloss.triplet_margin_loss(_f32([[1.0]]), _f32([[1.0]]), _f32([[1.0]]),
                                        swap=jnp.array(True)),
         r"triplet_margin_loss: `swap` must be a Python bool"),
    ],
)
def test_concrete_hyperparameters_are_checked(call, message):
    with pytest.raises(ValueError, match=rf"jaxloss\.{message}"):
        call()
