"""``d2lssd export``: a trained checkpoint as an ONNX file, checked against PyTorch.

::

    d2lssd export --checkpoint runs/tinyssd.pt --out tinyssd.onnx
    d2lssd export --checkpoint runs/pf.best.pt --out pedestrians.onnx --top-k 20

reads any checkpoint :func:`d2lssd.export.load_model_for_export` knows
(``d2lssd.train_ssd`` / ``train_recipe``, the Penn-Fudan trainer, ``d2lssd
train``), writes the graph of :func:`d2lssd.export.export_onnx` (decoding,
NMS and top-k inside), prints what was written and, unless ``--no-check``,
runs it with onnxruntime on 4 random images against :func:`d2lssd.predict`
(:func:`d2lssd.export.check_export`). ``d2lssd.export.add_arguments`` and
``d2lssd.export.run`` still name these. Source: ours.
"""

from __future__ import annotations

import argparse
import json

from ..export import CHECK_SCORE_THRESHOLD, OPSET, check_export, export_onnx, load_model_for_export

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``d2lssd export`` (see :mod:`d2lssd.cli`)."""
    parser.add_argument("--checkpoint", required=True, metavar="CKPT",
                        help="a checkpoint of d2lssd.train_ssd / train_recipe or of the Penn-Fudan trainer")
    parser.add_argument("--out", required=True, metavar="MODEL.onnx", help="the ONNX file to write")
    parser.add_argument("--input-size", type=int, nargs="+", metavar="PIXELS",
                        help="H W (or one side) the model is exported for; default the architecture's "
                             "(TinySSD 256, Penn-Fudan SSD its checkpoint's size)")
    parser.add_argument("--classes", metavar="NAMES",
                        help="comma-separated class names, in class order (default banana / pedestrian)")
    parser.add_argument("--top-k", type=int, default=100, help="detections per image at most (default 100)")
    parser.add_argument("--no-check", action="store_true",
                        help="skip running the file with onnxruntime against d2lssd.predict")


def run(args) -> int:
    """``d2lssd export``: write the file, check it, print what was written."""
    if args.input_size is not None and len(args.input_size) not in (1, 2):
        raise ValueError(f"--input-size takes H W or one side, got {len(args.input_size)} numbers")
    size = None if args.input_size is None else (args.input_size * 2)[:2]
    names = None if args.classes is None else [n.strip() for n in args.classes.split(",")]
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise RuntimeError(f"{e.name} is not installed: pip install \"d2lssd[export]\"") from None
    net, spec = load_model_for_export(args.checkpoint)
    out = export_onnx(net, args.out, input_size=size or spec["input_size"], class_names=names or spec["class_names"],
                      top_k=args.top_k,
                      score_threshold=spec["score_threshold"], iou_threshold=spec["iou_threshold"],
                      pixel_scale=spec["pixel_scale"], check=False)
    import onnx

    m = onnx.load(str(out), load_external_data=False)
    meta = {p.key: p.value for p in m.metadata_props}
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, opset {OPSET}): {meta['architecture']}, input "
          f"uint8 {json.loads(meta['input_size'])}, classes {json.loads(meta['class_names'])}, "
          f"top_k {meta['top_k']}")
    if not args.no_check:
        r = check_export(out, net, num_images=4, score_threshold=CHECK_SCORE_THRESHOLD,
                         iou_threshold=spec["iou_threshold"])
        if not r["ok"]:
            raise ValueError(f"the exported graph differs from d2lssd.predict: {r['summary']}")
        print(f"onnxruntime against d2lssd.predict on 4 random images (score >= {CHECK_SCORE_THRESHOLD}): "
              f"{r['summary']}")
    return 0
