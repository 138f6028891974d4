"""SSD models: d2l's TinySSD (and its variants for training from scratch) and the ResNet-34 SSD of the Penn-Fudan chapter, on one base, in one registry.

:class:`SSDBase` (``base.py``) holds what every SSD model shares: the checks,
the per-level heads, the anchor cache and the outputs in anchor order; a model
says only how its feature maps are computed.
"""

from .base import SSDBase, per_level
from .registry import MODELS, ModelEntry, build_model, get_model, model_name_of, register_model
from .scratch import ScratchSSD, ScratchTinySSD, TinySSDNormHeads, TinySSDStride4, norm_head
from .ssd_resnet import PENNFUDAN_RATIOS, PENNFUDAN_SIZES, SSD_RESNET34_RATIOS, SSD_RESNET34_SIZES, SSDResNet34
from .tinyssd import (
    TinySSD,
    base_net,
    bbox_predictor,
    blk_forward,
    cls_predictor,
    concat_preds,
    down_sample_blk,
    flatten_pred,
    get_blk,
)

__all__ = [
    "SSDBase", "per_level",
    "MODELS", "ModelEntry", "build_model", "get_model", "model_name_of", "register_model",
    "SSDResNet34", "SSD_RESNET34_SIZES", "SSD_RESNET34_RATIOS", "PENNFUDAN_SIZES", "PENNFUDAN_RATIOS",
    "TinySSD", "base_net", "bbox_predictor", "blk_forward", "cls_predictor",
    "concat_preds", "down_sample_blk", "flatten_pred", "get_blk",
    "ScratchTinySSD", "TinySSDNormHeads", "TinySSDStride4", "ScratchSSD", "norm_head",
]
