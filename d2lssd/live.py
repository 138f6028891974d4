"""The live detector: an exported SSD running in the reader's browser, for the built book.

:func:`live_detector` exports a trained model with :func:`d2lssd.export.export_onnx`,
checks onnxruntime (Python) against :func:`d2lssd.export.reference_detections`
on the images, and returns a :class:`LiveDetector` whose HTML embeds the ONNX
file (gzip, base64), the images (PNG ``data:`` URIs), the Python pipeline's
detections on the first image (for the browser test) and the sliders. The
book's ``_static/d2lssd-live.js`` and the onnxruntime-web it vendors
(``book/_ext/d2lssd_ort.py``) bring that HTML to life; in Jupyter it shows one
line saying so.

Its sibling for a reader's own detector outside the book, one self-contained
offline page with the runtime inlined and photos of any size
(``d2lssd export --html``), is :mod:`d2lssd.webpage`.

Sources: ours; onnxruntime-web (the ``InferenceSession`` of the browser
script); the export and its check are :mod:`d2lssd.export`'s.
"""

from __future__ import annotations

import base64
import gzip
import html as _html
import io
import json
import tempfile
import uuid
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .export import as_detector, compare_detections, export_onnx, onnx_detect, reference_detections

__all__ = ["LiveDetector", "live_detector"]


class LiveDetector:
    """An exported model, a few images and sliders, for the built book: runs with onnxruntime-web.

    Made by :func:`live_detector`. Its HTML (``_repr_html_``) holds the ONNX
    file (gzip, base64), the images (PNG ``data:`` URIs) and the Python
    pipeline's detections on the first image (for the browser test); the
    book's ``_static/d2lssd-live.js`` and the vendored onnxruntime-web
    (``book/_ext/d2lssd_ort.py``) bring it to life. In Jupyter it shows one
    line saying so.

    Attributes:
        html: the HTML. onnx_bytes: size of the ONNX file. embedded_bytes:
            size of the model as embedded (gzip + base64). images_bytes: size
            of the embedded images. expected: list of dicts ``image``,
            ``score_threshold``, ``iou_threshold``, ``detections`` (rows
            ``(class, score, x1, y1, x2, y2)``, boxes in input pixels) from
            :func:`reference_detections`. check: :func:`compare_detections`
            of onnxruntime (Python) against :func:`reference_detections` on
            all the images at the default thresholds.
    """

    def __init__(self, html, onnx_bytes, embedded_bytes, images_bytes, expected, check):
        self.html, self.onnx_bytes, self.embedded_bytes = html, onnx_bytes, embedded_bytes
        self.images_bytes, self.expected, self.check = images_bytes, expected, check

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return (f"LiveDetector(model {self.onnx_bytes / 1e6:.2f} MB, embedded {self.embedded_bytes / 1e6:.2f} MB, "
                f"images {self.images_bytes / 1e6:.2f} MB)")


