"""Image files as people see them: the EXIF orientation applied, RGB, uint8.

A phone stores a photo's pixels as the sensor read them and writes an EXIF
``Orientation`` tag (tag ``0x0112``, values 1 to 8) saying how to turn them
for display. Browsers, every labelling tool (CVAT, Label Studio, LabelImg,
Roboflow) and Ultralytics show such a photo upright and export the *upright*
width, height and boxes. This module is the one place where the package
reads an image file that way; the COCO, VOC and YOLO readers, the data
checker and :func:`d2lssd.photos.as_uint8_image` all use it.

=============  ==============================================  =================
orientation    the stored pixels, shown upright by              width and height
=============  ==============================================  =================
1 (or none)    nothing                                          as stored
2              mirroring left-right                             as stored
3              turning 180 degrees                              as stored
4              mirroring top-bottom                             as stored
5              transposing (mirror along the main diagonal)     exchanged
6              turning 90 degrees clockwise                     exchanged
7              transversing (mirror along the other diagonal)   exchanged
8              turning 90 degrees counterclockwise              exchanged
=============  ==============================================  =================

An EXIF block that cannot be parsed, or an orientation value outside 1..8,
counts as orientation 1 (the pixels are used as stored), as browsers and
Ultralytics' ``exif_size`` treat it.

Source: the EXIF 2.3 specification (tag 274, Orientation); PIL
``ImageOps.exif_transpose`` (which does the turning) and ``Image.getexif``
(which also reads a ``tiff:Orientation`` in XMP); ``ultralytics/data/utils.py``
``exif_size``.
"""

from __future__ import annotations

import os

import numpy as np
import torch

__all__ = ["EXIF_ORIENTATION_TAG", "exif_orientation", "upright_size", "upright_rgb", "read_upright_rgb",
           "describe_orientation"]

#: The EXIF tag number of ``Orientation`` (274).
EXIF_ORIENTATION_TAG = 0x0112

_HOW = {1: "not turned", 2: "mirrored left-right", 3: "turned 180 degrees", 4: "mirrored top-bottom",
        5: "transposed (mirrored along the diagonal)", 6: "turned 90 degrees clockwise",
        7: "transversed (mirrored along the anti-diagonal)", 8: "turned 90 degrees counterclockwise"}


def exif_orientation(im, decode: bool = True) -> int:
    """The EXIF orientation of an open PIL image, ``1`` .. ``8``.

    Args:
        im: a PIL image (e.g. just opened with ``Image.open``).
        decode: allow PIL to decode the pixels to find the tag (a PNG whose
            ``eXIf`` chunk comes after the image data: PIL only finds it by
            decoding). ``False`` uses only what opening the file read (the
            header: a JPEG's EXIF block, a PNG's chunks before the image data),
            so nothing is decoded.

    Returns:
        int: the tag's value, ``1`` when the image has no EXIF orientation,
        when its EXIF cannot be parsed, or when the value is not 1..8.

    Source: PIL ``Image.getexif`` (EXIF, then XMP ``tiff:Orientation``), as
    ``ImageOps.exif_transpose`` reads it.
    """
    from PIL import Image

    try:
        # Image.Image.getexif reads what was parsed at opening; a PNG's own getexif decodes the file first.
        exif = im.getexif() if decode else Image.Image.getexif(im)
        value = exif.get(EXIF_ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block is metadata nobody can apply: the pixels are shown as stored
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def upright_size(size, orientation: int) -> tuple[int, int]:
    """``(width, height)`` of an image shown upright, from its stored size and EXIF orientation.

    Args:
        size: ``(width, height)`` in pixels as stored (PIL's ``im.size``).
        orientation: EXIF orientation (see :func:`exif_orientation`).

    Returns:
        ``(width, height)``: exchanged for orientations 5 to 8 (a quarter turn), else as given.
    """
    w, h = size
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def describe_orientation(orientation: int) -> str:
    """Words for what an EXIF orientation does to the stored pixels, e.g. ``"turned 90 degrees clockwise"``.

    Raises:
        ValueError: ``orientation`` is not 1..8.
    """
    if orientation not in _HOW:
        raise ValueError(f"orientation must be an EXIF orientation 1..8, got {orientation!r}")
    return _HOW[orientation]


def upright_rgb(im):
    """An open PIL image shown upright (EXIF orientation applied) and converted to RGB.

    Args:
        im: a PIL image of any mode.

    Returns:
        a new PIL image, mode ``"RGB"``, size :func:`upright_size` of ``im.size``;
        ``im`` is left as it is (but decoded).

    Raises:
        what PIL raises decoding the pixels (``OSError`` for a truncated file,
        see :func:`d2lssd.data.report.image_read_errors`).

    Source: PIL ``ImageOps.exif_transpose`` (called only when there is
    something to turn, which saves it a copy of every upright image).
    """
    from PIL import ImageOps

    im.load()  # decode first: a PNG's eXIf chunk after the image data is known only then
    if exif_orientation(im) != 1:
        im = ImageOps.exif_transpose(im)
    return im.convert("RGB")


def read_upright_rgb(path: str | os.PathLike) -> torch.Tensor:
    """An image file's pixels as people see them: uint8 RGB tensor ``(3, H, W)``, EXIF orientation applied.

    ``H`` and ``W`` are the upright height and width (for a phone photo with
    orientation 6 stored 4000 x 3000, ``(3, 4000, 3000)``): the size a
    labelling tool shows and exports, and the frame of its boxes.

    Args:
        path: the image file (any format PIL reads; any mode, converted to RGB).

    Returns:
        uint8 tensor ``(3, H, W)`` on the CPU, values 0-255 (a channels-last
        view ``permute(2, 0, 1)`` of a fresh ``(H, W, 3)`` array).

    Raises:
        FileNotFoundError: no such file. ``PIL.UnidentifiedImageError`` (an
        ``OSError``): not an image. ``OSError``, ``SyntaxError``,
        ``ValueError``, ``EOFError``, ``PIL.Image.DecompressionBombError``:
        the file cannot be decoded (all in
        :func:`d2lssd.data.report.image_read_errors`, which the readers'
        skip-on-decode-error logic catches). The file is closed either way.

    Source: ours, on PIL ``Image.open`` and :func:`upright_rgb`.
    """
    from PIL import Image

    with Image.open(path) as im:
        arr = np.array(upright_rgb(im))  # a writable copy, (H, W, 3) uint8
    return torch.from_numpy(arr).permute(2, 0, 1)
