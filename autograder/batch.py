"""Isolated autograding of a class: student code in a sandbox, verdicts in the grading process, scores in
nbgrader's gradebook; parallel, resumable, deterministic.

For one submission (:func:`grade_submission`):

1. the notebook is read (an unreadable one scores 0 and is flagged) and its grade cells are anchored to the
   source (:mod:`autograder.anchors`);
2. a :class:`~autograder.sandbox.Sandbox` process executes the student's code cells in notebook order (locked
   cells restored from the source, magics turned into no-ops);
3. at each anchored test cell, the instructor's code of that cell (hidden tests included, read from
   ``solutions/<a>/<a>.ipynb``) runs **here**, in the grading process, with the student's names bound to
   proxies: calling one is a request to the sandbox, which answers with plain data only.  So a student who
   redefines the checker, patches numpy or IPython, or returns an object whose ``==`` is always True changes
   nothing here; the checks of ``autograder/<a>.py`` and the references of ``solutions/<a>/grading.py`` never
   run in the student's process (except a reference applied to a student's object that cannot leave the
   sandbox, e.g. the empirical NTK of a student's ``NTKMLP``, which is sent in by value and can only misreport
   that student's own object);
4. the cell's score follows nbgrader's rule (the value of the last expression as partial credit, an error
   scores 0, else full points) and its printed report is the part's feedback;
5. a sandbox that dies or runs past a limit is restarted and the cells that ran are replayed, so one crash costs
   only the part it happened in.

:func:`grade_class` runs submissions in parallel (processes, or a Dask cluster), commits each result to the
gradebook, the autograded notebook (for ``nbgrader generate_feedback`` and formgrader) and a ledger as soon as it
is done, and skips submissions the ledger already holds with the same content and the same grader.
"""
from __future__ import annotations

import ast
import builtins
import contextlib
import datetime
import hashlib
import importlib
import io
import json
import os
import sys
import time
import types
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .anchors import SourceSpec, anchor, load_spec
from .sandbox import Limits, RemoteObject, Sandbox, SandboxError

__all__ = ["PartResult", "SubmissionResult", "grade_submission", "grade_class", "commit", "fingerprint"]

LEDGER_VERSION = 1


@dataclass
class PartResult:
    grade_id: str
    kind: str  # auto | manual
    points: float
    score: float | None  # None: manual part left for formgrader
    feedback: str = ""
    status: str = "ok"  # the anchor status, or "error"


@dataclass
class SubmissionResult:
    student: str
    parts: list[PartResult] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # tampering and anomalies: named in the report
    notes: list[str] = field(default_factory=list)  # errors in the student's cells, crashes, limits
    valid: bool = True  # the notebook could be read
    sha256: str = ""
    seconds: float = 0.0

    @property
    def total(self) -> float:
        return float(sum(p.score or 0.0 for p in self.parts))

    @property
    def max_score(self) -> float:
        return float(sum(p.points for p in self.parts))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SubmissionResult":
        d = dict(d)
        d["parts"] = [PartResult(**p) for p in d.get("parts", [])]
        return cls(**d)


# ==================================================================================================================
# Grading one submission
# ==================================================================================================================
_CURRENT: dict = {"sandbox": None}


class _GradingModule(types.ModuleType):
    """``solutions/<a>/grading.py`` as the checks see it: its functions run here, except on an argument that
    lives in the sandbox, where they are sent by value (cloudpickle) and run there."""

    def __init__(self, real):
        super().__init__(real.__name__, real.__doc__)
        self.__file__ = real.__file__
        object.__setattr__(self, "_real", real)

    def __getattr__(self, name):
        value = getattr(object.__getattribute__(self, "_real"), name)
        if isinstance(value, types.FunctionType) and value.__module__ == self.__name__:
            def wrapped(*args, **kwargs):
                if any(isinstance(a, RemoteObject) for a in (*args, *kwargs.values())):
                    return _CURRENT["sandbox"].trusted(value, args, kwargs)
                return value(*args, **kwargs)
            wrapped.__name__ = name
            return wrapped
        return value


