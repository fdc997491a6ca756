"""Grades as an instructor exports them (issue 12 points 9 and 12, issue 21 point 2), on a real gradebook.

One class of the toy assignment (``square`` 2, ``cube`` 3, the written ``explain`` 1) is graded with the
isolated engine in a course that also has the ``hostile`` assignment, registered but graded by nobody, a due date
for ``toy`` and a late policy (one hour of grace, then 25 % of the score per started day, 0 after three days):

* ann: full marks, nbgrader's layout ``ann/toy/toy.ipynb`` with nbgrader's ``timestamp.txt`` (on time);
* bob: ``square`` only, no timestamp file: the file's time counts, 25.5 hours late (2 started days after the
  grace hour: half the score);
* cat: a file that is not a notebook;
* dan: full answers, the locked ``test_cube`` cell edited (flagged), four days late (0);
* eve: in the gradebook (``nbgrader db student add``), no submission.

The expected times and penalties are worked out by hand from those dates, not read back from the code.
"""
from __future__ import annotations

import csv
import datetime
import os
import subprocess
import sys

import nbformat
import pytest
from nbgrader.api import Gradebook

from autograder import nbgrading
from autograder.course import Course, ToolError
from autograder.deadlines import LatePolicy
from autograder.export import export
from tests.conftest import add_submission, fill, make_course
from tests.grading import tfdl

SOLVED = {"square": "def square(x):\n    return x * x", "cube": "def cube(x):\n    return x ** 3",
          "explain": "An odd power of an odd function."}
DUE = datetime.datetime(2026, 6, 1, 12, 0)
POLICY = """
c.LatePolicy.duedates = {"toy": "2026-06-01 12:00:00 UTC"}
c.LatePolicy.grace_minutes = 60
c.LatePolicy.penalty_per_day = 0.25
c.LatePolicy.zero_after_days = 3
"""
SUBMITTED = {"ann": datetime.datetime(2026, 6, 1, 11, 0, 0, 250000),   # timestamp.txt
             "bob": DUE + datetime.timedelta(hours=25, minutes=30),      # file time
             "cat": DUE - datetime.timedelta(days=1),
             "dan": DUE + datetime.timedelta(days=4)}
STUDENTS = {"ann": ("Ann", "Lee", "ann@school.edu", "1001"), "bob": ("Bob", "Ruiz", "bob@school.edu", "1002"),
            "cat": ("Cat", "Ng", "cat@school.edu", None), "dan": ("Dan", "Obi", None, "1004"),
            "eve": ("Eve", "Park", "eve@school.edu", "1005")}


def _utc_mtime(path, when: datetime.datetime) -> None:
    t = when.replace(tzinfo=datetime.timezone.utc).timestamp()
    os.utime(path, (t, t))


def _grade(course, folder, *args):
    return tfdl("grade", "toy", str(folder), "--course", str(course), "--workers", "1", "--timeout", "20", *args)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    course = make_course(tmp, ["toy", "hostile"])
    (course / "nbgrader_config.py").write_text((course / "nbgrader_config.py").read_text() + POLICY)
    nbgrading.release(course, "toy")
    nbgrading.ensure_in_gradebook(Course(course), "hostile", [])  # registered, graded by nobody
    with Gradebook(Course(course).gradebook_url) as gb:  # as `nbgrader db student add` would
        for sid, (first, last, email, lms) in STUDENTS.items():
            gb.update_or_create_student(sid, first_name=first, last_name=last, email=email, lms_user_id=lms)
    release = nbformat.read(course / "exercises" / "toy" / "toy.ipynb", as_version=4)
    folder = tmp / "submissions"
    ann = add_submission(folder, "ann", "toy", fill(release, SOLVED), layout="nested")
    (ann.parent / "timestamp.txt").write_text("2026-06-01 11:00:00.250000 UTC")
    bob = add_submission(folder, "bob", "toy", fill(release, {"square": SOLVED["square"]}))
    cat = add_submission(folder, "cat", "toy", text='{"cells": [')
    edited = fill(release, SOLVED)
    for c in edited.cells:
        if c.metadata.get("nbgrader", {}).get("grade_id") == "test_cube":
            c.source += "\nprint('I was here')"
    dan = add_submission(folder, "dan", "toy", edited)
    for student, path in (("ann", ann), ("bob", bob), ("cat", cat), ("dan", dan)):
        _utc_mtime(path, SUBMITTED[student] if student != "ann" else DUE + datetime.timedelta(days=9))
    code, out, err = _grade(course, folder, "--csv", str(tmp / "grades.csv"))
    assert code == 0, err
    totals = {line.split()[0]: line.split()[4] for line in out.splitlines() if line.split()[:1] in (["ann"], ["bob"],
                                                                                                 ["cat"], ["dan"])}
    assert totals == {"ann": "5", "bob": "2", "cat": "0", "dan": "2"}, out + err  # explain: left for formgrader
    return {"course": course, "folder": folder, "out": out, "csv": tmp / "grades.csv", "tmp": tmp}


