"""The instructor's batch grader: run submitted student notebooks in a sandbox, score their exercises.

Command line::

    python -m course_utils.grade SUBMISSION.ipynb ... --out DIR [--chapter NAME] [--jobs N]
                                 [--timeout S] [--cell-timeout S] [--memory SIZE] [--quick]

(a directory stands for the ``*.ipynb`` files in it). For each submission it writes

* ``DIR/grades.csv``: one row per submission -- ``submission``, one column per exercise id of the
  chapter (the fraction of that check's cases passed, 0-1), ``total`` (their mean) and ``note``
  (why a run stopped early, or what needs a human look; empty when all went well);
* ``DIR/feedback/<submission>.md``: the checker's message for every failed case;
* ``DIR/results/<submission>.json``: Gradescope's autograder results format
  (``{"score": ..., "tests": [{"name", "score", "max_score", "output"}]}``), one point an exercise;
* ``DIR/executed/<submission>.ipynb``: the notebook as it ran (its outputs, its errors).

How one submission is graded
----------------------------
1. **Run the notebook** in its own process (``python -m course_utils.grade _notebook``, an nbclient
   client) and its own kernel, never in the grader's process: a fresh temporary working directory
   (also ``$HOME``), a scrubbed environment (``PATH``, ``HOME``, the network guard on
   ``PYTHONPATH``, the ``COURSE_*`` settings of the fast profile on the CPU, thread counts, the Hugging Face
   offline switches -- nothing else of the grader's environment), an address-space limit
   (``RLIMIT_AS``, set in that process and inherited by its kernel), a wall-clock limit for the
   whole notebook (and optionally per cell), and -- where the OS allows (root, Linux) -- new
   network and PID namespaces: loopback only, and every process the notebook started dies with it.
   Elsewhere the Python network guard (``course_utils.netguard``) refuses non-loopback connections.
   Cells may raise: the run goes on, as a learner's "Run all" would not, so that one broken cell
   costs only what depends on it.
2. **Take the answers out**: one last cell of the grader's, run in that kernel, pickles each
   exercise's function by the name the chapter's ``check(...)`` cells use (``cloudpickle``: a
   function defined in the notebook travels *by value*, with the notebook globals it uses; modules
   such as ``torch`` or ``course_utils`` travel *by name*). Then the kernel and everything it
   started are stopped.
3. **Check them in a fresh process** (``python -m course_utils.grade _checks``, same sandbox): it
   imports the course's checker from disk, untouched by anything the notebook did, loads the
   functions (re-importing ``torch`` etc. by name) and runs every exercise's check. It writes the
   scores to a file in a directory made for it after the kernel was gone, which the grader reads.

So the score never comes from printed text or from anything the notebook's kernel wrote: redefining
``check``, printing a pass line, writing a "record" file, monkeypatching the checker module or
``torch`` in the kernel, or deleting check cells all leave the score what the function earns.

What it does not protect against (say it to yourself before a high-stakes class)
------------------------------------------------------------------------------
* The learner's function must run to be tested, and it runs inside the checking process. A function
  written to attack the checker *when called* (patching ``torch`` or the checker from inside,
  overwriting the result) is not stopped. Such code is in plain sight in the notebook: the grader
  flags notebooks whose code reaches for the checking machinery (``note`` column), read those.
* An answer that just calls the course package's own implementation passes: the checks test
  behaviour, not authorship.
* The notebook runs as the grader's user: it can read (and write) every file that user can. The
  namespaces above are not a file-system jail. Grade in a container or as a dedicated user with
  no access to anything else (``book/instructor.md`` shows the commands).
* ``RLIMIT_AS`` limits address space, not resident memory: importing torch alone maps ~3.5 GB, so
  the limit must sit well above that (default 8 GiB); a container's memory limit is the real one.

``--quick`` runs every cell but caps every training loop at 2 steps (``COURSE_MAX_STEPS=2``) and
records learning targets instead of raising them (``COURSE_REHEARSAL=1``). Grades come only from the
checks, which do not depend on the chapter's trained models, so a quick run grades the same; it is
what the tests use.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import pickle
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Optional, Sequence

from . import netguard
from .authoring import _CHECK_CALL, ROOT, _source

DEFAULT_TIMEOUT = 900  # s, a whole notebook: a chapter takes 1-2 min in the fast profile
DEFAULT_MEMORY = "8G"  # address space (RLIMIT_AS): torch alone maps ~3.5 GB of it
DUMP_TIMEOUT = 120  # s, the grader's own last cell (pickling the answers)
QUICK_ENV = {"COURSE_MAX_STEPS": "2", "COURSE_REHEARSAL": "1"}
# Code that reaches for the checking machinery: not proof of cheating, a reason to read the notebook.
SUSPICIOUS = re.compile(
    r"course_utils\.exercises|from\s+course_utils\s+import\s+exercises|\bREGISTRY\b|\brun_check\b"
    r"|\bsys\.modules\b|\bdef\s+check\b|^\s*check\s*=|\bcourse_utils\.grade\b|\bgc\.get_objects\b"
    r"|\bsys\._getframe\b|\binspect\.stack\b|/proc/",
    re.M,
)


class GradeError(Exception):
    """Bad input to the grader: the command line prints its message, without a traceback."""


# ---------------------------------------------------------------------------------------------
# The chapter: which exercises a submission is graded on
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Chapter:
    """A chapter's notebook and its exercises, ``(id, name)`` in order (``name``: the function)."""

    name: str
    exercises: tuple
    lines: frozenset = frozenset()  # the notebook's own code lines (not the learner's)

    @property
    def ids(self) -> list[str]:
        return [i for i, _ in self.exercises]


