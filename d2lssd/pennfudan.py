"""The Penn-Fudan project: train, evaluate and run the ResNet-34 SSD, from Python or the command line.

Python API (what the chapter uses)::

    cfg = d2lssd.pennfudan.make_config("cpu")          # or "full" on a GPU
    history = d2lssd.pennfudan.train(cfg, checkpoint="runs/pf.pt")
    net, cfg = d2lssd.pennfudan.load_model("runs/pf.best.pt")
    result = d2lssd.pennfudan.evaluate(net, cfg)       # AP50, COCO AP, PR curve
    dets = d2lssd.pennfudan.detect(net, [image], cfg)  # boxes in pixels of each image

Command line (:mod:`d2lssd.pennfudan_cli`; also installed as ``d2lssd-pennfudan``)::

    python -m d2lssd.pennfudan train --schedule cpu --checkpoint runs/pf.pt
    python -m d2lssd.pennfudan evaluate --checkpoint runs/pf.best.pt
    python -m d2lssd.pennfudan predict --checkpoint runs/pf.best.pt photo.png --out preds/
    torchrun --nproc_per_node=2 -m d2lssd.pennfudan train ...   # DistributedDataParallel

Box scaling (:func:`d2lssd.boxes.scale_boxes_to_pixels`) and drawing
(:func:`d2lssd.photos.draw_detections`) live with the geometry and the
photos; ``d2lssd.pennfudan.scale_boxes_to_pixels`` and ``draw_detections``
still name them.

Conventions: detections are float tensors ``(K, 6)`` with rows ``(class,
score, xmin, ymin, xmax, ymax)``, class 0 = pedestrian (background
excluded), score = softmax probability; the model and
:func:`d2lssd.predict` use normalized corner coordinates, :func:`detect`
returns **pixels** of the original image (corner format, half-open as the
data module's boxes, clipped to the image).

Distributed training (``torchrun``): when the environment variables
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` that ``torchrun`` sets are present,
:func:`train` joins a process group (backend ``nccl`` on CUDA, ``gloo`` on
CPU), puts each process on ``cuda:LOCAL_RANK`` (or the CPU), wraps the model
in ``DistributedDataParallel``, shards the training set with a
``DistributedSampler`` (``set_epoch`` every epoch, by :func:`d2lssd.train_ssd`),
adds the loss and metric sums of all processes (``all_reduce``), lets rank 0
alone validate, print and write checkpoints, and destroys the group at the
end. ``--batch-size`` is per process (as torchvision's reference scripts):
the global batch is ``batch_size * WORLD_SIZE``. BatchNorm: ``bn="train"``
(default) uses each process's batch statistics, converted to
``SyncBatchNorm`` under DDP on CUDA (one set of statistics over the global
batch, as a single process would compute); ``SyncBatchNorm`` has no CPU
implementation, so on CPU each process normalizes its own sub-batch.
``bn="frozen"`` keeps every BatchNorm layer in eval mode (running statistics
neither used from the batch nor updated; the affine weights still learn), as
detection fine-tuning commonly does with small per-GPU batches: then one and
several processes compute the same function, which the tests use to check
DDP against a single process. The SSD loss normalizes by the positives of
each process's sub-batch (as torchvision's SSD), so with ``loss_normalize=
"batch"`` DDP's averaged gradient is close to, not equal to, the single
process one; ``"image"`` makes them equal.

Source: torchvision ``references/detection`` (``train.py``,
``utils.init_distributed_mode``: the shape of a trainer that runs alone or
under ``torchrun``); PyTorch's DDP tutorial; Liu et al., "SSD: Single Shot
MultiBox Detector" (ECCV 2016) for the loss and inference defaults
(NMS 0.45, top-k).
"""

from __future__ import annotations

