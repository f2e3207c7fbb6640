"""pix2pix (Isola et al., 2017): image-to-image translation with a conditional GAN.

The generator G is the course's U-Net (``course_utils.models.unet``) followed by a sigmoid, mapping an
input image x (here a colour-coded label map, the "sketch") to an output image in [0, 1]. The
discriminator sees *pairs* -- the input and an output, concatenated on the channel axis -- and is a
**PatchGAN**: a small fully convolutional network whose output is a grid of logits, one per
overlapping patch, each judging "is this patch of the output real, given this patch of the input?".
The objective is the conditional GAN loss plus an L1 term that ties the output to the target y,

    G* = arg min_G max_D  L_cGAN(G, D) + λ L_L1(G),
    L_cGAN = E[log D(x, y)] + E[log(1 − D(x, G(x)))],      L_L1 = E ||y − G(x)||_1,

with the non-saturating generator loss in practice:

    L_G = −mean log D(x, G(x)) + λ mean |y − G(x)|,       L_D = BCE(D(x, y), 1) + BCE(D(x, G(x)), 0),

the means running over the patches (and pixels). L1 alone gets the low frequencies right but, where
the target is uncertain, predicts the *median* -- blur. The PatchGAN penalises structure at the scale
of its patches, so it pushes the high frequencies back.

**Receptive field** of a patch logit: a stack of convolutions with kernels k_l and strides s_l
sees, back to front, r_L = 1, r_{l-1} = s_l (r_l − 1) + k_l; equivalently

    r = 1 + Σ_l (k_l − 1) Π_{j<l} s_j .

pix2pix's default (three 4x4 stride-2 convolutions, then two 4x4 stride-1) gives 70 x 70 patches.

This module also draws the chapter's data: ``make_canvas_pairs`` -- a miniature "NVIDIA Canvas":
label maps of shapes scenes painted in flat label colours (the input), and the rendered scene (the
target): a sky gradient, shaded orange balls, brick walls and leafy green trees. Everything in the
target follows from the label map except the leaves' speckle, which is random -- the part L1 can only
blur.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from course_utils.models.gan import discriminator_loss
from course_utils.models.unet import UNet, UNetConfig


@dataclass
class Pix2PixConfig:
    in_channels: int = 3  # channels of the input (the sketch)
    out_channels: int = 3  # channels of the output image
    base_width: int = 8  # U-Net generator width
    depth: int = 2  # U-Net depth (the image size must be divisible by 2**depth)
    disc_width: int = 16  # channels of the PatchGAN's first layer, doubled per layer
    disc_strided: int = 1  # stride-2 layers of the PatchGAN (pix2pix's 70x70 uses 3)
    lam: float = 100.0  # λ, weight of the L1 term
    noise_channels: int = 1  # channels of Gaussian noise z fed to G beside the sketch (0: none)

    def __post_init__(self):
        if self.disc_strided < 0 or self.disc_width < 1 or self.lam < 0 or self.noise_channels < 0:
            raise ValueError("disc_strided and noise_channels must be >= 0, disc_width >= 1, lam >= 0.")


class Pix2PixGenerator(nn.Module):
    """sketch (B, C_in, H, W) -> image (B, C_out, H, W) in [0, 1]: sigmoid(UNet([x, z])).

    z is ``noise_channels`` maps of N(0, 1) noise (drawn from ``generator`` unless given): the
    source of randomness for the parts of the target the sketch does not determine. (pix2pix itself
    uses dropout as its noise; a noise input is the simpler, more visible choice.)
    """

    def __init__(self, config: Pix2PixConfig = Pix2PixConfig()):
        super().__init__()
        self.config = c = config
        self.unet = UNet(UNetConfig(in_channels=c.in_channels + c.noise_channels, out_channels=c.out_channels,
                                    base_width=c.base_width, depth=c.depth))

    def forward(self, x: Tensor, z: Optional[Tensor] = None, generator: Optional[torch.Generator] = None) -> Tensor:
        c = self.config
        if x.dim() != 4 or x.shape[1] != c.in_channels:
            raise ValueError(f"the sketch must have shape (B, {c.in_channels}, H, W), got {tuple(x.shape)}.")
        if c.noise_channels:
            if z is None:
                z = torch.randn((len(x), c.noise_channels) + tuple(x.shape[-2:]), generator=generator).to(x.device)
            x = torch.cat([x, z], dim=1)  # (B, C_in + noise_channels, H, W)
        return torch.sigmoid(self.unet(x))  # (B, C_out, H, W)


def receptive_field(layers: Sequence[tuple[int, int]]) -> int:
    """Receptive field of a stack of convolutions given as (kernel, stride) pairs, input to output.

    r = 1 + Σ_l (k_l − 1) Π_{j<l} s_j
    """
    r, jump = 1, 1
    for k, s in layers:
        if k < 1 or s < 1:
            raise ValueError(f"kernel and stride must be >= 1, got ({k}, {s}).")
        r += (k - 1) * jump  # each layer widens the view by (k − 1) input steps of size jump
        jump *= s  # Π_{j<l} s_j: the distance, in input pixels, between neighbouring outputs
    return r


class PatchDiscriminator(nn.Module):
    """(sketch (B, C_in, H, W), image (B, C_out, H, W)) -> patch logits (B, 1, h, w).

    ``disc_strided`` 4x4 stride-2 convolutions (channels doubling, batch norm after the first),
    one 4x4 stride-1 convolution, and a 4x4 stride-1 convolution to one logit per patch.
    """

    def __init__(self, config: Pix2PixConfig = Pix2PixConfig()):
        super().__init__()
        self.config = c = config
        layers, cin, w = [], c.in_channels + c.out_channels, c.disc_width
        self.kernels = []  # (kernel, stride) of every convolution, for receptive_field
        for i in range(c.disc_strided + 1):
            stride = 2 if i < c.disc_strided else 1
            cout = w * 2**i
            layers += [nn.Conv2d(cin, cout, 4, stride, 1, bias=i == 0)]
            layers += [nn.BatchNorm2d(cout)] if i > 0 else []
            layers += [nn.LeakyReLU(0.2, True)]
            self.kernels.append((4, stride))
            cin = cout
        layers += [nn.Conv2d(cin, 1, 4, 1, 1)]
        self.kernels.append((4, 1))
        self.net = nn.Sequential(*layers)

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.kernels)

    def forward(self, sketch: Tensor, image: Tensor) -> Tensor:
        if sketch.shape[-2:] != image.shape[-2:] or len(sketch) != len(image):
            raise ValueError(f"sketch {tuple(sketch.shape)} and image {tuple(image.shape)} must share B, H, W.")
        return self.net(torch.cat([sketch, image], dim=1))  # (B, 1, h, w): one logit per patch


def pix2pix_generator_loss(patch_logits: Tensor, fake: Tensor, target: Tensor, lam: float = 100.0):
    """L_G = −mean log D(x, G(x)) + λ mean |y − G(x)|. Returns (total, adversarial, l1)."""
    adversarial = F.binary_cross_entropy_with_logits(patch_logits, torch.ones_like(patch_logits))
    l1 = (target - fake).abs().mean()
    return adversarial + lam * l1, adversarial, l1


def train_pix2pix(G: Pix2PixGenerator, D: Optional[PatchDiscriminator], inputs: Tensor, targets: Tensor,
                  steps: int, lam: float = 100.0, batch_size: int = 16, lr: float = 2e-3, betas=(0.5, 0.999),
                  seed: int = 0, progress: Callable = lambda it, **kw: it) -> dict:
    """Train G with L1 alone (``D=None``) or with L1 + λ-weighted cGAN loss (the pix2pix objective).

    With a discriminator the loss is L_adv + λ L1 (so λ sets the balance); without one it is L1.
    Both use Adam with a one-cycle schedule. Returns {"l1": [...], "d_loss": [...], "adv": [...]}.
    """
    if inputs.shape[0] != targets.shape[0] or inputs.shape[-2:] != targets.shape[-2:]:
        raise ValueError(f"inputs {tuple(inputs.shape)} and targets {tuple(targets.shape)} do not pair up.")
    opt_G = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
    sched_G = torch.optim.lr_scheduler.OneCycleLR(opt_G, lr, total_steps=steps)
    opt_D = None if D is None else torch.optim.Adam(D.parameters(), lr=lr / 4, betas=betas)
    g = torch.Generator().manual_seed(seed)
    history = {"l1": [], "d_loss": [], "adv": []}
    G.train()
    if D is not None:
        D.train()
    for _ in progress(range(steps), desc="pix2pix" if D is not None else "L1 only"):
        idx = torch.randint(len(inputs), (batch_size,), generator=g)
        x, y = inputs[idx], targets[idx]  # (B, C_in, H, W), (B, C_out, H, W)
        fake = G(x, generator=g)
        if D is not None:
            # discriminator step: real pairs -> 1, fake pairs -> 0 (G frozen: fake detached)
            d_loss = discriminator_loss(D(x, y), D(x, fake.detach()))
            opt_D.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_D.step()
            D.requires_grad_(False)  # generator step: D frozen
            loss, adv, l1 = pix2pix_generator_loss(D(x, fake), fake, y, lam)
            D.requires_grad_(True)
            history["d_loss"].append(d_loss.item())
            history["adv"].append(adv.item())
        else:
            l1 = (y - fake).abs().mean()
            loss = l1
        opt_G.zero_grad(set_to_none=True)
        loss.backward()
        opt_G.step()
        sched_G.step()
        history["l1"].append(l1.item())
    G.eval()
    if D is not None:
        D.eval()
    return history


# ---------------------------------------------------------------------------------------------
# The data: a miniature "NVIDIA Canvas"
# ---------------------------------------------------------------------------------------------
CANVAS_CLASSES = ("background", "circle", "square", "triangle")  # label 0, then 1 + shapes.SHAPES index
SKETCH_COLOURS = np.array([[0.15, 0.15, 0.15], [0.95, 0.90, 0.20], [0.90, 0.20, 0.20], [0.20, 0.80, 0.30]],
                          dtype=np.float32)  # (4, 3): the flat "paint" of each label
SKY_TOP, SKY_BOTTOM = np.array([0.25, 0.45, 0.85]), np.array([0.80, 0.88, 0.95])
BALL, BRICK, MORTAR, LEAF = (np.array(c) for c in ([1.0, 0.6, 0.1], [0.70, 0.25, 0.15], [0.92, 0.88, 0.80],
                                                     [0.15, 0.55, 0.20]))


def render_canvas(label_map: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Render a label map (H, W) of ints (0 background, 1 circle, 2 square, 3 triangle) -> (3, H, W).

    * background: a sky, linear from SKY_TOP (row 0) to SKY_BOTTOM (last row);
    * circle: an orange ball, shaded 1 − 0.6 (d / r)², d the distance to the object's centre;
    * square: a brick wall, mortar lines every 4 rows from its top edge, joints every 4 columns,
      shifted by 2 in alternate courses;
    * triangle: a tree, leaf green times a random speckle in {0.6, 1.4} per pixel (not predictable).
    One object per connected label region is assumed (objects in a scene do not touch).
    """
    from scipy import ndimage

    H, W = label_map.shape
    t = np.linspace(0, 1, H)[:, None, None]  # (H, 1, 1)
    image = np.broadcast_to((1 - t) * SKY_TOP + t * SKY_BOTTOM, (H, W, 3)).copy()  # (H, W, 3)
    ys, xs = np.mgrid[0:H, 0:W] + 0.5  # pixel centres
    for label in (1, 2, 3):
        regions, n = ndimage.label(label_map == label)
        for k in range(1, n + 1):
            m = regions == k  # (H, W) one object
            rows, cols = np.nonzero(m)
            if label == 1:
                cy, cx, r = ys[m].mean(), xs[m].mean(), np.sqrt(m.sum() / np.pi)
                d2 = ((ys - cy) ** 2 + (xs - cx) ** 2) / r**2
                image[m] = BALL * (1 - 0.6 * np.clip(d2[m], 0, 1))[:, None]
            elif label == 2:
                i, j = rows - rows.min(), cols - cols.min()
                mortar = (i % 4 == 3) | ((j + 2 * ((i // 4) % 2)) % 4 == 3)
                image[rows, cols] = np.where(mortar[:, None], MORTAR, BRICK)
            else:
                speckle = rng.choice([0.6, 1.4], size=m.sum())
                image[m] = np.clip(LEAF * speckle[:, None], 0, 1)
    return image.transpose(2, 0, 1).astype(np.float32)  # (3, H, W)


def make_canvas_pairs(n: int, seed: int = 0, image_size: int = 32, max_objects: int = 3) -> dict:
    """n (sketch, scene) pairs from shapes scenes: {"sketch", "target": (n, 3, H, W), "labels": (n, H, W)}.

    The label map comes from the scene's masks and shape labels (0 background, 1 + shape index);
    the sketch paints it in SKETCH_COLOURS, the target is ``render_canvas`` of it. Pair i depends only
    on (seed, i).
    """
    from course_utils.data.shapes import ShapesConfig, ShapesDataset

    if n < 1:
        raise ValueError(f"n={n}: ask for at least one pair.")
    data = ShapesDataset(ShapesConfig(image_size=image_size, min_objects=1, max_objects=max_objects, noise=0.0),
                         n, seed)
    sketches, targets, maps = [], [], []
    for i in range(n):
        scene = data[i]
        label_map = np.zeros((image_size, image_size), dtype=np.int64)
        for mask, label in zip(scene["masks"].numpy(), scene["labels"].numpy()):
            label_map[mask] = label + 1
        maps.append(label_map)
        sketches.append(SKETCH_COLOURS[label_map].transpose(2, 0, 1))  # (3, H, W)
        targets.append(render_canvas(label_map, np.random.default_rng([seed, i, 1])))
    return {"sketch": torch.from_numpy(np.stack(sketches)), "target": torch.from_numpy(np.stack(targets)),
            "labels": torch.from_numpy(np.stack(maps))}
