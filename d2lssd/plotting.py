"""Drawing boxes, anchors and IoU matrices on images with matplotlib.

Everything here draws on a matplotlib ``Axes`` it is given (or creates one)
and never calls ``plt.show()``, so the chapters and the tests decide when a
figure is shown or closed. Boxes given to these functions are corner format
(xmin, ymin, xmax, ymax) in **pixels** of the image drawn, with the origin at
the top-left corner and y pointing down (matplotlib's ``imshow`` convention);
:func:`d2lssd.photos.to_pixels` converts normalized boxes.

This module sits on top of the package: nothing in the core imports it.

Sources: d2l.ai §14.3 "Object Detection and Bounding Boxes" (``bbox_to_rect``)
and §14.4 "Anchor Boxes" (``show_bboxes``, the anchors of one pixel), with the
same names and arguments.
"""

from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Rectangle

from ._checks import check_boxes
from .boxes import to_pixels

__all__ = ["set_figsize", "bbox_to_rect", "show_bboxes", "show_image", "show_anchors_of_pixel",
           "plot_iou_matrix"]

DEFAULT_COLORS = ("b", "g", "r", "m", "c")


def set_figsize(figsize: tuple[float, float] = (3.5, 2.5)) -> None:
    """Set matplotlib's default figure size (inches) for the figures that follow.

    Raises:
        ValueError: ``figsize`` is not two positive numbers.

    Source: d2l.ai §2.4 ``set_figsize`` (same name and default).
    """
    try:
        w, h = (float(v) for v in figsize)
    except (TypeError, ValueError):
        raise ValueError(f"figsize must be (width, height) in inches, got {figsize!r}") from None
    if not (w > 0 and h > 0 and math.isfinite(w) and math.isfinite(h)):
        raise ValueError(f"figsize must be two positive numbers, got {figsize!r}")
    plt.rcParams["figure.figsize"] = (w, h)


