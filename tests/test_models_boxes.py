"""Oracle tests of the teaching box code (course_utils.models.boxes) against torchvision.ops."""
import pytest
import torch
import torchvision

from course_utils.models.boxes import batched_nms, box_area, box_convert, box_iou, nms, nms_per_class


def random_boxes(n, seed, extent=50.0, size=20.0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * extent
    return torch.cat([xy, xy + 0.5 + torch.rand(n, 2, generator=g) * size], 1)


@pytest.mark.parametrize("fmt", ["xywh", "cxcywh", "xyxy"])
def test_box_convert_matches_torchvision_and_round_trips(fmt):
    boxes = random_boxes(50, 0)
    ours = box_convert(boxes, "xyxy", fmt)
    assert torch.allclose(ours, torchvision.ops.box_convert(boxes, "xyxy", fmt))
    assert torch.allclose(box_convert(ours, fmt, "xyxy"), boxes, atol=1e-5)
    for other in ("xywh", "cxcywh"):
        assert torch.allclose(box_convert(ours, fmt, other), torchvision.ops.box_convert(ours, fmt, other), atol=1e-5)


def test_box_iou_matches_torchvision_including_disjoint_and_identical():
    a, b = random_boxes(300, 1), random_boxes(200, 2)
    iou = box_iou(a, b)
    assert iou.shape == (300, 200)
    assert torch.allclose(iou, torchvision.ops.box_iou(a, b), atol=1e-6)
    assert (iou == 0).any() and (iou > 0).any()  # the random sets contain both cases
    assert torch.allclose(box_iou(a, a).diagonal(), torch.ones(300))
    assert torch.allclose(box_area(a), torchvision.ops.box_area(a))
    far = torch.tensor([[0.0, 0, 1, 1]]), torch.tensor([[5.0, 5, 6, 6]])
    assert box_iou(*far).item() == 0.0
    assert box_iou(torch.zeros(0, 4), b).shape == (0, 200)


@pytest.mark.parametrize("seed, threshold", [(0, 0.5), (1, 0.3), (2, 0.7)])
def test_teaching_nms_matches_torchvision(seed, threshold):
    g = torch.Generator().manual_seed(seed)
    centres = random_boxes(20, seed + 10, extent=80, size=15)
    boxes = centres.repeat_interleave(8, 0) + torch.randn(160, 4, generator=g)
    boxes[:, 2:] = torch.maximum(boxes[:, 2:], boxes[:, :2] + 1)
    scores = torch.rand(160, generator=g)
    labels = torch.randint(0, 3, (160,), generator=g)
    assert torch.equal(nms(boxes, scores, threshold), torchvision.ops.nms(boxes, scores, threshold))
    expected = torchvision.ops.batched_nms(boxes, scores, labels, threshold)
    assert torch.equal(nms_per_class(boxes, scores, labels, threshold), expected)
    assert torch.equal(batched_nms(boxes, scores, labels, threshold), expected)
    assert len(expected) < 160  # something was suppressed


def test_nms_keeps_other_classes_and_handles_empty():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0.5, 0, 10, 10]])
    scores = torch.tensor([0.9, 0.8])
    assert nms_per_class(boxes, scores, torch.tensor([0, 1]), 0.5).tolist() == [0, 1]
    assert nms_per_class(boxes, scores, torch.tensor([0, 0]), 0.5).tolist() == [0]
    assert nms_per_class(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long), 0.5).numel() == 0


def test_bad_input_gives_a_clear_error():
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        box_iou(torch.zeros(3, 5), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="unknown box format"):
        box_convert(torch.zeros(1, 4), "xyxy", "yxyx")
