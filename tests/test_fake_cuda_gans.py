"""Chapter 4 (GANs, pix2pix) and the judge on fake CUDA: models, losses and trainers keep to one device.

``MODEL_CASES`` covers every ``nn.Module`` class of ``gan`` and ``pix2pix`` (``judge`` defines none; the
judge's network, ``classifier.SmallCNN``, has its case in ``test_fake_cuda_medical.py``, beside its other
use, the crop classifier): forward passes and their losses, the conditional GAN with labels. ``TRAINING_CASES``
follows every package trainer (``gan.train_gan``, ``pix2pix.train_pix2pix``, ``judge.train_judge``) from
the CPU data to its first backward.

Not covered: ``judge.load_or_train_judge`` as a whole -- it builds the judge itself, and a module built
inside fake mode cannot be moved; its training is ``train_judge``, covered here.

Labels of a conditional GAN are range-checked on the CPU only (reading a GPU tensor's values back
would stall every step, and fake tensors have no values), so the cases below pass device labels.
"""
import pytest
import torch

from course_utils.models.classifier import SmallCNN, SmallCNNConfig
from course_utils.models.gan import (
    GANConfig, adam_pair, build_gan, discriminator_loss, generator_loss, generator_step, train_gan,
)
from course_utils.models.judge import load_or_train_judge, train_judge
from course_utils.models.pix2pix import (
    PatchDiscriminator, Pix2PixConfig, Pix2PixGenerator, pix2pix_generator_loss, train_pix2pix,
)
from fake_cuda import CUDA, ReachedBackward, assert_on_cuda, fake_cuda, run_training_path, stop_at_backward

GAN = GANConfig(image_size=8, latent_dim=4, width=8)
CGAN = GANConfig(image_size=8, latent_dim=4, width=8, num_classes=3)
P2P = Pix2PixConfig(base_width=4, depth=2, disc_width=4, disc_strided=1, noise_channels=1)


def gan_pair(config):
    return build_gan(config)  # built outside fake mode, moved inside


def gan_images(n=6):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 8, 8, generator=g) * 2 - 1, torch.arange(n) % 3


def check_gan(config):
    G, D = gan_pair(config)
    with fake_cuda():
        G.to(CUDA)
        D.to(CUDA)
        z = torch.randn(4, config.latent_dim, device=CUDA)
        y = torch.arange(4, device=CUDA) % config.num_classes if config.conditional else None
        fake = G(z, y)  # (4, 1, 8, 8)
        real = torch.rand(4, 1, 8, 8, device=CUDA) * 2 - 1
        d_loss = discriminator_loss(D(real, y), D(fake.detach(), y))
        g_loss = generator_loss(D(fake, y))
        assert_on_cuda(G, D, fake, d_loss, g_loss)
        assert fake.shape == (4, 1, 8, 8) and d_loss.dim() == g_loss.dim() == 0
        samples = G.sample(3, torch.Generator().manual_seed(0),
                           y=torch.arange(3) if config.conditional else None)  # CPU noise and labels, moved
        assert_on_cuda(samples)


def gan_generator(monkeypatch):
    check_gan(GAN)
    check_gan(CGAN)


def gan_discriminator(monkeypatch):
    for config in (GAN, CGAN):
        _, D = gan_pair(config)
        with fake_cuda():
            D.to(CUDA)
            x = torch.rand(5, 1, 8, 8, device=CUDA)
            y = torch.arange(5, device=CUDA) % 3 if config.conditional else None
            logits = D(x, y)  # (5,)
            loss = discriminator_loss(logits, logits.flip(0))
            assert_on_cuda(D, logits, loss)
            assert logits.shape == (5,)


def pix2pix_generator(monkeypatch):
    G = Pix2PixGenerator(P2P)
    with fake_cuda():
        G.to(CUDA)
        x = torch.rand(2, 3, 16, 16, device=CUDA)
        for out in (G(x), G(x, generator=torch.Generator().manual_seed(0)),  # noise drawn on the CPU, moved
                    G(x, z=torch.randn(2, 1, 16, 16, device=CUDA))):
            assert_on_cuda(G, out)
            assert out.shape == (2, 3, 16, 16)
        loss = (out - x).abs().mean()
        assert_on_cuda(loss)


