"""Sphinx extension: every page's Colab button opens the *student* twin of its notebook.

sphinx-book-theme builds the Colab link from ``repository.url`` as
``.../blob/<branch>/book/<chapter>.ipynb`` -- the notebook with the solutions. Learners should
get ``student/<chapter>.ipynb`` (solutions replaced by stubs, a Colab install cell first), so
this handler runs after the theme's (priority 501) and rewrites that one link.
"""
from __future__ import annotations

BOOK_DIR, STUDENT_DIR = "/book/", "/student/"


def student_url(url: str, branch: str) -> str:
    """``.../blob/<branch>/book/x.ipynb`` -> ``.../blob/<branch>/student/x.ipynb``."""
    marker = f"/blob/{branch}{BOOK_DIR}"
    if marker not in url:
        return url
    return url.replace(marker, f"/blob/{branch}{STUDENT_DIR}", 1)


def _colab_buttons(buttons):
    for button in buttons or []:
        if isinstance(button, dict):
            if "colab" in str(button.get("url", "")):
                yield button
            yield from _colab_buttons(button.get("buttons"))


def rewrite_colab_link(app, pagename, templatename, context, doctree):
    branch = app.config.html_theme_options.get("repository_branch", "main") or "main"
    for button in _colab_buttons(context.get("header_buttons")):
        button["url"] = student_url(button["url"], branch)
        button["tooltip"] = "Launch the student notebook (exercises unsolved) on Colab"


def setup(app):
    app.connect("html-page-context", rewrite_colab_link, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
