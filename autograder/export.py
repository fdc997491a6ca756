"""Grade exports from nbgrader's gradebook: nbgrader's own CSV and gradebook CSVs that Canvas and Moodle import.

Every format is built from the same rows (:func:`grade_rows`), one per student and assignment:

* only assignments someone was graded on: an assignment nobody was graded on has no rows and no column (a
  column of zeros imported into an LMS would overwrite real grades);
* a student with no submission of an exported assignment has an empty score, never 0 (the LMS keeps what it
  has; giving 0 for a missing submission is the instructor's decision);
* the score is the gradebook's, grades entered by hand in formgrader included (nbgrader's rule: a manual score
  overrides the autograder's), minus the late penalty of the course's policy (:mod:`autograder.deadlines`),
  computed from that score, the submission time and the due date (plus any extension granted);
* the students' ids are the gradebook's (``nbgrader db student add`` or formgrader): id, names, email and
  ``lms_user_id``.

Formats:

``nbgrader``
    nbgrader's CSV columns in nbgrader's order, then ``seconds_late``, ``flagged`` (formgrader's flag, set
    by ``tfdl`` on tampered and unreadable submissions) and ``needs_manual_grade``. :class:`CsvExport` is an
    nbgrader export plugin: the course's ``nbgrader_config.py`` names it (``c.ExportApp.plugin_class``), so plain
    ``nbgrader export`` writes this file too.
``canvas``
    Canvas's gradebook import: ``Student, ID, SIS User ID, SIS Login ID, Section``, one column per assignment, a
    ``Points Possible`` row. ``ID`` is the student's ``lms_user_id`` (Canvas's user id), ``SIS User ID`` the
    gradebook's student id; Canvas matches a row on either.
``moodle``
    Moodle's CSV grade import: ``First name, Last name, ID number, Email address``, one column per assignment;
    on import map users from ``ID number`` (the gradebook's student id, Moodle's idnumber) or ``Email address``.
"""
from __future__ import annotations

import csv
import datetime
from dataclasses import dataclass
from pathlib import Path

from nbgrader.plugins import ExportPlugin

from .course import Course, ToolError, as_course
from .deadlines import LatePolicy, policy_of
from .gradebook import set_duedates

__all__ = ["FORMATS", "Row", "grade_rows", "CsvExport", "export", "write_nbgrader_csv"]

FORMATS = ("nbgrader", "canvas", "moodle")
NBGRADER_COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                    "raw_score", "late_submission_penalty", "score", "max_score"]
EXTRA_COLUMNS = ["seconds_late", "flagged", "needs_manual_grade"]


@dataclass
class Row:
    """One student's grade of one assignment (scores None: no submission)."""

    assignment: str
    duedate: datetime.datetime | None
    timestamp: datetime.datetime | None
    student_id: str
    last_name: str | None
    first_name: str | None
    email: str | None
    lms_user_id: str | None
    raw_score: float | None
    late_submission_penalty: float | None
    score: float | None
    max_score: float
    seconds_late: float | None
    flagged: bool | None
    needs_manual_grade: bool | None


def grade_rows(gb, policy: LatePolicy, assignments: list[str] | None = None,
               students: list[str] | None = None) -> list[Row]:
    """The rows of every assignment someone was graded on (in nbgrader's order: due date, then name) times every
    student of the gradebook, read with nbgrader's API from an open ``Gradebook``."""
    rows = []
    for a in gb.assignments:
        if assignments and a.name not in assignments:
            continue
        subs = {s.student.id: s for s in a.submissions}
        if not subs:  # nobody was graded on it
            continue
        due = policy.duedate(a.name) or a.duedate
        for st in gb.students:
            if students and st.id not in students:
                continue
            row = Row(a.name, due, None, st.id, st.last_name, st.first_name, st.email, st.lms_user_id,
                      None, None, None, float(a.max_score), None, None, None)
            sub = subs.get(st.id)
            if sub is not None:
                row.timestamp = sub.timestamp
                deadline = due + sub.extension if due is not None and sub.extension is not None else due
                late = (sub.timestamp - deadline).total_seconds() if sub.timestamp and deadline else 0.0
                row.seconds_late = max(0.0, late)
                row.raw_score = float(sub.score)
                row.late_submission_penalty = policy.penalty(row.raw_score, row.seconds_late)
                row.score = max(0.0, row.raw_score - row.late_submission_penalty)
                row.flagged = any(bool(nb.flagged) for nb in sub.notebooks)
                row.needs_manual_grade = bool(sub.needs_manual_grade)
            rows.append(row)
    return rows


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):  # 3.5, 1036800, 0.333333: never an exponent, at most 6 decimals
        return f"{round(value, 6):.15g}"
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def _write_nbgrader(rows: list[Row], dest: Path) -> None:
    with Path(dest).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(NBGRADER_COLUMNS + EXTRA_COLUMNS)
        for r in rows:
            w.writerow([_cell(getattr(r, c)) for c in NBGRADER_COLUMNS + EXTRA_COLUMNS])


