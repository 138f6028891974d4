"""``d2lssd check-data`` warns when many boxes are small at the training size (``small_objects``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from _helpers import write_voc
from d2lssd.cli import main
from d2lssd.data.check import box_shapes, check_dataset, check_small_objects
from d2lssd.data.report import small_objects_warning


def _coco(root, boxes, size=(512, 512), extra_annotations=()):
    """A COCO set of one ``size`` image per box (PNG files written), ``boxes`` as ``(category id, w, h)``."""
    (root / "images").mkdir(parents=True)
    W, H = size
    Image.fromarray(np.zeros((H, W, 3), dtype=np.uint8)).save(root / "images" / "a.png")
    images, annotations = [], []
    for k, (cid, w, h) in enumerate(boxes, start=1):
        images.append({"id": k, "file_name": "a.png", "width": W, "height": H})
        annotations.append({"id": k, "image_id": k, "category_id": cid, "bbox": [10, 10, w, h], "iscrowd": 0,
                            "area": w * h})
    for k, a in enumerate(extra_annotations, start=len(boxes) + 1):
        annotations.append({"id": k, "image_id": 1, "area": 1, **a})
    data = {"images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "ant"}, {"id": 2, "name": "bee"}, {"id": 3, "name": "cow"}]}
    (root / "labels.json").write_text(json.dumps(data))
    return root / "labels.json", root / "images"


# 10 boxes on 512 x 512 images: at 256 a side halves. Small (< 16 px at 256): 20 x 40 (10 px) and 30 x 200
# (15 px); not small: 32 x 32 (exactly 16 px: the rule is "below 16") and 100 x 80.
TEN = [(1, 20, 40), (1, 20, 40), (2, 30, 200)] + [(3, 32, 32)] * 4 + [(3, 100, 80)] * 3


def test_many_small_boxes_give_one_warning_with_counts_classes_and_advice(tmp_path):
    coco, images = _coco(tmp_path, TEN)
    report = check_dataset(coco=coco, images=images)
    assert report.ok and not report.warnings
    w = check_small_objects(report, 256)
    assert w is not None and w.severity == "warning" and w.kind == "small_objects" and report.warnings == [w]
    msg = w.message
    assert "3 of 10 boxes (30%)" in msg and "256x256" in msg and "16 pixels" in msg
    assert "'ant' 2 of 2" in msg and "'bee' 1 of 1" in msg and "'cow'" not in msg  # the classes, worst first
    assert msg.index("'ant'") < msg.index("'bee'")
    assert "--size 512" in msg and "--tile" in msg and "anchors" in msg  # what to do


def test_the_share_and_the_size_decide(tmp_path):
    coco, images = _coco(tmp_path, TEN)
    report = check_dataset(coco=coco, images=images)
    assert check_small_objects(report, 512) is None  # at 512 the 20-pixel side stays 20
    assert check_small_objects(report, 128) is not None and "7 of 10 boxes" in report.warnings[-1].message  # 32 -> 8
    shapes = box_shapes(report)
    assert len(shapes) == 10 and shapes[0] == ("ant", 20 / 512, 40 / 512)
    one_in_ten = [("a", 0.01, 0.5)] + [("a", 0.5, 0.5)] * 9  # exactly 10 %: not more than 10 %
    assert small_objects_warning(one_in_ten, 256) is None
    assert small_objects_warning(one_in_ten[:9], 256) is not None  # 1 of 9
    assert small_objects_warning([], 256) is None


def test_a_non_square_image_is_squeezed_along_its_long_side(tmp_path):
    # 1024 x 256 resized to 256 x 256: x shrinks 4 times, y not at all; a 40 x 40 box becomes 10 x 40
    coco, images = _coco(tmp_path, [(1, 40, 40)] * 3, size=(1024, 256))
    report = check_dataset(coco=coco, images=images)
    assert check_small_objects(report, 256) is not None and "3 of 3" in report.warnings[-1].message


def test_crowd_regions_and_bad_annotations_are_not_counted(tmp_path):
    extra = [{"category_id": 1, "bbox": [0, 0, 5, 5], "iscrowd": 1},  # a crowd region: not an object
             {"category_id": 9, "bbox": [0, 0, 5, 5], "iscrowd": 0}]  # unknown category: a problem, dropped
    coco, images = _coco(tmp_path, [(3, 100, 100)] * 5, extra_annotations=extra)
    report = check_dataset(coco=coco, images=images)
    assert report.counts() == {"unknown_category": 1}
    assert len(box_shapes(report)) == 5 and check_small_objects(report, 256) is None


def test_voc_boxes_count_inclusive_corners(tmp_path):
    # 64 x 64 images: at 256 everything is 4 times larger; a VOC box 1..4 is 4 pixels wide -> 16 at 256 (not small),
    # 1..3 is 3 pixels -> 12 (small); the difficult object is left out
    images = {"a": (64, 64, [("ant", 1, 1, 3, 40, 0), ("ant", 1, 1, 4, 40, 0), ("bee", 1, 1, 2, 2, 1)]),
              "b": (64, 64, [("bee", 10, 10, 50, 50, 0)])}
    root = write_voc(tmp_path / "voc", images)
    report = check_dataset(voc=root)
    assert sorted(box_shapes(report)) == [("ant", 3 / 64, 40 / 64), ("ant", 4 / 64, 40 / 64),
                                         ("bee", 41 / 64, 41 / 64)]
    w = check_small_objects(report, 256)
    assert w is not None and "1 of 3 boxes (33%)" in w.message and "'ant' 1 of 2" in w.message


def test_check_data_command_prints_the_warning_and_takes_size(tmp_path, capsys):
    coco, images = _coco(tmp_path, TEN)
    args = ["check-data", "--coco", str(coco), "--images", str(images)]
    assert main(args) == 0  # a warning, not a problem
    out = capsys.readouterr().out
    assert "warning: small_objects: 3 of 10 boxes" in out and "1 small_objects" in out
    assert main(args + ["--size", "512"]) == 0
    assert "small_objects" not in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(args + ["--size", "0"])
    assert e.value.code == 2 and "--size" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, name", [(dict(size=0), "size"), (dict(size=2.5), "size"),
                                          (dict(min_side=0), "min_side"), (dict(share=1.5), "share")])
def test_bad_settings_are_refused_by_name(kwargs, name):
    with pytest.raises(ValueError, match=name):
        small_objects_warning([("a", 0.1, 0.1)], **{"size": 256, **kwargs})


def test_a_class_that_is_mostly_small_warns_even_when_the_data_set_is_not():
    """BCCD's case: platelets are 7% of the boxes, but about half of them are under 16 px at 256."""
    cells = [("RBC", 0.15, 0.15)] * 90
    platelets = [("Platelets", 0.05, 0.05)] * 4 + [("Platelets", 0.1, 0.1)] * 6  # 4 of 10 small: 40% > 25%
    assert small_objects_warning(cells, 256) is None
    w = small_objects_warning(cells + platelets, 256)  # 4 of 100 boxes: under the 10% of all boxes
    assert w is not None and "4 of 100 boxes (4%)" in w.message and "'Platelets' 4 of 10 (40%)" in w.message
    assert "--model tinyssd-s4" in w.message
    assert small_objects_warning(cells + platelets, 256, class_share=0.5) is None
    assert small_objects_warning(cells + platelets[:4] + platelets[-5:], 256) is None  # a class of 9 boxes: too few
    with pytest.raises(ValueError, match="class_share"):
        small_objects_warning(cells, 256, class_share=-0.1)


def test_train_gives_the_same_warning_at_its_own_size(tmp_path):
    """d2lssd train says it too (from the annotations, before training), at the size it trains at."""
    from d2lssd.data import CocoDataset
    from d2lssd.trainer import _small_objects

    coco, images = _coco(tmp_path, TEN)
    ds = CocoDataset(coco, images)
    w = _small_objects(ds, list(ds.classes), 256)
    assert w is not None and "3 of 10 boxes (30%)" in w.message and "256x256" in w.message
    assert _small_objects(ds, list(ds.classes), 512) is None
    assert _small_objects(list(ds), list(ds.classes), 256) is None   # no annotations to read without the images
