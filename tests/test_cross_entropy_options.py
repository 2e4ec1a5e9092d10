"""Option-interaction table for the multi-class cross-entropy losses.

``softmax_cross_entropy_with_integer_labels``, ``softmax_cross_entropy`` (probability targets) and
``nll_loss`` are run over the product of their options: class weights x ignore_index x label
smoothing x soft targets x class mask ``where``, and every row checks both reductions (PyTorch's
'mean' and 'sum', built from ``jaxloss.sum`` / ``jaxloss.mean``). Every expected value comes from
an independent NumPy float64 implementation of PyTorch's documented formulas (torch is not a test
dependency):

  CrossEntropyLoss(weight=w, ignore_index, label_smoothing=ε), class-index targets, C classes:
    l_n = (1 - ε) w_{y_n} (-log p_{n,y_n}) + (ε/C) Σ_c w_c (-log p_{n,c}),   0 for ignored n
    'mean' = Σ_n l_n / Σ_{n not ignored} w_{y_n},   'sum' = Σ_n l_n
  CrossEntropyLoss(weight=w, label_smoothing=ε), probability targets t:
    l_n = -Σ_c w_c q_{n,c} log p_{n,c},  q = (1 - ε) t + ε/C,   'mean' = Σ_n l_n / N
  NLLLoss(weight=w, ignore_index):  l_n = -w_{y_n} x_{n,y_n},  'mean' as for class indices.

jaxloss's class mask ``where`` (no PyTorch counterpart) removes classes from the softmax and from
the target, so C becomes K = the number of counted classes of the row. Masked logits are set to a
large value in these tests, so that a masked class leaking into the softmax changes every number.

All checks run in float64 (``jax.enable_x64`` scoped to each test by a fixture) with tight
tolerances, except where float32 is the point.
"""

from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss

N, C = 7, 5
CLASS_WEIGHTS = np.array([0.5, 2.0, 1.0, 0.25, 3.0])
MASKED_LOGIT = 40.0  # value given to masked-out logits: it would dominate any unmasked softmax
RTOL = ATOL = 1e-12

int_ce = jaxloss.softmax_cross_entropy_with_integer_labels
prob_ce = jaxloss.softmax_cross_entropy
nll = jaxloss.nll_loss


@pytest.fixture(autouse=True)
def x64():
    """float64 for this module's tests only; the global flag is restored afterwards."""
    with jax.enable_x64(True):
        yield


