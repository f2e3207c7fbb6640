"""Metrics of the course, one family per module.

* ``image``      -- PSNR, SSIM (restoration) and the Dice coefficient (segmentation) (Chapter 5)
* ``detection``  -- precision-recall, average precision, mAP@0.5 and mAP@[.5:.95] (Chapter 3)
* ``froc``       -- free-response ROC: lesion sensitivity at fixed false positives per image (Chapter 8)
* ``generative`` -- Fréchet distance on a classifier's features, class coverage, within-class
  diversity and gradient energy, for judging generated images (Chapters 4 and 7)
"""
from course_utils.metrics.detection import DetectionResult, average_precision, evaluate_detections
from course_utils.metrics.froc import FROCResult, froc
from course_utils.metrics.generative import (
    class_coverage,
    frechet_distance,
    gradient_energy,
    within_class_diversity,
)
from course_utils.metrics.image import dice, psnr, ssim

__all__ = [
    "dice", "psnr", "ssim",
    "DetectionResult", "average_precision", "evaluate_detections",
    "FROCResult", "froc",
    "frechet_distance", "class_coverage", "within_class_diversity", "gradient_energy",
]
