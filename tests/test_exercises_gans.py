"""Chapter 4's exercise checks: pass on the book's reference answers, fail on plausible wrong answers
with a message that says what is wrong."""
import pytest
import torch
import torch.nn.functional as F

from course_utils.exercises import run_check
from exercise_conditions import assert_mistake, case
from exercise_support import book, failed_cases, failure  # noqa: F401  (book: a fixture)

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
])
def test_receptive_field_mistakes(answer, expected):
    _, text = failure("gans.patchgan_receptive_field", answer)
    assert expected in text


def test_receptive_field_accepts_an_int_or_an_integral_float():
    assert run_check("gans.patchgan_receptive_field", rf_float).passed  # 70.0 is a reasonable reading


def rf_text(layers):
    return str(rf_inclusive(layers))


def rf_non_integral(layers):  # a stray division: not a whole number of pixels
    return rf_float(layers) / 1.5


@pytest.mark.parametrize("answer, expected", [
    (rf_text, "expected a number of pixels"),
    (rf_non_integral, "whole number of pixels"),
])
def test_receptive_field_type_mistakes(answer, expected):
    _, text = failure("gans.patchgan_receptive_field", answer)
    assert expected in text


def rf_pops(layers):  # consumes the caller's list
    r, jump = 1, 1
    while layers:
        k, s = layers.pop(0)
        r += (k - 1) * jump
        jump *= s
    return r


def test_receptive_field_must_not_modify_the_list():
    result, text = failure("gans.patchgan_receptive_field", rf_pops)
    assert "changed the list of layers" in text


# --- the families of the new cases: gradient flow and saturated logits ---------------------------
def d_loss_detached_output(D, real, fake):  # D(fake).detach(): the fake term never trains D
    bce = F.binary_cross_entropy_with_logits
    lr, lf = D(real), D(fake).detach()
    return bce(lr, torch.ones_like(lr)) + bce(lf, torch.zeros_like(lf))


def d_loss_real_under_no_grad(D, real, fake):  # the real term computed under no_grad
    bce = F.binary_cross_entropy_with_logits
    with torch.no_grad():
        lr = D(real)
    lf = D(fake.detach())
    return bce(lr, torch.ones_like(lr)) + bce(lf, torch.zeros_like(lf))


def d_loss_naive_log(D, real, fake):  # log(sigmoid(.)): -inf on saturated logits
    return -(torch.log(torch.sigmoid(D(real))).mean() + torch.log(1 - torch.sigmoid(D(fake.detach()))).mean())


def g_loss_naive_log(D, fake):
    return -torch.log(torch.sigmoid(D(fake))).mean()


def g_loss_value_from_detached(D, fake):  # right value, gradient of a different loss
    logits = D(fake)
    value = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    return value.detach() + (logits - logits.detach()).mean() * 0.5


@pytest.mark.parametrize("exercise_id, answer, expected", [
    ("gans.discriminator_loss", d_loss_detached_output, "both terms reach"),
    ("gans.discriminator_loss", d_loss_real_under_no_grad, "both terms reach"),
    ("gans.discriminator_loss", d_loss_naive_log, "saturated logits"),
    ("gans.generator_loss", g_loss_naive_log, "saturated logits"),
    ("gans.generator_loss", g_loss_value_from_detached, "G's gradients"),
])
def test_gradient_and_saturation_cases(exercise_id, answer, expected):
    assert_mistake(exercise_id, answer, (), holds=case(expected))
