"""Lovász losses (segmentation): the Lovász extension of the Jaccard loss, binary and multi-class.

Conventions shared by both losses.

The extension. For one class, the Jaccard loss of a set M of mispredicted pixels is
Δ(M) = |M| / |F ∪ M| (1 - IoU; F = the ground-truth pixels of the class). Δ is submodular, so
its Lovász extension is its tight convex closure: for pixel errors m ∈ ℝ^N sorted in
decreasing order (π),
  Δ̄(m) = Σ_k m_{π_k} g_k,   g_k = Δ({π_1..π_k}) - Δ({π_1..π_{k-1}}),
computed from the ground truth in sorted order f: with P = Σ f, I_k = P - Σ_{j<=k} f_j and
U_k = P + Σ_{j<=k} (1 - f_j), g_k = J_k - J_{k-1} with J_k = 1 - I_k/U_k (J_0 = 0)
(Berman, Rannen Triki & Blaschko, CVPR 2018, eqs. 8-9 and Alg. 1). Δ̄ is piecewise linear:
for a fixed order its gradient w.r.t. m_{π_k} is g_k (g_k >= 0, Σ g = J_N <= 1). At ties the
order is the pixels' (a stable sort); the value does not depend on it, the gradient is one of
the subgradients. With no ground-truth pixel, g = (1, 0, ..., 0): the loss is the largest error.

Layout. ``logits`` are ``[..., *spatial]`` (hinge) or ``[..., *spatial, C]`` (softmax, classes
last; move a channel-first axis with ``jnp.moveaxis(x, 1, -1)``); ``labels`` are
``[..., *spatial]``. The last ``num_spatial_dims`` axes (before the class axis) are the pixels of
one image, pooled into one set; leading axes are independent images, so the result is ``[...]``
and ``jax.vmap`` over them gives the batched call. Per image (``per_image=True`` in Berman's and
smp's code) is this, reduced with ``jaxloss.mean``; over the batch (smp's default
``per_image=False``) is the batch axis counted as one more pixel axis:
``num_spatial_dims=logits.ndim`` (hinge) or ``logits.ndim - 1`` (softmax) gives one value.

Ignored pixels (``labels == ignore_index``) are dropped from the set (no error, not in F, not in
the union), as Berman's and smp's code drop them before flattening; an image with every pixel
ignored gives 0 with a zero gradient. Concrete (eager) labels are checked; under ``jit`` an
invalid counted label gives NaN for its image. A NaN logit makes its image's value and gradient
NaN (ignored pixels included: a NaN is never dropped silently). float16/bfloat16 inputs are
computed in float32 and the result is float32; float64 stays float64.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._core import checks as _checks
from ._core import labels as _labels
from ._core.numerics import nan_gradient
from ._core.registry import register

__all__ = ["lovasz_hinge_loss", "lovasz_softmax_loss"]

_CLASSES = ("present", "all")


def _lovasz_extension(errors: jax.Array, truth: jax.Array, counted: jax.Array) -> jax.Array:
    """Σ_k m_(k) g_k over the last axis (errors sorted in decreasing order, the ignored last).

    ``truth`` is the ground truth (0/1, 0 where not counted), ``counted`` 0/1 in errors' dtype.
    An ignored error contributes m·0 (a NaN there stays NaN)."""
    key = jnp.where(counted > 0, -errors, jnp.inf)
    _, m, f, c = jax.lax.sort(
        (key, errors, truth, counted), dimension=errors.ndim - 1, is_stable=True, num_keys=1
    )
    positives = jnp.sum(f, axis=-1, keepdims=True)
    inter = positives - jnp.cumsum(f, axis=-1)
    union = positives + jnp.cumsum((1 - f) * c, axis=-1)
    # J_k = 1 - I_k/U_k = (U_k - I_k)/U_k; U_k = 0 only before the first counted pixel, where
    # I_k = 0 too (J = 0).
    jac = (union - inter) / jnp.where(union == 0, 1, union)
    g = jnp.diff(jac, axis=-1, prepend=jnp.zeros_like(jac[..., :1]))
    return jnp.sum(m * c * g, axis=-1)


def _check_nsd(fn: str, num_spatial_dims: Any, ndim: int, arg_desc: str) -> int:
    if isinstance(num_spatial_dims, bool) or not isinstance(num_spatial_dims, int):
        raise TypeError(
            f"jaxloss.{fn}: `num_spatial_dims` must be an int (the number of pixel axes pooled "
            f"into one set); got {num_spatial_dims!r}."
        )
    if not 0 <= num_spatial_dims <= ndim:
        raise ValueError(
            f"jaxloss.{fn}: `num_spatial_dims` must be in [0, {ndim}] for {arg_desc}; got "
            f"{num_spatial_dims}."
        )
    return num_spatial_dims


def _flatten(x: jax.Array, nsd: int, tail: int = 0) -> jax.Array:
    """[..., *spatial, *tail] with ``nsd`` spatial axes before ``tail`` trailing axes ->
    [..., N, *tail]."""
    lead, rest = x.shape[: x.ndim - nsd - tail], x.shape[x.ndim - tail :]
    return x.reshape((*lead, -1, *rest)) if nsd else x.reshape((*lead, 1, *rest))


@register(plot="binary", plot_defaults={"num_spatial_dims": 0})
def lovasz_hinge_loss(
    logits: ArrayLike, labels: ArrayLike, *, num_spatial_dims: int, ignore_index: int | None = None
) -> jax.Array:
    """Lovász hinge loss (binary segmentation), one value per image.

    Math (per image; s = logits, y = labels in {0, 1}, σ = 2y - 1, errors e = 1 - σ·s over the
    counted pixels, sorted in decreasing order; g from the ground truth y, see the module notes):
      l = Σ_k max(0, e_(k)) g_k,
    the Lovász extension of the Jaccard loss of the foreground evaluated at the hinge errors.
    One pixel: l = max(0, 1 - σ s), the hinge loss. No foreground: l = max(0, 1 + max_i s_i).

    Gradient: dl/ds_i = -σ_i g_{rank(i)} where e_i > 0, else 0 (the kink e = 0 inactive, as
    torch's relu); ignored pixels 0. Ties in e: the stable sort's order (a subgradient).

    Args:
      logits: floating array ``[..., *spatial]`` (one logit per pixel, foreground positive).
      labels: real array of the same shape, 0 or 1 (bool, int or float), or ``ignore_index``.
      num_spatial_dims: how many trailing axes are one image's pixels (the batch axis too for
        one loss over the batch).
      ignore_index: optional label value of pixels to leave out.

    Returns:
      ``logits.shape[:-num_spatial_dims]`` (a scalar when every axis is spatial). Per image,
      Berman's ``lovasz_hinge(logits, labels, per_image=True, ignore)`` is ``jaxloss.mean`` of it;
      smp's ``LovaszLoss("binary", per_image=False, ignore_index)`` is ``num_spatial_dims =
      logits.ndim``.

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> s = jnp.array([[2.0, -1.0, 0.5, -3.0]])           # one image of 4 pixels
      >>> y = jnp.array([[1, 0, 0, 0]])
      >>> round(float(jaxloss.lovasz_hinge_loss(s, y, num_spatial_dims=1)[0]), 4)
      0.75

    Reference: Berman, Rannen Triki & Blaschko, "The Lovász-Softmax loss", CVPR 2018
    (arXiv:1705.08790).
    """
    fn = "lovasz_hinge_loss"
    _labels.check_ignore_index(fn, ignore_index, allow_bool=False)
    s = _checks.check_floating(fn, "logits", logits)
    y = _checks.check_real(fn, "labels", labels)
    _checks.check_same_shape(fn, "logits", s, "labels", y)
    nsd = _check_nsd(fn, num_spatial_dims, s.ndim, f"{s.ndim}-d logits")
    _labels.require_label_values(fn, "labels", labels, (0, 1), ignore_index)
    dtype = _checks.compute_dtype(s)
    s = _flatten(s.astype(dtype), nsd)
    y = _flatten(y, nsd)
    counted = jnp.ones(y.shape, bool) if ignore_index is None else y != ignore_index
    yf = jnp.where(counted, y, 0).astype(dtype)  # a NaN label stays NaN (NaN != ignore_index)
    invalid = jnp.any(counted & (yf != 0) & (yf != 1) & ~jnp.isnan(yf), axis=-1)
    errors = jax.nn.relu(1 - (2 * yf - 1) * s)
    loss = _lovasz_extension(errors, yf, counted.astype(dtype))
    loss = nan_gradient(loss, s, -1)
    return jnp.where(invalid, jnp.nan, loss)


@register(plot="softmax", plot_defaults={"num_spatial_dims": 0})
def lovasz_softmax_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    num_spatial_dims: int,
    classes: str = "present",
    ignore_index: int | None = None,
) -> jax.Array:
    """Lovász-softmax loss (multi-class segmentation), one value per image.

    Math (per image; p = softmax(logits) over the class axis, for each class c the errors
    m_i(c) = |[y_i = c] - p_i(c)| over the counted pixels, sorted in decreasing order, g(c)
    from the ground truth [y = c]; see the module notes):
      l_c = Σ_k m_(k)(c) g_k(c),   l = mean of l_c over the classes,
    "present": the classes with at least one counted pixel in the image (0 if none), as Berman's
    and smp's default; "all": every class (an absent class then adds its largest probability).

    Gradient: dl/dp_i(c) = w_c g_{rank_c(i)}(c)·(1 - 2[y_i = c]) with w_c = 1/#classes averaged
    (0 for an absent class under "present"); dl/dz_i = p_i ⊙ (v_i - ⟨p_i, v_i⟩) with v_i that
    vector (the softmax Jacobian); ignored pixels 0. Ties: the stable sort's order.

    Args:
      logits: floating array ``[..., *spatial, C]``, classes last (softmax is applied here; for
        probabilities, as Berman's function takes, pass ``jnp.log(probabilities)``).
      labels: integer array ``[..., *spatial]``, values in [0, C) or ``ignore_index``.
      num_spatial_dims: how many axes before the class axis are one image's pixels (the batch
        axis too for one loss over the batch).
      classes: "present" (default) or "all".
      ignore_index: optional label value of pixels to leave out.

    Returns:
      ``logits.shape[:-1 - num_spatial_dims]``. smp's ``LovaszLoss("multiclass",
      per_image=False, ignore_index)`` on channel-first logits is this with the class axis moved
      last and ``num_spatial_dims = logits.ndim - 1``; ``per_image=True`` is ``jaxloss.mean`` of
      the per-image values; Berman's ``lovasz_softmax(probas, labels, classes, per_image,
      ignore)`` likewise with ``classes`` "present" or "all".

    Examples:
      >>> import jax.numpy as jnp, jaxloss
      >>> z = jnp.log(jnp.array([[[0.7, 0.3], [0.4, 0.6], [0.8, 0.2]]]))  # 3 pixels, 2 classes
      >>> y = jnp.array([[0, 1, 1]])
      >>> round(float(jaxloss.lovasz_softmax_loss(z, y, num_spatial_dims=1)[0]), 4)
      0.5833

    Reference: Berman, Rannen Triki & Blaschko, "The Lovász-Softmax loss", CVPR 2018
    (arXiv:1705.08790).
    """
    fn = "lovasz_softmax_loss"
    _labels.check_ignore_index(fn, ignore_index, allow_bool=False)
    if classes not in _CLASSES:
        raise ValueError(f"jaxloss.{fn}: `classes` must be 'present' or 'all'; got {classes!r}.")
    z = _checks.check_floating(fn, "logits", logits)
    if z.ndim == 0:
        raise ValueError(f"jaxloss.{fn}: `logits` must have a class axis (last); got a 0-d array.")
    y = _checks.check_integer(fn, "labels", labels)
    if y.shape != z.shape[:-1]:
        raise ValueError(
            f"jaxloss.{fn}: `labels` must have the logits' shape without the class axis (last), "
            f"{tuple(z.shape[:-1])}; got labels.shape={tuple(y.shape)}."
        )
    nsd = _check_nsd(fn, num_spatial_dims, z.ndim - 1, f"{z.ndim}-d logits (classes last)")
    num_classes = z.shape[-1]
    _labels.require_labels_in_range(fn, labels, num_classes, ignore_index)
    dtype = _checks.compute_dtype(z)
    zf = _flatten(z.astype(dtype), nsd, tail=1)  # [..., N, C]
    y = _flatten(y, nsd)  # [..., N]
    counted = jnp.ones(y.shape, bool) if ignore_index is None else y != ignore_index
    invalid = jnp.any(counted & ((y < 0) | (y >= num_classes)), axis=-1)
    p = jnp.swapaxes(jax.nn.softmax(zf, axis=-1), -1, -2)  # [..., C, N]
    is_class = jax.lax.broadcasted_iota(y.dtype, p.shape, p.ndim - 2) == y[..., None, :]
    truth = (is_class & counted[..., None, :]).astype(dtype)
    errors = jnp.where(truth > 0, 1 - p, p)
    per_class = _lovasz_extension(
        errors, truth, jnp.broadcast_to(counted[..., None, :], p.shape).astype(dtype)
    )  # [..., C]
    if classes == "present":
        weight = (jnp.sum(truth, axis=-1) > 0).astype(dtype)
    else:
        weight = jnp.ones(per_class.shape, dtype)
    # Σ w l / max(Σ w, 1): no present class gives 0 with a zero gradient; a NaN l_c of an
    # absent class still reaches the sum (0·NaN).
    loss = jnp.sum(weight * per_class, axis=-1) / jnp.maximum(jnp.sum(weight, axis=-1), 1)
    loss = nan_gradient(loss, zf, (-2, -1))
    return jnp.where(invalid, jnp.nan, loss)
