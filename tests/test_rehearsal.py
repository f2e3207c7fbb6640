"""course_utils.rehearsal: loops measured in a rehearsal, the T4 estimate, the tables."""
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import rehearsal, runtime, train


@pytest.fixture
def run_log(monkeypatch, tmp_path):
    log = tmp_path / "run.jsonl"
    monkeypatch.setenv(runtime.RUN_LOG_ENV, str(log))
    monkeypatch.setenv(runtime.REHEARSAL_ENV, "1")
    monkeypatch.setenv(train.MAX_STEPS_ENV, "2")
    return lambda: [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []


def test_fit_in_a_rehearsal_runs_capped_and_records_the_first_steps_flops(run_log):
    x, y = torch.randn(64, 8), torch.randn(64, 4)
    history = train.fit(nn.Linear(8, 4), lambda m, a, b: F.mse_loss(m(a), b), (x, y), steps=500, batch_size=16,
                        device="cpu", desc="toy")
    assert history.steps == 2
    (record,) = run_log()
    assert record["kind"] == "loop" and record["desc"] == "toy" and record["steps"] == 500  # the full count
    # forward 2·B·in·out, backward the same again for the weight gradient (the input needs none)
    assert record["flops_per_step"] == 4 * 16 * 8 * 4
    assert record["largest_tensor_bytes"] >= 16 * 8 * 4  # at least a (16, 8) float batch went through


def test_loop_and_predict_are_measured_once_each(run_log):
    steps = [s for s in train.loop(1000, desc="sampler")]
    assert steps == [0, 1]
    train.predict(nn.Linear(3, 2), torch.randn(10, 3), batch_size=4, device="cpu")
    loop, pred = run_log()
    assert (loop["loop"], loop["steps"]) == ("loop", 1000)
    assert (pred["loop"], pred["steps"], pred["flops_per_step"]) == ("predict", 3, 2 * 4 * 3 * 2)


def test_nothing_is_recorded_outside_a_rehearsal(run_log, monkeypatch):
    monkeypatch.delenv(runtime.REHEARSAL_ENV)
    train.fit(nn.Linear(3, 1), lambda m, a: m(a).pow(2).mean(), torch.randn(8, 3), steps=3, device="cpu")
    assert run_log() == []


def test_t4_estimate_adds_cpu_time_and_loops_with_a_per_step_floor():
    loops = [{"steps": 1000, "flops_per_step": 8e12},  # 2 s a step at 4 TFLOP/s
             {"steps": 1000, "flops_per_step": 1e6}]  # tiny: the 3 ms floor
    assert rehearsal.estimate_t4_seconds(loops, cpu_wall_s=10.0) == pytest.approx(10 + 2000 + 3)


def test_tables_say_what_is_estimated_and_what_failed():
    result = {"notebook": "01_x", "passed": True, "failure": "", "process_wall_s": 20.0, "chapter_wall_s": 18.0,
              "peak_rss_bytes": 2 * 2**30, "peak_cuda_bytes": None, "targets": [{"name": "acc", "value": 0.5, "ok": False}],
              "loops": [{"steps": 100, "flops_per_step": 4e12, "largest_tensor_bytes": 2**30}]}
    (summary,) = rehearsal.summarise_rehearsal([dict(result)])
    assert summary["estimated_t4_s"] == pytest.approx(118.0) and summary["within_limits"]
    text = rehearsal.rehearsal_markdown([summary])
    assert "| 01_x | yes | 1 | 400.0 T | 118 | 2.00 | 1.00 | 0/1 |" in text and "Estimated, not measured" in text
    failed = dict(result, passed=False, failure="E boom")
    assert not rehearsal.summarise_rehearsal([failed])[0]["within_limits"]
    assert "FAILED: E boom" in rehearsal.gpu_markdown([failed])


def test_gpu_check_refuses_to_run_without_cuda(capsys):
    assert rehearsal.main(["gpu-check", "01_attention"]) == 2
    assert "needs CUDA" in capsys.readouterr().err
