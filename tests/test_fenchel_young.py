"""Sparsemax, entmax and the Fenchel–Young losses beyond the conformance cases: optax parity on
shared inputs, the mappings (simplex, exact zeros, Jacobian), the ``fenchel_young_loss``
constructor (value from its definition, gradient ŷ - y), ties, extremes and errors.

References: NumPy float64 (tests/cases/fenchel_young.py: brentq thresholds), and optax called
directly for every parity claim made in the docstrings.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

import jaxloss
from tests.cases.fenchel_young import entmax_ref, sparse_plus, tsallis

RNG = np.random.default_rng(20260)
Z = RNG.normal(scale=2.0, size=(7, 6))
Y = RNG.integers(0, 6, size=7)
TIED = np.array([[1.0, 1.0, 0.2, -1.0, 1.0, 0.0], [0.0] * 6, [3.0, 3.0, -2.0, -2.0, 0.5, 3.0]])
TIED_Y = np.array([2, 4, 0])


def _close(a, b, tol=1e-12):
    np.testing.assert_allclose(
        np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=tol, atol=tol
    )


# ---------------------------------------------------------------------------------------------
# optax parity


@jax.jit
def _sparsemax_pair(z, y):
    def ours(z):
        return jaxloss.multiclass_sparsemax_loss(z, y)

    def theirs(z):
        return optax.losses.multiclass_sparsemax_loss(z, y)

    return (
        ours(z),
        theirs(z),
        jax.grad(lambda z: ours(z).sum())(z),
        jax.grad(lambda z: theirs(z).sum())(z),
    )


def test_multiclass_sparsemax_loss_equals_optax_and_the_formula():
    for z, y in ((Z, Y), (TIED, TIED_Y), (100 * Z, Y)):
        ours, theirs, g, g_optax = _sparsemax_pair(z, y)
        _close(ours, theirs, 1e-10)
        p = entmax_ref(z, 2.0)
        zy = z[np.arange(len(y)), y][:, None]
        _close(ours, np.sum(p * (z - zy), -1) + 0.5 * (1 - np.sum(p * p, -1)), 1e-10)
        _close(g, g_optax, 1e-10)
        _close(g, p - np.eye(z.shape[1])[y], 1e-10)


def test_sparsemax_mapping_equals_optax_projection_simplex():
    for z in (Z, TIED, 1e3 * Z):
        _close(jaxloss.sparsemax(z), jax.vmap(optax.projections.projection_simplex)(z), 1e-10)
        _close(jaxloss.sparsemax(z), entmax_ref(z, 2.0), 1e-10)


def _sparsemax_sorted(z):
    """Martins & Astudillo's Algorithm 1 (sort, cumulative sums), NumPy float64, per row."""
    z = np.asarray(z, np.float64)
    zs = -np.sort(-z, axis=-1)
    k = np.arange(1, z.shape[-1] + 1)
    cum = np.cumsum(zs, axis=-1)
    support = np.sum(1 + k * zs > cum, axis=-1, keepdims=True)
    tau = (np.take_along_axis(cum, support - 1, -1) - 1) / support
    return np.maximum(z - tau, 0)


def test_sparsemax_support_search_on_hard_rows():
    """The sort-free support search (Michelot's algorithm) against the sorted algorithm on rows
    that take it many passes (each pass drops few entries: geometric and arithmetic rows), ties
    at the threshold, -inf entries, and a wide batch; one row never changes another."""
    n = 1000
    rows = [
        -(2.0 ** -np.arange(n)),  # geometric
        -1e-3 * np.arange(n),  # arithmetic
        np.r_[np.ones(500), np.zeros(500)],  # ties
        1.0 / (1 + np.arange(n)),
        np.r_[0.0, -np.inf, np.full(n - 2, -0.5)],
        RNG.normal(scale=0.05, size=n),
    ]
    z = np.array(rows)
    want = _sparsemax_sorted(np.where(np.isinf(z), -1e300, z))
    _close(jax.jit(jaxloss.sparsemax)(z), want, 1e-12)
    wide = RNG.normal(scale=0.3, size=(64, n))
    got = np.asarray(jax.jit(jaxloss.sparsemax)(np.concatenate([wide, z])))
    _close(got[:64], _sparsemax_sorted(wide), 1e-12)
    _close(got[64:], want, 1e-12)


