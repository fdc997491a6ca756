"""autograder.batch through ``tfdl grade --engine isolated``: the hostile corpus (tests/hostile), the gradebook,
feedback, export and report, resuming, determinism, and the ntk assignment graded as in-process.

The hostile corpus is graded on the ``hostile`` assignment of tests/fixtures (make_hostile.py); every case must
score exactly what its honest parts earn, be flagged where it tampers, and leave the others alone.
"""
from __future__ import annotations

import csv
import functools
import json
from pathlib import Path

import nbformat
import pytest

from autograder import batch
from autograder import gradebook, nbgrading
from autograder.course import Course
from nbgrader.api import Gradebook
from autograder.sandbox import bwrap_available
from tests.conftest import add_submission, fill, make_course
from tests.hostile.corpus import CASES, build, clear_outside_markers
from tests.grading import tfdl

PARTS = ("test_square", "test_normalize", "test_net")
CALL_TIMEOUT = 5  # seconds per student call or cell (the looping cases cost this much)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    course = make_course(tmp, ["hostile"])
    nbgrading.release(course, "hostile")
    release = nbformat.read(course / "exercises" / "hostile" / "hostile.ipynb", as_version=4)
    folder = tmp / "submissions"
    build(folder, release)
    clear_outside_markers()  # left by an earlier plain-nbgrader run, which lets the case write them
    code, out, err = tfdl("grade", "hostile", str(folder), "--course", str(course), "--engine", "isolated",
                          "--workers", "2", "--timeout", str(CALL_TIMEOUT), "--csv", str(tmp / "grades.csv"))
    return {"course": course, "folder": folder, "code": code, "out": out, "err": err, "csv": tmp / "grades.csv"}


def scores(course, student, assignment="hostile", parts=PARTS):
    r = gradebook.read_scores(course, assignment, student)
    return tuple(r.scores[p] for p in parts)


@pytest.mark.slow
def test_every_hostile_case_scores_what_its_honest_parts_earn(corpus):
    assert corpus["code"] == 0, corpus["err"]
    got = {s: scores(corpus["course"], s) for s in CASES}
    assert got == {s: tuple(float(x) for x in c.expected) for s, c in CASES.items()}
    assert len(CASES) >= 20


@pytest.mark.slow
def test_tampering_is_named_in_the_table_and_the_report(corpus):
    lines = {line.split()[0]: line for line in corpus["out"].splitlines() if line.strip()}
    for student, case in CASES.items():
        assert case.flag in lines[student], lines[student]
    report = (corpus["course"] / "course_work" / "reports" / "hostile.txt").read_text()
    flagged = report.split("Flagged submissions")[1].split("Notes")[0]
    for student, case in CASES.items():
        assert (student + ":" in flagged) == bool(case.flag), student
    assert "grading hostile (isolated" in corpus["err"] and "ETA" not in corpus["out"]  # tqdm on stderr


@pytest.mark.slow
@pytest.mark.skipif(not bwrap_available(), reason="without bubblewrap the fallback does not hide the file system")
def test_nothing_outside_the_sandbox_was_touched(corpus):
    course = corpus["course"]
    assert not list(course.rglob("PWNED_BY_HOSTILE")) and not Path("/tmp/PWNED_BY_HOSTILE").exists()
    assert not (Path.home() / "PWNED_BY_HOSTILE").exists()
    for path in (course / "course_work" / "submitted").glob("*/hostile/hostile.ipynb"):
        if path.parts[-3] in CASES and CASES[path.parts[-3]].flag == "invalid notebook":
            continue  # an unreadable file is kept in the gradebook's folder as the student submitted it
        assert len(nbformat.read(path, as_version=4).cells) > 0 or path.parts[-3] == "empty_notebook"


