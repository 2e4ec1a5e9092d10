"""Issue 12's reproducers for the regression families (relative, asymmetric, likelihood, robust).

1. A NaN in an example's inputs gives NaN for that example's value and its gradient w.r.t. the
   predictions (float32 under jit): log-ratio error, sMAPE, MSLE, Barron's NLL with a NaN α.
4. Finite inputs whose residual p - t overflows float32 (p = 3e38, t = -3e38) give the float64
   answer rounded to float32, never NaN: pinball, sMAPE, Barron (α <= 0.5), Cauchy, MAPE values;
   Charbonnier, Welsch, Tukey, Geman–McClure gradients; the log-variance Gaussian NLL at |r| = 1e20.
5. Tukey's biweight gradient just inside the cut-off against the exact value (rational
   arithmetic on the formula at the same float64 inputs).

Every expected number is computed here from the formula in Python's float64 or in exact rational
arithmetic, never by calling jaxloss. One jitted program per dtype keeps the compile time low.
"""

from __future__ import annotations

import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss

F32 = jnp.float32
P_BIG, T_BIG = 3e38, -3e38  # float32 inputs; p - t = 6e38 is beyond float32's range


def _f32(x):
    return float(np.float32(x))


# ----------------------------------------------------------------------------------------------
# 1. NaN in, NaN out


def _nan_cases():
    """(name, loss of (p, t)) for the issue's NaN reproducers."""
    return {
        "log_ratio_error[squared]": lambda p, t: jaxloss.log_ratio_error(p, t),
        "log_ratio_error[absolute]": lambda p, t: jaxloss.log_ratio_error(p, t, squared=False),
        "symmetric_absolute_percentage_error":
            lambda p, t: jaxloss.symmetric_absolute_percentage_error(p, t),
        "squared_logarithmic_error": lambda p, t: jaxloss.squared_logarithmic_error(p, t),
    }


@jax.jit
def _nan_program(p, t):
    out = {}
    for name, loss in _nan_cases().items():
        out[name] = (loss(p, t), jax.grad(lambda x, loss=loss: jnp.sum(loss(x, t)))(p))
    return out


@pytest.mark.parametrize("which", ["predictions", "targets"])
def test_nan_in_an_element_gives_nan_for_that_element_only(which):
    p = jnp.asarray([2.0, 0.5, 3.0], F32)
    t = jnp.asarray([1.0, 1.5, 3.0], F32)
    clean = _nan_program(p, t)
    if which == "predictions":
        p = p.at[1].set(jnp.nan)
    else:
        t = t.at[1].set(jnp.nan)
    poisoned = _nan_program(p, t)
    for name, (values, grads) in poisoned.items():
        assert np.isnan(float(values[1])), f"{name}: NaN {which} gave {float(values[1])}"
        assert np.isnan(float(grads[1])), f"{name}: d/dpredictions {float(grads[1])}"
        keep = np.array([0, 2])
        np.testing.assert_array_equal(np.asarray(values)[keep], np.asarray(clean[name][0])[keep])
        np.testing.assert_array_equal(np.asarray(grads)[keep], np.asarray(clean[name][1])[keep])


def test_barron_nll_nan_alpha_gives_nan_value_and_gradient():
    """A NaN α (shared by every element) makes every value and d/dpredictions NaN (it gave a
    zero gradient)."""
    def loss(p, alpha):
        return jaxloss.barron_nll(p, jnp.zeros_like(p), alpha=alpha)

    @jax.jit
    def program(p, alpha):
        return loss(p, alpha), jax.grad(lambda x: jnp.sum(loss(x, alpha)))(p)

    p = jnp.asarray([0.5, -2.0, 0.0], F32)
    values, grads = program(p, jnp.asarray(jnp.nan, F32))
    assert np.all(np.isnan(np.asarray(values)))
    assert np.all(np.isnan(np.asarray(grads)))
    values, grads = program(p, jnp.asarray(1.0, F32))
    assert np.all(np.isfinite(np.asarray(values))) and np.all(np.isfinite(np.asarray(grads)))


# ----------------------------------------------------------------------------------------------
# 4. |p - t| beyond float32's range


