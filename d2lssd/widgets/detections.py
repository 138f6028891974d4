"""Fake detector output for the NMS chapter: scored boxes jittered around ground truth.

No plotting here (and no matplotlib): :func:`detections_like_boxes` makes the
input that :func:`d2lssd.nms` and the NMS explorer work on.
"""

from __future__ import annotations

import math

import torch

from .._checks import check_boxes
from ..boxes import box_center_to_corner, box_corner_to_center, box_iou, clip_boxes

__all__ = ["detections_like_boxes"]


def _as_float_tensor(x, name: str) -> torch.Tensor:
    """``x`` as a CPU tensor (a tensor is detached, anything else becomes float32); ValueError naming ``name``."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    try:
        return torch.as_tensor(x, dtype=torch.float32)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a tensor or a sequence of numbers") from None


def detections_like_boxes(gt_pixels, n_per_object: int = 6, seed: int = 0, jitter: float = 0.1,
                          image_size: tuple[float, float] | None = None):
    """Clusters of jittered, scored boxes around ground-truth boxes: fake detector output.

    For each ground-truth box of centre ``(cx, cy)`` and size ``(w, h)``,
    ``n_per_object`` boxes are drawn with centre ``(cx + jitter*w*e1, cy +
    jitter*h*e2)`` and size ``(w*exp(jitter*e3), h*exp(jitter*e4))``,
    ``e ~ N(0, 1)``. Each gets the score ``0.25 + 0.7 * IoU(box, its ground
    truth) + 0.05 * N(0, 1)`` clamped to [0.01, 0.99]: better boxes tend to
    score higher, but not always, as with a real detector.

    Args:
        gt_pixels: ``(G, 4)`` boxes (tensor or nested list), corner format,
            pixels, positive width and height.
        n_per_object: boxes per ground truth (>= 1).
        seed: seed of the ``torch.Generator`` used; same seed, same output.
        jitter: relative noise (>= 0); 0 gives exact copies of the ground
            truth (all with IoU 1).
        image_size: optional ``(width, height)`` to clip the boxes to.

    Returns:
        ``(boxes, scores, object_index)``: float32 ``(G*n, 4)`` pixel boxes,
        float32 ``(G*n,)`` scores, int64 ``(G*n,)`` index of the ground truth
        each box was drawn around. Grouped by object: rows ``g*n`` to
        ``g*n + n - 1`` belong to object ``g``.

    Raises:
        ValueError: bad boxes (shape, NaN, zero or negative size),
            ``n_per_object < 1``, negative or non-finite ``jitter``, or a
            non-positive image size.
    """
    gt = _as_float_tensor(gt_pixels, "gt_pixels")
    check_boxes(gt, "gt_pixels", min_dim=2, max_dim=2)
    gt = gt.float()
    if gt.numel() and not bool(((gt[:, 2] > gt[:, 0]) & (gt[:, 3] > gt[:, 1])).all()):
        raise ValueError("gt_pixels must have positive width and height")
    if isinstance(n_per_object, bool) or not isinstance(n_per_object, int) or n_per_object < 1:
        raise ValueError(f"n_per_object must be a positive int, got {n_per_object!r}")
    if not (math.isfinite(jitter) and jitter >= 0):
        raise ValueError(f"jitter must be a finite number >= 0, got {jitter!r}")
    g = torch.Generator().manual_seed(int(seed))
    num, n = gt.shape[0], n_per_object
    noise = torch.randn(num, n, 4, generator=g)
    score_noise = torch.randn(num, n, generator=g)
    cx, cy, w, h = box_corner_to_center(gt)[:, None, :].unbind(-1)  # (G, 1) each
    centers = torch.stack((cx + jitter * w * noise[..., 0], cy + jitter * h * noise[..., 1],
                           w * torch.exp(jitter * noise[..., 2]),
                           h * torch.exp(jitter * noise[..., 3])), dim=-1)
    boxes = box_center_to_corner(centers)  # (G, n, 4)
    if image_size is not None:
        width, height = image_size
        boxes = clip_boxes(boxes, width, height)
    iou = box_iou(boxes, gt[:, None, :])[..., 0] if num else torch.zeros(0, n)  # (G, n)
    scores = (0.25 + 0.7 * iou + 0.05 * score_noise).clamp(0.01, 0.99)
    object_index = torch.arange(num).repeat_interleave(n)
    return boxes.reshape(-1, 4), scores.reshape(-1), object_index
