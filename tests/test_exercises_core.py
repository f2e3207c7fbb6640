"""The exercise-check framework itself, on throwaway exercises in a private ``Registry``."""
import math
import traceback

import numpy as np
import pytest
import torch

import course_utils.exercises as exercises
from course_utils.exercises import CheckResult, ExerciseFailed, Registry, UnknownExercise
from course_utils.exercises.core import (
    Mistake, call, describe_value, expect, expect_close, expect_tensor, expect_tuple, fail,
)

ADD_TWO_HINT = "You added 2: multiply by 2 instead."


@pytest.fixture()
def reg():
    """A private registry with three small exercises (the package's REGISTRY is not touched)."""
    reg = Registry()

    @reg.exercise("demo.double", hint="Return 2 * x.")
    def double(answer, case):
        """Double a tensor."""
        for n in (1, 3, 4):
            with case(f"a vector of {n}"):
                x = torch.arange(n, dtype=torch.float32)
                got = call(answer, x.clone())
                expect_tensor(got, 2 * x, name="output", mistakes=[Mistake(x + 2, ADD_TWO_HINT)])

    @reg.exercise("demo.split", hint="Return (x[:k], x[k:]).")
    def split(answer, case):
        """Split a tensor in two."""
        x = torch.arange(5.0)
        with case("k = 2"):
            head, tail = expect_tuple(call(answer, x.clone(), 2), ("head", "tail"))
            expect_tensor(head, x[:2], name="head")
            expect_tensor(tail, x[2:], name="tail")
        with case("k = 0", hint="An empty head is fine."):
            head, tail = expect_tuple(call(answer, x.clone(), 0), ("head", "tail"))
            expect_tensor(head, x[:0], name="head")

    @reg.exercise("other.pi", callable_answer=False, description="The value of pi, to 3 decimals.")
    def pi(answer, case):
        with case("close to pi"):
            expect_close(float(answer), math.pi, 1e-3, name="pi")

    return reg


def double(x):
    return 2 * x


def failed(reg, exercise_id, answer):
    """The failing result, checked to be consistent with the ExerciseFailed of ``check``."""
    result = reg.run_check(exercise_id, answer)
    assert isinstance(result, CheckResult) and not result.passed
    with pytest.raises(ExerciseFailed) as info:
        reg.check(exercise_id, answer)
    assert str(info.value) == result.report and info.value.result.score == result.score
    assert "torch/" not in result.report and "site-packages" not in result.report
    assert "Traceback" not in result.report and "exercises/core.py" not in result.report
    return result


# ---------------------------------------------------------------------------------------------
# Passing
# ---------------------------------------------------------------------------------------------
def test_pass_prints_one_line_and_returns_the_result(reg, capsys):
    result = reg.check("demo.double", double)
    assert capsys.readouterr().out == "✅ demo.double: all 3 cases passed\n"
    assert result == CheckResult("demo.double", True, 1.0, 3, 3, [], result.cases, result.report)
    assert [c.name for c in result.cases] == ["a vector of 1", "a vector of 3", "a vector of 4"]


def test_result_is_not_displayed_twice_in_jupyter(reg, capsys):
    result = reg.check("demo.double", double)
    capsys.readouterr()
    result._ipython_display_()  # what Jupyter calls for a cell's last value
    assert capsys.readouterr().out == ""
    reg.run_check("demo.double", double)._ipython_display_()
    assert "all 3 cases passed" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# Failing: the message
# ---------------------------------------------------------------------------------------------
def test_exercise_failed_is_an_assertion_error_naming_case_expected_got_hint(reg):
    assert issubclass(ExerciseFailed, AssertionError)
    result = failed(reg, "demo.double", lambda x: 3 * x)
    text = result.report
    assert text.startswith("demo.double: 2 of 3 cases failed.\n")
    assert 'Case "a vector of 3": output: values differ at 2 of 3 positions' in text
    assert "max |got - expected| = 2 at [2]" in text
    assert "expected output[:]: [0, 2, 4]" in text and "got      output[:]: [0, 3, 6]" in text
    assert "Hint: Return 2 * x." in text
    assert 'Also failed: "a vector of 4".' in text


def test_score_is_the_fraction_of_cases_passed(reg):
    result = failed(reg, "demo.double", lambda x: 3 * x)  # 2 * 0 == 3 * 0: the first case passes
    assert (result.n_passed, result.n_cases, result.score) == (1, 3, pytest.approx(1 / 3))
    assert len(result.messages) == 2 and result.messages[0].startswith('Case "a vector of 3"')


def test_a_known_mistake_gets_its_own_hint(reg):
    text = failed(reg, "demo.double", lambda x: x + 2).report
    assert f"Hint: {ADD_TWO_HINT}" in text and "Return 2 * x" not in text


