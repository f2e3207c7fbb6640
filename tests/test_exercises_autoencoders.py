"""Chapter 5's exercise checks: pass on the book's reference answers, fail on the stubs and on
plausible wrong answers, with a message that says what is wrong."""
import pytest
import torch
import torch.nn.functional as F

from course_utils.exercises import run_check
from exercise_conditions import assert_mistake, case
from exercise_support import book, failed_cases, failure  # noqa: F401  (book: a fixture)


# --- reparameterize ------------------------------------------------------------------------------
def reparam_variance(mu, logvar, generator=None):
    return mu + torch.exp(logvar) * torch.randn(mu.shape, generator=generator)


def reparam_logvar_as_std(mu, logvar, generator=None):
    return mu + logvar * torch.randn(mu.shape, generator=generator)


def reparam_no_sampling(mu, logvar, generator=None):
    return mu


def reparam_detached(mu, logvar, generator=None):
    return (mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator)).detach()


def reparam_noise_left_on_the_cpu(mu, logvar, generator=None):
    return mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator)  # no .to(mu.device)


@pytest.mark.parametrize("answer, expected", [
    (reparam_variance, "variance"),
    (reparam_logvar_as_std, "logvar is log σ²"),
    (reparam_no_sampling, "You returned μ"),
    (reparam_detached, "does not depend on μ"),
    (reparam_noise_left_on_the_cpu, "draw ε on the CPU and move it to μ's device"),
])
def test_reparameterize_mistakes(answer, expected):
    _, text = failure("autoencoders.reparameterize", answer)
    assert expected in text


# --- vae_loss ------------------------------------------------------------------------------------
def _parts(logits, x, mu, logvar):
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
    return bce, kl


def vae_kl_sign(logits, x, mu, logvar):
    bce, kl = _parts(logits, x, mu, logvar)
    return (bce.sum(1) - kl.sum(1)).mean()


def vae_no_kl(logits, x, mu, logvar):
    bce, _ = _parts(logits, x, mu, logvar)
    return bce.sum(1).mean()


def vae_mean_bce(logits, x, mu, logvar):
    bce, kl = _parts(logits, x, mu, logvar)
    return F.binary_cross_entropy_with_logits(logits, x) + kl.sum(1).mean()


def vae_batch_sum(logits, x, mu, logvar):
    bce, kl = _parts(logits, x, mu, logvar)
    return bce.sum() + kl.sum()


def vae_sigma_not_logvar(logits, x, mu, logvar):
    bce, _ = _parts(logits, x, mu, logvar)  # treats logvar as σ: KL with σ² = logvar²
    kl = -0.5 * (1 + torch.log(logvar.pow(2) + 1e-12) - mu.pow(2) - logvar.pow(2))
    return (bce.sum(1) + kl.sum(1)).mean()


def vae_probabilities(logits, x, mu, logvar):
    _, kl = _parts(logits, x, mu, logvar)
    bce = F.binary_cross_entropy_with_logits(torch.sigmoid(logits), x, reduction="none")
    return (bce.sum(1) + kl.sum(1)).mean()


@pytest.mark.parametrize("answer, expected", [
    (vae_kl_sign, "wrong sign"),
    (vae_no_kl, "KL term is missing"),
    (vae_mean_bce, "averaged over the pixels"),
    (vae_batch_sum, "average over the batch"),
    (vae_sigma_not_logvar, "logvar is log σ², not σ"),
    (vae_probabilities, "logits"),
])
def test_vae_loss_mistakes(answer, expected):
    _, text = failure("autoencoders.vae_loss", answer)
    assert expected in text


# --- crop_and_concat ------------------------------------------------------------------------------
def concat_batch_axis(up, skip):
    h, w = up.shape[-2:]
    top, left = (skip.shape[-2] - h) // 2, (skip.shape[-1] - w) // 2
    return torch.cat([up, skip[:, :, top:top + h, left:left + w]], dim=0)


def concat_corner(up, skip):
    h, w = up.shape[-2:]
    return torch.cat([up, skip[:, :, :h, :w]], dim=1)


def concat_reversed(up, skip):
    h, w = up.shape[-2:]
    top, left = (skip.shape[-2] - h) // 2, (skip.shape[-1] - w) // 2
    return torch.cat([skip[:, :, top:top + h, left:left + w], up], dim=1)


def concat_no_crop(up, skip):
    return torch.cat([up, skip], dim=1)


