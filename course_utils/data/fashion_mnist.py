"""Fashion-MNIST (Xiao et al., 2017) from the standard IDX files -- the lecture's GAN example, opt-in.

Fashion-MNIST is 70 000 grey 28 x 28 images of clothes in 10 classes, shipped as four IDX files
(``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``, each optionally gzipped). The IDX format: a big-endian header --

    bytes 0-1: 0, bytes 2: type code (0x08 = unsigned byte), byte 3: number of dimensions n,
    then n big-endian uint32 sizes -- then the values, row-major.

``load_fashion_mnist(root)`` reads them from ``root`` (or torchvision's ``root/FashionMNIST/raw``).
The course runs offline, so nothing is downloaded unless ``COURSE_ONLINE=1``: then, if the files
are missing, ``torchvision.datasets.FashionMNIST(root, download=True)`` fetches them.
"""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import Union

import numpy as np
import torch

from course_utils.data.opt_in import ONLINE_ENV, DatasetNotAvailable, online  # noqa: F401  (re-exported)

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"),
           0x0E: np.dtype(">f8")}


def read_idx(path: Union[str, Path]) -> np.ndarray:
    """Read one IDX file (optionally ``.gz``) into a numpy array of its shape and type."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (it must start with two zero bytes).")
    code, ndim = data[2], data[3]
    if code not in _DTYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x}.")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_DTYPES[code])
    expected = int(np.prod(shape)) * dtype.itemsize
    offset = 4 + 4 * ndim
    if len(data) - offset != expected:
        raise ValueError(f"{path}: the header promises {shape} values ({expected} bytes), "
                         f"the file holds {len(data) - offset} bytes.")
    return np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


def _find(root: Path, name: str):
    for folder in (root, root / "FashionMNIST" / "raw"):
        for candidate in (folder / name, folder / (name + ".gz")):
            if candidate.exists():
                return candidate
    return None


def load_fashion_mnist(root: Union[str, Path] = "data", split: str = "train", download: bool = None):
    """(images (N, 28, 28) uint8, labels (N,) int64) of a split, "train" or "test", read from ``root``.

    ``download`` defaults to ``COURSE_ONLINE=1``; without it a missing file raises
    ``DatasetNotAvailable`` with a message saying how to get the files.
    """
    if split not in FILES:
        raise ValueError(f"split={split!r}: choose 'train' or 'test'.")
    root = Path(root)
    download = online() if download is None else download
    paths = [_find(root, name) for name in FILES[split]]
    if None in paths and download:
        from torchvision.datasets import FashionMNIST

        FashionMNIST(str(root), train=split == "train", download=True)
        paths = [_find(root, name) for name in FILES[split]]
    if None in paths:
        missing = [n for n, p in zip(FILES[split], paths) if p is None]
        raise DatasetNotAvailable(
            f"Fashion-MNIST files {missing} are not in {root} (or {root / 'FashionMNIST' / 'raw'}). "
            f"Set {ONLINE_ENV}=1 to download them with torchvision, or copy the IDX files there.")
    images, labels = (read_idx(p) for p in paths)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"images {images.shape} and labels {labels.shape} do not form a data set.")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))
