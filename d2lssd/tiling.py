"""Tiled inference for small objects: detect on overlapping tiles of a large photo, then merge.

An SSD sees a photo resized to its input size (256 x 256 for TinySSD): an
object 20 pixels wide on a 4000-pixel-wide photo is about one pixel wide
there, and no anchor can find it. Slicing Aided Hyper Inference (SAHI) cuts
the photo into overlapping tiles, runs the detector on every tile in the
tile's own pixels (each tile is resized to the input size, so small things
are magnified), shifts the boxes back into the photo's pixels and merges
them with the detections of the whole photo resized (the "full inference"
pass, which keeps the large objects that no tile holds whole).

* :func:`tile_windows` gives the windows: corner format ``(x0, y0, x1, y1)``
  in pixels, half-open (a window holds the pixel columns ``x0 .. x1 - 1``),
  covering every pixel, neighbours sharing at least ``floor(overlap * tile)``
  pixels, the last window of each row and column flush with the border.
* :func:`merge_detections` merges detections of several passes: class-wise
  NMS (:func:`d2lssd.batched_nms`, the same as ``torchvision.ops.batched_nms``)
  and a top-k.
* :func:`tiled_detect` does the whole thing with a :class:`d2lssd.Detector`.

What it does not do: SAHI's greedy non-maximum *merging* (boxes of one
object cut by a tile border are matched by intersection over the smaller
box and joined into one box). Here a tile's box of the part of an object
cut by its border is suppressed only when its IoU with the whole object's
box exceeds the NMS threshold; a smaller part stays as an extra, usually
lower-scoring detection. With an overlap at least as large as the objects,
every object lies whole in some tile and is found whole there.

Source: Akyon, Altinuc and Temizel, "Slicing Aided Hyper Inference and
Fine-tuning for Small Object Detection", ICIP 2022 (SAHI; its
``get_slice_bboxes``: overlap as a fraction of the tile, the last tile
moved back inside the image).
"""

from __future__ import annotations

import math

import torch

from .photos import as_uint8_image
from .postprocess import batched_nms

__all__ = ["tile_windows", "merge_detections", "tiled_detect", "MAX_TILES"]

#: The default bound on the tiles of one image in :func:`tiled_detect` (a 8000 x 8000 photo cut into
#: 256-pixel tiles with overlap 0.2 has 1521).
MAX_TILES = 4096


def _tile_size(tile) -> tuple[int, int]:
    """``tile`` as ``(height, width)``; ValueError naming ``tile``."""
    pair = tile if isinstance(tile, (tuple, list)) else (tile, tile)
    ok = len(pair) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in pair)
    if not ok:
        raise ValueError(f"tile must be a positive integer (pixels) or (height, width) of positive integers, "
                         f"got {tile!r}")
    return int(pair[0]), int(pair[1])


def _overlap(overlap) -> float:
    if isinstance(overlap, bool) or not isinstance(overlap, (int, float)) or not 0.0 <= float(overlap) < 1.0:
        raise ValueError(f"overlap must be a number in [0, 1) (the fraction of a tile its neighbour shares), "
                         f"got {overlap!r}")
    return float(overlap)


