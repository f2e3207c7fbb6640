"""Every model and every package trainer of course_utils.models is proven on fake CUDA.

The cases live next to their chapter, in ``tests/test_fake_cuda_<area>.py``: each such module has
``MODEL_CASES`` (``"module.ClassName"`` -> a function of ``monkeypatch`` that builds the model and a
batch, moves both to fake CUDA and runs the forward pass and the loss) and ``TRAINING_CASES``
(``"module.function"`` -> a function that runs a package trainer or inference path with
``device="cuda"``). This file runs every case, and enumerates the package, so a new model or
trainer cannot be forgotten.
"""
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
import torch.nn as nn

import course_utils.models

TESTS = Path(__file__).parent


def case_modules():
    return [importlib.import_module(p.stem) for p in sorted(TESTS.glob("test_fake_cuda_*.py"))]


def collected(attr: str) -> dict:
    cases = {}
    for module in case_modules():
        for name in getattr(module, attr, {}):
            assert name not in cases, f"{name} has fake-CUDA cases in two test modules"
            cases[name] = module.__name__
    return cases


def all_cases(attr: str) -> dict:
    return {name: getattr(module, attr)[name] for module in case_modules() for name in getattr(module, attr, {})}


@pytest.mark.parametrize("name", sorted(all_cases("MODEL_CASES")))
def test_model_on_fake_cuda(name, monkeypatch):
    all_cases("MODEL_CASES")[name](monkeypatch)


@pytest.mark.parametrize("name", sorted(all_cases("TRAINING_CASES")))
def test_training_path_on_fake_cuda(name, monkeypatch):
    all_cases("TRAINING_CASES")[name](monkeypatch)


def package_modules():
    for info in pkgutil.iter_modules(course_utils.models.__path__):
        yield importlib.import_module(f"course_utils.models.{info.name}")


def test_every_model_class_has_a_fake_cuda_case():
    classes = {f"{m.__name__.rsplit('.', 1)[1]}.{name}"
               for m in package_modules()
               for name, obj in vars(m).items()
               if inspect.isclass(obj) and issubclass(obj, nn.Module) and obj.__module__ == m.__name__}
    assert len(classes) > 20  # the enumeration itself works
    missing = sorted(classes - set(collected("MODEL_CASES")))
    assert not missing, f"nn.Module classes without a fake-CUDA case: {missing}"


def test_every_package_trainer_has_a_fake_cuda_case():
    trainers = {f"{m.__name__.rsplit('.', 1)[1]}.{name}"
                for m in package_modules()
                for name, obj in vars(m).items()
                if inspect.isfunction(obj) and obj.__module__ == m.__name__
                and name.split("_")[0] in ("train", "fit") and not name.startswith("_")}
    assert trainers  # the enumeration itself works
    missing = sorted(trainers - set(collected("TRAINING_CASES")))
    assert not missing, f"package trainers without a fake-CUDA case: {missing}"
