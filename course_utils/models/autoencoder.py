"""Autoencoders: linear, deep, denoising and sparse -- one MLP, several ways to train it.

An autoencoder is an encoder e_θ and a decoder d_φ trained to give back their input through a
narrow code z (the *bottleneck*):

    z = e_θ(x),   x̂ = d_φ(z),   L(θ, φ) = ‖x − d_φ(e_θ(x))‖₂²

* **linear** (``hidden=()``, ``activation=None``): e and d are affine maps. Trained to the
  minimum of L it spans the same subspace as PCA's first k components (Baldi & Hornik, 1989),
  though not with orthonormal axes.
* **deep** (hidden layers and a non-linearity): a curved k-dimensional surface through the data,
  which can compress better than any k-dimensional subspace (Hinton & Salakhutdinov, 2006).
* **denoising**: the same model, fed a corrupted x̃ = x + ε and asked for the clean x,
  L = ‖x − d(e(x̃))‖² (Vincent et al., 2008) -- ``add_noise`` corrupts.
* **sparse**: an over-complete code (k larger than needed) with an activity penalty, so that
  only a few units fire for any input, L = ‖x − x̂‖² + λ Σ_j |z_j| (``l1_activity``) or the KL
  form with a target rate ρ (``kl_sparsity``) (Ng, 2011).

The variational autoencoder lives in ``vae.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn as nn
from torch import Tensor


@dataclass
class AutoencoderConfig:
    in_dim: int = 64  # D, a flattened image (8x8 digits: 64)
    latent_dim: int = 2  # k, the bottleneck
    hidden: tuple = (128, 64)  # encoder widths; the decoder mirrors them. () = linear map
    activation: Optional[str] = "relu"  # "relu", "tanh" or None (a linear autoencoder)
    code_activation: Optional[str] = None  # applied to z: None, "relu" (sparse codes), "sigmoid"
    out_activation: Optional[str] = None  # applied to x̂: None or "sigmoid"


_ACT = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def _act(name: Optional[str]) -> nn.Module:
    return nn.Identity() if name is None else _ACT[name]()


def mlp(dims: list, activation: Optional[str], last: Optional[str] = None) -> nn.Sequential:
    """Linear layers dims[0] -> dims[1] -> ... with ``activation`` between them and ``last`` after."""
    layers = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        layers.append(_act(activation if i < len(dims) - 2 else last))
    return nn.Sequential(*[m for m in layers if not isinstance(m, nn.Identity)])


class Autoencoder(nn.Module):
    """x (B, D) -> z (B, k) -> x̂ (B, D); ``forward`` returns (x̂, z)."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        self.config = c = config
        dims = [c.in_dim, *c.hidden, c.latent_dim]
        self.encoder = mlp(dims, c.activation, last=c.code_activation)
        self.decoder = mlp(dims[::-1], c.activation, last=c.out_activation)

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)  # (B, k)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)  # (B, D)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = self.encode(x)  # (B, k)
        return self.decode(z), z  # (B, D), (B, k)


def reconstruction_loss(x_hat: Tensor, x: Tensor) -> Tensor:
    """L = ‖x − x̂‖₂², summed over the features and averaged over the batch."""
    return (x_hat - x).pow(2).flatten(1).sum(1).mean()


def add_noise(x: Tensor, std: float, generator: Optional[torch.Generator] = None, clip: bool = True) -> Tensor:
    """x̃ = x + ε, ε ~ N(0, std² I), clipped to [0, 1] (the images' range) when ``clip``."""
    noisy = x + std * torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return noisy.clamp(0.0, 1.0) if clip else noisy


def l1_activity(z: Tensor) -> Tensor:
    """Ω(z) = Σ_j |z_j|, summed over the units and averaged over the batch (times λ in the loss)."""
    return z.abs().sum(1).mean()


def kl_sparsity(z: Tensor, rho: float = 0.05, eps: float = 1e-6) -> Tensor:
    """Ω(z) = Σ_j KL(ρ ‖ ρ̂_j) = Σ_j ρ log(ρ/ρ̂_j) + (1−ρ) log((1−ρ)/(1−ρ̂_j)),

    with ρ̂_j the mean activation of unit j over the batch; z must lie in (0, 1) (sigmoid codes).
    """
    rho_hat = z.mean(0).clamp(eps, 1 - eps)  # (k,)
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


def active_fraction(z: Tensor, threshold: float = 1e-3) -> float:
    """The fraction of code units with |z_j| > threshold, over all inputs and units."""
    return (z.abs() > threshold).float().mean().item()
