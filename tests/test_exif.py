"""Phone photos: pixels stored turned plus an EXIF orientation tag are read upright, as labelling tools show them.

Each test writes a real JPEG whose stored pixels are the upright picture
turned, with the EXIF Orientation tag (0x0112) that turns it back, and
builds a COCO, VOC or YOLO set around it whose size and box are those of the
upright picture, as CVAT, Label Studio, LabelImg, Roboflow and Ultralytics
export them.
"""

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from d2lssd.data import CocoDataset, VOCDataset, YOLODataset, check_coco, check_voc, check_yolo
from d2lssd.data.images import exif_orientation, read_upright_rgb, upright_size
from d2lssd.data.report import image_read_errors
from d2lssd.photos import as_uint8_image

W, H = 60, 40  # the upright picture: 60 wide, 40 high
BOX = (10, 5, 30, 20)  # the red region, upright pixels, 0-based half-open (x1, y1, x2, y2)
RED, GREY = (220, 20, 20), (120, 120, 120)

# np.rot90 turns counterclockwise; the stored pixels are the upright ones turned the opposite way to the tag.
_STORE = {1: lambda a: a, 3: lambda a: np.rot90(a, 2), 6: lambda a: np.rot90(a, 1), 8: lambda a: np.rot90(a, -1)}


def _upright() -> np.ndarray:
    a = np.empty((H, W, 3), np.uint8)
    a[:] = GREY
    x1, y1, x2, y2 = BOX
    a[y1:y2, x1:x2] = RED
    return a


