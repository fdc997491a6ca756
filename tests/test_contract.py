"""The contract every graded part of every assignment keeps, written once (issue 9) and run for each part that a
topic declares (``TOPIC`` of ``autograder/<a>.py``):

* the untouched release's stub scores 0, with a message that says the function is not implemented yet;
* objects that lie (an array subclass whose ``==`` is always True) and values of the wrong kind earn nothing;
* printing, writing to stderr and warnings inside a correct function cost nothing;
* ``sys.exit`` inside a function is feedback for that part, not a crash of the grader;
* the same submission always gets the same score and the same feedback;
* the solution keeps full marks through real nbgrader and through the isolated engine (slow).

Topic test files (tests/test_<a>.py) keep the topic's own tests: wrong implementations, correct alternatives,
hints, references against independent computations.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from autograder.core import Part
from autograder.derivation import Derivation
from tests.grading import AlwaysEqual, Grader, noisy, stub
from tests.notebooks import solution_namespace

ROOT = Path(__file__).resolve().parent.parent


def _topics() -> dict:
    topics = {}
    for path in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        a = path.stem
        if path.parent.name != a or not (ROOT / "autograder" / f"{a}.py").is_file():
            continue
        topic = getattr(importlib.import_module(f"autograder.{a}"), "TOPIC", None)
        if topic is not None:
            topics[a] = topic
    return topics


TOPICS = _topics()
# Parts graded on a function or class; derivation parts (a SymPy expression, autograder.derivation) have their own
# contract below.
PARTS = [(a, p.name) for a, t in TOPICS.items() for p in t.parts if isinstance(p, Part)
         and not isinstance(p, Derivation)]
DERIVATIONS = [(a, p.name) for a, t in TOPICS.items() for p in t.parts if isinstance(p, Derivation)]
_SOLUTIONS: dict = {}


def _solution(assignment: str, name: str):
    if assignment not in _SOLUTIONS:
        _SOLUTIONS[assignment] = solution_namespace(assignment)
    return _SOLUTIONS[assignment][name]


def _grader(assignment: str) -> Grader:
    return Grader(importlib.import_module(f"autograder.{assignment}"))


def test_every_assignment_declares_its_parts():
    assert {"ntk", "implicit_bias", "depth"} <= set(TOPICS)
    for a, topic in TOPICS.items():
        assert topic.assignment == a
        assert any(isinstance(p, Part) for p in topic.parts)


@pytest.mark.parametrize("tests", ["visible", "all"])
@pytest.mark.parametrize("assignment,part", PARTS)
def test_untouched_stub_scores_zero_with_a_clear_message(assignment, part, tests):
    points, text = _grader(assignment).grade(part, stub, tests)
    assert points == 0, text
    assert "not implemented yet" in text


@pytest.mark.parametrize("assignment,part", PARTS)
def test_objects_that_lie_earn_nothing(assignment, part):
    liar = np.zeros(3).view(AlwaysEqual)
    for fake in (lambda *a, **k: liar, lambda *a, **k: (liar, liar), lambda *a, **k: "a string"):
        points, text = _grader(assignment).grade(part, fake, "visible")
        assert points == 0, text


@pytest.mark.parametrize("assignment,part", PARTS)
def test_prints_and_warnings_inside_a_correct_function_cost_nothing(assignment, part, capsys):
    _grader(assignment).assert_full(part, noisy(_solution(assignment, part)), "visible")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("assignment,part", PARTS)
def test_sys_exit_is_feedback_not_a_crash(assignment, part):
    points, text = _grader(assignment).grade(part, lambda *a, **k: sys.exit(1), "all")
    assert points == 0 and "sys.exit" in text


@pytest.mark.parametrize("assignment,part", PARTS)
def test_same_submission_same_score(assignment, part):
    g = _grader(assignment)
    fn = _solution(assignment, part)
    assert g.grade(part, fn, "visible") == g.grade(part, fn, "visible")


@pytest.mark.parametrize("tests", ["visible", "all"])
@pytest.mark.parametrize("assignment,part", DERIVATIONS)
def test_unanswered_derivation_scores_zero_with_a_clear_message(assignment, part, tests):
    """The release's solution cell leaves ``<name> = None`` (release.runnable_derivation_stubs drops the raise)."""
    points, text = _grader(assignment).grade(part, None, tests)
    assert points == 0, text
    assert "not implemented yet" in text


@pytest.mark.parametrize("assignment,part", DERIVATIONS)
def test_derivation_answers_that_are_not_expressions_earn_nothing(assignment, part):
    liar = np.zeros(3).view(AlwaysEqual)
    for fake in (liar, stub, "a string", "__import__('os').system('true')", 1.5, (1, 2), {"x": 1}):
        points, text = _grader(assignment).grade(part, fake, "all")
        assert points == 0, text


@pytest.mark.parametrize("assignment,part", DERIVATIONS)
def test_derivation_solution_keeps_full_marks_and_the_same_feedback(assignment, part):
    g = _grader(assignment)
    first = g.grade(part, _solution(assignment, part), "all")
    assert first[0] == g.points(part), first[1]
    assert g.grade(part, _solution(assignment, part), "all") == first


@pytest.mark.slow
@pytest.mark.parametrize("assignment", sorted(TOPICS))
def test_solution_keeps_full_marks_through_both_engines(assignment, tmp_path):
    """The source notebook's solutions, submitted in the released notebook, keep every automatic point through
    the isolated engine and through plain nbgrader; the untouched release scores 0."""
    import nbformat

    from autograder import gradebook, nbgrading
    from tests.conftest import add_submission, fill, make_course
    from tests.notebooks import source_notebook

    course = make_course(tmp_path, [assignment])
    nbgrading.release(course, assignment)
    released = nbformat.read(course / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source_notebook(assignment).cells
               if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}
    folder = tmp_path / "submissions"
    add_submission(folder, "full", assignment, fill(released, answers))
    add_submission(folder, "untouched", assignment, released)
    topic = TOPICS[assignment]
    auto = {p.grade_id: float(p.points) for p in topic.parts if isinstance(p, Part)}
    results, warnings = nbgrading.grade_isolated(course, assignment, folder, workers=1)
    got = {r.student: r.scores for r in results}
    assert {g: got["full"][g] for g in auto} == auto, results[0].parts
    assert sum(got["untouched"][g] for g in auto) == 0
    assert not warnings
    results, warnings = nbgrading.grade(course, assignment, folder, cell_timeout=120)
    got = {r.student: r.scores for r in results}
    assert {g: got["full"][g] for g in auto} == auto, results
    assert sum(got["untouched"][g] for g in auto) == 0
    assert gradebook.read_scores(course, assignment, "full").scores == got["full"]
