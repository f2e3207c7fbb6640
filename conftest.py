"""Test-run set-up shared by the notebook tests (book/, under nbval) and tests/.

1. Offline: the network guard (tests/netguard) is installed here and, through PYTHONPATH, in
   every Python subprocess -- Jupyter kernels and the book build included; HF_HUB_OFFLINE=1.
2. Execute each notebook once: nbval executes every book notebook; when all of a notebook's
   cells pass, the plugin below stores the executed notebook in Jupyter Book's jupyter-cache,
   so the book build later in the same run (tests/test_site.py) takes it from the cache
   instead of executing it again. The cache is emptied at the start of every run, so nothing
   from an earlier run (or an older version of the code) can reach the site.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
NETGUARD = ROOT / "tests" / "netguard"
JUPYTER_CACHE = ROOT / "_build" / ".jupyter_cache"
# course_utils.cache: models trained once per run. The rehearsal and the GPU check run several
# pytest processes that share one cache of their own (COURSE_TEST_MODEL_CACHE): it is not emptied.
SHARED_MODEL_CACHE = os.environ.get("COURSE_TEST_MODEL_CACHE")
MODEL_CACHE = Path(SHARED_MODEL_CACHE or ROOT / "_build" / ".model_cache")
# The rehearsal and the GPU check execute notebooks in the full profile: never into the site's cache.
STORE_FOR_BOOK = os.environ.get("COURSE_NO_BOOK_CACHE") != "1"

os.environ["COURSE_NETGUARD"] = "1"
os.environ["COURSE_PROGRESS"] = "0"  # progress bars off in executed notebooks
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see course_utils/__init__.py
os.environ["COURSE_CACHE"] = str(MODEL_CACHE)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(NETGUARD), os.environ.get("PYTHONPATH")]))
sys.path.insert(0, str(NETGUARD))
import course_netguard  # noqa: E402

course_netguard.install()


def pytest_sessionstart(session):
    if not STORE_FOR_BOOK:
        return
    shutil.rmtree(JUPYTER_CACHE, ignore_errors=True)
    if not SHARED_MODEL_CACHE:
        shutil.rmtree(MODEL_CACHE, ignore_errors=True)  # every run trains its cached models afresh


class _NotebookRun:
    def __init__(self):
        self.started = time.perf_counter()
        self.outputs: dict[int, list] = {}
        self.ok = True


_runs: dict[str, _NotebookRun] = {}


def _is_nbval_cell(item) -> bool:
    return type(item).__name__ == "IPyNbCell" and hasattr(item, "cell_num")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not _is_nbval_cell(item) or report.when != "call":
        return
    run = _runs.setdefault(str(item.parent.path), _NotebookRun())
    run.outputs[item.cell_num] = list(item.test_outputs or [])
    run.ok = run.ok and report.passed


def pytest_runtest_teardown(item, nextitem):
    if not _is_nbval_cell(item):
        return
    if nextitem is not None and nextitem.parent is item.parent:
        return
    run = _runs.pop(str(item.parent.path), None)
    if run is not None and run.ok and STORE_FOR_BOOK:
        cache_executed_notebook(Path(item.parent.path), run)


def cache_executed_notebook(path: Path, run: _NotebookRun) -> None:
    """Put the notebook, with the outputs nbval collected, into the book build's cache."""
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    nb = nbformat.read(str(path), as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    if len(code_cells) != len(run.outputs):  # a cell was skipped or deselected: execute again
        return
    for number, cell in enumerate(code_cells):
        cell.execution_count = number + 1
        cell.outputs = run.outputs[number]
        for output in cell.outputs:
            if output.get("output_type") == "execute_result":
                output["execution_count"] = number + 1
    JUPYTER_CACHE.parent.mkdir(parents=True, exist_ok=True)
    cache = get_cache(str(JUPYTER_CACHE))
    cache.cache_notebook_bundle(
        CacheBundleIn(nb, str(path), data={"execution_seconds": time.perf_counter() - run.started}),
        check_validity=False,
        overwrite=True,
    )


def pytest_terminal_summary(terminalreporter):
    """The mutation testing table of the exercise checks (tests/test_mutation.py), when it ran."""
    module = sys.modules.get("test_mutation") or sys.modules.get("tests.test_mutation")
    results = getattr(module, "RESULTS", None)
    if results:
        from tests.mutation import table

        terminalreporter.section("mutation testing of the exercise checks")
        terminalreporter.write_line(table([results[k] for k in sorted(results)]))
