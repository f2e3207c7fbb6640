"""Chapter 6's exercise checks: pass on the book's reference answers, fail on the stubs and on
plausible wrong answers, with a message that says what is wrong."""
import pytest
import torch
import torch.nn.functional as F

from course_utils.exercises import run_check
from exercise_support import book, failed_cases, failure  # noqa: F401  (book: a fixture)


# --- skipgram_pairs -----------------------------------------------------------------------------
def _pairs(ids, window, keep):
    T = len(ids)
    out = [(ids[i], ids[j]) for i in range(T) for j in range(T) if keep(i, j, window, ids)]
    return torch.tensor(out, dtype=torch.long).reshape(-1, 2)


def pairs_with_centre(ids, window):
    return _pairs(ids, window, lambda i, j, w, ids: abs(i - j) <= w)


def pairs_too_wide(ids, window):
    return _pairs(ids, window, lambda i, j, w, ids: 0 < abs(i - j) <= w + 1)


def pairs_too_narrow(ids, window):
    return _pairs(ids, window, lambda i, j, w, ids: 0 < abs(i - j) < w)


def pairs_one_side(ids, window):
    return _pairs(ids, window, lambda i, j, w, ids: 0 < j - i <= w)


def pairs_by_value(ids, window):
    return _pairs(ids, window, lambda i, j, w, ids: 0 < abs(i - j) <= w and ids[i] != ids[j])


def pairs_as_list(ids, window):
    T = len(ids)
    return [(ids[i], ids[j]) for i in range(T) for j in range(max(0, i - window), min(T, i + window + 1)) if j != i]


def pairs_flat(ids, window):
    return pairs_with_centre(ids, window)[:, 0] * 0 + 1 if len(ids) > 1 else torch.zeros(0, dtype=torch.long)


@pytest.mark.parametrize("answer, expected", [
    (pairs_with_centre, "not its own context"),
    (pairs_too_wide, "too wide"),
    (pairs_too_narrow, "too narrow"),
    (pairs_one_side, "both sides"),
    (pairs_by_value, "Compare positions"),
    (pairs_as_list, "expected a torch tensor"),
    (pairs_flat, "expected (P, 2)"),
])
def test_skipgram_pairs_mistakes(answer, expected):
    _, text = failure("embeddings.skipgram_pairs", answer)
    assert expected in text


def test_skipgram_pairs_accepts_any_row_order():
    def shuffled(ids, window):
        T = len(ids)
        pairs = [(ids[i], ids[j]) for i in range(T) for j in range(max(0, i - window), min(T, i + window + 1))
                 if j != i]
        return torch.tensor(pairs[::-1], dtype=torch.long).reshape(-1, 2)

    assert run_check("embeddings.skipgram_pairs", shuffled).passed


# --- clip_loss ----------------------------------------------------------------------------------
def _logits(img, txt, scale, normalise=True):
    if normalise:
        img, txt = F.normalize(img, dim=-1), F.normalize(txt, dim=-1)
    return scale * img @ txt.T


def clip_one_direction(img, txt, logit_scale):
    return F.cross_entropy(_logits(img, txt, logit_scale), torch.arange(len(img)))


def clip_no_temperature(img, txt, logit_scale):
    logits, labels = _logits(img, txt, 1.0), torch.arange(len(img))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def clip_no_normalisation(img, txt, logit_scale):
    logits, labels = _logits(img, txt, logit_scale, normalise=False), torch.arange(len(img))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def clip_sum(img, txt, logit_scale):
    logits, labels = _logits(img, txt, logit_scale), torch.arange(len(img))
    return F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)


def clip_exp_twice(img, txt, logit_scale):
    logits, labels = _logits(img, txt, logit_scale.exp()), torch.arange(len(img))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def clip_detached(img, txt, logit_scale):
    logits, labels = _logits(img.detach(), txt.detach(), logit_scale), torch.arange(len(img))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


@pytest.mark.parametrize("answer, expected", [
    (clip_one_direction, "one direction only"),
    (clip_no_temperature, "temperature is missing"),
    (clip_no_normalisation, "Normalise the features"),
    (clip_sum, "Average the two directions"),
    (clip_exp_twice, "already exp(s)"),
    (clip_detached, "no gradient reaches the image features"),
])
def test_clip_loss_mistakes(answer, expected):
    _, text = failure("embeddings.clip_loss", answer)
    assert expected in text


def test_clip_loss_one_direction_fails_every_random_case():
    result, _ = failure("embeddings.clip_loss", clip_one_direction)
    assert len([c for c in failed_cases(result) if c.startswith("batch of")]) == 3


def clip_labels_on_cpu(img, txt, logit_scale):
    """Right on the CPU; on a GPU the labels (made on the CPU) meet CUDA logits and it crashes."""
    logits, labels = _logits(img, txt, logit_scale), torch.arange(len(img))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def test_clip_loss_with_cpu_labels_fails_on_fake_cuda_with_the_device_hint():
    result, text = failure("embeddings.clip_loss", clip_labels_on_cpu)
    assert failed_cases(result) == ["features on a GPU (a fake CUDA device): everything the loss creates must be there too"]
    assert "same device" in text
    assert "torch.arange(len(I), device=I.device)" in text and "on the CPU" in text


def test_clip_loss_reference_passes_the_fake_cuda_case(book):
    result = run_check("embeddings.clip_loss", book["embeddings.clip_loss"].load())
    assert result.passed and [c.name for c in result.cases][-1].startswith("features on a GPU")


