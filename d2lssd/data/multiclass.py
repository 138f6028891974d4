"""A small multi-class detection data set in COCO format, generated offline, and a broken copy of it.

:func:`generate_multiclass_coco` writes what a labelling tool exports: a
folder of JPEG photos and one COCO annotation file per split::

    ROOT/
        images/train_00001.jpg   RGB JPEGs of varying size (288-384 x 256-320 px),
        images/val_00001.jpg     file names relative to images/
        train.json, val.json     COCO detection files (images, annotations, categories)
        GENERATED.txt            generator, version and seed

Two classes, with COCO-style non-contiguous category ids (``banana`` is
category 2, ``person`` category 5: a reader must map them to labels 0 and
1): bananas as in :func:`d2lssd.generate_bananas` and upright walkers as in
:func:`d2lssd.generate_pennfudan`, on crops of photos shipped with
scikit-image. About 15% of the images show no object at all (negatives,
as real exports have). Objects do not overlap, so every box is the tight
box of the object's visible pixels. Everything is drawn from a seeded
``numpy`` generator, one per image: the same seed gives the same files.

:func:`write_broken_copy` copies such a data set and plants one fault of
each kind that :func:`d2lssd.data.check_coco` reports, for the checker's
demonstration and tests; it returns the faults it planted.

Source: ours; the drawing is that of :mod:`d2lssd.data.bananas` and
:mod:`d2lssd.data.pennfudan` (imported, not copied).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from .._io import atomic_write
from .bananas import _render_banana
from .coco import coco_annotation, write_coco
from .pennfudan_generator import _background as pennfudan_background
from .pennfudan_generator import _draw_figure

__all__ = ["MULTICLASS_CATEGORIES", "MULTICLASS_GENERATOR_VERSION", "generate_multiclass_coco",
           "write_broken_copy"]

#: The categories of the generated data, as written in its COCO files.
MULTICLASS_CATEGORIES = ({"id": 2, "name": "banana", "supercategory": "fruit"},
                         {"id": 5, "name": "person", "supercategory": "person"})
#: Bumped whenever :func:`generate_multiclass_coco` changes its output.
MULTICLASS_GENERATOR_VERSION = 1

_WIDTH, _HEIGHT = (288, 384), (256, 320)
_NUM_OBJECTS = ((0, 1, 2, 3), (0.15, 0.45, 0.3, 0.1))
_PERSON_HEIGHT = (0.45, 0.85)  # of the image height
_BANANA_SCALE = (0.85, 1.25)  # banana size parameter, times the image's shorter side
_PLACE_TRIES = 30  # bounded: places tried for each object
_MARKER = "GENERATED.txt"


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A crop of a scikit-image photo, float32 (height, width, 3) in [0, 255] (Penn-Fudan's helper)."""
    return pennfudan_background(rng, width, height)


def _banana(rng: np.random.Generator, side: int):
    """``(alpha (h, w) float32, rgb (h, w, 3) float32)`` of one banana (the banana generator's drawing)."""
    size = int(round(side * rng.uniform(*_BANANA_SCALE)))
    alpha, rgb, _, _ = _render_banana(rng, size)
    return alpha, rgb


def _person(rng: np.random.Generator, height: float):
    """``(alpha (h, w) float32, rgb (h, w, 3) float32)`` of one walker (the Penn-Fudan generator's drawing)."""
    mask, colour, _, _ = _draw_figure(rng, height)
    return mask.astype(np.float32), colour


def _tight(alpha: np.ndarray):
    rows, cols = np.flatnonzero((alpha > 0).any(axis=1)), np.flatnonzero((alpha > 0).any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _render(rng: np.random.Generator):
    """One image: ``(uint8 (H, W, 3), [(category_id, (xmin, ymin, xmax, ymax) pixels), ...])``."""
    width = int(rng.integers(_WIDTH[0], _WIDTH[1] + 1))
    height = int(rng.integers(_HEIGHT[0], _HEIGHT[1] + 1))
    img = _background(rng, width, height)
    n = int(rng.choice(_NUM_OBJECTS[0], p=_NUM_OBJECTS[1]))
    objects = []
    for _ in range(n):
        cat = MULTICLASS_CATEGORIES[int(rng.integers(len(MULTICLASS_CATEGORIES)))]["id"]
        if cat == 2:
            alpha, rgb = _banana(rng, min(width, height))
        else:
            alpha, rgb = _person(rng, height * rng.uniform(*_PERSON_HEIGHT))
        x1, y1, x2, y2 = _tight(alpha)
        alpha, rgb = alpha[y1:y2, x1:x2], rgb[y1:y2, x1:x2]
        h, w = alpha.shape
        if h > height or w > width:
            continue
        for _ in range(_PLACE_TRIES):  # bounded: an object that finds no free place is left out
            x0, y0 = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            box = (x0, y0, x0 + w, y0 + h)
            if all(box[2] <= b[0] or b[2] <= box[0] or box[3] <= b[1] or b[3] <= box[1] for _, b in objects):
                break
        else:
            continue
        a = alpha[..., None]
        img[y0:y0 + h, x0:x0 + w] = img[y0:y0 + h, x0:x0 + w] * (1 - a) + rgb * a
        objects.append((cat, box))
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), objects


