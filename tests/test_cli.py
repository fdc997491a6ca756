"""tfdl, the course tooling: release, batch grading through real nbgrader, the student self-check.

The slow tests run nbgrader and Jupyter kernels on the toy assignment of tests/fixtures/solutions/toy (two
autograded parts, ``square`` 2 points and ``cube`` 3 points of which two checks are hidden and read
solutions/toy/grading.py, and a 1-point written answer) in a throwaway course directory.
"""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from nbgrader.api import Gradebook

from autograder import gradebook, nbgrading, release
from autograder.course import Course, run_limited
from tests.conftest import add_submission, fill, make_course
from tests.grading import tfdl

SQUARE = "def square(x):\n    return x * x"
CUBE = "def cube(x):\n    return x ** 3"
CELL_TIMEOUT = 8  # seconds per cell when grading the toy class (the looping students cost this much)


# ----------------------------------------------------------------------------------------------------------------
# Command line (fast)
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [[], ["release"], ["grade"], ["check"], ["export"], ["report"]])
def test_help_of_every_subcommand(command):
    code, out, _ = tfdl(*command, "--help")
    assert code == 0
    assert out.startswith("usage: tfdl " + " ".join(command))


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "tfdl"
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "release" in proc.stdout and "grade" in proc.stdout


def test_usage_errors_have_clear_messages_and_exit_codes(tmp_path):
    course = make_course(tmp_path, ["toy"])
    assert tfdl("release")[0] == 2  # neither an assignment nor --all
    code, _, err = tfdl("release", "nope", "--course", str(course))
    assert code == 1 and "no assignment 'nope'" in err and "toy" in err
    code, _, err = tfdl("release", "toy", "--course", str(tmp_path))
    assert code == 1 and "not a course directory" in err
    code, _, err = tfdl("grade", "toy", str(tmp_path / "missing"), "--course", str(course))
    assert code == 1 and "not a folder of submissions" in err
    code, _, err = tfdl("check", str(tmp_path / "missing.ipynb"))
    assert code == 1 and "no such notebook" in err
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{ not json")
    code, _, err = tfdl("check", str(bad))
    assert code == 1 and "NotJSONError" in err
    assert not (course / "course_work").exists()  # nothing was touched


def test_submissions_in_every_layout_are_found(tmp_path):
    nb = nbformat.v4.new_notebook()
    add_submission(tmp_path, "ann", "toy", nb, layout="folder")
    add_submission(tmp_path, "bob", "toy", nb, layout="nested")
    add_submission(tmp_path, "cat", "toy", nb, layout="flat")
    (tmp_path / "dan").mkdir()  # a folder without the notebook is reported, not skipped
    found = nbgrading.find_submissions(tmp_path, "toy")
    assert found == {"ann": tmp_path / "ann" / "toy.ipynb", "bob": tmp_path / "bob" / "toy" / "toy.ipynb",
                     "cat": tmp_path / "cat.ipynb", "dan": None}


def _class_with_odd_layouts(course: Path, folder: Path, assignment: str, other: str, answers: dict) -> None:
    """The layouts instructors meet (issue 12 point 7): notebooks under any name or depth in a student's folder,
    checkpoints, two candidates, another assignment's notebook, a folder without a notebook, a stray archive."""
    mine = fill(nbformat.read(course / "solutions" / assignment / f"{assignment}.ipynb", as_version=4), {})
    if (course / "exercises" / assignment).is_dir():
        mine = fill(nbformat.read(course / "exercises" / assignment / f"{assignment}.ipynb", as_version=4), answers)
    theirs = nbformat.read(course / "solutions" / other / f"{other}.ipynb", as_version=4)
    for rel, nb in {f"heidi/{assignment} (1).ipynb": mine, f"grace/{assignment}_final.ipynb": mine,
                    f"frank/{assignment}/submission.ipynb": mine,
                    f"frank/{assignment}/.ipynb_checkpoints/submission-checkpoint.ipynb": mine,
                    f"ivan/{assignment}.ipynb": mine, f"ivan/{assignment}/{assignment}.ipynb": mine,
                    f"judy/{assignment}.ipynb": theirs,
                    f"ken/{assignment}.ipynb": mine, f"ken/{other}.ipynb": theirs}.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / rel)
    (folder / "leo").mkdir()
    (folder / "leo" / "notes.txt").write_text("my answers")
    (folder / "leo" / f"{assignment}.py").write_text("def f(): pass")
    (folder / "class.zip").write_bytes(b"PK")


