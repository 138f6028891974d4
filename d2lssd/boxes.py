"""Bounding-box geometry: format conversion, area, IoU and clipping.

Conventions (see the book's notation page): a box is the last dimension of
size 4 of a floating-point tensor (integer tensors are accepted and promoted
to the default float dtype, ``torch.get_default_dtype()``). *Corner* format
is (xmin, ymin, xmax, ymax); *center* format is (cx, cy, w, h). Coordinates
are normalized to [0, 1] by the image width and height unless a name says
``pixels``; none of these functions depends on the unit, except
:func:`clip_boxes`, whose default image is the unit square, and
:func:`to_pixels` / :func:`to_normalized`, which convert between the two
(and :func:`scale_boxes_to_pixels`, the same for detection rows ``(class,
score, box)``).

Sources: d2l.ai §14.3 "Object Detection and Bounding Boxes" (conversion
functions, same names) and §14.4.2 (``box_iou``); torchvision.ops.boxes for
the semantics we test against.
"""

from __future__ import annotations

import math
import numbers

import torch

from ._checks import as_float_boxes, check_boxes, check_same_device

__all__ = [
    "box_corner_to_center",
    "box_center_to_corner",
    "box_area",
    "box_iou",
    "clip_boxes",
    "to_pixels",
    "to_normalized",
    "scale_boxes_to_pixels",
]


def box_corner_to_center(boxes: torch.Tensor) -> torch.Tensor:
    """Convert boxes from corner (xmin, ymin, xmax, ymax) to center (cx, cy, w, h) format.

    Args:
        boxes: tensor ``(..., 4)`` in corner format, any unit; floating-point,
            or integer (promoted to the default float dtype, as d2l's
            arithmetic does).

    Returns:
        Tensor of the same shape and unit in center format, of ``boxes``'
        dtype (the default float dtype for integer input).

    Raises:
        ValueError: ``boxes`` is not a float or integer tensor, has a last
            dimension other than 4, or contains NaN. (Degenerate boxes are
            converted as they are; :func:`box_iou` is where they are rejected.)

    Source: d2l.ai §14.3.1 ``box_corner_to_center``; ``torchvision.ops.box_convert``
    with ``in_fmt="xyxy", out_fmt="cxcywh"``.
    """
    boxes = as_float_boxes(boxes, "boxes", min_dim=1, check_order=False)
    return _corner_to_center(boxes)


def _corner_to_center(boxes: torch.Tensor) -> torch.Tensor:
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)


def box_center_to_corner(boxes: torch.Tensor) -> torch.Tensor:
    """Convert boxes from center (cx, cy, w, h) to corner (xmin, ymin, xmax, ymax) format.

    Args:
        boxes: tensor ``(..., 4)`` in center format, any unit; floating-point,
            or integer (promoted to the default float dtype).

    Returns:
        Tensor of the same shape and unit in corner format, of ``boxes``'
        dtype (the default float dtype for integer input).

    Raises:
        ValueError: not a float or integer tensor, last dimension not 4, or NaN.

    Source: d2l.ai §14.3.1 ``box_center_to_corner``; ``torchvision.ops.box_convert``
    with ``in_fmt="cxcywh", out_fmt="xyxy"``.
    """
    boxes = as_float_boxes(boxes, "boxes", min_dim=1, check_order=False)
    return _center_to_corner(boxes)


