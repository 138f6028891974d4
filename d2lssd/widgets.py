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
:func:`d2lssd.box_iou`, :func:`d2lssd.nms`); this module only draws it.

Sources: d2l.ai §14.4 (anchors of one pixel, the NMS figures with
``show_bboxes``); ipywidgets' ``Image`` and ``observe``.
"""

from __future__ import annotations

import io
import math
import os
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
           "nms_explorer", "detections_like_boxes", "draw_losses", "loss_explorer",
           "static_explorer", "StaticExplorer", "StaticExplorerRow", "STATIC_ENV"]


# --------------------------------------------------------------------------- explorers

#: Environment variable that makes the ``*_explorer`` functions return their
#: static HTML version when called with ``static=None``; the book build sets
#: it (``book/_ext/d2lssd_book.py``), Jupyter and Colab do not.
STATIC_ENV = "D2LSSD_STATIC_EXPLORERS"


def _static_wanted(static) -> bool:
    if static is None:
        return os.environ.get(STATIC_ENV, "").strip().lower() in ("1", "true", "yes")
    return bool(static)


def _render(draw, figsize, values: dict, fmt: str = "png", dpi: float = 100, layout=None):
    """Draw ``draw(ax, **values)`` on a fresh off-screen figure; return ``(image bytes, result)``.

    The figure is a bare :class:`matplotlib.figure.Figure`, not a pyplot one:
    it never enters pyplot's list of open figures, so there is nothing to
    close and the notebook's inline backend never shows it a second time.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout=layout)
    ax = fig.subplots()
    result = draw(ax, **values)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, **({"pil_kwargs": {"quality": 80}} if fmt == "jpeg" else {}))
    return buf.getvalue(), result


def _interactive(draw, figsize, **controls):
    """Sliders over ``draw(ax, **values)``, drawn into an ``ipywidgets.Image``.

    Returns an ``ipywidgets.VBox`` whose ``children`` are the given slider
    widgets followed by an ``ipywidgets.Image``, and whose ``result``
    attribute is the last return value of ``draw``. Every slider change
    redraws the figure off-screen (:func:`_render`) and replaces the image's
    PNG bytes.

    Why an image and not ``ipywidgets.interactive``: its Output widget makes
    the kernel message the front end while a cell runs, and headless
    execution (nbclient under jupyter-book) then sometimes missed the cell's
    reply and waited for the cell timeout. An image widget only holds bytes.
    """
    import ipywidgets

    image = ipywidgets.Image(format="png", layout=ipywidgets.Layout(max_width="100%"))
    box = ipywidgets.VBox(children=[*controls.values(), image])
    names = list(controls)

    def update(change=None):
        values = {name: controls[name].value for name in names}
        image.value, box.result = _render(draw, figsize, values)

    for widget in controls.values():
        widget.observe(update, names="value")
    update()
    return box


