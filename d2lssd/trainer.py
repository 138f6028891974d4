"""The one trainer: a :class:`~d2lssd.engine.TrainConfig` and data in, a trained :class:`~d2lssd.Detector` out.

:func:`train_detector` is what every way of training runs: ``d2lssd train``
(your COCO, VOC or YOLO data, or a preset's), the Penn-Fudan project
(:mod:`d2lssd.pennfudan`, the ``pennfudan`` preset) and the loss chapters'
recipes (:func:`d2lssd.train_recipe`, the ``bananas-*`` presets). It

1. opens the data (rank 0 first under ``torchrun``, so that a download or
   the generation of offline data happens once) in the model's input
   convention (the registry's size and pixel scale, the SSD augmentation
   unless ``augment=False``);
2. builds the detector: the registry's model for the data's classes, anchors
   fitted to the training boxes unless ``fit_anchors=False``, BatchNorm
   frozen if asked, the post-processing of the config;
3. trains it with :func:`d2lssd.train_ssd` (the loss, optimizer and
   learning-rate schedule of the config; AMP and ``channels_last`` on CUDA by
   default; ``DistributedDataParallel`` under ``torchrun``), validating AP50
   and COCO AP after every epoch;
4. writes the checkpoint every epoch and the best by validation AP50 next to
   it, each holding the detector (:attr:`d2lssd.Detector.spec`) and the
   config (``"config"``: :meth:`~d2lssd.engine.TrainConfig.to_dict`), so that
   :func:`d2lssd.load_detector`, ``evaluate``, ``predict`` and ``export`` need
   nothing else.

``train_ssd`` stays the chapters' door with d2l's signature; it is the loop
this calls.

Source: ours, on :func:`d2lssd.train_ssd`; the shape of torchvision's
``references/detection/train.py`` (one script, alone or under ``torchrun``;
rank 0 validates and saves).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .anchor_fit import dataset_boxes, fit_anchors
from .detector import Detector, PostProcess, evaluate_detector, load_detector
from .data.common import shown
from .device import describe_device
from .engine.checkpoint import best_path
from .engine.config import TrainConfig
from .engine.data import detection_loaders
from .engine.distributed import distributed_context
from .engine.history import History
from .engine.schedule import make_optimizer
from .losses import MultiBoxLoss, ssd_loss
from .models.registry import build_model, get_model
from .presets import PRESETS
from .runs import RunFolder, run_folder
from .transforms import SSDEvalTransform, SSDTrainTransform
from .train import train_ssd

__all__ = ["TrainingData", "TrainedRun", "input_transforms", "preset_data_source", "open_preset_data", "freeze_batchnorm",
           "loss_function", "train_detector"]


@dataclass
class TrainingData:
    """The data of a run: the training and validation sets and what they are.

    Attributes:
        train: a dataset of ``(image, target)`` in the model's input
            convention, images of one size (:class:`d2lssd.data.CocoDataset`
            ... after an SSD transform, or :class:`d2lssd.data.BananasDataset`).
        val: the same for validation, or ``None``.
        classes: the class names in label order.
        category_ids: the data set's id of each class (COCO), or ``None``.
        kind: ``"real"``, ``"generated"`` or ``"files"`` (data a user named).
        description: one line that says which data the run used.
    """

    train: torch.utils.data.Dataset
    val: torch.utils.data.Dataset | None
    classes: list[str]
    category_ids: list[int] | None = None
    kind: str = "files"
    description: str = ""


@dataclass
class TrainedRun:
    """What :func:`train_detector` returns: ``detector`` (trained, eval mode, on the training device),
    ``history`` (:class:`d2lssd.History`, complete on rank 0), ``data`` (:class:`TrainingData`), ``config``."""

    detector: Detector
    history: History
    data: TrainingData
    config: TrainConfig


def input_transforms(config: TrainConfig):
    """``(train_transform, val_transform)``: the registry's input size and pixel scale; augmentation unless off."""
    entry = get_model(config.model)
    size, scale = config.size or entry.input_size, entry.pixel_scale
    val_tf = SSDEvalTransform(size, scale)
    return (SSDTrainTransform(size, pixel_scale=scale) if config.augment else val_tf), val_tf


