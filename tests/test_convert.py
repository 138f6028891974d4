"""``d2lssd convert``: COCO, VOC and YOLO into each other, checked by reading the output back with our readers."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from d2lssd.cli import main
from d2lssd.commands.convert import dataset_records, write_as
from d2lssd.data import CocoDataset, VOCDataset, YOLODataset

# name -> (width, height, [(class, xmin, ymin, xmax, ymax, difficult)]): VOC's 1-based inclusive corners,
# fractional ones included; an image without objects; non-square images.
IMAGES = {
    "street": (64, 48, [("person", 5.5, 10, 25, 47.5, 0), ("car", 30, 20, 64, 48, 0), ("dog", 1, 1, 8, 9, 0)]),
    "park": (40, 56, [("dog", 11, 5, 30, 20, 0), ("person", 2, 3, 2, 40, 0)]),  # a 1-pixel-wide person
    "empty": (32, 32, []),
}


def _voc(root: Path, images=IMAGES) -> Path:
    """A VOC folder with PNG images (``<filename>`` in each XML)."""
    (root / "JPEGImages").mkdir(parents=True)
    (root / "Annotations").mkdir()
    rng = np.random.default_rng(0)
    for name, (w, h, objs) in images.items():
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "JPEGImages" / f"{name}.png")
        xml = [f"<annotation><filename>{name}.png</filename><size><width>{w}</width><height>{h}</height>"
               "<depth>3</depth></size>"]
        for cls, x1, y1, x2, y2, diff in objs:
            xml.append(f"<object><name>{cls}</name><difficult>{diff}</difficult><bndbox><xmin>{x1}</xmin>"
                       f"<ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>")
        (root / "Annotations" / f"{name}.xml").write_text("".join(xml) + "</annotation>")
    return root


def _by_stem(ds):
    out = {}
    for i in range(len(ds)):
        image, t = ds[i]
        out[Path(ds._image_path(i)).stem] = (image, t)
    return out


def _assert_same(a, b, crowd=True):
    """Every image, class and box of data set ``a`` is in ``b`` (matched by file stem), and nothing else."""
    assert a.classes == b.classes
    sa, sb = _by_stem(a), _by_stem(b)
    assert sorted(sa) == sorted(sb)
    for stem, (image, t) in sa.items():
        image2, t2 = sb[stem]
        assert torch.equal(image, image2), stem  # the file copied byte for byte
        assert t["labels"].tolist() == t2["labels"].tolist(), stem
        torch.testing.assert_close(t2["boxes"].as_subclass(torch.Tensor), t["boxes"].as_subclass(torch.Tensor),
                                   rtol=1e-6, atol=1e-4)
        if crowd:
            assert t["crowd_labels"].tolist() == t2["crowd_labels"].tolist(), stem
            torch.testing.assert_close(t2["crowd_boxes"].as_subclass(torch.Tensor),
                                       t["crowd_boxes"].as_subclass(torch.Tensor), rtol=1e-6, atol=1e-4)


def test_voc_to_yolo_to_coco_to_voc_keeps_every_image_class_and_box(tmp_path, capsys):
    voc = _voc(tmp_path / "voc")
    assert main(["convert", "--voc", str(voc), "--to", "yolo", "--out", str(tmp_path / "y")]) == 0
    assert main(["convert", "--yolo", str(tmp_path / "y"), "--to", "coco", "--out", str(tmp_path / "c")]) == 0
    assert main(["convert", "--coco", str(tmp_path / "c/train.json"), "--images", str(tmp_path / "c/images/train"),
                 "--to", "voc", "--out", str(tmp_path / "v")]) == 0
    out = capsys.readouterr().out
    assert "wrote 3 images and 5 boxes" in out and "read it with: --coco" in out
    original = VOCDataset(voc)
    yolo, coco, back = YOLODataset(tmp_path / "y"), CocoDataset(tmp_path / "c/train.json",
                                                                 tmp_path / "c/images/train"), VOCDataset(tmp_path / "v")
    for ds in (yolo, coco, back):
        assert ds.report.problems == []
        _assert_same(original, ds)
    # the 1-based inclusive convention both ways: (5.5, 10, 25, 47.5) is (4.5, 9, 25, 47.5) in pixels, and back
    person = ET_objects(tmp_path / "v/Annotations/street.xml")[0]
    assert person == ("person", "5.5", "10", "25", "47.5", "0")
    assert original[list(original.names).index("street")][1]["boxes"][0].tolist() == [4.5, 9.0, 25.0, 47.5]
    # YOLO rows: (cx, cy, w, h) of the pixel box normalized by the image's size
    rows = (tmp_path / "y/labels/street.txt").read_text().splitlines()
    assert [float(v) for v in rows[0].split()] == pytest.approx([2, 14.75 / 64, 28.25 / 48, 20.5 / 64, 38.5 / 48])
    assert (tmp_path / "y/labels/empty.txt").read_text() == ""  # a negative: an empty label file


def ET_objects(xml_path):
    import xml.etree.ElementTree as ET

    root = ET.parse(xml_path).getroot()
    return [(o.findtext("name"), *(o.find("bndbox").findtext(k) for k in ("xmin", "ymin", "xmax", "ymax")),
             o.findtext("difficult")) for o in root.iter("object")]


@pytest.mark.parametrize("to", ["coco", "voc", "yolo"])
def test_coco_with_crowd_and_category_ids_to_each_format(tmp_path, to, capsys):
    voc = _voc(tmp_path / "voc", {**IMAGES, "crowd": (48, 40, [("car", 3, 4, 20, 30, 1), ("dog", 5, 5, 40, 38, 0)])})
    original = VOCDataset(voc)  # the difficult car is a crowd region
    records = dataset_records(original)
    assert sum(len(r.crowd_boxes) for r in records) == 1
    write_as(records, original.classes, "coco", tmp_path / "c", category_ids=[3, 7, 9])  # car, dog, person
    coco = CocoDataset(tmp_path / "c/annotations.json", tmp_path / "c/images")
    assert coco.category_ids == (3, 7, 9)
    _assert_same(original, coco)
    capsys.readouterr()
    assert main(["convert", "--coco", str(tmp_path / "c/annotations.json"), "--images", str(tmp_path / "c/images"),
                 "--to", to, "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    if to == "coco":
        again = CocoDataset(tmp_path / "out/annotations.json", tmp_path / "out/images")
        assert again.category_ids == (3, 7, 9)  # the source's ids are kept
        crowd = [a for a in json.loads((tmp_path / "out/annotations.json").read_text())["annotations"] if a["iscrowd"]]
        assert [(a["category_id"], a["bbox"]) for a in crowd] == [(3, [2.0, 3.0, 18.0, 27.0])]  # VOC (3, 4, 20, 30)
    elif to == "voc":
        again = VOCDataset(tmp_path / "out")
        assert ("car", "3", "4", "20", "30", "1") in ET_objects(tmp_path / "out/Annotations/crowd.xml")
    else:
        again = YOLODataset(tmp_path / "out")
        assert "1 box(es) left out (crowd / difficult (YOLO has no flag))" in out
    _assert_same(original, again, crowd=to != "yolo")
    if to == "yolo":
        assert sum(len(again[i][1]["crowd_boxes"]) for i in range(len(again))) == 0


def test_yolo_splits_into_one_ultralytics_folder(tmp_path):
    voc = _voc(tmp_path / "voc")
    train, val = VOCDataset(voc).split(1, seed=0)
    out = tmp_path / "y"
    write_as(dataset_records(train), train.classes, "yolo", out, split="train")
    write_as(dataset_records(val), val.classes, "yolo", out, split="val")
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["train"] == "images/train" and data["val"] == "images/val" and data["nc"] == 3
    assert data["names"] == {0: "car", 1: "dog", 2: "person"} and "path" not in data  # the YAML's folder
    assert YOLODataset(out / "data.yaml", "val").file_names == [f"images/val/{val.names[0]}.png"]
    assert len(YOLODataset(out)) == 2  # the folder is its data.yaml, train split
    with pytest.raises(ValueError, match="names the classes"):
        write_as(dataset_records(val), ("a", "b", "c"), "yolo", out, split="test")
    # A split with fewer classes (a VOC image set read alone names only its own) takes the YAML's class ids.
    few = _voc(tmp_path / "few", {"walk": (30, 20, [("person", 2, 3, 12, 18, 0)])})
    assert main(["convert", "--voc", str(few), "--to", "yolo", "--out", str(out), "--out-split", "test"]) == 0
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {0: "car", 1: "dog", 2: "person"} and data["test"] == "images/test"
    assert (out / "labels/test/walk.txt").read_text().split()[0] == "2"
    (image, t), = [YOLODataset(out / "data.yaml", "test")[0]]
    assert t["labels"].tolist() == [2] and t["boxes"].tolist() == [[1.0, 2.0, 12.0, 18.0]]
    assert not list(out.rglob("*.tmp"))  # atomic writes leave no temporary file


def test_voc_output_leaves_out_sub_pixel_boxes_and_says_so(tmp_path, capsys):
    root = tmp_path / "y"
    (root / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(root / "images/a.png")
    (root / "labels").mkdir()
    (root / "labels/a.txt").write_text("0 0.5 0.5 0.5 0.5\n0 0.2 0.5 0.01 0.5\n")  # the second is 0.4 px wide
    (root / "classes.txt").write_text("thing\n")
    assert main(["convert", "--yolo", str(root), "--to", "voc", "--out", str(tmp_path / "v"), "--out-split",
                 "all"]) == 0
    out = capsys.readouterr().out
    assert "1 box(es) left out (less than 1 pixel wide or high)" in out
    assert (tmp_path / "v/ImageSets/Main/all.txt").read_text() == "a\n"
    assert VOCDataset(tmp_path / "v", image_set="all")[0][1]["boxes"].tolist() == [[10.0, 10.0, 30.0, 30.0]]


def test_refusals_are_errors_that_say_why(tmp_path, capsys):
    root = tmp_path / "y"
    for sub in ("x", "z"):  # the same file name in two folders: the output names would collide
        (root / "images" / sub).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "images" / sub / "a.png")
        (root / "labels" / sub).mkdir(parents=True)
        (root / "labels" / sub / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (root / "classes.txt").write_text("thing\n")
    assert main(["convert", "--yolo", str(root), "--to", "coco", "--out", str(tmp_path / "c")]) == 1
    assert "used by more than one image" in capsys.readouterr().err
    assert main(["convert", "--yolo", str(root), "--to", "coco", "--out", str(tmp_path / "c"), "--out-split",
                 "../x"]) == 1
    assert "split must be a plain name" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # argparse: status 2, one line
        main(["convert", "--yolo", str(root), "--to", "json", "--out", str(tmp_path / "c")])
    assert e.value.code == 2 and "invalid choice: 'json'" in capsys.readouterr().err
    (root / "labels/x/a.txt").write_text("3 0.5 0.5 0.5 0.5\n")  # the checker refuses the source first
    assert main(["convert", "--yolo", str(root), "--yolo-split", "x", "--to", "voc", "--out", str(tmp_path / "v")]) == 1
    assert "unknown_category" in capsys.readouterr().err and not (tmp_path / "v").exists()
