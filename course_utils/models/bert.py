"""A tiny BERT: a Transformer encoder trained to fill in masked tokens (Devlin et al., 2018).

    h = Encoder(E_tok[ids] + E_pos[0..T-1])    hidden states (B, T, C)
    p(token | context) = softmax(head(h))      one distribution over the vocabulary per position

Training: hide ~15 % of the tokens, predict them from both sides of the context, and score the
prediction only at the hidden positions (:func:`mlm_loss`). Choosing which tokens to hide (and
the 80/10/10 rule) is the chapter's exercise; :func:`mask_tokens` is the course's answer, which the
chapter falls back on when the exercise is skipped.

Labels follow the usual convention: ``labels[b, t]`` is the original token id where the loss is
taken and ``IGNORE_INDEX = -100`` everywhere else (``F.cross_entropy``'s default ``ignore_index``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from . import parameters
from .transformer import EncoderConfig, TransformerEncoder

IGNORE_INDEX = -100


@dataclass
class BertConfig:
    vocab_size: int = 100  # V, including the special tokens ([PAD], [MASK], ...)
    max_len: int = 32  # longest sequence the position table covers
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    mlp_ratio: float = 4.0
    dropout: float = 0.1
    pad_id: int = 0  # the token id of [PAD]; such positions are never attended to

    def encoder_config(self) -> EncoderConfig:
        return EncoderConfig(
            d_model=self.d_model, n_heads=self.n_heads, n_layers=self.n_layers,
            mlp_ratio=self.mlp_ratio, dropout=self.dropout, norm_first=True,
        )


class MaskedLMHead(nn.Module):
    """BERT's prediction head, on every position: transform the hidden state, then score it
    against every token of the vocabulary ("FFNN + softmax" on the lecture's slide; the softmax
    lives in the loss).

        z = LN(GELU(W h + b))
        logits = W_vocab z + b_vocab      W_vocab (V, C): tied to the token embedding
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.d_model, config.d_model)
        self.gelu = nn.GELU()
        self.norm = nn.LayerNorm(config.d_model)
        self.to_vocab = nn.Linear(config.d_model, config.vocab_size)  # weight replaced by the tie

    def forward(self, h: Tensor) -> Tensor:
        # z = LN(GELU(W h + b))
        z = self.norm(self.gelu(self.dense(h)))  # (B, T, C)
        # logits = W_vocab z + b_vocab
        return self.to_vocab(z)  # (B, T, V)