def _center_to_corner(boxes: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=-1)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Area of corner-format boxes.

    Args:
        boxes: tensor ``(..., 4)`` in corner format; unit ``u``;
            floating-point, or integer (promoted to the default float dtype).

    Returns:
        Tensor ``(...)`` of areas in ``u**2``, of ``boxes``' dtype (the
        default float dtype for integer input; ``torchvision.ops.box_area``
        returns int64 there: the values agree, exactly while the areas are
        below ``2**24`` in float32). A zero-width or zero-height box has area 0.

    Raises:
        ValueError: not a float or integer tensor, last dimension not 4, NaN,
            or a box with ``xmax < xmin`` or ``ymax < ymin``.

    Source: ``torchvision.ops.box_area``.
    """
    boxes = as_float_boxes(boxes, "boxes", min_dim=1)
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def _upcast(t: torch.Tensor) -> torch.Tensor:
    # Products of half-precision coordinates lose too much; compute in float32.
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    r"""Pairwise intersection over union (Jaccard index) of two sets of boxes.

    .. math:: J(A, B) = \frac{|A \cap B|}{|A \cup B|}

    Args:
        boxes1: tensor ``(..., N, 4)``, corner format; floating-point, or
            integer (promoted to the default float dtype).
        boxes2: tensor ``(..., M, 4)``, corner format, same unit and
            device; leading (batch) dimensions broadcast against ``boxes1``'s.

    Returns:
        Tensor ``(..., N, M)``, entry ``[..., i, j]`` is the IoU of
        ``boxes1[..., i, :]`` and ``boxes2[..., j, :]``, in [0, 1], always
        finite. ``N`` or ``M`` may be 0 (an empty result). float16/bfloat16
        inputs are computed and returned in float32, integer inputs in the
        default float dtype (as torchvision, whose result is float there too).

        **Zero-area boxes.** If both boxes have zero area their union is 0;
        we return IoU 0 there (a degenerate box overlaps nothing), where
        ``torchvision.ops.box_iou`` returns NaN. Everywhere else the result
        equals torchvision's.

    Raises:
        ValueError: an input is not a float or integer tensor, has fewer than 2
            dimensions or a last dimension other than 4, contains NaN, has a
            box with ``xmax < xmin`` or ``ymax < ymin``, or the two inputs are
            on different devices.

    Source: d2l.ai §14.4.2 ``box_iou`` (same name and argument order, extended
    to batches); ``torchvision.ops.box_iou``.
    """
    check_same_device(boxes1=boxes1, boxes2=boxes2)
    boxes1 = as_float_boxes(boxes1, "boxes1")
    boxes2 = as_float_boxes(boxes2, "boxes2")
    return _box_iou(boxes1, boxes2)


def _box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """:func:`box_iou` without input checks, for callers that validated already."""
    b1, b2 = _upcast(boxes1), _upcast(boxes2)
    # One coordinate at a time, (..., N, 1) against (..., 1, M), with in-place
    # ops: far fewer large temporaries than broadcasting (..., N, M, 2) pairs.
    # Same arithmetic, in the same order, as torchvision.
    # Contiguous coordinate rows let the element-wise kernels vectorise.
    x1, y1, x2, y2 = (c.contiguous()[..., :, None] for c in b1.unbind(-1))
    u1, v1, u2, v2 = (c.contiguous()[..., None, :] for c in b2.unbind(-1))
    inter = torch.minimum(x2, u2).sub_(torch.maximum(x1, u1)).clamp_(min=0)
    inter.mul_(torch.minimum(y2, v2).sub_(torch.maximum(y1, v1)).clamp_(min=0))
    union = ((x2 - x1) * (y2 - y1)) + ((u2 - u1) * (v2 - v1))
    iou = inter.div_(union.sub_(inter))
    # union == 0 (so inter == 0) only when both boxes have zero area: 0/0 is
    # NaN, and we define the IoU to be 0 there.
    return iou.nan_to_num_(0.0)


def clip_boxes(boxes: torch.Tensor, width: float = 1.0, height: float = 1.0) -> torch.Tensor:
    """Clip corner-format boxes to the image ``[0, width] x [0, height]``.

    Args:
        boxes: tensor ``(..., 4)``, corner format; floating-point, or integer
            (promoted to the default float dtype).
        width, height: image size in the boxes' unit: 1.0 for normalized
            coordinates (the default), the image size for ``pixels``.

    Returns:
        Tensor of the same shape and of ``boxes``' dtype (the default float
        dtype for integer input); boxes entirely outside the image become
        zero-area boxes on its border.

    Raises:
        ValueError: not a float or integer tensor, last dimension not 4, NaN,
            or ``width``/``height`` not positive.

    Source: ``torchvision.ops.clip_boxes_to_image`` (which takes pixel sizes).
    """
    boxes = as_float_boxes(boxes, "boxes", min_dim=1, check_order=False)
    if not (width > 0 and height > 0):
        raise ValueError(f"width and height must be positive, got width={width}, height={height}")
    x = boxes[..., 0::2].clamp(0, width)
    y = boxes[..., 1::2].clamp(0, height)
    return torch.stack((x[..., 0], y[..., 0], x[..., 1], y[..., 1]), dim=-1)


# --------------------------------------------------------------------------- units

def _check_size(width, height) -> None:
    """ValueError unless ``width`` and ``height`` are positive finite real numbers (not bools or tensors)."""
    for n, v in (("width", width), ("height", height)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) \
                or not (math.isfinite(v) and v > 0):
            raise ValueError(f"{n} must be a positive finite number, got {v!r}")


def _scale(boxes: torch.Tensor, width, height) -> torch.Tensor:
    """``(width, height, width, height)`` in ``boxes``' dtype and device."""
    return torch.tensor([width, height, width, height], dtype=boxes.dtype, device=boxes.device)


