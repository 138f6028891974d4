"""YOLO data sets: the Ultralytics YAML and the plain folder, the sample format, the check, the data options."""

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from d2lssd.cli import main
from d2lssd.commands.common import add_data_arguments, open_dataset
from d2lssd.data import DetectionDataset, YOLODataset, check_yolo, collate_detection, read_yolo_yaml, yolo_label_path
from d2lssd.transforms import SSDEvalTransform


def _image(path: Path, w: int, h: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _label(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _ultralytics(root: Path, names="[cat, dog]") -> Path:
    """images/{train,val}, labels/{train,val}, data.yaml. train: a (2 boxes), b (no label file), c (empty file)."""
    _image(root / "images/train/a.png", 60, 40)
    _label(root / "labels/train/a.txt", "0 0.5 0.5 0.2 0.3\n1 0.25 0.25 0.1 0.1\n")
    _image(root / "images/train/b.png", 30, 30, 1)
    _image(root / "images/train/c.jpg", 20, 40, 2)
    _label(root / "labels/train/c.txt", "")
    _image(root / "images/val/d.png", 50, 50, 3)
    _label(root / "labels/val/d.txt", "1 0.5 0.5 0.5 0.5\n")
    (root / "data.yaml").write_text(f"path: .\ntrain: images/train\nval: images/val\nnames: {names}\n")
    return root / "data.yaml"


# --------------------------------------------------------------------------- reading


def test_yaml_samples_have_the_readers_format_and_negatives_are_kept(tmp_path):
    ds = YOLODataset(_ultralytics(tmp_path))
    assert ds.classes == ("cat", "dog") and ds.num_classes == 2 and len(ds) == 3
    assert ds.file_names == ["images/train/a.png", "images/train/b.png", "images/train/c.jpg"]
    image, t = ds[0]
    assert image.dtype == torch.uint8 and tuple(image.shape) == (3, 40, 60)
    assert torch.equal(image, torch.from_numpy(np.array(Image.open(tmp_path / "images/train/a.png"))).permute(2, 0, 1))
    # (cx, cy, w, h) normalized -> pixel corners: (0.4*60, 0.35*40, 0.6*60, 0.65*40) and (0.2*60, 0.2*40, 0.3*60, 0.3*40)
    torch.testing.assert_close(t["boxes"].as_subclass(torch.Tensor),
                               torch.tensor([[24.0, 14.0, 36.0, 26.0], [12.0, 8.0, 18.0, 12.0]]))
    assert t["boxes"].format.value == "XYXY" and tuple(t["boxes"].canvas_size) == (40, 60)
    assert t["labels"].tolist() == [0, 1] and t["labels"].dtype == torch.int64
    assert tuple(t["crowd_boxes"].shape) == (0, 4) and t["crowd_labels"].numel() == 0
    assert t["image_id"] == 0 and t["file_name"] == "images/train/a.png" and t["orig_size"] == (40, 60)
    for k in (1, 2):  # no label file / an empty one: an image with no objects
        _, t = ds[k]
        assert tuple(t["boxes"].shape) == (0, 4) and t["labels"].numel() == 0
    assert ds.report.ok and ds.report.class_counts == {"cat": (1, 1), "dog": (1, 1)}
    val = YOLODataset(tmp_path / "data.yaml", split="val")
    assert val.file_names == ["images/val/d.png"] and val[0][1]["labels"].tolist() == [1]


def test_the_same_interface_as_coco_transforms_collate_split_and_boxes(tmp_path):
    ds = YOLODataset(_ultralytics(tmp_path), transforms=SSDEvalTransform(64))
    images, labels, info = collate_detection([ds[0], ds[1]])
    assert images.shape == (2, 3, 64, 64) and labels.shape == (2, 2, 5)
    torch.testing.assert_close(labels[0, :, 1:], torch.tensor([[0.4, 0.35, 0.6, 0.65], [0.2, 0.2, 0.3, 0.3]]))
    assert labels[1, :, 0].tolist() == [-1, -1]  # the negative image: padding only
    assert info["orig_size"].tolist() == [[40, 60], [30, 30]]
    train, val = ds.split(1, seed=0)
    assert len(train) == 2 and len(val) == 1 and set(train.file_names) | set(val.file_names) == set(ds.file_names)
    assert train.classes == val.classes == ds.classes
    torch.testing.assert_close(ds.normalized_boxes(), torch.tensor([[0.4, 0.35, 0.6, 0.65], [0.2, 0.2, 0.3, 0.3]]))
    assert isinstance(ds, DetectionDataset) and ds.num_skipped == 0


def test_label_paths_replace_the_last_images_component_as_ultralytics():
    sep = "/"
    assert yolo_label_path("/d/images/x/images/a.b.jpg") == Path("/d/images/x/labels/a.b.txt")
    assert yolo_label_path("/d/photos/a.PNG") == Path("/d/photos/a.txt")  # no images/ component: beside it
    assert str(yolo_label_path("/d/images/train/a.jpg")).split(sep)[-3:] == ["labels", "train", "a.txt"]


@pytest.mark.parametrize("names", ["[cat, dog]", "{0: cat, 1: dog}", "{'0': cat, '1': dog}"])
def test_names_as_a_list_or_an_id_dict(tmp_path, names):
    assert YOLODataset(_ultralytics(tmp_path, names)).classes == ("cat", "dog")


def test_split_as_a_txt_list_a_list_of_entries_and_roboflow_paths(tmp_path):
    root = tmp_path / "ds"
    _ultralytics(root)
    (root / "lists").mkdir()
    (root / "lists/train.txt").write_text("../images/train/c.jpg\n\n" + str(root / "images/train/a.png") + "\n")
    (root / "data.yaml").write_text("train: lists/train.txt\nval: [images/val, images/train/b.png]\nnames: [cat, dog]\n")
    assert YOLODataset(root / "data.yaml").file_names == ["images/train/c.jpg", "images/train/a.png"]  # as listed
    assert YOLODataset(root / "data.yaml", "val").file_names == ["images/val/d.png", "images/train/b.png"]
    # Roboflow: data.yaml beside train/ and valid/, written as "../train/images"
    rf = tmp_path / "rf"
    _image(rf / "train/images/x.jpg", 32, 32)
    _label(rf / "train/labels/x.txt", "0 0.5 0.5 0.5 0.5\n")
    (rf / "data.yaml").write_text("train: ../train/images\nval: ../train/images\nnc: 1\nnames: ['thing']\n")
    ds = YOLODataset(rf)  # a folder with a data.yaml naming train is that YAML
    assert ds.file_names == ["train/images/x.jpg"] and ds[0][1]["boxes"].tolist() == [[8.0, 8.0, 24.0, 24.0]]
    # a relative `path` is taken from the YAML's folder, not the current one
    (tmp_path / "elsewhere.yaml").write_text("path: rf\ntrain: train/images\nnames: [thing]\n")
    assert YOLODataset(tmp_path / "elsewhere.yaml").file_names == ["train/images/x.jpg"]


def test_plain_folder_names_from_classes_txt_labelimg_or_the_argument(tmp_path):
    root = tmp_path / "f"
    _image(root / "images/a.jpg", 40, 20)
    _label(root / "labels/a.txt", "1 0.5 0.5 0.5 0.5\n")
    with pytest.raises(ValueError, match="no class names: write classes.txt"):
        YOLODataset(root)
    ds = YOLODataset(root, classes=["x", "y"])  # no names in the data: id k is classes[k]
    assert ds.classes == ("x", "y") and ds[0][1]["labels"].tolist() == [1]
    (root / "labels/classes.txt").write_text("cat\ndog\n")  # LabelImg writes it beside the labels
    ds = YOLODataset(root)
    assert ds.classes == ("cat", "dog") and ds.report.ok  # classes.txt is not a label file without an image
    # classes given with names in the data: ids are mapped by name (the training set's order)
    ds = YOLODataset(root, classes=["dog", "bird", "cat"])
    assert ds[0][1]["labels"].tolist() == [0] and ds.classes == ("dog", "bird", "cat")
    with pytest.raises(ValueError, match=r"class names \['cat'\] are not among classes"):
        YOLODataset(root, classes=["dog"])
    (root / "classes.txt").write_text("a\nb\n")  # the root's file comes first
    assert YOLODataset(root).classes == ("a", "b")
    _image(root / "images/train/b.jpg", 20, 20)
    _label(root / "labels/train/b.txt", "0 0.5 0.5 0.5 0.5\n")
    assert YOLODataset(root, split="train").file_names == ["images/train/b.jpg"]
    assert YOLODataset(root).file_names == ["images/a.jpg", "images/train/b.jpg"]  # every image under images/


def test_polygon_rows_give_their_bounding_box(tmp_path):
    root = tmp_path / "f"
    _image(root / "images/a.png", 100, 50)
    _label(root / "labels/a.txt", "0 0.1 0.2 0.5 0.2 0.3 0.8\n")
    (root / "classes.txt").write_text("thing\n")
    assert YOLODataset(root)[0][1]["boxes"].tolist() == [[10.0, 10.0, 50.0, 40.0]]


@pytest.mark.parametrize("yaml_text, match", [
    ("train: images/train\nnames: {0: a, 2: b}\n", "without gaps"),
    ("train: images/train\nnc: 3\nnames: [a, b]\n", "nc is 3 but names lists 2"),
    ("train: images/train\n", "no 'names'"),
    ("- a\n- b\n", "holds a mapping"),
    ("train: images/train\nnames: [a, b]\n: [\n", "not a readable YAML"),
    ("train: !!python/object/apply:os.system ['true']\nnames: [a]\n", "not a readable YAML"),  # safe_load
    ("val: images/val\nnames: [a, b]\n", "no split 'train'"),
])
def test_bad_yaml_is_refused_with_a_sentence(tmp_path, yaml_text, match):
    _ultralytics(tmp_path)
    (tmp_path / "data.yaml").write_text(yaml_text)
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        YOLODataset(tmp_path / "data.yaml")


def test_nc_without_names_gives_ultralytics_default_names(tmp_path):
    _ultralytics(tmp_path)
    (tmp_path / "data.yaml").write_text("train: images/train\nnc: 2\n")
    assert read_yolo_yaml(tmp_path / "data.yaml")["names"] == ("class_0", "class_1")


# --------------------------------------------------------------------------- the check


@pytest.mark.parametrize("rows, kind, line", [
    ("0 0.5 0.5 0.2\n", "bad_entry", 1),                       # 4 values
    ("0 0.5 0.5 0.2 0.2 0.1\n", "bad_entry", 1),               # 6 values: neither a box nor a polygon
    ("0 0.5 x 0.2 0.2\n", "bad_entry", 1),                     # not a number
    ("0 0.5 nan 0.2 0.2\n", "bad_entry", 1),                   # not finite
    ("0 0.5 0.5 0.2 0.2\n2 0.5 0.5 0.2 0.2\n", "unknown_category", 2),  # id out of range (2 names)
    ("-1 0.5 0.5 0.2 0.2\n", "unknown_category", 1),
    ("1.5 0.5 0.5 0.2 0.2\n", "unknown_category", 1),          # not an integer
    ("0 0.5 0.5 0 0.2\n", "bad_box", 1),                       # zero width
    ("0 0.5 0.5 0.2 -0.1\n", "bad_box", 1),
    ("0 0.5 0.5 1.05 0.2\n", "outside", 1),                    # 1.5 px outside a 60 px wide image
    ("0 0.5 1.05 0.2 0.2\n", "outside", 1),
    ("0 1.2 0.5 0.1 0.2\n", "outside", 1),                     # no part inside
])
def test_each_kind_of_bad_row(tmp_path, rows, kind, line):
    _ultralytics(tmp_path)
    _label(tmp_path / "labels/train/a.txt", rows)
    report = check_yolo(tmp_path / "data.yaml")
    assert [(p.kind, p.image, p.annotation) for p in report.problems] == [(kind, "images/train/a.png", line)]
    assert report.problems[0].source == "labels/train/a.txt" and report.bad_annotations == {("images/train/a.png",
                                                                                             line)}
    with pytest.raises(ValueError, match=kind):
        YOLODataset(tmp_path / "data.yaml")


def test_one_pixel_tolerance_and_clamping(tmp_path):
    _ultralytics(tmp_path)
    # 60x40 image: w = 1 + 1/60 reaches 0.5 px beyond each side: inside the 1-pixel tolerance
    _label(tmp_path / "labels/train/a.txt", f"0 0.5 0.5 {1 + 1 / 60!r} 0.5\n1 1.0 1.0 0.02 0.02\n")
    ds = YOLODataset(tmp_path / "data.yaml")
    assert ds.report.ok
    boxes = ds[0][1]["boxes"].as_subclass(torch.Tensor)
    torch.testing.assert_close(boxes, torch.tensor([[0.0, 10.0, 60.0, 30.0], [59.4, 39.6, 60.0, 40.0]]))


def test_image_problems_missing_unreadable_duplicate_and_orphan_labels(tmp_path):
    root = tmp_path / "ds"
    _ultralytics(root)
    (root / "images/train/broken.jpg").write_bytes(b"not an image")
    _label(root / "labels/train/gone.txt", "0 0.5 0.5 0.1 0.1\n")  # its image is not there
    (root / "labels/train/c.txt").write_bytes(b"\xff\xfe\x00bad")   # not UTF-8
    (root / "list.txt").write_text("images/train/a.png\nimages/train/nope.png\nimages/train/a.png\n")
    (root / "data.yaml").write_text("train: images/train\nval: list.txt\nnames: [cat, dog]\n")
    report = check_yolo(root / "data.yaml")
    got = sorted((p.kind, p.image or p.source) for p in report.problems)
    assert got == [("missing_file", "labels/train/gone.txt"), ("unreadable_file", "images/train/broken.jpg"),
                   ("unreadable_file", "images/train/c.jpg")]
    report = check_yolo(root / "data.yaml", "val")
    assert sorted((p.kind, p.image) for p in report.problems) == [("duplicate_id", "images/train/a.png"),
                                                                   ("missing_file", "images/train/nope.png")]
    ds = YOLODataset(root / "data.yaml", errors="drop")
    assert ds.file_names == ["images/train/a.png", "images/train/b.png"] and ds.num_dropped == (0, 2)


def test_no_label_file_at_all_is_a_layout_error_refused_even_with_drop(tmp_path):
    _ultralytics(tmp_path)
    (tmp_path / "labels").rename(tmp_path / "annotations")
    report = check_yolo(tmp_path / "data.yaml")
    assert [p.kind for p in report.problems] == ["no_labels"] and report.fatal
    assert str(tmp_path / "labels/train/a.txt") in report.problems[0].message
    with pytest.raises(ValueError, match="cannot be dropped"):
        YOLODataset(tmp_path / "data.yaml", errors="drop")


def test_drop_leaves_out_exactly_the_bad_rows_and_warnings_are_not_problems(tmp_path):
    _ultralytics(tmp_path)
    _label(tmp_path / "labels/train/a.txt",
           "0 0.5 0.5 0.2 0.3\n7 0.5 0.5 0.2 0.3\n1 0.25 0.25 0.1 0.1\n1 0.25 0.25 0.1 0.1\n0 0.5 0.5 0.01 0.5\n")
    ds = YOLODataset(tmp_path / "data.yaml", errors="drop", classes=["cat", "dog"])
    assert ds.num_dropped == (1, 0) and ds[0][1]["labels"].tolist() == [0, 1, 1, 0]
    assert sorted(p.kind for p in ds.report.warnings) == ["duplicate_box", "small_box"]  # 0.6 px wide
    assert ds.report.class_counts == {"cat": (2, 1), "dog": (2, 1)}  # the train split: a.png only


# --------------------------------------------------------------------------- command line


def test_check_data_yolo_checks_every_split_of_the_yaml(tmp_path, capsys):
    _ultralytics(tmp_path)
    assert main(["check-data", "--yolo", str(tmp_path / "data.yaml")]) == 0
    out = capsys.readouterr().out
    assert "[train] (yolo, 3 images, 2 annotations): no problems found" in out
    assert "[val] (yolo, 1 images, 1 annotations): no problems found" in out
    _label(tmp_path / "labels/val/d.txt", "4 0.5 0.5 0.5 0.5\n")
    assert main(["check-data", "--yolo", str(tmp_path), "--yolo-split", "val"]) == 1
    captured = capsys.readouterr()
    assert "labels/val/d.txt: image images/val/d.png, annotation 1: unknown_category" in captured.out
    assert "[val]" in captured.err and "[train]" not in captured.out + captured.err
    assert main(["check-data"]) == 1 and "--yolo PATH" in capsys.readouterr().err
    assert main(["check-data", "--yolo", str(tmp_path), "--voc", str(tmp_path)]) == 1
    assert "give one of --coco, --voc and --yolo" in capsys.readouterr().err


def _args(argv):
    parser = argparse.ArgumentParser()
    add_data_arguments(parser)
    add_data_arguments(parser, prefix="val-")
    parser.add_argument("--val-split", type=int)
    return parser.parse_args(argv)


def test_open_dataset_reads_the_yaml_train_and_val_splits(tmp_path):
    yml = str(_ultralytics(tmp_path))
    args = _args(["--yolo", yml])
    train = open_dataset(args)
    val = open_dataset(args, prefix="val_", classes=train.classes, required=False)
    assert len(train) == 3 and val.file_names == ["images/val/d.png"] and val.classes == train.classes
    assert open_dataset(_args(["--yolo", yml, "--val-split", "1"]), prefix="val_", required=False) is None
    assert open_dataset(_args(["--yolo", yml, "--yolo-split", "val"]), prefix="val_", required=False) is None
    plain = tmp_path / "plain"
    _image(plain / "images/a.png", 20, 20)
    _label(plain / "labels/a.txt", "0 0.5 0.5 0.5 0.5\n")
    (plain / "classes.txt").write_text("cat\n")
    assert open_dataset(_args(["--yolo", str(plain)]), prefix="val_", required=False) is None  # a folder: no val
    assert open_dataset(_args(["--yolo", yml, "--val-yolo", yml, "--val-yolo-split", "train"]),
                        prefix="val_").file_names[0] == "images/train/a.png"
    assert len(open_dataset(_args(["--yolo", yml]), yolo_split="val")) == 1  # what evaluate asks for
    with pytest.raises(ValueError, match="give one of --coco, --voc and --yolo"):
        open_dataset(_args(["--yolo", yml, "--voc", str(tmp_path)]))
    with pytest.raises(FileNotFoundError, match="--val-yolo: no file or folder"):
        open_dataset(_args(["--val-yolo", str(tmp_path / "nope.yaml")]), prefix="val_")
    with pytest.raises(ValueError, match="--val-voc DIR or --val-yolo PATH"):
        open_dataset(_args([]), prefix="val_")
