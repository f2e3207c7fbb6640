"""Sphinx extension: every page's Colab button opens the *student* twin of its notebook.

sphinx-book-theme builds the Colab link from ``repository.url`` as
``.../blob/<branch>/book/<chapter>.ipynb`` -- the notebook with the solutions. Learners should
get ``student/<chapter>.ipynb`` (solutions replaced by stubs, a Colab install cell first), so
this handler runs after the theme's (priority 501) and rewrites that one link. The download menu
likewise serves the student notebook.
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
    if str(context.get("page_source_suffix")) == ".ipynb":
        student_download(context, pagename)


def student_download(context, pagename):
    """The download menu of a chapter offers the student notebook (the copy in the site's
    ``student/``, see chapter_page.py), not the book's notebook with solutions and no outputs."""
    name = pagename.rsplit("/", 1)[-1] + ".ipynb"
    for group in context.get("header_buttons") or []:
        if not isinstance(group, dict) or group.get("label") != "download-buttons":
            continue
        kept = []
        for button in group.get("buttons", []):
            if button.get("label") == "download-notebook-button":
                button.update(url=context["pathto"](f"student/{name}", 1), text="student .ipynb",
                              tooltip="Download the student notebook (exercises unsolved)")
            elif button.get("label") == "download-source-button":
                continue  # the book's .ipynb: solutions, no outputs
            kept.append(button)
        group["buttons"] = kept


def setup(app):
    app.connect("html-page-context", rewrite_colab_link, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
