"""Every Python code block of docs/designing-losses.md runs, in order, in one namespace."""

from __future__ import annotations

import contextlib
import io
import pathlib
import re

import jax

GUIDE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "designing-losses.md"


def test_guide_code_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.S)
    assert len(blocks) >= 5
    namespace: dict = {}
    out = io.StringIO()
    with jax.enable_x64(False), contextlib.redirect_stdout(out):
        for block in blocks:
            exec(compile(block, str(GUIDE), "exec"), namespace)
    printed = out.getvalue()
    assert "nan" not in printed.lower(), printed
    assert namespace["total"].shape == ()
