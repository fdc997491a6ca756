"""The student install: which distributions the student side of the course needs, and their pins.

``pyproject.toml``'s ``dependencies`` are the student side only (the notebooks, their visible checks and
``tfdl check``); the instructor tooling is the ``instructor`` extra. :func:`student_distributions` closes them
over what each requires (read from the installed packages' metadata, markers evaluated here, extras left out):
that is what ``pip install tfdl-autograder`` brings into a Colab or Binder kernel. :func:`student_pins` gives
their lines of ``requirements.txt``, which pins everything for the instructor's environment; ``tfdl publish``
writes them as the Binder environment. tests/test_course.py runs the visible checks and ``tfdl check`` with
every other installed package forbidden.
"""
from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

__all__ = ["canonical", "student_requirements", "student_distributions", "student_pins"]


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def student_requirements(root: Path) -> list[str]:
    """The direct student dependencies declared in ``root/pyproject.toml``."""
    return list(tomllib.loads((Path(root) / "pyproject.toml").read_text())["project"]["dependencies"])


def student_distributions(root: Path) -> set[str]:
    """The canonical names of the student dependencies and of everything they require, transitively (from the
    installed metadata; a requirement whose marker is false here, or that only an extra asks for, is left out).
    A dependency that is not installed is named in the error."""
    from packaging.requirements import Requirement

    todo = [Requirement(r) for r in student_requirements(root)]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        name = canonical(req.name)
        if name in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            raise LookupError(f"{req.name}, which the student side needs, is not installed here") from None
        todo += [Requirement(r) for r in requires]
    return seen


def student_pins(root: Path) -> list[str]:
    """The lines of ``root/requirements.txt`` that pin a student distribution (in the file's order)."""
    wanted = student_distributions(root)
    lines = []
    for line in (Path(root) / "requirements.txt").read_text().splitlines():
        m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9_.\-]*)\s*==", line)
        if m and canonical(m.group(1)) in wanted:
            lines.append(line.strip())
    return lines