def close(actual, expected, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------------------------
# Inputs


def make_batch(mask_kind, ignore_index, seed=0):
    """Logits [N, C], labels [N], class mask (or None), valid [N] and the counted classes [N, C].

    mask_kind: None, "class" (one class masked for every row, shape [1, C]) or "row" (a random
    per-row mask, shape [N, C]). Labels are drawn from each row's counted classes; rows 1 and 4
    are set to ``ignore_index`` when one is given (an in-range ignore_index may ignore more rows).
    """
    rng = np.random.default_rng(seed)
    logits = 3.0 * rng.standard_normal((N, C))
    if mask_kind is None:
        mask = None
        counted = np.ones((N, C), bool)
    elif mask_kind == "class":
        mask = np.array([[True, True, False, True, True]])
        counted = np.broadcast_to(mask, (N, C)).copy()
    elif mask_kind == "row":
        counted = rng.random((N, C)) < 0.5
        counted[np.arange(N), rng.integers(0, C, N)] = True
        mask = counted
    else:
        raise AssertionError(mask_kind)
    labels = np.array([rng.choice(np.flatnonzero(row)) for row in counted], dtype=np.int32)
    if ignore_index is not None:
        labels[[1, 4]] = ignore_index
    valid = np.ones(N, bool) if ignore_index is None else labels != ignore_index
    assert valid.any()
    logits = np.where(counted, logits, MASKED_LOGIT)
    return logits, labels, mask, valid, counted


def make_targets(kind, seed=1):
    """Probability targets [N, C]: one-hot rows or random soft rows (mass on every class)."""
    rng = np.random.default_rng(seed)
    if kind == "one-hot":
        return np.eye(C)[rng.integers(0, C, N)]
    return rng.dirichlet(np.ones(C), N)


# ---------------------------------------------------------------------------------------------
# NumPy float64 references (PyTorch's formulas, generalised to a class mask)


def _masked_exp(logits, counted):
    """exp(z - max) on counted classes (0 elsewhere), and its row sums (1 for empty rows)."""
    z = np.where(counted, logits, -np.inf)
    m = np.where(counted.any(axis=-1, keepdims=True), z.max(axis=-1, keepdims=True), 0.0)
    e = np.exp(z - m)
    s = e.sum(axis=-1, keepdims=True)
    return m, e, np.where(s > 0, s, 1.0)


def ref_neg_log_softmax(logits, counted):
    """-log p over the counted classes of each row; 0 on masked classes (never used)."""
    m, _, s = _masked_exp(logits, counted)
    return np.where(counted, m + np.log(s) - logits, 0.0)


def ref_softmax(logits, counted):
    _, e, s = _masked_exp(logits, counted)
    return e / s


def weights_or_ones(w):
    return np.ones(C) if w is None else w


def ref_int_ce(logits, labels, w, eps, valid, counted):
    w = weights_or_ones(w)
    nlp = ref_neg_log_softmax(logits, counted)
    k = np.maximum(counted.sum(axis=-1), 1)
    y = np.where(valid, labels, 0)
    hard = w[y] * nlp[np.arange(N), y]
    smooth = (w * nlp).sum(axis=-1) / k
    return np.where(valid, (1 - eps) * hard + eps * smooth, 0.0)


def ref_int_ce_grad(logits, labels, w, eps, valid, counted):
    """dl_n/dz_{n,c} = [(1-ε) w_y + (ε/K) Σ_c' w_c'] p_c − (1-ε) w_y [c=y] − (ε/K) w_c."""
    w = weights_or_ones(w)
    p = ref_softmax(logits, counted)
    k = np.maximum(counted.sum(axis=-1, keepdims=True), 1)
    y = np.where(valid, labels, 0)
    wy = w[y][:, None]
    wc = np.where(counted, w, 0.0)
    scale = (1 - eps) * wy + (eps / k) * wc.sum(axis=-1, keepdims=True)
    g = scale * p - (1 - eps) * wy * np.eye(C)[y] - (eps / k) * wc
    return np.where(valid[:, None] & counted, g, 0.0)


def ref_prob_ce(logits, targets, w, eps, counted):
    w = weights_or_ones(w)
    k = np.maximum(counted.sum(axis=-1, keepdims=True), 1)
    q = np.where(counted, (1 - eps) * targets + eps / k, 0.0)
    return (w * q * ref_neg_log_softmax(logits, counted)).sum(axis=-1)


def ref_prob_ce_grad_logits(logits, targets, w, eps, counted):
    """dl/dz_c = (Σ_c' w_c' q_c') p_c − w_c q_c."""
    w = weights_or_ones(w)
    k = np.maximum(counted.sum(axis=-1, keepdims=True), 1)
    wq = w * np.where(counted, (1 - eps) * targets + eps / k, 0.0)
    g = wq.sum(axis=-1, keepdims=True) * ref_softmax(logits, counted) - wq
    return np.where(counted, g, 0.0)


def ref_prob_ce_grad_targets(logits, targets, w, eps, counted):
    """dl/dt_c = (1 - ε) w_c (-log p_c); 0 for masked classes."""
    w = weights_or_ones(w)
    return np.where(counted, (1 - eps) * w * ref_neg_log_softmax(logits, counted), 0.0)


def ref_nll(log_probs, labels, w, valid):
    w = weights_or_ones(w)
    y = np.where(valid, labels, 0)
    return np.where(valid, -w[y] * log_probs[np.arange(N), y], 0.0)


def ref_nll_grad(labels, w, valid):
    w = weights_or_ones(w)
    y = np.where(valid, labels, 0)
    return np.where(valid[:, None], -w[y][:, None] * np.eye(C)[y], 0.0)


def ref_torch_mean_denominator(labels, w, valid):
    """Σ_{n not ignored} w_{y_n}: PyTorch's 'mean' denominator for class-index targets."""
    return weights_or_ones(w)[labels[valid]].sum()


# ---------------------------------------------------------------------------------------------
# Reductions as a user writes them (the module notes of jaxloss._classification)


def torch_reduce(values, labels, class_weights, valid, reduction):
    """PyTorch's 'sum' / 'mean' for class-index targets, from jaxloss's reductions."""
    if reduction == "sum":
        return jaxloss.sum(values)
    w = jnp.ones(C) if class_weights is None else class_weights
    # w[labels] picks an arbitrary (index-clamped) weight at ignored labels; `where` drops it.
    return jaxloss.sum(values) / jaxloss.sum(w[labels], where=valid)


def as_jnp(x):
    return None if x is None else jnp.asarray(x)


# Jitted once at module level: ignore_index is static; ε, weights and mask are traced, so the
# traced-ε code path is covered and the compile cache is shared across the table. Each returns
# the per-example values and the gradient of their plain sum (per example: rows are independent).
@functools.partial(jax.jit, static_argnames=("ignore_index", "axis"))
def jit_int_ce(logits, labels, class_weights, eps, where, *, ignore_index, axis=-1):
    def total(z):
        v = int_ce(z, labels, class_weights=class_weights, label_smoothing=eps,
                   ignore_index=ignore_index, where=where, axis=axis)
        return jnp.sum(v), v

    (_, values), grad = jax.value_and_grad(total, has_aux=True)(logits)
    return values, grad


@jax.jit
def jit_prob_ce(logits, targets, class_weights, eps, where):
    def total(z, t):
        v = prob_ce(z, t, class_weights=class_weights, label_smoothing=eps, where=where)
        return jnp.sum(v), v

    (_, values), grads = jax.value_and_grad(total, argnums=(0, 1), has_aux=True)(logits, targets)
    return values, grads


@functools.partial(jax.jit, static_argnames=("ignore_index",))
def jit_nll(log_probs, labels, class_weights, *, ignore_index):
    def total(lp):
        v = nll(lp, labels, class_weights=class_weights, ignore_index=ignore_index)
        return jnp.sum(v), v

    (_, values), grad = jax.value_and_grad(total, has_aux=True)(log_probs)
    return values, grad


def reduce_prob(values, reduction):
    return jaxloss.mean(values) if reduction == "mean" else jaxloss.sum(values)


jit_int_ce_values = jax.jit(int_ce, static_argnames=("ignore_index",))
jit_nll_values = jax.jit(nll, static_argnames=("ignore_index",))


# ---------------------------------------------------------------------------------------------
# The option axes (stacked parametrize = the full product, with readable ids)

WEIGHTS = pytest.mark.parametrize("class_weights", [None, CLASS_WEIGHTS],
                                  ids=["unweighted", "class-weights"])
IGNORE = pytest.mark.parametrize("ignore_index", [None, -100, 2],
                                 ids=["no-ignore", "ignore=-100", "ignore=2"])
SMOOTHING = pytest.mark.parametrize("eps", [0.0, 0.1, 1.0], ids=["eps=0", "eps=0.1", "eps=1"])
MASK = pytest.mark.parametrize("mask_kind", [None, "class", "row"],
                               ids=["no-mask", "class-mask", "row-mask"])
REDUCTION = pytest.mark.parametrize("reduction", ["mean", "sum"])
TARGETS = pytest.mark.parametrize("target_kind", ["one-hot", "soft"])


# ---------------------------------------------------------------------------------------------
# Integer labels


@MASK
@SMOOTHING
@IGNORE
@WEIGHTS
def test_integer_labels_table(class_weights, ignore_index, eps, mask_kind):
    """Values, both reductions, and the gradient of PyTorch's 'mean' (the gradient of 'sum' is
    that times the constant denominator; it is checked in the jit tests)."""
    logits, labels, mask, valid, counted = make_batch(mask_kind, ignore_index)
    w = as_jnp(class_weights)
    z, y = jnp.asarray(logits), jnp.asarray(labels)
    kwargs = dict(class_weights=w, label_smoothing=eps, ignore_index=ignore_index,
                  where=as_jnp(mask))

    # Per-example values (PyTorch reduction='none').
    values = int_ce(z, y, **kwargs)
    expected = ref_int_ce(logits, labels, class_weights, eps, valid, counted)
    close(values, expected)
    assert np.all(np.asarray(values)[~valid] == 0)

    # reduction='sum' and reduction='mean'.
    denom = ref_torch_mean_denominator(labels, class_weights, valid)
    close(torch_reduce(values, y, w, jnp.asarray(valid), "sum"), expected.sum())

    def torch_mean(z):
        return torch_reduce(int_ce(z, y, **kwargs), y, w, jnp.asarray(valid), "mean")

    mean, grad = jax.value_and_grad(torch_mean)(z)
    close(mean, expected.sum() / denom)
    close(grad, ref_int_ce_grad(logits, labels, class_weights, eps, valid, counted) / denom)
    assert np.all(np.asarray(grad)[~counted] == 0), "masked classes must get exactly 0"


@MASK
@IGNORE
@WEIGHTS
def test_integer_labels_mean_equals_reduction_rule_on_unweighted_values(
    class_weights, ignore_index, mask_kind
):
    """Hard labels, no smoothing: torch 'mean' == jaxloss.mean(unweighted, weights=w[labels])."""
    logits, labels, mask, valid, counted = make_batch(mask_kind, ignore_index)
    w = jnp.ones(C) if class_weights is None else jnp.asarray(class_weights)
    z, y, where = jnp.asarray(logits), jnp.asarray(labels), as_jnp(mask)

    def rule(z):
        v = int_ce(z, y, ignore_index=ignore_index, where=where)
        return jaxloss.mean(v, weights=w[y], where=jnp.asarray(valid))

    def torch_mean(z):
        v = int_ce(z, y, class_weights=as_jnp(class_weights), ignore_index=ignore_index,
                   where=where)
        return torch_reduce(v, y, as_jnp(class_weights), jnp.asarray(valid), "mean")

    expected = ref_int_ce(logits, labels, class_weights, 0.0, valid, counted).sum() / (
        ref_torch_mean_denominator(labels, class_weights, valid))
    close(rule(z), expected)
    close(torch_mean(z), expected)
    close(jax.grad(rule)(z), jax.grad(torch_mean)(z))


@MASK
@SMOOTHING
@WEIGHTS
def test_integer_labels_equal_probability_targets_on_one_hot(class_weights, eps, mask_kind):
    """Label smoothing on integer labels is probability-target CE on the one-hot rows (compared
    on the non-ignored rows; ignored rows are 0 by the integer-label table)."""
    ignore_index = -100
    logits, labels, mask, valid, _ = make_batch(mask_kind, ignore_index)
    one_hot = np.eye(C)[np.where(valid, labels, 0)]
    kw = dict(class_weights=as_jnp(class_weights), label_smoothing=eps, where=as_jnp(mask))
    hard = int_ce(jnp.asarray(logits), jnp.asarray(labels), ignore_index=ignore_index, **kw)
    soft = prob_ce(jnp.asarray(logits), jnp.asarray(one_hot), **kw)
    close(np.asarray(hard)[valid], np.asarray(soft)[valid])

    g_hard = jax.grad(lambda z: jnp.sum(
        int_ce(z, jnp.asarray(labels), ignore_index=ignore_index, **kw)))(jnp.asarray(logits))
    g_soft = jax.grad(lambda z: jnp.sum(
        prob_ce(z, jnp.asarray(one_hot), **kw)))(jnp.asarray(logits))
    close(np.asarray(g_hard)[valid], np.asarray(g_soft)[valid])


@WEIGHTS
def test_integer_labels_class_axis_not_last(class_weights):
    """axis=0 with every option on: the values and gradient of the transposed problem."""
    logits, labels, mask, valid, counted = make_batch("row", -100)
    for eps in (0.0, 0.1, 1.0):  # traced: one compile
        values, grad = jit_int_ce(jnp.asarray(logits.T), jnp.asarray(labels),
                                  as_jnp(class_weights), eps, jnp.asarray(mask.T),
                                  ignore_index=-100, axis=0)
        close(values, ref_int_ce(logits, labels, class_weights, eps, valid, counted))
        close(grad, ref_int_ce_grad(logits, labels, class_weights, eps, valid, counted).T)


# ---------------------------------------------------------------------------------------------
# Probability targets


@MASK
@TARGETS
@SMOOTHING
@WEIGHTS
def test_probability_targets_table(class_weights, eps, target_kind, mask_kind):
    """Values, both reductions, and the gradients of PyTorch's 'mean' (Σ l_n / N) with respect
    to the logits and the targets: dl/dt_c = (1 - ε) w_c (lse - z_c), also where t_c = 0."""
    logits, _, mask, _, counted = make_batch(mask_kind, None)
    targets = make_targets(target_kind)
    w = as_jnp(class_weights)
    z, t = jnp.asarray(logits), jnp.asarray(targets)
    kw = dict(class_weights=w, label_smoothing=eps, where=as_jnp(mask))

    values = prob_ce(z, t, **kw)
    expected = ref_prob_ce(logits, targets, class_weights, eps, counted)
    close(values, expected)
    close(reduce_prob(values, "sum"), expected.sum())

    def torch_mean(z, t):
        return reduce_prob(prob_ce(z, t, **kw), "mean")

    mean, (gz, gt) = jax.value_and_grad(torch_mean, argnums=(0, 1))(z, t)
    close(mean, expected.sum() / N)
    close(gz, ref_prob_ce_grad_logits(logits, targets, class_weights, eps, counted) / N)
    close(gt, ref_prob_ce_grad_targets(logits, targets, class_weights, eps, counted) / N)
    assert np.all(np.asarray(gz)[~counted] == 0)


# ---------------------------------------------------------------------------------------------
# NLL


@REDUCTION
@IGNORE
@WEIGHTS
def test_nll_table(class_weights, ignore_index, reduction):
    logits, labels, _, valid, counted = make_batch(None, ignore_index)
    # Unnormalised log-probabilities: nll_loss must not normalise them.
    log_probs = -np.abs(logits)
    w = as_jnp(class_weights)
    lp, y = jnp.asarray(log_probs), jnp.asarray(labels)

    values = nll(lp, y, class_weights=w, ignore_index=ignore_index)
    expected = ref_nll(log_probs, labels, class_weights, valid)
    close(values, expected)

    def loss(lp):
        v = nll(lp, y, class_weights=w, ignore_index=ignore_index)
        return torch_reduce(v, y, w, jnp.asarray(valid), reduction)

    reduced, grad = jax.value_and_grad(loss)(lp)
    denom = ref_torch_mean_denominator(labels, class_weights, valid) if reduction == "mean" else 1
    close(reduced, expected.sum() / denom)
    close(grad, ref_nll_grad(labels, class_weights, valid) / denom)

    if reduction == "mean":  # the one reduction rule on unweighted values gives the same mean
        ww = jnp.ones(C) if w is None else w
        rule = jaxloss.mean(nll(lp, y, ignore_index=ignore_index), weights=ww[y],
                            where=jnp.asarray(valid))
        close(rule, expected.sum() / denom)

    # On normalised log-probabilities it is the unsmoothed, unmasked integer-label CE.
    log_softmax = -ref_neg_log_softmax(logits, counted)
    close(nll(jnp.asarray(log_softmax), y, class_weights=w, ignore_index=ignore_index),
          int_ce(jnp.asarray(logits), y, class_weights=w, ignore_index=ignore_index))


# ---------------------------------------------------------------------------------------------
# jit == eager. One compile per structural option set (weights None or not, mask None or not,
# ignore_index); ε is traced, so eps=0 also runs the smoothing code path that eager calls skip.
# Compiles cost more than the rest of a test, so the structural sets are a covering subset: each
# weights x mask pair and each ignore_index at least once.

_W = CLASS_WEIGHTS


@pytest.mark.parametrize(
    ("class_weights", "ignore_index", "mask_kind"),
    [
        pytest.param(None, None, None, id="unweighted-no-ignore-no-mask"),
        pytest.param(None, -100, "row", id="unweighted-ignore=-100-row-mask"),
        pytest.param(_W, 2, None, id="class-weights-ignore=2-no-mask"),
        pytest.param(_W, -100, "class", id="class-weights-ignore=-100-class-mask"),
        pytest.param(_W, 2, "row", id="class-weights-ignore=2-row-mask"),
    ],
)
def test_integer_labels_jit_matches_eager(class_weights, ignore_index, mask_kind):
    logits, labels, mask, valid, counted = make_batch(mask_kind, ignore_index)
    z, y, w, m = jnp.asarray(logits), jnp.asarray(labels), as_jnp(class_weights), as_jnp(mask)
    for eps in (0.0, 0.1, 1.0):
        j_values, j_grad = jit_int_ce(z, y, w, eps, m, ignore_index=ignore_index)
        kw = dict(class_weights=w, label_smoothing=eps, ignore_index=ignore_index, where=m)
        grad = jax.grad(lambda z, kw=kw: jnp.sum(int_ce(z, y, **kw)))(z)
        close(j_values, int_ce(z, y, **kw))
        close(j_grad, grad)
        close(j_values, ref_int_ce(logits, labels, class_weights, eps, valid, counted))
        close(j_grad, ref_int_ce_grad(logits, labels, class_weights, eps, valid, counted))


@pytest.mark.parametrize(
    ("class_weights", "mask_kind"),
    [
        pytest.param(None, None, id="unweighted-no-mask"),
        pytest.param(None, "row", id="unweighted-row-mask"),
        pytest.param(_W, None, id="class-weights-no-mask"),
        pytest.param(_W, "class", id="class-weights-class-mask"),
    ],
)
def test_probability_targets_jit_matches_eager(class_weights, mask_kind):
    logits, _, mask, _, counted = make_batch(mask_kind, None)
    z, w, m = jnp.asarray(logits), as_jnp(class_weights), as_jnp(mask)
    for eps in (0.0, 0.1, 1.0):
        for kind in ("one-hot", "soft"):
            targets = make_targets(kind)
            t = jnp.asarray(targets)
            kw = dict(class_weights=w, label_smoothing=eps, where=m)
            j_values, (j_gz, j_gt) = jit_prob_ce(z, t, w, eps, m)
            gz, gt = jax.grad(lambda z, t, kw=kw: jnp.sum(prob_ce(z, t, **kw)),
                              argnums=(0, 1))(z, t)
            close(j_values, prob_ce(z, t, **kw))
            close(j_gz, gz)
            close(j_gt, gt)
            close(j_values, ref_prob_ce(logits, targets, class_weights, eps, counted))
            close(j_gz, ref_prob_ce_grad_logits(logits, targets, class_weights, eps, counted))


@IGNORE
@WEIGHTS
def test_nll_jit_matches_eager(class_weights, ignore_index):
    logits, labels, _, valid, _ = make_batch(None, ignore_index)
    log_probs = -np.abs(logits)
    lp, y, w = jnp.asarray(log_probs), jnp.asarray(labels), as_jnp(class_weights)
    j_values, j_grad = jit_nll(lp, y, w, ignore_index=ignore_index)
    close(j_values, nll(lp, y, class_weights=w, ignore_index=ignore_index))
    close(j_grad, jax.grad(lambda lp: jnp.sum(
        nll(lp, y, class_weights=w, ignore_index=ignore_index)))(lp))
    close(j_values, ref_nll(log_probs, labels, class_weights, valid))
    close(j_grad, ref_nll_grad(labels, class_weights, valid))


# ---------------------------------------------------------------------------------------------
# Class mask: masked entries are excluded, whatever they hold


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@SMOOTHING
@WEIGHTS
def test_masked_logits_do_not_leak(class_weights, eps, bad):
    logits, labels, mask, valid, counted = make_batch("row", -100)
    poisoned = np.where(counted, logits, bad)
    w = as_jnp(class_weights)
    targets = make_targets("soft")
    z = jnp.asarray(poisoned)

    def hard(z):
        return int_ce(z, jnp.asarray(labels), class_weights=w, label_smoothing=eps,
                      ignore_index=-100, where=jnp.asarray(mask))

    def soft(z):
        return prob_ce(z, jnp.asarray(targets), class_weights=w, label_smoothing=eps,
                       where=jnp.asarray(mask))

    close(hard(z), ref_int_ce(logits, labels, class_weights, eps, valid, counted))
    close(soft(z), ref_prob_ce(logits, targets, class_weights, eps, counted))
    g_hard = jax.grad(lambda z: jnp.sum(hard(z)))(z)
    g_soft = jax.grad(lambda z: jnp.sum(soft(z)))(z)
    close(g_hard, ref_int_ce_grad(logits, labels, class_weights, eps, valid, counted))
    close(g_soft, ref_prob_ce_grad_logits(logits, targets, class_weights, eps, counted))


@SMOOTHING
def test_class_mask_smoothing_uses_counted_classes(eps):
    """Masking classes equals dropping them: K (not C) classes share the smoothing mass."""
    logits, labels, mask, _, _ = make_batch("class", None)
    keep = mask[0]
    kept_labels = np.searchsorted(np.flatnonzero(keep), labels)  # relabel the kept classes
    w = CLASS_WEIGHTS
    masked = int_ce(jnp.asarray(logits), jnp.asarray(labels), class_weights=jnp.asarray(w),
                    label_smoothing=eps, where=jnp.asarray(mask))
    dropped = int_ce(jnp.asarray(logits[:, keep]), jnp.asarray(kept_labels),
                     class_weights=jnp.asarray(w[keep]), label_smoothing=eps)
    close(masked, dropped)
    t = make_targets("soft")
    close(prob_ce(jnp.asarray(logits), jnp.asarray(t), label_smoothing=eps,
                  where=jnp.asarray(mask)),
          prob_ce(jnp.asarray(logits[:, keep]), jnp.asarray(t[:, keep]), label_smoothing=eps))


@SMOOTHING
@WEIGHTS
def test_fully_masked_row(class_weights, eps):
    """A row with no counted class: probability targets give 0; with an ignored label, so do
    integer labels. The gradient is finite and 0 for that row; other rows are unaffected."""
    logits, labels, mask, valid, counted = make_batch("row", -100)
    mask, counted = mask.copy(), counted.copy()
    mask[1] = counted[1] = False  # row 1 is also an ignored row
    w = as_jnp(class_weights)
    targets = make_targets("soft")
    z = jnp.asarray(logits)

    def hard(z):
        return int_ce(z, jnp.asarray(labels), class_weights=w, label_smoothing=eps,
                      ignore_index=-100, where=jnp.asarray(mask))

    def soft(z):
        return prob_ce(z, jnp.asarray(targets), class_weights=w, label_smoothing=eps,
                       where=jnp.asarray(mask))

    for f in (hard, soft):
        values, vjp = jax.vjp(f, z)
        (grad,) = vjp(jnp.ones(N))
        assert float(values[1]) == 0.0, f.__name__
        assert np.all(np.isfinite(np.asarray(grad))), f.__name__
        assert np.all(np.asarray(grad)[1] == 0), f.__name__
    rest = np.arange(N) != 1
    close(np.asarray(hard(z))[rest],
          ref_int_ce(logits, labels, class_weights, eps, valid, counted)[rest])
    close(np.asarray(soft(z))[rest],
          ref_prob_ce(logits, targets, class_weights, eps, counted)[rest])


# ---------------------------------------------------------------------------------------------
# All ignored: the mean is 0 with a finite zero gradient (PyTorch gives NaN here)


def all_ignored_objectives(z, class_weights, eps, fn):
    """Three ways to write the mean over an all-ignored batch; each as (value, grad)."""
    labels = jnp.full((N,), -100, jnp.int32)
    valid = labels != -100
    w = jnp.ones(C) if class_weights is None else class_weights

    def values(z, cw):
        if fn == "nll":
            return nll(z, labels, class_weights=cw, ignore_index=-100)
        return int_ce(z, labels, class_weights=cw, label_smoothing=eps, ignore_index=-100)

    def torch_mean_safe(z):
        # PyTorch's mean as mergeable parts: 0 (not 0/0) when nothing is counted.
        return jaxloss.WeightedMean(jaxloss.sum(values(z, class_weights)),
                                    jaxloss.sum(w[labels], where=valid)).value()

    def rule(z):  # the one reduction rule on unweighted values
        return jaxloss.mean(values(z, None), weights=w[labels], where=valid)

    def plain_mean(z):
        return jaxloss.mean(values(z, class_weights), where=valid)

    out = {f.__name__: jax.value_and_grad(f)(z) for f in (torch_mean_safe, rule, plain_mean)}
    out["values"] = values(z, class_weights)
    return out


jit_all_ignored_objectives = jax.jit(all_ignored_objectives, static_argnames=("fn",))


@pytest.mark.parametrize(
    ("fn", "eps"),
    [("int_ce", 0.0), ("int_ce", 0.1), ("int_ce", 1.0), ("nll", 0.0)],  # nll has no smoothing
    ids=["int_ce-eps=0", "int_ce-eps=0.1", "int_ce-eps=1", "nll"],
)
@WEIGHTS
def test_all_ignored_batch(class_weights, fn, eps):
    logits, _, _, _, _ = make_batch(None, None)
    z = jnp.asarray(logits)
    for run in (all_ignored_objectives, jit_all_ignored_objectives):
        out = run(z, as_jnp(class_weights), eps, fn=fn)
        assert np.all(np.asarray(out.pop("values")) == 0)
        for name, (value, grad) in out.items():
            assert float(value) == 0.0, name
            assert np.all(np.isfinite(np.asarray(grad))), name
            assert np.all(np.asarray(grad) == 0), name


# ---------------------------------------------------------------------------------------------
# Invalid labels: ValueError on concrete labels, NaN (for that example only) under jit


BAD_LABELS = pytest.mark.parametrize(
    ("bad_label", "ignore_index"),
    [(C, None), (-1, None), (-100, None), (C + 3, -100), (-1, -100), (-100, 2)],
    ids=["C", "-1", "-100-without-ignore", "C+3-with-ignore", "-1-with-ignore=-100",
         "-100-with-ignore=2"],
)


@BAD_LABELS
@pytest.mark.parametrize("fn", [int_ce, nll], ids=["int_ce", "nll"])
def test_out_of_range_labels(fn, bad_label, ignore_index):
    logits, labels, _, _, _ = make_batch(None, None)
    labels = labels.copy()
    labels[3] = bad_label
    z, y = jnp.asarray(logits), jnp.asarray(labels)
    with pytest.raises(ValueError, match=r"`labels`") as info:
        fn(z, y, ignore_index=ignore_index)
    assert re.search(rf"got .*{bad_label}", str(info.value)), str(info.value)

    jitted = {int_ce: jit_int_ce_values, nll: jit_nll_values}[fn](z, y, ignore_index=ignore_index)
    good = np.arange(N) != 3
    assert np.isnan(np.asarray(jitted)[3])
    fine_labels = np.where(good, labels, 0)
    close(np.asarray(jitted)[good],
          np.asarray(fn(z, jnp.asarray(fine_labels), ignore_index=ignore_index))[good])


@pytest.mark.parametrize(
    "loss",
    [int_ce, jaxloss.multiclass_hinge_loss, jaxloss.softmax_focal_loss, jaxloss.poly1_cross_entropy,
     jaxloss.logit_adjusted_cross_entropy],
    ids=["int_ce", "multiclass_hinge", "softmax_focal", "poly1", "logit_adjusted"],
)
def test_out_of_range_traced_label_makes_its_gradient_row_nan(loss):
    # A select would route the bad example a zero gradient: a step on a batch whose loss is
    # NaN would then silently train on the others. Ignored rows keep a zero gradient.
    logits, labels, _, _, _ = make_batch(None, None)
    labels = labels.copy()
    labels[3], labels[5] = C + 2, -100
    z, y = jnp.asarray(logits), jnp.asarray(labels)
    kwargs = {"ignore_index": -100}
    if loss is jaxloss.logit_adjusted_cross_entropy:
        kwargs["class_priors"] = jnp.full((C,), 1.0 / C)
    g = np.asarray(jax.jit(jax.grad(lambda z, y: jnp.sum(loss(z, y, **kwargs))))(z, y))
    assert np.isnan(g[3]).all()
    np.testing.assert_array_equal(g[5], 0.0)
    assert np.isfinite(np.delete(g, 3, axis=0)).all()


def test_label_on_masked_class_is_nan_under_jit():
    logits, labels, mask, _, _ = make_batch("class", None)
    labels = labels.copy()
    labels[3] = 2  # the masked class
    out = jit_int_ce_values(jnp.asarray(logits), jnp.asarray(labels), where=jnp.asarray(mask))
    assert np.isnan(np.asarray(out)[3])
    assert np.all(np.isfinite(np.delete(np.asarray(out), 3)))


@pytest.mark.parametrize("mask_kind", ["class", "row"])
def test_label_on_masked_class_raises_eagerly(mask_kind):
    logits, labels, mask, _, counted = make_batch(mask_kind, -100)
    labels = labels.copy()
    labels[3] = np.flatnonzero(~counted[3])[0]  # a class masked out for example 3
    z, y, m = jnp.asarray(logits), jnp.asarray(labels), jnp.asarray(mask)
    with pytest.raises(ValueError, match=r"`labels`") as info:
        int_ce(z, y, where=m, ignore_index=-100)
    assert re.search(rf"\b{labels[3]}\b", str(info.value)), str(info.value)
    # An ignored example may sit on any class, masked or not.
    labels[3] = -100
    assert float(int_ce(z, jnp.asarray(labels), where=m, ignore_index=-100)[3]) == 0.0


# ---------------------------------------------------------------------------------------------
# float32 inputs: computed and returned in float32, close to the float64 reference


def test_float32_all_options_on():
    logits, labels, mask, valid, counted = make_batch("row", -100)
    values = jit_int_ce_values(  # jitted: one compile instead of one per float32 op
        jnp.asarray(logits, jnp.float32), jnp.asarray(labels),
        class_weights=jnp.asarray(CLASS_WEIGHTS, jnp.float32), label_smoothing=0.1,
        ignore_index=-100, where=jnp.asarray(mask))
    assert values.dtype == jnp.float32
    close(values, ref_int_ce(logits, labels, CLASS_WEIGHTS, 0.1, valid, counted),
          rtol=1e-5, atol=1e-5)
