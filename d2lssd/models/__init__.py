"""SSD models: d2l's TinySSD (and, later, the ResNet-34 SSD of the Penn-Fudan chapter)."""

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
    "TinySSD", "base_net", "bbox_predictor", "blk_forward", "cls_predictor",
    "concat_preds", "down_sample_blk", "flatten_pred", "get_blk",
]
