"""``d2lssd predict``: detect objects on photos with a trained detector (any checkpoint of the package).

::

    d2lssd predict --checkpoint runs/mine.best.pt photo1.jpg photo2.png --out preds/

writes ``preds/photo1.boxes.jpg`` ... (boxes and class names drawn) and
``preds/detections.json``, a COCO results list (``image_id``,
``category_id``, ``bbox`` ``[x, y, w, h]`` in pixels of the photo,
``score``) that ``pycocotools.coco.COCO.loadRes`` accepts; ``image_id`` is
the photo's position on the command line, from 1, and ``preds/images.json``
maps it to the file. For a VOC checkpoint (no COCO ids) ``category_id`` is
the label + 1. The detections are :meth:`d2lssd.Detector.detect`'s (EXIF
orientation applied, the detector's resize, input convention and
post-processing). Source: ours.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .._io import atomic_write
from ..argtypes import unit_float
from ..detector import load_detector
from ..photos import as_uint8_image, draw_detections

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``d2lssd predict``."""
    parser.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    parser.add_argument("--checkpoint", required=True, help="a checkpoint of any d2lssd trainer")
    parser.add_argument("--out", required=True, help="folder for the drawn images and detections.json")
    parser.add_argument("--score-threshold", type=unit_float, help="keep detections above this score "
                        "(default the detector's, 0.5)")
    parser.add_argument("--device", help="cpu, cuda, ... (default: a GPU if there is one)")


def _write_json(path: Path, obj) -> None:
    text = json.dumps(obj, indent=1).encode()
    atomic_write(path, lambda f: f.write(text))


def run(args) -> int:
    """Detect, draw, write (see the module docstring); returns 0.

    Raises:
        FileNotFoundError: a photo or the checkpoint missing. ValueError: a
        file that is no image, a bad checkpoint.
    """
    detector = load_detector(args.checkpoint, args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ids = [c if c is not None else k + 1
           for k, c in enumerate(detector.category_ids or [None] * detector.num_classes)]
    results, names = [], {}
    for i, path in enumerate(args.images, start=1):
        if not Path(path).is_file():
            raise FileNotFoundError(f"no image {path}")
        image = as_uint8_image(path)
        pixels = detector.detect(image, score_threshold=args.score_threshold)
        draw_detections(image, pixels, out / f"{Path(path).stem}.boxes{Path(path).suffix or '.png'}",
                        classes=detector.class_names)
        for c, s, x0, y0, x1, y1 in pixels.tolist():
            results.append({"image_id": i, "category_id": int(ids[int(c)]), "score": round(s, 5),
                            "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)]})
        names[i] = str(path)
        print(f"{path}: {len(pixels)} detections", flush=True)
    _write_json(out / "detections.json", results)
    _write_json(out / "images.json", names)
    print(f"wrote {out / 'detections.json'} ({len(results)} detections) and the drawn images in {out}", flush=True)
    return 0
