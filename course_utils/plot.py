"""The course's figure style and the plot helpers shared by the chapters (matplotlib only).

:func:`use_course_style` (applied by ``course_utils.runtime.setup``, so a chapter never calls it)
makes every figure legible where the site shows it:

* fonts: 12 pt (titles 13 pt). The site's text column is about 745 px wide at 1366 px: a figure up
  to 7.4 in (``figure.dpi`` 100) is shown at natural size, a 10 in one at 75 %, so even there no
  default text is under 9 pt as shown;
* default width 7 in (700 px), never wider than :data:`MAX_WIDTH_IN` = 10 in in the book;
* colours: the Okabe-Ito palette (distinguishable with every common colour-vision deficiency),
  with a second cue for lines (the dash pattern cycles too, so two curves differ in more than hue);
  images default to ``viridis``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

#: Okabe & Ito (2008), "Color Universal Design": blue, orange, bluish green, vermillion,
#: reddish purple, sky blue, yellow, black.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
#: The second cue: successive lines differ in dash pattern as well as colour.
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (8, 2)), (0, (1, 1)), (0, (3, 1, 1, 1)))
MAX_WIDTH_IN = 10.0

COURSE_STYLE = {
    "figure.figsize": (7.0, 4.2),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "figure.constrained_layout.use": False,
    "font.size": 12,
    "axes.titlesize": 13,
    "axes.labelsize": 12,
    "xtick.labelsize": 12,
    "ytick.labelsize": 12,
    "legend.fontsize": 12,
    "figure.titlesize": 14,
    "axes.prop_cycle": mpl.cycler(color=list(OKABE_ITO)) + mpl.cycler(linestyle=list(LINESTYLES)),
    "lines.linewidth": 1.8,
    "lines.markersize": 5,
    "image.cmap": "viridis",
    "axes.grid": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def use_course_style() -> dict:
    """Apply the course style to matplotlib's defaults; returns the settings applied.

    A line drawn with an explicit ``color=`` or ``linestyle=`` keeps it; only the defaults change.
    """
    mpl.rcParams.update(COURSE_STYLE)
    return dict(COURSE_STYLE)


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
                        color="white" if w[i, j] > 0.6 * w.max() else "black", fontsize=9)
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
