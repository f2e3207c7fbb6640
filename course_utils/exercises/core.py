"""The exercise-check framework: ``check(id, answer)``, ``run_check``, ``list_exercises``.

A learner's check cell calls ``check("attention.causal_mask", causal_mask)``. It runs every case
of that exercise, prints one pass line (``✅ attention.causal_mask: all 6 cases passed``) or raises
``ExerciseFailed`` -- an ``AssertionError`` whose message names the failing case, expected vs got
and a hint, with no chain of internal frames behind it. ``run_check`` returns a ``CheckResult``
(passed, score, messages) instead of raising: that is what tests and graders use.
``learner_or_reference(id, answer, reference)`` hands later cells the learner's function once its
check passed (else the course's), and ``progress()`` shows a table of a chapter's exercises: passed,
failed or not tried in this kernel.

Adding a chapter's checks
-------------------------
Create ``course_utils/exercises/<chapter>.py``; it is imported automatically. Write one function
per exercise, decorated with ``@exercise(id, hint=...)``. It receives the learner's ``answer`` and
``case``; each ``with case("..."):`` block is one case, named for the learner. Inside a block, call
the answer with ``call(...)`` (it turns an exception in the learner's code into a readable message)
and compare with the ``expect_*`` helpers (they fail with shapes, a few values and the max
difference). A block that fails or errors counts as one failed case; the others still run. ::

    import torch
    from .core import call, exercise, expect_tensor

    @exercise("attention.causal_mask", hint="Query i may attend key j when j <= i: torch.tril.")
    def causal_mask(answer, case):
        \"\"\"A (T, T) bool mask that lets position i see positions 0..i.\"\"\"  # describe() shows this
        for T in (1, 5):
            with case(f"T = {T}"):
                got = call(answer, T)
                expect_tensor(got, torch.ones(T, T, dtype=torch.bool).tril(), name="mask",
                              mistakes=[(torch.ones(T, T, dtype=torch.bool).triu(),
                                         "That is triu: position i sees the future. Use tril.")])

Conventions: seed every random input (``torch.Generator().manual_seed(...)``); compute expected
values on clones, and give the learner fresh inputs; name cases by what they test ("batch of 2,
lengths [3, 5], causal"); give ``mistakes`` -- what a known wrong answer would return, and the hint
to show when the learner's result equals it. The test suite proves each check passes on the book's
reference answer, fails on the stub and fails on plausible wrong answers.
"""
from __future__ import annotations

import difflib
import html
import linecache
import math
import re
import sysconfig
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import torch

__all__ = [
    "CaseOutcome", "CheckFailure", "CheckResult", "ExerciseFailed", "Mistake", "Registry",
    "UnknownExercise", "REGISTRY", "call", "check", "describe", "describe_value", "exercise",
    "expect", "expect_close", "expect_equal", "expect_tensor", "expect_tensor_like", "expect_tuple",
    "fail", "learner_or_reference", "list_exercises", "progress", "Progress", "run_check",
]

_ID = re.compile(r"^[a-z][a-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")


# ---------------------------------------------------------------------------------------------
# Errors and results
# ---------------------------------------------------------------------------------------------
class _ShortTraceback:
    """IPython/Jupyter display ``_render_traceback_`` instead of a traceback: the message alone.

    (The learner's mistake is in the answer, not in the frames of this package; plain Python and
    pytest still show the usual, short, traceback.)
    """

    def _render_traceback_(self) -> list[str]:
        lines = str(self).splitlines() or [""]
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {lines[0]}"] + lines[1:]


class ExerciseFailed(_ShortTraceback, AssertionError):
    """Raised by ``check`` when an answer fails; ``.result`` holds the ``CheckResult``."""

    def __init__(self, message: str, result: Optional["CheckResult"] = None):
        super().__init__(message)
        self.result = result


class UnknownExercise(_ShortTraceback, LookupError):
    """An exercise id that no check module registers (the message lists the known ids)."""


