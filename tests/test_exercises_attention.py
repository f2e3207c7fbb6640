"""Chapter 1's exercise checks: pass on the book's reference answers, fail on the stubs and on
plausible wrong answers, with a message that says what is wrong."""
import math

import pytest
import torch

from course_utils.authoring import all_exercises
from course_utils.exercises import check, run_check
from course_utils.exercises import attention as checks
from exercise_support import book, failed_cases, failure  # noqa: F401  (book: a fixture)


# ---------------------------------------------------------------------------------------------
# attention.scaled_dot_product_attention
# ---------------------------------------------------------------------------------------------
SDPA = "attention.scaled_dot_product_attention"


def sdpa_no_scaling(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


def sdpa_softmax_over_queries(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-2)
    return weights @ v, weights


def sdpa_mask_inverted(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


def sdpa_mask_ignored(q, k, v, mask=None):
    weights = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)
    return weights @ v, weights


def sdpa_output_only(q, k, v, mask=None):
    return sdpa_mask_ignored(q, k, v, mask)[0] if mask is None else _reference_sdpa(q, k, v, mask)[0]


def sdpa_weights_transposed(q, k, v, mask=None):
    out, weights = _reference_sdpa(q, k, v, mask)
    return out, weights.transpose(-2, -1)


def sdpa_naive_exp(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.exp() / scores.exp().sum(dim=-1, keepdim=True)  # overflows for large scores
    return weights @ v, weights


def sdpa_batched_only(q, k, v, mask=None):
    scores = q @ k.transpose(2, 3) / math.sqrt(q.shape[-1])  # assumes 4-D inputs
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


def _reference_sdpa(q, k, v, mask=None):
    """The book's reference answer (loaded from the notebook, not copied here)."""
    return all_exercises()[SDPA].load()(q, k, v, mask)


def test_sdpa_alternative_formulations_pass():
    def einsum_version(q, k, v, mask=None):
        scores = torch.einsum("...id,...jd->...ij", q / q.shape[-1] ** 0.5, k)
        if mask is not None:
            scores = torch.where(mask, scores, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1)
        return torch.einsum("...ij,...jd->...id", weights, v), weights

    assert run_check(SDPA, einsum_version).passed


def test_sdpa_expectations_do_not_depend_on_the_learners_inputs():
    def scales_q_in_place(q, k, v, mask=None):
        q.div_(math.sqrt(q.shape[-1]))  # mutates its argument: the check's expected values must not move
        scores = q @ k.transpose(-2, -1)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = scores.softmax(dim=-1)
        return weights @ v, weights

    assert run_check(SDPA, scales_q_in_place).passed


def test_sdpa_without_scaling_fails_with_the_scaling_hint():
    result, text = failure(SDPA, sdpa_no_scaling)
    assert "weights: values differ" in text and "max |got - expected|" in text
    assert "expected weights[" in text and "got      weights[" in text
    assert "divide Q Kᵀ by √d" in text


def test_sdpa_softmax_over_the_wrong_axis_fails():
    result, text = failure(SDPA, sdpa_softmax_over_queries)
    assert "softmax(dim=-1)" in text and "one query" in text
    assert "every row of the weights sums to 1 (T_q=3, T_k=8, d=16)" in failed_cases(result)


@pytest.mark.parametrize("wrong", [sdpa_mask_inverted, sdpa_mask_ignored])
def test_sdpa_mask_polarity_and_ignored_mask_fail(wrong):
    result, text = failure(SDPA, wrong)
    failed = failed_cases(result)
    assert set(failed) == {
        "random bool mask (B=2, H=3, T_q=5, T_k=6), at least one allowed key per row",
        "causal mask: a (6, 6) lower-triangular mask broadcast over (B=2, H=2)",
    }
    expected_hint = checks.POLARITY_HINT if wrong is sdpa_mask_inverted else checks.IGNORED_HINT
    assert all(case.hint == expected_hint for case in result.cases if not case.passed)
    assert expected_hint in text


def test_sdpa_returning_only_the_output_fails():
    result, text = failure(SDPA, sdpa_output_only)
    assert result.score == 0
    assert "expected a tuple of 2 (output, weights), got a tensor of shape (5, 8)" in text
    assert "return weights @ v, weights" in text


def test_sdpa_transposed_weights_fail():
    result, text = failure(SDPA, sdpa_weights_transposed)
    assert checks.TRANSPOSED_HINT in text
    ragged = next(c for c in result.cases if c.name.startswith("T_q=4"))
    assert "shape (2, 7, 4), expected (2, 4, 7) -- the last two dimensions look swapped" in ragged.message
    assert ragged.hint == checks.TRANSPOSED_HINT


def test_sdpa_unstable_softmax_fails_only_on_large_inputs():
    result, text = failure(SDPA, sdpa_naive_exp)
    assert failed_cases(result) == ["large-magnitude inputs (scores in the hundreds): the softmax must stay finite"]
    assert "weights contains NaN" in text and "torch.softmax" in text


def test_sdpa_exception_in_learner_code_names_the_line():
    result, text = failure(SDPA, sdpa_batched_only)
    assert "your function raised IndexError: Dimension out of range" in text
    assert "in `sdpa_batched_only`, line" in text and "q @ k.transpose(2, 3)" in text
    assert "test_exercises_attention.py" in text
    assert result.n_passed == 1  # only the batched 4-D case works


# ---------------------------------------------------------------------------------------------
# attention.attention_mask
# ---------------------------------------------------------------------------------------------
MASK = "attention.attention_mask"


def _positions(lengths, max_len):
    pos = torch.arange(max_len)
    return pos[:, None], pos[None, :], lengths[:, None, None]  # i (T, 1), j (1, T), L (B, 1, 1)


def mask_triu(lengths, max_len, causal=False):
    i, j, L = _positions(lengths, max_len)
    mask = (j < L) & ((j >= i) if causal else True)
    return mask.expand(len(lengths), max_len, max_len)


def mask_excludes_itself(lengths, max_len, causal=False):
    i, j, L = _positions(lengths, max_len)
    mask = (j < L) & ((j < i) if causal else True)
    return mask.expand(len(lengths), max_len, max_len)


def mask_off_by_one(lengths, max_len, causal=False):
    i, j, L = _positions(lengths, max_len)
    mask = (j <= L) & ((j <= i) if causal else True)
    return mask.expand(len(lengths), max_len, max_len)


def mask_padded_rows_too(lengths, max_len, causal=False):
    i, j, L = _positions(lengths, max_len)
    mask = (j < L) & (i < L) & ((j <= i) if causal else True)
    return mask


def mask_inverted(lengths, max_len, causal=False):
    i, j, L = _positions(lengths, max_len)
    mask = (j < L) & ((j <= i) if causal else True)
    return ~mask.expand(len(lengths), max_len, max_len)


def mask_without_batch(lengths, max_len, causal=False):
    full = torch.ones(max_len, max_len, dtype=torch.bool)
    return full.tril() if causal else full


def mask_float(lengths, max_len, causal=False):
    i, j, L = _positions(lengths, max_len)
    mask = (j < L) & ((j <= i) if causal else True)
    return mask.expand(len(lengths), max_len, max_len).float()


def test_mask_triu_fails_saying_the_future_leaks():
    result, text = failure(MASK, mask_triu)
    assert "Position i can see the future" in text
    behaviour = next(c for c in result.cases if "causal: future" in c.name)
    assert not behaviour.passed and "can see the future" in behaviour.message
    assert "causal, no padding: lengths [5, 5], max_len 5 -> lower-triangular (tril)" in failed_cases(result)


def test_mask_excluding_itself_fails_with_nan_explained():
    result, text = failure(MASK, mask_excludes_itself)
    assert "j <= i, not j < i" in text
    behaviour = next(c for c in result.cases if "causal: future" in c.name)
    assert "NaN" in behaviour.message and behaviour.hint == checks.SELF_HINT


def test_mask_off_by_one_fails():
    result, text = failure(MASK, mask_off_by_one)
    assert "Off by one" in text
    assert "no padding, not causal: lengths [4, 4], max_len 4 -> all True" not in failed_cases(result)
    behaviour = next(c for c in result.cases if c.name.startswith("in F.scaled_dot_product_attention: padded"))
    assert "padding leaks" in behaviour.message


def test_mask_on_padded_query_rows_fails_with_nan_explained():
    result, text = failure(MASK, mask_padded_rows_too)
    assert checks.PADDED_ROWS_HINT in text
    behaviour = next(c for c in result.cases if c.name.startswith("in F.scaled_dot_product_attention: padded"))
    assert "NaN" in behaviour.message and behaviour.hint == checks.PADDED_ROWS_HINT


def test_mask_inverted_fails():
    result, text = failure(MASK, mask_inverted)
    assert result.n_passed == 1  # only the shape/dtype case
    assert "polarity is inverted" in text


def test_mask_without_batch_dimension_fails():
    result, text = failure(MASK, mask_without_batch)
    assert "mask: shape (4, 4), expected (2, 4, 4) -- the leading dimension (2) is missing" in text


def test_mask_of_floats_fails_on_dtype():
    result, text = failure(MASK, mask_float)
    assert "mask: dtype torch.float32, expected torch.bool" in text and ".bool()" in text
    assert result.n_passed == 0


# ---------------------------------------------------------------------------------------------
# attention.mask_tokens
# ---------------------------------------------------------------------------------------------
TOKENS = "attention.mask_tokens"


def _choose(ids, special_ids, generator, p):
    special = torch.zeros_like(ids, dtype=torch.bool)
    for token in special_ids:
        special |= ids == token
    return (torch.rand(ids.shape, generator=generator) < p) & ~special


def _bert(ids, chosen, vocab_size, mask_id, generator):
    u = torch.rand(ids.shape, generator=generator)
    random_words = torch.randint(vocab_size, ids.shape, generator=generator)
    inputs = torch.where(chosen & (u < 0.8), torch.full_like(ids, mask_id), ids)
    return torch.where(chosen & (u >= 0.8) & (u < 0.9), random_words, inputs)


def tokens_all_masked(ids, vocab_size, mask_id, special_ids, generator=None, p=0.15):
    chosen = _choose(ids, special_ids, generator, p)
    return torch.where(chosen, torch.full_like(ids, mask_id), ids), torch.where(chosen, ids, -100)


def tokens_labels_everywhere(ids, vocab_size, mask_id, special_ids, generator=None, p=0.15):
    chosen = _choose(ids, special_ids, generator, p)
    return _bert(ids, chosen, vocab_size, mask_id, generator), ids.clone()


def tokens_special_chosen(ids, vocab_size, mask_id, special_ids, generator=None, p=0.15):
    chosen = torch.rand(ids.shape, generator=generator) < p
    return _bert(ids, chosen, vocab_size, mask_id, generator), torch.where(chosen, ids, -100)


def tokens_mutates_ids(ids, vocab_size, mask_id, special_ids, generator=None, p=0.15):
    chosen = _choose(ids, special_ids, generator, p)
    labels = torch.where(chosen, ids, -100)
    ids[:] = _bert(ids, chosen, vocab_size, mask_id, generator)
    return ids, labels


def tokens_ignores_generator(ids, vocab_size, mask_id, special_ids, generator=None, p=0.15):
    chosen = _choose(ids, special_ids, None, p)
    return _bert(ids, chosen, vocab_size, mask_id, None), torch.where(chosen, ids, -100)


def tokens_hard_coded_p(ids, vocab_size, mask_id, special_ids, generator=None, p=0.15):
    chosen = _choose(ids, special_ids, generator, 0.15)
    return _bert(ids, chosen, vocab_size, mask_id, generator), torch.where(chosen, ids, -100)


def tokens_constant_replacement(ids, vocab_size, mask_id, special_ids, generator=None, p=0.15):
    chosen = _choose(ids, special_ids, generator, p)
    u = torch.rand(ids.shape, generator=generator)
    inputs = torch.where(chosen & (u < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(chosen & (u >= 0.8) & (u < 0.9), torch.full_like(ids, 7), inputs)
    return inputs, torch.where(chosen, ids, -100)


def tokens_labels_from_inputs(ids, vocab_size, mask_id, special_ids, generator=None, p=0.15):
    chosen = _choose(ids, special_ids, generator, p)
    inputs = _bert(ids, chosen, vocab_size, mask_id, generator)
    return inputs, torch.where(chosen, inputs, -100)


def test_mask_tokens_alternative_random_draws_pass():
    def separate_draws(ids, vocab_size, mask_id, special_ids, generator=None, p=0.15):
        special = torch.isin(ids, torch.tensor(sorted(special_ids)))
        chosen = (torch.rand(ids.shape, generator=generator) < p) & ~special
        to_mask = chosen & (torch.rand(ids.shape, generator=generator) < 0.8)
        to_random = chosen & ~to_mask & (torch.rand(ids.shape, generator=generator) < 0.5)
        inputs = ids.clone()
        inputs[to_mask] = mask_id
        inputs[to_random] = torch.randint(len(special_ids), vocab_size, (int(to_random.sum()),), generator=generator)
        labels = ids.clone()
        labels[~chosen] = -100
        return inputs, labels

    assert run_check(TOKENS, separate_draws).passed


def test_mask_tokens_all_chosen_to_mask_fails_on_the_split():
    result, text = failure(TOKENS, tokens_all_masked)
    assert "100.0 % [MASK], 0.0 % random word, 0.0 % unchanged; expected 80 / 10 / 10 %" in text
    assert "no chosen token was replaced by a random word" in "\n".join(result.messages)


def test_mask_tokens_labels_everywhere_fails():
    result, text = failure(TOKENS, tokens_labels_everywhere)
    assert "labels has no -100 at all" in text and "torch.where(chosen, ids, -100)" in text


def test_mask_tokens_choosing_special_tokens_fails():
    result, text = failure(TOKENS, tokens_special_chosen)
    assert "special positions were chosen" in text and "[CLS]" in text and "~special" in text


def test_mask_tokens_mutating_ids_fails():
    result, text = failure(TOKENS, tokens_mutates_ids)
    assert failed_cases(result) == ["`ids` is not modified"]
    assert "changed `ids` in place" in text and "ids.clone()" in text


def test_mask_tokens_ignoring_the_generator_fails():
    result, text = failure(TOKENS, tokens_ignores_generator)
    assert failed_cases(result) == ["deterministic: the same seed gives the same output, another seed another output"]
    assert "seeded identically" in text and "generator=generator" in text


def test_mask_tokens_hard_coded_p_fails():
    result, text = failure(TOKENS, tokens_hard_coded_p)
    assert len(failed_cases(result)) == 1 and "not a hard-coded 0.15" in text
    assert "expected 0.300 ±" in text


def test_mask_tokens_constant_replacement_fails():
    result, text = failure(TOKENS, tokens_constant_replacement)
    assert "take only 1 different value (7)" in text


def test_mask_tokens_labels_from_masked_inputs_fail():
    result, text = failure(TOKENS, tokens_labels_from_inputs)
    assert "but the original id there is" in text


def test_mask_tokens_is_called_with_keywords_and_a_large_batch():
    seen = {}

    def spy(ids, **kwargs):
        seen.update(kwargs, shape=tuple(ids.shape))
        return _bert(ids, _choose(ids, kwargs["special_ids"], kwargs["generator"], kwargs["p"]),
                     kwargs["vocab_size"], kwargs["mask_id"], kwargs["generator"]), ids

    run_check(TOKENS, spy)
    assert seen["shape"] == (256, 128) and seen["vocab_size"] == 1000
    assert {"mask_id", "special_ids", "p"} <= set(seen)