def to_pixels(boxes: torch.Tensor, width: float, height: float) -> torch.Tensor:
    """Normalized corner boxes to pixel corner boxes.

    Args:
        boxes: float tensor ``(..., 4)``, corner format, normalized to [0, 1]
            by the image width and height (values outside [0, 1] are allowed:
            anchors may cross the border).
        width, height: image size in pixels (positive).

    Returns:
        Tensor of the same shape, dtype and device: x coordinates times
        ``width``, y coordinates times ``height``.

    Raises:
        ValueError: ``boxes`` is not a float tensor, has a last dimension
            other than 4 or contains NaN; ``width``/``height`` not positive
            and finite. (Degenerate boxes are converted as they are.)

    Source: d2l.ai §14.4 (``bbox_scale = torch.tensor((w, h, w, h))``).
    """
    check_boxes(boxes, "boxes", min_dim=1, check_order=False)
    _check_size(width, height)
    return boxes * _scale(boxes, width, height)


def to_normalized(boxes: torch.Tensor, width: float, height: float) -> torch.Tensor:
    """Pixel corner boxes to corner boxes normalized to [0, 1]; the inverse of :func:`to_pixels`.

    Args:
        boxes: float tensor ``(..., 4)``, corner format, in pixels.
        width, height: image size in pixels (positive).

    Returns:
        Tensor of the same shape, dtype and device: x coordinates divided by
        ``width``, y coordinates by ``height``.

    Raises:
        ValueError: as :func:`to_pixels`.

    Source: d2l.ai §14.4 (labels are pixel boxes divided by the image size).
    """
    check_boxes(boxes, "boxes", min_dim=1, check_order=False)
    _check_size(width, height)
    return boxes / _scale(boxes, width, height)


def scale_boxes_to_pixels(detections: torch.Tensor, width: int, height: int, clip: bool = True) -> torch.Tensor:
    """Detections with normalized boxes -> the same detections in pixels of a ``width x height`` image.

    Args:
        detections: float ``(K, 6)`` rows ``(class, score, xmin, ymin, xmax,
            ymax)``, boxes normalized corner format (as :func:`d2lssd.predict`).
        width, height: of the original image in pixels (positive).
        clip: clip the boxes to ``[0, width] x [0, height]``.

    Returns:
        float32 ``(K, 6)``: class and score unchanged, box times ``(width,
        height, width, height)``. E.g. ``(0, 0.9, 0.1, 0.2, 0.5, 1.0)`` for a
        400x300 image gives ``(0, 0.9, 40, 60, 200, 300)``.

    Raises:
        ValueError: not a ``(K, 6)`` float tensor, a non-positive size.
    """
    if not isinstance(detections, torch.Tensor) or detections.dim() != 2 or detections.shape[1] != 6 \
            or not detections.is_floating_point():
        raise ValueError("detections must be a float tensor (K, 6), got "
                         f"{tuple(detections.shape) if isinstance(detections, torch.Tensor) else type(detections)}")
    if width <= 0 or height <= 0:
        raise ValueError(f"width and height must be positive, got {width} x {height}")
    out = detections.float().clone()
    scale = torch.tensor([width, height, width, height], dtype=torch.float32, device=out.device)
    out[:, 2:] = out[:, 2:] * scale
    if clip:
        out[:, 2:] = torch.minimum(out[:, 2:].clamp(min=0), scale)
    return out