@pytest.mark.slow
def test_gradebook_feedback_and_export(corpus):
    course = corpus["course"]
    with Gradebook(Course(course).gradebook_url) as gb:
        grades = {g.name: g for g in gb.find_submission_notebook("hostile", "hostile", "honest").grades}
        assert grades["test_square"].auto_score == 2 and not grades["test_square"].needs_manual_grade
        assert grades["explain"].needs_manual_grade  # left for formgrader
        crashed = {g.name: g for g in gb.find_submission_notebook("hostile", "hostile", "os_exit").grades}
        assert crashed["test_net"].auto_score == 2 and not crashed["test_normalize"].needs_manual_grade
    rows = {r["student_id"]: r for r in csv.DictReader(corpus["csv"].open())}
    assert set(rows) == set(CASES) and float(rows["honest"]["score"]) == 7
    html = (course / "course_work" / "feedback" / "honest" / "hostile" / "hostile.html").read_text()
    assert "square: all 2 checks (visible and hidden) passed" in html and "hidden case 1" in html
    for secret in ("instructor_module", "ref.HIDDEN", "BEGIN HIDDEN"):
        assert secret not in html  # the part's messages, never the hidden test code
    tampered = (course / "course_work" / "feedback" / "edits_test_cell" / "hostile" / "hostile.html").read_text()
    assert "test_normalize edited" in tampered


@pytest.mark.slow
def test_a_second_run_resumes_and_regrading_gives_the_same_scores(corpus, tmp_path):
    course = corpus["course"]
    ledger = course / "course_work" / "isolated" / "hostile.jsonl"
    before = ledger.read_text().count("\n")
    code, out, err = tfdl("grade", "hostile", str(corpus["folder"]), "--course", str(course), "--engine",
                          "isolated", "--timeout", str(CALL_TIMEOUT))
    assert code == 0, err
    assert ledger.read_text().count("\n") == before  # nothing graded twice
    again = tmp_path / "again"
    for student in ("honest", "patch_numpy", "infinite_loop"):
        add_submission(again, student, "hostile", corpus["folder"] / student / "hostile.ipynb")
    code, out, err = tfdl("grade", "hostile", str(again), "--course", str(course), "--engine", "isolated",
                          "--timeout", str(CALL_TIMEOUT), "--regrade", "--workers", "1")
    assert code == 0, err
    assert ledger.read_text().count("\n") == before + 3
    for student in ("honest", "patch_numpy", "infinite_loop"):
        assert scores(course, student) == tuple(float(x) for x in CASES[student].expected)


@pytest.mark.slow
def test_odd_layouts_are_found_and_problems_cost_only_their_student(tmp_path):
    """heidi/hostile (1).ipynb, grace/hostile_final.ipynb, frank/hostile/submission.ipynb are graded; two
    candidates (ivan), another assignment's notebook (judy) and a folder without a notebook (leo) score 0 with a
    flag naming the files; a re-run grades nobody again."""
    from tests.test_cli import ODD_LAYOUT_PROBLEMS, _class_with_odd_layouts
    course = make_course(tmp_path, ["hostile", "toy"])
    nbgrading.release(course, "hostile")
    folder = tmp_path / "subs"
    _class_with_odd_layouts(course, folder, "hostile", "toy", {"square": "def square(x):\n    return x * x"})
    code, out, err = tfdl("grade", "hostile", str(folder), "--course", str(course), "--engine", "isolated",
                          "--workers", "2", "--timeout", str(CALL_TIMEOUT))
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    for student, words in ODD_LAYOUT_PROBLEMS.items():
        assert scores(course, student) == ((0, 0, 0) if words else (2, 0, 0)), student
        for w in words or []:
            assert w.format(a="hostile", o="toy") in lines[student], lines[student]
    assert "grade cell" not in lines["judy"]  # not five "grade cell deleted" notes
    assert "class.zip" in err and "ken/toy.ipynb is not graded (the toy notebook)" in err
    report = (course / "course_work" / "reports" / "hostile.txt").read_text()
    assert "judy/hostile.ipynb is the toy notebook" in report.split("Flagged submissions")[1]
    ledger = course / "course_work" / "isolated" / "hostile.jsonl"
    before = ledger.read_text()
    code, out, err = tfdl("grade", "hostile", str(folder), "--course", str(course), "--engine", "isolated",
                          "--workers", "1")
    assert code == 0 and ledger.read_text() == before, err  # nothing new: nothing graded or committed again
    assert "nothing new to grade" in err