def test_binary_sparsemax_loss_equals_optax_and_the_multiclass_loss():
    s = np.linspace(-3.3, 3.1, 41)
    for t in (np.ones_like(s), np.zeros_like(s)):
        ours = jaxloss.sparsemax_loss(s, t)
        _close(ours, optax.losses.sparsemax_loss(s, t.astype(int)))
        _close(ours, np.where(t == 1, sparse_plus(-s), sparse_plus(s)))
        # = the multi-class sparsemax loss on the logits [s/2, -s/2]
        theta = np.stack([s / 2, -s / 2], -1)
        _close(ours, jaxloss.multiclass_sparsemax_loss(theta, (1 - t).astype(int)), 1e-10)
        g = jax.grad(lambda s, t=t: jaxloss.sparsemax_loss(s, t).sum())(s)
        g_optax = jax.grad(lambda s, t=t: optax.losses.sparsemax_loss(s, t.astype(int)).sum())(s)
        _close(g, g_optax)
        _close(g, np.clip((s + 1) / 2, 0, 1) - t)


def test_soft_label_sparsemax_loss_is_zero_exactly_at_the_sparse_sigmoid():
    s = np.linspace(-0.9, 0.9, 7)
    _close(jaxloss.sparsemax_loss(s, (s + 1) / 2), np.zeros_like(s))
    assert np.all(np.asarray(jaxloss.sparsemax_loss(s, np.full_like(s, 0.3))) >= 0)


@pytest.mark.parametrize("alpha", [1.25, 1.5, 2.0])
def test_entmax_losses_equal_the_entmax_package_formula(alpha):
    """deep-spin/entmax ``_GenericLossFunction``: loss = ⟨p* - e_y, z⟩ + H(p*) with
    H(p) = Σ (p - p^α)/(α(α - 1)) (its ``omega``), p* = entmax_α(z) (PyTorch; not installed:
    its documented formula in NumPy)."""
    p = entmax_ref(Z, alpha)
    onehot = np.eye(6)[Y]
    want = np.sum((p - onehot) * Z, -1) + np.sum(p - p**alpha, -1) / (alpha * (alpha - 1))
    _close(jaxloss.entmax_loss(Z, Y, alpha=alpha), want, 1e-11)
    named = {1.5: jaxloss.entmax15_loss, 2.0: jaxloss.multiclass_sparsemax_loss}.get(alpha)
    if named is not None:
        _close(named(Z, Y), want, 1e-11)


@jax.jit
def _perceptron_pairs(x, t, z, y):
    out = {}
    for name, f, g, a, b in (
        ("binary", jaxloss.perceptron_loss, optax.losses.perceptron_loss, x, t),
        (
            "multiclass",
            jaxloss.multiclass_perceptron_loss,
            optax.losses.multiclass_perceptron_loss,
            z,
            y,
        ),
    ):
        out[name] = [
            (f(a, b), jax.grad(lambda a, f=f, b=b: f(a, b).sum())(a)),
            (g(a, b), jax.grad(lambda a, g=g, b=b: g(a, b).sum())(a)),
        ]
    return out


def test_perceptron_losses_equal_optax():
    x = np.array([-2.0, -0.5, 0.3, 1.7, -1e4, 1e4])
    t = np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
    # Multi-class, ties included: JAX's subgradient of max is shared equally in both.
    for z, y in ((Z, Y), (TIED, TIED_Y)):
        for ours, theirs in _perceptron_pairs(x, t, z, y).values():
            _close(ours[0], theirs[0])
            _close(ours[1], theirs[1])


def test_perceptron_kink_is_active():
    """At x = 0 the slope -y (as jaxloss.hinge_loss at its kink); optax's jnp.maximum gives -y/2."""
    g = jax.grad(lambda x: jaxloss.perceptron_loss(x, jnp.array([1.0, -1.0])).sum())(jnp.zeros(2))
    _close(g, [-1.0, 1.0])
    _close(jaxloss.perceptron_loss(jnp.zeros(2), jnp.array([1.0, -1.0])), [0.0, 0.0])


# ---------------------------------------------------------------------------------------------
# The mappings


