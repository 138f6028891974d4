"""What one batch gives an SSD trainer: the per-image loss and the sums behind the epoch's metrics.

:class:`SSDBatchLoss` is the only piece of the engine that knows SSD: it
runs the model, matches its anchors to the labels
(:func:`d2lssd.multibox_target`), calls the loss and counts what the
metrics divide (one tensor, so one device-to-host copy per step). The loop
(:mod:`d2lssd.engine.loop`) sees a callable ``batch_loss(net, X, Y) ->
(loss per image, stats)`` and an :class:`~d2lssd.metrics.Accumulator`.

Source: d2l.ai §14.7.3 (``calc_loss``, ``cls_eval``, ``bbox_eval``), with the
metrics of :mod:`d2lssd.metrics`; torchvision ``references/detection``
(the model computes its losses, the loop only sums them).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..matching import _multibox_target, check_labels, multibox_target
from ..metrics import Accumulator, _bbox_abs_counts, _class_error_counts
from .progress import fmt

__all__ = ["SSDBatchLoss", "split_batch", "is_channels_last", "to_input", "net_device"]


def split_batch(batch, b: int) -> tuple[torch.Tensor, object]:
    """``(images, labels)`` of batch number ``b`` (0-based, for the message), checked to be a pair with 4-D images.

    Raises:
        ValueError: not a pair, or images that are not a tensor ``(B, C, H, W)``.

    Source: ours (a clear message where unpacking would raise a bare TypeError).
    """
    try:
        X, Y = batch
    except (TypeError, ValueError):
        raise ValueError(f"batch {b} must be a pair (images, labels), got {type(batch).__name__}") from None
    if not isinstance(X, torch.Tensor) or X.dim() != 4:
        raise ValueError(f"batch {b}: images must be a tensor (B, C, H, W), got "
                         f"{tuple(X.shape) if isinstance(X, torch.Tensor) else type(X).__name__}")
    return X, Y


def is_channels_last(net: nn.Module) -> bool:
    """True if the model's first 4-D weight is stored channels last (``net.to(memory_format=...)``).

    False for a model without 4-D weights. Source: PyTorch's "Channels last memory format" tutorial.
    """
    for p in net.parameters():
        if p.dim() == 4:
            return p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
    return False


def to_input(X: torch.Tensor, device, channels_last: bool) -> torch.Tensor:
    """Images ``(B, C, H, W)`` moved to ``device`` (non-blocking), channels last if asked; same dtype and values.

    Source: PyTorch's "Channels last memory format" tutorial.
    """
    X = X.to(device, non_blocking=True)
    return X.contiguous(memory_format=torch.channels_last) if channels_last else X


def net_device(net: nn.Module) -> torch.device:
    """The device of ``net``'s first parameter (the CPU for a model without parameters). Source: ours."""
    p = next(iter(net.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


class _CheckOnce:
    """Targets and loss: checked on the first batch and whenever shapes change, unchecked otherwise.

    The public :func:`d2lssd.multibox_target` and losses validate their
    inputs, and each check that reads a value (NaN, label range, degenerate
    boxes) is a host sync on a GPU: about ten per step. The model's anchors
    and output shapes do not change from batch to batch, so after a batch
    has passed the checks, batches of the same shapes, dtypes and device run
    the unchecked twins (``_multibox_target`` and ``loss_fn.unchecked``,
    which :func:`d2lssd.ssd_loss` and :class:`d2lssd.MultiBoxLoss` have; a
    ``loss_fn`` without one is always called as it is). What still changes,
    the labels, is checked on the host before it moves to the device
    (:func:`d2lssd.matching.check_labels`, no device sync), and a NaN in the
    model's outputs shows up in the loss, which the loop checks.
    """

    def __init__(self, loss_fn: Callable):
        self.loss_fn = loss_fn
        self.fast_loss = getattr(loss_fn, "unchecked", None)
        self.seen = None

    def __call__(self, anchors, Y, cls_preds, bbox_preds, iou_threshold):
        key = tuple((tuple(t.shape), t.dtype, t.device) for t in (anchors, Y, cls_preds, bbox_preds))
        if self.fast_loss is None or key != self.seen:
            bbox_labels, bbox_masks, cls_labels = multibox_target(anchors, Y, iou_threshold)
            l = self.loss_fn(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks)
            self.seen = key  # only once the checks have passed
        else:
            anc = anchors if anchors.dim() == 3 else anchors[None]
            bbox_labels, bbox_masks, cls_labels = _multibox_target(anc, Y, iou_threshold)
            l = self.fast_loss(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks)
        return l, bbox_labels, bbox_masks, cls_labels


def _stats(loss_per_image, cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks) -> torch.Tensor:
    """One tensor with the 8 sums of a batch (one device-to-host copy for all)."""
    e_pos, n_pos, e_all, n_all = _class_error_counts(cls_preds, cls_labels)
    err, n_mask, _ = _bbox_abs_counts(bbox_preds, bbox_labels, bbox_masks)
    n = torch.tensor(float(loss_per_image.shape[0]), device=loss_per_image.device)
    return torch.stack([loss_per_image.detach().sum().float(), n, e_pos.float(), n_pos.float(),
                        e_all.float(), n_all.float(), err.float(), n_mask.float()])


class SSDBatchLoss:
    """``batch_loss(net, X, Y) -> (loss per image, stats)``: one SSD forward, matching and loss.

    Args:
        loss_fn: ``loss_fn(cls_preds, cls_labels, bbox_preds, bbox_labels,
            bbox_masks)`` -> per-image losses ``(B,)`` (e.g. :func:`d2lssd.ssd_loss`).
        iou_threshold: matching threshold of :func:`d2lssd.multibox_target`.
        device: where the model runs; images and labels are moved there.
        amp: float16 autocast of the forward pass (the caller decides; CUDA only).
        channels_last: images passed in the ``channels_last`` memory format.

    Calling it with ``net`` (returning ``(anchors (1, A, 4), cls_preds
    (B, A, q + 1), bbox_preds (B, A * 4))``), images ``X`` float ``(B, 3, H, W)``
    and labels ``Y`` float ``(B, G, 5)`` (normalized, padding class -1)
    returns the per-image losses, float32 ``(B,)`` on ``device`` (with the
    graph, for backward), and ``stats``, float32 ``(8,)``: the sums of the
    loss and of the images (always the first two), then the class errors and
    counts on positives and on all anchors and the box error and mask count
    (see :meth:`summary`). The first batch and each change of shapes run the
    checked :func:`d2lssd.multibox_target` and loss, the others their
    unchecked twins; labels on the CPU are always checked there first.

    Raises:
        ValueError: bad labels (from :func:`d2lssd.matching.check_labels` /
            :func:`d2lssd.multibox_target`) or model outputs the loss rejects.

    Source: d2l.ai §14.7.3 (``calc_loss``, ``cls_eval``, ``bbox_eval``); the
    metrics are :mod:`d2lssd.metrics`'s.
    """

    #: number of entries in ``stats`` (the size of the epoch's Accumulator)
    num_stats = 8

    def __init__(self, loss_fn: Callable, iou_threshold: float, device: torch.device, amp: bool = False,
                 channels_last: bool = False):
        self.iou_threshold, self.device, self.amp, self.channels_last = iou_threshold, device, amp, channels_last
        self.checker = _CheckOnce(loss_fn)

    def __call__(self, net: nn.Module, X: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(Y, torch.Tensor) and Y.device.type == "cpu":
            check_labels(Y.float())  # on the host, before the copy: no device sync
        X, Y = to_input(X, self.device, self.channels_last), Y.to(self.device, non_blocking=True)
        with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.amp):
            anchors, cls_preds, bbox_preds = net(X)
        cls_preds, bbox_preds = cls_preds.float(), bbox_preds.float().reshape(X.shape[0], -1)
        l, bbox_labels, bbox_masks, cls_labels = self.checker(anchors, Y.float(), cls_preds, bbox_preds,
                                                              self.iou_threshold)
        return l, _stats(l, cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks)

    @staticmethod
    def summary(acc: Accumulator) -> dict:
        """The metrics of summed ``stats``: ``loss`` (per image), ``class_error_positive``, ``class_error_all``,
        ``bbox_mae_positive`` (NaN where the count is 0) and ``images`` (int)."""
        return {"loss": acc.ratio(0, 1), "class_error_positive": acc.ratio(2, 3),
                "class_error_all": acc.ratio(4, 5), "bbox_mae_positive": acc.ratio(6, 7), "images": int(acc[1])}

    @staticmethod
    def postfix(acc: Accumulator) -> dict:
        """What the progress bar shows after each step: the running mean loss and class error on positives."""
        return {"loss": f"{acc.ratio(0, 1):.4g}", "cls_err_pos": fmt(acc.ratio(2, 3), True)}
