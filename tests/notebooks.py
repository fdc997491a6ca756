"""Load the functions of an instructor source notebook, so that tests grade the real solution."""
from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent


def source_notebook(assignment: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)


def solution_namespace(assignment: str) -> dict:
    """Execute the set-up and solution code cells of ``solutions/<a>/<a>.ipynb`` (not the check cells, not the
    ungraded experiments) and return the names they define."""
    namespace: dict = {}
    for cell in source_notebook(assignment).cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and (meta.get("solution") or meta.get("grade_id") == "setup"
                                         or str(meta.get("grade_id", "")).endswith("_symbols")):  # derivation symbols
            exec(compile(cell.source, f"<{assignment}:{meta.get('grade_id')}>", "exec"), namespace)
    return namespace
