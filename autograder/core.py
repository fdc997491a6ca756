"""What every assignment's checks share.

A graded part (one nbgrader grade cell) is checked in two halves:

* the **harness** calls the student's function on seeded inputs and turns what comes back into plain data
  (``numpy`` arrays, floats, ints, strings); an exception, wrong type or wrong shape becomes a message;
* the **verdict** is a pure function of that plain data and the reference outputs: it returns whether a check
  passed and the feedback a student can act on (input, expected, returned, and a hint for a known mistake).

Keeping the halves apart lets student code run in another process and the verdict run where student code
cannot reach it.  A :class:`Report` collects the verdicts of one part and turns them into nbgrader partial
credit: the grade cell ends with the report's :class:`Score`, a float that nbgrader reads from the cell's
output.

Tolerances depend on dtype (as in neural-tangents' tests): float32 answers are accepted wherever float64
ones are, with the tolerance the convention file states for each quantity.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import io
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .results import REPORT_MIMETYPE, CheckResult

__all__ = [
    "StudentCall", "call_student", "as_array", "plain_value", "Verdict", "close", "compare", "matches",
    "ratio_hint", "error_verdict", "judge_purity", "run_cases", "Report", "Score", "instructor_module",
    "HiddenChecksUnavailable", "fmt", "collect_reports", "snapshot", "unchanged", "Part", "Written", "Topic", "rtol_for",
]


# --------------------------------------------------------------------------------------------------------------
# Harness helpers
# --------------------------------------------------------------------------------------------------------------
@dataclass
class StudentCall:
    """What one call of a student's function produced, as plain data."""

    value: Any = None
    error: str | None = None  # "NotImplementedError: ..." when the call raised
    output: str = ""  # what the call printed (stdout, stderr and warnings), kept out of the grade cell

    @property
    def ok(self) -> bool:
        return self.error is None


def call_student(fn: Callable, *args, **kwargs) -> StudentCall:
    """Call ``fn`` and capture its return value, its exception and anything it prints.

    Output and warnings are captured because nbgrader scores a test cell that writes to stderr as 0: a harmless
    warning raised inside a correct function must not cost the part.  ``SystemExit`` is caught like any other
    exception; ``KeyboardInterrupt`` is not, so that nbgrader's timeout can still interrupt an endless loop.
    """
    buffer = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(buffer), \
            contextlib.redirect_stderr(buffer):
        warnings.simplefilter("always")
        try:
            value = fn(*args, **kwargs)
            error = None
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - any failure of student code is feedback, not a crash
            value, error = None, _describe_exception(exc)
    printed = buffer.getvalue() + "".join(f"warning: {w.message}\n" for w in caught)
    if printed:
        for sink in _PRINTED:
            sink.append(printed)
    return StudentCall(value, error, printed)


# While a part's checks run (Topic.check), what student code prints is collected here, so that the part's
# feedback can show it once (truncated) instead of dropping it.
_PRINTED: list[list[str]] = []


def near(step: Callable, *args, **kwargs):
    """``step(*args, **kwargs)``, run where the student's objects live: here in a kernel (plain nbgrader, a
    student's own run); in the isolated engine, sent to the student's sandbox as one request (``_tfdl_near`` of a
    student object among the arguments) instead of one request per call of student code inside it.

    For harness steps that call student code many times (hundreds of small networks built and run): ``step`` is
    a module-level function of this package, it returns plain data, and every verdict on that data is taken here,
    outside the sandbox. What the student's code printed inside it joins the part's feedback as usual."""
    host = next((a for a in (*args, *kwargs.values()) if hasattr(type(a), "_tfdl_near")), None)
    if host is None:
        return step(*args, **kwargs)
    value, printed = host._tfdl_near(_near_step, (step, args, kwargs), {})
    if printed:
        for sink in _PRINTED:
            sink.append(str(printed))
    return value


def _near_step(step: Callable, args: tuple, kwargs: dict) -> tuple[Any, str]:
    """In the sandbox: run ``step`` collecting what student code prints (:func:`call_student`), as the part's
    feedback would have."""
    sink: list[str] = []
    _PRINTED.append(sink)
    try:
        value = step(*args, **kwargs)
    finally:
        _PRINTED.remove(sink)
    return value, "".join(sink)[:20000]
NOT_IMPLEMENTED = "NotImplementedError: this function is not implemented yet"


def _describe_exception(exc: BaseException) -> str:
    """The exception as one line for the student, with the line of the student's own code it came from (the
    last traceback frame outside this package and outside installed libraries), when there is one."""
    name = type(exc).__name__
    text = str(exc)
    if isinstance(exc, NotImplementedError):
        return NOT_IMPLEMENTED
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r}): your function called sys.exit()"
    where = getattr(exc, "student_line", None) or _student_line(exc.__traceback__)
    return (f"{name}: {text}" if text else name) + (f" ({where})" if where else "")


