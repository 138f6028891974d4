"""What breaks training is caught: truncated images (checker and readers), labelling warnings, per-class counts.

A JPEG cut short keeps its header: ``Image.open`` and ``Image.verify`` pass
it and ``load()`` fails ("image file is truncated"). The checker decodes
every image by default; a reader that meets such a file anyway skips it with
a warning naming it.
"""

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from d2lssd import cli
from d2lssd.data import CocoDataset, VOCDataset, check_coco, check_dataset, check_voc, coco_annotation, write_coco
from d2lssd.data.report import Problem, count_classes, similar_names
from d2lssd.transforms import SSDEvalTransform

from _helpers import write_voc

CATEGORIES = [{"id": 7, "name": "cat"}, {"id": 3, "name": "dog"}, {"id": 12, "name": "bird"}]
# (image id, file, width, height, [(category id, pixel box xyxy)])
IMAGES = [
    (1, "a.jpg", 64, 48, [(3, (4, 6, 30, 40)), (7, (32, 0, 64, 20)), (3, (40, 25, 60, 45))]),
    (2, "b.jpg", 40, 56, [(3, (2, 2, 30, 50))]),
    (3, "c.png", 50, 50, []),  # a negative
    (4, "d.jpg", 48, 48, [(7, (5, 5, 40, 40))]),
]


def _write_set(tmp_path, images=IMAGES, categories=CATEGORIES):
    img_dir = tmp_path / "images"
    img_dir.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    imgs, anns = [], []
    for iid, name, w, h, objs in images:
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(img_dir / name)
        imgs.append({"id": iid, "file_name": name, "width": w, "height": h})
        for cat, box in objs:
            anns.append(coco_annotation(len(anns) + 100, iid, cat, box))
    return write_coco(tmp_path / "ann.json", imgs, anns, categories), img_dir


def _truncate(path, keep=0.5):
    """Cut the end off an image file; check that PIL's header and verify() still accept it."""
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    with Image.open(path) as im:
        assert im.size[0] > 0  # the header is intact
        if path.suffix == ".jpg":
            im.verify()  # PIL's verify() (the old check) passes a JPEG cut short ...
    with pytest.raises(OSError, match="(?i)truncated"):
        with Image.open(path) as im:
            im.load()  # ... and decoding it, as training does, fails
    return path


def _problems(report):
    return [(p.kind, p.image) for p in report.problems]


def _warnings(report):
    return [(p.kind, p.image, p.annotation) for p in report.warnings]


# --------------------------------------------------------------------------- the checker decodes


def test_default_check_reports_a_truncated_jpeg_with_its_path(tmp_path):
    path, img_dir = _write_set(tmp_path)
    assert check_coco(path, img_dir).ok
    bad = _truncate(img_dir / "b.jpg")
    report = check_coco(path, img_dir)
    assert _problems(report) == [("unreadable_file", 2)], report.lines()
    (p,) = report.problems
    assert str(bad) in p.message and "truncated" in p.message and p.drops == "image"
    assert report.bad_images == {2}
    # The fast path reads only the header: the truncated file passes, a wrong size does not.
    assert check_coco(path, img_dir, verify_images=False).ok
    data = json.loads(path.read_text())
    data["images"][0]["width"] = 65
    assert _problems(check_coco(data, img_dir, verify_images=False)) == [("size_mismatch", 1)]
    assert _problems(check_dataset(coco=path, images=img_dir, verify_images=True)) == [("unreadable_file", 2)]


def test_truncated_png_and_voc_jpeg(tmp_path):
    path, img_dir = _write_set(tmp_path)
    _truncate(img_dir / "c.png")
    assert _problems(check_coco(path, img_dir)) == [("unreadable_file", 3)]
    root = write_voc(tmp_path / "voc")
    bad = _truncate(root / "JPEGImages" / "000002.jpg")
    report = check_voc(root)
    assert _problems(report) == [("unreadable_file", "000002")] and str(bad) in report.problems[0].message
    assert check_voc(root, verify_images=False).ok