class StaticExplorer:
    """Precomputed frames behind HTML range sliders: an explorer that needs no kernel.

    Made by :func:`static_explorer`. In a notebook or the built book it shows
    as HTML (``_repr_html_``): the figure of the current slider values and one
    ``<input type="range">`` per control; a few lines of inline JavaScript
    swap the image when a slider moves. Nothing is loaded from the network,
    so it works in a page opened from disk.

    Attributes:
        names: the control names, in order.
        values: dict name -> list of the values of that control.
        combos: list of dicts, one per frame (itertools.product order, last
            control fastest).
        frames: list of ``data:`` URIs, one per frame.
        results: list of the ``draw`` return values, one per frame.
        initial: index of the frame shown first.
        html: the HTML.
    """

    def __init__(self, names, values, labels, combos, frames, results, initial, title):
        self.names, self.values, self.labels = names, values, labels
        self.combos, self.frames, self.results = combos, frames, results
        self.initial, self.title = initial, title
        self.html = self._build_html()

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return (f"StaticExplorer({len(self.frames)} frames over "
                f"{', '.join(f'{n} ({len(self.values[n])})' for n in self.names)})")

    def _build_html(self) -> str:
        import html as _html
        import json
        import uuid

        uid = "d2lssd-explorer-" + uuid.uuid4().hex[:12]
        sizes = [len(self.values[n]) for n in self.names]
        start = self.combos[self.initial]
        texts = [[_format_value(v) for v in self.values[n]] for n in self.names]
        rows = []
        for k, name in enumerate(self.names):
            pos = self.values[name].index(start[name])
            rows.append(
                f'<label style="display:flex;align-items:center;gap:0.6em;margin:0.2em 0">'
                f'<span style="min-width:9em">{_html.escape(self.labels[name])}</span>'
                f'<input type="range" min="0" max="{sizes[k] - 1}" step="1" value="{pos}" '
                f'data-control="{k}" aria-label="{_html.escape(self.labels[name])}" '
                f'style="flex:1;max-width:22em">'
                f'<output style="min-width:4em">{_html.escape(texts[k][pos])}</output></label>')
        alt = _html.escape(self._alt(self.initial))
        title = (f'<div style="font-weight:600;margin-bottom:0.3em">{_html.escape(self.title)}</div>'
                 if self.title else "")
        data = json.dumps({"frames": self.frames, "sizes": sizes, "texts": texts,
                           "alts": [self._alt(i) for i in range(len(self.frames))]})
        script = (
            "(function(){var root=document.getElementById('%s');if(!root)return;"
            "var d=JSON.parse(root.querySelector('script[type=\"application/json\"]').textContent);"
            "var img=root.querySelector('img');var inputs=root.querySelectorAll('input[type=range]');"
            "function show(){var idx=0;for(var k=0;k<inputs.length;k++){var v=parseInt(inputs[k].value,10);"
            "idx=idx*d.sizes[k]+v;inputs[k].nextElementSibling.textContent=d.texts[k][v];}"
            "img.src=d.frames[idx];img.alt=d.alts[idx];root.setAttribute('data-frame',idx);}"
            "for(var k=0;k<inputs.length;k++){inputs[k].addEventListener('input',show);"
            "inputs[k].addEventListener('change',show);}})();" % uid)
        return (f'<div class="d2lssd-explorer" id="{uid}" data-frame="{self.initial}" '
                f'style="margin:0.5em 0">{title}{"".join(rows)}'
                f'<img src="{self.frames[self.initial]}" alt="{alt}" '
                f'style="max-width:100%;height:auto;display:block;margin-top:0.4em">'
                f'<script type="application/json">{_html_safe_json(data)}</script>'
                f'<script>{script}</script></div>')

    def _alt(self, i: int) -> str:
        combo = self.combos[i]
        return "explorer frame: " + ", ".join(f"{self.labels[n]} = {_format_value(combo[n])}"
                                              for n in self.names)


