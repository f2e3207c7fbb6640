"""Oracle tests of course_utils.models.diffusion against diffusers' schedulers and U-Nets."""
import pytest
import torch
from diffusers import DDIMPipeline, DDIMScheduler, DDPMScheduler
from torch import nn

from course_utils.models.diffusion import (
    NoiseSchedule, build_pixel_unet, classifier_free_guidance, ddpm_sample, ddpm_step, guided_eps, predicted_x0,
    q_sample, repaint, scheduler_sample, train_denoiser, unet_fn, v_target,
)


@pytest.mark.parametrize("schedule", [NoiseSchedule(), NoiseSchedule(100, scaled=True), NoiseSchedule(50, 1e-3, 0.05)])
def test_schedule_matches_diffusers(schedule):
    ref = DDPMScheduler(**schedule.diffusers_config())
    torch.testing.assert_close(schedule.betas, ref.betas)
    torch.testing.assert_close(schedule.alpha_bars, ref.alphas_cumprod)
    assert schedule.alpha_bars[-1] < (0.01 if schedule.num_steps != 50 else 1.0)


def test_q_sample_matches_add_noise():
    schedule = NoiseSchedule(200, scaled=True)
    ref = DDPMScheduler(**schedule.diffusers_config())
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(6, 3, 8, 8, generator=g), torch.randn(6, 3, 8, 8, generator=g)
    t = torch.tensor([0, 1, 50, 100, 198, 199])
    torch.testing.assert_close(q_sample(x0, t, noise, schedule), ref.add_noise(x0, noise, t))
    # x̂_0 inverts the jump exactly when the noise is known
    torch.testing.assert_close(predicted_x0(q_sample(x0, t, noise, schedule), t, noise, schedule), x0,
                               atol=1e-3, rtol=1e-3)


def test_q_sample_errors():
    schedule = NoiseSchedule(10)
    with pytest.raises(ValueError, match="same shape"):
        q_sample(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]), torch.zeros(2, 1, 4, 3), schedule)
    with pytest.raises(ValueError, match="0..9"):
        q_sample(torch.zeros(2, 1, 4, 4), torch.tensor([0, 10]), torch.zeros(2, 1, 4, 4), schedule)
    with pytest.raises(ValueError, match="beta"):
        NoiseSchedule(10, 0.5, 0.1)


@pytest.mark.parametrize("variance, library", [("small", "fixed_small"), ("large", "fixed_large")])
def test_ddpm_step_matches_scheduler_step(variance, library):
    schedule = NoiseSchedule(50, scaled=True)
    ref = DDPMScheduler(**schedule.diffusers_config(), variance_type=library)
    ref.set_timesteps(50)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 1, 8, 8, generator=g)
    for t in (49, 25, 1, 0):
        eps = torch.randn(3, 1, 8, 8, generator=g)
        ours = ddpm_step(eps, t, x, schedule, torch.Generator().manual_seed(t), variance=variance)
        theirs = ref.step(eps, t, x, generator=torch.Generator().manual_seed(t)).prev_sample
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_ddpm_sample_matches_library_loop():
    """The from-scratch sampler and DDPMScheduler give the same x_0 from the same model and noise."""
    torch.manual_seed(0)
    unet = build_pixel_unet(8, 1, (8, 16), num_classes=3).eval()
    fn = unet_fn(unet)
    schedule = NoiseSchedule(40, scaled=True)
    y = torch.tensor([0, 1, 2])
    ours, trajectory = ddpm_sample(fn, (3, 1, 8, 8), schedule, torch.Generator().manual_seed(3), cond=y, keep_every=10)
    theirs = scheduler_sample(fn, DDPMScheduler(**schedule.diffusers_config()), (3, 1, 8, 8), 40,
                              torch.Generator().manual_seed(3), cond=y)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
    assert [t for t, _ in trajectory] == [40, 30, 20, 10, 0]


