"""The instructor's grader (``python -m course_utils.grade``), end to end.

The submissions are made here from the student notebook of chapter 8 (``08_medical_cad``): the
shortest chapter with two exercises (measured in the quick mode on the 2-core machine under load:
08_medical_cad 161 s, 07_diffusion 275 s). The batch is graded once (``--jobs 2 --quick``, a
module-scoped fixture); each test reads its outputs. Expected scores come from the checker itself,
run here on the same answers -- never from a number written into the test.
"""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from course_utils import grade
from course_utils.authoring import _CHECK_CALL, _source, exercises_in
from course_utils.exercises import run_check

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = "08_medical_cad"
STUDENT = ROOT / "student" / f"{CHAPTER}.ipynb"
BOOK = ROOT / "book" / f"{CHAPTER}.ipynb"
SECRET = "COURSE_GRADE_TEST_SECRET"  # set in the grader's environment: must not reach a notebook

pytestmark = pytest.mark.slow

# Plausible wrong answers (each fails some of its check's cases, not all).
WRONG = {
    "medical.sensitivity_at_fp": '''\
import torch


def sensitivity_at_fp(scores, hits, n_lesions, n_images, fppi):
    scores, hits = torch.as_tensor(scores, dtype=torch.float64), torch.as_tensor(hits, dtype=torch.bool)
    best = 0.0
    for t in torch.unique(scores):
        kept = scores >= t
        tp, fp = int((hits & kept).sum()), int((~hits & kept).sum())
        if fp / n_images < fppi:  # strict: a budget met exactly is refused
            best = max(best, tp / n_lesions)
    return float(best)
''',
    "medical.binary_focal_loss": '''\
import torch
import torch.nn.functional as F


def binary_focal_loss(logits, targets, alpha=0.25, gamma=2.0):
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    return ((1 - p_t) ** gamma * ce).mean()  # alpha forgotten
''',
}

# Run in every fixture: where it runs, what it sees. Its output is read back from executed/.
PROBE = '''\
import os, socket
print("SANDBOX-CWD", os.getcwd())
print("SANDBOX-FILES", sorted(os.listdir(".")))
print("SANDBOX-HOME", os.environ.get("HOME"))
print("SANDBOX-SECRET", os.environ.get("COURSE_GRADE_TEST_SECRET", "absent"))
try:
    socket.create_connection(("203.0.113.7", 443), timeout=3)
    print("SANDBOX-NET connected")
except Exception as err:
    print("SANDBOX-NET blocked", type(err).__name__)
with open("marker.txt", "w") as f:
    f.write("written by a submission")
'''

REDEFINE_CHECK = '''\
def check(exercise_id, answer):
    print(f"\\u2705 {exercise_id}: all 10 cases passed")
'''

MONKEYPATCH = '''\
import torch
import course_utils.exercises as exercises
import course_utils.exercises.core as core


def _always_pass(self, exercise_id, answer):
    return core.CheckResult(exercise_id, True, 1.0, 1, 1, report=f"\\u2705 {exercise_id}: all cases passed")


core.Registry.run_check = _always_pass
core.run_check = exercises.run_check = lambda i, a: _always_pass(None, i, a)
core.check = exercises.check = check = lambda i, a: print(f"\\u2705 {i}: all cases passed")
torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
'''

FAKE_RECORD = '''\
import json, os
fake = {{"score": 2.0, "tests": [{{"name": i, "score": 1.0, "max_score": 1.0, "output": "ok"}} for i in {ids!r}]}}
for path in ("record.json", "results.json", os.path.join(os.environ["HOME"], "grades.json"), {target!r}):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(fake, f)
print("\\u2705 medical.sensitivity_at_fp: all 11 cases passed")
'''

INFINITE_LOOP = "while True:\n    pass\n"


# ---------------------------------------------------------------------------------------------
# Making submissions from the student notebook
# ---------------------------------------------------------------------------------------------
def _exercise_index(nb, name: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and f"def {name}(" in _source(c))


def _check_index(nb, exercise_id: str) -> int:
    return next(i for i, c in enumerate(nb.cells)
                if c.cell_type == "code" and any(m["id"] == exercise_id for m in _CHECK_CALL.finditer(_source(c))))


def _setup_index(nb) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "runtime.setup" in _source(c))


def _answered(answers: dict) -> nbformat.NotebookNode:
    """The student notebook with some exercise cells replaced (id -> source of the cell)."""
    nb = nbformat.read(STUDENT, as_version=4)
    for exercise_id, source in answers.items():
        nb.cells[_exercise_index(nb, exercise_id.split(".", 1)[1])].source = source
    nb.cells.insert(_setup_index(nb) + 1, nbformat.v4.new_code_cell(PROBE))
    return nb


def _insert_after(nb, index: int, source: str) -> nbformat.NotebookNode:
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    return nb


def _checker_score(exercise_id: str, source: str) -> float:
    """What the checker gives ``source`` here, in this process (the expected score)."""
    namespace: dict = {}
    exec(compile(source, f"<{exercise_id}>", "exec"), namespace)
    return run_check(exercise_id, namespace[exercise_id.split(".", 1)[1]]).score


