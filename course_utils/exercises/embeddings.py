"""Checks of Chapter 6 (embeddings and contrastive learning): skip-gram pairs, the symmetric
InfoNCE (CLIP) loss and a zero-shot classifier from text embeddings.

* ``embeddings.skipgram_pairs`` -- (centre, context) id pairs of one sentence within a window,
  compared as a multiset (any order) with ``course_utils.models.word2vec.skipgram_pairs``; known
  mistakes (the centre word included, a window one too wide or too narrow, one side only,
  skipping repeated words) get their own hint.
* ``embeddings.clip_loss`` -- the symmetric InfoNCE loss on raw features, compared with
  ``open_clip.loss.ClipLoss`` on normalised features (the oracle); mistakes: one direction only,
  no temperature, no normalisation, the sum of the two directions, exp applied twice; one case runs
  on fake CUDA tensors, so that labels made on the CPU (``torch.arange(B)``) fail as on a GPU.
* ``embeddings.zero_shot_classifier`` -- cosine similarities (N, K) and the argmax class per
  image; mistakes: raw dot products, only one side normalised, argmax over the wrong axis.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .core import (
    CheckFailure, Mistake, call, exercise, expect, expect_tensor, expect_tensor_like, expect_tuple, fail,
)

# ---------------------------------------------------------------------------------------------
# embeddings.skipgram_pairs
# ---------------------------------------------------------------------------------------------
CENTRE_HINT = "Skip the centre itself: a word is not its own context (j != i)."
WIDE_HINT = ("The window is one word too wide: context positions are i - window .. i + window, "
             "i.e. range(max(0, i - window), min(T, i + window + 1)) without i.")
NARROW_HINT = ("The window is one word too narrow: include positions up to `window` away on each side, "
               "range(i - window, i + window + 1).")
ONE_SIDE_HINT = "Take context words on both sides of the centre, before and after it."
VALUE_HINT = ("Compare positions, not word ids: a repeated word (\"the ... the\") is a real context of itself "
              "when it occurs at another position (j != i, not ids[j] != ids[i]).")


def _pairs(ids, window, how="ok"):
    T = len(ids)
    out = []
    for i in range(T):
        lo, hi = i - window, i + window + 1
        if how == "wide":
            lo, hi = lo - 1, hi + 1
        if how == "narrow":
            lo, hi = lo + 1, hi - 1
        if how == "one_side":
            lo = i + 1
        for j in range(max(0, lo), min(T, hi)):
            if how == "centre" or (j != i and (how != "value" or ids[j] != ids[i])):
                out.append((ids[i], ids[j]))
    return sorted(out)


def _canon(got):
    return sorted(tuple(int(v) for v in row) for row in got.tolist())


@exercise("embeddings.skipgram_pairs",
          hint="pairs = [(ids[i], ids[j]) for i in range(T) for j in range(max(0, i - window), "
               "min(T, i + window + 1)) if j != i]; return torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).")
def skipgram_pairs(answer, case):
    """(P, 2) int64 tensor of (centre id, context id) pairs, |i - j| <= window, j != i; any row order."""
    cases = (
        ("5 words, window 1", [10, 11, 12, 13, 14], 1),
        ("6 words, window 2", [7, 8, 9, 10, 11, 12], 2),
        ("a repeated word: [5, 6, 5, 7], window 2", [5, 6, 5, 7], 2),
        ("3 words, window 5 (larger than the sentence)", [3, 4, 5], 5),
        ("one word, window 2: no pairs, shape (0, 2)", [9], 2),
        ("an empty sentence: no pairs, shape (0, 2)", [], 1),
        ("2 words, window 1: one pair each way", [4, 9], 1),
        ("7 words, window 3: the window is cut at both ends", [1, 2, 3, 4, 5, 6, 7], 3),
    )
    for name, ids, window in cases:
        with case(name):
            argument = list(ids)
            got = call(answer, argument, window)
            expect(argument == list(ids), f"ids was modified: {list(ids)} became {argument}.",
                   hint="Read ids without changing it (no .pop(), .sort() or assignment into it).")
            got = expect_tensor_like(got, dtype=torch.long, name="pairs",
                                     hint="Return torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).")
            expect(got.dim() == 2 and got.shape[-1] == 2,
                   f"pairs: shape {tuple(got.shape)}, expected (P, 2) with one (centre, context) pair per row.",
                   hint="Use .reshape(-1, 2) so that an empty list still gives shape (0, 2).")
            expected = _pairs(ids, window)
            mine = _canon(got)
            if mine == expected:
                continue
            for how, hint in (("centre", CENTRE_HINT), ("wide", WIDE_HINT), ("narrow", NARROW_HINT),
                              ("one_side", ONE_SIDE_HINT), ("value", VALUE_HINT)):
                if mine == _pairs(ids, window, how) and _pairs(ids, window, how) != expected:
                    fail(f"pairs: {len(mine)} pairs, expected {len(expected)} for ids {ids}, window {window}.",
                         hint=hint)
            missing = sorted(set(expected) - set(mine))[:3]
            extra = sorted(set(mine) - set(expected))[:3]
            fail(f"pairs: {len(mine)} pairs, expected {len(expected)} for ids {ids}, window {window}"
                 + (f"; missing e.g. {missing}" if missing else "") + (f"; unexpected e.g. {extra}" if extra else "")
                 + ("; some pairs appear the wrong number of times" if not missing and not extra else "") + ".")


# ---------------------------------------------------------------------------------------------
# embeddings.clip_loss
# ---------------------------------------------------------------------------------------------
ONE_WAY_HINT = ("That is one direction only (images -> texts). CLIP's loss is symmetric: "
                "½ [CE(logits, labels) + CE(logits.T, labels)].")
NO_SCALE_HINT = ("The temperature is missing: multiply the cosine similarities by logit_scale "
                 "(= 1/τ) before the cross-entropy.")
NO_NORM_HINT = ("Normalise the features to unit length first (F.normalize(x, dim=-1)): the logits are "
                "scaled *cosine* similarities.")
SUM_HINT = "Average the two directions: ½ [CE(images -> texts) + CE(texts -> images)], not their sum."
EXP_HINT = "logit_scale is already exp(s) = 1/τ: multiply by it directly, do not exponentiate it again."
DEVICE_HINT = ("Create the labels on the features' device: labels = torch.arange(len(I), device=I.device). "
               "torch.arange(len(I)) makes them on the CPU, and on a GPU cross_entropy of CUDA logits "
               "with CPU labels fails.")


def _clip(img, txt, scale, how="ok"):
    img, txt = img.double(), txt.double()
    if how != "no_norm":
        img, txt = F.normalize(img, dim=-1), F.normalize(txt, dim=-1)
    s = {"ok": scale, "no_scale": 1.0, "exp": torch.exp(torch.as_tensor(scale, dtype=torch.float64))}.get(how, scale)
    logits = s * img @ txt.T  # (B, B)
    labels = torch.arange(len(img))
    a, b = F.cross_entropy(logits, labels), F.cross_entropy(logits.T, labels)
    return {"one_way": a, "sum": a + b}.get(how, (a + b) / 2).float()


@exercise("embeddings.clip_loss",
          hint="I, T = F.normalize(image_features, dim=-1), F.normalize(text_features, dim=-1); "
               "logits = logit_scale * I @ T.T; labels = torch.arange(len(I), device=I.device); "
               "return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2.")
def clip_loss(answer, case):
    """Symmetric InfoNCE: ½ [CE(s·I Tᵀ, diag) + CE(s·T Iᵀ, diag)] with unit-normalised I, T, s = logit_scale."""
    from open_clip.loss import ClipLoss

    g = torch.Generator().manual_seed(0)
    for name, (B, D, scale, spread) in (
        ("batch of 6, 8-D features of norm ~3, logit_scale 10", (6, 8, 10.0, 3.0)),
        ("batch of 4, 16-D features of norm ~0.2, logit_scale 14.3 (τ = 0.07)", (4, 16, 1 / 0.07, 0.2)),
        ("batch of 5, 3-D features, logit_scale 1 (no sharpening)", (5, 3, 1.0, 1.0)),
    ):
        with case(name):
            img = spread * torch.randn(B, D, generator=g)
            txt = spread * torch.randn(B, D, generator=g) + 0.5 * img  # partly aligned pairs
            scale_t = torch.tensor(scale)
            got = call(answer, img.clone(), txt.clone(), scale_t.clone())
            got = expect_tensor_like(got, name="loss", hint="Return one scalar tensor.")
            expect(got.numel() == 1, f"loss: expected a scalar, got shape {tuple(got.shape)}.",
                   hint="Average the cross-entropy over the batch (F.cross_entropy does by default).")
            oracle = ClipLoss()(F.normalize(img, dim=-1), F.normalize(txt, dim=-1), scale_t)
            mistakes = [Mistake(_clip(img, txt, scale, m).reshape(got.shape), h)
                        for m, h in (("one_way", ONE_WAY_HINT), ("no_norm", NO_NORM_HINT), ("sum", SUM_HINT),
                                     ("exp", EXP_HINT))]
            if scale != 1.0:
                mistakes.append(Mistake(_clip(img, txt, scale, "no_scale").reshape(got.shape), NO_SCALE_HINT))
            expect_tensor(got.float(), oracle.reshape(got.shape).float(), name="loss", atol=1e-4, rtol=1e-4,
                          dtype_check=False, mistakes=mistakes)

    with case("a batch of 1: the only caption is the right one, loss 0"):
        got = expect_tensor_like(call(answer, torch.randn(1, 4, generator=g), torch.randn(1, 4, generator=g),
                                      torch.tensor(10.0)), name="loss")
        expect(abs(got.reshape(-1)[0].item()) < 1e-5, f"loss: got {got.reshape(-1)[0].item():.4g}, expected 0.")

    with case("texts = images (perfect pairs), logit_scale 100: loss close to 0"):
        x = torch.eye(4) * 5 + 0.01 * torch.randn(4, 4, generator=g)
        got = expect_tensor_like(call(answer, x.clone(), x.clone(), torch.tensor(100.0)), name="loss")
        expect(got.reshape(-1)[0].item() < 1e-3, f"loss: got {got.reshape(-1)[0].item():.4g}, expected < 0.001.",
               hint=NO_SCALE_HINT)

    with case("gradients w.r.t. the image features, the text features and logit_scale"):
        _clip_loss_gradients(answer, g)

    with case("the inputs are not modified"):
        img, txt, scale = 2 * torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g), torch.tensor(7.0)
        args = (img.clone(), txt.clone(), scale.clone())
        call(answer, *args)
        for what, before, after in zip(("image_features", "text_features", "logit_scale"), (img, txt, scale), args):
            expect(torch.equal(before, after), f"{what} was modified by your function.",
                   hint="Normalise into new tensors (F.normalize(x, dim=-1)), not in place (x /= ..., x.div_).")

    with case("features on a GPU (a fake CUDA device): everything the loss creates must be there too"):
        _clip_loss_on_fake_cuda(answer)


GRAD_HINT = ("Keep every step differentiable and connected to the inputs: no .detach(), .item(), "
             "torch.no_grad() or NumPy, neither on the features nor on logit_scale (the temperature is learned).")


def _clip_loss_gradients(answer, g) -> None:
    """d loss / d (image features, text features, logit_scale) equal the reference's (float64 autograd)."""
    img, txt = 2 * torch.randn(5, 6, generator=g), torch.randn(5, 6, generator=g)
    scale = torch.tensor(8.0)
    ref = [x.double().requires_grad_() for x in (img, txt, scale)]
    _clip_autograd(*ref).backward()
    mine = [x.clone().requires_grad_() for x in (img, txt, scale)]
    got = expect_tensor_like(call(answer, *mine), name="loss")
    expect(got.numel() == 1, f"loss: expected a scalar, got shape {tuple(got.shape)}.")
    expect(got.requires_grad, "the loss does not depend on the inputs (no gradient can flow).", hint=GRAD_HINT)
    got.sum().backward()
    for what, x, r in zip(("image features", "text features", "logit_scale"), mine, ref):
        expect(x.grad is not None and x.grad.abs().sum() > 0,
               f"no gradient reaches the {what}: the loss is cut off from them.", hint=GRAD_HINT)
        expect_tensor(x.grad.double(), r.grad, name=f"gradient w.r.t. the {what}", atol=1e-5, rtol=1e-3,
                      dtype_check=False, hint=GRAD_HINT)


