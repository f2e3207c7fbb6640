"""Checks of Chapter 7 (diffusion): the forward jump, one reverse step, classifier-free guidance.

* ``diffusion.q_sample`` -- x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε with ᾱ_t = Π_{s<=t} (1 - β_s), per-sample t;
  compared with ``course_utils.models.diffusion.q_sample``; known mistakes (no square roots, α_t in
  place of ᾱ_t, ᾱ_{t+1}/ᾱ_{t-1}, one t for the whole batch) get their own hint.
* ``diffusion.ddpm_step`` -- x_{t-1} = 1/√α_t (x_t - β_t/√(1-ᾱ_t) ε̂) + σ_t z with σ_t² = β_t, and no
  noise at t = 0; compared with the package's ``ddpm_step(..., variance="large")`` given the same z.
* ``diffusion.classifier_free_guidance`` -- ε̂ = ε_∅ + s (ε_c - ε_∅); s = 0, 1 and > 1.
* ``diffusion.scale_latents`` -- z' = z / σ(z), one global σ over every element (Stable Diffusion's
  ``scaling_factor`` = 1/σ), so the latents match the unit-variance noise the chain ends in.
"""
from __future__ import annotations

import torch

from .core import Mistake, call, exercise, expect, expect_close, expect_tensor, expect_tensor_like, expect_tuple

# ---------------------------------------------------------------------------------------------
# diffusion.q_sample
# ---------------------------------------------------------------------------------------------
NO_SQRT_HINT = ("The square roots are missing: x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε. ᾱ_t and 1-ᾱ_t are *variances*; "
                "the coefficients are their square roots (so that Var(x_t) stays 1).")
ALPHA_HINT = ("You used α_t = 1 - β_t, one step's factor; the jump from x_0 needs the product "
              "ᾱ_t = α_0 α_1 ... α_t: alpha_bars = torch.cumprod(1 - betas, dim=0).")
OFF_BY_ONE_HINT = ("Off by one: with t counted from 0, ᾱ_t = torch.cumprod(1 - betas, 0)[t] includes β_0..β_t "
                   "(t = 0 already adds a little noise).")
ONE_T_HINT = "Each image has its own t: index alpha_bars with the whole (B,) tensor and reshape to (B, 1, 1, 1)."
SWAP_HINT = "The two coefficients are swapped: √ᾱ_t multiplies x_0 (ᾱ_t -> 1 at t = 0), √(1-ᾱ_t) the noise."


def _qs(x0, t, noise, betas, how="ok"):
    alphas = 1 - betas.double()
    abar = torch.cumprod(alphas, 0)
    if how == "alpha":
        abar = alphas
    elif how == "next":
        abar = torch.cat([abar[1:], abar[-1:] * alphas[-1:]])
    elif how == "prev":
        abar = torch.cat([torch.ones(1, dtype=abar.dtype), abar[:-1]])
    a = abar[t] if how != "one_t" else abar[t[0]].expand(len(t))
    a = a.reshape(-1, *([1] * (x0.dim() - 1)))
    x0, noise = x0.double(), noise.double()
    if how == "no_sqrt":
        out = a * x0 + (1 - a) * noise
    elif how == "swap":
        out = (1 - a).sqrt() * x0 + a.sqrt() * noise
    else:
        out = a.sqrt() * x0 + (1 - a).sqrt() * noise
    return out.float()


@exercise("diffusion.q_sample",
          hint="alpha_bars = torch.cumprod(1 - betas, 0); a = alpha_bars[t].reshape(-1, 1, 1, 1); "
               "return a.sqrt() * x0 + (1 - a).sqrt() * noise.")
