"""ipywidgets explorers for the chapters: anchors, IoU and NMS with knobs to turn.

Each explorer is two layers:

* a plain drawing function, ``draw_*(ax, ...)``, that draws on the axes it is
  given, returns the numbers it drew (anchors, an IoU, kept indices) and never
  calls ``plt.show()``: the tests call these directly, without a browser;
* a thin ``*_explorer(...)`` that wraps it in ``ipywidgets.interactive``: one
  slider per argument, and on every change a fresh figure drawn by the
  ``draw_*`` function (the previous one is closed). The returned widget's
  ``children`` are the sliders followed by the output area, and its ``result``
  attribute is the last ``draw_*`` return value.

The arithmetic lives in the core package (:func:`d2lssd.multibox_prior`,
:func:`d2lssd.box_iou`, :func:`d2lssd.nms`); this module only draws it.

Sources: d2l.ai §14.4 (anchors of one pixel, the NMS figures with
``show_bboxes``); ``ipywidgets.interactive``.
"""

from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Rectangle

from ._checks import check_boxes
from .anchors import multibox_prior
from .boxes import box_center_to_corner, box_corner_to_center, box_iou, clip_boxes
from .nms import nms
from .plotting import _to_hwc, show_anchors_of_pixel, show_bboxes, show_image

__all__ = ["draw_anchors", "anchor_explorer", "draw_iou", "iou_explorer", "draw_nms",
           "nms_explorer", "detections_like_boxes", "draw_losses", "loss_explorer"]


def _interactive(draw, figsize, **controls):
    """``ipywidgets.interactive`` that calls ``draw(ax, **values)`` on a new figure per update."""
    import ipywidgets

    state = {}

    def update(**values):
        old = state.pop("fig", None)
        if old is not None:
            plt.close(old)  # one live figure per explorer, whatever the backend
        fig, ax = plt.subplots(figsize=figsize)
        state["fig"] = fig
        result = draw(ax, **values)
        plt.show()  # inline/ipympl: shown in the output area; Agg: a no-op
        return result

    return ipywidgets.interactive(update, **controls)


def _fmap_hw(fmap_size) -> tuple[int, int]:
    h, w = (fmap_size, fmap_size) if not isinstance(fmap_size, (tuple, list)) else fmap_size
    for v in (h, w):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"fmap_size must be a positive int or (h, w), got {fmap_size!r}")
    return h, w


# --------------------------------------------------------------------------- anchors

def draw_anchors(ax, image, fmap_size, size: float, ratio: float,
                 extra_sizes: Sequence[float] = (), extra_ratios: Sequence[float] = (),
                 i: int | None = None, j: int | None = None) -> torch.Tensor:
    """Draw the anchors of one feature-map pixel on an image, with the map's grid.

    The anchors are :func:`d2lssd.multibox_prior` of an ``fmap_size`` map with
    ``sizes = [size, *extra_sizes]`` and ``ratios = [ratio, *extra_ratios]``,
    i.e. ``n + m - 1`` anchors per pixel, each labelled with its size and
    ratio. Sizes are fractions of the image height, ratios are width/height
    of the anchor on a square image (on a non-square image, as in SSD after
    resizing to a square input, they are stretched with it).

    Args:
        ax: matplotlib axes.
        image: numpy HWC array or tensor (HWC or CHW), see
            :func:`d2lssd.plotting.show_image`.
        fmap_size: feature-map size, an int (square) or ``(h, w)``.
        size, ratio: the first size (> 0) and the first ratio (> 0).
        extra_sizes, extra_ratios: more sizes and ratios.
        i, j: the pixel's row and column; default the centre pixel
            ``(h // 2, w // 2)``.

    Returns:
        float32 tensor ``(n + m - 1, 4)``: the anchors drawn, corner format, in
        image pixels.

    Raises:
        ValueError: bad ``fmap_size``, non-positive size or ratio, or ``(i, j)``
            outside the map.

    Source: d2l.ai §14.4.1 (the anchors of one pixel of the cat-and-dog photo).
    """
    h, w = _fmap_hw(fmap_size)
    i = h // 2 if i is None else i
    j = w // 2 if j is None else j
    sizes = [size, *extra_sizes]
    ratios = [ratio, *extra_ratios]
    anchors = multibox_prior(torch.zeros(1, 1, h, w), sizes, ratios)  # validates sizes/ratios
    pairs = [(s, ratios[0]) for s in sizes] + [(sizes[0], r) for r in ratios[1:]]
    labels = [f"s={float(s):.2g}, r={float(r):.2g}" for s, r in pairs]
    boxes = show_anchors_of_pixel(ax, image, anchors, h, w, i, j, labels)
    height, width = _to_hwc(image).shape[:2]
    for k in range(1, h):
        ax.axhline(k * height / h, color="w", lw=0.6, alpha=0.6)
    for k in range(1, w):
        ax.axvline(k * width / w, color="w", lw=0.6, alpha=0.6)
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_title(f"{h}x{w} feature map, pixel ({i}, {j}): {len(boxes)} anchors")
    return boxes