def _prepare_instructor_module(course: Path, assignment: str) -> None:
    import cloudpickle

    from .core import instructor_module
    name = f"_tfdl_grading_{assignment}"
    current = sys.modules.get(name)
    if isinstance(current, _GradingModule):
        return
    try:
        real = instructor_module(assignment)
    except Exception:  # noqa: BLE001 - an assignment without hidden checks
        return
    cloudpickle.register_pickle_by_value(real)
    sys.modules[name] = _GradingModule(real)


class _Proxy:
    """A student's function or class, called by name in the sandbox (so it is always the current definition)."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, *args, **kwargs):
        return _CURRENT["sandbox"].call(self.name, args, kwargs)

    def __repr__(self):
        return f"<student's {self.name}>"


def _transform(source: str) -> str:
    """IPython syntax (magics, ``!cmd``) as plain Python calling a stub ``get_ipython()``."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001
        return source


_IPYTHON_STUB = '''
class _NoIPython:
    def __getattr__(self, name):
        return lambda *a, **k: None
def get_ipython():
    return _NoIPython()
'''


def _stored_and_loaded(tree) -> tuple[set, set]:
    stored, loaded = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (stored if isinstance(node.ctx, (ast.Store, ast.Del)) else loaded).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            stored.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            stored.add(node.name)
        elif isinstance(node, ast.arg):
            stored.add(node.arg)
    return stored, loaded


def _run_test(code: str, ns: dict, grader_names: set, sandbox: Sandbox, points: float) -> tuple[float, str]:
    """Run the instructor's test code here with the student's names as proxies; nbgrader's scoring rule."""
    source = _transform(code)
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return 0.0, f"the test code does not parse: {exc}"
    stored, loaded = _stored_and_loaded(tree)
    grader_names |= stored
    wanted = sorted(n for n in loaded - grader_names if not hasattr(builtins, n))
    found = sandbox.names(wanted) if wanted and sandbox.alive() else {}
    for name in wanted:
        info = found.get(name)
        if info is None:
            ns.pop(name, None)
        elif info.get("kind") == "callable":
            ns[name] = _Proxy(name)
        elif info.get("kind") == "module":
            try:
                ns[name] = importlib.import_module(str(info.get("module")))
            except Exception:  # noqa: BLE001
                ns.pop(name, None)
        elif info.get("kind") == "value":
            from .sandbox import decode
            try:
                ns[name] = decode(info.get("value"), sandbox)
            except Exception:  # noqa: BLE001
                ns.pop(name, None)
    body, last = tree.body, None
    if body and isinstance(body[-1], ast.Expr):
        body, last = body[:-1], ast.Expression(body[-1].value)
    out = io.StringIO()
    value, error = None, None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            exec(compile(ast.Module(body=body, type_ignores=[]), "<test>", "exec"), ns)
            if last is not None:
                value = eval(compile(last, "<test>", "eval"), ns)
        except Exception as exc:  # noqa: BLE001 - a failing test cell scores 0, as in nbgrader
            error = f"{type(exc).__name__}: {exc}"
    feedback = out.getvalue().rstrip()
    if error is not None:
        return 0.0, (feedback + "\n" if feedback else "") + f"error: {error}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        score = float(value)
        if score != score:  # NaN
            score = 0.0
        return max(0.0, min(points, score)), feedback
    return float(points), feedback


def _read_notebook(path: Path):
    import nbformat
    nb = nbformat.read(path, as_version=4)
    if not isinstance(nb.get("cells"), list):
        raise ValueError("no cells")
    return nb


