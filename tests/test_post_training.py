"""Post-training objectives beyond the conformance cases: masks, PPO's clip boundaries, the
aggregations and reductions TRL's loss types use, group-relative advantages, aux outputs,
extremes and errors. References are NumPy float64 from the papers' formulas."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss


def _sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


def _rng(seed=0):
    return np.random.default_rng(seed)


def _tokens(rng, b=5, t=7):
    lp = rng.uniform(-4, -0.1, size=(b, t))
    old = lp - rng.uniform(-0.6, 0.6, size=(b, t))
    mask = rng.uniform(size=(b, t)) < 0.7
    mask[0] = False  # a sequence without completion tokens
    mask[1, :] = True
    adv = rng.normal(size=b)
    return lp, old, adv, mask


def _ppo_tokens(lp, old, adv, lo, hi):
    r = np.exp(lp - old)
    a = adv[:, None]
    return -np.minimum(r * a, np.clip(r, 1 - lo, 1 + hi) * a)


# sequence_log_probs and group_relative_advantages -------------------------------------------------


def test_sequence_log_probs_sum_mean_and_masked_nan():
    rng = _rng(1)
    lp, _, _, mask = _tokens(rng)
    lp_nan = np.where(mask, lp, np.nan)  # NaN only where masked: must not leak
    got_sum = jaxloss.sequence_log_probs(jnp.asarray(lp_nan), jnp.asarray(mask))
    got_mean = jaxloss.sequence_log_probs(jnp.asarray(lp_nan), jnp.asarray(mask), average=True)
    want_sum = np.sum(np.where(mask, lp, 0), -1)
    np.testing.assert_allclose(got_sum, want_sum, rtol=1e-12)
    np.testing.assert_allclose(got_mean, want_sum / np.maximum(mask.sum(-1), 1), rtol=1e-12)
    assert got_sum[0] == 0 and got_mean[0] == 0
    g = jax.grad(lambda x: jnp.sum(jaxloss.sequence_log_probs(x, mask, average=True)))(
        jnp.asarray(lp_nan)
    )
    np.testing.assert_allclose(g, np.where(mask, 1 / np.maximum(mask.sum(-1), 1)[:, None], 0))


def test_group_relative_advantages_against_trl_formula():
    rng = _rng(2)
    r = rng.normal(size=(3, 8))
    r[1, :4] = 0.7  # a group with equal rewards
    got = np.asarray(jaxloss.group_relative_advantages(jnp.asarray(r), 4))
    g = r.reshape(3, 2, 4)
    want = (g - g.mean(-1, keepdims=True)) / (g.std(-1, ddof=1, keepdims=True) + 1e-4)
    np.testing.assert_allclose(got, want.reshape(3, 8), rtol=1e-12, atol=1e-15)
    assert np.all(got[1, :4] == 0)
    dr = jaxloss.group_relative_advantages(jnp.asarray(r), 4, normalize_std=False)
    np.testing.assert_allclose(dr, (g - g.mean(-1, keepdims=True)).reshape(3, 8), rtol=1e-12)
    with pytest.raises(ValueError, match="group_size"):
        jaxloss.group_relative_advantages(jnp.asarray(r), 3)
    with pytest.raises(ValueError, match="group_size"):
        jaxloss.group_relative_advantages(jnp.asarray(r), 1)


# policy_gradient_loss ----------------------------------------------------------------------------


@pytest.mark.parametrize("adv", [1.5, -1.5])
def test_clip_boundaries_are_where_ppo_puts_them(adv):
    eps = 0.2
    log_r = np.log(np.array([0.5, 1 - eps, 0.9, 1.0, 1.1, 1 + eps, 2.0]))
    # the boundaries log(1 ± ε) as XLA rounds them (the loss compares log-ratios with them)
    log_r[[1, 5]] = np.asarray(jnp.log1p(jnp.array([-eps, eps], jnp.float64)))
    lp = np.zeros((1, 7))  # log π = 0, so lp − old is log_r exactly
    old = lp - log_r[None]
    mask = np.ones((1, 7), bool)

    def f(x):
        return jaxloss.policy_gradient_loss(x, old, jnp.array([adv]), mask, clip_low=eps)[0]

    g = np.asarray(jax.grad(f)(jnp.asarray(lp)))[0]
    r = np.exp(log_r)
    # clipped only strictly beyond the boundary, on the side the advantage's sign picks
    clipped = (r > 1 + eps) if adv > 0 else (r < 1 - eps)
    clipped[[1, 5]] = False  # exactly at 1 ± ε the ratio is not clipped (its gradient flows)
    want = np.where(clipped, 0.0, -r * adv) / 7
    np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        f(jnp.asarray(lp)), np.mean(_ppo_tokens(lp, old, np.array([adv]), eps, eps)), rtol=1e-12
    )


@pytest.mark.parametrize(
    ("aggregation", "max_length"),
    [("sequence_mean", None), ("token_mean", None), ("fixed_length", 10)],
)
def test_aggregations_are_trls_loss_types(aggregation, max_length):
    rng = _rng(3)
    lp, old, adv, mask = _tokens(rng)
    lo, hi = 0.2, 0.28
    tok = np.where(mask, _ppo_tokens(lp, old, adv, lo, hi), 0)
    n, lengths = tok.sum(-1), mask.sum(-1)
    kw = dict(clip_low=lo, clip_high=hi, aggregation=aggregation, max_length=max_length)
    per_seq = jaxloss.policy_gradient_loss(lp, old, adv, mask, **kw)
    mean = jaxloss.policy_gradient_loss(lp, old, adv, mask, reduction="mean", **kw)
    if aggregation == "sequence_mean":  # grpo: (1/B) Σ_i N_i / max(L_i, 1)
        want_seq, want_mean = n / np.maximum(lengths, 1), np.mean(n / np.maximum(lengths, 1))
    elif aggregation == "token_mean":  # bnpo / dapo: Σ N_i / Σ L_i
        want_seq, want_mean = n / np.maximum(lengths, 1), n.sum() / lengths.sum()
    else:  # dr_grpo: Σ N_i / (B · max_length)
        want_seq, want_mean = n / 10, n.sum() / (len(n) * 10)
    np.testing.assert_allclose(per_seq, want_seq, rtol=1e-12)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-12)
    assert per_seq[0] == 0  # the sequence without tokens
    # token_mean's mean is jaxloss.mean of the per-sequence values weighted by their lengths
    if aggregation == "token_mean":
        np.testing.assert_allclose(jaxloss.mean(per_seq, weights=lengths), want_mean, rtol=1e-12)


def test_masked_tokens_feed_nothing_and_empty_sequences_have_zero_gradient():
    rng = _rng(4)
    lp, old, adv, mask = _tokens(rng)
    poisoned = np.where(mask, lp, np.nan)

    def f(x):
        return jaxloss.policy_gradient_loss(
            x, old, adv, mask, reference_log_probs=lp, kl_coef=0.1, reduction="mean"
        )

    g = np.asarray(jax.grad(f)(jnp.asarray(poisoned)))
    assert np.isfinite(f(jnp.asarray(poisoned)))
    assert np.all(g[~mask] == 0) and np.all(np.isfinite(g))


def test_gspo_sequence_ratio_and_its_gradient():
    rng = _rng(5)
    lp, old, adv, mask = _tokens(rng)
    old = lp - rng.uniform(-0.05, 0.05, size=lp.shape)  # s_i stays inside [1 − ε, 1 + ε]
    lengths = np.maximum(mask.sum(-1), 1)
    s = np.exp(np.sum(np.where(mask, lp - old, 0), -1) / lengths)

    def f(x):
        return jnp.sum(
            jaxloss.policy_gradient_loss(x, old, adv, mask, importance="sequence", clip_low=0.2)
        )

    np.testing.assert_allclose(
        f(jnp.asarray(lp)), np.sum(np.where(mask.any(-1), -s * adv, 0)), rtol=1e-12
    )
    g = np.asarray(jax.grad(f)(jnp.asarray(lp)))
    want = np.where(mask, (-adv * s / lengths)[:, None], 0)  # −Â s_i / L_i on each token
    np.testing.assert_allclose(g, want, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("estimator", ["k1", "k2", "k3"])
def test_kl_estimators(estimator):
    rng = _rng(6)
    lp, old, adv, mask = _tokens(rng)
    ref = lp + rng.uniform(-0.5, 0.5, size=lp.shape)
    d = ref - lp
    k = {"k1": -d, "k2": 0.5 * d**2, "k3": np.expm1(d) - d}[estimator]
    base = jaxloss.policy_gradient_loss(lp, old, adv, mask)
    got = jaxloss.policy_gradient_loss(
        lp, old, adv, mask, reference_log_probs=ref, kl_coef=0.3, kl_estimator=estimator
    )
    want = np.sum(np.where(mask, 0.3 * k, 0), -1) / np.maximum(mask.sum(-1), 1)
    np.testing.assert_allclose(np.asarray(got) - np.asarray(base), want, rtol=1e-9, atol=1e-14)


def test_aux_statistics():
    lp = np.log(np.array([[0.5, 0.5, 0.5, 0.5]]))
    old = lp - np.log(np.array([[0.5, 1.0, 1.5, 3.0]]))
    mask = np.array([[True, True, True, False]])
    _, aux = jaxloss.policy_gradient_loss(lp, old, np.array([1.0]), mask, return_aux=True)
    r = np.array([0.5, 1.0, 1.5])
    assert aux["clip_fraction"] == pytest.approx(1 / 3)  # 1.5 > 1.2 with Â > 0
    assert aux["ratio_mean"] == pytest.approx(r.mean())
    assert aux["ratio_min"] == pytest.approx(0.5) and aux["ratio_max"] == pytest.approx(1.5)
    assert aux["approx_kl"] == pytest.approx(np.mean(r - 1 - np.log(r)))


def test_cispo_gradient_is_the_capped_detached_ratio():
    rng = _rng(7)
    lp, old, adv, mask = _tokens(rng)
    old = lp - rng.uniform(-2.5, 2.5, size=lp.shape)
    w = np.minimum(np.exp(lp - old), 5.0)

    def f(x):
        return jaxloss.cispo_loss(x, old, adv, mask, reduction="mean")

    g = np.asarray(jax.grad(f)(jnp.asarray(lp)))
    np.testing.assert_allclose(g, np.where(mask, -w * adv[:, None], 0) / mask.sum(), rtol=1e-12)
    g_old = jax.grad(lambda o: jaxloss.cispo_loss(lp, o, adv, mask, reduction="mean"))(old)
    assert np.all(np.asarray(g_old) == 0)


def test_zero_advantages_and_huge_ratios_are_finite():
    lp = np.full((2, 3), -1.0)
    old = lp - np.array([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]])
    adv = np.array([0.0, 0.0])
    v = jaxloss.policy_gradient_loss(lp, old, adv, np.ones((2, 3), bool))
    np.testing.assert_array_equal(v, [0.0, 0.0])
    g = jax.grad(lambda x: jnp.sum(jaxloss.policy_gradient_loss(x, old, adv, np.ones((2, 3)))))(
        jnp.asarray(lp)
    )
    assert np.all(np.asarray(g) == 0)


def test_policy_gradient_errors_name_the_argument():
    lp, old, adv, mask = _tokens(_rng(8))
    with pytest.raises(ValueError, match="reference_log_probs"):
        jaxloss.policy_gradient_loss(lp, old, adv, mask, kl_coef=0.1)
    with pytest.raises(ValueError, match="max_length"):
        jaxloss.policy_gradient_loss(lp, old, adv, mask, aggregation="fixed_length")
    with pytest.raises(ValueError, match="`advantages`"):
        jaxloss.policy_gradient_loss(lp, old, adv[:-1], mask)
    with pytest.raises(ValueError, match="`clip_low`"):
        jaxloss.policy_gradient_loss(lp, old, adv, mask, clip_low=1.5)
    with pytest.raises(ValueError, match="`importance`"):
        jaxloss.policy_gradient_loss(lp, old, adv, mask, importance="sentence")


# preference losses --------------------------------------------------------------------------------


def test_dpo_sigmoid_gradient_is_the_papers():
    rng = _rng(9)
    pc, pr, rc, rr = (rng.uniform(-30, -5, size=8) for _ in range(4))
    beta = 0.1
    z = beta * ((pc - rc) - (pr - rr))
    g = jax.grad(lambda a, b: jnp.sum(jaxloss.dpo_loss(a, b, rc, rr, beta=beta)), (0, 1))(pc, pr)
    np.testing.assert_allclose(g[0], -beta * _sigmoid(-z), rtol=1e-12)  # −β σ(−βΔ)
    np.testing.assert_allclose(g[1], beta * _sigmoid(-z), rtol=1e-12)


def test_dpo_aux_rewards_and_reduction():
    rng = _rng(10)
    pc, pr, rc, rr = (rng.uniform(-30, -5, size=8) for _ in range(4))
    per, aux = jaxloss.dpo_loss(pc, pr, rc, rr, beta=0.2, return_aux=True)
    np.testing.assert_allclose(aux["chosen_rewards"], 0.2 * (pc - rc), rtol=1e-12)
    np.testing.assert_allclose(aux["rejected_rewards"], 0.2 * (pr - rr), rtol=1e-12)
    np.testing.assert_allclose(aux["margins"], 0.2 * ((pc - rc) - (pr - rr)), rtol=1e-12)
    np.testing.assert_array_equal(aux["accuracies"], (pc - rc > pr - rr).astype(float))
    mean = jaxloss.dpo_loss(pc, pr, rc, rr, beta=0.2, reduction="mean")
    np.testing.assert_allclose(mean, np.mean(per), rtol=1e-12)
    g = jax.grad(lambda a: jaxloss.dpo_loss(a, pr, rc, rr, return_aux=True)[1]["margins"].sum())(pc)
    assert np.all(np.asarray(g) == 0)  # aux is detached


@pytest.mark.parametrize("loss_type", jaxloss.DPO_LOSS_TYPES)
def test_dpo_extremes_are_finite_in_float32(loss_type):
    big = np.array([1e4, -1e4, 0.0, 0.0], np.float32)
    zeros = np.zeros(4, np.float32)
    kw = (
        {"chosen_lengths": np.ones(4), "rejected_lengths": np.ones(4)} if loss_type == "ipo" else {}
    )
    for pc, pr in [(big, -big), (-big, big), (big, big)]:  # huge log-ratios; identical pairs

        def f(a, pr=pr):
            return jnp.sum(
                jaxloss.dpo_loss(a, jnp.asarray(pr), zeros, zeros, loss_type=loss_type, **kw)
            )

        v, g = jax.value_and_grad(f)(jnp.asarray(pc))
        assert np.isfinite(v) and np.all(np.isfinite(g)), (loss_type, v, g)


def test_kto_reference_point_from_mismatched_pairs_is_detached():
    rng = _rng(11)
    pol, ref = rng.uniform(-30, -5, size=6), rng.uniform(-30, -5, size=6)
    kl_pol, kl_ref = rng.uniform(-30, -5, size=6), rng.uniform(-30, -5, size=6)
    good = np.array([True, False] * 3)
    z0 = max(0.0, float(np.mean(kl_pol - kl_ref)))

    def f(a, kp):
        return jnp.sum(
            jaxloss.kto_loss(a, ref, good, kl_policy_log_probs=kp, kl_reference_log_probs=kl_ref)
        )

    rho = pol - ref
    want = np.where(good, 1 - _sigmoid(0.1 * (rho - z0)), 1 - _sigmoid(0.1 * (z0 - rho)))
    np.testing.assert_allclose(f(pol, kl_pol), want.sum(), rtol=1e-12)
    assert np.all(np.asarray(jax.grad(f, 1)(pol, kl_pol)) == 0)
    with pytest.raises(ValueError, match="reference_point"):
        jaxloss.kto_loss(pol, ref, good)


def test_orpo_nll_and_errors():
    lw, ll = np.array([-0.3, -1.2]), np.array([-0.9, -0.4])
    nll = np.array([2.0, 3.0])
    base = jaxloss.orpo_loss(lw, ll, beta=0.5)
    with_nll = jaxloss.orpo_loss(lw, ll, beta=0.5, nll=nll)
    np.testing.assert_allclose(np.asarray(with_nll) - np.asarray(base), nll + lw, rtol=1e-12)
    with pytest.raises(ValueError, match="policy_chosen"):
        jaxloss.orpo_loss(np.array([0.5]), np.array([-1.0]))  # a log-probability above 0


def test_preference_errors_name_the_argument():
    x = np.array([-5.0, -6.0])
    with pytest.raises(ValueError, match="`loss_type`"):
        jaxloss.dpo_loss(x, x, x, x, loss_type="sigmoidal")
    with pytest.raises(ValueError, match="chosen_lengths"):
        jaxloss.dpo_loss(x, x, x, x, loss_type="ipo")
    with pytest.raises(ValueError, match="label_smoothing"):
        jaxloss.dpo_loss(x, x, x, x, loss_type="hinge", label_smoothing=0.1)
    with pytest.raises(ValueError, match="`beta`"):
        jaxloss.dpo_loss(x, x, x, x, beta=0.0)
    with pytest.raises(ValueError, match="chosen_nll"):
        jaxloss.cpo_loss(x, x)
    with pytest.raises(TypeError, match="`desirable`"):
        jaxloss.kto_loss(x, x, np.array([1.0, 0.0]), reference_point=0.0)
