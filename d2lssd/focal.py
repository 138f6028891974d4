r"""Focal losses: the softmax form over ``q + 1`` classes and RetinaNet's sigmoid form.

The focal loss (Lin et al. 2017) multiplies the cross-entropy of each anchor
by :math:`(1 - p_t)^\gamma`, so the thousands of easy background anchors no
longer swamp the few hard ones; with :math:`\gamma = 0` and no class
weighting it is the cross-entropy.

* :func:`focal_loss`: softmax over the ``q + 1`` classes (class 0 =
  background), one loss per anchor; the class term ``cls_loss="focal"`` of
  :func:`d2lssd.multibox_loss` uses it.
* :func:`sigmoid_focal_loss`: one binary problem per class (no background
  column), equal to ``torchvision.ops.sigmoid_focal_loss`` with the same
  arguments (``reduction`` included).

Both compute in float32 or wider, also for float16 inputs, and are
vectorised over images and anchors. :mod:`d2lssd.losses` re-exports them
(``d2lssd.losses.focal_loss``), and :mod:`d2lssd` too.

Source: Lin et al. 2017 "Focal Loss for Dense Object Detection" §3 (eq. 5);
d2l.ai §14.7.6 exercise 1 (``focal_loss(gamma, x)``); torchvision's
``ops/focal_loss.py`` for the sigmoid form's arguments.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from ._checks import check_dtype, float32_or_wider

__all__ = ["focal_loss", "sigmoid_focal_loss"]


def _check_gamma_alpha(gamma, alpha) -> None:
    """ValueError unless ``gamma >= 0`` is finite and ``alpha`` is in [0, 1] or None.

    Internal, shared with :func:`d2lssd.multibox_loss`, which checks its
    ``focal_gamma`` / ``focal_alpha`` once before calling :func:`_focal_loss`.
    """
    if not float(gamma) >= 0 or math.isinf(float(gamma)):
        raise ValueError(f"gamma must be a finite number >= 0, got {gamma}")
    if alpha is not None and not 0 <= float(alpha) <= 1:
        raise ValueError(f"alpha must be in [0, 1] or None (off), got {alpha}")


def _modulating(log_p: torch.Tensor, gamma: float) -> torch.Tensor:
    """(1 - p) ** gamma from log p, accurate near p = 1 and with finite gradients there."""
    if gamma == 0:
        return torch.ones_like(log_p)
    one_minus_p = -torch.expm1(log_p)  # 1 - p without cancellation
    return one_minus_p.clamp_min(torch.finfo(log_p.dtype).tiny) ** gamma


def focal_loss(cls_preds: torch.Tensor, cls_labels: torch.Tensor, gamma: float = 2.0,
               alpha: float | None = None) -> torch.Tensor:
    r"""Softmax focal loss per anchor: :math:`-\alpha_t (1 - p_t)^\gamma \log p_t`.

    ``p_t`` is the softmax probability of the true class among the ``q + 1``
    classes (class 0 = background). The factor :math:`(1 - p_t)^\gamma` shrinks
    the loss of anchors that are already well classified (``p_t`` near 1), so
    the thousands of easy background anchors no longer swamp the few hard
    ones; ``gamma = 0`` with ``alpha=None`` is the cross-entropy.

    Args:
        cls_preds: float logits ``(..., q + 1)`` (e.g. ``(B, A, q + 1)``).
        cls_labels: integer targets ``(...)`` in ``0 .. q`` (0 = background).
        gamma: focusing parameter >= 0 (Lin et al. use 2).
        alpha: class balance in [0, 1]: weight ``alpha`` for object classes
            (labels > 0) and ``1 - alpha`` for background; ``None`` (default)
            weights all anchors 1.

    Returns:
        float tensor ``(...)`` (float32 or wider), the loss of each anchor in
        nats (not reduced).

    Raises:
        ValueError: non-float logits, labels not integer or not of shape
            ``cls_preds.shape[:-1]``, labels outside ``0 .. q``, ``gamma < 0``,
            ``alpha`` outside [0, 1].

    Source: Lin et al. 2017 §3.2 eq. 5 (written there for the binary case;
    this is its usual multi-class softmax form); d2l.ai §14.7.6 exercise 1
    (``focal_loss(gamma, x)`` on the probability ``x = p_t``).
    """
    check_dtype(cls_preds, "cls_preds")
    check_dtype(cls_labels, "cls_labels", floating=False)
    if cls_preds.dim() < 1 or cls_labels.shape != cls_preds.shape[:-1] or cls_labels.dtype == torch.bool:
        raise ValueError(f"cls_labels must be an integer tensor of shape {tuple(cls_preds.shape[:-1])} "
                         f"(cls_preds without its class dimension), got {cls_labels.dtype} "
                         f"{tuple(cls_labels.shape)}")
    _check_gamma_alpha(gamma, alpha)
    C = cls_preds.shape[-1]
    if cls_labels.numel() and (int(cls_labels.min()) < 0 or int(cls_labels.max()) >= C):
        raise ValueError(f"cls_labels must be in [0, {C - 1}], got values in "
                         f"[{int(cls_labels.min())}, {int(cls_labels.max())}]")
    return _focal_loss(cls_preds, cls_labels, float(gamma), alpha)


def _focal_loss(cls_preds, cls_labels, gamma: float, alpha) -> torch.Tensor:
    """:func:`focal_loss` without checks (internal; :func:`d2lssd.multibox_loss` calls it)."""
    log_p = F.log_softmax(float32_or_wider(cls_preds), dim=-1)
    log_pt = log_p.gather(-1, cls_labels.long().unsqueeze(-1)).squeeze(-1)
    loss = -_modulating(log_pt, float(gamma)) * log_pt
    if alpha is not None:
        loss = loss * torch.where(cls_labels > 0, float(alpha), 1.0 - float(alpha))
    return loss


def sigmoid_focal_loss(inputs: torch.Tensor, targets: torch.Tensor, alpha: float | None = 0.25,
                       gamma: float = 2.0, reduction: str = "none") -> torch.Tensor:
    r"""Sigmoid focal loss of every element: one binary problem per class, as in RetinaNet.

    With :math:`p = \sigma(x)` and :math:`p_t = p` where the target is 1 and
    :math:`1 - p` where it is 0, the loss is
    :math:`-\alpha_t (1 - p_t)^\gamma \log p_t`, with :math:`\alpha_t = \alpha`
    for targets 1 and :math:`1 - \alpha` for targets 0. There is no background
    column: background is "all targets 0". (:func:`d2lssd.predict` uses a
    softmax over ``q + 1`` classes, so models trained with this loss need a
    sigmoid at inference; :func:`d2lssd.multibox_loss` therefore uses the softmax
    form, :func:`focal_loss`.)

    Args:
        inputs: float logits, any shape (e.g. ``(B, A, q)``).
        targets: float tensor of ``inputs``' shape, 0 or 1 (soft targets in
            [0, 1] are accepted).
        alpha: weight of the targets 1 in [0, 1] (0.25 in Lin et al.);
            ``None`` or a negative number: no weighting (torchvision's ``-1``).
        gamma: focusing parameter >= 0.
        reduction: ``"none"`` (default), ``"mean"`` or ``"sum"`` over all
            elements, as in torchvision (same name, position and default).

    Returns:
        float tensor (float32 or wider): of ``inputs``' shape for ``"none"``,
        else a scalar; equal to ``torchvision.ops.sigmoid_focal_loss`` called
        with the same arguments.

    Raises:
        ValueError: non-float tensors, different shapes, ``gamma < 0``,
            ``alpha > 1``, an unknown ``reduction``.

    Source: Lin et al. 2017 §3.2 eq. 5; same formula and arguments as
    ``torchvision.ops.sigmoid_focal_loss``.
    """
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    check_dtype(inputs, "inputs")
    check_dtype(targets, "targets")
    if inputs.shape != targets.shape:
        raise ValueError(f"targets must have the shape of inputs {tuple(inputs.shape)}, got "
                         f"{tuple(targets.shape)}")
    if alpha is not None and float(alpha) < 0:
        alpha = None
    _check_gamma_alpha(gamma, alpha)
    x, t = float32_or_wider(inputs), targets.to(float32_or_wider(inputs).dtype)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p = torch.sigmoid(x)
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce if float(gamma) == 0 else ce * (1 - p_t).clamp_min(torch.finfo(x.dtype).tiny) ** float(gamma)
    if alpha is not None:
        loss = loss * (float(alpha) * t + (1 - float(alpha)) * (1 - t))
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss
