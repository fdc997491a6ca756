"""The nbgrader plumbing behind ``tfdl``: release, batch autograding, self-check.

The course directory (the repository root, or any directory with an ``nbgrader_config.py`` that sets its own
root) is nbgrader's: ``solutions/<a>`` is the source, ``exercises/<a>`` the release, ``course_work/`` holds
submissions, autograded copies, feedback and the gradebook.  Every nbgrader command runs as a subprocess with
the course directory as working directory (so its ``nbgrader_config.py`` applies), ``--CourseDirectory.root``
set to it, and ``TFDL_COURSE_ROOT`` set to it (the kernels nbgrader starts inherit it and load the hidden checks
from ``solutions/<a>/grading.py`` there).

Autograding runs one nbgrader process per student under a wall-clock limit, so a hostile or broken notebook
costs only its own student.  Scores are read back from nbgrader's gradebook.
"""
from __future__ import annotations

import datetime
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.utils import determine_grade, is_grade, is_solution

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS",
                    "=== BEGIN MARK SCHEME ===")
INSTRUCTOR_ONLY = ("grading.py",)


class ToolError(Exception):
    """A failure to report to the user as one clear message (``tfdl`` exits with status 1)."""


# ----------------------------------------------------------------------------------------------------------------
# Running nbgrader
# ----------------------------------------------------------------------------------------------------------------
def default_course() -> Path:
    """The repository containing this package: the course directory of a checkout."""
    return Path(__file__).resolve().parent.parent


def check_course(course: Path) -> Path:
    course = Path(course).resolve()
    if not (course / "nbgrader_config.py").is_file():
        raise ToolError(f"{course} is not a course directory (it has no nbgrader_config.py)")
    return course


def check_assignment(course: Path, assignment: str) -> None:
    if not (course / "solutions" / assignment / f"{assignment}.ipynb").is_file():
        raise ToolError(f"no assignment {assignment!r}: {course}/solutions/{assignment}/{assignment}.ipynb "
                        f"does not exist (assignments: {', '.join(assignments(course)) or 'none'})")
    (course / "course_work").mkdir(exist_ok=True)  # the gradebook lives here; absent on a fresh clone


def course_env(course: Path) -> dict:
    env = dict(os.environ, TFDL_COURSE_ROOT=str(course))
    # nbgrader runs `alembic` (next to this interpreter) to create the gradebook: the venv need not be activated.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return env


@dataclass
class Run:
    returncode: int | None  # None when the wall-clock limit killed it
    output: str
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def run_limited(cmd: list[str], *, cwd: Path, env: dict | None = None, timeout: float | None = None) -> Run:
    """Run ``cmd`` in its own process group; past ``timeout`` seconds kill the whole group (kernels included)."""
    start = datetime.datetime.now()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, errors="replace", start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        code = None
    finally:
        try:  # also whatever it left behind (a kernel that outlived nbgrader)
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if code is None:
        out, _ = proc.communicate()
    return Run(code, out or "", (datetime.datetime.now() - start).total_seconds())


def nbgrader(course: Path, command: str, *args: str, timeout: float | None = None) -> Run:
    cmd = [sys.executable, "-m", "nbgrader", command, *args, f"--CourseDirectory.root={course}"]
    return run_limited(cmd, cwd=course, env=course_env(course), timeout=timeout)


def nbgrader_error(run: Run) -> str:
    """The most telling line of a failed nbgrader run's log."""
    lines = [line.strip() for line in run.output.splitlines() if line.strip()]
    exc = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Exit)\b.*:", line)]
    errors = [line for line in lines if "| ERROR]" in line]
    return (exc or errors or lines or ["no output"])[-1][:300]


# ----------------------------------------------------------------------------------------------------------------
# Release
# ----------------------------------------------------------------------------------------------------------------
def assignments(course: Path) -> list[str]:
    return sorted(p.parent.name for p in (course / "solutions").glob("*/*.ipynb") if p.stem == p.parent.name)