@pytest.mark.parametrize("clip_sample", [False, True])
def test_ddim_sampling_matches_diffusers_pipeline(clip_sample):
    """scheduler_sample with DDIMScheduler = diffusers' own DDIMPipeline (same U-Net, noise and steps),
    and both equal DDIM's update written out: x_t' = √ᾱ_t' x̂_0 + √(1-ᾱ_t') ε̂."""
    torch.manual_seed(0)
    unet = build_pixel_unet(8, 1, (8, 16)).eval()  # unconditional: the pipeline calls unet(x, t)
    schedule = NoiseSchedule(40, scaled=True)
    config = schedule.diffusers_config(clip_sample=clip_sample)
    ours = scheduler_sample(unet_fn(unet), DDIMScheduler(**config), (3, 1, 8, 8), 5, torch.Generator().manual_seed(3))
    pipeline = DDIMPipeline(unet=unet, scheduler=DDIMScheduler(**config))
    pipeline.set_progress_bar_config(disable=True)
    theirs = pipeline(batch_size=3, generator=torch.Generator().manual_seed(3), num_inference_steps=5, eta=0.0,
                      output_type="np").images  # (3, 8, 8, 1) in [0, 1]: (x / 2 + 0.5).clamp(0, 1)
    torch.testing.assert_close((ours / 2 + 0.5).clamp(0, 1), torch.from_numpy(theirs).permute(0, 3, 1, 2),
                               atol=1e-5, rtol=1e-5)

    # the same update from scratch: 5 steps of 40 // 5 = 8, t = 32, 24, ..., 0; ᾱ_{-8} := ᾱ_0 ("set_alpha_to_one")
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        for t in (32, 24, 16, 8, 0):
            eps = unet(x, torch.full((3,), t)).sample
            x0 = predicted_x0(x, torch.full((3,), t), eps, schedule)
            if clip_sample:
                x0 = x0.clamp(-1, 1)  # ε̂ itself is kept (diffusers' use_clipped_model_output=False)
            abar_prev = schedule.alpha_bars[t - 8] if t >= 8 else torch.tensor(1.0)
            x = abar_prev.sqrt() * x0 + (1 - abar_prev).sqrt() * eps
    torch.testing.assert_close(ours, x, atol=1e-4, rtol=1e-4)


def test_sampling_loops_honour_the_step_cap(monkeypatch):
    """Under $COURSE_MAX_STEPS (the full-profile rehearsal) every sampling loop runs only that many steps."""
    calls = []

    def fn(x, t, c=None):
        calls.append(int(t[0]))
        return torch.zeros_like(x)

    schedule = NoiseSchedule(40, scaled=True)
    monkeypatch.setenv("COURSE_MAX_STEPS", "3")
    ddpm_sample(fn, (2, 1, 4, 4), schedule, torch.Generator().manual_seed(0))
    assert calls == [39, 38, 37]
    calls.clear()
    scheduler_sample(fn, DDIMScheduler(**schedule.diffusers_config()), (2, 1, 4, 4), 10)
    assert len(calls) == 3
    calls.clear()
    repaint(fn, torch.zeros(2, 1, 4, 4), torch.ones(1, 1, 4, 4), schedule)
    assert calls == [39, 38, 37]


def test_classifier_free_guidance():
    u, c = torch.randn(2, 4), torch.randn(2, 4)
    torch.testing.assert_close(classifier_free_guidance(u, c, 0.0), u)
    torch.testing.assert_close(classifier_free_guidance(u, c, 1.0), c)
    torch.testing.assert_close(classifier_free_guidance(u, c, 3.0), 3 * c - 2 * u)
    with pytest.raises(ValueError, match="shape"):
        classifier_free_guidance(u, c[:1], 2.0)
    # guided_eps batches the two branches in one call
    fn = lambda x, t, cond: x * cond.float().reshape(-1, 1)  # noqa: E731
    x, t = torch.ones(2, 4), torch.zeros(2, dtype=torch.long)
    cond, null = torch.tensor([2, 3]), torch.tensor([0, 0])
    torch.testing.assert_close(guided_eps(fn, x, t, cond, null, 2.0), 2 * fn(x, t, cond))
    # any guidance function (the learner's, in Chapter 7c) mixes the two branches in its place
    calls = []
    mixed = guided_eps(fn, x, t, cond, null, 3.0, guidance=lambda u, c, s: calls.append(s) or c - u)
    assert calls == [3.0]
    torch.testing.assert_close(mixed, fn(x, t, cond) - fn(x, t, null))


