"""Learning-to-rank losses and metrics beyond the conformance suite: optax parity, the metrics
against NumPy and scikit-learn, rax's documented values, the LambdaRank relation, edge cases
(no relevant item, all items masked, ties, NaN and inf in one item) and error messages.

NumPy references come from tests/cases/ranking.py (written from the definitions, never by
calling jaxloss)."""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.metrics import ndcg_score

import jaxloss
from tests.cases import ranking as ref

LOSSES = [
    "ranking_softmax_loss",
    "listmle_loss",
    "pairwise_hinge_loss",
    "pairwise_logistic_loss",
    "pairwise_soft_zero_one_loss",
    "pairwise_squared_loss",
    "pointwise_sigmoid_loss",
    "pointwise_squared_loss",
    "approx_ndcg_loss",
    "approx_mrr_loss",
]
# Losses that are 0 on a list without a relevant item (labels all 0).
ZERO_WITHOUT_RELEVANT = [
    "ranking_softmax_loss",
    "pairwise_hinge_loss",
    "pairwise_logistic_loss",
    "pairwise_soft_zero_one_loss",
    "approx_ndcg_loss",
    "approx_mrr_loss",
]
WEIGHTED = [n for n in LOSSES if n not in ("listmle_loss", "approx_mrr_loss")]


@functools.cache
def _jitted(name, static):
    return jax.jit(functools.partial(getattr(jaxloss, name), **dict(static)))


class _Jit:
    """``J.loss(...)``: the loss under ``jax.jit`` (strings, ints and None static), one compile
    per (loss, options) instead of eager dispatch's compile per primitive."""

    def __getattr__(self, name):
        def call(*args, **kw):
            static = {k: v for k, v in kw.items() if v is None or isinstance(v, (str, int))}
            dynamic = {k: v for k, v in kw.items() if k not in static}
            return _jitted(name, tuple(sorted(static.items())))(*args, **dynamic)

        return call


J = _Jit()


def _data(seed=0, b=4, n=6):
    rng = np.random.default_rng(seed)
    s = rng.normal(scale=1.5, size=(b, n))
    y = rng.integers(0, 4, size=(b, n)).astype(np.float64)
    where = rng.uniform(size=(b, n)) > 0.25
    where[:, 0] = True
    where[-1] = False  # a list with every item masked
    w = rng.uniform(0.5, 2.0, size=(b, n))
    return s, y, where, w


# ----------------------------------------------------------------------------------------------
# optax parity


