"""Real photos for the chapters, with hand-annotated ground-truth boxes.

The three photos ship with scikit-image (no download needed) and have clear
licences, quoted below from ``skimage.data``'s docstrings:

================  ===========  ==========================================================
name              size (WxH)   licence
================  ===========  ==========================================================
``astronaut``     512 x 512    No known copyright restrictions, released into the public
                               domain. (NASA)
``chelsea``       451 x 300    No copyright restrictions. CC0 by the photographer
                               (Stefan van der Walt).
``coffee``        600 x 400    No copyright restrictions. CC0 by the photographer
                               (Rachel Michetti).
================  ===========  ==========================================================

:data:`GROUND_TRUTH` holds boxes drawn by hand for the course (by zooming in on
each photo with a pixel grid), in **pixels**, corner format (xmin, ymin, xmax,
ymax) with x to the right and y down from the top-left corner of the image.
:func:`ground_truth_labels` turns them into the package's label rows
(class, xmin, ymin, xmax, ymax) normalized to [0, 1], and :func:`to_pixels` /
:func:`to_normalized` (from :mod:`d2lssd.boxes`, re-exported here) convert boxes
between the two units.

Any image a user passes (a file, a PIL image, a tensor) becomes a uint8 RGB
tensor with :func:`as_uint8_image`, and :func:`draw_detections` writes a copy
of one with detections in pixels drawn on it (PIL, no matplotlib: the command
lines use it).

Sources: ``skimage.data`` (photos and licences); d2l.ai §14.3 (the
cat-and-dog photo annotated by hand is the same idea); PIL's ``ImageDraw``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from ._io import atomic_write
from .boxes import to_normalized, to_pixels  # defined with the other box geometry; importable from here too
from .data.images import read_upright_rgb, upright_rgb  # the one reader of files as people see them

__all__ = ["PHOTOS", "GROUND_TRUTH", "load_photo", "ground_truth_labels", "as_uint8_image", "draw_detections",
           "to_pixels", "to_normalized"]

#: Metadata of the bundled photos: ``name -> {"description", "licence", "source", "shape"}``.
#: ``licence`` is quoted from the ``skimage.data`` function's docstring;
#: ``shape`` is ``(height, width, 3)`` of the uint8 RGB array.
PHOTOS: dict[str, dict] = {
    "astronaut": {
        "description": "Astronaut Eileen Collins in an orange flight suit, holding her helmet, "
                       "with a US flag and a space shuttle model behind her.",
        "licence": "No known copyright restrictions, released into the public domain.",
        "source": "NASA Great Images database (https://flic.kr/p/r9qvLn), "
                  "via skimage.data.astronaut",
        "shape": (512, 512, 3),
    },
    "chelsea": {
        "description": "Chelsea the cat, a close-up of her face.",
        "licence": "No copyright restrictions. CC0 by the photographer (Stefan van der Walt).",
        "source": "skimage.data.chelsea (photograph by Stefan van der Walt)",
        "shape": (300, 451, 3),
    },
    "coffee": {
        "description": "A cup of espresso on a saucer with a spoon, on a wooden table.",
        "licence": "No copyright restrictions. CC0 by the photographer (Rachel Michetti).",
        "source": "skimage.data.coffee (photograph by Rachel Michetti, courtesy of "
                  "Pikolo Espresso Bar)",
        "shape": (400, 600, 3),
    },
}

#: Hand-annotated objects: ``name -> [(class_name, [xmin, ymin, xmax, ymax]), ...]`` in
#: pixels (corner format, origin at the top-left corner, y down). Boxes cover the
#: visible part of each object; the flag and the astronaut are partly hidden, and
#: the photo frame cuts the cat, the flag and the shuttle model.
GROUND_TRUTH: dict[str, list[tuple[str, list[int]]]] = {
    "astronaut": [
        ("person", [20, 15, 360, 512]),   # hair to the bottom edge, without the helmet
        ("face", [178, 72, 268, 186]),    # forehead below the fringe to the chin
        ("helmet", [287, 349, 511, 512]),  # the helmet she holds, bottom right
        ("flag", [0, 0, 96, 512]),        # US flag, left edge
        ("rocket", [355, 0, 452, 272]),   # space shuttle model, without its stand
        ("patch", [134, 349, 206, 422]),  # round mission patch on her chest
    ],
    "chelsea": [
        ("cat", [0, 0, 400, 300]),        # the cat fills most of the frame; right ear tip at x=400
        ("eye", [134, 88, 206, 150]),     # her right eye (left in the image)
        ("eye", [295, 113, 344, 164]),    # her left eye
        ("nose", [242, 229, 292, 262]),
    ],
    "coffee": [
        ("cup", [173, 20, 405, 305]),     # rim to the bottom of the handle
        ("saucer", [75, 72, 479, 388]),
        ("spoon", [326, 68, 424, 324]),
    ],
}


def _check_name(name) -> None:
    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; choose one of {sorted(PHOTOS)}")


def load_photo(name: str) -> np.ndarray:
    """Load one of the bundled photos.

    Args:
        name: ``"astronaut"``, ``"chelsea"`` or ``"coffee"`` (the keys of :data:`PHOTOS`).

    Returns:
        numpy uint8 array ``(H, W, 3)``, RGB, values 0-255: ``(512, 512, 3)``
        for astronaut, ``(300, 451, 3)`` for chelsea, ``(400, 600, 3)`` for
        coffee (also in ``PHOTOS[name]["shape"]``). A fresh array on every call.

    Raises:
        ValueError: ``name`` is not one of the photos.

    Source: ``skimage.data.astronaut`` / ``chelsea`` / ``coffee`` (the files ship
    inside scikit-image; nothing is downloaded).
    """
    _check_name(name)
    import skimage.data  # imported here: scikit-image is slow to import

    image = np.ascontiguousarray(getattr(skimage.data, name)())
    if image.dtype != np.uint8 or image.shape != PHOTOS[name]["shape"]:
        raise RuntimeError(f"skimage.data.{name}() returned {image.dtype} {image.shape}, "
                           f"expected uint8 {PHOTOS[name]['shape']}")
    return image


def ground_truth_labels(name: str, classes: Sequence[str]) -> torch.Tensor:
    """The hand-annotated objects of a photo as d2lssd label rows.

    Args:
        name: a key of :data:`GROUND_TRUTH`.
        classes: the class names in index order, e.g. ``["cup", "saucer",
            "spoon"]``: an object of class ``classes[k]`` gets class index
            ``k`` (the label convention has no background class; the model's
            class 0 is background and label ``k`` becomes model class
            ``k + 1``). Objects whose class is not listed are left out, so
            ``["eye"]`` gives only the cat's eyes.

    Returns:
        float32 tensor ``(G, 5)``, rows (class, xmin, ymin, xmax, ymax) with
        the box normalized to [0, 1] by the photo's width and height, in the
        order of ``GROUND_TRUTH[name]``. ``G`` may be 0 (shape ``(0, 5)``).

    Raises:
        ValueError: unknown ``name``; ``classes`` is a string, empty, or
            lists a name twice.

    Source: d2l.ai §14.4.3 (ground truth as rows (class, normalized corner box)).
    """
    _check_name(name)
    if isinstance(classes, str) or len(classes) == 0:
        raise ValueError(f"classes must be a non-empty sequence of class names, got {classes!r}")
    classes = list(classes)
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes lists a name twice: {classes}")
    height, width = PHOTOS[name]["shape"][:2]
    rows = [(classes.index(c), box) for c, box in GROUND_TRUTH[name] if c in classes]
    if not rows:
        return torch.zeros((0, 5), dtype=torch.float32)
    cls = torch.tensor([c for c, _ in rows], dtype=torch.float32)
    boxes = to_normalized(torch.tensor([b for _, b in rows], dtype=torch.float32), width, height)
    return torch.cat((cls[:, None], boxes), dim=1)


def as_uint8_image(image) -> torch.Tensor:
    """Any image a user passes (a file, a PIL image, a tensor) as a uint8 RGB tensor ``(3, H, W)``.

    Args:
        image: a path (``str`` / ``os.PathLike``) of a file PIL reads, a PIL
            image (any mode; converted to RGB; its EXIF orientation applied,
            as labelling tools and browsers show a phone photo upright, and
            as the data sets read their images: :mod:`d2lssd.data.images`;
            an EXIF block that cannot be parsed leaves the pixels as
            stored), or a tensor ``(3, H, W)``:
            uint8 is returned as it is (on the CPU), floats are taken as
            [0, 1] and rounded to 0..255.

    Returns:
        uint8 tensor ``(3, H, W)`` on the CPU, RGB, pixels of the original image.

    Raises:
        FileNotFoundError: a path with no file. ValueError: a file PIL cannot
        read, or an object that is none of the above.

    Source: ours (PIL ``Image.open``/``convert``, ``ImageOps.exif_transpose``,
    through :func:`d2lssd.data.images.read_upright_rgb` / ``upright_rgb``).
    """
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"no image file at {path}")
        try:
            return read_upright_rgb(path)
        except OSError as e:
            raise ValueError(f"cannot read image {path}: {e}") from e
    if isinstance(image, Image.Image):
        return torch.from_numpy(np.array(upright_rgb(image))).permute(2, 0, 1)
    if isinstance(image, torch.Tensor) and image.dim() == 3 and image.shape[0] == 3:
        image = image.as_subclass(torch.Tensor).cpu()
        if image.is_floating_point():  # [0, 1] floats
            image = (image.clamp(0, 1) * 255).round().to(torch.uint8)
        return image
    raise ValueError(f"image must be a path, a PIL image or a tensor (3, H, W), got {type(image).__name__}")


def draw_detections(image, detections: torch.Tensor, path, classes=("pedestrian",)) -> Path:
    """Write a copy of ``image`` with the detections (pixels) drawn as labelled boxes; atomic write.

    Args:
        image: path, PIL image or uint8 tensor ``(3, H, W)``.
        detections: ``(K, 6)`` in pixels, as returned by :func:`d2lssd.pennfudan.detect`.
        path: output file (its suffix picks the format, e.g. ``.png``).
        classes: the name of each class index (default ``("pedestrian",)``);
            an index without a name is drawn as its number.

    Returns:
        ``Path(path)``.

    Raises:
        FileNotFoundError, ValueError: an image :func:`as_uint8_image` cannot read.
    """
    arr = as_uint8_image(image).permute(1, 2, 0).numpy()
    im = Image.fromarray(arr)
    draw = ImageDraw.Draw(im)
    for c, s, x0, y0, x1, y1 in detections.tolist():
        draw.rectangle([x0, y0, max(x1 - 1, x0), max(y1 - 1, y0)], outline=(255, 40, 40), width=3)
        name = classes[int(c)] if 0 <= int(c) < len(classes) else str(int(c))
        draw.text((x0 + 3, y0 + 2), f"{name} {s:.2f}", fill=(255, 255, 0))
    path = Path(path)
    atomic_write(path, lambda f: im.save(f, format=_pil_format(path)))
    return path


def _pil_format(path: Path) -> str:
    return {".jpg": "JPEG", ".jpeg": "JPEG"}.get(path.suffix.lower(), "PNG")
