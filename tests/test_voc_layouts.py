"""Pascal VOC in the layouts labelling tools write, and image sets on the command line.

The canonical folder is written by the package's own VOC writer (``d2lssd convert``'s
:func:`~d2lssd.commands.convert.write_as`); the other layouts are made from it the way
LabelImg, Label Studio and Roboflow lay out their files, and must read to the same
images, classes and boxes.
"""

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from d2lssd.cli import main
from d2lssd.commands.convert import ImageRecord, write_as
from d2lssd.data import VOCDataset, YOLODataset, check_voc, voc_class_names, voc_image_names, voc_layout

CLASSES = ["cat", "dog"]
# name -> (width, height, [(label, x1, y1, x2, y2, difficult)]) in the package's 0-based half-open pixels
IMAGES = {
    "a": (40, 30, [(1, 2, 3, 30, 25, 0), (0, 20, 4, 38, 29, 1)]),
    "b": (36, 44, [(0, 0, 0, 36, 44, 0)]),
    "c": (32, 32, []),  # no object: a negative
    "d": (48, 40, [(1, 10.5, 8, 40, 33.5, 0), (1, 1, 1, 12, 14, 0)]),
}


def _canonical(root: Path, images=IMAGES, sets=None) -> Path:
    """A VOC folder (Annotations/ + JPEGImages/ + ImageSets/Main/) written by ``write_as``."""
    src = root.parent / f"{root.name}-photos"
    src.mkdir(parents=True)
    rng = np.random.default_rng(0)
    records = []
    for name, (w, h, objs) in images.items():
        path = src / f"{name}.png"  # PNG: lossless, so every layout reads the very same pixels
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
        boxes = [o[1:5] for o in objs if not o[5]]
        labels = [o[0] for o in objs if not o[5]]
        crowd = [o[1:5] for o in objs if o[5]]
        crowd_labels = [o[0] for o in objs if o[5]]
        records.append(ImageRecord(path, path.name, w, h, boxes, labels, crowd, crowd_labels))
    for split, names in (sets or {}).items():
        write_as([r for r in records if r.path.stem in names], CLASSES, "voc", root, split)
    if not sets:
        write_as(records, CLASSES, "voc", root)
    return root


def _xml(path: Path, sub=None) -> None:
    """Rewrite an XML file's ``<filename>`` / ``<path>`` (``sub``: tag -> text, ``None`` removes the tag)."""
    text = path.read_text()
    for tag, value in (sub or {}).items():
        text = re.sub(rf"\s*<{tag}>.*?</{tag}>", "", text)
        if value is not None:
            text = text.replace("<annotation>", f"<annotation>\n  <{tag}>{value}</{tag}>", 1)
    path.write_text(text)


def _labelimg_beside(canonical: Path, root: Path) -> Path:
    """LabelImg's default: photo.xml next to photo.png, ``<path>`` the full path on the labelling machine."""
    root.mkdir()
    for p in (canonical / "JPEGImages").iterdir():
        shutil.copy(p, root / p.name)
    for p in (canonical / "Annotations").iterdir():
        shutil.copy(p, root / p.name)
        _xml(root / p.name, {"folder": "photos", "path": rf"C:\Users\me\photos\{p.stem}.png"})
    return root


def _label_studio(canonical: Path, root: Path) -> Path:
    """Label Studio's export: Annotations/ + images/, ``<filename>`` without the suffix."""
    shutil.copytree(canonical / "Annotations", root / "Annotations")
    shutil.copytree(canonical / "JPEGImages", root / "images")
    for p in (root / "Annotations").iterdir():
        _xml(p, {"filename": p.stem, "folder": "images"})
    return root


