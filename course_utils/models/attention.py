"""Scaled dot-product attention and multi-head self-attention.

The whole idea in one line (Vaswani et al., 2017, "Attention is all you need"):

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

Each query row of ``Q`` scores every key row of ``K``; the softmax turns one query's scores into
probabilities over the keys; the output is the probability-weighted average of the values ``V``.

Mask conventions used in this package (they differ between libraries -- mind them):

================================  ===============  =============================================
mask                              shape            ``True`` means
================================  ===============  =============================================
``mask`` / ``attn_mask`` (here)   (T, T) or        the query **may attend** to the key
                                  broadcastable    (as in ``F.scaled_dot_product_attention``)
``key_padding_mask`` (here)       (B, T)           the key **is padding** and is ignored
                                                   (as in ``torch.nn.MultiheadAttention``)
``nn.MultiheadAttention``         (T, T)           the query may **not** attend (the opposite of
``attn_mask`` (bool)                               ours: pass ``~attn_mask`` to torch)
================================  ===============  =============================================

A query row whose keys are *all* forbidden has no distribution to take a softmax over (0/0).
``F.scaled_dot_product_attention`` returns zeros for such a row (torch >= 2.5), and so do we:
its probabilities are all 0 and its output is 0, never NaN. (``nn.MultiheadAttention`` gives NaN
there; a fully-masked row only happens when a whole sequence is padding.)
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


def attention_probabilities(
    q: Tensor, k: Tensor, mask: Optional[Tensor] = None, scale: Optional[float] = None
) -> Tensor:
    """The attention weights: one probability distribution over the keys for every query.

    q: (..., Tq, d_k), k: (..., Tk, d_k); mask: bool, broadcastable to (..., Tq, Tk),
    ``True`` = may attend. Returns (..., Tq, Tk); each row sums to 1, or is all 0 when its
    mask row is all ``False`` (the behaviour of ``F.scaled_dot_product_attention``).

    Use it when the weights themselves are wanted (plots, attention rollout); otherwise
    ``F.scaled_dot_product_attention`` computes ``P V`` faster without storing ``P``.
    """
    if scale is None:
        scale = 1.0 / math.sqrt(q.size(-1))
    # S = Q K^T / sqrt(d_k)
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., Tq, Tk)
    if mask is not None:
        # a forbidden key gets score -inf, hence exp(-inf) = 0 weight
        scores = scores.masked_fill(~mask, float("-inf"))  # (..., Tq, Tk)
    # P = softmax(S) over the keys
    probs = scores.softmax(dim=-1)  # (..., Tq, Tk)
    if mask is not None:
        # a row with no allowed key is 0/0 = NaN after the softmax; make it all 0, like F.sdpa
        probs = probs.masked_fill(~mask, 0.0)  # (..., Tq, Tk)
    return probs


def scaled_dot_product_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor] = None
) -> tuple[Tensor, Tensor]:
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(d)) V, returning ``(output, weights)``.

    q: (..., Tq, d), k: (..., Tk, d), v: (..., Tk, d_v); mask as in :func:`attention_probabilities`.
    Returns output (..., Tq, d_v) and weights (..., Tq, Tk): the reference answer of Chapter 1's
    exercise, for cells that need the weights as well as the output.
    """
    weights = attention_probabilities(q, k, mask)  # (..., Tq, Tk)
    return weights @ v, weights  # (..., Tq, d_v), (..., Tq, Tk)


def attention_mask(lengths: Tensor, max_len: int, causal: bool = False) -> Tensor:
    """(B, T, T) bool mask of a padded batch, ``True`` = query i may attend key j.

    Sequence b has real tokens at 0 .. lengths[b]-1. Key j is allowed when j < lengths[b] and,
    with ``causal``, when j <= i. Padded query rows keep the same key rule, so no row is empty.
    """
    positions = torch.arange(max_len, device=lengths.device)  # (T,)
    real_key = positions[None, :] < lengths[:, None]  # (B, T): key j is a real token
    mask = real_key[:, None, :].expand(-1, max_len, -1)  # (B, T_q, T_k)
    if causal:
        mask = mask & causal_mask(max_len, device=lengths.device)  # j <= i
    return mask.contiguous()


