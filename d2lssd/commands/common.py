"""What ``d2lssd train``, ``evaluate`` and ``convert`` share: the data options and opening the data.

The data is one of: a COCO file and its image folder (``--coco FILE --images
DIR``), a Pascal VOC folder (``--voc DIR``, in any layout of
:func:`d2lssd.data.voc_layout`; ``--image-set NAME`` reads only the images
listed in ``ImageSets/Main/NAME.txt``) or a YOLO data set (``--yolo
PATH``: an Ultralytics dataset YAML, or a folder with ``images/`` and
``labels/``; ``--yolo-split NAME`` picks a split). The validation data of
``d2lssd train`` has the same options with ``--val-`` in front.

One folder, two splits: a YAML given to ``--yolo`` is read twice by ``d2lssd
train``: its ``train`` split for training and, when no ``--val-*`` option is
given (neither ``--val-coco``, ``--val-voc``, ``--val-yolo``,
``--val-image-set`` nor ``--val-split``), its ``val`` split for validation
(:func:`open_dataset` with ``prefix="val_"``); likewise ``--voc DIR --image-set
train --val-image-set val`` trains on ``DIR``'s ``train`` list and validates
on its ``val`` list (a ``--val-voc`` folder, when given, instead), and
``--yolo data.yaml --val-yolo-split test`` validates on the YAML's ``test``.
Two image sets of one VOC folder that share an image, or one YOLO split for
both, are refused: validating on training images measures nothing. A split
option without the data it picks from is an error
(:func:`check_split_options`), never ignored.

The model, its input convention and its classes travel in the checkpoint as
a :class:`d2lssd.Detector` (:func:`d2lssd.load_detector`); the models to
choose from are :data:`d2lssd.models.registry.MODELS`.

Source: ours; the data readers are :class:`d2lssd.data.CocoDataset`,
:class:`d2lssd.data.VOCDataset` (pycocotools and torchvision's readers) and
:class:`d2lssd.data.YOLODataset`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..data.coco import CocoDataset
from ..data.voc import VOCDataset, voc_image_names, voc_image_set_file
from ..data.yolo import YOLODataset, yolo_splits
from ..engine.config import DROP_BAD_HELP

__all__ = ["add_data_arguments", "check_split_options", "open_dataset"]


def add_data_arguments(parser: argparse.ArgumentParser, prefix: str = "", drop_bad: bool = True) -> None:
    """Add ``--{prefix}coco FILE --{prefix}images DIR``, ``--{prefix}voc DIR [--{prefix}image-set NAME]``,
    ``--{prefix}yolo PATH [--{prefix}yolo-split NAME]`` (and, without a prefix, ``--drop-bad``).

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
                        help=f"Pascal VOC folder of the {what}data: Annotations/ and JPEGImages/, annotations/ and "
                        "images/ (any case), or XML files beside the photos (LabelImg, Roboflow)")
    parser.add_argument(f"--{prefix}image-set", metavar="NAME",
                        help=("with --val-voc, or without it with --voc: validate on the images listed in that "
                              "folder's ImageSets/Main/NAME.txt (e.g. val; --image-set names the training list)"
                              if prefix else "with --voc: read only the images listed in ImageSets/Main/NAME.txt "
                              "(e.g. train, trainval, test; default every XML file)"))
    parser.add_argument(f"--{prefix}yolo", metavar="PATH",
                        help=f"YOLO {what}data: an Ultralytics dataset YAML (path, train, val, names) or a "
                        "folder with images/ and labels/ (and classes.txt or data.yaml for the names)"
                        + ("" if prefix else "; d2lssd train validates on a YAML's val split when no --val-* "
                           "option is given"))
    split_default = "val" if prefix else "train; a folder: every image under images/"
    parser.add_argument(f"--{prefix}yolo-split", metavar="NAME",
                        help=f"with --{prefix}yolo{', or without it with --yolo' if prefix else ''}: the YAML's "
                        f"split to read (default {split_default}), or images/NAME/ of a folder")
    if not prefix and drop_bad:
        parser.add_argument("--drop-bad", action="store_true", help=DROP_BAD_HELP)


