"""linear_log_probs / linear_distillation and their logits forms (token_log_probs,
distillation_loss): per-token gradients for arbitrary cotangents w.r.t. hidden, weight and bias
(and the teacher's inputs when asked) against NumPy float64 closed forms, fused == unfused,
TRL's generalized-JSD formula, reductions and weights, low precision, errors, memory budgets.

The conformance suite (tests/cases/{lm,fused_log_probs,fused_distillation}.py) covers values,
the hidden-state gradient, jit/vmap/eager, finite differences, extremes, dtype policy and NaN
propagation; this module covers what it cannot.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss
from jaxloss.fused import linear_distillation, linear_log_probs
from tests import lm_reference as R

N, D, DT, V = 9, 5, 6, 11
IGNORE = -100


def _lp_data(seed=0, layout="dv"):
    g = np.random.default_rng(seed)
    x = g.normal(size=(N, D))
    w = g.normal(scale=0.8, size=(D, V))
    b = g.normal(scale=0.5, size=V)
    y = g.integers(0, V, size=N)
    y[[2, 6]] = IGNORE
    return x, (w if layout == "dv" else w.T.copy()), b, y


def _lp_grads_ref(x, w, b, y, layout, cap, t, c_lp, c_h):
    """NumPy float64 ∂(Σ c_lp·log p + Σ c_h·H)/∂(hidden, weight, bias), by the closed forms."""
    z = R.logits(x, w, layout, b, cap)
    dz = c_lp[:, None] * R.dlog_probs(z, y, t, IGNORE) + c_h[:, None] * R.dentropy(
        z, t, y, IGNORE)
    if cap is not None:
        dz = dz * (1 - (z / cap) ** 2)
    wd = w if layout == "dv" else w.T
    dx = dz @ wd.T
    dw = x.T @ dz
    return dx, (dw if layout == "dv" else dw.T), dz.sum(0)


@pytest.mark.parametrize(("layout", "cap", "t", "block"),
                         [("dv", None, 1.0, 4), ("vd", 3.0, 1.7, 3), ("dv", 5.0, 0.5, 11)])
def test_log_probs_and_entropy_gradients_for_any_cotangent(layout, cap, t, block):
    x, w, b, y = _lp_data(1, layout)
    g = np.random.default_rng(2)
    c_lp, c_h = g.normal(size=N), g.normal(size=N)  # signed, not a mean

    def f(x, w, b):
        lp, h = linear_log_probs(x, w, y, bias=b, weight_layout=layout, block_size=block,
                                 logit_soft_cap=cap, temperature=t, ignore_index=IGNORE,
                                 return_entropy=True)
        return jnp.sum(c_lp * lp) + jnp.sum(c_h * h), (lp, h)

    (_, (lp, h)), grads = jax.jit(jax.value_and_grad(f, (0, 1, 2), has_aux=True))(x, w, b)
    z = R.logits(x, w, layout, b, cap)
    np.testing.assert_allclose(lp, R.log_probs(z, y, t, IGNORE), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h, R.entropy(z, t, y, IGNORE), rtol=1e-12, atol=1e-12)
    assert lp[2] == 0 and h[2] == 0
    for got, want in zip(grads, _lp_grads_ref(x, w, b, y, layout, cap, t, c_lp, c_h),
                         strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_fused_log_probs_equal_the_logits_form():
    x, w, b, y = _lp_data(3)
    kw = {"temperature": 1.3, "ignore_index": IGNORE, "return_entropy": True}
    fused = linear_log_probs(x, w, y, bias=b, block_size=4, **kw)
    plain = jaxloss.token_log_probs(x @ w + b, y, **kw)
    for a, c in zip(fused, plain, strict=True):
        np.testing.assert_allclose(a, c, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize(("dtype", "tol"), [(jnp.float32, 1e-5), (jnp.bfloat16, 1e-2)])
def test_low_precision_log_probs(dtype, tol):
    x, w, b, y = _lp_data(4)
    xr, wr, br = (np.asarray(jnp.asarray(a, dtype), np.float64) for a in (x, w, b))
    c = np.linspace(0.5, 1.5, N)

    def f(x, w, b):
        lp, h = linear_log_probs(x, w, y, bias=b, block_size=4, ignore_index=IGNORE,
                                 return_entropy=True)
        return jnp.sum(c * lp) + jnp.sum(h), (lp, h)

    (_, (lp, h)), grads = jax.jit(jax.value_and_grad(f, (0, 1, 2), has_aux=True))(
        *(jnp.asarray(a, dtype) for a in (x, w, b)))
    assert lp.dtype == jnp.float32 and grads[1].dtype == dtype
    z = R.logits(xr, wr, "dv", br)
    scale = lambda a: np.abs(a).max()  # noqa: E731
    np.testing.assert_allclose(lp, R.log_probs(z, y, 1.0, IGNORE), rtol=tol,
                               atol=tol * scale(lp))
    np.testing.assert_allclose(h, R.entropy(z, 1.0, y, IGNORE), rtol=tol, atol=tol * scale(h))
    want = _lp_grads_ref(xr, wr, br, y, "dv", None, 1.0, c, np.ones(N))
    for got, ref in zip(grads, want, strict=True):
        got = np.asarray(jnp.asarray(got, jnp.float32), np.float64)
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * scale(ref))


# ---------------------------------------------------------------------------------------------
# Reductions and weights


def test_reductions_and_weights():
    x, w, b, y = _lp_data(5)
    wt = np.random.default_rng(6).uniform(0.2, 2.0, size=N)
    kept = y != IGNORE
    lp = R.log_probs(x @ w + b, y, 1.0, IGNORE)
    for fn, args in [(linear_log_probs, (x, w, y)), (jaxloss.token_log_probs, (x @ w + b, y))]:
        extra = {"bias": b, "block_size": 4} if fn is linear_log_probs else {}
        call = functools.partial(fn, *args, ignore_index=IGNORE, weights=wt, **extra)
        np.testing.assert_allclose(call(), wt * lp, rtol=1e-12)
        np.testing.assert_allclose(call(reduction="sum"), np.sum((wt * lp)[kept]), rtol=1e-12)
        np.testing.assert_allclose(call(reduction="mean"),
                                   np.sum((wt * lp)[kept]) / np.sum(wt[kept]), rtol=1e-12)


def test_all_ignored_mean_is_zero_with_zero_gradient():
    x, w, _, _ = _lp_data(7)
    y = np.full(N, IGNORE)
    for fn in (linear_log_probs, lambda x, w, y, **k: jaxloss.token_log_probs(x @ w, y, **k)):
        v, g = jax.value_and_grad(
            lambda x, w, fn=fn: fn(x, w, y, ignore_index=IGNORE, reduction="mean"), (0, 1))(x, w)
        assert v == 0
        for a in g:
            assert np.all(np.asarray(a) == 0)


def test_distillation_reductions_and_weights():
    zs, zt, _, _ = _dist_logits(8)
    y = np.random.default_rng(9).integers(0, V, size=N)
    y[[1, 5]] = IGNORE
    wt = np.random.default_rng(10).uniform(0.2, 2.0, size=N)
    kept = y != IGNORE
    d = np.where(kept, R.divergence(zs, zt), 0.0)
    call = functools.partial(jaxloss.distillation_loss, zs, zt, labels=y, ignore_index=IGNORE,
                             weights=wt)
    np.testing.assert_allclose(call(), wt * d, rtol=1e-12)
    np.testing.assert_allclose(call(reduction="mean"), np.sum((wt * d)[kept]) / wt[kept].sum(),
                               rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Distillation


def _dist_data(seed=0, layout="dv"):
    g = np.random.default_rng(seed)
    xs, xt = g.normal(size=(N, D)), g.normal(size=(N, DT))
    ws, wt = g.normal(scale=0.8, size=(D, V)), g.normal(scale=1.2, size=(DT, V))
    if layout == "vd":
        ws, wt = ws.T.copy(), wt.T.copy()
    return xs, ws, xt, wt


def _dist_logits(seed=0):
    xs, ws, xt, wt = _dist_data(seed)
    return xs @ ws, xt @ wt, xs, ws


def _teacher_dz(zs, zt, kind, beta, t):
    """∂D/∂zt by the closed form ψ_t − p_t Σ ψ_t (ψ_t = ∂φ/∂lt), over T."""
    ls = R.log_softmax(zs / t)
    lt = R.log_softmax(zt / t)
    ps, pt = np.exp(ls), np.exp(lt)
    if kind == "forward_kl":
        psi = pt * (lt - ls + 1)
    elif kind == "reverse_kl":
        psi = -ps
    else:
        psi = beta * pt * (lt - np.log(beta * pt + (1 - beta) * ps))
    return (psi - pt * psi.sum(-1, keepdims=True)) / t


@pytest.mark.parametrize(("kind", "beta", "layout", "t", "block"), [
    ("forward_kl", 0.5, "dv", 1.0, 4),
    ("reverse_kl", 0.5, "vd", 2.0, 3),
    ("jsd", 0.3, "dv", 0.7, 5),
    ("jsd", 0.5, "vd", 1.0, 11),
])
def test_distillation_gradients_for_any_cotangent(kind, beta, layout, t, block):
    xs, ws, xt, wt = _dist_data(11, layout)
    c = np.random.default_rng(12).normal(size=N)
    kw = {"divergence": kind, "beta": beta, "temperature": t, "weight_layout": layout,
          "block_size": block}

    def f(xs, ws, xt, wt):
        return jnp.sum(c * linear_distillation(xs, ws, xt, wt, teacher_gradient=True, **kw))

    grads = jax.jit(jax.grad(f, (0, 1, 2, 3)))(xs, ws, xt, wt)
    wsd, wtd = (ws, wt) if layout == "dv" else (ws.T, wt.T)
    zs, zt = xs @ wsd, xt @ wtd
    np.testing.assert_allclose(linear_distillation(xs, ws, xt, wt, **kw),
                               R.divergence(zs, zt, kind, beta, t), rtol=1e-12, atol=1e-13)
    dzs = c[:, None] * R.ddivergence(zs, zt, kind, beta, t)
    dzt = c[:, None] * _teacher_dz(zs, zt, kind, beta, t)
    want = [dzs @ wsd.T, xs.T @ dzs, dzt @ wtd.T, xt.T @ dzt]
    if layout == "vd":
        want[1], want[3] = want[1].T, want[3].T
    for got, ref in zip(grads, want, strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    # The teacher is a constant by default: exactly zero gradients.
    g0 = jax.grad(lambda xt, wt: jnp.sum(c * linear_distillation(xs, ws, xt, wt, **kw)),
                  (0, 1))(xt, wt)
    assert all(np.all(np.asarray(a) == 0) for a in g0)


def test_distillation_hard_labels_weight_gradient():
    xs, ws, xt, wt = _dist_data(13)
    y = np.random.default_rng(14).integers(0, V, size=N)
    y[3] = IGNORE
    h = {"divergence": "jsd", "beta": 0.2, "temperature": 1.5, "hard_label_weight": 0.4,
         "ignore_index": IGNORE}
    c = np.linspace(-1.0, 2.0, N)
    gw = jax.grad(lambda ws: jnp.sum(c * linear_distillation(xs, ws, xt, wt, labels=y,
                                                             block_size=4, **h)))(ws)
    dz = c[:, None] * R.ddistillation(xs @ ws, xt @ wt, h, y)
    np.testing.assert_allclose(gw, xs.T @ dz, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("reduction", "layout", "block", "teacher"), [
    ("sum", "dv", 4, False),
    ("mean", "vd", 3, True),
    ("mean", "dv", 11, False),
])
def test_reduced_distillation_gradients(reduction, layout, block, teacher):
    """'sum'/'mean' form the gradient in the forward pass: equal to the NumPy closed form of
    Σ c_n l_n (c = w/Σw over kept tokens for the mean), for a non-unit scalar cotangent, w.r.t.
    both models' inputs; w.r.t. the weights and α equal to the logits form's autodiff."""
    xs, ws, xt, wt = _dist_data(21, layout)
    y = np.random.default_rng(22).integers(0, V, size=N)
    y[[0, 7]] = IGNORE
    tw = np.random.default_rng(23).uniform(0.2, 2.0, size=N)
    h = {"divergence": "jsd", "beta": 0.3, "temperature": 1.4, "ignore_index": IGNORE}
    kw = {**h, "labels": y, "reduction": reduction, "weight_layout": layout,
          "block_size": block, "teacher_gradient": teacher}

    def f(xs, ws, xt, wt, tw, a):
        return linear_distillation(xs, ws, xt, wt, weights=tw, hard_label_weight=a, **kw)

    a = 0.35
    val, vjp = jax.vjp(f, xs, ws, xt, wt, tw, a)
    got = vjp(2.5)
    kept = y != IGNORE
    c = np.where(kept, tw, 0.0)
    if reduction == "mean":
        c = c / c.sum()
    wsd, wtd = (ws, wt) if layout == "dv" else (ws.T, wt.T)
    zs, zt = xs @ wsd, xt @ wtd
    per = R.distillation(zs, zt, {**h, "hard_label_weight": a}, y)
    np.testing.assert_allclose(val, np.sum(c * per), rtol=1e-12)
    dzs = 2.5 * c[:, None] * R.ddistillation(zs, zt, {**h, "hard_label_weight": a}, y)
    want = [dzs @ wsd.T, (xs.T @ dzs) if layout == "dv" else (xs.T @ dzs).T]
    if teacher:
        dzt = 2.5 * (1 - a) * c[:, None] * _teacher_dz(zs, zt, "jsd", 0.3, 1.4)
        want += [dzt @ wtd.T, (xt.T @ dzt) if layout == "dv" else (xt.T @ dzt).T]
    else:
        want += [np.zeros_like(xt), np.zeros_like(wt)]
    for g, ref in zip(got[:4], want, strict=True):
        np.testing.assert_allclose(g, ref, rtol=1e-10, atol=1e-12)

    def naive(tw, a):
        return jaxloss.distillation_loss(zs, zt, weights=tw, hard_label_weight=a, labels=y,
                                         reduction=reduction, **h)

    _, nvjp = jax.vjp(naive, tw, a)
    for g, ref in zip(got[4:], nvjp(2.5), strict=True):
        np.testing.assert_allclose(g, ref, rtol=1e-10, atol=1e-12)


def test_reduced_distillation_all_ignored_mean_is_zero_with_zero_gradient():
    xs, ws, xt, wt = _dist_data(24)
    y = np.full(N, IGNORE)
    val, g = jax.value_and_grad(lambda xs: linear_distillation(
        xs, ws, xt, wt, labels=y, ignore_index=IGNORE, reduction="mean", block_size=4))(xs)
    assert float(val) == 0.0
    assert np.all(np.asarray(g) == 0)


@pytest.mark.parametrize("kind", ["forward_kl", "reverse_kl", "jsd"])
def test_fused_distillation_equals_the_logits_form(kind):
    xs, ws, xt, wt = _dist_data(15)
    kw = {"divergence": kind, "beta": 0.4, "temperature": 1.3}
    a = linear_distillation(xs, ws, xt, wt, block_size=4, **kw)
    b = jaxloss.distillation_loss(xs @ ws, xt @ wt, **kw)
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
    ga = jax.grad(lambda xs: jnp.sum(linear_distillation(xs, ws, xt, wt, block_size=4, **kw)))(xs)
    gb = jax.grad(lambda xs: jnp.sum(jaxloss.distillation_loss(xs @ ws, xt @ wt, **kw)))(xs)
    np.testing.assert_allclose(ga, gb, rtol=1e-12, atol=1e-13)


def _trl_generalized_jsd(s_logits, t_logits, beta, temperature):
    """TRL's GKDTrainer.generalized_jsd_loss (reduction none, summed over the vocabulary),
    transcribed in NumPy: torch.nn.functional.kl_div(input, target, log_target=True) is
    Σ exp(target)(target − input)."""
    s = R.log_softmax(s_logits / temperature)
    t = R.log_softmax(t_logits / temperature)
    kl_div = lambda inp, tgt: np.sum(np.exp(tgt) * (tgt - inp), -1)  # noqa: E731
    if beta == 0:
        return kl_div(s, t)
    if beta == 1:
        return kl_div(t, s)
    mix = np.logaddexp(s + np.log(1 - beta), t + np.log(beta))
    return beta * kl_div(mix, t) + (1 - beta) * kl_div(mix, s)


@pytest.mark.parametrize("beta", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_jsd_matches_trl_generalized_jsd(beta):
    zs, zt, _, _ = _dist_logits(16)
    got = jaxloss.distillation_loss(zs, zt, divergence="jsd", beta=beta, temperature=1.5)
    np.testing.assert_allclose(got, _trl_generalized_jsd(zs, zt, beta, 1.5), rtol=1e-12)


def test_jsd_endpoints_are_limits_of_the_normalised_jsd():
    zs, zt, _, _ = _dist_logits(17)
    fwd = jaxloss.distillation_loss(zs, zt, divergence="forward_kl")
    rev = jaxloss.distillation_loss(zs, zt, divergence="reverse_kl")
    eps = 1e-8  # the gap is O(β) relative: 1e-4 at β ~ 1e-6 for this data
    near0 = jaxloss.distillation_loss(zs, zt, divergence="jsd", beta=eps) / eps
    near1 = jaxloss.distillation_loss(zs, zt, divergence="jsd", beta=1 - eps) / eps
    np.testing.assert_allclose(near0, fwd, rtol=1e-4)
    np.testing.assert_allclose(near1, rev, rtol=1e-4)


@pytest.mark.parametrize(("dtype", "tol"), [(jnp.float32, 1e-5), (jnp.bfloat16, 1e-2)])
def test_low_precision_distillation(dtype, tol):
    xs, ws, xt, wt = _dist_data(18)
    arrs = [jnp.asarray(a, dtype) for a in (xs, ws, xt, wt)]
    r = [np.asarray(jnp.asarray(a, jnp.float32), np.float64) for a in arrs]
    v, (gx, gw) = jax.jit(jax.value_and_grad(
        lambda xs, ws: jnp.sum(linear_distillation(xs, ws, arrs[2], arrs[3], divergence="jsd",
                                                   block_size=4)), (0, 1)))(arrs[0], arrs[1])
    zs, zt = r[0] @ r[1], r[2] @ r[3]
    np.testing.assert_allclose(v, R.divergence(zs, zt, "jsd").sum(), rtol=tol)
    dz = R.ddivergence(zs, zt, "jsd")
    for got, ref in ((gx, dz @ r[1].T), (gw, r[0].T @ dz)):
        got = np.asarray(jnp.asarray(got, jnp.float32), np.float64)
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * np.abs(ref).max())


# ---------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(("call", "exc", "pattern"), [
    (lambda: linear_log_probs(np.ones((2, 3)), np.ones((3, 4)), np.array([0, 1]),
                              temperature=0.0), ValueError,
     r"jaxloss\.linear_log_probs: `temperature` must be finite and > 0"),
    (lambda: jax.jit(lambda t: jaxloss.token_log_probs(np.ones((2, 4)), np.array([0, 1]),
                                                       temperature=t))(1.0), ValueError,
     r"jaxloss\.token_log_probs: `temperature` must be a concrete number"),
    (lambda: jaxloss.token_log_probs(np.ones((2, 4)), np.array([0, 4])), ValueError,
     r"jaxloss\.token_log_probs: `labels` must be class indices in \[0, 4\)"),
    (lambda: jaxloss.token_log_probs(np.ones((2, 4)), np.array([0, 1]),
                                     weights=np.array([1.0, -1.0])), ValueError,
     r"jaxloss\.token_log_probs: `weights`"),
    (lambda: jaxloss.distillation_loss(np.ones((2, 4)), np.ones((2, 4)), divergence="kl"),
     ValueError, r"jaxloss\.distillation_loss: `divergence` must be one of"),
    (lambda: jaxloss.distillation_loss(np.ones((2, 4)), np.ones((2, 4)), divergence="jsd",
                                       beta=1.5), ValueError,
     r"jaxloss\.distillation_loss: `beta` must be in \[0, 1\]"),
    (lambda: jaxloss.distillation_loss(np.ones((2, 4)), np.ones((2, 4)),
                                       hard_label_weight=0.5), ValueError,
     r"jaxloss\.distillation_loss: `hard_label_weight` > 0 needs `labels`"),
    (lambda: linear_distillation(np.ones((2, 3)), np.ones((3, 4)), np.ones((2, 5)),
                                 np.ones((5, 6))), ValueError,
     r"jaxloss\.linear_distillation: `student_weight` and `teacher_weight` must share"),
    (lambda: linear_distillation(np.ones((2, 3)), np.ones((3, 4)), np.ones((3, 5)),
                                 np.ones((5, 4))), ValueError,
     r"jaxloss\.linear_distillation: `teacher_hidden` must have the token shape"),
    (lambda: linear_distillation(np.ones((2, 3)), np.ones((3, 4)), np.ones((2, 5)),
                                 np.ones((5, 4)), ignore_index=-1), ValueError,
     r"jaxloss\.linear_distillation: `ignore_index` applies to `labels`"),
])
def test_errors_name_function_and_argument(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


# ---------------------------------------------------------------------------------------------
# Memory budgets: XLA temporaries of value-and-grad (deterministic, from the compiled program).

S = jax.ShapeDtypeStruct
MN, MD, MV = 2048, 256, 32768


def _temp_bytes(f, *shapes):
    return jax.jit(f).lower(*shapes).compile().memory_analysis().temp_size_in_bytes


def test_log_probs_memory_budget():
    """Value-and-grad of Σ c·log p + Σ c·H w.r.t. hidden and weight: the fused program's
    temporaries are under 10% of the unfused one's, which holds [N, V] logits and gradients."""
    args = (S((MN, MD), jnp.float32), S((MD, MV), jnp.float32), S((MN,), jnp.int32))

    def grads(loss):
        def f(x, w, y):
            lp, h = loss(x, w, y)
            return jnp.sum(lp) + jnp.sum(h)
        return jax.value_and_grad(f, (0, 1))

    fused = _temp_bytes(grads(functools.partial(linear_log_probs, return_entropy=True)), *args)
    naive = _temp_bytes(grads(lambda x, w, y: jaxloss.token_log_probs(
        x @ w, y, return_entropy=True)), *args)
    assert naive >= 2 * MN * MV * 4
    assert fused <= 0.10 * naive, (fused / 2**20, naive / 2**20)


