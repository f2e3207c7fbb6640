"""Phantom chest X-rays: lungs, ribs, heart, and an opacity pattern for three labels.

A frontal chest radiograph (values in [0, 1], size N x N) is drawn as

    body     a bright rounded rectangle (soft tissue), with two dark lung fields (ellipses, air)
    heart    a bright blob overlapping the lower left lung (the patient's left: image right)
    ribs     bright thin arcs across the lungs, y_k(x) = y₀ + k·Δ + c (x − x_m)²  (k = 0..K-1)
    opacity  label 0 "normal": none;
             label 1 "pneumonia-like": one dense *lobar consolidation* -- a bright blob in one lung;
             label 2 "COVID-like": faint *bilateral peripheral ground-glass* -- patchy haze near
             the outer edge of both lungs (filtered noise times a peripheral weight)

then Gaussian blur and noise. Patient pose (shift, lung size, rib spacing) and texture vary. The
labelled task is the three-way classification; the unlabelled images of the same generator are
what self-supervised pretraining (masked autoencoding) uses. A toy: it keeps the *kind* of signal
(local dense vs diffuse bilateral) and nothing of real radiographs' anatomy, devices or artefacts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

CLASS_NAMES = ("normal", "pneumonia-like", "COVID-like")
# Image i draws from ``default_rng([seed, i])``; the labels from ``default_rng([seed, LABEL_STREAM])``, a
# stream tag no image index reaches (a large prime), so that no image shares its random numbers with the labels.
LABEL_STREAM = 10_000_019


@dataclass
class ChestXrayConfig:
    image_size: int = 32
    opacity: float = 0.35  # added density of a consolidation (ground glass: about half of it)
    noise: float = 0.03
    class_probs: tuple = (1 / 3, 1 / 3, 1 / 3)  # of normal, pneumonia-like, COVID-like

    def __post_init__(self):
        if self.image_size < 16:
            raise ValueError(f"image_size={self.image_size}: use at least 16 pixels.")
        if len(self.class_probs) != 3 or min(self.class_probs) < 0 or abs(sum(self.class_probs) - 1) > 1e-6:
            raise ValueError(f"class_probs={self.class_probs}: three non-negative numbers summing to 1.")


def _ellipse(y, x, cy, cx, ry, rx, soft=1.0):
    d = np.sqrt(((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2)
    return 1 / (1 + np.exp((d - 1) * min(ry, rx) / soft))  # soft indicator


def chest_xray(label: int, config: ChestXrayConfig, rng: np.random.Generator) -> np.ndarray:
    """One phantom radiograph of class ``label`` (0, 1, 2): float32 (N, N) in [0, 1]."""
    if label not in (0, 1, 2):
        raise ValueError(f"label={label} must be 0 (normal), 1 (pneumonia-like) or 2 (COVID-like).")
    n = config.image_size
    y, x = np.mgrid[:n, :n].astype(np.float64) + 0.5
    s = n / 32
    cx, cy = n / 2 + rng.uniform(-1, 1) * s, n / 2 + rng.uniform(-1, 1) * s
    img = 0.25 + 0.45 * _ellipse(y, x, cy + 2 * s, cx, 15 * s, 14 * s, 2 * s)  # the body
    ry, rx, gap = rng.uniform(9, 11) * s, rng.uniform(4.5, 5.5) * s, rng.uniform(6, 7) * s
    lungs = []
    for side in (-1, 1):
        lung = _ellipse(y, x, cy, cx + side * gap, ry, rx, s)  # (n, n) soft
        lungs.append(lung)
        img = img - 0.35 * lung
    heart = _ellipse(y, x, cy + 4 * s, cx + 2.5 * s, 4.5 * s, 5 * s, s)
    img = img + 0.2 * heart
    spacing, curve = rng.uniform(3.2, 4.0) * s, rng.uniform(0.02, 0.04) / s
    for k in range(-3, 4):
        for side in (-1, 1):
            xm = cx + side * gap
            yk = cy + k * spacing - curve * (x - xm) ** 2 * 3 + 2 * s  # arcs open downward
            rib = np.exp(-((y - yk) ** 2) / (2 * (0.5 * s) ** 2)) * lungs[(side + 1) // 2]
            img = img + 0.1 * rib
    lung_any = np.maximum(*lungs)
    if label == 1:  # lobar consolidation: one dense blob inside one lung
        side = rng.choice((-1, 1))
        by, bx = cy + rng.uniform(-5, 6) * s, cx + side * gap + rng.uniform(-1.5, 1.5) * s
        blob = _ellipse(y, x, by, bx, rng.uniform(2.5, 4) * s, rng.uniform(2.5, 3.5) * s, s)
        img = img + config.opacity * blob * lungs[(side + 1) // 2]
    elif label == 2:  # bilateral peripheral ground glass
        haze = gaussian_filter(rng.standard_normal((n, n)), 1.5 * s)
        haze = np.clip(haze / haze.std() + 0.5, 0, None)
        periphery = np.clip(np.abs(x - cx) - gap + 0.5 * rx, 0, None) / rx  # grows towards the outer edges
        img = img + 0.5 * config.opacity * haze * periphery * lung_any
    img = gaussian_filter(img, 0.5 * s) + config.noise * rng.standard_normal((n, n))
    return np.clip(img, 0, 1).astype(np.float32)


def make_chest_xrays(n: int, config: Optional[ChestXrayConfig] = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (n, 1, N, N) float in [0, 1], labels (n,) long); image i and its label depend only on (seed, i)."""
    if n < 0:
        raise ValueError(f"n={n} must be >= 0.")
    if n > LABEL_STREAM:
        raise ValueError(f"n={n}: at most {LABEL_STREAM:_} images, or an image would share the labels' random stream.")
    c = config if config is not None else ChestXrayConfig()
    labels = np.random.default_rng([seed, LABEL_STREAM]).choice(3, size=n, p=np.asarray(c.class_probs))  # (n,)
    images = [chest_xray(int(labels[i]), c, np.random.default_rng([seed, i])) for i in range(n)]
    images = np.stack(images) if n else np.zeros((0, c.image_size, c.image_size), np.float32)
    return torch.from_numpy(images)[:, None], torch.from_numpy(labels).long()
