"""The naming rule (CONTRIBUTING, "Names") and the 0.1 names it changed."""

from __future__ import annotations

import re
import warnings

import pytest

import jaxloss
import jaxloss.app

# What a loss returns, as the last word(s) of its name; optionally qualified by _with_...
QUANTITY = re.compile(
    r"(_loss|_error|cross_entropy|divergence|_nll|_score|_cost|log_probs)(_with_\w+)?$|^crps_"
)
# The exceptions CONTRIBUTING names: optax's own name, and the fused distillation heads.
EXCEPTIONS = {"log_cosh", "linear_distillation", "linear_distillation_topk"}


def test_every_registered_loss_follows_the_naming_rule():
    off = sorted(n for n in jaxloss.LOSSES if not QUANTITY.search(n) and n not in EXCEPTIONS)
    assert off == []


@pytest.mark.parametrize("old", sorted(jaxloss.RENAMED))
def test_an_old_name_gives_the_new_function_with_a_deprecation_warning(old):
    new = jaxloss.RENAMED[old]
    assert new in jaxloss.LOSSES and old not in jaxloss.LOSSES
    assert old not in jaxloss.__all__ and new in jaxloss.__all__
    with pytest.warns(DeprecationWarning, match=rf"jaxloss\.{old} is renamed jaxloss\.{new}"):
        function = getattr(jaxloss, old)
    assert function is getattr(jaxloss, new)


def test_from_import_of_an_old_name_warns_and_an_unknown_name_still_fails():
    with pytest.warns(DeprecationWarning, match="huber_loss"):
        from jaxloss import huber  # noqa: F401
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AttributeError, match="no attribute 'hubber'"):
            jaxloss.hubber  # noqa: B018
        assert not hasattr(jaxloss, "not_a_loss")


def test_the_command_line_maps_an_old_name_with_a_warning():
    with pytest.warns(FutureWarning, match="'huber_loss' since 0.2.0"):
        curves = jaxloss.app.curves("huber:delta=0.5", [-2.0, 0.0, 2.0])
    assert [c.label for c in curves] == ["huber_loss(delta=0.5)"]
    delta = 0.5  # Huber beyond delta: delta * (|r| - delta / 2)
    assert curves[0].value.tolist() == [delta * (2.0 - delta / 2), 0.0, delta * (2.0 - delta / 2)]