def q_sample(answer, case):
    """x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε, ᾱ_t = Π_{s<=t}(1-β_s), one t per image."""
    g = torch.Generator().manual_seed(0)
    linear = torch.linspace(1e-4, 0.02, 1000)
    short = torch.linspace(1e-3, 0.2, 100)
    cases = (("B=4 images (1, 8, 8), T = 1000, mixed t", (4, 1, 8, 8), linear, torch.tensor([0, 10, 500, 999])),
             ("B=3 RGB images (3, 4, 4), T = 100", (3, 3, 4, 4), short, torch.tensor([99, 50, 3])),
             ("B=2 with the same t = 40", (2, 1, 5, 5), short, torch.tensor([40, 40])),
             ("t = 0 for every image: one step of noise, ᾱ_0 = 1 - β_0", (3, 1, 4, 4), short, torch.zeros(3, dtype=torch.long)),
             ("t = T-1 for every image: the last step", (2, 2, 3, 3), short, torch.full((2,), 99)),
             ("a single image (B = 1), t = 7", (1, 1, 6, 6), short, torch.tensor([7])))
    for name, shape, betas, t in cases:
        with case(name):
            x0, noise = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
            args = (x0.clone(), t.clone(), noise.clone(), betas.clone())
            got = call(answer, *args)
            _expect_unmodified(("x0", "t", "noise", "betas"), (x0, t, noise, betas), args)
            mistakes = [Mistake(_qs(x0, t, noise, betas, m), h) for m, h in
                        (("no_sqrt", NO_SQRT_HINT), ("alpha", ALPHA_HINT), ("next", OFF_BY_ONE_HINT),
                         ("prev", OFF_BY_ONE_HINT), ("swap", SWAP_HINT), ("one_t", ONE_T_HINT))]
            expect_tensor(got, _qs(x0, t, noise, betas), name="x_t", atol=1e-5, rtol=1e-4, mistakes=mistakes)
    with case("t = T-1 of a long schedule: x_t is (almost) pure noise, Var ≈ 1"):
        x0, noise = torch.full((2000, 1, 2, 2), 3.0), torch.randn(2000, 1, 2, 2, generator=g)
        got = expect_tensor_like(call(answer, x0, torch.full((2000,), 999), noise, linear),
                                 shape=(2000, 1, 2, 2), name="x_t")
        expect(abs(got.mean().item()) < 0.1 and abs(got.std().item() - 1) < 0.1,
               f"x_999 should be ≈ N(0, 1): mean {got.mean().item():.3f}, std {got.std().item():.3f}.",
               hint=ALPHA_HINT)


def _expect_unmodified(names, originals, passed) -> None:
    """The learner's function must leave its inputs as they were."""
    for name, before, after in zip(names, originals, passed):
        if isinstance(before, torch.Tensor):
            expect(torch.equal(before, after), f"your function modified its input `{name}`.",
                   hint="Compute into new tensors: no in-place operations (x += ..., x.mul_(...), x[...] = ...) "
                        "on the inputs.")


# ---------------------------------------------------------------------------------------------
# diffusion.ddpm_step
# ---------------------------------------------------------------------------------------------
STD_HINT = "σ_t² = β_t is the variance: the noise term is √β_t · z, not β_t · z."
TILDE_HINT = ("This exercise uses σ_t² = β_t (Ho et al.'s first choice); you used the posterior variance "
              "β̃_t = (1-ᾱ_{t-1})/(1-ᾱ_t) β_t (the package's default, equally valid, but not what is asked).")
NOISE_AT_ZERO_HINT = "At t = 0 the step returns the mean: no noise is added in the last step (z is ignored)."
MEAN_HINT = ("The mean is μ = 1/√α_t (x_t - β_t/√(1-ᾱ_t) ε̂): divide by √α_t (not α_t) and scale ε̂ by "
             "β_t/√(1-ᾱ_t) (not √β_t or 1-ᾱ_t).")
ABAR_HINT = "In the mean, √(1-ᾱ_t) uses the cumulative product ᾱ_t, and 1/√α_t the single step α_t = 1-β_t."


