"""A chapter survives what a learner does: every student notebook runs to its end

(a) with every exercise left unsolved -- only the check cells fail, every other cell runs (the
    chapter falls back to the course's reference functions and says so);
(b) with a correct answer written differently from the reference pasted into every exercise
    (the first of tests/alternatives/<chapter>.py) -- no cell fails at all, and the check cells
    pass.

Both runs of a chapter execute at once, in two kernels. They run the student notebooks (what Colab opens) in the fast profile with every training loop
capped at two steps (``COURSE_MAX_STEPS=2``) and learning targets recorded instead of raised
(``COURSE_REHEARSAL=1``): what is tested here is the chapter's plumbing, not what it learns --
the book notebooks' own run (under nbval) asserts that.
"""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from course_utils.authoring import ROOT, _CHECK_CALL, exercises_in, strip_solutions
from exercise_alternatives import ALTERNATIVES

STUDENT = ROOT / "student"
NOTEBOOKS = sorted(p.name for p in (ROOT / "book").glob("*.ipynb"))


def _source(cell) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


def _set_environment(tmp_path: Path, monkeypatch) -> None:
    """The kernels inherit it: fast profile, loops capped at two steps, targets recorded."""
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    monkeypatch.setenv("COURSE_MAX_STEPS", "2")
    monkeypatch.setenv("COURSE_REHEARSAL", "1")
    monkeypatch.setenv("COURSE_RUN_LOG", str(tmp_path / "run.jsonl"))
    monkeypatch.setenv("MPLBACKEND", "Agg")


def _run(nb: nbformat.NotebookNode) -> list[tuple[int, str]]:
    """Execute ``nb`` in a fresh kernel (errors allowed): [(cell index, "EName: message")] of failed cells."""
    client = NotebookClient(nb, timeout=900, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(ROOT / "book")}})
    client.execute()
    failed = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.get("output_type") == "error":
                failed.append((index, f"{output['ename']}: {output['evalue'][:300]}"))
    return failed


def _first_line(cell) -> str:
    lines = _source(cell).splitlines()
    return lines[0][:100] if lines else ""


def _is_check_cell(cell) -> bool:
    return cell.cell_type == "code" and bool(_CHECK_CALL.search(_source(cell)))


def _paste(book_notebook: Path, student_nb: nbformat.NotebookNode) -> list[str]:
    """Replace each exercise cell of the student notebook by the cell with the first alternative answer.

    The alternative replaces the stub's function; the cell's other lines (imports) stay. Returns the ids.
    """
    pasted = []
    for ex in exercises_in(book_notebook):
        stub = strip_solutions(ex.source)
        matches = [c for c in student_nb.cells if c.cell_type == "code" and _source(c).strip() == stub.strip()]
        assert len(matches) == 1, f"{ex.id}: its stub cell is not found once in the student notebook"
        matches[0].source = ALTERNATIVES[ex.id][0]
        pasted.append(ex.id)
    return pasted


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_student_notebook_survives_skipped_and_other_correct_answers(name, tmp_path, monkeypatch):
    """Both runs at once (two kernels): (a) every exercise unsolved, (b) other correct answers pasted."""
    unsolved = nbformat.read(STUDENT / name, as_version=4)
    solved = nbformat.read(STUDENT / name, as_version=4)
    pasted = _paste(ROOT / "book" / name, solved)
    _set_environment(tmp_path, monkeypatch)
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(_run, nb) for nb in ((unsolved, solved) if pasted else (unsolved,))]
        failed_unsolved, *failed_solved = [r.result() for r in runs]

    outside = [(i, error) for i, error in failed_unsolved if not _is_check_cell(unsolved.cells[i])]
    assert not outside, f"{name}: cells other than checks fail when the exercises are skipped:\n" + "\n".join(
        f"  cell {i}: {error}\n    {_first_line(unsolved.cells[i])}" for i, error in outside)
    checks = [i for i, c in enumerate(unsolved.cells) if _is_check_cell(c)]
    assert sorted(i for i, _ in failed_unsolved) == checks, "every check cell fails on its stub"
    for _, error in failed_unsolved:
        assert error.startswith("ExerciseFailed") and "not implemented yet" in error, error
    if not pasted:
        return
    failed = failed_solved[0]
    assert not failed, f"{name} with other correct answers ({', '.join(pasted)}):\n" + "\n".join(
        f"  cell {i}: {error}\n    {_first_line(solved.cells[i])}" for i, error in failed)
    outputs = "".join(o.get("text", "") for c in solved.cells if c.cell_type == "code" for o in c.get("outputs", []))
    for exercise_id in pasted:
        assert re.search(rf"✅ {re.escape(exercise_id)}: all \d+ cases passed", outputs), exercise_id
        assert exercise_id not in _fallbacks(outputs), (
            f"{exercise_id}: the chapter fell back to the reference although the check passed")


def _fallbacks(outputs: str) -> set[str]:
    return set(re.findall(r"Using the course's `\w+` here: .*?\(exercise ([\w.]+)\)", outputs))
