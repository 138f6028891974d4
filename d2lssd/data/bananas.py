"""The banana detection data set of d2l.ai, real or generated offline.

The real data (d2l.ai §14.6 "The Object Detection Dataset") is a zip with this
layout, one banana per image::

    banana-detection/
        bananas_train/  images/0.png ... images/999.png   label.csv
        bananas_val/    images/0.png ... images/99.png    label.csv

Each image is a 256x256 RGB PNG; ``label.csv`` has the header
``img_name,label,xmin,ymin,xmax,ymax``, one row per image, label 0 (banana)
and the box in pixels.

Where the real data cannot be downloaded (no network, a firewall, a CI
machine), :func:`generate_bananas` writes the same layout offline: one fixed
shaded, curved banana at a random size, rotation, position and lighting,
alpha-composited onto a random crop of a photo or texture that ships
with scikit-image. The readers below cannot tell the two apart; only the
marker file ``GENERATED.txt`` in a generated folder, and the one line that
:func:`load_data_bananas` prints, say which data is in use.

Source: d2l.ai §14.6 (``read_data_bananas``, ``BananasDataset``,
``load_data_bananas``: same names and return values).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import torch
import torch.utils.data

from . import download as _download
from .common import (BACKGROUNDS, DataSource, backgrounds, cached_generated, check_generator_args, obtain,
                     random_crop, shown, write_generated)

__all__ = [
    "obtain_bananas",
    "CSV_HEADER",
    "GENERATOR_VERSION",
    "DataSource",
    "generate_bananas",
    "read_data_bananas",
    "BananasDataset",
    "load_data_bananas",
]

#: The header of every ``label.csv``, real or generated.
CSV_HEADER = ("img_name", "label", "xmin", "ymin", "xmax", "ymax")

#: Bumped whenever :func:`generate_bananas` changes its output; recorded in
#: ``GENERATED.txt`` so that a cached generated set is regenerated.
GENERATOR_VERSION = 4

# The one banana of the generated set (generator version 4). d2l's real data
# photographs a single toy banana and varies only its position, size and
# rotation; so does the generator: the shape, ripeness and spots below are
# fixed, while size, rotation, mirroring, position, light direction and
# brightness, and the background are drawn per image.
_LENGTH = (0.2, 0.32)  # length along the centre line, fraction of the image side
_THICKNESS = 0.33  # thickest width / length
_ARC = 2.2  # angle spanned by the centre line (radians): a compact crescent
_STALK = 0.06  # stalk length, fraction of the arc
_STALK_WIDTH = 0.15  # stalk width / thickness
_RIPENESS = 0.75  # 0 green-yellow .. 1 deep yellow
_RIDGE = 0.2  # where the darker ridge runs across the fruit (-1 .. 1)
_NUM_SPOTS, _SPOTS_SEED = 3, 7

_SPLITS = ("bananas_train", "bananas_val")


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random crop of a random background, resized to (size, size, 3) float32 in [0, 255]."""
    bgs = backgrounds()
    img = bgs[rng.integers(len(bgs))]
    h, w = img.shape[:2]
    m = min(h, w)
    side = int(rng.integers(min(m, max(96, m // 3)), m + 1))
    bg = random_crop(rng, img, side, side, size, size)
    # Lighting jitter of the whole scene: brightness, contrast, colour balance.
    gain = rng.uniform(0.75, 1.2) * rng.uniform(0.9, 1.1, size=3).astype(np.float32)
    mean = bg.mean()
    bg = (bg - mean) * rng.uniform(0.7, 1.15) + mean
    return bg * gain.astype(np.float32)


def _render_banana(rng: np.random.Generator, size: int):
    """Draw one banana: returns (alpha (h, w), rgb (h, w, 3) float32, x0, y0).

    The banana is the region around a circular arc (its centre line) whose
    half-width swells from the stem to the middle and tapers to a blunt tip,
    with a short stalk at the stem end. It is shaded like a cylinder lit from
    one side, with a darker ridge, brown tips and a few brown spots. ``alpha``
    is its anti-aliased coverage, with values below 0.15 set to 0, so every
    pixel with ``alpha > 0`` lies inside the labelled box and no pixel outside
    it is changed. The patch lies at ``(x0, y0)`` entirely inside the image.
    """
    # Shape: length along the centre line, thickness, curvature, orientation.
    for _ in range(20):  # bounded: draw again until the banana fits in the image
        length = size * np.exp(rng.uniform(np.log(_LENGTH[0]), np.log(_LENGTH[1])))
        thick = length * _THICKNESS
        theta = _ARC  # angle spanned by the arc (radians)
        radius = length / theta
        phi_mid = rng.uniform(-np.pi, np.pi)
        stem_len = _STALK  # stalk, as a fraction of the arc
        # Extent of the shape from points along the centre line +- half-width.
        s = np.linspace(-stem_len, 1.0, 64)
        phi = phi_mid + (s - 0.5) * theta
        r_out = radius + thick / 2
        r_in = radius - thick / 2
        xs = np.concatenate([r_out * np.cos(phi), r_in * np.cos(phi)])
        ys = np.concatenate([r_out * np.sin(phi), r_in * np.sin(phi)])
        xmin, xmax = xs.min() - 2, xs.max() + 2
        ymin, ymax = ys.min() - 2, ys.max() + 2
        w, h = int(np.ceil(xmax - xmin)), int(np.ceil(ymax - ymin))
        if w < size - 2 and h < size - 2:
            break
    else:  # pragma: no cover - the size range above always fits
        raise RuntimeError("could not fit a banana into the image")

    # Pixel centres of the patch in the arc's coordinates (centre at origin).
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xx += np.float32(xmin + 0.5)
    yy += np.float32(ymin + 0.5)
    r = np.hypot(xx, yy)
    ang = np.arctan2(yy, xx) - phi_mid
    ang = (ang + np.pi) % (2 * np.pi) - np.pi  # in (-pi, pi], 0 at the middle
    s = ang / theta + 0.5  # 0 at the stem end, 1 at the tip
    flip = rng.random() < 0.5
    if flip:  # stalk at the other end: the mirror image
        s = 1.0 - s
    n = r - radius  # signed distance from the centre line; < 0 on the inner side

    # Half-width profile: plump body, tapering ends, blunt tip, thin stalk.
    t = np.clip(s, 0.0, 1.0)
    body = (thick / 2) * np.power(np.clip(1 - np.abs(2 * t - 1) ** 2.2, 0, 1), 0.45)
    body = np.where((s >= 0) & (s <= 1), body, 0.0)
    stalk_w = thick * _STALK_WIDTH
    stalk = np.where((s < 0.1) & (s >= -stem_len), stalk_w, 0.0)
    tip_w = thick * 0.1
    tip = np.where((s > 0.9) & (s <= 1.02), tip_w, 0.0)
    half = np.maximum(np.maximum(body, stalk), tip)
    # Coverage of a pixel by the band |n| < half, fading out where half -> 0.
    alpha = np.clip(np.minimum(half - np.abs(n) + 0.5, 2 * half), 0.0, 1.0)
    alpha[alpha < 0.15] = 0.0

    # Colour: ripeness from green-yellow to deep yellow, then lighting.
    ripe = _RIPENESS
    base = np.array([160 + 85 * ripe, 200 - 5 * ripe, 55 - 15 * ripe], np.float32)
    base *= rng.uniform(0.95, 1.03, size=3).astype(np.float32)
    u = np.clip(n / np.maximum(half, 1e-3), -1.0, 1.0)  # across the fruit, -1..1
    light = rng.uniform(-0.9, 0.9)
    cyl = np.sqrt(1 - u ** 2)
    shade = 0.55 + 0.45 * np.clip(cyl * np.cos(light) + u * np.sin(light), 0, 1)
    ridge_at = _RIDGE
    shade *= 1 - 0.1 * np.exp(-((u - ridge_at) / 0.09) ** 2)
    shade *= rng.uniform(0.75, 1.15)
    rgb = base * shade[..., None]

    # Stalk: green-brown; blossom tip: dark brown; both blended in smoothly.
    stalk_col = np.array([110, 115, 45], np.float32) * rng.uniform(0.7, 1.1)
    tip_col = np.array([70, 50, 25], np.float32) * rng.uniform(0.7, 1.2)
    w_stalk = np.clip((0.06 - s) / 0.06, 0, 1)[..., None]
    w_tip = np.clip((s - 0.95) / 0.04, 0, 1)[..., None]
    rgb = rgb * (1 - w_stalk) + stalk_col * shade[..., None] * w_stalk
    rgb = rgb * (1 - w_tip) + tip_col * w_tip
    cut = (s < -stem_len + 0.015)[..., None]  # the dark, dry cut end of the stalk
    rgb = np.where(cut, rgb * 0.55, rgb)

    # Brown spots of a ripening banana: small blurred dots on the body.
    yy -= np.float32(ymin + 0.5)  # back to patch pixel coordinates
    xx -= np.float32(xmin + 0.5)
    inside = np.flatnonzero((alpha > 0.9) & (s > 0.08) & (s < 0.92))
    spots = np.random.default_rng(_SPOTS_SEED)  # the same spots on every banana
    for _ in range(_NUM_SPOTS if inside.size else 0):
        k = inside[spots.integers(inside.size)]
        cy, cx = divmod(int(k), w)
        rad = spots.uniform(0.6, 0.6 + thick / 12)
        d2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / rad ** 2
        rgb *= (1 - 0.5 * np.exp(-d2))[..., None]
    rgb += rng.normal(0, 3, size=rgb.shape).astype(np.float32)

    x0 = int(rng.integers(0, size - w + 1))
    y0 = int(rng.integers(0, size - h + 1))
    return alpha.astype(np.float32), rgb.astype(np.float32), x0, y0


def _render_sample(rng: np.random.Generator, size: int = 256):
    """One image with one banana: (uint8 (size, size, 3), alpha (size, size), box).

    ``box`` is ``(xmin, ymin, xmax, ymax)`` in integer pixels, the tight box
    of ``alpha > 0``: columns ``xmin .. xmax - 1`` and rows ``ymin .. ymax - 1``
    hold the banana, so ``0 <= xmin < xmax <= size``.
    """
    bg = _background(rng, size)
    alpha, rgb, x0, y0 = _render_banana(rng, size)
    h, w = alpha.shape
    full_alpha = np.zeros((size, size), np.float32)
    full_alpha[y0:y0 + h, x0:x0 + w] = alpha
    a = alpha[..., None]
    patch = bg[y0:y0 + h, x0:x0 + w]
    bg[y0:y0 + h, x0:x0 + w] = patch * (1 - a) + rgb * a
    img = np.clip(bg + 0.5, 0, 255).astype(np.uint8)
    rows = np.flatnonzero(full_alpha.any(axis=1))
    cols = np.flatnonzero(full_alpha.any(axis=0))
    box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    return img, full_alpha, box


# --- writing the generated data set --------------------------------------------------

def _marker_fields(seed: int, num_train: int, num_val: int, size: int) -> dict[str, str]:
    return {
        "generator": "d2lssd.data.bananas.generate_bananas",
        "generator_version": str(GENERATOR_VERSION),
        "seed": str(seed),
        "num_train": str(num_train),
        "num_val": str(num_val),
        "size": str(size),
    }


def _write_split(folder: Path, split: int, n: int, seed: int, size: int) -> None:
    from PIL import Image

    (folder / "images").mkdir(parents=True)
    rows = []
    for i in range(n):
        # One generator per image: image i is the same whatever num_train/num_val are.
        rng = np.random.default_rng([seed, split, i])
        img, _, box = _render_sample(rng, size)
        name = f"{i}.png"
        Image.fromarray(img).save(folder / "images" / name, format="PNG", compress_level=1)
        rows.append((name, 0, *box))
    with open(folder / "label.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        writer.writerows(rows)


def generate_bananas(root: str | os.PathLike, num_train: int = 1000, num_val: int = 100,
                     seed: int = 0, size: int = 256) -> Path:
    """Write a banana detection data set offline, in the layout of d2l's real one.

    Creates ``root/bananas_train`` (``num_train`` images) and
    ``root/bananas_val`` (``num_val`` images), each with ``images/<i>.png``
    (``size x size`` RGB) and ``label.csv`` (header
    ``img_name,label,xmin,ymin,xmax,ymax``; label 0; the box in integer
    pixels, the tight box of the banana's pixels: columns ``xmin .. xmax-1``,
    rows ``ymin .. ymax-1``), plus ``root/GENERATED.txt`` recording the
    generator version, seed, counts and size, so a run can always say which
    data it used. This is the folder :func:`read_data_bananas` reads (the real
    data's ``banana-detection`` folder).

    Each image is a random crop of a photo or texture shipped with
    scikit-image (lighting and colour jittered, sometimes mirrored) with one
    banana alpha-composited on it. Like the real data, which pastes photos of
    one toy banana at different positions, sizes and rotations, every image
    shows the *same* banana (a compact, curved, tapered, cylinder-shaded
    crescent with a stalk, a brown tip and a few brown spots), drawn at a
    random size (about 20% to 32% of ``size`` along its curve), rotation,
    mirroring, position, light direction and brightness, entirely inside the
    image. Its boxes are as compact as the real ones (about 0.15 to 0.23 of
    the side, nearly square): over 300 boxes (generator version 4) the longer
    side has median 0.23 (10% and 90% quantiles 0.18 and 0.27), the shorter
    side is 0.69 of the longer (median), 98.7% of the boxes have an anchor of
    TinySSD with IoU >= 0.5 (22 positives per image on average, all on the
    32x32 level) and the median best-anchor IoU is 0.75.

    History, with d2l's full schedule (d2l's loss; CPU runs, validation
    AP50): version 1 drew thin, small bananas and left 30% of the boxes
    without an anchor at IoU >= 0.5 (no positives learned in 5 epochs);
    version 2 also varied the banana itself (curvature, thickness, ripeness,
    spots): AP50 0.30 after 6 epochs; version 3 fixed the banana but drew it
    longer and flatter (longer side median 0.26, shorter/longer 0.60): 0.27
    after 3 epochs and 0.63 after 20; version 4: 0.63 after 3 epochs.

    Deterministic: the same arguments give byte-identical files (image ``i``
    of a split depends only on ``seed``, the split and ``i``). Atomic: the
    set is written to a temporary folder next to ``root`` and renamed into
    place, so an interrupted run leaves no half-written ``root``. Cached: if
    ``root`` already holds a set generated with the same arguments and
    generator version, it is returned at once; one generated with other
    arguments is replaced.

    Args:
        root: the folder to create (its parent is created if needed).
        num_train, num_val: number of training / validation images, >= 1.
        seed: non-negative integer seed of the ``numpy`` random generator.
        size: image side in pixels, >= 64 (d2l's data: 256).

    Returns:
        ``Path(root)``.

    Raises:
        ValueError: a count < 1, a negative seed or ``size < 64``.
        FileExistsError: ``root`` exists and is not a generated set (for
            example the real data): it is never overwritten.

    Speed: about 10 ms per image on one core (1000 + 100 images in about
    10 s, 96 MB of PNGs).

    Source: the layout of d2l.ai §14.6's ``banana-detection.zip``; the
    images are our own (the real ones are photos of a toy banana pasted on
    photos of backgrounds).
    """
    check_generator_args(("num_train", num_train, 1), ("num_val", num_val, 1), ("seed", seed, 0),
                         ("size", size, 64))
    root = Path(root)
    fields = _marker_fields(int(seed), int(num_train), int(num_val), int(size))
    if cached_generated(root, fields, "banana"):
        return root

    def fill(tmp: Path) -> None:
        for split, name, n in ((0, _SPLITS[0], num_train), (1, _SPLITS[1], num_val)):
            _write_split(tmp / name, split, int(n), int(seed), int(size))

    return write_generated(root, fields, fill,
                           "generated offline banana data, not the real d2l banana-detection data",
                           f"backgrounds: {', '.join(BACKGROUNDS)} (scikit-image sample images)")


# --- reading (the same code for real and generated data) -------------------------------

def _check_is_train(is_train) -> bool:
    # d2l's order puts is_train first; a folder there is an old-order call or a
    # slip, and bool(path) is True: fail loudly instead of reading the wrong data.
    if isinstance(is_train, (str, bytes, os.PathLike)):
        raise ValueError(f"is_train must be a bool, got the path {is_train!r}: the arguments are "
                         "in d2l's order, (is_train=True, root=None); pass the folder as root=...")
    return bool(is_train)


def _default_source() -> DataSource:
    """The data ``load_data_bananas(batch_size)`` uses with its defaults; prints its line."""
    data_source = obtain_bananas(None, "auto", 0, 1000, 100)
    print(data_source.description, flush=True)
    return data_source


def read_data_bananas(is_train: bool = True, root: str | os.PathLike | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Read one split of the banana detection data set.

    Args:
        is_train: read ``bananas_train`` if true, else ``bananas_val``
            (first, as in d2l: ``read_data_bananas(True)`` is d2l's call).
        root: the data folder holding ``bananas_train/`` and ``bananas_val/``
            (the real data's ``banana-detection`` folder, or the folder written
            by :func:`generate_bananas`). Default ``None``: the data that
            :func:`load_data_bananas` uses with its defaults (the real data
            downloaded to the cache folder, or generated data with seed 0
            where it cannot be downloaded or ``D2LSSD_OFFLINE=1``), obtained
            the same way and announced by the same printed line.

    Returns:
        ``(images, labels)``: ``images`` a uint8 tensor ``(N, 3, H, W)`` (RGB;
        an image with an alpha channel or in grey is converted to RGB), 256 x
        256 for d2l's data; ``labels`` a float32 tensor ``(N, 1, 5)`` of rows
        (class, xmin, ymin, xmax, ymax), corner format, normalized: x divided
        by the image width and y by the height (both 256 for d2l's data, which
        is d2l's ``/ 256``). Images are in the order of the rows of
        ``label.csv``.

    Raises:
        FileNotFoundError: ``label.csv`` or an image it names is missing
            (the message names the file and the row).
        ValueError: ``is_train`` is a path (the old order ``(root,
            is_train)``); ``label.csv`` is malformed: a header other than
            ``img_name,label,xmin,ymin,xmax,ymax``, no rows, a row with the
            wrong number of fields, an image name with a path separator, a
            class that is not an integer >= 0, a coordinate that is not a
            finite number, a box not inside the image or with ``xmax <= xmin``
            or ``ymax <= ymin``, or images of different sizes. The message
            names the file and its line number.

    With ``root=None`` it also raises what :func:`load_data_bananas` raises
    for ``source="auto"``.

    Source: d2l.ai §14.6 ``read_data_bananas`` (same name, argument and
    return values, plus ``root`` and validation; d2l returns the images as a
    list).
    """
    is_train = _check_is_train(is_train)
    if root is None:
        root = _default_source().root
    folder = Path(root) / (_SPLITS[0] if is_train else _SPLITS[1])
    csv_path = folder / "label.csv"
    images, targets, shape = [], [], None
    for line, row in _label_rows(csv_path, root):
        where = f"{csv_path}, line {line}"
        name, cls, (x1, y1, x2, y2) = _parse_row(row, where)
        arr = _read_rgb(folder / "images" / name, where)
        if shape is None:
            shape = arr.shape
        elif arr.shape != shape:
            raise ValueError(f"{where}: image {name} is {arr.shape[1]}x{arr.shape[0]}, the "
                             f"first image is {shape[1]}x{shape[0]}")
        h, w = arr.shape[:2]
        if not (0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h):
            raise ValueError(f"{where}: the box (xmin, ymin, xmax, ymax) = {row[2:]} must lie "
                             f"inside the {w}x{h} image with xmax > xmin and ymax > ymin")
        images.append(torch.from_numpy(arr.copy()).permute(2, 0, 1))
        targets.append((cls, x1 / w, y1 / h, x2 / w, y2 / h))
    if not images:
        raise ValueError(f"{csv_path}: no rows after the header")
    return torch.stack(images), torch.tensor(targets, dtype=torch.float32).unsqueeze(1)


def _label_rows(csv_path: Path, root) -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` of the non-empty rows after ``label.csv``'s header, which is checked."""
    if not csv_path.is_file():
        raise FileNotFoundError(f"{csv_path} not found: {root} is not a banana data folder "
                                f"(expected bananas_train/ and bananas_val/ in it)")
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header = tuple(c.strip() for c in rows[0]) if rows else ()
    if header != CSV_HEADER:
        raise ValueError(f"{csv_path}, line 1: the header must be {','.join(CSV_HEADER)}, "
                         f"got {','.join(header) or 'an empty file'}")
    return [(line, row) for line, row in enumerate(rows[1:], start=2) if row]


def _parse_row(row: list[str], where: str) -> tuple[str, int, tuple[float, float, float, float]]:
    """``(image name, class, pixel box)`` of one ``label.csv`` row; ValueError naming ``where``."""
    if len(row) != len(CSV_HEADER):
        raise ValueError(f"{where}: expected {len(CSV_HEADER)} fields, got {len(row)}: {row}")
    name = row[0].strip()
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError(f"{where}: bad image name {row[0]!r}")
    try:
        cls = int(row[1])
    except ValueError:
        raise ValueError(f"{where}: the label must be an integer, got {row[1]!r}") from None
    if cls < 0:
        raise ValueError(f"{where}: the label must be >= 0, got {cls}")
    try:
        x1, y1, x2, y2 = (float(v) for v in row[2:])
    except ValueError:
        raise ValueError(f"{where}: box coordinates must be numbers, got {row[2:]}") from None
    if not all(np.isfinite((x1, y1, x2, y2))):
        raise ValueError(f"{where}: box coordinates must be finite, got {row[2:]}")
    return name, cls, (x1, y1, x2, y2)


def _read_rgb(img_path: Path, where: str) -> np.ndarray:
    """The image as a uint8 RGB array ``(H, W, 3)``; FileNotFoundError naming ``where`` if it is missing."""
    from PIL import Image

    try:
        with Image.open(img_path) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{where}: image {img_path} not found") from None


class BananasDataset(torch.utils.data.Dataset):
    """The banana detection data set, one split, held in memory.

    ``dataset[i]`` is ``(image, label)``: ``image`` a float32 tensor
    ``(3, 256, 256)`` with values in [0, 255] (d2l's convention: not divided
    by 255, no mean subtraction), ``label`` a float32 tensor ``(1, 5)`` of
    (class, xmin, ymin, xmax, ymax) normalized to [0, 1].

    Args:
        is_train: the training split if true, else the validation split
            (first, as in d2l: ``BananasDataset(is_train=True)``).
        root: the data folder (see :func:`read_data_bananas`); default
            ``None``: the data :func:`load_data_bananas` uses with its
            defaults, obtained and announced the same way.

    Attributes:
        root: the data folder read; is_train: the split;
        features: uint8 tensor ``(N, 3, H, W)``; labels: float32 ``(N, 1, 5)``;
        data_source: a :class:`DataSource` when made by
        :func:`load_data_bananas` or with ``root=None``, else ``None``.

    Raises:
        What :func:`read_data_bananas` raises.

    Source: d2l.ai §14.6 ``BananasDataset`` (same first argument, plus
    ``root``; without d2l's "read N training examples" print).
    """

    def __init__(self, is_train: bool = True, root: str | os.PathLike | None = None):
        is_train = _check_is_train(is_train)
        data_source = _default_source() if root is None else None
        self.root = Path(root) if root is not None else Path(data_source.root)
        self.is_train = is_train
        self.features, self.labels = read_data_bananas(is_train, self.root)
        self.data_source = data_source

    def __getitem__(self, idx):
        return self.features[idx].float(), self.labels[idx]

    def __len__(self) -> int:
        return len(self.features)


def _generated(base: Path, seed: int, num_train: int, num_val: int, why: str) -> DataSource:
    root = generate_bananas(base / f"banana-detection-generated-seed{seed}",
                            num_train, num_val, seed)
    return DataSource("generated", root,
                      f"generated offline banana data (seed {seed}) at {shown(root)} — {why}")


def obtain_bananas(root: str | os.PathLike | None = None, source: str = "auto", seed: int = 0,
                   num_train: int = 1000, num_val: int = 100) -> DataSource:
    """Find, download or generate the banana data; say which (does not print, reads no image).

    Args: as :func:`load_data_bananas` (``num_train`` / ``num_val``: the
    size of generated data). Returns the :class:`DataSource` ``(kind, root,
    description)``. Raises: what :func:`load_data_bananas` raises.
    """
    base = Path(root) if root is not None else _download.cache_dir()

    def real() -> DataSource:
        url = _download.DATA_HUB["banana-detection"][0]
        data_dir = _download.download_extract("banana-detection", cache_dir=base)
        return DataSource("real", data_dir, f"real d2l banana data from {shown(data_dir)} "
                                            f"(downloaded from {url}, SHA-1 verified)")

    return obtain(source, real, lambda why: _generated(base, seed, num_train, num_val, why))


def load_data_bananas(batch_size: int, root: str | os.PathLike | None = None,
                      source: str = "auto", num_workers: int = 0, seed: int = 0, *,
                      num_train: int = 1000, num_val: int = 100):
    """Data loaders for the banana detection data set, real or generated.

    Prints one line saying which data is used, e.g. ``real d2l banana data
    from ~/.cache/d2lssd/banana-detection ...`` or ``generated offline banana
    data (seed 0) at ... — the real data could not be downloaded: <reason>``.

    Args:
        batch_size: examples per batch.
        root: folder for the download and the data; default
            :func:`d2lssd.data.download.cache_dir` (``$D2LSSD_DATA`` or
            ``~/.cache/d2lssd``). The real data goes to
            ``root/banana-detection``, generated data to
            ``root/banana-detection-generated-seed<seed>`` (generated once,
            then reused).
        source: ``"auto"``: download the real data (unless the environment
            variable ``D2LSSD_OFFLINE=1`` is set) and fall back to generated
            data if that fails; ``"real"``: the real data or an error;
            ``"generated"``: generated data, no network.
        num_workers: worker processes of each ``DataLoader``.
        seed: seeds the training loader's shuffling (a ``torch.Generator``),
            and the generated data.
        num_train, num_val: size of generated data (ignored for real data,
            which has 1000 and 100 images).

    Returns:
        ``(train_iter, val_iter)``: ``torch.utils.data.DataLoader`` s over
        :class:`BananasDataset`, the first shuffled (a new order every epoch,
        reproducible from ``seed``), the second not. Batches are ``(images
        float32 (B, 3, 256, 256) in [0, 255], labels float32 (B, 1, 5))``.
        Both loaders and their datasets have a ``data_source`` attribute, a
        :class:`DataSource` ``(kind, root, description)``.

    Raises:
        ValueError: an unknown ``source``; what :func:`read_data_bananas`
            raises.
        RuntimeError: ``source="real"`` with ``D2LSSD_OFFLINE=1``.
        DownloadError, OSError, zipfile.BadZipFile: ``source="real"`` and
            the download or extraction failed.

    Source: d2l.ai §14.6 ``load_data_bananas`` (same name and return value).
    """
    data_source = obtain_bananas(root, source, seed, num_train, num_val)
    print(data_source.description, flush=True)
    train = BananasDataset(is_train=True, root=data_source.root)
    val = BananasDataset(is_train=False, root=data_source.root)
    g = torch.Generator()
    g.manual_seed(seed)
    train_iter = torch.utils.data.DataLoader(train, batch_size, shuffle=True,
                                             num_workers=num_workers, generator=g)
    val_iter = torch.utils.data.DataLoader(val, batch_size, shuffle=False,
                                           num_workers=num_workers)
    for obj in (train, val, train_iter, val_iter):
        obj.data_source = data_source
    return train_iter, val_iter
