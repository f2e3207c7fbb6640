"""Real data sets and pretrained weights are opt-in: nothing is downloaded unless the learner asks.

The course's default path runs offline (it trains on generated data). A loader of a real data set
reads its files from a local folder; only when ``COURSE_ONLINE=1`` is set may it download them.
Otherwise a missing file raises ``DatasetNotAvailable`` with a message that says how to get it.
"""
from __future__ import annotations

import os

ONLINE_ENV = "COURSE_ONLINE"


class DatasetNotAvailable(FileNotFoundError):
    """The files are not on disk and downloading is not enabled."""


def online() -> bool:
    """True when the learner opted in to downloads with ``COURSE_ONLINE=1`` (or true / yes)."""
    return os.environ.get(ONLINE_ENV, "").strip().lower() in ("1", "true", "yes")
