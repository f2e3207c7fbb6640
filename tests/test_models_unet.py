"""The U-Net of Chapter 5 (pix2pix and Chapter 8 reuse it): shapes, skips, the plain variant, norms."""
import pytest
import torch

from course_utils.models import count_parameters
from course_utils.models.unet import ConvBlock, UNet, UNetConfig


@pytest.mark.parametrize("depth, size", [(1, 8), (2, 16), (3, 32), (4, 32)])
@pytest.mark.parametrize("skip", [True, False])
def test_output_has_the_input_size_and_out_channels(depth, size, skip):
    model = UNet(UNetConfig(in_channels=3, out_channels=5, base_width=4, depth=depth, skip=skip)).eval()
    x = torch.randn(2, 3, size, size)
    assert model(x).shape == (2, 5, size, size)


def test_non_square_inputs():
    model = UNet(UNetConfig(in_channels=1, out_channels=1, base_width=4, depth=2)).eval()
    assert model(torch.randn(1, 1, 16, 24)).shape == (1, 1, 16, 24)


def test_size_not_divisible_is_a_clear_error():
    model = UNet(UNetConfig(depth=3, base_width=4))
    with pytest.raises(ValueError, match="divisible by 2\\*\\*depth = 8"):
        model(torch.randn(1, 1, 20, 20))


def test_config_validation():
    with pytest.raises(ValueError, match="norm"):
        UNetConfig(norm="layer")
    with pytest.raises(ValueError):
        UNetConfig(depth=0)


def test_widths_double_per_level():
    c = UNetConfig(base_width=16, depth=3)
    model = UNet(c)
    assert [block[0].out_channels for block in model.encoder] == [16, 32, 64]
    assert model.bottleneck[0].out_channels == 128
    assert [block[0].in_channels for block in model.decoder] == [32, 64, 128]  # 2 * width: up + skip


def test_plain_variant_has_same_blocks_and_at_least_as_many_parameters():
    c = dict(in_channels=3, out_channels=4, base_width=8, depth=3)
    unet, plain = UNet(UNetConfig(**c)), UNet(UNetConfig(**c, skip=False))
    for a, b in zip(unet.decoder, plain.decoder):
        assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]
    assert count_parameters(plain) >= count_parameters(unet)


def test_skip_connections_carry_fine_detail_past_the_bottleneck():
    # Changing one input pixel changes the output near that pixel through the skip path even when the
    # bottleneck path is cut (decoder's up-sampling zeroed) -- and not at all in the plain variant.
    torch.manual_seed(0)
    for skip, expect_change in ((True, True), (False, False)):
        model = UNet(UNetConfig(in_channels=1, out_channels=1, base_width=4, depth=2, norm="none", skip=skip)).eval()
        with torch.no_grad():
            for up in model.up:
                up.weight.zero_()
                up.bias.zero_()
            x = torch.randn(1, 1, 16, 16)
            y = x.clone()
            y[0, 0, 8, 8] += 5.0
            changed = (model(x) - model(y)).abs().amax() > 1e-6
        assert bool(changed) == expect_change


def test_unet_is_the_concat_of_up_and_skip_on_channels():
    # forward = the documented equations: d_l = block(cat[up(d_{l+1}), e_l]); rebuild it by hand
    torch.manual_seed(0)
    m = UNet(UNetConfig(in_channels=2, out_channels=3, base_width=4, depth=2, norm="group")).eval()
    x = torch.randn(2, 2, 16, 16)
    e0 = m.encoder[0](x)
    e1 = m.encoder[1](m.pool(e0))
    b = m.bottleneck(m.pool(e1))
    d1 = m.decoder[1](torch.cat([m.up[1](b), e1], dim=1))
    d0 = m.decoder[0](torch.cat([m.up[0](d1), e0], dim=1))
    torch.testing.assert_close(m(x), m.head(d0))


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_norms_and_gradients(norm):
    model = UNet(UNetConfig(in_channels=1, out_channels=2, base_width=4, depth=2, norm=norm))
    model(torch.randn(2, 1, 8, 8)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_conv_block_keeps_size():
    assert ConvBlock(3, 7)(torch.randn(1, 3, 9, 11)).shape == (1, 7, 9, 11)


def test_overfits_one_segmentation_batch():
    torch.manual_seed(0)
    x = torch.rand(4, 1, 16, 16)
    target = (x > 0.5).long()[:, 0]  # (B, H, W): a per-pixel rule
    model = UNet(UNetConfig(in_channels=1, out_channels=2, base_width=4, depth=2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(model(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert (model(x).argmax(1) == target).float().mean() > 0.95


def test_crop_and_concat_centre_crops_and_passes_the_exercise_check():
    from course_utils.exercises import run_check
    from course_utils.models.unet import crop_and_concat
    up, skip = torch.randn(2, 3, 5, 6), torch.arange(2 * 4 * 8 * 9.0).reshape(2, 4, 8, 9)
    out = crop_and_concat(up, skip)
    assert out.shape == (2, 7, 5, 6)
    assert torch.equal(out[:, :3], up) and torch.equal(out[:, 3:], skip[:, :, 1:6, 1:7])  # (8-5)//2, (9-6)//2
    assert run_check("autoencoders.crop_and_concat", crop_and_concat).passed
    with pytest.raises(ValueError, match="at least as large"):
        crop_and_concat(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 4, 4))
