"""Mutation testing of the exercise checks: does each check fail the mistakes learners make?

A *mutant* is the reference answer of an exercise (the solution region of its cell in the book
notebook) with one small change that mirrors a learner's mistake: a flipped comparison, an
off-by-one constant, ``int`` for ``round``, swapped arguments, a dropped term, a detached
gradient, a changed ``dim``, a removed clamp, ``mean`` for ``sum``, an unstable ``log(sigmoid)``,
an in-place twin of an out-of-place operation (``x = x + y`` -> ``x += y``, ``.add`` -> ``.add_``). A check *kills* a mutant when it does not pass it
(a mutant that raises, returns the wrong thing, or runs past its time limit is killed).
Also: a flipped flag (``descending=True`` -> ``False``), ``&`` for ``|``, a dropped ``~``/``not``,
``break`` for ``continue``, ``max`` for ``min``. A mutant
that survives is either a gap in the check -- the check needs a case -- or provably *equivalent*
to the reference (it computes the same function on every valid input); equivalent mutants are
listed with the reason in ``tests/mutation_equivalents.py`` and left out of the kill rate::

    kill rate = killed / (mutants - equivalent)

Run it from the repository root::

    python -m tests.mutation                      # every exercise: the table
    python -m tests.mutation vit.patchify -v      # one exercise: also each surviving mutant

A mutant is named by what it changed, independent of line numbers:
``compare: `iou[i] > iou_threshold` -> `iou[i] >= iou_threshold` in `removed |= ...```; that
name is the key used in ``mutation_equivalents.py``.
"""
from __future__ import annotations

import argparse
import ast
import copy
import signal
import sys
import time
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Callable, Iterator, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from course_utils.authoring import BEGIN, END, Exercise, all_exercises  # noqa: E402

MUTANT_SECONDS = 20  # a mutant that runs its whole check longer than this is killed (an endless loop)

# ---------------------------------------------------------------------------------------------
# The mutation operators. Each yields (kind, replacement node) for a node of the solution region.
# ---------------------------------------------------------------------------------------------
_COMPARE_FLIPS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
                  ast.Eq: ast.NotEq, ast.NotEq: ast.Eq}
_ROUNDING = {"int": ("round", "math.ceil"), "round": ("int", "math.ceil"),
             "math.ceil": ("int", "round"), "math.floor": ("round", "math.ceil")}
_REDUCTION_SWAPS = {"mean": "sum", "sum": "mean", "amax": "amin", "amin": "amax",
                    "argmax": "argmin", "argmin": "argmax", "max": "min", "min": "max"}
_CLAMPS = {"clamp", "clamp_min", "clamp_max", "clip"}
# an unstable or different-but-tempting form for a stable library call
_UNSTABLE = {
    "logsigmoid": "torch.log(torch.sigmoid({0}))",
    "softplus": "torch.log(1 + torch.exp({0}))",
    "log_softmax": "torch.log(torch.softmax({0}, dim=-1))",
    "logsumexp": "torch.log(torch.exp({0}).sum(dim=-1))",
    "binary_cross_entropy_with_logits": "torch.nn.functional.binary_cross_entropy(torch.sigmoid({0}), {1}{rest})",
}
_OUT_OF_PLACE = ("add", "sub", "mul", "div", "masked_fill", "clamp", "fill", "zero", "copy",
                 "scatter", "index_fill", "pow", "neg", "exp", "log", "abs", "sqrt")
_AUG = {ast.Add, ast.Sub, ast.Mult, ast.Div, ast.BitOr, ast.BitAnd}


def _call_name(func: ast.expr) -> str:
    try:
        return ast.unparse(func)
    except Exception:  # noqa: BLE001
        return ""


def _expr(text: str) -> ast.expr:
    return ast.parse(text, mode="eval").body