ODD_LAYOUT_PROBLEMS = {  # student -> words of the message (None: graded)
    "frank": None, "grace": None, "heidi": None, "ken": None,
    "ivan": ["2 notebooks could be the {a} submission", "ivan/{a}.ipynb", "ivan/{a}/{a}.ipynb"],
    "judy": ["judy/{a}.ipynb is the {o} notebook, not {a}"],
    "leo": ["no notebook for {a} in leo/", "leo/notes.txt", "leo/{a}.py"],
}


def test_submissions_are_found_under_any_name_and_problems_name_the_files(tmp_path):
    course = make_course(tmp_path, ["toy", "hostile"])
    folder = tmp_path / "subs"
    _class_with_odd_layouts(course, folder, "toy", "hostile", {})
    found = nbgrading.discover(folder, "toy", Course(course))
    assert found.notebooks == {"frank": folder / "frank/toy/submission.ipynb",
                               "grace": folder / "grace/toy_final.ipynb", "heidi": folder / "heidi/toy (1).ipynb",
                               "ivan": None, "judy": None, "ken": folder / "ken/toy.ipynb", "leo": None}
    assert set(found.problems) == {"ivan", "judy", "leo"}
    for student, words in ODD_LAYOUT_PROBLEMS.items():
        for w in words or []:
            assert w.format(a="toy", o="hostile") in found.problems[student], found.problems[student]
    warnings = "\n".join(found.warnings)
    assert "class.zip" in warnings and "ken/hostile.ipynb is not graded (the hostile notebook)" in warnings
    # without a course to compare with, judy's notebook is a candidate like any other
    assert nbgrading.find_submissions(folder, "toy")["judy"] == folder / "judy/toy.ipynb"


@pytest.mark.slow
def test_nbgrader_engine_grades_odd_layouts_and_flags_only_the_students_concerned(tmp_path):
    """The same discovery as the isolated engine (tests/test_batch.py): each problem costs its own student only."""
    course = make_course(tmp_path, ["toy", "hostile"])
    release.release(course, "toy")
    folder = tmp_path / "subs"
    _class_with_odd_layouts(course, folder, "toy", "hostile", {"square": SQUARE, "cube": CUBE})
    code, out, err = tfdl("grade", "toy", str(folder), "--course", str(course), "--engine", "nbgrader",
                          "--timeout", str(CELL_TIMEOUT))
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    for student, words in ODD_LAYOUT_PROBLEMS.items():
        assert scores(course, student) == ((0, 0, 0) if words else (2, 3, 0)), student
        for w in words or []:
            assert w.format(a="toy", o="hostile") in lines[student], lines[student]
    assert "class.zip" in err and "ken/hostile.ipynb is not graded" in err


def test_wall_clock_limit_kills_the_whole_process_group(tmp_path):
    child = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);" \
            "print('started', flush=True); time.sleep(60)"
    run = run_limited([sys.executable, "-c", child], cwd=tmp_path, timeout=2)
    assert run.timed_out and run.seconds < 10 and "started" in run.output
    mine = subprocess.run(["pgrep", "-f", "time.sleep(60)"], capture_output=True, text=True).stdout.split()
    alive = [p for p in mine if Path(f"/proc/{p}/status").exists()
             and "State:\tZ" not in Path(f"/proc/{p}/status").read_text()]
    assert alive == []


# ----------------------------------------------------------------------------------------------------------------
# Release (slow: nbgrader generate_assignment)
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def released(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("release"), ["toy"])
    code, out, err = tfdl("release", "toy", "--course", str(course))
    assert code == 0, err
    assert "released toy: exercises/toy/toy.ipynb" in out
    return course


@pytest.mark.slow
def test_release_has_stubs_and_no_solutions_or_hidden_tests(released):
    text = (released / "exercises" / "toy" / "toy.ipynb").read_text()
    nb = nbformat.reads(text, as_version=4)
    cells = {c.metadata.nbgrader["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}
    assert "raise NotImplementedError" in cells["square"].source and "x * x" not in cells["square"].source
    assert "x ** 3" not in cells["cube"].source
    assert cells["explain"].source == "YOUR ANSWER HERE"
    for marker in ("BEGIN SOLUTION", "HIDDEN TESTS", "instructor_module", "HIDDEN_INPUTS"):
        assert marker not in text
    assert "report.check(\"cube(2) == 8\"" in cells["test_cube"].source  # visible checks stay
    assert sorted(p.name for p in (released / "exercises" / "toy").iterdir()) == ["toy.ipynb"]  # no grading.py
    assert release.grade_ids(nb) == ["test_square", "test_cube", "explain"]
    assert all(c.get("outputs", []) == [] and c.get("execution_count") is None for c in nb.cells)


@pytest.mark.slow
def test_release_is_idempotent(released):
    path = released / "exercises" / "toy" / "toy.ipynb"
    before = path.read_bytes()
    code, out, err = tfdl("release", "--all", "--course", str(released))
    assert code == 0, err
    assert path.read_bytes() == before


def _set_cell(path: Path, grade_id: str, source: str, *, run: bool = False) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            cell.source = source
            if run:
                cell.execution_count = 1
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="ran\n")]
    nbformat.write(nb, path)