def test_check_data_command_decodes_unless_told_not_to(tmp_path, capsys):
    path, img_dir = _write_set(tmp_path)
    bad = _truncate(img_dir / "d.jpg")
    args = ["check-data", "--coco", str(path), "--images", str(img_dir)]
    assert cli.main(args) == 1
    out, err = capsys.readouterr()
    (line,) = out.splitlines()
    assert "unreadable_file" in line and str(bad) in line and "1 problem(s): 1 unreadable_file" in err
    assert cli.main(args + ["--no-verify-images"]) == 0
    out, err = capsys.readouterr()
    assert str(bad) not in out + err and out.strip().endswith("no problems found") and err == ""
    root = write_voc(tmp_path / "voc")
    _truncate(root / "JPEGImages" / "000001.jpg")
    assert cli.main(["check-data", "--voc", str(root)]) == 1
    assert cli.main(["check-data", "--voc", str(root), "--no-verify-images"]) == 0


def test_train_refusing_the_data_names_the_bad_image(tmp_path, capsys):
    """The refusal's first line ends with ':'; the image it is about is on the next, and the command prints it."""
    path, img_dir = _write_set(tmp_path)
    bad = _truncate(img_dir / "b.jpg")
    assert cli.main(["train", "--coco", str(path), "--images", str(img_dir), "--checkpoint", str(tmp_path / "x.pt"),
                     "--epochs", "1", "--device", "cpu", "--size", "64"]) == 1
    err = capsys.readouterr().err
    first, *rest = err.strip().splitlines()
    assert first.startswith("d2lssd train: error: ") and first.endswith("out:"), err
    assert len(rest) == 1 and "unreadable_file" in rest[0] and str(bad) in rest[0], err
    assert not (tmp_path / "x.pt").exists()


def test_a_drop_reader_leaves_the_truncated_image_out(tmp_path, capsys):
    path, img_dir = _write_set(tmp_path)
    _truncate(img_dir / "b.jpg")
    with pytest.raises(ValueError, match="unreadable_file"):
        CocoDataset(path, img_dir)
    ds = CocoDataset(path, img_dir, errors="drop")
    assert ds.image_ids == [1, 3, 4] and ds.num_dropped == (0, 1)
    assert "dropped 0 annotation(s) and 1 image(s)" in capsys.readouterr().out


# --------------------------------------------------------------------------- warnings


def test_warnings_for_similar_classes_small_and_duplicate_boxes(tmp_path, capsys):
    categories = [{"id": 1, "name": "Raccoon"}, {"id": 2, "name": "raccoon "}, {"id": 5, "name": "owl"}]
    images = [(1, "a.jpg", 64, 48, [(1, (4, 6, 30, 40)), (2, (32, 0, 64, 20)),
                                    (5, (10, 10, 11, 30)),  # 1 pixel wide
                                    (5, (20, 20, 40, 21.5)),  # 1.5 pixels high
                                    (1, (4, 6, 30, 40))]),  # a duplicate of annotation 100
              (2, "b.jpg", 40, 56, [(2, (4, 6, 30, 40)), (5, (4, 6, 30, 40))])]  # other classes: no duplicate
    path, img_dir = _write_set(tmp_path, images, categories)
    report = check_coco(path, img_dir)
    assert report.ok and report.problems == []  # warnings never fail a check
    assert sorted(_warnings(report), key=str) == sorted([
        ("similar_class", None, None), ("small_box", 1, 102), ("small_box", 1, 103),
        ("duplicate_box", 1, 104)], key=str), report.warning_lines()
    (similar,) = [w for w in report.warnings if w.kind == "similar_class"]
    assert "'Raccoon' (id 1, 2 boxes)" in similar.message and "'raccoon ' (id 2, 2 boxes)" in similar.message
    (dup,) = [w for w in report.warnings if w.kind == "duplicate_box"]
    assert "annotation 100" in dup.message
    assert all(w.severity == "warning" and w.drops is None and not w.fatal for w in report.warnings)
    assert all("warning: " in line for line in report.warning_lines()) and report.lines() == []
    assert report.summary().endswith("4 warning(s): 1 duplicate_box, 1 similar_class, 2 small_box; "
                                     "no problems found")
    # A reader takes the data as it is: nothing dropped, nothing refused; it says that a class is split in two.
    capsys.readouterr()
    assert CocoDataset(path, img_dir).num_dropped == (0, 0)
    (line,) = capsys.readouterr().out.splitlines()
    assert "similar_class" in line and "'Raccoon' (id 1, 2 boxes)" in line, line
    assert cli.main(["check-data", "--coco", str(path), "--images", str(img_dir)]) == 0
    out, err = capsys.readouterr()
    assert sum("warning: small_box" in line for line in out.splitlines()) == 2 and err == ""
    with pytest.raises(ValueError, match="severity"):
        Problem("small_box", "x", severity="note")
    with pytest.raises(ValueError, match="never fatal"):
        Problem("small_box", "x", drops="annotation", severity="warning")


