"""The documentation site (mkdocs.yml, docs/): every public name has an API entry, every public
callable's docstring has the sections a reference page needs, and the guides' code runs.

The strict build itself (`python -m mkdocs build --strict`, which fails on an entry that does
not resolve, a broken link or a docstring the parser cannot read) and the search-index check run
in .ci/run, not here: they need the `docs` extra and take a while.
"""

from __future__ import annotations

import importlib.util
import inspect
import pathlib
import re
from types import ModuleType

import pytest

import jaxloss
from tests.guides import run_python_blocks

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("api_pages", ROOT / "docs/_hooks/api_pages.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


API = _hook()


def test_every_public_name_has_an_api_entry():
    documented = {n for names in API.plan().values() for n in names}
    aliased = {a for names in API.aliases().values() for a in names}
    public = set(API.all_public_names())
    assert public, "no public names found"
    assert public == documented | aliased, sorted(public - documented - aliased)
    # Every public subpackage is found without a hand-kept list.
    for sub in ("jaxloss.multitask", "jaxloss.fused"):
        assert any(n.startswith(sub + ".") for n in public), sub


def _callables() -> list[tuple[str, object]]:
    out = []
    for qualified in API.all_public_names():
        package, name = qualified.rsplit(".", 1)
        obj = getattr(importlib.import_module(package), name)
        if callable(obj) and (inspect.isfunction(obj) or inspect.isclass(obj)):
            out.append((qualified, obj))
    return out


CALLABLES = _callables()


def _parameters(obj) -> list[str]:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    return [p for p in sig.parameters if p not in ("self", "cls")]


@pytest.mark.parametrize("qualified,obj", CALLABLES, ids=[q for q, _ in CALLABLES])
def test_docstring_has_reference_sections(qualified, obj):
    doc = inspect.getdoc(obj) or ""
    lines = doc.splitlines()
    assert lines and lines[0].strip(), f"{qualified}: no one-line summary"
    assert len(lines) == 1 or not lines[1].strip(), f"{qualified}: summary is not one line"
    if _parameters(obj) and not inspect.isclass(obj):
        assert re.search(r"^Args:$", doc, re.M), f"{qualified}: no `Args:` section"
    if inspect.isfunction(obj):
        assert re.search(r"^Returns:$", doc, re.M), f"{qualified}: no `Returns:` section"
    if inspect.isfunction(obj):  # classes (states, solver objects) are shown by their makers
        assert re.search(r"^Examples:$", doc, re.M) and ">>>" in doc, (
            f"{qualified}: no `Examples:` section with a runnable example")
    name = qualified.rsplit(".", 1)[1]
    if qualified == f"jaxloss.{name}" and name in jaxloss.LOSSES:
        assert "Gradient" in doc, f"{qualified}: a loss states its closed-form gradient"


GUIDES = ["getting-started.md", "multitask.md", "post-training.md"]


@pytest.mark.parametrize("page", GUIDES)
def test_guide_code_blocks_run(page):
    _, namespace, printed = run_python_blocks(page)
    if page == "getting-started.md":
        w = namespace["params"]["w"]
        assert abs(float(w[0]) - 1.0) < 0.1 and abs(float(w[1]) + 2.0) < 0.1, w
    if page == "multitask.md":
        assert printed.strip().splitlines()[-1] == "True", printed


def test_nav_pages_exist():
    text = (ROOT / "mkdocs.yml").read_text()
    for page in re.findall(r":\s*([\w/-]+\.md)\s*$", text, flags=re.M):
        assert (ROOT / "docs" / page).is_file(), page
