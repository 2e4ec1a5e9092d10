"""The test-speed XLA flags are detected, not assumed: conftest keeps a flag only if a child
process with it in XLA_FLAGS imports jax and compiles (XLA aborts on a flag it does not know)."""

from __future__ import annotations

import json
import os

from tests.conftest import _PROBE_ENV, _probe_key, accepted_flags

KNOWN = "--xla_backend_optimization_level=0"  # in every XLA jaxloss supports
UNKNOWN = "--xla_jaxloss_no_such_flag=true"


def test_an_unknown_flag_is_left_out_and_a_known_one_kept():
    assert accepted_flags("", [KNOWN, UNKNOWN]) == {KNOWN: True, UNKNOWN: False}


def test_every_flag_is_dropped_when_the_callers_flags_already_abort():
    # the caller's own XLA_FLAGS are part of each probe: nothing is added on top of a broken base
    assert accepted_flags(UNKNOWN, [KNOWN]) == {KNOWN: False}


def test_the_session_recorded_its_verdicts_for_child_processes():
    cache = json.loads(os.environ[_PROBE_ENV]) if _PROBE_ENV in os.environ else None
    if os.environ.get("JAXLOSS_TEST_XLA_OPT") == "default":
        assert cache is None or cache["key"] == _probe_key()
        return
    assert cache is not None and cache["key"] == _probe_key()
    flags = os.environ.get("XLA_FLAGS", "")
    for flag, ok in cache["verdicts"].items():
        assert (flag in flags) == ok, (flag, ok, flags)