def _labelimg_save_dir(canonical: Path, root: Path) -> Path:
    """LabelImg with "Change Save Dir": lower-case annotations/ beside Images/; ``<filename>`` of a
    photo renamed since (not there), ``<path>`` right for one, neither for another (found by the XML's name)."""
    shutil.copytree(canonical / "Annotations", root / "annotations")
    shutil.copytree(canonical / "JPEGImages", root / "Images")
    _xml(root / "annotations" / "a.xml", {"filename": "IMG_0001.JPG", "path": "/home/me/photos/a.png"})
    _xml(root / "annotations" / "b.xml", {"filename": "IMG_0002.JPG", "path": None})
    return root


def _roboflow(canonical: Path, export: Path) -> Path:
    """Roboflow's "Pascal VOC" export: train/ (and valid/, test/), each with the photos and XML files."""
    for split in ("train", "valid"):
        (export / split).mkdir(parents=True)
    for p in (canonical / "JPEGImages").iterdir():
        shutil.copy(p, export / "train" / p.name)
    for p in (canonical / "Annotations").iterdir():
        shutil.copy(p, export / "train" / p.name)
    (export / "README.roboflow.txt").write_text("exported from roboflow.com\n")
    return export / "train"


def _read(ds):
    """Everything a sample holds that matters: name, pixels, boxes, labels, crowd boxes and labels."""
    out = []
    for i in range(len(ds)):
        image, t = ds[i]
        out.append((t["name"], image.as_subclass(torch.Tensor), t["boxes"].as_subclass(torch.Tensor),
                    t["labels"], t["crowd_boxes"].as_subclass(torch.Tensor), t["crowd_labels"]))
    return out


@pytest.mark.parametrize("layout", ["labelimg_beside", "label_studio", "labelimg_save_dir", "roboflow"])
def test_every_layout_reads_like_the_canonical_folder(tmp_path, layout):
    canonical = _canonical(tmp_path / "canonical")
    make = {"labelimg_beside": _labelimg_beside, "label_studio": _label_studio,
            "labelimg_save_dir": _labelimg_save_dir, "roboflow": _roboflow}[layout]
    root = make(canonical, tmp_path / layout)
    ref, ds = VOCDataset(canonical), VOCDataset(root)
    assert ref.names == ["a", "b", "c", "d"] and ref.classes == ("cat", "dog")
    assert ds.names == ref.names and ds.classes == ref.classes and voc_class_names(root) == ref.classes
    assert ds.report.ok and ds.report.warnings == []
    for got, want in zip(_read(ds), _read(ref)):
        assert got[0] == want[0]
        for g, w in zip(got[1:], want[1:]):
            torch.testing.assert_close(g, w)
    # The boxes are the ones written, as the package's 0-based half-open pixels; the difficult cat is a crowd box.
    _, t = ds[3]
    assert t["boxes"].as_subclass(torch.Tensor).tolist() == [[10.5, 8.0, 40.0, 33.5], [1.0, 1.0, 12.0, 14.0]]
    assert ds[0][1]["crowd_boxes"].as_subclass(torch.Tensor).tolist() == [[20.0, 4.0, 38.0, 29.0]]
    ann_dir, img_dir = voc_layout(root)
    assert (ds.annotations_dir, ds.images_dir) == (ann_dir, img_dir)
    assert {"labelimg_beside": (root, root), "label_studio": (root / "Annotations", root / "images"),
            "labelimg_save_dir": (root / "annotations", root / "Images"),
            "roboflow": (root, root)}[layout] == (ann_dir, img_dir)
    assert [Path(ds._image_path(i)).name for i in range(len(ds))] == ["a.png", "b.png", "c.png", "d.png"]


