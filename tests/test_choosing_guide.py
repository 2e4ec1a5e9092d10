"""Every Python code block of docs/choosing-a-loss.md runs, in order, in one namespace, and the
printed figures quoted in the page are what the blocks print; the figure the page draws holds
the curves it says (checked against closed forms)."""

from __future__ import annotations

import re

import numpy as np

from tests.guides import run_python_blocks


def test_guide_code_blocks_run_and_print_what_the_page_quotes():
    text, namespace, printed = run_python_blocks("choosing-a-loss.md")
    assert len(re.findall(r"```python\n", text)) >= 5
    # Output quoted in the page (the unlabelled blocks right after a python block) is printed.
    quoted = re.findall(r"```python\n.*?```\n\n```\n(.*?)```", text, flags=re.S)
    assert quoted
    for chunk in quoted:
        for line in chunk.strip().splitlines():
            assert line in printed, f"quoted but not printed: {line!r}\n{printed}"
    # "Drawing a loss": the rows hold the curves of the losses named, left the loss, right ψ.
    fig = namespace["fig"]
    assert len(fig.axes) == 3 * 2
    demand, squared = fig.axes[0].lines[:2]
    r = demand.get_xdata()
    w = np.where(r < 0, 4.0, 1.0)  # under-prediction (r < 0) costs 4 times as much
    np.testing.assert_allclose(demand.get_ydata(), w * r**2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), 2 * w * r, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(squared.get_ydata(), r**2, rtol=1e-5, atol=1e-6)
    huber_loss = fig.axes[2].lines[0]
    r, d = huber_loss.get_xdata(), 0.05
    value = np.where(np.abs(r) <= d, 0.5 * r**2, d * (np.abs(r) - 0.5 * d))
    np.testing.assert_allclose(huber_loss.get_ydata(), value, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(fig.axes[3].lines[0].get_ydata(), np.clip(r, -d, d), atol=1e-7)
    # Focal loss, label 1, γ = 2 (its default): -(1 - p)² log p with p = σ(z).
    focal = fig.axes[4].lines[0]
    z = focal.get_xdata()
    p = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(focal.get_ydata(), -((1 - p) ** 2) * np.log(p), rtol=1e-4)
