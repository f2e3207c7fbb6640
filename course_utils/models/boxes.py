"""Bounding boxes: formats, intersection over union (IoU) and non-maximum suppression (NMS).

Every detector of Chapter 3 speaks in boxes. A box is four numbers in one of three formats
(pixels, ``x`` to the right, ``y`` down):

* ``xyxy``   -- corners ``(x0, y0, x1, y1)``; the width is ``x1 - x0`` (continuous coordinates,
  no "+1 pixel"), the format of torchvision and of ``course_utils.data.shapes``;
* ``xywh``   -- top-left corner and size ``(x0, y0, w, h)`` (COCO's json);
* ``cxcywh`` -- centre and size ``(cx, cy, w, h)`` (what YOLO regresses).

IoU of two boxes A and B:

    |A ∩ B| = max(0, min(x1ᴬ, x1ᴮ) - max(x0ᴬ, x0ᴮ)) · max(0, min(y1ᴬ, y1ᴮ) - max(y0ᴬ, y0ᴮ))
    IoU(A, B) = |A ∩ B| / (|A| + |B| - |A ∩ B|)

Greedy NMS: sort the boxes by score; keep the best, drop every remaining box whose IoU with it
exceeds a threshold, repeat with the best of what is left. *Batched* (per-class) NMS does this
separately for every class, so a circle never suppresses an overlapping square.

``box_iou`` and ``nms`` here are the teaching versions, written from scratch and compared with
``torchvision.ops.box_iou`` / ``torchvision.ops.batched_nms`` in ``tests/test_models_boxes.py``;
the detectors call ``batched_nms`` below, which uses torchvision's fast kernel.
"""
from __future__ import annotations

import torch
import torchvision

FORMATS = ("xyxy", "xywh", "cxcywh")


def _check_boxes(boxes: torch.Tensor, name: str = "boxes") -> torch.Tensor:
    if not isinstance(boxes, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (N, 4), got {type(boxes).__name__}.")
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"{name} must have shape (N, 4), got {tuple(boxes.shape)}.")
    return boxes


def box_convert(boxes: torch.Tensor, in_fmt: str, out_fmt: str) -> torch.Tensor:
    """Convert (N, 4) boxes between ``xyxy``, ``xywh`` and ``cxcywh`` (via ``xyxy``).

    xyxy -> cxcywh:  cx = (x0 + x1) / 2,  cy = (y0 + y1) / 2,  w = x1 - x0,  h = y1 - y0
    """
    _check_boxes(boxes)
    for fmt in (in_fmt, out_fmt):
        if fmt not in FORMATS:
            raise ValueError(f"unknown box format {fmt!r}: choose from {FORMATS}.")
    a, b, c, d = boxes.unbind(-1)  # (N,) each
    if in_fmt == "xywh":
        a, b, c, d = a, b, a + c, b + d
    elif in_fmt == "cxcywh":
        a, b, c, d = a - c / 2, b - d / 2, a + c / 2, b + d / 2
    # now (a, b, c, d) = (x0, y0, x1, y1)
    if out_fmt == "xywh":
        return torch.stack([a, b, c - a, d - b], -1)  # (N, 4)
    if out_fmt == "cxcywh":
        return torch.stack([(a + c) / 2, (b + d) / 2, c - a, d - b], -1)  # (N, 4)
    return torch.stack([a, b, c, d], -1)  # (N, 4)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Area of (N, 4) xyxy boxes: (x1 - x0)(y1 - y0), shape (N,)."""
    _check_boxes(boxes)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])  # (N,)


def box_iou(boxes_a: torch.Tensor, boxes_b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes: an (N, M) matrix.

    |A ∩ B| = max(0, min(x1ᴬ, x1ᴮ) - max(x0ᴬ, x0ᴮ)) · max(0, min(y1ᴬ, y1ᴮ) - max(y0ᴬ, y0ᴮ))
    IoU = |A ∩ B| / (|A| + |B| - |A ∩ B|)
    """
    _check_boxes(boxes_a, "boxes_a")
    _check_boxes(boxes_b, "boxes_b")
    top_left = torch.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])  # (N, M, 2)
    bottom_right = torch.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])  # (N, M, 2)
    wh = (bottom_right - top_left).clamp(min=0)  # (N, M, 2): 0 for disjoint boxes
    inter = wh[..., 0] * wh[..., 1]  # (N, M)
    union = box_area(boxes_a)[:, None] + box_area(boxes_b)[None, :] - inter  # (N, M)
    return inter / union


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS (class-agnostic, teaching version); returns kept indices by decreasing score.

    repeat: i = argmax score among the remaining boxes; keep i; remove {j : IoU(i, j) > threshold}
    """
    _check_boxes(boxes)
    if scores.shape != boxes.shape[:1]:
        raise ValueError(f"scores must have shape ({len(boxes)},), got {tuple(scores.shape)}.")
    order = torch.argsort(scores, descending=True, stable=True)  # best first
    iou = box_iou(boxes, boxes)  # (N, N), computed once
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold  # drops i itself too (IoU 1), harmless
    return torch.tensor(keep, dtype=torch.long)


def nms_per_class(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                  iou_threshold: float) -> torch.Tensor:
    """Per-class NMS (teaching version): boxes of different classes never suppress each other.

    Returns the kept indices sorted by decreasing score, like ``torchvision.ops.batched_nms``.
    """
    _check_boxes(boxes)
    keep = [torch.nonzero(labels == c).flatten()[nms(boxes[labels == c], scores[labels == c], iou_threshold)]
            for c in labels.unique()]
    if not keep:
        return torch.zeros(0, dtype=torch.long)
    keep = torch.cat(keep)
    return keep[torch.argsort(scores[keep], descending=True, stable=True)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                iou_threshold: float) -> torch.Tensor:
    """Per-class NMS with torchvision's kernel (what the course's detectors call)."""
    _check_boxes(boxes)
    return torchvision.ops.batched_nms(boxes.float(), scores.float(), labels, iou_threshold)
