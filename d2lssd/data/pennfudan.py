"""The Penn-Fudan pedestrian data set, real (downloaded at run time) or generated offline.

The real data (Wang, Shi, Song, Sheng, "Object Detection Combining Recognition
and Segmentation", ACCV 2007; https://www.cis.upenn.edu/~jshi/ped_html/) is a
zip of 170 street photos (96 from UPenn, 74 from Fudan) with 345 labelled
pedestrians::

    PennFudanPed/
        PNGImages/FudanPed00001.png ...   RGB photos, about 300 to 600 px per side
        PedMasks/FudanPed00001_mask.png   instance masks: 0 background, k = pedestrian k
        Annotation/FudanPed00001.txt      PASCAL-style text, one bounding box per pedestrian
        readme.txt

An annotation file looks like this (pixel coordinates start at (1, 1) and
both corners are inside the box)::

    Image size (X x Y x C) : 559 x 536 x 3
    Objects with ground truth : 2 { "PASpersonWalking" "PASpersonWalking" }
    Bounding box for object 1 "PASpersonWalking" (Xmin, Ymin) - (Xmax, Ymax) : (160, 182) - (302, 431)

Its readme forbids redistribution, so the data is only ever downloaded at
run time (:func:`download_pennfudan`). Where that is impossible,
:func:`generate_pennfudan` writes the identical layout offline: upright,
pedestrian-like figures on crops of photos shipped with scikit-image, with
instance masks and annotation files in the real format. The reader
(:func:`read_pennfudan`, :class:`PennFudanDataset`) cannot tell the two apart;
the marker file ``GENERATED.txt`` and the line :func:`load_data_pennfudan`
prints say which data a run used.

Boxes in this module are in **pixels**, corner format (xmin, ymin, xmax,
ymax), half-open: a box covers columns ``xmin .. xmax - 1`` and rows
``ymin .. ymax - 1``, so a box of the whole image is ``(0, 0, W, H)`` (as the
banana data's boxes). :func:`collate_ssd` normalizes them for the model.

Source: the data set's readme and file formats; torchvision's "TorchVision
Object Detection Finetuning Tutorial" (``PennFudanDataset``: boxes from the
masks with ``masks_to_boxes``, a random 120/50 split, which is not seeded
there).
"""

from __future__ import annotations

import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.utils.data

from ..boxes import box_iou, to_normalized
from . import download as _download
from .common import (DataSource, backgrounds, cached_generated, check_generator_args, obtain,
                     random_crop, shown, write_generated)
from .common import read_marker as _read_marker  # d2lssd/pennfudan.py imports this name from here

__all__ = [
    "PENNFUDAN_URL",
    "PENNFUDAN_MD5",
    "PENNFUDAN_GENERATOR_VERSION",
    "PENNFUDAN_CLASSES",
    "PennFudanRecord",
    "download_pennfudan",
    "generate_pennfudan",
    "parse_annotation",
    "format_annotation",
    "read_pennfudan",
    "split_pennfudan",
    "PennFudanDataset",
    "collate_ssd",
    "obtain_pennfudan",
    "load_data_pennfudan",
]

#: The official archive (about 51 MiB, 53.7 MB).
PENNFUDAN_URL = "https://www.cis.upenn.edu/~jshi/ped_html/PennFudanPed.zip"
#: MD5 of the official archive, as recorded by ContinualAI's avalanche
#: (``avalanche/benchmarks/datasets/penn_fudan/penn_fudan_data.py``). Its
#: SHA-1, which :func:`d2lssd.data.download.download` wants, is not published
#: anywhere we could find; see :func:`download_pennfudan`.
PENNFUDAN_MD5 = "5aaa3dee905cef73325923716e38fc6d"
#: Bumped whenever :func:`generate_pennfudan` changes its output.
PENNFUDAN_GENERATOR_VERSION = 1
#: Class names in label order: label 0 is a pedestrian (model class 1; 0 is background).
PENNFUDAN_CLASSES = ("pedestrian",)

_FOLDER = "PennFudanPed"
_CLASS_TAG = "PASpersonWalking"
_NUM_IMAGES, _NUM_VAL = 170, 50

# --- annotation files -------------------------------------------------------------------

_BOX_RE = re.compile(
    r'Bounding box for object\s+(\d+)\s+"[^"]*"\s*\(Xmin,\s*Ymin\)\s*-\s*\(Xmax,\s*Ymax\)\s*:\s*'
    r'\(\s*(-?\d+)\s*,\s*(-?\d+)\s*\)\s*-\s*\(\s*(-?\d+)\s*,\s*(-?\d+)\s*\)')
_SIZE_RE = re.compile(r"Image size \(X x Y x C\)\s*:\s*(\d+)\s*x\s*(\d+)\s*x\s*(\d+)")


def parse_annotation(text: str) -> tuple[tuple[int, int] | None, torch.Tensor]:
    """Parse the text of a Penn-Fudan annotation file.

    Args:
        text: the file's contents (PASCAL annotation version 1.00 format).

    Returns:
        ``(size, boxes)``: ``size`` is ``(width, height)`` from the ``Image
        size`` line, or ``None`` if there is none; ``boxes`` is a float32
        tensor ``(G, 4)`` of the ``Bounding box for object k`` lines in the
        order of ``k``, converted from the file's 1-based inclusive corners
        ``(Xmin, Ymin) - (Xmax, Ymax)`` to this module's 0-based half-open
        pixels ``(Xmin - 1, Ymin - 1, Xmax, Ymax)``. ``G`` may be 0.

    Raises:
        ValueError: an object number appears twice, or a box has
            ``Xmax < Xmin`` or ``Ymax < Ymin``.

    Source: the annotation files of the Penn-Fudan database.
    """
    m = _SIZE_RE.search(text)
    size = (int(m.group(1)), int(m.group(2))) if m else None
    found: dict[int, tuple[int, int, int, int]] = {}
    for m in _BOX_RE.finditer(text):
        k, x1, y1, x2, y2 = (int(g) for g in m.groups())
        if k in found:
            raise ValueError(f"object {k} has two bounding boxes")
        if x2 < x1 or y2 < y1:
            raise ValueError(f"object {k}: bad box ({x1}, {y1}) - ({x2}, {y2})")
        found[k] = (x1 - 1, y1 - 1, x2, y2)
    rows = [found[k] for k in sorted(found)]
    return size, torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)


