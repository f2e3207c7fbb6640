"""Helpers shared by the exercise-check tests (tests/test_exercises_*.py)."""
import pytest

from course_utils.authoring import all_exercises
from course_utils.exercises import ExerciseFailed, check, run_check


@pytest.fixture(scope="module")
def book():
    """Every exercise of the book notebooks, by id (reference answers and stubs load from it)."""
    return all_exercises()


def failure(exercise_id, answer):
    """The result of a failing check, and the text a learner would read."""
    result = run_check(exercise_id, answer)
    assert not result.passed, f"{exercise_id} accepted a wrong answer"
    assert result.score < 1
    with pytest.raises(ExerciseFailed) as info:
        check(exercise_id, answer)
    text = str(info.value)
    assert text == result.report
    assert "torch/" not in text and "course_utils/" not in text and "Traceback" not in text
    return result, text


def failed_cases(result):
    return [c.name for c in result.cases if not c.passed]

