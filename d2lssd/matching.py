"""Labeling anchors: match each anchor to a ground-truth box, then encode targets.

Matching follows SSD (Liu et al. 2016, §2.2 "Matching strategy") and d2l.ai
§14.4.3.1: every ground truth first gets its own best anchor (so no object is
left without a positive), then every other anchor whose best IoU with some
ground truth reaches ``iou_threshold`` is assigned to that ground truth.

Differences from d2l (same names, arguments and results otherwise):

* Batched and loop-free over anchors and boxes. d2l's forced assignment is a
  greedy loop that repeatedly takes the largest remaining IoU. We compute the
  *same* assignment in rounds: in each round, every (anchor, ground truth) pair
  that is the best of its row and of its column among what is still free is
  committed at once. The globally largest pair is always such a pair, so each
  round commits at least one match; in practice one or two rounds suffice.
  Ties are broken like d2l's ``argmax`` on the flattened matrix (lowest anchor,
  then lowest ground-truth index). Unlike the one-shot forced match of
  torchvision and ssd.pytorch, two ground truths whose best anchor is the same
  both keep a positive: the second gets its next-best free anchor.
* Padding rows (class ``-1``) never take part: d2l's loop runs once per label
  row, padding included, and forces an anchor onto the padding box, giving that
  anchor a positive box mask and offset targets like -69.
"""

from __future__ import annotations

import torch

from ._checks import check_boxes, check_float, check_same_device
from .boxes import _box_iou
from .offsets import _encode

__all__ = ["assign_anchor_to_bbox", "multibox_target", "check_labels"]


def _greedy_forced_match(iou: torch.Tensor, valid: torch.Tensor,
                         best_g: torch.Tensor | None = None) -> torch.Tensor:
    """d2l's greedy one-to-one matching, computed in rounds of mutual best pairs.

    Args:
        iou: ``(B, A, G)`` IoU in [0, 1], with the columns of invalid ground
            truths already set to -1. Not modified.
        valid: ``(B, G)`` bool, which ground truths take part.
        best_g: optional ``iou.argmax(dim=2)``, if the caller has it already.

    Returns:
        ``(B, G)`` long: the anchor forced onto each ground truth, ``-1`` for
        invalid ground truths (and for valid ones when there are more ground
        truths than anchors).
    """
    B, A, G = iou.shape
    gt_anchor = torch.full((B, G), -1, dtype=torch.long, device=iou.device)
    active = valid.clone()
    g_idx = torch.arange(G, device=iou.device)
    work = iou
    while True:
        best_val, best_a = work.max(dim=1)  # (B, G): best free anchor per ground truth
        if best_g is None:
            best_g = work.argmax(dim=2)  # (B, A): best free ground truth per anchor
        mutual = active & (best_val >= 0) & (best_g.gather(1, best_a) == g_idx)
        if not bool(mutual.any()):
            return gt_anchor
        gt_anchor = torch.where(mutual, best_a, gt_anchor)
        active &= ~mutual
        if not bool(active.any()):
            return gt_anchor
        # Take the matched rows and columns out (value -2, below any IoU and
        # below the -1 of invalid columns). Mutual pairs never share an anchor.
        bm, gm = mutual.nonzero(as_tuple=True)
        work = work.masked_fill(mutual[:, None, :], -2.0)
        work[bm, best_a[bm, gm], :] = -2.0
        best_g = None


