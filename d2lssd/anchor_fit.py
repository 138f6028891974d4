r"""Anchors fitted to a data set, and how well anchors cover its boxes.

**Coverage.** Matching (:func:`d2lssd.multibox_target`) makes an anchor
positive when its IoU with a ground-truth box is at least 0.5, and forces
the best anchor of a box that has none. A box whose best anchor is below 0.5
is therefore learned from one badly fitting anchor. The *coverage* of a set
of anchors on a data set is the share of ground-truth boxes with an anchor at
IoU :math:`\geq 0.5` (:func:`anchor_coverage`); the Penn-Fudan chapter
measured it by hand to choose tall ratios for pedestrians.

**Fitting** (:func:`fit_anchors`) keeps the model's layout (its feature
maps, and the number of sizes and ratios per level, so the heads keep their
shapes) and chooses the values from the training boxes:

1. *ratios* (width / height, shared by all levels): a 1-D k-means of the
   boxes' log aspect ratios (in pixels of the model's input) with as many
   clusters as the model has ratios, started at evenly spaced quantiles; the
   most populated cluster comes first, because :func:`d2lssd.multibox_prior`
   pairs the first ratio with every size;
2. *sizes* per level, alternating (at most ``iterations`` rounds): each box
   goes to the level of its best anchor under the current sizes; each
   level's sizes become a 1-D k-means of the log scales
   (:math:`\sqrt{w h}` in units of the map's height) of its boxes, most
   populated first (the first size is paired with every ratio); a level that
   gets no box keeps its sizes.

Every candidate (the model's own anchors, the fitted ratios with the
model's sizes, and each round) is scored by coverage, ties broken by the
mean best IoU, and the best is returned: the fitted anchors never cover
fewer boxes than the model's own. Everything is vectorised over boxes and
anchors and deterministic (no random initialisation).

Source: the coverage measure of the Penn-Fudan chapter (``notebooks/pennfudan.md``);
anchors by k-means of the training boxes as in YOLOv2 (Redmon & Farhadi
2017, §"Dimension Clusters"), here in log space and per SSD level; SSD's
anchor layout (Liu et al. 2016 §2.2) as in :func:`d2lssd.multibox_prior`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import torch

from .anchors import multibox_prior
from .boxes import box_iou

__all__ = ["AnchorFit", "best_anchor_iou", "anchor_coverage", "level_shapes", "anchors_for",
           "fit_anchors", "dataset_boxes"]


def _as_boxes(boxes, name: str) -> torch.Tensor:
    if not isinstance(boxes, torch.Tensor):
        boxes = torch.as_tensor(boxes, dtype=torch.float32)
    if boxes.dim() == 3 and boxes.shape[0] == 1:
        boxes = boxes[0]
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"{name} must be (N, 4) corner boxes, normalized, got shape {tuple(boxes.shape)}")
    if not boxes.is_floating_point():
        boxes = boxes.float()
    if torch.isnan(boxes).any():
        raise ValueError(f"{name} contains NaN")
    return boxes


def best_anchor_iou(anchors, boxes, chunk: int = 2048) -> torch.Tensor:
    """Each box's best IoU with any anchor.

    Args:
        anchors: ``(A, 4)`` or ``(1, A, 4)`` corner boxes, normalized (as a model returns them).
        boxes: ``(G, 4)`` ground-truth corner boxes in the same unit.
        chunk: boxes per IoU block (memory is ``chunk * A`` floats).

    Returns:
        float ``(G,)`` in [0, 1] on the boxes' device (0 for ``A = 0``).

    Raises:
        ValueError: shapes other than those, NaN, or a box with ``xmax < xmin`` (see :func:`d2lssd.box_iou`).
    """
    anchors = _as_boxes(anchors, "anchors").to(boxes.device if isinstance(boxes, torch.Tensor) else "cpu")
    boxes = _as_boxes(boxes, "boxes")
    if len(anchors) == 0 or len(boxes) == 0:
        return torch.zeros(len(boxes), dtype=boxes.dtype, device=boxes.device)
    return torch.cat([box_iou(boxes[i:i + chunk], anchors).amax(dim=1) for i in range(0, len(boxes), chunk)])


def anchor_coverage(anchors, boxes, iou_threshold: float = 0.5) -> float:
    """Share of ground-truth boxes with an anchor at IoU ``>= iou_threshold``.

    Args:
        anchors, boxes: as :func:`best_anchor_iou` (normalized corner boxes).
        iou_threshold: in [0, 1]; 0.5 is the matching threshold of :func:`d2lssd.multibox_target`.

    Returns:
        A float in [0, 1]; NaN when there is no box.

    Raises:
        ValueError: as :func:`best_anchor_iou`, or a threshold outside [0, 1].
    """
    if not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    best = best_anchor_iou(anchors, boxes)
    return float((best >= iou_threshold).float().mean()) if len(best) else math.nan


def _image_hw(image_size) -> tuple[int, int]:
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    try:
        h, w = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be an int or (height, width), got {image_size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"image_size must be positive, got {image_size!r}")
    return h, w


def level_shapes(model: torch.nn.Module, image_size) -> list[tuple[int, int]]:
    """``(h, w)`` of each feature map that ``model`` puts anchors on, for inputs of ``image_size``.

    Args:
        model: an SSD of the package (:class:`d2lssd.models.SSDBase`:
            ``feature_maps(X)``), or any module with a ``features(X) -> list
            of maps`` method or d2l's blocks ``blk_0 ..``.
        image_size: ``int`` (square) or ``(height, width)`` in pixels.

    Returns:
        list of ``(h, w)``, one per level, largest first. Runs the backbone
        once on zeros in eval mode, without gradients (the mode is restored).

    Raises:
        ValueError: a model of neither kind, or an input it rejects as too small.
    """
    h, w = _image_hw(image_size)
    min_size = getattr(model, "MIN_SIZE", 1)
    if min(h, w) < min_size:
        raise ValueError(f"image_size {(h, w)} is too small for {type(model).__name__} (>= {min_size})")
    x = torch.zeros((1, 3, h, w), device=next(model.parameters()).device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if hasattr(model, "feature_maps"):  # every d2lssd.models.SSDBase, registered or not
                maps = model.feature_maps(x)
            elif hasattr(model, "features"):
                maps = model.features(x)
            elif hasattr(model, "NUM_LEVELS") and hasattr(model, "blk_0"):
                maps = []
                for i in range(model.NUM_LEVELS):
                    x = getattr(model, f"blk_{i}")(x)
                    maps.append(x)
            else:
                raise ValueError(f"{type(model).__name__} has neither features() nor blk_0..: cannot find "
                                 "its feature maps")
    finally:
        model.train(was_training)
    return [(int(m.shape[-2]), int(m.shape[-1])) for m in maps]


def anchors_for(shapes: Sequence[tuple[int, int]], sizes, ratios) -> torch.Tensor:
    """All anchors of a model layout: :func:`d2lssd.multibox_prior` per level, concatenated.

    Args:
        shapes: ``(h, w)`` per level (:func:`level_shapes`).
        sizes, ratios: one list per level (fractions of the map height; width / height).

    Returns:
        float32 ``(1, A, 4)`` normalized corner boxes, in the order the models produce them.

    Raises:
        ValueError: lists of the wrong length, or what :func:`d2lssd.multibox_prior` raises.
    """
    if not len(shapes) == len(sizes) == len(ratios):
        raise ValueError(f"need one sizes and ratios list per level: {len(shapes)} levels, "
                         f"{len(sizes)} sizes, {len(ratios)} ratios")
    return torch.cat([multibox_prior(torch.empty((1, 1, h, w)), s, r)
                      for (h, w), s, r in zip(shapes, sizes, ratios)], dim=1)


def _kmeans_1d(x: torch.Tensor, k: int, iterations: int = 25) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic 1-D k-means: ``(centres (k,), counts (k,))`` sorted by count, descending.

    Started at the quantiles ``(i + 0.5) / k``; an empty cluster keeps its centre.
    """
    x = x.double()
    q = (torch.arange(k, dtype=torch.float64) + 0.5) / k
    c = torch.quantile(x, q)
    for _ in range(iterations):
        assign = (x[:, None] - c[None, :]).abs().argmin(dim=1)
        counts = torch.bincount(assign, minlength=k)
        sums = torch.zeros(k, dtype=torch.float64).index_add_(0, assign, x)
        new = torch.where(counts > 0, sums / counts.clamp(min=1), c)
        if torch.allclose(new, c):
            break
        c = new
    counts = torch.bincount((x[:, None] - c[None, :]).abs().argmin(dim=1), minlength=k)
    order = torch.sort(counts, descending=True, stable=True).indices
    return c[order], counts[order]


