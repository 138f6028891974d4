r"""SSD training losses.

The loss of d2l's TinySSD chapter, per image:

.. math::

    \ell = \underbrace{\frac{1}{A}\sum_{a=1}^{A} \mathrm{CE}(\hat p_a, c_a)}_{\text{class}}
         + \underbrace{\frac{1}{4A}\sum_{a=1}^{A}\sum_{m=1}^{4} M_{am}\,|\hat o_{am} - o_{am}|}_{\text{box}}

with ``A`` anchors, class targets ``c_a`` (0 = background), offset targets
``o`` and the 0/1 mask ``M`` that selects the positive anchors (all from
:func:`d2lssd.multibox_target`).

Units: the class term is in nats per anchor (cross-entropy with the natural
log, averaged over *all* anchors, background included); the box term is in
offset units (the variance-scaled offsets of :func:`d2lssd.offset_boxes`),
summed over the positive anchors' entries but divided by *all* ``4A``
entries, as d2l does. With a few positives among thousands of anchors the box
term is therefore small; the SSD paper instead divides both terms by the
number of positives (later chapter, with smooth L1 and hard negative mining).

Source: d2l.ai §14.7.3.2 "Defining Loss and Evaluation Functions"
(``calc_loss``); Liu et al. 2016 §2.2 "Training objective" for the idea.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["ssd_loss", "calc_loss"]


def _check_loss_inputs(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks):
    """Validate shapes and dtypes; return ``bbox_preds`` as ``(B, A * 4)``."""
    for name, t in (("cls_preds", cls_preds), ("cls_labels", cls_labels), ("bbox_preds", bbox_preds),
                    ("bbox_labels", bbox_labels), ("bbox_masks", bbox_masks)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if cls_preds.dim() != 3 or not cls_preds.is_floating_point() or cls_preds.shape[2] < 2:
        raise ValueError("cls_preds must be float logits (B, A, q + 1) with q >= 1, got "
                         f"{cls_preds.dtype} {tuple(cls_preds.shape)}")
    B, A, C = cls_preds.shape
    if cls_labels.shape != (B, A) or cls_labels.is_floating_point() or cls_labels.dtype == torch.bool:
        raise ValueError(f"cls_labels must be an integer tensor (B, A) = ({B}, {A}), got "
                         f"{cls_labels.dtype} {tuple(cls_labels.shape)}")
    if bbox_preds.shape == (B, A, 4):
        bbox_preds = bbox_preds.reshape(B, A * 4)
    if bbox_preds.shape != (B, A * 4) or not bbox_preds.is_floating_point():
        raise ValueError(f"bbox_preds must be float (B, A * 4) = ({B}, {A * 4}) or (B, A, 4), got "
                         f"{bbox_preds.dtype} {tuple(bbox_preds.shape)}")
    for name, t in (("bbox_labels", bbox_labels), ("bbox_masks", bbox_masks)):
        if t.shape != (B, A * 4) or not t.is_floating_point():
            raise ValueError(f"{name} must be float (B, A * 4) = ({B}, {A * 4}), got "
                             f"{t.dtype} {tuple(t.shape)}")
    if cls_labels.numel():
        lo, hi = int(cls_labels.min()), int(cls_labels.max())
        if lo < 0 or hi >= C:
            raise ValueError(f"cls_labels must be in [0, {C - 1}] (0 = background, q + 1 = {C} "
                             f"classes from cls_preds), got values in [{lo}, {hi}]")
    return bbox_preds


def ssd_loss(cls_preds: torch.Tensor, cls_labels: torch.Tensor, bbox_preds: torch.Tensor,
             bbox_labels: torch.Tensor, bbox_masks: torch.Tensor, reduction: str = "none") -> torch.Tensor:
    """d2l's SSD loss: per-anchor cross-entropy averaged per image plus masked L1 on offsets.

    Args:
        cls_preds: float ``(B, A, q + 1)`` class logits (class 0 background),
            as returned by the model.
        cls_labels: integer ``(B, A)`` targets in ``0 .. q`` (from
            :func:`d2lssd.multibox_target`).
        bbox_preds: float ``(B, A * 4)`` (d2l's layout) or ``(B, A, 4)``
            predicted offsets.
        bbox_labels: float ``(B, A * 4)`` target offsets.
        bbox_masks: float ``(B, A * 4)``, 1 for the entries of positive
            anchors, 0 elsewhere.
        reduction: ``"none"`` (default, as d2l: one loss per image),
            ``"mean"`` or ``"sum"`` over the batch.

    Returns:
        float tensor ``(B,)`` for ``"none"``, else a scalar: class term (nats
        per anchor) plus box term (offset units per anchor entry), see the
        module docstring. Computed in float32 or wider even when the
        predictions are float16 (mixed precision).

    Raises:
        ValueError: shapes that do not match ``(B, A, q + 1)`` / ``(B, A)`` /
            ``(B, A * 4)``, float class labels, labels outside ``0 .. q``, or
            an unknown ``reduction``. (NaN predictions are not checked here;
            the training loop checks the loss.)

    Source: d2l.ai §14.7.3.2 ``calc_loss`` (same arguments and values).
    """
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    bbox_preds = _check_loss_inputs(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks)
    B, A, C = cls_preds.shape
    dtype = torch.promote_types(cls_preds.dtype, torch.float32)
    cls = F.cross_entropy(cls_preds.reshape(-1, C).to(dtype), cls_labels.reshape(-1).long(),
                          reduction="none").reshape(B, A).mean(dim=1)
    bbox = ((bbox_preds.to(dtype) - bbox_labels.to(dtype)) * bbox_masks.to(dtype)).abs().mean(dim=1)
    loss = cls + bbox
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def calc_loss(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks):
    """d2l's name for :func:`ssd_loss` (per-image losses ``(B,)``).

    Source: d2l.ai §14.7.3.2 ``calc_loss``.
    """
    return ssd_loss(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks)
