"""Chapter 2's exercise checks: pass on the book's reference answers, fail on the stubs and on
plausible wrong answers, with a message that says what is wrong.

Each wrong answer is one row of ``MISTAKES``: the exercise, the answer, the pieces of text the
learner must read, and what else must hold of the result (tests/exercise_conditions.py).
"""
import pytest
import torch

from course_utils.exercises import run_check
from exercise_conditions import also, assert_mistake, failed, not_failed, only, passed_where


# ---------------------------------------------------------------------------------------------
# vit.patchify
# ---------------------------------------------------------------------------------------------
PATCHIFY = "vit.patchify"


def patchify_column_major(images, patch_size):
    B, C, H, W = images.shape
    p = patch_size
    x = images.reshape(B, C, H // p, p, W // p, p).permute(0, 4, 2, 1, 3, 5)
    return x.reshape(B, -1, C * p * p)


def patchify_channels_last(images, patch_size):
    B, C, H, W = images.shape
    p = patch_size
    x = images.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(B, -1, C * p * p)


def patchify_plain_reshape(images, patch_size):
    B, C, H, W = images.shape
    return images.reshape(B, -1, C * patch_size * patch_size)


def patchify_square_only(images, patch_size):
    B, C, H, W = images.shape
    p, g = patch_size, H // patch_size
    x = images.reshape(B, C, g, p, g, p).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(B, g * g, C * p * p)


def test_patchify_alternative_with_unfold_passes():
    def unfold_version(images, patch_size):
        return torch.nn.functional.unfold(images, patch_size, stride=patch_size).transpose(1, 2)

    assert run_check("vit.patchify", unfold_version).passed


# ---------------------------------------------------------------------------------------------
# vit.add_cls_and_positions
# ---------------------------------------------------------------------------------------------
CLS = "vit.add_cls_and_positions"


def cls_positions_before_concat(tokens, cls_token, pos_embed):
    x = tokens + pos_embed[:, : tokens.shape[1]]
    return torch.cat([cls_token.expand(tokens.shape[0], -1, -1), x], dim=1)


def cls_positions_skip_cls(tokens, cls_token, pos_embed):
    return torch.cat([cls_token.expand(tokens.shape[0], -1, -1), tokens + pos_embed[:, 1:]], dim=1)


def cls_appended_last(tokens, cls_token, pos_embed):
    return torch.cat([tokens, cls_token.expand(tokens.shape[0], -1, -1)], dim=1) + pos_embed


def cls_no_positions(tokens, cls_token, pos_embed):
    return torch.cat([cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)


def cls_not_expanded(tokens, cls_token, pos_embed):
    return torch.cat([cls_token, tokens], dim=1) + pos_embed


def cls_detached(tokens, cls_token, pos_embed):
    out = torch.cat([cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1) + pos_embed
    return out.detach()


# ---------------------------------------------------------------------------------------------
# vit.random_masking
# ---------------------------------------------------------------------------------------------
MASKING = "vit.random_masking"


def _from_keep(keep, B, N):
    mask = torch.ones(B, N, dtype=torch.bool)
    mask.scatter_(1, keep, False)
    return keep, mask


def masking_per_batch(batch_size, n_patches, mask_ratio, generator=None):
    n_keep = int(n_patches * (1 - mask_ratio))
    noise = torch.rand(n_patches, generator=generator)  # one mask for the whole batch
    keep = noise.argsort()[:n_keep].expand(batch_size, -1).clone()
    return _from_keep(keep, batch_size, n_patches)


def masking_bernoulli(batch_size, n_patches, mask_ratio, generator=None):
    mask = torch.rand(batch_size, n_patches, generator=generator) < mask_ratio
    n_keep = int(n_patches * (1 - mask_ratio))
    keep = (~mask).float().argsort(dim=1, descending=True, stable=True)[:, :n_keep]
    return keep, mask


def masking_inverted(batch_size, n_patches, mask_ratio, generator=None):
    keep, mask = _from_keep(torch.rand(batch_size, n_patches, generator=generator).argsort(1)[
        :, : int(n_patches * (1 - mask_ratio))], batch_size, n_patches)
    return keep, ~mask


def masking_first_patches(batch_size, n_patches, mask_ratio, generator=None):
    n_keep = int(n_patches * (1 - mask_ratio))
    noise = torch.rand(batch_size, n_patches, generator=generator)
    keep = noise[:, :n_keep].argsort(1) * 0 + torch.arange(n_keep)  # always the first patches
    return _from_keep(keep, batch_size, n_patches)


def masking_ignores_generator(batch_size, n_patches, mask_ratio, generator=None):
    n_keep = int(n_patches * (1 - mask_ratio))
    keep = torch.rand(batch_size, n_patches).argsort(1)[:, :n_keep]
    return _from_keep(keep, batch_size, n_patches)


# ---------------------------------------------------------------------------------------------
# The wrong answers: (exercise, answer, texts the learner reads, what else holds)
# ---------------------------------------------------------------------------------------------
SMALLEST = "B=1, C=1, H=4, W=4, patch 2 -> shape (1, 4, 4)"
MISTAKES = [
    (PATCHIFY, patchify_column_major, ("column-major order",), failed(SMALLEST)),
    (PATCHIFY, patchify_channels_last, ("channels sit in the wrong axis",),
     not_failed(SMALLEST)),  # with C = 1 the channel order cannot show
    (PATCHIFY, patchify_plain_reshape, ("A plain reshape does not cut patches",), None),
    (PATCHIFY, patchify_square_only, ("your function raised RuntimeError",),
     only("B=2, C=3, H=8, W=12, patch 4 -> shape (2, 6, 48)")),

    (CLS, cls_positions_before_concat, ("Positions were added before the class token was concatenated",), None),
    (CLS, cls_positions_skip_cls, ("The class token has no position",), None),
    (CLS, cls_appended_last, ("The class token goes first",), None),
    (CLS, cls_no_positions, ("You forgot the position embeddings",), None),
    (CLS, cls_not_expanded, ("your function raised RuntimeError",),
     not_failed("B=1, N=4, D=8 -> shape (1, 5, 8)")),  # a batch of 1 works
    (CLS, cls_detached, ("through autograd",), only("gradients reach the class token and the position embeddings")),

    (MASKING, masking_per_batch, ("torch.rand(batch_size, n_patches)",), also(
        failed("each sample is masked independently (batch of 32, 16 patches: the masks differ)"),
        passed_where("keeps exactly"))),
    (MASKING, masking_bernoulli, ("expected exactly", "rank N random noises"), None),
    (MASKING, masking_inverted, ("True means masked",), None),
    (MASKING, masking_first_patches, (),
     failed("uniform: over many samples every patch is masked ≈ mask_ratio of the time")),
    (MASKING, masking_ignores_generator, (),
     only("deterministic: the same seed gives the same masks, another seed other masks")),
]


@pytest.mark.parametrize("exercise, answer, expected, holds", MISTAKES, ids=[row[1].__name__ for row in MISTAKES])
def test_wrong_answer_fails_with_its_hint(exercise, answer, expected, holds):
    assert_mistake(exercise, answer, expected, holds)
