"""Checks of Chapter 1 (attention): scaled dot-product attention, attention masks, BERT masking.

* ``attention.scaled_dot_product_attention`` -- output compared with the library oracle
  ``F.scaled_dot_product_attention``; weights with softmax(Q Kᵀ / √d) computed here (float64).
* ``attention.attention_mask`` -- compared with the package's mask, then used as it is with
  ``F.scaled_dot_product_attention``: changing padded or future tokens must not change the output
  at real positions, and no row may be NaN.
* ``attention.mask_tokens`` -- statistics on a 256 × 128 batch (about 24 000 non-special tokens).
  A rate r measured on n tokens has standard error sqrt(r (1 - r) / n); every statistic must be
  within 5 standard errors of its target (a correct answer fails with probability < 1e-6). For
  p = 0.15 that is about ± 1.1 points for the chosen fraction, and ± 3.3 / 2.5 / 2.5 points for
  the 80 / 10 / 10 split of the ~3 600 chosen tokens.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..models.attention import attention_mask as reference_attention_mask
from .core import Mistake, call, exercise, expect, expect_close, expect_tensor, expect_tensor_like, expect_tuple, fail

# ---------------------------------------------------------------------------------------------
# attention.scaled_dot_product_attention
# ---------------------------------------------------------------------------------------------
SCALE_HINT = ("The scores are not scaled: divide Q Kᵀ by √d, with d = q.shape[-1], before the softmax "
              "(without it the softmax saturates as d grows).")
AXIS_HINT = ("Normalise over the keys, softmax(dim=-1): each row of the weights belongs to one query "
             "and must sum to 1 (dim=-2 normalises over the queries).")
POLARITY_HINT = ("The mask is inverted: True means 'this query may attend this key'. Fill the scores with "
                 "-inf where the mask is False: scores.masked_fill(~mask, float('-inf')).")
IGNORED_HINT = ("The mask is ignored: before the softmax, set the scores of forbidden keys to -inf, "
                "scores.masked_fill(~mask, float('-inf')), so they get weight 0.")
TRANSPOSED_HINT = "The weights are transposed: return them as (..., T_q, T_k), one row per query."
INPLACE_HINT = ("Do not modify the inputs: use out-of-place operations (q / x, masked_fill, not q /= x or "
                "masked_fill_ on an input).")
GRAD_HINT = ("The gradient must flow through the whole computation: no .detach(), torch.no_grad() or "
             "conversion to numpy / torch.tensor(...) on the way.")
STABLE_HINT = ("Large scores overflow exp(): use torch.softmax (or subtract each row's max before exp), "
               "which is stable.")


def _weights(q, k, mask=None, *, scale=True, dim=-1, invert=False):
    """softmax(Q Kᵀ / √d) in float64 -- or what a known mistake computes instead."""
    scores = q.double() @ k.double().transpose(-2, -1)  # (..., T_q, T_k)
    if scale:
        scores = scores / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(mask if invert else ~mask, float("-inf"))
    return scores.softmax(dim=dim)


def _attention_case(answer, q, k, v, mask=None, *, atol=1e-5, rtol=1e-4):
    """Call the answer on clones of (q, k, v, mask); compare weights, then output."""
    expected_w = _weights(q, k, mask).float()
    expected_out = F.scaled_dot_product_attention(q.clone(), k.clone(), v.clone(),
                                                  attn_mask=None if mask is None else mask.clone())
    known = [(_weights(q, k, mask, scale=False), SCALE_HINT), (_weights(q, k, mask, dim=-2), AXIS_HINT)]
    if mask is not None:
        known += [(_weights(q, k, mask, invert=True), POLARITY_HINT), (_weights(q, k), IGNORED_HINT)]

    kwargs = {} if mask is None else {"mask": mask.clone()}
    got = call(answer, q.clone(), k.clone(), v.clone(), **kwargs)
    out, weights = expect_tuple(got, ("output", "weights"), hint="Return both: `return weights @ v, weights`.")
    expect_tensor(weights, expected_w, name="weights", atol=atol, rtol=rtol,
                  mistakes=[Mistake(w.float(), h) for w, h in known]
                  + [Mistake(expected_w.transpose(-2, -1), TRANSPOSED_HINT)])
    expect_tensor(out, expected_out, name="output", atol=atol, rtol=rtol,
                  mistakes=[Mistake((w @ v.double()).float(), h) for w, h in known])


@exercise(
    "attention.scaled_dot_product_attention",
    hint="weights = softmax(q @ k.transpose(-2, -1) / √d) over the last axis (the keys), with forbidden "
         "keys set to -inf first; output = weights @ v. Return (output, weights).",
)
def scaled_dot_product_attention(answer, case):
    """Attention(Q, K, V) = softmax(Q Kᵀ / √d) V, returning (output, weights), with an optional bool mask."""
    g = torch.Generator().manual_seed(0)

    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=g) * scale

    with case("single head, 2-D inputs q, k, v of shape (T=5, d=8), no batch"):
        _attention_case(answer, randn(5, 8), randn(5, 8), randn(5, 8))

    with case("batched 4-D inputs (B=2, H=3, T=6, d=8)"):
        _attention_case(answer, randn(2, 3, 6, 8), randn(2, 3, 6, 8), randn(2, 3, 6, 8))

    with case("T_q=4 ≠ T_k=7 and d_v=5 ≠ d=8 (batch of 2)"):
        _attention_case(answer, randn(2, 4, 8), randn(2, 7, 8), randn(2, 7, 5))

    with case("random bool mask (B=2, H=3, T_q=5, T_k=6), at least one allowed key per row"):
        mask = torch.rand(2, 3, 5, 6, generator=g) < 0.5  # (B, H, T_q, T_k)
        mask.scatter_(-1, torch.randint(6, (2, 3, 5, 1), generator=g), True)  # every row allows a key
        _attention_case(answer, randn(2, 3, 5, 8), randn(2, 3, 6, 8), randn(2, 3, 6, 8), mask)

    with case("causal mask: a (6, 6) lower-triangular mask broadcast over (B=2, H=2)"):
        causal = torch.ones(6, 6, dtype=torch.bool).tril()
        _attention_case(answer, randn(2, 2, 6, 8), randn(2, 2, 6, 8), randn(2, 2, 6, 8), causal)

    with case("every row of the weights sums to 1 (T_q=3, T_k=8, d=16)", hint=AXIS_HINT):
        got = call(answer, randn(3, 16), randn(8, 16), randn(8, 4))
        _, weights = expect_tuple(got, ("output", "weights"), hint="Return both: `return weights @ v, weights`.")
        weights = expect_tensor_like(weights, shape=(3, 8), name="weights")
        expect_tensor(weights.sum(dim=-1), torch.ones(3), name="weights.sum(dim=-1)", atol=1e-5, rtol=0,
                      dtype_check=False)

    with case("a key-padding mask of shape (B=2, 1, 1, T_k=6), broadcast over heads and queries"):
        keys = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])[:, None, None, :]  # (B, 1, 1, T_k)
        _attention_case(answer, randn(2, 3, 4, 8), randn(2, 3, 6, 8), randn(2, 3, 6, 8), keys)

    with case("q, k, v and mask are not modified", hint=INPLACE_HINT):
        q, k, v = randn(2, 5, 8), randn(2, 5, 8), randn(2, 5, 8)
        mask = torch.ones(5, 5, dtype=torch.bool).tril()
        given = [t.clone() for t in (q, k, v, mask)]
        call(answer, *given[:3], mask=given[3])
        for name, before, after in zip(("q", "k", "v", "mask"), (q, k, v, mask), given):
            expect(torch.equal(before, after), f"your function changed `{name}` in place.")

    with case("float64 inputs give float64 output and weights"):
        q, k, v = (torch.randn(*shape, generator=g, dtype=torch.float64) for shape in ((3, 4, 8), (3, 6, 8), (3, 6, 2)))
        out, weights = expect_tuple(call(answer, q.clone(), k.clone(), v.clone()), ("output", "weights"))
        expected_w = _weights(q, k)  # (3, 4, 6) float64
        known = [(_weights(q, k, scale=False), SCALE_HINT), (_weights(q, k, dim=-2), AXIS_HINT)]
        expect_tensor(weights, expected_w, name="weights", atol=1e-10, rtol=1e-8,
                      hint="Keep the inputs' dtype: no .float(), no float32 tensors built inside.",
                      mistakes=known)
        expect_tensor(out, expected_w @ v, name="output", atol=1e-10, rtol=1e-8)

    with case("gradients reach q, k and v through a causal mask (equal to the reference's)"):
        q, k, v = (torch.randn(2, 4, 8, generator=g, dtype=torch.float64).requires_grad_() for _ in range(3))
        causal = torch.ones(4, 4, dtype=torch.bool).tril()
        out, _ = expect_tuple(call(answer, q, k, v, mask=causal.clone()), ("output", "weights"))
        expected_out = _weights(q, k, causal) @ v  # (2, 4, 8)
        known = [(_weights(q, k, causal, scale=False) @ v, SCALE_HINT),
                 (_weights(q, k, causal, dim=-2) @ v, AXIS_HINT),
                 (_weights(q, k, causal, invert=True) @ v, POLARITY_HINT), (_weights(q, k) @ v, IGNORED_HINT)]
        expect_tensor(out, expected_out, name="output", atol=1e-8, rtol=1e-6, mistakes=known)
        expect(out.requires_grad, "the output does not depend on q, k, v through autograd.", hint=GRAD_HINT)
        upstream = torch.randn(2, 4, 8, generator=g, dtype=torch.float64)
        got = torch.autograd.grad(out, (q, k, v), upstream, allow_unused=True)
        expected = torch.autograd.grad(expected_out, (q, k, v), upstream)
        for name, g_got, g_exp in zip(("q", "k", "v"), got, expected):
            expect(g_got is not None, f"no gradient reaches `{name}`.", hint=GRAD_HINT)
            expect_tensor(g_got, g_exp, name=f"d(output)/d{name} (times a random upstream gradient)",
                          atol=1e-6, rtol=1e-5, hint=GRAD_HINT)

    with case("large-magnitude inputs (scores in the hundreds): the softmax must stay finite", hint=STABLE_HINT):
        # float32 rounding of scores this large moves the weights by ~1e-5; the tolerance allows it
        _attention_case(answer, randn(2, 5, 16, scale=20.0), randn(2, 5, 16, scale=20.0), randn(2, 5, 16),
                        atol=1e-4, rtol=1e-3)


# ---------------------------------------------------------------------------------------------
# attention.attention_mask
# ---------------------------------------------------------------------------------------------
FUTURE_HINT = ("Position i can see the future: with causal=True, query i may attend only keys j <= i "
               "(lower triangle: torch.tril, or `j <= i` by broadcasting) -- not triu.")
SELF_HINT = ("Each position must attend itself too: keep j <= i, not j < i. With j < i the first row allows "
             "no key at all and softmax over it gives NaN.")
OFF_BY_ONE_HINT = ("Off by one: sequence b has real tokens at positions 0 .. lengths[b]-1, so key j is real when "
                   "j < lengths[b]; `j <= lengths[b]` lets the first padding token in.")
PADDED_ROWS_HINT = ("Do not mask the rows of padded queries: a row with no allowed key makes softmax return NaN "
                    "(0/0). Padded queries keep the same key rule -- they see the real tokens -- and their "
                    "outputs are ignored later.")
MASK_POLARITY_HINT = ("The polarity is inverted: True must mean 'query i may attend key j' -- the convention of "
                      "F.scaled_dot_product_attention for a bool mask.")
PADDING_HINT = "Keys at padded positions (j >= lengths[b]) must be False for every query of sequence b."


def _mask_parts(lengths, T):
    pos = torch.arange(T)
    i, j = pos[:, None], pos[None, :]  # (T, 1) queries, (1, T) keys
    L = lengths[:, None, None]  # (B, 1, 1)
    return i, j, L


def _expected_mask(lengths, T, causal):
    return reference_attention_mask(lengths, T, causal=causal)  # (B, T, T)


def _mask_mistakes(lengths, T, causal):
    """What the plausible wrong masks look like for these lengths -- and the hint each deserves."""
    i, j, L = _mask_parts(lengths, T)
    shape = (len(lengths), T, T)
    time = (j <= i) if causal else torch.ones(T, T, dtype=torch.bool)
    known = [
        (~_expected_mask(lengths, T, causal), MASK_POLARITY_HINT),
        ((j <= L) & time, OFF_BY_ONE_HINT),
        ((j < L) & (i < L) & time, PADDED_ROWS_HINT),
    ]
    if causal:
        known = [((j < L) & (j >= i), FUTURE_HINT), ((j < L) & (j > i), FUTURE_HINT),
                 ((j < L) & (j < i), SELF_HINT)] + known
    return [Mistake(m.expand(shape).clone(), h) for m, h in known]


def _mask_case(answer, lengths, T, causal, pass_causal=True):
    kwargs = {"causal": causal} if pass_causal else {}
    got = call(answer, lengths.clone(), T, **kwargs)
    expect_tensor(got, _expected_mask(lengths, T, causal), name="mask", mistakes=_mask_mistakes(lengths, T, causal))


def _mask_behaviour(answer, lengths, T, causal, seed):
    """Use the learner's mask, unconverted, in F.scaled_dot_product_attention and probe what leaks."""
    B, d = len(lengths), 8
    g = torch.Generator().manual_seed(seed)
    mask = call(answer, lengths.clone(), T, causal=causal)
    mask = expect_tensor_like(mask, shape=(B, T, T), dtype=torch.bool, name="mask")
    q, k, v = (torch.randn(B, T, d, generator=g) for _ in range(3))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, T, d)

    pos = torch.arange(T)
    real = pos[None, :] < lengths[:, None]  # (B, T)

    def perturbed(where):  # (B, T) bool: new random keys and values there
        noise_k, noise_v = torch.randn(B, T, d, generator=g), torch.randn(B, T, d, generator=g)
        w = where[..., None]
        return (F.scaled_dot_product_attention(q, torch.where(w, noise_k, k), torch.where(w, noise_v, v),
                                               attn_mask=mask))

    if causal:
        for c in range(T - 1):
            after = (pos > c)[None, :].expand(B, T)
            changed = ((perturbed(after) - out).abs().amax(-1) > 1e-6) & real & (pos <= c)[None, :]
            if changed.any():
                b, i = changed.nonzero()[0].tolist()
                fail(f"position {i} can see the future: changing the tokens after position {c} changed the output "
                     f"at position {i} (sequence {b}).", hint=FUTURE_HINT)
    changed = ((perturbed(~real) - out).abs().amax(-1) > 1e-6) & real  # (B, T)
    if changed.any():
        b, i = changed.nonzero()[0].tolist()
        fail(f"padding leaks: changing the padded tokens of sequence {b} (positions >= {int(lengths[b])}) changed "
             f"the output at its real position {i}.", hint=PADDING_HINT)

    empty = ~mask.any(dim=-1)  # (B, T): rows that allow no key
    nan = torch.isnan(out).any(dim=-1)  # (B, T)
    if empty.any() or nan.any():
        b, i = (empty if empty.any() else nan).nonzero()[0].tolist()
        if empty.any() and not (empty & real).any():
            hint = PADDED_ROWS_HINT
        elif causal and empty[:, 0].any():
            hint = SELF_HINT
        else:
            hint = "Every query row needs at least one True (an allowed key); an empty row gives 0/0 = NaN."
        fail(f"row {i} of sequence {b} of your mask allows no key at all ({int(empty.sum())} empty rows): softmax "
             "over an empty row is 0/0 = NaN (F.scaled_dot_product_attention returns NaN, or zeros on some "
             "backends, for it).", hint=hint)


