import math

import pytest
import torch

import d2lssd

TINYSSD_SIZES = [[0.2, 0.272], [0.37, 0.447], [0.54, 0.619], [0.71, 0.79], [0.88, 0.961]]


def test_tinyssd_has_5444_anchors_at_256():
    # d2l's TinySSD: feature maps 32, 16, 8, 4, 1 for a 256x256 input, 4 anchors per pixel.
    total = sum(d2lssd.multibox_prior(torch.zeros(1, 8, f, f), s, [1, 2, 0.5]).shape[1]
                for f, s in zip([32, 16, 8, 4, 1], TINYSSD_SIZES))
    assert total == 5444


def test_ssd300_has_8732_default_boxes():
    boxes = d2lssd.ssd_default_boxes(**d2lssd.SSD300_CONFIG)
    assert boxes.shape == (1, 8732, 4)
    assert boxes.min() >= 0 and boxes.max() <= 1  # clipped by default


@pytest.mark.parametrize("h, w", [(4, 4), (5, 7), (561, 728)])
def test_multibox_prior_equals_d2l(d2l, h, w):
    x = torch.zeros(1, 3, h, w)
    for sizes, ratios in [([0.75, 0.5, 0.25], [1, 2, 0.5]), ([0.2, 0.272], [1, 2, 0.5]), ([0.3], [1])]:
        ours = d2lssd.multibox_prior(x, sizes, ratios)
        torch.testing.assert_close(ours, d2l.multibox_prior(x, sizes, ratios), atol=1e-6, rtol=0)


def test_multibox_prior_known_values_and_order():
    # 2x2 map, sizes [0.5, 0.25], ratios [1, 4]: n + m - 1 = 3 anchors per pixel.
    a = d2lssd.multibox_prior(torch.zeros(1, 1, 2, 2), [0.5, 0.25], [1, 4])
    assert a.shape == (1, 12, 4)
    a = a.reshape(2, 2, 3, 4)
    # pixel (row 0, col 1) has centre (0.75, 0.25)
    c = d2lssd.box_corner_to_center(a[0, 1])
    torch.testing.assert_close(c[:, :2], torch.tensor([[0.75, 0.25]] * 3))
    # (s1, r1), (s2, r1), (s1, r2): widths 0.5, 0.25, 0.5*2; heights 0.5, 0.25, 0.5/2
    torch.testing.assert_close(c[:, 2:], torch.tensor([[0.5, 0.5], [0.25, 0.25], [1.0, 0.25]]))


def test_multibox_prior_ratio_one_is_square_in_pixels():
    h, w = 30, 60
    a = d2lssd.box_corner_to_center(d2lssd.multibox_prior(torch.zeros(1, 1, h, w), [0.4], [1])[0])
    torch.testing.assert_close(a[:, 2] * w, a[:, 3] * h)


def test_ssd_scales_follow_the_paper():
    s = d2lssd.ssd_scales(6, 0.2, 0.9)
    torch.testing.assert_close(torch.tensor(s), torch.tensor([0.2, 0.34, 0.48, 0.62, 0.76, 0.9, 1.04]))


def test_ssd_default_boxes_per_cell_order_and_sizes():
    b = d2lssd.ssd_default_boxes([2, 1], [[2], [2, 3]], s_min=0.2, s_max=0.6, clip=False)
    assert b.shape == (1, 2 * 2 * 4 + 1 * 6, 4)
    c = d2lssd.box_corner_to_center(b[0])
    first = c[:4]  # level 0, cell (0, 0): centre (0.25, 0.25)
    torch.testing.assert_close(first[:, :2], torch.full((4, 2), 0.25))
    s0, s1 = 0.2, 0.6
    r2 = math.sqrt(2)
    expect = torch.tensor([[s0, s0], [math.sqrt(s0 * s1)] * 2, [s0 * r2, s0 / r2], [s0 / r2, s0 * r2]])
    torch.testing.assert_close(first[:, 2:], expect)
    last = c[-6:]  # level 1 (1x1), extrapolated s_3 = 1.0 for the extra box
    torch.testing.assert_close(last[1, 2:], torch.tensor([math.sqrt(0.6 * 1.0)] * 2))
    torch.testing.assert_close(last[:, :2], torch.full((6, 2), 0.5))


def test_anchor_order_matches_head_flattening():
    # The head's channel i*(q+1)+j is anchor i, class j; flattening with
    # permute(0, 2, 3, 1) must put anchor k of pixel (r, c) at row (r*w + c)*a + k.
    h, w, a, q1 = 3, 5, 4, 3
    anchors = d2lssd.multibox_prior(torch.zeros(1, 1, h, w), [0.2, 0.3], [1, 2, 0.5])
    head = torch.arange(a * q1 * h * w, dtype=torch.float32).reshape(1, a * q1, h, w)
    flat = head.permute(0, 2, 3, 1).reshape(1, -1, q1)  # (1, h*w*a, q+1)
    assert flat.shape[1] == anchors.shape[1]
    r, c, k, j = 2, 3, 1, 2
    row = (r * w + c) * a + k
    assert flat[0, row, j] == head[0, k * q1 + j, r, c]
    centre = d2lssd.box_corner_to_center(anchors[0, row])[:2]
    torch.testing.assert_close(centre, torch.tensor([(c + 0.5) / w, (r + 0.5) / h]))


