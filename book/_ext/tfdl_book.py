"""Local Sphinx extension of the TFDL book.

0. Hidden code stays hidden: page sources are not copied into the site (see ``_config_inited``).
1. MathJax offline: copy MathJax 3 (``node_modules/mathjax/es5``, installed by ``npm ci`` from
   package-lock.json) into the site's ``_static/mathjax/`` and load it from there, so that the book
   never fetches MathJax from a CDN. The build fails if MathJax is not installed.
2. Launch and download links, configured ONCE in ``_config.yml``: ``repository: url`` and
   ``repository: branch`` (the course repository), and ``launch_buttons: binderhub_url``,
   ``colab_url`` and ``jupyterhub_url`` (where students run notebooks). The extension takes the
   launch settings over from the theme (the chapters are not the notebooks students run, so the theme
   must not put launch buttons on them) and builds, for every released assignment
   ``exercises/<a>/<a>.ipynb``:

   * the **assignment box**: a page whose front matter declares ``assignment: <a>`` (or a list) gets,
     under its title, a one-line launch bar and, at its end, a box with the student notebook as a
     download and its Binder, Colab, JupyterHub (nbgitpuller) and GitHub links. A later chapter
     inherits all of it by declaring its assignment; declaring one that is not released fails the
     build (no link to a missing notebook).
   * the role ``{assignment}`ntk``` (the same links, inline; "coming later" when not released) and
     the role ``{chapter}`Title <docname>``` (a link when the chapter is in the book, otherwise the
     title marked "coming later"), used by the syllabus so that it never links to a missing page and
     turns into links by itself when a chapter or assignment is added;
   * MyST substitutions ``{{ binder_<a> }}``, ``{{ colab_<a> }}``, ``{{ github_<a> }}``, and the role
     ``{tfdl-launch}`<a>``` (Binder · Colab · JupyterHub).
3. Accessibility fixes of the theme (``static/tfdl.css`` and ``A11Y_FIXES`` applied to the written pages), a
   favicon, and light mode by default; checked by axe-core in tests/test_site.py.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from urllib.parse import quote, urlencode

import yaml
from docutils import nodes
from sphinx import addnodes
from sphinx.errors import ExtensionError
from sphinx.roles import XRefRole
from sphinx.util import logging

logger = logging.getLogger(__name__)

MATHJAX_COMPONENT = "tex-chtml.js"
LAUNCH_KEYS = ("binderhub_url", "jupyterhub_url", "colab_url", "deepnote_url")
STATIC = Path(__file__).resolve().parent / "static"


# ------------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------------
def _mathjax_source(app) -> Path:
    env = os.environ.get("TFDL_MATHJAX_DIR")
    if env:
        return Path(env)
    return Path(app.confdir).resolve().parent / "node_modules" / "mathjax" / "es5"


def course_root(app) -> Path:
    """The repository root: the folder that holds ``book/`` and ``exercises/``."""
    return Path(app.confdir).resolve().parent


def released_assignments(root: Path) -> dict[str, Path]:
    """Every released assignment: ``exercises/<a>/<a>.ipynb``."""
    found = {}
    for d in sorted((root / "exercises").glob("*")):
        nb = d / f"{d.name}.ipynb"
        if nb.is_file():
            found[d.name] = nb
    return found


def _title(notebook: Path, name: str) -> str:
    try:
        cells = json.loads(notebook.read_text(encoding="utf8"))["cells"]
        for cell in cells:
            if cell["cell_type"] == "markdown":
                src = "".join(cell["source"])
                m = re.search(r"^#\s+(.+)$", src, re.M)
                if m:
                    return re.sub(r"^Assignment:\s*", "", m.group(1).strip())
                break
    except (OSError, ValueError, KeyError):
        pass
    return name


def launch_urls(settings: dict, name: str) -> dict[str, str]:
    """The launch URLs of assignment ``name`` (pure function of the configuration; the tests use it)."""
    url, branch = settings["repository_url"], settings["branch"]
    slug = url[len("https://github.com/"):]
    repo_name = slug.split("/")[-1]
    path = f"exercises/{name}/{name}.ipynb"
    interface = "tree" if settings.get("notebook_interface") == "classic" else "lab/tree"
    urls = {"github": f"{url}/blob/{branch}/{path}"}
    binder = settings.get("binderhub_url", "").rstrip("/")
    if binder:
        urls["binder"] = f"{binder}/v2/gh/{slug}/{branch}?urlpath={quote(interface + '/' + path, safe='')}"
    colab = settings.get("colab_url", "").rstrip("/")
    if colab:
        urls["colab"] = f"{colab}/github/{slug}/blob/{branch}/{path}"
    hub = settings.get("jupyterhub_url", "").rstrip("/")
    if hub:
        # nbgitpuller: clones (or updates) the repository into ~/<repo_name> and opens the notebook
        query = urlencode({"repo": url, "branch": branch, "urlpath": f"{interface}/{repo_name}/{path}"})
        urls["jupyterhub"] = f"{hub}/hub/user-redirect/git-pull?{query}"
    return urls


LABELS = {"binder": "Binder", "colab": "Colab", "jupyterhub": "the school's JupyterHub", "github": "GitHub"}
SHORT = {**LABELS, "jupyterhub": "JupyterHub"}


def _config_inited(app, config):
    src = _mathjax_source(app)
    if not (src / MATHJAX_COMPONENT).is_file():
        raise ExtensionError(
            f"MathJax not found at {src}: run `npm ci` at the repository root "
            "(the book serves MathJax from its own files, never from a CDN)."
        )
    config.mathjax_path = f"mathjax/{MATHJAX_COMPONENT}"

    # The chapters hide the code that answers graded exercises (remove-input / remove-cell tags).
    # Do not publish the page sources (_sources/*.md would contain that code), nor the theme's
    # "download this page as .md/.ipynb" button that links to them.
    config.html_copy_source = False
    config.html_show_sourcelink = False
    opts = {**(config.html_theme_options or {}), "use_download_button": False}
    # light by default (the theme's empty default mode logs a console error); readers can still switch
    config.html_context = {"default_mode": "light", **(config.html_context or {})}
    if not config.html_favicon:
        config.html_favicon = str(Path(__file__).resolve().parent / "favicon.svg")

    url = (opts.get("repository_url") or "").rstrip("/")
    branch = opts.get("repository_branch") or "main"
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ExtensionError("_config.yml: repository: url must be a https://github.com/<owner>/<repo> URL")
    # Take the launch settings over from the theme: it would put launch buttons on the chapters.
    launch = dict(opts.get("launch_buttons") or {})
    settings = {"repository_url": url, "branch": branch,
                "notebook_interface": launch.get("notebook_interface", "jupyterlab"),
                **{k: (launch.get(k) or "") for k in LAUNCH_KEYS}}
    opts["launch_buttons"] = {k: v for k, v in launch.items() if k not in LAUNCH_KEYS}
    config.html_theme_options = opts
    config.tfdl_launch = settings

    root = course_root(app)
    assignments = released_assignments(root)
    app.tfdl_assignments = {a: {"title": _title(nb, a), "urls": launch_urls(settings, a)}
                            for a, nb in assignments.items()}

    subs = dict(config.myst_substitutions or {})
    subs["repository_url"] = url
    for name, info in app.tfdl_assignments.items():
        # (no JupyterHub substitution: MyST escapes the `&` of its query twice; use {tfdl-launch}`<a>`)
        for kind, key in (("binder", "binder"), ("colab", "colab"), ("github", "github")):
            if kind in info["urls"]:
                subs[f"{key}_{name}"] = f"[{SHORT[kind]}]({info['urls'][kind]})"
    config.myst_substitutions = subs

    config.html_static_path = list(config.html_static_path or []) + [str(STATIC)]


# ------------------------------------------------------------------------------------------------
# The assignment box of a page that declares ``assignment: <name>`` in its front matter
# ------------------------------------------------------------------------------------------------
_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)


def _declared(source: str) -> list[str]:
    m = _FRONT.match(source)
    if not m:
        return []
    try:
        meta = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError:
        return []
    value = meta.get("assignment") if isinstance(meta, dict) else None
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _online(name: str) -> str:
    # through a role, not Markdown links: MyST escapes the `&` of a query string twice
    return f"{{tfdl-launch}}`{name}`"


def _bar(name: str, info: dict) -> str:
    return (f"\n:::{{admonition}} Assignment: {info['title']}\n:class: tip tfdl-launch\n\n"
            f"{{download}}`Download {name}.ipynb </../exercises/{name}/{name}.ipynb>` · run it on "
            f"{_online(name)}. The box at the end of this page says how to work on it.\n:::\n")


def _box(name: str, info: dict) -> str:
    urls = info["urls"]
    return f"""