def test_repaint_keeps_known_pixels():
    torch.manual_seed(0)
    fn = lambda x, t, c=None: torch.zeros_like(x)  # noqa: E731  "predicts no noise"
    schedule = NoiseSchedule(40, scaled=True)
    known = torch.rand(2, 1, 8, 8)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4, :] = 1
    out = repaint(fn, known, mask, schedule, torch.Generator().manual_seed(0), resample=2)
    torch.testing.assert_close(out[..., :4, :], known[..., :4, :])
    assert not torch.allclose(out[..., 4:, :], known[..., 4:, :])
    with pytest.raises(ValueError, match="resample"):
        repaint(fn, known, mask, schedule, resample=0)


def test_train_denoiser_learns():
    torch.manual_seed(0)
    unet = build_pixel_unet(8, 1, (8, 16), num_classes=2)
    data = torch.zeros(64, 1, 8, 8)
    data[32:] = 0.8
    labels = torch.tensor([0] * 32 + [1] * 32)
    history = train_denoiser(unet, data, NoiseSchedule(40, scaled=True), 40, conditions=labels,
                             null_condition=torch.tensor(2), drop_prob=0.2, batch_size=16, lr=3e-3)
    assert len(history.loss) == history.steps == 40 and not unet.training
    # measured: the mean loss of the last 10 steps is 0.24 x that of the first 10
    assert history.mean(last=10) < 0.5 * history.mean(first=10)
    with pytest.raises(ValueError, match="null_condition"):
        train_denoiser(unet, data, NoiseSchedule(20), 1, conditions=labels, drop_prob=0.1)
    with pytest.raises(ValueError, match="align"):
        train_denoiser(unet, data, NoiseSchedule(20), 1, conditions=labels[:3])