def format_annotation(name: str, width: int, height: int, boxes) -> str:
    """The text of an annotation file in the real data's format.

    Args:
        name: the image's file name stem, e.g. ``"FudanPed00001"``.
        width, height: image size in pixels.
        boxes: ``(G, 4)`` pixel boxes, 0-based half-open (this module's
            convention); written 1-based inclusive as in the real files.

    Returns:
        The text (``\\n`` line ends), readable by :func:`parse_annotation`.
    """
    boxes = [tuple(int(round(float(v))) for v in b) for b in boxes]
    lines = [
        "# Compatible with PASCAL Annotation Version 1.00",
        f'Image filename : "{_FOLDER}/PNGImages/{name}.png"',
        f"Image size (X x Y x C) : {width} x {height} x 3",
        'Database : "The Penn-Fudan-Pedestrian Database"',
        f"Objects with ground truth : {len(boxes)} {{ "
        + " ".join(f'"{_CLASS_TAG}"' for _ in boxes) + " }",
        "# Note there may be some objects not included in the ground truth list for they are "
        "severe-occluded",
        "# or have very small size.",
        "# Top left pixel co-ordinates : (1, 1)",
    ]
    for k, (x1, y1, x2, y2) in enumerate(boxes, start=1):
        lines += [
            f'# Details for pedestrian {k} ("{_CLASS_TAG}")',
            f'Original label for object {k} "{_CLASS_TAG}" : "PennFudanPed"',
            f'Bounding box for object {k} "{_CLASS_TAG}" (Xmin, Ymin) - (Xmax, Ymax) : '
            f"({x1 + 1}, {y1 + 1}) - ({x2}, {y2})",
            f'Pixel mask for object {k} "{_CLASS_TAG}" : "{_FOLDER}/PedMasks/{name}_mask.png"',
            "",
        ]
    return "\n".join(lines) + "\n"


# --- the offline generator --------------------------------------------------------------

# Sizes of the generated data, after the real data (issue 10 and the database's
# readme): images about 300 to 600 px per side, pedestrians 180 to 390 px tall,
# box width / height of an upright walker about 0.25 to 0.55.
_IMAGE_W = (330, 600)
_IMAGE_H = (300, 560)
_PED_HEIGHT = (180, 390)
_NUM_PEDS = ((1, 2, 3, 4, 5), (0.42, 0.33, 0.15, 0.07, 0.03))  # about 2 per image, as the real 345/170
_MIN_VISIBLE = 0.45  # a figure keeps at least this share of its pixels (occlusion and border)
_PLACE_TRIES = 25  # bounded: attempts to place each extra figure

