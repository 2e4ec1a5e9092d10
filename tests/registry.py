"""The conformance registry: every public loss, with inputs, a NumPy float64 reference of its value
and the closed-form derivative of each differentiable input.

References are written from the math (the formulas in each docstring and the PyTorch/optax
documentation), never by calling jaxloss. A case is one configuration of one loss; a loss may have
several cases (options on and off). ``tests/test_conformance.py`` runs every case through the same
checks and fails if a public loss has no case.

The cases live in ``tests/cases/``, one file per family module (``jaxloss/_focal.py`` ->
``tests/cases/focal.py``), collected here without an import line per file.

Closed forms: ``grads[name](data, hyper)`` returns d l_n / d input with the input's shape (the
per-example derivative); the suite contracts it with a random cotangent, expanded along
``class_axis`` for losses that reduce a class axis.
"""

from __future__ import annotations

import jaxloss
from tests.case import Case
from tests.cases import collect

CASES: list[Case]
CASES, _NOT_LOSSES_COLLECTED = collect()

#: Public names in jaxloss that are not losses: the package's own, and those each cases file
#: declares for its family (``NOT_LOSSES`` there).
NOT_LOSSES = {"COMBINATORS", "LOSSES", "Loss", "RENAMED", "LossInfo", "WeightedMean", "loss_info",
              "fused", "mean", "mean_parts", "multitask", "sum", *jaxloss.COMBINATORS}
NOT_LOSSES |= _NOT_LOSSES_COLLECTED