def patch_discriminator(monkeypatch):
    D = PatchDiscriminator(P2P)
    with fake_cuda():
        D.to(CUDA)
        sketch, image = torch.rand(2, 3, 16, 16, device=CUDA), torch.rand(2, 3, 16, 16, device=CUDA)
        logits = D(sketch, image)  # (2, 1, h, w)
        total, adversarial, l1 = pix2pix_generator_loss(logits, image, sketch, lam=10.0)
        d_loss = discriminator_loss(logits, D(sketch, sketch))
        assert_on_cuda(D, logits, total, adversarial, l1, d_loss)
        assert logits.shape[:2] == (2, 1)


MODEL_CASES = {
    "gan.Generator": gan_generator,
    "gan.Discriminator": gan_discriminator,
    "pix2pix.Pix2PixGenerator": pix2pix_generator,
    "pix2pix.PatchDiscriminator": patch_discriminator,
}


def training_gan(monkeypatch):
    for config in (GAN, CGAN):
        G, D = gan_pair(config)
        images, labels = gan_images()
        run_training_path(monkeypatch, lambda: train_gan(
            G, D, images, 2, labels=labels if config.conditional else None, batch_size=4, device="cuda"))
        assert_on_cuda(G, D)  # the discriminator step's loss reached backward on the device
        monkeypatch.undo()  # backward works again for the next case


def training_pix2pix(monkeypatch):
    sketch, target = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16)
    for with_gan in (False, True):
        G = Pix2PixGenerator(P2P)
        D = PatchDiscriminator(P2P) if with_gan else None
        run_training_path(monkeypatch, lambda: train_pix2pix(G, D, sketch, target, 2, batch_size=2, device="cuda"))
        assert_on_cuda(G, *([D] if D is not None else []))
        monkeypatch.undo()


def three_digits():
    g = torch.Generator().manual_seed(0)
    return torch.rand(12, 1, 8, 8, generator=g), torch.arange(12) % 3


def training_judge(monkeypatch):
    judge = SmallCNN(SmallCNNConfig(num_classes=3, width=4))
    images, labels = three_digits()
    run_training_path(monkeypatch, lambda: train_judge(judge, images, labels, steps=2, batch_size=4, device="cuda"))
    assert_on_cuda(judge)


TRAINING_CASES = {
    "gan.train_gan": training_gan,
    "pix2pix.train_pix2pix": training_pix2pix,
    "judge.train_judge": training_judge,
}


def test_generator_step_on_fake_cuda(monkeypatch):
    """The GAN's second step (run_training_path stops at the first, the discriminator's): its loss,
    through the frozen D, is on the device too."""
    G, D = gan_pair(CGAN)
    opt_G, _ = adam_pair(G, D)
    with fake_cuda(), stop_at_backward(monkeypatch):
        G.to(CUDA)
        D.to(CUDA)
        with pytest.raises(ReachedBackward) as reached:
            generator_step(G, D, opt_G, torch.randn(4, CGAN.latent_dim, device=CUDA), torch.arange(4, device=CUDA) % 3)
    assert reached.value.loss.device.type == "cuda"


def test_judge_inference_on_fake_cuda():
    """What the chapters do with a trained judge: features and classes of many images, in chunks on
    the device, back on the CPU (for the Fréchet distance and the class coverage)."""
    judge = SmallCNN(SmallCNNConfig(num_classes=3, width=4))
    with fake_cuda():
        judge.to(CUDA)
        feats, classes = judge.embed(torch.rand(5, 1, 8, 8), batch_size=2), judge.predict(torch.rand(5, 1, 8, 8))
        assert_on_cuda(judge)
    assert feats.device.type == classes.device.type == "cpu"
    assert feats.shape == (5, 8) and classes.shape == (5,)