import importlib
import math
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from .boxes import scale_boxes_to_pixels
from .data.common import DataSource, read_marker, shown
from .data.pennfudan import PennFudanDataset, obtain_pennfudan
from .detector import Detector, PostProcess, load_detector
from .device import describe_device, try_gpu
from .engine.cache import cache_path
from .engine.checkpoint import best_path
from .engine.data import detection_loaders
from .engine.distributed import distributed_context, unwrap_model
from .engine.schedule import make_optimizer
from .losses import MultiBoxLoss
from .models import SSDResNet34
from .photos import draw_detections
from .transforms import SSDEvalTransform, SSDTrainTransform
from .train import evaluate_ap, read_checkpoint, train_ssd

__all__ = ["SCHEDULES", "make_config", "build_model", "make_detector", "load_model", "make_loaders", "train", "evaluate",
           "detect", "scale_boxes_to_pixels", "draw_detections", "freeze_batchnorm", "best_path",
           "cached_checkpoint", "main"]

#: Names that live elsewhere and are still reachable here: ``scale_boxes_to_pixels``
#: (:mod:`d2lssd.boxes`) and ``draw_detections`` (:mod:`d2lssd.photos`) are imported
#: above; the command line's ``main`` and ``build_parser`` (:mod:`d2lssd.pennfudan_cli`,
#: which imports this module) are loaded on first use by :func:`__getattr__`.
_COMMAND_LINE = ("main", "build_parser")

#: Training schedules. ``"cpu"``: the chapter's schedule on a CPU and in CI,
#: 16 epochs of the 120 training images in batches of 8 (240 steps), validated
#: on all 50 held-out images after every epoch: about 6 minutes of training on
#: 2 cores (about 5 images/s). From a random backbone (no ImageNet weights
#: offline) on the generated data, 12 epochs of it reached validation AP50
#: 0.74 and AP 0.32 in 277 s (seed 0; AP50 0.25 / 0.54 / 0.63 / 0.73 after
#: 3 / 5 / 8 / 11 epochs). ``"full"``: the GPU schedule (120 epochs, batch
#: 16, AdamW lr 1e-3 with 5% linear warm-up then cosine decay, mixed
#: precision and channels_last on CUDA).
SCHEDULES = {
    "cpu": dict(epochs=16, batch_size=8, num_train=None, num_val=None, lr=1e-3, weight_decay=1e-4, warmup=0.1),
    "full": dict(epochs=120, batch_size=16, num_train=None, num_val=None, lr=1e-3, weight_decay=1e-4,
                 warmup=0.05),
}

_DEFAULTS = dict(size=300, optimizer="adamw", bn="train", pretrained=True, loss_normalize="batch",
                 score_threshold=0.5, nms_threshold=0.45, top_k=20, seed=0, source="auto", data=None,
                 workers=0, augment=True, amp=None, channels_last=None, num_classes=1, val_split=50)

#: Keys of a config that describe the model (stored in checkpoints; what :func:`load_model` rebuilds).
_MODEL_KEYS = ("size", "num_classes", "bn")