@exercise(
    "attention.attention_mask",
    hint="Key j is allowed when j < lengths[b] (and, with causal=True, when j <= i): compare "
         "torch.arange(max_len) with lengths[:, None] and broadcast to (B, T, T).",
)
def attention_mask(answer, case):
    """A bool (B, T, T) mask for a padded batch (True = may attend), optionally causal."""
    L = lambda *xs: torch.tensor(xs, dtype=torch.long)  # noqa: E731

    with case("no padding, not causal: lengths [4, 4], max_len 4 -> all True"):
        _mask_case(answer, L(4, 4), 4, causal=False, pass_causal=False)
    with case("padding, not causal: lengths [3, 5], max_len 5"):
        _mask_case(answer, L(3, 5), 5, causal=False, pass_causal=False)
    with case("causal, no padding: lengths [5, 5], max_len 5 -> lower-triangular (tril)"):
        _mask_case(answer, L(5, 5), 5, causal=True)
    with case("causal and padding: lengths [2, 5, 4], max_len 5"):
        _mask_case(answer, L(2, 5, 4), 5, causal=True)
    with case("a length-1 sequence: lengths [1, 3], max_len 3"):
        _mask_case(answer, L(1, 3), 3, causal=False)
    with case("a length-1 sequence, causal: lengths [1, 4], max_len 4"):
        _mask_case(answer, L(1, 4), 4, causal=True)
    with case("every sequence padded (max_len beyond the longest): lengths [2, 3], max_len 5, causal"):
        _mask_case(answer, L(2, 3), 5, causal=True)
    with case("`lengths` is not modified"):
        given = L(3, 1, 4)
        call(answer, given, 4, causal=True)
        expect(torch.equal(given, L(3, 1, 4)), f"your function changed `lengths` in place: {given.tolist()}.",
               hint="Compare with lengths (or a copy); do not write into it.")
    with case("returns a bool tensor of shape (B, T, T) = (3, 6, 6)"):
        got = call(answer, L(6, 2, 4), 6, causal=True)
        expect_tensor_like(got, shape=(3, 6, 6), dtype=torch.bool, name="mask",
                           mistakes=_mask_mistakes(L(6, 2, 4), 6, True))
    with case("in F.scaled_dot_product_attention: padded tokens do not change real positions, no NaN "
              "(lengths [6, 4, 1], max_len 6)"):
        _mask_behaviour(answer, L(6, 4, 1), 6, causal=False, seed=1)
    with case("in F.scaled_dot_product_attention, causal: future and padded tokens do not change real "
              "positions, no NaN (lengths [6, 4, 1], max_len 6)"):
        _mask_behaviour(answer, L(6, 4, 1), 6, causal=True, seed=2)


