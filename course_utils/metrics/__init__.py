"""Metrics of the course, one family per module.

* ``image`` -- PSNR, SSIM (restoration) and the Dice coefficient (segmentation)
"""
from course_utils.metrics.image import dice, psnr, ssim

__all__ = ["dice", "psnr", "ssim"]
