"""Chapter 2's exercise checks: pass on the book's reference answers, fail on the stubs and on
plausible wrong answers, with a message that says what is wrong.

Each wrong answer is one row of ``MISTAKES``: the exercise, the answer, the pieces of text the
learner must read, and what else must hold of the result (tests/exercise_conditions.py).
"""
import math

import pytest
import torch

from course_utils.exercises import run_check
from course_utils.exercises import vit as checks
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


def patchify_float32(images, patch_size):
    B, C, H, W = images.shape
    p = patch_size
    x = images.float().reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(B, -1, C * p * p)


def patchify_detached(images, patch_size):
    return torch.nn.functional.unfold(images.detach(), patch_size, stride=patch_size).transpose(1, 2)


def cls_adds_in_place(tokens, cls_token, pos_embed):
    tokens += pos_embed[:, 1:]  # right values, but the caller's tokens changed
    return torch.cat([cls_token.expand(tokens.shape[0], -1, -1) + pos_embed[:, :1], tokens], dim=1)


def cls_tokens_detached(tokens, cls_token, pos_embed):
    return torch.cat([cls_token.expand(tokens.shape[0], -1, -1), tokens.detach()], dim=1) + pos_embed


def cls_float32_buffer(tokens, cls_token, pos_embed):
    B, N, D = tokens.shape
    x = torch.zeros(B, N + 1, D)  # float32 whatever the inputs
    x[:, 0] = cls_token[0, 0]
    x[:, 1:] = tokens
    return x + pos_embed


def _masking_with(n_keep_of):
    def masking(batch_size, n_patches, mask_ratio, generator=None):
        n_keep = n_keep_of(n_patches * (1 - mask_ratio))
        keep = torch.rand(batch_size, n_patches, generator=generator).argsort(1)[:, :n_keep]
        return _from_keep(keep, batch_size, n_patches)
    return masking


masking_rounds = _masking_with(round)  # 3.5 -> 4
masking_rounds.__name__ = "masking_rounds"
masking_ceil = _masking_with(math.ceil)
masking_ceil.__name__ = "masking_ceil"
masking_keeps_one = _masking_with(lambda x: max(1, int(x)))  # "keep at least one patch"
masking_keeps_one.__name__ = "masking_keeps_one"


def test_random_masking_accepts_both_readings_of_n_keep():
    exact = _masking_with(lambda x: math.floor(round(x, 9)))  # 1 for N = 10, r = 0.9
    assert run_check(MASKING, exact).passed
    assert run_check(MASKING, _masking_with(int)).passed  # 0 there, in floating point
    assert checks.n_keep_readings(10, 0.9) == [0, 1]
    assert checks.n_keep_readings(14, 0.75) == [3]


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
    (CLS, cls_detached, ("through autograd",),
     only("gradients reach the class token and the position embeddings", "gradients reach the patch tokens")),

    (MASKING, masking_per_batch, ("torch.rand(batch_size, n_patches)",), also(
        failed("each sample is masked independently (batch of 32, 16 patches: the masks differ)"),
        passed_where("keeps exactly"))),
    (MASKING, masking_bernoulli, ("expected exactly", "rank N random noises"), None),
    (MASKING, masking_inverted, ("True means masked",), None),
    (MASKING, masking_first_patches, (),
     failed("uniform: over many samples every patch is masked ≈ mask_ratio of the time")),
    (MASKING, masking_ignores_generator, (),
     only("deterministic: the same seed gives the same masks, another seed other masks")),

    (PATCHIFY, patchify_float32, ("dtype torch.float32, expected torch.float64",),
     only("float64 images give float64 patches; the images are not modified")),
    (PATCHIFY, patchify_detached, ("do not depend on the images through autograd",),
     only("gradients flow back to the images (patchify is part of the model)")),
    (CLS, cls_adds_in_place, ("changed `tokens` in place",),  # and += on a leaf that needs grad raises
     only("tokens, cls_token and pos_embed are not modified (no in-place +=)", "gradients reach the patch tokens")),
    (CLS, cls_tokens_detached, ("does not depend on `tokens`",), only("gradients reach the patch tokens")),
    (CLS, cls_float32_buffer, ("Keep the inputs' dtype",),
     only("float64 inputs give a float64 result")),
    (MASKING, masking_rounds, ("truncated (not rounded to the nearest)",),
     only("B=3, N=14, mask_ratio=0.75: N (1 - r) = 3.5 is not an integer, truncated to 3: every sample "
          "keeps exactly 3 patches")),
    (MASKING, masking_ceil, ("truncated",), failed(
        "B=3, N=14, mask_ratio=0.75: N (1 - r) = 3.5 is not an integer, truncated to 3: every sample "
        "keeps exactly 3 patches")),
    (MASKING, masking_keeps_one, ("expected (2, n_keep) with n_keep = 0",),
     only("B=2, N=16, mask_ratio=1.0, everything masked: every sample keeps exactly 0 patches")),
]


@pytest.mark.parametrize("exercise, answer, expected, holds", MISTAKES, ids=[row[1].__name__ for row in MISTAKES])
def test_wrong_answer_fails_with_its_hint(exercise, answer, expected, holds):
    assert_mistake(exercise, answer, expected, holds)


def test_the_packages_references_pass_the_checks():
    """The functions chapter 2 falls back on when an exercise is skipped are correct answers."""
    from course_utils.models import vit

    assert run_check(PATCHIFY, vit.patchify).passed
    assert run_check(CLS, vit.add_cls_and_positions).passed
    assert run_check(MASKING, vit.random_masking).passed
