"""Checks of Chapter 8 (deep learning for medical imaging): the binary focal loss, a FROC point
(sensitivity at a fixed number of false positives per image) and a patient-level split.

* ``medical.binary_focal_loss`` -- compared with ``torchvision.ops.sigmoid_focal_loss`` (the
  oracle, mean reduction) for several α, γ; known mistakes (γ on p_t instead of 1 − p_t, α on every
  example instead of α_t per class, no α, a sum instead of the mean) get their own hint.
* ``medical.sensitivity_at_fp`` -- compared with ``course_utils.metrics.froc.froc_from_marks``:
  tied scores, no mark allowed, all marks allowed; known mistakes (FP not divided by the images,
  hits divided by the marks instead of the lesions, a strict < at the FP budget).
* ``medical.patient_split`` -- property checks: a partition of the images, no patient on both
  sides, the requested fraction of *patients* in the test set, determinism in the seed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .core import Mistake, call, exercise, expect, expect_close, expect_tensor, expect_tensor_like, expect_tuple

# ---------------------------------------------------------------------------------------------
# medical.binary_focal_loss
# ---------------------------------------------------------------------------------------------
GAMMA_TERM_HINT = ("The modulating factor is (1 − p_t)^γ: it shrinks the loss of *easy* examples (p_t near 1). "
                   "You used p_t^γ, which shrinks the hard ones.")
ALPHA_ALL_HINT = ("α is a per-class weight: α_t = α for positives (y = 1) and 1 − α for negatives. You multiplied "
                  "every example by α.")
NO_ALPHA_HINT = "α_t is missing: multiply by α_t = α·y + (1 − α)(1 − y)."
SUM_HINT = "Return the mean over all elements, not the sum."
P_NOT_PT_HINT = "Use p_t (the probability of the *true* label: p if y = 1 else 1 − p), not p, in (1 − p_t)^γ."


def _focal(logits, targets, alpha, gamma, how="ok"):
    x, y = logits.double(), targets.double()
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    mod = {"gamma_term": p_t**gamma, "p_not_pt": (1 - p) ** gamma}.get(how, (1 - p_t) ** gamma)
    a = {"alpha_all": torch.full_like(y, alpha), "no_alpha": torch.ones_like(y),
         "swapped": (1 - alpha) * y + alpha * (1 - y)}.get(how, alpha * y + (1 - alpha) * (1 - y))
    loss = a * mod * ce
    return (loss.sum() if how == "sum" else loss.mean()).float()


SWAPPED_ALPHA_HINT = ("α weights the *positives* (y = 1) and 1 − α the negatives, as in RetinaNet and "
                      "torchvision: α_t = α·y + (1 − α)(1 − y). Your weights look swapped.")
STABLE_HINT = ("Saturated logits: log(σ(z)) or log(1 − σ(z)) becomes log(0) = −inf in floating point. "
               "Get −log p_t from F.binary_cross_entropy_with_logits(..., reduction='none'), which is stable.")
GRAD_HINT = ("The value is right but the gradient is not: part of the loss is computed on detached tensors "
             "(`.detach()`, `.item()`, `torch.no_grad()`, numpy) -- every term must stay in the autograd graph.")
INPLACE_HINT = "Do not modify `logits` or `targets` (no in-place operations such as `sigmoid_` or `+=` on them)."
DTYPE_HINT = "Return the loss in the logits' dtype (float64 in, float64 out): do not convert with `.float()`."


def _reference_loss(logits, targets, alpha, gamma):
    from torchvision.ops import sigmoid_focal_loss

    return sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=gamma, reduction="mean")


@exercise("medical.binary_focal_loss",
          hint="p = sigmoid(logits); ce = BCE with logits (reduction='none'); p_t = p*y + (1-p)*(1-y); "
               "alpha_t = alpha*y + (1-alpha)*(1-y); return (alpha_t * (1 - p_t)**gamma * ce).mean().")
def binary_focal_loss(answer, case):
    """FL = mean of −α_t (1 − p_t)^γ log p_t over all elements; a scalar in the logits' dtype."""
    g = torch.Generator().manual_seed(0)
    for name, shape, alpha, gamma in (("16 examples, α = 0.25, γ = 2", (16,), 0.25, 2.0),
                                      ("(4, 6) logits, α = 0.75, γ = 1", (4, 6), 0.75, 1.0),
                                      ("8 examples, α = 0.9, γ = 3", (8,), 0.9, 3.0)):
        with case(name):
            logits = 3 * torch.randn(shape, generator=g)
            targets = (torch.rand(shape, generator=g) < 0.3).float()
            got = expect_tensor_like(call(answer, logits.clone(), targets.clone(), alpha, gamma), name="loss")
            expect(got.numel() == 1, f"loss: expected a scalar, got shape {tuple(got.shape)}.", hint=SUM_HINT)
            expected = _reference_loss(logits, targets, alpha, gamma)
            mistakes = [Mistake(_focal(logits, targets, alpha, gamma, m).reshape(got.shape), h) for m, h in
                        (("gamma_term", GAMMA_TERM_HINT), ("alpha_all", ALPHA_ALL_HINT), ("no_alpha", NO_ALPHA_HINT),
                         ("sum", SUM_HINT), ("p_not_pt", P_NOT_PT_HINT), ("swapped", SWAPPED_ALPHA_HINT))]
            expect_tensor(got.float(), expected.reshape(got.shape), name="loss", atol=1e-5, rtol=1e-4,
                          dtype_check=False, mistakes=mistakes)

    with case("γ = 0 and α = 0.5 give half the binary cross-entropy"):
        logits, targets = torch.randn(10, generator=g), (torch.rand(10, generator=g) < 0.5).float()
        got = expect_tensor_like(call(answer, logits, targets, 0.5, 0.0), name="loss")
        expect_close(got.reshape(-1)[0], 0.5 * F.binary_cross_entropy_with_logits(logits, targets).item(), 1e-5,
                     name="loss", hint=GAMMA_TERM_HINT)

    with case("α weights the positives: with α = 1 only the examples with y = 1 count"):
        logits = torch.tensor([2.0, -1.0, 0.5, -3.0])
        targets = torch.tensor([1.0, 1.0, 0.0, 0.0])
        got = expect_tensor_like(call(answer, logits, targets, 1.0, 2.0), name="loss")
        expect_close(got.reshape(-1)[0], _reference_loss(logits, targets, 1.0, 2.0).item(), 1e-6, name="loss",
                     hint=SWAPPED_ALPHA_HINT, fmt=".6f")

    with case("an easy example (y = 1, logit 6) costs far less than a hard one (y = 1, logit −2)"):
        easy = expect_tensor_like(call(answer, torch.tensor([6.0]), torch.tensor([1.0]), 0.25, 2.0), name="easy loss")
        hard = expect_tensor_like(call(answer, torch.tensor([-2.0]), torch.tensor([1.0]), 0.25, 2.0), name="hard loss")
        expect(float(easy.reshape(-1)[0]) < 1e-3 * float(hard.reshape(-1)[0]),
               f"easy {float(easy.reshape(-1)[0]):.3g} vs hard {float(hard.reshape(-1)[0]):.3g}: "
               "the easy example should weigh at least 1000 times less.", hint=GAMMA_TERM_HINT)

    with case("saturated logits (±30, ±100, right and wrong) give a finite loss"):
        logits = torch.tensor([100.0, -100.0, 30.0, -30.0, 100.0, -100.0])
        targets = torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0, 0.0])  # four confidently wrong, two confidently right
        got = expect_tensor_like(call(answer, logits, targets, 0.25, 2.0), name="loss")
        expected = _reference_loss(logits, targets, 0.25, 2.0)
        expect_tensor(got.float().reshape(-1)[:1], expected.reshape(1), name="loss", atol=1e-4, rtol=1e-5,
                      dtype_check=False, hint=STABLE_HINT)

    with case("the gradient with respect to the logits matches the reference's"):
        logits = 2 * torch.randn(12, generator=g, dtype=torch.float64)
        targets = (torch.rand(12, generator=g) < 0.4).double()
        mine = logits.clone().requires_grad_(True)
        got = expect_tensor_like(call(answer, mine, targets.clone(), 0.25, 2.0), name="loss")
        expect(got.requires_grad, "the loss does not depend on the logits through autograd: it has no gradient.",
               hint=GRAD_HINT)
        (grad,) = torch.autograd.grad(got.reshape(-1)[0], mine, allow_unused=True)
        expect(grad is not None, "the loss has no gradient with respect to the logits.", hint=GRAD_HINT)
        ref = logits.clone().requires_grad_(True)
        (expected,) = torch.autograd.grad(_reference_loss(ref, targets, 0.25, 2.0), ref)
        expect_tensor(grad.double(), expected, name="d loss / d logits", atol=1e-7, rtol=1e-5,
                      dtype_check=False, hint=GRAD_HINT)

    with case("float64 logits give a float64 loss"):
        logits = torch.randn(6, generator=g, dtype=torch.float64)
        targets = (torch.rand(6, generator=g) < 0.5).double()
        got = expect_tensor_like(call(answer, logits, targets, 0.25, 2.0), name="loss")
        expect(got.dtype == torch.float64, f"loss: dtype {got.dtype}, expected torch.float64.", hint=DTYPE_HINT)
        expect_close(got.reshape(-1)[0], _reference_loss(logits, targets, 0.25, 2.0).item(), 1e-12, name="loss",
                     fmt=".12f", hint=DTYPE_HINT)

    with case("the inputs are left unchanged"):
        logits, targets = 3 * torch.randn(10, generator=g), (torch.rand(10, generator=g) < 0.5).float()
        logits_in, targets_in = logits.clone(), targets.clone()
        call(answer, logits_in, targets_in, 0.25, 2.0)
        expect(torch.equal(logits_in, logits) and torch.equal(targets_in, targets),
               "your function changed `logits` or `targets` in place.", hint=INPLACE_HINT)


