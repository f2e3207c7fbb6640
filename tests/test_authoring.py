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


def test_colab_setup_cell_installs_only_in_colab_and_keeps_torch(monkeypatch, tmp_path):
    source = authoring.colab_setup_source()
    url, branch = authoring.repository_url()
    calls = []
    import subprocess

    monkeypatch.setattr(subprocess, "run", lambda args, **kw: calls.append(args))
    exec(source, {})
    assert calls == [], "outside Colab the setup cell must do nothing"
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    exec(source, {})
    (args,) = calls
    assert f"course_utils @ git+{url}@{branch}" in args
    assert "-c" in args, "Colab's torch must be pinned as a constraint"
    pins = open(args[args.index("-c") + 1]).read()
    import torch
    assert f"torch=={torch.__version__}" in pins


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
