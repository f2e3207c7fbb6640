"""Chapter 3's exercise checks: pass on the book's reference answers, fail on plausible wrong
answers, with a message that says what is wrong."""
import pytest
import torch
from torchvision.ops import box_iou

from course_utils.exercises import run_check
from exercise_conditions import assert_mistake, case
from exercise_support import book, failed_cases, failure  # noqa: F401  (book: a fixture)


# --- iou -----------------------------------------------------------------------------------------
def _iou(a, b, clamp=True, one=0.0):
    tl = torch.maximum(a[:, None, :2], b[None, :, :2])
    br = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = br - tl + one
    if clamp:
        wh = wh.clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    area = lambda x: (x[:, 2] - x[:, 0] + one) * (x[:, 3] - x[:, 1] + one)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def iou_no_clamp(a, b):
    return _iou(a, b, clamp=False)


def iou_plus_one(a, b):
    return _iou(a, b, one=1.0)


def iou_elementwise(a, b):  # the diagonal only: not pairwise
    n = min(len(a), len(b))
    return _iou(a[:n], b[:n]).diagonal()


def iou_over_min_area(a, b):  # intersection over the smaller box, not the union
    tl = torch.maximum(a[:, None, :2], b[None, :, :2])
    br = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (br - tl).clamp(min=0).prod(-1)
    area = lambda x: (x[:, 2:] - x[:, :2]).prod(-1)  # noqa: E731
    return inter / torch.minimum(area(a)[:, None], area(b)[None, :])


@pytest.mark.parametrize("answer, expected", [
    (iou_no_clamp, "clamp"),
    (iou_plus_one, "+1 pixel"),
    (iou_elementwise, "shape"),
    (iou_over_min_area, "differ"),
])
def test_iou_mistakes(answer, expected):
    result, text = failure("detection.iou", answer)
    assert expected in text


# --- nms -----------------------------------------------------------------------------------------
def _greedy(boxes, scores, labels, thr, agnostic=False, sort=True, strict=True, sort_output=True):
    order = torch.argsort(scores, descending=True) if sort else torch.arange(len(boxes))
    iou = box_iou(boxes, boxes)
    same = torch.ones_like(iou, dtype=torch.bool) if agnostic else labels[:, None] == labels[None, :]
    removed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for i in order.tolist():
        if not removed[i]:
            keep.append(i)
            removed |= same[i] & ((iou[i] > thr) if strict else (iou[i] >= thr))
    keep = torch.tensor(keep, dtype=torch.long)
    return keep[torch.argsort(scores[keep], descending=True)] if sort_output else keep.sort().values


def nms_across_classes(boxes, scores, labels, thr):
    return _greedy(boxes, scores, labels, thr, agnostic=True)


def nms_not_sorted(boxes, scores, labels, thr):
    return _greedy(boxes, scores, labels, thr, sort=False)


def nms_index_order(boxes, scores, labels, thr):
    return _greedy(boxes, scores, labels, thr, sort_output=False)


def nms_float_indices(boxes, scores, labels, thr):
    return _greedy(boxes, scores, labels, thr).float()


@pytest.mark.parametrize("answer, expected", [
    (nms_across_classes, "different classes must not suppress"),
    (nms_not_sorted, "decreasing score"),
    (nms_index_order, "sorted by decreasing score, not by index"),
    (nms_float_indices, "dtype"),
])
def test_nms_mistakes(answer, expected):
    result, text = failure("detection.nms", answer)
    assert expected in text


def test_nms_mistake_names_the_class_case():
    result, _ = failure("detection.nms", nms_across_classes)
    assert any("circle overlapping a square" in name for name in failed_cases(result))