def test_softmax_equals_optax_per_list_and_reduced():
    s, y, where, w = _data()
    ours, grad = jax.jit(
        jax.value_and_grad(
            lambda s: jnp.sum(
                J.ranking_softmax_loss(s, y, where=where, weights=w) * jnp.arange(1.0, 5.0)
            )
        )
    )(s)
    values = J.ranking_softmax_loss(s, y, where=where, weights=w)
    theirs = jax.jit(functools.partial(optax.losses.ranking_softmax_loss, reduce_fn=None))(
        s, y, where=where, weights=w
    )
    np.testing.assert_allclose(values, theirs, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(ours, np.sum(np.asarray(theirs) * np.arange(1.0, 5.0)), rtol=1e-13)
    assert values[-1] == 0.0  # the all-masked list
    their_grad = jax.grad(
        lambda s: jnp.sum(
            optax.losses.ranking_softmax_loss(s, y, where=where, weights=w, reduce_fn=None)
            * jnp.arange(1.0, 5.0)
        )
    )(s)
    np.testing.assert_allclose(grad, their_grad, rtol=1e-12, atol=1e-13)
    # optax's default reduction is the mean over the lists with a valid item.
    np.testing.assert_allclose(
        jaxloss.mean(values, where=where.any(-1)),
        optax.losses.ranking_softmax_loss(s, y, where=where, weights=w),
        rtol=1e-13,
    )
    # Without a mask: every list.
    np.testing.assert_allclose(
        jaxloss.mean(J.ranking_softmax_loss(s, y)),
        optax.losses.ranking_softmax_loss(s, y),
        rtol=1e-13,
    )


def test_softmax_closed_form_gradient():
    """(Σŷ)·softmax(s) − ŷ over valid items, 0 on masked ones."""
    s, y, where, w = _data(1)
    g = jax.grad(lambda s: jnp.sum(J.ranking_softmax_loss(s, y, where=where, weights=w)))(s)
    d = {"scores": s, "labels": y, "where": where, "weights": w}
    np.testing.assert_allclose(g, ref.softmax_grad(d, {}), rtol=1e-12, atol=1e-14)
    assert np.all(np.asarray(g)[~where] == 0)


def test_softmax_minus_inf_scores_and_label_tangents():
    """An item scored −inf with label 0 adds 0 (0·log 0 = 0; optax's product gives NaN there),
    with or without a mask, and the list keeps finite gradients; a NaN score makes its list NaN
    even when every label is 0; a list whose scores are all −inf is NaN without a mask (nothing
    ranks) and 0 when masked. Forward mode w.r.t. the labels is finite at a masked item."""
    s = np.array([[1.0, -np.inf, 0.5], [0.3, np.nan, 0.2], [-np.inf, -np.inf, -np.inf]])
    y = np.array([[2.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    want0 = ref.softmax_ref({"scores": s[:1, [0, 2]], "labels": y[:1, [0, 2]]}, {})[0]
    gwant0 = ref.softmax_grad({"scores": s[:1, [0, 2]], "labels": y[:1, [0, 2]]}, {})[0]
    for where in (None, np.array([[True] * 3, [True] * 3, [False] * 3])):
        v, g = _value_and_grad("ranking_softmax_loss")(s, y, where, np.ones_like(s))
        v, g = np.asarray(v), np.asarray(g)
        np.testing.assert_allclose(v[0], want0, rtol=1e-12)
        np.testing.assert_allclose(g[0, [0, 2]], gwant0, rtol=1e-12)
        assert g[0, 1] == 0.0
        assert np.isnan(v[1]) and np.isnan(g[1]).all()
        if where is None:
            assert np.isnan(v[2]) and np.isnan(g[2]).all()
        else:
            assert v[2] == 0.0 and np.all(g[2] == 0.0)
    s2, y2, where2, w2 = _data(3)
    _, tangent = jax.jvp(
        lambda y: jaxloss.ranking_softmax_loss(s2, y, where=where2, weights=w2),
        (jnp.asarray(y2),),
        (jnp.ones_like(jnp.asarray(y2)),),
    )
    m = np.where(where2, s2, -np.inf).max(-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):  # the list with every item masked
        lse = m + np.log(np.sum(np.where(where2, np.exp(s2 - m), 0), -1, keepdims=True))
    want = np.sum(np.where(where2, w2 * (lse - s2), 0), -1)
    np.testing.assert_allclose(np.asarray(tangent), want, rtol=1e-12)


def test_pairwise_logistic_closed_form_gradient():
    """dL/ds_k = −Σ_j c_kj σ(−d_kj) + Σ_i c_ik σ(−d_ik), written out pair by pair."""
    s, y, where, w = _data(2)
    g = jax.grad(lambda s: jnp.sum(J.pairwise_logistic_loss(s, y, where=where, weights=w)))(s)
    want = np.zeros_like(s)
    for b, i, j in itertools.product(range(s.shape[0]), range(s.shape[1]), range(s.shape[1])):
        if where[b, i] and where[b, j] and y[b, i] > y[b, j]:
            gij = w[b, i] / (1 + np.exp(s[b, i] - s[b, j]))  # w_i σ(−d_ij)
            want[b, i] -= gij
            want[b, j] += gij
    np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------------------------
# rax's definitions: documented values and the LambdaRank relation


def test_rax_documented_values():
    """Values printed in rax's documentation (rax 0.4.0's transformations, which the approximate
    losses follow, no longer import with current JAX: jax.util is gone)."""
    s, y = jnp.array([0.0, 1.0, 3.0, 2.0]), jnp.array([0.0, 0.0, 1.0, 2.0])
    np.testing.assert_allclose(J.approx_ndcg_loss(s, y), -0.71789175, rtol=1e-6)
    np.testing.assert_allclose(J.approx_mrr_loss(s, y), -0.6965873, rtol=1e-6)
    np.testing.assert_allclose(
        J.ndcg_metric(jnp.array([2.0, 1.0, 3.0]), jnp.array([2.0, 0.0, 1.0])), 0.79670763, rtol=1e-6
    )
    # rax's default reduce_fn=jnp.mean on a pairwise loss: the mean over the valid pairs.
    s, y = jnp.array([1.2, 0.4, 1.9]), jnp.array([1.0, 2.0, 0.0])
    total = J.pairwise_logistic_loss(s, y, lambdaweight="labeldiff")
    np.testing.assert_allclose(total / 3, 1.8923712, rtol=1e-6)  # 3 pairs with y_i > y_j
    s, y = jnp.array([[2.0, 1.0, 3.0], [1.0, 0.5, 1.5]]), jnp.array([[1.0, 0, 0], [0, 0, 1.0]])
    np.testing.assert_allclose(J.pairwise_hinge_loss(s, y), [2.0, 0.5])
    np.testing.assert_allclose(J.pairwise_logistic_loss(s, y), [1.6265235, 0.7873387], rtol=1e-6)
    np.testing.assert_allclose(J.pointwise_squared_loss(s, y), [11.0, 1.5])
    np.testing.assert_allclose(J.pairwise_squared_loss(s, y), [16.0, 1.0])
    np.testing.assert_allclose(J.ranking_softmax_loss(s, y), [1.4076059, 0.68026966], rtol=1e-6)


def _ndcg(scores, labels):
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    g = 2.0 ** np.asarray(labels) - 1
    dcg = sum(g[i] / np.log2(k + 2) for k, i in enumerate(order))
    ideal = sum(v / np.log2(k + 2) for k, v in enumerate(sorted(g, reverse=True)))
    return dcg / ideal if ideal else 0.0


def test_ndcg_lambdaweight_is_n_times_delta_ndcg():
    """LambdaRank: with lambdaweight="ndcg", pair (i, j) is weighted by n·|ΔNDCG_ij|, the change
    of NDCG when items i and j swap places (computed here by swapping and re-ranking)."""
    rng = np.random.default_rng(3)
    for _ in range(5):
        n = 6
        s = rng.normal(size=n)
        y = rng.integers(0, 4, size=n).astype(np.float64)
        base = _ndcg(s, y)
        want = 0.0
        for i, j in itertools.permutations(range(n), 2):
            if y[i] > y[j]:
                swapped = s.copy()
                swapped[[i, j]] = swapped[[j, i]]
                delta = abs(_ndcg(swapped, y) - base)
                want += n * delta / (1 + np.exp(s[i] - s[j]))  # λ_ij σ(−d_ij)
        got = J.pairwise_soft_zero_one_loss(s, y, lambdaweight="ndcg")
        np.testing.assert_allclose(got, want, rtol=1e-12)
        # "dcg": the same without the division by the ideal DCG.
        ideal = sum(v / np.log2(k + 2) for k, v in enumerate(sorted(2.0**y - 1, reverse=True)))
        np.testing.assert_allclose(
            J.pairwise_soft_zero_one_loss(s, y, lambdaweight="dcg"), want * ideal, rtol=1e-12
        )


def test_lambdaweight_topn():
    """rax's ``topn`` on the DCG lambda weights: k >= n is no cutoff; a smaller k changes the
    loss (discounts beyond rank k are 0, the ideal DCG is DCG@k: the NumPy reference of
    tests/cases/ranking.py); only with "dcg" or "ndcg"."""
    s, y, where, w = _data(21)
    for kind in ("dcg", "ndcg"):
        full = J.pairwise_logistic_loss(s, y, where=where, weights=w, lambdaweight=kind)
        same = J.pairwise_logistic_loss(
            s, y, where=where, weights=w, lambdaweight=kind, topn=s.shape[-1]
        )
        np.testing.assert_array_equal(same, full)
        top2 = J.pairwise_logistic_loss(s, y, where=where, weights=w, lambdaweight=kind, topn=2)
        d = {"scores": s, "labels": y, "where": where, "weights": w}
        want = ref.pairwise_ref("logistic")(d, {"lambdaweight": kind, "topn": 2})
        np.testing.assert_allclose(top2, want, rtol=1e-12)
        assert not np.allclose(top2[:-1], full[:-1])
    for kind in (None, "labeldiff"):
        with pytest.raises(ValueError, match=r"pairwise_hinge_loss: `topn` is the cutoff of the"):
            jaxloss.pairwise_hinge_loss(s, y, lambdaweight=kind, topn=2)
    with pytest.raises(ValueError, match=r"`topn` must be None or an int >= 1"):
        jaxloss.pairwise_squared_loss(s, y, lambdaweight="dcg", topn=0)


def test_labeldiff_lambdaweight():
    s, y, where, _ = _data(4)
    want = np.zeros(s.shape[0])
    for b, i, j in itertools.product(range(s.shape[0]), range(s.shape[1]), range(s.shape[1])):
        if where[b, i] and where[b, j] and y[b, i] > y[b, j]:
            want[b] += (y[b, i] - y[b, j]) * np.logaddexp(0, s[b, j] - s[b, i])
    got = J.pairwise_logistic_loss(s, y, where=where, lambdaweight="labeldiff")
    np.testing.assert_allclose(got, want, rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# Metrics


def _metric_refs(s, y, where, w, topn):
    """NDCG@k and MRR@k from the definitions, list by list."""
    ndcg, mrr = [], []
    for b in range(s.shape[0]):
        items = [i for i in range(s.shape[1]) if where[b, i]]
        order = sorted(items, key=lambda i: (-s[b, i], i))
        k = len(order) if topn is None else topn
        g = (2.0 ** y[b] - 1) * w[b]
        dcg = sum(g[i] / np.log2(r + 2) for r, i in enumerate(order[:k]) if s[b, i] > -np.inf)
        ideal = sum(v / np.log2(r + 2) for r, v in enumerate(sorted(g[items], reverse=True)[:k]))
        ndcg.append(dcg / ideal if ideal else 0.0)
        rr = [1 / (r + 1) for r, i in enumerate(order[:k]) if y[b, i] >= 1 and s[b, i] > -np.inf]
        mrr.append(max(rr, default=0.0))
    return np.array(ndcg), np.array(mrr)


@pytest.mark.parametrize("topn", [None, 1, 3])
def test_metrics_against_the_definitions(topn):
    s, y, where, w = _data(5, b=6, n=7)
    s[0, 2] = s[0, 4]  # a tie: the earlier item ranks first
    s[1, 3] = -np.inf  # not retrieved
    y[2] = 0.0  # no relevant item: NDCG 0, MRR 0
    y[3, :] = 0.5  # labels in (0, 1): gains > 0 but not relevant for MRR
    want_ndcg, want_mrr = _metric_refs(s, y, where, w, topn)
    ndcg = jax.jit(lambda *a: J.ndcg_metric(*a[:2], where=a[2], weights=a[3], topn=topn))(
        s, y, where, w
    )
    mrr = J.mrr_metric(s, y, where=where, topn=topn)
    np.testing.assert_allclose(ndcg, want_ndcg, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(mrr, want_mrr, rtol=1e-12, atol=1e-15)
    assert ndcg[2] == 0 and mrr[2] == 0 and mrr[3] == 0 and ndcg[-1] == 0 and mrr[-1] == 0


@pytest.mark.parametrize("k", [None, 2, 4])
def test_ndcg_equals_scikit_learn_for_binary_labels(k):
    """scikit-learn's ndcg_score (linear gain y) equals ours (2^y − 1) for 0/1 labels without
    ties in the scores."""
    rng = np.random.default_rng(6)
    s = rng.normal(size=(8, 6))
    y = (rng.uniform(size=(8, 6)) > 0.6).astype(np.float64)
    y[:, 0] = 1.0
    want = [ndcg_score(y[i : i + 1], s[i : i + 1], k=k) for i in range(8)]
    np.testing.assert_allclose(J.ndcg_metric(s, y, topn=k), want, rtol=1e-12)


def test_tied_scores_rank_in_order_of_appearance():
    y = jnp.array([0.0, 1.0, 0.0])
    assert float(J.mrr_metric(jnp.zeros(3), y)) == 0.5  # ranks 1, 2, 3
    assert float(J.mrr_metric(jnp.zeros(3), y[::-1])) == 0.5
    np.testing.assert_allclose(J.ndcg_metric(jnp.zeros(3), y), 1 / np.log2(3))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_topn_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match=r"jaxloss\.ndcg_metric: `topn` must be None or an int"):
        jaxloss.ndcg_metric(jnp.zeros(3), jnp.ones(3), topn=bad)


def test_approximate_losses_tend_to_minus_the_metrics():
    """As the temperature goes to 0 the smooth ranks become the exact ranks."""
    s, y, where, w = _data(7)
    np.testing.assert_allclose(
        J.approx_ndcg_loss(s, y, where=where, weights=w, temperature=1e-4),
        -J.ndcg_metric(s, y, where=where, weights=w),
        rtol=1e-9,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        J.approx_mrr_loss(s, y, where=where, temperature=1e-4),
        -J.mrr_metric(s, y, where=where),
        rtol=1e-9,
        atol=1e-12,
    )


# ----------------------------------------------------------------------------------------------
# Edge cases


def _call(name, s, y, **kw):
    if name not in WEIGHTED:
        kw.pop("weights", None)
    return getattr(J, name)(s, y, **kw)


@functools.cache
def _value_and_grad(name):
    """Jitted (per-list values, d(Σ values)/d scores): lists are independent, so row b of the
    gradient is the gradient of list b's value."""

    def total(s, y, where, w):
        kw = {"where": where} | ({"weights": w} if name in WEIGHTED else {})
        v = getattr(jaxloss, name)(s, y, **kw)
        return jnp.sum(v), v

    grad = jax.grad(total, has_aux=True)
    return jax.jit(lambda s, y, where, w: grad(s, y, where, w)[::-1])


@pytest.mark.parametrize("name", LOSSES)
def test_edge_cases(name):
    """One compiled program per loss, on four lists: an ordinary one, one without a relevant
    item (labels all 0), one with every score tied, one with every item masked. Then a NaN or
    ±inf in a masked item's score, label or weight (nothing changes), and a NaN in one valid
    score (NaN for its list only, value and gradient)."""
    s, y, where, w = _data(8)
    y[1] = 0.0
    s[2] = 0.0
    y[2, :3] = [2.0, 1.0, 0.0]
    where[3] = False
    where[:3, 1] = False
    f = _value_and_grad(name)
    v, g = map(np.asarray, f(s, y, where, w))
    assert np.isfinite(v).all() and np.isfinite(g).all(), (v, g)
    assert v[3] == 0.0 and np.all(g[3] == 0.0), "all items masked"
    assert np.all(g[~where] == 0.0), "masked items get no gradient"
    if name in ZERO_WITHOUT_RELEVANT:
        assert v[1] == 0.0 and np.all(g[1] == 0.0), "no relevant item"
    else:
        assert v[1] > 0.0
    for poison, arr in itertools.product([np.nan, np.inf, -np.inf], range(3)):
        args = [s.copy(), y.copy(), w.copy()]
        args[arr][:3, 1] = poison
        v2, g2 = map(np.asarray, f(args[0], args[1], where, args[2]))
        np.testing.assert_array_equal(v2, v, err_msg=f"{poison} in masked input {arr}")
        np.testing.assert_array_equal(g2, g, err_msg=f"{poison} in masked input {arr}")
    for arr in range(3 if name in WEIGHTED else 2):
        args = [s.copy(), y.copy(), w.copy()]
        args[arr][0, 2] = np.nan
        v2, g2 = map(np.asarray, f(args[0], args[1], where, args[2]))
        assert np.isnan(v2[0]), f"NaN in input {arr}"
        np.testing.assert_array_equal(v2[1:], v[1:])
        assert np.isnan(g2[0][where[0]]).all() and np.all(g2[0][~where[0]] == 0)
        np.testing.assert_array_equal(g2[1:], g[1:])


@pytest.mark.parametrize("name", ["ndcg_metric", "mrr_metric"])
def test_nan_in_metrics_is_nan_for_its_list_only(name):
    s, y, where, _ = _data(10)
    s[0, 0] = np.nan
    v = getattr(J, name)(s, y, where=where)
    assert np.isnan(v[0]) and np.isfinite(v[1:]).all()


def test_shift_invariance():
    s, y, where, w = _data(11)
    for name in (
        "ranking_softmax_loss",
        "listmle_loss",
        "pairwise_logistic_loss",
        "pairwise_squared_loss",
        "approx_ndcg_loss",
        "approx_mrr_loss",
    ):
        np.testing.assert_allclose(
            _call(name, s + 3.0, y, where=where, weights=w),
            _call(name, s, y, where=where, weights=w),
            rtol=1e-12,
            err_msg=name,
        )


def test_low_precision_in_float32_out():
    s, y, where, w = _data(12)
    for name in LOSSES:
        v = _call(
            name,
            jnp.asarray(s, jnp.bfloat16),
            jnp.asarray(y, jnp.bfloat16),
            where=where,
            weights=jnp.asarray(w, jnp.bfloat16),
        )
        assert v.dtype == jnp.float32, name


# ----------------------------------------------------------------------------------------------
# Errors


def test_errors_name_the_function_and_argument():
    s, y = jnp.zeros((2, 3)), jnp.ones((2, 3))
    with pytest.raises(ValueError, match=r"pairwise_hinge_loss: `lambdaweight` must be None, "):
        jaxloss.pairwise_hinge_loss(s, y, lambdaweight="lambdarank")
    with pytest.raises(ValueError, match=r"approx_ndcg_loss: `temperature` must be finite and > 0"):
        jaxloss.approx_ndcg_loss(s, y, temperature=0.0)
    with pytest.raises(TypeError, match=r"listmle_loss: `where` must be a bool array"):
        jaxloss.listmle_loss(s, y, where=jnp.ones((2, 3)))
    with pytest.raises(ValueError, match=r"ranking_softmax_loss: `scores` and `where` must have"):
        jaxloss.ranking_softmax_loss(s, y, where=jnp.ones((2, 2), bool))
    with pytest.raises(ValueError, match=r"pointwise_squared_loss: `weights` must be finite and"):
        jaxloss.pointwise_squared_loss(s, y, weights=-jnp.ones((2, 3)))
    with pytest.raises(ValueError, match=r"ranking_softmax_loss: `labels` must be finite and >= 0"):
        jaxloss.ranking_softmax_loss(s, -y)
    with pytest.raises(ValueError, match=r"listmle_loss: `scores` must have a list axis"):
        jaxloss.listmle_loss(jnp.float32(1.0), jnp.float32(1.0))
    # A masked item's label or weight is not checked (it takes no part).
    where = jnp.array([[True, True, False]] * 2)
    bad = y.at[:, 2].set(-1.0)
    jaxloss.ranking_softmax_loss(s, bad, where=where, weights=bad.at[:, :2].set(1.0))


# ----------------------------------------------------------------------------------------------
# Properties (bounded hypothesis runs; one shape, so one compile per function)

_SCORES = hnp.arrays(np.float64, (3, 5), elements=st.floats(-20, 20))
_LABELS = hnp.arrays(np.float64, (3, 5), elements=st.sampled_from([0.0, 1.0, 2.0, 3.0]))
_MASKS = hnp.arrays(np.bool_, (3, 5))


@settings(max_examples=30, deadline=None)
@given(_SCORES, _LABELS, _MASKS)
def test_ranges_and_perfect_ranking(s, y, where):
    """Non-negative losses, approximate losses in [−1, 0], metrics in [0, 1]; scoring by the
    labels themselves gives NDCG 1 on every list with a relevant item, and MRR 1 where an item
    has y >= 1."""
    for name in (
        "ranking_softmax_loss",
        "listmle_loss",
        "pairwise_hinge_loss",
        "pairwise_logistic_loss",
        "pairwise_soft_zero_one_loss",
        "pairwise_squared_loss",
        "pointwise_sigmoid_loss",
        "pointwise_squared_loss",
    ):
        assert np.all(np.asarray(_call(name, s, y, where=where)) >= 0), name
    for name in ("approx_ndcg_loss", "approx_mrr_loss"):
        v = np.asarray(_call(name, s, y, where=where))
        assert np.all((v >= -1 - 1e-12) & (v <= 0)), name
    ndcg = np.asarray(J.ndcg_metric(s, y, where=where))
    mrr = np.asarray(J.mrr_metric(s, y, where=where))
    assert np.all((ndcg >= 0) & (ndcg <= 1 + 1e-12) & (mrr >= 0) & (mrr <= 1))
    relevant = ((y > 0) & where).any(-1)
    np.testing.assert_allclose(
        np.asarray(J.ndcg_metric(y, y, where=where))[relevant], 1.0, rtol=1e-12
    )
    hit = ((y >= 1) & where).any(-1)
    np.testing.assert_array_equal(np.asarray(J.mrr_metric(y, y, where=where))[hit], 1.0)
