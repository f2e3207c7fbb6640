"""The Transformer encoder: a stack of (self-attention, MLP) blocks with residuals and LayerNorm.

One block, pre-norm (``norm_first=True``, GPT-2/ViT, trains more stably), with l the layer:

    x_l'  = x_l  + MHSA(LN(x_l))
    x_l+1 = x_l' + MLP(LN(x_l'))

and a final LayerNorm after the last block. Post-norm (``norm_first=False``, the 2017 paper and
BERT) puts the LayerNorm after each residual sum instead, and has no final LayerNorm.

The encoder takes already-embedded tokens (B, T, C): BERT adds token and position embeddings in
front of it (``bert.py``), a ViT adds patch and position embeddings. The same encoder serves both.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
from torch import Tensor

from .attention import MultiHeadSelfAttention, to_torch_mha
from . import parameters


@dataclass
class EncoderConfig:
    d_model: int = 64  # C, the width of every token vector
    n_heads: int = 4  # H, heads per attention layer (head dim = d_model / n_heads)
    n_layers: int = 2  # L, number of blocks
    mlp_ratio: float = 4.0  # hidden width of the MLP = mlp_ratio * d_model
    dropout: float = 0.0  # attention, residual and MLP dropout
    bias: bool = True  # biases in the Linear and LayerNorm layers
    norm_first: bool = True  # pre-norm (True) or post-norm (False)

    @property
    def d_mlp(self) -> int:
        return int(self.mlp_ratio * self.d_model)


def sinusoidal_positions(n_positions: int, d_model: int, base: float = 10_000.0) -> Tensor:
    """The 2017 Transformer's fixed position encodings (BERT and the ViT learn theirs instead):

        PE[pos, 2i]   = sin(pos / base^(2i/d))
        PE[pos, 2i+1] = cos(pos / base^(2i/d))

    Each pair of dimensions is a rotation by an angle proportional to pos, so PE[pos] . PE[pos+k]
    depends on the offset k only. Returns (n_positions, d_model); d_model must be even.
    """
    if d_model % 2:
        raise ValueError(f"d_model={d_model} must be even (sin and cos come in pairs).")
    pos = torch.arange(n_positions, dtype=torch.float32)[:, None]  # (T, 1)
    frequency = base ** (-torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)  # (d/2,)
    angle = pos * frequency  # (T, d/2)
    return torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(1)  # (T, d): sin, cos interleaved


class MLP(nn.Module):
    """The position-wise feed-forward network, applied to every token on its own:

        MLP(x) = W_2 GELU(W_1 x + b_1) + b_2
    """

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.d_model, config.d_mlp, bias=config.bias)
        self.gelu = nn.GELU()
        self.fc2 = nn.Linear(config.d_mlp, config.d_model, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.fc1(x)  # (B, T, d_mlp)
        x = self.gelu(x)  # (B, T, d_mlp)
        x = self.fc2(x)  # (B, T, C)
        return self.dropout(x)


class EncoderBlock(nn.Module):
    """One Transformer encoder layer: self-attention then MLP, each inside a residual."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.norm_first = config.norm_first
        self.norm1 = nn.LayerNorm(config.d_model, bias=config.bias)
        self.attention = MultiHeadSelfAttention(
            config.d_model, config.n_heads, dropout=config.dropout, bias=config.bias
        )
        self.norm2 = nn.LayerNorm(config.d_model, bias=config.bias)
        self.mlp = MLP(config)

    def forward(
        self,
        x: Tensor,
        key_padding_mask: Optional[Tensor] = None,
        attn_mask: Optional[Tensor] = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Optional[Tensor]]:
        """x: (B, T, C) -> (x (B, T, C), attention probabilities (B, H, T, T) or ``None``)."""
        if self.norm_first:
            # x' = x + MHSA(LN_1(x))
            attended, probs = self.attention(
                self.norm1(x), key_padding_mask, attn_mask, need_weights
            )  # (B, T, C), (B, H, T, T) or None
            x = x + attended  # (B, T, C)
            # x'' = x' + MLP(LN_2(x'))
            x = x + self.mlp(self.norm2(x))  # (B, T, C)
        else:
            # x' = LN_1(x + MHSA(x))
            attended, probs = self.attention(x, key_padding_mask, attn_mask, need_weights)
            x = self.norm1(x + attended)  # (B, T, C)
            # x'' = LN_2(x' + MLP(x'))
            x = self.norm2(x + self.mlp(x))  # (B, T, C)
        return x, probs


class TransformerEncoder(nn.Module):
    """A stack of ``n_layers`` blocks (:class:`EncoderBlock`), then a final LayerNorm if pre-norm."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.blocks = nn.ModuleList([EncoderBlock(config) for _ in range(config.n_layers)])
        # pre-norm leaves the residual stream un-normalised: normalise once at the end
        if config.norm_first:
            self.final_norm = nn.LayerNorm(config.d_model, bias=config.bias)
        else:
            self.final_norm = nn.Identity()

    def forward(
        self,
        x: Tensor,
        key_padding_mask: Optional[Tensor] = None,
        attn_mask: Optional[Tensor] = None,
        return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """x: (B, T, C) embedded tokens. key_padding_mask: (B, T) bool, ``True`` = padding.
        attn_mask: (T, T) bool, ``True`` = may attend.

        Returns the hidden states (B, T, C); with ``return_attention=True`` returns
        ``(hidden, attentions)`` where ``attentions`` is a list of n_layers tensors (B, H, T, T),
        the attention probabilities of each layer (what attention rollout multiplies).
        """
        attentions = []
        for block in self.blocks:
            x, probs = block(x, key_padding_mask, attn_mask, return_attention)  # (B, T, C)
            if return_attention:
                attentions.append(probs)  # (B, H, T, T)
        x = self.final_norm(x)  # (B, T, C)
        return (x, attentions) if return_attention else x

    def num_parameters(self) -> int:
        return parameters.count_parameters(self)


def to_torch_encoder_layer(block: EncoderBlock) -> nn.TransformerEncoderLayer:
    """A ``torch.nn.TransformerEncoderLayer(batch_first=True, activation="gelu")`` with a copy of
    ``block``'s weights; in eval mode both compute the same function."""
    attention = block.attention
    bias = attention.qkv.bias is not None
    ref = attention.qkv.weight
    layer = nn.TransformerEncoderLayer(
        d_model=attention.d_model,
        nhead=attention.n_heads,
        dim_feedforward=block.mlp.fc1.out_features,
        dropout=attention.dropout,
        activation="gelu",
        layer_norm_eps=block.norm1.eps,
        batch_first=True,
        norm_first=block.norm_first,
        bias=bias,
        device=ref.device,
        dtype=ref.dtype,
    )
    layer.self_attn.load_state_dict(to_torch_mha(attention).state_dict())
    layer.linear1.load_state_dict(block.mlp.fc1.state_dict())
    layer.linear2.load_state_dict(block.mlp.fc2.state_dict())
    layer.norm1.load_state_dict(block.norm1.state_dict())
    layer.norm2.load_state_dict(block.norm2.state_dict())
    return layer.train(block.training)
