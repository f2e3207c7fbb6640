"""Losses for imbalanced problems: the focal loss of RetinaNet (Lin et al., 2017).

A one-stage detector scores ~10⁴ anchors per image of which a handful hold an object. With
binary cross-entropy every easy background anchor (p ≈ 0 for a negative) still adds a little
loss, and ten thousand littles swamp the few hard, informative examples. The focal loss scales
the cross-entropy by how *wrong* the prediction is:

    p_t = p if y = 1 else 1 - p                       (the probability of the true label)
    α_t = α if y = 1 else 1 - α                       (optional class weight)
    FL(p_t) = -α_t (1 - p_t)^γ log(p_t)

With γ = 0 (and no α) it is the binary cross-entropy; with γ = 2 an example already classified
with p_t = 0.9 weighs 100 times less than with plain cross-entropy. ``sigmoid_focal_loss`` is
compared with ``torchvision.ops.sigmoid_focal_loss`` in ``tests/test_models_losses.py``; the
medical chapter reuses it for the rare malignant masses.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

REDUCTIONS = ("none", "mean", "sum")


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: Optional[float] = 0.25,
                       gamma: float = 2.0, reduction: str = "none") -> torch.Tensor:
    """Focal loss on logits with binary targets (same shape); ``alpha=None`` or < 0 turns α off.

    FL = -α_t (1 - p_t)^γ log(p_t),  p = sigmoid(logits),  p_t = p·y + (1 - p)(1 - y)
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}: choose from {REDUCTIONS}.")
    if logits.shape != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} must have the same shape.")
    if gamma < 0:
        raise ValueError(f"gamma={gamma} must be >= 0 (gamma = 0 is the cross-entropy).")
    targets = targets.to(logits.dtype)
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")  # -log(p_t), stable
    p_t = p * targets + (1 - p) * (1 - targets)
    # FL = -α_t (1 - p_t)^γ log(p_t)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None and alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss
