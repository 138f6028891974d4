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
post-processing).

For large photos of small objects, ``--tile PIXELS`` detects on overlapping
tiles of that size (``--tile-overlap R``, default 0.2) and on the whole
photo resized (unless ``--no-full-image``), merged by class-wise NMS:
:func:`d2lssd.tiling.tiled_detect` (SAHI, Akyon et al. 2022). Source: ours.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .._io import atomic_write
from ..argtypes import positive_int, unit_float
from ..detector import load_detector
from ..photos import as_uint8_image, draw_detections
from ..tiling import tiled_detect

__all__ = ["add_arguments", "add_tile_arguments", "tile_options", "describe_tiling", "run"]

#: ``--tile-overlap``'s default: SAHI's.
TILE_OVERLAP = 0.2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``d2lssd predict``."""
    parser.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    parser.add_argument("--checkpoint", required=True, help="a checkpoint of any d2lssd trainer")
    parser.add_argument("--out", required=True, help="folder for the drawn images and detections.json")
    parser.add_argument("--score-threshold", type=unit_float, help="keep detections above this score "
                        "(default the detector's, 0.5)")
    parser.add_argument("--device", help="cpu, cuda, ... (default: a GPU if there is one)")
    add_tile_arguments(parser)


def _overlap(text: str) -> float:
    """argparse ``type=``: a number in [0, 1), else ``ArgumentTypeError``."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {v}")
    return v


def add_tile_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tile PIXELS``, ``--tile-overlap R``, ``--no-full-image``: tiled inference (``predict`` and ``evaluate``)."""
    parser.add_argument("--tile", type=positive_int, metavar="PIXELS",
                        help="detect on overlapping PIXELS x PIXELS tiles of each photo, each resized to the "
                        "detector's input size, and merge (SAHI): finds objects too small to see on the whole "
                        "photo resized")
    parser.add_argument("--tile-overlap", type=_overlap, metavar="R",
                        help=f"with --tile: the fraction of a tile its neighbour shares, in [0, 1) (default "
                        f"{TILE_OVERLAP}); at least object size / tile size keeps every object whole in some tile")
    parser.add_argument("--no-full-image", action="store_true",
                        help="with --tile: detect on the tiles only, not also on the whole photo resized "
                        "(which finds the objects larger than a tile)")


def tile_options(args) -> dict | None:
    """:func:`d2lssd.tiling.tiled_detect`'s ``tile``, ``overlap`` and ``full_image`` from the options, or
    ``None`` without ``--tile``.

    Raises:
        ValueError: ``--tile-overlap`` or ``--no-full-image`` without ``--tile``.
    """
    if args.tile is None:
        if args.tile_overlap is not None or args.no_full_image:
            raise ValueError("--tile-overlap and --no-full-image need --tile PIXELS")
        return None
    return {"tile": args.tile, "overlap": TILE_OVERLAP if args.tile_overlap is None else args.tile_overlap,
            "full_image": not args.no_full_image}


def describe_tiling(tiling: dict) -> str:
    """One line saying how tiled inference runs (printed by the commands)."""
    return (f"tiled inference: {tiling['tile']}x{tiling['tile']}-pixel tiles, overlap {tiling['overlap']:g}"
            f"{', plus the whole image resized' if tiling['full_image'] else ', tiles only'}")


def _write_json(path: Path, obj) -> None:
    text = json.dumps(obj, indent=1).encode()
    atomic_write(path, lambda f: f.write(text))


def run(args) -> int:
    """Detect, draw, write (see the module docstring); returns 0.

    Raises:
        FileNotFoundError: a photo or the checkpoint missing. ValueError: a
        file that is no image, a bad checkpoint, ``--tile-overlap`` or
        ``--no-full-image`` without ``--tile``, a photo cut into more than
        :data:`d2lssd.tiling.MAX_TILES` tiles.
    """
    tiling = tile_options(args)
    detector = load_detector(args.checkpoint, args.device)
    if tiling is not None:
        print(describe_tiling(tiling), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ids = [c if c is not None else k + 1
           for k, c in enumerate(detector.category_ids or [None] * detector.num_classes)]
    results, names = [], {}
    for i, path in enumerate(args.images, start=1):
        if not Path(path).is_file():
            raise FileNotFoundError(f"no image {path}")
        image = as_uint8_image(path)
        if tiling is None:
            pixels = detector.detect(image, score_threshold=args.score_threshold)
        else:
            pixels = tiled_detect(detector, image, **tiling, score_threshold=args.score_threshold)
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
