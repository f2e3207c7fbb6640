"""unCLIP (DALL-E 2, Ramesh et al., 2022): text -> CLIP image embedding -> image.

DALL-E 2 splits text-to-image in two stages, both around a frozen CLIP:

* the **prior** P maps the CLIP text embedding y_text of a caption to a CLIP *image* embedding,
  ŷ_img = P(y_text). The two embeddings of a pair are close but not equal (CLIP only aligns their
  directions, and one caption fits many images), so a learned map beats using y_text directly.
  Here the prior is a small MLP with a residual connection, trained on unit vectors with the
  cosine loss  L = 1 - cos(P(y_text), y_img)  (DALL-E 2 also tried a diffusion prior);
* the **decoder** is a diffusion model conditioned on the image embedding -- here diffusers'
  ``UNet2DConditionModel`` that attends to the embedding as a single context token (B, 1, d).

Generating from text: y_text -> prior -> ŷ_img -> decoder. **Variations** of an image x: encode
it, y_img = CLIP_image(x), and decode y_img with different noise -- images that share what CLIP
saw in x (colour, shape) and differ in what it ignores (position, exact size).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from course_utils.train import History, fit


@dataclass
class PriorConfig:
    embed_dim: int = 64  # CLIP's shared embedding size
    hidden: int = 256
    layers: int = 2  # hidden layers of the MLP

    def __post_init__(self):
        if min(self.embed_dim, self.hidden, self.layers) < 1:
            raise ValueError("embed_dim, hidden and layers must be >= 1.")


class Prior(nn.Module):
    """ŷ_img = normalise(y_text + MLP(y_text)): (B, embed_dim) unit text embeddings -> unit image embeddings."""

    def __init__(self, config: Optional[PriorConfig] = None):
        super().__init__()
        self.config = c = config if config is not None else PriorConfig()
        layers, width = [], c.embed_dim
        for _ in range(c.layers):
            layers += [nn.Linear(width, c.hidden), nn.GELU()]
            width = c.hidden
        layers.append(nn.Linear(width, c.embed_dim))
        self.mlp = nn.Sequential(*layers)

    def forward(self, text_embedding: Tensor) -> Tensor:
        if text_embedding.dim() != 2 or text_embedding.shape[1] != self.config.embed_dim:
            raise ValueError(f"text embeddings must be (B, {self.config.embed_dim}), got {tuple(text_embedding.shape)}.")
        # ŷ = (y + MLP(y)) / ‖y + MLP(y)‖
        return F.normalize(text_embedding + self.mlp(text_embedding), dim=-1)  # (B, embed_dim)


def cosine_loss(predicted: Tensor, target: Tensor) -> Tensor:
    """L = mean_i (1 - cos(ŷ_i, y_i))."""
    return (1 - F.cosine_similarity(predicted, target, dim=-1)).mean()


def train_prior(prior: Prior, text_embeddings: Tensor, image_embeddings: Tensor, steps: int = 500,
                batch_size: int = 128, lr: float = 2e-3, seed: int = 0, device=None) -> History:
    """Fit ``prior`` on aligned (text, image) CLIP embeddings (N, D) with the cosine loss
    L = mean_i (1 - cos(P(y_text,i), y_img,i)), through ``train.fit`` (AdamW with weight decay 1e-4,
    one-cycle with 10 % warm-up). Both sets are normalised to unit length first.

    Returns the History; the prior is left on ``device`` in eval mode.
    """
    if text_embeddings.shape != image_embeddings.shape:
        raise ValueError(f"text {tuple(text_embeddings.shape)} and image {tuple(image_embeddings.shape)} "
                         f"embeddings must align one to one.")
    text, image = F.normalize(text_embeddings, dim=-1), F.normalize(image_embeddings, dim=-1)  # (N, D) each
    return fit(prior, lambda model, y_text, y_img: cosine_loss(model(y_text), y_img), (text, image), steps=steps,
               batch_size=batch_size, lr=lr, optimizer="adamw", weight_decay=1e-4, warmup=0.1, device=device,
               seed=seed, desc="prior")


def as_context(embedding: Tensor) -> Tensor:
    """An embedding (B, D) as a one-token cross-attention context (B, 1, D) for the decoder."""
    if embedding.dim() != 2:
        raise ValueError(f"expected (B, D) embeddings, got {tuple(embedding.shape)}.")
    return F.normalize(embedding, dim=-1)[:, None, :]  # (B, 1, D)
