"""Chapter 8's exercise checks: pass on the book's reference answers, fail on the stubs and on
plausible wrong answers, with a message that says what is wrong."""
import pytest
import torch
import torch.nn.functional as F

from exercise_support import failure


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