_SKIN = np.array([[236, 200, 170], [210, 160, 120], [160, 110, 75], [110, 75, 50]], np.float32)
_HAIR = np.array([[30, 25, 20], [70, 45, 25], [120, 90, 50], [150, 150, 150]], np.float32)


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A random crop of a scikit-image photo resized to (height, width, 3), float32 in [0, 255]."""
    bgs = backgrounds()
    img = bgs[rng.integers(len(bgs))]
    h, w = img.shape[:2]
    aspect = width / height
    ch = int(rng.integers(max(32, h // 3), h + 1))
    cw = min(w, max(32, int(round(ch * aspect))))
    ch = min(h, max(32, int(round(cw / aspect))))
    bg = random_crop(rng, img, ch, cw, width, height)
    gain = rng.uniform(0.7, 1.15) * rng.uniform(0.9, 1.1, size=3)
    return bg * gain.astype(np.float32)


def _figure_shapes(rng: np.random.Generator, height: float):
    """The parts of one walker, relative to its top-centre, in pixels.

    Returns ``(parts, half_width)``: ``parts`` a list of ``(kind, colour_key,
    geometry)`` drawn in order, ``half_width`` a bound on how far the figure
    reaches left or right of its centre line.
    """
    h = height
    shoulder = h * rng.uniform(0.11, 0.15)  # half shoulder width
    hip = shoulder * rng.uniform(0.7, 0.9)
    stride = h * rng.uniform(0.0, 0.16)  # half distance between the feet
    swing = h * rng.uniform(-0.08, 0.08)  # arms forward/back
    leg_w = h * rng.uniform(0.075, 0.095)
    arm_w = h * rng.uniform(0.05, 0.065)
    head_rx, head_ry = h * rng.uniform(0.05, 0.06), h * 0.066
    top_y = 0.0
    neck_y = top_y + 2 * head_ry
    hip_y = h * rng.uniform(0.47, 0.52)
    parts = [
        # legs (trousers), then shoes at the feet
        ("line", "legs", ((-hip / 2, hip_y), (-stride, h - 0.03 * h), leg_w)),
        ("line", "legs", ((hip / 2, hip_y), (stride, h - 0.03 * h), leg_w)),
        ("ellipse", "shoes", (-stride, h - 0.02 * h, leg_w * 0.75, 0.02 * h)),
        ("ellipse", "shoes", (stride, h - 0.02 * h, leg_w * 0.75, 0.02 * h)),
        # torso: shoulders to hips
        ("polygon", "shirt", ((-shoulder, neck_y + 0.02 * h), (shoulder, neck_y + 0.02 * h),
                              (hip, hip_y + 0.04 * h), (-hip, hip_y + 0.04 * h))),
        # arms: shoulder to hand
        ("line", "shirt", ((-shoulder + arm_w / 2, neck_y + 0.04 * h),
                           (-shoulder - 0.02 * h + swing, hip_y + 0.02 * h), arm_w)),
        ("line", "shirt", ((shoulder - arm_w / 2, neck_y + 0.04 * h),
                           (shoulder + 0.02 * h - swing, hip_y + 0.02 * h), arm_w)),
        ("line", "skin", ((0, neck_y - 0.01 * h), (0, neck_y + 0.03 * h), head_rx)),  # neck
        ("ellipse", "skin", (0, top_y + head_ry, head_rx, head_ry)),  # head
        ("ellipse", "hair", (0, top_y + head_ry * 0.6, head_rx * 1.02, head_ry * 0.62)),
    ]
    if rng.random() < 0.3:  # a coat or skirt widening towards the knees
        parts.insert(4, ("polygon", "shirt", ((-hip, hip_y - 0.02 * h), (hip, hip_y - 0.02 * h),
                                              (hip * 1.5, h * 0.72), (-hip * 1.5, h * 0.72))))
    half_width = max(shoulder + 0.02 * h + abs(swing) + arm_w, stride + leg_w, hip * 1.5) + 2
    return parts, half_width


def _draw_figure(rng: np.random.Generator, height: float):
    """Rasterize one walker on its own canvas.

    Returns ``(mask bool (h, w), colour float32 (h, w, 3), cx, top)``: the
    whole figure, uncut; ``(cx, top)`` is the top-centre of the figure in the
    canvas. The colour is valid where the mask is set.
    """
    from PIL import Image, ImageDraw

    parts, half_width = _figure_shapes(rng, height)
    palette = {
        "skin": _SKIN[rng.integers(len(_SKIN))] * rng.uniform(0.9, 1.05),
        "hair": _HAIR[rng.integers(len(_HAIR))] * rng.uniform(0.8, 1.2),
        "shirt": rng.uniform(20, 235, size=3),
        "legs": rng.uniform(15, 140, size=3) if rng.random() < 0.8 else rng.uniform(20, 235, size=3),
        "shoes": rng.uniform(10, 60, size=3),
    }
    pad = 4
    w = int(math.ceil(2 * half_width)) + 2 * pad
    h = int(math.ceil(height)) + 2 * pad
    cx, top = w / 2, float(pad)
    mask_img = Image.new("L", (w, h), 0)
    col_img = Image.new("RGB", (w, h), (0, 0, 0))
    dm, dc = ImageDraw.Draw(mask_img), ImageDraw.Draw(col_img)

    def xy(p):
        return (cx + p[0], top + p[1])

    for kind, key, geo in parts:
        c = tuple(int(v) for v in np.clip(palette[key], 0, 255))
        if kind == "line":
            a, b, lw = geo
            pts = [xy(a), xy(b)]
            dm.line(pts, fill=255, width=max(1, int(round(lw))))
            dc.line(pts, fill=c, width=max(1, int(round(lw))))
            for p in pts:  # round joints
                r = lw / 2
                box = (p[0] - r, p[1] - r, p[0] + r, p[1] + r)
                dm.ellipse(box, fill=255)
                dc.ellipse(box, fill=c)
        elif kind == "ellipse":
            x, y, rx, ry = geo
            box = (cx + x - rx, top + y - ry, cx + x + rx, top + y + ry)
            dm.ellipse(box, fill=255)
            dc.ellipse(box, fill=c)
        else:
            pts = [xy(p) for p in geo]
            dm.polygon(pts, fill=255)
            dc.polygon(pts, fill=c)
    mask = np.asarray(mask_img) > 0
    colour = np.array(col_img, dtype=np.float32)
    # Shading: darker towards the feet, lit from one side, plus cloth noise.
    ys = (np.arange(h, dtype=np.float32) - top) / height
    xs = (np.arange(w, dtype=np.float32) - cx) / height
    side = float(rng.choice([-1.0, 1.0]))
    shade = (1.05 - 0.25 * np.clip(ys, 0, 1)[:, None]
             + np.float32(0.6 * side) * np.clip(xs, -0.2, 0.2)[None, :])
    colour *= shade[..., None]
    colour += 4 * rng.standard_normal(size=colour.shape, dtype=np.float32)
    return mask, colour, cx, top


def _paste(mask: np.ndarray, x0: int, y0: int, width: int, height: int):
    """Slices placing a patch with top-left ``(x0, y0)`` on a (height, width) canvas, clipped.

    Returns ``(canvas_slices, patch_slices)`` or ``None`` if nothing overlaps.
    """
    h, w = mask.shape
    cx0, cy0 = max(0, x0), max(0, y0)
    cx1, cy1 = min(width, x0 + w), min(height, y0 + h)
    if cx1 <= cx0 or cy1 <= cy0:
        return None
    return ((slice(cy0, cy1), slice(cx0, cx1)),
            (slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0)))


def _render_image(rng: np.random.Generator):
    """One generated image: ``(uint8 (H, W, 3), ids uint8 (H, W), boxes list)``.

    ``ids`` is 0 for background and ``k`` for pedestrian ``k`` (1-based,
    numbered left to right by box); ``boxes[k - 1]`` is the tight
    half-open pixel box ``(xmin, ymin, xmax, ymax)`` of ``ids == k``.
    """
    width = int(rng.integers(_IMAGE_W[0], _IMAGE_W[1] + 1))
    height = int(rng.integers(_IMAGE_H[0], _IMAGE_H[1] + 1))
    n = int(rng.choice(_NUM_PEDS[0], p=_NUM_PEDS[1]))
    figures = []
    for i in range(n):
        h = float(rng.uniform(*_PED_HEIGHT))
        mask, colour, fcx, ftop = _draw_figure(rng, h)
        # Where its feet stand (may be below the border) and its centre line.
        feet = float(rng.uniform(min(h, height) * 0.92, height))
        if rng.random() < 0.15:  # cut by the bottom border
            feet = float(rng.uniform(height, height + 0.15 * h))
        if rng.random() < 0.2:  # centred near the left or right border: cut by it
            cx = float((rng.uniform(-0.1, 0.12) if rng.random() < 0.5 else rng.uniform(0.88, 1.1)) * width)
        else:
            cx = float(rng.uniform(0.08, 0.92) * width)
        figures.append((feet, cx, h, mask, colour, fcx, ftop))
    # Back to front (feet highest in the image first): nearer pedestrians hide farther ones.
    figures.sort(key=lambda f: f[0])
    img = _background(rng, width, height)
    owner = np.zeros((height, width), np.uint8)  # 1 + index of the figure seen at a pixel
    areas, shown, where = [], [], []  # full and visible pixel area, canvas slices of each figure
    for feet, cx, h, mask, colour, fcx, ftop in figures:
        full_area = int(mask.sum())
        for attempt in range(_PLACE_TRIES):  # bounded
            x0, y0 = int(round(cx - fcx)), int(round(feet - h - ftop))
            sl = _paste(mask, x0, y0, width, height)
            ok = False
            if sl is not None:
                canvas, patch = sl
                m = mask[patch]
                # Pixels of earlier figures this one would hide.
                lost = np.bincount(owner[canvas][m], minlength=len(areas) + 1)[1:]
                ok = m.sum() >= _MIN_VISIBLE * full_area and all(
                    s - l >= _MIN_VISIBLE * a for s, l, a in zip(shown, lost, areas))
            if ok:
                break
            # Another place, fully inside the frame horizontally and standing in it.
            cx = float(rng.uniform(0.1, 0.9) * width)
            feet = float(rng.uniform(min(h, height) * 0.92, height))
        else:
            continue  # an extra figure that does not fit: left out (the first always fits)
        shown = [s - l for s, l in zip(shown, lost)] + [int(m.sum())]
        owner[canvas][m] = len(areas) + 1
        img[canvas][m] = colour[patch][m]
        areas.append(full_area)
        where.append(canvas)
    if not areas:  # pragma: no cover - the first figure always fits on its second try
        raise RuntimeError("could not place any pedestrian")
    img = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    boxes = []
    for j, (ys, xs) in enumerate(where):  # a figure's visible pixels lie in its canvas slice
        m = owner[ys, xs] == j + 1
        rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
        boxes.append((xs.start + int(cols[0]), ys.start + int(rows[0]),
                      xs.start + int(cols[-1]) + 1, ys.start + int(rows[-1]) + 1))
    ranked = sorted(range(len(boxes)), key=lambda k: (boxes[k][0], boxes[k][1]))
    lut = np.zeros(256, np.uint8)
    for new_id, k in enumerate(ranked, start=1):
        lut[k + 1] = new_id
    return img, lut[owner], [boxes[k] for k in ranked]


def _marker_fields(num_images: int, seed: int) -> dict[str, str]:
    return {
        "generator": "d2lssd.data.pennfudan.generate_pennfudan",
        "generator_version": str(PENNFUDAN_GENERATOR_VERSION),
        "seed": str(seed),
        "num_images": str(num_images),
    }


def _image_name(i: int) -> str:
    """Names like the real ones: the first 96 ``PennPed000NN``, the rest ``FudanPed000NN``."""
    return f"PennPed{i + 1:05d}" if i < 96 else f"FudanPed{i - 95:05d}"


def generate_pennfudan(root: str | os.PathLike, num_images: int = _NUM_IMAGES, seed: int = 0) -> Path:
    """Write a Penn-Fudan look-alike offline, in the real data's layout.

    Creates ``root/PNGImages/<name>.png`` (RGB), ``root/PedMasks/<name>_mask.png``
    (palette PNG of instance ids: 0 background, ``k`` pedestrian ``k``) and
    ``root/Annotation/<name>.txt`` (the real format, see
    :func:`parse_annotation`), names ``PennPed00001 ...`` then
    ``FudanPed00001 ...`` as in the real data, plus ``root/GENERATED.txt``
    recording the generator version, seed and count. ``root`` plays the part
    of the real ``PennFudanPed`` folder.

    Each image (width 330 to 600 px, height 300 to 560 px) is a crop of a
    photo shipped with scikit-image with 1 to 5 upright walking figures
    (about 2 per image on average, like the real 345 / 170): head, hair,
    torso, swinging arms and striding legs in random clothes, 180 to 390 px
    tall (cut off where the image ends), box width / height about 0.25 to
    0.55. Figures are drawn back to front (by the height of their feet), so
    nearer ones hide farther ones; each keeps at least 45% of its pixels, and
    some are cut by the left, right or bottom border. An extra figure that
    cannot be placed in 25 tries is left out (bounded; every image has at
    least one). Masks are the visible pixels; the annotation box of
    pedestrian ``k`` is the tight box of mask ``k``.

    Deterministic: the same ``(seed, i)`` gives byte-identical files for
    image ``i``, whatever ``num_images`` is. Atomic and cached like
    :func:`d2lssd.data.generate_bananas`: written to a temporary folder and
    renamed into place; an existing set with the same arguments and generator
    version is returned at once, an outdated generated set is replaced, and
    a folder without ``GENERATED.txt`` (the real data) is never touched.

    Args:
        root: the folder to create (its parent is created if needed).
        num_images: number of images, >= 1 (the real data: 170).
        seed: non-negative integer seed.

    Returns:
        ``Path(root)``.

    Raises:
        ValueError: ``num_images < 1`` or a negative ``seed``.
        FileExistsError: ``root`` exists and is not a generated set.

    Speed: about 35 ms per image on one core, half of it PNG encoding (170
    images in about 6 s, 45 MB).
    """
    check_generator_args(("num_images", num_images, 1), ("seed", seed, 0))
    root = Path(root)
    fields = _marker_fields(int(num_images), int(seed))
    if cached_generated(root, fields, "Penn-Fudan"):
        return root

    def fill(tmp: Path) -> None:
        for sub in ("PNGImages", "PedMasks", "Annotation"):
            (tmp / sub).mkdir()
        for i in range(int(num_images)):
            _write_image(tmp, _image_name(i), *_render_image(np.random.default_rng([int(seed), i])))

    return write_generated(root, fields, fill,
                           "generated offline Penn-Fudan look-alike data, not the real PennFudanPed data",
                           "backgrounds: scikit-image sample images")


# Colours of the instance ids in the mask PNGs (id 0 black); only for viewing, the ids are the data.
_PALETTE = [0, 0, 0] + [int(c) for k in range(1, 256)
                        for c in ((k * 67) % 256, (k * 151) % 256, (k * 199) % 256)]


def _write_image(folder: Path, name: str, img: np.ndarray, ids: np.ndarray, boxes) -> None:
    """One generated example: the RGB PNG, the palette PNG of instance ids and the annotation file."""
    from PIL import Image

    Image.fromarray(img).save(folder / "PNGImages" / f"{name}.png", compress_level=1)
    h, w = ids.shape
    mask = Image.frombytes("P", (w, h), np.ascontiguousarray(ids).tobytes())
    mask.putpalette(_PALETTE)
    mask.save(folder / "PedMasks" / f"{name}_mask.png", compress_level=1)
    (folder / "Annotation" / f"{name}.txt").write_text(format_annotation(name, w, h, boxes), encoding="utf-8")


# --- downloading the real data ----------------------------------------------------------

def download_pennfudan(root: str | os.PathLike | None = None, timeout: float = 60.0,
                       url: str = PENNFUDAN_URL, md5: str = PENNFUDAN_MD5) -> Path:
    """Download and extract the official ``PennFudanPed.zip``; return its ``PennFudanPed`` folder.

    The archive is streamed into ``root`` atomically (a temporary file
    renamed into place only after its length and MD5 were verified, as
    :func:`d2lssd.data.download.download` with ``md5=``) and extracted
    with :func:`d2lssd.data.download.extract` (a member that would escape
    the folder rejects the whole archive; extraction into a temporary
    folder renamed into place; links are not created). A cached archive
    with the right MD5 is used without touching the network, and an
    already extracted folder is not extracted again.

    Args:
        root: folder for the archive and the data; default
            :func:`d2lssd.data.download.cache_dir` (``$D2LSSD_DATA`` or
            ``~/.cache/d2lssd``).
        timeout: seconds to wait for the connection and for each read.
        url, md5: the archive and its expected MD5 (defaults
            :data:`PENNFUDAN_URL`, :data:`PENNFUDAN_MD5`).

    Returns:
        ``Path`` of ``root/PennFudanPed`` (with ``PNGImages/`` and ``PedMasks/``).

    Raises:
        DownloadError: the network failed, the transfer was incomplete or
            the MD5 differs (nothing is left behind).
        ValueError: the archive holds an unsafe path, or no
            ``PennFudanPed/PNGImages`` and ``PedMasks``.
        zipfile.BadZipFile: the file is not a zip archive.

    Source: the database's page (the URL); the download and extraction
    machinery of :mod:`d2lssd.data.download`.
    """
    base = Path(root) if root is not None else _download.cache_dir()
    path = _download.download(url, cache_dir=base, timeout=timeout, md5=md5)
    _download.extract(path, base)
    data_dir = base / _FOLDER
    if not ((data_dir / "PNGImages").is_dir() and (data_dir / "PedMasks").is_dir()):
        raise ValueError(f"{path} did not contain {_FOLDER}/PNGImages and {_FOLDER}/PedMasks")
    return data_dir


# --- reading (the same code for real and generated data) ---------------------------------

@dataclass(frozen=True)
class PennFudanRecord:
    """One image of the data set, as found on disk.

    Attributes:
        name: file name stem, e.g. ``"FudanPed00001"``.
        image: path of the RGB PNG; mask: path of the instance-id PNG.
        annotation: path of the annotation text, or ``None`` if missing.
        width, height: image size in pixels.
        ids: instance ids present in the mask, ascending (background 0 excluded).
        boxes: float32 ``(G, 4)`` pixel boxes (half-open, corner format) of
            the masks, in the order of ``ids``.
    """

    name: str
    image: Path
    mask: Path
    annotation: Path | None
    width: int
    height: int
    ids: tuple[int, ...]
    boxes: torch.Tensor


def _mask_boxes(ids_img: torch.Tensor) -> tuple[tuple[int, ...], torch.Tensor, torch.Tensor]:
    """Instance ids, their boolean masks ``(G, H, W)`` and half-open pixel boxes ``(G, 4)``."""
    from torchvision.ops import masks_to_boxes

    counts = torch.bincount(ids_img.reshape(-1).long(), minlength=1)
    obj_ids = torch.nonzero(counts[1:]).reshape(-1).to(ids_img.dtype) + 1
    masks = ids_img[None] == obj_ids[:, None, None]
    boxes = masks_to_boxes(masks) if len(obj_ids) else torch.zeros((0, 4))
    boxes = boxes.float() + torch.tensor([0.0, 0.0, 1.0, 1.0])  # last pixel -> half-open
    return tuple(int(i) for i in obj_ids), masks, boxes


def _read_ids(path: Path) -> torch.Tensor:
    from PIL import Image

    with Image.open(path) as im:
        if im.mode not in ("P", "L", "I", "I;16"):
            raise ValueError(f"{path}: an instance mask must be a palette or grey PNG of ids, "
                             f"got mode {im.mode}")
        arr = np.asarray(im)
    return torch.from_numpy(np.array(arr, dtype=np.uint8 if arr.dtype == np.uint8 else np.int64))


def read_pennfudan(root: str | os.PathLike, check_annotations: str = "warn",
                   min_iou: float = 0.5) -> list[PennFudanRecord]:
    """Read the file list of a Penn-Fudan folder, with boxes from the instance masks.

    Every ``PNGImages/<name>.png`` needs ``PedMasks/<name>_mask.png``; its
    boxes come from the masks (:func:`torchvision.ops.masks_to_boxes`, made
    half-open). Where ``Annotation/<name>.txt`` exists it is cross-checked:
    the same number of objects, and annotation box ``k`` (1-based, in the
    order of the file) against the box of the ``k``-th mask id with IoU >=
    ``min_iou``. Images are not decoded (only their size is read).

    Args:
        root: the ``PennFudanPed`` folder (real or from :func:`generate_pennfudan`).
        check_annotations: what a disagreement does: ``"warn"`` (one
            ``UserWarning`` listing the files; the mask boxes are used),
            ``"raise"`` (``ValueError``) or ``"ignore"``.
        min_iou: IoU an annotation box needs with its mask box.

    Returns:
        list of :class:`PennFudanRecord`, sorted by name.

    Raises:
        FileNotFoundError: no ``PNGImages`` folder or no image in it, or an
            image without its mask.
        ValueError: a mask that is not an id image or has another size than
            its image, a mask without any object, a bad ``check_annotations``,
            or (with ``"raise"``) a disagreeing annotation.
    """
    if check_annotations not in ("warn", "raise", "ignore"):
        raise ValueError(f"check_annotations must be 'warn', 'raise' or 'ignore', got {check_annotations!r}")
    root = Path(root)
    records, problems = [], []
    for img_path in _image_files(root):
        record = _read_record(root, img_path)
        if record.annotation is not None and check_annotations != "ignore":
            problems += _annotation_problems(record, min_iou)
        records.append(record)
    if problems:
        _report(problems, root, check_annotations)
    return records


def _image_files(root: Path) -> list[Path]:
    """The PNGs of ``root/PNGImages``, sorted; FileNotFoundError if there is no such folder or no PNG."""
    img_dir = root / "PNGImages"
    if not img_dir.is_dir():
        raise FileNotFoundError(f"{img_dir} not found: {root} is not a Penn-Fudan folder "
                                f"(expected PNGImages/, PedMasks/, Annotation/)")
    images = sorted(img_dir.glob("*.png"))
    if not images:
        raise FileNotFoundError(f"{img_dir} holds no PNG image")
    return images


def _read_record(root: Path, img_path: Path) -> PennFudanRecord:
    """One image's record: its size (the header only), its mask's ids and boxes, its annotation's path."""
    from PIL import Image

    name = img_path.stem
    mask_path = root / "PedMasks" / f"{name}_mask.png"
    if not mask_path.is_file():
        raise FileNotFoundError(f"{mask_path} not found (the mask of {img_path.name})")
    with Image.open(img_path) as im:
        width, height = im.size
    ids_img = _read_ids(mask_path)
    if tuple(ids_img.shape) != (height, width):
        raise ValueError(f"{mask_path} is {ids_img.shape[1]}x{ids_img.shape[0]}, its image "
                         f"is {width}x{height}")
    ids, _, boxes = _mask_boxes(ids_img)
    if not ids:
        raise ValueError(f"{mask_path} has no pedestrian (only id 0)")
    ann_path = root / "Annotation" / f"{name}.txt"
    return PennFudanRecord(name, img_path, mask_path, ann_path if ann_path.is_file() else None,
                           width, height, ids, boxes)


