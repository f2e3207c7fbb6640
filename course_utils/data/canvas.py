"""A miniature "NVIDIA Canvas": painted label maps and the scenes they stand for (Chapter 4, pix2pix).

NVIDIA Canvas lets you paint a *label map* -- flat colours meaning "sky", "water", "tree" -- and
renders a landscape from it. ``make_canvas_pairs`` does the same with the shapes scenes
(``course_utils.data.shapes``): the label map of a scene (0 background, 1 circle, 2 square,
3 triangle -- i.e. 1 + the index in ``shapes.SHAPES``) is

* the **sketch** (the input): each label painted in its flat colour from ``SKETCH_COLOURS``;
* the **target**: the scene rendered by ``render_canvas`` -- a sky gradient, shaded orange balls,
  brick walls and leafy green trees.

Everything in the target follows from the label map except the leaves' speckle, which is random:
the part an L1-trained generator can only blur.
"""
from __future__ import annotations

import numpy as np
import torch

from course_utils.data.shapes import ShapesConfig, ShapesDataset

SKETCH_COLOURS = np.array([[0.15, 0.15, 0.15], [0.95, 0.90, 0.20], [0.90, 0.20, 0.20], [0.20, 0.80, 0.30]],
                          dtype=np.float32)  # (4, 3): the flat "paint" of each label
SKY_TOP, SKY_BOTTOM = np.array([0.25, 0.45, 0.85]), np.array([0.80, 0.88, 0.95])
BALL, BRICK, MORTAR, LEAF = (np.array(c) for c in ([1.0, 0.6, 0.1], [0.70, 0.25, 0.15], [0.92, 0.88, 0.80],
                                                     [0.15, 0.55, 0.20]))


def render_canvas(label_map: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Render a label map (H, W) of ints (0 background, 1 circle, 2 square, 3 triangle) -> (3, H, W).

    * background: a sky, linear from SKY_TOP (row 0) to SKY_BOTTOM (last row);
    * circle: an orange ball, shaded 1 − 0.6 (d / r)², d the distance to the object's centre;
    * square: a brick wall, mortar lines every 4 rows from its top edge, joints every 4 columns,
      shifted by 2 in alternate courses;
    * triangle: a tree, leaf green times a random speckle in {0.6, 1.4} per pixel (not predictable).
    One object per connected label region is assumed (objects in a scene do not touch).
    """
    from scipy import ndimage

    H, W = label_map.shape
    t = np.linspace(0, 1, H)[:, None, None]  # (H, 1, 1)
    image = np.broadcast_to((1 - t) * SKY_TOP + t * SKY_BOTTOM, (H, W, 3)).copy()  # (H, W, 3)
    ys, xs = np.mgrid[0:H, 0:W] + 0.5  # pixel centres
    for label in (1, 2, 3):
        regions, n = ndimage.label(label_map == label)
        for k in range(1, n + 1):
            m = regions == k  # (H, W) one object
            rows, cols = np.nonzero(m)
            if label == 1:
                cy, cx, r = ys[m].mean(), xs[m].mean(), np.sqrt(m.sum() / np.pi)
                d2 = ((ys - cy) ** 2 + (xs - cx) ** 2) / r**2
                image[m] = BALL * (1 - 0.6 * np.clip(d2[m], 0, 1))[:, None]
            elif label == 2:
                i, j = rows - rows.min(), cols - cols.min()
                mortar = (i % 4 == 3) | ((j + 2 * ((i // 4) % 2)) % 4 == 3)
                image[rows, cols] = np.where(mortar[:, None], MORTAR, BRICK)
            else:
                speckle = rng.choice([0.6, 1.4], size=m.sum())
                image[m] = np.clip(LEAF * speckle[:, None], 0, 1)
    return image.transpose(2, 0, 1).astype(np.float32)  # (3, H, W)


def make_canvas_pairs(n: int, seed: int = 0, image_size: int = 32, max_objects: int = 3) -> dict:
    """n (sketch, scene) pairs from shapes scenes: {"sketch", "target": (n, 3, H, W), "labels": (n, H, W)}.

    The label map comes from the scene's masks and shape labels (0 background, 1 + shape index);
    the sketch paints it in SKETCH_COLOURS, the target is ``render_canvas`` of it. Pair i depends only
    on (seed, i).
    """
    if n < 1:
        raise ValueError(f"n={n}: ask for at least one pair.")
    data = ShapesDataset(ShapesConfig(image_size=image_size, min_objects=1, max_objects=max_objects, noise=0.0),
                         n, seed)
    sketches, targets, maps = [], [], []
    for i in range(n):
        scene = data[i]
        label_map = np.zeros((image_size, image_size), dtype=np.int64)
        for mask, label in zip(scene["masks"].numpy(), scene["labels"].numpy()):
            label_map[mask] = label + 1
        maps.append(label_map)
        sketches.append(SKETCH_COLOURS[label_map].transpose(2, 0, 1))  # (3, H, W)
        targets.append(render_canvas(label_map, np.random.default_rng([seed, i, 1])))
    return {"sketch": torch.from_numpy(np.stack(sketches)), "target": torch.from_numpy(np.stack(targets)),
            "labels": torch.from_numpy(np.stack(maps))}