def normalize_notebook(path: Path) -> None:
    """Make a released notebook byte-for-byte reproducible: no outputs, no execution counts, sorted keys."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)


def grade_ids(nb) -> list[str]:
    return [c.metadata.nbgrader["grade_id"] for c in nb.cells if is_grade(c)]


def verify_release(course: Path, assignment: str) -> list[str]:
    """Problems of the release ``exercises/<a>`` compared with its source (an empty list when it is fine)."""
    source, release = course / "solutions" / assignment, course / "exercises" / assignment
    problems = []
    for path in sorted(release.rglob("*")):
        if path.name in INSTRUCTOR_ONLY:
            problems.append(f"{path.relative_to(course)}: instructor-only file released")
        elif path.suffix in (".ipynb", ".py", ".md", ".txt") and path.is_file():
            text = path.read_text(errors="replace")
            problems += [f"{path.relative_to(course)}: contains {m!r}" for m in SOLUTION_MARKERS if m in text]
    for src in sorted(source.glob("*.ipynb")):
        rel = release / src.name
        if not rel.is_file():
            problems.append(f"{rel.relative_to(course)}: missing")
            continue
        missing = set(grade_ids(nbformat.read(src, as_version=4))) - set(grade_ids(nbformat.read(rel, as_version=4)))
        problems += [f"{rel.relative_to(course)}: grade cell {g!r} missing" for g in sorted(missing)]
    return problems


def release(course: Path, assignment: str) -> list[Path]:
    """Generate ``exercises/<a>`` from ``solutions/<a>``, normalize and verify it; return the files written."""
    check_assignment(course, assignment)
    run = nbgrader(course, "generate_assignment", assignment, "--force")
    if run.returncode != 0:
        raise ToolError(f"nbgrader generate_assignment {assignment} failed: {nbgrader_error(run)}\n{run.output}")
    out = course / "exercises" / assignment
    written = sorted(p for p in out.rglob("*") if p.is_file())
    for path in written:
        if path.suffix == ".ipynb":
            normalize_notebook(path)
    problems = verify_release(course, assignment)
    if problems:
        raise ToolError(f"the release of {assignment} is unsafe:\n  " + "\n  ".join(problems))
    return written


# ----------------------------------------------------------------------------------------------------------------
# Grading a class
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class Result:
    student: str
    parts: dict[str, float] = field(default_factory=dict)  # grade cell id -> score (0 when not graded)
    total: float = 0.0
    max_score: float = 0.0
    notes: list[str] = field(default_factory=list)
    graded: bool = False  # nbgrader autograded it


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


def submit(course: Path, assignment: str, student: str, notebook: Path) -> None:
    """Copy a notebook into ``course_work/submitted/<student>/<a>/`` with a timestamp (replacing an old one)."""
    dest = course / "course_work" / "submitted" / student / assignment
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copy(notebook, dest / f"{assignment}.ipynb")
    now = datetime.datetime.now(datetime.timezone.utc)
    (dest / "timestamp.txt").write_text(now.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))


def gradebook_url(course: Path) -> str:
    return "sqlite:///" + str(course / "course_work" / "gradebook.db")


def ensure_in_gradebook(course: Path, assignment: str, students: list[str]) -> None:
    """Register the assignment (from its source, as a release would, without touching exercises/) and students."""
    check_assignment(course, assignment)
    known = False
    if (course / "course_work" / "gradebook.db").is_file():
        with Gradebook(gradebook_url(course)) as gb:
            known = assignment in {a.name for a in gb.assignments}
    if not known:  # e.g. a fresh clone: exercises/ is committed but course_work/gradebook.db is not
        scratch = course / "course_work" / "release"
        run = nbgrader(course, "generate_assignment", assignment, "--force",
                       f"--CourseDirectory.release_directory={scratch}")
        if run.returncode != 0:
            raise ToolError(f"could not enter {assignment} in the gradebook: {nbgrader_error(run)}\n{run.output}")
    with Gradebook(gradebook_url(course)) as gb:
        for s in students:  # so that nbgrader's export lists every student, even one that could not be graded
            gb.update_or_create_student(s)


def read_scores(course: Path, assignment: str, student: str) -> Result:
    """The student's grades of ``assignment`` in the gradebook (cell order of the assignment)."""
    result = Result(student)
    with Gradebook(gradebook_url(course)) as gb:
        a = gb.find_assignment(assignment)
        cells = [(nb.name, c.name, c.max_score) for nb in a.notebooks for c in nb.grade_cells]
        result.max_score = sum(m for _, _, m in cells)
        try:
            sub = gb.find_submission(assignment, student)
        except MissingEntry:
            result.parts = {c: 0.0 for _, c, _ in cells}
            return result
        grades = {(g.notebook.name, g.name): g for nb in sub.notebooks for g in nb.grades}
        manual = []
        for nb_name, cell, _ in cells:
            g = grades.get((nb_name, cell))
            result.parts[cell] = float(g.score) if g else 0.0
            if g is not None and g.needs_manual_grade:
                manual.append(cell)
        result.total = float(sub.score)
        if manual:
            result.notes.append("needs manual grading: " + ", ".join(manual))
    return result