def test_the_traceback_is_short(reg):
    with pytest.raises(ExerciseFailed) as info:
        exercises.check("attention.attention_mask", lambda lengths, max_len, causal=False: 1 / 0)
    err = info.value
    assert err.__cause__ is None and err.__suppress_context__
    frames = traceback.extract_tb(err.__traceback__)
    assert [f.name for f in frames] == ["test_the_traceback_is_short", "check"]  # no internal frames
    # Jupyter/IPython print ``_render_traceback_`` instead of a traceback: the message alone
    shown = err._render_traceback_()
    assert "ExerciseFailed" in shown[0] and "\n".join(shown).endswith(str(err).splitlines()[-1])
    assert not any("File " in line for line in shown)


# ---------------------------------------------------------------------------------------------
# Robustness: one readable message for every kind of broken answer; run_check never raises
# ---------------------------------------------------------------------------------------------
def stub(x):
    raise NotImplementedError("Your code here: replace this line.")


def divides_by_zero(x):
    scale = 1 / 0
    return scale * x


def forgets_return(x):
    2 * x


def nested_error(x):
    return helper_that_fails(x)


def helper_that_fails(x):
    return x @ torch.ones(7, 2)  # torch raises deep inside: the message points here


@pytest.mark.parametrize(
    "answer, phrases",
    [
        (None, ["you passed None, not your function", 'check("demo.double", double)', "missing a `return`"]),
        (torch.ones(3), ["you passed a tensor of shape (3,)", "not a function", "without calling it"]),
        (42, ["you passed the int 42, not a function"]),
        (stub, ["`stub` is not implemented yet", "replace the `raise NotImplementedError(...)` line"]),
        (forgets_return, ["`forgets_return` returned None -- did you forget to `return` the result?"]),
    ],
    ids=["None", "tensor", "int", "stub", "returns-None"],
)
def test_whole_answer_problems_give_one_line(reg, answer, phrases):
    result = failed(reg, "demo.double", answer)
    assert result.score == 0 and result.n_cases == 3
    assert len(result.report.splitlines()) == 1
    assert len(result.messages) == 1 and result.messages[0] in result.report
    for phrase in phrases:
        assert phrase in result.report


def test_an_exception_in_the_learners_code_names_type_message_and_line(reg):
    text = failed(reg, "demo.double", divides_by_zero).report
    assert "your function raised ZeroDivisionError: division by zero" in text
    assert "in `divides_by_zero`, line" in text and "test_exercises_core.py: `scale = 1 / 0`" in text
    assert len(text.splitlines()) <= 5


def test_a_torch_error_points_at_the_learners_line_not_into_torch(reg):
    text = failed(reg, "demo.double", nested_error).report
    assert "your function raised RuntimeError:" in text
    assert "in `helper_that_fails`" in text and "x @ torch.ones(7, 2)" in text


def test_not_implemented_inside_a_library_is_not_the_stub(reg):
    # A NotImplementedError raised by torch (say, an op missing for a dtype) is an ordinary error.
    namespace = {}
    library_file = str(__import__("pathlib").Path(torch.__file__).parent / "fake_module.py")
    exec(compile("def op(x):\n    raise NotImplementedError('op not implemented for Half')\n", library_file, "exec"),
         namespace)

    def uses_op(x):
        return namespace["op"](x)

    text = failed(reg, "demo.double", uses_op).report
    assert "raised NotImplementedError: op not implemented for Half" in text
    assert "in `uses_op`" in text and "not implemented yet" not in text


@pytest.mark.parametrize(
    "answer, phrases",
    [
        (lambda x: (2 * x, 2 * x), ["output: expected a torch tensor, got a tuple of 2 items"]),
        (lambda x: (2 * x).numpy(), ["got a numpy ndarray of shape (1,)", "torch.from_numpy"]),
        (lambda x: (2 * x)[None], ["output: shape (1, 1), expected (1,)"]),
        (lambda x: (2 * x).long(), ["output: dtype torch.int64, expected torch.float32"]),
        (lambda x: 2 * x / (x > 0), ["output contains NaN at 1 of 1 positions (first at [0])", "got      output[:]: [nan]"]),
        (lambda x: 2 * x + 1e-3, ["values differ", "tolerance 1e-05 + 0.0001·|expected|"]),
    ],
    ids=["tuple", "numpy", "shape", "dtype", "nan", "values"],
)
def test_wrong_results_give_a_readable_message(reg, answer, phrases):
    result = failed(reg, "demo.double", answer)
    first = result.messages[0]  # case "a vector of 1"
    for phrase in phrases:
        assert phrase in first
    assert len(first.splitlines()) <= 4


