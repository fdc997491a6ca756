"""Tests of autograder/selfcheck.py: ``tfdl check`` tells a student what grading will give (issue 12, point 1).

A correct notebook whose locked check cells were edited, deleted or moved (JupyterLab and Colab do not enforce
locks) must not be promised the points grading takes away, and the maximum must not shrink with a deleted cell.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from autograder import depth
from autograder.results import REPORT_MIMETYPE
from autograder.selfcheck import execute_copy, self_check
from tests.conftest import fill
from tests.grading import tfdl
from tests.notebooks import source_notebook

ROOT = Path(__file__).resolve().parent.parent


def _solved_release():
    release = nbformat.read(ROOT / "exercises" / "depth" / "depth.ipynb", as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source_notebook("depth").cells
               if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}
    return fill(release, answers)


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """One run of three notebooks: solved; solved with an edited and a deleted check cell; solved with two check
    cells swapped."""
    tmp = tmp_path_factory.mktemp("selfcheck")
    runs = {}
    solved = _solved_release()
    tampered = nbformat.from_dict(solved)
    for cell in tampered.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "check_sawtooth_net":
            cell.source += "\nprint('my own line')"
    tampered.cells = [c for c in tampered.cells
                      if c.metadata.get("nbgrader", {}).get("grade_id") != "check_shallow_approximation"]
    moved = nbformat.from_dict(solved)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in moved.cells]
    i, j = ids.index("check_sawtooth_net"), ids.index("check_count_linear_pieces")
    moved.cells[i], moved.cells[j] = moved.cells[j], moved.cells[i]
    for name, nb in {"solved": solved, "tampered": tampered, "moved": moved}.items():
        path = tmp / name / "depth.ipynb"
        path.parent.mkdir()
        nbformat.write(nb, path)
        runs[name] = (path, tfdl("check", str(path)))
    return runs


@pytest.mark.slow
def test_a_solved_notebook_gets_every_visible_point(checked):
    code, out, err = checked["solved"][1]
    assert code == 0, err
    auto = sum(p.points for p in depth.TOPIC.parts if p.grade_id.startswith("check_"))
    assert f"Visible checks: {auto:g} of {auto:g} points." in out


@pytest.mark.slow
def test_edited_and_deleted_check_cells_cost_their_part_and_the_maximum_stays(checked):
    code, out, err = checked["tampered"][1]
    assert code == 0, err
    auto = sum(p.points for p in depth.TOPIC.parts if p.grade_id.startswith("check_"))
    kept = depth.TOPIC.points["check_count_linear_pieces"] + depth.TOPIC.points["check_pieces_on_interval"]
    assert f"Visible checks: {kept:g} of {auto:g} points." in out
    assert "grade cell check_sawtooth_net edited (it is locked)" in out
    assert "grade cell check_shallow_approximation deleted" in out
    assert "will score 0 when graded" in out


@pytest.mark.slow
def test_moved_check_cells_are_named(checked):
    code, out, err = checked["moved"][1]
    assert code == 0, err
    assert "moved out of order" in out


@pytest.mark.slow
def test_checks_arrive_as_data_not_text(checked):
    """The grade cell displays its checks under REPORT_MIMETYPE; the self-check reads them from there."""
    nb, fatal = execute_copy(checked["solved"][0])
    assert fatal is None
    shown = [o for c in nb.cells for o in c.get("outputs", [])
             if o.output_type == "display_data" and REPORT_MIMETYPE in o.get("data", {})]
    from autograder.depth import TOPIC
    graded = [p.grade_id for p in TOPIC.parts if hasattr(p, "visible")]  # functions and derivations alike
    assert len(shown) == len(graded) >= 4
    parts, errors = self_check(nb, "depth")
    assert not errors
    auto = [p for p in parts if p.kind == "auto"]
    assert [p.grade_id for p in auto] == graded
    assert all(p.checks and all(c.passed for c in p.checks) for p in auto)
