"""FROC: per-lesion sensitivity against false positives per image -- the standard curve of CAD.

A CAD system marks suspicious regions with scores. Unlike ROC (one decision per image), it may
mark several regions per image, and what matters to a radiologist is how many true lesions it
finds for how many false marks it makes. Sweeping a score threshold t:

    a mark is a *hit* if it overlaps a not-yet-found lesion (IoU >= iou_threshold, greedy by score);
    sensitivity(t) = #lesions hit by marks with score >= t / #lesions
    FPPI(t)        = #marks with score >= t that find no new lesion / #images

The FROC curve plots sensitivity against FPPI (Bunch et al., 1978; Chakraborty, 1989). A single
number: the sensitivity at a fixed FPPI (e.g. 0.5 or 1 false positive per image), or the mean
sensitivity at FPPI in {1/8, 1/4, 1/2, 1, 2, 4, 8} (the LUNA16 / CAMELYON16 "CPM" score).
A false positive is a mark that finds no *new* lesion: a mark on empty tissue, and also a repeated
mark on a lesion an earlier (higher-scored) mark already found (the strict convention).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torchvision.ops import box_iou

CPM_FPPI = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass
class FROCResult:
    fppi: np.ndarray  # (T,) false positives per image at each distinct threshold, increasing
    sensitivity: np.ndarray  # (T,) per-lesion sensitivity there
    thresholds: np.ndarray  # (T,) the score thresholds, decreasing
    n_lesions: int
    n_images: int

    def at(self, fppi: float) -> float:
        """Sensitivity at most ``fppi`` false positives per image (0 if no threshold achieves it)."""
        return sensitivity_at_fp_curve(self.fppi, self.sensitivity, fppi)

    def cpm(self, points: Sequence[float] = CPM_FPPI) -> float:
        """Mean sensitivity at the FPPI ``points`` (the competition performance metric)."""
        return float(np.mean([self.at(f) for f in points]))

    def __str__(self) -> str:
        return (f"FROC over {self.n_images} images, {self.n_lesions} lesions: sensitivity "
                + ", ".join(f"{self.at(f):.2f} @ {f:g}" for f in (0.25, 0.5, 1.0, 2.0)) + " FP/image")


def sensitivity_at_fp_curve(fppi: np.ndarray, sensitivity: np.ndarray, fp: float) -> float:
    """The largest sensitivity of the curve at FPPI <= ``fp`` (0 if none)."""
    ok = fppi <= fp + 1e-12
    return float(sensitivity[ok].max()) if ok.any() else 0.0


def froc_from_marks(scores, hits, n_lesions: int, n_images: int) -> FROCResult:
    """The FROC curve from flattened marks: ``scores`` (D,), ``hits`` (D,) bool (the mark found a new lesion).

    At threshold t (every distinct score, decreasing; tied marks enter together):
        sensitivity(t) = Σ_{s_d >= t} hit_d / n_lesions,   FPPI(t) = Σ_{s_d >= t} (1 - hit_d) / n_images
    """
    if n_lesions < 1 or n_images < 1:
        raise ValueError(f"need n_lesions >= 1 and n_images >= 1, got {n_lesions} and {n_images}.")
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    hits = np.asarray(hits, dtype=bool).reshape(-1)
    if scores.shape != hits.shape:
        raise ValueError(f"scores {scores.shape} and hits {hits.shape} must have the same length.")
    if hits.sum() > n_lesions:
        raise ValueError(f"{int(hits.sum())} hits but only {n_lesions} lesions: a lesion can be hit once.")
    order = np.argsort(-scores, kind="stable")
    s, h = scores[order], hits[order]
    tp, fp = np.cumsum(h), np.cumsum(~h)
    last = np.r_[s[1:] != s[:-1], True] if len(s) else np.zeros(0, bool)  # the last mark of each tie group
    # sensitivity(t) = TP(t) / n_lesions;  FPPI(t) = FP(t) / n_images
    sens = np.r_[0.0, tp[last] / n_lesions]
    fppi = np.r_[0.0, fp[last] / n_images]
    thr = np.r_[np.inf, s[last]]
    return FROCResult(fppi, sens, thr, n_lesions, n_images)


def sensitivity_at_fp(scores, hits, n_lesions: int, n_images: int, fppi: float) -> float:
    """One FROC point: the per-lesion sensitivity at most ``fppi`` false positives per image.

    ``scores`` (D,) and ``hits`` (D,) bool as in :func:`froc_from_marks` (the course's answer to the
    exercise ``medical.sensitivity_at_fp``); 0.0 when no threshold keeps within the budget.
    """
    return froc_from_marks(scores, hits, n_lesions, n_images).at(fppi)


def match_marks(predictions: Sequence[dict], targets: Sequence[dict], iou_threshold: float = 0.3):
    """Greedy matching by score, per image: (scores (D,), hits (D,) bool, n_lesions).

    predictions: dicts with ``boxes`` (D_i, 4) xyxy and ``scores`` (D_i,); targets: dicts with ``boxes`` (K_i, 4).
    """
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions but {len(targets)} targets.")
    all_scores, all_hits, n_lesions = [], [], 0
    for pred, tgt in zip(predictions, targets):
        pb = torch.as_tensor(pred["boxes"], dtype=torch.float32).reshape(-1, 4)
        ps = torch.as_tensor(pred["scores"], dtype=torch.float32).reshape(-1)
        tb = torch.as_tensor(tgt["boxes"], dtype=torch.float32).reshape(-1, 4)
        n_lesions += len(tb)
        order = ps.argsort(descending=True)
        found = torch.zeros(len(tb), dtype=torch.bool)
        iou = box_iou(pb, tb) if len(pb) and len(tb) else torch.zeros(len(pb), len(tb))  # (D_i, K_i)
        for d in order.tolist():
            hit = False
            if len(tb):
                cand = iou[d].masked_fill(found, -1.0)
                k = int(cand.argmax())
                if cand[k] >= iou_threshold:
                    found[k] = hit = True
            all_scores.append(float(ps[d]))
            all_hits.append(hit)
    return np.array(all_scores), np.array(all_hits, dtype=bool), n_lesions


def froc(predictions: Sequence[dict], targets: Sequence[dict], iou_threshold: float = 0.3) -> FROCResult:
    """FROC curve of detections ``predictions`` against lesion boxes ``targets`` (one dict per image)."""
    scores, hits, n_lesions = match_marks(predictions, targets, iou_threshold)
    return froc_from_marks(scores, hits, n_lesions, len(targets))
