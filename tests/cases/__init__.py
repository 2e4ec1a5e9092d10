"""Conformance cases, one file per family module: ``jaxloss/_focal.py`` -> ``tests/cases/focal.py``,
``jaxloss/fused/_linear_ce.py`` -> ``tests/cases/fused_linear_ce.py``.

Each file defines ``CASES: list[Case]`` (see tests/case.py and tests/registry.py for the format)
and, when its family exports public names that are not losses, ``NOT_LOSSES: set[str]``.
:func:`collect` imports every file here, so a new family's cases need no import line anywhere.
NumPy helpers that several files share live in tests/reference.py; a case builder that several
files share lives in a module whose name starts with an underscore (not collected). A cases file
never imports jaxloss's private modules to compute a reference.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def modules() -> list[ModuleType]:
    """Every cases module, by file name."""
    return [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name)
        if not info.name.startswith("_")
    ]


def collect() -> tuple[list, set[str]]:
    """(every case, every public non-loss name declared by a cases file)."""
    cases: list = []
    not_losses: set[str] = set()
    for module in modules():
        cases.extend(module.CASES)
        not_losses |= set(getattr(module, "NOT_LOSSES", ()))
    return cases, not_losses
