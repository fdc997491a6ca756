"""Local Sphinx extension of the TFDL book.

0. Hidden code stays hidden: page sources are not copied into the site (see ``_config_inited``).
1. MathJax offline: copy MathJax 3 (``node_modules/mathjax/es5``, installed by ``npm ci`` from
   package-lock.json) into the site's ``_static/mathjax/`` and load it from there, so that the book
   never fetches MathJax from a CDN. The build fails if MathJax is not installed.
2. Launch links: the Binder / Colab / GitHub links of each chapter's assignment are derived from
   ``repository: url`` and ``repository: branch`` of ``_config.yml`` (configured once) and exposed
   as MyST substitutions ``{{ binder_<name> }}``, ``{{ colab_<name> }}``, ``{{ github_<name> }}``
   for every assignment in ``ASSIGNMENTS``.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import quote

from sphinx.errors import ExtensionError

ASSIGNMENTS = ["ntk"]          # exercises/<name>/<name>.ipynb
MATHJAX_COMPONENT = "tex-chtml.js"


def _mathjax_source(app) -> Path:
    env = os.environ.get("TFDL_MATHJAX_DIR")
    if env:
        return Path(env)
    return Path(app.confdir).resolve().parent / "node_modules" / "mathjax" / "es5"


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
    config.html_theme_options = {**(config.html_theme_options or {}), "use_download_button": False}

    opts = config.html_theme_options or {}
    url = (opts.get("repository_url") or "").rstrip("/")
    branch = opts.get("repository_branch") or "main"
    if not url.startswith("https://github.com/"):
        raise ExtensionError("_config.yml: repository: url must be a https://github.com/<owner>/<repo> URL")
    slug = url[len("https://github.com/"):]
    subs = dict(config.myst_substitutions or {})
    subs["repository_url"] = url
    for name in ASSIGNMENTS:
        path = f"exercises/{name}/{name}.ipynb"
        subs[f"binder_{name}"] = (
            f"[Binder](https://mybinder.org/v2/gh/{slug}/{branch}?urlpath={quote('lab/tree/' + path, safe='')})"
        )
        subs[f"colab_{name}"] = f"[Colab](https://colab.research.google.com/github/{slug}/blob/{branch}/{path})"
        subs[f"github_{name}"] = f"[GitHub]({url}/blob/{branch}/{path})"
    config.myst_substitutions = subs


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


def setup(app):
    app.connect("config-inited", _config_inited, priority=900)
    app.connect("build-finished", _copy_mathjax)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
