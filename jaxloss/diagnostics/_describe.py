"""One table of what a loss does: its target statistic, its robustness, its properness.

Reference distributions (deterministic quantile nodes, 4000 per distribution, u_i = (i + ½)/n):

- normal N(0, 1);
- log-normal exp(N(0, 1)) (skewed: mean e^{1/2} ≈ 1.649, median 1);
- Student t(2) (heavy-tailed: finite mean, infinite variance), quantile (2u - 1)/√(2u(1 - u));
- N(0, 1) with 10 % gross errors at +10 (the mixture 0.9·N(0, 1) + 0.1·N(10, 1)); the same
  mixture with the contaminated fraction ε from 0 to 0.3 gives the curve of the Bayes act as the
  contamination grows.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._core.combine import Loss
from ._bayes import bayes_act
from ._influence import Influence, influence
from ._properness import INPUTS, Properness, properness

__all__ = ["DISTRIBUTIONS", "FRACTIONS", "Description", "describe", "reference_samples"]

#: The reference distributions of :func:`describe`, in its table's order.
DISTRIBUTIONS = (
    "normal N(0,1)",
    "log-normal, sigma=1",
    "Student t(2)",
    "N(0,1) + 10% at +10",
)

_N = 4000
_OUTLIER = 10.0
#: Contaminated fractions of the contamination curve.
FRACTIONS = np.linspace(0.0, 0.3, 31)

_FAST_COMPILE: dict[str, Any] = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
}


def _normal_nodes(n: int) -> np.ndarray:
    inv = statistics.NormalDist().inv_cdf
    return np.array([inv((i + 0.5) / n) for i in range(n)])


def reference_samples() -> tuple[np.ndarray, np.ndarray]:
    """The reference distributions of :func:`describe` as weighted quantile nodes.

    Rows 0–3 are the four distributions of ``DISTRIBUTIONS`` (normal N(0, 1), log-normal
    exp(N(0, 1)), Student t(2), and N(0, 1) with 10 % gross errors at +10), each as 4000
    deterministic quantile nodes (u_i = (i + ½)/4000) of equal weight; the contaminated one is
    2000 normal nodes plus the same nodes shifted by +10, weighted 0.9/2000 and 0.1/2000. Rows
    4–34 are the contamination curve: the same nodes with weights (1 − ε)/2000 and ε/2000 for
    each ε of ``FRACTIONS`` (0 to 0.3 by 0.01), so row ``4 + k`` is the mixture
    ``(1 − ε_k)·N(0, 1) + ε_k·N(10, 1)``. No randomness: every call returns the same arrays.

    Returns:
      ``(samples, weights)``: two float64 NumPy arrays of shape [35, 4000]; each row of
      ``weights`` is non-negative and sums to 1. Pass a row pair to
      :func:`jaxloss.diagnostics.bayes_act` as ``samples`` and ``weights``.

    Examples:
      >>> from jaxloss.diagnostics import reference_samples
      >>> samples, weights = reference_samples()
      >>> samples.shape, weights.shape, samples.dtype.name
      ((35, 4000), (35, 4000), 'float64')
      >>> round(float(weights[1] @ samples[1]), 3)     # log-normal: mean ≈ e^(1/2)
      1.648
      >>> [round(float(weights[4 + k] @ samples[4 + k]), 3) for k in (10, 20, 30)]  # 10·ε
      [1.0, 2.0, 3.0]
    """
    u = (np.arange(_N) + 0.5) / _N
    z = _normal_nodes(_N)
    half = _normal_nodes(_N // 2)
    mixture = np.concatenate([half, half + _OUTLIER])
    rows = [z, np.exp(z), (2 * u - 1) / np.sqrt(2 * u * (1 - u)), mixture]
    equal = np.full(_N, 1.0 / _N)
    weights = [equal, equal, equal, _mixture_weights(0.1)]
    rows += [mixture] * len(FRACTIONS)
    weights += [_mixture_weights(e) for e in FRACTIONS]
    return np.stack(rows), np.stack(weights)


def _mixture_weights(fraction: float) -> np.ndarray:
    m = _N // 2
    return np.concatenate([np.full(m, (1 - fraction) / m), np.full(m, fraction / m)])


def _weighted_median(y: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(y)
    y, c = y[order], np.cumsum(w[order]) / np.sum(w)
    lo = y[np.searchsorted(c, 0.5 - 1e-12)]
    hi = y[np.searchsorted(c, 0.5 + 1e-12)]
    return 0.5 * (lo + hi)


@dataclasses.dataclass
class Description:
    """The result of :func:`describe`; ``str()`` gives the table."""

    name: str
    inputs: str
    #: Bayes act, mean and median under each of ``DISTRIBUTIONS`` (regression), [4] each.
    acts: np.ndarray | None = None
    means: np.ndarray | None = None
    medians: np.ndarray | None = None
    #: the contamination curve: fractions [31] and the Bayes act, mean, median at each.
    fractions: np.ndarray | None = None
    contaminated_acts: np.ndarray | None = None
    contaminated_means: np.ndarray | None = None
    contaminated_medians: np.ndarray | None = None
    #: ψ on ``residuals`` and the robustness summaries (regression).
    residuals: np.ndarray | None = None
    influence: Influence | None = None
    #: the calibration map (classification).
    properness: Properness | None = None

    def table(self) -> str:
        lines = [f"{self.name}  (inputs: {self.inputs})"]
        if self.acts is not None and self.means is not None and self.medians is not None:
            lines.append(
                "statistic targeted: the Bayes act (constant prediction with the least "
                "expected loss)"
            )
            lines.append(f"  {'distribution':<22}{'Bayes act':>11}{'mean':>10}{'median':>10}")
            for name, a, m, md in zip(
                DISTRIBUTIONS, self.acts, self.means, self.medians, strict=True
            ):
                lines.append(f"  {name:<22}{_fix(a):>11}{_fix(m):>10}{_fix(md):>10}")
        if self.influence is not None:
            inf = self.influence
            lines.append(
                "robustness (psi = d loss / d prediction, residual r = prediction - target)"
            )
            lines.append(f"  gross-error sensitivity sup|psi|  {_num(inf.gross_error_sensitivity)}")
            lines.append(f"  rejection point                   {_num(inf.rejection_point)}")
            lines.append(f"  efficiency at N(0,1) vs the mean  {float(inf.efficiency):.4f}")
        if self.properness is not None:
            pr = self.properness
            q, p = np.asarray(pr.true), np.asarray(pr.predicted)
            lines.append(
                f"properness (minimiser of the expected loss over {q.shape[0]} true class "
                f"distributions, {q.shape[1]} classes)"
            )
            lines.append(
                f"  proper: {'yes' if bool(pr.proper) else 'no'} (max |p_hat - p| = "
                f"{float(pr.max_deviation):.3g}); strictly proper: "
                f"{'yes' if bool(pr.strictly_proper) else 'no'}"
            )
            if q.shape[1] == 2:
                shown = [0.1, 0.3, 0.5, 0.7, 0.9, 0.99]
                pairs = []
                for target in shown:
                    i = int(np.argmin(np.abs(q[:, 1] - target)))
                    pairs.append(f"{q[i, 1]:.2f} -> {p[i, 1]:.3f}")
                lines.append("  calibration map p -> p_hat (class 1): " + ", ".join(pairs))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _short(value: Any) -> str:
    if not hasattr(value, "shape"):
        return str(value)
    flat = [f"{v:.6g}" for v in np.asarray(value, np.float64).ravel()]
    return flat[0] if np.ndim(value) == 0 else "(" + ",".join(flat) + ")"


def _fix(x: Any) -> str:
    text = f"{float(x):.4f}"
    return "0.0000" if text == "-0.0000" else text


def _num(x: Any) -> str:
    v = float(x)
    return "inf" if math.isinf(v) else f"{v:.4g}"


def _compiled(f: Any, *args: Any) -> Any:
    return jax.jit(f).lower(*args).compile(_FAST_COMPILE)(*args)


def describe(
    loss: Loss,
    *,
    inputs: str = "predictions",
    num_classes: int = 2,
    name: str | None = None,
    **hyperparameters: Any,
) -> Description:
    """What a loss does, in one table: the statistic it targets, its robustness, its properness.

    Regression (``inputs="predictions"``): the Bayes act under a normal, a skewed log-normal, a
    heavy-tailed Student t(2) and a normal with 10 % gross errors at +10, next to each
    distribution's mean and median (:func:`bayes_act`); the Bayes act as the contaminated
    fraction grows from 0 to 0.3; ψ, sup|ψ|, the rejection point and the efficiency at the
    normal (:func:`influence`). Classification (``inputs`` one of ``"logits"``,
    ``"binary_logits"``, ``"probabilities"``): the calibration map and whether the loss is
    proper (:func:`properness`).

    Args:
      loss: a loss with jaxloss's signature, e.g. ``jaxloss.huber_loss`` or one built with the
        combinators.
      inputs: ``"predictions"`` (an elementwise regression loss) or how to call a
        classification loss (see :func:`properness`).
      num_classes: classes, for a classification loss.
      name: the title of the table (default: the loss's ``__name__`` and hyperparameters).
      **hyperparameters: passed to ``loss``.

    Returns:
      :class:`Description`; ``str(description)`` is the table. Computed in float64 when x64
      is enabled, else float32 (four decimals of the table are then not all significant).

    Examples:
      >>> import jaxloss
      >>> from jaxloss.diagnostics import describe
      >>> d = describe(jaxloss.absolute_error)
      >>> float(abs(d.acts - d.medians).max()) < 1e-4  # the median, under every distribution
      True
      >>> print(str(d).splitlines()[-1])
        efficiency at N(0,1) vs the mean  0.6366
    """
    if inputs != "predictions" and inputs not in INPUTS:
        raise ValueError(
            "jaxloss.diagnostics.describe: `inputs` must be 'predictions' or one of "
            f"{INPUTS}; got {inputs!r}."
        )
    if name is None:
        shown = ", ".join(f"{k}={_short(v)}" for k, v in hyperparameters.items())
        base = getattr(loss, "__name__", type(loss).__name__)
        name = f"{base}({shown})" if shown else base
    if inputs != "predictions":
        result = _compiled(
            lambda: properness(loss, num_classes=num_classes, inputs=inputs, **hyperparameters)
        )
        return Description(name, inputs, properness=result)
    dtype = jnp.result_type(float)
    samples, weights = reference_samples()
    acts = np.asarray(
        _compiled(
            lambda y, w: bayes_act(loss, y, weights=w, **hyperparameters),
            jnp.asarray(samples, dtype),
            jnp.asarray(weights, dtype),
        ),
        np.float64,
    )
    means = np.sum(samples * weights, axis=1) / np.sum(weights, axis=1)
    medians = np.array([_weighted_median(y, w) for y, w in zip(samples, weights, strict=True)])
    residuals = np.linspace(-6.0, 6.0, 241)
    inf = _compiled(lambda r: influence(loss, r, **hyperparameters), jnp.asarray(residuals, dtype))
    k = len(DISTRIBUTIONS)
    return Description(
        name,
        inputs,
        acts=acts[:k],
        means=means[:k],
        medians=medians[:k],
        fractions=FRACTIONS.copy(),
        contaminated_acts=acts[k:],
        contaminated_means=means[k:],
        contaminated_medians=medians[k:],
        residuals=residuals,
        influence=inf,
    )
