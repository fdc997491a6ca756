"""Throughput of grading a class, and what of it is overhead: plain sequential ``nbgrader autograde`` against the
isolated grader (autograder.batch: sandboxed student code, checks outside it) with 1 and 2 workers, and the work
no engine can avoid, in one run (issue 20).

The class: N submissions of the ``ntk`` assignment, a third full solutions, a third partly right (relu_ntk and
ntk_predict only), a third the untouched release.  Each engine phase grades the same class in a fresh course
directory and in a fresh Python process (as ``tfdl grade`` meets it: nothing imported, nothing cached), feedback
and export included.  The unavoidable work is measured in another fresh process, after one submission has warmed
it up (grader imported, sandbox server running, the instructor's references computed): for each submission, the
time spent executing its cells in its sandbox and running its checks, summed.  Then

    overhead per submission     = (wall time x workers - unavoidable work) / submissions
    compute-bound efficiency    = unavoidable work / (wall time x workers)
    throughput vs plain nbgrader = plain nbgrader's wall time / the isolated engine's (2 workers)

What of the overhead this design cannot shed is measured too: the preflight's CPU in a fresh process, one sandbox
server's start-up CPU (its imports, in its container; one server per worker, since two students graded at once never
share a container), and nbgrader's feedback CPU per submission (its HTML must be nbgrader's own; with the CSV); the overhead and
the efficiency these alone would leave are printed beside the measured ones.

The same unavoidable work is also measured in two warm processes side by side, each grading half the class: two
processes on the two cores each run slower than one alone (shared caches and memory bandwidth, the host), which
no engine with two workers avoids; the efficiency against that figure is printed beside the first. Each phase's
line gives the share of the cores' time the host took for other guests (steal, from /proc/stat): a virtual
machine's speed moves between runs with it, and figures from runs with different steal are not comparable.

Targets (issue 20, 2 cores): overhead <= 0.5 s per submission with isolation kept; efficiency >= 0.8 with 2
workers; throughput >= 6x; the same scores in every phase.

    .venv/bin/python bench/grading_throughput.py [--n 24]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402

from autograder import gradebook, nbgrading, submission  # noqa: E402
from autograder.course import as_course  # noqa: E402
from autograder.sandbox import ForkServer, Limits, Sandbox, bwrap_available  # noqa: E402
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
    return {r.student: [list(x) for x in sorted(r.scores.items())] for r in results}


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have been waited for."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def tree_cpu(root: int) -> float:
    """CPU seconds of process ``root`` and of its living descendants (a sandbox server: bubblewrap, the process
    inside), with the children they waited for (the server's short-lived helpers), from /proc."""
    tick, parent, spent = os.sysconf("SC_CLK_TCK"), {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parent[pid], spent[pid] = int(fields[1]), sum(int(f) for f in fields[11:15]) / tick
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, ppid in parent.items() if ppid in tree} - tree
        tree, grew = tree | more, bool(more)
    return sum(spent.get(pid, 0.0) for pid in tree)


def startup(tmp: Path, timeout: float) -> dict:
    """In this (fresh) process: the CPU of the batch's preflight, then of one sandbox server's start-up."""
    course = as_course(make_course(tmp / "startup", [ASSIGNMENT]))
    gradebook.ensure_in_gradebook(course, ASSIGNMENT, [])
    before = cpu_seconds()
    nbgrading.preflight(course, ASSIGNMENT, tmp / "submissions")
    preflight = cpu_seconds() - before
    server = ForkServer(Limits(wall_seconds=timeout), submission.warm_modules(course, ASSIGNMENT)).start()
    try:
        return {"preflight": preflight, "server": tree_cpu(server.proc.pid)}
    finally:
        server.close()


def run_phase(name: str, tmp: Path, timeout: float) -> dict:
    """One engine phase, in this (fresh) process: grade the class of ``tmp/submissions`` in a new course."""
    course = make_course(tmp / name, [ASSIGNMENT])
    gradebook.ensure_in_gradebook(course, ASSIGNMENT, [])
    folder, feedback, stats = tmp / "submissions", [0.0, 0.0], {}
    step = nbgrading.feedback_and_export

    def timed(*a, **k):
        t, c = time.perf_counter(), cpu_seconds()
        try:
            return step(*a, **k)
        finally:
            feedback[0] += time.perf_counter() - t
            feedback[1] += cpu_seconds() - c

    nbgrading.feedback_and_export = timed
    results_at, commit = [], gradebook.commit  # when each result was committed (seconds from the start)

    def committed(*a, **k):
        out = commit(*a, **k)
        results_at.append(time.perf_counter() - start)
        return out

    gradebook.commit = committed
    start = time.perf_counter()
    csv = course / "course_work" / "grades.csv"  # tfdl grade's default: every run ends with the gradebook's CSV
    if name == "nbgrader":
        results = nbgrading.grade(course, ASSIGNMENT, folder, cell_timeout=timeout, csv=csv)[0]
    else:
        results = nbgrading.grade_isolated(course, ASSIGNMENT, folder, cell_timeout=timeout, csv=csv,
                                           workers=int(name.split("-")[1]), stats=stats)[0]
    if not csv.is_file():
        raise SystemExit(f"{name}: no {csv} written")
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "scores": scores_of(results), "feedback": feedback[0], "feedback_cpu": feedback[1],
            "stats": {str(k): v for k, v in stats.items()},
            "first": min(results_at, default=0.0), "last": max(results_at, default=0.0)}


