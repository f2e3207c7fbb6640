"""Selective search (Uijlings et al., 2013): R-CNN's region proposals by hierarchical grouping.

1. Over-segment the image with Felzenszwalb and Huttenlocher's graph-based method
   (``skimage.segmentation.felzenszwalb``; its ``scale`` sets how large the segments are).
2. Every segment is a region r with a size |r| (pixels), a bounding box and a colour histogram
   C_r (``bins`` bins per channel, L1-normalised). Compute the similarity of every pair of
   *adjacent* regions (im: the image),

       s_colour(a, b) = Σ_k min(C_a[k], C_b[k])                  (histogram intersection)
       s_size(a, b)   = 1 - (|a| + |b|) / |im|                    (merge small regions first)
       s_fill(a, b)   = 1 - (|BB_ab| - |a| - |b|) / |im|          (prefer regions that fit together)
       s(a, b) = s_colour + s_size + s_fill

3. Repeatedly merge the most similar pair into t = a ∪ b (C_t = (|a| C_a + |b| C_b) / (|a| + |b|),
   BB_t = union of the boxes), recompute t's similarity to its neighbours, until one region is
   left. *Every* region ever formed -- the segments and all merges -- is a proposal, so objects of
   all scales appear somewhere in the hierarchy.
4. Diversify: repeat for several segmentation scales and merge the lists (duplicates removed).

The original also uses a texture similarity and several colour spaces; the shapes scenes have
flat colours, so colour, size and fill are enough here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from skimage.segmentation import felzenszwalb


@dataclass
class SelectiveSearchConfig:
    scales: Sequence[float] = (20.0, 50.0, 100.0)  # Felzenszwalb scale per strategy (larger = bigger segments)
    sigma: float = 0.5  # Gaussian smoothing before segmenting
    min_size: int = 4  # smallest segment, in pixels
    bins: int = 25  # colour histogram bins per channel
    min_box: float = 3.0  # drop proposals narrower or lower than this many pixels


def _to_hwc(image) -> np.ndarray:
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
        if image.ndim == 3 and image.shape[0] in (1, 3):
            image = image.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3:
        raise ValueError(f"image must be (H, W, C), (C, H, W) or (H, W), got shape {image.shape}.")
    return image


def _similarity(a: dict, b: dict, image_area: int) -> float:
    colour = np.minimum(a["hist"], b["hist"]).sum()  # s_colour: histogram intersection
    size = 1.0 - (a["size"] + b["size"]) / image_area  # s_size
    x0, y0 = min(a["box"][0], b["box"][0]), min(a["box"][1], b["box"][1])
    x1, y1 = max(a["box"][2], b["box"][2]), max(a["box"][3], b["box"][3])
    fill = 1.0 - ((x1 - x0) * (y1 - y0) - a["size"] - b["size"]) / image_area  # s_fill
    return colour + size + fill  # s = s_colour + s_size + s_fill


def hierarchical_grouping(image, segments: np.ndarray, bins: int = 25) -> list:
    """Merge an over-segmentation bottom-up; return every region's xyxy box with its level.

    Returns a list of ``(box, level)``: level 0 are the segments, level k the k-th merge.
    """
    image = _to_hwc(image)
    H, W, C = image.shape
    if segments.shape != (H, W):
        raise ValueError(f"segments {segments.shape} must match the image's {(H, W)}.")
    regions = {}
    for r in np.unique(segments):
        ys, xs = np.nonzero(segments == r)
        pixels = image[ys, xs]  # (n, C)
        hist = np.concatenate([np.histogram(pixels[:, ch], bins=bins, range=(0.0, 1.0))[0] for ch in range(C)])
        regions[int(r)] = {"size": len(ys), "box": (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1),
                           "hist": hist / max(hist.sum(), 1), "level": 0}
    # Adjacent pairs: labels that touch horizontally or vertically.
    pairs = set()
    for a, b in ((segments[:, :-1], segments[:, 1:]), (segments[:-1, :], segments[1:, :])):
        touching = a != b
        for u, v in zip(a[touching].tolist(), b[touching].tolist()):
            pairs.add((min(u, v), max(u, v)))
    sims = {p: _similarity(regions[p[0]], regions[p[1]], H * W) for p in pairs}
    proposals = [(r["box"], 0) for r in regions.values()]
    next_id, level = max(regions) + 1, 0
    while sims:
        (i, j) = max(sims, key=sims.get)  # the most similar neighbours
        a, b = regions[i], regions[j]
        size = a["size"] + b["size"]
        level += 1
        regions[next_id] = {
            "size": size,
            "box": (min(a["box"][0], b["box"][0]), min(a["box"][1], b["box"][1]),
                    max(a["box"][2], b["box"][2]), max(a["box"][3], b["box"][3])),
            "hist": (a["size"] * a["hist"] + b["size"] * b["hist"]) / size,  # C_t, size-weighted
            "level": level,
        }
        proposals.append((regions[next_id]["box"], level))
        neighbours = {k for p in sims if i in p or j in p for k in p} - {i, j}
        sims = {p: s for p, s in sims.items() if i not in p and j not in p}
        for k in neighbours:
            sims[(k, next_id)] = _similarity(regions[k], regions[next_id], H * W)
        next_id += 1
    return proposals


def selective_search(image, config: Optional[SelectiveSearchConfig] = None, return_levels: bool = False):
    """Region proposals of one image: an (N, 4) float tensor of xyxy boxes (duplicates removed).

    ``image``: (3, H, W) tensor or (H, W, 3) array in [0, 1]. With ``return_levels`` also returns
    an (N, 2) tensor of (strategy index, merge level) for each proposal, to draw the hierarchy.
    """
    config = config if config is not None else SelectiveSearchConfig()
    img = _to_hwc(image)
    boxes, levels = [], []
    for si, scale in enumerate(config.scales):
        segments = felzenszwalb(img, scale=scale, sigma=config.sigma, min_size=config.min_size,
                                channel_axis=-1 if img.shape[2] > 1 else None)
        for box, level in hierarchical_grouping(img, segments, config.bins):
            boxes.append(box)
            levels.append((si, level))
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)  # (N, 4)
    levels = torch.tensor(levels, dtype=torch.long).reshape(-1, 2)
    wide = ((boxes[:, 2] - boxes[:, 0]) >= config.min_box) & ((boxes[:, 3] - boxes[:, 1]) >= config.min_box)
    boxes, levels = boxes[wide], levels[wide]
    _, first = np.unique(boxes.numpy(), axis=0, return_index=True)
    first = torch.as_tensor(np.sort(first))
    return (boxes[first], levels[first]) if return_levels else boxes[first]