def _code(nb: dict) -> list[str]:
    return [_source(c) for c in nb.get("cells", []) if c.get("cell_type") == "code"]


def chapter_of(notebook: Path) -> Chapter:
    """The exercises of a book or student notebook: the ``check("<id>", <name>)`` calls in it."""
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for source in _code(nb):
        for match in _CHECK_CALL.finditer(source):
            found.setdefault(match["id"], match["name"])
    lines = frozenset(line.strip() for source in _code(nb) for line in source.splitlines())
    return Chapter(Path(notebook).stem, tuple(found.items()), lines)


def _known_chapters(root: Path = ROOT) -> list[Path]:
    for folder in ("student", "book"):
        found = sorted((root / folder).glob("*.ipynb"))
        if found:
            return found
    return []


def resolve_chapter(spec: Optional[str], submissions: Sequence[Path], root: Path = ROOT) -> Chapter:
    """``spec`` (a notebook path, or a name such as ``08_medical_cad`` / ``08``), else inferred.

    Inferred: the course notebook whose exercises the most submissions define or check (a notebook
    whose check cells were deleted still defines the functions).
    """
    known = _known_chapters(root)
    if spec:
        path = Path(spec)
        if path.suffix == ".ipynb" and path.is_file():
            chapter = chapter_of(path)
        else:
            matches = [p for p in known if p.stem == spec] or [p for p in known if p.stem.startswith(spec)]
            if len(matches) != 1:
                names = ", ".join(p.stem for p in known) or "(no course notebooks found: give a path)"
                what = "matches several notebooks" if matches else "is no notebook of the course"
                raise GradeError(f"--chapter {spec!r} {what}. Chapters: {names}")
            chapter = chapter_of(matches[0])
        if not chapter.exercises:
            raise GradeError(f"{spec}: this notebook has no exercises (no check(...) cells)")
        return chapter
    chapters = [c for c in map(chapter_of, known) if c.exercises]
    votes: dict[str, int] = {}
    for sub in submissions:
        try:
            code = "\n".join(_code(json.loads(Path(sub).read_text(encoding="utf-8"))))
        except (OSError, ValueError, AttributeError):
            continue
        def overlap(c: Chapter) -> int:
            return sum((f'"{i}"' in code or f"'{i}'" in code) + bool(re.search(rf"\bdef\s+{n}\b", code))
                       for i, n in c.exercises)
        best = max(chapters, key=overlap, default=None)
        if best is not None and overlap(best) > 0:
            votes[best.name] = votes.get(best.name, 0) + 1
    if not votes:
        raise GradeError("cannot tell which chapter these notebooks are: pass --chapter NAME "
                         f"(one of: {', '.join(c.name for c in chapters) or 'a notebook path'})")
    winner = max(votes, key=votes.get)
    return next(c for c in chapters if c.name == winner)