def _by_student(rows: list[Row]) -> tuple[list[str], dict[str, float], dict[str, dict[str, Row]]]:
    assignments = list(dict.fromkeys(r.assignment for r in rows))
    points = {r.assignment: r.max_score for r in rows}
    table: dict[str, dict[str, Row]] = {}
    for r in rows:
        table.setdefault(r.student_id, {})[r.assignment] = r
    return assignments, points, dict(sorted(table.items()))


def _write_canvas(rows: list[Row], dest: Path) -> None:
    assignments, points, table = _by_student(rows)
    with Path(dest).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *assignments])
        w.writerow(["Points Possible", "", "", "", "", *(_cell(points[a]) for a in assignments)])
        for student, by in table.items():
            r = next(iter(by.values()))
            name = ", ".join(x for x in (r.last_name, r.first_name) if x) or student
            w.writerow([name, r.lms_user_id or "", student, "", "",
                        *(_cell(by[a].score) if a in by else "" for a in assignments)])


def _write_moodle(rows: list[Row], dest: Path) -> None:
    assignments, _, table = _by_student(rows)
    with Path(dest).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["First name", "Last name", "ID number", "Email address", *assignments])
        for student, by in table.items():
            r = next(iter(by.values()))
            w.writerow([r.first_name or "", r.last_name or "", student, r.email or "",
                        *(_cell(by[a].score) if a in by else "" for a in assignments)])


class CsvExport(ExportPlugin):
    """nbgrader's export plugin for the ``nbgrader`` format (``nbgrader export --to=FILE``, with
    ``c.ExportApp.plugin_class = "autograder.export.CsvExport"``); the late policy comes from the same
    configuration."""

    def export(self, gradebook) -> None:
        dest = self.to or "grades.csv"
        policy = LatePolicy(parent=self)
        rows = grade_rows(gradebook, policy, [str(a) for a in self.assignment] or None,
                          [str(s) for s in self.student] or None)
        self.log.info("Exporting grades to %s (%d rows; assignments nobody was graded on are left out)",
                      dest, len(rows))
        _write_nbgrader(rows, Path(dest))


def write_nbgrader_csv(course: Course | Path, dest: Path) -> list[Row]:
    """Write, in this process, what ``nbgrader export --to=dest`` writes with :class:`CsvExport` (every assignment,
    every student): the same rows from the same gradebook and the course's late policy, the same bytes. The
    isolated engine ends ``tfdl grade`` with it: it has nbgrader imported already, where a new ``nbgrader export``
    process costs ~1.7 CPU-s of start-up while the machine's other cores wait for it."""
    from nbgrader.api import Gradebook
    course = as_course(course)
    with Gradebook(course.gradebook_url) as gb:
        rows = grade_rows(gb, policy_of(course.config))
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _write_nbgrader(rows, dest)
    return rows


def export(course: Course | Path, dest: Path, fmt: str = "nbgrader",
           assignments: list[str] | None = None) -> list[Row]:
    """Write the course's grades to ``dest`` in ``fmt`` (one of :data:`FORMATS`); return the rows written.

    The course's declared due dates are written into the gradebook first. Every format is written here from the
    same rows; the ``nbgrader`` format is the file ``nbgrader export`` writes with :class:`CsvExport`. Nothing to
    export (no assignment anyone was graded on) stops with a message, and no file is written."""
    from nbgrader.api import Gradebook
    course = as_course(course)
    if fmt not in FORMATS:
        raise ToolError(f"unknown export format {fmt!r} (formats: {', '.join(FORMATS)})")
    for a in assignments or []:
        course.check_assignment(a)
    if course.gradebook_file is not None and not course.gradebook_file.is_file():
        raise ToolError(f"nothing to export: there is no gradebook yet ({course.gradebook_file}); run tfdl grade")
    set_duedates(course)
    with Gradebook(course.gradebook_url) as gb:
        rows = grade_rows(gb, policy_of(course.config), assignments)
    if not rows:
        which = ", ".join(assignments) if assignments else "any assignment"
        raise ToolError(f"nothing to export: nobody has been graded on {which} yet (run tfdl grade)")
    dest = Path(dest).resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "nbgrader":  # the rows CsvExport would compute in a new ``nbgrader export`` process: written here
        _write_nbgrader(rows, dest)
    elif fmt == "canvas":
        _write_canvas(rows, dest)
    else:
        _write_moodle(rows, dest)
    return rows
