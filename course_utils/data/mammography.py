"""Phantom mammograms: breast tissue texture with benign and malignant masses, from two "sites".

Not real mammograms -- a procedural stand-in, small enough to train on a laptop CPU in seconds, with
the structure that matters for the medical-imaging chapter: masses to find (boxes and masks), two
kinds of mass to tell apart, a controllable class imbalance, patients with several views, and two
acquisition sites that differ like two hospitals' scanners do.

The image (size N x N, values in [0, 1]) is built in three steps.

1. **Anatomy** (per patient). A breast outline -- a half-ellipse attached to the chest wall on the
   left -- filled with *tissue*: fatty background plus fibroglandular texture, white noise filtered
   by Gaussians at two scales (σ = 1 and 3 px) and passed through a soft threshold,

       t(x) = b + c · sigmoid((n₁ * G_σ₁ + n₃ * G_σ₃)(x) / s),      x inside the breast.

2. **The mass** (optional). A benign mass is an oval with a smooth margin; a malignant one an
   irregular blob whose radius wobbles with the angle,

       r(θ) = r₀ (1 + Σ_k a_k cos(k θ + φ_k)),   k = 2..5  (a_k = 0 for k > 2 in the benign case),

   plus thin *spicules* radiating from its border into the tissue. The mask is the mass body (what
   a radiologist outlines); the spicules lie mostly outside it, in the surrounding tissue, which is
   why a crop with a margin of context can see them and a tight crop cannot. The mass adds density
   (brightness) ``mass_contrast`` with a soft edge; the spicules add ``spicule_contrast ·
   mass_contrast`` along lines of Gaussian profile (σ = ``spicule_width`` pixels) -- the *margin
   signal* that only context shows. The defaults (0.2 and 0.45 px) draw them faint and thinner than
   a pixel, barely visible at 32 × 32; raise them to make context informative.

3. **Acquisition** (per view, per site). A site ``SiteConfig`` applies the scanner: loss of
   resolution (average-pool by ``downsample`` and back), blur G_σ, a detector response curve
   (gain, offset and gamma: y = offset + gain · x^γ) and Gaussian noise σ_n,

       y = clip(offset + gain · (G_σ * up(down(x)))^γ + σ_n ε, 0, 1).

   Site "A" is sharp and low-noise; site "B" blurrier, noisier and with another intensity curve
   (brighter, compressed contrast) -- the domain shift between databases (e.g. INbreast vs OPTIMAM).
   ``SiteConfig(downsample=2, ...)`` adds a loss of resolution for other sites.

Each patient gets ``views`` images (like the CC and MLO views): the same tissue and the same mass,
seen with a small shift and fresh noise. Keeping views of one patient together is why splits must
be made by patient. Everything is determined by ``(seed, patient index)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional, Union

import numpy as np
import torch
from scipy.ndimage import gaussian_filter, shift as nd_shift

NORMAL, BENIGN, MALIGNANT = 0, 1, 2
CLASS_NAMES = ("normal", "benign", "malignant")
MAX_TRIES = 100  # random mass centres tried per patient before giving up
# The random stream that shuffles the patients' classes, ``default_rng([seed, ORDER_STREAM])``: patient p
# draws from ``default_rng([seed, p])``, so the tag must be a number no patient index reaches -- a large
# prime (any integer above ``n_patients`` would do; this one is easy to recognise).
ORDER_STREAM = 10_000_019


@dataclass(frozen=True)
class SiteConfig:
    """The acquisition of one site (database): y = offset + gain · blur(resolution(x))^γ + noise."""

    name: str = "A"
    downsample: int = 1  # average-pool factor before upsampling back (1 = full resolution)
    blur: float = 0.0  # σ of the Gaussian point-spread function, pixels
    gamma: float = 1.0  # detector response exponent
    gain: float = 1.0
    offset: float = 0.0
    noise: float = 0.02  # σ of the additive Gaussian noise

    def __post_init__(self):
        if self.downsample < 1 or self.blur < 0 or self.gamma <= 0 or self.noise < 0 or self.gain <= 0:
            raise ValueError(f"site {self.name!r}: need downsample >= 1, blur >= 0, gamma > 0, gain > 0, noise >= 0.")


SITES = {
    "A": SiteConfig("A"),
    "B": SiteConfig("B", downsample=1, blur=0.6, gamma=0.5, gain=0.55, offset=0.3, noise=0.04),
}


@dataclass
class MammoConfig:
    image_size: int = 32  # N; images are N x N
    n_patients: int = 100
    views: int = 2  # images per patient (same anatomy, small shift, fresh noise)
    normal_fraction: float = 0.0  # fraction of patients without a mass
    malignant_fraction: float = 0.5  # among patients with a mass, the fraction that is malignant
    site: Union[str, SiteConfig] = "A"
    mass_radius: tuple = (0.09, 0.15)  # r₀ as a fraction of the image size, uniform in [low, high]
    mass_contrast: float = 0.28  # added density at the mass centre
    spicules: tuple = (5, 9)  # number of spicules of a malignant mass, uniform in [low, high]
    spicule_contrast: float = 0.2  # the spicules' added density, as a fraction of mass_contrast
    spicule_width: float = 0.45  # σ of the spicules' Gaussian cross-section, pixels
    spicule_start: float = 0.6  # where a spicule begins, as a fraction of the border radius r(a)
    shape_cue: float = 1.0  # 1: malignant bodies irregular and sharp; 0: the same smooth oval as benign ones
    max_shift: float = 1.0  # pixels of shift between the views of one patient

    def __post_init__(self):
        if self.image_size < 16:
            raise ValueError(f"image_size={self.image_size}: use at least 16 pixels.")
        if self.n_patients < 1 or self.views < 1:
            raise ValueError(f"n_patients={self.n_patients} and views={self.views} must be >= 1.")
        for name in ("normal_fraction", "malignant_fraction"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name}={v} must be in [0, 1].")
        if not 0 < self.mass_radius[0] <= self.mass_radius[1] < 0.3:
            raise ValueError(f"mass_radius={self.mass_radius}: need 0 < low <= high < 0.3 (fractions of the image).")
        if not 0.0 <= self.shape_cue <= 1.0:
            raise ValueError(f"shape_cue={self.shape_cue} must be in [0, 1].")
        if self.spicule_contrast < 0 or self.spicule_width <= 0 or self.spicule_start < 0:
            raise ValueError(f"spicule_contrast={self.spicule_contrast} and spicule_start={self.spicule_start} "
                             f"must be >= 0, spicule_width={self.spicule_width} > 0.")
        if isinstance(self.site, str) and self.site not in SITES:
            raise ValueError(f"site={self.site!r}: choose one of {sorted(SITES)} or pass a SiteConfig.")

    @property
    def site_config(self) -> SiteConfig:
        return SITES[self.site] if isinstance(self.site, str) else self.site


def _grid(n: int):
    y, x = np.mgrid[:n, :n].astype(np.float64) + 0.5  # pixel centres
    return y, x


def breast_outline(n: int, rng: np.random.Generator) -> np.ndarray:
    """A half-ellipse against the chest wall (left edge): float (n, n), 1 inside, soft 1-px edge."""
    y, x = _grid(n)
    a = n * rng.uniform(0.78, 0.92)  # depth from the chest wall
    b = n * rng.uniform(0.44, 0.5)  # half height
    cy = n / 2 + rng.uniform(-1, 1)
    d = np.sqrt((x / a) ** 2 + ((y - cy) / b) ** 2)  # 1 on the skin line
    return np.clip((1 - d) * min(a, b) + 0.5, 0, 1)


def tissue(n: int, rng: np.random.Generator) -> np.ndarray:
    """Fatty background + fibroglandular texture: thresholded two-scale filtered noise, (n, n) in ~[0.2, 0.6]."""
    fine = gaussian_filter(rng.standard_normal((n, n)), 1.0)
    coarse = gaussian_filter(rng.standard_normal((n, n)), 3.0)
    field_ = fine / fine.std() + 1.5 * coarse / coarse.std()
    density = rng.uniform(0.15, 0.3)  # how much of the breast is dense
    # t = b + c · sigmoid(field / s): dense strands where the filtered noise is high
    return 0.2 + density * (1 / (1 + np.exp(-(field_ - 0.5) / 0.6)))


def mass_shape(n: int, cx: float, cy: float, r0: float, malignant: bool, rng: np.random.Generator,
               spicules: tuple = (5, 9), spicule_width: float = 0.45, shape_cue: float = 1.0,
               spicule_start: float = 0.6):
    """(body (n, n) soft density in [0, 1], mask (n, n) bool, spicules (n, n) in [0, 1]).

    r(θ) = r₀ (1 + Σ_k a_k cos(kθ + φ_k)); benign: an oval (k = 2 only, small a); malignant: k = 2..5.
    A spicule at angle a: exp(−d⊥² / (2 w²)) · (1 − (d∥ − r(a)) / (length + 1)) for s·r(a) < d∥ <
    r(a) + length, with d∥, d⊥ the distances along and across it, w = ``spicule_width``, s = ``spicule_start``.
    ``shape_cue`` < 1 blends a malignant body towards a benign oval (amplitudes a_3..a_5 and the sharp
    edge fade): at 0 only the spicules tell the two kinds apart.
    """
    y, x = _grid(n)
    dy, dx = y - cy, x - cx
    theta, rho = np.arctan2(dy, dx), np.hypot(dx, dy)
    ks = np.arange(2, 6)
    if malignant:
        amps = rng.uniform(0.08, 0.2, size=4)
    else:
        amps = np.array([rng.uniform(0.0, 0.15), 0, 0, 0])
    phases = rng.uniform(0, 2 * np.pi, size=4)
    edge = 0.6 if malignant else 1.2  # benign margins are smooth (a wide soft edge)
    if malignant and shape_cue != 1.0:  # blend towards a benign oval (cue 0: the benign distribution)
        oval = np.array([(amps[0] - 0.08) * 1.25, 0, 0, 0])  # a_2 mapped from [0.08, 0.2] to [0, 0.15]
        amps = shape_cue * amps + (1 - shape_cue) * oval
        edge = shape_cue * 0.6 + (1 - shape_cue) * 1.2
    # r(θ) = r₀ (1 + Σ_k a_k cos(k θ + φ_k)), with the amplitudes after the blend: the outline, the
    # mask and so the box all follow shape_cue (at 0 a malignant body is a benign oval in every way)
    r = r0 * (1 + (amps[:, None, None] * np.cos(ks[:, None, None] * theta + phases[:, None, None])).sum(0))
    body = 1 / (1 + np.exp(-(r - rho) / (0.35 * edge)))  # (n, n) soft inside-indicator
    mask = rho <= r
    spic = np.zeros((n, n))
    if malignant:
        k = rng.integers(spicules[0], spicules[1] + 1)
        angles = rng.uniform(0, 2 * np.pi, size=k)
        for a in angles:
            length = r0 * rng.uniform(1.0, 1.8)
            ca, sa = np.cos(a), np.sin(a)
            along = dx * ca + dy * sa  # distance along the spicule
            across = np.abs(-dx * sa + dy * ca)
            r_a = r0 * (1 + (amps * np.cos(ks * a + phases)).sum())
            on = (along > spicule_start * r_a) & (along < r_a + length)
            fade = 1 - (along - r_a).clip(0) / (length + 1)  # fainter towards the tip
            spic = np.maximum(spic, on * np.exp(-across**2 / (2 * spicule_width**2)) * fade)
    return body, mask, spic


def acquire(image: np.ndarray, site: SiteConfig, rng: np.random.Generator) -> np.ndarray:
    """Apply the site's scanner: y = clip(offset + gain · (G_σ * up(down(x)))^γ + σ_n ε, 0, 1)."""
    n = image.shape[0]
    x = image
    if site.downsample > 1:
        f = site.downsample
        small = x[: n - n % f, : n - n % f].reshape(n // f, f, n // f, f).mean((1, 3))
        x = np.kron(small, np.ones((f, f)))
        x = np.pad(x, ((0, n - x.shape[0]), (0, n - x.shape[1])), mode="edge")
    if site.blur > 0:
        x = gaussian_filter(x, site.blur)
    # y = offset + gain · x^γ + σ_n ε
    y = site.offset + site.gain * np.clip(x, 0, None) ** site.gamma + site.noise * rng.standard_normal(x.shape)
    return np.clip(y, 0, 1)


def _box(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    return np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=np.float32)  # xyxy


def make_mammograms(config: Optional[MammoConfig] = None, seed: int = 0) -> dict:
    """Generate ``n_patients * views`` phantom mammograms. Returns a dict of tensors:

    images (M, 1, N, N) float in [0, 1]; masks (M, N, N) bool (the mass body; empty for normals);
    boxes list of M (K, 4) float xyxy (K = 1, or 0 for normals; the box of the mask);
    label (M,) long 0 normal / 1 benign / 2 malignant; patient (M,) long; view (M,) long;
    and "site" (the site's name).
    Patient p's class is fixed by the config's fractions (exact counts, shuffled by the seed).
    """
    c = config if config is not None else MammoConfig()
    site = c.site_config
    n, P = c.image_size, c.n_patients
    order_rng = np.random.default_rng([seed, ORDER_STREAM])  # the class order; not any patient's stream
    n_normal = int(round(c.normal_fraction * P))
    n_malignant = int(round(c.malignant_fraction * (P - n_normal)))
    classes = np.array([NORMAL] * n_normal + [MALIGNANT] * n_malignant + [BENIGN] * (P - n_normal - n_malignant))
    classes = classes[order_rng.permutation(P)]
    images, masks, boxes, labels, patients, views = [], [], [], [], [], []
    for p in range(P):
        rng = np.random.default_rng([seed, p])  # the patient: anatomy and mass
        outline = breast_outline(n, rng)
        base = tissue(n, rng)
        body = mask = spic = None
        if classes[p] != NORMAL:
            r0 = n * rng.uniform(*c.mass_radius)
            # the mass centre: inside the breast, away from the skin line
            for _ in range(MAX_TRIES):
                cx, cy = rng.uniform(r0 + 1, 0.7 * n), rng.uniform(r0 + 2, n - r0 - 2)
                if outline[int(cy), int(cx)] >= 1 and outline[int(cy), min(int(cx + r0), n - 1)] >= 1:
                    break
            else:
                raise RuntimeError(
                    f"patient {p} (seed {seed}): no place for a mass of radius {r0:.1f} px inside the breast after "
                    f"{MAX_TRIES} tries; use a smaller mass_radius or a larger image_size."
                )
            body, mask, spic = mass_shape(n, cx, cy, r0, classes[p] == MALIGNANT, rng, c.spicules,
                                          c.spicule_width, c.shape_cue, c.spicule_start)
        for v in range(c.views):
            vrng = np.random.default_rng([seed, p, v + 1])  # the view: shift and noise
            dy, dx = vrng.uniform(-c.max_shift, c.max_shift, size=2) if v > 0 else (0.0, 0.0)
            density = base.copy()
            m = np.zeros((n, n), dtype=bool)
            if body is not None:
                density = density + c.mass_contrast * body + c.spicule_contrast * c.mass_contrast * spic
            density = density * outline
            if v > 0:
                density = nd_shift(density, (dy, dx), order=1, mode="constant")
            if mask is not None:
                m = nd_shift(mask.astype(float), (dy, dx), order=1, mode="constant") > 0.5 if v > 0 else mask.copy()
            image = acquire(density, site, vrng)
            images.append(image.astype(np.float32))
            masks.append(m)
            boxes.append(_box(m)[None] if m.any() else np.zeros((0, 4), np.float32))
            labels.append(int(classes[p]) if m.any() or classes[p] == NORMAL else NORMAL)
            patients.append(p)
            views.append(v)
    return {
        "images": torch.from_numpy(np.stack(images))[:, None],  # (M, 1, N, N)
        "masks": torch.from_numpy(np.stack(masks)),  # (M, N, N) bool
        "boxes": [torch.from_numpy(b) for b in boxes],  # M x (K, 4)
        "label": torch.tensor(labels, dtype=torch.long),  # (M,)
        "patient": torch.tensor(patients, dtype=torch.long),
        "view": torch.tensor(views, dtype=torch.long),
        "site": site.name,
    }


def subset(data: dict, index) -> dict:
    """The images ``index`` (a long tensor / list / bool mask) of a ``make_mammograms`` dict."""
    index = torch.as_tensor(index)
    if index.dtype == torch.bool:
        index = index.nonzero().flatten()
    out = {k: (v[index] if isinstance(v, torch.Tensor) else v) for k, v in data.items() if k != "boxes"}
    out["boxes"] = [data["boxes"][i] for i in index.tolist()]
    return out


def mass_crops(data: dict, size: int = 16, margin: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops around each mass box, enlarged by ``margin`` (a fraction of the box size on every side),
    squared, and resized to ``size`` x ``size`` (bilinear). Returns (crops (K, 1, size, size),
    malignant (K,) long 0/1) for the images that hold a mass.

        side = max(w, h) (1 + 2 margin),  centred on the box centre
    """
    if margin < 0:
        raise ValueError(f"margin={margin} must be >= 0.")
    from torchvision.ops import roi_align

    keep = [i for i, b in enumerate(data["boxes"]) if len(b)]
    if not keep:
        return torch.zeros(0, 1, size, size), torch.zeros(0, dtype=torch.long)
    b = torch.stack([data["boxes"][i][0] for i in keep])  # (K, 4) xyxy
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    side = torch.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) * (1 + 2 * margin)  # (K,)
    rois = torch.stack([torch.arange(len(keep), dtype=torch.float32), cx - side / 2, cy - side / 2,
                        cx + side / 2, cy + side / 2], 1)  # (K, 5): batch index, xyxy
    crops = roi_align(data["images"][keep], rois, output_size=size, spatial_scale=1.0, sampling_ratio=2,
                      aligned=True)  # (K, 1, size, size), zero outside the image
    return crops, (data["label"][keep] == MALIGNANT).long()


def context_crops(data: dict, window: int = 24, margin: Optional[float] = None,
                  fill: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops at native resolution (one image pixel = one crop pixel, nothing resized) around each mass.

    Each crop is the ``window`` x ``window`` patch centred on the mass box (zero beyond the image).
    With ``margin`` set, only the mass box enlarged by ``margin`` pixels on every side stays visible
    and the rest of the window is set to ``fill``: ``margin=0`` is the tight crop (the box alone),
    ``margin=None`` keeps all the context the window holds. (A rectangle, not the mask: blanking
    along the mask would draw the mass's exact outline, a cue no real crop has.) All kinds have the
    same size and resolution, so a classifier sees the mass identically and only the context differs.
    Returns (crops (K, 1, window, window), malignant (K,) long 0/1) for the images that hold a mass.
    """
    if window < 4:
        raise ValueError(f"window={window}: use at least 4 pixels.")
    if margin is not None and margin < 0:
        raise ValueError(f"margin={margin} must be >= 0 pixels (or None for the whole window).")
    keep = [i for i, b in enumerate(data["boxes"]) if len(b)]
    if not keep:
        return torch.zeros(0, 1, window, window), torch.zeros(0, dtype=torch.long)
    images = torch.nn.functional.pad(data["images"][keep], (window,) * 4)  # (K, 1, N + 2w, N + 2w)
    centre = torch.arange(window) + 0.5  # the crop's pixel centres, in crop coordinates
    crops = []
    for k, i in enumerate(keep):
        x0, y0, x1, y1 = data["boxes"][i][0].tolist()
        left, top = round((x0 + x1 - window) / 2), round((y0 + y1 - window) / 2)  # image coordinates
        rows, cols = slice(top + window, top + 2 * window), slice(left + window, left + 2 * window)
        crop = images[k, :, rows, cols]  # (1, w, w): a plain slice, one pixel per pixel
        if margin is not None:  # keep x0 - margin <= x < x1 + margin (and the same in y)
            inside_x = (centre + left > x0 - margin) & (centre + left < x1 + margin)  # (w,)
            inside_y = (centre + top > y0 - margin) & (centre + top < y1 + margin)  # (w,)
            crop = torch.where(inside_y[:, None] & inside_x[None, :], crop, torch.tensor(fill))
        crops.append(crop)
    return torch.stack(crops), (data["label"][keep] == MALIGNANT).long()
