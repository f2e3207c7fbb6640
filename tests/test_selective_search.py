"""Selective search finds the objects of the shapes scenes among its hierarchical proposals."""
import numpy as np
import pytest
import torch

from course_utils.data.shapes import ShapesConfig, ShapesDataset
from course_utils.models.boxes import box_iou
from course_utils.models.selective_search import SelectiveSearchConfig, hierarchical_grouping, selective_search


def test_proposals_cover_the_objects():
    data = ShapesDataset(ShapesConfig(image_size=48, min_objects=1, max_objects=3), 10, seed=7)
    best = []
    for i in range(len(data)):
        scene = data[i]
        boxes = selective_search(scene["image"])
        assert boxes.shape[1] == 4 and len(boxes) > 10
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 48).all() and (boxes[:, 2:] > boxes[:, :2]).all()
        assert len(torch.unique(boxes, dim=0)) == len(boxes)  # no duplicates
        best += box_iou(scene["boxes"], boxes).max(1).values.tolist()
    assert np.mean(np.array(best) >= 0.7) >= 0.9  # nearly every object has a tight proposal


def test_hierarchy_ends_with_the_whole_image_and_merges_neighbours():
    image = np.zeros((8, 8, 3))
    image[:, 4:] = 1.0
    segments = np.zeros((8, 8), dtype=int)
    segments[:, 4:] = 1
    segments[4:, :4] = 2
    props = hierarchical_grouping(image, segments, bins=5)
    boxes = [p[0] for p in props]
    levels = [p[1] for p in props]
    assert levels == [0, 0, 0, 1, 2]  # 3 segments, 2 merges
    assert boxes[-1] == (0, 0, 8, 8)
    # segments 0 and 2 have the same colour and are adjacent: they merge first into the left half
    assert boxes[3] == (0, 0, 4, 8)


def test_levels_and_bad_input():
    image = ShapesDataset(ShapesConfig(image_size=32), 1, seed=0)[0]["image"]
    boxes, levels = selective_search(image, SelectiveSearchConfig(scales=(10.0, 100.0)), return_levels=True)
    assert levels.shape == (len(boxes), 2) and set(levels[:, 0].tolist()) <= {0, 1}
    with pytest.raises(ValueError, match="image must be"):
        selective_search(np.zeros((2, 3, 4, 5)))
