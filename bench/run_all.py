"""The course's budgets (COURSE.md), measured and printed.

For every assignment in solutions/: the solution notebook's run time on one core (target < 60 s) and the time
to autograde one submission through `tfdl grade` (the default, isolated engine; target < 2 min); then the cold build of the
book from an empty cache (target < 10 min) and a rebuild with nothing changed.  One-core figures use
``taskset -c 0`` where it exists.  Timings are wall-clock on this machine: run it on an otherwise idle machine.

    .venv/bin/python bench/run_all.py [--no-book] [ASSIGNMENT ...]
"""
import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))


def one_core(cmd):
    return (["taskset", "-c", "0"] + cmd) if shutil.which("taskset") else cmd


def timed(cmd, cwd, env=None):
    start = time.perf_counter()
    run = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    return seconds, run.stdout


def notebook_seconds(assignment, tmp):
    nb = tmp / f"{assignment}.ipynb"
    shutil.copy(ROOT / "solutions" / assignment / f"{assignment}.ipynb", nb)
    seconds, _ = timed(one_core([str(BIN / "jupyter"), "nbconvert", "--to", "notebook", "--execute", "--inplace",
                                 "--ExecutePreprocessor.timeout=600", str(nb)]), cwd=tmp)
    return seconds


def autograde_seconds(assignment, tmp):
    import nbformat

    from tests.conftest import add_submission, fill, make_course
    from tests.notebooks import source_notebook
    course = make_course(tmp / "course-parent", [assignment])
    # release first (this also registers the assignment, so the timed run is one student's autograde plus
    # feedback and export), then submit the release with the solution's code cells filled in, as a student would
    timed([str(BIN / "tfdl"), "release", assignment, "--course", str(course)], cwd=course)
    released = nbformat.read(course / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source_notebook(assignment).cells
               if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}
    submissions = tmp / "submissions"
    add_submission(submissions, "alice", assignment, fill(released, answers))
    seconds, out = timed(one_core([str(BIN / "tfdl"), "grade", assignment, str(submissions), "--course",
                                   str(course)]), cwd=course)
    total = [line for line in out.splitlines() if line.startswith("alice")]
    return seconds, total[0] if total else out.strip().splitlines()[-1]


def book_seconds(tmp):
    book = tmp / "book"
    shutil.copytree(ROOT / "book", book, ignore=shutil.ignore_patterns("_build"))
    shutil.copytree(ROOT / "exercises", tmp / "exercises")
    shutil.copytree(ROOT / "node_modules", tmp / "node_modules", symlinks=True)
    cmd = [str(BIN / "jupyter-book"), "build", str(book), "--warningiserror", "--nitpick", "--keep-going"]
    cold, _ = timed(cmd, cwd=tmp)
    warm, _ = timed(cmd, cwd=tmp)
    return cold, warm


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*")
    parser.add_argument("--no-book", action="store_true")
    args = parser.parse_args()
    from autograder.course import Course
    names = args.assignments or Course(ROOT).assignments()
    print(f"{'assignment':<16} {'solution notebook, 1 core':>26} {'autograde 1 submission, 1 core':>32}")
    for a in names:
        with tempfile.TemporaryDirectory() as tmp:
            nb = notebook_seconds(a, Path(tmp))
            grade, row = autograde_seconds(a, Path(tmp))
        scores = row.split(None, 1)[-1] if row else ""
        print(f"{a:<16} {nb:>24.1f} s {grade:>30.1f} s   (scores: {scores})")
    print("targets: solution notebook < 60 s, autograde < 120 s")
    if not args.no_book:
        with tempfile.TemporaryDirectory() as tmp:
            cold, warm = book_seconds(Path(tmp))
        print(f"book: cold build {cold:.0f} s (target < 600 s), rebuild with nothing changed {warm:.0f} s "
              f"({cold / warm:.0f}x faster)")


if __name__ == "__main__":
    main()
