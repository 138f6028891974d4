"""``d2lssd train``: train an SSD on a COCO or Pascal VOC data set and write a checkpoint.

::

    d2lssd train --coco train.json --images images/ --val-split 20 --checkpoint runs/mine.pt
    d2lssd train --voc VOCdevkit/VOC2007 --model resnet34 --epochs 30 --checkpoint runs/voc.pt

The data is checked first (the report of ``d2lssd check-data``; refused
with problems unless ``--drop-bad``). Anchors are fitted to the training
boxes (:func:`d2lssd.anchor_fit.fit_anchors`, coverage before and after
printed; ``--default-anchors`` keeps the model's). The loss is the SSD
paper's (hard negative mining 3:1, smooth L1); AdamW with the engine's
warm-up and cosine schedule (:mod:`d2lssd.engine.schedule`). After every
epoch the validation AP50 / AP (the paper's inference) is printed; the
checkpoint (``--checkpoint``) is written every epoch, the best by AP50 next
to it (``run.best.pt``), both atomically, with the detector spec
(:mod:`d2lssd.commands.common`) so that ``evaluate``, ``predict`` and
``export`` need nothing else. Under ``torchrun`` (``torchrun
--nproc_per_node=2 -m d2lssd train ...``) every process trains on its
shard (``DistributedSampler``, ``--batch-size`` per process), gradients are
averaged by ``DistributedDataParallel`` (gloo on the CPU, nccl on CUDA),
and rank 0 alone validates, prints and writes.

Source: ours, on :func:`d2lssd.train_ssd`; the option names follow
torchvision's ``references/detection/train.py``.
"""

from __future__ import annotations

import argparse

import torch

from ..anchor_fit import dataset_boxes, fit_anchors
from ..cli import positive_int
from ..data.pennfudan import collate_ssd
from ..device import describe_device
from ..engine.distributed import distributed_context
from ..engine.schedule import make_optimizer
from ..losses import MultiBoxLoss
from ..pennfudan import best_path
from ..train import evaluate_ap, train_ssd
from ..transforms import SSDEvalTransform, SSDTrainTransform
from .common import DEFAULT_SIZES, MODELS, add_data_arguments, build_detector, open_dataset

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``d2lssd train`` (see the module docstring)."""
    add_data_arguments(parser)
    add_data_arguments(parser, prefix="val-")
    parser.add_argument("--val-split", type=positive_int, metavar="N",
                        help="without --val-coco/--val-voc: hold out N training images (seeded) for validation")
    parser.add_argument("--checkpoint", required=True, help="where to write the checkpoint (best: NAME.best.pt)")
    parser.add_argument("--model", choices=sorted(MODELS), default="tinyssd", help="the SSD (default tinyssd)")
    parser.add_argument("--size", type=positive_int, help="square input side in pixels (256 tinyssd, 300 resnet34)")
    parser.add_argument("--epochs", type=positive_int, default=20, help="epochs (default 20)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="images per batch (default 8)")
    parser.add_argument("--lr", type=float, default=1e-3, help="AdamW peak learning rate (default 1e-3)")
    parser.add_argument("--weight-decay", type=float, default=1e-4, help="AdamW weight decay (default 1e-4)")
    parser.add_argument("--warmup", type=float, default=0.05, help="share of steps with linear warm-up (0.05)")
    parser.add_argument("--default-anchors", action="store_true", help="keep the model's anchors (no fitting)")
    parser.add_argument("--pretrained", action="store_true", help="resnet34: start from ImageNet weights")
    parser.add_argument("--no-augment", action="store_true", help="no SSD augmentation, only the resize")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: a GPU if there is one)")
    parser.add_argument("--workers", type=int, default=0, help="data-loader processes (default 0)")
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights, the split and the order")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _datasets(args, size: int):
    """``(train, val)`` of the options; ``val`` is ``None`` without validation data or ``--val-split``."""
    train_tf = SSDEvalTransform(size) if args.no_augment else SSDTrainTransform(size)
    train = open_dataset(args, transforms=train_tf)
    val = open_dataset(args, prefix="val_", transforms=SSDEvalTransform(size), classes=train.classes,
                       required=False)
    if val is not None and args.val_split:
        raise ValueError("give --val-split or a validation set (--val-coco/--val-voc), not both")
    if val is None and args.val_split:
        if args.val_split >= len(train):
            raise ValueError(f"--val-split {args.val_split} leaves no training image of {len(train)}")
        train, val = train.split(args.val_split, args.seed, val_transforms=SSDEvalTransform(size))
    return train, val


def _spec(args, train, size: int, say=print) -> dict:
    """The detector spec (see :mod:`d2lssd.commands.common`); anchors fitted to ``train``'s boxes."""
    spec = dict(model=args.model, classes=list(train.classes),
                category_ids=list(getattr(train, "category_ids", [None] * train.num_classes)), size=size,
                sizes=None, ratios=None, score_threshold=0.5, nms_threshold=0.45)
    if not args.default_anchors:
        fit = fit_anchors(dataset_boxes(train), args.model, size)
        say(f"anchors fitted to {fit.num_boxes} training boxes: coverage (IoU >= 0.5) "
            f"{fit.coverage_before:.1%} with the model's, {fit.coverage_after:.1%} fitted", flush=True)
        spec.update(sizes=fit.sizes, ratios=fit.ratios)
    return spec


