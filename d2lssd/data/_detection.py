"""What the COCO and VOC readers share: the sample format, crowd regions through transforms, collation.

A sample is ``(image, target)`` as :class:`d2lssd.data.PennFudanDataset`
returns it, so the same transforms (:mod:`d2lssd.transforms`) and
:func:`d2lssd.data.collate_ssd` apply. Images are read as people see them:
a phone photo's EXIF orientation is applied (:mod:`d2lssd.data.images`), as
every labelling tool does, so the image is upright and the boxes, which the
tools export in upright pixels, need no transformation. Crowd regions (COCO ``iscrowd=1``,
VOC ``difficult``) travel in ``target["crowd_boxes"]`` / ``["crowd_labels"]``.

``torchvision.transforms.v2`` moves every ``BoundingBoxes`` of a sample, but
``SanitizeBoundingBoxes`` filters them all with the mask of the *first* one,
so a second box tensor in the target would be filtered wrongly. While the
transforms run, the crowd boxes are therefore appended to ``"boxes"`` with
the label ``-2 - class`` (always < -1: never a class, never padding) and split
off again afterwards; a transform sees one box tensor and one label tensor.

An image file that cannot be decoded when a sample is read (truncated or
corrupt: the check made on opening decodes every file unless
``verify_images=False``, but a file can also break afterwards) does not end a
training run: the sample is skipped with a ``RuntimeWarning`` naming the file
(once per file), the file is counted in ``skipped_images``, and the next
readable sample is returned in its place (see :meth:`DetectionDataset.__getitem__`).
"""

from __future__ import annotations

from typing import Callable, Sequence

import warnings

import torch
import torch.utils.data

from .images import read_upright_rgb
from .report import image_read_errors

__all__ = ["DetectionDataset", "collate_detection"]


def _empty_boxes(h: int, w: int):
    from torchvision import tv_tensors

    return tv_tensors.BoundingBoxes(torch.zeros((0, 4)), format="XYXY", canvas_size=(h, w))


