"""YOLO-format data sets (Ultralytics, Roboflow and most public exports) in d2lssd's format.

Two layouts are read. An Ultralytics **dataset YAML**::

    path: ../datasets/mine      # the data set's root (optional; default the YAML's folder)
    train: images/train         # a folder of images, a .txt list of image paths, or a list of those
    val: images/val
    test: images/test           # optional
    names: [cat, dog]           # or {0: cat, 1: dog}; optional nc: 2 must then agree

and a **plain folder**::

    ROOT/images/...             # the images (any depth; images/<split>/ with split=...)
    ROOT/labels/...             # one NAME.txt per image, same relative place
    ROOT/classes.txt            # one class name per line (or labels/classes.txt, LabelImg's
                                # place, or a data.yaml with names but no train key)

A folder that holds a ``data.yaml`` naming a ``train`` split is read as that YAML.

Each image's label file is found as Ultralytics finds it: in the image's
absolute path the last ``/images/`` component becomes ``/labels/`` and the
extension becomes ``.txt`` (``ROOT/images/train/a.jpg`` ->
``ROOT/labels/train/a.txt``; a path without an ``images`` component gives the
``.txt`` beside the image). One row per object, ``class cx cy w h``: the
class id (``0 .. q - 1``, an index into ``names``) and the box's center, width
and height **normalized to [0, 1]** by the image's width and height. A row of
an odd number ``>= 7`` of values is a segmentation polygon ``class x1 y1 x2 y2
...`` (normalized); its bounding box is used, as Ultralytics does for
detection. An image without a label file, or with an empty one, is an image
with no objects: a negative example, kept. The image is the one shown
**upright**: a phone photo's EXIF orientation is applied
(:mod:`d2lssd.data.images`), as Ultralytics (``exif_size``,
``ImageOps.exif_transpose``) and the labelling tools do, so the rows need
no turning.

Paths in the YAML: a relative ``path`` is taken from the YAML's folder, else
from the current folder; ``train``/``val``/``test`` entries are relative to
``path``, and an entry starting with ``../`` that does not exist is tried
without it (Roboflow's exports write ``../train/images`` next to the YAML; the
same fallback as Ultralytics' ``check_det_dataset``). Relative lines of a
``.txt`` list are relative to the list's folder. A folder split is searched
recursively for ``.bmp .jpeg .jpg .mpo .png .tif .tiff .webp`` files (any
case). The YAML's ``download`` key is never run. The YAML is read with
``yaml.safe_load`` (data files are untrusted input).

The check (:func:`check_yolo`, ``d2lssd check-data --yolo``) reports every
problem at once as a :class:`d2lssd.data.DataReport` (``format="yolo"``;
images named by their path relative to the data set's root, annotations by
the 1-based **line number** in the label file). Kinds, with what
``errors="drop"`` leaves out:

=====================  ==========================================================  ==========
kind                   what                                                        dropped
=====================  ==========================================================  ==========
``missing_file``       a listed image that does not exist; a label file whose      image
                       image is not there (``labels/a.txt`` without ``images/a.*``)
``unreadable_file``    an image that cannot be opened; a label file not UTF-8      image
``duplicate_id``       an image listed more than once in a split                   image
``bad_entry``          a row that is not ``class cx cy w h`` (or a polygon)        annotation
``unknown_category``   a class id that is not an integer in ``0 .. q - 1``         annotation
``bad_box``            ``w <= 0`` or ``h <= 0``                                    annotation
``outside``            a corner outside [0, 1] by more than one pixel, or no      annotation
                       part of the box inside the image
``no_labels``          no image of the split has a label file (a layout error:     fatal
                       the labels are not where the images' paths point)
=====================  ==========================================================  ==========

Warnings (never refused, never dropped; see :mod:`d2lssd.data.report`):
``similar_class`` (names differing only in case or spaces), ``small_box`` (less
than 2 pixels wide or high in the image), ``duplicate_box`` (a row repeated
in one file) and ``exif_rotated`` (a photo stored turned with an EXIF
orientation tag: read upright, the frame its rows are taken in); ``report.class_counts`` holds the boxes and images per class name.

Source: the Ultralytics dataset format (https://docs.ultralytics.com/datasets/detect/;
``ultralytics/data/utils.py``: ``img2label_paths``, ``check_det_dataset``,
``verify_image_label``); ours for the checks' report.
"""