def open_dataset(args, prefix: str = "", transforms=None, classes=None, required: bool = True,
                 drop_bad: bool | None = None, yolo_split: str | None = None):
    """The data set the options name, or ``None`` when none is named and ``required`` is False.

    Args:
        args: parsed options of :func:`add_data_arguments` (``coco``,
            ``images``, ``voc``, ``image_set``, ``yolo``, ``yolo_split`` with
            ``prefix`` in front, ``drop_bad``).
        prefix: ``""`` or ``"val_"`` (the attribute prefix of the options).
            With ``"val_"`` and no validation source given (no ``val_coco``,
            ``val_voc`` nor ``val_yolo``): ``val_image_set`` given, the
            training ``voc`` folder's list of that name (``--voc DIR --image-set
            train --val-image-set val``); ``val_yolo_split`` given, that split
            of the training ``yolo`` data; else, without a ``val_split``
            attribute that is set, a dataset YAML given as ``yolo`` (training
            data) that names a ``val`` split gives that split: ``d2lssd train
            --yolo data.yaml`` validates on the YAML's ``val``, as Ultralytics does.
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
            without ``--images``, ``--image-set`` without a VOC folder,
            ``--yolo-split`` without ``--yolo``, an image set without its file
            (the message names the option, the file and the image sets there
            are), validation and training image sets of one folder that share
            images, and what the readers raise (a data set with problems, a
            split the YAML does not name).
        FileNotFoundError: a named file or folder that does not exist.
    """
    coco, images, voc, yolo = (getattr(args, f"{prefix}{k}", None) for k in ("coco", "images", "voc", "yolo"))
    image_set, split = (getattr(args, f"{prefix}{k}", None) for k in ("image_set", "yolo_split"))
    opt = f"--{prefix.replace('_', '-')}"
    if drop_bad is None:
        drop_bad = getattr(args, "drop_bad", False)
    errors = "drop" if drop_bad else "raise"
    named = [k for k, v in (("coco", coco), ("voc", voc), ("yolo", yolo)) if v is not None]
    if not named:
        check_split_options(args, prefix)
        if prefix == "val_" and image_set is not None:
            return _image_set_validation(args, transforms, classes, errors)
        if prefix == "val_" and split is not None:
            return _yolo_split_validation(args, transforms, classes, errors)
        if prefix == "val_":
            val = _yaml_validation(args, transforms, classes, errors)
            if val is not None:
                return val
        if required:
            raise ValueError(f"give the data with {opt}coco FILE {opt}images DIR, {opt}voc DIR or {opt}yolo PATH")
        return None
    if len(named) > 1:
        raise ValueError(f"give one of {opt}coco, {opt}voc and {opt}yolo, not {' and '.join(opt + k for k in named)}")
    check_split_options(args, prefix)
    if coco is not None:
        if images is None:
            raise ValueError(f"{opt}coco needs {opt}images DIR (the folder of its images)")
        if not Path(coco).is_file():
            raise FileNotFoundError(f"{opt}coco: no file {coco}")
        return CocoDataset(coco, images, transforms=transforms, classes=classes, errors=errors)
    if voc is not None:
        if not Path(voc).is_dir():
            raise FileNotFoundError(f"{opt}voc: no folder {voc}")
        if prefix == "val_":
            _check_disjoint(args, voc, image_set)
        return _open_voc(voc, image_set, f"{opt}image-set", transforms, classes, errors)
    if not Path(yolo).exists():
        raise FileNotFoundError(f"{opt}yolo: no file or folder {yolo}")
    split = split or yolo_split
    if split is None and prefix == "val_" and yolo_splits(yolo) != [None]:
        split = "val"
    return YOLODataset(yolo, split=split, classes=classes, transforms=transforms, errors=errors)


