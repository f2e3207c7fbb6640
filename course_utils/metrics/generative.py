"""Metrics of generative models: Fréchet distance, class coverage, diversity and image sharpness.

* **Fréchet distance** between two sets of feature vectors (Heusel et al., 2017: FID when the
  features are Inception-v3's). Fit a Gaussian to each set -- means μ_a, μ_b, covariances Σ_a, Σ_b --
  and take the Fréchet (2-Wasserstein) distance between the Gaussians,

      FD = ||μ_a − μ_b||² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½).

  Tr((Σ_a Σ_b)^½) is computed stably as Σ_i sqrt(λ_i), λ_i the eigenvalues of the symmetric PSD
  matrix Σ_a^½ Σ_b Σ_a^½, which has the same eigenvalues as Σ_a Σ_b. The tests compare it with
  ``scipy.linalg.sqrtm`` and with the closed form for known Gaussians.

* **Bootstrap of a Fréchet distance**: how much FD would move with another draw of the same number
  of samples. Resample the sample features with replacement (the reference set stays fixed) and
  recompute FD, all resamples at once -- no image is generated again. Duplicated rows shrink the
  resampled covariance's effective sample size, so the resampled FDs sit somewhat above the
  estimate itself (FD's small-sample bias, made visible).

* **Class coverage** of a set of samples, from a classifier's predicted classes: the histogram
  p_k (fraction of samples per class), how many classes hold at least ``min_fraction`` of the
  samples, and the normalised entropy

      H_norm = −Σ_k p_k log p_k / log K      (1: perfectly even; 0: a single class -- mode collapse).

* **Within-class diversity**: the per-pixel standard deviation among the images of one class, averaged
  over pixels and classes -- 0 when a generator draws every class as one fixed image.

* **Gradient energy**, a sharpness measure: the mean squared finite difference between neighbouring
  pixels, E = mean((x[i+1, j] − x[i, j])²) + mean((x[i, j+1] − x[i, j])²). Blurry images have less
  of it than the targets they blur.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor


def _as_features(x, name: str) -> Tensor:
    x = torch.as_tensor(x).double()
    if x.dim() != 2:
        raise ValueError(f"{name} must be a (N, D) matrix of feature vectors, got shape {tuple(x.shape)}.")
    if len(x) < 2:
        raise ValueError(f"{name} has {len(x)} vector(s): a covariance needs at least 2.")
    return x


def _sqrt_psd(m: Tensor) -> Tensor:
    """Square root of a symmetric positive semi-definite matrix via its eigendecomposition."""
    w, v = torch.linalg.eigh(m)  # m = V diag(w) V^T
    return (v * w.clamp(min=0).sqrt()) @ v.T


def _frechet_terms(mu_a: Tensor, cov_a: Tensor, root_a: Tensor, mu_b: Tensor, cov_b: Tensor) -> Tensor:
    """FD between N(mu_a, cov_a) and each N(mu_b, cov_b); ``root_a`` = Σ_a^½.

    mu_b (..., D) and cov_b (..., D, D) may carry leading batch dimensions; returns (...).
    """
    middle = root_a @ cov_b @ root_a  # Σ_a^½ Σ_b Σ_a^½: same eigenvalues as Σ_a Σ_b, (..., D, D)
    middle = 0.5 * (middle + middle.transpose(-1, -2))  # symmetric up to rounding
    # Tr((Σ_a Σ_b)^½) = Σ_i sqrt(λ_i)
    tr_sqrt = torch.linalg.eigvalsh(middle).clamp(min=0).sqrt().sum(-1)  # (...)
    trace_b = cov_b.diagonal(dim1=-2, dim2=-1).sum(-1)  # (...)
    # FD = ||μ_a − μ_b||² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½)
    fd = (mu_a - mu_b).pow(2).sum(-1) + torch.trace(cov_a) + trace_b - 2 * tr_sqrt
    return fd.clamp(min=0.0)


def gaussian_frechet_distance(mu_a: Tensor, cov_a: Tensor, mu_b: Tensor, cov_b: Tensor) -> float:
    """Fréchet distance between N(mu_a, cov_a) and N(mu_b, cov_b) (float64)."""
    mu_a, mu_b, cov_a, cov_b = (torch.as_tensor(t).double() for t in (mu_a, mu_b, cov_a, cov_b))
    if mu_a.shape != mu_b.shape or cov_a.shape != cov_b.shape or cov_a.shape != (len(mu_a), len(mu_a)):
        raise ValueError(f"shapes do not match: mu {tuple(mu_a.shape)}, {tuple(mu_b.shape)}; "
                         f"cov {tuple(cov_a.shape)}, {tuple(cov_b.shape)}.")
    return _frechet_terms(mu_a, cov_a, _sqrt_psd(cov_a), mu_b, cov_b).item()


def frechet_distance(feats_a, feats_b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N_a, D) and (N_b, D).

    FD = ||μ_a − μ_b||² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½), with unbiased (N − 1) covariances.
    """
    a, b = _as_features(feats_a, "feats_a"), _as_features(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} and {b.shape[1]}.")
    return gaussian_frechet_distance(a.mean(0), torch.cov(a.T).reshape(a.shape[1], -1),
                                     b.mean(0), torch.cov(b.T).reshape(b.shape[1], -1))