@pytest.mark.parametrize("kwargs, match", [
    (dict(sizes=[], ratios=[1]), "sizes"),
    (dict(sizes=[0.5, -0.1], ratios=[1]), "sizes"),
    (dict(sizes=[0.5], ratios=[0]), "ratios"),
    (dict(sizes=[0.5], ratios=[float("nan")]), "ratios"),
])
def test_multibox_prior_rejects_bad_sizes_and_ratios(kwargs, match):
    with pytest.raises(ValueError, match=match):
        d2lssd.multibox_prior(torch.zeros(1, 1, 2, 2), **kwargs)


def test_multibox_prior_rejects_bad_data():
    with pytest.raises(ValueError, match="data"):
        d2lssd.multibox_prior(torch.zeros(5), [0.5], [1])
    with pytest.raises(ValueError, match="data"):
        d2lssd.multibox_prior(torch.zeros(1, 1, 0, 3), [0.5], [1])


def test_ssd_default_boxes_rejects_mismatched_lists():
    with pytest.raises(ValueError, match="one entry per level"):
        d2lssd.ssd_default_boxes([38, 19], [[2]])
    with pytest.raises(ValueError, match="s_min"):
        d2lssd.ssd_scales(3, 0.9, 0.2)


def _torchvision_default_boxes(feature_map_sizes, aspect_ratios, **kwargs):
    """torchvision's DefaultBoxGenerator on a 300x300 image, divided by the size: (A, 4) normalized corners."""
    from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
    from torchvision.models.detection.image_list import ImageList

    maps = [torch.zeros(1, 1, *((f, f) if isinstance(f, int) else f)) for f in feature_map_sizes]
    gen = DefaultBoxGenerator(aspect_ratios, **kwargs)
    return gen(ImageList(torch.zeros(1, 3, 300, 300), [(300, 300)]), maps)[0] / 300


def test_ssd300_default_boxes_equal_torchvision_given_our_scales():
    cfg = d2lssd.SSD300_CONFIG
    ours = d2lssd.ssd_default_boxes(**cfg, clip=False)[0]
    ref = _torchvision_default_boxes(**cfg, scales=d2lssd.ssd_scales(6, 0.2, 0.9), clip=False)
    assert ours.shape == ref.shape == (8732, 4)
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)  # same order, centres and sizes
    # non-square maps (torchvision once swapped h and w, vision #6550)
    sizes, ratios = [(3, 5), (2, 1)], [[2], [3]]
    torch.testing.assert_close(d2lssd.ssd_default_boxes(sizes, ratios, clip=False)[0],
                               _torchvision_default_boxes(sizes, ratios, scales=d2lssd.ssd_scales(2), clip=False),
                               atol=1e-6, rtol=0)


def test_the_last_extra_scale_is_1_04_where_torchvision_appends_1_0():
    cfg = d2lssd.SSD300_CONFIG
    assert d2lssd.ssd_scales(6)[-1] == pytest.approx(1.04)
    ours = d2lssd.ssd_default_boxes(**cfg, clip=False)[0]
    ref = _torchvision_default_boxes(**cfg, min_ratio=0.2, max_ratio=0.9, clip=False)
    differ = torch.nonzero((ours - ref).abs().amax(dim=1) > 1e-6).flatten().tolist()
    assert differ == [8732 - 4 + 1]  # the last level (1x1, 4 boxes): its second box, sqrt(s_6 s_7)
    side = lambda b: float(b[2] - b[0])  # noqa: E731
    assert side(ours[differ[0]]) == pytest.approx(math.sqrt(0.9 * 1.04), abs=1e-6)
    assert side(ref[differ[0]]) == pytest.approx(math.sqrt(0.9 * 1.0), abs=1e-6)


def test_clip_cuts_corners_where_torchvision_clamps_width_and_height():
    cfg = d2lssd.SSD300_CONFIG
    unclipped = d2lssd.ssd_default_boxes(**cfg, clip=False)[0]
    ours = d2lssd.ssd_default_boxes(**cfg)[0]
    torch.testing.assert_close(ours, d2lssd.clip_boxes(unclipped), atol=0, rtol=0)
    assert ours.min() == 0 and ours.max() == 1
    ref = _torchvision_default_boxes(**cfg, scales=d2lssd.ssd_scales(6), clip=True)
    wh = d2lssd.box_corner_to_center(ref)[:, 2:]
    assert wh.max() <= 1 + 1e-6  # torchvision: sizes capped at 1 ...
    assert ref.min() == pytest.approx(-0.4, abs=1e-5) and ref.max() == pytest.approx(1.4, abs=1e-5)  # ... corners not
    same = (unclipped >= 0).all(dim=1) & (unclipped <= 1).all(dim=1)
    torch.testing.assert_close(ours[same], ref[same], atol=1e-6, rtol=0)  # boxes inside the image agree
    assert 0 < int((~same).sum()) < 8732