def _student_line(tb) -> str:
    """``line 7 of your cell: x = X1 @ X2`` for the last frame of ``tb`` in the student's code: not in this
    package, not in an installed library or the standard library (an IPython cell, a script, a test file)."""
    import linecache
    import sysconfig
    skip = [str(Path(__file__).resolve().parent)] + [p for p in {sysconfig.get_paths().get(k) for k in (
        "stdlib", "platstdlib", "purelib", "platlib")} if p]
    found = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.startswith("<frozen") and not any(
                str(Path(filename).resolve()).startswith(s) for s in skip if filename.startswith("/")):
            found = tb
        tb = tb.tb_next
    if found is None:
        return ""
    code, lineno = found.tb_frame.f_code, found.tb_lineno
    source = linecache.getline(code.co_filename, lineno).strip()
    where = "your cell" if "ipykernel" in code.co_filename or code.co_filename.startswith("<") else \
        Path(code.co_filename).name
    func = "" if code.co_name == "<module>" else f" in {code.co_name}"
    return f"line {lineno} of {where}{func}" + (f": {source[:120]}" if source else "")


def as_array(value: Any, what: str = "the result") -> np.ndarray:
    """Turn a returned numpy array, torch tensor, list or number into a float64 numpy array.

    Raises ``TypeError`` with a message for the student when it is none of these (objects that only pretend to
    be arrays are refused: a real ``np.ndarray`` or ``torch.Tensor`` is required).
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is part of the course environment
        torch = None
    if torch is not None and isinstance(value, torch.Tensor):
        if value.is_complex():
            raise TypeError(f"{what} is a complex tensor; expected real numbers")
        return value.detach().to("cpu", torch.float64).numpy().copy()
    if type(value) is np.ndarray or isinstance(value, (list, tuple, float, int, np.floating, np.integer)):
        try:
            arr = np.array(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{what} could not be read as an array of numbers ({exc})") from None
        return arr
    raise TypeError(f"{what} has type {type(value).__name__}; expected a numpy array or a torch tensor")


def fmt(x: Any, digits: int = 5) -> str:
    """Short, readable rendering of a number or a small array for feedback."""
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 0:
        return f"{float(arr):.{digits}g}"
    with np.printoptions(precision=digits - 1, suppress=False, threshold=12, edgeitems=3, linewidth=100):
        return np.array2string(arr, separator=", ")


# --------------------------------------------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------------------------------------------
# The outcome of one check (a description of the input, whether it passed, and feedback) is the course's one
# result type of a check (autograder.results).
Verdict = CheckResult


def close(got: np.ndarray, expected: np.ndarray, *, rtol: float, atol: float = 0.0,
          scale: str = "max") -> tuple[bool, str]:
    """Compare two arrays of the same shape; tolerance ``atol + rtol * max|expected|`` (``scale='max'``) or
    elementwise ``atol + rtol * |expected|`` (``scale='elementwise'``).

    Returns ``(passed, message)``; the message names the worst entry, its expected and returned values.
    """
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        return False, f"shape {got.shape}, expected {expected.shape}"
    if not np.all(np.isfinite(got)):
        bad = np.argwhere(~np.isfinite(got))[0]
        idx = tuple(int(i) for i in bad)
        return False, f"non-finite value {got[idx]} at index {idx} (expected {fmt(expected[idx])})"
    if got.size == 0:
        return True, ""
    tol = atol + rtol * (np.max(np.abs(expected)) if scale == "max" else np.abs(expected))
    err = np.abs(got - expected)
    bad = err > tol
    if not np.any(bad):
        return True, ""
    idx = np.unravel_index(np.argmax(err - tol), err.shape) if err.ndim else ()
    idx = tuple(int(i) for i in idx)
    where = f" at index {idx}" if idx else ""
    allowed = float(tol if np.ndim(tol) == 0 else tol[idx])
    # The difference and the tolerance are printed, so that "expected 1.341, got 1.341" never happens.
    return False, (f"{int(bad.sum())} of {got.size} entries off; worst{where}: expected {fmt(expected[idx], 8)}, "
                   f"got {fmt(got[idx], 8)} (off by {float(err[idx]):.3g}, allowed {allowed:.3g})")


# --------------------------------------------------------------------------------------------------------------
# Reports and scores
# --------------------------------------------------------------------------------------------------------------
class Score(float):
    """The points of a part: a float whose plain-text display is the bare number, which nbgrader reads as the
    cell's partial credit (from the ``text/plain`` of the cell's ``execute_result``), and whose rich display, the
    one JupyterLab, Colab and nbgrader's feedback pages show, reads as a score: "1.5 of 2 points"."""

    def __new__(cls, value: float, points: float | None = None):
        score = super().__new__(cls, value)
        score.points = points
        return score

    def __repr__(self) -> str:
        return f"{float(self):g}"

    __str__ = __repr__

    def __reduce__(self):
        return (Score, (float(self), self.points))

    def describe(self) -> str:
        if self.points is None:
            return f"{float(self):g} points"
        return f"{float(self):g} of {float(self.points):g} point{'' if float(self.points) == 1 else 's'}"

    def _repr_markdown_(self) -> str:
        return f"**{self.describe()}**"

    def _repr_html_(self) -> str:
        return f"<b>{self.describe()}</b>"


