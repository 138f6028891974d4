import math

import pytest
import torch
import torchvision.ops as ops
from hypothesis import given, settings
from hypothesis import strategies as st

import d2lssd
from strategies import boxes, clustered, random_boxes


# --- reference equality with torchvision.ops -------------------------------------------

@pytest.mark.parametrize("seed", range(5))
def test_box_iou_equals_torchvision_on_random_boxes(seed):
    a, b = random_boxes(200, seed), random_boxes(150, seed + 100)
    torch.testing.assert_close(d2lssd.box_iou(a, b), ops.box_iou(a, b), rtol=0, atol=0)


def test_box_iou_equals_torchvision_on_clustered_quantized_boxes():
    # Coordinates on a grid: many identical boxes, shared edges, IoU exactly 1 and 0.5.
    a, _ = clustered(300, 10, seed=3, quantize=16)
    torch.testing.assert_close(d2lssd.box_iou(a, a), ops.box_iou(a, a), rtol=0, atol=0)


def test_box_iou_float64_and_float16():
    a, b = random_boxes(50, 1, dtype=torch.float64), random_boxes(40, 2, dtype=torch.float64)
    torch.testing.assert_close(d2lssd.box_iou(a, b), ops.box_iou(a, b))
    assert d2lssd.box_iou(a, b).dtype == torch.float64
    h = d2lssd.box_iou(a.half(), b.half())
    assert h.dtype == torch.float32  # computed and returned in float32
    torch.testing.assert_close(h, ops.box_iou(a.half().float(), b.half().float()))


@pytest.mark.parametrize("fmt", ["cxcywh"])
def test_conversions_equal_torchvision(fmt):
    a = random_boxes(100, 7)
    torch.testing.assert_close(d2lssd.box_corner_to_center(a), ops.box_convert(a, "xyxy", fmt))
    c = ops.box_convert(a, "xyxy", fmt)
    torch.testing.assert_close(d2lssd.box_center_to_corner(c), ops.box_convert(c, fmt, "xyxy"))


def test_box_area_equals_torchvision():
    a = random_boxes(100, 8)
    torch.testing.assert_close(d2lssd.box_area(a), ops.box_area(a))


def test_clip_boxes_equals_torchvision_in_pixels():
    a = random_boxes(100, 9, max_size=1.5) * torch.tensor([640.0, 480.0, 640.0, 480.0])
    ours = d2lssd.clip_boxes(a, width=640, height=480)
    torch.testing.assert_close(ours, ops.clip_boxes_to_image(a, (480, 640)))


# --- known values -----------------------------------------------------------------------

def test_box_iou_known_values():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [2.0, 0.0, 4.0, 2.0], [0.0, 0.0, 1.0, 2.0]])
    torch.testing.assert_close(d2lssd.box_iou(a, b), torch.tensor([[1 / 7, 1.0, 0.0, 0.5]]))


def test_zero_area_boxes_give_zero_not_nan():
    z = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.2, 0.2, 0.2, 0.6]])
    iou = d2lssd.box_iou(z, z)
    assert torch.isnan(ops.box_iou(z, z)).any()  # the pitfall we document
    assert torch.equal(iou, torch.zeros(2, 2))
    assert d2lssd.box_iou(z, torch.tensor([[0.0, 0.0, 1.0, 1.0]])).eq(0).all()


def test_empty_inputs_give_empty_results():
    a = random_boxes(3)
    assert d2lssd.box_iou(a, torch.zeros(0, 4)).shape == (3, 0)
    assert d2lssd.box_iou(torch.zeros(0, 4), a).shape == (0, 3)


def test_batched_box_iou_matches_per_image():
    a = torch.stack([random_boxes(20, s) for s in range(3)])
    b = torch.stack([random_boxes(5, 10 + s) for s in range(3)])
    out = d2lssd.box_iou(a, b)
    assert out.shape == (3, 20, 5)
    for i in range(3):
        torch.testing.assert_close(out[i], ops.box_iou(a[i], b[i]))
    # broadcasting (1, N, 4) against (B, M, 4), as anchors against labels
    out = d2lssd.box_iou(a[:1], b)
    for i in range(3):
        torch.testing.assert_close(out[i], ops.box_iou(a[0], b[i]))


# --- properties ---------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(boxes(), boxes())
def test_iou_symmetric_and_in_unit_interval(a, b):
    iou = d2lssd.box_iou(a, b)
    assert iou.shape == (len(a), len(b))
    assert torch.isfinite(iou).all()
    assert ((iou >= 0) & (iou <= 1)).all()
    torch.testing.assert_close(iou, d2lssd.box_iou(b, a).T)


@settings(max_examples=100, deadline=None)
@given(boxes(min_n=1, min_size=1e-3))
def test_iou_of_box_with_itself_is_one(a):
    torch.testing.assert_close(torch.diagonal(d2lssd.box_iou(a, a)), torch.ones(len(a)))


@settings(max_examples=100, deadline=None)
@given(boxes())
def test_center_corner_round_trip(a):
    torch.testing.assert_close(d2lssd.box_center_to_corner(d2lssd.box_corner_to_center(a)), a,
                               atol=1e-6, rtol=0)


