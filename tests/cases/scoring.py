"""Conformance cases for the proper scoring rules (jaxloss/_scoring.py).

References are NumPy/SciPy float64 written from the definitions, never from jaxloss: the Gaussian
CRPS in closed form (Gneiting et al. 2005, eq. 5, with scipy's normal CDF and density; checked
against numerical integration of (F(x) - 1{x ≥ y})² in tests/test_scoring.py), the ensemble CRPS
and the energy score by brute-force O(M²) pair sums, the quantile CRPS as twice the mean pinball
loss. Losses that reduce a member/quantile axis list only ``predictions`` in ``grads`` (the
suite contracts per-example derivatives with a cotangent expanded along the reduced axes); their
target derivatives are checked in tests/test_scoring.py.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from tests.case import Case

B, M, D, Q = 5, 6, 3, 4
SHAPE = (3, 4)
_SQRT_PI = np.sqrt(np.pi)


# Gaussian -------------------------------------------------------------------------------------


def gaussian_value(mu, y, s):
    z = (y - mu) / s
    return s * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / _SQRT_PI)


def _g(d):
    return d["predictions"], d["targets"], d["scale"]


def _make_gaussian(rng):
    mu = rng.normal(size=SHAPE)
    return {
        "predictions": mu,
        "targets": mu + rng.normal(scale=2.0, size=SHAPE),
        "scale": rng.uniform(0.3, 2.0, size=SHAPE),
    }


def _gaussian_extremes():
    big = np.array(
        [
            [1e4, -1e4, 0.0, 1e-30],
            [-3e3, 1e20, -1e20, 3e37],
            [-3e37, 1e-30, 5.0, 0.0],
            [7.0, -7.0, 1e10, -1e10],
        ]
    )[:3]
    zeros = np.zeros(SHAPE)
    out = []
    for s in (np.ones(SHAPE), np.full(SHAPE, 1e-30), np.full(SHAPE, 1e20), zeros):
        out += [
            {"predictions": big, "targets": zeros, "scale": s},
            {"predictions": zeros, "targets": big, "scale": s},
            {"predictions": big, "targets": big, "scale": s},
        ]
    return out


def _gaussian_case(id, make):
    return Case(
        loss="crps_gaussian",
        id=id,
        positional=("predictions", "targets"),
        make=make,
        reference=lambda d, h: gaussian_value(*_g(d)),
        grads={
            "predictions": lambda d, h: (
                1 - 2 * stats.norm.cdf((d["targets"] - d["predictions"]) / d["scale"])
            ),
            "targets": lambda d, h: (
                2 * stats.norm.cdf((d["targets"] - d["predictions"]) / d["scale"]) - 1
            ),
            "scale": lambda d, h: (
                2 * stats.norm.pdf((d["targets"] - d["predictions"]) / d["scale"]) - 1 / _SQRT_PI
            ),
        },
        extremes=_gaussian_extremes,
    )


# Ensemble -------------------------------------------------------------------------------------


def ensemble_value(x, y, fair=False):
    """Brute force: (1/M) Σ|x_i - y| - Σ_ij |x_i - x_j| / (2M²) (fair: 2M(M - 1))."""
    m = x.shape[-1]
    pair = np.abs(x[..., :, None] - x[..., None, :]).sum((-2, -1))
    return np.abs(x - y[..., None]).mean(-1) - pair / (2 * m * (m - 1 if fair else m))


def ensemble_dx(x, y, fair=False):
    m = x.shape[-1]
    pair = np.sign(x[..., :, None] - x[..., None, :]).sum(-1)  # Σ_i sign(x_j - x_i)
    return np.sign(x - y[..., None]) / m - pair / (m * (m - 1 if fair else m))


def _make_ensemble(rng, m=M):
    x = rng.normal(size=(B, m)) + np.arange(m) * 0.05  # distinct members
    y = rng.normal(size=B)
    return {"predictions": x, "targets": y}


def _ensemble_extremes(m=M, axis=-1):
    base = np.linspace(-1, 1, B * m).reshape(B, m)
    out = []
    for scale in (1e4, 1e20, 1e30, 1e-30):
        x = base * scale
        out += [
            {"predictions": x, "targets": np.zeros(B)},
            {"predictions": x, "targets": x[:, 0] * 0.5},
            {"predictions": np.zeros((B, m)), "targets": x[:, -1]},
        ]
    return [
        {"predictions": np.moveaxis(d["predictions"], -1, axis), "targets": d["targets"]}
        for d in out
    ]


def _ensemble_case(id, hyper, m=M):
    fair = hyper.get("estimator") == "fair"
    axis = hyper.get("axis", -1)

    def make(rng):
        d = _make_ensemble(rng, m)
        return {"predictions": np.moveaxis(d["predictions"], -1, axis), "targets": d["targets"]}

    return Case(
        loss="crps_ensemble",
        id=id,
        positional=("predictions", "targets"),
        make=make,
        reference=lambda d, h: ensemble_value(
            np.moveaxis(d["predictions"], axis, -1), d["targets"], fair
        ),
        grads={
            "predictions": lambda d, h: np.moveaxis(
                ensemble_dx(np.moveaxis(d["predictions"], axis, -1), d["targets"], fair), -1, axis
            )
        },
        hyper=hyper,
        class_axis=axis,
        extremes=lambda: _ensemble_extremes(m, axis),
        vmap_axes={"predictions": 1} if axis == 0 else {},
    )


# Quantiles ------------------------------------------------------------------------------------

LEVELS = np.array([0.1, 0.4, 0.6, 0.95])


def quantile_value(q, y, tau):
    u = y[..., None] - q
    return 2 * np.mean(u * (tau - (u < 0)), axis=-1)


def quantile_dq(q, y, tau):
    return 2 * ((y[..., None] < q) - tau) / q.shape[-1]


def _make_quantiles(rng):
    q = np.sort(rng.normal(size=(B, Q)), -1)
    y = rng.normal(size=B)
    # away from the kinks y = q_k
    y = np.where(np.min(np.abs(q - y[:, None]), -1) < 0.05, y + 0.2, y)
    return {"predictions": q, "targets": y}


def _quantile_extremes():
    base = np.linspace(-1, 1, B * Q).reshape(B, Q)
    out = []
    for scale in (1e4, 1e20, 3e38, 1e-30):
        x = base * scale
        out += [
            {"predictions": x, "targets": np.zeros(B)},
            {"predictions": x, "targets": -x[:, 0]},
            {"predictions": np.zeros((B, Q)), "targets": x[:, -1]},
        ]
    return out


# Energy score ---------------------------------------------------------------------------------


def energy_value(x, y, fair=False):
    m = x.shape[-2]
    to_y = np.linalg.norm(x - y[..., None, :], axis=-1).mean(-1)
    pairs = np.linalg.norm(x[..., :, None, :] - x[..., None, :, :], axis=-1).sum((-2, -1))
    return to_y - pairs / (2 * m * (m - 1 if fair else m))


def _unit(v):
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.where(n == 0, 0.0, v / np.where(n == 0, 1, n))


def energy_dx(x, y, fair=False):
    m = x.shape[-2]
    to_y = _unit(x - y[..., None, :]) / m
    pairs = _unit(x[..., :, None, :] - x[..., None, :, :]).sum(-2)  # Σ_i u(x_j - x_i)
    return to_y - pairs / (m * (m - 1 if fair else m))


def _make_energy(rng):
    return {"predictions": rng.normal(size=(B, M, D)), "targets": rng.normal(size=(B, D))}


def _energy_extremes():
    base = np.linspace(-1, 1, B * M * D).reshape(B, M, D)
    out = []
    for scale in (1e4, 1e20, 1e30, 1e-30):
        x = base * scale
        out += [
            {"predictions": x, "targets": np.zeros((B, D))},
            {"predictions": x, "targets": x[:, 0] * 0.5},
            {"predictions": np.zeros((B, M, D)), "targets": x[:, -1]},
        ]
    return out


def _energy_case(id, hyper):
    fair = hyper.get("estimator") == "fair"
    return Case(
        loss="energy_score",
        id=id,
        positional=("predictions", "targets"),
        make=_make_energy,
        reference=lambda d, h: energy_value(d["predictions"], d["targets"], fair),
        grads={"predictions": lambda d, h: energy_dx(d["predictions"], d["targets"], fair)},
        hyper=hyper,
        class_axis=(-2, -1),
        extremes=_energy_extremes,
    )


CASES = [
    _gaussian_case("plain", _make_gaussian),
    _ensemble_case("standard", {}),
    _ensemble_case("fair", {"estimator": "fair"}),
    _ensemble_case("standard,axis=0", {"axis": 0}),
    _ensemble_case("standard,M=1", {}, m=1),
    Case(
        loss="crps_quantile",
        id="4 levels",
        positional=("predictions", "targets"),
        make=_make_quantiles,
        reference=lambda d, h: quantile_value(d["predictions"], d["targets"], LEVELS),
        grads={"predictions": lambda d, h: quantile_dq(d["predictions"], d["targets"], LEVELS)},
        hyper={"quantile_levels": LEVELS},
        class_axis=-1,
        extremes=_quantile_extremes,
    ),
    _energy_case("standard", {}),
    _energy_case("fair", {"estimator": "fair"}),
]
