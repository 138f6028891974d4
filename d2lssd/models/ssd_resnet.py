"""SSD with a ResNet-34 backbone for the Penn-Fudan pedestrians (issue 10).

Six feature maps, each projected to 256 channels: ResNet-34's ``layer2``,
``layer3`` and ``layer4`` (strides 8, 16, 32: 38x38, 19x19 and 10x10 for a
300x300 input) and three extra stride-2 blocks (5x5, 3x3, 1x1). Every cell
of every map gets 4 anchors from :func:`d2lssd.multibox_prior` with ratios
(width / height) that favour tall boxes, so a 300x300 input has
``4 * (38² + 19² + 10² + 5² + 3² + 1²) = 7760`` anchors. Each map has a 3x3
class head and a 3x3 box head, flattened and concatenated exactly as in
:class:`~d2lssd.models.TinySSD` (all anchors of a pixel together, pixels
row-major, levels in order), so the model plugs into
:func:`d2lssd.train_ssd`, :func:`d2lssd.predict` and the metrics unchanged.

Input: float images ``(B, 3, H, W)`` with values in [0, 1] (what
:class:`d2lssd.transforms.SSDEvalTransform` produces); the model subtracts
the ImageNet mean and divides by its standard deviation itself, so data and
model stay independent of the backbone's preprocessing.

Source: Liu et al. 2016 (SSD: extra layers, multiscale heads); He et al.
2016 (ResNet-34); torchvision's ``models.resnet34`` and weights API
(``ResNet34_Weights.IMAGENET1K_V1``); the "SSD with a ResNet backbone"
variant of NVIDIA's DeepLearningExamples (``layer2``-``layer4`` plus extras).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from .base import SSDBase

__all__ = ["SSDResNet34", "SSD_RESNET34_SIZES", "SSD_RESNET34_RATIOS", "PENNFUDAN_SIZES", "PENNFUDAN_RATIOS"]

#: Anchor sizes per level (fractions of the image side, see :func:`d2lssd.multibox_prior`):
#: a level's anchors are (s1, r1), (s2, r1), (s1, r2), (s1, r3), an anchor (s, r)
#: being ``s * sqrt(r)`` wide and ``s / sqrt(r)`` high (at a square input).
SSD_RESNET34_SIZES = [[0.1, 0.14], [0.2, 0.27], [0.35, 0.45], [0.5, 0.6], [0.65, 0.75], [0.8, 0.9]]
#: Anchor ratios (width / height) per level: all tall, for upright people
#: (0.3: 1.8 times as high as a square of the same size; 0.2 and 0.5 around it).
#: Coverage measured on generated data (seed 0, 170 images, 361 pedestrians,
#: generator version 1): 99.7% of the ground-truth boxes (resized to 300x300)
#: have an anchor with IoU >= 0.5 (median best IoU 0.71, 14 such anchors per
#: box on average); 98.6% of 1021 boxes after :class:`d2lssd.transforms.SSDTrainTransform`.
SSD_RESNET34_RATIOS = [[0.3, 0.2, 0.5]] * 6
#: The names these defaults had when the Penn-Fudan chapter was their only user (the chapter prints them).
PENNFUDAN_SIZES, PENNFUDAN_RATIOS = SSD_RESNET34_SIZES, SSD_RESNET34_RATIOS

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _conv_bn_relu(cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _extra_block(cin: int, cout: int, padding: int) -> nn.Sequential:
    """1x1 bottleneck to ``cout // 2`` channels, then a 3x3 stride-2 convolution to ``cout``.

    ``(B, cin, h, w) -> (B, cout, (h + 2 * padding - 3) // 2 + 1, ...)``: 10 -> 5
    and 5 -> 3 with ``padding=1``, 3 -> 1 with ``padding=0`` (SSD's extras).
    """
    return nn.Sequential(_conv_bn_relu(cin, cout // 2, 1),
                         _conv_bn_relu(cout // 2, cout, 3, stride=2, padding=padding))


def _load_imagenet_resnet34() -> nn.Module:
    """ResNet-34 with ImageNet weights (torchvision weights API); raises if they cannot be had.

    With ``D2LSSD_OFFLINE=1`` the network is not tried: the weights must
    already be in torch's hub cache (``torch.hub.get_dir()/checkpoints``).
    """
    import os
    from pathlib import Path

    from torchvision.models import ResNet34_Weights, resnet34

    weights = ResNet34_Weights.IMAGENET1K_V1
    if os.environ.get("D2LSSD_OFFLINE", "").strip().lower() in ("1", "true", "yes"):
        cached = Path(torch.hub.get_dir()) / "checkpoints" / weights.url.rsplit("/", 1)[-1]
        if not cached.is_file():
            raise RuntimeError(f"D2LSSD_OFFLINE=1 and {cached.name} is not in torch's hub cache")
    # torch.hub prints "Downloading: <url> to <cache path>": show the home folder as ~ (pages name no
    # path of the build machine)
    import contextlib
    import io
    import sys

    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            return resnet34(weights=weights, progress=False)
    finally:
        home, text = str(Path.home()), out.getvalue()
        if text:
            sys.stdout.write(text.replace(home, "~") if home not in ("", "/") else text)


class SSDResNet34(SSDBase):
    """SSD300 with a ResNet-34 backbone: 6 levels, 4 tall-leaning anchors per cell, 7760 anchors.

    Args:
        num_classes: object classes ``q`` (1 for pedestrians); the model
            predicts ``q + 1`` scores per anchor, class 0 being background.
        pretrained: ``True`` (default): ImageNet weights for the backbone
            through torchvision's weights API (``ResNet34_Weights.IMAGENET1K_V1``,
            downloaded once into torch's hub cache); if they cannot be loaded
            (no network, a broken cache) a ``UserWarning`` says so and the
            backbone is randomly initialized. ``False``: random
            initialization, no download, no warning.
        sizes, ratios: anchor sizes and ratios per level (six lists, see
            :func:`d2lssd.multibox_prior`; sizes are fractions of the image
            height); ``len(sizes[l]) + len(ratios[l]) - 1`` anchors per cell.
            Default :data:`SSD_RESNET34_SIZES`, :data:`SSD_RESNET34_RATIOS`
            (4 per cell, tall: made for pedestrians).
        channels: channels of every projected feature map (256).

    ``forward(X)`` takes float images ``(B, 3, H, W)`` in [0, 1] (300x300 in
    the chapter; any ``H, W >= MIN_SIZE`` = 257 works) and returns, like
    :class:`~d2lssd.models.TinySSD`:

    * ``anchors``: float32 ``(1, A, 4)``, normalized corner format, level by
      level, row-major over cells, anchors of a cell together; cached per
      ``(H, W, device)`` (the same tensor object each call: do not modify it);
    * ``cls_preds``: ``(B, A, q + 1)`` class logits;
    * ``bbox_preds``: ``(B, A * 4)`` offsets (see :func:`d2lssd.offset_boxes`).

    ``A = 7760`` for 300x300 with the default anchors.

    Attributes:
        weights: ``"IMAGENET1K_V1"`` if the ImageNet weights were loaded,
            else ``"random"``; weights_note: one line saying which and why.
        num_anchors: anchors per cell of each level.
        feature_map_sizes: ``(h, w)`` of each level in the last forward pass.

    Raises:
        ValueError: ``num_classes < 1``, sizes/ratios not one list per level,
            an input that is not ``(B, 3, H, W)`` or smaller than ``MIN_SIZE``.

    Source: see the module docstring.
    """

    NUM_LEVELS = 6
    #: Smallest input side: the fifth map must be at least 3x3 for the last 3x3 valid convolution.
    MIN_SIZE = 257
    MIN_SIZE_HINT = "H and W must be >= {min_size} (300 in the chapter)"
    SIZES, RATIOS = SSD_RESNET34_SIZES, SSD_RESNET34_RATIOS

    def __init__(self, num_classes: int = 1, pretrained: bool = True, sizes=None, ratios=None,
                 channels: int = 256):
        super().__init__(num_classes, sizes, ratios)
        backbone, self.weights, self.weights_note = self._backbone(pretrained)
        self.stem = nn.Sequential(backbone.conv1, backbone.bn1, backbone.relu, backbone.maxpool,
                                  backbone.layer1)
        self.layer2, self.layer3, self.layer4 = backbone.layer2, backbone.layer3, backbone.layer4
        self.proj = nn.ModuleList([_conv_bn_relu(c, channels, 1) for c in (128, 256, 512)])
        self.extras = nn.ModuleList([_extra_block(512, channels, 1), _extra_block(channels, channels, 1),
                                     _extra_block(channels, channels, 0)])
        self.cls_heads, self.bbox_heads = self.make_heads([channels] * self.NUM_LEVELS)
        for m in [*self.proj.modules(), *self.extras.modules()]:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).reshape(1, 3, 1, 1), persistent=False)

    @staticmethod
    def _backbone(pretrained: bool):
        from torchvision.models import resnet34

        if not pretrained:
            return resnet34(weights=None), "random", "random initialization (pretrained=False)"
        try:
            net = _load_imagenet_resnet34()
        except Exception as e:  # no network, HTTP error, corrupt cache file, ...
            why = f"{type(e).__name__}: {e}".splitlines()[0][:200]
            warnings.warn(f"SSDResNet34: the ImageNet weights of ResNet-34 could not be loaded ({why}); "
                          "the backbone is randomly initialized, so training needs far longer and "
                          "reaches a lower AP", UserWarning, stacklevel=3)
            return resnet34(weights=None), "random", f"random initialization (ImageNet weights failed: {why})"
        return net, "IMAGENET1K_V1", "ImageNet weights (torchvision ResNet34_Weights.IMAGENET1K_V1)"

    def features(self, X: torch.Tensor) -> list[torch.Tensor]:
        """The six 256-channel feature maps of normalized images ``X`` ``(B, 3, H, W)``, largest first."""
        x = self.stem(X)
        c2 = self.layer2(x)
        c3 = self.layer3(c2)
        c4 = self.layer4(c3)
        maps = [p(c) for p, c in zip(self.proj, (c2, c3, c4))]
        y = c4
        for blk in self.extras:
            y = blk(y)
            maps.append(y)
        return maps

    def feature_maps(self, X: torch.Tensor) -> list[torch.Tensor]:
        """The six feature maps of images ``X`` in [0, 1]: ImageNet-normalized, then :meth:`features`."""
        return self.features((X - self.mean) / self.std)

    def heads(self):
        """``(cls_heads, bbox_heads)``: two ``nn.ModuleList`` of six 3x3 convolutions."""
        return self.cls_heads, self.bbox_heads

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, num_anchors={self.num_anchors}, weights={self.weights!r}"