def _annotation_problems(record: PennFudanRecord, min_iou: float) -> list[str]:
    """How ``record``'s annotation file disagrees with its masks (size, count, IoU); empty if it agrees."""
    ann_path = record.annotation
    try:
        size, ann = parse_annotation(ann_path.read_text(encoding="utf-8", errors="replace"))
    except ValueError as e:
        return [f"{ann_path.name}: {e}"]
    width, height, ids = record.width, record.height, record.ids
    if size is not None and size != (width, height):
        return [f"{ann_path.name}: image size {size[0]}x{size[1]}, the PNG is {width}x{height}"]
    if len(ann) != len(ids):
        return [f"{ann_path.name}: {len(ann)} boxes, the mask has {len(ids)} objects"]
    iou = box_iou(ann, record.boxes).diagonal()  # annotation k against mask box k
    bad = [k + 1 for k in range(len(ids)) if iou[k] < min_iou]
    if bad:
        return [f"{ann_path.name}: objects {bad} have IoU {[round(float(iou[k - 1]), 2) for k in bad]} "
                f"< {min_iou} with their mask boxes"]
    return []


def _report(problems: list[str], root: Path, check_annotations: str) -> None:
    """The policy: one ValueError (``"raise"``) or one UserWarning at the caller of read_pennfudan."""
    msg = (f"{len(problems)} annotation file(s) in {root / 'Annotation'} disagree with the "
           f"masks (the mask boxes are used): " + "; ".join(problems))
    if check_annotations == "raise":
        raise ValueError(msg)
    warnings.warn(msg, UserWarning, stacklevel=3)