def _step(eps, t, x_t, betas, z, how="ok"):
    eps, x_t, z, betas = eps.double(), x_t.double(), z.double(), betas.double()
    alphas = 1 - betas
    abar = torch.cumprod(alphas, 0)
    beta, alpha, ab = betas[t], alphas[t], abar[t]
    if how == "abar":
        mean = (x_t - beta / (1 - alpha).sqrt() * eps) / ab.sqrt()
    elif how == "mean":
        mean = (x_t - beta / (1 - ab).sqrt() * eps) / alpha
    else:
        mean = (x_t - beta / (1 - ab).sqrt() * eps) / alpha.sqrt()
    if how == "tilde":
        prev = abar[t - 1] if t > 0 else torch.tensor(1.0, dtype=abar.dtype)
        sigma = ((1 - prev) / (1 - ab) * beta).sqrt()
    elif how == "std":
        sigma = beta
    else:
        sigma = beta.sqrt()
    if t == 0 and how != "noise_at_zero":
        return mean.float()
    return (mean + sigma * z).float()


@exercise("diffusion.ddpm_step",
          hint="alphas = 1 - betas; abar = torch.cumprod(alphas, 0); mean = (x_t - betas[t] / (1 - abar[t]).sqrt() * eps) "
               "/ alphas[t].sqrt(); return mean if t == 0 else mean + betas[t].sqrt() * z.")
