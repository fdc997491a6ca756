"""The course directory, as nbgrader's own configuration describes it: the bottom layer of ``tfdl``.

A course is any directory with an ``nbgrader_config.py``. Its paths are nbgrader's: :class:`Course` loads that file
into nbgrader's ``CourseDirectory`` (with ``root`` set to the directory) and asks it, through ``format_path``,
where the source, the release, the submissions, the autograded copies and the feedback of an assignment are, and
where the gradebook is (``db_url``). So ``tfdl`` writes exactly where ``nbgrader formgrader``,
``generate_feedback`` and ``export`` read, whatever layout the course's configuration chooses (the usual
JupyterHub set-up keeps the gradebook and ``submitted/`` elsewhere). This repository's own layout
(``solutions/``, ``exercises/``, ``course_work/``) is just what its ``nbgrader_config.py`` says.

``tfdl``'s own files (the grading ledger, the instructor reports, scratch releases) live in the course's *work
folder*: the folder that holds the submissions folder (``course_work/`` here).

Every nbgrader command runs as a subprocess with the course directory as working directory (so its
``nbgrader_config.py`` applies), ``--CourseDirectory.root`` set to it, and ``TFDL_COURSE_ROOT`` set to it (the
kernels nbgrader starts inherit it and load the hidden checks from the course's source folder).
"""
from __future__ import annotations

import datetime
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ToolError", "Course", "Run", "run_limited", "default_course", "as_course"]


class ToolError(Exception):
    """A failure to report to the user as one clear message (``tfdl`` exits with status 1)."""


def default_course() -> Path:
    """The repository containing this package: the course directory of a checkout."""
    return Path(__file__).resolve().parent.parent


@dataclass
class Run:
    returncode: int | None  # None when the wall-clock limit killed it
    output: str
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    def error_line(self) -> str:
        """The most telling line of a failed run's log."""
        lines = [line.strip() for line in self.output.splitlines() if line.strip()]
        exc = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Exit)\b.*:", line)]
        errors = [line for line in lines if "| ERROR]" in line]
        return (exc or errors or lines or ["no output"])[-1][:300]


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


class Course:
    """One nbgrader course directory and every path in it."""

    def __init__(self, root: Path | str | None = None):
        root = Path(root if root is not None else default_course()).resolve()
        if not (root / "nbgrader_config.py").is_file():
            raise ToolError(f"{root} is not a course directory (it has no nbgrader_config.py)")
        self.root = root
        from nbgrader.coursedir import CourseDirectory
        from traitlets.config.loader import PyFileConfigLoader
        try:
            config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
        except Exception as exc:  # noqa: BLE001 - an instructor's broken configuration: stop with its error
            raise ToolError(f"{root / 'nbgrader_config.py'} does not load: {type(exc).__name__}: {exc}") from None
        self.config = config
        self.dirs = CourseDirectory(config=config)
        self.dirs.root = str(root)

    def __repr__(self) -> str:
        return f"Course({str(self.root)!r})"

    # -- nbgrader's paths ----------------------------------------------------------------------------------------
    def _path(self, step: str, student: str, assignment: str) -> Path:
        return Path(self.dirs.format_path(step, student, assignment)).resolve()

    def source(self, assignment: str) -> Path:
        return self._path(self.dirs.source_directory, ".", assignment)

    def release(self, assignment: str) -> Path:
        return self._path(self.dirs.release_directory, ".", assignment)

    def submitted(self, student: str, assignment: str) -> Path:
        return self._path(self.dirs.submitted_directory, student, assignment)

    def autograded(self, student: str, assignment: str) -> Path:
        return self._path(self.dirs.autograded_directory, student, assignment)

    def feedback(self, student: str, assignment: str) -> Path:
        return self._path(self.dirs.feedback_directory, student, assignment)

    def source_notebook(self, assignment: str) -> Path:
        return self.source(assignment) / f"{assignment}.ipynb"

    @property
    def gradebook_url(self) -> str:
        return self.dirs.db_url

    @property
    def gradebook_file(self) -> Path | None:
        """The gradebook's file when it is SQLite (None for a database server)."""
        url = self.gradebook_url
        return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None

    # -- tfdl's own files ----------------------------------------------------------------------------------------
    @property
    def work(self) -> Path:
        """The folder of tfdl's own files: the one that holds the submissions folder."""
        return (self.root / self.dirs.submitted_directory).resolve().parent

    def ledger(self, assignment: str) -> Path:
        return self.work / "isolated" / f"{assignment}.jsonl"

    def reports(self) -> Path:
        return self.work / "reports"

    # -- assignments ---------------------------------------------------------------------------------------------
    @property
    def sources(self) -> Path:
        """The folder holding every assignment's source folder."""
        return self._path(self.dirs.source_directory, ".", "x").parent

    def assignments(self) -> list[str]:
        return sorted(p.parent.name for p in self.sources.glob("*/*.ipynb") if p.stem == p.parent.name)

    def check_assignment(self, assignment: str) -> None:
        if not self.source_notebook(assignment).is_file():
            raise ToolError(f"no assignment {assignment!r}: {self.source_notebook(assignment)} does not exist "
                            f"(assignments: {', '.join(self.assignments()) or 'none'})")
        gradebook = self.gradebook_file
        if gradebook is not None:
            gradebook.parent.mkdir(parents=True, exist_ok=True)  # absent on a fresh clone

    # -- running nbgrader ----------------------------------------------------------------------------------------
    def env(self) -> dict:
        env = dict(os.environ, TFDL_COURSE_ROOT=str(self.root), TFDL_SOURCE_DIR=str(self.sources))
        # nbgrader runs `alembic` (next to this interpreter) to create the gradebook: the venv need not be active.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        return env

    def nbgrader(self, command: str, *args: str, timeout: float | None = None, env: dict | None = None) -> Run:
        """Run ``nbgrader <command>``; ``env``: extra environment variables (e.g. ``TFDL_STUDENT`` for the kernel
        that autogrades one student, autograder.variants)."""
        cmd = [sys.executable, "-m", "nbgrader", command, *args, f"--CourseDirectory.root={self.root}"]
        return run_limited(cmd, cwd=self.root, env=dict(self.env(), **(env or {})), timeout=timeout)


_COURSES: dict[Path, Course] = {}


def as_course(course: "Course | Path | str | None") -> Course:
    """The :class:`Course` of a directory (loaded once per process), or ``course`` itself."""
    if isinstance(course, Course):
        return course
    root = Path(course if course is not None else default_course()).resolve()
    if root not in _COURSES:
        _COURSES[root] = Course(root)
    return _COURSES[root]
