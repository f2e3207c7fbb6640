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
import warnings
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

# tqdm.auto (imported by diffusers, huggingface_hub and the course's progress bars) warns once on
# stderr where ipywidgets is missing, then falls back to a text bar that works: every chapter
# imports this module first, so the warning never reaches a page.
warnings.filterwarnings("ignore", message=r"IProgress not found")

PROFILES = ("fast", "full")
PROFILE_ENV = "COURSE_PROFILE"
DEVICE_ENV = "COURSE_DEVICE"
PROGRESS_ENV = "COURSE_PROGRESS"  # "0" turns progress bars off (the site build and the tests)
REHEARSAL_ENV = "COURSE_REHEARSAL"  # "1": learning targets are recorded, not raised (few-step runs)
RUN_LOG_ENV = "COURSE_RUN_LOG"  # a file: targets, loops and the wall-time report are appended as JSON lines


class LearningTargetMissed(AssertionError):
    """A chapter's model did not learn what the chapter promises (value vs target in the message)."""


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


def seed_everything(seed: int = 0, deterministic: bool = True, device: Optional[torch.device] = None) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a seeded CPU ``torch.Generator``.

    ``deterministic`` asks torch for deterministic kernels -- on the CPU only, where they are
    cheap and complete. On CUDA they are not: deterministic mode sends torchvision's ``roi_align``
    through ``torch.compile`` (Triton, a C compiler and Python headers needed, recompiling as the
    number of regions changes) and still leaves attention's backward nondeterministic. So a GPU
    run is seeded (the same data, the same initial weights) but its last digits may differ from
    run to run; the chapters' targets are set with margins for that.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    on_cpu = device is None or torch.device(device).type == "cpu"
    if deterministic and on_cpu:
        torch.use_deterministic_algorithms(True, warn_only=True)
        # Deterministic mode also NaN-fills every new tensor from torch.empty (a debugging aid: a
        # kernel that reads memory it never wrote shows NaNs). Correct kernels never do, and the fill
        # cost about a fifth of a small U-Net's training step on the CPU; results are identical.
        torch.utils.deterministic.fill_uninitialized_memory = False
    else:
        torch.use_deterministic_algorithms(False)
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
    disable = os.environ.get(PROGRESS_ENV, "1").strip() == "0"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tqdm warns when ipywidgets is missing; it still works
        from tqdm.auto import tqdm
    return tqdm(iterable, desc=desc, disable=disable, **kwargs)


