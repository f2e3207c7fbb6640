"""Generative adversarial networks: the DCGAN generator and discriminator, the two losses, the two steps.

A generator G maps noise z ~ N(0, I) (and, for a *conditional* GAN, a class y) to an image; a
discriminator D maps an image to a logit, D(x) = sigmoid(logit) the probability that x is real.
Goodfellow et al. (2014) set them a two-player minimax game,

    min_G max_D  V(D, G) = E_x[ log D(x) ] + E_z[ log(1 − D(G(z))) ],

and train it by alternating two steps:

* **discriminator step** (G frozen: the fakes are *detached*): binary cross-entropy with real → 1,
  fake → 0,

      L_D = −log D(x) − log(1 − D(G(z)))   = softplus(−l_real) + softplus(l_fake),   l = logit;

* **generator step** (D frozen: only G's parameters are updated). Minimising log(1 − D(G(z)))
  *saturates*: early on D rejects the fakes, D(G(z)) ≈ 0, and the gradient of log(1 − D) vanishes
  there. The *non-saturating* loss has the same fixed point and a strong gradient exactly there,

      L_G = −log D(G(z))   = softplus(−l_fake).

DCGAN (Radford et al., 2016) is the convolutional recipe that made this train: transposed
convolutions (stride 2) with batch norm and ReLU in G and a tanh output in [−1, 1]; strided
convolutions with batch norm and LeakyReLU(0.2) in D; no pooling, no fully connected hidden layers;
Adam with lr 2e-4 and β1 = 0.5.

Conditional GAN (Mirza & Osindero, 2014): G receives a learned class embedding concatenated to z;
D uses the *projection* form (Miyato & Koyama, 2018): with h = φ(x) its features,

    logit(x, y) = w·h + b + embed(y)·h,

so D judges "is this a real image *of class y*".
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from course_utils.train import (History, batch_sampler, capped, loop, make_optimizer, move_model, resolve_device,
                                to_device)


@dataclass
class GANConfig:
    image_size: int = 16  # H = W; a power of two, >= 8
    channels: int = 1  # image channels
    latent_dim: int = 32  # size of z
    width: int = 32  # channels of G's last hidden layer and D's first; doubled per 2x resolution step
    num_classes: int = 0  # 0: unconditional; K > 0: a conditional GAN over K classes
    embed_dim: int = 16  # size of G's class embedding (conditional only)

    def __post_init__(self):
        if self.image_size < 8 or self.image_size & (self.image_size - 1):
            raise ValueError(f"image_size={self.image_size} must be a power of two >= 8 (8, 16, 32, 64).")
        if min(self.channels, self.latent_dim, self.width) < 1 or self.num_classes < 0:
            raise ValueError("channels, latent_dim and width must be >= 1, num_classes >= 0.")

    @property
    def n_up(self) -> int:
        """Number of 2x steps between the 4x4 seed and the image: log2(image_size / 4)."""
        return (self.image_size // 4).bit_length() - 1

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0


def _check_labels(y: Optional[Tensor], config: GANConfig, batch: int) -> None:
    if config.conditional and y is None:
        raise ValueError(f"this GAN is conditional on {config.num_classes} classes: pass the labels y.")
    if not config.conditional and y is not None:
        raise ValueError("this GAN is unconditional (num_classes=0): do not pass labels.")
    if y is None:
        return
    # the values are checked on the CPU only: on a GPU, reading y.min() back would stall every step
    out_of_range = y.device.type == "cpu" and len(y) > 0 and (y.min() < 0 or y.max() >= config.num_classes)
    if y.shape != (batch,) or out_of_range:
        raise ValueError(f"labels must be a (B,) tensor of ints in [0, {config.num_classes}), got {tuple(y.shape)}.")


class Generator(nn.Module):
    """z (B, latent_dim) [and y (B,)] -> image (B, channels, H, W) in [-1, 1]."""

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = c = config
        self.embed = nn.Embedding(c.num_classes, c.embed_dim) if c.conditional else None
        top = c.width * 2 ** (c.n_up - 1)  # channels at 4x4
        z_in = c.latent_dim + (c.embed_dim if c.conditional else 0)
        self.project = nn.Sequential(nn.Linear(z_in, top * 16, bias=False), nn.BatchNorm1d(top * 16), nn.ReLU(True))
        layers = []
        for i in range(c.n_up - 1):  # 4 -> 8 -> ... -> image_size / 2, halving the channels
            cin = c.width * 2 ** (c.n_up - 1 - i)
            layers += [nn.ConvTranspose2d(cin, cin // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(cin // 2), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(c.width, c.channels, 4, 2, 1), nn.Tanh()]  # last 2x step, to the image
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        c = self.config
        if z.dim() != 2 or z.shape[1] != c.latent_dim:
            raise ValueError(f"z must have shape (B, {c.latent_dim}), got {tuple(z.shape)}.")
        _check_labels(y, c, len(z))
        if y is not None:
            z = torch.cat([z, self.embed(y)], dim=1)  # (B, latent_dim + embed_dim)
        h = self.project(z).view(len(z), -1, 4, 4)  # (B, top, 4, 4)
        return self.net(h)  # (B, channels, H, W)

    def sample(self, n: int, generator: Optional[torch.Generator] = None, y: Optional[Tensor] = None) -> Tensor:
        """n images from z ~ N(0, I) drawn with ``generator`` (eval mode, no gradients)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.config.latent_dim, generator=generator).to(device)  # (n, latent_dim)
        was_training = self.training
        self.eval()
        with torch.no_grad():
            x = self(z, None if y is None else y.to(device))
        self.train(was_training)
        return x


