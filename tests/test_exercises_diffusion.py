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
    (lambda u, c, s: c.sub_(u).mul_(s).add_(u), "changed `eps_cond` in place"),
    (lambda u, c, s: u.add_(s * (c - u)), "changed `eps_uncond` in place"),
    (lambda u, c, s: (u + s * (c - u)).float(), "dtype torch.float32, expected torch.float64"),
    (lambda u, c, s: u + s * (c - u) if s != 0 else c, "s = 0"),
    (lambda u, c, s: u + max(s, 1.0) * (c - u), "halfway"),
])
def test_cfg_mistakes(answer, expected):
    _, text = failure("diffusion.classifier_free_guidance", answer)
    assert expected in text


def test_cfg_in_place_answer_fails_only_the_input_case():
    def in_place(u, c, s):
        u += s * (c - u)
        return u

    assert failed_cases(run_check("diffusion.classifier_free_guidance", in_place)) == [
        "eps_uncond and eps_cond are not modified"]


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


# --- new cases: t = 0 / T-1, inputs not modified, dtype, both estimators of σ ---------------------
def qs_in_place(x0, t, noise, betas):
    a = torch.cumprod(1 - betas, 0)[t].reshape(-1, 1, 1, 1)
    return x0.mul_(a.sqrt()).add_((1 - a).sqrt() * noise)  # overwrites the caller's x0


def qs_float64(x0, t, noise, betas):
    a = torch.cumprod(1 - betas.double(), 0)[t].reshape(-1, 1, 1, 1)
    return a.sqrt() * x0.double() + (1 - a).sqrt() * noise.double()


def qs_t_from_one(x0, t, noise, betas):
    """Counts t from 1: t = 0 gives the clean image (ᾱ_{t-1} with ᾱ_{-1} = 1)."""
    abar = torch.cat([torch.ones(1), torch.cumprod(1 - betas, 0)])
    a = abar[t].reshape(-1, 1, 1, 1)
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def step_in_place(eps, t, x_t, betas, z):
    alphas = 1 - betas
    abar = torch.cumprod(alphas, 0)
    x_t -= betas[t] / (1 - abar[t]).sqrt() * eps  # overwrites the caller's x_t
    x_t /= alphas[t].sqrt()
    return x_t if t == 0 else x_t + betas[t].sqrt() * z


def scale_in_place(latents):
    factor = 1 / latents.std().item()
    latents *= factor
    return latents, factor


def scale_float64(latents):
    factor = 1 / latents.std().item()
    return latents.double() * factor, factor


def scale_factor_per_channel(latents):
    factor = 1 / latents.std(dim=(0, 2, 3), keepdim=True)
    return latents * factor, factor


@pytest.mark.parametrize("exercise_id, answer, case, expected", [
    ("diffusion.q_sample", qs_in_place, "B=4 images (1, 8, 8), T = 1000, mixed t", "modified its input `x0`"),
    ("diffusion.q_sample", qs_float64, "B=4 images (1, 8, 8), T = 1000, mixed t", "dtype torch.float64"),
    ("diffusion.q_sample", qs_t_from_one, "t = 0 for every image: one step of noise, ᾱ_0 = 1 - β_0", "Off by one"),
    ("diffusion.ddpm_step", step_in_place, "t = 50 of 100, B=3 (1, 6, 6)", "modified its input `x_t`"),
    ("diffusion.scale_latents", scale_in_place, "latents (16, 4, 4, 4) with σ = 3", "modified its input `latents`"),
    ("diffusion.scale_latents", scale_float64, "latents (16, 4, 4, 4) with σ = 3", "dtype torch.float64"),
    ("diffusion.scale_latents", scale_factor_per_channel, "channels of different spread (32, 4, 4, 4)",
     "one global factor"),
])
def test_new_cases_catch_their_mistakes(exercise_id, answer, case, expected):
    result, text = failure(exercise_id, answer)
    assert case in failed_cases(result)
    assert expected in text


def test_scale_latents_accepts_both_estimators_of_sigma():
    for unbiased in (True, False):
        def answer(latents, unbiased=unbiased):
            factor = 1 / latents.std(unbiased=unbiased).item()
            return latents * factor, factor

        assert run_check("diffusion.scale_latents", answer).passed, unbiased

    def mixed(latents):  # scaled with one estimator, factor of the other: inconsistent
        return latents / latents.std(unbiased=False), 1 / latents.std().item()

    assert "only 8 values (1, 2, 2, 2), mean 1: N - 1 and N give different σ" in failed_cases(
        run_check("diffusion.scale_latents", mixed))


def test_alternative_correct_answers_pass():
    from alternatives.diffusion import ALTERNATIVES

    names = {"diffusion.q_sample": "my_q_sample", "diffusion.ddpm_step": "my_ddpm_step"}
    for exercise_id, sources in ALTERNATIVES.items():
        assert len(sources) >= 2
        for source in sources:
            namespace = {}
            exec(source, namespace)
            answer = namespace[names.get(exercise_id, exercise_id.split(".")[1])]
            result = run_check(exercise_id, answer)
            assert result.passed, (exercise_id, source, result.messages)
