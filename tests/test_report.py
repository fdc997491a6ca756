"""autograder.report: the instructor's report of an assignment (distribution, parts, hints, flags)."""
from __future__ import annotations

import csv

from autograder.report import summary, write_report
from autograder.results import CheckResult, PartResult, SubmissionResult
from tests.conftest import make_course


def _result(student, a, b, checks_b=(), flags=(), notes=()):
    """The report reads each part's checks as data; the printed feedback is not parsed (it says something else
    here on purpose)."""
    return SubmissionResult(student, [PartResult("test_a", "auto", 2, a, "", "ok"),
                                      PartResult("test_b", "auto", 3, b, "printed text, not read", "ok",
                                                 list(checks_b)),
                                      PartResult("explain", "manual", 1, None, "", "ok")],
                            list(flags), list(notes))


RESULTS = [
    _result("ann", 2, 3),
    _result("bob", 2, 1, [CheckResult("visible case", True), CheckResult("hidden case 0", False,
                                                                          "result: off\nhint: transposed?")]),
    _result("cat", 0, 1, [CheckResult("hidden case 0", False, "hint: transposed?"), CheckResult("t = 1", False)]),
    _result("dan", 0, 0, flags=["grade cell test_b edited (it is locked)"], notes=["square: time limit"]),
]


def test_summary_has_distribution_failure_rates_hints_and_flags():
    text = summary(RESULTS, "toy")
    assert "4 submissions, max 5" in text and "mean 2.25" in text
    assert "test_a (2 points): 2 of 4 below full marks (50%)" in text
    assert "test_b (3 points): 3 of 4 below full marks (75%)" in text
    assert "failed by 2: hidden case 0" in text and "2 students: hint: transposed?" in text
    assert "explain: written answer" in text
    assert "dan: grade cell test_b edited" in text and "dan: square: time limit" in text


def test_csv_has_one_row_per_student(tmp_path):
    csv_path, txt_path = write_report(make_course(tmp_path), "toy", RESULTS)
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["student"] for r in rows] == ["ann", "bob", "cat", "dan"]
    assert rows[1]["test_b"] == "1" and rows[1]["total"] == "3" and rows[1]["explain"] == ""
    assert rows[3]["flags"].startswith("grade cell test_b edited")
    assert txt_path.read_text().startswith("Assignment toy")


def test_a_common_hint_counts_once_per_student_whatever_its_numbers():
    """Before issue 12 one student's ratio hints with eight different factors made eight "common hints"."""
    def student(name, factors):
        checks = [CheckResult(f"case {i}", False, f"kernel off\nhint: your ntk is about {c} times the expected one")
                  for i, c in enumerate(factors)]
        return SubmissionResult(name, [PartResult("test_b", "auto", 3, 0, "", "ok", checks)])
    text = summary([student("ann", [0.3536, 0.714, 0.5931, 2.5, 1e-3, 7, 8, 9]), student("bob", [2.0]),
                    student("cat", [2.0])], "toy")
    hint_lines = [line for line in text.splitlines() if "hint:" in line]
    assert hint_lines == ["      3 students: hint: your ntk is about … times the expected one"], text
    single = summary([student("bob", [2.0]), student("cat", [2.0])], "toy")
    assert "2 students: hint: your ntk is about 2.0 times the expected one" in single


def test_the_report_lists_each_students_values_of_the_hidden_check_variants():
    """Issue 19: every part with a per-student variant, one line per student and part; the variants of hidden
    checks of implementation parts are marked so."""
    from autograder import ntk
    from autograder.report import summary
    from autograder.results import PartResult, SubmissionResult
    results = [SubmissionResult(s, [PartResult("check_relu_ntk", "auto", 4, 4, "", "ok")]) for s in ("ann", "ben")]
    text = summary(results, "ntk").splitlines()
    for s in ("ann", "ben"):
        values = ntk.TOPIC.part("relu_ntk").student_values(s)[1]
        assert f"  {s}: relu_ntk: " + ", ".join(f"{k} = {v}" for k, v in values.items()) + " (hidden checks)" in text
        assert any(line.startswith(f"  {s}: ntk_theta: sigma_w = ") and "hidden" not in line for line in text)
