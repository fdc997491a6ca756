"""nbgrader's gradebook and folders, written as nbgrader's own commands would: registering an assignment and
its students (with the due date the course declares), submitting a notebook (with its submission time),
committing a graded result (gradebook grades, the late penalty, the flag formgrader shows, the autograded
notebook that ``generate_feedback`` and formgrader read), reading scores back (grades entered by hand in
formgrader override the autograder's, as in nbgrader), and ``tfdl``'s ledger of graded results.

Grades entered by hand are never undone by grading again: a part graded in formgrader keeps its manual score
and stays graded, unless the student's notebook changed since (then nbgrader's rule: it needs a look again).
An unreadable submission (not JSON, truncated, no cells) is entered too: zero for every part, flagged, with an
autograded notebook that says why, so that formgrader, the feedback and ``nbgrader export`` all show it.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import warnings
from pathlib import Path

from .course import Course, ToolError, as_course
from .deadlines import policy_of
from .results import PartResult, SubmissionResult
from .submission import fingerprint, read_notebook, source_spec

__all__ = ["submission_time", "submit", "ensure_in_gradebook", "set_duedates", "read_scores", "manual_grades",
           "with_manual_grades", "opened", "enter", "commit", "read_ledger"]

# ==================================================================================================================
# Registering, submitting, reading scores
# ==================================================================================================================
def submission_time(notebook: Path, student: str) -> datetime.datetime:
    """When ``student`` submitted ``notebook`` (naive UTC, as the gradebook stores times): nbgrader's
    ``timestamp.txt`` in the student's own folder (beside the notebook or above it, up to the folder named after
    the student, as ``nbgrader collect`` and ``zip_collect`` leave it), else the notebook file's modification
    time. Grading again reads the same time."""
    from nbgrader.utils import parse_utc
    notebook = Path(notebook).resolve()
    folders = []
    for folder in notebook.parents:
        folders.append(folder)
        if folder.name == student:
            break
    else:
        folders = []  # <student>.ipynb at the top of a submissions folder: that folder is everyone's
    for folder in folders:
        stamp = folder / "timestamp.txt"
        if stamp.is_file():
            try:
                return parse_utc(stamp.read_text().strip())
            except Exception:  # noqa: BLE001 - an unparsable stamp: the file's own time
                break
    mtime = notebook.stat().st_mtime
    return datetime.datetime.fromtimestamp(mtime, datetime.timezone.utc).replace(tzinfo=None)


def submit(course: Course | Path, assignment: str, student: str, notebook: Path,
           timestamp: datetime.datetime | None = None) -> datetime.datetime:
    """Copy a notebook into nbgrader's submitted folder of the student (replacing an old one) with its
    submission time (``timestamp``, else :func:`submission_time`) in ``timestamp.txt``; return that time."""
    course = as_course(course)
    notebook = Path(notebook).resolve()
    when = timestamp or submission_time(notebook, student)
    dest = course.submitted(student, assignment)
    if notebook.parent != dest:  # grading nbgrader's own submitted folder: the notebook is there already
        data = notebook.read_bytes()
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        (dest / f"{assignment}.ipynb").write_bytes(data)
    (dest / "timestamp.txt").write_text(when.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
    return when


def ensure_in_gradebook(course: Course | Path, assignment: str, students: list[str]) -> None:
    """Register the assignment (from its source, as a release would, without touching the release folder) and
    the students."""
    from nbgrader.api import Gradebook
    course = as_course(course)
    course.check_assignment(assignment)
    _check_policy(course)
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
    set_duedates(course, [assignment])


def set_duedates(course: Course | Path, assignments: list[str] | None = None) -> None:
    """Write the due dates the course declares (``c.LatePolicy.duedates``) into the gradebook's assignments
    (nbgrader's ``duedate``); an assignment without a declared date keeps the gradebook's (e.g. one set in
    formgrader). A date that does not parse stops with a message, before anyone is graded."""
    from nbgrader.api import Gradebook
    course = as_course(course)
    policy = _check_policy(course)
    with Gradebook(course.gradebook_url) as gb:
        for a in gb.assignments:
            due = policy.duedate(a.name)
            if due is not None and (assignments is None or a.name in assignments) and a.duedate != due:
                a.duedate = due
        gb.db.commit()


def _check_policy(course: Course):
    """The course's late policy, or a message saying what to fix in ``nbgrader_config.py``."""
    policy = policy_of(course.config)
    problems = policy.problems()
    if problems:
        raise ToolError("the late policy in nbgrader_config.py must be fixed first (no student was graded):\n  "
                        + "\n  ".join(problems))
    return policy


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


def manual_grades(course: Course | Path, assignment: str) -> dict[str, dict[str, float]]:
    """student -> {grade id: score} of the parts graded by hand in formgrader (``manual_score`` set; the
    score includes the extra credit, as nbgrader counts it)."""
    from nbgrader.api import Gradebook, MissingEntry
    course = as_course(course)
    out: dict[str, dict[str, float]] = {}
    if course.gradebook_file is not None and not course.gradebook_file.is_file():
        return out
    with Gradebook(course.gradebook_url) as gb:
        try:
            submissions = gb.find_assignment(assignment).submissions
        except MissingEntry:
            return out
        for sub in submissions:
            for nb in sub.notebooks:
                for g in nb.grades:
                    if g.manual_score is not None:
                        out.setdefault(sub.student.id, {})[g.name] = float(g.score)
    return out


def with_manual_grades(course: Course | Path, assignment: str,
                       results: list[SubmissionResult]) -> list[SubmissionResult]:
    """``results`` with the scores entered by hand in formgrader in place of the autograder's (nbgrader's rule:
    a manual score overrides the auto score), each such part noted; the results are changed in place."""
    manual = manual_grades(course, assignment)
    for r in results:
        by_hand = manual.get(r.student, {})
        changed = []
        for p in r.parts:
            if p.grade_id in by_hand:
                if p.score != by_hand[p.grade_id]:
                    changed.append(f"{p.grade_id} {by_hand[p.grade_id]:g}"
                                   + (f" (autograder {p.score:g})" if p.score is not None else ""))
                p.score = by_hand[p.grade_id]
        if changed:
            r.notes.append("graded by hand in formgrader: " + ", ".join(changed))
    return results


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


def _note_notebook(result: SubmissionResult):
    """The autograded notebook of a submission that could not be read: the grading notes, for formgrader and
    the feedback."""
    import nbformat
    lines = ["**Grading notes**", "", *(f"- {x}" for x in result.flags + result.notes),
             "", "Every part scores 0: the submitted file is not a notebook that can be read."]
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("\n".join(lines))])


