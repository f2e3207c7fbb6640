"""Tests of course_utils.data.corpus: determinism, relations, vocab, encoding, learnability."""
import random
import re

import numpy as np
import pytest
import torch

from course_utils.data.corpus import (
    ANIMALS,
    DETERMINERS,
    PRONOUNS,
    RELATION_KINDS,
    SPECIAL_TOKENS,
    VERBS,
    CorpusConfig,
    Vocab,
    analogies,
    encode_corpus,
    make_corpus,
    relation_pairs,
)

MALE_WORDS = {male for male, _ in relation_pairs("gender")}
FEMALE_WORDS = {female for _, female in relation_pairs("gender")}
MALE_PRONOUNS = set(PRONOUNS["male"].values())  # he, his, him
FEMALE_PRONOUNS = set(PRONOUNS["female"].values())  # she, her
ROYAL_WORDS = {royal for _, royal in relation_pairs("royalty")}
ROYAL_CONTEXTS = {"crown", "throne", "palace", "kingdom", "royal"}


@pytest.fixture(scope="module")
def corpus():
    return make_corpus()


@pytest.fixture(scope="module")
def vocab(corpus):
    return Vocab.build(corpus)


# ---------------------------------------------------------------------------------- determinism


def test_same_seed_gives_the_same_corpus():
    config = CorpusConfig(n_sentences=300, seed=4)
    assert make_corpus(config) == make_corpus(CorpusConfig(n_sentences=300, seed=4))


def test_different_seeds_give_different_corpora():
    a = make_corpus(CorpusConfig(n_sentences=300, seed=1))
    b = make_corpus(CorpusConfig(n_sentences=300, seed=2))
    assert sum(x != y for x, y in zip(a, b)) > 200


def test_default_corpus(corpus):
    assert len(corpus) == CorpusConfig().n_sentences == 20_000
    assert corpus == make_corpus(CorpusConfig(seed=0))
    assert len(set(corpus)) > 1_000  # varied, not a few sentences repeated


def test_sentences_are_lowercase_words_separated_by_single_spaces(corpus):
    pattern = re.compile(r"[a-z]+( [a-z]+)*")
    assert all(pattern.fullmatch(sentence) for sentence in corpus)


def test_bad_config_raises_a_clear_error():
    for n in (0, -3):
        with pytest.raises(ValueError, match=f"n_sentences={n}"):
            CorpusConfig(n_sentences=n)


# ------------------------------------------------------------------------- the relations exist


def test_each_sentence_has_at_most_one_person_and_pronouns_agree(corpus):
    """Gender agreement is exact: a sentence names at most one person, and every pronoun in it
    has that person's gender (so "queen" never meets "his", and "king" never meets "her")."""
    for sentence in corpus:
        words = sentence.split()
        people = [w for w in words if w in MALE_WORDS | FEMALE_WORDS]
        assert len(people) <= 1, sentence
        if people and people[0] in FEMALE_WORDS:
            assert not MALE_PRONOUNS & set(words), sentence
        if people and people[0] in MALE_WORDS:
            assert not FEMALE_PRONOUNS & set(words), sentence


def test_every_gender_word_appears_with_its_pronouns(corpus):
    with_pronoun = {word: 0 for word in MALE_WORDS | FEMALE_WORDS}
    for sentence in corpus:
        words = set(sentence.split())
        for word in words & with_pronoun.keys():
            own = MALE_PRONOUNS if word in MALE_WORDS else FEMALE_PRONOUNS
            with_pronoun[word] += bool(own & words)
    assert min(with_pronoun.values()) >= 100, with_pronoun


def test_royal_contexts_belong_to_royal_words(corpus):
    royal_context_count = {word: 0 for word in ROYAL_WORDS}
    for sentence in corpus:
        words = set(sentence.split())
        people = words & (MALE_WORDS | FEMALE_WORDS)
        if words & ROYAL_CONTEXTS and people:
            assert people <= ROYAL_WORDS, sentence
            royal_context_count[people.pop()] += 1
    assert min(royal_context_count.values()) >= 50, royal_context_count


