"""The student edition of the course (``tfdl publish DEST``): what a public repository may carry.

Courses like this one live on a public repository that students clone and Binder and Colab launch from, so the
instructor keeps a private repository (this one: ``solutions/``, every ``grading.py``, the chapters' sources,
which import answering code from the instructor side at build time) and publishes from it an edition that holds:

* ``exercises/<a>/``: the released notebooks (verified: no solution, no hidden test, no instructor file);
* ``autograder/``: the course package (visible checks, the self-check and the tools; it holds no reference
  implementation: the references live in ``grading.py`` beside each assignment's source);
* ``book/``: the built book (HTML with its downloadable notebooks), when it has been built;
* the environment files, a student README with its set-up and self-check commands, and the launch
  configuration (``binder/``), all pointing at the public repository configured once in ``book/_config.yml``.

Published twice from the same commit, the edition is byte-identical (files are copied, never generated with a
date). A test (tests/test_publish.py) binds every function and class defined anywhere in the edition to every
graded part it can be called as, and grades it with the hidden checks: none earns more than the release's stub.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from .course import Course, ToolError, as_course
from .release import INSTRUCTOR_ONLY, SOLUTION_MARKERS, verify_release

__all__ = ["publish", "ENVIRONMENT_FILES"]

ENVIRONMENT_FILES = ("requirements.txt", "environment.yml", "pyproject.toml")
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", *INSTRUCTOR_ONLY)


def _repository(course: Course) -> tuple[str, str]:
    import yaml
    config = course.root / "book" / "_config.yml"
    repo = (yaml.safe_load(config.read_text()) or {}).get("repository", {}) if config.is_file() else {}
    return str(repo.get("url", "")), str(repo.get("branch", "main"))


def _readme(course: Course, assignments: list[str], with_book: bool) -> str:
    url, branch = _repository(course)
    lines = [
        "# Theoretical Foundations of Deep Learning: the student edition",
        "",
        "The exercise notebooks of the summer school, the checks that give you feedback, and the course book.",
        "",
        "## Set up (Python 3.11)",
        "",
        "```",
        f"git clone {url}" if url else "git clone <this repository>",
        "cd " + (url.rstrip("/").rsplit("/", 1)[-1] if url else "<its folder>"),
        "python3 -m venv .venv",
        ".venv/bin/pip install -r requirements.txt",
        ".venv/bin/pip install --no-deps -e .",
        "```",
        "",
        "## Work on an assignment",
        "",
        "1. Copy the notebook you work on out of `exercises/`, e.g. "
        "`mkdir -p work && cp exercises/ntk/ntk.ipynb work/`, and open it: `.venv/bin/jupyter lab work/ntk.ipynb`.",
        "2. Replace each `raise NotImplementedError(...)` with your code and run the check cell below it: it prints "
        "each check as `[pass]` or `[FAIL]`, with what was expected, what came back and, for a known mistake, a "
        "hint.",
        "3. Check the whole notebook as it will be graded (your file is not modified): "
        "`.venv/bin/tfdl check work/ntk.ipynb`.",
        "4. Submit the notebook the way your school collects it. Hidden checks (other settings, larger inputs) and "
        "written answers are graded by the instructors.",
        "",
        "Assignments: " + ", ".join(f"`{a}`" for a in assignments) + ".",
        "",
        "On Binder or Colab: the `binder/` folder and the first cell of every notebook say what to install.",
    ]
    if with_book:
        lines += ["", "## The book", "", "Open `book/index.html` in a browser."]
    return "\n".join(lines) + "\n"


def _binder(course: Course) -> dict[str, str]:
    """Binder's environment: the pins of the student install only (repo2docker brings JupyterLab itself), so no
    nbgrader, notebook server or Jupyter Book is installed into a student's session."""
    from .environment import student_pins
    pins = (["# the student install: the pins of requirements.txt that pyproject's dependencies need "
             "(autograder/environment.py)", *student_pins(course.root)]
            if (course.root / "pyproject.toml").is_file() else [(course.root / "requirements.txt").read_text()])
    return {"binder/requirements.txt": "\n".join(pins).rstrip("\n") + "\n",
            "binder/postBuild": "#!/bin/bash\n# the course package, without re-resolving the pinned environment\n"
                                "pip install --no-deps .\n"}


def publish(course: Course | Path, dest: Path, *, book_html: Path | None = None, with_book: bool = True,
            force: bool = False) -> list[Path]:
    """Write the student edition into ``dest``; return the files written (sorted, relative to ``dest``)."""
    course = as_course(course)
    dest = Path(dest).resolve()
    if dest == course.root or dest in course.root.parents or course.sources in (dest, *dest.parents):
        raise ToolError(f"{dest} is the course or holds it: publish to a folder of its own")
    if dest.exists() and any(dest.iterdir()):
        if not force:
            raise ToolError(f"{dest} is not empty: give an empty folder, or --force to replace its content")
        shutil.rmtree(dest)
    assignments = course.assignments()
    problems = [p for a in assignments for p in verify_release(course, a)]
    missing = [a for a in assignments if not (course.release(a) / f"{a}.ipynb").is_file()]
    if problems or missing:
        raise ToolError("the releases are not ready to publish (run `tfdl release --all`):\n  "
                        + "\n  ".join(problems + [f"{a}: not released" for a in missing]))
    html = Path(book_html) if book_html else course.root / "book" / "_build" / "html"
    if with_book and not (html / "index.html").is_file():
        raise ToolError(f"the book is not built ({html / 'index.html'} is missing): run `make book`, or publish "
                        "with --no-book")
    dest.mkdir(parents=True, exist_ok=True)
    for a in assignments:
        shutil.copytree(course.release(a), dest / "exercises" / a, ignore=_IGNORE)
    package = Path(__file__).resolve().parent
    shutil.copytree(package, dest / "autograder", ignore=_IGNORE)
    if with_book:
        shutil.copytree(html, dest / "book", ignore=shutil.ignore_patterns(".doctrees", ".buildinfo"))
    for name in ENVIRONMENT_FILES:
        if (course.root / name).is_file():
            shutil.copy(course.root / name, dest / name)
    generated = {"README.md": _readme(course, assignments, with_book), **_binder(course)}
    for rel, text in generated.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(text)
    (dest / "binder" / "postBuild").chmod(0o755)
    written = sorted(p.relative_to(dest) for p in dest.rglob("*") if p.is_file())
    leaked = [str(p) for p in written if p.name in INSTRUCTOR_ONLY]
    for p in written:
        if p.suffix in (".py", ".ipynb", ".md", ".txt"):
            text = (dest / p).read_text(errors="replace")
            leaked += [f"{p}: {m!r}" for m in SOLUTION_MARKERS if m in text and p.parts[0] != "autograder"]
    if leaked:
        shutil.rmtree(dest)
        raise ToolError("the edition would carry instructor material, nothing was published:\n  " + "\n  ".join(leaked))
    return written
