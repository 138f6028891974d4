"""``d2lssd train``: train an SSD on a COCO or Pascal VOC data set and write a checkpoint.

::

    d2lssd train --coco train.json --images images/ --val-split 20 --checkpoint runs/mine.pt
    d2lssd train --voc VOCdevkit/VOC2007 --model resnet34 --epochs 30 --checkpoint runs/voc.pt
    d2lssd train --preset pennfudan --checkpoint runs/pf.pt       # a preset: its data and settings
    d2lssd train --preset bananas-focal --schedule short --checkpoint runs/focal.pt

A preset (:mod:`d2lssd.presets`, ``--preset NAME [--schedule S]``) gives
the settings of a course run and its data; options given here win, and
``--coco`` / ``--voc`` train the preset's settings on your data instead.
Everything else is :func:`d2lssd.trainer.train_detector`, the one trainer.

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

Source: ours, on :func:`d2lssd.trainer.train_detector`; the option names follow
torchvision's ``references/detection/train.py`` (``get_args_parser``).
"""

from __future__ import annotations

import argparse

from ..engine.config import TrainConfig, add_config_arguments, config_from_args
from ..models.registry import get_model
from ..presets import PRESETS, preset_settings
from ..runs import check_run_folder, run_folder
from ..trainer import TrainingData, input_transforms, train_detector
from .common import add_data_arguments, check_split_options, open_dataset

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``d2lssd train``: the data (:func:`~d2lssd.commands.common.add_data_arguments`, training and
    ``--val-*``) and one per field of :class:`~d2lssd.engine.TrainConfig`
    (:func:`~d2lssd.engine.config.add_config_arguments`; only the options given are laid over the preset's)."""
    add_data_arguments(parser, drop_bad=False)  # --drop-bad is TrainConfig.drop_bad
    add_data_arguments(parser, prefix="val-")
    add_config_arguments(parser, TrainConfig, given_only=True)


def _named_data(data) -> bool:
    """True when the options name training data (``--coco``, ``--voc`` ...)."""
    return any(getattr(data, k, None) is not None for k in ("coco", "voc", "yolo"))


def _open_files(data):
    """The opener of the data the options name: ``(train, val)`` in the model's input convention."""

    def open_data(config: TrainConfig) -> TrainingData:
        train_tf, val_tf = input_transforms(config)
        train = open_dataset(data, transforms=train_tf, drop_bad=config.drop_bad)
        val = open_dataset(data, prefix="val_", transforms=val_tf, classes=train.classes, required=False,
                           drop_bad=config.drop_bad)
        if val is not None and config.val_split:
            raise ValueError("give --val-split or a validation set (--val-coco/--val-voc/--val-yolo), not both")
        if val is None and config.val_split:
            if config.val_split >= len(train):
                raise ValueError(f"--val-split {config.val_split} leaves no training image of {len(train)}")
            train, val = train.split(config.val_split, config.seed, val_transforms=val_tf)
        ids = list(getattr(train, "category_ids", None) or []) or None
        return TrainingData(train, val, list(train.classes), ids, kind="files",
                            description=f"{type(train).__name__} of the files named on the command line")

    return open_data


def run(args: argparse.Namespace) -> int:
    """Train (see the module docstring); under ``torchrun`` one process per device (DDP); returns 0.

    Args:
        args: the options of :func:`add_arguments`: the data options are read
            from it; the training options given, over the preset's settings
            (``--preset``), become a :class:`~d2lssd.engine.TrainConfig`
            (stored in the checkpoints as ``"config"``).

    Raises:
        ValueError, FileNotFoundError: bad options or data (one line each, see :mod:`d2lssd.cli`).
    """
    preset = getattr(args, "preset", None)
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"--preset must be one of {', '.join(sorted(PRESETS))}, got {preset!r}")
    if preset is None and getattr(args, "schedule", None) is not None:
        raise ValueError("--schedule needs --preset")
    base = preset_settings(preset, getattr(args, "schedule", None), getattr(args, "device", None)) if preset else {}
    if preset and _named_data(args) and "val_split" not in args and PRESETS[preset].data is not None:
        base.pop("val_split", None)  # the preset's split is of its own data
    config = config_from_args(args, TrainConfig, base)
    get_model(config.model)
    check_split_options(args)  # before any data is read; never ignored, a preset's own data included
    check_split_options(args, "val_")
    if config.report and config.checkpoint:
        check_run_folder(run_folder(config.checkpoint))  # before the data is read, not after the anchors are fitted
    train_detector(config, _open_files(args) if _named_data(args) else None)
    return 0
