r"""Box offsets: encoding a box relative to an anchor, and decoding it back.

For an anchor with center :math:`(x_a, y_a)` and size :math:`(w_a, h_a)` and a
box with center :math:`(x_b, y_b)` and size :math:`(w_b, h_b)`, the offsets are

.. math::

    \left(\frac{x_b - x_a}{w_a\,\sigma_c},\;
          \frac{y_b - y_a}{h_a\,\sigma_c},\;
          \frac{\log(w_b / w_a)}{\sigma_s},\;
          \frac{\log(h_b / h_a)}{\sigma_s}\right)

with the variances :math:`\sigma_c = 0.1`, :math:`\sigma_s = 0.2` (SSD's and
d2l's: the offsets of matched anchors then have roughly unit spread).

Source: Liu et al. 2016, §2.2 eq. (2); d2l.ai §14.4.3.2 (same names).
"""

from __future__ import annotations

import math

import torch

from ._checks import as_float, as_float_boxes, check_same_device
from .boxes import _center_to_corner, _corner_to_center

__all__ = ["offset_boxes", "offset_inverse", "BBOX_XFORM_CLIP"]

#: Largest log-scale a decoded box may have relative to its anchor (torchvision's choice).
BBOX_XFORM_CLIP = math.log(1000.0 / 16)


def _check_variances(variances) -> tuple[float, float]:
    if len(variances) != 2 or not all(float(v) > 0 for v in variances):
        raise ValueError(f"variances must be two positive numbers (center, size), got {variances!r}")
    return float(variances[0]), float(variances[1])


def offset_boxes(anchors: torch.Tensor, assigned_bb: torch.Tensor, eps: float = 1e-6,
                 variances: tuple[float, float] = (0.1, 0.2)) -> torch.Tensor:
    """Encode boxes as offsets relative to anchors.

    Args:
        anchors: tensor ``(..., 4)``, corner format, positive width and height.
        assigned_bb: tensor broadcastable to ``anchors``, corner format,
            same unit and device: the box each anchor should predict.
            Both floating-point, or integer (promoted to the default float
            dtype, as d2l's arithmetic does).
        eps: added inside the log, as in d2l, so a zero-size box gives a large
            negative but finite offset.
        variances: ``(center, size)`` scaling, default ``(0.1, 0.2)``.

    Returns:
        float tensor of the broadcast shape ``(..., 4)``: offsets
        ``(dx, dy, dw, dh)`` (unitless), of the inputs' promoted dtype.

    Raises:
        ValueError: an input that is not a float or integer tensor, last
            dimension not 4, NaN, a degenerate
            box, an anchor of zero width or height, different devices or bad
            variances.

    Source: d2l.ai §14.4.3.2 ``offset_boxes`` (same name and values; d2l
    writes the variances as factors 10 and 5); Liu et al. 2016 eq. (2).
    """
    check_same_device(anchors=anchors, assigned_bb=assigned_bb)
    anchors = as_float_boxes(anchors, "anchors", min_dim=1)
    assigned_bb = as_float_boxes(assigned_bb, "assigned_bb", min_dim=1)
    vc, vs = _check_variances(variances)
    if anchors.numel() and ((anchors[..., 2:] - anchors[..., :2]) <= 0).any():
        raise ValueError("anchors must have positive width and height")
    return _encode(anchors, assigned_bb, eps, vc, vs)


def _encode(anchors, assigned_bb, eps=1e-6, vc=0.1, vs=0.2):
    """:func:`offset_boxes` without input checks."""
    c_anc = _corner_to_center(anchors)
    c_bb = _corner_to_center(assigned_bb)
    offset_xy = (c_bb[..., :2] - c_anc[..., :2]) / (c_anc[..., 2:] * vc)
    offset_wh = torch.log(eps + c_bb[..., 2:] / c_anc[..., 2:]) / vs
    return torch.cat((offset_xy, offset_wh), dim=-1)


def offset_inverse(anchors: torch.Tensor, offset_preds: torch.Tensor,
                   variances: tuple[float, float] = (0.1, 0.2),
                   clamp: float = BBOX_XFORM_CLIP) -> torch.Tensor:
    """Decode offsets back into boxes: the inverse of :func:`offset_boxes`.

    Args:
        anchors: tensor ``(..., 4)``, corner format.
        offset_preds: tensor broadcastable to ``anchors``, ``(dx, dy, dw, dh)``
            (e.g. a network's box predictions reshaped to ``(B, A, 4)``).
            Both floating-point, or integer (promoted to the default float
            dtype; d2l's NMS section decodes int64 zeros).
        variances: as in :func:`offset_boxes`.
        clamp: the log-size offsets (after multiplying by the size variance)
            are clamped to at most this, default ``log(1000/16)`` as in
            torchvision, so a wild prediction cannot overflow ``exp``.

    Returns:
        float tensor of the broadcast shape ``(..., 4)``: corner-format boxes in
        the anchors' unit, of the inputs' promoted dtype. Not clipped to the image.

    Raises:
        ValueError: an input that is not a float or integer tensor, last
            dimension not 4, NaN, a degenerate anchor, different devices or
            bad variances.

    Source: d2l.ai §14.4.4 ``offset_inverse`` (same name and values for
    offsets inside the clamp); torchvision ``BoxCoder.decode_single`` for the clamp.
    """
    check_same_device(anchors=anchors, offset_preds=offset_preds)
    anchors = as_float_boxes(anchors, "anchors", min_dim=1)
    offset_preds = as_float(offset_preds, "offset_preds")
    if offset_preds.shape[-1:] != (4,):
        raise ValueError(f"offset_preds must have a last dimension of 4, got shape {tuple(offset_preds.shape)}")
    vc, vs = _check_variances(variances)
    return _decode(anchors, offset_preds, vc, vs, clamp)


def _decode(anchors, offset_preds, vc=0.1, vs=0.2, clamp=BBOX_XFORM_CLIP):
    """:func:`offset_inverse` without input checks."""
    c_anc = _corner_to_center(anchors)
    xy = offset_preds[..., :2] * vc * c_anc[..., 2:] + c_anc[..., :2]
    wh = torch.exp((offset_preds[..., 2:] * vs).clamp(max=clamp)) * c_anc[..., 2:]
    return _center_to_corner(torch.cat((xy, wh), dim=-1))