def preset_data_source(config: TrainConfig):
    """Where the data of ``config.preset`` is: a :class:`d2lssd.data.DataSource` ``(kind, root, description)``.

    ``config.data`` is its folder (a Penn-Fudan folder with ``PNGImages/`` is
    used as it is; otherwise the data is downloaded or generated under it,
    default the d2lssd cache folder); ``config.source`` says real, generated
    or auto (the real data if it can be downloaded, else generated).

    Raises:
        ValueError: no preset, a preset without data, a ``--data`` file, or
            data of the other kind than ``source`` asks for.
    """
    if config.preset is None or PRESETS[config.preset].data is None:
        raise ValueError("no data given: name it (--coco/--voc) or choose a preset with data (--preset)")
    if PRESETS[config.preset].data == "bananas":
        from .data.bananas import obtain_bananas

        return obtain_bananas(config.data, config.source, seed=0)
    from .data.common import DataSource, read_marker
    from .data.pennfudan import obtain_pennfudan

    root = Path(config.data) if config.data else None
    if root is not None and (root / "PNGImages").is_dir():
        found = "generated" if read_marker(root) is not None else "real"
        if config.source not in ("auto", found):
            raise ValueError(f"--data {root} holds {found} data but --source {config.source} was asked for")
        return DataSource(found, root, f"{found} Penn-Fudan data in {root} (given with --data)")
    if root is not None and root.exists() and not root.is_dir():
        raise ValueError(f"--data must be a folder, got the file {root}")
    return obtain_pennfudan(root, config.source, config.seed)


def open_preset_data(config: TrainConfig) -> TrainingData:
    """The data of ``config.preset`` (:func:`preset_data_source`) as training and validation sets.

    * ``pennfudan``: split ``val_split`` (default 50) / the rest, seeded by
      ``config.seed``, in the model's input convention (:func:`input_transforms`);
    * ``bananas``: :func:`d2lssd.load_data_bananas`'s data (1000 / 100
      images at 256 px, already in d2l's [0, 255]; generated with seed 0
      offline), which takes neither another size nor augmentation.

    Raises:
        ValueError: what :func:`preset_data_source` raises; settings the
            banana data cannot take.
    """
    src = preset_data_source(config)
    if PRESETS[config.preset].data == "pennfudan":
        from .data.pennfudan import PENNFUDAN_CLASSES, PennFudanDataset

        train_tf, val_tf = input_transforms(config)
        split = dict(num_val=config.val_split or 50, seed=config.seed)
        return TrainingData(PennFudanDataset(src.root, "train", train_tf, **split),
                            PennFudanDataset(src.root, "val", val_tf, **split), list(PENNFUDAN_CLASSES),
                            kind=src.kind, description=src.description)
    from .data.bananas import BananasDataset

    if config.augment or (config.size or 256) != 256 or get_model(config.model).pixel_scale != 1.0:
        raise ValueError("the banana data come at 256 px in [0, 255] without augmentation: use --no-augment "
                         "and a model whose input is [0, 255] (tinyssd)")
    return TrainingData(BananasDataset(True, src.root), BananasDataset(False, src.root), ["banana"], kind=src.kind,
                        description=src.description)


def freeze_batchnorm(net: nn.Module) -> nn.Module:
    """Keep every BatchNorm layer of ``net`` in eval mode, even after ``net.train()``; returns ``net``.

    The layers normalize with their running statistics and do not update
    them; their affine weight and bias still learn. The state dict is
    unchanged (plain ``BatchNorm2d``), so checkpoints load either way
    (a forward pre-hook per layer). Then one process and several under DDP
    compute the same function, which the tests use.

    Source: the "frozen BatchNorm" of detection fine-tuning (torchvision's
    ``FrozenBatchNorm2d`` also freezes the affine parameters; this does not).
    """
    def _eval(module, args):
        module.training = False

    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.register_forward_pre_hook(_eval)
    return net


def loss_function(config: TrainConfig) -> Callable:
    """The per-image loss of ``config.loss``: d2l's :func:`d2lssd.ssd_loss` or a :class:`d2lssd.MultiBoxLoss`."""
    if config.loss == "d2l":
        return ssd_loss
    cls_loss = "hard_negative" if config.loss == "ssd" else "focal"
    return MultiBoxLoss(cls_loss=cls_loss, box_loss="smooth_l1", normalize=config.loss_normalize)


