"""The Vision Transformer (Dosovitskiy et al., 2021, "An image is worth 16x16 words").

An image becomes a sentence of patches. With patch size p, an image (C, H, W) is cut into
N = (H/p)(W/p) patches, each flattened to a vector of C p^2 pixels, and then

    z_0 = [x_cls ; x_1 E ; x_2 E ; ... ; x_N E] + E_pos      E (C p^2, D), E_pos (N+1, D)
    z_L = Encoder(z_0)                                       Chapter 1's TransformerEncoder
    y   = head(z_L[0])                                       the class token's final state

The patch projection ``x_i E`` is one linear map applied to every patch: exactly a Conv2d with
kernel = stride = p (:class:`PatchEmbedding` uses the convolution, the library primitive).

Also here: MAE pretraining (He et al., 2022) -- :func:`random_masking`, :class:`MaskedAutoencoder`
-- and attention rollout (Abnar & Zuidema, 2020) -- :func:`attention_rollout`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from . import parameters
from .transformer import EncoderConfig, TransformerEncoder


@dataclass
class ViTConfig:
    image_size: int = 16  # H = W
    patch_size: int = 4  # p; N = (image_size / p)^2 patches
    in_channels: int = 3  # C
    n_classes: int = 10
    d_model: int = 64  # D, the width of every token
    n_heads: int = 4
    n_layers: int = 4
    mlp_ratio: float = 2.0
    dropout: float = 0.0
    pool: str = "cls"  # what the head reads: the class token ("cls") or the mean patch token ("mean")

    def __post_init__(self):
        if self.pool not in ("cls", "mean"):
            raise ValueError(f"pool={self.pool!r}: choose 'cls' or 'mean'.")
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size={self.image_size} is not a multiple of patch_size={self.patch_size}.")

    @property
    def grid_size(self) -> int:
        return self.image_size // self.patch_size  # patches per side

    @property
    def n_patches(self) -> int:
        return self.grid_size ** 2  # N

    @property
    def patch_dim(self) -> int:
        return self.in_channels * self.patch_size ** 2  # C p^2

    def encoder_config(self) -> EncoderConfig:
        return EncoderConfig(d_model=self.d_model, n_heads=self.n_heads, n_layers=self.n_layers,
                             mlp_ratio=self.mlp_ratio, dropout=self.dropout, norm_first=True)


# ---------------------------------------------------------------------------------------------
# Patches
# ---------------------------------------------------------------------------------------------
def patchify(images: Tensor, patch_size: int) -> Tensor:
    """(B, C, H, W) -> (B, N, C p^2): patches in row-major order (left to right, top to bottom),
    each flattened channel first, as (C, p, p) -- the layout of a Conv2d weight (D, C, p, p)."""
    B, C, H, W = images.shape
    p = patch_size
    x = images.reshape(B, C, H // p, p, W // p, p)  # (B, C, gh, p, gw, p)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, gh, gw, C, p, p)
    return x.reshape(B, (H // p) * (W // p), C * p * p)  # (B, N, C p^2)


def unpatchify(patches: Tensor, patch_size: int, channels: int, grid: Optional[tuple[int, int]] = None) -> Tensor:
    """The inverse of :func:`patchify`: (B, N, C p^2) -> (B, C, H, W); ``grid`` = (gh, gw),
    square by default."""
    B, N, _ = patches.shape
    p = patch_size
    gh, gw = grid if grid is not None else (math.isqrt(N), math.isqrt(N))
    x = patches.reshape(B, gh, gw, channels, p, p)  # (B, gh, gw, C, p, p)
    x = x.permute(0, 3, 1, 4, 2, 5)  # (B, C, gh, p, gw, p)
    return x.reshape(B, channels, gh * p, gw * p)  # (B, C, H, W)


def add_cls_and_positions(tokens: Tensor, cls_token: Tensor, pos_embed: Tensor) -> Tensor:
    """z_0 = [x_cls ; tokens] + E_pos: tokens (B, N, D), cls_token (1, 1, D), pos_embed (1, N+1, D)
    -> (B, N+1, D), the class token at position 0. The inputs are not modified."""
    cls = cls_token.expand(tokens.shape[0], -1, -1)  # (B, 1, D): the same token for every image
    return torch.cat([cls, tokens], dim=1) + pos_embed  # (B, N+1, D)


class PatchEmbedding(nn.Module):
    """x_i E + b for every patch i, computed as a Conv2d with kernel = stride = p.

    ``proj.weight`` (D, C, p, p) flattened to (D, C p^2) is E^T: the i-th output of the
    convolution is E^T x_i + b with x_i = patchify(image)[i] (see :meth:`as_linear`).
    """

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.patch_size = config.patch_size
        self.proj = nn.Conv2d(config.in_channels, config.d_model, config.patch_size, stride=config.patch_size)

    def forward(self, images: Tensor) -> Tensor:
        x = self.proj(images)  # (B, D, H/p, W/p)
        return x.flatten(2).transpose(1, 2)  # (B, N, D)

    def as_linear(self) -> nn.Linear:
        """The same map as an ``nn.Linear`` on patchified pixels (C p^2 -> D)."""
        w = self.proj.weight
        linear = nn.Linear(w[0].numel(), w.shape[0], device=w.device, dtype=w.dtype)
        with torch.no_grad():
            linear.weight.copy_(w.flatten(1))  # (D, C p^2)
            linear.bias.copy_(self.proj.bias)  # (D,)
        return linear


# ---------------------------------------------------------------------------------------------
# The ViT
# ---------------------------------------------------------------------------------------------
class VisionTransformer(nn.Module):
    """Patch embedding, class token, learned position embeddings, Chapter 1's encoder, a head.

    The layout follows ``torchvision.models.VisionTransformer`` (pre-norm blocks, a final
    LayerNorm, the head on the class token), so weights copy across (tests/test_models_vit.py).
    """

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.config = config
        D = config.d_model
        self.patch_embed = PatchEmbedding(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))  # x_cls
        self.pos_embed = nn.Parameter(torch.empty(1, config.n_patches + 1, D).normal_(std=0.02))  # E_pos
        self.dropout = nn.Dropout(config.dropout)
        self.encoder = TransformerEncoder(config.encoder_config())  # Chapter 1, reused
        self.head = nn.Linear(D, config.n_classes)
        self._init_weights()

    def _init_weights(self):
        # as torchvision: patch projection ~ truncated normal with std sqrt(1 / fan_in)
        fan_in = self.patch_embed.proj.weight[0].numel()
        nn.init.trunc_normal_(self.patch_embed.proj.weight, std=math.sqrt(1.0 / fan_in))
        nn.init.zeros_(self.patch_embed.proj.bias)
        for module in self.encoder.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.normal_(module.bias, std=1e-6)

    def embed(self, images: Tensor) -> Tensor:
        """z_0 = [x_cls ; x_1 E ; ... ; x_N E] + E_pos: (B, C, H, W) -> (B, N+1, D)."""
        x = self.patch_embed(images)  # (B, N, D)
        return self.dropout(add_cls_and_positions(x, self.cls_token, self.pos_embed))  # (B, N+1, D)

    def features(self, images: Tensor, return_attention: bool = False):
        """z_L = Encoder(z_0): (B, N+1, D); with ``return_attention`` also the per-layer
        attention probabilities, a list of (B, H, N+1, N+1)."""
        return self.encoder(self.embed(images), return_attention=return_attention)

    def forward(self, images: Tensor, return_attention: bool = False):
        """y = head(z_L[0]) -- or head(mean_i z_L[i]) with ``pool="mean"``: logits (B, n_classes)
        (and the attentions, if asked)."""
        out = self.features(images, return_attention=return_attention)
        hidden, attentions = out if return_attention else (out, None)
        if self.config.pool == "cls":
            summary = hidden[:, 0]  # (B, D): the class token
        else:
            summary = hidden[:, 1:].mean(dim=1)  # (B, D): the average patch token (MAE fine-tuning)
        logits = self.head(summary)  # (B, n_classes)
        return (logits, attentions) if return_attention else logits

    def num_parameters(self) -> int:
        return parameters.count_parameters(self)


def to_torchvision(model: VisionTransformer) -> nn.Module:
    """A ``torchvision.models.VisionTransformer`` with the same configuration and a copy of the
    weights. In eval mode it computes the same function up to LayerNorm's eps (torchvision uses
    1e-6, the encoder 1e-5; set ``eps`` of our LayerNorms to 1e-6 for an exact match)."""
    from torchvision.models import VisionTransformer as TorchvisionViT

    from .attention import to_torch_mha

    c = model.config
    if c.pool != "cls":
        raise ValueError("torchvision's VisionTransformer reads the class token (pool='cls').")
    if c.in_channels != 3:
        raise ValueError("torchvision's VisionTransformer takes RGB images (in_channels=3).")
    ref = TorchvisionViT(image_size=c.image_size, patch_size=c.patch_size, num_layers=c.n_layers,
                         num_heads=c.n_heads, hidden_dim=c.d_model, mlp_dim=int(c.mlp_ratio * c.d_model),
                         dropout=c.dropout, attention_dropout=c.dropout, num_classes=c.n_classes)
    ref = ref.to(device=model.cls_token.device, dtype=model.cls_token.dtype)
    with torch.no_grad():
        ref.conv_proj.load_state_dict(model.patch_embed.proj.state_dict())
        ref.class_token.copy_(model.cls_token)
        ref.encoder.pos_embedding.copy_(model.pos_embed)
        for layer, block in zip(ref.encoder.layers, model.encoder.blocks):
            layer.ln_1.load_state_dict(block.norm1.state_dict())
            layer.self_attention.load_state_dict(to_torch_mha(block.attention).state_dict())
            layer.ln_2.load_state_dict(block.norm2.state_dict())
            layer.mlp[0].load_state_dict(block.mlp.fc1.state_dict())
            layer.mlp[3].load_state_dict(block.mlp.fc2.state_dict())
        ref.encoder.ln.load_state_dict(model.encoder.final_norm.state_dict())
        ref.heads.head.load_state_dict(model.head.state_dict())
    return ref.train(model.training)


# ---------------------------------------------------------------------------------------------
# Attention rollout
# ---------------------------------------------------------------------------------------------
def attention_rollout(attentions: list[Tensor], residual: bool = True) -> Tensor:
    """Attention rollout (Abnar & Zuidema, 2020): how much each input token flows into each
    output token through all layers.

        A_l   = mean over heads of layer l's attention        (B, T, T)
        Â_l   = 0.5 A_l + 0.5 I   (the residual connection), rows renormalised to sum to 1
        R     = Â_L Â_{L-1} ... Â_1

    ``R[:, 0, 1:]`` is the class token's relevance of every patch. attentions: list of
    (B, H, T, T) from ``model(x, return_attention=True)``. Returns R (B, T, T).
    """
    rollout = None
    for probs in attentions:
        a = probs.mean(dim=1)  # (B, T, T): average the heads
        if residual:
            eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
            a = 0.5 * a + 0.5 * eye  # (B, T, T)
            a = a / a.sum(dim=-1, keepdim=True)  # rows sum to 1 again
        rollout = a if rollout is None else a @ rollout  # (B, T, T): later layers on the left
    return rollout


# ---------------------------------------------------------------------------------------------
# Masked autoencoder (MAE) pretraining
# ---------------------------------------------------------------------------------------------
def random_masking(batch_size: int, n_patches: int, mask_ratio: float,
                   generator: Optional[torch.Generator] = None, device=None) -> tuple[Tensor, Tensor]:
    """Choose, independently for every sample, which patches stay visible.

    Keeps n_keep = int(N (1 - mask_ratio)) patches per sample: the ones with the smallest of N
    uniform noises. Returns ``(keep, mask)``: keep (B, n_keep) long, indices of the visible
    patches; mask (B, N) bool, ``True`` = masked (hidden from the encoder).
    """
    n_keep = int(n_patches * (1 - mask_ratio))
    noise = torch.rand(batch_size, n_patches, generator=generator)  # (B, N): one draw per sample
    keep = noise.argsort(dim=1)[:, :n_keep]  # (B, n_keep)
    mask = torch.ones(batch_size, n_patches, dtype=torch.bool)
    mask.scatter_(1, keep, False)  # (B, N): False where visible
    if device is not None:
        keep, mask = keep.to(device), mask.to(device)
    return keep, mask


@dataclass
class MAEConfig:
    mask_ratio: float = 0.75
    decoder_dim: int = 32
    decoder_layers: int = 1
    decoder_heads: int = 4
    decoder_mlp_ratio: float = 2.0
    norm_pix_loss: bool = False  # predict per-patch normalised pixels (the MAE paper's best)


class MaskedAutoencoder(nn.Module):
    """MAE (He et al., 2022) around a :class:`VisionTransformer` (its embedding and encoder).

        visible = z_0[1 + keep]                  encode only the unmasked patches (+ class token)
        h       = Encoder([z_0[0]; visible])     the ViT's encoder, 25 % of the tokens
        u       = [h ; m, ..., m] unshuffled     mask tokens m at the hidden positions, + E_pos'
        x̂       = Linear(Decoder(u))             pixels of every patch (B, N, C p^2)
        loss    = mean over masked patches of ||x̂_i - x_i||^2

    ``masking`` is the function that draws the masks (signature of :func:`random_masking`).
    After pretraining, ``mae.vit`` is the encoder to fine-tune.
    """

    def __init__(self, vit: VisionTransformer, config: Optional[MAEConfig] = None,
                 masking: Callable = random_masking):
        super().__init__()
        self.vit = vit
        self.config = config = config if config is not None else MAEConfig()
        self.masking = masking
        c = vit.config
        Dd = config.decoder_dim
        self.decoder_embed = nn.Linear(c.d_model, Dd)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, Dd))  # m
        self.decoder_pos = nn.Parameter(torch.empty(1, c.n_patches + 1, Dd).normal_(std=0.02))  # E_pos'
        self.decoder = TransformerEncoder(EncoderConfig(
            d_model=Dd, n_heads=config.decoder_heads, n_layers=config.decoder_layers,
            mlp_ratio=config.decoder_mlp_ratio, norm_first=True))
        self.to_pixels = nn.Linear(Dd, c.patch_dim)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, images: Tensor, generator: Optional[torch.Generator] = None):
        """Returns ``(loss, pred (B, N, C p^2), mask (B, N) bool True = masked)``."""
        c = self.vit.config
        B, N = images.shape[0], c.n_patches
        keep, mask = self.masking(B, N, self.config.mask_ratio, generator=generator)
        # drawn on the CPU (from a CPU generator), used where the images are
        keep, mask = keep.to(images.device), mask.to(images.device)  # (B, n_keep), (B, N)

        z = self.vit.embed(images)  # (B, N+1, D), positions added
        cls, patches = z[:, :1], z[:, 1:]  # (B, 1, D), (B, N, D)
        D = patches.shape[-1]
        visible = patches.gather(1, keep[..., None].expand(-1, -1, D))  # (B, n_keep, D)
        h = self.vit.encoder(torch.cat([cls, visible], dim=1))  # (B, 1+n_keep, D)

        h = self.decoder_embed(h)  # (B, 1+n_keep, Dd)
        Dd = h.shape[-1]
        full = self.mask_token.expand(B, N, Dd).clone()  # (B, N, Dd): m everywhere ...
        full = full.scatter(1, keep[..., None].expand(-1, -1, Dd), h[:, 1:])  # ... encoded where visible
        u = torch.cat([h[:, :1], full], dim=1) + self.decoder_pos  # (B, N+1, Dd)
        pred = self.to_pixels(self.decoder(u)[:, 1:])  # (B, N, C p^2)

        target = patchify(images, c.patch_size)  # (B, N, C p^2)
        if self.config.norm_pix_loss:
            mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
            target = (target - mean) / (var + 1e-6).sqrt()
        per_patch = (pred - target).pow(2).mean(-1)  # (B, N)
        loss = (per_patch * mask).sum() / mask.sum()  # masked patches only
        return loss, pred, mask