def _csv(path):
    return list(csv.DictReader(open(path, newline="")))


def _submissions(course):
    with Gradebook(Course(course).gradebook_url) as gb:
        return {s.student.id: {"timestamp": s.timestamp, "flagged": [nb.flagged for nb in s.notebooks],
                               "grades": {g.name: (g.auto_score, g.manual_score, g.needs_manual_grade)
                                          for nb in s.notebooks for g in nb.grades}}
                for s in gb.find_assignment("toy").submissions}


def test_the_csv_tfdl_grade_writes_is_what_plain_nbgrader_export_writes(graded):
    """The isolated engine writes grades.csv in its own process (autograder.export.write_nbgrader_csv): byte for
    byte what a new ``nbgrader export`` process writes from the same gradebook with the course's configuration."""
    out = graded["tmp"] / "by_nbgrader.csv"
    run = subprocess.run([sys.executable, "-m", "nbgrader", "export", f"--to={out}"], cwd=graded["course"],
                         capture_output=True, text=True, env=Course(graded["course"]).env())
    assert run.returncode == 0, run.stdout + run.stderr
    assert out.read_bytes() == graded["csv"].read_bytes()
    export(graded["course"], graded["tmp"] / "by_tfdl_export.csv", "nbgrader")  # tfdl export writes it here too
    assert (graded["tmp"] / "by_tfdl_export.csv").read_bytes() == out.read_bytes()
    assert {r["student_id"] for r in _csv(out)} == set(STUDENTS)  # eve too (no submission: empty score)


# ----------------------------------------------------------------------------------------------------------------
# The late policy itself (fast)
# ----------------------------------------------------------------------------------------------------------------
def test_late_policy_grace_per_day_and_zero():
    p = LatePolicy(grace_minutes=60, penalty_per_day=0.25, zero_after_days=3)
    hour, day = 3600.0, 86400.0
    assert p.fraction(0) == 0 and p.fraction(hour) == 0  # within the grace hour
    assert p.fraction(hour + 1) == 0.25  # one started day after the grace
    assert p.fraction(hour + day) == 0.25 and p.fraction(hour + day + 1) == 0.5
    assert p.fraction(hour + 3 * day) == 0.75 and p.fraction(hour + 3 * day + 1) == 1.0  # past 3 days: 0
    assert p.penalty(4.0, 25.5 * hour) == 2.0  # 24.5 h after the grace: 2 started days
    assert LatePolicy().penalty(5.0, 10 * day) == 0  # no policy: no penalty
    assert LatePolicy(penalty_method="zero", grace_minutes=5).fraction(301) == 1.0  # nbgrader's own 'zero'
    assert LatePolicy(penalty_per_day=0.3).fraction(4 * day) == 1.0  # never more than the score


