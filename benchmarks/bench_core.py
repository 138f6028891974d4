"""Benchmarks of the SSD core against reference implementations, in one run.

    python benchmarks/bench_core.py [--device cpu|cuda] [--repeat 15]

Prints the median time of each operation for d2lssd and its reference
(torchvision.ops.nms, or d2l's own multibox_target / multibox_detection from
the d2l package) and their ratio. Goals from the foundation issue, on the
course's 2-core CPU: nms within 2x of torchvision on 5,000 and 20,000
clustered boxes; multibox_target for 32 images x 5444 anchors <= 3 ms;
multibox_detection for one image x 5444 anchors <= 11 ms. Timings on a shared
2-core VM vary by 2x from run to run; compare the ratios, which are measured
side by side. On a machine whose cores are busy with other work, PyTorch's
OpenMP threads oversubscribe the cores and d2lssd's many small vectorised ops
slow down by 10-100x (torchvision's single C++ loop does not): there, measure
with ``--threads 1``.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
import torchvision.ops as ops

sys.path.insert(0, os.path.dirname(__file__))
from common import clustered_boxes, median_ms, tinyssd_anchors  # noqa: E402

import d2lssd  # noqa: E402


def banana_like_labels(batch: int, seed: int = 0, device="cpu") -> torch.Tensor:
    """One object per image, like d2l's banana data: (B, 1, 5) normalized labels."""
    g = torch.Generator().manual_seed(seed)
    c = torch.rand(batch, 1, 2, generator=g) * 0.6 + 0.2
    wh = torch.rand(batch, 1, 2, generator=g) * 0.25 + 0.1
    return torch.cat((torch.zeros(batch, 1, 1), c - wh / 2, c + wh / 2), dim=-1).to(device)


def untrained_outputs(num_anchors: int, seed: int = 0, device="cpu"):
    """Outputs like an untrained single-class TinySSD's: every anchor above the 0.01 threshold."""
    g = torch.Generator().manual_seed(seed)
    cls = torch.softmax(torch.randn(1, 2, num_anchors, generator=g) * 2, dim=1)
    off = torch.randn(1, num_anchors * 4, generator=g) * 0.5
    return cls.to(device), off.to(device)


def main(argv=None) -> list[tuple[str, float, float]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default=str(d2lssd.try_gpu()))
    p.add_argument("--repeat", type=int, default=15)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    try:
        from d2l import torch as d2l
    except ImportError:  # the d2l package is a test-only dependency (see .ci/run)
        d2l = None
        print("d2l package not installed: its columns are skipped (pip install --no-deps d2l==1.0.3)")

    def t(fn):
        return median_ms(fn, repeat=args.repeat, sync=sync)

    rows = []
    for n in (5_000, 20_000):
        b, s = clustered_boxes(n, device=device)
        assert torch.equal(d2lssd.nms(b, s, 0.5), ops.nms(b, s, 0.5))
        rows.append((f"nms, {n} clustered boxes (vs torchvision.ops.nms)",
                     t(lambda: d2lssd.nms(b, s, 0.5)), t(lambda: ops.nms(b, s, 0.5))))
    anchors = tinyssd_anchors(device)
    labels = banana_like_labels(32, device=device)
    ref = (lambda: d2l.multibox_target(anchors, labels)) if d2l else None
    rows.append(("multibox_target, 32 images x 5444 anchors (vs d2l)",
                 t(lambda: d2lssd.multibox_target(anchors, labels)), t(ref) if ref else float("nan")))
    cls, off = untrained_outputs(anchors.shape[1], device=device)
    ref = (lambda: d2l.multibox_detection(cls, off, anchors)) if d2l else None
    rows.append(("multibox_detection, 1 image x 5444 anchors (vs d2l)",
                 t(lambda: d2lssd.multibox_detection(cls, off, anchors)), t(ref) if ref else float("nan")))

    print(f"device: {d2lssd.describe_device(device)}, torch {torch.__version__}, median of {args.repeat}")
    print(f"{'operation':58s} {'d2lssd ms':>10s} {'ref ms':>10s} {'ratio':>7s}")
    for name, ours, theirs in rows:
        print(f"{name:58s} {ours:10.2f} {theirs:10.2f} {ours / theirs:7.2f}")
    return rows


if __name__ == "__main__":
    main()
