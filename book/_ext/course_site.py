"""Sphinx extension: the site's frame -- navigation that works, offline assets, stamp and metadata.

* **Navigation.** pydata-sphinx-theme 0.17 (which sphinx-book-theme 1.3 pins) renders its own top
  navbar (``#pst-header``) with a second ``.primary-toggle`` / ``.secondary-toggle`` pair and a
  search field. The theme's script wires only the *first* ``.primary-toggle`` of the page -- the
  hidden one in that navbar -- so the visible ☰ and contents buttons did nothing, and the navbar
  showed as a stray 64 px bar with a duplicate search box. With no navbar items the theme does not
  render that navbar at all (``navbar_persistent = []``; the sidebar keeps its search field), and
  the visible buttons are the first ones again.
* **No request to another host.** sphinx-thebe (loaded by Jupyter Book, unused here: no live
  code) declared ``const THEBE_JS_URL`` twice on every page (a console error) and points at a CDN:
  its scripts are dropped. MathJax comes from the site (``sphinx-mathjax-offline``); the build
  fails if a page would still load a script or stylesheet from another host.
* **Stamp and metadata.** The footer says when and from which commit the site was built; every page
  gets a meta description and OpenGraph tags (title, description, URL, site name).
* **Static files** of ``book/_static`` (style, click-to-zoom, favicon) are added to every page.
"""
from __future__ import annotations

import datetime as _dt
import html
import re
import subprocess
from pathlib import Path

from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent.parent / "_static"
CSS_FILES = ("course.css",)
JS_FILES = ("course.js",)
DESCRIPTION = ("An open, executable course on advanced deep learning architectures: attention and "
               "Transformers, ViT, detection, GANs, autoencoders, CLIP, diffusion and medical imaging.")
_THEBE = re.compile(r"thebe", re.I)
_EXTERNAL = re.compile(r"^(https?:)?//", re.I)


def build_stamp(srcdir: str) -> tuple[str, str]:
    """``(date, commit)`` of this build: today's UTC date and the short commit of HEAD ('' outside git)."""
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")
    try:
        done = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=srcdir,
                              capture_output=True, text=True, timeout=20)
        commit = done.stdout.strip() if done.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return date, commit


def configure(app, config):
    """Theme options that fix the navigation, the footer stamp and the site's own static folder."""
    options = config.html_theme_options
    for key in ("navbar_start", "navbar_center", "navbar_end", "navbar_persistent"):
        options[key] = []  # no pydata navbar: no duplicate toggles, no stray bar
    # the theme's script reads the colour mode from here; empty, it logs a console error
    config.html_context.setdefault("default_mode", "auto")
    date, commit = build_stamp(app.srcdir)
    repo = str(options.get("repository_url", "")).rstrip("/")
    if commit and repo:
        ref = f'<a href="{html.escape(repo)}/commit/{commit}"><code>{commit}</code></a>'
    else:
        ref = f"<code>{commit or 'an uncommitted tree'}</code>"
    stamp = f'<p class="course-build-stamp">Built {date} from commit {ref}.</p>'
    options["extra_footer"] = (options.get("extra_footer") or "") + stamp
    app.config.course_build_stamp = (date, commit)
    if str(STATIC) not in [str(Path(app.srcdir, p)) for p in config.html_static_path]:
        config.html_static_path.append(str(STATIC))
    if not config.html_favicon:
        config.html_favicon = str(STATIC / "favicon.svg")


def _page_description(doctree) -> str:
    """The first paragraph of the page (its opening sentence or two), else the course's description."""
    if doctree is None:
        return DESCRIPTION
    for para in doctree.findall(nodes.paragraph):
        if any(isinstance(a, (nodes.admonition, nodes.Admonition)) for a in _ancestors(para)):
            continue
        text = " ".join(para.astext().split())
        if len(text) > 40:
            return text if len(text) <= 200 else text[:197].rsplit(" ", 1)[0] + "..."
    return DESCRIPTION


def _ancestors(node):
    node = node.parent
    while node is not None:
        yield node
        node = node.parent


def page_context(app, pagename, templatename, context, doctree):
    """Drop thebe's scripts, refuse any asset from another host, add description and OpenGraph."""
    scripts = []
    for js in context.get("script_files", []):
        filename = getattr(js, "filename", js) or ""
        body = (getattr(js, "attributes", {}) or {}).get("body", "")
        if _THEBE.search(str(filename)) or _THEBE.search(str(body)):
            continue
        scripts.append(js)
    context["script_files"] = scripts
    context["css_files"] = [c for c in context.get("css_files", [])
                            if not _THEBE.search(str(getattr(c, "filename", c)))]
    for asset in scripts + context["css_files"]:
        filename = str(getattr(asset, "filename", asset) or "")
        if _EXTERNAL.match(filename):
            logger.warning(f"{pagename}: the page would load {filename} from another host; the site "
                           f"must work offline (serve it from _static)", type="course", subtype="offline")

    title = re.sub(r"<[^>]+>", "", context.get("title") or app.config.html_title or "")
    description = _page_description(doctree)
    base = (app.config.html_baseurl or "").rstrip("/")
    if not base:
        try:
            from course_utils.authoring import site_url

            base = site_url(Path(app.srcdir))
        except Exception:  # a book without the course's repository settings
            base = ""
    url = f"{base}/{pagename}.html" if base else ""
    tags = [
        f'<meta name="description" content="{html.escape(description)}" />',
        f'<meta property="og:title" content="{html.escape(title)}" />',
        f'<meta property="og:description" content="{html.escape(description)}" />',
        '<meta property="og:type" content="website" />',
        f'<meta property="og:site_name" content="{html.escape(app.config.html_title or "")}" />',
    ]
    if url:
        tags.append(f'<meta property="og:url" content="{html.escape(url)}" />')
    context["metatags"] = context.get("metatags", "") + "\n".join(tags) + "\n"


def setup(app):
    app.add_config_value("course_build_stamp", ("", ""), "html")
    app.connect("config-inited", configure, priority=900)
    for css in CSS_FILES:
        app.add_css_file(css)
    for js in JS_FILES:
        app.add_js_file(js, **{"defer": "defer"})
    app.connect("html-page-context", page_context, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
