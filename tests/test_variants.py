"""Per-student variants (autograder.variants) of the derivation parts of ntk, implicit_bias and depth.

* The draw, the ids and the flag (``draw``, ``student_id``, ``graded_student``, ``declared_id``, ``mismatch``,
  ``show``).
* The value sets, proved by computation over every value (not by eye): two different draws give references that
  differ at the grader's own sampled points (a copied numeric answer is wrong), and no known slip (the part's
  ``slips`` in grading.py, the wrong forms of tests/test_<a>.py, the wrong regime of a piecewise answer) equals the
  reference at any allowed value.
* The student's side: the release notebook's ``STUDENT_ID`` cell and the locked cell that prints the values.
* Grading in-process (fast): each student's own numbers keep full marks, another student's numbers lose, the
  general answer keeps full marks for everyone.
* End to end, one class per assignment graded once by each engine (the isolated engine and plain nbgrader): own
  numbers, a copied answer, the general answer, a copied notebook (flagged, graded with the submitter's values),
  and the instructor report listing every student's values.
"""
from __future__ import annotations

import contextlib
import io
import itertools
import math

import nbformat
import numpy as np
import pytest
import sympy as sp

from autograder import depth, derivation, implicit_bias, ntk, variants
from autograder.core import instructor_module
from tests.conftest import REPO
from tests.grading import Grader

MODULES = {"ntk": ntk, "implicit_bias": implicit_bias, "depth": depth}
PARTS = {"ntk": ntk.NTK_THETA, "implicit_bias": implicit_bias.DIAG_LIMIT, "depth": depth.PIECES_ON_INTERVAL}
ASSIGNMENTS = list(PARTS)
MIN_POINTS = 3  # a slip or another student's answer must differ at this many of the grader's sampled points


def _right_and_wrong(assignment):
    """(right forms, {name: wrong form}) of the assignment's derivation, from its own tests (tests/test_<a>.py)."""
    if assignment == "ntk":
        from tests.test_ntk import NTK_THETA_RIGHT as right, NTK_THETA_WRONG as wrong
    elif assignment == "implicit_bias":
        from tests.test_implicit_bias import DIAG_LIMIT_RIGHT as right, DIAG_LIMIT_WRONG as wrong
    else:
        from tests.test_depth import PIECES_RIGHT as right, PIECES_WRONG as wrong
    return right, {name: w[0] if isinstance(w, tuple) else w for name, w in wrong.items()}  # (expr, hint) or expr


def general_answer(assignment):
    """A correct answer in the general symbols: the assignment's tests' second right form (not the reference's)."""
    right, _ = _right_and_wrong(assignment)
    return [v for v in right.values() if not isinstance(v, str)][1]


def with_values(expr, values: dict):
    """``expr`` with the student's numbers substituted for the variant's symbols (matched by name)."""
    return expr.subs({s: sp.sympify(values[s.name]) for s in expr.free_symbols if s.name in values})


def other_than(part, base: str, prefix: str) -> str:
    """The first of prefix, prefix-1, prefix-2, ... whose draw differs from ``base``'s (found, not hard-coded)."""
    mine = variants.draw(part.name, base, part.variant)
    for i in range(200):
        sid = prefix if i == 0 else f"{prefix}-{i}"
        if variants.draw(part.name, sid, part.variant) != mine:
            return sid
    raise AssertionError(f"no id {prefix}-* with a draw other than {base!r}'s")


