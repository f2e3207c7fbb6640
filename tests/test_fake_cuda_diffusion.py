"""Chapter 7 (diffusion, latent diffusion, text-to-image) on fake CUDA: one device throughout.

``MODEL_CASES`` covers ``unclip.Prior`` (``diffusion`` and ``latent`` define no ``nn.Module`` class)
and the ``diffusers`` models the package builds: ``diffusion.build_pixel_unet`` (UNet2DModel, with
class labels and attention), ``latent.build_text_unet`` (UNet2DConditionModel, with and without the
pooled vector) and ``latent.build_autoencoder`` (AutoencoderKL). ``TRAINING_CASES`` follows every
package trainer (``diffusion.train_denoiser``, ``latent.train_autoencoder``, ``unclip.train_prior``)
from the CPU data to its first backward, and the chunked inference paths (latents in and out,
prompt features) from CPU inputs to CPU outputs. The sampling loops are not followed: they read
schedule values and time steps back as Python numbers (``.item()``, ``int(t)``), which fake
tensors cannot give.

Time steps are range-checked on the CPU only (reading a GPU tensor back would stall each step, and
fake tensors have no values), so ``q_sample`` runs on device time steps here.
"""
import torch
import torch.nn.functional as F

from course_utils.models.diffusion import NoiseSchedule, build_pixel_unet, q_sample, train_denoiser, unet_fn
from course_utils.models.latent import (
    TinyAutoencoderConfig, build_autoencoder, build_text_unet, decode_latents, encode_latents, prompt_features,
    text_unet_fn, train_autoencoder,
)
from course_utils.models.unclip import Prior, PriorConfig, as_context, cosine_loss, train_prior
from fake_cuda import CUDA, assert_on_cuda, fake_cuda, run_training_path

SCHEDULE = NoiseSchedule(10)
AE = TinyAutoencoderConfig(image_size=8, channels=1, factor=2, width=8)


def pixel_unet():
    return build_pixel_unet(8, 1, (8, 16), num_classes=3, attention_at=4)  # built outside fake mode, moved inside


def text_unet(pooled: bool):
    return build_text_unet(8, 4, (8, 16), context_dim=16, head_dim=8, pooled_dim=16 if pooled else None)


def prior_model(monkeypatch):
    prior = Prior(PriorConfig(embed_dim=8, hidden=16))
    with fake_cuda():
        prior.to(CUDA)
        text, image = torch.randn(4, 8, device=CUDA), F.normalize(torch.randn(4, 8, device=CUDA), dim=-1)
        predicted = prior(text)  # (4, 8), unit vectors
        loss = cosine_loss(predicted, image)
        assert_on_cuda(prior, predicted, loss, as_context(predicted))
        assert predicted.shape == (4, 8) and loss.dim() == 0


def pixel_unet_model(monkeypatch):
    unet = pixel_unet()
    with fake_cuda():
        unet.to(CUDA)
        x0, noise = torch.rand(2, 1, 8, 8, device=CUDA), torch.randn(2, 1, 8, 8, device=CUDA)
        t = torch.randint(SCHEDULE.num_steps, (2,), device=CUDA)
        eps = unet_fn(unet)(q_sample(x0, t, noise, SCHEDULE), t, torch.tensor([0, 3], device=CUDA))  # 3 = null
        loss = F.mse_loss(eps, noise)
        assert_on_cuda(unet, eps, loss)
        assert eps.shape == (2, 1, 8, 8)


def text_unet_model(monkeypatch):
    for pooled in (False, True):
        unet = text_unet(pooled)
        with fake_cuda():
            unet.to(CUDA)
            x, t = torch.randn(2, 4, 8, 8, device=CUDA), torch.tensor([1, 7], device=CUDA)
            context = torch.randn(2, 5 + pooled, 16, device=CUDA)  # 5 tokens (+ the pooled vector as a 6th)
            eps = text_unet_fn(unet)(x, t, context)
            assert_on_cuda(unet, eps, F.mse_loss(eps, x))
            assert eps.shape == x.shape


