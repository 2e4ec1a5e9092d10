"""``reduction="mean" | "sum"`` of the cross-entropy losses against PyTorch's formulas.

Every expected number comes from an independent NumPy float64 transcription of PyTorch's
documented formulas (torch is not a test dependency), written the way torch computes them:

  CrossEntropyLoss(weight=w, ignore_index=ii, label_smoothing=ε), class-index targets, C classes,
  V = {n : y_n != ii}, logp = log_softmax(x):
    nll_n    = -w_{y_n} logp_{n,y_n},        smooth_n = -Σ_c w_c logp_{n,c}        (n in V)
    'mean'   = (1 - ε) Σ_V nll_n / Σ_V w_{y_n} + (ε/C) Σ_V smooth_n / Σ_V w_{y_n}
    'sum'    = (1 - ε) Σ_V nll_n + (ε/C) Σ_V smooth_n
  CrossEntropyLoss(weight=w, label_smoothing=ε), probability targets t, N examples:
    l_n = -Σ_c w_c ((1 - ε) t_{n,c} + ε/C) logp_{n,c},   'mean' = Σ_n l_n / N (not by weights)
  NLLLoss(weight=w, ignore_index=ii):  l_n = -w_{y_n} x_{n,y_n};  'mean' = Σ_V l_n / Σ_V w_{y_n}
  BCEWithLogitsLoss(pos_weight=p): l = -[p t log σ(x) + (1 - t) log(1 - σ(x))], 'mean' = Σ l / N
  BCELoss: l = -[t max(log p, -100) + (1 - t) max(log(1 - p), -100)],          'mean' = Σ l / N

Gradients are checked against the closed forms of those expressions (NumPy), and the all-ignored
batch gives 0 with a zero, finite gradient (torch: NaN).
"""

from __future__ import annotations

import itertools
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss

N, C = 6, 4
W = np.array([0.5, 2.0, 1.0, 3.0])
II = -100
RTOL = 1e-12


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(N, C)) * 2
    y = rng.integers(0, C, size=N)
    y_ignored = y.copy()
    y_ignored[[1, 4]] = II
    t = rng.dirichlet(np.ones(C), size=N)
    return z, y, y_ignored, t


def _log_softmax(z):
    m = z.max(-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))


def _softmax(z):
    return np.exp(_log_softmax(z))


# ---------------------------------------------------------------- PyTorch's formulas (NumPy)


def torch_ce_indices(z, y, w, ignore_index, eps, reduction):
    c = z.shape[-1]
    w = np.ones(c) if w is None else w
    keep = np.ones(y.shape, bool) if ignore_index is None else y != ignore_index
    logp = _log_softmax(z[keep])
    yk = y[keep]
    nll = -w[yk] * logp[np.arange(len(yk)), yk]
    smooth = -(logp * w).sum(-1)
    if reduction == "sum":
        return (1 - eps) * nll.sum() + eps / c * smooth.sum()
    denom = w[yk].sum()
    return (1 - eps) * nll.sum() / denom + eps / c * smooth.sum() / denom


def torch_ce_probs(z, t, w, eps, reduction):
    c = z.shape[-1]
    w = np.ones(c) if w is None else w
    q = (1 - eps) * t + eps / c
    per = -(w * q * _log_softmax(z)).sum(-1)
    return per.sum() if reduction == "sum" else per.sum() / per.size


def torch_nll(x, y, w, ignore_index, reduction):
    w = np.ones(x.shape[-1]) if w is None else w
    keep = np.ones(y.shape, bool) if ignore_index is None else y != ignore_index
    yk = y[keep]
    per = -w[yk] * x[keep][np.arange(len(yk)), yk]
    return per.sum() if reduction == "sum" else per.sum() / w[yk].sum()


# ---------------------------------------------------------------- closed-form gradients (NumPy)


