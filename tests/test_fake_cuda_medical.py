"""Chapters 5, 8 and 8b (autoencoders, U-Net, medical imaging) on fake CUDA: one device throughout.

``MODEL_CASES`` covers every ``nn.Module`` class of ``autoencoder``, ``vae``, ``unet`` and ``cad``, and
the course's ``classifier.SmallCNN`` in both of its uses: the 10-class judge and the one-logit crop
classifier of ``cad.crop_classifier``. Each case builds the model on the CPU, moves it and a batch to
fake CUDA, and runs the forward pass and the loss the chapters train it with.

``TRAINING_CASES`` covers the package trainers of these modules (``cad.train_binary``, with each of its
three losses), followed up to their first backward. The chapters' other loops go through
``train.fit`` directly; the paths they take with package pieces (random noise drawn on the CPU for the
denoising autoencoder and the VAE, ``anomaly_map`` and ``predict_proba`` through ``train.predict``)
are tested below as well.
"""
import pytest
import torch
import torch.nn.functional as F

from course_utils import train
from course_utils.models.autoencoder import (Autoencoder, AutoencoderConfig, add_noise, l1_activity,
                                             reconstruction_loss)
from course_utils.models.cad import (SegmentClassifyUNet, anomaly_map, binary_loss, crop_classifier,
                                     freeze_all_but_norm_and_head, predict_proba, train_binary)
from course_utils.models.classifier import SmallCNN, SmallCNNConfig
from course_utils.models.unet import ConvBlock, UNet, UNetConfig
from course_utils.models.vae import VAE, VAEConfig, reparameterize, vae_loss
from fake_cuda import CUDA, assert_on_cuda, fake_cuda, run_training_path


def autoencoder(monkeypatch):
    model = Autoencoder(AutoencoderConfig(in_dim=64, latent_dim=4, hidden=(16,)))  # built outside fake mode
    x = torch.rand(5, 64)
    g = torch.Generator().manual_seed(0)
    with fake_cuda():
        model.to(CUDA)
        x = x.to(CUDA)
        noisy = add_noise(x, 0.3, g)  # noise drawn on the CPU from the generator, moved to x's device
        x_hat, z = model(noisy)  # (5, 64), (5, 4)
        loss = reconstruction_loss(x_hat, x) + 0.05 * l1_activity(z)
        assert_on_cuda(model, noisy, x_hat, z, loss)
        assert x_hat.shape == (5, 64) and z.shape == (5, 4) and loss.dim() == 0


def vae(monkeypatch):
    model = VAE(VAEConfig(in_dim=64, latent_dim=2, hidden=(16, 8)))
    x = torch.rand(5, 64)
    g = torch.Generator().manual_seed(0)
    with fake_cuda():
        model.to(CUDA)
        x = x.to(CUDA)
        logits, mu, logvar = model(x, generator=g)  # train mode: z = mu + sigma * eps, eps from the CPU generator
        loss, recon, kl = vae_loss(logits, x, mu, logvar)
        z = reparameterize(mu, logvar, g)
        samples = model.sample(3, g)  # z ~ N(0, I) drawn on the CPU, decoded on the device
        assert_on_cuda(model, logits, mu, logvar, loss, recon, kl, z, samples)
        assert logits.shape == (5, 64) and mu.shape == (5, 2) and samples.shape == (3, 64)


def conv_block(monkeypatch):
    block = ConvBlock(3, 8, norm="group")
    x = torch.randn(2, 3, 8, 8)
    with fake_cuda():
        block.to(CUDA)
        y = block(x.to(CUDA))  # (2, 8, 8, 8)
        loss = y.pow(2).mean()
        assert_on_cuda(block, y, loss)
        assert y.shape == (2, 8, 8, 8)


def unet(monkeypatch):
    models = [UNet(UNetConfig(in_channels=3, out_channels=4, base_width=4, depth=2, skip=skip))
              for skip in (True, False)]  # the U-Net and the plain encoder-decoder
    images, maps = torch.rand(2, 3, 16, 16), torch.randint(4, (2, 16, 16))
    restorer = UNet(UNetConfig(in_channels=1, out_channels=1, base_width=4, depth=2))
    low, high = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    with fake_cuda():
        for model in models:  # segmentation: per-pixel cross-entropy (Chapter 5)
            model.to(CUDA)
            logits = model(images.to(CUDA))  # (2, 4, 16, 16)
            loss = F.cross_entropy(logits, maps.to(CUDA))
            assert_on_cuda(model, logits, loss)
            assert logits.shape == (2, 4, 16, 16)
        restorer.to(CUDA)  # restoration: the U-Net predicts the correction, y = x + UNet(x)
        x = low.to(CUDA)
        loss = F.mse_loss(x + restorer(x), high.to(CUDA))
        assert_on_cuda(restorer, loss)


