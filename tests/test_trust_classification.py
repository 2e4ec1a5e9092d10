"""Regression tests for issue 12 (classification, divergences, reductions, combinators, fused CE).

Each reproducer asserts the answer worked out by hand (or in NumPy float64), never one copied
from the code under test. float32 under ``jax.jit`` unless stated; the eager checks are the
validation errors (concrete values are checked, traced ones used as given).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

import jaxloss
import jaxloss.fused as F

NAN = np.nan
f32 = jnp.float32


def _vg(loss, *args, **kw):
    """Jitted per-example values and the gradient of their sum w.r.t. the first argument."""
    def total(x, *rest):
        return jnp.sum(loss(x, *rest, **kw))

    first = jax.jit(lambda *a: loss(*a, **kw))(*args)
    return np.asarray(first), np.asarray(jax.jit(jax.grad(total))(*args))


# ---------------------------------------------------------------------------------------------
# 1. NaN in an example gives NaN for that example (value and gradient row), others unchanged


def test_integer_label_ce_nan_logit():
    z = jnp.array([[2.0, NAN, 0.5], [1.0, 0.0, -1.0]], f32)
    v, g = _vg(jaxloss.softmax_cross_entropy_with_integer_labels, z, jnp.array([0, 2]))
    assert np.isnan(v[0]) and np.isnan(g[0]).all()
    e = np.exp([1.0, 0.0, -1.0])
    np.testing.assert_allclose(v[1], np.log(e.sum()) + 1.0, rtol=1e-6)
    np.testing.assert_allclose(g[1], e / e.sum() - [0, 0, 1], rtol=1e-6, atol=1e-7)


def test_soft_target_ce_nan_logit_and_nan_target():
    v, g = _vg(jaxloss.softmax_cross_entropy, jnp.array([[NAN, 1.0], [0.0, 0.0]], f32),
               jnp.array([[1.0, 0.0], [0.5, 0.5]], f32))
    assert np.isnan(v[0]) and np.isnan(g[0]).all()
    np.testing.assert_allclose(v[1], np.log(2.0), rtol=1e-6)
    v, g = _vg(jaxloss.softmax_cross_entropy, jnp.zeros((2, 2), f32),
               jnp.array([[NAN, 1.0], [0.5, 0.5]], f32))
    assert np.isnan(v[0]) and np.isnan(g[0]).all()
    np.testing.assert_array_equal(g[1], [0.0, 0.0])


def test_binary_cross_entropy_nan_is_not_the_clamp():
    v, g = _vg(jaxloss.binary_cross_entropy, jnp.array([NAN, 0.0, 0.5], f32),
               jnp.array([1.0, 1.0, 1.0], f32))
    assert np.isnan(v[0]) and np.isnan(g[0])
    np.testing.assert_allclose(v[1:], [100.0, np.log(2.0)], rtol=1e-6)  # the -100 clamp at 0


def test_nll_loss_nan_off_the_label_gives_nan_row():
    lp = np.log(np.array([[0.5, 0.25, 0.25], [0.2, 0.3, 0.5]]))
    lp[0, 2] = NAN  # not the label's entry
    v, g = _vg(jaxloss.nll_loss, jnp.asarray(lp, f32), jnp.array([0, 1]))
    assert np.isnan(v[0]) and np.isnan(g[0]).all()
    np.testing.assert_allclose(v[1], -np.log(0.3), rtol=1e-6)
    np.testing.assert_array_equal(g[1], [0.0, -1.0, 0.0])


@pytest.mark.parametrize("which", ["kl", "kl_log", "js"])
def test_divergences_nan_target_gives_nan_gradient_row(which):
    p = np.array([[0.5, 0.25, 0.25], [0.2, 0.3, 0.5]])
    t = np.array([[NAN, 0.5, 0.5], [0.2, 0.3, 0.5]])
    if which == "kl":
        loss, a, b = jaxloss.kl_divergence, np.log(p), t
    elif which == "kl_log":
        loss, a, b = jaxloss.kl_divergence_with_log_targets, np.log(p), np.log(t)
    else:
        loss, a, b = jaxloss.jensen_shannon_divergence, p, t
    v, g = _vg(loss, jnp.asarray(a, f32), jnp.asarray(b, f32))
    assert np.isnan(v[0]) and np.isnan(g[0]).all()
    assert v[1] == 0.0 and np.isfinite(g[1]).all()  # identical distributions: 0


def test_linear_cross_entropy_nan_in_weight_column_and_hidden_row():
    x = jnp.ones((1, 2), f32)
    w = jnp.array([[1.0, NAN, 3.0], [0.0, 0.0, 0.0]], f32)  # the reproducer: was [-1.]
    assert np.isnan(np.asarray(F.linear_cross_entropy(x, w, jnp.array([0])))).all()
    x = jnp.array([[1.0, 0.0], [NAN, 0.0], [0.0, 1.0]], f32)
    w = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], f32)
    y = jnp.array([0, 1, 2])
    v, g = _vg(F.linear_cross_entropy, x, w, y)
    assert np.isnan(v[1]) and np.isnan(g[1]).all()
    e = np.exp([1.0, 0.0, 0.0])  # token 0: logits [1, 0, 0], label 0
    np.testing.assert_allclose(v[0], np.log(e.sum()) - 1.0, rtol=1e-6)
    np.testing.assert_allclose(v[2], np.log(2 + np.e), rtol=1e-6)  # logits [0, 1, 0], label 2
    assert np.isfinite(g[[0, 2]]).all()


def test_vocab_parallel_nan_in_hidden_row_and_weight_column():
    mesh = Mesh(np.array(jax.devices()[:1]), ("vocab",))
    f = jax.jit(jax.shard_map(
        functools.partial(F.vocab_parallel_linear_cross_entropy, axis_name="vocab",
                          ignore_index=-100, block_size=2),
        mesh=mesh, in_specs=(P(), P(None, "vocab"), P()), out_specs=P()))
    x = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], f32)
    w = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], f32)
    y = jnp.array([0, 2, -100])
    clean = np.asarray(f(x, w, y))
    np.testing.assert_allclose(clean[:2], [np.log(2 + np.e) - 1, np.log(2 + np.e)], rtol=1e-6)
    v = np.asarray(f(x.at[1, 0].set(NAN), w, y))
    assert np.isnan(v[1]) and v[0] == clean[0] and v[2] == 0.0
    v = np.asarray(f(x, w.at[0, 2].set(NAN), y))
    assert np.isnan(v[:2]).all() and v[2] == 0.0  # every non-ignored token


# ---------------------------------------------------------------------------------------------
# 3. Concrete weights, probabilities and hyperparameters are checked


def _raises(match, fn, *args, **kw):
    with pytest.raises(ValueError, match=match):
        fn(*args, **kw)


def test_weights_and_probabilities_are_checked():
    ce = jaxloss.softmax_cross_entropy_with_integer_labels
    _raises(r"jaxloss\.class_weighted: `class_weights` must have one weight per class, 4 .*got 3",
            jaxloss.class_weighted(ce, jnp.ones(3)), jnp.zeros((1, 4)), jnp.array([3]))
    _raises(r"`class_weights` must be finite and >= 0; got \[-1\]", jaxloss.class_weighted,
            ce, jnp.array([1.0, -1.0]))
    for fn, z in ((ce, jnp.zeros((2, 3))), (jaxloss.nll_loss, jnp.full((2, 3), -1.0))):
        for bad in ([1.0, -1.0, 1.0], [1.0, NAN, 1.0]):
            _raises(rf"jaxloss\.{fn.__name__}: `class_weights` must be finite and >= 0", fn, z,
                    jnp.array([0, 1]), class_weights=jnp.array(bad))
    _raises(r"`counts` must have at least one class with a count > 0",
            jaxloss.class_weights_from_counts, jnp.zeros(3))
    _raises(r"`pos_weight` must be finite and >= 0; got \[nan\]",
            jaxloss.sigmoid_binary_cross_entropy, jnp.zeros(2), jnp.ones(2), pos_weight=NAN)
    for reduce in (jaxloss.mean, jaxloss.sum, jaxloss.mean_parts):
        for bad in ([1.0, -1.0], [1.0, NAN]):
            _raises(rf"jaxloss\.{reduce.__name__}: `weights` must be finite and >= 0", reduce,
                    jnp.ones(2), weights=jnp.array(bad))
    _raises(r"`probabilities` must be in \[0, 1\]; got \[2\].*sigmoid_binary_cross_entropy",
            jaxloss.binary_cross_entropy, jnp.array([2.0, 0.5]), jnp.array([1.0, 1.0]))
    _raises(r"`log_predictions` must be <= 0.*softmax_cross_entropy", jaxloss.kl_divergence,
            jnp.array([0.5, 0.2]), jnp.array([0.5, 0.5]))
    _raises(r"`targets` must be in \[0, 1\]", jaxloss.kl_divergence,
            jnp.log(jnp.array([0.5, 0.5])), jnp.array([-0.5, 1.5]))
    _raises(r"`log_targets` must be <= 0", jaxloss.kl_divergence_with_log_targets,
            jnp.zeros(2), jnp.array([0.1, -1.0]))
    _raises(r"`probabilities` must be in \[0, 1\]", jaxloss.jensen_shannon_divergence,
            jnp.array([1.5, -0.5]), jnp.array([0.5, 0.5]))
    _raises(r"jaxloss\.softmax_cross_entropy_with_integer_labels: `logits` must have a class "
            r"axis", ce, jnp.array(1.0), jnp.array(0))
    _raises(r"jaxloss\.linear_cross_entropy: `weight` must have a vocabulary of at least one "
            r"class", F.linear_cross_entropy, jnp.ones((2, 3)), jnp.ones((3, 0)),
            jnp.array([-100, -100]), ignore_index=-100)
    with pytest.raises(TypeError, match=r"For probability targets use "
                                        r"jaxloss\.softmax_cross_entropy\."):
        ce(jnp.zeros((2, 3)), jnp.zeros(2))


def test_traced_weights_and_probabilities_are_used_as_given():
    # Under jit the values are unknown at trace time: no error, the numbers as given.
    got = jax.jit(jaxloss.binary_cross_entropy)(jnp.array([0.5], f32), jnp.array([1.0], f32))
    np.testing.assert_allclose(got, [np.log(2.0)], rtol=1e-6)
    got = jax.jit(lambda w: jaxloss.mean(jnp.array([1.0, 3.0]), weights=w))(jnp.array([1.0, 3.0]))
    np.testing.assert_allclose(got, 2.5, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# 4. Large finite inputs give the float64 answer rounded to float32


def test_soft_target_ce_at_plus_minus_3e38():
    z = jnp.array([[3e38, -3e38, 0.0]], f32)
    q = jnp.array([[0.0, 0.0, 1.0]], f32)
    v, g = _vg(jaxloss.softmax_cross_entropy, z, q)
    # lse = 3e38 + log(1 + e^-6e38 + e^-3e38) = 3e38 (was NaN: 0·inf)
    assert v[0] == np.float32(3e38)
    np.testing.assert_array_equal(g[0], [1.0, 0.0, -1.0])  # softmax - q
    v, _ = _vg(jaxloss.softmax_cross_entropy_with_integer_labels, z, jnp.array([2]))
    assert v[0] == np.float32(3e38)


def test_ce_ties_at_large_logits_keep_the_log_sum():
    # Two logits tied at the maximum: lse - z_y = log 2 exactly; float32's lse rounds at 1e4
    # to a multiple of 2^-10 (lse - z_y was 0.69336).
    for big in (1e4, 3e38):
        z = jnp.array([[big, big, 0.0]], f32)
        v, _ = _vg(jaxloss.softmax_cross_entropy_with_integer_labels, z, jnp.array([0]))
        np.testing.assert_allclose(v, [np.log(2.0)], rtol=1e-6)
        v, _ = _vg(jaxloss.softmax_cross_entropy, z, jnp.array([[0.5, 0.5, 0.0]], f32))
        np.testing.assert_allclose(v, [np.log(2.0)], rtol=1e-6)
    x = jnp.array([[1e4, 0.0]], f32)
    w = jnp.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]], f32)
    v, _ = _vg(F.linear_cross_entropy, x, w, jnp.array([1]))
    np.testing.assert_allclose(v, [np.log(2.0)], rtol=1e-6)


def test_smoothed_weighted_ce_does_not_overflow_in_range():
    # eps = 0.9 on 2 classes, w = [0.25, 1]: l = 0.1·0.25·(6e38 + 0) + 0.45·(0.25·6e38 + 1·0)
    # = 1.5e37 + 6.75e37 = 8.25e37 (the difference m - z_0 = 6e38 is beyond float32).
    z = jnp.array([[-3e38, 3e38]], f32)
    v, _ = _vg(jaxloss.softmax_cross_entropy_with_integer_labels, z, jnp.array([0]),
               class_weights=jnp.array([0.25, 1.0]), label_smoothing=0.9)
    np.testing.assert_allclose(v, [8.25e37], rtol=1e-6)


def test_mean_does_not_overflow():
    for n in (2, 2**20 + 3):
        x = jnp.full((n,), 3e38, f32)
        # 3e38, not inf, to the accuracy of a float32 sum of n terms (XLA versions order the
        # reduction differently: jax 0.8.2 is 3 ulps off at n = 2^20 + 3)
        np.testing.assert_allclose(jax.jit(jaxloss.mean)(x), np.float32(3e38), rtol=1e-5)
    got = jax.jit(jaxloss.mean)(jnp.array([3e38, 1e38], f32), jnp.array([1.0, 3.0], f32))
    np.testing.assert_allclose(got, (3e38 + 3e38) / 4, rtol=1e-6)
    g = jax.jit(jax.grad(jaxloss.mean))(jnp.array([3e38, 3e38, 1.0], f32))
    np.testing.assert_allclose(g, [1 / 3] * 3, rtol=1e-6)


def test_bounded_and_asymmetric_have_no_nan_gradient_where_inner_is_infinite():
    p = jnp.array([3e38, -3e38, 1.0], f32)
    t = jnp.array([-1e38, 3e38, 0.0], f32)

    def grads(loss):
        return np.asarray(jax.jit(jax.grad(lambda p: jnp.sum(loss(p, t))))(p))

    # Capped where r^2 >= 10 (the first two): gradient exactly 0; 2r = 2 below the cap.
    np.testing.assert_array_equal(grads(jaxloss.bounded(jaxloss.squared_error, 10.0)), [0, 0, 2])
    smooth = grads(jaxloss.bounded(jaxloss.squared_error, 10.0, smooth=True))
    np.testing.assert_allclose(smooth, [0, 0, 2 / np.cosh(0.1) ** 2], rtol=1e-6)
    # Under-prediction (r = -6e38) uses |r| (gradient -3); the over side's 2r = -1.2e39 unused.
    two = grads(jaxloss.asymmetric(jaxloss.squared_error, jaxloss.absolute_error,
                                   over=1.0, under=3.0))
    np.testing.assert_array_equal(two, [np.inf, -3.0, 2.0])  # 2·4e38 is beyond float32
    zero = grads(jaxloss.asymmetric(jaxloss.squared_error, over=2.0, under=0.0))
    np.testing.assert_array_equal(zero, [np.inf, 0.0, 4.0])


def _soft_ce_reference(z, q):
    """float64 sum_c q_c (lse(z) - z_c), terms with q_c = 0 taken as 0, a row of -inf as 0."""
    z, q = np.asarray(z, np.float64), np.asarray(q, np.float64)
    out = []
    for zr, qr in zip(z, q, strict=True):
        if np.isnan(zr).any() or np.isnan(qr).any() or np.isposinf(zr).any():
            out.append(np.nan)
            continue
        if np.isneginf(zr).all():
            out.append(0.0)
            continue
        m = zr.max()
        lse = m + np.log(np.sum(np.exp(zr - m)))
        with np.errstate(invalid="ignore"):
            terms = np.where(qr == 0, 0.0, qr * (lse - zr))
        out.append(terms.sum())
    return np.array(out)


def test_soft_target_ce_guarded_rows_in_a_batch_of_finite_rows():
    # Every case the unguarded first pass cannot take (a -inf logit with and without target
    # mass, a row of -inf, m - z beyond float32, +inf, NaN), each in a batch of ordinary rows:
    # the ordinary rows keep the value they have without the others, bit for bit.
    inf = np.inf
    rng = np.random.default_rng(3)
    ordinary_z = rng.normal(0, 2, (3, 4)).astype(np.float32)
    ordinary_q = rng.dirichlet(np.ones(4), 3).astype(np.float32)
    special = [
        ([-inf, 1.0, 2.0, 3.0], [0.0, 0.2, 0.3, 0.5]),  # 0 (no mass on -inf)
        ([-inf, 1.0, 2.0, 3.0], [0.1, 0.2, 0.3, 0.4]),  # +inf
        ([-inf] * 4, [0.0] * 4),  # 0
        ([-inf] * 4, [0.25] * 4),  # 0 (no finite logit)
        ([3e38, -3e38, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]),  # 3e38
        ([3e38, -3e38, 0.0, 0.0], [0.0, 0.1, 0.45, 0.45]),  # 0.1·6e38 + 0.9·3e38 = 3.3e38
        ([NAN, 0.0, 0.0, 0.0], [0.25] * 4),  # NaN
    ]
    alone = jax.jit(jaxloss.softmax_cross_entropy)(ordinary_z, ordinary_q)
    np.testing.assert_allclose(alone, _soft_ce_reference(ordinary_z, ordinary_q), rtol=1e-6)
    for zs, qs in special:
        z = np.concatenate([ordinary_z, np.array([zs], np.float32)])
        q = np.concatenate([ordinary_q, np.array([qs], np.float32)])
        v = jax.jit(jaxloss.softmax_cross_entropy)(z, q)
        np.testing.assert_array_equal(v[:3], alone)
        want = _soft_ce_reference(z[3:], q[3:])[0]
        if np.isfinite(want) and want > 0:
            np.testing.assert_allclose(v[3], want, rtol=1e-6)
        else:
            np.testing.assert_array_equal(v[3], np.float32(want))


def test_kl_log_targets_guarded_rows_in_a_batch_of_finite_rows():
    # The cases the unguarded first pass cannot take (zero target mass under a -inf or finite
    # log-prediction, a -inf log-prediction under mass, NaN), each in a batch of ordinary rows:
    # float64 reference sum_c e^lt (lt - lp) with e^-inf·(...) = 0; ordinary rows unchanged.
    inf = np.inf
    rng = np.random.default_rng(4)
    lp0 = np.log(rng.dirichlet(np.ones(4), 3)).astype(np.float32)
    lt0 = np.log(rng.dirichlet(np.ones(4), 3)).astype(np.float32)
    half = np.log(0.5)
    special = [
        ([-inf, -1.0, -2.0, -0.5], [-inf, half, half, -inf], None),  # finite
        ([-inf, -1.0, -2.0, -0.5], [half, half, -inf, -inf], inf),
        ([-3e38, -1.0, -2.0, -0.5], [-inf] * 4, 0.0),
        ([NAN, -1.0, -2.0, -0.5], [-inf, half, half, -inf], NAN),
        ([-1.0, -1.0, -2.0, -0.5], [NAN, half, half, -inf], NAN),
    ]
    f = jax.jit(jaxloss.kl_divergence_with_log_targets)
    alone = f(lp0, lt0)
    e = np.exp(lt0.astype(np.float64))
    np.testing.assert_allclose(alone, np.sum(e * (lt0 - lp0.astype(np.float64)), -1), rtol=1e-5)
    for lps, lts, want in special:
        lp = np.concatenate([lp0, np.array([lps], np.float32)])
        lt = np.concatenate([lt0, np.array([lts], np.float32)])
        v = f(lp, lt)
        np.testing.assert_array_equal(v[:3], alone)
        if want is None:
            a, b = np.float64(lps), np.float64(lts)
            keep = b > -inf
            want = np.sum(np.exp(b[keep]) * (b[keep] - a[keep]))
            np.testing.assert_allclose(v[3], want, rtol=1e-6)
        else:
            np.testing.assert_array_equal(v[3], np.float32(want))
