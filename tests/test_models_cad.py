"""The CAD pieces: the crop classifier, the three losses (oracles), the trainer, the U-Net + head
wrapper, the fine-tuning freeze, and the anomaly map."""
import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss as tv_focal

from course_utils.models.autoencoder import Autoencoder, AutoencoderConfig
from course_utils.models.cad import (SegmentClassifyUNet, anomaly_map, binary_loss, crop_classifier,
                                     freeze_all_but_norm_and_head, predict_proba, train_binary)
from course_utils.models.classifier import SmallCNN
from course_utils.models.unet import UNet, UNetConfig
from course_utils.train import History


def test_crop_classifier_is_the_small_cnn_with_one_logit():
    m = crop_classifier(width=4, dropout=0.2)
    assert isinstance(m, SmallCNN) and m.config.num_classes == 1 and m.config.width == 4 and m.config.dropout == 0.2
    assert m(torch.randn(5, 1, 16, 16)).shape == (5,)  # one logit per crop
    assert crop_classifier(width=4, in_channels=3)(torch.randn(2, 3, 24, 24)).shape == (2,)


def test_losses_match_the_library():
    g = torch.Generator().manual_seed(0)
    z, y = torch.randn(50, generator=g), (torch.rand(50, generator=g) < 0.2).float()
    torch.testing.assert_close(binary_loss(z, y, "ce"), F.binary_cross_entropy_with_logits(z, y))
    # weighted: −[w y log p + (1 − y) log(1 − p)], written out by hand
    p = torch.sigmoid(z)
    by_hand = -(3.0 * y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
    torch.testing.assert_close(binary_loss(z, y, "weighted", pos_weight=3.0), by_hand)
    torch.testing.assert_close(binary_loss(z, y, "focal", alpha=0.75, gamma=2.0),
                               tv_focal(z, y, alpha=0.75, gamma=2.0, reduction="mean"))
    with pytest.raises(ValueError, match="kind"):
        binary_loss(z, y, "hinge")


def test_train_binary_learns_a_separable_problem():
    g = torch.Generator().manual_seed(0)
    y = (torch.rand(200, generator=g) < 0.3).long()
    x = torch.randn(200, 1, 8, 8, generator=g) * 0.1 + y[:, None, None, None].float()  # bright = positive
    torch.manual_seed(0)
    m = crop_classifier(width=4)
    history = train_binary(m, x, y, "weighted", steps=60, seed=0)
    assert isinstance(history, History) and len(history.loss) == history.steps == 60
    assert history.mean(last=10) < history.mean(first=10)
    assert not m.training  # left in eval mode
    acc = ((predict_proba(m, x) > 0.5).long() == y).float().mean()
    assert acc > 0.95
    with pytest.raises(ValueError, match="labels"):
        train_binary(m, x, y[:5])
    with pytest.raises(ValueError, match="kind"):
        train_binary(m, x, y, "hinge")


def test_train_binary_is_reproducible_and_flips_only_when_asked():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(40, 1, 8, 8, generator=g), (torch.rand(40, generator=g) < 0.5).long()
    runs = []
    for augment in (True, True, False):
        torch.manual_seed(0)
        runs.append(train_binary(crop_classifier(width=4), x, y, steps=5, seed=3, augment=augment).loss)
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_segment_classify_unet_uses_the_package_unet():
    torch.manual_seed(0)
    cfg = UNetConfig(in_channels=1, out_channels=1, base_width=4, depth=2)
    net = SegmentClassifyUNet(cfg, n_classes=3)
    x = torch.randn(2, 1, 16, 16)
    masks, logits = net(x)
    assert masks.shape == (2, 1, 16, 16) and logits.shape == (2, 3)
    # the mask branch is exactly the wrapped UNet
    net.eval()
    torch.testing.assert_close(net(x)[0], net.unet(x))
    # the head reads the bottleneck: its features at 16 / 2**2 = 4 x 4, width 4 * 2**2 = 16
    captured = {}
    net.unet.bottleneck.register_forward_hook(lambda m, i, o: captured.setdefault("b", o))
    _, logits = net(x)
    assert captured["b"].shape == (2, 16, 4, 4)
    torch.testing.assert_close(logits, net.classifier(captured["b"].mean((-2, -1))))
    logits.sum().backward()
    assert net.unet.encoder[0][0].weight.grad is not None  # the class loss reaches the encoder


def test_freeze_all_but_norm_and_head():
    m = freeze_all_but_norm_and_head(crop_classifier(width=4))
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    norms = {n for mod_name, mod in m.named_modules() if isinstance(mod, torch.nn.BatchNorm2d)
             for n in (f"{mod_name}.weight", f"{mod_name}.bias")}
    assert trainable == norms | {"head.1.weight", "head.1.bias"}
    assert not any(p.requires_grad for mod in m.modules() if isinstance(mod, torch.nn.Conv2d) for p in mod.parameters())
    with pytest.raises(ValueError, match="nothing would be trained"):
        freeze_all_but_norm_and_head(torch.nn.Linear(2, 2), head="none")


def test_anomaly_map_scores_the_unusual_image_higher():
    ae = UNet(UNetConfig(in_channels=1, out_channels=1, base_width=4, depth=1))
    ae.head.weight.data.zero_()
    ae.head.bias.data.fill_(0.5)  # always reconstructs 0.5 everywhere
    x = torch.full((2, 1, 8, 8), 0.5)
    x[1, 0, 2:4, 2:4] = 1.0  # a bright spot
    err, score = anomaly_map(ae, x, smooth=1, top=4)
    assert err.shape == x.shape and torch.allclose(err[1, 0, 2:4, 2:4], torch.full((2, 2), 0.25))
    assert score[0] == 0 and score[1] == pytest.approx(0.25)
    flat = Autoencoder(AutoencoderConfig(in_dim=64, latent_dim=2, hidden=()))
    assert anomaly_map(flat, x, flat=True)[0].shape == x.shape


def test_anomaly_map_in_chunks_equals_one_batch():
    torch.manual_seed(0)
    ae = UNet(UNetConfig(in_channels=1, out_channels=1, base_width=4, depth=1, skip=False)).eval()
    x = torch.rand(7, 1, 8, 8)
    whole, chunked = anomaly_map(ae, x, batch_size=7), anomaly_map(ae, x, batch_size=3)
    for a, b in zip(whole, chunked):
        torch.testing.assert_close(a, b)
    assert whole[0].device.type == "cpu" and whole[1].shape == (7,)


def test_train_binary_takes_a_loss_function():
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(40, 1, 8, 8, generator=g), (torch.rand(40, generator=g) < 0.3).long()
    runs = []
    for kind in ("focal", lambda z, t, **kw: binary_loss(z, t, "focal", **kw)):  # the same loss, two ways
        torch.manual_seed(0)
        m = crop_classifier(width=4)
        runs.append(train_binary(m, x, y, kind, steps=5, seed=0, alpha=0.75, gamma=2.0).loss)
    assert runs[0] == runs[1]
