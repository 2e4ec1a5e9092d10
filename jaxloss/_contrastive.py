"""Contrastive losses over sets of embeddings: InfoNCE / NT-Xent, supervised contrastive (SupCon)
and SigLIP.

Conventions shared by every loss here.

Sets. An array ``[..., M, D]`` is a set of M embeddings of dimension D; every member of a set is
compared with every other member of *the same set*, and the loss returns one value per anchor,
shape ``[..., M]``. Leading axes are independent sets (``jax.vmap`` over them gives per-set
results). :func:`info_nce_loss` also takes two views ``[..., N, D]`` directly (``positives=``),
which is the stacked set of 2N with the (i, i + N) pairing.

NaN. A set is one example: a NaN in one member's embedding makes every value of its set NaN,
value and gradient, and leaves the other sets bit-for-bit unchanged.

Similarities. Embeddings are normalised by ``max(‖x‖₂, eps)`` like
``torch.nn.functional.normalize`` (a zero vector normalises to 0 with the finite Jacobian
``I / eps``; ``_core.embeddings``). Similarity matrices are matmuls at JAX's default precision (on
TPU/GPU, wrap the call in ``jax.default_matmul_precision("highest")`` for full float32).

float16/bfloat16 inputs are computed in float32 and the result is float32; float64 stays float64.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ._core import checks as _checks
from ._core.dispatch import replayable
from ._core.embeddings import check_embeddings, check_per_row, nan_grad, normalize
from ._core.numerics import logsumexp, softplus
from ._core.registry import register

__all__ = ["info_nce_loss", "siglip_loss", "supervised_contrastive_loss"]


def _set_similarities(
    fn: str,
    embeddings: ArrayLike,
    labels: ArrayLike,
    temperature: ArrayLike,
    eps: ArrayLike,
    one_positive: bool = False,
):
    _checks.require(fn, "temperature", temperature, _checks.POSITIVE)
    _checks.require(fn, "eps", eps, _checks.POSITIVE)
    e = check_embeddings(fn, "embeddings", embeddings, 2)
    y = _checks.check_integer(fn, "labels", labels)
    check_per_row(fn, "labels", y, "embeddings", e)
    checked = one_positive and _check_one_positive(fn, y)  # before any computation
    dtype = _checks.compute_dtype(e)
    u = normalize(e.astype(dtype), jnp.asarray(eps, dtype))
    logits = jnp.einsum("...id,...jd->...ij", u, u) / jnp.asarray(temperature, dtype)
    m = e.shape[-2]
    eye = jax.lax.broadcasted_iota(jnp.int32, (m, m), 0) == jax.lax.broadcasted_iota(
        jnp.int32, (m, m), 1
    )
    positive = (y[..., :, None] == y[..., None, :]) & ~eye
    lse, _ = logsumexp(logits, axis=-1, where=~eye)
    num_positive = jnp.sum(positive, axis=-1)
    positive_logits = jnp.sum(jnp.where(positive, logits, 0), axis=-1)
    return checked, lse, positive_logits, num_positive


@replayable
def _require_one_positive(fn: str, y: Any) -> None:
    """ValueError when concrete labels do not give every anchor exactly one positive; traced
    labels pass (the caller marks bad anchors with NaN). Replayed on an eager call's labels."""
    concrete = _checks.concrete_array(y)
    if concrete is None:
        return
    counts = (concrete[..., :, None] == concrete[..., None, :]).sum(-1) - 1
    if (counts != 1).any():
        raise ValueError(
            f"jaxloss.{fn}: `labels` must give every anchor exactly one positive (each label "
            f"exactly twice per set); got anchors with {sorted(set(counts.ravel().tolist()))} "
            "positives. For several positives per anchor use "
            "jaxloss.supervised_contrastive_loss."
        )


def _check_one_positive(fn: str, y: jax.Array) -> bool:
    """True when concrete labels give every anchor exactly one positive (ValueError if not);
    False when the labels are traced (the caller marks bad anchors with NaN)."""
    _require_one_positive(fn, y)
    return not isinstance(y, jax.core.Tracer)


