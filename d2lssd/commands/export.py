"""``d2lssd export``: a trained detector as an ONNX file, checked on real photos against the detector.

::

    d2lssd export --checkpoint runs/mine.best.pt --out mine.onnx
    d2lssd export --checkpoint runs/pf.best.pt --out pedestrians.onnx --top-k 20

reads any checkpoint of the package (:func:`d2lssd.load_detector`: every
trainer writes the one format), writes the graph of
:func:`d2lssd.export.export_onnx` (the detector's preprocessing, decoding,
post-processing and top-k inside), prints what was written and, unless
``--no-check``, runs the file as a consumer would (uint8 photos resized as
its metadata says) on the package's real photos against the detector's own
:meth:`d2lssd.Detector.detect` (:func:`d2lssd.export.check_export`). Source: ours.
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


def run(args) -> int:
    """``d2lssd export``: write the file, check it, print what was written; returns 0.

    Raises:
        RuntimeError: ``onnx`` / ``onnxscript`` missing. ValueError: a bad
        checkpoint, or the check finding a difference.
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
    return 0