def grad_ce_indices(z, y, w, ignore_index, eps, reduction):
    """d/dz of the above: per kept row, (Σ_c w_c q_c) softmax - w ⊙ q, q the smoothed one-hot."""
    c = z.shape[-1]
    w = np.ones(c) if w is None else w
    keep = np.ones(y.shape, bool) if ignore_index is None else y != ignore_index
    q = np.full(z.shape, eps / c)
    q[keep, y[keep]] += 1 - eps
    wq = w * q
    g = wq.sum(-1, keepdims=True) * _softmax(z) - wq
    g[~keep] = 0
    return g if reduction == "sum" else g / w[y[keep]].sum()


def grad_ce_probs(z, t, w, eps, reduction):
    c = z.shape[-1]
    w = np.ones(c) if w is None else w
    wq = w * ((1 - eps) * t + eps / c)
    g = wq.sum(-1, keepdims=True) * _softmax(z) - wq
    return g if reduction == "sum" else g / z.shape[0]


def grad_nll(x, y, w, ignore_index, reduction):
    w = np.ones(x.shape[-1]) if w is None else w
    keep = np.ones(y.shape, bool) if ignore_index is None else y != ignore_index
    g = np.zeros_like(x)
    g[keep, y[keep]] = -w[y[keep]]
    return g if reduction == "sum" else g / w[y[keep]].sum()


# ---------------------------------------------------------------- tests


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


def _check(value, grad, expected_value, expected_grad):
    np.testing.assert_allclose(float(value), expected_value, rtol=RTOL, atol=1e-14)
    np.testing.assert_allclose(np.asarray(grad), expected_grad, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_integer_labels_every_combination(reduction):
    z, y_all, y_ign, _ = _data(0)
    fn = jaxloss.softmax_cross_entropy_with_integer_labels
    for weighted, ignore, eps in itertools.product([False, True], [False, True], [0.0, 0.1]):
        w = W if weighted else None
        y = y_ign if ignore else y_all
        ii = II if ignore else None

        def loss(zz, w=w, y=y, ii=ii, eps=eps):
            return fn(zz, y, class_weights=w, ignore_index=ii, label_smoothing=eps,
                      reduction=reduction)

        value, grad = jax.value_and_grad(loss)(jnp.asarray(z))
        _check(value, grad, torch_ce_indices(z, y, w, ii, eps, reduction),
               grad_ce_indices(z, y, w, ii, eps, reduction))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_probability_targets_every_combination(reduction):
    z, _, _, t = _data(1)
    for weighted, eps in itertools.product([False, True], [0.0, 0.1]):
        w = W if weighted else None

        def loss(zz, w=w, eps=eps):
            return jaxloss.softmax_cross_entropy(zz, t, class_weights=w, label_smoothing=eps,
                                                 reduction=reduction)

        value, grad = jax.value_and_grad(loss)(jnp.asarray(z))
        _check(value, grad, torch_ce_probs(z, t, w, eps, reduction),
               grad_ce_probs(z, t, w, eps, reduction))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_nll_every_combination(reduction):
    z, y_all, y_ign, _ = _data(2)
    x = _log_softmax(z)
    for weighted, ignore in itertools.product([False, True], [False, True]):
        w = W if weighted else None
        y = y_ign if ignore else y_all
        ii = II if ignore else None

        def loss(xx, w=w, y=y, ii=ii):
            return jaxloss.nll_loss(xx, y, class_weights=w, ignore_index=ii, reduction=reduction)

        value, grad = jax.value_and_grad(loss)(jnp.asarray(x))
        _check(value, grad, torch_nll(x, y, w, ii, reduction), grad_nll(x, y, w, ii, reduction))


def test_integer_labels_spatial_class_axis():
    """[N, C, d] logits with axis=1 (torch's K-dimensional case): the mean runs over every kept
    position, divided by Σ w[y] over them."""
    rng = np.random.default_rng(3)
    z = rng.normal(size=(3, C, 5))
    y = rng.integers(0, C, size=(3, 5))
    y[0, :2] = II
    value = jaxloss.softmax_cross_entropy_with_integer_labels(
        jnp.asarray(z), y, axis=1, class_weights=W, ignore_index=II, label_smoothing=0.2,
        reduction="mean")
    flat_z = np.moveaxis(z, 1, -1).reshape(-1, C)
    expected = torch_ce_indices(flat_z, y.reshape(-1), W, II, 0.2, "mean")
    np.testing.assert_allclose(float(value), expected, rtol=RTOL)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_binary_cross_entropies(reduction):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(N, 3)) * 2
    t = rng.uniform(size=(N, 3))
    pw = np.array([0.5, 1.0, 3.0])
    eps = 0.1
    ts = t * (1 - eps) + eps / 2  # jaxloss's (Keras's) smoothing, applied to torch's labels
    sig = 1 / (1 + np.exp(-x))
    per = -(pw * ts * np.log(sig) + (1 - ts) * np.log1p(-sig))
    expected = per.sum() if reduction == "sum" else per.sum() / per.size
    g = sig - ts + (pw - 1) * ts * (sig - 1)
    g = g if reduction == "sum" else g / per.size
    value, grad = jax.value_and_grad(
        lambda xx: jaxloss.sigmoid_binary_cross_entropy(
            xx, t, pos_weight=pw, label_smoothing=eps, reduction=reduction))(jnp.asarray(x))
    _check(value, grad, expected, g)

    p = np.clip(sig, 0.05, 0.95)
    per = -(t * np.maximum(np.log(p), -100) + (1 - t) * np.maximum(np.log(1 - p), -100))
    expected = per.sum() if reduction == "sum" else per.sum() / per.size
    g = -t / p + (1 - t) / (1 - p)
    g = g if reduction == "sum" else g / per.size
    value, grad = jax.value_and_grad(
        lambda pp: jaxloss.binary_cross_entropy(pp, t, reduction=reduction))(jnp.asarray(p))
    _check(value, grad, expected, g)