from __future__ import annotations

import copy
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from ._detection import DetectionDataset
from .images import exif_orientation, upright_size
from .report import (OUTSIDE_TOLERANCE, SMALL_BOX, DataReport, Problem, check_image_file, count_classes,
                     similar_names)

__all__ = ["YOLODataset", "YOLOSource", "IMAGE_SUFFIXES", "check_yolo", "open_yolo_source",
           "read_yolo_yaml", "yolo_label_path", "yolo_splits"]

#: Image file suffixes a split folder is searched for (lower case; matched in any case).
IMAGE_SUFFIXES = (".bmp", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp")

#: The YAML file a folder may hold instead of being a plain ``images/`` + ``labels/`` folder.
_FOLDER_YAMLS = ("data.yaml", "data.yml", "dataset.yaml")


def yolo_label_path(image) -> Path:
    """The label file of an image, as Ultralytics' ``img2label_paths`` finds it.

    Args:
        image: the image's path (made absolute first).

    Returns:
        the path with its last ``/images/`` component replaced by ``/labels/``
        (if it has one) and its extension by ``.txt``.

    Source: ``ultralytics/data/utils.py`` ``img2label_paths``.
    """
    s = str(Path(os.path.abspath(image)))
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    if sa in s:
        s = sb.join(s.rsplit(sa, 1))
    return Path(s.rsplit(".", 1)[0] + ".txt")


# --------------------------------------------------------------------------- the YAML and the folder


def _names(value, source: str, nc=None) -> tuple[str, ...]:
    """Class names from a YAML ``names`` (list, or dict id -> name with ids ``0 .. n - 1``) and ``nc``."""
    if value is None:
        if nc is None:
            raise ValueError(f"{source}: no 'names' (the class names, a list or {{id: name}})")
        if isinstance(nc, bool) or not isinstance(nc, int) or nc < 1:
            raise ValueError(f"{source}: nc must be a positive integer, got {nc!r}")
        return tuple(f"class_{i}" for i in range(nc))  # Ultralytics' default names
    if isinstance(value, dict):
        ids = {}
        for k, v in value.items():
            try:
                i = int(k)
            except (TypeError, ValueError):
                i = None
            if i is None or isinstance(k, bool) or str(i) != str(k).strip():
                raise ValueError(f"{source}: names keys must be class ids 0, 1, ..., got {k!r}")
            ids[i] = v
        if sorted(ids) != list(range(len(ids))):
            raise ValueError(f"{source}: names ids must be 0 .. {len(ids) - 1} without gaps, got {sorted(ids)}")
        value = [ids[i] for i in range(len(ids))]
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{source}: names must be a list or a dict {{id: name}}, got {type(value).__name__}")
    names = tuple("" if v is None else str(v).strip() for v in value)  # YAML reads `- 1` as an int
    if nc is not None and nc != len(names):
        raise ValueError(f"{source}: nc is {nc!r} but names lists {len(names)} classes")
    return names


def read_yolo_yaml(path) -> dict:
    """Read an Ultralytics dataset YAML (``yaml.safe_load``) and resolve its root and class names.

    Args:
        path: the ``.yaml`` file.

    Returns:
        ``{"root": Path, "names": tuple of str, "splits": {name: [entries]}, "yaml": Path}``:
        ``root`` the resolved ``path`` (see the module docstring), ``splits``
        the split keys present (``train``, ``val``, ``test``, ``minival``) with
        their entries as a list of strings.

    Raises:
        FileNotFoundError: no such file, or a ``path`` that exists nowhere.
        ValueError: not YAML, not a mapping, bad ``names``/``nc``, a split that
            is not a string or a list of strings.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"YOLO dataset YAML {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a readable YAML file: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a dataset YAML holds a mapping (path, train, val, names), "
                         f"got {type(data).__name__}")
    here = path.parent
    root = data.get("path")
    if root in (None, ""):
        root = here
    else:
        root = Path(str(root)).expanduser()
        if not root.is_absolute():
            tried = [here / root, Path.cwd() / root]
            root = next((p for p in tried if p.is_dir()), None)
            if root is None:
                raise FileNotFoundError(f"{path}: path {data['path']!r} is not a folder (tried "
                                        f"{tried[0]} and {tried[1]})")
        elif not root.is_dir():
            raise FileNotFoundError(f"{path}: path {data['path']!r} is not a folder")
    splits = {}
    for key in ("train", "val", "test", "minival"):
        v = data.get(key)
        if v in (None, "", []):
            continue
        entries = [v] if isinstance(v, str) else v
        if not isinstance(entries, list) or not all(isinstance(e, str) and e for e in entries):
            raise ValueError(f"{path}: {key} must be a path or a list of paths, got {v!r}")
        splits[key] = list(entries)
    names = _names(data.get("names"), str(path), data.get("nc"))
    return {"root": Path(os.path.abspath(root)), "names": names, "splits": splits, "yaml": path}


def _read_classes_txt(path: Path) -> tuple[str, ...]:
    return tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def _folder_yaml(root: Path) -> Path | None:
    """The data.yaml of a folder when it names a ``train`` split (then the folder *is* that YAML)."""
    import yaml

    for name in _FOLDER_YAMLS:
        p = root / name
        if p.is_file():
            try:
                data = yaml.safe_load(p.read_text(encoding="utf-8"))
            except (yaml.YAMLError, UnicodeDecodeError):
                return p  # let read_yolo_yaml say what is wrong with it
            if isinstance(data, dict) and data.get("train"):
                return p
    return None


@dataclass
class YOLOSource:
    """Where a YOLO data set's images are and what its classes are called.

    Attributes:
        root: the data set's root (the YAML's ``path``, or the folder); image keys are relative to it.
        yaml: the dataset YAML, or ``None`` for a plain folder.
        split: the split read (``None``: every image of a plain folder's ``images/``).
        names: the class names of the label files' ids (``names[k]`` for id ``k``), or
            ``None`` (a plain folder without a names file).
        images: the image files in order (sorted within a folder; as listed in a ``.txt``).
        label_dirs: ``(image folder, label folder)`` pairs of the folder entries,
            searched for label files without an image.
    """

    root: Path
    yaml: Path | None
    split: str | None
    names: tuple[str, ...] | None
    images: list = field(default_factory=list)
    label_dirs: list = field(default_factory=list)

    def key(self, image: Path) -> str:
        """The image's name in reports and splits: its path relative to :attr:`root` (posix), else absolute."""
        try:
            return Path(image).relative_to(self.root).as_posix()
        except ValueError:
            return Path(image).as_posix()


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()


def _folder_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if _is_image(p))