@dataclass
class Report:
    """The verdicts of one graded part and its score (partial credit in proportion to the passed weight)."""

    part: str
    points: float
    tests: str = "visible"
    verdicts: list[Verdict] = field(default_factory=list)
    calls: list[tuple[str, dict]] = field(default_factory=list)  # harness outputs of :meth:`call`, for purity
    gated: list = field(default_factory=list)  # checks a trivial answer passes too (see :meth:`judge`)
    printed: list[str] = field(default_factory=list)  # what student code printed while the checks ran
    # A part with a per-student variant (``Part(variant=...)``): the graded student's id and values, the name of the
    # grading.py function that makes their hidden cases (:meth:`own_cases`), and lines shown under the checks.
    student: str = ""
    variant: dict = field(default_factory=dict)
    variant_cases: str = ""
    notes: list[str] = field(default_factory=list)

    def own_cases(self, grading) -> list[dict]:
        """The graded student's own hidden cases: ``grading.<variant_cases>(**variant)`` (a list of cases, or one),
        each named with where its values come from; [] for a part without a variant. The case function takes
        the values as arguments (never the student's id), so a reference memoised by its arguments
        (autograder.submission) is recomputed for each student's inputs and shared by students who drew alike."""
        if not self.variant:
            return []
        cases = getattr(grading, self.variant_cases)(**self.variant)
        cases = [cases] if isinstance(cases, dict) else list(cases)
        origin = (f"drawn from course id {self.student!r}" if self.student else
                  "the default values: no student is being graded")
        return [dict(case, name=f"your own case ({origin}): {case['name']}") for case in cases]

    def add(self, verdict: Verdict) -> Verdict:
        self.verdicts.append(verdict)
        return verdict

    def check(self, name: str, verdict: Callable[[], tuple[bool, str]], weight: float = 1.0) -> Verdict:
        """Run a verdict function; an error inside it (e.g. a malformed student value) fails only this check.

        Anything the verdict's own computations write to stderr (a library warning from a reference) is kept
        out of the cell: nbgrader scores a test cell with stderr output as 0."""
        buffer = io.StringIO()
        try:
            with warnings.catch_warnings(), contextlib.redirect_stderr(buffer):
                warnings.simplefilter("ignore")
                passed, message = verdict()
        except Exception as exc:  # noqa: BLE001 - the verdict must never crash the grade cell
            passed, message = False, f"could not check this: {type(exc).__name__}: {exc}"
        return self.add(Verdict(name, bool(passed), message, weight))

    # -- harness and verdict in one step (the building blocks every part uses) ----------------------------------
    def call(self, fn: Callable, *args, what: str, convert: Callable[[Any, str], Any] | None = None,
             **kwargs) -> dict:
        """Harness step: call the student's ``fn(*args, **kwargs)`` and return plain data.

        ``{"value": convert(returned, what)}`` (default :func:`as_array`: a float64 array), or ``{"error": message}``
        when the call raised or ``convert`` refused the value (a ``TypeError``/``ValueError`` whose text is the
        message); and ``"modified"``: whether the call changed any argument (arrays, tensors, modules, bit for bit:
        book/conventions.md rule 7). Every call is recorded for the part's purity check (:meth:`purity`).
        """
        before = [snapshot(a) for a in args] + [snapshot(v) for v in kwargs.values()]
        call = call_student(fn, *args, **kwargs)
        after = list(args) + list(kwargs.values())
        modified = any(not unchanged(b, a) for b, a in zip(before, after))
        if not call.ok:
            out = {"error": f"{what} raised {call.error}"}
        else:
            try:
                out = {"value": (convert or as_array)(call.value, f"the value returned by {what}")}
            except (TypeError, ValueError) as exc:
                out = {"error": str(exc)}
        out["modified"] = modified
        self.calls.append((what, out))
        return out

    def judge(self, name: str, out: dict, verdict: Callable[..., tuple[bool, str]], *args,
              weight: float = 1.0, gated: bool = False, **kwargs) -> Verdict:
        """A check of one harness output: fails with the harness's error message when the call failed, else
        ``verdict(out["value"], *args, **kwargs) -> (passed, message)`` decides (errors inside it fail only this
        check). Verdicts therefore never test for errors themselves.

        ``gated=True`` for a check that a trivial answer also passes (an expected 0, an upper bound, a homogeneity
        property that 0 satisfies): it counts only when some check that is not gated passed too
        (:meth:`apply_gates`), so that a constant earns nothing."""
        if out.get("error"):
            verdict_ = self.add(Verdict(name, False, out["error"], weight))
        else:
            verdict_ = self.check(name, lambda: verdict(out["value"], *args, **kwargs), weight)
        if gated:
            self.gated.append(verdict_)
        return verdict_

    def apply_gates(self) -> None:
        """Withdraw the gated checks' credit when no check that is not gated passed."""
        if any(v.passed for v in self.verdicts if not any(v is g for g in self.gated)):
            return
        for v in self.gated:
            if v.passed:
                v.passed = False
                v.message = ("not credited yet: a trivial answer (e.g. a constant) also passes this check; it counts "
                             "once one of the other checks of this part passes")

    def purity(self, what: str = "its inputs") -> Verdict | None:
        """The part's last check: no recorded call modified its arguments. Credited only when every call returned
        a value and at least one check of the part passed (a stub or a constant has shown nothing by leaving its
        inputs alone). None when the part recorded no call."""
        if not self.calls:
            return None
        credited = any(v.passed for v in self.verdicts)
        return self.check(f"leaves {what} unchanged", lambda: judge_purity(self.calls, credited=credited))

    @property
    def fraction(self) -> float:
        total = sum(v.weight for v in self.verdicts)
        return sum(v.weight for v in self.verdicts if v.passed) / total if total else 0.0

    @property
    def earned(self) -> float:
        # Round down to a hundredth of a point, so that a tiny failure never rounds up to full marks.
        return float(np.floor(self.points * self.fraction * 100 + 1e-9) / 100)

    def text(self) -> str:
        """The feedback: a headline worded from the counts, each check once, each distinct failure message once
        (a repeated one is referred to), one line for a part not implemented yet, and what the student's code
        printed (truncated)."""
        passed, n = sum(v.passed for v in self.verdicts), len(self.verdicts)
        scope = "visible check" if self.tests == "visible" else "check"
        plural = "s" if n != 1 else ""
        hidden = "" if self.tests == "visible" else " (visible and hidden)"
        points = f"{self.earned:g} of {self.points:g} point{'' if self.points == 1 else 's'}"
        if n and all(not v.passed and (NOT_IMPLEMENTED in v.message or v.message.startswith(("not checked",
                                                                                           "not credited")))
                     for v in self.verdicts) and any(NOT_IMPLEMENTED in v.message for v in self.verdicts):
            return (f"{self.part}: not implemented yet (it raises NotImplementedError) -> {points}; its {n} "
                    f"{scope}{plural} run once it returns a value" + self._notes_text() + self._printed_text())
        if n == 0:
            counts = "no checks ran"
        elif passed == n:
            counts = f"{'the' if n == 1 else 'all ' + str(n)} {scope}{plural}{hidden} passed"
        elif passed == 0:
            counts = f"{'the' if n == 1 else 'none of the ' + str(n)} {scope}{plural}{hidden} " + \
                ("failed" if n == 1 else "passed")
        else:
            counts = f"{passed} of {n} {scope}{plural}{hidden} passed"
        lines = [f"{self.part}: {counts} -> {points}"]
        shown: dict[str, int] = {}  # message -> the check it is shown in full under
        above = None  # the failure message of the check just above (None after a passing check)
        for i, v in enumerate(self.verdicts):
            lines.append(f"  [{'pass' if v.passed else 'FAIL'}] {v.name}")
            message = None if v.passed else v.message
            if message and message == above:
                lines.append("         (same as above)")
            elif message and message in shown:
                lines.append(f"         (same message as for: {self.verdicts[shown[message]].name[:70]})")
            elif message:
                shown[message] = i
                lines.extend("         " + line for line in message.splitlines())
            above = message
        if self.tests == "visible" and self.fraction == 1.0:
            lines.append("  The hidden checks (other settings, larger inputs) run when your work is graded.")
        return "\n".join(lines) + self._notes_text() + self._printed_text()

    def _notes_text(self) -> str:
        return "".join("\n  " + note for note in self.notes)

    def _printed_text(self, max_lines: int = 12, max_chars: int = 1200) -> str:
        """What the student's code printed during the checks (and its warnings), once, truncated."""
        text = "".join(self.printed)
        if not text.strip():
            return ""
        lines = text.rstrip("\n").splitlines()
        kept, size = [], 0
        for line in lines[:max_lines]:
            kept.append(line[:200] + (" ..." if len(line) > 200 else ""))
            size += len(kept[-1])
            if size > max_chars:
                break
        more = len(lines) - len(kept)
        return ("\n  Your code printed during these checks" + (f" ({len(lines)} lines, the first {len(kept)} shown)"
                                                             if more else "") + ":\n"
                + "\n".join("    | " + line for line in kept))

    def to_dict(self) -> dict:
        return {"part": self.part, "points": self.points, "tests": self.tests, "earned": self.earned,
                "checks": [dataclasses.asdict(v) for v in self.verdicts]}

    def score(self) -> Score:
        """Print the feedback and return the points, for the last line of the grade cell.

        The result also goes out as data, never only as text: to a grading engine that collects reports
        (:func:`collect_reports`), and, inside a Jupyter kernel, as a ``display_data`` output of MIME type
        ``REPORT_MIMETYPE`` that the self-check reads (nbgrader scores only the cell's ``execute_result``)."""
        print(self.text())
        for sink in _COLLECTORS:
            sink.append(self)
        _display_data(self.to_dict())
        return Score(self.earned, self.points)


