"""Grade the hostile corpus with the isolated engine and with plain ``nbgrader autograde`` (tfdl grade --engine
nbgrader), side by side in one run, and write the table to tests/hostile/RESULTS.md.

    .venv/bin/python -m tests.hostile.compare_nbgrader

How a case is judged: its yardstick is what the same submission earns without the attack (``Case.expected``:
the honest parts' points; a part whose own test cell was changed, moved or removed earns 0, nothing else
does).  An engine is right on a case when it gives exactly the yardstick, part by part; points above it are
**unearned**, points below it are honest points **lost**.  For the isolated engine the case's flag must also be
in the submission's flags or notes.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import nbformat

from autograder import nbgrading
from tests.conftest import make_course
from tests.hostile.corpus import CASES, build, clear_outside_markers

PARTS = ("test_square", "test_normalize", "test_net")
TIMEOUT = 5  # per cell / per call of the isolated engine (its sandbox imports torch before any request)
# Plain nbgrader's kernel imports numpy and torch in the first cell, under the cell timeout: on a loaded machine
# that alone can take more than 5 s, and every part would then be lost for a reason that is not the student's.
NBGRADER_TIMEOUT = 30
ENGINES = ("isolated", "nbgrader")


def _judge(scores: tuple, honest: tuple) -> tuple[float, float]:
    """(unearned, lost) points of ``scores`` against the yardstick ``honest``, part by part."""
    unearned = sum(max(0.0, s - h) for s, h in zip(scores, honest))
    lost = sum(max(0.0, h - s) for s, h in zip(scores, honest))
    return unearned, lost


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="tfdl-hostile-"))
    got, seconds = {}, {}
    clear_outside_markers()
    for engine in ENGINES:
        course = make_course(tmp / engine, ["hostile"])
        nbgrading.release(course, "hostile")
        release = nbformat.read(course / "exercises" / "hostile" / "hostile.ipynb", as_version=4)
        folder = tmp / engine / "submissions"
        build(folder, release)
        start = time.monotonic()
        if engine == "isolated":
            results, _ = nbgrading.grade_isolated(course, "hostile", folder, cell_timeout=TIMEOUT, workers=2)
        else:
            results, _ = nbgrading.grade(course, "hostile", folder, cell_timeout=NBGRADER_TIMEOUT,
                                         wall_timeout=300)
        seconds[engine] = time.monotonic() - start
        got[engine] = {r.student: (tuple(float(r.scores.get(p, 0.0)) for p in PARTS), list(r.flags) + list(r.notes))
                       for r in results}
        got[engine + "-pwned"] = sorted(str(p) for p in course.rglob("PWNED_BY_HOSTILE")) + clear_outside_markers()
    lines = ["| case | what it does | yardstick (without the attack) | isolated engine | plain nbgrader |",
             "|---|---|---|---|---|"]
    totals = {e: {"wrong": 0, "unearned": 0.0, "lost": 0.0} for e in ENGINES}
    for name, case in CASES.items():
        honest = tuple(float(x) for x in case.expected)
        cells = []
        for engine in ENGINES:
            scores, notes = got[engine].get(name, ((0.0, 0.0, 0.0), ["not graded"]))
            unearned, lost = _judge(scores, honest)
            unflagged = engine == "isolated" and case.flag and not any(case.flag in n for n in notes)
            wrong = bool(unearned or lost or unflagged)
            t = totals[engine]
            t["wrong"] += wrong
            t["unearned"] += unearned
            t["lost"] += lost
            verdict = "ok" if not wrong else "**WRONG** " + "/".join(f"{s:g}" for s in scores)
            verdict += f", {unearned:g} unearned" if unearned else ""
            verdict += f", {lost:g} lost" if lost else ""
            verdict += f", not flagged ({case.flag!r})" if unflagged else ""
            cells.append(f"{sum(scores):g} {verdict}")
        flag = f"; flagged: {case.flag!r}" if case.flag else ""
        lines.append(f"| {name} | {case.why}{flag} | {sum(honest):g} ({'/'.join(f'{s:g}' for s in honest)}) | "
                     f"{cells[0]} | {cells[1]} |")
    lines.append("")
    summary = "; ".join(f"{label} {totals[e]['wrong']} of {len(CASES)} cases wrong, {totals[e]['unearned']:g} "
                        f"points unearned, {totals[e]['lost']:g} honest points lost ({seconds[e]:.0f} s)"
                        for e, label in zip(ENGINES, ("isolated engine", "plain nbgrader")))
    lines.append(f"Totals: {summary}.")
    lines.append(f"Files written outside the sandbox: isolated {got['isolated-pwned'] or 'none'}; "
                 f"plain nbgrader {got['nbgrader-pwned'] or 'none'}.")
    text = "\n".join(lines)
    print(text)
    (Path(__file__).parent / "RESULTS.md").write_text(
        "# The hostile corpus: the isolated engine and plain nbgrader, side by side\n\n"
        "Generated in one run by `.venv/bin/python -m tests.hostile.compare_nbgrader` (parts: square 2, "
        f"normalize 3, net 2 points; the isolated engine with a per-cell / per-call limit of {TIMEOUT} s and its "
        f"default limits, plain nbgrader with a cell timeout of {NBGRADER_TIMEOUT} s, its first cell paying the "
        "imports of numpy and torch, and no other limit).  Each case is judged against its yardstick, what "
        "the same submission earns without the attack: the honest parts' points (a part whose own test cell was "
        "changed, moved or removed earns 0, nothing else does).  Points above it are unearned, points below it "
        "are honest points lost; the isolated engine must also flag the case where a flag is named.\n\n"
        + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
