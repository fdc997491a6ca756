"""The derivation building block (autograder.derivation): reading an answer as text, the whitelist, the child
process's limits, equivalence at random points and the hints; and a derivation part through a real sandbox.

The three assignments' own derivation parts (wrong forms that lose, equivalent forms that keep full marks, the
reference against an independent computation) are tested in tests/test_ntk.py, test_implicit_bias.py and
test_depth.py; the contract every part keeps in tests/test_contract.py."""
from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
import sympy as sp

from autograder import derivation
from autograder.core import Report, Topic
from autograder.derivation import Derivation, ExpressionError, expression_text, judge, parse, symbols_for, validate

DOMAIN = {"x": (0.1, 3.0), "y": [(-2.0, -0.1), (0.1, 2.0)], "k": range(1, 6)}
S = symbols_for(["x", "y", "k"], DOMAIN)


def run(text, reference, **kw):
    return judge(text, S, DOMAIN, reference=reference, n=32, **kw)


# --------------------------------------------------------------------------------------------------------------
# Reading and the whitelist
# --------------------------------------------------------------------------------------------------------------
def test_domains_give_the_symbols_their_assumptions():
    assert S["x"].is_positive and S["k"].is_integer and S["k"].is_positive
    assert S["y"].is_real and S["y"].is_nonzero and S["y"].is_positive is None
    points = derivation.sample_points(["x", "y", "k"], DOMAIN, 200, seed=1)
    assert all(0.1 < x < 3 and 0.1 <= abs(y) < 2 and k in range(1, 6) for x, y, k in points)
    assert {y > 0 for _, y, _ in points} == {True, False} and {k for *_, k in points} == set(range(1, 6))
    assert derivation.sample_points(["x", "y", "k"], DOMAIN, 200, seed=1) == points  # seeded
    assert derivation.sample_points(["x", "y", "k"], DOMAIN, 200, seed=2) != points


def test_expression_text_reads_sympy_strings_and_numbers_and_refuses_the_rest():
    x = sp.Symbol("x")
    assert expression_text(2 * x / (1 + x**2), "f") == "2*x/(x**2 + 1)"
    assert expression_text("acos(x)", "f") == "acos(x)"
    assert expression_text(3, "f") == "3" and expression_text(0.25, "f") == "0.25"
    for value, words in [(None, "not implemented yet"), (lambda: x, "is a function"), ([1, 2], "is a list"),
                         (sp.Eq(x, 1).func, "is a function"), ("", "is empty"), ("x" * 6000, "characters long")]:
        with pytest.raises(ExpressionError, match=words):
            expression_text(value, "f")


@pytest.mark.parametrize("text,words", [
    ("__import__('os').system('true')", "not an allowed function"),
    ("x.__class__.__mro__", "Attribute"),
    ("(lambda: 1)()", "not an allowed function"),
    ("lambda: 1", "Lambda"),
    ("x[0]", "Subscript"),
    ("'x'", "not a number"),
    ("sin(x=1)", "keyword"),
    ("eval('1')", "not an allowed function"),
    ("exec", "not declared"),
    ("z + 1", "z, which is not declared"),
    ("Symbol('z')", "not an allowed function"),
    ("[x for x in (1, 2)]", "ListComp"),
    ("x if x else 1", "IfExp"),
    ("x := 1", "not a valid expression"),
    ("x +", "not a valid expression"),
    ("(" * 500 + "x" + ")" * 500, "not a valid expression"),
])
def test_hostile_or_malformed_text_is_refused_before_anything_runs(text, words):
    with pytest.raises(ExpressionError, match=words):
        validate(text, ["x", "y", "k"])


def test_parse_uses_only_the_whitelist_and_the_declared_symbols():
    e = parse("arccos(x/3) + atan2(y, x) + Abs(y) + Piecewise((x, y > 0), (0, True)) + ceiling(2**k * x)", S)
    assert e.free_symbols == set(S.values())
    assert parse("ln(E)", S) == 1
    with pytest.raises(ExpressionError, match=r"\^ is not a power in Python"):
        parse("x^2", S)
    with pytest.raises(ExpressionError, match="not an expression with a value"):
        parse("x > 1", S)
    with pytest.raises(ExpressionError, match="not an expression with a value"):
        parse("(x, y)", S)


# --------------------------------------------------------------------------------------------------------------
# Equivalence and feedback (through the child process)
# --------------------------------------------------------------------------------------------------------------
def test_equivalent_forms_are_equal_and_wrong_ones_are_not_with_the_point_and_both_values():
    for form in ("2*x*y", "x*y + y*x", "(x + y)**2 - x**2 - y**2", "exp(log(2*x)) * y"):
        assert run(form, "2*x*y")["equal"], form
    out = run("2*x*y + 1e-3", "2*x*y")
    assert not out["equal"]
    assert "differs from the expected one at x = " in out["message"] and "expected" in out["message"]
    assert "your expression gives" in out["message"] and "allowed" in out["message"]


