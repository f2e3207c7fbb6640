"""The course's one training loop (``fit``) and its batched inference (``predict``, ``embed``).

Every chapter and every package trainer trains through :func:`fit`, so that each of them

* runs on one device -- the runtime's (``COURSE_DEVICE``, else CUDA, MPS, CPU) unless told
  otherwise: the model is moved there and so is every batch;
* draws its mini-batches from a *private* generator seeded with ``seed`` (nothing global is
  reseeded, so a chapter's other random draws do not depend on how many batches were drawn);
* shows one progress bar (``runtime.progress``) and returns one :class:`History`.

One step of :func:`fit`, for parameters θ, a batch B drawn at random and a loss ℓ::

    g_t   = ∇_θ ℓ(θ_t; B_t)                       (loss.backward())
    g_t  <- g_t · min(1, c / ‖g_t‖₂)              (optional clipping of the global norm to c)
    θ_t+1 = AdamW(θ_t, g_t, η_t)                  (optimizer.step())
    η_t+1 = schedule(t + 1)                       (one-cycle: warm up to lr, cosine down; or linear)

``COURSE_MAX_STEPS=N`` caps every :func:`fit`, :func:`loop` and :func:`capped` at ``N`` steps: the
full-profile rehearsal (``course_utils.rehearsal``) runs every chapter through each loop for a few
steps only, and measures the FLOPs of each loop's first step.

A loop stays written out in a notebook only where the loop *is* the lesson (the masked-LM step,
the GAN's two steps, the VAE, the DDPM step); such a cell carries the tag ``lesson-loop``.
"""
from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from . import runtime
from .rehearsal import measure_step

MAX_STEPS_ENV = "COURSE_MAX_STEPS"

Batch = tuple  # a tuple of tensors (and possibly other values) passed to the loss as loss_fn(model, *batch)
Data = Union[Tensor, Sequence[Tensor], Callable[[torch.Generator], object]]
LossOutput = Union[Tensor, tuple]  # loss, or (loss, {"name": value, ...})


def max_steps() -> Optional[int]:
    """The step cap from ``$COURSE_MAX_STEPS`` (a positive integer), or None when unset."""
    raw = os.environ.get(MAX_STEPS_ENV, "").strip()
    if not raw:
        return None
    try:
        cap = int(raw)
    except ValueError:
        cap = 0
    if cap < 1:
        raise ValueError(f"{MAX_STEPS_ENV}={raw!r} must be a positive whole number of steps (or unset).")
    return cap


def capped(steps: int) -> int:
    """``steps``, or fewer under ``$COURSE_MAX_STEPS``: use it for any loop that trains or samples."""
    cap = max_steps()
    return steps if cap is None else min(int(steps), cap)


@dataclass
class History:
    """What one :func:`fit` did: the loss of every step, whatever the loss reported, and the time.

    ``history["accuracy"]`` is the list a loss function reported under that name (one value a step).
    """

    loss: list = field(default_factory=list)
    logs: dict = field(default_factory=dict)
    steps: int = 0
    seconds: float = 0.0
    device: str = "cpu"

    def __getitem__(self, key: str) -> list:
        return self.loss if key == "loss" else self.logs[key]

    def __len__(self) -> int:
        return len(self.loss)

    def mean(self, key: str = "loss", first: Optional[int] = None, last: Optional[int] = None) -> float:
        """Mean of ``key`` over all steps, or over the ``first`` / ``last`` n steps."""
        values = self[key]
        if first is not None:
            values = values[:first]
        if last is not None:
            values = values[-last:]
        if not values:
            raise ValueError(f"no values of {key!r} to average")
        return float(sum(values) / len(values))

    def extend(self, other: "History") -> "History":
        """Append another run's steps (training in stages) and return self."""
        self.loss.extend(other.loss)
        for key, values in other.logs.items():
            self.logs.setdefault(key, []).extend(values)
        self.steps += other.steps
        self.seconds += other.seconds
        self.device = other.device
        return self


# --------------------------------------------------------------------------------------------
# Pieces of the loop, each usable alone (the GAN's two steps use them).


def _indexed(device: torch.device) -> torch.device:
    """``cuda`` -> ``cuda:0`` (the current device), so that device comparisons are exact."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device() if torch.cuda.is_available() else 0)
    return device


def resolve_device(device=None) -> torch.device:
    """``device`` as a ``torch.device``; None means the runtime's choice (``runtime.get_device()``)."""
    return runtime.get_device() if device is None else torch.device(device)


