"""course_utils.models.latent: the tiny AutoencoderKL, the text-conditioned U-Net, loading the CLIP."""
import pytest
import torch

from course_utils.models.latent import (
    TinyAutoencoderConfig, build_autoencoder, build_text_unet, decode_latents, encode_latents, prompt_features,
    text_unet_fn, train_autoencoder,
)
from course_utils.train import step_seconds


@pytest.mark.parametrize("factor", [1, 2, 4, 8])
def test_autoencoder_downsamples_by_factor(factor):
    config = TinyAutoencoderConfig(image_size=16, channels=1, factor=factor, width=8)
    ae = build_autoencoder(config)
    images = torch.rand(2, 1, 16, 16)
    z = encode_latents(ae, images)
    assert z.shape == (2, 4, 16 // factor, 16 // factor) and config.latent_size == 16 // factor
    x = decode_latents(ae, z)
    assert x.shape == images.shape and x.min() >= 0 and x.max() <= 1


def test_autoencoder_config_errors():
    with pytest.raises(ValueError, match="power of 2"):
        TinyAutoencoderConfig(factor=3)
    with pytest.raises(ValueError, match="divisible"):
        TinyAutoencoderConfig(image_size=20, factor=8)
    with pytest.raises(ValueError, match="multiple of 8"):
        TinyAutoencoderConfig(width=12)


def test_train_autoencoder_reduces_the_loss():
    torch.manual_seed(0)
    ae = build_autoencoder(TinyAutoencoderConfig(image_size=8, channels=1, factor=2, width=8))
    images = torch.zeros(16, 1, 8, 8)
    images[:, :, 2:6, 2:6] = 1
    history = train_autoencoder(ae, images, steps=30, batch_size=8, lr=3e-3)
    assert len(history.loss) == len(history["kl"]) == 30 and not ae.training
    # measured: the mean loss of the last 5 steps is 0.054 x that of the first 5
    assert history.mean(last=5) < 0.2 * history.mean(first=5)


def test_train_autoencoder_is_reproducible_and_leaves_the_global_generator_alone():
    """ε of z = μ + σ ε comes from the global generator seeded with ``seed`` inside the training only:
    the same seed gives the same weights, and the caller's random stream is not disturbed."""
    images = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    config = TinyAutoencoderConfig(image_size=8, channels=1, factor=2, width=8)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        ae = build_autoencoder(config)
        before = torch.get_rng_state()
        runs.append(train_autoencoder(ae, images, steps=3, batch_size=4, device="cpu").loss)
        assert torch.equal(torch.get_rng_state(), before)
    assert runs[0] == runs[1]


def test_text_unet_with_and_without_pooled_vector():
    x, t = torch.randn(2, 4, 8, 8), torch.tensor([3, 7])
    plain = build_text_unet(8, 4, (16, 32), context_dim=32, head_dim=8)
    assert text_unet_fn(plain)(x, t, torch.randn(2, 5, 32)).shape == x.shape
    pooled = build_text_unet(8, 4, (16, 32), context_dim=32, head_dim=8, pooled_dim=32)
    fn = text_unet_fn(pooled)
    c = torch.randn(2, 6, 32)  # 5 context tokens + the pooled vector
    out = fn(x, t, c)
    assert out.shape == x.shape
    c2 = c.clone()
    c2[:, -1] += 1.0  # the pooled vector changes the prediction
    assert not torch.allclose(fn(x, t, c2), out)
    assert step_seconds(lambda: fn(x, t, c).pow(2).mean(), pooled.parameters(), steps=1) > 0


def test_text_unet_with_two_pooled_slots():
    x, t = torch.randn(2, 4, 8, 8), torch.tensor([3, 7])
    unet = build_text_unet(8, 4, (16, 32), context_dim=32, head_dim=8, pooled_dim=64)
    fn = text_unet_fn(unet)
    c = torch.randn(2, 7, 32)  # 5 context tokens + two pooled slots
    out = fn(x, t, c)
    assert out.shape == x.shape
    for row in (-2, -1):  # each slot reaches the time embedding
        changed = c.clone()
        changed[:, row] += 1.0
        assert not torch.allclose(fn(x, t, changed), out)
    changed = c.clone()
    changed[:, -3] += 1.0  # the last context token is a token (cross-attention), not a slot
    assert not torch.allclose(fn(x, t, changed), out)
    with pytest.raises(ValueError, match="multiple of context_dim"):
        build_text_unet(8, 4, (16, 32), context_dim=32, head_dim=8, pooled_dim=48)


def test_load_or_train_clip_loads_a_matching_saved_model(tmp_path, monkeypatch):
    from course_utils.models import clip as clip_module
    from course_utils.models.clip import TinyClipConfig, build_tiny_clip, load_or_train_clip, save_clip
    from course_utils.train import History

    torch.manual_seed(0)
    model = build_tiny_clip(TinyClipConfig())
    save_clip(model, tmp_path / "good")
    loaded, config, how = load_or_train_clip(tmp_path / "good")
    assert how.startswith("loaded") and config == TinyClipConfig()
    torch.testing.assert_close(loaded.text_projection, model.text_projection)
    feats = prompt_features(loaded, ["a small red circle", ""])
    assert feats.shape == (2, TinyClipConfig().context_length, TinyClipConfig().text_width)

    # a stale model (another config) or none at all: train (here: a stub standing in for train_shapes_clip)
    save_clip(build_tiny_clip(TinyClipConfig(text_layers=1)), tmp_path / "stale")
    calls = []

    def fake_train(model, device=None):
        calls.append(clip_module.model_config(model))
        return History()

    monkeypatch.setattr(clip_module, "train_shapes_clip", fake_train)
    _, _, how = load_or_train_clip(tmp_path / "stale")
    assert how.startswith("trained here") and "differs" in how
    _, _, how = load_or_train_clip(tmp_path / "missing")
    assert how.startswith("trained here") and "FileNotFoundError" in how
    assert calls == [TinyClipConfig(), TinyClipConfig()]


def test_scale_latents_gives_unit_standard_deviation_and_its_factor():
    from course_utils.models.latent import scale_latents

    z = 2.0 + 3.0 * torch.randn(64, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    before = z.clone()
    scaled, factor = scale_latents(z)
    assert isinstance(factor, float) and torch.equal(z, before)
    assert abs(scaled.std().item() - 1) < 1e-5
    torch.testing.assert_close(scaled / factor, z)
