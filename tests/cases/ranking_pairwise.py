"""Conformance cases for the pairwise ranking losses (jaxloss/_ranking_pairwise.py): the
references and closed forms are those of tests/cases/ranking.py (one set of NumPy definitions for
the ranking family)."""

from __future__ import annotations

from tests.case import Case
from tests.cases.ranking import _ALL

CASES: list[Case] = [c for c in _ALL if c.loss.startswith("pairwise_")]