def assign_anchor_to_bbox(ground_truth: torch.Tensor, anchors: torch.Tensor, device=None,
                          iou_threshold: float = 0.5, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Assign a ground-truth box to every anchor, or ``-1`` (background).

    Args:
        ground_truth: float tensor ``(G, 4)`` or batched ``(B, G, 4)``, corner
            format, normalized (or any unit shared with ``anchors``). ``G`` may be 0.
        anchors: float tensor ``(A, 4)`` or ``(1 or B, A, 4)``, corner format.
        device: ignored; kept for d2l's argument order. The result is on
            ``anchors``' device.
        iou_threshold: an unforced anchor is assigned when its best IoU is
            ``>= iou_threshold`` (d2l's rule), in [0, 1].
        valid: optional bool ``(G,)`` or ``(B, G)``: ground truths to use
            (padding rows are ``False``). Default: all.

    Returns:
        long tensor ``(A,)`` (or ``(B, A)`` for batched input): index of the
        assigned ground truth, ``-1`` for background. Every valid ground truth
        has at least one anchor (its forced one) whenever ``A >= G``.

    Raises:
        ValueError: bad shapes, non-float boxes, NaN, degenerate boxes among
            the valid ones, mismatched devices or a threshold outside [0, 1].

    Source: d2l.ai §14.4.3.1 ``assign_anchor_to_bbox`` (same result, see the
    module docstring for how the loop is avoided); Liu et al. 2016 §2.2.
    """
    batched = ground_truth.dim() == 3 if isinstance(ground_truth, torch.Tensor) else False
    check_same_device(ground_truth=ground_truth, anchors=anchors)
    check_boxes(ground_truth, "ground_truth", min_dim=2, max_dim=3, check_order=False)
    check_boxes(anchors, "anchors", min_dim=2, max_dim=3)
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    gt = ground_truth if batched else ground_truth[None]
    anc = anchors if anchors.dim() == 3 else anchors[None]
    if valid is None:
        valid = torch.ones(gt.shape[:2], dtype=torch.bool, device=gt.device)
    else:
        if not isinstance(valid, torch.Tensor) or valid.dtype != torch.bool:
            raise ValueError("valid must be a bool tensor")
        valid = valid if valid.dim() == 2 else valid[None]
        if valid.shape[-1] != gt.shape[1]:
            raise ValueError(f"valid must have one entry per ground truth ({gt.shape[1]}), "
                             f"got shape {tuple(valid.shape)}")
        valid = valid.expand(gt.shape[0], -1).to(gt.device)
    _check_valid_order(gt, valid, "ground_truth")
    out = _assign(gt, anc, valid, iou_threshold)
    return out if batched or anchors.dim() == 3 and anchors.shape[0] > 1 else out[0]


def _check_valid_order(gt: torch.Tensor, valid: torch.Tensor, name: str) -> None:
    bad = valid & ((gt[..., 2] < gt[..., 0]) | (gt[..., 3] < gt[..., 1]))
    if bool(bad.any()):
        first = bad.nonzero()[0].tolist()
        raise ValueError(f"{name} has a degenerate box (xmax < xmin or ymax < ymin) at index "
                         f"{first}: {gt[tuple(first)].tolist()}")


def _assign(gt: torch.Tensor, anchors: torch.Tensor, valid: torch.Tensor,
            iou_threshold: float) -> torch.Tensor:
    """Batched assignment without checks: gt (B, G, 4), anchors (1|B, A, 4), valid (B, G) -> (B, A)."""
    B, G = gt.shape[:2]
    A = anchors.shape[1]
    if G == 0:
        return torch.full((B, A), -1, dtype=torch.long, device=anchors.device)
    iou = _box_iou(anchors, gt)  # (B, A, G), a fresh tensor we may modify
    iou.masked_fill_(~valid[:, None, :], -1.0)  # invalid columns lose every comparison (no sync to skip it)
    max_iou, best_gt = iou.max(dim=2)
    assigned = torch.where(max_iou >= iou_threshold, best_gt, -1)
    forced = _greedy_forced_match(iou, valid, best_gt)  # (B, G)
    fb, fg = (forced >= 0).nonzero(as_tuple=True)
    assigned[fb, forced[fb, fg]] = fg
    return assigned


def multibox_target(anchors: torch.Tensor, labels: torch.Tensor, iou_threshold: float = 0.5):
    """Training targets for every anchor of every image in a batch.

    Args:
        anchors: float tensor ``(1, A, 4)`` (or ``(A, 4)``), corner format,
            normalized; the same anchors for every image, as a model returns them.
        labels: float tensor ``(B, G, 5)``: per image ``G`` rows
            ``(class, xmin, ymin, xmax, ymax)``, normalized corner format,
            classes ``0 .. q-1``; rows with class ``-1`` are padding and are
            ignored. ``G`` may be 0 and an image may have only padding: its
            anchors are all background.
        iou_threshold: see :func:`assign_anchor_to_bbox`.

    Returns:
        ``(bbox_offset, bbox_mask, class_labels)`` as in d2l:

        * ``bbox_offset``: float ``(B, A * 4)``, the encoded offsets
          (:func:`~d2lssd.offsets.offset_boxes`) of each positive anchor's
          ground truth; 0 for negatives.
        * ``bbox_mask``: float ``(B, A * 4)``, 1 for the 4 entries of a positive
          anchor, else 0.
        * ``class_labels``: long ``(B, A)``, ``class + 1`` for positives, 0
          (background) for negatives.

    Raises:
        ValueError: ``labels`` not a float ``(B, G, 5)`` tensor, NaN, a
            degenerate non-padding box, anchors of the wrong shape or with zero
            size, or anchors and labels on different devices.

    Source: d2l.ai §14.4.3 ``multibox_target`` (same name, arguments and
    outputs; batched, loop-free, padding-safe, see the module docstring);
    Liu et al. 2016 §2.2.
    """
    check_same_device(anchors=anchors, labels=labels)
    check_boxes(anchors, "anchors", min_dim=2, max_dim=3)
    check_labels(labels)
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    anc = anchors if anchors.dim() == 3 else anchors[None]
    if anc.shape[0] != 1:
        raise ValueError(f"anchors must have shape (1, A, 4) or (A, 4), got {tuple(anchors.shape)}")
    if anc.numel() and bool(((anc[..., 2:] - anc[..., :2]) <= 0).any()):
        raise ValueError("anchors must have positive width and height")
    return _multibox_target(anc, labels, iou_threshold)


def check_labels(labels) -> None:
    """Validate a batch of ground-truth labels as :func:`multibox_target` takes them.

    Args:
        labels: float ``(B, G, 5)`` rows ``(class, xmin, ymin, xmax, ymax)``,
            class ``-1`` for padding.

    Raises:
        ValueError: not a float ``(B, G, 5)`` tensor, NaN, or a non-padding
            box with ``xmax < xmin`` or ``ymax < ymin``.

    Costs one pass over the labels and, on a GPU, a host sync; the training
    loop calls it on the loader's CPU tensors, before they move (no sync).

    Source: ours.
    """
    check_float(labels, "labels")
    if labels.dim() != 3 or labels.shape[-1] != 5:
        raise ValueError("labels must have shape (B, G, 5) with rows (class, xmin, ymin, xmax, ymax), "
                         f"got {tuple(labels.shape)}")
    _check_valid_order(labels[..., 1:], labels[..., 0] >= 0, "labels")


def _multibox_target(anc: torch.Tensor, labels: torch.Tensor, iou_threshold: float = 0.5):
    """:func:`multibox_target` without checks: ``anc`` ``(1, A, 4)``, ``labels`` ``(B, G, 5)``.

    Host syncs left (data-dependent sizes): the rounds of the forced match
    (usually one or two) and the positives' ``nonzero``.
    """
    B = labels.shape[0]
    valid = labels[..., 0] >= 0
    gt = labels[..., 1:]
    assigned = _assign(gt, anc, valid, iou_threshold)  # (B, A)
    A = anc.shape[1]
    # Only positives need targets: encode them alone (a few per image) and
    # scatter into zero tensors.
    pb, pa = (assigned >= 0).nonzero(as_tuple=True)
    pg = assigned[pb, pa]
    # One allocation for both float outputs: fresh memory is what costs most here.
    out = torch.zeros((2, B, A, 4), dtype=anc.dtype, device=anc.device)
    offsets, mask = out[0], out[1]
    offsets[pb, pa] = _encode(anc[0, pa], gt[pb, pg].to(anc.dtype))
    mask[pb, pa] = 1.0
    class_labels = torch.zeros((B, A), dtype=torch.long, device=anc.device)
    class_labels[pb, pa] = labels[pb, pg, 0].long() + 1
    return offsets.reshape(B, -1), mask.reshape(B, -1), class_labels
