"""Cost of grading a derivation part (autograder.derivation): seconds per check, visible and with the hidden one.

    .venv/bin/python bench/derivation_parts.py [--repeat 3]

For each assignment's derivation part, grades the solution's expression (in-process, as a grade cell does: each
check starts one child process that parses and evaluates) and a wrong one, and prints the median wall-clock time.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograder.derivation import Derivation  # noqa: E402
from tests.notebooks import solution_namespace  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'part':<28} {'answer':<8} {'visible s':>10} {'all s':>8}")
    for a in ("ntk", "implicit_bias", "depth"):
        topic = importlib.import_module(f"autograder.{a}").TOPIC
        solution = solution_namespace(a)
        for part in (p for p in topic.parts if isinstance(p, Derivation)):
            right = solution[part.name]
            for label, value in (("right", right), ("wrong", 2 * right + 1)):
                row = []
                for tests in ("visible", "all"):
                    times = []
                    for _ in range(args.repeat):
                        start = time.perf_counter()
                        with contextlib.redirect_stdout(io.StringIO()):
                            topic.check(part.name, value, tests)
                        times.append(time.perf_counter() - start)
                    row.append(statistics.median(times))
                print(f"{a + '.' + part.name:<28} {label:<8} {row[0]:>10.2f} {row[1]:>8.2f}")


if __name__ == "__main__":
    main()