def grade_submission(course: Path, assignment: str, student: str, notebook: Path | None,
                     limits: Limits | None = None, spec: SourceSpec | None = None,
                     isolate: bool | None = None) -> SubmissionResult:
    """Grade one submission; never raises for anything the submission does."""
    start = time.monotonic()
    course = Path(course)
    os.environ["TFDL_COURSE_ROOT"] = str(course)
    spec = spec or _spec(course, assignment)
    limits = limits or Limits()
    result = SubmissionResult(student)

    def zero(flag: str | None = None) -> SubmissionResult:
        result.parts = [PartResult(g, k, p, 0.0 if k == "auto" or flag else None, "", "ok")
                        for g, p, k in spec.grade_cells]
        if flag:
            result.flags.append(flag)
        result.seconds = time.monotonic() - start
        return result

    if notebook is None:
        result.valid = False
        return zero(f"no notebook found for {assignment}")
    raw = Path(notebook).read_bytes()
    result.sha256 = hashlib.sha256(raw).hexdigest()
    try:
        nb = _read_notebook(Path(notebook))
    except Exception as exc:  # noqa: BLE001
        result.valid = False
        return zero(f"invalid notebook: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}")
    cells = nb.cells
    anchors, notes = anchor(cells, spec)
    result.flags += notes
    _prepare_instructor_module(course, assignment)
    parts = {g: PartResult(g, k, p, None if k == "manual" else 0.0, "", anchors[g].status)
             for g, p, k in spec.grade_cells}
    test_at = {a.index: g for g, a in anchors.items() if a.ok and a.kind == "auto"}
    skip = {a.index for a in anchors.values() if a.index is not None and a.kind == "auto"}
    for g, a in anchors.items():  # every copy of a duplicated / moved / converted grade cell: not executed
        if not a.ok:
            skip |= {i for i, c in enumerate(cells)
                     if (c.get("metadata", {}).get("nbgrader") or {}).get("grade_id") == g}
    ns: dict = {"__name__": "__main__"}
    grader_names: set = set()
    executed: list[tuple[str, str]] = []
    sandbox = Sandbox(limits, isolate=isolate)

    def restart():
        sandbox.close()
        sandbox.start()
        sandbox.execute(_IPYTHON_STUB, "<stub>")
        for name, src in executed:
            try:
                sandbox.execute(src, name)
            except SandboxError:
                sandbox.close()
                sandbox.start()
                sandbox.execute(_IPYTHON_STUB, "<stub>")

    _CURRENT["sandbox"] = sandbox
    try:
        restart()
        for i, cell in enumerate(cells):
            meta = cell.get("metadata", {}).get("nbgrader") or {}
            gid = meta.get("grade_id") if isinstance(meta, dict) else None
            if i in test_at:
                part = parts[test_at[i]]
                if not sandbox.alive():
                    restart()
                part.score, part.feedback = _run_test(spec.tests[part.grade_id], ns, grader_names, sandbox,
                                                      part.points)
                if sandbox.deaths:
                    result.notes.append(f"{part.grade_id}: the sandbox stopped: {sandbox.deaths[-1]}")
                    sandbox.deaths.clear()
                continue
            if i in skip or cell.get("cell_type") != "code":
                continue
            src = spec.cells.get(gid) if gid else None
            source = src.source if (src is not None and src.locked and src.cell_type == "code") else cell.source
            if not isinstance(source, str):
                source = "".join(source)
            code = _transform(source)
            name = gid or f"cell {i + 1}"
            if not sandbox.alive():
                restart()
            try:
                error, _ = sandbox.execute(code, name)
            except SandboxError as exc:
                result.notes.append(f"{name}: {exc}")
                sandbox.deaths.clear()
                restart()
                continue
            if error:
                result.notes.append(f"{name}: {error.splitlines()[-1][:200]}")
            executed.append((name, code))
    finally:
        sandbox.close()
        _CURRENT["sandbox"] = None
    for g, a in anchors.items():
        if not a.ok:
            parts[g].score = 0.0
            parts[g].feedback = f"This part scores 0: {a.note()}."
    result.parts = [parts[g] for g, _, _ in spec.grade_cells]
    result.seconds = time.monotonic() - start
    return result


