"""SSD models: d2l's TinySSD and the ResNet-34 SSD of the Penn-Fudan chapter."""

from .ssd_resnet import PENNFUDAN_RATIOS, PENNFUDAN_SIZES, SSDResNet34
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
    "SSDResNet34", "PENNFUDAN_SIZES", "PENNFUDAN_RATIOS",
    "TinySSD", "base_net", "bbox_predictor", "blk_forward", "cls_predictor",
    "concat_preds", "down_sample_blk", "flatten_pred", "get_blk",
]
