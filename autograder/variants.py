"""Per-student variants: parameters of a part drawn from a deterministic function of the student's id.

A derivation part may declare ``variant={"sigma_w": ("1", "3/2", ...), ...}`` (exact values, as text): each
student's value of each parameter is drawn by :func:`draw` from a SHA-256 of (part, parameter, student id), so the
same id always gets the same values and two students rarely share them. A student who copies another's numbers
is graded against their own and loses.

* The student sees their values in the notebook (:func:`show`, called by a locked cell): the id is the JupyterHub
  user name (``JUPYTERHUB_USER``) when the notebook runs on the school's hub, else the course id the student types
  once in the notebook's second cell (``STUDENT_ID = "..."``, an ordinary cell).
* The grader recomputes each student's values from the nbgrader student id (:func:`graded_student`: set by the
  isolated engine for the submission it grades, and passed to plain nbgrader's kernel as ``TFDL_STUDENT``), never
  from what the notebook declares; a declared id that differs from the nbgrader id is flagged
  (:func:`mismatch`), not graded with someone else's variant.
"""
from __future__ import annotations

import ast
import contextlib
import contextvars
import hashlib
import os

__all__ = ["draw", "graded_student", "grading_student", "student_id", "declared_id", "mismatch", "show", "ID_NAME"]

ID_NAME = "STUDENT_ID"  # the name of the course id a student types once, in the notebook's second cell
_GRADED: contextvars.ContextVar = contextvars.ContextVar("tfdl_graded_student", default=None)


def draw(key: str, student: str, choices: dict) -> dict:
    """``{parameter: value text}``: for each parameter, one of its ``choices``, chosen by a SHA-256 of
    ``(key, parameter, student)`` (deterministic, independent of Python's hash seed)."""
    out = {}
    for name, options in choices.items():
        digest = hashlib.sha256(f"{key}\x00{name}\x00{student}".encode()).digest()
        out[name] = str(options[int.from_bytes(digest[:8], "big") % len(options)])
    return out


def graded_student() -> str | None:
    """The nbgrader id of the student being graded: the isolated engine's (:func:`grading_student`), else
    ``TFDL_STUDENT`` (plain nbgrader's kernel), else None (a student's own run: no grader)."""
    return _GRADED.get() or os.environ.get("TFDL_STUDENT") or None


@contextlib.contextmanager
def grading_student(student: str | None):
    """Grade as ``student`` inside the block (the isolated engine, around one submission; tests)."""
    token = _GRADED.set(student)
    try:
        yield
    finally:
        _GRADED.reset(token)


def student_id(declared: str = "") -> str:
    """The id a student's notebook uses: the JupyterHub user name when present, else the declared course id."""
    return os.environ.get("JUPYTERHUB_USER") or str(declared or "").strip()


def declared_id(nb) -> str | None:
    """The course id a submitted notebook declares (the first top-level ``STUDENT_ID = "..."`` of a code cell),
    read from the source without running it; None when it declares none (or an empty one)."""
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        try:
            tree = ast.parse(cell.source if isinstance(cell.source, str) else "".join(cell.source))
        except SyntaxError:
            continue
        for node in tree.body:
            if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == ID_NAME for t in node.targets)
                    and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
                return node.value.value.strip() or None
    return None


def mismatch(nb, student: str) -> str | None:
    """The flag of a submission whose declared id is not the nbgrader student id (None when they agree or none is
    declared)."""
    declared = declared_id(nb)
    if declared is None or declared == student:
        return None
    return (f"the notebook declares course id {declared!r} but is submitted as {student!r}: graded with the "
            f"variant of {student!r} (check for a copied notebook)")


def show(part, declared: str = "") -> dict:
    """Print the student's values of ``part``'s variant (a :class:`~autograder.derivation.Derivation`) and return
    them; with no id yet, say where to type it."""
    student = student_id(declared)
    if not student:
        print(f"Type your course id at the top of the notebook ({ID_NAME} = \"...\") and run it: your values of "
              f"{', '.join(part.variant)} are drawn from it.")
        return {}
    values = draw(part.name, student, part.variant)
    print(f"Your values for {part.name} (course id {student!r}): " + ", ".join(f"{k} = {v}" for k, v in values.items()))
    return values


# ----------------------------------------------------------------------------------------------------------------
# Variants of the hidden checks of implementation parts (``Part(..., variant=...)`` in autograder.core)
# ----------------------------------------------------------------------------------------------------------------
DEFAULT_ID = ""  # the id drawn from when no student is being graded (the instructor's own run, tfdl validate)


def values(key: str, student: str, choices: dict) -> dict:
    """``{parameter: option}``: what :func:`draw` draws, as the options themselves (numbers stay numbers; the
    options of a parameter are distinct as text, which ``Part`` checks)."""
    drawn = draw(key, student, choices)
    return {name: next(o for o in choices[name] if str(o) == text) for name, text in drawn.items()}


def session_id() -> str:
    """The course id of the notebook running now: the JupyterHub user name, else the ``STUDENT_ID`` the notebook
    declared (read from the IPython user namespace, else ``__main__``); "" when there is none."""
    import sys
    namespace = {}
    try:
        from IPython import get_ipython
        shell = get_ipython()
        namespace = shell.user_ns if shell is not None else {}
    except Exception:  # noqa: BLE001 - no IPython: a plain script
        shell = None
    if not namespace:
        namespace = vars(sys.modules["__main__"]) if "__main__" in sys.modules else {}
    declared = namespace.get(ID_NAME, "")
    return student_id(declared if isinstance(declared, str) else "")