def test_no_warning_for_an_annotation_that_is_already_a_problem(tmp_path):
    images = [(1, "a.jpg", 64, 48, [(3, (4, 6, 30, 40))])]
    path, img_dir = _write_set(tmp_path, images)
    data = json.loads(path.read_text())
    data["annotations"].append(dict(data["annotations"][0]))  # the same id again: a problem, not a warning
    data["annotations"].append(coco_annotation(7, 1, 99, (1, 1, 1.5, 1.5)))  # unknown category, tiny
    report = check_coco(data, img_dir)
    assert sorted(p.kind for p in report.problems) == ["duplicate_id", "unknown_category"]
    assert report.warnings == []


def test_voc_warnings(tmp_path):
    images = {"a": (60, 40, [("Raccoon", 1, 1, 30, 30, 0), ("raccoon", 5, 5, 20, 20, 0),
                             ("raccoon", 5, 5, 20, 20, 0),  # duplicate of object 2
                             ("raccoon", 5, 5, 20, 20, 1),  # difficult, same box: still a duplicate
                             ("owl", 10, 3, 10, 20, 0),  # xmin == xmax: 1 pixel wide
                             ("owl", 10, 3, 12, 20, 0)]),  # 3 pixels wide: fine
              "b": (30, 30, [("owl", 5, 5, 20, 20, 0), ("Raccoon", 5, 5, 20, 20, 0)])}
    root = write_voc(tmp_path / "voc", images)
    report = check_voc(root)
    assert report.ok
    assert sorted(_warnings(report), key=str) == sorted([
        ("duplicate_box", "a", 3), ("duplicate_box", "a", 4), ("small_box", "a", 5),
        ("similar_class", None, None)], key=str), report.warning_lines()
    (similar,) = [w for w in report.warnings if w.kind == "similar_class"]
    assert "'Raccoon' (2 boxes" in similar.message and "'raccoon' (3 boxes" in similar.message
    assert report.class_counts == {"Raccoon": (2, 2), "owl": (3, 2), "raccoon": (3, 1)}
    ds = VOCDataset(root)  # warnings do not stop a reader
    assert ds.classes == ("Raccoon", "owl", "raccoon") and ds.report.warnings == report.warnings


def test_similar_names_and_count_classes():
    assert similar_names(["cat", "Dog", " dog", "dog", "CAT", "owl"]) == [[" dog", "Dog", "dog"], ["CAT", "cat"]]
    assert similar_names(["a", "b"]) == []
    got = count_classes(["x", "y", "z"], [(1, "x"), (1, "x"), (2, "x"), (2, "y"), (3, "w")])
    assert got == {"x": (3, 2), "y": (1, 1), "z": (0, 0), "w": (1, 1)} and list(got) == ["x", "y", "z", "w"]


# --------------------------------------------------------------------------- per-class counts


