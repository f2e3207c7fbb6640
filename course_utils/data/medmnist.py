"""MedMNIST (Yang et al., 2023) from its official ``.npz`` files -- real medical images, opt-in.

MedMNIST v2 ships each 2-D data set as one NumPy archive, e.g. ``breastmnist.npz`` (breast
ultrasound, benign/normal vs malignant, 780 images) or ``pneumoniamnist.npz`` (paediatric chest
X-rays, normal vs pneumonia, 5 856 images), 28 x 28 by default (``<name>_64.npz`` etc. for larger
sizes). An archive holds six arrays,

    train_images (N, H, W) uint8   train_labels (N, 1) uint8
    val_images   ...               val_labels   ...
    test_images  ...               test_labels  ...

``load_medmnist(name, split, root)`` reads them from ``root``. The course runs offline: nothing is
downloaded unless ``COURSE_ONLINE=1`` (then a missing file is fetched from the data set's Zenodo
record with ``urllib``). Splits are the official ones; they are patient-disjoint where the
source data allowed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from course_utils.data.opt_in import ONLINE_ENV, DatasetNotAvailable, online  # noqa: F401  (re-exported)

DATASETS = {"breastmnist": ("normal/benign", "malignant"), "pneumoniamnist": ("normal", "pneumonia")}
SPLITS = ("train", "val", "test")
URL = "https://zenodo.org/records/10519652/files/{file}?download=1"


def filename(name: str, size: int = 28) -> str:
    """``breastmnist.npz`` for size 28, ``breastmnist_64.npz`` for 64, ..."""
    if name not in DATASETS:
        raise ValueError(f"name={name!r}: choose one of {sorted(DATASETS)}.")
    if size not in (28, 64, 128, 224):
        raise ValueError(f"size={size}: MedMNIST ships 28, 64, 128 or 224 pixels.")
    return f"{name}.npz" if size == 28 else f"{name}_{size}.npz"


def load_medmnist(name: str = "breastmnist", split: str = "train", root: Union[str, Path] = "data", size: int = 28,
                  download: Optional[bool] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 1, H, W) float in [0, 1], labels (N,) long) of one official split, read from ``root``.

    ``download`` defaults to ``COURSE_ONLINE=1``; without it a missing file raises ``DatasetNotAvailable``.
    """
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: choose one of {SPLITS}.")
    path = Path(root) / filename(name, size)
    download = online() if download is None else download
    if not path.exists() and download:
        import urllib.request

        path.parent.mkdir(parents=True, exist_ok=True)
        urllib.request.urlretrieve(URL.format(file=path.name), path)
    if not path.exists():
        raise DatasetNotAvailable(f"{path} is missing. Set {ONLINE_ENV}=1 to download it from Zenodo, or copy the "
                                  f"official MedMNIST file there.")
    with np.load(path) as archive:
        keys = (f"{split}_images", f"{split}_labels")
        missing = [k for k in keys if k not in archive.files]
        if missing:
            raise ValueError(f"{path} is not a MedMNIST archive: {missing} missing (it has {archive.files}).")
        images, labels = archive[keys[0]], archive[keys[1]]
    if images.ndim != 3 or len(images) != len(labels):
        raise ValueError(f"{path}: expected {split}_images (N, H, W) and {split}_labels (N, 1), "
                         f"got {images.shape} and {labels.shape}.")
    x = torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]  # (N, 1, H, W)
    y = torch.from_numpy(labels.reshape(len(labels)).astype(np.int64))  # (N,)
    return x, y
