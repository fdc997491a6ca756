"""autograder.submission: what grading one submission shares between students, and what it never shares.

The instructor's references on the instructor's own inputs are computed once per grading process and replayed
(issue 20); these tests prove that a replay is indistinguishable from computing again: the same value (a fresh
copy), the same random generators' states afterwards, and no replay at all for a call whose result depends on
the generators' incoming states or that changes its arguments.
"""
from __future__ import annotations

import random

import numpy as np
import torch

from autograder.submission import _References

CALLS = []


def pure(x, scale=2.0):
    CALLS.append("pure")
    return {"value": np.asarray(x) * scale, "list": [1, 2]}


def draws(n):
    CALLS.append("draws")
    return torch.randn(n), np.random.rand(n)


def seeds_itself(n):
    CALLS.append("seeds_itself")
    torch.manual_seed(7)
    return torch.nn.Linear(n, 1), torch.randn(n)


def changes_its_argument(a):
    CALLS.append("changes")
    a += 1
    return a.sum()


def _states():
    return (torch.get_rng_state().clone(), np.random.get_state()[1].copy(), random.getstate())


def test_a_pure_reference_is_computed_once_and_each_caller_gets_its_own_copy():
    refs, CALLS[:] = _References(), []
    first = refs.call(pure, (np.arange(3.0),), {"scale": 3.0})
    first["list"].append("changed by a check")  # a check that changes what it got changes nothing for the next
    again = refs.call(pure, (np.arange(3.0),), {"scale": 3.0})
    assert CALLS == ["pure"] and refs.hits == 1
    np.testing.assert_array_equal(again["value"], [0.0, 3.0, 6.0])
    assert again["list"] == [1, 2]
    other = refs.call(pure, (np.arange(3.0),), {"scale": 4.0})  # other arguments: another call
    assert CALLS == ["pure", "pure"] and other["value"][1] == 4.0


def test_a_call_that_draws_from_the_incoming_generator_states_is_never_replayed():
    refs, CALLS[:] = _References(), []
    torch.manual_seed(1)
    a, _ = refs.call(draws, (4,), {})
    torch.manual_seed(2)
    b, _ = refs.call(draws, (4,), {})
    torch.manual_seed(2)
    c, _ = draws(4)
    assert refs.hits == 0 and not torch.equal(a, b) and torch.equal(b, c)


def test_a_call_that_seeds_itself_is_replayed_with_the_generators_final_states():
    refs, CALLS[:] = _References(), []
    torch.manual_seed(11)
    np.random.seed(3)
    model, x = refs.call(seeds_itself, (3,), {})
    after_first = _states()
    torch.manual_seed(12)
    np.random.seed(4)
    numpy_before = np.random.get_state()[1].copy()
    model2, x2 = refs.call(seeds_itself, (3,), {})
    assert refs.hits == 1
    assert torch.equal(x, x2) and torch.equal(model.weight, model2.weight)
    # torch's generator ends where the call leaves it; numpy's, which the call does not use, is left alone
    assert torch.equal(torch.get_rng_state(), after_first[0])
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_before)


def test_a_call_that_changes_its_arguments_is_not_remembered():
    refs, CALLS[:] = _References(), []
    for _ in range(2):
        a = np.zeros(3)
        assert refs.call(changes_its_argument, (a,), {}) == 3.0
        np.testing.assert_array_equal(a, np.ones(3))  # the change happened both times
    assert CALLS == ["changes", "changes"] and refs.hits == 0


def test_equal_tensors_make_the_same_call_although_their_pickles_differ():
    refs, CALLS[:] = _References(), []
    refs.call(pure, (torch.arange(4.0),), {})
    torch.set_rng_state(torch.get_rng_state())  # (a torch pickle's bytes change with such things)
    refs.call(pure, (torch.arange(4.0).clone(),), {})
    refs.call(pure, (torch.arange(4.0).double(),), {})  # another dtype: another call
    assert CALLS == ["pure", "pure"] and refs.hits == 1