def test_the_image_named_by_filename_wins_and_a_guess_is_refused(tmp_path):
    root = _labelimg_beside(_canonical(tmp_path / "canonical"), tmp_path / "photos")
    # b.xml says its image is c.png (a copy of c.xml's labels onto the other photo): c.png it is, not b.png.
    _xml(root / "b.xml", {"filename": "c.png"})
    report = check_voc(root)
    assert [(p.kind, p.image) for p in report.problems] == [("size_mismatch", "b")]  # c.png is 32x32, not 36x44
    # Two files with the XML's name and no <filename> or <path> that exists: which one? Refused, not guessed.
    _xml(root / "b.xml", {"filename": "gone.jpg", "path": None})
    shutil.copy(root / "b.png", root / "b.jpg")
    (p,) = check_voc(root).problems
    assert (p.kind, p.image) == ("missing_file", "b") and "b.jpg and b.png" in p.message
    # Nothing found: the message says everything that was looked for.
    (root / "b.jpg").unlink()
    (root / "b.png").unlink()
    _xml(root / "b.xml", {"path": r"D:\old photos\b.png"})
    (p,) = check_voc(root).problems
    assert p.kind == "missing_file" and p.source == "b.xml"
    assert "'gone.jpg' (<filename>)" in p.message and r"'b.png' (<path>)" in p.message
    assert "'b' with an image suffix (the XML file's name)" in p.message and str(root) in p.message
    ds = VOCDataset(root, errors="drop")
    assert ds.names == ["a", "c", "d"] and ds.num_dropped == (0, 1)


def test_voc_layout_says_what_it_looked_for(tmp_path):
    canonical = _canonical(tmp_path / "canonical")
    export = tmp_path / "export"
    _roboflow(canonical, export)
    with pytest.raises(ValueError, match=r"looked for an Annotations/ folder \(any case\) and for \.xml files") as e:
        voc_layout(export)
    assert "found neither; train/ is a VOC folder" in str(e.value)  # valid/ (empty) is not
    with pytest.raises(ValueError, match="no such folder"):
        VOCDataset(tmp_path / "nope")
    yolo = tmp_path / "yolo"
    (yolo / "images").mkdir(parents=True)
    (yolo / "labels").mkdir()
    with pytest.raises(ValueError, match="images/ and labels/ without XML files are a YOLO data set"):
        check_voc(yolo)
    no_images = tmp_path / "no-images"
    shutil.copytree(canonical / "Annotations", no_images / "Annotations")
    with pytest.raises(ValueError, match=r"has Annotations/ but no image files: looked in JPEGImages/ or images/"):
        voc_layout(no_images)
    shutil.copytree(canonical / "JPEGImages", no_images / "images")
    assert voc_layout(no_images) == (no_images / "Annotations", no_images / "images")
    if not (no_images / "ANNOTATIONS").exists():  # a case-sensitive file system can hold both
        shutil.copytree(no_images / "Annotations", no_images / "annotations")
        with pytest.raises(ValueError, match="Annotations/ and annotations/ could each be the annotation folder"):
            voc_layout(no_images)


def test_image_sets_of_any_layout_and_the_missing_one(tmp_path):
    canonical = _canonical(tmp_path / "canonical", sets={"train": ["a", "b", "c"], "val": ["d"]})
    beside = _labelimg_beside(canonical, tmp_path / "photos")
    shutil.copytree(canonical / "ImageSets", beside / "ImageSets")  # ImageSets/Main/ is always the root's
    assert VOCDataset(beside, image_set="val").names == ["d"] == voc_image_names(beside, "val")
    assert VOCDataset(beside, image_set="train").names == ["a", "b", "c"]
    (beside / "ImageSets" / "Main" / "dog_train.txt").write_text("a  1\nb -1\n")  # a devkit per-class list
    with pytest.raises(ValueError) as e:
        VOCDataset(beside, image_set="test")
    assert str(e.value) == (f"image_set 'test': no file {beside / 'ImageSets' / 'Main' / 'test.txt'}; the image "
                            f"sets of {beside} are train, val (and 1 per-class lists such as dog_train)")
    bare = _labelimg_beside(canonical, tmp_path / "bare")
    with pytest.raises(ValueError, match=r"bare has no image set \(no ImageSets/Main/\*\.txt\)"):
        voc_image_names(bare, "train")


