r"""Honest training metrics and mean average precision.

d2l's TinySSD chapter reports a class error averaged over *all* anchors and a
box MAE averaged over *all* offset entries, masked-out ones included. With
5444 anchors and one banana per image about 99.8% of anchors are background,
so a model that always says "background" scores a class error of about 0.2%,
and the box MAE shrinks with the share of negatives whatever the boxes are.
The metrics here say what they average over:

* :func:`class_error_positive`: error over the anchors matched to an object;
* :func:`class_error_all`: d2l's error over all anchors (for comparison);
* :func:`bbox_mae_positive`: mean absolute offset error over the entries of
  positive anchors only (:func:`bbox_mae_all` is d2l's version);
* :func:`mean_average_precision`: COCO-style AP from the detections, the
  number detection papers report;
* :func:`cls_eval` and :func:`bbox_eval`: d2l's two functions under d2l's
  names, with d2l's values (sums to put in an :class:`Accumulator`), so that
  the chapter's training loop runs as written.

Every rate function returns a Python float, or with ``return_counts=True``
the pair ``(numerator, denominator)`` so that batches can be summed in an
:class:`Accumulator` and divided once at the end (averaging per-batch rates
would weight small batches too much).

Sources: d2l.ai §14.7.3.2 (``cls_eval``, ``bbox_eval``) and §3.6
(``Accumulator``); COCO detection evaluation (pycocotools ``COCOeval``) through
``torchmetrics.detection.MeanAveragePrecision``.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

__all__ = [
    "Accumulator", "class_error_positive", "class_error_all", "bbox_mae_positive", "bbox_mae_all",
    "cls_eval", "bbox_eval", "mean_average_precision", "COCO_IOU_THRESHOLDS", "confusion_matrix",
]

#: COCO's IoU thresholds 0.50, 0.55, ..., 0.95 (AP@[.5:.95]).
COCO_IOU_THRESHOLDS = [round(0.5 + 0.05 * i, 2) for i in range(10)]


class Accumulator:
    """Running sums of ``n`` quantities (d2l's ``Accumulator``).

    ``add(*values)`` adds each value (Python numbers or 0-d tensors, converted
    with ``float``) to its slot; ``acc[i]`` reads slot ``i``; ``reset()`` zeroes.
    :meth:`ratio` divides two slots, giving NaN (not an error, not 0) when the
    denominator is 0 -- e.g. a class error over positives in a batch without
    positives is undefined.

    Raises:
        ValueError: ``add`` gets a number of values other than ``n``.

    Source: d2l.ai §3.6 ``Accumulator`` (same interface, plus :meth:`ratio`).
    """

    def __init__(self, n: int):
        self.data = [0.0] * n

    def add(self, *args) -> None:
        if len(args) != len(self.data):
            raise ValueError(f"Accumulator holds {len(self.data)} values, got {len(args)}")
        self.data = [a + float(b) for a, b in zip(self.data, args)]

    def reset(self) -> None:
        self.data = [0.0] * len(self.data)

    def ratio(self, num: int, den: int) -> float:
        """``self[num] / self[den]``, NaN when the denominator is 0."""
        return self.data[num] / self.data[den] if self.data[den] else math.nan

    def __getitem__(self, idx: int) -> float:
        return self.data[idx]

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"Accumulator({self.data})"


def _check_cls(cls_preds, cls_labels):
    if not isinstance(cls_preds, torch.Tensor) or cls_preds.dim() != 3:
        raise ValueError("cls_preds must be a tensor (B, A, q + 1), got "
                         f"{tuple(cls_preds.shape) if isinstance(cls_preds, torch.Tensor) else type(cls_preds)}")
    if (not isinstance(cls_labels, torch.Tensor) or cls_labels.shape != cls_preds.shape[:2]
            or cls_labels.is_floating_point()):
        raise ValueError(f"cls_labels must be an integer tensor (B, A) = {tuple(cls_preds.shape[:2])}, got "
                         f"{tuple(cls_labels.shape) if isinstance(cls_labels, torch.Tensor) else type(cls_labels)}")


def _check_bbox(bbox_preds, bbox_labels, bbox_masks):
    for name, t in (("bbox_preds", bbox_preds), ("bbox_labels", bbox_labels), ("bbox_masks", bbox_masks)):
        if not isinstance(t, torch.Tensor) or t.dim() != 2 or not t.is_floating_point():
            raise ValueError(f"{name} must be a float tensor (B, A * 4)")
    if not bbox_preds.shape == bbox_labels.shape == bbox_masks.shape:
        raise ValueError("bbox_preds, bbox_labels and bbox_masks must have the same shape (B, A * 4), got "
                         f"{tuple(bbox_preds.shape)}, {tuple(bbox_labels.shape)}, {tuple(bbox_masks.shape)}")


def _class_error_counts(cls_preds, cls_labels):
    """``(errors on positives, positives, errors on all, anchors)`` as 0-d tensors (no sync)."""
    wrong = cls_preds.argmax(dim=-1) != cls_labels
    pos = cls_labels > 0
    return ((wrong & pos).sum(), pos.sum(), wrong.sum(),
            torch.tensor(wrong.numel(), device=wrong.device))


def _bbox_abs_counts(bbox_preds, bbox_labels, bbox_masks):
    """``(sum of |error| over masked entries, masked entries, all entries)`` as 0-d tensors."""
    err = ((bbox_preds.float() - bbox_labels.float()) * bbox_masks.float()).abs().sum()
    return err, bbox_masks.float().sum(), torch.tensor(bbox_masks.numel(), device=err.device)


def _result(num, den, return_counts):
    num, den = float(num), float(den)
    if return_counts:
        return num, den
    return num / den if den else math.nan


def class_error_positive(cls_preds: torch.Tensor, cls_labels: torch.Tensor, return_counts: bool = False):
    """Class error over the positive anchors only (anchors matched to an object).

    An anchor counts as an error when the arg-max of its logits differs from
    its label; only anchors with label ``> 0`` are counted. This is what tells
    whether the model finds the objects: an all-background predictor scores 1.0.

    Args:
        cls_preds: ``(B, A, q + 1)`` logits or probabilities.
        cls_labels: integer ``(B, A)``, 0 = background (from
            :func:`d2lssd.multibox_target`).
        return_counts: return ``(errors, positives)`` instead of the ratio.

    Returns:
        float in [0, 1] (NaN when there is no positive anchor), or the pair
        of floats.

    Raises:
        ValueError: shapes other than ``(B, A, q + 1)`` and ``(B, A)``, or
            float labels.

    Source: ours; d2l.ai §14.7.3.2 ``cls_eval`` restricted to positives.
    """
    _check_cls(cls_preds, cls_labels)
    e_pos, n_pos, _, _ = _class_error_counts(cls_preds, cls_labels)
    return _result(e_pos, n_pos, return_counts)


def class_error_all(cls_preds: torch.Tensor, cls_labels: torch.Tensor, return_counts: bool = False):
    """d2l's class error: over all anchors, background included.

    Dominated by the (easy) background anchors: an all-background predictor
    scores the fraction of positive anchors, about 0.2% on the banana data.
    Report it next to :func:`class_error_positive`, never alone.

    Args/Returns/Raises: as :func:`class_error_positive`; the counts are
    ``(errors, anchors)`` and the ratio is NaN only when there are no anchors.

    Source: d2l.ai §14.7.3.2 ``cls_eval`` (d2l counts correct anchors; this is
    ``1 - correct / total``).
    """
    _check_cls(cls_preds, cls_labels)
    _, _, e_all, n_all = _class_error_counts(cls_preds, cls_labels)
    return _result(e_all, n_all, return_counts)


def bbox_mae_positive(bbox_preds: torch.Tensor, bbox_labels: torch.Tensor, bbox_masks: torch.Tensor,
                      return_counts: bool = False):
    """Mean absolute offset error over the masked entries (positive anchors) only.

    Args:
        bbox_preds: float ``(B, A * 4)`` predicted offsets.
        bbox_labels: float ``(B, A * 4)`` target offsets.
        bbox_masks: float ``(B, A * 4)``, 1 for entries of positive anchors.
        return_counts: return ``(sum of |error| over masked entries, masked
            entries)`` instead of the ratio.

    Returns:
        float in offset units (variance-scaled, see :func:`d2lssd.offset_boxes`;
        NaN when nothing is masked), or the pair of floats.

    Raises:
        ValueError: the three tensors are not float ``(B, A * 4)`` of one shape.

    Source: ours; d2l.ai §14.7.3.2 ``bbox_eval`` divided by the masked count.
    """
    _check_bbox(bbox_preds, bbox_labels, bbox_masks)
    err, n_mask, _ = _bbox_abs_counts(bbox_preds, bbox_labels, bbox_masks)
    return _result(err, n_mask, return_counts)


def bbox_mae_all(bbox_preds: torch.Tensor, bbox_labels: torch.Tensor, bbox_masks: torch.Tensor,
                 return_counts: bool = False):
    """d2l's box MAE: masked absolute error divided by *all* ``B * A * 4`` entries.

    Shrinks with the share of negative anchors whatever the boxes are; shown
    for comparison with :func:`bbox_mae_positive`. Arguments as there; the
    counts are ``(sum of |error| over masked entries, all entries)``.

    Source: d2l.ai §14.7.3.2 ``bbox_eval``.
    """
    _check_bbox(bbox_preds, bbox_labels, bbox_masks)
    err, _, n_all = _bbox_abs_counts(bbox_preds, bbox_labels, bbox_masks)
    return _result(err, n_all, return_counts)


def cls_eval(cls_preds: torch.Tensor, cls_labels: torch.Tensor) -> float:
    """d2l's ``cls_eval``: the number of anchors whose arg-max class equals the label.

    Counts over *all* anchors, background included, so ``1 - cls_eval / numel``
    (d2l's "class err") is near 0 for a model that never finds an object
    (see the module docstring). Prefer :func:`class_error_positive` (error
    over the anchors matched to an object) and :func:`mean_average_precision`;
    :func:`class_error_all` is this error as a rate.

    Args:
        cls_preds: ``(B, A, q + 1)`` logits or probabilities (any float dtype;
            may require grad).
        cls_labels: integer ``(B, A)``, 0 = background (from
            :func:`d2lssd.multibox_target`).

    Returns:
        Python float: the count of correct anchors, an integer value in
        ``[0, B * A]`` (d2l's training loop adds it to an ``Accumulator``
        next to ``cls_labels.numel()``).

    Raises:
        ValueError: shapes other than ``(B, A, q + 1)`` and ``(B, A)``, or
            float labels.

    Source: d2l.ai §14.7.3.2 ``cls_eval`` (same name, arguments and value).
    """
    _check_cls(cls_preds, cls_labels)
    return float((cls_preds.argmax(dim=-1) == cls_labels).sum())


def bbox_eval(bbox_preds: torch.Tensor, bbox_labels: torch.Tensor, bbox_masks: torch.Tensor) -> float:
    """d2l's ``bbox_eval``: the sum of ``|(bbox_labels - bbox_preds) * bbox_masks|``.

    d2l divides this sum by *all* ``B * A * 4`` entries, masked-out ones
    included, which makes the "bbox mae" shrink with the share of background
    anchors whatever the boxes are. Prefer :func:`bbox_mae_positive` (divided
    by the masked entries) and :func:`mean_average_precision`;
    :func:`bbox_mae_all` is d2l's quotient as a rate.

    Args:
        bbox_preds: float ``(B, A * 4)`` predicted offsets (may require grad).
        bbox_labels: float ``(B, A * 4)`` target offsets.
        bbox_masks: float ``(B, A * 4)``, 1 for entries of positive anchors.

    Returns:
        Python float >= 0: the sum of absolute errors over the masked entries,
        in offset units (variance-scaled, see :func:`d2lssd.offset_boxes`),
        computed in the inputs' dtype as d2l does.

    Raises:
        ValueError: the three tensors are not float ``(B, A * 4)`` of one shape.

    Source: d2l.ai §14.7.3.2 ``bbox_eval`` (same name, arguments and value).
    """
    _check_bbox(bbox_preds, bbox_labels, bbox_masks)
    with torch.no_grad():  # a metric: no graph, and no warning for a tensor that requires grad
        return float(torch.abs((bbox_labels - bbox_preds) * bbox_masks).sum())


# --------------------------------------------------------------------------- mAP


def _rows(x, width: int, name: str) -> list[torch.Tensor]:
    """A ``(B, N, width)`` tensor or a sequence of ``(N_i, width)`` tensors -> list of
    float ``(N_i, width)`` CPU tensors without the rows whose class (column 0) is < 0."""
    if isinstance(x, torch.Tensor):
        if x.dim() != 3 or x.shape[-1] != width:
            raise ValueError(f"{name} must be a tensor (B, N, {width}) or a list of (N_i, {width}) "
                             f"tensors, got shape {tuple(x.shape)}")
        x = list(x.unbind(0))
    out = []
    for i, t in enumerate(x):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise ValueError(f"{name}[{i}] must be a float tensor (N, {width})")
        if t.numel() == 0:
            t = t.reshape(0, width)
        if t.dim() != 2 or t.shape[-1] != width:
            raise ValueError(f"{name}[{i}] must have shape (N, {width}), got {tuple(t.shape)}")
        if torch.isnan(t).any():
            raise ValueError(f"{name}[{i}] contains NaN")
        t = t.detach().cpu()
        out.append(t[t[:, 0] >= 0])
    return out


def mean_average_precision(detections, targets, iou_thresholds: Sequence[float] | None = None,
                           max_detections: int = 100) -> dict:
    """COCO-style average precision of detections against ground truth.

    Runs ``torchmetrics.detection.MeanAveragePrecision`` (box_format
    ``"xyxy"``, the pycocotools backend), i.e. the COCO evaluation: per class,
    detections of all images sorted by score, each matched greedily to the
    unmatched ground truth of its image and class with the highest IoU
    ``>= t``; precision interpolated (made monotone) and read at the 101
    recall points 0, 0.01, ..., 1; AP is their mean, then averaged over
    classes that have ground truth ("macro"). At most ``max_detections``
    highest-scoring detections per image and class are used.

    Args:
        detections: float ``(B, K, 6)`` rows ``(class, score, xmin, ymin,
            xmax, ymax)`` as returned by :func:`d2lssd.multibox_detection`
            (rows with class ``-1`` are dropped), or a list of ``B`` tensors
            ``(K_i, 6)`` as returned by :func:`d2lssd.train.predict`.
        targets: float ``(B, G, 5)`` rows ``(class, xmin, ymin, xmax, ymax)``
            (padding rows with class ``-1`` are dropped), or a list of ``B``
            tensors ``(G_i, 5)``. Boxes in the same unit as the detections
            (normalized corner format in d2lssd), classes ``0 .. q - 1``.
        iou_thresholds: IoU thresholds; default COCO's 0.50:0.05:0.95
            (:data:`COCO_IOU_THRESHOLDS`). ``AP50`` needs 0.5 in the list.
        max_detections: detections per image and class kept (COCO: 100), >= 10.

    Returns:
        dict with

        * ``"AP"``: float, COCO AP averaged over ``iou_thresholds``
          (AP@[.5:.95] with the default), 101-point interpolation;
        * ``"AP50"``: float, AP at IoU 0.5 (101-point interpolation, *not*
          VOC07's 11-point AP); NaN when 0.5 is not among the thresholds;
        * ``"AP75"``: float, AP at IoU 0.75 (NaN when not among them);
        * ``"AP50_per_class"``: dict ``{class: AP at IoU 0.5}`` (NaN for a
          class that only has detections);
        * ``"classes"``: list of the class ids evaluated (sorted);
        * ``"iou_thresholds"``: list of floats;
        * ``"recall"``: float tensor ``(101,)``, the recall points;
        * ``"precision"``: float tensor ``(T, K, 101)``: interpolated
          precision for each IoU threshold, class and recall point (-1 where a
          class has no ground truth): the PR curve to plot is
          ``recall`` vs ``precision[t, k]``;
        * ``"num_images"``, ``"num_detections"``, ``"num_targets"``: ints.

        All AP values are NaN when there is no ground-truth box at all
        (COCO's -1 is turned into NaN).

    Raises:
        ValueError: malformed inputs, different numbers of images, NaN,
            thresholds outside [0, 1] or ``max_detections < 10``.
        ModuleNotFoundError: torchmetrics or pycocotools is not installed.

    Under ``torch.distributed`` the result is still that of the given
    detections only (the torchmetrics object is made with
    ``sync_on_compute=False``: it never gathers other processes' states, so
    rank 0 can evaluate alone while the other ranks train on).

    Source: COCO detection evaluation (Lin et al. 2014; pycocotools
    ``COCOeval``) via ``torchmetrics.detection.MeanAveragePrecision``.
    """
    dets = _rows(detections, 6, "detections")
    gts = _rows(targets, 5, "targets")
    if len(dets) != len(gts):
        raise ValueError(f"detections and targets must cover the same images, got {len(dets)} and {len(gts)}")
    ious = list(COCO_IOU_THRESHOLDS if iou_thresholds is None else [float(t) for t in iou_thresholds])
    if not ious or not all(0.0 <= t <= 1.0 for t in ious):
        raise ValueError(f"iou_thresholds must be a non-empty list of values in [0, 1], got {iou_thresholds}")
    if int(max_detections) != max_detections or max_detections < 10:
        raise ValueError(f"max_detections must be an integer >= 10, got {max_detections}")
    try:
        from torchmetrics.detection import MeanAveragePrecision
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError("mean_average_precision needs torchmetrics and pycocotools: "
                                  "pip install torchmetrics pycocotools") from e

    metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", iou_thresholds=ious,
                                  max_detection_thresholds=[1, 10, int(max_detections)],
                                  extended_summary=True, backend="pycocotools",
                                  sync_on_compute=False)  # these detections only: no all_gather under DDP
    metric.warn_on_many_detections = False
    preds = [{"boxes": d[:, 2:6].float(), "scores": d[:, 1].float(), "labels": d[:, 0].long()} for d in dets]
    target = [{"boxes": g[:, 1:5].float(), "labels": g[:, 0].long()} for g in gts]
    metric.update(preds, target)
    res = metric.compute()

    classes = sorted({int(c) for d in dets for c in d[:, 0].tolist()}
                     | {int(c) for g in gts for c in g[:, 0].tolist()})
    recall = torch.tensor(metric.rec_thresholds, dtype=torch.float32)
    prec = res.get("precision")
    if isinstance(prec, torch.Tensor) and prec.dim() == 5:
        precision = prec[:, :, :, 0, -1].permute(0, 2, 1).float()  # (T, K, R): area "all", most dets
    else:  # no images or nothing to evaluate
        precision = torch.full((len(ious), len(classes), len(recall)), -1.0)

    def ap_at(t: float, k: int | None = None) -> float:
        idx = [i for i, u in enumerate(ious) if abs(u - t) < 1e-9]
        if not idx:
            return math.nan
        p = precision[idx[0]] if k is None else precision[idx[0], k:k + 1]
        p = p[(p > -1).all(dim=-1)]  # classes with ground truth
        return float(p.mean()) if p.numel() else math.nan

    n_gt = sum(len(g) for g in gts)
    ap = float(res["map"]) if n_gt else math.nan
    return {
        "AP": ap if ap > -1 else math.nan,
        "AP50": ap_at(0.5) if n_gt else math.nan,
        "AP75": ap_at(0.75) if n_gt else math.nan,
        "AP50_per_class": {c: ap_at(0.5, k) for k, c in enumerate(classes)},
        "classes": classes,
        "iou_thresholds": ious,
        "recall": recall,
        "precision": precision,
        "num_images": len(gts),
        "num_detections": sum(len(d) for d in dets),
        "num_targets": n_gt,
    }


def confusion_matrix(detections: Sequence[torch.Tensor], targets: Sequence[torch.Tensor], num_classes: int,
                     iou_threshold: float = 0.5, score_threshold: float = 0.25) -> torch.Tensor:
    """A detection confusion matrix with a background row and column.

    Per image, the detections scoring at least ``score_threshold`` are
    visited by descending score; each is matched to the not yet matched
    ground truth (of **any** class) it overlaps most, if that IoU is at least
    ``iou_threshold``. Then ``M[p, g]`` counts:

    * a matched pair: detection of class ``p``, ground truth of class ``g``
      (the diagonal is right; off it, a box in the right place with the wrong class);
    * ``M[p, q]`` (last column, *background*): a detection of class ``p`` on
      no object (a false positive);
    * ``M[q, g]`` (last row): a ground truth of class ``g`` that no detection
      found (a miss).

    Args:
        detections: per image, float ``(K, 6)`` rows ``(class, score, xmin,
            ymin, xmax, ymax)`` (classes ``0 .. q - 1``, e.g. :func:`d2lssd.predict`'s).
        targets: per image, float ``(G, 5)`` rows ``(class, xmin, ymin, xmax,
            ymax)`` in the same units; rows with class < 0 are padding.
        num_classes: ``q``.
        iou_threshold, score_threshold: in [0, 1].

    Returns:
        int64 ``(q + 1, q + 1)``: rows predicted class (``q`` = background),
        columns true class (``q`` = background); ``M[q, q]`` is 0.

    Raises:
        ValueError: different numbers of images, a bad ``num_classes`` or
            threshold, a class outside ``0 .. q - 1``, rows of the wrong shape.

    Source: the layout of Ultralytics' ``ConfusionMatrix`` (predictions as
    rows, a background row and column); the matching is AP's greedy one.
    """
    from .boxes import box_iou

    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    for name, v in (("iou_threshold", iou_threshold), ("score_threshold", score_threshold)):
        if not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {v}")
    if len(detections) != len(targets):
        raise ValueError(f"detections and targets must have one entry per image, got {len(detections)} and "
                         f"{len(targets)}")
    q = num_classes
    m = torch.zeros((q + 1, q + 1), dtype=torch.int64)
    for i, (det, gt) in enumerate(zip(detections, targets)):
        det, gt = torch.as_tensor(det).float().cpu(), torch.as_tensor(gt).float().cpu()
        if det.dim() != 2 or det.shape[-1] != 6 or gt.dim() != 2 or gt.shape[-1] != 5:
            raise ValueError(f"image {i}: detections must be (K, 6) and targets (G, 5), got "
                             f"{tuple(det.shape)} and {tuple(gt.shape)}")
        gt = gt[gt[:, 0] >= 0]
        det = det[det[:, 1] >= score_threshold]
        det = det[det[:, 1].argsort(descending=True, stable=True)]
        classes = torch.cat((det[:, 0], gt[:, 0])).long()
        if len(classes) and (classes.min() < 0 or classes.max() >= q):
            raise ValueError(f"image {i}: classes must be in 0 .. {q - 1}")
        used = torch.zeros(len(gt), dtype=torch.bool)
        iou = box_iou(det[:, 2:], gt[:, 1:]) if len(det) and len(gt) else torch.zeros((len(det), len(gt)))
        for k in range(len(det)):
            p = int(det[k, 0])
            if len(gt):
                best = iou[k].masked_fill(used, -1.0)
                j = int(best.argmax())
                if best[j] >= iou_threshold:
                    used[j] = True
                    m[p, int(gt[j, 0])] += 1
                    continue
            m[p, q] += 1
        for g in gt[~used, 0].long().tolist():
            m[q, g] += 1
    return m
