"""The pix2pix canvas data: painted label maps (sketches) and the scenes rendered from them."""
import numpy as np
import pytest
import torch

import course_utils.data
from course_utils.data.canvas import SKETCH_COLOURS, make_canvas_pairs, render_canvas


def test_canvas_pairs_are_deterministic_and_follow_the_label_map():
    a, b = make_canvas_pairs(6, seed=3), make_canvas_pairs(6, seed=3)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["sketch"].shape == a["target"].shape == (6, 3, 32, 32) and a["labels"].shape == (6, 32, 32)
    torch.testing.assert_close(a["sketch"], torch.from_numpy(SKETCH_COLOURS)[a["labels"]].permute(0, 3, 1, 2))
    assert set(a["labels"].unique().tolist()) <= {0, 1, 2, 3} and (a["labels"] > 0).any()
    assert 0 <= a["target"].min() and a["target"].max() <= 1


def test_render_canvas_sky_and_materials():
    labels = np.zeros((32, 32), dtype=np.int64)
    labels[4:12, 4:12] = 2  # a brick square
    image = render_canvas(labels, np.random.default_rng(0))
    sky = image[:, :, 20]  # a background column: the gradient brightens downwards
    assert (np.diff(sky[2]) > 0).all()
    mortar, brick = np.array([0.92, 0.88, 0.80]), np.array([0.70, 0.25, 0.15])
    assert np.allclose(image[:, 7, 4:12].T, mortar)  # every 4th row of the wall, from its top, is mortar
    assert np.allclose(image[:, 4, 4:7].T, brick) and np.allclose(image[:, 4, 7], mortar)  # a joint after 3 bricks
    assert np.allclose(image[:, 8, 4], brick) and np.allclose(image[:, 8, 5], mortar)  # next course: shifted by 2
    assert np.allclose(image, render_canvas(labels, np.random.default_rng(1)))  # no randomness without trees


def test_exported_by_the_data_package():
    assert course_utils.data.make_canvas_pairs is make_canvas_pairs


def test_every_pair_depends_only_on_seed_and_index():
    a, b = make_canvas_pairs(5, seed=2), make_canvas_pairs(3, seed=2)
    assert all(torch.equal(a[k][:3], b[k]) for k in a)
    assert not torch.equal(a["labels"], make_canvas_pairs(5, seed=3)["labels"])
    with pytest.raises(ValueError):
        make_canvas_pairs(0)
