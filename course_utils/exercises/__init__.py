"""Self-grading exercise checks: ``check(id, answer)``, ``run_check``, ``list_exercises``.

Each chapter has one module of checks here (``attention.py``, ...); every module of this package
is imported below, so adding a chapter's checks needs no edit to this file. How to write a check:
see the docstring of ``course_utils.exercises.core``.
"""
import importlib as _importlib
import pkgutil as _pkgutil

from .core import (
    REGISTRY,
    CheckResult,
    ExerciseFailed,
    Registry,
    UnknownExercise,
    check,
    describe,
    exercise,
    learner_or_reference,
    list_exercises,
    progress,
    run_check,
)

__all__ = [
    "CheckResult", "ExerciseFailed", "REGISTRY", "Registry", "UnknownExercise", "check",
    "describe", "exercise", "learner_or_reference", "list_exercises", "progress",
    "run_check",
]

for _module in sorted(m.name for m in _pkgutil.iter_modules(__path__)):
    if _module != "core" and not _module.startswith("_"):
        _importlib.import_module(f"{__name__}.{_module}")
