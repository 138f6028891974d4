"""The command line of the Penn-Fudan project: ``python -m d2lssd.pennfudan train | evaluate | predict``.

Also installed as the console script ``d2lssd-pennfudan``::

    python -m d2lssd.pennfudan train --schedule cpu --checkpoint runs/pf.pt
    python -m d2lssd.pennfudan evaluate --checkpoint runs/pf.best.pt --json results.json
    python -m d2lssd.pennfudan predict --checkpoint runs/pf.best.pt photo.png --out preds/
    torchrun --nproc_per_node=2 -m d2lssd.pennfudan train ...   # DistributedDataParallel

Each sub-command is a thin layer over the Python API of
:mod:`d2lssd.pennfudan` (:func:`~d2lssd.pennfudan.train`,
:func:`~d2lssd.pennfudan.evaluate`, :func:`~d2lssd.pennfudan.detect`);
``predict`` draws with :func:`d2lssd.photos.draw_detections`. Under
``torchrun`` only rank 0 prints. Errors: a bad argument prints one line and
exits with status 2, a failure while running one line and status 1 (as the
``d2lssd`` command line, :mod:`d2lssd.cli`, whose parser and argument types
this uses). ``d2lssd.pennfudan.main`` and ``d2lssd.pennfudan.build_parser``
still name :func:`main` and :func:`build_parser`.

Source: ours; torchvision ``references/detection/train.py`` for the shape of a
script that runs alone or under ``torchrun``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

from ._io import atomic_write
from .argtypes import nonneg_int, positive_int, unit_float
from .cli import OneLineParser, run_reporting
from .device import try_gpu
from .engine.distributed import dist_info
from .pennfudan import SCHEDULES, detect, evaluate, load_model, make_config, make_loaders, train
from .photos import as_uint8_image, draw_detections

__all__ = ["build_parser", "main"]



def _device(text):
    try:
        d = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"unknown device {text!r} (try cpu, cuda, cuda:1)") from None
    if d.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"device {text!r} asked for but CUDA is not available")
    return d


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m d2lssd.pennfudan`` (sub-commands train, evaluate, predict)."""
    p = OneLineParser(prog="d2lssd-pennfudan",
                description="Train, evaluate and run the ResNet-34 SSD pedestrian detector on Penn-Fudan. "
                            "Under torchrun (torchrun --nproc_per_node=N -m d2lssd.pennfudan train ...) "
                            "training uses DistributedDataParallel.")
    sub = p.add_subparsers(dest="command", metavar="{train,evaluate,predict}", parser_class=OneLineParser)
    sub.required = True

    def common(sp, checkpoint_required):
        sp.add_argument("--device", type=_device, default=None,
                        help="cpu, cuda or cuda:N (default: the GPU if there is one; under torchrun cuda:LOCAL_RANK)")
        sp.add_argument("--checkpoint", type=Path, required=checkpoint_required, default=None,
                        help="checkpoint file" + (" to read" if checkpoint_required else
                                                  " written after every epoch (the best one by validation AP50 "
                                                  "goes next to it as NAME.best.pt)"))
        sp.add_argument("--seed", type=nonneg_int, default=0, help="seed of the split, the data order, the "
                        "initial weights and the generated data (default 0)")
        sp.add_argument("--no-progress", dest="progress", action="store_false", help="no tqdm progress bar")

    def data_opts(sp):
        sp.add_argument("--data", type=Path, default=None,
                        help="folder for the data (default: the d2lssd cache folder)")
        sp.add_argument("--source", choices=("auto", "real", "generated"), default="auto",
                        help="auto: the real Penn-Fudan data if it can be downloaded, else generated look-alike "
                             "data; real: only the real data; generated: offline data (default auto)")
        sp.add_argument("--workers", type=nonneg_int, default=0, help="DataLoader worker processes (default 0)")
        sp.add_argument("--batch-size", type=positive_int, default=None,
                        help="images per batch and per process (default: the schedule's)")
        sp.add_argument("--num-val", type=positive_int, default=None,
                        help="use only the first N validation images (default: the schedule's)")
        sp.add_argument("--val-split", type=positive_int, default=None,
                        help="images held out for validation by the seeded split (default 50: 120/50 of 170)")

    t = sub.add_parser("train", help="train the detector", description="Train the ResNet-34 SSD on Penn-Fudan.")
    common(t, False)
    data_opts(t)
    t.add_argument("--schedule", choices=sorted(SCHEDULES), default=None,
                   help="cpu: 16 epochs, about 6 minutes on 2 cores; full: the GPU schedule (120 epochs) "
                        "(default: full on CUDA, else cpu)")
    t.add_argument("--epochs", type=nonneg_int, default=None, help="epochs in total (default: the schedule's)")
    t.add_argument("--num-train", type=positive_int, default=None,
                   help="use only the first N training images (default: the schedule's)")
    t.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the schedule's)")
    t.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw", help="default adamw")
    t.add_argument("--size", type=positive_int, default=300, help="input side in pixels, >= 257 (default 300)")
    t.add_argument("--bn", choices=("train", "frozen"), default="train",
                   help="BatchNorm: train (batch statistics; SyncBatchNorm under DDP on CUDA) or frozen "
                        "(running statistics, identical results for any number of processes)")
    t.add_argument("--loss-normalize", choices=("batch", "image"), default="batch",
                   help="divide the SSD loss by the positives of the batch (the paper) or of each image")
    t.add_argument("--no-augment", dest="augment", action="store_false",
                   help="no random augmentation (resize only)")
    t.add_argument("--no-pretrained", dest="pretrained", action="store_false",
                   help="do not try to download ImageNet weights for the backbone")
    t.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists")

    e = sub.add_parser("evaluate", help="AP50 and COCO AP on the held-out split",
                       description="Evaluate a checkpoint on the held-out (validation) split.")
    common(e, True)
    data_opts(e)
    e.add_argument("--json", type=Path, default=None, help="also write the results (and PR curve) to this JSON file")

    pr = sub.add_parser("predict", help="detect pedestrians in image files",
                        description="Detect pedestrians; write each image with its boxes drawn, and the "
                                    "detections (boxes in pixels of the original image) as JSON.")
    common(pr, True)
    pr.add_argument("images", nargs="+", type=Path, help="image files (PNG, JPEG, ...)")
    pr.add_argument("--out", type=Path, default=Path("predictions"),
                    help="output folder (default ./predictions): NAME.boxes.png per image and detections.json")
    pr.add_argument("--score-threshold", type=unit_float, default=None, help="minimum score (default 0.5)")
    pr.add_argument("--nms-threshold", type=unit_float, default=None, help="NMS IoU threshold (default 0.45)")
    pr.add_argument("--top-k", type=positive_int, default=None, help="at most K detections per image (default 20)")
    return p