# ==============================================================================================================
# The draw, the ids and the flag
# ==============================================================================================================
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_draws_are_deterministic_from_the_options_and_spread_over_them(assignment):
    part = PARTS[assignment]
    first = variants.draw(part.name, "alice", part.variant)
    assert first == variants.draw(part.name, "alice", part.variant)
    assert set(first) == set(part.variant) and all(first[k] in part.variant[k] for k in first)
    combos = math.prod(len(v) for v in part.variant.values())
    drawn = {tuple(variants.draw(part.name, f"s{i}", part.variant).values()) for i in range(400)}
    assert len(drawn) >= 0.7 * combos, (len(drawn), combos)  # 400 ids reach most combinations
    for name, options in part.variant.items():  # each value of each parameter is drawn
        assert {variants.draw(part.name, f"s{i}", part.variant)[name] for i in range(400)} == set(options)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_value_is_exact_and_inside_the_parts_domain(assignment):
    """Exact values (no float constant: the student's numbers and the grader's are the same number), inside the
    domain where the reference was tested."""
    part = PARTS[assignment]
    for name, options in part.variant.items():
        domain = part.domain[name]
        intervals = domain if isinstance(domain, list) else [domain]
        assert len(set(options)) == len(options), name
        for text in options:
            value = sp.sympify(text)
            assert not value.atoms(sp.Float), (name, text)
            if isinstance(domain, range):
                assert value.is_Integer and int(value) in domain, (name, text)
            else:
                assert any(lo < float(value) < hi for lo, hi in intervals), (name, text)


def test_the_draw_is_a_sha256_of_part_parameter_and_id():
    """The documented recipe, recomputed with hashlib: the draw does not depend on Python's hash seed."""
    import hashlib
    part = implicit_bias.DIAG_LIMIT
    for sid in ("alice", "bob", "u123"):
        got = variants.draw(part.name, sid, part.variant)
        for name, options in part.variant.items():
            h = int.from_bytes(hashlib.sha256(f"{part.name}\x00{name}\x00{sid}".encode()).digest()[:8], "big")
            assert got[name] == options[h % len(options)]
    # a parameter's draw depends on the part: the same id gets unrelated values in two parts
    assert variants.draw("a", "alice", {"p": tuple(range(1000))}) != variants.draw("b", "alice",
                                                                                 {"p": tuple(range(1000))})


