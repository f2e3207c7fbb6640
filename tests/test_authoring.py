"""The student notebooks: solutions stripped, Colab setup cell, freshness; exercise discovery."""
import json
import sys
import types

import pytest

from course_utils import authoring
from course_utils.authoring import AuthoringError, strip_solutions

CELL = '''import torch


def f(x):
    """Double x."""
    # a comment the learner keeps
    ### BEGIN SOLUTION
    y = 2 * x  # the answer
    return y
    ### END SOLUTION
'''


def test_strip_solutions_keeps_signature_docstring_comments():
    stub = strip_solutions(CELL)
    assert "def f(x):" in stub and '"""Double x."""' in stub and "# a comment the learner keeps" in stub
    assert "2 * x" not in stub and "BEGIN SOLUTION" not in stub
    assert '    raise NotImplementedError("Your code here: replace this line.")' in stub
    namespace = {}
    exec(stub, namespace)
    with pytest.raises(NotImplementedError):
        namespace["f"](1)


def test_reference_answer_runs():
    namespace = {}
    exec(authoring.solution_only(CELL), namespace)
    assert namespace["f"](3) == 6


@pytest.mark.parametrize(
    "broken",
    ["### BEGIN SOLUTION\nx = 1\n", "x = 1\n### END SOLUTION\n", "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION"],
)
def test_unbalanced_markers_are_errors(broken):
    with pytest.raises(AuthoringError):
        strip_solutions(broken)


def _notebook(cells):
    return {"cells": cells, "metadata": {"kernelspec": {"name": "odd-kernel"}}, "nbformat": 4, "nbformat_minor": 5}


def _code(src, tags=None, outputs=None):
    return {"cell_type": "code", "source": src, "metadata": {"tags": tags or []},
            "outputs": outputs or [{"output_type": "stream", "name": "stdout", "text": "hi"}], "execution_count": 3}


def _md(src):
    return {"cell_type": "markdown", "source": src, "metadata": {}}


def test_to_student_transforms_a_notebook():
    nb = _notebook([
        _md("```{exercise} Double it\n:label: ex-double\n\nWrite `f`.\n```"),
        _md("```{solution-start} ex-double\n:class: dropdown\n```"),
        _code(CELL),
        _md("```{solution-end}\n```"),
        _code('check("demo.f", f)'),
        _code("print('only for the site')", tags=["solution"]),
    ])
    student = authoring.to_student(nb, "SETUP", "demo.ipynb")
    sources = [c["source"] for c in student["cells"]]
    assert sources[0] == "SETUP" and student["cells"][0]["cell_type"] == "code"
    assert sources[1].startswith("**Exercise: Double it**") and "Write `f`." in sources[1]
    assert not any("solution-start" in s or "solution-end" in s or "only for the site" in s for s in sources)
    assert not any("2 * x" in s for s in sources)
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in student["cells"] if c["cell_type"] == "code")
    assert student["metadata"]["kernelspec"]["name"] == "python3"
    assert nb["cells"][2]["source"] == CELL, "the book notebook must not be modified"


def _run_setup(monkeypatch, returncode=0, stderr=""):
    import subprocess

    calls = []

    def fake_run(args, **kwargs):
        calls.append(args)
        return subprocess.CompletedProcess(args, returncode, "", stderr)

    monkeypatch.setattr(subprocess, "run", fake_run)
    exec(authoring.colab_setup_source(), {})
    return calls


def test_setup_cell_does_nothing_where_the_package_is_installed(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert _run_setup(monkeypatch) == [], "with course_utils importable and outside Colab, nothing to do"


def test_setup_cell_installs_where_the_package_is_missing_and_keeps_torch(monkeypatch):
    import importlib.util

    url, branch = authoring.repository_url()
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "course_utils" else real_find_spec(name, *a))
    (args,) = _run_setup(monkeypatch)
    assert f"course_utils @ git+{url}@{branch}" in args and "--upgrade" in args
    pins = open(args[args.index("-c") + 1]).read()
    import importlib.metadata
    assert f"torch=={importlib.metadata.version('torch')}" in pins, "the torch already installed must be pinned"


