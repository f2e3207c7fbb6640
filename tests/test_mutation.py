"""Every exercise check kills >= 95 % of the non-equivalent mutants of its reference answer.

The mutants and the table: tests/mutation.py (``python -m tests.mutation`` prints it; the test
run prints it at the end too). The first tests prove the mutator itself makes the mistakes it
claims to make, and that a weak check lets them through.
"""
from pathlib import Path

import pytest
import torch

from course_utils.authoring import Exercise, all_exercises
from course_utils.exercises.core import Registry, call, expect_tensor
from tests import mutation
from tests.mutation_equivalents import DIFFERENTIABLE, EQUIVALENT

EXERCISES = all_exercises()
RESULTS: dict[str, mutation.MutationResult] = {}  # read by conftest's terminal summary

TOY_CELL = '''import torch


def clipped_mean(x, limit):
    """Mean of the values of x below limit (inclusive), each clamped at 0."""
    ### BEGIN SOLUTION
    kept = x[x <= limit].clamp(min=0)
    return kept.sum() / max(len(kept), 1)
    ### END SOLUTION
'''


def toy_exercise() -> Exercise:
    return Exercise("toy.clipped_mean", "clipped_mean", Path("toy.ipynb"), 0, TOY_CELL)


def test_the_mutator_makes_the_learners_mistakes():
    names = [m.name for m in mutation.mutants(toy_exercise())]
    kinds = {n.split(":")[0] for n in names}
    assert {"compare", "clamp removed", "constant ±1", "reduction", "dropped term"} <= kinds
    assert "compare: `x <= limit` -> `x < limit` in `kept = x[x <= limit].clamp(min=0)`" in names
    assert not any(n.startswith("detached") for n in names)  # not a differentiable exercise
    # the mutants stay outside the cell's imports and signature: only the solution region changes
    for m in mutation.mutants(toy_exercise()):
        assert m.source.startswith("import torch\n\ndef clipped_mean(x, limit):")


def _toy_registry(with_boundary_case: bool) -> Registry:
    registry = Registry()

    @registry.exercise("toy.clipped_mean")
    def clipped_mean(answer, case):
        x = torch.tensor([-2.0, 1.0, 3.0, 5.0])
        with case("limit between values"):
            expect_tensor(call(answer, x.clone(), 4.0), torch.tensor(4.0 / 3))
        if with_boundary_case:
            with case("a value exactly at the limit"):
                expect_tensor(call(answer, x.clone(), 3.0), torch.tensor(4.0 / 3))
            with case("no value below the limit"):
                expect_tensor(call(answer, x.clone(), -5.0), torch.tensor(0.0))

    return registry


def test_a_weak_check_lets_mutants_through_and_boundary_cases_kill_them():
    exercise = toy_exercise()
    all_mutants = mutation.mutants(exercise)
    weak, strong = _toy_registry(False), _toy_registry(True)
    flip = next(m for m in all_mutants if m.name.startswith("compare: `x <= limit` -> `x < limit`"))
    assert mutation.survives(exercise, flip, weak.run_check)
    assert not mutation.survives(exercise, flip, strong.run_check)
    survivors = [m.name for m in all_mutants if mutation.survives(exercise, m, strong.run_check)]
    assert len(survivors) < len([m for m in all_mutants if mutation.survives(exercise, m, weak.run_check)])


def test_an_endless_mutant_is_killed_not_waited_for(monkeypatch):
    monkeypatch.setattr(mutation, "MUTANT_SECONDS", 0.5)
    cell = "def spin(n):\n    ### BEGIN SOLUTION\n    while n > 0:\n        n -= 1\n    return n\n    ### END SOLUTION\n"
    exercise = Exercise("toy.spin", "spin", Path("toy.ipynb"), 0, cell)
    endless = mutation.Mutant("endless", "def spin(n):\n    while True:\n        pass\n")
    assert not mutation.survives(exercise, endless, lambda i, a: type("R", (), {"passed": a(3) == 0})())


def test_equivalence_lists_name_real_exercises():
    assert set(EQUIVALENT) <= set(EXERCISES)
    assert DIFFERENTIABLE <= set(EXERCISES)
    for exercise_id, listed in EQUIVALENT.items():
        for name, reason in listed.items():
            assert len(reason.split()) >= 5, f"{exercise_id}: say why `{name}` is equivalent"


@pytest.mark.parametrize("exercise_id", sorted(EXERCISES))
def test_check_kills_the_mutants_of_its_reference(exercise_id):
    result = mutation.run(exercise_id, EXERCISES)
    RESULTS[exercise_id] = result
    assert result.n_mutants >= 3, "too few mutants to say anything: the reference is too short?"
    assert not result.stale, "\n".join(result.stale)
    assert result.kill_rate >= 0.95, (
        f"{exercise_id}: the check kills {100 * result.kill_rate:.1f}% of the non-equivalent mutants; "
        "these survive (add a case, or list a provably equivalent one in tests/mutation_equivalents.py):\n"
        + "\n".join(result.survivors))
