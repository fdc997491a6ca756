"""Shared fixtures: throwaway nbgrader course directories and student submissions.

``make_course(tmp_path, assignments=["ntk"])`` builds a course directory with the repository's own
``nbgrader_config.py`` (all its paths are relative to the file, so the copy points nbgrader at the temp
directory's own gradebook and folders) and a copy of ``solutions/<a>`` for each assignment, taken from the
repository or, for the toy assignment of the tooling tests, from ``tests/fixtures/solutions``.
``add_submission`` puts one student's notebook into a submissions folder in the layout ``tfdl grade`` reads.
"""
from __future__ import annotations

import copy
import shutil
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def make_course(tmp_path: Path, assignments=("toy",)) -> Path:
    """A fresh course directory ``tmp_path/course`` holding ``solutions/<a>`` for each assignment."""
    course = Path(tmp_path) / "course"
    (course / "solutions").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "nbgrader_config.py", course / "nbgrader_config.py")
    for a in assignments:
        src = next((d / a for d in (REPO / "solutions", FIXTURES / "solutions") if (d / a).is_dir()), None)
        if src is None:
            raise FileNotFoundError(f"no solutions/{a} in the repository or in tests/fixtures")
        shutil.copytree(src, course / "solutions" / a,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc"))
    return course


def fill(notebook, answers: dict[str, str]):
    """A copy of ``notebook`` with the source of the cells whose nbgrader grade_id is a key replaced."""
    nb = nbformat.from_dict(copy.deepcopy(notebook))
    answers = dict(answers)  # the caller's dict is left as it was (it may fill another notebook)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers.pop(grade_id)
    assert not answers, f"no cells with grade_id {sorted(answers)}"
    return nb


def add_submission(folder: Path, student: str, assignment: str, notebook=None, *, text: str | None = None,
                   layout: str = "folder") -> Path:
    """Write a student's notebook (a NotebookNode or path; or raw ``text``) into a submissions ``folder``.

    layout "folder": ``<student>/<a>.ipynb``; "nested": ``<student>/<a>/<a>.ipynb``; "flat": ``<student>.ipynb``.
    """
    path = {"folder": Path(folder) / student / f"{assignment}.ipynb",
            "nested": Path(folder) / student / assignment / f"{assignment}.ipynb",
            "flat": Path(folder) / f"{student}.ipynb"}[layout]
    path.parent.mkdir(parents=True, exist_ok=True)
    if text is not None:
        path.write_text(text)
    elif isinstance(notebook, (str, Path)):
        shutil.copy(notebook, path)
    else:
        nbformat.write(notebook, path)
    return path