def _best(anchors: torch.Tensor, boxes: torch.Tensor, chunk: int = 2048):
    """Best IoU ``(G,)`` and index of the best anchor ``(G,)`` of each box, in one pass."""
    vals, idx = [], []
    for i in range(0, len(boxes), chunk):
        v, j = box_iou(boxes[i:i + chunk], anchors).max(dim=1)
        vals.append(v)
        idx.append(j)
    return torch.cat(vals), torch.cat(idx)


@dataclass
class AnchorFit:
    """The result of :func:`fit_anchors`.

    Attributes:
        sizes, ratios: one list per level, for the model's ``sizes=`` and ``ratios=``
            (``TinySSD(q, **fit.model_kwargs())``).
        coverage_before, coverage_after: share of boxes with an anchor at
            IoU >= ``iou_threshold``, with the model's anchors and with the fitted ones.
        mean_iou_before, mean_iou_after: mean best-anchor IoU of the boxes.
        num_boxes: boxes fitted on; image_size: ``(height, width)`` of the model input;
        iou_threshold: of the coverage; rounds: k-means rounds run;
        source: ``"fitted"`` or ``"model"`` (when no candidate beat the model's anchors).
    """

    sizes: list
    ratios: list
    coverage_before: float
    coverage_after: float
    mean_iou_before: float
    mean_iou_after: float
    num_boxes: int
    image_size: tuple
    iou_threshold: float = 0.5
    rounds: int = 0
    source: str = "fitted"
    history: list = field(default_factory=list, repr=False)

    def model_kwargs(self) -> dict:
        """``{"sizes": ..., "ratios": ...}`` for the model's constructor (and a checkpoint)."""
        return {"sizes": [list(s) for s in self.sizes], "ratios": [list(r) for r in self.ratios]}

    def summary(self) -> str:
        """One line: coverage before and after."""
        t = self.iou_threshold
        return (f"anchors fitted on {self.num_boxes} boxes: {self.coverage_before:.1%} -> "
                f"{self.coverage_after:.1%} of boxes have an anchor with IoU >= {t:g} (mean best IoU "
                f"{self.mean_iou_before:.2f} -> {self.mean_iou_after:.2f})")


