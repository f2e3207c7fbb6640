"""Procedural grayscale medical phantoms: CT slices with low-dose / high-dose pairs.

(Phantom mammograms with benign and malignant masses are in ``course_utils.data.mammography``.)

CT phantoms
-----------
A phantom is a map of attenuation coefficients μ(x, y) in [0, 1] on an N x N grid: a large body
ellipse, a few organ ellipses inside it and some small bright or dark lesions, all drawn at random
positions, sizes and angles from a seeded generator (``random_ellipse_phantom``), or scikit-image's
bundled Shepp-Logan head phantom (``shepp_logan``). Everything stays inside the inscribed circle,
which is the field of view of the scanner.

Acquisition (``simulate_ct``). The scanner measures, for every angle θ and detector position s,
how many of I₀ photons survive the line L(θ, s) through the body (Beer-Lambert):

    p(θ, s) = a ∫_L μ  (the Radon transform, ``skimage.transform.radon``; a = ``attenuation_scale``
                       turns pixel sums into optical depths, so that p stays in a realistic 0 .. ~4)
    counts  ~ Poisson(I₀ exp(−p))              (photon counting: the noise of X-ray detectors)
    p̂      = −log(max(counts, 1) / I₀) / a     (the measured line integrals, back in pixel units)
    image   = FBP(p̂)                           (filtered back-projection, ``skimage.transform.iradon``,
                                                ramp filter)

The dose is proportional to I₀: a *low-dose* scan has few photons, so the relative noise
1/sqrt(counts) of every measurement is large and FBP's ramp filter turns it into streaks and grain.
The *high-dose* image is the same phantom scanned with many photons (``high_photons``); with
``high_photons=None`` it is the noise-free FBP. Both go through the same FBP, so they differ only in
noise -- which is what a restoration network must remove.

Every phantom and scan is determined by ``(seed, i)``: ``make_ct_pairs`` is reproducible, and item i
never depends on the others.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
import torch
from skimage.transform import iradon, radon, resize


@dataclass
class CTConfig:
    image_size: int = 32  # N, phantoms are N x N
    n_angles: int = 48  # projections over 180 degrees
    low_photons: float = 200.0  # I₀ of the low-dose scan (photons per detector bin)
    high_photons: Optional[float] = 1e6  # I₀ of the high-dose scan; None = noise-free
    attenuation_scale: Optional[float] = None  # a; None: 2 / image_size (a body ~ 2 optical depths thick)
    n_organs: tuple = (2, 4)  # organ ellipses inside the body, uniform in [low, high]
    n_lesions: tuple = (1, 3)  # small lesions, uniform in [low, high]
    seed: int = 0

    def __post_init__(self):
        if self.image_size < 8:
            raise ValueError(f"image_size={self.image_size}: use at least 8 pixels.")
        if self.low_photons <= 0 or (self.high_photons is not None and self.high_photons <= 0):
            raise ValueError("photon counts must be positive.")

    @property
    def scale(self) -> float:
        return 2.0 / self.image_size if self.attenuation_scale is None else self.attenuation_scale


def field_of_view(size: int) -> np.ndarray:
    """The scanner's field of view, bool (size, size): the inscribed circle, by scikit-image's rule
    (``radon(circle=True)`` needs the image to be zero outside it)."""
    c = size // 2
    i, j = np.ogrid[:size, :size]
    return (i - c) ** 2 + (j - c) ** 2 <= c**2


def ellipse_mask(size: int, cx: float, cy: float, a: float, b: float, angle: float) -> np.ndarray:
    """Pixels (centres) inside the ellipse with centre (cx, cy), semi-axes a, b and rotation ``angle``
    (radians), in coordinates where the image spans [-1, 1] x [-1, 1]: bool (size, size)."""
    t = (np.arange(size) + 0.5) / size * 2 - 1  # pixel centres in [-1, 1]
    y, x = np.meshgrid(t, t, indexing="ij")  # (N, N) each; y down, x right
    c, s = np.cos(angle), np.sin(angle)
    u, v = (x - cx) * c + (y - cy) * s, -(x - cx) * s + (y - cy) * c
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def random_ellipse_phantom(rng_or_seed: Union[int, np.random.Generator], config: Optional[CTConfig] = None) -> np.ndarray:
    """A random CT-like phantom: float32 (N, N), attenuation in [0, 1], zero outside the body."""
    config = config if config is not None else CTConfig()
    rng = np.random.default_rng(rng_or_seed)
    n = config.image_size
    image = np.zeros((n, n), dtype=np.float32)
    # body: a large ellipse inside the inscribed circle (semi-axes <= 0.9, centred)
    a, b = rng.uniform(0.65, 0.85), rng.uniform(0.5, 0.75)
    angle = rng.uniform(-0.3, 0.3)
    body = ellipse_mask(n, 0.0, 0.0, a, b, angle)
    image[body] = rng.uniform(0.35, 0.5)
    # organs: medium ellipses inside the body, brighter or darker than the soft tissue
    for _ in range(rng.integers(config.n_organs[0], config.n_organs[1] + 1)):
        r = rng.uniform(0.15, 0.3)
        cx, cy = rng.uniform(-0.6, 0.6) * a, rng.uniform(-0.6, 0.6) * b
        organ = ellipse_mask(n, cx, cy, r, r * rng.uniform(0.5, 1.0), rng.uniform(0, np.pi)) & body
        image[organ] = rng.uniform(0.1, 0.8)
    # lesions: small, high-contrast spots (what a low-dose scan must not hide)
    for _ in range(rng.integers(config.n_lesions[0], config.n_lesions[1] + 1)):
        r = rng.uniform(0.05, 0.1)
        cx, cy = rng.uniform(-0.6, 0.6) * a, rng.uniform(-0.6, 0.6) * b
        lesion = ellipse_mask(n, cx, cy, r, r * rng.uniform(0.6, 1.0), rng.uniform(0, np.pi)) & body
        image[lesion] = rng.choice([rng.uniform(0.85, 1.0), rng.uniform(0.0, 0.1)])
    image[~field_of_view(n)] = 0.0  # what the scanner cannot see
    return image


def shepp_logan(size: int = 32) -> np.ndarray:
    """scikit-image's bundled Shepp-Logan head phantom (400 x 400), resized to (size, size), float32 in [0, 1]."""
    from skimage.data import shepp_logan_phantom

    image = resize(shepp_logan_phantom(), (size, size), anti_aliasing=True, order=1)
    image[~field_of_view(size)] = 0.0  # keep the field of view
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def simulate_ct(image: np.ndarray, photons: Optional[float], rng: np.random.Generator,
                n_angles: int = 48, attenuation_scale: Optional[float] = None,
                sinogram: Optional[np.ndarray] = None) -> np.ndarray:
    """Scan ``image`` with I₀ = ``photons`` per bin (None: no noise) and reconstruct it by FBP: float32 (N, N).

    The noise model is in the module docstring. Pass a precomputed ``sinogram`` (radon of image)
    to scan the same phantom at several doses without recomputing it.
    """
    n = image.shape[0]
    a = 2.0 / n if attenuation_scale is None else attenuation_scale
    theta = np.linspace(0.0, 180.0, n_angles, endpoint=False)
    if sinogram is None:
        sinogram = radon(image.astype(np.float64), theta=theta, circle=True)  # (N, n_angles): ∫_L μ
    if photons is not None:
        counts = rng.poisson(photons * np.exp(-a * sinogram))  # photons that reach the detector
        sinogram = -np.log(np.maximum(counts, 1) / photons) / a  # measured line integrals
    return iradon(sinogram, theta=theta, circle=True, filter_name="ramp").astype(np.float32)