@pytest.mark.parametrize("alpha", [1.25, 1.5, 2.0, 3.0])
def test_entmax_mapping_simplex_zeros_and_jacobian(alpha):
    f = jax.jit(lambda z: jaxloss.entmax(z, alpha=alpha))
    p = f(Z)
    want = entmax_ref(Z, alpha)
    _close(p, want, 1e-12)
    _close(np.sum(p, -1), np.ones(len(Z)), 1e-14)
    np.testing.assert_array_equal(np.asarray(p) == 0, want < 1e-300)  # exact zeros
    assert (np.asarray(p) == 0).any()
    jac = jax.jit(jax.vmap(jax.jacobian(lambda z: jaxloss.entmax(z, alpha=alpha))))(Z)
    s = np.where(want > 0, np.where(want > 0, want, 1.0) ** (2 - alpha), 0.0)  # 0^(2-α): no inf
    closed = (
        np.einsum("bi,ij->bij", s, np.eye(6))
        - np.einsum("bi,bj->bij", s, s) / s.sum(-1)[:, None, None]
    )
    _close(jac, closed, 1e-9)


def test_exact_and_bisection_paths_agree():
    _close(jaxloss.entmax(Z, alpha=2.0), jaxloss.sparsemax(Z), 0)
    _close(jaxloss.entmax(Z, alpha=1.5), jaxloss.entmax15(Z), 0)
    # the bisection just off α = 2 and α = 1.5 (the limit is continuous in α)
    _close(jaxloss.entmax(Z, alpha=2.0 + 1e-9), jaxloss.sparsemax(Z), 1e-7)
    _close(jaxloss.entmax(Z, alpha=1.5 + 1e-9), jaxloss.entmax15(Z), 1e-7)
    # α -> 1 approaches softmax
    _close(jaxloss.entmax(Z, alpha=1.001), jax.nn.softmax(Z), 5e-3)


def test_entmax15_along_another_axis():
    z = np.moveaxis(Z.reshape(7, 2, 3), 1, 2)  # classes on axis 1 of [7, 3, 2]
    p = jaxloss.entmax15(Z.reshape(7, 3, 2), axis=1)
    _close(p, np.moveaxis(entmax_ref(np.moveaxis(Z.reshape(7, 3, 2), 1, -1), 1.5), -1, 1))
    assert z.shape == (7, 3, 2)


@pytest.mark.parametrize(
    "fn", [jaxloss.sparsemax, jaxloss.entmax15, lambda z: jaxloss.entmax(z, alpha=1.3)]
)
def test_mapping_extremes_ties_and_dtypes(fn):
    rows = np.array(
        [
            [1e4, -1e4, 0.0, 1e4],
            [5.0] * 4,
            [3e38, -3e38, 3e38, 0.0],
            [1e20, 1e20 - 1e5, -1e20, 1.0],
        ],
        np.float32,
    )
    p32 = jax.jit(fn)(jnp.asarray(rows))
    p64 = jax.jit(fn)(jnp.asarray(rows, jnp.float64))
    assert p32.dtype == jnp.float32 and p64.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(p32), np.asarray(p64), rtol=1e-5, atol=1e-6)
    _close(p64[:3], [[0.5, 0, 0, 0.5], [0.25] * 4, [0.5, 0, 0.5, 0]], 1e-9)
    assert np.asarray(jax.jit(fn)(jnp.asarray(rows, jnp.bfloat16))).dtype == np.float32


@pytest.mark.parametrize(
    "fn", [jaxloss.sparsemax, jaxloss.entmax15, lambda z: jaxloss.entmax(z, alpha=2.5)]
)
def test_nan_in_one_logit_poisons_that_row_only(fn):
    z = np.array(Z)
    z[2, 3] = np.nan
    p = np.asarray(jax.jit(fn)(z))
    assert np.isnan(p[2]).all()
    _close(np.delete(p, 2, 0), np.delete(np.asarray(fn(Z)), 2, 0), 0)
    jac = np.asarray(jax.jit(jax.vmap(jax.jacobian(fn)))(z))
    assert np.isnan(jac[2]).all() and not np.isnan(np.delete(jac, 2, 0)).any()


