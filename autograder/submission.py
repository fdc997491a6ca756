"""Grading one submission with its code in a sandbox and the verdicts here (the isolated engine's core).

For one submission (:func:`grade_submission`):

1. the notebook is read (an unreadable one scores 0 and is flagged) and its grade cells are anchored to the
   source (:mod:`autograder.anchors`);
2. a :class:`~autograder.sandbox.Sandbox` process executes the student's code cells in notebook order (locked
   cells restored from the source, magics turned into no-ops);
3. at each anchored test cell, the instructor's code of that cell (hidden tests included, read from the
   source notebook) runs **here**, in the grading process, with the student's names bound to proxies: calling
   one is a request to the sandbox, which answers with plain data only.  So a student who redefines the checker,
   patches numpy or IPython, or returns an object whose ``==`` is always True changes nothing here; the checks of
   ``autograder/<a>.py`` and the references of ``grading.py`` never run in the student's process (except a
   reference applied to a student's object that cannot leave the sandbox, e.g. the empirical NTK of a student's
   ``NTKMLP``, which is sent in by value and can only misreport that student's own object);
4. the cell's score follows nbgrader's rule (the value of the last expression as partial credit, an error
   scores 0, else full points); its checks arrive as data (:func:`autograder.core.collect_reports`) and its
   printed report is the part's feedback;
5. a sandbox that dies or runs past a limit is restarted and the cells that ran are replayed, so one crash costs
   only the part it happened in.
"""
from __future__ import annotations

import ast
import builtins
import contextlib
import hashlib
import importlib
import io
import os
import sys
import time
import types
from pathlib import Path

from .anchors import SourceSpec, anchor, load_spec
from .course import Course, as_course
from .results import CheckResult, PartResult, SubmissionResult
from .sandbox import Limits, RemoteObject, Sandbox, SandboxError

__all__ = ["grade_submission", "fingerprint", "source_spec", "LEDGER_VERSION"]

LEDGER_VERSION = 2
# The modules of autograder/ whose code decides a score (with the assignment's own checks module).
SCORING_MODULES = ("core", "results", "sandbox", "anchors", "submission", "course")

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


def _prepare_instructor_module(course: Course, assignment: str) -> None:
    import cloudpickle

    from .core import instructor_module
    name = f"_tfdl_grading_{assignment}"
    current = sys.modules.get(name)
    if isinstance(current, _GradingModule):
        return
    if not (course.source(assignment) / "grading.py").is_file():  # an assignment without hidden checks
        return
    real = instructor_module(assignment)  # a grading.py that does not import was refused before the batch began
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


def _run_test(code: str, ns: dict, grader_names: set, sandbox: Sandbox,
              points: float) -> tuple[float, str, list[CheckResult]]:
    """Run the instructor's test code here with the student's names as proxies; nbgrader's scoring rule.
    Returns the score, the printed feedback and the checks (as data, from the reports the cell scored)."""
    from .core import collect_reports
    source = _transform(code)
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return 0.0, f"the test code does not parse: {exc}", []
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
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), collect_reports() as reports:
        try:
            exec(compile(ast.Module(body=body, type_ignores=[]), "<test>", "exec"), ns)
            if last is not None:
                value = eval(compile(last, "<test>", "eval"), ns)
        except Exception as exc:  # noqa: BLE001 - a failing test cell scores 0, as in nbgrader
            error = f"{type(exc).__name__}: {exc}"
    feedback = out.getvalue().rstrip()
    checks = [CheckResult(v.name, bool(v.passed), str(v.message), float(v.weight)) for r in reports
              for v in r.verdicts]
    if error is not None:
        return 0.0, (feedback + "\n" if feedback else "") + f"error: {error}", checks
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        score = float(value)
        if score != score:  # NaN
            score = 0.0
        return max(0.0, min(points, score)), feedback, checks
    return float(points), feedback, checks


def read_notebook(path: Path):
    import nbformat
    nb = nbformat.read(path, as_version=4)
    if not isinstance(nb.get("cells"), list):
        raise ValueError("no cells")
    return nb


def grade_submission(course: Course | Path, assignment: str, student: str, notebook: Path | None,
                     limits: Limits | None = None, spec: SourceSpec | None = None,
                     isolate: bool | None = None) -> SubmissionResult:
    """Grade one submission; never raises for anything the submission does."""
    start = time.monotonic()
    course = as_course(course)
    os.environ["TFDL_COURSE_ROOT"] = str(course.root)
    os.environ["TFDL_SOURCE_DIR"] = str(course.sources)
    spec = spec or source_spec(course, assignment)
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
        nb = read_notebook(Path(notebook))
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
                part.score, part.feedback, part.checks = _run_test(spec.tests[part.grade_id], ns, grader_names,
                                                                   sandbox, part.points)
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


def source_spec(course: Course | Path, assignment: str) -> SourceSpec:
    """The assignment's :class:`~autograder.anchors.SourceSpec` (read once per process)."""
    course = as_course(course)
    key = (str(course.root), assignment)
    if key not in _SPECS:
        _SPECS[key] = load_spec(course, assignment)
    return _SPECS[key]


def fingerprint(course: Course | Path, assignment: str) -> str:
    """A hash of everything a score depends on besides the submission: the engine's modules that score, the
    assignment's checks (``autograder/<a>.py``, not the other topics'), the sandbox, the assignment's source."""
    course = as_course(course)
    h = hashlib.sha256(str(LEDGER_VERSION).encode())
    package = Path(__file__).resolve().parent
    files = [package / f"{m}.py" for m in SCORING_MODULES + (assignment,)]
    files += sorted(course.source(assignment).glob("*"))
    for f in files:
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


