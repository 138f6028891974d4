"""The SSD skeleton every model of the package shares: per-level heads, anchors, outputs in anchor order.

An SSD model is a set of feature maps (levels), and on each level a class
head and a box head (3x3 convolutions) and anchors from
:func:`d2lssd.multibox_prior`. What differs between models is only how the
feature maps are computed; :class:`SSDBase` holds the rest, written once:

* the constructor's checks: ``num_classes``, and anchor sizes and ratios as
  one list per level (:func:`per_level`), which give the anchors per pixel of
  each level (``len(sizes) + len(ratios) - 1``);
* the input check (``(B, 3, H, W)``, at least :attr:`SSDBase.MIN_SIZE`);
* the anchor cache: anchors depend only on the input's ``(H, W, device)``, so
  they are computed once per input size;
* the outputs in anchor order: each head's ``(B, C, h, w)`` is flattened
  channels-last (:func:`~d2lssd.models.tinyssd.flatten_pred`), so row
  ``(i * w + j) * a + k`` of a level is anchor ``k`` of pixel ``(i, j)``,
  exactly where :func:`d2lssd.multibox_prior` puts it; levels are
  concatenated in the same order for predictions and anchors.

A subclass sets ``NUM_LEVELS``, ``MIN_SIZE``, ``SIZES``, ``RATIOS``, builds
its layers and heads after ``super().__init__`` (under any attribute names,
so existing state dicts keep loading) and implements
:meth:`SSDBase.feature_maps` and :meth:`SSDBase.heads`.

Source: the structure of torchvision's ``SSD`` and ``SSDScoringHead``
(``models/detection/ssd.py``: one head per level, outputs permuted to
``(B, h * w * a, C)`` and concatenated); d2l.ai §14.7 for the layout of the
outputs (``cls_preds (B, A, q + 1)``, ``bbox_preds (B, A * 4)``).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..anchors import multibox_prior

__all__ = ["SSDBase", "per_level", "cls_predictor", "bbox_predictor", "flatten_pred", "concat_preds"]


def cls_predictor(num_inputs: int, num_anchors: int, num_classes: int) -> nn.Conv2d:
    """Class prediction head: a 3x3 convolution (padding 1, keeps height and width).

    Args:
        num_inputs: channels of the feature map.
        num_anchors: anchors per pixel ``a``.
        num_classes: object classes ``q`` (background is added).

    Returns:
        ``nn.Conv2d`` mapping ``(B, num_inputs, h, w)`` to
        ``(B, a * (q + 1), h, w)`` logits; channel ``k * (q + 1) + c`` is
        class ``c`` (0 = background) of anchor ``k``.

    Source: d2l.ai §14.7.1.1 ``cls_predictor``.
    """
    return nn.Conv2d(num_inputs, num_anchors * (num_classes + 1), kernel_size=3, padding=1)


def bbox_predictor(num_inputs: int, num_anchors: int) -> nn.Conv2d:
    """Box offset head: a 3x3 convolution (padding 1).

    Returns:
        ``nn.Conv2d`` mapping ``(B, num_inputs, h, w)`` to ``(B, a * 4, h, w)``
        offsets; channel ``4 * k + m`` is offset ``m`` (dx, dy, dw, dh, see
        :func:`d2lssd.offset_boxes`) of anchor ``k``.

    Source: d2l.ai §14.7.1.2 ``bbox_predictor``.
    """
    return nn.Conv2d(num_inputs, num_anchors * 4, kernel_size=3, padding=1)


def flatten_pred(pred: torch.Tensor) -> torch.Tensor:
    """Flatten a head's output ``(B, C, h, w)`` to ``(B, h * w * C)``, channels last.

    Channels are moved last before flattening, so all ``C`` values of pixel
    ``(i, j)`` are contiguous and pixels are in row-major order: the anchor
    order of :func:`d2lssd.multibox_prior`.

    Raises:
        ValueError: ``pred`` is not 4-D.

    Source: d2l.ai §14.7.1.3 ``flatten_pred``.
    """
    if pred.dim() != 4:
        raise ValueError(f"pred must have shape (B, C, h, w), got {tuple(pred.shape)}")
    return torch.flatten(pred.permute(0, 2, 3, 1), start_dim=1)


def concat_preds(preds: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate the flattened predictions of several levels: list of ``(B, C_l, h_l, w_l)``
    -> ``(B, sum_l h_l * w_l * C_l)``, level after level.

    Source: d2l.ai §14.7.1.3 ``concat_preds``.
    """
    return torch.cat([flatten_pred(p) for p in preds], dim=1)