def autograde_student(course: Path, assignment: str, student: str, *, cell_timeout: float | None,
                      wall_timeout: float) -> Result:
    args = [assignment, "--student", student, "--force"]
    if cell_timeout:
        args.append(f"--Execute.timeout={max(1, round(cell_timeout))}")  # an Integer trait
    run = nbgrader(course, "autograde", *args, timeout=wall_timeout)
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
            notes.append("autograde failed: " + nbgrader_error(run))
    elif "Timeout waiting for execute reply" in run.output:
        notes.append("a cell timed out and was interrupted")
    result = read_scores(course, assignment, student)
    result.graded = run.returncode == 0
    if result.graded:
        notes += failed_cells(course / "course_work" / "autograded" / student / assignment)
    else:  # nbgrader recorded nothing usable: every part needs manual grading
        result.parts = {k: 0.0 for k in result.parts}
        result.total = 0.0
        result.notes = []
    result.notes[:0] = notes
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


def grade(course: Path, assignment: str, submissions: Path, *, cell_timeout: float | None = None,
          wall_timeout: float = 600, csv: Path | None = None, progress=None) -> tuple[list[Result], list[str]]:
    """Autograde every submission in ``submissions``; return the results and warnings of the batch."""
    found = find_submissions(submissions, assignment)
    if not found:
        raise ToolError(f"no submissions in {submissions} (expected <student>/{assignment}.ipynb, "
                        f"<student>/{assignment}/{assignment}.ipynb or <student>.ipynb)")
    ensure_in_gradebook(course, assignment, list(found))
    results, warnings = [], []
    items = progress(found.items()) if progress else found.items()
    for student, notebook in items:
        if notebook is None:
            result = read_scores(course, assignment, student)
            result.notes = [f"no notebook found for {assignment}"]
            result.parts, result.total = {k: 0.0 for k in result.parts}, 0.0
        else:
            try:
                nb = nbformat.read(notebook, as_version=4)
            except Exception as exc:  # noqa: BLE001 - any unreadable file is the student's problem only
                result = read_scores(course, assignment, student)
                result.parts, result.total = {k: 0.0 for k in result.parts}, 0.0
                result.notes = [f"invalid notebook: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"]
            else:
                submitted = {c.metadata.nbgrader.get("grade_id") for c in nb.cells if is_grade(c)}
                submit(course, assignment, student, notebook)
                result = autograde_student(course, assignment, student, cell_timeout=cell_timeout,
                                           wall_timeout=wall_timeout)
                deleted = [p for p in result.parts if p not in submitted]
                if deleted:  # nbgrader only marks them "needs manual grading"
                    result.notes.insert(0, "grade cells deleted: " + ", ".join(deleted))
        results.append(result)
    warnings += feedback_and_export(course, assignment, any(r.graded for r in results), csv, wall_timeout)
    return results, warnings


def feedback_and_export(course: Path, assignment: str, any_graded: bool, csv: Path | None,
                        wall_timeout: float) -> list[str]:
    """After a batch: nbgrader generate_feedback (when anyone was graded) and nbgrader export; the warnings."""
    warnings = []
    if any_graded:
        run = nbgrader(course, "generate_feedback", assignment, "--force", timeout=wall_timeout)
        if run.returncode != 0:
            warnings.append(f"nbgrader generate_feedback: {nbgrader_error(run)}")
    if csv is not None:
        run = nbgrader(course, "export", f"--to={Path(csv).resolve()}", timeout=wall_timeout)
        if run.returncode != 0:
            warnings.append(f"nbgrader export: {nbgrader_error(run)}")
    return warnings


# ----------------------------------------------------------------------------------------------------------------
# Student self-check
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class Part:
    grade_id: str
    kind: str  # "auto" (a test cell) or "manual"
    score: float | None
    max_score: float
    feedback: str = ""


def _text(outputs, stream: str = "stdout") -> str:
    return "".join(o.get("text", "") for o in outputs if o.output_type == "stream" and o.name == stream)


def last_error_line(output) -> str:
    line = f"{output.ename}: {output.evalue}".rstrip(": ") if output.ename else "error"
    if output.ename == "KeyboardInterrupt":
        line += " (the cell ran past the time limit and was interrupted)"
    return line