def test_distillation_memory_budget():
    """Value-and-grad w.r.t. the student's hidden and weight: under 15% of the unfused program
    (student and teacher logits, both [N, V])."""
    args = (S((MN, MD), jnp.float32), S((MD, MV), jnp.float32),
            S((MN, 2 * MD), jnp.float32), S((2 * MD, MV), jnp.float32))
    fused = _temp_bytes(jax.value_and_grad(
        lambda a, b, c, d: jnp.sum(linear_distillation(a, b, c, d, divergence="jsd")),
        (0, 1)), *args)
    naive = _temp_bytes(jax.value_and_grad(
        lambda a, b, c, d: jnp.sum(jaxloss.distillation_loss(a @ b, c @ d, divergence="jsd")),
        (0, 1)), *args)
    assert naive >= 2 * MN * MV * 4
    assert fused <= 0.15 * naive, (fused / 2**20, naive / 2**20)


# ---------------------------------------------------------------------------------------------
# Top-k (offline) distillation


def _topk_data(seed, k=4):
    g = np.random.default_rng(seed)
    x, w = g.normal(size=(N, D)), g.normal(scale=0.8, size=(D, V))
    lt_full = R.log_softmax(g.normal(scale=2.0, size=(N, V)))
    ids = np.argsort(-lt_full, axis=-1)[:, :k]  # the teacher's actual top-k
    return x, w, ids, np.take_along_axis(lt_full, ids, -1), lt_full


