"""Image-caption pairs from the shapes scenes: what CLIP (Chapter 6) and text-to-image (Chapter 7c) train on.

Each pair is a one-object scene of ``course_utils.data.shapes`` and its caption, e.g.
``"a small red circle"``, with the object's attributes as ids (colour, shape, size). Some
(colour, shape) combinations can be kept out of the training pairs (``exclude``) and drawn alone
(``only``), to test zero-shot recognition of combinations never seen together: ``HELD_OUT`` holds
one per shape, each colour still seen with the other shapes.
"""
from __future__ import annotations

from typing import Optional

import torch

from .shapes import COLOURS, SHAPES, ShapesConfig, ShapesDataset

# (colour, shape) combinations that Chapter 6 keeps out of CLIP's training pairs
HELD_OUT = (("red", "circle"), ("green", "square"), ("blue", "triangle"))


def shapes_caption_data(n: int, config: Optional[ShapesConfig] = None, seed: int = 0, exclude=(), only=None):
    """``n`` one-object shapes scenes as (images (n, 3, H, W), captions (list of n str), attributes (n, 3)).

    ``attributes[i]`` = (colour id, shape id, size id), indices into ``shapes.COLOURS``,
    ``SHAPES``, ``SIZES``. ``exclude``: (colour, shape) name pairs never drawn (held out);
    ``only``: if given, the (colour, shape) pairs that may be drawn. Scenes are items of
    ``ShapesDataset(config, seed=seed)`` in order, skipping the excluded ones. The default config
    draws 32 x 32 images (the tiny CLIP's input size).
    """
    config = config if config is not None else ShapesConfig(image_size=32)
    if config.max_objects != 1:
        raise ValueError(f"shapes_caption_data draws one object per image, "
                         f"but config.max_objects={config.max_objects}.")
    exclude, only = set(map(tuple, exclude)), (set(map(tuple, only)) if only is not None else None)
    allowed = {(c, s) for c in config.colours for s in config.shapes if (c, s) not in exclude
               and (only is None or (c, s) in only)}
    if not allowed:
        raise ValueError("every (colour, shape) combination is excluded: nothing to draw.")
    dataset = ShapesDataset(config, n=200 * n + 1000, seed=seed)  # drawn on demand; far more than needed
    images, captions, attributes = [], [], []
    for i in range(len(dataset)):
        scene = dataset[i]
        colour, shape, size = scene["colours"][0].item(), scene["labels"][0].item(), scene["sizes"][0].item()
        if (COLOURS[colour], SHAPES[shape]) not in allowed:
            continue
        images.append(scene["image"])
        captions.append(scene["caption"])
        attributes.append((colour, shape, size))
        if len(images) == n:
            break
    return torch.stack(images), captions, torch.tensor(attributes, dtype=torch.long)  # (n, 3, H, W), n, (n, 3)
