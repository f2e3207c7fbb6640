"""Fake CUDA on a machine without a GPU: prove that models, batches and losses keep to one device.

``torch._subclasses.fake_tensor.FakeTensorMode(allow_non_fake_inputs=True)`` makes tensors on a
*fake* ``"cuda"`` device: they have shapes, dtypes and devices but no data. A forward pass that
mixes a CUDA tensor with a CPU one raises ``FakeTensorDeviceMismatchError``, exactly where a real GPU
run would crash. Backward needs a real CUDA context, so a training path is followed up to its
first ``loss.backward()`` (:func:`stop_at_backward`) -- everything before it is the device contract.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch._subclasses.fake_tensor import FakeTensorMode

CUDA = torch.device("cuda")


@contextmanager
def fake_cuda():
    """Tensors made with ``device="cuda"`` inside this block are fake CUDA tensors."""
    with FakeTensorMode(allow_non_fake_inputs=True):
        yield


class ReachedBackward(Exception):
    """Raised by the patched ``Tensor.backward``: the forward pass and the loss ran."""

    def __init__(self, loss):
        super().__init__(f"reached backward with a loss on {loss.device}")
        self.loss = loss


@contextmanager
def stop_at_backward(monkeypatch):
    """Within the block, the first ``loss.backward()`` raises :class:`ReachedBackward` (with the loss)."""
    def backward(self, *args, **kwargs):
        raise ReachedBackward(self)

    monkeypatch.setattr(torch.Tensor, "backward", backward)
    yield


def assert_on_cuda(*things):
    """Every tensor given (and every parameter and buffer of every module given) is on CUDA."""
    for thing in things:
        if isinstance(thing, torch.nn.Module):
            tensors = list(thing.parameters()) + list(thing.buffers())
            assert tensors, f"{type(thing).__name__} has no parameters or buffers to check"
        elif isinstance(thing, (tuple, list)):
            tensors = [t for t in thing if isinstance(t, torch.Tensor)]
        else:
            tensors = [thing]
        for t in tensors:
            assert t.device.type == "cuda", f"{type(thing).__name__}: a tensor is on {t.device}, not cuda"


def run_training_path(monkeypatch, train_call):
    """Run ``train_call()`` (which must train on device="cuda") under fake CUDA up to its first
    backward; return the loss it reached there (asserted to be a CUDA scalar). Build the model
    *before* the call: a module built inside fake mode cannot be moved to another device."""
    with fake_cuda(), stop_at_backward(monkeypatch):
        try:
            train_call()
        except ReachedBackward as reached:
            loss = reached.loss
        else:
            raise AssertionError("the training path never called backward()")
    assert loss.device.type == "cuda" and loss.dim() == 0, f"loss on {loss.device} with shape {tuple(loss.shape)}"
    return loss