def _entry_images(root: Path, entry: str, what: str, source: YOLOSource) -> list[Path]:
    """Images of one ``train``/``val`` entry: a folder, a ``.txt`` list or one image file."""
    p = Path(entry).expanduser()
    if not p.is_absolute():
        p = root / entry
        if not p.exists() and entry.startswith("../"):
            p = root / entry[3:]  # Roboflow's exports: "../train/images" next to the YAML
    p = Path(os.path.abspath(p))
    if p.is_dir():
        source.label_dirs.append((p, yolo_label_path(p / "x.png").parent))
        return _folder_images(p)
    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
        return [p]
    if p.is_file():
        out = []
        for line in p.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line:
                q = Path(line).expanduser()
                out.append(Path(os.path.abspath(q if q.is_absolute() else p.parent / q)))
        return out
    raise FileNotFoundError(f"{what}: {entry!r} is neither a folder, an image list nor an image (looked at {p})")


def open_yolo_source(path, split: str | None = None) -> YOLOSource:
    """Resolve a YOLO data set (a dataset YAML or a folder) and one split into a :class:`YOLOSource`.

    Args:
        path: a dataset YAML (``.yaml``/``.yml``), a folder holding a
            ``data.yaml`` that names a ``train`` split (read as that YAML), or a
            plain folder with ``images/`` and ``labels/``.
        split: YAML: the split key to read (default ``"train"``); plain folder:
            read ``images/<split>/`` (default: every image under ``images/``).

    Returns:
        the :class:`YOLOSource` (nothing is checked yet but that the split exists).

    Raises:
        FileNotFoundError: ``path`` or a split's folder/list does not exist.
        ValueError: a bad YAML; a split the YAML does not name; a folder without ``images/``.
    """
    path = Path(path)
    if path.is_dir():
        yml = _folder_yaml(path)
        if yml is not None:
            path = yml
    if path.is_file():
        info = read_yolo_yaml(path)
        split = "train" if split is None else split
        if split not in info["splits"]:
            raise ValueError(f"{path}: no split {split!r} (it names {sorted(info['splits']) or 'none'})")
        src = YOLOSource(info["root"], path, split, info["names"])
        seen_images = []
        for entry in info["splits"][split]:
            seen_images += _entry_images(info["root"], entry, f"{path}: {split}", src)
        src.images = seen_images
        return src
    if not path.exists():
        raise FileNotFoundError(f"YOLO data set {path} does not exist (a dataset YAML or a folder)")
    root = Path(os.path.abspath(path))
    images = root / "images"
    if not images.is_dir():
        raise ValueError(f"{path} is not a YOLO folder: it has no images/ folder and no data.yaml naming a "
                         "train split")
    names = None
    for candidate in (root / "classes.txt", root / "labels" / "classes.txt"):
        if candidate.is_file():
            names = _read_classes_txt(candidate)
            break
    if names is None:
        for name in _FOLDER_YAMLS:
            if (root / name).is_file():
                import yaml

                try:
                    data = yaml.safe_load((root / name).read_text(encoding="utf-8"))
                except (yaml.YAMLError, UnicodeDecodeError) as e:
                    raise ValueError(f"{root / name} is not a readable YAML file: {str(e).splitlines()[0]}") \
                        from None
                if isinstance(data, dict) and ("names" in data or "nc" in data):
                    names = _names(data.get("names"), str(root / name), data.get("nc"))
                    break
    folder = images if split is None else images / split
    if not folder.is_dir():
        have = sorted(p.name for p in images.iterdir() if p.is_dir())
        raise FileNotFoundError(f"{path}: split {split!r}: no folder {folder} (folders in images/: {have})")
    src = YOLOSource(root, None, split, names)
    src.label_dirs.append((folder, yolo_label_path(folder / "x.png").parent))
    src.images = _folder_images(folder)
    return src


