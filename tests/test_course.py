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

from autograder import nbgrading, release
from autograder.course import Course
from tests.conftest import make_course

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = Course(ROOT).assignments()
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


INSTRUCTOR_ONLY_DISTRIBUTIONS = {"nbgrader", "jupyterlab", "notebook", "jupyter-server", "jupyter-book", "dask",
                                 "distributed", "tabulate", "tqdm", "sphinx", "selenium", "pytest"}


def test_the_student_install_leaves_the_instructor_tooling_out():
    """`pip install tfdl-autograder` (a notebook's first cell on Colab or Binder) brings the student side only:
    no nbgrader, JupyterLab, notebook server, Jupyter Book or Dask; the instructor tooling is an extra; every
    student distribution is pinned in requirements.txt (the Binder environment is those pins)."""
    import tomllib
    from autograder.environment import canonical, student_distributions, student_pins

    student = student_distributions(ROOT)
    assert not student & INSTRUCTOR_ONLY_DISTRIBUTIONS, student & INSTRUCTOR_ONLY_DISTRIBUTIONS
    assert {"numpy", "torch", "nbclient", "ipykernel"} <= student
    everything = set(_pins((ROOT / "requirements.txt").read_text().splitlines()))
    assert len(student) < len(everything) / 2  # 60 of 180 at the time of writing
    pinned = {canonical(line.split("==")[0]) for line in student_pins(ROOT)}
    assert student - pinned <= {"setuptools", "pip"}, student - pinned  # part of every Python environment
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["instructor"]
    assert {"nbgrader", "tqdm", "tabulate"} <= {canonical(r.split("<")[0]) for r in extra}
    from autograder.publish import _binder
    binder = set(_pins(_binder(Course(ROOT))["binder/requirements.txt"].splitlines()))
    assert binder == pinned and binder <= everything


_FORBID = """
import importlib.abc, sys
FORBIDDEN = set({forbidden!r})
class _OutsideTheStudentInstall(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in FORBIDDEN:
            with open({log!r}, "a") as f:
                f.write(name + "\\n")
            raise ModuleNotFoundError(f"No module named {{name!r}} (outside the student install)", name=name)
        return None
sys.meta_path.insert(0, _OutsideTheStudentInstall())
"""


def _student_only_env(tmp_path: Path) -> tuple[dict, Path]:
    """An environment whose Python processes (the kernels tfdl check starts included) cannot import any module
    of an installed distribution outside the student install, as if it were not installed."""
    import json
    import os
    from importlib import metadata
    from autograder.environment import canonical, student_distributions

    allowed = student_distributions(ROOT) | {"tfdl-autograder"}
    forbidden = sorted(top for top, dists in metadata.packages_distributions().items()
                       if not any(canonical(d) in allowed for d in dists))
    assert {"nbgrader", "jupyterlab", "notebook", "dask", "tqdm", "tabulate"} <= set(forbidden)
    hook = tmp_path / "hook"
    hook.mkdir()
    log = tmp_path / "forbidden_imports.log"
    (hook / "sitecustomize.py").write_text(_FORBID.format(forbidden=forbidden, log=str(log)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(hook), str(ROOT)]))
    env.pop("TFDL_COURSE_ROOT", None)
    return env, log