def autoencoder_model(monkeypatch):
    ae = build_autoencoder(AE)
    with fake_cuda():
        ae.to(CUDA)
        x = torch.rand(2, 1, 8, 8, device=CUDA) * 2 - 1
        posterior = ae.encode(x).latent_dist
        z = posterior.sample()  # ε drawn on the device
        x_hat = ae.decode(z).sample
        loss = F.mse_loss(x_hat, x) + 1e-6 * posterior.kl().mean()
        assert_on_cuda(ae, z, x_hat, loss)
        assert z.shape == (2, 4, 4, 4) and x_hat.shape == x.shape


MODEL_CASES = {
    "unclip.Prior": prior_model,
    "diffusion.build_pixel_unet": pixel_unet_model,
    "latent.build_text_unet": text_unet_model,
    "latent.build_autoencoder": autoencoder_model,
}


def training_denoiser(monkeypatch):
    data, labels = torch.rand(6, 1, 8, 8) * 2 - 1, torch.arange(6) % 3
    unet = pixel_unet()
    run_training_path(monkeypatch, lambda: train_denoiser(unet, data, SCHEDULE, 2, conditions=labels,
                                                          null_condition=torch.tensor(3), drop_prob=0.5,
                                                          batch_size=4, device="cuda"))
    assert_on_cuda(unet)
    monkeypatch.undo()
    # a text U-Net with (N, L, D) contexts and a (1, L, D) null context, predicting v (Chapter 7c)
    unet = text_unet(pooled=True)
    latents, contexts = torch.randn(6, 4, 8, 8), torch.randn(6, 6, 16)
    run_training_path(monkeypatch, lambda: train_denoiser(unet, latents, SCHEDULE, 2, model_fn=text_unet_fn(unet),
                                                          conditions=contexts, null_condition=torch.zeros(1, 6, 16),
                                                          drop_prob=0.5, batch_size=4, device="cuda",
                                                          prediction="v_prediction"))
    assert_on_cuda(unet)


def training_autoencoder(monkeypatch):
    ae = build_autoencoder(AE)
    run_training_path(monkeypatch, lambda: train_autoencoder(ae, torch.rand(6, 1, 8, 8), steps=2, batch_size=4,
                                                             device="cuda"))
    assert_on_cuda(ae)


def training_prior(monkeypatch):
    prior = Prior(PriorConfig(embed_dim=8, hidden=16))
    text, image = torch.randn(10, 8), torch.randn(10, 8)
    run_training_path(monkeypatch, lambda: train_prior(prior, text, image, steps=2, batch_size=4, device="cuda"))
    assert_on_cuda(prior)


def latents_in_and_out(monkeypatch):
    ae = build_autoencoder(AE)
    with fake_cuda():
        z = encode_latents(ae, torch.rand(5, 1, 8, 8), batch_size=2, device="cuda")  # (5, 4, 4, 4), back on the CPU
        x = decode_latents(ae, z, batch_size=2, device="cuda")
        assert_on_cuda(ae)
        assert z.device.type == x.device.type == "cpu" and z.shape == (5, 4, 4, 4) and x.shape == (5, 1, 8, 8)


def token_features(monkeypatch):
    from course_utils.models.clip import TinyClipConfig, build_tiny_clip

    config = TinyClipConfig()
    clip = build_tiny_clip(config)
    with fake_cuda():
        feats = prompt_features(clip, ["a red circle", "", "a blue square"], batch_size=2, device="cuda")
        assert_on_cuda(clip)
        assert feats.device.type == "cpu" and feats.shape == (3, config.context_length, config.text_width)


TRAINING_CASES = {
    "diffusion.train_denoiser": training_denoiser,
    "latent.train_autoencoder": training_autoencoder,
    "unclip.train_prior": training_prior,
    "latent.encode_latents": latents_in_and_out,
    "latent.prompt_features": token_features,
}

