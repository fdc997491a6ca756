"""Derivation parts: a closed-form answer written as a SymPy expression, graded by equivalence to a reference.

A derivation part is declared in ``TOPIC`` beside the ``Part`` s (``Derivation(name, points, symbols=..., domain=...,
reference=...)``) and graded like every part: its grade cell calls ``check_<name>(<name>, tests)``. The student
assigns ``<name> = <SymPy expression>`` in a solution cell, in the symbols a locked cell of the notebook declares.

How the answer is read, and why so:

* The answer crosses to the verdict **as text** (``sympy.sstr`` of the expression, computed where the student's
  object lives: in the Jupyter kernel for plain nbgrader, in the sandbox for the isolated engine, which encodes a
  SymPy object as its text; at most :data:`MAX_CHARS` characters). A plain string or a number is read the same way.
* The text is checked against a whitelist before anything evaluates it (:func:`validate`: Python syntax made only
  of numbers, the declared symbols, the functions and constants of :data:`FUNCTIONS`, arithmetic, comparisons and
  tuples; no attribute, subscript, keyword, lambda or string), then parsed by
  ``sympy.parsing.sympy_parser.parse_expr`` with a ``global_dict`` holding exactly those names (and empty
  ``__builtins__``). Student code is never ``eval`` -ed by the grader.
* Parsing and evaluating happen in a short-lived child process (:func:`judge`) under a wall-clock limit and a
  memory limit, so that ``10**10**10`` or a ``simplify`` that never ends costs that part, never the grader. The
  child is forked from a warm evaluator process that has SymPy imported (one per grading process, started on first
  use): a fresh process per answer without Python's start-up each time.

Equivalence (the verdict): the student's and the reference expressions are evaluated (30 significant digits) at
seeded random points of the declared domain; points where the reference is not finite and real are replaced by
others, and so are points where only the student's is not (but more than 5 % of those fail the check). Equal
everywhere sampled (``|s - r| <= atol + rtol |r|``, ``rtol`` 1e-9 for an exact expression and 1e-6 for one with
floating-point constants, ``atol`` 1e-9 times the median ``|r|`` and at least 1e-12) is full marks; a disagreement
is 0 with feedback: the point, both values, and a hint for known slips (a constant ratio 2, 1/2, -1, a ratio equal to
a symbol such as ``d`` or ``1/d``, a constant offset, the instructor's named slips, agreement in one regime of a
piecewise answer only). Where the numbers are inconclusive (the answer undefined at more than 5 % of the points),
``sympy.simplify(student - reference) == 0`` is tried under a signal-based time limit in the child: a proof of
equality is then full marks. Simplification is never required: equal numbers are full marks.
"""
from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .core import Part, Report

__all__ = ["Derivation", "FUNCTIONS", "MAX_CHARS", "ExpressionError", "expression_text", "validate", "parse",
           "symbols_for", "sample_points", "judge"]

MAX_CHARS = 5000  # characters of an answer's text
TIMEOUT = 30.0  # seconds for the child process that parses and evaluates (its start-up included)
SIMPLIFY_SECONDS = 2.0  # of that, at most this long for sympy.simplify (where the numbers are inconclusive)
MEMORY_MB = 2048  # address space of the child process

# The functions and constants an answer may use (SymPy's own, and the numpy names students reach for first).
_SYMPY_NAMES = ("sqrt", "cbrt", "root", "exp", "log", "sin", "cos", "tan", "cot", "sec", "csc", "asin", "acos",
                "atan", "atan2", "acot", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "Abs", "sign",
                "Heaviside", "Max", "Min", "Piecewise", "floor", "ceiling", "frac", "factorial", "binomial",
                "gamma", "erf", "erfc", "Rational", "Integer", "Float", "pi", "E", "I", "oo", "zoo", "nan",
                "And", "Or", "Not", "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "re", "im", "true", "false")
_ALIASES = {"arcsin": "asin", "arccos": "acos", "arctan": "atan", "arctan2": "atan2", "arcsinh": "asinh",
            "arccosh": "acosh", "arctanh": "atanh", "ln": "log", "abs": "Abs", "Pi": "pi", "e": "E", "inf": "oo",
            "ceil": "ceiling", "heaviside": "Heaviside", "Mod": "Mod"}
FUNCTIONS = tuple(sorted(set(_SYMPY_NAMES) | set(_ALIASES)))

_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.Mod, ast.BitAnd, ast.BitOr)
_UNARY = (ast.UAdd, ast.USub, ast.Invert)
_COMPARE = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)


class ExpressionError(ValueError):
    """An answer that cannot be graded as an expression; the message is for the student."""


