"""Non-maximum suppression and turning SSD outputs into detections.

Semantics are torchvision's: boxes are visited in order of descending score
(ties: lower index first); a box is suppressed when its IoU with an already
kept box is strictly greater than ``iou_threshold``; the kept indices come out
sorted by descending score. Integer boxes, scores and class probabilities are
accepted and promoted to the default float dtype (``torch.get_default_dtype()``);
float inputs are used as they are.

Greedy NMS is sequential by nature. We make it vectorised and loop-free over
boxes by processing the sorted boxes in blocks (like torchvision's CUDA kernel,
which works on 64-box blocks): each block of still-alive boxes is resolved
among itself exactly by a fixed-point iteration on its (small) suppression
matrix, and its kept boxes then remove, in one IoU matrix, every later box they
suppress. The Python loop runs over blocks of 64 surviving boxes, never over
single boxes.

Sources: d2l.ai §14.4.4 (``nms``, ``multibox_detection``);
``torchvision.ops.nms`` / ``batched_nms`` (semantics we test against);
Liu et al. 2016 §3 (per-class NMS, top-k per image).
"""

from __future__ import annotations

import torch

from ._checks import as_float, as_float_boxes, check_same_device
from .boxes import _box_iou, _upcast
from .offsets import _decode

__all__ = ["nms", "batched_nms", "multibox_detection"]

_BLOCK = 64  # boxes resolved together; torchvision's CUDA kernel uses 64-box blocks too
_TILE = 1 << 17  # pairs per IoU tile: temporaries stay in cache (much faster on CPU)


def _threshold_above(t: float, dtype: torch.dtype) -> float:
    """Smallest value ``u`` of ``dtype`` with ``u > t``, so ``iou >= u`` equals ``iou > t``
    evaluated in double precision, exactly as torchvision's kernels compare."""
    if dtype == torch.float64:
        return float(torch.nextafter(torch.tensor(t, dtype=dtype), torch.tensor(2.0, dtype=dtype)))
    tt = torch.tensor(t, dtype=torch.float32)
    if float(tt) <= t:
        tt = torch.nextafter(tt, torch.tensor(2.0))
    return float(tt)


