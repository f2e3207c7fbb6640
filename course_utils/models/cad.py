"""Pieces of the mammography CAD pipeline that the package did not have yet.

* :func:`crop_classifier` -- the course's small CNN (``models.classifier``) with one logit: a mass crop is
  benign (0) or malignant (1).
* :func:`binary_loss` -- the three losses the imbalance section compares, on one logit per example:

      plain CE         L = −[y log p + (1 − y) log(1 − p)],                       p = σ(z)
      class-weighted   L = −[w₊ y log p + (1 − y) log(1 − p)],  w₊ = N₋ / N₊  (the inverse class frequency)
      focal            L = −α_t (1 − p_t)^γ log p_t       (``course_utils.models.losses.sigmoid_focal_loss``)

* :func:`train_binary` -- Adam on random mini-batches with one of those losses, or any loss function
  ``(logits, targets) -> scalar`` (e.g. the learner's own focal loss), on the same budget for all;
  :func:`freeze_all_but_norm_and_head` -- the fine-tuning recipe for a new site with few labels.
* :class:`SegmentClassifyUNet` -- the package's :class:`~course_utils.models.unet.UNet` with a
  classification head: a forward hook keeps the bottleneck's feature map b (B, C, h, w); the head
  reads its global average, ``logits = W · mean_{h,w}(b) + c``. One network, two outputs: the mask
  logits and the class logits, trained with L = BCE(mask) + λ · CE(class).
* :func:`anomaly_map` -- the reconstruction-error map (x − x̂)² of an autoencoder and an image score
  (the mean of the ``top`` largest errors after smoothing), for the anomaly-detection stage; computed
  in chunks on the device (``train.predict``).
"""
from __future__ import annotations

from typing import Callable, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from course_utils.models.classifier import SmallCNN, SmallCNNConfig
from course_utils.models.losses import sigmoid_focal_loss
from course_utils.models.unet import UNet, UNetConfig
from course_utils.train import History, fit, predict

LOSSES = ("ce", "weighted", "focal")


def crop_classifier(width: int = 16, dropout: float = 0.1, in_channels: int = 1) -> SmallCNN:
    """The crop scorer: the course's small CNN with one logit, (B, C, S, S) -> (B,)."""
    return SmallCNN(SmallCNNConfig(in_channels=in_channels, num_classes=1, width=width, dropout=dropout))


def binary_loss(logits: Tensor, targets: Tensor, kind: str = "ce", pos_weight: float = 1.0,
                alpha: float = 0.75, gamma: float = 2.0) -> Tensor:
    """Mean loss of one logit per example; ``kind`` in ``LOSSES`` (see the module docstring)."""
    if kind not in LOSSES:
        raise ValueError(f"kind={kind!r}: choose one of {LOSSES}.")
    targets = targets.to(logits.dtype)
    if kind == "ce":
        return F.binary_cross_entropy_with_logits(logits, targets)
    if kind == "weighted":
        # L = −[w₊ y log p + (1 − y) log(1 − p)]
        w = torch.tensor(float(pos_weight), device=logits.device)
        return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=w)
    return sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=gamma, reduction="mean")


def binary_focal_loss(logits: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """The mean focal loss, α weighting the positives (the course's answer to ``medical.binary_focal_loss``).

        FL = mean of −α_t (1 − p_t)^γ log p_t,   α_t = α y + (1 − α)(1 − y)
    """
    return sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=gamma, reduction="mean")


def train_binary(model: nn.Module, x: Tensor, y: Tensor, kind: Union[str, Callable] = "ce", steps: int = 300,
                 batch_size: int = 64, lr: float = 3e-3, seed: int = 0, augment: bool = True, device=None,
                 **loss_kwargs) -> History:
    """Train ``model`` (x -> one logit) with ``binary_loss(kind)``: Adam (weight decay 1e-4) + one-cycle,
    random vertical flips if ``augment``. Returns the training History; the model is left in eval mode.

    ``kind`` is one of ``LOSSES`` or a function ``loss(logits, targets, **loss_kwargs) -> scalar``
    (targets float 0/1). ``pos_weight`` defaults to N₋ / N₊ of ``y`` for the weighted loss.
    """
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"need as many labels as inputs (> 0), got {len(x)} inputs and {len(y)} labels.")
    if callable(kind):
        loss_fn = kind

        def step_loss(m, xb, yb):
            return loss_fn(m(xb), yb.float(), **loss_kwargs)

        name = getattr(kind, "__name__", "custom loss")
    elif kind in LOSSES:
        def step_loss(m, xb, yb):
            return binary_loss(m(xb), yb, kind, **loss_kwargs)

        name = kind
    else:
        raise ValueError(f"kind={kind!r}: choose one of {LOSSES} or pass a loss function.")
    if kind == "weighted" and "pos_weight" not in loss_kwargs:
        n_pos = max(int(y.sum()), 1)
        loss_kwargs["pos_weight"] = (len(y) - n_pos) / n_pos

    def flip(g, xb, yb):
        flips = torch.rand(len(xb), generator=g) < 0.5  # (B,)
        return torch.where(flips[:, None, None, None], xb.flip(-2), xb), yb  # vertical flips keep the anatomy

    return fit(model, step_loss, (x, y), steps=steps, batch_size=batch_size, lr=lr, optimizer="adam",
               weight_decay=1e-4, augment=flip if augment else None, seed=seed, device=device,
               desc=f"classifier ({name})")


