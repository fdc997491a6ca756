"""nbgrader's gradebook and folders, written as nbgrader's own commands would: registering an assignment and
its students, submitting a notebook, committing a graded result (gradebook grades, the autograded notebook that
``generate_feedback`` and formgrader read), reading scores back, and ``tfdl``'s ledger of graded results.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import warnings
from pathlib import Path

from .course import Course, ToolError, as_course
from .results import PartResult, SubmissionResult
from .submission import fingerprint, read_notebook, source_spec

__all__ = ["submit", "ensure_in_gradebook", "read_scores", "commit", "read_ledger"]

# ==================================================================================================================
# Registering, submitting, reading scores
# ==================================================================================================================
def submit(course: Course | Path, assignment: str, student: str, notebook: Path) -> None:
    """Copy a notebook into nbgrader's submitted folder of the student with a timestamp (replacing an old one)."""
    course = as_course(course)
    dest = course.submitted(student, assignment)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copy(notebook, dest / f"{assignment}.ipynb")
    now = datetime.datetime.now(datetime.timezone.utc)
    (dest / "timestamp.txt").write_text(now.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))


def ensure_in_gradebook(course: Course | Path, assignment: str, students: list[str]) -> None:
    """Register the assignment (from its source, as a release would, without touching the release folder) and
    the students."""
    from nbgrader.api import Gradebook
    course = as_course(course)
    course.check_assignment(assignment)
    known = False
    if course.gradebook_file is None or course.gradebook_file.is_file():
        with Gradebook(course.gradebook_url) as gb:
            known = assignment in {a.name for a in gb.assignments}
    if not known:  # e.g. a fresh clone: the release is committed but the gradebook is not
        scratch = course.work / "release"
        run = course.nbgrader("generate_assignment", assignment, "--force",
                              f"--CourseDirectory.release_directory={scratch}")
        if run.returncode != 0:
            raise ToolError(f"could not enter {assignment} in the gradebook: {run.error_line()}\n{run.output}")
    with Gradebook(course.gradebook_url) as gb:
        for s in students:  # so that nbgrader's export lists every student, even one that could not be graded
            gb.update_or_create_student(s)


def read_scores(course: Course | Path, assignment: str, student: str) -> SubmissionResult:
    """The student's grades of ``assignment`` in the gradebook (cell order of the assignment), manual grades
    included; a part that still needs manual grading is noted."""
    from nbgrader.api import Gradebook, MissingEntry
    course = as_course(course)
    result = SubmissionResult(student)
    with Gradebook(course.gradebook_url) as gb:
        a = gb.find_assignment(assignment)
        cells = [(nb.name, c.name, float(c.max_score), c.cell_type) for nb in a.notebooks for c in nb.grade_cells]
        try:
            sub = gb.find_submission(assignment, student)
        except MissingEntry:
            result.parts = [PartResult(c, "auto" if t == "code" else "manual", m, 0.0) for _, c, m, t in cells]
            return result
        grades = {(g.notebook.name, g.name): g for nb in sub.notebooks for g in nb.grades}
        manual = []
        for nb_name, cell, max_score, cell_type in cells:
            g = grades.get((nb_name, cell))
            kind = "auto" if g is not None and g.auto_score is not None or cell_type == "code" else "manual"
            result.parts.append(PartResult(cell, kind, max_score, float(g.score) if g else 0.0))
            if g is not None and g.needs_manual_grade:
                manual.append(cell)
    if manual:
        result.notes.append("needs manual grading: " + ", ".join(manual))
    return result


# ==================================================================================================================
# Committing a result: gradebook, submitted and autograded notebooks, ledger
# ==================================================================================================================
def _autograded_notebook(notebook: Path, result: SubmissionResult, spec):
    """The student's notebook as nbgrader's autograde would leave it, with each test cell's released source
    (no hidden tests), its report as output and its score as the displayed value."""
    import nbformat
    nb = read_notebook(notebook)
    by_id = {p.grade_id: p for p in result.parts}
    seen, cells = set(), []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader")
        gid = meta.get("grade_id") if isinstance(meta, dict) else None
        if gid is not None and (gid in seen or gid not in spec.cells):
            cell.metadata.pop("nbgrader", None)  # a copy or an unknown grade id: plain cell in the feedback
            gid = None
        if gid is not None:
            seen.add(gid)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        part = by_id.get(gid)
        src = spec.cells.get(gid) if gid else None
        if src is not None and src.locked and src.cell_type == cell.cell_type:
            cell.source = src.source
        if part is not None and part.kind == "auto" and cell.cell_type == "code":
            text = part.feedback or ""
            if text:
                cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=text + "\n"))
            cell.outputs.append(nbformat.v4.new_output("execute_result", data={"text/plain": f"{part.score:g}"},
                                                       execution_count=1))
        cells.append(cell)
    if result.flags or result.notes:
        lines = ["**Grading notes**", ""] + [f"- {x}" for x in result.flags + result.notes]
        cells.insert(0, nbformat.v4.new_markdown_cell("\n".join(lines)))
    nb.cells = cells
    return nb


def commit(course: Course | Path, assignment: str, notebook: Path | None, result: SubmissionResult,
           spec=None) -> None:
    """Write one result where nbgrader keeps it (gradebook, submitted and autograded folders), then to the
    ledger."""
    import nbformat
    from nbgrader.api import Gradebook

    course = as_course(course)
    spec = spec or source_spec(course, assignment)
    with Gradebook(course.gradebook_url) as gb:
        gb.update_or_create_student(result.student)
    if result.valid and notebook is not None:
        submit(course, assignment, result.student, Path(notebook))
        nb = _autograded_notebook(Path(notebook), result, spec)
        out = course.autograded(result.student, assignment)
        out.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out / f"{assignment}.ipynb")
        stamp = course.submitted(result.student, assignment) / "timestamp.txt"
        timestamp = datetime.datetime.strptime(stamp.read_text().strip(), "%Y-%m-%d %H:%M:%S.%f UTC")
        with Gradebook(course.gradebook_url) as gb, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SQLAlchemy's autoflush warnings inside nbgrader's own API
            sub = gb.update_or_create_submission(assignment, result.student, timestamp=timestamp)
            by_id = {p.grade_id: p for p in result.parts}
            for snb in sub.notebooks:
                for g in snb.grades:
                    part = by_id.get(g.name)
                    if part is None:
                        continue
                    if part.kind == "manual" and part.status == "ok":
                        g.auto_score, g.needs_manual_grade = None, True
                    else:
                        g.auto_score, g.needs_manual_grade = float(part.score or 0.0), False
                for c in snb.comments:
                    c.auto_comment = None
            gb.db.commit()
    ledger = course.ledger(assignment)
    ledger.parent.mkdir(parents=True, exist_ok=True)
    entry = {"student": result.student, "fingerprint": fingerprint(course, assignment), "result": result.to_dict()}
    with ledger.open("a") as f:
        f.write(json.dumps(entry) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_ledger(course: Course | Path, assignment: str) -> dict[str, dict]:
    """student -> last ledger entry (a torn last line from an interrupted write is ignored)."""
    path = as_course(course).ledger(assignment)
    entries = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                e = json.loads(line)
                entries[e["student"]] = e
            except (ValueError, KeyError, TypeError):
                continue
    return entries


