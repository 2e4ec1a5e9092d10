"""Stable elementwise primitives that fuse on XLA:CPU and have finite gradients everywhere.

``jax.nn.softplus`` and ``jax.nn.log_sigmoid`` go through ``jnp.logaddexp``, whose ``isnan`` select
stops XLA:CPU from fusing the elementwise part into the following reduction: measured with
``compiled.memory_analysis()`` (jax 0.10.2, 2^20 float32 elements), ``jnp.mean(jax.nn.softplus(x))``
keeps a 4 MiB (full-size) temporary and ``jnp.mean(softplus(x))`` with the form below none;
tests/test_bench_smoke.py asserts the same for sigmoid cross-entropy against optax's
``logaddexp`` form, and bench/README.md has the timings. The forms here are written out by hand
and carry closed-form JVPs, so both the value and the gradient fuse.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

__all__ = [
    "abs0",
    "log_sigmoid",
    "logsumexp",
    "logsumexp_parts",
    "nan_gradient",
    "nan_of",
    "softplus",
    "xlogx",
]


def nan_of(*xs: jax.Array) -> jax.Array:
    """0 where every ``x`` is a number (±inf included), NaN where one is NaN; zero derivative.

    Added to the result of a ``jnp.maximum`` / ``jnp.minimum`` (or a max-reduction) that may meet
    a NaN: above a few thousand elements XLA:CPU (jax 0.10.2) hands a reduction and its
    elementwise producers to its YNNPACK library fusion, whose max and min return the other
    operand where one is NaN (measured: ``jnp.sum(jnp.maximum(x, 0))`` over 2^20 elements with
    one NaN is finite). ``0·sign(x)`` is exact (±0 added) and fuses there: no select, no pass.
    """
    signs = jnp.sign(xs[0])
    for x in xs[1:]:
        signs = signs + jnp.sign(x)
    return 0 * signs


@jax.custom_jvp
def softplus(x: jax.Array) -> jax.Array:
    """softplus(x) = log(1 + e^x) = max(x, 0) + log1p(exp(-|x|)); d/dx = sigmoid(x)."""
    return jnp.maximum(x, 0) + jnp.log1p(jnp.exp(-jnp.abs(x)))


@softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return softplus(x), jax.nn.sigmoid(x) * dx


def abs0(x: jax.Array) -> jax.Array:
    """|x| whose derivative is sign(x), so exactly 0 at x = 0 (``jnp.abs`` gives 1 there).

    Written as x·sign(x): sign has a zero derivative, so d/dx = sign(x). Every kink at a zero
    residual in jaxloss takes the subgradient 0 through this.
    """
    return x * jnp.sign(x)


def log_sigmoid(x: jax.Array) -> jax.Array:
    """log(sigmoid(x)) = -softplus(-x); d/dx = sigmoid(-x)."""
    return -softplus(-x)


@jax.custom_jvp
def xlogx(x: jax.Array) -> jax.Array:
    """x·log(x) with 0·log(0) = 0, for x >= 0.

    The derivative log(x) + 1 is -inf at x = 0; here it is taken as 0 there (the convention of
    ``torch.xlogy``), so entropy and KL terms with zero probabilities have finite gradients.
    The guard is keyed on x == 0 only: NaN (and a negative x, outside the domain) give NaN.
    """
    zero = x == 0
    safe = jnp.where(zero, 1, x)
    return jnp.where(zero, 0, x * jnp.log(safe))


@xlogx.defjvp
def _xlogx_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    zero = x == 0
    safe = jnp.where(zero, 1, x)
    return xlogx(x), jnp.where(zero, 0, jnp.log(safe) + 1) * dx


def logsumexp_parts(
    x: jax.Array, axis: int = -1, where: jax.Array | None = None
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The masked log-sum-exp over ``axis`` as ``(shift, log_sum, any_counted)``, keepdims.

    ``lse = shift + log_sum`` with ``shift`` the (stopped) row maximum and ``log_sum`` =
    log Σ exp(x - shift) in [0, log C]: callers that subtract a logit from the lse write
    ``(shift - x_c) + log_sum``, exact where ``x_c`` is near the maximum (``lse - x_c`` rounds
    ``log_sum`` to the ulp of ``lse``: 1e-3 at logits of 1e4, everything at 3e38), and finite
    where ``lse`` and ``x_c`` are finite. The gradient flows through ``log_sum`` only (it is the
    softmax). Masked entries get exactly zero gradient; a row with nothing counted gives
    ``shift = log_sum = 0`` with a zero gradient, never NaN. A NaN in a counted entry makes its
    row's ``log_sum`` NaN (and the row counts): "nothing counted" is decided by the mask and by
    every counted entry being -inf, never by a comparison that NaN fails.
    """
    if where is None:
        m = jnp.max(x, axis=axis, keepdims=True)
    else:
        where = jnp.broadcast_to(where, x.shape)
        m = jnp.max(jnp.where(where, x, -jnp.inf), axis=axis, keepdims=True)
    # A row counts unless its max is -inf (all counted logits -inf, or nothing counted). Written
    # as != so that a NaN max (NaN in a counted entry) counts, and the NaN reaches the sum.
    any_counted = m != -jnp.inf
    m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0))
    if where is None:
        s = jnp.sum(jnp.exp(x - m), axis=axis, keepdims=True)
    else:
        shifted = jnp.where(where, x - m, 0)
        s = jnp.sum(jnp.where(where, jnp.exp(shifted), 0), axis=axis, keepdims=True)
    # A row of NaNs: a fused max (XLA:CPU above a few thousand elements, see nan_of) returns
    # -inf for it, not NaN; its sum of exponentials is NaN, and the row counts.
    any_counted = any_counted | jnp.isnan(s)
    s_safe = jnp.where(any_counted, s, 1)
    return m, jnp.where(any_counted, jnp.log(s_safe), 0), any_counted


