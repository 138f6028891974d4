"""``d2lssd evaluate``: AP of a trained detector (any checkpoint of the package) on a COCO or Pascal VOC data set.

::

    d2lssd evaluate --coco val.json --images images/ --checkpoint runs/mine.best.pt --json ap.json

prints and (``--json``) writes ``{"AP50", "AP", "AP75", "per_class": {name:
AP50}, "num_images"}``: COCO's 101-point AP (:func:`d2lssd.mean_average_precision`,
equal to pycocotools' on the same detections), averaged over the classes
with ground truth, on the detector's post-processing with the evaluation
score threshold 0.01 (the paper's inference: NMS 0.45 per class, 200 per
image). Source: ours.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from .._io import atomic_write
from ..argtypes import positive_int
from ..data.pennfudan import collate_ssd
from ..detector import Detector, load_detector
from ..metrics import mean_average_precision
from ..transforms import SSDEvalTransform
from .common import add_data_arguments, open_dataset

__all__ = ["add_arguments", "run", "evaluate_detector"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``d2lssd evaluate``."""
    add_data_arguments(parser)
    parser.add_argument("--checkpoint", required=True, help="a checkpoint of any d2lssd trainer")
    parser.add_argument("--json", metavar="OUT", help="write the result as JSON here")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="images per batch (default 8)")
    parser.add_argument("--device", help="cpu, cuda, ... (default: a GPU if there is one)")


def evaluate_detector(detector: Detector, dataset, batch_size: int = 8) -> dict:
    """AP50, AP@[.5:.95], AP75 and per-class AP50 of a detector on a data set.

    Args:
        detector: a :class:`d2lssd.Detector` (:func:`d2lssd.load_detector`).
        dataset: a :class:`d2lssd.data.CocoDataset` / ``VOCDataset`` (or a
            split of one) transformed to the detector's input size and
            convention (:class:`d2lssd.transforms.SSDEvalTransform` with its
            ``pixel_scale``), labelled with its classes.
        batch_size: images per forward pass (>= 1).

    Returns:
        ``{"AP50", "AP", "AP75"}`` floats (COCO's 101-point interpolation on
        normalized boxes, :func:`d2lssd.mean_average_precision`, averaged over
        the classes with ground truth), ``"per_class"`` ``{name: AP50}`` for
        those classes, ``"num_images"``.

    Raises:
        ValueError: what :meth:`d2lssd.Detector.predict` and the collate
        function raise (images of different sizes, bad labels).

    Source: ours; the post-processing is the detector's with score threshold 0.01 (COCO keeps low scores).
    """
    loader = torch.utils.data.DataLoader(dataset, batch_size, collate_fn=collate_ssd)
    dets, targets = [], []
    for X, Y in loader:
        dets += detector.predict(X, score_threshold=0.01)
        targets += list(Y)
    r = mean_average_precision(dets, targets)
    per_class = {detector.class_names[int(c)]: float(ap) for c, ap in r["AP50_per_class"].items()
                 if not math.isnan(ap)}
    return {"AP50": float(r["AP50"]), "AP": float(r["AP"]), "AP75": float(r["AP75"]), "per_class": per_class,
            "num_images": len(dataset)}


def run(args) -> int:
    """Evaluate and print (see the module docstring); returns 0."""
    detector = load_detector(args.checkpoint, args.device)
    if detector.input_size[0] != detector.input_size[1]:
        raise ValueError(f"evaluate needs a square input size, the detector has {detector.input_size}")
    dataset = open_dataset(args, transforms=SSDEvalTransform(detector.input_size[0], detector.pixel_scale),
                           classes=detector.class_names)
    r = evaluate_detector(detector, dataset, args.batch_size)
    print(f"{r['num_images']} images: AP50 {r['AP50']:.4f}, AP {r['AP']:.4f}, AP75 {r['AP75']:.4f}; per class AP50: "
          + ", ".join(f"{k} {v:.4f}" for k, v in r["per_class"].items()), flush=True)
    if args.json:
        text = json.dumps(r, indent=1).encode()
        atomic_write(Path(args.json), lambda f: f.write(text))
        print(f"wrote {args.json}", flush=True)
    return 0