_SPECS: dict = {}


def _spec(course: Path, assignment: str) -> SourceSpec:
    key = (str(course), assignment)
    if key not in _SPECS:
        _SPECS[key] = load_spec(course, assignment)
    return _SPECS[key]


def fingerprint(course: Path, assignment: str) -> str:
    """A hash of everything a score depends on besides the submission: the checks, the sandbox, the source."""
    h = hashlib.sha256(str(LEDGER_VERSION).encode())
    package = Path(__file__).resolve().parent
    files = sorted(package.glob("*.py")) + sorted((Path(course) / "solutions" / assignment).glob("*"))
    for f in files:
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


# ==================================================================================================================
# Committing a result: gradebook, submitted and autograded notebooks, ledger
# ==================================================================================================================
def _autograded_notebook(course: Path, assignment: str, notebook: Path, result: SubmissionResult, spec):
    """The student's notebook as nbgrader's autograde would leave it, with each test cell's released source
    (no hidden tests), its report as output and its score as the displayed value."""
    import nbformat
    nb = _read_notebook(notebook)
    by_id = {p.grade_id: p for p in result.parts}
    seen, cells = set(), []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader")
        gid = meta.get("grade_id") if isinstance(meta, dict) else None
        if gid is not None and (gid in seen or gid not in spec.cells):
            cell.metadata.pop("nbgrader", None)  # a copy or an unknown grade id: plain cell in the feedback
            gid = None
        if gid is not None:
            seen.add(gid)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        part = by_id.get(gid)
        src = spec.cells.get(gid) if gid else None
        if src is not None and src.locked and src.cell_type == cell.cell_type:
            cell.source = src.source
        if part is not None and part.kind == "auto" and cell.cell_type == "code":
            text = part.feedback or ""
            if text:
                cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=text + "\n"))
            cell.outputs.append(nbformat.v4.new_output("execute_result", data={"text/plain": f"{part.score:g}"},
                                                       execution_count=1))
        cells.append(cell)
    if result.flags or result.notes:
        lines = ["**Grading notes**", ""] + [f"- {x}" for x in result.flags + result.notes]
        cells.insert(0, nbformat.v4.new_markdown_cell("\n".join(lines)))
    nb.cells = cells
    return nb