def test_clip_loss_that_reads_the_scale_fails_only_for_the_temperature_gradient():
    def with_item(img, txt, logit_scale):  # .item(): the value is right, the learned temperature gets no gradient
        logits, labels = _logits(img, txt, logit_scale.item()), torch.arange(len(img), device=img.device)
        return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2

    result, text = failure("embeddings.clip_loss", with_item)
    # not failed on fake CUDA (it reads a value there, which fake tensors have not): only for the gradient
    assert failed_cases(result) == ["gradients w.r.t. the image features, the text features and logit_scale"]
    assert "no gradient reaches the logit_scale" in text and "temperature is learned" in text


# --- zero_shot_classifier -----------------------------------------------------------------------
def zs_dot(img, txt):
    sims = img @ txt.T
    return sims, sims.argmax(1)


def zs_text_only(img, txt):
    sims = img @ F.normalize(txt, dim=-1).T
    return sims, sims.argmax(1)


def zs_image_only(img, txt):
    sims = F.normalize(img, dim=-1) @ txt.T
    return sims, sims.argmax(1)


def zs_wrong_axis(img, txt):
    sims = F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T
    return sims, sims.argmax(0)


def zs_predictions_only(img, txt):
    return (F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T).argmax(1)


@pytest.mark.parametrize("answer, expected", [
    (zs_dot, "raw dot products"),
    (zs_text_only, "Normalise the image features too"),
    (zs_image_only, "Normalise the text"),
    (zs_wrong_axis, "one class per image"),
    (zs_predictions_only, "expected a tuple of 2"),
])
def test_zero_shot_classifier_mistakes(answer, expected):
    _, text = failure("embeddings.zero_shot_classifier", answer)
    assert expected in text


def test_zero_shot_dot_products_fail_on_long_class_vectors():
    result, _ = failure("embeddings.zero_shot_classifier", zs_dot)
    assert any("very different lengths" in c for c in failed_cases(result))


# --- new cases: boundaries, inputs not modified, gradients, dtype, ties ---------------------------
def sg_modifies_ids(ids, window):
    pairs = [(ids[i], ids[j]) for i in range(len(ids))
             for j in range(max(0, i - window), min(len(ids), i + window + 1)) if j != i]
    ids.clear()  # empties the caller's list
    return torch.tensor(pairs, dtype=torch.long).reshape(-1, 2)


def sg_no_reshape(ids, window):
    pairs = [(ids[i], ids[j]) for i in range(len(ids))
             for j in range(max(0, i - window), min(len(ids), i + window + 1)) if j != i]
    return torch.tensor(pairs, dtype=torch.long)  # shape (0,) when there are no pairs


def clip_in_place(img, txt, logit_scale):
    img /= img.norm(dim=-1, keepdim=True)
    txt /= txt.norm(dim=-1, keepdim=True)
    logits, labels = logit_scale * img @ txt.T, torch.arange(len(img), device=img.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def clip_text_detached(img, txt, logit_scale):
    logits, labels = _logits(img, txt.detach(), logit_scale), torch.arange(len(img), device=img.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def zs_float64(img, txt):
    sims = F.normalize(img.double(), dim=-1) @ F.normalize(txt.double(), dim=-1).T
    return sims, sims.argmax(1)


def zs_last_on_tie(img, txt):
    sims = F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T
    return sims, sims.shape[1] - 1 - sims.flip(1).argmax(1)


def zs_row_loop(img, txt):
    sims = F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T
    return sims, torch.stack([row.argmax() for row in sims])  # fails on no images


def zs_in_place(img, txt):
    img /= img.norm(dim=-1, keepdim=True)
    txt /= txt.norm(dim=-1, keepdim=True)
    sims = img @ txt.T
    return sims, sims.argmax(1)


@pytest.mark.parametrize("exercise_id, answer, case, expected", [
    ("embeddings.skipgram_pairs", sg_modifies_ids, "5 words, window 1", "ids was modified"),
    ("embeddings.skipgram_pairs", sg_no_reshape, "an empty sentence: no pairs, shape (0, 2)", "reshape(-1, 2)"),
    ("embeddings.clip_loss", clip_in_place, "the inputs are not modified", "the inputs are not modified"),
    ("embeddings.clip_loss", clip_text_detached,
     "gradients w.r.t. the image features, the text features and logit_scale", "no gradient reaches the text"),
    ("embeddings.zero_shot_classifier", zs_float64, "8 images, 3 classes, 5-D, class vectors of very different lengths",
     "dtype torch.float64"),
    ("embeddings.zero_shot_classifier", zs_last_on_tie,
     "a tie: two identical class prompts (1 and 3), the image matches both -- the lower index wins", "lowest"),
    ("embeddings.zero_shot_classifier", zs_row_loop, "no images (N = 0): similarities (0, K), predictions (0,)",
     "raised"),
    ("embeddings.zero_shot_classifier", zs_in_place, "the inputs are not modified", "not in place"),
])
def test_new_cases_catch_their_mistakes(exercise_id, answer, case, expected):
    result, text = failure(exercise_id, answer)
    assert case in failed_cases(result)
    assert expected in text


def test_alternative_correct_answers_pass():
    from alternatives.embeddings import ALTERNATIVES

    for exercise_id, sources in ALTERNATIVES.items():
        assert len(sources) >= 2
        for source in sources:
            namespace = {}
            exec(source, namespace)
            result = run_check(exercise_id, namespace[exercise_id.split(".")[1]])
            assert result.passed, (exercise_id, source, result.messages)
