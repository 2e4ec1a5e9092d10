"""Diagnostics: what a designed loss estimates, how hard outliers pull it, whether it is proper.

- :func:`bayes_act`: the constant prediction that minimises the mean loss over target samples,
  i.e. the statistic the loss makes a model predict (mean, median, quantile, expectile, ...).
- :func:`influence`: the ψ-function (derivative w.r.t. the prediction) and the summary numbers of
  robust statistics: gross-error sensitivity, rejection point, efficiency at the normal.
- :func:`properness`: for classification losses, the prediction that minimises the expected loss
  under each true class distribution (the calibration map), and whether the loss is proper.
- :func:`describe`: all of it in one table (``python -m jaxloss inspect SPEC`` prints it and
  draws ψ and the Bayes act as the contamination grows).

Everything here uses only jaxloss's public API, so it works for any loss with the library's
signature, including losses built with the combinators. The guide is docs/choosing-a-loss.md.
"""

from ._bayes import bayes_act
from ._describe import DISTRIBUTIONS, FRACTIONS, Description, describe, reference_samples
from ._influence import Influence, influence
from ._properness import INPUTS, Properness, properness

__all__ = [
    "DISTRIBUTIONS",
    "FRACTIONS",
    "INPUTS",
    "Description",
    "Influence",
    "Properness",
    "bayes_act",
    "describe",
    "influence",
    "properness",
    "reference_samples",
]
