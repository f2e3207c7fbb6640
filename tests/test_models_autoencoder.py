"""Autoencoders and the VAE: shapes, the linear case, penalties, the reparameterisation trick, the loss."""
import math

import pytest
import torch
import torch.nn.functional as F

from course_utils.models.autoencoder import (
    Autoencoder, AutoencoderConfig, active_fraction, add_noise, kl_sparsity, l1_activity, reconstruction_loss,
)
from course_utils.models.vae import VAE, VAEConfig, kl_divergence, reparameterize, vae_loss


def test_shapes_deep_and_linear():
    deep = Autoencoder(AutoencoderConfig(in_dim=64, latent_dim=3, hidden=(32, 16)))
    x_hat, z = deep(torch.rand(5, 64))
    assert x_hat.shape == (5, 64) and z.shape == (5, 3)
    linear = Autoencoder(AutoencoderConfig(in_dim=10, latent_dim=2, hidden=(), activation=None))
    assert [type(m).__name__ for m in linear.encoder] == ["Linear"]
    assert [type(m).__name__ for m in linear.decoder] == ["Linear"]


def test_linear_autoencoder_is_affine():
    torch.manual_seed(0)
    m = Autoencoder(AutoencoderConfig(in_dim=6, latent_dim=2, hidden=(), activation=None))
    a, b = torch.randn(1, 6), torch.randn(1, 6)
    f = lambda x: m(x)[0]
    torch.testing.assert_close(f(0.3 * a + 0.7 * b), 0.3 * f(a) + 0.7 * f(b))


def test_code_and_output_activations():
    m = Autoencoder(AutoencoderConfig(in_dim=8, latent_dim=20, hidden=(), activation=None,
                                      code_activation="relu", out_activation="sigmoid"))
    x_hat, z = m(torch.randn(16, 8))
    assert (z >= 0).all() and ((x_hat > 0) & (x_hat < 1)).all()


def test_linear_autoencoder_learns_the_pca_subspace():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(10, 2, generator=g))[0]  # (10, 2)
    x = torch.randn(400, 2, generator=g) * torch.tensor([3.0, 2.0]) @ basis.T + 0.05 * torch.randn(400, 10, generator=g)
    m = Autoencoder(AutoencoderConfig(in_dim=10, latent_dim=2, hidden=(), activation=None))
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(600):
        loss = reconstruction_loss(m(x)[0], x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    q = torch.linalg.qr(m.decoder[0].weight.detach())[0]
    assert torch.linalg.svdvals(q.T @ basis).min() > 0.99


def test_reconstruction_loss_sums_features_and_averages_batch():
    x, x_hat = torch.zeros(4, 3), torch.ones(4, 3)
    assert reconstruction_loss(x_hat, x).item() == 3.0


def test_add_noise_is_seeded_and_clipped():
    x = torch.full((100, 8), 0.5)
    a = add_noise(x, 0.3, torch.Generator().manual_seed(0))
    b = add_noise(x, 0.3, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1 and not torch.equal(a, x)
    raw = add_noise(x, 0.3, torch.Generator().manual_seed(0), clip=False)
    assert abs((raw - x).std().item() - 0.3) < 0.03


def test_sparsity_penalties():
    z = torch.tensor([[1.0, -2.0, 0.0], [0.0, 0.0, 3.0]])
    assert l1_activity(z).item() == 3.0  # (3 + 3) / 2
    assert active_fraction(z) == pytest.approx(0.5)
    rho = 0.1
    assert kl_sparsity(torch.full((5, 4), rho), rho).abs().item() < 1e-6  # at the target rate: 0
    assert kl_sparsity(torch.full((5, 4), 0.5), rho).item() > 0


def test_reparameterize_uses_the_generator_and_has_gradients():
    mu = torch.randn(3, 2, requires_grad=True)
    logvar = torch.randn(3, 2, requires_grad=True)
    z = reparameterize(mu, logvar, torch.Generator().manual_seed(1))
    eps = torch.randn(3, 2, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(z, mu + torch.exp(0.5 * logvar) * eps)
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones(3, 2))
    assert logvar.grad.abs().sum() > 0


def test_reparameterize_statistics():
    mu, logvar = torch.full((50_000, 1), -1.0), torch.full((50_000, 1), math.log(4.0))  # sigma = 2
    z = reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    assert abs(z.mean().item() + 1.0) < 0.05 and abs(z.std().item() - 2.0) < 0.05


def test_kl_closed_form_against_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(4, 3), torch.ones(4, 3))
    torch.testing.assert_close(kl_divergence(mu, logvar), torch.distributions.kl_divergence(q, p).sum(1))
    assert kl_divergence(torch.zeros(2, 3), torch.zeros(2, 3)).abs().max() == 0


def test_vae_loss_parts():
    g = torch.Generator().manual_seed(0)
    logits, x = torch.randn(3, 5, generator=g), torch.rand(3, 5, generator=g)
    mu, logvar = torch.randn(3, 2, generator=g), torch.randn(3, 2, generator=g)
    loss, recon, kl = vae_loss(logits, x, mu, logvar)
    torch.testing.assert_close(recon, F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / 3)
    torch.testing.assert_close(loss, recon + kl)
    torch.testing.assert_close(vae_loss(logits, x, mu, logvar, beta=0.5)[0], recon + 0.5 * kl)


def test_vae_shapes_eval_is_deterministic_and_samples():
    torch.manual_seed(0)
    vae = VAE(VAEConfig(in_dim=64, latent_dim=2, hidden=(16, 8)))
    x = torch.rand(4, 64)
    logits, mu, logvar = vae(x, torch.Generator().manual_seed(0))
    assert logits.shape == (4, 64) and mu.shape == logvar.shape == (4, 2)
    vae.eval()
    torch.testing.assert_close(vae(x)[0], vae(x)[0])
    s = vae.sample(6, torch.Generator().manual_seed(0))
    assert s.shape == (6, 64) and ((s >= 0) & (s <= 1)).all()


def test_package_references_pass_the_exercise_checks():
    from course_utils.exercises import run_check
    from course_utils.metrics import dice
    from course_utils.models.vae import negative_elbo, reparameterize
    assert run_check("autoencoders.reparameterize", reparameterize).passed
    assert run_check("autoencoders.vae_loss", negative_elbo).passed
    assert run_check("autoencoders.dice", dice).passed