def _to_numpy(obj):
    """Tensors in ``obj`` (a tensor, or lists and tuples holding tensors at any depth)
    as float64 numpy arrays: detached from autograd and moved to the CPU, so a
    network's outputs (``requires_grad``, on a GPU) can be drawn as they are.
    Anything else is returned unchanged for ``np.asarray``."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().double().numpy()
    if isinstance(obj, (list, tuple)):
        return [_to_numpy(o) for o in obj]
    return obj


def _as_boxes(bboxes, name: str = "bboxes") -> np.ndarray:
    """Boxes ``(N, 4)`` (tensor, array, or list of tensors, arrays or 4-lists) as
    float64 numpy; ValueError if not."""
    bboxes = _to_numpy(bboxes)
    try:
        arr = np.asarray(bboxes, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers of shape (N, 4), got {type(bboxes).__name__}") \
            from None
    if arr.ndim == 1 and arr.shape[0] == 0:
        arr = arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4) (xmin, ymin, xmax, ymax), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def bbox_to_rect(bbox, color) -> Rectangle:
    """A matplotlib rectangle outlining one box.

    Args:
        bbox: 4 numbers (list, tuple, numpy array or tensor; a tensor may
            require grad and be on any device, it is detached and copied to the
            CPU), corner format (xmin, ymin, xmax, ymax), in the axes' data
            units (pixels of the image drawn).
        color: any matplotlib colour, used for the edge.

    Returns:
        ``matplotlib.patches.Rectangle`` with ``xy=(xmin, ymin)``,
        ``width=xmax - xmin``, ``height=ymax - ymin``, no fill, line width 2;
        not yet added to any axes (use ``ax.add_patch``).

    Raises:
        ValueError: ``bbox`` is not 4 finite numbers.

    Source: d2l.ai §14.3.2 ``bbox_to_rect`` (same name, arguments and result).
    """
    bbox = _to_numpy(bbox)
    try:
        arr = np.asarray(bbox, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"bbox must be 4 numbers (xmin, ymin, xmax, ymax), got {bbox!r}") from None
    if arr.shape != (4,):
        raise ValueError(f"bbox must be 4 numbers (xmin, ymin, xmax, ymax), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"bbox contains NaN or infinity: {arr.tolist()}")
    x1, y1, x2, y2 = (float(v) for v in arr)
    return Rectangle(xy=(x1, y1), width=x2 - x1, height=y2 - y1, fill=False, edgecolor=color,
                     linewidth=2)


def _make_list(obj, default=None) -> list:
    if obj is None:
        return list(default) if default is not None else []
    if isinstance(obj, (list, tuple)):
        return list(obj)
    return [obj]


def show_bboxes(axes, bboxes, labels=None, colors=None) -> None:
    """Draw boxes, optionally labelled, on an axes.

    Args:
        axes: a matplotlib ``Axes`` (usually showing an image).
        bboxes: ``(N, 4)`` boxes: a tensor, an array, or a list of ``N``
            boxes each a tensor ``(4,)``, an array or a 4-list (d2l's SSD
            section passes ``[row[2:6] * scale]``); corner format, in the
            axes' data units (pixels of the image). ``N`` may be 0. Tensors
            may require grad and live on any device: they are detached and
            copied to the CPU.
        labels: a string or a list of up to ``N`` strings; box ``i`` gets
            ``labels[i]`` if there is one (d2l: a shorter list labels only the
            first boxes).
        colors: a colour or a list of colours, cycled over the boxes; default
            ``["b", "g", "r", "m", "c"]``.

    Returns:
        None, as d2l's (so a notebook cell ending with the call prints
        nothing). The ``N`` ``Rectangle`` patches are appended to
        ``axes.patches`` in the order of ``bboxes`` and the labels to
        ``axes.texts``. Each label is written in white (black on a white box)
        in a box of the rectangle's colour, anchored *inside* the rectangle at
        its top-left corner (d2l centres it on the corner, where it can fall
        off the image).

    Raises:
        ValueError: ``bboxes`` is not ``(N, 4)`` finite numbers.

    Source: d2l.ai §14.4.1 ``show_bboxes`` (same name, arguments and colours).
    """
    boxes = _as_boxes(bboxes)
    labels = _make_list(labels)
    colors = _make_list(colors, DEFAULT_COLORS)
    if not colors:
        raise ValueError("colors must not be empty")
    for i, bbox in enumerate(boxes):
        color = colors[i % len(colors)]
        rect = bbox_to_rect(bbox, color)
        axes.add_patch(rect)
        if i < len(labels) and labels[i] is not None:
            text_color = "k" if color in ("w", "white") else "w"
            axes.text(rect.xy[0], rect.xy[1], str(labels[i]), va="top", ha="left", fontsize=9,
                      color=text_color, bbox=dict(facecolor=color, lw=0, pad=1.5))


def _to_hwc(image) -> np.ndarray:
    """An image as a numpy array ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``.

    numpy arrays are taken as HWC. A 3-d tensor whose first dimension is 1, 3
    or 4 and whose last is not is taken as CHW and permuted.
    """
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.dim() == 3 and t.shape[0] in (1, 3, 4) and t.shape[-1] not in (1, 3, 4):
            t = t.permute(1, 2, 0)
        image = t.numpy()
    try:
        arr = np.asarray(image)
    except (TypeError, ValueError):
        raise ValueError(f"image must be an array or tensor, got {type(image).__name__}") from None
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] in (3, 4))) or 0 in arr.shape:
        raise ValueError("image must be (H, W), (H, W, 3|4) or a CHW tensor (1|3|4, H, W), "
                         f"got shape {arr.shape}")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer)
                                 or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"image must have a numeric dtype, got {arr.dtype}")
    return arr


def show_image(image, ax=None, title: str | None = None):
    """Show an image with pixel coordinates on the axes.

    Args:
        image: numpy array ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``, or a
            tensor in that layout or CHW ``(1|3|4, H, W)``. Integers are
            0-255, floats 0-1 (values outside are clipped, as matplotlib does).
            A tensor may be on any device and require grad.
        ax: the axes to draw on; a new figure and axes if None.
        title: optional axes title.

    Returns:
        The axes. Data coordinates are pixels with the origin at the
        image's top-left *corner* and y pointing down: the image spans
        ``[0, W] x [0, H]`` (``extent=(0, W, H, 0)``), so pixel ``(r, c)``
        covers ``[c, c + 1] x [r, r + 1]`` and a box ``(0, 0, W, H)`` outlines
        the whole image. (Plain ``imshow`` would shift everything by half a
        pixel.)

    Raises:
        ValueError: the image has another shape or a non-numeric dtype.

    Source: d2l.ai §14.3 (``d2l.plt.imshow(img)``).
    """
    arr = _to_hwc(image)
    if np.issubdtype(arr.dtype, np.floating):
        arr = np.clip(arr, 0.0, 1.0)
    if ax is None:
        _, ax = plt.subplots()
    height, width = arr.shape[:2]
    ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None, extent=(0, width, height, 0))
    if title is not None:
        ax.set_title(title)
    return ax


def show_anchors_of_pixel(ax, image, anchors, fmap_h: int, fmap_w: int, i: int, j: int,
                          labels=None) -> torch.Tensor:
    """Show the image and the anchors centred on one feature-map pixel.

    Args:
        ax: matplotlib axes to draw on.
        image: as in :func:`show_image`, ``H`` pixels high and ``W`` wide.
        anchors: float tensor ``(1, fmap_h * fmap_w * a, 4)`` (or without the
            batch dimension), normalized corner format, in
            :func:`d2lssd.multibox_prior`'s order (row-major over the map, the
            ``a`` anchors of a pixel together), e.g. ``multibox_prior`` of a
            ``fmap_h x fmap_w`` map.
        fmap_h, fmap_w: feature-map height and width.
        i, j: the pixel's row and column, ``0 <= i < fmap_h``, ``0 <= j < fmap_w``.
        labels: optional labels for the ``a`` boxes (see :func:`show_bboxes`).

    Returns:
        float32 tensor ``(a, 4)``: the pixel's anchors in image pixels
        (normalized coordinates times ``(W, H, W, H)``), as drawn. Their
        centre is ``((j + 0.5) / fmap_w * W, (i + 0.5) / fmap_h * H)``, marked
        with a dot.

    Raises:
        ValueError: ``anchors`` is not a float tensor ``([1,] A, 4)`` without
            NaN, ``A`` is not a positive multiple of ``fmap_h * fmap_w``, or
            ``(i, j)`` is outside the map.

    Source: d2l.ai §14.4.1 (``boxes = Y.reshape(h, w, 5, 4)``,
    ``show_bboxes(fig.axes, boxes[250, 250, :, :] * bbox_scale, ...)``).
    """
    check_boxes(anchors, "anchors", min_dim=2, max_dim=3, check_order=False)
    if anchors.dim() == 3:
        if anchors.shape[0] != 1:
            raise ValueError(f"anchors must have batch size 1, got shape {tuple(anchors.shape)}")
        anchors = anchors[0]
    for n, v in (("fmap_h", fmap_h), ("fmap_w", fmap_w)):
        if isinstance(v, bool) or int(v) != v or v < 1:
            raise ValueError(f"{n} must be a positive integer, got {v!r}")
    fmap_h, fmap_w = int(fmap_h), int(fmap_w)
    num = anchors.shape[0]
    if num == 0 or num % (fmap_h * fmap_w):
        raise ValueError(f"anchors has {num} boxes, not a positive multiple of "
                         f"fmap_h * fmap_w = {fmap_h * fmap_w}")
    if any(isinstance(v, bool) or int(v) != v for v in (i, j)) or not (
            0 <= i < fmap_h and 0 <= j < fmap_w):
        raise ValueError(f"pixel (i, j) = ({i}, {j}) is outside the {fmap_h} x {fmap_w} map")
    a = num // (fmap_h * fmap_w)
    arr = _to_hwc(image)
    height, width = arr.shape[:2]
    boxes = to_pixels(anchors.detach().cpu().float().reshape(fmap_h, fmap_w, a, 4)[int(i), int(j)], width, height)
    show_image(arr, ax=ax)
    show_bboxes(ax, boxes, labels)
    ax.plot([(j + 0.5) / fmap_w * width], [(i + 0.5) / fmap_h * height], "o", color="w",
            markeredgecolor="k", markersize=5)
    return boxes


def plot_iou_matrix(ax, iou, row_labels: Sequence[str] | None = None,
                    col_labels: Sequence[str] | None = None, fmt: str = "{:.2f}"):
    """A heatmap of an IoU matrix with each value written in its cell.

    Args:
        ax: matplotlib axes.
        iou: ``(N, M)`` tensor or array of values in [0, 1], e.g.
            ``d2lssd.box_iou(anchors, ground_truth)``.
        row_labels, col_labels: ``N`` and ``M`` tick labels (default: the
            indices).
        fmt: format of the numbers in the cells.

    Returns:
        The ``AxesImage`` (colour scale fixed to [0, 1], ``viridis``); pass it
        to ``plt.colorbar`` for a colour bar. Cell ``(r, c)`` is centred at
        data coordinates ``(c, r)``; its text is black on light cells and white
        on dark ones.

    Raises:
        ValueError: ``iou`` is not 2-d, contains NaN, or the labels do not
            match its shape.

    Source: d2l.ai §14.4.3 (the IoU table that assigns anchors to ground truth).
    """
    if isinstance(iou, torch.Tensor):
        iou = iou.detach().cpu().double().numpy()
    arr = np.asarray(iou, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"iou must be 2-d (N, M), got shape {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError("iou contains NaN")
    n, m = arr.shape
    row_labels = list(range(n)) if row_labels is None else list(row_labels)
    col_labels = list(range(m)) if col_labels is None else list(col_labels)
    if len(row_labels) != n or len(col_labels) != m:
        raise ValueError(f"need {n} row labels and {m} column labels, got {len(row_labels)} "
                         f"and {len(col_labels)}")
    im = ax.imshow(arr, vmin=0.0, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(m), [str(c) for c in col_labels])
    ax.set_yticks(range(n), [str(r) for r in row_labels])
    for r in range(n):
        for c in range(m):
            ax.text(c, r, fmt.format(arr[r, c]), ha="center", va="center", fontsize=8,
                    color="k" if arr[r, c] > 0.6 else "w")
    return im
