"""Chapter 7's exercise checks: pass on the book's reference answers, fail on the stubs and on
plausible wrong answers, with a message that says what is wrong."""
import pytest
import torch

from course_utils.exercises import run_check
from exercise_support import book, failed_cases, failure  # noqa: F401  (book: a fixture)


# --- q_sample -------------------------------------------------------------------------------------
def _abar(betas):
    return torch.cumprod(1 - betas, 0)


def _b(a, x0):
    return a.reshape(-1, *([1] * (x0.dim() - 1)))


def qs_no_sqrt(x0, t, noise, betas):
    a = _b(_abar(betas)[t], x0)
    return a * x0 + (1 - a) * noise


def qs_alpha_not_alpha_bar(x0, t, noise, betas):
    a = _b((1 - betas)[t], x0)
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def qs_off_by_one(x0, t, noise, betas):
    abar = torch.cat([torch.ones(1), _abar(betas)[:-1]])  # alpha_bar_{t-1}
    a = _b(abar[t], x0)
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def qs_one_t(x0, t, noise, betas):
    a = _abar(betas)[t[0]]
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def qs_swapped(x0, t, noise, betas):
    a = _b(_abar(betas)[t], x0)
    return (1 - a).sqrt() * x0 + a.sqrt() * noise


def qs_no_broadcast(x0, t, noise, betas):
    a = _abar(betas)[t]  # (B,) against (B, C, H, W): a shape error inside the learner's code
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


@pytest.mark.parametrize("answer, expected", [
    (qs_no_sqrt, "square roots are missing"),
    (qs_alpha_not_alpha_bar, "ᾱ_t = α_0 α_1"),
    (qs_off_by_one, "Off by one"),
    (qs_one_t, "Each image has its own t"),
    (qs_swapped, "swapped"),
    (qs_no_broadcast, "reshape(-1, 1, 1, 1)"),
])
def test_q_sample_mistakes(answer, expected):
    _, text = failure("diffusion.q_sample", answer)
    assert expected in text


# --- ddpm_step ------------------------------------------------------------------------------------
def _parts(eps, t, x_t, betas):
    alphas = 1 - betas
    abar = torch.cumprod(alphas, 0)
    return (x_t - betas[t] / (1 - abar[t]).sqrt() * eps) / alphas[t].sqrt(), abar


def step_std_is_variance(eps, t, x_t, betas, z):
    mean, _ = _parts(eps, t, x_t, betas)
    return mean if t == 0 else mean + betas[t] * z


def step_posterior_variance(eps, t, x_t, betas, z):
    mean, abar = _parts(eps, t, x_t, betas)
    prev = abar[t - 1] if t > 0 else torch.tensor(1.0)
    return mean if t == 0 else mean + ((1 - prev) / (1 - abar[t]) * betas[t]).sqrt() * z


def step_noise_at_zero(eps, t, x_t, betas, z):
    mean, _ = _parts(eps, t, x_t, betas)
    return mean + betas[t].sqrt() * z


def step_divide_by_alpha(eps, t, x_t, betas, z):
    alphas = 1 - betas
    abar = torch.cumprod(alphas, 0)
    mean = (x_t - betas[t] / (1 - abar[t]).sqrt() * eps) / alphas[t]
    return mean if t == 0 else mean + betas[t].sqrt() * z


def step_minus_noise(eps, t, x_t, betas, z):
    mean, _ = _parts(eps, t, x_t, betas)
    return mean if t == 0 else mean - betas[t].sqrt() * z  # z and -z differ: a wrong value


@pytest.mark.parametrize("answer, expected", [
    (step_std_is_variance, "not β_t · z"),
    (step_posterior_variance, "posterior variance"),
    (step_noise_at_zero, "no noise is added in the last step"),
    (step_divide_by_alpha, "divide by √α_t"),
    (step_minus_noise, "x_{t-1}"),
])
def test_ddpm_step_mistakes(answer, expected):
    result, text = failure("diffusion.ddpm_step", answer)
    assert expected in text


def test_ddpm_step_noise_at_zero_fails_only_the_last_step_cases():
    result = run_check("diffusion.ddpm_step", step_noise_at_zero)
    assert failed_cases(result) == ["t = 0: the last step adds no noise"]


# --- classifier_free_guidance ---------------------------------------------------------------------
@pytest.mark.parametrize("answer, expected", [
    (lambda u, c, s: u - s * (c - u), "reversed"),
    (lambda u, c, s: c + s * (c - u), "wrong branch"),
    (lambda u, c, s: c + s * (u - c), "wrong branch"),
    (lambda u, c, s: s * c, "alone"),
    (lambda u, c, s: s * u + (1 - s) * c, "wrong branch"),
    (lambda u, c, s: (u + s * (c - u)).mean(0), "shape"),
])
def test_cfg_mistakes(answer, expected):
    _, text = failure("diffusion.classifier_free_guidance", answer)
    assert expected in text


# --- scale_latents --------------------------------------------------------------------------------
@pytest.mark.parametrize("answer, expected", [
    (lambda z: (z * z.std(), z.std().item()), "multiplied by σ"),
    (lambda z: (z / z.var(), 1 / z.var().item()), "variance"),
    (lambda z: (z / z.std(dim=(0, 2, 3), keepdim=True), 1.0), "one global factor"),
    (lambda z: ((z - z.mean()) / z.std(), 1 / z.std().item()), "subtract the mean"),
    (lambda z: (z / z.pow(2).mean().sqrt(), 1.0), "root mean square"),
    (lambda z: (z / z.std(), z.std().item()), "factor"),
    (lambda z: z / z.std(), "tuple"),
])
def test_scale_latents_mistakes(answer, expected):
    _, text = failure("diffusion.scale_latents", answer)
    assert expected in text
