"""The explorers' machinery: live ipywidgets sliders, or frames drawn in advance for a static page.

An explorer is a drawing callback ``draw(ax, **values)`` plus a set of
controls. This module turns one into

* a live one for Jupyter and Colab (:func:`_interactive`: ipywidgets sliders
  over an ``ipywidgets.Image`` whose PNG is redrawn off-screen on every
  change), or
* a static one for the built book (:func:`static_explorer`, a
  :class:`StaticExplorer`: every combination of slider values drawn in
  advance, embedded as ``data:`` URIs and swapped by a few lines of inline
  JavaScript, so the page needs no kernel and no network);

and :func:`_static_wanted` picks between them (``static=None`` follows the
environment variable :data:`STATIC_ENV`, which the book build sets).

Nothing here knows about anchors, IoU or NMS: those explorers live in
:mod:`d2lssd.widgets.explorers`. matplotlib (``matplotlib.figure.Figure``,
never pyplot) and ipywidgets are imported when a figure is first drawn.

Sources: ipywidgets' ``Image`` and ``observe``; the HTML range input.
"""

from __future__ import annotations

import base64
import html as _html
import io
import itertools
import json
import math
import os
import uuid

__all__ = ["STATIC_ENV", "StaticExplorer", "StaticExplorerRow", "static_explorer"]


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
        uid = "d2lssd-explorer-" + uuid.uuid4().hex[:12]
        sizes = [len(self.values[n]) for n in self.names]
        texts = [[_format_value(v) for v in self.values[n]] for n in self.names]
        rows = self._slider_rows(sizes, texts)
        alt = _html.escape(self._alt(self.initial))
        title = (f'<div style="font-weight:600;margin-bottom:0.3em">{_html.escape(self.title)}</div>'
                 if self.title else "")
        data = json.dumps({"frames": self.frames, "sizes": sizes, "texts": texts,
                           "alts": [self._alt(i) for i in range(len(self.frames))]})
        return (f'<div class="d2lssd-explorer" id="{uid}" data-frame="{self.initial}" '
                f'style="margin:0.5em 0">{title}{"".join(rows)}'
                f'<img src="{self.frames[self.initial]}" alt="{alt}" '
                f'style="max-width:100%;height:auto;display:block;margin-top:0.4em">'
                f'<script type="application/json">{_html_safe_json(data)}</script>'
                f'<script>{_SCRIPT % uid}</script></div>')

    def _slider_rows(self, sizes: list[int], texts: list[list[str]]) -> list[str]:
        """One ``<label>`` per control: its name, an ``<input type="range">`` at the initial value, the value."""
        start = self.combos[self.initial]
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
        return rows

    def _alt(self, i: int) -> str:
        combo = self.combos[i]
        return "explorer frame: " + ", ".join(f"{self.labels[n]} = {_format_value(combo[n])}"
                                              for n in self.names)


# The page's JavaScript (``%s``: the explorer's element id): the frame index is the
# sliders' positions read as a mixed-radix number, last control fastest
# (itertools.product order).
_SCRIPT = (
    "(function(){var root=document.getElementById('%s');if(!root)return;"
    "var d=JSON.parse(root.querySelector('script[type=\"application/json\"]').textContent);"
    "var img=root.querySelector('img');var inputs=root.querySelectorAll('input[type=range]');"
    "function show(){var idx=0;for(var k=0;k<inputs.length;k++){var v=parseInt(inputs[k].value,10);"
    "idx=idx*d.sizes[k]+v;inputs[k].nextElementSibling.textContent=d.texts[k][v];}"
    "img.src=d.frames[idx];img.alt=d.alts[idx];root.setAttribute('data-frame',idx);}"
    "for(var k=0;k<inputs.length;k++){inputs[k].addEventListener('input',show);"
    "inputs[k].addEventListener('change',show);}})();")


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
    :func:`d2lssd.anchor_explorer`, :func:`d2lssd.iou_explorer`,
    :func:`d2lssd.nms_explorer` and :func:`d2lssd.loss_explorer`. ``draw`` has the signature of the explorers'
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
    names, values = _check_controls(controls, initial, labels, fmt, max_frames)
    labels = {n: str((labels or {}).get(n, n)) for n in names}
    start = _start_values(values, initial)
    combos = [dict(zip(names, c)) for c in itertools.product(*(values[n] for n in names))]
    frames, results = _render_frames(draw, figsize, combos, fmt, dpi, layout)
    return StaticExplorer(names, values, labels, combos, frames, results, combos.index(start), title)


def _check_controls(controls: dict, initial, labels, fmt: str, max_frames: int
                    ) -> tuple[list[str], dict[str, list]]:
    """Validate :func:`static_explorer`'s arguments; return the control names and their value lists."""
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
    return names, values


def _start_values(values: dict[str, list], initial: dict | None) -> dict:
    """The first frame's values: the listed value nearest ``initial[name]``, else the middle one."""
    start = {}
    for n, vals in values.items():
        if initial and n in initial:
            want = initial[n]
            try:
                start[n] = min(vals, key=lambda v: abs(float(v) - float(want)))
            except (TypeError, ValueError):
                start[n] = want if want in vals else vals[0]
        else:
            start[n] = vals[(len(vals) - 1) // 2]
    return start


def _render_frames(draw, figsize, combos: list[dict], fmt: str, dpi: float, layout
                   ) -> tuple[list[str], list]:
    """Draw every combination off-screen; return the frames as ``data:`` URIs and ``draw``'s results."""
    mime = "image/png" if fmt == "png" else "image/jpeg"
    frames, results = [], []
    for combo in combos:
        data, result = _render(draw, figsize, combo, fmt=fmt, dpi=dpi, layout=layout)
        frames.append(f"data:{mime};base64," + base64.b64encode(data).decode("ascii"))
        results.append(result)
    return frames, results


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
