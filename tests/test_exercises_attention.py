"""Chapter 1's exercise checks: pass on the book's reference answers, fail on the stubs and on
plausible wrong answers, with a message that says what is wrong.

Each wrong answer is one row of ``MISTAKES``: the exercise, the answer, the pieces of text the
learner must read, and what else must hold of the result (which cases failed, a case's own message
or hint, how many passed) -- checked by one parametrised test at the end.
"""
import math

import pytest
import torch

from course_utils.authoring import all_exercises
from course_utils.exercises import run_check
from course_utils.exercises import attention as checks
from exercise_support import failed_cases
from exercise_conditions import (
    also, assert_mistake, case, counts, every_failure_hints, failed, in_messages, not_failed, only,
)


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

    # only the cases about modifying the inputs fail: the values compared elsewhere are right
    assert failed_cases(run_check(SDPA, scales_q_in_place)) == [
        NOT_MODIFIED, GRADIENTS]


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


def test_mask_tokens_is_called_with_keywords_and_a_large_batch():
    seen = {}

    def spy(ids, **kwargs):
        seen.update(kwargs, shape=tuple(ids.shape))
        return _bert(ids, _choose(ids, kwargs["special_ids"], kwargs["generator"], kwargs["p"]),
                     kwargs["vocab_size"], kwargs["mask_id"], kwargs["generator"]), ids

    run_check(TOKENS, spy)
    assert seen["shape"] == (256, 128) and seen["vocab_size"] == 1000
    assert {"mask_id", "special_ids", "p"} <= set(seen)



# ---------------------------------------------------------------------------------------------
# The wrong answers: (exercise, answer, texts the learner reads, what else holds)
# ---------------------------------------------------------------------------------------------
def sdpa_scales_q_in_place(q, k, v, mask=None):
    q /= math.sqrt(q.shape[-1])  # right values, but the caller's q is changed
    scores = q @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(-1)
    return weights @ v, weights


def sdpa_detached_weights(q, k, v, mask=None):
    out, weights = _reference_sdpa(q, k, v, mask)
    weights = weights.detach()
    return weights @ v, weights


def sdpa_float32_inside(q, k, v, mask=None):
    out, weights = _reference_sdpa(q.float(), k.float(), v.float(), mask)
    return out, weights


def mask_unsqueezes_lengths(lengths, max_len, causal=False):
    lengths.unsqueeze_(-1)  # (B, 1): broadcasts, but the caller's tensor changed shape
    j, i = torch.arange(max_len), torch.arange(max_len)[:, None]
    mask = (j < lengths)[:, None, :].expand(-1, max_len, -1)
    return mask & (j <= i) if causal else mask


def mask_longest_sequence(lengths, max_len, causal=False):
    T = int(lengths.max())  # max_len ignored: wrong when every sequence is padded
    j, i = torch.arange(T), torch.arange(T)[:, None]
    mask = (j < lengths[:, None])[:, None, :].expand(-1, T, -1)
    return mask & (j <= i) if causal else mask


def tokens_at_least_one(ids, vocab_size, mask_id, special_ids, generator=None, p=0.15):
    # "every sequence gets at least one target": not BERT's rule, and wrong for p = 0
    chosen = _choose(ids, special_ids, generator, p)
    special = torch.isin(ids, torch.tensor(list(special_ids)))
    scores = torch.rand(ids.shape, generator=generator).masked_fill(special, 2.0)
    chosen[torch.arange(len(ids)), scores.argmin(1)] = True
    return _bert(ids, chosen, vocab_size, mask_id, generator), torch.where(chosen, ids, -100)


def tokens_vocab_minus_one(ids, vocab_size, mask_id, special_ids, generator=None, p=0.15):
    chosen = _choose(ids, special_ids, generator, p)
    return _bert(ids, chosen, vocab_size - 1, mask_id, generator), torch.where(chosen, ids, -100)


