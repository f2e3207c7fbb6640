"""Runtime set-up shared by every chapter: profile, device, seeding and timing.

Every chapter starts with ``rt = setup()`` (the banner: profile, device, versions) and ends
with ``rt.report()`` (its own wall time), so that the rendered page shows both.

The *profile* is one switch, ``COURSE_PROFILE=fast|full``:

* ``fast`` -- CPU, each chapter <= 2 min on 2 cores, small images and models; it still learns.
* ``full`` -- GPU, bigger images/models/epochs; same code path.

The default is ``full`` when CUDA is available, else ``fast``.
"""
from __future__ import annotations

import os
import platform
import random
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

PROFILES = ("fast", "full")
PROFILE_ENV = "COURSE_PROFILE"
DEVICE_ENV = "COURSE_DEVICE"
PROGRESS_ENV = "COURSE_PROGRESS"  # "0" turns progress bars off (the site build and the tests)


class ProfileError(ValueError):
    """Raised for an unknown ``COURSE_PROFILE`` value."""


def get_profile(value: Optional[str] = None) -> str:
    """Return the active profile: ``value``, else ``$COURSE_PROFILE``, else by hardware.

    >>> get_profile("FAST")
    'fast'
    """
    raw = value if value is not None else os.environ.get(PROFILE_ENV, "")
    name = raw.strip().lower()
    if not name:
        return "full" if torch.cuda.is_available() else "fast"
    if name not in PROFILES:
        raise ProfileError(
            f"{PROFILE_ENV}={raw!r} is not a known profile. Use one of: "
            f"{', '.join(PROFILES)} (for example `export {PROFILE_ENV}=fast`)."
        )
    return name


def get_device(value: Optional[str] = None) -> torch.device:
    """Pick the compute device: ``value`` or ``$COURSE_DEVICE`` if given, else cuda > mps > cpu."""
    raw = value if value is not None else os.environ.get(DEVICE_ENV, "")
    if raw.strip():
        try:
            device = torch.device(raw.strip())
        except RuntimeError as err:
            raise ValueError(f"{DEVICE_ENV}={raw!r} is not a device torch knows ({err}).") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"{DEVICE_ENV}={raw!r} asks for CUDA, but torch sees no CUDA device.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a seeded CPU ``torch.Generator``.

    With ``deterministic=True`` torch is asked for deterministic kernels where it has them
    (``warn_only`` so that an op without one warns instead of failing).
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return torch.Generator().manual_seed(seed)


def _versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("torch", "torchvision", "numpy", "scikit-learn", "diffusers", "open-clip-torch"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def progress(iterable, desc: str = "", **kwargs):
    """``tqdm.auto`` progress bar over ``iterable`` -- off when ``$COURSE_PROGRESS`` is ``0``.

    Learners see a live bar in Jupyter and Colab; the site build and the tests switch it off,
    so the rendered page shows results rather than hundreds of progress lines.
    """
    import warnings

    disable = os.environ.get(PROGRESS_ENV, "1").strip() == "0"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tqdm warns when ipywidgets is missing; it still works
        from tqdm.auto import tqdm
    return tqdm(iterable, desc=desc, disable=disable, **kwargs)


@dataclass
class Runtime:
    """What a chapter runs with; ``pick(fast=..., full=...)`` chooses a per-profile setting."""

    profile: str
    device: torch.device
    seed: int
    generator: torch.Generator = field(repr=False)
    started: float = field(default_factory=time.perf_counter, repr=False)

    @property
    def fast(self) -> bool:
        return self.profile == "fast"

    def pick(self, *, fast, full):
        """Return ``fast`` in the fast profile and ``full`` in the full one."""
        return fast if self.fast else full

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def banner(self) -> str:
        versions = ", ".join(f"{k} {v}" for k, v in _versions().items())
        threads = torch.get_num_threads()
        return (
            f"profile: {self.profile} | device: {self.device} | seed: {self.seed} | "
            f"torch threads: {threads}\n{versions}"
        )

    def report(self, budget_s: Optional[float] = None) -> float:
        """Print this chapter's wall time (the last cell of every chapter) and return it."""
        wall = self.elapsed()
        line = f"wall time: {wall:.1f} s (profile {self.profile}, device {self.device})"
        if budget_s is not None:
            line += f"; budget {budget_s:.0f} s"
        print(line)
        return wall


def setup(seed: int = 0, profile: Optional[str] = None, device: Optional[str] = None) -> Runtime:
    """The first cell of every chapter: resolve profile and device, seed, print the banner."""
    rt = Runtime(
        profile=get_profile(profile),
        device=get_device(device),
        seed=seed,
        generator=seed_everything(seed),
    )
    print(rt.banner())
    return rt
