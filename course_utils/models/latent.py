"""Latent and text-conditioned diffusion: a tiny ``AutoencoderKL``, a cross-attention U-Net, CLIP text.

**Latent diffusion** (Rombach et al., 2022) runs the diffusion of ``course_utils.models.diffusion``
not on pixels but on the code of an autoencoder that downsamples by a factor f:

    z = E(x) ∈ R^{c × H/f × W/f},   x̂ = D(z),   trained once with  L = ‖x - D(E(x))‖² (+ a tiny KL)

The denoiser then works on H/f × W/f "pixels" (f² times fewer positions), and a sample is D(z_0).
Latents are divided by their standard deviation (Stable Diffusion's ``scaling_factor``) so that
they have about unit variance, like the N(0, I) noise the chain ends in.

**Text conditioning**: the prompt is tokenised (CLIP's BPE tokenizer), encoded by CLIP's text
Transformer into per-token features c ∈ R^{L × d}, and every cross-attention layer of the U-Net lets
the image positions (queries) look at the tokens (keys, values):

    CrossAttn(h, c) = softmax(Q Kᵀ / √d_k) V,   Q = h W_Q,  K = c W_K,  V = c W_V

The U-Net is diffusers' ``UNet2DConditionModel`` (``encoder_hidden_states`` = c). The "null"
prompt of classifier-free guidance is the empty string's features, as in Stable Diffusion.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from course_utils.train import History, fit, predict, resolve_device


@dataclass
class TinyAutoencoderConfig:
    """A diffusers ``AutoencoderKL`` small enough for a CPU; ``factor`` = spatial downsampling f."""

    image_size: int = 32
    channels: int = 3
    factor: int = 4  # f: a power of 2; the encoder halves the resolution log2(f) times
    width: int = 16  # channels of the first block; later blocks use 2 * width
    latent_channels: int = 4

    def __post_init__(self):
        if self.factor < 1 or self.factor & (self.factor - 1):
            raise ValueError(f"factor={self.factor} must be a power of 2 (1, 2, 4, 8, ...).")
        if self.image_size % self.factor:
            raise ValueError(f"image_size={self.image_size} is not divisible by factor={self.factor}.")
        if self.width % 8:
            raise ValueError(f"width={self.width} must be a multiple of 8 (GroupNorm with 8 groups).")

    @property
    def latent_size(self) -> int:
        return self.image_size // self.factor


def build_autoencoder(config: Optional[TinyAutoencoderConfig] = None):
    """``AutoencoderKL`` with log2(f) + 1 blocks (each but the last halves the resolution)."""
    from diffusers import AutoencoderKL

    config = config if config is not None else TinyAutoencoderConfig()
    blocks = config.factor.bit_length()  # log2(f) + 1
    widths = tuple([config.width] + [2 * config.width] * (blocks - 1))
    return AutoencoderKL(in_channels=config.channels, out_channels=config.channels,
                         down_block_types=("DownEncoderBlock2D",) * blocks,
                         up_block_types=("UpDecoderBlock2D",) * blocks, block_out_channels=widths,
                         layers_per_block=1, latent_channels=config.latent_channels, norm_num_groups=8,
                         sample_size=config.image_size)


def train_autoencoder(ae, images: Tensor, steps: int = 200, batch_size: int = 32, lr: float = 3e-3,
                      kl_weight: float = 1e-6, seed: int = 0, device=None) -> History:
    """Fit ``ae`` on images in [0, 1] (N, C, H, W) with ``train.fit`` (AdamW, one-cycle, 10 % warm-up):

        L = ‖x - D(z)‖² + kl_weight · KL(q(z|x) ‖ N(0, I)),   z = μ + σ ε,  ε ~ N(0, I),   x in [-1, 1]

    z is sampled from the encoder's Gaussian (the reparameterisation trick). ε is drawn on the
    device, by ``posterior.sample()`` from the device's global generator, which is seeded with
    ``seed`` for the training and given its previous state back afterwards. Returns the History
    (the KL term under ``"kl"``).
    """
    def loss_fn(model, x):
        x = x * 2 - 1  # (B, C, H, W) in [-1, 1]
        posterior = model.encode(x).latent_dist
        z = posterior.sample()  # μ + σ ε, (B, c, H/f, W/f)
        kl = posterior.kl().mean()
        return F.mse_loss(model.decode(z).sample, x) + kl_weight * kl, {"kl": kl}

    device = resolve_device(device)
    with _seeded_on(device, seed):
        return fit(ae, loss_fn, images, steps=steps, batch_size=batch_size, lr=lr, optimizer="adamw",
                   weight_decay=0.0, warmup=0.1, device=device, seed=seed, desc="autoencoder")


@contextmanager
def _seeded_on(device: torch.device, seed: int):
    """torch's global generators (the CPU's and ``device``'s) seeded to ``seed`` inside the block,
    and given their previous states back afterwards."""
    cuda = [device.index or 0] if device.type == "cuda" and torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield


def encode_latents(ae, images: Tensor, batch_size: int = 256, device=None) -> Tensor:
    """Latent means of images in [0, 1]: (N, C, H, W) -> (N, c, H/f, W/f) (unscaled), on the CPU."""
    return predict(ae, images, lambda m, x: m.encode(x * 2 - 1).latent_dist.mode(), batch_size=batch_size,
                   device=device)


def decode_latents(ae, latents: Tensor, batch_size: int = 256, device=None) -> Tensor:
    """Images in [0, 1] from (unscaled) latents: (N, c, h, w) -> (N, C, h f, w f), on the CPU."""
    return predict(ae, latents, lambda m, z: ((m.decode(z).sample + 1) / 2).clamp(0, 1), batch_size=batch_size,
                   device=device)


def scale_latents(latents: Tensor) -> tuple[Tensor, float]:
    """(latents · s, s) with s = 1/σ, σ the standard deviation over every element (unbiased).

    Stable Diffusion's ``scaling_factor``: the scaled latents have unit variance, like the N(0, I)
    the forward process ends in; a sample z_0 goes back to the decoder as z_0 / s.
    """
    factor = 1.0 / latents.std().item()  # one global σ
    return latents * factor, factor


def build_text_unet(sample_size: int = 8, channels: int = 4, widths=(32, 64), context_dim: int = 64,
                    head_dim: int = 8, pooled_dim: Optional[int] = None):
    """diffusers ``UNet2DConditionModel``: plain blocks, cross-attention only at the lowest resolution.

    Each width is one resolution level (the image halves between levels); three levels give a
    receptive field that covers a 16 x 16 image -- with two, the network cannot see enough of a very
    noisy image to tell the noise from the content, and sampling drifts.

    (RECIPES: sample 8-16, widths (32, 64), cross_attention_dim 64: about 1 M parameters.)
    ``pooled_dim``: also add a projection of one pooled conditioning vector (the CLIP embedding,
    passed as ``class_labels``) to the time embedding, as DALL-E 2's decoder and SDXL do; it
    reaches every ResNet block, so the condition is learned in far fewer steps than through
    cross-attention alone. A multiple k · context_dim gives k pooled slots (e.g. a text embedding
    and an image embedding, each zero when absent): see :func:`text_unet_fn`.
    """
    if pooled_dim is not None and pooled_dim % context_dim:
        raise ValueError(f"pooled_dim={pooled_dim} must be a multiple of context_dim={context_dim}.")
    extra = {} if pooled_dim is None else dict(class_embed_type="projection",
                                               projection_class_embeddings_input_dim=pooled_dim)
    from diffusers import UNet2DConditionModel

    down = ("DownBlock2D",) * (len(widths) - 1) + ("CrossAttnDownBlock2D",)  # cross-attention at the lowest
    up = ("CrossAttnUpBlock2D",) + ("UpBlock2D",) * (len(widths) - 1)  # resolution (and in the middle block)
    return UNet2DConditionModel(sample_size=sample_size, in_channels=channels, out_channels=channels,
                                layers_per_block=1, block_out_channels=tuple(widths), down_block_types=down,
                                up_block_types=up, cross_attention_dim=context_dim, attention_head_dim=head_dim,
                                norm_num_groups=8, **extra)


def text_unet_fn(unet):
    """model_fn(x_t, t, c) for ``course_utils.models.diffusion``'s loops.

    ``c``: the context (B, L, d) alone, or -- for a U-Net built with ``pooled_dim`` = k · d -- the
    context with the k pooled vectors appended as k more tokens (B, L + k, d): the last k tokens are
    split off, concatenated and passed as ``class_labels`` (one tensor keeps the condition-dropping
    and guidance code generic).
    """
    def fn(x, t, c):
        if unet.config.class_embed_type == "projection":
            k = unet.config.projection_class_embeddings_input_dim // c.shape[-1]  # pooled slots
            # a unit CLIP vector has entries of about 1/√d: scale it to norm √d (entries of about 1, like
            # the learned class embeddings of UNet2DModel) so that it is not drowned by the time embedding
            pooled = c[:, -k:].flatten(1) * c.shape[-1] ** 0.5  # (B, k d)
            return unet(x, t, encoder_hidden_states=c[:, :-k], class_labels=pooled).sample
        return unet(x, t, encoder_hidden_states=c).sample
    return fn


def prompt_features(clip_model, prompts, tokenizer=None, batch_size: int = 512, device=None) -> Tensor:
    """Per-token CLIP text features of a list of prompts: (N, context_length, text_width), on the CPU,
    computed in chunks on ``device`` (default: the runtime's)."""
    from .clip import get_tokenizer, model_config, text_token_features

    tokenizer = tokenizer if tokenizer is not None else get_tokenizer(model_config(clip_model))
    tokens = tokenizer(list(prompts))  # (N, context_length)
    return predict(clip_model, tokens, text_token_features, batch_size=batch_size, device=device)