class CheckFailure(Exception):
    """One case failed. Raised by the helpers (``fail``, ``expect_*``, ``call``) inside a case.

    ``kind`` tells the framework about failures that concern the whole answer ("not_implemented",
    "returned_none", "not_callable", "none"), which it reports once instead of case by case.
    """

    def __init__(self, message: str, hint: Optional[str] = None, kind: str = "wrong"):
        super().__init__(message)
        self.message, self.hint, self.kind = message, hint, kind


@dataclass
class CaseOutcome:
    """One case of a check: its name, whether it passed and, if not, why (message, hint, kind)."""

    name: str
    passed: bool
    message: str = ""
    hint: str = ""
    kind: str = ""

    def text(self) -> str:
        """``case "name": message`` plus a ``Hint:`` line (empty for a passed case)."""
        if self.passed:
            return ""
        out = f'Case "{self.name}": {self.message}'
        return out + (f"\nHint: {self.hint}" if self.hint else "")


@dataclass
class CheckResult:
    """What ``run_check`` returns. ``score`` is the fraction of cases passed."""

    exercise_id: str
    passed: bool
    score: float
    n_passed: int
    n_cases: int
    messages: list = field(default_factory=list)  # one text per failed case
    cases: list = field(default_factory=list, repr=False)  # CaseOutcome, in order
    report: str = field(default="", repr=False)  # the pass line, or the ExerciseFailed message
    _announced: bool = field(default=False, repr=False, compare=False)

    def __str__(self) -> str:
        return self.report

    def _ipython_display_(self) -> None:
        # ``check(...)`` is usually the last line of its cell: Jupyter would show the result's
        # repr under the pass line that ``check`` already printed. Show it only once.
        if not self._announced:
            print(self.report)