@pytest.mark.slow
def test_release_never_overwrites_a_students_work(tmp_path):
    """Issue 12 point 2, through the command line: a solved notebook in exercises/toy is kept and named, with how
    to proceed; the student's other files stay; the other assignment is released all the same; --force
    replaces it."""
    course = make_course(tmp_path, ["toy", "hostile"])
    assert tfdl("release", "--all", "--course", str(course))[0] == 0
    mine = course / "exercises" / "toy" / "toy.ipynb"
    _set_cell(mine, "square", SQUARE)
    (course / "exercises" / "toy" / "notes.txt").write_text("my notes")
    work = mine.read_bytes()
    other = course / "exercises" / "hostile" / "hostile.ipynb"
    other.unlink()  # the other assignment must still be released
    code, out, err = tfdl("release", "--all", "--course", str(course))
    assert code == 1
    assert "exercises/toy/toy.ipynb was NOT replaced" in err and "--force" in err and "mv exercises/toy/toy.ipynb" in err
    assert "the new release is course_work/new_release/toy/toy.ipynb" in err
    assert mine.read_bytes() == work and (course / "exercises" / "toy" / "notes.txt").read_text() == "my notes"
    assert other.is_file() and "released hostile: exercises/hostile/hostile.ipynb" in out
    assert "kept toy: exercises/toy/toy.ipynb" in out
    stub = nbformat.read(course / "course_work" / "new_release" / "toy" / "toy.ipynb", as_version=4)
    assert "raise NotImplementedError" in stub.cells[1].source  # the new release, where the message says
    code, out, err = tfdl("release", "toy", "--force", "--course", str(course))
    assert code == 0, err
    assert nbformat.read(mine, as_version=4).cells[1].source == stub.cells[1].source
    assert (course / "exercises" / "toy" / "notes.txt").read_text() == "my notes"  # never deleted


@pytest.mark.slow
def test_release_replaces_an_untouched_notebook_and_brings_source_changes(tmp_path):
    """Opened, run and saved without a change of its cells, or written before releases were stamped and never
    run, a released notebook is a release: the next release replaces it (with the instructor's new text);
    an unstamped notebook that was run is someone's work and is kept."""
    course = make_course(tmp_path, ["toy"])
    assert tfdl("release", "toy", "--course", str(course))[0] == 0
    mine = course / "exercises" / "toy" / "toy.ipynb"
    stamp = nbformat.read(mine, as_version=4).metadata["tfdl"]["release"]
    assert stamp == release.cells_fingerprint(nbformat.read(mine, as_version=4))
    nb = nbformat.read(mine, as_version=4)
    nb.cells[2].execution_count, nb.cells[2].outputs = 3, [nbformat.v4.new_output("stream", text="2 of 2\n")]
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.9"}  # what Jupyter writes on save
    nbformat.write(nb, mine)
    source = course / "solutions" / "toy" / "toy.ipynb"
    src = nbformat.read(source, as_version=4)
    src.cells[0].source += "\n\nA sentence the instructor added."
    nbformat.write(src, source)
    code, out, err = tfdl("release", "toy", "--course", str(course))
    assert code == 0, err
    assert "A sentence the instructor added." in nbformat.read(mine, as_version=4).cells[0].source
    nb = nbformat.read(mine, as_version=4)  # a release from before the stamp: never run, then run
    del nb.metadata["tfdl"]
    nbformat.write(nb, mine)
    src.cells[0].source += " And another."
    nbformat.write(src, source)
    assert tfdl("release", "toy", "--course", str(course))[0] == 0
    assert "And another." in nbformat.read(mine, as_version=4).cells[0].source
    nb = nbformat.read(mine, as_version=4)
    del nb.metadata["tfdl"]
    nbformat.write(nb, mine)
    _set_cell(mine, "square", SQUARE, run=True)
    src.cells[0].source += " And a third."
    nbformat.write(src, source)
    code, out, err = tfdl("release", "toy", "--course", str(course))
    assert code == 1 and "exercises/toy/toy.ipynb was NOT replaced" in err
    assert nbformat.read(mine, as_version=4).cells[1].source == SQUARE


