"""Anchor a submission's grade cells to the assignment's source before anything is graded.

nbgrader itself trusts the submitted notebook's cell metadata: a duplicated grade id aborts a whole batch, a
deleted test cell silently becomes "needs manual grading", a test cell turned into markdown is never run.  Here
every grade cell of the source (as the gradebook records it: name, type, lock, checksum, and order) is looked up
in the submission, and each anomaly is named and costs only its own part:

* ``deleted``: no cell of the submission carries the grade id;
* ``duplicated``: more than one does;
* ``converted``: the cell type differs (code <-> markdown);
* ``edited``: a locked grade cell (a test cell) whose checksum differs from the source's -- its source, type,
  grade flags or points were changed;
* ``moved``: the grade cells are out of the source's order (the cells off a longest in-order run are named).

A locked cell that is not graded (e.g. the imports) is restored from the source when it was edited, as nbgrader's
``OverwriteCells`` does; that costs nothing and is noted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.utils import compute_checksum

from .course import Course, as_course

__all__ = ["SourceCell", "SourceSpec", "Anchor", "anchor", "load_spec"]


@dataclass
class SourceCell:
    name: str
    cell_type: str
    locked: bool
    checksum: str | None
    source: str  # the released source (hidden tests stripped)


@dataclass
class SourceSpec:
    """What the gradebook knows of one notebook of an assignment, plus the instructor's full test code."""

    assignment: str
    notebook: str
    grade_cells: list[tuple[str, float, str]]  # (grade id, max score, "auto" | "manual"), in source order
    cells: dict[str, SourceCell]  # every source cell the gradebook records (grade, solution and locked cells)
    tests: dict[str, str] = field(default_factory=dict)  # grade id -> the source notebook's code, hidden tests included

    @property
    def max_score(self) -> float:
        return float(sum(p for _, p, _ in self.grade_cells))


@dataclass
class Anchor:
    grade_id: str
    kind: str  # "auto" or "manual"
    points: float
    status: str = "ok"  # ok, deleted, duplicated, converted, edited, moved
    index: int | None = None  # index of the anchored cell in the submission

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def note(self) -> str:
        what = {"deleted": "deleted", "duplicated": "duplicated", "converted": "converted to another cell type",
                "edited": "edited (it is locked)", "moved": "moved out of order"}[self.status]
        return f"grade cell {self.grade_id} {what}"


def _grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta.get("grade_id") if isinstance(meta, dict) else None


def _in_order(sequence: list[int]) -> set[int]:
    """Positions of a longest strictly increasing subsequence (O(n^2), n = number of grade cells)."""
    n = len(sequence)
    best, prev = [1] * n, [-1] * n
    for i in range(n):
        for j in range(i):
            if sequence[j] < sequence[i] and best[j] + 1 > best[i]:
                best[i], prev[i] = best[j] + 1, j
    keep, i = set(), (max(range(n), key=best.__getitem__) if n else -1)
    while i >= 0:
        keep.add(i)
        i = prev[i]
    return keep


def anchor(cells: list, spec: SourceSpec) -> tuple[dict[str, Anchor], list[str]]:
    """``({grade id: Anchor}, notes)`` for the submitted ``cells`` against ``spec``."""
    where: dict[str, list[int]] = {}
    for i, cell in enumerate(cells):
        gid = _grade_id(cell)
        if gid is not None:
            where.setdefault(gid, []).append(i)
    anchors, notes = {}, []
    order = [g for g, _, _ in spec.grade_cells]
    for gid, points, kind in spec.grade_cells:
        a = Anchor(gid, kind, float(points))
        found = where.get(gid, [])
        src = spec.cells.get(gid)
        if not found:
            a.status = "deleted"
        elif len(found) > 1:
            a.status = "duplicated"
        else:
            a.index = found[0]
            cell = cells[a.index]
            if src is not None and cell.get("cell_type") != src.cell_type:
                a.status = "converted"
            elif src is not None and src.locked and src.checksum and _checksum(cell) != src.checksum:
                a.status = "edited"
        anchors[gid] = a
    placed = [(anchors[g].index, order.index(g)) for g in order if anchors[g].ok]
    placed.sort()
    keep = _in_order([rank for _, rank in placed])
    for pos, (_, rank) in enumerate(placed):
        if pos not in keep:
            anchors[order[rank]].status = "moved"
    notes += [a.note() for a in anchors.values() if not a.ok]
    for gid, found in where.items():
        src = spec.cells.get(gid)
        if gid in anchors or src is None:
            continue
        if src.locked and any(_checksum(cells[i]) != src.checksum for i in found):
            notes.append(f"locked cell {gid} was edited (restored from the source)")
    return anchors, notes


def _checksum(cell) -> str | None:
    try:
        return compute_checksum(cell)
    except Exception:  # noqa: BLE001 - malformed metadata
        return None


def _released(cell):
    """The cell as ``nbgrader generate_assignment`` releases it (a locked cell: hidden tests removed)."""
    import copy

    from nbgrader.preprocessors import ClearHiddenTests
    released = copy.deepcopy(cell)
    if released.cell_type == "code":
        ClearHiddenTests()._remove_hidden_test_region(released)
    return released


def load_spec(course: Course | Path, assignment: str) -> SourceSpec:
    """The grade cells and source cells of the assignment's notebook from the gradebook, and the full test code
    (hidden tests included) from the source notebook."""
    import nbformat
    from nbgrader.api import Gradebook

    course = as_course(course)
    with Gradebook(course.gradebook_url) as gb:
        nb = gb.find_notebook(assignment, assignment)
        cells = {c.name: SourceCell(c.name, c.cell_type, bool(c.locked), c.checksum, c.source or "")
                 for c in nb.source_cells}
        graded = {c.name: (float(c.max_score), c.cell_type) for c in nb.grade_cells}
    source = nbformat.read(course.source_notebook(assignment), as_version=4)
    grade_cells, tests = [], {}
    for cell in source.cells:
        gid = _grade_id(cell)
        if gid in cells and cells[gid].locked:  # the released version: hidden tests stripped, as students get it
            released = _released(cell)
            cells[gid] = SourceCell(gid, cell.cell_type, True, _checksum(released), released.source)
        if gid in graded:
            meta = cell.metadata.nbgrader
            auto = cell.cell_type == "code" and not meta.get("solution", False)
            grade_cells.append((gid, graded[gid][0], "auto" if auto else "manual"))
            if auto:
                tests[gid] = cell.source
    return SourceSpec(assignment, assignment, grade_cells, cells, tests)
