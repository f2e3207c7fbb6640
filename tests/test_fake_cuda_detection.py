"""Chapter 3 (object detection) on fake CUDA: the models and their losses keep to one device.

``MODEL_CASES`` covers every ``nn.Module`` class of the chapter's modules (``yolo``, ``boxes``,
``selective_search``, ``losses``: only ``yolo.TinyYOLO``). These modules have no package trainer
(``train_*`` / ``fit_*``): the chapter trains through ``train.fit`` directly, and the YOLO path it
takes is followed below up to its first backward.

Not covered, because fake tensors cannot run them: ``yolo.encode_targets`` and ``yolo.decode``
(they branch on and select by values: ``lb.min() < 0``, ``boxes[scores > threshold]``; the chapter
encodes on the CPU and decodes ``train.predict``'s CPU output), and torchvision's Faster R-CNN as the
chapter builds it (its transform calls ``.item()`` in train mode, and the RPN's
``remove_small_boxes`` / NMS have data-dependent output shapes).
"""
import torch

from course_utils import train
from course_utils.data.shapes import ShapesConfig, ShapesDataset
from course_utils.models.losses import sigmoid_focal_loss
from course_utils.models.yolo import TinyYOLO, YOLOConfig, encode_targets, yolo_loss
from fake_cuda import CUDA, assert_on_cuda, fake_cuda, run_training_path

CONFIG = YOLOConfig(image_size=48, grid=6, num_classes=3, width=8)


def yolo_batch(n=2):
    """Images (n, 3, 48, 48) and their grid targets (n, 6, 6, 8), encoded on the CPU as the chapter does."""
    data = ShapesDataset(ShapesConfig(image_size=48, min_objects=1, max_objects=3), n, seed=0)
    scenes = [data[i] for i in range(n)]
    images = torch.stack([s["image"] for s in scenes])
    grid = encode_targets([s["boxes"] for s in scenes], [s["labels"] for s in scenes], CONFIG.grid,
                          CONFIG.image_size, CONFIG.num_classes)
    return images, grid


def grid_loss(model, images, grid):
    return yolo_loss(model(images), grid, CONFIG.lambda_coord, CONFIG.lambda_noobj)


def tiny_yolo(monkeypatch):
    model = TinyYOLO(CONFIG)  # built outside fake mode, moved inside
    images, grid = yolo_batch()
    with fake_cuda():
        model.to(CUDA)
        images, grid = images.to(CUDA), grid.to(CUDA)
        out = model(images)  # (2, 6, 6, 8)
        loss = yolo_loss(out, grid, CONFIG.lambda_coord, CONFIG.lambda_noobj)
        assert_on_cuda(model, out, loss)
        assert out.shape == (2, CONFIG.grid, CONFIG.grid, CONFIG.channels) and loss.dim() == 0


MODEL_CASES = {
    "yolo.TinyYOLO": tiny_yolo,
}

TRAINING_CASES = {}  # yolo, boxes, selective_search and losses define no train_* / fit_* function


def test_yolo_trains_through_fit_on_one_device(monkeypatch):
    """The chapter's YOLO training: fit draws (images, grid targets) on the CPU and moves them."""
    model = TinyYOLO(CONFIG)
    images, grid = yolo_batch(4)
    loss = run_training_path(monkeypatch, lambda: train.fit(model, grid_loss, (images, grid), steps=2,
                                                            batch_size=2, lr=3e-3, weight_decay=1e-4, device="cuda"))
    assert_on_cuda(model)
    assert loss.dim() == 0


def test_yolo_predict_runs_on_the_device_and_returns_cpu_outputs():
    model = TinyYOLO(CONFIG)
    images, _ = yolo_batch(3)
    with fake_cuda():
        raw = train.predict(model, images, batch_size=2, device="cuda")
        assert_on_cuda(model)
    assert raw.device.type == "cpu" and raw.shape == (3, CONFIG.grid, CONFIG.grid, CONFIG.channels)


def test_focal_loss_keeps_to_the_device_of_its_inputs():
    logits, targets = torch.randn(8, 5), (torch.rand(8, 5) < 0.2).float()
    with fake_cuda():
        for alpha, reduction in ((0.25, "sum"), (None, "none")):
            loss = sigmoid_focal_loss(logits.to(CUDA), targets.to(CUDA), alpha=alpha, gamma=2.0, reduction=reduction)
            assert_on_cuda(loss)
