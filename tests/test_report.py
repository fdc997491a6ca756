"""autograder.report: the instructor's report of an assignment (distribution, parts, hints, flags)."""
from __future__ import annotations

import csv

from autograder.batch import PartResult, SubmissionResult
from autograder.report import summary, write_report


def _result(student, a, b, feedback_b="", flags=(), notes=()):
    return SubmissionResult(student, [PartResult("test_a", "auto", 2, a, "", "ok"),
                                      PartResult("test_b", "auto", 3, b, feedback_b, "ok"),
                                      PartResult("explain", "manual", 1, None, "", "ok")],
                            list(flags), list(notes))


RESULTS = [
    _result("ann", 2, 3),
    _result("bob", 2, 1, "b: 1 of 3\n  [FAIL] hidden case 0\n         result: off\n         hint: transposed?"),
    _result("cat", 0, 1, "b: 1 of 3\n  [FAIL] hidden case 0\n         hint: transposed?\n  [FAIL] t = 1"),
    _result("dan", 0, 0, flags=["grade cell test_b edited (it is locked)"], notes=["square: time limit"]),
]


def test_summary_has_distribution_failure_rates_hints_and_flags():
    text = summary(RESULTS, "toy")
    assert "4 submissions, max 5" in text and "mean 2.25" in text
    assert "test_a (2 points): 2 of 4 below full marks (50%)" in text
    assert "test_b (3 points): 3 of 4 below full marks (75%)" in text
    assert "failed by 2: hidden case 0" in text and "2 x hint: transposed?" in text
    assert "explain: written answer" in text
    assert "dan: grade cell test_b edited" in text and "dan: square: time limit" in text


def test_csv_has_one_row_per_student(tmp_path):
    (tmp_path / "course_work").mkdir()
    csv_path, txt_path = write_report(tmp_path, "toy", RESULTS)
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["student"] for r in rows] == ["ann", "bob", "cat", "dan"]
    assert rows[1]["test_b"] == "1" and rows[1]["total"] == "3" and rows[1]["explain"] == ""
    assert rows[3]["flags"].startswith("grade cell test_b edited")
    assert txt_path.read_text().startswith("Assignment toy")
