"""The course's network guard (course_utils/netguard.py), under the name the test run imports.

Loaded from its file, not through the package: this runs in every Python process of the test run
(``sitecustomize``), which need not have the course package installed.
"""
import importlib.util
from pathlib import Path

_SOURCE = Path(__file__).resolve().parents[2] / "course_utils" / "netguard.py"
_spec = importlib.util.spec_from_file_location("_course_netguard_impl", _SOURCE)
_guard = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_guard)

ENV_FLAG, NetworkBlocked, install = _guard.ENV_FLAG, _guard.NetworkBlocked, _guard.install
