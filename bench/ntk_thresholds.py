"""Where the NTKMLP check's threshold sits between correct and wrong networks (book/conventions.md, rule 5).

For each hidden NTKMLP case of solutions/ntk/grading.py, over seeds 0..S-1, prints the relative Frobenius error
between the empirical NTK at initialization and the analytic kernel: the largest error of the correct
draws (each the average over the case's number of networks, as the check does; the solution notebook's NTKMLP, and the input-major variant of tests/test_ntk.py) and the smallest
error of each wrong parametrization of tests/test_ntk.py, with the threshold and the margins on both sides.

    .venv/bin/python bench/ntk_thresholds.py [--seeds 10]
"""
import argparse
import functools
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from autograder.core import instructor_module  # noqa: E402
from autograder.ntk import run_ntkmlp_kernel  # noqa: E402
from tests.notebooks import solution_namespace  # noqa: E402
from tests.test_ntk import NTKMLP_MISTAKES, MLPVariant  # noqa: E402


def error(cls, case, seed, grading):
    """The error the check computes, for the networks built with seeds seed * 100 + j (j < case["networks"])."""
    K = run_ntkmlp_kernel(cls, dict(case, seed=seed * 100), grading.empirical_ntk)["value"]
    _, analytic = grading.relu_ntk(case["X1"], case["X2"], case["depth"], case["W_std"], case["b_std"])
    return float(np.linalg.norm(K - analytic) / np.linalg.norm(analytic))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    grading = instructor_module("ntk")
    correct = {"solution": solution_namespace("ntk")["NTKMLP"], "input-major": MLPVariant}
    start = time.perf_counter()
    for case in grading.ntk_mlp_cases():
        if case["depth"] == 0:
            continue
        seeds = range(args.seeds)
        good = max(error(cls, case, s, grading) for cls in correct.values() for s in seeds)
        print(f"\n{case['name']}   threshold {case['max_error']:g}")
        print(f"  correct, worst of {2 * args.seeds} draws: {good:.4f}   (threshold / worst = "
              f"{case['max_error'] / good:.1f}x)")
        for mistake in NTKMLP_MISTAKES:
            cls = functools.partial(MLPVariant, mistake=mistake)
            bad = min(error(cls, case, s, grading) for s in seeds)
            verdict = "caught" if bad > case["max_error"] else "NOT caught by this case"
            print(f"  {mistake:42s} best of {args.seeds}: {bad:10.4f}   ({bad / case['max_error']:.1f}x threshold, "
                  f"{verdict})")
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
