"""The variational autoencoder (Kingma & Welling, 2014).

The encoder outputs a *distribution* over codes, q_θ(z | x) = N(μ_θ(x), diag σ²_θ(x)) -- as the
pair (μ, log σ²), so that σ² = exp(log σ²) is positive without constraints. The decoder gives
p_φ(x | z); for images in [0, 1] a Bernoulli per pixel with logits d_φ(z). Training maximises the
evidence lower bound, i.e. minimises

    L(x) = E_{z ~ q(z|x)} [ −log p_φ(x | z) ] + KL( q_θ(z | x) ‖ N(0, I) )

    −log p_φ(x | z) = BCE(d_φ(z), x) = −Σ_i [x_i log p_i + (1 − x_i) log(1 − p_i)],  p = sigmoid(d_φ(z))

    KL = −½ Σ_j (1 + log σ²_j − μ_j² − σ²_j)        (closed form for two Gaussians)

The expectation is estimated with one sample drawn by the *reparameterisation trick*,

    z = μ + σ ⊙ ε,   ε ~ N(0, I),   σ = exp(½ log σ²),

which moves the randomness into ε, so gradients flow through μ and σ to the encoder.
The KL term pulls every q(z|x) toward the prior N(0, I): codes fill the space around 0 without
holes, and decoding z ~ N(0, I) gives new samples.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .autoencoder import mlp


@dataclass
class VAEConfig:
    in_dim: int = 64  # D
    latent_dim: int = 2  # k
    hidden: tuple = (128, 64)  # encoder widths; the decoder mirrors them
    beta: float = 1.0  # weight of the KL term (beta-VAE; 1 = the ELBO)


def reparameterize(mu: Tensor, logvar: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """z = μ + exp(½ log σ²) ⊙ ε, ε ~ N(0, I) drawn from ``generator``."""
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)  # (B, k)
    return mu + torch.exp(0.5 * logvar) * eps  # (B, k)


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) = −½ Σ_j (1 + log σ²_j − μ_j² − σ²_j), per example: (B,)."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)


def vae_loss(logits: Tensor, x: Tensor, mu: Tensor, logvar: Tensor, beta: float = 1.0):
    """Negative ELBO, averaged over the batch: BCE(logits, x) summed over pixels + β KL.

    Returns (loss, reconstruction, kl), each a scalar (batch means).
    """
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)  # (B,)
    kl = kl_divergence(mu, logvar)  # (B,)
    return (recon + beta * kl).mean(), recon.mean(), kl.mean()


def negative_elbo(logits: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """The loss alone, one scalar: ``vae_loss(logits, x, mu, logvar)[0]`` (β = 1)."""
    return vae_loss(logits, x, mu, logvar)[0]


class VAE(nn.Module):
    """x (B, D) -> (μ, log σ²) (B, k) each -> z -> logits (B, D); ``forward`` returns (logits, μ, log σ²)."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = c = config
        self.encoder = mlp([c.in_dim, *c.hidden], "relu", last="relu")  # (B, hidden[-1])
        self.to_stats = nn.Linear(c.hidden[-1], 2 * c.latent_dim)  # μ and log σ² side by side
        self.decoder = mlp([c.latent_dim, *c.hidden[::-1], c.in_dim], "relu")  # logits

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.to_stats(self.encoder(x)).chunk(2, dim=1)  # (B, k), (B, k)
        return mu, logvar

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)  # (B, D) logits; sigmoid gives the image

    def forward(self, x: Tensor, generator: Optional[torch.Generator] = None):
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar, generator) if self.training else mu  # the mean at evaluation
        return self.decode(z), mu, logvar  # (B, D), (B, k), (B, k)

    @torch.no_grad()
    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """Decode n codes drawn from the prior N(0, I): images (n, D) in [0, 1]."""
        z = torch.randn(n, self.config.latent_dim, generator=generator)  # (n, k)
        return torch.sigmoid(self.decode(z.to(next(self.parameters()).device)))
