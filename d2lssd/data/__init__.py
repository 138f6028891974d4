"""Data sets: checksummed downloads, the banana and Penn-Fudan data (real or generated).

``d2lssd.data.download`` fetches and extracts archives safely (its function
``download`` is reached as ``d2lssd.data.download.download``: re-exporting it
here would hide the module of the same name);
``d2lssd.data.bananas`` reads d2l's banana detection data and, where it cannot
be downloaded, generates a look-alike offline; ``d2lssd.data.pennfudan`` does
the same for the Penn-Fudan pedestrians (instance masks, a seeded 120/50 split);
``d2lssd.data.common`` holds what both share (:class:`DataSource`, the
download-or-generate policy, the atomic generated folder and its marker, the
background photos).

Your own data: ``d2lssd.data.coco`` reads and writes COCO detection files
(:class:`CocoDataset`, :func:`write_coco`, results and their COCO AP),
``d2lssd.data.voc`` reads Pascal VOC folders (:class:`VOCDataset`; the layouts of :func:`voc_layout`),
``d2lssd.data.yolo`` reads YOLO data sets (Ultralytics YAML or ``images/`` +
``labels/`` folders; :class:`YOLODataset`, :func:`check_yolo`),
``d2lssd.data.check`` lints COCO and VOC (:func:`check_coco`, :func:`check_voc`,
``d2lssd check-data``), and ``d2lssd.data.multiclass`` generates a small
two-class COCO data set offline (and a deliberately broken copy of it).
"""

from .bananas import (
    CSV_HEADER,
    GENERATOR_VERSION,
    BananasDataset,
    DataSource,
    generate_bananas,
    load_data_bananas,
    read_data_bananas,
)
from .pennfudan import (
    PENNFUDAN_CLASSES,
    PENNFUDAN_MD5,
    PENNFUDAN_URL,
    PennFudanDataset,
    PennFudanRecord,
    download_pennfudan,
    load_data_pennfudan,
    obtain_pennfudan,
    read_pennfudan,
    split_pennfudan,
)
from .pennfudan_format import format_annotation, parse_annotation
from .pennfudan_generator import PENNFUDAN_GENERATOR_VERSION, generate_pennfudan
from ._detection import DetectionDataset, collate_detection
from .collate import collate_ssd
from .check import DataReport, Problem, check_coco, check_dataset, read_coco_json
from .coco import (CocoDataset, coco_annotation, coco_results, evaluate_coco, write_coco,
                   write_coco_results)
from .multiclass import (MULTICLASS_CATEGORIES, MULTICLASS_GENERATOR_VERSION, generate_multiclass_coco,
                         write_broken_copy)
from .voc import (VOC_CLASSES, VOCDataset, check_voc, read_voc_annotation, voc_class_names, voc_image_names,
                  voc_image_set_file, voc_image_sets, voc_layout)
from .yolo import YOLODataset, check_yolo, read_yolo_yaml, yolo_label_path
from .download import (
    DATA_HUB,
    DATA_URL,
    DownloadError,
    cache_dir,
    download_extract,
    extract,
    sha1sum,
)

__all__ = [
    "CSV_HEADER", "GENERATOR_VERSION", "BananasDataset", "DataSource",
    "generate_bananas", "load_data_bananas", "read_data_bananas",
    "PENNFUDAN_CLASSES", "PENNFUDAN_GENERATOR_VERSION", "PENNFUDAN_MD5", "PENNFUDAN_URL",
    "PennFudanDataset", "PennFudanRecord", "collate_ssd", "download_pennfudan", "format_annotation",
    "generate_pennfudan", "load_data_pennfudan", "obtain_pennfudan", "parse_annotation",
    "read_pennfudan", "split_pennfudan",
    "DetectionDataset", "collate_detection",
    "DataReport", "Problem", "check_coco", "check_dataset", "check_voc", "read_coco_json",
    "CocoDataset", "coco_annotation", "coco_results", "evaluate_coco", "write_coco", "write_coco_results",
    "MULTICLASS_CATEGORIES", "MULTICLASS_GENERATOR_VERSION", "generate_multiclass_coco", "write_broken_copy",
    "VOC_CLASSES", "VOCDataset", "read_voc_annotation", "voc_class_names", "voc_image_names", "voc_image_set_file",
    "voc_image_sets", "voc_layout",
    "YOLODataset", "check_yolo", "read_yolo_yaml", "yolo_label_path",
    "DATA_HUB", "DATA_URL", "DownloadError", "cache_dir", "download_extract", "extract", "sha1sum",
]
