"""TinySSD: d2l's small single-shot multibox detector, built level by level.

Five feature maps (a 16-32-64 base network, three 128-channel down-sampling
blocks and a global max pool) each get a 3x3 convolutional class head and box
head, and anchors from :func:`d2lssd.multibox_prior`. For a 256x256 input the
maps are 32x32, 16x16, 8x8, 4x4 and 1x1 with 4 anchors per pixel:
``4 * (1024 + 256 + 64 + 16 + 1) = 5444`` anchors.

Alignment of heads and anchors: the class head of a level has
``a * (q + 1)`` output channels, channel ``k * (q + 1) + c`` being class ``c``
of anchor ``k``. :func:`flatten_pred` moves channels last
(``permute(0, 2, 3, 1)``) before flattening, so the prediction for anchor
``k`` of pixel ``(i, j)`` lands at row ``(i * w + j) * a + k`` of its level:
exactly where :func:`~d2lssd.multibox_prior` puts that anchor. Levels are
concatenated in the same order for predictions and anchors.

Differences from d2l: anchors depend only on the input size, so
:class:`TinySSD` computes them once per input ``(H, W, device)`` and caches
them instead of recomputing them on every forward pass; sizes, ratios and the
number of classes are constructor arguments. Module and attribute names
(``blk_0`` ... ``bbox_4``) are d2l's, so d2l's state dicts load unchanged.
The checks, the anchor cache and the forward pass in anchor order are those
of :class:`~d2lssd.models.base.SSDBase`, which every SSD model of the
package shares; TinySSD only says how its feature maps are computed.

Source: d2l.ai §14.7 "Single Shot Multibox Detection" (all names and
architecture); Liu et al. 2016 §2.1 (multiscale feature maps, convolutional
predictors).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..anchors import multibox_prior
# d2l's head and flattening functions live in .base (every SSD model uses them); re-exported here
from .base import SSDBase, bbox_predictor, cls_predictor, concat_preds, flatten_pred  # noqa: F401

__all__ = [
    "cls_predictor", "bbox_predictor", "flatten_pred", "concat_preds", "down_sample_blk",
    "base_net", "get_blk", "blk_forward", "TinySSD",
]


def down_sample_blk(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two [3x3 conv (padding 1), BatchNorm, ReLU] then 2x2 max pooling: halves height and width.

    Maps ``(B, in_channels, h, w)`` to ``(B, out_channels, h // 2, w // 2)``.

    Source: d2l.ai §14.7.1.4 ``down_sample_blk``.
    """
    blk = []
    for _ in range(2):
        blk.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
        blk.append(nn.BatchNorm2d(out_channels))
        blk.append(nn.ReLU())
        in_channels = out_channels
    blk.append(nn.MaxPool2d(2))
    return nn.Sequential(*blk)


def base_net() -> nn.Sequential:
    """The base network: three down-sampling blocks with 16, 32 and 64 channels.

    Maps ``(B, 3, H, W)`` to ``(B, 64, H // 8, W // 8)`` (32x32 for 256x256).

    Source: d2l.ai §14.7.1.5 ``base_net``.
    """
    blk = []
    num_filters = [3, 16, 32, 64]
    for i in range(len(num_filters) - 1):
        blk.append(down_sample_blk(num_filters[i], num_filters[i + 1]))
    return nn.Sequential(*blk)


def get_blk(i: int) -> nn.Module:
    """Block ``i`` (0..4) of TinySSD: base net, down-sample 64->128, two down-sample 128->128,
    global max pooling to 1x1.

    Raises:
        ValueError: ``i`` not in 0..4.

    Source: d2l.ai §14.7.1.6 ``get_blk`` (``AdaptiveMaxPool2d((1, 1))`` for block 4).
    """
    if i == 0:
        return base_net()
    if i == 1:
        return down_sample_blk(64, 128)
    if i in (2, 3):
        return down_sample_blk(128, 128)
    if i == 4:
        return nn.AdaptiveMaxPool2d((1, 1))
    raise ValueError(f"TinySSD has blocks 0..4, got {i}")