def _say(msg: str) -> None:
    if dist_info("cpu").is_main:
        print(msg, flush=True)


def _cmd_train(a) -> int:
    device = a.device
    schedule = a.schedule or ("full" if (device or try_gpu()).type == "cuda" else "cpu")
    cfg = make_config(schedule, epochs=a.epochs, batch_size=a.batch_size, num_train=None, num_val=None,
                      lr=a.lr, optimizer=a.optimizer, size=a.size, bn=a.bn, loss_normalize=a.loss_normalize,
                      augment=a.augment, pretrained=a.pretrained, seed=a.seed, source=a.source,
                      data=str(a.data) if a.data else None, workers=a.workers, val_split=a.val_split)
    cfg["num_train"] = a.num_train or SCHEDULES[schedule]["num_train"]
    cfg["num_val"] = a.num_val or SCHEDULES[schedule]["num_val"]
    if a.resume and a.checkpoint is None:
        raise ValueError("--resume needs --checkpoint")
    _say(f"schedule: {schedule} ({cfg['epochs']} epochs, batch {cfg['batch_size']} per process, lr {cfg['lr']})")
    _, history = train(cfg, checkpoint=a.checkpoint, resume=a.resume, device=device, progress=a.progress)
    if len(history):
        r = history.last
        _say(f"done: {len(history)} epochs, last train loss {r['train_loss']:.4g}, "
             f"val AP50 {r.get('val_AP50', math.nan):.4f}, AP {r.get('val_AP', math.nan):.4f}, "
             f"{r['throughput']:.2f} img/s")
    return 0


