"""Checks of Chapter 3 (object detection): IoU, per-class NMS and YOLO's target encoding.

* ``detection.iou`` -- pairwise IoU of xyxy boxes against ``torchvision.ops.box_iou``: random boxes,
  disjoint and touching boxes (the clamp, IoU exactly 0), identical and nested boxes, large coordinates
  (a float64 oracle), inputs not modified, empty inputs on either side; hints for a missing clamp and
  for the "+1 pixel" area convention.
* ``detection.nms`` -- per-class greedy NMS against ``torchvision.ops.batched_nms``: clusters of
  overlapping boxes in several classes, a class that must not suppress another, an IoU exactly at the
  threshold (0.5, exact in floating point) and touching boxes at threshold 0, inputs not modified, one
  box, and no boxes (a long tensor of shape (0,)); indices must be ``torch.long``; hints for
  class-agnostic NMS, for not sorting by score, for returning indices in the wrong order and for
  ``torch.tensor([])`` being float.
* ``detection.encode_yolo_target`` -- against ``course_utils.models.yolo.encode_targets``: several
  boxes, centres on the image's right and bottom edges (clamped to the last cell), a centre exactly
  on a cell border, a non-integer cell size, two centres in one cell, a float result and inputs not
  modified, no boxes; hints for offsets relative to the image, swapped row/column, sizes in pixels.
"""
from __future__ import annotations

import numpy as np
import torch
import torchvision

from course_utils.models.yolo import encode_targets

from .core import Mistake, call, exercise, expect, expect_tensor, expect_tensor_like


def _random_boxes(n: int, g: torch.Generator, extent: float = 40.0, size: float = 20.0) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=g) * extent
    return torch.cat([xy, xy + 1 + torch.rand(n, 2, generator=g) * size], 1)  # (n, 4)


# ---------------------------------------------------------------------------------------------
# detection.iou
# ---------------------------------------------------------------------------------------------
NO_CLAMP_HINT = ("Disjoint boxes need IoU 0: clamp the width and height of the intersection at 0 "
                 "((bottom_right - top_left).clamp(min=0)) before multiplying them.")
PLUS_ONE_HINT = ("Coordinates are continuous: the area is (x1 - x0) * (y1 - y0), without the '+1 pixel' of "
                 "the old integer-pixel convention.")
NOT_PAIRWISE_HINT = "Return all pairs: broadcast boxes_a[:, None, :] against boxes_b[None, :, :] to get (N, M)."


def _iou_variant(a: torch.Tensor, b: torch.Tensor, how: str = "ok") -> torch.Tensor:
    one = 1.0 if how == "plus_one" else 0.0
    tl = torch.maximum(a[:, None, :2], b[None, :, :2])
    br = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = br - tl + one
    if how != "no_clamp":
        wh = wh.clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    area = lambda x: (x[:, 2] - x[:, 0] + one) * (x[:, 3] - x[:, 1] + one)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def _iou_float64(a: torch.Tensor, b: torch.Tensor):
    """IoU in float64 NumPy, one pair at a time: an independent oracle for large coordinates."""
    a, b = a.double().numpy(), b.double().numpy()
    out = []
    for p in a:
        row = []
        for q in b:
            w = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
            h = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
            inter = w * h
            union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter
            row.append(inter / union)
        out.append(row)
    return np.array(out, dtype=np.float64).reshape(len(a), len(b))


@exercise("detection.iou", hint="inter = (min of the far corners - max of the near corners).clamp(min=0), "
                                "multiplied over x and y; IoU = inter / (area_a + area_b - inter).")