def make_config(schedule: str = "cpu", **overrides) -> dict:
    """A training/inference configuration: a schedule of :data:`SCHEDULES` plus defaults and overrides.

    Keys: ``epochs``, ``batch_size`` (per process), ``num_train`` /
    ``num_val`` (use only the first that many images of the split, ``None``:
    all), ``lr``, ``weight_decay``, ``warmup`` (share of the steps with linear
    warm-up before the cosine decay; 0: cosine only), ``optimizer``
    (``"adamw"`` or ``"sgd"``), ``size`` (input side in pixels, >= 257),
    ``bn`` (``"train"`` or ``"frozen"``, see the module docstring),
    ``pretrained`` (try ImageNet weights), ``loss_normalize`` (``"batch"`` or
    ``"image"``, of :class:`d2lssd.MultiBoxLoss`), ``score_threshold`` (0.5),
    ``nms_threshold`` (0.45), ``top_k`` (20), ``seed``, ``source`` (``"auto"``,
    ``"real"``, ``"generated"``), ``data`` (folder, default the cache),
    ``workers``, ``augment``, ``amp`` / ``channels_last`` (``None``: on CUDA
    only), ``num_classes`` (1), ``val_split`` (validation images of the
    seeded split, 50: 120 / 50 for the 170 images), ``schedule``.

    Raises:
        ValueError: an unknown schedule or key, or a bad value.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {sorted(SCHEDULES)}, got {schedule!r}")
    cfg = {**_DEFAULTS, **SCHEDULES[schedule], "schedule": schedule}
    unknown = sorted(set(overrides) - set(cfg))
    if unknown:
        raise ValueError(f"unknown config key(s) {unknown}; known: {sorted(cfg)}")
    cfg.update({k: v for k, v in overrides.items() if v is not None or k in ("num_train", "num_val", "data")})
    _check_config(cfg)
    return cfg


def _check_config(cfg: dict) -> None:
    def positive_int(name, allow_none=False):
        v = cfg[name]
        if allow_none and v is None:
            return
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")

    for name in ("batch_size", "num_classes", "top_k", "val_split"):
        positive_int(name)
    for name in ("num_train", "num_val"):
        positive_int(name, allow_none=True)
    if isinstance(cfg["epochs"], bool) or not isinstance(cfg["epochs"], int) or cfg["epochs"] < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {cfg['epochs']!r}")
    if not isinstance(cfg["size"], int) or cfg["size"] < SSDResNet34.MIN_SIZE:
        raise ValueError(f"size must be an integer >= {SSDResNet34.MIN_SIZE}, got {cfg['size']!r}")
    if not (isinstance(cfg["lr"], (int, float)) and cfg["lr"] > 0 and math.isfinite(cfg["lr"])):
        raise ValueError(f"lr must be a positive number, got {cfg['lr']!r}")
    if not (0.0 <= cfg["warmup"] < 1.0):
        raise ValueError(f"warmup must be in [0, 1), got {cfg['warmup']!r}")
    for name in ("score_threshold", "nms_threshold"):
        if not (0.0 <= cfg[name] <= 1.0):
            raise ValueError(f"{name} must be in [0, 1], got {cfg[name]!r}")
    choices = {"optimizer": ("adamw", "sgd"), "bn": ("train", "frozen"), "loss_normalize": ("batch", "image"),
               "source": ("auto", "real", "generated")}
    for name, allowed in choices.items():
        if cfg[name] not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {cfg[name]!r}")
    if isinstance(cfg["workers"], bool) or not isinstance(cfg["workers"], int) or cfg["workers"] < 0:
        raise ValueError(f"workers must be a non-negative integer, got {cfg['workers']!r}")


# --------------------------------------------------------------------------- model


def freeze_batchnorm(net: nn.Module) -> nn.Module:
    """Keep every BatchNorm layer of ``net`` in eval mode, even after ``net.train()``.

    The layers normalize with their running statistics and do not update
    them; their affine weight and bias still get gradients. The state dict is
    unchanged (plain ``BatchNorm2d`` layers), so checkpoints load either way.
    Implemented with a forward pre-hook per layer. Returns ``net``.

    Source: the "frozen BatchNorm" of detection fine-tuning (torchvision's
    ``FrozenBatchNorm2d`` also freezes the affine parameters; this does not).
    """
    def _eval(module, args):
        module.training = False

    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.register_forward_pre_hook(_eval)
    return net


def build_model(cfg: dict) -> nn.Module:
    """A fresh :class:`d2lssd.SSDResNet34` for ``cfg`` (``num_classes``, ``pretrained``, ``bn``).

    With ``cfg["pretrained"]`` the ImageNet backbone is tried; if it cannot be
    downloaded a ``UserWarning`` says so and the backbone is random (the
    model's ``weights_note`` says which).
    """
    net = SSDResNet34(num_classes=cfg["num_classes"], pretrained=cfg["pretrained"])
    if cfg["bn"] == "frozen":
        freeze_batchnorm(net)
    return net


def make_detector(net: nn.Module, cfg: dict) -> Detector:
    """The :class:`d2lssd.Detector` of a Penn-Fudan model: class ``pedestrian``, ``cfg``'s size and thresholds.

    The post-processing is the paper's (score ``cfg["score_threshold"]``,
    NMS ``cfg["nms_threshold"]``, ``cfg["top_k"]`` detections per image); the
    input convention is the registry's for ``resnet34`` ([0, 1]).
    """
    names = ["pedestrian"] if cfg["num_classes"] == 1 else [f"class{i}" for i in range(cfg["num_classes"])]
    return Detector(net, model="resnet34", class_names=names, input_size=cfg["size"],
                    postprocess=PostProcess(score_threshold=cfg["score_threshold"], nms_threshold=cfg["nms_threshold"],
                                            top_k=cfg["top_k"]))


def load_model(checkpoint, device=None, **overrides) -> tuple[nn.Module, dict]:
    """The model of a checkpoint written by :func:`train`, and the config it was trained with.

    The model is :func:`d2lssd.load_detector`'s network (the checkpoint
    carries the detector); the config is the run's (``"pennfudan_config"``).

    Args:
        checkpoint: path of a checkpoint (the last one or the ``.best.pt`` one).
        device: where to put the model (default :func:`d2lssd.try_gpu`).
        **overrides: config entries to change (e.g. ``score_threshold``).

    Returns:
        ``(net, cfg)``: the model in eval mode with the trained weights (no
        download) and the config it was trained with (plus the overrides).

    Raises:
        FileNotFoundError: no file at ``checkpoint``.
        ValueError: not a d2lssd checkpoint, or not one of this project.
    """
    path = Path(checkpoint)
    state = read_checkpoint(path)
    if "pennfudan_config" not in state:
        raise ValueError(f"{path} is not a Penn-Fudan checkpoint of d2lssd.pennfudan (no pennfudan_config)")
    cfg = make_config(state["pennfudan_config"].get("schedule", "cpu"),
                      **{k: v for k, v in state["pennfudan_config"].items() if k != "schedule"})
    cfg.update(overrides)
    _check_config(cfg)
    return load_detector(path, device).net, cfg


# --------------------------------------------------------------------------- data


def _find_data(cfg: dict):
    """The data of ``cfg``: ``data`` itself when it is a Penn-Fudan folder (has ``PNGImages/``), else
    :func:`d2lssd.obtain_pennfudan` under it (download or generation). Says real or generated."""
    root = Path(cfg["data"]) if cfg["data"] else None
    if root is not None and (root / "PNGImages").is_dir():
        kind = "generated" if read_marker(root) is not None else "real"
        if cfg["source"] not in ("auto", kind):
            raise ValueError(f"--data {root} holds {kind} data but source={cfg['source']!r} was asked for")
        return DataSource(kind, root, f"{kind} Penn-Fudan data in {root} (given with --data)")
    if root is not None and root.exists() and not root.is_dir():
        raise ValueError(f"data must be a folder, got the file {root}")
    return obtain_pennfudan(root, cfg["source"], cfg["seed"])


def make_loaders(cfg: dict, rank: int = 0, world_size: int = 1, quiet: bool = False):
    """Training and validation loaders for ``cfg``, sharded for DDP.

    The loaders are the engine's (:func:`d2lssd.engine.data.detection_loaders`:
    a seeded ``DistributedSampler`` also with one process, so the global
    order of the images is the same for any number of processes).

    Args:
        cfg: see :func:`make_config` (``data``: a Penn-Fudan folder with
            ``PNGImages/`` used as it is, or a folder to download or generate
            into; ``source``, ``seed``, ``val_split``,
            ``size``, ``augment``, ``batch_size``, ``workers``,
            ``num_train``, ``num_val``).
        rank, world_size: of this process.
        quiet: do not print which data is used.

    With ``bn="train"`` a last training batch of a single image is dropped
    (BatchNorm cannot normalize the model's 1x1 feature map over one value).

    Returns:
        ``(train_iter, val_iter, data_source)``; batches are ``(images float32
        (B, 3, size, size) in [0, 1], labels float32 (B, G, 5))`` normalized.

    Raises:
        What :func:`d2lssd.obtain_pennfudan` raises.
    """
    data_source = _find_data(cfg)
    if not quiet:
        print(f"data: {data_source.kind} — {data_source.description}", flush=True)
    train_tf = SSDTrainTransform(size=cfg["size"]) if cfg["augment"] else SSDEvalTransform(size=cfg["size"])
    split = dict(num_val=cfg["val_split"], seed=cfg["seed"])
    train_ds = PennFudanDataset(data_source.root, "train", train_tf, **split)
    val_ds = PennFudanDataset(data_source.root, "val", SSDEvalTransform(size=cfg["size"]), **split)
    if cfg["num_train"] is not None:
        train_ds = torch.utils.data.Subset(train_ds, range(min(cfg["num_train"], len(train_ds))))
    if cfg["num_val"] is not None:
        val_ds = torch.utils.data.Subset(val_ds, range(min(cfg["num_val"], len(val_ds))))
    train_iter, val_iter = detection_loaders(train_ds, val_ds, cfg["batch_size"], seed=cfg["seed"], rank=rank,
                                             world_size=world_size, workers=cfg["workers"],
                                             drop_single_last=cfg["bn"] == "train")
    return train_iter, val_iter, data_source


# --------------------------------------------------------------------------- training


def _make_optimizer(cfg: dict, net: nn.Module, total_steps: int):
    """AdamW (or SGD with momentum 0.9) and the engine's per-step schedule (:func:`d2lssd.engine.lr_factor`)."""
    name = "momentum" if cfg["optimizer"] == "sgd" else "adamw"
    return make_optimizer(net, name, cfg["lr"], cfg["weight_decay"], total_steps=max(int(total_steps), 1),
                          warmup=float(cfg["warmup"]))


def cached_checkpoint(cfg: dict, device=None, cache_dir=None) -> Path:
    """A checkpoint path in the cache, the same for the same run: ``train(cfg, path, resume=True)`` trains once.

    The name is a digest of everything that decides the trained weights: the
    config (without ``workers``), the kind of data :func:`make_loaders` will
    find for it (real or generated; the data may be looked up or generated
    here), the device type, and :func:`d2lssd.engine.code_fingerprint` (the
    package's sources and the torch version). A second run with the same
    settings and code finds the finished checkpoint and trains nothing (the
    chapter is executed twice in CI: by ``pytest --nbval`` and by the book
    build); any change to the package gives a new name. An interrupted run
    resumes where its last checkpoint ended.

    Args:
        cfg: from :func:`make_config`.
        device: where it will train (default :func:`d2lssd.try_gpu`).
        cache_dir: default ``<d2lssd cache>/runs``.

    Returns:
        ``cache_dir / "pennfudan-<schedule>-<16 hex digits>.pt"``; the best
        checkpoint goes next to it (:func:`best_path`).
    """
    _check_config(cfg)
    device = torch.device(device) if device is not None else try_gpu()
    kind = _find_data(cfg).kind
    settings = dict(cfg={k: v for k, v in _storable(cfg).items() if k != "workers"}, data=kind,
                    device=device.type)
    return cache_path(f"pennfudan-{cfg['schedule']}", settings, cache_dir)


def train(cfg: dict, checkpoint=None, resume: bool = False, device=None, progress: bool = True,
          log: bool = True):
    """Train the ResNet-34 SSD on Penn-Fudan with :func:`d2lssd.train_ssd`; DDP under ``torchrun``.

    Loss :class:`d2lssd.MultiBoxLoss` (hard negative mining 3:1, smooth L1,
    normalized by the positives); AdamW with linear warm-up and cosine decay
    stepped per batch; AMP and ``channels_last`` on CUDA only. After every
    epoch the validation AP50 and COCO AP are computed (rank 0) and stored in
    the history as ``val_AP50`` / ``val_AP``; the checkpoint ``checkpoint``
    is written every epoch and ``best_path(checkpoint)`` whenever ``val_AP50``
    improves (both atomically, rank 0 only), each holding the config.

    Args:
        cfg: from :func:`make_config`.
        checkpoint: path of the last-epoch checkpoint (``None``: none written).
        resume: continue from ``checkpoint`` if it exists (model, optimizer,
            schedule, history; the config stored there wins for the model keys).
        device: default :func:`d2lssd.try_gpu`; under torchrun any CUDA
            device becomes ``cuda:LOCAL_RANK`` (one GPU per process).
        progress: tqdm progress bar (rank 0).
        log: print the data, device and one line per epoch (rank 0).

    Returns:
        ``(net, history)``: the trained (unwrapped) model and its
        :class:`d2lssd.History` (complete on rank 0).

    Raises:
        ValueError: ``resume`` without ``checkpoint``, a bad config, a
            batch size of 1 with ``bn="train"`` (except DDP on CUDA, where
            SyncBatchNorm normalizes over all processes).
        FileNotFoundError, RuntimeError: from the data and the checkpoint.
    """
    import torch.distributed as dist

    _check_config(cfg)
    if resume and checkpoint is None:
        raise ValueError("resume needs a checkpoint path")
    # under torchrun: one process per device (cuda:LOCAL_RANK), the group joined here and left at the end
    with distributed_context(device) as info:
        rank, world, distributed, device = info.rank, info.world_size, info.distributed, info.device
        if resume and checkpoint is not None and Path(checkpoint).is_file():
            state = read_checkpoint(checkpoint)
            saved = (state.get("pennfudan_config") or {}) if isinstance(state, dict) else {}
            cfg = {**cfg, **{k: saved[k] for k in _MODEL_KEYS if k in saved}}
        is_main = rank == 0
        if distributed and not is_main:
            dist.barrier()  # rank 0 finds/downloads/generates the data first
        train_iter, val_iter, data_source = make_loaders(cfg, rank, world, quiet=not (log and is_main))
        if distributed and is_main:
            dist.barrier()
        torch.manual_seed(cfg["seed"])  # the same initial weights on every rank (DDP broadcasts rank 0's too)
        with warnings.catch_warnings():
            if not is_main:
                warnings.simplefilter("ignore")
            net = build_model(cfg)
        if log and is_main:
            print(f"device: {describe_device(device)}; processes: {world}; backbone: {net.weights_note}",
                  flush=True)
        torch.manual_seed(cfg["seed"] + 1000 * rank)  # different augmentations per rank
        on_cuda = device.type == "cuda"
        if cfg["bn"] == "train" and cfg["batch_size"] == 1 and not (distributed and world > 1 and on_cuda):
            raise ValueError("batch size 1 (per process) needs --bn frozen: BatchNorm in training mode cannot "
                             "normalize the model's 1x1 feature map over a single image")
        amp = on_cuda if cfg["amp"] is None else bool(cfg["amp"]) and on_cuda
        channels_last = on_cuda if cfg["channels_last"] is None else bool(cfg["channels_last"])
        net.to(device)
        if channels_last:
            net.to(memory_format=torch.channels_last)
        model = net
        if distributed:
            if on_cuda and cfg["bn"] == "train":
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if on_cuda else None)
        steps = cfg["epochs"] * len(train_iter)
        optimizer, scheduler = _make_optimizer(cfg, model, max(steps, 1))
        loss_fn = MultiBoxLoss(cls_loss="hard_negative", box_loss="smooth_l1", normalize=cfg["loss_normalize"])

        def on_epoch(m, record, history):
            r = evaluate(m, cfg, val_iter, device=device)
            return {"val_AP50": r["AP50"], "val_AP": r["AP"]}

        history = train_ssd(model, train_iter, val_iter, num_epochs=cfg["epochs"], optimizer=optimizer,
                            device=device, amp=amp, checkpoint_path=checkpoint, resume=resume,
                            progress=progress and is_main, plot="text" if log else None, loss_fn=loss_fn,
                            lr_scheduler=scheduler, channels_last=channels_last, epoch_callback=on_epoch,
                            best_checkpoint_path=best_path(checkpoint) if checkpoint is not None else None,
                            checkpoint_extra={"detector": make_detector(unwrap_model(model), cfg).spec,
                                              "pennfudan_config": _storable(cfg), "data_kind": data_source.kind})
        history.meta.update(data=data_source.kind, world_size=world)
        if log and is_main and checkpoint is not None:
            print(f"checkpoints: {shown(checkpoint)} (last epoch), {shown(best_path(checkpoint))} (best val AP50)",
                  flush=True)
        if distributed:
            dist.barrier()
        return unwrap_model(model), history