def split_pennfudan(names, num_val: int = _NUM_VAL, seed: int = 0) -> tuple[list[str], list[str]]:
    """A deterministic train/validation split of image names.

    The names are sorted, permuted with ``torch.randperm`` under a
    ``torch.Generator`` seeded with ``seed``; the last ``num_val`` of the
    permutation are validation, the rest training (torchvision's tutorial
    does the same with an unseeded permutation). For the real 170 images:
    120 / 50.

    Args:
        names: image names (e.g. ``[r.name for r in read_pennfudan(root)]``).
        num_val: validation images, ``0 <= num_val < len(names)``.
        seed: seed of the permutation.

    Returns:
        ``(train_names, val_names)``, each sorted; disjoint, together all names.

    Raises:
        ValueError: duplicate names or ``num_val`` out of range.
    """
    names = sorted(names)
    if len(set(names)) != len(names):
        raise ValueError("names must be unique")
    if isinstance(num_val, bool) or int(num_val) != num_val or not 0 <= num_val < len(names):
        raise ValueError(f"num_val must be an integer in [0, {len(names)}), got {num_val!r}")
    g = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(len(names), generator=g).tolist()
    cut = len(names) - int(num_val)
    return sorted(names[i] for i in perm[:cut]), sorted(names[i] for i in perm[cut:])


