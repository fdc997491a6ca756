"""The semantic leak test's machinery: does anything in a tree of files compute a graded part?

Searching for names is not enough (a renamed copy of a reference must be caught), so the test runs code, and runs
it as the grader runs a student's: each file's code in a fresh sandbox process (:mod:`autograder.sandbox`:
bubblewrap where installed, time and memory limits), the checks in this process, talking to it with plain data.

* :func:`units` reads every file of the tree that defines functions or classes: the top-level ``def`` and
  ``class`` statements of every ``.py`` file (a module of the ``autograder`` package is imported as the package
  module it is, after checking that it is the course's own file byte for byte), and those of the code cells of
  every notebook (``.ipynb``: the book's downloads included), MyST page (``.md``, ``.txt`` with ``{code-cell}``
  blocks) and built page (``.html``: the code cells and code blocks it shows), with the file's imports and assignments (loops, plots and other statements are
  skipped, so no figure is recomputed);
* :func:`graded_parts` lists every graded part of every assignment that declares a topic, with the number of
  positional arguments of the solution's signature and whether it is a class;
* :func:`derivation_parts` lists the derivation parts (graded on a SymPy expression, not on a callable);
* :func:`leaks` binds each definition, in turn, to every part whose call it accepts (by signature), grades it
  with the part's visible checks and, when that earns anything, with its hidden checks too (``tests="all"``), and
  reports every one that earns more than the release's stub, which earns 0. (A copy of a graded function passes
  the visible checks, which are small cases of the same function, so the screen loses nothing; it spares the
  hidden checks' references for the hundreds of definitions that earn nothing.)
"""
from __future__ import annotations

import ast
import contextlib
import importlib
import inspect
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from autograder.core import Part

ROOT = Path(__file__).resolve().parent.parent
_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.S | re.M)


@dataclass
class Leak:
    where: str
    name: str
    assignment: str
    part: str
    score: float


@dataclass
class Unit:
    """One file's code, as statements to execute in a sandbox, and the names it defines."""

    where: str
    statements: list[str]
    names: list[str]


def _kept(node) -> bool:
    """Statements executed to define things: imports, defs, classes and assignments."""
    return isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign))


_PRE = re.compile(r'<div class="highlight-(?:python|ipython3|ipython|py|default)[^"]*"><div class="highlight"><pre>'
                  r'(.*?)</pre>', re.S)


def _code_cells(path: Path) -> list[str]:
    if path.suffix == ".html":  # code shown on a page of the built book (code cells, code blocks)
        import html
        text = path.read_text(errors="replace")
        return [html.unescape(re.sub(r"<[^>]+>", "", m.group(1))) for m in _PRE.finditer(text)]
    if path.suffix == ".ipynb":
        import nbformat
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception:  # noqa: BLE001
            return []
        return [c.source for c in nb.cells if c.cell_type == "code"]
    return [m.group(1) for m in _CELL.finditer(path.read_text(errors="replace"))]


def _defined(tree: ast.Module) -> list[str]:
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):  # e.g. check_x = TOPIC.checker("x"), or f = lambda ...
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return names


def _unit(where: str, sources: list[str]) -> Unit | None:
    statements, names = [], []
    for source in sources:
        lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        try:
            tree = ast.parse("\n".join(lines))
        except SyntaxError:
            continue
        names += _defined(tree)
        statements += [ast.unparse(node) for node in tree.body if _kept(node)]
    return Unit(where, statements, list(dict.fromkeys(names))) if names else None