def generate_multiclass_coco(root: str | os.PathLike, num_train: int = 240, num_val: int = 60,
                             seed: int = 0, quality: int = 90) -> Path:
    """Write the generated two-class data set in COCO format (see the module docstring).

    Args:
        root: folder to create (``images/``, ``train.json``, ``val.json``,
            ``GENERATED.txt``). If it already holds data of the same generator
            version, seed and sizes, nothing is written (generated once, then
            reused); if it holds anything else, ``FileExistsError``.
        num_train, num_val: images of each split (``num_train >= 1``, ``num_val >= 0``).
        seed: seed; image ``i`` of a split depends only on ``(seed, split, i)``.
        quality: JPEG quality (PIL), 1..95.

    Returns:
        ``Path(root)``. Train images have ids ``1 .. num_train`` and files
        ``images/train_00001.jpg`` ...; validation ids continue from
        ``num_train + 1`` (files ``images/val_00001.jpg`` ...). Boxes are the
        tight boxes of the objects' pixels; categories :data:`MULTICLASS_CATEGORIES`.

    Raises:
        ValueError: bad counts or quality.
        FileExistsError: ``root`` holds something other than this data.

    Timing: about 20 ms per image on one CPU core (300 images in a few seconds).
    """
    from PIL import Image

    for name, v, lo in (("num_train", num_train, 1), ("num_val", num_val, 0)):
        if isinstance(v, bool) or int(v) != v or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if not 1 <= int(quality) <= 95:
        raise ValueError(f"quality must be in 1..95, got {quality}")
    root = Path(root)
    fields = {"generator": "d2lssd.data.multiclass.generate_multiclass_coco",
              "generator_version": str(MULTICLASS_GENERATOR_VERSION), "seed": str(seed),
              "num_train": str(num_train), "num_val": str(num_val), "quality": str(quality)}
    marker = root / _MARKER
    if marker.is_file():
        old = dict(line.split(": ", 1) for line in marker.read_text(encoding="utf-8").splitlines() if ": " in line)
        if old == fields and (root / "train.json").is_file() and (root / "val.json").is_file():
            return root
        raise FileExistsError(f"{root} holds generated data with other settings ({old}); remove it or "
                              f"choose another folder")
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty; choose an empty or new folder")
    (root / "images").mkdir(parents=True, exist_ok=True)
    next_id, next_ann = 1, 1
    for split, (name, n) in enumerate((("train", num_train), ("val", num_val))):
        images, anns = [], []
        for i in range(int(n)):
            rng = np.random.default_rng([int(seed), split, i])
            img, objects = _render(rng)
            fname = f"{name}_{i + 1:05d}.jpg"
            Image.fromarray(img).save(root / "images" / fname, format="JPEG", quality=int(quality))
            images.append({"id": next_id, "file_name": fname, "width": img.shape[1], "height": img.shape[0]})
            for cat, box in objects:
                anns.append(coco_annotation(next_ann, next_id, cat, box))
                next_ann += 1
            next_id += 1
        write_coco(root / f"{name}.json", images, anns, MULTICLASS_CATEGORIES,
                   info={"description": f"d2lssd generated two-class data, {name} split",
                         "generator": fields["generator"], "version": MULTICLASS_GENERATOR_VERSION,
                         "seed": int(seed)})
    text = "".join(f"{k}: {v}\n" for k, v in fields.items()).encode("utf-8")
    atomic_write(marker, lambda f: f.write(text))
    return root


