"""Throughput of grading a class: plain sequential ``nbgrader autograde`` against the isolated grader
(autograder.batch: sandboxed student code, checks outside it) with 1 and 2 workers, in one run.

The class: N submissions of the ``ntk`` assignment, a third full solutions, a third partly right (relu_ntk and
ntk_predict only), a third the untouched release.  Each phase grades the same class in a fresh course directory.
Prints seconds per phase and the ratios; targets (issue #5): isolated with 2 workers >= 1.7x plain nbgrader's
throughput on 2 cores, and isolation at 1 worker costing < 20 % (isolated-1 time <= 1.2 x plain nbgrader).
Also checks that every phase gives every student the same scores.

    .venv/bin/python bench/grading_throughput.py [--n 40]
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

from autograder import gradebook, nbgrading  # noqa: E402
from tests.conftest import add_submission, fill, make_course  # noqa: E402
from tests.notebooks import source_notebook  # noqa: E402


def build_class(folder: Path, release, n: int) -> None:
    solution = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source_notebook("ntk").cells
                if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}
    kinds = [dict(solution), {"relu_ntk": solution["relu_ntk"], "ntk_predict": solution["ntk_predict"]}, {}]
    for i in range(n):
        add_submission(folder, f"s{i:03d}", "ntk", fill(release, dict(kinds[i % 3])))


def phase(name, tmp, grade):
    course = make_course(tmp / name, ["ntk"])
    gradebook.ensure_in_gradebook(course, "ntk", [])
    start = time.perf_counter()
    results = grade(course)
    seconds = time.perf_counter() - start
    return seconds, {r.student: tuple(sorted(r.scores.items())) for r in results}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=40, help="submissions (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=120, help="per-cell / per-call limit in seconds")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tfdl-bench-"))
    release = nbformat.read(ROOT / "exercises" / "ntk" / "ntk.ipynb", as_version=4)
    folder = tmp / "submissions"
    build_class(folder, release, args.n)
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

    figures, scores = {}, {}
    figures["nbgrader"], scores["nbgrader"] = phase(
        "nbgrader", tmp, lambda c: nbgrading.grade(c, "ntk", folder, cell_timeout=args.timeout)[0])
    for workers in (1, 2):
        key = f"isolated-{workers}"
        figures[key], scores[key] = phase(key, tmp, lambda c, w=workers: nbgrading.grade_isolated(
            c, "ntk", folder, cell_timeout=args.timeout, workers=w)[0])

    n = args.n
    print(f"grading {n} ntk submissions on {os.cpu_count()} cores (feedback and export included in every phase)")
    for key, s in figures.items():
        print(f"  {key:12s} {s:8.1f} s   {n / s * 60:6.1f} submissions/min")
    speedup = figures["nbgrader"] / figures["isolated-2"]
    cost = figures["isolated-1"] / figures["nbgrader"] - 1
    print(f"  isolated, 2 workers vs plain nbgrader: {speedup:.2f}x throughput (target >= 1.7x)")
    print(f"  isolation cost at 1 worker: {100 * cost:+.1f} % (target < 20 %)")
    same = scores["isolated-1"] == scores["isolated-2"]
    agree = scores["nbgrader"] == scores["isolated-1"]
    print(f"  same scores with 1 and 2 workers: {same}; same scores as plain nbgrader: {agree}")
    if not agree:
        for s in sorted(scores["nbgrader"]):
            if scores["nbgrader"][s] != scores["isolated-1"].get(s):
                print(f"    {s}: nbgrader {scores['nbgrader'][s]} isolated {scores['isolated-1'].get(s)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
