"""What ``d2lssd train``, ``evaluate`` and ``predict`` share: the data options and opening the data.

The data is one of: a COCO file and its image folder (``--coco FILE --images
DIR``), a Pascal VOC folder (``--voc DIR``) or a YOLO data set (``--yolo
PATH``: an Ultralytics dataset YAML, or a folder with ``images/`` and
``labels/``; ``--yolo-split NAME`` picks a split). A YAML given to ``--yolo``
is read twice by ``d2lssd train``: its ``train`` split for training and, when
no ``--val-*`` option is given (neither ``--val-coco``, ``--val-voc``,
``--val-yolo`` nor ``--val-split``), its ``val`` split for validation
(:func:`open_dataset` with ``prefix="val_"``).

The model, its input convention and its classes travel in the checkpoint as
a :class:`d2lssd.Detector` (:func:`d2lssd.load_detector`); the models to
choose from are :data:`d2lssd.models.registry.MODELS`.

Source: ours; the data readers are :class:`d2lssd.data.CocoDataset`,
:class:`d2lssd.data.VOCDataset` (pycocotools and torchvision's readers) and
:class:`d2lssd.data.YOLODataset`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data.coco import CocoDataset
from ..data.voc import VOCDataset
from ..data.yolo import YOLODataset, yolo_splits
from ..engine.config import DROP_BAD_HELP

__all__ = ["add_data_arguments", "open_dataset"]


def add_data_arguments(parser: argparse.ArgumentParser, prefix: str = "", drop_bad: bool = True) -> None:
    """Add ``--{prefix}coco FILE --{prefix}images DIR``, ``--{prefix}voc DIR``, ``--{prefix}yolo PATH
    [--{prefix}yolo-split NAME]`` (and, without a prefix, ``--drop-bad``).

    Args:
        parser: the command's parser.
        prefix: ``""`` for the training data, ``"val-"`` for the validation data.
        drop_bad: add ``--drop-bad`` (without a prefix); ``d2lssd train``
            has it from :class:`d2lssd.engine.TrainConfig` instead.

    None of them is required by argparse: :func:`open_dataset` checks that
    exactly one of COCO, VOC and YOLO is given, so its error names all three.
    """
    what = "validation " if prefix else ""
    parser.add_argument(f"--{prefix}coco", metavar="FILE", help=f"COCO detection JSON of the {what}data")
    parser.add_argument(f"--{prefix}images", metavar="DIR",
                        help=f"folder the {what}COCO file's image file names are relative to")
    parser.add_argument(f"--{prefix}voc", metavar="DIR",
                        help=f"Pascal VOC folder of the {what}data (Annotations/, JPEGImages/)")
    parser.add_argument(f"--{prefix}yolo", metavar="PATH",
                        help=f"YOLO {what}data: an Ultralytics dataset YAML (path, train, val, names) or a "
                        "folder with images/ and labels/ (and classes.txt or data.yaml for the names)"
                        + ("" if prefix else "; d2lssd train validates on a YAML's val split when no --val-* "
                           "option is given"))
    split_default = "val" if prefix else "train; a folder: every image under images/"
    parser.add_argument(f"--{prefix}yolo-split", metavar="NAME",
                        help=f"with --{prefix}yolo: the YAML's split to read (default {split_default}), or "
                        "images/NAME/ of a folder")
    if not prefix and drop_bad:
        parser.add_argument("--drop-bad", action="store_true", help=DROP_BAD_HELP)


def open_dataset(args, prefix: str = "", transforms=None, classes=None, required: bool = True,
                 drop_bad: bool | None = None, yolo_split: str | None = None):
    """The data set the options name, or ``None`` when none is named and ``required`` is False.

    Args:
        args: parsed options of :func:`add_data_arguments` (``coco``,
            ``images``, ``voc``, ``yolo``, ``yolo_split`` with ``prefix`` in
            front, ``drop_bad``).
        prefix: ``""`` or ``"val_"`` (the attribute prefix of the options).
            With ``"val_"`` and no validation option given (no ``val_coco``,
            ``val_voc``, ``val_yolo``, nor a ``val_split`` attribute that is
            set), a dataset YAML given as ``yolo`` (training data) that names a
            ``val`` split gives that split: ``d2lssd train --yolo data.yaml``
            validates on the YAML's ``val``, as Ultralytics does.
        transforms: the samples' transform (e.g. :class:`d2lssd.transforms.SSDTrainTransform`).
        classes: the class names in label order (the training set's, for a
            validation set or a checkpoint); default the file's.
        required: raise when no data is named.
        drop_bad: leave out what the checker reports instead of raising;
            ``None``: ``args.drop_bad`` (False without it).
        yolo_split: the YOLO split read when ``--{prefix}yolo-split`` is not
            given; ``None``: a YAML's ``train`` (prefix ``""``) or ``val``
            (prefix ``"val_"``), every image of a folder. ``d2lssd evaluate``
            passes ``"val"``.

    Returns:
        a :class:`d2lssd.data.CocoDataset`, :class:`d2lssd.data.VOCDataset` or
        :class:`d2lssd.data.YOLODataset` (samples as those classes document:
        uint8 image, pixel corner boxes) or ``None``.

    Raises:
        ValueError: more than one or none of COCO, VOC and YOLO, ``--coco``
            without ``--images``, and what the readers raise (a data set with
            problems, a split the YAML does not name).
        FileNotFoundError: a named file or folder that does not exist.
    """
    coco, images, voc, yolo = (getattr(args, f"{prefix}{k}", None) for k in ("coco", "images", "voc", "yolo"))
    opt = f"--{prefix.replace('_', '-')}"
    if drop_bad is None:
        drop_bad = getattr(args, "drop_bad", False)
    errors = "drop" if drop_bad else "raise"
    named = [k for k, v in (("coco", coco), ("voc", voc), ("yolo", yolo)) if v is not None]
    if not named:
        if prefix == "val_":
            val = _yaml_validation(args, transforms, classes, errors)
            if val is not None:
                return val
        if required:
            raise ValueError(f"give the data with {opt}coco FILE {opt}images DIR, {opt}voc DIR or {opt}yolo PATH")
        return None
    if len(named) > 1:
        raise ValueError(f"give one of {opt}coco, {opt}voc and {opt}yolo, not {' and '.join(opt + k for k in named)}")
    if coco is not None:
        if images is None:
            raise ValueError(f"{opt}coco needs {opt}images DIR (the folder of its images)")
        if not Path(coco).is_file():
            raise FileNotFoundError(f"{opt}coco: no file {coco}")
        return CocoDataset(coco, images, transforms=transforms, classes=classes, errors=errors)
    if voc is not None:
        if not Path(voc).is_dir():
            raise FileNotFoundError(f"{opt}voc: no folder {voc}")
        return VOCDataset(voc, classes=classes, transforms=transforms, errors=errors)
    if not Path(yolo).exists():
        raise FileNotFoundError(f"{opt}yolo: no file or folder {yolo}")
    split = getattr(args, f"{prefix}yolo_split", None) or yolo_split
    if split is None and prefix == "val_" and yolo_splits(yolo) != [None]:
        split = "val"
    return YOLODataset(yolo, split=split, classes=classes, transforms=transforms, errors=errors)


def _yaml_validation(args, transforms, classes, errors):
    """The ``val`` split of the training ``--yolo`` YAML when no validation option is given, else ``None``."""
    yolo = getattr(args, "yolo", None)
    if yolo is None or getattr(args, "val_split", None) or not Path(yolo).exists():
        return None
    if getattr(args, "yolo_split", None) == "val" or "val" not in yolo_splits(yolo):
        return None  # a folder (no YAML), a YAML without val, or training on val itself
    return YOLODataset(yolo, split="val", classes=classes, transforms=transforms, errors=errors)
