"""Throughput of grading a class, and what of it is overhead: plain sequential ``nbgrader autograde`` against the
isolated grader (autograder.batch: sandboxed student code, checks outside it) with 1 and 2 workers, and the work
no engine can avoid, in one run (issue 20).

The class: N submissions of the ``ntk`` assignment, a third full solutions, a third partly right (relu_ntk and
ntk_predict only), a third the untouched release.  Each engine phase grades the same class in a fresh course
directory, feedback and export included.  The unavoidable work is measured in this process, after one
submission has warmed it up (grader imported, sandbox server running, the instructor's references computed):
for each submission, the time spent executing its cells in its sandbox and running its checks, summed.  Then

    overhead per submission     = (wall time x workers - unavoidable work) / submissions
    compute-bound efficiency    = unavoidable work / (wall time x workers)
    throughput vs plain nbgrader = plain nbgrader's wall time / the isolated engine's (2 workers)

Targets (issue 20, 2 cores): overhead <= 0.5 s per submission with isolation kept; efficiency >= 0.8 with 2
workers; throughput >= 6x; the same scores in every phase.

    .venv/bin/python bench/grading_throughput.py [--n 24]
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402

from autograder import gradebook, nbgrading, submission  # noqa: E402
from autograder.sandbox import Limits, Sandbox, bwrap_available  # noqa: E402
from tests.conftest import add_submission, fill, make_course  # noqa: E402
from tests.notebooks import source_notebook  # noqa: E402

ASSIGNMENT = "ntk"


def build_class(folder: Path, release, n: int) -> dict[str, Path]:
    solution = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source_notebook(ASSIGNMENT).cells
                if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}
    kinds = [dict(solution), {"relu_ntk": solution["relu_ntk"], "ntk_predict": solution["ntk_predict"]}, {}]
    return {f"s{i:03d}": add_submission(folder, f"s{i:03d}", ASSIGNMENT, fill(release, dict(kinds[i % 3])))
            for i in range(n)}


def scores_of(results) -> dict:
    return {r.student: tuple(sorted(r.scores.items())) for r in results}


FEEDBACK: dict[str, float] = {}  # phase -> seconds of nbgrader's generate_feedback and export, inside its time


def phase(name, tmp, grade):
    course = make_course(tmp / name, [ASSIGNMENT])
    gradebook.ensure_in_gradebook(course, ASSIGNMENT, [])
    step = nbgrading.feedback_and_export

    def timed(*a, **k):
        t = time.perf_counter()
        try:
            return step(*a, **k)
        finally:
            FEEDBACK[name] = FEEDBACK.get(name, 0.0) + time.perf_counter() - t

    nbgrading.feedback_and_export = timed
    try:
        start = time.perf_counter()
        results = grade(course)
        return time.perf_counter() - start, scores_of(results)
    finally:
        nbgrading.feedback_and_export = step


def unavoidable(tmp: Path, found: dict[str, Path], timeout: float) -> tuple[float, dict]:
    """Seconds spent executing the class's cells and checks in an already-warm process, summed; and the scores."""
    course = make_course(tmp / "unavoidable", [ASSIGNMENT])
    gradebook.ensure_in_gradebook(course, ASSIGNMENT, [])
    limits = Limits(wall_seconds=timeout)
    first = next(iter(found))
    submission.grade_submission(course, ASSIGNMENT, first, found[first], limits)  # warm-up, not counted
    spent = [0.0]

    def timed(f):
        def g(*a, **k):
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                spent[0] += time.perf_counter() - t
        return g

    run_test, execute = submission._run_test, Sandbox.execute
    submission._run_test, Sandbox.execute = timed(run_test), timed(execute)
    try:
        results = [submission.grade_submission(course, ASSIGNMENT, s, nb, limits) for s, nb in found.items()]
    finally:
        submission._run_test, Sandbox.execute = run_test, execute
    return spent[0], scores_of(results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=24, help="submissions (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=120, help="per-cell / per-call limit in seconds")
    args = parser.parse_args()
    if not bwrap_available():
        print("bubblewrap is not installed: the isolated engine would not isolate (make system installs it)")
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="tfdl-bench-"))
    release = nbformat.read(ROOT / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    folder = tmp / "submissions"
    found = build_class(folder, release, args.n)
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

    figures, scores, stats = {}, {}, {}
    figures["nbgrader"], scores["nbgrader"] = phase(
        "nbgrader", tmp, lambda c: nbgrading.grade(c, ASSIGNMENT, folder, cell_timeout=args.timeout)[0])
    for workers in (1, 2):
        key = f"isolated-{workers}"
        stats[key] = {}
        figures[key], scores[key] = phase(key, tmp, lambda c, w=workers, k=key: nbgrading.grade_isolated(
            c, ASSIGNMENT, folder, cell_timeout=args.timeout, workers=w, stats=stats[k])[0])
    work, scores["unavoidable"] = unavoidable(tmp, found, args.timeout)

    n = args.n
    print(f"grading {n} {ASSIGNMENT} submissions on {os.cpu_count()} cores (feedback and export included in "
          "every engine phase)")
    for key, s in figures.items():
        print(f"  {key:12s} {s:8.1f} s   {n / s * 60:6.1f} submissions/min   (of which nbgrader's feedback and "
              f"export: {FEEDBACK.get(key, 0.0):.1f} s)")
    print(f"  unavoidable work (cells and checks in a warm process, summed): {work:.1f} s, "
          f"{work / n:.2f} s per submission")
    for key in ("isolated-1", "isolated-2"):
        for pid, st in sorted(stats[key].items()):
            print(f"  {key} worker {pid}: {st['jobs']} submissions, peak memory {st['peak_mb']:.0f} MB")
    wall, workers = figures["isolated-2"], 2
    print(f"overhead per submission: {(wall * workers - work) / n:.2f} s")
    print(f"throughput vs plain nbgrader: {figures['nbgrader'] / wall:.2f}x")
    print(f"compute-bound efficiency: {work / (wall * workers):.2f}")
    grading = wall - FEEDBACK.get("isolated-2", 0.0)
    print(f"  (grading alone, without nbgrader's feedback and export step: overhead "
          f"{(grading * workers - work) / n:.2f} s per submission, efficiency {work / (grading * workers):.2f})")
    print(f"  (1 worker: overhead {(figures['isolated-1'] - work) / n:.2f} s per submission, "
          f"efficiency {work / figures['isolated-1']:.2f}, {figures['nbgrader'] / figures['isolated-1']:.2f}x)")
    print("  targets: overhead <= 0.5 s, throughput >= 6x, efficiency >= 0.8 (2 workers, 2 cores)")
    same = scores["isolated-1"] == scores["isolated-2"] == scores["unavoidable"]
    agree = scores["nbgrader"] == scores["isolated-1"]
    print(f"  same scores in every isolated phase: {same}; same scores as plain nbgrader: {agree}")
    if not agree:
        for s in sorted(scores["nbgrader"]):
            if scores["nbgrader"][s] != scores["isolated-1"].get(s):
                print(f"    {s}: nbgrader {scores['nbgrader'][s]} isolated {scores['isolated-1'].get(s)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
