"""d2lssd: the Single Shot MultiBox Detector, one idea per module.

The course's chapters say ``import d2lssd`` and use the names re-exported here.
Dependencies point one way: boxes <- anchors, offsets <- matching, nms;
plotting and widgets sit on top and nothing below imports them.

The drawing names (``show_bboxes``, ``anchor_explorer``, ...: :data:`_LAZY`)
are loaded on first use by the module ``__getattr__`` (PEP 562), so ``import
d2lssd`` does not import matplotlib: the command line, the trainer and every
DDP worker start without it. ``d2lssd.show_bboxes`` and ``from d2lssd import
show_bboxes`` work as before.
"""

import importlib

from .anchor_fit import AnchorFit, anchor_coverage, best_anchor_iou, fit_anchors
from .anchors import SSD300_CONFIG, multibox_prior, ssd_default_boxes, ssd_scales
from .boxes import (box_area, box_center_to_corner, box_corner_to_center, box_iou, clip_boxes,
                    scale_boxes_to_pixels, to_normalized, to_pixels)
from .data import (BananasDataset, DataSource, DownloadError, download_extract, generate_bananas,
                   load_data_bananas, read_data_bananas)
from .data import (PennFudanDataset, collate_ssd, download_pennfudan, generate_pennfudan,
                   load_data_pennfudan, obtain_pennfudan, read_pennfudan, split_pennfudan)
from .data import (CocoDataset, VOCDataset, YOLODataset, check_coco, check_dataset, check_voc, check_yolo,
                   collate_detection, coco_results, evaluate_coco, generate_multiclass_coco, write_broken_copy, write_coco,
                   write_coco_results)
from .detector import Detector, PostProcess, detector_spec, load_detector
from .device import describe_device, try_gpu
from .focal import focal_loss, sigmoid_focal_loss
from .losses import MultiBoxLoss, calc_loss, hard_negative_mining, multibox_loss, smooth_l1, ssd_loss
from .matching import assign_anchor_to_bbox, multibox_target
from .metrics import (Accumulator, bbox_eval, bbox_mae_all, bbox_mae_positive, class_error_all,
                      class_error_positive, cls_eval, mean_average_precision)
from .models import SSDResNet34, TinySSD
from .postprocess import batched_nms, multibox_detection, nms, ssd_postprocess
from .offsets import offset_boxes, offset_inverse
from .photos import GROUND_TRUTH, PHOTOS, ground_truth_labels, load_photo
from .engine import History, load_checkpoint, save_checkpoint
from .presets import PRESETS, pick_schedule, preset_config
from .recipes import train_recipe
from .train import evaluate_ap, evaluate_ssd, predict, train_ssd
from .trainer import train_detector
from .tiling import merge_detections, tile_windows, tiled_detect

__version__ = "0.1.0"

__all__ = [
    "AnchorFit", "anchor_coverage", "best_anchor_iou", "fit_anchors",
    "SSD300_CONFIG", "multibox_prior", "ssd_default_boxes", "ssd_scales",
    "box_area", "box_center_to_corner", "box_corner_to_center", "box_iou", "clip_boxes", "scale_boxes_to_pixels",
    "BananasDataset", "DataSource", "DownloadError", "download_extract", "generate_bananas",
    "load_data_bananas", "read_data_bananas",
    "PennFudanDataset", "collate_ssd", "download_pennfudan", "generate_pennfudan",
    "load_data_pennfudan", "obtain_pennfudan", "read_pennfudan", "split_pennfudan",
    "CocoDataset", "VOCDataset", "YOLODataset", "check_coco", "check_dataset", "check_voc", "check_yolo",
    "collate_detection",
    "coco_results", "evaluate_coco", "generate_multiclass_coco", "write_broken_copy", "write_coco",
    "write_coco_results",
    "Detector", "PostProcess", "detector_spec", "load_detector",
    "describe_device", "try_gpu",
    "MultiBoxLoss", "calc_loss", "focal_loss", "hard_negative_mining", "multibox_loss",
    "sigmoid_focal_loss", "smooth_l1", "ssd_loss",
    "assign_anchor_to_bbox", "multibox_target",
    "Accumulator", "bbox_mae_all", "bbox_mae_positive", "class_error_all", "class_error_positive",
    "cls_eval", "bbox_eval",
    "mean_average_precision",
    "SSDResNet34", "TinySSD",
    "PRESETS", "pick_schedule", "preset_config", "train_recipe", "train_detector",
    "History", "evaluate_ap", "evaluate_ssd", "load_checkpoint", "predict", "save_checkpoint", "train_ssd",
    "batched_nms", "multibox_detection", "nms", "ssd_postprocess",
    "merge_detections", "tile_windows", "tiled_detect",
    "offset_boxes", "offset_inverse",
    "GROUND_TRUTH", "PHOTOS", "ground_truth_labels", "load_photo", "to_normalized", "to_pixels",
    "bbox_to_rect", "plot_iou_matrix", "set_figsize", "show_anchors_of_pixel", "show_bboxes",
    "show_image",
    "draw_losses", "loss_explorer",
    "anchor_explorer", "detections_like_boxes", "draw_anchors", "draw_iou", "draw_nms",
    "iou_explorer", "nms_explorer", "static_explorer",
]

#: Names imported on first use (name -> submodule), so that ``import d2lssd``
#: leaves matplotlib out; the submodules themselves are reachable the same way
#: (``d2lssd.plotting``, ``d2lssd.widgets``).
_LAZY = {
    **dict.fromkeys(("bbox_to_rect", "plot_iou_matrix", "set_figsize", "show_anchors_of_pixel",
                     "show_bboxes", "show_image"), "plotting"),
    **dict.fromkeys(("anchor_explorer", "detections_like_boxes", "draw_anchors", "draw_iou",
                     "draw_losses", "draw_nms", "iou_explorer", "loss_explorer", "nms_explorer",
                     "static_explorer"), "widgets"),
}
_LAZY_MODULES = ("plotting", "widgets")


def __getattr__(name: str):
    """Import a drawing name (or the plotting/widgets module) on first use; cache it in the package."""
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name in _LAZY_MODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_LAZY_MODULES))
