"""Oracle tests of course_utils.models.attention and .transformer against torch's own modules.

Oracles: ``F.scaled_dot_product_attention``, ``nn.MultiheadAttention(batch_first=True)`` and
``nn.TransformerEncoderLayer(batch_first=True, activation="gelu")`` with copied weights.
Mind the conventions: our masks say ``True`` = may attend, torch's bool ``attn_mask`` says
``True`` = may NOT attend; both ``key_padding_mask`` say ``True`` = padding.
"""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_utils.models import (
    EncoderBlock,
    EncoderConfig,
    MultiHeadSelfAttention,
    TransformerEncoder,
    attention_probabilities,
    causal_mask,
    combine_masks,
    count_parameters,
    from_torch_mha,
    to_torch_encoder_layer,
    to_torch_mha,
)

B, T, C, H = 3, 7, 16, 4
ATOL = 1e-10  # float64 everywhere unless a test says otherwise


def make_generator(seed=0):
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=make_generator(seed), dtype=dtype)


def random_mask(*shape, seed=0):
    """A random bool mask (True = may attend) with at least one allowed key per row."""
    mask = torch.rand(*shape, generator=make_generator(seed)) > 0.5
    mask[..., 0] = True
    return mask


def padding_mask():
    """(B, T) bool, True = padding: sequence 0 full, 1 and 2 padded at the end."""
    lengths = torch.tensor([T, T - 2, 3])
    return torch.arange(T)[None, :] >= lengths[:, None]


# --------------------------------------------------------------------------------------------
# attention_probabilities vs F.scaled_dot_product_attention
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mask_shape", [None, (T, T), (B, 1, T, T), (B, H, T, T), (B, 1, 1, T)])
def test_probabilities_times_v_equals_sdpa(mask_shape):
    q, k, v = randn(B, H, T, 8, seed=1), randn(B, H, T, 8, seed=2), randn(B, H, T, 8, seed=3)
    mask = None if mask_shape is None else random_mask(*mask_shape, seed=4)
    probs = attention_probabilities(q, k, mask)
    assert probs.shape == (B, H, T, T)
    torch.testing.assert_close(probs.sum(-1), torch.ones(B, H, T, dtype=q.dtype), atol=ATOL, rtol=0)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(probs @ v, expected, atol=ATOL, rtol=0)
    if mask is not None:
        assert (probs.masked_select(~mask.expand_as(probs)) == 0).all()


def test_probabilities_causal_equals_sdpa_is_causal():
    q, k, v = randn(B, H, T, 8, seed=1), randn(B, H, T, 8, seed=2), randn(B, H, T, 8, seed=3)
    mask = causal_mask(T)
    assert torch.equal(mask, torch.tril(torch.ones(T, T, dtype=torch.bool)))
    probs = attention_probabilities(q, k, mask)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(probs @ v, expected, atol=ATOL, rtol=0)
    assert (probs.triu(diagonal=1) == 0).all()  # nobody looks into the future


def test_probabilities_custom_scale_and_cross_lengths():
    q, k, v = randn(2, 5, 8, seed=1), randn(2, 9, 8, seed=2), randn(2, 9, 3, seed=3)  # Tq != Tk
    mask = random_mask(5, 9, seed=4)
    for scale in (0.1, 1.0, 2.5):
        probs = attention_probabilities(q, k, mask, scale=scale)
        expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
        torch.testing.assert_close(probs @ v, expected, atol=ATOL, rtol=0)


def test_probabilities_float32_within_1e5():
    q, k, v = (randn(B, H, T, 8, seed=s, dtype=torch.float32) for s in (1, 2, 3))
    mask = random_mask(T, T, seed=4)
    probs = attention_probabilities(q, k, mask)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(probs @ v, expected, atol=1e-5, rtol=1e-5)


def test_fully_masked_row_gives_zeros_like_sdpa_and_no_nan_gradient():
    q = randn(1, 1, 4, 8, seed=1).requires_grad_()
    k = randn(1, 1, 4, 8, seed=2).requires_grad_()
    v = randn(1, 1, 4, 8, seed=3)
    mask = torch.ones(4, 4, dtype=torch.bool)
    mask[2] = False  # query 2 may attend to nothing
    probs = attention_probabilities(q, k, mask)
    assert torch.equal(probs[0, 0, 2], torch.zeros(4, dtype=probs.dtype))
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(probs @ v, expected, atol=ATOL, rtol=0)  # sdpa: zeros as well
    (probs @ v).sum().backward()
    assert torch.isfinite(q.grad).all() and torch.isfinite(k.grad).all()


