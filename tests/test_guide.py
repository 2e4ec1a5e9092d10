"""Every Python code block of docs/designing-losses.md runs, in order, in one namespace."""

from __future__ import annotations

import re

from tests.guides import run_python_blocks


def test_guide_code_blocks_run():
    text, namespace, _ = run_python_blocks("designing-losses.md")
    assert len(re.findall(r"```python\n", text)) >= 5
    assert namespace["total"].shape == ()
