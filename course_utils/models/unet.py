"""The U-Net: an encoder-decoder with skip connections (Chapter 5), reused by pix2pix and medical imaging.

Ronneberger et al. (2015) built it for biomedical segmentation. In this course Chapter 5 trains it
for segmentation, low-dose CT restoration and super-resolution; pix2pix (Chapter 4,
``models.pix2pix``) uses it as its generator and the mammography chapter (Chapter 8,
``models.cad.SegmentClassifyUNet``) adds a classification head to it. The diffusion chapters do *not*
use this class: their denoiser is diffusers' ``UNet2DModel`` (``models.diffusion.build_pixel_unet``),
a U-Net with time embeddings, residual blocks and attention -- the same skip-connection idea.

Encoder (the contracting path): at level l = 0 .. depth-1 a ``ConvBlock`` (two 3x3 convolutions,
each followed by a norm and a ReLU) then 2x2 max-pooling halves the size and the next block doubles
the channels, width_l = base_width * 2**l:

    e_l = ConvBlock(pool(e_{l-1}))            (B, width_l, H / 2**l, W / 2**l)

The bottleneck is one more block at level ``depth`` (size H / 2**depth). Decoder (the expanding
path): a 2x2 transposed convolution doubles the size, and -- the U-Net's one idea -- the encoder
feature map of the same size is *concatenated on the channel axis* before the next block:

    d_l = ConvBlock(concat[up(d_{l+1}), e_l])  (B, width_l, H / 2**l, W / 2**l)

so fine detail that the bottleneck had to drop reaches the output by a short path. A 1x1
convolution maps d_0 to ``out_channels`` (logits for segmentation, an image for restoration).

``skip=False`` gives the plain encoder-decoder (an autoencoder-shaped network) for a fair
comparison: the same blocks, with the transposed convolution producing the channels that the skip
would have brought, so every decoder block has the same shape and the plain network has *at least*
as many parameters as the U-Net.

Convolutions are padded ("same"), so the output has the input's size; H and W must be divisible
by 2**depth. (The 2015 paper used unpadded convolutions and cropped the skip before concatenating;
the chapter's exercise writes that crop, :func:`crop_and_concat`, which here crops nothing.)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from torch import Tensor


NORMS = ("batch", "group", "none")


@dataclass
class UNetConfig:
    in_channels: int = 1  # channels of the input image
    out_channels: int = 1  # classes (segmentation logits) or image channels (restoration)
    base_width: int = 16  # channels of the first level; level l has base_width * 2**l
    depth: int = 3  # number of 2x down-samplings; the bottleneck is H / 2**depth
    norm: str = "batch"  # "batch", "group" (8 groups or fewer) or "none"
    skip: bool = True  # False: the same network without skip connections (plain encoder-decoder)

    def __post_init__(self):
        if self.norm not in NORMS:
            raise ValueError(f"norm={self.norm!r}: choose one of {NORMS}.")
        if self.depth < 1 or self.base_width < 1:
            raise ValueError(f"depth={self.depth} and base_width={self.base_width} must be >= 1.")

    def width(self, level: int) -> int:
        return self.base_width * 2**level


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    return nn.Identity()


def crop_and_concat(up: Tensor, skip: Tensor) -> Tensor:
    """The skip connection: centre-crop ``skip`` (B, C_s, H, W) to ``up``'s (h, w), concatenate channels.

        top = ⌊(H − h) / 2⌋,  left = ⌊(W − w) / 2⌋,  out = concat[up, skip[:, :, top:top+h, left:left+w]]

    Returns (B, C_u + C_s, h, w), the decoder's map first. With padded convolutions (this module's
    U-Net) H = h and W = w: nothing is cropped.
    """
    h, w = up.shape[-2:]
    H, W = skip.shape[-2:]
    if H < h or W < w:
        raise ValueError(f"the skip map ({H}x{W}) must be at least as large as the up-sampled map ({h}x{w}).")
    top, left = (H - h) // 2, (W - w) // 2
    return torch.cat([up, skip[:, :, top:top + h, left:left + w]], dim=1)  # (B, C_u + C_s, h, w)


class ConvBlock(nn.Sequential):
    """(3x3 conv -> norm -> ReLU) twice; padded, so the size is kept: (B, C_in, H, W) -> (B, C_out, H, W)."""

    def __init__(self, c_in: int, c_out: int, norm: str = "batch"):
        bias = norm == "none"  # a norm right after the conv makes its bias redundant
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias), _norm(norm, c_out), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=bias), _norm(norm, c_out), nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """U-Net (``config.skip=True``) or the same-size plain encoder-decoder (``skip=False``)."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = c = config
        self.encoder = nn.ModuleList(
            [ConvBlock(c.in_channels if l == 0 else c.width(l - 1), c.width(l), c.norm) for l in range(c.depth)]
        )
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = ConvBlock(c.width(c.depth - 1), c.width(c.depth), c.norm)
        # decoder level l: up from width(l+1) to width(l), concat the skip (width(l)), block 2*width(l) -> width(l)
        up_out = (lambda l: c.width(l)) if c.skip else (lambda l: 2 * c.width(l))  # no skip: up makes them all
        self.up = nn.ModuleList(
            [nn.ConvTranspose2d(c.width(l + 1), up_out(l), kernel_size=2, stride=2) for l in range(c.depth)]
        )
        self.decoder = nn.ModuleList([ConvBlock(2 * c.width(l), c.width(l), c.norm) for l in range(c.depth)])
        self.head = nn.Conv2d(c.width(0), c.out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        B, _, H, W = x.shape  # (B, C_in, H, W)
        f = 2**self.config.depth
        if H % f or W % f:
            raise ValueError(f"input size {H}x{W} must be divisible by 2**depth = {f}.")
        skips = []
        for block in self.encoder:
            x = block(x)  # (B, width_l, H_l, W_l)
            skips.append(x)
            x = self.pool(x)  # (B, width_l, H_l / 2, W_l / 2)
        x = self.bottleneck(x)  # (B, width_depth, H / 2**depth, W / 2**depth)
        for l in reversed(range(self.config.depth)):
            x = self.up[l](x)  # (B, width_l or 2 width_l, H_l, W_l)
            if self.config.skip:
                x = crop_and_concat(x, skips[l])  # (B, 2 width_l, H_l, W_l): channel axis
            x = self.decoder[l](x)  # (B, width_l, H_l, W_l)
        return self.head(x)  # (B, C_out, H, W)
