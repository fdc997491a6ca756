"""Rebuild cost of the book: cold build, no-change rebuild, one-chapter rebuild (printed as seconds and ratios).

    .venv/bin/python bench/book_rebuild.py [--chapter ntk]

Works in a scratch copy (a temporary folder holding book/ without book/_build, and exercises/), never in the
checkout. Execution results are cached by jupyter-cache in book/_build/.jupyter_cache, keyed on the code cells
of each chapter: the no-change rebuild executes nothing, and after the code of one chapter is edited (a comment
line is appended to its first code cell) only that chapter is executed again. The script checks both from
jupyter-cache's records and prints each chapter's execution time as recorded by jupyter-cache.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")


def build(root: Path) -> float:
    env = dict(os.environ, TFDL_MATHJAX_DIR=str(REPO / "node_modules" / "mathjax" / "es5"))
    start = time.perf_counter()
    proc = subprocess.run([str(JUPYTER_BOOK), "build", "book", "--warningiserror", "--nitpick", "--keep-going"],
                          cwd=root, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return seconds


def records(root: Path) -> dict[str, tuple[float, object]]:
    from jupyter_cache import get_cache
    cache = get_cache(root / "book" / "_build" / ".jupyter_cache")
    return {Path(r.uri).stem: (r.data.get("execution_seconds", float("nan")), r.created)
            for r in cache.list_cache_records()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chapter", default="ntk", help="the chapter to edit for the one-chapter rebuild")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tfdl-book-bench-") as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "book", root / "book", ignore=shutil.ignore_patterns("_build", "__pycache__"))
        shutil.copytree(REPO / "exercises", root / "exercises")
        cold = build(root)
        first = records(root)
        same = build(root)
        if records(root) != first:
            print("warning: the no-change rebuild executed a chapter again")
        chapter = root / "book" / f"{args.chapter}.md"
        text = chapter.read_text(encoding="utf8")
        m = re.search(r"```\{code-cell\}[^\n]*\n(?::[^\n]*\n)*\n?", text)
        if not m:
            sys.exit(f"{chapter.name} has no code cell")
        chapter.write_text(text[:m.end()] + "# edited by bench/book_rebuild.py\n" + text[m.end():], encoding="utf8")
        one = build(root)
        after = records(root)
        rerun = sorted(k for k in after if after[k][1] != first.get(k, (None, None))[1])
    print(f"machine: {os.cpu_count()} cores; chapters executed: {', '.join(sorted(first))}")
    for name, (secs, _) in sorted(first.items()):
        print(f"  execution of {name}: {secs:.1f} s (jupyter-cache record)")
    print(f"cold build (every chapter executed):  {cold:7.1f} s   1.00")
    print(f"no-change rebuild:                    {same:7.1f} s   {same / cold:.2f} of cold")
    print(f"one chapter edited ({args.chapter}):{' ' * max(0, 15 - len(args.chapter))}  {one:7.1f} s   "
          f"{one / cold:.2f} of cold; re-executed: {', '.join(rerun) or 'none'}")
    return 0 if rerun == [args.chapter] else 1


if __name__ == "__main__":
    sys.exit(main())