class Discriminator(nn.Module):
    """image (B, channels, H, W) [and y (B,)] -> logit (B,); D(x) = sigmoid(logit)."""

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = c = config
        layers, cin = [], c.channels
        for i in range(c.n_up):  # image_size -> ... -> 4, doubling the channels
            cout = c.width * 2**i
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=i == 0)]
            if i > 0:  # DCGAN: no batch norm on the first layer
                layers += [nn.BatchNorm2d(cout)]
            layers += [nn.LeakyReLU(0.2, True)]
            cin = cout
        self.features = nn.Sequential(*layers, nn.Flatten())  # φ(x): (B, cin * 16)
        self.out = nn.Linear(cin * 16, 1)
        self.embed = nn.Embedding(c.num_classes, cin * 16) if c.conditional else None

    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        c = self.config
        if x.dim() != 4 or tuple(x.shape[1:]) != (c.channels, c.image_size, c.image_size):
            raise ValueError(f"images must have shape (B, {c.channels}, {c.image_size}, {c.image_size}), "
                             f"got {tuple(x.shape)}.")
        _check_labels(y, c, len(x))
        h = self.features(x)  # (B, F)
        logit = self.out(h)[:, 0]  # (B,)
        if y is not None:
            # projection discriminator: logit(x, y) = w·h + b + embed(y)·h
            logit = logit + (self.embed(y) * h).sum(1)  # (B,)
        return logit


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build_gan(config: GANConfig) -> tuple[Generator, Discriminator]:
    """A generator and a discriminator with DCGAN's initialisation."""
    G, D = Generator(config), Discriminator(config)
    G.apply(init_weights)
    D.apply(init_weights)
    return G, D


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------
def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Binary cross-entropy with real -> 1 and fake -> 0, each averaged over its batch.

    L_D = −mean log D(x) − mean log(1 − D(G(z))) = mean softplus(−l_real) + mean softplus(l_fake)
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss(fake_logits: Tensor) -> Tensor:
    """The non-saturating generator loss: L_G = −mean log D(G(z)) = mean softplus(−l_fake)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def saturating_generator_loss(fake_logits: Tensor) -> Tensor:
    """The minimax generator loss, mean log(1 − D(G(z))) = −mean softplus(l_fake) (for comparison)."""
    return -F.softplus(fake_logits).mean()


def discriminator_loss_of(D: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
    """L_D from D itself (the chapter's exercise form): BCE(D(real), 1) + BCE(D(fake.detach()), 0)."""
    return discriminator_loss(D(real), D(fake.detach()))


def generator_loss_of(D: Callable[[Tensor], Tensor], fake: Tensor) -> Tensor:
    """L_G from D itself (the chapter's exercise form): −mean log D(fake), gradient through D."""
    return generator_loss(D(fake))


# ---------------------------------------------------------------------------------------------
# The two training steps
# ---------------------------------------------------------------------------------------------
def discriminator_step(G: Generator, D: Discriminator, opt_D: torch.optim.Optimizer, real: Tensor, z: Tensor,
                       y: Optional[Tensor] = None, loss_fn: Callable = discriminator_loss_of) -> float:
    """One update of D (G frozen): real -> 1, fake -> 0. Returns L_D.

    ``loss_fn(D, real, fake)`` computes L_D from D (a one-argument view of D when conditional).
    """
    with torch.no_grad():
        fake = G(z, y)  # (B, C, H, W): no graph into G -- it is not trained in this step
    loss = loss_fn(lambda x: D(x, y), real, fake)
    opt_D.zero_grad(set_to_none=True)
    loss.backward()
    opt_D.step()
    return loss.item()


def generator_step(G: Generator, D: Discriminator, opt_G: torch.optim.Optimizer, z: Tensor,
                   y: Optional[Tensor] = None, loss_fn: Callable = generator_loss_of) -> float:
    """One update of G (D frozen): the non-saturating loss −log D(G(z)). Returns L_G.

    The gradient flows *through* D into G, but only opt_G steps, so D's weights do not change
    (D's own gradients are cleared before its next step). ``loss_fn(D, fake)`` computes L_G.
    """
    D.requires_grad_(False)  # freeze D: no gradients are accumulated into its weights
    loss = loss_fn(lambda x: D(x, y), G(z, y))
    opt_G.zero_grad(set_to_none=True)
    loss.backward()
    opt_G.step()
    D.requires_grad_(True)
    return loss.item()


def adam_pair(G: nn.Module, D: nn.Module, lr: float = 2e-4, betas=(0.5, 0.999)):
    """DCGAN's optimisers: one Adam for G and one for D."""
    return make_optimizer(G.parameters(), "adam", lr, betas=betas), make_optimizer(D.parameters(), "adam", lr, betas=betas)


def train_gan(G: Generator, D: Discriminator, images: Tensor, steps: int, labels: Optional[Tensor] = None,
              batch_size: int = 64, lr: float = 2e-4, betas=(0.5, 0.999), seed: int = 0,
              callback: Optional[Callable[[int], None]] = None, device=None,
              d_loss: Callable = discriminator_loss_of, g_loss: Callable = generator_loss_of) -> History:
    """Alternate one discriminator step and one generator step, ``steps`` times.

    ``images`` (N, C, H, W) in [-1, 1]; ``labels`` (N,) for a conditional GAN (fakes then get the
    labels of the real batch). Each step draws a batch of real images and two batches of noise
    z ~ N(0, I) from one private generator seeded with ``seed`` (on the CPU, then moved to
    ``device``, default: the runtime's). ``callback(step)`` runs before step 0 and after every step
    (for snapshots). Returns a History: ``loss`` = L_G per step, ``h["g_loss"]`` the same and
    ``h["d_loss"]`` = L_D per step; G and D are left on ``device`` in eval mode. ``d_loss(D, real,
    fake)`` and ``g_loss(D, fake)`` are the two losses (default: the package's; a learner's own
    losses of the same form train the same way).
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got {tuple(images.shape)}.")
    device = resolve_device(device)
    requested, steps = steps, capped(steps)
    G, D = move_model(G, device), move_model(D, device)
    opt_G, opt_D = adam_pair(G, D, lr, betas)
    g = torch.Generator().manual_seed(seed)
    next_batch = batch_sampler(images if labels is None else (images, labels), batch_size, g)
    history = History(device=str(device))
    started = time.perf_counter()
    G.train()
    D.train()
    if callback is not None:
        callback(0)
    for step in loop(requested, desc="GAN training"):  # range(steps), capped, with a progress bar
        real, *y = to_device(next_batch(), device)  # (B, C, H, W) [and (B,) labels]
        y = y[0] if y else None
        z = torch.randn(len(real), G.config.latent_dim, generator=g).to(device)  # (B, latent_dim)
        d_value = discriminator_step(G, D, opt_D, real, z, y, d_loss)
        z = torch.randn(len(real), G.config.latent_dim, generator=g).to(device)
        g_value = generator_step(G, D, opt_G, z, y, g_loss)
        history.loss.append(g_value)
        history.logs.setdefault("d_loss", []).append(d_value)
        history.logs.setdefault("g_loss", []).append(g_value)
        if callback is not None:
            callback(step + 1)
    history.steps, history.seconds = steps, time.perf_counter() - started
    G.eval()
    D.eval()
    return history