def yolo_splits(path) -> list[str | None]:
    """The splits of a YOLO data set: the YAML's keys (``train``, ``val``, ...), or ``[None]`` for a plain folder."""
    path = Path(path)
    yml = _folder_yaml(path) if path.is_dir() else path
    if yml is None:
        return [None]
    return list(read_yolo_yaml(yml)["splits"])


# --------------------------------------------------------------------------- the check


def _image_size(path: Path):
    """``(width, height)`` of an image file shown upright, from its header, or ``None`` if unreadable.

    The stored size with the EXIF orientation applied
    (:func:`d2lssd.data.images.upright_size`): the size the readers decode
    and the frame the normalized rows are taken in.
    """
    from PIL import Image

    from .report import image_read_errors

    try:
        with Image.open(path) as im:
            return upright_size(im.size, exif_orientation(im, decode=False))
    except image_read_errors():
        return None


def _float(text: str):
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _check_row(values: list[str], q: int, size, add) -> tuple | None:
    """Check one label row against ``q`` classes and the image's ``(width, height)`` (or ``None``: unknown).

    Returns ``(class id, x1, y1, x2, y2)`` (normalized corners) or ``None`` after ``add(kind, message)``.
    """
    nums = [_float(v) for v in values]
    n = len(values)
    if n != 5 and (n < 7 or n % 2 == 0):
        add("bad_entry", f"a row is 'class cx cy w h' (5 values) or a polygon 'class x1 y1 x2 y2 ...' "
                         f"(an odd number >= 7), got {n} value(s): {' '.join(values)[:80]!r}")
        return None
    if any(v is None for v in nums[1:]):
        add("bad_entry", f"coordinates must be finite numbers, got {' '.join(values[1:])[:80]!r}")
        return None
    c = nums[0]
    if c is None or c != int(c) or not 0 <= c < q:
        add("unknown_category", f"class id {values[0]!r} is not one of 0 .. {q - 1} ({q} class names)")
        return None
    if n == 5:
        cx, cy, w, h = nums[1:]
        if w <= 0 or h <= 0:
            add("bad_box", f"box width and height must be > 0, got w={w:g}, h={h:g}")
            return None
        x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        what = f"box (cx={cx:g}, cy={cy:g}, w={w:g}, h={h:g}; normalized)"
    else:
        xs, ys = nums[1::2], nums[2::2]
        x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
        if x2 <= x1 or y2 <= y1:
            add("bad_box", f"polygon of {len(xs)} points has no area (x {x1:g}..{x2:g}, y {y1:g}..{y2:g})")
            return None
        what = f"polygon (x {x1:g}..{x2:g}, y {y1:g}..{y2:g}; normalized)"
    if size is None:  # the image is unreadable (reported, dropped): no size to check against
        return (int(c), x1, y1, x2, y2)
    W, H = size
    tx, ty = OUTSIDE_TOLERANCE / W, OUTSIDE_TOLERANCE / H
    if x1 < -tx or y1 < -ty or x2 > 1 + tx or y2 > 1 + ty:
        add("outside", f"{what} reaches outside [0, 1] by more than {OUTSIDE_TOLERANCE:g} pixel of the "
                       f"{W}x{H} image (corners x {x1:g}..{x2:g}, y {y1:g}..{y2:g})")
        return None
    if min(x2, 1) <= max(x1, 0) or min(y2, 1) <= max(y1, 0):
        add("outside", f"{what} has no part inside the image")
        return None
    return (int(c), x1, y1, x2, y2)


