"""The student's self-check (``tfdl check NOTEBOOK``): run a copy of the notebook and score it as grading will.

The notebook's grade cells are anchored as grading anchors them (:func:`autograder.anchors.anchor`), against the
parts the assignment's topic declares (``TOPIC`` of ``autograder/<a>.py``, on the student side): a check cell
that was edited, moved, converted, duplicated or deleted scores 0 here too, with the reason, and the maximum
stays the declared one. Each part's checks are read as data from the cell's outputs (the grade cell displays its
result under :data:`autograder.results.REPORT_MIMETYPE`), never parsed from text.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import nbformat
from .nbcells import determine_grade, is_grade, is_solution  # nbgrader's own functions, without nbgrader

from .anchors import SourceCell, SourceSpec, anchor
from .results import REPORT_MIMETYPE, CheckResult, PartResult

__all__ = ["execute_copy", "self_check", "topic_of"]


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


def topic_of(nb, name: str | None = None):
    """The declared topic of the notebook: ``autograder/<name>.py`` when it declares one, else the topic whose
    grade ids the notebook's grade cells match best (None when no topic matches at all)."""
    import importlib
    import pkgutil

    import autograder

    ids = {(c.metadata.get("nbgrader") or {}).get("grade_id") for c in nb.cells}
    candidates = [name] if name else []
    # only modules that declare a topic (importing any other, e.g. __main__, could run code)
    candidates += [m.name for m in pkgutil.iter_modules(autograder.__path__)
                   if "TOPIC = Topic(" in (Path(autograder.__path__[0]) / f"{m.name}.py").read_text(errors="replace")]
    candidates = [c for c in candidates if (Path(autograder.__path__[0]) / f"{c}.py").is_file()]
    best, overlap = None, 0
    for module_name in dict.fromkeys(candidates):
        try:
            topic = getattr(importlib.import_module(f"autograder.{module_name}"), "TOPIC", None)
        except Exception:  # noqa: BLE001 - not a topic module
            continue
        if topic is None:
            continue
        if module_name == name:
            return topic
        k = len(ids & set(topic.points))
        if k > overlap:
            best, overlap = topic, k
    return best


def _spec_from(nb, topic) -> SourceSpec:
    """What grading knows of the source, as far as the student side can know it: the declared parts and points,
    and each locked cell's checksum as the release recorded it in its metadata."""
    from .core import Part
    kinds = {p.grade_id: ("auto" if isinstance(p, Part) else "manual") for p in topic.parts}
    cells = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader") or {}
        gid = meta.get("grade_id")
        if gid is None or gid in cells:
            continue
        cell_type = "code" if kinds.get(gid) == "auto" else cell.cell_type
        cells[gid] = SourceCell(gid, cell_type, bool(meta.get("locked")), meta.get("checksum"), "")
    return SourceSpec(topic.assignment, topic.assignment,
                      [(g, p, kinds[g]) for g, p in topic.points.items()], cells)


def _checks(outputs) -> list[CheckResult]:
    checks = []
    for o in outputs:
        data = o.get("data", {}) if o.output_type == "display_data" else {}
        report = data.get(REPORT_MIMETYPE)
        if isinstance(report, dict):
            checks += [CheckResult(str(c.get("name", "")), bool(c.get("passed")), str(c.get("message", "")),
                                   float(c.get("weight", 1.0))) for c in report.get("checks", [])]
    return checks


def self_check(nb, name: str | None = None) -> tuple[list[PartResult], list[str]]:
    """Score the executed notebook's grade cells as grading will, and list errors of solution cells.

    Returns the parts (in the declared order when the notebook's topic is known) and the errors."""
    errors = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and is_solution(cell):
            errors += [f"cell {meta.get('grade_id', '?')}: {last_error_line(o)}"
                       for o in cell.get("outputs", []) if o.output_type == "error"]
    scored = {}
    for cell in nb.cells:
        if not is_grade(cell):
            continue
        meta = cell.metadata.nbgrader
        gid = meta["grade_id"]
        if cell.cell_type == "code" and not is_solution(cell) and cell.execution_count is None:
            scored.setdefault(gid, PartResult(gid, "auto", float(meta.get("points", 0)), 0.0,
                                              "  not run: the notebook stopped before this cell", "not run"))
        elif cell.cell_type == "code" and not is_solution(cell):
            score, max_score = determine_grade(cell)
            feedback = _text(cell.outputs).rstrip()
            err = [o for o in cell.outputs if o.output_type == "error"]
            if err:
                feedback += ("\n" if feedback else "") + f"  error: {last_error_line(err[-1])}"
            if _text(cell.outputs, "stderr"):
                feedback += ("\n" if feedback else "") + "  the cell wrote to stderr, which scores 0:\n    " + \
                    _text(cell.outputs, "stderr").strip().replace("\n", "\n    ")[:500]
            scored.setdefault(gid, PartResult(gid, "auto", max_score, score, feedback,
                                              checks=_checks(cell.outputs)))
        else:
            scored.setdefault(gid, PartResult(gid, "manual", float(meta.get("points", 0)), None))
    topic = topic_of(nb, name)
    if topic is None:
        return list(scored.values()), errors
    anchors, _ = anchor(nb.cells, _spec_from(nb, topic))
    parts = []
    for gid, points in topic.points.items():
        a = anchors[gid]
        part = scored.get(gid) or PartResult(gid, a.kind, points, 0.0 if a.kind == "auto" else None)
        part.points = points
        if not a.ok:
            part.score, part.status = 0.0, a.status
            part.feedback = (f"  This part will score 0 when graded: {a.note()}. Put the cell back as it was "
                             f"released (copy it from a fresh copy of the assignment).\n" + (part.feedback or ""))
        parts.append(part)
    return parts, errors