# ==================================================================================================================
# From the student's value to checked text (the grader's side: nothing here evaluates the answer)
# ==================================================================================================================
def expression_text(value: Any, name: str) -> str:
    """The text of the student's answer: a SymPy object's ``sstr``, a string as it is, a number's ``repr``.

    Raises :class:`ExpressionError` with a message for the student for anything else (None: not answered yet)."""
    if value is None:
        raise ExpressionError(f"{name} is None: not implemented yet. Assign your SymPy expression to {name} in the "
                              f"solution cell above (e.g. {name} = 2*x/(1 + x**2)).")
    mod = type(value).__module__ or ""
    if mod.startswith("sympy"):
        import sympy
        if isinstance(value, sympy.Basic):
            text = sympy.sstr(value)
        else:
            raise ExpressionError(f"{name} is a SymPy {type(value).__name__}, not an expression: write an "
                                  f"expression in the declared symbols")
    elif type(value) is str:
        text = value
    elif type(value) in (int, float) or (mod == "numpy" and type(value).__name__ in (
            "float64", "float32", "int64", "int32")):
        text = repr(float(value)) if "float" in type(value).__name__ else str(int(value))
    elif callable(value):
        raise ExpressionError(f"{name} is a function; expected a SymPy expression in the declared symbols "
                              f"(assign the expression itself, not a function that computes it)")
    else:
        raise ExpressionError(f"{name} is a {type(value).__name__}; expected a SymPy expression in the declared "
                              f"symbols")
    if len(text) > MAX_CHARS:
        raise ExpressionError(f"{name} is {len(text)} characters long as text (at most {MAX_CHARS}): simplify it")
    if not text.strip():
        raise ExpressionError(f"{name} is empty")
    return text


def validate(text: str, symbols) -> None:
    """Refuse (``ExpressionError``) any text that is not an arithmetic expression in ``symbols`` (names) and the
    whitelisted :data:`FUNCTIONS`: no attribute access, subscript, keyword argument, lambda, string or other name.
    Nothing is evaluated."""
    if len(text) > MAX_CHARS:
        raise ExpressionError(f"the expression is {len(text)} characters long (at most {MAX_CHARS})")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        msg = getattr(exc, "msg", None) or type(exc).__name__
        raise ExpressionError(f"this is not a valid expression ({msg}): {_short(text)}") from None
    allowed = set(symbols)
    unknown = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Expression, ast.Load, ast.Tuple, ast.And, ast.Or) + _BINOPS + _UNARY + _COMPARE):
            continue
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.BitXor):
                raise ExpressionError("^ is not a power in Python: write x**2 for x squared")
            if not isinstance(node.op, _BINOPS):
                raise ExpressionError(f"the operator {type(node.op).__name__} is not allowed in an expression")
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, _UNARY):
                raise ExpressionError(f"the operator {type(node.op).__name__} is not allowed in an expression")
        elif isinstance(node, ast.Compare):
            if not all(isinstance(op, _COMPARE) for op in node.ops):
                raise ExpressionError("only <, <=, > and >= comparisons are allowed (in Piecewise conditions)")
        elif isinstance(node, ast.BoolOp):
            pass
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                what = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)[:40]
                raise ExpressionError(f"{what}(...) is not an allowed function; allowed: {', '.join(_SYMPY_NAMES[:26])}"
                                      f", ... (SymPy's names)")
            if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
                raise ExpressionError("keyword or starred arguments are not allowed in an expression")
        elif isinstance(node, ast.Name):
            if node.id not in allowed and node.id not in FUNCTIONS:
                unknown.append(node.id)
        elif isinstance(node, ast.Constant):
            if type(node.value) not in (int, float, bool):
                raise ExpressionError(f"the constant {node.value!r:.40} is not a number")
        else:
            raise ExpressionError(f"{type(node).__name__} ({ast.unparse(node)[:40]}) is not allowed in an "
                                  f"expression")
    if unknown:
        names = ", ".join(sorted(set(unknown)))
        raise ExpressionError(f"the expression uses {names}, which {'is' if len(set(unknown)) == 1 else 'are'} "
                              f"not declared: use only {', '.join(symbols)} and SymPy functions")


def _short(text: str, n: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 3] + "..."


# ==================================================================================================================
# Symbols and domains
# ==================================================================================================================
def _intervals(spec) -> tuple[str, list]:
    """``("int", [lo, hi])`` for a ``range``, ``("real", [(lo, hi), ...])`` for an interval or a list of them."""
    if isinstance(spec, range):
        if len(spec) == 0 or spec.step != 1:
            raise ValueError(f"an integer domain must be a non-empty range with step 1, not {spec}")
        return "int", [spec.start, spec.stop - 1]
    if isinstance(spec, tuple) and len(spec) == 2 and all(isinstance(v, (int, float)) for v in spec):
        spec = [spec]
    if isinstance(spec, list) and spec and all(isinstance(iv, tuple) and len(iv) == 2 and iv[0] < iv[1]
                                               for iv in spec):
        return "real", [(float(a), float(b)) for a, b in spec]
    raise ValueError(f"a domain is (low, high), a list of such intervals, or a range of integers; not {spec!r}")


