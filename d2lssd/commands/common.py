"""What ``d2lssd train``, ``evaluate`` and ``predict`` share: data options, the detector spec, loading.

A checkpoint written by ``d2lssd train`` is a :func:`d2lssd.save_checkpoint`
file whose extra entry ``"detector"`` is the *spec* of the model::

    {"model": "tinyssd" | "resnet34", "classes": ["banana", "person"],
     "category_ids": [2, 5],            # COCO ids of the classes (None for VOC)
     "size": 256,                      # square input side in pixels
     "sizes": [[...], ...], "ratios": [[...], ...],   # anchors per level
     "score_threshold": 0.5, "nms_threshold": 0.45}

so :func:`load_detector` rebuilds the model without the training data.

Source: ours; the data readers are :class:`d2lssd.data.CocoDataset` and
:class:`d2lssd.data.VOCDataset` (pycocotools and torchvision's readers).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from ..data.coco import CocoDataset
from ..data.voc import VOCDataset
from ..device import try_gpu
from ..engine.config import DROP_BAD_HELP
from ..models import SSDResNet34, TinySSD
from ..train import load_checkpoint, read_checkpoint

__all__ = ["MODELS", "DEFAULT_SIZES", "add_data_arguments", "open_dataset", "build_detector", "load_detector"]

#: The models ``--model`` chooses from.
MODELS = {"tinyssd": TinySSD, "resnet34": SSDResNet34}
#: Their default input side in pixels (d2l's 256 for TinySSD, 300 for the ResNet-34 SSD).
DEFAULT_SIZES = {"tinyssd": 256, "resnet34": 300}


def add_data_arguments(parser: argparse.ArgumentParser, prefix: str = "", drop_bad: bool = True) -> None:
    """Add ``--{prefix}coco FILE --{prefix}images DIR`` and ``--{prefix}voc DIR`` (and, without a prefix, ``--drop-bad``).

    Args:
        parser: the command's parser.
        prefix: ``""`` for the training data, ``"val-"`` for the validation data.
        drop_bad: add ``--drop-bad`` (without a prefix); ``d2lssd train``
            has it from :class:`d2lssd.engine.TrainConfig` instead.

    None of them is required by argparse: :func:`open_dataset` checks that
    exactly one of COCO and VOC is given, so its error names both.
    """
    what = "validation " if prefix else ""
    parser.add_argument(f"--{prefix}coco", metavar="FILE", help=f"COCO detection JSON of the {what}data")
    parser.add_argument(f"--{prefix}images", metavar="DIR",
                        help=f"folder the {what}COCO file's image file names are relative to")
    parser.add_argument(f"--{prefix}voc", metavar="DIR",
                        help=f"Pascal VOC folder of the {what}data (Annotations/, JPEGImages/)")
    if not prefix and drop_bad:
        parser.add_argument("--drop-bad", action="store_true", help=DROP_BAD_HELP)


def open_dataset(args, prefix: str = "", transforms=None, classes=None, required: bool = True,
                 drop_bad: bool | None = None):
    """The data set the options name, or ``None`` when none is named and ``required`` is False.

    Args:
        args: parsed options of :func:`add_data_arguments` (``coco``,
            ``images``, ``voc`` with ``prefix`` in front, ``drop_bad``).
        prefix: ``""`` or ``"val_"`` (the attribute prefix of the options).
        transforms: the samples' transform (e.g. :class:`d2lssd.transforms.SSDTrainTransform`).
        classes: the class names in label order (the training set's, for a
            validation set or a checkpoint); default the file's.
        required: raise when no data is named.
        drop_bad: leave out what the checker reports instead of raising;
            ``None``: ``args.drop_bad`` (False without it).

    Returns:
        a :class:`d2lssd.data.CocoDataset` or :class:`d2lssd.data.VOCDataset`
        (samples as those classes document: uint8 image, pixel corner boxes)
        or ``None``.

    Raises:
        ValueError: both or neither of COCO and VOC, ``--coco`` without
            ``--images``, and what the readers raise (a data set with problems).
    """
    coco, images, voc = (getattr(args, f"{prefix}{k}", None) for k in ("coco", "images", "voc"))
    opt = f"--{prefix}"
    if coco is None and voc is None:
        if required:
            raise ValueError(f"give the data with {opt}coco FILE {opt}images DIR or with {opt}voc DIR")
        return None
    if coco is not None and voc is not None:
        raise ValueError(f"give {opt}coco or {opt}voc, not both")
    if drop_bad is None:
        drop_bad = getattr(args, "drop_bad", False)
    errors = "drop" if drop_bad else "raise"
    if coco is not None:
        if images is None:
            raise ValueError(f"{opt}coco needs {opt}images DIR (the folder of its images)")
        if not Path(coco).is_file():
            raise FileNotFoundError(f"{opt}coco: no file {coco}")
        return CocoDataset(coco, images, transforms=transforms, classes=classes, errors=errors)
    if not Path(voc).is_dir():
        raise FileNotFoundError(f"{opt}voc: no folder {voc}")
    return VOCDataset(voc, classes=classes, transforms=transforms, errors=errors)


def build_detector(spec: dict, pretrained: bool = False) -> nn.Module:
    """A fresh model for ``spec`` (see the module docstring); ``pretrained`` only for ``resnet34``.

    Returns:
        a :class:`d2lssd.TinySSD` or :class:`d2lssd.SSDResNet34` with
        ``len(spec["classes"])`` classes and the spec's anchors (``None``: the
        model's defaults), random weights unless ``pretrained``.

    Raises:
        ValueError: an unknown model or a spec without classes.
    """
    if spec.get("model") not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}, got {spec.get('model')!r}")
    if not spec.get("classes"):
        raise ValueError("the detector spec has no classes")
    kwargs = dict(sizes=spec.get("sizes"), ratios=spec.get("ratios"))
    if spec["model"] == "resnet34":
        kwargs["pretrained"] = pretrained
    return MODELS[spec["model"]](len(spec["classes"]), **kwargs)


def load_detector(checkpoint, device=None) -> tuple[nn.Module, dict]:
    """The model of a ``d2lssd train`` checkpoint, in eval mode on ``device``, and its spec.

    Args:
        checkpoint: path of a checkpoint written by ``d2lssd train``.
        device: default :func:`d2lssd.try_gpu`.

    Returns:
        ``(net, spec)``: the model with the trained weights and the detector
        spec (a dict, see the module docstring).

    Raises:
        FileNotFoundError: no file. ValueError: not a checkpoint of ``d2lssd train``.
    """
    path = Path(checkpoint)
    state = read_checkpoint(path)
    if not isinstance(state.get("detector"), dict):
        raise ValueError(f"{path} is not a checkpoint of d2lssd train (no detector spec)")
    spec = state["detector"]
    net = build_detector(spec)
    load_checkpoint(path, net, map_location="cpu")
    return net.to(torch.device(device) if device is not None else try_gpu()).eval(), spec