# ---------------------------------------------------------------------------------------------
# The sandbox
# ---------------------------------------------------------------------------------------------
@dataclass
class Settings:
    """How every submission of a batch runs."""

    timeout: float = DEFAULT_TIMEOUT
    cell_timeout: Optional[float] = None
    memory: Optional[int] = None  # bytes of address space; None: no limit
    quick: bool = False
    threads: int = 1


def parse_size(text: str) -> Optional[int]:
    """``"8G"``, ``"512M"``, ``"0"`` (no limit) -> bytes (or None)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)i?[bB]?\s*", str(text))
    if not match:
        raise GradeError(f"--memory {text!r}: give a size such as 8G, 4096M or 0 (no limit)")
    value = float(match[1]) * 1024 ** " KMGT".index(match[2].upper() or " ")
    return int(value) or None


@lru_cache(maxsize=1)
def _namespaces() -> tuple:
    """The command prefix that runs a command with loopback only and in a PID namespace, or ()."""
    if not (shutil.which("unshare") and shutil.which("ip")):
        return ()
    prefix = ("unshare", "--net", "--pid", "--fork", "--kill-child",
              "sh", "-c", 'ip link set lo up && exec "$@"', "sandbox")
    try:
        probe = subprocess.run(prefix + ("true",), capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return prefix if probe.returncode == 0 else ()


def network_blocked_by_os() -> bool:
    """True where each submission runs in its own network namespace (loopback only)."""
    return bool(_namespaces())


_SITECUSTOMIZE = '''\
"""The course's network guard, in every Python process of a graded notebook."""
import importlib.util