def test_every_capital_appears_with_its_own_country_only(corpus):
    pairs = relation_pairs("capital")
    assert len(pairs) >= 10
    country_of = {capital: country for country, capital in pairs}
    together = {pair: 0 for pair in pairs}
    for sentence in corpus:
        words = set(sentence.split())
        countries = words & set(country_of.values())
        capitals = words & set(country_of)
        assert len(countries) <= 1 and len(capitals) <= 1, sentence
        if countries and capitals:
            country, capital = countries.pop(), capitals.pop()
            assert country_of[capital] == country, sentence  # never "paris is the capital of italy"
            together[(country, capital)] += 1
    assert min(together.values()) >= 20, together


def test_plurals_appear_with_agreeing_verbs_and_determiners(corpus):
    singular_nouns = {animal[0]: animal for animal in ANIMALS}
    plural_nouns = {animal[1]: animal for animal in ANIMALS}
    singular_verbs = {v for v, _ in VERBS} | {animal[2] for animal in ANIMALS}
    plural_verbs = {v for _, v in VERBS} | {animal[3] for animal in ANIMALS}
    adjectives = {animal[4] for animal in ANIMALS}
    seen = set()
    for sentence in corpus:
        words = sentence.split()
        for i, word in enumerate(words):
            if word not in singular_nouns and word not in plural_nouns:
                continue
            plural = word in plural_nouns
            after = words[i + 1] if i + 1 < len(words) else None
            if after in singular_verbs | plural_verbs:
                assert after in (plural_verbs if plural else singular_verbs), sentence
                seen.add((word, after))
            j = i - 1 if i >= 1 and words[i - 1] not in adjectives else i - 2  # skip an adjective
            own, other = ("plural", "singular") if plural else ("singular", "plural")
            wrong = set(DETERMINERS[other]) - set(DETERMINERS[own])  # "the" fits both
            assert j < 0 or words[j] not in wrong, sentence
    for singular, plural, sound_singular, sound_plural, *_ in ANIMALS:
        assert (singular, sound_singular) in seen and (plural, sound_plural) in seen
        assert (singular, "is") in seen and (plural, "are") in seen


# ----------------------------------------------------------------------------------- analogies


def test_analogy_questions():
    pairs = {kind: relation_pairs(kind) for kind in RELATION_KINDS}
    for kind, kind_pairs in pairs.items():
        questions = analogies(kind)
        assert len(questions) == len(kind_pairs) * (len(kind_pairs) - 1)
        assert len(set(questions)) == len(questions)
        for a, b, c, d in questions:
            assert (a, b) in kind_pairs and (c, d) in kind_pairs and (a, b) != (c, d)
    assert ("man", "woman", "king", "queen") in analogies("gender")
    assert ("man", "king", "woman", "queen") in analogies("royalty")
    assert ("boy", "prince", "girl", "princess") in analogies("royalty")
    assert ("dog", "dogs", "cat", "cats") in analogies("plural")
    assert ("france", "paris", "italy", "rome") in analogies("capital")
    assert analogies() == [q for kind in RELATION_KINDS for q in analogies(kind)]
    with pytest.raises(ValueError, match="unknown relation kind 'colour'"):
        relation_pairs("colour")


def test_every_analogy_word_is_in_the_default_vocab(vocab):
    words = {word for question in analogies() for word in question}
    assert all(word in vocab for word in words), sorted(w for w in words if w not in vocab)


# ------------------------------------------------------------------------- vocabulary, encoding