def write_broken_copy(src: str | os.PathLike, dst: str | os.PathLike, annotations: str = "train.json") -> list[dict]:
    """Copy a generated data set and plant one fault of each kind the checker reports.

    The copy is ``dst/images/`` (all image files, one deleted and one
    overwritten with bytes that are not an image) and ``dst/<annotations>``
    (the COCO file with faults added). ``src`` is only read.

    Planted faults (each on a different image or annotation), as dicts
    ``{"kind", "image", "annotation"}`` with the COCO ids the checker names:

    ``bad_box`` (an annotation of width 0), ``bad_box`` (negative height),
    ``outside`` (a box reaching 40 px past the right border), ``unknown_category``
    (category id 99), ``unknown_image`` (an annotation for image id 999999),
    ``duplicate_id`` (an annotation id used twice), ``duplicate_id`` (an image
    id used twice), ``missing_file``, ``unreadable_file``, ``size_mismatch``
    (the declared width 17 px too large).

    Args:
        src: a folder written by :func:`generate_multiclass_coco` (at least 8
            images with annotations in ``annotations``).
        dst: a new or empty folder.
        annotations: the COCO file of ``src`` to break.

    Returns:
        The list of planted faults, in the order above.

    Raises:
        FileExistsError: ``dst`` is not empty. ValueError: ``src`` is too small.
    """
    src, dst = Path(src), Path(dst)
    if dst.exists() and any(dst.iterdir()):
        raise FileExistsError(f"{dst} is not empty")
    data = json.loads((src / annotations).read_text(encoding="utf-8"))
    images = {im["id"]: im for im in data["images"]}
    with_anns = sorted({a["image_id"] for a in data["annotations"]})
    if len(with_anns) < 8:
        raise ValueError(f"{src / annotations} needs at least 8 images with objects, has {len(with_anns)}")
    shutil.copytree(src / "images", dst / "images")
    anns = data["annotations"]
    first = {}
    for k, a in enumerate(anns):
        first.setdefault(a["image_id"], k)
    faults = []

    def ann_of(j):  # the first annotation of the j-th image with objects
        return anns[first[with_anns[j]]]

    a = ann_of(0)
    a["bbox"][2] = 0
    faults.append({"kind": "bad_box", "image": a["image_id"], "annotation": a["id"]})
    a = ann_of(1)
    a["bbox"][3] = -5.0
    faults.append({"kind": "bad_box", "image": a["image_id"], "annotation": a["id"]})
    a = ann_of(2)
    a["bbox"][0] = images[a["image_id"]]["width"] - a["bbox"][2] + 40
    faults.append({"kind": "outside", "image": a["image_id"], "annotation": a["id"]})
    a = ann_of(3)
    a["category_id"] = 99
    faults.append({"kind": "unknown_category", "image": a["image_id"], "annotation": a["id"]})
    new_id = max(x["id"] for x in anns) + 1
    anns.append(coco_annotation(new_id, 999999, MULTICLASS_CATEGORIES[0]["id"], (10, 10, 50, 50)))
    faults.append({"kind": "unknown_image", "image": 999999, "annotation": new_id})
    dup = dict(ann_of(4))
    dup["bbox"] = list(dup["bbox"])
    anns.append(dup)  # the same id again
    faults.append({"kind": "duplicate_id", "image": dup["image_id"], "annotation": dup["id"]})
    im = dict(images[with_anns[5]])
    im["file_name"] = "copy_" + im["file_name"]
    shutil.copyfile(dst / "images" / images[with_anns[5]]["file_name"], dst / "images" / im["file_name"])
    data["images"].append(im)  # a second image with the same id
    faults.append({"kind": "duplicate_id", "image": im["id"], "annotation": None})
    gone = images[with_anns[6]]
    (dst / "images" / gone["file_name"]).unlink()
    faults.append({"kind": "missing_file", "image": gone["id"], "annotation": None})
    junk = images[with_anns[7]]
    (dst / "images" / junk["file_name"]).write_bytes(b"this is not a JPEG file\n" * 8)
    faults.append({"kind": "unreadable_file", "image": junk["id"], "annotation": None})
    no_objects = [i for i in sorted(images) if i not in set(with_anns[:8])]
    target = images[no_objects[0]] if no_objects else images[with_anns[-1]]
    target["width"] = int(target["width"]) + 17
    faults.append({"kind": "size_mismatch", "image": target["id"], "annotation": None})
    text = json.dumps(data, indent=1).encode("utf-8")
    atomic_write(dst / annotations, lambda f: f.write(text))
    return faults
