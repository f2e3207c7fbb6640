"""A small CNN classifier that *judges* generated images: its predictions and its features.

Trained on the real images of a data set, it rates a generator's samples without a person looking:

* its predicted classes give the **class coverage** of a set of samples (how many classes appear,
  how evenly -- ``course_utils.metrics.generative.class_coverage``), and, for a conditional
  generator, how often a sample is of the class that was asked for;
* its penultimate-layer ``features()`` give the **Fréchet distance** between real and generated
  feature sets (``course_utils.metrics.generative.frechet_distance``) -- the FID recipe with the
  course's own feature extractor in place of Inception-v3, whose ImageNet weights would have to be
  downloaded and which never saw 16 x 16 digits.

The judge is the course's small CNN (``course_utils.models.classifier.SmallCNN``, no dropout);
this module trains it (:func:`train_judge`) and keeps one trained judge per recipe in the model
cache (:func:`load_or_train_judge`), so chapters that rate digits share one judge.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from course_utils import cache
from course_utils.models.classifier import SmallCNN, SmallCNNConfig
from course_utils.train import History, fit, move_model, resolve_device, seeded


def train_judge(judge: SmallCNN, images: Tensor, labels: Tensor, steps: int = 300, batch_size: int = 64,
                lr: float = 3e-3, shift: int = 1, seed: int = 0, device=None) -> History:
    """Train a judge (a ``SmallCNN``) on real (images, labels) with Adam, one-cycle, random shifts.

    L = CE(judge(roll(x, δ)), y), δ ~ U{-shift..shift}² per batch: rolling each batch by a few
    pixels makes the judge robust to the small misplacements generated images have. Returns the
    History; the judge is left in eval mode on ``device``.
    """
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels.")

    def roll(g, x, y):
        if shift:
            dy, dx = torch.randint(-shift, shift + 1, (2,), generator=g)  # one shift for the batch
            H, W = x.shape[-2:]
            # torch.roll by (dy, dx), written as indexing so the shift never leaves the tensor world:
            # out[..., i, j] = x[..., (i − dy) mod H, (j − dx) mod W]
            x = x[..., (torch.arange(H) - dy) % H, :][..., (torch.arange(W) - dx) % W]  # (B, C, H, W)
        return x, y

    return fit(judge, lambda m, x, y: F.cross_entropy(m(x), y), (images, labels), steps=steps,
               batch_size=batch_size, lr=lr, optimizer="adam", augment=roll, seed=seed, device=device, desc="judge")


def load_or_train_judge(images: Tensor, labels: Tensor, config: Optional[SmallCNNConfig] = None, steps: int = 300,
                        batch_size: int = 64, lr: float = 3e-3, shift: int = 1, seed: int = 0,
                        device=None) -> tuple[SmallCNN, str]:
    """A judge built from ``seed`` and trained by :func:`train_judge` -- once per recipe: it is kept
    in the model cache (``course_utils.cache``) and loaded from there afterwards.

    The key covers the config, every training setting and a fingerprint of the images and labels,
    so a judge is loaded only for exactly the recipe it was trained with. Returns (judge in eval
    mode on ``device``, how it was obtained).
    """
    config = config if config is not None else SmallCNNConfig()
    recipe = {"config": asdict(config), "steps": steps, "batch_size": batch_size, "lr": lr, "shift": shift,
              "seed": seed, "images": cache.fingerprint(images), "labels": cache.fingerprint(labels)}

    def build():
        with seeded(seed):  # the same initial weights every time, the global generator untouched
            return SmallCNN(config)

    def train(judge):
        train_judge(judge, images, labels, steps, batch_size, lr, shift, seed, device)

    judge, how = cache.load_or_train("judge", recipe, build, train)
    return move_model(judge, resolve_device(device)).eval(), how
