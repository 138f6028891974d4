"""The data checker: each kind of fault, all faults of a file at once, and `d2lssd check-data`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from d2lssd import cli
from d2lssd.data import check_coco, check_dataset, check_voc, generate_multiclass_coco, write_broken_copy

from _helpers import write_voc


def _clean(tmp_path):
    """A clean two-image COCO set: returns (data dict, image folder)."""
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    for name, (w, h) in {"a.jpg": (40, 30), "b.jpg": (20, 50)}.items():
        Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(img_dir / name)
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 30},
                   {"id": 2, "file_name": "b.jpg", "width": 20, "height": 50}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 4, "bbox": [0, 0, 40, 30], "iscrowd": 0},
                        {"id": 2, "image_id": 2, "category_id": 6, "bbox": [-0.9, 2, 21.8, 10], "iscrowd": 0}],
        "categories": [{"id": 4, "name": "a"}, {"id": 6, "name": "b"}],
    }
    return data, img_dir


def _kinds(report):
    return [(p.kind, p.image, p.annotation) for p in report.problems]


def test_clean_data_and_the_one_pixel_tolerance(tmp_path):
    data, img_dir = _clean(tmp_path)
    report = check_coco(data, img_dir)
    assert report.ok and report.lines() == [] and report.num_images == 2 and report.num_annotations == 2
    assert "no problems found" in report.summary()


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d["annotations"][0]["bbox"].__setitem__(2, 0), ("bad_box", 1, 1)),
    (lambda d: d["annotations"][0]["bbox"].__setitem__(3, -3), ("bad_box", 1, 1)),
    (lambda d: d["annotations"][0].__setitem__("bbox", [1, 2, "3", 4]), ("bad_box", 1, 1)),
    (lambda d: d["annotations"][0].__setitem__("bbox", [1, 2, 3]), ("bad_box", 1, 1)),
    (lambda d: d["annotations"][1]["bbox"].__setitem__(0, -1.5), ("outside", 2, 2)),  # 1.5 px left
    (lambda d: d["annotations"][0]["bbox"].__setitem__(3, 31.5), ("outside", 1, 1)),  # 1.5 px below
    (lambda d: d["annotations"][0].__setitem__("bbox", [40.5, 0, 0.4, 5]), ("outside", 1, 1)),  # no part inside
    (lambda d: d["annotations"][0].__setitem__("category_id", 5), ("unknown_category", 1, 1)),
    (lambda d: d["annotations"][1].__setitem__("image_id", 3), ("unknown_image", 3, 2)),
    (lambda d: d["annotations"][1].__setitem__("id", 1), ("duplicate_id", 2, 1)),
    (lambda d: d["annotations"][0].__setitem__("iscrowd", 2), ("bad_entry", 1, 1)),
    (lambda d: d["images"][1].__setitem__("id", 1), ("duplicate_id", 1, None)),
    (lambda d: d["images"][0].__setitem__("width", 41), ("size_mismatch", 1, None)),
    (lambda d: d["images"][0].__setitem__("height", 0), ("bad_image_size", 1, None)),
    (lambda d: d["images"][1].__setitem__("file_name", "c.jpg"), ("missing_file", 2, None)),
    (lambda d: d["categories"][1].__setitem__("id", 4), ("duplicate_id", None, None)),
    (lambda d: d["categories"][1].__setitem__("name", "a"), ("bad_category", None, None)),
])
def test_each_kind_of_fault(tmp_path, edit, expected):
    data, img_dir = _clean(tmp_path)
    edit(data)
    report = check_coco(data, img_dir)
    assert expected in _kinds(report), report.lines()
    assert not report.ok and len(report.lines()) == len(report.problems)


def test_exchanged_width_and_height_get_a_hint(tmp_path):
    data, img_dir = _clean(tmp_path)
    data["images"][0].update(width=30, height=40)  # the file is 40x30
    (p,) = [p for p in check_coco(data, img_dir).problems if p.kind == "size_mismatch"]
    assert "EXIF orientation" in p.message


def test_unreadable_file_and_bad_json(tmp_path):
    data, img_dir = _clean(tmp_path)
    (img_dir / "b.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    assert ("unreadable_file", 2, None) in _kinds(check_coco(data, img_dir))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    report = check_coco(bad, img_dir)
    assert [p.kind for p in report.problems] == ["bad_json"] and report.fatal
    bad.write_text(json.dumps({"images": []}))
    assert check_coco(bad, img_dir).problems[0].kind == "bad_json"
    with pytest.raises(FileNotFoundError):
        check_coco(tmp_path / "missing.json", img_dir)
    with pytest.raises(ValueError, match="folder"):
        check_coco(data, tmp_path / "nowhere")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return generate_multiclass_coco(tmp_path_factory.mktemp("mc") / "data", num_train=16, num_val=4, seed=3)


def test_all_faults_of_one_file_together_and_nothing_modified(generated, tmp_path):
    before = {p: p.stat().st_mtime_ns for p in generated.rglob("*")}
    assert check_coco(generated / "train.json", generated / "images").ok
    faults = write_broken_copy(generated, tmp_path / "broken")
    report = check_coco(tmp_path / "broken" / "train.json", tmp_path / "broken" / "images")
    found = _kinds(report)
    for f in faults:
        assert (f["kind"], f["image"], f["annotation"]) in found, (f, report.lines())
    assert len(report.problems) == len(faults)  # nothing else, nothing twice
    assert report.warnings == []  # the copy of annotation 8 is a duplicate_id problem, not a duplicate_box too
    # Every line names the image and, for an annotation fault, the annotation.
    for p, line in zip(report.problems, report.lines()):
        assert f"image {p.image}" in line and p.kind in line
        if p.annotation is not None:
            assert f"annotation {p.annotation}" in line
    assert {p: p.stat().st_mtime_ns for p in generated.rglob("*")} == before


def test_voc_faults(tmp_path):
    root = write_voc(tmp_path / "voc", image_sets={"train": ["000001", "000002", "000001", "000009"]})
    assert check_voc(root).ok
    xml = root / "Annotations" / "000001.xml"
    text = xml.read_text()
    xml.write_text(text.replace("<xmax>60</xmax>", "<xmax>62</xmax>").replace("<xmax>30</xmax>", "<xmax>9</xmax>"))
    xml2 = root / "Annotations" / "000002.xml"
    xml2.write_text(xml2.read_text().replace("<width>50</width>", "<width>51</width>")
                    .replace("<name>cat</name>", "<name>horse</name>"))
    report = check_voc(root, "train", classes=["cat", "dog", "person"])
    got = _kinds(report)
    assert ("duplicate_id", "000001", None) in got  # listed twice
    assert ("missing_file", "000009", None) in got  # listed, no XML
    assert ("outside", "000001", 1) in got  # xmax 62 > width 60 + 1
    assert ("bad_box", "000001", 2) in got  # xmax 9 < xmin 11
    assert ("size_mismatch", "000002", None) in got
    assert ("unknown_category", "000002", 2) in got
    assert len(got) == 6, report.lines()
    (root / "JPEGImages" / "000003.jpg").unlink()
    assert ("missing_file", "000003", None) in _kinds(check_voc(root))
    with pytest.raises(ValueError, match="give either"):
        check_dataset()


def test_cli_in_process(generated, tmp_path, capsys):
    assert cli.main(["check-data", "--coco", str(generated / "val.json"), "--images", str(generated / "images")]) == 0
    out, err = capsys.readouterr()
    assert out.strip().endswith("no problems found") and err == ""
    write_broken_copy(generated, tmp_path / "b")
    code = cli.main(["check-data", "--coco", str(tmp_path / "b" / "train.json"), "--images", str(tmp_path / "b" / "images")])
    out, err = capsys.readouterr()
    assert code == 1
    assert len(out.splitlines()) == 10 and "10 problem(s)" in err
    assert cli.main(["check-data", "--coco", str(tmp_path / "nope.json"), "--images", str(generated)]) == 1
    assert "error" in capsys.readouterr().err
    root = write_voc(tmp_path / "voc")
    assert cli.main(["check-data", "--voc", str(root)]) == 0
    with pytest.raises(SystemExit) as e:
        cli.main(["check-data", "--bogus"])
    assert e.value.code == 2


def test_cli_end_to_end_subprocess(generated, tmp_path):
    write_broken_copy(generated, tmp_path / "b")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    cmd = [sys.executable, "-m", "d2lssd", "check-data", "--coco", str(tmp_path / "b" / "train.json"),
           "--images", str(tmp_path / "b" / "images")]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 10 and all(line.startswith(str(tmp_path / "b" / "train.json")) for line in lines)
    assert "Traceback" not in r.stderr
    r = subprocess.run(cmd[:5], capture_output=True, text=True, env=env, timeout=120)  # --coco without a file
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
