"""The online book builds cleanly from a cold cache and ships what the course promises.

Slow (a few minutes on the 2-core reference machine): ``tests/book_site.py`` copies ``book/`` to a temporary
folder (without ``book/_build``) and builds it once per session with warnings as errors exactly as ``make book``
does (tests/test_site.py reuses that build); this module inspects the HTML: the NTK chapter's figures are
<img> with non-empty alt text, MathJax and every other script/stylesheet are served from the site itself (no
http(s) URL), the bibliography lists the cited papers, and no hidden code that answers a graded exercise
reaches the site. What a reader meets in a browser is tested in tests/test_site.py.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.book_site import build_site

REPO = Path(__file__).resolve().parent.parent


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(html: str):
    parser = _Tags()
    parser.feed(html)
    return parser.tags


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    # built once per session, shared with tests/test_site.py (see tests/book_site.py)
    try:
        site = build_site(tmp_path_factory)
    except RuntimeError as e:
        pytest.fail(str(e))
    return site.proc, site.html


@pytest.mark.slow
def test_book_builds_without_warnings(built_book):
    proc, html = built_book
    assert proc.returncode == 0, (proc.stdout[-5000:] + "\n" + proc.stderr[-5000:])
    assert (html / "ntk.html").is_file()


@pytest.mark.slow
def test_ntk_figures_have_alt_text(built_book):
    proc, html = built_book
    assert proc.returncode == 0
    imgs = [a for t, a in _tags((html / "ntk.html").read_text(encoding="utf8")) if t == "img"]
    figures = [a for a in imgs if a.get("src", "").startswith("_images/")]
    assert len(figures) >= 3, imgs
    for a in figures:
        assert a.get("alt", "").strip(), f"figure without alt text: {a}"
        assert (html / a["src"]).is_file()


@pytest.mark.slow
def test_assets_are_local_and_mathjax_is_shipped(built_book):
    proc, html = built_book
    assert proc.returncode == 0
    pages = sorted(html.rglob("*.html"))
    assert pages
    for page in pages:
        text = page.read_text(encoding="utf8")
        for tag, attrs in _tags(text):
            if tag == "script":
                assert not re.match(r"(https?:)?//", attrs.get("src", "")), (page, attrs)
            if tag == "link" and attrs.get("rel") in ("stylesheet", "preload", "modulepreload"):
                assert not re.match(r"(https?:)?//", attrs.get("href", "")), (page, attrs)
        for body in re.findall(r"<script\b[^>]*>(.*?)</script>", text, re.S):
            assert not re.search(r"https?://", body), (page, body[:300])
    srcs = [a.get("src", "") for t, a in _tags((html / "ntk.html").read_text(encoding="utf8")) if t == "script"]
    mathjax = [s for s in srcs if "mathjax" in s.lower()]
    assert mathjax, srcs
    for s in mathjax:
        assert (html / s.split("?")[0]).is_file(), s


@pytest.mark.slow
def test_bibliography_lists_the_cited_papers(built_book):
    proc, html = built_book
    assert proc.returncode == 0
    # pybtex's style lower-cases titles: compare case-insensitively, on the text without tags
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", (html / "bibliography.html").read_text(encoding="utf8"))).lower()
    for title in ["Neural Tangent Kernel: Convergence and Generalization in Neural Networks",
                  "Wide Neural Networks of Any Depth Evolve as Linear Models Under Gradient Descent",
                  "Gradient Descent Provably Optimizes Over-parameterized Neural Networks",
                  "Gradient Descent Finds Global Minima of Deep Neural Networks",
                  "On Exact Computation with an Infinitely Wide Neural Net",
                  "On Lazy Training in Differentiable Programming",
                  "Kernel Methods for Deep Learning"]:
        assert title.lower() in text, title
    ntk = (html / "ntk.html").read_text(encoding="utf8")
    assert "bibliography.html#" in ntk      # citations link to the entries


@pytest.mark.slow
def test_no_answer_code_reaches_the_site(built_book):
    proc, html = built_book
    assert proc.returncode == 0
    assert not (html / "_sources").exists()
    leaks = ["def relu_kernels", "def layerwise_ntk", "class MLP", "def gd_kernel_predict", "np.arccos"]
    for f in html.rglob("*"):
        if f.is_file() and f.suffix in {".html", ".js", ".txt", ".md", ".ipynb", ".json"} \
                and "_downloads" not in f.parts and "mathjax" not in f.parts:
            text = f.read_text(encoding="utf8", errors="replace")
            for leak in leaks:
                assert leak not in text, (f, leak)
