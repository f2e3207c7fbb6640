"""What the site needs from the book's notebooks, checked on their source (no build, no kernel).

* code lines of at most 100 characters (the page shows code without sideways scrolling);
* figures in the course style: no font size under 9 pt, no rainbow colour maps, widths ≤ 10 in
  (course_utils.plot.MAX_WIDTH_IN);
* a figure cell's caption and alt text in MyST-NB's cell metadata, when given, are well formed;
* the course style that ``runtime.setup`` applies.
"""
from __future__ import annotations

import json
import re

import pytest

from course_utils.authoring import book_notebooks

MAX_LINE = 100
RAINBOWS = ("jet", "rainbow", "hsv", "nipy_spectral", "gist_rainbow", "gist_ncar")
_FONT = re.compile(r"\b(?:fontsize|labelsize|size)\s*=\s*(\d+(?:\.\d+)?)\b")
_CMAP = re.compile(r"""cmap\s*=\s*(?:plt\.cm\.|cm\.|matplotlib\.cm\.)?["']?(\w+)""")
_FIGSIZE = re.compile(r"figsize\s*=\s*\(\s*(\d+(?:\.\d+)?)\s*,")


def _code_cells(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            yield index, source, cell.get("metadata", {})


NOTEBOOKS = book_notebooks()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_code_lines_fit_the_page(path):
    long = [f"cell {i} line {n}: {len(line)} chars"
            for i, source, _ in _code_cells(path)
            for n, line in enumerate(source.splitlines(), start=1) if len(line) > MAX_LINE]
    assert not long, f"{path.name}: {len(long)} code lines over {MAX_LINE} characters: {long[:8]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_figures_follow_the_course_style(path):
    from course_utils.plot import MAX_WIDTH_IN

    problems = []
    for i, source, _ in _code_cells(path):
        code = "\n".join(line.split("#", 1)[0] for line in source.splitlines())  # comments may name them
        problems += [f"cell {i}: font size {m[1]} (< 9)" for m in _FONT.finditer(code) if float(m[1]) < 9]
        problems += [f"cell {i}: colour map {m[1]}" for m in _CMAP.finditer(code) if m[1].lower() in RAINBOWS]
        problems += [f"cell {i}: figure width {m[1]} in (> {MAX_WIDTH_IN:g})"
                     for m in _FIGSIZE.finditer(code) if float(m[1]) > MAX_WIDTH_IN]
    assert not problems, f"{path.name}: {problems[:8]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_figure_metadata_is_well_formed(path):
    """``{"mystnb": {"figure": {"caption": str}, "image": {"alt": str}}}`` (see the site's conventions)."""
    problems = []
    for i, _, meta in _code_cells(path):
        mystnb = meta.get("mystnb")
        if mystnb is None:
            continue
        alt = (mystnb.get("image") or {}).get("alt")
        caption = (mystnb.get("figure") or {}).get("caption")
        if "image" in mystnb and not (isinstance(alt, str) and len(alt.strip()) >= 10):
            problems.append(f"cell {i}: image.alt must be a sentence")
        if "figure" in mystnb and not (isinstance(caption, str) and caption.strip()):
            problems.append(f"cell {i}: figure.caption must be a sentence")
        if caption and not alt:
            problems.append(f"cell {i}: a caption without alt text (give image.alt too)")
    assert not problems, f"{path.name}: {problems}"


def test_course_style_is_applied_by_setup():
    import matplotlib as mpl

    from course_utils import plot, runtime

    mpl.rcdefaults()
    runtime.setup(seed=0, profile="fast", device="cpu")
    assert mpl.rcParams["figure.figsize"][0] <= plot.MAX_WIDTH_IN
    assert min(mpl.rcParams["xtick.labelsize"], mpl.rcParams["ytick.labelsize"], mpl.rcParams["legend.fontsize"],
               mpl.rcParams["font.size"]) >= 9
    colours = [c["color"] for c in mpl.rcParams["axes.prop_cycle"]]
    assert colours[:4] == list(plot.OKABE_ITO[:4])
    styles = [c["linestyle"] for c in mpl.rcParams["axes.prop_cycle"]]
    assert len(set(map(str, styles))) == len(styles), "each line of a plot gets its own dash pattern too"
    assert mpl.rcParams["image.cmap"] == "viridis"
    mpl.rcdefaults()


_ONLINE_BRANCH = re.compile(r"^if\s+[\w.]*online\(\)", re.M)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_online_only_cells_sit_under_an_optional_admonition(path):
    """A cell that runs only with the network (``if online(): ...``) is announced by an
    ``{admonition}`` with ``:class: optional`` in one of the two markdown cells before it, which
    says what the reader would see (the site styles it; the student notebook shows a block quote)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    text = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells]
    missing = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code" or not _ONLINE_BRANCH.search(text[i]):
            continue
        before = [text[j] for j in range(max(0, i - 2), i) if cells[j]["cell_type"] == "markdown"]
        if not any("{admonition}" in t and ":class: optional" in t for t in before):
            missing.append(i)
    assert not missing, (f"{path.name}: cells {missing} run only online but no optional admonition "
                         "announces them (see the site's conventions)")