def make_ct_pair(rng_or_seed, config: Optional[CTConfig] = None, phantom: Optional[np.ndarray] = None) -> dict:
    """One phantom and its two scans: dict of float32 (1, N, N) tensors ``phantom``, ``low``, ``high``."""
    config = config if config is not None else CTConfig()
    rng = np.random.default_rng(rng_or_seed)
    image = random_ellipse_phantom(rng, config) if phantom is None else phantom
    theta = np.linspace(0.0, 180.0, config.n_angles, endpoint=False)
    sinogram = radon(image.astype(np.float64), theta=theta, circle=True)  # shared by both doses
    scan = lambda photons: simulate_ct(image, photons, rng, config.n_angles, config.scale, sinogram)
    low, high = scan(config.low_photons), scan(config.high_photons)
    return {k: torch.from_numpy(np.ascontiguousarray(v))[None] for k, v in
            (("phantom", image), ("low", low), ("high", high))}


def make_ct_pairs(n: int, config: Optional[CTConfig] = None, seed: Optional[int] = None) -> dict:
    """n pairs stacked: dict of float32 (n, 1, N, N) tensors ``phantom``, ``low``, ``high``; item i uses
    ``np.random.default_rng([seed, i])`` (seed defaults to ``config.seed``)."""
    config = config if config is not None else CTConfig()
    seed = config.seed if seed is None else seed
    items = [make_ct_pair(np.random.default_rng([seed, i]), config) for i in range(n)]
    return {k: torch.stack([it[k] for it in items]) for k in ("phantom", "low", "high")}