def anchor_explorer(image, fmap_size=4):
    """Sliders for one anchor's size and ratio and the pixel it is centred on.

    Args:
        image: the image to draw on (see :func:`draw_anchors`).
        fmap_size: feature-map size, int or ``(h, w)``.

    Returns:
        ``ipywidgets.interactive`` whose children are the sliders ``size``
        (0.05 to 1), ``ratio`` (0.25 to 4, log scale), ``i`` (row), ``j``
        (column), then the output area; each change calls :func:`draw_anchors`
        on a new figure, and ``.result`` holds the anchors drawn (pixels).

    Raises:
        ValueError: bad ``image`` or ``fmap_size``.
    """
    import ipywidgets as W

    h, w = _fmap_hw(fmap_size)
    image = _to_hwc(image)  # validate once, now
    opts = dict(continuous_update=False)
    return _interactive(
        lambda ax, size, ratio, i, j: draw_anchors(ax, image, (h, w), size, ratio, i=i, j=j),
        (6, 6 * image.shape[0] / image.shape[1]),
        size=W.FloatSlider(value=0.5, min=0.05, max=1.0, step=0.05, description="size", **opts),
        ratio=W.FloatLogSlider(value=1.0, base=2, min=-2, max=2, step=0.25, description="ratio",
                               **opts),
        i=W.IntSlider(value=h // 2, min=0, max=h - 1, description="row i", **opts),
        j=W.IntSlider(value=w // 2, min=0, max=w - 1, description="col j", **opts),
    )


# --------------------------------------------------------------------------- IoU

def _box_tensor(box, name: str) -> torch.Tensor:
    t = box.detach().cpu().double() if isinstance(box, torch.Tensor) else None
    if t is None:
        try:
            t = torch.tensor(box, dtype=torch.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be 4 numbers (xmin, ymin, xmax, ymax), got {box!r}") \
                from None
    if t.shape != (4,):
        raise ValueError(f"{name} must be 4 numbers (xmin, ymin, xmax, ymax), got shape "
                         f"{tuple(t.shape)}")
    check_boxes(t[None], name)
    return t


def draw_iou(ax, box1, box2) -> float:
    """Draw two boxes, shade their intersection and title the axes with their IoU.

    Args:
        ax: matplotlib axes. If it shows no image yet, the view is fitted to
            the two boxes, with y pointing down and equal aspect.
        box1, box2: 4 numbers each (list, tuple or tensor), corner format,
            same unit (pixels or normalized).

    Returns:
        The IoU as a Python float, computed by :func:`d2lssd.box_iou` in
        float64 (0 for disjoint or touching boxes).

    Raises:
        ValueError: a box is not 4 finite numbers with ``xmax >= xmin`` and
            ``ymax >= ymin``.

    Source: d2l.ai §14.4.2 (IoU); Liu et al. 2016 §2.2 (matching by Jaccard overlap).
    """
    b1, b2 = _box_tensor(box1, "box1"), _box_tensor(box2, "box2")
    iou = float(box_iou(b1[None], b2[None])[0, 0])
    show_bboxes(ax, torch.stack((b1, b2)), ["A", "B"], ["b", "r"])
    x1, y1 = torch.maximum(b1[:2], b2[:2]).tolist()
    x2, y2 = torch.minimum(b1[2:], b2[2:]).tolist()
    if x2 > x1 and y2 > y1:
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, facecolor="m", alpha=0.35,
                               edgecolor="none", label="intersection"))
    if not ax.images:
        lo = torch.minimum(b1[:2], b2[:2])
        hi = torch.maximum(b1[2:], b2[2:])
        pad = float((hi - lo).max()) * 0.1 or 1.0
        ax.set_xlim(float(lo[0]) - pad, float(hi[0]) + pad)
        ax.set_ylim(float(hi[1]) + pad, float(lo[1]) - pad)
        ax.set_aspect("equal")
    ax.set_title(f"IoU = {iou:.3f}")
    return iou


def iou_explorer(box1: Sequence[float] = (30.0, 30.0, 70.0, 70.0)):
    """Sliders that move and scale a second box against a fixed first one.

    Box B has box A's centre shifted by ``(dx, dy)`` and A's width and height
    times ``scale``: with A = (x1, y1, x2, y2), ``B = (cx + dx - s*w/2, cy +
    dy - s*h/2, cx + dx + s*w/2, cy + dy + s*h/2)``.

    Args:
        box1: the fixed box A, corner format (default a 40x40 square in a
            100x100 canvas).

    Returns:
        ``ipywidgets.interactive`` with children ``dx``, ``dy`` (each plus or
        minus 1.5 box widths/heights), ``scale`` (0.25 to 3), then the output
        area; ``.result`` is the IoU drawn by :func:`draw_iou`.

    Raises:
        ValueError: ``box1`` is not a valid box with positive width and height.
    """
    import ipywidgets as W

    a = _box_tensor(box1, "box1")
    cx, cy, bw, bh = box_corner_to_center(a).tolist()
    if not (bw > 0 and bh > 0):
        raise ValueError(f"box1 must have positive width and height, got {a.tolist()}")
    limits = (cx - 2.5 * bw, cx + 2.5 * bw, cy - 2.5 * bh, cy + 2.5 * bh)

    def draw(ax, dx, dy, scale):
        b = box_center_to_corner(torch.tensor([cx + dx, cy + dy, bw * scale, bh * scale],
                                              dtype=torch.float64))
        iou = draw_iou(ax, a, b)
        ax.set_xlim(limits[0], limits[1])
        ax.set_ylim(limits[3], limits[2])
        return iou

    opts = dict(continuous_update=True)
    return _interactive(
        draw, (4, 4),
        dx=W.FloatSlider(value=0.25 * bw, min=-1.5 * bw, max=1.5 * bw, step=bw / 40,
                         description="dx", **opts),
        dy=W.FloatSlider(value=0.25 * bh, min=-1.5 * bh, max=1.5 * bh, step=bh / 40,
                         description="dy", **opts),
        scale=W.FloatSlider(value=1.0, min=0.25, max=3.0, step=0.05, description="scale", **opts),
    )


# --------------------------------------------------------------------------- NMS

def _as_float_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    try:
        return torch.as_tensor(x, dtype=torch.float32)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a tensor or a sequence of numbers") from None


def draw_nms(ax, image, boxes, scores, iou_threshold: float, labels=None) -> torch.Tensor:
    """Run NMS and draw the result: kept boxes solid with their score, suppressed ones dashed.

    Args:
        ax: matplotlib axes.
        image: image to draw under the boxes (see
            :func:`d2lssd.plotting.show_image`), or None for none.
        boxes: float tensor ``(N, 4)`` (or nested list), corner format, pixels.
        scores: float tensor ``(N,)``.
        iou_threshold: in [0, 1], as in :func:`d2lssd.nms`.
        labels: optional ``N`` class names; a kept box is labelled
            ``"name=0.87"`` (d2l's style), else just its score.

    Returns:
        int64 tensor ``(K,)``: :func:`d2lssd.nms`'s kept indices (sorted by
        descending score; the same as ``torchvision.ops.nms``).

    Raises:
        ValueError: as :func:`d2lssd.nms`, or ``labels`` not of length ``N``.

    Source: d2l.ai §14.4.4 (the four dog/cat boxes before and after NMS).
    """
    boxes = _as_float_tensor(boxes, "boxes")
    scores = _as_float_tensor(scores, "scores")
    keep = nms(boxes, scores, iou_threshold)
    n = boxes.shape[0]
    if labels is not None and len(labels) != n:
        raise ValueError(f"labels must have one entry per box ({n}), got {len(labels)}")
    if image is not None:
        show_image(image, ax=ax)
    kept = set(keep.tolist())
    for k in range(n):
        if k not in kept:
            x1, y1, x2, y2 = boxes[k].tolist()
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="0.6",
                                   linestyle="--", linewidth=1, alpha=0.7))
    text = [(f"{labels[k]}=" if labels is not None else "") + f"{float(scores[k]):.2f}"
            for k in keep.tolist()]
    show_bboxes(ax, boxes[keep], text)
    if image is None and n:
        ax.autoscale_view()
        if not ax.yaxis_inverted():
            ax.invert_yaxis()
    ax.set_title(f"NMS at IoU > {float(iou_threshold):.2f}: kept {len(keep)} of {n}")
    return keep


