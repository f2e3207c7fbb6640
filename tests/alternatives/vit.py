"""Correct answers to Chapter 2's exercises, written differently from the book's reference.

Each string is the complete source of an exercise cell (imports first). The first answer of each
exercise computes the same values as the reference (for ``random_masking``: the same random draw),
so a chapter run with it prints the same numbers; the others take another valid route.
"""

PATCHIFY_UNFOLD = '''
import torch
import torch.nn.functional as F


def patchify(images, patch_size):
    # F.unfold lists every patch as a column, flattened (C, p, p): transpose to (B, N, C*p*p)
    return F.unfold(images, patch_size, stride=patch_size).transpose(1, 2)
'''

PATCHIFY_LOOPS = '''
import torch


def patchify(images, patch_size):
    B, C, H, W = images.shape
    p = patch_size
    patches = []
    for top in range(0, H, p):  # rows of patches, top to bottom
        for left in range(0, W, p):  # left to right within a row
            patches.append(images[:, :, top:top + p, left:left + p].reshape(B, C * p * p))
    return torch.stack(patches, dim=1)  # (B, N, C*p*p)
'''

PATCHIFY_TENSOR_UNFOLD = '''
import torch


def patchify(images, patch_size):
    B, C, H, W = images.shape
    p = patch_size
    x = images.unfold(2, p, p).unfold(3, p, p)  # (B, C, H/p, W/p, p, p)
    return x.permute(0, 2, 3, 1, 4, 5).reshape(B, -1, C * p * p)
'''

CLS_REPEAT = '''
import torch


def add_cls_and_positions(tokens, cls_token, pos_embed):
    cls = cls_token.repeat(tokens.shape[0], 1, 1)  # (B, 1, D), a copy per image
    return torch.cat((cls, tokens), 1) + pos_embed
'''

CLS_FILL = '''
import torch


def add_cls_and_positions(tokens, cls_token, pos_embed):
    # positions added piece by piece: position 0 to the class token, 1..N to the patches
    B = tokens.shape[0]
    first = cls_token.expand(B, 1, -1) + pos_embed[:, :1]
    rest = tokens + pos_embed[:, 1:]
    return torch.cat([first, rest], dim=1)
'''

CLS_NEW_EMPTY = '''
import torch


def add_cls_and_positions(tokens, cls_token, pos_embed):
    B, N, D = tokens.shape
    x = tokens.new_empty(B, N + 1, D)  # a new tensor: the inputs stay untouched
    x[:, 0] = cls_token[0, 0]
    x[:, 1:] = tokens
    return x + pos_embed
'''

MASKING_TOPK = '''
import torch


def random_masking(batch_size, n_patches, mask_ratio, generator=None):
    # the reference's noise; topk of the smallest instead of argsort
    n_keep = int(n_patches * (1 - mask_ratio))
    noise = torch.rand(batch_size, n_patches, generator=generator)
    keep = noise.topk(n_keep, dim=1, largest=False).indices  # (B, n_keep)
    mask = torch.ones(batch_size, n_patches, dtype=torch.bool)
    mask[torch.arange(batch_size)[:, None], keep] = False
    return keep, mask
'''

MASKING_RANDPERM_EXACT = '''
import math
import torch


def random_masking(batch_size, n_patches, mask_ratio, generator=None):
    # one random permutation per sample; n_keep is the exact floor of N (1 - r)
    # (1 for N = 10, r = 0.9, where float arithmetic gives int(0.999...) = 0)
    n_keep = math.floor(round(n_patches * (1 - mask_ratio), 9))
    keeps, masks = [], []
    for _ in range(batch_size):
        keep = torch.randperm(n_patches, generator=generator)[:n_keep]
        mask = torch.ones(n_patches, dtype=torch.bool)
        mask[keep] = False
        keeps.append(keep)
        masks.append(mask)
    return torch.stack(keeps), torch.stack(masks)
'''

ALTERNATIVES = {
    "vit.patchify": [PATCHIFY_UNFOLD, PATCHIFY_LOOPS, PATCHIFY_TENSOR_UNFOLD],
    "vit.add_cls_and_positions": [CLS_REPEAT, CLS_FILL, CLS_NEW_EMPTY],
    "vit.random_masking": [MASKING_TOPK, MASKING_RANDPERM_EXACT],
}
