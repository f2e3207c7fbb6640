"""Plot helpers shared by the chapters (matplotlib only)."""
from __future__ import annotations

from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np


def attention_heatmap(
    weights,
    queries: Sequence[str],
    keys: Sequence[str],
    ax: Optional[plt.Axes] = None,
    title: str = "",
    annotate: Optional[bool] = None,
):
    """Show an attention probability matrix (T_q, T_k): rows are queries, columns keys.

    Cells are annotated with their probability when the matrix is small (<= 8 x 8 by default),
    like the lecture's *Hello / I / love / you* table.
    """
    w = np.asarray(getattr(weights, "detach", lambda: weights)(), dtype=float)
    if w.ndim != 2 or w.shape != (len(queries), len(keys)):
        raise ValueError(f"weights of shape {w.shape} do not match {len(queries)} queries x {len(keys)} keys")
    ax = ax or plt.gca()
    ax.imshow(w, cmap="Blues", vmin=0.0, vmax=max(1e-9, w.max()))
    ax.set_xticks(range(len(keys)), keys, rotation=45, ha="right")
    ax.set_yticks(range(len(queries)), queries)
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    if title:
        ax.set_title(title)
    if annotate is None:
        annotate = max(w.shape) <= 8
    if annotate:
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                ax.text(j, i, f"{w[i, j]:.2f}", ha="center", va="center",
                        color="white" if w[i, j] > 0.6 * w.max() else "black", fontsize=8)
    return ax


def show_images(images, nrow: int, ax: Optional[plt.Axes] = None, title: str = "",
                value_range=(-1.0, 1.0), ink_on_paper: bool = True):
    """A grid of images (N, C, H, W) on one axis, C = 1 or 3, values in ``value_range``.

    Grey images are drawn dark ink on white paper when ``ink_on_paper`` (digits look like
    digits); colour images as they are. One pixel of white padding separates the images.
    """
    import torch
    from torchvision.utils import make_grid

    images = torch.as_tensor(images).detach().float().cpu()
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"show_images needs (N, 1 or 3, H, W) images, got shape {tuple(images.shape)}")
    low, high = value_range
    images = ((images - low) / (high - low)).clamp(0, 1)  # (N, C, H, W) in [0, 1]
    if images.shape[1] == 1 and ink_on_paper:
        images = 1 - images
    grid = make_grid(images, nrow=nrow, padding=1, pad_value=1.0)  # (3, H', W')
    ax = ax or plt.gca()
    ax.imshow(grid.permute(1, 2, 0).numpy(), vmin=0, vmax=1)
    if title:
        ax.set_title(title, fontsize=9)
    ax.axis("off")
    return ax
