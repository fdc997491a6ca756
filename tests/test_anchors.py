"""autograder.anchors: every grade cell of a submission is anchored to the source (id, type, checksum, order)."""
from __future__ import annotations

import copy

import nbformat
import pytest

from autograder.anchors import SourceCell, SourceSpec, anchor
from nbgrader.utils import compute_checksum


def _cell(kind, source, gid, grade=False, solution=False, locked=False, points=None):
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    meta = {"grade": grade, "grade_id": gid, "locked": locked, "schema_version": 3, "solution": solution}
    if points is not None:
        meta["points"] = points
    return make(source, metadata={"nbgrader": meta})


@pytest.fixture
def release():
    return [_cell("code", "import numpy as np", "setup", locked=True),
            _cell("code", "def f(x):\n    raise NotImplementedError", "f", solution=True),
            _cell("code", "check_f(f)", "test_f", grade=True, locked=True, points=2),
            _cell("code", "def g(x):\n    raise NotImplementedError", "g", solution=True),
            _cell("code", "check_g(g)", "test_g", grade=True, locked=True, points=3),
            _cell("markdown", "YOUR ANSWER HERE", "explain", grade=True, solution=True, points=1)]


@pytest.fixture
def spec(release):
    cells = {c.metadata.nbgrader["grade_id"]: SourceCell(c.metadata.nbgrader["grade_id"], c.cell_type,
                                                         c.metadata.nbgrader["locked"], compute_checksum(c), c.source,
                                                         {k: c.metadata.nbgrader[k] for k in
                                                          ("grade", "solution", "locked")}, c.id)
             for c in release}
    return SourceSpec("a", "a", [("test_f", 2.0, "auto"), ("test_g", 3.0, "auto"), ("explain", 1.0, "manual")],
                      cells, {"test_f": "check_f(f)", "test_g": "check_g(g)"})


def statuses(cells, spec):
    anchors, notes = anchor(cells, spec)
    return {g: a.status for g, a in anchors.items()}, notes


def test_an_honest_submission_is_anchored(release, spec):
    cells = copy.deepcopy(release)
    cells[1].source = "def f(x):\n    return x"
    cells[5].source = "my written answer"
    extra = nbformat.v4.new_code_cell("print('a cell of my own')")
    cells.insert(2, extra)
    got, notes = statuses(cells, spec)
    assert got == {"test_f": "ok", "test_g": "ok", "explain": "ok"} and notes == []
    assert anchor(cells, spec)[0]["test_f"].index == 3


@pytest.mark.parametrize("tamper, gid, status", [
    (lambda c: c.pop(2), "test_f", "deleted"),
    (lambda c: c.insert(3, copy.deepcopy(c[2])), "test_f", "duplicated"),
    (lambda c: c.__setitem__(2, _cell("markdown", "check_f(f)", "test_f", grade=True, locked=True, points=2)),
     "test_f", "converted"),
    (lambda c: setattr(c[2], "source", "2"), "test_f", "edited"),
    (lambda c: c.append(c.pop(2)), "test_f", "moved"),
    (lambda c: c.__setitem__(5, _cell("code", "answer", "explain", grade=True, solution=True, points=1)),
     "explain", "converted"),
])
def test_each_anomaly_is_named_and_only_its_part_is_affected(release, spec, tamper, gid, status):
    cells = copy.deepcopy(release)
    tamper(cells)
    got, notes = statuses(cells, spec)
    assert got[gid] == status
    assert all(s == "ok" for g, s in got.items() if g != gid)
    assert any(gid in n for n in notes)


def _set(i, key, value):
    return lambda c: c[i].metadata.nbgrader.__setitem__(key, value)


def _swap_ids(c):
    c[2].metadata.nbgrader["grade_id"], c[4].metadata.nbgrader["grade_id"] = "test_g", "test_f"


@pytest.mark.parametrize("tamper, cell, what", [
    (_set(2, "points", 20), "test_f", "points 20 (the source: 2)"),
    (_set(2, "grade", False), "test_f", "grade False (the source: True)"),
    (_set(2, "locked", False), "test_f", "locked False (the source: True)"),
    (_set(4, "solution", True), "test_g", "solution True (the source: False)"),
    (lambda c: c[2].metadata.pop("nbgrader"), "test_f", "its nbgrader metadata was removed"),
    (_set(2, "grade_id", "test_g"), "test_f", "its grade id was changed to 'test_g'"),
    (_swap_ids, "test_g", "its grade id was changed to 'test_f'"),
    (lambda c: c[5].metadata.pop("nbgrader"), "explain", "its nbgrader metadata was removed"),
    (lambda c: c[1].metadata.nbgrader.update(grade=True, points=10), "f", "claims to be graded (10 points)"),
    (lambda c: [m.metadata.nbgrader.__setitem__("points", 100) for m in c if m.metadata.nbgrader.get("grade")],
     "explain", "points 100 (the source: 1)"),
])
def test_edited_metadata_is_flagged_and_costs_nothing(release, spec, tamper, cell, what):
    """The source decides which cells are graded and their points: a test cell is found by its code, whatever
    its metadata says (removed, flags flipped, points changed, grade id swapped); the change is only flagged."""
    cells = copy.deepcopy(release)
    tamper(cells)
    got, notes = statuses(cells, spec)
    assert got == {"test_f": "ok", "test_g": "ok", "explain": "ok"}, notes
    assert any(cell in n and what in n for n in notes), notes
    anchors = anchor(cells, spec)[0]
    assert (anchors["test_f"].index, anchors["test_g"].index, anchors["explain"].index) == (2, 4, 5)
    assert {a.points for a in anchors.values()} == {2.0, 3.0, 1.0}  # the source's points


def test_only_the_part_whose_test_code_changed_loses_even_with_its_metadata_edited(release, spec):
    cells = copy.deepcopy(release)
    cells[2].source = "check_f(f)\nprint('mine')"  # test_f's code changed
    cells[4].metadata.nbgrader["points"] = 30  # test_g: only its metadata
    cells.insert(5, nbformat.v4.new_code_cell("check_g(g)"))  # test_g's code pasted into a cell of the student's
    got, notes = statuses(cells, spec)
    assert got == {"test_f": "edited", "test_g": "ok", "explain": "ok"}
    assert anchor(cells, spec)[0]["test_g"].index == 4  # the cell with the grade id, not the student's copy


def test_an_edited_locked_cell_that_is_not_graded_is_only_noted(release, spec):
    cells = copy.deepcopy(release)
    cells[0].source = "import numpy as np\nnp.allclose = lambda *a, **k: True"
    got, notes = statuses(cells, spec)
    assert set(got.values()) == {"ok"} and notes == ["locked cell setup was edited (restored from the source)"]


def test_an_empty_notebook_has_every_grade_cell_deleted(spec):
    got, notes = statuses([], spec)
    assert set(got.values()) == {"deleted"} and len(notes) == 3
