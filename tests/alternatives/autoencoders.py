"""Correct answers to Chapter 5's exercises, written differently from the book's reference.

Each string is the complete source of an exercise cell (imports first). The first answer of each
exercise draws the same random numbers as the reference, so a chapter run with it prints the same
numbers (up to rounding); the others take another valid route (numpy, float64 inside,
torch.distributions, negative padding, boolean logic).
"""

REPARAM_ADDCMUL = '''
import torch


def reparameterize(mu, logvar, generator=None):
    # sigma = exp(logvar / 2); z = mu + sigma * eps in one fused call
    sigma = logvar.mul(0.5).exp()  # (B, k)
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device="cpu").to(mu.device)
    return torch.addcmul(mu, sigma, eps)
'''

REPARAM_SQRT_VARIANCE = '''
import torch


def reparameterize(mu, logvar, generator=None):
    # the standard deviation as the square root of the variance exp(logvar)
    eps = torch.randn(tuple(mu.shape), generator=generator)
    sigma = torch.sqrt(torch.exp(logvar))
    return mu + sigma * eps.to(mu.device)
'''

VAE_SOFTPLUS = '''
import torch
import torch.nn.functional as F


def vae_loss(logits, x, mu, logvar):
    # BCE with logits written out stably: softplus(l) - x l = -[x log s(l) + (1 - x) log(1 - s(l))]
    recon = (F.softplus(logits) - x * logits).sum(dim=1)  # (B,)
    kl = 0.5 * (mu**2 + torch.exp(logvar) - 1 - logvar).sum(dim=1)  # (B,)
    return torch.mean(recon + kl)
'''

VAE_DISTRIBUTIONS_FLOAT64 = '''
import torch
from torch.distributions import Normal, kl_divergence


def vae_loss(logits, x, mu, logvar):
    # float64 inside; the KL from torch.distributions; sums over everything, then / B
    B = logits.shape[0]
    bce = torch.nn.BCEWithLogitsLoss(reduction="sum")(logits.double(), x.double())
    q = Normal(mu.double(), torch.exp(0.5 * logvar.double()))
    prior = Normal(torch.zeros_like(q.loc), torch.ones_like(q.scale))
    kl = kl_divergence(q, prior).sum()
    return ((bce + kl) / B).float()
'''

VAE_LOOP = '''
import torch
import torch.nn.functional as F


def vae_loss(logits, x, mu, logvar):
    # one image at a time, then the mean of the per-image losses
    losses = []
    for l_i, x_i, m_i, v_i in zip(logits, x, mu, logvar):
        recon = F.binary_cross_entropy_with_logits(l_i, x_i, reduction="sum")
        kl = -0.5 * torch.sum(1 + v_i - m_i * m_i - torch.exp(v_i))
        losses.append(recon + kl)
    return torch.stack(losses).mean()
'''

DICE_BOOLEAN = '''
import torch


def dice(pred, target, eps=1e-6):
    # boolean intersection, counts in float64
    p, t = pred.bool(), target.bool()
    inter = (p & t).flatten(-2).sum(-1).double()  # (...)
    size = p.flatten(-2).sum(-1).double() + t.flatten(-2).sum(-1).double()
    return (2 * inter + eps) / (size + eps)
'''

DICE_NUMPY = '''
import numpy as np
import torch


def dice(pred, target, eps=1e-6):
    # numpy inside, a torch tensor out
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    inter = (p * t).sum(axis=(-2, -1))
    d = (2 * inter + eps) / (p.sum(axis=(-2, -1)) + t.sum(axis=(-2, -1)) + eps)
    return torch.from_numpy(np.asarray(d))
'''

CROP_NARROW = '''
import torch


def crop_and_concat(up, skip):
    # narrow along H, then W, starting at half the (floored) size difference
    h, w = up.size(2), up.size(3)
    cropped = skip.narrow(2, (skip.size(2) - h) // 2, h).narrow(3, (skip.size(3) - w) // 2, w)
    return torch.cat((up, cropped), 1)
'''

CROP_NEGATIVE_PAD = '''
import torch
import torch.nn.functional as F


def crop_and_concat(up, skip):
    # a negative padding removes rows and columns: (left, right, top, bottom)
    (h, w), (H, W) = up.shape[-2:], skip.shape[-2:]
    top, left = (H - h) // 2, (W - w) // 2
    cropped = F.pad(skip, (-left, -(W - w - left), -top, -(H - h - top)))
    return torch.cat([up, cropped], dim=1)
'''

ALTERNATIVES = {
    "autoencoders.reparameterize": [REPARAM_ADDCMUL, REPARAM_SQRT_VARIANCE],
    "autoencoders.vae_loss": [VAE_SOFTPLUS, VAE_DISTRIBUTIONS_FLOAT64, VAE_LOOP],
    "autoencoders.dice": [DICE_BOOLEAN, DICE_NUMPY],
    "autoencoders.crop_and_concat": [CROP_NARROW, CROP_NEGATIVE_PAD],
}
