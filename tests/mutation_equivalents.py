"""Mutants of the exercises' reference answers that compute the same function on every valid input.

``tests/mutation.py`` leaves these out of each check's kill rate. Each entry maps the mutant's name
(exactly as ``python -m tests.mutation <id>`` prints it) to the reason it is equivalent: an
argument, not a hope ("`removed` is a fresh local tensor: `|=` and `= removed |` give the same
result and modify nothing the caller sees"). A listed mutant that the check kills, or that no
longer exists, fails the test (the list must stay true).
"""

# Exercises whose result must carry gradient back to its inputs or parameters (losses, layers):
# only these get "detached" mutants (a term computed under torch.no_grad or on .detach()ed inputs).
DIFFERENTIABLE = {
    "attention.scaled_dot_product_attention",
    "autoencoders.crop_and_concat",
    "autoencoders.reparameterize",
    "autoencoders.vae_loss",
    "embeddings.clip_loss",
    "gans.discriminator_loss",
    "gans.generator_loss",
    "medical.binary_focal_loss",
    "vit.add_cls_and_positions",
}

EQUIVALENT: dict[str, dict[str, str]] = {
    "autoencoders.reparameterize": {
        "detached: `eps = torch.randn(mu.shape, generator=generator).to(mu.device)` -> `eps = _mutation_detach(torch.randn(mu.shape, generator=generator).t...` in `eps = torch.randn(mu.shape, generator=generator...`":
            "eps is a fresh torch.randn draw that never requires grad, so detaching it changes neither z nor any gradient of z",
    },
    "attention.scaled_dot_product_attention": {
        "detached: `d = q.shape[-1]` -> `d = _mutation_detach(q.shape[-1])` in `d = q.shape[-1]`":
            "d is a Python int read from the shape, which never carries gradient, so detaching it changes no value and no gradient",
        "in-place twin: `scores.masked_fill(~mask, float('-inf'))` -> `scores.masked_fill_(~mask, float('-inf'))` in `scores = scores.masked_fill(~mask, float('-inf'))`":
            "scores is the fresh result of the division on the line before, read by nothing else, and division by a constant saves no output for backward, so filling it in place gives the same values and gradients and modifies no input",
        "swapped arguments: `k.transpose(-2, -1)` -> `k.transpose(-1, -2)` in `scores = q @ k.transpose(-2, -1) / math.sqrt(d)`":
            "transpose swaps its two dimensions, so transpose(-2, -1) and transpose(-1, -2) are the same operation on every tensor",
    },
    "attention.mask_tokens": {
        "compare: `torch.rand(ids.shape, generator=generator) < p` -> `torch.rand(ids.shape, generator=generator) <= p` in `chosen = (torch.rand(ids.shape, generator=gener...`":
            "the statement asks for probability p; a float32 uniform draw equals p with probability at most 2**-24, so < and <= choose tokens with the same probability and both are correct answers",
        "compare: `u < 0.8` -> `u <= 0.8` in `inputs = torch.where(chosen & (u < 0.8), torch....`":
            "the statement asks for an 80 / 10 / 10 split in probability; u equals 0.8 with probability at most 2**-24, so both boundaries give the same split and both are correct answers",
        "compare: `u < 0.9` -> `u <= 0.9` in `inputs = torch.where(chosen & (u >= 0.8) & (u <...`":
            "the statement asks for an 80 / 10 / 10 split in probability; u equals 0.9 with probability at most 2**-24, so both boundaries give the same split and both are correct answers",
        "compare: `u >= 0.8` -> `u > 0.8` in `inputs = torch.where(chosen & (u >= 0.8) & (u <...`":
            "the statement asks for an 80 / 10 / 10 split in probability; u equals 0.8 with probability at most 2**-24, so both boundaries give the same split and both are correct answers",
    },
    "detection.iou": {
        'swapped arguments: `torch.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])` -> `torch.maximum(boxes_b[None, :, :2], boxes_a[:, None, :2])` in `top_left = torch.maximum(boxes_a[:, None, :2], ...`':
            'torch.maximum is symmetric in its two arguments (elementwise max), and broadcasting gives the same (N, M, 2) shape either way',
        'swapped arguments: `torch.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])` -> `torch.minimum(boxes_b[None, :, 2:], boxes_a[:, None, 2:])` in `bottom_right = torch.minimum(boxes_a[:, None, 2...`':
            'torch.minimum is symmetric in its two arguments (elementwise min), and broadcasting gives the same (N, M, 2) shape either way',
        'in-place twin: `(bottom_right - top_left).clamp(min=0)` -> `(bottom_right - top_left).clamp_(min=0)` in `wh = (bottom_right - top_left).clamp(min=0)`':
            '(bottom_right - top_left) is a fresh temporary tensor that nothing else reads, so clamping it in place gives the same result and modifies no input',
    },
    "detection.encode_yolo_target": {
        'swapped arguments: `min(int(cx // s), grid - 1)` -> `min(grid - 1, int(cx // s))` in `col, row = (min(int(cx // s), grid - 1), min(in...`':
            "Python's min of two ints is symmetric in its arguments: min(a, b) == min(b, a) for every pair of integers",
        'swapped arguments: `min(int(cy // s), grid - 1)` -> `min(grid - 1, int(cy // s))` in `col, row = (min(int(cx // s), grid - 1), min(in...`':
            "Python's min of two ints is symmetric in its arguments: min(a, b) == min(b, a) for every pair of integers",
        'rounding: `int(cx // s)` -> `round(cx // s)` in `col, row = (min(int(cx // s), grid - 1), min(in...`':
            'cx // s is floor division, already a whole float, and round() and int() of a whole float give the same integer for every finite value',
        'rounding: `int(cy // s)` -> `round(cy // s)` in `col, row = (min(int(cx // s), grid - 1), min(in...`':
            'cx // s is floor division, already a whole float, and round() and int() of a whole float give the same integer for every finite value',
    },
    "embeddings.skipgram_pairs": {
        "swapped arguments: `max(0, i - window)` -> `max(i - window, 0)` in `pairs = [(ids[i], ids[j]) for i in range(T) for...`":
            "max of two ints is symmetric in its arguments: max(0, x) == max(x, 0) for every integer x",
        "swapped arguments: `min(T, i + window + 1)` -> `min(i + window + 1, T)` in `pairs = [(ids[i], ids[j]) for i in range(T) for...`":
            "min of two ints is symmetric in its arguments: min(T, x) == min(x, T) for every integer x",
    },
    "embeddings.clip_loss": {
        "detached: `labels = torch.arange(len(I), device=I.device)` -> `labels = _mutation_detach(torch.arange(len(I), device=I.device))` in `labels = torch.arange(len(I), device=I.device)`":
            "the labels are an integer arange that never carries gradient, so detaching them changes no value and no gradient",
    },
    "diffusion.q_sample": {
        "constant ±1: `0` -> `-1` in `alpha_bars = torch.cumprod(1 - betas, dim=0)`":
            "betas is the one-dimensional (T,) schedule, so dim=0 and dim=-1 name the same and only axis",
        "in-place twin: `(1 - a).sqrt()` -> `(1 - a).sqrt_()` in `return a.sqrt() * x0 + (1 - a).sqrt() * noise`":
            "(1 - a) is a fresh temporary tensor that nothing else reads, so taking its square root in place gives the same result and modifies no input",
    },
    "diffusion.ddpm_step": {
        "constant ±1: `0` -> `-1` in `alpha_bars = torch.cumprod(alphas, dim=0)`":
            "alphas is the one-dimensional (T,) schedule, so dim=0 and dim=-1 name the same and only axis",
        "in-place twin: `alphas[t].sqrt()` -> `alphas[t].sqrt_()` in `mean = (x_t - betas[t] / (1 - alpha_bars[t]).sq...`":
            "alphas = 1 - betas is a local copy whose entry t is never read after this line (alpha_bars was computed before), so the in-place root changes no result and no input",
        "in-place twin: `(1 - alpha_bars[t]).sqrt()` -> `(1 - alpha_bars[t]).sqrt_()` in `mean = (x_t - betas[t] / (1 - alpha_bars[t]).sq...`":
            "(1 - alpha_bars[t]) is a fresh temporary tensor that nothing else reads, so the in-place root gives the same result and modifies no input",
    },
    "medical.binary_focal_loss": {
        'detached: `alpha_t = alpha * targets + (1 - alpha) * (1 - targets)` -> `alpha_t = _mutation_detach(alpha * targets + (1 - alpha) * (1 - tar...` in `alpha_t = alpha * targets + (1 - alpha) * (1 - ...`':
            "alpha_t is made of the constant alpha and the 0/1 targets, which are labels: no gradient ever flows to them, so detaching alpha_t changes neither the loss nor any gradient of the logits",
    },
    "medical.sensitivity_at_fp": {
        'swapped arguments: `max(best, tp / n_lesions)` -> `max(tp / n_lesions, best)` in `best = max(best, tp / n_lesions)`':
            "max of two Python floats is symmetric: max(a, b) and max(b, a) are equal numbers (on a tie both are the same value)",
    },
}