def test_student_id_prefers_the_hub_user_name(monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    assert variants.student_id("  alice ") == "alice" and variants.student_id("") == ""
    monkeypatch.setenv("JUPYTERHUB_USER", "hub-alice")
    assert variants.student_id("someone-else") == "hub-alice"


def test_the_graded_student_is_the_engines_then_the_kernels_environment(monkeypatch):
    monkeypatch.delenv("TFDL_STUDENT", raising=False)
    assert variants.graded_student() is None
    monkeypatch.setenv("TFDL_STUDENT", "bob")
    assert variants.graded_student() == "bob"
    with variants.grading_student("carol"):
        assert variants.graded_student() == "carol"
        assert PARTS["depth"].student_values() == ("carol", variants.draw("pieces_on_interval", "carol",
                                                                          depth.PIECES_ON_INTERVAL.variant))
    assert variants.graded_student() == "bob"


def test_a_declared_id_is_read_without_running_the_notebook_and_a_different_one_is_flagged():
    new = nbformat.v4
    nb = new.new_notebook(cells=[new.new_markdown_cell('STUDENT_ID = "md"'), new.new_code_cell("def f(:"),
                                 new.new_code_cell('import os\nSTUDENT_ID = " alice "  # mine')])
    assert variants.declared_id(nb) == "alice"
    assert variants.mismatch(nb, "alice") is None
    flag = variants.mismatch(nb, "bob")
    assert "declares course id 'alice' but is submitted as 'bob'" in flag and "variant of 'bob'" in flag
    nb.cells[2].source = 'STUDENT_ID = ""'
    assert variants.declared_id(nb) is None and variants.mismatch(nb, "bob") is None
    nb.cells[2].source = 'STUDENT_ID = input()'  # not a constant: nothing declared, nothing run
    assert variants.declared_id(nb) is None


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_show_prints_the_students_values_or_where_to_type_the_id(assignment, monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    part = PARTS[assignment]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert variants.show(part, "") == {}
    assert 'STUDENT_ID = "..."' in out.getvalue() and all(n in out.getvalue() for n in part.variant)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        values = variants.show(part, "alice")
    assert values == variants.draw(part.name, "alice", part.variant)
    assert ", ".join(f"{k} = {v}" for k, v in values.items()) in out.getvalue() and "'alice'" in out.getvalue()


# ==============================================================================================================
# The value sets, over every value: copies lose, no slip vanishes
# ==============================================================================================================
def _grader_points(part, values: dict):
    """The points at which the hidden check compares (the first ``samples`` of the seeded sample with the
    variant's symbols fixed; these references are finite on the whole domain), one float column per symbol."""
    points = np.array(derivation.sample_points(part.names, part.domain, 4 * part.samples, part.seed)[: part.samples],
                      dtype=float)
    return [np.full(len(points), float(sp.sympify(values[n]))) if n in values else points[:, j]
            for j, n in enumerate(part.names)]


def _function(part, expr):
    """``expr`` (a SymPy expression or text), read as the grader reads it (derivation.parse), as a numpy function
    of the part's symbols in order."""
    symbols = part.grader_symbols()
    parsed = derivation.parse(expr if isinstance(expr, str) else sp.sstr(expr), symbols)
    return sp.lambdify([symbols[n] for n in part.names], parsed, modules="numpy")


def _numbers(part, expr, values):
    """``expr`` (text, a SymPy expression or a :func:`_function`) at the grader's points, with ``values``."""
    f = expr if callable(expr) and not isinstance(expr, sp.Basic) else _function(part, expr)
    with np.errstate(all="ignore"):
        return np.broadcast_to(np.asarray(f(*_grader_points(part, values)), dtype=float), (part.samples,))


def _differ(a, b) -> int:
    return int(np.sum(~(np.abs(a - b) <= 1e-12 + 1e-9 * np.abs(b))))


def _combos(part):
    return [dict(zip(part.variant, c)) for c in itertools.product(*part.variant.values())]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_two_different_draws_have_references_that_differ_at_the_graders_points(assignment):
    """(a) for every pair of distinct allowed values: another student's exact answer is wrong for this one."""
    part = PARTS[assignment]
    grading = instructor_module(assignment)
    reference = getattr(grading, part.reference)(**part.grader_symbols())
    reference = _function(part, reference)
    values = {tuple(c.values()): _numbers(part, reference, c) for c in _combos(part)}
    assert all(np.isfinite(v).all() for v in values.values())
    worst = min((_differ(values[a], values[b]), a, b) for a, b in itertools.combinations(values, 2))
    assert worst[0] >= MIN_POINTS, worst


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_no_known_slip_equals_the_reference_at_any_allowed_value(assignment):
    """(b) the part's named slips (grading.py) and the wrong forms of tests/test_<a>.py (the wrong regime of a
    piecewise answer among them) each differ from the reference at every allowed combination of values."""
    part = PARTS[assignment]
    grading = instructor_module(assignment)
    symbols = part.grader_symbols()
    reference = getattr(grading, part.reference)(**symbols)
    slips = dict(getattr(grading, part.slips)(**symbols))
    slips.update(_right_and_wrong(assignment)[1])
    assert len(slips) >= 3
    reference, slips = _function(part, reference), {name: _function(part, s) for name, s in slips.items()}
    for combo in _combos(part):
        want = _numbers(part, reference, combo)
        for name, slip in slips.items():
            got = _numbers(part, slip, combo)
            assert _differ(got, want) >= MIN_POINTS, (combo, name[:60], _differ(got, want))


def test_the_excluded_values_are_excluded_for_a_reason():
    """The values left out of the sets are the ones at which a slip vanishes (so the sets are not arbitrary)."""
    part = depth.PIECES_ON_INTERVAL
    assert "1" not in part.variant["k"]
    k = part.grader_symbols()["k"]
    reference = instructor_module("depth").pieces_on_interval(**part.grader_symbols())
    assert _differ(_numbers(part, 2**k, {"k": "1"}), _numbers(part, reference, {"k": "1"})) == 0
    # diag_limit depends on x2 only through |x2|: x2 and -x2 would give two students the same reference
    part = implicit_bias.DIAG_LIMIT
    absolute = [abs(sp.sympify(v)) for v in part.variant["x2"]]
    assert len(set(absolute)) == len(absolute)
    reference = instructor_module("implicit_bias").diag_limit(**part.grader_symbols())
    assert _differ(_numbers(part, reference, {"x2": "7/5", "y": "1"}),
                   _numbers(part, reference, {"x2": "-7/5", "y": "1"})) == 0


# ==============================================================================================================
# The student's side: the release notebook
# ==============================================================================================================
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_release_asks_for_the_id_near_the_top_and_prints_the_values_in_the_parts_symbols_cell(assignment,
                                                                                                 monkeypatch):
    """The release's own cells, run in order as a student runs them: the STUDENT_ID cell (an ordinary cell, the
    second, left empty by the release) and the locked symbols cell, which prints this student's values."""
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    part = PARTS[assignment]
    nb = nbformat.read(REPO / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    id_cell = nb.cells[1]
    assert id_cell.cell_type == "code" and "nbgrader" not in id_cell.metadata
    assert id_cell.source.rstrip().endswith('STUDENT_ID = ""') and variants.declared_id(nb) is None
    symbols_cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == f"{part.name}_symbols")
    assert symbols_cell.metadata.nbgrader["locked"] and "show(" in symbols_cell.source
    for declared in ("alice", "bob"):
        ns: dict = {}
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(id_cell.source.replace('STUDENT_ID = ""', f'STUDENT_ID = "{declared}"'), ns)
            exec(symbols_cell.source, ns)
        assert ns["my_values"] == variants.draw(part.name, declared, part.variant), out.getvalue()
        assert all(f"{k} = {v}" in out.getvalue() for k, v in ns["my_values"].items())
    prompt = next(c for c in reversed(nb.cells[: nb.cells.index(symbols_cell)]) if c.cell_type == "markdown")
    assert "Another student's number" in prompt.source


# ==============================================================================================================
# Grading in-process: own numbers, another student's numbers, the general answer
# ==============================================================================================================
@pytest.mark.parametrize("assignment", ["implicit_bias", "depth"])  # ntk's: tests/test_ntk.py
def test_each_student_is_graded_against_their_own_values_and_a_copy_loses(assignment):
    part = PARTS[assignment]
    grader = Grader(MODULES[assignment])
    a, b = "alice", other_than(part, "alice", "bob")
    va, vb = (variants.draw(part.name, s, part.variant) for s in (a, b))
    general = general_answer(assignment)
    for student, mine, theirs in [(a, va, vb), (b, vb, va)]:
        with variants.grading_student(student):
            points, text = grader.grade(part.name, with_values(general, mine))
            assert points == part.points, text
            points, text = grader.grade(part.name, with_values(general, theirs))  # the other student's numbers
            assert points == 0, text
            assert f"graded with the values of course id {student!r}" in text and "differs" in text, text
            points, text = grader.grade(part.name, general)
            assert points == part.points, text


# ==============================================================================================================
# End to end: one class per assignment, graded by both engines
# ==============================================================================================================
ENGINES = ("isolated", "nbgrader")


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def graded(request, tmp_path_factory):
    """One class of the assignment graded by each engine: {"part": its derivation part, "roles": role -> student
    id, "values": student -> drawn values, "results": engine -> {student: SubmissionResult}, "text": engine ->
    {student: the part's feedback}, "report": engine -> the instructor report's text}.

    alice and bob answer with their own numbers; carol answers with alice's numbers under her own id; dave keeps
    the general symbols; erin submits alice's notebook (alice's numbers, declaring "alice"); frank declares
    "alice" but answers with his own numbers."""
    from autograder import nbgrading
    from autograder.course import as_course
    from autograder.report import summary
    from tests.conftest import add_submission, fill, make_course

    assignment = request.param
    part = PARTS[assignment]
    tmp = tmp_path_factory.mktemp(f"variants-{assignment}")
    course = make_course(tmp, [assignment])
    nbgrading.release(course, assignment)
    release = nbformat.read(course / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    roles = {"alice": "alice", "bob": other_than(part, "alice", "bob"), "carol": other_than(part, "alice", "carol"),
             "dave": "dave", "erin": other_than(part, "alice", "erin"), "frank": other_than(part, "alice", "frank")}
    values = {s: variants.draw(part.name, s, part.variant) for s in roles.values()}
    general = general_answer(assignment)

    def notebook(declared, expr):
        nb = fill(release, {part.name: f"{part.name} = sp.sympify({sp.sstr(expr)!r})"})
        cell = nb.cells[1]
        assert cell.source.rstrip().endswith('STUDENT_ID = ""')
        cell.source = cell.source.replace('STUDENT_ID = ""', f'STUDENT_ID = "{declared}"')
        return nb

    r = roles
    answers = {r["alice"]: ("alice", with_values(general, values[r["alice"]])),
               r["bob"]: (r["bob"], with_values(general, values[r["bob"]])),
               r["carol"]: (r["carol"], with_values(general, values[r["alice"]])),
               r["dave"]: (r["dave"], general),
               r["erin"]: ("alice", with_values(general, values[r["alice"]])),
               r["frank"]: ("alice", with_values(general, values[r["frank"]]))}
    folder = tmp / "submissions"
    for student, (declared, expr) in answers.items():
        add_submission(folder, student, assignment, notebook(declared, expr))
    out = {"part": part, "roles": roles, "values": values, "results": {}, "text": {}, "report": {}}
    check = f"check_{part.name}"
    for engine in ENGINES:
        if engine == "isolated":
            results, _ = nbgrading.grade_isolated(course, assignment, folder, workers=1)
            text = {res.student: next(p.feedback for p in res.parts if p.grade_id == check) for res in results}
        else:
            results, _ = nbgrading.grade(course, assignment, folder, cell_timeout=120)
            text = {}
            for student in answers:  # the check cell's printed output in nbgrader's autograded notebook
                nb = nbformat.read(as_course(course).autograded(student, assignment) / f"{assignment}.ipynb",
                                   as_version=4)
                cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == check)
                text[student] = "".join(o.get("text", "") for o in cell.outputs)
        out["results"][engine] = {res.student: res for res in results}
        out["text"][engine] = text
        out["report"][engine] = summary(results, assignment)
    return out


def _score(graded, engine, role):
    """(the role's score on the derivation part, the part) as graded by ``engine``."""
    part = graded["part"]
    return graded["results"][engine][graded["roles"][role]].scores[f"check_{part.name}"], part


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_end_to_end_own_numbers_keep_full_marks_for_two_students_with_different_values(graded, engine):
    (a, b) = (graded["roles"]["alice"], graded["roles"]["bob"])
    assert graded["values"][a] != graded["values"][b]
    for role in ("alice", "bob"):
        score, part = _score(graded, engine, role)
        student = graded["roles"][role]
        assert score == part.points, (engine, student, graded["text"][engine][student])
        assert not graded["results"][engine][student].flags, (engine, graded["results"][engine][student].flags)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_end_to_end_another_students_numbers_lose_the_part(graded, engine):
    score, _ = _score(graded, engine, "carol")
    carol = graded["roles"]["carol"]
    assert score == 0, (engine, graded["text"][engine][carol])
    assert f"graded with the values of course id {carol!r}" in graded["text"][engine][carol]
    assert not graded["results"][engine][carol].flags  # an honest id: a wrong answer, not a flag


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_end_to_end_the_general_answer_keeps_full_marks(graded, engine):
    score, part = _score(graded, engine, "dave")
    assert score == part.points, (engine, graded["text"][engine][graded["roles"]["dave"]])


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_end_to_end_a_notebook_declaring_another_id_is_flagged_and_graded_with_the_submitters_values(graded,
                                                                                                   engine):
    for role, full in (("erin", False), ("frank", True)):  # alice's numbers lose, the submitter's own keep
        student = graded["roles"][role]
        score, part = _score(graded, engine, role)
        assert score == (part.points if full else 0), (engine, role, graded["text"][engine][student])
        flags = graded["results"][engine][student].flags
        assert any(f"declares course id 'alice' but is submitted as {student!r}" in f for f in flags), (engine, flags)
        if not full:  # a failing check names whose values it used (a passing one prints only its name)
            assert f"graded with the values of course id {student!r}" in graded["text"][engine][student]


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_end_to_end_the_report_lists_every_students_values(graded, engine):
    text = graded["report"][engine]
    assert "Variants (each student's values" in text
    for student, values in graded["values"].items():
        line = f"  {student}: {graded['part'].name}: " + ", ".join(f"{k} = {v}" for k, v in values.items())
        assert line in text.splitlines(), (line, text)
    flagged = text.split("Flagged submissions")[1]
    assert graded["roles"]["erin"] in flagged and graded["roles"]["frank"] in flagged