PADDED_IN_SDPA = "in F.scaled_dot_product_attention: padded"
KEY_PADDING = "a key-padding mask of shape (B=2, 1, 1, T_k=6), broadcast over heads and queries"
NOT_MODIFIED = "q, k, v and mask are not modified"
GRADIENTS = "gradients reach q, k and v through a causal mask (equal to the reference's)"
MISTAKES = [
    (SDPA, sdpa_no_scaling, ("weights: values differ", "max |got - expected|", "expected weights[",
                             "got      weights[", "divide Q Kᵀ by √d"), None),
    (SDPA, sdpa_softmax_over_queries, ("softmax(dim=-1)", "one query"),
     failed("every row of the weights sums to 1 (T_q=3, T_k=8, d=16)")),
    (SDPA, sdpa_mask_inverted, (checks.POLARITY_HINT,), also(
        only("random bool mask (B=2, H=3, T_q=5, T_k=6), at least one allowed key per row",
             "causal mask: a (6, 6) lower-triangular mask broadcast over (B=2, H=2)", KEY_PADDING,
             GRADIENTS),
        every_failure_hints(checks.POLARITY_HINT))),
    (SDPA, sdpa_mask_ignored, (checks.IGNORED_HINT,), also(
        only("random bool mask (B=2, H=3, T_q=5, T_k=6), at least one allowed key per row",
             "causal mask: a (6, 6) lower-triangular mask broadcast over (B=2, H=2)", KEY_PADDING,
             GRADIENTS),
        every_failure_hints(checks.IGNORED_HINT))),
    (SDPA, sdpa_output_only, ("expected a tuple of 2 (output, weights), got a tensor of shape (5, 8)",
                              "return weights @ v, weights"),
     also(counts(passed=1), not_failed(NOT_MODIFIED))),  # it modifies nothing
    (SDPA, sdpa_weights_transposed, (checks.TRANSPOSED_HINT,),
     case("T_q=4", "shape (2, 7, 4), expected (2, 4, 7) -- the last two dimensions look swapped",
          hint=checks.TRANSPOSED_HINT)),
    # the naive exp(s) / sum exp(s) overflows, so it fails only on large inputs
    (SDPA, sdpa_naive_exp, ("weights contains NaN", "torch.softmax"),
     only("large-magnitude inputs (scores in the hundreds): the softmax must stay finite")),
    # an exception in the learner's code: the message names their line, in their file
    (SDPA, sdpa_batched_only, ("your function raised IndexError: Dimension out of range",
                               "in `sdpa_batched_only`, line", "q @ k.transpose(2, 3)",
                               "test_exercises_attention.py"), counts(passed=1)),  # only the 4-D case works

    (MASK, mask_triu, ("Position i can see the future",), also(
        case("causal: future", "can see the future"),
        failed("causal, no padding: lengths [5, 5], max_len 5 -> lower-triangular (tril)"))),
    (MASK, mask_excludes_itself, ("j <= i, not j < i",), case("causal: future", "NaN", hint=checks.SELF_HINT)),
    (MASK, mask_off_by_one, ("Off by one",), also(
        not_failed("no padding, not causal: lengths [4, 4], max_len 4 -> all True"),
        case(PADDED_IN_SDPA, "padding leaks"))),
    (MASK, mask_padded_rows_too, (checks.PADDED_ROWS_HINT,), case(PADDED_IN_SDPA, "NaN", hint=checks.PADDED_ROWS_HINT)),
    (MASK, mask_inverted, ("polarity is inverted",), counts(passed=2)),  # shape/dtype, lengths untouched
    (MASK, mask_without_batch, ("mask: shape (4, 4), expected (2, 4, 4) -- the leading dimension (2) is missing",),
     None),
    (MASK, mask_float, ("mask: dtype torch.float32, expected torch.bool", ".bool()"),
     counts(passed=1)),  # only `lengths` untouched

    (TOKENS, tokens_all_masked, ("100.0 % [MASK], 0.0 % random word, 0.0 % unchanged; expected 80 / 10 / 10 %",),
     in_messages("no chosen token was replaced by a random word")),
    (TOKENS, tokens_labels_everywhere, ("labels has no -100 at all", "torch.where(chosen, ids, -100)"), None),
    (TOKENS, tokens_special_chosen, ("special positions were chosen", "[CLS]", "~special"), None),
    (TOKENS, tokens_mutates_ids, ("changed `ids` in place", "ids.clone()"), only("`ids` is not modified")),
    (TOKENS, tokens_ignores_generator, ("seeded identically", "generator=generator"),
     only("deterministic: the same seed gives the same output, another seed another output")),
    (TOKENS, tokens_hard_coded_p, ("not a hard-coded 0.15", "expected 0.300 ±"), counts(failed=3)),  # p = 0.3, and p = 0 and 1
    (TOKENS, tokens_constant_replacement, ("take only 1 different value (7)",), None),
    (TOKENS, tokens_labels_from_inputs, ("but the original id there is",), None),

    (SDPA, sdpa_scales_q_in_place, ("changed `q` in place",),
     only(NOT_MODIFIED, GRADIENTS)),  # in-place on a leaf
    (SDPA, sdpa_detached_weights, ("no .detach()",), only(GRADIENTS)),
    (SDPA, sdpa_float32_inside, ("dtype torch.float32, expected torch.float64",),
     only("float64 inputs give float64 output and weights", GRADIENTS)),
    (MASK, mask_unsqueezes_lengths, ("changed `lengths` in place",), only("`lengths` is not modified")),
    (MASK, mask_longest_sequence, ("expected (2, 5, 5)",),
     only("every sequence padded (max_len beyond the longest): lengths [2, 3], max_len 5, causal")),
    (TOKENS, tokens_at_least_one, ("with p = 0",), only("p = 0: nothing is chosen (labels all -100, inputs == ids)")),
    (TOKENS, tokens_vocab_minus_one, ("[11]", "upper bound is excluded"),
     only("random words reach every ordinary word id up to vocab_size - 1 (vocab_size = 12, p = 0.5)")),
]


@pytest.mark.parametrize("exercise, answer, expected, holds", MISTAKES, ids=[row[1].__name__ for row in MISTAKES])
def test_wrong_answer_fails_with_its_hint(exercise, answer, expected, holds):
    assert_mistake(exercise, answer, expected, holds)


def test_the_packages_references_pass_the_checks():
    """The functions a chapter falls back on when an exercise is skipped are correct answers."""
    from course_utils.models.attention import attention_mask, scaled_dot_product_attention
    from course_utils.models.bert import mask_tokens

    assert run_check(SDPA, scaled_dot_product_attention).passed
    assert run_check(MASK, attention_mask).passed
    assert run_check(TOKENS, mask_tokens).passed