@pytest.mark.slow
def test_verify_release_catches_leaks(released, tmp_path):
    bad = tmp_path / "course"
    shutil.copytree(released, bad)
    nb = nbformat.read(bad / "exercises/toy/toy.ipynb", as_version=4)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "test_cube"]
    nb.cells[1].source += "\n### BEGIN SOLUTION"
    nbformat.write(nb, bad / "exercises/toy/toy.ipynb")
    shutil.copy(bad / "solutions/toy/grading.py", bad / "exercises/toy/grading.py")
    problems = "\n".join(release.verify_release(Course(bad), "toy"))
    assert "'### BEGIN SOLUTION'" in problems and "grading.py: instructor-only" in problems
    assert "grade cell 'test_cube' missing" in problems


@pytest.mark.slow
def test_grading_a_fresh_clone_enters_the_assignment_without_touching_exercises(tmp_path):
    course = make_course(tmp_path, ["toy"])  # no course_work/, no gradebook, as after git clone
    gradebook.ensure_in_gradebook(course, "toy", ["ann"])
    assert not (course / "exercises").exists()
    with Gradebook(Course(course).gradebook_url) as gb:
        assert {c.name for c in gb.find_notebook("toy", "toy").grade_cells} == {"test_square", "test_cube",
                                                                                  "explain"}
        assert gb.find_student("ann")


