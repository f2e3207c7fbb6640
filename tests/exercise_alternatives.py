"""The alternative correct answers of tests/alternatives/<chapter>.py, gathered in one dict.

Each chapter's file holds ``ALTERNATIVES = {exercise_id: [source, source, ...]}``: complete
sources of the exercise cell's function, written differently from the book's reference (loops
vs vectorised, numpy inside, float64, the other valid reading of an ambiguous statement).
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

HERE = Path(__file__).resolve().parent / "alternatives"


def _load() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(HERE.glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"alternatives_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for exercise_id, sources in getattr(module, "ALTERNATIVES", {}).items():
            if exercise_id in found:
                raise ValueError(f"{exercise_id}: alternatives given twice ({path.name})")
            found[exercise_id] = list(sources)
    return found


ALTERNATIVES = _load()


@functools.lru_cache(maxsize=None)
def _exercises():
    from course_utils.authoring import all_exercises

    return all_exercises()


def load_alternative(exercise_id: str, source: str):
    """Execute one alternative's source alone and return the function it defines."""
    name = _exercises()[exercise_id].name  # the function the check cell passes (e.g. `my_q_sample`)
    namespace: dict = {"__name__": f"alternative_{exercise_id.replace('.', '_')}"}
    exec(compile(source, f"<alternative of {exercise_id}>", "exec"), namespace)
    if name not in namespace:
        raise AssertionError(f"an alternative of {exercise_id} defines no `{name}`")
    return namespace[name]
