"""Sphinx extension: what every chapter page shows under its title, and the intro's chapter map.

For each chapter (a notebook of ``book/``), generated at build time from the build's own data:

* a **badge row** under the title: *Open in Colab* (the student notebook, from ``repository.url``
  in _config.yml via :mod:`course_utils.authoring`), *Download the student notebook* (the
  ``student/`` twin, copied into the site), the chapter's **measured time** in this build (the
  wall-time line the notebook printed, else myst-nb's execution time) and the full profile's budget;
* the **run banner** printed by ``runtime.setup`` (profile, device, versions) moved right under the
  badges as one styled line;
* the **chapter map** of the intro (``{course-chapter-map}`` around a Markdown table) gains a column
  with each chapter's measured time.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.util import logging
from sphinx.util.osutil import relative_uri

logger = logging.getLogger(__name__)

COLAB = "https://colab.research.google.com/github"
FULL_BUDGET = "full profile: ≤ 10 min on a T4 GPU (budget)"
# "wall time: 63.2 s (profile fast, device cpu)" -- printed by Runtime.report()
WALL_TIME = re.compile(r"wall time:\s*(?P<s>[\d.]+)\s*s\s*\(profile\s+(?P<profile>\w+),\s*device\s+(?P<device>[\w:]+)\)")
BANNER_CLASS = "course-banner"


# ---------------------------------------------------------------------------------------------
# Chapters and their measured times
# ---------------------------------------------------------------------------------------------
def is_chapter(env, docname: str) -> bool:
    return Path(env.doc2path(docname)).suffix == ".ipynb"


def _times(env) -> dict:
    if not hasattr(env, "course_chapter_times"):
        env.course_chapter_times = {}
    return env.course_chapter_times


def measured_time(doctree, exec_runtime) -> dict | None:
    """The chapter's time: the wall-time line of its outputs, else the execution time (seconds)."""
    for block in doctree.findall(nodes.literal_block):
        match = WALL_TIME.search(block.astext())
        if match and "output" in block.get("classes", []):
            return {"seconds": float(match["s"]), "profile": match["profile"], "device": match["device"]}
    if exec_runtime:
        return {"seconds": float(exec_runtime), "profile": "", "device": ""}
    return None


def collect_time(app, doctree):
    env = app.env
    if not is_chapter(env, env.docname):
        return
    runtime = None
    try:
        from myst_nb.sphinx_ import NbMetadataCollector

        data = NbMetadataCollector.get_exec_data(env, env.docname)
        runtime = (data or {}).get("runtime") if (data or {}).get("succeeded", True) else None
    except ImportError:  # pragma: no cover - myst-nb is what makes notebooks pages at all
        pass
    _times(env)[env.docname] = measured_time(doctree, runtime)


def purge(app, env, docname):
    _times(env).pop(docname, None)


def merge(app, env, docnames, other):
    _times(env).update({d: t for d, t in _times(other).items() if d in docnames})


def format_time(t: dict | None) -> str:
    if not t:
        return "not executed in this build"
    s = t["seconds"]
    text = f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"
    where = ", ".join(x for x in (t.get("profile") and f"{t['profile']} profile", t.get("device")) if x)
    return f"{text} ({where})" if where else text


# ---------------------------------------------------------------------------------------------
# The badge row and the banner
# ---------------------------------------------------------------------------------------------
def student_file(app, docname: str) -> Path:
    return Path(app.srcdir) / "student" / f"{Path(docname).name}.ipynb"


def colab_url(app, docname: str) -> str:
    from course_utils.authoring import repository_url

    url, branch = repository_url(Path(app.srcdir))
    owner_repo = re.sub(r"^https?://github\.com/", "", url)
    return f"{COLAB}/{owner_repo}/blob/{branch}/student/{Path(docname).name}.ipynb"


def badge_row(app, docname: str) -> nodes.raw:
    import html

    here = app.builder.get_target_uri(docname)
    download = relative_uri(here, f"student/{Path(docname).name}.ipynb")
    time = format_time(_times(app.env).get(docname))
    items = [
        f'<a class="course-badge course-badge-colab" href="{html.escape(colab_url(app, docname))}" '
        f'target="_blank" rel="noopener">Open in Colab</a>',
        f'<a class="course-badge course-badge-download" href="{html.escape(download)}" '
        f'download="{Path(docname).name}.ipynb">Download the student notebook</a>',
        f'<span class="course-badge course-badge-time" title="Measured when this site was built">'
        f'measured: {html.escape(time)}</span>',
        f'<span class="course-badge course-badge-budget">{html.escape(FULL_BUDGET)}</span>',
    ]
    return nodes.raw("", f'<div class="course-badges">{"".join(items)}</div>', format="html")


