"""Text-to-image at toy scale: classifier-free guided sampling with any guidance function.

A text-conditioned denoiser ε_θ(x_t, t, c) is trained with its condition c replaced by a "null"
condition ∅ some of the time, so one network gives both predictions. Sampling mixes them with a
guidance function -- classifier-free guidance (Ho & Salimans, 2022):

    ε̂ = ε_θ(x_t, ∅) + s · (ε_θ(x_t, c) - ε_θ(x_t, ∅))        s = 0: unconditional, 1: conditional

:func:`guided` wraps a model function so that *every* call returns ε̂: any sampler of
``course_utils.models.diffusion`` (DDPM, a diffusers scheduler) then samples with guidance, and the
guidance function can be the learner's own (the chapter's exercise) or the package's.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

from course_utils.models.diffusion import ModelFn, classifier_free_guidance

Guidance = Callable[[Tensor, Tensor, float], Tensor]  # (ε_∅, ε_c, s) -> ε̂


def guided(model_fn: ModelFn, null_condition: Tensor, scale: float,
           guidance: Optional[Guidance] = None) -> ModelFn:
    """model_fn'(x_t, t, c) = guidance(ε_θ(x_t, t, ∅), ε_θ(x_t, t, c), scale).

    ``null_condition``: ∅ as one row (1, ...) or one row per sample (B, ...); ``guidance`` defaults
    to ``diffusion.classifier_free_guidance``. Both predictions come from one batched call of
    ``model_fn`` (2B samples), as in Stable Diffusion's pipeline. Scales 0 and 1 need one of the
    two predictions only (ε̂ = ε_∅ and ε̂ = ε_c): the wrapper then makes that one call, half the work.
    """
    guidance = classifier_free_guidance if guidance is None else guidance
    if scale in (0.0, 1.0):
        return lambda x, t, c: model_fn(x, t, c if scale == 1.0 else null_condition.to(c.device).expand_as(c))

    def fn(x: Tensor, t: Tensor, c: Tensor) -> Tensor:
        null = null_condition.to(c.device).expand_as(c) if len(null_condition) == 1 else null_condition.to(c.device)
        eps = model_fn(torch.cat([x, x]), torch.cat([t, t]), torch.cat([null, c]))  # (2B, ...)
        eps_null, eps_cond = eps.chunk(2)  # (B, ...) each
        return guidance(eps_null, eps_cond, scale)  # ε̂ = ε_∅ + s (ε_c - ε_∅)

    return fn