def test_floating_point_constants_get_a_float_tolerance_not_a_loose_one():
    assert run("x/3.141592653589793", "x/pi")["equal"]  # numpy's pi: 1e-16 relative
    assert not run("x/3.1416", "x/pi")["equal"]  # 2e-6 relative: a rounded constant is not the answer
    assert run("0.5*x", "x/2")["equal"]


@pytest.mark.parametrize("student,hint", [
    ("x*y", "half the expected one: a factor 2 missing"),
    ("4*x*y", "twice the expected one"),
    ("-2*x*y", "opposite sign"),
    ("2*x*y/k", "1/k times the expected one"),
    ("2*x**2*y", "x times the expected one"),
    ("2*x*y + 3", "plus the constant 3"),
    ("Piecewise((2*x*y, y > 0), (-x, True))", "right where y > 0 and wrong everywhere else"),
])
def test_hints_name_the_known_slips(student, hint):
    out = run(student, "2*x*y", regimes=[["y > 0", "y > 0"]])
    assert not out["equal"] and hint in out["message"], out["message"]


def test_an_instructors_named_slip_is_recognised():
    out = run("x + y", "2*x*y", slips={"you added where you should multiply": "x + y"})
    assert "hint: you added where you should multiply" in out["message"]


def test_undefined_points_are_resampled_and_an_answer_undefined_on_the_domain_fails_clearly():
    # log(x - 0.12) is undefined below 0.12: a few points only (under 5 %), replaced by others
    assert run("Piecewise((x, x > 0.12), (nan, True))", "x")["equal"]
    out = run("sqrt(x - 5)", "x")
    assert not out["equal"] and "not a finite real number" in out["message"]


def test_a_reference_undefined_on_the_domain_is_the_instructors_error():
    with pytest.raises(RuntimeError, match="reference is finite at only"):
        run("x", "sqrt(-x)")


def test_an_answer_that_never_finishes_evaluating_is_stopped_and_costs_only_its_check():
    out = run("10**10**10**10 * x", "x", timeout=5)
    assert "took longer than 5 s" in out["error"]
    assert run("2*x", "x + x")["equal"]  # the evaluator was killed with it; the next answer gets a new one


def test_the_warm_evaluator_is_reused_and_replaced_when_it_dies():
    """One evaluator per grading process (it forks a child per answer): kept between answers, replaced when it
    died."""
    from autograder import derivation
    assert run("x**2", "x*x")["equal"]
    server = derivation._EVALUATOR.proc
    assert server is not None and server.poll() is None
    assert run("x + 1", "1 + x")["equal"]
    assert derivation._EVALUATOR.proc is server  # reused, not restarted
    server.kill()
    server.wait()
    assert run("x - 1", "-(1 - x)")["equal"]
    assert derivation._EVALUATOR.proc is not server


def test_simplify_is_stopped_by_its_time_limit(monkeypatch):
    job = {"student": "x", "reference": "x", "symbols": [[n, s.assumptions0] for n, s in S.items()]}
    assert derivation._symbolic(job, 1.0) is True
    monkeypatch.setattr(sp, "simplify", lambda e: __import__("time").sleep(10))
    assert derivation._symbolic(job, 0.5) is None


# --------------------------------------------------------------------------------------------------------------
# The part
# --------------------------------------------------------------------------------------------------------------
PART = Derivation("twice", 2, symbols="x y k", domain=DOMAIN, reference="twice_reference",
                  examples=(({"x": "1", "y": "1", "k": "1"}, "2"),))
TOPIC = Topic("toy_derivation", [PART])
GRADING = SimpleNamespace(twice_reference=lambda x, y, k: 2 * x * y)


def grade(value, tests="all"):
    report = Report(PART.name, PART.points, tests)
    PART.visible(report, value)
    if tests == "all":
        PART.hidden(report, value, GRADING)
    report.apply_gates()
    return report


def test_a_derivation_declares_like_a_part_and_checks_its_declaration():
    assert TOPIC.points == {"check_twice": 2.0} and TOPIC.part("twice") is PART
    with pytest.raises(ValueError, match="must be the same"):
        Derivation("bad", 1, symbols="x y", domain={"x": (0, 1)}, reference="r")
    with pytest.raises(ValueError, match="a domain is"):
        Derivation("bad", 1, symbols="x", domain={"x": (1, 0)}, reference="r")