def _clip_autograd(img, txt, scale):
    """The reference loss, differentiable (used for the gradient case)."""
    img, txt = F.normalize(img, dim=-1), F.normalize(txt, dim=-1)
    logits = scale * img @ txt.T  # (B, B)
    labels = torch.arange(len(img))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def _clip_loss_on_fake_cuda(answer) -> None:
    """Run the answer on fake CUDA tensors (shapes and devices, no data; works without a GPU).

    A tensor the answer makes on the CPU and mixes with the CUDA features raises a device mismatch,
    exactly where a real GPU run would crash. An answer that reads values (``.item()``) cannot be
    followed there; its values are checked by the cases above.
    """
    from torch._subclasses.fake_tensor import DataDependentOutputException, FakeTensorMode

    with FakeTensorMode(allow_non_fake_inputs=True):
        img = torch.randn(4, 8, device="cuda")  # (B, D) fake CUDA features
        txt = torch.randn(4, 8, device="cuda")
        scale = torch.tensor(10.0, device="cuda")  # logit_scale comes from the model, on its device
        try:
            got = call(answer, img, txt, scale)
        except CheckFailure as err:
            if "same device" in err.message or "DeviceMismatch" in err.message:
                raise CheckFailure(err.message, hint=DEVICE_HINT) from None
            if DataDependentOutputException.__name__ in err.message:
                return  # the answer reads a value (e.g. .item()): devices cannot be followed without data
            raise
        got = expect_tensor_like(got, name="loss", hint="Return one scalar tensor.")
        expect(got.numel() == 1, f"loss: expected a scalar, got shape {tuple(got.shape)}.")
        expect(got.device.type == "cuda", f"loss: on {got.device}, expected on the features' device (cuda).",
               hint="Keep the computation on the inputs' device: no .cpu() or CPU-made tensors.")


