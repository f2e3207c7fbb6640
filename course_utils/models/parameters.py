"""Counting a model's parameters -- the size every chapter reports for its networks."""
from torch import nn


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters in ``module`` (a tied weight counts once): Σ_p numel(p)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
