"""Pascal VOC XML folders as a detection data set in d2lssd's format.

The layout of the VOC devkit, of CVAT's and VoTT's "Pascal VOC" exports::

    ROOT/
        JPEGImages/<name>.jpg          the images
        Annotations/<name>.xml         one XML file per image
        ImageSets/Main/<split>.txt     optional: image names of a split, one per line

and the layouts labelling tools write (:func:`voc_layout` finds which one a
folder has; ``ImageSets/Main/`` is always ``ROOT``'s):

* ``Annotations/`` beside ``images/``: Label Studio's export; LabelImg with
  "Change Save Dir" (the folder names in any case: ``annotations/``,
  ``JPEGImages/``, ``Images/`` ...);
* the XML files beside the photos in one folder: LabelImg's default (it saves
  ``photo.xml`` next to ``photo.jpg``) and each split folder (``train/``,
  ``valid/``, ``test/``) of Roboflow's "Pascal VOC" export.

An image is named by its XML file's stem; a photo without an XML file is not
read (in a labelling tool's folder it is usually one not labelled yet, not an
image without objects). The image file of ``<name>.xml`` is found in the
image folder as :func:`voc_layout` documents: ``<filename>``, else the file
name of ``<path>``, else ``<name>`` with an image suffix, never a guess
between two files.

An XML file holds ``<size>`` (``<width>``, ``<height>``) and one ``<object>``
per box with ``<name>`` (the class), ``<difficult>`` (0/1) and
``<bndbox>`` ``<xmin> <ymin> <xmax> <ymax>``. VOC's corners are **1-based
and inclusive**: the box covers pixel columns ``xmin .. xmax`` counted from 1,
so a box of the whole ``W x H`` image is ``(1, 1, W, H)``. This reader turns
them into the package's 0-based half-open pixel corners
``(xmin - 1, ymin - 1, xmax, ymax)`` (the whole image is ``(0, 0, W, H)``), as
:func:`d2lssd.data.pennfudan.parse_annotation` does for Penn-Fudan's
PASCAL-style files. (``torchvision.datasets.wrap_dataset_for_transforms_v2``
on ``VOCDetection`` takes the numbers as they are, which shifts every box's
top-left corner by one pixel, and parses them with ``int``, which fails on
the fractional corners some tools write; so the XML is parsed with
torchvision's ``VOCDetection.parse_voc_xml`` (``xml.etree``) and converted
here. ``VOCDetection`` itself only reads the ``VOCdevkit/VOC20XX`` layout.)

**Phone photos.** ``<size>`` and the boxes are those of the image as the
labelling tool showed it: upright, with a photo's EXIF orientation applied
(LabelImg, CVAT and Label Studio all do). The images are read that way
(:mod:`d2lssd.data.images`), so nothing needs turning; :func:`check_voc`
warns (``exif_rotated``) about each such photo and reports a ``<size>``
that is the stored, unturned size as a ``size_mismatch``.

**Difficult objects.** VOC's AP leaves objects marked ``difficult`` out:
detecting one is neither a true nor a false positive. By default
(``difficult="ignore"``) they are handled exactly like COCO's ``iscrowd``
regions: kept apart in ``target["crowd_boxes"]`` / ``target["crowd_labels"]``,
never positives in training, and available to an evaluation that ignores
detections on them. ``difficult="keep"`` makes them ordinary objects;
``difficult="drop"`` removes them altogether.

Source: the Pascal VOC development kit documentation (Everingham et al.,
"The PASCAL Visual Object Classes Challenge"); torchvision
``datasets/voc.py`` (``VOCDetection.parse_voc_xml``); for the other layouts,
LabelImg (``labelImg.py`` saves next to the image unless a save folder is
chosen; ``libs/pascal_voc_io.py`` writes ``<filename>`` and the full ``<path>``),
Label Studio's converter (``convert_to_voc``: ``Annotations/`` + ``images/``,
``<filename>`` without the suffix) and Roboflow's "Pascal VOC" export.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch

from ._detection import DetectionDataset
from .report import (OUTSIDE_TOLERANCE, SMALL_BOX, DataReport, Problem, check_image_file, count_classes,
                     is_number, similar_names)

__all__ = ["ANNOTATION_FOLDERS", "IMAGE_FOLDERS", "VOC_CLASSES", "VOCDataset", "check_voc", "read_voc_annotation",
           "voc_class_names", "voc_image_names", "voc_image_set_file", "voc_image_sets", "voc_layout"]

#: The 20 classes of Pascal VOC 2007/2012, in the devkit's (alphabetical) order.
VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
               "train", "tvmonitor")

_DIFFICULT = ("ignore", "keep", "drop")


#: Folder names (compared in lower case) :func:`voc_layout` takes for the XML files and for the images.
ANNOTATION_FOLDERS = ("annotations",)
IMAGE_FOLDERS = ("jpegimages", "images")


def _subfolders(root: Path, names: Sequence[str]) -> list[Path]:
    """The folders in ``root`` whose name, in lower case, is one of ``names``; sorted."""
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.lower() in names)


def _has(folder: Path, suffixes: Sequence[str]) -> bool:
    """True when ``folder`` holds a file whose suffix, in lower case, is one of ``suffixes``."""
    return any(p.suffix.lower() in suffixes and p.is_file() for p in folder.iterdir())


def _one(found: list[Path], root: Path, what: str) -> Path | None:
    """The single folder of ``found``, ``None`` if empty; ValueError naming them if several."""
    if len(found) > 1:
        raise ValueError(f"{root}: {' and '.join(p.name + '/' for p in found)} could each be the {what} folder; "
                         f"keep one of them")
    return found[0] if found else None


def voc_layout(root) -> tuple[Path, Path]:
    """Where a Pascal VOC folder keeps its XML files and its images: ``(annotations_dir, images_dir)``.

    The rule, first match wins (folder names compared in any case; see the module docstring for the
    tools that write each layout):

    1. ``ROOT/Annotations/``: the XML files are there; the images in
       ``ROOT/JPEGImages/`` or ``ROOT/images/``, else in ``ROOT`` itself, else in
       ``Annotations/`` itself (the first of these that holds image files).
    2. ``.xml`` files in ``ROOT``: the XML files are there; the images beside them
       in ``ROOT``, else (no image file in ``ROOT``) in ``ROOT/JPEGImages/`` or ``ROOT/images/``.

    An image suffix is one of :data:`d2lssd.data.yolo.IMAGE_SUFFIXES` (any
    case); an XML file is ``*.xml``. The image of ``<name>.xml`` is, in
    ``images_dir``: the file named by its ``<filename>``; else the file name
    (last part) of its ``<path>`` (LabelImg writes the full path on the
    labelling machine); else ``<name>`` with an image suffix, when exactly one
    such file exists (Label Studio writes ``<filename>`` without the suffix).
    Otherwise the image is a ``missing_file`` problem that says what was looked for.

    Args:
        root: the folder given as the VOC data (``--voc``).

    Returns:
        ``(annotations_dir, images_dir)``, two :class:`pathlib.Path` (the same
        folder for XML files beside the photos).

    Raises:
        ValueError: ``root`` is not a folder, is not VOC (no ``Annotations/``
            and no ``.xml`` file: the message lists what was looked for and the
            subfolders that are VOC folders, e.g. Roboflow's ``train/``, ``valid/``),
            has no image file where the rule looks, or has two folders that
            could be the same one (``Annotations/`` and ``annotations/``,
            ``JPEGImages/`` and ``images/``).

    Source: ours; the layouts of LabelImg (``labelImg.py``, ``libs/pascal_voc_io.py``),
    Label Studio's converter (``convert_to_voc``), Roboflow's and CVAT's VOC exports.
    """
    root = Path(root)
    if not root.is_dir():
        what = "not a folder" if root.exists() else "no such folder"
        raise ValueError(f"{root} is not a Pascal VOC folder: {what}")
    from .yolo import IMAGE_SUFFIXES

    ann = _one(_subfolders(root, ANNOTATION_FOLDERS), root, "annotation")
    image_dirs = _subfolders(root, IMAGE_FOLDERS)
    looked = "JPEGImages/ or images/ (any case)"
    if ann is not None:
        for folder in ([_one(image_dirs, root, "image")] if image_dirs else []) + [root, ann]:
            if folder is not None and _has(folder, IMAGE_SUFFIXES):
                return ann, folder
        raise ValueError(f"{root} has {ann.name}/ but no image files: looked in {looked}, in {root} and in "
                         f"{ann.name}/ for {', '.join(IMAGE_SUFFIXES)} files")
    if _has(root, (".xml",)):
        if _has(root, IMAGE_SUFFIXES):
            return root, root
        folder = _one(image_dirs, root, "image")
        if folder is not None and _has(folder, IMAGE_SUFFIXES):
            return root, folder
        raise ValueError(f"{root} has .xml files but no image files: looked beside them and in {looked} for "
                         f"{', '.join(IMAGE_SUFFIXES)} files")
    inside = [p.name + "/" for p in sorted(root.iterdir())
              if p.is_dir() and (_has(p, (".xml",)) or _subfolders(p, ANNOTATION_FOLDERS))]
    hint = (f"; {', '.join(inside)} {'is a VOC folder' if len(inside) == 1 else 'are VOC folders'} (e.g. the "
            f"train/, valid/, test/ of a Roboflow export): give one of those" if inside else
            "; images/ and labels/ without XML files are a YOLO data set" if
            (root / "labels").is_dir() and image_dirs else "")
    raise ValueError(f"{root} is not a Pascal VOC folder: looked for an Annotations/ folder (any case) and for "
                     f".xml files in the folder itself, found neither{hint}")


def voc_image_sets(root) -> list[str]:
    """The image sets of a VOC folder: the names ``NAME`` of its ``ImageSets/Main/NAME.txt`` files, sorted.

    Args:
        root: the VOC folder (any layout of :func:`voc_layout`).

    Returns:
        list of str, sorted; ``[]`` without an ``ImageSets/Main`` folder. Raises nothing.

    Source: the Pascal VOC devkit's ``ImageSets/Main`` lists (Everingham et al. 2010).
    """
    main = Path(root) / "ImageSets" / "Main"
    return sorted(p.stem for p in main.glob("*.txt") if p.is_file()) if main.is_dir() else []


def voc_image_set_file(root, image_set: str, option: str = "image_set") -> Path:
    """The list of an image set, ``ROOT/ImageSets/Main/<image_set>.txt``, which must exist.

    Args:
        root: the VOC folder.
        image_set: the image set's name (``"train"``, ``"val"``, ``"trainval"``, ``"test"`` ...).
        option: how an error names the argument (``"--image-set"`` on the command line).

    Returns:
        the file's path.

    Raises:
        ValueError: no such file; the message names ``option``, the file and the
            image sets there are (:func:`voc_image_sets`; the devkit's per-class
            lists ``aeroplane_train`` ... only counted).
    """
    root = Path(root)
    lst = root / "ImageSets" / "Main" / f"{image_set}.txt"
    if lst.is_file():
        return lst
    have = voc_image_sets(root)
    if not have:
        where = f"{root} has no image set (no ImageSets/Main/*.txt)"
    else:
        plain = [n for n in have if "_" not in n] or have
        more = [n for n in have if n not in plain]
        where = (f"the image sets of {root} are {', '.join(plain)}"
                 + (f" (and {len(more)} per-class lists such as {more[0]})" if more else ""))
    raise ValueError(f"{option} {image_set!r}: no file {lst}; {where}")


def _list_names(root: Path, image_set: str | None, ann_dir: Path) -> tuple[list[str], list[str]]:
    """Image names to read: ``(names, names listed more than once)``; names in file order, unique.

    Without an image set, the stems of the ``.xml`` files in ``ann_dir``, sorted.
    """
    if image_set is None:
        return sorted(p.stem for p in ann_dir.glob("*.xml") if p.is_file()), []
    names, twice, seen = [], [], set()
    for line in voc_image_set_file(root, image_set).read_text(encoding="utf-8").splitlines():
        name = line.split()[0] if line.split() else ""
        if not name:
            continue
        if name in seen:
            if name not in twice:
                twice.append(name)
            continue
        seen.add(name)
        names.append(name)
    return names, twice


def voc_image_names(root, image_set: str | None = None) -> list[str]:
    """The image names (XML stems) a VOC folder reads: those of ``ImageSets/Main/<image_set>.txt`` in file
    order, each once, or (``image_set=None``) of every XML file, sorted.

    Raises:
        ValueError: what :func:`voc_layout` raises; an image set without its file (the message lists
            the image sets there are).
    """
    root = Path(root)
    ann_dir, _ = voc_layout(root)
    return _list_names(root, image_set, ann_dir)[0]


class _ImageFinder:
    """The image file of each XML file, in one image folder (listed once); the rule of :func:`voc_layout`."""

    def __init__(self, folder: Path):
        from .yolo import IMAGE_SUFFIXES

        self.folder = folder
        files = [p.name for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
        self.files = set(files)
        self.by_stem: dict = {}
        for f in sorted(files):
            if Path(f).suffix.lower() in IMAGE_SUFFIXES:
                self.by_stem.setdefault(Path(f).stem, []).append(f)

    def find(self, name: str, ann: dict) -> tuple[Path | None, str]:
        """``(path, "")``, or ``(None, what was looked for)``."""
        looked = []
        for tag in ("filename", "path"):
            text = ann.get(tag)
            if text:
                base = text.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
                if base in self.files:
                    return self.folder / base, ""
                looked.append(f"{base!r} (<{tag}>)")
        same = self.by_stem.get(name, [])
        if len(same) == 1:
            return self.folder / same[0], ""
        if same:
            return None, (f"{' and '.join(same)} in {self.folder} both have the XML file's name {name!r}"
                          + (f" and <filename> {looked[0]} is not there" if looked else "")
                          + ": which is its image? Give the XML a <filename> that exists")
        looked.append(f"{name!r} with an image suffix (the XML file's name)")
        return None, f"no image file for {name}.xml in {self.folder}: looked for {', '.join(looked)}"


def _number(text):
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if v == v and abs(v) != float("inf") else None


def _parse_xml(path: Path) -> dict:
    """Parse one VOC XML file into plain Python (see :func:`read_voc_annotation`); ValueError if unreadable."""
    from torchvision.datasets import VOCDetection

    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        raise ValueError(f"{path.name} is not readable XML: {e}") from None
    if root.tag != "annotation":
        raise ValueError(f"{path.name}: the root element is <{root.tag}>, not <annotation>")
    ann = VOCDetection.parse_voc_xml(root)["annotation"]
    size = ann.get("size") if isinstance(ann.get("size"), dict) else {}
    w, h = _number(size.get("width")), _number(size.get("height"))
    objects = []
    for obj in ann.get("object", []) or []:
        if not isinstance(obj, dict):
            continue
        bb = obj.get("bndbox") if isinstance(obj.get("bndbox"), dict) else {}
        corners = [_number(bb.get(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
        name = obj.get("name")
        objects.append({
            "name": name.strip() if isinstance(name, str) else "",
            "box": None if any(c is None for c in corners) else tuple(corners),
            "box_text": {k: bb.get(k) for k in ("xmin", "ymin", "xmax", "ymax")},
            "difficult": str(obj.get("difficult", "0")).strip() in ("1", "true", "True"),
        })
    filename, image_path = ann.get("filename"), ann.get("path")
    return {
        "filename": filename.strip() if isinstance(filename, str) and filename.strip() else None,
        "path": image_path.strip() if isinstance(image_path, str) and image_path.strip() else None,
        "size": None if w is None or h is None else (int(w) if w == int(w) else w,
                                                     int(h) if h == int(h) else h),
        "size_text": {"width": size.get("width"), "height": size.get("height")},
        "objects": objects,
    }


def read_voc_annotation(path) -> dict:
    """Read one Pascal VOC XML annotation file.

    Args:
        path: the ``.xml`` file.

    Returns:
        dict with ``"filename"`` and ``"path"`` (the image file as the tool
        wrote it, str or ``None``), ``"size"`` (``(width,
        height)`` in pixels or ``None`` if missing) and ``"objects"``: a list
        of dicts ``{"name": str, "box": (xmin, ymin, xmax, ymax) or None,
        "difficult": bool}`` with the box as written, **1-based inclusive**
        pixel corners (floats).

    Raises:
        ValueError: the file is not readable XML or its root is not ``<annotation>``.

    Source: torchvision ``VOCDetection.parse_voc_xml``.
    """
    ann = _parse_xml(Path(path))
    return {"filename": ann["filename"], "path": ann["path"], "size": ann["size"],
            "objects": [{k: o[k] for k in ("name", "box", "difficult")} for o in ann["objects"]]}


def voc_class_names(root, image_set: str | None = None) -> tuple[str, ...]:
    """The class names used in a VOC folder (any layout of :func:`voc_layout`), sorted alphabetically
    (VOC's own order for its 20 classes).

    Unreadable XML files are skipped (:func:`d2lssd.data.check_voc` reports them).

    Raises:
        ValueError: as :func:`voc_image_names`.
    """
    root = Path(root)
    ann_dir, _ = voc_layout(root)
    found = set()
    for name in _list_names(root, image_set, ann_dir)[0]:
        try:
            found.update(o["name"] for o in _parse_xml(ann_dir / f"{name}.xml")["objects"] if o["name"])
        except (ValueError, FileNotFoundError):
            continue
    return tuple(sorted(found))


def check_voc(root, image_set: str | None = None, classes: Iterable[str] | None = None,
              verify_images: bool = True) -> DataReport:
    """Check a Pascal VOC folder: its XML files, their images and the optional ``ImageSets/Main/`` list.

    Args:
        root: the VOC folder, in any layout of :func:`voc_layout` (``Annotations/``
            and ``JPEGImages/``; ``annotations/`` and ``images/``; XML files beside the photos).
        image_set: a list in ``ROOT/ImageSets/Main/<image_set>.txt`` (one image
            name, an XML file's stem, per line) to check; default every XML file.
        classes: the allowed class names; default any name.
        verify_images: decode every image completely (``PIL.Image.load``, as
            training does: a truncated or corrupt file is an ``unreadable_file``
            problem; default ``True``); ``False`` reads only each file's header
            (fast; format and size are still checked, a file cut short after
            its header passes).

    Returns:
        A :class:`DataReport` (``format="voc"``); images are named by their
        XML file's stem, annotations by 1-based object number; a problem's
        ``source`` is the XML file relative to ``root``. Warnings
        (``similar_class``, ``small_box``: less than 2 pixels wide or high,
        counting VOC's inclusive corners, so ``xmin == xmax`` is 1 pixel;
        ``duplicate_box``; ``exif_rotated``) are in ``report.warnings``; boxes and images per
        class in ``report.class_counts`` (in the order of ``classes``, else sorted).

    Checks: each XML parses (``xml.etree``); its image file (found as
    :func:`voc_layout` says: ``<filename>``, ``<path>``'s file name, or the
    XML's stem with an image suffix; else a ``missing_file`` problem saying
    what was looked for) exists, can be decoded and, shown
    upright (EXIF orientation applied; an orientation other than 1 is an
    ``exif_rotated`` warning), has the width and height of ``<size>`` (positive); each ``<object>`` has a
    ``<name>`` (known, when ``classes`` is given) and a ``<bndbox>`` of four
    numbers with ``xmin <= xmax``, ``ymin <= ymax`` (VOC corners are 1-based
    and inclusive: a box with ``xmin == xmax`` is one pixel wide) and inside
    ``[0, width + 1] x [0, height + 1]`` (one pixel of tolerance); a listed
    name has an XML file; no name is listed twice.

    Raises:
        ValueError: ``root`` is not a VOC folder (see :func:`voc_layout`), or
            ``image_set`` names a list that does not exist (the message lists those that do).

    Source: the Pascal VOC development kit documentation (annotation format,
    1-based pixel coordinates).
    """
    return _check(Path(root), image_set, classes, verify_images)[0]


def _check(root: Path, image_set, classes, verify_images: bool):
    """:func:`check_voc`, and what :class:`VOCDataset` reads next: ``(report, names, images)``.

    ``names``: the image names listed (unique, in order); ``images``: name ->
    ``(image file, parsed XML)`` of each image whose XML parses and whose file was found.
    """
    ann_dir, img_dir = voc_layout(root)
    report = DataReport(str(root), "voc")
    names, listed_twice = _list_names(root, image_set, ann_dir)
    order = None if classes is None else list(classes)
    allowed = None if order is None else set(order)
    for name in listed_twice:
        report._add(Problem("duplicate_id", f"listed more than once in ImageSets/Main/{image_set}.txt",
                            report.source, name, drops="image"))
        report.bad_images.add(name)
    report.num_images = len(names)
    seen: dict = {}  # class name -> XML file it first appears in
    kept: list = []  # (image name, class name) of each object errors="drop" keeps
    images: dict = {}
    finder = _ImageFinder(img_dir)
    for name in names:
        found = _check_voc_file(root, ann_dir, finder, name, allowed, verify_images, report, seen, kept)
        if found is not None:
            images[name] = found
    report.class_counts = count_classes(order if order is not None else sorted(seen), kept)
    for group in similar_names(list(seen) + (order or [])):
        shown = ", ".join(f"{n!r} ({report.class_counts.get(n, (0, 0))[0]} boxes"
                          + (f", first in {seen[n]})" if n in seen else ", in classes)") for n in group)
        report._add(Problem("similar_class", f"class names {shown} differ only in case or surrounding "
                            f"spaces: they are different classes to the model; rename them to one name if "
                            f"they are one class",
                            report.source, severity="warning"))
    return report, names, images


def _check_voc_file(root: Path, ann_dir: Path, finder: _ImageFinder, name: str, allowed, verify_images: bool,
                    report: DataReport, seen: dict, kept: list):
    """Check one image of a VOC folder (its XML, its file, its objects), adding to ``report``.

    Adds the class names met to ``seen`` (name -> this XML file, if new) and
    ``(name, class)`` of each object without a problem of an image without one to ``kept``.
    Returns ``(image file, parsed XML)``, or ``None`` when the XML is missing or
    unreadable or the image file is not found.
    """
    xml_path = ann_dir / f"{name}.xml"
    src = xml_path.relative_to(root).as_posix()
    if not xml_path.is_file():
        report._add(Problem("missing_file", f"no annotation file {xml_path}", src, name, drops="image"))
        report.bad_images.add(name)
        return None
    try:
        ann = _parse_xml(xml_path)
    except ValueError as e:
        report._add(Problem("bad_xml", str(e), src, name, drops="image"))
        report.bad_images.add(name)
        return None
    report.num_annotations += len(ann["objects"])
    img_path, looked = finder.find(name, ann)
    fname = img_path.name if img_path is not None else (ann["filename"] or name)
    size = ann["size"]
    bad_image = False
    if size is None or not all(is_number(v) and v > 0 for v in size):
        report._add(Problem("bad_image_size", f"<size> must give a positive width and height, got "
                            f"{ann['size_text']}", src, name, fname, drops="image"))
        bad_image, size = True, None
    add_image = (lambda kind, msg: report._add(Problem(kind, msg, src, name, fname, drops="image")))
    warn_image = (lambda kind, msg: report._add(Problem(kind, msg, src, name, fname, severity="warning")))
    if img_path is None:
        add_image("missing_file", looked)
        bad_image = True
    else:
        bad_image |= check_image_file(img_path, size, verify_images, add_image, "<size> says",
                                      None if bad_image else warn_image)
    if bad_image:
        report.bad_images.add(name)
    first_of_box: dict = {}  # (class, box) -> number of the first object with it
    for k, obj in enumerate(ann["objects"], start=1):
        def add(kind, msg):
            report._add(Problem(kind, msg, src, name, fname, k, drops="annotation"))
            report.bad_annotations.add((name, k))

        if obj["name"]:
            seen.setdefault(obj["name"], src)
        if not obj["name"]:
            add("bad_entry", "object without a <name>")
        elif allowed is not None and obj["name"] not in allowed:
            add("unknown_category", f"class {obj['name']!r} is not one of {sorted(allowed)}")
        box = obj["box"]
        if box is None:
            add("bad_box", f"<bndbox> must hold numbers xmin, ymin, xmax, ymax, got {obj['box_text']}")
            continue
        x1, y1, x2, y2 = box
        if x2 < x1 or y2 < y1:
            add("bad_box", f"box width and height must be > 0: xmin={x1:g}, xmax={x2:g}, ymin={y1:g}, "
                           f"ymax={y2:g} (1-based inclusive corners, so xmax >= xmin)")
            continue
        if size is not None:
            W, H = size
            t = OUTSIDE_TOLERANCE
            if x1 - 1 < -t or y1 - 1 < -t or x2 > W + t or y2 > H + t:
                add("outside", f"box (xmin={x1:g}, ymin={y1:g}, xmax={x2:g}, ymax={y2:g}; 1-based "
                               f"inclusive) reaches outside the {W}x{H} image by more than {t:g} pixel")
            elif min(x2, W) <= max(x1 - 1, 0) or min(y2, H) <= max(y1 - 1, 0):
                add("outside", f"box (xmin={x1:g}, ymin={y1:g}, xmax={x2:g}, ymax={y2:g}; 1-based "
                               f"inclusive) has no part inside the {W}x{H} image")
        if (name, k) in report.bad_annotations:
            continue
        _voc_box_warnings(name, fname, src, k, obj, first_of_box, report)
        if name not in report.bad_images:
            kept.append((name, obj["name"]))
    return (img_path, ann) if img_path is not None else None


def _voc_box_warnings(name, fname, src, k: int, obj: dict, first_of_box: dict, report: DataReport) -> None:
    """``small_box`` and ``duplicate_box`` warnings of object ``k`` (1-based), which has no problem."""
    x1, y1, x2, y2 = obj["box"]

    def warn(kind, msg):
        report._add(Problem(kind, msg, src, name, fname, k, severity="warning"))

    w, h = x2 - x1 + 1, y2 - y1 + 1  # inclusive corners: xmin == xmax is one pixel wide
    if w < SMALL_BOX or h < SMALL_BOX:
        warn("small_box", f"box (xmin={x1:g}, ymin={y1:g}, xmax={x2:g}, ymax={y2:g}; 1-based inclusive) is "
                          f"{w:g}x{h:g} pixels (width x height), less than {SMALL_BOX:g} pixels wide or high: "
                          f"a stray click of the labelling tool?")
    key = (obj["name"], obj["box"])
    if key in first_of_box:
        warn("duplicate_box", f"the same class {obj['name']!r} and box (xmin={x1:g}, ymin={y1:g}, "
                              f"xmax={x2:g}, ymax={y2:g}) as object {first_of_box[key]} of this image: "
                              f"the object is labelled twice")
    else:
        first_of_box[key] = k


class VOCDataset(DetectionDataset):
    """A Pascal VOC folder as ``(image, target)`` samples in d2lssd's format.

    ``dataset[i]`` is ``(image, target)`` before ``transforms`` (the same
    structure as :class:`d2lssd.data.CocoDataset`):

    * ``image``: ``tv_tensors.Image`` uint8 ``(3, H, W)``, RGB, upright: a
      photo's EXIF orientation is applied (:mod:`d2lssd.data.images`), so
      ``(W, H)`` is the upright size that ``<size>`` declares;
    * ``target["boxes"]``: ``tv_tensors.BoundingBoxes`` float32 ``(G, 4)``,
      XYXY, pixels, 0-based half-open (``(xmin - 1, ymin - 1, xmax, ymax)`` of
      the XML, taken in the upright image as labelling tools write them:
      nothing to turn), clamped to the image (within the checker's 1-pixel tolerance);
    * ``target["labels"]``: int64 ``(G,)``, ``0 .. q - 1`` (``classes[k]``; the
      model's class ``k + 1``, class 0 being background);
    * ``target["crowd_boxes"]``, ``target["crowd_labels"]``: the difficult
      objects (``difficult="ignore"``), same formats, ``(C, 4)`` and ``(C,)``;
    * ``target["image_id"]``: int, the index in this dataset;
      ``target["name"]``: the image name (XML stem); ``target["orig_size"]``:
      ``(H, W)`` of the upright image.

    An image without objects is kept (``G = 0``: a negative example).
    ``transforms(image, target)`` is applied last and moves the crowd boxes with
    the others (see :class:`d2lssd.data.DetectionDataset`).

    Args:
        root: the VOC folder, in any layout of :func:`voc_layout` (``Annotations/``
            + ``JPEGImages/``, ``annotations/`` + ``images/``, or XML files beside the photos).
        image_set: read only the images listed in ``ROOT/ImageSets/Main/<image_set>.txt``;
            default every XML file.
        classes: class names in label order; default :func:`voc_class_names`
            of the data (sorted). An object of another class is a problem
            (``unknown_category``).
        transforms: optional ``(image, target) -> (image, target)``, e.g.
            :class:`d2lssd.transforms.SSDTrainTransform`.
        difficult: ``"ignore"`` (default), ``"keep"`` or ``"drop"`` (see the module docstring).
        errors: ``"raise"`` (default): refuse a data set with any problem
            found by :func:`d2lssd.data.check_voc`; ``"drop"``: leave out the
            bad objects and images and print how many.
        verify_images: decode every image when checking (default), else read
            only the headers (see :func:`check_voc`). Either way, a file that
            fails to decode later is skipped with a warning when read (see
            :class:`d2lssd.data.DetectionDataset`).

    Attributes:
        classes: tuple of class names (label ``k`` is ``classes[k]``);
        names: image names (XML stems) in order; report: the :class:`DataReport` of the check;
        image_set: the argument; annotations_dir, images_dir: the folders :func:`voc_layout` found;
        num_dropped: ``(annotations, images)`` left out by ``errors="drop"``;
        skipped_images, num_skipped: see :class:`d2lssd.data.DetectionDataset`.

    Raises:
        ValueError: bad arguments, a folder that is not VOC or an image set
            without its file (see :func:`voc_layout`, :func:`voc_image_names`),
            a data set with problems (see ``errors``), no image.
    """

    def __init__(self, root: str | os.PathLike, image_set: str | None = None,
                 classes: Sequence[str] | None = None, transforms: Callable | None = None,
                 difficult: str = "ignore", errors: str = "raise", verify_images: bool = True):
        if difficult not in _DIFFICULT:
            raise ValueError(f"difficult must be one of {_DIFFICULT}, got {difficult!r}")
        self.root = Path(root)
        self.image_set = image_set
        self.annotations_dir, self.images_dir = voc_layout(self.root)
        report = None
        if classes is None:  # voc_class_names (every name used, sorted), found by the one pass of the check
            report, names, images = _check(self.root, image_set, None, verify_images)
            classes = tuple(report.class_counts)
        classes = self._check_classes(classes)
        if report is None:
            report, names, images = _check(self.root, image_set, classes, verify_images)
        self._handle_report(report, errors)
        index = {c: k for k, c in enumerate(classes)}
        self.names, self._records = [], []
        for name in names:
            if name in report.bad_images:
                continue
            img_path, ann = images[name]
            rows, crowd = [], []
            for k, obj in enumerate(ann["objects"], start=1):
                if (name, k) in report.bad_annotations or (obj["difficult"] and difficult == "drop"):
                    continue
                x1, y1, x2, y2 = obj["box"]
                row = (index[obj["name"]], x1 - 1, y1 - 1, x2, y2)
                (crowd if obj["difficult"] and difficult == "ignore" else rows).append(row)
            self.names.append(name)
            self._records.append((img_path, rows, crowd, ann["size"]))
        if not self._records:
            raise ValueError(f"{self.root}" + (f" (image set {image_set!r})" if image_set else "")
                             + ": no image to read")
        super().__init__(classes, transforms)

    def __len__(self) -> int:
        return len(self._records)

    def _keys(self) -> list:
        return list(self.names)

    def _subset(self, indices):
        import copy

        out = copy.copy(self)
        out.names = [self.names[i] for i in indices]
        out._records = [self._records[i] for i in indices]
        return out

    def normalized_boxes(self) -> torch.Tensor:
        """All non-crowd boxes, float32 ``(G, 4)``, normalized by each image's ``<size>``, clamped to [0, 1]
        (no image is opened); for :func:`d2lssd.anchor_fit.fit_anchors`."""
        return self.normalized_labels()[:, 1:]

    def normalized_labels(self) -> torch.Tensor:
        """:meth:`normalized_boxes` with their labels: float32 ``(G, 5)`` rows ``(label, xmin, ymin, xmax, ymax)``.

        For the run folder's label statistics (:mod:`d2lssd.runs`); no image is opened.
        """
        out = []
        for _, rows, _, (w, h) in self._records:
            for c, x1, y1, x2, y2 in rows:
                out.append((c, x1 / w, y1 / h, x2 / w, y2 / h))
        t = torch.tensor(out, dtype=torch.float32).reshape(-1, 5)
        t[:, 1:] = t[:, 1:].clamp(0, 1)
        return t

    def _image_path(self, idx: int) -> Path:
        return self._records[idx][0]

    def _load(self, idx: int):
        path, rows, crowd, _ = self._records[idx]
        image = self._read_image(path)
        return image, self._target(image, rows, crowd, image_id=idx, name=self.names[idx])
