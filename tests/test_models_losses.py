"""Oracle tests of the focal loss against torchvision.ops.sigmoid_focal_loss."""
import pytest
import torch
import torch.nn.functional as F
import torchvision

from course_utils.models.losses import sigmoid_focal_loss


@pytest.mark.parametrize("alpha", [0.25, 0.5, -1])
@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, 5.0])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_matches_torchvision(alpha, gamma, reduction):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 7, generator=g) * 4
    targets = (torch.rand(64, 7, generator=g) < 0.2).float()
    ours = sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=gamma, reduction=reduction)
    ref = torchvision.ops.sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=gamma, reduction=reduction)
    assert torch.allclose(ours, ref, atol=1e-6, rtol=1e-5)


def test_gamma_zero_without_alpha_is_bce_and_gradients_match():
    g = torch.Generator().manual_seed(1)
    logits = (torch.randn(100, generator=g) * 3).requires_grad_()
    targets = (torch.rand(100, generator=g) < 0.5).float()
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    assert torch.allclose(sigmoid_focal_loss(logits, targets, alpha=None, gamma=0.0), bce, atol=1e-6)
    ours = torch.autograd.grad(sigmoid_focal_loss(logits, targets, reduction="sum"), logits)[0]
    ref = torch.autograd.grad(torchvision.ops.sigmoid_focal_loss(logits, targets, reduction="sum"), logits)[0]
    assert torch.allclose(ours, ref, atol=1e-6)


def test_easy_examples_are_down_weighted_and_extremes_are_finite():
    logits = torch.tensor([-6.0, -1.0, 60.0, -60.0])
    targets = torch.tensor([0.0, 0.0, 1.0, 1.0])
    fl = sigmoid_focal_loss(logits, targets, alpha=None, gamma=2.0)
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    assert torch.isfinite(fl).all()
    assert fl[0] / bce[0] < 1e-4 and fl[1] / bce[1] > 0.05  # easy negative weighs far less


def test_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        sigmoid_focal_loss(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="reduction"):
        sigmoid_focal_loss(torch.zeros(3), torch.zeros(3), reduction="avg")
