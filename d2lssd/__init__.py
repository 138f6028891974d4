"""d2lssd: the Single Shot MultiBox Detector, one idea per module.

The course's chapters say ``import d2lssd`` and use the names re-exported here.
Dependencies point one way: boxes <- anchors, offsets <- matching, nms;
plotting and widgets sit on top and nothing below imports them.
"""

from .anchors import SSD300_CONFIG, multibox_prior, ssd_default_boxes, ssd_scales
from .boxes import box_area, box_center_to_corner, box_corner_to_center, box_iou, clip_boxes
from .device import describe_device, try_gpu
from .matching import assign_anchor_to_bbox, multibox_target
from .nms import batched_nms, multibox_detection, nms
from .offsets import offset_boxes, offset_inverse

__version__ = "0.1.0"

__all__ = [
    "SSD300_CONFIG", "multibox_prior", "ssd_default_boxes", "ssd_scales",
    "box_area", "box_center_to_corner", "box_corner_to_center", "box_iou", "clip_boxes",
    "describe_device", "try_gpu",
    "assign_anchor_to_bbox", "multibox_target",
    "batched_nms", "multibox_detection", "nms",
    "offset_boxes", "offset_inverse",
]