def _model_layout(model, num_classes: int = 1):
    from .models.registry import MODELS, build_model

    if isinstance(model, str):
        if model.lower() not in MODELS:
            raise ValueError(f"model must be a model, a model class or one of {sorted(MODELS)} (the model "
                             f"registry), got {model!r}")
        model = build_model(model.lower(), num_classes)
    if isinstance(model, type):
        names = [e.name for e in MODELS.values() if e.model_class is model]
        if not names:
            raise ValueError(f"{model.__name__} is not a registered model (d2lssd.models.register_model)")
        model = build_model(names[0], num_classes)
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "sizes") or not hasattr(model, "ratios"):
        raise ValueError(f"model must be an SSD model of d2lssd (with .sizes and .ratios), got {type(model).__name__}")
    return model


def fit_anchors(boxes, model="tinyssd", image_size=256, iou_threshold: float = 0.5,
                iterations: int = 10) -> AnchorFit:
    """Choose anchor sizes and ratios per level of ``model`` from the training boxes.

    Args:
        boxes: float ``(G, 4)`` ground-truth corner boxes normalized to [0, 1]
            (e.g. :func:`dataset_boxes`); their normalized coordinates are the
            same before and after the square resize of the SSD transforms.
        model: a model instance, a class (:class:`d2lssd.TinySSD`,
            :class:`d2lssd.SSDResNet34`) or ``"tinyssd"`` / ``"resnet34"``;
            its current ``sizes``/``ratios`` are the "before", its level
            layout (maps and counts per level) is kept. A class is built with
            random weights (nothing is downloaded).
        image_size: the model's input, ``int`` or ``(height, width)`` pixels
            (256 for TinySSD in d2l, 300 for the ResNet-34 SSD).
        iou_threshold: of the coverage (0.5, the matching threshold).
        iterations: at most this many rounds of level assignment and k-means (>= 1).

    Returns:
        An :class:`AnchorFit`: sizes and ratios with ``coverage_after >=
        coverage_before`` (see the module docstring), rounded to 4 decimals.

    Raises:
        ValueError: no box, a degenerate box (zero width or height), bad arguments.
    """
    boxes = _as_boxes(boxes, "boxes").detach().cpu().float()
    if len(boxes) == 0:
        raise ValueError("boxes is empty: no ground truth to fit anchors to")
    wh = boxes[:, 2:] - boxes[:, :2]
    if bool((wh <= 0).any()):
        raise ValueError("boxes must have positive width and height (check the data with d2lssd.data.check_coco)")
    if isinstance(iterations, bool) or int(iterations) != iterations or iterations < 1:
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
    net = _model_layout(model)
    H, W = _image_hw(image_size)
    shapes = level_shapes(net, (H, W))
    before_sizes = [list(map(float, s)) for s in net.sizes]
    before_ratios = [list(map(float, r)) for r in net.ratios]
    n_sizes = [len(s) for s in before_sizes]
    n_ratios = [len(r) for r in before_ratios]
    t = float(iou_threshold)

    best0, _ = _best(anchors_for(shapes, before_sizes, before_ratios)[0], boxes)
    cov0, mean0 = float((best0 >= t).float().mean()), float(best0.mean())
    best = (cov0, mean0, before_sizes, before_ratios, "model")
    history = [("model", cov0, mean0)]

    # 1. Ratios: width / height in pixels of the model input (what multibox_prior's ratio means).
    log_r = torch.log(wh[:, 0] * W / (wh[:, 1] * H))
    ratio_sets = {}
    for m in sorted(set(n_ratios)):
        c, _ = _kmeans_1d(log_r, m)
        ratio_sets[m] = [round(float(v), 4) for v in torch.exp(c)]
    ratios = [list(ratio_sets[m]) for m in n_ratios]

    # 2. Sizes per level, alternating level assignment and k-means of the scales.
    sizes = [list(s) for s in before_sizes]
    level_of_anchor = torch.cat([torch.full((h * w * (ns + nr - 1),), k, dtype=torch.long)
                                 for k, ((h, w), ns, nr) in enumerate(zip(shapes, n_sizes, n_ratios))])
    # Scale in multibox_prior's units (fractions of the map height, square in pixels):
    # an anchor of size s is s*sqrt(r)*H px wide and s/sqrt(r)*H px high, so s = sqrt(w_px h_px) / H.
    log_s = torch.log(torch.sqrt(wh[:, 0] * W * wh[:, 1] * H) / H)
    rounds = 0
    for rounds in range(0, int(iterations) + 1):
        iou, which = _best(anchors_for(shapes, sizes, ratios)[0], boxes)
        cov, mean = float((iou >= t).float().mean()), float(iou.mean())
        history.append((f"round {rounds}", cov, mean))
        if (cov, mean) > best[:2]:
            best = (cov, mean, [list(s) for s in sizes], [list(r) for r in ratios], "fitted")
        if rounds == int(iterations):
            break
        level = level_of_anchor[which]
        new = []
        for k, ns in enumerate(n_sizes):
            mine = log_s[level == k]
            if len(mine) < ns:  # too few boxes to place this level's sizes: keep them
                new.append(sizes[k])
                continue
            c, _ = _kmeans_1d(mine, ns)
            new.append([round(float(v), 4) for v in torch.exp(c)])
        if new == sizes:
            break
        sizes = new
    cov, mean, best_sizes, best_ratios, source = best
    return AnchorFit(best_sizes, best_ratios, cov0, cov, mean0, mean, len(boxes), (H, W), t,
                     rounds, source, history)


def dataset_boxes(dataset) -> torch.Tensor:
    """All ground-truth boxes of a data set, normalized corner format, without reading the images.

    Args:
        dataset: a :class:`d2lssd.data.CocoDataset` or
            :class:`d2lssd.data.VOCDataset` (boxes from the annotations and
            declared sizes; crowd regions left out), or any dataset of
            ``(image, target)`` with pixel ``target["boxes"]`` (read one by
            one, images included).

    Returns:
        float32 ``(G, 4)`` normalized to [0, 1] by each image's width and height.
    """
    if hasattr(dataset, "normalized_boxes"):
        return dataset.normalized_boxes()
    rows = []
    for k in range(len(dataset)):
        image, target = dataset[k]
        h, w = image.shape[-2:]
        b = torch.as_tensor(target["boxes"]).as_subclass(torch.Tensor).float().reshape(-1, 4)
        rows.append(b / torch.tensor([w, h, w, h], dtype=torch.float32))
    return torch.cat(rows) if rows else torch.zeros((0, 4))