# ---------------------------------------------------------------------------------------------
# medical.sensitivity_at_fp
# ---------------------------------------------------------------------------------------------
FP_PER_IMAGE_HINT = "The budget is false positives *per image*: divide the false-positive count by n_images."
PRECISION_HINT = ("Sensitivity is per lesion: the number of lesions hit divided by n_lesions (not by the number "
                  "of marks kept -- that is precision).")
STRICT_HINT = "A threshold whose FP/image equals the budget is allowed: use <=, not <."
TIES_HINT = ("Marks with the same score enter together (one threshold): do not stop half-way through a group of tied "
             "scores.")


def _sens(scores, hits, n_lesions, n_images, fp, how="ok"):
    import numpy as np

    s, h = np.asarray(scores, float), np.asarray(hits, bool)
    order = np.argsort(-s, kind="stable")
    s, h = s[order], h[order]
    tp, fpc = np.cumsum(h), np.cumsum(~h)
    last = np.r_[s[1:] != s[:-1], True] if len(s) else np.zeros(0, bool)
    if how == "no_ties":
        last = np.ones(len(s), bool)
    denom_fp = 1 if how == "per_image" else n_images
    sens = np.r_[0.0, tp[last] / (np.arange(1, len(s) + 1)[last] if how == "precision" else n_lesions)]
    fppi = np.r_[0.0, fpc[last] / denom_fp]
    ok = (fppi < fp) if how == "strict" else (fppi <= fp + 1e-12)
    if how == "strict":
        ok[0] = True
    return float(sens[ok].max())


