"""A small on-disk cache for trained models that are *tools* of a chapter, not its subject.

The judge that rates generated digits (Chapters 4, 7, 7b) is the same network trained on the
same split each time: it is trained once, saved under a key made from everything that determines
it (its config, the training settings and a fingerprint of the data), and loaded elsewhere. A
changed recipe gives a new key, so a stale model is never loaded.

Where: ``$COURSE_CACHE`` (default ``~/.cache/course_utils``). The test run points it at a fresh
folder, so every test run trains each cached model once, from scratch.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

CACHE_ENV = "COURSE_CACHE"


def cache_dir() -> Path:
    """``$COURSE_CACHE``, else ``~/.cache/course_utils``."""
    return Path(os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "course_utils"))


def fingerprint(tensor: Tensor) -> str:
    """A short SHA-256 of a tensor's shape, dtype and values (the data part of a cache key)."""
    t = tensor.detach().cpu().contiguous()
    h = hashlib.sha256(f"{tuple(t.shape)}|{t.dtype}".encode())
    h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()[:16]


def recipe_key(recipe: dict) -> str:
    """A short hash of a JSON-able recipe (sorted keys), used as the file name."""
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_or_train(name: str, recipe: dict, build: Callable[[], nn.Module],
                  train: Callable[[nn.Module], None]) -> tuple[nn.Module, str]:
    """The model ``build()`` with weights from the cache when ``recipe`` was trained before, else
    ``train(model)`` here and saved. Returns ``(model in eval mode, how)``, ``how`` saying which.

    A run with its loops capped (``$COURSE_MAX_STEPS``: a rehearsal, a quick grading run) trains
    a different, barely trained model: the cap is part of its key, so it never reaches a normal run."""
    from .train import max_steps

    if max_steps() is not None:
        recipe = {**recipe, "course_max_steps": max_steps()}
    path = cache_dir() / f"{name}-{recipe_key(recipe)}.pt"
    model = build()
    if path.exists():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(saved["state_dict"])
            return model.eval(), f"loaded from the cache ({path.name})"
        except (RuntimeError, KeyError, OSError, ValueError, pickle.UnpicklingError, EOFError) as err:
            how = f"trained here (the cached file was unusable: {type(err).__name__})"
            model = build()
    else:
        how = "trained here (not in the cache yet)"
    train(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "recipe": json.loads(json.dumps(recipe, default=str))}, tmp)
    os.replace(tmp, path)  # atomic: a parallel run never reads half a file
    return model.eval(), how