# --- encode_yolo_target --------------------------------------------------------------------------
def _encode(boxes, labels, grid, image_size, num_classes, offset="cell", transpose=False, pixels=False):
    s = image_size / grid
    t = torch.zeros(grid, grid, 5 + num_classes)
    for (x0, y0, x1, y1), label in zip(boxes.tolist(), labels.tolist()):
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        col, row = min(int(cx // s), grid - 1), min(int(cy // s), grid - 1)
        tx, ty = (cx / s - col, cy / s - row) if offset == "cell" else (cx / image_size, cy / image_size)
        w, h = (x1 - x0, y1 - y0) if pixels else ((x1 - x0) / image_size, (y1 - y0) / image_size)
        r, c = (col, row) if transpose else (row, col)
        t[r, c] = 0
        t[r, c, :5] = torch.tensor([tx, ty, w, h, 1.0])
        t[r, c, 5 + label] = 1.0
    return t


def encode_image_offsets(boxes, labels, grid, image_size, num_classes):
    return _encode(boxes, labels, grid, image_size, num_classes, offset="image")


def encode_transposed(boxes, labels, grid, image_size, num_classes):
    return _encode(boxes, labels, grid, image_size, num_classes, transpose=True)


def encode_pixels(boxes, labels, grid, image_size, num_classes):
    return _encode(boxes, labels, grid, image_size, num_classes, pixels=True)


def encode_first_wins(boxes, labels, grid, image_size, num_classes):
    return _encode(boxes.flip(0), labels.flip(0), grid, image_size, num_classes)


@pytest.mark.parametrize("answer, expected", [
    (encode_image_offsets, "relative to the *cell*"),
    (encode_transposed, "target[row, col]"),
    (encode_pixels, "fractions of the image"),
    (encode_first_wins, "later box wins"),
])
def test_encode_yolo_target_mistakes(answer, expected):
    result, text = failure("detection.encode_yolo_target", answer)
    assert expected in text



# --- boundaries, empty input, dtype, inputs not modified ---------------------------------------
def iou_in_place(a, b):  # turns a into widths/heights in place
    a[:, 2:] -= a[:, :2]
    a[:, 2:] += a[:, :2]
    a += 0.5
    return _iou(a - 0.5, b)


def nms_geq(boxes, scores, labels, thr):  # suppresses at IoU == threshold too
    return _greedy(boxes, scores, labels, thr, strict=False)


def nms_float_when_empty(boxes, scores, labels, thr):  # torch.tensor([]) is float32
    keep = _greedy(boxes, scores, labels, thr).tolist()
    return torch.tensor(keep) if not keep else torch.tensor(keep, dtype=torch.long)


def nms_int32(boxes, scores, labels, thr):
    return _greedy(boxes, scores, labels, thr).int()


def nms_overwrites_scores(boxes, scores, labels, thr):  # marks suppressed boxes in the caller's scores
    keep = _greedy(boxes, scores, labels, thr)
    scores[:] = -1.0
    return keep


def encode_no_clamp(boxes, labels, grid, image_size, num_classes):
    s = image_size / grid
    t = torch.zeros(grid, grid, 5 + num_classes)
    for (x0, y0, x1, y1), label in zip(boxes.tolist(), labels.tolist()):
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        col, row = int(cx // s), int(cy // s)
        t[row, col] = 0
        t[row, col, :5] = torch.tensor([cx / s - col, cy / s - row, (x1 - x0) / image_size, (y1 - y0) / image_size, 1])
        t[row, col, 5 + label] = 1.0
    return t


def encode_integer_cell(boxes, labels, grid, image_size, num_classes):  # s = image_size // grid
    return _encode(boxes, labels, grid, (image_size // grid) * grid, num_classes) if image_size % grid == 0 \
        else _encode_with_cell(boxes, labels, grid, image_size, num_classes, image_size // grid)


def _encode_with_cell(boxes, labels, grid, image_size, num_classes, s):
    t = torch.zeros(grid, grid, 5 + num_classes)
    for (x0, y0, x1, y1), label in zip(boxes.tolist(), labels.tolist()):
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        col, row = min(int(cx // s), grid - 1), min(int(cy // s), grid - 1)
        t[row, col] = 0
        t[row, col, :5] = torch.tensor([cx / s - col, cy / s - row, (x1 - x0) / image_size, (y1 - y0) / image_size, 1])
        t[row, col, 5 + label] = 1.0
    return t


def encode_ceil_minus_one(boxes, labels, grid, image_size, num_classes):  # a border goes to the left cell
    import math
    s = image_size / grid
    t = torch.zeros(grid, grid, 5 + num_classes)
    for (x0, y0, x1, y1), label in zip(boxes.tolist(), labels.tolist()):
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        col = min(max(math.ceil(cx / s) - 1, 0), grid - 1)
        row = min(max(math.ceil(cy / s) - 1, 0), grid - 1)
        t[row, col] = 0
        t[row, col, :5] = torch.tensor([cx / s - col, cy / s - row, (x1 - x0) / image_size, (y1 - y0) / image_size, 1])
        t[row, col, 5 + label] = 1.0
    return t


@pytest.mark.parametrize("exercise_id, answer, expected_case", [
    ("detection.iou", iou_in_place, "not modified"),
    ("detection.nms", nms_geq, "IoU exactly at the threshold"),
    ("detection.nms", nms_float_when_empty, "N = 0"),
    ("detection.nms", nms_int32, "5 clusters"),
    ("detection.nms", nms_overwrites_scores, "not modified"),
    ("detection.encode_yolo_target", encode_no_clamp, "right edge"),
    ("detection.encode_yolo_target", encode_integer_cell, "not an integer"),
    ("detection.encode_yolo_target", encode_ceil_minus_one, "border between two cells"),
])
def test_new_boundary_cases_catch_their_mistakes(exercise_id, answer, expected_case):
    assert_mistake(exercise_id, answer, (), holds=case(expected_case))


def test_alternative_answers_pass():
    import importlib.util
    from pathlib import Path
    for module in ("detection", "gans"):
        path = Path(__file__).parent / "alternatives" / f"{module}.py"
        spec = importlib.util.spec_from_file_location(f"alternatives_{module}", path)
        alternatives = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(alternatives)
        for exercise_id, sources in alternatives.ALTERNATIVES.items():
            assert len(sources) >= 2, exercise_id
            for source in sources:
                namespace = {}
                exec(source, namespace)
                result = run_check(exercise_id, namespace[exercise_id.split(".")[1]])
                assert result.passed, (exercise_id, result.messages)
