"""The offline Penn-Fudan look-alike: upright walking figures on scikit-image photos.

:func:`generate_pennfudan` writes the real data's layout (``PNGImages/``,
``PedMasks/``, ``Annotation/``) with instance masks and annotation files in
the real format, for runs that cannot download the real data (its readme
forbids redistribution). It is re-exported by :mod:`d2lssd.data.pennfudan`,
``d2lssd.data`` and ``d2lssd``.

Source: ours (the figures, the placement); the layout and sizes of the real
data (see :mod:`d2lssd.data.pennfudan`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from .common import backgrounds, cached_generated, check_generator_args, random_crop, write_generated
from .pennfudan_format import NUM_REAL_IMAGES, format_annotation

__all__ = ["PENNFUDAN_GENERATOR_VERSION", "generate_pennfudan"]

#: Bumped whenever :func:`generate_pennfudan` changes its output.
PENNFUDAN_GENERATOR_VERSION = 1

# Sizes of the generated data, after the real data (issue 10 and the database's
# readme): images about 300 to 600 px per side, pedestrians 180 to 390 px tall,
# box width / height of an upright walker about 0.25 to 0.55.
_IMAGE_W = (330, 600)
_IMAGE_H = (300, 560)
_PED_HEIGHT = (180, 390)
_NUM_PEDS = ((1, 2, 3, 4, 5), (0.42, 0.33, 0.15, 0.07, 0.03))  # about 2 per image, as the real 345/170
_MIN_VISIBLE = 0.45  # a figure keeps at least this share of its pixels (occlusion and border)
_PLACE_TRIES = 25  # bounded: attempts to place each extra figure

_SKIN = np.array([[236, 200, 170], [210, 160, 120], [160, 110, 75], [110, 75, 50]], np.float32)
_HAIR = np.array([[30, 25, 20], [70, 45, 25], [120, 90, 50], [150, 150, 150]], np.float32)


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A random crop of a scikit-image photo resized to (height, width, 3), float32 in [0, 255]."""
    bgs = backgrounds()
    img = bgs[rng.integers(len(bgs))]
    h, w = img.shape[:2]
    aspect = width / height
    ch = int(rng.integers(max(32, h // 3), h + 1))
    cw = min(w, max(32, int(round(ch * aspect))))
    ch = min(h, max(32, int(round(cw / aspect))))
    bg = random_crop(rng, img, ch, cw, width, height)
    gain = rng.uniform(0.7, 1.15) * rng.uniform(0.9, 1.1, size=3)
    return bg * gain.astype(np.float32)


def _figure_shapes(rng: np.random.Generator, height: float):
    """The parts of one walker, relative to its top-centre, in pixels.

    Returns ``(parts, half_width)``: ``parts`` a list of ``(kind, colour_key,
    geometry)`` drawn in order, ``half_width`` a bound on how far the figure
    reaches left or right of its centre line.
    """
    h = height
    shoulder = h * rng.uniform(0.11, 0.15)  # half shoulder width
    hip = shoulder * rng.uniform(0.7, 0.9)
    stride = h * rng.uniform(0.0, 0.16)  # half distance between the feet
    swing = h * rng.uniform(-0.08, 0.08)  # arms forward/back
    leg_w = h * rng.uniform(0.075, 0.095)
    arm_w = h * rng.uniform(0.05, 0.065)
    head_rx, head_ry = h * rng.uniform(0.05, 0.06), h * 0.066
    top_y = 0.0
    neck_y = top_y + 2 * head_ry
    hip_y = h * rng.uniform(0.47, 0.52)
    parts = [
        # legs (trousers), then shoes at the feet
        ("line", "legs", ((-hip / 2, hip_y), (-stride, h - 0.03 * h), leg_w)),
        ("line", "legs", ((hip / 2, hip_y), (stride, h - 0.03 * h), leg_w)),
        ("ellipse", "shoes", (-stride, h - 0.02 * h, leg_w * 0.75, 0.02 * h)),
        ("ellipse", "shoes", (stride, h - 0.02 * h, leg_w * 0.75, 0.02 * h)),
        # torso: shoulders to hips
        ("polygon", "shirt", ((-shoulder, neck_y + 0.02 * h), (shoulder, neck_y + 0.02 * h),
                              (hip, hip_y + 0.04 * h), (-hip, hip_y + 0.04 * h))),
        # arms: shoulder to hand
        ("line", "shirt", ((-shoulder + arm_w / 2, neck_y + 0.04 * h),
                           (-shoulder - 0.02 * h + swing, hip_y + 0.02 * h), arm_w)),
        ("line", "shirt", ((shoulder - arm_w / 2, neck_y + 0.04 * h),
                           (shoulder + 0.02 * h - swing, hip_y + 0.02 * h), arm_w)),
        ("line", "skin", ((0, neck_y - 0.01 * h), (0, neck_y + 0.03 * h), head_rx)),  # neck
        ("ellipse", "skin", (0, top_y + head_ry, head_rx, head_ry)),  # head
        ("ellipse", "hair", (0, top_y + head_ry * 0.6, head_rx * 1.02, head_ry * 0.62)),
    ]
    if rng.random() < 0.3:  # a coat or skirt widening towards the knees
        parts.insert(4, ("polygon", "shirt", ((-hip, hip_y - 0.02 * h), (hip, hip_y - 0.02 * h),
                                              (hip * 1.5, h * 0.72), (-hip * 1.5, h * 0.72))))
    half_width = max(shoulder + 0.02 * h + abs(swing) + arm_w, stride + leg_w, hip * 1.5) + 2
    return parts, half_width


def _draw_figure(rng: np.random.Generator, height: float):
    """Rasterize one walker on its own canvas.

    Returns ``(mask bool (h, w), colour float32 (h, w, 3), cx, top)``: the
    whole figure, uncut; ``(cx, top)`` is the top-centre of the figure in the
    canvas. The colour is valid where the mask is set.
    """
    from PIL import Image, ImageDraw

    parts, half_width = _figure_shapes(rng, height)
    palette = {
        "skin": _SKIN[rng.integers(len(_SKIN))] * rng.uniform(0.9, 1.05),
        "hair": _HAIR[rng.integers(len(_HAIR))] * rng.uniform(0.8, 1.2),
        "shirt": rng.uniform(20, 235, size=3),
        "legs": rng.uniform(15, 140, size=3) if rng.random() < 0.8 else rng.uniform(20, 235, size=3),
        "shoes": rng.uniform(10, 60, size=3),
    }
    pad = 4
    w = int(math.ceil(2 * half_width)) + 2 * pad
    h = int(math.ceil(height)) + 2 * pad
    cx, top = w / 2, float(pad)
    mask_img = Image.new("L", (w, h), 0)
    col_img = Image.new("RGB", (w, h), (0, 0, 0))
    dm, dc = ImageDraw.Draw(mask_img), ImageDraw.Draw(col_img)

    def xy(p):
        return (cx + p[0], top + p[1])

    for kind, key, geo in parts:
        c = tuple(int(v) for v in np.clip(palette[key], 0, 255))
        if kind == "line":
            a, b, lw = geo
            pts = [xy(a), xy(b)]
            dm.line(pts, fill=255, width=max(1, int(round(lw))))
            dc.line(pts, fill=c, width=max(1, int(round(lw))))
            for p in pts:  # round joints
                r = lw / 2
                box = (p[0] - r, p[1] - r, p[0] + r, p[1] + r)
                dm.ellipse(box, fill=255)
                dc.ellipse(box, fill=c)
        elif kind == "ellipse":
            x, y, rx, ry = geo
            box = (cx + x - rx, top + y - ry, cx + x + rx, top + y + ry)
            dm.ellipse(box, fill=255)
            dc.ellipse(box, fill=c)
        else:
            pts = [xy(p) for p in geo]
            dm.polygon(pts, fill=255)
            dc.polygon(pts, fill=c)
    mask = np.asarray(mask_img) > 0
    colour = np.array(col_img, dtype=np.float32)
    # Shading: darker towards the feet, lit from one side, plus cloth noise.
    ys = (np.arange(h, dtype=np.float32) - top) / height
    xs = (np.arange(w, dtype=np.float32) - cx) / height
    side = float(rng.choice([-1.0, 1.0]))
    shade = (1.05 - 0.25 * np.clip(ys, 0, 1)[:, None]
             + np.float32(0.6 * side) * np.clip(xs, -0.2, 0.2)[None, :])
    colour *= shade[..., None]
    colour += 4 * rng.standard_normal(size=colour.shape, dtype=np.float32)
    return mask, colour, cx, top


def _paste(mask: np.ndarray, x0: int, y0: int, width: int, height: int):
    """Slices placing a patch with top-left ``(x0, y0)`` on a (height, width) canvas, clipped.

    Returns ``(canvas_slices, patch_slices)`` or ``None`` if nothing overlaps.
    """
    h, w = mask.shape
    cx0, cy0 = max(0, x0), max(0, y0)
    cx1, cy1 = min(width, x0 + w), min(height, y0 + h)
    if cx1 <= cx0 or cy1 <= cy0:
        return None
    return ((slice(cy0, cy1), slice(cx0, cx1)),
            (slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0)))


def _render_image(rng: np.random.Generator):
    """One generated image: ``(uint8 (H, W, 3), ids uint8 (H, W), boxes list)``.

    ``ids`` is 0 for background and ``k`` for pedestrian ``k`` (1-based,
    numbered left to right by box); ``boxes[k - 1]`` is the tight
    half-open pixel box ``(xmin, ymin, xmax, ymax)`` of ``ids == k``.
    """
    width = int(rng.integers(_IMAGE_W[0], _IMAGE_W[1] + 1))
    height = int(rng.integers(_IMAGE_H[0], _IMAGE_H[1] + 1))
    n = int(rng.choice(_NUM_PEDS[0], p=_NUM_PEDS[1]))
    figures = []
    for i in range(n):
        h = float(rng.uniform(*_PED_HEIGHT))
        mask, colour, fcx, ftop = _draw_figure(rng, h)
        # Where its feet stand (may be below the border) and its centre line.
        feet = float(rng.uniform(min(h, height) * 0.92, height))
        if rng.random() < 0.15:  # cut by the bottom border
            feet = float(rng.uniform(height, height + 0.15 * h))
        if rng.random() < 0.2:  # centred near the left or right border: cut by it
            cx = float((rng.uniform(-0.1, 0.12) if rng.random() < 0.5 else rng.uniform(0.88, 1.1)) * width)
        else:
            cx = float(rng.uniform(0.08, 0.92) * width)
        figures.append((feet, cx, h, mask, colour, fcx, ftop))
    # Back to front (feet highest in the image first): nearer pedestrians hide farther ones.
    figures.sort(key=lambda f: f[0])
    img = _background(rng, width, height)
    owner = np.zeros((height, width), np.uint8)  # 1 + index of the figure seen at a pixel
    areas, shown, where = [], [], []  # full and visible pixel area, canvas slices of each figure
    for feet, cx, h, mask, colour, fcx, ftop in figures:
        full_area = int(mask.sum())
        for attempt in range(_PLACE_TRIES):  # bounded
            x0, y0 = int(round(cx - fcx)), int(round(feet - h - ftop))
            sl = _paste(mask, x0, y0, width, height)
            ok = False
            if sl is not None:
                canvas, patch = sl
                m = mask[patch]
                # Pixels of earlier figures this one would hide.
                lost = np.bincount(owner[canvas][m], minlength=len(areas) + 1)[1:]
                ok = m.sum() >= _MIN_VISIBLE * full_area and all(
                    s - l >= _MIN_VISIBLE * a for s, l, a in zip(shown, lost, areas))
            if ok:
                break
            # Another place, fully inside the frame horizontally and standing in it.
            cx = float(rng.uniform(0.1, 0.9) * width)
            feet = float(rng.uniform(min(h, height) * 0.92, height))
        else:
            continue  # an extra figure that does not fit: left out (the first always fits)
        shown = [s - l for s, l in zip(shown, lost)] + [int(m.sum())]
        owner[canvas][m] = len(areas) + 1
        img[canvas][m] = colour[patch][m]
        areas.append(full_area)
        where.append(canvas)
    if not areas:  # pragma: no cover - the first figure always fits on its second try
        raise RuntimeError("could not place any pedestrian")
    img = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    boxes = []
    for j, (ys, xs) in enumerate(where):  # a figure's visible pixels lie in its canvas slice
        m = owner[ys, xs] == j + 1
        rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
        boxes.append((xs.start + int(cols[0]), ys.start + int(rows[0]),
                      xs.start + int(cols[-1]) + 1, ys.start + int(rows[-1]) + 1))
    ranked = sorted(range(len(boxes)), key=lambda k: (boxes[k][0], boxes[k][1]))
    lut = np.zeros(256, np.uint8)
    for new_id, k in enumerate(ranked, start=1):
        lut[k + 1] = new_id
    return img, lut[owner], [boxes[k] for k in ranked]


def _marker_fields(num_images: int, seed: int) -> dict[str, str]:
    return {
        "generator": "d2lssd.data.pennfudan.generate_pennfudan",
        "generator_version": str(PENNFUDAN_GENERATOR_VERSION),
        "seed": str(seed),
        "num_images": str(num_images),
    }


def _image_name(i: int) -> str:
    """Names like the real ones: the first 96 ``PennPed000NN``, the rest ``FudanPed000NN``."""
    return f"PennPed{i + 1:05d}" if i < 96 else f"FudanPed{i - 95:05d}"


def generate_pennfudan(root: str | os.PathLike, num_images: int = NUM_REAL_IMAGES, seed: int = 0) -> Path:
    """Write a Penn-Fudan look-alike offline, in the real data's layout.

    Creates ``root/PNGImages/<name>.png`` (RGB), ``root/PedMasks/<name>_mask.png``
    (palette PNG of instance ids: 0 background, ``k`` pedestrian ``k``) and
    ``root/Annotation/<name>.txt`` (the real format, see
    :func:`parse_annotation`), names ``PennPed00001 ...`` then
    ``FudanPed00001 ...`` as in the real data, plus ``root/GENERATED.txt``
    recording the generator version, seed and count. ``root`` plays the part
    of the real ``PennFudanPed`` folder.

    Each image (width 330 to 600 px, height 300 to 560 px) is a crop of a
    photo shipped with scikit-image with 1 to 5 upright walking figures
    (about 2 per image on average, like the real 345 / 170): head, hair,
    torso, swinging arms and striding legs in random clothes, 180 to 390 px
    tall (cut off where the image ends), box width / height about 0.25 to
    0.55. Figures are drawn back to front (by the height of their feet), so
    nearer ones hide farther ones; each keeps at least 45% of its pixels, and
    some are cut by the left, right or bottom border. An extra figure that
    cannot be placed in 25 tries is left out (bounded; every image has at
    least one). Masks are the visible pixels; the annotation box of
    pedestrian ``k`` is the tight box of mask ``k``.

    Deterministic: the same ``(seed, i)`` gives byte-identical files for
    image ``i``, whatever ``num_images`` is. Atomic and cached like
    :func:`d2lssd.data.generate_bananas`: written to a temporary folder and
    renamed into place; an existing set with the same arguments and generator
    version is returned at once, an outdated generated set is replaced, and
    a folder without ``GENERATED.txt`` (the real data) is never touched.

    Args:
        root: the folder to create (its parent is created if needed).
        num_images: number of images, >= 1 (the real data: 170).
        seed: non-negative integer seed.

    Returns:
        ``Path(root)``.

    Raises:
        ValueError: ``num_images < 1`` or a negative ``seed``.
        FileExistsError: ``root`` exists and is not a generated set.

    Speed: about 35 ms per image on one core, half of it PNG encoding (170
    images in about 6 s, 45 MB).
    """
    check_generator_args(("num_images", num_images, 1), ("seed", seed, 0))
    root = Path(root)
    fields = _marker_fields(int(num_images), int(seed))
    if cached_generated(root, fields, "Penn-Fudan"):
        return root

    def fill(tmp: Path) -> None:
        for sub in ("PNGImages", "PedMasks", "Annotation"):
            (tmp / sub).mkdir()
        for i in range(int(num_images)):
            _write_image(tmp, _image_name(i), *_render_image(np.random.default_rng([int(seed), i])))

    return write_generated(root, fields, fill,
                           "generated offline Penn-Fudan look-alike data, not the real PennFudanPed data",
                           "backgrounds: scikit-image sample images")


# Colours of the instance ids in the mask PNGs (id 0 black); only for viewing, the ids are the data.
_PALETTE = [0, 0, 0] + [int(c) for k in range(1, 256)
                        for c in ((k * 67) % 256, (k * 151) % 256, (k * 199) % 256)]


def _write_image(folder: Path, name: str, img: np.ndarray, ids: np.ndarray, boxes) -> None:
    """One generated example: the RGB PNG, the palette PNG of instance ids and the annotation file."""
    from PIL import Image

    Image.fromarray(img).save(folder / "PNGImages" / f"{name}.png", compress_level=1)
    h, w = ids.shape
    mask = Image.frombytes("P", (w, h), np.ascontiguousarray(ids).tobytes())
    mask.putpalette(_PALETTE)
    mask.save(folder / "PedMasks" / f"{name}_mask.png", compress_level=1)
    (folder / "Annotation" / f"{name}.txt").write_text(format_annotation(name, w, h, boxes), encoding="utf-8")
