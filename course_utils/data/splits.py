"""Patient-level splits: every image of a patient on the same side (Chapter 8b).

Medical data sets hold several images per patient (two mammography views, follow-up scans). A split
of the *images* at random puts a patient's second view in training while the first is tested, and
a model that recognises patients looks excellent. The split must be drawn over the patients:

    P = distinct ids,  test patients = the first round(test_fraction · |P|) of a seeded permutation of P,
    test images = { i : patients[i] ∈ test patients },  train images = the rest.
"""
from __future__ import annotations

import torch
from torch import Tensor


def patient_split(patients: Tensor, test_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """(train_idx, test_idx): sorted ``torch.long`` image indices; no patient on both sides.

    ``patients`` (N,) holds each image's patient id; ``round(test_fraction * P)`` of the P distinct
    patients, drawn with ``torch.Generator().manual_seed(seed)``, go to the test set with all their images.
    """
    patients = torch.as_tensor(patients)
    if patients.dim() != 1:
        raise ValueError(f"patients must be one id per image, shape (N,); got shape {tuple(patients.shape)}.")
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must lie in [0, 1], got {test_fraction}.")
    ids = torch.unique(patients)  # (P,) distinct patients, sorted
    perm = torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))
    test_ids = ids[perm[:round(test_fraction * len(ids))]]
    is_test = torch.isin(patients, test_ids)  # (N,): every image follows its patient
    return (~is_test).nonzero().flatten(), is_test.nonzero().flatten()  # sorted, torch.long
