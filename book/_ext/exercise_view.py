"""Sphinx extension: how an exercise reads on the site, and the Exercises index page.

A book notebook holds each exercise as: the statement (``{exercise}``), the reference answer in a
solution dropdown (``{solution-start}`` ... ``{solution-end}`` around a code cell with nbgrader's
``### BEGIN/END SOLUTION`` markers), then the ``check(...)`` cell. On the page:

1. the statement;
2. the **starter code** -- the student notebook's version of the cell (the solution replaced by
   ``raise NotImplementedError``, exactly as :func:`course_utils.authoring.strip_solutions` makes
   it), shown open;
3. the solution, collapsed, *without* the marker lines, its title plain text (the theme made it a
   link to the statement, so opening it also jumped up the page);
4. the check cell and its output.

``{course-exercise-index}`` (book/exercises.md) lists every exercise of the book: chapter, title
(linked to its statement) and id, from :func:`course_utils.authoring.all_exercises`.
"""
from __future__ import annotations

from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx import addnodes
from sphinx.util import logging

from course_utils.authoring import BEGIN, END, all_exercises, chapter_title, solution_only, strip_solutions

logger = logging.getLogger(__name__)
STARTER_TITLE = "Starter code (the student notebook's cell): replace the raise NotImplementedError line"


def _solution_ancestor(node):
    node = node.parent
    while node is not None:
        if "solution" in node.get("classes", []) or type(node).__name__ == "solution_node":
            return node
        node = node.parent
    return None


def _cell_ancestor(node):
    node = node.parent
    while node is not None:
        if "cell" in node.get("classes", []):
            return node
        node = node.parent
    return None


def starter_block(stub: str, language: str) -> nodes.container:
    box = nodes.container(classes=["course-starter"])
    box += nodes.paragraph(text=STARTER_TITLE, classes=["course-starter-title"])
    block = nodes.literal_block(stub, stub, language=language)
    box += block
    return box


def show_exercises(app, doctree, docname):
    """Starter code before each solution, markers removed, the solution's title not a link."""
    for block in list(doctree.findall(nodes.literal_block)):
        text = block.astext()
        if BEGIN not in text or "output" in block.get("classes", []):
            continue
        stub = strip_solutions(text, where=f"{docname}")
        answer = solution_only(text)
        block.replace_self(nodes.literal_block(answer, answer, **{k: v for k, v in block.attributes.items()
                                                                   if k in ("language", "classes", "linenos")}))
        solution = _solution_ancestor(block)
        anchor = solution if solution is not None else _cell_ancestor(block)
        if anchor is None or anchor.parent is None:
            continue
        anchor.parent.insert(anchor.parent.index(anchor), starter_block(stub, block.get("language", "python")))
        if solution is not None:
            for title in solution.findall(nodes.title):
                for ref in list(title.findall(nodes.reference)):
                    ref.replace_self(ref.children)
    for literal in doctree.findall(nodes.literal_block):
        if END in literal.astext() and "output" not in literal.get("classes", []):
            logger.warning(f"{docname}: an '{END}' marker is left on the page", location=literal,
                           type="course", subtype="exercise")


class ExerciseIndex(Directive):
    """A table of every exercise: chapter, title linked to the statement, and the check's id."""

    has_content = False

    def run(self):
        env = self.state.document.settings.env
        root = Path(env.srcdir)
        exercises = list(all_exercises(root).values())
        for ex in exercises:
            env.note_dependency(str(ex.notebook))
        table = nodes.table(classes=["course-exercise-index"])
        group = nodes.tgroup(cols=4)
        table += group
        for width in (4, 30, 40, 40):
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        group += head
        head += self._row(nodes.Text("#"), nodes.Text("chapter"), nodes.Text("exercise"), nodes.Text("check id"))
        body = nodes.tbody()
        group += body
        titles = {}
        for number, ex in enumerate(exercises, start=1):
            doc = str(ex.notebook.relative_to(root).with_suffix(""))
            if doc not in titles:
                titles[doc] = chapter_title(ex.notebook)
            chapter = self._xref("doc", "/" + doc, titles[doc])
            if ex.label:
                link = self._xref("ref", ex.label, ex.title or ex.id)
            else:
                link = self._xref("doc", "/" + doc, ex.title or ex.id)
            body += self._row(nodes.Text(str(number)), chapter, link, nodes.literal(ex.id, ex.id))
        call = 'check("<id>", your_function)'
        note = nodes.paragraph("", f"{len(exercises)} exercises. Each is checked by ",
                               nodes.literal(call, call), nodes.Text(" in the chapter's notebook."))
        return [note, table]

    @staticmethod
    def _row(*cells):
        row = nodes.row()
        for cell in cells:
            row += nodes.entry("", nodes.paragraph("", "", cell))
        return row

    @staticmethod
    def _xref(kind: str, target: str, text: str):
        ref = addnodes.pending_xref("", refdomain="std", reftype=kind, reftarget=target,
                                    refexplicit=True, refwarn=True)
        ref += nodes.inline(text, text)
        return ref


def setup(app):
    app.add_directive("course-exercise-index", ExerciseIndex)
    app.connect("doctree-resolved", show_exercises)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