(assignment-{name})=
## Get the notebook: {info['title']}

:::{{admonition}} The assignment `{name}`
:class: tip tfdl-assignment

- **Download** the student notebook {{download}}`{name}.ipynb </../exercises/{name}/{name}.ipynb>` and open it
  in the course environment: `jupyter lab {name}.ipynb` (set-up: {{doc}}`/guide/students`).
- **Run it online:** {_online(name)}. Outside the course environment, the first cell of the
  notebook tells you how to install the checks.
- **Self-check** before you submit: `tfdl check exercises/{name}/{name}.ipynb`.
- View it on [GitHub]({urls['github']}).
:::
"""


def _insert_after_title(source: str, text: str) -> str:
    """Insert ``text`` after the first level-1 heading outside code fences (or after the front matter)."""
    m = _FRONT.match(source)
    start = m.end() if m else 0
    lines = source[start:].split("\n")
    fence = None
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        f = re.match(r"(`{3,}|~{3,}|:{3,})", stripped)
        if f:
            if fence is None:
                fence = f.group(1)
            elif set(stripped.rstrip()) == {fence[0]} and len(stripped.rstrip()) >= len(fence):
                fence = None
            continue
        if fence is None and re.match(r"#\s+\S", line):
            lines.insert(i + 1, text)
            return source[:start] + "\n".join(lines)
    return source[:start] + text + "\n" + source[start:]


def _source_read(app, docname, source):
    names = _declared(source[0])
    if not names:
        return
    text = source[0]
    for name in names:
        info = app.tfdl_assignments.get(name)
        if info is None:
            logger.warning(f"{docname}: front matter declares `assignment: {name}` but "
                           f"exercises/{name}/{name}.ipynb does not exist (run `tfdl release {name}`)",
                           location=docname, type="tfdl", subtype="assignment")
            continue
        text = _insert_after_title(text, _bar(name, info)) + _box(name, info)
    source[0] = text


# ------------------------------------------------------------------------------------------------
# Roles of the syllabus: {chapter}`Title <docname>` and {assignment}`name`
# ------------------------------------------------------------------------------------------------
def _env(inliner):
    return inliner.document.settings.env


def chapter_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    m = re.fullmatch(r"\s*(.*?)\s*<([^<>]+)>\s*", text, re.S)
    title, target = (m.group(1), m.group(2).strip()) if m else (text.strip(), text.strip())
    env = _env(inliner)
    doc = target.lstrip("/")
    if doc in env.found_docs:
        ref = addnodes.pending_xref(rawtext, refdomain="std", reftype="doc", reftarget="/" + doc,
                                    refexplicit=True, refwarn=True, refdoc=env.docname)
        ref += nodes.inline(title, title)
        return [ref], []
    node = nodes.inline(rawtext, "", classes=["tfdl-coming-later"])
    node += nodes.emphasis(title, title)
    node += nodes.Text(" (chapter coming later)")
    return [node], []


_download = XRefRole(nodeclass=addnodes.download_reference)


def assignment_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    a = text.strip()
    app = _env(inliner).app
    info = app.tfdl_assignments.get(a)
    if info is None:
        node = nodes.inline(rawtext, "", classes=["tfdl-coming-later"])
        node += nodes.literal(a, a)
        node += nodes.Text(" (assignment coming later)")
        return [node], []
    out, msgs = _download("download", rawtext, f"{a}.ipynb </../exercises/{a}/{a}.ipynb>", lineno, inliner,
                          options or {}, content or [])
    return [nodes.Text("download "), *out, nodes.Text(" · "), *_launch_nodes(info, short=True)], msgs


def _launch_nodes(info: dict, short: bool) -> list:
    out = []
    for kind in ("binder", "colab", "jupyterhub"):
        if kind in info["urls"]:
            label = (SHORT if short else LABELS)[kind]
            if out:
                out.append(nodes.Text(" · "))
            out.append(nodes.reference(label, label, refuri=info["urls"][kind]))
    return out


def launch_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """{tfdl-launch}`ntk`: the Binder · Colab · JupyterHub links of a released assignment."""
    info = _env(inliner).app.tfdl_assignments.get(text.strip())
    if info is None:
        msg = inliner.reporter.error(f"no released assignment {text.strip()!r}", line=lineno)
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    return _launch_nodes(info, short=False), []


# ------------------------------------------------------------------------------------------------
def _copy_mathjax(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    src = _mathjax_source(app)
    dst = Path(app.outdir) / "_static" / "mathjax"
    stamp = dst / ".source"
    if stamp.is_file() and stamp.read_text() == str(src) and (dst / MATHJAX_COMPONENT).is_file():
        return
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    stamp.write_text(str(src))


# Accessibility fixes of the HTML the theme and docutils write (axe-core, WCAG 2.1; tests/test_site.py):
A11Y_FIXES = [
    # the search buttons' aria-label "Search" hides their visible text "Search Ctrl+K" (label-content-name-mismatch)
    (re.compile(r'(<button class="btn search-button-field[^"]*"[^>]*?) aria-label="Search"'), r"\1"),
    # the colour-mode button: its icons' titles are read as its text (label-content-name-mismatch)
    (re.compile(r'<i class="theme-switch ([^"]*)" data-mode="(\w+)"\s+title="[^"]*"'),
     r'<i aria-hidden="true" class="theme-switch \1" data-mode="\2"'),
    # citations: role doc-biblioentry is deprecated, and a role="list" may hold only list items
    (re.compile(r'<div role="list" class="citation-list">'), '<div class="citation-list">'),
    (re.compile(r'(<div class="citation" id="[^"]*") role="doc-biblioentry"'), r"\1"),
]


def _fix_html(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    for page in Path(app.outdir).rglob("*.html"):
        if "_static" in page.parts:
            continue
        text = page.read_text(encoding="utf8")
        fixed = text
        for pattern, repl in A11Y_FIXES:
            fixed = pattern.sub(repl, fixed)
        if fixed != text:
            page.write_text(fixed, encoding="utf8")


def setup(app):
    app.add_config_value("tfdl_launch", {}, "env")
    app.connect("config-inited", _config_inited, priority=900)
    app.connect("source-read", _source_read)
    app.connect("build-finished", _copy_mathjax)
    app.connect("build-finished", _fix_html)
    app.add_role("chapter", chapter_role)
    app.add_role("assignment", assignment_role)
    app.add_role("tfdl-launch", launch_role)
    app.add_css_file("tfdl.css")
    return {"version": "2.0", "parallel_read_safe": True, "parallel_write_safe": True}
