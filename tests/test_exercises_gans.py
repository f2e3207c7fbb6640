"""Chapter 4's exercise checks: pass on the book's reference answers, fail on plausible wrong answers
with a message that says what is wrong."""
import pytest
import torch
import torch.nn.functional as F

from exercise_support import book, failure  # noqa: F401  (book: a fixture)

bce = F.binary_cross_entropy_with_logits


# --- discriminator_loss ---------------------------------------------------------------------------
def d_swapped(D, real, fake):
    lr, lf = D(real), D(fake.detach())
    return bce(lr, torch.zeros_like(lr)) + bce(lf, torch.ones_like(lf))


def d_not_detached(D, real, fake):
    lr, lf = D(real), D(fake)
    return bce(lr, torch.ones_like(lr)) + bce(lf, torch.zeros_like(lf))


def d_real_only(D, real, fake):
    lr = D(real)
    return bce(lr, torch.ones_like(lr))


def d_sum(D, real, fake):
    lr, lf = D(real), D(fake.detach())
    return bce(lr, torch.ones_like(lr), reduction="sum") + bce(lf, torch.zeros_like(lf), reduction="sum")


def d_sigmoid_twice(D, real, fake):
    lr, lf = torch.sigmoid(D(real)), torch.sigmoid(D(fake.detach()))
    return bce(lr, torch.ones_like(lr)) + bce(lf, torch.zeros_like(lf))


def d_minimax_sign(D, real, fake):  # maximises V instead of minimising the BCE
    lr, lf = D(real), D(fake.detach())
    return -(bce(lr, torch.ones_like(lr)) + bce(lf, torch.zeros_like(lf)))


@pytest.mark.parametrize("answer, expected", [
    (d_swapped, "labels are swapped"),
    (d_not_detached, "fake.detach()"),
    (d_real_only, "Only the real term"),
    (d_sum, "do not sum"),
    (d_sigmoid_twice, "squashes them twice"),
    (d_minimax_sign, "The sign is flipped"),
])
def test_discriminator_loss_mistakes(answer, expected):
    _, text = failure("gans.discriminator_loss", answer)
    assert expected in text


# --- generator_loss -------------------------------------------------------------------------------
def g_saturating(D, fake):
    return torch.log(1 - torch.sigmoid(D(fake))).mean()


def g_label_zero(D, fake):
    lf = D(fake)
    return bce(lf, torch.zeros_like(lf))


def g_detached(D, fake):
    lf = D(fake.detach())
    return bce(lf, torch.ones_like(lf))


def g_sum(D, fake):
    lf = D(fake)
    return bce(lf, torch.ones_like(lf), reduction="sum")


def g_per_sample(D, fake):
    lf = D(fake)
    return bce(lf, torch.ones_like(lf), reduction="none")


@pytest.mark.parametrize("answer, expected", [
    (g_saturating, "saturating minimax loss"),
    (g_label_zero, "target is 1"),
    (g_detached, "Do not detach"),
    (g_sum, "do not sum"),
    (g_per_sample, "expected a scalar"),
])
def test_generator_loss_mistakes(answer, expected):
    _, text = failure("gans.generator_loss", answer)
    assert expected in text


def test_saturating_loss_fails_the_gradient_case_too():
    result, _ = failure("gans.generator_loss", g_saturating)
    assert any("must not vanish" in c.name for c in result.cases if not c.passed)


# --- patchgan_receptive_field ---------------------------------------------------------------------
def rf_no_strides(layers):
    return 1 + sum(k - 1 for k, _ in layers)


def rf_strides_after(layers):
    r = 1
    for i, (k, _) in enumerate(layers):
        jump = 1
        for _, s in layers[i + 1:]:
            jump *= s
        r += (k - 1) * jump
    return r


def rf_inclusive(layers):
    r, jump = 1, 1
    for k, s in layers:
        jump *= s
        r += (k - 1) * jump
    return r


def rf_sum_kernels(layers):
    return sum(k for k, _ in layers)


def rf_float(layers):
    r, jump = 1.0, 1.0
    for k, s in layers:
        r += (k - 1) * jump
        jump *= s
    return r


@pytest.mark.parametrize("answer, expected", [
    (rf_no_strides, "Strides widen the view"),
    (rf_strides_after, "*before* layer l"),
    (rf_inclusive, "earlier layers only"),
    (rf_sum_kernels, "receptive field: expected 70"),
    (rf_float, "expected an int"),
])
def test_receptive_field_mistakes(answer, expected):
    _, text = failure("gans.patchgan_receptive_field", answer)
    assert expected in text