def _two_views(
    view_1: ArrayLike, labels: ArrayLike | None, view_2: ArrayLike
) -> tuple[jax.Array, np.ndarray]:
    """The set [view_1; view_2] of 2N and its labels tile(arange(N), 2) (concrete, so that the
    one-positive check passes at trace time)."""
    fn = "info_nce_loss"
    if labels is not None:
        raise ValueError(
            f"jaxloss.{fn}: pass either `labels` (one set of embeddings) or `positives` (a second "
            "view), not both: with two views the pairing is row i with row i."
        )
    a = check_embeddings(fn, "embeddings", view_1, 2)
    b = _checks.check_floating(fn, "positives", view_2)
    _checks.check_same_shape(fn, "embeddings", a, "positives", b)
    n = a.shape[-2]
    dtype = _checks.compute_dtype(a, b)
    stacked = jnp.concatenate([a.astype(dtype), b.astype(dtype)], axis=-2)
    pairs = np.broadcast_to(np.tile(np.arange(n), 2), (*a.shape[:-2], 2 * n))
    return stacked, pairs


@register(plot="nce")
def info_nce_loss(
    embeddings: ArrayLike,
    labels: ArrayLike | None = None,
    *,
    positives: ArrayLike | None = None,
    temperature: ArrayLike = 0.07,
    eps: ArrayLike = 1e-8,
) -> jax.Array:
    """InfoNCE / NT-Xent (SimCLR) over a set of embeddings, one value per anchor.

    Each embedding is an anchor; its positive is the one other member of the set with the same
    label; every other member is a negative. Two calling forms, never mixed:

    * ``info_nce_loss(embeddings, labels)``: a set of M embeddings and the labels that pair them;
    * ``info_nce_loss(view_1, positives=view_2)``: SimCLR's two views of N examples, row i of one
      the positive of row i of the other. This is the set ``[view_1; view_2]`` of 2N with the labels
      ``jnp.tile(jnp.arange(N), 2)`` (the (i, i + N) pairing); values come in that order, the
      anchors of ``view_1`` first.

    Math (u_i = e_i / max(‖e_i‖₂, eps), s_ik = u_i·u_k / τ, j(i) = the positive of i):
      l_i = -log[ exp(s_{i,j(i)}) / sum_{k≠i} exp(s_ik) ] = logsumexp_{k≠i} s_ik - s_{i,j(i)}.

    Gradient: with P_ik = softmax_{k≠i}(s_i·)_k (P_ii = 0) and G_ik = P_ik - [k = j(i)],
    for a cotangent w on l: dL/ds_ik = w_i·G_ik, dL/du = (A + Aᵀ)·U/τ with A_ik = w_i·G_ik, then
    dL/de = (g - [‖e‖ > eps]·(u·g)·u) / max(‖e‖, eps) for each row g of dL/du.
    dl_i/dτ = -(1/τ)·sum_k G_ik·s_ik.

    Every anchor must have exactly one positive (each label exactly twice per set): concrete
    labels are checked (ValueError); under ``jit``/``vmap`` an anchor with zero or several
    positives gives NaN. For several positives use :func:`supervised_contrastive_loss`.

    Args:
      embeddings: floating array [..., M, D]: sets of M embeddings (e.g. M = 2N views) of
        dimension D; leading axes are independent sets.
      labels: integer array [..., M], identities that define the positive pairs; None (the
        default) with ``positives``.
      positives: optional floating array of the shape of ``embeddings`` [..., N, D], the second
        view (then ``labels`` must be None); ``embeddings`` is the first view.
      temperature: τ > 0 (may be traced/learned).
      eps: floor of the norms in the normalisation, > 0.

    Returns:
      Array [..., M] (M = 2N with ``positives``), one value per anchor; ``jaxloss.mean`` of it
      is SimCLR's loss. optax's ``ntxent(embeddings, labels, temperature)`` returns that mean
      as a scalar (its denominator leaves out the other positives, which is the same thing
      with one positive).

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> z1 = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> z = jnp.concatenate([z1, 3.0 * z1])  # [z1; z2], N = 2: the (i, i + N) pairing
      >>> v = jaxloss.info_nce_loss(z, jnp.tile(jnp.arange(2), 2), temperature=0.5)
      >>> [round(x, 4) for x in v.tolist()]  # log(e² + 2) - 2
      [0.2395, 0.2395, 0.2395, 0.2395]
      >>> w = jaxloss.info_nce_loss(z1, positives=3.0 * z1, temperature=0.5)  # the same two views
      >>> bool(jnp.allclose(v, w))
      True

    References: van den Oord, Li & Vinyals, "Representation Learning with Contrastive
    Predictive Coding", 2018; Chen, Kornblith, Norouzi & Hinton, "A Simple Framework for
    Contrastive Learning of Visual Representations" (SimCLR), ICML 2020.
    """
    if positives is not None:
        embeddings, labels = _two_views(embeddings, labels, positives)
    elif labels is None:
        raise TypeError(
            "jaxloss.info_nce_loss: pass `labels` (a set of embeddings and the identities that "
            "pair them) or `positives` (the second view, row i pairing with row i of `embeddings`)."
        )
    checked, lse, positive_logits, num_positive = _set_similarities(
        "info_nce_loss", embeddings, labels, temperature, eps, one_positive=True
    )
    loss = lse - positive_logits
    # A NaN in one member makes every logsumexp of its set NaN: every value of the set, and
    # (nan_grad) the set's whole gradient.
    return nan_grad(loss if checked else jnp.where(num_positive == 1, loss, jnp.nan))