def causal_mask(T: int, device: Optional[torch.device] = None) -> Tensor:
    """(T, T) bool mask, ``True`` = may attend: query t sees keys 0..t (a decoder's mask)."""
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def combine_masks(
    key_padding_mask: Optional[Tensor] = None, attn_mask: Optional[Tensor] = None
) -> Optional[Tensor]:
    """Merge the two masks into one bool mask, ``True`` = may attend, or ``None`` if neither.

    key_padding_mask: (B, T), ``True`` = padding. attn_mask: (T, T) (or broadcastable to
    (B, H, T, T)), ``True`` = may attend. The result broadcasts to (B, H, T, T).
    """
    mask = None
    if key_padding_mask is not None:
        mask = ~key_padding_mask[:, None, None, :]  # (B, 1, 1, T): every query, every head
    if attn_mask is not None:
        mask = attn_mask if mask is None else mask & attn_mask  # (B, 1, T, T) or (T, T)
    return mask


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention: ``n_heads`` attentions side by side, each on d_model/n_heads dims.

        head_i = Attention(X W_i^Q, X W_i^K, X W_i^V)
        MHSA(X) = Concat(head_1, ..., head_h) W^O

    The weight layout is that of ``torch.nn.MultiheadAttention`` (one fused (3C, C) input
    projection, q then k then v; an output projection), so weights copy across one to one (see
    :func:`to_torch_mha`). ``dropout`` is applied to the attention probabilities (as torch does)
    and to the output (the residual dropout of the Transformer, which torch keeps in its layer).

    To inspect attention without changing a caller: set ``keep_attention = True`` and every
    forward stores the detached probabilities (B, H, T, T) in ``last_attention``.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}.")
        self.d_model = d_model
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.dropout = dropout
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)  # W^Q, W^K, W^V for all heads
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)  # W^O
        self.attention_dropout = nn.Dropout(dropout)
        self.output_dropout = nn.Dropout(dropout)
        self.keep_attention = False
        self.last_attention: Optional[Tensor] = None

    def forward(
        self,
        x: Tensor,
        key_padding_mask: Optional[Tensor] = None,
        attn_mask: Optional[Tensor] = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Optional[Tensor]]:
        """x: (B, T, C). key_padding_mask: (B, T) bool, ``True`` = padding. attn_mask: (T, T)
        bool, ``True`` = may attend. Returns (out (B, T, C), probs (B, H, T, T) or ``None``).

        The returned probabilities are those before dropout (identical in ``eval()`` mode).
        """
        B, T, C = x.shape
        H, D = self.n_heads, self.head_dim
        q, k, v = self.qkv(x).split(C, dim=-1)  # 3 x (B, T, C)
        q = q.view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
        k = k.view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
        v = v.view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
        mask = combine_masks(key_padding_mask, attn_mask)  # broadcasts to (B, H, T, T)

        probs = None
        if need_weights or self.keep_attention:
            # slow path: P = softmax(Q K^T / sqrt(d)) explicitly, then P V
            probs = attention_probabilities(q, k, mask)  # (B, H, T, T)
            y = self.attention_dropout(probs) @ v  # (B, H, T, D)
            if self.keep_attention:
                self.last_attention = probs.detach()
        else:
            # fast path: the same softmax(Q K^T / sqrt(d)) V, fused, P never stored
            dropout_p = self.dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=dropout_p
            )  # (B, H, T, D)

        # Concat(head_1, ..., head_h)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        # ... W^O
        out = self.output_dropout(self.out_proj(y))  # (B, T, C)
        return out, (probs if need_weights else None)


def to_torch_mha(attention: MultiHeadSelfAttention) -> nn.MultiheadAttention:
    """A ``torch.nn.MultiheadAttention(batch_first=True)`` holding a copy of our weights.

    Called as ``mha(x, x, x, key_padding_mask=kpm, attn_mask=~attn_mask)`` it computes what
    ``attention(x, kpm, attn_mask)`` does (in eval mode; torch has no output dropout). Note the
    ``~``: for a bool ``attn_mask`` torch's ``True`` means *not* allowed.
    """
    bias = attention.qkv.bias is not None
    ref = attention.qkv.weight
    mha = nn.MultiheadAttention(
        attention.d_model, attention.n_heads, dropout=attention.dropout, bias=bias,
        batch_first=True, device=ref.device, dtype=ref.dtype,
    )
    with torch.no_grad():
        mha.in_proj_weight.copy_(attention.qkv.weight)  # (3C, C), rows: q, k, v
        mha.out_proj.weight.copy_(attention.out_proj.weight)  # (C, C)
        if bias:
            mha.in_proj_bias.copy_(attention.qkv.bias)  # (3C,)
            mha.out_proj.bias.copy_(attention.out_proj.bias)  # (C,)
    return mha.train(attention.training)


def from_torch_mha(mha: nn.MultiheadAttention) -> MultiHeadSelfAttention:
    """Our :class:`MultiHeadSelfAttention` holding a copy of a torch ``MultiheadAttention``'s
    weights (the reverse of :func:`to_torch_mha`)."""
    if not mha._qkv_same_embed_dim or mha.bias_k is not None or mha.add_zero_attn:
        raise ValueError("Only plain self-attention (kdim = vdim = embed_dim, no bias_k/v, "
                         "no add_zero_attn) maps onto MultiHeadSelfAttention.")
    bias = mha.in_proj_bias is not None
    ref = mha.in_proj_weight
    attention = MultiHeadSelfAttention(mha.embed_dim, mha.num_heads, dropout=mha.dropout, bias=bias)
    attention = attention.to(device=ref.device, dtype=ref.dtype)
    with torch.no_grad():
        attention.qkv.weight.copy_(mha.in_proj_weight)
        attention.out_proj.weight.copy_(mha.out_proj.weight)
        if bias:
            attention.qkv.bias.copy_(mha.in_proj_bias)
            attention.out_proj.bias.copy_(mha.out_proj.bias)
    return attention.train(mha.training)