def freeze_all_but_norm_and_head(model: nn.Module, head: str = "head") -> nn.Module:
    """Fine-tune only the normalisation layers and the head: every other parameter gets requires_grad=False.

    With few labels from a new site this adapts the feature *statistics* (BatchNorm's running mean and
    variance are re-estimated in train mode, its scale and shift are trained) and the decision, and
    keeps the convolution filters learned on the large source site. Returns ``model``.
    """
    norm_types = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)
    keep = {id(p) for m in model.modules() if isinstance(m, norm_types) for p in m.parameters()}
    for name, p in model.named_parameters():
        p.requires_grad = id(p) in keep or name.startswith(head + ".")
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"no normalisation layer and no parameter under {head!r}: nothing would be trained.")
    return model


def predict_proba(model: nn.Module, x: Tensor, batch_size: int = 512, device=None) -> Tensor:
    """σ(logit) for every input, in eval mode, on the CPU: (N,)."""
    return torch.sigmoid(predict(model, x, batch_size=batch_size, device=device))


class SegmentClassifyUNet(nn.Module):
    """A :class:`UNet` plus a classification head on its bottleneck (a forward hook captures it).

    forward: (B, C, H, W) -> (mask logits (B, out_channels, H, W), class logits (B, n_classes)).
    """

    def __init__(self, unet_config: UNetConfig, n_classes: int = 3):
        super().__init__()
        self.unet = UNet(unet_config)
        self._bottleneck: Optional[Tensor] = None
        self.unet.bottleneck.register_forward_hook(self._keep)
        width = unet_config.width(unet_config.depth)
        self.classifier = nn.Sequential(nn.Linear(width, width), nn.ReLU(inplace=True), nn.Linear(width, n_classes))

    def _keep(self, module, inputs, output):
        self._bottleneck = output  # (B, width_depth, H / 2**depth, W / 2**depth)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        masks = self.unet(x)  # (B, out_channels, H, W); the hook stored the bottleneck
        pooled = self._bottleneck.mean((-2, -1))  # (B, width_depth)
        self._bottleneck = None
        return masks, self.classifier(pooled)  # (B, out, H, W), (B, n_classes)


def anomaly_map(autoencoder: nn.Module, images: Tensor, smooth: int = 3, top: int = 8, flat: bool = False,
                batch_size: int = 256, device=None) -> tuple[Tensor, Tensor]:
    """(error maps (B, 1, H, W) = (x − x̂)², image scores (B,) = mean of the ``top`` largest smoothed errors).

    The autoencoder maps (B, 1, H, W) to the same shape (e.g. ``UNet(UNetConfig(skip=False))``), or,
    with ``flat=True``, (B, H*W) to (B, H*W) (``course_utils.models.autoencoder.Autoencoder``).
    Runs in eval mode on ``device`` (default: the runtime's), ``batch_size`` images at a time
    (``train.predict``); the results come back on the CPU.
    """

    def errors_and_scores(model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
        recon = model(x.flatten(1) if flat else x)
        if isinstance(recon, tuple):  # (x̂, z) from an Autoencoder
            recon = recon[0]
        err = (x - recon.reshape(x.shape)).pow(2)  # (B, 1, H, W)
        smoothed = F.avg_pool2d(err, smooth, stride=1, padding=smooth // 2, count_include_pad=False)
        return err, smoothed.flatten(1).topk(top, dim=1).values.mean(1)  # (B, 1, H, W), (B,)

    return predict(autoencoder, images, errors_and_scores, batch_size=batch_size, device=device)