def units(tree: Path) -> list[Unit]:
    """Every file of ``tree`` that defines something."""
    tree = Path(tree)
    package = Path(__file__).resolve().parent.parent / "autograder"
    found = []
    for path in sorted(tree.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        rel = path.relative_to(tree)
        if path.suffix == ".py" and rel.parts[0] == "autograder" and len(rel.parts) == 2:
            # a module of the package: it must be the course's own file, imported as the module it is
            assert (package / path.name).read_bytes() == path.read_bytes(), f"{rel} differs from autograder/"
            if path.stem in ("__init__", "__main__"):
                continue
            names = _defined(ast.parse(path.read_text()))
            load = (f"import autograder.{path.stem} as _m\n"
                    f"globals().update({{k: getattr(_m, k) for k in {names!r} if hasattr(_m, k)}})")
            found.append(Unit(str(rel), [load], names))
        elif path.suffix == ".py":
            unit = _unit(str(rel), [path.read_text(errors="replace")])
            found += [unit] if unit else []
        elif path.suffix in (".ipynb", ".md", ".txt", ".html"):
            unit = _unit(str(rel), _code_cells(path))
            found += [unit] if unit else []
    return found


_INFO = """
import inspect as _tfdl_inspect
def _tfdl_binds(o, n):
    try:
        _tfdl_inspect.signature(o).bind(*([None] * n))
        return True
    except (TypeError, ValueError):
        return False
_tfdl_info = {k: [_tfdl_inspect.isclass(globals()[k]), [_tfdl_binds(globals()[k], n) for n in range(8)]]
              for k in NAMES if k in globals() and callable(globals()[k])}
"""


def graded_parts() -> list[tuple[str, Part, int, bool]]:
    """(assignment, part, number of required positional arguments, is a class) of every declared part."""
    from tests.notebooks import solution_namespace
    parts = []
    for path in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        a = path.stem
        if path.parent.name != a or not (ROOT / "autograder" / f"{a}.py").is_file():
            continue
        topic = getattr(importlib.import_module(f"autograder.{a}"), "TOPIC", None)
        if topic is None:
            continue
        solution = solution_namespace(a)
        for part in topic.parts:
            # A derivation part (autograder.derivation) is graded on a value, not on a callable: it is screened
            # against the SymPy values of the tree instead (derivation_parts, leaks).
            if isinstance(part, Part) and part.name in solution and callable(solution[part.name]):
                fn = solution[part.name]
                parts.append((a, part, _required(fn), inspect.isclass(fn)))
    return parts


def derivation_parts() -> list[tuple[str, Part]]:
    """(assignment, part) of every derivation part (a SymPy expression, autograder.derivation) of every topic."""
    from autograder.derivation import Derivation
    out = []
    for path in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        a = path.stem
        if path.parent.name != a or not (ROOT / "autograder" / f"{a}.py").is_file():
            continue
        topic = getattr(importlib.import_module(f"autograder.{a}"), "TOPIC", None)
        out += [(a, p) for p in getattr(topic, "parts", []) if isinstance(p, Derivation)]
    return out


_EXPRESSIONS = """
import sympy as _tfdl_sympy
_tfdl_exprs = {k: globals()[k] for k in NAMES if k in globals() and isinstance(globals()[k], _tfdl_sympy.Basic)}
"""


def _required(fn) -> int:
    target = fn.__init__ if inspect.isclass(fn) else fn
    params = list(inspect.signature(target).parameters.values())
    if inspect.isclass(fn):
        params = params[1:]
    return sum(p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
               for p in params)


def leaks(found: list[Unit], parts=None, wall_seconds: float = 30, derivations=None) -> list[Leak]:
    """Every (definition, part) whose grade with the hidden checks exceeds the stub's 0: callables against the
    ``parts`` (default: :func:`graded_parts`), SymPy values against the ``derivations`` (default: every
    :func:`derivation_parts` when ``parts`` is the default, else none)."""
    from autograder import submission
    from autograder.course import as_course
    from autograder.sandbox import Limits, Sandbox, SandboxError, decode

    if derivations is None:
        derivations = derivation_parts() if parts is None else []
    parts = graded_parts() if parts is None else parts
    course = as_course(ROOT)
    for a in {a for a, *_ in parts} | {a for a, _ in derivations}:
        submission._prepare_instructor_module(course, a)
    out = []
    for unit in found:
        sandbox = Sandbox(Limits(wall_seconds=wall_seconds))

        def load():
            sandbox.close()
            sandbox.start()
            sandbox.execute(submission._IPYTHON_STUB, "<stub>")
            for k, statement in enumerate(unit.statements):
                try:
                    sandbox.execute(statement, f"{unit.where} #{k}")
                except SandboxError:
                    sandbox.close()
                    sandbox.start()
            sandbox.execute(_INFO.replace("NAMES", repr(unit.names)), "<info>")
            found_names = sandbox.names(["_tfdl_info"]).get("_tfdl_info", {})
            return decode(found_names.get("value")) if found_names.get("kind") == "value" else {}

        submission._CURRENT["sandbox"] = sandbox
        try:
            info = load()
            for name, (is_class, binds) in sorted(info.items()):
                for assignment, part, n, part_is_class in parts:
                    if bool(is_class) != part_is_class or not binds[min(n, 7)]:
                        continue
                    if not sandbox.alive():
                        load()
                    topic = importlib.import_module(f"autograder.{assignment}").TOPIC
                    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                            warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        score = 0.0
                        for tests in ("visible", "all"):  # the hidden checks for what earns anything visibly
                            try:
                                score = float(topic.check(part.name, submission._Proxy(name), tests))
                            except Exception:  # noqa: BLE001 - a check that cannot run on it earns nothing
                                score = 0.0
                            if score == 0 or not sandbox.alive():
                                break
                    sandbox.deaths.clear()
                    if score > 0:
                        out.append(Leak(unit.where, name, assignment, part.name, score))
            if derivations:  # every SymPy value the file defines, graded as every derivation part's answer
                if not sandbox.alive():
                    load()
                sandbox.execute(_EXPRESSIONS.replace("NAMES", repr(unit.names)), "<expressions>")
                got = sandbox.names(["_tfdl_exprs"]).get("_tfdl_exprs", {})
                exprs = decode(got.get("value"), sandbox) if got.get("kind") == "value" else {}
                for name, text in sorted(exprs.items()):
                    for assignment, part in derivations:
                        topic = importlib.import_module(f"autograder.{assignment}").TOPIC
                        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                            score = 0.0
                            for tests in ("visible", "all"):
                                try:
                                    score = float(topic.check(part.name, text, tests))
                                except Exception:  # noqa: BLE001
                                    score = 0.0
                                if score == 0:
                                    break
                        if score > 0:
                            out.append(Leak(unit.where, name, assignment, part.name, score))
        finally:
            sandbox.close()
            submission._CURRENT["sandbox"] = None
    return out