def concat_ceil_offset(up, skip):
    h, w = up.shape[-2:]
    top, left = -(-(skip.shape[-2] - h) // 2), -(-(skip.shape[-1] - w) // 2)  # rounds up: wrong for odd
    return torch.cat([up, skip[:, :, top:top + h, left:left + w]], dim=1)


@pytest.mark.parametrize("answer, expected", [
    (concat_batch_axis, "channel axis"),
    (concat_corner, "Crop the centre"),
    (concat_reversed, "decoder map first"),
    (concat_no_crop, "raised RuntimeError"),
    (concat_ceil_offset, "odd difference"),
])
def test_crop_and_concat_mistakes(answer, expected):
    _, text = failure("autoencoders.crop_and_concat", answer)
    assert expected in text


# --- dice ---------------------------------------------------------------------------------------
def dice_no_smoothing(pred, target, eps=1e-6):
    pred, target = pred.float(), target.float()
    return 2 * (pred * target).sum((-2, -1)) / (pred.sum((-2, -1)) + target.sum((-2, -1)))


def dice_batch_pooled(pred, target, eps=1e-6):
    pred, target = pred.float(), target.float()
    d = (2 * (pred * target).sum() + eps) / (pred.sum() + target.sum() + eps)
    return d.expand(pred.shape[:-2])


def dice_scalar_mean(pred, target, eps=1e-6):
    pred, target = pred.float(), target.float()
    return ((2 * (pred * target).sum((-2, -1)) + eps) / (pred.sum((-2, -1)) + target.sum((-2, -1)) + eps)).mean()


def dice_iou(pred, target, eps=1e-6):
    pred, target = pred.float(), target.float()
    inter = (pred * target).sum((-2, -1))
    return (inter + eps) / (pred.sum((-2, -1)) + target.sum((-2, -1)) - inter + eps)


def dice_bool_arithmetic(pred, target, eps=1e-6):
    inter = (pred & target).sum((-2, -1))  # fails on float masks
    return (2 * inter + eps) / (pred.sum((-2, -1)) + target.sum((-2, -1)) + eps)


@pytest.mark.parametrize("answer, expected", [
    (dice_no_smoothing, "empty masks agree"),
    (dice_batch_pooled, "one Dice per image"),
    (dice_scalar_mean, "one Dice per image"),
    (dice_iou, "IoU"),
    (dice_bool_arithmetic, "float 0/1 masks"),
])
def test_dice_mistakes(answer, expected):
    result, text = failure("autoencoders.dice", answer)
    assert expected in text


# --- the cases for gradient flow, stability, edges, dtype and in-place changes ---------------------
def reparam_sigma_detached(mu, logvar, generator=None):
    eps = torch.randn(mu.shape, generator=generator).to(mu.device)
    return mu + torch.exp(0.5 * logvar).detach() * eps  # the same value, no gradient to log σ²


def reparam_in_place(mu, logvar, generator=None):
    eps = torch.randn(mu.shape, generator=generator).to(mu.device)
    return mu.add_(torch.exp(0.5 * logvar) * eps) if not mu.requires_grad else mu + torch.exp(0.5 * logvar) * eps


def reparam_float32(mu, logvar, generator=None):
    eps = torch.randn(mu.shape, generator=generator).to(mu.device)
    return (mu + torch.exp(0.5 * logvar) * eps).float()


def vae_kl_detached(logits, x, mu, logvar):
    bce, kl = _parts(logits, x, mu, logvar)
    return (bce.sum(1) + kl.sum(1).detach()).mean()


def vae_naive_log_sigmoid(logits, x, mu, logvar):
    p = torch.sigmoid(logits)
    bce = -(x * torch.log(p) + (1 - x) * torch.log(1 - p))
    _, kl = _parts(logits, x, mu, logvar)
    return (bce.sum(1) + kl.sum(1)).mean()


def vae_in_place(logits, x, mu, logvar):
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    var = logvar.exp_() if not logvar.requires_grad else logvar.exp()
    kl = -0.5 * (1 + torch.log(var) - mu.pow(2) - var)
    return (bce.sum(1) + kl.sum(1)).mean()


def dice_in_place(pred, target, eps=1e-6):
    pred, target = pred.float(), target.float()
    pred *= target  # overwrites a float input
    return (2 * pred.sum((-2, -1)) + eps) / (pred.sum((-2, -1)) + target.sum((-2, -1)) + eps)


def dice_no_default_eps(pred, target, eps=0.0):
    pred, target = pred.float(), target.float()
    return (2 * (pred * target).sum((-2, -1)) + eps) / (pred.sum((-2, -1)) + target.sum((-2, -1)) + eps)


def concat_round_offset(up, skip):
    h, w = up.shape[-2:]
    top, left = round((skip.shape[-2] - h) / 2), round((skip.shape[-1] - w) / 2)
    return torch.cat([up, skip[:, :, top:top + h, left:left + w]], dim=1)


def concat_float32(up, skip):
    h, w = up.shape[-2:]
    top, left = (skip.shape[-2] - h) // 2, (skip.shape[-1] - w) // 2
    return torch.cat([up, skip[:, :, top:top + h, left:left + w]], dim=1).float()


@pytest.mark.parametrize("exercise, answer, case_name", [
    ("autoencoders.reparameterize", reparam_sigma_detached, "gradients reach μ and log σ²"),
    ("autoencoders.reparameterize", reparam_in_place, "left unchanged"),
    ("autoencoders.reparameterize", reparam_float32, "float64"),
    ("autoencoders.vae_loss", vae_kl_detached, "gradients with respect to logits"),
    ("autoencoders.vae_loss", vae_naive_log_sigmoid, "saturated logits"),
    ("autoencoders.vae_loss", vae_in_place, "left unchanged"),
    ("autoencoders.dice", dice_in_place, "left unchanged"),
    ("autoencoders.dice", dice_no_default_eps, "default eps"),
    ("autoencoders.crop_and_concat", concat_round_offset, "one extra row and three extra columns"),
    ("autoencoders.crop_and_concat", concat_float32, "one extra row"),
])
def test_new_cases_catch_their_mistakes(exercise, answer, case_name):
    assert_mistake(exercise, answer, (), holds=case(case_name))  # the targeted case fails

