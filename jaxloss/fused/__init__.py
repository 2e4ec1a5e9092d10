"""Memory-lean fused cross-entropies for large vocabularies (see docs/fused.md).

- :func:`linear_cross_entropy`: hidden states and the unembedding in, per-token cross-entropy out,
  without the [tokens, vocabulary] logits (a blocked ``jax.custom_vjp``).
- :func:`vocab_parallel_linear_cross_entropy`: the same with the unembedding sharded over the
  vocabulary, inside ``jax.shard_map`` (Megatron's O(N)-communication combination).
- :func:`vocab_parallel_cross_entropy`: the Megatron combination on local logits.
- :func:`linear_log_probs`: per-token log-probabilities (and entropy) of the head, fused.
- :func:`vocab_parallel_linear_log_probs`: the log-probabilities with a vocabulary-sharded head.
- :func:`linear_distillation`: forward/reverse KL and JSD between two heads, fused.
- :func:`vocab_parallel_linear_distillation`: the distillation with vocabulary-sharded heads.
- :func:`linear_dpo_loss`, :func:`linear_orpo_loss`, :func:`linear_simpo_loss`,
  :func:`linear_kto_loss`, :func:`linear_policy_gradient_loss`: the post-training objectives on
  hidden states.
"""

from ._distillation import linear_distillation, linear_distillation_topk
from ._linear_ce import linear_cross_entropy
from ._log_probs import linear_log_probs
from ._policy_gradient_head import linear_policy_gradient_loss
from ._post_training import linear_dpo_loss, linear_kto_loss, linear_orpo_loss, linear_simpo_loss
from ._vocab_parallel import vocab_parallel_cross_entropy, vocab_parallel_linear_cross_entropy
from ._vocab_parallel_lm import vocab_parallel_linear_distillation, vocab_parallel_linear_log_probs

__all__ = [
    "linear_cross_entropy",
    "linear_distillation",
    "linear_distillation_topk",
    "linear_dpo_loss",
    "linear_kto_loss",
    "linear_log_probs",
    "linear_orpo_loss",
    "linear_policy_gradient_loss",
    "linear_simpo_loss",
    "vocab_parallel_cross_entropy",
    "vocab_parallel_linear_cross_entropy",
    "vocab_parallel_linear_distillation",
    "vocab_parallel_linear_log_probs",
]
