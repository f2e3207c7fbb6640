"""Checks of Chapter 5 (autoencoders and U-Net): the reparameterisation trick, the VAE loss,
the Dice coefficient and the U-Net's crop-and-concatenate skip connection.

* ``autoencoders.reparameterize`` -- z = μ + exp(½ log σ²) ε with ε drawn from the given generator:
  compared exactly with the same draw, plus a statistical case (mean and std of 20 000 samples
  within 5 standard errors), gradients with respect to μ and log σ² compared with the reference's
  (a detached σ fails), inputs left unchanged, float64 kept, and a device case (μ on the ``meta``
  device: ε, drawn on the CPU from the generator, must follow μ -- as on a GPU).
* ``autoencoders.vae_loss`` -- compared with ``course_utils.models.vae.vae_loss`` (the oracle) on
  several batches; known mistakes (KL sign, no KL, per-pixel mean, sum over the batch, a missing ½,
  log σ² read as σ) get their own hint; gradients with respect to logits, μ and log σ² compared with
  the reference's; saturated logits (±40) must stay finite and exact; inputs left unchanged.
* ``autoencoders.dice`` -- per-image Dice with smoothing, against ``course_utils.metrics.dice``;
  empty masks (two empty masks score exactly 1, with the default eps too), per-image reduction,
  float and bool inputs, (B, K, H, W) and single (H, W) inputs, inputs left unchanged.
* ``autoencoders.crop_and_concat`` -- centre-crop the encoder map to the decoder map's size and
  concatenate on the channel axis, [up, cropped skip]; even and odd size differences (rounded down),
  an empty batch, float64 kept, gradients to both inputs, inputs left unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .core import Mistake, call, exercise, expect, expect_close, expect_tensor, expect_tensor_like, fail

# ---------------------------------------------------------------------------------------------
# autoencoders.reparameterize
# ---------------------------------------------------------------------------------------------
VARIANCE_HINT = ("σ = exp(½ log σ²): you used exp(log σ²) = σ², the variance, as the standard deviation.")
LOGVAR_AS_STD_HINT = "logvar is log σ², not σ: the standard deviation is torch.exp(0.5 * logvar)."
NO_SAMPLING_HINT = ("You returned μ: the trick adds noise, z = μ + σ ε with ε ~ N(0, I); without it the model is a "
                    "plain autoencoder.")
GENERATOR_HINT = ("Draw ε with torch.randn(mu.shape, generator=generator) so that a seeded generator gives the same z "
                  "(torch.randn_like ignores the generator).")
DETACH_HINT = ("Keep z = μ + σ ε in the autograd graph: no .detach(), .data, .item() or torch.no_grad() on μ, σ "
               "or log σ² -- the encoder learns through exactly these gradients.")
DEVICE_HINT = ("A torch.Generator() draws on the CPU, while μ may sit on the GPU: draw ε on the CPU and move it "
               "to μ's device, torch.randn(mu.shape, generator=generator).to(mu.device).")


def _reparam(mu, logvar, seed, how="ok"):
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(seed), dtype=mu.dtype)
    std = {"ok": torch.exp(0.5 * logvar), "var": torch.exp(logvar), "logvar": logvar}[how]
    return mu + std * eps


@exercise("autoencoders.reparameterize",
          hint="eps = torch.randn(mu.shape, generator=generator).to(mu.device); return mu + torch.exp(0.5 * logvar) * eps.")
def reparameterize(answer, case):
    """z = μ + exp(½ log σ²) ⊙ ε, ε ~ N(0, I) drawn from the generator."""
    g = torch.Generator().manual_seed(0)
    for name, shape in (("batch of 4, 2-D codes", (4, 2)), ("batch of 3, 16-D codes", (3, 16))):
        with case(f"{name}: the same draw as torch.randn(mu.shape, generator=generator)"):
            mu, logvar = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
            got = call(answer, mu.clone(), logvar.clone(), torch.Generator().manual_seed(7))
            mistakes = [Mistake(_reparam(mu, logvar, 7, "var"), VARIANCE_HINT),
                        Mistake(_reparam(mu, logvar, 7, "logvar"), LOGVAR_AS_STD_HINT),
                        Mistake(mu, NO_SAMPLING_HINT)]
            expect_tensor(got, _reparam(mu, logvar, 7), name="z", mistakes=mistakes, hint=GENERATOR_HINT)

    with case("statistics of 20 000 samples with μ = 1.5, σ = 0.5 (within 5 standard errors)"):
        mu, logvar = torch.full((20_000, 1), 1.5), torch.full((20_000, 1), 2 * torch.log(torch.tensor(0.5)).item())
        z = expect_tensor_like(call(answer, mu, logvar, torch.Generator().manual_seed(3)), shape=(20_000, 1), name="z")
        expect(not torch.equal(z, mu), "z equals μ: no noise was added.", hint=NO_SAMPLING_HINT)
        expect_close(z.mean(), 1.5, 5 * 0.5 / 20_000**0.5, name="mean of z")
        expect_close(z.std(), 0.5, 5 * 0.5 / (2 * 20_000) ** 0.5, name="std of z", hint=VARIANCE_HINT)

    with case("gradients reach μ and log σ² as through z = μ + σ ε (dz/dμ = 1, nothing detached)"):
        mu, logvar, weights = (torch.randn(5, 3, generator=g) for _ in range(3))
        mine = [mu.clone().requires_grad_(), logvar.clone().requires_grad_()]
        z = expect_tensor_like(call(answer, *mine, torch.Generator().manual_seed(1)), shape=(5, 3), name="z")
        expect(z.requires_grad, "z does not depend on μ and log σ² (no gradient can reach the encoder).",
               hint=DETACH_HINT)
        (weights * z).sum().backward()  # L = Σ w ⊙ z: dL/dμ = w, dL/dlog σ² = w ⊙ ½ σ ε
        ref = [mu.clone().requires_grad_(), logvar.clone().requires_grad_()]
        (weights * _reparam(*ref, 1)).sum().backward()
        for what, leaf, expected in zip(("μ", "log σ²"), mine, ref):
            expect(leaf.grad is not None, f"no gradient reaches {what}: z must be computed from it.",
                   hint=DETACH_HINT if what == "μ" else NO_SAMPLING_HINT)
            expect_tensor(leaf.grad, expected.grad, name=f"dL/d{what} for L = Σ w ⊙ z", dtype_check=False,
                          hint=DETACH_HINT)

    with case("μ and log σ² are left unchanged (no in-place operations on the inputs)"):
        mu, logvar = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
        mu_in, logvar_in = mu.clone(), logvar.clone()
        call(answer, mu_in, logvar_in, torch.Generator().manual_seed(2))
        expect(torch.equal(mu_in, mu) and torch.equal(logvar_in, logvar),
               "your function changed mu or logvar in place.",
               hint="Build z as a new tensor, mu + std * eps; avoid mu.add_(...), logvar.mul_(...), +=.")

    with case("float64 μ and log σ²: z is float64 too"):
        mu, logvar = torch.randn(3, 2, dtype=torch.float64), torch.zeros(3, 2, dtype=torch.float64)
        z = expect_tensor_like(call(answer, mu, logvar, torch.Generator().manual_seed(4)), shape=(3, 2),
                               dtype=torch.float64, name="z",
                               hint="Keep μ's dtype: mu + std * eps promotes a float32 ε to float64.")

    with case("μ and log σ² on another device than the generator (the CPU), as on a GPU: z follows μ",
              hint=DEVICE_HINT):
        mu, logvar = torch.zeros(3, 2, device="meta"), torch.zeros(3, 2, device="meta")  # shapes only, no data
        z = expect_tensor_like(call(answer, mu, logvar, torch.Generator().manual_seed(0)), shape=(3, 2), name="z")
        expect(z.device == mu.device, f"z is on {z.device}, but μ is on {mu.device}.")


# ---------------------------------------------------------------------------------------------
# autoencoders.vae_loss
# ---------------------------------------------------------------------------------------------
KL_SIGN_HINT = "The KL term has the wrong sign: KL = −½ Σ (1 + log σ² − μ² − σ²) ≥ 0."
NO_KL_HINT = "The KL term is missing: loss = reconstruction + KL(q(z|x) ‖ N(0, I))."
MEAN_BCE_HINT = ("The reconstruction is averaged over the pixels: sum the BCE over the pixels of an image "
                 "(reduction='none', then .sum over the features) and average over the batch.")
BATCH_SUM_HINT = "Sum over pixels and latent units, but average over the batch (divide by B)."
HALF_HINT = "KL = −½ Σ (1 + log σ² − μ² − σ²): the factor ½ is missing."
PROB_HINT = "The decoder returns logits: use F.binary_cross_entropy_with_logits (or apply sigmoid once)."
GRAD_HINT = ("The value is right but the gradient is not: every term must stay in the autograd graph -- no "
             ".detach(), .data, .item(), numpy or torch.no_grad() inside the loss.")
STABLE_HINT = ("For large |logits| sigmoid rounds to exactly 0 or 1 and log(0) = -inf (or a clamp changes the "
               "value): use F.binary_cross_entropy_with_logits, which computes the BCE from the logits stably.")
SIGMA_HINT = ("logvar is log σ², not σ: the variance is σ² = logvar.exp() and log σ² is logvar itself, "
              "KL = −½ Σ (1 + logvar − μ² − logvar.exp()).")


def _vae(logits, x, mu, logvar, how="ok"):
    bce = F.binary_cross_entropy_with_logits(logits.double(), x.double(), reduction="none").flatten(1)
    mu, logvar = mu.double(), logvar.double()
    kl = -0.5 * (1 + logvar - mu**2 - logvar.exp())  # (B, k)
    if how == "half":
        kl = 2 * kl
    if how == "sigma":  # logvar read as σ: σ² = logvar², log σ² = log(logvar²)
        kl = -0.5 * (1 + torch.log(logvar**2 + 1e-12) - mu**2 - logvar**2)
    recon = bce.mean(1) if how == "mean_bce" else bce.sum(1)  # (B,)
    kl = kl.sum(1)
    total = {"ok": recon + kl, "sign": recon - kl, "no_kl": recon, "mean_bce": recon + kl, "half": recon + kl,
             "batch_sum": recon + kl, "sigma": recon + kl}[how]
    return (total.sum() if how == "batch_sum" else total.mean()).float()


@exercise("autoencoders.vae_loss",
          hint="recon = F.binary_cross_entropy_with_logits(logits, x, reduction='none').sum(1); "
               "kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1); return (recon + kl).mean().")
def vae_loss(answer, case):
    """Negative ELBO: BCE with logits summed over pixels + KL to N(0, I), averaged over the batch."""
    g = torch.Generator().manual_seed(0)
    for name, (B, D, k) in (("B=8, D=64, k=2", (8, 64, 2)), ("B=5, D=16, k=6", (5, 16, 6)), ("B=1, D=10, k=3", (1, 10, 3))):
        with case(name):
            logits, x = 2 * torch.randn(B, D, generator=g), torch.rand(B, D, generator=g)
            mu, logvar = torch.randn(B, k, generator=g), 0.5 * torch.randn(B, k, generator=g)
            got = call(answer, logits.clone(), x.clone(), mu.clone(), logvar.clone())
            got = expect_tensor_like(got, name="loss", hint="Return one scalar tensor.")
            expect(got.numel() == 1, f"loss: expected a scalar, got shape {tuple(got.shape)}.",
                   hint="Average over the batch: return (recon + kl).mean().")
            mistakes = [Mistake(_vae(logits, x, mu, logvar, m).reshape(got.shape), h) for m, h in
                        (("sign", KL_SIGN_HINT), ("no_kl", NO_KL_HINT), ("mean_bce", MEAN_BCE_HINT),
                         ("batch_sum", BATCH_SUM_HINT) if B > 1 else ("half", HALF_HINT), ("half", HALF_HINT),
                         ("sigma", SIGMA_HINT))]
            probs = _vae(torch.logit(torch.sigmoid(torch.sigmoid(logits)).clamp(1e-6, 1 - 1e-6)), x, mu, logvar)
            mistakes.append(Mistake(probs.reshape(got.shape), PROB_HINT))
            expect_tensor(got.float(), _vae(logits, x, mu, logvar).reshape(got.shape), name="loss", atol=1e-4,
                          rtol=1e-5, dtype_check=False, mistakes=mistakes)

    with case("μ = 0, log σ² = 0 (q equals the prior): the KL is 0, the loss is the reconstruction alone"):
        logits, x = torch.randn(4, 9, generator=g), torch.rand(4, 9, generator=g)
        got = expect_tensor_like(call(answer, logits, x, torch.zeros(4, 3), torch.zeros(4, 3)), name="loss")
        expected = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1).mean()
        expect_close(got.reshape(-1)[0], expected.item(), 1e-4, name="loss", hint=KL_SIGN_HINT)

    with case("gradients with respect to logits, μ and log σ² equal the reference's (nothing detached)"):
        logits, x = 2 * torch.randn(4, 12, generator=g), torch.rand(4, 12, generator=g)
        mu, logvar = torch.randn(4, 3, generator=g), 0.5 * torch.randn(4, 3, generator=g)
        mine = [t.clone().requires_grad_() for t in (logits, mu, logvar)]
        got = expect_tensor_like(call(answer, mine[0], x.clone(), mine[1], mine[2]), name="loss")
        expect(got.numel() == 1, f"loss: expected a scalar, got shape {tuple(got.shape)}.")
        expect(got.requires_grad, "the loss does not depend on logits, μ or log σ²: nothing can be trained.",
               hint=GRAD_HINT)
        got.sum().backward()
        ref = [t.clone().requires_grad_() for t in (logits, mu, logvar)]
        _vae(ref[0], x, ref[1], ref[2]).backward()
        for what, leaf, expected in zip(("logits", "μ", "log σ²"), mine, ref):
            expect(leaf.grad is not None, f"no gradient reaches {what}.", hint=GRAD_HINT)
            expect_tensor(leaf.grad, expected.grad, name=f"d loss / d {what}", atol=1e-5, rtol=1e-4,
                          dtype_check=False, hint=GRAD_HINT)

    with case("saturated logits (±40) against the opposite pixel value: 40 nats per pixel, finite"):
        logits = torch.tensor([[40.0, -40.0, 40.0, -40.0], [-40.0, 40.0, 3.0, -3.0]])  # (2, 4)
        x = torch.tensor([[0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.5, 0.5]])
        mu, logvar = torch.zeros(2, 2), torch.zeros(2, 2)
        got = expect_tensor_like(call(answer, logits.clone(), x.clone(), mu, logvar), name="loss")
        expect(got.numel() == 1, f"loss: expected a scalar, got shape {tuple(got.shape)}.")
        expected = _vae(logits, x, mu, logvar)
        expect_tensor(got.reshape(()).float(), expected, name="loss", atol=1e-3, rtol=1e-5, dtype_check=False,
                      hint=STABLE_HINT)

    with case("the inputs are left unchanged (no in-place operations)"):
        args = [torch.randn(3, 6, generator=g), torch.rand(3, 6, generator=g), torch.randn(3, 2, generator=g),
                torch.randn(3, 2, generator=g)]
        copies = [a.clone() for a in args]
        call(answer, *copies)
        expect(all(torch.equal(a, c) for a, c in zip(args, copies)),
               "your function changed one of logits, x, mu, logvar in place.",
               hint="Compute new tensors (logvar.exp(), mu.pow(2)); avoid exp_(), pow_(), +=, *= on the inputs.")


# ---------------------------------------------------------------------------------------------
# autoencoders.dice
# ---------------------------------------------------------------------------------------------
SMOOTH_HINT = ("Two empty masks agree perfectly: add eps to numerator and denominator, (2|P∩T| + eps) / (|P| + |T| + eps), "
               "so 0/0 becomes 1 instead of NaN.")
REDUCTION_HINT = ("Compute one Dice per image: sum over the last two axes (H, W) only, not over the batch "
                  "(and do not average the images together).")
IOU_HINT = "That is the IoU |P∩T| / |P∪T|; Dice is 2|P∩T| / (|P| + |T|)."
TWO_HINT = "The numerator is 2|P∩T|: the factor 2 is missing."


def _dice(p, t, eps, how="ok"):
    p, t = p.double(), t.double()
    inter = (p * t).flatten(-2).sum(-1)
    total = p.flatten(-2).sum(-1) + t.flatten(-2).sum(-1)
    if how == "iou":
        return ((inter + eps) / (total - inter + eps)).float()
    if how == "no_two":
        return ((inter + eps) / (total + eps)).float()
    if how == "batch":
        d = (2 * inter.sum() + eps) / (total.sum() + eps)
        return d.expand(inter.shape).float()
    if how == "no_eps":
        return (2 * inter / total).float()
    return ((2 * inter + eps) / (total + eps)).float()


def _dice_case(answer, p, t, eps):
    got = call(answer, p.clone(), t.clone(), eps=eps)
    mistakes = [Mistake(_dice(p, t, eps, m), h) for m, h in
                (("batch", REDUCTION_HINT), ("iou", IOU_HINT), ("no_two", TWO_HINT), ("no_eps", SMOOTH_HINT))]
    expected = _dice(p, t, eps)
    got = expect_tensor(got, expected, name="dice", atol=1e-5, rtol=1e-4, dtype_check=False, mistakes=mistakes,
                        hint=REDUCTION_HINT if got is not None and getattr(got, "shape", None) != expected.shape else None)


@exercise("autoencoders.dice", hint="inter = (pred * target).sum((-2, -1)); "
          "return (2 * inter + eps) / (pred.sum((-2, -1)) + target.sum((-2, -1)) + eps), with float masks.")
def dice(answer, case):
    """Dice = (2 |P ∩ T| + eps) / (|P| + |T| + eps), one value per image (and class)."""
    g = torch.Generator().manual_seed(0)
    rand_mask = lambda *s, q=0.4: torch.rand(*s, generator=g) < q
    with case("batch of 4 random bool masks (B, 8, 8), eps = 1e-6: one Dice per image"):
        _dice_case(answer, rand_mask(4, 8, 8), rand_mask(4, 8, 8), 1e-6)
    with case("masks of very different sizes in one batch (per-image, not pooled over the batch)"):
        p = torch.zeros(3, 10, 10, dtype=torch.bool)
        t = torch.zeros(3, 10, 10, dtype=torch.bool)
        p[0], t[0] = True, True  # a large, perfect match
        p[1, :2, :2], t[1, 1:3, 1:3] = True, True  # a small, partial match
        p[2, 5, 5], t[2, 0, 0] = True, True  # a one-pixel miss
        _dice_case(answer, p, t, 1e-6)
    with case("two empty masks agree perfectly: Dice 1 (eps = 1)"):
        p = torch.zeros(2, 6, 6, dtype=torch.bool)
        _dice_case(answer, p, p.clone(), 1.0)
    with case("empty prediction, non-empty target: Dice ≈ 0 (eps = 1e-6)"):
        t = torch.zeros(2, 6, 6, dtype=torch.bool)
        t[:, 2:4, 2:4] = True
        _dice_case(answer, torch.zeros_like(t), t, 1e-6)
    with case("float 0/1 masks (B, K=3, H, W): one Dice per image and class"):
        _dice_case(answer, rand_mask(2, 3, 8, 8).float(), rand_mask(2, 3, 8, 8, q=0.3).float(), 1.0)
    with case("identical non-empty masks: Dice 1"):
        m = rand_mask(3, 7, 5)
        _dice_case(answer, m, m.clone(), 1e-6)
    with case("one mask (H, W) without a batch axis: a single Dice, shape ()"):
        _dice_case(answer, rand_mask(6, 6), rand_mask(6, 6), 1e-6)
    with case("two empty masks with the default eps: exactly 1, not NaN"):
        p = torch.zeros(2, 5, 5)
        got = call(answer, p.clone(), p.clone())
        expect_tensor(got, torch.ones(2), name="dice", dtype_check=False, hint=SMOOTH_HINT)
    with case("the masks are left unchanged (no in-place operations)"):
        p, t = rand_mask(2, 6, 6).float(), rand_mask(2, 6, 6).float()
        p_in, t_in = p.clone(), t.clone()
        call(answer, p_in, t_in, eps=1e-6)
        expect(torch.equal(p_in, p) and torch.equal(t_in, t), "your function changed pred or target in place.",
               hint="Compute new tensors (pred * target); avoid pred.mul_(...), *=, += on the inputs.")


# ---------------------------------------------------------------------------------------------
# autoencoders.crop_and_concat
# ---------------------------------------------------------------------------------------------
AXIS_CAT_HINT = "Concatenate on the channel axis, dim=1 of (B, C, H, W): torch.cat([up, cropped], dim=1)."
CORNER_HINT = ("Crop the centre, not the top-left corner: top = (H - h) // 2, left = (W - w) // 2, "
               "then skip[:, :, top:top + h, left:left + w].")
ORDER_HINT = "Put the decoder map first: torch.cat([up, cropped_skip], dim=1)."


def _crop(skip, h, w, corner=False):
    H, W = skip.shape[-2:]
    top, left = (0, 0) if corner else ((H - h) // 2, (W - w) // 2)
    return skip[:, :, top:top + h, left:left + w]


@exercise("autoencoders.crop_and_concat",
          hint="top, left = (H - h) // 2, (W - w) // 2; cropped = skip[:, :, top:top+h, left:left+w]; "
               "return torch.cat([up, cropped], dim=1).")
def crop_and_concat(answer, case):
    """Centre-crop skip (B, C_s, H, W) to up's (h, w); return torch.cat([up, crop], dim=1)."""
    g = torch.Generator().manual_seed(0)
    for name, (B, cu, cs, h, w, H, W) in (
        ("even difference: up (2, 4, 6, 6), skip (2, 4, 10, 10)", (2, 4, 4, 6, 6, 10, 10)),
        ("odd difference: up (1, 2, 5, 5), skip (1, 2, 8, 8) -- top = (8 - 5) // 2", (1, 2, 2, 5, 5, 8, 8)),
        ("non-square: up (2, 3, 4, 6), skip (2, 5, 8, 12)", (2, 3, 5, 4, 6, 8, 12)),
        ("same size (padded convolutions): nothing to crop", (2, 3, 3, 4, 4, 4, 4)),
        ("a 2-pixel border on each side, as unpadded 3x3 convolutions leave: up (1, 8, 28, 28), skip (1, 8, 32, 32)",
         (1, 8, 8, 28, 28, 32, 32)),
        ("one extra row and three extra columns: top = (6 - 5) // 2 = 0, left = (9 - 6) // 2 = 1",
         (1, 2, 3, 5, 6, 6, 9)),
        ("an empty batch (B = 0): shape (0, C_u + C_s, h, w)", (0, 2, 3, 4, 4, 7, 6)),
    ):
        with case(name):
            dtype = torch.float64 if W - w == 3 else torch.float32  # float64 in, float64 out
            up = torch.randn(B, cu, h, w, generator=g, dtype=dtype)
            skip = torch.randn(B, cs, H, W, generator=g, dtype=dtype)
            expected = torch.cat([up, _crop(skip, h, w)], dim=1)
            got = call(answer, up.clone(), skip.clone())
            mistakes = [Mistake(torch.cat([_crop(skip, h, w), up], dim=1), ORDER_HINT)]
            if (H, W) != (h, w):
                mistakes.append(Mistake(torch.cat([up, _crop(skip, h, w, corner=True)], dim=1), CORNER_HINT))
            if cu == cs:
                mistakes.append(Mistake(torch.cat([up, _crop(skip, h, w)], dim=0), AXIS_CAT_HINT))
            expect_tensor(got, expected, name="output", mistakes=mistakes,
                          hint=AXIS_CAT_HINT if getattr(got, "shape", None) is not None
                          and tuple(got.shape) != tuple(expected.shape) else None)

    with case("gradients reach up and the cropped part of skip (the U-Net trains through the skip)"):
        up, skip, weights = (torch.randn(*shape, generator=g) for shape in ((2, 2, 4, 4), (2, 3, 7, 6),
                                                                              (2, 5, 4, 4)))
        mine = [up.clone().requires_grad_(), skip.clone().requires_grad_()]
        got = expect_tensor_like(call(answer, *mine), shape=(2, 5, 4, 4), name="output")
        expect(got.requires_grad, "the output does not depend on up and skip: no gradient can flow back.",
               hint="Use slicing and torch.cat only: no .detach(), .data, numpy or torch.no_grad().")
        (weights * got).sum().backward()
        ref = [up.clone().requires_grad_(), skip.clone().requires_grad_()]
        (weights * torch.cat([ref[0], _crop(ref[1], 4, 4)], dim=1)).sum().backward()
        for what, leaf, expected in zip(("up", "skip"), mine, ref):
            expect(leaf.grad is not None, f"no gradient reaches {what}.",
                   hint="Use slicing and torch.cat only: no .detach(), .data, numpy or torch.no_grad().")
            expect_tensor(leaf.grad, expected.grad, name=f"gradient with respect to {what}")

    with case("up and skip are left unchanged (no in-place operations)"):
        up, skip = torch.randn(1, 2, 4, 4, generator=g), torch.randn(1, 3, 7, 7, generator=g)
        up_in, skip_in = up.clone(), skip.clone()
        got = call(answer, up_in, skip_in)
        expect(torch.equal(up_in, up) and torch.equal(skip_in, skip), "your function changed up or skip in place.",
               hint="Slicing and torch.cat make what you need; do not write into the inputs.")