def _axis(length: int, size: int, overlap: float) -> tuple[torch.Tensor, int]:
    """Window starts along one axis (int64, increasing) and the window's extent ``min(size, length)``."""
    s = min(size, length)
    step = s - math.floor(overlap * s)  # >= 1 since overlap < 1
    if length <= s:
        return torch.zeros(1, dtype=torch.int64), s
    n = -(-(length - s) // step) + 1  # ceil((length - s) / step) + 1
    starts = torch.arange(n, dtype=torch.int64) * step
    starts[-1] = length - s  # flush with the border; > starts[-2] because (n - 2) * step < length - s
    return starts, s


def _num_windows(height: int, width: int, tile, overlap: float) -> int:
    th, tw = tile
    count = 1
    for length, size in ((height, th), (width, tw)):
        s = min(size, length)
        step = s - math.floor(overlap * s)
        count *= 1 if length <= s else -(-(length - s) // step) + 1
    return count


def tile_windows(height: int, width: int, tile, overlap: float = 0.2, *,
                 max_windows: int | None = None) -> torch.Tensor:
    """The overlapping tiles that cover a ``height x width`` image (SAHI's slicing).

    Along each axis the window's extent is ``s = min(tile, length)`` (a tile
    larger than the image is the image), consecutive windows start ``s -
    floor(overlap * s)`` pixels apart, and the last window is moved back to
    end at the border. So every pixel is in some window, neighbours share at
    least ``floor(overlap * s)`` pixels (the last pair may share more), all
    windows of one image have the same size, and no window leaves the image.

    Args:
        height, width: the image's size in pixels (positive integers).
        tile: the tile's side in pixels, or ``(tile_height, tile_width)``
            (positive integers).
        overlap: fraction of a tile shared with its neighbour, in ``[0, 1)``
            (SAHI's ``overlap_height_ratio`` / ``overlap_width_ratio``; 0.2 as SAHI).
        max_windows: refuse more windows than this (``None``: no bound).

    Returns:
        int64 tensor ``(N, 4)`` on the CPU, rows ``(x0, y0, x1, y1)``: corner
        format in pixels, half-open (``x1 - x0`` is the width), row-major
        (top row first, left to right). ``N = 1`` (the whole image) when
        the tile is at least the image in both directions.

    Raises:
        ValueError: a ``height`` or ``width`` that is not a positive integer,
            a bad ``tile``, ``overlap`` outside ``[0, 1)``, more windows than
            ``max_windows`` (the message names ``tile``); each names the argument.

    Example: ``tile_windows(100, 250, 100, 0.2)`` gives x starts 0, 80, 150
    (the last one flush: 150 + 100 = 250) and one row.

    Source: SAHI's ``get_slice_bboxes`` (Akyon et al. 2022); vectorised.
    """
    for name, v in (("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer (pixels), got {v!r}")
    th, tw = _tile_size(tile)
    overlap = _overlap(overlap)
    if max_windows is not None:
        n = _num_windows(height, width, (th, tw), overlap)
        if n > max_windows:
            raise ValueError(f"tile {tile!r} with overlap {overlap:g} cuts a {width}x{height} image into {n} tiles, "
                             f"more than {max_windows}: use a larger tile")
    ys, sh = _axis(height, th, overlap)
    xs, sw = _axis(width, tw, overlap)
    y0, x0 = torch.meshgrid(ys, xs, indexing="ij")
    x0, y0 = x0.reshape(-1), y0.reshape(-1)
    return torch.stack((x0, y0, x0 + sw, y0 + sh), dim=1)


def merge_detections(detections: torch.Tensor, nms_threshold: float, top_k: int | None = None,
                     class_agnostic: bool = False) -> torch.Tensor:
    """Merge detections of several passes over one image: class-wise NMS, then the ``top_k`` best.

    Args:
        detections: float tensor ``(N, 6)``, rows ``(class, score, xmin, ymin,
            xmax, ymax)``, boxes in one frame (pixels of the image), any order.
        nms_threshold: IoU above which the lower-scoring box of the same class
            is suppressed (strictly above; ties in score keep the earlier row), in [0, 1].
        top_k: keep at most this many (``None``: all), >= 1.
        class_agnostic: suppress across classes (d2l's NMS), default per class.

    Returns:
        float tensor ``(K, 6)`` of the kept rows, by descending score, on
        ``detections``' device and dtype.

    Raises:
        ValueError: ``detections`` not a float ``(N, 6)`` tensor, a threshold
            outside [0, 1] or a ``top_k`` below 1 (each names the argument).

    Source: ours, on :func:`d2lssd.batched_nms` (tested against ``torchvision.ops.batched_nms``).
    """
    if not isinstance(detections, torch.Tensor) or detections.dim() != 2 or detections.shape[1] != 6 \
            or not detections.is_floating_point():
        raise ValueError("detections must be a float tensor (N, 6), got "
                         f"{tuple(detections.shape) if isinstance(detections, torch.Tensor) else type(detections)}")
    if isinstance(nms_threshold, bool) or not isinstance(nms_threshold, (int, float)) \
            or not 0.0 <= float(nms_threshold) <= 1.0:
        raise ValueError(f"nms_threshold must be a number in [0, 1], got {nms_threshold!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
    groups = (torch.zeros(len(detections), dtype=torch.int64, device=detections.device) if class_agnostic
              else detections[:, 0].long())
    keep = batched_nms(detections[:, 2:], detections[:, 1], groups, float(nms_threshold))
    if top_k is not None:
        keep = keep[:top_k]
    return detections[keep]


def _shift(dets: list, windows: torch.Tensor) -> torch.Tensor:
    """Tile detections (each ``(K_i, 6)`` in pixels of tile ``i``) -> one ``(sum K_i, 6)`` in image pixels."""
    counts = torch.tensor([len(d) for d in dets], dtype=torch.int64)
    out = torch.cat(dets) if dets else torch.zeros((0, 6))
    offsets = windows[:, :2].repeat(1, 2).to(out.dtype).repeat_interleave(counts, dim=0)  # (x0, y0, x0, y0)
    out = out.clone()
    out[:, 2:] += offsets
    return out


@torch.no_grad()
def tiled_detect(detector, images, tile, overlap: float = 0.2, *, full_image: bool = True, batch_size: int = 8,
                 max_tiles: int = MAX_TILES, **postprocess):
    """Detections on large photos of small objects: overlapping tiles, the whole photo, merged (SAHI).

    For each image: the tiles of :func:`tile_windows` are cut (views, not
    copies) and given to ``detector.detect`` in batches of ``batch_size``
    (each tile resized to the detector's input size: its own pixels
    magnified), with ``full_image`` the whole image too (resized: SAHI's
    "full inference"), in one call; the tiles' boxes are shifted into the
    image's pixels and all are merged by
    :func:`merge_detections` with the detector's post-processing settings
    (its ``nms_threshold``, per class unless ``class_agnostic``, at most
    ``detections_per_image``). The network runs where the detector is
    (``detect`` moves each batch to its device); the merge runs on the CPU,
    where ``detect`` returns its detections.

    When one tile covers the whole image (``tile`` at least its height and
    width), that tile *is* the full pass: it runs once and its detections are
    returned unmerged, so the result equals ``detector.detect(image, ...)``.

    Args:
        detector: a :class:`d2lssd.Detector` (or any object with its
            ``detect(images, batch_size=, **postprocess)`` and ``postprocess``).
        images: one image (a path, a PIL image, a tensor ``(3, H, W)``: uint8,
            or float in [0, 1]) or a list of them (sizes may differ), or a
            uint8 batch ``(B, 3, H, W)``, as :meth:`d2lssd.Detector.detect`.
        tile: the tile's side in pixels, or ``(height, width)`` (positive).
            A tile of the detector's input size (256 for TinySSD) shows
            objects at their own pixel size; the whole photo, resized, shows
            them ``photo width / input width`` times smaller.
        overlap: fraction of a tile shared with its neighbour, in [0, 1)
            (0.2, SAHI's default); at least the size of the objects over the
            tile size keeps every object whole in some tile.
        full_image: also detect on the whole image resized (default True;
            large objects that no tile holds whole are found there).
        batch_size: tiles per forward pass (>= 1).
        max_tiles: refuse an image that ``tile`` and ``overlap`` cut into
            more tiles than this (default :data:`MAX_TILES`): a bound on the time.
        **postprocess: :class:`d2lssd.PostProcess` fields for this call
            (``score_threshold=0.3``, ``nms_threshold=``, ``top_k=``): they
            apply to every pass and to the merge.

    Returns:
        as ``detect``: for a list or batch, a list of float32 CPU tensors
        ``(K_i, 6)``, rows ``(class, score, xmin, ymin, xmax, ymax)``, boxes
        in pixels of image ``i`` (corner format), by descending score; for one
        image, one such tensor.

    Raises:
        ValueError: a bad ``tile`` or ``overlap`` (named), ``full_image`` not
            a bool, a bad ``batch_size`` or ``max_tiles``, an image cut into
            more than ``max_tiles`` tiles, what ``detect`` raises (a bad
            post-processing setting, an image that cannot be read).
        FileNotFoundError: a path with no file.

    Source: Akyon et al. 2022 (SAHI: slicing, the full-inference pass, merging);
    ours (batched tiles through the detector's own ``detect``).
    """
    _tile_size(tile)  # checked before any image is read
    overlap = _overlap(overlap)
    if not isinstance(full_image, bool):
        raise ValueError(f"full_image must be True or False, got {full_image!r}")
    for name, v in (("batch_size", batch_size), ("max_tiles", max_tiles)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    post = detector.postprocess.replace(**postprocess) if postprocess else detector.postprocess
    single = not isinstance(images, (list, tuple)) and not (isinstance(images, torch.Tensor) and images.dim() == 4)
    items = [images] if single else list(images)
    out = []
    for item in items:
        image = as_uint8_image(item)
        h, w = int(image.shape[-2]), int(image.shape[-1])
        windows = tile_windows(h, w, tile, overlap, max_windows=max_tiles)
        crops = [image[:, y0:y1, x0:x1] for x0, y0, x1, y1 in windows.tolist()]
        whole = len(windows) == 1  # one window only when the tile covers the image: it is the image
        extra = [image] if full_image and not whole else []  # the full pass, in the same batches
        dets = detector.detect(crops + extra, batch_size=batch_size, **postprocess)
        if whole:
            out.append(dets[0])  # detect's own result
            continue
        merged = _shift(dets[:len(crops)], windows)
        if extra:
            merged = torch.cat((merged, dets[-1]))
        out.append(merge_detections(merged, post.nms_threshold, post.detections_per_image, post.class_agnostic))
    return out[0] if single else out