def iou(answer, case):
    """Pairwise IoU (N, M) of (N, 4) and (M, 4) xyxy boxes."""
    g = torch.Generator().manual_seed(0)
    cases = [("6 x 5 random boxes", _random_boxes(6, g), _random_boxes(5, g)),
             ("disjoint boxes: apart along x only, along y only, and along both",
              torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]]),
              torch.tensor([[20.0, 0, 30, 10], [0, 20, 10, 30], [20, 20, 30, 30]])),
             ("identical, nested and half-overlapping boxes",
              torch.tensor([[0.0, 0, 10, 10], [2, 2, 4, 4]]),
              torch.tensor([[0.0, 0, 10, 10], [5, 0, 15, 10], [1, 1, 3, 3]])),
             ("one box against 40 random boxes", _random_boxes(1, g), _random_boxes(40, g))]
    for name, a, b in cases:
        with case(name):
            got = call(answer, a.clone(), b.clone())
            expected = torchvision.ops.box_iou(a, b)
            mistakes = [Mistake(_iou_variant(a, b, "no_clamp"), NO_CLAMP_HINT),
                        Mistake(_iou_variant(a, b, "plus_one"), PLUS_ONE_HINT)]
            expect_tensor(got, expected, name="IoU", atol=1e-5, dtype_check=False, mistakes=mistakes,
                          hint=NOT_PAIRWISE_HINT if got is not None and getattr(got, "shape", None) != expected.shape
                          else None)
    with case("boxes that only touch along an edge: IoU exactly 0"):
        a, b = torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([[10.0, 0, 20, 10], [0, 10, 10, 20]])
        got = call(answer, a.clone(), b.clone())
        expect_tensor(got, torch.zeros(1, 2), name="IoU", atol=1e-7, dtype_check=False,
                      hint=PLUS_ONE_HINT)
    with case("large coordinates (boxes in a 4000-pixel photo)"):
        a, b = _random_boxes(4, g, extent=3000, size=900), _random_boxes(3, g, extent=3000, size=900)
        got = call(answer, a.clone(), b.clone())
        expect_tensor(got, torch.from_numpy(_iou_float64(a, b)).float(), name="IoU", atol=1e-5,
                      dtype_check=False, mistakes=[Mistake(_iou_variant(a, b, "plus_one"), PLUS_ONE_HINT)])
    with case("the input boxes are not modified"):
        a, b = _random_boxes(5, g), _random_boxes(4, g)
        a_in, b_in = a.clone(), b.clone()
        call(answer, a_in, b_in)
        expect(torch.equal(a_in, a) and torch.equal(b_in, b), "your iou changed its input boxes.",
               hint="Compute new tensors (torch.maximum, -, *): no in-place operations on the inputs.")
    for n, m in ((0, 3), (3, 0), (0, 0)):
        with case(f"no boxes on one side: N = {n}, M = {m} gives a ({n}, {m}) matrix"):
            got = call(answer, _random_boxes(n, g), _random_boxes(m, g))
            expect_tensor_like(got, shape=(n, m), name="IoU", hint=NOT_PAIRWISE_HINT)


# ---------------------------------------------------------------------------------------------
# detection.nms
# ---------------------------------------------------------------------------------------------
ACROSS_CLASSES_HINT = ("Boxes of different classes must not suppress each other: only compare a box with boxes of "
                       "the same label (labels[:, None] == labels[None, :]).")
NOT_SORTED_HINT = ("Visit the boxes in order of decreasing score (torch.argsort(scores, descending=True)): the best "
                   "box of a cluster must survive, not the first one in the list.")
ORDER_HINT = "Return the kept indices sorted by decreasing score, not by index."
THRESHOLD_HINT = "Suppress a box when its IoU is strictly greater than iou_threshold (equal IoU is kept)."
LONG_HINT = ("Return the indices as a long tensor, also when nothing is kept: torch.tensor([]) is float32, "
             "torch.tensor(keep, dtype=torch.long) is not.")


def _greedy(boxes, scores, labels, thr, how="ok"):
    order = torch.arange(len(boxes)) if how == "unsorted" else torch.argsort(scores, descending=True, stable=True)
    iou = torchvision.ops.box_iou(boxes, boxes)
    same = labels[:, None] == labels[None, :] if how != "agnostic" else torch.ones(len(boxes), len(boxes), dtype=torch.bool)
    over = iou >= thr if how == "geq" else iou > thr
    removed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for i in order.tolist():
        if not removed[i]:
            keep.append(i)
            removed |= same[i] & over[i]
    keep = torch.tensor(keep, dtype=torch.long)
    if how == "unsorted":
        keep = keep[torch.argsort(scores[keep], descending=True, stable=True)]
    if how == "by_index":
        keep = keep.sort().values
    return keep


def _clusters(g, n_clusters, per_cluster, num_classes):
    centres = _random_boxes(n_clusters, g, extent=60, size=15)
    boxes = centres.repeat_interleave(per_cluster, 0) + torch.randn(n_clusters * per_cluster, 4, generator=g) * 1.5
    boxes[:, 2:] = torch.maximum(boxes[:, 2:], boxes[:, :2] + 1)
    scores = torch.rand(len(boxes), generator=g)
    labels = torch.randint(0, num_classes, (len(boxes),), generator=g)
    return boxes, scores, labels


@exercise("detection.nms", hint="order = argsort(scores, descending=True); for i in order: if not removed[i]: keep i; "
                                "removed |= same_class[i] & (iou[i] > iou_threshold).")
