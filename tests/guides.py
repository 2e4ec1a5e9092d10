"""Runs the Python code blocks of a documentation page (shared by the guide tests)."""

from __future__ import annotations

import contextlib
import io
import pathlib
import re

import jax

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"


def run_python_blocks(page: str) -> tuple[str, dict, str]:
    """Executes every ```python block of docs/<page>, in order, in one namespace, in JAX's
    default float32 mode. Returns (the page's text, the namespace, what the blocks printed);
    fails if the page has no Python block or if anything printed contains "nan"."""
    path = DOCS / page
    text = path.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, f"{page} has no python code block"
    namespace: dict = {}
    out = io.StringIO()
    with jax.enable_x64(False), contextlib.redirect_stdout(out):
        for block in blocks:
            exec(compile(block, str(path), "exec"), namespace)
    printed = out.getvalue()
    assert "nan" not in printed.lower(), printed
    return text, namespace, printed