def _grad_p(loss):
    return jax.grad(lambda p, t: jnp.sum(loss(p, t)))


@jax.jit
def _overflow_program(p, t):
    """Values (and gradients w.r.t. the predictions) at p = 3e38, t = -3e38."""
    losses = {
        "pinball_loss[tau=0.9]": lambda p, t: jaxloss.pinball_loss(p, t, tau=0.9),
        "pinball_loss[tau=0.7]": lambda p, t: jaxloss.pinball_loss(p, t, tau=0.7),
        "symmetric_absolute_percentage_error":
            lambda p, t: jaxloss.symmetric_absolute_percentage_error(p, t),
        "absolute_percentage_error": lambda p, t: jaxloss.absolute_percentage_error(p, t),
        "cauchy_loss": lambda p, t: jaxloss.cauchy_loss(p, t),
        "barron[alpha=0.5]": lambda p, t: jaxloss.barron_loss(p, t, alpha=0.5),
        "barron[alpha=0]": lambda p, t: jaxloss.barron_loss(p, t, alpha=0.0),
        "barron[alpha=-2]": lambda p, t: jaxloss.barron_loss(p, t, alpha=-2.0),
        "charbonnier_loss": lambda p, t: jaxloss.charbonnier_loss(p, t),
        "welsch_loss": lambda p, t: jaxloss.welsch_loss(p, t),
        "tukey_biweight_loss": lambda p, t: jaxloss.tukey_biweight_loss(p, t),
        "geman_mcclure_loss": lambda p, t: jaxloss.geman_mcclure_loss(p, t),
    }
    return {name: (loss(p, t), _grad_p(loss)(p, t)) for name, loss in losses.items()}


def _overflow_expected():
    """(value, d/dpredictions) from the formulas in float64 at r = 6e38 (c = 1, δ = 1, ε = 1e-7)."""
    p, t = _f32(P_BIG), _f32(T_BIG)
    r = p - t  # 6e38, fine in float64
    b05 = abs(0.5 - 2)
    return {
        # max(τu, (τ - 1)u), u = t - p < 0: (1 - τ)|u|; d/dp = 1 - τ.
        "pinball_loss[tau=0.9]": ((1 - 0.9) * r, 1 - 0.9),
        "pinball_loss[tau=0.7]": ((1 - 0.7) * r, 1 - 0.7),
        # 2|r|/(|p| + |t| + ε); d/dp = 2 sign(r)/D - 2|r| sign(p)/D² = 2/D - 2r/D².
        "symmetric_absolute_percentage_error":
            (2 * r / (abs(p) + abs(t) + 1e-7),
             2 / (abs(p) + abs(t) + 1e-7) - 2 * r / (abs(p) + abs(t) + 1e-7) ** 2),
        # |r|/|t|; d/dp = 1/|t|.
        "absolute_percentage_error": (r / abs(t), 1 / abs(t)),
        # log(1 + r²/2); d/dp = 2r/(r² + 2).
        "cauchy_loss": (math.log1p(r * r / 2), 2 * r / (r * r + 2)),
        # |α-2|/α ((r²/|α-2| + 1)^(α/2) - 1); d/dp = r (r²/|α-2| + 1)^(α/2 - 1).
        "barron[alpha=0.5]": (b05 / 0.5 * ((r * r / b05 + 1) ** 0.25 - 1),
                              r * (r * r / b05 + 1) ** (0.25 - 1)),
        "barron[alpha=0]": (math.log1p(r * r / 2), 2 * r / (r * r + 2)),
        "barron[alpha=-2]": (2 * r * r / (r * r + 4), 16 * r / (r * r + 4) ** 2),
        # √(1 + r²) - 1; d/dp = r/√(1 + r²) (computed as 1/√(1/r² + 1), r² overflows nowhere).
        "charbonnier_loss": (r * (r / (math.sqrt(1 + r * r) + 1)), 1 / math.sqrt(1 / (r * r) + 1)),
        # 1 - e^(-r²/2); d/dp = r e^(-r²/2) = 0.
        "welsch_loss": (-math.expm1(-r * r / 2), r * math.exp(-r * r / 2)),
        # c²/6 beyond c; ψ = 0.
        "tukey_biweight_loss": (4.685**2 / 6, 0.0),
        # 2r²/(r² + 4); d/dp = 16r/(r² + 4)².
        "geman_mcclure_loss": (2 * r * r / (r * r + 4), 16 * r / (r * r + 4) ** 2),
    }


