"""Connectionist temporal classification (CTC): the negative log-likelihood of a label sequence
summed over every frame alignment that collapses to it (Graves et al., ICML 2006).

Conventions, stated once:

- ``logits`` are [..., T, K] unnormalised frame scores (the log-softmax over K is taken inside,
  as optax does; torch takes log-probabilities, which are a fixed point of the log-softmax, so
  passing torch's ``log_probs`` here gives torch's value). ``labels`` are integers [..., N]; the
  leading batch shapes must agree.
- Which frames and labels count is said in optax's form (``logit_paddings`` [..., T],
  ``label_paddings`` [..., N]: 1 = padded, 0 = counted; label padding must be at the right end,
  frame padding may be anywhere: a padded frame is skipped) or in torch's form (integer
  ``input_lengths`` / ``target_lengths`` [...]: the first ``length`` entries count). For each of
  the two axes at most one form may be given; none means every entry counts.
- The value is the true -log p: +inf where no alignment is possible (more labels, counting a
  blank between repeats, than frames: T < L + R), where optax returns about 1e5 per impossible
  step. ``zero_infinity=True`` replaces infinite values by 0 (torch's rule). An infinite value
  has a zero gradient either way, never NaN.
- ``reduction="mean"`` is torch's: each sequence's value divided by max(its target length, 1),
  then the mean over the batch; ``"sum"`` the sum; ``"none"`` (default) the per-sequence values.

Computation: a forward recursion over the 2L + 1 states of the blank-extended label sequence in
log space, one ``lax.scan`` step per frame; each step's state vector is shifted by its maximum
(Graves's rescaling, in log space), so that it stays near 0 at any T and the log-likelihood is
the sum of the per-frame shifts. The gradient is the forward-backward posterior (Graves eq. 16)
from a second, reverse scan, as a closed-form JVP (so forward and reverse mode both work).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from . import _reduce
from ._core import ad as _ad
from ._core import checks as _checks
from ._core.numerics import nan_gradient
from ._core.registry import register

__all__ = ["ctc_loss"]

_FN = "ctc_loss"


def _lse3(a: jax.Array, b: jax.Array, c: jax.Array) -> jax.Array:
    """log(e^a + e^b + e^c) with -inf terms allowed: all -inf gives -inf (no NaN); NaN stays."""
    m = jnp.maximum(jnp.maximum(a, b), c)
    m = jnp.where(m == -jnp.inf, 0, m)
    return m + jnp.log(jnp.exp(a - m) + jnp.exp(b - m) + jnp.exp(c - m))


def _shift_right(x: jax.Array, k: int) -> jax.Array:
    """x[..., s - k] along the last axis, -inf where s < k."""
    pad = jnp.full((*x.shape[:-1], k), -jnp.inf, x.dtype)
    return jnp.concatenate([pad, x[..., :-k]], axis=-1)


def _shift_left(x: jax.Array, k: int) -> jax.Array:
    """x[..., s + k] along the last axis, -inf where s + k is past the end."""
    pad = jnp.full((*x.shape[:-1], k), -jnp.inf, x.dtype)
    return jnp.concatenate([x[..., k:], pad], axis=-1)


def _row_shift(x: jax.Array) -> jax.Array:
    """The maximum over the last axis (0 where every entry is -inf), to subtract from a row."""
    m = jnp.max(x, axis=-1)
    return jnp.where(m == -jnp.inf, 0, m)


def _forward(lp: jax.Array, valid: jax.Array, skip: jax.Array, keep_alphas: bool):
    """The rescaled forward recursion.

    lp: [T, B, S] log-probabilities of each state's symbol at each frame; valid: [T, B] counted
    frames; skip: [B, S] 0 where the transition s - 2 -> s is allowed, -inf where not.
    Returns (normalised alphas of the last frame [B, S], the per-frame shifts [T, B], and the
    normalised alphas of every frame [T, B, S] when ``keep_alphas``)."""
    _, b, s = lp.shape
    # Before the first frame: all probability in a virtual blank state that reaches s = 0 (stay)
    # and s = 1 (advance) in one step, which is what the recursion gives from 1 at s = 0.
    init = jnp.full((b, s), -jnp.inf, lp.dtype).at[:, 0].set(0)

    def step(alpha, x):
        lp_t, valid_t = x
        new = _lse3(alpha, _shift_right(alpha, 1), _shift_right(alpha, 2) + skip) + lp_t
        shift = _row_shift(new)
        new = jnp.where(valid_t[:, None], new - shift[:, None], alpha)
        shift = jnp.where(valid_t, shift, 0)
        return new, ((shift, new) if keep_alphas else shift)

    alpha, out = jax.lax.scan(step, init, (lp, valid))
    if keep_alphas:
        shifts, alphas = out
        return alpha, shifts, alphas
    return alpha, out, None


def _log_end(alpha: jax.Array, final: jax.Array) -> jax.Array:
    """log Σ exp(α̂_T(s)) over the final states s (the last label or the last blank)."""
    ends = jnp.where(final, alpha, -jnp.inf)
    m = _row_shift(ends)
    return m + jnp.log(jnp.sum(jnp.exp(ends - m[:, None]), axis=-1))


def _state_logprobs(z: jax.Array, labels: jax.Array, blank_id: int):
    """log softmax(z) at each state's symbol, [T, B, S] (S = 2N + 1, blanks at even s), and
    the softmax's shift and log-sum [B, T, 1]. Formed as (z_c - m) - log Σ exp(z - m) from a
    gather of the N label columns and the blank column: no [B, T, K] log-softmax."""
    m = jnp.max(z, axis=-1, keepdims=True)
    m = jnp.where(jnp.isfinite(m), m, 0)
    log_s = jnp.log(jnp.sum(jnp.exp(z - m), axis=-1, keepdims=True))
    nb, t, _ = z.shape
    n = labels.shape[-1]
    z_lab = jnp.take_along_axis(z, jnp.broadcast_to(labels[:, None, :], (nb, t, n)), axis=-1)
    lp_lab = (z_lab - m) - log_s  # [B, T, N]
    lp_blank = (z[..., blank_id : blank_id + 1] - m) - log_s  # [B, T, 1]
    lp = jnp.concatenate(
        [jnp.broadcast_to(lp_blank[..., None], (nb, t, n, 1)), lp_lab[..., None]], axis=-1
    ).reshape(nb, t, 2 * n)
    lp = jnp.concatenate([lp, lp_blank], axis=-1)
    return jnp.swapaxes(lp, 0, 1), m, log_s


@functools.partial(jax.custom_jvp, nondiff_argnums=(5,))
def _ctc_nll(z, labels, valid, skip, final, blank_id):
    """-log p(labels | frames) per sequence from logits z [B, T, K] (labels with padding
    replaced by the blank; valid [T, B]; skip and final [B, S])."""
    lp, _, log_s = _state_logprobs(z, labels, blank_id)
    alpha, shifts, _ = _forward(lp, valid, skip, keep_alphas=False)
    return _nan_frames(-(jnp.sum(shifts, axis=0) + _log_end(alpha, final)), log_s)


def _nan_frames(value: jax.Array, log_s: jax.Array) -> jax.Array:
    """NaN for a sequence with a NaN logit in any frame (padded frames included)."""
    return jnp.where(jnp.any(jnp.isnan(log_s[..., 0]), axis=-1), jnp.nan, value)


def _ctc_nll_jvp(blank_id, primals, tangents):
    z, labels, valid, skip, final = primals
    dz = tangents[0]
    lp, m, log_s = _state_logprobs(z, labels, blank_id)
    alpha, shifts, alphas = _forward(lp, valid, skip, keep_alphas=True)
    log_end = _log_end(alpha, final)
    value = _nan_frames(-(jnp.sum(shifts, axis=0) + log_end), log_s)
    if _ad.is_zero(dz):
        return value, jnp.zeros_like(value)
    # Backward variables scaled with the forward's per-frame shifts c_t (Rabiner's scaling):
    # with α̂_t = log α_t - Σ_{τ≤t} c_τ and β̂_t = log β_t - (log p - Σ_{τ≤t} c_τ), the state
    # posterior at frame t is exactly exp(α̂_t + β̂_t) (it sums to 1 over the states), and
    #   β̂_{t-1}(s) = log Σ_{s' ∈ {s, s+1, s+2}} exp(lp_t(s') + β̂_t(s')) - c_t
    # needs no reduction: both stay near 0 at any T. An impossible alignment (log p = -inf)
    # gets a zero posterior (the gradient of an infinite value is 0, not 0·inf).
    feasible = value != jnp.inf
    skip_next = _shift_left(skip, 2)  # 0 where s -> s + 2 is allowed
    beta_end = jnp.where(final, -jnp.where(feasible, log_end, 0)[:, None], -jnp.inf)

    def step(beta, x):
        lp_t, valid_t, alpha_t, shift_t = x
        post = jnp.where(valid_t[:, None] & feasible[:, None], jnp.exp(alpha_t + beta), 0)
        e = lp_t + beta
        prev = _lse3(e, _shift_left(e, 1), _shift_left(e, 2) + skip_next) - shift_t[:, None]
        return jnp.where(valid_t[:, None], prev, beta), post

    _, post = jax.lax.scan(step, beta_end, (lp, valid, alphas, shifts), reverse=True)
    # Graves eq. 16: dl/dz_t(k) = softmax_t(k) Σ_s post_t(s) - Σ_{s: l'_s = k} post_t(s). The
    # label states' occupancy goes to their classes through a one-hot product (XLA:CPU's
    # scatter-add is slower), the blank states' sum to the blank column.
    post = jnp.swapaxes(post, 0, 1)  # [B, T, S]
    # Σ_s post_t(s) is 1 up to the rounding accumulated along the frames (2e-4 in float32 at
    # T = 2000): normalise per frame, outside the loop. 0 on padded frames (and when infeasible).
    total = jnp.sum(post, axis=-1, keepdims=True)
    inv = jnp.where(total == 0, 0, 1 / jnp.where(total == 0, 1, total))
    k = z.shape[-1]
    onehot = (labels[..., None] == jnp.arange(k)).astype(z.dtype)  # [B, N, K]
    occupancy = jnp.einsum("btn,bnk->btk", post[..., 1::2], onehot)
    blank_occ = jnp.sum(post[..., 0::2], axis=-1)
    occupancy = occupancy.at[..., blank_id].add(blank_occ)
    grad = jnp.exp((z - m) - log_s) * (total * inv) - occupancy * inv
    return value, jnp.sum(grad * dz, axis=(1, 2))


_ctc_nll.defjvp(_ctc_nll_jvp, symbolic_zeros=True)


# ----------------------------------------------------------------------------------------------
# Argument handling


def _mask_from_paddings(
    arg: str, paddings: ArrayLike, shape: tuple[int, ...]
) -> tuple[jax.Array, Any]:
    """(counted mask, per-row 'bad padding' flag) from 0/1 paddings of the given shape."""
    pad = _checks.check_real(_FN, arg, paddings)
    if tuple(pad.shape) != shape:
        what = "logits.shape[:-1]" if arg == "logit_paddings" else "the shape of `labels`"
        raise ValueError(
            f"jaxloss.{_FN}: `{arg}` must have {what} {shape}; got {arg}.shape={tuple(pad.shape)}."
        )
    raw = _checks.concrete_array(paddings)
    if raw is not None and raw.size:
        bad = ~((raw == 0) | (raw == 1))
        if bad.any():
            raise ValueError(
                f"jaxloss.{_FN}: `{arg}` must hold 0 (counted) or 1 (padded); got "
                f"{raw[bad].ravel()[:5].tolist()}."
            )
    counted = pad == 0
    bad_rows = jnp.any(~(counted | (pad == 1)), axis=-1)  # NaN or another value under jit
    return counted, bad_rows


def _mask_from_lengths(
    arg: str, lengths: ArrayLike, batch: tuple[int, ...], size: int, axis_name: str
):
    """(counted mask [..., size], per-row 'bad length' flag) from integer lengths [...]."""
    n = _checks.check_integer(_FN, arg, lengths)
    if tuple(n.shape) != batch:
        raise ValueError(
            f"jaxloss.{_FN}: `{arg}` must have the batch shape {batch} (one length per "
            f"sequence); got {arg}.shape={tuple(n.shape)}."
        )
    raw = _checks.concrete_array(lengths)
    if raw is not None and raw.size and ((raw < 0) | (raw > size)).any():
        bad = raw[(raw < 0) | (raw > size)]
        raise ValueError(
            f"jaxloss.{_FN}: `{arg}` must be in [0, {size}] ({axis_name}); got "
            f"{bad.ravel()[:5].tolist()}."
        )
    counted = jnp.arange(size) < n[..., None]
    return counted, (n < 0) | (n > size)


def _one_form(
    pad_name: str, paddings: ArrayLike | None, len_name: str, lengths: ArrayLike | None
) -> None:
    if paddings is not None and lengths is not None:
        raise ValueError(
            f"jaxloss.{_FN}: pass either `{pad_name}` (optax's form) or `{len_name}` (torch's "
            "form), not both."
        )


@register(plot=None)
def ctc_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    logit_paddings: ArrayLike | None = None,
    label_paddings: ArrayLike | None = None,
    input_lengths: ArrayLike | None = None,
    target_lengths: ArrayLike | None = None,
    blank_id: int = 0,
    zero_infinity: bool = False,
    reduction: str = "none",
) -> jax.Array:
    """Connectionist temporal classification loss: -log p(labels | frames), one value per sequence.

    Math (Graves et al. 2006): with y_t = softmax(logits_t) over the K classes, the labels
    l_1..l_L extended with blanks to l' = (b, l_1, b, ..., l_L, b) (S = 2L + 1 states) and the
    forward variables
      α_1(0) = y_1(b), α_1(1) = y_1(l_1),
      α_t(s) = [α_{t-1}(s) + α_{t-1}(s-1) + [l'_s ≠ b, l'_s ≠ l'_{s-2}] α_{t-1}(s-2)] y_t(l'_s),
    the loss is -log p with p = α_T(S-1) + α_T(S-2) (counted frames only; p = Π_t y_t(b) for an
    empty target). It is computed in log space, each frame's state vector shifted by its
    maximum, so float32 stays accurate at thousands of frames. Impossible alignments (fewer
    frames than L plus the number of repeated neighbours) give +inf, or 0 with
    ``zero_infinity=True``.

    Gradient: dl/dlogits_t(k) = y_t(k) - Σ_{s: l'_s = k} α_t(s) β_t(s) / (y_t(k) p) (Graves eq. 16:
    softmax minus the posterior occupancy of class k at frame t) for counted frames, 0 for padded
    frames, and 0 for a sequence whose value is infinite. Computed by a reverse (backward) scan
    as a closed-form JVP; ``labels`` and the paddings/lengths are not differentiable. A NaN
    logit (in a padded frame too) makes its sequence's value and gradient NaN, and no other.
    First derivatives only: differentiating the closed-form gradient again (a Hessian) is not
    implemented and comes out NaN.

    Args:
      logits: floating [..., T, K] frame scores (unnormalised; log-probabilities work too).
      labels: integer [..., N] label sequences; counted labels must be in [0, K) and not
        ``blank_id`` (a ValueError when concrete; a NaN value for that sequence under jit).
      logit_paddings: optional [..., T], 1.0 for padded frames (optax's form; any position).
      label_paddings: optional [..., N], 1.0 for padded labels (optax's form; right-padded).
      input_lengths: optional integer [...]: the first ``input_lengths`` frames count (torch's
        form). Not together with ``logit_paddings``.
      target_lengths: optional integer [...]: the first ``target_lengths`` labels count (torch's
        form). Not together with ``label_paddings``.
      blank_id: the blank class, in [0, K) (torch's ``blank``).
      zero_infinity: replace infinite values (impossible alignments) by 0 (torch's option).
      reduction: ``"none"`` (default: one value per sequence), ``"mean"`` (torch's: each value
        divided by max(target length, 1), then averaged) or ``"sum"``.

    Returns:
      Array of the batch shape (``reduction="none"``): ``optax.ctc_loss(logits, logit_paddings,
      labels, label_paddings)`` where an alignment exists, and torch's
      ``ctc_loss(log_softmax(logits) moved to [T, B, K], labels, input_lengths, target_lengths,
      reduction='none')``; or a scalar for ``"mean"`` / ``"sum"`` (torch's).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> logits = jnp.zeros((1, 4, 3))  # 4 frames, uniform over {blank, 1, 2}
      >>> labels = jnp.array([[1, 2]])
      >>> round(float(jaxloss.ctc_loss(logits, labels)[0]), 4)  # -log(15 paths / 3^4)
      1.6864
      >>> v = jaxloss.ctc_loss(logits, jnp.array([[1, 2, 0]]), target_lengths=jnp.array([2]),
      ...                      reduction="mean")
      >>> round(float(v), 4)
      0.8432
    """
    _reduce.check_reduction(_FN, reduction)
    z = _checks.check_floating(_FN, "logits", logits)
    y = _checks.check_integer(_FN, "labels", labels)
    if z.ndim < 2:
        raise ValueError(
            f"jaxloss.{_FN}: `logits` must be [..., T, K] (frames, classes); got shape "
            f"{tuple(z.shape)}."
        )
    batch, (t_max, k) = tuple(z.shape[:-2]), z.shape[-2:]
    if y.ndim < 1 or tuple(y.shape[:-1]) != batch:
        raise ValueError(
            f"jaxloss.{_FN}: `labels` must be [..., N] with the batch shape of `logits` "
            f"{batch}; got labels.shape={tuple(y.shape)} for logits.shape={tuple(z.shape)}."
        )
    n_max = y.shape[-1]
    _checks.require(_FN, "blank_id", blank_id, _checks.Interval(0, k - 1))
    if not isinstance(blank_id, (int, np.integer)) or isinstance(blank_id, bool):
        raise ValueError(f"jaxloss.{_FN}: `blank_id` must be a Python int; got {blank_id!r}.")
    _one_form("logit_paddings", logit_paddings, "input_lengths", input_lengths)
    _one_form("label_paddings", label_paddings, "target_lengths", target_lengths)

    bad = jnp.zeros(batch, bool)
    if logit_paddings is not None:
        frames, bad_f = _mask_from_paddings("logit_paddings", logit_paddings, (*batch, t_max))
    elif input_lengths is not None:
        frames, bad_f = _mask_from_lengths(
            "input_lengths", input_lengths, batch, t_max, "the frames of `logits`"
        )
    else:
        frames, bad_f = jnp.ones((*batch, t_max), bool), False
    if label_paddings is not None:
        counted, bad_l = _mask_from_paddings("label_paddings", label_paddings, (*batch, n_max))
        lengths = jnp.sum(counted, axis=-1)
        # Right padding: the counted labels are exactly the first `lengths`.
        bad_l = bad_l | jnp.any(counted != (jnp.arange(n_max) < lengths[..., None]), axis=-1)
        raw = _checks.concrete_array(label_paddings)
        if raw is not None and raw.size and np.all((raw == 0) | (raw == 1)):
            c = raw == 0
            if np.any(c[..., 1:] & ~c[..., :-1]):
                raise ValueError(
                    f"jaxloss.{_FN}: `label_paddings` must pad at the right end (0s, then 1s "
                    "in each row), as optax requires."
                )
    elif target_lengths is not None:
        counted, bad_l = _mask_from_lengths(
            "target_lengths", target_lengths, batch, n_max, "the width of `labels`"
        )
        lengths = jnp.sum(counted, axis=-1)
    else:
        counted, bad_l = jnp.ones((*batch, n_max), bool), False
        lengths = jnp.full(batch, n_max)
    raw_labels = _checks.concrete_array(labels)
    raw_counted = _checks.concrete_array(counted)
    if raw_labels is not None and raw_counted is not None and raw_labels.size:
        wrong = raw_counted & ((raw_labels < 0) | (raw_labels >= k) | (raw_labels == blank_id))
        if wrong.any():
            raise ValueError(
                f"jaxloss.{_FN}: counted `labels` must be in [0, {k}) and not the blank "
                f"{blank_id}; got {raw_labels[wrong].ravel()[:5].tolist()}. Mark padding with "
                "`label_paddings` or `target_lengths`."
            )
    bad_y = jnp.any(counted & ((y < 0) | (y >= k) | (y == blank_id)), axis=-1)
    bad = bad | bad_f | bad_l | bad_y

    dtype = _checks.compute_dtype(z)
    z = z.reshape(-1, t_max, k).astype(dtype)
    nb = z.shape[0]
    y = jnp.where(counted, y, blank_id).reshape(nb, n_max)
    frames = jnp.broadcast_to(frames, (*batch, t_max)).reshape(nb, t_max)
    lengths_flat = jnp.broadcast_to(lengths, batch).reshape(nb)

    # The blank-extended sequence l' (S = 2N + 1) and its transitions.
    s_max = 2 * n_max + 1
    ext = jnp.full((nb, s_max), blank_id, y.dtype).at[:, 1::2].set(y)  # l'

    prev2 = jnp.concatenate([jnp.full((nb, 2), -1, y.dtype), ext[:, :-2]], axis=1)
    states = jnp.arange(s_max)
    allowed = (states % 2 == 1) & (ext != prev2) & (states >= 2)
    skip = jnp.where(allowed, 0, -jnp.inf).astype(dtype)
    last = 2 * lengths_flat[:, None]
    final = (states == last) | (states == last - 1)

    value = _ctc_nll(z, y, frames.T, skip, final, int(blank_id))
    value = jnp.where(bad.reshape(nb), jnp.nan, value)
    if zero_infinity:
        value = jnp.where(value == jnp.inf, 0, value)
    value = nan_gradient(value, z, (1, 2)).reshape(batch)
    if reduction == "mean":
        denom = jnp.maximum(lengths, 1).astype(dtype)
        return _reduce.reduce_loss(value / denom, "mean")
    return _reduce.reduce_loss(value, reduction)
