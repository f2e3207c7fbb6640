"""Oracle and unit tests of course_utils.models.vit.

Oracles: the patch embedding (a strided Conv2d) equals a Linear on patchified pixels;
the ViT equals ``torchvision.models.VisionTransformer`` with copied weights; attention rollout
equals a hand computation; MAE's loss only sees masked patches.
"""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_utils.models.transformer import TransformerEncoder
from course_utils.models.vit import (
    MAEConfig,
    MaskedAutoencoder,
    PatchEmbedding,
    ViTConfig,
    VisionTransformer,
    attention_rollout,
    patchify,
    random_masking,
    to_torchvision,
    unpatchify,
)


def small_config(**kw):
    base = dict(image_size=16, patch_size=4, in_channels=3, n_classes=5, d_model=32, n_heads=4, n_layers=2)
    base.update(kw)
    return ViTConfig(**base)


def test_patchify_layout_and_inverse():
    x = torch.arange(2 * 3 * 8 * 12, dtype=torch.float64).reshape(2, 3, 8, 12)
    p = patchify(x, 4)
    assert p.shape == (2, 6, 48)
    # patch 1 is the square right of the top-left one, flattened as (C, p, p)
    torch.testing.assert_close(p[1, 1], x[1, :, 0:4, 4:8].reshape(-1))
    torch.testing.assert_close(p[0, 3], x[0, :, 4:8, 0:4].reshape(-1))  # second row of patches
    torch.testing.assert_close(unpatchify(p, 4, 3, grid=(2, 3)), x)


def test_patch_embedding_conv_equals_linear_on_patches():
    torch.manual_seed(0)
    config = small_config()
    embed = PatchEmbedding(config).double()
    x = torch.randn(3, 3, 16, 16, dtype=torch.float64)
    by_conv = embed(x)  # (B, N, D)
    by_linear = embed.as_linear()(patchify(x, 4))
    assert by_conv.shape == (3, 16, 32)
    torch.testing.assert_close(by_conv, by_linear, atol=1e-12, rtol=0)
    # and against a hand-written matmul of the flattened filters
    manual = patchify(x, 4) @ embed.proj.weight.flatten(1).T + embed.proj.bias
    torch.testing.assert_close(by_conv, manual, atol=1e-12, rtol=0)


def test_vit_reuses_chapter_one_encoder_and_shapes():
    config = small_config()
    model = VisionTransformer(config)
    assert isinstance(model.encoder, TransformerEncoder)
    x = torch.rand(2, 3, 16, 16)
    assert model.embed(x).shape == (2, 17, 32)
    logits, attentions = model(x, return_attention=True)
    assert logits.shape == (2, 5)
    assert len(attentions) == 2 and attentions[0].shape == (2, 4, 17, 17)
    torch.testing.assert_close(attentions[0].sum(-1), torch.ones(2, 4, 17))


def test_vit_encoder_output_equals_reference_computation():
    torch.manual_seed(1)
    model = VisionTransformer(small_config()).double().eval()
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    # reference: conv -> cls + pos -> blocks one by one -> final norm
    z = model.patch_embed.proj(x).flatten(2).transpose(1, 2)
    z = torch.cat([model.cls_token.expand(2, -1, -1), z], dim=1) + model.pos_embed
    for block in model.encoder.blocks:
        z = block(z)[0]
    z = model.encoder.final_norm(z)
    torch.testing.assert_close(model.features(x), z, atol=1e-12, rtol=0)
    torch.testing.assert_close(model(x), model.head(z[:, 0]), atol=1e-12, rtol=0)


@pytest.mark.parametrize("n_layers,mlp_ratio", [(1, 4.0), (3, 2.0)])
def test_vit_equals_torchvision_with_copied_weights(n_layers, mlp_ratio):
    torch.manual_seed(2)
    model = VisionTransformer(small_config(n_layers=n_layers, mlp_ratio=mlp_ratio)).double().eval()
    for module in model.modules():
        if isinstance(module, nn.LayerNorm):
            module.eps = 1e-6  # torchvision's eps
    with torch.no_grad():  # non-trivial values everywhere (head and biases start at ~0)
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    reference = to_torchvision(model).double().eval()
    x = torch.rand(3, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), atol=1e-10, rtol=0)


