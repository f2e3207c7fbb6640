"""Tests of course_utils.models.bert: the tiny masked language model, its loss and accuracy."""
import math

import pytest
import torch
import torch.nn.functional as F

from course_utils.models import (
    IGNORE_INDEX,
    BertConfig,
    MaskedLanguageModel,
    count_parameters,
    masked_token_accuracy,
    mlm_loss,
)

PAD, MASK = 0, 1  # special token ids used by these tests; ordinary tokens are 2..V-1


def make_model(seed=0, **overrides):
    defaults = dict(vocab_size=20, max_len=8, d_model=32, n_heads=4, n_layers=2, mlp_ratio=2.0,
                    dropout=0.0, pad_id=PAD)
    defaults.update(overrides)
    torch.manual_seed(seed)
    return MaskedLanguageModel(BertConfig(**defaults))


def random_ids(batch, length, vocab_size=20, seed=0):
    return torch.randint(2, vocab_size, (batch, length), generator=torch.Generator().manual_seed(seed))


def test_logits_and_attention_shapes():
    model = make_model().eval()
    ids = random_ids(3, 8)
    ids[1, 5:] = PAD
    logits = model(ids)
    assert logits.shape == (3, 8, 20) and logits.dtype == torch.float32
    logits_again, attentions = model(ids, return_attention=True)
    torch.testing.assert_close(logits_again, logits, atol=1e-6, rtol=0)
    assert len(attentions) == 2 and all(a.shape == (3, 4, 8, 8) for a in attentions)
    assert (attentions[0][1, :, :, 5:] == 0).all()  # nobody attends to padding
    hidden = model.encode(ids)
    assert hidden.shape == (3, 8, 32)


def test_sequence_longer_than_max_len_is_rejected():
    with pytest.raises(ValueError, match="max_len"):
        make_model()(random_ids(1, 9))


def test_weight_tying_shares_storage():
    model = make_model()
    embedding, output = model.token_embedding.weight, model.head.to_vocab.weight
    assert output is embedding and output.data_ptr() == embedding.data_ptr()
    # counted once
    names = [name for name, _ in model.named_parameters()]
    assert "head.to_vocab.weight" not in names
    assert count_parameters(model) == model.num_parameters() == sum(p.numel() for p in model.parameters())
    # and trained by both ends: the output layer alone gives the embedding a gradient
    ids = random_ids(2, 8)
    model(ids).sum().backward()
    assert embedding.grad is not None and embedding.grad[0].abs().sum() > 0  # PAD never appears as input


def test_parameter_count_of_the_reference_configuration():
    model = MaskedLanguageModel(BertConfig(vocab_size=100, max_len=16, d_model=64, n_heads=4,
                                           n_layers=2, mlp_ratio=4.0))
    V, L, d, m = 100, 16, 64, 256
    per_block = 2 * (2 * d) + (3 * d * d + 3 * d) + (d * d + d) + (d * m + m) + (m * d + d)
    expected = V * d + L * d + 2 * per_block + 2 * d + (d * d + d) + 2 * d + V  # tied: no V*d head
    assert model.num_parameters() == expected == 111_908


def test_padding_cannot_influence_real_positions():
    model = make_model().eval()
    real = random_ids(1, 5, seed=1)
    padded = torch.cat([real, torch.full((1, 3), PAD)], dim=1)  # (1, 8)
    with torch.no_grad():
        logits_padded = model(padded)
        logits_unpadded = model(real)
        torch.testing.assert_close(logits_padded[:, :5], logits_unpadded, atol=1e-5, rtol=1e-5)
        hidden_unpadded = model.encode(real)
        model.token_embedding.weight[PAD].normal_()  # change what a padded position holds
        torch.testing.assert_close(model.encode(padded)[:, :5], hidden_unpadded, atol=1e-5, rtol=1e-5)
        # (the logit *of* [PAD] changes too, through the tied output row: compare the others)
        torch.testing.assert_close(model(padded)[:, :5, 1:], logits_unpadded[..., 1:], atol=1e-5, rtol=1e-5)


def test_mlm_loss_equals_cross_entropy_with_ignore_index():
    logits = torch.randn(3, 5, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    labels = torch.full((3, 5), IGNORE_INDEX)
    labels[0, 1], labels[1, 4], labels[2, 0], labels[2, 3] = 3, 6, 0, 2
    loss = mlm_loss(logits, labels)
    library = F.cross_entropy(logits.reshape(-1, 7), labels.reshape(-1), ignore_index=-100)
    log_probs = logits.log_softmax(-1)
    by_hand = -(log_probs[0, 1, 3] + log_probs[1, 4, 6] + log_probs[2, 0, 0] + log_probs[2, 3, 2]) / 4
    torch.testing.assert_close(loss, library, atol=1e-12, rtol=0)
    torch.testing.assert_close(loss, by_hand, atol=1e-12, rtol=0)


def test_mlm_loss_with_nothing_to_score_is_zero_not_nan():
    logits = torch.randn(2, 4, 5, requires_grad=True)
    loss = mlm_loss(logits, torch.full((2, 4), IGNORE_INDEX))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_masked_token_accuracy_hand_made_case():
    logits = torch.zeros(1, 4, 3)
    logits[0, 0, 2] = 1.0  # predicts 2, label 2: right
    logits[0, 1, 0] = 1.0  # predicts 0, label 1: wrong
    logits[0, 2, 1] = 1.0  # predicts 1, label 1: right
    logits[0, 3, 1] = 1.0  # predicts 1, not scored (label -100) -- would be wrong otherwise
    labels = torch.tensor([[2, 1, 1, IGNORE_INDEX]])
    assert masked_token_accuracy(logits, labels) == pytest.approx(2 / 3)
    assert isinstance(masked_token_accuracy(logits, labels), float)
    assert math.isnan(masked_token_accuracy(logits, torch.full((1, 4), IGNORE_INDEX)))


def memorisation_batch(seed=0):
    """8 sequences of length 8, vocab 20: 2 fixed positions of each hidden by [MASK], some padding."""
    ids = random_ids(8, 8, seed=seed)
    ids[6, 6:] = PAD
    ids[7, 5:] = PAD
    labels = torch.full_like(ids, IGNORE_INDEX)
    generator = torch.Generator().manual_seed(seed + 1)
    for row in range(8):
        length = int((ids[row] != PAD).sum())
        hidden = torch.randperm(length, generator=generator)[:2]
        labels[row, hidden] = ids[row, hidden]
        ids[row, hidden] = MASK
    return ids, labels


def train_to_memorise(steps, seed=0):
    ids, labels = memorisation_batch()
    model = make_model(seed=seed, d_model=64, mlp_ratio=4.0).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    losses = []
    for _ in range(steps):
        loss = mlm_loss(model(ids), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        accuracy = masked_token_accuracy(model(ids), labels)
    return losses, accuracy


@pytest.mark.slow
def test_overfits_a_small_batch():
    losses, accuracy = train_to_memorise(steps=200)
    assert accuracy > 0.95, f"masked accuracy {accuracy:.3f} after 200 steps (loss {losses[-1]:.3f})"
    assert losses[-1] < 0.1 * losses[0]


def test_training_is_deterministic_given_a_seed():
    first, _ = train_to_memorise(steps=5, seed=3)
    second, _ = train_to_memorise(steps=5, seed=3)
    assert first == second
    other, _ = train_to_memorise(steps=5, seed=4)
    assert other != first
