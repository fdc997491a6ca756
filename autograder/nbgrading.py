"""Grading a class, with either engine, into nbgrader's gradebook: the layer just below the CLI.

* :func:`grade_isolated` (the default engine): student code in a sandbox, verdicts in the grader, grade cells
  anchored to the source, in parallel and resumable (:mod:`autograder.batch`), then the instructor report;
* :func:`grade` (``--engine nbgrader``): plain ``nbgrader autograde``, one nbgrader process per student under a
  wall-clock limit, so a hostile or broken notebook costs only its own student; scores read back from the
  gradebook.

Both find the submissions the same way (:func:`find_submissions`), refuse an instructor's mistake before any
student is graded (:func:`preflight`), register every student, and end with nbgrader's ``generate_feedback`` and
``export``. Both return :class:`~autograder.results.SubmissionResult` objects.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
from nbgrader.utils import is_grade

from .course import Course, ToolError, as_course
from .gradebook import ensure_in_gradebook, read_scores, submit
from .release import release, validate_source
from .results import SubmissionResult

__all__ = ["find_submissions", "preflight", "grade", "grade_isolated", "feedback_and_export", "release"]


def find_submissions(folder: Path, assignment: str) -> dict[str, Path | None]:
    """student -> notebook, from ``<s>/<a>.ipynb``, ``<s>/<a>/<a>.ipynb`` or ``<s>.ipynb`` (None: not found)."""
    found: dict[str, Path | None] = {}
    for entry in sorted(Path(folder).iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            candidates = [entry / f"{assignment}.ipynb", entry / assignment / f"{assignment}.ipynb"]
            found[entry.name] = next((c for c in candidates if c.is_file()), None)
        elif entry.suffix == ".ipynb":
            found[entry.stem] = entry
    return found


def preflight(course: Course, assignment: str, submissions: Path) -> dict[str, Path | None]:
    """Everything that is the instructor's to fix, checked before any student is graded: the course, the
    assignment's source (grade ids, declared parts, a ``grading.py`` that imports), the submissions folder."""
    submissions = Path(submissions)
    if not submissions.is_dir():
        raise ToolError(f"{submissions} is not a folder of submissions")
    problems = validate_source(course, assignment)
    if problems:
        raise ToolError(f"{assignment} cannot be graded until its source is fixed (no student was graded):\n  "
                        + "\n  ".join(problems))
    found = find_submissions(submissions.resolve(), assignment)
    if not found:
        raise ToolError(f"no submissions in {submissions} (expected <student>/{assignment}.ipynb, "
                        f"<student>/{assignment}/{assignment}.ipynb or <student>.ipynb)")
    ensure_in_gradebook(course, assignment, list(found))
    return found


def _zero(result: SubmissionResult, note: str) -> SubmissionResult:
    for p in result.parts:
        p.score = 0.0
    result.notes = [note]
    result.valid = False
    return result


# ----------------------------------------------------------------------------------------------------------------
# The plain nbgrader engine
# ----------------------------------------------------------------------------------------------------------------
def autograde_student(course: Course, assignment: str, student: str, *, cell_timeout: float | None,
                      wall_timeout: float) -> SubmissionResult:
    args = [assignment, "--student", student, "--force"]
    if cell_timeout:
        args.append(f"--Execute.timeout={max(1, round(cell_timeout))}")  # an Integer trait
    run = course.nbgrader("autograde", *args, timeout=wall_timeout)
    notes = []
    if run.timed_out:
        notes.append(f"timed out: killed after {wall_timeout:g} s")
    elif run.returncode != 0:
        duplicated = re.findall(r"Cell with id '(.+?)' exists multiple times", run.output)
        if duplicated:
            notes.append("autograde failed: duplicated cells " + ", ".join(sorted(set(duplicated))))
        elif "DeadKernelError" in run.output or "Kernel died" in run.output:
            notes.append("kernel died (os._exit, crash or out of memory?)")
        elif "CellTimeoutError" in run.output:
            notes.append("timed out: a cell ignored the interrupt")
        else:
            notes.append("autograde failed: " + run.error_line())
    elif "Timeout waiting for execute reply" in run.output:
        notes.append("a cell timed out and was interrupted")
    result = read_scores(course, assignment, student)
    if run.returncode == 0:
        notes += failed_cells(course.autograded(student, assignment))
        result.notes[:0] = notes
        return result
    # nbgrader recorded nothing usable: every part needs manual grading
    result = _zero(result, notes[0] if notes else "autograde failed")
    result.notes += notes[1:]
    return result


