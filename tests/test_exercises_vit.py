"""Chapter 2's exercise checks: pass on the book's reference answers, fail on the stubs and on
plausible wrong answers, with a message that says what is wrong."""
import pytest
import torch

from course_utils.exercises import run_check
from exercise_support import book, failed_cases, failure  # noqa: F401  (book: a fixture)


# ---------------------------------------------------------------------------------------------
# vit.patchify
# ---------------------------------------------------------------------------------------------
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


def test_patchify_column_major_order_fails_with_hint():
    result, text = failure("vit.patchify", patchify_column_major)
    assert "column-major order" in text
    assert "B=1, C=1, H=4, W=4, patch 2 -> shape (1, 4, 4)" in failed_cases(result)


def test_patchify_channels_last_fails_with_hint():
    result, text = failure("vit.patchify", patchify_channels_last)
    assert "channels sit in the wrong axis" in text
    assert "B=1, C=1, H=4, W=4, patch 2 -> shape (1, 4, 4)" not in failed_cases(result)  # C = 1 is immune


def test_patchify_plain_reshape_fails_with_hint():
    result, text = failure("vit.patchify", patchify_plain_reshape)
    assert "A plain reshape does not cut patches" in text


def test_patchify_assuming_square_images_fails():
    result, text = failure("vit.patchify", patchify_square_only)
    assert failed_cases(result) == ["B=2, C=3, H=8, W=12, patch 4 -> shape (2, 6, 48)"]
    assert "your function raised RuntimeError" in text


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


def test_cls_positions_added_before_concatenation_fails_with_hint():
    result, text = failure(CLS, cls_positions_before_concat)
    assert "Positions were added before the class token was concatenated" in text


def test_cls_without_position_fails_with_hint():
    result, text = failure(CLS, cls_positions_skip_cls)
    assert "The class token has no position" in text


def test_cls_appended_last_fails_with_hint():
    result, text = failure(CLS, cls_appended_last)
    assert "The class token goes first" in text


def test_cls_without_positions_fails_with_hint():
    result, text = failure(CLS, cls_no_positions)
    assert "You forgot the position embeddings" in text


def test_cls_not_expanded_over_the_batch_fails():
    result, text = failure(CLS, cls_not_expanded)
    assert "B=1, N=4, D=8 -> shape (1, 5, 8)" not in failed_cases(result)  # a batch of 1 works
    assert "your function raised RuntimeError" in text


def test_cls_detached_fails_on_gradients():
    result, text = failure(CLS, cls_detached)
    assert failed_cases(result) == ["gradients reach the class token and the position embeddings"]
    assert "through autograd" in text


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


def test_masking_per_batch_fails_with_hint():
    result, text = failure(MASKING, masking_per_batch)
    assert "each sample is masked independently (batch of 32, 16 patches: the masks differ)" in failed_cases(result)
    assert all(c.passed for c in result.cases if "keeps exactly" in c.name)
    assert "torch.rand(batch_size, n_patches)" in text


def test_masking_bernoulli_fails_on_the_exact_count():
    result, text = failure(MASKING, masking_bernoulli)
    assert "expected exactly" in text and "rank N random noises" in text


def test_masking_inverted_fails_with_hint():
    result, text = failure(MASKING, masking_inverted)
    assert "True means masked" in text


def test_masking_always_the_first_patches_fails():
    result, text = failure(MASKING, masking_first_patches)
    assert "uniform: over many samples every patch is masked ≈ mask_ratio of the time" in failed_cases(result)


def test_masking_without_the_generator_fails():
    result, text = failure(MASKING, masking_ignores_generator)
    assert failed_cases(result) == ["deterministic: the same seed gives the same masks, another seed other masks"]