def nms_explorer(image, boxes, scores, labels=None):
    """A threshold slider (0 to 1) over :func:`draw_nms` for fixed boxes and scores.

    Args:
        image, boxes, scores, labels: as in :func:`draw_nms`.

    Returns:
        ``ipywidgets.interactive`` with children ``iou_threshold`` (0 to 1,
        step 0.05, starting at 0.5) and the output area; ``.result`` is the
        kept indices.

    Raises:
        ValueError: bad image.
    """
    import ipywidgets as W

    image = None if image is None else _to_hwc(image)
    figsize = (6, 6 * image.shape[0] / image.shape[1]) if image is not None else (5, 5)
    return _interactive(
        lambda ax, iou_threshold: draw_nms(ax, image, boxes, scores, iou_threshold, labels),
        figsize,
        iou_threshold=W.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05,
                                    description="IoU threshold", continuous_update=True),
    )


def detections_like_boxes(gt_pixels, n_per_object: int = 6, seed: int = 0, jitter: float = 0.1,
                          image_size: tuple[float, float] | None = None):
    """Clusters of jittered, scored boxes around ground-truth boxes: fake detector output.

    For each ground-truth box of centre ``(cx, cy)`` and size ``(w, h)``,
    ``n_per_object`` boxes are drawn with centre ``(cx + jitter*w*e1, cy +
    jitter*h*e2)`` and size ``(w*exp(jitter*e3), h*exp(jitter*e4))``,
    ``e ~ N(0, 1)``. Each gets the score ``0.25 + 0.7 * IoU(box, its ground
    truth) + 0.05 * N(0, 1)`` clamped to [0.01, 0.99]: better boxes tend to
    score higher, but not always, as with a real detector.

    Args:
        gt_pixels: ``(G, 4)`` boxes (tensor or nested list), corner format,
            pixels, positive width and height.
        n_per_object: boxes per ground truth (>= 1).
        seed: seed of the ``torch.Generator`` used; same seed, same output.
        jitter: relative noise (>= 0); 0 gives exact copies of the ground
            truth (all with IoU 1).
        image_size: optional ``(width, height)`` to clip the boxes to.

    Returns:
        ``(boxes, scores, object_index)``: float32 ``(G*n, 4)`` pixel boxes,
        float32 ``(G*n,)`` scores, int64 ``(G*n,)`` index of the ground truth
        each box was drawn around. Grouped by object: rows ``g*n`` to
        ``g*n + n - 1`` belong to object ``g``.

    Raises:
        ValueError: bad boxes (shape, NaN, zero or negative size),
            ``n_per_object < 1``, negative or non-finite ``jitter``, or a
            non-positive image size.
    """
    gt = _as_float_tensor(gt_pixels, "gt_pixels")
    check_boxes(gt, "gt_pixels", min_dim=2, max_dim=2)
    gt = gt.float()
    if gt.numel() and not bool(((gt[:, 2] > gt[:, 0]) & (gt[:, 3] > gt[:, 1])).all()):
        raise ValueError("gt_pixels must have positive width and height")
    if isinstance(n_per_object, bool) or not isinstance(n_per_object, int) or n_per_object < 1:
        raise ValueError(f"n_per_object must be a positive int, got {n_per_object!r}")
    if not (math.isfinite(jitter) and jitter >= 0):
        raise ValueError(f"jitter must be a finite number >= 0, got {jitter!r}")
    g = torch.Generator().manual_seed(int(seed))
    num, n = gt.shape[0], n_per_object
    noise = torch.randn(num, n, 4, generator=g)
    score_noise = torch.randn(num, n, generator=g)
    cx, cy, w, h = box_corner_to_center(gt)[:, None, :].unbind(-1)  # (G, 1) each
    centers = torch.stack((cx + jitter * w * noise[..., 0], cy + jitter * h * noise[..., 1],
                           w * torch.exp(jitter * noise[..., 2]),
                           h * torch.exp(jitter * noise[..., 3])), dim=-1)
    boxes = box_center_to_corner(centers)  # (G, n, 4)
    if image_size is not None:
        width, height = image_size
        boxes = clip_boxes(boxes, width, height)
    iou = box_iou(boxes, gt[:, None, :])[..., 0] if num else torch.zeros(0, n)  # (G, n)
    scores = (0.25 + 0.7 * iou + 0.05 * score_noise).clamp(0.01, 0.99)
    object_index = torch.arange(num).repeat_interleave(n)
    return boxes.reshape(-1, 4), scores.reshape(-1), object_index


