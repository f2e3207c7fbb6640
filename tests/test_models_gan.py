"""DCGAN generator and discriminator, the GAN losses and the two training steps."""
import pytest
import torch

from course_utils.models.gan import (
    GANConfig, build_gan, discriminator_loss, discriminator_step, generator_loss, generator_step,
    saturating_generator_loss, train_gan, adam_pair,
)
from course_utils.train import History


@pytest.mark.parametrize("size", [8, 16, 32])
@pytest.mark.parametrize("classes", [0, 10])
def test_shapes_and_range(size, classes):
    c = GANConfig(image_size=size, channels=3, latent_dim=8, width=8, num_classes=classes)
    G, D = build_gan(c)
    y = torch.arange(5) % 10 if classes else None
    x = G(torch.randn(5, 8), y)
    assert x.shape == (5, 3, size, size)
    assert x.abs().max() <= 1  # tanh output
    assert D(x, y).shape == (5,)


def test_config_and_label_errors():
    with pytest.raises(ValueError, match="power of two"):
        GANConfig(image_size=24)
    G, D = build_gan(GANConfig(num_classes=10))
    with pytest.raises(ValueError, match="conditional"):
        G(torch.randn(2, 32))
    with pytest.raises(ValueError, match="labels"):
        G(torch.randn(2, 32), torch.tensor([0, 10]))
    G0, D0 = build_gan(GANConfig())
    with pytest.raises(ValueError, match="unconditional"):
        D0(torch.randn(2, 1, 16, 16), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="shape"):
        D0(torch.randn(2, 1, 8, 8))
    with pytest.raises(ValueError, match="z must"):
        G0(torch.randn(2, 5))


def test_losses_equal_their_formulas():
    lr, lf = torch.randn(7), torch.randn(5)
    D = torch.sigmoid
    expected_d = -torch.log(D(lr)).mean() - torch.log(1 - D(lf)).mean()
    torch.testing.assert_close(discriminator_loss(lr, lf), expected_d)
    torch.testing.assert_close(generator_loss(lf), -torch.log(D(lf)).mean())
    torch.testing.assert_close(saturating_generator_loss(lf), torch.log(1 - D(lf)).mean())


def test_non_saturating_gradient_is_strong_where_the_saturating_one_vanishes():
    l = torch.tensor([-8.0], requires_grad=True)
    (g_ns,) = torch.autograd.grad(generator_loss(l), l)
    (g_sat,) = torch.autograd.grad(saturating_generator_loss(l), l)
    assert g_ns.abs() > 0.99 and g_sat.abs() < 1e-3
    assert torch.sign(g_ns) == torch.sign(g_sat)  # both push the logit up


def _params(m):
    return [p.detach().clone() for p in m.parameters()]


def test_discriminator_step_leaves_the_generator_alone_and_vice_versa():
    torch.manual_seed(0)
    G, D = build_gan(GANConfig(image_size=8, width=8, latent_dim=4))
    opt_G, opt_D = adam_pair(G, D)
    real, z = torch.rand(6, 1, 8, 8) * 2 - 1, torch.randn(6, 4)
    g0, d0 = _params(G), _params(D)
    discriminator_step(G, D, opt_D, real, z)
    assert all(p.grad is None for p in G.parameters())  # G got no gradient at all
    assert all(torch.equal(a, b) for a, b in zip(g0, _params(G)))
    assert not all(torch.equal(a, b) for a, b in zip(d0, _params(D)))
    d1 = _params(D)
    D.eval()  # batch-norm statistics aside, D's weights must not move in the generator step
    D.zero_grad(set_to_none=True)
    generator_step(G, D, opt_G, z)
    assert all(p.grad is None for p in D.parameters())
    assert all(torch.equal(a, b) for a, b in zip(d1, _params(D)))
    assert not all(torch.equal(a, b) for a, b in zip(g0, _params(G)))
    assert all(p.requires_grad for p in D.parameters())  # unfrozen again


