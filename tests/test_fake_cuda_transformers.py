"""Chapters 1 and 2 on fake CUDA: attention, the Transformer encoder, BERT and the ViT (with MAE).

Each case builds its model on the CPU, moves it to a fake ``"cuda"`` device (tests/fake_cuda.py),
makes its batch there, runs the forward pass and the loss, and checks that everything it returns
is on CUDA. A forward pass that mixes a CPU tensor into a CUDA computation (a mask made on the
CPU, positions from ``torch.arange`` without ``device=``, MAE's random masks) raises here.

These modules have no package trainer (``train_*`` / ``fit_*``): Chapters 1 and 2 train through
``course_utils.train.fit`` and the masked-LM lesson loop, so ``TRAINING_CASES`` is empty.
"""
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from course_utils.models.attention import MultiHeadSelfAttention, causal_mask
from course_utils.models.bert import BertConfig, MaskedLanguageModel, MaskedLMHead, mlm_loss
from course_utils.models.transformer import MLP, EncoderBlock, EncoderConfig, TransformerEncoder
from course_utils.models.vit import (MAEConfig, MaskedAutoencoder, PatchEmbedding, ViTConfig, VisionTransformer,
                                    attention_rollout, patchify, random_masking)
from fake_cuda import CUDA, assert_on_cuda, fake_cuda

B, T, C, H = 2, 6, 16, 4
ENCODER = EncoderConfig(d_model=C, n_heads=H, n_layers=2, mlp_ratio=2.0, dropout=0.1)
BERT = BertConfig(vocab_size=30, max_len=8, d_model=C, n_heads=H, n_layers=2, mlp_ratio=2.0, dropout=0.1)
VIT = ViTConfig(image_size=8, patch_size=4, in_channels=1, n_classes=3, d_model=C, n_heads=H, n_layers=2)


def padding_mask(device):
    """(B, T) bool, True = padding: the second sequence has 2 padded positions."""
    mask = torch.zeros(B, T, dtype=torch.bool, device=device)
    mask[1, -2:] = True
    return mask


def mhsa_case(monkeypatch):
    attention = MultiHeadSelfAttention(C, H, dropout=0.1).train()
    with fake_cuda():
        attention.to(CUDA)
        x = torch.randn(B, T, C, device=CUDA)
        # fused path (F.scaled_dot_product_attention) with both masks
        out, _ = attention(x, key_padding_mask=padding_mask(CUDA), attn_mask=causal_mask(T, device=CUDA))
        # explicit path: the probabilities themselves
        slow, probs = attention(x, key_padding_mask=padding_mask(CUDA), need_weights=True)
        loss = out.pow(2).mean() + slow.pow(2).mean()
        assert_on_cuda(attention, out, slow, probs, loss)
        assert probs.shape == (B, H, T, T) and loss.dim() == 0


def mlp_case(monkeypatch):
    mlp = MLP(ENCODER).train()
    with fake_cuda():
        mlp.to(CUDA)
        y = mlp(torch.randn(B, T, C, device=CUDA))  # (B, T, C)
        loss = y.pow(2).mean()
        assert_on_cuda(mlp, y, loss)
        assert y.shape == (B, T, C)


def encoder_block_case(monkeypatch, norm_first=True):
    block = EncoderBlock(EncoderConfig(d_model=C, n_heads=H, norm_first=norm_first, dropout=0.1)).train()
    with fake_cuda():
        block.to(CUDA)
        y, probs = block(torch.randn(B, T, C, device=CUDA), key_padding_mask=padding_mask(CUDA),
                         need_weights=True)
        loss = y.pow(2).mean()
        assert_on_cuda(block, y, probs, loss)


def encoder_case(monkeypatch):
    encoder = TransformerEncoder(ENCODER).train()
    with fake_cuda():
        encoder.to(CUDA)
        y, attentions = encoder(torch.randn(B, T, C, device=CUDA), key_padding_mask=padding_mask(CUDA),
                                attn_mask=causal_mask(T, device=CUDA), return_attention=True)
        loss = y.pow(2).mean()
        assert_on_cuda(encoder, y, loss, *attentions)
        assert len(attentions) == ENCODER.n_layers


def mlm_head_case(monkeypatch):
    head = MaskedLMHead(BERT).train()
    with fake_cuda():
        head.to(CUDA)
        logits = head(torch.randn(B, T, C, device=CUDA))  # (B, T, V)
        labels = torch.randint(BERT.vocab_size, (B, T), device=CUDA)
        loss = mlm_loss(logits, labels)
        assert_on_cuda(head, logits, loss)
        assert logits.shape == (B, T, BERT.vocab_size)