@contextmanager
def seeded(seed: int):
    """Run a block (e.g. building a model) with torch's global generator seeded to ``seed``, and
    give the generator its previous state back afterwards: the same weights every time, and no
    effect on the random draws of the code around it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def move_model(model: nn.Module, device: torch.device) -> nn.Module:
    """``model.to(device)`` -- skipped when every parameter and buffer is there already."""
    tensors = list(model.parameters()) + list(model.buffers())
    if any(t.device != device for t in tensors):
        model.to(device)
    return model


def to_device(batch, device: torch.device, non_blocking: bool = False):
    """Move every tensor in a (nested) tuple, list or dict to ``device``; leave other values alone."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device, non_blocking) for b in batch)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device, non_blocking) for k, v in batch.items()}
    return batch


def batch_sampler(data: Data, batch_size: int, generator: torch.Generator,
                  augment: Optional[Callable] = None) -> Callable[[], Batch]:
    """A function that returns the next random mini-batch (a tuple, on the CPU).

    ``data`` is one tensor, a sequence of tensors aligned on their first axis (drawn together:
    row i of each), or a callable ``make_batch(generator)`` that builds a batch itself. Rows are
    drawn with replacement, ``min(batch_size, N)`` at a time, from ``generator`` only.
    ``augment(generator, *batch)`` may change a drawn batch (noise, shifts) -- on the CPU, from the
    same generator, before it goes to the device.
    """
    if callable(data) and not isinstance(data, Tensor):
        def draw():
            batch = data(generator)
            return batch if isinstance(batch, tuple) else (batch,)
    else:
        tensors = (data,) if isinstance(data, Tensor) else tuple(data)
        if not tensors:
            raise ValueError("fit() got no training data.")
        n = len(tensors[0])
        for t in tensors[1:]:
            if len(t) != n:
                raise ValueError(f"the training tensors must align on their first axis: "
                                 f"lengths {[len(t) for t in tensors]}.")
        if n == 0:
            raise ValueError("fit() got an empty training set.")
        size = min(int(batch_size), n)

        def draw():
            idx = torch.randint(n, (size,), generator=generator)  # (B,) rows, with replacement
            return tuple(t[idx] for t in tensors)
    if augment is None:
        return draw
    return lambda: _as_tuple(augment(generator, *draw()))


def _as_tuple(batch) -> Batch:
    return batch if isinstance(batch, tuple) else (batch,)


def make_optimizer(parameters: Iterable[nn.Parameter], optimizer: str = "adamw", lr: float = 1e-3,
                   weight_decay: float = 0.0, betas=(0.9, 0.999)) -> torch.optim.Optimizer:
    """Adam or AdamW over ``parameters``."""
    params = [p for p in parameters if p.requires_grad]
    if not params:
        raise ValueError("fit() found no parameters that require gradients.")
    kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    if optimizer not in kinds:
        raise ValueError(f"optimizer={optimizer!r}: use one of {sorted(kinds)}.")
    return kinds[optimizer](params, lr=lr, weight_decay=weight_decay, betas=betas)


def make_schedule(optimizer: torch.optim.Optimizer, schedule: Optional[str], lr: float, steps: int,
                  warmup: float = 0.3):
    """The learning-rate schedule: ``"onecycle"`` (warm up over ``warmup`` of the steps to ``lr``,
    then cosine down), ``"linear"`` (η_t = lr · (1 - t/steps)), or None (constant)."""
    if schedule is None or schedule == "constant":
        return None
    if schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps, pct_start=warmup)
    if schedule == "linear":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 - s / steps)
    raise ValueError(f"schedule={schedule!r}: use 'onecycle', 'linear' or None.")


def _split_loss(out: LossOutput):
    if isinstance(out, Tensor):
        return out, {}
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], Tensor) and isinstance(out[1], Mapping):
        return out
    raise TypeError("the loss function must return a scalar tensor, or (loss, {name: value}); "
                    f"it returned {type(out).__name__}.")


