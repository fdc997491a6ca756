"""Tests of autograder/publish.py: the student edition carries no answer, and a newcomer can use it (issue 11).

The semantic leak test runs every function and class defined anywhere in a freshly published edition (its
Python files, the code cells of its notebooks and of the book's page sources) against every graded part's hidden
checks, in the grading sandbox (tests/leaks.py): none may earn more than the release's stub, which earns 0. It is
shown to catch a reference that is planted back into a page under another name.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.course import Course, ToolError
from autograder.publish import publish
from tests.leaks import derivation_parts, graded_parts, leaks, units

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    dest = tmp_path_factory.mktemp("edition") / "public"
    publish(Course(ROOT), dest, with_book=False)
    return dest


def _files(tree: Path) -> dict[str, bytes]:
    return {str(p.relative_to(tree)): p.read_bytes() for p in sorted(tree.rglob("*")) if p.is_file()}


def test_published_twice_the_edition_is_byte_identical(edition, tmp_path):
    again = tmp_path / "again"
    publish(Course(ROOT), again, with_book=False)
    assert _files(edition) == _files(again)


def test_the_edition_leaves_out_the_instructor_side(edition):
    files = _files(edition)
    assert not [f for f in files if f.startswith("solutions") or Path(f).name == "grading.py"]
    assert not [f for f in files if f.startswith("book/") and f.endswith(".md")]  # no chapter source
    for a in Course(ROOT).assignments():
        assert f"exercises/{a}/{a}.ipynb" in files
    assert {"README.md", "requirements.txt", "environment.yml", "pyproject.toml", "binder/postBuild"} <= set(files)
    readme = files["README.md"].decode()
    assert "tfdl check" in readme and "pip install -r requirements.txt" in readme


def test_publish_refuses_a_non_empty_folder_and_the_course_itself(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(ToolError, match="not empty"):
        publish(Course(ROOT), tmp_path / "x", with_book=False)
    with pytest.raises(ToolError, match="holds it"):
        publish(Course(ROOT), ROOT.parent, with_book=False, force=True)
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"


@pytest.fixture(scope="module")
def edition_leaks(tmp_path_factory):
    """Every definition of the edition, the built book's pages (the code they show) and downloadable notebooks
    included, graded against every part it can be called as (the site publishes no page sources; the chapters
    hide the code that imports answering helpers). Computed once for the tests below."""
    from tests.book_site import build_site
    site = build_site(tmp_path_factory)
    if site.proc.returncode != 0:
        pytest.fail("the book does not build:\n" + site.proc.stdout[-2000:] + site.proc.stderr[-2000:])
    dest = tmp_path_factory.mktemp("edition_with_book") / "public"
    publish(Course(ROOT), dest, book_html=site.html)
    found = units(dest)
    assert any(u.where.startswith("book/") for u in found)  # the book's downloadable notebooks and pages
    assert any(u.where.startswith("autograder/") for u in found)
    points = {(a, p.name): float(p.points) for a, p, _, _ in graded_parts()}
    points |= {(a, p.name): float(p.points) for a, p in derivation_parts()}
    return leaks(found), points


@pytest.mark.slow
def test_nothing_in_the_edition_answers_a_graded_part(edition_leaks):
    """No definition anywhere in the edition earns a part's points (an answer), nor half of them."""
    found, points = edition_leaks
    answers = [x for x in found if x.score >= 0.5 * points[(x.assignment, x.part)]]
    assert answers == []


@pytest.mark.slow
def test_no_definition_in_the_edition_earns_more_than_the_stub(edition_leaks):
    """The issue's criterion: nothing in the edition earns more than the release's stub (0). (A part whose checks a
    trivial answer satisfies, an expected 0, 1 or 2, an interpolant, an upper bound, gates those checks behind a
    value check: ``Report.judge(..., gated=True)``; each module's tests show that such answers earn nothing.)"""
    found, _ = edition_leaks
    assert found == []


@pytest.mark.slow
def test_the_leak_test_catches_a_renamed_reference_planted_in_a_page(edition, tmp_path):
    """A chapter page that defines the instructor's relu_ntk under another name is caught (and the same page
    without it is not)."""
    import shutil

    import ast
    tree = tmp_path / "tree"
    shutil.copytree(edition / "exercises", tree / "exercises")
    # from the file (the loaded instructor module may be the grader's wrapper of it)
    text = (ROOT / "solutions" / "ntk" / "grading.py").read_text()
    node = next(n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef) and n.name == "relu_ntk")
    source = ast.get_source_segment(text, node).replace("def relu_ntk(", "def arc_kernels(") + "\n"
    page = ("# A chapter\n\n```{code-cell} ipython3\nimport numpy as np\n\n" + source + "```\n\n"
            "```{code-cell} ipython3\nfor w in range(3):\n    print(w)\n```\n")
    (tree / "book" / "_sources").mkdir(parents=True)
    (tree / "book" / "_sources" / "chapter.md").write_text(page)
    parts = [p for p in graded_parts() if p[0] == "ntk"]
    found = leaks(units(tree), parts)
    assert [(x.where, x.name, x.part) for x in found] == [("book/_sources/chapter.md", "arc_kernels", "relu_ntk")]
    assert found[0].score == 4


@pytest.mark.slow
def test_a_newcomer_follows_the_edition_readme(edition, tmp_path):
    """From a copy of the edition alone (its autograder package first on the path, no solutions anywhere): the
    self-check of an untouched notebook runs and reports 0 of the visible points; the hidden checks refuse."""
    import shutil
    copy = tmp_path / "clone"
    shutil.copytree(edition, copy)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TFDL_")}
    env["PYTHONPATH"] = str(copy)
    work = copy / "work"
    work.mkdir()
    shutil.copy(copy / "exercises" / "depth" / "depth.ipynb", work / "depth.ipynb")
    run = subprocess.run([sys.executable, "-m", "autograder", "check", "work/depth.ipynb"], cwd=copy, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    from autograder.depth import TOPIC
    from autograder.core import Part
    auto = sum(p.points for p in TOPIC.parts if isinstance(p, Part))
    assert f"Visible checks: 0 of {auto:g} points." in run.stdout, run.stdout
    assert "Errors in your code cells" not in run.stdout, run.stdout  # an untouched release runs to its end
    probe = ("import autograder, autograder.depth as d\n"
             "assert d.__file__.startswith(%r), d.__file__\n"
             "try:\n    d.check_sawtooth_net(lambda k: None, 'all')\nexcept Exception as e:\n"
             "    print(type(e).__name__)\n" % str(copy))
    run = subprocess.run([sys.executable, "-c", probe], cwd=copy, env=env, capture_output=True, text=True)
    assert run.stdout.strip() == "HiddenChecksUnavailable", run.stdout + run.stderr
