"""Every exercise of the book: its check passes on the reference answer taken from the book
notebook, fails on the student stub with one readable line, and exists on both sides."""
import pytest
import torch

from course_utils.authoring import all_exercises
from course_utils.exercises import check, list_exercises, run_check
from exercise_support import book, failure  # noqa: F401  (book is a fixture)

IDS = sorted(all_exercises())


def test_every_registered_check_has_an_exercise_cell_and_back(book):
    assert set(list_exercises()) == set(book)


@pytest.mark.parametrize("exercise_id", IDS)
def test_reference_answer_from_the_book_passes(book, exercise_id, capsys):
    result = check(exercise_id, book[exercise_id].load())
    assert result.passed and result.score == 1.0 and result.n_passed == result.n_cases >= 4
    assert capsys.readouterr().out.strip() == f"✅ {exercise_id}: all {result.n_cases} cases passed"


@pytest.mark.parametrize("exercise_id", IDS)
def test_stub_fails_with_not_implemented(book, exercise_id):
    result, text = failure(exercise_id, book[exercise_id].load(student=True))
    assert result.score == 0
    assert "not implemented yet" in text and "raise NotImplementedError" in text
    assert len(text.splitlines()) == 1


def test_checks_leave_the_global_rng_alone(book):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    for exercise_id in IDS:
        run_check(exercise_id, book[exercise_id].load())
    assert torch.equal(torch.rand(3), expected)
