"""YOLO from scratch: one look, an S×S grid, a box, an objectness and class scores per cell.

YOLO (Redmon et al., 2016) turns detection into one regression. The image is cut into an
S × S grid; the cell that contains an object's *centre* is responsible for it and predicts, from
one forward pass of a CNN, a vector of 5 + C numbers (here one box per cell, YOLOv1 had two):

    (t_x, t_y)  the centre's offset inside the cell, in [0, 1]:  t_x = cx / s - col,  s = image_size / S
    (t_w, t_h)  the box size as a fraction of the image, predicted as √w, √h (so that an error
                on a small box costs more than the same error on a large one)
    o           objectness: is there an object centred in this cell?
    c_1..c_C    class scores

The loss, summed over cells and averaged over the batch (1ᵒᵇʲ: the cell holds an object):

    L = λ_coord Σ 1ᵒᵇʲ [(x - x̂)² + (y - ŷ)² + (√w - √ŵ)² + (√h - √ĥ)²]
      + Σ 1ᵒᵇʲ BCE(o, 1) + λ_noobj Σ (1 - 1ᵒᵇʲ) BCE(o, 0)
      + Σ 1ᵒᵇʲ CE(class scores, class)

(squared error on the box as in YOLOv1; binary/categorical cross-entropy for objectness and class,
as later YOLOs use). At test time, score = σ(o) · softmax(c)_k, keep the cells above a confidence
threshold and remove duplicates with per-class NMS.

The failure mode the lecture names follows from the encoding: a cell holds *one* object, so
when two objects' centres fall into the same cell, one of them cannot be predicted at all.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from course_utils.models.boxes import batched_nms


@dataclass
class YOLOConfig:
    image_size: int = 48  # input images are image_size x image_size
    grid: int = 6  # S: the image is cut into S x S cells (image_size must be a multiple)
    num_classes: int = 3  # C (the shapes: circle, square, triangle)
    width: int = 32  # channels of the first conv layer; doubled at each of the later stages
    lambda_coord: float = 5.0  # weight of the box regression
    lambda_noobj: float = 0.5  # weight of objectness on the (many) empty cells

    def __post_init__(self):
        if self.image_size % self.grid:
            raise ValueError(f"image_size={self.image_size} must be a multiple of grid={self.grid}.")
        stride = self.image_size // self.grid
        if stride & (stride - 1):
            raise ValueError(f"the cell size image_size/grid = {stride} must be a power of two "
                             f"(the network halves the resolution per stage).")

    @property
    def channels(self) -> int:
        return 5 + self.num_classes


def encode_targets(boxes: Sequence[torch.Tensor], labels: Sequence[torch.Tensor], grid: int, image_size: int,
                   num_classes: int) -> torch.Tensor:
    """Ground truth to the grid: (B, S, S, 5 + C) = [t_x, t_y, w, h, objectness, one-hot class].

    For an xyxy box with centre (cx, cy), size (w, h) and cell size s = image_size / S:
        col = ⌊cx / s⌋, row = ⌊cy / s⌋;  t_x = cx / s - col,  t_y = cy / s - row;  (w, h) / image_size
    When two objects share a cell, the later one in the list overwrites the earlier (one per cell).
    The target is built on the boxes' device.
    """
    if len(boxes) != len(labels):
        raise ValueError(f"{len(boxes)} box tensors but {len(labels)} label tensors.")
    s = image_size / grid
    device = boxes[0].device if len(boxes) else None
    target = torch.zeros(len(boxes), grid, grid, 5 + num_classes, device=device)  # (B, S, S, 5 + C)
    for b, (bx, lb) in enumerate(zip(boxes, labels)):
        if len(bx) and (lb.min() < 0 or lb.max() >= num_classes):
            raise ValueError(f"labels must be in [0, {num_classes}), got {lb.tolist()}.")
        cx, cy = (bx[:, 0] + bx[:, 2]) / 2, (bx[:, 1] + bx[:, 3]) / 2  # (K,) each
        w, h = bx[:, 2] - bx[:, 0], bx[:, 3] - bx[:, 1]
        col = (cx / s).floor().long().clamp(0, grid - 1)
        row = (cy / s).floor().long().clamp(0, grid - 1)
        for k in range(len(bx)):
            r, c = row[k], col[k]
            target[b, r, c, :5] = torch.stack([cx[k] / s - c, cy[k] / s - r, w[k] / image_size, h[k] / image_size,
                                               torch.ones((), device=device)])
            target[b, r, c, 5:] = F.one_hot(lb[k], num_classes).float()
    return target


def encode_target(boxes: torch.Tensor, labels: torch.Tensor, grid: int, image_size: int,
                  num_classes: int) -> torch.Tensor:
    """One image's target (S, S, 5 + C): ``encode_targets`` for a single (K, 4) boxes, (K,) labels."""
    return encode_targets([boxes], [labels], grid, image_size, num_classes)[0]


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
                         nn.LeakyReLU(0.1))