def nms(answer, case):
    """Per-class greedy NMS: kept indices by decreasing score, as torchvision.ops.batched_nms."""
    g = torch.Generator().manual_seed(1)
    cases = []
    for name, (nc, pc, k), thr in (("5 clusters of 6 boxes, 3 classes, threshold 0.5", (5, 6, 3), 0.5),
                                   ("8 clusters of 4 boxes, 1 class, threshold 0.3", (8, 4, 1), 0.3),
                                   ("4 clusters of 8 boxes, 2 classes, threshold 0.7", (4, 8, 2), 0.7)):
        cases.append((name, *_clusters(g, nc, pc, k), thr))
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 0, 11, 10], [0, 1, 10, 11], [30, 30, 40, 40]])
    cases.append(("a circle overlapping a square of the same place: both stay", boxes[:2],
                  torch.tensor([0.9, 0.8]), torch.tensor([0, 1]), 0.5))
    cases.append(("the best box is last in the list", boxes[:3], torch.tensor([0.5, 0.6, 0.9]),
                  torch.tensor([0, 0, 0]), 0.5))
    for name, b, s, lb, thr in cases:
        with case(name):
            got = call(answer, b.clone(), s.clone(), lb.clone(), thr)
            expected = torchvision.ops.batched_nms(b, s, lb, thr)
            mistakes = [Mistake(_greedy(b, s, lb, thr, how), h) for how, h in
                        (("agnostic", ACROSS_CLASSES_HINT), ("unsorted", NOT_SORTED_HINT), ("by_index", ORDER_HINT),
                         ("geq", THRESHOLD_HINT))]
            mistakes = [m for m in mistakes if not (m.value.shape == expected.shape and torch.equal(m.value, expected))]
            expect_tensor(got, expected, name="kept indices", dtype_check=False, mistakes=mistakes)
            expect(got.dtype == torch.long, f"kept indices must have dtype torch.long, got {got.dtype}.",
                   hint=LONG_HINT)
    # Two same-class boxes with IoU exactly 0.5 (intersection 8, union 16: exact in floating point),
    # and two boxes that only touch (IoU exactly 0).
    half = torch.tensor([[0.0, 0, 4, 4], [0, 0, 4, 2]])
    touching = torch.tensor([[0.0, 0, 10, 10], [10.0, 0, 20, 10]])
    for name, b, thr in (("IoU exactly at the threshold (0.5): both boxes stay", half, 0.5),
                         ("boxes that only touch (IoU 0) with threshold 0: both stay", touching, 0.0)):
        with case(name):
            got = call(answer, b.clone(), torch.tensor([0.9, 0.8]), torch.tensor([1, 1]), thr)
            expect_tensor(got, torch.tensor([0, 1]), name="kept indices", dtype_check=False,
                          mistakes=[Mistake(torch.tensor([0]), THRESHOLD_HINT)])
    with case("the inputs are not modified"):
        b, s, lb = _clusters(g, 3, 4, 2)
        b_in, s_in, lb_in = b.clone(), s.clone(), lb.clone()
        call(answer, b_in, s_in, lb_in, 0.5)
        expect(torch.equal(b_in, b) and torch.equal(s_in, s) and torch.equal(lb_in, lb),
               "your nms changed boxes, scores or labels.",
               hint="Mark suppressed boxes in a tensor of your own (removed = torch.zeros(N, dtype=torch.bool)), "
                    "not by overwriting the scores.")
    with case("one box: it is kept"):
        got = call(answer, boxes[:1].clone(), torch.tensor([0.3]), torch.tensor([2]), 0.5)
        expect_tensor(got, torch.tensor([0]), name="kept indices", dtype_check=False)
    with case("no boxes (N = 0): a long tensor of shape (0,)"):
        got = call(answer, torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long), 0.5)
        expect_tensor_like(got, shape=(0,), dtype=torch.long, name="kept indices", hint=LONG_HINT)


# ---------------------------------------------------------------------------------------------
# detection.encode_yolo_target
# ---------------------------------------------------------------------------------------------
EDGE_HINT = ("A centre on the image's right or bottom edge gives col = floor(c_x / s) = grid: clamp the row and "
             "column to grid - 1 (the offset is then 1).")
ROUND_HINT = "The cell is floor(c_x / s): a centre on a border belongs to the right/lower cell (not round, not ceil)."
CELL_SIZE_HINT = "The cell size s = image_size / grid is a float (12.5 pixels here): do not use integer division."
IMAGE_OFFSET_HINT = ("The centre offsets are relative to the *cell*: t_x = c_x / s - col with s = image_size / grid, "
                     "a number in [0, 1) -- not c_x / image_size.")
TRANSPOSED_HINT = "Index the grid as target[row, col] with row = floor(c_y / s) and col = floor(c_x / s)."
PIXEL_SIZE_HINT = "Width and height are fractions of the image: w / image_size, h / image_size."
FIRST_WINS_HINT = ("When two centres fall in one cell the later box in the list wins: overwrite the whole cell, "
                   "class included (clear the old one-hot first).")


