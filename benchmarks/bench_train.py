"""Training throughput of d2lssd's loop against a d2l-style loop, in one run.

    python benchmarks/bench_train.py [--device cpu|cuda] [--batches 4] [--batch-size 32] [--repeat 3]

Both loops train the same TinySSD (same initial weights, same batches of
256x256 images with one banana-like box each) for one epoch and report
images per second over the whole epoch (synchronised on CUDA). The d2l-style
loop is d2l.ai §14.7.3's: targets from d2l's own ``multibox_target`` (a Python
loop over images and ground truths), d2l's ``calc_loss`` and its two metrics
summed per batch. Ours is :func:`d2lssd.train_ssd` (batched, loop-free
targets, honest metrics, one host sync per step). On a CPU the convolutions
dominate, so the two should be close; on a GPU the Python loops of d2l's
target assignment dominate a small model's step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
from bench_core import banana_like_labels  # noqa: E402

import d2lssd  # noqa: E402


def d2l_style_epoch(net, loader, device, d2l):
    """One epoch of d2l.ai §14.7.3's training loop (its metric code included)."""
    trainer = torch.optim.SGD(net.parameters(), lr=0.2, weight_decay=5e-4)
    cls_loss = nn.CrossEntropyLoss(reduction="none")
    bbox_loss = nn.L1Loss(reduction="none")

    def calc_loss(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks):
        b, c = cls_preds.shape[0], cls_preds.shape[2]
        cls = cls_loss(cls_preds.reshape(-1, c), cls_labels.reshape(-1)).reshape(b, -1).mean(dim=1)
        return cls + bbox_loss(bbox_preds * bbox_masks, bbox_labels * bbox_masks).mean(dim=1)

    net.train()
    metric = [0.0, 0.0, 0.0, 0.0]
    for X, Y in loader:
        X, Y = X.to(device), Y.to(device)
        trainer.zero_grad()
        anchors, cls_preds, bbox_preds = net(X)
        bbox_labels, bbox_masks, cls_labels = d2l.multibox_target(anchors, Y)
        l = calc_loss(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks)
        l.mean().backward()
        trainer.step()
        metric[0] += float((cls_preds.argmax(dim=-1).type(cls_labels.dtype) == cls_labels).sum())
        metric[1] += cls_labels.numel()
        metric[2] += float((torch.abs((bbox_labels - bbox_preds.detach()) * bbox_masks)).sum())
        metric[3] += bbox_labels.numel()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default=str(d2lssd.try_gpu()))
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from d2l import torch as d2l  # the reference (installed with --no-deps by .ci/run)

    device = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    n = args.batches * args.batch_size
    g = torch.Generator().manual_seed(0)
    X = torch.rand(n, 3, 256, 256, generator=g) * 255
    Y = banana_like_labels(n)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=args.batch_size)
    torch.manual_seed(0)
    init = d2lssd.TinySSD(num_classes=1).state_dict()

    def run(which):
        net = d2lssd.TinySSD(num_classes=1)
        net.load_state_dict(init)
        net.to(device)
        sync()
        t0 = time.perf_counter()
        if which == "d2lssd":
            d2lssd.train_ssd(net, loader, num_epochs=1, device=device, progress=False, plot=None)
        else:
            d2l_style_epoch(net, loader, device, d2l)
        sync()
        return n / (time.perf_counter() - t0)

    run("d2lssd"), run("d2l")  # warm-up (allocator, cuDNN autotuning)
    rates = {"d2lssd": [], "d2l": []}
    for _ in range(args.repeat):  # interleaved, so both see the same machine load
        for which in rates:
            rates[which].append(run(which))
    ours, ref = statistics.median(rates["d2lssd"]), statistics.median(rates["d2l"])
    print(f"device: {d2lssd.describe_device(device)}, torch {torch.__version__}, "
          f"{args.batches} batches of {args.batch_size}, median of {args.repeat} epochs")
    print(f"{'loop':28s} {'images/s':>10s}")
    print(f"{'d2lssd.train_ssd':28s} {ours:10.1f}")
    print(f"{'d2l-style (d2l targets)':28s} {ref:10.1f}")
    print(f"ratio d2lssd / d2l-style: {ours / ref:.2f} (higher is faster)")
    return ours, ref


if __name__ == "__main__":
    main()