# ---------------------------------------------------------------------------------------------
# embeddings.zero_shot_classifier
# ---------------------------------------------------------------------------------------------
DOT_HINT = ("Those are raw dot products: normalise both image and text features to unit length "
            "(F.normalize(x, dim=-1)) so that a long text vector does not win every image.")
TEXT_ONLY_HINT = "Normalise the image features too: similarities must be cosines, in [-1, 1]."
IMAGE_ONLY_HINT = "Normalise the text (class) features too: otherwise the class with the longest vector wins."
AXIS_HINT = "Predict one class per image: argmax over the classes, dim=1 (or -1) of the (N, K) similarities."


def _zs(img, txt, how="ok"):
    img, txt = img.double(), txt.double()
    if how in ("ok", "text_only", "axis"):
        txt = F.normalize(txt, dim=-1)
    if how in ("ok", "image_only", "axis"):
        img = F.normalize(img, dim=-1)
    sims = img @ txt.T  # (N, K)
    return sims.float(), sims.argmax(0 if how == "axis" else 1)


@exercise("embeddings.zero_shot_classifier",
          hint="I, T = F.normalize(image_features, dim=-1), F.normalize(text_features, dim=-1); "
               "sims = I @ T.T; return sims, sims.argmax(dim=1).")
def zero_shot_classifier(answer, case):
    """(cosine similarities (N, K), predicted class per image (N,) int64) from image and class-text features."""
    g = torch.Generator().manual_seed(0)
    for name, (N, K, D) in (("8 images, 3 classes, 5-D, class vectors of very different lengths", (8, 3, 5)),
                            ("6 images, 6 classes (N = K), 4-D", (6, 6, 4)),
                            ("1 image, 4 classes, 8-D", (1, 4, 8))):
        with case(name):
            txt = torch.randn(K, D, generator=g) * torch.logspace(-1, 1, K)[:, None]  # norms from 0.1x to 10x
            img = torch.randn(N, D, generator=g) * 3
            got = expect_tuple(call(answer, img.clone(), txt.clone()), ("similarities", "predictions"))
            sims_e, pred_e = _zs(img, txt)
            mistakes = [Mistake(_zs(img, txt, m)[0], h) for m, h in
                        (("dot", DOT_HINT), ("text_only", TEXT_ONLY_HINT), ("image_only", IMAGE_ONLY_HINT))]
            expect_tensor(got[0], sims_e, name="similarities", atol=1e-4, rtol=1e-4, mistakes=mistakes,
                          hint="Return the similarities in the features' dtype (float32 here).")
            pred_mistakes = []
            for m, h in (("dot", DOT_HINT), ("image_only", IMAGE_ONLY_HINT), ("axis", AXIS_HINT)):
                wrong = _zs(img, txt, m)[1]
                if wrong.shape != pred_e.shape or not torch.equal(wrong, pred_e):  # only if it differs
                    pred_mistakes.append(Mistake(wrong, h))
            expect_tensor(got[1], pred_e, name="predictions", mistakes=pred_mistakes,
                          hint=AXIS_HINT if isinstance(got[1], torch.Tensor) and got[1].shape != pred_e.shape else None)

    with case("no images (N = 0): similarities (0, K), predictions (0,)"):
        txt = torch.randn(3, 4, generator=g)
        sims, pred = expect_tuple(call(answer, torch.zeros(0, 4), txt), ("similarities", "predictions"))
        expect_tensor_like(sims, shape=(0, 3), name="similarities")
        expect_tensor_like(pred, shape=(0,), dtype=torch.long, name="predictions")

    with case("a tie: two identical class prompts (1 and 3), the image matches both -- the lower index wins"):
        txt = torch.randn(4, 5, generator=g)
        txt[3] = txt[1]
        img = torch.cat([2 * txt[1:2], torch.randn(2, 5, generator=g)])  # (3, D): image 0 lies on prompt 1
        sims, pred = expect_tuple(call(answer, img, txt.clone()), ("similarities", "predictions"))
        expect_tensor(pred, _zs(img, txt)[1], name="predictions",
                      hint="On a tie take the first (lowest) index, as torch.argmax does.")

    with case("the inputs are not modified"):
        img, txt = torch.randn(4, 5, generator=g) * 3, torch.randn(3, 5, generator=g) * 2
        args = (img.clone(), txt.clone())
        call(answer, *args)
        for what, before, after in zip(("image_features", "text_features"), (img, txt), args):
            expect(torch.equal(before, after), f"{what} was modified by your function.",
                   hint="Normalise into new tensors (F.normalize(x, dim=-1)), not in place.")

    with case("an image equal to a class vector times 5 is classified as that class, similarity 1"):
        txt = torch.randn(5, 6, generator=g) * torch.logspace(-1, 1, 5)[:, None]
        img = 5 * txt[1:2].clone()
        sims, pred = expect_tuple(call(answer, img, txt.clone()), ("similarities", "predictions"))
        expect_tensor(pred, torch.tensor([1]), name="predictions", hint=DOT_HINT)
        expect_tensor(sims[:, 1].float(), torch.ones(1), name="similarity to its own class", atol=1e-4,
                      dtype_check=False, hint=TEXT_ONLY_HINT)