def commit(course: Path, assignment: str, notebook: Path | None, result: SubmissionResult, spec=None) -> None:
    """Write one result where nbgrader keeps it (gradebook, submitted/ and autograded/), then to the ledger."""
    import nbformat
    from nbgrader.api import Gradebook

    from .nbgrading import gradebook_url, submit
    course = Path(course)
    spec = spec or _spec(course, assignment)
    with Gradebook(gradebook_url(course)) as gb:
        gb.update_or_create_student(result.student)
    if result.valid and notebook is not None:
        submit(course, assignment, result.student, Path(notebook))
        nb = _autograded_notebook(course, assignment, Path(notebook), result, spec)
        out = course / "course_work" / "autograded" / result.student / assignment
        out.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out / f"{assignment}.ipynb")
        stamp = course / "course_work" / "submitted" / result.student / assignment / "timestamp.txt"
        timestamp = datetime.datetime.strptime(stamp.read_text().strip(), "%Y-%m-%d %H:%M:%S.%f UTC")
        with Gradebook(gradebook_url(course)) as gb, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SQLAlchemy's autoflush warnings inside nbgrader's own API
            sub = gb.update_or_create_submission(assignment, result.student, timestamp=timestamp)
            by_id = {p.grade_id: p for p in result.parts}
            for snb in sub.notebooks:
                for g in snb.grades:
                    part = by_id.get(g.name)
                    if part is None:
                        continue
                    if part.kind == "manual" and part.status == "ok":
                        g.auto_score, g.needs_manual_grade = None, True
                    else:
                        g.auto_score, g.needs_manual_grade = float(part.score or 0.0), False
                for c in snb.comments:
                    c.auto_comment = None
            gb.db.commit()
    ledger = course / "course_work" / "isolated" / f"{assignment}.jsonl"
    ledger.parent.mkdir(parents=True, exist_ok=True)
    entry = {"student": result.student, "fingerprint": fingerprint(course, assignment), "result": result.to_dict()}
    with ledger.open("a") as f:
        f.write(json.dumps(entry) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_ledger(course: Path, assignment: str) -> dict[str, dict]:
    """student -> last ledger entry (a torn last line from an interrupted write is ignored)."""
    path = Path(course) / "course_work" / "isolated" / f"{assignment}.jsonl"
    entries = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                e = json.loads(line)
                entries[e["student"]] = e
            except (ValueError, KeyError, TypeError):
                continue
    return entries


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
        return grade_submission(Path(course), assignment, student, Path(notebook) if notebook else None,
                                Limits(**limits), isolate=isolate).to_dict()
    except Exception as exc:  # noqa: BLE001 - a bug of the grader: reported, the batch goes on
        import traceback
        spec = _spec(Path(course), assignment)
        r = SubmissionResult(student, [PartResult(g, k, p, 0.0, "", "error") for g, p, k in spec.grade_cells])
        r.notes.append(f"grader error (not the student's fault): {type(exc).__name__}: {exc}")
        r.notes.append(traceback.format_exc()[-500:])
        r.valid = False
        return r.to_dict()


def grade_class(course: Path, assignment: str, found: dict[str, Path | None], *, workers: int = 1,
                limits: Limits | None = None, scheduler: str | None = None, isolate: bool | None = None,
                progress=None, resume: bool = True) -> list[SubmissionResult]:
    """Grade every ``student -> notebook`` of ``found``; commit each result as soon as it is done.

    ``workers`` grading processes on this machine (0: in this process), or the Dask cluster whose scheduler address is ``scheduler``.
    With ``resume``, a submission whose content and grader fingerprint are already in the ledger is not graded
    again.  ``progress(total)`` returns an object with ``update(n)`` and ``set_postfix_str(s)`` (e.g. tqdm)."""
    course = Path(course)
    limits = limits or Limits()
    spec = _spec(course, assignment)
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
    args = {s: (str(course), assignment, s, str(nb) if nb else None, asdict(limits), isolate) for s, nb in todo}

    def done(student, data):
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
            from .nbgrading import ToolError
            raise ToolError("--scheduler needs Dask's distributed package (pip install distributed), which this "
                            "environment does not pin yet") from None
        with Client(scheduler) as client:
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
            worker = _Worker()
            try:
                while True:
                    try:
                        s, a = jobs.get_nowait()
                    except queue.Empty:
                        return
                    finished.put((s, worker.run(a)))
            finally:
                worker.close()

        threads = [threading.Thread(target=work, daemon=True) for _ in range(min(workers, max(1, len(args))))]
        for t in threads:
            t.start()
        for _ in range(len(args)):
            s, data = finished.get()
            done(s, data)
        for t in threads:
            t.join()
    if bar is not None and hasattr(bar, "close"):
        bar.close()
    return [results[s] for s in found]


class _Worker:
    """A grading process of its own (``python -m autograder.batch``) that grades one job after another: the
    checks' imports are paid once per worker, and a grader that breaks costs only its current job."""

    def __init__(self):
        self.proc = None

    def _start(self):
        import subprocess
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "autograder.batch"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                                     cwd=str(Path(__file__).resolve().parent.parent))

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
        spec = _spec(Path(course), assignment)
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


def _serve_jobs() -> None:
    """``python -m autograder.batch``: read one JSON job per line, print one marked JSON result per line."""
    for line in sys.stdin:
        if not line.strip():
            continue
        result = _job(*json.loads(line))
        sys.stdout.write(_MARK + json.dumps(result) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _serve_jobs()