class PennFudanDataset(torch.utils.data.Dataset):
    """Penn-Fudan images with boxes and instance masks, as ``torchvision.tv_tensors``.

    ``dataset[i]`` is ``(image, target)`` before ``transforms``:

    * ``image``: ``tv_tensors.Image`` uint8 ``(3, H, W)``, RGB;
    * ``target["boxes"]``: ``tv_tensors.BoundingBoxes`` float32 ``(G, 4)``,
      format XYXY, in pixels (half-open: ``xmax`` is one past the last
      column), ``canvas_size=(H, W)``;
    * ``target["masks"]``: ``tv_tensors.Mask`` uint8 ``(G, H, W)`` of 0/1,
      mask ``g`` belonging to box ``g``;
    * ``target["labels"]``: int64 ``(G,)``, all 0 (pedestrian; label
      convention of :func:`d2lssd.multibox_target`, the model's class 1);
    * ``target["image_id"]``: int, the index in this dataset; ``target["name"]``: str.

    ``transforms(image, target) -> (image, target)`` is applied last, e.g.
    :class:`d2lssd.transforms.SSDTrainTransform` or
    :class:`d2lssd.transforms.SSDEvalTransform`; any
    ``torchvision.transforms.v2`` transform works since boxes and masks are
    tv_tensors.

    Args:
        root: the ``PennFudanPed`` folder (real or generated).
        split: ``"train"``, ``"val"`` or ``"all"`` (see :func:`split_pennfudan`).
        transforms: optional callable ``(image, target) -> (image, target)``.
        num_val, seed: of the split.
        check_annotations: see :func:`read_pennfudan`.

    Attributes:
        root, split, records (list of :class:`PennFudanRecord`), names,
        data_source (a :class:`DataSource` when made by
        :func:`load_data_pennfudan`, else ``None``).

    Raises:
        ValueError: an unknown ``split``; what :func:`read_pennfudan` and
            :func:`split_pennfudan` raise.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train",
                 transforms: Callable | None = None, num_val: int = _NUM_VAL, seed: int = 0,
                 check_annotations: str = "warn"):
        if split not in ("train", "val", "all"):
            raise ValueError(f"split must be 'train', 'val' or 'all', got {split!r}")
        self.root = Path(root)
        self.split = split
        self.transforms = transforms
        records = read_pennfudan(self.root, check_annotations=check_annotations)
        if split != "all":
            train, val = split_pennfudan([r.name for r in records], num_val, seed)
            keep = set(train if split == "train" else val)
            records = [r for r in records if r.name in keep]
        self.records = records
        self.names = [r.name for r in records]
        self.data_source = None

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, idx: int):
        from PIL import Image
        from torchvision import tv_tensors

        rec = self.records[idx]
        with Image.open(rec.image) as im:
            arr = np.asarray(im.convert("RGB"))
        image = tv_tensors.Image(torch.from_numpy(arr.copy()).permute(2, 0, 1))
        ids, masks, boxes = _mask_boxes(_read_ids(rec.mask))
        h, w = arr.shape[:2]
        target = {
            "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(h, w)),
            "masks": tv_tensors.Mask(masks.to(torch.uint8)),
            "labels": torch.zeros(len(ids), dtype=torch.int64),
            "image_id": int(idx),
            "name": rec.name,
        }
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target


def collate_ssd(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch ``(image, target)`` samples into what :func:`d2lssd.train_ssd` expects.

    Args:
        batch: list of ``(image, target)`` with ``image`` a float tensor
            ``(3, H, W)`` (all the same size, e.g. 300x300 after
            :class:`d2lssd.transforms.SSDTrainTransform`) and ``target`` a
            dict with ``"boxes"`` (``BoundingBoxes`` XYXY in pixels, or a
            ``(G, 4)`` pixel tensor on the image's canvas) and ``"labels"``
            (int ``(G,)``, 0-based classes).

    Returns:
        ``(images, labels)``: float32 ``(B, 3, H, W)`` and float32
        ``(B, G_max, 5)`` rows ``(class, xmin, ymin, xmax, ymax)``, boxes
        divided by the image width and height (normalized to [0, 1]),
        padded with rows of class -1 (and zero boxes). ``G_max`` is the most
        boxes of an image in the batch (0 if none has any).

    Raises:
        ValueError: an empty batch, images that are not float ``(3, H, W)``
            or differ in size, boxes not in XYXY, or boxes and labels of
            different lengths.
    """
    from torchvision import tv_tensors

    if len(batch) == 0:
        raise ValueError("cannot collate an empty batch")
    images, rows = [], []
    for k, (image, target) in enumerate(batch):
        if not (isinstance(image, torch.Tensor) and image.is_floating_point() and image.dim() == 3
                and image.shape[0] == 3):
            raise ValueError(f"sample {k}: the image must be a float tensor (3, H, W) (use an "
                             f"SSD transform), got {getattr(image, 'dtype', type(image))} "
                             f"{tuple(getattr(image, 'shape', ()))}")
        if images and image.shape != images[0].shape:
            raise ValueError(f"sample {k}: image size {tuple(image.shape)} differs from "
                             f"{tuple(images[0].shape)}; resize all images to one size")
        boxes, labels = target["boxes"], torch.as_tensor(target["labels"])
        if isinstance(boxes, tv_tensors.BoundingBoxes) and boxes.format != tv_tensors.BoundingBoxFormat.XYXY:
            raise ValueError(f"sample {k}: boxes must be in XYXY format, got {boxes.format}")
        boxes = torch.as_tensor(boxes).as_subclass(torch.Tensor).float().reshape(-1, 4)
        if len(boxes) != len(labels):
            raise ValueError(f"sample {k}: {len(boxes)} boxes but {len(labels)} labels")
        h, w = image.shape[-2:]
        rows.append(torch.cat((labels.float().reshape(-1, 1), to_normalized(boxes, int(w), int(h))), dim=1))
        images.append(image.as_subclass(torch.Tensor).float())
    g_max = max(len(r) for r in rows)
    labels = torch.zeros((len(rows), g_max, 5), dtype=torch.float32)
    labels[:, :, 0] = -1
    for i, r in enumerate(rows):
        labels[i, :len(r)] = r
    return torch.stack(images), labels