def test_combine_masks():
    kpm = padding_mask()
    causal = causal_mask(T)
    assert combine_masks() is None
    assert torch.equal(combine_masks(attn_mask=causal), causal)
    only_padding = combine_masks(key_padding_mask=kpm)
    assert only_padding.shape == (B, 1, 1, T) and torch.equal(only_padding[:, 0, 0], ~kpm)
    both = combine_masks(kpm, causal)
    assert both.shape == (B, 1, T, T)
    assert torch.equal(both[1, 0], causal & ~kpm[1][None, :])


# --------------------------------------------------------------------------------------------
# MultiHeadSelfAttention vs nn.MultiheadAttention
# --------------------------------------------------------------------------------------------

def make_attention(bias=True, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    return MultiHeadSelfAttention(C, H, dropout=0.0, bias=bias).to(dtype).eval()


MASK_CASES = ["none", "padding", "causal", "padding+causal", "random"]


def masks_for(case):
    key_padding_mask = padding_mask() if "padding" in case else None
    attn_mask = {"causal": causal_mask(T), "random": random_mask(T, T, seed=9)}.get(case.split("+")[-1])
    return key_padding_mask, attn_mask


@pytest.mark.parametrize("case", MASK_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_mhsa_equals_torch_multihead_attention(case, bias):
    attention = make_attention(bias=bias)
    mha = to_torch_mha(attention)
    assert mha.batch_first and not mha.training
    x = randn(B, T, C, seed=5)
    key_padding_mask, attn_mask = masks_for(case)
    # torch: bool attn_mask True = NOT allowed, so pass the complement of ours
    torch_attn_mask = None if attn_mask is None else ~attn_mask

    out, probs = attention(x, key_padding_mask, attn_mask, need_weights=True)
    ref_out, ref_avg = mha(x, x, x, key_padding_mask=key_padding_mask, attn_mask=torch_attn_mask,
                           need_weights=True, average_attn_weights=True)
    _, ref_per_head = mha(x, x, x, key_padding_mask=key_padding_mask, attn_mask=torch_attn_mask,
                          need_weights=True, average_attn_weights=False)

    assert out.shape == (B, T, C) and probs.shape == (B, H, T, T)
    torch.testing.assert_close(out, ref_out, atol=ATOL, rtol=0)
    torch.testing.assert_close(probs, ref_per_head, atol=ATOL, rtol=0)  # (B, H, T, T)
    torch.testing.assert_close(probs.mean(dim=1), ref_avg, atol=ATOL, rtol=0)  # (B, T, T)

    fast_out, no_probs = attention(x, key_padding_mask, attn_mask)  # the F.sdpa path
    assert no_probs is None
    torch.testing.assert_close(fast_out, ref_out, atol=ATOL, rtol=0)


def test_mhsa_equals_torch_in_float32_within_1e5():
    attention = make_attention(dtype=torch.float32)
    mha = to_torch_mha(attention)
    x = randn(B, T, C, seed=5, dtype=torch.float32)
    kpm, attn_mask = masks_for("padding+causal")
    out, _ = attention(x, kpm, attn_mask)
    ref_out, _ = mha(x, x, x, key_padding_mask=kpm, attn_mask=~attn_mask, need_weights=False)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)


def test_from_torch_mha_round_trip():
    torch.manual_seed(1)
    mha = nn.MultiheadAttention(C, H, batch_first=True, dtype=torch.float64).eval()
    attention = from_torch_mha(mha)
    x = randn(B, T, C, seed=6)
    out, probs = attention(x, need_weights=True)
    ref_out, ref_probs = mha(x, x, x, average_attn_weights=False)
    torch.testing.assert_close(out, ref_out, atol=ATOL, rtol=0)
    torch.testing.assert_close(probs, ref_probs, atol=ATOL, rtol=0)
    with pytest.raises(ValueError):
        from_torch_mha(nn.MultiheadAttention(C, H, kdim=8, vdim=8, batch_first=True))


@pytest.mark.parametrize("case", MASK_CASES)
def test_need_weights_path_equals_fast_path(case):
    attention = make_attention()
    x = randn(B, T, C, seed=7)
    kpm, attn_mask = masks_for(case)
    fast, _ = attention(x, kpm, attn_mask, need_weights=False)
    slow, probs = attention(x, kpm, attn_mask, need_weights=True)
    torch.testing.assert_close(slow, fast, atol=ATOL, rtol=0)
    if kpm is not None:  # no query gives weight to a padded key
        assert (probs.masked_select(kpm[:, None, None, :].expand_as(probs)) == 0).all()


def test_keep_attention_stores_only_when_asked():
    attention = make_attention()
    x = randn(B, T, C, seed=7)
    attention(x)
    assert attention.last_attention is None
    attention.keep_attention = True
    out, returned = attention(x, key_padding_mask=padding_mask())
    assert returned is None  # not asked for: not returned ...
    stored = attention.last_attention  # ... but kept for inspection
    assert stored.shape == (B, H, T, T) and not stored.requires_grad
    _, probs = attention(x, key_padding_mask=padding_mask(), need_weights=True)
    torch.testing.assert_close(stored, probs, atol=0, rtol=0)


def test_mhsa_rejects_bad_head_count():
    with pytest.raises(ValueError):
        MultiHeadSelfAttention(10, 3)


# --------------------------------------------------------------------------------------------
# EncoderBlock vs the formula and vs nn.TransformerEncoderLayer
# --------------------------------------------------------------------------------------------

def make_config(**overrides):
    defaults = dict(d_model=C, n_heads=H, n_layers=3, mlp_ratio=2.0, dropout=0.0)
    defaults.update(overrides)
    return EncoderConfig(**defaults)


def make_block(norm_first=True, bias=True, seed=0):
    torch.manual_seed(seed)
    block = EncoderBlock(make_config(norm_first=norm_first, bias=bias)).double().eval()
    with torch.no_grad():  # LayerNorm starts as the identity affine map: make it not so
        for norm in (block.norm1, block.norm2):
            norm.weight.normal_(1.0, 0.2)
            if norm.bias is not None:
                norm.bias.normal_(0.0, 0.2)
    return block


@pytest.mark.parametrize("case", MASK_CASES)
def test_pre_norm_block_equals_reference_formula(case):
    block = make_block()
    x = randn(B, T, C, seed=8)
    kpm, attn_mask = masks_for(case)

    def mlp(z):  # W_2 GELU(W_1 z + b_1) + b_2, written out
        return F.linear(F.gelu(F.linear(z, block.mlp.fc1.weight, block.mlp.fc1.bias)),
                        block.mlp.fc2.weight, block.mlp.fc2.bias)

    attended, _ = block.attention(block.norm1(x), kpm, attn_mask)
    x1 = x + attended  # x' = x + MHSA(LN_1(x))
    expected = x1 + mlp(block.norm2(x1))  # x'' = x' + MLP(LN_2(x'))
    out, _ = block(x, kpm, attn_mask)
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("case", MASK_CASES)
@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("torch_training_mode", [True, False])
def test_block_equals_torch_transformer_encoder_layer(case, norm_first, torch_training_mode):
    """Training mode (dropout 0) takes torch's Python path; eval + no_grad its fused fast path,
    which returns zeros at padded query positions (nested tensors): compare real positions."""
    block = make_block(norm_first=norm_first)
    layer = to_torch_encoder_layer(block).train(torch_training_mode)
    assert layer.norm_first == norm_first and layer.dropout.p == 0.0
    x = randn(B, T, C, seed=9)
    kpm, attn_mask = masks_for(case)
    torch_attn_mask = None if attn_mask is None else ~attn_mask
    with torch.no_grad():
        out, _ = block(x, kpm, attn_mask)
        ref = layer(x, src_mask=torch_attn_mask, src_key_padding_mask=kpm)
    real = torch.ones(B, T, dtype=torch.bool) if kpm is None else ~kpm
    torch.testing.assert_close(out[real], ref[real], atol=ATOL, rtol=0)


def test_block_equals_torch_layer_float32_within_1e5():
    torch.manual_seed(0)
    block = EncoderBlock(make_config()).eval()
    layer = to_torch_encoder_layer(block).eval()
    x = randn(B, T, C, seed=9, dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(block(x)[0], layer(x), atol=1e-5, rtol=1e-5)


def test_block_without_bias_equals_torch_layer():
    block = make_block(bias=False)
    assert block.attention.qkv.bias is None and block.norm1.bias is None
    layer = to_torch_encoder_layer(block).train()
    x = randn(B, T, C, seed=9)
    torch.testing.assert_close(block(x)[0], layer(x), atol=ATOL, rtol=0)


# --------------------------------------------------------------------------------------------
# TransformerEncoder
# --------------------------------------------------------------------------------------------

def make_encoder(seed=0, **overrides):
    torch.manual_seed(seed)
    return TransformerEncoder(make_config(**overrides)).double().eval()


def test_encoder_is_blocks_then_final_norm():
    encoder = make_encoder()
    x = randn(B, T, C, seed=10)
    kpm = padding_mask()
    h = x
    for block in encoder.blocks:
        h, _ = block(h, kpm)
    torch.testing.assert_close(encoder(x, kpm), encoder.final_norm(h), atol=ATOL, rtol=0)
    post_norm = make_encoder(norm_first=False)
    assert isinstance(post_norm.final_norm, nn.Identity)


def test_encoder_returns_per_layer_attention():
    encoder = make_encoder()
    x = randn(B, T, C, seed=10)
    kpm = padding_mask()
    plain = encoder(x, kpm)
    assert isinstance(plain, torch.Tensor) and plain.shape == (B, T, C)
    hidden, attentions = encoder(x, kpm, return_attention=True)
    torch.testing.assert_close(hidden, plain, atol=ATOL, rtol=0)
    assert isinstance(attentions, list) and len(attentions) == encoder.config.n_layers
    for probs in attentions:
        assert probs.shape == (B, H, T, T)
        torch.testing.assert_close(probs.sum(-1), torch.ones(B, H, T, dtype=probs.dtype), atol=ATOL, rtol=0)


def test_padding_invariance():
    """Real positions do not change, whatever sits at the padded positions."""
    encoder = make_encoder()
    kpm = padding_mask()
    x = randn(B, T, C, seed=11)
    x_other = torch.where(kpm[..., None], 100 * randn(B, T, C, seed=12), x)  # new padding content
    assert not torch.equal(x, x_other)
    out, out_other = encoder(x, kpm), encoder(x_other, kpm)
    torch.testing.assert_close(out[~kpm], out_other[~kpm], atol=ATOL, rtol=0)
    # and a padded sequence gives what the same sequence gives unpadded
    length = int((~kpm[2]).sum())
    torch.testing.assert_close(out[2, :length], encoder(x[2:3, :length])[0], atol=ATOL, rtol=0)


def test_causal_mask_hides_the_future():
    encoder = make_encoder()
    x = randn(1, T, C, seed=13)
    x_changed = x.clone()
    x_changed[:, 4:] = randn(1, T - 4, C, seed=14)
    mask = causal_mask(T)
    out, out_changed = encoder(x, attn_mask=mask), encoder(x_changed, attn_mask=mask)
    torch.testing.assert_close(out[:, :4], out_changed[:, :4], atol=ATOL, rtol=0)
    assert not torch.allclose(out[:, 4:], out_changed[:, 4:])


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    encoder = TransformerEncoder(make_config(dropout=0.1)).train()
    x = torch.randn(B, T, C, requires_grad=True)
    for return_attention in (False, True):
        encoder.zero_grad()
        out = encoder(x, padding_mask(), causal_mask(T), return_attention=return_attention)
        hidden = out[0] if return_attention else out
        hidden.pow(2).mean().backward()
        for name, parameter in encoder.named_parameters():
            assert parameter.grad is not None, name
            assert torch.isfinite(parameter.grad).all(), name
            assert parameter.grad.abs().sum() > 0, name
    assert torch.isfinite(x.grad).all()


def test_parameter_count():
    config = make_config(n_layers=2, mlp_ratio=4.0)
    encoder = TransformerEncoder(config)
    d, m = config.d_model, config.d_mlp
    per_block = 2 * (2 * d) + (3 * d * d + 3 * d) + (d * d + d) + (d * m + m) + (m * d + d)
    assert config.d_mlp == 4 * C
    assert encoder.num_parameters() == count_parameters(encoder) == 2 * per_block + 2 * d


def test_sinusoidal_positions_formula_and_relative_dot_products():
    from course_utils.models.transformer import sinusoidal_positions

    pe = sinusoidal_positions(50, 8)  # (T, d)
    assert pe.shape == (50, 8)
    pos, i = 7, 1  # dimensions 2i and 2i+1 share the frequency 10000^(-2i/d)
    angle = torch.tensor(pos / 10_000 ** (2 * i / 8))
    torch.testing.assert_close(pe[pos, 2 * i], angle.sin())
    torch.testing.assert_close(pe[pos, 2 * i + 1], angle.cos())
    similarity = pe @ pe.T  # PE[p] . PE[q] depends on q - p only
    for offset in (1, 5, 20):
        d = similarity.diagonal(offset)
        torch.testing.assert_close(d, d[0].expand_as(d), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="even"):
        sinusoidal_positions(4, 7)