_COLLECTORS: list[list] = []


@contextlib.contextmanager
def collect_reports():
    """``with collect_reports() as reports:`` every :class:`Report` scored inside the block is appended to
    ``reports`` (how the isolated engine receives a grade cell's checks as data)."""
    sink: list = []
    _COLLECTORS.append(sink)
    try:
        yield sink
    finally:
        _COLLECTORS.remove(sink)


def _display_data(data: dict) -> None:
    shell = sys.modules.get("IPython")
    if shell is None or _COLLECTORS:
        return
    try:
        from IPython import get_ipython
        from IPython.display import display
        if get_ipython() is not None and type(get_ipython()).__name__ == "ZMQInteractiveShell":
            display({"text/plain": "", REPORT_MIMETYPE: data}, raw=True)
    except Exception:  # noqa: BLE001 - displaying data must never cost the part
        pass


# --------------------------------------------------------------------------------------------------------------
# The instructor's side
# --------------------------------------------------------------------------------------------------------------
class HiddenChecksUnavailable(RuntimeError):
    """Raised when the hidden checks are asked for where the instructor's files are not present."""


def course_root() -> Path:
    """The course directory: ``$TFDL_COURSE_ROOT`` or the checkout this package lives in."""
    env = os.environ.get("TFDL_COURSE_ROOT")
    return Path(env) if env else Path(__file__).resolve().parent.parent


