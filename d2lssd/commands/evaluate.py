"""``d2lssd evaluate``: AP of a ``d2lssd train`` checkpoint on a COCO or Pascal VOC data set.

::

    d2lssd evaluate --coco val.json --images images/ --checkpoint runs/mine.best.pt --json ap.json

prints and (``--json``) writes ``{"AP50", "AP", "AP75", "per_class": {name:
AP50}, "num_images"}``: COCO's 101-point AP (:func:`d2lssd.mean_average_precision`,
equal to pycocotools' on the same detections), averaged over the classes
with ground truth, on the paper's inference (score >= 0.01, NMS 0.45 per
class, 200 per image). Source: ours.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from .._io import atomic_write
from ..cli import positive_int
from ..data.pennfudan import collate_ssd
from ..metrics import mean_average_precision
from ..train import predict
from ..transforms import SSDEvalTransform
from .common import add_data_arguments, load_detector, open_dataset

__all__ = ["add_arguments", "run", "evaluate_detector"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``d2lssd evaluate``."""
    add_data_arguments(parser)
    parser.add_argument("--checkpoint", required=True, help="a checkpoint of d2lssd train")
    parser.add_argument("--json", metavar="OUT", help="write the result as JSON here")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="images per batch (default 8)")
    parser.add_argument("--device", help="cpu, cuda, ... (default: a GPU if there is one)")


def evaluate_detector(net, spec: dict, dataset, batch_size: int = 8, device=None) -> dict:
    """AP50, AP@[.5:.95], AP75 and per-class AP50 of ``net`` on ``dataset``.

    Args:
        net: a model of :func:`~d2lssd.commands.common.load_detector`.
        spec: its detector spec (``classes``, ``nms_threshold``).
        dataset: a :class:`d2lssd.data.CocoDataset` / ``VOCDataset`` (or a
            split of one) transformed to ``spec["size"]`` (e.g. with
            :class:`d2lssd.transforms.SSDEvalTransform`), labelled with
            ``spec["classes"]``.
        batch_size: images per forward pass (>= 1).
        device: default :func:`d2lssd.try_gpu`.

    Returns:
        ``{"AP50", "AP", "AP75"}`` floats (COCO's 101-point interpolation on
        normalized boxes, :func:`d2lssd.mean_average_precision`, averaged over
        the classes with ground truth), ``"per_class"`` ``{name: AP50}`` for
        those classes, ``"num_images"``.

    Raises:
        ValueError: what :func:`d2lssd.predict` and the collate function raise
        (images of different sizes, bad labels).

    Source: ours; the inference is the SSD paper's (:func:`d2lssd.ssd_postprocess`).
    """
    loader = torch.utils.data.DataLoader(dataset, batch_size, collate_fn=collate_ssd)
    dets, targets = [], []
    for X, Y in loader:
        dets += predict(net, X, device=device, nms_threshold=spec.get("nms_threshold", 0.45), score_threshold=0.01,
                        top_k=200, semantics="paper")
        targets += list(Y)
    r = mean_average_precision(dets, targets)
    per_class = {spec["classes"][int(c)]: float(ap) for c, ap in r["AP50_per_class"].items()
                 if not math.isnan(ap)}
    return {"AP50": float(r["AP50"]), "AP": float(r["AP"]), "AP75": float(r["AP75"]), "per_class": per_class,
            "num_images": len(dataset)}


def run(args) -> int:
    """Evaluate and print (see the module docstring); returns 0."""
    net, spec = load_detector(args.checkpoint, args.device)
    dataset = open_dataset(args, transforms=SSDEvalTransform(spec["size"]), classes=spec["classes"])
    r = evaluate_detector(net, spec, dataset, args.batch_size, args.device)
    print(f"{r['num_images']} images: AP50 {r['AP50']:.4f}, AP {r['AP']:.4f}, AP75 {r['AP75']:.4f}; per class AP50: "
          + ", ".join(f"{k} {v:.4f}" for k, v in r["per_class"].items()), flush=True)
    if args.json:
        text = json.dumps(r, indent=1).encode()
        atomic_write(Path(args.json), lambda f: f.write(text))
        print(f"wrote {args.json}", flush=True)
    return 0