_spec = importlib.util.spec_from_file_location("_course_netguard", {path!r})
_guard = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_guard)
_guard.install()
'''


def sandbox_env(home: Path, guard: Path, settings: Settings) -> dict:
    """The whole environment of a graded notebook: nothing else of the grader's is passed on."""
    threads = str(settings.threads)
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(home),
        "TMPDIR": str(home / ".tmp"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(guard),
        "PYTHONDONTWRITEBYTECODE": "1",
        netguard.ENV_FLAG: "1",
        "COURSE_PROFILE": "fast",
        "COURSE_DEVICE": "cpu",  # the fast profile's device; an address-space limit and CUDA do not mix
        "CUDA_VISIBLE_DEVICES": "",
        "COURSE_PROGRESS": "0",
        "COURSE_CACHE": str(home / ".course_cache"),
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OMP_WAIT_POLICY": "PASSIVE",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "MPLBACKEND": "Agg",
    }
    if settings.quick:
        env.update(QUICK_ENV)
    return env


def _limit_memory(limit: Optional[int]) -> None:
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass


def _sandboxed(args: list[str], *, cwd: Path, env: dict, timeout: float, log: Path) -> Optional[int]:
    """Run ``python -m course_utils.grade <args>`` in the sandbox; its exit code, None on timeout.

    Its output (and its kernel's) goes to ``log``.
    """
    command = list(_namespaces()) + [sys.executable, "-m", "course_utils.grade", *args]
    with open(log, "ab") as out:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:  # the notebook runner stops its kernel on SIGTERM (the kernel has a process group of its own)
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        return None
    finally:
        _kill_group(proc.pid)  # whatever is left of its process group
        proc.wait()


# ---------------------------------------------------------------------------------------------
# Inside the sandbox: run the notebook, then the checks (each in its own process)
# ---------------------------------------------------------------------------------------------
def _dump_cell(names: Sequence[str], path: Path) -> str:
    """The grader's last cell: pickle each answer found in the kernel's namespace to ``path``."""
    return textwrap.dedent(f"""\
        def _course_grade_dump(namespace, names, path):
            import pickle
            import cloudpickle
            found = {{}}
            for name in names:
                if name in namespace:
                    try:
                        found[name] = ("ok", cloudpickle.dumps(namespace[name]))
                    except Exception as err:
                        found[name] = ("error", f"{{type(err).__name__}}: {{err}}")
            with open(path, "wb") as file:
                pickle.dump(found, file)
        _course_grade_dump(globals(), {list(names)!r}, {str(path)!r})
        del _course_grade_dump
        """)


def _run_notebook(notebook: Path, names: list[str], dump: Path, executed: Path, status_path: Path,
                  timeout: float, cell_timeout: Optional[float]) -> int:
    """Execute ``notebook`` (errors allowed) in a new kernel, then the grader's last cell."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbclient.util import ensure_async, run_sync

    nb = nbformat.read(notebook, as_version=4)
    n_learner = len(nb.cells)
    nb.cells.append(nbformat.v4.new_code_cell(_dump_cell(names, dump)))
    deadline = time.monotonic() + timeout

    def cell_limit(cell) -> int:
        left = max(1.0, deadline - time.monotonic())
        return int(min(left, cell_timeout) if cell_timeout else left) + 1

    client = NotebookClient(nb, kernel_name="python3", allow_errors=True, timeout_func=cell_limit,
                            interrupt_on_timeout=False, record_timing=False,
                            resources={"metadata": {"path": os.getcwd()}})

    async def interrupt() -> None:  # nbclient's kernel manager is an asynchronous one
        await ensure_async(client.km.interrupt_kernel())

    status = {"status": "ok", "message": ""}
    with client.setup_kernel():
        pid = getattr(getattr(client.km, "provisioner", None), "pid", None)
        if pid:  # stopped by the grader at its deadline: take the kernel (its own process group) along
            signal.signal(signal.SIGTERM, lambda *_: (_kill_group(pid), os._exit(3)))
        client.wait_for_reply(client.kc.kernel_info())
        for index in range(n_learner):
            try:
                client.execute_cell(nb.cells[index], index)
            except CellTimeoutError:
                whole = time.monotonic() >= deadline - 1
                limit = f"{timeout:g} s for the notebook" if whole else f"{cell_timeout:g} s for one cell"
                status = {"status": "timeout", "message": f"timed out in cell {index + 1} ({limit}); "
                          "graded what the cells before it defined"}
                run_sync(interrupt)()
                break
            except DeadKernelError:
                status = {"status": "dead", "message": f"the kernel died in cell {index + 1} "
                          "(out of memory, or the process was killed)"}
                break
        if status["status"] != "dead":
            client.timeout_func, client.timeout = None, DUMP_TIMEOUT
            try:
                client.execute_cell(nb.cells[-1], len(nb.cells) - 1)
            except (CellTimeoutError, DeadKernelError) as err:
                status["message"] = (status["message"] + "; " if status["message"] else "") + \
                    f"the kernel did not answer the grader's last cell ({type(err).__name__})"
    nb.cells.pop()  # the grader's cell is not the learner's
    nbformat.write(nb, executed)
    status_path.write_text(json.dumps(status))
    return 0


def _run_checks(dump: Path, record: Path, exercises: list[tuple[str, str]]) -> int:
    """Load the pickled answers in this fresh process and run each exercise's check on them."""
    sys.path.insert(0, os.getcwd())  # a module the notebook wrote and imported, if any
    from .exercises import REGISTRY

    found = pickle.loads(dump.read_bytes())
    out = {}
    for exercise_id, name in exercises:
        entry = found.get(name)
        if entry is None:
            out[exercise_id] = _zero(f"no `{name}` is defined in the notebook")
            continue
        if entry[0] != "ok":
            out[exercise_id] = _zero(f"`{name}` could not be taken out of the notebook: {entry[1]}")
            continue
        try:
            answer = pickle.loads(entry[1])
        except Exception as err:  # noqa: BLE001 -- the learner's objects, restored: anything goes
            out[exercise_id] = _zero(f"`{name}` could not be restored: {type(err).__name__}: {err}")
            continue
        result = REGISTRY.run_check(exercise_id, answer)
        out[exercise_id] = {"score": result.score, "n_passed": result.n_passed, "n_cases": result.n_cases,
                            "messages": list(result.messages)}
    record.write_text(json.dumps(out))
    return 0


def _last_line(log: Path) -> str:
    """The last line of a sandboxed process's output (its error, usually)."""
    try:
        lines = [l.strip() for l in log.read_text(errors="replace").splitlines() if l.strip()]
    except OSError:
        return "no output"
    return (lines[-1][:300] if lines else "no output")


def _zero(reason: str) -> dict:
    return {"score": 0.0, "n_passed": 0, "n_cases": 0, "messages": [reason]}


# ---------------------------------------------------------------------------------------------
# One submission, then a batch
# ---------------------------------------------------------------------------------------------
@dataclass
class Graded:
    """One submission's result."""

    submission: str
    scores: dict = field(default_factory=dict)  # exercise id -> fraction of cases passed
    details: dict = field(default_factory=dict)  # exercise id -> the checker's record
    notes: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> float:
        return sum(self.scores.values()) / len(self.scores) if self.scores else 0.0


def grade_submission(path: Path, name: str, chapter: Chapter, settings: Settings, out: Path) -> Graded:
    """Run one submission in the sandbox and check its answers; never raises for a bad submission."""
    started = time.perf_counter()
    graded = Graded(name, {i: 0.0 for i in chapter.ids})
    for i in chapter.ids:
        graded.details[i] = _zero("not graded: the notebook did not run (see the note)")
    try:
        import nbformat

        nb = nbformat.read(str(path), as_version=4)
        if not isinstance(nb.get("cells"), list):
            raise ValueError("it has no list of cells")
    except Exception as err:  # noqa: BLE001 -- not JSON, not a notebook: one line, and the batch goes on
        graded.notes.append(f"not a valid notebook: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
        graded.seconds = time.perf_counter() - started
        return graded
    added = [line for source in _code(nb) for line in source.splitlines() if line.strip() not in chapter.lines]
    if SUSPICIOUS.search("\n".join(added)):
        graded.notes.append("review: the code refers to the checking machinery (check, run_check, "
                            "course_utils.exercises, sys.modules...); the score is still the checker's")
    root = Path(tempfile.mkdtemp(prefix="course-grade-"))
    try:
        home, run, guard = root / "work", root / "run", root / "guard"
        for folder in (home, home / ".tmp", run, guard):
            folder.mkdir(parents=True)
        (guard / "sitecustomize.py").write_text(_SITECUSTOMIZE.format(path=str(Path(netguard.__file__).resolve())))
        env = sandbox_env(home, guard, settings)
        nbformat.write(nb, str(run / "submission.ipynb"))
        dump, status_file = run / "answers.pkl", run / "status.json"
        executed = run / "executed.ipynb"
        code = _sandboxed(["_notebook", str(run / "submission.ipynb"), str(dump), str(executed), str(status_file),
                           f"{settings.timeout:g}", f"{settings.cell_timeout or 0:g}",
                           str(settings.memory or 0), ",".join(n for _, n in chapter.exercises)],
                          cwd=home, env=env, timeout=settings.timeout + DUMP_TIMEOUT + 60, log=run / "runner.log")
        status = json.loads(status_file.read_text()) if status_file.exists() else {}
        if code is None:
            status = {"status": "timeout", "message": f"timed out ({settings.timeout:g} s) and was stopped"}
        elif not status:
            status = {"status": "error", "message": f"the notebook runner failed (exit code {code}): "
                      + _last_line(run / "runner.log")}
        if status.get("message"):
            graded.notes.append(status["message"])
        if executed.exists():
            (out / "executed").mkdir(exist_ok=True)
            shutil.copyfile(executed, out / "executed" / f"{name}.ipynb")
        if not dump.exists():
            if not status.get("message"):
                graded.notes.append("the notebook did not reach the grader's last cell")
            return graded
        private = Path(tempfile.mkdtemp(prefix="course-grade-record-"))  # made after the kernel is gone
        try:
            record = private / "record.json"
            code = _sandboxed(["_checks", str(dump), str(record), str(settings.memory or 0),
                               json.dumps(list(chapter.exercises))],
                              cwd=home, env=env, timeout=settings.cell_timeout or settings.timeout,
                              log=run / "checks.log")
            try:
                results = json.loads(record.read_text())
            except (OSError, ValueError):
                why = ("timed out (a function never returned?)" if code is None
                       else f"failed (exit code {code}): {_last_line(run / 'checks.log')}")
                graded.notes.append(f"the checks {why}")
                for i in chapter.ids:
                    graded.details[i] = _zero(f"the checks {why}")
                return graded
        finally:
            shutil.rmtree(private, ignore_errors=True)
        for i in chapter.ids:
            entry = results.get(i) or _zero("no result")
            graded.details[i] = entry
            graded.scores[i] = float(entry["score"])
        return graded
    finally:
        shutil.rmtree(root, ignore_errors=True)
        graded.seconds = time.perf_counter() - started


def submission_names(paths: Sequence[Path]) -> list[str]:
    """File stems, made unique (``alice``, ``alice-2``) and safe as file names."""
    names, seen = [], {}
    for p in paths:
        base = re.sub(r"[^\w.-]+", "_", p.stem) or "submission"
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return names


def feedback_markdown(graded: Graded, chapter: Chapter) -> str:
    """The learner's feedback page: score per exercise, then the checker's messages."""
    lines = [f"# Feedback: {graded.submission} ({chapter.name})", "",
             f"Total: {graded.total:.2f} (the mean of the exercises' scores; each is the fraction of "
             "its check's cases passed).", ""]
    if graded.notes:
        lines += ["**Notes**", ""] + [f"- {n}" for n in graded.notes] + [""]
    lines += ["| exercise | score | cases passed |", "| --- | --- | --- |"]
    for i in chapter.ids:
        d = graded.details[i]
        lines.append(f"| `{i}` | {graded.scores[i]:.2f} | {d['n_passed']} of {d['n_cases']} |")
    for i in chapter.ids:
        d = graded.details[i]
        if d["messages"]:
            lines += ["", f"## `{i}`", ""]
            for message in d["messages"]:
                lines += ["```text", message, "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def gradescope_json(graded: Graded, chapter: Chapter) -> dict:
    """Gradescope's autograder results: one test per exercise, worth one point."""
    tests = [{"name": i, "score": round(graded.scores[i], 4), "max_score": 1.0,
              "output": "\n\n".join(graded.details[i]["messages"]) or "All cases passed."}
             for i in chapter.ids]
    result = {"score": round(sum(t["score"] for t in tests), 4), "execution_time": round(graded.seconds, 1),
              "tests": tests}
    if graded.notes:
        result["output"] = "\n".join(graded.notes)
    return result


def write_outputs(results: list[Graded], chapter: Chapter, out: Path) -> None:
    """``grades.csv``, ``feedback/*.md``, ``results/*.json`` under ``out``."""
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    (out / "results").mkdir(parents=True, exist_ok=True)
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["submission", *chapter.ids, "total", "note"])
        for g in sorted(results, key=lambda g: g.submission):
            writer.writerow([g.submission, *(f"{g.scores[i]:.4g}" for i in chapter.ids), f"{g.total:.4g}",
                             "; ".join(g.notes)])
    for g in results:
        (out / "feedback" / f"{g.submission}.md").write_text(feedback_markdown(g, chapter), encoding="utf-8")
        (out / "results" / f"{g.submission}.json").write_text(
            json.dumps(gradescope_json(g, chapter), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def collect(inputs: Sequence[str]) -> list[Path]:
    """The submissions named on the command line (a directory: its ``*.ipynb``)."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            inside = sorted(p for p in path.glob("*.ipynb") if not p.name.startswith("."))
            if not inside:
                raise GradeError(f"{item}: no notebooks (*.ipynb) in this directory")
            found += inside
        elif path.is_file():
            found.append(path)
        else:
            raise GradeError(f"{item}: no such file or directory")
    return found


def grade(paths: Sequence[Path], out: Path, *, chapter: Optional[str] = None, jobs: int = 1,
          settings: Optional[Settings] = None, progress: bool = True) -> list[Graded]:
    """Grade every submission (``jobs`` at a time) and write the outputs; returns the results."""
    from tqdm.auto import tqdm

    settings = settings or Settings()
    found = resolve_chapter(chapter, paths)
    out.mkdir(parents=True, exist_ok=True)
    names = submission_names(paths)
    results: list[Graded] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(grade_submission, p, n, found, settings, out): n for p, n in zip(paths, names)}
        bar = tqdm(as_completed(futures), total=len(futures), desc=f"grading {found.name}", unit="notebook",
                   disable=not progress)
        for future in bar:
            g = future.result()
            results.append(g)
            if g.notes and any(not n.startswith("review:") for n in g.notes):
                bar.write(f"{g.submission}: " + "; ".join(g.notes), file=sys.stderr)
    write_outputs(results, found, out)
    return results


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m course_utils.grade",
        description="Grade submitted student notebooks of one chapter, each in a sandbox.",
        epilog="Outputs: OUT/grades.csv, OUT/feedback/<submission>.md, OUT/results/<submission>.json "
               "(Gradescope), OUT/executed/<submission>.ipynb. See the course's instructor page.")
    p.add_argument("submissions", nargs="+", help="notebooks, or directories of notebooks")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--chapter", help="the chapter's notebook name (e.g. 08_medical_cad) or path; "
                                     "default: inferred from the submissions")
    p.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default 1)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help=f"seconds for a whole notebook (default {DEFAULT_TIMEOUT})")
    p.add_argument("--cell-timeout", type=float, default=None, help="seconds for one cell (default: no own limit)")
    p.add_argument("--memory", default=DEFAULT_MEMORY,
                   help=f"address-space limit of each notebook's processes (default {DEFAULT_MEMORY}; 0: none)")
    p.add_argument("--quick", action="store_true",
                   help="cap every training loop at 2 steps (grades are the same: they come from the checks)")
    return p


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_notebook"]:  # inside the sandbox
        nb, dump, executed, status, timeout, cell_timeout, memory, names = argv[1:]
        _limit_memory(int(memory))
        return _run_notebook(Path(nb), names.split(","), Path(dump), Path(executed), Path(status),
                             float(timeout), float(cell_timeout) or None)
    if argv[:1] == ["_checks"]:
        dump, record, memory, exercises = argv[1:]
        _limit_memory(int(memory))
        return _run_checks(Path(dump), Path(record), [tuple(e) for e in json.loads(exercises)])
    args = _parser().parse_args(argv)
    try:
        if args.jobs < 1 or args.timeout <= 0 or (args.cell_timeout is not None and args.cell_timeout <= 0):
            raise GradeError("--jobs, --timeout and --cell-timeout must be positive")
        for module in ("nbclient", "nbformat", "ipykernel", "cloudpickle"):
            try:
                __import__(module)
            except ImportError:
                raise GradeError(f"the grader needs {module}: pip install -e \".[grade]\" in the course's repository "
                                 "(nbclient, nbformat, ipykernel, cloudpickle)")
        paths = collect(args.submissions)
        settings = Settings(timeout=args.timeout, cell_timeout=args.cell_timeout, memory=parse_size(args.memory),
                            quick=args.quick, threads=max(1, (os.cpu_count() or 1) // args.jobs))
        if not network_blocked_by_os():
            print("note: no network namespace here (needs root on Linux): relying on the Python network "
                  "guard only", file=sys.stderr)
        results = grade(paths, Path(args.out), chapter=args.chapter, jobs=args.jobs, settings=settings)
    except GradeError as err:
        print(f"grade: {err}", file=sys.stderr)
        return 2
    print(f"graded {len(results)} notebook(s): {Path(args.out) / 'grades.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
