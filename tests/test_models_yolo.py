"""YOLO from scratch: target encoding, decoding, loss and NMS (oracle: the teaching per-class NMS)."""
import pytest
import torch

from course_utils.data.shapes import ShapesConfig, ShapesDataset
from course_utils.models.boxes import box_iou, nms_per_class
from course_utils.models.yolo import TinyYOLO, YOLOConfig, decode, encode_targets, yolo_loss
from course_utils.train import fit, seeded


def perfect_logits(grid_target):
    """Raw outputs that decode to exactly the encoded boxes."""
    logits = torch.logit(grid_target.clamp(1e-6, 1 - 1e-6))
    logits[..., 2:4] = torch.logit(grid_target[..., 2:4].sqrt().clamp(1e-6, 1 - 1e-6))
    logits[..., 5:] = grid_target[..., 5:] * 30
    return logits


def scenes(n=8, **kwargs):
    data = ShapesDataset(ShapesConfig(image_size=48, min_objects=1, max_objects=3, **kwargs), n, seed=3)
    items = [data[i] for i in range(n)]
    return [s["boxes"] for s in items], [s["labels"] for s in items], torch.stack([s["image"] for s in items])


def test_encode_then_decode_gives_back_the_boxes():
    boxes, labels, _ = scenes()
    target = encode_targets(boxes, labels, grid=6, image_size=48, num_classes=3)
    assert target.shape == (8, 6, 6, 8)
    assert target[..., 4].sum() == sum(len(b) for b in boxes)  # separated scenes: one object per cell
    assert ((target[..., :2] >= 0) & (target[..., :2] <= 1)).all()  # offsets inside the cell
    out = decode(perfect_logits(target), 48, conf_threshold=0.5)
    for o, b, l in zip(out, boxes, labels):
        assert len(o["boxes"]) == len(b)
        iou = box_iou(b, o["boxes"])
        assert (iou.max(1).values > 0.999).all()
        assert torch.equal(o["labels"][iou.argmax(1)], l)


def test_two_centres_in_one_cell_keep_only_the_later():
    boxes = [torch.tensor([[10.0, 10.0, 20.0, 20.0], [12.0, 12.0, 18.0, 18.0]])]
    target = encode_targets(boxes, [torch.tensor([0, 2])], grid=3, image_size=48, num_classes=3)
    assert target[..., 4].sum() == 1
    assert target[0, 0, 0, 7] == 1 and target[0, 0, 0, 2] == pytest.approx(6 / 48)


def test_decode_nms_matches_teaching_nms():
    torch.manual_seed(0)
    raw = torch.randn(3, 6, 6, 8) * 2
    plain = decode(raw, 48, conf_threshold=0.05, apply_nms=False)
    with_nms = decode(raw, 48, conf_threshold=0.05, iou_threshold=0.3)
    for p, n in zip(plain, with_nms):
        keep = nms_per_class(p["boxes"], p["scores"], p["labels"], 0.3)
        assert torch.equal(p["boxes"][keep], n["boxes"]) and torch.equal(p["labels"][keep], n["labels"])
        assert len(n["boxes"]) < len(p["boxes"])


def test_loss_is_small_for_perfect_outputs_and_training_lowers_it():
    boxes, labels, images = scenes(16)
    target = encode_targets(boxes, labels, 6, 48, 3)
    assert yolo_loss(perfect_logits(target), target) < 1e-2
    with seeded(0):
        model = TinyYOLO(YOLOConfig(width=8))
    assert model(images).shape == (16, 6, 6, 8)
    history = fit(model, lambda m, x, t: yolo_loss(m(x), t), lambda g: (images, target), steps=40, lr=1e-2,
                  optimizer="adam", schedule=None, device="cpu", progress=False)  # full batch
    assert history.loss[-1] < 0.5 * history.loss[0]


def test_bad_config_and_input():
    with pytest.raises(ValueError, match="multiple"):
        YOLOConfig(image_size=50, grid=6)
    with pytest.raises(ValueError, match="same shape"):
        yolo_loss(torch.zeros(1, 6, 6, 8), torch.zeros(1, 6, 6, 7))
    with pytest.raises(ValueError, match="labels must be"):
        encode_targets([torch.tensor([[0.0, 0, 5, 5]])], [torch.tensor([3])], 6, 48, 3)


def test_encode_target_is_one_image_of_encode_targets_and_decode_takes_any_nms():
    from course_utils.models.yolo import encode_target
    scene = ShapesDataset(ShapesConfig(image_size=48, min_objects=2, max_objects=3), 1, seed=3)[0]
    one = encode_target(scene["boxes"], scene["labels"], 6, 48, 3)
    assert torch.equal(one, encode_targets([scene["boxes"]], [scene["labels"]], 6, 48, 3)[0])
    pred = torch.randn(2, 6, 6, 8, generator=torch.Generator().manual_seed(0))
    calls = []

    def counting_nms(boxes, scores, labels, thr):
        calls.append(len(boxes))
        return nms_per_class(boxes, scores, labels, thr)

    ours, default = decode(pred, 48, 0.05, nms=counting_nms), decode(pred, 48, 0.05)
    assert len(calls) == 2
    for a, b in zip(ours, default):
        assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["labels"], b["labels"])