def assumptions_for(spec) -> dict:
    """SymPy assumptions that hold on a domain (so that e.g. ``sqrt(r**2) == r`` for a norm)."""
    kind, iv = _intervals(spec)
    if kind == "int":
        out = {"integer": True}
        if iv[0] > 0:
            out["positive"] = True
        elif iv[1] < 0:
            out["negative"] = True
        return out
    out = {"real": True}
    if all(a >= 0 for a, _ in iv):
        out["positive"] = True
    elif all(b <= 0 for _, b in iv):
        out["negative"] = True
    elif not any(a < 0 < b for a, b in iv):
        out["nonzero"] = True
    return out


def symbols_for(names, domain: dict) -> dict:
    """name -> ``sympy.Symbol`` with the assumptions of its domain."""
    import sympy
    return {n: sympy.Symbol(n, **assumptions_for(domain[n])) for n in names}


def sample_points(names, domain: dict, n: int, seed: int) -> list[list]:
    """``n`` seeded points of the domain, one value per name (uniform on the intervals, by length; integers
    uniform on their range)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    columns = []
    for name in names:
        kind, iv = _intervals(domain[name])
        if kind == "int":
            columns.append([int(v) for v in rng.integers(iv[0], iv[1] + 1, size=n)])
            continue
        lengths = np.array([b - a for a, b in iv])
        which = rng.choice(len(iv), size=n, p=lengths / lengths.sum())
        u = rng.uniform(size=n)
        columns.append([float(iv[k][0] + (iv[k][1] - iv[k][0]) * t) for k, t in zip(which, u)])
    return [list(p) for p in zip(*columns)]


# ==================================================================================================================
# Parsing (in the child process, and in tests): the whitelist as parse_expr's only namespace
# ==================================================================================================================
def _namespace(symbols: dict) -> dict:
    import sympy
    ns = {"__builtins__": {}}
    for name in _SYMPY_NAMES:
        ns[name] = getattr(sympy, name)
    for alias, name in _ALIASES.items():
        ns[alias] = getattr(sympy, name)
    ns.update({"Symbol": sympy.Symbol, "Function": sympy.Function})  # parse_expr's own generated names
    ns.update(symbols)
    return ns


def parse(text: str, symbols: dict):
    """The SymPy expression of a validated text, in ``symbols`` (name -> Symbol); ``ExpressionError`` otherwise.

    ``parse_expr`` sees only the whitelist (``local_dict`` the declared symbols, ``global_dict`` the functions and
    empty ``__builtins__``), after :func:`validate` has refused every other name and construct."""
    import sympy
    from sympy.parsing.sympy_parser import parse_expr, standard_transformations
    validate(text, list(symbols))
    try:
        expr = parse_expr(text, local_dict=dict(symbols), global_dict=_namespace(symbols),
                          transformations=standard_transformations)
    except Exception as exc:  # noqa: BLE001 - any failure is the student's message
        raise ExpressionError(f"SymPy could not read this expression ({type(exc).__name__}: {_short(exc, 120)})") \
            from None
    if isinstance(expr, (int, float)):
        expr = sympy.sympify(expr)
    if not isinstance(expr, sympy.Expr):
        raise ExpressionError(f"this is a {type(expr).__name__}, not an expression with a value "
                              f"(a condition or a tuple?): {_short(text)}")
    extra = {s.name for s in expr.free_symbols} - set(symbols)
    if extra:
        raise ExpressionError(f"the expression uses undeclared symbols: {', '.join(sorted(extra))}")
    return expr


# ==================================================================================================================
# The child process: parse, evaluate, compare (JSON in on stdin, JSON lines out on stdout)
# ==================================================================================================================
def _value(expr, subs: dict) -> complex | None:
    """The expression's value at a point (30 digits), or None when it is not a finite number."""
    import sympy
    try:
        v = sympy.N(expr.xreplace(subs), 30)
        c = complex(v)
    except Exception:  # noqa: BLE001 - e.g. zoo, nan, an unevaluated Piecewise
        return None
    if not (math.isfinite(c.real) and math.isfinite(c.imag)):
        return None
    return c


def _is_real(c: complex) -> bool:
    return abs(c.imag) <= 1e-12 * max(1.0, abs(c.real))


def _fmt(x: float) -> str:
    return f"{x:.10g}"


