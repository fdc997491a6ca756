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
5. each cell and each part's checks get a sandbox with the full budget: one that died, ran past a limit, ran
   out of memory or holds nearly all of it (:meth:`~autograder.sandbox.Sandbox.exhausted`) is replaced by a
   fresh one in which the cells that ran are replayed -- except the cell that stopped or exhausted it, and any
   cell whose replay does -- so one crash or memory bomb costs only the part it happened in.
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
from .sandbox import Limits, RemoteObject, Sandbox, SandboxError, fresh_sandbox

__all__ = ["grade_submission", "fingerprint", "source_spec", "warm_modules", "LEDGER_VERSION"]

LEDGER_VERSION = 2
# The modules of autograder/ whose code decides a score (with the assignment's own checks module).
SCORING_MODULES = ("core", "results", "sandbox", "anchors", "submission", "course", "derivation", "variants")

# ==================================================================================================================
# Grading one submission
# ==================================================================================================================
_CURRENT: dict = {"sandbox": None}


class _GradingModule(types.ModuleType):
    """``solutions/<a>/grading.py`` as the checks see it: its functions run here, except on an argument that
    lives in the sandbox, where they are sent by value (cloudpickle) and run there.

    What they compute here from the instructor's own inputs (the hidden cases, the references on them) is the
    same for every student: it is computed once per grading process and then replayed (:class:`_References`)."""

    def __init__(self, real):
        super().__init__(real.__name__, real.__doc__)
        self.__file__ = real.__file__
        object.__setattr__(self, "_real", real)
        object.__setattr__(self, "_references", _References())

    def __getattr__(self, name):
        value = getattr(object.__getattribute__(self, "_real"), name)
        if isinstance(value, types.FunctionType) and value.__module__ == self.__name__:
            references = object.__getattribute__(self, "_references")

            def wrapped(*args, **kwargs):
                if any(isinstance(a, RemoteObject) for a in (*args, *kwargs.values())):
                    return _CURRENT["sandbox"].trusted(value, args, kwargs)
                return references.call(value, args, kwargs)
            wrapped.__name__ = name
            return wrapped
        return value


