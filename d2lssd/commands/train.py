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
to it (``run.best.pt``), both atomically, with the detector
(:attr:`d2lssd.Detector.spec`: classes and their dataset ids, input size
and the model registry's input convention, which the training images are
given in, anchors, post-processing) so that ``evaluate``, ``predict`` and
``export`` need nothing else, and the training options as ``"config"``
(:meth:`d2lssd.engine.TrainConfig.to_dict`; the options are derived from
:class:`~d2lssd.engine.TrainConfig`'s fields, the data options are
:mod:`d2lssd.commands.common`'s). Under ``torchrun`` (``torchrun
--nproc_per_node=2 -m d2lssd train ...``) every process trains on its
shard (``DistributedSampler``, ``--batch-size`` per process), gradients are
averaged by ``DistributedDataParallel`` (gloo on the CPU, nccl on CUDA),
and rank 0 alone validates, prints and writes.

Source: ours, on :func:`d2lssd.train_ssd`; the option names follow
torchvision's ``references/detection/train.py`` (``get_args_parser``).
"""

from __future__ import annotations

import argparse

import torch

from ..anchor_fit import dataset_boxes, fit_anchors
from ..detector import Detector
from ..device import describe_device
from ..engine.checkpoint import best_path
from ..engine.config import TrainConfig, add_config_arguments, config_from_args
from ..engine.data import detection_loaders
from ..engine.distributed import distributed_context
from ..engine.schedule import make_optimizer
from ..losses import MultiBoxLoss
from ..models.registry import build_model, get_model
from ..train import evaluate_ap, train_ssd
from ..transforms import SSDEvalTransform, SSDTrainTransform
from .common import add_data_arguments, open_dataset

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``d2lssd train``: the data (:func:`~d2lssd.commands.common.add_data_arguments`, training and
    ``--val-*``) and one per field of :class:`~d2lssd.engine.TrainConfig`
    (:func:`~d2lssd.engine.config.add_config_arguments`)."""
    add_data_arguments(parser, drop_bad=False)  # --drop-bad is TrainConfig.drop_bad
    add_data_arguments(parser, prefix="val-")
    add_config_arguments(parser, TrainConfig)


def _datasets(config: TrainConfig, data, size: int):
    """``(train, val)`` of the data options ``data``; ``val`` is ``None`` without validation data or ``--val-split``.

    The images come in the model's input convention (the registry's ``pixel_scale``).
    """
    scale = get_model(config.model).pixel_scale
    train_tf = SSDTrainTransform(size, pixel_scale=scale) if config.augment else SSDEvalTransform(size, scale)
    train = open_dataset(data, transforms=train_tf, drop_bad=config.drop_bad)
    val = open_dataset(data, prefix="val_", transforms=SSDEvalTransform(size, scale), classes=train.classes,
                       required=False, drop_bad=config.drop_bad)
    if val is not None and config.val_split:
        raise ValueError("give --val-split or a validation set (--val-coco/--val-voc), not both")
    if val is None and config.val_split:
        if config.val_split >= len(train):
            raise ValueError(f"--val-split {config.val_split} leaves no training image of {len(train)}")
        train, val = train.split(config.val_split, config.seed, val_transforms=SSDEvalTransform(size, scale))
    return train, val


def _detector(config: TrainConfig, train, size: int, say=print) -> Detector:
    """A fresh detector for ``train``'s classes (and dataset ids); anchors fitted to its boxes unless told not to."""
    sizes = ratios = None
    if config.fit_anchors:
        fit = fit_anchors(dataset_boxes(train), config.model, size)
        say(f"anchors fitted to {fit.num_boxes} training boxes: coverage (IoU >= 0.5) "
            f"{fit.coverage_before:.1%} with the model's, {fit.coverage_after:.1%} fitted", flush=True)
        sizes, ratios = fit.sizes, fit.ratios
    torch.manual_seed(config.seed)  # the same initial weights in every process
    net = build_model(config.model, train.num_classes, sizes=sizes, ratios=ratios, pretrained=config.pretrained)
    ids = list(getattr(train, "category_ids", None) or []) or None
    return Detector(net, model=config.model, class_names=list(train.classes), category_ids=ids, input_size=size)


def run(args: argparse.Namespace) -> int:
    """Train (see the module docstring); under ``torchrun`` one process per device (DDP); returns 0.

    Args:
        args: the options of :func:`add_arguments`: the data options are read
            from it, the training options become a :class:`~d2lssd.engine.TrainConfig`
            (stored in the checkpoints as ``"config"``, its :meth:`~d2lssd.engine.TrainConfig.to_dict`).

    Raises:
        ValueError, FileNotFoundError: bad options or data (one line each, see :mod:`d2lssd.cli`).
    """
    config = config_from_args(args, TrainConfig)
    with distributed_context(config.device) as info:
        _train(config, args, info)
    return 0


def _train(config: TrainConfig, data, info) -> None:
    """Train on the data options ``data`` with ``config`` in this process (``info``: its torchrun place)."""
    size = config.size or get_model(config.model).input_size
    device = info.device
    say = print if info.is_main else (lambda *a, **k: None)
    train, val = _datasets(config, data, size)
    say(f"data: {len(train)} training images, {len(val) if val is not None else 0} validation; classes: "
        f"{', '.join(train.classes)}; device: {describe_device(device)}; processes: {info.world_size}",
        flush=True)
    detector = _detector(config, train, size, say)
    net = detector.net.to(device)
    model = net
    if info.distributed:
        if device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                          else None)
    torch.manual_seed(config.seed + 1000 * info.rank)  # different augmentations per process
    loader, val_loader = detection_loaders(train, val, config.batch_size, seed=config.seed, rank=info.rank,
                                           world_size=info.world_size, workers=config.workers)
    optimizer, scheduler = make_optimizer(model, "adamw", config.lr, config.weight_decay,
                                          total_steps=max(config.epochs * len(loader), 1), warmup=config.warmup)

    def on_epoch(m, record, history):
        r = evaluate_ap(m, val_loader, device=device, semantics=detector.postprocess.semantics)
        return {"val_AP50": r["AP50"], "val_AP": r["AP"]}

    train_ssd(model, loader, val_loader, num_epochs=config.epochs, optimizer=optimizer, lr_scheduler=scheduler,
              device=device, loss_fn=MultiBoxLoss(cls_loss="hard_negative", box_loss="smooth_l1"),
              checkpoint_path=config.checkpoint, resume=config.resume, progress=config.progress, plot="text",
              epoch_callback=on_epoch if val_loader is not None else None,
              best_checkpoint_path=best_path(config.checkpoint) if val_loader is not None else None,
              checkpoint_extra={"detector": detector.spec, "config": config.to_dict()})
    if info.distributed:
        torch.distributed.barrier()  # rank 0 has written the checkpoints
    say(f"checkpoint: {config.checkpoint}" + (f" (best by val AP50: {best_path(config.checkpoint)})"
                                              if val_loader is not None else ""), flush=True)