def test_bce_torch_per_element_weight_recipe():
    """The docstring's recipe for BCELoss(weight=v, reduction='mean'): Σ v·l / N, not / Σ v."""
    rng = np.random.default_rng(5)
    p = rng.uniform(0.05, 0.95, size=(N, 3))
    t = rng.uniform(size=(N, 3))
    v = rng.uniform(0.1, 3.0, size=(N, 3))
    values = jaxloss.binary_cross_entropy(jnp.asarray(p), t)
    expected = (v * -(t * np.log(p) + (1 - t) * np.log1p(-p))).mean()
    np.testing.assert_allclose(float(jaxloss.sum(values, weights=v) / values.size), expected,
                               rtol=RTOL)


def test_none_is_the_per_example_default():
    z, _, y, t = _data(6)
    for call in [
        lambda **kw: jaxloss.softmax_cross_entropy_with_integer_labels(
            z, y, class_weights=W, ignore_index=II, label_smoothing=0.1, **kw),
        lambda **kw: jaxloss.softmax_cross_entropy(z, t, class_weights=W, **kw),
        lambda **kw: jaxloss.nll_loss(z, y, class_weights=W, ignore_index=II, **kw),
        lambda **kw: jaxloss.sigmoid_binary_cross_entropy(z, t, **kw),
        lambda **kw: jaxloss.binary_cross_entropy(t, t, **kw),
    ]:
        np.testing.assert_array_equal(np.asarray(call(reduction="none")), np.asarray(call()))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_all_ignored_gives_zero_with_zero_finite_gradient(reduction):
    z, _, _, _ = _data(7)
    y = np.full(N, II)
    for loss in [
        lambda zz: jaxloss.softmax_cross_entropy_with_integer_labels(
            zz, y, class_weights=W, ignore_index=II, label_smoothing=0.1, reduction=reduction),
        lambda zz: jaxloss.softmax_cross_entropy_with_integer_labels(
            zz, y, ignore_index=II, reduction=reduction),
        lambda zz: jaxloss.nll_loss(zz, y, class_weights=W, ignore_index=II, reduction=reduction),
    ]:
        value, grad = jax.jit(jax.value_and_grad(loss))(jnp.asarray(z))
        assert float(value) == 0.0
        assert np.all(np.asarray(grad) == 0.0)