@pytest.mark.parametrize("layout", ["dv", "vd"])
def test_topk_gradients_for_any_cotangent(layout):
    x, w, ids, lt, _ = _topk_data(20)
    c = np.random.default_rng(21).normal(size=N)
    wl = w if layout == "dv" else w.T.copy()
    gx, gw = jax.grad(lambda x, w: jnp.sum(c * jaxloss.linear_distillation_topk(
        x, w, ids, lt, temperature=1.5, weight_layout=layout, block_size=4)), (0, 1))(x, wl)
    dz = c[:, None] * R.dtopk_kl(x @ w, ids, lt, 1.5)
    np.testing.assert_allclose(gx, dz @ w.T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gw, x.T @ dz if layout == "dv" else (x.T @ dz).T, rtol=1e-10,
                               atol=1e-12)


def test_topk_is_the_full_kl_when_the_teacher_mass_is_on_k_and_a_lower_bound_otherwise():
    x, w, ids, lt, lt_full = _topk_data(22)
    full = R.divergence(x @ w, lt_full)  # KL(teacher ‖ student) with the whole teacher
    got = np.asarray(jaxloss.linear_distillation_topk(x, w, ids, lt, block_size=4))
    assert np.all(got <= full + 1e-12) and np.all(got > 0)
    # all k = V ids: the tail is empty and the value is the full KL
    ids_all = np.argsort(-lt_full, axis=-1)
    every = jaxloss.linear_distillation_topk(x, w, ids_all,
                                             np.take_along_axis(lt_full, ids_all, -1),
                                             block_size=4)
    np.testing.assert_allclose(every, full, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("over", "pattern"), [
    ({"ids": np.array([[0, 11]] * 2)}, r"`teacher_topk_ids` must be token ids in \[0, 11\)"),
    ({"lt": np.array([[0.1, -1.0]] * 2)}, r"`teacher_topk_log_probs`"),
    ({"ids": np.array([0, 1])}, r"`teacher_topk_ids` must have shape"),
])
def test_topk_errors(over, pattern):
    args = {"ids": np.array([[0, 1]] * 2), "lt": np.log(np.array([[0.5, 0.25]] * 2)), **over}
    with pytest.raises(ValueError, match=r"jaxloss\.linear_distillation_topk: " + pattern):
        jaxloss.linear_distillation_topk(np.ones((2, 3)), np.ones((3, V)), args["ids"],
                                         args["lt"])