def _train(root, *options):
    return main(["train", "--voc", str(root), *options, "--epochs", "1", "--batch-size", "2", "--device", "cpu",
                 "--no-progress", "--no-report", "--size", "64", "--default-anchors"])


def test_train_and_evaluate_on_image_sets_of_one_folder(tmp_path, capsys):
    """One VOC folder, two lists: train on ImageSets/Main/train.txt, validate on val.txt; no folders of links."""
    images = {f"{i:03d}": (48, 40, [(i % 2, 4 + i, 5, 30 + i, 36, 0), (1 - i % 2, 20, 2, 46, 20, 0)])
              for i in range(6)}
    root = _canonical(tmp_path / "voc", images, sets={"train": ["000", "001", "002", "003"], "val": ["004", "005"]})
    ckpt = tmp_path / "voc.pt"
    assert _train(root, "--image-set", "train", "--val-image-set", "val", "--checkpoint", str(ckpt)) == 0
    out = capsys.readouterr().out
    assert "4 training images, 2 validation" in out, out
    assert ckpt.with_name("voc.best.pt").is_file()  # written only when validating
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert state["history"]["records"][0]["train_images"] == 4
    # evaluate takes --image-set too, on any layout: here the LabelImg copy of the same folder.
    beside = _labelimg_beside(root, tmp_path / "photos")
    shutil.copytree(root / "ImageSets", beside / "ImageSets")
    ap = tmp_path / "ap.json"
    assert main(["evaluate", "--voc", str(beside), "--image-set", "val", "--checkpoint", str(ckpt), "--json",
                 str(ap), "--device", "cpu"]) == 0
    assert json.loads(ap.read_text())["num_images"] == 2
    assert main(["evaluate", "--voc", str(beside), "--image-set", "test", "--checkpoint", str(ckpt)]) == 1
    err = capsys.readouterr().err
    assert f"--image-set 'test': no file {beside / 'ImageSets' / 'Main' / 'test.txt'}; the image sets of " \
           f"{beside} are train, val" in err and len(err.strip().splitlines()) == 1
    # An image set without its folder is refused, not ignored (evaluate would run on the checkpoint's own data).
    assert main(["evaluate", "--image-set", "val", "--checkpoint", str(ckpt)]) == 1
    err = capsys.readouterr().err
    assert "--image-set val needs --voc DIR" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("argv, message", [
    (["--image-set", "train", "--val-image-set", "nope"],
     "--val-image-set 'nope': no file {root}/ImageSets/Main/nope.txt; the image sets of {root} are all, train, val"),
    (["--image-set", "nope"], "--image-set 'nope': no file {root}/ImageSets/Main/nope.txt"),
    (["--image-set", "all", "--val-image-set", "val"],
     "--val-image-set val and --image-set all share 2 of 2 images (e.g. 004, 005)"),
    (["--val-image-set", "val"], "--val-image-set val and every XML file of --voc (no --image-set given) share 2"),
    (["--image-set", "train", "--val-voc", "{root}"],
     "every XML file of --val-voc (no --val-image-set given) and --image-set train share 4 of 6"),
], ids=["missing-val-set", "missing-train-set", "val-inside-train", "val-inside-all", "same-folder-val-voc"])
def test_train_refuses_a_missing_or_overlapping_image_set(tmp_path, capsys, argv, message):
    images = {f"{i:03d}": (40, 40, [(i % 2, 4, 5, 30, 36, 0)]) for i in range(6)}
    root = _canonical(tmp_path / "voc", images, sets={"train": ["000", "001", "002", "003"], "val": ["004", "005"],
                                                      "all": list(images)})
    argv = [a.format(root=root) for a in argv]
    assert _train(root, *argv, "--checkpoint", str(tmp_path / "x.pt")) == 1
    err = capsys.readouterr().err
    assert message.format(root=root) in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x.pt").exists()