def test_nan_policy():
    """A NaN in a kept example makes the mean NaN; a NaN in an ignored example does not count."""
    z, _, y, _ = _data(8)
    fn = jaxloss.softmax_cross_entropy_with_integer_labels
    base = fn(z, y, ignore_index=II, reduction="mean")
    kept, ignored = z.copy(), z.copy()
    kept[0, 2] = np.nan
    ignored[1, 2] = np.nan  # row 1 is ignored
    assert np.isnan(float(fn(kept, y, ignore_index=II, reduction="mean")))
    assert np.isnan(float(jaxloss.nll_loss(kept, y, ignore_index=II, reduction="sum")))
    assert float(fn(ignored, y, ignore_index=II, reduction="mean")) == float(base)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda r: jaxloss.softmax_cross_entropy_with_integer_labels(
            jnp.zeros((2, 3)), jnp.array([0, 1]), reduction=r),
         "softmax_cross_entropy_with_integer_labels"),
        (lambda r: jaxloss.softmax_cross_entropy(jnp.zeros((2, 3)), jnp.zeros((2, 3)),
                                                 reduction=r), "softmax_cross_entropy"),
        (lambda r: jaxloss.nll_loss(jnp.zeros((2, 3)), jnp.array([0, 1]), reduction=r),
         "nll_loss"),
        (lambda r: jaxloss.sigmoid_binary_cross_entropy(jnp.zeros(2), jnp.zeros(2), reduction=r),
         "sigmoid_binary_cross_entropy"),
        (lambda r: jaxloss.binary_cross_entropy(jnp.zeros(2), jnp.zeros(2), reduction=r),
         "binary_cross_entropy"),
    ],
)
def test_bad_reduction_is_a_value_error(call, name):
    for bad in ["avg", "batchmean", None]:
        with pytest.raises(ValueError, match=rf"jaxloss\.{name}: `reduction` must be one of"):
            call(bad)


