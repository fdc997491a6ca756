"""A class of 500 at scale (issue 20): the same simulated class graded sequentially, on the process pool and on a
Dask ``LocalCluster``, with the same scores required of all three, each grading process's peak memory, and how
well the progress bar's ETA (:func:`autograder.batch.class_progress`) predicted the time that was left once a
tenth of the class was done.

The class: N submissions of the small ``toy`` assignment of the tests (tests/fixtures/solutions/toy), so that the
figures are the engine's own (start-up, sandbox, anchoring, gradebook commits), not one assignment's checks: in
turn full marks, one part right, the untouched release, a broken cell, and an infinite loop in ``cube`` (the
per-call limit is 2 s).

    .venv/bin/python bench/grading_scale.py [--n 500] [--workers 2]
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

from autograder import batch, gradebook, release  # noqa: E402
from autograder.course import Course  # noqa: E402
from autograder.sandbox import Limits  # noqa: E402
from tests.conftest import add_submission, fill, make_course  # noqa: E402

ANSWERS = [
    {"square": "def square(x):\n    return x * x", "cube": "def cube(x):\n    return x ** 3"},
    {"square": "def square(x):\n    return x * x"},
    {},
    {"square": "def square(x):\n    return x * x", "cube": "def cube(x)\n    return x ** 3"},
    {"square": "def square(x):\n    return x * x", "cube": "def cube(x):\n    while True:\n        pass"},
]


class ETA:
    """A progress bar (class_progress) that records, once a tenth of the class is done, what its ETA says."""

    def __init__(self, total: int):
        self.bar = batch.class_progress(total, "grading", file=sys.stderr, mininterval=1.0)
        self.warm_up = 1  # set by grade_class, passed on to the bar
        self.total, self.done, self.start = total, 0, time.perf_counter()
        self.predicted = self.at = None

    def update(self, n: int = 1) -> None:
        self.bar.warm_up = self.warm_up
        self.bar.update(n)
        self.done += n
        if self.predicted is None and self.done >= self.total / 10:
            d = self.bar.format_dict
            rate = d["rate"] or (d["n"] / d["elapsed"] if d["elapsed"] else None)
            self.predicted = (d["total"] - d["n"]) / rate if rate else float("nan")
            self.at = time.perf_counter()

    def set_postfix_str(self, s: str) -> None:
        self.bar.set_postfix_str(s, refresh=False)

    def close(self) -> None:
        self.bar.close()
        self.end = time.perf_counter()


def run(name: str, tmp: Path, found_of, **kw):
    course = make_course(tmp / name, ["toy"])
    release.release(course, "toy")
    gradebook.ensure_in_gradebook(course, "toy", [])
    found = found_of(course)
    stats: dict = {}
    eta = {}

    def progress(total):
        eta["bar"] = ETA(total)
        return eta["bar"]

    start = time.perf_counter()
    results = batch.grade_class(course, "toy", found, limits=Limits(wall_seconds=2), progress=progress,
                                resume=False, stats=stats, **kw)
    seconds = time.perf_counter() - start
    bar = eta["bar"]
    actual = bar.end - bar.at
    return seconds, {r.student: tuple(sorted(r.scores.items())) for r in results}, stats, bar.predicted, actual


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tfdl-scale-"))
    folder = tmp / "submissions"

    def found_of(course):
        if not folder.exists():
            released = nbformat.read(Course(course).release("toy") / "toy.ipynb", as_version=4)
            for i in range(args.n):
                add_submission(folder, f"s{i:04d}", "toy", fill(released, ANSWERS[i % len(ANSWERS)]))
        return {f"s{i:04d}": folder / f"s{i:04d}" / "toy.ipynb" for i in range(args.n)}

    import distributed
    phases = {}
    phases["sequential"] = run("sequential", tmp, found_of, workers=0)
    phases["process pool"] = run("pool", tmp, found_of, workers=args.workers)
    with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        phases["dask"] = run("dask", tmp, found_of, scheduler=cluster.scheduler_address)

    print(f"a class of {args.n} toy submissions, {args.workers} workers, {os.cpu_count()} cores")
    reference = phases["sequential"][1]
    for name, (seconds, scores, stats, predicted, actual) in phases.items():
        error = abs(predicted - actual) / actual if actual else float("nan")
        print(f"  {name:12s} {seconds:7.1f} s  {args.n / seconds * 60:6.0f} submissions/min  same scores as "
              f"sequential: {scores == reference}  ETA after a tenth: {predicted:.0f} s predicted, {actual:.0f} s "
              f"real ({100 * error:.0f} % off; target <= 20 %)")
        for pid, st in sorted(stats.items()):
            print(f"      worker {pid}: {st['jobs']} submissions, peak memory {st['peak_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
