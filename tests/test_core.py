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


# --------------------------------------------------------------------------------------------------------------
# Per-student variants of hidden checks: Part(variant=..., variant_cases=...) (issue 19)
# --------------------------------------------------------------------------------------------------------------
import types  # noqa: E402

from autograder import variants  # noqa: E402
from autograder.core import Part, Topic  # noqa: E402


def _visible(report, fn):
    report.check("visible", lambda: (fn(1) == 2, "wrong"))


def _hidden(report, fn, grading):
    for case in grading.fixed_cases() + report.own_cases(grading):
        report.check(case["name"], lambda case=case: (fn(case["x"]) == 2 * case["x"], "wrong"))


def _part(**kwargs):
    return Part("double", 2, _visible, _hidden, purity=None, **kwargs)


GOOD = dict(variant={"scale": (0.5, 1.5, 2.0), "seed": (1, 2, 3)}, variant_cases="double_cases")


def _grading(tmp_path, monkeypatch, source: str):
    """An instructor module solutions/toyv/grading.py (TFDL_SOURCE_DIR) for a topic 'toyv'."""
    (tmp_path / "toyv").mkdir(exist_ok=True)
    (tmp_path / "toyv" / "grading.py").write_text(source)
    monkeypatch.setenv("TFDL_SOURCE_DIR", str(tmp_path))
    sys.modules.pop("_tfdl_grading_toyv", None)
    from autograder.core import instructor_module
    return instructor_module("toyv")


CASES = '''
def fixed_cases():
    return [dict(name="x = 1", x=1)]

def double_cases(scale, seed):
    return [dict(name=f"x = {scale * seed:g} (scale {scale}, seed {seed})", x=scale * seed)]
'''


@pytest.mark.parametrize("kwargs, message", [
    (dict(variant={"scale": ()}, variant_cases="f"), "non-empty tuple"),
    (dict(variant={"scale": (1, 1.0)}, variant_cases="f"), None),  # "1" and "1.0": distinct as text
    (dict(variant={"scale": (1.0, 1.0)}, variant_cases="f"), "distinct as text"),
    (dict(variant={"not a name": (1,)}, variant_cases="f"), "not a Python name"),
    (dict(variant={"scale": (True, False)}, variant_cases="f"), "not a number or a text"),
    (dict(variant={"scale": (1, 2)}), "needs variant_cases"),
    (dict(variant_cases="f"), "needs variant_cases"),
    (dict(variant=[("scale", (1, 2))], variant_cases="f"), "must be a dict"),
])
def test_a_malformed_variant_declaration_stops_at_import(kwargs, message):
    if message is None:
        _part(**kwargs)
        return
    with pytest.raises(ValueError, match=message):
        _part(**kwargs)
    with pytest.raises(ValueError, match="has none"):
        Part("double", 2, _visible, None, variant={"s": (1,)}, variant_cases="f")


@pytest.mark.parametrize("source, message", [
    (CASES, None),
    ("def fixed_cases():\n    return []\n", "defines no function double_cases(scale, seed)"),
    ("def double_cases(scale, sed):\n    return []\n", "'seed' is not a parameter of double_cases(scale, sed)"),
    ("def double_cases(scale, seed, width):\n    return []\n", "needs 'width', which the variant does not declare"),
    ("def double_cases(scale, seed):\n    return 1 / 0\n", "raised ZeroDivisionError"),
    ("def double_cases(scale, seed):\n    return []\n", "non-empty list"),
    ("def double_cases(scale, seed):\n    return [dict(x=1)]\n", "a dict with a 'name'"),
])
def test_the_instructor_side_of_a_variant_is_checked_before_grading(tmp_path, monkeypatch, source, message):
    problems = _part(**GOOD).problems(_grading(tmp_path, monkeypatch, source))
    if message is None:
        assert problems == []
    else:
        assert problems and any(message in p for p in problems), problems
    assert _part().problems(None) == []  # no variant: nothing to check


def test_validate_source_stops_on_a_variant_whose_case_function_is_missing(tmp_path, monkeypatch):
    """The release and both graders' preflight (release.validate_source) list the problem, so that no student is
    graded with a broken variant."""
    from autograder import release
    from tests.conftest import make_course
    course = make_course(tmp_path, ["toy"])
    broken = Topic("toy", [Part("square", 2, _visible, _hidden, variant={"seed": (1, 2)},
                                variant_cases="no_such_function")])
    monkeypatch.setattr(release, "declared_topic", lambda a: broken)
    problems = release.validate_source(course, "toy")
    assert any("part 'square': variant_cases='no_such_function': grading.py defines no function "
               "no_such_function(seed)" in p for p in problems), problems


