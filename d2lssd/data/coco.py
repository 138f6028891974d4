"""COCO detection files: read them into d2lssd's format, write them, and write and score results.

A COCO detection file (what labelling tools such as CVAT, Label Studio or
makesense.ai export) is one JSON object::

    {"images":      [{"id": 7, "file_name": "a.jpg", "width": 640, "height": 480}, ...],
     "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [x, y, w, h],
                      "area": w * h, "iscrowd": 0}, ...],
     "categories":  [{"id": 3, "name": "banana", "supercategory": "fruit"}, ...]}

``bbox`` is ``[x, y, width, height]`` in pixels from the top-left corner of
the image (floats), and ``width``/``height`` are the image's, all taken in
the image **shown upright**: a phone photo stores its pixels turned with an
EXIF orientation tag, labelling tools show and export it upright, and the
images are read that way here (:mod:`d2lssd.data.images`). Category ids are arbitrary and need not be contiguous
(COCO's own run 1..90 with gaps). :class:`CocoDataset` maps them to
contiguous labels ``0 .. q - 1`` in increasing id order (``classes[k]`` is
the name of label ``k``, ``category_ids[k]`` its COCO id; the model's class
``k + 1``, class 0 being background), so a checkpoint can store
``classes`` and ``category_ids`` and predictions can be written back with
the original ids (:func:`coco_results`).

``iscrowd=1`` annotations mark a region of many objects (a crowd). COCO's
AP counts them neither as ground truth to find nor lets detections on them
count as false positives. They are kept apart here: never positives in
training (``target["crowd_boxes"]``, not ``target["boxes"]``), and
:func:`evaluate_coco` hands them to pycocotools, which ignores them as COCO
does. In training they are simply absent from ``target["boxes"]``, so the
anchors on them are background, as in torchvision's ``references/detection``
(``coco_utils.ConvertCocoPolysToMask`` drops ``iscrowd`` objects from the
targets); :func:`d2lssd.data.collate_detection` hands them to a trainer that
wants to exclude those anchors from the loss as well. Images without
annotations stay in the data set as negative examples.

Reading goes through the well-kept readers: ``pycocotools.coco.COCO`` (the
index) inside ``torchvision.datasets.CocoDetection`` wrapped by
``torchvision.datasets.wrap_dataset_for_transforms_v2`` (boxes as
``tv_tensors.BoundingBoxes``, so the v2 augmentation of
:mod:`d2lssd.transforms` moves them with the image). Before that the file
is checked by :func:`d2lssd.data.check_coco`; a data set with problems is
refused or, with ``errors="drop"``, read without its bad annotations and images.

Source: the COCO data format and results format
(https://cocodataset.org/#format-data, #format-results); pycocotools
(``COCO``, ``COCO.loadRes``, ``COCOeval``); torchvision ``datasets.CocoDetection``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
from pathlib import Path
from typing import Callable, Sequence

import torch

from .._io import atomic_write
from ._detection import DetectionDataset
from .check import check_coco
from .images import upright_rgb

__all__ = ["CocoDataset", "coco_annotation", "write_coco", "coco_results", "write_coco_results",
           "evaluate_coco"]


def _quiet():
    """pycocotools prints progress lines ("loading annotations into memory..."): silence them."""
    return contextlib.redirect_stdout(io.StringIO())


def _coco_index(data: dict):
    """A ``pycocotools.coco.COCO`` index of an in-memory COCO dict."""
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = data
    with _quiet():
        coco.createIndex()
    return coco


def _with_defaults(ann: dict) -> dict:
    """A copy of an annotation with COCO's optional fields filled in: ``iscrowd`` 0, ``area`` the box's.

    Labelling tools often leave them out; torchvision's wrapper (``iscrowd``)
    and pycocotools' evaluation (``area``) need them.
    """
    ann = dict(ann)
    ann.setdefault("iscrowd", 0)
    if "area" not in ann:
        ann["area"] = float(ann["bbox"][2]) * float(ann["bbox"][3])
    return ann


def _indexed_coco_detection_class():
    """``CocoDetection`` built from an existing ``COCO`` index instead of a file name.

    A subclass, so ``wrap_dataset_for_transforms_v2`` (which looks the
    dataset's classes up in its registry along the MRO) wraps it as a
    ``CocoDetection``; loading images and targets is ``CocoDetection``'s own
    code, except that an image file is closed also when it fails to decode
    and that it is read upright (EXIF orientation applied, :func:`d2lssd.data.images.upright_rgb`).
    """
    from torchvision.datasets import CocoDetection
    from torchvision.datasets.vision import VisionDataset

    class IndexedCocoDetection(CocoDetection):
        def __init__(self, root, coco, image_ids):  # noqa: D401 - mirrors CocoDetection.__init__
            VisionDataset.__init__(self, root)
            self.coco = coco
            self.ids = list(image_ids)

        def _load_image(self, id: int):
            # CocoDetection's own, but closing the file also when decoding fails (a truncated file
            # is skipped by DetectionDataset, and would otherwise leave its file open), and upright:
            # COCO's width, height and bbox are those of the photo as the labelling tool showed it.
            from PIL import Image

            with Image.open(os.path.join(self.root, self.coco.loadImgs(id)[0]["file_name"])) as im:
                return upright_rgb(im)

    return IndexedCocoDetection


class CocoDataset(DetectionDataset):
    """A COCO detection file and its image folder as ``(image, target)`` samples in d2lssd's format.

    ``dataset[i]`` is ``(image, target)`` before ``transforms``:

    * ``image``: ``tv_tensors.Image`` uint8 ``(3, H, W)``, RGB, upright: a
      photo's EXIF orientation is applied (:mod:`d2lssd.data.images`), so
      ``(W, H)`` is the upright size the labelling tool showed and the COCO
      ``width``/``height`` declare;
    * ``target["boxes"]``: ``tv_tensors.BoundingBoxes`` float32 ``(G, 4)``,
      XYXY, pixels (``(x, y, x + w, y + h)`` of the COCO ``bbox``, taken in the
      upright image as the labelling tool exported it: nothing to turn), clamped to
      the image (the check allows 1 pixel outside), ``canvas_size=(H, W)``;
      the ``iscrowd=0`` annotations in file order;
    * ``target["labels"]``: int64 ``(G,)``, labels ``0 .. q - 1``
      (``category_ids[label]`` is the COCO id);
    * ``target["crowd_boxes"]``, ``target["crowd_labels"]``: the ``iscrowd=1``
      annotations, same formats, ``(C, 4)`` and ``(C,)``;
    * ``target["image_id"]``: int, the COCO image id; ``target["file_name"]``: str;
      ``target["orig_size"]``: ``(H, W)`` of the upright image.

    ``G`` may be 0 (an image without objects: a negative example, kept).
    With ``transforms`` (e.g. :class:`d2lssd.transforms.SSDTrainTransform`)
    the sample is transformed last, crowd boxes with the others; then
    :func:`d2lssd.data.collate_ssd` (training) or
    :func:`d2lssd.data.collate_detection` (evaluation: also ids, sizes, crowd
    regions) batches it into rows ``(class, xmin, ymin, xmax, ymax)``
    normalized to [0, 1], padded with class -1.

    Args:
        annotations: path of the COCO JSON file.
        images: the folder that the images' ``file_name`` are relative to.
        transforms: optional callable ``(image, target) -> (image, target)``.
        classes: class names in label order, e.g. the ``classes`` of the
            training set when opening its validation set, so both use the same
            labels; every category of the file must be among them (a class
            may have no category in this file). Default: the file's category
            names in increasing id order.
        image_ids: read only these image ids (e.g. one side of a split made with
            :func:`d2lssd.data.split_pennfudan` on :attr:`image_ids`); default all.
        errors: ``"raise"`` (default): refuse a data set with any problem that
            :func:`d2lssd.data.check_coco` finds (a ``ValueError`` quoting the
            report); ``"drop"``: leave the bad annotations and images out and
            print how many (fatal problems, such as a duplicate category id, are
            refused anyway).
        verify_images: decode every image when checking (default; a
            truncated file is a problem), else read only the headers (fast).
            Either way, a file that fails to decode later is skipped with a
            warning when read (see :class:`d2lssd.data.DetectionDataset`).

    Attributes:
        classes: tuple of class names; ``num_classes``: their number ``q``.
        category_ids: tuple of COCO category ids, ``category_ids[k]`` of label ``k``
            (``None`` for a class given in ``classes`` but absent from the file).
        label_of_category: dict COCO category id -> label.
        image_ids: list of the image ids read, in dataset order (increasing id).
        file_names: list of their file names.
        coco: the ``pycocotools.coco.COCO`` index of what was read (after dropping).
        annotations, images: the paths given. report, num_dropped,
        skipped_images, num_skipped: see :class:`d2lssd.data.DetectionDataset`.

    Raises:
        FileNotFoundError: ``annotations`` does not exist.
        ValueError: bad arguments; a data set with problems (see ``errors``);
            categories not in ``classes``; an ``image_ids`` entry not in the
            file; nothing to read.
    """

    def __init__(self, annotations: str | os.PathLike, images: str | os.PathLike,
                 transforms: Callable | None = None, classes: Sequence[str] | None = None,
                 image_ids: Sequence[int] | None = None, errors: str = "raise", verify_images: bool = True):
        from torchvision.datasets import wrap_dataset_for_transforms_v2

        if errors not in ("raise", "drop"):
            raise ValueError(f"errors must be 'raise' or 'drop', got {errors!r}")
        self.annotations, self.images = Path(annotations), Path(images)
        report = check_coco(self.annotations, self.images, verify_images)
        self._handle_report(report, errors)
        data = report.data
        cats = sorted(data["categories"], key=lambda c: c["id"])
        file_names = [c["name"] for c in cats]
        if classes is None:
            classes = file_names
        classes = self._check_classes(classes)
        unknown = [n for n in file_names if n not in classes]
        if unknown:
            raise ValueError(f"{self.annotations}: categories {unknown} are not among classes {list(classes)}")
        by_name = {c["name"]: c["id"] for c in cats}
        self.category_ids = tuple(by_name.get(n) for n in classes)
        self.label_of_category = {cid: k for k, cid in enumerate(self.category_ids) if cid is not None}

        kept_images = [im for im in data["images"] if isinstance(im, dict) and isinstance(im.get("id"), int)
                       and im["id"] not in report.bad_images]
        kept_ids = {im["id"] for im in kept_images}
        if image_ids is not None:
            wanted = [int(i) for i in image_ids]
            missing = sorted(set(wanted) - kept_ids)
            if missing:
                raise ValueError(f"image_ids {missing[:10]} are not images of {self.annotations}"
                                 + (" (or were dropped)" if report.bad_images else ""))
            kept_ids = set(wanted)
            kept_images = [im for im in kept_images if im["id"] in kept_ids]
        kept_anns = [_with_defaults(a) for k, a in enumerate(data["annotations"])
                     if k not in report.bad_annotations and a["image_id"] in kept_ids]
        if not kept_images:
            raise ValueError(f"{self.annotations}: no image to read")
        filtered = {k: v for k, v in data.items() if k not in ("images", "annotations")}
        filtered.update(images=kept_images, annotations=kept_anns)
        self.coco = _coco_index(filtered)
        self.image_ids = sorted(kept_ids)
        self.file_names = [self.coco.imgs[i]["file_name"] for i in self.image_ids]
        base = _indexed_coco_detection_class()(str(self.images), self.coco, self.image_ids)
        self._wrapped = wrap_dataset_for_transforms_v2(
            base, target_keys={"image_id", "boxes", "labels", "iscrowd"})
        super().__init__(classes, transforms)

    def __len__(self) -> int:
        return len(self.image_ids)

    def _keys(self) -> list:
        return list(self.image_ids)

    def _subset(self, indices):
        from torchvision.datasets import wrap_dataset_for_transforms_v2

        out = copy.copy(self)
        out.image_ids = [self.image_ids[i] for i in indices]
        out.file_names = [self.file_names[i] for i in indices]
        base = _indexed_coco_detection_class()(str(self.images), self.coco, out.image_ids)
        out._wrapped = wrap_dataset_for_transforms_v2(base, target_keys={"image_id", "boxes", "labels", "iscrowd"})
        return out

    def _image_path(self, idx: int) -> Path:
        return self.images / self.file_names[idx]

    def _load(self, idx: int):
        from torchvision import tv_tensors
        from torchvision.transforms.v2 import functional as F

        pil, t = self._wrapped[idx]
        image = tv_tensors.Image(F.pil_to_tensor(pil))
        rows, crowd = [], []
        if "boxes" in t:  # the v2 wrapper returns only {"image_id"} for an image without annotations
            boxes = t["boxes"].as_subclass(torch.Tensor).tolist()
            for box, cid, is_crowd in zip(boxes, t["labels"].tolist(), t["iscrowd"]):
                (crowd if is_crowd else rows).append((self.label_of_category[int(cid)], *box))
        iid = self.image_ids[idx]
        return image, self._target(image, rows, crowd, image_id=iid,
                                   file_name=self.coco.imgs[iid]["file_name"])

    def normalized_boxes(self) -> torch.Tensor:
        """All non-crowd boxes, float32 ``(G, 4)`` corner format normalized by each image's declared size.

        Read from the annotations (no image is opened), clamped to [0, 1] as
        :meth:`__getitem__` clamps them; for :func:`d2lssd.anchor_fit.fit_anchors`.
        """
        return self.normalized_labels()[:, 1:]

    def normalized_labels(self) -> torch.Tensor:
        """:meth:`normalized_boxes` with their labels: float32 ``(G, 5)`` rows ``(label, xmin, ymin, xmax, ymax)``.

        For the run folder's label statistics (:mod:`d2lssd.runs`); no image is opened.
        """
        label = {cid: k for k, cid in enumerate(self.category_ids) if cid is not None}
        rows, mine = [], set(self.image_ids)
        for a in self.coco.dataset["annotations"]:
            if a.get("iscrowd", 0) or a["image_id"] not in mine or a["category_id"] not in label:
                continue
            im = self.coco.imgs[a["image_id"]]
            x, y, w, h = (float(v) for v in a["bbox"])
            W, H = float(im["width"]), float(im["height"])
            rows.append((label[a["category_id"]], x / W, y / H, (x + w) / W, (y + h) / H))
        out = torch.tensor(rows, dtype=torch.float32).reshape(-1, 5)
        out[:, 1:] = out[:, 1:].clamp(0, 1)
        return out

    def category_of_label(self, labels) -> list[int]:
        """COCO category ids of labels ``0 .. q - 1`` (a sequence or int tensor); ValueError if out of range."""
        out = []
        for v in torch.as_tensor(labels).reshape(-1).tolist():
            k = int(v)
            if not 0 <= k < self.num_classes or self.category_ids[k] is None:
                raise ValueError(f"label {v} has no COCO category (labels 0..{self.num_classes - 1}: "
                                 f"{dict(enumerate(self.category_ids))})")
            out.append(self.category_ids[k])
        return out


# --------------------------------------------------------------------------- writing


def coco_annotation(ann_id: int, image_id: int, category_id: int, box, iscrowd: int = 0) -> dict:
    """One COCO annotation dict from a pixel corner box.

    Args:
        ann_id, image_id, category_id: integer ids.
        box: ``(xmin, ymin, xmax, ymax)`` in pixels, 0-based half-open (the package's pixel boxes).
        iscrowd: 0 or 1.

    Returns:
        ``{"id", "image_id", "category_id", "bbox": [x, y, w, h], "area": w * h,
        "iscrowd", "segmentation": []}`` (``area`` is the box's, as labelling tools
        write for boxes without masks).

    Raises:
        ValueError: a box with ``xmax < xmin`` or ``ymax < ymin`` or not 4 finite numbers.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or x2 < x1 or y2 < y1:
        raise ValueError(f"box must be (xmin, ymin, xmax, ymax) with xmax >= xmin, ymax >= ymin, got {box}")
    w, h = x2 - x1, y2 - y1
    return {"id": int(ann_id), "image_id": int(image_id), "category_id": int(category_id),
            "bbox": [x1, y1, w, h], "area": w * h, "iscrowd": int(iscrowd), "segmentation": []}


def _dump(obj, path) -> Path:
    text = json.dumps(obj, indent=1, allow_nan=False).encode("utf-8")
    return atomic_write(path, lambda f: f.write(text))


def write_coco(path, images: Sequence[dict], annotations: Sequence[dict], categories: Sequence[dict],
               info: dict | None = None) -> Path:
    """Write a COCO detection file atomically (:func:`d2lssd._io.atomic_write`).

    Args:
        path: the JSON file to write (its folder is created).
        images: dicts with at least ``id``, ``file_name``, ``width``, ``height``.
        annotations: dicts with at least ``id``, ``image_id``, ``category_id``,
            ``bbox`` (e.g. from :func:`coco_annotation`); ``iscrowd`` defaults to 0
            and ``area`` to the box's area when missing (pycocotools' evaluation needs both).
        categories: dicts with ``id`` and ``name`` (``supercategory`` optional).
        info: optional ``"info"`` dict (e.g. the generator and its seed).

    Returns:
        ``Path(path)``. The file is readable by ``pycocotools.coco.COCO`` and
        :class:`CocoDataset`. Nothing is validated beyond the keys: run
        :func:`d2lssd.data.check_coco` on the result to lint it.

    Raises:
        ValueError: an entry lacks a required key, or a value is NaN or infinite.
    """
    need = {"images": ("id", "file_name", "width", "height"),
            "annotations": ("id", "image_id", "category_id", "bbox"), "categories": ("id", "name")}
    lists = {"images": images, "annotations": annotations, "categories": categories}
    for key, entries in lists.items():
        for k, e in enumerate(entries):
            missing = [f for f in need[key] if f not in e]
            if missing:
                raise ValueError(f"{key}[{k}] lacks {missing}")
    anns = []
    for a in annotations:
        a = dict(a)
        a.setdefault("iscrowd", 0)
        if "area" not in a and isinstance(a["bbox"], (list, tuple)) and len(a["bbox"]) == 4:
            a["area"] = float(a["bbox"][2]) * float(a["bbox"][3])
        anns.append(a)
    obj = {"info": dict(info or {}), "images": [dict(i) for i in images], "annotations": anns,
           "categories": [dict(c) for c in categories]}
    try:
        return _dump(obj, path)
    except ValueError as e:
        raise ValueError(f"cannot write {path}: {e} (NaN or infinite values)") from None


def coco_results(detections, image_ids: Sequence[int], orig_sizes, category_ids: Sequence[int],
                 score_threshold: float = 0.0) -> list[dict]:
    """Detections in d2lssd's format as a COCO results list (what ``COCO.loadRes`` accepts).

    Args:
        detections: float ``(B, K, 6)`` rows ``(class, score, xmin, ymin,
            xmax, ymax)`` (normalized corner boxes, classes ``0 .. q - 1``,
            class -1 rows skipped) as :func:`d2lssd.multibox_detection` returns,
            or a list of ``B`` tensors ``(K_i, 6)``.
        image_ids: ``B`` COCO image ids.
        orig_sizes: ``B`` pairs ``(height, width)`` in pixels of the image files
            shown upright (``info["orig_size"]`` of :func:`d2lssd.data.collate_detection`).
        category_ids: COCO id of each class (``CocoDataset.category_ids``).
        score_threshold: skip detections scoring below it.

    Returns:
        list of ``{"image_id": int, "category_id": int, "bbox": [x, y, w, h],
        "score": float}``, ``bbox`` in pixels of the upright image (the frame of
        COCO annotations), clipped to the image.

    Raises:
        ValueError: lengths that disagree, a class without a category id, NaN.
    """
    if isinstance(detections, torch.Tensor):
        if detections.dim() != 3 or detections.shape[-1] != 6:
            raise ValueError(f"detections must be (B, K, 6) or a list of (K, 6), got {tuple(detections.shape)}")
        detections = list(detections.unbind(0))
    sizes = torch.as_tensor(orig_sizes).reshape(-1, 2).tolist()
    if not len(detections) == len(image_ids) == len(sizes):
        raise ValueError(f"detections ({len(detections)}), image_ids ({len(image_ids)}) and orig_sizes "
                         f"({len(sizes)}) must cover the same images")
    out = []
    for d, iid, (h, w) in zip(detections, image_ids, sizes):
        d = torch.as_tensor(d).detach().cpu().double().reshape(-1, 6)
        if torch.isnan(d).any():
            raise ValueError(f"detections of image {iid} contain NaN")
        d = d[(d[:, 0] >= 0) & (d[:, 1] >= score_threshold)]
        scale = torch.tensor([w, h, w, h], dtype=torch.float64)
        boxes = torch.minimum((d[:, 2:] * scale).clamp(min=0), scale)
        for (c, s), (x1, y1, x2, y2) in zip(d[:, :2].tolist(), boxes.tolist()):
            k = int(c)
            if not 0 <= k < len(category_ids) or category_ids[k] is None:
                raise ValueError(f"class {k} has no category id (category_ids={list(category_ids)})")
            out.append({"image_id": int(iid), "category_id": int(category_ids[k]),
                        "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
                        "score": round(float(s), 6)})
    return out


def write_coco_results(path, results: Sequence[dict]) -> Path:
    """Write a COCO results list (from :func:`coco_results`) as JSON, atomically.

    Raises:
        ValueError: an entry lacks ``image_id``, ``category_id``, ``bbox`` or ``score``.
    """
    for k, r in enumerate(results):
        missing = [f for f in ("image_id", "category_id", "bbox", "score") if f not in r]
        if missing:
            raise ValueError(f"results[{k}] lacks {missing}")
    return _dump(list(results), path)


def evaluate_coco(dataset, results: Sequence[dict]) -> dict:
    """COCO AP of a results list on a :class:`CocoDataset`, by pycocotools' ``COCOeval`` (crowd-aware).

    Args:
        dataset: the :class:`CocoDataset` the detections were made on (its
            ``coco`` index, ``image_ids`` and ``classes`` are used).
        results: list of COCO result dicts (:func:`coco_results`) on images of ``dataset``.

    Returns:
        dict with ``"AP"`` (AP@[.5:.95]), ``"AP50"``, ``"AP75"`` (101-point
        interpolation, COCO's scale), ``"per_class"``: ``{class name: AP50}``
        for the classes with ground truth, and ``"num_images"``. ``iscrowd``
        regions are ignored as in COCO (detections matching them are neither
        true nor false positives). Classes without ground truth do not enter
        the averages. With no results at all every AP is 0.0 (NaN when the data
        has no ground truth).

    Raises:
        ValueError: a result on an image not in ``dataset``.

    Source: pycocotools ``COCO.loadRes`` and ``COCOeval`` (iouType ``"bbox"``).
    """
    from pycocotools.cocoeval import COCOeval

    known = set(dataset.image_ids)
    stray = sorted({r["image_id"] for r in results} - known)
    if stray:
        raise ValueError(f"results name image ids {stray[:10]} that are not in the data set")
    gt = dataset.coco
    present = {a["category_id"] for a in gt.dataset["annotations"]
               if not a.get("iscrowd", 0) and a["image_id"] in known}
    has_gt = {k: cid in present for k, cid in enumerate(dataset.category_ids) if cid is not None}
    with_gt = [k for k, v in has_gt.items() if v]
    out = {"num_images": len(dataset)}
    if not with_gt:
        return {"AP": math.nan, "AP50": math.nan, "AP75": math.nan, "per_class": {}, **out}
    if not results:
        return {"AP": 0.0, "AP50": 0.0, "AP75": 0.0,
                "per_class": {dataset.classes[k]: 0.0 for k in with_gt}, **out}
    with _quiet():
        dt = gt.loadRes([dict(r) for r in results])
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.params.imgIds = list(dataset.image_ids)
        ev.params.catIds = [dataset.category_ids[k] for k in with_gt]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"]  # (T, R, K, area, maxDets)
    p = prec[:, :, :, 0, -1]

    def mean_valid(x) -> float:
        x = x[x > -1]
        return float(x.mean()) if x.size else math.nan

    t50 = [i for i, t in enumerate(ev.params.iouThrs) if abs(t - 0.5) < 1e-9][0]
    t75 = [i for i, t in enumerate(ev.params.iouThrs) if abs(t - 0.75) < 1e-9][0]
    per_class = {dataset.classes[k]: mean_valid(p[t50, :, j]) for j, k in enumerate(with_gt)}
    return {"AP": float(ev.stats[0]), "AP50": float(ev.stats[1]), "AP75": float(ev.stats[2]),
            "per_class": per_class, **out}
