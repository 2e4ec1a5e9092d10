"""Post-training a tiny language model with optax: DPO on synthetic preferences, then GRPO on a
task whose reward is producing the right token.

The model is a bigram table ``W[previous token] -> logits of the next``: small enough to train in
seconds, with the same interfaces as a real one (token log-probabilities, sequence log-probs).

- ``train_dpo``: chosen completions follow the rule "next = previous + 1 (mod V)", rejected ones
  are random. ``jaxloss.dpo_loss`` against the frozen initial model raises the chosen−rejected
  reward margin.
- ``train_grpo``: for a prompt token p the reward is 1 when the sampled completion is p + 1
  (mod V). Groups of completions per prompt, ``jaxloss.group_relative_advantages`` and
  ``jaxloss.policy_gradient_loss`` raise the mean reward.

Run: ``python examples/post_training.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

import jaxloss

V, T = 8, 4  # vocabulary, completion length


def token_log_probs(w: jax.Array, tokens: jax.Array) -> jax.Array:
    """log π(tokens[t] | tokens[t-1]) for t = 1..T of each sequence: [B, T]."""
    logp = jax.nn.log_softmax(w[tokens[:, :-1]], axis=-1)  # [B, T, V]
    return jnp.take_along_axis(logp, tokens[:, 1:, None], axis=-1)[..., 0]


def _preferences(key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
    k1, k2 = jax.random.split(key)
    start = jax.random.randint(k1, (n, 1), 0, V)
    chosen = (start + jnp.arange(T + 1)) % V  # follows the rule
    rejected = jnp.concatenate([start, jax.random.randint(k2, (n, T), 0, V)], axis=1)
    return chosen, rejected


def train_dpo(steps: int = 60, seed: int = 0, beta: float = 0.5) -> dict[str, float]:
    """DPO; returns the mean reward margin and accuracy before and after training."""
    key = jax.random.PRNGKey(seed)
    w0 = 0.1 * jax.random.normal(key, (V, V))
    chosen, rejected = _preferences(jax.random.PRNGKey(seed + 1), 64)
    mask = jnp.ones((chosen.shape[0], T), bool)
    ref_c = jaxloss.sequence_log_probs(token_log_probs(w0, chosen), mask)
    ref_r = jaxloss.sequence_log_probs(token_log_probs(w0, rejected), mask)

    def loss(w: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        pc = jaxloss.sequence_log_probs(token_log_probs(w, chosen), mask)
        pr = jaxloss.sequence_log_probs(token_log_probs(w, rejected), mask)
        return jaxloss.dpo_loss(pc, pr, ref_c, ref_r, beta=beta, reduction="mean", return_aux=True)

    opt = optax.adam(0.05)
    state = opt.init(w0)

    @jax.jit
    def step(w, state):
        (_, aux), g = jax.value_and_grad(loss, has_aux=True)(w)
        updates, state = opt.update(g, state)
        return optax.apply_updates(w, updates), state, aux

    w = w0
    _, first = loss(w0)
    for _ in range(steps):
        w, state, aux = step(w, state)
    return {
        "margin_before": float(jnp.mean(first["margins"])),
        "margin_after": float(jnp.mean(aux["margins"])),
        "accuracy_after": float(jnp.mean(aux["accuracies"])),
    }


def train_grpo(steps: int = 60, seed: int = 0, group: int = 8) -> dict[str, float]:
    """GRPO; returns the mean reward of the first and the last batch."""
    w = jnp.zeros((V, V))
    prompts = jnp.repeat(jnp.arange(V), group)  # every prompt, `group` completions each
    target = (prompts + 1) % V
    opt = optax.adam(0.1)
    state = opt.init(w)

    @jax.jit
    def step(w, state, key):
        tokens = jax.random.categorical(key, w[prompts])  # one completion token each
        reward = (tokens == target).astype(jnp.float32)
        adv = jaxloss.group_relative_advantages(reward, group)
        seq = jnp.stack([prompts, tokens], axis=1)
        mask = jnp.ones((seq.shape[0], 1), bool)
        old = jax.lax.stop_gradient(token_log_probs(w, seq))  # on-policy: ratio 1

        def loss(w):
            return jaxloss.policy_gradient_loss(
                token_log_probs(w, seq), old, adv, mask, reduction="mean"
            )

        g = jax.grad(loss)(w)
        updates, state = opt.update(g, state)
        return optax.apply_updates(w, updates), state, jnp.mean(reward)

    rewards = []
    for i in range(steps):
        w, state, r = step(w, state, jax.random.PRNGKey(seed * 1000 + i))
        rewards.append(float(r))
    return {"reward_first": rewards[0], "reward_last": sum(rewards[-5:]) / 5}


if __name__ == "__main__":
    print("DPO:", train_dpo())
    print("GRPO:", train_grpo())