def masked_lm_case(monkeypatch):
    model = MaskedLanguageModel(BERT).train()
    # a batch as the chapter makes it: ids on the CPU, labels -100 except at the chosen positions
    ids = torch.randint(5, BERT.vocab_size, (B, T), generator=torch.Generator().manual_seed(0))
    ids[1, -2:] = BERT.pad_id
    labels = torch.full_like(ids, -100)
    labels[:, 1] = ids[:, 1]
    with fake_cuda():
        model.to(CUDA)
        logits, attentions = model(ids.to(CUDA), return_attention=True)  # positions made on ids' device
        loss = mlm_loss(logits, labels.to(CUDA))  # no boolean indexing: no device-to-host sync
        assert_on_cuda(model, logits, loss, *attentions)
        assert logits.shape == (B, T, BERT.vocab_size) and loss.dim() == 0


def patch_embedding_case(monkeypatch):
    embed = PatchEmbedding(VIT).train()
    with fake_cuda():
        embed.to(CUDA)
        tokens = embed(torch.rand(B, 1, 8, 8, device=CUDA))  # (B, N, D)
        linear = embed.as_linear()  # built from the weights: on their device
        by_matmul = linear(patchify(torch.rand(B, 1, 8, 8, device=CUDA), VIT.patch_size))
        loss = tokens.pow(2).mean() + by_matmul.pow(2).mean()
        assert_on_cuda(embed, linear, tokens, by_matmul, loss)
        assert tokens.shape == (B, VIT.n_patches, C)


def vit_case(monkeypatch):
    models = [VisionTransformer(VIT).train(), VisionTransformer(replace(VIT, pool="mean")).train()]
    labels = torch.tensor([0, 2])
    with fake_cuda():
        for vit in models:
            vit.to(CUDA)
            logits, attentions = vit(torch.rand(B, 1, 8, 8, device=CUDA), return_attention=True)
            rollout = attention_rollout(attentions)  # its identity is made on the attentions' device
            loss = F.cross_entropy(logits, labels.to(CUDA))
            assert_on_cuda(vit, logits, rollout, loss)
            assert logits.shape == (B, VIT.n_classes) and rollout.shape == (B, VIT.n_patches + 1, VIT.n_patches + 1)


def mae_case(monkeypatch):
    """MAE's masks are random: drawn on the CPU (from a CPU generator, as the chapter draws them, or
    from the global one), they must be moved to the images' device before they index the tokens."""
    maes = [MaskedAutoencoder(VisionTransformer(VIT), MAEConfig(mask_ratio=0.5, decoder_dim=8, decoder_heads=2,
                                             norm_pix_loss=norm)).train() for norm in (False, True)]
    with fake_cuda():
        for mae in maes:
            mae.to(CUDA)
            for generator in (torch.Generator().manual_seed(0), None):
                loss, pred, mask = mae(torch.rand(B, 1, 8, 8, device=CUDA), generator=generator)
                assert_on_cuda(mae, loss, pred, mask)
                assert pred.shape == (B, VIT.n_patches, VIT.patch_dim) and mask.shape == (B, VIT.n_patches)
        keep, mask = random_masking(B, VIT.n_patches, 0.5, device=CUDA)
        assert_on_cuda(keep, mask)


MODEL_CASES = {
    "attention.MultiHeadSelfAttention": mhsa_case,
    "transformer.MLP": mlp_case,
    "transformer.EncoderBlock": encoder_block_case,
    "transformer.TransformerEncoder": encoder_case,
    "bert.MaskedLMHead": mlm_head_case,
    "bert.MaskedLanguageModel": masked_lm_case,
    "vit.PatchEmbedding": patch_embedding_case,
    "vit.VisionTransformer": vit_case,
    "vit.MaskedAutoencoder": mae_case,
}

TRAINING_CASES = {}  # no train_* / fit_* functions in attention, transformer, bert or vit


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_block_both_norms_on_fake_cuda(norm_first, monkeypatch):
    encoder_block_case(monkeypatch, norm_first=norm_first)


def test_a_mask_left_on_the_cpu_is_caught():
    """The harness itself: a CPU mask in a CUDA attention raises, as it would on a real GPU."""
    attention = MultiHeadSelfAttention(C, H)
    with fake_cuda():
        attention.to(CUDA)
        with pytest.raises(Exception, match="(?i)device"):
            attention(torch.randn(B, T, C, device=CUDA), attn_mask=causal_mask(T))
