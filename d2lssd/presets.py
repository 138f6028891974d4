"""Named training presets: the course's runs as settings of the one trainer.

A *preset* is a name for a set of :class:`d2lssd.engine.TrainConfig`
fields, with the data it trains on and its *schedules* (how long it runs:
``"cpu"``, short enough for a CPU and CI; ``"full"``, a GPU's; ``"short"``
where a chapter compares several runs). It is what ``d2lssd train --preset
NAME [--schedule S]`` runs, and what the chapters call from Python
(:func:`d2lssd.pennfudan.train`, :func:`d2lssd.train_recipe`): one
configuration, one trainer (:func:`d2lssd.trainer.train_detector`)::

    d2lssd train --preset pennfudan --checkpoint runs/pf.pt           # the project, offline data if need be
    d2lssd train --preset bananas-focal --schedule short --checkpoint runs/focal.pt
    d2lssd train --preset pennfudan --voc my_voc/ --checkpoint runs/mine.pt   # the settings on your data

An option given on the command line (or a keyword of :func:`preset_config`)
wins over the preset's value, which wins over the field's default.

The presets (:data:`PRESETS`):

* ``pennfudan``: the Penn-Fudan project, the ResNet-34 SSD (ImageNet
  backbone when it can be downloaded) on the pedestrians, 120 / 50 seeded
  split, AdamW with warm-up and cosine, the SSD augmentation, the paper's
  loss, the model's own anchors; its detector keeps detections scoring 0.5
  or more, at most 20 per image.
* ``bananas-d2l``, ``bananas-ssd``, ``bananas-focal``: the three recipes the
  loss chapters compare on d2l's banana data with TinySSD: d2l's (cross-entropy
  over all anchors + L1, plain SGD at lr 0.2, batch 32), the SSD paper's (hard
  negative mining 3:1 + smooth L1, AdamW at 1e-3 with a cosine decay) and
  focal loss (gamma 2, alpha 0.25, same optimizer). No augmentation, d2l's
  anchors, d2l's 256 px input in [0, 255].
* ``tinyssd``: d2l.ai §14.7's run of TinySSD (what ``bananas-d2l`` is), with
  the TinySSD chapter's short CPU schedule.
* ``scratch``: training from scratch on a few hundred of your own photos
  (no data of its own: give ``--coco`` / ``--voc`` / ``--yolo``): the
  ``tinyssd-bn`` model (TinySSD with normalized heads,
  :mod:`d2lssd.models.scratch`), fitted anchors, the SSD augmentation,
  AdamW with warm-up and cosine decay, and a longer schedule (40 epochs on a
  CPU); each change measured on its own in the chapter "Training from
  scratch, and small objects" (``notebooks/scratch.md``), whose tables give
  the reasons. For small objects add ``--model scratchssd`` (a stride-4
  first level as well).

Source: ours; the shape follows torchvision's ``references/detection``
(``presets.py`` and the per-model commands of its README) and Ultralytics'
``cfg`` files (defaults overlaid by the user's options).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from .engine.config import TrainConfig

__all__ = ["Preset", "PRESETS", "preset_settings", "preset_config", "pick_schedule"]


@dataclass(frozen=True)
class Preset:
    """One named preset: its data, settings and schedules.

    Attributes:
        name: the key of :data:`PRESETS` (``--preset NAME``).
        description: one line for ``--help`` and the chapters.
        data: the data it trains on when none is given: ``"pennfudan"``,
            ``"bananas"``, or ``None`` (the command's ``--coco`` / ``--voc``).
        settings: :class:`~d2lssd.engine.TrainConfig` fields (the model, the
            optimizer, the loss ...).
        schedules: schedule name -> fields (epochs, images, batch size ...)
            laid over ``settings``.
    """

    name: str
    description: str
    data: str | None
    settings: Mapping[str, Any] = field(repr=False)
    schedules: Mapping[str, Mapping[str, Any]] = field(repr=False)


_BANANAS = dict(model="tinyssd", size=256, fit_anchors=False, augment=False, channels_last="on", top_k=200)
_D2L = dict(_BANANAS, loss="d2l", optimizer="sgd", lr=0.2, weight_decay=5e-4, lr_schedule="constant")
_ADAM = dict(_BANANAS, optimizer="adamw", lr=1e-3, weight_decay=0.0, lr_schedule="cosine", warmup=0.0)
#: How long a loss recipe runs: ``full`` is d2l's budget (20 epochs of the
#: 1000 images; a GPU's); ``cpu`` the losses chapter's (4 epochs of 1000
#: images in batches of 8: 500 steps, about 5 minutes on 2 cores); ``short``
#: the focal chapter's three-recipe comparison (2 epochs of 500 images). The
#: Adam recipes' batch of 8 on a CPU was chosen on a tuning set (generated
#: bananas, seed 1, 200 images), not on the validation set: at lr 1e-3, 4
#: epochs of 1000 images, tuning AP50 after epochs 1 / 2 / 3 / 4 was 0.26 /
#: 0.88 / 0.96 / 0.96 at batch 32, 0.69 / 0.95 / 0.98 / 0.99 at batch 16 and
#: 0.90 / 0.97 / 1.00 / 1.00 at batch 8: at a fixed number of images, four
#: times more updates matter more than the noisier gradients. d2l's recipe
#: keeps d2l's batch of 32 in every schedule, so that it runs as d2l wrote it.
_LOSS_SCHEDULES = {
    "full": dict(epochs=20, num_train=1000, batch_size=32),
    "cpu": dict(epochs=4, num_train=1000, batch_size=8),
    "short": dict(epochs=2, num_train=500, batch_size=8),
}

#: name -> :class:`Preset`.
PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("pennfudan", "the Penn-Fudan pedestrian project: the ResNet-34 SSD, 300 px, 120/50 split", "pennfudan",
           dict(model="resnet34", size=300, pretrained=True, fit_anchors=False, bn="train", optimizer="adamw",
                lr=1e-3, weight_decay=1e-4, lr_schedule="cosine", loss="ssd", augment=True, val_split=50,
                score_threshold=0.5, nms_threshold=0.45, top_k=20),
           # cpu: 16 epochs of 120 images in batches of 8 (240 steps), about 6 minutes on 2 cores; from a random
           # backbone (offline) on the generated data 12 epochs of it reached validation AP50 0.74, AP 0.32
           {"cpu": dict(epochs=16, batch_size=8, warmup=0.1),
            "full": dict(epochs=120, batch_size=16, warmup=0.05)}),
    Preset("bananas-d2l", "d2l's recipe on the banana data: TinySSD, cross-entropy + L1, SGD lr 0.2, batch 32",
           "bananas", _D2L, {k: dict(v, batch_size=32) for k, v in _LOSS_SCHEDULES.items()}),
    Preset("bananas-ssd", "the SSD paper's loss on the banana data: TinySSD, hard negative mining 3:1 + "
           "smooth L1, AdamW 1e-3 with cosine decay", "bananas", dict(_ADAM, loss="ssd"), _LOSS_SCHEDULES),
    Preset("bananas-focal", "focal loss on the banana data: TinySSD, focal (gamma 2, alpha 0.25) + smooth L1, "
           "AdamW 1e-3 with cosine decay", "bananas", dict(_ADAM, loss="focal"), _LOSS_SCHEDULES),
    # scratch: ScratchDet's findings that fit a CPU (BN in the heads; a root that keeps resolution: TinySSD's
    # stem already does) and the schedule length, the largest lever from scratch (own-data ablation: 10 -> 20 ->
    # 40 epochs gave AP50 0.81 -> 0.96 -> 0.985); the stride-4 level (scratchssd) only where objects are small:
    # on the own-data photos it cost AP50. See notebooks/scratch.md.
    Preset("scratch", "from scratch on your own photos: TinySSD with normalized heads, fitted anchors, "
           "augmentation, a long schedule (give --coco/--voc/--yolo; --model scratchssd for small objects)", None,
           dict(model="tinyssd-bn", size=256, fit_anchors=True, augment=True, optimizer="adamw", lr=2e-3,
                weight_decay=1e-4, lr_schedule="cosine", warmup=0.05, loss="ssd"),
           {"cpu": dict(epochs=40, batch_size=8), "full": dict(epochs=120, batch_size=16)}),
    # d2l.ai §14.7.3's run; on a CPU the TinySSD chapter's short schedule: 4 epochs of the first 320 images
    # (40 steps of 32, about 3 minutes on 2 idle cores)
    Preset("tinyssd", "d2l.ai's TinySSD run on the banana data (what bananas-d2l is), with the TinySSD "
           "chapter's short CPU schedule", "bananas", _D2L,
           {"full": dict(epochs=20, num_train=1000, batch_size=32),
            "cpu": dict(epochs=4, num_train=320, batch_size=32)}),
)}


def pick_schedule(device, preset: str | None = None) -> str:
    """The schedule to run on ``device``: ``"full"`` on CUDA, else ``"cpu"``.

    The environment variable ``D2LSSD_SCHEDULE`` overrides the choice (the
    chapters' way to force one); with ``preset`` it must be one of that
    preset's schedules, without one ``"full"`` or ``"cpu"``.

    Raises:
        ValueError: ``D2LSSD_SCHEDULE`` names no such schedule; an unknown preset.
    """
    names = sorted(_preset(preset).schedules) if preset is not None else ["cpu", "full"]
    forced = os.environ.get("D2LSSD_SCHEDULE")
    if forced:
        if forced not in names:
            raise ValueError(f"D2LSSD_SCHEDULE must be one of {names}, got {forced!r}")
        return forced
    return "full" if torch.device(device).type == "cuda" else "cpu"


def _preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(sorted(PRESETS))}, got {name!r}")
    return PRESETS[name]


def preset_settings(name: str, schedule: str | None = None, device=None) -> dict[str, Any]:
    """The :class:`~d2lssd.engine.TrainConfig` fields of preset ``name`` with one of its schedules.

    Args:
        name: a key of :data:`PRESETS`.
        schedule: one of the preset's schedules; ``None``: :func:`pick_schedule`
            of ``device`` (default: :func:`d2lssd.try_gpu`'s).
        device: where it will run (only to pick the schedule).

    Returns:
        a dict of fields, ``preset`` and ``schedule`` included (no checkpoint).

    Raises:
        ValueError: an unknown preset or schedule.
    """
    preset = _preset(name)
    if schedule is None:
        from .device import try_gpu

        schedule = pick_schedule(device if device is not None else try_gpu(), name)
    if schedule not in preset.schedules:
        raise ValueError(f"schedule of preset {name} must be one of {', '.join(sorted(preset.schedules))}, "
                         f"got {schedule!r}")
    return {**preset.settings, **preset.schedules[schedule], "preset": name, "schedule": schedule}


def preset_config(name: str, schedule: str | None = None, **overrides) -> TrainConfig:
    """The :class:`~d2lssd.engine.TrainConfig` of a preset and schedule, with ``overrides`` laid over it.

    Without ``schedule`` it is :func:`pick_schedule` of ``overrides["device"]``
    (default: :func:`d2lssd.try_gpu`'s).

    >>> preset_config("pennfudan", "cpu").epochs
    16
    >>> preset_config("bananas-d2l", "cpu", seed=3).batch_size
    32

    Raises:
        ValueError: an unknown preset, schedule or field, or a bad value.
    """
    known = {f for f in TrainConfig.__dataclass_fields__}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown TrainConfig field(s) {', '.join(unknown)}")
    if overrides.get("device") is not None:
        overrides["device"] = str(overrides["device"])
    return TrainConfig(**{**preset_settings(name, schedule, overrides.get("device")), **overrides})