def _run_job(job: dict) -> None:  # pragma: no cover - runs in a child of the evaluator (tests reach it through judge)
    """Grade one job (the body of a forked child): limits first, then numbers, then (maybe) simplify; each phase's
    verdict is one JSON line on standard output."""
    import resource
    try:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_MB * 2 ** 20,) * 2)
        cpu = int(TIMEOUT) + 5  # the grader kills it at its wall-clock limit; this bounds an orphan too
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    except (ValueError, OSError):
        pass

    def emit(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    try:
        numeric = _evaluate(job)
    except ExpressionError as exc:
        emit({"phase": "numeric", "error": str(exc)})
        return
    except MemoryError:
        emit({"phase": "numeric", "error": "evaluating your expression ran out of memory"})
        return
    except BaseException as exc:  # noqa: BLE001 - reported as the last line of a traceback would be
        emit({"phase": "failed", "error": f"{type(exc).__name__}: {exc}"[:2000]})
        return
    emit(numeric)
    # simplify only where it can change the verdict: where the numbers were inconclusive (the answer is undefined at
    # many points of the domain, e.g. a removable 0/0 SymPy does not cancel); never after a numeric pass (full marks
    # already) or a plain numeric disagreement (exact 30-digit values that differ).
    if job.get("reference") and job.get("simplify") and numeric.get("inconclusive"):
        emit({"phase": "symbolic", "equal": _symbolic(job, SIMPLIFY_SECONDS)})


def _server() -> None:  # pragma: no cover - the evaluator process (tests reach it through judge)
    """The evaluator: SymPy imported once, then one forked child per job (a line of JSON on standard input), so
    that every answer is parsed in a fresh process under its own limits without paying for Python and SymPy's
    start-up (~0.5 s) each time. After each child it writes ``{"phase": "done"}``. It ends with its input."""
    import sympy  # noqa: F401 - imported before any fork: the children share it
    from sympy.parsing import sympy_parser  # noqa: F401
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                _run_job(json.loads(line))
                code = 0
            finally:  # out without the evaluator's own clean-up, whatever happened
                with contextlib.suppress(BaseException):
                    sys.stdout.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        sys.stdout.write(json.dumps({"phase": "done", "code": os.waitstatus_to_exitcode(status)}) + "\n")
        sys.stdout.flush()


class _OutOfTime(Exception):
    pass


def _symbolic(job, seconds: float) -> bool | None:
    """``simplify(student - reference) == 0`` under a signal-based time limit (None: out of time)."""
    import signal

    import sympy

    def stop(*_):
        raise _OutOfTime

    symbols = _symbols_of(job)
    s, r = parse(job["student"], symbols), parse(job["reference"], symbols)
    signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return bool(sympy.simplify(s - r) == 0)
    except _OutOfTime:
        return None
    except Exception:  # noqa: BLE001 - simplify failing proves nothing
        return False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _symbols_of(job) -> dict:
    import sympy
    return {n: sympy.Symbol(n, **a) for n, a in job["symbols"]}


def _evaluate(job: dict) -> dict:
    """Numbers first: parse, evaluate at the points, compare, hint."""
    import sympy
    symbols = _symbols_of(job)
    names = [n for n, _ in job["symbols"]]
    student = parse(job["student"], symbols)
    out = {"phase": "numeric", "parsed": _short(sympy.sstr(student), 300)}
    floats = bool(student.atoms(sympy.Float))
    rtol = 1e-6 if floats else 1e-9
    points = job["points"]

    def number(v):  # an int, a float, or the exact text of a variant's fixed value
        return sympy.Integer(v) if isinstance(v, int) else parse(v, {}) if isinstance(v, str) else sympy.Float(v, 30)

    def subs_of(p):
        return {symbols[n]: number(v) for n, v in zip(names, p)}

    # Examples: (point, exact value text) pairs (visible checks).
    examples = []
    for point, want_text in job.get("examples", []):
        want = complex(sympy.N(parse(want_text, symbols), 30))
        got = _value(student, {symbols[n]: parse(v, {}) for n, v in point.items()})
        ok = got is not None and _is_real(got) and abs(got.real - want.real) <= 1e-12 + rtol * abs(want.real)
        examples.append({"point": point, "want": want.real, "got": None if got is None else
                         (got.real if _is_real(got) else str(got)), "ok": ok})
    out["examples"] = examples

    if not job.get("reference"):  # the visible check: finite and real on the domain
        bad = None
        for p in points[: job["n"]]:
            v = _value(student, subs_of(p))
            if v is None or not _is_real(v):
                bad = {"point": dict(zip(names, p)), "value": None if v is None else str(v)}
                break
        out["finite"] = bad is None
        out["bad"] = bad
        return out

    reference = parse(job["reference"], symbols)
    slips = {hint: parse(text, symbols) for hint, text in (job.get("slips") or {}).items()}
    regimes = [(desc, parse_condition(text, symbols)) for desc, text in (job.get("regimes") or [])]
    used, s_vals, r_vals, student_bad = [], [], [], []
    for p in points:
        if len(used) >= job["n"]:
            break
        subs = subs_of(p)
        r = _value(reference, subs)
        if r is None or not _is_real(r):
            continue
        s = _value(student, subs)
        if s is None or not _is_real(s):
            student_bad.append((p, s))
            continue
        used.append(p)
        s_vals.append(s.real)
        r_vals.append(r.real)
    if len(used) < max(8, job["n"] // 2) and len(student_bad) == 0:
        raise RuntimeError(f"the reference is finite at only {len(used)} of {len(points)} points of the domain")
    out["points"] = len(used)
    if len(student_bad) > 0.05 * (len(used) + len(student_bad)):
        p, s = student_bad[0]
        out.update(equal=False, inconclusive=True, message=(
            f"your expression is not a finite real number at {len(student_bad)} of "
            f"{len(used) + len(student_bad)} sampled points, e.g. at {_point(names, p)}: "
            f"{'undefined' if s is None else s}"))
        return out
    scale = sorted(abs(r) for r in r_vals)[len(r_vals) // 2]
    atol = max(1e-12, 1e-9 * scale)
    agree = [abs(s - r) <= atol + rtol * abs(r) for s, r in zip(s_vals, r_vals)]
    if all(agree):
        out["equal"] = True
        return out
    k = agree.index(False)
    s, r = s_vals[k], r_vals[k]
    lines = [f"your expression differs from the expected one at {_point(names, used[k])}: expected {_fmt(r)}, "
             f"your expression gives {_fmt(s)} (off by {abs(s - r):.3g}, allowed {atol + rtol * abs(r):.3g}); "
             f"it agrees at {sum(agree)} of {len(agree)} sampled points"]
    try:
        lines += _hints(names, used, s_vals, r_vals, agree, slips, regimes, subs_of, rtol)
    except Exception:  # noqa: BLE001 - a hint that cannot be computed is left out, the verdict stands
        pass
    out.update(equal=False, message="\n".join(lines))
    return out


def parse_condition(text: str, symbols: dict):
    """A relational or boolean condition (a regime's description), parsed with the same whitelist."""
    from sympy.parsing.sympy_parser import parse_expr, standard_transformations
    validate(text, list(symbols))
    return parse_expr(text, local_dict=dict(symbols), global_dict=_namespace(symbols),
                      transformations=standard_transformations)


def _point(names, p) -> str:
    return ", ".join(f"{n} = {_fmt(v) if isinstance(v, float) else v}" for n, v in zip(names, p))


def _names_in(text: str) -> set:
    """The names a (validated) text uses, read from its syntax tree (nothing evaluated)."""
    return {node.id for node in ast.walk(ast.parse(text.strip(), mode="eval")) if isinstance(node, ast.Name)}


def _hints(names, points, s_vals, r_vals, agree, slips, regimes, subs_of, rtol) -> list[str]:
    """Hints for known slips, most specific first."""
    n = len(points)

    def same(a, b, tol=1e-7):
        return all(abs(x - y) <= tol * max(1.0, abs(y)) for x, y in zip(a, b))

    for hint, expr in slips.items():  # the instructor's named slips
        vals = [_value(expr, subs_of(p)) for p in points]
        if all(v is not None and _is_real(v) for v in vals) and same(s_vals, [v.real for v in vals]):
            return ["hint: " + hint]
    nz = [i for i in range(n) if abs(r_vals[i]) > 1e-12 and abs(s_vals[i]) > 1e-300]
    if len(nz) >= max(3, n // 2):
        ratios = [s_vals[i] / r_vals[i] for i in nz]
        c = sorted(ratios)[len(ratios) // 2]
        if all(abs(q - c) <= 1e-6 * abs(c) for q in ratios):
            named = {2.0: "twice the expected one: a factor 2 too many?",
                     0.5: "half the expected one: a factor 2 missing?",
                     -1.0: "the expected one with the opposite sign: a sign error?",
                     4.0: "4 times the expected one: a factor 2 counted twice?",
                     0.25: "a quarter of the expected one: two factors 2 missing?"}
            for value, text in named.items():
                if abs(c - value) <= 1e-6 * abs(value):
                    return ["hint: your answer is " + text]
            return [f"hint: your answer is {c:.6g} times the expected one everywhere sampled: a constant factor "
                    f"is off"]
        for j, name in enumerate(names):
            if any(isinstance(points[i][j], str) for i in nz):  # a variant's fixed value: it does not vary
                continue
            vals = [float(points[i][j]) for i in nz]
            if any(v == 0 for v in vals) or len(set(vals)) < 2:
                continue
            for power in (1, 2, -1, -2, 0.5, -0.5):
                if all(v > 0 for v in vals) or float(power).is_integer():
                    try:
                        target = [v ** power for v in vals]
                    except (ValueError, ZeroDivisionError):
                        continue
                    scaled = [q / t for q, t in zip(ratios, target)]
                    c = sorted(scaled)[len(scaled) // 2]
                    if c != 0 and all(abs(q - c) <= 1e-6 * abs(c) for q in scaled):
                        what = {1: name, -1: f"1/{name}"}.get(power, f"{name}**{power:g}")
                        what = what if abs(c - 1) <= 1e-6 else f"{c:.6g}*{what}"
                        return [f"hint: your answer is {what} times the expected one: a wrong power of {name} "
                                f"(a factor {what} too many, or 1/({what}) missing?)"]
    diffs = [s - r for s, r in zip(s_vals, r_vals)]
    c = sorted(diffs)[len(diffs) // 2]
    if abs(c) > 0 and all(abs(x - c) <= 1e-7 * max(1.0, abs(c)) for x in diffs):
        return [f"hint: your answer is the expected one plus the constant {c:.6g} everywhere sampled"]
    zero_s = [abs(v) <= 1e-12 for v in s_vals]
    zero_r = [abs(v) <= 1e-12 for v in r_vals]
    if any(zero_r) and not all(zero_r) and all(a != b for a, b in zip(zero_s, zero_r)):
        return ["hint: your answer is 0 exactly where the expected one is not, and not 0 where it is: the cases of "
                "your piecewise answer are swapped (check its condition)"]
    if 0 < sum(agree) < n:
        for desc, cond in regimes:
            inside = [bool(cond.xreplace(subs_of(p))) for p in points]
            ok_in = [a for a, i in zip(agree, inside) if i]
            ok_out = [a for a, i in zip(agree, inside) if not i]
            if ok_in and ok_out and all(ok_in) and not any(ok_out):
                return [f"hint: your answer is right where {desc} and wrong everywhere else: the formula of the "
                        f"other regime(s) of this piecewise answer is off"]
            if ok_in and ok_out and all(ok_out) and not any(ok_in):
                return [f"hint: your answer is wrong exactly where {desc} and right elsewhere: the formula of that "
                        f"regime of this piecewise answer is off"]
        return [f"hint: your answer agrees at {sum(agree)} of {n} sampled points and not at the others: is one "
                f"branch (regime) of a piecewise answer wrong, or a branch chosen by the wrong condition?"]
    return []


# ==================================================================================================================
# Running the child (the grader's side)
# ==================================================================================================================
def judge(student: str, symbols: dict, domain: dict, *, reference: str | None = None, n: int = 64, seed: int = 0,
          examples=(), slips: dict | None = None, regimes=(), simplify: bool = True,
          timeout: float = TIMEOUT, fixed: dict | None = None) -> dict:
    """Parse and evaluate the (validated) text ``student`` in a child process and compare it with ``reference``
    (a text, or None for the visible check: finite and real on the domain, and the ``examples``).

    ``symbols`` maps names to SymPy symbols; ``domain`` maps each name to its domain; ``fixed`` maps some names to
    an exact value (text) they take at every point (a student's variant, :mod:`autograder.variants`). Returns the
    child's numeric verdict (``{"equal": bool, "message": ...}`` or ``{"error": message}``), with ``"symbolic"`` True when
    ``simplify`` proved the difference 0 within the time left, False when it did not, None when it ran out of time.
    """
    validate(student, list(symbols))
    names = list(symbols)
    points = sample_points(names, domain, 4 * n if reference else n, seed)
    for j, name in enumerate(names):
        if name in (fixed or {}):
            validate(str(fixed[name]), [])
            for p in points:
                p[j] = str(fixed[name])
    job = {"student": student, "reference": reference, "n": n, "simplify": simplify,
           "symbols": [[name, symbols[name].assumptions0] for name in names],
           "points": points,
           "examples": [[{k: str(v) for k, v in p.items()}, str(v)] for p, v in examples],
           "slips": dict(slips or {}), "regimes": [list(r) for r in regimes]}
    lines, timed_out, failure = _EVALUATOR.run(job, timeout)
    numeric = next((x for x in lines if x.get("phase") == "numeric"), None)
    if numeric is None:
        if timed_out:
            return {"error": f"evaluating your expression took longer than {timeout:g} s: simplify it (e.g. no "
                             f"huge powers such as 10**10**10)"}
        last = next((x.get("error") for x in lines if x.get("phase") == "failed"), None) or failure or "no output"
        if last.startswith("RuntimeError: the reference"):  # an instructor's domain error: say so loudly
            raise RuntimeError(last)
        return {"error": f"your expression could not be evaluated ({_short(last, 160)})"}
    symbolic = next((x.get("equal") for x in lines if x.get("phase") == "symbolic"), None)
    numeric["symbolic"] = symbolic
    return numeric


def _kill(proc) -> None:
    import signal
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


class _Evaluator:
    """The grader's handle on the evaluator process (:func:`_server`): started on first use, kept for the next
    answers, killed with its child (one process group) when an answer runs past its wall-clock limit, and then
    started afresh for the next one."""

    def __init__(self):
        self.proc = None
        self.folder = None

    def _start(self):
        if self.folder is None:
            import atexit
            self.folder = tempfile.mkdtemp(prefix="tfdl-derivation-")
            atexit.register(self.close)
        package_root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ, PYTHONPATH=package_root + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
        cmd = [sys.executable, "-P", "-c", "from autograder.derivation import _server; _server()"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     cwd=self.folder, env=env, start_new_session=True)
        return self.proc

    def _stop(self) -> None:
        """Kill the evaluator and its child (the next answer starts a new one, in the same folder)."""
        if self.proc is not None:
            _kill(self.proc)
            self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    stream.close()
                except (OSError, ValueError):
                    pass
            self.proc = None

    def close(self) -> None:
        """Stop it and remove its folder (at exit)."""
        self._stop()
        if self.folder is not None:
            import shutil
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def run(self, job: dict, timeout: float) -> tuple[list, bool, str | None]:
        """(the JSON lines the job's child wrote, whether it ran out of time, why the evaluator failed)."""
        import selectors
        import time
        deadline = time.monotonic() + timeout
        proc = self.proc if self.proc is not None and self.proc.poll() is None else None
        for _ in range(2):  # a dead evaluator is replaced once
            if proc is None:
                self._stop()
                proc = self._start()
            try:
                proc.stdin.write((json.dumps(job) + "\n").encode())
                proc.stdin.flush()
                break
            except (BrokenPipeError, OSError):
                proc = None
        else:
            return [], False, "the evaluator could not be started"
        lines, buffer = [], b""
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    self._stop()
                    return lines, True, None
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:  # the evaluator itself died
                    code = proc.wait()
                    self._stop()
                    return lines, False, f"the evaluator stopped (exit code {code})"
                buffer += chunk
                while b"\n" in buffer:
                    raw, buffer = buffer.split(b"\n", 1)
                    try:
                        line = json.loads(raw)
                    except ValueError:
                        continue
                    if not isinstance(line, dict):
                        continue
                    if line.get("phase") == "done":
                        return lines, False, None if line.get("code") == 0 else f"exit code {line.get('code')}"
                    lines.append(line)


_EVALUATOR = _Evaluator()


def stop_evaluator() -> None:
    """Stop this process's evaluator and remove its folder (a grading process does it when its input ends)."""
    _EVALUATOR.close()


def _forget_evaluator() -> None:
    """In a forked copy of this process: the evaluator and its folder are the parent's; the copy starts its own."""
    _EVALUATOR.proc = None
    _EVALUATOR.folder = None


os.register_at_fork(after_in_child=_forget_evaluator)


# ==================================================================================================================
# The part
# ==================================================================================================================
@dataclass(frozen=True)
class Derivation(Part):
    """A derivation part: ``check_<name>(<name>, tests)`` grades the student's SymPy expression ``<name>``.

    ``symbols``: the names the notebook's locked cell declares, space-separated, in that order. ``domain``: name ->
    ``(low, high)`` (real, open interval), a list of intervals (e.g. a nonzero real), or ``range(a, b)`` (integers);
    its sign gives the grader's symbols their SymPy assumptions (positive, nonzero, integer). ``reference``: the name
    of a function of ``solutions/<a>/grading.py`` that takes the symbols as keyword arguments and returns the
    reference expression (instructor side only). ``slips``: optionally the name of a function of ``grading.py`` of
    the same arguments returning ``{hint: wrong expression}`` for known mistakes. ``examples``: visible checks,
    ``((point, exact value text), ...)`` with point a dict name -> value text, from an independent computation.
    ``regimes``: ``((description, condition text), ...)`` of a piecewise answer, for the hint that names the
    regime that is wrong. ``samples`` points are drawn from ``seed``. ``variant``: optionally, symbols whose value
    is drawn per student (:mod:`autograder.variants`: ``{name: (exact value text, ...)}``); the hidden check fixes
    them at the graded student's values, so an answer in the student's own numbers (or in the symbols) is right
    and another student's numbers are wrong; the visible examples then run only on an answer that keeps those
    symbols, and no visible check is gated (the hidden check decides alone).

    Visible checks: the answer is an expression in the declared symbols; it is finite and real on the domain (both
    credited only with a passing check that a constant cannot pass); each example. Hidden: equal to the reference at
    every sampled point (or proved equal by ``simplify``); when it is not, the part scores 0.
    """

    visible: Callable | None = None
    hidden: Callable | None = None
    purity: str | None = None
    symbols: str = ""
    domain: dict = field(default_factory=dict)
    reference: str = ""
    slips: str | None = None
    examples: tuple = ()
    regimes: tuple = ()
    samples: int = 64
    seed: int = 20260101
    timeout: float = TIMEOUT
    variant: dict = field(default_factory=dict)

    def __post_init__(self):
        names = self.symbols.split()
        if not names or set(names) != set(self.domain):
            raise ValueError(f"derivation {self.name}: the symbols {names} and the domain's names "
                             f"{sorted(self.domain)} must be the same")
        for n in names:
            assumptions_for(self.domain[n])  # an instructor's malformed domain stops here
        for n, options in self.variant.items():
            if n not in names or not options:
                raise ValueError(f"derivation {self.name}: a variant parameter must be a declared symbol with at "
                                 f"least one value, not {n!r}: {options!r}")
            for v in options:
                validate(str(v), [])
        object.__setattr__(self, "visible", self._visible)
        object.__setattr__(self, "hidden", self._hidden)

    @property
    def names(self) -> list[str]:
        return self.symbols.split()

    def problems(self, grading) -> list[str]:
        """What is wrong with this part's instructor side (``grading``: the module ``solutions/<a>/grading.py``):
        the release and the graders' preflight stop on it before any student is graded. The reference (and the
        slips) must be functions of the declared symbols returning SymPy expressions in them, and the reference
        finite and real at most points of the domain."""
        import sympy
        out, symbols = [], self.grader_symbols()
        for what in filter(None, (self.reference, self.slips)):
            fn = getattr(grading, what, None)
            if not callable(fn):
                out.append(f"derivation {self.name!r}: grading.py defines no function "
                           f"{what}({self.symbols.replace(' ', ', ')})")
                continue
            try:
                value = fn(**symbols)
            except Exception as exc:  # noqa: BLE001 - the instructor's error, reported
                out.append(f"derivation {self.name!r}: {what}(...) raised {type(exc).__name__}: {exc}")
                continue
            exprs = value.values() if what == self.slips and isinstance(value, dict) else [value]
            for expr in exprs:
                if not isinstance(expr, sympy.Expr) or not expr.free_symbols <= set(symbols.values()):
                    out.append(f"derivation {self.name!r}: {what}(...) must return SymPy expressions in the "
                               f"declared symbols {self.symbols!r} (with the domain's assumptions), not {expr!r:.80}")
                    break
            if what == self.reference and not out:
                points = sample_points(self.names, self.domain, 16, self.seed)
                values = [_value(value, {symbols[n]: v for n, v in zip(self.names, p)}) for p in points]
                finite = sum(v is not None and _is_real(v) for v in values)
                if finite < 12:
                    out.append(f"derivation {self.name!r}: the reference is finite at only {finite} of 16 points of "
                               f"the domain: fix the domain or the reference")
        return out

    def grader_symbols(self) -> dict:
        return symbols_for(self.names, self.domain)

    def _text(self, report: Report, value) -> str | None:
        """The answer's text, or None after a failing check that says why."""
        try:
            text = expression_text(value, self.name)
            validate(text, self.names)
            return text
        except ExpressionError as exc:
            message = str(exc)
            report.check(f"{self.name} is an expression in {', '.join(self.names)}", lambda: (False, message))
            return None

    def _visible(self, report: Report, value) -> None:
        text = self._text(report, value)
        if text is None:
            return
        out = judge(text, self.grader_symbols(), self.domain, n=min(self.samples, 32), seed=self.seed + 1,
                    examples=self.examples, simplify=False, timeout=self.timeout)
        if out.get("error"):
            report.check(f"{self.name} is an expression in {', '.join(self.names)}",
                         lambda: (False, out["error"]))
            return
        gated = []
        gated.append(report.check(f"{self.name} is an expression in {', '.join(self.names)}", lambda: (True, "")))
        if self.variant:  # its visible checks are all a student's own numbers can pass: none is gated
            gated = []
        bad = out.get("bad") or {}
        gated.append(report.check(
            f"{self.name} is a finite real number on the domain",
            lambda: (out.get("finite", False), "" if out.get("finite") else
                     f"at {_point(list(bad.get('point', {})), list(bad.get('point', {}).values()))} your expression "
                     f"{'is undefined' if bad.get('value') is None else 'is ' + str(bad.get('value'))}")))
        report.gated.extend(gated)
        for ex in out.get("examples", []) if self._examples_apply(text) else []:
            where = ", ".join(f"{k} = {v}" for k, v in ex["point"].items())
            got = ex["got"]
            got = "undefined" if got is None else _fmt(got) if isinstance(got, float) else got
            report.check(f"value at {where}", lambda ex=ex, got=got: (
                ex["ok"], "" if ex["ok"] else f"expected {_fmt(ex['want'])}, your expression gives {got}"))

    def _examples_apply(self, text: str) -> bool:
        """The examples fix the variant's symbols at their own values: they apply to an answer in those symbols."""
        return not self.variant or set(self.variant) <= _names_in(text)

    def _hidden(self, report: Report, value, grading) -> None:
        try:
            text = expression_text(value, self.name)
            validate(text, self.names)
        except ExpressionError:  # not an expression: the visible checks said why
            return
        if any(not v.passed and v.name.startswith(f"{self.name} is an expression") for v in report.verdicts):
            return  # it does not parse or evaluate: said above
        symbols = self.grader_symbols()
        import sympy
        reference = sympy.sstr(getattr(grading, self.reference)(**symbols))
        slips = ({hint: sympy.sstr(expr) for hint, expr in getattr(grading, self.slips)(**symbols).items()}
                 if self.slips else {})
        student, values = self.student_values()
        out = judge(text, symbols, self.domain, reference=reference, n=self.samples, seed=self.seed, slips=slips,
                    regimes=self.regimes, simplify=True, timeout=self.timeout, fixed=values)
        if values:
            mine = ", ".join(f"{k} = {v}" for k, v in values.items())
            note = f"graded with the values of course id {student!r}: {mine}"
            for key in ("message", "error"):
                if out.get(key):
                    out[key] = f"{note}\n{out[key]}"
        if out.get("error"):
            verdict = report.check("equal to the expected expression", lambda: (False, out["error"]))
        elif out.get("equal") or out.get("symbolic"):
            how = (f"equal at {out.get('points')} sampled points" if out.get("equal") else
                   "proved equal by sympy.simplify (undefined at some sampled points)")
            how += f" ({note})" if values else ""
            verdict = report.check("equal to the expected expression", lambda: (True, how), weight=3.0)
        else:
            verdict = report.check("equal to the expected expression",
                                   lambda: (False, out.get("message", "not equal")), weight=3.0)
        if not verdict.passed:  # a wrong answer earns nothing, whatever the visible checks said
            for v in report.verdicts:
                if v is not verdict and v.passed:
                    v.passed = False
                    v.message = "not credited: the expression is not the expected one (see below)"
