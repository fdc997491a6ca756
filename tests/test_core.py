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


# --------------------------------------------------------------------------------------------------------------
# Feedback that tells the truth (issue 12, point 3)
# --------------------------------------------------------------------------------------------------------------
def _report(outcomes, tests="all", message="wrong"):
    report = Report("part", 2, tests)
    for i, ok in enumerate(outcomes):
        report.check(f"case {i}", lambda ok=ok: (ok, "" if ok else message))
    return report


@pytest.mark.parametrize("outcomes, tests, headline", [
    ([False] * 8, "all", "part: none of the 8 checks (visible and hidden) passed -> 0 of 2 points"),
    ([True] * 8, "all", "part: all 8 checks (visible and hidden) passed -> 2 of 2 points"),
    ([True, False, False, True], "visible", "part: 2 of 4 visible checks passed -> 1 of 2 points"),
    ([True], "visible", "part: the visible check passed -> 2 of 2 points"),
    ([False], "all", "part: the check (visible and hidden) failed -> 0 of 2 points"),
])
def test_headline_is_worded_from_the_counts(outcomes, tests, headline):
    """Before issue 12: "0 of 8 all checks passed"."""
    text = _report(outcomes, tests).text()
    assert text.splitlines()[0] == headline
    assert "all checks passed" not in text


def test_a_repeated_failure_message_is_shown_once():
    text = _report([False, False, True, False], message="expected 1, got 2\nhint: off by one").text()
    assert text.count("expected 1, got 2") == 1 and text.count("hint: off by one") == 1
    assert text.count("(same as above)") == 1 and "(same message as for: case 0)" in text


def _topic(visible):
    from autograder.core import Part, Topic
    return Topic("toy", [Part("square", 2, visible, purity=None)])


def test_an_untouched_part_says_not_implemented_once(capsys):
    """Before issue 12 an untouched notebook printed one "not implemented yet" per check (22 lines for ntk)."""
    def visible(report, fn):
        for i in range(5):
            out = report.call(fn, i, what=f"square({i})")
            report.judge(f"square({i})", out, lambda v, i=i: (v == i * i, "wrong"))

    def stub(x):
        raise NotImplementedError("replace this line")
    _topic(visible).check("square", stub)
    out = capsys.readouterr().out
    assert out.count("not implemented yet") == 1 and len(out.strip().splitlines()) == 1, out
    assert out.startswith("square: not implemented yet") and "0 of 2 points" in out


def test_the_score_reads_as_a_score_and_nbgrader_still_reads_a_number():
    """The grade cell's value: text/plain stays the bare number (nbgrader's partial credit is
    float(text/plain)), the rich display that JupyterLab, Colab and the feedback pages show reads as a score."""
    import pickle
    from IPython.core.formatters import DisplayFormatter
    score = Score(1.5, 2)
    data, _ = DisplayFormatter().format(score)
    assert data["text/plain"] == "1.5" and float(data["text/plain"]) == 1.5
    assert "1.5 of 2 points" in data["text/markdown"] and "1.5 of 2 points" in data["text/html"]
    assert pickle.loads(pickle.dumps(score)).describe() == "1.5 of 2 points"
    assert Score(1, 1).describe() == "1 of 1 point"


def test_what_student_code_prints_is_shown_once_and_truncated(capsys):
    def visible(report, fn):
        for i in range(3):
            report.judge(f"square({i})", report.call(fn, i, what=f"square({i})"), lambda v, i=i: (v == i * i, "no"))

    def chatty(x):
        for j in range(10):
            print(f"debug {x} {j}")
        return x * x
    _topic(visible).check("square", chatty)
    out = capsys.readouterr().out
    assert "Your code printed during these checks (30 lines, the first 12 shown):" in out
    assert "    | debug 0 0" in out and "debug 2 9" not in out


def test_an_error_names_the_line_of_the_student_code():
    def student(x):
        y = x + 1
        return y / 0
    error = call_student(student, 1).error
    assert error.startswith("ZeroDivisionError: division by zero (line ")
    assert "of test_core.py in student: return y / 0)" in error