def _subset(dataset, n):
    if dataset is None or n is None or n >= len(dataset):
        return dataset
    return torch.utils.data.Subset(dataset, range(n))


def _small_objects(train, classes: list[str], size: int):
    """The checker's ``small_objects`` warning for the training boxes at ``size`` (None if none, or unknown boxes)."""
    from .data.report import small_objects_warning

    if not hasattr(train, "normalized_labels"):
        return None
    rows = train.normalized_labels().tolist()
    return small_objects_warning([(classes[int(c)], x2 - x1, y2 - y1) for c, x1, y1, x2, y2 in rows], size,
                                 "training data")


def _build_detector(config: TrainConfig, data: TrainingData, train, say, quiet_warnings: bool) -> Detector:
    """A fresh detector for the data's classes; anchors fitted to the training boxes unless told not to."""
    size = config.size or get_model(config.model).input_size
    sizes = ratios = None
    small = _small_objects(train, list(data.classes), size)
    if small is not None:  # what check-data says, at the size this run trains at
        say(f"warning: {small.message}", flush=True)
    if config.fit_anchors:
        fit = fit_anchors(dataset_boxes(train), config.model, size)
        say(f"anchors fitted to {fit.num_boxes} training boxes: coverage (IoU >= 0.5) "
            f"{fit.coverage_before:.1%} with the model's, {fit.coverage_after:.1%} fitted", flush=True)
        sizes, ratios = fit.sizes, fit.ratios
    torch.manual_seed(config.seed)  # the same initial weights in every process
    with warnings.catch_warnings():
        if quiet_warnings:
            warnings.simplefilter("ignore")
        net = build_model(config.model, len(data.classes), sizes=sizes, ratios=ratios, pretrained=config.pretrained)
    if config.bn == "frozen":
        freeze_batchnorm(net)
    post = PostProcess(score_threshold=config.score_threshold, nms_threshold=config.nms_threshold,
                       top_k=config.top_k)
    return Detector(net, model=config.model, class_names=list(data.classes), category_ids=data.category_ids,
                    input_size=size, postprocess=post)


