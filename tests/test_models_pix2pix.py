"""pix2pix: U-Net generator, PatchGAN discriminator and its receptive field, the loss, the trainer."""
import pytest
import torch

from course_utils.data.canvas import make_canvas_pairs
from course_utils.models.pix2pix import (
    PatchDiscriminator, Pix2PixConfig, Pix2PixGenerator, pix2pix_generator_loss, receptive_field, train_pix2pix,
)
from course_utils.train import History
from course_utils.models.unet import UNet


def empirical_receptive_field(net, channels, size=96):
    # oracle: the input pixels on which the centre output depends (non-zero gradient), along one axis
    net = net.eval()
    for m in net.modules():  # make every weight positive so no gradient cancels by chance
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.constant_(m.weight, 0.05)
    x = torch.randn(1, channels, size, size, requires_grad=True)
    out = net(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = x.grad.abs().sum((0, 1, 3)).nonzero()
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize("strided", [0, 1, 2, 3])
def test_receptive_field_matches_the_network(strided):
    c = Pix2PixConfig(disc_strided=strided, disc_width=4)
    D = PatchDiscriminator(c)
    assert empirical_receptive_field(D.net, 6) == D.receptive_field


def test_receptive_field_formula():
    assert receptive_field([(4, 2)] * 3 + [(4, 1)] * 2) == 70  # pix2pix's 70x70 PatchGAN
    assert receptive_field([(3, 1)] * 2) == 5
    assert receptive_field([]) == 1
    with pytest.raises(ValueError):
        receptive_field([(0, 1)])


def test_generator_is_the_unet_with_noise_and_sigmoid():
    c = Pix2PixConfig(base_width=4, noise_channels=1)
    G = Pix2PixGenerator(c).eval()
    assert isinstance(G.unet, UNet) and G.unet.config.in_channels == 4
    x = torch.rand(2, 3, 16, 16)
    y = G(x, generator=torch.Generator().manual_seed(0))
    assert y.shape == (2, 3, 16, 16) and 0 <= y.min() and y.max() <= 1
    assert torch.equal(y, G(x, generator=torch.Generator().manual_seed(0)))
    z = torch.zeros(2, 1, 16, 16)
    torch.testing.assert_close(G(x, z=z), torch.sigmoid(G.unet(torch.cat([x, z], 1))))
    with pytest.raises(ValueError, match="sketch"):
        G(torch.rand(2, 4, 16, 16))
    assert Pix2PixGenerator().config == PatchDiscriminator().config == Pix2PixConfig()  # the default config


def test_discriminator_outputs_a_grid_of_patch_logits():
    D = PatchDiscriminator(Pix2PixConfig(disc_strided=1))
    assert D(torch.rand(3, 3, 32, 32), torch.rand(3, 3, 32, 32)).shape == (3, 1, 14, 14)
    with pytest.raises(ValueError):
        D(torch.rand(3, 3, 32, 32), torch.rand(3, 3, 16, 16))


def test_generator_loss_formula():
    logits, fake, target = torch.randn(2, 1, 5, 5), torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    total, adv, l1 = pix2pix_generator_loss(logits, fake, target, lam=7.0)
    torch.testing.assert_close(adv, -torch.log(torch.sigmoid(logits)).mean())
    torch.testing.assert_close(l1, (fake - target).abs().mean())
    torch.testing.assert_close(total, adv + 7.0 * l1)


def test_l1_training_beats_the_sketch():
    data = make_canvas_pairs(64, seed=0)
    torch.manual_seed(0)
    c = Pix2PixConfig(base_width=4, noise_channels=0)
    G, D = Pix2PixGenerator(c), PatchDiscriminator(c)
    history = train_pix2pix(G, D, data["sketch"], data["target"], 40, lam=10.0, batch_size=8, device="cpu")
    assert isinstance(history, History) and history.steps == len(history) == 40
    assert len(history["d_loss"]) == len(history["adv"]) == len(history["l1"]) == 40
    # History.loss is the generator's loss, adversarial + λ L1
    torch.testing.assert_close(torch.tensor(history.loss), torch.tensor(history["adv"]) + 10.0 * torch.tensor(history["l1"]))
    assert not G.training and not D.training
    with torch.no_grad():
        l1 = (G(data["sketch"]) - data["target"]).abs().mean()
    assert l1 < 0.5 * (data["sketch"] - data["target"]).abs().mean()


def test_l1_only_training_records_l1_as_the_loss():
    data = make_canvas_pairs(16, seed=0)
    torch.manual_seed(0)
    G = Pix2PixGenerator(Pix2PixConfig(base_width=4))
    history = train_pix2pix(G, None, data["sketch"], data["target"], 5, batch_size=4, device="cpu")
    assert history.loss == history["l1"] and len(history) == 5 and set(history.logs) == {"l1"}


def test_training_is_seeded():
    data = make_canvas_pairs(16, seed=0)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        c = Pix2PixConfig(base_width=4)
        G, D = Pix2PixGenerator(c), PatchDiscriminator(c)
        runs.append(train_pix2pix(G, D, data["sketch"], data["target"], 3, batch_size=4, seed=3, device="cpu"))
    assert runs[0].loss == runs[1].loss and runs[0]["d_loss"] == runs[1]["d_loss"]