def execute_copy(path: Path, timeout: float = 120):
    """Run a copy of the notebook (the file is never written); return the executed copy and a fatal error."""
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", allow_errors=True, interrupt_on_timeout=True,
        error_on_timeout={"ename": "CellTimeoutError", "evalue": f"the cell ran longer than {timeout:g} s",
                          "traceback": []},
        resources={"metadata": {"path": str(path.resolve().parent)}})
    try:
        client.execute(stderr=subprocess.DEVNULL)  # the kernel's own log (ipykernel's warnings), not cell output
    except DeadKernelError:
        return nb, "the kernel died while running the notebook (os._exit, a crash, or out of memory?)"
    except TimeoutError as exc:  # a cell that ignores the interrupt
        return nb, f"the notebook stopped responding: {str(exc).splitlines()[0]}"
    return nb, None


def self_check(nb) -> tuple[list[Part], list[str]]:
    """Score the executed notebook's grade cells as nbgrader would, and list errors of solution cells."""
    parts, errors = [], []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and is_solution(cell):
            errors += [f"cell {meta.get('grade_id', '?')}: {last_error_line(o)}"
                       for o in cell.get("outputs", []) if o.output_type == "error"]
        if not is_grade(cell):
            continue
        if cell.cell_type == "code" and not is_solution(cell) and cell.execution_count is None:
            parts.append(Part(meta["grade_id"], "auto", 0.0, float(meta.get("points", 0)),
                              "  not run: the notebook stopped before this cell"))
        elif cell.cell_type == "code" and not is_solution(cell):
            score, max_score = determine_grade(cell)
            feedback = _text(cell.outputs).rstrip()
            err = [o for o in cell.outputs if o.output_type == "error"]
            if err:
                feedback += ("\n" if feedback else "") + f"  error: {last_error_line(err[-1])}"
            if _text(cell.outputs, "stderr"):
                feedback += ("\n" if feedback else "") + "  the cell wrote to stderr, which scores 0:\n    " + \
                    _text(cell.outputs, "stderr").strip().replace("\n", "\n    ")[:500]
            parts.append(Part(meta["grade_id"], "auto", score, max_score, feedback))
        else:
            parts.append(Part(meta["grade_id"], "manual", None, float(meta.get("points", 0))))
    return parts, errors


# ----------------------------------------------------------------------------------------------------------------
# Grading a class with student code in a sandbox (autograder.batch): the verdicts never run in the student's process
# ----------------------------------------------------------------------------------------------------------------
def grade_isolated(course: Path, assignment: str, submissions: Path, *, cell_timeout: float | None = None,
                   wall_timeout: float = 600, csv: Path | None = None, workers: int | None = None,
                   scheduler: str | None = None, progress=None, resume: bool = True,
                   memory_mb: int | None = None) -> tuple[list[Result], list[str]]:
    """Like :func:`grade`, but each submission's code runs in a sandbox (autograder.sandbox), its grade cells are
    anchored to the source (autograder.anchors), the checks run in the grading process, submissions are graded in
    parallel and each result is committed at once (resumable).  Also writes the instructor report."""
    from . import batch, report
    from .sandbox import Limits

    found = find_submissions(submissions, assignment)
    if not found:
        raise ToolError(f"no submissions in {submissions} (expected <student>/{assignment}.ipynb, "
                        f"<student>/{assignment}/{assignment}.ipynb or <student>.ipynb)")
    ensure_in_gradebook(course, assignment, list(found))
    limits = Limits(wall_seconds=float(cell_timeout or 120), cpu_seconds=int(max(wall_timeout, 30)))
    if memory_mb:
        limits.memory_mb = int(memory_mb)
    workers = workers or os.cpu_count() or 1
    done = batch.grade_class(course, assignment, found, workers=workers, limits=limits, scheduler=scheduler,
                             progress=progress, resume=resume)
    results, warnings = [], []
    for r in done:
        result = Result(r.student, {p.grade_id: float(p.score or 0.0) for p in r.parts}, r.total, r.max_score,
                        list(r.flags) + [n.splitlines()[0] for n in r.notes if n], r.valid)
        manual = [p.grade_id for p in r.parts if p.kind == "manual" and p.score is None]
        if manual and r.valid:
            result.notes.append("needs manual grading: " + ", ".join(manual))
        results.append(result)
    report.write_report(course, assignment, done)
    warnings += feedback_and_export(course, assignment, any(r.valid for r in done), csv, wall_timeout)
    return results, warnings
