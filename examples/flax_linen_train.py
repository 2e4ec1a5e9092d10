"""jaxloss with Flax Linen: an imbalanced classifier with dropout, trained from a TrainState.

Three overlapping classes with frequencies 85% / 10% / 5%. The loss is label-smoothed
cross-entropy averaged with per-example class weights (`jaxloss.mean(values, weights=w[labels])`;
without the smoothing that is PyTorch's `CrossEntropyLoss(weight=w)`), so the rare classes are
not ignored. Parameters and the
optimizer state live in `flax.training.train_state.TrainState`; the dropout key is passed to
`apply` through `rngs` and folded with the step so that every step drops different units.

Run:  python examples/flax_linen_train.py [--steps N]
"""

from __future__ import annotations

import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state

import jaxloss


class MLP(nn.Module):
    classes: int

    @nn.compact
    def __call__(self, x, *, train: bool):
        x = nn.relu(nn.Dense(64)(x))
        x = nn.Dropout(0.1, deterministic=not train)(x)
        return nn.Dense(self.classes)(x)


def make_data(seed: int, n: int = 1024, d: int = 2):
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, size=n, p=[0.85, 0.10, 0.05])
    centers = 2.0 * rng.normal(size=(3, d))
    return (centers[labels] + rng.normal(size=(n, d))).astype(np.float32), labels


@jax.jit
def train_step(state: train_state.TrainState, x, labels, class_weights, key):
    dropout_key = jax.random.fold_in(key, state.step)

    def loss_fn(params):
        logits = state.apply_fn({"params": params}, x, train=True, rngs={"dropout": dropout_key})
        ce = jaxloss.softmax_cross_entropy_with_integer_labels(logits, labels, label_smoothing=0.05)
        return jaxloss.mean(ce, weights=class_weights[labels])

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    return state.apply_gradients(grads=grads), loss


def main(steps: int = 300, seed: int = 0, lr: float = 0.01, weighted: bool = True) -> dict:
    """Trains and returns the loss history and the per-class recall on the training data.

    ``weighted=False`` trains with equal class weights, for comparison."""
    x, labels = make_data(seed)
    model = MLP(classes=3)
    params = model.init(jax.random.key(seed + 1), x[:1], train=False)["params"]
    state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=optax.adam(lr))
    class_weights = jaxloss.class_weights_from_counts(np.bincount(labels, minlength=3))
    if not weighted:
        class_weights = jnp.ones(3)
    key = jax.random.key(seed + 2)
    history = []
    for step in range(steps):
        state, loss = train_step(state, x, labels, class_weights, key)
        history.append(float(loss))
        if __name__ == "__main__" and step % 100 == 0:
            print(f"step {step:4d}  CE {loss:.4f}")
    predicted = np.argmax(model.apply({"params": state.params}, x, train=False), axis=-1)
    recall = [float(np.mean(predicted[labels == c] == c)) for c in range(3)]
    return {"history": history, "recall": recall, "class_weights": class_weights}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    steps = ap.parse_args().steps
    for weighted in (True, False):
        recall = main(steps, weighted=weighted)["recall"]
        print(f"per-class recall, weighted={weighted}:", [round(r, 3) for r in recall])
