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

The chapter's paired data (painted label maps and rendered scenes) is drawn by
``course_utils.data.canvas.make_canvas_pairs``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from course_utils.models.gan import discriminator_loss
from course_utils.models.unet import UNet, UNetConfig
from course_utils.train import (
    History, batch_sampler, capped, loop, make_optimizer, make_schedule, move_model, resolve_device, to_device,
)


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

    def __init__(self, config: Optional[Pix2PixConfig] = None):
        super().__init__()
        self.config = c = config if config is not None else Pix2PixConfig()
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

    def __init__(self, config: Optional[Pix2PixConfig] = None):
        super().__init__()
        self.config = c = config if config is not None else Pix2PixConfig()
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
                  seed: int = 0, device=None) -> History:
    """Train G with L1 alone (``D=None``) or with L1 + λ-weighted cGAN loss (the pix2pix objective).

    With a discriminator each step is two updates: D on real pairs -> 1 and fake pairs -> 0 (the
    fakes detached), then G on L_adv + λ L1 with D frozen (so λ sets the balance); without one G
    minimises L1. G: Adam with a one-cycle schedule; D: Adam at lr / 4, constant. Batches (and G's
    noise) come from one private generator seeded with ``seed``, on the CPU, then go to ``device``
    (default: the runtime's). Returns a History: ``loss`` = G's loss per step, ``h["l1"]``, and with a
    discriminator ``h["d_loss"]`` and ``h["adv"]``; the models are left on ``device`` in eval mode.
    """
    if inputs.shape[0] != targets.shape[0] or inputs.shape[-2:] != targets.shape[-2:]:
        raise ValueError(f"inputs {tuple(inputs.shape)} and targets {tuple(targets.shape)} do not pair up.")
    device = resolve_device(device)
    requested, steps = steps, capped(steps)
    models = [G] if D is None else [G, D]
    for model in models:
        move_model(model, device).train()
    opt_G = make_optimizer(G.parameters(), "adam", lr, betas=betas)
    sched_G = make_schedule(opt_G, "onecycle", lr, steps)
    opt_D = None if D is None else make_optimizer(D.parameters(), "adam", lr / 4, betas=betas)
    g = torch.Generator().manual_seed(seed)
    next_batch = batch_sampler((inputs, targets), batch_size, g)
    logs = {"loss": [], "l1": []} if D is None else {"loss": [], "l1": [], "d_loss": [], "adv": []}
    started = time.perf_counter()
    for _ in loop(requested, desc="pix2pix" if D is not None else "L1 only"):  # capped, with a progress bar
        x, y = to_device(next_batch(), device)  # (B, C_in, H, W), (B, C_out, H, W)
        fake = G(x, generator=g)  # (B, C_out, H, W); its noise drawn from g
        if D is not None:
            # discriminator step: real pairs -> 1, fake pairs -> 0 (G frozen: fake detached)
            d_loss = discriminator_loss(D(x, y), D(x, fake.detach()))
            opt_D.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_D.step()
            D.requires_grad_(False)  # generator step: D frozen
            loss, adv, l1 = pix2pix_generator_loss(D(x, fake), fake, y, lam)
            D.requires_grad_(True)
            logs["d_loss"].append(d_loss.detach())
            logs["adv"].append(adv.detach())
        else:
            l1 = (y - fake).abs().mean()
            loss = l1
        opt_G.zero_grad(set_to_none=True)
        loss.backward()
        opt_G.step()
        sched_G.step()
        logs["loss"].append(loss.detach())
        logs["l1"].append(l1.detach())
    values = {k: torch.stack(v).cpu().tolist() if v else [] for k, v in logs.items()}  # one sync, at the end
    history = History(loss=values.pop("loss"), logs=values, steps=steps, seconds=time.perf_counter() - started,
                      device=str(device))
    for model in models:
        model.eval()
    return history