@pytest.mark.slow
def test_an_interrupted_batch_loses_nothing(tmp_path):
    """Results are committed one by one: grading the class after a partial run grades only the rest."""
    course = make_course(tmp_path, ["hostile"])
    nbgrading.release(course, "hostile")
    release = nbformat.read(course / "exercises" / "hostile" / "hostile.ipynb", as_version=4)
    folder = tmp_path / "class"
    for s in ("a", "b", "c"):
        add_submission(folder, s, "hostile", fill(release, {"square": "def square(x):\n    return x * x"}))
    found = nbgrading.find_submissions(folder, "hostile")
    gradebook.ensure_in_gradebook(course, "hostile", list(found))
    batch.grade_class(course, "hostile", {"a": found["a"]})  # "interrupted" after one
    graded, stats = [], {}
    results = batch.grade_class(course, "hostile", found, progress=lambda n: graded.append(n) or _Bar(),
                                stats=stats)
    assert graded == [2] and [r.total for r in results] == [2, 2, 2]
    (worker,) = stats.values()  # one grading process did both, and says how much memory it took
    assert worker["jobs"] == 2 and 50 < worker["peak_mb"] < 4096
    entries = [json.loads(line) for line in (course / "course_work/isolated/hostile.jsonl").read_text().splitlines()]
    assert [e["student"] for e in entries] == ["a", "b", "c"]


def test_the_class_progress_bar_estimates_the_time_left_from_the_submissions_not_the_start_up():
    import io
    import time
    bar = batch.class_progress(20, "grading", file=io.StringIO())
    bar.warm_up = 2  # two grading processes
    time.sleep(0.6)  # they start: no submission's time
    bar.update(1)
    time.sleep(0.3)  # the second one's start-up took longer
    for _ in range(3):
        bar.update(1)
        time.sleep(0.05)
    left = (bar.format_dict["total"] - bar.format_dict["n"]) / bar.format_dict["rate"]
    bar.close()
    assert 16 * 0.05 * 0.5 < left < 16 * 0.05 * 2  # ~0.8 s for 16 more, not the ~3 s of 0.8 s over 4


class _Bar:
    def update(self, n):
        pass

    def set_postfix_str(self, s):
        pass


@pytest.mark.slow
def test_ntk_isolated_scores_equal_the_in_process_checks(tmp_path):
    from autograder import ntk
    from tests.notebooks import source_notebook
    from tests.test_ntk import MLPVariant, grade, predict_variant

    course = make_course(tmp_path, ["ntk"])
    nbgrading.release(course, "ntk")
    release = nbformat.read(course / "exercises" / "ntk" / "ntk.ipynb", as_version=4)
    solution = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source_notebook("ntk").cells
                if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}
    import inspect
    wrong_predict = (inspect.getsource(predict_variant) + "\nimport functools\n"
                     "ntk_predict = functools.partial(predict_variant, mistake='one step too many')")
    folder = tmp_path / "submissions"
    add_submission(folder, "full", "ntk", fill(release, dict(solution)))
    add_submission(folder, "partial", "ntk", fill(release, {"relu_ntk": solution["relu_ntk"],
                                                              "ntk_predict": "import numpy as np\n" + wrong_predict}))
    # NTKMLP's visible checks build 600 networks in one request beside the student's code (core.near): the same
    # verdicts as in a kernel, and what the student's class prints reaches the feedback
    mistakes = {"uniform": "uniform initialization with variance 1", "default": "PyTorch's default initialization kept",
                "deep": "depth off by one"}
    for student, mistake in mistakes.items():
        add_submission(folder, student, "ntk", fill(release, {"NTKMLP": (
            "import numpy as np\nimport torch\n" + inspect.getsource(MLPVariant) + "\nimport functools\n"
            f"NTKMLP = functools.partial(MLPVariant, mistake={mistake!r})")}))
    add_submission(folder, "chatty", "ntk", fill(release, {"NTKMLP": solution["NTKMLP"].replace(
        "super().__init__()", "super().__init__()\n        print('building a network of width', width)", 1)}))
    results, warnings = nbgrading.grade_isolated(course, "ntk", folder, cell_timeout=60, workers=2)
    got = {r.student: r.scores for r in results}
    full = {f"check_{p}": float(v) for p, v in ntk.POINTS.items()}
    assert {k: v for k, v in got["full"].items() if k.startswith("check_")} == full
    expected = grade("ntk_predict", functools.partial(predict_variant, mistake="one step too many"))[0]
    assert got["partial"] == {"check_empirical_ntk": 0, "check_relu_ntk": 4, "check_NTKMLP": 0,
                              "check_ntk_predict": expected, "check_ntk_theta": 0, "written_finite_width": 0}
    for student, mistake in mistakes.items():
        in_kernel = grade("NTKMLP", functools.partial(MLPVariant, mistake=mistake))[0]
        assert got[student]["check_NTKMLP"] == in_kernel < 3, student
    assert got["chatty"]["check_NTKMLP"] == 3
    chatty = next(r for r in results if r.student == "chatty")
    feedback = next(p.feedback for p in chatty.parts if p.grade_id == "check_NTKMLP")
    assert "building a network of width" in feedback, feedback
    assert not warnings


