"""The bundled photos, their hand-annotated boxes and the pixel/normalized converters."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import d2lssd  # noqa: E402
from d2lssd.photos import (GROUND_TRUTH, PHOTOS, ground_truth_labels, load_photo,  # noqa: E402
                           to_normalized, to_pixels)

EXPECTED_SHAPES = {"astronaut": (512, 512, 3), "chelsea": (300, 451, 3), "coffee": (400, 600, 3)}


@pytest.fixture(scope="module")
def photos():
    return {name: load_photo(name) for name in PHOTOS}


def test_photos_load_with_documented_shapes(photos):
    assert set(PHOTOS) == set(EXPECTED_SHAPES) == set(GROUND_TRUTH)
    for name, image in photos.items():
        assert isinstance(image, np.ndarray)
        assert image.dtype == np.uint8
        assert image.shape == EXPECTED_SHAPES[name] == PHOTOS[name]["shape"]
        assert image.std() > 10  # a real photo, not a blank array


def test_load_photo_returns_fresh_array(photos):
    a = load_photo("coffee")
    a[:] = 0
    assert load_photo("coffee").any()


def test_licences_are_quoted_from_skimage():
    import skimage.data

    for name, meta in PHOTOS.items():
        assert set(meta) >= {"description", "licence", "source"}
        doc = " ".join(getattr(skimage.data, name).__doc__.split())
        assert " ".join(meta["licence"].split()) in doc, name
        # the documented array shape in skimage's docstring matches ours
        assert str(meta["shape"]) in doc, name
    assert "public domain" in PHOTOS["astronaut"]["licence"]
    assert "CC0" in PHOTOS["chelsea"]["licence"] and "CC0" in PHOTOS["coffee"]["licence"]


def test_unknown_photo_is_an_error():
    with pytest.raises(ValueError, match="unknown photo"):
        load_photo("camera")


@pytest.mark.parametrize("name", sorted(GROUND_TRUTH))
def test_ground_truth_boxes_lie_inside_their_image(name):
    height, width = PHOTOS[name]["shape"][:2]
    assert GROUND_TRUTH[name], "every photo has at least one object"
    for cls, (x1, y1, x2, y2) in GROUND_TRUTH[name]:
        assert isinstance(cls, str) and cls
        assert all(isinstance(v, int) for v in (x1, y1, x2, y2))
        assert 0 <= x1 < x2 <= width, (cls, x1, x2)
        assert 0 <= y1 < y2 <= height, (cls, y1, y2)
        assert (x2 - x1) * (y2 - y1) >= 32 * 32  # no accidental slivers


def test_ground_truth_has_the_objects_the_chapters_use():
    classes = {name: [c for c, _ in objs] for name, objs in GROUND_TRUTH.items()}
    assert {"person", "face", "helmet", "flag", "rocket"} <= set(classes["astronaut"])
    assert classes["chelsea"].count("cat") == 1 and classes["chelsea"].count("eye") == 2
    assert {"cup", "saucer", "spoon"} <= set(classes["coffee"])
    # Geometric sanity of the hand annotation: the face is inside the person,
    # the eyes and nose inside the cat, the spoon's bowl lies on the saucer.
    box = {(n, c): torch.tensor(b, dtype=torch.float32) for n, o in GROUND_TRUTH.items()
           for c, b in o}

    def inside(inner, outer):
        return bool((inner[:2] >= outer[:2]).all() and (inner[2:] <= outer[2:]).all())

    assert inside(box["astronaut", "face"], box["astronaut", "person"])
    for c, b in GROUND_TRUTH["chelsea"][1:]:
        assert inside(torch.tensor(b), torch.tensor(GROUND_TRUTH["chelsea"][0][1]))
    assert inside(box["coffee", "cup"], box["coffee", "saucer"]) is False  # the cup rises above it
    assert d2lssd.box_iou(box["coffee", "cup"][None], box["coffee", "saucer"][None]) > 0.3


@pytest.mark.parametrize("name", sorted(GROUND_TRUTH))
def test_ground_truth_labels_are_normalized_rows(name):
    classes = sorted({c for c, _ in GROUND_TRUTH[name]})
    labels = ground_truth_labels(name, classes)
    height, width = PHOTOS[name]["shape"][:2]
    assert labels.dtype == torch.float32
    assert labels.shape == (len(GROUND_TRUTH[name]), 5)
    assert ((labels[:, 1:] >= 0) & (labels[:, 1:] <= 1)).all()
    assert (labels[:, 3] > labels[:, 1]).all() and (labels[:, 4] > labels[:, 2]).all()
    for row, (cls, box) in zip(labels, GROUND_TRUTH[name]):
        assert int(row[0]) == classes.index(cls)
        expected = torch.tensor(box, dtype=torch.float64) / torch.tensor(
            [width, height, width, height], dtype=torch.float64)
        torch.testing.assert_close(row[1:].double(), expected, rtol=0, atol=1e-6)


def test_ground_truth_labels_selects_classes_and_works_with_multibox_target():
    eyes = ground_truth_labels("chelsea", ["eye"])
    assert eyes.shape == (2, 5) and (eyes[:, 0] == 0).all()
    assert ground_truth_labels("chelsea", ["dog"]).shape == (0, 5)
    # The rows are what multibox_target expects: every object gets a positive anchor.
    labels = ground_truth_labels("coffee", ["cup", "saucer", "spoon"])
    anchors = d2lssd.multibox_prior(torch.zeros(1, 3, 8, 8), [0.75, 0.5, 0.25], [1, 2, 0.5])
    _, mask, cls = d2lssd.multibox_target(anchors, labels[None])
    assert set(cls[0][cls[0] > 0].tolist()) == {1, 2, 3}  # label k -> model class k + 1


@pytest.mark.parametrize("bad", ["eye", [], ["eye", "eye"]])
def test_ground_truth_labels_rejects_bad_classes(bad):
    with pytest.raises(ValueError):
        ground_truth_labels("chelsea", bad)


def test_pixels_normalized_round_trip():
    g = torch.Generator().manual_seed(0)
    boxes = torch.rand(7, 3, 4, generator=g, dtype=torch.float64)
    px = to_pixels(boxes, 451, 300)
    assert px.shape == boxes.shape and px.dtype == torch.float64
    torch.testing.assert_close(px[..., 0::2], boxes[..., 0::2] * 451)
    torch.testing.assert_close(px[..., 1::2], boxes[..., 1::2] * 300)
    torch.testing.assert_close(to_normalized(px, 451, 300), boxes)
    b32 = torch.tensor([[10.0, 20.0, 110.0, 220.0]])
    out = to_normalized(b32, 600, 400)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.tensor([[10 / 600, 20 / 400, 110 / 600, 220 / 400]]))
    torch.testing.assert_close(to_pixels(out, 600, 400), b32)


@pytest.mark.parametrize("fn", [to_pixels, to_normalized])
@pytest.mark.parametrize("boxes, width, height", [
    (torch.zeros(2, 3), 10, 10),                          # wrong last dim
    (torch.tensor([[0.0, float("nan"), 1.0, 1.0]]), 10, 10),  # NaN
    (torch.zeros(2, 4, dtype=torch.int64), 10, 10),       # not float
    ([[0.0, 0.0, 1.0, 1.0]], 10, 10),                     # not a tensor
    (torch.zeros(2, 4), 0, 10),                           # zero width
    (torch.zeros(2, 4), 10, float("nan")),                # NaN height
    (torch.zeros(2, 4), 10, -5),                          # negative height
])
def test_converters_reject_bad_input(fn, boxes, width, height):
    with pytest.raises(ValueError):
        fn(boxes, width, height)


def test_unit_conversions_live_in_boxes_and_stay_importable_from_photos():
    import d2lssd.boxes
    import d2lssd.photos

    assert d2lssd.photos.to_pixels is d2lssd.boxes.to_pixels is d2lssd.to_pixels
    assert d2lssd.photos.to_normalized is d2lssd.boxes.to_normalized is d2lssd.to_normalized
