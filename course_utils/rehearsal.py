"""The full profile, proven before a GPU sees it: a CPU rehearsal and the one-command GPU check.

**Rehearsal** (``make rehearse``, no GPU needed): every book notebook runs in the ``full`` profile
on the CPU with every loop capped at a few steps (``COURSE_MAX_STEPS``) and its learning targets
recorded instead of raised (``COURSE_REHEARSAL=1``). Data, models and batches have their full
sizes, so the run finds what breaks at full size (shapes, memory, a tensor on the wrong device)
in minutes. The first step of every training loop (``train.fit``), sampling or lesson loop
(``train.loop``) and inference pass (``train.predict``) runs under
``torch.utils.flop_counter.FlopCounterMode``; with the number of steps the full profile asks for,
that gives the FLOPs of the whole chapter's loops and an estimated time on a T4:

    t_T4 ≈ t_CPU-rest + Σ_loops steps · max(FLOPs_step / R_T4, t_step-min)

* ``R_T4`` = :data:`T4_SUSTAINED_FLOPS` = 4 TFLOP/s: the T4's fp32 peak is 8.1 TFLOP/s (the course
  trains in fp32); small convolutions and matrix products at these sizes sustain about half of it.
* ``t_step-min`` = :data:`STEP_FLOOR_S` = 3 ms: a step of a small model on a GPU is bound by kernel
  launches and Python, not FLOPs (tens of kernels per step at ≈ 10 µs each, forward and backward).
* ``t_CPU-rest``: the rehearsal's own wall time -- everything that is not a loop (data generation,
  selective search, metrics) ran at full size on this CPU; Colab's CPUs are no faster.

It is an *estimate* and is labelled so; only ``make gpu-check`` measures.

**GPU check** (``make gpu-check``, one large GPU): every notebook under nbval in the ``full``
profile, several at once, each in its own process; per chapter it writes the wall time, the
peak GPU memory (``torch.cuda.max_memory_allocated``) and every learning target.

Both write ``_build/<name>.json`` and ``_build/<name>.md`` from the records that the notebooks'
``rt.target`` / ``rt.report`` / ``train`` append to ``$COURSE_RUN_LOG``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

T4_SUSTAINED_FLOPS = 4.0e12
STEP_FLOOR_S = 0.003
REHEARSAL_STEPS = 2
LIMIT_T4_S = 600.0  # a chapter must fit 10 minutes on a free Colab T4
LIMIT_PEAK_BYTES = 12 * 2**30  # and 12 GiB (a T4 has 16 GB; leave room for the CUDA context)

ROOT = Path(__file__).resolve().parent.parent
_measuring = False


# --------------------------------------------------------------------------------------------
# Inside a notebook: measure the first step of each loop (only in a rehearsal)


def _largest_tensor_mode():
    from torch.utils._python_dispatch import TorchDispatchMode
    import torch

    class LargestTensor(TorchDispatchMode):
        """Remembers the largest tensor any operation creates while the mode is on."""

        largest = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    self.largest = max(self.largest, t.numel() * t.element_size())
            return out

    return LargestTensor()


@contextmanager
def measure_step(loop: str, desc: str, steps: int):
    """In a rehearsal, count the FLOPs and the largest tensor of the enclosed step and log
    ``{"kind": "loop", loop, desc, steps, flops_per_step, largest_tensor_bytes}``; else do nothing."""
    global _measuring
    from course_utils import runtime

    if not runtime.rehearsal() or _measuring:
        yield
        return
    from torch.utils.flop_counter import FlopCounterMode

    flops, largest = FlopCounterMode(display=False), _largest_tensor_mode()
    _measuring = True
    try:
        with flops, largest:
            yield
    finally:
        _measuring = False
    runtime.log_record("loop", loop=loop, desc=desc, steps=int(steps), flops_per_step=int(flops.get_total_flops()),
                       largest_tensor_bytes=int(largest.largest))


# --------------------------------------------------------------------------------------------
# Outside: run the notebooks and summarise


def estimate_t4_seconds(loops: list, cpu_wall_s: float) -> float:
    """``t_CPU-rest + Σ steps · max(FLOPs_step / R_T4, t_step-min)`` (see the module docstring)."""
    gpu = sum(r["steps"] * max(r["flops_per_step"] / T4_SUSTAINED_FLOPS, STEP_FLOOR_S) for r in loops)
    return cpu_wall_s + gpu


def _read_log(path: Path) -> list:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _failure(output: str) -> str:
    lines = [l for l in output.splitlines() if l.startswith(("E ", "FAILED"))]
    return " | ".join(l.strip() for l in lines[-3:])[:400]


def run_notebook(notebook: Path, env: dict, timeout_s: float) -> dict:
    """One notebook under nbval in its own process; its records and outcome."""
    with tempfile.TemporaryDirectory(prefix="course-run-") as tmp:
        log = Path(tmp) / "run.jsonl"
        run_env = {**os.environ, **env, "COURSE_RUN_LOG": str(log), "COURSE_NO_BOOK_CACHE": "1"}
        command = [sys.executable, "-m", "pytest", str(notebook), "-q", "-p", "no:cacheprovider",
                   "--nbval-lax", "--nbval-current-env", f"--nbval-cell-timeout={int(timeout_s)}"]
        started = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=timeout_s)
            ok, output = done.returncode == 0, done.stdout + done.stderr
        except subprocess.TimeoutExpired as err:
            ok, output = False, f"E timed out after {timeout_s:.0f} s\n{err.stdout or ''}"
        wall = time.perf_counter() - started
        records = _read_log(log)
    report = next((r for r in reversed(records) if r["kind"] == "report"), {})
    return {
        "notebook": notebook.stem,
        "passed": ok,
        "failure": "" if ok else _failure(output),
        "process_wall_s": round(wall, 1),
        "chapter_wall_s": report.get("wall_s"),
        "peak_rss_bytes": report.get("peak_rss_bytes"),
        "peak_cuda_bytes": report.get("peak_cuda_bytes"),
        "targets": [r for r in records if r["kind"] == "target"],
        "loops": [r for r in records if r["kind"] == "loop"],
    }


def _gib(n: Optional[int]) -> str:
    return "–" if n is None else f"{n / 2**30:.2f}"


def summarise_rehearsal(results: list) -> list:
    for r in results:
        loops = r["loops"]
        r["largest_tensor_bytes"] = max((l["largest_tensor_bytes"] for l in loops), default=0)
        r["full_flops"] = sum(l["steps"] * l["flops_per_step"] for l in loops)
        r["estimated_t4_s"] = round(estimate_t4_seconds(loops, r["chapter_wall_s"] or r["process_wall_s"]), 1)
        r["within_limits"] = bool(r["passed"] and r["estimated_t4_s"] <= LIMIT_T4_S
                                  and (r["peak_rss_bytes"] or 0) <= LIMIT_PEAK_BYTES)
    return results


def rehearsal_markdown(results: list) -> str:
    lines = [
        "| chapter | ran | loops | full-profile FLOPs | est. T4 time (s) | peak RSS (GiB) | largest tensor (GiB) | targets met (recorded) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        met = sum(t["ok"] for t in r["targets"])
        lines.append(f"| {r['notebook']} | {'yes' if r['passed'] else 'FAILED'} | {len(r['loops'])} | "
                     f"{r['full_flops'] / 1e12:.1f} T | {r['estimated_t4_s']:.0f} | {_gib(r['peak_rss_bytes'])} | "
                     f"{_gib(r['largest_tensor_bytes'])} | {met}/{len(r['targets'])} |")
    lines.append("")
    lines.append(f"Estimated, not measured: T4 at {T4_SUSTAINED_FLOPS / 1e12:.0f} TFLOP/s sustained (fp32), "
                 f"{STEP_FLOOR_S * 1e3:.0f} ms minimum per step, plus this CPU's time for everything outside the "
                 f"loops (loops capped at {REHEARSAL_STEPS} steps; targets recorded, not meaningful at that budget).")
    return "\n".join(lines) + "\n"


def gpu_markdown(results: list) -> str:
    lines = ["| chapter | passed | wall time (s) | peak GPU memory (GiB) | learning targets |", "|---|---|---|---|---|"]
    for r in results:
        targets = "; ".join(f"{t['name']} = {t['value']:.3g} {'✓' if t['ok'] else '✗'}" for t in r["targets"]) or "–"
        lines.append(f"| {r['notebook']} | {'yes' if r['passed'] else 'FAILED: ' + r['failure'][:120]} | "
                     f"{r['chapter_wall_s'] or r['process_wall_s']:.0f} | {_gib(r['peak_cuda_bytes'])} | {targets} |")
    return "\n".join(lines) + "\n"


def notebooks(names: Optional[list] = None) -> list:
    found = sorted((ROOT / "book").glob("*.ipynb"))
    if names:
        wanted = set(names)
        found = [p for p in found if p.stem in wanted or p.name in wanted]
        if not found:
            raise SystemExit(f"no book notebook matches {sorted(wanted)}")
    return found


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.rehearsal",
                                     description="Full-profile rehearsal on the CPU, or the GPU check.")
    parser.add_argument("mode", choices=["rehearse", "gpu-check"])
    parser.add_argument("notebooks", nargs="*", help="notebook names (default: every book notebook)")
    parser.add_argument("--jobs", type=int, default=None, help="notebooks run at once")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per notebook")
    parser.add_argument("--out", default=str(ROOT / "_build"))
    args = parser.parse_args(argv)

    if args.mode == "rehearse":
        env = {"COURSE_PROFILE": "full", "COURSE_DEVICE": "cpu", "COURSE_REHEARSAL": "1",
               "COURSE_MAX_STEPS": str(REHEARSAL_STEPS)}
        jobs, timeout = args.jobs or 2, args.timeout or 900
    else:
        import torch

        if not torch.cuda.is_available():
            print("error: the GPU check needs CUDA, and torch sees no CUDA device "
                  f"(torch {torch.__version__}, CUDA build {torch.version.cuda}). Check the driver with nvidia-smi.",
                  file=sys.stderr)
            return 2
        env = {"COURSE_PROFILE": "full", "COURSE_DEVICE": os.environ.get("COURSE_DEVICE", "cuda")}
        jobs, timeout = args.jobs or 6, args.timeout or 600
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="course-cache-") as cache:
        env["COURSE_CACHE"] = cache  # one model cache for this run: chapters share the judge and CLIP
        env["COURSE_TEST_MODEL_CACHE"] = cache
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(lambda nb: run_notebook(nb, env, timeout), notebooks(args.notebooks)))
        total = time.perf_counter() - started
    if args.mode == "rehearse":
        results = summarise_rehearsal(results)
        text = rehearsal_markdown(results)
        ok = all(r["within_limits"] for r in results)
    else:
        text = gpu_markdown(results)
        ok = all(r["passed"] and all(t["ok"] for t in r["targets"]) for r in results)
    name = "rehearsal" if args.mode == "rehearse" else "gpu-check"
    payload = {"mode": args.mode, "total_wall_s": round(total, 1), "jobs": jobs, "results": results}
    if args.mode == "gpu-check":
        import torch

        payload["gpu"] = torch.cuda.get_device_name(0)
        payload["torch"] = torch.__version__
    (out / f"{name}.json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    (out / f"{name}.md").write_text(text, encoding="utf-8")
    print(text)
    print(f"{name}: {len(results)} notebooks in {total:.0f} s -> {out / name}.json, .md; "
          f"{'all within limits' if ok else 'NOT all within limits'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