def run(args) -> int:
    """Train (see the module docstring); under ``torchrun`` one process per device (DDP); returns 0."""
    if not 0 <= args.warmup < 1:
        raise ValueError(f"--warmup must be in [0, 1), got {args.warmup}")
    with distributed_context(args.device) as info:
        _train(args, info)
    return 0


def _loaders(args, train, val, info):
    # one seeded DistributedSampler also for one process: the same global order for any number of processes
    sampler = torch.utils.data.DistributedSampler(train, num_replicas=info.world_size, rank=info.rank,
                                                  shuffle=True, seed=args.seed)
    loader = torch.utils.data.DataLoader(train, args.batch_size, sampler=sampler, collate_fn=collate_ssd,
                                         num_workers=args.workers,
                                         drop_last=len(sampler) % args.batch_size == 1 and len(sampler) > 1)
    val_loader = (torch.utils.data.DataLoader(val, args.batch_size, collate_fn=collate_ssd, num_workers=args.workers)
                  if val is not None else None)
    return loader, val_loader


def _train(args, info) -> None:
    size = args.size or DEFAULT_SIZES[args.model]
    device = info.device
    say = print if info.is_main else (lambda *a, **k: None)
    train, val = _datasets(args, size)
    say(f"data: {len(train)} training images, {len(val) if val is not None else 0} validation; classes: "
        f"{', '.join(train.classes)}; device: {describe_device(device)}; processes: {info.world_size}",
        flush=True)
    spec = _spec(args, train, size, say)
    torch.manual_seed(args.seed)  # the same initial weights in every process
    net = build_detector(spec, pretrained=args.pretrained).to(device)
    model = net
    if info.distributed:
        if device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                          else None)
    torch.manual_seed(args.seed + 1000 * info.rank)  # different augmentations per process
    loader, val_loader = _loaders(args, train, val, info)
    optimizer, scheduler = make_optimizer(model, "adamw", args.lr, args.weight_decay,
                                          total_steps=max(args.epochs * len(loader), 1), warmup=args.warmup)

    def on_epoch(m, record, history):
        r = evaluate_ap(m, val_loader, device=device, semantics="paper")
        return {"val_AP50": r["AP50"], "val_AP": r["AP"]}

    train_ssd(model, loader, val_loader, num_epochs=args.epochs, optimizer=optimizer, lr_scheduler=scheduler,
              device=device, loss_fn=MultiBoxLoss(cls_loss="hard_negative", box_loss="smooth_l1"),
              checkpoint_path=args.checkpoint, resume=args.resume, progress=not args.no_progress, plot="text",
              epoch_callback=on_epoch if val_loader is not None else None,
              best_checkpoint_path=best_path(args.checkpoint) if val_loader is not None else None,
              checkpoint_extra={"detector": spec})
    if info.distributed:
        torch.distributed.barrier()  # rank 0 has written the checkpoints
    say(f"checkpoint: {args.checkpoint}" + (f" (best by val AP50: {best_path(args.checkpoint)})"
                                            if val_loader is not None else ""), flush=True)