def _png_data_uri(chw) -> str:
    """A ``data:image/png;base64,...`` URI of a uint8 ``(3, H, W)`` image (array or tensor)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(np.asarray(chw).transpose(1, 2, 0))).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def live_detector(detector, images, *, score_threshold: float = 0.5, iou_threshold: float = 0.5,
                  top_k: int = 20, extra_settings: Sequence[tuple[float, float]] = ((0.1, 0.7),)) -> LiveDetector:
    """The trained detector, exported, running in the reader's browser on these images and one they pick.

    Args:
        detector: a :class:`d2lssd.Detector`, a checkpoint path or a
            registered network (:func:`d2lssd.export.as_detector`); its
            input convention, class names and post-processing are the page's.
        images: uint8 ``(N, 3, H, W)`` at the detector's input size (N >= 1), the
            validation images shown; the first is shown at load.
        top_k: detections per image at most (as in :func:`export_onnx`).
        score_threshold, iou_threshold: where the sliders start (each slider
            runs from 0.05 to 0.95 in steps of 0.05).
        extra_settings: more ``(score_threshold, iou_threshold)`` pairs for
            which the Python pipeline's detections on the first image are
            embedded too (for the browser test).

    Returns:
        :class:`LiveDetector`.

    Raises:
        ValueError: images not uint8 ``(N, 3, H, W)`` with ``N >= 1`` at the input size,
            thresholds off the sliders' grid, or what :func:`export_onnx` raises.
    """
    import onnxruntime as ort  # here: an optional dependency, and slow to import

    x = torch.as_tensor(images)
    if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[0] < 1 or x.shape[1] != 3:
        raise ValueError(f"images must be uint8 (N, 3, H, W) with N >= 1, got {x.dtype} {tuple(x.shape)}")
    settings = [(float(score_threshold), float(iou_threshold))] + [(float(a), float(b)) for a, b in extra_settings]
    for pair in settings:
        if any(abs(v * 20 - round(v * 20)) > 1e-9 or not 0.05 <= v <= 0.95 for v in pair):
            raise ValueError(f"thresholds must be multiples of 0.05 in [0.05, 0.95] (the sliders), got {pair}")
    detector = as_detector(detector)
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(detector, Path(tmp) / "model.onnx", top_k=top_k, check=False)
        data = path.read_bytes()
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    h, w = json.loads(meta["input_size"])
    if tuple(x.shape[2:]) != (h, w):
        raise ValueError(f"images must be {h}x{w} (the input size), got {tuple(x.shape[2:])}")
    k = int(json.loads(meta["top_k"]))
    check = compare_detections(reference_detections(detector, x, score_threshold, iou_threshold, k),
                               onnx_detect(sess, x, score_threshold, iou_threshold))
    expected = []
    for st, it in settings:
        det = reference_detections(detector, x[:1], st, it, k)[0].astype(float)
        det[:, [2, 4]] *= w
        det[:, [3, 5]] *= h
        rows = [[int(r[0])] + [round(float(v), 4) for v in r[1:]] for r in det]
        expected.append({"image": 0, "score_threshold": st, "iou_threshold": it, "detections": rows})
    uris = [_png_data_uri(im.numpy()) for im in x]
    model_b64 = base64.b64encode(gzip.compress(data, compresslevel=9, mtime=0)).decode("ascii")
    payload = {"class_names": json.loads(meta["class_names"]), "input_size": [h, w], "images": uris,
               "expected": expected, "top_k": k}
    payload_json = json.dumps(payload).replace("</", "<\\/")
    uid = "d2lssd-live-" + uuid.uuid4().hex[:12]

    def slider(kind, label, value):
        return (f'<label style="display:flex;flex-wrap:wrap;align-items:center;gap:0.2em 0.6em;margin:0.2em 0">'
                f'<span style="min-width:8em">{label}</span>'
                f'<input type="range" min="0.05" max="0.95" step="0.05" value="{value:.2f}" '
                f'data-threshold="{kind}" aria-label="{label}" style="flex:1 1 8em;min-width:6em;max-width:16em">'
                f'<output style="min-width:2.5em">{value:.2f}</output></label>')

    thumbs = "".join(f'<img src="{u}" width="56" height="56" alt="validation image {i}" title="validation image {i}" '
                     f'style="cursor:pointer;margin:2px;border:1px solid #ccc">' for i, u in enumerate(uris))
    names = ", ".join(payload["class_names"])
    page = (
        f'<div class="d2lssd-live-detector" id="{uid}" style="margin:0.5em 0">'
        f'<p class="d2lssd-live-fallback"><em>Live detector ({_html.escape(names)}): in the built book this '
        f'runs the exported ONNX model in your browser with onnxruntime-web. In Jupyter, run the file with '
        f'onnxruntime in Python instead.</em></p>'
        f'<div class="d2lssd-live-ui" hidden><div style="display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start;max-width:100%">'
        f'<canvas width="{2 * w}" height="{2 * h}" aria-label="detections" '
        f'style="width:100%;max-width:{int(1.25 * w)}px;height:auto;border:1px solid #ccc"></canvas>'
        f'<div style="flex:1 1 16em;min-width:0">'
        + slider("score", "score threshold", score_threshold) + slider("iou", "NMS IoU threshold", iou_threshold)
        + f'<div class="d2lssd-live-thumbs" style="margin:0.4em 0">{thumbs}</div>'
        f'<div class="d2lssd-live-drop" style="border:2px dashed #999;padding:0.4em;border-radius:4px;'
        f'overflow-wrap:anywhere">Your image: drop it here or <input type="file" accept="image/*" '
        f'aria-label="pick an image" style="max-width:100%"> (resized to {w}x{h})</div>'
        f'<p class="d2lssd-live-list" style="font-size:0.9em;overflow-wrap:anywhere"></p>'
        f'<p class="d2lssd-live-status" style="font-size:0.8em;color:#555"></p>'
        f'</div></div></div>'
        f'<script type="application/json" class="d2lssd-live-data">{payload_json}</script>'
        f'<script type="application/octet-stream" class="d2lssd-live-model">{model_b64}</script>'
        f'</div>')
    return LiveDetector(page, len(data), len(model_b64), sum(len(u) for u in uris), expected, check)
