"""Correct answers to Chapter 3's exercises written differently from the book's reference.

Each string is a complete exercise cell (imports at the top). The tests exec each one, check that
it passes its check, and paste the first into the student notebook to prove the chapter runs on it.
"""

IOU_LOOPS = '''
import torch


def iou(boxes_a, boxes_b):
    """Pairwise IoU, one pair at a time in plain Python floats."""
    out = torch.zeros(len(boxes_a), len(boxes_b))
    for i, (ax0, ay0, ax1, ay1) in enumerate(boxes_a.tolist()):
        for j, (bx0, by0, bx1, by1) in enumerate(boxes_b.tolist()):
            w = max(0.0, min(ax1, bx1) - max(ax0, bx0))
            h = max(0.0, min(ay1, by1) - max(ay0, by0))
            inter = w * h
            union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
            out[i, j] = inter / union
    return out
'''

IOU_NUMPY_FLOAT64 = '''
import numpy as np
import torch


def iou(boxes_a, boxes_b):
    """Vectorised in float64 NumPy, with np.clip for the empty intersections."""
    a = boxes_a.detach().double().numpy()[:, None, :]  # (N, 1, 4)
    b = boxes_b.detach().double().numpy()[None, :, :]  # (1, M, 4)
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h  # (N, M)
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return torch.from_numpy(inter / (area_a + area_b - inter))
'''

NMS_PER_CLASS_LOOP = '''
import torch


def nms(boxes, scores, labels, iou_threshold):
    """One class at a time, a while loop over the remaining boxes, then merge by score."""
    def pair_iou(p, q):
        w = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
        h = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
        inter = w * h
        return inter / ((p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter)

    b, s, lab = boxes.tolist(), scores.tolist(), labels.tolist()
    kept = []
    for c in sorted(set(lab)):
        remaining = sorted((i for i in range(len(b)) if lab[i] == c), key=lambda i: -s[i])
        while remaining:
            best = remaining.pop(0)
            kept.append(best)
            remaining = [i for i in remaining if pair_iou(b[best], b[i]) <= iou_threshold]
    kept.sort(key=lambda i: -s[i])
    return torch.tensor(kept, dtype=torch.long)
'''

NMS_OFFSET_TRICK = '''
import torch
import torchvision


def nms(boxes, scores, labels, iou_threshold):
    """Shift each class to its own region of the plane, then one class-agnostic greedy pass."""
    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.long)
    shifted = boxes.double() + labels.double()[:, None] * (boxes.double().max() + 1)  # classes never overlap
    iou = torchvision.ops.box_iou(shifted, shifted)  # (N, N)
    order = scores.argsort(descending=True)
    alive = torch.ones(len(boxes), dtype=torch.bool)
    keep = []
    for i in order:
        if alive[i]:
            keep.append(int(i))
            alive &= ~(iou[i] > iou_threshold)
    return torch.as_tensor(keep, dtype=torch.long)
'''

ENCODE_VECTORISED = '''
import torch
import torch.nn.functional as F


def encode_yolo_target(boxes, labels, grid, image_size, num_classes):
    """Cells computed for all boxes at once; written in list order so the later box wins."""
    s = image_size / grid
    target = torch.zeros(grid, grid, 5 + num_classes)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2  # (K, 2): cx, cy
    cells = torch.floor(centres / s).long().clamp(max=grid - 1)  # (K, 2): col, row
    values = torch.cat([centres / s - cells, (boxes[:, 2:] - boxes[:, :2]) / image_size,
                        torch.ones(len(boxes), 1), F.one_hot(labels.long(), num_classes).float()], 1)
    for k in range(len(boxes)):
        target[cells[k, 1], cells[k, 0]] = values[k]
    return target
'''

ENCODE_FLOAT64_MATH = '''
import math

import torch


def encode_yolo_target(boxes, labels, grid, image_size, num_classes):
    """Plain Python floats and math.floor, a float64 target cast at the end."""
    s = image_size / grid
    target = torch.zeros(grid, grid, 5 + num_classes, dtype=torch.float64)
    for k in range(len(boxes)):
        x0, y0, x1, y1 = (float(v) for v in boxes[k])
        cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
        col = grid - 1 if math.floor(cx / s) >= grid else math.floor(cx / s)
        row = grid - 1 if math.floor(cy / s) >= grid else math.floor(cy / s)
        cell = [cx / s - col, cy / s - row, (x1 - x0) / image_size, (y1 - y0) / image_size, 1.0]
        cell += [1.0 if c == int(labels[k]) else 0.0 for c in range(num_classes)]
        target[row, col] = torch.tensor(cell, dtype=torch.float64)
    return target.float()
'''

ALTERNATIVES = {
    "detection.iou": [IOU_LOOPS, IOU_NUMPY_FLOAT64],
    "detection.nms": [NMS_PER_CLASS_LOOP, NMS_OFFSET_TRICK],
    "detection.encode_yolo_target": [ENCODE_VECTORISED, ENCODE_FLOAT64_MATH],
}
