"""Widget callbacks, tested without a browser; explorers rebuilt by setting slider values."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import ipywidgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torchvision.ops  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

import d2lssd  # noqa: E402
from d2lssd.widgets import (anchor_explorer, detections_like_boxes, draw_anchors,  # noqa: E402
                            draw_iou, draw_nms, iou_explorer, nms_explorer)

IMAGE = np.random.default_rng(0).integers(0, 255, (60, 90, 3), dtype=np.uint8)  # H=60, W=90


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


@pytest.fixture(autouse=True)
def close_all():
    yield
    plt.close("all")


def solid_and_dashed(ax):
    rects = [p for p in ax.patches if isinstance(p, Rectangle) and not p.get_fill()]
    solid = [r for r in rects if r.get_linestyle() in ("-", "solid")]
    dashed = [r for r in rects if r.get_linestyle() in ("--", "dashed")]
    return solid, dashed


# ---------------------------------------------------------------- anchors

def test_draw_anchors_default_pixel_and_count(ax):
    boxes = draw_anchors(ax, IMAGE, 4, 0.5, 1.0, extra_sizes=(0.25, 0.1), extra_ratios=(2, 0.5))
    assert boxes.shape == (3 + 3 - 1, 4)
    centres = d2lssd.box_corner_to_center(boxes)
    # default pixel: the centre one, (2, 2) of a 4x4 map
    torch.testing.assert_close(centres[:, 0], torch.full((5,), 2.5 / 4 * 90), rtol=0, atol=1e-4)
    torch.testing.assert_close(centres[:, 1], torch.full((5,), 2.5 / 4 * 60), rtol=0, atol=1e-4)
    # size 0.5, ratio 1: half the image height and width (d2l sizes are fractions of the height,
    # and a 4x4 map on a 90x60 image stretches it with the image)
    torch.testing.assert_close(centres[0, 2:], torch.tensor([45.0, 30.0]), rtol=1e-5, atol=1e-4)
    assert [t.get_text() for t in ax.texts][:2] == ["s=0.5, r=1", "s=0.25, r=1"]
    assert ax.get_xlim() == (0, 90) and ax.get_ylim() == (60, 0)


def test_draw_anchors_pixel_and_errors(ax):
    boxes = draw_anchors(ax, IMAGE, (3, 5), 0.3, 2.0, i=0, j=4)
    c = d2lssd.box_corner_to_center(boxes)[0]
    torch.testing.assert_close(c[:2], torch.tensor([4.5 / 5 * 90, 0.5 / 3 * 60]), rtol=0, atol=1e-4)
    with pytest.raises(ValueError):
        draw_anchors(ax, IMAGE, 4, -0.1, 1.0)
    with pytest.raises(ValueError):
        draw_anchors(ax, IMAGE, 4, 0.5, 1.0, i=4, j=0)
    with pytest.raises(ValueError):
        draw_anchors(ax, IMAGE, 0, 0.5, 1.0)


def test_anchor_explorer_reruns_on_slider_change():
    w = anchor_explorer(IMAGE, fmap_size=4)
    assert isinstance(w, ipywidgets.interactive)
    size, ratio, i, j, out = w.children
    assert isinstance(out, ipywidgets.Output)
    assert (size.min, size.max) == (0.05, 1.0) and isinstance(ratio, ipywidgets.FloatLogSlider)
    assert ratio.min == -2 and ratio.max == 2 and ratio.base == 2  # 0.25 to 4
    assert (i.max, j.max) == (3, 3)
    first = w.result
    assert first.shape == (1, 4)
    size.value = 0.3
    torch.testing.assert_close(w.result[0, 3] - w.result[0, 1], torch.tensor(0.3 * 60),
                               rtol=1e-5, atol=1e-4)
    ratio.value = 4.0  # twice as wide, half as high as ratio 1
    torch.testing.assert_close(w.result[0, 2] - w.result[0, 0], torch.tensor(0.3 * 2 * 90),
                               rtol=1e-5, atol=1e-4)
    i.value, j.value = 0, 1
    c = d2lssd.box_corner_to_center(w.result)[0, :2]
    torch.testing.assert_close(c, torch.tensor([1.5 / 4 * 90, 0.5 / 4 * 60]), rtol=0, atol=1e-4)
    assert len(plt.get_fignums()) == 1  # each update replaces the previous figure


# ---------------------------------------------------------------- IoU

PAIRS = [
    ([0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]),          # 1/7
    ([10.0, 20.0, 50.0, 60.0], [10.0, 20.0, 50.0, 60.0]),   # identical: 1
    ([0.0, 0.0, 10.0, 10.0], [2.0, 3.0, 5.0, 9.0]),         # nested
    ([100.0, 30.0, 300.0, 200.0], [150.0, 0.0, 250.0, 400.0]),
    ([0.1, 0.08, 0.52, 0.92], [0.55, 0.2, 0.9, 0.88]),      # d2l's dog and cat (disjoint)
]


@pytest.mark.parametrize("box1, box2", PAIRS)
def test_draw_iou_matches_torchvision(ax, box1, box2):
    iou = draw_iou(ax, box1, box2)
    ref = torchvision.ops.box_iou(torch.tensor([box1], dtype=torch.float64),
                                  torch.tensor([box2], dtype=torch.float64))[0, 0].item()
    assert isinstance(iou, float) and iou == pytest.approx(ref, abs=1e-12)
    assert ax.get_title() == f"IoU = {iou:.3f}"
    assert draw_iou(ax, torch.tensor(box2), torch.tensor(box1)) == pytest.approx(iou)  # symmetric


def test_draw_iou_disjoint_and_touching_are_zero(ax):
    assert draw_iou(ax, [0, 0, 1, 1], [2, 2, 3, 3]) == 0.0
    assert draw_iou(ax, [0, 0, 1, 1], [1, 0, 2, 1]) == 0.0  # shared edge
    filled = [p for p in ax.patches if p.get_fill()]
    assert filled == []  # no intersection to shade


def test_draw_iou_shades_the_intersection(ax):
    draw_iou(ax, [0, 0, 4, 4], [2, 1, 6, 3])
    (inter,) = [p for p in ax.patches if p.get_fill()]
    assert inter.get_xy() == (2.0, 1.0) and inter.get_width() == 2.0 and inter.get_height() == 2.0
    assert ax.yaxis_inverted()  # image convention, y down


@pytest.mark.parametrize("bad", [[0, 0, 1], [1, 1, 0, 0], [0, float("nan"), 1, 1]])
def test_draw_iou_rejects_bad_boxes(ax, bad):
    with pytest.raises(ValueError):
        draw_iou(ax, [0, 0, 1, 1], bad)


def test_iou_explorer_reruns_on_slider_change():
    w = iou_explorer()
    dx, dy, scale, out = w.children
    assert isinstance(out, ipywidgets.Output)
    a = torch.tensor([[30.0, 30.0, 70.0, 70.0]], dtype=torch.float64)

    def expected():
        cx, cy, s = 50 + dx.value, 50 + dy.value, 40 * scale.value
        b = torch.tensor([[cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2]], dtype=torch.float64)
        return torchvision.ops.box_iou(a, b)[0, 0].item()

    assert w.result == pytest.approx(expected())
    dx.value, dy.value = 0.0, 0.0
    assert w.result == pytest.approx(1.0)
    scale.value = 0.5
    assert w.result == pytest.approx(0.25)  # nested box with a quarter of the area
    dx.value = 60.0
    assert w.result == 0.0
    assert len(plt.get_fignums()) == 1


# ---------------------------------------------------------------- NMS

GT = torch.tensor([[20.0, 10.0, 60.0, 50.0], [50.0, 20.0, 85.0, 58.0], [2.0, 30.0, 20.0, 55.0]])


def test_detections_like_boxes_is_deterministic_and_well_formed():
    boxes, scores, obj = detections_like_boxes(GT, n_per_object=7, seed=3, jitter=0.1)
    assert boxes.shape == (21, 4) and boxes.dtype == torch.float32
    assert scores.shape == (21,) and scores.dtype == torch.float32
    assert obj.tolist() == [0] * 7 + [1] * 7 + [2] * 7 and obj.dtype == torch.int64
    assert ((scores > 0) & (scores < 1)).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    # a box is drawn around its own object: it overlaps it more than any other one
    iou = d2lssd.box_iou(boxes, GT)
    assert (iou.argmax(dim=1) == obj).all() and (iou[torch.arange(21), obj] > 0.5).all()
    again = detections_like_boxes(GT, n_per_object=7, seed=3, jitter=0.1)
    for x, y in zip((boxes, scores, obj), again):
        assert torch.equal(x, y)
    other = detections_like_boxes(GT, n_per_object=7, seed=4, jitter=0.1)
    assert not torch.equal(boxes, other[0])


def test_detections_like_boxes_zero_jitter_and_clipping():
    boxes, scores, _ = detections_like_boxes(GT.tolist(), n_per_object=2, seed=0, jitter=0.0)
    torch.testing.assert_close(boxes, GT.repeat_interleave(2, dim=0))
    boxes, _, _ = detections_like_boxes(GT, 50, seed=1, jitter=0.5, image_size=(90, 60))
    assert (boxes >= 0).all() and (boxes[:, 0::2] <= 90).all() and (boxes[:, 1::2] <= 60).all()


@pytest.mark.parametrize("kwargs", [dict(gt_pixels=torch.zeros(2, 3)),
                                    dict(gt_pixels=torch.tensor([[0.0, 0.0, 0.0, 5.0]])),
                                    dict(n_per_object=0), dict(jitter=-0.1),
                                    dict(jitter=float("nan"))])
def test_detections_like_boxes_rejects_bad_input(kwargs):
    args = dict(gt_pixels=GT, n_per_object=3, seed=0, jitter=0.1) | kwargs
    with pytest.raises(ValueError):
        detections_like_boxes(**args)


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_draw_nms_keeps_torchvision_indices(ax, threshold):
    boxes, scores, _ = detections_like_boxes(GT, n_per_object=8, seed=0, jitter=0.15)
    keep = draw_nms(ax, IMAGE, boxes, scores, threshold)
    ref = torchvision.ops.nms(boxes, scores, threshold)
    assert torch.equal(keep, ref)
    solid, dashed = solid_and_dashed(ax)
    assert len(solid) == len(ref) and len(dashed) == len(boxes) - len(ref)
    # kept boxes are drawn where they are, labelled with their score
    for rect, k in zip(solid, ref.tolist()):
        assert rect.get_xy() == pytest.approx(tuple(boxes[k, :2].tolist()))
    assert [t.get_text() for t in ax.texts] == [f"{float(scores[k]):.2f}" for k in ref]
    assert ax.get_title().endswith(f"kept {len(ref)} of {len(boxes)}")


def test_draw_nms_d2l_example(ax):
    # d2l.ai §14.4.4: dog boxes 0-2 and a cat box 3; at 0.5 boxes 0 and 3 survive.
    boxes = torch.tensor([[0.1, 0.08, 0.52, 0.92], [0.08, 0.2, 0.56, 0.95],
                          [0.15, 0.3, 0.62, 0.91], [0.55, 0.2, 0.9, 0.88]]) * torch.tensor(
        [90.0, 60.0, 90.0, 60.0])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.9])
    keep = draw_nms(ax, None, boxes, scores, 0.5, labels=["dog", "dog", "dog", "cat"])
    assert keep.tolist() == [0, 3]
    assert [t.get_text() for t in ax.texts] == ["dog=0.90", "cat=0.90"]
    with pytest.raises(ValueError):
        draw_nms(ax, None, boxes, scores, 0.5, labels=["dog"])
    with pytest.raises(ValueError):
        draw_nms(ax, None, boxes, scores, 1.5)


def test_nms_explorer_reruns_on_slider_change():
    boxes, scores, _ = detections_like_boxes(GT, n_per_object=8, seed=0, jitter=0.15)
    w = nms_explorer(IMAGE, boxes, scores)
    threshold, out = w.children
    assert isinstance(out, ipywidgets.Output) and (threshold.min, threshold.max) == (0.0, 1.0)
    assert torch.equal(w.result, torchvision.ops.nms(boxes, scores, 0.5))
    for t in (0.0, 0.2, 0.9, 1.0):
        threshold.value = t
        assert torch.equal(w.result, torchvision.ops.nms(boxes, scores, t))
    assert len(w.result) == len(boxes)  # threshold 1 suppresses nothing (no duplicate boxes)
    assert len(plt.get_fignums()) == 1
