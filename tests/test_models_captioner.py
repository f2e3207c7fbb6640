"""The prefix captioner: caption encoding, causality, the loss against a hand-written
cross-entropy, greedy decoding, attribute accuracy, and that it learns a small mapping."""
import pytest
import torch
import torch.nn.functional as F

from course_utils.data.corpus import CLS_ID, PAD_ID, SEP_ID, Vocab
from course_utils.models.captioner import (
    Captioner, CaptionerConfig, attribute_accuracy, encode_captions, train_captioner,
)

CAPTIONS = ["a small red circle", "a large blue square", "a small green triangle", "a large red square"]


@pytest.fixture()
def vocab():
    return Vocab.build(CAPTIONS)


def test_encode_captions(vocab):
    ids = encode_captions(CAPTIONS[:1], vocab, max_len=8)
    assert ids.shape == (1, 8) and ids[0, 0] == CLS_ID and ids[0, 5] == SEP_ID
    assert (ids[0, 6:] == PAD_ID).all() and vocab.decode(ids[0, 1:5]) == CAPTIONS[0]
    with pytest.raises(ValueError, match="max_len"):
        encode_captions(CAPTIONS[:1], vocab, max_len=5)


def test_decoder_is_causal_and_loss_is_next_word_cross_entropy(vocab):
    torch.manual_seed(0)
    model = Captioner(CaptionerConfig(vocab_size=len(vocab), image_dim=5, max_len=8)).eval()
    z = torch.randn(2, 5)
    tokens = encode_captions(CAPTIONS[:2], vocab, max_len=8)
    logits = model(z, tokens[:, :-1])
    assert logits.shape == (2, 7, len(vocab))
    changed = tokens.clone()
    changed[:, 4] = vocab.stoi["blue"]  # a later word must not change earlier predictions
    torch.testing.assert_close(model(z, changed[:, :-1])[:, :4], logits[:, :4])
    targets = tokens[:, 1:]
    mask = targets != PAD_ID
    expected = F.cross_entropy(logits[mask], targets[mask])
    torch.testing.assert_close(model.loss(z, tokens), expected)


def test_prefix_conditions_every_position(vocab):
    torch.manual_seed(0)
    model = Captioner(CaptionerConfig(vocab_size=len(vocab), image_dim=5, max_len=8)).eval()
    tokens = encode_captions(CAPTIONS[:1], vocab, max_len=8)[:, :-1]
    a, b = model(torch.zeros(1, 5), tokens), model(torch.ones(1, 5), tokens)
    assert (a - b).abs().amax(dim=-1).min() > 0  # the image reaches every word position


def test_greedy_generation_learns_a_mapping(vocab):
    torch.manual_seed(0)
    model = Captioner(CaptionerConfig(vocab_size=len(vocab), image_dim=4, max_len=8))
    z = torch.eye(4)  # one "image embedding" per caption
    tokens = encode_captions(CAPTIONS, vocab, max_len=8)
    history = train_captioner(model, z.repeat(16, 1), tokens.repeat(16, 1), steps=150, batch_size=32, lr=3e-3,
                              device="cpu")
    assert history.loss[-1] < 0.1 * history.loss[0] and not model.training
    generated = model.generate(z)
    assert (generated[:, 0] == CLS_ID).all()
    for row in generated.tolist():  # padding only after the end token
        if SEP_ID in row:
            assert all(t == PAD_ID for t in row[row.index(SEP_ID) + 1:])
    assert model.caption(z, vocab) == CAPTIONS


def test_attribute_accuracy():
    attrs = {"colour": ("red", "blue", "green"), "shape": ("circle", "square", "triangle")}
    acc = attribute_accuracy(["a small red square", "a large", "a small green circle"],
                             ["a small red circle", "a large blue square", "a small green circle"], attrs)
    assert acc == {"colour": 2 / 3, "shape": 1 / 3}
    with pytest.raises(ValueError, match="predicted"):
        attribute_accuracy(["a"], [], attrs)
