"""No correct answer written differently from the reference is refused.

Every exercise has at least two alternative correct answers (tests/alternatives/<chapter>.py):
written another way (loops vs vectorised, numpy inside, float64, the other reasonable reading of
the statement); each passes its check. tests/test_student_notebooks.py pastes the first of them
into the student notebook and runs the chapter to its end.
"""
import pytest

from course_utils.authoring import all_exercises
from course_utils.exercises import run_check
from exercise_alternatives import ALTERNATIVES, load_alternative

EXERCISES = all_exercises()
CASES = [(i, k) for i in sorted(EXERCISES) for k in range(len(ALTERNATIVES.get(i, [])))]


def test_every_exercise_has_two_alternatives_that_differ_from_the_reference():
    assert set(ALTERNATIVES) <= set(EXERCISES), set(ALTERNATIVES) - set(EXERCISES)
    missing = [i for i in EXERCISES if len(ALTERNATIVES.get(i, [])) < 2]
    assert not missing, f"fewer than two alternative answers: {missing}"
    for exercise_id, sources in ALTERNATIVES.items():
        reference = " ".join(EXERCISES[exercise_id].reference_source.split())
        normalised = [" ".join(s.split()) for s in sources]
        assert reference not in normalised, f"{exercise_id}: an 'alternative' is the reference itself"
        assert len(set(normalised)) == len(normalised), f"{exercise_id}: two alternatives are the same"


@pytest.mark.parametrize("exercise_id,k", CASES, ids=[f"{i}-{k}" for i, k in CASES])
def test_alternative_answer_passes_its_check(exercise_id, k):
    result = run_check(exercise_id, load_alternative(exercise_id, ALTERNATIVES[exercise_id][k]))
    assert result.passed, result.report