@register(plot="nce")
def supervised_contrastive_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    temperature: ArrayLike = 0.07,
    eps: ArrayLike = 1e-8,
) -> jax.Array:
    """Supervised contrastive loss (SupCon, L_out), one value per anchor.

    Every member of a set with the same label as the anchor is a positive; all other members
    (other positives included) form the denominator.

    Math (u_i = e_i / max(‖e_i‖₂, eps), s_ik = u_i·u_k / τ, P(i) = {p ≠ i : y_p = y_i}):
      l_i = -(1/|P(i)|) sum_{p∈P(i)} log[ exp(s_ip) / sum_{k≠i} exp(s_ik) ]
          = logsumexp_{k≠i} s_ik - mean_{p∈P(i)} s_ip;
      l_i = 0 (with a zero gradient) for an anchor with no positive.

    Gradient: as :func:`info_nce_loss` with G_ik = P_ik - [k ∈ P(i)]/|P(i)| (0 for anchors without a
    positive). dl_i/dτ = -(1/τ)·sum_k G_ik·s_ik.

    With exactly one positive per anchor this *is* :func:`info_nce_loss` (identical values and
    gradients).

    Anchors without a positive give 0 and should usually not count in the mean:
    ``counted = (labels[..., :, None] == labels[..., None, :]).sum(-1) > 1`` and
    ``jaxloss.mean(values, where=counted)``.

    Args:
      embeddings: floating array [..., M, D]: sets of M embeddings of dimension D.
      labels: integer array [..., M], class labels.
      temperature: τ > 0 (may be traced/learned).
      eps: floor of the norms in the normalisation, > 0.

    Returns:
      Array [..., M], one value per anchor. The reference implementation (SupContrast) also
      multiplies by τ / base_temperature (1 with its defaults); multiply the values for that.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> z = jnp.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
      >>> v = jaxloss.supervised_contrastive_loss(z, jnp.array([0, 0, 0, 1]), temperature=1.0)
      >>> [round(x, 4) for x in v.tolist()]
      [0.862, 0.862, 0.862, 0.0]

    Reference: Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020 (eq. 2, L_out).
    """
    _, lse, positive_logits, num_positive = _set_similarities(
        "supervised_contrastive_loss", embeddings, labels, temperature, eps
    )
    has_positive = num_positive > 0
    dtype = lse.dtype
    mean_positive = positive_logits / jnp.maximum(num_positive, 1).astype(dtype)
    # An anchor without a positive gives 0, or NaN where its set holds a NaN (every logsumexp
    # of the set is then NaN): a NaN member makes every value of its set NaN.
    no_positive = jnp.where(lse == lse, 0, lse)
    return nan_grad(jnp.where(has_positive, lse - mean_positive, no_positive))


