"""Conditions on a check's result, for the tables of wrong answers in tests/test_exercises_*.py.

A row of such a table names the exercise, a wrong answer, the texts the learner must read, and a
condition built here -- ``only(...)`` cases failed, ``case(...)`` says this, ``counts(passed=k)`` ... --
which the table's one test calls on the result of the check.
"""
from exercise_support import failed_cases, failure


def only(*names):
    """Exactly these cases failed, in this order."""
    def holds(result):
        assert failed_cases(result) == list(names)
    return holds


def also(*conditions):
    """Every one of ``conditions`` holds."""
    def holds(result):
        for condition in conditions:
            condition(result)
    return holds


def failed(name):
    """This case failed."""
    def holds(result):
        assert name in failed_cases(result)
    return holds


def not_failed(name):
    """This case passed (the mistake does not show there)."""
    def holds(result):
        assert name not in failed_cases(result)
    return holds


def counts(passed=None, failed=None, score=None):
    """So many cases passed, so many failed, this score -- each where given."""
    def holds(result):
        assert passed is None or result.n_passed == passed
        assert failed is None or len(failed_cases(result)) == failed
        assert score is None or result.score == score
    return holds


def every_failure_hints(hint):
    """Every failed case carries this hint."""
    def holds(result):
        assert all(case.hint == hint for case in result.cases if not case.passed)
    return holds


def case(name_part, *in_message, hint=None):
    """The first case whose name contains ``name_part`` failed, saying ``in_message`` (and ``hint``)."""
    def holds(result):
        found = next(c for c in result.cases if name_part in c.name)
        assert not found.passed
        assert [piece for piece in in_message if piece not in found.message] == []
        assert hint is None or found.hint == hint
    return holds


def in_messages(piece):
    """Some case's message says ``piece``."""
    def holds(result):
        assert piece in "\n".join(result.messages)
    return holds


def passed_where(name_part):
    """Every case whose name contains ``name_part`` passed."""
    def holds(result):
        assert all(c.passed for c in result.cases if name_part in c.name)
    return holds


def assert_mistake(exercise, answer, expected, holds=None):
    """``answer`` fails ``exercise``'s check; the learner reads every piece of ``expected``; ``holds``."""
    result, text = failure(exercise, answer)
    assert [piece for piece in expected if piece not in text] == []
    if holds is not None:
        holds(result)
