"""Authoring tools: exercise regions in the book's notebooks, and the student (Colab) notebooks.

A book notebook holds each exercise's reference answer between nbgrader's markers::

    def causal_mask(T):
        \"\"\"...\"\"\"
        ### BEGIN SOLUTION
        return torch.ones(T, T, dtype=torch.bool).tril()
        ### END SOLUTION

and a later code cell grades it: ``check("attention.causal_mask", causal_mask)``.

The student builder turns ``book/X.ipynb`` into ``student/X.ipynb``:

* every solution region becomes ``raise NotImplementedError(...)`` (signature, docstring and the
  comments outside the region are kept);
* cells tagged ``solution`` and the ``{solution-start}`` / ``{solution-end}`` markdown cells of
  sphinx-exercise are removed, and ``{exercise}`` directives become plain Markdown (Colab does not
  render MyST);
* outputs and execution counts are cleared, the kernelspec is ``python3``;
* MyST that Jupyter cannot render becomes plain Markdown: ``{cite}`key``` becomes a linked
  "Author, year" (the site's references page), admonitions become block quotes;
* a first setup cell installs ``course_utils`` from the repository where it is missing (any
  Jupyter) and upgrades it in Colab, without replacing the torch already installed.

Command line (what ``make student`` runs)::

    python -m course_utils.authoring student          # write student/
    python -m course_utils.authoring student --check  # exit 1 if student/ is stale
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
SOLUTION_TAG = "solution"
ROOT = Path(__file__).resolve().parent.parent

_CHECK_CALL = re.compile(r"""check\(\s*["'](?P<id>[\w.]+)["']\s*,\s*(?P<name>[A-Za-z_]\w*)\s*\)""")
_GATED = re.compile(r"^\s*```\{solution-(start|end)\}", re.M)
_EXERCISE = re.compile(
    r"^```\{exercise\}[ \t]*(?P<title>[^\n]*)\n(?P<options>(?::[^\n]*\n)*)(?P<body>.*?)^```[ \t]*$",
    re.M | re.S,
)


class AuthoringError(ValueError):
    """A book notebook breaks the exercise conventions (unbalanced markers, no check cell...)."""


# ---------------------------------------------------------------------------------------------
# Solution regions
# ---------------------------------------------------------------------------------------------
def has_solution(source: str) -> bool:
    return BEGIN in source


def strip_solutions(source: str, where: str = "cell") -> str:
    """Replace every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region by a stub.

    The stub sits at the indentation of the ``BEGIN`` marker and raises ``NotImplementedError``,
    which the exercise checks report as "not implemented yet".
    """
    out, inside = [], False
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if inside:
                raise AuthoringError(f"{where}: line {number}: nested '{BEGIN}'")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f'{indent}raise NotImplementedError("Your code here: replace this line.")')
        elif stripped.startswith(END):
            if not inside:
                raise AuthoringError(f"{where}: line {number}: '{END}' without '{BEGIN}'")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise AuthoringError(f"{where}: '{BEGIN}' is never closed by '{END}'")
    return "\n".join(out)


def solution_only(source: str) -> str:
    """Drop the marker lines, keeping the reference answer (what the book executes)."""
    return "\n".join(l for l in source.splitlines() if l.strip() not in (BEGIN, END))


# ---------------------------------------------------------------------------------------------
# Exercises of a notebook
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Exercise:
    """One exercise of a book notebook: its id, the answer's name and the cell that defines it."""

    id: str
    name: str
    notebook: Path
    cell_index: int
    source: str  # the full exercise cell, markers included
    label: str = ""  # the ``:label:`` of the ``{exercise}`` statement before it ("" if none)
    title: str = ""  # the statement's title ("Scaled dot-product attention")

    @property
    def reference_source(self) -> str:
        return solution_only(self.source)

    @property
    def stub_source(self) -> str:
        return strip_solutions(self.source, where=f"{self.notebook.name} cell {self.cell_index}")

    def load(self, student: bool = False) -> Callable:
        """Execute the exercise cell alone (reference or stub) and return the answer object.

        Exercise cells are self-contained by convention: they import what they use.
        """
        code = self.stub_source if student else self.reference_source
        namespace: dict = {"__name__": f"exercise_{self.id.replace('.', '_')}"}
        exec(compile(code, f"<{self.notebook.name}:{self.id}>", "exec"), namespace)
        if self.name not in namespace:
            raise AuthoringError(f"{self.notebook.name}: the exercise cell of {self.id} defines no '{self.name}'")
        return namespace[self.name]


def _read(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _statement_before(cells: list, index: int) -> tuple[str, str]:
    """``(label, title)`` of the ``{exercise}`` directive between the previous exercise and ``index``."""
    for cell in reversed(cells[:index]):
        if cell["cell_type"] == "code" and has_solution(_source(cell)):
            break  # the previous exercise: this one has no statement of its own
        if cell["cell_type"] != "markdown":
            continue
        matches = list(_EXERCISE.finditer(_source(cell)))
        if matches:
            label = re.search(r"^:label:\s*(\S+)", matches[-1]["options"], re.M)
            return (label[1] if label else ""), matches[-1]["title"].strip()
    return "", ""


def chapter_title(notebook: Path) -> str:
    """The first ``# heading`` of a notebook (its title on the site)."""
    for cell in _read(Path(notebook))["cells"]:
        if cell["cell_type"] == "markdown":
            heading = re.search(r"^#\s+(.+?)\s*$", _source(cell), re.M)
            if heading:
                return heading[1]
    return Path(notebook).stem


def exercises_in(notebook: Path) -> list[Exercise]:
    """Every exercise in a book notebook: a solution cell followed by its ``check(...)`` cell."""
    notebook = Path(notebook)
    cells = _read(notebook)["cells"]
    found = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code" or not has_solution(_source(cell)):
            continue
        strip_solutions(_source(cell), where=f"{notebook.name} cell {i}")  # validates markers
        for later in cells[i + 1 :]:
            if later["cell_type"] != "code":
                continue
            match = _CHECK_CALL.search(_source(later))
            if match:
                label, title = _statement_before(cells, i)
                found.append(Exercise(match["id"], match["name"], notebook, i, _source(cell), label, title))
                break
            if has_solution(_source(later)):
                break
        if not found or found[-1].cell_index != i:
            raise AuthoringError(f"{notebook.name} cell {i}: a solution with no check(...) cell after it")
    return found


def book_notebooks(root: Path = ROOT) -> list[Path]:
    return sorted(p for p in (root / "book").glob("*.ipynb"))


def all_exercises(root: Path = ROOT) -> dict[str, Exercise]:
    out: dict[str, Exercise] = {}
    for nb in book_notebooks(root):
        for ex in exercises_in(nb):
            if ex.id in out:
                raise AuthoringError(f"exercise id {ex.id} appears twice ({out[ex.id].notebook.name}, {nb.name})")
            out[ex.id] = ex
    return out


# ---------------------------------------------------------------------------------------------
# Student notebooks
# ---------------------------------------------------------------------------------------------
def repository_url(root: Path = ROOT) -> tuple[str, str]:
    """``(url, branch)`` from ``_config.yml`` -- the one place the repository is named."""
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    repo = config.get("repository") or {}
    url = str(repo.get("url", "")).rstrip("/")
    if not url:
        raise AuthoringError("_config.yml has no repository.url")
    return url, str(repo.get("branch", "main"))


PLACEHOLDER_URL = "https://github.com/adl-course/advanced-deep-learning-architectures"


def warn_if_placeholder(root: Path = ROOT) -> Optional[str]:
    """A warning (also printed to stderr) while ``repository.url`` is still the template's placeholder:
    the Colab buttons and the student notebooks' install cell would point at a repository that
    is not this course's."""
    url, _ = repository_url(root)
    if url.rstrip("/") != PLACEHOLDER_URL:
        return None
    message = (f"warning: _config.yml repository.url is still the placeholder {url}; the Colab buttons and "
               "the student notebooks' install cell point there. Set it to the public repository of "
               "this course (README: 'Publishing the course').")
    print(message, file=sys.stderr)
    return message


SETUP_CELL = '''\
# Setup: installs the course package where it is missing (Colab, Kaggle, a JupyterHub, a laptop)
# and upgrades it in Colab. The torch and torchvision already here are kept (pinned as constraints).
import importlib.metadata, importlib.util, os, subprocess, sys, tempfile

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when torch loads: set it first
COURSE_PACKAGE = "course_utils @ git+{url}@{branch}"


def install_course_package():
    pins = []
    for name in ("torch", "torchvision"):
        try:
            pins.append(f"{{name}}=={{importlib.metadata.version(name)}}")
        except importlib.metadata.PackageNotFoundError:
            pass
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as constraints:
        constraints.write("\\n".join(pins) + "\\n")
    command = [sys.executable, "-m", "pip", "install", "-q", "--upgrade", "-c", constraints.name, COURSE_PACKAGE]
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    except OSError as err:
        done = subprocess.CompletedProcess(command, 1, "", str(err))
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        print("Could not install the course package from {url}: this machine may be offline, or the "
              "repository is not public (a maintainer sets it in _config.yml, repository.url). "
              f"pip said: {{said[-1] if said else 'nothing'}}")
    elif "course_utils" in sys.modules:
        print("The course package was upgraded: restart the kernel (Runtime -> Restart session) to use it.")
    return done.returncode == 0


if "google.colab" in sys.modules or importlib.util.find_spec("course_utils") is None:
    install_course_package()'''


def colab_setup_source(root: Path = ROOT) -> str:
    url, branch = repository_url(root)
    return SETUP_CELL.format(url=url, branch=branch)


# ---------------------------------------------------------------------------------------------
# MyST -> plain Markdown (Jupyter and Colab render CommonMark, not MyST)
# ---------------------------------------------------------------------------------------------
_CITE = re.compile(r"\{cite(?::(?P<kind>[tp]))?\}`(?P<keys>[^`]+)`")
_ADMONITION = re.compile(r"^```\{(?P<kind>admonition|note|tip|warning|important|caution|seealso)\}[ \t]*(?P<title>[^\n]*)\n"
                         r"(?P<options>(?::[^\n]*\n)*)(?P<body>.*?)^```[ \t]*$", re.M | re.S)


def _bib_entries(root: Path = ROOT) -> dict[str, dict]:
    """``key -> {"author": ..., "year": ...}`` from book/references.bib (a small reader: enough for
    "Surname et al. (year)")."""
    text = (root / "book" / "references.bib").read_text(encoding="utf-8")
    entries = {}
    for match in re.finditer(r"@\w+\{(?P<key>[^,\s]+),(?P<body>.*?)\n\}", text, re.S):
        fields = dict(re.findall(r"(\w+)\s*=\s*\{((?:[^{}]|\{[^{}]*\})*)\}", match["body"]))
        entries[match["key"]] = {k.lower(): v for k, v in fields.items()}
    return entries


def _surname(author: str) -> str:
    name = author.strip()
    name = name.split(",")[0] if "," in name else name.split()[-1]
    return re.sub(r"[{}\\]", "", name).strip()


def citation_label(entry: dict) -> tuple[str, str]:
    """("Vaswani et al.", "2017") for a bib entry; one or two authors are named in full."""
    authors = [a for a in re.split(r"\s+and\s+", entry.get("author", "")) if a.strip()]
    names = [_surname(a) for a in authors if a.strip() != "others"]
    if not names:
        who = "Anonymous"
    elif len(names) == 1 and len(authors) == 1:
        who = names[0]
    elif len(names) == 2 and len(authors) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return who, entry.get("year", "n.d.")


def site_url(root: Path = ROOT) -> str:
    """The published site: ``html.baseurl`` in _config.yml, else GitHub Pages of ``repository.url``."""
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    base = str((config.get("html") or {}).get("baseurl") or "").rstrip("/")
    if base:
        return base
    url, _ = repository_url(root)
    match = re.match(r"https?://github\.com/([^/]+)/([^/]+)", url)
    return f"https://{match[1]}.github.io/{match[2]}" if match else url


def myst_to_markdown(source: str, entries: dict, references_url: str) -> str:
    """Citations become linked "Author (year)" text, admonitions become block quotes."""
    def cite(match: re.Match) -> str:
        parts = []
        for key in (k.strip() for k in match["keys"].split(",")):
            if key not in entries:
                raise AuthoringError(f"citation key {key!r} is not in book/references.bib")
            who, year = citation_label(entries[key])
            text = f"{who} ({year})" if match["kind"] == "t" else f"{who}, {year}"
            parts.append(f"[{text}]({references_url})")
        return "; ".join(parts) if match["kind"] == "t" else f"({'; '.join(parts)})"

    def admonition(match: re.Match) -> str:
        title = match["title"].strip() or match["kind"].capitalize()
        body = match["body"].strip("\n").splitlines()
        return "\n".join([f"> **{title}**", ">"] + [f"> {line}".rstrip() for line in body]) + "\n"

    source = _CITE.sub(cite, source)
    return _ADMONITION.sub(admonition, source)


def _exercise_to_markdown(match: re.Match) -> str:
    title = match["title"].strip()
    heading = f"**Exercise{': ' + title if title else ''}**"
    return f"{heading}\n\n{match['body'].strip()}\n"


def to_student(nb: dict, setup_source: str, name: str = "notebook", root: Path = ROOT) -> dict:
    """The student twin of a book notebook (a new dict; ``nb`` is not changed)."""
    student = copy.deepcopy(nb)
    entries, references = _bib_entries(root), f"{site_url(root)}/book/references.html"
    cells = []
    for i, cell in enumerate(student["cells"]):
        src = _source(cell)
        tags = cell.get("metadata", {}).get("tags", [])
        if SOLUTION_TAG in tags:
            continue
        if cell["cell_type"] == "markdown" and _GATED.search(src):
            continue
        if cell["cell_type"] == "code":
            if has_solution(src):
                src = strip_solutions(src, where=f"{name} cell {i}")
            cell["outputs"], cell["execution_count"] = [], None
        elif cell["cell_type"] == "markdown":
            src = myst_to_markdown(_EXERCISE.sub(_exercise_to_markdown, src), entries, references)
        cell["source"] = src
        cell.get("metadata", {}).pop("execution", None)
        cells.append(cell)
    setup = {
        "cell_type": "code",
        "execution_count": None,
        "id": "colab-setup",
        "metadata": {"tags": ["colab-setup"]},
        "outputs": [],
        "source": setup_source,
    }
    student["cells"] = [setup] + cells
    student.setdefault("metadata", {})["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return student


def dumps(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def student_files(root: Path = ROOT) -> Iterator[tuple[Path, str]]:
    setup = colab_setup_source(root)
    for src in book_notebooks(root):
        yield root / "student" / src.name, dumps(to_student(_read(src), setup, src.name))


def build_students(root: Path = ROOT, check: bool = False) -> list[Path]:
    """Write ``student/`` (or, with ``check``, return the student files that are stale)."""
    stale = []
    expected = set()
    for path, text in student_files(root):
        expected.add(path.name)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            stale.append(path)
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
    for orphan in sorted((root / "student").glob("*.ipynb")):
        if orphan.name not in expected:
            stale.append(orphan)
            if not check:
                orphan.unlink()
    return stale


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.authoring")
    sub = parser.add_subparsers(dest="command", required=True)
    st = sub.add_parser("student", help="write student/ from book/")
    st.add_argument("--check", action="store_true", help="only report stale student notebooks")
    sub.add_parser("exercises", help="list the exercises found in book/")
    args = parser.parse_args(argv)
    try:
        if args.command == "exercises":
            for ex in all_exercises().values():
                print(f"{ex.id:45s} {ex.notebook.name} (cell {ex.cell_index}, answer '{ex.name}')")
            return 0
        warn_if_placeholder()
        stale = build_students(check=args.check)
    except AuthoringError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)} (run `make student`)")
        return 1 if stale else 0
    for path in stale:
        print(f"wrote {path.relative_to(ROOT)}")
    print(f"student/ is up to date ({len(book_notebooks())} notebooks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