def _submissions(out: Path) -> dict:
    """name -> (notebook or raw text, expected score per exercise, expected note pattern or None)."""
    reference = {e.id: e.reference_source for e in exercises_in(BOOK)}
    ids = list(reference)
    first, second = ids
    wrong = {i: _checker_score(i, WRONG[i]) for i in ids}
    zero = {i: 0.0 for i in ids}
    deleted = _answered({first: reference[first], second: WRONG[second]})
    deleted.cells = [c for c in deleted.cells if not (c.cell_type == "code" and _CHECK_CALL.search(_source(c)))]
    looping = _answered({first: reference[first], second: reference[second]})
    looping = _insert_after(looping, _check_index(looping, first), INFINITE_LOOP)
    unsolved = _answered({})
    return {
        "solved": (_answered(reference), {i: 1.0 for i in ids}, None),
        "unsolved": (unsolved, zero, None),
        "half_solved": (_answered({first: reference[first]}), {first: 1.0, second: 0.0}, None),
        "wrong": (_answered(WRONG), wrong, None),
        "cheat_redefines_check": (_insert_after(_answered({}), _setup_index(unsolved) + 1, REDEFINE_CHECK), zero,
                                  "review"),
        "cheat_fake_record": (_insert_after(_answered({}), _setup_index(unsolved) + 1, FAKE_RECORD.format(
            ids=ids, target=str(out / "results" / "cheat_fake_record.json"))), zero, None),
        "cheat_monkeypatch": (_insert_after(_answered({}), _setup_index(unsolved) + 1, MONKEYPATCH), zero, "review"),
        "infinite_loop": (looping, {first: 1.0, second: 0.0}, "timed out"),
        "invalid_json": ('{"cells": [{"cell_type": "code", "source": "print(1)"', zero, "not a valid notebook"),
        "check_cells_deleted": (deleted, {first: 1.0, second: wrong[second]}, None),
    }


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Grade every fixture submission once: ``--jobs 2 --quick``. Returns what the tests read."""
    tmp = tmp_path_factory.mktemp("grade")
    subs, out = tmp / "submissions", tmp / "out"
    subs.mkdir()
    expected = _submissions(out)
    for name, (nb, _, _) in expected.items():
        path = subs / f"{name}.ipynb"
        path.write_text(nb if isinstance(nb, str) else nbformat.writes(nb), encoding="utf-8")
    env = {**os.environ, SECRET: "the grader's own secret"}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "course_utils.grade", str(subs), "--out", str(out), "--jobs", "2",
                           "--quick", "--cell-timeout", "150"], capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = {r["submission"]: r for r in csv.DictReader(f)}
    results = {name: json.loads((out / "results" / f"{name}.json").read_text()) for name in expected}
    times = {name: r.get("execution_time", 0.0) for name, r in results.items()}
    print(f"\ngraded {len(expected)} submissions of {CHAPTER} in {wall:.0f} s (--jobs 2 --quick); per submission: "
          + ", ".join(f"{n} {t:.0f} s" for n, t in sorted(times.items())))
    return {"out": out, "subs": subs, "expected": expected, "rows": rows, "results": results, "stderr": proc.stderr}


# ---------------------------------------------------------------------------------------------
# Scores
# ---------------------------------------------------------------------------------------------
NAMES = ["solved", "unsolved", "half_solved", "wrong", "cheat_redefines_check", "cheat_fake_record",
         "cheat_monkeypatch", "infinite_loop", "invalid_json", "check_cells_deleted"]


def test_the_fixture_list_is_complete():
    assert set(NAMES) == set(_submissions(Path("/nonexistent")))


def test_wrong_answers_earn_partial_credit():
    """The wrong answers are plausible: some cases pass, some fail (else they prove little)."""
    for exercise_id, source in WRONG.items():
        assert 0.0 < _checker_score(exercise_id, source) < 1.0, exercise_id


@pytest.mark.parametrize("name", NAMES)
def test_each_submission_gets_the_checkers_score(batch, name):
    _, expected, note = batch["expected"][name]
    row = batch["rows"][name]
    for exercise_id, score in expected.items():
        assert float(row[exercise_id]) == pytest.approx(score, abs=1e-3), (exercise_id, row)
    assert float(row["total"]) == pytest.approx(sum(expected.values()) / len(expected), abs=1e-3)
    if note is None:
        assert not row["note"], row["note"]
    else:
        assert note in row["note"], row["note"]


def test_the_csv_has_one_column_per_exercise_of_the_chapter(batch):
    ids = [e.id for e in exercises_in(BOOK)]
    header = list(next(iter(batch["rows"].values())))
    assert header == ["submission", *ids, "total", "note"]
    assert set(batch["rows"]) == set(NAMES)


def test_broken_submissions_get_an_error_line_and_the_batch_goes_on(batch):
    assert "invalid_json: not a valid notebook" in batch["stderr"]
    assert "infinite_loop: timed out in cell" in batch["stderr"]
    assert "Traceback" not in batch["stderr"]


# ---------------------------------------------------------------------------------------------
# Feedback and the Gradescope results
# ---------------------------------------------------------------------------------------------
def test_feedback_has_the_checkers_message_for_every_failed_case(batch):
    text = (batch["out"] / "feedback" / "wrong.md").read_text()
    for exercise_id, source in WRONG.items():
        namespace: dict = {}
        exec(source, namespace)
        result = run_check(exercise_id, namespace[exercise_id.split(".", 1)[1]])
        assert result.messages
        for message in result.messages:
            assert message in text
    solved = (batch["out"] / "feedback" / "solved.md").read_text()
    assert "```text" not in solved and "Total: 1.00" in solved
    unsolved = (batch["out"] / "feedback" / "unsolved.md").read_text()
    assert "not implemented yet" in unsolved


def test_gradescope_results_format(batch):
    ids = [e.id for e in exercises_in(BOOK)]
    for name in NAMES:
        result = batch["results"][name]
        assert [t["name"] for t in result["tests"]] == ids
        assert all(t["max_score"] == 1.0 and 0.0 <= t["score"] <= 1.0 and isinstance(t["output"], str)
                   for t in result["tests"])
        assert result["score"] == pytest.approx(sum(t["score"] for t in result["tests"]), abs=1e-3)
        assert float(batch["rows"][name]["total"]) * len(ids) == pytest.approx(result["score"], abs=1e-3)
        assert result["execution_time"] > 0 or name == "invalid_json"  # (never run)
    assert batch["results"]["solved"]["tests"][0]["output"] == "All cases passed."


# ---------------------------------------------------------------------------------------------
# The sandbox
# ---------------------------------------------------------------------------------------------
def _probe(batch, name: str) -> dict:
    nb = nbformat.read(batch["out"] / "executed" / f"{name}.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    return dict(re.findall(r"^SANDBOX-(\w+) (.*)$", text, re.M))


def test_each_submission_runs_in_a_fresh_directory_of_its_own(batch):
    ran = [n for n in NAMES if n != "invalid_json"]
    probes = {n: _probe(batch, n) for n in ran}
    cwds = [Path(p["CWD"]) for p in probes.values()]
    assert len(set(cwds)) == len(ran)  # nothing shared
    for name, p in probes.items():
        assert "marker.txt" not in p["FILES"], (name, p["FILES"])  # fresh: no submission's marker
        assert p["HOME"] == p["CWD"]
        cwd = Path(p["CWD"])
        assert not cwd.exists()  # removed after grading
        for outside in (batch["out"], batch["subs"], ROOT):
            assert outside.resolve() not in cwd.resolve().parents
    assert not list(batch["subs"].glob("*.txt")) and not list(batch["out"].rglob("marker.txt"))


def test_the_environment_is_scrubbed_and_the_network_blocked(batch):
    p = _probe(batch, "solved")
    assert p["SECRET"] == "absent"
    assert p["NET"].startswith("blocked"), p["NET"]


def test_a_fake_record_written_by_the_notebook_is_overwritten(batch):
    result = batch["results"]["cheat_fake_record"]
    assert result["score"] == 0.0


# ---------------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------------
def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "course_utils.grade", *args], capture_output=True, text=True, cwd=cwd)


def test_bad_command_line_input_gets_a_clear_message(tmp_path):
    missing = _cli(str(tmp_path / "nope.ipynb"), "--out", str(tmp_path / "out"))
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = _cli(str(tmp_path / "empty"), "--out", str(tmp_path / "out"))
    assert empty.returncode == 2 and "no notebooks" in empty.stderr and "Traceback" not in empty.stderr
    sub = tmp_path / "a.ipynb"
    sub.write_text(nbformat.writes(nbformat.v4.new_notebook()))
    chapter = _cli(str(sub), "--out", str(tmp_path / "out"), "--chapter", "99_nothing")
    assert chapter.returncode == 2 and "is no notebook of the course" in chapter.stderr
    memory = _cli(str(sub), "--out", str(tmp_path / "out"), "--memory", "lots", "--chapter", CHAPTER)
    assert memory.returncode == 2 and "--memory" in memory.stderr and "Traceback" not in memory.stderr


def test_sizes_names_and_chapter_inference(tmp_path):
    assert grade.parse_size("8G") == 8 * 1024 ** 3
    assert grade.parse_size("512M") == 512 * 1024 ** 2
    assert grade.parse_size("0") is None
    assert grade.submission_names([Path("a/x y.ipynb"), Path("b/x y.ipynb")]) == ["x_y", "x_y-2"]
    chapter = grade.resolve_chapter(CHAPTER, [])
    assert chapter.ids == [e.id for e in exercises_in(BOOK)]
    sub = tmp_path / "s.ipynb"
    nbformat.write(_answered({}), sub)
    assert grade.resolve_chapter(None, [sub]).name == CHAPTER