def _readable(notebook: Path) -> bool:
    try:
        read_notebook(notebook)
    except Exception:  # noqa: BLE001 - not JSON, truncated, no cells, ...
        return False
    return True


def opened(course: Course | Path, gb=None):
    """A context with nbgrader's ``Gradebook`` of the course: ``gb`` if given (left open: a batch commits all its
    results through one, which spares a new database engine, its table checks and its compiled queries per
    result; what fails is rolled back), else a new one, closed at the end."""
    import contextlib

    @contextlib.contextmanager
    def shared():
        try:
            yield gb
        except BaseException:
            gb.db.rollback()
            raise

    if gb is not None:
        return shared()
    from nbgrader.api import Gradebook
    return Gradebook(as_course(course).gradebook_url)


def commit(course: Course | Path, assignment: str, notebook: Path | None, result: SubmissionResult,
           spec=None, gb=None) -> None:
    """Write one result where nbgrader keeps it (:func:`enter`), then to the ledger. ``gb``: see :func:`opened`."""
    course = as_course(course)
    enter(course, assignment, notebook, result, spec, gb)
    ledger = course.ledger(assignment)
    ledger.parent.mkdir(parents=True, exist_ok=True)
    entry = {"student": result.student, "fingerprint": fingerprint(course, assignment), "result": result.to_dict()}
    with ledger.open("a") as f:
        f.write(json.dumps(entry) + "\n")
        f.flush()
        os.fsync(f.fileno())


def enter(course: Course | Path, assignment: str, notebook: Path | None, result: SubmissionResult,
          spec=None, gb=None) -> None:
    """Write one result where nbgrader keeps it: the gradebook, the submitted and the autograded folders.

    A graded notebook gets its grades, its submission time, the late penalty of the course's policy and, when
    tfdl flagged it, formgrader's flag; an unreadable one gets zero for every part and the flag. A grader error
    (``result.valid`` false on a readable notebook) leaves the gradebook as it was."""
    import nbformat

    course = as_course(course)
    spec = spec or source_spec(course, assignment)
    with opened(course, gb) as book:
        book.update_or_create_student(result.student)
    nb = None
    if notebook is not None:
        if result.valid:
            nb = _autograded_notebook(Path(notebook), result, spec)
        elif not _readable(Path(notebook)):
            nb = _note_notebook(result)
    if nb is not None:
        before = course.submitted(result.student, assignment) / f"{assignment}.ipynb"
        changed = not before.is_file() or before.read_bytes() != Path(notebook).read_bytes()
        timestamp = submit(course, assignment, result.student, Path(notebook))
        out = course.autograded(result.student, assignment)
        out.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out / f"{assignment}.ipynb")
        _write_grades(course, assignment, result, timestamp, changed, gb)


def _write_grades(course: Course, assignment: str, result: SubmissionResult, timestamp: datetime.datetime,
                  changed: bool, shared=None) -> None:
    """The gradebook's grades of one result. A part graded by hand keeps its manual score and stays graded
    unless the notebook ``changed`` since (then it needs a look again, as nbgrader's autograde says)."""
    policy = policy_of(course.config)
    with opened(course, shared) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLAlchemy's autoflush warnings inside nbgrader's own API
        sub = gb.update_or_create_submission(assignment, result.student, timestamp=timestamp)
        by_id = {p.grade_id: p for p in result.parts}
        for snb in sub.notebooks:
            for g in snb.grades:
                part = by_id.get(g.name)
                if part is None:
                    continue
                by_hand = g.manual_score is not None
                if result.valid and part.kind == "manual" and part.status == "ok":
                    g.auto_score, g.needs_manual_grade = None, changed or not by_hand
                else:
                    g.auto_score, g.needs_manual_grade = float(part.score or 0.0), by_hand and changed
            for c in snb.comments:
                c.auto_comment = None
            # formgrader's flag: on while tfdl flags the submission; a reviewer's own flag stays until it changes
            snb.flagged = bool(result.flags) or (bool(snb.flagged) and not changed)
        gb.db.commit()
        seconds_late = sub.total_seconds_late
        for snb in sub.notebooks:  # as nbgrader's AssignLatePenalties would, with the score just written
            snb.late_submission_penalty = policy.penalty(snb.score, seconds_late) or None
        gb.db.commit()


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


