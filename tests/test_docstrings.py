"""Every docstring example runs and prints what it says (in JAX's default float32 mode)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import jax
import pytest

import jaxloss

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(jaxloss.__path__, prefix="jaxloss.")
    if m.name != "jaxloss.__main__"
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    with jax.enable_x64(False):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


def test_every_public_function_has_an_example():
    missing = [n for n in jaxloss.LOSSES if ">>>" not in (getattr(jaxloss, n).__doc__ or "")]
    assert not missing, f"public losses without a docstring example: {missing}"