def train_detector(config: TrainConfig, data: TrainingData | Callable[[TrainConfig], TrainingData] | None = None,
                   *, plot="text", log: bool = True) -> TrainedRun:
    """Train a detector as ``config`` says (see the module docstring); DDP under ``torchrun``.

    Args:
        config: the run; ``checkpoint`` ``None`` writes none.
        data: the data, or a function of the config that opens it (called in
            every process, rank 0 first); ``None``: the preset's
            (:func:`open_preset_data`).
        plot: :func:`d2lssd.train_ssd`'s (``"text"``: a line per epoch;
            ``"auto"``: a live figure in a notebook; ``None``: nothing).
        log: print the data, device and model lines (rank 0).

    Returns:
        a :class:`TrainedRun`.

    Raises:
        ValueError: ``resume`` without ``checkpoint``; batch size 1 with
            ``bn="train"`` (except DDP on CUDA, where SyncBatchNorm normalizes
            over all processes); what the data, the model and
            :func:`d2lssd.train_ssd` raise.
    """
    if config.resume and config.checkpoint is None:
        raise ValueError("resume needs a checkpoint path")
    with distributed_context(config.device) as info:
        device, world = info.device, info.world_size
        say = print if (log and info.is_main) else (lambda *a, **k: None)
        if info.distributed and not info.is_main:
            torch.distributed.barrier()  # rank 0 finds, downloads or generates the data first
        if data is None:
            opened = open_preset_data(config)
        else:
            opened = data(config) if callable(data) else data
        if info.distributed and info.is_main:
            torch.distributed.barrier()
        train, val = _subset(opened.train, config.num_train), _subset(opened.val, config.num_val)
        say(f"data: {opened.description or opened.kind}", flush=True)
        say(f"{len(train)} training images, {len(val) if val is not None else 0} validation; classes: "
            f"{', '.join(opened.classes)}; device: {describe_device(device)}; processes: {world}", flush=True)
        detector = _build_detector(config, opened, train, say, quiet_warnings=not info.is_main)
        note = getattr(detector.net, "weights_note", None)
        if note:
            say(f"backbone: {note}", flush=True)
        on_cuda = device.type == "cuda"
        if config.bn == "train" and config.batch_size == 1 and not (info.distributed and world > 1 and on_cuda):
            raise ValueError("batch size 1 (per process) needs --bn frozen: BatchNorm in training mode cannot "
                             "normalize the model's 1x1 feature map over a single image")
        amp = {"auto": on_cuda, "on": True, "off": False}[config.amp]
        channels_last = {"auto": on_cuda, "on": True, "off": False}[config.channels_last]
        net = detector.net.to(device)
        if channels_last:
            net.to(memory_format=torch.channels_last)
        model = net
        if info.distributed:
            if on_cuda and config.bn == "train":
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if on_cuda else None)
        torch.manual_seed(config.seed + 1000 * info.rank)  # different augmentations per process
        loader, val_loader = detection_loaders(train, val, config.batch_size, seed=config.seed, rank=info.rank,
                                               world_size=world, workers=config.workers,
                                               drop_single_last=config.bn == "train")
        steps = None if config.lr_schedule == "constant" else max(config.epochs * len(loader), 1)
        optimizer, scheduler = make_optimizer(model, config.optimizer, config.lr, config.weight_decay,
                                              total_steps=steps, warmup=config.warmup)

        checkpoint = config.checkpoint
        validated = val_loader is not None
        folder = None
        if config.report and checkpoint and info.is_main:
            folder = RunFolder(run_folder(checkpoint), opened.classes, check=True)
            folder.start(config.to_dict(), opened.description, train, detector)
            say(f"run folder: {shown(folder.folder)}" + (" (TensorBoard logs in tensorboard/)" if folder.has_tensorboard
                                                  else ""), flush=True)

        def on_epoch(m, record, history):
            r = evaluate_detector(detector, val_loader)  # detector.net is m's module: the weights just trained
            out = {"val_AP50": float(r["AP50"]), "val_AP": float(r["AP"])}
            out.update({f"val_AP50_{name}": ap for name, ap in r["per_class"].items()})
            return out

        started = time.monotonic()

        def stop(history):
            if folder is not None:
                folder.epoch(history)
            if config.patience and validated and len(history):
                aps = history["val_AP50"]
                best = max(range(len(aps)), key=lambda i: (aps[i], -i))  # the first best epoch
                if len(aps) - 1 - best >= config.patience:
                    return (f"early stopping: validation AP50 has not improved for {config.patience} epochs "
                            f"(best {aps[best]:.4f} at epoch {best + 1})")
            if config.time_budget and (time.monotonic() - started) / 60 >= config.time_budget:
                return f"time budget of {config.time_budget:g} minutes reached after epoch {len(history)}"
            return None

        history = train_ssd(model, loader, val_loader, num_epochs=config.epochs, optimizer=optimizer,
                            lr_scheduler=scheduler, device=device, amp=amp, channels_last=channels_last,
                            loss_fn=loss_function(config), checkpoint_path=checkpoint, resume=config.resume,
                            progress=config.progress and info.is_main, plot=plot if log else None,
                            epoch_callback=on_epoch if validated else None,
                            best_checkpoint_path=best_path(checkpoint) if validated and checkpoint else None,
                            checkpoint_extra={"detector": detector.spec, "config": config.to_dict(),
                                              "data": opened.kind}, stop=stop)
        if "stopped" in history.meta:
            say(history.meta["stopped"], flush=True)
        history.meta.update(data=opened.kind, world_size=world)
        if info.distributed:
            torch.distributed.barrier()  # rank 0 has written the checkpoints
        if checkpoint:
            say(f"checkpoint: {shown(checkpoint)}"
                + (f" (best by val AP50: {shown(best_path(checkpoint))})" if validated else ""),
                flush=True)
        if folder is not None:
            folder.epoch(history)  # also after a resumed run with nothing left to train
            best = best_path(checkpoint)
            final = load_detector(best, device) if validated and Path(best).is_file() else detector
            folder.finish(history, final, val_loader)
            say(f"run folder: {shown(folder.folder)} ({', '.join(sorted(p.name for p in folder.folder.iterdir()))})",
                flush=True)
        detector.net.eval()
        return TrainedRun(detector, history, opened, config)