def segment_classify_unet(monkeypatch):
    model = SegmentClassifyUNet(UNetConfig(in_channels=1, out_channels=1, base_width=4, depth=2), n_classes=3)
    images, masks, labels = torch.rand(2, 1, 16, 16), torch.rand(2, 16, 16) > 0.5, torch.tensor([0, 2])
    with fake_cuda():
        model.to(CUDA)
        mask_logits, class_logits = model(images.to(CUDA))  # (2, 1, 16, 16), (2, 3)
        loss = (F.binary_cross_entropy_with_logits(mask_logits[:, 0], masks.to(CUDA).float())
                + F.cross_entropy(class_logits, labels.to(CUDA)))
        assert_on_cuda(model, mask_logits, class_logits, loss)
        assert mask_logits.shape == (2, 1, 16, 16) and class_logits.shape == (2, 3)


def small_cnn(monkeypatch):
    judge = SmallCNN(SmallCNNConfig(in_channels=1, num_classes=10, width=4))  # the judge of Chapters 4 and 7
    crops = crop_classifier(width=4)  # the crop classifier of Chapter 8: one logit
    images, digits = torch.rand(3, 1, 16, 16), torch.tensor([0, 3, 9])
    malignant = torch.tensor([0, 1, 1])
    with fake_cuda():
        judge.to(CUDA)
        logits = judge(images.to(CUDA))  # (3, 10)
        loss = F.cross_entropy(logits, digits.to(CUDA))
        features = judge.features(images.to(CUDA))  # (3, 8)
        assert_on_cuda(judge, logits, loss, features)
        assert logits.shape == (3, 10) and features.shape == (3, 8)
        crops.to(CUDA)
        logit = crops(images.to(CUDA))  # (3,)
        assert_on_cuda(crops, logit)
        assert logit.shape == (3,)
        for kind in ("ce", "weighted", "focal"):
            loss = binary_loss(logit, malignant.to(CUDA), kind, pos_weight=2.0)
            assert_on_cuda(loss)
            assert loss.dim() == 0


MODEL_CASES = {
    "autoencoder.Autoencoder": autoencoder,
    "vae.VAE": vae,
    "unet.ConvBlock": conv_block,
    "unet.UNet": unet,
    "cad.SegmentClassifyUNet": segment_classify_unet,
    "classifier.SmallCNN": small_cnn,
}


def crop_batch(n=6):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 16, 16, generator=g), torch.tensor([0, 1] * (n // 2))


def train_binary_case(monkeypatch, kind="ce"):
    model = crop_classifier(width=4)
    x, y = crop_batch()
    # the weighted loss gets its weight here: its default, N- / N+ counted with int(y.sum()), reads a value,
    # which fake tensors cannot (the count runs on the CPU labels, before any device is involved)
    extra = dict(pos_weight=1.0) if kind == "weighted" else {}
    loss = run_training_path(monkeypatch, lambda: train_binary(model, x, y, kind, steps=2, batch_size=4, device="cuda",
                                                               **extra))
    assert_on_cuda(model)
    return loss


TRAINING_CASES = {
    "cad.train_binary": train_binary_case,
}


@pytest.mark.parametrize("kind", ["weighted", "focal"])
def test_train_binary_with_each_loss_on_fake_cuda(kind, monkeypatch):
    assert train_binary_case(monkeypatch, kind).dim() == 0


def test_fine_tuning_a_frozen_classifier_on_fake_cuda(monkeypatch):
    model = freeze_all_but_norm_and_head(crop_classifier(width=4))  # Chapter 8b: only norms and head train
    x, y = crop_batch()
    run_training_path(monkeypatch, lambda: train_binary(model, x, y, "ce", steps=2, batch_size=4, device="cuda"))
    assert_on_cuda(model)


def test_denoising_autoencoder_trains_through_fit_on_one_device(monkeypatch):
    """Chapter 5's denoising path: fit draws a batch and its noise on the CPU, then moves both."""
    model = Autoencoder(AutoencoderConfig(in_dim=64, latent_dim=4, hidden=(16,)))
    x = torch.rand(10, 64)

    def loss_fn(m, noisy, clean):
        return reconstruction_loss(m(noisy)[0], clean)

    loss = run_training_path(monkeypatch, lambda: train.fit(model, loss_fn, x, steps=2, batch_size=4, device="cuda",
                                                            augment=lambda g, xb: (add_noise(xb, 0.3, g), xb)))
    assert_on_cuda(model)
    assert loss.dim() == 0


def test_inference_helpers_run_on_the_device_and_return_cpu_tensors():
    ae = Autoencoder(AutoencoderConfig(in_dim=64, latent_dim=4, hidden=(16,)))
    unet_ae = UNet(UNetConfig(in_channels=1, out_channels=1, base_width=4, depth=1, skip=False))
    crops = crop_classifier(width=4)
    images = torch.rand(5, 1, 8, 8)
    with fake_cuda():
        errors, scores = anomaly_map(ae, images, flat=True, batch_size=2, device="cuda")
        assert_on_cuda(ae)
        errors2, scores2 = anomaly_map(unet_ae, images, batch_size=2, device="cuda")
        assert_on_cuda(unet_ae)
        p = predict_proba(crops, images, batch_size=2, device="cuda")
        assert_on_cuda(crops)
    for t in (errors, scores, errors2, scores2, p):
        assert t.device.type == "cpu"
    assert errors.shape == errors2.shape == (5, 1, 8, 8) and scores.shape == p.shape == (5,)