# --- obtaining and loading -----------------------------------------------------------------

def _generated(base: Path, seed: int, why: str) -> DataSource:
    root = generate_pennfudan(base / f"PennFudanPed-generated-seed{seed}", _NUM_IMAGES, seed)
    return DataSource("generated", root, f"generated offline Penn-Fudan look-alike data (seed {seed}) "
                                         f"at {shown(root)} — {why}")


def obtain_pennfudan(root: str | os.PathLike | None = None, source: str = "auto",
                     seed: int = 0) -> DataSource:
    """Find, download or generate the Penn-Fudan data; say which (does not print).

    Args:
        root: folder for the download and the data; default
            :func:`d2lssd.data.download.cache_dir`. The real data goes to
            ``root/PennFudanPed``, generated data (170 images) to
            ``root/PennFudanPed-generated-seed<seed>`` (generated once, then reused).
        source: ``"auto"``: the real data (downloaded unless
            ``D2LSSD_OFFLINE=1``), generated data if that fails; ``"real"``:
            the real data or an error; ``"generated"``: no network.
        seed: seed of the generated data.

    Returns:
        :class:`DataSource` ``(kind, root, description)``: ``kind`` is
        ``"real"`` or ``"generated"``, ``description`` one line naming the
        data, its folder and, for generated data, why it was used.

    Raises:
        ValueError: an unknown ``source``.
        RuntimeError: ``source="real"`` with ``D2LSSD_OFFLINE=1``.
        DownloadError, OSError, zipfile.BadZipFile: ``source="real"`` and
            the download or extraction failed.
    """
    base = Path(root) if root is not None else _download.cache_dir()

    def real() -> DataSource:
        data_dir = download_pennfudan(base)
        return DataSource("real", data_dir, f"real Penn-Fudan data from {shown(data_dir)} (downloaded "
                                            f"from {PENNFUDAN_URL}, MD5 verified)")

    return obtain(source, real, lambda why: _generated(base, seed, why))