def _scan(src: YOLOSource, names: Sequence[str], verify_images: bool):
    """Check every image and label file of ``src`` against the class names of the ids: ``(report, records)``.

    ``records`` holds ``(key, image path, rows)`` of each image not in
    ``report.bad_images``, ``rows`` the rows without a problem ``(line, class
    id, x1, y1, x2, y2)`` (normalized corners, as written).
    """
    shown = str(src.yaml) if src.yaml is not None else str(src.root)
    report = DataReport(shown + (f" [{src.split}]" if src.split is not None else ""), "yolo")
    keys = [src.key(p) for p in src.images]
    counts = Counter(keys)
    records, expected_labels, with_labels, done, kept = [], set(), 0, set(), []
    for key, img in zip(keys, src.images):
        if key in done:
            continue
        done.add(key)
        label = yolo_label_path(img)
        expected_labels.add(label)
        lsrc = src.key(label)

        def add_image(kind, msg, key=key, lsrc=lsrc):
            report._add(Problem(kind, msg, lsrc, key, drops="image"))
            report.bad_images.add(key)

        report.num_images += 1
        if counts[key] > 1:
            add_image("duplicate_id", f"listed {counts[key]} times in split {src.split!r}")
        def warn_image(kind, msg, key=key, lsrc=lsrc):
            report._add(Problem(kind, msg, lsrc, key, severity="warning"))

        bad = check_image_file(img, None, verify_images, add_image, "declared",
                               None if key in report.bad_images else warn_image)
        size = None if bad else _image_size(img)
        if size is None and not bad:
            add_image("unreadable_file", f"{img} cannot be read as an image")
        rows = []
        if label.is_file():
            with_labels += 1
            try:
                text = label.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError) as e:
                add_image("unreadable_file", f"label file {label} is not UTF-8 text ({type(e).__name__})")
                text = ""
            rows = _check_rows(text, key, lsrc, names, size, report)
        if key not in report.bad_images:
            records.append((key, img, rows))
            kept += [(key, names[r[1]]) for r in rows]
    for image_dir, label_dir in src.label_dirs:
        if label_dir == image_dir or not label_dir.is_dir():
            continue
        for lab in sorted(label_dir.rglob("*.txt")):
            if lab.name == "classes.txt" or Path(os.path.abspath(lab)) in expected_labels:
                continue
            report._add(Problem("missing_file", f"label file without an image (no {image_dir.name}/"
                                f"{lab.relative_to(label_dir).with_suffix('.*').as_posix()} with one of the "
                                f"suffixes {', '.join(IMAGE_SUFFIXES)})", src.key(lab), drops="image"))
    if report.num_images and not with_labels:
        example = yolo_label_path(src.images[0])
        report._add(Problem("no_labels", f"none of the {report.num_images} images has a label file (the first "
                            f"image's would be {example}): the labels are not where the images' paths "
                            "point (.../images/... -> .../labels/...)", shown, fatal=True))
    report.class_counts = count_classes(names, kept)
    for group in similar_names(names):
        listed = ", ".join(f"{n!r} (id {names.index(n)}, {report.class_counts[n][0]} boxes)" for n in group)
        report._add(Problem("similar_class", f"class names {listed} differ only in case or surrounding spaces: "
                            "they are different classes to the model; rename them to one name if they are "
                            "one class", shown, severity="warning"))
    return report, records


