"""The adaptive wrapper of Barron's loss (jaxloss/_adaptive.py) has no conformance case.

``adaptive_robust_init`` / ``_parameters`` / ``_nll`` take a dict of latent parameters, which
the suite's array-valued data cannot carry; the loss is ``barron_nll`` after a closed-form
reparametrisation (tests/cases/barron.py covers ``barron_nll``), and is checked in
tests/test_robust.py: the chain rule against the closed forms of tests/cases/barron.py, and an
optax training run.
"""

from __future__ import annotations

from tests.case import Case

#: Public names of this module that are helpers, not losses (for ``NOT_LOSSES``).
NOT_LOSSES = {"adaptive_robust_init", "adaptive_robust_nll", "adaptive_robust_parameters"}

CASES: list[Case] = []