def test_setup_cell_upgrades_in_colab_and_says_what_went_wrong(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert len(_run_setup(monkeypatch)) == 1  # re-running in Colab upgrades the package
    assert "restart the kernel" in capsys.readouterr().out  # course_utils is imported in this process
    _run_setup(monkeypatch, returncode=1, stderr="ERROR: could not resolve host\nfatal: unable to access")
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "offline" in out and "repository.url" in out and "unable to access" in out
    assert "Traceback" not in out


def test_setup_cell_sets_the_thread_policy_before_torch_loads():
    source = authoring.colab_setup_source()
    assert "OMP_WAIT_POLICY" in source and "import torch" not in source


def test_citations_and_admonitions_become_plain_markdown():
    entries = {"a2017": {"author": "Vaswani, Ashish and Shazeer, Noam and Parmar, Niki", "year": "2017"},
               "b2015": {"author": "Kingma, Diederik P. and Ba, Jimmy", "year": "2015"},
               "c2010": {"author": "Hinton, Geoffrey", "year": "2010"}}
    text = authoring.myst_to_markdown(
        "As {cite:t}`a2017` showed {cite}`b2015,c2010`.\n```{admonition} Card\n:class: note\nLine one.\n```\n",
        entries, "REF")
    assert text.startswith("As [Vaswani et al. (2017)](REF) showed ([Kingma and Ba, 2015](REF); [Hinton, 2010](REF)).")
    assert "> **Card**\n>\n> Line one." in text and "```" not in text and ":class:" not in text
    with pytest.raises(authoring.AuthoringError, match="nokey"):
        authoring.myst_to_markdown("{cite}`nokey`", entries, "REF")


def test_student_notebooks_hold_no_myst():
    for nb in authoring.book_notebooks():
        student = json.loads((authoring.ROOT / "student" / nb.name).read_text())
        for i, cell in enumerate(student["cells"]):
            if cell["cell_type"] == "markdown":
                text = "".join(cell["source"])
                for myst in ("{cite", "```{", ":::"):
                    assert myst not in text, f"student/{nb.name} cell {i} still has MyST ({myst})"


def test_placeholder_repository_url_is_warned_about(tmp_path, capsys):
    (tmp_path / "_config.yml").write_text(f"repository:\n  url: {authoring.PLACEHOLDER_URL}\n")
    assert "placeholder" in authoring.warn_if_placeholder(tmp_path)
    assert "repository.url" in capsys.readouterr().err
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://github.com/someone/course\n")
    assert authoring.warn_if_placeholder(tmp_path) is None


def test_every_book_exercise_is_found_and_has_a_check():
    exercises = authoring.all_exercises()
    assert len(exercises) >= 3
    for ex in exercises.values():
        assert callable(ex.load()), ex.id
        stub = ex.load(student=True)
        assert callable(stub)


def test_student_notebooks_are_fresh():
    stale = authoring.build_students(check=True)
    assert not stale, f"student/ is stale, run `make student`: {[str(p) for p in stale]}"


def test_student_notebooks_hold_no_solutions():
    for nb in authoring.book_notebooks():
        student = json.loads((authoring.ROOT / "student" / nb.name).read_text())
        text = "".join(c["source"] for c in student["cells"])
        assert "BEGIN SOLUTION" not in text and "solution-start" not in text
        for ex in authoring.exercises_in(nb):
            assert ex.stub_source in text


def test_book_notebooks_are_committed_without_outputs():
    for nb in authoring.book_notebooks():
        cells = json.loads(nb.read_text())["cells"]
        dirty = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"])]
        assert not dirty, f"{nb.name}: cells {dirty} carry outputs (strip them before committing)"


def test_exercises_know_their_statement_for_the_index(tmp_path):
    """The site's Exercises page links each exercise to its statement's label, titled as the statement."""
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": "# 9. A chapter\n\nText."},
        {"cell_type": "markdown", "metadata": {},
         "source": "```{exercise} Add one\n:label: ex-add-one\n\nWrite `add_one(x)`.\n```"},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "def add_one(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION"},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": 'check("demo.add_one", add_one)'},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "def twice(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": 'check("demo.twice", twice)'},
    ]
    path = tmp_path / "09_demo.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    first, second = authoring.exercises_in(path)
    assert (first.id, first.label, first.title) == ("demo.add_one", "ex-add-one", "Add one")
    # the second exercise has no statement of its own: it does not borrow the first one's
    assert (second.id, second.label, second.title) == ("demo.twice", "", "")
    assert authoring.chapter_title(path) == "9. A chapter"


def test_every_book_exercise_has_a_labelled_statement():
    """The Exercises index links to each statement: every exercise needs its own ``:label:``."""
    exercises = list(authoring.all_exercises().values())
    labels = [ex.label for ex in exercises]
    assert all(labels), [ex.id for ex in exercises if not ex.label]
    assert len(set(labels)) == len(labels), "two exercises share one statement label"