def _phone_photo(path, orientation=6):
    """Write a JPEG storing the upright picture turned, with EXIF orientation ``orientation``."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.ascontiguousarray(_STORE[orientation](_upright()))).save(path, quality=95, exif=exif)
    return path


def _region_mean(image: torch.Tensor, box) -> np.ndarray:
    """Mean RGB of the inside of ``box`` (a 2-pixel margin against JPEG ringing)."""
    x1, y1, x2, y2 = (int(v) for v in box)
    return image[:, y1 + 2:y2 - 2, x1 + 2:x2 - 2].float().mean(dim=(1, 2)).numpy()


def _assert_upright(image, boxes):
    """The sample image is the upright picture and its box covers the red region."""
    assert tuple(image.shape) == (3, H, W) and image.dtype == torch.uint8
    torch.testing.assert_close(boxes.as_subclass(torch.Tensor), torch.tensor([BOX], dtype=torch.float32))
    np.testing.assert_allclose(_region_mean(image, BOX), RED, atol=12)
    np.testing.assert_allclose(_region_mean(image, (40, 25, 60, 40)), GREY, atol=12)  # bottom right: grey


def _warnings(report):
    return [p.kind for p in report.warnings]


# --------------------------------------------------------------------------- the files themselves


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_the_test_photos_are_stored_turned_and_pil_turns_them_back(tmp_path, orientation):
    path = _phone_photo(tmp_path / "p.jpg", orientation)
    with Image.open(path) as im:
        assert im.size == ((W, H) if orientation == 3 else (H, W))  # stored size
        assert exif_orientation(im, decode=False) == orientation  # from the header alone
        upright = np.asarray(ImageOps.exif_transpose(im))
    assert upright.shape == (H, W, 3)
    assert np.abs(upright.astype(int) - _upright()).mean() < 3  # JPEG: nearly equal


def test_read_upright_rgb_is_exif_transpose_and_as_uint8_image_shares_it(tmp_path):
    path = _phone_photo(tmp_path / "p.jpg", 6)
    image = read_upright_rgb(path)
    with Image.open(path) as im:
        expected = torch.from_numpy(np.array(ImageOps.exif_transpose(im).convert("RGB"))).permute(2, 0, 1)
    assert torch.equal(image, expected)
    assert torch.equal(as_uint8_image(path), image)
    with Image.open(path) as im:
        assert torch.equal(as_uint8_image(im), image)
    assert upright_size((H, W), 6) == (W, H) and upright_size((W, H), 3) == (W, H)


def test_odd_orientation_values_are_ignored_and_decode_errors_keep_their_types(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 9  # not an orientation
    Image.fromarray(_upright()).save(tmp_path / "odd.jpg", exif=exif)
    with Image.open(tmp_path / "odd.jpg") as im:
        assert exif_orientation(im) == 1
    assert read_upright_rgb(tmp_path / "odd.jpg").shape == (3, H, W)
    data = _phone_photo(tmp_path / "p.jpg", 6).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(image_read_errors()):  # what the readers' skip-on-decode-error logic catches
        read_upright_rgb(tmp_path / "cut.jpg")
    with pytest.raises(image_read_errors()):
        read_upright_rgb(tmp_path / "missing.jpg")


# --------------------------------------------------------------------------- COCO


def _coco(tmp_path, orientation=6, size=(W, H)):
    img_dir = tmp_path / "images"
    img_dir.mkdir(exist_ok=True)
    _phone_photo(img_dir / "phone.jpg", orientation)
    x1, y1, x2, y2 = BOX
    data = {"images": [{"id": 1, "file_name": "phone.jpg", "width": size[0], "height": size[1]}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1]}],
            "categories": [{"id": 1, "name": "red"}]}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return path, img_dir


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_coco_phone_photo_is_checked_and_read_upright(tmp_path, orientation):
    path, img_dir = _coco(tmp_path, orientation)
    for verify in (True, False):
        report = check_coco(path, img_dir, verify_images=verify)
        assert report.ok, report.lines()
        assert _warnings(report) == ["exif_rotated"]
        (w,) = report.warnings
        assert w.severity == "warning" and w.image == 1 and f"orientation {orientation}" in w.message
        assert "read upright" in w.message and f"{W}x{H}" in w.message
    image, target = CocoDataset(path, img_dir)[0]
    _assert_upright(image, target["boxes"])
    assert target["orig_size"] == (H, W)


def test_coco_declaring_the_stored_size_of_a_turned_photo_is_a_problem(tmp_path):
    path, img_dir = _coco(tmp_path, 6, size=(H, W))  # 40x60: the pixels as stored, not as shown
    for verify in (True, False):
        report = check_coco(path, img_dir, verify_images=verify)
        assert [(p.kind, p.image) for p in report.problems] == [("size_mismatch", 1)]
        assert report.warnings == []  # the problem says it all
        msg = report.problems[0].message
        assert "as stored" in msg and "EXIF orientation 6" in msg and f"{W}x{H}" in msg
        assert "unrotated pixels" in msg and "remove the orientation tag" in msg
    with pytest.raises(ValueError, match="size_mismatch"):
        CocoDataset(path, img_dir)


def test_coco_other_wrong_size_of_a_turned_photo_names_both_sizes(tmp_path):
    path, img_dir = _coco(tmp_path, 6, size=(61, 40))
    (p,) = check_coco(path, img_dir).problems
    assert p.kind == "size_mismatch" and "60x40 upright" in p.message and "stored 40x60" in p.message


# --------------------------------------------------------------------------- VOC


def _voc(tmp_path, orientation=6, size=(W, H)):
    root = tmp_path / "voc"
    (root / "JPEGImages").mkdir(parents=True)
    (root / "Annotations").mkdir()
    _phone_photo(root / "JPEGImages" / "phone.jpg", orientation)
    x1, y1, x2, y2 = BOX  # VOC: 1-based inclusive corners
    (root / "Annotations" / "phone.xml").write_text(
        f"<annotation><filename>phone.jpg</filename><size><width>{size[0]}</width><height>{size[1]}</height>"
        f"<depth>3</depth></size><object><name>red</name><difficult>0</difficult><bndbox><xmin>{x1 + 1}</xmin>"
        f"<ymin>{y1 + 1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object></annotation>")
    return root


def test_voc_phone_photo_is_checked_and_read_upright(tmp_path):
    root = _voc(tmp_path)
    for verify in (True, False):
        report = check_voc(root, verify_images=verify)
        assert report.ok, report.lines()
        assert [(p.kind, p.image) for p in report.warnings] == [("exif_rotated", "phone")]
    image, target = VOCDataset(root)[0]
    _assert_upright(image, target["boxes"])


def test_voc_size_of_the_stored_pixels_is_a_problem(tmp_path):
    root = _voc(tmp_path, size=(H, W))
    report = check_voc(root)
    assert [(p.kind, p.image) for p in report.problems] == [("size_mismatch", "phone")]
    assert "<size> says 40x60" in report.problems[0].message and "unrotated pixels" in report.problems[0].message
    with pytest.raises(ValueError, match="size_mismatch"):
        VOCDataset(root)


# --------------------------------------------------------------------------- YOLO


def test_yolo_phone_photo_is_checked_and_read_upright(tmp_path):
    root = tmp_path / "yolo"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    _phone_photo(root / "images" / "phone.jpg", 6)
    x1, y1, x2, y2 = BOX  # normalized by the upright width and height, as Ultralytics writes them
    (root / "labels" / "phone.txt").write_text(
        f"0 {(x1 + x2) / 2 / W} {(y1 + y2) / 2 / H} {(x2 - x1) / W} {(y2 - y1) / H}\n")
    (root / "classes.txt").write_text("red\n")
    for verify in (True, False):
        report = check_yolo(root, verify_images=verify)
        assert report.ok, report.lines()
        assert [(p.kind, p.image) for p in report.warnings] == [("exif_rotated", "images/phone.jpg")]
    image, target = YOLODataset(root)[0]
    assert tuple(image.shape) == (3, H, W)
    torch.testing.assert_close(target["boxes"].as_subclass(torch.Tensor),
                               torch.tensor([BOX], dtype=torch.float32), atol=1e-4, rtol=0)
    np.testing.assert_allclose(_region_mean(image, BOX), RED, atol=12)


def test_an_upright_file_without_tag_gets_no_warning(tmp_path):
    path, img_dir = _coco(tmp_path, orientation=1)
    report = check_coco(path, img_dir)
    assert report.ok and report.warnings == []
