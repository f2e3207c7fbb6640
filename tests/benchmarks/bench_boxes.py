"""Benchmark (not a test): the course's teaching IoU and NMS vs torchvision.ops on 10k boxes.

Both sides run in the same process on the same boxes, with interleaved repetitions (course, torchvision,
course, ...) so that load on a shared machine hits both alike. Reports median times and the ratio
course / torchvision (the teaching code may be slower; this says by how much). The results are checked to
be identical before timing.

    .venv/bin/python tests/benchmarks/bench_boxes.py [--n 10000] [--m 1000] [--reps 5]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision

from course_utils.models.boxes import box_iou, nms, nms_per_class


def random_boxes(n, seed, extent=1000.0, size=60.0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * extent
    return torch.cat([xy, xy + 1 + torch.rand(n, 2, generator=g) * size], 1)


def median_time(fn, reps):
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare(name, ours, theirs, reps):
    t_ours, t_theirs = [], []
    for _ in range(reps):  # interleaved
        t_ours.append(median_time(ours, 1))
        t_theirs.append(median_time(theirs, 1))
    a, b = statistics.median(t_ours), statistics.median(t_theirs)
    print(f"{name:<44} course {a * 1000:9.1f} ms   torchvision {b * 1000:8.1f} ms   ratio {a / b:6.1f}x")
    return a / b


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="boxes")
    parser.add_argument("--m", type=int, default=1_000, help="second set of boxes for the IoU matrix")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {torch.get_num_threads()} threads", flush=True)
    a, b = random_boxes(args.n, 0), random_boxes(args.m, 1)
    scores = torch.rand(args.n, generator=torch.Generator().manual_seed(2))
    labels = torch.randint(0, 3, (args.n,), generator=torch.Generator().manual_seed(3))
    assert torch.allclose(box_iou(a, b), torchvision.ops.box_iou(a, b), atol=1e-6)
    assert torch.equal(nms(a, scores, 0.5), torchvision.ops.nms(a, scores, 0.5))
    ours, ref = nms_per_class(a, scores, labels, 0.5), torchvision.ops.batched_nms(a, scores, labels, 0.5)
    # same boxes, same score order (10k float scores contain ties, which torchvision's unstable sort may swap)
    assert set(ours.tolist()) == set(ref.tolist()) and torch.equal(scores[ours], scores[ref])
    compare(f"IoU matrix {args.n} x {args.m}", lambda: box_iou(a, b), lambda: torchvision.ops.box_iou(a, b), args.reps)
    compare(f"NMS, {args.n} boxes, threshold 0.5", lambda: nms(a, scores, 0.5),
            lambda: torchvision.ops.nms(a, scores, 0.5), args.reps)
    compare(f"per-class NMS, {args.n} boxes, 3 classes", lambda: nms_per_class(a, scores, labels, 0.5),
            lambda: torchvision.ops.batched_nms(a, scores, labels, 0.5), args.reps)


if __name__ == "__main__":
    main()
