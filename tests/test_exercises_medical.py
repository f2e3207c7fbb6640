"""Chapter 8's exercise checks: pass on the book's reference answers, fail on the stubs and on
plausible wrong answers, with a message that says what is wrong."""
import math

import pytest
import torch
import torch.nn.functional as F

from exercise_support import failed_cases, failure


# --- binary_focal_loss ---------------------------------------------------------------------------
def _parts(logits, targets):
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    return p, ce, p_t


def focal_gamma_on_pt(logits, targets, alpha=0.25, gamma=2.0):
    p, ce, p_t = _parts(logits, targets)
    a = alpha * targets + (1 - alpha) * (1 - targets)
    return (a * p_t**gamma * ce).mean()


def focal_alpha_everywhere(logits, targets, alpha=0.25, gamma=2.0):
    p, ce, p_t = _parts(logits, targets)
    return (alpha * (1 - p_t) ** gamma * ce).mean()


def focal_no_alpha(logits, targets, alpha=0.25, gamma=2.0):
    p, ce, p_t = _parts(logits, targets)
    return ((1 - p_t) ** gamma * ce).mean()


def focal_sum(logits, targets, alpha=0.25, gamma=2.0):
    p, ce, p_t = _parts(logits, targets)
    a = alpha * targets + (1 - alpha) * (1 - targets)
    return (a * (1 - p_t) ** gamma * ce).sum()


def focal_alpha_swapped(logits, targets, alpha=0.25, gamma=2.0):
    p, ce, p_t = _parts(logits, targets)
    a = (1 - alpha) * targets + alpha * (1 - targets)
    return (a * (1 - p_t) ** gamma * ce).mean()


@pytest.mark.parametrize("answer, expected", [
    (focal_gamma_on_pt, "(1 − p_t)^γ"),
    (focal_alpha_everywhere, "per-class weight"),
    (focal_no_alpha, "α_t is missing"),
    (focal_sum, "mean over all elements"),
    (focal_alpha_swapped, "values differ"),
])
def test_binary_focal_loss_mistakes(answer, expected):
    _, text = failure("medical.binary_focal_loss", answer)
    assert expected in text


# --- sensitivity_at_fp ---------------------------------------------------------------------------
def _curve(scores, hits, n_lesions, n_images, fp_div=True, per_lesion=True, strict=False, ties=True):
    scores, hits = torch.as_tensor(scores, dtype=torch.float64), torch.as_tensor(hits, dtype=torch.bool)
    best = 0.0
    thresholds = torch.unique(scores) if ties else scores.sort(descending=True).values
    order = scores.argsort(descending=True)
    for k, t in enumerate(thresholds.tolist()):
        kept = scores >= t if ties else torch.zeros_like(hits).index_fill_(0, order[: k + 1], True)
        tp, fp = int((hits & kept).sum()), int((~hits & kept).sum())
        rate = fp / n_images if fp_div else fp
        ok = rate < fp_budget[0] if strict else rate <= fp_budget[0] + 1e-12
        if ok:
            best = max(best, tp / (n_lesions if per_lesion else int(kept.sum())))
    return float(best)


fp_budget = [0.0]


def _wrap(**kw):
    def answer(scores, hits, n_lesions, n_images, fppi):
        fp_budget[0] = fppi
        return _curve(scores, hits, n_lesions, n_images, **kw)
    return answer


@pytest.mark.parametrize("answer, expected", [
    (_wrap(fp_div=False), "per image"),
    (_wrap(per_lesion=False), "precision"),
    (_wrap(strict=True), "use <="),
    (_wrap(ties=False), "tied"),
])
def test_sensitivity_at_fp_mistakes(answer, expected):
    _, text = failure("medical.sensitivity_at_fp", answer)
    assert expected in text


def test_sensitivity_at_fp_wrong_type():
    _, text = failure("medical.sensitivity_at_fp", lambda *a: "0.5")
    assert "expected a number" in text


# --- patient_split -------------------------------------------------------------------------------
def split_by_image(patients, test_fraction, seed):
    perm = torch.randperm(len(patients), generator=torch.Generator().manual_seed(seed))
    n_test = round(test_fraction * len(patients))
    return perm[n_test:].sort().values, perm[:n_test].sort().values


def split_fraction_of_images(patients, test_fraction, seed):
    ids = torch.unique(patients)
    perm = ids[torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))]
    test, count = [], 0
    for pid in perm.tolist():  # add patients until the test set has test_fraction of the *images*
        if count >= test_fraction * len(patients):
            break
        test.append(pid)
        count += int((patients == pid).sum())
    is_test = torch.isin(patients, torch.tensor(test))
    return (~is_test).nonzero().flatten(), is_test.nonzero().flatten()


def split_unsorted(patients, test_fraction, seed):
    ids = torch.unique(patients)
    perm = torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))
    test_ids = ids[perm[:round(test_fraction * len(ids))]]
    is_test = torch.isin(patients, test_ids)
    return (~is_test).nonzero().flatten().flip(0), is_test.nonzero().flatten().flip(0)


def split_ignores_seed(patients, test_fraction, seed):
    ids = torch.unique(patients)
    test_ids = ids[:round(test_fraction * len(ids))]
    is_test = torch.isin(patients, test_ids)
    return (~is_test).nonzero().flatten(), is_test.nonzero().flatten()