def test_tuple_answers(reg):
    assert reg.run_check("demo.split", lambda x, k: (x[:k], x[k:])).passed
    result = failed(reg, "demo.split", lambda x, k: x[:k])
    assert "expected a tuple of 2 (head, tail), got a tensor of shape (2,)" in result.report
    assert "return head, tail" in result.report
    # a case's own hint replaces the exercise's
    result = failed(reg, "demo.split", lambda x, k: (x[:1], x[1:]))
    assert result.cases[1].hint == "An empty head is fine." and result.cases[0].hint == "Return (x[:k], x[k:])."


def test_every_case_runs_even_after_errors(reg):
    calls = []

    def flaky(x):
        calls.append(len(x))
        if len(x) == 3:
            raise ValueError("boom")
        return 2 * x

    result = reg.run_check("demo.double", flaky)
    assert calls == [1, 3, 4] and result.n_passed == 2 and result.score == pytest.approx(2 / 3)


def test_errors_in_check_code_and_outside_cases_are_failed_cases():
    reg = Registry()

    @reg.exercise("demo.broken")
    def broken(answer, case):
        with case("uses the answer wrongly"):
            call(answer).nonexistent_attribute  # the learner returned something unexpected
        with case("an author's assert"):
            assert call(answer) == 3, "the answer should be 3"
        with case("passes"):
            expect(True, "never shown")
        raise KeyError("outside any case")

    result = reg.run_check("demo.broken", lambda: 2)
    assert [c.name for c in result.cases] == ["uses the answer wrongly", "an author's assert", "passes",
                                              "setting up the cases"]
    assert [c.passed for c in result.cases] == [False, False, True, False]
    assert "the check could not use your answer: AttributeError" in result.cases[0].message
    assert result.cases[1].message == "the answer should be 3"


def test_value_answers(reg, capsys):
    assert reg.check("other.pi", 3.1416).passed
    result = failed(reg, "other.pi", 3.0)
    assert "pi: got 3.0000, expected 3.1416 ± 0.0010." in result.report
    assert "you passed None" in failed(reg, "other.pi", None).report


def test_checks_do_not_touch_the_learners_inputs():
    reg = Registry()
    x = torch.arange(3.0)

    @reg.exercise("demo.inplace")
    def inplace(answer, case):
        with case("doubles in place, on a clone"):
            expected = 2 * x  # computed before the learner runs, from the check's own tensor
            expect_tensor(call(answer, x.clone()), expected)

    assert reg.run_check("demo.inplace", lambda t: t.mul_(2)).passed
    assert torch.equal(x, torch.arange(3.0))


# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------
def test_unknown_id_is_a_lookup_error_listing_the_known_ids(reg):
    assert issubclass(UnknownExercise, LookupError)
    with pytest.raises(UnknownExercise) as info:
        reg.run_check("demo.doubel", double)
    text = str(info.value)
    assert "unknown exercise 'demo.doubel'" in text and "Did you mean 'demo.double'?" in text
    assert "Known exercises: demo.double, demo.split, other.pi" in text
    with pytest.raises(UnknownExercise):
        reg.check("nope.nothing", double)
    with pytest.raises(UnknownExercise, match="attention.scaled_dot_product_attention"):
        exercises.run_check("attention.nope", double)


def test_list_and_describe(reg):
    assert reg.list_exercises() == ["demo.double", "demo.split", "other.pi"]
    assert reg.list_exercises("demo") == ["demo.double", "demo.split"]
    assert reg.list_exercises("nothing") == []
    assert reg.describe("demo.double") == "Double a tensor."
    assert reg.describe("other.pi") == "The value of pi, to 3 decimals."
    assert "demo.double" not in exercises.list_exercises()  # the package registry is untouched
    assert exercises.list_exercises() == sorted(exercises.list_exercises())
    assert all(exercises.describe(i) for i in exercises.list_exercises())


def test_registration_rules(reg):
    with pytest.raises(ValueError, match="must look like"):
        reg.exercise("no_chapter")
    with pytest.raises(ValueError, match="registered twice"):
        @reg.exercise("demo.double")
        def another(answer, case):
            pass

    empty = Registry()

    @empty.exercise("demo.empty")
    def no_cases(answer, case):
        pass

    with pytest.raises(RuntimeError, match="defines no cases"):
        empty.run_check("demo.empty", double)


