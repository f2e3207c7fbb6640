"""Benchmark (not a test): one training step of the course ViT vs torchvision's VisionTransformer.

Same configuration, same data, same optimizer; the two are timed in the same run with
interleaved repetitions (A, B, A, B, ...) so that load on a shared machine hits both alike.
Reports the median step times and their ratio (course / torchvision; target <= 1.1).

    .venv/bin/python tests/benchmarks/bench_vit_step.py [--reps 30] [--batch 128] [--size 16]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from course_utils.models.vit import VisionTransformer, ViTConfig, to_torchvision


def make_step(model, x, y):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step():
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def time_steps(step, n):
    start = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - start) / n


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30, help="interleaved repetitions")
    parser.add_argument("--steps", type=int, default=3, help="steps per repetition")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--patch", type=int, default=4)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--mlp-ratio", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    config = ViTConfig(image_size=args.size, patch_size=args.patch, in_channels=3, n_classes=10,
                       d_model=args.width, n_heads=args.heads, n_layers=args.layers, mlp_ratio=args.mlp_ratio)
    course = VisionTransformer(config).to(args.device).train()
    reference = to_torchvision(course).to(args.device).train()  # same configuration and weights
    x = torch.rand(args.batch, 3, args.size, args.size, device=args.device)
    y = torch.randint(0, 10, (args.batch,), device=args.device)
    steps = {"course": make_step(course, x, y), "torchvision": make_step(reference, x, y)}
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)

    for step in steps.values():  # warm-up
        for _ in range(3):
            step()
    times = {name: [] for name in steps}
    ratios = []
    for rep in range(args.reps):
        order = list(steps) if rep % 2 == 0 else list(steps)[::-1]  # alternate who goes first
        this = {}
        for name in order:
            sync()
            this[name] = time_steps(steps[name], args.steps)
            sync()
            times[name].append(this[name])
        ratios.append(this["course"] / this["torchvision"])

    n_params = sum(p.numel() for p in course.parameters())
    print(f"config: {config} ({n_params:,} parameters), batch {args.batch}, device {args.device}, "
          f"torch threads {torch.get_num_threads()}")
    for name, t in times.items():
        print(f"{name:>12}: median {1e3 * statistics.median(t):7.2f} ms/step "
              f"(min {1e3 * min(t):.2f}, max {1e3 * max(t):.2f}, {args.reps} x {args.steps} steps)")
    ratio = statistics.median(ratios)
    print(f"ratio course / torchvision (median of interleaved pairs): {ratio:.3f} (target <= 1.1)")
    return ratio


if __name__ == "__main__":
    main()