def logsumexp(
    x: jax.Array, axis: int = -1, where: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """Masked log-sum-exp over ``axis`` with finite values and gradients everywhere.

    Returns ``(lse, any_counted)``. Masked entries get exactly zero gradient; a row with nothing
    counted gives ``lse = 0`` (callers zero the loss there) with a zero gradient, never NaN.
    A NaN in a counted entry makes its row's ``lse`` NaN (and the row counts). See
    :func:`logsumexp_parts` for the form to subtract a logit from.
    """
    m, log_s, any_counted = logsumexp_parts(x, axis, where)
    lse = jnp.where(any_counted, m + log_s, 0)
    return jnp.squeeze(lse, axis), jnp.squeeze(any_counted, axis)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def nan_gradient(value: jax.Array, x: jax.Array, axis: int | tuple[int, ...]) -> jax.Array:
    """``value`` unchanged; where it is NaN, its derivative w.r.t. every entry of ``x`` that
    reduces to it (over ``axis``) is NaN too.

    For losses whose derivative w.r.t. an input does not involve the NaN (linear ones such as
    NLL, dKL/dlog_predictions = -t): a NaN anywhere in an example's inputs makes that example's
    value NaN, and this makes its whole gradient row NaN, not just the NaN entry. Keyed on the
    value (an [N] vector the loss computes anyway), so it adds no pass over ``x``: under
    ``jax.grad`` the term is a broadcast added to the gradient's elementwise computation.
    Apply it after ignored examples are zeroed (their value is then 0, not NaN).
    """
    return value


@nan_gradient.defjvp
def _nan_gradient_jvp(axis, primals, tangents):
    value, _ = primals
    dvalue, dx = tangents
    poison = jnp.where(jnp.isnan(value), jnp.nan, 0).astype(value.dtype)
    return value, dvalue + poison * jnp.sum(dx, axis=axis).astype(value.dtype)
