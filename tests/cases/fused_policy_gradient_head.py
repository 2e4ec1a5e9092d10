"""Conformance case for ``jaxloss.fused.linear_policy_gradient_loss``
(jaxloss/fused/_policy_gradient_head.py); its reference and closed form are in
tests/cases/fused_post_training.py with the other objectives through the head."""

from __future__ import annotations

from tests.case import Case
from tests.cases.fused_post_training import _ALL

CASES: list[Case] = [c for c in _ALL if c.loss == "linear_policy_gradient_loss"]
