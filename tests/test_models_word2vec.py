"""word2vec: training examples, the negative-sampling loss against torch's BCE-with-logits (the
oracle), 3CosAdd analogies on hand-made vectors, and a short training run that learns relations."""
import pytest
import torch
import torch.nn.functional as F

from course_utils.data.corpus import PAD_ID, CorpusConfig, Vocab, analogies, make_corpus
from course_utils.models import word2vec as w2v


def test_skipgram_pairs_window_and_no_centre():
    pairs = w2v.skipgram_pairs([10, 11, 12], window=1)
    assert pairs.tolist() == [[10, 11], [11, 10], [11, 12], [12, 11]]
    assert w2v.skipgram_pairs([10, 11, 12, 13], window=2).shape == (10, 2)  # 1+2 + 2+1 + ... = 2+3+3+2
    assert w2v.skipgram_pairs([5], window=3).shape == (0, 2)
    repeated = w2v.skipgram_pairs([5, 5], window=1)  # positions differ: a real pair
    assert repeated.tolist() == [[5, 5], [5, 5]]
    with pytest.raises(ValueError, match="window"):
        w2v.skipgram_pairs([1, 2], window=0)


def test_cbow_examples_pad_missing_context():
    contexts, centres = w2v.cbow_examples([7, 8, 9], window=2)
    assert contexts.shape == (3, 4) and centres.tolist() == [7, 8, 9]
    assert contexts[0].tolist() == [8, 9, PAD_ID, PAD_ID]
    assert contexts[1].tolist() == [7, 9, PAD_ID, PAD_ID]


def test_noise_distribution_is_unigram_to_three_quarters():
    counts = torch.tensor([100, 0, 0, 0, 0, 16, 1, 0])
    p = w2v.noise_distribution(counts)
    assert p[:5].sum() == 0 and torch.isclose(p.sum(), torch.tensor(1.0))
    assert torch.isclose(p[5] / p[6], torch.tensor(16.0**0.75))


def _model(mode, V=12, D=6, seed=0):
    torch.manual_seed(seed)
    model = w2v.Word2Vec(w2v.Word2VecConfig(vocab_size=V, dim=D, mode=mode))
    with torch.no_grad():  # the output vectors start at 0; make the loss non-trivial
        model.contexts.weight.normal_()
    return model


def test_skipgram_loss_matches_bce_with_logits():
    model = _model("skipgram")
    g = torch.Generator().manual_seed(1)
    centre, context = torch.randint(5, 12, (8,), generator=g), torch.randint(5, 12, (8,), generator=g)
    negatives = torch.randint(5, 12, (8, 3), generator=g)
    v, u = model.embeddings.weight, model.contexts.weight
    pos = (u[context] * v[centre]).sum(-1)  # (8,)
    neg = torch.einsum("bkd,bd->bk", u[negatives], v[centre])  # (8, 3)
    expected = (F.binary_cross_entropy_with_logits(pos, torch.ones(8), reduction="none")
                + F.binary_cross_entropy_with_logits(neg, torch.zeros(8, 3), reduction="none").sum(-1)).mean()
    torch.testing.assert_close(model(centre, context, negatives), expected)


def test_cbow_hidden_is_the_mean_of_the_real_context_words():
    model = _model("cbow")
    contexts = torch.tensor([[6, 7, PAD_ID, PAD_ID], [6, 7, 8, 9]])
    h = model.hidden(contexts)
    v = model.embeddings.weight
    torch.testing.assert_close(h[0], (v[6] + v[7]) / 2)
    torch.testing.assert_close(h[1], v[6:10].mean(0))


def test_config_errors():
    with pytest.raises(ValueError, match="mode"):
        w2v.Word2VecConfig(vocab_size=20, mode="glove")
    with pytest.raises(ValueError, match="special"):
        w2v.Word2VecConfig(vocab_size=5)


def test_analogy_3cosadd_on_hand_made_vectors_excludes_the_query_words():
    vocab = Vocab(["man", "woman", "king", "queen", "apple"])
    vectors = torch.zeros(len(vocab), 3)
    for word, vec in {"man": [1, 0, 0], "woman": [1, 1, 0], "king": [1, 0, 1], "queen": [1, 1, 1],
                      "apple": [-1, 0, 0]}.items():
        vectors[vocab.stoi[word]] = torch.tensor(vec, dtype=torch.float)
    assert w2v.analogy(vectors, vocab, "man", "woman", "king") == ["queen"]
    # b - a + c = king + (woman - man) is closest to queen; the query words never come back
    assert set(w2v.analogy(vectors, vocab, "man", "woman", "king", k=2)) == {"queen", "apple"}
    assert w2v.analogy_accuracy(vectors, vocab, [("man", "woman", "king", "queen")]) == 1.0
    assert w2v.nearest_neighbours(vectors, vocab, "queen", k=1)[0][0] in {"woman", "king"}
    with pytest.raises(ValueError, match="not in the vocabulary"):
        w2v.analogy(vectors, vocab, "man", "woman", "emperor")


def test_short_training_learns_analogies():
    sentences = make_corpus(CorpusConfig(n_sentences=6000, seed=3))
    vocab = Vocab.build(sentences)
    ids = [vocab.encode(s) for s in sentences]
    counts = torch.bincount(torch.tensor([i for s in ids for i in s]), minlength=len(vocab))
    config = w2v.Word2VecConfig(vocab_size=len(vocab), dim=32, mode="skipgram")
    inputs, targets = w2v.make_examples(w2v.subsample(ids, counts, generator=torch.Generator().manual_seed(0)), config)
    torch.manual_seed(0)
    model = w2v.Word2Vec(config)
    history = w2v.train_word2vec(model, inputs, targets, w2v.noise_distribution(counts), steps=300, batch_size=512,
                                 lr=0.02, device="cpu")
    assert history.steps == 300 and history.mean(last=20) < 0.5 * history.loss[0]
    assert w2v.analogy_accuracy(model.vectors, vocab, analogies("capital")) > 0.5


def test_make_examples_takes_a_learners_pairs_function_in_any_row_order():
    sentences = [[5, 6, 7, 8], [9], [10, 11]]
    config = w2v.Word2VecConfig(vocab_size=20, dim=4, window=2, mode="skipgram")

    def reversed_rows(ids, window):
        return w2v.skipgram_pairs(ids, window).flip(0)

    inputs, targets = w2v.make_examples(sentences, config)
    inputs_r, targets_r = w2v.make_examples(sentences, config, pairs_fn=reversed_rows)
    pairs = sorted(zip(inputs.tolist(), targets.tolist()))
    assert pairs == sorted(zip(inputs_r.tolist(), targets_r.tolist()))
    assert len(pairs) == 10 + 2  # 4 words, window 2: 10 pairs; 2 words: 2; 1 word: none