def failed_cells(folder: Path) -> list[str]:
    """'<grade cell>: <exception>' for each autograded test cell that raised."""
    notes = []
    for path in sorted(folder.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code" and is_grade(cell):
                notes += [f"{cell.metadata.nbgrader['grade_id']} raised {o.ename}"
                          for o in cell.outputs if o.output_type == "error"]
    return notes


def grade(course: Course | Path, assignment: str, submissions: Path, *, cell_timeout: float | None = None,
          wall_timeout: float = 600, csv: Path | None = None, progress=None) -> tuple[list[SubmissionResult], list[str]]:
    """Autograde every submission with plain ``nbgrader autograde``; return the results and the batch's
    warnings."""
    course = as_course(course)
    found = preflight(course, assignment, submissions)
    results = []
    items = progress(found.items()) if progress else found.items()
    for student, notebook in items:
        if notebook is None:
            result = _zero(read_scores(course, assignment, student), f"no notebook found for {assignment}")
        else:
            try:
                nb = nbformat.read(notebook, as_version=4)
            except Exception as exc:  # noqa: BLE001 - any unreadable file is the student's problem only
                result = _zero(read_scores(course, assignment, student),
                               f"invalid notebook: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
            else:
                submitted = {c.metadata.nbgrader.get("grade_id") for c in nb.cells if is_grade(c)}
                submit(course, assignment, student, notebook)
                result = autograde_student(course, assignment, student, cell_timeout=cell_timeout,
                                           wall_timeout=wall_timeout)
                deleted = [p.grade_id for p in result.parts if p.grade_id not in submitted]
                if deleted:  # nbgrader only marks them "needs manual grading"
                    result.notes.insert(0, "grade cells deleted: " + ", ".join(deleted))
        results.append(result)
    warnings = feedback_and_export(course, assignment, any(r.graded for r in results), csv, wall_timeout)
    return results, warnings


def feedback_and_export(course: Course, assignment: str, any_graded: bool, csv: Path | None,
                        wall_timeout: float) -> list[str]:
    """After a batch: nbgrader generate_feedback (when anyone was graded) and nbgrader export; the warnings."""
    warnings = []
    if any_graded:
        run = course.nbgrader("generate_feedback", assignment, "--force", timeout=wall_timeout)
        if run.returncode != 0:
            warnings.append(f"nbgrader generate_feedback: {run.error_line()}")
    if csv is not None:
        run = course.nbgrader("export", f"--to={Path(csv).resolve()}", timeout=wall_timeout)
        if run.returncode != 0:
            warnings.append(f"nbgrader export: {run.error_line()}")
    return warnings


# ----------------------------------------------------------------------------------------------------------------
# The isolated engine: the verdicts never run in the student's process
# ----------------------------------------------------------------------------------------------------------------
def grade_isolated(course: Course | Path, assignment: str, submissions: Path, *, cell_timeout: float | None = None,
                   wall_timeout: float = 600, csv: Path | None = None, workers: int | None = None,
                   scheduler: str | None = None, progress=None, resume: bool = True,
                   memory_mb: int | None = None) -> tuple[list[SubmissionResult], list[str]]:
    """Like :func:`grade`, but each submission's code runs in a sandbox (autograder.sandbox), its grade cells are
    anchored to the source (autograder.anchors), the checks run in the grading process, submissions are graded in
    parallel and each result is committed at once (resumable).  Also writes the instructor report."""
    from . import batch, report
    from .sandbox import Limits

    course = as_course(course)
    found = preflight(course, assignment, submissions)
    limits = Limits(wall_seconds=float(cell_timeout or 120), cpu_seconds=int(max(wall_timeout, 30)))
    if memory_mb:
        limits.memory_mb = int(memory_mb)
    workers = workers or os.cpu_count() or 1
    done = batch.grade_class(course, assignment, found, workers=workers, limits=limits, scheduler=scheduler,
                             progress=progress, resume=resume)
    for r in done:
        manual = [p.grade_id for p in r.parts if p.kind == "manual" and p.score is None]
        if manual and r.valid:
            r.notes.append("needs manual grading: " + ", ".join(manual))
    report.write_report(course, assignment, done)
    warnings = feedback_and_export(course, assignment, any(r.valid for r in done), csv, wall_timeout)
    return done, warnings
