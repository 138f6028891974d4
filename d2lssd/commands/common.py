"""What ``d2lssd train``, ``evaluate`` and ``predict`` share: the data options and opening the data.

The model, its input convention and its classes travel in the checkpoint as
a :class:`d2lssd.Detector` (:func:`d2lssd.load_detector`); the models to
choose from are :data:`d2lssd.models.registry.MODELS`.

Source: ours; the data readers are :class:`d2lssd.data.CocoDataset` and
:class:`d2lssd.data.VOCDataset` (pycocotools and torchvision's readers).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data.coco import CocoDataset
from ..data.voc import VOCDataset
from ..engine.config import DROP_BAD_HELP

__all__ = ["add_data_arguments", "open_dataset"]


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