def instructor_module(assignment: str):
    """Load ``solutions/<assignment>/grading.py``: the reference implementations and the hidden cases.

    It lives only on the instructor's side (nbgrader's release ignores it), so the student side of the course,
    ``exercises/`` and this package, carries no reference implementation.
    """
    source = os.environ.get("TFDL_SOURCE_DIR")  # the course's source folder, set by the grader (autograder.course)
    path = (Path(source) if source else course_root() / "solutions") / assignment / "grading.py"
    if not path.is_file():
        raise HiddenChecksUnavailable(
            f"The hidden checks of '{assignment}' run only when an instructor grades the assignment "
            f"({path} is not here). Run the visible checks with tests='visible'.")
    name = f"_tfdl_grading_{assignment}"
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path):
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------------------------------
# Verdict building blocks shared by the assignments
# --------------------------------------------------------------------------------------------------------------
def plain_value(call: StudentCall, what: str) -> dict:
    """Harness step: ``{"value": float64 array}`` from a student call, or ``{"error": message}``."""
    if not call.ok:
        return {"error": f"{what} raised {call.error}"}
    try:
        return {"value": as_array(call.value, f"the value returned by {what}")}
    except TypeError as exc:
        return {"error": str(exc)}


def error_verdict(out: dict) -> tuple[bool, str] | None:
    """The failing verdict of a harness output that carries an error, else None."""
    if out.get("error"):
        return False, out["error"]
    return None


def matches(got: np.ndarray, candidate: np.ndarray, rtol: float) -> bool:
    return got.shape == np.shape(candidate) and close(got, candidate, rtol=rtol)[0]


def ratio_hint(got: np.ndarray, expected: np.ndarray, what: str) -> tuple[float | None, str]:
    """``(c, hint)`` when ``got`` is (within 1 %) a constant multiple ``c != 1`` of ``expected``, else (None, "");
    also a hint when ``got`` has the transposed shape."""
    got = np.asarray(got, dtype=float)
    expected = np.asarray(expected, dtype=float)
    if got.shape != expected.shape:
        if got.ndim == 2 and got.shape == expected.shape[::-1]:
            return None, f"hint: your {what} has shape {got.shape} but {expected.shape} was expected: transposed?"
        return None, ""
    mask = np.abs(expected) > 1e-6 * np.max(np.abs(expected), initial=0.0)
    if not np.any(mask) or not np.all(np.isfinite(got)):
        return None, ""
    ratios = got[mask] / expected[mask]
    c = float(np.median(ratios))
    if c == 0 or abs(c - 1) < 1e-3 or not np.all(np.abs(ratios - c) <= 0.01 * abs(c)):
        return None, ""
    return c, f"hint: your {what} is about {c:.4g} times the expected one everywhere"


def compare(got, expected, *, what: str, rtol: float, atol: float = 0.0, variants: dict | None = None,
            fallback: Callable[[np.ndarray, np.ndarray, str], str] | None = None) -> tuple[bool, str]:
    """Compare with the expected array (tolerance ``atol + rtol * max|expected|``); on failure say where and how,
    and name the known mistake (a key of ``variants``: hint -> the answer that mistake gives) the answer matches,
    else the ``fallback`` hint (by default: a constant factor)."""
    passed, message = close(got, expected, rtol=rtol, atol=atol)
    if passed:
        return True, ""
    lines = [f"{what}: {message}"]
    for hint, candidate in (variants or {}).items():
        if matches(np.asarray(got, dtype=float), np.asarray(candidate, dtype=float), rtol):
            lines.append("hint: " + hint)
            break
    else:
        extra = fallback(got, expected, what) if fallback else ratio_hint(got, expected, what)[1]
        if extra:
            lines.append(extra)
    return False, "\n".join(lines)


