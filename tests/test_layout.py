"""The package's layout rule (CONTRIBUTING, "Adding a loss"): what several modules share lives in
``jaxloss/_core`` (or a subpackage's own helper module), so no module imports a private name from
a module that defines public losses."""

from __future__ import annotations

import ast
import pathlib

import jaxloss
from jaxloss._core.registry import _REGISTRY

ROOT = pathlib.Path(jaxloss.__file__).parent


def _module_name(path: pathlib.Path) -> str:
    parts = ["jaxloss", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_module_imports_a_private_name_from_a_loss_module():
    loss_modules = {info.module for info in _REGISTRY.values()}
    assert "jaxloss._regression" in loss_modules
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        here = _module_name(path).split(".")
        package = here if path.name == "__init__.py" else here[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.ImportFrom) and node.level):
                continue
            base = package[: len(package) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            private = [a.name for a in node.names if a.name.startswith("_")]
            if target in loss_modules and target != ".".join(here) and private:
                found.append(f"{'.'.join(here)} imports {private} from {target}")
    assert found == [], found
