"""Releasing an assignment: the instructor source becomes the student notebook, through nbgrader.

:func:`release` runs a pipeline of small named steps:

1. :func:`validate_source`: the source notebook's grade cells against the topic's declaration
   (``TOPIC`` in ``autograder/<a>.py``): every declared part has its grade cell, every grade cell is declared,
   no grade id appears twice, each check cell calls its own ``check_<name>``; and the instructor module
   ``grading.py`` imports. An instructor's mistake stops here, before anything is written, with a message that
   says what to fix.
2. :func:`write_points`: the declared points go into the grade cells' metadata, the one place nbgrader reads
   them (so the topic's declaration is the only place an instructor writes a part's points);
   :func:`write_repository`: the public repository configured in ``book/_config.yml`` goes into each
   notebook's first cell.
3. ``nbgrader generate_assignment`` writes the release (solutions and hidden tests stripped, ``grading.py``
   ignored by ``nbgrader_config.py``) into a scratch folder of the course's work folder (nbgrader's ``--force``
   deletes the whole release folder, with whatever else is in it).
4. :func:`normalize_notebook`: outputs and execution counts cleared, so a release is byte-for-byte reproducible;
   :func:`stamp_release`: the notebook records the fingerprint of its cells (``metadata.tfdl.release``).
5. :func:`verify_release`: no solution marker, hidden test or instructor file was released, every grade cell
   is there (checked on the scratch copy, so an unsafe release never reaches the release folder).
6. :func:`install_release`: the files are copied into the release folder (``exercises/<a>/``), except a
   notebook someone worked on: one whose cells differ from the fingerprint it carries (for a release written
   before the fingerprint: one that has outputs). That notebook is kept, named, and the release says how to
   proceed (move it, or ``--force``); nothing else in the folder is deleted.
"""
from __future__ import annotations

import ast
import hashlib
import importlib
import json
import re
import shutil
from pathlib import Path

import nbformat
from nbgrader.utils import is_grade

from .course import Course, ToolError, as_course

__all__ = ["release", "validate_source", "write_points", "normalize_notebook", "verify_release", "grade_ids",
           "declared_topic", "stamp_release", "cells_fingerprint", "worked_on", "install_release", "KeptWork",
           "SOLUTION_MARKERS", "INSTRUCTOR_ONLY"]

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS",
                    "=== BEGIN MARK SCHEME ===")
INSTRUCTOR_ONLY = ("grading.py",)


def grade_ids(nb) -> list[str]:
    return [c.metadata.nbgrader["grade_id"] for c in nb.cells if is_grade(c)]


