"""Correct answers to ``diffusion.classifier_free_guidance`` written differently from the book's
reference (each string is a complete exercise cell): the check must accept every one."""

ALTERNATIVES = {
    "diffusion.classifier_free_guidance": [
        # the weighted-average form: (1 - s) ε_∅ + s ε_c
        '''def classifier_free_guidance(eps_uncond, eps_cond, scale):
    """(1 - s) * eps_uncond + s * eps_cond, the same line written as a weighted sum."""
    return (1 - scale) * eps_uncond + scale * eps_cond
''',
        # torch.lerp extrapolates for weights above 1
        '''import torch


def classifier_free_guidance(eps_uncond, eps_cond, scale):
    """torch.lerp(a, b, w) = a + w (b - a), also for w > 1."""
    return torch.lerp(eps_uncond, eps_cond, float(scale))
''',
        # numpy inside, converted back with the inputs' dtype
        '''import numpy as np
import torch


def classifier_free_guidance(eps_uncond, eps_cond, scale):
    """The same formula in numpy, on copies of the inputs."""
    u, c = eps_uncond.detach().cpu().numpy(), eps_cond.detach().cpu().numpy()
    guided = u + scale * (c - u)
    return torch.from_numpy(np.asarray(guided, dtype=u.dtype)).to(eps_uncond.device)
''',
        # a copy, then in-place updates on the copy only
        '''def classifier_free_guidance(eps_uncond, eps_cond, scale):
    """Step from eps_uncond towards eps_cond on a copy, in place."""
    guided = eps_cond.clone()
    guided.sub_(eps_uncond).mul_(scale).add_(eps_uncond)
    return guided
''',
    ],
}
