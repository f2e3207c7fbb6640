"""Captioning: a small Transformer decoder that turns an image embedding back into words.

"Prefix" captioning (as in ClipCap): a frozen image encoder gives one vector z (here the CLIP
image embedding); a linear map turns it into ``prefix_len`` token vectors that are put in front
of the caption's word embeddings, and a decoder-only Transformer (the course's
``TransformerEncoder`` run with a causal mask) predicts each next word:

    x = [W_p z ; e(w_0) ; e(w_1) ; ... ; e(w_{T-2})] + positions      (prefix_len + T - 1, C)
    p(w_t | w_<t, z) = softmax(W_o h_{prefix_len - 1 + t})            t = 1 .. T - 1
    L = - (1/#words) sum_t log p(w_t | w_<t, z)                       padding excluded

with w_0 = [CLS] (start) and the caption ending in [SEP] (end). Position t sees the prefix and
the words before it only (causal mask), so at test time the caption is produced word by word:
**greedy decoding** appends argmax_w p(w | w_<t, z) until [SEP] or ``max_len``.

Words are the whitespace tokens of the captions (``course_utils.data.corpus.Vocab``): a
shapes caption has a dozen distinct words, no need for BPE here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..data.corpus import CLS, CLS_ID, PAD_ID, SEP, SEP_ID, Vocab, encode_corpus
from ..train import History, fit
from .attention import causal_mask
from .transformer import EncoderConfig, TransformerEncoder


@dataclass
class CaptionerConfig:
    vocab_size: int  # V, word vocabulary incl. the special tokens
    image_dim: int = 64  # size of the image embedding z (the CLIP embed_dim)
    d_model: int = 64  # C
    n_heads: int = 4
    n_layers: int = 2
    prefix_len: int = 1  # image vectors put in front of the words
    max_len: int = 8  # caption tokens incl. [CLS] and [SEP]
    dropout: float = 0.0

    def __post_init__(self):
        if self.prefix_len < 1:
            raise ValueError(f"prefix_len={self.prefix_len}: the decoder needs at least one image vector.")
        if self.max_len < 2:
            raise ValueError(f"max_len={self.max_len}: a caption needs at least [CLS] and [SEP].")


def encode_captions(captions: Sequence[str], vocab: Vocab, max_len: int) -> Tensor:
    """[CLS] words [SEP] [PAD]... ids, (N, max_len) int64. Raises if a caption does not fit."""
    too_long = [c for c in captions if len(c.split()) + 2 > max_len]
    if too_long:
        raise ValueError(f"caption {too_long[0]!r} needs {len(too_long[0].split()) + 2} tokens "
                         f"with [CLS] and [SEP], more than max_len={max_len}.")
    ids, _ = encode_corpus([f"{CLS} {c} {SEP}" for c in captions], vocab, max_len)
    return ids  # (N, max_len)


class Captioner(nn.Module):
    """Prefix Transformer decoder: image embedding (B, image_dim) -> caption word logits."""

    def __init__(self, config: CaptionerConfig):
        super().__init__()
        self.config = config
        C = config.d_model
        self.prefix = nn.Linear(config.image_dim, config.prefix_len * C)  # W_p
        self.tokens = nn.Embedding(config.vocab_size, C)  # e(w)
        self.positions = nn.Parameter(torch.zeros(config.prefix_len + config.max_len - 1, C))
        nn.init.normal_(self.positions, std=0.02)
        self.decoder = TransformerEncoder(EncoderConfig(d_model=C, n_heads=config.n_heads, n_layers=config.n_layers,
                                                        dropout=config.dropout))
        self.head = nn.Linear(C, config.vocab_size)  # W_o

    def forward(self, image_embedding: Tensor, tokens: Tensor) -> Tensor:
        """image_embedding (B, image_dim), tokens (B, T) starting with [CLS] -> logits (B, T, V).

        Logit row t predicts the word *after* tokens[:, t] (teacher forcing).
        """
        B, T = tokens.shape
        P, C = self.config.prefix_len, self.config.d_model
        if T > self.config.max_len:
            raise ValueError(f"{T} tokens exceed max_len={self.config.max_len}.")
        prefix = self.prefix(image_embedding).view(B, P, C)  # (B, P, C)
        x = torch.cat([prefix, self.tokens(tokens)], dim=1)  # (B, P + T, C)
        x = x + self.positions[: P + T]  # (B, P + T, C)
        h = self.decoder(x, attn_mask=causal_mask(P + T, device=x.device))  # (B, P + T, C)
        return self.head(h[:, P:])  # (B, T, V): the outputs at the word positions

    def loss(self, image_embedding: Tensor, tokens: Tensor) -> Tensor:
        """Mean cross-entropy of each next word; tokens (B, max_len) from :func:`encode_captions`."""
        logits = self(image_embedding, tokens[:, :-1])  # (B, T - 1, V)
        # L = - mean_t log p(w_t | w_<t, z), [PAD] targets ignored
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1), ignore_index=PAD_ID)

    @torch.no_grad()
    def generate(self, image_embedding: Tensor, max_len: Optional[int] = None) -> Tensor:
        """Greedy decoding: (B, image_dim) -> token ids (B, <= max_len), [CLS] first, [PAD] after [SEP]."""
        max_len = max_len if max_len is not None else self.config.max_len
        image_embedding = image_embedding.to(self.head.weight.device)  # (B, image_dim), where the model is
        B = image_embedding.shape[0]
        tokens = torch.full((B, 1), CLS_ID, dtype=torch.long, device=image_embedding.device)  # (B, 1)
        done = torch.zeros(B, dtype=torch.bool, device=image_embedding.device)  # (B,)
        for _ in range(max_len - 1):
            logits = self(image_embedding, tokens)[:, -1]  # (B, V): the next word
            logits[:, PAD_ID] = -float("inf")  # never predict padding
            # w_t = argmax_w p(w | w_<t, z)
            next_word = logits.argmax(-1)  # (B,)
            next_word = torch.where(done, torch.full_like(next_word, PAD_ID), next_word)
            tokens = torch.cat([tokens, next_word[:, None]], dim=1)  # (B, t + 1)
            done |= next_word == SEP_ID
            if done.all():
                break
        return tokens

    def caption(self, image_embedding: Tensor, vocab: Vocab) -> list:
        """Greedy captions as strings (without [CLS] and [SEP])."""
        out = []
        for row in self.generate(image_embedding).tolist():
            words = [vocab.itos[i] for i in row[1:] if i != PAD_ID]
            out.append(" ".join(words[: words.index(SEP)] if SEP in words else words))
        return out


def attribute_accuracy(predicted: Sequence[str], truth: Sequence[str], attributes: dict) -> dict:
    """Per attribute, the fraction of captions whose word for it is right.

    ``attributes`` maps a name to its words, e.g. ``{"colour": COLOURS, "shape": SHAPES}``; a
    caption's value is the first of those words it contains (missing = wrong). For one-object
    captions such as "a small red circle".
    """
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predicted captions but {len(truth)} true ones.")
    if not truth:
        raise ValueError("no captions given.")

    def value(caption, words):
        return next((w for w in caption.split() if w in words), None)

    return {name: sum(value(p, words) is not None and value(p, words) == value(t, words)
                      for p, t in zip(predicted, truth)) / len(truth)
            for name, words in attributes.items()}


def train_captioner(model: Captioner, image_embeddings: Tensor, tokens: Tensor, steps: int = 300,
                    batch_size: int = 64, lr: float = 3e-3, seed: int = 0, device=None) -> History:
    """Train with ``train.fit`` (Adam, one-cycle schedule) on random (embedding, caption) pairs.

    ``image_embeddings`` (N, image_dim), ``tokens`` (N, max_len) from :func:`encode_captions`;
    minimises :meth:`Captioner.loss`. Returns the History.
    """
    if len(image_embeddings) != len(tokens):
        raise ValueError(f"{len(image_embeddings)} embeddings but {len(tokens)} captions.")
    return fit(model, lambda m, z, t: m.loss(z, t), (image_embeddings, tokens), steps=steps, batch_size=batch_size,
               lr=lr, optimizer="adam", seed=seed, device=device, desc="captioner")
