"""The files of the Penn-Fudan data set: the annotation text format and the layout's names.

Shared by the reader (:mod:`d2lssd.data.pennfudan`) and the offline generator
(:mod:`d2lssd.data.pennfudan_generator`), so that neither imports the other.
The format is described in :mod:`d2lssd.data.pennfudan`'s docstring.

Source: the data set's readme and files.
"""

from __future__ import annotations

import re

import torch

__all__ = ["FOLDER", "CLASS_TAG", "NUM_REAL_IMAGES", "parse_annotation", "format_annotation"]

#: The real data's folder (inside its zip archive).
FOLDER = "PennFudanPed"
#: The class tag the real annotation files give every pedestrian.
CLASS_TAG = "PASpersonWalking"
#: Images in the real data (96 from UPenn, 74 from Fudan).
NUM_REAL_IMAGES = 170

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
        f'Image filename : "{FOLDER}/PNGImages/{name}.png"',
        f"Image size (X x Y x C) : {width} x {height} x 3",
        'Database : "The Penn-Fudan-Pedestrian Database"',
        f"Objects with ground truth : {len(boxes)} {{ "
        + " ".join(f'"{CLASS_TAG}"' for _ in boxes) + " }",
        "# Note there may be some objects not included in the ground truth list for they are "
        "severe-occluded",
        "# or have very small size.",
        "# Top left pixel co-ordinates : (1, 1)",
    ]
    for k, (x1, y1, x2, y2) in enumerate(boxes, start=1):
        lines += [
            f'# Details for pedestrian {k} ("{CLASS_TAG}")',
            f'Original label for object {k} "{CLASS_TAG}" : "PennFudanPed"',
            f'Bounding box for object {k} "{CLASS_TAG}" (Xmin, Ymin) - (Xmax, Ymax) : '
            f"({x1 + 1}, {y1 + 1}) - ({x2}, {y2})",
            f'Pixel mask for object {k} "{CLASS_TAG}" : "{FOLDER}/PedMasks/{name}_mask.png"',
            "",
        ]
    return "\n".join(lines) + "\n"
