"""``d2lssd evaluate``: AP of a trained detector (any checkpoint of the package) on a COCO or Pascal VOC data set.

::

    d2lssd evaluate --coco val.json --images images/ --checkpoint runs/mine.best.pt --json ap.json
    d2lssd evaluate --yolo data.yaml --checkpoint runs/mine.best.pt   # the YAML's val split
    d2lssd evaluate --checkpoint runs/pf.best.pt     # a preset's run: the validation split of its own data

prints and (``--json``) writes ``{"AP50", "AP", "AP75", "per_class": {name:
AP50}, "per_class_table": {name: {AP50, AP75, AP, boxes}}, "num_images",
"empty_images", "false_positives_on_empty_images"}`` (a table per class, and
what the detector says about images without objects); ``--out DIR`` also
explains, as MMDetection's ``analyze_results`` does: per-class
precision-recall curves, the confusion matrix with a background row and
column, TIDE's error breakdown (printed too) and the images with the most
misses and false detections drawn (:meth:`d2lssd.runs.RunFolder.analyse`).
AP is COCO's 101-point AP (:func:`d2lssd.mean_average_precision`, equal to
pycocotools' on the same detections), averaged over the classes
with ground truth, on the detector's post-processing with the evaluation
score threshold 0.01 (the paper's inference: NMS 0.45 per class, 200 per
image). Without data options, a checkpoint trained on a preset's data
(``d2lssd train --preset pennfudan``) is evaluated on the validation split
of that data, rebuilt from the config the checkpoint holds.

``--tile PIXELS`` (with ``--tile-overlap R`` and ``--no-full-image``, as
``d2lssd predict``) evaluates tiled inference instead
(:func:`d2lssd.tiling.tiled_detect` on each image at its own size, the
evaluation's post-processing in every pass and in the merge), so the AP of
the plain and the tiled detector can be compared on the same data; ``--out``
does not take it (its plots and worst images run the plain detector).
Source: ours.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


from .._io import atomic_write
from ..argtypes import positive_int
from ..data.collate import collate_ssd
from ..data.yolo import yolo_splits
from ..boxes import to_normalized
from ..detector import EVALUATION, evaluate_detector, evaluation_of, load_detector
from ..engine.checkpoint import read_checkpoint
from ..engine.config import TrainConfig
from ..runs import RunFolder
from ..trainer import open_preset_data
from ..transforms import SSDEvalTransform
from ..tiling import tiled_detect
from .common import add_data_arguments, check_split_options, open_dataset
from .predict import add_tile_arguments, describe_tiling, tile_options

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``d2lssd evaluate``."""
    add_data_arguments(parser)
    parser.add_argument("--checkpoint", required=True, help="a checkpoint of any d2lssd trainer")
    parser.add_argument("--json", metavar="OUT", help="write the result as JSON here")
    parser.add_argument("--out", metavar="DIR", help="also explain: write per-class precision-recall curves, the "
                        "confusion matrix, TIDE's error breakdown and the worst images to this folder")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="images per batch (default 8)")
    parser.add_argument("--device", help="cpu, cuda, ... (default: a GPU if there is one)")
    add_tile_arguments(parser)


def _evaluate_tiled(detector, dataset, tiling: dict, batch_size: int) -> dict:
    """:func:`d2lssd.detector.evaluation_of` on :func:`d2lssd.tiling.tiled_detect`'s detections (boxes normalized).

    ``dataset`` yields ``(image, target)`` before any transform: a uint8
    ``(3, H, W)`` image and a dict with ``"boxes"`` (pixel corners) and
    ``"labels"`` (crowd regions are left out, as :func:`evaluate_detector` does).
    """
    dets, targets = [], []
    for start in range(0, len(dataset), batch_size):
        samples = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        for image, target in samples:
            if not (isinstance(image, torch.Tensor) and image.dtype == torch.uint8 and isinstance(target, dict)):
                raise ValueError("--tile needs the images at their own size: give the data with --coco, --voc or "
                                 "--yolo")
        images = [image.as_subclass(torch.Tensor) for image, _ in samples]
        for image, (_, target), d in zip(images, samples,
                                         tiled_detect(detector, images, **tiling, batch_size=batch_size,
                                                      **EVALUATION)):
            h, w = image.shape[-2:]
            d = d.clone()
            d[:, 2:] = to_normalized(d[:, 2:], int(w), int(h))
            dets.append(d)
            boxes = torch.as_tensor(target["boxes"]).as_subclass(torch.Tensor).float().reshape(-1, 4)
            labels = torch.as_tensor(target["labels"]).float().reshape(-1, 1)
            targets.append(torch.cat((labels, to_normalized(boxes, int(w), int(h))), dim=1))
    return evaluation_of(dets, targets, detector.class_names)