def test_submission_time_is_nbgraders_timestamp_or_the_file_time(tmp_path):
    from autograder.gradebook import submission_time
    stamp, mtime = "2026-06-01 11:00:00.250000 UTC", datetime.datetime(2026, 5, 20, 8, 30)
    nested = add_submission(tmp_path, "ann", "toy", text="{}", layout="nested")  # ann/toy/toy.ipynb
    folder = add_submission(tmp_path, "bob", "toy", text="{}")                   # bob/toy.ipynb
    flat = add_submission(tmp_path, "cat", "toy", text="{}", layout="flat")      # cat.ipynb
    deep = add_submission(tmp_path / "dan" / "v2" / "final", "x", "toy", text="{}", layout="flat")
    for path in (nested, folder, flat, deep):
        _utc_mtime(path, mtime)
    (nested.parent / "timestamp.txt").write_text(stamp)
    (tmp_path / "bob" / "timestamp.txt").write_text("2026-06-02 09:00:00 UTC")
    (tmp_path / "timestamp.txt").write_text(stamp)  # the submissions folder's: nobody's in particular
    (tmp_path / "dan" / "timestamp.txt").write_text("not a time")
    assert submission_time(nested, "ann") == datetime.datetime(2026, 6, 1, 11, 0, 0, 250000)
    assert submission_time(folder, "bob") == datetime.datetime(2026, 6, 2, 9, 0)
    assert submission_time(flat, "cat") == mtime
    assert submission_time(deep, "dan") == mtime  # an unparsable stamp: the file's own time


def test_a_wrong_policy_stops_before_anyone_is_graded(tmp_path):
    course = make_course(tmp_path, ["toy"])
    (course / "nbgrader_config.py").write_text((course / "nbgrader_config.py").read_text()
                                               + '\nc.LatePolicy.duedates = {"toy": "next tuesday-ish"}\n')
    add_submission(tmp_path / "subs", "ann", "toy", text="{}")
    with pytest.raises(ToolError, match=r"LatePolicy.duedates\['toy'\] = 'next tuesday-ish' is not a date"):
        nbgrading.grade_isolated(course, "toy", tmp_path / "subs", workers=1)
    assert not (course / "course_work" / "submitted").exists()


# ----------------------------------------------------------------------------------------------------------------
# Point 9: what the export holds
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_no_rows_for_an_assignment_nobody_was_graded_on(graded):
    rows = _csv(graded["csv"])  # written by `tfdl grade` through nbgrader export
    assert {r["assignment"] for r in rows} == {"toy"}  # hostile is in the gradebook, graded by nobody
    by = {r["student_id"]: r for r in rows}
    assert set(by) == set(STUDENTS)
    assert by["eve"]["score"] == by["eve"]["raw_score"] == by["eve"]["timestamp"] == ""  # empty, never 0.0
    with pytest.raises(ToolError, match="nobody has been graded on hostile"):
        export(graded["course"], graded["tmp"] / "none.csv", "canvas", ["hostile"])
    assert not (graded["tmp"] / "none.csv").exists()


@pytest.mark.slow
def test_timestamps_are_submission_times_and_stable_under_regrade(graded):
    before = _submissions(graded["course"])
    assert {s: v["timestamp"] for s, v in before.items()} == SUBMITTED
    code, out, err = _grade(graded["course"], graded["folder"], "--regrade")
    assert code == 0, err
    assert {s: v["timestamp"] for s, v in _submissions(graded["course"]).items()} == SUBMITTED
    by = {r["student_id"]: r for r in _csv(graded["course"] / "course_work" / "grades.csv")}
    assert by["ann"]["timestamp"] == "2026-06-01 11:00:00 UTC" and by["bob"]["timestamp"] == "2026-06-02 13:30:00 UTC"