def declared_topic(assignment: str):
    """The ``TOPIC`` of ``autograder/<assignment>.py`` (None for an assignment without a checks module, e.g. a
    course's own toy assignment). A checks module that does not import is an instructor error."""
    name = f"autograder.{assignment}"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise ToolError(f"the checks of {assignment!r} (autograder/{assignment}.py) do not import: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a broken checks module: stop with its error
        raise ToolError(f"the checks of {assignment!r} (autograder/{assignment}.py) do not import: "
                        f"{type(exc).__name__}: {exc}") from None
    return getattr(module, "TOPIC", None)


def _instructor_module_problem(course: Course, assignment: str) -> str | None:
    """Why ``grading.py`` of the assignment does not import (None when it does, or when there is none)."""
    path = course.source(assignment) / "grading.py"
    if not path.is_file():
        return None
    import importlib.util
    import sys
    spec = importlib.util.spec_from_file_location(f"_tfdl_validate_{assignment}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        return f"{path} has a syntax error at line {exc.lineno}: {exc.msg}"
    except Exception as exc:  # noqa: BLE001
        return f"{path} does not import: {type(exc).__name__}: {exc}"
    finally:
        sys.modules.pop(spec.name, None)
    return None


def _instructor_module(course: Course, assignment: str):
    """``grading.py`` of the assignment, loaded for a check of the source (not registered in ``sys.modules``)."""
    import importlib.util
    path = course.source(assignment) / "grading.py"
    spec = importlib.util.spec_from_file_location(f"_tfdl_validate_{assignment}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def validate_source(course: Course | Path, assignment: str) -> list[str]:
    """What is wrong with the assignment's source (an empty list when it can be released and graded)."""
    course = as_course(course)
    course.check_assignment(assignment)
    path = course.source_notebook(assignment)
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # noqa: BLE001
        return [f"{path} is not a readable notebook: {type(exc).__name__}: {exc}"]
    problems = []
    ids = grade_ids(nb)
    twice = sorted({g for g in ids if ids.count(g) > 1})
    problems += [f"{path.name}: grade id {g!r} is used by {ids.count(g)} cells (nbgrader needs each once)"
                 for g in twice]
    problem = _instructor_module_problem(course, assignment)
    if problem:
        problems.append(problem)
    topic = declared_topic(assignment)
    if topic is None:
        return problems
    if not problem:  # parts that check their own instructor side (a derivation's reference in grading.py)
        for part in topic.parts:
            if callable(getattr(part, "problems", None)):
                problems += [f"autograder/{assignment}.py: {p}" for p in part.problems(_instructor_module(course,
                                                                                                   assignment))]
    declared = topic.points
    for g in declared:
        if g not in ids:
            problems.append(f"{path.name}: autograder/{assignment}.py declares {g!r} but no grade cell has that id")
    for g in dict.fromkeys(ids):
        if g not in declared:
            problems.append(f"{path.name}: grade cell {g!r} is not declared in TOPIC of autograder/{assignment}.py")
    for cell in nb.cells:
        if not is_grade(cell) or cell.cell_type != "code" or cell.metadata.nbgrader.get("solution"):
            continue
        gid = cell.metadata.nbgrader["grade_id"]
        try:
            tree = ast.parse(cell.source)
        except SyntaxError as exc:
            problems.append(f"{path.name}: check cell {gid!r} does not parse: {exc.msg} (line {exc.lineno})")
            continue
        calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
                 and getattr(node.func, "id", "").startswith("check_")]
        if gid in declared and [c.func.id for c in calls] != [gid]:
            problems.append(f"{path.name}: check cell {gid!r} must call {gid}(...) once; it calls "
                            f"{[c.func.id for c in calls] or 'no check'}")
        for c in calls:
            if any(k.arg == "points" for k in c.keywords):
                problems.append(f"{path.name}: check cell {gid!r} passes points=...: points are declared only in "
                                f"TOPIC of autograder/{assignment}.py")
    return problems


def write_points(course: Course | Path, assignment: str) -> list[str]:
    """Write the topic's declared points into the source's grade cells; return the cells changed."""
    course = as_course(course)
    topic = declared_topic(assignment)
    if topic is None:
        return []
    path = course.source_notebook(assignment)
    nb = nbformat.read(path, as_version=4)
    changed = []
    for cell in nb.cells:
        if is_grade(cell):
            meta = cell.metadata.nbgrader
            want = topic.points.get(meta["grade_id"])
            if want is not None and float(meta.get("points", -1)) != want:
                meta["points"] = int(want) if want == int(want) else want
                changed.append(f"{meta['grade_id']}: {meta['points']} points")
    if changed:
        nbformat.write(nb, path)
    return changed


_REPO_LINE = re.compile(r'^(\s*_REPO, _BRANCH = )"[^"\n]*", "[^"\n]*"', re.M)


def configured_repository(course: Course) -> tuple[str, str] | None:
    """(url, branch) of the public repository configured once in the book's ``_config.yml`` (None without it)."""
    config = course.root / "book" / "_config.yml"
    if not config.is_file():
        return None
    import yaml
    repo = (yaml.safe_load(config.read_text()) or {}).get("repository") or {}
    return (str(repo["url"]), str(repo.get("branch", "main"))) if repo.get("url") else None


def write_repository(course: Course | Path, assignment: str) -> bool:
    """Write the configured repository into the notebook's first cell (``course_setup``), which tells a student
    outside the course environment what to install; True when the source changed."""
    course = as_course(course)
    repo = configured_repository(course)
    if repo is None:
        return False
    path = course.source_notebook(assignment)
    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        if (cell.metadata.get("nbgrader") or {}).get("grade_id") == "course_setup":
            new = _REPO_LINE.sub(lambda m: f'{m.group(1)}"{repo[0]}", "{repo[1]}"', cell.source)
            changed, cell.source = new != cell.source, new
    if changed:
        nbformat.write(nb, path)
    return changed


def normalize_notebook(path: Path) -> None:
    """Make a released notebook byte-for-byte reproducible: no outputs, no execution counts, sorted keys."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)


def _shown(course: Course, path: Path) -> str:
    return str(path.relative_to(course.root)) if path.is_relative_to(course.root) else str(path)


def verify_release(course: Course | Path, assignment: str, release_dir: Path | None = None) -> list[str]:
    """Problems of the release (in ``release_dir``, by default the course's release folder) compared with its
    source (an empty list when it is fine)."""
    course = as_course(course)
    source, release_dir = course.source(assignment), Path(release_dir or course.release(assignment))
    problems = []
    for path in sorted(release_dir.rglob("*")):
        if path.name in INSTRUCTOR_ONLY:
            problems.append(f"{_shown(course, path)}: instructor-only file released")
        elif path.suffix in (".ipynb", ".py", ".md", ".txt") and path.is_file():
            text = path.read_text(errors="replace")
            problems += [f"{_shown(course, path)}: contains {m!r}" for m in SOLUTION_MARKERS if m in text]
    for src in sorted(source.glob("*.ipynb")):
        rel = release_dir / src.name
        if not rel.is_file():
            problems.append(f"{_shown(course, rel)}: missing")
            continue
        missing = set(grade_ids(nbformat.read(src, as_version=4))) - set(grade_ids(nbformat.read(rel, as_version=4)))
        problems += [f"{_shown(course, rel)}: grade cell {g!r} missing" for g in sorted(missing)]
    return problems


def cells_fingerprint(nb) -> str:
    """sha256 of what a student writes in a notebook: the type and source of every cell, in order (outputs,
    execution counts and metadata, which Jupyter rewrites when it merely opens and saves a file, do not count)."""
    return hashlib.sha256(json.dumps([[c.cell_type, c.source] for c in nb.cells]).encode()).hexdigest()


def stamp_release(path: Path) -> None:
    """Record in the released notebook the fingerprint of its cells (``metadata.tfdl.release``): the next
    release tells from it whether someone worked on the file since."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.setdefault("tfdl", {})["release"] = cells_fingerprint(nb)
    nbformat.write(nb, path)


def worked_on(path: Path) -> bool:
    """Whether the notebook at ``path`` holds work that a release would destroy: its cells differ from the
    fingerprint the release recorded in it; without that record (a release written before it, or a file not
    written by a release), whether any cell has been run; an unreadable file counts as work."""
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # noqa: BLE001 - a damaged notebook may still be someone's only copy
        return True
    recorded = (nb.metadata.get("tfdl") or {}).get("release")
    if recorded:
        return recorded != cells_fingerprint(nb)
    return any(c.get("outputs") or c.get("execution_count") for c in nb.cells if c.cell_type == "code")


class KeptWork(ToolError):
    """The release was written except for notebooks someone worked on, which were kept (``kept``)."""

    def __init__(self, message: str, written: list[Path], kept: list[Path]):
        super().__init__(message)
        self.written, self.kept = written, kept


def install_release(course: Course, assignment: str, new: Path, *, force: bool = False) -> tuple[list[Path],
                                                                                                list[Path]]:
    """Copy the release in ``new`` into the course's release folder; return (files written, notebooks kept
    because someone worked on them; with ``force`` none is kept). Nothing else in the folder is touched."""
    out = course.release(assignment)
    written, kept = [], []
    for path in sorted(p for p in new.rglob("*") if p.is_file()):
        dest = out / path.relative_to(new)
        if dest.is_file() and dest.read_bytes() == path.read_bytes():
            written.append(dest)
            continue
        if dest.is_file() and dest.suffix == ".ipynb" and not force and worked_on(dest):
            same = cells_fingerprint(nbformat.read(dest, as_version=4)) == cells_fingerprint(
                nbformat.read(path, as_version=4))
            if not same:
                kept.append(dest)
                continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        written.append(dest)
    return written, kept


def runnable_derivation_stubs(path: Path, assignment: str) -> bool:
    """A derivation part's released cell (``<name> = None`` and nbgrader's stub) runs: nbgrader's stub raises
    ``NotImplementedError`` at the cell's execution, which for a function only defines a function that raises,
    but for an expression would stop a "Run all" at that cell. Without it ``<name>`` stays None, which its check
    reports as not answered yet."""
    from .derivation import Derivation
    topic = declared_topic(assignment)
    names = {p.name for p in (topic.parts if topic else []) if isinstance(p, Derivation)}
    if not names:
        return False
    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        flags = cell.metadata.get("nbgrader") or {}
        if cell.cell_type == "code" and flags.get("solution") and flags.get("grade_id") in names:
            lines = cell.source.splitlines()
            kept = [ln for ln in lines if not ln.strip().startswith("raise NotImplementedError")]
            if kept != lines:
                cell.source, changed = "\n".join(kept), True
    if changed:
        nbformat.write(nb, path)
    return changed


def release(course: Course | Path, assignment: str, *, force: bool = False) -> list[Path]:
    """Validate the source, write its declared points, generate the release into a scratch folder, normalize,
    stamp and verify it, and install it in the release folder; return the files written.

    A notebook of the release folder that someone worked on (:func:`worked_on`) is kept unless ``force``: the
    rest is installed and :class:`KeptWork` (a ToolError) names the notebook and says how to proceed."""
    course = as_course(course)
    problems = validate_source(course, assignment)
    if problems:
        raise ToolError(f"the source of {assignment} cannot be released; fix:\n  " + "\n  ".join(problems))
    write_points(course, assignment)
    write_repository(course, assignment)
    scratch = course.work / "new_release"
    new = scratch / assignment
    if new.exists():
        shutil.rmtree(new)
    run = course.nbgrader("generate_assignment", assignment, "--force",
                          f"--CourseDirectory.release_directory={scratch}")
    if run.returncode != 0:
        raise ToolError(f"nbgrader generate_assignment {assignment} failed: {run.error_line()}\n{run.output}")
    for path in sorted(new.rglob("*.ipynb")):
        normalize_notebook(path)
        runnable_derivation_stubs(path, assignment)
        stamp_release(path)
    problems = verify_release(course, assignment, new)
    if problems:
        raise ToolError(f"the release of {assignment} is unsafe (nothing was written to "
                        f"{_shown(course, course.release(assignment))}):\n  " + "\n  ".join(problems))
    written, kept = install_release(course, assignment, new, force=force)
    if kept:
        lines = [f"{_shown(course, k)} was NOT replaced: someone worked on it since the last release (its cells "
                 f"differ from what tfdl release wrote there). Move it out of the way to keep the work (e.g. "
                 f"mkdir -p work && mv {_shown(course, k)} work/) and release again, or release with --force to "
                 f"replace it (the work in it is lost); the new release is {_shown(course, new / k.relative_to(course.release(assignment)))}"
                 for k in kept]
        raise KeptWork("\n".join(lines), written, kept)
    return written