# ----------------------------------------------------------------------------------------------------------------
# Grading a class with --engine nbgrader (slow: one plain nbgrader autograde per student). This documents what
# nbgrader itself does with each hostile case; the default, isolated engine is tested in tests/test_batch.py.
# ----------------------------------------------------------------------------------------------------------------
# student -> (answers, expected scores of test_square, test_cube, explain; a word of the status)
CLASS = {
    "full": ({"square": SQUARE, "cube": CUBE, "explain": "An odd power."}, (2, 3, 0), "needs manual grading"),
    "untouched": (None, (0, 0, 0), "ok"),
    "partial": ({"square": SQUARE, "cube": "def cube(x):\n    return abs(x) ** 3"}, (2, 2, 0), "ok"),
    "loops": ({"square": "while True:\n    pass", "cube": CUBE}, (0, 3, 0), "timed out and was interrupted"),
    "exits": ({"square": "import sys\ndef square(x):\n    sys.exit()", "cube": CUBE}, (0, 3, 0),
              "test_square raised SystemExit"),
    "kills": ({"square": SQUARE, "cube": "import os\nos._exit(1)"}, (0, 0, 0), "kernel died"),
    "ignores_interrupt": ({"square": SQUARE, "cube": "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                                     "while True:\n    pass"}, (0, 0, 0), "ignored the interrupt"),
    "garbled": ('{"cells": [', (0, 0, 0), "invalid notebook"),
    "duplicates": ({"square": SQUARE, "cube": CUBE}, (0, 0, 0), "duplicated cells test_square"),
    "deletes": ({"square": SQUARE, "cube": CUBE}, (2, 0, 0), "grade cells deleted: test_cube"),
}


def tamper(student, nb):
    """The submissions nbgrader itself mishandles: a copied grade cell aborts a whole batch, a deleted one is
    silently 'needs manual grading'."""
    cells = nb.cells
    if student == "duplicates":
        copy = nbformat.from_dict(json.loads(json.dumps(cells[2])))
        copy.id = "copied-cell"
        cells.insert(3, copy)
    if student == "deletes":
        nb.cells = [c for c in cells if c.metadata.get("nbgrader", {}).get("grade_id") != "test_cube"]
    return nb


@pytest.fixture(scope="module")
def graded(released):
    release_nb = nbformat.read(released / "exercises/toy/toy.ipynb", as_version=4)
    folder = released.parent / "submissions"
    layouts = {"untouched": "nested", "partial": "flat"}
    for student, (answers, _, _) in CLASS.items():
        if isinstance(answers, str):
            add_submission(folder, student, "toy", text=answers)
        else:
            add_submission(folder, student, "toy", tamper(student, fill(release_nb, dict(answers or {}))),
                           layout=layouts.get(student, "folder"))
    csv_path = released.parent / "grades.csv"
    code, out, err = tfdl("grade", "toy", "--engine", "nbgrader", str(folder), "--course", str(released),
                          "--timeout", str(CELL_TIMEOUT),
                          "--csv", str(csv_path))
    return {"course": released, "code": code, "out": out, "err": err, "csv": csv_path}


def scores(course, student):
    r = gradebook.read_scores(course, "toy", student)
    return tuple(r.scores[p] for p in ("test_square", "test_cube", "explain"))


@pytest.mark.slow
def test_grade_batch_finishes_with_exact_scores_for_everyone(graded):
    assert graded["code"] == 0, graded["err"]
    got = {s: scores(graded["course"], s) for s in CLASS}
    assert got == {s: expected for s, (_, expected, _) in CLASS.items()}


@pytest.mark.slow
def test_hostile_cases_appear_in_the_table_with_their_reason(graded):
    lines = {line.split()[0]: line for line in graded["out"].splitlines() if line.strip()}
    for student, (_, expected, status) in CLASS.items():
        row = lines[student].split()
        assert row[1:6] == [f"{x:g}" for x in expected] + [f"{sum(expected):g}", "6"], lines[student]
        assert status in lines[student]
    assert "6 of 10 submissions autograded; not graded: duplicates, garbled, ignores_interrupt, kills" in graded["out"]
    assert "autograding toy" in graded["err"]  # the tqdm progress bar


@pytest.mark.slow
def test_gradebook_what_plain_nbgrader_recorded(graded):
    """nbgrader itself: a died or stuck kernel leaves every part 'needs manual grading' with no auto score."""
    course = graded["course"]
    with Gradebook(Course(course).gradebook_url) as gb:
        for student in ("kills", "ignores_interrupt"):
            grades = gb.find_submission_notebook("toy", "toy", student).grades
            assert all(g.auto_score is None and g.needs_manual_grade for g in grades)
        # nbgrader cannot read an unreadable notebook: tfdl enters it, zero for every part and flagged
        garbled = gb.find_submission_notebook("toy", "toy", "garbled")
        assert garbled.flagged and all(g.auto_score == 0 and not g.needs_manual_grade for g in garbled.grades)
        full = {g.name: g for g in gb.find_submission_notebook("toy", "toy", "full").grades}
        assert full["explain"].needs_manual_grade and not full["test_cube"].needs_manual_grade


@pytest.mark.slow
def test_export_and_feedback(graded):
    rows = {r["student_id"]: r for r in csv.DictReader(graded["csv"].open())}
    assert set(rows) == set(CLASS)
    assert float(rows["full"]["score"]) == 5
    assert float(rows["garbled"]["score"]) == 0 and rows["garbled"]["flagged"] == "true"
    feedback = graded["course"] / "course_work" / "feedback"
    assert (feedback / "full" / "toy" / "toy.html").is_file()
    assert "square: all 2 checks (visible and hidden) passed" in (feedback / "full" / "toy" / "toy.html").read_text()


@pytest.mark.slow
def test_a_second_batch_keeps_earlier_grades(graded, tmp_path):
    course = graded["course"]
    release_nb = nbformat.read(course / "exercises/toy/toy.ipynb", as_version=4)
    add_submission(tmp_path, "late", "toy", fill(release_nb, {"square": SQUARE}))
    code, out, err = tfdl("grade", "toy", "--engine", "nbgrader", str(tmp_path), "--course", str(course),
                          "--timeout", str(CELL_TIMEOUT))
    assert code == 0, err
    assert scores(course, "late") == (2, 0, 0)
    for student, (_, expected, _) in CLASS.items():
        assert scores(course, student) == expected
    rows = list(csv.DictReader((course / "course_work" / "grades.csv").open()))
    assert {r["student_id"] for r in rows} == set(CLASS) | {"late"}


# ----------------------------------------------------------------------------------------------------------------
# The student self-check (slow: one kernel per notebook)
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_check_prints_feedback_and_visible_scores(released, tmp_path):
    release_nb = nbformat.read(released / "exercises/toy/toy.ipynb", as_version=4)
    path = add_submission(tmp_path, "me", "toy", fill(release_nb, {"square": "def square(x):\n    return abs(x) * x",
                                                                   "cube": CUBE}))
    before = path.read_bytes()
    code, out, err = tfdl("check", str(path), "--timeout", "30")
    assert code == 0, err
    assert path.read_bytes() == before  # the student's notebook is not modified
    assert "== test_square: 1 of 2 points" in out
    assert "[pass] square(3) == 9\n  [FAIL] square(-2) == 4\n         square(-2) returned -4" in out
    assert "== test_cube: 3 of 3 points" in out and "[pass] cube(2) == 8" in out
    assert "== explain: written answer, 1 points, graded by the instructor" in out
    assert "Visible checks: 4 of 5 points." in out and "hidden checks" in out


@pytest.mark.slow
def test_check_shows_errors_and_fails_when_the_kernel_dies(released, tmp_path):
    release_nb = nbformat.read(released / "exercises/toy/toy.ipynb", as_version=4)
    path = add_submission(tmp_path, "me", "toy", fill(release_nb, {"square": "def square(x):\n    return 1 / 0\n"
                                                                   "square(1)", "cube": "import os\nos._exit(1)"}))
    code, out, err = tfdl("check", str(path), "--timeout", "30")
    assert code == 1 and "kernel died" in err
    assert "cell square: ZeroDivisionError: division by zero" in out
    assert "== test_square: 0 of 2 points" in out
    assert "== test_cube: 0 of 3 points\n  not run" in out


# ----------------------------------------------------------------------------------------------------------------
# What an instructor meets at the edges (issue 12)
# ----------------------------------------------------------------------------------------------------------------
def test_unknown_assignments_are_named_not_exported_empty(tmp_path):
    course = make_course(tmp_path, ["toy"])
    for args in (["export", "nkt", "--csv", str(tmp_path / "g.csv")], ["report", "nkt"]):
        code, out, err = tfdl(*args, "--course", str(course))
        assert code == 1 and "no assignment 'nkt'" in err and "assignments: toy" in err, (args, err)
    assert not (tmp_path / "g.csv").exists()


def test_grading_without_bubblewrap_is_refused_unless_asked_for(tmp_path, monkeypatch):
    """Without bubblewrap student code is not contained: the isolated engine refuses, loudly, unless the
    instructor passes --no-isolation, and then says so in the progress bar."""
    from autograder import sandbox
    monkeypatch.setattr(sandbox, "bwrap_available", lambda: False)
    course = make_course(tmp_path, ["toy"])
    add_submission(tmp_path / "subs", "ann", "toy", text="{}")
    code, out, err = tfdl("grade", "toy", str(tmp_path / "subs"), "--course", str(course))
    assert code == 1 and "bubblewrap is not installed" in err and "--no-isolation" in err
    assert not (course / "course_work" / "submitted").exists()
    code, out, err = tfdl("grade", "toy", str(tmp_path / "subs"), "--course", str(course), "--no-isolation",
                          "--workers", "1")
    assert code == 0, err
    assert "WARNING: grading WITHOUT isolation" in err and "NOT ISOLATED" in err


def test_a_relative_submissions_folder_is_resolved_once(tmp_path, monkeypatch):
    """`tfdl grade toy subs --course DIR` from the folder that holds subs: every student is found and graded."""
    course = make_course(tmp_path, ["toy"])
    add_submission(tmp_path / "subs", "ann", "toy", text="not a notebook")
    monkeypatch.chdir(tmp_path)
    code, out, err = tfdl("grade", "toy", "subs", "--course", str(course), "--engine", "isolated", "--workers", "1")
    assert code == 0, err
    assert "FileNotFoundError" not in out + err and "invalid notebook" in out


def test_ctrl_c_says_that_progress_is_saved_and_a_rerun_resumes(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(nbgrading, "grade_isolated", interrupted)
    course = make_course(tmp_path, ["toy"])
    add_submission(tmp_path / "subs", "ann", "toy", text="{}")
    code, out, err = tfdl("grade", "toy", str(tmp_path / "subs"), "--course", str(course), "--no-isolation")
    assert code == 130 and "Traceback" not in err
    assert "interrupted" in err and "saved" in err and "resumes where it stopped" in err


def test_report_through_a_closed_pipe_ends_quietly(tmp_path):
    """`tfdl report toy | head -1` prints one line and no BrokenPipeError traceback."""
    course = make_course(tmp_path, ["toy"])
    add_submission(tmp_path / "subs", "ann", "toy", text="not a notebook")
    assert tfdl("grade", "toy", str(tmp_path / "subs"), "--course", str(course), "--workers", "1")[0] == 0
    run = subprocess.run(f"{sys.executable} -m autograder report toy --course {course} | head -1", shell=True,
                         capture_output=True, text=True)
    assert run.returncode == 0 and len(run.stdout.splitlines()) == 1
    assert "Traceback" not in run.stderr and "BrokenPipe" not in run.stderr, run.stderr