# ---------------------------------------------------------------------------------------------
# Describing values and locating the learner's code
# ---------------------------------------------------------------------------------------------
def _shape(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def describe_value(x: Any) -> str:
    """A short phrase for any value: "a tensor of shape (2, 3) and dtype torch.float32"."""
    if x is None:
        return "None"
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {_shape(x.shape)} and dtype {x.dtype}"
    if type(x).__module__ == "numpy" and hasattr(x, "shape"):
        return f"a numpy {type(x).__name__} of shape {_shape(x.shape)} (dtype {getattr(x, 'dtype', '?')})"
    if isinstance(x, (tuple, list)):
        kind = type(x).__name__
        items = ", ".join(describe_value(v) for v in x[:3]) + (", ..." if len(x) > 3 else "")
        return f"a {kind} of {len(x)} item{'s' if len(x) != 1 else ''} ({items})" if x else f"an empty {kind}"
    if isinstance(x, (bool, int, float, str)):
        text = repr(x) if len(repr(x)) <= 40 else repr(x)[:37] + "..."
        return f"the {type(x).__name__} {text}"
    if callable(x):
        return f"the {type(x).__name__} {getattr(x, '__name__', '')}".rstrip()
    module = type(x).__module__
    return f"a {type(x).__name__}" if module == "builtins" else f"a {module}.{type(x).__qualname__}"


def _library_dirs() -> list[str]:
    dirs = [str(Path(__file__).resolve().parent.parent), str(Path(torch.__file__).resolve().parent)]
    for key in ("stdlib", "platstdlib"):
        try:
            dirs.append(str(Path(sysconfig.get_paths()[key]).resolve()))
        except (KeyError, OSError):
            pass
    return dirs


_LIBRARY_DIRS = _library_dirs()


def _is_library(filename: str) -> bool:
    if filename.startswith("<"):
        return filename.startswith("<frozen")  # "<ipython-input...>", exec'd cells: the learner's
    parts = Path(filename).parts
    if "site-packages" in parts or "dist-packages" in parts:
        return True
    try:
        resolved = str(Path(filename).resolve())
    except OSError:
        resolved = filename
    return any(resolved == d or resolved.startswith(d + "/") or resolved.startswith(d + "\\") for d in _LIBRARY_DIRS)


def _learner_frame(tb) -> Optional[traceback.FrameSummary]:
    """The last frame of a traceback that is in the learner's own code (not torch, not us)."""
    frames = [f for f in traceback.extract_tb(tb) if not _is_library(f.filename)]
    return frames[-1] if frames else None


def _where(frame: traceback.FrameSummary) -> str:
    name = frame.filename
    if name.startswith("<") or re.search(r"ipykernel_\d+", name):
        place = f"line {frame.lineno} of its cell"
    else:
        place = f"line {frame.lineno} of {Path(name).name}"
    line = (frame.line or linecache.getline(frame.filename, frame.lineno)).strip()
    where = f"in `{frame.name}`, {place}" if frame.name != "<module>" else place
    return where + (f": `{line}`" if line else "")


def _first_line(text: str, limit: int = 240) -> str:
    lines = [l.strip() for l in str(text).strip().splitlines() if l.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# Helpers for check modules
# ---------------------------------------------------------------------------------------------
def fail(message: str, *, hint: Optional[str] = None) -> None:
    """Fail the current case with ``message`` (and a hint that overrides the case's)."""
    raise CheckFailure(message, hint)


def expect(condition: Any, message: str, *, hint: Optional[str] = None) -> None:
    """Fail the current case with ``message`` unless ``condition`` is true."""
    if not condition:
        raise CheckFailure(message, hint)


def call(answer: Callable, *args, **kwargs) -> Any:
    """Call the learner's ``answer``; an exception in it, or ``None`` returned, fails the case.

    The failure names the exception, its message and the line of the learner's code where it
    happened -- never a torch traceback. The learner's ``raise NotImplementedError`` (the stub)
    is reported as "not implemented yet".
    """
    name = getattr(answer, "__name__", type(answer).__name__)
    if answer is None:
        raise CheckFailure("you passed None instead of your function.", kind="none")
    if not callable(answer):
        raise CheckFailure(f"you passed {describe_value(answer)}, not a function.", kind="not_callable")
    try:
        result = answer(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 -- any error in the learner's code is a failed case
        frame = _learner_frame(err.__traceback__)
        origin = traceback.extract_tb(err.__traceback__)[-1:]
        raised_by_learner = bool(origin) and not _is_library(origin[0].filename)
        if isinstance(err, NotImplementedError) and raised_by_learner:
            raise CheckFailure(
                f"`{name}` is not implemented yet: replace the `raise NotImplementedError(...)` "
                "line with your code, then run the cell again.",
                kind="not_implemented",
            ) from None
        detail = _first_line(str(err))
        message = f"your function raised {type(err).__name__}" + (f": {detail}" if detail else "")
        if frame is not None:
            message += f"\n  ({_where(frame)})"
        raise CheckFailure(message, kind="raised") from None
    if result is None:
        raise CheckFailure(f"`{name}` returned None -- did you forget to `return` the result?", kind="returned_none")
    return result


def expect_tuple(got: Any, names: Sequence[str], *, hint: Optional[str] = None) -> tuple:
    """``got`` must be a tuple (or list) of ``len(names)`` items; returns it as a tuple."""
    wanted = f"a tuple of {len(names)} ({', '.join(names)})"
    if not isinstance(got, (tuple, list)) or len(got) != len(names):
        default = f"return all of them: `return {', '.join(names)}`."
        raise CheckFailure(f"expected {wanted}, got {describe_value(got)}.", hint or default)
    return tuple(got)


def expect_equal(got: Any, expected: Any, *, name: str = "result", hint: Optional[str] = None) -> None:
    """Exact equality of plain Python values (ints, strings, tuples of them...)."""
    if got != expected:
        raise CheckFailure(f"{name}: expected {expected!r}, got {got!r}.", hint)


def expect_close(got: float, expected: float, tol: float, *, name: str = "value",
                 hint: Optional[str] = None, fmt: str = ".4f") -> None:
    """A scalar statistic within ``expected ± tol`` (say how ``tol`` was derived in the case name)."""
    if isinstance(got, torch.Tensor):
        got = got.item()
    if not (isinstance(got, (int, float)) and math.isfinite(got) and abs(got - expected) <= tol):
        shown = format(got, fmt) if isinstance(got, (int, float)) else repr(got)
        raise CheckFailure(f"{name}: got {shown}, expected {expected:{fmt}} ± {tol:{fmt}}.", hint)


@dataclass(frozen=True)
class Mistake:
    """What a known wrong answer returns (``value``), and the ``hint`` to show when ``got`` equals it."""

    value: Any
    hint: str


def _as_mistakes(mistakes: Iterable) -> list[Mistake]:
    return [m if isinstance(m, Mistake) else Mistake(*m) for m in (mistakes or ())]


def _same(got: torch.Tensor, other: Any, atol: float, rtol: float) -> bool:
    if not isinstance(other, torch.Tensor) or got.shape != other.shape:
        return False
    got, other = got.detach().cpu(), other.detach().cpu()
    if got.is_floating_point() or other.is_floating_point() or got.is_complex():
        return torch.allclose(got.double(), other.double(), atol=atol, rtol=rtol, equal_nan=True)
    return torch.equal(got.long(), other.long())


def _diagnose(got: torch.Tensor, mistakes: list[Mistake], atol: float, rtol: float) -> Optional[str]:
    for m in mistakes:
        if _same(got, m.value, atol, rtol):
            return m.hint
    return None


def _fmt_index(idx: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def _fmt_row(t: torch.Tensor, idx: Sequence[int], width: int = 8) -> tuple[str, str]:
    """("[0, 1, :]", "[0.1000, 0.2000, ...]") -- the last-dim row through index ``idx``."""
    if t.dim() == 0:
        return "", _fmt_values(t.reshape(1))
    prefix = list(idx[:-1])
    row = t[tuple(prefix)] if prefix else t
    where = "[" + ", ".join([str(int(i)) for i in prefix] + [":"]) + "]"
    j = int(idx[-1])
    start = max(0, min(j - width // 2, row.numel() - width))
    text = _fmt_values(row[start : start + width])
    if start > 0:
        text = "..., " + text
    if start + width < row.numel():
        text += ", ..."
    return where, "[" + text + "]"


def _fmt_values(v: torch.Tensor) -> str:
    v = v.detach().cpu().flatten()
    if v.dtype == torch.bool:
        return ", ".join("True" if x else "False" for x in v.tolist())
    if v.is_floating_point():
        return ", ".join(f"{x:.4g}" for x in v.double().tolist())
    return ", ".join(str(x) for x in v.tolist())


def _rows(expected: torch.Tensor, got: torch.Tensor, idx: Sequence[int], name: str) -> str:
    """Two aligned lines: the expected and the learner's row through index ``idx``."""
    where, exp_row = _fmt_row(expected, idx)
    _, got_row = _fmt_row(got, idx)
    return f"\n  expected {name}{where}: {exp_row}\n  got      {name}{where}: {got_row}"


def expect_tensor_like(got: Any, *, shape: Optional[Sequence[int]] = None, dtype: Optional[torch.dtype] = None,
                       name: str = "output", hint: Optional[str] = None,
                       mistakes: Iterable = ()) -> torch.Tensor:
    """``got`` must be a torch tensor, of ``shape`` and ``dtype`` when given. Returns it."""
    if not isinstance(got, torch.Tensor):
        if type(got).__module__ == "numpy":
            raise CheckFailure(
                f"{name}: expected a torch tensor, got {describe_value(got)}.",
                hint or "Stay in torch (torch functions and tensor methods), or convert with torch.from_numpy(...).",
            )
        raise CheckFailure(f"{name}: expected a torch tensor, got {describe_value(got)}.", hint)
    if shape is not None and tuple(got.shape) != tuple(shape):
        shape = tuple(shape)
        note = ""
        if len(shape) >= 2 and tuple(got.shape) == shape[:-2] + (shape[-1], shape[-2]):
            note = " -- the last two dimensions look swapped"
        elif tuple(got.shape) == shape[1:]:
            note = f" -- the leading dimension ({shape[0]}) is missing"
        diagnosed = _diagnose(got, _as_mistakes(mistakes), 1e-5, 1e-4)
        raise CheckFailure(f"{name}: shape {_shape(got.shape)}, expected {_shape(shape)}{note}.", diagnosed or hint)
    if dtype is not None and got.dtype != dtype:
        note = ""
        if dtype == torch.bool:
            note = " (a comparison such as `a < b` gives a bool tensor; `.bool()` converts)"
        elif dtype == torch.long and got.is_floating_point():
            note = " (integer ids: keep them torch.long, e.g. `.long()`, torch.randint, torch.where on long tensors)"
        raise CheckFailure(f"{name}: dtype {got.dtype}, expected {dtype}{note}.", hint)
    return got


def expect_tensor(got: Any, expected: torch.Tensor, *, name: str = "output", atol: float = 1e-5,
                  rtol: float = 1e-4, dtype_check: bool = True, hint: Optional[str] = None,
                  mistakes: Iterable = ()) -> torch.Tensor:
    """Compare the learner's tensor with ``expected``: type, shape, dtype, NaN/inf, then values.

    Floating values must satisfy ``|got - expected| <= atol + rtol * |expected|``; bool and
    integer values must be equal. ``mistakes`` are ``Mistake(value, hint)`` (or pairs): when
    ``got`` equals a mistake's value, its hint replaces the default one.
    """
    mistakes = _as_mistakes(mistakes)
    expect_tensor_like(got, shape=expected.shape, dtype=expected.dtype if dtype_check else None,
                       name=name, hint=hint, mistakes=mistakes)
    g, e = got.detach().cpu(), expected.detach().cpu()
    diagnosed = lambda: _diagnose(g, mistakes, atol, rtol) or hint  # noqa: E731
    if g.is_floating_point():
        bad = ~torch.isfinite(g) & torch.isfinite(e)
        if bad.any():
            idx = bad.nonzero()[0].tolist()
            what = "NaN" if torch.isnan(g[bad]).any() else "inf"
            raise CheckFailure(
                f"{name} contains {what} at {int(bad.sum())} of {g.numel()} positions (first at {_fmt_index(idx)})."
                + _rows(e, g, idx, name), diagnosed())
    if g.is_floating_point() or e.is_floating_point():
        gd, ed = g.double(), e.double()
        diff = (gd - ed).abs()
        diff = torch.where(torch.isnan(gd) & torch.isnan(ed), torch.zeros_like(diff), diff)
        too_far = (diff > atol + rtol * ed.abs()) | (torch.isnan(diff))
        if too_far.any():
            worst = torch.where(torch.isnan(diff), torch.full_like(diff, math.inf), diff)
            idx = [int(i) for i in torch.unravel_index(worst.argmax(), worst.shape)] if worst.dim() else []
            raise CheckFailure(
                f"{name}: values differ at {int(too_far.sum())} of {g.numel()} positions; "
                f"max |got - expected| = {worst.max().item():.3g} at {_fmt_index(idx)} "
                f"(tolerance {atol:g} + {rtol:g}·|expected|)." + _rows(e, g, idx, name),
                diagnosed())
    else:
        differ = g.long() != e.long() if g.dtype != e.dtype else g != e
        if differ.any():
            idx = differ.nonzero()[0].tolist() if differ.dim() else []
            raise CheckFailure(
                f"{name}: differs from the expected value at {int(differ.sum())} of {g.numel()} positions "
                f"(first at {_fmt_index(idx)})." + _rows(e, g, idx, name), diagnosed())
    return got


# ---------------------------------------------------------------------------------------------
# Exercises and the registry
# ---------------------------------------------------------------------------------------------
@dataclass
class _Exercise:
    id: str
    cases: Callable  # (answer, case) -> None
    hint: str
    description: str
    callable_answer: bool

    @property
    def answer_name(self) -> str:
        return self.id.split(".", 1)[1]


class _Cases:
    """The ``case`` argument of a check function: ``with case("name", hint=...):`` is one case."""

    def __init__(self, ex: _Exercise):
        self.ex = ex
        self.outcomes: list[CaseOutcome] = []
        self._open = False

    @contextmanager
    def __call__(self, name: str, *, hint: Optional[str] = None) -> Iterator[None]:
        if self._open:
            raise RuntimeError(f"{self.ex.id}: case blocks cannot be nested ({name!r})")
        self._open = True
        try:
            yield
        except Exception as err:  # noqa: BLE001 -- a case that errors is a failed case
            self.outcomes.append(_failure(name, err, hint or self.ex.hint))
        else:
            self.outcomes.append(CaseOutcome(name, True))
        finally:
            self._open = False


def _failure(name: str, err: BaseException, default_hint: str) -> CaseOutcome:
    if isinstance(err, CheckFailure):
        return CaseOutcome(name, False, err.message, err.hint or default_hint, err.kind)
    if isinstance(err, AssertionError):  # an author's plain `assert`
        return CaseOutcome(name, False, _first_line(str(err)) or "a check failed", default_hint, "wrong")
    frame = _learner_frame(err.__traceback__)
    message = f"the check could not use your answer: {type(err).__name__}: {_first_line(str(err))}"
    if frame is not None:
        message += f"\n  ({_where(frame)})"
    return CaseOutcome(name, False, message, default_hint, "error")


_WHOLE_ANSWER = ("none", "not_callable", "not_implemented", "returned_none")


class Registry:
    """Exercise checks by id. The package's checks live in ``REGISTRY``; tests may make their own."""

    def __init__(self) -> None:
        self._exercises: dict[str, _Exercise] = {}
        # The latest result of each exercise in this process (kernel), and the answer it judged:
        # what ``learner_or_reference`` and a progress table read. Nothing is written anywhere.
        self.results: dict[str, CheckResult] = {}
        self._judged: dict[str, Any] = {}

    def exercise(self, exercise_id: str, *, hint: str = "", description: Optional[str] = None,
                 callable_answer: bool = True) -> Callable:
        """Decorator registering ``fn(answer, case)`` as the check of ``exercise_id``.

        ``hint`` is shown when a case fails (a case or a helper may give a more specific one);
        ``description`` defaults to the first line of ``fn``'s docstring. Set
        ``callable_answer=False`` for an exercise whose answer is a value, not a function.
        """
        if not _ID.match(exercise_id):
            raise ValueError(f"exercise id {exercise_id!r} must look like '<chapter>.<name>'")

        def register(fn: Callable) -> Callable:
            old = self._exercises.get(exercise_id)
            where = lambda f: f"{f.__module__}.{f.__qualname__}"  # noqa: E731
            if old is not None and where(old.cases) != where(fn):  # (re-importing a module is fine)
                raise ValueError(f"exercise {exercise_id!r} is registered twice ({where(old.cases)} and {where(fn)})")
            doc = (fn.__doc__ or "").strip().splitlines()
            self._exercises[exercise_id] = _Exercise(
                exercise_id, fn, hint, description if description is not None else (doc[0] if doc else ""),
                callable_answer)
            return fn

        return register

    def _get(self, exercise_id: str) -> _Exercise:
        try:
            return self._exercises[exercise_id]
        except (KeyError, TypeError):
            known = sorted(self._exercises)
            close = difflib.get_close_matches(str(exercise_id), known, n=1)
            guess = f" Did you mean {close[0]!r}?" if close else ""
            listing = ", ".join(known) if known else "(none registered)"
            raise UnknownExercise(f"unknown exercise {exercise_id!r}.{guess} Known exercises: {listing}") from None

    def list_exercises(self, chapter: Optional[str] = None) -> list[str]:
        """Sorted ids, optionally only those of ``chapter`` (the part before the dot)."""
        return sorted(i for i in self._exercises if chapter is None or i.split(".", 1)[0] == chapter)

    def describe(self, exercise_id: str) -> str:
        """The one-line description of an exercise."""
        return self._get(exercise_id).description

    def run_check(self, exercise_id: str, answer: Any) -> CheckResult:
        """Run every case; never raises for a wrong answer (only ``UnknownExercise`` for a bad id)."""
        ex = self._get(exercise_id)
        case = _Cases(ex)
        with torch.random.fork_rng(devices=[]):  # the learner's global RNG stream is left as it was
            try:
                ex.cases(answer, case)
            except Exception as err:  # noqa: BLE001 -- code outside a case block: one more failed case
                case.outcomes.append(_failure("setting up the cases", err, ex.hint))
        outcomes = case.outcomes
        if not outcomes:
            raise RuntimeError(f"{exercise_id}: its check defines no cases (a check that cannot fail)")
        n_passed = sum(o.passed for o in outcomes)
        whole = self._whole_answer_problem(ex, answer, outcomes)
        passed = n_passed == len(outcomes) and whole is None
        failed = [o for o in outcomes if not o.passed]
        if passed:
            report = f"✅ {exercise_id}: all {len(outcomes)} cases passed"
        elif whole is not None:
            report = f"{exercise_id}: {whole} ({n_passed} of {len(outcomes)} cases passed)"
        else:
            report = f"{exercise_id}: {len(failed)} of {len(outcomes)} cases failed.\n{failed[0].text()}"
            others = [f'"{o.name}"' for o in failed[1:]]
            if others:
                more = f" and {len(others) - 3} more" if len(others) > 3 else ""
                report += "\nAlso failed: " + ", ".join(others[:3]) + more + "."
        result = CheckResult(exercise_id, passed, n_passed / len(outcomes), n_passed, len(outcomes),
                             [o.text() for o in failed] if whole is None else [whole], list(outcomes), report)
        self.results[exercise_id] = result
        self._judged[exercise_id] = answer
        return result

    def learner_or_reference(self, exercise_id: str, answer: Any, reference: Callable) -> Callable:
        """The learner's ``answer`` if its latest check passed, else the course's ``reference``.

        Cells after an exercise call this so that the chapter goes on whatever the learner did:
        an unsolved stub, a failed check or a check cell never run all fall back to the reference,
        with one line saying so. The answer must be the one that was checked (redefining the
        function after its check passed counts as unchecked).
        """
        ex = self._get(exercise_id)
        result = self.results.get(exercise_id)
        name = getattr(reference, "__name__", ex.answer_name)
        if result is not None and result.passed and self._judged.get(exercise_id) is answer:
            print(f"Using your `{ex.answer_name}` (its check passed).")
            return answer
        why = ("its check has not been run" if result is None
               else "it changed after its check passed" if result.passed
               else "its check has not passed yet")
        print(f"Using the course's `{name}` here: your `{ex.answer_name}`: {why} (exercise {exercise_id}).")
        return reference

    def progress(self, chapter: Optional[str] = None) -> "Progress":
        """The exercises of ``chapter`` (the ids' part before the dot) and how each stands here.

        Without ``chapter``: the chapters of the exercises checked so far in this kernel, or every
        exercise when none has been checked yet.
        """
        if chapter is None:
            tried = sorted({i.split(".", 1)[0] for i in self.results if i in self._exercises})
            ids = [i for c in tried for i in self.list_exercises(c)] or self.list_exercises()
        else:
            ids = self.list_exercises(chapter)
            if not ids:
                chapters = sorted({i.split(".", 1)[0] for i in self._exercises})
                raise UnknownExercise(f"no exercises in chapter {chapter!r}. Chapters: {', '.join(chapters)}")
        rows = []
        for i in ids:
            result = self.results.get(i)
            if result is None:
                rows.append((i, "not tried", "no check run in this kernel"))
            elif result.passed:
                rows.append((i, "passed", f"all {result.n_cases} cases"))
            else:
                rows.append((i, "failed", f"{result.n_passed} of {result.n_cases} cases passed"))
        return Progress(rows)

    @staticmethod
    def _whole_answer_problem(ex: _Exercise, answer: Any, outcomes: list[CaseOutcome]) -> Optional[str]:
        """One message for a problem with the answer itself (None, not callable, the stub...)."""
        usage = f'`check("{ex.id}", {ex.answer_name})`'
        if answer is None:
            return (f"you passed None, not your function. Pass the function itself: {usage}. "
                    "(If None came from calling a function, that function is missing a `return`.)")
        if ex.callable_answer and not callable(answer):
            return (f"you passed {describe_value(answer)}, not a function. "
                    f"Pass the function itself, without calling it: {usage}.")
        failed = [o for o in outcomes if not o.passed]
        kinds = {o.kind for o in failed}
        if failed and len(failed) == len(outcomes) and len(kinds) == 1 and kinds <= set(_WHOLE_ANSWER):
            return failed[0].message
        return None

    def check(self, exercise_id: str, answer: Any) -> CheckResult:
        """Print one pass line and return the result, or raise ``ExerciseFailed``."""
        __tracebackhide__ = True  # noqa: F841 -- IPython and pytest hide this frame
        try:
            result = self.run_check(exercise_id, answer)
        except UnknownExercise as err:
            raise UnknownExercise(str(err)) from None
        if not result.passed:
            raise ExerciseFailed(result.report, result) from None
        print(result.report)
        result._announced = True
        return result


@dataclass
class Progress:
    """A table of exercises: ``(id, status, detail)`` rows, status "passed", "failed" or "not tried".

    Jupyter shows it as an HTML table (``_repr_html_``); ``print`` and plain Python as text.
    """

    rows: list
    _MARKS = {"passed": "✅", "failed": "❌", "not tried": "·"}

    def counts(self) -> dict:
        """How many exercises are passed / failed / not tried."""
        return {s: sum(r[1] == s for r in self.rows) for s in ("passed", "failed", "not tried")}

    def _summary(self) -> str:
        c = self.counts()
        return f"{c['passed']} of {len(self.rows)} exercises passed, {c['failed']} failed, {c['not tried']} not tried"

    def __str__(self) -> str:
        width = max([len("exercise")] + [len(r[0]) for r in self.rows])
        lines = [f"{'exercise':<{width}}  {'status':<9}  detail"]
        lines += [f"{i:<{width}}  {s:<9}  {d}" for i, s, d in self.rows]
        return "\n".join(lines + [self._summary()])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><td><code>{html.escape(i)}</code></td><td>{self._MARKS[s]} {s}</td><td>{html.escape(d)}</td></tr>"
            for i, s, d in self.rows)
        return ("<table><thead><tr><th>exercise</th><th>status</th><th>detail</th></tr></thead>"
                f"<tbody>{body}</tbody></table><p>{html.escape(self._summary())}</p>")


REGISTRY = Registry()
exercise = REGISTRY.exercise


def check(exercise_id: str, answer: Any) -> CheckResult:
    """Check ``answer`` against exercise ``exercise_id``: print a pass line or raise ``ExerciseFailed``."""
    __tracebackhide__ = True  # noqa: F841
    try:
        return REGISTRY.check(exercise_id, answer)
    except (ExerciseFailed, UnknownExercise) as err:
        raise err.with_traceback(None) from None


def run_check(exercise_id: str, answer: Any) -> CheckResult:
    """Like ``check`` but returns a ``CheckResult`` (passed, score, messages) instead of raising."""
    return REGISTRY.run_check(exercise_id, answer)


def learner_or_reference(exercise_id: str, answer: Any, reference: Callable) -> Callable:
    """The learner's function if its check passed in this kernel, else ``reference`` (says which)."""
    return REGISTRY.learner_or_reference(exercise_id, answer, reference)


def progress(chapter: Optional[str] = None) -> Progress:
    """A table of a chapter's exercises: passed / failed / not tried in this kernel."""
    return REGISTRY.progress(chapter)


def list_exercises(chapter: Optional[str] = None) -> list[str]:
    """Sorted exercise ids ``"<chapter>.<name>"``, optionally of one chapter only."""
    return REGISTRY.list_exercises(chapter)


def describe(exercise_id: str) -> str:
    """One line saying what an exercise asks for."""
    return REGISTRY.describe(exercise_id)