def _preset_validation(checkpoint):
    """The validation set of the preset data a checkpoint was trained on (its ``"config"``), or a ValueError."""
    saved = read_checkpoint(checkpoint).get("config")
    config = TrainConfig.from_dict(saved) if isinstance(saved, dict) else None
    if config is None or config.preset is None:
        raise ValueError("give the data (--coco FILE --images DIR or --voc DIR): the checkpoint was not trained on "
                         "a preset's data")
    data = open_preset_data(config.replace(augment=False))
    if data.val is None:
        raise ValueError(f"preset {config.preset} has no validation data; give the data (--coco/--voc)")
    data.val.description = f"the validation split of {data.description}"
    return data.val


def run(args) -> int:
    """Evaluate and print (see the module docstring); returns 0."""
    check_split_options(args)  # --image-set / --yolo-split without their data is refused, never ignored
    tiling = tile_options(args)
    if tiling is not None and args.out:
        raise ValueError("--out does not take --tile: its plots and worst images run the plain detector; "
                         "evaluate tiled with --json, and explain the plain detector with --out")
    detector = load_detector(args.checkpoint, args.device)
    if detector.input_size[0] != detector.input_size[1]:
        raise ValueError(f"evaluate needs a square input size, the detector has {detector.input_size}")
    transform = None if tiling is not None else SSDEvalTransform(detector.input_size[0], detector.pixel_scale)
    if any(getattr(args, k, None) is not None for k in ("coco", "voc", "yolo")):
        yolo = getattr(args, "yolo", None)
        split = "val" if yolo is not None and Path(yolo).exists() and "val" in yolo_splits(yolo) else None
        dataset = open_dataset(args, transforms=transform, classes=detector.class_names, yolo_split=split)
    else:
        dataset = _preset_validation(args.checkpoint)
        if tiling is not None:
            dataset.transforms = None  # the images at their own size (refused below if they do not come so)
    print(f"data: {getattr(dataset, 'description', type(dataset).__name__)}", flush=True)
    if tiling is not None:
        print(describe_tiling(tiling), flush=True)
        res = _evaluate_tiled(detector, dataset, tiling, args.batch_size)
    elif args.out:
        loader = torch.utils.data.DataLoader(dataset, args.batch_size, collate_fn=collate_ssd)
        res = RunFolder(args.out, detector.class_names, tensorboard=False).analyse(detector, loader)
    else:
        res = evaluate_detector(detector, dataset, args.batch_size)
    r = {k: (float(res[k]) if k.startswith("AP") else res[k]) for k in ("AP50", "AP", "AP75", "per_class", "num_images")}
    r["per_class_table"] = res["per_class_table"]
    print(f"{r['num_images']} images: AP50 {r['AP50']:.4f}, AP {r['AP']:.4f}, AP75 {r['AP75']:.4f}", flush=True)
    print(f"{'class':16} {'boxes':>6} {'AP50':>7} {'AP75':>7} {'AP':>7}")
    for name, row in r["per_class_table"].items():
        print(f"{name[:16]:16} {row['boxes']:6d} " + " ".join(f"{row[k]:7.4f}" for k in ("AP50", "AP75", "AP")),
              flush=True)
    # false positives on images without any object: what a detector says about empty scenes
    score = detector.postprocess.score_threshold
    empty = [d for d, t in zip(res["detections"], res["targets"]) if not (t[:, 0] >= 0).any()]
    r["empty_images"] = len(empty)
    r["false_positives_on_empty_images"] = int(sum(int((d[:, 1] >= score).sum()) for d in empty))
    print(f"images without objects: {len(empty)}, detections on them at score >= {score:g}: "
          f"{r['false_positives_on_empty_images']}", flush=True)
    if args.out:
        print(f"TIDE error breakdown (AP50 {res['tide'].AP50:.4f}):\n{res['tide'].table()}", flush=True)
        print(f"wrote {args.out}: {', '.join(sorted(p.name for p in Path(args.out).iterdir()))}", flush=True)
    if args.json:
        text = json.dumps(r, indent=1).encode()
        atomic_write(Path(args.json), lambda f: f.write(text))
        print(f"wrote {args.json}", flush=True)
    return 0