def test_readme_snippet_is_torch_cross_entropy():
    """README "Use": reduction="mean" with class weights, ignore_index=-100 and smoothing 0.1 is
    nn.CrossEntropyLoss(weight=w, ignore_index=-100, label_smoothing=0.1) (torch's formula in
    NumPy), and the reduction the README used before (class weights in jaxloss.mean) is not."""
    rng = np.random.default_rng(9)
    x = rng.normal(size=(16, 8))
    labels = rng.integers(0, C, size=16)
    labels[::4] = -100  # 25% padding
    params = {"w": rng.normal(size=(8, C)), "b": rng.normal(size=C)}
    class_weights = jnp.asarray(W)

    def loss_fn(params, x, labels, class_weights):  # the README snippet
        logits = x @ params["w"] + params["b"]
        return jaxloss.softmax_cross_entropy_with_integer_labels(
            logits, labels, class_weights=class_weights, label_smoothing=0.1, ignore_index=-100,
            reduction="mean")

    logits = x @ params["w"] + params["b"]
    expected = torch_ce_indices(logits, labels, W, -100, 0.1, "mean")
    value, grads = jax.jit(jax.value_and_grad(loss_fn))(params, x, labels, class_weights)
    np.testing.assert_allclose(float(value), expected, rtol=RTOL)
    g_logits = grad_ce_indices(logits, labels, W, -100, 0.1, "mean")
    np.testing.assert_allclose(np.asarray(grads["w"]), x.T @ g_logits, rtol=1e-10, atol=1e-13)

    valid = labels != -100
    old = jaxloss.mean(
        jaxloss.softmax_cross_entropy_with_integer_labels(
            logits, labels, label_smoothing=0.1, ignore_index=-100),
        weights=class_weights[np.where(valid, labels, 0)], where=valid)
    assert abs(float(old) - expected) > 1e-3


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_linear_cross_entropy(reduction):
    """jaxloss.fused.linear_cross_entropy(h, W, y, ...) = CrossEntropyLoss(ignore_index=,
    label_smoothing=, reduction=)(h @ W, y), for the value and the gradient w.r.t. h and W."""
    from jaxloss import fused

    rng = np.random.default_rng(10)
    h = rng.normal(size=(2, 4, 3))
    w = rng.normal(size=(3, 7))
    y_all = rng.integers(0, 7, size=(2, 4))
    y_ign = y_all.copy()
    y_ign[0, 1] = y_ign[1, 3] = II
    hf = h.reshape(-1, 3)
    for ignore, eps in itertools.product([False, True], [0.0, 0.1]):
        y = y_ign if ignore else y_all
        ii = II if ignore else None

        def loss(hh, ww, y=y, ii=ii, eps=eps):
            return fused.linear_cross_entropy(hh, ww, y, block_size=4, ignore_index=ii,
                                              label_smoothing=eps, reduction=reduction)

        value, (gh, gw) = jax.value_and_grad(loss, argnums=(0, 1))(jnp.asarray(h), jnp.asarray(w))
        logits = hf @ w
        g = grad_ce_indices(logits, y.reshape(-1), None, ii, eps, reduction)
        np.testing.assert_allclose(
            float(value), torch_ce_indices(logits, y.reshape(-1), None, ii, eps, reduction),
            rtol=1e-11)
        np.testing.assert_allclose(np.asarray(gh).reshape(-1, 3), g @ w.T, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(np.asarray(gw), hf.T @ g, rtol=1e-9, atol=1e-12)

    all_ignored = np.full((2, 4), II)
    value, (gh, gw) = jax.value_and_grad(
        lambda hh, ww: fused.linear_cross_entropy(hh, ww, all_ignored, ignore_index=II,
                                                  reduction=reduction),
        argnums=(0, 1))(jnp.asarray(h), jnp.asarray(w))
    assert float(value) == 0.0
    assert np.all(np.asarray(gh) == 0.0) and np.all(np.asarray(gw) == 0.0)
    with pytest.raises(ValueError, match=r"jaxloss\.linear_cross_entropy: `reduction` must be"):
        fused.linear_cross_entropy(h, w, y_all, reduction="avg")


# ------------------------------------------------ the imbalance and focal cross-entropies
#
# The per-example values and their closed-form logit gradients are the NumPy references of the
# conformance cases (tests/cases/_softmax_labels.py); the reduction is PyTorch's for class-index
# targets: 'sum' = Σ_V l_n, 'mean' = Σ_V l_n / Σ_V w_{y_n} with w the loss's class weights (the
# class-balanced weights, the focal ``alpha``; 1 otherwise: the count of kept examples).

from tests.cases import _softmax_labels as sl  # noqa: E402

_CB_BETA = 0.99


def _effective_number(beta):
    raw = (1 - beta) / (1 - beta**sl.COUNTS)
    return raw * len(sl.COUNTS) / raw.sum()


# name: (kind of the reference, hyperparameters, the mean's per-class weights or None)
IMBALANCE = {
    "class_balanced_cross_entropy": (
        "cb", {"samples_per_class": sl.COUNTS, "beta": _CB_BETA}, _effective_number(_CB_BETA)),
    "class_balanced_focal_loss": (
        "cbfocal", {"samples_per_class": sl.COUNTS, "beta": _CB_BETA, "gamma": 1.5},
        _effective_number(_CB_BETA)),
    "softmax_focal_loss": ("focal", {"gamma": 0.5, "poly_epsilon": 0.5}, None),
    "softmax_focal_loss+alpha": ("focal", {"alpha": sl.W5, "gamma": 2.0}, sl.W5),
    "poly1_cross_entropy": ("poly", {"epsilon": 1.5}, None),
    "ldam_loss": ("ldam", {"samples_per_class": sl.COUNTS, "scale": 3.0}, None),
    "logit_adjusted_cross_entropy": ("la", {"class_priors": sl.PRIORS, "tau": 0.7}, None),
    "generalized_cross_entropy": ("gce", {"q": 0.4}, None),
}


def _imbalance_data(seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=2.0, size=(sl.B, sl.C))
    y = rng.integers(0, sl.C, size=sl.B)
    y[[1, 4]] = II
    return z, y


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", sorted(IMBALANCE))
def test_imbalance_losses_reduce_as_torch(name, reduction):
    kind, hyper, w = IMBALANCE[name]
    fn = getattr(jaxloss, name.split("+")[0])
    z, y = _imbalance_data(zlib.crc32(name.encode()))
    h = {**hyper, "ignore_index": II}
    d = {"labels": y, "logits_c": z}
    per_example = sl._mc_value(d, h, kind)  # 0 at ignored examples
    rows = sl._mc_dz(d, h, kind)  # d l_n / d z_n, 0 at ignored examples
    kept = y != II
    denominator = 1.0
    if reduction == "mean":
        denominator = kept.sum() if w is None else w[y[kept]].sum()
    expected = per_example[kept].sum() / denominator
    value, grad = jax.jit(jax.value_and_grad(
        lambda zz: fn(zz, y, ignore_index=II, reduction=reduction, **hyper)))(jnp.asarray(z))
    np.testing.assert_allclose(float(value), expected, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(np.asarray(grad), rows / denominator, rtol=1e-9, atol=1e-12)
    # "none" stays the per-example default
    np.testing.assert_allclose(np.asarray(fn(z, y, ignore_index=II, **hyper)), per_example,
                               rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_class_balanced_cross_entropy_is_torch_weighted_cross_entropy(reduction):
    """torch.nn.CrossEntropyLoss(weight=w, ignore_index=, reduction=) with the effective-number
    weights w, as the docstring says (the torch formula of this file's top)."""
    z, y = _imbalance_data(11)
    w = _effective_number(_CB_BETA)
    got = jaxloss.class_balanced_cross_entropy(z, y, samples_per_class=sl.COUNTS, beta=_CB_BETA,
                                               ignore_index=II, reduction=reduction)
    np.testing.assert_allclose(float(got), torch_ce_indices(z, y, w, II, 0.0, reduction),
                               rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_focal_with_gamma_0_and_alpha_is_weighted_cross_entropy_reduced(reduction):
    z, y = _imbalance_data(12)
    got = jaxloss.softmax_focal_loss(z, y, alpha=sl.W5, gamma=0.0, ignore_index=II,
                                     reduction=reduction)
    np.testing.assert_allclose(float(got), torch_ce_indices(z, y, sl.W5, II, 0.0, reduction),
                               rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", sorted(IMBALANCE))
def test_imbalance_all_ignored_gives_zero_with_zero_gradient(name, reduction):
    hyper = IMBALANCE[name][1]
    fn = getattr(jaxloss, name.split("+")[0])
    z, _ = _imbalance_data(13)
    y = np.full(sl.B, II)
    value, grad = jax.jit(jax.value_and_grad(
        lambda zz: fn(zz, y, ignore_index=II, reduction=reduction, **hyper)))(jnp.asarray(z))
    assert float(value) == 0.0
    assert np.all(np.asarray(grad) == 0.0)


@pytest.mark.parametrize("name", sorted({n.split("+")[0] for n in IMBALANCE}))
def test_imbalance_bad_reduction_is_a_value_error(name):
    hyper = IMBALANCE[name][1]
    with pytest.raises(ValueError, match=rf"jaxloss\.{name}: `reduction` must be one of"):
        getattr(jaxloss, name)(np.zeros((2, sl.C)), np.array([0, 1]), reduction="avg", **hyper)
