"""How the piece counters of the assignment `depth` scale with k: prints its figures, asserts nothing.

For k = 1..20 it counts the linear pieces of Telgarsky's sawtooth network (k hidden layers of width 2, 2^k pieces
on [0, 1]) with
  * the solution notebook's ``count_linear_pieces`` (float64 breakpoint propagation, numpy), and
  * the instructor reference ``solutions/depth/grading.py::count_linear_pieces`` (exact rational arithmetic),
and prints the time per call and the count.  The reference costs about 4x more per step of k (it handles every
piece in Python Fractions); it is skipped once its predicted time exceeds ``--ref-budget`` seconds (default 60).
Finally it times one call of each check (visible and all) on the solution, the figures quoted in the report.

    .venv/bin/python bench/depth_pieces.py [--max-k 20] [--ref-budget 60]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from autograder import depth  # noqa: E402
from autograder.core import instructor_module  # noqa: E402
from tests.notebooks import solution_namespace  # noqa: E402


def timed(fn, *args):
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-k", type=int, default=20)
    parser.add_argument("--ref-budget", type=float, default=60.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    solution = solution_namespace("depth")
    grading = instructor_module("depth")

    print(f"{'k':>3} {'2^k':>9} {'solution':>9} {'time [s]':>9} {'reference':>10} {'time [s]':>9}")
    ref_time = 0.0
    for k in range(1, args.max_k + 1):
        net = solution["sawtooth_net"](k)
        n_sol, t_sol = timed(solution["count_linear_pieces"], net, 0.0, 1.0)
        if ref_time * 4.5 <= args.ref_budget:
            n_ref, ref_time = timed(grading.count_linear_pieces, net, 0.0, 1.0)
            ref = f"{n_ref:>10} {ref_time:>9.3f}"
        else:
            ref = f"{'skipped':>10} {'> ' + format(args.ref_budget, 'g'):>9}"
        flag = "" if n_sol == 2 ** k else "   <- solution differs from 2^k"
        print(f"{k:>3} {2 ** k:>9} {n_sol:>9} {t_sol:>9.4f} {ref}{flag}", flush=True)

    print("\nOne call of each check on the solution (seconds):")
    for part in depth.POINTS:
        for tests in ("visible", "all"):
            with contextlib.redirect_stdout(io.StringIO()):
                score, seconds = timed(getattr(depth, f"check_{part}"), solution[part], tests, depth.POINTS[part])
            print(f"  check_{part}(tests={tests!r}): {float(score):g} of {depth.POINTS[part]} points in {seconds:.2f}")


if __name__ == "__main__":
    main()