@pytest.mark.slow
def test_the_same_batch_runs_on_a_dask_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    course = make_course(tmp_path, ["hostile"])
    nbgrading.release(course, "hostile")
    release = nbformat.read(course / "exercises" / "hostile" / "hostile.ipynb", as_version=4)
    folder = tmp_path / "class"
    add_submission(folder, "honest", "hostile", fill(release, {"square": "def square(x):\n    return x * x"}))
    add_submission(folder, "loops", "hostile", fill(release, {"square": "def square(x):\n    while True:\n"
                                                                        "        pass"}))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        code, out, err = tfdl("grade", "hostile", str(folder), "--course", str(course), "--engine", "isolated",
                              "--scheduler", cl.scheduler_address, "--timeout", "3")
    assert code == 0, err
    assert scores(course, "honest") == (2, 0, 0) and scores(course, "loops") == (0, 0, 0)
    assert "(isolated, dask)" in err


def _servers_running() -> bool:
    from autograder import sandbox
    return any(s.alive() for s in sandbox._SERVERS.values())


def test_dask_workers_start_their_sandbox_servers_before_their_first_job():
    """What grade_class runs on every Dask worker before submitting jobs (a synchronous function: Dask refuses
    ``wait=False`` for one, and the warm-up was lost)."""
    from autograder.sandbox import Limits
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
            distributed.Client(cl) as client:
        assert list(client.run(_servers_running).values()) == [False]
        batch._warm_dask(client, Limits(), ())
        assert list(client.run(_servers_running).values()) == [bwrap_available()]


def test_feedback_shared_between_forked_processes_is_what_nbgrader_writes(corpus):
    """The isolated engine writes feedback through nbgrader's API, its class shared between forked processes
    (nbgrading._feedback_in_process, more than FEEDBACK_SHARE students per process on 2 cores): the same pages,
    byte for byte, as nbgrader's own generate_feedback writes (for the same students: both fail on the notebooks
    whose nbgrader metadata lie)."""
    course = Course(corpus["course"])
    assert len(CASES) >= 2 * nbgrading.FEEDBACK_SHARE  # the class was shared
    pages = {p: p.read_bytes() for p in sorted((corpus["course"] / "course_work" / "feedback").glob("*/hostile/*.html"))}
    assert len(pages) >= 2 * nbgrading.FEEDBACK_SHARE
    for p in pages:
        p.unlink()
    course.nbgrader("generate_feedback", "hostile", "--force")  # (it fails on the notebooks whose metadata lie)
    again = {p: p.read_bytes() for p in sorted((corpus["course"] / "course_work" / "feedback").glob("*/hostile/*.html"))}
    assert again == pages


# ----------------------------------------------------------------------------------------------------------------
# The grading processes: forks of the batch's process that take the sandbox servers started for them (issue 20)
# ----------------------------------------------------------------------------------------------------------------
TOY_ANSWERS = ({"square": "def square(x):\n    return x * x", "cube": "def cube(x):\n    return x ** 3"},
               {"square": "def square(x):\n    return x * x"},
               {"square": "def square(x):\n    return x + x", "cube": "def cube(x):\n    return x ** 3"})


