"""``tfdl``: the course's command line for instructors (release, grade, export) and students (check).

    tfdl release ntk                 solutions/ntk -> exercises/ntk (verified: no solutions, no hidden tests)
    tfdl release --all
    tfdl grade ntk submissions/      autograde a class (one folder or .ipynb per student): student code in a
                                     sandbox, checks outside it, in parallel; scores in nbgrader's gradebook
    tfdl grade ntk submissions/ --engine nbgrader   the same through plain `nbgrader autograde`, one by one
    tfdl report ntk                  instructor report of the last grading (distribution, parts, flags)
    tfdl export --csv grades.csv     the gradebook as CSV (graded assignments; lateness; flags)
    tfdl export ntk --format canvas  a gradebook CSV Canvas (or: moodle) imports directly
    tfdl publish ../tfdl-public      the student edition: releases, checks package, built book, no answers
    tfdl check exercises/ntk/ntk.ipynb   run the visible checks of one notebook and show the scores

Exit status: 0 on success, 1 when the command failed (message on stderr), 2 for a usage error.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .course import Course, ToolError
from .results import SubmissionResult


def _course(args) -> Course:
    return Course(Path(args.course) if args.course else None)


def cmd_release(args) -> int:
    from .release import KeptWork, release
    course = _course(args)
    names = course.assignments() if args.all else [args.assignment]
    if not names:
        raise ToolError(f"no assignments in {course.sources}")
    kept = []
    for name in names:
        try:
            written = release(course, name, force=args.force)
        except KeptWork as exc:  # the other assignments are released all the same
            written = exc.written
            kept.append(str(exc))
            print(f"kept {name}: " + ", ".join(str(p.relative_to(course.root)) for p in exc.kept)
                  + " (worked on since the last release; see below)")
        print(f"released {name}: " + (", ".join(str(p.relative_to(course.root)) for p in written) or "nothing"))
        print("  verified: no solutions, no hidden tests, no grading.py, every grade cell present")
    if kept:
        raise ToolError("\n".join(kept))
    return 0


def _fmt(x: float) -> str:
    return f"{x:g}"


def score_table(results: list[SubmissionResult]) -> str:
    from tabulate import tabulate
    parts = list(dict.fromkeys(p.grade_id for r in results for p in r.parts))
    rows = [[r.student, *(_fmt(r.scores.get(p, 0.0)) for p in parts), _fmt(r.total), _fmt(r.max_score),
             "; ".join([*r.flags, *(n.splitlines()[0] for n in r.notes if n)]) or "ok"] for r in results]
    return tabulate(rows, headers=["student", *parts, "total", "max", "status"], disable_numparse=True)


def cmd_grade(args) -> int:
    from tqdm import tqdm

    from . import nbgrading
    course = _course(args)
    submissions = Path(args.submissions).resolve()  # resolved once, up front
    if not submissions.is_dir():
        raise ToolError(f"{args.submissions} is not a folder of submissions")
    csv = Path(args.csv).resolve() if args.csv else course.work / "grades.csv"

    def progress(items):
        bar = tqdm(list(items), desc=f"autograding {args.assignment}", unit="student", file=sys.stderr)
        for student, notebook in bar:
            bar.set_postfix_str(student)
            yield student, notebook

    if args.engine == "isolated":
        from .sandbox import bwrap_available
        contained = bwrap_available()
        if not contained and not args.no_isolation:
            raise ToolError("bubblewrap is not installed, so student code would NOT be contained (it could read "
                            "the solutions and other students' files and reach the network). Install it "
                            "(apt-get install bubblewrap) or, knowingly, pass --no-isolation")
        if not contained:
            print("WARNING: grading WITHOUT isolation (--no-isolation): student code runs with your rights, "
                  "limited only in time and memory", file=sys.stderr)

        def bar(total):
            if total == 0:  # a re-run with nothing to do: a sentence, not an empty "0 student" bar
                print(f"nothing new to grade for {args.assignment}: every submission was graded before with the "
                      "same notebook and checks (--regrade grades them again)", file=sys.stderr)
                return None
            from .batch import class_progress
            return class_progress(total, f"grading {args.assignment} ("
                                  f"{'isolated' if contained else 'NOT ISOLATED'}, "
                                  f"{'dask' if args.scheduler else args.workers or 'all cores'})", file=sys.stderr)
        results, warnings = nbgrading.grade_isolated(
            course, args.assignment, submissions, cell_timeout=args.timeout, wall_timeout=args.student_timeout,
            csv=csv, workers=args.workers, scheduler=args.scheduler, progress=bar, resume=not args.regrade)
    else:
        results, warnings = nbgrading.grade(course, args.assignment, submissions, cell_timeout=args.timeout,
                                            wall_timeout=args.student_timeout, csv=csv, progress=progress)
    print(score_table(results))
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    failed = [r.student for r in results if not r.graded]
    print(f"\n{len(results) - len(failed)} of {len(results)} submissions autograded"
          + (f"; not graded: {', '.join(failed)} (scored 0 until you look at them)" if failed else ""))
    print(f"feedback: {course.feedback('<student>', args.assignment)}\ngrades (nbgrader export): {csv}")
    if args.engine == "isolated":
        print(f"report: {course.reports() / (args.assignment + '.txt')} (and .csv)")
    return 0


def cmd_report(args) -> int:
    from . import report
    course = _course(args)
    course.check_assignment(args.assignment)
    results = report.from_ledger(course, args.assignment)
    if not results:
        raise ToolError(f"no isolated grading results for {args.assignment!r} (run tfdl grade --engine isolated)")
    csv_path, txt_path = report.write_report(course, args.assignment, results)
    print(txt_path.read_text().rstrip())
    print(f"\nwrote {csv_path} and {txt_path}")
    return 0


def cmd_export(args) -> int:
    from .export import export
    course = _course(args)
    default = "grades.csv" if args.format == "nbgrader" else f"grades_{args.format}.csv"
    dest = Path(args.csv) if args.csv else course.work / default
    rows = export(course, dest, args.format, args.assignment or None)
    assignments = list(dict.fromkeys(r.assignment for r in rows))
    students = {r.student_id for r in rows}
    missing = sum(r.score is None for r in rows)
    late = sum(bool(r.seconds_late) for r in rows)
    penalised = sum(bool(r.late_submission_penalty) for r in rows)
    print(f"wrote {dest} ({args.format}): {len(students)} students, {', '.join(assignments)}"
          + (f"; {missing} missing submissions left empty" if missing else "")
          + (f"; {late} late ({penalised} penalised by the course's LatePolicy)" if late else ""))
    skipped = sorted(set(args.assignment or course.assignments()) - set(assignments))
    if skipped:
        print(f"not exported (nobody graded yet): {', '.join(skipped)}")
    return 0


def cmd_check(args) -> int:
    path = Path(args.notebook)
    if not path.is_file():
        raise ToolError(f"{path}: no such notebook")
    from .selfcheck import execute_copy, self_check
    try:
        nb, fatal = execute_copy(path, timeout=args.timeout)
    except Exception as exc:  # noqa: BLE001 - unreadable notebook, kernel that cannot start, ...
        raise ToolError(f"could not run {path}: {type(exc).__name__}: {exc}") from None
    parts, errors = self_check(nb, path.stem)
    if errors:
        print("Errors in your code cells:")
        print("\n".join(f"  {e}" for e in errors) + "\n")
    for part in parts:
        if part.kind == "auto":
            print(f"== {part.grade_id}: {_fmt(part.score)} of {_fmt(part.points)} points")
            print(part.feedback or "  (no feedback printed)")
        else:
            print(f"== {part.grade_id}: written answer, {_fmt(part.points)} points, graded by the instructor")
        print()
    auto = [p for p in parts if p.kind == "auto"]
    print(f"Visible checks: {_fmt(sum(p.score for p in auto))} of {_fmt(sum(p.points for p in auto))} points.")
    print("Written answers and the hidden checks (other settings, larger inputs) are scored by the instructor, "
          "so your final grade can differ.")
    if fatal:
        raise ToolError(f"{path}: {fatal}; the scores above cover only the cells that ran")
    return 0


def cmd_publish(args) -> int:
    from .publish import publish
    course = _course(args)
    written = publish(course, Path(args.dest), book_html=Path(args.book) if args.book else None,
                      with_book=not args.no_book, force=args.force)
    tops = sorted({p.parts[0] for p in written})
    print(f"published the student edition to {Path(args.dest).resolve()}: {len(written)} files in "
          + ", ".join(tops))
    print("  left out: the assignments' sources (solutions, hidden tests, grading.py) and the chapters' sources")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfdl", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    course = argparse.ArgumentParser(add_help=False)
    course.add_argument("--course", metavar="DIR",
                        help="the nbgrader course directory (default: the checkout holding this package)")

    p = sub.add_parser("release", parents=[course], help="generate the student release exercises/<a>",
                       description="Run nbgrader generate_assignment from solutions/<a> into exercises/<a>, make "
                                   "the notebooks reproducible, and verify that no solution, hidden test or "
                                   "grading.py was released and that every grade cell is present. A released "
                                   "notebook that someone worked on since the last release is never replaced "
                                   "(unless --force): it is named, the other files and assignments are released, "
                                   "and the command exits with status 1.")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("assignment", nargs="?", help="assignment name, e.g. ntk")
    which.add_argument("--all", action="store_true", help="release every assignment in solutions/")
    p.add_argument("--force", action="store_true",
                   help="replace a released notebook even when someone worked on it since the last release "
                        "(without it, such a notebook is kept and named, and the command fails at the end)")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("grade", parents=[course], help="autograde a class and print the score table",
                       description="Copy each student's notebook into course_work/submitted, autograde each "
                                   "student in its own nbgrader process (a broken notebook costs only its "
                                   "student), generate feedback, export the gradebook as CSV and print the "
                                   "scores.")
    p.add_argument("assignment", help="assignment name, e.g. ntk")
    p.add_argument("submissions", metavar="SUBMISSIONS_DIR",
                   help="one entry per student: a folder <student>/ holding one notebook (any name, any depth: "
                        "<student>/<a>.ipynb, <student>/<a> (1).ipynb, <student>/<a>/submission.ipynb), or a "
                        "notebook <student>.ipynb; a student with none, with two, or with another assignment's "
                        "notebook scores 0 with a flag naming the files")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="per-cell time limit in seconds (default: Execute.timeout of nbgrader_config.py)")
    p.add_argument("--student-timeout", type=float, default=600, metavar="S",
                   help="wall-clock limit for autograding one student (default: %(default)s)")
    p.add_argument("--csv", metavar="FILE", help="where nbgrader export writes (default: course_work/grades.csv)")
    p.add_argument("--engine", choices=["isolated", "nbgrader"], default="isolated",
                   help="isolated (default): student code in a sandbox (bubblewrap), checks outside it, grade "
                        "cells anchored to the source, parallel and resumable, with an instructor report; "
                        "nbgrader: plain 'nbgrader autograde', one student after another, checks inside the "
                        "student's kernel")
    p.add_argument("--workers", type=int, metavar="N",
                   help="isolated engine: parallel graders on this machine (default: the number of cores)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="isolated engine: grade on this Dask distributed cluster (e.g. tcp://host:8786)")
    p.add_argument("--no-isolation", action="store_true",
                   help="isolated engine: grade even where bubblewrap is missing, with student code NOT contained "
                        "(it runs with your rights, limited in time and memory only)")
    p.add_argument("--regrade", action="store_true",
                   help="isolated engine: grade again submissions already graded with the same notebook and grader")
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("report", parents=[course], help="instructor report of an assignment graded in isolation",
                       description="Score distribution, per part the failure rate and the most common failed "
                                   "checks and hints, and the flagged submissions; writes "
                                   "course_work/reports/<a>.csv and <a>.txt.")
    p.add_argument("assignment", help="assignment name, e.g. ntk")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("export", parents=[course], help="export the gradebook as CSV (nbgrader, Canvas, Moodle)",
                       description="Write the gradebook's grades (every student; the assignments someone was "
                                   "graded on) as nbgrader's CSV or as a gradebook CSV that Canvas or Moodle "
                                   "imports, with the students' ids from the gradebook, the submission time, "
                                   "the lateness and the score after the course's late penalty. A missing "
                                   "submission is an empty cell, never 0.")
    p.add_argument("assignment", nargs="*", help="restrict to these assignments (default: all graded ones)")
    p.add_argument("--format", choices=["nbgrader", "canvas", "moodle"], default="nbgrader",
                   help="nbgrader: nbgrader's CSV (through nbgrader export) with lateness and flags; canvas: "
                        "Canvas's gradebook import; moodle: Moodle's CSV grade import (default: %(default)s)")
    p.add_argument("--csv", metavar="FILE",
                   help="output file (default: course_work/grades.csv, or grades_<format>.csv)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("publish", parents=[course], help="write the student edition of the course",
                       description="Write the student edition into DEST, the content of the public repository "
                                   "students clone: the released notebooks, the autograder package (visible checks "
                                   "and tools, no reference implementation), the built book, the environment "
                                   "files, a student README and the Binder configuration. It leaves out the "
                                   "assignments' sources, every grading.py and the chapters' sources. The same "
                                   "commit always gives the same bytes.")
    p.add_argument("dest", metavar="DEST", help="an empty folder (e.g. a clone of the public repository)")
    p.add_argument("--book", metavar="DIR", help="the built book's HTML (default: book/_build/html)")
    p.add_argument("--no-book", action="store_true", help="publish without the book")
    p.add_argument("--force", action="store_true", help="replace the content of a non-empty DEST")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("check", help="self-check one notebook: run it and show feedback and visible scores",
                       description="Execute a copy of the notebook (the file is not modified) in its folder and "
                                   "print each graded part's feedback and score, scored as nbgrader does.")
    p.add_argument("notebook", help="path to the notebook, e.g. exercises/ntk/ntk.ipynb")
    p.add_argument("--timeout", type=float, default=120, metavar="S",
                   help="per-cell time limit in seconds (default: %(default)s)")
    p.set_defaults(func=cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ToolError as exc:
        print(f"tfdl {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        saved = (" Every result finished before the interrupt is saved; the same command resumes where it "
                 "stopped." if args.command == "grade" else "")
        print(f"tfdl {args.command}: interrupted.{saved}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `tfdl report ntk | head`: the reader has gone, which is not an error
        import os
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