def test_the_example_in_the_core_docstring_works():
    import textwrap

    from course_utils.exercises import core

    example = core.__doc__.split("::\n", 1)[1].split("\nConventions", 1)[0]
    example = textwrap.dedent(example).replace("from .core import call, exercise, expect_tensor",
                                               "from course_utils.exercises.core import call, expect_tensor")
    reg = Registry()
    exec(compile(example, "core-docstring", "exec"), {"exercise": reg.exercise})
    assert reg.list_exercises() == ["attention.causal_mask"]
    assert reg.describe("attention.causal_mask") == "A (T, T) bool mask that lets position i see positions 0..i."
    assert reg.run_check("attention.causal_mask", lambda T: torch.ones(T, T, dtype=torch.bool).tril()).passed
    wrong = reg.run_check("attention.causal_mask", lambda T: torch.ones(T, T, dtype=torch.bool).triu())
    assert wrong.score == 0.5 and "Hint: That is triu: position i sees the future. Use tril." in wrong.report


def test_helpers_fail_and_describe_value():
    with pytest.raises(Exception) as info:
        fail("custom message", hint="custom hint")
    assert info.value.message == "custom message" and info.value.hint == "custom hint"
    assert describe_value(None) == "None"
    assert describe_value(np.zeros((2, 3))) == "a numpy ndarray of shape (2, 3) (dtype float64)"
    assert describe_value((1, torch.ones(2))) == "a tuple of 2 items (the int 1, a tensor of shape (2,) and dtype torch.float32)"
    with pytest.raises(Exception, match=r"mask: differs from the expected value at 1 of 4 positions \(first at \[1, 0\]\)"):
        expect_tensor(torch.tensor([[True, False], [False, True]]),
                      torch.tensor([[True, False], [True, True]]), name="mask")


# ---------------------------------------------------------------------------------------------
# learner_or_reference and progress: what this kernel's checks remember
# ---------------------------------------------------------------------------------------------
def reference_double(x):
    return x * 2


def test_learner_or_reference_uses_the_learners_function_only_after_its_check_passed(reg, capsys):
    # never checked: the reference, saying why
    assert reg.learner_or_reference("demo.double", double, reference_double) is reference_double
    assert capsys.readouterr().out.strip() == ("Using the course's `reference_double` here: your `double`: "
                                               "its check has not been run (exercise demo.double).")
    # a failed check: the reference
    def add_two(x):
        return x + 2

    reg.run_check("demo.double", add_two)
    assert reg.learner_or_reference("demo.double", add_two, reference_double) is reference_double
    assert "its check has not passed yet" in capsys.readouterr().out
    # passed: the learner's own function
    reg.run_check("demo.double", double)
    assert reg.learner_or_reference("demo.double", double, reference_double) is double
    assert capsys.readouterr().out.strip() == "Using your `double` (its check passed)."

    # redefined after it passed: unchecked, so the reference
    def double_again(x):  # noqa: E306 -- the learner ran the exercise cell once more
        return x + x

    assert reg.learner_or_reference("demo.double", double_again, reference_double) is reference_double
    assert "it changed after its check passed" in capsys.readouterr().out
    # the latest check counts: a later failure takes the learner's function away again
    reg.run_check("demo.double", add_two)
    assert reg.learner_or_reference("demo.double", double, reference_double) is reference_double


def test_learner_or_reference_with_an_unknown_id_lists_the_known_ones(reg):
    with pytest.raises(UnknownExercise, match="demo.double"):
        reg.learner_or_reference("demo.dubble", double, reference_double)


def test_progress_table_passed_failed_not_tried(reg):
    assert [r[1] for r in reg.progress().rows] == ["not tried"] * 3  # nothing run: every exercise
    reg.run_check("demo.double", double)
    reg.run_check("demo.split", lambda x, k: (x[:k], x[:k]))
    table = reg.progress()  # inferred: the chapter of the exercises run so far ("demo")
    assert [(i, s) for i, s, _ in table.rows] == [("demo.double", "passed"), ("demo.split", "failed")]
    assert table.rows[1][2] == "1 of 2 cases passed"
    assert table.counts() == {"passed": 1, "failed": 1, "not tried": 0}
    text = str(table)
    assert "demo.double" in text and "passed" in text and "1 of 2 exercises passed, 1 failed" in text
    html = table._repr_html_()
    assert html.startswith("<table>") and "<code>demo.split</code>" in html and "failed" in html
    other = reg.progress("other")
    assert other.rows == [("other.pi", "not tried", "no check run in this kernel")]
    with pytest.raises(UnknownExercise, match="Chapters: demo, other"):
        reg.progress("nope")


def test_progress_of_the_package(capsys):
    table = exercises.progress("attention")
    assert [r[0] for r in table.rows] == exercises.list_exercises("attention")
    assert {r[1] for r in table.rows} <= {"passed", "failed", "not tried"}
