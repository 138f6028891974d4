"""Anchor boxes (default boxes): d2l's ``multibox_prior`` and the SSD paper's scale rule.

Both functions return corner-format boxes normalized to [0, 1] with shape
``(1, A, 4)``, ordered row-major over the feature map with all anchors of one
pixel together: anchor ``k`` of pixel ``(i, j)`` of an ``h x w`` map is row
``(i * w + j) * a + k`` where ``a`` is the number of anchors per pixel. This is
the order in which SSD's prediction heads are flattened
(``permute(0, 2, 3, 1)``), so anchors and predictions line up.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from .boxes import clip_boxes

__all__ = ["multibox_prior", "ssd_scales", "ssd_default_boxes", "SSD300_CONFIG"]


def _check_positive_list(values, name: str) -> list[float]:
    try:
        values = [float(v) for v in values]
    except TypeError:
        raise ValueError(f"{name} must be a sequence of positive numbers, got {values!r}") from None
    if not values or not all(v > 0 and math.isfinite(v) for v in values):
        raise ValueError(f"{name} must be a non-empty sequence of positive numbers, got {values}")
    return values


def _pixel_centers(h: int, w: int, device, dtype) -> torch.Tensor:
    """Centers ``(h*w, 2)`` as (cx, cy) of an h x w grid over the unit square, row-major."""
    cy = (torch.arange(h, device=device, dtype=dtype) + 0.5) / h
    cx = (torch.arange(w, device=device, dtype=dtype) + 0.5) / w
    gy, gx = torch.meshgrid(cy, cx, indexing="ij")
    return torch.stack((gx.reshape(-1), gy.reshape(-1)), dim=1)


def _tile(centers: torch.Tensor, wh: torch.Tensor) -> torch.Tensor:
    """Corner boxes for every (center, size) pair: centers (P, 2), wh (a, 2) -> (1, P*a, 4)."""
    c = centers[:, None, :]  # (P, 1, 2)
    half = wh[None, :, :] / 2  # (1, a, 2)
    return torch.cat((c - half, c + half), dim=-1).reshape(1, -1, 4)


def multibox_prior(data: torch.Tensor, sizes: Sequence[float], ratios: Sequence[float]) -> torch.Tensor:
    r"""Anchor boxes centred on every pixel of a feature map (d2l's ``multibox_prior``).

    With sizes :math:`s_1, \dots, s_n` and ratios :math:`r_1, \dots, r_m`, each
    pixel gets the :math:`n + m - 1` anchors
    :math:`(s_1, r_1), \dots, (s_n, r_1), (s_1, r_2), \dots, (s_1, r_m)` in this
    order. An anchor with size ``s`` and ratio ``r`` is ``s * sqrt(r) * H``
    pixels wide and ``s / sqrt(r) * H`` pixels high for a map of height ``H``
    and width ``W``: sizes are fractions of the map's *height*, and ratio 1 is
    a square in pixels (as in d2l; in normalized coordinates its width is
    ``s * sqrt(r) * H / W``).

    Args:
        data: tensor ``(B, C, H, W)`` (a feature map or image); only its height,
            width and device are used.
        sizes: positive scales, fractions of the height, e.g. ``[0.75, 0.5, 0.25]``.
        ratios: positive aspect ratios width/height, e.g. ``[1, 2, 0.5]``.

    Returns:
        float32 tensor ``(1, H * W * (n + m - 1), 4)`` on ``data``'s device,
        corner format, normalized to [0, 1] (anchors may extend past the image;
        they are not clipped, as in d2l).

    Raises:
        ValueError: ``data`` has fewer than 2 dimensions or an empty spatial
            size, or ``sizes``/``ratios`` is empty or not all positive.

    Source: d2l.ai §14.4.1 "Generating Multiple Anchor Boxes" (same name,
    arguments, values and ordering).
    """
    if not isinstance(data, torch.Tensor) or data.dim() < 2:
        shape = tuple(data.shape) if isinstance(data, torch.Tensor) else type(data).__name__
        raise ValueError(f"data must be a tensor (..., H, W), got {shape}")
    h, w = data.shape[-2:]
    if h == 0 or w == 0:
        raise ValueError(f"data must have a non-empty spatial size, got H={h}, W={w}")
    sizes = _check_positive_list(sizes, "sizes")
    ratios = _check_positive_list(ratios, "ratios")
    device = data.device
    s = torch.tensor(sizes, device=device, dtype=torch.float32)
    r = torch.tensor(ratios, device=device, dtype=torch.float32)
    # (s_i, r_1) for all sizes, then (s_1, r_j) for the remaining ratios.
    s_all = torch.cat((s, s[:1].expand(len(ratios) - 1)))
    r_all = torch.cat((r[:1].expand(len(sizes)), r[1:]))
    widths = s_all * torch.sqrt(r_all) * h / w
    heights = s_all / torch.sqrt(r_all)
    wh = torch.stack((widths, heights), dim=1)
    return _tile(_pixel_centers(h, w, device, torch.float32), wh)


def ssd_scales(num_levels: int, s_min: float = 0.2, s_max: float = 0.9) -> list[float]:
    r"""The SSD paper's scales :math:`s_k = s_{min} + \frac{s_{max} - s_{min}}{m - 1}(k - 1)`.

    Args:
        num_levels: number of feature maps ``m`` (>= 1).
        s_min, s_max: scales of the lowest and highest level, fractions of
            the image side, ``0 < s_min <= s_max``.

    Returns:
        ``m + 1`` floats: :math:`s_1, \dots, s_m` and the extrapolated
        :math:`s_{m+1} = s_m + (s_{max} - s_{min}) / (m - 1)` used by the extra
        box :math:`\sqrt{s_m s_{m+1}}` of the last level (the paper leaves
        :math:`s_{m+1}` unspecified; we continue the paper's linear rule, so
        ``ssd_scales(6)`` ends with 1.04). torchvision's ``DefaultBoxGenerator``
        appends 1.0 instead (and its ``ssd300_vgg16`` passes its own list,
        0.07 to 1.05); pass ``scales=ssd_scales(m, s_min, s_max)`` to it for the
        same boxes as :func:`ssd_default_boxes`. With one level ``[s_min,
        s_max]`` is returned (as torchvision does).

    Raises:
        ValueError: ``num_levels < 1`` or scales out of range.

    Source: Liu et al. 2016, §2.2 "Choosing scales and aspect ratios for default boxes".
    """
    if int(num_levels) != num_levels or num_levels < 1:
        raise ValueError(f"num_levels must be a positive integer, got {num_levels}")
    if not (0 < s_min <= s_max):
        raise ValueError(f"need 0 < s_min <= s_max, got s_min={s_min}, s_max={s_max}")
    if num_levels == 1:
        return [float(s_min), float(s_max)]
    step = (s_max - s_min) / (num_levels - 1)
    return [s_min + step * k for k in range(num_levels + 1)]


#: Feature-map sizes and extra aspect ratios of SSD300 (VGG-16), Liu et al. 2016, Table/Fig. 2.
SSD300_CONFIG = {
    "feature_map_sizes": [38, 19, 10, 5, 3, 1],
    "aspect_ratios": [[2], [2, 3], [2, 3], [2, 3], [2], [2]],
}


def ssd_default_boxes(
    feature_map_sizes: Sequence[int | tuple[int, int]],
    aspect_ratios: Sequence[Sequence[float]],
    s_min: float = 0.2,
    s_max: float = 0.9,
    clip: bool = True,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""The SSD paper's default boxes for a list of feature maps.

    Level ``k`` (size ``f_k``) gets, at every cell centre
    :math:`((j + 0.5) / f_k, (i + 0.5) / f_k)`, the boxes

    1. aspect ratio 1 with scale :math:`s_k`,
    2. aspect ratio 1 with scale :math:`\sqrt{s_k s_{k+1}}`,
    3. for each extra ratio ``a`` in ``aspect_ratios[k]``: ratio ``a`` then
       ``1/a``, of width :math:`s_k\sqrt{a}` and height :math:`s_k/\sqrt{a}`,

    so ``2 + 2 * len(aspect_ratios[k])`` boxes per cell, in this order. With
    :data:`SSD300_CONFIG` this gives 8732 boxes.

    Args:
        feature_map_sizes: one entry per level, an int ``f`` (square map) or
            ``(h, w)``.
        aspect_ratios: per level, the extra ratios (> 0, usually 2 and 3);
            their reciprocals are added automatically.
        s_min, s_max: see :func:`ssd_scales`.
        clip: clip each box's *corners* to the unit square
            (:func:`d2lssd.clip_boxes`), so a box crossing the image border is
            cut at it (its centre moves inward). This is not what
            torchvision's ``DefaultBoxGenerator(clip=True)`` and ssd.pytorch's
            ``PriorBox`` do: they clamp ``(cx, cy, w, h)`` to [0, 1], which
            only caps widths and heights above 1 and leaves boxes that cross
            the border (their corners reach -0.4 and 1.4 for SSD300).
        device: where to create the boxes.

    Returns:
        float32 tensor ``(1, A, 4)``, corner format, normalized to [0, 1],
        ordered level by level, then row-major over cells, then as listed above.
        With ``clip=False`` these are torchvision's ``DefaultBoxGenerator``
        boxes (divided by the image size) when it is given
        ``scales=ssd_scales(len(feature_map_sizes), s_min, s_max)``; with its
        own ``min_ratio=s_min, max_ratio=s_max`` the last level's second box
        differs (its last scale is 1.0, ours 1.04: for SSD300 a square of side
        0.967 instead of 0.949). Tested in ``tests/test_anchors.py``.

    Raises:
        ValueError: the two lists differ in length, a size is not positive,
            or a ratio is not positive.

    Source: Liu et al. 2016, §2.2; compared with
    torchvision.models.detection.anchor_utils.DefaultBoxGenerator (same order
    and centres; the differences above).
    """
    if len(feature_map_sizes) != len(aspect_ratios):
        raise ValueError("feature_map_sizes and aspect_ratios must have one entry per level, got "
                         f"{len(feature_map_sizes)} and {len(aspect_ratios)}")
    if len(feature_map_sizes) == 0:
        raise ValueError("feature_map_sizes must not be empty")
    scales = ssd_scales(len(feature_map_sizes), s_min, s_max)
    out = []
    for k, (fsize, ratios) in enumerate(zip(feature_map_sizes, aspect_ratios)):
        h, w = (fsize, fsize) if isinstance(fsize, int) else tuple(fsize)
        if not (int(h) == h and int(w) == w and h > 0 and w > 0):
            raise ValueError(f"feature_map_sizes[{k}] must be a positive int or (h, w), got {fsize!r}")
        ratios = _check_positive_list(ratios, f"aspect_ratios[{k}]") if len(ratios) else []
        s_k, s_next = scales[k], scales[k + 1]
        wh = [(s_k, s_k), (math.sqrt(s_k * s_next),) * 2]
        for a in ratios:
            wh += [(s_k * math.sqrt(a), s_k / math.sqrt(a)), (s_k / math.sqrt(a), s_k * math.sqrt(a))]
        wh_t = torch.tensor(wh, dtype=torch.float32, device=device)
        out.append(_tile(_pixel_centers(int(h), int(w), device, torch.float32), wh_t))
    boxes = torch.cat(out, dim=1)
    return clip_boxes(boxes) if clip else boxes
