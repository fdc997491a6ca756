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
import importlib.util
import io
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = [
    "StudentCall", "call_student", "as_array", "plain_value", "Verdict", "close", "compare", "matches",
    "ratio_hint", "error_verdict", "judge_purity", "run_cases", "Report", "Score", "instructor_module",
    "HiddenChecksUnavailable", "fmt",
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
    return StudentCall(value, error, printed)


def _describe_exception(exc: BaseException) -> str:
    name = type(exc).__name__
    text = str(exc)
    if isinstance(exc, NotImplementedError):
        return "NotImplementedError: this function is not implemented yet"
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r}): your function called sys.exit()"
    return f"{name}: {text}" if text else name


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
@dataclass
class Verdict:
    """The outcome of one check: a description of the input, whether it passed, and feedback."""

    name: str
    passed: bool
    message: str = ""
    weight: float = 1.0


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
    return False, (f"{int(bad.sum())} of {got.size} entries off; worst{where}: expected {fmt(expected[idx])}, "
                   f"got {fmt(got[idx])}")


# --------------------------------------------------------------------------------------------------------------
# Reports and scores
# --------------------------------------------------------------------------------------------------------------
class Score(float):
    """A float whose display is the bare number, so that nbgrader reads it as the cell's partial credit."""

    def __repr__(self) -> str:
        return f"{float(self):g}"

    __str__ = __repr__


@dataclass
class Report:
    """The verdicts of one graded part and its score (partial credit in proportion to the passed weight)."""

    part: str
    points: float
    tests: str = "visible"
    verdicts: list[Verdict] = field(default_factory=list)

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

    @property
    def fraction(self) -> float:
        total = sum(v.weight for v in self.verdicts)
        return sum(v.weight for v in self.verdicts if v.passed) / total if total else 0.0

    @property
    def earned(self) -> float:
        # Round down to a hundredth of a point, so that a tiny failure never rounds up to full marks.
        return float(np.floor(self.points * self.fraction * 100 + 1e-9) / 100)

    def text(self) -> str:
        passed = sum(v.passed for v in self.verdicts)
        scope = "visible checks" if self.tests == "visible" else "all checks"
        lines = [f"{self.part}: {passed} of {len(self.verdicts)} {scope} passed "
                 f"-> {self.earned:g} of {self.points:g} points"]
        for v in self.verdicts:
            mark = "pass" if v.passed else "FAIL"
            lines.append(f"  [{mark}] {v.name}")
            if not v.passed and v.message:
                lines.extend("         " + line for line in v.message.splitlines())
        if self.tests == "visible" and self.fraction == 1.0:
            lines.append("  The hidden checks (other settings, larger inputs) run when your work is graded.")
        return "\n".join(lines)

    def score(self) -> Score:
        """Print the feedback and return the points, for the last line of the grade cell."""
        print(self.text())
        return Score(self.earned)


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
    path = course_root() / "solutions" / assignment / "grading.py"
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


def compare(got, expected, *, what: str, rtol: float, variants: dict | None = None,
            fallback: Callable[[np.ndarray, np.ndarray, str], str] | None = None) -> tuple[bool, str]:
    """Compare with the expected array (tolerance ``rtol * max|expected|``); on failure say where and how, and
    name the known mistake (a key of ``variants``: hint -> the answer that mistake gives) the answer matches,
    else the ``fallback`` hint (by default: a constant factor)."""
    passed, message = close(got, expected, rtol=rtol)
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