class DetectionDataset(torch.utils.data.Dataset):
    """Base of :class:`d2lssd.data.CocoDataset` and :class:`d2lssd.data.VOCDataset`.

    Subclasses implement ``__len__``, ``_load(idx) -> (image, target)``
    (before transforms) and ``_image_path(idx)``; this class applies
    ``transforms`` with the crowd regions carried along and skips samples
    whose image cannot be decoded (see the module docstring).

    Attributes:
        classes: tuple of class names, label ``k`` is ``classes[k]`` (model class ``k + 1``).
        num_classes: ``len(classes)`` (the ``q`` of a model: ``TinySSD(num_classes=q)``).
        transforms: the callable or ``None``; may be replaced after construction
            (e.g. a training and a validation copy of one data set).
        report: the :class:`d2lssd.data.DataReport` of the check made on opening.
        num_dropped: ``(annotations, images)`` left out by ``errors="drop"``.
        skipped_images: set of the paths (str) of the image files that could
            not be decoded while reading samples, each skipped ever since;
            ``num_skipped`` is their number. Each of :meth:`split`'s parts has
            its own. A ``DataLoader`` with ``num_workers > 0`` reads in worker
            processes, each with its own copy of the data set: the warnings
            appear there, this object's set stays empty.
    """

    def __init__(self, classes: Sequence[str], transforms: Callable | None = None):
        self.classes = tuple(classes)
        self.num_classes = len(self.classes)
        self.transforms = transforms
        self.skipped_images: set[str] = set()

    @property
    def num_skipped(self) -> int:
        """Number of image files skipped because they could not be decoded (``len(skipped_images)``)."""
        return len(self.skipped_images)

    @staticmethod
    def _check_classes(classes) -> tuple[str, ...]:
        if isinstance(classes, str) or not all(isinstance(c, str) and c for c in classes):
            raise ValueError(f"classes must be a sequence of non-empty names, got {classes!r}")
        classes = tuple(classes)
        if not classes:
            raise ValueError("classes is empty: the data set names no class")
        if len(set(classes)) != len(classes):
            raise ValueError(f"classes lists a name twice: {list(classes)}")
        return classes

    def _handle_report(self, report, errors: str) -> None:
        report.raise_if_problems(errors)  # raises for "raise" with problems, or fatal ones
        self.report = report
        self.num_dropped = (len(report.bad_annotations), len(report.bad_images))
        if report.problems:
            print(report.drop_summary(), flush=True)
        for w in report.warnings:  # the one warning that changes what is learnt: a class split in two
            if w.kind == "similar_class":
                print(w.line(), flush=True)

    @staticmethod
    def _read_image(path):
        """uint8 ``tv_tensors.Image`` ``(3, H, W)`` of an image file, RGB, shown upright.

        The EXIF orientation is applied (:func:`d2lssd.data.images.read_upright_rgb`):
        ``H`` and ``W`` are the upright size a labelling tool shows and
        exports, the frame of the boxes. Raises what that function raises
        (:func:`d2lssd.data.report.image_read_errors` for a file that cannot be decoded).
        """
        from torchvision import tv_tensors

        return tv_tensors.Image(read_upright_rgb(path))

    @staticmethod
    def _target(image, rows, crowd, **extra) -> dict:
        """The target dict from rows ``(label, x1, y1, x2, y2)`` in pixels (0-based half-open)."""
        from torchvision import tv_tensors

        h, w = image.shape[-2:]
        scale = torch.tensor([w, h, w, h], dtype=torch.float32)

        def boxes_labels(r):
            t = torch.tensor(r, dtype=torch.float32).reshape(-1, 5)
            b = torch.minimum(t[:, 1:].clamp(min=0), scale)  # within the checker's 1-pixel tolerance
            return (tv_tensors.BoundingBoxes(b, format="XYXY", canvas_size=(h, w)), t[:, 0].long())

        boxes, labels = boxes_labels(rows)
        crowd_boxes, crowd_labels = boxes_labels(crowd)
        return {"boxes": boxes, "labels": labels, "crowd_boxes": crowd_boxes, "crowd_labels": crowd_labels,
                **extra, "orig_size": (int(h), int(w))}

    def _load(self, idx: int):  # pragma: no cover - abstract
        raise NotImplementedError

    def _image_path(self, idx: int):  # pragma: no cover - abstract
        """The path of sample ``idx``'s image file (for the warning and :attr:`skipped_images`)."""
        raise NotImplementedError

    def _load_readable(self, idx: int):
        """``_load`` of sample ``idx``, or of the next sample whose image can be decoded (wrapping around).

        At most ``len(self)`` samples are tried, the files already in
        :attr:`skipped_images` not again.

        Raises:
            RuntimeError: no image of the data set can be decoded.
        """
        n = len(self)
        errors = image_read_errors()
        for step in range(n):
            j = (idx + step) % n
            path = str(self._image_path(j))
            if path in self.skipped_images:
                continue
            try:
                return self._load(j)
            except errors as e:
                self.skipped_images.add(path)
                reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")
                warnings.warn(f"skipping image file {path} (sample {j}): it cannot be decoded ({reason}); "
                              f"the next readable sample is used instead, {len(self.skipped_images)} "
                              f"file(s) skipped so far; run `d2lssd check-data` to find all such files",
                              RuntimeWarning, stacklevel=3)
        shown = sorted(self.skipped_images)[:3]
        raise RuntimeError(f"none of the {n} image files of this data set can be decoded "
                           f"({len(self.skipped_images)} skipped, e.g. {shown}); run `d2lssd check-data`")

    def _subset(self, indices: list[int]):  # pragma: no cover - abstract
        """A shallow copy holding only the samples ``indices`` (in that order)."""
        raise NotImplementedError

    def _keys(self) -> list:  # pragma: no cover - abstract
        """One sortable, unique key per sample (COCO image id, VOC name), for :meth:`split`."""
        raise NotImplementedError

    def split(self, num_val: int, seed: int = 0, train_transforms: Callable | None = None,
              val_transforms: Callable | None = None):
        """A seeded train/validation split: two data sets of the same classes.

        The samples' keys (COCO image ids, VOC names) go through
        :func:`d2lssd.data.split_pennfudan` (sorted, permuted by a
        ``torch.Generator`` seeded with ``seed``; the last ``num_val`` are
        validation), so a split depends only on the keys and the seed.

        Args:
            num_val: validation samples, ``0 <= num_val < len(self)``.
            seed: seed of the permutation.
            train_transforms, val_transforms: the ``transforms`` of each part
                (default: this data set's ``transforms`` for both).

        Returns:
            ``(train, val)``: shallow copies of this data set, disjoint, together all samples.

        Raises:
            ValueError: ``num_val`` out of range.
        """
        from .pennfudan import split_pennfudan

        keys = self._keys()
        train_keys, val_keys = split_pennfudan(keys, num_val, seed)
        where = {k: i for i, k in enumerate(keys)}
        parts = []
        for part_keys, tf in ((train_keys, train_transforms), (val_keys, val_transforms)):
            part = self._subset([where[k] for k in part_keys])
            part.transforms = tf if tf is not None else self.transforms
            part.skipped_images = set()  # its own count, not the shallow copy's shared set
            parts.append(part)
        return tuple(parts)

    def __getitem__(self, idx: int):
        """Sample ``idx`` as ``(image, target)`` (see the subclasses), after ``transforms``.

        If its image file cannot be decoded (``OSError`` such as "image file
        is truncated", ``PIL.UnidentifiedImageError``, ``ValueError``, ...),
        a ``RuntimeWarning`` names the file (once per file), the file is added
        to :attr:`skipped_images`, and the sample of the next index whose image
        can be decoded (wrapping around) is returned instead: a run does not
        end because of one file, a batch keeps its size (that other sample
        appears twice in the epoch). Evaluation then sees the substitute's
        ``image_id`` twice and the skipped image not at all.

        Raises:
            TypeError: ``idx`` is not an integer. IndexError: out of range.
            RuntimeError: no image file of the data set can be decoded.
        """
        if not isinstance(idx, int) and not (isinstance(idx, torch.Tensor) and idx.dim() == 0):
            raise TypeError(f"index must be an integer, got {type(idx).__name__}")
        idx = int(idx)
        if not -len(self) <= idx < len(self):
            raise IndexError(f"index {idx} out of range for {len(self)} images")
        image, target = self._load_readable(idx % len(self))
        if self.transforms is None:
            return image, target
        return self._transform(image, target)

    def _transform(self, image, target: dict):
        from torchvision import tv_tensors

        merged = {k: v for k, v in target.items() if k not in ("crowd_boxes", "crowd_labels")}
        boxes, crowd = target["boxes"], target["crowd_boxes"]
        merged["boxes"] = tv_tensors.wrap(torch.cat((boxes.as_subclass(torch.Tensor),
                                                     crowd.as_subclass(torch.Tensor))), like=boxes)
        merged["labels"] = torch.cat((target["labels"], -2 - target["crowd_labels"]))
        image, out = self.transforms(image, merged)
        b, lab = out["boxes"], torch.as_tensor(out["labels"])
        plain = b.as_subclass(torch.Tensor)
        keep = lab >= 0
        out = dict(out)
        out["boxes"] = tv_tensors.wrap(plain[keep], like=b)
        out["labels"] = lab[keep]
        out["crowd_boxes"] = tv_tensors.wrap(plain[~keep], like=b)
        out["crowd_labels"] = -2 - lab[~keep]
        return image, out


