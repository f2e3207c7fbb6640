"""course_utils.runtime: the profile switch, device choice, seeding, banner and wall-time report."""
import pytest
import torch

from course_utils import runtime


def test_profile_defaults_by_hardware(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.get_profile() == "fast"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.get_profile() == "full"


@pytest.mark.parametrize("value, expected", [("fast", "fast"), ("FULL", "full"), (" fast ", "fast")])
def test_profile_from_environment(monkeypatch, value, expected):
    monkeypatch.setenv("COURSE_PROFILE", value)
    assert runtime.get_profile() == expected


def test_unknown_profile_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "turbo")
    with pytest.raises(runtime.ProfileError) as err:
        runtime.get_profile()
    message = str(err.value)
    assert "'turbo'" in message and "fast" in message and "full" in message


def test_device_choice(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert runtime.get_device().type == "cpu"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert runtime.get_device().type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.get_device().type == "cuda"


def test_device_override_and_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.get_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="no CUDA"):
        runtime.get_device("cuda")
    with pytest.raises(ValueError, match="not a device"):
        runtime.get_device("gpu-please")


def test_seed_everything_is_deterministic():
    g1 = runtime.seed_everything(7)
    a = (torch.randn(5), torch.rand(3, generator=g1))
    g2 = runtime.seed_everything(7)
    b = (torch.randn(5), torch.rand(3, generator=g2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    runtime.seed_everything(8)
    assert not torch.equal(torch.randn(5), a[0])


def test_setup_banner_and_report(capsys, monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    rt = runtime.setup(seed=3, device="cpu")
    banner = capsys.readouterr().out
    assert "profile: fast" in banner and "device: cpu" in banner and "torch" in banner
    assert rt.pick(fast=1, full=2) == 1 and rt.fast
    assert rt.report() is None  # the last cell shows the line only, no bare number
    assert "wall time:" in capsys.readouterr().out and rt.wall >= 0


def test_progress_bar_can_be_switched_off(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_PROGRESS", "0")
    assert list(runtime.progress(range(3), desc="quiet")) == [0, 1, 2]
    assert "quiet" not in capsys.readouterr().err
    monkeypatch.setenv("COURSE_PROGRESS", "1")
    assert list(runtime.progress(range(3), desc="loud")) == [0, 1, 2]
    assert "loud" in capsys.readouterr().err


def test_full_profile_on_a_cpu_warns(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "full")
    with pytest.warns(RuntimeWarning, match="sized for a GPU"):
        runtime.setup(seed=0, device="cpu")


def test_deterministic_kernels_only_on_the_cpu():
    runtime.seed_everything(0, device=torch.device("cpu"))
    assert torch.are_deterministic_algorithms_enabled()
    runtime.seed_everything(0, device=torch.device("cuda"))  # no CUDA needed to choose the flags
    assert not torch.are_deterministic_algorithms_enabled()
    runtime.seed_everything(0)
    assert torch.are_deterministic_algorithms_enabled()
    # deterministic kernels without the NaN fill of torch.empty (a debugging aid that costs time)
    assert torch.utils.deterministic.fill_uninitialized_memory is False


def test_learning_target_prints_and_raises(monkeypatch, capsys):
    monkeypatch.delenv(runtime.REHEARSAL_ENV, raising=False)
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    rt = runtime.setup(seed=0, device="cpu")
    capsys.readouterr()
    assert rt.target("test accuracy", 0.97, at_least=0.95)
    assert "target met: test accuracy = 0.97 (target ≥ 0.95)" in capsys.readouterr().out
    assert rt.target("loss", 0.2, at_most=0.2, fmt=".2f")
    with pytest.raises(runtime.LearningTargetMissed, match=r"accuracy = 0.9 misses its target \(≥ 0.95\)"):
        rt.target("accuracy", 0.9, at_least=0.95)
    with pytest.raises(runtime.LearningTargetMissed):
        rt.target("in a band", 3.0, at_least=1.0, at_most=2.0)
    with pytest.raises(ValueError, match="bound"):
        rt.target("no bound", 1.0)
    assert [t["ok"] for t in rt.targets] == [True, True, False, False]


def test_learning_target_is_recorded_in_a_rehearsal(monkeypatch, tmp_path, capsys):
    import json

    log = tmp_path / "targets.jsonl"
    monkeypatch.setenv(runtime.REHEARSAL_ENV, "1")
    monkeypatch.setenv(runtime.RUN_LOG_ENV, str(log))
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    rt = runtime.setup(seed=0, device="cpu")
    assert rt.target("accuracy", 0.1, at_least=0.95) is False  # recorded, not raised
    assert "target MISSED: accuracy = 0.1" in capsys.readouterr().out
    record = json.loads(log.read_text().splitlines()[-1])
    assert record == {"kind": "target", "name": "accuracy", "value": 0.1, "at_least": 0.95, "at_most": None, "ok": False,
                      "profile": "fast"}


def test_show_images_draws_a_padded_grid():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from course_utils.plot import show_images

    images = -torch.ones(6, 1, 4, 4)  # blank paper in [-1, 1]
    images[0, 0, 1, 1] = 1.0  # one ink pixel
    fig, ax = plt.subplots()
    show_images(images, nrow=3, ax=ax, title="grid")
    grid = ax.images[0].get_array()
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1, 3)  # 2 rows x 3 columns of 4 px, 1 px padding
    assert grid[2, 2, 0] == 0.0 and grid.min() == 0.0 and (grid == 1.0).mean() > 0.9  # ink dark on white
    with pytest.raises(ValueError, match="N, 1 or 3"):
        show_images(torch.zeros(2, 2, 4, 4), nrow=2, ax=ax)
    plt.close(fig)
