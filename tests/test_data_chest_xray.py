"""Phantom chest X-rays: shapes, labels, class-specific opacity, determinism, errors."""
import pytest
import torch

from course_utils.data.chest_xray import ChestXrayConfig, make_chest_xrays


def test_shapes_labels_and_determinism():
    x, y = make_chest_xrays(30, seed=0)
    assert x.shape == (30, 1, 32, 32) and y.shape == (30,) and y.dtype == torch.long
    assert 0 <= x.min() and x.max() <= 1 and set(y.tolist()) <= {0, 1, 2}
    x2, y2 = make_chest_xrays(30, seed=0)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(x, make_chest_xrays(30, seed=1)[0])


def test_labels_have_their_own_random_stream():
    import numpy as np

    from course_utils.data.chest_xray import LABEL_STREAM

    labels = np.random.default_rng([0, LABEL_STREAM]).random(8)
    for i in range(50):  # no image draws the labels' numbers (image 7 once did: both used [seed, 7])
        assert not np.array_equal(np.random.default_rng([0, i]).random(8), labels)
    _, y = make_chest_xrays(50, seed=0)
    assert torch.equal(make_chest_xrays(20, seed=0)[1], y[:20])  # label i depends on (seed, i) only


def test_opacities_add_density_to_the_lungs():
    x, y = make_chest_xrays(300, seed=2)
    mean = [x[y == k].mean().item() for k in range(3)]
    assert mean[1] > mean[0] + 0.005 and mean[2] > mean[0] + 0.005  # both patterns add density


def test_class_probabilities():
    _, y = make_chest_xrays(200, ChestXrayConfig(class_probs=(1.0, 0.0, 0.0)), seed=0)
    assert (y == 0).all()


@pytest.mark.parametrize("kwargs, match", [(dict(image_size=8), "at least 16"), (dict(class_probs=(0.5, 0.5)), "class_probs")])
def test_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ChestXrayConfig(**kwargs)
    with pytest.raises(ValueError, match="n="):
        make_chest_xrays(-1)