@pytest.mark.parametrize("t", [1.0, 1.7])
def test_topk_logits_form_equals_the_fused_form(t):
    """topk_distillation_loss on logits = hidden @ weight gives linear_distillation_topk's values
    and student gradients, tail term included (teacher mass off the top k)."""
    g = np.random.default_rng(31)
    x, w = g.normal(size=(N, D)), g.normal(scale=0.8, size=(D, V))
    ids = np.stack([g.permutation(V)[:4] for _ in range(N)])
    p = np.exp(g.normal(scale=1.5, size=(N, V)))
    p /= p.sum(-1, keepdims=True)
    lt = np.log(np.take_along_axis(p, ids, -1))
    y = g.integers(0, V, size=N)
    y[4] = IGNORE
    tw = g.uniform(0.5, 2.0, size=N)
    kw = {"temperature": t, "labels": y, "ignore_index": IGNORE, "weights": tw}
    c = g.normal(size=N)

    def fused(x, w):
        return jnp.sum(c * jaxloss.linear_distillation_topk(x, w, ids, lt, block_size=4, **kw))

    def logits(x, w):
        return jnp.sum(c * jaxloss.topk_distillation_loss(x @ w, ids, lt, **kw))

    np.testing.assert_allclose(jaxloss.topk_distillation_loss(x @ w, ids, lt, **kw),
                               jaxloss.linear_distillation_topk(x, w, ids, lt, block_size=4,
                                                                **kw), rtol=1e-12, atol=1e-14)
    assert np.all(np.exp(lt).sum(-1) < 1)  # the tail term is exercised
    for a, b in zip(jax.grad(fused, (0, 1))(x, w), jax.grad(logits, (0, 1))(x, w), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    mean = jaxloss.topk_distillation_loss(x @ w, ids, lt, reduction="mean", **kw)
    kept = y != IGNORE
    want = R.topk_kl(x @ w, ids, lt, t)
    np.testing.assert_allclose(mean, np.sum((tw * want)[kept]) / tw[kept].sum(), rtol=1e-12)


@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_distillation_over_several_row_chunks(reduction):
    """600 tokens: chunks of 256 rows, the last shifted back to end at the last token (its first
    rows already done). Values and student/teacher gradients against the NumPy closed forms."""
    g = np.random.default_rng(41)
    n = 600
    xs, xt = g.normal(size=(n, D)), g.normal(size=(n, DT))
    ws, wt = g.normal(scale=0.8, size=(D, V)), g.normal(scale=1.2, size=(DT, V))
    y = g.integers(0, V, size=n)
    y[::7] = IGNORE
    h = {"divergence": "jsd", "beta": 0.4, "temperature": 1.2, "hard_label_weight": 0.3,
         "ignore_index": IGNORE}
    c = g.normal(size=n) if reduction == "none" else 1.0

    def f(xs, ws, xt, wt):
        out = linear_distillation(xs, ws, xt, wt, labels=y, block_size=4, teacher_gradient=True,
                                  reduction=reduction, **h)
        return jnp.sum(c * out)

    val, grads = jax.jit(jax.value_and_grad(f, (0, 1, 2, 3)))(xs, ws, xt, wt)
    zs, zt = xs @ ws, xt @ wt
    kept = y != IGNORE
    coef = c if reduction == "none" else kept / kept.sum()
    np.testing.assert_allclose(val, np.sum(coef * R.distillation(zs, zt, h, y)), rtol=1e-12)
    dzs = coef[:, None] * R.ddistillation(zs, zt, h, y)
    dzt = np.where(kept, coef * 0.7, 0)[:, None] * _teacher_dz(zs, zt, "jsd", 0.4, 1.2)
    for got, ref in zip(grads, [dzs @ ws.T, xs.T @ dzs, dzt @ wt.T, xt.T @ dzt], strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