def judge_purity(outs: list[tuple[str, dict]], credited: bool = True) -> tuple[bool, str]:
    """Verdict: no call modified its inputs.  It passes only when every call returned a value and ``credited``
    (pass: at least one answer of the part was right): a function that raises, or returns a constant, has not
    shown anything by leaving its inputs alone, so a stub earns nothing here."""
    failed = [name for name, out in outs if out.get("error")]
    if failed:
        return False, f"not checked: your function did not return a value in {len(failed)} of {len(outs)} cases"
    if not credited:
        return False, "not credited: none of the answers checked above is right yet"
    changed = [name for name, out in outs if out.get("modified")]
    return (not changed), ("modified in place in: " + "; ".join(changed) if changed else "")


def run_cases(report: Report, cases, harness: Callable[[dict], dict], judge: Callable[[dict, dict], tuple],
              purity_what: str) -> None:
    """Run each case (a dict with a ``name``) through the harness and its verdict, then one check that no call
    modified its inputs (harness outputs carry ``modified``)."""
    outs, verdicts = [], []
    for case in cases:
        out = harness(case)
        outs.append((case["name"], out))
        verdicts.append(report.check(case["name"], lambda: judge(case, out)))
    report.check(f"leaves {purity_what} unchanged",
                 lambda: judge_purity(outs, credited=any(v.passed for v in verdicts)))


# --------------------------------------------------------------------------------------------------------------
# Purity: what a call may not change (book/conventions.md rule 7)
# --------------------------------------------------------------------------------------------------------------
def snapshot(obj: Any) -> Any:
    """A copy of everything of ``obj`` a graded function must leave as it was: an array's bits and dtype, a
    tensor's values, dtype and ``requires_grad``, a module's parameters (values, dtype, ``requires_grad``,
    ``.grad``), buffers and train/eval mode; lists, tuples and dicts element by element; anything else: nothing."""
    import torch

    if isinstance(obj, np.ndarray):
        return ("array", obj.dtype, obj.shape, obj.tobytes())
    if isinstance(obj, torch.Tensor):
        t = obj.detach()
        return ("tensor", t.dtype, tuple(t.shape), obj.requires_grad, t.clone())
    if isinstance(obj, torch.nn.Module):
        params = [(n, snapshot(p), None if p.grad is None else p.grad.detach().clone())
                  for n, p in obj.named_parameters()]
        buffers = [(n, snapshot(b)) for n, b in obj.named_buffers()]
        return ("module", params, buffers, [m.training for m in obj.modules()])
    if isinstance(obj, (list, tuple)):
        return ("seq", [snapshot(x) for x in obj])
    if isinstance(obj, dict):
        return ("dict", {k: snapshot(v) for k, v in obj.items()})
    return None


def unchanged(before: Any, obj: Any) -> bool:
    """``obj`` is as :func:`snapshot` saw it (bit for bit; NaNs compare equal to themselves)."""
    import torch

    now = snapshot(obj)
    if before is None or now is None:
        return before is None and now is None
    if before[0] != now[0]:
        return False
    kind = before[0]
    if kind == "array":
        return before == now
    if kind == "tensor":
        return _same_snapshot(before, now)
    if kind == "module":
        if len(before[1]) != len(now[1]) or [n for n, _, _ in before[1]] != [n for n, _, _ in now[1]]:
            return False
        for (_, p0, g0), (_, p1, g1) in zip(before[1], now[1]):
            if not _same_snapshot(p0, p1) or (g0 is None) != (g1 is None) or (
                    g0 is not None and not torch.equal(g0, g1)):
                return False
        return (len(before[2]) == len(now[2]) and all(_same_snapshot(a, b) for (_, a), (_, b) in
                                                      zip(before[2], now[2])) and before[3] == now[3])
    if kind == "seq":
        return len(before[1]) == len(obj) and all(unchanged(b, x) for b, x in zip(before[1], obj))
    if kind == "dict":
        return before[1].keys() == obj.keys() and all(unchanged(before[1][k], obj[k]) for k in obj)
    return True


def _same_snapshot(a, b) -> bool:
    import torch
    if a[0] != b[0] or a[1:4] != b[1:4]:
        return False
    x, y = a[4], b[4]
    if x.is_floating_point():
        return bool(torch.equal(torch.isnan(x), torch.isnan(y))) and torch.equal(torch.nan_to_num(x),
                                                                                  torch.nan_to_num(y))
    return torch.equal(x, y)


def rtol_for(*arrays, float64: float, float32: float) -> float:
    """The relative tolerance for a case whose inputs are ``arrays``: ``float32`` when any of them is a float32
    numpy array or tensor (set it from the measured float32 error of correct implementations on that very input,
    book/conventions.md rule 10), else ``float64``."""
    import torch
    for a in arrays:
        if (isinstance(a, np.ndarray) and a.dtype == np.float32) or (
                isinstance(a, torch.Tensor) and a.dtype == torch.float32):
            return float32
    return float64