def test_residual_beyond_float32_range_gives_the_float64_answer():
    got = _overflow_program(jnp.asarray([P_BIG], F32), jnp.asarray([T_BIG], F32))
    f32_max = float(np.finfo(np.float32).max)
    for name, (value, grad) in _overflow_expected().items():
        v, g = float(got[name][0][0]), float(got[name][1][0])
        assert np.isfinite(g), f"{name}: d/dpredictions {g}"
        assert g == pytest.approx(grad, rel=1e-5, abs=1e-30), name
        if abs(value) > f32_max:  # beyond the range: inf (Charbonnier: δ|r| - δ² = 6e38)
            assert v == math.copysign(math.inf, value), f"{name}: {v}"
        else:
            assert v == pytest.approx(value, rel=1e-5, abs=1e-30), name
    # The figures: Cauchy ~178, MAPE 2, sMAPE 2.
    assert float(got["cauchy_loss"][0][0]) == pytest.approx(177.9, abs=0.1)
    assert float(got["absolute_percentage_error"][0][0]) == pytest.approx(2.0, rel=1e-6)
    assert float(got["symmetric_absolute_percentage_error"][0][0]) == pytest.approx(2.0, rel=1e-6)


def test_gaussian_nll_with_log_variance_where_r_squared_overflows():
    """gaussian_nll_with_log_variance(0, 1e20, s=60) = ½(60 + 1e40 e^-60) = 4.4e13 (it was inf),
    and its gradients ½ ... from the formula in float64."""
    def loss(p, t, s):
        return jaxloss.gaussian_nll_with_log_variance(p, t, log_variance=s)

    @jax.jit
    def program(p, t, s):
        return loss(p, t, s), jax.grad(lambda p_, s_: jnp.sum(loss(p_, t, s_)), (0, 1))(p, s)

    p, t, s = (jnp.asarray([v], F32) for v in (0.0, 1e20, 60.0))
    value, (gp, gs) = program(p, t, s)
    r = 0.0 - _f32(1e20)
    assert float(value[0]) == pytest.approx(0.5 * (60 + r * r * math.exp(-60)), rel=1e-5)
    assert float(value[0]) == pytest.approx(4.38e13, rel=1e-2)
    assert float(gp[0]) == pytest.approx(r * math.exp(-60), rel=1e-5)
    assert float(gs[0]) == pytest.approx(0.5 * (1 - r * r * math.exp(-60)), rel=1e-5)


# ----------------------------------------------------------------------------------------------
# 5. Tukey's biweight gradient near the cut-off


def _tukey_psi_exact(r: float, c: float) -> float:
    """ψ(r) = r (1 - (r/c)²)², in exact rational arithmetic on the float64 r and c."""
    fr, fc = Fraction(r), Fraction(c)
    return float(fr * (1 - (fr / fc) ** 2) ** 2)


def test_tukey_gradient_near_the_cut_off_is_exact():
    c = 4.685
    gaps = [1e-3, 1e-5, 1e-6, 1e-7, 1e-8, 1e-10]
    r = np.array([c * (1 - g) for g in gaps] + [-c * (1 - g) for g in gaps])

    @jax.jit
    def grads(p):
        return jax.grad(lambda x: jnp.sum(jaxloss.tukey_biweight_loss(x, jnp.zeros_like(x),
                                                                 scale=c)))(p)

    got = np.asarray(grads(jnp.asarray(r, jnp.float64)))
    want = np.array([_tukey_psi_exact(float(x), c) for x in r])
    # The figure: 1.8739963e-11 at 1 - 1e-6 (autodiff gave 1.87395e-11).
    assert want[2] == pytest.approx(1.8739963e-11, rel=1e-7)
    np.testing.assert_allclose(got, want, rtol=1e-12)