class ConditionRecorder(nn.Module):
    """A 'denoiser' that predicts ε̂ = w · x_t and records every (x_t, t, c) it is called with."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.calls = []

    def forward(self, x_t, t, c):
        self.calls.append((x_t.detach(), t, c))
        return self.w * x_t


@pytest.mark.parametrize("drop_prob", [0.0, 0.25])
def test_train_denoiser_drops_conditions_at_the_asked_rate(drop_prob):
    """The null condition reaches the model in about drop_prob of the rows; every other row gets the
    condition of its own image."""
    schedule = NoiseSchedule(10)  # small β's: x_t ≈ x_0, so the image of each row can be read off x_t
    ids = torch.arange(50)
    data = (10.0 * ids).reshape(-1, 1, 1, 1).expand(-1, 1, 4, 4).contiguous()  # image i is constant 10 i
    model = ConditionRecorder()
    train_denoiser(model, data, schedule, 40, model_fn=model, conditions=ids, null_condition=torch.tensor(-1),
                   drop_prob=drop_prob, batch_size=64)
    x_t = torch.cat([x for x, _, _ in model.calls])  # (2560, 1, 4, 4)
    t = torch.cat([t for _, t, _ in model.calls])
    c = torch.cat([c for _, _, c in model.calls])
    assert len(c) == 40 * 64
    dropped = c == -1
    # 2560 Bernoulli(p) draws: the standard deviation of the rate is below 0.01
    assert abs(dropped.float().mean().item() - drop_prob) < 0.03
    image_id = (x_t.mean((1, 2, 3)) / (10.0 * schedule.alpha_bars[t].sqrt())).round().long()
    torch.testing.assert_close(c[~dropped], image_id[~dropped])


def test_build_pixel_unet_attention_only_at_low_resolution():
    unet = build_pixel_unet(16, 1, (8, 16, 16), num_classes=10, attention_at=8)
    assert unet.config.down_block_types == ("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D")
    out = unet(torch.randn(2, 1, 16, 16), torch.tensor([1, 2]), class_labels=torch.tensor([0, 10])).sample
    assert out.shape == (2, 1, 16, 16)
    with pytest.raises(ValueError, match="divisible"):
        build_pixel_unet(10, 1, (8, 16, 16))


def test_ddpm_step_with_given_noise_equals_the_drawn_one():
    schedule = NoiseSchedule(100, scaled=True)
    g = torch.Generator().manual_seed(0)
    eps, x_t = torch.randn(2, 1, 4, 4, generator=g), torch.randn(2, 1, 4, 4, generator=g)
    for variance in ("small", "large"):
        drawn = ddpm_step(eps, 40, x_t, schedule, torch.Generator().manual_seed(3), variance=variance)
        z = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(3))
        torch.testing.assert_close(ddpm_step(eps, 40, x_t, schedule, variance=variance, noise=z), drawn)
    with pytest.raises(ValueError, match="shape of x_t"):
        ddpm_step(eps, 40, x_t, schedule, noise=torch.randn(3))


def test_train_denoiser_uses_the_given_noising_function():
    schedule = NoiseSchedule(50, scaled=True)
    data = torch.randn(16, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    calls = []

    def noising(x0, t, noise):
        calls.append(t.shape)
        return q_sample(x0, t, noise, schedule)

    net = nn.Conv2d(1, 1, 3, padding=1)
    train_denoiser(net, data, schedule, 2, model_fn=lambda x, t, c: net(x), noising=noising, batch_size=4)
    assert calls == [(4,), (4,)]


def test_v_target_equals_diffusers_velocity_and_recovers_x0_and_noise():
    schedule = NoiseSchedule(100, scaled=True)
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(5, 3, 4, 4, generator=g), torch.randn(5, 3, 4, 4, generator=g)
    t = torch.tensor([0, 10, 50, 80, 99])
    v = v_target(x0, t, noise, schedule)
    reference = DDPMScheduler(**schedule.diffusers_config(), prediction_type="v_prediction")
    torch.testing.assert_close(v, reference.get_velocity(x0, noise, t))
    x_t = q_sample(x0, t, noise, schedule)
    abar = schedule.alpha_bars[t].reshape(-1, 1, 1, 1)
    torch.testing.assert_close(abar.sqrt() * x_t - (1 - abar).sqrt() * v, x0)  # x_0 back
    torch.testing.assert_close((1 - abar).sqrt() * x_t + abar.sqrt() * v, noise)  # ε back
    with pytest.raises(ValueError, match="same shape"):
        v_target(x0, t, noise[:, :1], schedule)


def test_train_denoiser_v_prediction_learns_what_ddim_decodes():
    """A v-trained denoiser that has learnt a constant image: DDIM told prediction_type='v_prediction'
    draws that image, while reading the same outputs as ε would not."""
    torch.manual_seed(0)
    unet = build_pixel_unet(8, 1, (8, 16))
    data = torch.full((64, 1, 8, 8), 0.6)
    schedule = NoiseSchedule(40, scaled=True)
    history = train_denoiser(unet, data, schedule, 60, batch_size=16, lr=3e-3, prediction="v_prediction")
    assert history.mean(last=10) < 0.5 * history.mean(first=10)
    fn = unet_fn(unet)
    means = {}
    for kind in ("v_prediction", "epsilon"):
        ddim = DDIMScheduler(**schedule.diffusers_config(clip_sample=True), prediction_type=kind)
        x = scheduler_sample(fn, ddim, (8, 1, 8, 8), 10, torch.Generator().manual_seed(1))
        means[kind] = x.mean().item()
    assert abs(means["v_prediction"] - 0.6) < 0.15
    assert abs(means["epsilon"] - 0.6) > 0.3
    with pytest.raises(ValueError, match="v_prediction"):
        train_denoiser(unet, data, schedule, 1, prediction="x0")