def _encode(boxes, labels, grid, image_size, num_classes, how="ok"):
    t = encode_targets([boxes], [labels], grid, image_size, num_classes)[0]  # (S, S, 5 + C)
    if how == "transposed":
        return t.transpose(0, 1).contiguous()
    s = image_size / grid
    rows, cols = torch.nonzero(t[..., 4], as_tuple=True)
    for r, c in zip(rows.tolist(), cols.tolist()):
        if how == "image_offset":
            t[r, c, 0] = (t[r, c, 0] + c) * s / image_size
            t[r, c, 1] = (t[r, c, 1] + r) * s / image_size
        if how == "pixels":
            t[r, c, 2:4] = t[r, c, 2:4] * image_size
    return t


@exercise("detection.encode_yolo_target",
          hint="s = image_size / grid; col, row = floor(cx / s), floor(cy / s) (at most grid - 1); "
               "target[row, col] = [cx / s - col, cy / s - row, w / image_size, h / image_size, 1, one-hot].")
def encode_yolo_target(answer, case):
    """One image's YOLO target (S, S, 5 + C), compared with course_utils.models.yolo.encode_targets."""
    g = torch.Generator().manual_seed(2)
    b = _random_boxes(4, g, extent=30, size=15)
    cases = [("4 boxes, grid 6, image 48, 3 classes", b, torch.tensor([0, 2, 1, 2]), 6, 48, 3),
             ("3 boxes, grid 4, image 64, 5 classes", _random_boxes(3, g, extent=40, size=20),
              torch.tensor([4, 0, 3]), 4, 64, 5),
             ("boxes in the far corner cell and in the first cell",
              torch.tensor([[40.0, 44.0, 48.0, 48.0], [0.0, 0.0, 8.0, 6.0]]), torch.tensor([1, 0]), 6, 48, 3),
             ("an object centred on the image's right edge (c_x = image_size): column clamped to grid - 1",
              torch.tensor([[44.0, 20.0, 52.0, 30.0]]), torch.tensor([2]), 6, 48, 3),
             ("an object centred on the image's bottom edge (c_y = image_size): row clamped to grid - 1",
              torch.tensor([[10.0, 42.0, 20.0, 54.0]]), torch.tensor([0]), 6, 48, 3),
             ("a centre exactly on the border between two cells: it belongs to the right/lower cell",
              torch.tensor([[12.0, 4.0, 20.0, 12.0]]), torch.tensor([1]), 6, 48, 3),
             ("image_size / grid not an integer (image 50, grid 4: cells of 12.5 pixels)",
              torch.tensor([[20.0, 30.0, 30.0, 44.0], [2.0, 36.0, 10.0, 48.0]]), torch.tensor([1, 2]), 4, 50, 3),
             ("two centres in one cell: the later box wins",
              torch.tensor([[10.0, 10.0, 20.0, 20.0], [12.0, 11.0, 18.0, 19.0]]), torch.tensor([0, 2]), 3, 48, 3)]
    for name, boxes, labels, grid, size, nc in cases:
        with case(name):
            got = call(answer, boxes.clone(), labels.clone(), grid, size, nc)
            expected = _encode(boxes, labels, grid, size, nc)
            mistakes = [Mistake(_encode(boxes, labels, grid, size, nc, how), h) for how, h in
                        (("image_offset", IMAGE_OFFSET_HINT), ("transposed", TRANSPOSED_HINT),
                         ("pixels", PIXEL_SIZE_HINT))]
            mistakes.append(Mistake(_encode(boxes.flip(0), labels.flip(0), grid, size, nc), FIRST_WINS_HINT))
            hint = (EDGE_HINT if "edge" in name else ROUND_HINT if "border" in name
                    else CELL_SIZE_HINT if "not an integer" in name else None)
            expect_tensor(got, expected, name="target", atol=1e-5, dtype_check=False, mistakes=mistakes,
                          hint=hint)
    with case("the target is a float tensor; the inputs are not modified"):
        boxes, labels = _random_boxes(3, g, extent=30, size=15), torch.tensor([0, 1, 2])
        b_in, l_in = boxes.clone(), labels.clone()
        got = call(answer, b_in, l_in, 6, 48, 3)
        got = expect_tensor_like(got, shape=(6, 6, 8), name="target")
        expect(got.is_floating_point(), f"the target must be a float tensor, got {got.dtype}.",
               hint="Start from torch.zeros(grid, grid, 5 + num_classes) (float32).")
        expect(torch.equal(b_in, boxes) and torch.equal(l_in, labels), "your function changed boxes or labels.",
               hint="Read the boxes; write only into the target you create.")
    with case("no boxes: all zeros"):
        got = call(answer, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), 4, 32, 3)
        expect_tensor(got, torch.zeros(4, 4, 8), name="target", dtype_check=False)
