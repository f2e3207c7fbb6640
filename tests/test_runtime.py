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
    wall = rt.report()
    assert "wall time:" in capsys.readouterr().out and wall >= 0


def test_progress_bar_can_be_switched_off(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_PROGRESS", "0")
    assert list(runtime.progress(range(3), desc="quiet")) == [0, 1, 2]
    assert "quiet" not in capsys.readouterr().err
    monkeypatch.setenv("COURSE_PROGRESS", "1")
    assert list(runtime.progress(range(3), desc="loud")) == [0, 1, 2]
    assert "loud" in capsys.readouterr().err