def collate_detection(batch):
    """Like :func:`d2lssd.data.collate_ssd`, plus what evaluation needs: ids, sizes, crowd regions.

    Args:
        batch: list of ``(image, target)`` from :class:`d2lssd.data.CocoDataset`
            or :class:`d2lssd.data.VOCDataset` after an SSD transform (float
            images of one size).

    Returns:
        ``(images, labels, info)``: ``images`` float32 ``(B, 3, H, W)``;
        ``labels`` float32 ``(B, G_max, 5)`` rows ``(class, xmin, ymin, xmax,
        ymax)`` normalized to [0, 1], padded with class -1 (exactly
        :func:`~d2lssd.data.collate_ssd`); ``info`` a dict with

        * ``"crowd"``: float32 ``(B, C_max, 5)``, the crowd regions in the same
          row format (padded with class -1; ``C_max`` may be 0);
        * ``"image_id"``: int64 ``(B,)`` (COCO image ids; VOC dataset indices);
        * ``"orig_size"``: int64 ``(B, 2)``, ``(height, width)`` of the image
          files shown upright (EXIF orientation applied): normalized boxes times
          ``(W, H, W, H)`` are pixels of the upright image, the frame of the annotations.

    Raises:
        ValueError: as :func:`~d2lssd.data.collate_ssd`.
    """
    from .collate import collate_ssd

    images, labels = collate_ssd(batch)
    crowd_batch = [(image, {"boxes": t.get("crowd_boxes", torch.zeros((0, 4))),
                            "labels": t.get("crowd_labels", torch.zeros((0,), dtype=torch.long))})
                   for image, t in batch]
    _, crowd = collate_ssd(crowd_batch)
    info = {
        "crowd": crowd,
        "image_id": torch.tensor([int(t.get("image_id", k)) for k, (_, t) in enumerate(batch)]),
        "orig_size": torch.tensor([list(t.get("orig_size", image.shape[-2:])) for image, t in batch]),
    }
    return images, labels, info
