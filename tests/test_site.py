"""The built book as a reader meets it: every page in headless Chromium, served from 127.0.0.1.

Slow (the book build is shared with tests/test_book.py through tests/book_site.py; the browser part takes about
a minute). Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and the npm package
``axe-core`` (``npm ci``). Selenium talks to /usr/bin/chromedriver directly (Selenium Manager, which would
download a driver, is never used). Every page of the site is loaded ONCE and the module-scoped fixture
``visits`` records, per page:

* every request the browser makes (Chrome DevTools Protocol performance log): none may leave the machine;
* the console: no error, no failed load;
* math: MathJax has rendered every ``.math`` element (an ``mjx-container`` inside) and no TeX delimiter is
  left in the text of the page outside code;
* images: each has alt text and has loaded (``naturalWidth > 0``);
* links: every internal link and anchor resolves (the target file exists, the fragment is an id there);
* accessibility: axe-core, WCAG 2.1 A and AA rules, zero violations except the allow-list below.

Screenshots of a few pages are written to ``book/_build/browser-test/`` (git-ignored); the test prints it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import threading
import urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
import yaml

from tests.book_site import REPO, build_site

AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = REPO / "book" / "_build" / "browser-test"
SCREENSHOTS = ["intro.html", "syllabus.html", "ntk.html"]
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

# axe-core rules that may fail, each with its reason. Keep this list short: fix the page (book/_ext/static/
# tfdl.css, the chapter) rather than add to it. Entries: rule id -> reason.
AXE_ALLOWED: dict[str, str] = {}

# Console messages that are not errors of the site (substring -> reason).
CONSOLE_ALLOWED: dict[str, str] = {}

# URL schemes a page may request without leaving the machine. chrome-untrusted: the browser's own pages (its
# new-tab page, whose resource chrome-untrusted://new-tab-page/... was once recorded beside bibliography.html),
# served from the browser's resources; a request such a page sent to the network would be http(s), and caught.
LOCAL_SCHEMES = {"data", "blob", "about", "chrome", "chrome-untrusted", "chrome-extension", "devtools"}

pytestmark = pytest.mark.slow


# ------------------------------------------------------------------------------------------------
# Fixtures: the built site, a local server, a browser
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def site(tmp_path_factory):
    try:
        s = build_site(tmp_path_factory)
    except RuntimeError as e:
        pytest.fail(str(e))
    assert s.proc.returncode == 0, s.proc.stdout[-5000:] + "\n" + s.proc.stderr[-5000:]
    return s


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass        # the browser closing a connection early (BrokenPipe) is not a failure of the site


@pytest.fixture(scope="module")
def server(site):
    httpd = _Server(("127.0.0.1", 0), partial(_Quiet, directory=str(site.html)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _executable(name: str, env: str, default: str) -> str:
    path = os.environ.get(env) or shutil.which(name) or default
    if not Path(path).is_file():
        pytest.fail(f"{name} not found ({path}): `apt-get install -y chromium chromium-driver` (.ci/run does it)")
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = _executable("chromium", "TFDL_CHROMIUM", "/usr/bin/chromium")
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,900",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    service = Service(executable_path=_executable("chromedriver", "TFDL_CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(options=opts, service=service)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


# ------------------------------------------------------------------------------------------------
# One visit per page
# ------------------------------------------------------------------------------------------------
WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
const ready = () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(() => done('rendered')).catch(e => done('error: ' + e));
  } else { done(window.MathJax ? 'loading' : 'absent'); }
};
if (document.readyState === 'complete') ready(); else window.addEventListener('load', ready);
"""

INSPECT = r"""
const skip = new Set(['PRE', 'CODE', 'SCRIPT', 'STYLE', 'TEXTAREA', 'MJX-CONTAINER', 'NOSCRIPT']);
const tex = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
  acceptNode(n) {
    for (let e = n.parentElement; e; e = e.parentElement) if (skip.has(e.tagName)) return NodeFilter.FILTER_REJECT;
    return NodeFilter.FILTER_ACCEPT;
  }});
while (walker.nextNode()) {
  const t = walker.currentNode.textContent;
  if (/\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{/.test(t)) tex.push(t.trim().slice(0, 120));
}
const math = [...document.querySelectorAll('.math')];
return {
  title: document.title,
  math: math.length,
  unrendered: math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.trim().slice(0, 120)),
  mjx: document.querySelectorAll('mjx-container').length,
  tex: tex,
  images: [...document.images].map(i => ({src: i.currentSrc || i.src, alt: i.getAttribute('alt'),
                                          role: i.getAttribute('role'), width: i.naturalWidth, complete: i.complete})),
  links: [...document.querySelectorAll('a[href]')].map(a => ({href: a.href, raw: a.getAttribute('href'),
                                                             text: a.textContent.trim().slice(0, 80)})),
  ids: [...document.querySelectorAll('[id]')].map(e => e.id),
};
"""

RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})
  .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + (n.failureSummary || '').slice(0, 200))}))))
  .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));
"""


def _pages(html: Path) -> list[str]:
    return sorted(str(p.relative_to(html)) for p in html.rglob("*.html")
                  if "_static" not in p.parts and "_downloads" not in p.parts)


def _requests(perf_log) -> list[str]:
    urls = []
    for entry in perf_log:
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
        elif msg.get("method") == "Network.webSocketCreated":
            urls.append(msg["params"]["url"])
    return urls


@pytest.fixture(scope="module")
def visits(site, server, browser):
    if not AXE.is_file():
        pytest.fail("node_modules/axe-core is missing: run `npm ci` (make does it)")
    axe = AXE.read_text(encoding="utf8")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    results = {}
    browser.get_log("performance")
    browser.get_log("browser")
    for page in _pages(site.html):
        browser.get(f"{server}/{page}")
        mathjax = browser.execute_async_script(WAIT_FOR_MATHJAX)
        info = browser.execute_script(INSPECT)
        browser.execute_script(axe)
        info["axe"] = browser.execute_async_script(RUN_AXE, WCAG_TAGS)
        info["mathjax"] = mathjax
        info["url"] = browser.current_url
        info["requests"] = _requests(browser.get_log("performance"))
        info["console"] = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        if page in SCREENSHOTS:
            browser.save_screenshot(str(ARTIFACTS / page.replace("/", "_").replace(".html", ".png")))
        results[page] = info
    print(f"\nbrowser-test screenshots: {ARTIFACTS}")
    return results


# ------------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------------
def test_every_page_is_visited(site, visits):
    assert {"intro.html", "syllabus.html", "ntk.html", "guide/students.html", "guide/instructors.html",
            "guide/self-study.html", "bibliography.html"} <= set(visits)


def test_no_request_leaves_the_machine(server, visits):
    host = urlsplit(server).netloc
    leaks = {}
    for page, info in visits.items():
        for url in info["requests"]:
            parts = urlsplit(url)
            if parts.scheme in LOCAL_SCHEMES:
                continue
            if parts.scheme not in ("http", "https", "ws", "wss") or parts.netloc != host:
                leaks.setdefault(page, []).append(url)
    assert not leaks, leaks
    assert any(visits["ntk.html"]["requests"]), "no request recorded: is the performance log on?"


def test_no_console_errors(visits):
    errors = {page: [e["message"] for e in info["console"]
                     if not any(s in e["message"] for s in CONSOLE_ALLOWED)]
              for page, info in visits.items()}
    errors = {p: e for p, e in errors.items() if e}
    assert not errors, json.dumps(errors, indent=1)[:6000]


def test_math_is_rendered_by_mathjax(visits):
    ntk = visits["ntk.html"]
    assert ntk["mathjax"] == "rendered" and ntk["math"] > 20 and ntk["mjx"] >= ntk["math"], ntk["mathjax"]
    for page, info in visits.items():
        if info["math"]:
            assert info["mathjax"] == "rendered", (page, info["mathjax"])
        assert not info["unrendered"], (page, info["unrendered"][:5])
        assert not info["tex"], (page, info["tex"][:5])


def test_every_image_has_alt_text_and_loads(visits):
    figures = 0
    for page, info in visits.items():
        for img in info["images"]:
            decorative = img["role"] == "presentation" or img["alt"] == "" and img["role"] == "none"
            assert decorative or (img["alt"] or "").strip(), (page, img)
            assert img["complete"] and img["width"] > 0, (page, "image did not load", img["src"])
            figures += "_images/" in img["src"]
    assert figures >= 3


def _ids_of(html: Path, page: str, visits) -> set[str]:
    if page in visits:
        return set(visits[page]["ids"])
    text = (html / page).read_text(encoding="utf8", errors="replace")
    return set(re.findall(r"""\bid=["']([^"']+)["']""", text))


def test_internal_links_and_anchors_resolve(site, server, visits):
    host = urlsplit(server).netloc
    broken = []
    checked = 0
    for page, info in visits.items():
        for link in info["links"]:
            parts = urlsplit(link["href"])
            if parts.scheme not in ("http", "https") or parts.netloc != host:
                continue
            target = unquote(parts.path).lstrip("/") or "index.html"
            if target.endswith("/"):
                target += "index.html"
            checked += 1
            if not (site.html / target).is_file():
                broken.append((page, link["raw"], "no such file"))
            elif parts.fragment and target.endswith(".html"):
                if unquote(parts.fragment) not in _ids_of(site.html, target, visits):
                    broken.append((page, link["raw"], f"no id {parts.fragment!r} in {target}"))
    assert checked > 50
    assert not broken, broken


def test_no_accessibility_violations(visits):
    found = {page: [v for v in info["axe"] if v["id"] not in AXE_ALLOWED] for page, info in visits.items()}
    found = {p: v for p, v in found.items() if v}
    assert not found, json.dumps(found, indent=1)[:8000]


# ------------------------------------------------------------------------------------------------
# Launch and download links
# ------------------------------------------------------------------------------------------------
def _front_matter(path: Path) -> dict:
    m = re.match(r"\A---\s*\n(.*?)\n---\s*\n", path.read_text(encoding="utf8"), re.S)
    return (yaml.safe_load(m.group(1)) or {}) if m else {}


def _toc_files(book: Path) -> list[str]:
    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                yield node["file"]
            for v in node.values():
                yield from walk(v)
        elif isinstance(node, list):
            for v in node:
                yield from walk(v)
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    return [toc["root"], *walk(toc)]


def test_every_chapter_declares_a_released_assignment(site):
    """An executed chapter (a page with a kernel) must declare its assignment, and that assignment is released."""
    book = site.root / "book"
    chapters = [f for f in _toc_files(book) if "kernelspec" in _front_matter(book / f"{f}.md")]
    assert "ntk" in chapters
    for chapter in chapters:
        declared = _front_matter(book / f"{chapter}.md").get("assignment")
        assert declared, f"book/{chapter}.md: add `assignment: <name>` to its front matter"
        for a in [declared] if isinstance(declared, str) else declared:
            assert (site.root / "exercises" / a / f"{a}.ipynb").is_file(), a


def test_launch_and_download_links_point_where_they_should(site, server, visits):
    book = site.root / "book"
    config = yaml.safe_load((book / "_config.yml").read_text())
    url, branch = config["repository"]["url"].rstrip("/"), config["repository"].get("branch", "main")
    launch = config["launch_buttons"]
    slug = url.removeprefix("https://github.com/")
    pages = {f: _front_matter(book / f"{f}.md").get("assignment") for f in _toc_files(book)
             if (book / f"{f}.md").is_file()}
    pages = {f: [a] if isinstance(a, str) else a for f, a in pages.items() if a}
    exercises = site.root / "exercises"
    pages["syllabus"] = [a for a in (p.name for p in exercises.iterdir())
                         if (exercises / a / f"{a}.ipynb").is_file()
                         and a in (book / "syllabus.md").read_text()]
    assert "ntk" in pages["ntk"] and "ntk" in pages["syllabus"]
    for page, assignments in pages.items():
        hrefs = [link["href"] for link in visits[f"{page}.html"]["links"]]
        for a in assignments:
            path = f"exercises/{a}/{a}.ipynb"
            binder = f"{launch['binderhub_url'].rstrip('/')}/v2/gh/{slug}/{branch}?urlpath={quote('lab/tree/' + path, safe='')}"
            colab = f"{launch['colab_url'].rstrip('/')}/github/{slug}/blob/{branch}/{path}"
            assert binder in hrefs, (page, a, "Binder")
            assert colab in hrefs, (page, a, "Colab")
            hub = [h for h in hrefs if h.startswith(launch["jupyterhub_url"].rstrip("/") + "/hub/user-redirect/git-pull?")
                   and path in unquote(h)]
            assert hub, (page, a, "JupyterHub")
            for h in hub:
                q = {k: v[0] for k, v in parse_qs(urlsplit(h).query).items()}
                assert q == {"repo": url, "branch": branch, "urlpath": f"lab/tree/{slug.split('/')[1]}/{path}"}, q
            downloads = [h for h in hrefs if h.startswith(server) and h.endswith(f"/{a}.ipynb")]
            assert downloads, (page, a, "download")
            for d in downloads:
                with urllib.request.urlopen(d) as r:
                    assert r.read() == (site.root / path).read_bytes(), (page, d, "is not the student notebook")
            if page != "syllabus":
                assert f"{url}/blob/{branch}/{path}" in hrefs, (page, a, "GitHub")


def test_no_launch_button_on_the_chapters_themselves(visits):
    # the chapters are not the notebooks students run: the theme must not add its own launch buttons
    for page, info in visits.items():
        own = [l["href"] for l in info["links"] if re.search(r"mybinder|colab|git-pull", l["href"])
               and re.search(r"book(/|%2F)\w+\.(md|ipynb)", l["href"])]
        assert not own, (page, own)
