"""Optional dependencies of the command line (``demo`` and ``plot`` extras), imported on demand."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingExtraError", "require"]

# import name -> (distribution name, extra that installs it)
_PACKAGES = {
    "sklearn": ("scikit-learn", "demo"),
    "matplotlib": ("matplotlib", "plot"),
}


class MissingExtraError(ImportError):
    """An optional dependency is missing; the message says which pip command installs it."""


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Imports ``module`` or raises :class:`MissingExtraError` naming the pip command to run.

    ``extra`` is the jaxloss extra that installs it (``demo`` also installs matplotlib).
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        dist = _PACKAGES.get(module.split(".")[0], (module, extra))[0]
        raise MissingExtraError(
            f"{purpose} needs {dist}, which is not installed ({err}); install the '{extra}' "
            f"extra: pip install 'jaxloss[{extra}]' (from a source checkout: "
            f"pip install -e '.[{extra}]')"
        ) from err
