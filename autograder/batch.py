"""Grading a class with the isolated engine: submissions in parallel (worker processes, or a Dask cluster), each
result committed to the gradebook, the autograded notebook and the ledger as soon as it is done, submissions the
ledger already holds with the same content and the same grader skipped (resumable), same scores every run.
One submission is graded by :func:`autograder.submission.grade_submission`.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from .course import Course, ToolError, as_course
from .results import PartResult, SubmissionResult
from .sandbox import Limits
from .submission import fingerprint, grade_submission, source_spec, warm_modules

__all__ = ["grade_class"]

# ==================================================================================================================
# A class
# ==================================================================================================================
def _job(course: str, assignment: str, student: str, notebook: str | None, limits: dict,
         isolate: bool | None) -> dict:
    """What a worker process (or a Dask worker) runs: grade one submission, return plain data."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    try:
        data = grade_submission(as_course(course), assignment, student, Path(notebook) if notebook else None,
                                Limits(**limits), isolate=isolate).to_dict()
        return {**data, WORKER: _worker_figures()}
    except Exception as exc:  # noqa: BLE001 - a bug of the grader: reported, the batch goes on
        import traceback
        spec = source_spec(course, assignment)
        r = SubmissionResult(student, [PartResult(g, k, p, 0.0, "", "error") for g, p, k in spec.grade_cells])
        r.notes.append(f"grader error (not the student's fault): {type(exc).__name__}: {exc}")
        r.notes.append(traceback.format_exc()[-500:])
        r.valid = False
        return r.to_dict()


WORKER = "_worker"  # the key of a job's answer that carries its worker's figures (not part of the result)


def _worker_figures() -> dict:
    """The grading process's id and peak memory in MB. (Its sandboxes' are not measured: forked by its sandbox
    server inside bubblewrap, they are no children of this process whose usage the kernel reports.)"""
    import resource
    return {"pid": os.getpid(), "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def class_progress(total: int, desc: str, **kw):
    """The progress bar of a class (tqdm). Its ETA is the mean time per submission since every grading process
    delivered its first result, times what is left: the processes' start-up (paid once, before their first
    result) is not taken for a submission's time, and a mean over the class so far, unlike tqdm's default
    recent-rate average, does not swing with each slow or quick submission. :func:`grade_class` tells the bar
    how many processes grade in parallel (``warm_up``)."""
    from tqdm import tqdm

    class ClassBar(tqdm):
        warm_up = 1  # results to wait for before the rate is measured: one per grading process
        since: float | None = None
        since_n = 0

        def update(self, n=1):
            out = super().update(n)
            if self.since is None and self.n >= min(self.warm_up, max(1, self.total or 1)):
                self.since, self.since_n = self._time(), self.n
            return out

        @property
        def format_dict(self):
            d = super().format_dict
            if self.since is not None and self.n > self.since_n:
                d["rate"] = (self.n - self.since_n) / max(self._time() - self.since, 1e-9)
            return d

    return ClassBar(total=total, desc=desc, unit=" student", smoothing=0, **kw)


def grade_class(course: Course | Path, assignment: str, found: dict[str, Path | None], *, workers: int = 1,
                limits: Limits | None = None, scheduler: str | None = None, isolate: bool | None = None,
                progress=None, resume: bool = True, stats: dict | None = None) -> list[SubmissionResult]:
    """Grade every ``student -> notebook`` of ``found``; commit each result as soon as it is done.

    ``workers`` grading processes on this machine (0: in this process), or the Dask cluster whose scheduler address is ``scheduler``.
    With ``resume``, a submission whose content and grader fingerprint are already in the ledger is not graded
    again.  ``progress(total)`` returns an object with ``update(n)`` and ``set_postfix_str(s)`` (e.g. tqdm,
    :func:`class_progress`). ``stats``, if given, receives the grading processes' figures: ``pid -> {"peak_mb":
    ..., "jobs": n}``."""
    from .gradebook import commit, read_ledger  # here, not at the top: a grading process never imports nbgrader
    course = as_course(course)
    limits = limits or Limits()
    spec = source_spec(course, assignment)
    fp = fingerprint(course, assignment)
    ledger = read_ledger(course, assignment) if resume else {}
    results: dict[str, SubmissionResult] = {}
    todo = []
    for student, nb in found.items():
        e = ledger.get(student)
        sha = hashlib.sha256(Path(nb).read_bytes()).hexdigest() if nb else ""
        if e and e.get("fingerprint") == fp and e["result"].get("sha256", "") == sha:
            results[student] = SubmissionResult.from_dict(e["result"])
        else:
            todo.append((student, nb))
    bar = progress(len(todo)) if progress else None
    if bar is not None and hasattr(bar, "warm_up"):
        bar.warm_up = max(1, workers if not scheduler else 1)
    args = {s: (str(course.root), assignment, s, str(nb) if nb else None, asdict(limits), isolate) for s, nb in todo}
    warm = warm_modules(course, assignment)

    def done(student, data):
        figures = data.pop(WORKER, None)
        if stats is not None and figures:
            entry = stats.setdefault(figures["pid"], {"peak_mb": 0.0, "jobs": 0})
            entry["peak_mb"] = max(entry["peak_mb"], figures["peak_mb"])
            entry["jobs"] += 1
        r = SubmissionResult.from_dict(data)
        commit(course, assignment, found[student], r, spec)
        results[student] = r
        if bar is not None:
            bar.set_postfix_str(student)
            bar.update(1)

    if scheduler:
        try:
            from distributed import Client, as_completed as dask_completed
        except ImportError:
            raise ToolError("--scheduler needs Dask's distributed package (pip install distributed), which this "
                            "environment does not pin yet") from None
        with Client(scheduler) as client:
            if bar is not None and hasattr(bar, "warm_up"):
                bar.warm_up = max(1, len(client.scheduler_info().get("workers", {})))
            with contextlib.suppress(Exception):  # warm sandboxes: a worker that cannot is warmed by its first job
                client.run(_warm_worker, asdict(limits), warm, wait=False)
            futures = {client.submit(_job, *a, pure=False, key=f"tfdl-{assignment}-{s}-{fp}"): s
                       for s, a in args.items()}
            for fut in dask_completed(futures):
                done(futures[fut], fut.result())
    elif workers <= 0:  # in this process (debugging): the grader's state is this process's
        for s, a in args.items():
            done(s, _job(*a))
    else:  # worker processes of their own, so that nothing of a grading run stays in the caller
        import queue
        import threading
        jobs: queue.Queue = queue.Queue()
        for s, a in args.items():
            jobs.put((s, a))
        finished: queue.Queue = queue.Queue()

        def work():
            worker = _Worker(limits, warm)
            try:
                while True:
                    try:
                        s, a = jobs.get_nowait()
                    except queue.Empty:
                        return
                    finished.put((s, worker.run(a)))
            except BaseException as exc:  # noqa: BLE001 - a worker that cannot start fails the batch, loudly
                finished.put((None, exc))
            finally:
                worker.close()

        threads = [threading.Thread(target=work, daemon=True) for _ in range(min(workers, max(1, len(args))))]
        for t in threads:
            t.start()
        for _ in range(len(args)):
            s, data = finished.get()
            if s is None:
                raise ToolError(f"a grading worker could not start: {data}") from data
            done(s, data)
        for t in threads:
            t.join()
    if bar is not None and hasattr(bar, "close"):
        bar.close()
    return [results[s] for s in found]


class _Worker:
    """A grading process of its own (``python -m autograder.batch``) that grades one job after another: the
    checks' imports are paid once per worker, and a grader that breaks costs only its current job."""

    def __init__(self, limits: Limits | None = None, warm: tuple = ()):
        self.proc = None
        self.command = [sys.executable, "-m", "autograder.batch",
                        json.dumps({"limits": asdict(limits or Limits()), "warm": list(warm)})]

    def _start(self):
        """Start the process and wait for its ready line: a worker that cannot start raises (the batch stops
        with a message) instead of leaving the batch waiting."""
        import subprocess
        import tempfile
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        self.errors = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.errors, text=True, env=env,
                                     cwd=str(Path(__file__).resolve().parent.parent))
        first = self.proc.stdout.readline()
        if first.strip() != _READY:
            self.proc.wait()
            self.errors.seek(0)
            tail = [ln for ln in self.errors.read().splitlines() if ln.strip()][-3:]
            self.proc = None
            raise RuntimeError(f"{' '.join(self.command)} exited before it was ready"
                               + (": " + " | ".join(tail) if tail else ""))

    def run(self, args: tuple) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        try:
            self.proc.stdin.write(json.dumps(list(args)) + "\n")
            self.proc.stdin.flush()
            for line in self.proc.stdout:
                if line.startswith(_MARK):
                    return json.loads(line[len(_MARK):])
        except (OSError, ValueError):
            pass
        self.close()
        course, assignment, student = args[0], args[1], args[2]
        spec = source_spec(course, assignment)
        r = SubmissionResult(student, [PartResult(g, k, p, 0.0, "", "error") for g, p, k in spec.grade_cells])
        r.valid = False
        r.notes.append("grader error (not the student's fault): the grading process died")
        return r.to_dict()

    def close(self):
        if self.proc is not None:
            with contextlib.suppress(Exception):
                self.proc.stdin.close()
            with contextlib.suppress(Exception):
                self.proc.kill()
            self.proc.wait()
            self.proc = None


_MARK = "TFDL-RESULT "
_READY = "TFDL-READY"


def _warm_worker(limits: dict, warm: tuple = ()) -> None:
    """In a grading process before its first job: its fork server for the batch's limits starts now (it imports
    the assignment's modules while the process waits), so that no student waits for it."""
    from .sandbox import prestart
    prestart(Limits(**limits), tuple(warm))


def _serve_jobs() -> None:
    """``python -m autograder.batch [limits as JSON]``: say it is ready, then read one JSON job per line and print
    one marked JSON result per line."""
    setup = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    _warm_worker(setup.get("limits", {}), tuple(setup.get("warm", ())))
    sys.stdout.write(_READY + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        result = _job(*json.loads(line))
        sys.stdout.write(_MARK + json.dumps(result) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _serve_jobs()