def _overlaps(coords: torch.Tensor, areas: torch.Tensor, ia: torch.Tensor, ib: torch.Tensor,
              u: float, groups: torch.Tensor | None) -> torch.Tensor:
    """Bool ``(len(ia), len(ib))``: IoU(box ia, box ib) >= u and same group.

    ``coords`` is ``(4, N)`` (xmin, ymin, xmax, ymax rows, contiguous) and
    ``areas`` ``(N,)``; the IoU arithmetic is torchvision's, step for step.
    Computed in tiles of about ``_TILE`` pairs so temporaries stay in cache.
    """
    ax1, ay1, ax2, ay2 = coords[:, ia, None]
    area_a = areas[ia, None]
    step = max(1, _TILE // max(1, ia.shape[0]))
    parts = []
    for s in range(0, ib.shape[0], step):
        jb = ib[s:s + step]
        bx1, by1, bx2, by2 = coords[:, None, jb]
        inter = torch.minimum(ax2, bx2).sub_(torch.maximum(ax1, bx1)).clamp_(min=0)
        inter.mul_(torch.minimum(ay2, by2).sub_(torch.maximum(ay1, by1)).clamp_(min=0))
        iou = inter.div_((area_a + areas[None, jb]).sub_(inter))
        over = iou >= u  # NaN (two zero-area boxes) compares False: IoU 0
        if groups is not None:
            over &= groups[ia, None] == groups[None, jb]
        parts.append(over)
    if not parts:
        return torch.zeros((ia.shape[0], 0), dtype=torch.bool, device=coords.device)
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


def _resolve_block(over: torch.Tensor) -> torch.Tensor:
    """Greedy keep-mask for boxes in score order, given the bool matrix "IoU > t".

    ``keep[i]`` must equal "no kept ``j < i`` with ``over[j, i]``". Starting
    from "keep all", one Jacobi sweep fixes at least one more leading entry, so
    the iteration reaches the greedy answer (the unique fixed point) in at most
    ``S`` sweeps, usually two or three.
    """
    s = over.shape[0]
    sup = torch.triu(over, diagonal=1)  # sup[j, i]: j comes before i and overlaps it
    keep = torch.ones(s, dtype=torch.bool, device=over.device)
    if not bool(sup.any()):
        return keep
    sup_f = sup.to(torch.float32)
    while True:
        new = (keep.to(torch.float32) @ sup_f) == 0
        if torch.equal(new, keep):
            return keep
        keep = new


def _nms_sorted(boxes: torch.Tensor, u: float, groups: torch.Tensor | None) -> torch.Tensor:
    """Positions of the boxes kept by greedy NMS; ``boxes`` sorted by descending score
    (with ``groups``: sorted by group, and by descending score within a group).

    The survivors (not yet suppressed) are taken a block at a time: the block
    is resolved exactly among itself, then its kept boxes remove everything
    they suppress from the rest. Each kept box is compared once with the boxes
    still alive after it, as in torchvision's CPU kernel, but a block at a time.
    """
    b = _upcast(boxes)
    coords = b.t().contiguous()  # (4, N)
    areas = (coords[2] - coords[0]) * (coords[3] - coords[1])
    alive = torch.arange(boxes.shape[0], device=boxes.device)
    kept = []
    while alive.numel():
        blk, rest = alive[:_BLOCK], alive[_BLOCK:]
        # A block within one group (the usual case) needs no group mask: the
        # rest's prefix compared with it below is of that same group too.
        g = None if groups is None or bool(groups[blk[0]] == groups[blk[-1]]) else groups
        new = blk[_resolve_block(_overlaps(coords, areas, blk, blk, u, g))]
        kept.append(new)
        if not rest.numel():
            break
        if groups is None:
            alive = rest[~_overlaps(coords, areas, new, rest, u, None).any(dim=0)]
        else:
            # Sorted by group: only the rest's prefix shares a group with the block.
            n = int(torch.searchsorted(groups[rest], groups[blk[-1]], right=True))
            same = rest[:n]
            alive = torch.cat((same[~_overlaps(coords, areas, new, same, u, g).any(dim=0)], rest[n:]))
    return torch.cat(kept) if kept else alive


def _check_nms_inputs(boxes, scores, iou_threshold):
    """Validate; return ``(boxes, scores)`` with integer tensors promoted to floats."""
    check_same_device(boxes=boxes, scores=scores)
    boxes = as_float_boxes(boxes, "boxes", min_dim=2, max_dim=2)
    scores = as_float(scores, "scores")
    if scores.dim() != 1 or scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"scores must have shape (N,) = ({boxes.shape[0]},), got {tuple(scores.shape)}")
    if not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    return boxes, scores


def _upcast_dtype(t: torch.Tensor) -> torch.dtype:
    return _upcast(t[:0]).dtype


