"""Checks of Chapter 4 (GANs and pix2pix): the two losses of the game and the PatchGAN's view.

* ``gans.discriminator_loss`` -- ``discriminator_loss(D, real, fake)``: BCE with real -> 1 and
  fake -> 0 (each term a batch mean), with the fakes *detached* so that the discriminator step does
  not reach the generator. Compared with ``course_utils.models.gan.discriminator_loss`` on the
  logits; a tiny generator built inside the check must receive no gradient, D's gradients must equal
  the reference's (a detached or no_grad term fails), and saturated logits (±200) must give a finite
  loss. Known mistakes
  (labels swapped, only one term, sums instead of means, probabilities fed to the logits' BCE, the
  sign of V instead of the loss) get their own hint.
* ``gans.generator_loss`` -- ``generator_loss(D, fake)``: the non-saturating loss −mean log D(G(z)).
  Compared with the package's ``generator_loss``; the gradient must reach the generator, and where
  D rejects the fakes (logit −8) it must not vanish (the saturating loss log(1 − D) has gradient
  ≈ 0 there); G's gradients must equal the reference's, and at logit −200 the loss must be a finite 200.
* ``gans.patchgan_receptive_field`` -- the receptive field of a stack of (kernel, stride) layers,
  r = 1 + Σ_l (k_l − 1) Π_{j<l} s_j, against ``course_utils.models.pix2pix.receptive_field``;
  pix2pix's 70 x 70 PatchGAN among the cases, and no layers at all (r = 1). An int is expected; a float
  with a whole value (70.0) or a one-element tensor is accepted too. The list must not be modified.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from course_utils.models.gan import discriminator_loss as _d_loss
from course_utils.models.gan import generator_loss as _g_loss
from course_utils.models.pix2pix import receptive_field as _receptive_field

from .core import Mistake, call, exercise, expect, expect_equal, expect_tensor, expect_tensor_like


def _tiny_pair(seed: int, dim: int = 6, latent: int = 3):
    """A linear 'generator' (latent -> dim) and a small MLP 'discriminator' (dim -> logit), seeded."""
    g = torch.Generator().manual_seed(seed)
    G = nn.Linear(latent, dim)
    D = nn.Sequential(nn.Linear(dim, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1), nn.Flatten(0))
    with torch.no_grad():
        for p in list(G.parameters()) + list(D.parameters()):
            p.copy_(torch.randn(p.shape, generator=g))
    return G, D, g


def _scalar(got, name="loss"):
    got = expect_tensor_like(got, name=name, hint="Return one scalar tensor (a mean over the batch).")
    expect(got.numel() == 1, f"{name}: expected a scalar, got shape {tuple(got.shape)}.",
           hint="Average over the batch: .mean() (F.binary_cross_entropy_with_logits does it by default).")
    return got.reshape(())


# ---------------------------------------------------------------------------------------------
# gans.discriminator_loss
# ---------------------------------------------------------------------------------------------
SWAPPED_HINT = "The labels are swapped: the discriminator must call real images real (target 1) and fakes fake (0)."
REAL_ONLY_HINT = "Only the real term is there: add BCE(D(fake), 0) for the fakes."
FAKE_ONLY_HINT = "Only the fake term is there: add BCE(D(real), 1) for the real images."
SUM_HINT = "Average each term over its batch (the default reduction='mean'), do not sum."
HALF_HINT = "Add the two terms: L_D = BCE(D(real), 1) + BCE(D(fake), 0) (no factor ½ here)."
PROB_HINT = ("D returns logits: use F.binary_cross_entropy_with_logits on them directly "
             "(applying torch.sigmoid first squashes them twice).")
SIGN_HINT = ("The sign is flipped: the discriminator *minimises* the cross-entropy (which is maximising V(D, G)); "
             "return BCE(D(real), 1) + BCE(D(fake), 0), not its negative.")
D_GRAD_HINT = ("D's weights must get the gradient of both terms: detach the *fakes* before calling D "
               "(D(fake.detach())), never D's output or the real logits.")
STABLE_HINT = ("With logits far from 0, sigmoid rounds to exactly 0 or 1 and log gives -inf: work on the logits with "
               "F.binary_cross_entropy_with_logits (or F.logsigmoid), which stays finite.")
DETACH_HINT = ("The generator received gradients from the discriminator's loss: call D on fake.detach() -- "
               "in the discriminator step the generator is frozen.")


def _d_variants(lr, lf):
    bce = F.binary_cross_entropy_with_logits
    ones, zeros = torch.ones_like(lr), torch.zeros_like(lf)
    sig_r, sig_f = torch.sigmoid(lr), torch.sigmoid(lf)
    return [
        Mistake(bce(lr, torch.zeros_like(lr)) + bce(lf, torch.ones_like(lf)), SWAPPED_HINT),
        Mistake(bce(lr, ones), REAL_ONLY_HINT),
        Mistake(bce(lf, zeros), FAKE_ONLY_HINT),
        Mistake(bce(lr, ones, reduction="sum") + bce(lf, zeros, reduction="sum"), SUM_HINT),
        Mistake(0.5 * (bce(lr, ones) + bce(lf, zeros)), HALF_HINT),
        Mistake(bce(sig_r, ones) + bce(sig_f, zeros), PROB_HINT),
        Mistake(-(bce(lr, ones) + bce(lf, zeros)), SIGN_HINT),
    ]


@exercise("gans.discriminator_loss",
          hint="return F.binary_cross_entropy_with_logits(D(real), torch.ones(len(real))) + "
               "F.binary_cross_entropy_with_logits(D(fake.detach()), torch.zeros(len(fake))).")
def discriminator_loss(answer, case):
    """BCE(D(real), 1) + BCE(D(fake.detach()), 0), batch means, D returning logits (B,)."""
    for seed, (n_real, n_fake) in ((0, (8, 8)), (1, (5, 3)), (2, (1, 1))):
        with case(f"{n_real} real and {n_fake} fake vectors, D an MLP returning logits"):
            G, D, g = _tiny_pair(seed)
            real, z = torch.randn(n_real, 6, generator=g), torch.randn(n_fake, 3, generator=g)
            with torch.no_grad():
                lr, lf = D(real), D(G(z))
            got = _scalar(call(answer, D, real.clone(), G(z)))
            expect_tensor(got.detach().float(), _d_loss(lr, lf), name="loss", atol=1e-5, rtol=1e-4,
                          dtype_check=False, mistakes=_d_variants(lr, lf))

    with case("the generator is frozen: no gradient may reach it (fakes detached)"):
        G, D, g = _tiny_pair(3)
        real, z = torch.randn(6, 6, generator=g), torch.randn(6, 3, generator=g)
        got = _scalar(call(answer, D, real, G(z)))
        expect(got.requires_grad, "the loss does not depend on D's weights: the discriminator could not learn.",
               hint="Compute the loss from D(real) and D(fake.detach()) with torch operations.")
        got.backward()
        reached = [p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters()]
        expect(not any(reached), "the generator's weights received a gradient from the discriminator loss.",
               hint=DETACH_HINT)
        expect(all(p.grad is not None for p in D.parameters()), "D's weights received no gradient.")

    with case("D's gradients: those of BCE(D(real), 1) + BCE(D(fake), 0) (both terms reach D's weights)"):
        G, D, g = _tiny_pair(4)
        real, z = torch.randn(7, 6, generator=g), torch.randn(5, 3, generator=g)
        fake = G(z)
        expected = torch.autograd.grad(_d_loss(D(real), D(fake.detach())), list(D.parameters()))
        got = _scalar(call(answer, D, real.clone(), fake))
        expect(got.requires_grad, "the loss does not depend on D's weights: the discriminator could not learn.",
               hint=D_GRAD_HINT)
        D.zero_grad(set_to_none=True)
        got.backward()
        got_grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in D.parameters()]
        for k, (gg, ee) in enumerate(zip(got_grads, expected)):
            expect_tensor(gg, ee, name=f"gradient of D's parameter tensor {k}", atol=1e-5, rtol=1e-4,
                          dtype_check=False, hint=D_GRAD_HINT)

    with case("saturated logits (D fooled completely: −200 on real, +200 on fakes): loss 400, finite"):
        D = nn.Sequential(nn.Flatten(), nn.Linear(1, 1), nn.Flatten(0))
        with torch.no_grad():
            D[1].weight.fill_(200.0)
            D[1].bias.zero_()
        real, fake = -torch.ones(3, 1), torch.ones(5, 1)
        got = _scalar(call(answer, D, real, fake))
        expect(torch.isfinite(got).item(), f"loss: expected 400, got {got.item()}.", hint=STABLE_HINT)
        expect(abs(got.item() - 400.0) < 1e-2, f"loss: expected 400, got {got.item():.4g}.", hint=STABLE_HINT)

    with case("a perfect discriminator (logits +20 on real, -20 on fake) has loss ≈ 0"):
        D = nn.Sequential(nn.Flatten(), nn.Linear(1, 1), nn.Flatten(0))
        with torch.no_grad():
            D[1].weight.fill_(20.0)
            D[1].bias.zero_()
        real, fake = torch.ones(4, 1), -torch.ones(4, 1)
        got = _scalar(call(answer, D, real, fake))
        expect(abs(got.item()) < 1e-6, f"loss: expected ≈ 0, got {got.item():.4g}.", hint=SWAPPED_HINT)


# ---------------------------------------------------------------------------------------------
# gans.generator_loss
# ---------------------------------------------------------------------------------------------
SATURATING_HINT = ("That is the saturating minimax loss, mean log(1 − D(G(z))): its gradient vanishes when D rejects "
                   "the fakes. Minimise −log D(G(z)) instead: BCE(D(fake), 1).")
ZERO_LABEL_HINT = ("The generator wants D to call its fakes *real*: the target is 1, BCE(D(fake), 1); with target 0 "
                   "it would help the discriminator.")
G_SUM_HINT = "Average over the batch (reduction='mean'), do not sum."
G_PROB_HINT = "D returns logits: use F.binary_cross_entropy_with_logits on them, without torch.sigmoid first."
G_DETACH_HINT = "Do not detach the fakes here: the generator step needs the gradient to flow through D into G."


def _g_variants(lf):
    bce = F.binary_cross_entropy_with_logits
    return [
        Mistake(-F.softplus(lf).mean(), SATURATING_HINT),  # mean log(1 − D)
        Mistake(bce(lf, torch.zeros_like(lf)), ZERO_LABEL_HINT),
        Mistake(bce(lf, torch.ones_like(lf), reduction="sum"), G_SUM_HINT),
        Mistake(bce(torch.sigmoid(lf), torch.ones_like(lf)), G_PROB_HINT),
    ]


@exercise("gans.generator_loss",
          hint="return F.binary_cross_entropy_with_logits(D(fake), torch.ones(len(fake))) -- i.e. −mean log D(G(z)).")
def generator_loss(answer, case):
    """The non-saturating generator loss −mean log D(fake), D returning logits (B,)."""
    for seed, n in ((0, 8), (1, 3), (2, 1)):
        with case(f"{n} fakes, D an MLP returning logits"):
            G, D, g = _tiny_pair(seed)
            z = torch.randn(n, 3, generator=g)
            with torch.no_grad():
                lf = D(G(z))
            got = _scalar(call(answer, D, G(z)))
            expect_tensor(got.detach().float(), _g_loss(lf), name="loss", atol=1e-5, rtol=1e-4, dtype_check=False,
                          mistakes=_g_variants(lf))

    with case("the gradient reaches the generator (through D)"):
        G, D, g = _tiny_pair(3)
        got = _scalar(call(answer, D, G(torch.randn(5, 3, generator=g))))
        expect(got.requires_grad, "the loss does not depend on the generator.", hint=G_DETACH_HINT)
        got.backward()
        expect(G.weight.grad is not None and G.weight.grad.abs().sum() > 0,
               "the generator's weights received no gradient.", hint=G_DETACH_HINT)

    with case("G's gradients: those of −mean log D(G(z)), through D"):
        G, D, g = _tiny_pair(5)
        z = torch.randn(6, 3, generator=g)
        expected = torch.autograd.grad(_g_loss(D(G(z))), list(G.parameters()))
        got = _scalar(call(answer, D, G(z)))
        expect(got.requires_grad, "the loss does not depend on the generator.", hint=G_DETACH_HINT)
        G.zero_grad(set_to_none=True)
        got.backward()
        for k, (p, ee) in enumerate(zip(G.parameters(), expected)):
            gg = p.grad if p.grad is not None else torch.zeros_like(p)
            expect_tensor(gg, ee, name=f"gradient of G's parameter tensor {k}", atol=1e-5, rtol=1e-4,
                          dtype_check=False, hint=G_DETACH_HINT)

    with case("saturated logits (D rejects the fakes completely, logit −200): loss 200, finite, gradient −1/B"):
        D = nn.Flatten(0)  # the 'image' is its own logit
        logits = torch.full((4, 1), -200.0, requires_grad=True)
        got = _scalar(call(answer, D, logits))
        expect(torch.isfinite(got).item(), f"loss: expected 200, got {got.item()}.", hint=STABLE_HINT)
        expect(abs(got.item() - 200.0) < 1e-2, f"loss: expected 200, got {got.item():.4g}.", hint=STABLE_HINT)
        got.backward()
        expect(logits.grad is not None, "no gradient reached the fakes.", hint=G_DETACH_HINT)
        expect_tensor(logits.grad, torch.full((4, 1), -0.25), name="gradient", atol=1e-4, hint=STABLE_HINT)

    with case("D rejects the fakes (logit −8): d loss / d logit must not vanish (≈ −1/B each)"):
        D = nn.Flatten(0)  # the 'image' is its own logit
        logits = torch.full((4, 1), -8.0, requires_grad=True)
        got = _scalar(call(answer, D, logits))
        got.backward()
        grad = logits.grad
        expect(grad is not None, "no gradient reached the fakes.", hint=G_DETACH_HINT)
        expected = torch.full((4, 1), -(1 - torch.sigmoid(torch.tensor(-8.0)).item()) / 4)
        mistakes = [Mistake(torch.full((4, 1), -torch.sigmoid(torch.tensor(-8.0)).item() / 4), SATURATING_HINT)]
        expect_tensor(grad, expected, name="gradient", atol=1e-4, rtol=1e-3, mistakes=mistakes,
                      hint=SATURATING_HINT)


# ---------------------------------------------------------------------------------------------
# gans.patchgan_receptive_field
# ---------------------------------------------------------------------------------------------
NO_STRIDE_HINT = ("Strides widen the view of every later layer: a step of layer l's output spans Π_{j<l} s_j input "
                  "pixels, so r = 1 + Σ_l (k_l − 1) Π_{j<l} s_j.")
ORDER_HINT = ("Multiply each (k_l − 1) by the product of the strides *before* layer l (closer to the input), not "
              "after it.")
INCLUSIVE_HINT = "Use the strides of the earlier layers only, Π_{j<l} s_j, not including layer l's own stride."


def _as_pixels(got) -> int:
    """The receptive field as an int: an int, an integral float (70.0) or a one-element tensor all count."""
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if hasattr(got, "item") and not isinstance(got, (int, float)):  # a NumPy scalar
        got = got.item()
    expect(isinstance(got, (int, float)) and not isinstance(got, bool),
           f"expected a number of pixels (an int), got {type(got).__name__}.",
           hint="Return the receptive field as an int.")
    expect(math.isfinite(got) and float(got) == int(got), f"expected a whole number of pixels, got {got!r}.",
           hint="Kernels and strides are integers, so r is an integer: no division, no rounding needed.")
    return int(got)


def _rf_variants(layers):
    ks, ss = [k for k, _ in layers], [s for _, s in layers]
    prod = math.prod
    return {
        "no_stride": 1 + sum(k - 1 for k in ks),
        "after": 1 + sum((k - 1) * prod(ss[i + 1:]) for i, k in enumerate(ks)),
        "inclusive": 1 + sum((k - 1) * prod(ss[: i + 1]) for i, k in enumerate(ks)),
    }


@exercise("gans.patchgan_receptive_field",
          hint="r, jump = 1, 1; for k, s in layers: r += (k - 1) * jump; jump *= s; return r.")
def patchgan_receptive_field(answer, case):
    """Receptive field (pixels) of one output of a conv stack given as [(kernel, stride), ...], input first."""
    hints = {"no_stride": NO_STRIDE_HINT, "after": ORDER_HINT, "inclusive": INCLUSIVE_HINT}
    for name, layers in (
        ("pix2pix's 70 x 70 PatchGAN: three 4x4 stride-2 layers, then two 4x4 stride-1", [(4, 2)] * 3 + [(4, 1)] * 2),
        ("this chapter's PatchGAN: one 4x4 stride-2, two 4x4 stride-1", [(4, 2), (4, 1), (4, 1)]),
        ("no layers at all: one pixel sees itself", []),
        ("one 3x3 convolution", [(3, 1)]),
        ("a 1x1 convolution sees one pixel", [(1, 1)]),
        ("VGG-like: 3x3, 3x3, 2x2 pool (stride 2), 3x3, 3x3", [(3, 1), (3, 1), (2, 2), (3, 1), (3, 1)]),
        ("strides of 2 and 3 mixed", [(5, 2), (3, 3), (3, 1)]),
    ):
        with case(f"{name}: {layers}"):
            given = list(layers)
            got = _as_pixels(call(answer, given))
            expect(given == list(layers), "your function changed the list of layers.",
                   hint="Read the (kernel, stride) pairs; do not pop or modify them.")
            expected = _receptive_field(layers)
            if got != expected:
                wrong = [hints[k] for k, v in _rf_variants(layers).items() if v == got and v != expected]
                expect_equal(got, expected, name="receptive field", hint=wrong[0] if wrong else None)