class MaskedLanguageModel(nn.Module):
    """Token + learned position embeddings -> pre-norm TransformerEncoder -> MLM head -> logits.

    The encoder ends in a LayerNorm; the head (:class:`MaskedLMHead`) maps each hidden state to
    vocabulary logits with a weight that *is* the token-embedding table (weight tying).
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.d_model)  # E_tok (V, C)
        self.position_embedding = nn.Embedding(config.max_len, config.d_model)  # E_pos (max_len, C)
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.encoder = TransformerEncoder(config.encoder_config())  # ends in a LayerNorm
        self.head = MaskedLMHead(config)
        # Weight tying: the output layer scores the transformed hidden state z against every
        # token embedding, logit_v = <z, E_tok[v]> + b_v: "the token whose embedding z points
        # to" wins. Reading and writing a token then use one vector per token, every update of
        # the output layer also trains the input embedding (rare tokens learn from both ends),
        # and the model saves V*C parameters (23M of BERT-base's 110M) (Press & Wolf, 2017).
        self.head.to_vocab.weight = self.token_embedding.weight
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # BERT's initialisation: N(0, 0.02) weights, zero biases. The default N(0, 1) embedding
        # would, once tied, start the logits with a spread of about sqrt(C): far too confident.
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def encode(
        self, ids: Tensor, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """ids (B, T) -> contextual hidden states (B, T, C) (and the per-layer attentions)."""
        B, T = ids.shape
        if T > self.config.max_len:
            raise ValueError(f"Sequence length {T} exceeds max_len={self.config.max_len}.")
        padding = ids == self.config.pad_id  # (B, T), True = padding: no query attends to it
        positions = torch.arange(T, device=ids.device)  # (T,)
        # x = E_tok[ids] + E_pos[t]
        x = self.token_embedding(ids) + self.position_embedding(positions)  # (B, T, C)
        x = self.embedding_dropout(x)
        return self.encoder(x, key_padding_mask=padding, return_attention=return_attention)

    def forward(
        self, ids: Tensor, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """ids: LongTensor (B, T). Returns logits (B, T, V); with ``return_attention=True``
        ``(logits, attentions)``, attentions a list of n_layers tensors (B, H, T, T).

        Positions holding ``pad_id`` are ignored as keys; their own logits are meaningless.
        """
        if return_attention:
            # hidden (B, T, C), attentions: n_layers x (B, H, T, T)
            hidden, attentions = self.encode(ids, return_attention=True)
        else:
            hidden = self.encode(ids)  # (B, T, C)
        logits = self.head(hidden)  # (B, T, V)
        return (logits, attentions) if return_attention else logits

    def num_parameters(self) -> int:
        return parameters.count_parameters(self)


def mask_tokens(ids: Tensor, vocab_size: int, mask_id: int, special_ids, generator=None,
                p: float = 0.15) -> tuple[Tensor, Tensor]:
    """BERT's masking rule: choose each non-special token with probability p; of the chosen,
    80 % become ``mask_id``, 10 % a random id in [0, vocab_size), 10 % stay unchanged.

    ids: (B, T) long, not modified. Returns (inputs, labels), both (B, T) long; labels hold the
    original id at chosen positions and ``IGNORE_INDEX`` elsewhere. Randomness from ``generator``.
    """
    special = torch.isin(ids, torch.as_tensor(list(special_ids), dtype=ids.dtype))  # (B, T)
    chosen = (torch.rand(ids.shape, generator=generator) < p) & ~special  # (B, T)
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE_INDEX))
    u = torch.rand(ids.shape, generator=generator)  # one draw splits the chosen 80 / 10 / 10
    random_words = torch.randint(vocab_size, ids.shape, generator=generator)
    inputs = torch.where(chosen & (u < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(chosen & (u >= 0.8) & (u < 0.9), random_words, inputs)
    return inputs, labels


def mlm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Masked-language-model loss: mean cross-entropy over the positions with a label.

        L = -1/|M| sum_{(b,t) in M} log softmax(logits[b, t])[labels[b, t]],
        M = {(b, t) : labels[b, t] != -100}

    logits (B, T, V), labels (B, T) with -100 where no prediction is scored. Equal to
    ``F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=-100)`` -- except
    that a batch with no labelled position gives 0 (with gradient 0), not NaN.

    Every shape here is known in advance (no boolean indexing, no ``if`` on a tensor): the loss
    never waits for the GPU to say how many positions are labelled.
    """
    V = logits.shape[-1]
    scored = labels != IGNORE_INDEX  # (B, T), the set M
    # sum over M of -log p(label), the ignored positions contributing exactly 0
    total = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=IGNORE_INDEX,
                            reduction="sum")
    return total / scored.sum().clamp(min=1)  # / |M| (an empty M gives 0 / 1 = 0, not 0 / 0)


@torch.no_grad()
def masked_token_accuracy(logits: Tensor, labels: Tensor) -> float:
    """Fraction of the labelled positions (labels != -100) where argmax(logits) is the label.

    Returns ``nan`` when no position is labelled (an accuracy over nothing is undefined).
    """
    scored = labels != IGNORE_INDEX  # (B, T)
    if not scored.any():
        return float("nan")
    predictions = logits.argmax(dim=-1)  # (B, T)
    return (predictions[scored] == labels[scored]).float().mean().item()