# --- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, match", [
    (torch.tensor([[0.5, 0.0, 0.4, 1.0]]), "boxes1 has a degenerate box"),
    (torch.tensor([[0.0, float("nan"), 1.0, 1.0]]), "boxes1 contains NaN"),
    (torch.zeros(3, 5), "boxes1 must have a last dimension of 4"),
    (torch.zeros(4), "boxes1 must have at least 2 dimensions"),
    (torch.zeros(2, 4, dtype=torch.bool), "boxes1 must be a floating-point or integer tensor"),
    (torch.zeros(2, 4, dtype=torch.complex64), "boxes1 must be a floating-point or integer tensor"),
    (torch.tensor([[5, 0, 4, 1]]), "boxes1 has a degenerate box"),  # integer boxes are still checked
    ([[0.0, 0.0, 1.0, 1.0]], "boxes1 must be a torch.Tensor"),
])
def test_box_iou_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        d2lssd.box_iou(bad, random_boxes(2))


def test_box_iou_names_the_second_argument():
    with pytest.raises(ValueError, match="boxes2"):
        d2lssd.box_iou(random_boxes(2), torch.tensor([[1.0, 1.0, 0.0, 0.0]]))


@pytest.mark.skipif(not hasattr(torch, "device"), reason="")
def test_box_iou_rejects_mixed_devices():
    meta = random_boxes(2).to("meta")
    with pytest.raises(ValueError, match="same device"):
        d2lssd.box_iou(random_boxes(2), meta)


def test_clip_boxes_rejects_bad_size():
    with pytest.raises(ValueError, match="width and height"):
        d2lssd.clip_boxes(random_boxes(2), width=0)


# --- integer boxes: promoted to the default float dtype ------------------------------------

def integer_pixel_boxes(n, seed, dtype=torch.int64, high=500):
    """Integer corner boxes in pixels with positive sizes (some touching, some nested)."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.randint(0, high, (n, 2), generator=g)
    wh = torch.randint(1, high // 2, (n, 2), generator=g)
    return torch.cat((xy, xy + wh), dim=1).to(dtype)


@pytest.mark.parametrize("dtype, high", [(torch.int64, 4000), (torch.int32, 500), (torch.int16, 500),
                                         (torch.uint8, 170)])
def test_integer_boxes_equal_torchvision(dtype, high):
    a, b = integer_pixel_boxes(80, 0, dtype, high), integer_pixel_boxes(60, 1, dtype, high)
    a[3] = b[5]  # an identical pair: IoU exactly 1
    iou = d2lssd.box_iou(a, b)
    assert iou.dtype == torch.float32
    # torchvision accepts integer boxes (int32/int64) and returns float IoUs: bit for bit the same
    want = ops.box_iou(a, b) if dtype in (torch.int32, torch.int64) else ops.box_iou(a.long(), b.long())
    torch.testing.assert_close(iou, want, rtol=0, atol=0)
    assert iou[3, 5] == 1.0
    area = d2lssd.box_area(a)
    assert area.dtype == torch.float32
    # torchvision keeps integer areas (int64 here); the values are equal
    assert torch.equal(area, ops.box_area(a.long()).float())
    torch.testing.assert_close(d2lssd.box_corner_to_center(a), ops.box_convert(a.long(), "xyxy", "cxcywh"))
    torch.testing.assert_close(d2lssd.clip_boxes(a, 300, 200), ops.clip_boxes_to_image(a.long(), (200, 300)).float())


def test_integer_boxes_are_promoted_to_the_default_float_dtype():
    a = integer_pixel_boxes(5, 2)
    old = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        for out in (d2lssd.box_iou(a, a), d2lssd.box_area(a), d2lssd.box_corner_to_center(a),
                    d2lssd.box_center_to_corner(a), d2lssd.clip_boxes(a, 600, 600)):
            assert out.dtype == torch.float64
    finally:
        torch.set_default_dtype(old)
    assert d2lssd.box_iou(a, a).dtype == torch.float32
    # float inputs keep their dtype, whatever the integer rule
    assert d2lssd.box_area(a.double()).dtype == torch.float64


def test_box_iou_with_empty_integer_input():
    empty = torch.zeros(0, 4, dtype=torch.int64)
    out = d2lssd.box_iou(empty, integer_pixel_boxes(3, 0))
    assert out.shape == (0, 3) and out.dtype == torch.float32
    assert d2lssd.box_area(empty).shape == (0,)


@pytest.mark.parametrize("fn", [d2lssd.box_area, d2lssd.box_corner_to_center, d2lssd.box_center_to_corner,
                                d2lssd.clip_boxes])
def test_integer_promotion_keeps_the_other_checks(fn):
    with pytest.raises(ValueError, match="last dimension of 4"):
        fn(torch.zeros(3, 5, dtype=torch.int64))
    with pytest.raises(ValueError, match="floating-point or integer"):
        fn(torch.zeros(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="contains NaN"):
        fn(torch.tensor([[0.0, float("nan"), 1.0, 1.0]]))
