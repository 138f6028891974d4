"""Train TinySSD on the banana data and report AP50 and COCO AP on the validation set.

    python tools/train_tinyssd.py --schedule full   # d2l's: 20 epochs, batch 32, SGD lr 0.2, wd 5e-4
    python tools/train_tinyssd.py --schedule cpu    # the chapter's short CPU schedule

Uses the real d2l banana data when it can be downloaded and generated
look-alike data otherwise (``D2LSSD_OFFLINE=1`` forces the latter); the first
line printed says which. Writes the history and the AP figures as JSON next to
the checkpoint (``--out``), so a long run can be resumed with ``--resume``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

import d2lssd

SCHEDULES = d2lssd.TINYSSD_SCHEDULES  # "full" (d2l's) and "cpu" (the chapter's)


def evaluate_ap(net, val_iter, device) -> dict:
    """AP50 and COCO AP@[.5:.95] (101-point) of ``net`` on ``val_iter``."""
    dets, targets = [], []
    for X, Y in val_iter:
        dets += d2lssd.predict(net, X, device=device, score_threshold=0.01, top_k=200)
        targets += list(Y)
    m = d2lssd.mean_average_precision(dets, targets)
    return {k: m[k] for k in ("AP50", "AP", "AP75")}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--schedule", choices=sorted(SCHEDULES), default="full")
    p.add_argument("--epochs", type=int, help="override the schedule's number of epochs")
    p.add_argument("--out", default="runs/tinyssd", help="folder for checkpoint and results")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    cfg = dict(SCHEDULES[args.schedule])
    if args.epochs:
        cfg["num_epochs"] = args.epochs
    torch.manual_seed(args.seed)
    device = d2lssd.try_gpu()
    train_iter, val_iter = d2lssd.load_data_bananas(cfg["batch_size"], seed=args.seed)
    if cfg["num_train"] < len(train_iter.dataset):  # the short schedule: a fixed subset
        subset = torch.utils.data.Subset(train_iter.dataset, range(cfg["num_train"]))
        train_iter = torch.utils.data.DataLoader(subset, batch_size=cfg["batch_size"], shuffle=True,
                                                 generator=torch.Generator().manual_seed(args.seed))
        train_iter.data_source = subset.dataset.data_source
    print("data:", train_iter.data_source.description)
    print("device:", d2lssd.describe_device(device), "| schedule:", args.schedule, cfg)
    net = d2lssd.TinySSD(num_classes=1)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.perf_counter()
    history = d2lssd.train_ssd(net, train_iter, val_iter, num_epochs=cfg["num_epochs"], lr=cfg["lr"],
                               weight_decay=cfg["weight_decay"], device=device,
                               checkpoint_path=os.path.join(args.out, "checkpoint.pt"),
                               resume=args.resume, progress=False, plot="text")
    result = dict(schedule=args.schedule, config=cfg, device=str(device),
                  data=train_iter.data_source.description, train_seconds=time.perf_counter() - t0,
                  **evaluate_ap(net, val_iter, device))
    print(json.dumps(result, indent=1))
    with open(os.path.join(args.out, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
