"""Chapters train through course_utils.train; a loop is written out only where it is the lesson.

A code cell of a book notebook may call ``.backward()`` or an optimiser's ``.step()`` only when it
carries the cell tag ``lesson-loop`` -- and such a cell must put its tensors on ``rt.device``.
"""
import json
import re
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))
TRAINING_CALL = re.compile(r"\.backward\(|\b\w*(?:opt|optim|optimizer)\w*\.step\(|\.zero_grad\(")


def code_cells(path):
    for i, cell in enumerate(json.loads(path.read_text())["cells"]):
        if cell["cell_type"] == "code":
            yield i, "".join(cell["source"]), cell.get("metadata", {}).get("tags", [])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_training_steps_only_in_lesson_loop_cells(path):
    offending = [i for i, source, tags in code_cells(path)
                 if TRAINING_CALL.search(source) and "lesson-loop" not in tags]
    assert not offending, (f"{path.name}: cells {offending} train by hand; use course_utils.train.fit, "
                           "or tag the cell lesson-loop if the loop is the lesson")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_loops_run_on_the_runtime_device(path):
    for i, source, tags in code_cells(path):
        if "lesson-loop" in tags:
            assert TRAINING_CALL.search(source), f"{path.name} cell {i} is tagged lesson-loop but has no loop"
            assert "rt.device" in source, f"{path.name} cell {i}: a lesson loop must use rt.device"


def test_the_check_sees_a_hand_written_loop():
    assert TRAINING_CALL.search("loss.backward()\noptimizer.step()")
    assert TRAINING_CALL.search("opt_D.step()")
    assert not TRAINING_CALL.search("schedule.step_size = 3\nfit(model, loss, data, steps=10)")