def peak_rss_bytes() -> Optional[int]:
    """The peak resident memory of this process so far (Linux and macOS), else None."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if platform.system() == "Darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


def rehearsal() -> bool:
    """True in a rehearsal run (``$COURSE_REHEARSAL=1``): loops are capped, targets only recorded."""
    return os.environ.get(REHEARSAL_ENV, "").strip() == "1"


def log_record(kind: str, **record) -> None:
    """Append ``{"kind": kind, ...}`` to ``$COURSE_RUN_LOG`` when it is set (the rehearsal and the
    GPU check read these records: learning targets, training/sampling loops, the wall time)."""
    path = os.environ.get(RUN_LOG_ENV, "").strip()
    if path:
        record = {"kind": kind, **record}
        import json

        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


@dataclass
class Runtime:
    """What a chapter runs with; ``pick(fast=..., full=...)`` chooses a per-profile setting."""

    profile: str
    device: torch.device
    seed: int
    generator: torch.Generator = field(repr=False)
    started: float = field(default_factory=time.perf_counter, repr=False)
    targets: list = field(default_factory=list, repr=False)
    wall: Optional[float] = field(default=None, repr=False)

    @property
    def fast(self) -> bool:
        return self.profile == "fast"

    def pick(self, *, fast, full):
        """Return ``fast`` in the fast profile and ``full`` in the full one."""
        return fast if self.fast else full

    def target(self, name: str, value: float, *, at_least: Optional[float] = None,
               at_most: Optional[float] = None, fmt: str = ".3g") -> bool:
        """A learning target: print ``value`` against its bound and raise if it is missed.

        ``at_least`` / ``at_most`` give the bound (one of them, or both). In a normal run a missed
        target raises :class:`LearningTargetMissed`; in a rehearsal (``$COURSE_REHEARSAL=1``, where
        every loop runs a few steps only) it is recorded and printed, not raised. Every target is
        kept in ``rt.targets`` and appended to ``$COURSE_RUN_LOG`` when that is set.
        """
        if at_least is None and at_most is None:
            raise ValueError("rt.target needs a bound: at_least=..., at_most=..., or both.")
        value = float(value)
        ok = (at_least is None or value >= at_least) and (at_most is None or value <= at_most)
        bounds = " and ".join(f"{op} {b:{fmt}}" for op, b in (("≥", at_least), ("≤", at_most)) if b is not None)
        record = {"name": name, "value": value, "at_least": at_least, "at_most": at_most, "ok": ok,
                  "profile": self.profile}
        self.targets.append(record)
        log_record("target", **record)
        print(f"target {'met' if ok else 'MISSED'}: {name} = {value:{fmt}} (target {bounds})")
        if not ok and not rehearsal():
            raise LearningTargetMissed(f"{name} = {value:{fmt}} misses its target ({bounds}) "
                                       f"in the {self.profile} profile.")
        return ok

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def banner(self) -> str:
        versions = ", ".join(f"{k} {v}" for k, v in _versions().items())
        threads = torch.get_num_threads()
        return (
            f"profile: {self.profile} | device: {self.device} | seed: {self.seed} | "
            f"torch threads: {threads}\n{versions}"
        )

    def report(self, budget_s: Optional[float] = None) -> None:
        """Print this chapter's wall time (the last cell of every chapter; ``rt.wall`` keeps it).

        Returns nothing, so that the last cell shows only the line, not a bare number."""
        wall = self.elapsed()
        line = f"wall time: {wall:.1f} s (profile {self.profile}, device {self.device})"
        if budget_s is not None:
            line += f"; budget {budget_s:.0f} s"
        print(line)
        self.wall = wall
        log_record("report", wall_s=wall, profile=self.profile, device=str(self.device),
                   peak_rss_bytes=peak_rss_bytes(),
                   peak_cuda_bytes=torch.cuda.max_memory_allocated() if self.device.type == "cuda" else None)


BANNER_CLASS = "course-banner"


def show_banner(text: str) -> None:
    """Print the banner; in a Jupyter kernel also as one styled HTML line (what the site shows).

    The plain text stays in the output (``text/plain``) for terminals and ``nbconvert --to script``.
    """
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython ships with every Jupyter
        get_ipython = lambda: None  # noqa: E731
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        print(text)
        return
    import html

    first, _, rest = text.partition("\n")
    parts = " · ".join(f'<span class="{BANNER_CLASS}-item">{html.escape(p.strip())}</span>'
                       for p in first.split("|"))
    versions = f' · <span class="{BANNER_CLASS}-versions">{html.escape(rest)}</span>' if rest else ""
    display({"text/plain": text, "text/html": f'<div class="{BANNER_CLASS}">{parts}{versions}</div>'}, raw=True)


def setup(seed: int = 0, profile: Optional[str] = None, device: Optional[str] = None) -> Runtime:
    """The first cell of every chapter: resolve profile and device, seed, print the banner."""
    chosen_profile, chosen_device = get_profile(profile), get_device(device)
    rt = Runtime(profile=chosen_profile, device=chosen_device, seed=seed,
                 generator=seed_everything(seed, device=chosen_device))
    from course_utils.plot import use_course_style

    use_course_style()
    show_banner(rt.banner())
    if rt.profile == "full" and rt.device.type == "cpu" and not rehearsal():
        warnings.warn(f"{PROFILE_ENV}=full on the CPU: the full profile is sized for a GPU, and a chapter "
                      f"may take an hour here. Use {PROFILE_ENV}=fast on a CPU.", RuntimeWarning, stacklevel=2)
    return rt
