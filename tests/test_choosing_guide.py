"""Every Python code block of docs/choosing-a-loss.md runs, in order, in one namespace, and the
printed figures quoted in the page are what the blocks print."""

from __future__ import annotations

import re

from tests.guides import run_python_blocks


def test_guide_code_blocks_run_and_print_what_the_page_quotes():
    text, _, printed = run_python_blocks("choosing-a-loss.md")
    assert len(re.findall(r"```python\n", text)) >= 5
    # Output quoted in the page (the unlabelled blocks right after a python block) is printed.
    quoted = re.findall(r"```python\n.*?```\n\n```\n(.*?)```", text, flags=re.S)
    assert quoted
    for chunk in quoted:
        for line in chunk.strip().splitlines():
            assert line in printed, f"quoted but not printed: {line!r}\n{printed}"
