"""``python -m jaxloss demo``: five seeded loss comparisons on datasets bundled with scikit-learn.

Each experiment trains the same small model with optax (full batch, Adam, fixed step count) once
per loss or weighting method, on the same train / held-out split, for several seeds (a seed draws
the split, the corruption and the initial weights), and reports held-out metrics as the mean and
standard deviation over seeds. No numbers are tuned towards a winner: the table is what the run
measures.

1. Imbalanced classification, ``load_digits``: the training set is made long-tailed (class counts
   fall geometrically from 90 to 3, which classes are rare is drawn per seed); the held-out set is
   balanced. Cross-entropy vs class-weighted CE vs focal vs logit-adjusted CE, by balanced accuracy
   and the recall of the three rarest classes; and one expensive confusion (a 1 read as an 8 costs
   10, any other mistake 1): ``expected_cost`` with that cost matrix, alone and added to CE, by the
   held-out misclassification cost.
2. Regression with outliers, ``load_diabetes``: 20% of the *training* targets get a gross error of
   ±(2 to 5) target standard deviations; the held-out targets are clean. MSE vs Huber vs Barron's
   adaptive loss (shape and scale learned), by held-out MAE and RMSE.
3. Multi-task, ``load_wine``: one shared layer, two heads: the cultivar (3 classes, cross-entropy)
   and the proline content (regression, MSE on the standardised target) from the other 12
   measurements. Equal weights vs uncertainty weighting vs UPGrad vs Nash-MTL, by held-out accuracy
   and proline MAE / RMSE.
4. Small errors, ``load_breast_cancer``: the area of the largest cells from the ten mean
   measurements, a target whose errors grow with its size. MSE vs Wing vs rescaled log-cosh vs
   log-space MSE, by the fraction of held-out predictions within 5% of the target, the MAE on the
   small targets, and the RMSE.
5. Asymmetric costs, ``load_diabetes`` (clean): under-prediction costs k times over-prediction,
   k in {1, 3, 9}. MSE vs pinball at τ = k/(k + 1) vs ``asymmetric(squared_error, under=k)``, by
   the held-out cost for each k and the fraction of under-predictions.

In experiments 2, 4 and 5 each loss's row also names the statistic its minimiser targets (mean,
median, τ-quantile, τ-expectile, an M-estimate), stated by hand in ``_demo_regression`` and
checked numerically in tests/test_demo_statistics.py. (In 3 the proline head is trained with
MSE, the mean, in every row.)

It writes one PNG: the held-out metric during training and the final comparison. Needs the
``demo`` extra (scikit-learn, matplotlib).
"""

from __future__ import annotations

from pathlib import Path

import jax

from ._demo_digits import imbalanced_digits
from ._demo_regression import asymmetric_costs, outlier_regression, small_errors
from ._demo_report import render_table, write_figure
from ._demo_training import FAST_COMPILE, ExperimentResult, MethodResult
from ._demo_wine import multitask_wine
from ._extras import require

__all__ = ["ExperimentResult", "MethodResult", "render_table", "run", "write_figure"]

DEFAULT_STEPS = 400
DEFAULT_SEEDS = 5

EXPERIMENTS = (
    imbalanced_digits,
    outlier_regression,
    multitask_wine,
    small_errors,
    asymmetric_costs,
)


def run(
    steps: int = DEFAULT_STEPS,
    seeds: int = DEFAULT_SEEDS,
    *,
    out: str | Path | None = "jaxloss_demo.png",
    verbose: bool = True,
    fast_compile: bool = False,
) -> list[ExperimentResult]:
    """Runs the five experiments, prints their tables when ``verbose``, writes the PNG to
    ``out`` (unless None) and returns the results. ``fast_compile`` (for smoke runs) compiles
    with fewer XLA optimisations."""
    if steps < 1:
        raise ValueError(f"jaxloss demo: `steps` must be >= 1; got {steps}.")
    if seeds < 1:
        raise ValueError(f"jaxloss demo: `seeds` must be >= 1; got {seeds}.")
    require("sklearn", extra="demo", purpose="jaxloss demo")
    if out is not None:
        require("matplotlib", extra="demo", purpose="jaxloss demo")

    def say(msg: str) -> None:
        if verbose:
            print(msg, flush=True)

    say(
        f"jaxloss demo: {steps} steps, {seeds} seed{'s' if seeds > 1 else ''}, "
        f"jax {jax.__version__} on {jax.default_backend()}"
    )
    results = []
    for experiment in EXPERIMENTS:
        say("")
        results.append(experiment(steps, seeds, say, FAST_COMPILE if fast_compile else None))
    for exp in results:
        say("")
        say(render_table(exp))
    if out is not None:
        path = write_figure(results, out)
        say("")
        say(f"wrote {path}")
    return results
