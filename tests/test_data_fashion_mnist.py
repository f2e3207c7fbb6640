"""The Fashion-MNIST loader on a tiny fixture written here in the IDX format (no download)."""
import gzip
import struct

import numpy as np
import pytest
import torch
from torchvision.datasets.mnist import read_image_file, read_label_file

from course_utils.data import fashion_mnist
from course_utils.data.fashion_mnist import DatasetNotAvailable, load_fashion_mnist, read_idx


def write_idx(path, array, compress=False):
    # IDX: two zero bytes, type code 0x08 (uint8), the number of dims, big-endian uint32 sizes, data
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


@pytest.fixture
def fixture_split():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8), rng.integers(0, 10, size=7, dtype=np.uint8)


def test_read_idx_agrees_with_torchvision(tmp_path, fixture_split):
    images, labels = fixture_split
    write_idx(tmp_path / "img", images)
    write_idx(tmp_path / "lab", labels)
    assert np.array_equal(read_idx(tmp_path / "img"), images)
    assert torch.equal(torch.from_numpy(read_idx(tmp_path / "img")), read_image_file(str(tmp_path / "img")))
    assert torch.equal(torch.from_numpy(read_idx(tmp_path / "lab")).long(), read_label_file(str(tmp_path / "lab")))


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("layout", ["flat", "torchvision"])
def test_load_from_a_folder(tmp_path, fixture_split, compress, layout, monkeypatch):
    monkeypatch.delenv(fashion_mnist.ONLINE_ENV, raising=False)
    images, labels = fixture_split
    folder = tmp_path if layout == "flat" else tmp_path / "FashionMNIST" / "raw"
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "t10k-images-idx3-ubyte", images, compress)
    write_idx(folder / "t10k-labels-idx1-ubyte", labels, compress)
    x, y = load_fashion_mnist(tmp_path, split="test")
    assert x.dtype == torch.uint8 and x.shape == (7, 28, 28) and torch.equal(x, torch.from_numpy(images))
    assert y.dtype == torch.int64 and torch.equal(y, torch.from_numpy(labels).long())


def test_missing_files_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(fashion_mnist.ONLINE_ENV, "0")
    assert not fashion_mnist.online()
    with pytest.raises(DatasetNotAvailable, match="COURSE_ONLINE=1"):
        load_fashion_mnist(tmp_path, split="train")
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist(tmp_path, split="validation")


def test_corrupt_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x03abc")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    write_idx(tmp_path / "short", np.zeros((2, 3), dtype=np.uint8))
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-1])
    with pytest.raises(ValueError, match="header promises"):
        read_idx(tmp_path / "short")