def test_nan_in_one_logit_gives_nan_loss_for_that_example_only():
    z = np.array(Z)
    z[4, 0] = np.nan
    for loss in (
        jaxloss.multiclass_sparsemax_loss,
        jaxloss.entmax15_loss,
        jaxloss.multiclass_perceptron_loss,
        lambda z, y: jaxloss.entmax_loss(z, y, alpha=1.7),
    ):
        g = jax.jit(jax.grad(lambda z, f=loss: jnp.sum(f(z, Y) * jnp.arange(7.0))))(z)
        per = np.asarray(loss(z, Y))
        assert np.isnan(per[4]) and not np.isnan(np.delete(per, 4)).any()
        assert np.isnan(g[4]).all() and not np.isnan(np.delete(np.asarray(g), 4, 0)).any()


# ---------------------------------------------------------------------------------------------
# fenchel_young_loss


def _omega(name, p, alpha=1.5):
    if name == "shannon":
        return np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0), -1)
    if name == "zero":
        return np.zeros(p.shape[:-1])
    return tsallis(p, {"squared": 2.0}.get(name, alpha))


def _predict(name, z, alpha=1.5):
    if name == "shannon":
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    if name == "zero":
        return np.eye(z.shape[-1])[z.argmax(-1)]
    return entmax_ref(z, {"squared": 2.0}.get(name, alpha))


def _soft_targets(rng, shape, sparse=True):
    # Dense targets stay away from 0 (log y's third derivative spoils finite differences there).
    t = rng.dirichlet(np.full(shape[-1], 1.0 if sparse else 5.0), size=shape[:-1])
    if sparse:  # some exact zeros
        t = np.where(rng.uniform(size=shape) < 0.3, 0.0, t)
        t[..., 0] += 1e-3
        t /= t.sum(-1, keepdims=True)
    return t


REGULARISERS = [
    ("shannon", 1.5),
    ("squared", 1.5),
    ("tsallis", 1.5),
    ("tsallis", 1.25),
    ("tsallis", 2.5),
    ("zero", 1.5),
]


@pytest.mark.parametrize(("name", "alpha"), REGULARISERS)
def test_fenchel_young_loss_value_and_gradients(name, alpha):
    loss = jaxloss.fenchel_young_loss(name, alpha=alpha)
    t = _soft_targets(np.random.default_rng(3), Z.shape)
    a = {"squared": 2.0}.get(name, alpha)
    p = _predict(name, Z, a)
    # Definition: Ω*(θ) + Ω(y) - ⟨θ, y⟩ with Ω*(θ) = ⟨θ, ŷ⟩ - Ω(ŷ).
    want = np.sum(Z * p, -1) - _omega(name, p, a) + _omega(name, t, a) - np.sum(Z * t, -1)
    gz, gt = jax.jit(jax.grad(lambda z, t: jnp.sum(loss(z, t)), argnums=(0, 1)))(Z, t)
    _close(loss(Z, t), want, 1e-11)
    assert np.all(np.asarray(loss(Z, t)) >= -1e-12)
    _close(gz, p - t, 1e-11)  # ∇_θ L = ŷ_Ω(θ) - y
    if name == "shannon":
        d_omega = np.where(t > 0, np.log(np.where(t > 0, t, 1)) + 1, 0)
    elif name == "zero":
        d_omega = np.zeros_like(t)
    else:
        d_omega = t ** (a - 1) / (a - 1)
    _close(gt, d_omega - (Z - Z.max(-1, keepdims=True)), 1e-10)
    # zero at its own prediction (strictly convex Ω)
    if name != "zero":
        _close(loss(Z, p), np.zeros(len(Z)), 1e-10)


@pytest.mark.parametrize(("name", "alpha"), REGULARISERS[:4])
def test_fenchel_young_loss_finite_differences(name, alpha):
    loss = jaxloss.fenchel_young_loss(name, alpha=alpha)
    z = Z[:3]
    t = _soft_targets(np.random.default_rng(5), z.shape, sparse=False)
    order = 2 if name in ("shannon", "squared") else 1
    check_grads(
        jax.jit(lambda z, t: loss(z, t)),
        (z, t),
        order=order,
        modes=("fwd", "rev"),
        atol=1e-5,
        rtol=1e-5,
    )


