"""NaN propagation on every conformance case at a size where XLA:CPU fuses into its library kernels.

tests/test_conformance.py puts one NaN into each float input of every case at the case's small
shapes. Above a few thousand elements XLA:CPU (jax 0.10.2) hands a reduction and its elementwise
producers to its YNNPACK fusion, whose ``maximum``/``minimum`` (and max-reduction) return the
other operand where one is NaN: a loss that keeps a NaN on small inputs can drop it on large ones.
tests/test_trust_nan_large.py checks a hand-picked list of losses; this file checks every case.

Each case's own inputs are tiled along their batch axes (``Case.vmap_axes``, the axes along
which the conformance suite checks that ``jax.vmap`` gives the batched call, so the tiled call
is the small call repeated) until the first input has at least 2^16 elements. Inputs on that
axis are tiled together (``where=``, ``weights=``, masks, lengths, integer labels, ranking lists
with their ``where``, the CRPS members' axis when the ensemble axis is 0); shared inputs (axis
None: learnable hyperparameters, the fused losses' weight matrices) and hyperparameters are left
alone. Each float input in turn, the first input (the model's output) first, gets one NaN, in one
copy, at the element tests/test_conformance.py poisons for that case (the same draws: it skips
masked items and ignored examples); float32, jitted. Then:

- the values that element feeds (the conformance suite's mask, in that copy) are NaN;
- every other value is bit-for-bit the value of the same jitted loss on the NaN-free inputs;
- ``jax.jit(lambda d: jaxloss.mean(loss(d)))`` is NaN;
- the gradient of that mean w.r.t. the first input is NaN on the entries feeding those values
  (the conformance suite's contract: a NaN in an example's inputs gives that example a NaN
  gradient) and bit-for-bit the NaN-free gradient on every other example.

The expected answers need no float64 reference: a NaN input makes what it feeds NaN and changes
nothing else. Two compiled programs per case (the values with the gradient, and the mean alone),
each run on the clean and the poisoned inputs.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss
from tests.registry import CASES, Case
from tests.test_conformance import _cast, _fed_entries, _is_float, _nan_targets, _rng

SIZE = 1 << 16  # elements of the first input (tiled), at least

#: Cases not run here, each with the reason. None: every case tiles along its batch axes.
EXCLUDED: dict[str, str] = {}

#: Cases that drop a NaN at scale, with the reason they are not fixed (strict: a fix must remove
#: the entry).
XFAIL: dict[str, str] = {}


def _id(case: Case) -> str:
    return f"{case.loss}[{case.id}]"


def _params():
    out = []
    for case in CASES:
        if _id(case) in EXCLUDED:
            continue
        marks = ()
        if _id(case) in XFAIL:
            marks = (pytest.mark.xfail(strict=True, reason=XFAIL[_id(case)]),)
        out.append(pytest.param(case, id=_id(case), marks=marks))
    return out


def test_the_lists_name_cases():
    assert set(EXCLUDED) | set(XFAIL) <= {_id(c) for c in CASES}
    assert not set(EXCLUDED) & set(XFAIL)


def _tile(case: Case, data, copies: int):
    """Every per-example input repeated ``copies`` times along its batch axis."""
    return {k: v if case.vmap_axes.get(k, 0) is None
            else np.concatenate([v] * copies, axis=case.vmap_axes.get(k, 0))
            for k, v in data.items()}


def _in_copy(mask: np.ndarray, axis: int, copy: int, copies: int) -> np.ndarray:
    """``mask`` placed in copy ``copy`` of ``copies`` along ``axis``, False elsewhere."""
    zero = np.zeros_like(mask)
    return np.concatenate([mask if i == copy else zero for i in range(copies)], axis=axis)


@pytest.mark.parametrize("case", _params())
def test_one_nan_at_scale_reaches_its_values_mean_and_gradient(case: Case):
    small = {k: np.asarray(v) for k, v in _cast(case.make(_rng(case)), jnp.float32).items()}
    first = case.positional[0]
    first_axis = case.vmap_axes.get(first, 0)
    copies = math.ceil(SIZE / small[first].size)
    copy = copies // 2  # the copy that gets the NaN
    clean = _tile(case, small, copies)

    # Two programs, each compiled once: the values with the gradient of their mean w.r.t. the
    # first input, and the mean alone (where XLA fuses the reduction into the loss's producers).
    @jax.jit
    def values_and_gradient(data):
        def loss(x):
            return case.call({**data, first: x})

        return loss(data[first]), jax.grad(lambda x: jaxloss.mean(loss(x)))(data[first])

    mean = jax.jit(lambda data: jaxloss.mean(case.call(data)))

    want, g_want = map(np.asarray, values_and_gradient(clean))
    assert np.isfinite(want).all() and np.isfinite(g_want).all()
    assert np.isfinite(float(mean(clean)))
    # Each float input in turn, at the element tests/test_conformance.py poisons (the same
    # draws): it respects the case's `where`, masks and ignored labels.
    value_shape = np.shape(case.reference(small, case.hyper))
    rng = _rng(case, "nan")
    checked = []
    for name in (n for n, v in small.items() if _is_float(v)):
        target = _nan_targets(case, small, name, value_shape, rng)
        if target is None:
            continue
        idx, value_mask = target
        axis = case.vmap_axes.get(name, 0)
        poisoned = clean[name].copy()
        if axis is None:  # a shared input (a learnable hyperparameter): every counted value
            poisoned[idx] = np.nan
            nan_values = np.concatenate([value_mask] * copies, axis=0)
        else:
            big_idx = list(idx)
            big_idx[axis] += copy * small[name].shape[axis]
            poisoned[tuple(big_idx)] = np.nan
            nan_values = _in_copy(value_mask, 0, copy, copies)
        data = {**clean, name: poisoned}
        got, g_got = map(np.asarray, values_and_gradient(data))
        where = f"NaN in `{name}` at {idx} of copy {copy} of {copies}"
        assert np.isnan(got[nan_values]).all(), (
            f"{where}: the values it feeds came back {got[nan_values]}")
        np.testing.assert_array_equal(got[~nan_values], want[~nan_values],
                                      err_msg=f"{where}: other values changed")
        assert np.isnan(float(mean(data))), f"{where}: the mean is finite"
        fed = _fed_entries(case, clean, first, nan_values)
        assert np.isnan(g_got[fed]).all(), (
            f"{where}: d mean/d{first} on the entries feeding those values came back "
            f"{g_got[fed][~np.isnan(g_got[fed])][:8]} (finite)")
        if first_axis is not None and axis is not None and case.nan_scope != "all":
            examples = np.flatnonzero(nan_values.reshape(len(nan_values), -1).any(axis=1))
            keep = np.setdiff1d(np.arange(g_got.shape[first_axis]), examples)
            np.testing.assert_array_equal(
                np.take(g_got, keep, axis=first_axis), np.take(g_want, keep, axis=first_axis),
                err_msg=f"{where}: d mean/d{first} of other examples changed")
        checked.append(name)
    assert first in checked, f"the first input `{first}` was not poisoned"
