"""The MedMNIST loader on a tiny fixture written here in the official .npz format (no download)."""
import numpy as np
import pytest
import torch

from course_utils.data import medmnist
from course_utils.data.medmnist import DatasetNotAvailable, filename, load_medmnist


@pytest.fixture
def fixture_dir(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 6), ("val", 2), ("test", 3)):
        arrays[f"{split}_images"] = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 2, size=(n, 1), dtype=np.uint8)
    np.savez_compressed(tmp_path / "breastmnist.npz", **arrays)
    return tmp_path, arrays


def test_reads_every_split(fixture_dir):
    root, arrays = fixture_dir
    for split in ("train", "val", "test"):
        x, y = load_medmnist("breastmnist", split, root)
        raw = arrays[f"{split}_images"]
        assert x.shape == (len(raw), 1, 28, 28) and x.dtype == torch.float32
        assert torch.allclose(x[:, 0] * 255, torch.from_numpy(raw).float())
        assert torch.equal(y, torch.from_numpy(arrays[f"{split}_labels"][:, 0].astype(np.int64)))


def test_missing_file_offline(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_ONLINE", raising=False)
    with pytest.raises(DatasetNotAvailable, match="COURSE_ONLINE=1"):
        load_medmnist("pneumoniamnist", "train", tmp_path)


def test_download_only_when_online(tmp_path, monkeypatch):
    calls = []

    def fake_retrieve(url, path):
        calls.append(url)
        np.savez(path, train_images=np.zeros((1, 28, 28), np.uint8), train_labels=np.ones((1, 1), np.uint8))

    import urllib.request
    monkeypatch.setattr(urllib.request, "urlretrieve", fake_retrieve)
    monkeypatch.setenv("COURSE_ONLINE", "1")
    assert medmnist.online()
    x, y = load_medmnist("pneumoniamnist", "train", tmp_path)
    assert len(calls) == 1 and "pneumoniamnist.npz" in calls[0] and y.tolist() == [1]


def test_errors(fixture_dir, tmp_path):
    root, _ = fixture_dir
    with pytest.raises(ValueError, match="split"):
        load_medmnist("breastmnist", "dev", root)
    with pytest.raises(ValueError, match="name"):
        filename("chestmnist3d")
    with pytest.raises(ValueError, match="size"):
        filename("breastmnist", 32)
    assert filename("breastmnist", 64) == "breastmnist_64.npz"
    np.savez(tmp_path / "pneumoniamnist.npz", images=np.zeros((2, 28, 28)))
    with pytest.raises(ValueError, match="not a MedMNIST archive"):
        load_medmnist("pneumoniamnist", "train", tmp_path, download=False)