@register(plot="siglip_loss")
def siglip_loss(
    image_embeddings: ArrayLike,
    text_embeddings: ArrayLike,
    *,
    logit_scale: Any = 10.0,
    logit_bias: Any = -10.0,
    eps: ArrayLike = 1e-8,
) -> jax.Array:
    """SigLIP sigmoid pairwise loss, one value per image (the sum over its N pairs).

    Image i and text i form a positive pair; image i with every text j ≠ i is a negative pair.

    Math (x̂_i, ŷ_j = embeddings / max(‖·‖₂, eps), t = logit_scale, b = logit_bias,
    z_ij = +1 if i = j else -1, s_ij = t·x̂_i·ŷ_j + b):
      l_i = sum_j -log σ(z_ij·s_ij) = sum_j softplus(-z_ij·s_ij),
    so that ``jaxloss.mean(l)`` over the N images is the paper's loss
    -(1/N) sum_i sum_j log σ(z_ij (t x̂_i·ŷ_j + b)).

    Gradient: with g_ij = -z_ij·σ(-z_ij·s_ij) (= σ(s_ij) - [i = j]) and a cotangent w on l:
    dL/dx̂_i = t·w_i sum_j g_ij ŷ_j, dL/dŷ_j = t·sum_i w_i g_ij x̂_i, then through the
    normalisation as in :func:`info_nce_loss`. dl_i/dt = sum_j g_ij x̂_i·ŷ_j, dl_i/db = sum_j g_ij.

    Args:
      image_embeddings: floating array [..., N, D]; leading axes are independent sets
        (negatives are taken within a set only, so they are not chunks of one batch).
      text_embeddings: floating array of the same shape; row i pairs with image row i.
      logit_scale: t > 0, may be traced. The paper learns t = exp(t') with t' = log 10 at
        initialisation: pass ``jnp.exp(log_scale)``.
      logit_bias: b, may be traced (paper initialisation -10).
      eps: floor of the norms in the normalisation, > 0.

    Returns:
      Array [..., N], per image. The per-text values are ``siglip_loss(text, image, ...)``; both
      sum to the same total. open_clip's ``SigLipLoss`` returns the paper's scalar.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> x = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> v = jaxloss.siglip_loss(x, x, logit_scale=10.0, logit_bias=-5.0)
      >>> [round(u, 4) for u in v.tolist()]
      [0.0134, 0.0134]

    Reference: Zhai, Mustafa, Kolesnikov & Beyer, "Sigmoid Loss for Language Image
    Pre-Training", ICCV 2023.
    """
    fn = "siglip_loss"
    _checks.require(fn, "logit_scale", logit_scale, _checks.POSITIVE)
    _checks.require_finite(fn, "logit_bias", logit_bias)
    _checks.require(fn, "eps", eps, _checks.POSITIVE)
    x = check_embeddings(fn, "image_embeddings", image_embeddings, 2)
    t = _checks.check_floating(fn, "text_embeddings", text_embeddings)
    _checks.check_same_shape(fn, "image_embeddings", x, "text_embeddings", t)
    dtype = _checks.compute_dtype(x, t)
    e = jnp.asarray(eps, dtype)
    u, v = normalize(x.astype(dtype), e), normalize(t.astype(dtype), e)
    s = jnp.asarray(logit_scale, dtype) * jnp.einsum("...id,...jd->...ij", u, v)
    s = s + jnp.asarray(logit_bias, dtype)
    n = x.shape[-2]
    eye = jax.lax.broadcasted_iota(jnp.int32, (n, n), 0) == jax.lax.broadcasted_iota(
        jnp.int32, (n, n), 1
    )
    loss = jnp.sum(softplus(jnp.where(eye, -s, s)), axis=-1)
    # A NaN text embedding reaches every image's value; a NaN image embedding only its own row:
    # carry it to the whole set (a set is one example), leaving clean sets bit-for-bit alone.
    total = jnp.sum(loss, axis=-1, keepdims=True)
    return nan_grad(loss + jnp.where(total == total, 0, total))