def test_conditional_gan_learns_a_class_dependent_constant():
    # class 0: a dark image, class 1: a bright one; the conditional generator must follow the label
    torch.manual_seed(0)
    images = torch.cat([-torch.ones(64, 1, 8, 8), torch.ones(64, 1, 8, 8)]) * 0.8
    labels = torch.cat([torch.zeros(64), torch.ones(64)]).long()
    G, D = build_gan(GANConfig(image_size=8, width=8, latent_dim=4, num_classes=2))
    history = train_gan(G, D, images, 150, labels=labels, batch_size=32, lr=2e-3, device="cpu")
    assert isinstance(history, History) and history.steps == 150
    assert len(history["d_loss"]) == len(history["g_loss"]) == 150 and history.loss == history["g_loss"]
    assert not G.training and not D.training
    y = torch.tensor([0] * 16 + [1] * 16)
    x = G.sample(32, torch.Generator().manual_seed(0), y=y)
    assert x[:16].mean() < -0.3 and x[16:].mean() > 0.3


def test_sample_is_seeded_and_keeps_the_mode():
    G, _ = build_gan(GANConfig(image_size=8, width=8))
    G.train()
    a = G.sample(4, torch.Generator().manual_seed(1))
    b = G.sample(4, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and G.training


def test_train_gan_is_the_two_steps_written_out():
    """Same draws (real batch, then two batches of noise, from one generator), same optimisers:
    train_gan and the loop it wraps agree exactly -- losses, weights, and the callback's steps."""
    images = torch.rand(40, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    config = GANConfig(image_size=8, width=8, latent_dim=4)
    torch.manual_seed(0)
    G, D = build_gan(config)
    G2, D2 = build_gan(config)
    G2.load_state_dict(G.state_dict())
    D2.load_state_dict(D.state_dict())

    opt_G, opt_D = adam_pair(G, D, lr=1e-3)
    g = torch.Generator().manual_seed(5)
    d_losses, g_losses = [], []
    G.train()
    D.train()
    for _ in range(6):
        real = images[torch.randint(len(images), (16,), generator=g)]
        d_losses.append(discriminator_step(G, D, opt_D, real, torch.randn(16, 4, generator=g)))
        g_losses.append(generator_step(G, D, opt_G, torch.randn(16, 4, generator=g)))

    seen = []
    history = train_gan(G2, D2, images, 6, batch_size=16, lr=1e-3, seed=5, callback=seen.append, device="cpu")
    assert seen == list(range(7))  # before step 0 and after every step
    assert history["d_loss"] == pytest.approx(d_losses, rel=1e-6) and history.loss == pytest.approx(g_losses, rel=1e-6)
    for a, b in zip(list(G.parameters()) + list(D.parameters()), list(G2.parameters()) + list(D2.parameters())):
        torch.testing.assert_close(a, b)


def test_train_gan_honours_the_step_cap(monkeypatch):
    monkeypatch.setenv("COURSE_MAX_STEPS", "3")
    G, D = build_gan(GANConfig(image_size=8, width=8, latent_dim=4))
    history = train_gan(G, D, torch.rand(10, 1, 8, 8) * 2 - 1, 100, batch_size=4, device="cpu")
    assert history.steps == len(history["d_loss"]) == 3
    with pytest.raises(ValueError, match="images"):
        train_gan(G, D, torch.rand(10, 64), 2)


def test_train_gan_takes_the_exercise_form_of_the_losses():
    """A learner's losses of the form d_loss(D, real, fake), g_loss(D, fake) train exactly as the package's."""
    import torch.nn.functional as F

    from course_utils.models.gan import train_gan

    def my_d_loss(D, real, fake):
        return F.softplus(-D(real)).mean() + F.softplus(D(fake.detach())).mean()

    def my_g_loss(D, fake):
        return F.softplus(-D(fake)).mean()

    images = torch.rand(32, 1, 16, 16) * 2 - 1
    histories = []
    for losses in ({}, {"d_loss": my_d_loss, "g_loss": my_g_loss}):
        torch.manual_seed(0)
        G, D = build_gan(GANConfig(image_size=16, latent_dim=8, width=8))
        histories.append(train_gan(G, D, images, 3, batch_size=8, seed=0, device="cpu", **losses))
    assert histories[0]["d_loss"] == pytest.approx(histories[1]["d_loss"], rel=1e-5)
    assert histories[0]["g_loss"] == pytest.approx(histories[1]["g_loss"], rel=1e-5)
