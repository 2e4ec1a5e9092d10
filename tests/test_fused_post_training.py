"""The post-training objectives fused with the head equal the unfused ones on explicit logits
(values and gradients w.r.t. hidden states and the unembedding, masks included), take the
reference by log-probabilities or by hidden states with the same result, and keep no
[tokens, vocabulary] array (XLA's compiled memory analysis)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss
import jaxloss.fused as F

B, T, D, V = 3, 5, 4, 11


def _seq_log_probs(hidden, weight, labels, mask, average=False):
    """The unfused path: explicit logits, log-softmax, masked sum/mean per sequence."""
    logp = jax.nn.log_softmax(hidden @ weight, axis=-1)
    tok = jnp.take_along_axis(logp, jnp.where(mask, labels, 0)[..., None], -1)[..., 0]
    return jaxloss.sequence_log_probs(tok, mask, average=average)


def _data(seed=0, dtype=jnp.float64):
    rng = np.random.default_rng(seed)
    d = {
        "hc": rng.normal(size=(B, T, D)),
        "hr": rng.normal(size=(B, T, D)),
        "w": rng.normal(scale=0.7, size=(D, V)),
        "yc": rng.integers(0, V, size=(B, T)),
        "yr": rng.integers(0, V, size=(B, T)),
        "mc": rng.uniform(size=(B, T)) < 0.8,
        "mr": rng.uniform(size=(B, T)) < 0.8,
    }
    d["mc"][:, 0] = d["mr"][:, 0] = True
    d["yc"][~d["mc"]] = -100  # masked tokens may hold any label
    return {
        k: jnp.asarray(v, dtype) if v.dtype == np.float64 else jnp.asarray(v) for k, v in d.items()
    }


def _assert_same(fused, unfused, args, rtol):
    vf, gf = jax.value_and_grad(lambda *a: jnp.sum(fused(*a)), argnums=(0, 1))(*args)
    vu, gu = jax.value_and_grad(lambda *a: jnp.sum(unfused(*a)), argnums=(0, 1))(*args)
    np.testing.assert_allclose(vf, vu, rtol=rtol, atol=rtol)
    for a, b in zip(gf, gu, strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype,rtol", [(jnp.float64, 1e-10), (jnp.float32, 1e-5)])
@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo", "apo_zero"])
def test_dpo_fused_equals_unfused(dtype, rtol, loss_type):
    d = _data(1, dtype)
    rc, rr = jnp.asarray([-9.0, -12.0, -7.5], dtype), jnp.asarray([-10.0, -8.0, -9.5], dtype)

    def fused(w, hc):
        return F.linear_dpo_loss(
            hc,
            d["hr"],
            w,
            d["yc"],
            d["yr"],
            chosen_mask=d["mc"],
            rejected_mask=d["mr"],
            reference_chosen=rc,
            reference_rejected=rr,
            beta=0.3,
            loss_type=loss_type,
            block_size=4,
        )

    def unfused(w, hc):
        pc = _seq_log_probs(hc, w, d["yc"], d["mc"])
        pr = _seq_log_probs(d["hr"], w, d["yr"], d["mr"])
        kw = {}
        if loss_type == "ipo":
            kw = {"chosen_lengths": d["mc"].sum(-1), "rejected_lengths": d["mr"].sum(-1)}
        return jaxloss.dpo_loss(pc, pr, rc, rr, beta=0.3, loss_type=loss_type, **kw)

    _assert_same(fused, unfused, (d["w"], d["hc"]), rtol)


def test_reference_by_hidden_states_equals_reference_by_log_probs_and_gets_no_gradient():
    d = _data(2)
    ref_w = d["w"] * 0.9
    rc = _seq_log_probs(d["hc"] * 1.1, ref_w, d["yc"], d["mc"])
    rr = _seq_log_probs(d["hr"] * 1.1, ref_w, d["yr"], d["mr"])
    common = dict(chosen_mask=d["mc"], rejected_mask=d["mr"], beta=0.2, block_size=4)
    by_lp = F.linear_dpo_loss(
        d["hc"],
        d["hr"],
        d["w"],
        d["yc"],
        d["yr"],
        reference_chosen=rc,
        reference_rejected=rr,
        **common,
    )

    def by_hidden(rw):
        return F.linear_dpo_loss(
            d["hc"],
            d["hr"],
            d["w"],
            d["yc"],
            d["yr"],
            reference_chosen_hidden=d["hc"] * 1.1,
            reference_rejected_hidden=d["hr"] * 1.1,
            reference_weight=rw,
            **common,
        )

    np.testing.assert_allclose(by_hidden(ref_w), by_lp, rtol=1e-12)
    assert np.all(np.asarray(jax.grad(lambda rw: jnp.sum(by_hidden(rw)))(ref_w)) == 0)
    with pytest.raises(ValueError, match="exactly one"):
        F.linear_dpo_loss(d["hc"], d["hr"], d["w"], d["yc"], d["yr"], **common)


@pytest.mark.parametrize("which", ["simpo", "orpo"])
def test_length_normalised_objectives_fused_equal_unfused(which):
    d = _data(3)

    def fused(w, hc):
        f = F.linear_simpo_loss if which == "simpo" else F.linear_orpo_loss
        return f(
            hc,
            d["hr"],
            w,
            d["yc"],
            d["yr"],
            chosen_mask=d["mc"],
            rejected_mask=d["mr"],
            block_size=4,
        )

    def unfused(w, hc):
        lw = _seq_log_probs(hc, w, d["yc"], d["mc"], average=True)
        ll = _seq_log_probs(d["hr"], w, d["yr"], d["mr"], average=True)
        return (jaxloss.simpo_loss if which == "simpo" else jaxloss.orpo_loss)(lw, ll)

    _assert_same(fused, unfused, (d["w"], d["hc"]), 1e-10)


def test_kto_fused_equals_unfused():
    d = _data(4)
    good = jnp.array([True, False, True])
    ref = jnp.asarray([-10.0, -9.0, -11.0])

    def fused(w, h):
        return F.linear_kto_loss(
            h,
            w,
            d["yc"],
            good,
            mask=d["mc"],
            reference_log_probs=ref,
            reference_point=0.3,
            block_size=4,
        )

    def unfused(w, h):
        pol = _seq_log_probs(h, w, d["yc"], d["mc"])
        return jaxloss.kto_loss(pol, ref, good, reference_point=0.3)

    _assert_same(fused, unfused, (d["w"], d["hc"]), 1e-10)


@pytest.mark.parametrize(
    "kw", [{}, {"aggregation": "token_mean", "clip_high": 0.28}, {"importance": "sequence"}]
)
def test_policy_gradient_fused_equals_unfused(kw):
    d = _data(5)
    mask = d["mc"]
    lp0 = jax.nn.log_softmax(d["hc"] @ d["w"], -1)
    tok0 = jnp.take_along_axis(lp0, jnp.where(mask, d["yc"], 0)[..., None], -1)[..., 0]
    old = tok0 - jnp.asarray(np.random.default_rng(0).uniform(-0.3, 0.3, size=(B, T)))
    adv = jnp.asarray([1.0, -0.5, 0.7])

    def fused(w, h):
        return F.linear_policy_gradient_loss(h, w, d["yc"], mask, old, adv, block_size=4, **kw)

    def unfused(w, h):
        logp = jax.nn.log_softmax(h @ w, -1)
        tok = jnp.take_along_axis(logp, jnp.where(mask, d["yc"], 0)[..., None], -1)[..., 0]
        return jaxloss.policy_gradient_loss(tok, old, adv, mask, **kw)

    _assert_same(fused, unfused, (d["w"], d["hc"]), 1e-10)


def test_no_tokens_by_vocabulary_array():
    """Value-and-grad XLA temporaries of the fused DPO are at most 15% of the unfused path's
    (which holds the [2·B·T, V] logits and their gradient)."""
    b, t, dim, v = 4, 64, 32, 8192
    hc = jnp.zeros((b, t, dim), jnp.float32)
    w = jnp.zeros((dim, v), jnp.float32)
    y = jnp.zeros((b, t), jnp.int32)
    ref = jnp.zeros((b,), jnp.float32)

    def fused(w, hc):
        return jnp.sum(
            F.linear_dpo_loss(hc, hc, w, y, y, reference_chosen=ref, reference_rejected=ref)
        )

    def unfused(w, hc):
        m = jnp.ones((b, t), bool)
        pc = _seq_log_probs(hc, w, y, m)
        return jnp.sum(jaxloss.dpo_loss(pc, pc, ref, ref))

    def temp(f):
        c = jax.jit(jax.value_and_grad(f, argnums=(0, 1))).lower(w, hc).compile()
        return c.memory_analysis().temp_size_in_bytes

    fused_b, unfused_b = temp(fused), temp(unfused)
    assert unfused_b >= 2 * b * t * v * 4, unfused_b  # the logits are there
    assert fused_b <= 0.15 * unfused_b, (fused_b, unfused_b)


def test_errors_name_the_argument():
    d = _data(6)
    with pytest.raises(ValueError, match="linear_dpo_loss: `weight`"):
        F.linear_dpo_loss(
            d["hc"],
            d["hr"],
            d["w"].T,
            d["yc"],
            d["yr"],
            reference_chosen=0.0,
            reference_rejected=0.0,
        )
    with pytest.raises(ValueError, match="`chosen_labels`"):
        F.linear_dpo_loss(
            d["hc"],
            d["hr"],
            d["w"],
            d["yc"][:, :2],
            d["yr"],
            reference_chosen=0.0,
            reference_rejected=0.0,
        )
    good = jnp.array([True, False, True])
    with pytest.raises(ValueError, match=r"linear_kto_loss: .*reference"):
        F.linear_kto_loss(d["hc"], d["w"], d["yc"], good, mask=d["mc"], reference_point=0.0)
    with pytest.raises(ValueError, match=r"linear_kto_loss: `labels`"):  # -100 where counted
        F.linear_kto_loss(
            d["hc"], d["w"], d["yc"], good, reference_log_probs=jnp.zeros(3), reference_point=0.0
        )