class TinyYOLO(nn.Module):
    """A small fully convolutional YOLO: stride-2 conv stages down to S × S, then a 1×1 head.

    forward: (B, 3, H, W) -> (B, S, S, 5 + C) raw outputs (use ``decode`` for boxes).
    """

    def __init__(self, config: Optional[YOLOConfig] = None):
        super().__init__()
        self.config = config = config if config is not None else YOLOConfig()
        stages = (config.image_size // config.grid).bit_length() - 1  # log2(cell size)
        layers, c = [_conv(3, config.width)], config.width
        for i in range(stages):
            c_out = min(config.width * 2 ** (i + 1), 128)
            layers += [_conv(c, c_out, stride=2), _conv(c_out, c_out)]
            c = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(c, config.channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, c, S, S)
        return self.head(x).permute(0, 2, 3, 1)  # (B, S, S, 5 + C)


def yolo_loss(pred: torch.Tensor, target: torch.Tensor, lambda_coord: float = 5.0,
              lambda_noobj: float = 0.5) -> torch.Tensor:
    """The YOLO loss of raw outputs (B, S, S, 5 + C) against ``encode_targets`` (same shape).

    L = λ_coord Σ 1ᵒᵇʲ[(x-x̂)² + (y-ŷ)² + (√w-√ŵ)² + (√h-√ĥ)²] + Σ 1ᵒᵇʲ BCE(o,1)
        + λ_noobj Σ (1-1ᵒᵇʲ) BCE(o,0) + Σ 1ᵒᵇʲ CE(c, class),   averaged over the batch
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape.")
    B = pred.shape[0]
    obj = target[..., 4]  # (B, S, S) 1 where a centre falls
    xy = torch.sigmoid(pred[..., 0:2])  # (B, S, S, 2) offsets in the cell
    sqrt_wh = torch.sigmoid(pred[..., 2:4])  # (B, S, S, 2) √w, √h
    box_err = (xy - target[..., 0:2]).pow(2).sum(-1) + (sqrt_wh - target[..., 2:4].sqrt()).pow(2).sum(-1)
    coord = lambda_coord * (obj * box_err).sum()
    bce = F.binary_cross_entropy_with_logits(pred[..., 4], obj, reduction="none")  # (B, S, S)
    objectness = (obj * bce).sum() + lambda_noobj * ((1 - obj) * bce).sum()
    ce = F.cross_entropy(pred[..., 5:].flatten(0, 2), target[..., 5:].argmax(-1).flatten(), reduction="none")
    classes = (obj.flatten() * ce).sum()
    return (coord + objectness + classes) / B


@torch.no_grad()
def decode(pred: torch.Tensor, image_size: int, conf_threshold: float = 0.1, iou_threshold: float = 0.5,
           apply_nms: bool = True, nms: Callable = batched_nms) -> list:
    """Raw outputs (B, S, S, 5 + C) to a list of B dicts of xyxy ``boxes``, ``scores``, ``labels``.

    cx = (col + σ(t_x)) s,  w = σ(t_w)² · image_size;   score = σ(o) · softmax(c)_k,  k = argmax
    ``nms(boxes, scores, labels, iou_threshold)`` -> kept indices (per-class NMS) removes duplicates.
    """
    B, S = pred.shape[0], pred.shape[1]
    s = image_size / S
    rows, cols = torch.meshgrid(torch.arange(S, device=pred.device), torch.arange(S, device=pred.device),
                                indexing="ij")  # (S, S) each
    cx = (cols + torch.sigmoid(pred[..., 0])) * s  # (B, S, S)
    cy = (rows + torch.sigmoid(pred[..., 1])) * s
    w = torch.sigmoid(pred[..., 2]).pow(2) * image_size
    h = torch.sigmoid(pred[..., 3]).pow(2) * image_size
    boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1).clamp(0, image_size)  # (B, S, S, 4)
    prob, label = F.softmax(pred[..., 5:], -1).max(-1)  # (B, S, S) each
    scores = torch.sigmoid(pred[..., 4]) * prob  # confidence = objectness x class probability
    out = []
    for b in range(B):
        keep = scores[b].flatten() > conf_threshold
        bx, sc, lb = boxes[b].reshape(-1, 4)[keep], scores[b].flatten()[keep], label[b].flatten()[keep]
        if apply_nms and len(bx):
            k = nms(bx, sc, lb, iou_threshold)
            bx, sc, lb = bx[k], sc[k], lb[k]
        out.append({"boxes": bx, "scores": sc, "labels": lb})
    return out
