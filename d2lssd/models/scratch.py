"""TinySSD variants for training from scratch and for small objects.

Two changes to d2l's TinySSD (:class:`~d2lssd.models.TinySSD`), each a model
of its own in the registry so that an ablation can measure one at a time:

* **Normalized heads** (``tinyssd-bn``): each class head and box head is a
  3x3 convolution without bias, batch normalization and ReLU, then the
  3x3 predictor. d2l's heads are the predictor alone, applied to the feature
  map. ScratchDet (Zhu et al., CVPR 2019, §3.2) found that batch
  normalization in the *detection head* (not only in the backbone) is what
  lets SSD train from scratch, stably and at a larger learning rate; the
  extra convolution with BN is the normalized head of RetinaNet-style
  detectors (torchvision's ``RetinaNetHead`` v2 uses GroupNorm the same way).
* **A stride-4 first level** (``tinyssd-s4``): a sixth feature map, taken
  after the second block of d2l's base network (32 channels, ``H / 4``;
  64x64 at 256 px) with its own heads and anchors. TinySSD's finest map has
  a stride of 8 pixels: a 10-pixel box then sits up to 4 pixels from the
  nearest anchor centre, where even an anchor of its size overlaps it with
  IoU below the 0.5 of matching. Liu et al. 2016 (§3.6 "Data augmentation for
  small object accuracy" and Table 6) name small objects as SSD's weakness;
  FPN-era detectors (and DSSD) add finer maps for them.
* ``scratchssd`` is both.

ScratchDet's third change, a *root block* that keeps resolution in the first
layers (instead of the stride-2 7x7 convolution and pooling of ImageNet
backbones), TinySSD has already: its first block runs two 3x3 convolutions at
full resolution before the first pooling. It is therefore not a separate model.

Every variant takes d2l's input convention (pixels in [0, 255]), has the same
``MIN_SIZE`` (64), and the outputs of :class:`~d2lssd.models.SSDBase`
(anchors, class logits, offsets in anchor order). Default anchor sizes of the
stride-4 level are half the finest d2l level's (0.1 and 0.141 of the height);
``d2lssd train`` fits all levels to the training boxes anyway.

Source: ScratchDet (Zhu, Zhang, Wang, Wen, Shi, Bo, Mei; CVPR 2019) §3.2-3.3; d2l.ai
§14.7 (TinySSD); the level-by-level layout of :mod:`d2lssd.models.tinyssd`.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import SSDBase, bbox_predictor, cls_predictor
from .tinyssd import TinySSD, get_blk

__all__ = ["norm_head", "ScratchTinySSD", "TinySSDNormHeads", "TinySSDStride4", "ScratchSSD"]


def norm_head(num_inputs: int, predictor: nn.Conv2d) -> nn.Sequential:
    """A normalized head: 3x3 conv (no bias) -> BatchNorm -> ReLU -> ``predictor``.

    Maps ``(B, num_inputs, h, w)`` to what ``predictor`` gives (``(B, a * (q + 1), h, w)``
    for a class head, ``(B, a * 4, h, w)`` for a box head); height and width are kept.

    Source: ScratchDet §3.2 (batch normalization in the detection head); the
    conv-norm-ReLU tower of torchvision's ``RetinaNetClassificationHead`` (one layer, BN).
    """
    return nn.Sequential(nn.Conv2d(num_inputs, num_inputs, kernel_size=3, padding=1, bias=False),
                         nn.BatchNorm2d(num_inputs), nn.ReLU(), predictor)


class ScratchTinySSD(SSDBase):
    """TinySSD with optional normalized heads and an optional stride-4 first level.

    The switches are class attributes, so that each combination is a class of
    its own (registered as ``tinyssd-bn``, ``tinyssd-s4`` and ``scratchssd``):

    * ``NORM_HEADS``: every head is :func:`norm_head` instead of d2l's bare predictor;
    * ``STRIDE4``: a first level at ``H // 4`` (32 channels) before d2l's five.

    Args:
        num_classes: object classes ``q`` (>= 1); ``q + 1`` scores per anchor.
        sizes, ratios: anchors per level (one list per level, or one flat list),
            default :attr:`SIZES` / :attr:`RATIOS`.

    ``forward(X)`` takes float images ``(B, 3, H, W)`` in [0, 255] with ``H, W
    >= 64`` and returns ``(anchors (1, A, 4), cls_preds (B, A, q + 1),
    bbox_preds (B, A * 4))`` as :class:`~d2lssd.models.SSDBase`. At 256x256
    ``A`` is 5444 without and 21828 with the stride-4 level (64x64 pixels x 4
    anchors added).

    Raises:
        ValueError: as :class:`~d2lssd.models.TinySSD` (``num_classes``, sizes
            and ratios, an input that is not ``(B, 3, H, W)`` of at least 64 px).

    Source: see the module docstring (ScratchDet §3.2; d2l.ai §14.7).
    """

    NORM_HEADS = False
    STRIDE4 = False
    MIN_SIZE = TinySSD.MIN_SIZE
    MIN_SIZE_HINT = TinySSD.MIN_SIZE_HINT

    NUM_LEVELS = TinySSD.NUM_LEVELS
    SIZES = [list(s) for s in TinySSD.SIZES]
    RATIOS = list(TinySSD.RATIOS)
    IN_CHANNELS = list(TinySSD.IN_CHANNELS)

    def __init_subclass__(cls, **kwargs):  # the level layout follows the switches
        super().__init_subclass__(**kwargs)
        cls.NUM_LEVELS = 6 if cls.STRIDE4 else 5
        cls.SIZES = ([[0.1, 0.141]] if cls.STRIDE4 else []) + [list(s) for s in TinySSD.SIZES]
        cls.RATIOS = [[1, 2, 0.5]] * cls.NUM_LEVELS
        cls.IN_CHANNELS = ([32] if cls.STRIDE4 else []) + list(TinySSD.IN_CHANNELS)

    def __init__(self, num_classes: int, sizes=None, ratios=None, **kwargs):
        super().__init__(num_classes, sizes, ratios, **kwargs)
        base = get_blk(0)  # d2l's base net: 3 -> 16 -> 32 (stride 4) -> 64 (stride 8)
        if self.STRIDE4:
            self.stem = base[:2]
            self.blocks = nn.ModuleList([base[2:]] + [get_blk(i) for i in range(1, 5)])
        else:
            self.stem = nn.Identity()
            self.blocks = nn.ModuleList([base] + [get_blk(i) for i in range(1, 5)])
        wrap = norm_head if self.NORM_HEADS else (lambda c, p: p)
        self.cls_heads = nn.ModuleList([wrap(c, cls_predictor(c, a, self.num_classes))
                                        for c, a in zip(self.IN_CHANNELS, self.num_anchors)])
        self.bbox_heads = nn.ModuleList([wrap(c, bbox_predictor(c, a))
                                         for c, a in zip(self.IN_CHANNELS, self.num_anchors)])

    def feature_maps(self, X: torch.Tensor) -> list[torch.Tensor]:
        """The feature maps, largest first: (64,) 32, 16, 8, 4, 1 for 256x256."""
        X = self.stem(X)
        maps = [X] if self.STRIDE4 else []
        for blk in self.blocks:
            X = blk(X)
            maps.append(X)
        return maps

    def heads(self):
        """``(class heads, box heads)``, one of each per level."""
        return self.cls_heads, self.bbox_heads


class TinySSDNormHeads(ScratchTinySSD):
    """TinySSD with normalized heads (:func:`norm_head`): registered as ``tinyssd-bn``."""

    NORM_HEADS = True


class TinySSDStride4(ScratchTinySSD):
    """TinySSD with a stride-4 first level: registered as ``tinyssd-s4``."""

    STRIDE4 = True


class ScratchSSD(ScratchTinySSD):
    """TinySSD with normalized heads and a stride-4 first level: registered as ``scratchssd``."""

    NORM_HEADS = True
    STRIDE4 = True