class _Recorder:
    """Keeps per-step values on the device and reads them back in blocks (one sync per block)."""

    def __init__(self, history: History, every: int = 50):
        self.history, self.every = history, every
        self.pending: list[tuple[Tensor, dict]] = []

    def add(self, loss: Tensor, logs: Mapping):
        self.pending.append((loss.detach().float(), {k: (v.detach().float() if isinstance(v, Tensor)
                                                         else torch.tensor(float(v))) for k, v in logs.items()}))
        if len(self.pending) >= self.every:
            self.flush()

    def flush(self):
        if not self.pending:
            return
        losses = torch.stack([l.reshape(()) for l, _ in self.pending]).cpu().tolist()
        if not all(math.isfinite(v) for v in losses):
            bad = next(i for i, v in enumerate(losses) if not math.isfinite(v))
            step = len(self.history.loss) + bad
            self.pending.clear()
            raise FloatingPointError(f"the loss became {losses[bad]} at step {step}: lower the learning "
                                     f"rate, or clip gradients (clip_grad_norm=1.0).")
        self.history.loss.extend(losses)
        for _, logs in self.pending:
            for key, value in logs.items():
                self.history.logs.setdefault(key, []).append(float(value.reshape(()).cpu()))
        self.pending.clear()


def fit(model: nn.Module, loss_fn: Callable[..., LossOutput], data: Data, *, steps: int,
        batch_size: int = 64, lr: float = 1e-3, optimizer: str = "adamw", weight_decay: float = 0.0,
        betas=(0.9, 0.999), schedule: Optional[str] = "onecycle", warmup: float = 0.3,
        clip_grad_norm: Optional[float] = None, augment: Optional[Callable] = None,
        parameters: Optional[Iterable[nn.Parameter]] = None, mixed_precision: bool = False,
        device=None, seed: int = 0, desc: str = "training", progress: bool = True) -> History:
    """Train ``model`` for ``steps`` optimiser steps on random mini-batches; return the History.

    Args:
        model: the module to train; it is moved to ``device`` and left there in eval mode.
        loss_fn: ``loss_fn(model, *batch)`` -> a scalar loss, or ``(loss, {"name": value})`` to record
            more per step (accuracy, a KL term, ...). The batch is already on the device.
        data: one tensor, aligned tensors (drawn together), or ``make_batch(generator)``.
        steps: optimiser steps (capped by ``$COURSE_MAX_STEPS``).
        optimizer / lr / weight_decay / betas: Adam or AdamW and its settings.
        schedule / warmup: ``"onecycle"`` (``warmup`` = fraction of steps to reach ``lr``), ``"linear"``, None.
        clip_grad_norm: clip the global gradient norm to this value.
        augment: ``augment(generator, *batch)`` -> batch, on the CPU, before the batch is moved.
        parameters: what to optimise (default: every parameter of ``model`` that requires grad).
        mixed_precision: autocast to bfloat16 (fp16 with loss scaling where bf16 is missing) on CUDA;
            ignored on other devices.
        device: where to train (default: the runtime's device).
        seed: seeds the private generator the batches are drawn from.
    """
    device = resolve_device(device)
    requested, steps = int(steps), capped(int(steps))
    if steps < 1:
        raise ValueError(f"steps={steps}: train for at least one step.")
    device = _indexed(device)
    move_model(model, device)
    model.train()
    generator = torch.Generator().manual_seed(seed)
    next_batch = batch_sampler(data, batch_size, generator, augment)
    params = list(model.parameters() if parameters is None else parameters)
    opt = make_optimizer(params, optimizer, lr, weight_decay, betas)
    sched = make_schedule(opt, schedule, lr, steps, warmup)

    use_amp = mixed_precision and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    autocast = (lambda: torch.autocast("cuda", dtype=amp_dtype)) if use_amp else nullcontext

    history = History(device=str(device))
    recorder = _Recorder(history)
    started = time.perf_counter()
    bar = runtime.progress(range(steps), desc=desc) if progress else range(steps)
    for step in bar:
        with measure_step("train", desc, requested) if step == 0 else nullcontext():
            batch = to_device(next_batch(), device, non_blocking=device.type == "cuda")
            with autocast():
                loss, logs = _split_loss(loss_fn(model, *batch))
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if clip_grad_norm is not None:
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(params, clip_grad_norm)
            scaler.step(opt)
            scaler.update()
        if sched is not None:
            sched.step()
        recorder.add(loss, logs)
    recorder.flush()
    history.steps = steps
    history.seconds = time.perf_counter() - started
    model.eval()
    return history