def unavoidable(tmp: Path, students: list[str], timeout: float, tag: str) -> dict:
    """Seconds spent executing ``students``' cells and checks in an already-warm process, summed; the scores."""
    course = make_course(tmp / f"unavoidable-{tag}", [ASSIGNMENT])
    gradebook.ensure_in_gradebook(course, ASSIGNMENT, [])
    limits = Limits(wall_seconds=timeout)
    notebook = {s: tmp / "submissions" / s / f"{ASSIGNMENT}.ipynb" for s in students}
    first = students[0]
    submission.grade_submission(course, ASSIGNMENT, first, notebook[first], limits)  # warm-up, not counted
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
        results = [submission.grade_submission(course, ASSIGNMENT, s, notebook[s], limits) for s in students]
    finally:
        submission._run_test, Sandbox.execute = run_test, execute
    return {"seconds": spent[0], "scores": scores_of(results)}


def cpu_ticks() -> tuple[int, int]:
    """(ticks stolen by the host, all ticks) of this machine's cores since boot, from /proc/stat ((0, 0) elsewhere):
    on a virtual machine the host can take the cores' time for other guests, and a phase that ran with much of it
    stolen is slower for reasons no engine controls."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0, 0
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def stolen(before: tuple[int, int], after: tuple[int, int]) -> str:
    total = after[1] - before[1]
    return f"{100 * (after[0] - before[0]) / total:.0f} %" if total > 0 else "unknown"


def child(*argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, *argv], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env=dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1"))


def answer(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"a phase failed (exit code {proc.returncode}): {out[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=24, help="submissions (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=120, help="per-cell / per-call limit in seconds")
    parser.add_argument("--phase", help=argparse.SUPPRESS)  # a child process: one phase, its figures as JSON
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    parser.add_argument("--students", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        tmp = Path(args.tmp)
        if args.phase == "startup":
            print(json.dumps(startup(tmp, args.timeout)))
        elif args.phase.startswith("unavoidable"):
            print(json.dumps(unavoidable(tmp, args.students.split(","), args.timeout, args.phase)))
        else:
            print(json.dumps(run_phase(args.phase, tmp, args.timeout)))
        return 0
    if not bwrap_available():
        print("bubblewrap is not installed: the isolated engine would not isolate (make system installs it)")
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="tfdl-bench-"))
    release = nbformat.read(ROOT / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    found = build_class(tmp / "submissions", release, args.n)
    common = ["--tmp", str(tmp), "--timeout", str(args.timeout)]

    figures, scores, stats, feedback, timeline, feedback_cpu = {}, {}, {}, {}, {}, {}
    steal = {}
    for key in ("nbgrader", "isolated-1", "isolated-2"):  # one after another, each alone on the machine
        ticks = cpu_ticks()
        got = answer(child("--phase", key, *common))
        steal[key] = stolen(ticks, cpu_ticks())
        figures[key], scores[key], feedback[key], stats[key] = got["seconds"], got["scores"], got["feedback"], got["stats"]
        feedback_cpu[key] = got["feedback_cpu"]
        timeline[key] = got["first"], got["last"]
    students = list(found)
    ticks = cpu_ticks()
    alone = answer(child("--phase", "unavoidable-alone", "--students", ",".join(students), *common))
    steal["unavoidable"] = stolen(ticks, cpu_ticks())
    work, scores["unavoidable"] = alone["seconds"], alone["scores"]
    halves = [child("--phase", f"unavoidable-half{i}", "--students", ",".join(students[i::2]), *common)
              for i in (0, 1)]
    halves = [answer(h) for h in halves]
    side_by_side = sum(h["seconds"] for h in halves)
    fixed = answer(child("--phase", "startup", *common))
    scores["side-by-side"] = {k: v for h in halves for k, v in h["scores"].items()}

    n = args.n
    print(f"grading {n} {ASSIGNMENT} submissions on {os.cpu_count()} cores (each phase in a fresh process; "
          "feedback and export included in every engine phase)")
    for key, s in figures.items():
        print(f"  {key:12s} {s:8.1f} s   {n / s * 60:6.1f} submissions/min   (of which nbgrader's feedback and "
              f"export: {feedback.get(key, 0.0):.1f} s; host steal {steal[key]})")
    print(f"  unavoidable work (cells and checks in a warm process, summed): {work:.1f} s, "
          f"{work / n:.2f} s per submission (host steal {steal['unavoidable']})")
    print(f"  the same in two warm processes side by side: {side_by_side:.1f} s "
          f"({side_by_side / work:.2f}x: what running two at once costs on this machine)")
    for key in ("isolated-1", "isolated-2"):
        for pid, st in sorted(stats[key].items()):
            how = "a fork of the batch" if st.get("started") == "fork" else "a new process"
            server = "the sandbox server the batch started for it" if st.get("handed_server") else "its own server"
            print(f"  {key} worker {pid}: {st['jobs']} submissions, peak memory {st['peak_mb']:.0f} MB, {how}, "
                  f"{server}")
    for key in ("isolated-1", "isolated-2"):
        first, last = timeline[key]
        print(f"  {key} timeline: first result at {first:.1f} s (preflight, the grading processes' and their sandbox "
              f"servers' start-up, the first submission), last at {last:.1f} s, then {figures[key] - last:.1f} s "
              "to the end (report, feedback, export)")
    wall, workers = figures["isolated-2"], 2
    print(f"overhead per submission: {(wall * workers - work) / n:.2f} s")
    print(f"throughput vs plain nbgrader: {figures['nbgrader'] / wall:.2f}x")
    print(f"compute-bound efficiency: {work / (wall * workers):.2f}")
    print(f"  (against the side-by-side work: overhead {(wall * workers - side_by_side) / n:.2f} s per submission, "
          f"efficiency {side_by_side / (wall * workers):.2f})")
    grading = wall - feedback.get("isolated-2", 0.0)
    print(f"  (grading alone, without nbgrader's feedback and export step: overhead "
          f"{(grading * workers - work) / n:.2f} s per submission, efficiency {work / (grading * workers):.2f})")
    print(f"  (1 worker: overhead {(figures['isolated-1'] - work) / n:.2f} s per submission, "
          f"efficiency {work / figures['isolated-1']:.2f}, {figures['nbgrader'] / figures['isolated-1']:.2f}x)")
    workers_fixed = fixed["preflight"] + workers * fixed["server"]
    per_feedback = feedback_cpu["isolated-2"] / n
    print(f"  what this design cannot shed, measured alone: the preflight {fixed['preflight']:.1f} CPU-s and one sandbox "
          f"server's start-up {fixed['server']:.1f} CPU-s per worker, once a batch; nbgrader's feedback and the CSV "
          f"{per_feedback:.2f} CPU-s per submission")
    floor = workers_fixed / n + per_feedback
    print(f"  (these alone, for {n} submissions on {workers} workers: overhead {floor:.2f} s per submission, efficiency "
          f"at most {work / (work + floor * n):.2f})")
    print("  targets: overhead <= 0.5 s, throughput >= 6x, efficiency >= 0.8 (2 workers, 2 cores)")
    same = scores["isolated-1"] == scores["isolated-2"] == scores["unavoidable"] == scores["side-by-side"]
    agree = scores["nbgrader"] == scores["isolated-1"]
    print(f"  same scores in every isolated phase: {same}; same scores as plain nbgrader: {agree}")
    if not agree:
        for s in sorted(scores["nbgrader"]):
            if scores["nbgrader"][s] != scores["isolated-1"].get(s):
                print(f"    {s}: nbgrader {scores['nbgrader'][s]} isolated {scores['isolated-1'].get(s)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