def _nms(boxes, scores, iou_threshold, groups=None):
    """:func:`nms` / :func:`batched_nms` without checks."""
    if groups is not None and groups.numel() and bool(groups.min() == groups.max()):
        groups = None  # one group (one image, one class): plain NMS gives the same result
    order = torch.sort(scores, descending=True, stable=True).indices
    if groups is not None:
        # Group by group (then score): a group's boxes are contiguous, so each
        # block is compared only with the boxes of its own groups.
        order = order[torch.sort(groups[order], stable=True).indices]
    g = groups[order] if groups is not None else None
    b = boxes[order]
    kept = order[_nms_sorted(b, _threshold_above(float(iou_threshold), _upcast_dtype(b)), g)]
    if groups is not None:
        # Back to one list by descending score, equal scores by lower index.
        kept = kept.sort().values
        kept = kept[torch.sort(scores[kept], descending=True, stable=True).indices]
    return kept


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression.

    Args:
        boxes: tensor ``(N, 4)``, corner format, any unit (N may be 0);
            floating-point, or integer (promoted to the default float dtype;
            ``torchvision.ops.nms`` takes floats only).
        scores: tensor ``(N,)``, same device; floating-point or integer
            (promoted likewise).
        iou_threshold: in [0, 1]; a box is discarded when its IoU with a
            higher-scoring kept box is strictly greater than this.

    Returns:
        int64 tensor ``(K,)`` of indices into ``boxes`` of the kept boxes,
        sorted by descending score (equal scores: lower index first, where
        d2l's unstable ``argsort`` leaves the order of ties unspecified).

    Raises:
        ValueError: wrong shapes, input neither float nor integer, NaN,
            degenerate boxes, different devices, or a threshold outside [0, 1].

    Source: d2l.ai §14.4.4 ``nms`` (same name and arguments);
    ``torchvision.ops.nms`` (same results; tested).
    """
    boxes, scores = _check_nms_inputs(boxes, scores, iou_threshold)
    return _nms(boxes, scores, iou_threshold)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor,
                iou_threshold: float) -> torch.Tensor:
    """Non-maximum suppression done independently within each group (class, image, ...).

    Boxes with different ``idxs`` never suppress each other. Unlike the usual
    trick of shifting each group's coordinates far apart, groups are compared
    directly, so no precision is lost however many groups there are.

    Args:
        boxes: tensor ``(N, 4)``, corner format; floating-point, or integer
            (promoted to the default float dtype).
        scores: tensor ``(N,)``, floating-point or integer (promoted likewise).
        idxs: integer tensor ``(N,)``, the group of each box.
        iou_threshold: as in :func:`nms`.

    Returns:
        int64 tensor ``(K,)`` of kept indices sorted by descending score.

    Raises:
        ValueError: as :func:`nms`, or ``idxs`` not an integer ``(N,)`` tensor.

    Source: ``torchvision.ops.batched_nms`` (same arguments and results; tested).
    """
    boxes, scores = _check_nms_inputs(boxes, scores, iou_threshold)
    if (not isinstance(idxs, torch.Tensor) or idxs.shape != scores.shape
            or idxs.is_floating_point() or idxs.is_complex()):
        raise ValueError(f"idxs must be an integer tensor of shape ({scores.shape[0]},)")
    check_same_device(boxes=boxes, idxs=idxs)
    return _nms(boxes, scores, iou_threshold, idxs)


def multibox_detection(cls_probs: torch.Tensor, offset_preds: torch.Tensor, anchors: torch.Tensor,
                       nms_threshold: float = 0.5, pos_threshold: float = 0.009999999,
                       top_k: int | None = None, class_agnostic: bool = False) -> torch.Tensor:
    """Detections from SSD outputs: decode, score threshold, NMS, top-k, for a batch.

    Each anchor proposes one detection: its most likely non-background class
    and that probability as the score, and its decoded box. Proposals scoring
    below ``pos_threshold`` are dropped, NMS runs per image and per class, and
    each image's detections are sorted by descending score.

    Args:
        cls_probs: ``(B, q + 1, A)`` class probabilities (softmax over
            dim 1), class 0 background; d2l's layout.
        offset_preds: ``(B, A * 4)`` (d2l's layout) or ``(B, A, 4)``
            predicted offsets (see :func:`~d2lssd.offsets.offset_inverse`).
        anchors: ``(1, A, 4)`` (or ``(A, 4)``), corner format, normalized.
            The three are floating-point tensors, or integer ones, which are
            promoted to the default float dtype (d2l's NMS section passes
            int64 zero offsets, ``torch.tensor([0] * anchors.numel())``).
        nms_threshold: IoU above which a lower-scoring box is suppressed.
        pos_threshold: minimum score of a detection.
        top_k: keep at most this many rows per image (default: all ``A``).
        class_agnostic: if True, boxes of different classes suppress each
            other, as in d2l; default False: per-class NMS, as in the SSD paper
            and torchvision.

    Returns:
        float tensor ``(B, K, 6)`` (float32 for float32 or integer inputs)
        with ``K = min(A, top_k)``; rows
        ``(class, score, xmin, ymin, xmax, ymax)`` with normalized corner
        boxes (not clipped). Each image's kept detections come first, by
        descending score; the remaining rows have class ``-1`` and hold the
        other proposals (suppressed or below threshold) by descending score.

        Differences from d2l: per-class NMS by default; removed rows keep
        their score (d2l shows ``1 - score`` for those below the threshold)
        and are sorted by score rather than by anchor index; ``top_k``.
        With ``class_agnostic=True`` the rows with class >= 0 equal d2l's.

    Raises:
        ValueError: wrong shapes, dtypes other than float or integer, NaN,
            degenerate anchors, mismatched devices or anchor counts,
            thresholds outside [0, 1], or ``top_k < 1``.

    Source: d2l.ai §14.4.4 ``multibox_detection`` (same name and first five
    arguments); Liu et al. 2016 §3 "Inference".
    """
    check_same_device(cls_probs=cls_probs, offset_preds=offset_preds, anchors=anchors)
    cls_probs = as_float(cls_probs, "cls_probs")
    if cls_probs.dim() != 3 or cls_probs.shape[1] < 2:
        raise ValueError("cls_probs must have shape (B, q + 1, A) with q >= 1, got "
                         f"{tuple(cls_probs.shape)}")
    B, _, A = cls_probs.shape
    offset_preds = as_float(offset_preds, "offset_preds")
    if offset_preds.shape not in ((B, A * 4), (B, A, 4)):
        raise ValueError(f"offset_preds must have shape (B, A*4) = ({B}, {A * 4}) or (B, A, 4), got "
                         f"{tuple(offset_preds.shape)}")
    anchors = as_float_boxes(anchors, "anchors", min_dim=2, max_dim=3)
    anc = anchors if anchors.dim() == 3 else anchors[None]
    if anc.shape[0] != 1 or anc.shape[1] != A:
        raise ValueError(f"anchors must have shape (1, A, 4) with A = {A} (from cls_probs), got "
                         f"{tuple(anchors.shape)}")
    for name, v in (("nms_threshold", nms_threshold), ("pos_threshold", pos_threshold)):
        if not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {v}")
    if top_k is not None and int(top_k) < 1:
        raise ValueError(f"top_k must be a positive integer or None, got {top_k}")
    K = A if top_k is None else min(A, int(top_k))
    device = cls_probs.device

    conf, class_id = cls_probs[:, 1:, :].max(dim=1)  # (B, A)
    boxes = _decode(anc, offset_preds.reshape(B, A, 4).to(anc.dtype))  # (B, A, 4)
    cand_b, cand_a = (conf >= pos_threshold).nonzero(as_tuple=True)
    groups = cand_b if class_agnostic else cand_b * (cls_probs.shape[1] - 1) + class_id[cand_b, cand_a]
    kept = _nms(boxes[cand_b, cand_a], conf[cand_b, cand_a], nms_threshold, groups)
    is_kept = torch.zeros((B, A), dtype=torch.bool, device=device)
    is_kept[cand_b[kept], cand_a[kept]] = True
    # Kept rows first, then the rest, each by descending score: sort by score,
    # then stable-sort by "kept" (adding an offset to kept scores instead would
    # lose the order of scores closer than float32 resolution near 2).
    order = torch.sort(conf, dim=1, descending=True, stable=True).indices
    by_kept = torch.sort(is_kept.gather(1, order).to(torch.uint8), dim=1, descending=True, stable=True)
    order = order.gather(1, by_kept.indices)[:, :K]
    cls_out = torch.where(is_kept, class_id, -1).gather(1, order)
    out = torch.cat((cls_out[..., None].to(boxes.dtype), conf.gather(1, order)[..., None],
                     boxes.gather(1, order[..., None].expand(-1, -1, 4))), dim=-1)
    return out