def test_the_part_gives_full_marks_to_right_forms_and_zero_to_a_wrong_one():
    x, y = sp.symbols("x y")
    for value in (2 * x * y, "x*y*2", sp.expand((x + y)**2 - (x - y)**2) / 2):
        assert grade(value).earned == 2, grade(value).text()
    wrong = grade(x * y + x)  # right at x = y = 1 (the visible example), wrong elsewhere
    assert wrong.earned == 0, wrong.text()
    assert "not credited" in wrong.text() and "differs from the expected one" in wrong.text()
    assert grade(x * y + x, "visible").earned > 0  # the visible checks alone cannot tell


def test_a_constant_earns_nothing_from_the_checks_a_constant_passes():
    report = grade(7, "visible")
    assert report.earned == 0, report.text()


def test_garbage_costs_only_the_part_with_a_clear_message():
    for value, words in [("__import__('os')", "not an allowed function"), ("2*z", "not declared"),
                         ("x +* y", "not a valid expression"), (None, "not implemented yet")]:
        report = grade(value)
        assert report.earned == 0 and words in report.text(), report.text()


@pytest.mark.slow
def test_an_expression_crosses_from_the_sandbox_as_text_only():
    """Through a real sandbox process: a SymPy value (a Symbol too, which is callable) arrives as its text, a
    student's object that pretends to be one stays a handle and earns nothing."""
    from autograder.sandbox import Sandbox, decode

    with Sandbox() as box:
        box.execute("import sympy as sp\nx, y = sp.symbols('x y')\nanswer = 2*x*y\nalone = x\n"
                    "class Fake:\n    def __str__(self):\n        return '2*x*y'\nfake = Fake()\n")
        found = box.names(["answer", "alone", "fake"])
        assert found["answer"] == {"kind": "value", "value": {"__sym": "2*x*y"}}
        assert decode(found["alone"]["value"], box) == "x"
        fake = decode(found["fake"]["value"], box)
        assert type(fake).__name__ == "RemoteObject"
        assert grade(decode(found["answer"]["value"], box)).earned == 2
        assert grade(fake).earned == 0


def test_module_layering():
    """derivation imports core only, never the engine layers."""
    source = importlib.util.find_spec("autograder.derivation").origin
    text = open(source).read()
    for layer in ("sandbox", "submission", "nbgrading", "batch", "gradebook", "release"):
        assert f"from .{layer}" not in text and f"autograder.{layer}" not in text


@pytest.mark.slow
def test_the_leak_screen_grades_published_sympy_values_as_derivation_answers():
    """tests/leaks.py: a SymPy value equal to a derivation's reference, planted under another name in a published
    file, is caught; the release's own symbols and a wrong formula are not."""
    from autograder import depth
    from tests.leaks import Unit, leaks

    setup = ["import sympy as sp", "a, b = sp.symbols('a b', positive=True)",
             "k = sp.Symbol('k', positive=True, integer=True)"]
    planted = Unit("book/planted.md", setup + ["count = sp.ceiling(2**k * b) - sp.floor(2**k * a)"],
                   ["a", "b", "k", "count"])
    innocent = Unit("book/innocent.md", setup + ["length = 2**k * (b - a)"], ["a", "b", "k", "length"])
    found = leaks([planted, innocent], parts=[], derivations=[("depth", depth.PIECES_ON_INTERVAL)])
    assert [(x.where, x.name, x.part, x.score) for x in found] == [("book/planted.md", "count",
                                                                     "pieces_on_interval", 2.0)]


def test_an_instructors_mistake_in_the_reference_is_named_before_any_student_is_graded():
    def ok(x, y, k):
        return 2 * x * y
    assert PART.problems(SimpleNamespace(twice_reference=ok)) == []
    for grading, words in [(SimpleNamespace(), "defines no function twice_reference(x, y, k)"),
                           (SimpleNamespace(twice_reference=lambda x, y, k: sp.Symbol("z")), "declared symbols"),
                           (SimpleNamespace(twice_reference=lambda x, y, k: 1 / 0), "raised ZeroDivisionError"),
                           (SimpleNamespace(twice_reference=lambda x, y, k: sp.sqrt(-x)), "finite at only 0 of 16")]:
        problems = PART.problems(grading)
        assert len(problems) == 1 and words in problems[0], problems


def test_the_release_validates_every_derivations_instructor_side(tmp_path):
    """validate_source (the release and the graders' preflight) reports a derivation whose reference is missing."""
    from autograder.course import as_course
    from autograder.release import validate_source
    from tests.conftest import make_course

    course = make_course(tmp_path, ["depth"])
    assert validate_source(as_course(course), "depth") == []
    grading = course / "solutions" / "depth" / "grading.py"
    grading.write_text(grading.read_text().replace("def pieces_on_interval(", "def renamed_pieces("))
    problems = validate_source(as_course(course), "depth")
    assert any("defines no function pieces_on_interval(a, b, k)" in p for p in problems), problems