def _storable(cfg: dict) -> dict:
    """The config as plain Python data (``torch.load(weights_only=True)`` can read it)."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in cfg.items()}


# --------------------------------------------------------------------------- inference and evaluation


@torch.no_grad()
def detect(net: nn.Module, images, cfg: dict | None = None, device=None, batch_size: int = 8) -> list[torch.Tensor]:
    """Pedestrian detections on images of any size, boxes in pixels of each original image.

    :meth:`d2lssd.Detector.detect` of :func:`make_detector` (``net`` with
    ``cfg``'s size and thresholds): EXIF orientation applied, each image
    resized to ``cfg["size"]`` squared (as in evaluation), the SSD paper's
    inference (every class above the score threshold, per-class NMS, top-k),
    boxes scaled back to the image.

    Args:
        net: the trained model.
        images: a list of image paths, PIL images or tensors ``(3, H, W)``
            (uint8 0..255, or float in [0, 1]); sizes may differ.
        cfg: ``size``, ``score_threshold`` (0.5), ``nms_threshold`` (0.45),
            ``top_k`` (20); default :func:`make_config`'s.
        device: default: the model's.
        batch_size: images per forward pass.

    Returns:
        a list of float32 CPU tensors ``(K_i, 6)``: ``(class, score, xmin,
        ymin, xmax, ymax)``, boxes in pixels of image ``i`` (clipped to it),
        sorted by descending score, at most ``top_k`` rows.

    Raises:
        FileNotFoundError: a path that is not a file. ValueError: an image
        that cannot be read or has the wrong shape.
    """
    cfg = cfg or make_config()
    detector = make_detector(net, cfg)
    if device is not None:
        detector.to(device)
    return detector.detect(list(images), batch_size=batch_size)


def evaluate(net: nn.Module, cfg: dict, val_iter=None, device=None) -> dict:
    """AP50, COCO AP@[.5:.95] and the precision-recall curve on the held-out split.

    Uses :func:`d2lssd.evaluate_ap` with the SSD paper's inference
    (``semantics="paper"``, :func:`d2lssd.ssd_postprocess`: score threshold
    0.01, 400 candidates per class, per-class NMS, top-k 200 per image: AP
    needs the low-scoring detections too; 101-point interpolation, COCO's
    protocol). AP is unchanged by scaling both detections and ground
    truth to pixels, so it is computed in normalized coordinates.

    Args:
        net: the model (an unwrapped one, not ``DistributedDataParallel``).
        cfg: see :func:`make_config` (data, split seed, ``num_val``, size).
        val_iter: the validation loader (default: made from ``cfg``).
        device: default: the model's.

    Returns:
        what :func:`d2lssd.mean_average_precision` returns (``AP50``,
        ``AP75``, ``AP`` floats, ``recall`` ``(101,)``, ``precision``
        ``(T, K, 101)``, ``num_images``, ``num_targets``, ``num_detections``),
        plus ``pr_curve`` (float tensor ``(101,)``: ``precision[0, 0]``, the
        interpolated precision at IoU 0.5 of the pedestrian class, to plot
        against ``recall``; -1 without ground truth) and ``detections`` /
        ``targets`` per image.
    """
    if val_iter is None:
        _, val_iter, _ = make_loaders(cfg, quiet=True)
    res = evaluate_ap(unwrap_model(net), val_iter, device=device, semantics="paper")
    prec = res["precision"]
    res["pr_curve"] = prec[0, 0] if prec.dim() == 3 and prec.shape[1] > 0 else torch.full((101,), -1.0)
    return res


def __getattr__(name: str):
    """``main`` and ``build_parser`` of :mod:`d2lssd.pennfudan_cli`, imported on first use (PEP 562)."""
    if name not in _COMMAND_LINE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("d2lssd.pennfudan_cli"), name)
    globals()[name] = value
    return value


if __name__ == "__main__":  # python -m d2lssd.pennfudan ..., torchrun -m d2lssd.pennfudan ...
    from .pennfudan_cli import main as _main  # here, not at the top: the command line imports this module

    sys.exit(_main())