def blk_forward(X: torch.Tensor, blk: nn.Module, size: Sequence[float], ratio: Sequence[float],
                cls_predictor: nn.Module, bbox_predictor: nn.Module):
    """Run one level: block, anchors, class and box heads.

    Args:
        X: input of the block ``(B, C_in, H, W)``.
        blk: the block; gives the feature map ``Y`` ``(B, C, h, w)``.
        size, ratio: anchor sizes and ratios of this level (see
            :func:`d2lssd.multibox_prior`).
        cls_predictor, bbox_predictor: the level's heads.

    Returns:
        ``(Y, anchors, cls_preds, bbox_preds)``: the feature map, anchors
        ``(1, h * w * a, 4)`` (normalized corner format), class logits
        ``(B, a * (q + 1), h, w)`` and offsets ``(B, a * 4, h, w)``.

    Source: d2l.ai §14.7.1.6 ``blk_forward`` (same behaviour: computes the
    anchors on each call; :class:`TinySSD` caches them instead).
    """
    Y = blk(X)
    anchors = multibox_prior(Y, sizes=size, ratios=ratio)
    return Y, anchors, cls_predictor(Y), bbox_predictor(Y)


class TinySSD(SSDBase):
    """d2l's TinySSD: five feature maps, a class head and a box head on each.

    Args:
        num_classes: object classes ``q`` (>= 1); the model predicts ``q + 1``
            scores per anchor, class 0 being background.
        sizes: anchor sizes per level (5 lists, fractions of the feature map's
            height, see :func:`d2lssd.multibox_prior`), default :attr:`SIZES`.
        ratios: aspect ratios, one list per level or one flat list for all,
            default :attr:`RATIOS`.

    ``forward(X)`` takes images ``(B, 3, H, W)`` float (H, W >= 64 so that the
    fourth level is at least 1x1; 256x256 in d2l) and returns

    * ``anchors``: float32 ``(1, A, 4)``, normalized corner format, on ``X``'s
      device. Cached per ``(H, W, device)``: the *same* tensor object is
      returned on every call with that input size, so do not modify it in place.
    * ``cls_preds``: ``(B, A, q + 1)`` class logits (not probabilities).
    * ``bbox_preds``: ``(B, A * 4)`` offsets (d2l's layout; row ``k`` of
      ``bbox_preds.reshape(B, A, 4)`` is anchor ``k``).

    ``A = 5444`` for 256x256 with the default sizes and ratios.

    Raises:
        ValueError: ``num_classes < 1``, sizes/ratios not one list per level,
            an input that is not ``(B, 3, H, W)``, or ``H`` or ``W`` below
            :attr:`MIN_SIZE` (64), where a block would produce an empty map.

    Source: d2l.ai §14.7.1.6 ``TinySSD`` (same architecture, attribute names
    and outputs); anchor caching and configurable sizes are ours.
    """

    #: Anchor sizes per level (fractions of the height), d2l's values.
    SIZES = [[0.2, 0.272], [0.37, 0.447], [0.54, 0.619], [0.71, 0.79], [0.88, 0.961]]
    #: Aspect ratios (width / height) per level, d2l's values.
    RATIOS = [[1, 2, 0.5]] * 5
    #: Channels of the five feature maps (inputs of the heads).
    IN_CHANNELS = [64, 128, 128, 128, 128]
    NUM_LEVELS = 5
    #: Smallest input side: six halvings before the fourth level (H // 64 >= 1).
    MIN_SIZE = 64
    MIN_SIZE_HINT = "the fourth level is H // 64 x W // 64, so H and W must be >= {min_size}"

    def __init__(self, num_classes: int, sizes=None, ratios=None, **kwargs):
        super().__init__(num_classes, sizes, ratios, **kwargs)
        for i in range(self.NUM_LEVELS):  # d2l's attribute names: d2l's state dicts load unchanged
            setattr(self, f"blk_{i}", get_blk(i))
            setattr(self, f"cls_{i}", cls_predictor(self.IN_CHANNELS[i], self.num_anchors[i], self.num_classes))
            setattr(self, f"bbox_{i}", bbox_predictor(self.IN_CHANNELS[i], self.num_anchors[i]))

    def feature_maps(self, X: torch.Tensor) -> list[torch.Tensor]:
        """The five feature maps: ``blk_0`` ... ``blk_4`` applied in turn (32, 16, 8, 4, 1 for 256x256)."""
        maps = []
        for i in range(self.NUM_LEVELS):
            X = getattr(self, f"blk_{i}")(X)
            maps.append(X)
        return maps

    def heads(self):
        """``([cls_0, ..., cls_4], [bbox_0, ..., bbox_4])``."""
        return ([getattr(self, f"cls_{i}") for i in range(self.NUM_LEVELS)],
                [getattr(self, f"bbox_{i}") for i in range(self.NUM_LEVELS)])
