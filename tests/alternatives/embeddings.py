"""Correct answers to Chapter 6's exercises, written differently from the book's reference answers.

Each string is the complete source of an exercise cell's function; the tests check that every one
passes its check, and the first of each is pasted into the student notebook to prove the chapter
runs with it.
"""

SKIPGRAM_OFFSETS = '''
import torch


def skipgram_pairs(ids, window):
    """Pairs by distance d = 1..window, both directions: another row order than the reference."""
    pairs = []
    for d in range(1, window + 1):
        for i in range(len(ids) - d):
            pairs.append([ids[i], ids[i + d]])
            pairs.append([ids[i + d], ids[i]])
    if not pairs:
        return torch.zeros((0, 2), dtype=torch.long)
    return torch.tensor(pairs, dtype=torch.long)
'''

SKIPGRAM_VECTORISED = '''
import torch


def skipgram_pairs(ids, window):
    """All position pairs at once: a (T, T) distance matrix, masked."""
    x = torch.as_tensor(list(ids), dtype=torch.long).reshape(-1)  # (T,)
    pos = torch.arange(len(x))
    dist = (pos[:, None] - pos[None, :]).abs()  # (T, T)
    i, j = torch.nonzero((dist <= window) & (dist > 0), as_tuple=True)
    return torch.stack([x[i], x[j]], dim=1)  # (P, 2)
'''

SKIPGRAM_NUMPY = '''
import numpy as np
import torch


def skipgram_pairs(ids, window):
    a = np.asarray(ids, dtype=np.int64)
    rows = [(a[i], a[j]) for i in range(len(a)) for j in range(len(a)) if 0 < abs(i - j) <= window]
    return torch.from_numpy(np.array(rows, dtype=np.int64).reshape(-1, 2))
'''

CLIP_LOGSUMEXP = '''
import torch


def clip_loss(image_features, text_features, logit_scale):
    """-log softmax of the diagonal, written with logsumexp over rows and over columns."""
    I = image_features / image_features.norm(dim=1, keepdim=True)
    T = text_features / text_features.norm(dim=1, keepdim=True)
    logits = logit_scale * (I @ T.t())  # (B, B)
    diag = torch.diagonal(logits)
    loss_images = (torch.logsumexp(logits, dim=1) - diag).mean()
    loss_texts = (torch.logsumexp(logits, dim=0) - diag).mean()
    return 0.5 * (loss_images + loss_texts)
'''

CLIP_FLOAT64 = '''
import torch
import torch.nn.functional as F


def clip_loss(image_features, text_features, logit_scale):
    """In float64 with einsum, cast back to the features' dtype."""
    img = F.normalize(image_features.double(), dim=1)
    txt = F.normalize(text_features.double(), dim=1)
    logits = torch.einsum("id,jd->ij", img, txt) * logit_scale.double()
    target = torch.arange(logits.shape[0], device=logits.device)
    loss = F.cross_entropy(logits, target) + F.cross_entropy(logits.transpose(0, 1), target)
    return (loss / 2).to(image_features.dtype)
'''

ZERO_SHOT_EINSUM = '''
import torch


def zero_shot_classifier(image_features, text_features):
    img = image_features / image_features.norm(dim=-1, keepdim=True)
    txt = text_features / text_features.norm(dim=-1, keepdim=True)
    sims = torch.einsum("nd,kd->nk", img, txt)  # (N, K)
    return sims, torch.max(sims, dim=1).indices
'''

ZERO_SHOT_FLOAT64 = '''
import torch
import torch.nn.functional as F


def zero_shot_classifier(image_features, text_features):
    img = F.normalize(image_features.double(), dim=1)
    txt = F.normalize(text_features.double(), dim=1)
    sims = img @ txt.T  # (N, K) in float64
    return sims.to(image_features.dtype), sims.argmax(dim=1).long()
'''

ALTERNATIVES = {
    "embeddings.skipgram_pairs": [SKIPGRAM_OFFSETS, SKIPGRAM_VECTORISED, SKIPGRAM_NUMPY],
    "embeddings.clip_loss": [CLIP_LOGSUMEXP, CLIP_FLOAT64],
    "embeddings.zero_shot_classifier": [ZERO_SHOT_EINSUM, ZERO_SHOT_FLOAT64],
}
