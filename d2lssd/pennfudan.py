"""The Penn-Fudan project: the ``pennfudan`` preset of the one trainer, as the chapter calls it.

Python (what the chapter uses)::

    config = d2lssd.pennfudan.make_config("cpu")                  # or "full" on a GPU: a TrainConfig
    run = d2lssd.pennfudan.train(config, checkpoint="runs/pf.pt")  # run.detector, run.history
    best = d2lssd.load_detector("runs/pf.best.pt")                # a d2lssd.Detector
    result = d2lssd.pennfudan.evaluate(best, config)              # AP50, COCO AP, PR curve
    dets = best.detect(["street.jpg"])                            # boxes in pixels of each image

Command line: the same run is ``d2lssd train --preset pennfudan``::

    d2lssd train --preset pennfudan --checkpoint runs/pf.pt        # "full" on a GPU, "cpu" on a CPU
    d2lssd train --preset pennfudan --checkpoint runs/pf.pt --resume
    d2lssd evaluate --checkpoint runs/pf.best.pt --json runs/eval.json   # its own validation split
    d2lssd predict --checkpoint runs/pf.best.pt street.jpg --out predictions/
    torchrun --nproc_per_node=4 -m d2lssd train --preset pennfudan --checkpoint runs/pf.pt   # DDP

Everything here is a thin call: the settings are
:data:`d2lssd.presets.PRESETS` ``["pennfudan"]`` (ResNet-34 SSD at 300 px,
120 / 50 seeded split, AdamW with warm-up and cosine, the SSD augmentation
and loss; the detector keeps scores of 0.5 and more, NMS 0.45, 20 per
image), the training is :func:`d2lssd.trainer.train_detector` (DDP under
``torchrun``, BatchNorm ``train`` or ``frozen``, AMP and ``channels_last``
on CUDA), the model is a :class:`d2lssd.Detector` and the data
:func:`d2lssd.obtain_pennfudan` (the real data when it can be downloaded,
else generated look-alike data; the run says which).

Conventions: detections are float tensors ``(K, 6)`` with rows ``(class,
score, xmin, ymin, xmax, ymax)``, class 0 = pedestrian (background
excluded); :meth:`d2lssd.Detector.detect` returns **pixels** of the
original image.

Source: torchvision ``references/detection`` and its "TorchVision Object
Detection Finetuning Tutorial" (Penn-Fudan); Liu et al., "SSD: Single Shot
MultiBox Detector" (ECCV 2016) for the loss and inference defaults.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .detector import Detector, evaluate_detector
from .device import try_gpu
from .engine.cache import cache_path
from .engine.config import TrainConfig
from .engine.data import detection_loaders
from .presets import preset_config
from .trainer import TrainedRun, open_preset_data, preset_data_source, train_detector

__all__ = ["make_config", "make_loaders", "cached_checkpoint", "train", "evaluate"]


def make_config(schedule: str = "cpu", **overrides) -> TrainConfig:
    """The :class:`~d2lssd.engine.TrainConfig` of the ``pennfudan`` preset with ``schedule`` and ``overrides``.

    ``"cpu"``: 16 epochs of the 120 training images in batches of 8 (240
    steps), validated on all 50 held-out images after every epoch, about 6
    minutes of training on 2 cores. ``"full"``: the GPU schedule (120 epochs,
    batch 16). See :data:`d2lssd.presets.PRESETS`.

    Raises:
        ValueError: an unknown schedule or field, or a bad value.
    """
    return preset_config("pennfudan", schedule, **overrides)


def make_loaders(config: TrainConfig, rank: int = 0, world_size: int = 1):
    """``(train_iter, val_iter, data)``: the run's loaders (:func:`d2lssd.engine.data.detection_loaders`).

    Batches are ``(images float32 (B, 3, size, size) in [0, 1], labels
    float32 (B, G, 5))`` normalized, padded with class -1; ``data`` is the
    :class:`d2lssd.trainer.TrainingData` (``kind``, ``description``: which
    data). ``config.num_train`` / ``num_val`` keep the first that many.

    Raises:
        What :func:`d2lssd.trainer.open_preset_data` raises.
    """
    data = open_preset_data(config)
    train, val = data.train, data.val
    if config.num_train is not None:
        train = torch.utils.data.Subset(train, range(min(config.num_train, len(train))))
    if config.num_val is not None:
        val = torch.utils.data.Subset(val, range(min(config.num_val, len(val))))
    train_iter, val_iter = detection_loaders(train, val, config.batch_size, seed=config.seed, rank=rank,
                                             world_size=world_size, workers=config.workers,
                                             drop_single_last=config.bn == "train")
    return train_iter, val_iter, data


#: Fields that do not change the trained weights (left out of :func:`cached_checkpoint`'s digest).
_NOT_THE_WEIGHTS = ("checkpoint", "resume", "workers", "progress", "device")


def cached_checkpoint(config: TrainConfig, device=None, cache_dir=None) -> Path:
    """A checkpoint path in the cache, the same for the same run: ``train(config, path, resume=True)`` trains once.

    The name is a digest of everything that decides the trained weights: the
    config (without where it writes, ``workers``, ``progress``), the kind of
    data the run will find (real or generated; the data may be looked up or
    generated here), the device type, and
    :func:`d2lssd.engine.code_fingerprint` (the package's sources and the
    torch version). A second run with the same settings and code finds the
    finished checkpoint and trains nothing (the chapter is executed twice in
    CI: by ``pytest --nbval`` and by the book build); any change to the
    package gives a new name. An interrupted run resumes where it ended.

    Returns:
        ``cache_dir / "pennfudan-<schedule>-<16 hex digits>.pt"`` (default
        ``<d2lssd cache>/runs``); the best checkpoint goes next to it.
    """
    device = torch.device(device) if device is not None else try_gpu()
    kind = preset_data_source(config).kind
    settings = dict(cfg={k: v for k, v in config.to_dict().items() if k not in _NOT_THE_WEIGHTS}, data=kind,
                    device=device.type)
    return cache_path(f"pennfudan-{config.schedule}", settings, cache_dir)


def train(config: TrainConfig, checkpoint=None, resume: bool = False, device=None, progress: bool = True,
          log: bool = True) -> TrainedRun:
    """Train the Penn-Fudan detector: :func:`d2lssd.trainer.train_detector` of ``config``; DDP under ``torchrun``.

    Args:
        config: from :func:`make_config`.
        checkpoint: the last-epoch checkpoint (the best by validation AP50
            goes next to it, :func:`d2lssd.engine.best_path`); ``None``: none.
        resume: continue from ``checkpoint`` if it exists.
        device: default :func:`d2lssd.try_gpu` (under torchrun with CUDA,
            ``cuda:LOCAL_RANK``).
        progress: a tqdm bar per epoch (rank 0); log: the data, device and
            epoch lines (rank 0).

    Returns:
        a :class:`d2lssd.trainer.TrainedRun` (``detector``, ``history``, ``data``).

    Raises:
        What :func:`d2lssd.trainer.train_detector` raises.
    """
    config = config.replace(checkpoint=str(checkpoint) if checkpoint is not None else None, resume=resume,
                            device=str(device) if device is not None else None, progress=progress)
    return train_detector(config, log=log)


def evaluate(detector: Detector, config: TrainConfig | None = None, val_iter=None) -> dict:
    """AP50, COCO AP@[.5:.95] and the precision-recall curve on the held-out split.

    :func:`d2lssd.detector.evaluate_detector`, the evaluation of ``d2lssd
    evaluate`` and of the trainer's validation: the detector's post-processing
    (the SSD paper's) with scores down to 0.01 and 200 detections per image
    (AP needs the low-scoring detections too), COCO's 101-point interpolation
    on normalized boxes (AP does not change when both sides are scaled).

    Args:
        detector: a :class:`d2lssd.Detector`.
        config: the split (seed, ``val_split``); default :func:`make_config`'s.
        val_iter: the validation loader (default: made from ``config``).

    Returns:
        what :func:`d2lssd.mean_average_precision` returns (``AP50``,
        ``AP75``, ``AP``, ``recall`` ``(101,)``, ``precision`` ``(T, K,
        101)``, counts), plus ``pr_curve`` (float ``(101,)``: the interpolated
        precision at IoU 0.5 of the pedestrian class; -1 without ground
        truth) and ``detections`` / ``targets`` per image.
    """
    if val_iter is None:
        _, val_iter, _ = make_loaders((config or make_config()).replace(num_val=None))
    res = evaluate_detector(detector, val_iter)
    prec = res["precision"]
    res["pr_curve"] = prec[0, 0] if prec.dim() == 3 and prec.shape[1] > 0 else torch.full((101,), -1.0)
    return res