def _check_rows(text: str, key: str, lsrc: str, names: Sequence[str], size, report: DataReport) -> list:
    """Check the rows of one label file; returns the rows without a problem ``(line, id, x1, y1, x2, y2)``."""
    rows, first_of_box = [], {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        values = line.split()
        if not values:
            continue
        report.num_annotations += 1

        def add(kind, msg, line_no=line_no):
            report._add(Problem(kind, msg, lsrc, key, None, line_no, drops="annotation"))
            report.bad_annotations.add((key, line_no))

        row = _check_row(values, len(names), size, add)
        if row is None:
            continue
        rows.append((line_no, *row))

        def warn(kind, msg, line_no=line_no):
            report._add(Problem(kind, msg, lsrc, key, None, line_no, severity="warning"))

        c, x1, y1, x2, y2 = row
        if size is not None:
            w, h = (x2 - x1) * size[0], (y2 - y1) * size[1]
            if w < SMALL_BOX or h < SMALL_BOX:
                warn("small_box", f"box {w:g}x{h:g} pixels (width x height) of the {size[0]}x{size[1]} image is "
                                  f"less than {SMALL_BOX:g} pixels wide or high: a stray click of the "
                                  "labelling tool?")
        dup = (c, tuple(values[1:]))
        if dup in first_of_box:
            warn("duplicate_box", f"the same class {c} ({names[c]!r}) and coordinates as line "
                                  f"{first_of_box[dup]}: the object is labelled twice")
        else:
            first_of_box[dup] = line_no
    return rows


def _names_or_classes(src: YOLOSource, classes) -> tuple[str, ...]:
    """The names of the ids: the data's, else ``classes``; ValueError when neither names any."""
    if src.names is not None:
        return src.names
    if classes is None:
        raise ValueError(f"{src.root}: no class names: write classes.txt (one name per line) or a data.yaml "
                         "with names, or give classes")
    return tuple(classes)


def check_yolo(path, split: str | None = None, classes: Sequence[str] | None = None,
               verify_images: bool = True) -> DataReport:
    """Check a YOLO data set (one split): every problem, one :class:`Problem` each.

    Args:
        path: a dataset YAML or a folder (see :func:`open_yolo_source`).
        split: the split (YAML default ``"train"``; folder default every image).
        classes: class names, needed only when the data names none (a plain
            folder without ``classes.txt``/``data.yaml``): the ids' range.
        verify_images: decode every image completely (as training does: a
            truncated file is ``unreadable_file``); ``False`` reads only each
            file's header (fast; its size still sets the one-pixel tolerance).

    Returns:
        a :class:`DataReport` (``format="yolo"``), kinds and warnings as in the
        module docstring; ``class_counts`` in the order of the ids.

    Raises:
        FileNotFoundError, ValueError: what :func:`open_yolo_source` raises; no class names at all.
    """
    src = open_yolo_source(path, split)
    names = src.names if src.names is not None else _names_or_classes(src, classes)
    report, _ = _scan(src, names, verify_images)
    return report


# --------------------------------------------------------------------------- the data set


class YOLODataset(DetectionDataset):
    """A YOLO data set (dataset YAML or folder) as ``(image, target)`` samples in d2lssd's format.

    ``dataset[i]`` is ``(image, target)`` before ``transforms``, the structure of
    :class:`d2lssd.data.CocoDataset` and :class:`d2lssd.data.VOCDataset`:

    * ``image``: ``tv_tensors.Image`` uint8 ``(3, H, W)``, RGB, upright: a
      photo's EXIF orientation is applied (:mod:`d2lssd.data.images`), as
      Ultralytics and the labelling tools do;
    * ``target["boxes"]``: ``tv_tensors.BoundingBoxes`` float32 ``(G, 4)``,
      XYXY, pixels (``((cx - w/2) W, (cy - h/2) H, (cx + w/2) W, (cy + h/2) H)``
      of the row, normalized coordinates taken in the upright image: nothing
      to turn), clamped to the image (the check allows one pixel outside);
      rows in file order;
    * ``target["labels"]``: int64 ``(G,)``, ``0 .. q - 1`` (``classes[k]``; the
      model's class ``k + 1``, class 0 being background);
    * ``target["crowd_boxes"]``, ``target["crowd_labels"]``: always empty
      (``(0, 4)``, ``(0,)``): YOLO has no crowd or difficult flag;
    * ``target["image_id"]``: int, the index in this data set;
      ``target["file_name"]``: the image's path relative to the root (the key
      of :meth:`split`); ``target["orig_size"]``: ``(H, W)`` of the upright image.

    ``G`` may be 0 (no label file or an empty one: a negative example, kept).

    Args:
        path: a dataset YAML, or a folder (see the module docstring).
        split: YAML: the split to read (default ``"train"``); folder:
            ``images/<split>/`` (default every image under ``images/``).
        classes: class names in label order, e.g. the training set's (or a
            checkpoint's) when opening a validation set. With names in the
            data, every name must be among them and ids are mapped by name;
            without (a plain folder with no names file), id ``k`` is
            ``classes[k]``. Default: the data's names in id order.
        transforms: optional ``(image, target) -> (image, target)``, e.g.
            :class:`d2lssd.transforms.SSDTrainTransform`.
        errors: ``"raise"`` (default): refuse a data set with any problem
            :func:`check_yolo` finds; ``"drop"``: leave the bad rows and images
            out and print how many (``no_labels`` is refused anyway).
        verify_images: see :func:`check_yolo`. Either way, a file that fails
            to decode later is skipped with a warning when read (see
            :class:`d2lssd.data.DetectionDataset`).

    Attributes:
        classes, num_classes, transforms, report, num_dropped: see
        :class:`d2lssd.data.DetectionDataset`. source: the :class:`YOLOSource`
        (root, YAML, split, names). file_names: the image keys in order.
        image_paths: the image files in order.

    Raises:
        FileNotFoundError: the data set or a split's folder or list does not exist.
        ValueError: bad arguments or YAML, a data set with problems (see
            ``errors``), names not among ``classes``, no class names, no image.
    """

    def __init__(self, path: str | os.PathLike, split: str | None = None,
                 classes: Sequence[str] | None = None, transforms: Callable | None = None,
                 errors: str = "raise", verify_images: bool = True):
        if errors not in ("raise", "drop"):
            raise ValueError(f"errors must be 'raise' or 'drop', got {errors!r}")
        self.source = open_yolo_source(path, split)
        names = self.source.names
        if names is not None:
            bad = [n for n in names if not n]
            if bad:
                raise ValueError(f"{self.source.yaml or self.source.root}: a class name is empty: {list(names)}")
        if classes is None:
            classes = _names_or_classes(self.source, None)
        classes = self._check_classes(classes)
        if names is not None:
            unknown = [n for n in names if n not in classes]
            if unknown:
                raise ValueError(f"{self.source.yaml or self.source.root}: class names {unknown} are not among "
                                 f"classes {list(classes)}")
            self._label_of_id = tuple(classes.index(n) for n in names)
        else:
            self._label_of_id = tuple(range(len(classes)))
        report, records = _scan(self.source, names if names is not None else classes, verify_images)
        self._handle_report(report, errors)
        self.file_names, self.image_paths, self._rows = [], [], []
        for key, img, rows in records:
            self.file_names.append(key)
            self.image_paths.append(img)
            self._rows.append([(self._label_of_id[c], x1, y1, x2, y2) for line, c, x1, y1, x2, y2 in rows
                               if (key, line) not in report.bad_annotations])
        if not self.file_names:
            raise ValueError(f"{report.source}: no image to read")
        super().__init__(classes, transforms)

    def __len__(self) -> int:
        return len(self.file_names)

    def _keys(self) -> list:
        return list(self.file_names)

    def _subset(self, indices):
        out = copy.copy(self)
        out.file_names = [self.file_names[i] for i in indices]
        out.image_paths = [self.image_paths[i] for i in indices]
        out._rows = [self._rows[i] for i in indices]
        return out

    def normalized_boxes(self) -> torch.Tensor:
        """All boxes, float32 ``(G, 4)`` corner format normalized to [0, 1] (clamped), as written in
        the label files (no image is opened); for :func:`d2lssd.anchor_fit.fit_anchors`."""
        return self.normalized_labels()[:, 1:]

    def normalized_labels(self) -> torch.Tensor:
        """:meth:`normalized_boxes` with their labels: float32 ``(G, 5)`` rows ``(label, xmin, ymin, xmax, ymax)``.

        For the run folder's label statistics (:mod:`d2lssd.runs`); no image is opened.
        """
        t = torch.tensor([list(r) for rows in self._rows for r in rows], dtype=torch.float32).reshape(-1, 5)
        t[:, 1:] = t[:, 1:].clamp(0, 1)
        return t

    def _image_path(self, idx: int) -> Path:
        return self.image_paths[idx]

    def _load(self, idx: int):
        image = self._read_image(self.image_paths[idx])
        h, w = image.shape[-2:]
        rows = [(c, x1 * w, y1 * h, x2 * w, y2 * h) for c, x1, y1, x2, y2 in self._rows[idx]]
        return image, self._target(image, rows, [], image_id=idx, file_name=self.file_names[idx])
