"""Grading a class with the isolated engine: submissions in parallel (grading processes, or a Dask cluster), each
result committed to the gradebook, the autograded notebook and the ledger as soon as it is done, submissions the
ledger already holds with the same content and the same grader skipped (resumable), same scores every run.
One submission is graded by :func:`autograder.submission.grade_submission`.

The grading processes are forks of the batch's own process (which has imported torch and the instructor's
``grading.py`` in its preflight), each with a sandbox server the batch started for it before the preflight
(:func:`autograder.sandbox.start_servers`), so that their start-up fills the core the preflight leaves idle; a
process started again after a death is a new Python.
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
from .sandbox import Limits, end_servers
from .submission import fingerprint, grade_submission, source_spec, warm_modules

__all__ = ["grade_class", "can_fork", "frozen_for_forks"]

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
    """The grading process's id, its peak memory in MB, how it began, and whether its sandbox server is one the
    batch started for it (:func:`autograder.sandbox.start_servers`). (Its sandboxes' memory is not measured: forked by its sandbox
    server inside bubblewrap, they are no children of this process whose usage the kernel reports.)"""
    import resource
    from .sandbox import _SERVERS
    return {"pid": os.getpid(), "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "started": _STARTED, "handed_server": any(s.adopted for s in _SERVERS.values())}


_STARTED = "process"  # how this grading process began: "fork" in a fork of the batch's process (_Forked)


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
                progress=None, resume: bool = True, stats: dict | None = None,
                servers: list | None = None) -> list[SubmissionResult]:
    """Grade every ``student -> notebook`` of ``found``; commit each result as soon as it is done.

    ``workers`` grading processes on this machine (0: in this process), or the Dask cluster whose scheduler address is ``scheduler``.
    With ``resume``, a submission whose content and grader fingerprint are already in the ledger is not graded
    again.  ``progress(total)`` returns an object with ``update(n)`` and ``set_postfix_str(s)`` (e.g. tqdm,
    :func:`class_progress`). ``stats``, if given, receives the grading processes' figures: ``pid -> {"peak_mb":
    ..., "jobs": n, "started": "fork" | "process"}``. ``servers``: sandbox servers the caller started for the
    grading processes (:func:`autograder.sandbox.start_servers`), one each, stopped at the end."""
    from .gradebook import commit, opened, read_ledger  # here, not at the top: a grading process never imports nbgrader
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
    args = {s: (str(course.root), assignment, s, str(nb) if nb else None, asdict(limits), isolate) for s, nb in todo}
    warm = warm_modules(course, assignment)
    pool: list[_Worker] = []
    servers = list(servers or [])
    if not scheduler and workers > 0 and args:  # started before anything of this batch runs a thread (see _Forked)
        pool = [_Worker(limits, warm) for _ in range(min(workers, len(args)))]
        fork = can_fork()
        with frozen_for_forks(fork):
            for i, w in enumerate(pool):
                w.spawn(fork=fork, server=servers[i] if fork and i < len(servers) else None, servers=servers)
    bar = progress(len(todo)) if progress else None
    if bar is not None and hasattr(bar, "warm_up"):
        bar.warm_up = max(1, workers if not scheduler else 1)

    def done(student, data):
        figures = data.pop(WORKER, None)
        if stats is not None and figures:
            entry = stats.setdefault(figures["pid"], {"peak_mb": 0.0, "jobs": 0})
            entry["peak_mb"] = max(entry["peak_mb"], figures["peak_mb"])
            entry["jobs"] += 1
            entry["started"] = figures.get("started", "process")
            entry["handed_server"] = figures.get("handed_server", False)  # its sandbox server: one the batch started
        r = SubmissionResult.from_dict(data)
        commit(course, assignment, found[student], r, spec, book)
        results[student] = r
        if bar is not None:
            bar.set_postfix_str(student)
            bar.update(1)

    for server in servers:  # each is its worker's now (or unused)
        server.detach()
    try:
        with opened(course) as book:  # one gradebook for the batch's commits, opened after the forks
            _grade(pool, args, done, bar, scheduler, limits, warm, assignment, fp)
    finally:
        for w in pool:
            w.close(final=True)
        end_servers(servers)
    if bar is not None and hasattr(bar, "close"):
        bar.close()
    return [results[s] for s in found]


def _grade(pool: list, args: dict, done, bar, scheduler: str | None, limits: Limits, warm: tuple, assignment: str,
           fp: str) -> None:
    """Every job of ``args``: on the Dask cluster at ``scheduler``, else by the ``pool`` of grading processes, else
    in this process; ``done(student, data)`` for each result as it comes."""
    if scheduler:
        try:
            from distributed import Client, as_completed as dask_completed
        except ImportError:
            raise ToolError("--scheduler needs Dask's distributed package (pip install distributed), which this "
                            "environment does not pin yet") from None
        with Client(scheduler) as client:
            if bar is not None and hasattr(bar, "warm_up"):
                bar.warm_up = max(1, len(client.scheduler_info().get("workers", {})))
            _warm_dask(client, limits, warm)
            futures = {client.submit(_job, *a, pure=False, key=f"tfdl-{assignment}-{s}-{fp}"): s
                       for s, a in args.items()}
            for fut in dask_completed(futures):
                done(futures[fut], fut.result())
    elif not pool:  # in this process (debugging): the grader's state is this process's
        for s, a in args.items():
            done(s, _job(*a))
    else:  # worker processes of their own, so that nothing of a grading run stays in the caller
        import queue
        import threading
        jobs: queue.Queue = queue.Queue()
        for s, a in args.items():
            jobs.put((s, a))
        finished: queue.Queue = queue.Queue()

        def work(worker: _Worker):
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

        threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in pool]
        for t in threads:
            t.start()
        for _ in range(len(args)):
            s, data = finished.get()
            if s is None:
                raise ToolError(f"a grading worker could not start: {data}") from data
            done(s, data)
        for t in threads:
            t.join()


class _Worker:
    """A grading process of its own that grades one job after another: the checks' imports are paid once per
    worker, and a grader that breaks costs only its current job. The first process of a batch is a fork of the
    caller (:class:`_Forked`: it shares what the preflight imported, torch first); one started again after a
    death is a new ``python -m autograder.batch``."""

    STOP_SECONDS = 10.0  # for a worker to clean up (its sandbox server, its derivation evaluator) after its input ends

    def __init__(self, limits: Limits | None = None, warm: tuple = ()):
        import threading
        self.proc = None
        self.setup = {"limits": asdict(limits or Limits()), "warm": list(warm)}
        self.command = [sys.executable, "-m", "autograder.batch", json.dumps(self.setup)]
        self.ready = False
        self.stopped = False  # the batch is over (done, failed or interrupted): no process is started again
        self._lock = threading.Lock()  # a start and the batch's last close never interleave

    def spawn(self, fork: bool = False, server=None, servers: list = ()) -> None:
        """Start the process, without waiting for it: a fork of this process (``fork``), which takes ``server``
        (one of the batch's ``servers``, :func:`autograder.sandbox.start_servers`) as its own, or a new one."""
        import subprocess
        import tempfile
        self.errors = tempfile.TemporaryFile(mode="w+")
        self.ready = False
        if fork:
            self.proc = _Forked(self.setup, self.errors, _PACKAGE_ROOT, server, servers)
        else:
            self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self.errors, text=True, env=dict(os.environ, **_ONE_THREAD),
                                         cwd=_PACKAGE_ROOT)

    def _start(self):
        """Start the process (unless it was spawned) and wait for its ready line: a worker that cannot start
        raises (the batch stops with a message) instead of leaving the batch waiting."""
        with self._lock:
            if self.stopped:
                raise RuntimeError("the batch has stopped")
            if self.proc is None or self.proc.poll() is not None:
                self.spawn()
        first = self.proc.stdout.readline()
        if first.strip() != _READY:
            self.proc.wait()
            self.errors.seek(0)
            tail = [ln for ln in self.errors.read().splitlines() if ln.strip()][-3:]
            self.proc = None
            raise RuntimeError(f"{' '.join(self.command)} exited before it was ready"
                               + (": " + " | ".join(tail) if tail else ""))
        self.ready = True

    def run(self, args: tuple) -> dict:
        if self.proc is None or self.proc.poll() is not None or not self.ready:
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

    def close(self, final: bool = False):
        """End its input, so that it stops its sandbox server and its evaluator and removes their folders; kill
        it if it has not exited after STOP_SECONDS (or at once, if it never said it was ready). ``final``: the
        batch is over, and a job still in a thread (after an interrupt, say) starts no process again."""
        with self._lock:
            self.stopped = self.stopped or final
            proc, ready, self.proc, self.ready = self.proc, self.ready, None, False  # once, even from two threads
        if proc is not None:
            import subprocess
            with contextlib.suppress(Exception):
                proc.stdin.close()
            exited = False
            if ready:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=self.STOP_SECONDS)
                    exited = True
            if not exited:
                with contextlib.suppress(Exception):
                    proc.kill()
                proc.wait()
            with contextlib.suppress(Exception):
                proc.stdout.close()


