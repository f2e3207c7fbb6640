"""Denoising diffusion (DDPM): the noise schedule, the forward process, training, sampling.

**Forward process.** A fixed Markov chain adds Gaussian noise in T steps with variances β_1..β_T:

    q(x_t | x_{t-1}) = N(√(1-β_t) x_{t-1}, β_t I),    α_t = 1 - β_t,    ᾱ_t = Π_{s<=t} α_s

and, because Gaussians compose, any x_t follows from x_0 in one jump (the closed form):

    q(x_t | x_0) = N(√ᾱ_t x_0, (1-ᾱ_t) I)    ⇔    x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε,   ε ~ N(0, I)

**Training** (Ho et al., 2020): a network ε_θ(x_t, t[, c]) predicts the noise that was added,

    L = E_{x_0, t, ε} ‖ε - ε_θ(√ᾱ_t x_0 + √(1-ᾱ_t) ε, t)‖²

or, as *v-prediction* (Salimans & Ho, 2022), the velocity v = √ᾱ_t ε - √(1-ᾱ_t) x_0. Written for the
clean image, with SNR(t) = ᾱ_t / (1-ᾱ_t), the two losses weight the same error differently:

    ‖ε - ε̂‖² = SNR(t) · ‖x_0 - x̂_0‖²        ‖v - v̂‖² = (1 + SNR(t)) · ‖x_0 - x̂_0‖²

so ε-prediction hardly trains x̂_0 at high noise (SNR ≈ 0), where sampling lays out the image.

**Sampling** runs the chain backwards from x_T ~ N(0, I) with the posterior mean and variance

    x_{t-1} = 1/√α_t · (x_t - β_t/√(1-ᾱ_t) · ε_θ(x_t, t)) + σ_t z,   z ~ N(0, I),  z = 0 at t = 0
    σ_t² = β̃_t = (1-ᾱ_{t-1})/(1-ᾱ_t) · β_t        (diffusers' "fixed_small" variance)

**Classifier-free guidance** (Ho & Salimans, 2022) trains one network with and without the
condition (the condition is dropped, replaced by a "null" condition, with probability p) and mixes
the two predictions at sampling time with a guidance scale s (s = 0: unconditional, s = 1:
conditional, s > 1: guided):

    ε̂ = ε_θ(x_t, ∅) + s · (ε_θ(x_t, c) - ε_θ(x_t, ∅))

**Inpainting** (RePaint, Lugmayr et al., 2022): at every reverse step the known pixels are replaced
by the known image noised to the same level, x_{t-1} = m ⊙ q_sample(x_0^known, t-1) + (1-m) ⊙ x_{t-1}^model,
so the model only fills the unknown region and keeps it consistent with the rest.

The time index t runs 0..T-1 in code (diffusers' convention): t = 0 is the first noising step.
The tests compare every piece with diffusers' ``DDPMScheduler`` (``add_noise``, ``step``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_utils.train import History, capped, fit, loop

ModelFn = Callable[..., Tensor]  # model_fn(x_t (B, ...), t (B,) long, cond or None) -> ε prediction (B, ...)


@dataclass
class NoiseSchedule:
    """The linear β schedule of DDPM and everything derived from it (float32 tensors of length T).

    ``scaled=True`` multiplies β_start, β_end by 1000 / T (Nichol & Dhariwal's rescaling), so that a
    short chain (T = 100-200, cheap on a CPU) still ends in pure noise: ᾱ_T ≈ exp(-Σβ) ≈ 0.
    """

    num_steps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    scaled: bool = False

    def __post_init__(self):
        if self.num_steps < 2:
            raise ValueError(f"num_steps={self.num_steps}: a noise schedule needs at least 2 steps.")
        if not 0 < self.beta_start < self.beta_end < 1:
            raise ValueError(f"need 0 < beta_start < beta_end < 1, got {self.beta_start}, {self.beta_end}.")
        scale = 1000 / self.num_steps if self.scaled else 1.0
        if self.beta_end * scale >= 1:
            raise ValueError(f"beta_end * 1000 / num_steps = {self.beta_end * scale:.3f} >= 1: use more steps.")
        self.betas = torch.linspace(self.beta_start * scale, self.beta_end * scale, self.num_steps)  # (T,)
        # α_t = 1 - β_t,  ᾱ_t = Π_{s<=t} α_s
        self.alphas = 1.0 - self.betas  # (T,)
        self.alpha_bars = torch.cumprod(self.alphas, dim=0)  # (T,)
        # ᾱ_{t-1}, with ᾱ_{-1} = 1 (x_{-1} is the clean image)
        self.alpha_bars_prev = torch.cat([torch.ones(1), self.alpha_bars[:-1]])  # (T,)
        # β̃_t = (1 - ᾱ_{t-1}) / (1 - ᾱ_t) · β_t: the variance of q(x_{t-1} | x_t, x_0)
        self.posterior_variance = (1 - self.alpha_bars_prev) / (1 - self.alpha_bars) * self.betas  # (T,)

    def diffusers_config(self, clip_sample: bool = False) -> dict:
        """Keyword arguments for diffusers' DDPMScheduler / DDIMScheduler giving the same β's.

        ``clip_sample=True`` clips the predicted x̂_0 to [-1, 1] in each step: DDIM needs it for
        images in [-1, 1], since x̂_0 = (x_t - √(1-ᾱ_t) ε̂)/√ᾱ_t amplifies errors of ε̂ by 1/√ᾱ_t
        (≈ 200 at the first step of our short chain); the from-scratch DDPM sampler does not clip.
        """
        scale = 1000 / self.num_steps if self.scaled else 1.0
        return dict(num_train_timesteps=self.num_steps, beta_start=self.beta_start * scale,
                    beta_end=self.beta_end * scale, beta_schedule="linear", clip_sample=clip_sample)


def _gather(values: Tensor, t: Tensor, ndim: int) -> Tensor:
    """values[t] reshaped to broadcast over an image batch: (B,) -> (B, 1, ..., 1)."""
    t = torch.as_tensor(t, dtype=torch.long, device=values.device)
    return values[t].reshape(-1, *([1] * (ndim - 1)))


def _check_t(t: Tensor, schedule: NoiseSchedule):
    """Time steps in 0..T-1 -- checked for CPU tensors only (reading a GPU tensor would synchronise)."""
    t = torch.as_tensor(t)
    if t.device.type == "cpu" and t.numel() and (t.min() < 0 or t.max() >= schedule.num_steps):
        raise ValueError(f"time steps must lie in 0..{schedule.num_steps - 1}, got {t.min().item()}..{t.max().item()}.")


def q_sample(x0: Tensor, t: Tensor, noise: Tensor, schedule: NoiseSchedule) -> Tensor:
    """Jump from x_0 to x_t in one step: x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε.

    ``x0`` and ``noise``: (B, ...); ``t``: (B,) long in 0..T-1 (or a scalar for the whole batch).
    """
    if x0.shape != noise.shape:
        raise ValueError(f"x0 {tuple(x0.shape)} and noise {tuple(noise.shape)} must have the same shape.")
    _check_t(t, schedule)
    abar = _gather(schedule.alpha_bars.to(x0.device), t, x0.dim())  # (B, 1, ..., 1)
    # x_t = √ᾱ_t x_0 + √(1 - ᾱ_t) ε
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise


def v_target(x0: Tensor, t: Tensor, noise: Tensor, schedule: NoiseSchedule) -> Tensor:
    """The velocity v = √ᾱ_t ε - √(1-ᾱ_t) x_0 that a v-prediction network learns (diffusers'
    ``get_velocity``); with x_t it gives back x_0 = √ᾱ_t x_t - √(1-ᾱ_t) v and ε = √(1-ᾱ_t) x_t + √ᾱ_t v."""
    if x0.shape != noise.shape:
        raise ValueError(f"x0 {tuple(x0.shape)} and noise {tuple(noise.shape)} must have the same shape.")
    _check_t(t, schedule)
    abar = _gather(schedule.alpha_bars.to(x0.device), t, x0.dim())  # (B, 1, ..., 1)
    # v = √ᾱ_t ε - √(1 - ᾱ_t) x_0
    return abar.sqrt() * noise - (1 - abar).sqrt() * x0


def predicted_x0(x_t: Tensor, t: Tensor, eps: Tensor, schedule: NoiseSchedule) -> Tensor:
    """The clean image implied by a noise prediction: x̂_0 = (x_t - √(1-ᾱ_t) ε̂) / √ᾱ_t."""
    abar = _gather(schedule.alpha_bars.to(x_t.device), t, x_t.dim())
    # x̂_0 = (x_t - √(1-ᾱ_t) ε̂) / √ᾱ_t
    return (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()


def ddpm_step(eps: Tensor, t: int, x_t: Tensor, schedule: NoiseSchedule,
              generator: Optional[torch.Generator] = None, variance: str = "small",
              noise: Optional[Tensor] = None) -> Tensor:
    """One reverse step x_t -> x_{t-1} (Algorithm 2 of Ho et al.).

    x_{t-1} = 1/√α_t · (x_t - β_t/√(1-ᾱ_t) ε̂) + σ_t z, and no noise at t = 0. The noise z is
    ``torch.randn(x_t.shape, generator=generator)``: the draw diffusers' ``DDPMScheduler.step``
    makes, so the same generator gives the same x_{t-1}. ``variance``: "small" σ_t² = β̃_t
    (diffusers' "fixed_small", the default) or "large" σ_t² = β_t ("fixed_large"); Ho et al.
    found both to work equally well. ``noise``: z given instead of drawn (same shape as x_t).
    """
    t = int(t)
    _check_t(torch.tensor(t), schedule)
    if variance not in ("small", "large"):
        raise ValueError(f"variance={variance!r}: use 'small' (β̃_t) or 'large' (β_t).")
    beta, alpha, abar = schedule.betas[t].item(), schedule.alphas[t].item(), schedule.alpha_bars[t].item()
    # μ = 1/√α_t · (x_t - β_t / √(1-ᾱ_t) · ε̂)
    mean = (x_t - beta / (1 - abar) ** 0.5 * eps) / alpha ** 0.5
    if t == 0:
        return mean  # the last step returns the mean: no noise is added at t = 0
    if noise is None:
        z = torch.randn(x_t.shape, generator=generator, dtype=x_t.dtype).to(x_t.device)
    elif noise.shape != x_t.shape:
        raise ValueError(f"noise {tuple(noise.shape)} must have the shape of x_t {tuple(x_t.shape)}.")
    else:
        z = noise
    var = schedule.posterior_variance[t].clamp(min=1e-20) if variance == "small" else schedule.betas[t]
    # x_{t-1} = μ + σ_t z,  σ_t = √β̃_t (or √β_t)
    return mean + var.sqrt().item() * z


def classifier_free_guidance(eps_uncond: Tensor, eps_cond: Tensor, scale: float) -> Tensor:
    """ε̂ = ε_θ(x_t, ∅) + s (ε_θ(x_t, c) - ε_θ(x_t, ∅)); s = 0 unconditional, s = 1 conditional."""
    if eps_uncond.shape != eps_cond.shape:
        raise ValueError(f"the two predictions differ in shape: {tuple(eps_uncond.shape)} vs {tuple(eps_cond.shape)}.")
    # ε̂ = ε_∅ + s (ε_c - ε_∅)
    return eps_uncond + scale * (eps_cond - eps_uncond)


def guided_eps(model_fn: ModelFn, x_t: Tensor, t: Tensor, cond=None, null_cond=None, scale: float = 1.0,
               guidance: Optional[Callable[[Tensor, Tensor, float], Tensor]] = None) -> Tensor:
    """The noise prediction used for sampling: plain, or classifier-free guided.

    With ``null_cond`` None (or scale 1) it is ``model_fn(x_t, t, cond)``; otherwise the conditional
    and unconditional predictions come from one batched call and are mixed by ``guidance(ε_∅, ε_c, s)``,
    by default :func:`classifier_free_guidance` (Chapter 7c passes the learner's own).
    """
    guidance = classifier_free_guidance if guidance is None else guidance
    if null_cond is None or scale == 1.0:
        return model_fn(x_t, t, cond)
    if scale == 0.0:
        return model_fn(x_t, t, null_cond)
    both = model_fn(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([null_cond, cond]))  # (2B, ...)
    eps_uncond, eps_cond = both.chunk(2)
    return guidance(eps_uncond, eps_cond, scale)


def _reverse_steps(schedule: NoiseSchedule, desc: str):
    """T-1, T-2, ..., 0 with a progress bar -- only the first few under ``$COURSE_MAX_STEPS`` (a
    rehearsal, not a sample; its first step is measured there, see ``train.loop``)."""
    for i in loop(schedule.num_steps, desc=desc):
        yield schedule.num_steps - 1 - i


@torch.no_grad()
def ddpm_sample(model_fn: ModelFn, shape, schedule: NoiseSchedule, generator: Optional[torch.Generator] = None,
                cond=None, null_cond=None, guidance_scale: float = 1.0, device="cpu", keep_every: int = 0):
    """Ancestral DDPM sampling from x_T ~ N(0, I) with :func:`ddpm_step`, T network calls.

    Returns x_0 (shape), and, with ``keep_every`` > 0, also the list of (t, x_t) every
    ``keep_every`` steps (the denoising trajectory). ``cond``/``null_cond``/``guidance_scale``: see
    :func:`guided_eps`.
    """
    x = torch.randn(shape, generator=generator).to(device)  # x_T
    trajectory = [(schedule.num_steps, x.cpu())]
    for t in _reverse_steps(schedule, "DDPM sampling"):
        tt = torch.full((shape[0],), t, dtype=torch.long, device=device)
        eps = guided_eps(model_fn, x, tt, cond, null_cond, guidance_scale)
        x = ddpm_step(eps, t, x, schedule, generator)  # x_{t-1}
        if keep_every and (t % keep_every == 0):
            trajectory.append((t, x.cpu()))
    return (x, trajectory) if keep_every else x


@torch.no_grad()
def scheduler_sample(model_fn: ModelFn, scheduler, shape, num_inference_steps: int,
                     generator: Optional[torch.Generator] = None, cond=None, null_cond=None,
                     guidance_scale: float = 1.0, device="cpu", guidance=None, **step_kwargs) -> Tensor:
    """Sample with any diffusers scheduler (DDIM with few steps, DDPM, ...): the library's loop.

    ``cond``/``null_cond``/``guidance_scale``/``guidance``: see :func:`guided_eps`."""
    scheduler.set_timesteps(capped(num_inference_steps))
    x = torch.randn(shape, generator=generator).to(device) * scheduler.init_noise_sigma
    for i in loop(num_inference_steps, desc=f"{type(scheduler).__name__} sampling"):  # capped like the timesteps
        t = scheduler.timesteps[i]
        tt = torch.full((shape[0],), int(t), dtype=torch.long, device=device)
        eps = guided_eps(model_fn, x, tt, cond, null_cond, guidance_scale, guidance)
        x = scheduler.step(eps, int(t), x, generator=generator, **step_kwargs).prev_sample
    return x


@torch.no_grad()
def repaint(model_fn: ModelFn, known: Tensor, mask: Tensor, schedule: NoiseSchedule,
            generator: Optional[torch.Generator] = None, cond=None, resample: int = 1) -> Tensor:
    """Fill the unknown pixels (mask = 0) of ``known`` (B, C, H, W) by diffusion, RePaint-style.

    At each reverse step: x_{t-1}^unknown = ddpm_step(...), x_{t-1}^known = q_sample(known, t-1),
    x_{t-1} = m ⊙ x_{t-1}^known + (1 - m) ⊙ x_{t-1}^unknown. With ``resample`` = r > 1 each step is
    repeated r times, jumping back with x_t = √α_t x_{t-1} + √β_t z in between (RePaint's
    resampling, which harmonises the two regions). ``mask``: 1 where the pixel is known, broadcastable.
    """
    if resample < 1:
        raise ValueError(f"resample={resample} must be >= 1.")
    mask = mask.to(known.dtype).expand_as(known)  # (B, C, H, W), 1 = known
    x = torch.randn(known.shape, generator=generator).to(known.device)  # x_T
    for t in _reverse_steps(schedule, "RePaint"):
        tt = torch.full((known.shape[0],), t, dtype=torch.long, device=known.device)
        for r in range(resample):
            unknown = ddpm_step(model_fn(x, tt, cond), t, x, schedule, generator)  # x_{t-1} from the model
            if t > 0:
                noise = torch.randn(known.shape, generator=generator).to(known.device)
                known_t = q_sample(known, tt - 1, noise, schedule)  # the known pixels at level t-1
            else:
                known_t = known
            x_prev = mask * known_t + (1 - mask) * unknown
            if r < resample - 1 and t > 0:
                beta = schedule.betas[t].item()
                z = torch.randn(known.shape, generator=generator).to(known.device)
                x = (1 - beta) ** 0.5 * x_prev + beta ** 0.5 * z  # back to level t
            else:
                x = x_prev
    return x


def train_denoiser(model: nn.Module, data: Tensor, schedule: NoiseSchedule, steps: int, *,
                   model_fn: Optional[ModelFn] = None, conditions: Optional[Tensor] = None,
                   null_condition: Optional[Tensor] = None, drop_prob: float = 0.0, batch_size: int = 64,
                   lr: float = 2e-3, seed: int = 0, device=None,
                   noising: Optional[Callable[[Tensor, Tensor, Tensor], Tensor]] = None,
                   prediction: str = "epsilon") -> History:
    """Train ε_θ with L = ‖ε - ε_θ(√ᾱ_t x_0 + √(1-ᾱ_t) ε, t, c)‖², t ~ U{0..T-1}; return the History.

    ``prediction``: what the network outputs, in diffusers' words -- "epsilon" (the noise, as above) or
    "v_prediction" (L = ‖v - v_θ(x_t, t, c)‖², v from :func:`v_target`). A sampler must be told the
    same: ``DDIMScheduler(..., prediction_type=prediction)``.

    ``model`` is the network that ``train.fit`` trains (AdamW, one-cycle with 10 % warm-up) on
    ``device``; ``model_fn(x_t, t, c)`` is how to call it for a noise prediction (default
    :func:`unet_fn` of a diffusers ``UNet2DModel``; ``latent.text_unet_fn`` for a text U-Net).
    ``conditions``: None, or a tensor aligned with ``data`` (class labels (N,), context vectors
    (N, L, D), ...): row i conditions image i. With ``drop_prob`` > 0 each condition is replaced by
    ``null_condition`` (broadcast to one row) with that probability -- the training half of
    classifier-free guidance.

    Each step draws, on the CPU and from fit's private generator, in this order: the rows, t, ε and
    the drop mask; the batch then goes to the device. ``noising(x_0, t, ε)`` makes x_t (default
    :func:`q_sample` with ``schedule``; a learner's own forward jump can take its place).
    """
    if conditions is not None and len(conditions) != len(data):
        raise ValueError(f"{len(data)} images but {len(conditions)} conditions: they must align.")
    if drop_prob > 0 and null_condition is None:
        raise ValueError("drop_prob > 0 needs a null_condition to put in place of the dropped conditions.")
    if prediction not in ("epsilon", "v_prediction"):
        raise ValueError(f"prediction={prediction!r}: use 'epsilon' or 'v_prediction'.")
    model_fn = unet_fn(model) if model_fn is None else model_fn
    if noising is None:
        noising = lambda x0, t, noise: q_sample(x0, t, noise, schedule)  # noqa: E731

    def make_batch(g: torch.Generator):
        idx = torch.randint(len(data), (batch_size,), generator=g)  # (B,) rows
        x0 = data[idx]  # (B, ...)
        t = torch.randint(schedule.num_steps, (batch_size,), generator=g)  # (B,)
        noise = torch.randn(x0.shape, generator=g)  # ε, (B, ...)
        c = None
        if conditions is not None:
            c = conditions[idx]  # (B, ...)
            if drop_prob > 0:
                drop = torch.rand(batch_size, generator=g) < drop_prob  # (B,) True: use the null condition
                null = null_condition.expand_as(c)
                c = torch.where(drop.reshape(-1, *([1] * (c.dim() - 1))), null, c)
        return x0, t, noise, c

    def loss_fn(_, x0, t, noise, c):
        x_t = noising(x0, t, noise)  # √ᾱ_t x_0 + √(1-ᾱ_t) ε
        if prediction == "v_prediction":
            return F.mse_loss(model_fn(x_t, t, c), v_target(x0, t, noise, schedule))  # ‖v - v_θ‖²
        return F.mse_loss(model_fn(x_t, t, c), noise)  # ‖ε - ε_θ(x_t, t, c)‖²

    return fit(model, loss_fn, make_batch, steps=steps, lr=lr, optimizer="adamw", weight_decay=0.0, warmup=0.1,
               device=device, seed=seed, desc="denoiser")


def build_pixel_unet(image_size: int = 16, channels: int = 1, widths=(16, 32, 64), num_classes: Optional[int] = None,
                     attention_at: Optional[int] = None):
    """A small diffusers ``UNet2DModel`` for CPU work: one ResNet layer per block, GroupNorm of 8.

    ``num_classes``: adds a class embedding with ``num_classes + 1`` rows -- the last one is the
    "null" class of classifier-free guidance. ``attention_at``: put self-attention in the blocks
    whose resolution is <= that size (None: no attention; attention at 16 x 16 and more is slow on a CPU).
    """
    from diffusers import UNet2DModel

    if image_size % 2 ** (len(widths) - 1):
        raise ValueError(f"image_size={image_size} is not divisible by 2^{len(widths) - 1} (one halving per block).")
    sizes = [image_size // 2 ** i for i in range(len(widths))]
    attn = [attention_at is not None and s <= attention_at for s in sizes]
    down = tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attn)
    up = tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn))
    return UNet2DModel(sample_size=image_size, in_channels=channels, out_channels=channels, layers_per_block=1,
                       block_out_channels=tuple(widths), down_block_types=down, up_block_types=up,
                       norm_num_groups=8, attention_head_dim=8,
                       num_class_embeds=None if num_classes is None else num_classes + 1)


def unet_fn(unet) -> ModelFn:
    """model_fn(x_t, t, c) for a diffusers UNet2DModel (c: class labels or None)."""
    return lambda x, t, c=None: unet(x, t, class_labels=c).sample