def loop(steps: int, desc: str = ""):
    """``range(steps)`` for a loop written out by hand -- a lesson loop, a sampler -- with the course's
    progress bar, the ``$COURSE_MAX_STEPS`` cap and, in a rehearsal, its first step measured::

        for step in train.loop(steps, desc="MLM pre-training"):
            ...
    """
    requested = int(steps)
    for step in runtime.progress(range(capped(requested)), desc=desc):
        if step == 0:
            with measure_step("loop", desc, requested):
                yield step
        else:
            yield step


def step_seconds(loss_fn: Callable[[], Tensor], parameters: Iterable[nn.Parameter], steps: int = 2,
                 warmup: int = 1) -> float:
    """Mean wall-clock seconds of one training step (forward, backward, Adam) of ``loss_fn() -> loss``.

    For comparing two models' step costs in one run (e.g. pixel vs latent diffusion); ``warmup``
    steps are run first and not timed.
    """
    opt = make_optimizer(parameters, "adam", lr=1e-4)
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if loss.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


# --------------------------------------------------------------------------------------------
# Inference


def _concat(chunks: list):
    first = chunks[0]
    if isinstance(first, Tensor):
        return torch.cat(chunks)
    if isinstance(first, (tuple, list)):
        return type(first)(_concat([c[i] for c in chunks]) for i in range(len(first)))
    if isinstance(first, Mapping):
        return {k: _concat([c[k] for c in chunks]) for k in first}
    raise TypeError(f"predict() can gather tensors, tuples, lists and dicts, not {type(first).__name__}.")


def _to_cpu(out):
    """A CPU copy that owns its memory: never a view that keeps a large device/CPU tensor alive."""
    if isinstance(out, Tensor):
        out = out.detach()
        return out.cpu() if out.device.type != "cpu" else out.clone()
    if isinstance(out, (tuple, list)):
        return type(out)(_to_cpu(o) for o in out)
    if isinstance(out, Mapping):
        return {k: _to_cpu(v) for k, v in out.items()}
    raise TypeError(f"predict() can gather tensors, tuples, lists and dicts, not {type(out).__name__}.")


@torch.no_grad()
def predict(model: nn.Module, inputs: Union[Tensor, Sequence[Tensor]], fn: Optional[Callable] = None, *,
            batch_size: int = 256, device=None, mixed_precision: bool = False):
    """Run ``fn(model, *chunk)`` (default ``model(*chunk)``) over ``inputs`` in chunks; return CPU results.

    Memory stays bounded by one chunk on the device: each chunk's output is copied to the CPU
    before the next runs. Outputs (tensors, tuples, lists or dicts of tensors) are concatenated
    along the first axis. The model runs in eval mode and gets its previous mode back afterwards.
    """
    device = resolve_device(device)
    tensors = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    n = len(tensors[0]) if tensors else 0
    if any(len(t) != n for t in tensors):
        raise ValueError(f"predict() inputs must align on their first axis: lengths {[len(t) for t in tensors]}.")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: it must be at least 1.")
    fn = fn if fn is not None else (lambda m, *xs: m(*xs))
    was_training = model.training
    device = _indexed(device)
    move_model(model, device)
    model.eval()
    use_amp = mixed_precision and device.type == "cuda"
    chunks = []
    try:
        starts = range(0, max(n, 1), batch_size)
        for start in starts:
            chunk = to_device(tuple(t[start:start + batch_size] for t in tensors), device)
            with measure_step("predict", getattr(fn, "__name__", "predict"), len(starts)) if start == 0 else nullcontext():
                with torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else nullcontext():
                    out = fn(model, *chunk)
            chunks.append(_to_cpu(out))
            del out, chunk
    finally:
        model.train(was_training)
    return _concat(chunks)


def embed(model: nn.Module, inputs: Union[Tensor, Sequence[Tensor]], fn: Optional[Callable] = None, *,
          normalize: bool = True, batch_size: int = 256, device=None) -> Tensor:
    """Embeddings of ``inputs`` (N, D) on the CPU, computed in chunks; unit length when ``normalize``.

    e = f(x) / ‖f(x)‖₂ -- so that a dot product of two embeddings is their cosine similarity.
    """
    out = predict(model, inputs, fn, batch_size=batch_size, device=device)
    if not isinstance(out, Tensor):
        raise TypeError("embed() needs fn to return one tensor of embeddings (N, D).")
    return torch.nn.functional.normalize(out.float(), dim=-1) if normalize else out