def test_fenchel_young_loss_equals_optax_and_the_integer_label_losses():
    onehot = np.eye(6)[Y]
    t = _soft_targets(np.random.default_rng(7), Z.shape)
    shannon = jaxloss.fenchel_young_loss("shannon")
    _close(shannon(Z, onehot), optax.softmax_cross_entropy(Z, onehot), 1e-11)
    lse_fy = optax.losses.make_fenchel_young_loss(jax.scipy.special.logsumexp)
    # optax's constructor omits Ω(y): equal at one-hot targets, off by Ω(y) at soft ones.
    _close(shannon(Z, t), np.asarray(lse_fy(Z, t)) + _omega("shannon", t), 1e-11)
    zero = jaxloss.fenchel_young_loss("zero")
    _close(zero(Z, onehot), optax.losses.multiclass_perceptron_loss(Z, Y), 1e-12)
    _close(zero(Z, t), optax.losses.make_fenchel_young_loss(jnp.max)(Z, t), 1e-12)
    squared = jaxloss.fenchel_young_loss("squared")
    _close(squared(Z, onehot), optax.losses.multiclass_sparsemax_loss(Z, Y), 1e-11)
    _close(
        jaxloss.fenchel_young_loss("tsallis", alpha=1.5)(Z, onehot),
        jaxloss.entmax15_loss(Z, Y),
        1e-11,
    )
    _close(jaxloss.fenchel_young_loss("tsallis", alpha=2.0)(Z, t), squared(Z, t), 1e-11)
    _close(
        jaxloss.fenchel_young_loss("tsallis", alpha=1.3)(Z, onehot),
        jaxloss.entmax_loss(Z, Y, alpha=1.3),
        1e-11,
    )


def test_fenchel_young_loss_at_large_logits_in_float32():
    z = np.array([[1e4, -1e4, 1e4 - 0.5, 0.0], [3e3, 3e3, 3e3, 3e3]], np.float32)
    t = np.array([[0.5, 0.0, 0.5, 0.0], [0.25, 0.25, 0.25, 0.25]], np.float32)
    for name in ("shannon", "squared", "tsallis", "zero"):
        loss = jax.jit(jaxloss.fenchel_young_loss(name))
        v32, v64 = loss(z, t), loss(z.astype(np.float64), t.astype(np.float64))
        assert v32.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(v32), np.asarray(v64), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Errors


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"jaxloss\.entmax: `alpha` must be finite and > 1"):
        jaxloss.entmax(Z, alpha=1.0)
    with pytest.raises(TypeError, match=r"jaxloss\.entmax_loss: `alpha` must be a Python float"):
        jax.jit(lambda a: jaxloss.entmax_loss(Z, Y, alpha=a))(1.5)
    with pytest.raises(ValueError, match=r"`labels` must be class indices in \[0, 6\)"):
        jaxloss.multiclass_sparsemax_loss(Z, Y + 6)
    with pytest.raises(ValueError, match=r"jaxloss\.perceptron_loss: `targets` must be -1 or"):
        jaxloss.perceptron_loss(Z, np.zeros_like(Z))
    with pytest.raises(ValueError, match=r"jaxloss\.sparsemax_loss: `labels` must be in"):
        jaxloss.sparsemax_loss(Z, np.full_like(Z, 2.0))
    with pytest.raises(ValueError, match=r"`regularizer` must be one of"):
        jaxloss.fenchel_young_loss("gini")
    with pytest.raises(ValueError, match=r"`targets` must sum to 1"):
        jaxloss.fenchel_young_loss("squared")(Z, np.full_like(Z, 0.5))
    with pytest.raises(ValueError, match=r"`axis` must be an int in \[-2, 2\)"):
        jaxloss.sparsemax(Z, axis=2)


def test_traced_out_of_range_labels_give_nan():
    v = jax.jit(jaxloss.entmax15_loss)(
        Z, Y.at[0].set(9) if hasattr(Y, "at") else np.where(np.arange(7) == 0, 9, Y)
    )
    assert np.isnan(v[0]) and not np.isnan(np.asarray(v[1:])).any()
    v = jax.jit(jaxloss.perceptron_loss)(np.ones(3), np.array([1.0, 0.0, -1.0]))
    assert np.isnan(v[1]) and not np.isnan(np.asarray(v)[[0, 2]]).any()
