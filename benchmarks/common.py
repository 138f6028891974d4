"""Shared helpers for the benchmarks: inputs that look like a detector's, and a timer.

Benchmarks print medians and ratios measured in one run, against a reference
implementation run in the same process; they are not tests and assert nothing
about speed.
"""

from __future__ import annotations

import statistics
import time

import torch

TINYSSD_SIZES = [[0.2, 0.272], [0.37, 0.447], [0.54, 0.619], [0.71, 0.79], [0.88, 0.961]]
TINYSSD_RATIOS = [1, 2, 0.5]
TINYSSD_FMAPS = [32, 16, 8, 4, 1]  # feature-map sizes of TinySSD at 256x256


def tinyssd_anchors(device="cpu") -> torch.Tensor:
    """The 5444 anchors of d2l's TinySSD for a 256x256 input, ``(1, 5444, 4)``."""
    import d2lssd

    return torch.cat([
        d2lssd.multibox_prior(torch.zeros(1, 1, f, f, device=device), s, TINYSSD_RATIOS)
        for f, s in zip(TINYSSD_FMAPS, TINYSSD_SIZES)], dim=1)


def clustered_boxes(n: int, num_clusters: int | None = None, seed: int = 0, device="cpu"):
    """``n`` boxes in clusters around objects, like a detector's raw output.

    Each cluster has a random object box (normalized, 5-40% of the side); its
    members are the object box jittered by up to ~15% of its size, with random
    scores. Returns ``(boxes (n, 4) corner format, scores (n,))``.
    """
    g = torch.Generator().manual_seed(seed)
    k = num_clusters or max(1, n // 50)
    centers = torch.rand(k, 2, generator=g) * 0.8 + 0.1
    sizes = torch.rand(k, 2, generator=g) * 0.35 + 0.05
    which = torch.randint(0, k, (n,), generator=g)
    c = centers[which] + (torch.rand(n, 2, generator=g) - 0.5) * 0.3 * sizes[which]
    wh = sizes[which] * (1 + (torch.rand(n, 2, generator=g) - 0.5) * 0.3)
    boxes = torch.cat((c - wh / 2, c + wh / 2), dim=1)
    scores = torch.rand(n, generator=g)
    return boxes.to(device), scores.to(device)


def median_ms(fn, repeat: int = 15, warmup: int = 2, sync=None) -> float:
    """Median wall time of ``fn()`` in milliseconds (``sync`` is called before reading the clock)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        if sync:
            sync()
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def interleaved_medians(fns: dict, repeat: int = 9, warmup: int = 2, sync=None) -> dict:
    """Median wall time in ms of each ``fns[name]()``, the functions run in turn
    (one of each per repetition), so a change of machine load hits all of them alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            if sync:
                sync()
            t0 = time.perf_counter()
            fn()
            if sync:
                sync()
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: statistics.median(ts) for name, ts in times.items()}


def busy_process(seconds: float, threads: int = 2):
    """Start a CPU-bound competing process (PyTorch matrix products on ``threads``
    threads) that stops by itself after ``seconds``; returns the ``Popen`` (terminate it when done)."""
    import subprocess
    import sys

    code = ("import time, torch\n"
            f"torch.set_num_threads({int(threads)})\n"
            "a = torch.rand(512, 512)\n"
            f"end = time.monotonic() + {float(seconds)}\n"
            "while time.monotonic() < end:\n"
            "    a = (a @ a).clamp_(0, 1)\n")
    return subprocess.Popen([sys.executable, "-c", code])