# ---------------------------------------------------------------------------------------------
# attention.mask_tokens
# ---------------------------------------------------------------------------------------------
VOCAB, PAD, UNK, CLS, SEP, MASK = 1000, 0, 1, 2, 3, 4
SPECIAL = (PAD, UNK, CLS, SEP, MASK)
SPECIAL_NAMES = {PAD: "[PAD]", UNK: "[UNK]", CLS: "[CLS]", SEP: "[SEP]", MASK: "[MASK]"}
GENERATOR_HINT = ("Draw all randomness from `generator`: torch.rand(shape, generator=generator), "
                  "torch.randint(vocab_size, shape, generator=generator).")
SPLIT_HINT = ("Of the chosen tokens, 80 % become [MASK], 10 % a random word and 10 % stay unchanged: draw one "
              "uniform u per token; u < 0.8 -> mask_id, 0.8 <= u < 0.9 -> random word, else keep.")


def _batch(seed, B=256, T=128):
    """(B, T) ids: [CLS] first, words 5..VOCAB-1, [SEP] last, then [PAD]s (lengths T/2 .. T)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(len(SPECIAL), VOCAB, (B, T), generator=g)
    lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
    pos = torch.arange(T)[None, :]
    ids[:, 0] = CLS
    ids[pos == (lengths - 1)[:, None]] = SEP
    ids[pos >= lengths[:, None]] = PAD
    return ids


def _mask_tokens(answer, ids, seed=0, p=0.15, generator=True):
    """Call the learner on a clone of ``ids``; check the (inputs, labels) structure; return them."""
    kwargs = dict(vocab_size=VOCAB, mask_id=MASK, special_ids=list(SPECIAL), p=p)
    if generator:
        kwargs["generator"] = torch.Generator().manual_seed(seed)
    got = call(answer, ids.clone(), **kwargs)
    inputs, labels = expect_tuple(got, ("inputs", "labels"))
    for name, t in (("inputs", inputs), ("labels", labels)):
        expect_tensor_like(t, shape=ids.shape, dtype=torch.long, name=name)
    return inputs, labels


def _stat_tol(rate, n):
    """5 standard errors of a rate measured on n draws."""
    return 5 * math.sqrt(rate * (1 - rate) / max(int(n), 1))


@exercise(
    "attention.mask_tokens",
    hint="chosen = (torch.rand(ids.shape, generator=generator) < p) & ~special; labels = "
         "torch.where(chosen, ids, -100); then 80 % [MASK] / 10 % random word / 10 % unchanged among the chosen.",
)
def mask_tokens(answer, case):
    """BERT's masking rule: choose p of the non-special tokens; 80 % [MASK], 10 % random, 10 % kept."""
    ids = _batch(0)  # the check's own copy: the learner always gets a clone
    special = torch.isin(ids, torch.tensor(SPECIAL))
    n_words = int((~special).sum())
    B, T = ids.shape

    with case(f"returns (inputs, labels): two LongTensors of shape ({B}, {T})"):
        _mask_tokens(answer, ids)

    with case("`ids` is not modified"):
        given = ids.clone()
        call(answer, given, vocab_size=VOCAB, mask_id=MASK, special_ids=list(SPECIAL),
             generator=torch.Generator().manual_seed(0), p=0.15)
        changed = given != ids
        expect(not changed.any(), f"your function changed `ids` in place ({int(changed.sum())} positions).",
               hint="Work on a copy: `inputs = ids.clone()` (or build inputs with torch.where), "
                    "and take the labels from the untouched ids.")

    with case("labels: the original id at chosen positions, -100 everywhere else"):
        inputs, labels = _mask_tokens(answer, ids)
        chosen = labels != -100
        expect((~chosen).any(), "labels has no -100 at all: every position has a label.",
               hint="labels must be -100 wherever the token was not chosen (the loss ignores -100): "
                    "labels = torch.where(chosen, ids, -100).")
        wrong = chosen & (labels != ids)
        if wrong.any():
            b, t = wrong.nonzero()[0].tolist()
            fail(f"labels[{b}, {t}] is {int(labels[b, t])}, but the original id there is {int(ids[b, t])} "
                 f"({int(wrong.sum())} chosen positions have a wrong label).",
                 hint="At chosen positions the label is the original id (from `ids`, before masking).")

    with case("special tokens ([PAD], [CLS], [SEP], ... = special_ids) are never chosen nor changed"):
        inputs, labels = _mask_tokens(answer, ids)
        bad = special & ((labels != -100) | (inputs != ids))
        if bad.any():
            b, t = bad.nonzero()[0].tolist()
            token = int(ids[b, t])
            fail(f"{int(bad.sum())} special positions were chosen, e.g. [{b}, {t}] holds "
                 f"{SPECIAL_NAMES.get(token, token)} (id {token}) and got label {int(labels[b, t])}, "
                 f"input {int(inputs[b, t])}.",
                 hint="Exclude the special tokens before choosing: special = ids == s for every s in "
                      "special_ids (or torch.isin); chosen = (rand < p) & ~special.")

    for p in (0.15, 0.3):
        tol = _stat_tol(p, n_words)
        with case(f"p = {p}: that fraction of the non-special tokens is chosen (± {tol:.3f}, 5 standard errors)"):
            inputs, labels = _mask_tokens(answer, ids, seed=1, p=p)
            fraction = (labels != -100)[~special].double().mean().item()
            expect_close(fraction, p, tol, name="fraction of the non-special tokens chosen (labels != -100)",
                         fmt=".3f", hint=None if p == 0.15 else "Use the argument p, not a hard-coded 0.15.")

    with case("p = 0: nothing is chosen (labels all -100, inputs == ids)"):
        inputs, labels = _mask_tokens(answer, ids, seed=5, p=0.0)
        expect(bool((labels == -100).all()) and torch.equal(inputs, ids),
               f"with p = 0, {int((labels != -100).sum())} tokens were chosen and "
               f"{int((inputs != ids).sum())} changed.",
               hint="A token is chosen when its uniform draw is below p: rand < p.")

    with case("p = 1: every non-special token is chosen, no special one"):
        inputs, labels = _mask_tokens(answer, ids, seed=6, p=1.0)
        chosen = labels != -100
        expect(torch.equal(chosen, ~special),
               f"with p = 1, {int((~chosen & ~special).sum())} non-special tokens were not chosen and "
               f"{int((chosen & special).sum())} special ones were.",
               hint="chosen = (rand < p) & ~special: with p = 1 that is every non-special token.")

    with case("among the chosen tokens: ≈ 80 % [MASK], ≈ 10 % random word, ≈ 10 % unchanged (± 5 standard errors)",
              hint=SPLIT_HINT):
        inputs, labels = _mask_tokens(answer, ids, seed=2)
        chosen = labels != -100
        n = int(chosen.sum())
        expect(n > 0, "no token was chosen (every label is -100).")
        got_in, orig = inputs[chosen], ids[chosen]
        is_mask = got_in == MASK
        kept = ~is_mask & (got_in == orig)
        # a random word equals the original (or mask_id) with probability ~1/VOCAB
        targets = {"[MASK]": (is_mask, 0.8 + 0.1 / VOCAB), "random word": (~is_mask & ~kept, 0.1 - 0.2 / VOCAB),
                   "unchanged": (kept, 0.1 + 0.1 / VOCAB)}
        rates = {k: sel.double().mean().item() for k, (sel, _) in targets.items()}
        off = [k for k, (_, r) in targets.items() if abs(rates[k] - r) > _stat_tol(r, n)]
        if off:
            shown = ", ".join(f"{100 * rates[k]:.1f} % {k}" for k in targets)
            tols = " / ".join(f"{100 * _stat_tol(r, n):.1f}" for _, r in targets.values())
            fail(f"of the {n} chosen tokens: {shown}; expected 80 / 10 / 10 % (± {tols} points).")

    with case("random replacement words vary and lie in the vocabulary [0, vocab_size)"):
        inputs, labels = _mask_tokens(answer, ids, seed=3)
        replaced = (labels != -100) & (inputs != MASK) & (inputs != ids)
        words = inputs[replaced]
        expect(words.numel() > 0, "no chosen token was replaced by a random word.", hint=SPLIT_HINT)
        outside = (words < 0) | (words >= VOCAB)
        expect(not outside.any(), f"{int(outside.sum())} replacement words are outside the vocabulary "
                                  f"(e.g. {int(words[outside][0]) if outside.any() else ''}).",
               hint="Random words: torch.randint(vocab_size, ids.shape, generator=generator).")
        distinct = words.unique()
        expect(distinct.numel() >= min(50, words.numel() // 2),
               f"the {words.numel()} replacement words take only {distinct.numel()} different "
               f"value{'s' if distinct.numel() > 1 else ''} "
               f"({', '.join(str(int(w)) for w in distinct[:5])}); they should be random words.",
               hint="Draw the replacements at random: torch.randint(vocab_size, ids.shape, generator=generator).")

    with case("random words reach every ordinary word id up to vocab_size - 1 (vocab_size = 12, p = 0.5)"):
        small = torch.randint(len(SPECIAL), 12, (256, 64), generator=torch.Generator().manual_seed(9))
        got = call(answer, small.clone(), vocab_size=12, mask_id=MASK, special_ids=list(SPECIAL),
                   generator=torch.Generator().manual_seed(10), p=0.5)
        inputs, labels = expect_tuple(got, ("inputs", "labels"))
        inputs = expect_tensor_like(inputs, shape=small.shape, dtype=torch.long, name="inputs")
        words = set(inputs[(inputs != small) & (inputs != MASK)].tolist())
        missing = sorted(set(range(len(SPECIAL), 12)) - words)  # special ids may be left out
        expect(not missing, f"no chosen token was ever replaced by the id{'s' * (len(missing) > 1)} "
                            f"{missing} (of {len(words)} different replacement words).",
               hint="Draw random words from the whole range: torch.randint(vocab_size, ...) gives 0 .. "
                    "vocab_size - 1 (the upper bound is excluded).")

    with case("tokens that were not chosen stay unchanged in inputs"):
        inputs, labels = _mask_tokens(answer, ids, seed=4)
        leaked = (inputs != ids) & (labels == -100)
        if leaked.any():
            b, t = leaked.nonzero()[0].tolist()
            fail(f"inputs changed at {int(leaked.sum())} positions that were not chosen (label -100), e.g. "
                 f"[{b}, {t}]: {int(ids[b, t])} -> {int(inputs[b, t])}.",
                 hint="Only chosen tokens may change, and every chosen token has its original id as label.")

    with case("deterministic: the same seed gives the same output, another seed another output",
              hint=GENERATOR_HINT):
        first = _mask_tokens(answer, ids, seed=7)
        again = _mask_tokens(answer, ids, seed=7)
        other = _mask_tokens(answer, ids, seed=8)
        same = lambda a, b: torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])  # noqa: E731
        expect(same(first, again), "two calls with generators seeded identically (manual_seed(7)) gave "
                                   "different outputs: some randomness does not come from `generator`.")
        expect(not same(first, other), "generators seeded 7 and 8 gave identical outputs: your function does "
                                       "not draw from `generator`.")

    with case("works without a generator (generator=None, the default)"):
        _mask_tokens(answer, ids, generator=False)
