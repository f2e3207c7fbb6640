"""Chapter 2's exercise checks (Vision Transformers): patchify, class token + positions,
MAE's per-sample random masking."""
import math
from fractions import Fraction

import torch

from .core import call, exercise, expect, expect_equal, expect_tensor, expect_tensor_like, expect_tuple, fail


# ---------------------------------------------------------------------------------------------
# vit.patchify
# ---------------------------------------------------------------------------------------------
def _patchify(images, p):
    B, C, H, W = images.shape
    x = images.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 1, 3, 5)  # (B, gh, gw, C, p, p)
    return x.reshape(B, (H // p) * (W // p), C * p * p)


def _patchify_mistakes(images, p):
    B, C, H, W = images.shape
    x = images.reshape(B, C, H // p, p, W // p, p)
    column_major = x.permute(0, 4, 2, 1, 3, 5).reshape(B, -1, C * p * p)
    channels_last = x.permute(0, 2, 4, 3, 5, 1).reshape(B, -1, C * p * p)
    pixel_rows_mixed = images.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 1, 5, 3).reshape(B, -1, C * p * p)
    naive = images.reshape(B, -1, C * p * p) if images.numel() % (C * p * p) == 0 else None
    known = [
        (column_major, "Your patches are in column-major order (top to bottom first). Go left to right along "
                       "a row of patches, then the next row: permute to (B, H/p, W/p, C, p, p)."),
        (channels_last, "The channels sit in the wrong axis: each patch must be flattened channel first, as "
                        "(C, p, p) -- the layout of a Conv2d weight -- not as (p, p, C)."),
        (pixel_rows_mixed, "Inside a patch the pixels are flattened column by column: keep (C, row, column) order."),
    ]
    if naive is not None:
        known.append((naive, "A plain reshape does not cut patches: first split H and W into (H/p, p) and "
                             "(W/p, p), then permute the patch-grid axes to the front."))
    return known


@exercise("vit.patchify", hint="images.reshape(B, C, H/p, p, W/p, p), permute to (B, H/p, W/p, C, p, p), "
                               "then reshape to (B, N, C*p*p).")
def patchify(answer, case):
    """Cut (B, C, H, W) images into a row-major sequence of flattened (C, p, p) patches."""
    g = torch.Generator().manual_seed(0)
    for B, C, H, W, p in [(1, 1, 4, 4, 2), (2, 3, 8, 8, 4), (2, 3, 8, 12, 4), (3, 2, 6, 6, 3), (2, 3, 8, 8, 8)]:
        with case(f"B={B}, C={C}, H={H}, W={W}, patch {p} -> shape ({B}, {(H // p) * (W // p)}, {C * p * p})"):
            images = torch.randn(B, C, H, W, generator=g)
            got = call(answer, images.clone(), p)
            expect_tensor(got, _patchify(images, p), name="patches", mistakes=_patchify_mistakes(images, p))
    with case("patch 0 is the top-left p x p square, patch 1 the one to its right"):
        images = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
        got = expect_tensor_like(call(answer, images.clone(), 2), shape=(1, 4, 8), name="patches")
        expect_tensor(got[0, :2], _patchify(images, 2)[0, :2], name="first two patches",
                      mistakes=[(m[0, :2], h) for m, h in _patchify_mistakes(images, 2)])
    with case("float64 images give float64 patches; the images are not modified"):
        images = torch.randn(2, 2, 6, 6, generator=g, dtype=torch.float64)
        given = images.clone()
        got = call(answer, given, 3)
        expect_tensor(got, _patchify(images, 3), name="patches", mistakes=_patchify_mistakes(images, 3),
                      hint="Keep the images' dtype (no .float()).")
        expect(torch.equal(given, images), "your function changed `images` in place.")
    with case("gradients flow back to the images (patchify is part of the model)"):
        images = torch.randn(1, 1, 4, 4, generator=g).double().requires_grad_()
        got = expect_tensor_like(call(answer, images, 2), shape=(1, 4, 4), name="patches")
        expect(got.requires_grad, "the patches do not depend on the images through autograd.",
               hint="Use reshape / permute (or unfold) on the tensor itself: no .detach(), numpy or "
                    "torch.tensor(...).")
        weight = torch.arange(16, dtype=torch.float64).reshape(1, 4, 4)
        (grad,) = torch.autograd.grad((got * weight).sum(), images)
        expect_tensor(grad, torch.autograd.grad((_patchify(images, 2) * weight).sum(), images)[0],
                      name="d(sum(patches * w))/d images")
    with case("equals a Conv2d with kernel = stride = p (its weight flattened) applied as a linear map"):
        images = torch.randn(2, 3, 8, 8, generator=g)
        conv = torch.nn.Conv2d(3, 5, 4, stride=4, bias=False)
        with torch.no_grad():
            conv.weight.copy_(torch.randn(5, 3, 4, 4, generator=g))
            expected = conv(images).flatten(2).transpose(1, 2)  # (B, N, 5)
            got = expect_tensor_like(call(answer, images.clone(), 4), shape=(2, 4, 48), name="patches")
            expect_tensor(got @ conv.weight.flatten(1).T, expected, name="patches @ W^T", atol=1e-4)


# ---------------------------------------------------------------------------------------------
# vit.add_cls_and_positions
# ---------------------------------------------------------------------------------------------
def _add_cls(tokens, cls_token, pos):
    B = tokens.shape[0]
    return torch.cat([cls_token.expand(B, -1, -1), tokens], dim=1) + pos


@exercise("vit.add_cls_and_positions",
          hint="x = torch.cat([cls_token.expand(B, -1, -1), tokens], dim=1), then x + pos_embed: the class "
               "token goes first and gets position 0.")
def add_cls_and_positions(answer, case):
    """Prepend the class token to every sequence, then add the (N+1) position embeddings."""
    g = torch.Generator().manual_seed(1)
    for B, N, D in [(1, 4, 8), (3, 16, 8), (2, 9, 6)]:
        with case(f"B={B}, N={N}, D={D} -> shape ({B}, {N + 1}, {D})"):
            tokens, cls, pos = (torch.randn(B, N, D, generator=g), torch.randn(1, 1, D, generator=g),
                                torch.randn(1, N + 1, D, generator=g))
            got = call(answer, tokens.clone(), cls.clone(), pos.clone())
            expected = _add_cls(tokens, cls, pos)
            mistakes = [
                (torch.cat([cls.expand(B, -1, -1), tokens + pos[:, 1:]], dim=1),
                 "The class token has no position: add pos_embed after concatenating, so position 0 goes "
                 "to the class token."),
                (torch.cat([cls.expand(B, -1, -1), tokens + pos[:, :N]], dim=1),
                 "Positions were added before the class token was concatenated: the patches got positions "
                 "0..N-1 and the class token none. Concatenate first, then add all N+1 positions."),
                (torch.cat([tokens, cls.expand(B, -1, -1)], dim=1) + pos,
                 "The class token goes first (index 0), not last: the head reads z[:, 0]."),
                (torch.cat([cls.expand(B, -1, -1), tokens], dim=1),
                 "You forgot the position embeddings: without them attention cannot tell where a patch is."),
            ]
            expect_tensor(got, expected, name="tokens", mistakes=mistakes)
    with case("every sequence of the batch gets the same class token (a learned parameter, shared)"):
        tokens, cls, pos = torch.zeros(4, 3, 5), torch.randn(1, 1, 5, generator=g), torch.zeros(1, 4, 5)
        got = expect_tensor_like(call(answer, tokens.clone(), cls.clone(), pos.clone()), shape=(4, 4, 5),
                                 name="tokens")
        expect_tensor(got[:, 0], cls[0].expand(4, -1), name="tokens[:, 0]")
    with case("no patches at all (N = 0): just the class token plus position 0"):
        tokens, cls, pos = torch.zeros(2, 0, 4), torch.randn(1, 1, 4, generator=g), torch.randn(1, 1, 4, generator=g)
        got = call(answer, tokens.clone(), cls.clone(), pos.clone())
        expect_tensor(got, _add_cls(tokens, cls, pos), name="tokens")
    with case("float64 inputs give a float64 result"):
        tokens, cls, pos = (torch.randn(*shape, generator=g, dtype=torch.float64)
                            for shape in ((2, 3, 4), (1, 1, 4), (1, 4, 4)))
        got = call(answer, tokens.clone(), cls.clone(), pos.clone())
        expect_tensor(got, _add_cls(tokens, cls, pos), name="tokens", atol=1e-12, rtol=1e-10,
                      hint="Keep the inputs' dtype: build nothing in float32.")
    with case("tokens, cls_token and pos_embed are not modified (no in-place +=)"):
        tokens, cls, pos = (torch.randn(2, 3, 4, generator=g), torch.randn(1, 1, 4, generator=g),
                            torch.randn(1, 4, 4, generator=g))
        given = [t.clone() for t in (tokens, cls, pos)]
        call(answer, *given)
        for name, before, after in zip(("tokens", "cls_token", "pos_embed"), (tokens, cls, pos), given):
            expect(torch.equal(before, after), f"your function changed `{name}` in place.",
                   hint="Return a new tensor: torch.cat(...) + pos_embed, not tokens += ... "
                        "(pos_embed and cls_token are parameters; tokens may be used again).")
    with case("gradients reach the class token and the position embeddings"):
        tokens = torch.randn(2, 4, 6, generator=g)
        cls = torch.randn(1, 1, 6, generator=g).requires_grad_()
        pos = torch.randn(1, 5, 6, generator=g).requires_grad_()
        got = expect_tensor_like(call(answer, tokens, cls, pos), shape=(2, 5, 6), name="tokens")
        expect(got.requires_grad, "the result does not depend on cls_token / pos_embed through autograd.",
               hint="Do not detach or copy with torch.tensor(...): use torch.cat and +.")
        got.sum().backward()
        expect(cls.grad is not None and torch.allclose(cls.grad, torch.full_like(cls, 2.0)),
               "d(sum)/d(cls_token) should be 2 (one class token per sequence, batch of 2).")
        expect(pos.grad is not None and torch.allclose(pos.grad, torch.full_like(pos, 2.0)),
               "d(sum)/d(pos_embed) should be 2 everywhere (every position used once per sequence).")
    with case("gradients reach the patch tokens"):
        tokens = torch.randn(2, 3, 4, generator=g).requires_grad_()
        got = expect_tensor_like(call(answer, tokens, torch.zeros(1, 1, 4), torch.zeros(1, 4, 4)),
                                 shape=(2, 4, 4), name="tokens")
        expect(got.requires_grad, "the result does not depend on `tokens` through autograd.",
               hint="Do not detach the tokens: they carry the patch embedding's gradient.")
        weight = torch.randn(2, 4, 4, generator=g)
        (grad,) = torch.autograd.grad((got * weight).sum(), tokens)
        expect_tensor(grad, weight[:, 1:], name="d(sum(result * w))/d tokens")


# ---------------------------------------------------------------------------------------------
# vit.random_masking
# ---------------------------------------------------------------------------------------------
INVERTED_HINT = "Your mask looks inverted: True means masked (hidden), False visible."
GENERATOR_HINT = "Draw the noise from `generator`: torch.rand(batch_size, n_patches, generator=generator)."


def n_keep_readings(n_patches, mask_ratio):
    """The numbers of kept patches the statement allows: int(N (1 - r)) computed in floating point
    (what Python gives, e.g. 0 for N = 10, r = 0.9, since 1 - 0.9 = 0.0999...) and the exact floor
    of N (1 - r) (1 for that example)."""
    exact = math.floor(Fraction(n_patches) * (1 - Fraction(str(mask_ratio))))
    return sorted({int(n_patches * (1 - mask_ratio)), exact})


def _masking(answer, B, N, ratio, seed=0, generator=True):
    kwargs = {"generator": torch.Generator().manual_seed(seed)} if generator else {}
    got = call(answer, B, N, ratio, **kwargs)
    keep, mask = expect_tuple(got, ("keep", "mask"))
    allowed = n_keep_readings(N, ratio)
    shown = " or ".join(str(n) for n in allowed)
    keep = expect_tensor_like(keep, dtype=torch.long, name="keep")
    expect(keep.dim() == 2 and keep.shape[0] == B and keep.shape[1] in allowed,
           f"keep has shape {tuple(keep.shape)}, expected ({B}, n_keep) with n_keep = {shown} "
           f"(N = {N}, mask_ratio = {ratio}).",
           hint="n_keep = int(n_patches * (1 - mask_ratio)), truncated (not rounded to the nearest): every "
                "sample keeps exactly that many patches.")
    mask = expect_tensor_like(mask, shape=(B, N), dtype=torch.bool, name="mask")
    return keep, mask


@exercise("vit.random_masking",
          hint="noise = torch.rand(B, N, generator=generator); keep = noise.argsort(dim=1)[:, :n_keep]; "
               "mask = ones(B, N, bool) with mask.scatter_(1, keep, False).")
def random_masking(answer, case):
    """MAE masking: for every sample separately, keep exactly int(N (1 - ratio)) random patches."""
    cases = [(4, 16, 0.75, ""), (8, 64, 0.75, ""), (3, 10, 0.5, ""), (2, 16, 0.0, ", nothing masked"),
             (3, 14, 0.75, ": N (1 - r) = 3.5 is not an integer, truncated to 3"),
             (3, 10, 0.9, ": int(10 * (1 - 0.9)) is 0 in floating point, 1 exactly; both accepted"),
             (2, 16, 1.0, ", everything masked")]
    for B, N, ratio, note in cases:
        allowed = n_keep_readings(N, ratio)
        with case(f"B={B}, N={N}, mask_ratio={ratio}{note}: every sample keeps exactly "
                  f"{' or '.join(map(str, allowed))} patches"):
            keep, mask = _masking(answer, B, N, ratio)
            n_keep = keep.shape[1]
            n_masked = mask.sum(1)
            if (n_masked != N - n_keep).any() and (n_masked == n_keep).all():
                fail(f"every sample has {n_keep} masked and {N - n_keep} visible patches: the other way round.",
                     hint=INVERTED_HINT)
            if (n_masked != N - n_keep).any():
                b = int((n_masked != N - n_keep).nonzero()[0])
                fail(f"sample {b} has {int(n_masked[b])} masked patches, expected exactly {N - n_keep}.",
                     hint="Do not mask each patch independently with probability mask_ratio (the count "
                          "varies): rank N random noises and keep the n_keep smallest.")
            expect(bool(((keep >= 0) & (keep < N)).all()), f"keep holds indices outside 0 .. {N - 1}.")
            expect(bool(mask.gather(1, keep).logical_not().all()) if n_keep else True,
                   "some indices in keep point at masked patches.", hint=INVERTED_HINT)
    with case("keep and mask agree: the kept indices are exactly the unmasked patches, each once"):
        keep, mask = _masking(answer, 6, 16, 0.75, seed=3)
        for b in range(6):
            visible = sorted((~mask[b]).nonzero().flatten().tolist())
            kept = sorted(keep[b].tolist())
            if kept != visible:
                hint = (INVERTED_HINT
                        if sorted(mask[b].nonzero().flatten().tolist()) == kept else None)
                fail(f"sample {b}: keep = {kept}, but the unmasked patches are {visible}.", hint=hint)
    with case("each sample is masked independently (batch of 32, 16 patches: the masks differ)"):
        keep, mask = _masking(answer, 32, 16, 0.75, seed=4)
        distinct = len({tuple(row.tolist()) for row in mask})
        expect(distinct > 16, f"only {distinct} distinct masks among 32 samples.",
               hint="Draw the noise per sample: torch.rand(batch_size, n_patches), not torch.rand(n_patches) "
                    "shared by the whole batch.")
    with case("uniform: over many samples every patch is masked ≈ mask_ratio of the time"):
        keep, mask = _masking(answer, 2000, 16, 0.75, seed=5)
        rate = mask.double().mean(0)  # (N,)
        worst = int((rate - 0.75).abs().argmax())
        expect(((rate - 0.75).abs() < 0.05).all(),
               f"patch {worst} is masked in {rate[worst]:.1%} of the samples, expected ≈ 75 %.",
               hint="Every patch must be equally likely to be kept: keep the indices of the n_keep smallest "
                    "random noises, not the first n_keep positions.")
    with case("deterministic: the same seed gives the same masks, another seed other masks", hint=GENERATOR_HINT):
        first, again, other = (_masking(answer, 8, 16, 0.75, seed=s)[1] for s in (7, 7, 8))
        expect(torch.equal(first, again), "two generators seeded identically (manual_seed(7)) gave different "
                                          "masks: some randomness does not come from `generator`.")
        expect(not torch.equal(first, other), "generators seeded 7 and 8 gave identical masks: your function "
                                              "does not draw from `generator`.")
    with case("works without a generator (generator=None, the default)"):
        keep, mask = _masking(answer, 4, 16, 0.75, generator=False)
        expect_equal(int(mask.sum()), 48, name="number of masked patches")
