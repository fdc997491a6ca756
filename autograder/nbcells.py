"""How nbgrader reads a notebook cell (grade cell, solution cell, locked, checksum, score), for the student side.

The self-check (``tfdl check``) and the anchoring of grade cells must read cells exactly as nbgrader does, but
the student install carries no nbgrader: nbgrader pulls JupyterLab, the notebook server and about a hundred
other packages into a Colab or Binder kernel, and ``import nbgrader.utils`` alone loads the notebook server.
These functions are written here from nbgrader's documented rules (its metadata flags; the checksum over
source, type, flags, grade id and points; the partial credit of an ``execute_result``), and
tests/test_nbcells.py proves that they give nbgrader 0.9.6's answer (``nbgrader.utils``) on every cell of every
notebook of the course and on every edge case of the partial credit.
"""
from __future__ import annotations

import hashlib

__all__ = ["is_grade", "is_solution", "is_locked", "compute_checksum", "determine_grade", "get_partial_grade"]


def _flags(cell) -> dict:
    return cell.metadata["nbgrader"] if "nbgrader" in cell.metadata else {}


def is_grade(cell):
    """A grade cell: nbgrader's ``grade`` flag, as stored (the checksum hashes its text)."""
    return _flags(cell).get("grade", False)


def is_solution(cell):
    """A solution cell: nbgrader's ``solution`` flag, as stored."""
    return _flags(cell).get("solution", False)


def is_locked(cell) -> bool:
    """Locked (nbgrader restores its source when grading): a grade cell that is not a solution cell, or a cell
    flagged ``locked`` that is not a solution cell."""
    if is_solution(cell):
        return False
    if is_grade(cell):
        return True
    return _flags(cell).get("locked", False)


def compute_checksum(cell) -> str:
    """nbgrader's checksum of a cell: MD5 over its source, type, three flags, grade id and (grade cells) points."""
    flags = _flags(cell)
    parts = [cell.source, cell.cell_type, str(is_grade(cell)), str(is_solution(cell)), str(is_locked(cell)),
             flags["grade_id"]]
    if is_grade(cell):
        parts.append(str(float(flags["points"])))
    digest = hashlib.md5()
    for text in parts:
        digest.update(text.encode("utf-8"))
    return digest.hexdigest()


def get_partial_grade(output, max_points, log=None):
    """The partial credit an ``execute_result`` displays: its plain text as a number in [0, max_points]. As in
    nbgrader: a list of several values, text that is no number, or a negative number gives full points (with a
    warning); more than the maximum is an error."""
    text = output["data"]["text/plain"]
    if not text:
        raise KeyError("output ['data']['text/plain'] does not exist")

    def full(why: str):
        if log:
            log.warning(f"Cell output is {text}, which {why}: treated as full credit")
        return max_points

    if isinstance(text, list):
        if len(text) > 1:
            return full("is a list")
        text = text[0]
    try:
        value = float(text)
    except ValueError:
        return full("cannot be converted to a float")
    if value < 0.0:
        return full("is less than 0.0")
    if value > max_points:
        raise ValueError("partial credit cannot be greater than maximum points for cell")
    return value


def determine_grade(cell, log=None):
    """(score, max points) of a grade cell as nbgrader's autograder gives them (score None: graded by hand). A
    solution grade cell left as released scores 0; a code grade cell scores 0 on an error or stderr output, its
    partial credit on an ``execute_result``, else full points; a markdown grade cell is graded by hand."""
    if not is_grade(cell):
        raise ValueError("cell is not a grade cell")
    flags = _flags(cell)
    max_points = float(flags["points"])
    if is_solution(cell):
        unchanged = "checksum" in flags and flags["checksum"] == compute_checksum(cell)
        return (0, max_points) if unchanged else (None, max_points)
    if cell.cell_type != "code":
        return None, max_points
    for output in cell.outputs:
        if output.output_type == "error" or (output.output_type == "stream" and output.name == "stderr"):
            return 0, max_points
        if output.output_type == "execute_result":
            return get_partial_grade(output, max_points, log), max_points
    return max_points, max_points