@pytest.mark.slow
def test_flagged_submissions_are_flagged_in_formgrader(graded):
    subs = _submissions(graded["course"])
    assert subs["dan"]["flagged"] == [True] and subs["cat"]["flagged"] == [True]
    assert subs["ann"]["flagged"] == [False] and subs["bob"]["flagged"] == [False]
    by = {r["student_id"]: r for r in _csv(graded["csv"])}
    assert [by[s]["flagged"] for s in ("ann", "bob", "cat", "dan", "eve")] == ["false", "false", "true", "true", ""]


@pytest.mark.slow
def test_due_date_lateness_and_penalty_in_every_export(graded):
    course, tmp = graded["course"], graded["tmp"]
    with Gradebook(Course(course).gradebook_url) as gb:
        assert gb.find_assignment("toy").duedate == DUE  # nbgrader's own due date, which formgrader shows
    rows = export(course, tmp / "nb.csv", "nbgrader")
    by = {r["student_id"]: r for r in _csv(tmp / "nb.csv")}
    assert by["ann"]["duedate"] == "2026-06-01 12:00:00 UTC"
    assert float(by["ann"]["seconds_late"]) == 0 and by["ann"]["score"] == by["ann"]["raw_score"]
    assert float(by["bob"]["seconds_late"]) == 25.5 * 3600
    assert float(by["bob"]["score"]) == float(by["bob"]["raw_score"]) / 2  # 2 started days after the grace
    assert float(by["dan"]["seconds_late"]) == 4 * 86400 and float(by["dan"]["score"]) == 0  # past 3 days
    assert float(by["dan"]["raw_score"]) > 0
    raw = {r.student_id: r.raw_score for r in rows}
    # Canvas: its import header, a Points Possible row, the LMS user id and the school's id; empty, never 0
    export(course, tmp / "c.csv", "canvas")
    canvas = list(csv.reader(open(tmp / "c.csv", newline="")))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "toy"]
    assert canvas[1] == ["Points Possible", "", "", "", "", "6"]
    rows_c = {r[2]: r for r in canvas[2:]}
    assert rows_c["ann"] == ["Lee, Ann", "1001", "ann", "", "", f"{raw['ann']:g}"]
    assert rows_c["bob"][5] == f"{raw['bob'] / 2:g}" and rows_c["dan"][5] == "0"
    assert rows_c["eve"] == ["Park, Eve", "1005", "eve", "", "", ""] and rows_c["cat"][1] == ""
    # Moodle: map users on ID number (idnumber) or Email address
    export(course, tmp / "m.csv", "moodle")
    moodle = list(csv.reader(open(tmp / "m.csv", newline="")))
    assert moodle[0] == ["First name", "Last name", "ID number", "Email address", "toy"]
    rows_m = {r[2]: r for r in moodle[1:]}
    assert rows_m["ann"] == ["Ann", "Lee", "ann", "ann@school.edu", f"{raw['ann']:g}"]
    assert rows_m["eve"][4] == "" and rows_m["dan"][3] == ""
    code, out, err = tfdl("export", "--format", "canvas", "--course", str(course))
    assert code == 0, err
    assert "grades_canvas.csv (canvas): 5 students, toy" in out and "not exported (nobody graded yet): hostile" in out


# ----------------------------------------------------------------------------------------------------------------
# Issue 21 point 2: an unreadable submission is in the gradebook
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_an_unreadable_submission_has_a_gradebook_entry_that_plain_nbgrader_export_lists(graded):
    course = graded["course"]
    cat = _submissions(course)["cat"]
    assert cat["grades"] == {"test_square": (0.0, None, False), "test_cube": (0.0, None, False),
                             "explain": (0.0, None, False)}
    assert cat["flagged"] == [True]
    env = Course(course).env()
    for plugin, flag in ((None, "true"), ("nbgrader.plugins.CsvExportPlugin", None)):  # ours (configured), stock
        out = graded["tmp"] / f"plain_{flag}.csv"
        cmd = [sys.executable, "-m", "nbgrader", "export", f"--to={out}"]
        if plugin:
            cmd.append(f"--ExportApp.plugin_class={plugin}")
        run = subprocess.run(cmd, cwd=course, capture_output=True, text=True, env=env)
        assert run.returncode == 0, run.stdout + run.stderr
        row = next(r for r in _csv(out) if r["student_id"] == "cat" and r["assignment"] == "toy")
        assert row["timestamp"].startswith("2026-05-31 12:00:00") and float(row["score"]) == 0
        assert row.get("flagged") == flag
    feedback = (course / "course_work" / "feedback" / "cat" / "toy" / "toy.html").read_text()
    assert "invalid notebook" in feedback