@pytest.fixture
def toy_class(tmp_path):
    from autograder import release
    course = make_course(tmp_path, ["toy"])
    release.release(course, "toy")
    gradebook.ensure_in_gradebook(course, "toy", [])
    released = nbformat.read(Course(course).release("toy") / "toy.ipynb", as_version=4)
    found = {f"s{i}": add_submission(tmp_path / "class", f"s{i}", "toy", fill(released, TOY_ANSWERS[i % 3]))
             for i in range(6)}
    expected = {r.student: r.scores for r in batch.grade_class(course, "toy", found, workers=0, resume=False)}
    return course, found, expected


def children_of(pid: int, zombies: bool = False) -> dict[int, str]:
    """The processes whose parent is ``pid``, from /proc: pid -> command line (those that have exited and wait
    to be reaped too, with ``zombies``). The scripts that run in a fresh process import it from here."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and (zombies or fields[0] not in "ZX"):
                found[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
        except (OSError, ValueError):
            continue
    return found


def in_a_fresh_process(script: str, course, found: dict) -> dict:
    """Run ``script`` in a new Python (a process with no other thread, as ``tfdl grade`` is: a batch forks its
    grading processes only then) with ``course`` and ``found`` as ``sys.argv[1:]``; its last line of JSON."""
    import os
    import subprocess
    import sys
    run = subprocess.run([sys.executable, "-c", script, str(course), json.dumps({s: str(p) for s, p in found.items()})],
                         capture_output=True, text=True, cwd=Path(batch.__file__).parent.parent, timeout=600,
                         env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not bwrap_available(), reason="the fork servers run in bubblewrap")
def test_the_grading_processes_are_forks_that_take_the_servers_started_for_them(toy_class):
    course, found, expected = toy_class
    got = in_a_fresh_process("""
import json, sys
from autograder import batch
from autograder.sandbox import Limits, _running, start_servers
course, found = sys.argv[1], json.loads(sys.argv[2])
limits = Limits(wall_seconds=5)
servers = start_servers(limits, (), 2)
pids = [s.proc.pid for s in servers]
up = all(_running(p) for p in pids)
stats = {}
results = batch.grade_class(course, "toy", found, workers=2, limits=limits, resume=False, stats=stats,
                            servers=servers)
print(json.dumps({"scores": {r.student: r.scores for r in results}, "stats": {str(k): v for k, v in stats.items()},
                  "up": up, "left": [p for p in [*map(int, stats), *pids] if _running(p)],
                  "reaped": all(s.proc is None for s in servers)}))
