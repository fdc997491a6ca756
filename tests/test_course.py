"""The course as a whole: pinned environments agree, the committed student release is fresh and leaks nothing,
the student side carries no reference implementation, points agree between notebooks and checks, and CI runs
the README's test command."""
from __future__ import annotations

import ast
import importlib
import re
import sys
from pathlib import Path

import nbformat
import pytest

from autograder import nbgrading
from tests.conftest import make_course

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = nbgrading.assignments(ROOT)
STUDENT_SIDE = [ROOT / "autograder", ROOT / "exercises"]


def test_there_are_assignments():
    assert "ntk" in ASSIGNMENTS


# ----------------------------------------------------------------------------------------------------------------
# Set-up
# ----------------------------------------------------------------------------------------------------------------
def _pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.strip().lstrip("-").strip()
        m = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([^\s#]+)", line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def test_environment_yml_carries_the_pins_of_requirements_txt():
    import yaml
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    requirements = _pins((ROOT / "requirements.txt").read_text().splitlines())
    conda = _pins(pip_section)
    assert requirements, "requirements.txt pins nothing"
    assert conda == requirements, {k: (requirements.get(k), conda.get(k))
                                   for k in set(requirements) | set(conda) if requirements.get(k) != conda.get(k)}
    assert requirements["torch"] == "2.13.0" and requirements["nbgrader"] == "0.9.6"
    assert requirements["jupyter-book"].startswith("1.")
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert python == f"python={sys.version_info.major}.{sys.version_info.minor}"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^\s*(make \w+)\s*$", readme, flags=re.M)
    assert commands[:2] == ["make course", "make test"], commands
    assert re.search(r"^make test$", (ROOT / ".ci" / "run").read_text(), flags=re.M)


# ----------------------------------------------------------------------------------------------------------------
# The student release
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_committed_release_is_what_the_release_command_makes(assignment, tmp_path):
    """exercises/<a> is stale when it differs from a fresh `tfdl release` of solutions/<a>: run `make release`."""
    course = make_course(tmp_path, [assignment])
    nbgrading.release(course, assignment)
    fresh = sorted(p.relative_to(course / "exercises") for p in (course / "exercises" / assignment).rglob("*")
                   if p.is_file())
    committed = sorted(p.relative_to(ROOT / "exercises") for p in (ROOT / "exercises" / assignment).rglob("*")
                       if p.is_file() and ".ipynb_checkpoints" not in p.parts)
    assert committed == fresh, "exercises/ is stale: run `make release`"
    for rel in fresh:
        assert (ROOT / "exercises" / rel).read_bytes() == (course / "exercises" / rel).read_bytes(), \
            f"exercises/{rel} is stale: run `make release`"


def _solution_lines(assignment: str) -> set[str]:
    """Distinctive lines of the instructor's code: solution cells, hidden tests and grading.py."""
    lines, public = set(), set()
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    for cell in nb.cells:
        src = cell.source
        if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code":
            lines |= set(src.splitlines())
        else:  # what the notebook shows students anyway (read-only cells, visible checks) is not secret
            public |= {ln.strip() for ln in re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", "", src,
                                                   flags=re.S).splitlines()}
        for block in re.findall(r"### BEGIN (?:SOLUTION|HIDDEN TESTS)(.*?)### END", src, flags=re.S):
            lines |= set(block.splitlines())
    grading = ROOT / "solutions" / assignment / "grading.py"
    if grading.is_file():
        lines |= set(grading.read_text().splitlines())
    # lines long and specific enough that finding one elsewhere means it was copied
    return {ln.strip() for ln in lines if len(ln.strip()) >= 40 and not ln.strip().startswith(("#", '"""'))
            and "def " not in ln and "NotImplementedError" not in ln} - public


def _student_side_text() -> dict[Path, str]:
    files = {}
    for top in STUDENT_SIDE:
        for path in top.rglob("*"):
            if path.suffix in (".py", ".ipynb") and "__pycache__" not in path.parts:
                files[path] = path.read_text()
    return files


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_student_side_carries_no_solution_and_no_hidden_test(assignment):
    """exercises/ and the autograder package (what a student gets) hold no line of the instructor's code."""
    assert not list((ROOT / "exercises").rglob("grading.py"))
    secret = _solution_lines(assignment)
    assert len(secret) > 10
    for path, text in _student_side_text().items():
        for marker in nbgrading.SOLUTION_MARKERS:
            assert marker not in text or path.suffix == ".py", f"{marker} in {path}"
        leaked = [ln for ln in secret if ln in text]
        assert not leaked, f"{path.relative_to(ROOT)} contains instructor code: {leaked[:3]}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_hidden_checks_need_the_instructor_side(assignment, tmp_path, monkeypatch):
    """Without solutions/ the visible checks run and the hidden ones refuse with a clear message."""
    from autograder.core import HiddenChecksUnavailable
    monkeypatch.setenv("TFDL_COURSE_ROOT", str(tmp_path))
    module = importlib.import_module(f"autograder.{assignment}")
    checks = [getattr(module, name) for name in dir(module) if name.startswith("check_")]
    assert checks
    for check in checks:
        with pytest.raises(HiddenChecksUnavailable, match="only when an instructor grades"):
            check(lambda *a, **k: None, "all")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_grade_cell_points_agree_with_the_checks(assignment):
    """Each test cell calls check_<f>(<f>, tests, points=P) with P = its nbgrader points = the module's POINTS."""
    module = importlib.import_module(f"autograder.{assignment}")
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    seen = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("grade") or cell.cell_type != "code":
            continue
        calls = [node for node in ast.walk(ast.parse(cell.source)) if isinstance(node, ast.Call)
                 and getattr(node.func, "id", "").startswith("check_")]
        assert len(calls) == 1, f"{meta['grade_id']}: one check call per grade cell"
        points = {k.arg: ast.literal_eval(k.value) for k in calls[0].keywords}["points"]
        assert points == meta["points"], meta["grade_id"]
        seen[calls[0].func.id.removeprefix("check_")] = points
    assert seen == module.POINTS


def test_nbgrader_release_ignores_the_instructor_files():
    config = (ROOT / "nbgrader_config.py").read_text()
    assert '"grading.py"' in config and "CourseDirectory.ignore" in config


def _front_matter(path: Path) -> dict:
    import yaml
    text = path.read_text()
    return yaml.safe_load(text.split("---")[1]) if text.startswith("---") else {}


def test_every_assignment_has_a_chapter_that_declares_it():
    """book/<a>.md declares `assignment: <a>`: the book's extension then adds its download and launch links."""
    for assignment in ASSIGNMENTS:
        chapter = ROOT / "book" / f"{assignment}.md"
        assert chapter.is_file(), f"no chapter book/{assignment}.md"
        assert _front_matter(chapter).get("assignment") == assignment
        assert f"- file: {assignment}" in (ROOT / "book" / "_toc.yml").read_text()


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_first_cell_names_the_configured_repository(assignment):
    """The set-up cell that tells a student outside the course environment what to install points at the
    repository and branch configured in book/_config.yml, and is locked."""
    import yaml
    repo = yaml.safe_load((ROOT / "book" / "_config.yml").read_text())["repository"]
    first = nbformat.read(ROOT / "exercises" / assignment / f"{assignment}.ipynb", as_version=4).cells[0]
    assert first.metadata["nbgrader"]["grade_id"] == "course_setup" and first.metadata["nbgrader"]["locked"]
    assert f'_REPO, _BRANCH = "{repo["url"]}", "{repo.get("branch", "main")}"' in first.source
