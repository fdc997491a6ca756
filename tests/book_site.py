"""The built book, shared by tests/test_book.py and tests/test_site.py: built ONCE per test session.

``build_site(tmp_path_factory)`` copies ``book/`` (without ``book/_build``) and ``exercises/`` to a temporary
folder and builds it from a cold cache exactly as ``make book`` does (warnings as errors). Both test modules
wrap it in their own fixture; the result is cached here, at module level, so the book is built once however
many modules ask for it. (Developing the tests, ``TFDL_BUILT_COURSE=DIR`` reuses the course root DIR whose
``book/_build/html`` is already built.)
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")
MATHJAX = REPO / "node_modules" / "mathjax" / "es5"


@dataclass
class Site:
    proc: subprocess.CompletedProcess
    root: Path          # the temporary course root (book/, exercises/)
    html: Path          # root / book / _build / html
    seconds: float


_SITE: Site | None = None


def build_site(tmp_path_factory) -> Site:
    global _SITE
    if _SITE is None and os.environ.get("TFDL_BUILT_COURSE"):
        # development only: reuse a course root whose book is already built (TFDL_BUILT_COURSE=/tmp/site)
        root = Path(os.environ["TFDL_BUILT_COURSE"])
        ok = subprocess.CompletedProcess([], 0, "reused " + str(root), "")
        _SITE = Site(ok, root, root / "book" / "_build" / "html", 0.0)
    if _SITE is None:
        if not (MATHJAX / "tex-chtml.js").is_file():
            raise RuntimeError("node_modules/mathjax is missing: run `npm ci` (make does it)")
        root = tmp_path_factory.mktemp("book_build")
        shutil.copytree(REPO / "book", root / "book", ignore=shutil.ignore_patterns("_build", "__pycache__"))
        # the assignment boxes link to ../exercises/<a>/<a>.ipynb (written by the release step)
        shutil.copytree(REPO / "exercises", root / "exercises")
        env = dict(os.environ, TFDL_MATHJAX_DIR=str(MATHJAX))
        start = time.perf_counter()
        proc = subprocess.run(
            [str(JUPYTER_BOOK), "build", "book", "--warningiserror", "--nitpick", "--keep-going"],
            cwd=root, env=env, capture_output=True, text=True, timeout=900,
        )
        _SITE = Site(proc, root, root / "book" / "_build" / "html", time.perf_counter() - start)
    return _SITE
