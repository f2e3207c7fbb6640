"""Loaded by every Python process started with this folder on PYTHONPATH (see conftest.py)."""
import os

if os.environ.get("COURSE_NETGUARD") == "1":
    import course_netguard

    course_netguard.install()
