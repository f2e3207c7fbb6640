"""word2vec: CBOW and skip-gram with negative sampling.

Every word w has two vectors: an *input* vector v_w (the embedding we keep) and an *output*
vector u_w (used only to score contexts). Within a window of ``window`` words on each side:

* **skip-gram** predicts each context word o from the centre word c;
* **CBOW** (continuous bag of words) predicts the centre word c from the mean of its context,
  h = (1/|C|) sum_{o in C} v_o.

The full softmax over the vocabulary is replaced by **negative sampling**: the true pair is
scored against k "noise" words n_1..n_k drawn from the unigram distribution raised to 3/4,
P_n(w) ∝ count(w)^{3/4}. With σ the logistic sigmoid, the loss of one example is

    skip-gram:  L = -log σ(u_o · v_c) - sum_{i=1}^k log σ(-u_{n_i} · v_c)
    CBOW:       L = -log σ(u_c · h)   - sum_{i=1}^k log σ(-u_{n_i} · h)

Words of similar contexts end up with similar input vectors, and relations that shift the
contexts consistently (he -> she, singular -> plural verb) become consistent vector offsets,
which is why ``v_king - v_man + v_woman`` lands near ``v_queen``. Analogies are answered with
**3CosAdd**: the word d (not a, b or c) of largest cos(v_d, v_b - v_a + v_c).

Frequent words ("the", "is") carry little information; they are *subsampled*: an occurrence of
w is dropped with probability max(0, 1 - sqrt(t / f(w))), f(w) the word's frequency.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..data.corpus import PAD_ID, SPECIAL_TOKENS
from ..train import History, fit

MODES = ("skipgram", "cbow")


@dataclass
class Word2VecConfig:
    vocab_size: int  # V, including the special tokens (ids 0..4, never trained on)
    dim: int = 64  # D, the embedding size
    window: int = 2  # context words on each side of the centre
    negatives: int = 5  # k, noise words per example
    mode: str = "skipgram"  # "skipgram" or "cbow"

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r}: choose from {MODES}.")
        if self.vocab_size <= len(SPECIAL_TOKENS):
            raise ValueError(f"vocab_size={self.vocab_size} leaves no real words (ids 0..4 are special).")
        if self.window < 1 or self.negatives < 1 or self.dim < 1:
            raise ValueError("window, negatives and dim must all be at least 1.")


# --------------------------------------------------------------------------------------------
# Training examples


def subsample(sentences_ids: Sequence[Sequence[int]], counts: Tensor, t: float = 1e-3,
              generator: Optional[torch.Generator] = None) -> list:
    """Drop frequent words at random; return new lists of ids.

    An occurrence of w is kept with probability min(1, sqrt(t / f(w))), f(w) = count(w) / total.
    """
    freq = counts.double() / counts.sum()  # (V,)
    keep_p = torch.clamp(torch.sqrt(t / freq.clamp_min(1e-12)), max=1.0)  # (V,)
    out = []
    for ids in sentences_ids:
        ids = torch.as_tensor(list(ids), dtype=torch.long)  # (T,)
        keep = torch.rand(len(ids), generator=generator, dtype=torch.float64) < keep_p[ids]  # (T,)
        out.append(ids[keep].tolist())
    return out


def skipgram_pairs(ids: Sequence[int], window: int) -> Tensor:
    """(centre, context) pairs of one sentence: every j != i with |i - j| <= window.

    Returns a (P, 2) int64 tensor, ordered by centre position i, then context position j.
    """
    if window < 1:
        raise ValueError(f"window={window} must be at least 1.")
    ids = list(ids)
    pairs = [(ids[i], ids[j]) for i in range(len(ids))
             for j in range(max(0, i - window), min(len(ids), i + window + 1)) if j != i]
    return torch.tensor(pairs, dtype=torch.long).reshape(-1, 2)  # (P, 2)


def cbow_examples(ids: Sequence[int], window: int) -> tuple[Tensor, Tensor]:
    """(contexts (T, 2 window) padded with PAD_ID, centres (T,)) for one sentence."""
    if window < 1:
        raise ValueError(f"window={window} must be at least 1.")
    ids = list(ids)
    contexts = torch.full((len(ids), 2 * window), PAD_ID, dtype=torch.long)  # (T, 2w)
    for i in range(len(ids)):
        ctx = [ids[j] for j in range(max(0, i - window), min(len(ids), i + window + 1)) if j != i]
        contexts[i, : len(ctx)] = torch.tensor(ctx, dtype=torch.long)
    return contexts, torch.tensor(ids, dtype=torch.long)


def make_examples(sentences_ids, config: Word2VecConfig, pairs_fn=None) -> tuple[Tensor, Tensor]:
    """All training examples of a corpus: (inputs, targets).

    skip-gram: inputs (N,) centre ids, targets (N,) context ids; ``pairs_fn(ids, window)`` makes
    the (P, 2) pairs of one sentence (default :func:`skipgram_pairs`; any row order works).
    CBOW: inputs (N, 2 window) context ids (PAD_ID = empty slot), targets (N,) centre ids.
    """
    if config.mode == "skipgram":
        pairs_fn = skipgram_pairs if pairs_fn is None else pairs_fn
        pairs = torch.cat([pairs_fn(list(s), config.window) for s in sentences_ids if len(s) > 1])  # (N, 2)
        return pairs[:, 0], pairs[:, 1]
    parts = [cbow_examples(s, config.window) for s in sentences_ids if len(s) > 1]
    return torch.cat([c for c, _ in parts]), torch.cat([t for _, t in parts])  # (N, 2w), (N,)


def noise_distribution(counts: Tensor, power: float = 0.75) -> Tensor:
    """P_n(w) ∝ count(w)^power over the vocabulary (special tokens get 0); (V,) float."""
    p = counts.double().clamp_min(0) ** power  # (V,)
    p[: len(SPECIAL_TOKENS)] = 0.0
    return (p / p.sum()).float()


# --------------------------------------------------------------------------------------------
# The model


class Word2Vec(nn.Module):
    """Input vectors v (``self.embeddings``) and output vectors u (``self.contexts``)."""

    def __init__(self, config: Word2VecConfig):
        super().__init__()
        self.config = config
        self.embeddings = nn.Embedding(config.vocab_size, config.dim, padding_idx=PAD_ID)  # v
        self.contexts = nn.Embedding(config.vocab_size, config.dim, padding_idx=PAD_ID)  # u
        nn.init.uniform_(self.embeddings.weight, -0.5 / config.dim, 0.5 / config.dim)
        nn.init.zeros_(self.contexts.weight)  # as in the original C code
        with torch.no_grad():
            self.embeddings.weight[PAD_ID].zero_()

    def hidden(self, inputs: Tensor) -> Tensor:
        """The vector that predicts: v_c (skip-gram, inputs (B,)) or the context mean h (CBOW, (B, 2w))."""
        if self.config.mode == "skipgram":
            return self.embeddings(inputs)  # (B, D)
        # h = (1/|C|) sum_{o in C} v_o, over the non-padding context slots
        mask = (inputs != PAD_ID).float()  # (B, 2w)
        summed = (self.embeddings(inputs) * mask[..., None]).sum(1)  # (B, D)
        return summed / mask.sum(1, keepdim=True).clamp_min(1.0)  # (B, D)

    def forward(self, inputs: Tensor, targets: Tensor, negatives: Tensor) -> Tensor:
        """Mean negative-sampling loss. targets (B,), negatives (B, k) noise ids."""
        h = self.hidden(inputs)  # (B, D)
        positive = (self.contexts(targets) * h).sum(-1)  # (B,): u_o · v_c
        negative = torch.einsum("bkd,bd->bk", self.contexts(negatives), h)  # (B, k): u_n · v_c
        # L = -log σ(u_o · v_c) - sum_i log σ(-u_{n_i} · v_c)
        loss = -F.logsigmoid(positive) - F.logsigmoid(-negative).sum(-1)  # (B,)
        return loss.mean()

    @property
    def vectors(self) -> Tensor:
        """The learned word vectors (V, D), detached, on the CPU (for neighbours, analogies, plots)."""
        return self.embeddings.weight.detach().cpu()


def train_word2vec(model: Word2Vec, inputs: Tensor, targets: Tensor, noise: Tensor, steps: int = 1000,
                   batch_size: int = 1024, lr: float = 0.01, seed: int = 0, device=None) -> History:
    """Train with ``train.fit``: Adam on random mini-batches, η_t = lr · (1 - t/steps); returns the History.

    Each batch draws ``batch_size`` examples (rows of ``inputs``, ``targets``), then k noise words
    per example from P_n (``noise``, (V,)), both from fit's seeded generator on the CPU.
    """
    k = model.config.negatives

    def with_negatives(generator, batch_inputs, batch_targets):
        B = len(batch_targets)
        negatives = torch.multinomial(noise, B * k, replacement=True, generator=generator).view(B, k)  # (B, k)
        return batch_inputs, batch_targets, negatives

    return fit(model, lambda m, x, t, n: m(x, t, n), (inputs, targets), steps=steps, batch_size=batch_size,
               lr=lr, optimizer="adam", schedule="linear", augment=with_negatives, seed=seed, device=device,
               desc=f"word2vec {model.config.mode}")


# --------------------------------------------------------------------------------------------
# Using the vectors


def nearest_neighbours(vectors: Tensor, vocab, word: str, k: int = 5) -> list:
    """The k words of largest cosine similarity to ``word`` (itself and special tokens excluded)."""
    if word not in vocab:
        raise ValueError(f"{word!r} is not in the vocabulary.")
    unit = F.normalize(vectors, dim=-1)  # (V, D)
    sims = unit @ unit[vocab.stoi[word]]  # (V,)
    sims[: len(SPECIAL_TOKENS)] = -float("inf")
    sims[vocab.stoi[word]] = -float("inf")
    top = sims.topk(k)
    return [(vocab.itos[i], s) for s, i in zip(top.values.tolist(), top.indices.tolist())]


def analogy(vectors: Tensor, vocab, a: str, b: str, c: str, k: int = 1) -> list:
    """3CosAdd: the k words d, not a, b or c, of largest cos(v_d, v_b - v_a + v_c).

    "a is to b as c is to ?": ``analogy(V, vocab, "man", "woman", "king")`` -> ["queen"].
    """
    for w in (a, b, c):
        if w not in vocab:
            raise ValueError(f"{w!r} is not in the vocabulary.")
    unit = F.normalize(vectors, dim=-1)  # (V, D)
    ia, ib, ic = (vocab.stoi[w] for w in (a, b, c))
    # d* = argmax_d cos(v_d, v_b - v_a + v_c), over unit vectors
    query = F.normalize(unit[ib] - unit[ia] + unit[ic], dim=-1)  # (D,)
    sims = unit @ query  # (V,)
    sims[: len(SPECIAL_TOKENS)] = -float("inf")
    sims[[ia, ib, ic]] = -float("inf")
    return [vocab.itos[i] for i in sims.topk(k).indices.tolist()]


def analogy_accuracy(vectors: Tensor, vocab, questions) -> float:
    """Fraction of questions (a, b, c, d) whose 3CosAdd top-1 answer is d."""
    questions = list(questions)
    if not questions:
        raise ValueError("no analogy questions given.")
    hits = sum(analogy(vectors, vocab, a, b, c)[0] == d for a, b, c, d in questions)
    return hits / len(questions)
