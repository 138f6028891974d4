"""``d2lssd export``: a trained detector as an ONNX file, checked on real photos against the detector.

::

    d2lssd export --checkpoint runs/mine.best.pt --out mine.onnx
    d2lssd export --checkpoint runs/pf.best.pt --out pedestrians.onnx --top-k 20
    d2lssd export --checkpoint runs/mine.best.pt --out mine.onnx --html mine.html

reads any checkpoint of the package (:func:`d2lssd.load_detector`: every
trainer writes the one format), writes the graph of
:func:`d2lssd.export.export_onnx` (the detector's preprocessing, decoding,
post-processing and top-k inside), prints what was written and, unless
``--no-check``, runs the file as a consumer would (uint8 photos resized as
its metadata says) on the package's real photos against the detector's own
:meth:`d2lssd.Detector.detect` (:func:`d2lssd.export.check_export`). With
``--html PAGE`` it also writes the detector as one offline web page
(:func:`d2lssd.webpage.write_detector_page`: onnxruntime-web and the model
inside; photos dropped on it are detected in the browser). Source: ours.
"""

from __future__ import annotations

import argparse
import json

from ..argtypes import positive_int
from ..detector import load_detector
from ..export import OPSET, check_export, export_onnx

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``d2lssd export`` (see :mod:`d2lssd.cli`)."""
    parser.add_argument("--checkpoint", required=True, metavar="CKPT",
                        help="a checkpoint of any d2lssd trainer (d2lssd train, train_ssd, the Penn-Fudan project)")
    parser.add_argument("--out", required=True, metavar="MODEL.onnx", help="the ONNX file to write")
    parser.add_argument("--top-k", type=positive_int, help="detections per image at most (default the detector's)")
    parser.add_argument("--no-check", action="store_true",
                        help="skip running the file on real photos against the detector")
    parser.add_argument("--html", metavar="PAGE.html",
                        help="also write one self-contained, offline web page that runs the model on photos "
                             "dropped on it (onnxruntime-web and the model embedded; about 5 MB plus the model)")


def run(args) -> int:
    """``d2lssd export``: write the file, check it, write the page if asked, print what was written; returns 0.

    Raises:
        RuntimeError: ``onnx`` / ``onnxscript`` missing, or (``--html``)
        onnxruntime-web could not be had (no npm to download it once).
        ValueError: a bad checkpoint, or the check finding a difference
        (then no page is written).
    """
    try:
        import onnx
        import onnxscript  # noqa: F401  (the exporter needs it)
    except ImportError as e:
        raise RuntimeError(f"{e.name} is not installed: pip install \"d2lssd[export]\"") from None
    detector = load_detector(args.checkpoint, device="cpu")
    out = export_onnx(detector, args.out, top_k=args.top_k, check=False)
    m = onnx.load(str(out), load_external_data=False)
    meta = {p.key: p.value for p in m.metadata_props}
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, opset {OPSET}): {meta['architecture']}, input "
          f"uint8 {json.loads(meta['input_size'])} (pixels / {json.loads(meta['pixel_scale']):g}), classes "
          f"{json.loads(meta['class_names'])}, top_k {meta['top_k']}, {detector.postprocess.semantics} "
          "post-processing", flush=True)
    if not args.no_check:
        r = check_export(out, detector)
        if not r["ok"]:
            raise ValueError(f"the exported graph differs from the detector: {r['summary']}")
        print(f"onnxruntime as a consumer runs it, against the detector's detect, on the package's photos: "
              f"{r['summary']}", flush=True)
    if args.html:
        from ..webpage import write_detector_page

        page = write_detector_page(out, args.html)
        print(f"wrote {page} ({page.stat().st_size / 1e6:.2f} MB): open it in a browser (works offline, from "
              "disk) and drop photos on it", flush=True)
    return 0