""", course, found)
    assert got["up"]  # the servers ran before any grading process existed
    assert got["scores"] == expected  # the same scores as grading in this process
    stats = got["stats"].values()
    assert sum(e["jobs"] for e in stats) == 6 and len(stats) == 2
    assert all(e["started"] == "fork" and e["handed_server"] for e in stats), got["stats"]
    # nothing of the batch is left running: its grading processes exited, their servers were stopped and reaped
    assert got["left"] == [] and got["reaped"]


def test_a_grading_process_that_dies_costs_only_its_job(toy_class):
    """The grader itself dies on one submission (a crash of the instructor's check, say): that student is
    reported as a grader error, and a new grading process grades the rest."""
    course, found, expected = toy_class
    got = in_a_fresh_process("""
import json, os, sys
from autograder import batch
course, found = sys.argv[1], json.loads(sys.argv[2])
real = batch._job

def dies_on_s2(course_, assignment, student, *rest):  # the forked grading process has this patch too
    if student == "s2":
        os._exit(3)
    return real(course_, assignment, student, *rest)

batch._job = dies_on_s2
stats = {}
results = batch.grade_class(course, "toy", found, workers=1, resume=False, stats=stats)
print(json.dumps({"results": [r.to_dict() for r in results], "started": sorted(e["started"] for e in stats.values())}))
""", course, found)
    from autograder.results import SubmissionResult
    results = {d["student"]: SubmissionResult.from_dict(d) for d in got["results"]}
    assert not results["s2"].valid and any("the grading process died" in n for n in results["s2"].notes)
    assert results["s2"].total == 0
    assert {s: r.scores for s, r in results.items() if s != "s2"} == {s: v for s, v in expected.items() if s != "s2"}
    assert got["started"] == ["fork", "process"]  # the first was a fork; the one after its death, a new process


def test_a_forked_copy_starts_its_own_evaluator_and_sandbox_servers(monkeypatch):
    """A fork of a process that has a derivation evaluator and sandbox servers does not share them (it would
    write to the same pipes as its parent): it forgets them and starts its own."""
    import os
    from autograder import derivation, sandbox
    monkeypatch.setattr(derivation._EVALUATOR, "proc", object())
    monkeypatch.setattr(derivation._EVALUATOR, "folder", "/nonexistent/parent-folder")
    monkeypatch.setitem(sandbox._SERVERS, (1, 1), object())
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the copy
        ok = derivation._EVALUATOR.proc is None and derivation._EVALUATOR.folder is None and not sandbox._SERVERS
        os.write(w, b"1" if ok else b"0")
        os._exit(0)
    os.close(w)
    answer = os.read(r, 1)
    os.close(r)
    os.waitpid(pid, 0)
    assert answer == b"1"
    assert derivation._EVALUATOR.folder == "/nonexistent/parent-folder"  # the parent keeps its own


def test_a_grading_process_removes_its_evaluators_folder_when_its_input_ends(tmp_path):
    import os
    import subprocess
    import sys
    code = ("from autograder import derivation\n"
            "derivation._EVALUATOR._start()\n"  # as a derivation part's first answer does
            "from autograder.batch import _serve\n"
            "_serve({'limits': {'wall_seconds': 5}})\n")
    run = subprocess.run([sys.executable, "-c", code], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         env=dict(os.environ, TMPDIR=str(tmp_path)), cwd=Path(batch.__file__).parent.parent,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert batch._READY in run.stdout
    assert not list(tmp_path.glob("tfdl-derivation-*"))


@pytest.mark.skipif(not bwrap_available(), reason="the fork servers run in bubblewrap")
def test_an_instructors_mistake_stops_the_batch_and_the_servers_started_for_it(toy_class, tmp_path):
    """The sandbox servers start before the preflight; a preflight that refuses the batch stops them too."""
    course, found, _ = toy_class
    got = in_a_fresh_process("""
import json, os, sys
from pathlib import Path
from autograder import nbgrading, sandbox
from autograder.course import ToolError
from tests.test_batch import children_of
course = sys.argv[1]
started = []
real = sandbox.start_servers
nbgrading_start = lambda *a: started.extend(real(*a)) or started
sandbox.start_servers = nbgrading_start
try:
    nbgrading.grade_isolated(course, "toy", Path(course) / "no-such-folder", workers=2)
    message = None
except ToolError as exc:
    message = str(exc)
children = list(children_of(os.getpid(), zombies=True))  # alive, or dead and not reaped
print(json.dumps({"message": message, "started": len(started), "children": children}))
""", course, found)
    assert got["message"] and "no-such-folder" in got["message"] and "is not a folder" in got["message"]
    assert got["started"] == 2  # they had been started...
    assert got["children"] == []  # ...and none is left (stopped and reaped)


_INTERRUPTED = r"""
import ctypes, json, os, signal, subprocess, sys, time
from autograder.gradebook import read_ledger
from tests.test_batch import children_of
course, folder = sys.argv[1], sys.argv[2]
# a terminal's foreground command has SIGINT at its default (Python's KeyboardInterrupt); a suite started in the
# background of a shell inherits it ignored, and Python then installs no handler: the command starts as a terminal's
signal.signal(signal.SIGINT, signal.SIG_DFL)
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: whatever the batch leaves behind becomes ours
grade = subprocess.Popen([sys.executable, "-m", "autograder", "grade", "toy", folder, "--course", course,
                          "--workers", "2", "--timeout", "20"], start_new_session=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
deadline = time.monotonic() + 300
while not read_ledger(course, "toy") and time.monotonic() < deadline and grade.poll() is None:
    time.sleep(0.1)
committed = sorted(read_ledger(course, "toy"))
os.killpg(grade.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group has it
out, err = grade.communicate(timeout=120)

deadline = time.monotonic() + 30  # a grading process's clean-up takes a moment; none may stay
while True:
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass
    still = list(children_of(os.getpid()).values())
    if not still or time.monotonic() > deadline:
        break
    time.sleep(0.2)
print(json.dumps({"code": grade.returncode, "err": err, "committed": committed, "left": still}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not bwrap_available(), reason="the fork servers run in bubblewrap")
def test_ctrl_c_stops_every_process_of_the_batch_and_the_same_command_resumes(tmp_path):
    """A real Ctrl-C in the middle of ``tfdl grade`` (SIGINT to the command's process group, its forked grading
    processes included): the command says what was saved and exits 130 without a traceback; none of its
    processes (grading processes, sandbox servers and their children, evaluators) outlives it, nor any of their
    folders; the same command then grades only the students that were not committed, to the same scores."""
    import os
    import subprocess
    import sys
    from autograder import release
    course = make_course(tmp_path, ["toy"])
    release.release(course, "toy")
    released = nbformat.read(Course(course).release("toy") / "toy.ipynb", as_version=4)
    slow = {"square": "def square(x):\n    return x * x",  # right, after four seconds of work
            "cube": "import time\ntime.sleep(4)\ndef cube(x):\n    return x ** 3"}
    found = {s: add_submission(tmp_path / "class", s, "toy", fill(released, TOY_ANSWERS[0] if s == "s0" else slow))
             for s in ("s0", "s1", "s2", "s3")}
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    run = subprocess.run([sys.executable, "-c", _INTERRUPTED, str(course), str(tmp_path / "class")],
                         capture_output=True, text=True, cwd=Path(batch.__file__).parent.parent, timeout=600,
                         env=dict(os.environ, TMPDIR=str(scratch), PYTHONWARNINGS="ignore"))
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["code"] == 130, got["err"][-2000:]
    assert "interrupted" in got["err"] and "resumes where it stopped" in got["err"]
    assert "Traceback" not in got["err"], got["err"][-2000:]
    assert got["left"] == []  # no process of the batch is left running
    assert list(scratch.iterdir()) == []  # nor any folder it made (evaluators', feedback's)
    assert got["committed"] and len(got["committed"]) < len(found)  # interrupted in the middle
    before = gradebook.read_ledger(course, "toy")
    assert not [s for s, e in before.items() if "grader error" in " ".join(e["result"].get("notes", []))]
    # (nothing of the interrupt was recorded as a student's grade)
    code, out, err = tfdl("grade", "toy", str(tmp_path / "class"), "--course", str(course), "--workers", "2",
                          "--timeout", "20")
    assert code == 0, err
    lines = (course / "course_work" / "isolated" / "toy.jsonl").read_text().splitlines()
    per_student = {s: sum(json.loads(line)["student"] == s for line in lines) for s in found}
    assert all(per_student[s] == 1 for s in got["committed"])  # not graded again
    graded = {s: gradebook.read_scores(course, "toy", s).scores for s in found}
    assert graded == {r.student: r.scores for r in batch.grade_class(course, "toy", found, workers=0, resume=False)}


def test_a_batch_that_fails_starts_no_grading_process_afterwards(toy_class, monkeypatch):
    """The batch's own process fails on a result (here its gradebook refuses the first commit): the error reaches
    the caller, and the threads still holding jobs start no new grading process for them."""
    import os
    import time
    course, found, _ = toy_class

    def refuses(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(gradebook, "commit", refuses)
    before = set(children_of(os.getpid()))
    with pytest.raises(OSError, match="disk full"):
        batch.grade_class(course, "toy", found, workers=2, resume=False)
    time.sleep(3)  # time enough for a thread to have started a new grading process, were it allowed to
    assert set(children_of(os.getpid())) - before == set()
