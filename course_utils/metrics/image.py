"""Image metrics: PSNR, SSIM (restoration) and the Dice coefficient (segmentation), batched in torch.

* PSNR = 10 log10(R² / MSE), R the data range (max − min possible value), per image.
* SSIM (Wang et al., 2004) compares local means μ, variances σ² and the covariance σ_xy in every
  7 x 7 window,

      SSIM(x, y) = (2 μ_x μ_y + C1)(2 σ_xy + C2) / ((μ_x² + μ_y² + C1)(σ_x² + σ_y² + C2)),
      C1 = (0.01 R)², C2 = (0.03 R)²,

  averaged over the windows that fit inside the image. The settings are scikit-image's defaults
  (uniform 7 x 7 window, unbiased sample covariance N/(N−1)), and the tests compare with
  ``skimage.metrics.structural_similarity`` and ``peak_signal_noise_ratio``.
* Dice = (2 |P ∩ T| + ε) / (|P| + |T| + ε) per image and class; ε makes two empty masks agree
  perfectly (Dice 1) instead of 0/0.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _as_batch(x: Tensor) -> Tensor:
    """(H, W), (C, H, W) or (B, C, H, W) -> (B, C, H, W) float64."""
    x = torch.as_tensor(x).double()
    while x.dim() < 4:
        x = x.unsqueeze(0)
    return x


def psnr(x: Tensor, reference: Tensor, data_range: float = 1.0) -> Tensor:
    """PSNR in dB of each image of x against reference: (B,) for (B, C, H, W) input (() for one image)."""
    single = torch.as_tensor(x).dim() < 4
    x, reference = _as_batch(x), _as_batch(reference)
    mse = (x - reference).pow(2).flatten(1).mean(1)  # (B,)
    out = 10 * torch.log10(data_range**2 / mse)
    return out[0] if single else out


def ssim(x: Tensor, reference: Tensor, data_range: float = 1.0, win_size: int = 7) -> Tensor:
    """Mean SSIM of each image (channels averaged): (B,) for (B, C, H, W) input (() for one image)."""
    single = torch.as_tensor(x).dim() < 4
    x, y = _as_batch(x), _as_batch(reference)
    B, C, H, W = x.shape
    x, y = x.reshape(B * C, 1, H, W), y.reshape(B * C, 1, H, W)
    mean = lambda t: F.avg_pool2d(t, win_size, stride=1)  # (B*C, 1, H-6, W-6): every window that fits
    n = win_size**2
    cov_norm = n / (n - 1)  # unbiased sample (co)variances, as skimage
    mu_x, mu_y = mean(x), mean(y)
    var_x = cov_norm * (mean(x * x) - mu_x**2)
    var_y = cov_norm * (mean(y * y) - mu_y**2)
    cov = cov_norm * (mean(x * y) - mu_x * mu_y)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    out = s.flatten(1).mean(1).reshape(B, C).mean(1)  # (B,)
    return out[0] if single else out


def dice(pred: Tensor, target: Tensor, eps: float = 1e-6) -> Tensor:
    """Dice of binary masks, per image: pred, target (B, H, W) or (B, K, H, W) bool/0-1 -> (B,) or (B, K)."""
    pred, target = pred.float(), target.float()
    inter = (pred * target).flatten(-2).sum(-1)  # (B,) or (B, K)
    total = pred.flatten(-2).sum(-1) + target.flatten(-2).sum(-1)
    return (2 * inter + eps) / (total + eps)
