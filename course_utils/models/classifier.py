"""A small CNN classifier -- the course's one image classifier for small images.

Used to *judge* generated images (Chapters 4 and 7: ``course_utils.models.judge``) and to score
mass crops in the mammography pipeline (Chapter 8: ``course_utils.models.cad``).

Architecture: two stages of (3x3 conv -> batch norm -> ReLU) x 2 and 2x2 max pooling, global average
pooling to a ``feature_dim = 2 * width`` vector, dropout, then a linear layer to the logits:

    features(x) = GAP(stage_2(stage_1(x)))          (B, feature_dim)
    logits(x)   = W dropout(features(x)) + b        (B, num_classes), or (B,) when num_classes == 1
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
from torch import Tensor


@dataclass
class SmallCNNConfig:
    in_channels: int = 1  # image channels
    num_classes: int = 10  # 1: one logit per image (a binary classifier), returned as shape (B,)
    width: int = 32  # channels of the first stage; the second has 2 * width = feature_dim
    dropout: float = 0.0  # before the linear head

    def __post_init__(self):
        if min(self.in_channels, self.num_classes, self.width) < 1:
            raise ValueError("in_channels, num_classes and width must be >= 1.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout} must be in [0, 1).")

    @property
    def feature_dim(self) -> int:
        return 2 * self.width


def _stage(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class SmallCNN(nn.Module):
    """images (B, C, H, W) -> logits (B, K) (or (B,) for K = 1); ``features`` -> (B, feature_dim)."""

    def __init__(self, config: Optional[SmallCNNConfig] = None):
        super().__init__()
        self.config = c = config if config is not None else SmallCNNConfig()
        self.body = nn.Sequential(_stage(c.in_channels, c.width), _stage(c.width, c.feature_dim))
        self.head = nn.Sequential(nn.Dropout(c.dropout), nn.Linear(c.feature_dim, c.num_classes))

    def features(self, x: Tensor) -> Tensor:
        """The penultimate layer: global average of the last feature map, (B, feature_dim)."""
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"images must have shape (B, {self.config.in_channels}, H, W), got {tuple(x.shape)}.")
        if min(x.shape[-2:]) < 4:
            raise ValueError(f"images of {tuple(x.shape[-2:])} pixels are too small: the classifier pools twice (>= 4).")
        return self.body(x).mean((-2, -1))  # (B, feature_dim)

    def forward(self, x: Tensor) -> Tensor:
        logits = self.head(self.features(x))  # (B, num_classes)
        return logits[:, 0] if self.config.num_classes == 1 else logits

    def embed(self, x: Tensor, batch_size: int = 512) -> Tensor:
        """Features of many images in eval mode, chunk by chunk, on the CPU: (N, feature_dim)."""
        from course_utils.train import predict

        return predict(self, x, lambda m, xb: m.features(xb), batch_size=batch_size, device=_device_of(self))

    def predict(self, x: Tensor, batch_size: int = 512) -> Tensor:
        """Predicted classes in eval mode: (N,) int64 (for one logit: 1 where the logit is > 0)."""
        from course_utils.train import predict

        logits = predict(self, x, batch_size=batch_size, device=_device_of(self))
        return (logits > 0).long() if self.config.num_classes == 1 else logits.argmax(1)


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device