_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
_ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def can_fork() -> bool:
    """A grading process may be a fork of this one when this one runs no other thread (a lock another thread
    holds at the fork would stay held in the copy forever) and the platform forks."""
    import threading
    return hasattr(os, "fork") and threading.active_count() == 1


@contextlib.contextmanager
def frozen_for_forks(forking: bool = True):
    """While this process forks copies of itself (``forking``): what they inherit (torch, the grader, the results)
    is out of their garbage collector's sight, so that no copy scans it, nor copies its pages by writing to it
    (``gc.freeze``, the practice the gc module documents for fork without exec); this process's own collector
    sees it again afterwards. Measured on nbgrader's feedback for 144 students in two forked shares: 21-22 CPU-s
    instead of 25-27."""
    import gc
    if forking:
        gc.freeze()
    try:
        yield
    finally:
        if forking:
            gc.unfreeze()


_HELD: list = []  # this process's ends of its forked workers' pipes (a later fork drops its copies of them)


class _Forked:
    """A grading process forked from this one, with the part of :class:`subprocess.Popen`'s interface that
    :class:`_Worker` uses. The copy shares what this process imported (the preflight imports the instructor's
    ``grading.py``, hence torch: ~2 s of CPU each worker would spend on its own); what is this process's stays
    its own: the copy starts its own sandbox server and derivation evaluator (their handles are reset in a
    forked child, :func:`os.register_at_fork`), never touches the gradebook, and leaves by ``os._exit``."""

    def __init__(self, setup: dict, errors, cwd: str, server=None, servers: list = ()):
        job_r, job_w = os.pipe()
        out_r, out_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the grading process (tests reach it through grade_class)
            code = 1
            try:
                global _STARTED
                _STARTED = "fork"
                from .sandbox import adopt, to_devnull
                for held in _HELD:  # the other workers' pipes, this process's copies: dropped (their EOF is theirs)
                    if not held.closed:
                        to_devnull(held.fileno())
                if server is not None:
                    adopt(server, servers)
                os.dup2(job_r, 0)
                os.dup2(out_w, 1)
                os.dup2(errors.fileno(), 2)
                for fd in (job_r, job_w, out_r, out_w):
                    os.close(fd)
                sys.stdin = open(0, encoding="utf-8", closefd=False)
                sys.stdout = open(1, "w", encoding="utf-8", closefd=False)
                sys.stderr = open(2, "w", encoding="utf-8", closefd=False, buffering=1)
                os.chdir(cwd)
                os.environ.update(_ONE_THREAD)  # for the numerical libraries loaded from now on; and the loaded ones:
                with contextlib.suppress(Exception):  # their thread pools were sized for this whole machine
                    from threadpoolctl import threadpool_limits
                    threadpool_limits(limits=1)
                _serve(setup)
                code = 0
            except BaseException:  # noqa: BLE001 - said on its error stream, which the batch reports
                with contextlib.suppress(BaseException):
                    import traceback
                    traceback.print_exc()
                    sys.stderr.flush()
            finally:
                os._exit(code)
        os.close(job_r)
        os.close(out_w)
        self.pid = pid
        self.returncode = None
        self.stdin = open(job_w, "w", encoding="utf-8")
        self.stdout = open(out_r, encoding="utf-8")
        _HELD[:] = [f for f in _HELD if not f.closed] + [self.stdin, self.stdout]

    def poll(self):
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -1
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None):
        import subprocess
        import time
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"grading process {self.pid}", timeout)
            time.sleep(0.02)
        return self.returncode

    def kill(self):
        if self.poll() is None:
            import signal
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