@pytest.mark.slow
def test_visible_checks_and_tfdl_check_run_on_the_student_install_alone(tmp_path):
    """The toy notebook and a real assignment (depth), solved, run under `tfdl check` with every package outside
    the student install forbidden (in tfdl and in the kernel): full visible points, and nothing of the
    instructor tooling was even tried."""
    import subprocess
    from tests.conftest import fill

    env, log = _student_only_env(tmp_path)
    sanity = subprocess.run([sys.executable, "-c", "import nbgrader"], env=env, capture_output=True, text=True)
    assert sanity.returncode != 0 and "outside the student install" in sanity.stderr  # the hook works
    log.unlink()
    course = make_course(tmp_path, ["toy", "depth"])
    for assignment in ("toy", "depth"):
        release.release(Course(course), assignment)
        source = nbformat.read(course / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
        answers = {c.metadata.nbgrader["grade_id"]: c.source for c in source.cells
                   if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}
        released = nbformat.read(course / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
        path = tmp_path / "student" / f"{assignment}.ipynb"
        path.parent.mkdir(exist_ok=True)
        nbformat.write(fill(released, answers), path)
        run = subprocess.run([sys.executable, "-m", "autograder", "check", str(path), "--timeout", "120"],
                             env=env, capture_output=True, text=True, cwd=tmp_path, timeout=600)
        assert run.returncode == 0, run.stdout + run.stderr
        got = re.search(r"Visible checks: (\S+) of (\S+) points", run.stdout)
        assert got and got.group(1) == got.group(2) and float(got.group(2)) > 0, run.stdout
        assert "Error" not in run.stdout.split("==")[0], run.stdout  # no error in the student's code cells
    tried = set(log.read_text().split()) if log.exists() else set()  # optional imports of the libraries
    # (torch.hub tries tqdm, jsonschema its format checkers) are theirs; ours must not even try these:
    assert not {t.partition(".")[0] for t in tried} & {"nbgrader", "jupyterlab", "notebook", "jupyter_server",
                                                       "jupyter_book", "dask", "distributed", "tabulate"}, tried


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
            # the signature and docstring around the solution block are released as they are: not secret
            public |= {ln.strip() for ln in re.sub(r"### BEGIN SOLUTION.*?### END SOLUTION", "", src,
                                                   flags=re.S).splitlines()}
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
        for marker in release.SOLUTION_MARKERS:
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
    """A part's points are written once, in TOPIC of autograder/<a>.py: the source's grade cells carry them (the
    release writes them), and each test cell calls its own check_<f>(<f>, tests) with no points argument."""
    module = importlib.import_module(f"autograder.{assignment}")
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    seen = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("grade"):
            continue
        seen[meta["grade_id"]] = meta["points"]
        if cell.cell_type != "code" or meta.get("solution"):
            continue
        calls = [node for node in ast.walk(ast.parse(cell.source)) if isinstance(node, ast.Call)
                 and getattr(node.func, "id", "").startswith("check_")]
        assert [c.func.id for c in calls] == [meta["grade_id"]], f"{meta['grade_id']}: one check call per grade cell"
        assert not [k for k in calls[0].keywords if k.arg == "points"], meta["grade_id"]
    assert seen == module.TOPIC.points
    assert release.validate_source(Course(ROOT), assignment) == []


def test_points_are_written_in_one_place(tmp_path):
    """Changing a part's points in TOPIC is all it takes: the release writes them into the grade cell."""
    course = make_course(tmp_path, ["depth"])
    nb_path = course / "solutions" / "depth" / "depth.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "check_sawtooth_net":
            cell.metadata.nbgrader["points"] = 7  # out of step with the declaration
    nbformat.write(nb, nb_path)
    assert release.write_points(Course(course), "depth") == ["check_sawtooth_net: 3 points"]
    cells = nbformat.read(nb_path, as_version=4).cells
    assert [c.metadata.nbgrader["points"] for c in cells
            if c.metadata.get("nbgrader", {}).get("grade_id") == "check_sawtooth_net"] == [3]


def test_instructor_mistakes_stop_before_any_student_is_graded(tmp_path):
    """A grading.py that does not import, a duplicated grade id, an undeclared grade cell: the release and the
    grading refuse with a message that says what to fix, and nothing is graded."""
    from autograder.course import ToolError
    from tests.conftest import add_submission
    course = make_course(tmp_path, ["depth"])
    grading = course / "solutions" / "depth" / "grading.py"
    grading.write_text(grading.read_text() + "\ndef broken(:\n")
    folder = tmp_path / "subs"
    add_submission(folder, "ann", "depth", ROOT / "exercises" / "depth" / "depth.ipynb")
    for run in (lambda: release.release(Course(course), "depth"),
                lambda: nbgrading.grade_isolated(course, "depth", folder, workers=1),
                lambda: nbgrading.grade(course, "depth", folder)):
        with pytest.raises(ToolError, match="grading.py has a syntax error at line"):
            run()
    assert not (course / "course_work" / "submitted").exists()
    grading.write_text(grading.read_text().replace("\ndef broken(:\n", ""))
    nb_path = course / "solutions" / "depth" / "depth.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    extra = nbformat.from_dict(dict(nb.cells[-1]))
    nb.cells.append(nbformat.v4.new_code_cell("x = 1", metadata={"nbgrader": {
        "grade": True, "grade_id": "check_sawtooth_net", "locked": True, "points": 1, "schema_version": 3,
        "solution": False, "task": False}}))
    nbformat.write(nb, nb_path)
    problems = "\n".join(release.validate_source(Course(course), "depth"))
    assert "grade id 'check_sawtooth_net' is used by 2 cells" in problems
    assert extra is not None


def test_engine_modules_import_no_circle():
    """The grading engine reads as layers: no module of autograder/ imports, directly or not, one that imports
    it back."""
    graph = {}
    for path in (ROOT / "autograder").glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        graph[path.stem] = deps
    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for dep in graph.get(todo.pop(), ()):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen
    circles = sorted(m for m in graph if m in reach(m))
    assert not circles, f"import circles through {circles}"
    assert "nbgrading" not in reach("batch") and "cli" not in reach("nbgrading")


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


@pytest.mark.slow
def test_a_course_with_its_own_nbgrader_layout(tmp_path):
    """tfdl takes every path from the course's nbgrader_config.py: a course that keeps its gradebook and its
    submitted/autograded/feedback folders elsewhere (as a JupyterHub set-up does) is graded there, and nbgrader's
    own `export` then finds the grades."""
    import csv
    import subprocess

    from tests.conftest import add_submission, fill

    course = make_course(tmp_path, ["toy"])
    elsewhere = tmp_path / "srv" / "nbgrader"
    (course / "nbgrader_config.py").write_text(
        (course / "nbgrader_config.py").read_text()
        + f'\nc.CourseDirectory.submitted_directory = "{elsewhere / "in"}"'
        + f'\nc.CourseDirectory.autograded_directory = "{elsewhere / "graded"}"'
        + f'\nc.CourseDirectory.feedback_directory = "{elsewhere / "fb"}"'
        + f'\nc.CourseDirectory.db_url = "sqlite:///{elsewhere / "db" / "grades.sqlite"}"\n')
    c = Course(course)
    assert c.submitted("ann", "toy") == elsewhere / "in" / "ann" / "toy"
    assert c.gradebook_file == elsewhere / "db" / "grades.sqlite"
    release.release(c, "toy")
    released = nbformat.read(course / "exercises" / "toy" / "toy.ipynb", as_version=4)
    solution = {cell.metadata["nbgrader"]["grade_id"]: cell.source
                for cell in nbformat.read(course / "solutions" / "toy" / "toy.ipynb", as_version=4).cells
                if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code"}
    add_submission(tmp_path / "subs", "ann", "toy", fill(released, solution))
    results, warnings = nbgrading.grade_isolated(course, "toy", tmp_path / "subs", workers=1)
    assert not warnings and results[0].scores["test_square"] == 2
    assert (elsewhere / "in" / "ann" / "toy" / "toy.ipynb").is_file()
    assert (elsewhere / "graded" / "ann" / "toy" / "toy.ipynb").is_file()
    assert (elsewhere / "fb" / "ann" / "toy" / "toy.html").is_file()
    assert not (course / "course_work" / "gradebook.db").exists()
    out = tmp_path / "export.csv"
    run = subprocess.run([sys.executable, "-m", "nbgrader", "export", f"--to={out}"], cwd=course,
                         capture_output=True, text=True, env=c.env())
    assert run.returncode == 0, run.stdout + run.stderr
    rows = {r["student_id"]: r for r in csv.DictReader(out.open())}
    assert float(rows["ann"]["score"]) == results[0].total


@pytest.mark.slow
def test_the_release_writes_the_configured_repository_into_the_first_cell(tmp_path):
    """The repository is set once, in book/_config.yml: after `tfdl release` the notebooks' first cell names it."""
    course = make_course(tmp_path, ["depth"])
    (course / "book").mkdir()
    config = (ROOT / "book" / "_config.yml").read_text()
    repo = re.search(r"^  url: (\S+)$", config, flags=re.M).group(1)
    (course / "book" / "_config.yml").write_text(config.replace(repo, "https://example.org/our-school/tfdl"))
    release.release(Course(course), "depth")
    first = nbformat.read(course / "exercises" / "depth" / "depth.ipynb", as_version=4).cells[0]
    assert '_REPO, _BRANCH = "https://example.org/our-school/tfdl", "main"' in first.source