SENS_CASES = (
    # name, scores, hits, n_lesions, n_images, fppi
    ("5 images, 4 lesions, 1 FP/image", [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1],
     [1, 0, 1, 0, 0, 1, 0, 0, 1], 4, 5, 1.0),
    ("2 images, 3 lesions, 0.5 FP/image (the budget is met exactly)", [0.95, 0.9, 0.85, 0.6, 0.5],
     [1, 0, 0, 1, 1], 3, 2, 0.5),
    ("tied scores enter together: 2 images, 3 lesions, 0.5 FP/image", [0.9, 0.7, 0.7, 0.7, 0.2],
     [1, 0, 1, 0, 1], 3, 2, 0.5),
    ("budget 0: only marks above the first false positive count", [0.9, 0.8, 0.7], [1, 0, 1], 2, 4, 0.0),
    ("a lesion that no mark finds: the sensitivity stays below 1", [0.9, 0.3], [1, 0], 3, 1, 10.0),
    ("unsorted input", [0.2, 0.9, 0.5, 0.8, 0.1, 0.6], [0, 1, 1, 0, 1, 0], 3, 3, 0.34),
    ("a hit tied with a false positive, and the budget allows no false positive",
     [0.9, 0.7, 0.7], [1, 1, 0], 2, 1, 0.0),
    ("the false positives per image equal the budget exactly (2 FPs on 10 images, budget 0.2)",
     [0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [1, 0, 1, 0, 1, 0], 4, 10, 0.2),
    ("the false positives come first: a budget below 1 FP/image keeps no mark", [0.9, 0.8, 0.3],
     [0, 0, 1], 2, 1, 0.5),
    ("no marks at all", [], [], 2, 3, 1.0),
    ("every mark is a false positive", [0.8, 0.6, 0.4], [0, 0, 0], 3, 2, 4.0),
)
EMPTY_HINT = ("With no mark (or none under the budget) the sensitivity is 0.0: start from 0 instead of taking "
              "max() of an empty list.")
INPUT_HINT = "Do not modify `scores` or `hits` (sort a copy: `torch.sort` returns new tensors)."


@exercise("medical.sensitivity_at_fp",
          hint="Sort by score (descending); at each distinct score t, TP(t) = hits with score >= t, FP(t) = misses "
               "with score >= t; keep the thresholds with FP(t) / n_images <= fppi and return the largest "
               "TP(t) / n_lesions (0 if none).")
def sensitivity_at_fp(answer, case):
    """Per-lesion sensitivity at most ``fppi`` false positives per image (one FROC point)."""
    from course_utils.metrics.froc import froc_from_marks

    for name, scores, hits, n_lesions, n_images, fp in SENS_CASES:
        with case(name, hint=EMPTY_HINT if not scores else None):
            s, h = torch.tensor(scores, dtype=torch.float32), torch.tensor(hits, dtype=torch.bool)
            s_in, h_in = s.clone(), h.clone()
            got = call(answer, s_in, h_in, n_lesions, n_images, fp)
            if isinstance(got, torch.Tensor):
                got = got.reshape(-1)[0].item() if got.numel() == 1 else got
            expect(isinstance(got, (int, float)) and not isinstance(got, bool),
                   f"expected a number, got {type(got).__name__}.", hint="Return a Python float (e.g. `.item()`).")
            expect(torch.equal(s_in, s) and torch.equal(h_in, h), "your function changed `scores` or `hits`.",
                   hint=INPUT_HINT)
            expected = froc_from_marks(scores, hits, n_lesions, n_images).at(fp)
            if abs(got - expected) > 1e-6:
                hint = None
                for how, h_text in (("per_image", FP_PER_IMAGE_HINT), ("precision", PRECISION_HINT),
                                    ("strict", STRICT_HINT), ("no_ties", TIES_HINT)):
                    if abs(_sens(scores, hits, n_lesions, n_images, fp, how) - got) < 1e-6:
                        hint = h_text
                        break
                expect_close(got, expected, 1e-6, name="sensitivity", hint=hint)


# ---------------------------------------------------------------------------------------------
# medical.patient_split
# ---------------------------------------------------------------------------------------------
LEAK_HINT = ("Images of one patient ended up on both sides: split the *unique patient ids* "
             "(torch.unique, then a permutation of them), then send every image to its patient's side.")
FRACTION_HINT = ("test_fraction is a fraction of the *patients*: the test set holds round(test_fraction * P) "
                 "patients, P = the number of distinct ids.")


@exercise("medical.patient_split",
          hint="ids = torch.unique(patients); perm = torch.randperm(len(ids), generator=torch.Generator()"
               ".manual_seed(seed)); test_ids = ids[perm[:round(test_fraction * len(ids))]]; "
               "is_test = torch.isin(patients, test_ids); return the sorted indices of ~is_test and is_test.")
def patient_split(answer, case):
    """(train_idx, test_idx) sorted long tensors; no patient on both sides; a fraction of the patients in test.

    Any random draw of the test patients is accepted: the check tests properties (a partition, no
    shared patient, round(test_fraction · P) test patients, same seed -> same split, another seed ->
    another split, every patient can be drawn), never one particular draw.
    """
    g = torch.Generator().manual_seed(0)
    varied = torch.arange(30).repeat_interleave(torch.randint(1, 5, (30,), generator=g))  # 1 to 4 images each
    varied = varied[torch.randperm(len(varied), generator=g)]  # in random order
    cases = (("40 patients, 3 views each, 25 % test", torch.arange(40).repeat_interleave(3), 0.25, 0),
             ("shuffled ids with 1 to 4 images each, 30 % test", varied, 0.3, 1),
             ("non-consecutive ids (7, 19, 102...), 40 % test", torch.tensor([7, 7, 19, 102, 102, 102, 5, 5, 64, 64]),
              0.4, 2),
             ("one patient with 20 images, nine with one, 30 % test (of the patients)",
              torch.cat([torch.zeros(20, dtype=torch.long), torch.arange(1, 10)]), 0.3, 5),
             ("9 patients, 30 % test: 2.7 rounds to 3 patients", torch.arange(9).repeat_interleave(2), 0.3, 6),
             ("10 patients, 32 % test: 3.2 rounds to 3 patients", torch.arange(10).repeat_interleave(2), 0.32, 7),
             ("test_fraction 0: nobody in test", torch.arange(6).repeat_interleave(2), 0.0, 8),
             ("test_fraction 1: everybody in test", torch.arange(6).repeat_interleave(2), 1.0, 9),
             ("int32 patient ids", torch.tensor([3, 1, 3, 2, 1, 4, 4, 2], dtype=torch.int32), 0.5, 10),
             ("no images at all", torch.zeros(0, dtype=torch.long), 0.25, 11))
    for name, patients, frac, seed in cases:
        with case(name):
            patients_in = patients.clone()
            got = expect_tuple(call(answer, patients_in, frac, seed), ("train_idx", "test_idx"))
            tr = expect_tensor_like(got[0], name="train_idx")
            te = expect_tensor_like(got[1], name="test_idx")
            expect(torch.equal(patients_in, patients), "your function changed `patients`.",
                   hint="Do not modify `patients` (no in-place sort or assignment).")
            expect(tr.dtype == torch.long and te.dtype == torch.long,
                   f"indices must be torch.long tensors, got {tr.dtype} and {te.dtype}.",
                   hint="torch.nonzero / torch.arange give torch.long; convert others with `.long()`.")
            expect(tr.dim() == 1 and te.dim() == 1,
                   f"train_idx and test_idx must be 1-D, got shapes {tuple(tr.shape)} and {tuple(te.shape)}.",
                   hint="`.flatten()` the result of torch.nonzero.")
            everything = torch.cat([tr, te]).sort().values
            expect(torch.equal(everything, torch.arange(len(patients))),
                   "train_idx and test_idx must together hold every image index exactly once.")
            expect(torch.equal(tr, tr.sort().values) and torch.equal(te, te.sort().values),
                   "return the indices sorted (ascending).", hint="`.sort().values` or torch.nonzero(...).flatten().")
            shared = set(patients[tr].tolist()) & set(patients[te].tolist())
            expect(not shared, f"patients {sorted(shared)[:5]} have images in both train and test: leakage.",
                   hint=LEAK_HINT)
            n_p = len(torch.unique(patients))
            expect(len(torch.unique(patients[te])) == round(frac * n_p),
                   f"test holds {len(torch.unique(patients[te]))} patients, expected round({frac} * {n_p}) = "
                   f"{round(frac * n_p)}.", hint=FRACTION_HINT)
    with case("the same seed gives the same split, another seed another one"):
        patients = torch.arange(50).repeat_interleave(2)
        a = expect_tuple(call(answer, patients.clone(), 0.2, 3), ("train_idx", "test_idx"))
        b = expect_tuple(call(answer, patients.clone(), 0.2, 3), ("train_idx", "test_idx"))
        c = expect_tuple(call(answer, patients.clone(), 0.2, 4), ("train_idx", "test_idx"))
        expect(torch.equal(a[1], b[1]), "two calls with the same seed gave different splits.",
               hint="Use torch.Generator().manual_seed(seed) for the permutation.")
        expect(not torch.equal(a[1], c[1]), "seeds 3 and 4 gave the same split: the seed is ignored.",
               hint="Use torch.Generator().manual_seed(seed) for the permutation.")
    with case("over 40 seeds, every patient lands in the test set at least once"):
        patients = torch.tensor([12, 12, 3, 3, 40, 40, 7, 7, 25, 25, 9, 9, 31, 31, 18, 18, 5, 5, 60, 60])
        seen = set()
        for seed in range(40):
            _, te = expect_tuple(call(answer, patients.clone(), 0.3, seed), ("train_idx", "test_idx"))
            seen |= set(patients[expect_tensor_like(te, name="test_idx").long()].tolist())
        never = sorted(set(patients.tolist()) - seen)
        expect(not never, f"patients {never} were never drawn for the test set in 40 seeds: the draw cannot reach "
                          "every patient.", hint="Permute *all* P distinct ids (torch.randperm(P)), then take the "
                                                 "first round(test_fraction * P).")
