"""Tests of autograder/core.py: the shared harness and verdict machinery."""
import sys
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from autograder.core import Report, Score, as_array, call_student, close, compare, judge_purity, ratio_hint


def test_call_student_captures_output_warnings_and_exceptions(capsys):
    def noisy(x):
        print("out")
        print("err", file=sys.stderr)
        warnings.warn("careful")
        return x + 1
    call = call_student(noisy, 1)
    assert call.ok and call.value == 2 and "out" in call.output and "err" in call.output and "careful" in call.output
    assert capsys.readouterr() == ("", "")
    assert "not implemented yet" in call_student(lambda: (_ for _ in ()).throw(NotImplementedError())).error
    assert "sys.exit" in call_student(sys.exit, 3).error


def test_call_student_lets_keyboard_interrupt_through():
    def interrupted():
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        call_student(interrupted)


class Liar(np.ndarray):
    def __eq__(self, other):
        return True


@pytest.mark.parametrize("value", [Liar(3), "1.0", {"a": 1}, object(), None])
def test_as_array_refuses_what_is_not_a_plain_array(value):
    with pytest.raises(TypeError):
        as_array(value)


def test_as_array_reads_tensors_and_lists_as_float64_copies():
    t = torch.arange(3, dtype=torch.float32, requires_grad=True)
    a = as_array(t * 1)
    assert a.dtype == np.float64 and a.tolist() == [0, 1, 2]
    assert as_array([[1, 2]]).shape == (1, 2)


@given(st.lists(st.floats(-1e6, 1e6, allow_subnormal=False), min_size=1, max_size=20), st.floats(1e-8, 1e-2))
def test_close_accepts_within_and_rejects_beyond_the_tolerance(values, rtol):
    expected = np.array(values)
    scale = np.abs(expected).max()
    assert close(expected + 0.5 * rtol * scale, expected, rtol=rtol)[0]
    if scale > 0:
        assert not close(expected + 2 * rtol * scale, expected, rtol=rtol)[0]


def test_close_names_shape_nan_and_the_worst_entry():
    assert "shape" in close(np.zeros(2), np.zeros(3), rtol=1e-3)[1]
    assert "non-finite" in close(np.array([1.0, np.nan]), np.ones(2), rtol=1e-3)[1]
    assert "index (1,)" in close(np.array([1.0, 5.0]), np.ones(2), rtol=1e-3)[1]


def test_compare_names_the_matching_mistake_then_a_constant_factor():
    expected = np.array([1.0, 2.0, 3.0])
    ok, msg = compare(expected * 2, expected, what="kernel", rtol=1e-6, variants={"doubled": expected * 2})
    assert not ok and "hint: doubled" in msg
    ok, msg = compare(expected * 3, expected, what="kernel", rtol=1e-6)
    assert not ok and "about 3 times" in msg
    assert ratio_hint(expected.reshape(1, 3), expected.reshape(3, 1), "K")[1].endswith("transposed?")


def test_purity_is_not_granted_to_a_function_that_never_returned():
    assert judge_purity([("a", {"value": 1, "modified": False})]) == (True, "")
    assert not judge_purity([("a", {"error": "NotImplementedError"})])[0]
    assert not judge_purity([("a", {"value": 1, "modified": True})])[0]


def test_report_scores_partial_credit_rounded_down_and_keeps_stderr_out(capsys):
    report = Report("part", 3, "all")
    report.check("good", lambda: (True, ""))
    report.check("bad", lambda: (False, "expected 1, got 2"))
    report.check("crashes", lambda: 1 / 0)
    report.check("warns", lambda: (warnings.warn("from a reference") or print("x", file=sys.stderr)) or (True, ""))
    score = report.score()
    out, err = capsys.readouterr()
    assert err == ""
    assert isinstance(score, Score) and repr(score) == "1.5" and float(score) == 1.5
    assert "[FAIL] bad" in out and "expected 1, got 2" in out and "ZeroDivisionError" in out
    assert Report("p", 1, verdicts=[]).earned == 0
    thirds = Report("p", 1)
    for ok in (True, True, False):
        thirds.check("x", lambda ok=ok: (ok, ""))
    assert thirds.earned == 0.66


def test_purity_is_not_credited_when_no_answer_was_right():
    assert not judge_purity([("a", {"value": 0, "modified": False})], credited=False)[0]