class _References:
    """Calls of the instructor's functions on the instructor's own inputs, remembered (issue 20: references
    computed once per batch, not once per student).

    A call is replayed only when it is the same call: the same function and the same arguments (by their pickled
    bytes), and a result that does not depend on the global random generators' states (torch's, numpy's legacy
    one, Python's), which travel with every call of student code and so differ from one student to the next. That
    is known by running it: a call that leaves the generators as they were drew nothing from them; a call that
    changed them is run a second time from other states, and is remembered only if it gave the same result and
    the same final states (it seeds them itself). Everything the call did is replayed: its result (a fresh copy
    each time, so a check that changes it changes nothing for the next student) and the generators' final
    states. A call that changed its arguments, or whose arguments or result cannot be pickled, is not
    remembered."""

    MAX_BYTES = 256 * 2 ** 20  # what the remembered results of one grading process may hold

    def __init__(self):
        self.memo: dict[bytes, tuple[bytes, bytes | None]] = {}
        self.drawing: set[bytes] = set()  # calls known to draw from the generators' incoming states
        self.bytes = 0
        self.hits = self.misses = 0

    @staticmethod
    def _rng_states() -> tuple[bytes, bytes, bytes]:
        """The states of torch's, numpy's legacy and Python's global generators, as bytes that are equal when the
        states are (a pickled torch tensor is not: its bytes change when the same state is set again)."""
        import pickle
        import random

        import numpy as np
        import torch
        name, keys, pos, has_gauss, cached = np.random.get_state()
        return (torch.get_rng_state().numpy().tobytes(),
                pickle.dumps((str(name), np.asarray(keys, dtype=np.uint32).tobytes(), int(pos), int(has_gauss),
                              float(cached))),
                pickle.dumps(random.getstate()))

    @staticmethod
    def _set_rng_states(states: tuple) -> None:
        """Set each generator whose state is given (None: leave that one as it is)."""
        import pickle
        import random

        import numpy as np
        import torch
        t, n, r = states
        if t is not None:
            torch.set_rng_state(torch.from_numpy(np.frombuffer(t, dtype=np.uint8).copy()))
        if n is not None:
            name, keys, pos, has_gauss, cached = pickle.loads(n)
            np.random.set_state((name, np.frombuffer(keys, dtype=np.uint32).copy(), pos, has_gauss, cached))
        if r is not None:
            random.setstate(pickle.loads(r))

    @staticmethod
    def _content(obj) -> bytes:
        """Bytes equal for equal contents (tensors by dtype, shape and data: their own pickles are not)."""
        import cloudpickle
        import torch

        class Pickler(cloudpickle.Pickler):
            def persistent_id(self, x):
                if isinstance(x, (_Proxy, RemoteObject)):  # a student's object: never the same call twice
                    raise TypeError("a student's object is not an instructor's input")
                if isinstance(x, torch.Tensor):
                    t = x.detach().cpu().contiguous()
                    return ("tensor", type(x).__name__, str(t.dtype), tuple(t.shape), bool(x.requires_grad),
                            t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
                return None

        out = io.BytesIO()
        Pickler(out).dump(obj)
        return out.getvalue()

    def call(self, fn, args: tuple, kwargs: dict):
        import pickle

        import cloudpickle
        try:
            arguments = self._content((args, kwargs))
            key = hashlib.sha256(self._content(fn.__qualname__) + arguments).digest()
        except Exception:  # noqa: BLE001 - not picklable: computed each time
            return fn(*args, **kwargs)
        if key in self.memo:
            data, after = self.memo[key]
            self.hits += 1
            if after is not None:
                self._set_rng_states(after)
            return pickle.loads(data)
        self.misses += 1
        before = self._rng_states()
        value = fn(*args, **kwargs)
        if key in self.drawing:
            return value
        try:
            after = self._rng_states()
            if self._content((args, kwargs)) != arguments:
                self.drawing.add(key)  # it changes its arguments: not a pure reference
                return value
            data = cloudpickle.dumps(value)
            content = self._content(value)
            if after != before:  # it used a generator: does it seed what it uses itself?
                import random

                import numpy as np
                import torch
                seed = int.from_bytes(hashlib.sha256(b"".join(before)).digest()[:4], "little")
                torch.manual_seed(seed)
                np.random.seed(seed)
                random.seed(seed)
                probe = self._rng_states()
                try:
                    again = self._content(fn(*args, **kwargs))
                    final = self._rng_states()
                finally:
                    self._set_rng_states(after)
                # each generator: left alone both times (then left alone on a replay), or at the same final state
                same = again == content and all((a == b and f == p) or (a == f)
                                             for b, a, p, f in zip(before, after, probe, final))
                if not same:
                    self.drawing.add(key)
                    return value
                after = tuple(None if a == b else a for b, a in zip(before, after))
            else:
                after = None
        except Exception:  # noqa: BLE001
            self.drawing.add(key)
            return value
        if self.bytes + len(data) <= self.MAX_BYTES:
            self.memo[key] = (data, after)
            self.bytes += len(data)
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

    def __reduce__(self):  # sent to the sandbox, it is the student's object of that name
        from .sandbox import _Name
        return (_Name, (self.name,))

    def _tfdl_near(self, fn, args: tuple, kwargs: dict):
        """Run a harness step in the sandbox, beside the student's code (:func:`autograder.core.near`)."""
        return _CURRENT["sandbox"].trusted(fn, args, kwargs)

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


@contextlib.contextmanager
def _course_environment(course: Course):
    """The checks find the instructor's side through the environment (``core.course_root``) while one submission
    is graded; afterwards the caller's environment is as it was (a process that grades one course and then does
    something else, a test session or a book build it starts, must not inherit this course)."""
    keys = ("TFDL_COURSE_ROOT", "TFDL_SOURCE_DIR")
    before = {k: os.environ.get(k) for k in keys}
    os.environ.update({"TFDL_COURSE_ROOT": str(course.root), "TFDL_SOURCE_DIR": str(course.sources)})
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def grade_submission(course: Course | Path, assignment: str, student: str, notebook: Path | None,
                     limits: Limits | None = None, spec: SourceSpec | None = None,
                     isolate: bool | None = None) -> SubmissionResult:
    """Grade one submission; never raises for anything the submission does."""
    course = as_course(course)
    with _course_environment(course):
        return _grade_submission(course, assignment, student, notebook, limits, spec, isolate)


def _grade_submission(course: Course, assignment: str, student: str, notebook: Path | None,
                      limits: Limits | None, spec: SourceSpec | None, isolate: bool | None) -> SubmissionResult:
    start = time.monotonic()
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
    from .variants import grading_student, mismatch
    declared = mismatch(nb, student)  # a per-student variant is drawn from the nbgrader id, never the declared one
    if declared:
        result.flags.append(declared)
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
    executed: list[tuple[str, str]] = []  # the cells that ran and are replayed in a fresh sandbox
    box: dict = {"sandbox": None}

    def fresh() -> Sandbox:
        """A new, started sandbox: the one place that makes one. Isolated, a fresh fork of this process's warm
        sandbox server (milliseconds; never a process another student or an earlier restart used)."""
        return fresh_sandbox(limits, isolate, warm_modules(course, assignment)).start()

    def restart() -> Sandbox:
        """A fresh sandbox with the cells that ran replayed in order.  A cell whose replay stops the sandbox
        (it dies, runs past a limit or exhausts memory) is dropped, noted, and the replay starts over without
        it, so whatever happens, the next part's checks get a sandbox with the full budget."""
        while True:
            if box["sandbox"] is not None:
                box["sandbox"].close()
            sandbox = box["sandbox"] = _CURRENT["sandbox"] = fresh()
            sandbox.execute(_IPYTHON_STUB, "<stub>")
            for k, (name, src) in enumerate(executed):
                try:
                    sandbox.execute(src, name)
                    why = sandbox.exhausted()
                except SandboxError as exc:
                    why = str(exc)
                if why:
                    result.notes.append(f"{name}: not replayed, it stopped the sandbox on replay: {why}")
                    del executed[k]
                    sandbox.deaths.clear()
                    break
            else:
                return sandbox

    def ready() -> Sandbox:
        """The current sandbox if it is fit for the next cell or part, else a fresh one."""
        sandbox = box["sandbox"]
        if sandbox is None or not sandbox.alive() or sandbox.exhausted():
            sandbox = restart()
        return sandbox

    try:
        restart()
        for i, cell in enumerate(cells):
            meta = cell.get("metadata", {}).get("nbgrader") or {}
            gid = meta.get("grade_id") if isinstance(meta, dict) else None
            if i in test_at:
                part = parts[test_at[i]]
                sandbox = ready()
                with grading_student(student):  # the variant of a derivation part is this student's
                    part.score, part.feedback, part.checks = _run_test(spec.tests[part.grade_id], ns, grader_names,
                                                                       sandbox, part.points)
                if sandbox.deaths:
                    result.notes.append(f"{part.grade_id}: the sandbox stopped: {sandbox.deaths[-1]}")
                    sandbox.deaths.clear()
                elif sandbox.exhausted():
                    result.notes.append(f"{part.grade_id}: the next part gets a fresh sandbox: "
                                        f"{sandbox.exhausted()}")
                continue
            if i in skip or cell.get("cell_type") != "code":
                continue
            src = spec.cells.get(gid) if gid else None
            source = src.source if (src is not None and src.locked and src.cell_type == "code") else cell.source
            if not isinstance(source, str):
                source = "".join(source)
            code = _transform(source)
            name = gid or f"cell {i + 1}"
            sandbox = ready()
            try:
                error, _ = sandbox.execute(code, name)
            except SandboxError as exc:  # it died or ran past a limit: not kept, not replayed
                result.notes.append(f"{name}: {exc}")
                sandbox.deaths.clear()
                continue
            why = sandbox.exhausted()
            if why:  # it ran out of memory or holds it: not kept, so that the next parts get the full budget
                result.notes.append(f"{name}: not kept, {why}" + (f" ({error.splitlines()[-1][:120]})"
                                                                   if error else ""))
                restart()
                continue
            if error:
                result.notes.append(f"{name}: {error.splitlines()[-1][:200]}")
            executed.append((name, code))
    finally:
        if box["sandbox"] is not None:
            box["sandbox"].close()
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


def warm_modules(course: Course | Path, assignment: str) -> tuple[str, ...]:
    """The modules the assignment's source notebook imports (absolute ``import a.b`` / ``from a.b import c``, at
    any depth of its code cells): what a warm sandbox server imports once for all its students (read once per
    process)."""
    course = as_course(course)
    key = (str(course.root), assignment)
    if key not in _WARM:
        found: list[str] = []
        try:
            nb = read_notebook(course.source_notebook(assignment))
            for cell in nb.cells:
                if cell.get("cell_type") != "code":
                    continue
                try:
                    tree = ast.parse(_transform(cell.source if isinstance(cell.source, str) else "".join(cell.source)))
                except SyntaxError:
                    continue
                for node in ast.walk(tree):
                    names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                             [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level
                             else [])
                    found += [n for n in names if n not in found]
        except Exception:  # noqa: BLE001 - an unreadable source: nothing extra is warmed, nothing else changes
            pass
        _WARM[key] = tuple(found)
    return _WARM[key]


_WARM: dict = {}


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


