"""Anchor a submission's grade cells to the assignment's source before anything is graded.

nbgrader itself trusts the submitted notebook's cell metadata: a duplicated grade id aborts a whole batch, a
deleted test cell silently becomes "needs manual grading", a test cell turned into markdown is never run.  Here
the **source decides**: which cells are graded, their points, and their test code (the instructor's, hidden tests
included, is what runs).  The submission's metadata is something the student can edit, so it never decides
points; it only helps find the cells.  Each grade cell of the source is looked up in the submission:

* a locked grade cell (a test cell) by its **code**, compared with the released source's (not with a checksum
  stored in the metadata, which the student can edit too), the grade id in the metadata breaking ties; so a cell
  whose metadata was removed, whose points or flags were changed, or whose grade id was swapped with another
  part's is still found, and that is only flagged;
* any other grade cell (e.g. a written answer) by its grade id, else by its nbformat cell id.

Each anomaly of a part's own cell is named and costs only that part:

* ``deleted``: the cell is not in the submission;
* ``duplicated``: more than one cell is it (a copy keeping its grade id);
* ``converted``: the cell type differs (code <-> markdown);
* ``edited``: a locked grade cell whose code differs from the source's (it is found by its grade id only);
* ``moved``: the grade cells are out of the source's order (the cells off a longest in-order run are named).

Edited metadata (points, the grade/solution/locked flags, a removed or changed grade id), and a cell claiming
points that the source does not grade, are flagged and change nothing.  A locked cell that is not graded (e.g.
the imports) is restored from the source when it was edited, as nbgrader's ``OverwriteCells`` does; that costs
nothing and is noted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .nbcells import compute_checksum  # nbgrader's, without nbgrader: the student side anchors too

from .course import Course, as_course

__all__ = ["SourceCell", "SourceSpec", "Anchor", "anchor", "load_spec"]


@dataclass
class SourceCell:
    name: str
    cell_type: str
    locked: bool
    checksum: str | None
    source: str  # the released source (hidden tests stripped); "" where unknown (the student side)
    meta: dict | None = None  # the nbgrader metadata as released (grade, solution, locked, points), where known
    cell_id: str | None = None  # the nbformat cell id, where known


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


def _meta(cell) -> dict | None:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else None


def _grade_id(cell) -> str | None:
    meta = _meta(cell)
    gid = meta.get("grade_id") if meta is not None else None
    return gid if isinstance(gid, str) else None


def _code(cell) -> str:
    """A cell's source as compared with the source's: line endings and trailing blanks do not count (the
    instructor's code runs anyway, never the submission's)."""
    source = cell.get("source", "")
    if not isinstance(source, str):
        source = "".join(str(x) for x in source) if isinstance(source, list) else str(source)
    return "\n".join(line.rstrip() for line in source.replace("\r\n", "\n").split("\n")).strip()


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


def _metadata_changes(cell, gid: str, src: "SourceCell | None", points: float) -> list[str]:
    """What of the anchored cell's nbgrader metadata differs from the source's (flagged, never scored)."""
    meta = _meta(cell)
    if meta is None:
        return ["its nbgrader metadata was removed"]
    changes = []
    if meta.get("grade_id") != gid:
        changes.append(f"its grade id was changed to {meta.get('grade_id')!r}")
    want = dict((src.meta or {}) if src is not None else {})
    want.setdefault("grade", True)
    want["points"] = points
    for key in ("grade", "solution", "locked"):
        if key in want and bool(meta.get(key, False)) != bool(want[key]):
            changes.append(f"{key} {bool(meta.get(key, False))} (the source: {bool(want[key])})")
    try:
        claimed = float(meta.get("points", 0) or 0)
    except (TypeError, ValueError):
        claimed = float("nan")
    if claimed != float(points):
        changes.append(f"points {meta.get('points')!r} (the source: {points:g})")
    return changes


def anchor(cells: list, spec: SourceSpec) -> tuple[dict[str, Anchor], list[str]]:
    """``({grade id: Anchor}, notes)`` for the submitted ``cells`` against ``spec``."""
    ids = [_grade_id(c) for c in cells]
    codes = [_code(c) for c in cells]
    anchors, notes, claimed = {}, [], set()
    order = [g for g, _, _ in spec.grade_cells]
    for gid, points, kind in spec.grade_cells:
        a = Anchor(gid, kind, float(points))
        src = spec.cells.get(gid)
        by_id = [i for i, g in enumerate(ids) if g == gid]
        if src is not None and src.locked and src.source:  # a test cell: found by its code
            want = _code({"source": src.source})
            same = [i for i, c in enumerate(codes) if c == want and i not in claimed]
            if len(same) > 1:  # several cells hold the code: the one(s) with the grade id are it
                same = [i for i in same if ids[i] == gid] or same
            if len(same) == 1:
                a.index = same[0]
            elif len(same) > 1:
                a.status = "duplicated"
            else:
                rest = [i for i in by_id if i not in claimed]
                if rest:
                    a.status, a.index = ("edited", rest[0]) if len(rest) == 1 else ("duplicated", None)
                else:
                    a.status = "deleted"
        elif src is not None and src.locked and src.checksum:  # the student side knows only the checksum
            if len(by_id) == 1:
                a.index = by_id[0]
                if _checksum(cells[a.index]) != src.checksum:
                    a.status = "edited"
            else:
                a.status = "deleted" if not by_id else "duplicated"
        else:  # a cell the student writes in (e.g. a written answer): found by its grade id or its cell id
            found = by_id or [i for i, c in enumerate(cells)
                              if src is not None and src.cell_id and c.get("id") == src.cell_id and ids[i] is None]
            if len(found) == 1:
                a.index = found[0]
            else:
                a.status = "deleted" if not found else "duplicated"
        if a.index is not None:
            claimed.add(a.index)
            cell = cells[a.index]
            if a.status == "ok" and src is not None and cell.get("cell_type") != src.cell_type:
                a.status = "converted"
            if a.status == "ok":
                changes = _metadata_changes(cell, gid, src, float(points))
                if changes:
                    notes.append(f"grade cell {gid}: {'; '.join(changes)} -- ignored, the source decides")
        anchors[gid] = a
    placed = [(anchors[g].index, order.index(g)) for g in order if anchors[g].ok]
    placed.sort()
    keep = _in_order([rank for _, rank in placed])
    for pos, (_, rank) in enumerate(placed):
        if pos not in keep:
            anchors[order[rank]].status = "moved"
    notes += [a.note() for a in anchors.values() if not a.ok]
    for i, cell in enumerate(cells):  # a cell claiming points the source does not give it
        meta, gid = _meta(cell), ids[i]
        if meta is None or i in claimed or gid in anchors or not (meta.get("grade") or meta.get("points")):
            continue
        notes.append(f"cell {gid or i + 1} claims to be graded ({meta.get('points', 0)!r} points) but the source "
                     "does not grade it -- ignored")
    for gid in dict.fromkeys(ids):
        src = spec.cells.get(gid) if gid is not None else None
        if gid in anchors or src is None or not src.locked:
            continue
        found = [i for i, g in enumerate(ids) if g == gid]
        if src.source and any(codes[i] != _code({"source": src.source}) for i in found):
            notes.append(f"locked cell {gid} was edited (restored from the source)")
        elif not src.source and src.checksum and any(_checksum(cells[i]) != src.checksum for i in found):
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
        if gid in cells:
            cells[gid].meta = {"grade": gid in graded, "solution": bool(cell.metadata.nbgrader.get("solution")),
                               "locked": cells[gid].locked}
            cells[gid].cell_id = cell.get("id")
        if gid in graded:
            meta = cell.metadata.nbgrader
            auto = cell.cell_type == "code" and not meta.get("solution", False)
            grade_cells.append((gid, graded[gid][0], "auto" if auto else "manual"))
            if auto:
                tests[gid] = cell.source
    return SourceSpec(assignment, assignment, grade_cells, cells, tests)
