"""Correct answers to Chapter 8's exercises, written differently from the book's reference.

Each string is the complete source of an exercise cell (imports first). The first answer of each
exercise computes the same values as the reference (for ``patient_split``: the same random draw),
so a chapter run with it prints the same numbers; the others take another valid route (float64,
numpy, loops, another random generator, the FP budget compared as a count).
"""

FOCAL_LOGSIGMOID = '''
import torch
import torch.nn.functional as F


def binary_focal_loss(logits, targets, alpha=0.25, gamma=2.0):
    """Mean of -alpha_t (1 - p_t)^gamma log(p_t); logits, targets: same shape, targets in {0, 1}."""
    positive = targets > 0.5
    # log p_t = log sigmoid(z) for y = 1, log sigmoid(-z) = log(1 - sigmoid(z)) for y = 0: stable
    log_pt = torch.where(positive, F.logsigmoid(logits), F.logsigmoid(-logits))
    alpha_t = torch.where(positive, torch.full_like(logits, alpha), torch.full_like(logits, 1 - alpha))
    return (-alpha_t * (1 - log_pt.exp()) ** gamma * log_pt).mean()
'''

FOCAL_SOFTPLUS_FLOAT64 = '''
import torch
import torch.nn.functional as F


def binary_focal_loss(logits, targets, alpha=0.25, gamma=2.0):
    """Mean of -alpha_t (1 - p_t)^gamma log(p_t), computed in float64."""
    z, y = logits.double(), targets.double()
    # -log p = softplus(-z) and -log(1 - p) = softplus(z)
    nll = y * F.softplus(-z) + (1 - y) * F.softplus(z)  # -log p_t
    p_t = torch.exp(-nll)
    weight = alpha * y + (1 - alpha) * (1 - y)
    total = (weight * (1 - p_t).pow(gamma) * nll).sum()
    return (total / z.numel()).to(logits.dtype)
'''

SENS_CUMSUM = '''
import torch


def sensitivity_at_fp(scores, hits, n_lesions, n_images, fppi):
    """Per-lesion sensitivity at <= fppi false positives per image. scores (D,), hits (D,) bool."""
    s, order = torch.sort(scores.double(), descending=True, stable=True)
    h = hits[order].bool()
    tp = torch.cumsum(h.long(), 0)  # hits among the first k marks
    fp = torch.cumsum((~h).long(), 0)  # false positives among the first k marks
    group_end = torch.ones(len(s), dtype=torch.bool)
    group_end[:-1] = s[1:] != s[:-1]  # tied scores enter together: stop only after the last of a group
    ok = group_end & (fp.double() / n_images <= fppi + 1e-12)
    if not ok.any():
        return 0.0
    return tp[ok].max().item() / n_lesions
'''

SENS_PYTHON_LOOPS = '''
def sensitivity_at_fp(scores, hits, n_lesions, n_images, fppi):
    """Per-lesion sensitivity at <= fppi false positives per image, with plain Python lists."""
    marks = sorted(zip(scores.tolist(), hits.tolist()), key=lambda mark: -mark[0])
    best, tp, fp, i = 0.0, 0, 0, 0
    while i < len(marks):
        j = i
        while j < len(marks) and marks[j][0] == marks[i][0]:  # the whole group of tied scores
            tp += bool(marks[j][1])
            fp += not marks[j][1]
            j += 1
        if fp <= fppi * n_images + 1e-9:  # the budget as a count of false positives
            best = max(best, tp / n_lesions)
        i = j
    return float(best)
'''

SPLIT_SET_MEMBERSHIP = '''
import torch


def patient_split(patients, test_fraction, seed):
    """Split image indices so that no patient is on both sides; test_fraction of the patients in test."""
    ids = patients.unique(sorted=True)  # (P,)
    order = torch.randperm(ids.numel(), generator=torch.Generator().manual_seed(seed))
    n_test = round(test_fraction * ids.numel())
    test_ids = set(ids[order[:n_test]].tolist())
    is_test = torch.tensor([p in test_ids for p in patients.tolist()], dtype=torch.bool)
    index = torch.arange(len(patients))
    return index[~is_test], index[is_test]
'''

SPLIT_NUMPY_RNG = '''
import numpy as np
import torch


def patient_split(patients, test_fraction, seed):
    """Another random draw: numpy's generator chooses the test patients."""
    ids = np.unique(patients.numpy())
    rng = np.random.default_rng(seed)
    test_ids = rng.choice(ids, size=round(test_fraction * len(ids)), replace=False)
    is_test = np.isin(patients.numpy(), test_ids)
    return torch.from_numpy(np.flatnonzero(~is_test)).long(), torch.from_numpy(np.flatnonzero(is_test)).long()
'''

ALTERNATIVES = {
    "medical.binary_focal_loss": [FOCAL_LOGSIGMOID, FOCAL_SOFTPLUS_FLOAT64],
    "medical.sensitivity_at_fp": [SENS_CUMSUM, SENS_PYTHON_LOOPS],
    "medical.patient_split": [SPLIT_SET_MEMBERSHIP, SPLIT_NUMPY_RNG],
}