def test_split_options_without_their_data_are_errors(tmp_path, capsys):
    coco = tmp_path / "x.json"
    coco.write_text("{}")
    for argv, message in [
        (["--coco", str(coco), "--images", str(tmp_path), "--image-set", "train"],
         "--image-set train needs --voc DIR; it does not apply to --coco"),
        (["--coco", str(coco), "--images", str(tmp_path), "--val-image-set", "val"],
         "--val-image-set val needs --val-voc DIR, or --voc DIR to validate on another split of the training data"),
        (["--voc", str(tmp_path), "--val-coco", str(coco), "--val-images", str(tmp_path), "--val-image-set", "v"],
         "--val-image-set v needs --val-voc DIR, or --voc DIR to validate on another split of the training data; "
         "it does not apply to --val-coco"),
        (["--voc", str(tmp_path), "--yolo-split", "val"], "--yolo-split val needs --yolo PATH; it does not apply to "
                                                          "--voc"),
        (["--preset", "bananas-ssd", "--image-set", "train"], "--image-set train needs --voc DIR"),
    ]:
        assert main(["train", *argv, "--checkpoint", str(tmp_path / "x.pt"), "--device", "cpu"]) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, (argv, err)


def test_val_yolo_split_picks_another_split_of_the_training_yaml(tmp_path):
    """The same rule for YOLO: --val-yolo-split NAME without --val-yolo is the training YAML's split NAME."""
    import argparse

    from d2lssd.commands.common import add_data_arguments, open_dataset

    root = tmp_path / "yolo"
    for split, n in (("train", 2), ("val", 1), ("test", 3)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (20, 20)).save(root / "images" / split / f"{i}.png")
            (root / "labels" / split / f"{i}.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\ntest: images/test\nnames: [a]\n")
    parser = argparse.ArgumentParser()
    add_data_arguments(parser)
    add_data_arguments(parser, prefix="val-")
    yml = str(root / "data.yaml")
    assert len(open_dataset(parser.parse_args(["--yolo", yml, "--val-yolo-split", "test"]), prefix="val_")) == 3
    assert len(open_dataset(parser.parse_args(["--yolo", yml]), prefix="val_")) == 1  # the YAML's val
    with pytest.raises(ValueError, match="--val-yolo-split train is the training split"):
        open_dataset(parser.parse_args(["--yolo", yml, "--val-yolo-split", "train"]), prefix="val_")


def test_check_data_and_convert_read_any_layout_and_image_set(tmp_path, capsys):
    canonical = _canonical(tmp_path / "canonical", sets={"train": ["a", "b", "c"], "val": ["d"]})
    root = _label_studio(canonical, tmp_path / "ls")
    shutil.copytree(canonical / "ImageSets", root / "ImageSets")
    assert main(["check-data", "--voc", str(root), "--image-set", "train"]) == 0
    assert "(voc, 3 images, 3 annotations): no problems found" in capsys.readouterr().out
    assert main(["check-data", "--voc", str(root), "--image-set", "test"]) == 1
    assert "the image sets of" in capsys.readouterr().err
    out = tmp_path / "y"
    assert main(["convert", "--voc", str(root), "--image-set", "val", "--to", "yolo", "--out", str(out)]) == 0
    assert "--yolo-split val" in capsys.readouterr().out  # the image set is the split written
    assert yaml.safe_load((out / "data.yaml").read_text())["val"] == "images/val"
    assert len(YOLODataset(out / "data.yaml", split="val")) == 1
    back = tmp_path / "v"
    assert main(["convert", "--voc", str(root), "--image-set", "train", "--to", "voc", "--out", str(back)]) == 0
    assert f"read it with: --voc {back} --image-set train" in capsys.readouterr().out
    assert VOCDataset(back, image_set="train").names == ["a", "b", "c"]
    assert os.path.isdir(back / "JPEGImages")  # VOC is written in the canonical layout
