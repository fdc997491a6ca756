"""autograder.nbcells: nbgrader's reading of cells without nbgrader, proven equal to nbgrader's own.

Every cell of every notebook of the course (sources, releases, the test fixtures) and hand-made edge cases (a
displayed partial score, 0, a negative or too large score, a list, text, stderr, an error, a solution cell with
and without its checksum) get the same answer from autograder.nbcells as from nbgrader.utils.
"""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output

from autograder import nbcells
from nbgrader import utils

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted([*ROOT.glob("solutions/*/*.ipynb"), *ROOT.glob("exercises/*/*.ipynb"),
                    *ROOT.glob("tests/fixtures/solutions/*/*.ipynb")])


def _answers(fn_name, cell):
    outcomes = []
    for module in (nbcells, utils):
        try:
            outcomes.append(("value", getattr(module, fn_name)(cell)))
        except Exception as exc:  # noqa: BLE001 - the same exception type is part of the behaviour
            outcomes.append(("raises", type(exc).__name__))
    return outcomes


def _edge_cells():
    meta = {"grade": True, "grade_id": "part", "locked": True, "points": 3, "schema_version": 3, "solution": False}
    cells = []
    for outputs in ([], [new_output("stream", name="stdout", text="ok\n")],
                    [new_output("stream", name="stderr", text="warning\n")],
                    [new_output("error", ename="E", evalue="x", traceback=[])],
                    *([new_output("execute_result", data={"text/plain": v}, execution_count=1)]
                      for v in ("1.5", "0", "0.0", "-1", "4", "3", "nan?", ["2"], ["1", "2"], "2.75"))):
        cells.append(new_code_cell("report.score()", metadata={"nbgrader": dict(meta)}, outputs=outputs))
    answer = new_markdown_cell("YOUR ANSWER HERE", metadata={"nbgrader": dict(meta, solution=True, locked=False)})
    cells.append(answer)
    stamped = copy.deepcopy(answer)
    stamped.metadata.nbgrader["checksum"] = utils.compute_checksum(stamped)
    cells.append(stamped)
    cells.append(new_code_cell("x = 1", metadata={"nbgrader": {"grade": False, "grade_id": "setup", "locked": True,
                                                               "schema_version": 3, "solution": False}}))
    cells.append(new_code_cell("x = 1"))
    # metadata a student edited into odd values (flags that are not booleans, points as text)
    for odd in ({"grade": 1, "solution": 0, "locked": "yes"}, {"grade": "", "locked": 1}, {"points": "3"},
                {"solution": 1, "grade": 1, "locked": True}):
        cells.append(new_code_cell("report.score()", metadata={"nbgrader": dict(meta, **odd)}))
    return cells


def _cells():
    for path in NOTEBOOKS:
        yield from nbformat.read(path, as_version=4).cells
    yield from _edge_cells()


@pytest.mark.parametrize("fn_name", ["is_grade", "is_solution", "is_locked", "compute_checksum", "determine_grade"])
def test_every_cell_reads_as_nbgrader_reads_it(fn_name):
    assert len(NOTEBOOKS) >= 10
    n = 0
    for cell in _cells():
        if fn_name == "compute_checksum" and "nbgrader" not in cell.metadata:
            continue
        if fn_name == "determine_grade" and not utils.is_grade(cell):
            continue
        ours, theirs = _answers(fn_name, cell)
        assert ours == theirs, (fn_name, cell.source[:80], ours, theirs)
        n += 1
    assert n >= 15


def test_the_edge_cases_cover_every_branch_of_the_partial_credit():
    grades = [utils.determine_grade(c) for c in _edge_cells()[:4]]
    assert grades == [(3, 3), (3, 3), (0, 3), (0, 3)]  # nothing, stdout: full; stderr, error: 0
    with pytest.raises(ValueError):
        nbcells.determine_grade(_edge_cells()[8])  # "4" > 3 points