def _banner_output(doctree):
    """The node of the output printed by ``runtime.setup`` (HTML banner, or its plain text)."""
    for raw in doctree.findall(nodes.raw):
        if f'class="{BANNER_CLASS}"' in raw.astext():
            return raw
    for block in doctree.findall(nodes.literal_block):
        if "output" in block.get("classes", []) and block.astext().lstrip().startswith("profile:"):
            return block
    return None


def _banner_node(found) -> nodes.Node:
    if isinstance(found, nodes.raw):
        return found
    import html

    first, _, rest = found.astext().strip().partition("\n")
    items = " · ".join(f'<span class="{BANNER_CLASS}-item">{html.escape(p.strip())}</span>' for p in first.split("|"))
    if rest:
        items += f' · <span class="{BANNER_CLASS}-versions">{html.escape(rest.strip())}</span>'
    return nodes.raw("", f'<div class="{BANNER_CLASS}">{items}</div>', format="html")


def decorate_chapter(app, doctree, docname):
    if app.builder.format != "html":
        return
    if is_chapter(app.env, docname):
        section = next(iter(doctree.findall(nodes.section)), None)
        if section is None:
            return
        title = next((i for i, child in enumerate(section.children) if isinstance(child, nodes.title)), -1)
        insert = [badge_row(app, docname)]
        banner = _banner_output(doctree)
        if banner is not None:
            banner.parent.remove(banner)
            insert.append(_banner_node(banner))
        section[title + 1:title + 1] = insert
    for placeholder in list(doctree.findall(chapter_time)):
        placeholder.replace_self(nodes.Text(format_time(_times(app.env).get(placeholder["docname"]))))


def copy_student_notebooks(app, exc):
    if exc is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "student"
    for docname in sorted(app.env.found_docs):
        if not is_chapter(app.env, docname):
            continue
        source = student_file(app, docname)
        if not source.exists():
            logger.warning(f"{docname}: no student notebook {source.name} in student/ "
                           "(run `make student`)", type="course", subtype="student")
            continue
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target / source.name)


# ---------------------------------------------------------------------------------------------
# The intro's chapter map
# ---------------------------------------------------------------------------------------------
class chapter_time(nodes.Inline, nodes.TextElement):
    """Replaced by a chapter's measured time when the page is written (all chapters read by then)."""


class ChapterMap(Directive):
    """A Markdown table of chapters (a link to each chapter's notebook in every row), given a last
    column with each chapter's measured time in this build."""

    has_content = True
    HEADER = "measured time (this build)"

    def run(self):
        env = self.state.document.settings.env
        container = nodes.container(classes=["course-chapter-map"])
        self.state.nested_parse(self.content, self.content_offset, container)
        tables = list(container.findall(nodes.table))
        if len(tables) != 1:
            raise self.error("course-chapter-map needs exactly one Markdown table as its content")
        tgroup = next(tables[0].findall(nodes.tgroup))
        colspecs = [c for c in tgroup.children if isinstance(c, nodes.colspec)]
        tgroup.insert(len(colspecs), nodes.colspec(colwidth=colspecs[-1]["colwidth"] if colspecs else 10))
        tgroup["cols"] = len(colspecs) + 1
        stems = {Path(d).name: d for d in env.found_docs if is_chapter(env, d)}
        for head in tgroup.findall(nodes.thead):
            for row in head.findall(nodes.row):
                row += nodes.entry("", nodes.paragraph(text=self.HEADER))
        for body in tgroup.findall(nodes.tbody):
            for row in body.findall(nodes.row):
                found = None
                for node in row.findall(nodes.Element):
                    target = " ".join(str(node.get(k, "")) for k in ("reftarget", "refuri"))
                    found = next((d for s, d in stems.items() if re.search(rf"\b{re.escape(s)}\b", target)), None)
                    if found:
                        break
                if found is None:
                    raise self.error(f"course-chapter-map: a row links no chapter: {row.astext()[:80]!r}")
                row += nodes.entry("", nodes.paragraph("", "", chapter_time("", docname=found)))
        return [container]


def outdated(app, env, added, changed, removed):
    """The intro shows every chapter's time: rewrite it when a chapter was read again."""
    pages = getattr(env, "course_chapter_map_pages", set())
    if pages and any(is_chapter(env, d) for d in added | changed):
        return sorted(pages - added - changed)
    return []


def note_map_page(app, doctree):
    if any(True for _ in doctree.findall(chapter_time)):
        pages = getattr(app.env, "course_chapter_map_pages", set())
        pages.add(app.env.docname)
        app.env.course_chapter_map_pages = pages


def setup(app):
    app.add_node(chapter_time, html=(lambda self, node: None, lambda self, node: None))
    app.add_directive("course-chapter-map", ChapterMap)
    app.connect("doctree-read", collect_time)
    app.connect("doctree-read", note_map_page)
    app.connect("env-purge-doc", purge)
    app.connect("env-merge-info", merge)
    app.connect("env-get-outdated", outdated)
    app.connect("doctree-resolved", decorate_chapter)
    app.connect("build-finished", copy_student_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
