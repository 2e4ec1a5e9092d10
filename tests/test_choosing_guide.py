"""Every Python code block of docs/choosing-a-loss.md runs, in order, in one namespace, and the
printed figures quoted in the page are what the blocks print."""

from __future__ import annotations

import contextlib
import io
import pathlib
import re

import jax

GUIDE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "choosing-a-loss.md"


def test_guide_code_blocks_run_and_print_what_the_page_quotes():
    text = GUIDE.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 5
    namespace: dict = {}
    out = io.StringIO()
    with jax.enable_x64(False), contextlib.redirect_stdout(out):
        for block in blocks:
            exec(compile(block, str(GUIDE), "exec"), namespace)
    printed = out.getvalue()
    assert "nan" not in printed.lower(), printed
    # Output quoted in the page (the unlabelled blocks right after a python block) is printed.
    quoted = re.findall(r"```python\n.*?```\n\n```\n(.*?)```", text, flags=re.S)
    assert quoted
    for chunk in quoted:
        for line in chunk.strip().splitlines():
            assert line in printed, f"quoted but not printed: {line!r}\n{printed}"