def _cmd_evaluate(a) -> int:
    net, cfg = load_model(a.checkpoint, a.device)
    cfg.update(source=a.source, data=str(a.data) if a.data else cfg["data"], workers=a.workers)
    if a.val_split:
        cfg["val_split"] = a.val_split
    if a.batch_size:
        cfg["batch_size"] = a.batch_size
    cfg["num_val"] = a.num_val  # the whole held-out split unless asked (training may have used fewer)
    _, val_iter, src = make_loaders(cfg)
    print(f"device: {next(net.parameters()).device}", flush=True)
    res = evaluate(net, cfg, val_iter)
    print(f"{res['num_images']} validation images, {res['num_targets']} pedestrians: "
          f"AP50 {res['AP50']:.4f}, AP75 {res['AP75']:.4f}, COCO AP@[.5:.95] {res['AP']:.4f}", flush=True)
    if a.json is not None:
        data = {k: res[k] for k in ("AP50", "AP75", "AP", "num_images", "num_targets", "num_detections")}
        data.update(recall=res["recall"].tolist(), pr_curve=res["pr_curve"].tolist(), data=src.kind,
                    checkpoint=str(a.checkpoint))
        text = json.dumps(data, indent=1, allow_nan=True).encode()
        atomic_write(a.json, lambda f: f.write(text))
        print(f"wrote {a.json}", flush=True)
    return 0


def _cmd_predict(a) -> int:
    for p in a.images:
        if not p.is_file():
            raise FileNotFoundError(f"no image file at {p}")
    over = {k: v for k, v in dict(score_threshold=a.score_threshold, nms_threshold=a.nms_threshold,
                                  top_k=a.top_k).items() if v is not None}
    net, cfg = load_model(a.checkpoint, a.device, **over)
    print(f"device: {next(net.parameters()).device}; data: none (image files)", flush=True)
    dets = detect(net, a.images, cfg)
    records = []
    for path, d in zip(a.images, dets):
        out = draw_detections(path, d, a.out / f"{path.stem}.boxes.png")
        w, h = as_uint8_image(path).shape[-1:-3:-1]
        records.append({"image": str(path), "output": str(out), "width": int(w), "height": int(h),
                        "detections": [{"class": "pedestrian", "score": round(r[1], 5),
                                        "box_pixels": [round(x, 2) for x in r[2:]]} for r in d.tolist()]})
        print(f"{path}: {len(d)} pedestrian(s) -> {out}", flush=True)
    text = json.dumps({"format": "boxes are (xmin, ymin, xmax, ymax) in pixels of the original image",
                       "checkpoint": str(a.checkpoint), "images": records}, indent=1).encode()
    atomic_write(a.out / "detections.json", lambda f: f.write(text))
    print(f"wrote {a.out / 'detections.json'}", flush=True)
    return 0


def main(argv=None) -> int:
    """Entry point of ``python -m d2lssd.pennfudan`` and the ``d2lssd-pennfudan`` console script.

    Returns the exit code (0 on success, 1 for a failure such as a missing
    file or a bad value, 2 for bad arguments, with one line on stderr).
    """
    parser = build_parser()
    a = parser.parse_args(argv)
    command = {"train": _cmd_train, "evaluate": _cmd_evaluate, "predict": _cmd_predict}[a.command]
    return run_reporting(f"{parser.prog} {a.command}", command, a)


if __name__ == "__main__":
    sys.exit(main())