@pytest.mark.parametrize("answer, expected", [
    (split_by_image, "leakage"),
    (split_fraction_of_images, "fraction of the *patients*"),
    (split_unsorted, "sorted"),
    (split_ignores_seed, "seed is ignored"),
])
def test_patient_split_mistakes(answer, expected):
    _, text = failure("medical.patient_split", answer)
    assert expected in text


# --- new families: stability, gradient flow, dtype, inputs left alone, boundaries, coverage -----
def focal_naive_logs(logits, targets, alpha=0.25, gamma=2.0):
    p = torch.sigmoid(logits)
    p_t = p * targets + (1 - p) * (1 - targets)
    a = alpha * targets + (1 - alpha) * (1 - targets)
    return (-a * (1 - p_t) ** gamma * torch.log(p_t)).mean()  # log(0) = -inf on saturated logits


def focal_detached_modulation(logits, targets, alpha=0.25, gamma=2.0):
    p, ce, p_t = _parts(logits, targets)
    a = alpha * targets + (1 - alpha) * (1 - targets)
    return (a * ((1 - p_t) ** gamma).detach() * ce).mean()  # same value, wrong gradient


def focal_float32(logits, targets, alpha=0.25, gamma=2.0):
    p, ce, p_t = _parts(logits.float(), targets.float())
    a = alpha * targets.float() + (1 - alpha) * (1 - targets.float())
    return (a * (1 - p_t) ** gamma * ce).mean()


def focal_in_place(logits, targets, alpha=0.25, gamma=2.0):
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p = logits.sigmoid_()  # overwrites the caller's logits
    p_t = p * targets + (1 - p) * (1 - targets)
    a = alpha * targets + (1 - alpha) * (1 - targets)
    return (a * (1 - p_t) ** gamma * ce).mean()


@pytest.mark.parametrize("answer, case_name", [
    (focal_naive_logs, "saturated logits (±30, ±100, right and wrong) give a finite loss"),
    (focal_detached_modulation, "the gradient with respect to the logits matches the reference's"),
    (focal_float32, "float64 logits give a float64 loss"),
    (focal_in_place, "the inputs are left unchanged"),
    (focal_alpha_swapped, "α weights the positives: with α = 1 only the examples with y = 1 count"),
])
def test_binary_focal_loss_new_cases(answer, case_name):
    result, _ = failure("medical.binary_focal_loss", answer)
    assert case_name in failed_cases(result)


def test_binary_focal_loss_hints_name_the_mistake():
    _, text = failure("medical.binary_focal_loss", focal_alpha_swapped)
    assert "look swapped" in text
    _, text = failure("medical.binary_focal_loss", focal_detached_modulation)
    assert "gradient" in text


def sens_max_of_list(scores, hits, n_lesions, n_images, fppi):
    values = []
    for t in torch.unique(scores):
        kept = scores >= t
        if int((~hits & kept).sum()) / n_images <= fppi:
            values.append(int((hits & kept).sum()) / n_lesions)
    return max(values)  # fails when no threshold qualifies


def sens_sorts_in_place(scores, hits, n_lesions, n_images, fppi):
    order = scores.argsort(descending=True)
    scores.copy_(scores[order])  # the caller's tensors are overwritten
    hits.copy_(hits[order])
    return _wrap()(scores, hits, n_lesions, n_images, fppi)


@pytest.mark.parametrize("answer, case_name", [
    (sens_max_of_list, "no marks at all"),
    (sens_sorts_in_place, "unsorted input"),
    (_wrap(ties=False), "a hit tied with a false positive, and the budget allows no false positive"),
    (_wrap(strict=True), "the false positives per image equal the budget exactly (2 FPs on 10 images, budget 0.2)"),
])
def test_sensitivity_at_fp_new_cases(answer, case_name):
    result, _ = failure("medical.sensitivity_at_fp", answer)
    assert case_name in failed_cases(result)


def _split_with(n_test_of, draw=None):
    def answer(patients, test_fraction, seed):
        ids = torch.unique(patients)
        g = torch.Generator().manual_seed(seed)
        perm = draw(len(ids), g) if draw else torch.randperm(len(ids), generator=g)
        test_ids = ids[perm[:n_test_of(test_fraction * len(ids))]]
        is_test = torch.isin(patients, test_ids)
        return (~is_test).nonzero().flatten(), is_test.nonzero().flatten()
    return answer


def split_int32(patients, test_fraction, seed):
    tr, te = _split_with(round)(patients, test_fraction, seed)
    return tr.int(), te.int()


@pytest.mark.parametrize("answer, case_name", [
    (_split_with(int), "9 patients, 30 % test: 2.7 rounds to 3 patients"),
    (_split_with(math.ceil), "10 patients, 32 % test: 3.2 rounds to 3 patients"),
    # a permutation of all but the last patient: the last can never be drawn
    (_split_with(round, lambda n, g: torch.randperm(max(n - 1, 0), generator=g)),
     "over 40 seeds, every patient lands in the test set at least once"),
    (split_int32, "int32 patient ids"),
])
def test_patient_split_new_cases(answer, case_name):
    result, _ = failure("medical.patient_split", answer)
    assert case_name in failed_cases(result)