def test_special_tokens_have_fixed_ids(vocab):
    assert SPECIAL_TOKENS == ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
    for tokens in (vocab, Vocab([]), Vocab(["b", "a"])):
        assert [tokens.stoi[t] for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
        assert tokens.itos[:5] == list(SPECIAL_TOKENS)


def test_vocab_build_counts_and_orders_words(corpus, vocab):
    distinct = {word for sentence in corpus for word in sentence.split()}
    assert len(vocab) == len(SPECIAL_TOKENS) + len(distinct)
    assert vocab.itos[len(SPECIAL_TOKENS)] == "the"  # the most frequent word comes first
    small = Vocab.build(["b a b", "c b a"], min_count=2)
    assert small.itos[5:] == ["b", "a"]  # "b" x3, "a" x2; "c" x1 dropped
    assert "c" not in small and small.encode("c b") == [1, small.stoi["b"]]
    with pytest.raises(ValueError, match="unique"):
        Vocab(["a", "a"])
    with pytest.raises(ValueError, match="unique"):
        Vocab(["[MASK]"])


def test_encode_decode_round_trip(corpus, vocab):
    for sentence in corpus[:2_000]:
        ids = vocab.encode(sentence)
        assert all(5 <= i < len(vocab) for i in ids)
        assert vocab.decode(ids) == sentence
    assert vocab.encode("the zebra") == [vocab.stoi["the"], 1]  # unknown word -> [UNK]
    assert vocab.decode([vocab.stoi["the"], 1, 0, 0]) == "the [UNK]"  # [PAD] left out
    assert vocab.decode(torch.tensor([2, vocab.stoi["king"], 4, 3])) == "[CLS] king [MASK] [SEP]"


def test_encode_corpus_pads_and_truncates(vocab):
    sentences = ["the king rules", "the dog barks in the kennel", "", "paris"]
    ids, lengths = encode_corpus(sentences, vocab, max_len=5)
    assert ids.dtype == torch.int64 and lengths.dtype == torch.int64
    assert ids.shape == (4, 5) and lengths.tolist() == [3, 5, 0, 1]
    for row, length, sentence in zip(ids, lengths, sentences):
        assert (row[length:] == 0).all() and (row[:length] != 0).all()
        assert row[:length].tolist() == vocab.encode(sentence)[:5]
    assert vocab.decode(ids[0]) == "the king rules"
    assert vocab.decode(ids[1]) == "the dog barks in the"  # cut to max_len
    with pytest.raises(ValueError, match="max_len"):
        encode_corpus(sentences, vocab, max_len=0)


# ------------------------------------------------------------------------------- learnability


def ppmi_svd_embeddings(sentences, vocab, window=3, dim=100):
    """Word vectors from counts, no training (Levy & Goldberg, 2014): count co-occurrences
    within ``window`` words, take the positive PMI, ``max(0, log p(w, c) / (p(w) p_0.75(c)))``,
    and keep the top ``dim`` singular directions. Returns unit vectors for vocab.itos[5:]."""
    max_len = max(len(s.split()) for s in sentences)
    ids, _ = encode_corpus(sentences, vocab, max_len)
    ids = ids.numpy() - len(SPECIAL_TOKENS)  # (N, L) word index; [PAD] becomes negative
    size = len(vocab) - len(SPECIAL_TOKENS)
    counts = np.zeros((size, size))  # (V, V)
    for distance in range(1, window + 1):
        left, right = ids[:, :-distance].ravel(), ids[:, distance:].ravel()
        keep = (left >= 0) & (right >= 0)
        np.add.at(counts, (left[keep], right[keep]), 1)
        np.add.at(counts, (right[keep], left[keep]), 1)
    p_word = counts.sum(1) / counts.sum()  # (V,)
    p_context = counts.sum(0) ** 0.75
    p_context /= p_context.sum()  # (V,) smoothed
    with np.errstate(divide="ignore"):
        pmi = np.log(counts / counts.sum() / p_word[:, None] / p_context[None, :])
    u, s, _ = np.linalg.svd(np.maximum(pmi, 0.0))
    vectors = u[:, :dim] * np.sqrt(s[:dim])  # (V, dim)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def analogy_accuracy(vectors, words, questions):
    """3CosAdd: the answer to a : b :: c : ? is the word nearest to b - a + c, except a, b, c."""
    index = {word: i for i, word in enumerate(words)}
    correct = 0
    for a, b, c, d in questions:
        scores = vectors @ (vectors[index[b]] - vectors[index[a]] + vectors[index[c]])  # (V,)
        scores[[index[a], index[b], index[c]]] = -np.inf
        correct += words[int(scores.argmax())] == d
    return correct / len(questions)


def test_corpus_statistics_already_solve_the_analogies(corpus, vocab):
    """The signal is there before any training: count-based vectors solve the analogies. On the
    same words shuffled across the corpus (same vocabulary, no structure) they do not."""
    words = vocab.itos[len(SPECIAL_TOKENS):]
    vectors = ppmi_svd_embeddings(corpus, vocab)
    for kind in RELATION_KINDS:
        assert analogy_accuracy(vectors, words, analogies(kind)) >= 0.5, kind

    tokens = " ".join(corpus).split()
    random.Random(0).shuffle(tokens)
    lengths = [len(sentence.split()) for sentence in corpus]
    starts = np.cumsum([0] + lengths)
    shuffled = [" ".join(tokens[s:e]) for s, e in zip(starts[:-1], starts[1:])]
    vectors = ppmi_svd_embeddings(shuffled, vocab)
    for kind in ("gender", "capital"):
        assert analogy_accuracy(vectors, words, analogies(kind)) < 0.2, kind
