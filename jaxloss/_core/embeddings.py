"""Embeddings: exact norms and distances, the normalisation of cosine similarities, and the
checks on embedding arrays, shared by the margin (pairs and triplets) and contrastive (sets)
families.

Conventions. The feature axis is the last axis and is reduced. Distances are exact p-norms of the
difference: the float64 value rounded, for every finite input, inf only where the distance itself
is beyond range (the L2 norm takes one pass, sqrt(Σx²), when no row's sum over- or underflows;
otherwise the rows are scaled by a power of two, which is exact and never flushes to zero as
``x * (1/max|x|)`` does), with gradient 0 at coincident points (a valid subgradient; the gradient
of a p-norm is bounded by 1 in the dual norm, so no ``eps`` is needed). Normalisation divides by
``max(‖x‖₂, eps)`` like ``torch.nn.functional.normalize``: a zero vector normalises to 0 with the
finite Jacobian ``I / eps``. :func:`nan_grad` carries a NaN value's NaN to its whole example's
gradient.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from . import checks as _checks
from .ad import is_zero

__all__ = [
    "check_embeddings",
    "check_per_row",
    "distance",
    "l2_parts",
    "nan_grad",
    "normalize",
    "on_common_scale",
    "pnorm_parts",
    "pow2_scale",
    "row_scale",
    "scale_rows",
    "unit_direction",
]


@jax.custom_jvp
def nan_grad(x: jax.Array) -> jax.Array:
    """``x`` itself; its tangent is NaN wherever ``x`` is NaN. Applied to per-example values, a
    NaN value takes its whole example's gradient with it, also through the selects and
    compares that would route a zero cotangent to some of its inputs."""
    return x


@nan_grad.defjvp
def _nan_grad_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return x, dx * jnp.where(x == x, 1, jnp.nan).astype(x.dtype)


def pow2_scale(m: jax.Array) -> jax.Array:
    """A power of two s, itself a normal number, with m·s in [1, 2) for finite m > 0 (in [2, 4)
    in the top binade, where 1/m's power of two is subnormal); 2^(1 - bias) for m = inf or NaN
    and 2^(bias - 1) for m = 0 or subnormal (bias = 127 in float32).

    Multiplying by s is exact and never flushes a normal number to zero, unlike ``x / m``,
    which XLA:CPU rewrites to ``x * (1/m)``: 1/m is subnormal, so 0, for m above ~8.5e37 in
    float32. s is read off m's exponent bits (m >= 0). No gradient.
    """
    fi = jnp.finfo(m.dtype)
    itype = jnp.int32 if fi.bits == 32 else jnp.int64
    bias = fi.maxexp - 1  # 127 (float32), 1023 (float64)
    e = (jax.lax.bitcast_convert_type(m, itype) >> fi.nmant) & (2 * bias + 1)  # biased exponent
    b = jnp.clip(2 * bias - e, 1, 2 * bias - 1)  # biased exponent of 2^-(e - bias), kept normal
    return jax.lax.stop_gradient(jax.lax.bitcast_convert_type(b << fi.nmant, m.dtype))


def row_scale(a: jax.Array, b: jax.Array | None) -> jax.Array:
    """s = :func:`pow2_scale` of max|x| over the last axis, x = a - b (or a): s = 2^(1 - bias)
    for a row where a - b overflowed."""
    x = a if b is None else a - b
    return pow2_scale(jnp.max(jnp.abs(x), axis=-1))


def scale_rows(a: jax.Array, b: jax.Array | None, s: jax.Array) -> jax.Array:
    """x·s for x = a - b (or a), elementwise given the row scale s: exact, computed as
    (a/2 - b/2)·2s so that it is finite (at most 4 in magnitude with s from
    :func:`row_scale`) also where a - b overflows. (Select-free: a select feeding the row
    sum costs XLA:CPU a full-size temporary. Halving flushes only entries below 2^(2 - bias),
    ~2e-38 in float32, to zero.)"""
    s = s[..., None]
    if b is None:
        return a * s
    return (a * 0.5 - b * 0.5) * (2 * s)


def l2_parts(a: jax.Array, b: jax.Array | None = None):
    """(‖x‖₂, s, ‖x·s‖₂) over the last axis for x = a - b (or a), with s a power of two per row
    (no gradient); x·s is :func:`scale_rows`.

    One pass when it can: s = 1 and the plain sqrt(Σx²) when no row's sum overflowed or is
    below D·tiny/eps (so no term that matters underflowed; a zero row also takes the other
    branch). A NaN row counts as safe: its norm is NaN either way. Otherwise the scaled form:
    s from :func:`row_scale`, ‖x·s‖ is in [1, 8√D], and ‖x‖ = ‖x·s‖/s is exact, inf only
    where the norm is beyond range (also where a - b itself overflows).
    """
    x = a if b is None else a - b
    fi = jnp.finfo(x.dtype)
    ss = jnp.sum(x * x, axis=-1)
    risky = (ss == jnp.inf) | (ss < fi.tiny / fi.eps * x.shape[-1])  # False for NaN

    def plain():
        n = jnp.sqrt(ss)
        return n, jnp.ones_like(n), n

    def scaled():
        s = row_scale(a, b)
        xs = scale_rows(a, b, s)
        n_s = jnp.sqrt(jnp.sum(xs * xs, axis=-1))
        return n_s / s, s, n_s

    return jax.lax.cond(jnp.any(risky), scaled, plain)


def unit_direction(a: jax.Array, b: jax.Array | None, s: jax.Array, n_s: jax.Array):
    """x/‖x‖ as (x·s)/‖x·s‖: finite even where ‖x‖ overflows; 0 at x = 0; NaN rows stay NaN."""
    inv = 1 / jnp.where(n_s == 0, 1, n_s)
    return scale_rows(a, b, s) * inv[..., None]


def pnorm_parts(a: jax.Array, b: jax.Array, p: jax.Array):
    """(‖x·s‖_p, s, m, S) per row for x = a - b: with x·s from :func:`row_scale` and
    :func:`scale_rows`, m = max|x·s| in [1, 8], r = |x·s|/m in [0, 1] (the divisor's
    reciprocal is normal), S = Σr^p in [1, D] (1 for a zero row), ‖x·s‖_p = m·S^(1/p)."""
    s = row_scale(a, b)
    xs = scale_rows(a, b, s)
    m = jnp.max(jnp.abs(xs), axis=-1)
    zero = m == 0  # a NaN row is not a zero row: it stays NaN
    m_safe = jnp.where(zero, 1, m)
    big_s = jnp.where(zero, 1, jnp.sum((jnp.abs(xs) / m_safe[..., None]) ** p, axis=-1))
    n_s = jnp.where(zero, 0, m * big_s ** (1 / p))
    return n_s, s, m_safe, big_s


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def distance(
    a: jax.Array, b: jax.Array, p: jax.Array, euclidean: bool
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(‖x·s‖_p, s, 0) for x = a - b over the last axis, with s a power of two per row (no
    gradient), so that the distance d = ‖x‖_p = ‖x·s‖_p / s is exact for every finite input
    (inf only beyond range, also where a - b itself overflows) and NaN for a row with a NaN.
    The third output is 0 with the tangent of d (add it to a value computed from the first
    two under stop_gradient: the gradient then never goes through 1/s).
    ``euclidean`` (p = 2, static) takes one pass when it can (:func:`l2_parts`; then s = 1).
    """
    if euclidean:
        _, s, n_s = l2_parts(a, b)
    else:
        n_s, s = pnorm_parts(a, b, p)[:2]
    return n_s, s, jnp.zeros_like(n_s)


def _distance_jvp(euclidean, primals, tangents):
    """dd = Σ g·(da - db) with g = sign(x)·r^(p-1)/S^((p-1)/p) the gradient of ‖x‖_p
    (bounded by 1 in the dual norm; 0 at x = 0; x/‖x‖ for p = 2) + d·(Σ r^p ln r/(p·S)
    - ln S/p²)·dp; d‖x·s‖_p = s·dd; s has no tangent. g is recomputed from the inputs and
    per-row values, so that no [..., D] array is kept from the forward pass."""
    a, b, p = primals
    da, db, dp = tangents
    if euclidean:
        _, s, n_s = l2_parts(a, b)
    else:
        n_s, s, m_safe, big_s = pnorm_parts(a, b, p)
    out = jnp.zeros_like(n_s)  # the tangent of d; that of ‖x·s‖_p is s times it
    if not is_zero(da) or not is_zero(db):
        dx = (jnp.zeros_like(a) if is_zero(da) else da) - (0 if is_zero(db) else db)
        if euclidean:
            g = unit_direction(a, b, s, n_s)
        else:
            xs = scale_rows(a, b, s)
            r = jnp.abs(xs) / m_safe[..., None]
            # The sign from the unscaled difference: x·s flushes entries that are negligible
            # in the norm, but for p = 1 their gradient is still ±1.
            g = jnp.sign(a * 0.5 - b * 0.5) * r ** (p - 1) / (big_s ** ((p - 1) / p))[..., None]
        out = out + jnp.sum(g * dx, axis=-1)
    if not is_zero(dp) and not euclidean:
        r = jnp.abs(scale_rows(a, b, s)) / m_safe[..., None]
        rlogr = jnp.sum(jnp.where(r == 0, 0, r**p * jnp.log(jnp.where(r == 0, 1, r))), axis=-1)
        out = out + n_s * (rlogr / (p * big_s) - jnp.log(big_s) / (p * p)) / s * dp
    # The third output is 0 with tangent ``out``; written as (n_s - sg(n_s))/s (n_s = s·d is
    # finite) so that differentiating this rule again (second order) also sees d's derivative.
    zero = (n_s - jax.lax.stop_gradient(n_s)) / s
    return (n_s, s, zero), (s * out, jnp.zeros_like(s), out)


distance.defjvp(_distance_jvp, symbolic_zeros=True)


@jax.custom_jvp
def normalize(x: jax.Array, eps: jax.Array) -> jax.Array:
    """u = x / max(‖x‖₂, eps) over the last axis, computed as (x·s)/max(‖x·s‖, eps·s) (finite
    for every finite x); 0 at x = 0 with the finite Jacobian I/eps; NaN rows stay NaN."""
    return _normalize_parts(x, eps)[0]


def _normalize_parts(x, eps):
    n, s, n_s = l2_parts(x)
    floor = n <= eps  # False for NaN
    den_s = jnp.where(floor, eps * s, n_s)
    return scale_rows(x, None, s) / den_s[..., None], floor, s, den_s


def _normalize_jvp(primals, tangents):
    """du = (dx - [‖x‖ > eps]·u(u·dx))/max(‖x‖, eps) - [‖x‖ <= eps]·u·deps/eps."""
    x, eps = primals
    dx, deps = tangents
    u, floor, s, den_s = _normalize_parts(x, eps)
    out = jnp.zeros_like(u)
    if not is_zero(dx):
        proj = jnp.where(floor, 0, jnp.sum(u * dx, axis=-1))
        out = out + (dx - proj[..., None] * u) * (s / den_s)[..., None]
    if not is_zero(deps):
        out = out - jnp.where(floor, deps / eps, 0)[..., None] * u
    return u, out


normalize.defjvp(_normalize_jvp, symbolic_zeros=True)


def on_common_scale(
    n1: jax.Array, s1: jax.Array, n2: jax.Array, s2: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(n1·s/s1, n2·s/s2, s) with s = min(s1, s2): two scaled norms on one scale (exact; the
    smaller one may flush to 0 where the two differ by more than float's range)."""
    s = jnp.minimum(s1, s2)
    return n1 * (s / s1), n2 * (s / s2), s


def check_embeddings(fn: str, arg: str, x: Any, min_ndim: int) -> jax.Array:
    """``x`` as a floating array of at least ``min_ndim`` dims (feature axis last)."""
    x = _checks.check_floating(fn, arg, x)
    if x.ndim < min_ndim:
        what = "[..., D] (feature axis last)" if min_ndim == 1 else "[..., M, D] (a set of M)"
        raise ValueError(
            f"jaxloss.{fn}: `{arg}` must have at least {min_ndim} dimension(s), {what}; got "
            f"{arg}.shape={tuple(x.shape)}."
        )
    return x


def check_per_row(fn: str, arg: str, t: jax.Array, emb_name: str, emb: jax.Array) -> None:
    """ValueError unless ``t`` has the shape of ``emb`` without its feature axis."""
    if tuple(t.shape) != tuple(emb.shape[:-1]):
        raise ValueError(
            f"jaxloss.{fn}: `{arg}` must have the shape of `{emb_name}` without its last "
            f"(feature) axis, {tuple(emb.shape[:-1])}; got {arg}.shape={tuple(t.shape)}."
        )