# --------------------------------------------------------------------------- losses

def draw_losses(axes, sigma: float = 1.0, beta: float = 1.0, alpha: float = 0.25, gamma: float = 2.0,
                x_max: float = 3.0) -> dict:
    """Draw smooth L1 (both parameterisations) and focal loss side by side.

    Left: smooth L1 of a box-offset error ``x`` in d2l's form with ``sigma``
    (solid) and PyTorch's form with ``beta`` (dashed), with L1 and the
    quadratic ``x**2 / 2`` for reference; the two coincide when
    ``beta = 1 / sigma**2``. Right: loss of one anchor against the
    probability ``p_t`` of its true class: cross-entropy ``-log p_t``, focal
    loss ``-(1 - p_t)**gamma log p_t``, and focal loss weighted by ``alpha``
    (object anchors) and ``1 - alpha`` (background anchors).

    Args:
        axes: two matplotlib axes (left, right).
        sigma: d2l's smooth L1 parameter, > 0.
        beta: PyTorch's smooth L1 parameter, >= 0.
        alpha: focal class balance in [0, 1].
        gamma: focal focusing parameter >= 0.
        x_max: the left panel shows ``x`` in ``[-x_max, x_max]`` (offset units).

    Returns:
        dict of the drawn curves as float64 tensors: ``x``, ``smooth_l1_sigma``,
        ``smooth_l1_beta``, ``p``, ``cross_entropy``, ``focal``,
        ``focal_object`` (times ``alpha``), ``focal_background`` (times
        ``1 - alpha``).

    Raises:
        ValueError: fewer than two axes, or what :func:`d2lssd.smooth_l1` and
            :func:`d2lssd.focal_loss` raise for bad ``sigma``, ``beta``,
            ``alpha`` or ``gamma``.

    Source: d2l.ai §14.7.6 exercise 1 (the two plots); Lin et al. 2017
    Figure 1 (focal loss against p_t).
    """
    from .losses import focal_loss, smooth_l1

    try:
        left, right = axes
    except (TypeError, ValueError):
        raise ValueError("axes must be two matplotlib axes (left, right)") from None
    x = torch.linspace(-x_max, x_max, 401, dtype=torch.float64)
    s_sigma, s_beta = smooth_l1(x, sigma), smooth_l1(x, beta=beta)
    left.plot(x, x.abs(), color="0.6", lw=1, label="L1 |x|")
    left.plot(x, x * x / 2, color="0.6", lw=1, ls=":", label="x²/2")
    left.plot(x, s_sigma, lw=2.5, label=f"smooth L1, σ = {sigma:g}")
    left.plot(x, s_beta, lw=1.5, ls="--", label=f"smooth L1, β = {beta:g}")
    left.set_ylim(0, x_max * 1.05)
    left.set_xlabel("offset error x")
    left.set_title(f"smooth L1 (β = 1/σ² = {1 / sigma ** 2:.3g})")
    left.legend(fontsize="small", loc="upper center")
    p = torch.linspace(0.005, 1.0, 400, dtype=torch.float64)
    logits = torch.stack([torch.zeros_like(p), torch.log(p) - torch.log1p(-p.clamp(max=1 - 1e-12))], dim=-1)
    ones, zeros = torch.ones_like(p, dtype=torch.long), torch.zeros_like(p, dtype=torch.long)
    ce = focal_loss(logits, ones, gamma=0.0)
    fl = focal_loss(logits, ones, gamma=gamma)
    fl_obj = focal_loss(logits, ones, gamma=gamma, alpha=alpha)
    fl_bg = focal_loss(logits.flip(-1), zeros, gamma=gamma, alpha=alpha)  # background anchor with p_t = p
    right.plot(p, ce, color="0.6", lw=1.5, label="cross-entropy (γ = 0)")
    right.plot(p, fl, lw=2.5, label=f"focal, γ = {gamma:g}")
    right.plot(p, fl_obj, lw=1.5, ls="--", label=f"× α = {alpha:g} (objects)")
    right.plot(p, fl_bg, lw=1.5, ls=":", label=f"× 1 − α = {1 - alpha:g} (background)")
    right.set_ylim(0, 5)
    right.set_xlabel("probability of the true class p_t")
    right.set_title("focal loss")
    right.legend(fontsize="small")
    return dict(x=x, smooth_l1_sigma=s_sigma, smooth_l1_beta=s_beta, p=p, cross_entropy=ce, focal=fl,
                focal_object=fl_obj, focal_background=fl_bg)