# ----------------------------------------------------------------------------------------------------------------
# Point 9: grades entered by hand in formgrader (last: it changes the gradebook)
# ----------------------------------------------------------------------------------------------------------------
def _grade_by_hand(course, student, cell, score):
    """What formgrader's API handler does when a grader enters a score."""
    with Gradebook(Course(course).gradebook_url) as gb:
        g = gb.find_grade(cell, "toy", "toy", student)
        g.manual_score = score
        g.needs_manual_grade = False
        gb.db.commit()


@pytest.mark.slow
def test_manual_grades_count_in_the_table_and_survive_a_regrade(graded):
    course, folder = graded["course"], graded["folder"]
    _grade_by_hand(course, "ann", "explain", 1.0)
    _grade_by_hand(course, "bob", "test_cube", 1.5)  # overriding the autograder's 0
    code, out, err = tfdl("report", "toy", "--course", str(course))
    assert code == 0, err
    assert "mean" in out
    report = {r["student"]: r for r in _csv(course / "course_work" / "reports" / "toy.csv")}
    assert report["ann"]["explain"] == "1" and report["ann"]["total"] == "6"
    assert report["bob"]["test_cube"] == "1.5" and report["bob"]["total"] == "3.5"
    code, out, err = _grade(course, folder, "--regrade")
    assert code == 0, err
    table = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert table["ann"][1:5] == ["2", "3", "1", "6"] and table["bob"][1:5] == ["2", "1.5", "0", "3.5"]
    grades = _submissions(course)
    assert grades["ann"]["grades"]["explain"] == (None, 1.0, False)  # still graded: no "needs manual grade"
    assert grades["bob"]["grades"]["test_cube"] == (0.0, 1.5, False)
    by = {r["student_id"]: r for r in _csv(course / "course_work" / "grades.csv")}
    assert float(by["ann"]["score"]) == 6 and float(by["bob"]["raw_score"]) == 3.5
    # a new notebook from bob: the hand grade stays but asks for a look again (nbgrader's rule)
    nb = nbformat.read(folder / "bob" / "toy.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("x = 1"))
    nbformat.write(nb, folder / "bob" / "toy.ipynb")
    assert _grade(course, folder)[0] == 0
    assert _submissions(course)["bob"]["grades"]["test_cube"] == (0.0, 1.5, True)
    assert _submissions(course)["ann"]["grades"]["explain"] == (None, 1.0, False)


@pytest.mark.slow
def test_plain_nbgrader_applies_the_same_late_policy(graded, tmp_path):
    """``--engine nbgrader``: nbgrader's own AssignLatePenalties, with the course's LatePolicy as its plugin."""
    course = graded["course"]
    release = nbformat.read(course / "exercises" / "toy" / "toy.ipynb", as_version=4)
    path = add_submission(tmp_path, "fay", "toy", fill(release, {"square": SOLVED["square"]}))
    _utc_mtime(path, DUE + datetime.timedelta(hours=30))  # 29 h after the grace hour: 2 started days, half
    code, out, err = tfdl("grade", "toy", str(tmp_path), "--course", str(course), "--engine", "nbgrader")
    assert code == 0, err
    with Gradebook(Course(course).gradebook_url) as gb:
        nb = gb.find_submission_notebook("toy", "toy", "fay")
        assert nb.score == 2 and nb.late_submission_penalty == 1
        assert gb.find_submission("toy", "fay").timestamp == DUE + datetime.timedelta(hours=30)
