"""``d2lssd convert``: a detection data set from one format to another (COCO, Pascal VOC, YOLO).

::

    d2lssd convert --voc VOCdevkit/VOC2007 --image-set trainval --to yolo --out mine-yolo/
    d2lssd convert --voc labelimg-photos/ --to coco --out mine-coco/     # XML files beside the photos
    d2lssd convert --yolo data.yaml --yolo-split val --to coco --out mine-coco/
    d2lssd convert --coco labels.json --images photos/ --to voc --out mine-voc/ --out-split train

The source is opened by the package's reader (:func:`d2lssd.commands.common.open_dataset`),
so it is checked first (refused with problems unless ``--drop-bad``), and
every image is decoded once (its size; a file that cannot be decoded stops the
conversion). What is written is what the readers read back:

* ``--to coco``: ``OUT/<split>.json`` (``OUT/annotations.json`` without a
  split) and the images in ``OUT/images/[<split>/]``; read it with ``--coco
  OUT/<split>.json --images OUT/images/[<split>/]``. Category ids are the
  source's COCO ids, else ``1 .. q`` in class order; image ids the source's
  COCO ids, else ``1 .. N``; crowd / difficult boxes get ``iscrowd: 1``.
* ``--to voc``: ``OUT/JPEGImages/``, ``OUT/Annotations/<stem>.xml`` (corners
  written **1-based inclusive**, ``(x1 + 1, y1 + 1, x2, y2)`` of the package's
  0-based half-open pixels, the inverse of :class:`d2lssd.data.VOCDataset`),
  and with a split ``OUT/ImageSets/Main/<split>.txt``; crowd boxes become
  ``<difficult>1</difficult>``. A box less than one pixel wide or high has no
  VOC corners (``xmax < xmin``): it is left out and counted. VOC has no class
  list: a VOC folder's classes are the names in its files, sorted.
* ``--to yolo``: ``OUT/images/[<split>/]``, ``OUT/labels/[<split>/]<stem>.txt``
  (``class cx cy w h`` normalized, 10 significant digits; an empty file for an
  image without objects), and ``OUT/data.yaml`` with ``names`` and the split
  (``train: images`` without a split; an existing ``data.yaml`` whose names
  include this data set's gets the split added, with the YAML's class ids, so
  converting ``--out-split train`` and then ``--out-split val`` into one
  folder gives an Ultralytics data set even when the second split has fewer
  classes, as a VOC image set read alone does). YOLO has
  no crowd or difficult flag: those boxes are left out and counted, as
  Ultralytics' own COCO converter does.

The split written defaults to the split read: a YOLO YAML's, or the VOC
``--image-set`` (none otherwise). Any VOC layout is read (``Annotations/`` +
``JPEGImages/``, ``annotations/`` + ``images/``, XML files beside the photos:
:func:`d2lssd.data.voc_layout`); VOC is written in the canonical layout.
Image files are copied byte for byte under their own file names
(which must therefore be unique per split), every file is written atomically
(:func:`d2lssd._io.atomic_write`), and files already in ``OUT`` with the same
names are replaced.

Source: ours; the formats as :mod:`d2lssd.data.coco`, :mod:`d2lssd.data.voc`
and :mod:`d2lssd.data.yolo` describe them.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from pathlib import Path

from .._io import atomic_write
from .common import add_data_arguments, open_dataset

__all__ = ["FORMATS", "ImageRecord", "add_arguments", "run", "dataset_records", "write_as"]

#: The formats ``--to`` accepts.
FORMATS = ("coco", "voc", "yolo")


@dataclass
class ImageRecord:
    """One image of a data set as the writers need it.

    Attributes:
        path: the image file to copy.
        file_name: the name it gets in the output (the source file's name).
        width, height: the decoded image's size in pixels.
        boxes: ``(x1, y1, x2, y2)`` in pixels, 0-based half-open, one per object.
        labels: label ``0 .. q - 1`` of each box.
        crowd_boxes, crowd_labels: COCO ``iscrowd`` / VOC ``difficult`` regions, same formats.
        image_id: the source's COCO image id, or ``None``.
    """

    path: Path
    file_name: str
    width: int
    height: int
    boxes: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    crowd_boxes: list = field(default_factory=list)
    crowd_labels: list = field(default_factory=list)
    image_id: int | None = None


def dataset_records(dataset) -> list[ImageRecord]:
    """The images of a data set of the package, read by its own reader (each image decoded once).

    Args:
        dataset: a :class:`d2lssd.data.CocoDataset`, :class:`~d2lssd.data.VOCDataset` or
            :class:`~d2lssd.data.YOLODataset` without transforms.

    Returns:
        one :class:`ImageRecord` per sample, in the data set's order.

    Raises:
        ValueError: the data set has transforms; an image could not be decoded;
            two images share a file stem (their output names would collide).
    """
    if getattr(dataset, "transforms", None) is not None:
        raise ValueError("dataset_records needs the data set without transforms (its pixels and boxes as read)")
    import torch

    from ..data.coco import CocoDataset

    out = []
    is_coco = isinstance(dataset, CocoDataset)
    for i in range(len(dataset)):
        image, target = dataset[i]
        h, w = (int(v) for v in image.shape[-2:])
        path = Path(dataset._image_path(i))  # the readers' own path of sample i (DetectionDataset)
        boxes = target["boxes"].as_subclass(torch.Tensor).tolist()
        crowd = target["crowd_boxes"].as_subclass(torch.Tensor).tolist()
        out.append(ImageRecord(path, path.name, w, h, boxes, target["labels"].tolist(), crowd,
                               target["crowd_labels"].tolist(),
                               int(target["image_id"]) if is_coco else None))
    skipped = sorted(getattr(dataset, "skipped_images", ()) or ())
    if skipped:
        raise ValueError(f"{len(skipped)} image file(s) cannot be decoded, e.g. {skipped[:3]}: fix or remove them "
                         "(d2lssd check-data lists them) before converting")
    stems: dict = {}
    for r in out:
        stems.setdefault(Path(r.file_name).stem, []).append(str(r.path))
    clash = [paths for paths in stems.values() if len(paths) > 1]
    if clash:
        raise ValueError(f"{len(clash)} file name(s) are used by more than one image, e.g. {clash[0][:3]}: the "
                         "output names images by their file name; rename them or convert each folder separately")
    return out


def _copy(src: Path, dst: Path) -> None:
    """Copy an image file byte for byte, atomically (nothing to do when ``dst`` is ``src``)."""
    if dst.exists() and os.path.samefile(src, dst):
        return
    with open(src, "rb") as f:
        atomic_write(dst, lambda out: shutil.copyfileobj(f, out))


def _text(path: Path, text: str) -> None:
    data = text.encode("utf-8")
    atomic_write(path, lambda f: f.write(data))


def _check_split(split) -> None:
    if split is not None and (not split or "/" in split or "\\" in split or split in (".", "..")):
        raise ValueError(f"split must be a plain name (a folder / file name), got {split!r}")


def _num(v: float) -> str:
    """A coordinate as text: an integer without a point, else 10 significant digits."""
    return str(int(v)) if float(v).is_integer() else f"{v:.10g}"


# --------------------------------------------------------------------------- the three writers


def _write_coco(records, classes, out: Path, split, category_ids) -> dict:
    from ..data.coco import coco_annotation, write_coco

    img_dir = out / "images" / split if split else out / "images"
    ids = list(category_ids) if category_ids and all(c is not None for c in category_ids) else \
        list(range(1, len(classes) + 1))
    images, anns = [], []
    for k, r in enumerate(records, start=1):
        iid = r.image_id if r.image_id is not None else k
        _copy(r.path, img_dir / r.file_name)
        images.append({"id": iid, "file_name": r.file_name, "width": r.width, "height": r.height})
        for boxes, labels, crowd in ((r.boxes, r.labels, 0), (r.crowd_boxes, r.crowd_labels, 1)):
            for box, lab in zip(boxes, labels):
                anns.append(coco_annotation(len(anns) + 1, iid, ids[lab], box, iscrowd=crowd))
    json_path = out / f"{split or 'annotations'}.json"
    write_coco(json_path, images, anns, [{"id": cid, "name": n} for cid, n in zip(ids, classes)],
               info={"description": "written by d2lssd convert"})
    return {"annotations": len(anns), "left_out": 0, "left_out_why": "",
            "read_with": f"--coco {json_path} --images {img_dir}"}


def _write_voc(records, classes, out: Path, split) -> dict:
    left_out, written = 0, 0
    for r in records:
        _copy(r.path, out / "JPEGImages" / r.file_name)
        root = ET.Element("annotation")
        ET.SubElement(root, "folder").text = "JPEGImages"
        ET.SubElement(root, "filename").text = r.file_name
        size = ET.SubElement(root, "size")
        for tag, v in (("width", r.width), ("height", r.height), ("depth", 3)):
            ET.SubElement(size, tag).text = str(v)
        ET.SubElement(root, "segmented").text = "0"
        for boxes, labels, difficult in ((r.boxes, r.labels, 0), (r.crowd_boxes, r.crowd_labels, 1)):
            for (x1, y1, x2, y2), lab in zip(boxes, labels):
                if x2 - x1 < 1 or y2 - y1 < 1:  # VOC's inclusive corners cannot hold it: xmax < xmin
                    left_out += 1
                    continue
                obj = ET.SubElement(root, "object")
                ET.SubElement(obj, "name").text = classes[lab]
                ET.SubElement(obj, "pose").text = "Unspecified"
                ET.SubElement(obj, "truncated").text = "0"
                ET.SubElement(obj, "difficult").text = str(difficult)
                bb = ET.SubElement(obj, "bndbox")
                for tag, v in (("xmin", x1 + 1), ("ymin", y1 + 1), ("xmax", x2), ("ymax", y2)):
                    ET.SubElement(bb, tag).text = _num(v)
                written += 1
        ET.indent(root)
        _text(out / "Annotations" / f"{Path(r.file_name).stem}.xml", ET.tostring(root, encoding="unicode") + "\n")
    if split:
        _text(out / "ImageSets" / "Main" / f"{split}.txt",
              "".join(f"{Path(r.file_name).stem}\n" for r in records))
    return {"annotations": written, "left_out": left_out, "left_out_why": "less than 1 pixel wide or high",
            "read_with": f"--voc {out}" + (f" --image-set {split}" if split else "")}


def _write_yolo(records, classes, out: Path, split) -> dict:
    import yaml

    yaml_path = out / "data.yaml"
    data = {}
    if yaml_path.is_file():
        data = yaml.safe_load(yaml_path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{yaml_path} exists and is not a dataset YAML; convert into another folder")
        have = data.get("names")
        have = list(have.values()) if isinstance(have, dict) else have
        if have is not None and not set(classes) <= set(have):
            raise ValueError(f"{yaml_path} names the classes {list(have)}, this data set {list(classes)}: "
                             "convert into another folder")
        if have is not None:  # a split with fewer classes (a VOC image set names only its own): the YAML's ids
            ids = [list(have).index(c) for c in classes]
            records = [replace(r, labels=[ids[lab] for lab in r.labels],
                               crowd_labels=[ids[lab] for lab in r.crowd_labels]) for r in records]
            classes = list(have)
    sub = Path("images") / split if split else Path("images")
    written = left_out = 0
    for r in records:
        _copy(r.path, out / sub / r.file_name)
        rows = []
        for (x1, y1, x2, y2), lab in zip(r.boxes, r.labels):
            cx, cy = (x1 + x2) / 2 / r.width, (y1 + y2) / 2 / r.height
            w, h = (x2 - x1) / r.width, (y2 - y1) / r.height
            if not all(math.isfinite(v) for v in (cx, cy, w, h)):
                raise ValueError(f"{r.path}: a box that is not finite: {(x1, y1, x2, y2)}")
            rows.append(f"{lab} {cx:.10g} {cy:.10g} {w:.10g} {h:.10g}\n")
        written += len(rows)
        left_out += len(r.crowd_boxes)
        _text(out / "labels" / sub.relative_to("images") / f"{Path(r.file_name).stem}.txt", "".join(rows))
    data["names"] = {k: n for k, n in enumerate(classes)}
    data["nc"] = len(classes)
    data[split or "train"] = sub.as_posix()
    ordered = {k: data[k] for k in ("train", "val", "test") if k in data}
    ordered.update({k: v for k, v in data.items() if k not in ordered})
    _text(yaml_path, "# written by d2lssd convert; paths are relative to this file's folder\n"
          + yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True))
    return {"annotations": written, "left_out": left_out, "left_out_why": "crowd / difficult (YOLO has no flag)",
            "read_with": f"--yolo {yaml_path}" + (f" --yolo-split {split}" if split and split != "train" else "")}


def write_as(records, classes, fmt: str, out, split: str | None = None, category_ids=None) -> dict:
    """Write images and boxes in one of :data:`FORMATS` (see the module docstring for the layouts).

    Args:
        records: :class:`ImageRecord` list (:func:`dataset_records`).
        classes: class names, label ``k`` is ``classes[k]``.
        fmt: ``"coco"``, ``"voc"`` or ``"yolo"``.
        out: the output folder (created).
        split: the split's name in the output (``None``: no split).
        category_ids: COCO ids of the classes (COCO output only; default ``1 .. q``).

    Returns:
        ``{"annotations": boxes written, "left_out": boxes that the format cannot
        hold, "read_with": the data options that read it back}``.

    Raises:
        ValueError: an unknown format or split name, a YOLO ``data.yaml`` in
            ``out`` with other classes, a box that is not finite.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    _check_split(split)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "coco":
        return _write_coco(records, list(classes), out, split, category_ids)
    if fmt == "voc":
        return _write_voc(records, list(classes), out, split)
    return _write_yolo(records, list(classes), out, split)


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``d2lssd convert``: the data options of :func:`~d2lssd.commands.common.add_data_arguments`,
    ``--to``, ``--out`` and ``--out-split``."""
    add_data_arguments(parser)
    parser.add_argument("--to", required=True, choices=FORMATS, help="the format to write")
    parser.add_argument("--out", required=True, metavar="DIR", help="the folder to write into (created; files of "
                        "the same names are replaced)")
    parser.add_argument("--out-split", metavar="NAME", help="the split's name in the output: COCO NAME.json, "
                        "VOC ImageSets/Main/NAME.txt, YOLO images/NAME/ and data.yaml's NAME (default: the "
                        "split read from a YOLO YAML or the VOC --image-set, else none)")


def run(args) -> int:
    """Convert (see the module docstring) and print what was written; returns 0."""
    _check_split(args.out_split)
    dataset = open_dataset(args)
    split = args.out_split
    source = getattr(dataset, "source", None)
    if split is None and source is not None and source.yaml is not None:
        split = source.split
    if split is None and getattr(dataset, "image_set", None) is not None:  # a VOC folder's --image-set
        split = dataset.image_set
    records = dataset_records(dataset)
    r = write_as(records, dataset.classes, args.to, args.out, split, getattr(dataset, "category_ids", None))
    crowd = sum(len(x.crowd_boxes) for x in records)
    left = f"; {r['left_out']} box(es) left out ({r['left_out_why']})" if r["left_out"] else ""
    print(f"wrote {len(records)} images and {r['annotations']} boxes ({crowd} crowd / difficult in the source) of "
          f"{dataset.num_classes} classes to {args.out} as {args.to}{left}", flush=True)
    print(f"read it with: {r['read_with']}", flush=True)
    return 0
