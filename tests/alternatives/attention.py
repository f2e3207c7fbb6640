"""Correct answers to Chapter 1's exercises, written differently from the book's reference.

Each string is the complete source of an exercise cell (imports first). The first answer of each
exercise draws the same random numbers as the reference, so a chapter run with it prints the same
numbers; the others take another valid route (loops, float64 inside, another random draw).
"""

SDPA_EINSUM = '''
import math
import torch


def scaled_dot_product_attention(q, k, v, mask=None):
    # einsum scores and a softmax written out: subtract each row's max, exp, normalise
    scores = torch.einsum("...id,...jd->...ij", q, k) / math.sqrt(q.shape[-1])  # (..., T_q, T_k)
    if mask is not None:
        scores = torch.where(mask, scores, torch.tensor(float("-inf"), dtype=scores.dtype))
    scores = scores - scores.amax(dim=-1, keepdim=True)
    weights = scores.exp()
    weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights @ v, weights
'''

SDPA_FLOAT64 = '''
import math
import torch
import torch.nn.functional as F


def scaled_dot_product_attention(q, k, v, mask=None):
    # computed in float64, returned in the inputs' dtype
    scores = torch.matmul(q.double(), k.double().transpose(-1, -2)) * q.size(-1) ** -0.5
    if mask is not None:
        scores = scores.masked_fill(mask.logical_not(), -math.inf)
    weights = F.softmax(scores, dim=-1).to(q.dtype)
    return torch.matmul(weights, v), weights
'''

SDPA_ZERO_ROWS = '''
import torch


def scaled_dot_product_attention(q, k, v, mask=None):
    # like F.scaled_dot_product_attention: a row that allows no key gets weights 0 (not NaN)
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    if mask is None:
        weights = scores.softmax(-1)
    else:
        weights = scores.masked_fill(~mask, float("-inf")).softmax(-1).masked_fill(~mask, 0.0)
    return weights @ v, weights
'''

MASK_BROADCAST = '''
import torch


def attention_mask(lengths, max_len, causal=False):
    i = torch.arange(max_len).view(1, max_len, 1)  # queries
    j = torch.arange(max_len).view(1, 1, max_len)  # keys
    time = (j <= i) if causal else torch.ones_like(i, dtype=torch.bool)  # (1, T, 1 or T)
    return (j < lengths.view(-1, 1, 1)) & time  # (B, T, T)
'''

MASK_LOOPS = '''
import torch


def attention_mask(lengths, max_len, causal=False):
    mask = torch.zeros(len(lengths), max_len, max_len, dtype=torch.bool)
    for b, n in enumerate(lengths.tolist()):
        for i in range(max_len):
            last = min(n, i + 1) if causal else n  # keys 0 .. last-1 are allowed
            mask[b, i, :last] = True
    return mask
'''

MASK_TOKENS_INDEXING = '''
import torch


def mask_tokens(ids, vocab_size, mask_id, special_ids, generator=None, p=0.15):
    # the reference's three draws, in the same order, applied by boolean indexing
    special = torch.isin(ids, torch.tensor(list(special_ids)))
    chosen = torch.rand(ids.shape, generator=generator).lt(p) & ~special
    labels = ids.masked_fill(~chosen, -100)
    u = torch.rand(ids.shape, generator=generator)
    random_words = torch.randint(0, vocab_size, ids.shape, generator=generator)
    inputs = ids.clone()
    inputs[chosen & (u < 0.8)] = mask_id
    replace = chosen & (u >= 0.8) & (u < 0.9)
    inputs[replace] = random_words[replace]
    return inputs, labels
'''

MASK_TOKENS_ONE_DRAW = '''
import torch


def mask_tokens(ids, vocab_size, mask_id, special_ids, generator=None, p=0.15):
    # one uniform u per token decides everything: u < p chooses; u / p splits 80 / 10 / 10
    u = torch.rand(ids.shape, generator=generator)
    special = torch.zeros_like(ids, dtype=torch.bool)
    for s in special_ids:
        special = special | (ids == s)
    chosen = (u < p) & ~special
    split = u / p if p > 0 else u
    labels = torch.where(chosen, ids, -100)
    words = torch.randint(vocab_size, ids.shape, generator=generator)
    inputs = torch.where(chosen & (split < 0.8), mask_id, ids)
    inputs = torch.where(chosen & (split >= 0.8) & (split < 0.9), words, inputs)
    return inputs, labels
'''

ALTERNATIVES = {
    "attention.scaled_dot_product_attention": [SDPA_EINSUM, SDPA_FLOAT64, SDPA_ZERO_ROWS],
    "attention.attention_mask": [MASK_BROADCAST, MASK_LOOPS],
    "attention.mask_tokens": [MASK_TOKENS_INDEXING, MASK_TOKENS_ONE_DRAW],
}
