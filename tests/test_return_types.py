"""Functions whose return type a flag switches (``return_aux``, ``return_entropy``) carry the three
``typing.overload``s a type checker needs, and they agree with the implementation.

What a type checker then infers for a call is checked by mypy in the lint leg of .ci/run
(``tests/type_checks/user_script.py`` pins each result with ``typing.assert_type``); this file
checks what mypy cannot: that no such public function lacks its overloads, and that the overloads
keep the implementation's parameters (a parameter added to one and not the others), here at run
time through ``typing.get_overloads``. The returned values themselves are tested per family
(``return_aux=True`` in tests/test_post_training.py, ``return_entropy=True`` in
tests/test_fused_lm.py).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import typing
from typing import Literal

import jax
import pytest

import jaxloss
import jaxloss.fused

FLAGS = ("return_aux", "return_entropy")
AUX = tuple[jax.Array, dict[str, jax.Array]]
PAIR = tuple[jax.Array, jax.Array]
#: What the flag set to True returns, by flag.
WITH_FLAG = {"return_aux": AUX, "return_entropy": PAIR}


def _public_functions() -> list[tuple[str, typing.Any]]:
    packages = [jaxloss] + [
        importlib.import_module(f"jaxloss.{info.name}")
        for info in pkgutil.iter_modules(jaxloss.__path__)
        if info.ispkg and not info.name.startswith("_")
    ]
    found: dict[int, tuple[str, typing.Any]] = {}
    for package in packages:
        for name in package.__all__:
            obj = getattr(package, name)
            if inspect.isfunction(obj):
                found.setdefault(id(obj), (f"{package.__name__}.{name}", obj))
    return list(found.values())


def _flag(fn: typing.Any) -> str | None:
    params = inspect.signature(fn).parameters
    named = [f for f in FLAGS if f in params]
    if named:
        return named[0]
    for overload in typing.get_overloads(fn):  # a flag passed on through **kwargs
        named = [f for f in FLAGS if f in inspect.signature(overload).parameters]
        if named:
            return named[0]
    return None


SWITCHED = [(q, fn, flag) for q, fn in _public_functions() if (flag := _flag(fn)) is not None]


def test_the_flagged_functions_are_found():
    found = {id(fn) for _, fn, _ in SWITCHED}
    for expected in (
        jaxloss.dpo_loss,
        jaxloss.kto_loss,
        jaxloss.policy_gradient_loss,
        jaxloss.token_log_probs,
        jaxloss.fused.linear_log_probs,
        jaxloss.fused.linear_policy_gradient_loss,
        jaxloss.fused.vocab_parallel_linear_log_probs,
    ):
        assert id(expected) in found, expected.__name__
    assert len(SWITCHED) >= 15


@pytest.mark.parametrize("qualified,fn,flag", SWITCHED, ids=[q for q, _, _ in SWITCHED])
def test_overloads_type_the_flag(qualified, fn, flag):
    overloads = typing.get_overloads(fn)
    assert len(overloads) == 3, f"{qualified}: {len(overloads)} overloads, expected 3"
    hints = [typing.get_type_hints(o) for o in overloads]
    with_flag = WITH_FLAG[flag]
    assert [h[flag] for h in hints] == [Literal[False], Literal[True], bool], qualified
    assert [h["return"] for h in hints] == [jax.Array, with_flag, jax.Array | with_flag], qualified
    # Only the default overload leaves the flag out; the others need it spelled.
    defaults = [inspect.signature(o).parameters[flag].default for o in overloads]
    assert defaults == [Ellipsis, inspect.Parameter.empty, inspect.Parameter.empty], qualified


@pytest.mark.parametrize("qualified,fn,flag", SWITCHED, ids=[q for q, _, _ in SWITCHED])
def test_overloads_keep_the_implementation_parameters(qualified, fn, flag):
    impl = inspect.signature(fn).parameters
    for overload in typing.get_overloads(fn):
        params = dict(inspect.signature(overload).parameters)
        if flag not in impl:  # passed on through **kwargs: named in the overloads only
            assert params.pop(flag).kind is inspect.Parameter.KEYWORD_ONLY, qualified
        assert [(p.name, p.kind) for p in params.values()] == [
            (p.name, p.kind) for p in impl.values()
        ], qualified
        hints = typing.get_type_hints(overload)
        impl_hints = typing.get_type_hints(fn)
        for name, p in params.items():
            if name != flag:
                assert hints.get(name) == impl_hints.get(name), f"{qualified}: {name}"
                has_default = p.default is not inspect.Parameter.empty
                assert has_default == (impl[name].default is not inspect.Parameter.empty), (
                    f"{qualified}: {name}")
