"""Explorers for the chapters: anchors, IoU, NMS and losses with knobs to turn.

Each explorer is three layers:

* a plain drawing function, ``draw_*(ax, ...)``, that draws on the axes it is
  given, returns the numbers it drew (anchors, an IoU, kept indices) and never
  calls ``plt.show()``: the tests call these directly, without a browser;
* in Jupyter and Colab, ``*_explorer(...)`` wraps it in ipywidgets sliders
  and an ``ipywidgets.Image``: on every change the ``draw_*`` function draws
  a fresh off-screen figure whose PNG replaces the image. The returned
  ``ipywidgets.VBox``'s ``children`` are the sliders followed by the image,
  and its ``result`` attribute is the last ``draw_*`` return value;
* on the static web page, ``*_explorer(..., static=True)`` (or
  ``static=None`` with ``D2LSSD_STATIC_EXPLORERS=1``, which the book build
  sets) returns a :class:`StaticExplorer` instead: the frames of a grid of
  slider values, drawn in advance by :func:`static_explorer` and swapped by a
  few lines of inline JavaScript, so the page responds without a kernel and
  without network.

The arithmetic lives in the core package (:func:`d2lssd.multibox_prior`,
:func:`d2lssd.box_iou`, :func:`d2lssd.nms`); this module only draws it. The
live and static machinery is :mod:`d2lssd.widgets.static`; the fake
detections the NMS explorer is shown on come from
:func:`d2lssd.widgets.detections.detections_like_boxes`.

Sources: d2l.ai §14.4 (anchors of one pixel, the NMS figures with
``show_bboxes``); ipywidgets' ``Image`` and ``observe``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from matplotlib.patches import Rectangle

from .._checks import check_boxes
from ..anchors import multibox_prior
from ..boxes import box_center_to_corner, box_corner_to_center, box_iou
from ..losses import focal_loss, smooth_l1
from ..postprocess import nms
from ..plotting import _to_hwc, show_anchors_of_pixel, show_bboxes, show_image
from .detections import _as_float_tensor
from .static import StaticExplorerRow, _interactive, _static_wanted, static_explorer

__all__ = ["draw_anchors", "anchor_explorer", "draw_iou", "iou_explorer", "draw_nms",
           "nms_explorer", "draw_losses", "loss_explorer"]


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


def anchor_explorer(image, fmap_size=4, static=None):
    """Sliders for one anchor's size and ratio and the pixel it is centred on.

    Args:
        image: the image to draw on (see :func:`draw_anchors`).
        fmap_size: feature-map size, int or ``(h, w)``.
        static: True for the static HTML version (:class:`StaticExplorer`,
            no kernel needed: sizes 0.25, 0.5, 0.75, ratios 0.5, 1, 2 and
            every pixel), False for the ipywidgets one, None (default) for
            the static one only when ``D2LSSD_STATIC_EXPLORERS=1``.

    Returns:
        ``ipywidgets.VBox`` whose children are the sliders ``size`` (0.05 to
        1), ``ratio`` (0.25 to 4, log scale), ``i`` (row), ``j`` (column),
        then an ``ipywidgets.Image``; each change calls :func:`draw_anchors`
        on a new figure, and ``.result`` holds the anchors drawn (pixels). Or
        a :class:`StaticExplorer` (see ``static``).

    Raises:
        ValueError: bad ``image`` or ``fmap_size``.
    """
    h, w = _fmap_hw(fmap_size)
    image = _to_hwc(image)  # validate once, now
    figsize = (6, 6 * image.shape[0] / image.shape[1])

    def draw(ax, size, ratio, i, j):
        return draw_anchors(ax, image, (h, w), size, ratio, i=i, j=j)

    if _static_wanted(static):
        return static_explorer(
            draw, figsize, {"size": [0.25, 0.5, 0.75], "ratio": [0.5, 1.0, 2.0],
                            "i": list(range(h)), "j": list(range(w))},
            initial={"size": 0.5, "ratio": 1.0, "i": h // 2, "j": w // 2},
            labels={"size": "size", "ratio": "ratio", "i": "row i", "j": "col j"},
            fmt="jpeg", dpi=60, max_frames=9 * h * w)

    import ipywidgets as W

    opts = dict(continuous_update=False)
    return _interactive(
        draw, figsize,
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


def iou_explorer(box1: Sequence[float] = (30.0, 30.0, 70.0, 70.0), static=None):
    """Sliders that move and scale a second box against a fixed first one.

    Box B has box A's centre shifted by ``(dx, dy)`` and A's width and height
    times ``scale``: with A = (x1, y1, x2, y2), ``B = (cx + dx - s*w/2, cy +
    dy - s*h/2, cx + dx + s*w/2, cy + dy + s*h/2)``.

    Args:
        box1: the fixed box A, corner format (default a 40x40 square in a
            100x100 canvas).
        static: True for the static HTML version (:class:`StaticExplorer`:
            ``dx`` and ``dy`` from -1 to 1 box widths in steps of a quarter,
            ``scale`` 0.5, 1, 1.5, 2), False for the
            ipywidgets one, None (default) for the static one only when
            ``D2LSSD_STATIC_EXPLORERS=1``.

    Returns:
        ``ipywidgets.VBox`` with children ``dx``, ``dy`` (each plus or
        minus 1.5 box widths/heights), ``scale`` (0.25 to 3), then an
        ``ipywidgets.Image``; ``.result`` is the IoU drawn by
        :func:`draw_iou`. Or a :class:`StaticExplorer` (see ``static``).

    Raises:
        ValueError: ``box1`` is not a valid box with positive width and height.
    """
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

    if _static_wanted(static):
        steps = [k / 4 for k in range(-4, 5)]  # -1 to 1 box widths in quarters
        return static_explorer(
            draw, (4, 4), {"dx": [round(t * bw, 6) for t in steps],
                           "dy": [round(t * bh, 6) for t in steps],
                           "scale": [0.5, 1.0, 1.5, 2.0]},
            initial={"dx": 0.25 * bw, "dy": 0.25 * bh, "scale": 1.0}, dpi=60)

    import ipywidgets as W

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

def draw_nms(ax, image, boxes, scores, iou_threshold: float, labels=None,
             show_scores: bool = True) -> torch.Tensor:
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
        show_scores: False draws the kept boxes without text (small panels,
            where many labels would pile up).

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
    show_bboxes(ax, boxes[keep], text if show_scores else None)
    if image is None and n:
        ax.autoscale_view()
        if not ax.yaxis_inverted():
            ax.invert_yaxis()
    ax.set_title(f"NMS at IoU > {float(iou_threshold):.2f}: kept {len(keep)} of {n}")
    return keep


def nms_explorer(image, boxes, scores, labels=None, static=None):
    """A threshold slider (0 to 1) over :func:`draw_nms` for fixed boxes and scores.

    Args:
        image, boxes, scores, labels: as in :func:`draw_nms`.
        static: True for the static HTML version (:class:`StaticExplorer`,
            thresholds 0 to 1 in steps of 0.05), False for the ipywidgets
            one, None (default) for the static one only when
            ``D2LSSD_STATIC_EXPLORERS=1``.

    Returns:
        ``ipywidgets.VBox`` with children ``iou_threshold`` (0 to 1, step
        0.05, starting at 0.5) and an ``ipywidgets.Image``; ``.result`` is
        the kept indices. Or a :class:`StaticExplorer` (see ``static``).

    Raises:
        ValueError: bad image.
    """
    image = None if image is None else _to_hwc(image)
    figsize = (6, 6 * image.shape[0] / image.shape[1]) if image is not None else (5, 5)

    def draw(ax, iou_threshold):
        return draw_nms(ax, image, boxes, scores, iou_threshold, labels)

    if _static_wanted(static):
        return static_explorer(draw, figsize,
                               {"iou_threshold": [round(k * 0.05, 2) for k in range(21)]},
                               initial={"iou_threshold": 0.5}, labels={"iou_threshold": "IoU threshold"},
                               fmt="jpeg" if image is not None else "png", dpi=72)

    import ipywidgets as W

    return _interactive(
        draw, figsize,
        iou_threshold=W.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05,
                                    description="IoU threshold", continuous_update=True),
    )


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
    try:
        left, right = axes
    except (TypeError, ValueError):
        raise ValueError("axes must be two matplotlib axes (left, right)") from None
    out = _draw_smooth_l1(left, sigma, beta, x_max)
    out.update(_draw_focal(right, alpha, gamma))
    return out


def _draw_smooth_l1(ax, sigma: float, beta: float, x_max: float = 3.0) -> dict:
    """The left panel of :func:`draw_losses`; returns ``x``, ``smooth_l1_sigma``, ``smooth_l1_beta``."""
    x = torch.linspace(-x_max, x_max, 401, dtype=torch.float64)
    s_sigma, s_beta = smooth_l1(x, sigma), smooth_l1(x, beta=beta)
    ax.plot(x, x.abs(), color="0.6", lw=1, label="L1 |x|")
    ax.plot(x, x * x / 2, color="0.6", lw=1, ls=":", label="x²/2")
    ax.plot(x, s_sigma, lw=2.5, label=f"smooth L1, σ = {sigma:g}")
    ax.plot(x, s_beta, lw=1.5, ls="--", label=f"smooth L1, β = {beta:g}")
    ax.set_ylim(0, x_max * 1.05)
    ax.set_xlabel("offset error x")
    ax.set_title(f"smooth L1 (β = 1/σ² = {1 / sigma ** 2:.3g})")
    ax.legend(fontsize="small", loc="upper center")
    return dict(x=x, smooth_l1_sigma=s_sigma, smooth_l1_beta=s_beta)


def _draw_focal(ax, alpha: float, gamma: float) -> dict:
    """The right panel of :func:`draw_losses`; returns ``p`` and the four focal curves."""
    p = torch.linspace(0.005, 1.0, 400, dtype=torch.float64)
    logits = torch.stack([torch.zeros_like(p), torch.log(p) - torch.log1p(-p.clamp(max=1 - 1e-12))], dim=-1)
    ones, zeros = torch.ones_like(p, dtype=torch.long), torch.zeros_like(p, dtype=torch.long)
    ce = focal_loss(logits, ones, gamma=0.0)
    fl = focal_loss(logits, ones, gamma=gamma)
    fl_obj = focal_loss(logits, ones, gamma=gamma, alpha=alpha)
    fl_bg = focal_loss(logits.flip(-1), zeros, gamma=gamma, alpha=alpha)  # background anchor with p_t = p
    ax.plot(p, ce, color="0.6", lw=1.5, label="cross-entropy (γ = 0)")
    ax.plot(p, fl, lw=2.5, label=f"focal, γ = {gamma:g}")
    ax.plot(p, fl_obj, lw=1.5, ls="--", label=f"× α = {alpha:g} (objects)")
    ax.plot(p, fl_bg, lw=1.5, ls=":", label=f"× 1 − α = {1 - alpha:g} (background)")
    ax.set_ylim(0, 5)
    ax.set_xlabel("probability of the true class p_t")
    ax.set_title("focal loss")
    ax.legend(fontsize="small")
    return dict(p=p, cross_entropy=ce, focal=fl, focal_object=fl_obj, focal_background=fl_bg)


def loss_explorer(static=None):
    """Sliders for smooth L1's ``sigma`` and ``beta`` and focal loss's ``alpha`` and ``gamma``.

    Args:
        static: True for the static HTML version, False for the ipywidgets
            one, None (default) for the static one only when
            ``D2LSSD_STATIC_EXPLORERS=1`` (the book build sets it).

    Returns:
        ``ipywidgets.VBox`` with children ``sigma`` (0.25 to 10), ``beta``
        (0 to 4), ``alpha`` (0 to 1), ``gamma`` (0 to 5), then an
        ``ipywidgets.Image``; every change redraws :func:`draw_losses` on a
        new two-panel figure, and ``.result`` is its return value. Static: a
        :class:`StaticExplorerRow` of two :class:`StaticExplorer`, smooth L1
        over ``sigma`` in (0.5, 1, 2, 10) and ``beta`` in (0, 0.25, 1, 4), and
        focal loss over ``alpha`` in (0.25, 0.5, 0.75) and ``gamma`` in
        (0, 0.5, 1, 2, 5); their ``results`` are the two halves of
        :func:`draw_losses`' dict.

    Source: ours (d2l.ai §14.7.6 exercise 1 asks for the same plots).
    """
    if _static_wanted(static):
        left = static_explorer(lambda ax, sigma, beta: _draw_smooth_l1(ax, sigma, beta), (5, 3.6),
                               {"sigma": [0.5, 1.0, 2.0, 10.0], "beta": [0.0, 0.25, 1.0, 4.0]},
                               initial={"sigma": 1.0, "beta": 1.0},
                               labels={"sigma": "σ (d2l)", "beta": "β (PyTorch)"}, dpi=60)
        right = static_explorer(lambda ax, alpha, gamma: _draw_focal(ax, alpha, gamma), (5, 3.6),
                                {"alpha": [0.25, 0.5, 0.75], "gamma": [0.0, 0.5, 1.0, 2.0, 5.0]},
                                initial={"alpha": 0.25, "gamma": 2.0},
                                labels={"alpha": "α", "gamma": "γ"}, dpi=60)
        return StaticExplorerRow([left, right])

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