def test_each_student_gets_their_own_hidden_case_named_with_their_values(tmp_path, monkeypatch):
    _grading(tmp_path, monkeypatch, CASES)
    topic = Topic("toyv", [_part(**GOOD)])
    ids = [f"s{i}" for i in range(40)]
    drawn = {s: variants.values("double", s, GOOD["variant"]) for s in ids}
    assert len({tuple(v.values()) for v in drawn.values()}) > 4  # of 9: the draws spread
    assert all(isinstance(v["scale"], float) and isinstance(v["seed"], int) for v in drawn.values())
    a = ids[0]
    b = next(s for s in ids if drawn[s]["scale"] * drawn[s]["seed"] != drawn[a]["scale"] * drawn[a]["seed"])
    for student in (a, b):
        v = drawn[student]
        report = topic.report("double", lambda x: 2 * x, "all", student=student)
        assert report.earned == 2 and report.student == student and report.variant == v
        own = [c.name for c in report.verdicts if c.name.startswith("your own case")]
        assert own == [f"your own case (drawn from course id {student!r}): x = {v['scale'] * v['seed']:g} "
                       f"(scale {v['scale']}, seed {v['seed']})"]
        with variants.grading_student(student):  # the grader's way: the graded student's id
            assert topic.report("double", lambda x: 2 * x, "all").variant == v
    # a function that hard-codes a's own answer (right for a) is wrong for b
    x_a = drawn[a]["scale"] * drawn[a]["seed"]
    hard_coded = lambda x: 2 * x_a if x not in (1,) else 2  # noqa: E731
    assert topic.report("double", hard_coded, "all", student=a).earned == 2
    assert topic.report("double", hard_coded, "all", student=b).earned < 2


def test_without_a_graded_student_the_default_id_is_used(tmp_path, monkeypatch):
    _grading(tmp_path, monkeypatch, CASES)
    monkeypatch.delenv("TFDL_STUDENT", raising=False)
    topic = Topic("toyv", [_part(**GOOD)])
    report = topic.report("double", lambda x: 2 * x, "all")
    assert report.student == variants.DEFAULT_ID == ""
    assert report.variant == variants.values("double", "", GOOD["variant"])
    assert any(v.name.startswith("your own case (the default values: no student is being graded)")
               for v in report.verdicts)
    monkeypatch.setenv("TFDL_STUDENT", "carol")  # plain nbgrader's kernel
    assert topic.report("double", lambda x: 2 * x, "all").student == "carol"


def test_the_visible_checks_say_which_values_the_hidden_checks_use(tmp_path, monkeypatch, capsys):
    _grading(tmp_path, monkeypatch, CASES)
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    topic = Topic("toyv", [_part(**GOOD)])
    main = sys.modules["__main__"]
    monkeypatch.setattr(main, "STUDENT_ID", "", raising=False)
    assert float(topic.check("double", lambda x: 2 * x)) == 2
    out = capsys.readouterr().out
    assert "Your hidden checks of double use your own values of scale, seed: type your course id" in out, out
    monkeypatch.setattr(main, "STUDENT_ID", "alice")
    v = variants.values("double", "alice", GOOD["variant"])
    topic.check("double", lambda x: 2 * x)
    assert (f"Your hidden checks of double use scale = {v['scale']}, seed = {v['seed']}, drawn from your course "
            "id 'alice'.") in capsys.readouterr().out
    monkeypatch.setenv("JUPYTERHUB_USER", "hub-bob")  # on the school's hub, the user name
    topic.check("double", lambda x: 2 * x)
    assert "drawn from your course id 'hub-bob'" in capsys.readouterr().out
    topic.check("double", lambda x: 2 * x, "all")  # graded: the case names say it, no extra line
    assert "Your hidden checks" not in capsys.readouterr().out


def test_a_part_without_a_variant_is_unchanged(tmp_path, monkeypatch):
    _grading(tmp_path, monkeypatch, CASES)
    report = Topic("toyv", [_part()]).report("double", lambda x: 2 * x, "all", student="alice")
    assert report.variant == {} and not report.notes and [v.name for v in report.verdicts] == ["visible", "x = 1"]
