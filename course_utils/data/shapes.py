"""Procedural RGB scenes of coloured shapes: one generator for many chapters.

A *scene* is a dark image holding a few objects. Every object is a circle, square or triangle,
in one of six colours and one of two sizes, at a random position. With each image come the
answers a model can be trained on:

* ``labels``, ``colours``, ``sizes`` -- what each object is (classification, CLIP, captioning),
* ``boxes`` -- where it is (detection),
* ``masks`` -- exactly which pixels it covers (segmentation),
* ``caption`` -- a sentence that describes the scene truthfully (CLIP, text-to-image diffusion),
  e.g. ``"a small red circle above a large blue square"``.

Geometry. Coordinates are in pixels, ``x`` to the right and ``y`` *down* (the image convention),
and pixel ``(row i, column j)`` covers the unit square ``[j, j+1) x [i, i+1)``. An object is a
centre ``(cx, cy)`` and a radius ``r``, and fits exactly inside the square
``[cx - r, cx + r] x [cy - r, cy + r]``:

* circle:   ``(x - cx)^2 + (y - cy)^2 <= r^2``
* square:   ``|x - cx| <= r  and  |y - cy| <= r``
* triangle: pointing up, vertices ``(cx, cy - r)``, ``(cx + r, cy + r)``, ``(cx - r, cy + r)``;
  a point is inside when it lies on the inner side of all three edges (three half-plane tests).

A pixel belongs to an object when its *centre* ``(j + 0.5, i + 0.5)`` is inside the shape, so
drawing is a handful of vectorised comparisons over the grid of pixel centres.

Objects are painted in order, so a later object hides an earlier one where they overlap; the
``masks`` hold the *visible* pixels (each pixel belongs to the topmost object). By default
objects do not overlap at all; ``allow_overlap=True`` gives the crowded scenes that a detection
chapter needs, while every object keeps at least ``min_visible`` of its pixels in view.

Every scene is determined by its random generator: ``make_shapes_scene(seed)`` is reproducible,
and item ``i`` of a ``ShapesDataset`` depends only on ``(seed, i)``, never on access order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.ops import masks_to_boxes

SHAPES = ("circle", "square", "triangle")
COLOURS = ("red", "green", "blue", "yellow", "magenta", "cyan")
SIZES = ("small", "large")

# RGB in [0, 1], one row per name in COLOURS; any two rows are at least 0.5 apart.
PALETTE = np.array(
    [
        [0.90, 0.15, 0.15],  # red
        [0.15, 0.80, 0.20],  # green
        [0.20, 0.35, 0.95],  # blue
        [0.95, 0.85, 0.15],  # yellow
        [0.85, 0.20, 0.85],  # magenta
        [0.15, 0.85, 0.85],  # cyan
    ],
    dtype=np.float32,
)  # (6, 3)
BACKGROUND = np.array([0.08, 0.08, 0.10], dtype=np.float32)  # (3,) dark grey

# Radius of an object as a fraction of the image size, drawn uniformly from the range.
# The ranges do not touch, so a small object is always visibly smaller than a large one.
RADIUS_RANGE = {"small": (0.10, 0.14), "large": (0.20, 0.26)}

MIN_IMAGE_SIZE = 16  # below this a small object would be a pixel or two
MIN_GAP = 1.0  # pixels kept free between the squares of objects that must not overlap
MAX_TRIES = 100  # random positions tried per object, and scenes tried per call


@dataclass
class ShapesConfig:
    """What kind of scenes to draw. The defaults give one object per 32x32 image."""

    image_size: int = 32  # images are image_size x image_size pixels
    min_objects: int = 1  # number of objects per scene, uniform in [min_objects, max_objects]
    max_objects: int = 1
    shapes: tuple = SHAPES  # names from SHAPES that may be drawn
    colours: tuple = COLOURS  # names from COLOURS that may be used
    sizes: tuple = SIZES  # names from SIZES that may be used
    allow_overlap: bool = False  # False: objects never touch; True: later ones may hide earlier
    min_visible: float = 0.3  # with overlap, each object keeps at least this fraction of its pixels
    noise: float = 0.02  # std of Gaussian noise added to every pixel; 0 gives clean images
    seed: int = 0  # default seed of ShapesDataset

    def __post_init__(self):
        self.shapes = _check_names("shapes", self.shapes, SHAPES)
        self.colours = _check_names("colours", self.colours, COLOURS)
        self.sizes = _check_names("sizes", self.sizes, SIZES)
        if self.image_size < MIN_IMAGE_SIZE:
            raise ValueError(
                f"image_size={self.image_size} is too small: use at least {MIN_IMAGE_SIZE} pixels, "
                f"or a small object would be only a pixel or two."
            )
        if self.min_objects < 1:
            raise ValueError(f"min_objects={self.min_objects}: a scene needs at least 1 object.")
        if self.min_objects > self.max_objects:
            raise ValueError(
                f"min_objects={self.min_objects} is larger than max_objects={self.max_objects}."
            )
        if not 0.0 < self.min_visible <= 1.0:
            raise ValueError(f"min_visible={self.min_visible} must be in (0, 1].")
        if self.noise < 0:
            raise ValueError(f"noise={self.noise} is a standard deviation and cannot be negative.")


def _check_names(field: str, given, known: tuple) -> tuple:
    """Return ``given`` as a tuple after checking it is a non-empty selection of ``known`` names."""
    if isinstance(given, str):
        raise ValueError(f"{field} must be a sequence of names such as {known[:1]}, not {given!r}.")
    given = tuple(given)
    if not given:
        raise ValueError(f"{field} is empty: choose at least one of {known}.")
    for name in given:
        if name not in known:
            raise ValueError(f"unknown name {name!r} in {field}: choose from {known}.")
    if len(set(given)) != len(given):
        raise ValueError(f"{field}={given} lists a name twice.")
    return given


# --------------------------------------------------------------------------------------------
# Drawing


def rasterise(shape: str, cx: float, cy: float, r: float, image_size: int) -> np.ndarray:
    """Return the (H, W) bool mask of the pixels whose centres lie inside the shape."""
    ys, xs = np.mgrid[0:image_size, 0:image_size] + 0.5  # (H, W) each: pixel centres
    if shape == "circle":
        return (xs - cx) ** 2 + (ys - cy) ** 2 <= r**2
    if shape == "square":
        return (np.abs(xs - cx) <= r) & (np.abs(ys - cy) <= r)
    if shape == "triangle":
        # Vertices in clockwise order on screen (y points down): top, bottom right, bottom left.
        # A point p is inside when, for every edge a -> b, the cross product
        # (b - a) x (p - a) = (bx - ax)(py - ay) - (by - ay)(px - ax) is >= 0.
        corners = [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
        inside = np.ones_like(xs, dtype=bool)
        for (ax, ay), (bx, by) in zip(corners, corners[1:] + corners[:1]):
            inside &= (bx - ax) * (ys - ay) - (by - ay) * (xs - ax) >= 0
        return inside
    raise ValueError(f"unknown shape {shape!r}: choose from {SHAPES}.")


def _owner_map(masks: list) -> np.ndarray:
    """Paint the masks in order; return (H, W) ints: the topmost object per pixel, -1 if none."""
    owner = np.full(masks[0].shape, -1)  # (H, W)
    for k, mask in enumerate(masks):
        owner[mask] = k
    return owner


def _place_objects(rng: np.random.Generator, shape_ids, radii, config: ShapesConfig):
    """Find a position for each object in turn; return (centres (K, 2), full masks) or None.

    An object's centre is drawn uniformly so that the whole shape lies inside the image.
    Without overlap, a position is accepted when the object's square keeps ``MIN_GAP`` pixels
    away from the squares of all objects placed before it. With overlap, a position is accepted
    when every object placed so far still shows at least ``min_visible`` of its pixels.
    """
    size = config.image_size
    centres, masks = [], []
    for shape_id, r in zip(shape_ids, radii):
        for _ in range(MAX_TRIES):
            centre = rng.uniform(r, size - r, size=2)  # (2,): cx, cy
            if config.allow_overlap:
                mask = rasterise(SHAPES[shape_id], centre[0], centre[1], r, size)
                owner = _owner_map(masks + [mask])  # (H, W)
                visible = [(owner == j).sum() for j in range(len(masks) + 1)]
                if all(v >= config.min_visible * m.sum() for v, m in zip(visible, masks + [mask])):
                    break
            else:
                # Two squares are apart when they are apart along x or along y (Chebyshev distance).
                placed_radii = radii[: len(centres)]
                gaps = [np.abs(centre - c).max() - (r + r2) for c, r2 in zip(centres, placed_radii)]
                if all(gap >= MIN_GAP for gap in gaps):
                    mask = rasterise(SHAPES[shape_id], centre[0], centre[1], r, size)
                    break
        else:
            return None  # no room for this object: the caller starts the scene again
        centres.append(centre)
        masks.append(mask)
    return np.stack(centres), masks


# --------------------------------------------------------------------------------------------
# Captions


def describe(shape_id: int, colour_id: int, size_id: int) -> str:
    """Name one object: ``describe(0, 0, 0) == "a small red circle"``."""
    return f"a {SIZES[size_id]} {COLOURS[colour_id]} {SHAPES[shape_id]}"


def relation(centre_a, centre_b) -> str:
    """Where object a is relative to object b: "above", "below", "left of" or "right of".

    The axis along which the centres are further apart decides (y points down, so a smaller
    y is "above").
    """
    dx, dy = centre_a[0] - centre_b[0], centre_a[1] - centre_b[1]
    if abs(dy) >= abs(dx):
        return "above" if dy < 0 else "below"
    return "left of" if dx < 0 else "right of"


def make_caption(shape_ids, colour_ids, size_ids, centres) -> str:
    """One object: its name; two: "<first> <relation> <second>"; more: a list from left to right."""
    names = [describe(s, c, z) for s, c, z in zip(shape_ids, colour_ids, size_ids)]
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return f"{names[0]} {relation(centres[0], centres[1])} {names[1]}"
    names = [names[k] for k in np.argsort(centres[:, 0], kind="stable")]  # left to right
    return ", ".join(names[:-1]) + " and " + names[-1]


# --------------------------------------------------------------------------------------------
# Scenes


def _choose(rng: np.random.Generator, allowed: tuple, names: tuple, k: int) -> np.ndarray:
    """Draw ``k`` names from ``allowed`` uniformly; return their (K,) indices into ``names``."""
    return np.array([names.index(name) for name in rng.choice(allowed, size=k)])


def make_shapes_scene(
    rng_or_seed: Union[int, np.random.Generator], config: Optional[ShapesConfig] = None
) -> dict:
    """Draw one scene. Returns a dict (K objects, H = W = image_size):

    * ``image``   float32 (3, H, W) in [0, 1]
    * ``boxes``   float32 (K, 4) xyxy in pixels, the tight box of each object's visible pixels
                  (``x1 - x0`` is its width in pixels)
    * ``labels``  int64 (K,) index into SHAPES
    * ``colours`` int64 (K,) index into COLOURS
    * ``sizes``   int64 (K,) index into SIZES
    * ``masks``   bool (K, H, W) the visible pixels of each object (disjoint)
    * ``caption`` str, e.g. "a small red circle above a large blue square"

    Objects are listed in drawing order (later ones on top). ``rng_or_seed`` is a seed or a
    ``numpy.random.Generator``; the same seed always gives the same scene.
    """
    config = config if config is not None else ShapesConfig()
    rng = np.random.default_rng(rng_or_seed)  # a Generator passes through unchanged
    size = config.image_size

    # Choose how many objects, what they are, then where they go. If they do not fit (crowded
    # scenes without overlap), choose what they are again: such scenes get more small objects.
    k = rng.integers(config.min_objects, config.max_objects + 1)
    for _ in range(MAX_TRIES):
        shape_ids = _choose(rng, config.shapes, SHAPES, k)  # (K,)
        colour_ids = _choose(rng, config.colours, COLOURS, k)  # (K,)
        size_ids = _choose(rng, config.sizes, SIZES, k)  # (K,)
        low, high = np.array([RADIUS_RANGE[SIZES[z]] for z in size_ids]).T * size  # (K,) each
        radii = rng.uniform(low, high)  # (K,) pixels
        placed = _place_objects(rng, shape_ids, radii, config)
        if placed is not None:
            break
    else:
        raise RuntimeError(
            f"could not place {k} non-overlapping objects in a {size}x{size} image; "
            f"use fewer objects, a larger image_size, only small sizes, or allow_overlap=True."
        )
    centres, full_masks = placed  # (K, 2), K x (H, W)

    owner = _owner_map(full_masks)  # (H, W) topmost object per pixel, -1 = background
    masks = owner[None] == np.arange(k)[:, None, None]  # (K, H, W) visible pixels
    colour_table = np.vstack([BACKGROUND, PALETTE[colour_ids]])  # (K + 1, 3): row 0 = background
    image = colour_table[owner + 1].transpose(2, 0, 1)  # (H, W, 3) -> (3, H, W)
    if config.noise > 0:
        image = np.clip(image + rng.normal(0.0, config.noise, size=image.shape), 0.0, 1.0)

    masks = torch.from_numpy(masks)
    # masks_to_boxes gives the last pixel's index; +1 turns it into the pixel's far edge.
    boxes = masks_to_boxes(masks) + torch.tensor([0.0, 0.0, 1.0, 1.0])  # (K, 4)
    return {
        "image": torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)),  # (3, H, W)
        "boxes": boxes.float(),  # (K, 4)
        "labels": torch.from_numpy(shape_ids).long(),  # (K,)
        "colours": torch.from_numpy(colour_ids).long(),  # (K,)
        "sizes": torch.from_numpy(size_ids).long(),  # (K,)
        "masks": masks,  # (K, H, W)
        "caption": make_caption(shape_ids, colour_ids, size_ids, centres),
    }


def make_pair_scene(rng_or_seed: Union[int, np.random.Generator], same_cell: bool, image_size: int = 48,
                    cell: int = 16, noise: float = 0.02) -> dict:
    """Two small objects side by side that never touch, placed relative to a grid of ``cell``-pixel cells.

    With ``same_cell=True`` both centres lie in one cell; with ``same_cell=False`` they lie in two
    neighbouring cells, at a distance drawn from the same range -- the control. Nothing else differs,
    so the scenes separate a detector that can represent one object per cell (YOLO) from occlusion,
    which does not happen here. Returns a dict like ``make_shapes_scene`` (image, boxes, labels,
    colours, sizes, masks, caption). The boxes are the objects' pixel boxes; their centres can differ
    from the placement by under a pixel, so recount shared cells from the boxes.
    """
    rng = np.random.default_rng(rng_or_seed)
    n_cells = image_size // cell
    if n_cells < 2:
        raise ValueError(f"cell={cell} leaves fewer than two cells in a {image_size}-pixel image.")
    low, high = np.array(RADIUS_RANGE["small"]) * image_size
    gap, margin = 0.5, 0.75  # pixels between the objects; centres keep `margin` from cell borders
    if 2 * high + gap >= cell - 2 * margin:
        raise ValueError(f"cell={cell} px is too small for two small objects side by side that do not touch.")
    for _ in range(MAX_TRIES):
        radii = rng.uniform(low, high, size=2)  # (2,) pixels
        d = rng.uniform(radii.sum() + gap, cell - 2 * margin)  # centre distance along one axis
        c = rng.integers(0, n_cells - 1)  # the (first) cell along that axis
        if same_cell:  # both a and a + d inside cell c
            a = rng.uniform(c * cell + margin, (c + 1) * cell - margin - d)
        else:  # a in cell c, a + d in cell c + 1
            a = rng.uniform(max((c + 1) * cell - d + margin, c * cell + margin), (c + 1) * cell - margin)
        row = rng.integers(0, n_cells)
        b = rng.uniform(row * cell + margin, (row + 1) * cell - margin)  # the other axis: one row of cells
        along, across = np.array([a, a + d]), np.array([b, b])
        if rng.random() < 0.5:
            centres = np.stack([along, across], 1)  # side by side horizontally, (2, 2) as (cx, cy)
        else:
            centres = np.stack([across, along], 1)  # one above the other
        if np.all(centres - radii[:, None] >= 0) and np.all(centres + radii[:, None] <= image_size):
            break
    else:
        raise RuntimeError("could not place the pair; use a larger image or cell.")
    shape_ids = rng.integers(0, len(SHAPES), size=2)
    colour_ids = rng.choice(len(COLOURS), size=2, replace=False)
    full_masks = [rasterise(SHAPES[k], x, y, r, image_size) for k, (x, y), r in zip(shape_ids, centres, radii)]
    owner = _owner_map(full_masks)  # (H, W): they never touch, so every pixel has at most one owner
    colour_table = np.vstack([BACKGROUND, PALETTE[colour_ids]])
    image = colour_table[owner + 1].transpose(2, 0, 1)  # (3, H, W)
    if noise > 0:
        image = np.clip(image + rng.normal(0.0, noise, size=image.shape), 0.0, 1.0)
    masks = torch.from_numpy(owner[None] == np.arange(2)[:, None, None])  # (2, H, W)
    boxes = masks_to_boxes(masks) + torch.tensor([0.0, 0.0, 1.0, 1.0])  # (2, 4)
    sizes = np.zeros(2, dtype=np.int64)  # both small
    return {
        "image": torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)),
        "boxes": boxes.float(),
        "labels": torch.from_numpy(shape_ids).long(),
        "colours": torch.from_numpy(colour_ids).long(),
        "sizes": torch.from_numpy(sizes),
        "masks": masks,
        "caption": make_caption(shape_ids, colour_ids, sizes, centres),
    }


class ShapesDataset(Dataset):
    """``n`` scenes drawn from ``config``; item ``i`` depends only on ``(seed, i)``.

    Nothing is stored: item ``i`` is drawn on demand from ``np.random.default_rng([seed, i])``,
    so it is the same whatever order items are read in, and in every DataLoader worker.
    ``seed`` defaults to ``config.seed``.
    """

    def __init__(
        self, config: Optional[ShapesConfig] = None, n: int = 1000, seed: Optional[int] = None
    ):
        if n < 0:
            raise ValueError(f"n={n}: a dataset cannot have a negative length.")
        self.config = config if config is not None else ShapesConfig()
        self.n = n
        self.seed = self.config.seed if seed is None else seed

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if not -self.n <= i < self.n:
            raise IndexError(f"index {i} is out of range for a ShapesDataset of length {self.n}.")
        i = i % self.n
        return make_shapes_scene(np.random.default_rng([self.seed, i]), self.config)
