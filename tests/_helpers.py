"""Helpers shared by several test files (the training tests): tiny synthetic data and a TinySSD.

A module of its own, not a test file, so that test files import from here and not from each other.
"""

import numpy as np
import torch
from PIL import Image

from d2lssd.models import TinySSD

SIZE = 64  # TinySSD's smallest input: 344 anchors, a training step takes milliseconds


def synthetic(n=8, seed=0):
    """Dark images with one bright square each; labels (n, 1, 5) normalized, class 0."""
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, 3, SIZE, SIZE, generator=g) * 0.1
    Y = torch.zeros(n, 1, 5)
    for i in range(n):
        x0, y0 = (torch.rand(2, generator=g) * 0.5).tolist()
        Y[i, 0, 1:] = torch.tensor([x0, y0, x0 + 0.4, y0 + 0.4])
        X[i, :, int(y0 * SIZE):int((y0 + 0.4) * SIZE), int(x0 * SIZE):int((x0 + 0.4) * SIZE)] = 1.0
    return X, Y


def batches(X, Y, size=4):
    return [(X[i:i + size], Y[i:i + size]) for i in range(0, len(X), size)]


def new_net(seed=0):
    torch.manual_seed(seed)
    return TinySSD(num_classes=1)


def quiet(**kw):
    return dict(device="cpu", progress=False, plot=None, **kw)


# name -> (width, height, [(class, xmin, ymin, xmax, ymax, difficult)]) in VOC's 1-based inclusive corners
IMAGES = {
    "000001": (60, 40, [("dog", 1, 1, 60, 40, 0), ("cat", 11, 5, 30, 20, 1)]),
    "000002": (50, 70, [("person", 5.5, 10, 25, 69.5, 0), ("cat", 30, 30, 30, 45, 0)]),
    "000003": (32, 32, []),
}


def write_voc(root, images=IMAGES, image_sets=None, write_filename=True):
    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (root / "Annotations").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for name, (w, h, objs) in images.items():
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "JPEGImages" / f"{name}.jpg")
        parts = [f"<annotation><folder>VOC</folder>"
                 + (f"<filename>{name}.jpg</filename>" if write_filename else "")
                 + f"<size><width>{w}</width><height>{h}</height><depth>3</depth></size>"]
        for cls, x1, y1, x2, y2, diff in objs:
            parts.append(f"<object><name>{cls}</name><pose>Unspecified</pose><truncated>0</truncated>"
                         f"<difficult>{diff}</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
                         f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>")
        parts.append("</annotation>")
        (root / "Annotations" / f"{name}.xml").write_text("".join(parts))
    for set_name, names in (image_sets or {}).items():
        (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / "Main" / f"{set_name}.txt").write_text("".join(f"{n}\n" for n in names))
    return root


def lr_trace(opt, sched, steps: int) -> list[float]:
    """The learning rate of ``opt`` before each of ``steps`` optimizer + scheduler steps."""
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out