def test_per_class_counts_in_the_report_and_the_summary(tmp_path, capsys):
    path, img_dir = _write_set(tmp_path)
    report = check_coco(path, img_dir)
    # Increasing category id: dog (3), cat (7), bird (12, no box). Dogs: 2 in a.jpg, 1 in b.jpg.
    assert report.class_counts == {"dog": (3, 2), "cat": (2, 2), "bird": (0, 0)}
    assert list(report.class_counts) == ["dog", "cat", "bird"]
    assert cli.main(["check-data", "--coco", str(path), "--images", str(img_dir), "--quiet"]) == 0
    out, _ = capsys.readouterr()
    rows = [line.split() for line in out.splitlines()]
    assert rows[:4] == [["class", "boxes", "images"], ["'dog'", "3", "2"], ["'cat'", "2", "2"],
                        ["'bird'", "0", "0"]]
    assert out.strip().endswith("no problems found")
    # Counted over what errors="drop" keeps: a bad box and a dropped image do not count.
    data = json.loads(path.read_text())
    data["annotations"][0]["bbox"][2] = 0  # a dog of a.jpg
    data["images"][3]["width"] = 49  # size_mismatch: d.jpg (its cat) is dropped
    report = check_coco(data, img_dir)
    assert report.class_counts == {"dog": (2, 2), "cat": (1, 1), "bird": (0, 0)}
    # The table goes with the summary to stderr when there are problems; stdout has only the problem lines.
    (tmp_path / "bad.json").write_text(json.dumps(data))
    assert cli.main(["check-data", "--coco", str(tmp_path / "bad.json"), "--images", str(img_dir)]) == 1
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 2 and err.splitlines()[1].split() == ["'dog'", "2", "2"]


def test_voc_per_class_counts_follow_the_given_classes(tmp_path):
    root = write_voc(tmp_path / "voc")  # dog 1, cat 2 (one difficult) in 2 images, person 1
    report = check_voc(root, classes=["person", "dog", "cat", "bus"])
    assert report.class_counts == {"person": (1, 1), "dog": (1, 1), "cat": (2, 2), "bus": (0, 0)}
    assert check_voc(root).class_counts == {"cat": (2, 2), "dog": (1, 1), "person": (1, 1)}


# --------------------------------------------------------------------------- readers skip what fails later


def test_coco_reader_skips_a_file_that_fails_to_decode(tmp_path):
    path, img_dir = _write_set(tmp_path)
    ds = CocoDataset(path, img_dir, verify_images=False)  # the fast check lets it through
    bad = _truncate(img_dir / "b.jpg")
    assert ds.image_ids == [1, 2, 3, 4] and ds.num_skipped == 0
    with pytest.warns(RuntimeWarning, match=str(bad).replace("\\", "\\\\")) as rec:
        ids = [ds[i][1]["image_id"] for i in range(len(ds))]
    assert len(rec) == 1 and "truncated" in str(rec[0].message)
    assert ids == [1, 3, 3, 4]  # sample 1 (b.jpg) is replaced by the next readable one
    assert ds.skipped_images == {str(bad)} and ds.num_skipped == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per file: not again in the next epoch
        assert [ds[i][1]["image_id"] for i in range(len(ds))] == [1, 3, 3, 4]
    assert ds.num_skipped == 1


def test_an_epoch_through_a_dataloader_and_wrapping_around(tmp_path):
    path, img_dir = _write_set(tmp_path)
    ds = CocoDataset(path, img_dir, verify_images=False, transforms=SSDEvalTransform(size=32))
    from d2lssd.data import collate_detection

    bad = _truncate(img_dir / "d.jpg")  # the last sample: its substitute is the first
    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate_detection)
    with pytest.warns(RuntimeWarning, match="d.jpg"):
        ids = [i for _, _, info in loader for i in info["image_id"].tolist()]
    assert ids == [1, 2, 3, 1] and ds.skipped_images == {str(bad)}
    train, val = ds.split(1, seed=0)
    assert train.skipped_images == set() and val.skipped_images == set()  # each part counts its own


def test_voc_reader_skips_and_all_unreadable_is_a_clear_error(tmp_path):
    root = write_voc(tmp_path / "voc")
    ds = VOCDataset(root, verify_images=False)
    bad = _truncate(root / "JPEGImages" / "000001.jpg")
    with pytest.warns(RuntimeWarning, match="000001.jpg"):
        names = [ds[i][1]["name"] for i in range(len(ds))]
    assert names == ["000002", "000002", "000003"] and ds.skipped_images == {str(bad)}
    for name in ("000002", "000003"):
        (root / "JPEGImages" / f"{name}.jpg").write_bytes(b"not an image")
    with pytest.warns(RuntimeWarning):
        with pytest.raises(RuntimeError, match="none of the 3 image files"):
            ds[0]
    assert ds.num_skipped == 3
    with pytest.raises(IndexError):
        ds[3]