def check_split_options(args, prefix: str = "") -> None:
    """Refuse a split option given without the data it picks from.

    ``--image-set`` needs ``--voc``, ``--yolo-split`` needs ``--yolo``;
    ``--val-image-set`` needs ``--val-voc`` or ``--voc`` (the training folder's
    other list), ``--val-yolo-split`` needs ``--val-yolo`` or ``--yolo``.
    :func:`open_dataset` calls it; ``d2lssd train`` calls it before reading any
    data, so that such an option is never silently ignored (a preset's own
    data included).

    Args:
        args: parsed options of :func:`add_data_arguments`.
        prefix: ``""`` or ``"val_"``.

    Raises:
        ValueError: the first such option, named with its value and what it needs.
    """
    opt = f"--{prefix.replace('_', '-')}"
    for pick, source, what in (("image_set", "voc", "DIR"), ("yolo_split", "yolo", "PATH")):
        value = getattr(args, f"{prefix}{pick}", None)
        if value is None or getattr(args, f"{prefix}{source}", None) is not None:
            continue
        if prefix == "val_" and getattr(args, source, None) is not None and \
                not any(getattr(args, f"val_{k}", None) is not None for k in ("coco", "voc", "yolo")):
            continue  # another split of the training data's folder / YAML
        other = [f"{opt}{k}" for k in ("coco", "voc", "yolo") if k != source and getattr(args, f"{prefix}{k}", None)]
        needs = f"{opt}{source} {what}" + (f", or --{source} {what} to validate on another split of the training "
                                           f"data" if prefix else "")
        raise ValueError(f"{opt}{pick.replace('_', '-')} {value} needs {needs}"
                         + (f"; it does not apply to {other[0]}" if other else ""))


def _open_voc(voc, image_set, option: str, transforms, classes, errors) -> VOCDataset:
    """``VOCDataset(voc, image_set)``; a missing image set is a ValueError that names ``option``."""
    if image_set is not None:
        voc_image_set_file(voc, image_set, option)
    return VOCDataset(voc, image_set=image_set, classes=classes, transforms=transforms, errors=errors)


def _check_disjoint(args, val_voc, val_set) -> None:
    """ValueError when validation images of a VOC folder are among the training images of the same folder."""
    voc, train_set = getattr(args, "voc", None), getattr(args, "image_set", None)
    if voc is None or not Path(voc).is_dir() or not os.path.samefile(voc, val_voc):
        return
    for option, name in (("--image-set", train_set), ("--val-image-set", val_set)):
        if name is not None:
            voc_image_set_file(voc, name, option)
    train_names = set(voc_image_names(voc, train_set))
    val_names = voc_image_names(voc, val_set)
    shared = [n for n in val_names if n in train_names]
    if shared:
        train = f"--image-set {train_set}" if train_set else "every XML file of --voc (no --image-set given)"
        val = f"--val-image-set {val_set}" if val_set else "every XML file of --val-voc (no --val-image-set given)"
        raise ValueError(f"{val} and {train} share {len(shared)} of {len(val_names)} images (e.g. "
                         f"{', '.join(shared[:3])}): validating on training images measures nothing; give image "
                         f"sets without common images (e.g. --image-set train --val-image-set val)")


def _image_set_validation(args, transforms, classes, errors):
    """``--val-image-set NAME`` without ``--val-voc``: that list of the training ``--voc`` folder."""
    voc, name = args.voc, args.val_image_set
    if not Path(voc).is_dir():
        raise FileNotFoundError(f"--voc: no folder {voc}")
    _check_disjoint(args, voc, name)
    return _open_voc(voc, name, "--val-image-set", transforms, classes, errors)


def _yolo_split_validation(args, transforms, classes, errors):
    """``--val-yolo-split NAME`` without ``--val-yolo``: that split of the training ``--yolo`` data."""
    yolo, name = args.yolo, args.val_yolo_split
    if not Path(yolo).exists():
        raise FileNotFoundError(f"--yolo: no file or folder {yolo}")
    train = getattr(args, "yolo_split", None) or ("train" if yolo_splits(yolo) != [None] else None)
    if train is None or train == name:
        what = ("the training split" if train else
                f"among the training images (every image under images/ of {yolo}, no --yolo-split given)")
        raise ValueError(f"--val-yolo-split {name} is {what}: validating on training images measures nothing; "
                         "give two different splits (e.g. --yolo-split train --val-yolo-split val)")
    return YOLODataset(yolo, split=name, classes=classes, transforms=transforms, errors=errors)


def _yaml_validation(args, transforms, classes, errors):
    """The ``val`` split of the training ``--yolo`` YAML when no validation option is given, else ``None``."""
    yolo = getattr(args, "yolo", None)
    if yolo is None or getattr(args, "val_split", None) or not Path(yolo).exists():
        return None
    if getattr(args, "yolo_split", None) == "val" or "val" not in yolo_splits(yolo):
        return None  # a folder (no YAML), a YAML without val, or training on val itself
    return YOLODataset(yolo, split="val", classes=classes, transforms=transforms, errors=errors)