def _format_value(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _html_safe_json(text: str) -> str:
    # inside <script>, "</" would end the element early
    return text.replace("</", "<\\/")


def static_explorer(draw, figsize, controls: dict, *, initial: dict | None = None,
                    labels: dict | None = None, title: str | None = None, fmt: str = "png",
                    dpi: float = 72, layout: str | None = None,
                    max_frames: int = 400) -> StaticExplorer:
    """An explorer for the static web page: every combination of control values drawn in advance.

    The generic mechanism behind the ``static=True`` versions of
    :func:`anchor_explorer`, :func:`iou_explorer`, :func:`nms_explorer` and
    :func:`loss_explorer`. ``draw`` has the signature of the explorers'
    drawing callbacks: ``draw(ax, **values)`` draws on the matplotlib axes it
    is given (it may replace them, e.g. ``ax.figure.subplots(1, 2)``) and
    returns anything. It is called once per combination of ``controls``
    values, on an off-screen figure that is closed again; the frames are
    embedded in the HTML as ``data:`` URIs, so the page needs no kernel and no
    network.

    Args:
        draw: ``draw(ax, **values)``.
        figsize: ``(width, height)`` of each frame in inches.
        controls: dict name -> list of values (numbers or strings), in
            slider order; one HTML slider per entry.
        initial: dict name -> starting value (the nearest listed value is
            used); default the middle value of each control.
        labels: dict name -> label shown next to the slider; default the name.
        title: optional line above the sliders.
        fmt: ``"png"`` (sharp lines) or ``"jpeg"`` (photos, much smaller).
        dpi: resolution of the frames.
        layout: matplotlib figure layout (``"constrained"``, ``"tight"`` or
            None for the default margins, the fastest).
        max_frames: refuse grids larger than this (page weight).

    Returns:
        :class:`StaticExplorer`; display it (last expression of a cell) to
        show it, its ``results`` hold ``draw``'s return values.

    Raises:
        ValueError: no controls, an empty list of values, more than
            ``max_frames`` combinations, an unknown name in ``initial`` or
            ``labels``, or a bad ``fmt``.

    Example (the losses chapter's explorer, for instance)::

        static_explorer(lambda ax, gamma: ax.plot(p, -(1 - p) ** gamma * np.log(p)),
                        (5, 3), {"gamma": [0, 0.5, 1, 2, 5]}, labels={"gamma": "γ"})
    """
    import base64
    import itertools

    if not controls:
        raise ValueError("static_explorer needs at least one control")
    if fmt not in ("png", "jpeg"):
        raise ValueError(f"fmt must be 'png' or 'jpeg', got {fmt!r}")
    names = list(controls)
    values = {n: list(controls[n]) for n in names}
    for n in names:
        if not values[n]:
            raise ValueError(f"control {n!r} has no values")
    for extra, what in ((initial, "initial"), (labels, "labels")):
        unknown = set(extra or {}) - set(names)
        if unknown:
            raise ValueError(f"{what} names unknown controls {sorted(unknown)}; controls: {names}")
    count = math.prod(len(values[n]) for n in names)
    if count > max_frames:
        raise ValueError(f"{count} frames (the product of {[len(values[n]) for n in names]}) "
                         f"exceed max_frames={max_frames}: use fewer values")
    labels = {n: str((labels or {}).get(n, n)) for n in names}
    start = {}
    for n in names:
        vals = values[n]
        if initial and n in initial:
            want = initial[n]
            try:
                start[n] = min(vals, key=lambda v: abs(float(v) - float(want)))
            except (TypeError, ValueError):
                start[n] = want if want in vals else vals[0]
        else:
            start[n] = vals[(len(vals) - 1) // 2]
    combos = [dict(zip(names, c)) for c in itertools.product(*(values[n] for n in names))]
    mime = "image/png" if fmt == "png" else "image/jpeg"
    frames, results = [], []
    for combo in combos:
        data, result = _render(draw, figsize, combo, fmt=fmt, dpi=dpi, layout=layout)
        frames.append(f"data:{mime};base64," + base64.b64encode(data).decode("ascii"))
        results.append(result)
    initial_index = combos.index(start)
    return StaticExplorer(names, values, labels, combos, frames, results, initial_index, title)


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

def _as_float_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    try:
        return torch.as_tensor(x, dtype=torch.float32)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a tensor or a sequence of numbers") from None


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
    try:
        left, right = axes
    except (TypeError, ValueError):
        raise ValueError("axes must be two matplotlib axes (left, right)") from None
    out = _draw_smooth_l1(left, sigma, beta, x_max)
    out.update(_draw_focal(right, alpha, gamma))
    return out


def _draw_smooth_l1(ax, sigma: float, beta: float, x_max: float = 3.0) -> dict:
    """The left panel of :func:`draw_losses`; returns ``x``, ``smooth_l1_sigma``, ``smooth_l1_beta``."""
    from .losses import smooth_l1

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
    from .losses import focal_loss

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


class StaticExplorerRow:
    """Several :class:`StaticExplorer` shown side by side (wrapping on narrow pages).

    Used where one figure's panels depend on disjoint controls (the losses
    explorer: smooth L1 on ``sigma``/``beta``, focal loss on ``alpha``/
    ``gamma``), so the frames grow as a sum, not a product, of the grids.

    Attributes:
        parts: the explorers, left to right.
        html: the HTML (``_repr_html_``).
    """

    def __init__(self, parts):
        self.parts = list(parts)
        cells = "".join(f'<div style="flex:1 1 22em;min-width:0">{p.html}</div>' for p in self.parts)
        self.html = f'<div class="d2lssd-explorer-row" style="display:flex;flex-wrap:wrap;gap:1em">{cells}</div>'

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return f"StaticExplorerRow({', '.join(repr(p) for p in self.parts)})"


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
