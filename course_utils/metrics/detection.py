"""Detection metrics: precision-recall, average precision (AP), mAP@0.5 and mAP@[.5:.95].

For one class and one IoU threshold t, sort all detections of that class (over all images) by
decreasing score. A detection is a *true positive* when it overlaps a not-yet-matched ground-truth
box of its class in its image with IoU ≥ t (it takes the best such box), else a *false positive*.
After the k best detections:

    precision_k = TP_k / k,        recall_k = TP_k / (number of ground-truth boxes)

The precision-recall curve is made monotone, p̃(r) = max_{r' ≥ r} p(r'), and AP is its mean at
the 101 recall levels 0, 0.01, ..., 1 (the COCO convention):

    AP = (1/101) Σ_{r ∈ {0, .01, ..., 1}} p̃(r)          (0 where recall r is never reached)

mAP@0.5 averages AP over the classes that have ground truth at t = 0.5; mAP@[.5:.95] also
averages over t = 0.50, 0.55, ..., 0.95, rewarding boxes that are *precisely* placed. This
follows pycocotools' ``COCOeval`` (bbox, area "all", at most ``max_detections`` per image) and is
cross-checked against it in ``tests/test_metrics_detection.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch

from course_utils.models.boxes import box_iou

IOU_THRESHOLDS = tuple(np.round(np.linspace(0.5, 0.95, 10), 2))
RECALL_LEVELS = np.linspace(0.0, 1.0, 101)


@dataclass
class DetectionResult:
    """What ``evaluate_detections`` measured.

    ``ap``: (T, K) AP per IoU threshold and class (NaN for a class without ground truth);
    ``curves``: per class, the (recall, precision) arrays at IoU 0.5 (before interpolation).
    """

    map50: float
    map: float
    ap: np.ndarray
    iou_thresholds: tuple
    curves: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"mAP@0.5 {self.map50:.3f}, mAP@[.5:.95] {self.map:.3f}"


def _as_numpy(x, dtype) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _check(items: Sequence[dict], keys: tuple, what: str) -> None:
    for i, item in enumerate(items):
        missing = [k for k in keys if k not in item]
        if missing:
            raise ValueError(f"{what}[{i}] lacks {missing}: each {what[:-1]} is a dict with keys {keys}.")


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """101-point interpolated AP from a PR curve listed by decreasing score (COCO).

    p̃(r) = max_{r' ≥ r} p(r');   AP = mean over r ∈ {0, .01, ..., 1} of p̃(first point with recall ≥ r)
    """
    recall, precision = np.asarray(recall, float), np.asarray(precision, float)
    if len(recall) == 0:
        return 0.0
    p = np.maximum.accumulate(precision[::-1])[::-1]  # monotone envelope, right to left
    idx = np.searchsorted(recall, RECALL_LEVELS, side="left")  # first point reaching each level
    q = np.where(idx < len(p), p[np.minimum(idx, len(p) - 1)], 0.0)  # (101,)
    return float(q.mean())


def evaluate_detections(predictions: Sequence[dict], targets: Sequence[dict], num_classes: Optional[int] = None,
                        iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
                        max_detections: int = 100) -> DetectionResult:
    """mAP of detections against ground truth, one dict per image.

    ``predictions[i]``: ``boxes`` (D, 4) xyxy, ``scores`` (D,), ``labels`` (D,) ints;
    ``targets[i]``: ``boxes`` (G, 4) xyxy, ``labels`` (G,). Classes are 0..num_classes-1
    (default: 1 + the largest label seen).
    """
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions but {len(targets)} targets: give one dict per image each.")
    _check(predictions, ("boxes", "scores", "labels"), "predictions")
    _check(targets, ("boxes", "labels"), "targets")
    preds = [{k: _as_numpy(p[k], float if k != "labels" else np.int64) for k in ("boxes", "scores", "labels")}
             for p in predictions]
    gts = [{k: _as_numpy(t[k], float if k != "labels" else np.int64) for k in ("boxes", "labels")} for t in targets]
    for d in preds + gts:
        d["boxes"] = d["boxes"].reshape(-1, 4)
    if num_classes is None:
        seen = [d["labels"].max() for d in preds + gts if d["labels"].size]
        num_classes = int(max(seen)) + 1 if seen else 1
    thresholds = np.asarray(iou_thresholds, float)
    T = len(thresholds)
    ap = np.full((T, num_classes), np.nan)
    curves = {}
    for c in range(num_classes):
        n_gt = sum(int((g["labels"] == c).sum()) for g in gts)
        scores_all, tp_all = [], []  # per image: scores (D,), matches (T, D)
        for p, g in zip(preds, gts):
            pm, gm = p["labels"] == c, g["labels"] == c
            scores = p["scores"][pm]
            order = np.argsort(-scores, kind="mergesort")[:max_detections]  # best first, stable
            scores, boxes = scores[order], p["boxes"][pm][order]
            gt_boxes = g["boxes"][gm]
            tp = np.zeros((T, len(scores)), bool)
            if len(scores) and len(gt_boxes):
                iou = box_iou(torch.as_tensor(boxes), torch.as_tensor(gt_boxes)).numpy()  # (D, G)
                for ti, t in enumerate(np.minimum(thresholds, 1 - 1e-10)):
                    taken = np.zeros(len(gt_boxes), bool)
                    for d in range(len(scores)):
                        candidates = np.where(~taken & (iou[d] >= t), iou[d], -1.0)  # (G,)
                        m = int(np.argmax(candidates[::-1]))  # the last best, as pycocotools
                        m = len(gt_boxes) - 1 - m
                        if candidates[m] >= 0:
                            taken[m], tp[ti, d] = True, True
            scores_all.append(scores)
            tp_all.append(tp)
        if n_gt == 0:
            continue  # AP undefined: left as NaN and out of the mean
        scores = np.concatenate(scores_all)
        order = np.argsort(-scores, kind="mergesort")
        tp = np.concatenate(tp_all, axis=1)[:, order]  # (T, D)
        tp_cum = np.cumsum(tp, axis=1)
        fp_cum = np.cumsum(~tp, axis=1)
        for ti in range(T):
            recall = tp_cum[ti] / n_gt  # recall_k = TP_k / #GT
            precision = tp_cum[ti] / np.maximum(tp_cum[ti] + fp_cum[ti], np.finfo(float).eps)  # TP_k / k
            ap[ti, c] = average_precision(recall, precision)
            if np.isclose(thresholds[ti], 0.5):
                curves[c] = (recall, precision)
    valid = ~np.isnan(ap)
    i50 = np.flatnonzero(np.isclose(thresholds, 0.5))
    map50 = float(np.nanmean(ap[i50[0]])) if len(i50) and valid[i50[0]].any() else float("nan")
    mean_all = float(np.nanmean(ap)) if valid.any() else float("nan")
    return DetectionResult(map50=map50, map=mean_all, ap=ap, iou_thresholds=tuple(thresholds), curves=curves)