def per_level(values, num_levels: int, name: str) -> list[list[float]]:
    """``values`` as one list of floats per level: a flat list of numbers is shared by all levels.

    Args:
        values: a flat list of numbers, or ``num_levels`` lists of numbers.
        num_levels: the model's levels.
        name: the argument's name, for the error message.

    Returns:
        ``num_levels`` lists of floats (new lists).

    Raises:
        ValueError: neither a flat list nor one list per level.
    """
    values = list(values)
    if values and all(isinstance(v, (int, float)) for v in values):
        return [[float(v) for v in values] for _ in range(num_levels)]
    if len(values) != num_levels:
        raise ValueError(f"{name} must be one list per level ({num_levels}) or one flat list, "
                         f"got {values!r}")
    out = []
    for v in values:
        try:
            out.append([float(x) for x in v])
        except TypeError:
            raise ValueError(f"{name} must be one list per level or one flat list, got {values!r}") from None
    return out


class SSDBase(nn.Module):
    """Base of the SSD models: checks, anchor cache, and the forward pass in anchor order.

    Args:
        num_classes: object classes ``q`` (an integer >= 1, not a bool); the
            model predicts ``q + 1`` scores per anchor, class 0 being background.
        sizes, ratios: anchor sizes (fractions of the image height) and
            aspect ratios (width / height), one list per level or one flat
            list for all (see :func:`d2lssd.multibox_prior`); default the
            class's :attr:`SIZES` and :attr:`RATIOS`.

    ``forward(X)`` takes float images ``(B, 3, H, W)`` with ``H, W >=
    MIN_SIZE`` and returns ``(anchors, cls_preds, bbox_preds)``:

    * ``anchors``: float32 ``(1, A, 4)``, normalized corner format, on ``X``'s
      device, level by level, row-major over pixels, the anchors of a pixel
      together. Cached per ``(H, W, device)``: the *same* tensor object is
      returned on every call with that input size (do not modify it in place);
    * ``cls_preds``: ``(B, A, q + 1)`` class logits (not probabilities);
    * ``bbox_preds``: ``(B, A * 4)`` offsets (d2l's layout; row ``k`` of
      ``bbox_preds.reshape(B, A, 4)`` is anchor ``k``).

    Attributes:
        num_classes, sizes, ratios: as given (sizes and ratios one list per level).
        num_anchors: anchors per pixel of each level.
        feature_map_sizes: ``(h, w)`` of each level in the last forward pass.

    Raises:
        ValueError: ``num_classes`` not a positive integer, sizes/ratios not
            one list per level of positive numbers, an input that is not
            ``(B, 3, H, W)``, or ``H`` or ``W`` below :attr:`MIN_SIZE`.

    Subclasses define :meth:`feature_maps` and :meth:`heads`.
    """

    #: Number of feature maps.
    NUM_LEVELS: int = 0
    #: Smallest input side.
    MIN_SIZE: int = 1
    #: Default anchor sizes and ratios, one list per level.
    SIZES: list = []
    RATIOS: list = []
    #: What the too-small-input error adds (``{min_size}`` is filled in).
    MIN_SIZE_HINT = "H and W must be >= {min_size}"

    def __init__(self, num_classes: int, sizes=None, ratios=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes}")
        self.num_classes = int(num_classes)
        self.sizes = per_level(self.SIZES if sizes is None else sizes, self.NUM_LEVELS, "sizes")
        self.ratios = per_level(self.RATIOS if ratios is None else ratios, self.NUM_LEVELS, "ratios")
        for name, lists in (("sizes", self.sizes), ("ratios", self.ratios)):
            if any(not lst or min(lst) <= 0 for lst in lists):
                raise ValueError(f"{name} must be non-empty lists of positive numbers, got {lists}")
        #: Anchors per pixel of each level: len(sizes) + len(ratios) - 1.
        self.num_anchors = [len(s) + len(r) - 1 for s, r in zip(self.sizes, self.ratios)]
        self.feature_map_sizes: list[tuple[int, int]] = []
        self._anchor_cache: dict[tuple[int, int, torch.device], torch.Tensor] = {}

    def make_heads(self, in_channels: Sequence[int]) -> tuple[nn.ModuleList, nn.ModuleList]:
        """A class head and a box head per level for feature maps of ``in_channels`` channels."""
        return (nn.ModuleList([cls_predictor(c, a, self.num_classes) for c, a in zip(in_channels, self.num_anchors)]),
                nn.ModuleList([bbox_predictor(c, a) for c, a in zip(in_channels, self.num_anchors)]))

    def feature_maps(self, X: torch.Tensor) -> list[torch.Tensor]:
        """The ``NUM_LEVELS`` feature maps of images ``X`` ``(B, 3, H, W)``, largest first."""
        raise NotImplementedError

    def heads(self) -> tuple[Sequence[nn.Module], Sequence[nn.Module]]:
        """``(class heads, box heads)``, one of each per level, in level order."""
        raise NotImplementedError

    def _check_input(self, X) -> tuple[int, int, torch.device]:
        """The anchor cache's key ``(H, W, device)`` of images ``X``; ValueError for a bad input."""
        if not isinstance(X, torch.Tensor) or X.dim() != 4 or X.shape[1] != 3:
            shape = tuple(X.shape) if isinstance(X, torch.Tensor) else type(X).__name__
            raise ValueError(f"X must be images (B, 3, H, W), got {shape}")
        key = (int(X.shape[2]), int(X.shape[3]), X.device)
        if min(key[:2]) < self.MIN_SIZE:
            raise ValueError(f"input {key[:2]} is too small for {type(self).__name__}: "
                             + self.MIN_SIZE_HINT.format(min_size=self.MIN_SIZE))
        return key

    def anchors(self, maps: Sequence[torch.Tensor], key) -> torch.Tensor:
        """Anchors of all levels ``(1, A, 4)`` (:func:`d2lssd.multibox_prior` per level), cached by ``key``."""
        cached = self._anchor_cache.get(key)
        if cached is None:
            with torch.no_grad():
                cached = torch.cat([multibox_prior(Y, sizes=s, ratios=r)
                                    for Y, s, r in zip(maps, self.sizes, self.ratios)], dim=1)
            self._anchor_cache[key] = cached
        return cached

    def forward(self, X: torch.Tensor):
        key = self._check_input(X)
        maps = self.feature_maps(X)
        self.feature_map_sizes = [tuple(m.shape[-2:]) for m in maps]
        cls_heads, bbox_heads = self.heads()
        cls_preds = concat_preds([h(m) for h, m in zip(cls_heads, maps)])
        cls_preds = cls_preds.reshape(cls_preds.shape[0], -1, self.num_classes + 1)
        bbox_preds = concat_preds([h(m) for h, m in zip(bbox_heads, maps)])
        return self.anchors(maps, key), cls_preds, bbox_preds

    def clear_anchor_cache(self) -> None:
        """Forget the cached anchors (they are recomputed on the next forward pass)."""
        self._anchor_cache.clear()

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, num_anchors={self.num_anchors}"
