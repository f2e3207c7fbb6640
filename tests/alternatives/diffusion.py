"""Correct answers to Chapters 7 and 7b's exercises (q_sample, ddpm_step, scale_latents), written
differently from the book's reference answers.

Each string is the complete source of an exercise cell's function; the tests check that every one
passes its check, and the first of each is pasted into the student notebook to prove the chapter
runs with it. (``diffusion.classifier_free_guidance``'s alternatives live with Chapter 7c's.)
"""

Q_SAMPLE_LOOP = '''
import torch


def my_q_sample(x0, t, noise, betas):
    """One image at a time, with Python floats for the coefficients (ᾱ_t in float64)."""
    alpha_bars = torch.cumprod(1.0 - betas.double(), dim=0)
    out = torch.empty_like(x0)
    for b in range(x0.shape[0]):
        a = alpha_bars[int(t[b])].item()
        out[b] = a ** 0.5 * x0[b] + (1 - a) ** 0.5 * noise[b]
    return out
'''

Q_SAMPLE_LOG_SPACE = '''
import torch


def my_q_sample(x0, t, noise, betas):
    """ᾱ_t as exp of a cumulative sum of logs."""
    log_alpha_bars = torch.cumsum(torch.log1p(-betas), dim=0)  # log ᾱ_t, (T,)
    a = torch.exp(log_alpha_bars[t]).view(-1, 1, 1, 1)  # (B, 1, 1, 1)
    return torch.sqrt(a) * x0 + torch.sqrt(1 - a) * noise
'''

DDPM_STEP_FLOATS = '''
import math


def my_ddpm_step(eps, t, x_t, betas, z):
    """The coefficients as Python floats, ᾱ_t by a loop."""
    beta = float(betas[t])
    alpha_bar = 1.0
    for s in range(t + 1):
        alpha_bar *= 1.0 - float(betas[s])
    mean = (x_t - beta / math.sqrt(1.0 - alpha_bar) * eps) / math.sqrt(1.0 - beta)
    return mean if t == 0 else mean + math.sqrt(beta) * z
'''

DDPM_STEP_POSTERIOR = '''
import torch


def my_ddpm_step(eps, t, x_t, betas, z):
    """The same mean written as the posterior mean of q(x_{t-1} | x_t, x̂_0), in float64."""
    b = betas.double()
    alphas = 1 - b
    abar = torch.cumprod(alphas, 0)
    x_t64, eps64 = x_t.double(), eps.double()
    x0_hat = (x_t64 - (1 - abar[t]).sqrt() * eps64) / abar[t].sqrt()
    abar_prev = abar[t - 1] if t > 0 else torch.ones((), dtype=abar.dtype)
    coef_x0 = abar_prev.sqrt() * b[t] / (1 - abar[t])
    coef_xt = alphas[t].sqrt() * (1 - abar_prev) / (1 - abar[t])
    mean = coef_x0 * x0_hat + coef_xt * x_t64
    if t > 0:
        mean = mean + b[t].sqrt() * z.double()
    return mean.to(x_t.dtype)
'''

SCALE_POPULATION_NUMPY = '''
import numpy as np


def scale_latents(latents):
    """The population standard deviation (divide by N), computed in NumPy."""
    sigma = float(np.std(latents.detach().cpu().numpy().astype(np.float64)))
    factor = 1.0 / sigma
    return latents * factor, factor
'''

SCALE_BY_HAND = '''
import torch


def scale_latents(latents):
    """The unbiased variance written out; the factor stays a 0-dim tensor."""
    n = latents.numel()
    mean = latents.sum() / n
    var = ((latents - mean) ** 2).sum() / (n - 1)
    factor = 1.0 / torch.sqrt(var)
    return latents * factor, factor
'''

ALTERNATIVES = {
    "diffusion.q_sample": [Q_SAMPLE_LOOP, Q_SAMPLE_LOG_SPACE],
    "diffusion.ddpm_step": [DDPM_STEP_FLOATS, DDPM_STEP_POSTERIOR],
    "diffusion.scale_latents": [SCALE_POPULATION_NUMPY, SCALE_BY_HAND],
}