def test_vit_and_torchvision_gradients_match_in_training_mode():
    torch.manual_seed(3)
    model = VisionTransformer(small_config()).double().train()
    for module in model.modules():
        if isinstance(module, nn.LayerNorm):
            module.eps = 1e-6
    reference = to_torchvision(model).double().train()
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    y = torch.tensor([0, 3])
    F.cross_entropy(model(x), y).backward()
    F.cross_entropy(reference(x), y).backward()
    torch.testing.assert_close(model.patch_embed.proj.weight.grad, reference.conv_proj.weight.grad, atol=1e-10, rtol=0)
    torch.testing.assert_close(model.pos_embed.grad, reference.encoder.pos_embedding.grad, atol=1e-10, rtol=0)


def test_attention_rollout_hand_case():
    # two layers, one head, two tokens
    a1 = torch.tensor([[[[1.0, 0.0], [0.5, 0.5]]]])  # (1, 1, 2, 2)
    a2 = torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]]])
    # Â = (A + I)/2 (rows already sum to 1): Â1 = [[1, 0], [.25, .75]], Â2 = [[.5, .5], [.5, .5]]
    expected = torch.tensor([[0.5, 0.5], [0.5, 0.5]]) @ torch.tensor([[1.0, 0.0], [0.25, 0.75]])
    torch.testing.assert_close(attention_rollout([a1, a2])[0], expected)
    # without the residual term: the plain product of the attentions
    torch.testing.assert_close(attention_rollout([a1, a2], residual=False)[0], a2[0, 0] @ a1[0, 0])
    # heads are averaged first
    two_heads = torch.cat([a1, a2], dim=1)  # (1, 2, 2, 2)
    mean = (a1 + a2) / 2
    torch.testing.assert_close(attention_rollout([two_heads]), attention_rollout([mean]))


def test_attention_rollout_rows_are_distributions():
    model = VisionTransformer(small_config(n_layers=3)).eval()
    _, attentions = model(torch.rand(2, 3, 16, 16), return_attention=True)
    r = attention_rollout(attentions)
    assert r.shape == (2, 17, 17) and (r >= 0).all()
    torch.testing.assert_close(r.sum(-1), torch.ones(2, 17))


def test_random_masking_is_per_sample_and_exact():
    keep, mask = random_masking(64, 16, 0.75, generator=torch.Generator().manual_seed(0))
    assert keep.shape == (64, 4) and mask.shape == (64, 16) and mask.dtype == torch.bool
    assert (mask.sum(1) == 12).all()
    assert len({tuple(m.tolist()) for m in mask}) > 32
    for b in range(64):
        assert sorted(keep[b].tolist()) == (~mask[b]).nonzero().flatten().tolist()
    again = random_masking(64, 16, 0.75, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again[1], mask)


def test_mae_shapes_and_loss_only_on_masked_patches():
    torch.manual_seed(4)
    vit = VisionTransformer(small_config())
    mae = MaskedAutoencoder(vit, MAEConfig(mask_ratio=0.75, decoder_dim=16))
    x = torch.rand(3, 3, 16, 16)
    loss, pred, mask = mae(x, generator=torch.Generator().manual_seed(0))
    assert pred.shape == (3, 16, 48) and mask.shape == (3, 16) and (mask.sum(1) == 12).all()
    target = patchify(x, 4)
    expected = ((pred - target) ** 2).mean(-1)[mask].mean()
    torch.testing.assert_close(loss, expected)
    # changing the pixels of masked patches does not change what the encoder sees, hence the prediction
    keep = (~mask).nonzero()
    noisy = target.clone()
    noisy[mask] = torch.rand_like(noisy[mask])
    _, pred2, _ = mae(unpatchify(noisy, 4, 3), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(pred2, pred)
    assert len(keep) == 12


def test_mae_uses_the_given_masking_function():
    calls = []

    def masking(B, N, ratio, generator=None):
        calls.append((B, N, ratio))
        return random_masking(B, N, ratio, generator=generator)

    mae = MaskedAutoencoder(VisionTransformer(small_config()), MAEConfig(mask_ratio=0.5), masking=masking)
    mae(torch.rand(2, 3, 16, 16))
    assert calls == [(2, 16, 0.5)]


def test_config_rejects_indivisible_patch():
    with pytest.raises(ValueError, match="multiple of patch_size"):
        ViTConfig(image_size=15, patch_size=4)