def _int_constant(node: ast.AST) -> Optional[int]:
    """The integer a node writes (``3`` or ``-1``), else None (booleans are not integers here)."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant) and type(node.operand.value) is int):
        return -node.operand.value
    return None


def _mutations(node: ast.AST, parent: Optional[ast.AST], differentiable: bool) -> Iterator[tuple[str, ast.AST]]:
    """Every single-change mutant of ``node`` (not of its children).

    ``differentiable``: the exercise's result must carry gradient (a loss, a layer's output), so a
    term computed under ``no_grad`` -- the "detached" mutants -- is a mistake there.
    """
    value = _int_constant(node)
    if value is not None and not (isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.USub)):
        for delta in (+1, -1):
            yield "constant ±1", _expr(str(value + delta))
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in _COMPARE_FLIPS:
                new = copy.deepcopy(node)
                new.ops[i] = _COMPARE_FLIPS[type(op)]()
                yield "compare", new
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
        yield "dropped term", copy.deepcopy(node.left)
        yield "dropped term", copy.deepcopy(node.right)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        new = copy.deepcopy(node)
        new.op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
        yield "sign", new
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        yield "flipped flag", ast.Constant(not node.value)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr)):
        new = copy.deepcopy(node)
        new.op = ast.BitOr() if isinstance(node.op, ast.BitAnd) else ast.BitAnd()
        yield "and/or", new
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Invert, ast.Not)):
        yield "negation dropped", copy.deepcopy(node.operand)
    if isinstance(node, ast.Continue):
        yield "continue/break", ast.Break()
    if isinstance(node, ast.Break):
        yield "continue/break", ast.Continue()
    if isinstance(node, ast.BoolOp):
        new = copy.deepcopy(node)
        new.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        yield "and/or", new
    if isinstance(node, ast.Call):
        name = _call_name(node.func)
        short = name.rsplit(".", 1)[-1]
        if name in _ROUNDING and len(node.args) == 1:
            for other in _ROUNDING[name]:
                new = copy.deepcopy(node)
                new.func = _expr(other)
                yield "rounding", new
        if len(node.args) >= 2 and not any(isinstance(a, ast.Starred) for a in node.args[:2]):
            new = copy.deepcopy(node)
            new.args[0], new.args[1] = new.args[1], new.args[0]
            if ast.dump(new) != ast.dump(node):
                yield "swapped arguments", new
        if isinstance(node.func, ast.Attribute) and short in _REDUCTION_SWAPS:
            new = copy.deepcopy(node)
            new.func.attr = _REDUCTION_SWAPS[short]
            yield "reduction", new
        if isinstance(node.func, ast.Name) and name in ("max", "min", "sum"):
            if name != "sum":
                new = copy.deepcopy(node)
                new.func = ast.Name(_REDUCTION_SWAPS[name], ast.Load())
                yield "reduction", new
        if short in _CLAMPS:
            if isinstance(node.func, ast.Attribute) and not name.startswith(("torch.", "np.", "numpy.")):
                yield "clamp removed", copy.deepcopy(node.func.value)
            elif node.args:
                yield "clamp removed", copy.deepcopy(node.args[0])
        if short in _UNSTABLE and node.args:
            args = [ast.unparse(a) for a in node.args]
            rest = "".join(f", {ast.unparse(k)}" for k in node.keywords if k.arg == "reduction")
            if short == "binary_cross_entropy_with_logits" and len(args) < 2:
                pass
            else:
                yield "unstable form", _expr(_UNSTABLE[short].format(*args, rest=rest))
        if isinstance(node.func, ast.Attribute) and short in _OUT_OF_PLACE \
                and not name.startswith(("torch.", "F.", "np.", "math.", "numpy.")):
            new = copy.deepcopy(node)
            new.func.attr = short + "_"
            yield "in-place twin", new
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        target = node.targets[0].id
        if differentiable:
            yield "detached", ast.Assign(targets=[ast.Name(target, ast.Store())],
                                         value=ast.Call(ast.Name("_mutation_detach", ast.Load()), [node.value], []))
        v = node.value
        if isinstance(v, ast.BinOp) and type(v.op) in _AUG and isinstance(v.left, ast.Name) and v.left.id == target:
            yield "in-place twin", ast.AugAssign(ast.Name(target, ast.Store()), copy.deepcopy(v.op), copy.deepcopy(v.right))
    if differentiable and isinstance(node, ast.Return) and node.value is not None:
        yield "detached", ast.Return(ast.Call(ast.Name("_mutation_detach", ast.Load()), [node.value], []))


def _mutation_detach(value):
    """What a learner gets by computing a term under ``torch.no_grad()`` (tensors, or tuples of them)."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, tuple):
        return tuple(_mutation_detach(v) for v in value)
    if isinstance(value, list):
        return [_mutation_detach(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# Mutants of one exercise
# ---------------------------------------------------------------------------------------------
@dataclass
class Mutant:
    name: str  # stable: kind, original -> mutated, in which statement
    source: str  # the whole mutated cell


def _solution_lines(cell_source: str) -> tuple[str, set[int]]:
    """The reference source (markers dropped) and the line numbers (1-based) of its solution region."""
    lines, region, inside = [], set(), False
    for line in cell_source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            inside = True
            continue
        if stripped == END:
            inside = False
            continue
        lines.append(line)
        if inside:
            region.add(len(lines))
    return "\n".join(lines), region


def _short(node: ast.AST, limit: int = 70) -> str:
    text = ast.unparse(node).replace("\n", "; ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def mutants(exercise: Exercise) -> list[Mutant]:
    """Every single-change mutant of the exercise's solution region (in a stable order)."""
    from tests.mutation_equivalents import DIFFERENTIABLE

    differentiable = exercise.id in DIFFERENTIABLE
    source, region = _solution_lines(exercise.source)
    tree = ast.parse(source)
    parents: dict[int, ast.AST] = {}
    statements: dict[int, ast.stmt] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
    nodes = [n for n in ast.walk(tree) if getattr(n, "lineno", None) in region]

    def statement_of(node: ast.AST) -> ast.AST:
        while not isinstance(node, ast.stmt) and id(node) in parents:
            node = parents[id(node)]
        return node

    out, seen = [], {}
    for index, node in enumerate(nodes):
        for kind, replacement in _mutations(node, parents.get(id(node)), differentiable):
            new_tree = copy.deepcopy(tree)
            target = [n for n in ast.walk(new_tree) if getattr(n, "lineno", None) in region][index]
            if not _replace(new_tree, target, replacement):
                continue
            ast.fix_missing_locations(new_tree)
            try:
                mutated = ast.unparse(new_tree)
                compile(mutated, "<mutant>", "exec")
            except (SyntaxError, ValueError):
                continue
            where = _short(statement_of(node), 50)
            name = f"{kind}: `{_short(node)}` -> `{_short(replacement)}` in `{where}`"
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                name += f" (#{seen[name]})"
            out.append(Mutant(name, mutated))
    return out


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> bool:
    for parent in ast.walk(tree):
        for fieldname, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, fieldname, new)
                return True
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if item is old:
                        value[i] = new
                        return True
    return False


@contextmanager
def _time_limit(seconds: float):
    def _raise(signum, frame):
        raise TimeoutError(f"ran past {seconds} s")

    if not hasattr(signal, "setitimer"):
        yield
        return
    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def survives(exercise: Exercise, mutant: Mutant, run_check: Callable) -> bool:
    """True when the check passes the mutant (the mutant survives)."""
    namespace: dict = {"__name__": f"mutant_{exercise.id.replace('.', '_')}", "_mutation_detach": _mutation_detach}
    try:
        with redirect_stdout(StringIO()), _time_limit(MUTANT_SECONDS):
            exec(compile(mutant.source, f"<mutant of {exercise.id}>", "exec"), namespace)
            answer = namespace[exercise.name]
            return bool(run_check(exercise.id, answer).passed)
    except TimeoutError:
        return False
    except Exception:  # noqa: BLE001 -- a mutant that cannot even be defined does not survive
        return False


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------
@dataclass
class MutationResult:
    exercise_id: str
    n_mutants: int
    survivors: list[str] = field(default_factory=list)  # not listed as equivalent: gaps
    equivalent: list[str] = field(default_factory=list)  # survivors listed as equivalent
    stale: list[str] = field(default_factory=list)  # listed as equivalent, but killed or absent
    seconds: float = 0.0

    @property
    def n_considered(self) -> int:
        return self.n_mutants - len(self.equivalent)

    @property
    def kill_rate(self) -> float:
        return 1.0 if self.n_considered == 0 else 1 - len(self.survivors) / self.n_considered


def equivalents() -> dict[str, dict[str, str]]:
    from tests.mutation_equivalents import EQUIVALENT

    return EQUIVALENT


def run(exercise_id: str, exercises: Optional[dict[str, Exercise]] = None) -> MutationResult:
    """Generate the exercise's mutants and run its check on each."""
    from course_utils.exercises import run_check

    exercise = (exercises or all_exercises())[exercise_id]
    listed = equivalents().get(exercise_id, {})
    start = time.perf_counter()
    all_mutants = mutants(exercise)
    result = MutationResult(exercise_id, len(all_mutants))
    names = set()
    for mutant in all_mutants:
        names.add(mutant.name)
        alive = survives(exercise, mutant, run_check)
        if alive and mutant.name in listed:
            result.equivalent.append(mutant.name)
        elif alive:
            result.survivors.append(mutant.name)
        elif mutant.name in listed:
            result.stale.append(mutant.name + "  (listed as equivalent, but the check kills it)")
    result.stale += [f"{n}  (listed as equivalent, but no such mutant)" for n in listed if n not in names]
    result.seconds = time.perf_counter() - start
    return result


def table(results: list[MutationResult]) -> str:
    """The per-exercise table (and the overall rate)."""
    lines = [f"{'exercise':42} {'mutants':>7} {'equiv.':>6} {'killed':>6} {'survive':>7} {'rate':>7} {'s':>6}",
             "-" * 86]
    for r in results:
        killed = r.n_considered - len(r.survivors)
        lines.append(f"{r.exercise_id:42} {r.n_mutants:7d} {len(r.equivalent):6d} {killed:6d} "
                     f"{len(r.survivors):7d} {100 * r.kill_rate:6.1f}% {r.seconds:6.1f}")
    considered = sum(r.n_considered for r in results)
    survived = sum(len(r.survivors) for r in results)
    overall = 1.0 if considered == 0 else 1 - survived / considered
    lines += ["-" * 86, f"{'overall':42} {sum(r.n_mutants for r in results):7d} "
              f"{sum(len(r.equivalent) for r in results):6d} {considered - survived:6d} {survived:7d} "
              f"{100 * overall:6.1f}% {sum(r.seconds for r in results):6.1f}"]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__.split("\n\n")[0])
    parser.add_argument("ids", nargs="*", help="exercise ids (default: all)")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every surviving mutant")
    parser.add_argument("--show", metavar="NAME_PART", help="print the source of survivors whose name contains this")
    args = parser.parse_args(argv)
    exercises = all_exercises()
    unknown = [i for i in args.ids if i not in exercises]
    if unknown:
        parser.error(f"unknown exercise(s) {', '.join(unknown)}; known: {', '.join(sorted(exercises))}")
    results = []
    for exercise_id in args.ids or sorted(exercises):
        r = run(exercise_id, exercises)
        results.append(r)
        if args.verbose or args.ids:
            for name in r.survivors:
                print(f"SURVIVES  {exercise_id}  {name}")
            for name in r.stale:
                print(f"STALE     {exercise_id}  {name}")
        if args.show:
            for m in mutants(exercises[exercise_id]):
                if args.show in m.name and m.name in r.survivors:
                    print(f"--- {m.name}\n{m.source}\n")
    print(table(results))
    return 0 if all(r.kill_rate >= 0.95 and not r.stale for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