_MARK = "TFDL-RESULT "
_READY = "TFDL-READY"


def _warm_worker(limits: dict, warm: tuple = ()) -> None:
    """In a grading process before its first job: its fork server for the batch's limits starts now (it imports
    the assignment's modules while the process waits), so that no student waits for it."""
    from .sandbox import prestart
    prestart(Limits(**limits), tuple(warm))


def _warm_dask(client, limits: Limits, warm: tuple) -> None:
    """Start every Dask worker's sandbox server before the jobs are submitted (:func:`_warm_worker`, which returns
    at once: the servers import meanwhile). A worker that cannot is warmed by its first job."""
    with contextlib.suppress(Exception):
        client.run(_warm_worker, asdict(limits), warm)


def _serve(setup: dict) -> None:
    """A grading process: warm up, say it is ready, then read one JSON job per line and print one marked JSON
    result per line; when its input ends, stop its sandbox server and its evaluator (their folders go too)."""
    from . import derivation, sandbox
    try:
        _warm_worker(setup.get("limits", {}), tuple(setup.get("warm", ())))
        sys.stdout.write(_READY + "\n")
        sys.stdout.flush()
        for line in sys.stdin:
            if not line.strip():
                continue
            result = _job(*json.loads(line))
            sys.stdout.write(_MARK + json.dumps(result) + "\n")
            sys.stdout.flush()
    finally:
        sandbox.close_servers()
        derivation.stop_evaluator()


def _serve_jobs() -> None:
    """``python -m autograder.batch [setup as JSON]``: :func:`_serve`."""
    _serve(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})


if __name__ == "__main__":
    _serve_jobs()