# --------------------------------------------------------------------------------------------------------------
# Declaring a topic: its parts, their points and their checks, written once
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Part:
    """One graded function (or class) of an assignment.

    ``name`` is the student's name for it; its grade cell has grade id ``check_<name>`` and calls
    ``check_<name>(<name>, tests)``. ``points`` is the one place its points are written: the release step
    (``tfdl release``) writes them into the grade cell's metadata. ``visible(report, fn)`` adds the checks a
    student sees; ``hidden(report, fn, grading)`` adds the hidden ones, with ``grading`` the instructor module
    ``solutions/<a>/grading.py`` (references and hidden cases). Both add checks through ``report.call`` (the
    harness: student code to plain data) and ``report.judge`` / ``report.check`` (the verdicts); the purity
    check ("leaves its inputs unchanged") is added after them, over every ``report.call``.

    **A per-student variant of the hidden checks**: ``variant={param: (option, ...)}`` (numbers or text, distinct
    as text) and ``variant_cases``, the name of a function of ``grading.py`` that takes exactly those parameters as
    keyword arguments and returns the hidden case(s) made from them (plain data, in the format of the part's other
    hidden cases). Each student's value of each parameter is drawn by :func:`autograder.variants.draw` from the
    part's name and the student's id, the same way as a derivation's; ``hidden`` adds
    ``report.own_cases(grading)`` (the graded student's cases, named with their values) to its cases. The graded
    student is :func:`autograder.variants.graded_student` (the nbgrader id); when no student is being graded (the
    instructor's own run of the solution, ``tfdl validate``) the values are those of the default id
    :data:`autograder.variants.DEFAULT_ID` (``""``), so the hidden checks still run. The visible checks say which
    values the student's hidden checks use. A malformed declaration raises here (at import); a case function that
    is missing, takes other parameters or fails is reported by :meth:`problems`, so that the release and the
    graders stop before any student is graded.
    """

    name: str
    points: float
    visible: Callable[["Report", Callable], None]
    hidden: Callable[["Report", Callable, Any], None] | None = None
    purity: str | None = "its inputs"  # what the purity check names; None: the part adds its own
    variant: dict = field(default_factory=dict)
    variant_cases: str = ""

    def __post_init__(self):
        _check_variant(self.name, self.variant, self.variant_cases, self.hidden)

    @property
    def grade_id(self) -> str:
        return f"check_{self.name}"

    def student_values(self, student: str | None = None) -> tuple[str, dict]:
        """(the student's id, their values of the variant's parameters): ``student``, else the graded student,
        else the default id; ``{}`` for a part without a variant."""
        from . import variants
        if student is None:
            student = variants.graded_student() or variants.DEFAULT_ID
        return student, variants.values(self.name, student, self.variant) if self.variant else {}

    def problems(self, grading) -> list[str]:
        """What is wrong with this part's instructor side (``grading``: ``solutions/<a>/grading.py``): the variant's
        case function must exist, take exactly the variant's parameters and make named cases from the default
        values. The release and the graders' preflight (autograder.release.validate_source) stop on these."""
        if not self.variant:
            return []
        import inspect
        where = f"part {self.name!r}: variant_cases={self.variant_cases!r}"
        fn = getattr(grading, self.variant_cases, None)
        if not callable(fn):
            return [f"{where}: grading.py defines no function {self.variant_cases}({', '.join(self.variant)})"]
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            params = None
        if params is not None and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            unknown = [n for n in self.variant if n not in params]
            missing = [n for n, p in params.items() if n not in self.variant and p.default is p.empty
                       and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            out = [f"{where}: the variant parameter {n!r} is not a parameter of {self.variant_cases}"
                   f"({', '.join(params)})" for n in unknown]
            out += [f"{where}: {self.variant_cases} needs {n!r}, which the variant does not declare" for n in missing]
            if out:
                return out
        from .variants import DEFAULT_ID
        _, values = self.student_values(DEFAULT_ID)
        try:
            cases = fn(**values)
        except Exception as exc:  # noqa: BLE001 - the instructor's error, reported
            return [f"{where}: {self.variant_cases}({_values_text(values)}) raised {type(exc).__name__}: {exc}"]
        cases = [cases] if isinstance(cases, dict) else cases
        if not isinstance(cases, (list, tuple)) or not cases or not all(
                isinstance(c, dict) and isinstance(c.get("name"), str) for c in cases):
            return [f"{where}: {self.variant_cases}(...) must return a case (a dict with a 'name') or a non-empty "
                    f"list of them, not {cases!r:.80}"]
        return []

    def variant_note(self, tests: str) -> str | None:
        """The line under a part's checks that says which values the student's hidden checks use: in a student's
        own (visible) run, drawn from the notebook's course id (:func:`autograder.variants.session_id`)."""
        if not self.variant_cases or tests != "visible":
            return None
        from . import variants
        student = variants.session_id()
        if not student:
            return (f"Your hidden checks of {self.name} use your own values of {', '.join(self.variant)}: type your "
                    f"course id at the top of the notebook ({variants.ID_NAME} = \"...\") and run it to see them.")
        _, values = self.student_values(student)
        return (f"Your hidden checks of {self.name} use {_values_text(values)}, drawn from your course id "
                f"{student!r}.")


def _values_text(values: dict) -> str:
    return ", ".join(f"{k} = {v}" for k, v in values.items())


def _check_variant(name: str, variant, cases: str, hidden) -> None:
    """Refuse a malformed variant declaration (an instructor's mistake) with a message saying what to fix."""
    where = f"part {name!r}"
    if not isinstance(variant, dict):
        raise ValueError(f"{where}: variant must be a dict {{parameter: (option, ...)}}, not {variant!r:.80}")
    if bool(variant) != bool(cases):
        raise ValueError(f"{where}: a variant needs variant_cases (the grading.py function making the student's "
                         f"hidden cases) and variant_cases needs a variant")
    if variant and hidden is None:
        raise ValueError(f"{where}: a variant varies the hidden checks, and the part has none")
    for param, options in variant.items():
        if not isinstance(param, str) or not param.isidentifier():
            raise ValueError(f"{where}: the variant parameter {param!r} is not a Python name")
        if not isinstance(options, (tuple, list)) or not options:
            raise ValueError(f"{where}: the variant parameter {param!r} needs a non-empty tuple of options, not "
                             f"{options!r:.80}")
        for o in options:
            if isinstance(o, bool) or not isinstance(o, (int, float, str, np.integer, np.floating)):
                raise ValueError(f"{where}: option {o!r:.40} of {param!r} is not a number or a text")
        texts = [str(o) for o in options]
        if len(set(texts)) != len(texts):
            raise ValueError(f"{where}: the options of {param!r} must be distinct as text: {texts}")


@dataclass(frozen=True)
class Written:
    """A manually graded answer (a markdown or code solution cell with ``grade: true``) and its points."""

    grade_id: str
    points: float


class Topic:
    """The graded parts of one assignment, declared once (``TOPIC = Topic("kernels", [Part(...), ...])`` in
    ``autograder/<a>.py``). ``TOPIC.points`` maps every grade id to its points; ``TOPIC.check(name, fn, tests)``
    runs a part's checks and returns its score; ``TOPIC.checker(name)`` is the ``check_<name>`` a grade cell
    calls."""

    def __init__(self, assignment: str, parts: list):
        self.assignment = assignment
        self.parts = list(parts)
        ids = [p.grade_id for p in self.parts]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{assignment}: a grade id is declared twice: {ids}")

    @property
    def points(self) -> dict[str, float]:
        """grade id -> points, in declaration order (auto parts and written ones)."""
        return {p.grade_id: float(p.points) for p in self.parts}

    @property
    def max_score(self) -> float:
        return float(sum(p.points for p in self.parts))

    def part(self, name: str) -> Part:
        for p in self.parts:
            if isinstance(p, Part) and p.name == name:
                return p
        raise KeyError(f"{self.assignment} has no graded function {name!r}")

    def check(self, name: str, fn: Callable, tests: str = "visible", points: float | None = None) -> "Score":
        """Run the checks of part ``name`` on the student's ``fn``; ``tests="all"`` adds the hidden checks."""
        part = self.part(name)
        if points is not None and float(points) != float(part.points):
            raise ValueError(f"check_{name}: {points} points asked for, the topic declares {part.points}")
        return self.report(name, fn, tests).score()

    def report(self, name: str, fn: Callable, tests: str = "visible", student: str | None = None) -> Report:
        """The :class:`Report` of part ``name``'s checks on ``fn``, not printed: the hidden ones (``tests="all"``)
        with the variant of ``student`` (default: the graded student, see :meth:`Part.student_values`)."""
        part = self.part(name)
        if tests not in ("visible", "all"):
            raise ValueError(f"tests must be 'visible' or 'all', not {tests!r}")
        if student is not None:
            from .variants import grading_student
            with grading_student(student):
                return self.report(name, fn, tests)
        report = Report(name, float(part.points), tests)
        if part.variant_cases:  # (a derivation draws its own values: autograder.derivation)
            report.student, report.variant = part.student_values()
            report.variant_cases = part.variant_cases
            note = part.variant_note(tests)
            if note:
                report.notes.append(note)
        _PRINTED.append(report.printed)
        try:
            part.visible(report, fn)
            if tests == "all" and part.hidden is not None:
                part.hidden(report, fn, instructor_module(self.assignment))
        finally:
            del _PRINTED[next(i for i, sink in enumerate(_PRINTED) if sink is report.printed)]
        report.apply_gates()
        if part.purity is not None:
            report.purity(part.purity)
        return report

    def checker(self, name: str) -> Callable:
        """``check_<name>(fn, tests="visible")``: the entry point of the part's grade cell."""
        part = self.part(name)

        def check(fn: Callable, tests: str = "visible", points: float | None = None) -> Score:
            return self.check(name, fn, tests, points)

        check.__name__ = check.__qualname__ = part.grade_id
        check.__doc__ = (f"Check ``{name}`` ({part.points:g} points): the visible checks, and with "
                         f"``tests='all'`` the hidden ones. Prints what passed and what did not; returns the score.")
        return check