def ddpm_step(answer, case):
    """x_{t-1} = 1/√α_t (x_t - β_t/√(1-ᾱ_t) ε̂) + √β_t z, no noise at t = 0."""
    g = torch.Generator().manual_seed(1)
    betas = torch.linspace(1e-3, 0.2, 100)
    for name, shape, t in (("t = 50 of 100, B=3 (1, 6, 6)", (3, 1, 6, 6), 50), ("t = 99 (the first reverse step)", (2, 3, 4, 4), 99),
                           ("t = 1", (2, 1, 4, 4), 1), ("t = 0: the last step adds no noise", (2, 1, 4, 4), 0)):
        with case(name):
            eps, x_t, z = (torch.randn(shape, generator=g) for _ in range(3))
            args = (eps.clone(), t, x_t.clone(), betas.clone(), z.clone())
            got = call(answer, *args)
            _expect_unmodified(("eps", "t", "x_t", "betas", "z"), (eps, t, x_t, betas, z), args)
            mistakes = [Mistake(_step(eps, t, x_t, betas, z, m), h) for m, h in
                        (("std", STD_HINT), ("tilde", TILDE_HINT), ("noise_at_zero", NOISE_AT_ZERO_HINT),
                         ("mean", MEAN_HINT), ("abar", ABAR_HINT))]
            expect_tensor(got, _step(eps, t, x_t, betas, z), name="x_{t-1}", atol=1e-5, rtol=1e-4, mistakes=mistakes)
    with case("the oracle: the package's ddpm_step with σ_t² = β_t and the same z"):
        from ..models.diffusion import NoiseSchedule, ddpm_step as package_step

        schedule = NoiseSchedule(100, 1e-4, 0.02, scaled=True)
        eps, x_t = torch.randn(2, 1, 4, 4, generator=g), torch.randn(2, 1, 4, 4, generator=g)
        expected = package_step(eps, 30, x_t, schedule, torch.Generator().manual_seed(5), variance="large")
        z = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(5))
        got = call(answer, eps.clone(), 30, x_t.clone(), schedule.betas.clone(), z)
        expect_tensor(got, expected, name="x_{t-1}", atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------------------------------------
# diffusion.classifier_free_guidance
# ---------------------------------------------------------------------------------------------
SIGN_HINT = ("The guidance direction is reversed: ε̂ = ε_∅ + s (ε_c - ε_∅) moves *towards* the conditional "
             "prediction and beyond it (s > 1).")
BRANCH_HINT = ("The wrong branch is the base: start from the unconditional prediction, ε̂ = ε_∅ + s (ε_c - ε_∅); "
               "s = 0 must give ε_∅ and s = 1 must give ε_c.")
SCALE_ONLY_HINT = "Scaling the conditional prediction alone (s ε_c) is not guidance: ε̂ = ε_∅ + s (ε_c - ε_∅)."
CFG_INPLACE_HINT = ("An in-place operation (`+=`, `.sub_()`, `.mul_()`, `out=`) changed an input: the sampler uses "
                    "both predictions again. Build a new tensor with out-of-place operations (`a + b`, `a * s`).")
CFG_DTYPE_HINT = "Keep the inputs' dtype: no `.float()`, `torch.tensor(...)` or numpy round trip that changes it."


def _cfg_case(answer, u, c, s, name, mistakes=True):
    """The learner's ε̂ for (ε_∅ = u, ε_c = c, s), compared with u + s (c - u) computed in float64."""
    got = call(answer, u.clone(), c.clone(), s)
    expected = (u.double() + s * (c.double() - u.double())).to(u.dtype)
    wrong = [Mistake(u - s * (c - u), SIGN_HINT), Mistake(c + s * (c - u), BRANCH_HINT),
             Mistake(c + s * (u - c), BRANCH_HINT), Mistake(s * c, SCALE_ONLY_HINT)] if mistakes else []
    expect_tensor(got, expected, name=name, atol=1e-5, rtol=1e-4, mistakes=wrong)


@exercise("diffusion.classifier_free_guidance",
          hint="Start from the unconditional prediction and add s times the step from it to the conditional one.")
def classifier_free_guidance(answer, case):
    """ε̂ = ε_∅ + s (ε_c - ε_∅): a new tensor of the inputs' shape and dtype; the inputs unchanged."""
    g = torch.Generator().manual_seed(2)

    def randn(*shape, dtype=torch.float32):
        return torch.randn(shape, generator=g, dtype=dtype)

    for name, shape, s in (("scale 3, B=2 latents (4, 8, 8)", (2, 4, 8, 8), 3.0),
                           ("scale 7.5 (Stable Diffusion's default), B=1 (1, 4, 4)", (1, 1, 4, 4), 7.5),
                           ("scale 0.5: halfway between the two predictions", (3, 1, 4, 4), 0.5),
                           ("scale 2 on embeddings of shape (5, 64): any shape works", (5, 64), 2.0)):
        with case(name):
            _cfg_case(answer, randn(*shape), randn(*shape), s, "guided ε")
    with case("scale 0 gives the unconditional prediction", hint=BRANCH_HINT):
        _cfg_case(answer, randn(3, 1, 4, 4), randn(3, 1, 4, 4), 0.0, "ε̂ at s = 0", mistakes=False)
    with case("scale 1 gives the conditional prediction", hint=BRANCH_HINT):
        _cfg_case(answer, randn(3, 1, 4, 4), randn(3, 1, 4, 4), 1.0, "ε̂ at s = 1", mistakes=False)
    with case("float64 inputs give a float64 result", hint=CFG_DTYPE_HINT):
        _cfg_case(answer, randn(2, 3, 4, 4, dtype=torch.float64), randn(2, 3, 4, 4, dtype=torch.float64), 4.0,
                  "guided ε (float64)")
    with case("eps_uncond and eps_cond are not modified", hint=CFG_INPLACE_HINT):
        u, c = randn(2, 3, 4, 4), randn(2, 3, 4, 4)
        given_u, given_c = u.clone(), c.clone()
        call(answer, given_u, given_c, 3.0)
        for label, before, after in (("eps_uncond", u, given_u), ("eps_cond", c, given_c)):
            expect(torch.equal(before, after), f"your function changed `{label}` in place.")


# ---------------------------------------------------------------------------------------------
# diffusion.scale_latents
# ---------------------------------------------------------------------------------------------
STD_NOT_INVERSE_HINT = ("You multiplied by σ: the factor is 1/σ, so that the scaled latents have standard deviation 1 "
                        "(scaled = latents / latents.std()).")
VARIANCE_HINT = "You divided by the variance σ²; divide by the standard deviation σ = latents.std()."
PER_CHANNEL_HINT = ("Use one global factor over every element (latents.std()), not one per channel or per image: "
                    "the decoder gets the latents back by dividing by that single number.")
CENTRED_HINT = ("Do not subtract the mean: Stable Diffusion only rescales (z / σ), and the decoder undoes it by "
                "dividing by the factor alone.")
RMS_HINT = "That is the root mean square √mean(z²); the factor is 1 / the standard deviation, latents.std()."


@exercise("diffusion.scale_latents", hint="factor = 1 / latents.std().item(); return latents * factor, factor.")
def scale_latents(answer, case):
    """scaled = z · (1/σ(z)) with one σ over all elements, unbiased or population; returns (scaled, factor)."""
    g = torch.Generator().manual_seed(4)
    for name, shape, mean, std in (("latents (16, 4, 4, 4) with σ = 3", (16, 4, 4, 4), 0.0, 3.0),
                                   ("latents (8, 4, 2, 2) with mean 2 and σ = 0.5", (8, 4, 2, 2), 2.0, 0.5),
                                   ("channels of different spread (32, 4, 4, 4)", (32, 4, 4, 4), 0.3, None),
                                   ("one image's latents (1, 4, 8, 8) with σ = 0.1", (1, 4, 8, 8), -0.5, 0.1),
                                   ("only 8 values (1, 2, 2, 2), mean 1: N - 1 and N give different σ",
                                    (1, 2, 2, 2), 1.0, 1.0)):
        with case(name):
            spread = std if std else torch.tensor([0.5, 1.0, 2.0, 4.0]).view(1, 4, 1, 1)
            z = mean + torch.randn(shape, generator=g) * spread
            argument = z.clone()
            got = expect_tuple(call(answer, argument), ("scaled", "factor"))
            _expect_unmodified(("latents",), (z,), (argument,))
            scaled, factor = got
            expect_tensor_like(scaled, shape=z.shape, dtype=z.dtype, name="scaled latents")
            # either estimator is accepted: unbiased (N - 1) or population (N)
            sigmas = (z.std().item(), z.std(unbiased=False).item())
            sigma = min(sigmas, key=lambda s: (scaled.double() - z.double() / s).abs().max().item())
            mistakes = [Mistake(z * s, STD_NOT_INVERSE_HINT) for s in sigmas]
            mistakes += [Mistake(z / s**2, VARIANCE_HINT) for s in sigmas]
            mistakes += [Mistake(z / z.std(dim=(0, 2, 3), keepdim=True), PER_CHANNEL_HINT),
                         Mistake(z / z.std(dim=(0, 2, 3), keepdim=True, unbiased=False), PER_CHANNEL_HINT)]
            mistakes += [Mistake((z - z.mean()) / s, CENTRED_HINT) for s in sigmas]
            mistakes.append(Mistake(z / z.pow(2).mean().sqrt(), RMS_HINT))
            expect_tensor(scaled, z / sigma, name="scaled latents", atol=1e-5, rtol=1e-4, mistakes=mistakes)
            expect(isinstance(factor, (int, float)) or (isinstance(factor, torch.Tensor) and factor.numel() == 1),
                   f"factor: expected a number, got {type(factor).__name__}"
                   + (f" of shape {tuple(factor.shape)}" if isinstance(factor, torch.Tensor) else "") + ".",
                   hint="Return the factor as a Python float: 1 / latents.std().item().")
            expect_close(factor, 1 / sigma, 1e-4 / sigma, name="factor", fmt=".5f",
                         hint="Return the factor you multiplied by, 1 / σ, as the second value.")