def loss_explorer():
    """Sliders for smooth L1's ``sigma`` and ``beta`` and focal loss's ``alpha`` and ``gamma``.

    Returns:
        ``ipywidgets.interactive`` with children ``sigma`` (0.25 to 10),
        ``beta`` (0 to 4), ``alpha`` (0 to 1), ``gamma`` (0 to 5), then the
        output area; every change redraws :func:`draw_losses` on a new
        two-panel figure, and ``.result`` is its return value.

    Source: ours (d2l.ai §14.7.6 exercise 1 asks for the same plots).
    """
    import ipywidgets as W

    def draw(ax, sigma, beta, alpha, gamma):
        fig = ax.figure
        ax.remove()
        return draw_losses(fig.subplots(1, 2), sigma=sigma, beta=beta, alpha=alpha, gamma=gamma)

    opts = dict(continuous_update=False)
    return _interactive(
        draw, (10, 3.6),
        sigma=W.FloatSlider(value=1.0, min=0.25, max=10.0, step=0.25, description="σ (d2l)", **opts),
        beta=W.FloatSlider(value=1.0, min=0.0, max=4.0, step=0.05, description="β (PyTorch)", **opts),
        alpha=W.FloatSlider(value=0.25, min=0.0, max=1.0, step=0.05, description="α", **opts),
        gamma=W.FloatSlider(value=2.0, min=0.0, max=5.0, step=0.5, description="γ", **opts),
    )