def load_data_pennfudan(batch_size: int, root: str | os.PathLike | None = None, source: str = "auto",
                        num_workers: int = 0, seed: int = 0, size: int = 300, augment: bool = True,
                        num_val: int = _NUM_VAL):
    """Data loaders for Penn-Fudan (real or generated), ready for :func:`d2lssd.train_ssd`.

    Prints one line saying which data is used (see :func:`obtain_pennfudan`).

    Args:
        batch_size: examples per batch.
        root, source: see :func:`obtain_pennfudan`.
        num_workers: worker processes of each ``DataLoader``.
        seed: seeds the split, the training loader's shuffling and the
            generated data. The augmentation draws from torch's global
            generator (seed it with ``torch.manual_seed`` for a repeatable run).
        size: side of the square images the model sees (300 for the ResNet-34 SSD).
        augment: training images go through
            :class:`d2lssd.transforms.SSDTrainTransform` (else the eval transform).
        num_val: validation images of the split (50: 120 / 50 for 170 images).

    Returns:
        ``(train_iter, val_iter)``: ``DataLoader`` s over
        :class:`PennFudanDataset` with :func:`collate_ssd`; batches are
        ``(images float32 (B, 3, size, size) in [0, 1], labels float32
        (B, G, 5))``. Loaders and datasets have a ``data_source`` attribute.

    Raises:
        What :func:`obtain_pennfudan` and :class:`PennFudanDataset` raise.
    """
    from ..transforms import SSDEvalTransform, SSDTrainTransform

    data_source = obtain_pennfudan(root, source, seed)
    print(data_source.description, flush=True)
    train_tf = SSDTrainTransform(size=size) if augment else SSDEvalTransform(size=size)
    train = PennFudanDataset(data_source.root, "train", train_tf, num_val=num_val, seed=seed)
    val = PennFudanDataset(data_source.root, "val", SSDEvalTransform(size=size), num_val=num_val, seed=seed)
    g = torch.Generator().manual_seed(seed)
    train_iter = torch.utils.data.DataLoader(train, batch_size, shuffle=True, num_workers=num_workers,
                                             generator=g, collate_fn=collate_ssd)
    val_iter = torch.utils.data.DataLoader(val, batch_size, shuffle=False, num_workers=num_workers,
                                           collate_fn=collate_ssd)
    for obj in (train, val, train_iter, val_iter):
        obj.data_source = data_source
    return train_iter, val_iter
