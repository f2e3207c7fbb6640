"""A small CNN classifier that *judges* generated images: its predictions and its features.

Trained on the real images of a data set, it rates a generator's samples without a person looking:

* its predicted classes give the **class coverage** of a set of samples (how many classes appear,
  how evenly -- ``course_utils.metrics.generative.class_coverage``), and, for a conditional
  generator, how often a sample is of the class that was asked for;
* its penultimate-layer ``features()`` give the **Fréchet distance** between real and generated
  feature sets (``course_utils.metrics.generative.frechet_distance``) -- the FID recipe with the
  course's own feature extractor in place of Inception-v3, whose ImageNet weights would have to be
  downloaded and which never saw 16 x 16 digits.

Architecture: two stages of (3x3 conv -> batch norm -> ReLU) x 2 and 2x2 max pooling, global average
pooling to a ``feature_dim`` vector, then a linear layer to the class logits:

    features(x) = GAP(stage_2(stage_1(x)))      (B, feature_dim)
    logits(x)   = W features(x) + b             (B, num_classes)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


@dataclass
class JudgeConfig:
    in_channels: int = 1  # image channels
    num_classes: int = 10
    width: int = 32  # channels of the first stage; the second has 2 * width = feature_dim

    def __post_init__(self):
        if min(self.in_channels, self.num_classes, self.width) < 1:
            raise ValueError("in_channels, num_classes and width must be >= 1.")

    @property
    def feature_dim(self) -> int:
        return 2 * self.width


def _stage(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class Judge(nn.Module):
    """images (B, C, H, W) -> class logits (B, K); ``features`` -> (B, feature_dim)."""

    def __init__(self, config: JudgeConfig = JudgeConfig()):
        super().__init__()
        self.config = c = config
        self.body = nn.Sequential(_stage(c.in_channels, c.width), _stage(c.width, c.feature_dim))
        self.head = nn.Linear(c.feature_dim, c.num_classes)

    def features(self, x: Tensor) -> Tensor:
        """The penultimate layer: global average of the last feature map, (B, feature_dim)."""
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"images must have shape (B, {self.config.in_channels}, H, W), got {tuple(x.shape)}.")
        if min(x.shape[-2:]) < 4:
            raise ValueError(f"images of {tuple(x.shape[-2:])} pixels are too small: the judge pools twice (>= 4).")
        return self.body(x).mean((-2, -1))  # (B, feature_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # (B, num_classes)

    @torch.no_grad()
    def embed(self, x: Tensor, batch_size: int = 512) -> Tensor:
        """Features of many images in eval mode, batch by batch: (N, feature_dim)."""
        self.eval()
        device = next(self.parameters()).device
        return torch.cat([self.features(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])

    @torch.no_grad()
    def predict(self, x: Tensor, batch_size: int = 512) -> Tensor:
        """Predicted classes in eval mode: (N,) int64."""
        self.eval()
        device = next(self.parameters()).device
        return torch.cat([self(x[i:i + batch_size].to(device)).argmax(1).cpu() for i in range(0, len(x), batch_size)])


def train_judge(images: Tensor, labels: Tensor, config: JudgeConfig = JudgeConfig(), steps: int = 300,
                batch_size: int = 64, lr: float = 3e-3, shift: int = 1, seed: int = 0,
                progress: Callable = lambda it, **kw: it) -> Judge:
    """Train a ``Judge`` on real (images, labels) with Adam, a one-cycle schedule and random shifts.

    ``shift``: each batch is rolled by up to ``shift`` pixels (a cheap augmentation that makes the
    judge robust to the small misplacements generated images have). Returns the model in eval mode.
    """
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels.")
    torch.manual_seed(seed)
    model = Judge(config)
    device = images.device
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in progress(range(steps), desc="judge"):
        idx = torch.randint(len(images), (batch_size,), generator=g)
        x = images[idx]  # (B, C, H, W)
        if shift:
            dy, dx = torch.randint(-shift, shift + 1, (2,), generator=g).tolist()
            x = torch.roll(x, (dy, dx), dims=(-2, -1))
        loss = F.cross_entropy(model(x), labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return model.eval()