def frechet_distance_bootstrap(feats_ref, feats, n_boot: int = 200,
                               generator: Optional[torch.Generator] = None) -> Tensor:
    """Fréchet distances between ``feats_ref`` (N_a, D) and ``n_boot`` resamples of ``feats`` (N, D).

    Resample r draws N rows of ``feats`` with replacement, idx_r ~ U{0..N-1}^N (one (n_boot, N)
    draw from ``generator``), and returns FD(feats_ref, feats[idx_r]) for every r, (n_boot,) float64:
    the same numbers as calling :func:`frechet_distance` in a loop, computed as one batch
    (μ_r (n_boot, D), Σ_r (n_boot, D, D), one batched eigendecomposition).
    """
    a, b = _as_features(feats_ref, "feats_ref"), _as_features(feats, "feats")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} and {b.shape[1]}.")
    if n_boot < 1:
        raise ValueError(f"n_boot={n_boot}: need at least one resample.")
    mu_a, cov_a = a.mean(0), torch.cov(a.T).reshape(a.shape[1], -1)
    idx = torch.randint(len(b), (n_boot, len(b)), generator=generator)  # (n_boot, N)
    resampled = b[idx]  # (n_boot, N, D)
    mu_b = resampled.mean(1)  # (n_boot, D)
    centred = resampled - mu_b[:, None]  # (n_boot, N, D)
    cov_b = centred.transpose(1, 2) @ centred / (len(b) - 1)  # (n_boot, D, D), unbiased
    return _frechet_terms(mu_a, cov_a, _sqrt_psd(cov_a), mu_b, cov_b)  # (n_boot,)


@dataclass
class Coverage:
    """Class coverage of a set of samples (see ``class_coverage``)."""

    histogram: Tensor  # (K,) fraction of samples per class, sums to 1
    classes_present: int  # classes with at least min_fraction of the samples
    evenness: float  # normalised entropy of the histogram, in [0, 1]

    def __str__(self) -> str:
        return (f"{self.classes_present}/{len(self.histogram)} classes present, "
                f"evenness {self.evenness:.2f}, largest class {self.histogram.max():.0%}")


def class_coverage(predicted, num_classes: int, min_fraction: float = 0.02) -> Coverage:
    """How many classes a set of samples covers, and how evenly, from predicted labels (N,).

    p_k = #{i: predicted_i = k} / N;  present: p_k >= min_fraction;
    evenness H_norm = −Σ_k p_k log p_k / log K.
    """
    predicted = torch.as_tensor(predicted)
    if predicted.dim() != 1 or len(predicted) == 0 or predicted.dtype.is_floating_point:
        raise ValueError(f"predicted must be a non-empty (N,) tensor of class indices, got "
                         f"{tuple(predicted.shape)} of {predicted.dtype}.")
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes}: coverage needs at least 2 classes.")
    if predicted.min() < 0 or predicted.max() >= num_classes:
        raise ValueError(f"predicted classes must lie in [0, {num_classes}).")
    p = torch.bincount(predicted.long(), minlength=num_classes).double() / len(predicted)  # (K,)
    entropy = -(p[p > 0] * p[p > 0].log()).sum().item()  # −Σ p_k log p_k
    return Coverage(histogram=p.float(), classes_present=int((p >= min_fraction).sum()),
                    evenness=max(entropy / math.log(num_classes), 0.0) + 0.0)


def gradient_energy(images: Tensor) -> Tensor:
    """Mean squared difference of neighbouring pixels, per image: (B,) for (B, C, H, W).

    E = mean((x[i+1, j] − x[i, j])²) + mean((x[i, j+1] − x[i, j])²)
    """
    images = torch.as_tensor(images)
    if images.dim() != 4 or min(images.shape[-2:]) < 2:
        raise ValueError(f"images must be (B, C, H, W) with H, W >= 2, got {tuple(images.shape)}.")
    dy = images[..., 1:, :] - images[..., :-1, :]  # (B, C, H-1, W)
    dx = images[..., :, 1:] - images[..., :, :-1]  # (B, C, H, W-1)
    return dy.pow(2).flatten(1).mean(1) + dx.pow(2).flatten(1).mean(1)  # (B,)


def within_class_diversity(images: Tensor, labels: Tensor) -> float:
    """How much images of the same class differ: the per-pixel standard deviation within each class,
    averaged over the pixels, then over the classes that hold at least 2 images.

    diversity = mean_k mean_pixels std_{i: y_i = k}(x_i)

    0 when every image of a class is the same -- a collapse *within* classes that class coverage
    cannot see.
    """
    images, labels = torch.as_tensor(images), torch.as_tensor(labels)
    if len(images) != len(labels) or labels.dim() != 1:
        raise ValueError(f"{len(images)} images need {len(images)} labels (N,), got {tuple(labels.shape)}.")
    per_class = [images[labels == k].double().std(0).mean() for k in labels.unique() if (labels == k).sum() >= 2]
    if not per_class:
        raise ValueError("no class holds 2 or more images: diversity needs pairs.")
    return torch.stack(per_class).mean().item()
